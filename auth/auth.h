/*
 * auth internals: the per-client-address failure penalty (penalty.c) and
 * the request handling (auth.c).
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stdint.h>

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
/* Blocking (the helper answers in about one password hash's time);
 * *reason_r static text for the log. */
enum pam_verdict pam_check(const char *user, const char *password, const char *rip,
    const char **reason_r);

#endif
