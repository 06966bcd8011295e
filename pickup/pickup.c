/*
 * pickup - local submission: sendmail(1) hands messages to us on
 * public/pickup, or leaves them in maildrop/ while we are down.
 *
 * One resident process (SERVER_TRIGGER, master.conf wakeup 60) running as
 * mail_owner. A connection whose first byte is NUL carries a submission
 * (lib/mail/submit.h frames; the first byte of a frame length is 0 for
 * any frame we accept); anything else is a wake-up ("W" from master, "I"
 * from sendmail) that makes us scan maildrop/. We scan at start too.
 *
 * Invariants:
 * - The submitter is SO_PEERCRED's uid, or the owner of a maildrop file;
 *   nothing a client says changes it.
 * - "status=ok" goes back only after the queue file is committed; a
 *   maildrop file is unlinked only after its queue file is committed (a
 *   crash in between gives a duplicate, never a loss).
 * - maildrop/ files are hostile: opened without following links and
 *   without blocking, only regular single-link files within the size
 *   limit are read; malformed or refused ones go to corrupt/ (kept for
 *   the administrator), temporary failures stay for the next scan.
 * Trusts: configuration; the kernel for peer credentials and file owners.
 * Limits: message_size_limit (+ SUBMIT_ENVELOPE_MAX for framing); a
 * connection idle for CONN_TIMEOUT_MS is dropped; a scan reads at most
 * SCAN_MAX files before yielding to the event loop.
 * BUGS: queue file fsyncs and maildrop scans block the event loop.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/loop.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "mail/submit.h"
#include "pickup.h"

#define CONN_TIMEOUT_MS (300 * 1000)
#define REPLY_TIMEOUT_MS 10000
#define FRAME_MAX (SUBMIT_ENVELOPE_MAX + 1024)
#define READ_CHUNK (64 * 1024)
#define SCAN_MAX 1000
#define STALE_TMP_SECS (24 * 3600)   /* a '.' file this old is a dead sendmail's */

struct pickup_conf pconf;

static struct loop *ploop;
static uint64_t scan_timer;

enum conn_kind { CK_UNKNOWN, CK_TRIGGER, CK_SUBMIT };

struct conn {
	int fd;
	enum conn_kind kind;
	uid_t uid;
	struct buf in;
	struct psub *sub;
	uint64_t timer;
};

static void scan_maildrop(void);

static void
scan_cb(struct loop *l, void *ctx)
{
	scan_timer = 0;
	scan_maildrop();
}

/* Scan soon, once, however many wake-ups arrive. */
static void
scan_soon(void)
{
	if (scan_timer == 0)
		scan_timer = loop_timer_add(ploop, 1, scan_cb, NULL);
}

/* --- connections ------------------------------------------------------------- */

static void
conn_close(struct conn *c)
{
	if (c->timer != 0)
		loop_timer_cancel(ploop, c->timer);
	if (c->sub != NULL) {
		log_debug("uid=%ld: submission not completed", (long)c->uid);
		psub_free(&c->sub);
	}
	buf_free(&c->in);
	server_disconnect(ploop, c->fd);
	free(c);
}

static void
conn_timeout(struct loop *l, void *ctx)
{
	struct conn *c = ctx;

	c->timer = 0;
	log_warnx("uid=%ld: timeout during submission", (long)c->uid);
	conn_close(c);
}

static void
reply(struct conn *c, enum psub_result r)
{
	struct ipc_msg m;

	ipc_init(&m);
	if (r == PSUB_DONE) {
		ipc_put(&m, "status", "ok");
		ipc_put(&m, "queue_id", psub_queue_id(c->sub));
	} else {
		ipc_put(&m, "status", r == PSUB_TEMP ? "temp" : "fail");
		ipc_put_int(&m, "exit", psub_exit(c->sub));
		ipc_put(&m, "reason", psub_reason(c->sub));
		log_info("uid=%ld: submission %s: %s", (long)c->uid,
		    r == PSUB_TEMP ? "deferred" : "refused", psub_reason(c->sub));
	}
	if (ipc_send(c->fd, &m, REPLY_TIMEOUT_MS) < 0)
		log_debug("uid=%ld: reply: %s", (long)c->uid, strerror(errno));
	ipc_free(&m);
}

