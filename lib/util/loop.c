/*
 * loop - one epoll event loop per process: fd events, monotonic timers and
 * signals (through signalfd), each with a callback and a context pointer.
 *
 * Invariants:
 * - Registrations live in a table indexed by fd. Every registration gets a
 *   generation number that also travels in the epoll event data, so an event
 *   fetched in the same epoll_wait batch for an fd that a callback has since
 *   deleted (and perhaps re-registered under the same number) is dropped,
 *   never delivered to the wrong callback or a freed context.
 * - Nothing is touched after a callback returns except through fresh
 *   lookups, so a callback may delete any registration and free its ctx.
 * - Events are reported only for the current interest set (re-read before
 *   each callback); LOOP_ERROR (EPOLLERR/EPOLLHUP) is always reported (and
 *   may be asked for alone), and
 *   comes together with the READ/WRITE bits the fd is interested in, so a
 *   callback's read() or write() sees the EOF or error naturally.
 * - Interest changes of an fd already in epoll reach the kernel only just
 *   before epoll_wait, and only when the set differs from what is armed
 *   (r->armed): a connection that goes read -> write -> nothing -> read
 *   within one wakeup costs one epoll_ctl, or none. Adding a new fd and
 *   deleting one happen at once (the owner may close the fd right after
 *   loop_fd_del; an ADD error must reach the caller). An fd with events 0
 *   stays in epoll armed edge-triggered with no events: epoll reports
 *   hang-ups even for an empty interest set, and a level-triggered hang-up
 *   would spin; edge-triggered it wakes the loop at most once (dropped, as
 *   nothing is wanted) and the next MOD re-polls the fd, so it is not lost.
 * - A read interest that is dropped (a session paused while its message
 *   is committed, say) stays armed in the kernel until an event for it
 *   comes; only then is the narrower set handed over. A client that waits
 *   for the reply sends nothing meanwhile, so pausing and resuming cost
 *   no epoll_ctl; one that does costs one wakeup more.
 * - Timers are a binary min-heap on (expiry, id), so timers due at the same
 *   millisecond run in the order they were added; a hash on id makes
 *   cancellation O(log n). A pass over due timers runs only those that
 *   existed when it began, so a callback re-arming a 0 ms timer cannot
 *   starve the fd events.
 * Limits: level-triggered only; one signal handler per signal number.
 * Signals handed to loop_signal stay blocked while the loop lives; loop_free
 * unblocks them, and a forked child that does not run a loop should call
 * loop_sigmask_restore() (blocked masks survive fork and exec).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/loop.h"

struct fdreg {
	loop_fd_cb cb;
	void *ctx;
	unsigned events;
	uint32_t gen;          /* 0 = free slot */
	int in_epoll;
	int dirty;             /* on l->dirty: armed may differ from events */
	uint32_t armed;        /* the epoll events the kernel has (in_epoll) */
};

struct timer {
	uint64_t id;
	uint64_t expire;
	loop_cb cb;
	void *ctx;
	size_t hidx;           /* position in the heap */
	struct timer *hnext;   /* hash chain */
};

struct sighandler {
	loop_cb cb;
	void *ctx;
};

struct loop {
	int epfd;
	int stop;

	struct fdreg *fds;
	size_t nfds;
	uint32_t next_gen;
	int *dirty;            /* fds whose interest changed since the last wait */
	size_t ndirty, capdirty;

	struct timer **heap;
	size_t nheap, capheap;
	struct timer **hash;
	size_t nhash;          /* buckets, a power of two */
	uint64_t next_timer_id;

	int sigfd;
	sigset_t sigmask;      /* signals we blocked */
	struct sighandler sig[_NSIG];

	loop_cb before_sleep;
	void *before_sleep_ctx;
};

static sigset_t loop_blocked;   /* process-wide: what loop_signal blocked */

uint64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *
loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		log_fatal("epoll_create1");
	l->sigfd = -1;
	l->next_gen = 1;
	l->next_timer_id = 1;
	l->nhash = 64;
	l->hash = xcalloc(l->nhash, sizeof(*l->hash));
	sigemptyset(&l->sigmask);
	return l;
}

void
loop_sigmask_restore(void)
{
	sigprocmask(SIG_UNBLOCK, &loop_blocked, NULL);
	sigemptyset(&loop_blocked);
}

