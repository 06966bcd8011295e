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
/* keep_s > 0: while qmgr says it has a backlog for the destination, the
 * reply offers the connection for the next request ("cache" = keep_s)
 * and we wait for it (dlv_wait_next()), at most server_use_another()
 * times: a burst of deliveries costs one connect and no wake-up of every
 * idle agent process per message. */
void dlv_serve(int fd, dlv_deliver_fn deliver, int keep_s);
/* Wait for qmgr's next request on a kept connection, qmgr's parking time
 * (cache_s) plus a margin in case qmgr forgets us: 1 readable (a request
 * or its EOF), 0 not within the limit. */
int dlv_wait_next(int fd, int cache_s);
/* The two halves of dlv_serve, for an agent that takes several requests
 * on one connection (smtp with connection caching). dlv_recv: 0 a
 * request, 1 the peer closed the connection before sending one (the
 * normal end), -1 error (logged). dlv_reply: 0 sent, -1 failed (logged). */
int dlv_recv(int fd, struct dlv_request *req);
int dlv_reply(int fd, const struct dlv_request *req, const struct dlv_result *res,
    int cache_s);

/* Has qmgr closed its end of this request's connection? An agent checks
 * after locking the queue file and before each delivery: a request left in
 * the listen backlog by a qmgr that died must not be served, because the
 * next qmgr has already handed out the same recipients again. */
int dlv_peer_gone(int fd);

#endif
