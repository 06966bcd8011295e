/*
 * qcommit - group commit of queue files on one thread beside the loop
 * (see qcommit.h for the contract).
 *
 * Why one thread and not a pool: the batch is the unit of parallelism.
 * Write-back of every file in a batch is started before the first fsync
 * waits (sync_file_range), so the device sees the batch's I/O together
 * and later fsyncs mostly find their data already on the way; and one
 * directory fsync then covers every rename of the batch. A pool would
 * fsync the same directory several times for messages that ended
 * together, which is what group commit is meant to avoid; processes
 * (several smtpd) already give CPU parallelism, each with its thread.
 *
 * Invariants:
 * - Each batch: seal (the last bytes), start write-back (a batch of
 *   more than one file), fsync, rename, directory fsync, in that order
 *   for every writer (the directory's fd may be older than the batch:
 *   sync_dir()).
 * - The thread touches only the requests of the batch it took (their
 *   writers, err and step) and the lists under the mutex; never the
 *   loop, the log or anything of the session. The loop touches a request
 *   again only after the thread handed it back (done list + eventfd).
 * - A writer's rename happens only after its fsync succeeded; its
 *   directory's fsync is started only after the rename returned; done(0)
 *   only after both.
 * - All signals are blocked in the thread, so signalfd on the loop keeps
 *   receiving them.
 * BUGS: the content written during DATA (in 64 KiB pieces, smtpd/txn.c)
 * still goes out from the loop; it goes to the page cache, but can wait
 * when the kernel throttles dirty pages. The last piece and the 'E'
 * record are written here (queue_writer_seal).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/loop.h"
#include "mail/qcommit.h"

#define COMMIT_STACK (256 * 1024)

struct qcommit_req {
	struct qcommit_req *next;
	struct queue_writer *w;
	qcommit_done_fn done;
	void *ctx;
	int detached;
	int err;
	int dir_synced;          /* thread: its directory's fsync is done */
	const char *step;
	char id[QUEUE_ID_MAX];
};

struct qcommit {
	struct loop *loop;
	void (*batch_done)(void *ctx);
	void *batch_ctx;
	int efd;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct qcommit_req *todo, **todo_tail;   /* mu */
	struct qcommit_req *done, **done_tail;   /* mu */
	unsigned long long files, dirs, batches; /* mu */
	size_t pending;                          /* loop only */
	char *dirpath;                           /* thread only: the */
	int dirfd;                               /* directory kept open */
};

/* fsync of a queue directory through an fd kept open: a batch is often
 * one message, and opening and closing incoming/ for each cost two of
 * smtpd's system calls per message. The fsync acts on the inode, however
 * long ago the fd was opened; after a failure the fd is opened again. */
static int
sync_dir(struct qcommit *qc, const char *dir)
{
	int saved;

	if (qc->dirfd < 0 || strcmp(qc->dirpath, dir) != 0) {
		if (qc->dirfd >= 0)
			close(qc->dirfd);
		free(qc->dirpath);
		qc->dirpath = NULL;
		qc->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (qc->dirfd < 0)
			return -1;
		qc->dirpath = xstrdup(dir);
	}
	if (fsync_dir_fd(qc->dirfd) == 0)
		return 0;
	saved = errno;
	close(qc->dirfd);
	qc->dirfd = -1;
	errno = saved;
	return -1;
}

