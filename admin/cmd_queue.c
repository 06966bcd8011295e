/*
 * cmd_queue - "postern queue": list, inspect and change the mail queue
 * (Postfix's mailq/postqueue, postcat -q and postsuper in one command).
 *
 *   postern queue list [--json|-j]       mailq format, or postqueue -j lines
 *   postern queue show ID                envelope and content (postcat -q)
 *   postern queue flush                  deferred mail is due now
 *   postern queue hold|release|delete|requeue ID...|ALL|- [QUEUE]
 *
 * Listing goes through the showq service (public/showq) so anyone may
 * list; when it is not reachable, a caller who can read the queue reads
 * it directly with the same code (lib/mail/showq.c).
 *
 * Changes are for root, the mail owner, or (privilege separation off) the
 * user who owns the queue; everyone else gets exit 77 (EX_NOPERM).
 * Queue IDs are validated before any path is built from them.
 *
 * Active messages: qmgr has them in memory and an agent may be delivering
 * from them, so moving one away could repeat or lose a delivery. hold,
 * delete and requeue wait (up to ACTIVE_WAIT_MS) for the message to leave
 * active/ and act then; a message still active after that is reported
 * and left alone. Files qmgr moves under us (rename ENOENT) are looked up
 * again.
 *
 * Exit: 0 done; 1 a named message was not found or could not be changed;
 * 64 usage; 65 a bad queue ID; 69 listing unavailable; 74 I/O; 77 no
 * permission.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/net.h"
#include "util/priv.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "mail/showq.h"
#include "admin.h"

#define SHOWQ_CONNECT_MS 2000
#define SHOWQ_RECV_MS 60000
#define ACTIVE_WAIT_MS 10000
#define MOVE_TRIES 20
#define STDIN_IDS_MAX 1000000

static const char *qdir;

static int
usage(void)
{
	fprintf(stderr,
	    "usage: postern queue list [--json]\n"
	    "       postern queue show ID\n"
	    "       postern queue flush\n"
	    "       postern queue hold|release|delete|requeue ID...|ALL|- [QUEUE]\n");
	return EX_USAGE;
}

static const char *
queue_dir(void)
{
	const char *d = config_get("queue_directory");

	return d != NULL && *d != '\0' ? d : "/var/spool/postern";
}

/*
 * Listing.
 */

struct lister {
	int json;
	long long bytes;
	size_t count;
	struct buf out;
	char *why;         /* why the showq service was not used */
};

static void
emit(struct lister *ls, const struct showq_msg *m)
{
	buf_reset(&ls->out);
	if (ls->json) {
		showq_format_json(m, &ls->out);
	} else {
		if (ls->count == 0)
			showq_format_header(&ls->out);
		showq_format_mailq(m, &ls->out);
	}
	ls->count++;
	ls->bytes += m->size;
	fwrite(ls->out.data, 1, ls->out.len, stdout);
}

static int
emit_cb(struct showq_msg *m, void *ctx)
{
	emit(ctx, m);
	return 0;
}

static void
warn_stderr(const char *text)
{
	fprintf(stderr, "postern: warning: %s\n", text);
}

/* 1 listed through showq; 0 no service; -1 broken mid-way (reported);
 * -2 refused by authorized_mailq_users (reported). */
static int
list_showq(struct lister *ls)
{
	struct ipc_msg f;
	struct showq_msg m;
	char *path = xasprintf("%s/%s/showq", qdir, QUEUE_PUBLIC), *err = NULL;
	long long end;
	int fd, rc = -1;

	fd = net_connect_unix(path, SHOWQ_CONNECT_MS);
	if (fd < 0) {
		ls->why = xasprintf("connect to %s: %s", path, strerror(errno));
		xfree(&path);
		return 0;
	}
	xfree(&path);
	ipc_init(&f);
	for (;;) {
		ipc_reset(&f);
		if (ipc_recv(fd, &f, IPC_MAX_DEFAULT, SHOWQ_RECV_MS) < 0) {
			if (ls->count == 0 && (errno == EPIPE || errno == ECONNRESET)) {
				/* Refused before anything came: read directly. */
				rc = 0;
			} else {
				fprintf(stderr, "postern: error: queue listing incomplete: %s\n",
				    strerror(errno));
			}
			break;
		}
		if (ipc_get(&f, "error") != NULL) {
			fprintf(stderr, "postern: fatal: %s\n", ipc_get(&f, "error"));
			rc = -2;
			break;
		}
		if (ipc_get_int(&f, "end", &end) == 0) {
			rc = 1;
			break;
		}
		if (showq_msg_decode(&f, &m, &err) < 0) {
			fprintf(stderr, "postern: error: %s\n", err);
			xfree(&err);
			break;
		}
		emit(ls, &m);
		showq_msg_free(&m);
	}
	ipc_free(&f);
	close(fd);
	return rc;
}