void
loop_free(struct loop **lp)
{
	struct loop *l = *lp;
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->nheap; i++)
		free(l->heap[i]);
	free(l->heap);
	free(l->hash);
	free(l->fds);
	free(l->dirty);
	if (l->sigfd >= 0) {
		close(l->sigfd);
		sigprocmask(SIG_UNBLOCK, &l->sigmask, NULL);
		for (i = 1; i < _NSIG; i++)
			if (sigismember(&l->sigmask, (int)i) == 1)
				sigdelset(&loop_blocked, (int)i);
	}
	close(l->epfd);
	free(l);
	*lp = NULL;
}

/* ---- file descriptors ---- */

static uint32_t
to_epoll(unsigned ev)
{
	uint32_t e = 0;

	if (ev & LOOP_READ)
		e |= EPOLLIN;
	if (ev & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

/* What the kernel should have for r: its events, or, for none, an
 * edge-triggered empty set (see the invariants). */
static uint32_t
armed_for(const struct fdreg *r)
{
	return r->events == 0 ? EPOLLET : to_epoll(r->events);
}

static int
epoll_arm(struct loop *l, int fd, struct fdreg *r, int op)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = armed_for(r);
	ev.data.u64 = (uint64_t)r->gen << 32 | (uint32_t)fd;
	if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
		return -1;
	r->armed = ev.events;
	r->in_epoll = 1;
	return 0;
}

/* The kernel has EPOLLIN (level-triggered) that is no longer wanted, and
 * otherwise what is wanted. */
static int
lazy_read(const struct fdreg *r)
{
	return !(r->armed & EPOLLET) && (r->armed & EPOLLIN) &&
	    !(r->events & LOOP_READ) &&
	    (to_epoll(r->events) | EPOLLIN) == r->armed;
}

static void
mark_dirty(struct loop *l, int fd, struct fdreg *r)
{
	if (r->dirty)
		return;
	if (l->ndirty == l->capdirty) {
		l->capdirty = l->capdirty ? 2 * l->capdirty : 16;
		l->dirty = xreallocarray(l->dirty, l->capdirty, sizeof(*l->dirty));
	}
	l->dirty[l->ndirty++] = fd;
	r->dirty = 1;
}

static int
epoll_update(struct loop *l, int fd, struct fdreg *r)
{
	if (r->in_epoll) {
		/* Applied before the next epoll_wait, if still different -
		 * except that a read interest dropped stays armed until it
		 * fires (see the invariants). */
		if (armed_for(r) != r->armed && !lazy_read(r))
			mark_dirty(l, fd, r);
		return 0;
	}
	if (r->events == 0)
		return 0;
	if (epoll_arm(l, fd, r, EPOLL_CTL_ADD) < 0) {
		if (errno != EEXIST || epoll_arm(l, fd, r, EPOLL_CTL_MOD) < 0)
			return -1;
	}
	return 0;
}

/* Before sleeping: hand the kernel the interest sets that changed. */
static void
flush_dirty(struct loop *l)
{
	struct fdreg *r;
	size_t i;
	int fd;

	for (i = 0; i < l->ndirty; i++) {
		fd = l->dirty[i];
		if ((size_t)fd >= l->nfds)
			continue;
		r = &l->fds[fd];
		/* Deleted since (and perhaps re-registered: its own entry). */
		if (!r->dirty)
			continue;
		r->dirty = 0;
		if (!r->in_epoll || armed_for(r) == r->armed)
			continue;
		if (epoll_arm(l, fd, r, EPOLL_CTL_MOD) == 0)
			continue;
		/* Closed (and perhaps reopened) without loop_fd_del. */
		r->in_epoll = 0;
		if (errno == ENOENT && r->events != 0
		    && epoll_arm(l, fd, r, EPOLL_CTL_ADD) < 0)
			log_warn("loop: epoll_ctl ADD fd %d", fd);
	}
	l->ndirty = 0;
}

int
loop_fd_set(struct loop *l, int fd, unsigned events, loop_fd_cb cb, void *ctx)
{
	struct fdreg *r, old;
	size_t n;

	if (fd < 0 || cb == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)fd >= l->nfds) {
		n = l->nfds == 0 ? 64 : l->nfds;
		while (n <= (size_t)fd)
			n *= 2;
		l->fds = xreallocarray(l->fds, n, sizeof(*l->fds));
		memset(l->fds + l->nfds, 0, (n - l->nfds) * sizeof(*l->fds));
		l->nfds = n;
	}
	r = &l->fds[fd];
	old = *r;
	if (r->gen == 0) {
		r->gen = l->next_gen++;
		if (l->next_gen == 0)
			l->next_gen = 1;
		r->in_epoll = 0;
		r->dirty = 0;
	}
	r->cb = cb;
	r->ctx = ctx;
	r->events = events & (LOOP_READ | LOOP_WRITE | LOOP_ERROR);
	if (epoll_update(l, fd, r) < 0) {
		int saved = errno;

		*r = old;
		errno = saved;
		return -1;
	}
	return 0;
}