/* Handle the whole frames in c->in. 1: the connection is finished. */
static int
conn_frames(struct conn *c)
{
	struct ipc_msg m;
	size_t flen;
	int fr, done = 0;

	ipc_init(&m);
	while (!done && (fr = ipc_frame_check(&c->in, FRAME_MAX, &flen)) != 0) {
		enum psub_result r;

		if (fr < 0 || ipc_decode(&m, c->in.data, flen) < 0) {
			log_warnx("uid=%ld: malformed submission frame", (long)c->uid);
			done = 1;
			break;
		}
		buf_consume(&c->in, flen);
		r = psub_frame(c->sub, &m);
		if (r == PSUB_MORE)
			continue;
		reply(c, r);
		done = 1;
		if (r == PSUB_DONE)
			(void)trigger_send("qmgr", "I");
	}
	ipc_free(&m);
	return done;
}

static void
conn_read(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct conn *c = ctx;
	ssize_t n;
	int eof = 0;

	if (buf_reserve(&c->in, READ_CHUNK) < 0) {
		conn_close(c);
		return;
	}
	n = read(fd, c->in.data + c->in.len, READ_CHUNK);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		eof = 1;
	} else if (n == 0) {
		eof = 1;
	} else {
		c->in.len += (size_t)n;
		c->in.data[c->in.len] = '\0';
	}
	if (c->kind == CK_UNKNOWN && c->in.len > 0) {
		c->kind = c->in.data[0] == '\0' ? CK_SUBMIT : CK_TRIGGER;
		if (c->kind == CK_SUBMIT)
			c->sub = psub_new(c->uid, "socket");
	}
	if (c->kind == CK_TRIGGER) {
		/* Any wake-up byte means the same: look at maildrop/. */
		buf_reset(&c->in);
		scan_soon();
		if (eof)
			conn_close(c);
		return;
	}
	if (c->kind == CK_SUBMIT && conn_frames(c)) {
		conn_close(c);
		return;
	}
	if (eof) {
		conn_close(c);
		return;
	}
	loop_timer_cancel(l, c->timer);
	c->timer = loop_timer_add(l, CONN_TIMEOUT_MS, conn_timeout, c);
}

static void
pickup_conn(struct loop *l, int fd)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	struct ucred cred;
	socklen_t len = sizeof(cred);

	c->fd = fd;
	buf_init(&c->in, FRAME_MAX + READ_CHUNK);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("SO_PEERCRED");
		buf_free(&c->in);
		server_disconnect(l, fd);
		free(c);
		return;
	}
	c->uid = cred.uid;
	if (loop_fd_set(l, fd, LOOP_READ, conn_read, c) < 0) {
		log_warn("register connection");
		buf_free(&c->in);
		server_disconnect(l, fd);
		free(c);
		return;
	}
	c->timer = loop_timer_add(l, CONN_TIMEOUT_MS, conn_timeout, c);
}

/* --- maildrop/ ---------------------------------------------------------------- */

static void
to_corrupt(const char *name, const char *why, uid_t uid)
{
	char *src = xasprintf("%s/%s/%s", pconf.qdir, QUEUE_MAILDROP, name);
	char *dst = xasprintf("%s/%s/maildrop.%s", pconf.qdir, QUEUE_CORRUPT, name);

	log_warnx("maildrop file %s (uid=%ld): %s; moved to %s", name, (long)uid, why,
	    QUEUE_CORRUPT);
	if (rename(src, dst) < 0) {
		log_warn("rename %s to %s", src, dst);
		(void)unlink(src);
	} else {
		char *dir = xasprintf("%s/%s", pconf.qdir, QUEUE_CORRUPT);
		(void)fsync_dir(dir);
		free(dir);
	}
	free(src);
	free(dst);
}

/* One maildrop file. 1 when it is gone (queued, refused, junk), 0 when it
 * stays for a later scan. */
