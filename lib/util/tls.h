/*
 * tls - OpenSSL for the SMTP client (STARTTLS) and servers (STARTTLS,
 * implicit TLS on 465/993/995). No mail knowledge.
 *
 * A tls_ctx is made once per process (client: system CA store, TLS >= 1.2;
 * server: certificate chain and key files). A tls_conn wraps one connected
 * socket, which the caller keeps owning (tls_conn_free does not close it).
 *
 * I/O comes in two styles on the same object:
 *  - event-loop style (servers): tls_handshake(), tls_read(), tls_write()
 *    never block on a non-blocking fd; they return TLS_WANT_READ or
 *    TLS_WANT_WRITE and the caller polls for that and calls again with the
 *    same arguments. After tls_read(), check tls_pending(): OpenSSL may
 *    hold decrypted bytes that poll() will not announce.
 *  - blocking with a timeout (the client): tls_handshake_timeout(),
 *    built on the former with poll().
 *
 * Invariants: the caller must discard any plaintext it buffered before
 * the handshake (STARTTLS injection); this module reads only through SSL.
 * Errors come back as text (*err_r xmalloc'd), with OpenSSL's queue
 * drained so one connection's error never shows up on the next.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>
#include <sys/types.h>

enum {
	TLS_ERR = -1,
	TLS_WANT_READ = -2,
	TLS_WANT_WRITE = -3,
};

struct tls_ctx;
struct tls_conn;

/* Client context: TLS 1.2 minimum, the system CA store (and cafile, a PEM
 * bundle, and capath, a hashed directory, when not NULL/""), peer
 * verification result recorded, never fatal in itself. */
struct tls_ctx *tls_client_ctx_new(const char *cafile, const char *capath,
    char **err_r);
/* Server context: PEM chain and key (files read now, before dropping
 * privileges), TLS 1.2 minimum. */
struct tls_ctx *tls_server_ctx_new(const char *cert_file, const char *key_file,
    char **err_r);
void tls_ctx_free(struct tls_ctx **ctx);
/* Server: the finite-field group for DHE (TLS 1.2 ciphers only). A new
 * server context has OpenSSL pick an RFC 7919 group as strong as the
 * certificate's key; file NULL, "" or "auto" keeps that, else a PEM
 * "DH PARAMETERS" file replaces it, read now; OpenSSL's security level
 * must accept it (Debian's: at least 2048 bits). 0, or -1 with *err_r. */
int tls_server_dh(struct tls_ctx *ctx, const char *file, char **err_r);
/* Server: issue and accept session tickets with the keys master keeps in
 * path (util/tlskeys.h), shared by every process that reads it. Read now,
 * while still root; the file must belong to the effective user with no
 * access for group or others. 0, or -1 with *err_r (the context keeps
 * OpenSSL's own keys, random per process). */
int tls_server_ticket_keys(struct tls_ctx *ctx, const char *path, char **err_r);
/* Server: how long a session (ticket or cache entry) may be resumed;
 * 0 turns off tickets and the session cache (Postfix's meaning). */
void tls_server_session_timeout(struct tls_ctx *ctx, int timeout_s);
/* The TLS versions a context or a connection offers and accepts, as a
 * mask (Postern has nothing below 1.2), and the cipher list for TLS 1.2
 * (OpenSSL's syntax; NULL keeps OpenSSL's default; TLS 1.3's suites are
 * not affected). A connection's settings are made before its handshake
 * and override its context's. 0, or -1 with *err_r. */
#define TLS_VERS_12 1u
#define TLS_VERS_13 2u
int tls_ctx_settings(struct tls_ctx *ctx, unsigned versions, const char *ciphers,
    char **err_r);
int tls_conn_settings(struct tls_conn *c, unsigned versions, const char *ciphers,
    char **err_r);
/* Offer or accept nothing above TLS 1.2 (tests of the TLS 1.2 paths). */
void tls_ctx_max_tls12(struct tls_ctx *ctx);

/* Client: keep sessions for resumption in this process's memory, each
 * for at most timeout_s seconds (0: off, the default), by the key given
 * to tls_client_new(). TLS 1.3 tickets and TLS 1.2 session IDs or
 * tickets alike; at most TLS_SESSION_CACHE_MAX keys (the oldest goes). */
#define TLS_SESSION_CACHE_MAX 1000
void tls_client_session_cache(struct tls_ctx *ctx, int timeout_s);

/* peer_name: client side, for SNI and the name check (may be NULL; an
 * address literal is not sent as SNI). session_key: with the session
 * cache on, the handshake offers the session saved under this key, and a
 * session the server issues is saved under it (NULL: neither). Callers
 * make the key name everything that must match for a session to be
 * trusted again (destination, server, policy). */
struct tls_conn *tls_client_new(struct tls_ctx *ctx, int fd, const char *peer_name,
    const char *session_key);
struct tls_conn *tls_server_new(struct tls_ctx *ctx, int fd);
/* Sends close_notify when the session is up (best effort, never blocks
 * long), frees; the fd stays open. */
void tls_conn_free(struct tls_conn **c);

/* One handshake step: 0 done, TLS_WANT_READ/WRITE, TLS_ERR (*err_r). */
int tls_handshake(struct tls_conn *c, char **err_r);
/* Whole handshake on a blocking or non-blocking fd; 0 or -1 (*err_r). */
int tls_handshake_timeout(struct tls_conn *c, int timeout_ms, char **err_r);

/* > 0 bytes, 0 orderly close by the peer, TLS_WANT_*, TLS_ERR. */
ssize_t tls_read(struct tls_conn *c, void *p, size_t n);
/* > 0 bytes written (may be short), TLS_WANT_*, TLS_ERR. */
ssize_t tls_write(struct tls_conn *c, const void *p, size_t n);
/* Decrypted bytes buffered inside OpenSSL. */
size_t tls_pending(const struct tls_conn *c);
/* Text of the last TLS_ERR from read/write (static buffer). */
const char *tls_last_error(const struct tls_conn *c);

/* After the handshake. */
/* The handshake resumed an earlier session (abbreviated handshake). */
int tls_session_reused(const struct tls_conn *c);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
const char *tls_describe(const struct tls_conn *c);
const char *tls_protocol(const struct tls_conn *c);
const char *tls_cipher(const struct tls_conn *c);
int tls_peer_has_cert(const struct tls_conn *c);
/* Secret bits of the negotiated cipher (the {cipher_bits} milter macro). */
int tls_cipher_bits(const struct tls_conn *c);
/* The common name of the peer certificate's subject (issuer: of its
 * issuer) into buf, for the {cert_subject}/{cert_issuer} milter macros.
 * 0, or -1 without a peer certificate or such a name. */
int tls_peer_cn(const struct tls_conn *c, int issuer, char *buf, size_t len);
/* Client: the chain verified against the CA store and the certificate
 * names peer_name. (Postfix: "Trusted" vs "Untrusted"/"Anonymous".) */
int tls_peer_verified(const struct tls_conn *c);
/* Why verification failed, "" when it did not. */
const char *tls_verify_error(const struct tls_conn *c);

#endif
