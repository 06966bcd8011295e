/*
 * qmgr_bounce - the per-message logs in bounce/ and defer/, and queuing
 * the non-delivery notification and the delay warning
 * (delay_warning_time) built by lib/mail/bounce.c.
 *
 * Invariants:
 * - A bounce log entry is fsynced (and, when the log is new, its
 *   directory) before the caller marks the recipient done: the failure is
 *   then either in the log or the recipient is still pending.
 * - The notification is a complete, fsynced queue file in incoming/
 *   before the bounce log is removed. A crash in between sends it twice,
 *   never zero times.
 * - No loop: a failed notification (null sender) goes, with 2bounce in
 *   notify_classes, to the postmaster from double_bounce_sender, and a
 *   failure of that one is only logged.
 * - Defer logs are advisory (mailq, expiry text); no fsync.
 *
 * Trusts: the log files only as far as bounce_log_split() parses them
 * (we wrote them, but a line that does not parse is skipped, not fatal).
 *
 * LIMITS: a bounce log over BOUNCE_LOG_MAX fails the notification (the
 * message stays queued and the error is logged); the original is returned
 * in full only up to bounce_size_limit, else only its header (at most
 * HEADER_MAX octets).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "mail/bounce.h"
#include "mail/queue.h"
#include "qmgr.h"

#define BOUNCE_LOG_MAX (16 * 1024 * 1024)
#define HEADER_MAX (256 * 1024)

/* Append line to <dir>/<id>; with sync, fsync it (and the directory when
 * the file is new). A line is never glued to a torn one: a failed write
 * is cut off again, and a file whose last byte is not a newline (a crash
 * in the middle of a write) gets one first, so the torn line stays a
 * separate, skipped line instead of spoiling this one. */
/* Is the message's queue file still in active/? */
static int
queue_file_exists(const char *id)
{
	char *path = queue_path(qconf.queue_directory, QUEUE_ACTIVE, id);
	struct stat st;
	int rc = lstat(path, &st) == 0 || errno != ENOENT;

	xfree(&path);
	return rc;
}

/* The administrator deleted the message (postern queue delete unlinks the
 * queue file, then its logs): never leave a log behind for it. The check
 * comes after creating the log, so a delete that races with us either
 * sees our log and removes it, or we see the queue file gone. errno
 * ENOENT then. */
static int
append_line(const char *dir, const char *id, const struct buf *line, int sync)
{
	char *path = queue_path(qconf.queue_directory, dir, id);
	int fd, created = 1, rc = -1, save;
	struct stat st;
	char last;

	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == EEXIST) {
		created = 0;
		fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		goto out;
	if (!queue_file_exists(id)) {
		if (created)
			(void)unlink(path);
		errno = ENOENT;
		goto out;
	}
	if (fstat(fd, &st) < 0)
		goto out;
	if (st.st_size > 0 && (pread(fd, &last, 1, st.st_size - 1) != 1 || last != '\n') &&
	    write_all(fd, "\n", 1) < 0) {
		save = errno;
		(void)!ftruncate(fd, st.st_size);
		errno = save;
		goto out;
	}
	if (write_all(fd, line->data, line->len) < 0) {
		save = errno;
		(void)!ftruncate(fd, st.st_size);
		errno = save;
		goto out;
	}
	if (sync && fsync(fd) < 0)
		goto out;
	if (sync && created && fsync_parent(path) < 0)
		goto out;
	rc = 0;
out:
	save = errno;
	if (fd >= 0)
		close(fd);
	xfree(&path);
	errno = save;
	return rc;
}

int
qlog_defer(const char *id, const char *addr, const char *dsn, const char *text)
{
	struct buf line = BUF_INIT(0);
	int rc, save;

	bounce_log_defer_line(&line, addr, dsn, text);
	rc = append_line(QUEUE_DEFER, id, &line, 0);
	save = errno;
	if (rc < 0 && save == ENOENT)
		log_info("%s: queue file vanished; no defer log", id);
	else if (rc < 0)
		log_warn("%s: write defer log", id);
	buf_free(&line);
	errno = save;
	return rc;
}

