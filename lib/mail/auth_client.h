/*
 * auth_client - ask the auth daemon (auth/, on private/auth) to check a
 * user's password, without blocking the caller's event loop.
 *
 * The request and reply are ipc frames (util/ipc.h); see auth/auth.c for
 * the attributes. The done callback runs exactly once, always from a loop
 * callback (never inside auth_client_start), unless the request is
 * cancelled first; after it runs, the handle is gone (do not cancel it).
 * A connect failure, a timeout, a hang-up or a malformed reply is
 * AUTH_TEMPFAIL.
 */
#ifndef POSTERN_AUTH_CLIENT_H
#define POSTERN_AUTH_CLIENT_H

#include <sys/types.h>
#include "util/loop.h"

enum auth_status { AUTH_OK, AUTH_FAIL, AUTH_TEMPFAIL };

struct auth_request {
	const char *service;      /* "smtpd" */
	const char *mechanism;    /* "PLAIN", for the log */
	const char *user;         /* authcid */
	const char *authzid;      /* may be NULL or "" */
	const char *password;
	const char *client_addr;
	/* Ask for a login ticket: on success the reply's "ticket" attribute
	 * (auth_client_reply_get) names this login for a short while; the
	 * privileged mailbox broker redeems it with auth_ticket_redeem(), so
	 * a compromised login process cannot name a user it did not log in. */
	int want_ticket;
};

/* user: the canonical user name on AUTH_OK (borrowed for the call);
 * reason: text for the log. */
typedef void (*auth_done_fn)(void *ctx, enum auth_status status,
    const char *user, const char *reason);

struct auth_client;

/* socket_path: e.g. "$queue_directory/private/auth". The request is
 * copied (and the copy of the password wiped when sent). */
struct auth_client *auth_client_start(struct loop *l, const char *socket_path,
    const struct auth_request *req, int timeout_ms, auth_done_fn done,
    void *ctx);
void auth_client_cancel(struct auth_client **ac);
/* Inside a done callback only: an attribute of the auth daemon's reply
 * ("ticket"), borrowed for the callback; NULL elsewhere or if absent. */
const char *auth_client_reply_get(const char *name);
/* Blocking, for the broker: trade a ticket for the user name it was
 * issued for (once). 1 and *user_r (xmalloc'd), 0 unknown or expired,
 * -1 the auth service could not be asked. When expect_uid is not
 * (uid_t)-1, the socket's listener must have been made by root (master
 * binds it) or by that uid (SO_PEERCRED): a mail_owner process that
 * replaced the socket in private/ cannot answer for auth. */
int auth_ticket_redeem(const char *socket_path, const char *ticket, uid_t expect_uid,
    int timeout_ms, char **user_r);

#endif
