/*
 * qmgr - the queue manager's internal interfaces.
 *
 * Files: qmgr.c (main, triggers, timers, drain), qmgr_scan.c (startup
 * recovery, incoming/deferred scans, the leaky bucket), qmgr_message.c
 * (activating a message, per-recipient results, finishing: remove, bounce
 * or defer), qmgr_sched.c (transports, destinations, jobs, round robin),
 * qmgr_deliver.c (the client side of deliver.h), qmgr_bounce.c (bounce and
 * defer logs, queuing the notification).
 *
 * Ownership: a message (struct qmsg) lives from activation until it has
 * left active/ (removed or deferred); every job holds a reference on it.
 * A job belongs to its destination's queue until started, then to its
 * delivery. Destinations with no jobs and no deliveries are freed.
 */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "util/loop.h"
#include "mail/queue.h"

struct qmgr_conf {
	const char *queue_directory;
	const char *myhostname;
	char *double_bounce;             /* double_bounce_sender@myorigin */
	char *postmaster;                /* 2bounce_notice_recipient (@myorigin added) */
	int notify_2bounce;              /* notify_classes has 2bounce */
	long long active_limit;          /* qmgr_message_active_limit */
	long long rcpt_limit;            /* qmgr_message_recipient_limit */
	long long dest_concurrency;      /* default_destination_concurrency_limit */
	long long dest_initial;          /* initial_destination_concurrency */
	long long dest_rcpt_limit;       /* default_destination_recipient_limit */
	long long rate_delay;            /* default_destination_rate_delay, s */
	long long process_limit;         /* default_process_limit */
	long long max_lifetime;          /* maximal_queue_lifetime, s */
	long long bounce_lifetime;       /* bounce_queue_lifetime, s */
	long long delay_warning;         /* delay_warning_time, s; 0 = never */
	int soft_bounce;                 /* keep what would bounce queued */
	long long min_backoff;           /* minimal_backoff_time, s */
	long long max_backoff;           /* maximal_backoff_time, s */
	long long run_delay;             /* queue_run_delay, s */
	long long transport_retry;       /* transport_retry_time, s */
	long long command_time_limit;    /* s */
	long long bounce_size_limit;     /* octets of original returned in full */
};

extern struct qmgr_conf qconf;
extern struct loop *qmgr_loop;
extern int qmgr_draining;

/* A recipient's outcome in this pass, for the finish step. */
struct qrstate {
	char *why;          /* last deferral text (this pass), or NULL */
	char dsn[12];       /* and its status ("4.4.1") */
	int remark;         /* delivered: the agent marked it 'D'; qmgr repeats
	                     * that mark only if the file outlives this pass */
};

struct qmsg {
	char id[QUEUE_ID_MAX];
	struct qenv env;
	struct qrstate *rs;          /* env.nrcpt entries */
	struct timespec activated;
	int refs;                    /* jobs not yet finished */
	int routing;                 /* still creating jobs: do not finish */
	int finishing;               /* finish failed, retry timer pending */
	uint64_t retry_timer;
	size_t ndeferred;            /* recipients deferred this pass */
	struct qmsg *prev, *next;    /* all active messages */
};

struct qtransport;
struct qdest;

struct qjob {
	struct qmsg *msg;
	struct qdest *dest;
	size_t *idx;                 /* indexes into msg->env.rcpts */
	size_t n;
	struct qjob *next;           /* in the destination's queue */
};

/* qmgr.c */
/* Make sure the loop runs another iteration soon (feeding in slices). */
void qmgr_kick(void);
/* Called whenever work may have finished, during drain. */
void qmgr_check_drained(void);

/* qmgr_scan.c */
void qmgr_recover(void);
/* Remove temporaries in incoming/ whose writer is dead (unlocked, a few
 * seconds old; unreadable ones after an hour). Logged. */
void qmgr_clean_stale(void);
/* Ask for a scan: incoming (flush ignored) or deferred (flush: all due). */
void qmgr_scan_incoming(void);
void qmgr_scan_deferred(int flush);
/* Activate up to budget messages while below the active limit; returns
 * 1 when more could be done right away. */
int qmgr_feed(int budget);
/* Activate incoming/<id>, just committed by its writer, without a scan:
 * 1 done (or gone), 0 the caller asks for an incoming scan instead. */
