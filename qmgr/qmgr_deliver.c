/*
 * qmgr_deliver - the client side of deliver.h: a connection to
 * <queue_directory>/private/<transport> per job, one request frame out,
 * one results frame back, all through the event loop on a conn
 * (lib/util/conn.c: buffered non-blocking I/O).
 *
 * Connection caching (smtp): an agent that kept its session with the
 * destination says so in its results ("cache" = seconds). The connection
 * to that agent is then parked, idle, keyed by (transport, nexthop), for
 * at most that long, and the next job for the same destination is sent
 * on it instead of a new connection, so one agent process delivers that
 * destination's messages in a row over one SMTP session. An idle agent is
 * a process of the transport: parked connections plus running deliveries
 * never exceed the transport's process limit (the oldest parked one is
 * closed to make room), and none is parked while draining. Each request
 * says whether the destination has a backlog (more jobs queued or running,
 * qsched_dest_backlog()): the agent's smtp_connection_cache_on_demand
 * caches only then.
 *
 * Invariants:
 * - Every recipient of a job ends with exactly one outcome: the agent's
 *   result, or a deferral when the agent could not be reached, died, sent
 *   garbage or took longer than the timeout.
 * - A result counts only for a recipient of this job (matched by status
 *   byte offset) and only once.
 *
 * Trusts: nothing in the reply beyond what dlv_results_decode() accepts.
 *
 * LIMITS: the reply frame is bounded by IPC_MAX_DEFAULT. The timeout is
 * generous (command_time_limit + 60 s for local/virtual, an hour for
 * others): agents have their own, shorter ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/conn.h"
#include "util/ipc.h"
#include "util/log.h"
#include "mail/deliver.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "qmgr.h"

#define REMOTE_TIMEOUT_S 3600

struct qdlv {
	struct qjob *job;            /* NULL while parked */
	int fd;
	struct conn *conn;
	uint64_t timer;              /* delivery timeout, or the parking limit */
	struct timespec start, connected;
	char *transport, *nexthop;   /* what a parked agent is connected to */
	struct qdlv *prev, *next;    /* running, or idle (oldest first) */
};

static struct qdlv *running;
static struct qdlv *idle_head, *idle_tail;

static int nrunning;

int
qdeliver_running(void)
{
	return nrunning;
}

static void
defer_all(struct qjob *job, const char *text, const struct timespec *start,
    const struct timespec *connected, const unsigned char *seen)
{
	size_t i;

	for (i = 0; i < job->n; i++)
		if (seen == NULL || !seen[i])
			qmsg_result(job->msg, job->idx[i], 4, "4.3.0", "none", text,
			    start, connected, 0);
}

static void
running_unlink(struct qdlv *d)
{
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		running = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	d->prev = d->next = NULL;
	nrunning--;
}

static void
idle_unlink(struct qdlv *d)
{
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		idle_head = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	else
		idle_tail = d->prev;
	d->prev = d->next = NULL;
}

static void
dlv_free(struct qdlv *d)
{
	conn_free(&d->conn);
	if (d->fd >= 0)
		close(d->fd);
	if (d->timer != 0)
		loop_timer_cancel(qmgr_loop, d->timer);
	if (d->job != NULL)
		running_unlink(d);
	else
		idle_unlink(d);
	free(d->transport);
	free(d->nexthop);
	free(d);
}

/* A parked agent's time is up: closing makes it QUIT its session. */
static void
idle_timeout(struct loop *l, void *ctx)
{
	struct qdlv *d = ctx;

	(void)l;
	d->timer = 0;
	dlv_free(d);
}

/* Keep the agent connection of a finished job for the next job to the
 * same destination. The job itself is finished by the caller. */
