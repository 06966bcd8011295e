/*
 * qmgr_message - one message's life in the active queue: activation,
 * per-recipient results, and the finish step (notify, remove or defer).
 *
 * Invariants:
 * - A message is in memory only while its file is in active/. The
 *   envelope is in memory, the content never is.
 * - A recipient becomes 'D' in the file only when it is delivered, or when
 *   its failure is in the fsynced bounce log (or it asked for NOTIFY=NEVER).
 *   A failure anywhere else leaves it 'P': at worst it is tried again.
 * - The queue file is removed last, after the notification is queued.
 * - Every log line about a message starts with its queue ID.
 *
 * Trusts: the queue file only after queue_read() validated it; agents'
 * results only for recipients of the job they were given (matched by
 * status byte offset by the caller).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "mail/dlvlog.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "qmgr.h"

/* A file still locked by an agent of an earlier qmgr: that agent ends
 * its request in seconds and drops the dead qmgr's others, so a minute
 * (Postfix's figure) would only delay the mail; a retry costs two renames
 * and an open. */
#define LOCKED_RETRY_SEC 10
#define FINISH_RETRY_MS 60000    /* disk trouble while finishing */

static struct resolver *resolver;
static struct qmsg *msgs;        /* all active messages */
static size_t nmsgs;
static size_t nrcpts;            /* their recipients, all states */

static void qmsg_finish(struct qmsg *m);

void
qmsg_init(void)
{
	char *err = NULL;

	resolver = resolver_open(&err);
	if (resolver == NULL)
		log_fatalx("cannot open the address resolver: %s", err ? err : "unknown error");
}

size_t
qmgr_active_count(void)
{
	return nmsgs;
}

size_t
qmgr_rcpt_count(void)
{
	return nrcpts;
}

/* The recipient limit is checked before a message is read, so the last
 * message taken may go over it by its own size; one message is always
 * allowed, so a message with more recipients than the limit still goes. */
int
qmgr_room(void)
{
	if (nmsgs >= (size_t)qconf.active_limit)
		return 0;
	return nmsgs == 0 || nrcpts < (size_t)qconf.rcpt_limit;
}

static int
notify_never(const struct qrcpt *r)
{
	return r->notify != NULL && strcasestr(r->notify, "NEVER") != NULL;
}

/* qmgr's own status lines: outcomes no agent logged (see dlvlog.h). */
static void
log_rcpt(const struct qmsg *m, size_t idx, const char *relay, const char *dsn,
    const char *status, const char *text, const struct timespec *start,
    const struct timespec *connected)
{
	const struct qrcpt *r = &m->env.rcpts[idx];
	struct dlvlog_times t;

	memset(&t, 0, sizeof(t));
	t.arrival = m->env.arrival;
	t.active = m->activated;
	if (start != NULL)
		t.handoff = *start;
	if (connected != NULL)
		t.connected = *connected;
	dlvlog_status(m->id, r->addr, r->orig, relay, &t, dsn, status, text);
}

int
qmsg_open(const struct qmsg *m)
{
	char *path = queue_path(qconf.queue_directory, QUEUE_ACTIVE, m->id);
	int fd;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		log_warn("%s: open %s", m->id, path);
	xfree(&path);
	return fd;
}

/* Record 'D' in the file and in memory. */
static void
mark_done(struct qmsg *m, size_t idx)
{
	struct qrcpt *r = &m->env.rcpts[idx];
	int fd;

	r->status = 'D';
	m->rs[idx].remark = 0;
	fd = qmsg_open(m);
	if (fd < 0)
		return;
	if (queue_mark_rcpt(fd, r->status_off, 'D') < 0)
		log_warn("%s: mark recipient <%s> done", m->id, r->addr);
	close(fd);
}

/*
 * The file outlives this pass (deferred, or left in active/ for the next
 * qmgr): repeat the 'D' mark of every recipient an agent delivered, in
 * case the agent's own mark failed (it logged that). A file about to be
 * removed needs none of this, which spares the common case - every
 * recipient delivered - an open, a read, a write and a close.
 */
