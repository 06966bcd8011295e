/*
 * pop3-login internals: the pre-login session (login.c) and the
 * hand-off to the mailbox broker plus the TLS proxy (handoff.c).
 */
#ifndef POSTERN_POP3_LOGIN_H
#define POSTERN_POP3_LOGIN_H

#include "util/buf.h"
#include "util/conn.h"
#include "util/loop.h"
#include "mail/auth_client.h"
#include "proto/sasl.h"

enum plaintext_auth { PLAIN_NO, PLAIN_LOOPBACK, PLAIN_YES };

struct login_conf {
	struct tls_ctx *tls_ctx;       /* NULL: no STLS, no pop3s */
	int wrappermode;               /* pop3s: TLS from the first byte */
	enum plaintext_auth plaintext;
	int hard_error_limit;
	uint64_t timeout_ms;
	char *auth_path;               /* $queue_directory/private/auth */
	char *broker_path;             /* $queue_directory/private/pop3d */
};

extern struct login_conf login_conf;

struct lsess {
	struct loop *loop;
	struct conn *conn;
	int fd;
	char rip[64], lip[64];
	char *user;                    /* USER argument, awaiting PASS */
	struct sasl_server sasl;
	int sasl_active;
	const char *method;            /* "PLAIN", "LOGIN", "USER" (for the log) */
	struct auth_client *authc;
	int errors;
	int quit;
	int utf8;
};

/* Cancel, close (server_disconnect) and free; conn and fd may be gone. */
void lsess_free(struct lsess *s);

/* handoff.c: after AUTH_OK with a ticket. 0: the session now belongs to
 * the post-login process (s is freed); -1: *reply_r is the -ERR text. */
int handoff(struct lsess *s, const char *user, const char *ticket, const char **reply_r);
/* TLS proxies alive (they count as connections for the skeleton). */
int proxy_count(void);

#endif
