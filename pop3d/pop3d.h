/*
 * pop3d internals: the sessions of a worker (session.c, the RFC 1939
 * TRANSACTION and UPDATE states). The broker and the worker plumbing are
 * shared with imapd (store/postlogin.h).
 */
#ifndef POSTERN_POP3D_H
#define POSTERN_POP3D_H

#include <stdint.h>

#include "util/ipc.h"
#include "util/loop.h"

struct pop3d_conf {
	uint64_t timeout_ms;
	int hard_error_limit;
	const char *uidl_format;        /* pop3d_uidl_format */
};

extern struct pop3d_conf pop3d_conf;

/* session.c: a session handed over in m (user, rip, tls, mailbox path,
 * input) on the client (or proxy) socket fd, which it takes over. */
void session_start(struct loop *l, const struct ipc_msg *m, int fd);
int session_count(void);

#endif