static void
remark_delivered(struct qmsg *m)
{
	struct qrcpt *r;
	size_t i;
	int fd = -1;

	for (i = 0; i < m->env.nrcpt; i++) {
		if (!m->rs[i].remark)
			continue;
		m->rs[i].remark = 0;
		r = &m->env.rcpts[i];
		if (fd < 0 && (fd = qmsg_open(m)) < 0)
			return;
		if (queue_mark_rcpt(fd, r->status_off, 'D') < 0)
			log_warn("%s: mark recipient <%s> done", m->id, r->addr);
	}
	if (fd >= 0)
		close(fd);
}

static void
remember_defer(struct qmsg *m, size_t idx, const char *dsn, const char *text)
{
	struct qrstate *rs = &m->rs[idx];

	xfree(&rs->why);
	rs->why = xstrdup(text != NULL ? text : "");
	snprintf(rs->dsn, sizeof(rs->dsn), "%s", dsn != NULL ? dsn : "4.0.0");
	m->ndeferred++;
}

void
qmsg_result(struct qmsg *m, size_t idx, int status, const char *dsn,
    const char *relay, const char *text, const struct timespec *start,
    const struct timespec *connected, int logged)
{
	struct qrcpt *r = &m->env.rcpts[idx];

	if (r->status != 'P')
		return;
	switch (status) {
	case 2:
		if (!logged)
			log_rcpt(m, idx, relay, dsn, "sent", text, start, connected);
		/* The agent marked it in the file before it answered. */
		r->status = 'D';
		m->rs[idx].remark = 1;
		break;
	case 5:
		/* The failure must be on disk before the recipient is done. */
		if (!notify_never(r) &&
		    qlog_bounce(m->id, r->addr, r->orig, dsn, relay, text) < 0) {
			if (errno == ENOENT)
				break;      /* the message was deleted meanwhile */
			log_rcpt(m, idx, relay, "4.3.0", "deferred",
			    "bounce log write failed", start, connected);
			remember_defer(m, idx, "4.3.0", text);
			break;
		}
		if (!logged)
			log_rcpt(m, idx, relay, dsn, "bounced", text, start, connected);
		mark_done(m, idx);
		break;
	default:
		if (!logged)
			log_rcpt(m, idx, relay, dsn, "deferred", text, start, connected);
		(void)qlog_defer(m->id, r->addr, dsn, text);
		remember_defer(m, idx, dsn, text);
		break;
	}
}

void
qmsg_defer_rcpt(struct qmsg *m, size_t idx, const char *dsn, const char *text,
    const char *relay)
{
	qmsg_result(m, idx, 4, dsn, relay, text, NULL, NULL, 0);
}

/* Activation. */

static void
set_mtime(int fd, const char *path, time_t when)
{
	struct timespec ts[2] = { { when, 0 }, { when, 0 } };
	int rc = fd >= 0 ? futimens(fd, ts) : utimensat(AT_FDCWD, path, ts, 0);

	if (rc < 0)
		log_debug("set time of %s: %s", path, strerror(errno));
}

/* Put a file we could not take back where it came from, not due for a
 * while, so the scan does not spin on it. */
static void
push_back(const char *from, const char *id, int fd)
{
	char *path = queue_path(qconf.queue_directory, QUEUE_ACTIVE, id);

	set_mtime(fd, path, time(NULL) + LOCKED_RETRY_SEC);
	if (queue_move(qconf.queue_directory, QUEUE_ACTIVE, from, id) < 0)
		log_warn("%s: move back to %s", id, from);
	xfree(&path);
}

static int
transport_name_ok(const char *t)
{
	return t != NULL && *t != '\0' && strchr(t, '/') == NULL &&
	    strcmp(t, ".") != 0 && strcmp(t, "..") != 0 && strlen(t) < 64;
}

static void
route_all(struct qmsg *m)
{
	char *tp, *nh;
	size_t i;

	m->routing = 1;
	for (i = 0; i < m->env.nrcpt; i++) {
		if (m->env.rcpts[i].status != 'P')
			continue;
		tp = nh = NULL;
		if (resolver_route(resolver, m->env.rcpts[i].addr, &tp, &nh) < 0) {
			qmsg_defer_rcpt(m, i, "4.3.0", "address resolver failure", "none");
		} else if (!transport_name_ok(tp)) {
			log_warnx("%s: bad transport name for <%s>", m->id, m->env.rcpts[i].addr);
			qmsg_defer_rcpt(m, i, "4.3.5", "mail transport unavailable", "none");
		} else {
			qsched_add(m, i, tp, nh != NULL ? nh : "");
		}
		xfree(&tp);
		xfree(&nh);
	}
	m->routing = 0;
}

