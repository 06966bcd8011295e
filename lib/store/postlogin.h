/*
 * postlogin - the protocol-independent half of pop3d and imapd: the root
 * mailbox broker and the per-owner worker plumbing (postlogin.c). One
 * binary per protocol, two roles:
 *
 *   NAME -c DIR -n NAME -t unix -p ...   the broker: started by master
 *       as root (master.conf unpriv=n) on private/NAME; it never reads
 *       client bytes. The login process sends it a logged-in session (a
 *       login ticket and the client's socket); it trades the ticket with
 *       auth for the user, finds the mailbox owner (store/owner.h) and
 *       passes the socket to the worker of that owner's uid, starting one
 *       if needed.
 *   NAME -W <the same arguments>         a worker: exec'd by the broker
 *       already running as the mailbox owner (never root); it serves
 *       every session of that uid on one event loop (ops->session_start).
 *
 * Session frames a worker receives (with the client's descriptor):
 *   user= mailbox= mailbox_type=maildir|mbox [home=] [quota=] rip= lip= tls=
 *   method= [input=] [tag=]   (home: system users' home directory)
 */
#ifndef POSTERN_POSTLOGIN_H
#define POSTERN_POSTLOGIN_H

#include "util/ipc.h"
#include "util/loop.h"

struct postlogin_ops {
	const char *name;                    /* "pop3d": service and log name */
	/* Worker: after the configuration is loaded, before any session. */
	void (*worker_init)(struct loop *l);
	/* Worker: a session handed over in m on the client (or proxy)
	 * socket fd (non-blocking), which it takes over. */
	void (*session_start)(struct loop *l, const struct ipc_msg *m, int fd);
	int (*session_count)(void);
};

/* main() of both roles: the worker when argv[1] is "-W". */
int postlogin_main(int argc, char **argv, const struct postlogin_ops *ops);
/* Worker: a session ended; the worker may exit when it was the last one. */
void postlogin_session_gone(void);

#endif
