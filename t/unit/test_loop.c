/* Unit tests for util/loop: timer order and cancel, fd events on pipes,
 * deletion (and re-registration) from inside callbacks, signals. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/loop.h"

static char order[64];
static size_t norder;

static void
record(struct loop *l, void *ctx)
{
	order[norder++] = *(const char *)ctx;
	if (norder >= 4)
		loop_stop(l);
}

START_TEST(test_timer_order)
{
	struct loop *l = loop_new();
	static const char a = 'a', b = 'b', c = 'c', d = 'd', x = 'x';
	uint64_t id1, id2, idx;

	norder = 0;
	memset(order, 0, sizeof(order));
	id1 = loop_timer_add(l, 30, record, (void *)&c);
	id2 = loop_timer_add(l, 10, record, (void *)&a);
	idx = loop_timer_add(l, 20, record, (void *)&x);
	loop_timer_add(l, 10, record, (void *)&b);   /* same time: after a */
	loop_timer_add(l, 40, record, (void *)&d);
	ck_assert(id1 != 0 && id2 != 0 && id1 != id2);
	loop_timer_cancel(l, idx);
	loop_timer_cancel(l, idx);          /* twice is harmless */
	loop_timer_cancel(l, 0);
	loop_timer_cancel(l, 999999);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_str_eq(order, "abcd");
	loop_free(&l);
	ck_assert_ptr_null(l);
}
END_TEST

static int zero_count;

static void
rearm_zero(struct loop *l, void *ctx)
{
	if (++zero_count < 1000)
		loop_timer_add(l, 0, rearm_zero, ctx);
	else
		loop_stop(l);
}

static int sleeps;

static void
count_sleep(struct loop *l, void *ctx)
{
	sleeps++;
}

START_TEST(test_timer_zero_rearm)
{
	struct loop *l = loop_new();

	zero_count = 0;
	sleeps = 0;
	loop_set_before_sleep(l, count_sleep, NULL);
	loop_timer_add(l, 0, rearm_zero, NULL);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(zero_count, 1000);
	/* A re-armed 0 ms timer waits for the next iteration. */
	ck_assert_int_ge(sleeps, 1000);
	loop_free(&l);
}
END_TEST

struct pipe_ctx {
	int rfd, wfd;
	int reads;
	int eof;
};

static void
on_read(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct pipe_ctx *p = arg;
	char c[16];
	ssize_t r;

	ck_assert(ev & LOOP_READ);
	r = read(fd, c, sizeof(c));
	if (r > 0) {
		p->reads++;
		return;
	}
	p->eof = 1;
	ck_assert(ev & (LOOP_READ | LOOP_ERROR));
	loop_fd_del(l, fd);
	loop_stop(l);
}

static void
write_then_close(struct loop *l, void *arg)
{
	struct pipe_ctx *p = arg;

	ck_assert_int_eq(write(p->wfd, "x", 1), 1);
	close(p->wfd);
}

START_TEST(test_pipe_events)
{
	struct loop *l = loop_new();
	struct pipe_ctx p;
	int fds[2];

	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(pipe(fds), 0);
	p.rfd = fds[0];
	p.wfd = fds[1];
	ck_assert_int_eq(loop_fd_set(l, p.rfd, LOOP_READ, on_read, &p), 0);
	loop_timer_add(l, 5, write_then_close, &p);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(p.reads, 1);
	ck_assert_int_eq(p.eof, 1);
	close(p.rfd);
	loop_free(&l);
}
END_TEST

static void
stop_cb(struct loop *l, void *ctx)
{
	loop_stop(l);
}

static int write_events;

static void
on_write(struct loop *l, int fd, unsigned ev, void *arg)
{
	ck_assert(ev & LOOP_WRITE);
	ck_assert(!(ev & LOOP_READ));
	if (++write_events == 3) {
		/* events 0: stays registered, reports nothing */
		ck_assert_int_eq(loop_fd_set(l, fd, 0, on_write, arg), 0);
		loop_timer_add(l, 30, stop_cb, NULL);
	}
}

START_TEST(test_interest_change)
{
	struct loop *l = loop_new();
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	write_events = 0;
	ck_assert_int_eq(loop_fd_set(l, fds[1], LOOP_WRITE, on_write, NULL), 0);
	loop_timer_add(l, 30, stop_cb, NULL);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(write_events, 3);
	/* Even a hang-up is not reported for an empty interest set. */
	close(fds[0]);
	loop_timer_add(l, 20, stop_cb, NULL);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(write_events, 3);
	loop_fd_del(l, fds[1]);
	loop_fd_del(l, fds[1]);
	close(fds[1]);
	loop_free(&l);
}
END_TEST

