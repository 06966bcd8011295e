/*
 * tls - a thin OpenSSL layer (see tls.h).
 *
 * Client contexts verify with SSL_VERIFY_NONE plus a recorded result: the
 * policy (may/encrypt/verify) is the caller's decision, made after the
 * handshake from tls_peer_verified(). Host-name checking uses
 * SSL_set1_host, so a valid chain for the wrong name is not "verified".
 * Renegotiation is off for servers; compression is off everywhere.
 *
 * Resumption. Servers issue TLS 1.3 tickets and keep TLS 1.2 sessions
 * (OpenSSL's internal server cache, tickets on) under one session ID
 * context, so a returning client skips the certificate exchange. Client
 * contexts may keep sessions in memory (tls_client_session_cache()),
 * keyed by the caller: OpenSSL hands each new session (a TLS 1.3 ticket
 * arrives after the handshake, with the first read) to new_session(),
 * which files it under the connection's key; tls_client_new() offers the
 * saved one if it has not expired. A session carries the verification
 * result of its full handshake, so a resumed connection is "Trusted"
 * exactly when the first one was.
 *
 * Servers given the shared key file (tls_server_ticket_keys(), written
 * by master, util/tlskeys.h) encrypt tickets with its current key and
 * accept the current and previous ones, through OpenSSL's ticket key
 * callback, so a ticket resumes on any process of the same master; a
 * ticket under the previous key is accepted and replaced by a new one.
 *
 * Limits: the description string is bounded (128 bytes). The client cache
 * is per process and at most TLS_SESSION_CACHE_MAX keys. Without the key
 * file the server's ticket keys are OpenSSL's, random per process, and
 * TLS 1.2 session IDs are always per process (only tickets are shared).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>
#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/alloc.h"
#include "util/tls.h"
#include "util/tlskeys.h"

struct tls_sess {
	char *key;
	SSL_SESSION *sess;
	time_t expires;
	struct tls_sess *next;  /* newest first */
};

struct tls_ctx {
	SSL_CTX *ssl;
	int server;
	int cache_timeout;      /* client: seconds a session is kept, 0 off */
	struct tls_sess *cache;
	size_t ncache;
	struct tlskeys *keys;   /* server: shared ticket keys, or NULL */
};

struct tls_conn {
	SSL *ssl;
	struct tls_ctx *ctx;
	int fd;
	int server;
	int up;                 /* handshake completed */
	int named;              /* a host name check was requested */
	char *session_key;      /* client: where its sessions are filed */
	char desc[128];
	char err[256];
};

/* The id servers put in their sessions: a session is resumed only under
 * the same context. */
static const unsigned char sid_ctx[] = "postern";

static char *
ssl_errtext(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e == 0)
		return xasprintf("%s failed", what);
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return xasprintf("%s: %s", what, buf);
}

