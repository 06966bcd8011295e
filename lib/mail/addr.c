/*
 * addr - RFC 5321 Path and Mailbox syntax (with RFC 6531 SMTPUTF8).
 *
 * Grammar implemented (RFC 5321 4.1.2, 4.1.3):
 *   Path      = "<" [ A-d-l ":" ] Mailbox ">"     (A-d-l discarded)
 *   Mailbox   = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 *   Domain    = sub-domain *("." sub-domain), Let-dig [Ldh-str]
 *   address-literal = "[" IPv4 "]" / "[IPv6:" IPv6 "]"
 * With utf8, well-formed UTF-8 sequences (no overlongs, surrogates or code
 * points past U+10FFFF) count as atext, qtext and label characters.
 * General address literals ("[tag:...]") are refused: nothing routes them.
 *
 * The parser walks a NUL-terminated string with a cursor and never reads
 * past the NUL; errors are static texts starting with an enhanced status
 * code, for 501/553 replies.
 *
 * LIMITS: path 256 octets including the brackets, local part 64, domain
 * 255, label 63 (RFC 5321 4.5.3.1). Lengths count UTF-8 octets.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "mail/addr.h"

#define PATH_MAX_LEN 256
#define LOCAL_MAX 64
#define DOMAIN_MAX 255
#define LABEL_MAX 63
#define LITERAL_MAX 64

static const char E_NO_LT[] = "5.5.2 Syntax error in address: missing <";
static const char E_NO_GT[] = "5.5.2 Syntax error in address: missing >";
static const char E_SYNTAX[] = "5.1.3 Bad address syntax";
static const char E_LOCAL[] = "5.1.3 Bad address syntax: bad local part";
static const char E_DOMAIN[] = "5.1.3 Bad address syntax: bad domain";
static const char E_LITERAL[] = "5.1.3 Bad address syntax: bad address literal";
static const char E_ROUTE[] = "5.1.3 Bad address syntax: bad source route";
static const char E_LOCAL_LONG[] = "5.1.3 Bad address syntax: local part too long";
static const char E_DOMAIN_LONG[] = "5.1.3 Bad address syntax: domain too long";
static const char E_PATH_LONG[] = "5.1.3 Bad address syntax: address too long";
static const char E_UTF8[] = "5.1.3 Bad address syntax: invalid UTF-8";
static const char E_NONASCII[] = "5.6.7 Non-ASCII address requires SMTPUTF8";

/* Length of the well-formed UTF-8 sequence at p (2..4), or 0. */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* The second byte decides overlongs, surrogates and the upper bound;
	 * a NUL terminator fails the continuation test, so no overrun. */
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) ||
	    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Accept a non-ASCII character at *pp; -1 and *err otherwise. */
static int
take_utf8(const unsigned char **pp, int utf8, const char **err)
{
	size_t n;

	if (!utf8) {
		*err = E_NONASCII;
		return -1;
	}
	if ((n = utf8_len(*pp)) == 0) {
		*err = E_UTF8;
		return -1;
	}
	*pp += n;
	return 0;
}

static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int
is_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
parse_local(const unsigned char **pp, int utf8, const char **err)
{
	const unsigned char *p = *pp, *start = *pp;

	if (*p == '"') {
		for (p++;;) {
			if (*p == '"') {
				p++;
				break;
			}
			if (*p == '\\') {
				if (p[1] < 32 || p[1] > 126) {
					*err = E_LOCAL;
					return -1;
				}
				p += 2;
			} else if (*p >= 32 && *p <= 126) {
				p++;
			} else if (*p >= 0x80) {
				if (take_utf8(&p, utf8, err) < 0)
					return -1;
			} else {
				*err = E_LOCAL;
				return -1;
			}
			if (p - start > LOCAL_MAX) {
				*err = E_LOCAL_LONG;
				return -1;
			}
		}
	} else {
		for (;;) {
			const unsigned char *atom = p;

			while (is_atext(*p) || *p >= 0x80) {
				if (*p >= 0x80) {
					if (take_utf8(&p, utf8, err) < 0)
						return -1;
				} else {
					p++;
				}
				if (p - start > LOCAL_MAX) {
					*err = E_LOCAL_LONG;
					return -1;
				}
			}
			if (p == atom) {
				*err = E_LOCAL;
				return -1;
			}
			if (*p != '.')
				break;
			p++;
		}
	}
	if (p - start > LOCAL_MAX) {
		*err = E_LOCAL_LONG;
		return -1;
	}
	*pp = p;
	return 0;
}