/* A paused fd (events 0) stays in epoll armed edge-triggered and empty:
 * data that was there and a hang-up that came meanwhile are reported
 * once it is re-armed, and the paused hang-up does not make the loop
 * spin. */
struct pause_ctx {
	int rfd, wfd;
	int calls;
	unsigned last;
	int wakeups;
};

static void on_paused(struct loop *l, int fd, unsigned ev, void *arg);

static void
rearm(struct loop *l, void *arg)
{
	struct pause_ctx *p = arg;

	ck_assert_int_eq(loop_fd_set(l, p->rfd, LOOP_READ, on_paused, p), 0);
}

static void
count_wakeup(struct loop *l, void *arg)
{
	((struct pause_ctx *)arg)->wakeups++;
}

static void
on_paused(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct pause_ctx *p = arg;

	p->calls++;
	p->last = ev;
	if (p->calls == 1) {
		/* Pause without reading; switch to write interest and back
		 * in the same wakeup (one epoll change, or none). */
		ck_assert_int_eq(loop_fd_set(l, fd, LOOP_WRITE, on_paused, p), 0);
		ck_assert_int_eq(loop_fd_set(l, fd, 0, on_paused, p), 0);
		loop_timer_add(l, 20, rearm, p);
	} else if (p->calls == 2) {
		/* Still readable after the pause; now hang up while paused. */
		ck_assert(ev & LOOP_READ);
		ck_assert_int_eq(loop_fd_set(l, fd, 0, on_paused, p), 0);
		close(p->wfd);
		p->wakeups = 0;
		loop_timer_add(l, 30, rearm, p);
	} else {
		loop_stop(l);
	}
}

START_TEST(test_pause_resume)
{
	struct loop *l = loop_new();
	struct pause_ctx p;
	int fds[2];

	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(pipe(fds), 0);
	p.rfd = fds[0];
	p.wfd = fds[1];
	ck_assert_int_eq(write(p.wfd, "x", 1), 1);
	loop_set_before_sleep(l, count_wakeup, &p);
	ck_assert_int_eq(loop_fd_set(l, p.rfd, LOOP_READ, on_paused, &p), 0);
	loop_timer_add(l, 2000, stop_cb, NULL);   /* a bound, not a timing */
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(p.calls, 3);
	ck_assert(p.last & LOOP_READ);
	ck_assert(p.last & LOOP_ERROR);         /* the hang-up, not lost */
	/* The paused hang-up woke the loop at most a few times, not in a
	 * spin over the 30 ms until the re-arm. */
	ck_assert_int_le(p.wakeups, 5);
	loop_fd_del(l, p.rfd);
	close(p.rfd);
	loop_free(&l);
}
END_TEST

/* A read interest dropped while nothing is readable stays armed in the
 * kernel (no epoll_ctl for a pause and resume); input that comes while
 * paused must still not reach the callback, must not make the loop spin,
 * and must be there after the resume. */
static void
lazy_write(struct loop *l, void *arg)
{
	struct pause_ctx *p = arg;

	p->wakeups = 0;
	ck_assert_int_eq(write(p->wfd, "y", 1), 1);
}

static void
on_lazy(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct pause_ctx *p = arg;

	p->calls++;
	p->last = ev;
	loop_stop(l);
}

START_TEST(test_lazy_pause)
{
	struct loop *l = loop_new();
	struct pause_ctx p;
	int fds[2];

	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(pipe(fds), 0);
	p.rfd = fds[0];
	p.wfd = fds[1];
	loop_set_before_sleep(l, count_wakeup, &p);
	ck_assert_int_eq(loop_fd_set(l, p.rfd, LOOP_READ, on_lazy, &p), 0);
	loop_timer_add(l, 5, stop_cb, NULL);
	ck_assert_int_eq(loop_run(l), 0);       /* armed, nothing to read */
	ck_assert_int_eq(p.calls, 0);
	ck_assert_int_eq(loop_fd_set(l, p.rfd, 0, on_lazy, &p), 0);
	loop_timer_add(l, 5, lazy_write, &p);
	loop_timer_add(l, 40, stop_cb, NULL);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(p.calls, 0);           /* paused: not reported */
	ck_assert_int_le(p.wakeups, 5);         /* and no spin */
	ck_assert_int_eq(loop_fd_set(l, p.rfd, LOOP_READ, on_lazy, &p), 0);
	loop_timer_add(l, 2000, stop_cb, NULL); /* a bound, not a timing */
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(p.calls, 1);
	ck_assert(p.last & LOOP_READ);
	loop_fd_del(l, p.rfd);
	close(p.rfd);
	close(p.wfd);
	loop_free(&l);
}
END_TEST

/* Two readable pipes in one batch: whichever callback runs first deletes
 * the other, closes it, frees its context and opens a new pipe that reuses
 * the fd number. The old event must reach no one. */