static SSL_CTX *
ctx_base(int server, char **err_r)
{
	SSL_CTX *s;

	s = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (s == NULL) {
		*err_r = ssl_errtext("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
	SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION);
	/* The caller does partial writes and retries with the same buffer
	 * only as long as needed; allow it to move. */
	SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return s;
}

struct tls_ctx *
tls_client_ctx_new(const char *cafile, const char *capath, char **err_r)
{
	struct tls_ctx *c;
	SSL_CTX *s;

	*err_r = NULL;
	if ((s = ctx_base(0, err_r)) == NULL)
		return NULL;
	if (SSL_CTX_set_default_verify_paths(s) != 1) {
		/* No CA store: everything is "Untrusted", verify fails. */
		ERR_clear_error();
	}
	if (cafile != NULL && *cafile != '\0' &&
	    SSL_CTX_load_verify_locations(s, cafile, NULL) != 1) {
		*err_r = ssl_errtext(cafile);
		SSL_CTX_free(s);
		return NULL;
	}
	/* A hashed directory (openssl rehash): OpenSSL reads its files as
	 * certificates are looked up, so a wrong one is not noticed here;
	 * verification fails instead, never weaker. */
	if (capath != NULL && *capath != '\0' &&
	    SSL_CTX_load_verify_locations(s, NULL, capath) != 1) {
		*err_r = ssl_errtext(capath);
		SSL_CTX_free(s);
		return NULL;
	}
	SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
	/* Off until tls_client_session_cache(); then new_session() files
	 * them, never OpenSSL's own store. */
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	c = xcalloc(1, sizeof(*c));
	c->ssl = s;
	return c;
}

static void
sess_free(struct tls_sess *e)
{
	SSL_SESSION_free(e->sess);
	free(e->key);
	free(e);
}

/* The entry for key, unlinked (NULL if none). */
static struct tls_sess *
cache_take(struct tls_ctx *ctx, const char *key)
{
	struct tls_sess **pp, *e;

	for (pp = &ctx->cache; (e = *pp) != NULL; pp = &e->next)
		if (strcmp(e->key, key) == 0) {
			*pp = e->next;
			ctx->ncache--;
			return e;
		}
	return NULL;
}

/* OpenSSL's new-session callback (client): file it under the key of the
 * connection that got it, replacing the one before. 1: we keep it. */
static int
new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	struct tls_sess *e, **pp;

	if (c == NULL || c->session_key == NULL || c->ctx->cache_timeout <= 0 ||
	    !SSL_SESSION_is_resumable(sess))
		return 0;
	e = cache_take(c->ctx, c->session_key);
	if (e != NULL)
		sess_free(e);
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(c->session_key);
	e->sess = sess;
	e->expires = time(NULL) + c->ctx->cache_timeout;
	e->next = c->ctx->cache;
	c->ctx->cache = e;
	if (++c->ctx->ncache > TLS_SESSION_CACHE_MAX) {
		/* Drop the oldest (the list's end). */
		for (pp = &c->ctx->cache; (*pp)->next != NULL; pp = &(*pp)->next)
			;
		sess_free(*pp);
		*pp = NULL;
		c->ctx->ncache--;
	}
	return 1;
}

void
tls_client_session_cache(struct tls_ctx *ctx, int timeout_s)
{
	if (ctx == NULL || ctx->server)
		return;
	ctx->cache_timeout = timeout_s > 0 ? timeout_s : 0;
	if (ctx->cache_timeout > 0) {
		SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx->ssl, new_session);
	} else {
		SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
	}
}