static int
maildrop_file(int dfd, const char *name)
{
	struct stat st;
	struct ipc_msg m;
	struct psub *s;
	enum psub_result r = PSUB_MORE;
	long long max = pconf.size_limit > 0
	    ? pconf.size_limit + pconf.size_limit / 8 + SUBMIT_ENVELOPE_MAX : 0;
	int fd, ret = 1;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		if (errno == ELOOP || errno == ENXIO || errno == EISDIR) {
			log_warnx("maildrop: %s is not a regular file; removed", name);
			if (unlinkat(dfd, name, 0) < 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0)
				log_debug("maildrop: remove %s: %s", name, strerror(errno));
			return 1;
		}
		log_warn("maildrop: open %s", name);
		return 0;
	}
	if (fstat(fd, &st) < 0) {
		log_warn("maildrop: fstat %s", name);
		close(fd);
		return 0;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		/* A hard link could lend someone else's uid to a file. */
		log_warnx("maildrop: %s: %s; removed", name,
		    S_ISREG(st.st_mode) ? "more than one link" : "not a regular file");
		close(fd);
		if (unlinkat(dfd, name, 0) < 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0)
			log_debug("maildrop: remove %s: %s", name, strerror(errno));
		return 1;
	}
	if (max > 0 && st.st_size > max) {
		close(fd);
		to_corrupt(name, "file too large", st.st_uid);
		return 1;
	}
	s = psub_new(st.st_uid, "maildrop");
	ipc_init(&m);
	while (r == PSUB_MORE) {
		if (ipc_recv(fd, &m, FRAME_MAX, -1) < 0) {
			r = PSUB_CORRUPT;
			break;
		}
		r = psub_frame(s, &m);
	}
	ipc_free(&m);
	close(fd);
	switch (r) {
	case PSUB_DONE:
		if (unlinkat(dfd, name, 0) < 0)
			log_warn("%s: unlink maildrop file %s", psub_queue_id(s), name);
		(void)trigger_send("qmgr", "I");
		break;
	case PSUB_TEMP:
		log_warnx("maildrop file %s (uid=%ld): %s; will retry", name,
		    (long)st.st_uid, psub_reason(s));
		ret = 0;
		break;
	case PSUB_FAIL:
	case PSUB_CORRUPT:
	default:
		to_corrupt(name, r == PSUB_FAIL ? psub_reason(s) : "malformed file",
		    st.st_uid);
		break;
	}
	psub_free(&s);
	return ret;
}

static void
scan_maildrop(void)
{
	char *path = xasprintf("%s/%s", pconf.qdir, QUEUE_MAILDROP);
	struct dirent *de;
	DIR *d;
	int n = 0, more = 0;
	time_t now = time(NULL);

	if ((d = opendir(path)) == NULL) {
		log_warn("open %s", path);
		free(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			struct stat st;
			/* A temp file left by a sendmail that died mid-write. */
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0
			    && fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
			    && now - st.st_mtime > STALE_TMP_SECS) {
				log_info("maildrop: removing stale temporary file %s", de->d_name);
				(void)unlinkat(dirfd(d), de->d_name, 0);
			}
			continue;
		}
		if (n++ >= SCAN_MAX) {
			more = 1;
			break;
		}
		(void)maildrop_file(dirfd(d), de->d_name);
	}
	closedir(d);
	free(path);
	if (more)
		scan_soon();
}

/* --- start-up ------------------------------------------------------------------ */

static void
pickup_post_init(struct loop *l)
{
	char *err = NULL;
	const char *v;

	ploop = l;
	pconf.qdir = xstrdup(config_str("queue_directory"));
	pconf.myhostname = xstrdup(config_str("myhostname"));
	pconf.myorigin = xstrdup(config_str("myorigin"));
	pconf.mail_name = xstrdup(config_str("mail_name"));
	pconf.size_limit = config_int("message_size_limit");
	pconf.header_limit = (v = config_get("header_size_limit")) != NULL
	    && config_int("header_size_limit") > 0
	    ? (size_t)config_int("header_size_limit") : 102400;
	pconf.hopcount_limit = config_int("hopcount_limit");
	if ((pconf.resolver = resolver_open(&err)) == NULL)
		log_fatalx("%s", err ? err : "cannot open lookup tables");
	scan_maildrop();
}

static void
pickup_drain(struct loop *l)
{
	if (scan_timer != 0) {
		loop_timer_cancel(l, scan_timer);
		scan_timer = 0;
	}
}

static const struct server_ops pickup_ops = {
	.kind = SERVER_TRIGGER,
	.name = "pickup",
	.pre_init = NULL,
	.post_init = pickup_post_init,
	.conn = pickup_conn,
	.serve = NULL,
	.drain = pickup_drain,
};

int
main(int argc, char **argv)
{
	return server_main(argc, argv, &pickup_ops);
}