int qmgr_take_incoming(const char *id);
/* Trigger requests ('I', "N<id>\n", 'D', 'F'/'A', 'W', 'K'): the names
 * are taken, the rest returned as QTRIG_* bits. */
#define QTRIG_INCOMING 1u
#define QTRIG_DEFERRED 2u
#define QTRIG_FLUSH 4u
#define QTRIG_WAKEUP 8u
#define QTRIG_KEEP 16u
unsigned qmgr_trigger_parse(const char *req, ssize_t n, size_t size, int *cut);

/* qmgr_message.c */
/* Open the resolver; fatal on failure. */
void qmsg_init(void);
size_t qmgr_active_count(void);
/* Recipients of all messages in memory. */
size_t qmgr_rcpt_count(void);
/* May another message be activated (message and recipient limits)? */
int qmgr_room(void);
/* Bring <from>/<id> into active/ and schedule it. */
void qmsg_activate(const char *from, const char *id);
/* Results of one delivery, in the job's order; status 2, 4 or 5. logged:
 * the agent already logged the status line (only the state changes). */
void qmsg_result(struct qmsg *m, size_t idx, int status, const char *dsn,
    const char *relay, const char *text, const struct timespec *start,
    const struct timespec *connected, int logged);
void qmsg_defer_rcpt(struct qmsg *m, size_t idx, const char *dsn,
    const char *text, const char *relay);
void qmsg_unref(struct qmsg *m);
void qmsg_free_all(void);
/* Open active/ID read-write (for marking); -1 logs. */
int qmsg_open(const struct qmsg *m);

/* qmgr_sched.c */
void qsched_init(void);
/* Add recipient idx of m to a job for transport/nexthop. */
void qsched_add(struct qmsg *m, size_t idx, const char *transport,
    const char *nexthop);
/* Start what the limits allow. */
void qsched_run(void);
/* A started job finished (results processed): frees it, drops the ref.
 * feedback for the destination's window: 1 it answered, -1 every
 * recipient was deferred, 0 nothing learned. */
void qsched_job_done(struct qjob *job, int feedback);
/* The job could not start: put it back at the front of its destination
 * and pause the transport for delay_ms (listen queue full: a moment; no
 * listener at all: transport_retry_time). */
void qsched_job_retry(struct qjob *job, uint64_t delay_ms);
/* The transport's socket has no listener: log once, and have the next
 * start wait transport_retry_time. The messages keep their recipients
 * pending (no deferral, no backoff). */
void qsched_transport_dead(struct qjob *job, const char *why);
const char *qsched_transport_name(const struct qjob *job);
/* For a started job: does its destination have more jobs queued or other
 * deliveries running (connection caching on demand)? For a transport with
 * one recipient per destination (local), does the transport? */
int qsched_dest_backlog(const struct qjob *job);
/* For a started job: free process slots of its transport (limit minus
 * running deliveries, this one counted). */
int qsched_transport_room(const struct qjob *job);
const char *qsched_nexthop(const struct qjob *job);
void qsched_free_all(void);

/* qmgr_deliver.c */
/* 0 started (or failed and already handled), 1 try later (EAGAIN),
 * 2 transport unreachable (qsched_transport_dead() called). */
int qdeliver_start(struct qjob *job);
int qdeliver_running(void);
/* SIGTERM deadline: close all connections, recipients stay pending. */
void qdeliver_abort_all(void);
/* Close every parked agent connection (drain). */
void qdeliver_close_idle(void);

/* qmgr_bounce.c */
int qlog_defer(const char *id, const char *addr, const char *dsn, const char *text);
/* fsynced; 0 or -1 (logged). */
int qlog_bounce(const char *id, const char *addr, const char *orig,
    const char *dsn, const char *relay, const char *text);
/* Queue the DSN for the failures in bounce/ID, then remove that log.
 * 0 done (or nothing to send), -1 failed (logged; keep the message). */
int qbounce_send(struct qmsg *m);
/* delay_warning_time has passed: warn the sender, once, of the recipients
 * deferred in this pass (DSN NOTIFY permitting), and mark them 'W'. */
void qdelay_send(struct qmsg *m);
void qlog_remove_defer(const char *id);

#endif