struct tls_ctx *
tls_server_ctx_new(const char *cert_file, const char *key_file, char **err_r)
{
	struct tls_ctx *c;
	SSL_CTX *s;

	*err_r = NULL;
	if (cert_file == NULL || *cert_file == '\0' || key_file == NULL ||
	    *key_file == '\0') {
		*err_r = xasprintf("no certificate or key file configured");
		return NULL;
	}
	if ((s = ctx_base(1, err_r)) == NULL)
		return NULL;
	SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Resumption: sessions (TLS 1.2) and tickets (both versions) are
	 * issued under one context; OpenSSL's defaults do the rest. */
	if (SSL_CTX_set_session_id_context(s, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
		*err_r = ssl_errtext("session id context");
		SSL_CTX_free(s);
		return NULL;
	}
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_SERVER);
	/* Without a group OpenSSL offers no DHE cipher at all; Postfix and
	 * Dovecot have one built in, so a TLS 1.2 client limited to DHE is
	 * served by them: an RFC 7919 group as strong as the key. */
	SSL_CTX_set_dh_auto(s, 1);
	if (SSL_CTX_use_certificate_chain_file(s, cert_file) != 1) {
		*err_r = ssl_errtext(cert_file);
		SSL_CTX_free(s);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(s, key_file, SSL_FILETYPE_PEM) != 1) {
		*err_r = ssl_errtext(key_file);
		SSL_CTX_free(s);
		return NULL;
	}
	if (SSL_CTX_check_private_key(s) != 1) {
		*err_r = ssl_errtext("certificate and key do not match");
		SSL_CTX_free(s);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->ssl = s;
	c->server = 1;
	SSL_CTX_set_app_data(s, c);
	return c;
}

int
tls_server_dh(struct tls_ctx *ctx, const char *file, char **err_r)
{
	EVP_PKEY *pk;
	BIO *b;

	*err_r = NULL;
	if (file == NULL || *file == '\0' || strcasecmp(file, "auto") == 0)
		return 0;   /* tls_server_ctx_new() chose auto */
	if ((b = BIO_new_file(file, "r")) == NULL) {
		*err_r = ssl_errtext(file);
		return -1;
	}
	pk = PEM_read_bio_Parameters(b, NULL);
	BIO_free(b);
	if (pk == NULL || (!EVP_PKEY_is_a(pk, "DH") && !EVP_PKEY_is_a(pk, "DHX"))) {
		EVP_PKEY_free(pk);
		ERR_clear_error();
		*err_r = xasprintf("%s: no DH parameters in it (PEM \"BEGIN DH "
		    "PARAMETERS\", as openssl dhparam writes)", file);
		return -1;
	}
	/* auto would take precedence over the file. OpenSSL checks the
	 * size against its security level here. */
	SSL_CTX_set_dh_auto(ctx->ssl, 0);
	if (SSL_CTX_set0_tmp_dh_pkey(ctx->ssl, pk) != 1) {
		EVP_PKEY_free(pk);
		*err_r = ssl_errtext(file);
		return -1;
	}
	return 0;
}

/*
 * OpenSSL's ticket key callback (RFC 5077 layout: key name, IV,
 * AES-256-CBC, HMAC-SHA256). enc: fill in the current key. Otherwise 0
 * for an unknown name (full handshake), else 1 (accept) or 2 (accept and
 * issue a new ticket under the current key).
 */
static int
ticket_key_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const struct tlskey *key;
	OSSL_PARAM params[3];
	int prev = 0;

	if (ctx == NULL || ctx->keys == NULL)
		return -1;
	tlskeys_advance(ctx->keys, time(NULL));
	if (enc) {
		key = &ctx->keys->cur;
		memcpy(name, key->name, TLSKEYS_NAME_LEN);
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1 ||
		    EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key->aes, iv) != 1)
			return -1;
	} else {
		key = tlskeys_find(ctx->keys, name, &prev);
		if (key == NULL)
			return 0;
		if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key->aes, iv) != 1)
			return -1;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)key->mac, sizeof(key->mac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	/* Decrypting: 2 ("renew") for TLS 1.3 and for the previous key, else
	 * 1. Found by test_conn's alternating servers with OpenSSL 3.0: in
	 * TLS 1.3 with 1, the ticket issued after a resumed handshake never
	 * resumed; in TLS 1.2 with 2, the renewed ticket did not either (so
	 * a TLS 1.2 client has one full handshake per key rotation). */
	if (enc)
		return 1;
	return prev || SSL_version(ssl) >= TLS1_3_VERSION ? 2 : 1;
}