void
qmsg_activate(const char *from, const char *id)
{
	struct qmsg *m;
	char *path, *err = NULL;
	int fd;

	if (queue_move(qconf.queue_directory, from, QUEUE_ACTIVE, id) < 0) {
		/* ENOENT: gone since the scan (deleted, or taken already). */
		if (errno != ENOENT)
			log_warn("%s: move from %s to active", id, from);
		return;
	}
	path = queue_path(qconf.queue_directory, QUEUE_ACTIVE, id);
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			/* Deleted or held by the administrator meanwhile. */
			log_info("%s: queue file vanished from active", id);
		} else {
			log_warn("%s: open %s", id, path);
			push_back(from, id, -1);
		}
		xfree(&path);
		return;
	}
	xfree(&path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		/* An agent of an earlier qmgr still delivers from it. */
		if (errno == EWOULDBLOCK)
			log_info("%s: queue file is in use by a delivery agent, retrying in %d s",
			    id, LOCKED_RETRY_SEC);
		else
			log_warn("%s: lock queue file", id);
		push_back(from, id, fd);
		close(fd);
		return;
	}
	m = xcalloc(1, sizeof(*m));
	if (queue_read(fd, &m->env, &err) < 0) {
		if (errno == EINVAL) {
			const char *why = err != NULL ? err : "unknown error";

			/* queue_read's text may already say what it is. */
			if (strncmp(why, "corrupt queue file: ", 20) == 0)
				why += 20;
			log_warnx("%s: corrupt queue file: %s", id, why);
			close(fd);
			if (queue_move(qconf.queue_directory, QUEUE_ACTIVE, QUEUE_CORRUPT, id) < 0)
				log_warn("%s: move to corrupt", id);
		} else {
			log_warnx("%s: read queue file: %s", id, err ? err : strerror(errno));
			push_back(from, id, fd);
			close(fd);
		}
		xfree(&err);
		qenv_free(&m->env);
		free(m);
		return;
	}
	(void)flock(fd, LOCK_UN);
	close(fd);

	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->env.id, sizeof(m->env.id), "%s", id);
	clock_gettime(CLOCK_REALTIME, &m->activated);
	m->rs = xcalloc(m->env.nrcpt > 0 ? m->env.nrcpt : 1, sizeof(*m->rs));
	m->next = msgs;
	if (msgs != NULL)
		msgs->prev = m;
	msgs = m;
	nmsgs++;
	nrcpts += m->env.nrcpt;
	log_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)", m->id,
	    m->env.sender, (long long)m->env.file_size, m->env.nrcpt);
	/* The defer log describes one delivery pass: start a new one. */
	if (strcmp(from, QUEUE_DEFERRED) == 0)
		qlog_remove_defer(m->id);

	route_all(m);
	if (m->refs == 0)
		qmsg_finish(m);
}

/* Finishing. */

static void
qmsg_free(struct qmsg *m)
{
	size_t i;

	if (m->retry_timer != 0)
		loop_timer_cancel(qmgr_loop, m->retry_timer);
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		msgs = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	nmsgs--;
	nrcpts -= m->env.nrcpt;
	for (i = 0; i < m->env.nrcpt; i++) {
		xfree(&m->rs[i].why);
	}
	free(m->rs);
	qenv_free(&m->env);
	free(m);
	/* A slot in the leaky bucket is free. */
	qmgr_kick();
}

static void
finish_retry_cb(struct loop *l, void *ctx)
{
	struct qmsg *m = ctx;

	(void)l;
	m->retry_timer = 0;
	m->finishing = 0;
	qmsg_finish(m);
}

/* Keep the message in memory and try finishing again later. */
static void
finish_later(struct qmsg *m)
{
	m->finishing = 1;
	if (m->retry_timer == 0)
		m->retry_timer = loop_timer_add(qmgr_loop, FINISH_RETRY_MS, finish_retry_cb, m);
}

static size_t
count_pending(const struct qmsg *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpts[i].status == 'P')
			n++;
	return n;
}