/* Domain name; stops at the first character that cannot continue it. */
static int
parse_domain(const unsigned char **pp, int utf8, const char **err)
{
	const unsigned char *p = *pp, *start = *pp, *label, *last;

	for (;;) {
		label = p;
		last = NULL;
		if (!is_letdig(*p) && *p < 0x80) {
			*err = E_DOMAIN;
			return -1;
		}
		while (is_letdig(*p) || *p == '-' || *p >= 0x80) {
			last = p;
			if (*p >= 0x80) {
				if (take_utf8(&p, utf8, err) < 0)
					return -1;
			} else {
				p++;
			}
			if (p - label > LABEL_MAX) {
				*err = E_DOMAIN;
				return -1;
			}
			if (p - start > DOMAIN_MAX) {
				*err = E_DOMAIN_LONG;
				return -1;
			}
		}
		if (*last == '-') {
			*err = E_DOMAIN;
			return -1;
		}
		if (*p != '.')
			break;
		p++;
	}
	*pp = p;
	return 0;
}

/* Snum "." Snum "." Snum "." Snum, Snum = 1*3DIGIT <= 255. */
static int
ipv4_ok(const char *s)
{
	int part, digits, v;

	for (part = 0; part < 4; part++) {
		if (part > 0 && *s++ != '.')
			return 0;
		for (v = 0, digits = 0; *s >= '0' && *s <= '9'; s++, digits++) {
			if (digits == 3)
				return 0;
			v = v * 10 + (*s - '0');
		}
		if (digits == 0 || v > 255)
			return 0;
	}
	return *s == '\0';
}

static int
parse_literal(const unsigned char **pp, const char **err)
{
	const unsigned char *p = *pp + 1;
	char lit[LITERAL_MAX + 1];
	unsigned char a6[16];
	size_t n = 0;

	/* dcontent = %d33-90 / %d94-126 */
	while ((*p >= 33 && *p <= 90) || (*p >= 94 && *p <= 126)) {
		if (n == LITERAL_MAX) {
			*err = E_LITERAL;
			return -1;
		}
		lit[n++] = (char)*p++;
	}
	lit[n] = '\0';
	if (*p != ']') {
		*err = E_LITERAL;
		return -1;
	}
	if (strncasecmp(lit, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, lit + 5, a6) != 1) {
			*err = E_LITERAL;
			return -1;
		}
	} else if (!ipv4_ok(lit)) {
		*err = E_LITERAL;
		return -1;
	}
	*pp = p + 1;
	return 0;
}

static int
parse_mailbox(const unsigned char **pp, int utf8, int need_domain, const char **err)
{
	const unsigned char *p = *pp;

	if (parse_local(&p, utf8, err) < 0)
		return -1;
	if (*p == '@') {
		p++;
		if (*p == '[') {
			if (parse_literal(&p, err) < 0)
				return -1;
		} else if (parse_domain(&p, utf8, err) < 0) {
			return -1;
		}
	} else if (need_domain) {
		*err = E_SYNTAX;
		return -1;
	}
	*pp = p;
	return 0;
}