int
tls_server_ticket_keys(struct tls_ctx *ctx, const char *path, char **err_r)
{
	char text[TLSKEYS_TEXT_MAX + 1];
	struct tlskeys *k;
	struct stat st;
	const char *why;
	ssize_t n;
	int fd;

	*err_r = NULL;
	if (ctx == NULL || !ctx->server)
		return -1;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		*err_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	/* data_directory belongs to mail_owner: a file anyone but us could
	 * have written, or anyone else could read, is not a secret. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		close(fd);
		*err_r = xasprintf("%s: not a regular file of uid %d with mode 0600",
		    path, (int)geteuid());
		return -1;
	}
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0) {
		*err_r = xasprintf("read %s: %s", path, strerror(errno));
		return -1;
	}
	k = xcalloc(1, sizeof(*k));
	if (tlskeys_parse(text, (size_t)n, k, &why) < 0) {
		OPENSSL_cleanse(text, sizeof(text));
		free(k);
		*err_r = xasprintf("%s: %s", path, why);
		return -1;
	}
	OPENSSL_cleanse(text, sizeof(text));
	tlskeys_advance(k, time(NULL));
	if (ctx->keys != NULL) {
		tlskeys_wipe(ctx->keys);
		free(ctx->keys);
	}
	ctx->keys = k;
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx->ssl, ticket_key_cb) != 1) {
		*err_r = ssl_errtext("ticket key callback");
		return -1;
	}
	return 0;
}

void
tls_server_session_timeout(struct tls_ctx *ctx, int timeout_s)
{
	if (ctx == NULL || !ctx->server)
		return;
	if (timeout_s <= 0) {
		/* Postfix: 0 turns off the cache and tickets alike. */
		SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx->ssl, 0);
		SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
		return;
	}
	SSL_CTX_set_timeout(ctx->ssl, timeout_s);
}

void
tls_ctx_free(struct tls_ctx **c)
{
	struct tls_sess *e;

	if (*c == NULL)
		return;
	while ((e = (*c)->cache) != NULL) {
		(*c)->cache = e->next;
		sess_free(e);
	}
	SSL_CTX_free((*c)->ssl);
	if ((*c)->keys != NULL) {
		tlskeys_wipe((*c)->keys);
		free((*c)->keys);
	}
	xfree(c);
}

static int
versions_range(unsigned versions, int *min, int *max, char **err_r)
{
	if (versions == 0 || (versions & ~(TLS_VERS_12 | TLS_VERS_13)) != 0) {
		*err_r = xasprintf("no TLS version to offer");
		return -1;
	}
	*min = (versions & TLS_VERS_12) ? TLS1_2_VERSION : TLS1_3_VERSION;
	*max = (versions & TLS_VERS_13) ? TLS1_3_VERSION : TLS1_2_VERSION;
	return 0;
}

/* On a context (sctx) or on one connection (ssl). */
static int
apply_settings(SSL_CTX *sctx, SSL *ssl, unsigned versions, const char *ciphers,
    char **err_r)
{
	int min, max;

	*err_r = NULL;
	if (versions_range(versions, &min, &max, err_r) < 0)
		return -1;
	if (sctx != NULL ? SSL_CTX_set_min_proto_version(sctx, min) != 1 ||
	    SSL_CTX_set_max_proto_version(sctx, max) != 1 :
	    SSL_set_min_proto_version(ssl, min) != 1 ||
	    SSL_set_max_proto_version(ssl, max) != 1) {
		*err_r = ssl_errtext("TLS versions");
		return -1;
	}
	if (ciphers != NULL && (sctx != NULL ? SSL_CTX_set_cipher_list(sctx, ciphers) :
	    SSL_set_cipher_list(ssl, ciphers)) != 1) {
		*err_r = ssl_errtext("TLS 1.2 cipher list");
		return -1;
	}
	return 0;
}

int
tls_ctx_settings(struct tls_ctx *ctx, unsigned versions, const char *ciphers,
    char **err_r)
{
	return apply_settings(ctx->ssl, NULL, versions, ciphers, err_r);
}

int
tls_conn_settings(struct tls_conn *c, unsigned versions, const char *ciphers,
    char **err_r)
{
	return apply_settings(NULL, c->ssl, versions, ciphers, err_r);
}

void
tls_ctx_max_tls12(struct tls_ctx *c)
{
	SSL_CTX_set_max_proto_version(c->ssl, TLS1_2_VERSION);
}

static int
is_addr_literal(const char *name)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1;
}

static struct tls_conn *
conn_new(struct tls_ctx *ctx, int fd)
{
	struct tls_conn *c;

	c = xcalloc(1, sizeof(*c));
	c->ssl = SSL_new(ctx->ssl);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
		ERR_clear_error();
		if (c->ssl != NULL)
			SSL_free(c->ssl);
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->ctx = ctx;
	c->server = ctx->server;
	SSL_set_app_data(c->ssl, c);
	return c;
}

