/*
 * auth internals: the per-client-address failure penalty (penalty.c) and
 * the request handling (auth.c).
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;

/* Entries are dropped this long after their last failure. */
#define PENALTY_FORGET_MS (60 * 60 * 1000ULL)
/* The most addresses remembered; the stalest goes when full. */
#define PENALTY_MAX_ENTRIES 4096
/* The delay never grows past this. */
#define PENALTY_MAX_MS 15000ULL

/* Delay in ms before a request with this many earlier failures is
 * looked at: 0, 1 s, 2 s, 4 s, 8 s, then 15 s. */
uint64_t penalty_delay_for(unsigned failures);
/* When (loop_now_ms() scale) may a request from addr arriving at now be
 * processed? Requests from one address are serialised: each reserves the
 * slot after the previous one plus the delay. */
uint64_t penalty_schedule(const char *addr, uint64_t now);
void penalty_failure(const char *addr, uint64_t now);
void penalty_success(const char *addr);
unsigned penalty_failures(const char *addr);

/* pam.c: system users through PAM, by a helper that keeps root (forked
 * before auth drops privileges). */
enum pam_verdict { PAMV_OK, PAMV_FAIL, PAMV_TEMPFAIL };
int pam_helper_start(const char *service);   /* 0, or -1 (errno) */
int pam_helper_available(void);
/* A child exited (from auth's SIGCHLD): 1 if it was the PAM helper. */
int pam_helper_exited(pid_t pid);
/* Blocking (the helper answers in about one password hash's time), so it
 * runs in a hashing thread; one at a time (a mutex), never logs. reason
 * gets the text for the log. */
enum pam_verdict pam_check(const char *user, const char *password, const char *rip,
    char *reason, size_t reason_size);

/* pool.c: the hashing threads. A job is filled in by the loop, run by a
 * thread, and handed back to the loop through done(). */
enum job_kind {
	JOB_VERIFY,     /* password against hash: result is enum passwd_result */
	JOB_DUMMY,      /* the same work for an unknown user: PASSWD_MISMATCH */
	JOB_PAM,        /* a system login: result is enum pam_verdict */
};

struct auth_job {
	enum job_kind kind;
	char *password;         /* wiped as soon as the thread is done */
	char *hash;             /* JOB_VERIFY; wiped likewise */
	char *user, *rip;       /* JOB_PAM */
	int result;
	char reason[256];       /* JOB_PAM: for the log */
	void (*done)(struct auth_job *j);
	void *ctx;
	struct auth_job *next;
};

int pool_start(struct loop *l, unsigned nthreads);   /* 0, or -1 (errno) */
unsigned pool_size(void);
void pool_submit(struct auth_job *j);
struct auth_job *auth_job_new(enum job_kind kind, const char *password);
void auth_job_free(struct auth_job *j);

#endif
