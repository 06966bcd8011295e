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
 * connection (a conn, lib/util/conn.c) idle for CONN_TIMEOUT_MS is
 * dropped; a scan reads at most SCAN_MAX files before yielding to the
 * event loop.
 * - non_smtpd_milters (psub.c) see each message before its queue file is
 *   committed; their edits are in the file that gets the queue ID.
 * - non_smtpd_milters run on this loop (milter_run_start): a submission
 *   waits for them (PSUB_WAIT, its reply comes from pconn_sub_done) while
 *   other connections go on; a maildrop pass stops at a file the milters
 *   have and goes on when they are done (maildrop_sub_done).
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
#include "util/conn.h"
#include "util/fsutil.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "mail/submit.h"
#include "mail/bcc.h"
#include "pickup.h"

#define CONN_TIMEOUT_MS (300 * 1000)
#define FRAME_MAX (SUBMIT_ENVELOPE_MAX + 1024)
#define SCAN_MAX 1000
#define STALE_TMP_SECS (24 * 3600)   /* a '.' file this old is a dead sendmail's */

struct pickup_conf pconf;

static struct loop *ploop;
static uint64_t scan_timer;

enum pconn_kind { CK_UNKNOWN, CK_TRIGGER, CK_SUBMIT };

/* One client of public/pickup, on a conn (lib/util/conn.c). */
struct pconn {
	int fd;
	struct conn *conn;
	enum pconn_kind kind;
	uid_t uid;
	struct psub *sub;
	int waiting;             /* the milters have the message */
	int replied;             /* close once the reply is out */
};

/* A maildrop file whose message the milters have; the scan waits. */
static struct {
	struct psub *sub;
	char *name;
	uid_t uid;
} md_pending;
/* Files left for later (temporary failures) during this pass. */
static char **md_deferred;

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
pconn_close(struct pconn *c)
{
	if (c->sub != NULL) {
		if (!c->replied)
			log_debug("uid=%ld: submission not completed", (long)c->uid);
		psub_free(&c->sub);
	}
	conn_free(&c->conn);
	server_disconnect(ploop, c->fd);
	free(c);
}

/* The one reply of a submission; the connection closes once it is out. */
static void
reply(struct pconn *c, enum psub_result r)
{
	struct ipc_msg m;
	struct buf frame = BUF_INIT(0);

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
	ipc_encode(&m, &frame);
	ipc_free(&m);
	conn_write(c->conn, frame.data, frame.len);
	buf_free(&frame);
	c->replied = 1;
	conn_set_read(c->conn, 0);   /* nothing more is taken */
}

/* Handle the whole frames in the input: 1 when the submission is over
 * (replied, or a malformed frame). */
static int
pconn_frames(struct pconn *c)
{
	struct ipc_msg m;
	size_t n, flen;
	const char *p;
	int fr, done = 0;

	ipc_init(&m);
	while (!done) {
		enum psub_result r;

		p = conn_in(c->conn, &n);
		fr = ipc_frame_len(p, n, FRAME_MAX, &flen);
		if (fr == 0)
			break;
		if (fr < 0 || ipc_decode(&m, p, flen) < 0) {
			log_warnx("uid=%ld: malformed submission frame", (long)c->uid);
			done = 1;
			break;
		}
		conn_in_consume(c->conn, flen);
		r = psub_frame(c->sub, &m);
		if (r == PSUB_MORE)
			continue;
		if (r == PSUB_WAIT) {
			/* pconn_sub_done replies; nothing more is read. */
			c->waiting = 1;
			conn_set_read(c->conn, 0);
			break;
		}
		reply(c, r);
		done = 1;
		if (r == PSUB_DONE)
			(void)trigger_keep("qmgr", "I");
	}
	ipc_free(&m);
	return done;
}

/* From the loop: the milters are done and the submission is over. */
static void
pconn_sub_done(void *ctx, enum psub_result r)
{
	struct pconn *c = ctx;

	c->waiting = 0;
	reply(c, r);
	if (r == PSUB_DONE)
		(void)trigger_keep("qmgr", "I");
	if (conn_flush(c->conn) != 0)
		pconn_close(c);
}

static void
pconn_cb(struct conn *cn, unsigned ev, void *ctx)
{
	struct pconn *c = ctx;
	size_t n;
	const char *p = conn_in(cn, &n);

	if (c->kind == CK_UNKNOWN && n > 0) {
		c->kind = p[0] == '\0' ? CK_SUBMIT : CK_TRIGGER;
		if (c->kind == CK_SUBMIT)
			c->sub = psub_new(c->uid, "socket", ploop, pconn_sub_done, c);
	}
	if (c->kind == CK_TRIGGER && n > 0) {
		/* Any wake-up byte means the same: look at maildrop/. */
		conn_in_consume(cn, n);
		scan_soon();
	}
	if (c->kind == CK_SUBMIT && !c->replied && !c->waiting && pconn_frames(c)
	    && !c->replied) {
		pconn_close(c);          /* malformed: no reply */
		return;
	}
	if (c->replied && conn_flush(cn) != 0) {
		pconn_close(c);          /* out (or the client is gone) */
		return;
	}
	if (ev & CONN_EV_TIMEOUT)
		log_warnx("uid=%ld: timeout during submission", (long)c->uid);
	else if ((ev & CONN_EV_ERROR) && !c->replied)
		log_debug("uid=%ld: %s", (long)c->uid, conn_error(cn));
	if (ev & (CONN_EV_EOF | CONN_EV_ERROR | CONN_EV_TIMEOUT))
		pconn_close(c);
}