int
qlog_bounce(const char *id, const char *addr, const char *orig, const char *dsn,
    const char *relay, const char *text)
{
	struct buf line = BUF_INIT(0);
	int rc, save;

	bounce_log_bounce_line(&line, addr, orig, dsn, relay, text);
	rc = append_line(QUEUE_BOUNCE, id, &line, 1);
	save = errno;
	if (rc < 0 && save == ENOENT)
		log_info("%s: queue file vanished; no bounce log", id);
	else if (rc < 0)
		log_warn("%s: write bounce log", id);
	buf_free(&line);
	errno = save;
	return rc;
}

static void
remove_log(const char *dir, const char *id)
{
	char *path = queue_path(qconf.queue_directory, dir, id);

	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("%s: remove %s", id, path);
	xfree(&path);
}

void
qlog_remove_defer(const char *id)
{
	remove_log(QUEUE_DEFER, id);
}

/* Reading the original message. */

struct collect {
	struct buf b;
	size_t limit;
	int headers_only;
};

static int
collect_cb(const char *p, size_t n, void *ctx)
{
	struct collect *c = ctx;
	size_t room = c->limit - c->b.len;

	buf_append(&c->b, p, n < room ? n : room);
	if (c->b.len >= c->limit)
		return 1;
	if (c->headers_only && c->b.len > 0 &&
	    (c->b.data[0] == '\n' || memmem(c->b.data, c->b.len, "\n\n", 2) != NULL ||
	    memmem(c->b.data, c->b.len, "\n\r\n", 3) != NULL))
		return 1;
	return 0;
}

/* The original for the notification: the whole message (RET=FULL, not
 * over bounce_size_limit, not headers_only: a delay warning) or its
 * header. Sets *full. An unreadable
 * original is logged and returned empty: the notice still goes out. */
static void
read_original(const struct qmsg *m, int headers_only, struct collect *c, int *full)
{
	const char *ret = qenv_attr(&m->env, "ret");
	char *path;
	int fd, rc;

	*full = !headers_only && ret != NULL && strcasecmp(ret, "FULL") == 0 &&
	    m->env.content_size <= (off_t)qconf.bounce_size_limit;
	buf_init(&c->b, 0);
	c->headers_only = !*full;
	c->limit = *full ? (size_t)qconf.bounce_size_limit + 1 : HEADER_MAX;
	path = queue_path(qconf.queue_directory, QUEUE_ACTIVE, m->id);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		log_warn("%s: open %s", m->id, path);
		xfree(&path);
		return;
	}
	xfree(&path);
	rc = queue_content(fd, &m->env, collect_cb, c);
	if (rc < 0) {
		log_warn("%s: read message content for the notification", m->id);
		buf_reset(&c->b);
	}
	close(fd);
	if (*full && c->b.len > (size_t)qconf.bounce_size_limit)
		*full = 0;
}

struct entries {
	char *data;
	struct bounce_rcpt *r;
	size_t n;
};

/* Parse the bounce log text in place. */
static void
parse_log(const struct qmsg *m, struct entries *e, size_t len)
{
	char *line = e->data, *end = e->data + len, *nl, *f[5];
	size_t cap = 0;

	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			break;      /* a torn last line: not fsynced, so not relied on */
		*nl = '\0';
		if (bounce_log_split(line, f, 5) != 5 || *f[0] == '\0') {
			log_warnx("%s: skipping malformed bounce log line", m->id);
		} else {
			if (e->n == cap) {
				cap = cap ? cap * 2 : 16;
				e->r = xreallocarray(e->r, cap, sizeof(*e->r));
			}
			e->r[e->n].addr = f[0];
			e->r[e->n].orig = *f[1] != '\0' ? f[1] : NULL;
			e->r[e->n].dsn = f[2];
			e->r[e->n].relay = f[3];
			e->r[e->n].text = f[4];
			e->r[e->n].is_smtp = bounce_text_is_smtp(f[4]);
			e->n++;
		}
		line = nl + 1;
	}
}

enum notice { NOTICE_BOUNCE, NOTICE_DELAY, NOTICE_2BOUNCE };

/* Compose the notification and commit it as a new queue file: to the
 * sender from the null sender (a failure report or a delay warning), or
 * for a message from the null sender that failed, to
 * 2bounce_notice_recipient from double_bounce_sender (Postfix's 2bounce). */