static int
queue_list(int argc, char **argv)
{
	struct lister ls;
	char *err = NULL;
	int i, r;

	memset(&ls, 0, sizeof(ls));
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			ls.json = 1;
		else
			return usage();
	}
	buf_init(&ls.out, 0);
	r = list_showq(&ls);
	if (r == -2) {
		buf_free(&ls.out);
		xfree(&ls.why);
		return EX_NOPERM;
	}
	if (r == 0) {
		if (showq_scan(qdir, emit_cb, &ls, warn_stderr, &err) < 0) {
			int save = errno;

			fprintf(stderr, "postern: fatal: queue report unavailable: %s "
			    "(is the mail system running?), and reading the queue "
			    "directly failed: %s\n", ls.why != NULL ? ls.why :
			    "showq service unavailable", err);
			xfree(&err);
			xfree(&ls.why);
			buf_free(&ls.out);
			return save == EACCES || save == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
		}
	}
	if (!ls.json) {
		buf_reset(&ls.out);
		showq_format_footer(&ls.out, ls.bytes, ls.count);
		fwrite(ls.out.data, 1, ls.out.len, stdout);
	}
	buf_free(&ls.out);
	xfree(&ls.why);
	if (fflush(stdout) != 0)
		return EX_IOERR;
	return r < 0 ? EX_TEMPFAIL : 0;
}

/*
 * show
 */

static const char *const show_queues[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT, NULL,
};

static int
print_cb(const char *p, size_t n, void *ctx)
{
	(void)ctx;
	return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

static void
print_field(const char *label, const char *s)
{
	const unsigned char *p;

	printf("%s: ", label);
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
	putchar('\n');
}

static int
queue_show(int argc, char **argv)
{
	struct qenv env;
	char *path = NULL, *err = NULL, *log = NULL, when[64];
	const char *where = NULL;
	struct tm tm;
	time_t t;
	size_t i, loglen;
	int fd = -1, q;

	if (argc != 1)
		return usage();
	if (!queue_id_valid(argv[0])) {
		fprintf(stderr, "postern: fatal: bad queue ID: %.100s\n", argv[0]);
		return EX_DATAERR;
	}
	for (q = 0; show_queues[q] != NULL && fd < 0; q++) {
		path = queue_path(qdir, show_queues[q], argv[0]);
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0 && errno != ENOENT) {
			fprintf(stderr, "postern: fatal: open %s: %s%s\n", path, strerror(errno),
			    errno == EACCES ? " (only root or the mail owner may read "
			    "queue files)" : "");
			xfree(&path);
			return errno == EACCES ? EX_NOPERM : EX_IOERR;
		}
		where = show_queues[q];
		xfree(&path);
	}
	if (fd < 0) {
		fprintf(stderr, "postern: fatal: %s: no such message in the queue\n", argv[0]);
		return 1;
	}
	memset(&env, 0, sizeof(env));
	if (queue_read(fd, &env, &err) < 0) {
		path = queue_path(qdir, where, argv[0]);
		if (access(path, F_OK) < 0 && errno == ENOENT) {
			/* Delivered (and its file recycled) while we read. */
			fprintf(stderr, "postern: fatal: %s: no such message in the queue\n",
			    argv[0]);
			xfree(&path);
			xfree(&err);
			qenv_free(&env);
			close(fd);
			return 1;
		}
		xfree(&path);
		fprintf(stderr, "postern: fatal: %s/%s: %s\n", where, argv[0],
		    err != NULL ? err : strerror(errno));
		xfree(&err);
		qenv_free(&env);
		close(fd);
		return EX_DATAERR;
	}
	t = env.arrival.tv_sec;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)t);
	printf("*** ENVELOPE RECORDS %s/%s ***\n", where, argv[0]);
	printf("queue_name: %s\n", where);
	printf("message_size: %lld\n", (long long)env.content_size);
	printf("file_size: %lld\n", (long long)env.file_size);
	printf("message_arrival_time: %s\n", when);
	print_field("sender", env.sender);
	for (i = 0; i < env.nattr; i++) {
		char *nv = xasprintf("%s=%s", env.attrs[i].name, env.attrs[i].value);

		print_field("named_attribute", nv);
		free(nv);
	}
	for (i = 0; i < env.nrcpt; i++) {
		const struct qrcpt *r = &env.rcpts[i];

		printf("recipient: ");
		print_field(r->status == 'D' ? "done" : "pending", r->addr);
		if (r->orig != NULL && *r->orig != '\0')
			print_field("original_recipient", r->orig);
		if (r->notify != NULL && *r->notify != '\0')
			print_field("notify", r->notify);
	}
	path = queue_path(qdir, QUEUE_DEFER, argv[0]);
	if (file_read_all(path, 1024 * 1024, &log, &loglen) == 0 && loglen > 0) {
		printf("*** DEFER LOG %s/%s ***\n", QUEUE_DEFER, argv[0]);
		fwrite(log, 1, loglen, stdout);
		if (log[loglen - 1] != '\n')
			putchar('\n');
	}
	xfree(&log);
	xfree(&path);
	printf("*** MESSAGE CONTENTS %s/%s ***\n", where, argv[0]);
	fflush(stdout);
	if (queue_content(fd, &env, print_cb, NULL) != 0)
		fprintf(stderr, "postern: error: %s/%s: cannot read the content\n",
		    where, argv[0]);
	printf("*** MESSAGE FILE END %s/%s ***\n", where, argv[0]);
	qenv_free(&env);
	close(fd);
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/*
 * Changes.
 */

