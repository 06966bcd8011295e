/*
 * peer - client name lookup helpers (see peer.h). Pure: no I/O.
 * Trusts: nothing in the DNS answers given to it (bounded, checked).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "util/net.h"
#include "mail/peer.h"
#include "mail/restrict.h"

int
peer_ptr_query(const char *addr, char *out, size_t outlen)
{
	const char *sfx = ".in-addr.arpa";
	const char *p = addr;

	if (strncmp(p, "::ffff:", 7) == 0 && strchr(p + 7, '.') != NULL)
		p += 7;
	if (strchr(p, ':') != NULL)
		sfx = ".ip6.arpa";
	if (outlen < 80 || restrict_reverse_addr(addr, out, outlen - 10) < 0)
		return -1;
	strcat(out, sfx);
	return 0;
}

int
peer_name_valid(const char *name)
{
	size_t n = strlen(name), lab = 0;
	int alpha = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch == '.') {
			if (lab == 0 || name[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (ch == '-' && lab == 0)
			return 0;
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return 0;
		if (!isdigit(ch))
			alpha = 1;
		if (++lab > 63)
			return 0;
	}
	if (name[n - 1] == '-')
		return 0;
	/* All digits and dots: an address posing as a name (Postfix warns
	 * "numeric hostname" and treats the client as unknown). */
	return alpha;
}

int
peer_hosts_name(const char *text, size_t len, const char *client,
    char *name, size_t namelen)
{
	size_t i = 0;

	while (i < len) {
		size_t end = i;
		while (end < len && text[end] != '\n')
			end++;
		/* fields of one line, up to a comment */
		char line[1024];
		size_t n = end - i < sizeof(line) - 1 ? end - i : sizeof(line) - 1;
		memcpy(line, text + i, n);
		line[n] = '\0';
		i = end + 1;
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *save = NULL;
		char *addr = strtok_r(line, " \t\r", &save);
		char *host = addr != NULL ? strtok_r(NULL, " \t\r", &save) : NULL;
		if (host == NULL)
			continue;
		char *one[2] = { addr, NULL };
		if (!peer_addr_match(client, one) || !peer_name_valid(host)
		    || strlen(host) >= namelen)
			continue;
		/* The first name of the first line, as getnameinfo() returns
		 * the canonical name; lower case as a PTR answer is kept. */
		for (n = 0; host[n] != '\0'; n++)
			name[n] = (char)tolower((unsigned char)host[n]);
		name[n] = '\0';
		if (n > 0 && name[n - 1] == '.')
			name[n - 1] = '\0';
		return 1;
	}
	return 0;
}

int
peer_addr_match(const char *client, char *const *addrs)
{
	struct net_addr c, a;

	if (net_addr_parse(client, strlen(client), &c, 1) < 0)
		return 0;
	for (size_t i = 0; addrs != NULL && addrs[i] != NULL; i++) {
		if (net_addr_parse(addrs[i], strlen(addrs[i]), &a, 1) < 0)
			continue;
		if (a.family == c.family && memcmp(a.b, c.b,
		    a.family == AF_INET ? 4 : 16) == 0)
			return 1;
	}
	return 0;
}
