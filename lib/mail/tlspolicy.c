/*
 * tlspolicy - per-destination TLS security level (see tlspolicy.h).
 *
 * Invariant: a table value we cannot understand never weakens security
 * silently: it is an error the caller turns into a deferral. Keys are
 * bounded (a nexthop longer than 300 bytes is looked up as given only).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/strv.h"
#include "mail/tlspolicy.h"

#define KEY_MAX 300

static const struct {
	const char *name;
	enum tls_level lev;
} levels[] = {
	{ "none", TLS_LEV_NONE },
	{ "may", TLS_LEV_MAY },
	{ "encrypt", TLS_LEV_ENCRYPT },
	{ "verify", TLS_LEV_VERIFY },
	{ "secure", TLS_LEV_VERIFY },
	{ "dane", TLS_LEV_MAY },
	{ "dane-only", TLS_LEV_ENCRYPT },
};

int
tls_level_parse(const char *s, enum tls_level *lev)
{
	size_t i, n;

	if (s == NULL)
		return -1;
	while (*s == ' ' || *s == '\t')
		s++;
	n = strcspn(s, " \t,");
	if (n == 0)
		return -1;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strlen(levels[i].name) == n && strncasecmp(s, levels[i].name, n) == 0) {
			*lev = levels[i].lev;
			return 0;
		}
	return -1;
}

const char *
tls_level_name(enum tls_level lev)
{
	switch (lev) {
	case TLS_LEV_NONE:
		return "none";
	case TLS_LEV_MAY:
		return "may";
	case TLS_LEV_ENCRYPT:
		return "encrypt";
	case TLS_LEV_VERIFY:
		return "verify";
	}
	return "?";
}

/* 1 found and parsed, 0 not found, -1 lookup error, -2 bad value. */
static int
try_key(const char *key, tlspolicy_lookup_fn lookup, void *ctx, enum tls_level *lev)
{
	char *v = NULL;
	int rc = lookup(ctx, key, &v);

	if (rc <= 0)
		return rc;
	rc = tls_level_parse(v, lev) == 0 ? 1 : -2;
	free(v);
	return rc;
}

int
tlspolicy_find(const char *nexthop, enum tls_level def, tlspolicy_lookup_fn lookup,
    void *ctx, enum tls_level *lev, const char **why_r)
{
	char *key, *host = NULL, *p;
	int rc;

	*lev = def;
	*why_r = "";
	if (lookup == NULL || nexthop == NULL || *nexthop == '\0')
		return 0;
	key = str_lower(xstrdup(nexthop));
	rc = try_key(key, lookup, ctx, lev);
	if (rc == 0 && strlen(key) <= KEY_MAX) {
		/* "[host]:port" / "host:port" -> host */
		if (key[0] == '[') {
			p = strchr(key, ']');
			if (p != NULL)
				host = xstrndup(key + 1, (size_t)(p - key - 1));
		} else if ((p = strrchr(key, ':')) != NULL && strchr(key, ':') == p) {
			host = xstrndup(key, (size_t)(p - key));
		}
		if (host != NULL && *host != '\0' && strcmp(host, key) != 0)
			rc = try_key(host, lookup, ctx, lev);
		/* Parent domains, as ".parent"; not for address literals. */
		if (rc == 0) {
			const char *h = host != NULL ? host : key;

			if (strspn(h, "0123456789.") != strlen(h) && strchr(h, ':') == NULL) {
				for (p = strchr(h, '.'); rc == 0 && p != NULL && p[1] != '\0';
				    p = strchr(p + 1, '.'))
					rc = try_key(p, lookup, ctx, lev);
			}
		}
	}
	free(host);
	free(key);
	if (rc == -1) {
		*lev = def;
		*why_r = "TLS policy table lookup failed";
		return -1;
	}
	if (rc == -2) {
		*lev = def;
		*why_r = "invalid TLS security level in smtp_tls_policy_maps";
		return -2;
	}
	if (rc == 0)
		*lev = def;
	return 0;
}