/* The queue lifetime is over: every pending recipient fails with the
 * reason of its last deferral. */
static void
expire_pending(struct qmsg *m)
{
	struct qrcpt *r;
	const char *why;
	size_t i;

	for (i = 0; i < m->env.nrcpt; i++) {
		r = &m->env.rcpts[i];
		if (r->status != 'P')
			continue;
		why = m->rs[i].why != NULL && *m->rs[i].why != '\0' ? m->rs[i].why :
		    "delivery time expired";
		if (!notify_never(r) &&
		    qlog_bounce(m->id, r->addr, r->orig, "4.4.7", "none", why) < 0)
			continue;     /* stays pending; tried again next pass */
		log_rcpt(m, i, "none", "4.4.7", "expired, returned to sender", why,
		    NULL, NULL);
		mark_done(m, i);
	}
}

static long long
backoff(long long age)
{
	if (age < qconf.min_backoff)
		age = qconf.min_backoff;
	if (age > qconf.max_backoff)
		age = qconf.max_backoff;
	return age;
}

static void
qmsg_finish(struct qmsg *m)
{
	struct timespec ts[2];
	char *path;
	time_t now = time(NULL);
	long long lifetime, age;
	size_t pending;
	int dsn_ok;

	if (m->refs > 0 || m->routing || m->finishing)
		return;
	pending = count_pending(m);
	age = (long long)now - (long long)m->env.arrival.tv_sec;
	lifetime = *m->env.sender == '\0' ? qconf.bounce_lifetime : qconf.max_lifetime;
	/* soft_bounce keeps even expired mail queued, as Postfix does. */
	if (pending > 0 && age >= lifetime && !qconf.soft_bounce) {
		expire_pending(m);
		pending = count_pending(m);
	}

	/* Tell the sender about failures now, even when some recipients are
	 * still deferred (the log is truncated once the DSN is queued). */
	dsn_ok = qbounce_send(m) == 0;

	path = queue_path(qconf.queue_directory, QUEUE_ACTIVE, m->id);
	if (pending == 0 && dsn_ok) {
		qlog_remove_defer(m->id);
		if (queue_remove(qconf.queue_directory, QUEUE_ACTIVE, m->id,
		    m->env.file_size) < 0 &&
		    errno != ENOENT) {
			log_warn("%s: remove %s", m->id, path);
			xfree(&path);
			finish_later(m);
			return;
		}
		log_info("%s: removed", m->id);
		xfree(&path);
		qmsg_free(m);
		return;
	}

	remark_delivered(m);
	/* Stopping (master gone, SIGTERM) with recipients that got no
	 * result in this pass: leave the file in active/, which the next
	 * qmgr moves to incoming/ - no backoff for mail nobody tried. */
	if (qmgr_draining && m->ndeferred == 0) {
		xfree(&path);
		qmsg_free(m);
		return;
	}
	if (qconf.delay_warning > 0 && age >= qconf.delay_warning)
		qdelay_send(m);

	/* Deferred: the next try is due after a backoff that grows with the
	 * time in queue; the mtime carries it across restarts. */
	ts[0].tv_sec = ts[1].tv_sec = now + (time_t)backoff(age);
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	if (utimensat(AT_FDCWD, path, ts, 0) < 0) {
		if (errno == ENOENT) {
			log_warnx("%s: queue file vanished from active", m->id);
			xfree(&path);
			qmsg_free(m);
			return;
		}
		log_warn("%s: set retry time", m->id);
	}
	xfree(&path);
	if (queue_move(qconf.queue_directory, QUEUE_ACTIVE, QUEUE_DEFERRED, m->id) < 0) {
		if (errno == ENOENT) {
			log_warnx("%s: queue file vanished from active", m->id);
			qmsg_free(m);
			return;
		}
		log_warn("%s: move to deferred", m->id);
		finish_later(m);
		return;
	}
	qmsg_free(m);
}

void
qmsg_unref(struct qmsg *m)
{
	if (m->refs > 0)
		m->refs--;
	if (m->refs == 0 && !m->routing)
		qmsg_finish(m);
}

void
qmsg_free_all(void)
{
	while (msgs != NULL)
		qmsg_free(msgs);
	resolver_close(&resolver);
}