struct victim {
	struct victim *other;
	int rfd, wfd;
};

static int new_reg_calls;
static int total_calls;
static int newpipe[2];
static struct victim *survivor;

static void
on_new(struct loop *l, int fd, unsigned ev, void *arg)
{
	new_reg_calls++;
}

static void
on_victim(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct victim *v = arg, *o = v->other;
	int ofd;
	char c;

	total_calls++;
	ck_assert_int_eq(read(fd, &c, 1), 1);
	if (o == NULL)
		return;
	ofd = o->rfd;
	loop_fd_del(l, ofd);
	close(o->rfd);
	close(o->wfd);
	free(o);
	v->other = NULL;
	survivor = v;
	ck_assert_int_eq(pipe(newpipe), 0);
	ck_assert_int_eq(newpipe[0], ofd);      /* same number reused */
	ck_assert_int_eq(loop_fd_set(l, newpipe[0], LOOP_READ, on_new, NULL), 0);
	loop_timer_add(l, 30, stop_cb, NULL);
}

START_TEST(test_delete_in_batch)
{
	struct loop *l = loop_new();
	struct victim *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	int fa[2], fb[2];

	ck_assert_int_eq(pipe(fa), 0);
	ck_assert_int_eq(pipe(fb), 0);
	a->rfd = fa[0];
	a->wfd = fa[1];
	b->rfd = fb[0];
	b->wfd = fb[1];
	a->other = b;
	b->other = a;
	ck_assert_int_eq(write(fa[1], "a", 1), 1);
	ck_assert_int_eq(write(fb[1], "b", 1), 1);
	total_calls = 0;
	new_reg_calls = 0;
	ck_assert_int_eq(loop_fd_set(l, fa[0], LOOP_READ, on_victim, a), 0);
	ck_assert_int_eq(loop_fd_set(l, fb[0], LOOP_READ, on_victim, b), 0);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(total_calls, 1);
	ck_assert_int_eq(new_reg_calls, 0);
	loop_free(&l);
	close(survivor->rfd);
	close(survivor->wfd);
	free(survivor);
	close(newpipe[0]);
	close(newpipe[1]);
}
END_TEST

/* A callback that deletes its own registration and frees its context. */
struct selfdel {
	int rfd;
};

static int selfdel_calls;

static void
on_selfdel(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct selfdel *s = arg;

	selfdel_calls++;
	loop_fd_del(l, fd);
	close(s->rfd);
	free(s);
	loop_timer_add(l, 20, stop_cb, NULL);
}

START_TEST(test_self_delete)
{
	struct loop *l = loop_new();
	struct selfdel *s = malloc(sizeof(*s));
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	s->rfd = fds[0];
	ck_assert_int_eq(write(fds[1], "zz", 2), 2);
	selfdel_calls = 0;
	ck_assert_int_eq(loop_fd_set(l, fds[0], LOOP_READ, on_selfdel, s), 0);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(selfdel_calls, 1);
	close(fds[1]);
	loop_free(&l);
}
END_TEST

static int got_usr1;

static void
on_usr1(struct loop *l, void *ctx)
{
	got_usr1++;
	loop_stop(l);
}

static void
raise_usr1(struct loop *l, void *ctx)
{
	kill(getpid(), SIGUSR1);
}

START_TEST(test_signal)
{
	struct loop *l = loop_new();
	sigset_t cur;

	got_usr1 = 0;
	ck_assert_int_eq(loop_signal(l, SIGUSR1, on_usr1, NULL), 0);
	loop_timer_add(l, 5, raise_usr1, NULL);
	loop_timer_add(l, 5000, stop_cb, NULL);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_int_eq(got_usr1, 1);
	loop_free(&l);
	sigprocmask(SIG_BLOCK, NULL, &cur);
	ck_assert_int_eq(sigismember(&cur, SIGUSR1), 0);
	ck_assert_int_eq(loop_signal(NULL, 0, on_usr1, NULL), -1);
}
END_TEST

START_TEST(test_now_monotonic)
{
	uint64_t a = loop_now_ms(), b;

	usleep(20000);
	b = loop_now_ms();
	ck_assert(b >= a + 15);
}
END_TEST

static Suite *
loop_suite(void)
{
	Suite *s = suite_create("loop");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_timer_order);
	tcase_add_test(tc, test_timer_zero_rearm);
	tcase_add_test(tc, test_pipe_events);
	tcase_add_test(tc, test_interest_change);
	tcase_add_test(tc, test_pause_resume);
	tcase_add_test(tc, test_lazy_pause);
	tcase_add_test(tc, test_delete_in_batch);
	tcase_add_test(tc, test_self_delete);
	tcase_add_test(tc, test_signal);
	tcase_add_test(tc, test_now_monotonic);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(loop_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
