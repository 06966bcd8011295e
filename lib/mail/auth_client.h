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

#include "util/loop.h"

enum auth_status { AUTH_OK, AUTH_FAIL, AUTH_TEMPFAIL };

struct auth_request {
	const char *service;      /* "smtpd" */
	const char *mechanism;    /* "PLAIN", for the log */
	const char *user;         /* authcid */
	const char *authzid;      /* may be NULL or "" */
	const char *password;
	const char *client_addr;
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

#endif