/* Offer the session filed under key, unless it expired. */
static void
offer_session(struct tls_conn *c, const char *key)
{
	struct tls_ctx *ctx = c->ctx;
	struct tls_sess *e;

	c->session_key = xstrdup(key);
	e = cache_take(ctx, key);
	if (e == NULL)
		return;
	if (e->expires <= time(NULL) || !SSL_SESSION_is_resumable(e->sess)) {
		sess_free(e);
		return;
	}
	if (SSL_set_session(c->ssl, e->sess) != 1)
		ERR_clear_error();
	/* Put back: the server may not send a new one (TLS 1.2 with IDs). */
	e->next = ctx->cache;
	ctx->cache = e;
	ctx->ncache++;
}

struct tls_conn *
tls_client_new(struct tls_ctx *ctx, int fd, const char *peer_name,
    const char *session_key)
{
	struct tls_conn *c = conn_new(ctx, fd);

	if (c == NULL)
		return NULL;
	if (session_key != NULL && ctx->cache_timeout > 0)
		offer_session(c, session_key);
	if (peer_name != NULL && *peer_name != '\0') {
		if (!is_addr_literal(peer_name))
			SSL_set_tlsext_host_name(c->ssl, peer_name);
		if (SSL_set1_host(c->ssl, peer_name) == 1)
			c->named = 1;
		ERR_clear_error();
	}
	SSL_set_connect_state(c->ssl);
	return c;
}

struct tls_conn *
tls_server_new(struct tls_ctx *ctx, int fd)
{
	struct tls_conn *c = conn_new(ctx, fd);

	if (c != NULL)
		SSL_set_accept_state(c->ssl);
	return c;
}

void
tls_conn_free(struct tls_conn **cp)
{
	struct tls_conn *c = *cp;

	if (c == NULL)
		return;
	if (c->up)
		(void)SSL_shutdown(c->ssl);   /* one try; never wait for the peer */
	SSL_set_app_data(c->ssl, NULL);
	SSL_free(c->ssl);
	ERR_clear_error();
	free(c->session_key);
	xfree(cp);
}

/* Map an SSL_get_error() result. */
static int
ssl_result(struct tls_conn *c, int rc, const char *what)
{
	int e = SSL_get_error(c->ssl, rc);
	unsigned long q;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		q = ERR_get_error();
		if (q != 0) {
			ERR_error_string_n(q, c->err, sizeof(c->err));
		} else if (errno != 0) {
			snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(errno));
		} else {
			snprintf(c->err, sizeof(c->err), "%s: lost connection", what);
		}
		ERR_clear_error();
		return TLS_ERR;
	default:
		q = ERR_get_error();
		if (q != 0)
			ERR_error_string_n(q, c->err, sizeof(c->err));
		else
			snprintf(c->err, sizeof(c->err), "%s: TLS error %d", what, e);
		ERR_clear_error();
		return TLS_ERR;
	}
}