static void
wake_loop(struct qcommit *qc)
{
	uint64_t one = 1;

	/* A failed write means the counter is already non-zero: the loop
	 * wakes anyway. */
	while (write(qc->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void
batch_commit(struct qcommit *qc, struct qcommit_req *batch)
{
	struct qcommit_req *r, *o;
	unsigned long long files = 0, dirs = 0;

	for (r = batch; r != NULL; r = r->next) {
		if (queue_writer_seal(r->w) < 0) {
			r->err = errno ? errno : EIO;
			r->step = "write";
			continue;
		}
		/* A lone file's fsync follows at once: nothing to overlap. */
		if (batch->next != NULL)
			(void)queue_writer_start_sync(r->w);
	}
	for (r = batch; r != NULL; r = r->next) {
		if (r->err != 0)
			continue;
		if (queue_writer_sync(r->w) < 0) {
			r->err = errno ? errno : EIO;
			r->step = "fsync";
			continue;
		}
		files++;
		if (queue_writer_link(r->w) < 0) {
			r->err = errno ? errno : EIO;
			r->step = "rename";
		}
	}
	/* One fsync per directory, after every rename into it. */
	for (r = batch; r != NULL; r = r->next) {
		if (r->err != 0 || r->dir_synced)
			continue;
		const char *dir = queue_writer_dir(r->w);
		int derr = sync_dir(qc, dir) < 0 ? (errno ? errno : EIO) : 0;
		dirs++;
		for (o = r; o != NULL; o = o->next) {
			if (o->err != 0 || o->dir_synced
			    || strcmp(queue_writer_dir(o->w), dir) != 0)
				continue;
			o->dir_synced = 1;
			if (queue_writer_done(o->w, derr) < 0) {
				o->err = derr ? derr : (errno ? errno : EIO);
				o->step = queue_writer_withdraw_failed(o->w)
				    ? "fsync directory (the name could not be withdrawn)"
				    : "fsync directory";
			}
		}
	}
	pthread_mutex_lock(&qc->mu);
	*qc->done_tail = batch;
	for (r = batch; r->next != NULL; r = r->next)
		;
	qc->done_tail = &r->next;
	qc->files += files;
	qc->dirs += dirs;
	qc->batches++;
	pthread_mutex_unlock(&qc->mu);
	wake_loop(qc);
}

static void *
commit_thread(void *arg)
{
	struct qcommit *qc = arg;
	struct qcommit_req *batch;

	for (;;) {
		pthread_mutex_lock(&qc->mu);
		while (qc->todo == NULL)
			pthread_cond_wait(&qc->cv, &qc->mu);
		batch = qc->todo;
		qc->todo = NULL;
		qc->todo_tail = &qc->todo;
		pthread_mutex_unlock(&qc->mu);
		batch_commit(qc, batch);
	}
	return NULL;
}

/* The loop's side: report every finished request. */
static void
done_cb(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct qcommit *qc = ctx;
	struct qcommit_req *list, *r;
	uint64_t n;

	(void)l;
	(void)events;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&qc->mu);
	list = qc->done;
	qc->done = NULL;
	qc->done_tail = &qc->done;
	pthread_mutex_unlock(&qc->mu);
	while ((r = list) != NULL) {
		list = r->next;
		if (r->err != 0)
			queue_writer_abort(&r->w);
		else
			queue_writer_free(&r->w);
		qc->pending--;
		r->done(r->detached ? NULL : r->ctx, r->id, r->err, r->step);
		free(r);
	}
	if (qc->batch_done != NULL)
		qc->batch_done(qc->batch_ctx);
}

struct qcommit *
qcommit_new(struct loop *l, void (*batch_done)(void *ctx), void *ctx)
{
	struct qcommit *qc = xcalloc(1, sizeof(*qc));
	sigset_t all, old;
	pthread_attr_t attr;
	int err;

	qc->loop = l;
	qc->batch_done = batch_done;
	qc->batch_ctx = ctx;
	qc->todo_tail = &qc->todo;
	qc->done_tail = &qc->done;
	qc->dirfd = -1;
	qc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (qc->efd < 0)
		goto fail;
	if (loop_fd_set(l, qc->efd, LOOP_READ, done_cb, qc) < 0)
		goto fail;
	pthread_mutex_init(&qc->mu, NULL);
	pthread_cond_init(&qc->cv, NULL);
	/* The thread only makes system calls: a small stack keeps an
	 * smtpd's memory where it was. */
	pthread_attr_init(&attr);
	(void)pthread_attr_setstacksize(&attr, COMMIT_STACK);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&qc->thread, &attr, commit_thread, qc);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		loop_fd_del(l, qc->efd);
		errno = err;
		goto fail;
	}
	return qc;
fail:
	err = errno;
	if (qc->efd >= 0)
		close(qc->efd);
	free(qc);
	errno = err;
	return NULL;
}

struct qcommit_req *
qcommit_submit(struct qcommit *qc, struct queue_writer *w,
    qcommit_done_fn done, void *ctx)
{
	struct qcommit_req *r = xcalloc(1, sizeof(*r));
	int idle;

	r->w = w;
	r->done = done;
	r->ctx = ctx;
	snprintf(r->id, sizeof(r->id), "%s", queue_writer_id(w));
	qc->pending++;
	pthread_mutex_lock(&qc->mu);
	idle = qc->todo == NULL;
	*qc->todo_tail = r;
	qc->todo_tail = &r->next;
	pthread_mutex_unlock(&qc->mu);
	/* After the unlock: a thread woken under the lock would at once
	 * block on it (two more futex calls). It waits only for an empty
	 * list, so a list that had requests needs no signal. */
	if (idle)
		pthread_cond_signal(&qc->cv);
	return r;
}

void
qcommit_detach(struct qcommit_req *r)
{
	r->detached = 1;
}

size_t
qcommit_pending(const struct qcommit *qc)
{
	return qc->pending;
}

void
qcommit_stats(const struct qcommit *qc, unsigned long long *files,
    unsigned long long *dirs, unsigned long long *batches)
{
	struct qcommit *q = (struct qcommit *)qc;

	pthread_mutex_lock(&q->mu);
	*files = q->files;
	*dirs = q->dirs;
	*batches = q->batches;
	pthread_mutex_unlock(&q->mu);
}