int
addr_parse_path(const char *s, unsigned flags, char **addr_r, const char **end_r,
    const char **err_r)
{
	const unsigned char *p = (const unsigned char *)s, *start, *mbox, *mbox_end;
	const char *err = E_SYNTAX;
	int utf8 = (flags & ADDR_UTF8) != 0;
	size_t len;

	while (*p == ' ')
		p++;
	start = p;
	if (*p != '<') {
		/* strict_rfc821_envelopes = no: a mailbox without the angle
		 * brackets ("MAIL FROM:user@example.com", from old scripts and
		 * appliances). It ends at the first space, where the parameters
		 * begin, and must be as valid as one inside <...>. */
		if (!(flags & ADDR_BARE_OK)) {
			err = E_NO_LT;
			goto fail;
		}
		mbox = p;
		if (*p == '\0' || parse_mailbox(&p, utf8, 0, &err) < 0)
			goto fail;
		if (*p != ' ' && *p != '\0') {
			err = E_SYNTAX;
			goto fail;
		}
		mbox_end = p;
		len = (size_t)(p - mbox) + 2;     /* as if in brackets */
		goto done;
	}
	p++;
	if (*p == '>') {
		*addr_r = xstrdup("");
		if (end_r != NULL)
			*end_r = (const char *)p + 1;
		return 0;
	}
	if (*p == '@') {
		/* A-d-l ":" - obsolete, accepted and ignored (RFC 5321 4.1.2). */
		for (;;) {
			p++;
			if (parse_domain(&p, utf8, &err) < 0) {
				if (err != E_NONASCII && err != E_UTF8)
					err = E_ROUTE;
				goto fail;
			}
			if (*p == ':')
				break;
			if (p[0] != ',' || p[1] != '@') {
				err = E_ROUTE;
				goto fail;
			}
			p++;
		}
		p++;
	}
	mbox = p;
	if (parse_mailbox(&p, utf8, 0, &err) < 0)
		goto fail;
	if (*p != '>') {
		err = *p == '\0' ? E_NO_GT : E_SYNTAX;
		goto fail;
	}
	mbox_end = p++;
	len = (size_t)(p - start);
done:
	if (len > PATH_MAX_LEN) {
		err = E_PATH_LONG;
		goto fail;
	}
	*addr_r = xstrndup((const char *)mbox, (size_t)(mbox_end - mbox));
	if (end_r != NULL)
		*end_r = (const char *)p;
	return 0;
fail:
	*addr_r = NULL;
	if (err_r != NULL)
		*err_r = err;
	return -1;
}

int
addr_valid(const char *addr, int utf8)
{
	const unsigned char *p = (const unsigned char *)addr;
	const char *err;

	if (addr == NULL || strlen(addr) > PATH_MAX_LEN - 2)
		return -1;
	if (parse_mailbox(&p, utf8, 1, &err) < 0 || *p != '\0')
		return -1;
	return 0;
}

int
addr_valid_domain(const char *domain, int utf8)
{
	const unsigned char *p = (const unsigned char *)domain;
	const char *err;

	if (domain == NULL)
		return -1;
	if (*p == '[') {
		if (parse_literal(&p, &err) < 0)
			return -1;
	} else if (parse_domain(&p, utf8, &err) < 0) {
		return -1;
	}
	return *p == '\0' ? 0 : -1;
}

/* Index of the last '@' outside a quoted string, or -1. */
static long
split_at(const char *addr)
{
	long at = -1, i;
	int quoted = 0;

	for (i = 0; addr[i] != '\0'; i++) {
		if (quoted && addr[i] == '\\' && addr[i + 1] != '\0')
			i++;
		else if (addr[i] == '"')
			quoted = !quoted;
		else if (!quoted && addr[i] == '@')
			at = i;
	}
	return at;
}

void
addr_split(const char *addr, char **local_r, char **domain_r)
{
	long at = split_at(addr);

	if (at < 0) {
		*local_r = xstrdup(addr);
		*domain_r = xstrdup("");
		return;
	}
	*local_r = xstrndup(addr, (size_t)at);
	*domain_r = xstrdup(addr + at + 1);
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

char *
addr_fold_domain(const char *addr)
{
	char *copy = xstrdup(addr), *p;
	long at = split_at(addr);

	if (at >= 0)
		for (p = copy + at + 1; *p != '\0'; p++)
			*p = ascii_lower(*p);
	return copy;
}

char *
addr_lookup_key(const char *local, const char *delim)
{
	char *key = xmalloc(strlen(local) + 1);
	size_t n = 0, i;

	for (; *local != '\0'; local++) {
		if (*local == '"')
			continue;
		if (*local == '\\' && local[1] != '\0')
			local++;
		key[n++] = ascii_lower(*local);
	}
	key[n] = '\0';
	if (delim != NULL && *delim != '\0') {
		for (i = 1; i < n; i++) {
			if (strchr(delim, key[i]) != NULL) {
				key[i] = '\0';
				break;
			}
		}
	}
	return key;
}

char *
addr_qualify(const char *addr, const char *origin)
{
	int inq = 0;

	for (const char *p = addr; *p != '\0'; p++) {
		if (*p == '"')
			inq = !inq;
		else if (*p == '@' && !inq)
			return xstrdup(addr);
	}
	return xasprintf("%s@%s", addr, origin);
}
