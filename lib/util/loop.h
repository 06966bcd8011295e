/*
 * loop - one epoll event loop per process: fd events, monotonic timers and
 * signals (through signalfd), each with a callback and a context pointer.
 *
 * Callbacks may add, change or delete any registration, including their own,
 * and may free their context after deleting it. No threads.
 */
#ifndef POSTERN_LOOP_H
#define POSTERN_LOOP_H

#include <stdint.h>

struct loop;

enum {
	LOOP_READ = 1,
	LOOP_WRITE = 2,
	LOOP_ERROR = 4,   /* EPOLLERR/EPOLLHUP; always reported */
};

typedef void (*loop_fd_cb)(struct loop *l, int fd, unsigned events, void *ctx);
typedef void (*loop_cb)(struct loop *l, void *ctx);

struct loop *loop_new(void);
void loop_free(struct loop **l);

/* Register fd or change its interest set/callback. events 0 = keep the fd
 * registered but report nothing. Returns 0, or -1 with errno. */
int loop_fd_set(struct loop *l, int fd, unsigned events, loop_fd_cb cb, void *ctx);
void loop_fd_del(struct loop *l, int fd);

/* One-shot timer in ms from now. Ids are never 0 and never reused. */
uint64_t loop_timer_add(struct loop *l, uint64_t ms, loop_cb cb, void *ctx);
void loop_timer_cancel(struct loop *l, uint64_t id);

/* Deliver signo through the loop (the signal is blocked for the process). */
int loop_signal(struct loop *l, int signo, loop_cb cb, void *ctx);

/* Unblock every signal that loop_signal blocked in this process. Blocked
 * masks survive fork() and exec(): call this in a child after fork(). */
void loop_sigmask_restore(void);

/* Called once per iteration just before the loop sleeps. */
void loop_set_before_sleep(struct loop *l, loop_cb cb, void *ctx);

uint64_t loop_now_ms(void);   /* CLOCK_MONOTONIC in ms */
int loop_run(struct loop *l); /* until loop_stop(); 0, or -1 on epoll failure */
void loop_stop(struct loop *l);

#endif
