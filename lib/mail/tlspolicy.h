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
 * Postfix form: protocols=, ciphers= and exclude= are applied
 * (tls_settings_policy()), the others ("verify match=hostname") are
 * accepted and ignored.
 * Pure: the table is reached through a callback, so tests need no LMDB.
 */
#ifndef POSTERN_TLSPOLICY_H
#define POSTERN_TLSPOLICY_H

#include "util/tls.h"

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
 * -2 on a bad table value (*why_r static). The caller defers on both.
 * entry_r (when not NULL) gets the table entry that matched, xmalloc'd
 * (NULL when none did), for tls_settings_policy(). */
typedef int (*tlspolicy_lookup_fn)(void *ctx, const char *key, char **value_r);
int tlspolicy_find(const char *nexthop, enum tls_level def,
    tlspolicy_lookup_fn lookup, void *ctx, enum tls_level *lev,
    const char **why_r, char **entry_r);

/* Postfix's TLS protocol list (smtpd_tls_protocols and the like):
 * names SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 separated by white
 * space, commas or colons; "!name" leaves one out, ">=name" and "<=name"
 * bound the range, a bare name lists one to allow (then only the listed
 * ones are). Postern speaks nothing below TLS 1.2, so what is left is a
 * mask of TLS_VERS_12 and TLS_VERS_13 (util/tls.h). 0, or -1 with *err_r
 * (static text) for an unknown name or when neither version is left. */
int tls_protocols_parse(const char *spec, unsigned *mask_r, const char **err_r);

/* The Postfix TLS settings of one side, "smtpd" or "smtp", for mandatory
 * TLS (encrypt and up) or opportunistic TLS: the versions from
 * <side>_tls_[mandatory_]protocols, and the TLS 1.2 cipher list:
 * tls_<grade>_cipherlist for the grade <side>_tls_[mandatory_]ciphers
 * (high, medium, low, export, null), less each cipher or type named in
 * <side>_tls_exclude_ciphers and, for mandatory TLS, in
 * <side>_tls_mandatory_exclude_ciphers. get reads a parameter's value
 * (config_str, or a master.conf service's -o override first). 0, or -1
 * with *err_r (allocated, naming the parameter). */
struct tls_settings {
	unsigned versions;
	char *ciphers;
};
typedef const char *(*tls_param_fn)(const char *name, const void *arg);
int tls_settings_get(const char *side, int mandatory, tls_param_fn get,
    const void *arg, struct tls_settings *t, char **err_r);
void tls_settings_free(struct tls_settings *t);
/* A policy table entry's protocols=, ciphers= (a grade) and exclude=
 * attributes (Postfix's; lists separated by colons), over t, which holds
 * the smtp_tls_[mandatory_]* settings of the entry's level: 0, or -1
 * with *err_r (allocated) for a bad protocol list or grade. The
 * other attributes (match=, ...) are not read here. */
int tls_settings_policy(const char *entry, int mandatory, tls_param_fn get,
    const void *arg, struct tls_settings *t, char **err_r);

#endif