static void
dlv_park(struct qdlv *d, int cache_s)
{
	struct qjob *job = d->job;

	if (d->timer != 0)
		loop_timer_cancel(qmgr_loop, d->timer);
	running_unlink(d);
	d->job = NULL;
	xfree(&d->transport);
	xfree(&d->nexthop);
	d->transport = xstrdup(qsched_transport_name(job));
	d->nexthop = xstrdup(qsched_nexthop(job));
	d->prev = idle_tail;
	d->next = NULL;
	if (idle_tail != NULL)
		idle_tail->next = d;
	else
		idle_head = d;
	idle_tail = d;
	d->timer = loop_timer_add(qmgr_loop, (uint64_t)cache_s * 1000, idle_timeout, d);
	log_debug("agent for %s/%s kept for %d s", d->transport, d->nexthop, cache_s);
}

/* The newest parked agent connected to this destination, still open, or
 * NULL. Ones whose agent went away are dropped on the way. */
static struct qdlv *
idle_take(const char *transport, const char *nexthop)
{
	struct qdlv *d, *prev;
	size_t n;

	for (d = idle_tail; d != NULL; d = prev) {
		prev = d->prev;
		if (strcmp(d->transport, transport) != 0 || strcmp(d->nexthop, nexthop) != 0)
			continue;
		(void)conn_in(d->conn, &n);
		if (n > 0 || dlv_peer_gone(d->fd)) {
			dlv_free(d);
			continue;
		}
		idle_unlink(d);
		loop_timer_cancel(qmgr_loop, d->timer);
		d->timer = 0;
		return d;
	}
	return NULL;
}

/* Parked agents are processes of their transport: close the oldest ones
 * of tp until they fit beside the running deliveries (room = the
 * transport's free process slots with this job counted). */
static void
idle_make_room(const char *tp, int room)
{
	struct qdlv *d, *next;
	int n = 0;

	for (d = idle_head; d != NULL; d = d->next)
		n += strcmp(d->transport, tp) == 0;
	for (d = idle_head; d != NULL && n > room; d = next) {
		next = d->next;
		if (strcmp(d->transport, tp) == 0) {
			dlv_free(d);
			n--;
		}
	}
}

void
qdeliver_close_idle(void)
{
	while (idle_head != NULL)
		dlv_free(idle_head);
}

/* The connection is over: account for every recipient, free the job. */
static void
dlv_end(struct qdlv *d, struct dlv_result *res, size_t nres, int cache_s,
    const char *why)
{
	struct qjob *job = d->job;
	struct qmsg *m = job->msg;
	unsigned char *seen = xcalloc(job->n ? job->n : 1, 1);
	size_t i, k;
	int answered = 0;

	for (i = 0; i < nres; i++) {
		for (k = 0; k < job->n; k++)
			if ((long long)m->env.rcpts[job->idx[k]].status_off == res[i].offset)
				break;
		if (k == job->n || seen[k]) {
			log_warnx("%s: transport %s: result for an unknown or repeated "
			    "recipient ignored", m->id, qsched_transport_name(job));
			continue;
		}
		if (res[i].status != 2 && res[i].status != 4 && res[i].status != 5) {
			log_warnx("%s: transport %s: bad status %d ignored", m->id,
			    qsched_transport_name(job), res[i].status);
			continue;
		}
		seen[k] = 1;
		answered |= res[i].status != 4;
		/* The agent softened what it logged; one that did not log
		 * leaves it to us (soft_bounce). */
		(void)dlv_result_soften(&res[i]);
		qmsg_result(m, job->idx[k], res[i].status, res[i].dsn, res[i].relay,
		    res[i].text, &d->start, &d->connected, res[i].logged);
	}
	/* Agents vanishing because master is gone say nothing about the
	 * mail: recipients without a result stay pending in active/ for the
	 * next qmgr, with no deferral and no backoff. */
	if (nres < job->n)
		(void)server_master_gone();
	if (!qmgr_draining)
		defer_all(job, why != NULL ? why :
		    "delivery temporarily suspended: unknown mail transport error",
		    &d->start, &d->connected, seen);
	free(seen);
	/* Parked before the job is done: that kicks the scheduler, whose
	 * next start for this destination finds the agent. */
	if (cache_s > 0 && nres == job->n && !qmgr_draining)
		dlv_park(d, cache_s);
	else
		dlv_free(d);
	/* The destination's window (qmgr_sched.c): an agent that vanished
	 * tells nothing about it. */
	qsched_job_done(job, answered ? 1 : nres == job->n && nres > 0 ? -1 : 0);
}