static int
queue_notice(struct qmsg *m, const struct bounce_rcpt *rcpts, size_t nrcpt,
    enum notice kind, char newid[QUEUE_ID_MAX])
{
	int delayed = kind == NOTICE_DELAY, twice = kind == NOTICE_2BOUNCE;
	struct bounce_info in;
	struct queue_writer *w;
	struct collect c;
	struct buf out = BUF_INIT(0), boundary = BUF_INIT(0), msgid = BUF_INIT(0);
	char date[64], adate[64], until[64], stamp[32], *err = NULL;
	const char *cerr = NULL;
	time_t now = time(NULL);
	struct tm tm;
	size_t i, hostroom;
	int full, rc = -1, tries, expired = !delayed;

	for (i = 0; i < nrcpt; i++)
		if (rcpts[i].dsn[0] != '4')
			expired = 0;
	read_original(m, delayed, &c, &full);
	w = queue_writer_open(qconf.queue_directory, QUEUE_INCOMING, (uid_t)-1,
	    (gid_t)-1, &err);
	if (w == NULL) {
		log_warnx("%s: cannot create notification: %s", m->id, err ? err : "?");
		goto out;
	}
	bounce_format_date(now, date, sizeof(date));
	bounce_format_date(m->env.arrival.tv_sec, adate, sizeof(adate));
	bounce_format_date(m->env.arrival.tv_sec + (time_t)qconf.max_lifetime, until,
	    sizeof(until));
	if (localtime_r(&now, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
	buf_printf(&msgid, "<%s.%s@%s>", stamp, queue_writer_id(w), qconf.myhostname);

	memset(&in, 0, sizeof(in));
	in.myhostname = qconf.myhostname;
	in.queue_id = m->id;
	in.sender = m->env.sender;
	in.to = twice ? qconf.postmaster : NULL;
	in.envid = qenv_attr(&m->env, "envid");
	in.date = date;
	in.arrival_date = adate;
	in.message_id = buf_cstr(&msgid);
	in.expired = expired;
	in.delayed = delayed;
	in.retry_until = until;
	in.return_full = full;
	in.orig_msg = c.b.data;
	in.orig_len = c.b.len;
	in.rcpts = rcpts;
	in.nrcpt = nrcpt;
	for (tries = 0; tries < 4; tries++) {
		/* "ID.time/host" like Postfix; a host part that keeps it <= 70. */
		buf_reset(&boundary);
		buf_printf(&boundary, "%s.%lld", m->id, (long long)now + tries);
		hostroom = BOUNCE_BOUNDARY_MAX - boundary.len - 1;
		buf_printf(&boundary, "/%.*s", (int)hostroom, qconf.myhostname);
		in.boundary = buf_cstr(&boundary);
		if (bounce_compose(&out, &in, &cerr) == 0)
			break;
	}
	if (tries == 4) {
		log_warnx("%s: cannot compose notification: %s", m->id, cerr ? cerr : "?");
		queue_writer_abort(&w);
		goto out;
	}
	if (queue_writer_sender(w, twice ? qconf.double_bounce : "") < 0 ||
	    queue_writer_rcpt(w, twice ? qconf.postmaster : m->env.sender, "", "") < 0 ||
	    queue_writer_content(w, out.data, out.len) < 0 ||
	    queue_writer_commit(w, newid) < 0) {
		log_warn("%s: cannot queue notification", m->id);
		queue_writer_abort(&w);
		goto out;
	}
	queue_writer_free(&w);
	log_info("%s: message-id=%s", newid, buf_cstr(&msgid));
	rc = 0;
out:
	xfree(&err);
	buf_free(&c.b);
	buf_free(&out);
	buf_free(&boundary);
	buf_free(&msgid);
	return rc;
}

int
qbounce_send(struct qmsg *m)
{
	struct entries e = { NULL, NULL, 0 };
	char *path, newid[QUEUE_ID_MAX];
	size_t len;
	int rc = -1;

	path = queue_path(qconf.queue_directory, QUEUE_BOUNCE, m->id);
	if (file_read_all(path, BOUNCE_LOG_MAX, &e.data, &len) < 0) {
		if (errno == ENOENT)
			rc = 0;
		else
			log_warn("%s: read bounce log", m->id);
		xfree(&path);
		return rc;
	}
	parse_log(m, &e, len);
	if (e.n == 0) {
		rc = 0;
	} else if (strcasecmp(m->env.sender, qconf.double_bounce) == 0) {
		/* The postmaster's copy itself failed: telling anyone would
		 * start a loop. */
		log_info("%s: undeliverable postmaster notification discarded", m->id);
		rc = 0;
	} else if (*m->env.sender == '\0' && !qconf.notify_2bounce) {
		/* A notification that failed has nobody to go back to; without
		 * 2bounce in notify_classes (Postfix's default) nobody hears. */
		log_info("%s: undeliverable mail from the null sender, notification "
		    "discarded", m->id);
		rc = 0;
	} else if (*m->env.sender == '\0') {
		/* notify_classes has 2bounce: the postmaster hears of it. */
		if (queue_notice(m, e.r, e.n, NOTICE_2BOUNCE, newid) == 0) {
			log_info("%s: postmaster non-delivery notification: %s", m->id, newid);
			qmgr_scan_incoming();
			rc = 0;
		}
	} else if (queue_notice(m, e.r, e.n, NOTICE_BOUNCE, newid) == 0) {
		log_info("%s: sender non-delivery notification: %s", m->id, newid);
		qmgr_scan_incoming();
		rc = 0;
	}
	if (rc == 0 && unlink(path) < 0 && errno != ENOENT)
		log_warn("%s: remove %s", m->id, path);
	xfree(&path);
	free(e.r);
	free(e.data);
	return rc;
}

/* A recipient deferred in this pass and not yet warned about, whose
 * NOTIFY asks for delay notices (none given leaves it to us, RFC 3461,
 * and like Postfix we warn). */
static int
warn_due(const struct qmsg *m, size_t i)
{
	const struct qrcpt *r = &m->env.rcpts[i];

	return r->status == 'P' && !r->warned && m->rs[i].why != NULL &&
	    (r->notify == NULL || *r->notify == '\0' ||
	    strcasestr(r->notify, "DELAY") != NULL);
}

/*
 * The warning is queued before the recipients are marked 'W' (without
 * fsync, like every status byte): a crash in between, or a mark that
 * does not stick, means a second warning, never a missing one.
 */
void
qdelay_send(struct qmsg *m)
{
	struct bounce_rcpt *rcpts;
	char newid[QUEUE_ID_MAX], *path;
	size_t i, n = 0;
	int fd;

	if (*m->env.sender == '\0' || strcasecmp(m->env.sender, qconf.double_bounce) == 0)
		return;     /* nobody to warn: no notice to the null sender */
	rcpts = xcalloc(m->env.nrcpt, sizeof(*rcpts));
	for (i = 0; i < m->env.nrcpt; i++) {
		const struct qrcpt *r = &m->env.rcpts[i];

		if (!warn_due(m, i))
			continue;
		rcpts[n].addr = r->addr;
		rcpts[n].orig = *r->orig != '\0' ? r->orig : NULL;
		rcpts[n].dsn = m->rs[i].dsn;
		rcpts[n].text = m->rs[i].why;
		rcpts[n].is_smtp = bounce_text_is_smtp(m->rs[i].why);
		n++;
	}
	if (n == 0 || queue_notice(m, rcpts, n, NOTICE_DELAY, newid) < 0) {
		free(rcpts);
		return;     /* a failure is logged; the next pass tries again */
	}
	free(rcpts);
	log_info("%s: sender delay notification: %s", m->id, newid);
	qmgr_scan_incoming();
	path = queue_path(qconf.queue_directory, QUEUE_ACTIVE, m->id);
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		log_warn("%s: open %s to mark the warned recipients", m->id, path);
	for (i = 0; i < m->env.nrcpt; i++) {
		struct qrcpt *r = &m->env.rcpts[i];

		if (!warn_due(m, i))
			continue;
		r->warned = 1;
		if (fd >= 0 && queue_mark_rcpt(fd, r->status_off, 'W') < 0)
			log_warn("%s: mark %s warned", m->id, r->addr);
	}
	if (fd >= 0)
		close(fd);
	xfree(&path);
}
