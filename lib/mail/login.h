/*
 * login - what the pre-login processes (pop3-login, imap-login) share and
 * no protocol shapes: their configuration (TLS context, plaintext policy,
 * limits, socket paths), the client's addresses, the plaintext-login
 * policy, the login request to auth (with a ticket), and the hand-off of
 * a logged-in session to its post-login broker with the TLS proxy that
 * stays behind (login.c). Each protocol keeps its own session struct with
 * a struct login_base inside and its own command parser.
 *
 * Parameters are "<prefix>_tls_cert_file", "<prefix>_tls_key_file",
 * "<prefix>_tls_wrappermode", "<prefix>_plaintext_auth",
 * "<prefix>_hard_error_limit" and "<prefix>_timeout" (pop3d_*, imapd_*),
 * plus "<prefix>_login_timeout" when the table has it.
 */
#ifndef POSTERN_LOGIN_H
#define POSTERN_LOGIN_H

#include <stdint.h>

#include "util/conn.h"
#include "util/loop.h"
#include "mail/auth_client.h"

enum plaintext_auth { PLAIN_NO, PLAIN_LOOPBACK, PLAIN_YES };

struct login_conf {
	const char *prefix;            /* "pop3d", "imapd" */
	struct tls_ctx *tls_ctx;       /* NULL: no STARTTLS, no implicit TLS */
	int wrappermode;               /* TLS from the first byte */
	enum plaintext_auth plaintext;
	int hard_error_limit;
	uint64_t timeout_ms;           /* pre-login idle timeout */
	char *auth_path;               /* $queue_directory/private/auth */
	char *broker_path;             /* $queue_directory/private/<broker> */
};

extern struct login_conf login_conf;

/* pre_init (still root: the key may be readable by root only). */
void login_conf_tls(const char *prefix);
/* post_init: the rest; broker is the post-login service name. */
void login_conf_load(const char *broker);

/* The protocol-independent part of a pre-login session. */
struct login_base {
	struct loop *loop;
	struct conn *conn;             /* NULL once handed off */
	int fd;                        /* -1 once handed off */
	char rip[64], lip[64];
	const char *method;            /* "PLAIN", "LOGIN" (static, for logs) */
	struct auth_client *authc;     /* a login being checked */
	char *tag;                     /* IMAP: the login command's tag, for the
	                                * post-login side's tagged OK (owned) */
	char *user;                    /* the name being tried, for the logs */
	int errors;                    /* bad commands and failed logins */
	int quit;                      /* LOGIN_QUIT_*: end once output is out */
};

enum { LOGIN_QUIT_ERRORS = 1, LOGIN_QUIT_LOGOUT = 2 };

/* Addresses, TCP_NODELAY; conn is the caller's to create. */
void login_base_init(struct login_base *b, struct loop *l, int fd);
/* The session's connection: in_max bytes of input, the login timeout, and
 * in wrapper mode the TLS handshake. 1: plaintext, greet now; 0: greet
 * when CONN_EV_TLS_UP comes. */
int login_conn_open(struct login_base *b, size_t in_max, conn_cb cb, void *ctx);
/* Cancel auth, free the conn and give the fd back (server_disconnect). */
void login_base_free(struct login_base *b);
int login_is_loopback(const char *addr);
/* May a password be sent on this connection now? */
int login_plaintext_ok(const struct login_base *b);
/* ", TLS" or "" for log lines. */
const char *login_tls_tag(const struct login_base *b);
/* The Dovecot-form failure line fail2ban matches (etc/fail2ban). */
void login_log_failed(const struct login_base *b, const char *user,
    const char *reason);

/* "Disconnected: why (no login, N errors): user=<u>, rip=A, lip=B[, TLS]". */
void login_disconnect_log(const struct login_base *b, const char *why);
/* One more bad command; at the hard error limit bye (a whole line) is
 * sent and the session ends once it is out. */
void login_count_error(struct login_base *b, const char *bye);
/* The events every pre-login session handles alike: a timeout (bye is
 * sent first), an error, EOF. 1: the session is over and logged; the
 * caller frees it. */
int login_conn_closed(struct login_base *b, unsigned ev, const char *bye);
/* After the commands ran: flush; 1 when the session is done (quit, and
 * its output is out), logged; the caller frees it. */
int login_done(struct login_base *b);

/* Ask auth (with a ticket); reading pauses until done() is called. */
void login_auth_start(struct login_base *b, const char *service, const char *user,
    const char *pass, const char *authzid, auth_done_fn done, void *ctx);

enum login_handoff_err { LOGIN_HO_INTERNAL = -1, LOGIN_HO_UNAVAILABLE = -2 };
/* After AUTH_OK with a ticket: give the session to the broker and log
 * "Login:". 0: b->conn and b->fd now belong to the post-login side or
 * the proxy (both NULL/-1 here); the caller frees the rest of its
 * session. < 0 (enum login_handoff_err): nothing changed hands. */
int login_handoff(struct login_base *b, const char *user, const char *ticket);
/* TLS proxies alive. */
int login_proxy_count(void);

#endif