void
loop_fd_del(struct loop *l, int fd)
{
	struct epoll_event ev;
	struct fdreg *r;

	if (fd < 0 || (size_t)fd >= l->nfds)
		return;
	r = &l->fds[fd];
	if (r->gen == 0)
		return;
	if (r->in_epoll) {
		memset(&ev, 0, sizeof(ev));
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, &ev);
	}
	memset(r, 0, sizeof(*r));
}

/* ---- timers ---- */

static int
timer_before(const struct timer *a, const struct timer *b)
{
	return a->expire < b->expire || (a->expire == b->expire && a->id < b->id);
}

static void
heap_set(struct loop *l, size_t i, struct timer *t)
{
	l->heap[i] = t;
	t->hidx = i;
}

static void
heap_up(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];

	while (i > 0 && timer_before(t, l->heap[(i - 1) / 2])) {
		heap_set(l, i, l->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(l, i, t);
}

static void
heap_down(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && timer_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!timer_before(l->heap[c], t))
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

static void
heap_remove(struct loop *l, struct timer *t)
{
	size_t i = t->hidx;
	struct timer *last = l->heap[--l->nheap];

	if (last == t)
		return;
	heap_set(l, i, last);
	if (i > 0 && timer_before(last, l->heap[(i - 1) / 2]))
		heap_up(l, i);
	else
		heap_down(l, i);
}

static size_t
hash_slot(const struct loop *l, uint64_t id)
{
	id *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(id >> 32) & (l->nhash - 1);
}

static void
hash_grow(struct loop *l)
{
	struct timer **old = l->hash, *t, *next;
	size_t oldn = l->nhash, i, s;

	l->nhash *= 2;
	l->hash = xcalloc(l->nhash, sizeof(*l->hash));
	for (i = 0; i < oldn; i++)
		for (t = old[i]; t != NULL; t = next) {
			next = t->hnext;
			s = hash_slot(l, t->id);
			t->hnext = l->hash[s];
			l->hash[s] = t;
		}
	free(old);
}

/* Unlink id from the hash; returns the timer or NULL. */
static struct timer *
hash_take(struct loop *l, uint64_t id)
{
	struct timer **pp, *t;

	for (pp = &l->hash[hash_slot(l, id)]; (t = *pp) != NULL; pp = &t->hnext)
		if (t->id == id) {
			*pp = t->hnext;
			return t;
		}
	return NULL;
}

uint64_t
loop_timer_add(struct loop *l, uint64_t ms, loop_cb cb, void *ctx)
{
	struct timer *t = xcalloc(1, sizeof(*t));
	uint64_t now = loop_now_ms();
	size_t s;

	t->id = l->next_timer_id++;
	t->expire = ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
	t->cb = cb;
	t->ctx = ctx;
	if (l->nheap == l->capheap) {
		l->capheap = l->capheap == 0 ? 16 : l->capheap * 2;
		l->heap = xreallocarray(l->heap, l->capheap, sizeof(*l->heap));
	}
	l->heap[l->nheap++] = t;
	heap_up(l, l->nheap - 1);
	if (l->nheap > l->nhash)
		hash_grow(l);
	s = hash_slot(l, t->id);
	t->hnext = l->hash[s];
	l->hash[s] = t;
	return t->id;
}

void
loop_timer_cancel(struct loop *l, uint64_t id)
{
	struct timer *t;

	if (id == 0 || (t = hash_take(l, id)) == NULL)
		return;
	heap_remove(l, t);
	free(t);
}

static void
run_timers(struct loop *l)
{
	uint64_t now = loop_now_ms(), last_id = l->next_timer_id - 1;
	struct timer *t;
	loop_cb cb;
	void *ctx;

	while (l->nheap > 0 && !l->stop) {
		t = l->heap[0];
		if (t->expire > now || t->id > last_id)
			break;
		hash_take(l, t->id);
		heap_remove(l, t);
		cb = t->cb;
		ctx = t->ctx;
		free(t);
		if (cb != NULL)
			cb(l, ctx);
	}
}

/* ---- signals ---- */

static void
sigfd_ready(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct signalfd_siginfo si;
	struct sighandler *h;
	ssize_t r;

	for (;;) {
		r = read(fd, &si, sizeof(si));
		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(si))
			return;
		if (si.ssi_signo == 0 || si.ssi_signo >= _NSIG)
			continue;
		h = &l->sig[si.ssi_signo];
		if (h->cb != NULL)
			h->cb(l, h->ctx);
		/* The callback may have freed the loop's signal fd only via
		 * loop_free, which it must not call from inside the loop. */
	}
}

