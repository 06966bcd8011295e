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
