/*
 * tlspolicy - per-destination TLS security level (see tlspolicy.h).
 *
 * Invariant: a table value we cannot understand never weakens security
 * silently: it is an error the caller turns into a deferral. Keys are
 * bounded (a nexthop longer than 300 bytes is looked up as given only).
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
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

/* 1 found and parsed (the entry in *entry_r when not NULL), 0 not
 * found, -1 lookup error, -2 bad value. */
static int
try_key(const char *key, tlspolicy_lookup_fn lookup, void *ctx, enum tls_level *lev,
    char **entry_r)
{
	char *v = NULL;
	int rc = lookup(ctx, key, &v);

	if (rc <= 0)
		return rc;
	rc = tls_level_parse(v, lev) == 0 ? 1 : -2;
	if (rc == 1 && entry_r != NULL)
		*entry_r = v;
	else
		free(v);
	return rc;
}

int
tlspolicy_find(const char *nexthop, enum tls_level def, tlspolicy_lookup_fn lookup,
    void *ctx, enum tls_level *lev, const char **why_r, char **entry_r)
{
	char *key, *host = NULL, *p;
	int rc;

	*lev = def;
	*why_r = "";
	if (entry_r != NULL)
		*entry_r = NULL;
	if (lookup == NULL || nexthop == NULL || *nexthop == '\0')
		return 0;
	key = str_lower(xstrdup(nexthop));
	rc = try_key(key, lookup, ctx, lev, entry_r);
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
			rc = try_key(host, lookup, ctx, lev, entry_r);
		/* Parent domains, as ".parent"; not for address literals. */
		if (rc == 0) {
			const char *h = host != NULL ? host : key;

			if (strspn(h, "0123456789.") != strlen(h) && strchr(h, ':') == NULL) {
				for (p = strchr(h, '.'); rc == 0 && p != NULL && p[1] != '\0';
				    p = strchr(p + 1, '.'))
					rc = try_key(p, lookup, ctx, lev, entry_r);
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

/* Protocol names in order; Postern offers the last two. */
static const char *const protocol_names[] = {
	"SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3",
};
#define NPROTO (sizeof(protocol_names) / sizeof(protocol_names[0]))
#define TOKEN_SEP " \t\r\n,:"

static int
protocol_index(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < NPROTO; i++)
		if (strlen(protocol_names[i]) == n &&
		    strncasecmp(protocol_names[i], name, n) == 0)
			return (int)i;
	return -1;
}

int
tls_protocols_parse(const char *spec, unsigned *mask_r, const char **err_r)
{
	unsigned incl = 0, excl = 0, allowed;
	size_t lo = 0, hi = NPROTO - 1, n, i;
	const char *p = spec != NULL ? spec : "";
	int k;

	*mask_r = 0;
	for (;;) {
		p += strspn(p, TOKEN_SEP);
		if (*p == '\0')
			break;
		n = strcspn(p, TOKEN_SEP);
		if (n > 1 && p[0] == '!') {
			k = protocol_index(p + 1, n - 1);
			if (k >= 0)
				excl |= 1u << k;
		} else if (n > 2 && (p[0] == '>' || p[0] == '<') && p[1] == '=') {
			k = protocol_index(p + 2, n - 2);
			if (k >= 0 && p[0] == '>' && (size_t)k > lo)
				lo = (size_t)k;
			else if (k >= 0 && p[0] == '<' && (size_t)k < hi)
				hi = (size_t)k;
		} else {
			k = protocol_index(p, n);
			if (k >= 0)
				incl |= 1u << k;
		}
		if (k < 0) {
			*err_r = "unknown TLS protocol (SSLv2, SSLv3, TLSv1, TLSv1.1, "
			    "TLSv1.2 or TLSv1.3, with !, >= or <=)";
			return -1;
		}
		p += n;
	}
	allowed = incl != 0 ? incl : (1u << NPROTO) - 1;
	allowed &= ~excl;
	for (i = 0; i < NPROTO; i++)
		if (i < lo || i > hi)
			allowed &= ~(1u << i);
	if (allowed & (1u << 4))
		*mask_r |= TLS_VERS_12;
	if (allowed & (1u << 5))
		*mask_r |= TLS_VERS_13;
	if (*mask_r == 0) {
		*err_r = "no protocol left that Postern speaks (TLSv1.2, TLSv1.3)";
		return -1;
	}
	return 0;
}

static const char *const cipher_grades[] = {
	"high", "medium", "low", "export", "null",
};

/* tls_<grade>_cipherlist less every cipher or type named in the side's
 * exclude list(s) and in extra: 0 and *list_r, or -1 for an unknown
 * grade. Exclusions go last, so nothing the grade lists brings them
 * back. */
static int
build_ciphers(const char *side, int mandatory, tls_param_fn get,
    const void *arg, const char *grade, const char *extra, char **list_r)
{
	struct buf b = BUF_INIT(0);
	const char *excl[3] = { NULL, NULL, extra }, *v;
	char name[64];
	size_t i, n;

	*list_r = NULL;
	for (i = 0; i < sizeof(cipher_grades) / sizeof(cipher_grades[0]); i++)
		if (strcasecmp(grade, cipher_grades[i]) == 0)
			break;
	if (i == sizeof(cipher_grades) / sizeof(cipher_grades[0]))
		return -1;
	snprintf(name, sizeof(name), "tls_%s_cipherlist", cipher_grades[i]);
	buf_puts(&b, get(name, arg));
	snprintf(name, sizeof(name), "%s_tls_exclude_ciphers", side);
	excl[0] = get(name, arg);
	if (mandatory) {
		snprintf(name, sizeof(name), "%s_tls_mandatory_exclude_ciphers", side);
		excl[1] = get(name, arg);
	}
	for (i = 0; i < 3; i++)
		for (v = excl[i]; v != NULL && *(v += strspn(v, TOKEN_SEP)) != '\0'; v += n) {
			n = strcspn(v, TOKEN_SEP);
			buf_printf(&b, ":!%.*s", (int)n, v);
		}
	*list_r = buf_steal(&b);
	return 0;
}

int
tls_settings_get(const char *side, int mandatory, tls_param_fn get,
    const void *arg, struct tls_settings *t, char **err_r)
{
	const char *m = mandatory ? "mandatory_" : "", *v, *err = NULL;
	char name[64];

	t->versions = 0;
	t->ciphers = NULL;
	*err_r = NULL;
	snprintf(name, sizeof(name), "%s_tls_%sprotocols", side, m);
	v = get(name, arg);
	if (tls_protocols_parse(v, &t->versions, &err) < 0) {
		*err_r = xasprintf("%s = %s: %s", name, v, err);
		return -1;
	}
	snprintf(name, sizeof(name), "%s_tls_%sciphers", side, m);
	v = get(name, arg);
	if (build_ciphers(side, mandatory, get, arg, v, NULL, &t->ciphers) < 0) {
		*err_r = xasprintf("%s = %s: unknown cipher grade (high, medium, "
		    "low, export or null)", name, v);
		return -1;
	}
	return 0;
}

int
tls_settings_policy(const char *entry, int mandatory, tls_param_fn get,
    const void *arg, struct tls_settings *t, char **err_r)
{
	const char *p = entry, *err = NULL;
	char name[64], *word, *grade = NULL, *excl = NULL;
	size_t n;
	int rc = 0;

	*err_r = NULL;
	p += strspn(p, " \t");
	p += strcspn(p, " \t");                /* the level */
	while (rc == 0 && *(p += strspn(p, " \t")) != '\0') {
		n = strcspn(p, " \t");
		word = xstrndup(p, n);
		p += n;
		if (strncasecmp(word, "protocols=", 10) == 0 &&
		    tls_protocols_parse(word + 10, &t->versions, &err) < 0) {
			*err_r = xasprintf("%s: %s", word, err);
			rc = -1;
		} else if (strncasecmp(word, "ciphers=", 8) == 0) {
			free(grade);
			grade = xstrdup(word + 8);
		} else if (strncasecmp(word, "exclude=", 8) == 0) {
			free(excl);
			excl = xstrdup(word + 8);
		}
		free(word);
	}
	if (rc == 0 && (grade != NULL || excl != NULL)) {
		char *list = NULL;

		if (grade == NULL) {
			snprintf(name, sizeof(name), "smtp_tls_%sciphers",
			    mandatory ? "mandatory_" : "");
			grade = xstrdup(get(name, arg));
		}
		if (build_ciphers("smtp", mandatory, get, arg, grade, excl, &list) < 0) {
			*err_r = xasprintf("ciphers=%s: unknown cipher grade (high, "
			    "medium, low, export or null)", grade);
			rc = -1;
		} else {
			free(t->ciphers);
			t->ciphers = list;
		}
	}
	free(grade);
	free(excl);
	return rc;
}

void
tls_settings_free(struct tls_settings *t)
{
	xfree(&t->ciphers);
}