/* Root, the mail owner, or the owner of the queue (privilege separation
 * off: the instance runs as that user). */
static int
may_change(void)
{
	const char *owner = config_get("mail_owner");
	uid_t uid = getuid(), ouid;
	gid_t ogid;
	struct stat st;
	char *path;
	int ok;

	if (uid == 0)
		return 1;
	if (owner != NULL && priv_user(owner, &ouid, &ogid) == 0 && ouid == uid)
		return 1;
	path = xasprintf("%s/%s", qdir, QUEUE_DEFERRED);
	ok = stat(path, &st) == 0 && st.st_uid == uid;
	xfree(&path);
	return ok;
}

static int
require_change(void)
{
	if (may_change())
		return 0;
	fprintf(stderr, "postern: fatal: permission denied: only root or the mail "
	    "owner may change the queue\n");
	return EX_NOPERM;
}

enum qop { OP_HOLD, OP_RELEASE, OP_DELETE, OP_REQUEUE };

struct opdef {
	const char *name;
	const char *const *from;     /* queues the message may be in */
	const char *to;              /* NULL: delete */
	const char *done;            /* log text */
	const char *summary;         /* postsuper-style count line */
	const char *trigger;         /* qmgr wake-up afterwards, or NULL */
};

static const char *const from_hold[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, NULL,
};
static const char *const from_release[] = { QUEUE_HOLD, NULL };
static const char *const from_delete[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT, NULL,
};
static const char *const from_requeue[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, NULL,
};

static const struct opdef opdefs[] = {
	[OP_HOLD] = { "hold", from_hold, QUEUE_HOLD, "placed on hold",
		"Placed on hold", NULL },
	[OP_RELEASE] = { "release", from_release, QUEUE_DEFERRED,
		"released from hold", "Released from hold", "D" },
	[OP_DELETE] = { "delete", from_delete, NULL, "removed", "Deleted", NULL },
	[OP_REQUEUE] = { "requeue", from_requeue, QUEUE_INCOMING, "requeued",
		"Requeued", "I" },
};

/* Which of the queues holds id? The queue name, or NULL. */
static const char *
locate(const char *id, const char *const *queues)
{
	struct stat st;
	char *path;
	int i, found;

	for (i = 0; queues[i] != NULL; i++) {
		path = queue_path(qdir, queues[i], id);
		found = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
		xfree(&path);
		if (found)
			return queues[i];
	}
	return NULL;
}

static void
remove_log(const char *dir, const char *id)
{
	char *path = queue_path(qdir, dir, id);

	if (unlink(path) < 0 && errno != ENOENT)
		fprintf(stderr, "postern: warning: remove %s: %s\n", path, strerror(errno));
	xfree(&path);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Give the file a fresh mtime: qmgr takes files whose mtime is due. */
static int
touch_now(const char *queue, const char *id)
{
	char *path = queue_path(qdir, queue, id);
	int rc = utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);

	xfree(&path);
	return rc;
}

