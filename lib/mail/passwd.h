/*
 * passwd - password hashes as Dovecot's passwd-file stores them:
 * "{SCHEME}hash", where hash is a crypt(3) string from libxcrypt.
 *
 *   {YESCRYPT}      $y$...          (the default for new hashes)
 *   {SHA512-CRYPT}  $6$...
 *   {SHA256-CRYPT}  $5$...
 *   {BLF-CRYPT}     $2b$ / $2y$ / $2a$...   ({BCRYPT} is an alias)
 *   {CRYPT}         any prefix libxcrypt accepts; also a hash without a
 *                   {SCHEME} prefix (Dovecot's passwd-file default)
 *
 * Scheme names are case-insensitive. A hash whose prefix does not match
 * its scheme is malformed. There is deliberately no {PLAIN}.
 *
 * Only the auth daemon and "postern user" use this module.
 */
#ifndef POSTERN_PASSWD_H
#define POSTERN_PASSWD_H

enum passwd_result {
	PASSWD_OK = 0,        /* the password matches */
	PASSWD_MISMATCH = 1,  /* it does not */
	PASSWD_BAD_HASH = -1, /* unknown scheme or malformed hash: never matches */
};

/* Verify password against stored ("{SCHEME}hash" or a bare crypt hash).
 * The comparison of the computed hash is constant-time. */
enum passwd_result passwd_verify(const char *password, const char *stored);

/* Hash a new password with scheme (NULL: "YESCRYPT") and fresh random
 * salt. Returns xmalloc'd "{SCHEME}hash", or NULL with *err_r (static). */
char *passwd_hash(const char *password, const char *scheme, const char **err_r);

/* The canonical name ("BLF-CRYPT" for "bcrypt") of a scheme that
 * passwd_hash can produce, or NULL. */
const char *passwd_scheme_canon(const char *scheme);

/* The password field of a passwd-file value "{SCHEME}hash[:uid:gid:...]":
 * everything up to the first ':'. xmalloc'd. */
char *passwd_field(const char *value);

/* Burn about the time of one verification with the default scheme, for
 * unknown users, so that timing does not tell whether a user exists. */
void passwd_dummy_verify(const char *password);
/* Make the dummy setting now (cheap: no crypt work); passwd_dummy_verify
 * is thread-safe after this. */
void passwd_dummy_prepare(void);

/* Constant-time (in the length of b) equality of two C strings. */
int passwd_streq_ct(const char *a, const char *b);

#endif
