/*
 * tlspolicy - which TLS the SMTP client demands of a destination:
 * smtp_tls_security_level (default "may") and smtp_tls_policy_maps, as in
 * Postfix.
 *
 *   none     never STARTTLS
 *   may      STARTTLS when offered; carry on in plain text if it is not,
 *            no certificate check ("opportunistic")
 *   encrypt  STARTTLS required; no certificate check
 *   verify   STARTTLS required; the chain must verify against the system
 *            CA store and the certificate must name the MX host
 *            ("secure" is taken as verify; "dane"/"dane-only" as may/encrypt)
 *
 * Policy-table keys, tried in order (lower case): the nexthop as given
 * ("example.net", "[10.0.0.1]:2525"), the bare host of a nexthop with
 * brackets or a port, then each parent domain as ".parent" (".b.test",
 * ".test"). A value is the level, optionally followed by attributes in
 * Postfix form ("verify match=hostname") that are accepted and ignored.
 * Pure: the table is reached through a callback, so tests need no LMDB.
 */
#ifndef POSTERN_TLSPOLICY_H
#define POSTERN_TLSPOLICY_H

enum tls_level {
	TLS_LEV_NONE,
	TLS_LEV_MAY,
	TLS_LEV_ENCRYPT,
	TLS_LEV_VERIFY,
};

/* 0 and *lev, or -1 for an unknown level. Case-insensitive; leading
 * white space ignored; reads the first word only. */
int tls_level_parse(const char *s, enum tls_level *lev);
const char *tls_level_name(enum tls_level lev);

/* lookup: 1 found (*value_r xmalloc'd), 0 not found, -1 temporary error.
 * Returns 0 and *lev (the table's entry, or def when nothing matched),
 * -1 on a lookup error (*why_r static: "policy table lookup failed"),
 * -2 on a bad table value (*why_r static). The caller defers on both. */
typedef int (*tlspolicy_lookup_fn)(void *ctx, const char *key, char **value_r);
int tlspolicy_find(const char *nexthop, enum tls_level def,
    tlspolicy_lookup_fn lookup, void *ctx, enum tls_level *lev,
    const char **why_r);

#endif