static void
dlv_fail(struct qdlv *d, const char *what)
{
	log_warnx("%s: transport %s: %s", d->job->msg->id,
	    qsched_transport_name(d->job), what);
	dlv_end(d, NULL, 0, 0, NULL);
}

static void
dlv_timeout(struct loop *l, void *ctx)
{
	struct qdlv *d = ctx;

	(void)l;
	d->timer = 0;
	dlv_fail(d, "delivery agent timed out");
}

/* The results frame, once it is all in. */
static void
dlv_reply_frame(struct qdlv *d, const char *p, size_t flen)
{
	struct ipc_msg msg;
	struct dlv_result *res = NULL;
	size_t nres = 0, n;
	char *err = NULL;
	int cache_s = 0;

	ipc_init(&msg);
	if (ipc_decode(&msg, p, flen) < 0 ||
	    dlv_results_decode(&msg, &res, &nres, &cache_s, &err) < 0) {
		log_warnx("%s: transport %s: malformed reply: %s", d->job->msg->id,
		    qsched_transport_name(d->job), err ? err : "bad frame");
		xfree(&err);
		ipc_free(&msg);
		dlv_end(d, NULL, 0, 0, NULL);
		return;
	}
	ipc_free(&msg);
	conn_in_consume(d->conn, flen);
	/* An agent that said more than its one reply is not kept. */
	(void)conn_in(d->conn, &n);
	dlv_end(d, res, nres, n == 0 ? cache_s : 0, NULL);
	dlv_results_free(res, nres);
}

static void
dlv_conn_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct qdlv *d = ctx;
	size_t n, flen;
	const char *p = conn_in(c, &n);
	int rc;

	if (d->job == NULL) {
		/* Parked: the agent speaks only when asked. Whatever happens
		 * (its time limit, its exit, stray bytes) ends the connection. */
		if (ev != CONN_EV_DRAINED)
			dlv_free(d);
		return;
	}
	rc = ipc_frame_len(p, n, IPC_MAX_DEFAULT, &flen);
	/* The agent answers once, after reading the whole request: the
	 * input is read all along, the frame looked for at every event. */
	if (rc < 0)
		dlv_fail(d, "reply too large");
	else if (rc == 1)
		dlv_reply_frame(d, p, flen);
	else if (ev & CONN_EV_EOF)
		dlv_fail(d, "lost connection with the delivery agent");
	else if (ev & CONN_EV_ERROR)
		dlv_fail(d, conn_error(c));
}

/* Non-blocking connect to the transport's socket: fd, -1 and errno. */
static int
connect_transport(const char *transport)
{
	struct sockaddr_un sun;
	int fd, n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s/%s",
	    qconf.queue_directory, QUEUE_PRIVATE, transport);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
		int save = errno;

		close(fd);
		errno = save;
		return -1;
	}
	return fd;
}

static long long
ts_us(const struct timespec *t)
{
	return t->tv_sec <= 0 ? 0 : (long long)t->tv_sec * 1000000 + t->tv_nsec / 1000;
}

static void
build_request(struct qdlv *d)
{
	struct qjob *job = d->job;
	struct qmsg *m = job->msg;
	struct dlv_request r;
	struct ipc_msg msg;
	struct buf frame = BUF_INIT(0);
	const struct qrcpt *q;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.queue_id = m->id;
	r.queue_dir = (char *)QUEUE_ACTIVE;
	r.sender = m->env.sender;
	r.transport = (char *)qsched_transport_name(job);
	r.nexthop = (char *)qsched_nexthop(job);
	r.arrival = (long long)m->env.arrival.tv_sec;
	r.arrival_us = ts_us(&m->env.arrival);
	r.active_us = ts_us(&m->activated);
	r.handoff_us = ts_us(&d->start);
	r.backlog = qsched_dest_backlog(job);
	r.rcpts = xcalloc(job->n, sizeof(*r.rcpts));
	r.nrcpt = job->n;
	for (i = 0; i < job->n; i++) {
		q = &m->env.rcpts[job->idx[i]];
		r.rcpts[i].addr = q->addr;
		r.rcpts[i].orig = q->orig;
		r.rcpts[i].notify = q->notify;
		r.rcpts[i].offset = (long long)q->status_off;
	}
	ipc_init(&msg);
	dlv_request_encode(&r, &msg);
	ipc_encode(&msg, &frame);
	ipc_free(&msg);
	conn_write(d->conn, frame.data, frame.len);
	buf_free(&frame);
	free(r.rcpts);      /* the strings are borrowed from the envelope */
}

