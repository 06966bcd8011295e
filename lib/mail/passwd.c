/*
 * passwd - verify and create "{SCHEME}hash" password entries with
 * libxcrypt's crypt_rn() and crypt_gensalt_rn().
 *
 * Invariants: a stored hash is only ever compared in constant time (in
 * its own length) against the output of crypt with that very hash as the
 * setting; a scheme/prefix mismatch, an unknown scheme, a hash libxcrypt
 * refuses or an error string from crypt ("*0", "*1") never matches. The
 * crypt work area, which holds password-derived state, is wiped after
 * every use.
 *
 * Trusts: the stored hash no more than the password (it comes from a
 * table root builds, but a bad line must not crash or match).
 *
 * Verify-only schemes, for hashes moved over from Dovecot, PostfixAdmin
 * or LDAP: MD5-CRYPT (and Dovecot's alias MD5) through libxcrypt, and the
 * base64 digests SHA/SHA256/SHA512 and salted SSHA/SSHA256/SSHA512
 * (digest, then salt) through OpenSSL, compared with CRYPTO_memcmp. New
 * hashes are never made with them; `postern user passwd` replaces one.
 *
 * Limits: hashes longer than CRYPT_OUTPUT_SIZE are malformed.
 * passwd_verify() is thread-safe (a work area per thread: auth's hashing
 * threads, auth/pool.c); passwd_dummy_verify() is once
 * passwd_dummy_prepare() ran (auth calls it before starting the threads).
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "proto/sasl.h"
#include "mail/passwd.h"

struct scheme {
	const char *name;
	const char *canon;
	const char *gen_prefix;   /* for crypt_gensalt_rn, and the prefix */
	unsigned long cost;       /* 0 = libxcrypt's default */
	int verify_only;          /* never used for a new hash */
};

static const struct scheme schemes[] = {
	{ "YESCRYPT", "YESCRYPT", "$y$", 0, 0 },
	{ "SHA512-CRYPT", "SHA512-CRYPT", "$6$", 0, 0 },
	{ "SHA256-CRYPT", "SHA256-CRYPT", "$5$", 0, 0 },
	{ "BLF-CRYPT", "BLF-CRYPT", "$2b$", 10, 0 },
	{ "BCRYPT", "BLF-CRYPT", "$2b$", 10, 0 },
	{ "MD5-CRYPT", "MD5-CRYPT", "$1$", 0, 1 },
	{ "MD5", "MD5-CRYPT", "$1$", 0, 1 },    /* Dovecot's name for it too */
	{ "CRYPT", "CRYPT", NULL, 0, 0 },
};

/* Digests as Dovecot and LDAP store them: base64 of the digest, and for
 * the salted ones the salt after it. */
static const struct digest_scheme {
	const char *name;
	const char *md;           /* OpenSSL's name */
	size_t len;
	int salted;
} digests[] = {
	{ "SHA", "SHA1", 20, 0 }, { "SHA1", "SHA1", 20, 0 },
	{ "SHA256", "SHA256", 32, 0 }, { "SHA512", "SHA512", 64, 0 },
	{ "SSHA", "SHA1", 20, 1 }, { "SSHA256", "SHA256", 32, 1 },
	{ "SSHA512", "SHA512", 64, 1 },
};

/* Is name[0..len) the scheme name want (in any case)? */
static int
name_is(const char *want, const char *name, size_t len)
{
	return strlen(want) == len && strncasecmp(want, name, len) == 0;
}

static const struct digest_scheme *
digest_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(digests); i++)
		if (name_is(digests[i].name, name, len))
			return &digests[i];
	return NULL;
}

static enum passwd_result
verify_digest(const struct digest_scheme *d, const char *password, const char *b64)
{
	struct buf raw = BUF_INIT(0), in = BUF_INIT(0);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const EVP_MD *type = EVP_get_digestbyname(d->md);
	enum passwd_result r = PASSWD_BAD_HASH;

	if (type != NULL && sasl_b64_decode(b64, strlen(b64), &raw, 1024) == 0 &&
	    (d->salted ? raw.len > d->len : raw.len == d->len)) {
		buf_puts(&in, password);
		(void)buf_append(&in, raw.data + d->len, raw.len - d->len);
		if (EVP_Digest(in.data, in.len, md, &mdlen, type, NULL) == 1 && mdlen == d->len)
			r = CRYPTO_memcmp(md, raw.data, d->len) == 0 ? PASSWD_OK : PASSWD_MISMATCH;
		OPENSSL_cleanse(in.data, in.len);
		OPENSSL_cleanse(md, sizeof(md));
	}
	buf_free(&in);
	buf_free(&raw);
	return r;
}

/* One per thread: auth verifies in several hashing threads at once. */
static _Thread_local struct crypt_data *work;

static const struct scheme *
scheme_lookup(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(schemes); i++)
		if (name_is(schemes[i].name, name, len))
			return &schemes[i];
	return NULL;
}

const char *
passwd_scheme_canon(const char *scheme)
{
	const struct scheme *s = scheme_lookup(scheme, strlen(scheme));

	return s != NULL && s->gen_prefix != NULL && !s->verify_only ? s->canon : NULL;
}

