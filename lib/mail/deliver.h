/*
 * deliver - the request qmgr sends a delivery agent (local, virtual, smtp)
 * and the agent's reply, over one UNIX stream connection to
 * <queue_directory>/private/<transport>, one request per connection, in
 * ipc frames.
 *
 * The agent opens the queue file itself (<qdir>/active/<id>), holds
 * flock(LOCK_SH) while delivering, marks each recipient it delivered 'D'
 * in the queue file as soon as that recipient is durable, and answers one
 * result per recipient. Recipients it could not report (agent crash) are
 * deferred by qmgr.
 *
 * Logging: an agent logs each recipient's status line itself (dlvlog.h)
 * and flags the result "logged"; qmgr logs only results without the flag
 * and outcomes no agent reported.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stddef.h>
#include <sys/types.h>
#include "util/ipc.h"

struct dlv_rcpt {
	char *addr;
	char *orig;
	char *notify;
	long long offset;     /* status byte offset in the queue file: the key */
};

struct dlv_request {
	char *queue_id;
	char *queue_dir;      /* "active" */
	char *sender;
	char *transport;      /* "local", "virtual", "smtp" */
	char *nexthop;        /* the recipients' domain, or relayhost */
	long long arrival;    /* seconds, for delay= in logs */
	struct dlv_rcpt *rcpts;
	size_t nrcpt;
	/* Optional stamps in microseconds since the epoch, 0 = unknown, for
	 * the delays= part of the agents' status lines (dlvlog.h). */
	long long arrival_us; /* the queue file's arrival, exact */
	long long active_us;  /* qmgr activated the message */
	long long handoff_us; /* qmgr connected to the agent */
	/* Set by local for mailbox_transport (Postfix deliver_pass): each
	 * recipient's offset names the queue recipient local is expanding and
	 * addr is the local user it came to (it may differ after aliases).
	 * The agent delivers and reports but does not mark the queue file:
	 * local marks the queue recipient when all of its copies are done. */
	int pass;
	/* qmgr has more mail for this destination queued or in flight
	 * (Postfix's "backlog" that turns on-demand connection caching on). */
	int backlog;
};

/* status: 2 delivered, 4 deferred, 5 bounced. */
struct dlv_result {
	long long offset;
	int status;
	char *dsn;            /* "2.0.0", "4.2.2", "5.1.1" */
	char *relay;          /* "local", "127.0.0.2[127.0.0.2]:25", "none" */
	char *text;           /* human text for the log / bounce report */
	int logged;           /* the agent logged the status line itself */
};

/* soft_bounce = yes: a permanent failure (5, 5.x.x) becomes a temporary
 * one (4, 4.x.x), so the mail stays queued (Postfix's safety net).
 * Returns whether it changed res. */
int dlv_result_soften(struct dlv_result *res);

/* Decoders fail closed on any malformed or unknown attribute; *err_r is
 * xmalloc'd (caller frees). Encoders replace TAB/CR/LF in fields with
 * spaces (text, the last field of a result, is kept as is). */
void dlv_request_encode(const struct dlv_request *r, struct ipc_msg *m);
int dlv_request_decode(const struct ipc_msg *m, struct dlv_request *r, char **err_r);
void dlv_request_free(struct dlv_request *r);

/* cache_s > 0 (the "cache" attribute): the agent kept its session with
 * the destination and takes another request for the same transport and
 * nexthop on this connection for up to cache_s seconds; qmgr may hold the
 * connection that long (smtp connection caching). 0: one request only. */
void dlv_results_encode(const struct dlv_result *res, size_t n, int cache_s,
    struct ipc_msg *m);
int dlv_results_decode(const struct ipc_msg *m, struct dlv_result **res_r,
    size_t *n_r, int *cache_s_r, char **err_r);
void dlv_results_free(struct dlv_result *res, size_t n);

/* The agent side of one connection: read the request, call deliver(),
 * send one result per recipient. deliver() gets the connection (for
 * dlv_peer_gone) and fills res[0..nrcpt). Failures are logged. */
typedef void (*dlv_deliver_fn)(int peer, const struct dlv_request *req,
    struct dlv_result *res);
/* keep (NULL: never), after each delivery: the seconds qmgr may park the
 * connection for the next request ("cache"), or 0 to end it. While it
 * says more than 0, dlv_serve waits for that request (qmgr's time plus a
 * margin, in case qmgr forgets us) and serves it on the same connection:
 * smtp's kept sessions, and local's bursts (one connect per burst, not
 * one per message with a wake-up of every idle agent process). */
typedef int (*dlv_keep_fn)(const struct dlv_request *req);
void dlv_serve(int fd, dlv_deliver_fn deliver, dlv_keep_fn keep);

/* Has qmgr closed its end of this request's connection? An agent checks
 * after locking the queue file and before each delivery: a request left in
 * the listen backlog by a qmgr that died must not be served, because the
 * next qmgr has already handed out the same recipients again. */
int dlv_peer_gone(int fd);

#endif