static void
running_link(struct qdlv *d)
{
	d->prev = NULL;
	d->next = running;
	if (running != NULL)
		running->prev = d;
	running = d;
	nrunning++;
}

static void
timer_arm(struct qdlv *d, const char *tp)
{
	long long timeout_s;

	if (strcmp(tp, "local") == 0 || strcmp(tp, "virtual") == 0)
		timeout_s = qconf.command_time_limit + 60;
	else
		timeout_s = REMOTE_TIMEOUT_S;
	d->timer = loop_timer_add(qmgr_loop, (uint64_t)timeout_s * 1000, dlv_timeout, d);
}

int
qdeliver_start(struct qjob *job)
{
	const char *tp = qsched_transport_name(job);
	struct qdlv *d;
	struct timespec now;
	struct buf why = BUF_INIT(0);
	int fd;

	clock_gettime(CLOCK_REALTIME, &now);
	d = idle_take(tp, qsched_nexthop(job));
	if (d != NULL) {
		d->job = job;
		d->start = now;
		d->connected = now;
		conn_set_cb(d->conn, dlv_conn_cb, d);
		running_link(d);
		timer_arm(d, tp);
		build_request(d);
		(void)conn_flush(d->conn);
		log_debug("%s: delivery to %s/%s started on a kept agent connection, "
		    "%zu recipient(s)", job->msg->id, tp, qsched_nexthop(job), job->n);
		return 0;
	}
	idle_make_room(tp, qsched_transport_room(job));
	fd = connect_transport(tp);
	if (fd < 0) {
		if (errno == EAGAIN)
			return 1;       /* listen queue full: try again shortly */
		if (errno == ECONNREFUSED || errno == ENOENT) {
			(void)server_master_gone();
			/* Nobody serves the socket (master is down or restarting):
			 * the transport's problem, not the message's. */
			qsched_transport_dead(job, strerror(errno));
			return 2;
		}
		buf_printf(&why, "delivery temporarily suspended: connect to transport "
		    "private/%s: %s", tp, strerror(errno));
		log_warnx("%s: connect to transport private/%s: %s", job->msg->id, tp,
		    strerror(errno));
		defer_all(job, buf_cstr(&why), &now, &now, NULL);
		buf_free(&why);
		qsched_job_done(job, 0);
		return 0;
	}
	d = xcalloc(1, sizeof(*d));
	d->job = job;
	d->fd = fd;
	d->start = now;
	clock_gettime(CLOCK_REALTIME, &d->connected);
	d->conn = conn_new(qmgr_loop, fd, IPC_MAX_DEFAULT + 8, dlv_conn_cb, d);
	build_request(d);
	running_link(d);
	timer_arm(d, tp);
	/* What the socket does not take now goes from the loop; a failure
	 * comes back as CONN_EV_ERROR. */
	(void)conn_flush(d->conn);
	log_debug("%s: delivery to %s/%s started, %zu recipient(s)", job->msg->id,
	    tp, qsched_nexthop(job), job->n);
	return 0;
}

void
qdeliver_abort_all(void)
{
	/* The jobs' recipients stay pending in their files in active/; the
	 * next qmgr moves those back to incoming. */
	while (running != NULL)
		dlv_free(running);
	qdeliver_close_idle();
}
