/*
 * qmgr_deliver - the client side of deliver.h: one connection per job to
 * <queue_directory>/private/<transport>, one request frame out, one
 * results frame back, all through the event loop on a conn
 * (lib/util/conn.c: buffered non-blocking I/O).
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
	struct qjob *job;
	int fd;
	struct conn *conn;
	uint64_t timer;
	struct timespec start, connected;
	struct qdlv *prev, *next;
};

static struct qdlv *running;

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
dlv_free(struct qdlv *d)
{
	conn_free(&d->conn);
	if (d->fd >= 0)
		close(d->fd);
	if (d->timer != 0)
		loop_timer_cancel(qmgr_loop, d->timer);
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		running = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	nrunning--;
	free(d);
}

/* The connection is over: account for every recipient, free the job. */
static void
dlv_end(struct qdlv *d, const struct dlv_result *res, size_t nres, const char *why)
{
	struct qjob *job = d->job;
	struct qmsg *m = job->msg;
	unsigned char *seen = xcalloc(job->n ? job->n : 1, 1);
	size_t i, k;

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
	dlv_free(d);
	qsched_job_done(job);
}

static void
dlv_fail(struct qdlv *d, const char *what)
{
	log_warnx("%s: transport %s: %s", d->job->msg->id,
	    qsched_transport_name(d->job), what);
	dlv_end(d, NULL, 0, NULL);
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
dlv_reply(struct qdlv *d, const char *p, size_t flen)
{
	struct ipc_msg msg;
	struct dlv_result *res = NULL;
	size_t nres = 0;
	char *err = NULL;

	ipc_init(&msg);
	if (ipc_decode(&msg, p, flen) < 0 ||
	    dlv_results_decode(&msg, &res, &nres, &err) < 0) {
		log_warnx("%s: transport %s: malformed reply: %s", d->job->msg->id,
		    qsched_transport_name(d->job), err ? err : "bad frame");
		xfree(&err);
		ipc_free(&msg);
		dlv_end(d, NULL, 0, NULL);
		return;
	}
	ipc_free(&msg);
	dlv_end(d, res, nres, NULL);
	dlv_results_free(res, nres);
}

static void
dlv_conn_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct qdlv *d = ctx;
	size_t n, flen;
	const char *p = conn_in(c, &n);
	int rc = ipc_frame_len(p, n, IPC_MAX_DEFAULT, &flen);

	/* The agent answers once, after reading the whole request: the
	 * input is read all along, the frame looked for at every event. */
	if (rc < 0)
		dlv_fail(d, "reply too large");
	else if (rc == 1)
		dlv_reply(d, p, flen);
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

int
qdeliver_start(struct qjob *job)
{
	const char *tp = qsched_transport_name(job);
	struct qdlv *d;
	struct timespec now;
	struct buf why = BUF_INIT(0);
	long long timeout_s;
	int fd;

	clock_gettime(CLOCK_REALTIME, &now);
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
		qsched_job_done(job);
		return 0;
	}
	d = xcalloc(1, sizeof(*d));
	d->job = job;
	d->fd = fd;
	d->start = now;
	clock_gettime(CLOCK_REALTIME, &d->connected);
	d->conn = conn_new(qmgr_loop, fd, IPC_MAX_DEFAULT + 8, dlv_conn_cb, d);
	build_request(d);
	d->next = running;
	if (running != NULL)
		running->prev = d;
	running = d;
	nrunning++;
	if (strcmp(tp, "local") == 0 || strcmp(tp, "virtual") == 0)
		timeout_s = qconf.command_time_limit + 60;
	else
		timeout_s = REMOTE_TIMEOUT_S;
	d->timer = loop_timer_add(qmgr_loop, (uint64_t)timeout_s * 1000, dlv_timeout, d);
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
}