int
loop_signal(struct loop *l, int signo, loop_cb cb, void *ctx)
{
	sigset_t one;
	int fd;

	if (signo <= 0 || signo >= _NSIG) {
		errno = EINVAL;
		return -1;
	}
	sigemptyset(&one);
	sigaddset(&one, signo);
	if (sigprocmask(SIG_BLOCK, &one, NULL) < 0)
		return -1;
	sigaddset(&l->sigmask, signo);
	sigaddset(&loop_blocked, signo);
	fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (l->sigfd < 0) {
		l->sigfd = fd;
		if (loop_fd_set(l, fd, LOOP_READ, sigfd_ready, NULL) < 0)
			return -1;
	}
	l->sig[signo].cb = cb;
	l->sig[signo].ctx = ctx;
	return 0;
}

/* ---- the loop ---- */

void
loop_set_before_sleep(struct loop *l, loop_cb cb, void *ctx)
{
	l->before_sleep = cb;
	l->before_sleep_ctx = ctx;
}

void
loop_stop(struct loop *l)
{
	l->stop = 1;
}

static int
next_timeout(struct loop *l)
{
	uint64_t now, exp;

	if (l->nheap == 0)
		return -1;
	exp = l->heap[0]->expire;
	now = loop_now_ms();
	if (exp <= now)
		return 0;
	/* Round nothing down: waking early would just spin once more. */
	return exp - now > INT_MAX ? INT_MAX : (int)(exp - now);
}

#define LOOP_BATCH 64

int
loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_BATCH];
	struct fdreg *r;
	unsigned got, want;
	uint32_t gen;
	int n, i, fd, timeout;

	l->stop = 0;
	while (!l->stop) {
		if (l->before_sleep != NULL)
			l->before_sleep(l, l->before_sleep_ctx);
		if (l->stop)
			break;
		flush_dirty(l);
		timeout = next_timeout(l);
		n = epoll_wait(l->epfd, evs, LOOP_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (i = 0; i < n && !l->stop; i++) {
			fd = (int)(uint32_t)evs[i].data.u64;
			gen = (uint32_t)(evs[i].data.u64 >> 32);
			if (fd < 0 || (size_t)fd >= l->nfds)
				continue;
			r = &l->fds[fd];
			/* Deleted, or deleted and re-registered, earlier in
			 * this batch: the event belongs to the old one. */
			if (r->gen != gen || r->cb == NULL)
				continue;
			want = r->events;
			/* A read interest dropped lazily has fired (or a
			 * hang-up came, which level-triggered would come
			 * again): the kernel gets the narrower set before the
			 * next wait. */
			if (r->armed != armed_for(r))
				mark_dirty(l, fd, r);
			if (want == 0)
				continue;
			got = 0;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				got |= LOOP_ERROR | want;
			if (evs[i].events & EPOLLIN)
				got |= LOOP_READ;
			if (evs[i].events & EPOLLOUT)
				got |= LOOP_WRITE;
			got &= want | LOOP_ERROR;
			if (got == 0)
				continue;
			r->cb(l, fd, got, r->ctx);
			/* r may now dangle (table realloc); do not touch it. */
		}
		run_timers(l);
	}
	return 0;
}