/* 1 done; 0 not in any of the op's queues; -1 failed (reported). */
static int
apply(enum qop op, const char *id, const char *only_queue)
{
	const struct opdef *d = &opdefs[op];
	const char *const *from = d->from;
	const char *one[2] = { only_queue, NULL };
	const char *q;
	char *path, *dir;
	int tries, waited;

	if (only_queue != NULL)
		from = one;
	for (tries = 0; tries < MOVE_TRIES; tries++) {
		q = locate(id, from);
		if (q == NULL)
			return 0;
		if (strcmp(q, QUEUE_ACTIVE) == 0) {
			/* Wait until qmgr is done with it (see the header comment). */
			for (waited = 0; waited < ACTIVE_WAIT_MS &&
			    locate(id, (const char *const[]){ QUEUE_ACTIVE, NULL }) != NULL;
			    waited += 100)
				sleep_ms(100);
			if (waited >= ACTIVE_WAIT_MS) {
				fprintf(stderr, "postern: error: %s: the message is being "
				    "delivered (active queue); try again later\n", id);
				return -1;
			}
			continue;
		}
		if (d->to == NULL) {
			path = queue_path(qdir, q, id);
			if (unlink(path) < 0) {
				int save = errno;

				xfree(&path);
				if (save == ENOENT)
					continue;
				fprintf(stderr, "postern: error: %s: remove from %s: %s\n", id, q,
				    strerror(save));
				return -1;
			}
			xfree(&path);
			dir = xasprintf("%s/%s", qdir, q);
			(void)fsync_dir(dir);
			xfree(&dir);
			remove_log(QUEUE_DEFER, id);
			remove_log(QUEUE_BOUNCE, id);
			log_info("%s: %s", id, d->done);
			return 1;
		}
		if (strcmp(q, d->to) == 0 && op != OP_REQUEUE)
			return 1;
		/* release and requeue: due now, and no stale deferral reason. */
		if (op == OP_RELEASE || op == OP_REQUEUE) {
			if (touch_now(q, id) < 0 && errno == ENOENT)
				continue;
			remove_log(QUEUE_DEFER, id);
		}
		if (strcmp(q, d->to) == 0) {
			log_info("%s: %s", id, d->done);
			return 1;
		}
		if (queue_move(qdir, q, d->to, id) < 0) {
			if (errno == ENOENT)
				continue;
			fprintf(stderr, "postern: error: %s: move from %s to %s: %s\n", id, q,
			    d->to, strerror(errno));
			return -1;
		}
		/* queue_move() does not fsync: a hold (or release) the admin
		 * was told about must survive a crash, so make it durable. */
		dir = xasprintf("%s/%s", qdir, d->to);
		if (fsync_dir(dir) < 0)
			log_warn("%s: fsync %s after the move", id, dir);
		xfree(&dir);
		log_info("%s: %s", id, d->done);
		return 1;
	}
	fprintf(stderr, "postern: error: %s: the message keeps moving; try again\n", id);
	return -1;
}

static int
is_queue_name(const char *s)
{
	return strcmp(s, QUEUE_INCOMING) == 0 || strcmp(s, QUEUE_ACTIVE) == 0 ||
	    strcmp(s, QUEUE_DEFERRED) == 0 || strcmp(s, QUEUE_HOLD) == 0 ||
	    strcmp(s, QUEUE_CORRUPT) == 0;
}

/* Every queue-ID name in the op's queues (or only_queue). */
static char **
all_ids(enum qop op, const char *only_queue, size_t *n_r)
{
	const char *const *from = opdefs[op].from;
	const char *one[2] = { only_queue, NULL };
	struct dirent *de;
	char **ids = NULL, *path;
	size_t n = 0;
	DIR *dp;
	int i;

	if (only_queue != NULL)
		from = one;
	for (i = 0; from[i] != NULL; i++) {
		path = xasprintf("%s/%s", qdir, from[i]);
		dp = opendir(path);
		if (dp == NULL) {
			if (errno != ENOENT)
				fprintf(stderr, "postern: warning: open %s: %s\n", path,
				    strerror(errno));
			xfree(&path);
			continue;
		}
		xfree(&path);
		while ((de = readdir(dp)) != NULL) {
			if (!queue_id_valid(de->d_name))
				continue;
			ids = xreallocarray(ids, n + 1, sizeof(*ids));
			ids[n++] = xstrdup(de->d_name);
		}
		closedir(dp);
	}
	*n_r = n;
	return ids;
}