static void
pickup_conn(struct loop *l, int fd)
{
	struct pconn *c = xcalloc(1, sizeof(*c));
	struct ucred cred;
	socklen_t len = sizeof(cred);

	c->fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("SO_PEERCRED");
		server_disconnect(l, fd);
		free(c);
		return;
	}
	c->uid = cred.uid;
	/* Frames are bounded (FRAME_MAX): one frame and a read of the next. */
	c->conn = conn_new(l, fd, FRAME_MAX + 64 * 1024, pconn_cb, c);
	conn_set_timeout(c->conn, CONN_TIMEOUT_MS);
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

/* What a maildrop file's submission came to: 1 when the file is gone
 * (queued, refused, junk), 0 when it stays for a later scan. */
static int
maildrop_result(const char *name, uid_t uid, struct psub *s, enum psub_result r)
{
	char *path;

	switch (r) {
	case PSUB_DONE:
		path = xasprintf("%s/%s/%s", pconf.qdir, QUEUE_MAILDROP, name);
		if (unlink(path) < 0)
			log_warn("%s: unlink maildrop file %s", psub_queue_id(s), name);
		free(path);
		(void)trigger_keep("qmgr", "I");
		return 1;
	case PSUB_TEMP:
		log_warnx("maildrop file %s (uid=%ld): %s; will retry", name,
		    (long)uid, psub_reason(s));
		strv_push(&md_deferred, name);
		return 0;
	case PSUB_FAIL:
	case PSUB_CORRUPT:
	default:
		to_corrupt(name, r == PSUB_FAIL ? psub_reason(s) : "malformed file", uid);
		return 1;
	}
}

/* From the loop: the milters are done with the pending maildrop file;
 * the scan goes on. */
static void
maildrop_sub_done(void *ctx, enum psub_result r)
{
	(void)ctx;
	(void)maildrop_result(md_pending.name, md_pending.uid, md_pending.sub, r);
	psub_free(&md_pending.sub);
	xfree(&md_pending.name);
	scan_soon();
}

/* One maildrop file. 1 when it is gone (queued, refused, junk), 0 when it
 * stays for a later scan, 2 when the milters have it (md_pending; the
 * scan stops until maildrop_sub_done). */
static int
maildrop_file(int dfd, const char *name)
{
	struct stat st;
	struct ipc_msg m;
	struct psub *s;
	enum psub_result r = PSUB_MORE;
	long long max = pconf.size_limit > 0
	    ? pconf.size_limit + pconf.size_limit / 8 + SUBMIT_ENVELOPE_MAX : 0;
	int fd, ret;

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
	s = psub_new(st.st_uid, "maildrop", ploop, maildrop_sub_done, NULL);
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
	if (r == PSUB_WAIT) {
		md_pending.sub = s;
		md_pending.name = xstrdup(name);
		md_pending.uid = st.st_uid;
		return 2;
	}
	ret = maildrop_result(name, st.st_uid, s, r);
	psub_free(&s);
	return ret;
}

/* A pass over maildrop/: every file not left for later in this pass.
 * It stops while the milters have a file and goes on after; a pass that
 * reached the end forgets the files it left, for the next wake-up. */
static void
scan_maildrop(void)
{
	char *path = xasprintf("%s/%s", pconf.qdir, QUEUE_MAILDROP);
	struct dirent *de;
	DIR *d;
	int n = 0, more = 0, waiting = 0;
	time_t now = time(NULL);

	if (md_pending.sub != NULL) {
		free(path);
		return;   /* maildrop_sub_done scans again */
	}
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
		if (strv_contains_ci(md_deferred, de->d_name))
			continue;
		if (n++ >= SCAN_MAX) {
			more = 1;
			break;
		}
		if (maildrop_file(dirfd(d), de->d_name) == 2) {
			waiting = 1;
			break;
		}
	}
	closedir(d);
	free(path);
	if (more)
		scan_soon();
	else if (!waiting)
		strv_free(&md_deferred);
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
	pconf.line_length_limit = config_int("line_length_limit") >= 512
	    ? (size_t)config_int("line_length_limit") : 512;
	if ((pconf.resolver = resolver_open(&err)) == NULL)
		log_fatalx("%s", err ? err : "cannot open lookup tables");
	if ((pconf.bcc = bcc_open(&err)) == NULL)
		log_fatalx("%s", err);
	if (cc_tables_open(&pconf.cc, &err) < 0)
		log_fatalx("%s", err);
	{
		const char *merr = NULL;
		if (milter_config_load("non_smtpd_milters", &pconf.milters,
		    &pconf.nmilters, pconf.milter_macros, &merr) < 0)
			log_fatalx("non_smtpd_milters: %s", merr);
		pconf.macro_daemon_name = config_str("milter_macro_daemon_name");
		pconf.macro_v = config_str("milter_macro_v");
	}
	scan_maildrop();
}

static void
pickup_drain(struct loop *l)
{
	if (scan_timer != 0) {
		loop_timer_cancel(l, scan_timer);
		scan_timer = 0;
	}
	/* The file stays in maildrop/ for the next start. */
	psub_free(&md_pending.sub);
	xfree(&md_pending.name);
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
