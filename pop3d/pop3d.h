/*
 * pop3d internals: the mailbox broker (broker.c, root, on private/pop3d),
 * the per-owner post-login worker (worker.c) and its sessions
 * (session.c, the RFC 1939 TRANSACTION and UPDATE states).
 */
#ifndef POSTERN_POP3D_H
#define POSTERN_POP3D_H

#include <stdint.h>

#include "util/ipc.h"
#include "util/loop.h"

struct pop3d_conf {
	uint64_t timeout_ms;
	int hard_error_limit;
};

extern struct pop3d_conf pop3d_conf;

/* broker.c: the SERVER_MULTI main of the broker. */
int broker_main(int argc, char **argv);
/* worker.c: "pop3d -W <master's arguments>", exec'd by the broker as the
 * mailbox owner with fd 3 its end of the control socket. */
int worker_main(int argc, char **argv);

/* session.c: a session handed over in m (user, rip, tls, mailbox path,
 * input) on the client (or proxy) socket fd, which it takes over. */
void session_start(struct loop *l, const struct ipc_msg *m, int fd);
int session_count(void);
/* A session ended; the worker may exit when it was the last one. */
void worker_session_gone(void);

#endif