/* IDs from stdin, white-space separated (postsuper's "-"). */
static char **
stdin_ids(size_t *n_r)
{
	char word[256], **ids = NULL;
	size_t n = 0;

	while (n < STDIN_IDS_MAX && scanf("%255s", word) == 1) {
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = xstrdup(word);
	}
	*n_r = n;
	return ids;
}

static int
queue_change(enum qop op, int argc, char **argv)
{
	const struct opdef *d = &opdefs[op];
	const char *only_queue = NULL;
	char **ids = NULL;
	size_t n = 0, i, done = 0;
	int status = 0, r, all = 0, from_stdin = 0, a;

	if (argc < 1)
		return usage();
	if ((r = require_change()) != 0)
		return r;
	/* A trailing queue name restricts ALL and "-" to that queue. */
	if (argc >= 2 && is_queue_name(argv[argc - 1]) &&
	    (strcmp(argv[0], "ALL") == 0 || strcmp(argv[0], "-") == 0)) {
		only_queue = argv[argc - 1];
		argc--;
	}
	for (a = 0; a < argc; a++) {
		if (strcmp(argv[a], "ALL") == 0)
			all = 1;
		else if (strcmp(argv[a], "-") == 0)
			from_stdin = 1;
		else if (!queue_id_valid(argv[a])) {
			fprintf(stderr, "postern: fatal: bad queue ID: %.100s\n", argv[a]);
			return EX_DATAERR;
		}
	}
	if (only_queue != NULL && op == OP_RELEASE && strcmp(only_queue, QUEUE_HOLD) != 0) {
		fprintf(stderr, "postern: fatal: release takes messages from hold only\n");
		return EX_USAGE;
	}
	if (all) {
		ids = all_ids(op, only_queue, &n);
		for (i = 0; i < n; i++) {
			if (apply(op, ids[i], only_queue) > 0)
				done++;
			/* gone meanwhile (delivered) is not an error for ALL */
		}
	}
	if (from_stdin) {
		size_t nmore;
		char **more = stdin_ids(&nmore);

		for (i = 0; i < nmore; i++) {
			if (!queue_id_valid(more[i])) {
				fprintf(stderr, "postern: warning: bad queue ID: %.100s\n", more[i]);
				status = 1;
			} else if ((r = apply(op, more[i], only_queue)) > 0) {
				done++;
			} else {
				if (r == 0)
					fprintf(stderr, "postern: warning: %s: no such message to %s\n",
					    more[i], d->name);
				status = 1;
			}
			free(more[i]);
		}
		free(more);
	}
	for (a = 0; a < argc; a++) {
		if (strcmp(argv[a], "ALL") == 0 || strcmp(argv[a], "-") == 0)
			continue;
		r = apply(op, argv[a], only_queue);
		if (r > 0) {
			done++;
		} else {
			if (r == 0)
				fprintf(stderr, "postern: warning: %s: no such message to %s\n",
				    argv[a], d->name);
			status = 1;
		}
	}
	if (all) {
		for (i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
	}
	if (done > 0) {
		fprintf(stderr, "postern: %s: %zu message%s\n", d->summary, done,
		    done == 1 ? "" : "s");
		if (d->trigger != NULL)
			(void)trigger_send("qmgr", d->trigger);
	}
	return status;
}

static int
queue_flush(int argc, char **argv)
{
	int r;

	(void)argv;
	if (argc != 0)
		return usage();
	if ((r = require_change()) != 0)
		return r;
	if (trigger_send("qmgr", "F") < 0) {
		fprintf(stderr, "postern: fatal: cannot reach the queue manager: is the "
		    "mail system running? (postern status)\n");
		return EX_UNAVAILABLE;
	}
	return 0;
}

int
cmd_queue(int argc, char **argv)
{
	if (argc < 1)
		return usage();
	qdir = queue_dir();
	if (strcmp(argv[0], "list") == 0)
		return queue_list(argc - 1, argv + 1);
	if (strcmp(argv[0], "show") == 0)
		return queue_show(argc - 1, argv + 1);
	if (strcmp(argv[0], "flush") == 0)
		return queue_flush(argc - 1, argv + 1);
	if (strcmp(argv[0], "hold") == 0)
		return queue_change(OP_HOLD, argc - 1, argv + 1);
	if (strcmp(argv[0], "release") == 0)
		return queue_change(OP_RELEASE, argc - 1, argv + 1);
	if (strcmp(argv[0], "delete") == 0)
		return queue_change(OP_DELETE, argc - 1, argv + 1);
	if (strcmp(argv[0], "requeue") == 0)
		return queue_change(OP_REQUEUE, argc - 1, argv + 1);
	return usage();
}