/* Does the crypt string fit the scheme's prefix? */
static int
prefix_ok(const struct scheme *s, const char *hash)
{
	if (strcmp(s->canon, "CRYPT") == 0)
		return hash[0] != '\0';
	if (strcmp(s->canon, "BLF-CRYPT") == 0)
		return hash[0] == '$' && hash[1] == '2' && hash[2] != '\0' &&
		    strchr("aby", hash[2]) != NULL && hash[3] == '$';
	return strncmp(hash, s->gen_prefix, strlen(s->gen_prefix)) == 0;
}

int
passwd_streq_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = la != lb;

	for (i = 0; i < lb; i++)
		diff |= (unsigned char)(b[i] ^ (i < la ? a[i] : 0));
	return diff == 0;
}

static struct crypt_data *
work_area(void)
{
	if (work == NULL)
		work = xcalloc(1, sizeof(*work));
	return work;
}

/* crypt password with setting; the result in the work area, or NULL. */
static const char *
run_crypt(const char *password, const char *setting)
{
	struct crypt_data *cd = work_area();
	const char *out;

	memset(cd, 0, sizeof(*cd));
	out = crypt_rn(password, setting, cd, (int)sizeof(*cd));
	if (out == NULL || out[0] == '*')
		return NULL;
	return out;
}

enum passwd_result
passwd_verify(const char *password, const char *stored)
{
	const struct scheme *s;
	const char *hash = stored, *end, *out;
	enum passwd_result r;

	if (password == NULL || stored == NULL)
		return PASSWD_BAD_HASH;
	if (stored[0] == '{') {
		end = strchr(stored, '}');
		if (end == NULL)
			return PASSWD_BAD_HASH;
		const struct digest_scheme *d = digest_lookup(stored + 1, (size_t)(end - stored - 1));

		if (d != NULL)
			return verify_digest(d, password, end + 1);
		s = scheme_lookup(stored + 1, (size_t)(end - stored - 1));
		hash = end + 1;
	} else
		s = scheme_lookup("CRYPT", 5);
	if (s == NULL || !prefix_ok(s, hash) || strlen(hash) >= CRYPT_OUTPUT_SIZE)
		return PASSWD_BAD_HASH;
	if (crypt_checksalt(hash) == CRYPT_SALT_INVALID)
		return PASSWD_BAD_HASH;
	out = run_crypt(password, hash);
	if (out == NULL)
		r = PASSWD_BAD_HASH;
	else
		r = passwd_streq_ct(out, hash) ? PASSWD_OK : PASSWD_MISMATCH;
	explicit_bzero(work, sizeof(*work));
	return r;
}

char *
passwd_hash(const char *password, const char *scheme, const char **err_r)
{
	const struct scheme *s;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *out;
	char *res;

	if (scheme == NULL)
		scheme = "YESCRYPT";
	s = scheme_lookup(scheme, strlen(scheme));
	if (s == NULL || s->gen_prefix == NULL || s->verify_only) {
		*err_r = "unknown password scheme (use YESCRYPT, SHA512-CRYPT, "
		    "SHA256-CRYPT or BLF-CRYPT)";
		return NULL;
	}
	if (password == NULL || *password == '\0') {
		*err_r = "empty password";
		return NULL;
	}
	/* libxcrypt's bcrypt default (5) is too cheap today; NULL rbytes =
	 * randomness from the OS */
	if (crypt_gensalt_rn(s->gen_prefix, s->cost, NULL, 0, setting,
	    (int)sizeof(setting)) == NULL) {
		*err_r = "crypt_gensalt failed (no random bytes?)";
		return NULL;
	}
	out = run_crypt(password, setting);
	if (out == NULL) {
		explicit_bzero(work, sizeof(*work));
		*err_r = "crypt failed";
		return NULL;
	}
	res = xasprintf("{%s}%s", s->canon, out);
	explicit_bzero(work, sizeof(*work));
	return res;
}

char *
passwd_field(const char *value)
{
	return xstrndup(value, strcspn(value, ":"));
}

/*
 * The dummy "hash" is a bare setting from crypt_gensalt ({YESCRYPT} with
 * libxcrypt's default cost and a random salt): verifying against it runs
 * the very same key derivation as a real yescrypt hash and never matches,
 * and making it costs no crypt work, so auth starts without burning a
 * hash or two before its first login.
 */
static char *dummy;

void
passwd_dummy_prepare(void)
{
	const struct scheme *s = scheme_lookup("YESCRYPT", 8);
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];

	if (dummy != NULL || s == NULL)
		return;
	if (crypt_gensalt_rn(s->gen_prefix, s->cost, NULL, 0, setting,
	    (int)sizeof(setting)) == NULL)
		return;
	dummy = xasprintf("{%s}%s", s->canon, setting);
}

void
passwd_dummy_verify(const char *password)
{
	passwd_dummy_prepare();
	if (dummy != NULL)
		(void)passwd_verify(password, dummy);
}