int
tls_handshake(struct tls_conn *c, char **err_r)
{
	int rc;

	*err_r = NULL;
	if (c->up)
		return 0;
	ERR_clear_error();
	errno = 0;
	rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		int alg = 0;
		int used = SSL_CIPHER_get_bits(SSL_get_current_cipher(c->ssl), &alg);

		c->up = 1;
		/* (used/algorithm bits), in Postfix's words. */
		snprintf(c->desc, sizeof(c->desc), "%s with cipher %s (%d/%d bits)",
		    tls_protocol(c), tls_cipher(c), used, alg);
		return 0;
	}
	rc = ssl_result(c, rc, "handshake");
	if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE)
		return rc;
	if (rc == 0)
		snprintf(c->err, sizeof(c->err), "handshake: connection closed");
	*err_r = xasprintf("TLS handshake failed: %s", c->err);
	return TLS_ERR;
}

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
tls_handshake_timeout(struct tls_conn *c, int timeout_ms, char **err_r)
{
	long long deadline = mono_ms() + timeout_ms;
	struct pollfd pfd;
	int rc, left;

	for (;;) {
		rc = tls_handshake(c, err_r);
		if (rc == 0)
			return 0;
		if (rc == TLS_ERR)
			return -1;
		left = (int)(deadline - mono_ms());
		if (left <= 0) {
			*err_r = xasprintf("TLS handshake timed out");
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = rc == TLS_WANT_READ ? POLLIN : POLLOUT;
		pfd.revents = 0;
		rc = poll(&pfd, 1, left);
		if (rc < 0 && errno != EINTR) {
			*err_r = xasprintf("TLS handshake: poll: %s", strerror(errno));
			return -1;
		}
	}
}

ssize_t
tls_read(struct tls_conn *c, void *p, size_t n)
{
	size_t got = 0;
	int rc;

	ERR_clear_error();
	errno = 0;
	rc = SSL_read_ex(c->ssl, p, n, &got);
	if (rc == 1)
		return (ssize_t)got;
	return ssl_result(c, rc, "read");
}

ssize_t
tls_write(struct tls_conn *c, const void *p, size_t n)
{
	size_t done = 0;
	int rc;

	if (n == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	rc = SSL_write_ex(c->ssl, p, n, &done);
	if (rc == 1)
		return (ssize_t)done;
	rc = ssl_result(c, rc, "write");
	if (rc == 0) {
		snprintf(c->err, sizeof(c->err), "write: connection closed");
		return TLS_ERR;
	}
	return rc;
}

size_t
tls_pending(const struct tls_conn *c)
{
	int n = SSL_pending(c->ssl);

	return n > 0 ? (size_t)n : 0;
}

const char *
tls_last_error(const struct tls_conn *c)
{
	return c->err[0] != '\0' ? c->err : "unknown TLS error";
}

int
tls_session_reused(const struct tls_conn *c)
{
	return c->up && SSL_session_reused(c->ssl) == 1;
}

const char *
tls_describe(const struct tls_conn *c)
{
	return c->up ? c->desc : "";
}

const char *
tls_protocol(const struct tls_conn *c)
{
	return SSL_get_version(c->ssl);
}

const char *
tls_cipher(const struct tls_conn *c)
{
	const char *n = SSL_get_cipher_name(c->ssl);

	return n != NULL ? n : "(none)";
}

int
tls_peer_has_cert(const struct tls_conn *c)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);

	if (x == NULL)
		return 0;
	X509_free(x);
	return 1;
}

int
tls_cipher_bits(const struct tls_conn *c)
{
	return SSL_get_cipher_bits(c->ssl, NULL);
}

int
tls_peer_cn(const struct tls_conn *c, int issuer, char *buf, size_t len)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	int n = -1;

	if (x != NULL) {
		X509_NAME *name = issuer ? X509_get_issuer_name(x)
		    : X509_get_subject_name(x);
		n = X509_NAME_get_text_by_NID(name, NID_commonName, buf, (int)len);
		X509_free(x);
	}
	/* A name that does not fit, or holds a NUL, is no name. */
	return n > 0 && (size_t)n < len && strlen(buf) == (size_t)n ? 0 : -1;
}

int
tls_peer_verified(const struct tls_conn *c)
{
	return c->up && tls_peer_has_cert(c) &&
	    SSL_get_verify_result(c->ssl) == X509_V_OK;
}

const char *
tls_verify_error(const struct tls_conn *c)
{
	long v;

	if (!c->up)
		return "no TLS session";
	if (!tls_peer_has_cert(c))
		return "no peer certificate";
	v = SSL_get_verify_result(c->ssl);
	if (v == X509_V_OK)
		return "";
	return X509_verify_cert_error_string(v);
}
