/*
 * pool - auth's hashing threads: password verification (yescrypt, bcrypt,
 * SHA-crypt: tens of milliseconds of CPU each) and the PAM round trip run
 * here, auth_hash_workers of them at once, while auth's event loop keeps
 * accepting and answering.
 *
 * Why threads and not processes: the work is a pure function of (password,
 * hash), so a thread needs nothing but the two strings; the hashes never
 * leave auth's address space (no copy in a socket buffer, no second
 * process holding the table), and a job costs a mutex and a pointer, not
 * an encode/decode. The threads are auth's own, with auth's (already
 * dropped) privileges.
 *
 * Invariants: a thread touches only its job (and passwd_verify's per-thread
 * work area, pam_check's mutex): no loop, no log, no map, no penalty - the
 * loop thread does all of that when the job comes back. Jobs are answered
 * in the loop by their done callback, in completion order. Threads block
 * every signal (the loop takes them through its signal descriptor).
 *
 * Trusts: the jobs it is given. Limits: the queue is unbounded, but each
 * job belongs to one auth connection with one request in flight, so it is
 * bounded by the connections auth accepts.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/loop.h"
#include "mail/passwd.h"
#include "proto/sasl.h"
#include "auth.h"

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct auth_job *todo, **todo_tail;
	struct auth_job *done, **done_tail;
	int wake[2];            /* a byte per finished job wakes the loop */
	unsigned threads;
} pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.wake = { -1, -1 },
};

static void
job_run(struct auth_job *j)
{
	switch (j->kind) {
	case JOB_VERIFY:
		j->result = passwd_verify(j->password, j->hash);
		break;
	case JOB_DUMMY:
		passwd_dummy_verify(j->password);
		j->result = PASSWD_MISMATCH;
		break;
	case JOB_PAM:
		j->result = pam_check(j->user, j->password, j->rip, j->reason,
		    sizeof(j->reason));
		break;
	}
	/* The secret is not needed once the answer is known. */
	sasl_wipe(j->password, strlen(j->password));
	if (j->hash != NULL)
		sasl_wipe(j->hash, strlen(j->hash));
}

static void *
worker(void *arg)
{
	struct auth_job *j;
	char one = 1;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pool.mu);
		while (pool.todo == NULL)
			pthread_cond_wait(&pool.cv, &pool.mu);
		j = pool.todo;
		pool.todo = j->next;
		if (pool.todo == NULL)
			pool.todo_tail = &pool.todo;
		pthread_mutex_unlock(&pool.mu);

		job_run(j);

		pthread_mutex_lock(&pool.mu);
		j->next = NULL;
		*pool.done_tail = j;
		pool.done_tail = &j->next;
		pthread_mutex_unlock(&pool.mu);
		/* Full pipe: the loop has wake-ups pending and will drain
		 * the whole done list anyway. */
		while (write(pool.wake[1], &one, 1) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

static void
wake_cb(struct loop *l, int fd, unsigned events, void *ctx)
{
	char tmp[256];
	struct auth_job *list, *j;

	(void)l;
	(void)events;
	(void)ctx;
	while (read(fd, tmp, sizeof(tmp)) > 0)
		;
	pthread_mutex_lock(&pool.mu);
	list = pool.done;
	pool.done = NULL;
	pool.done_tail = &pool.done;
	pthread_mutex_unlock(&pool.mu);
	while ((j = list) != NULL) {
		list = j->next;
		j->next = NULL;
		j->done(j);
	}
}

int
pool_start(struct loop *l, unsigned n)
{
	sigset_t all, old;
	pthread_t t;
	unsigned i;
	int e;

	pool.todo_tail = &pool.todo;
	pool.done_tail = &pool.done;
	if (pipe2(pool.wake, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	if (loop_fd_set(l, pool.wake[0], LOOP_READ, wake_cb, NULL) < 0)
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < n; i++) {
		e = pthread_create(&t, NULL, worker, NULL);
		if (e != 0) {
			errno = e;
			break;
		}
		pthread_detach(t);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pool.threads = i;
	if (i == 0)
		return -1;
	if (i < n)
		log_warn("hashing threads: only %u of %u started", i, n);
	return 0;
}

unsigned
pool_size(void)
{
	return pool.threads;
}

void
pool_submit(struct auth_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&pool.mu);
	*pool.todo_tail = j;
	pool.todo_tail = &j->next;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

struct auth_job *
auth_job_new(enum job_kind kind, const char *password)
{
	struct auth_job *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	j->password = xstrdup(password != NULL ? password : "");
	return j;
}

void
auth_job_free(struct auth_job *j)
{
	if (j == NULL)
		return;
	sasl_wipe(j->password, strlen(j->password));
	free(j->password);
	if (j->hash != NULL) {
		sasl_wipe(j->hash, strlen(j->hash));
		free(j->hash);
	}
	free(j->user);
	free(j->rip);
	free(j);
}
