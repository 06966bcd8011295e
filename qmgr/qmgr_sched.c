/*
 * qmgr_sched - transports, destinations and delivery jobs.
 *
 * A recipient resolves to (transport, nexthop). Its destination is the
 * nexthop, or the recipient itself when the transport takes one recipient
 * per delivery (local: Postfix's per-recipient concurrency). Recipients of
 * one message to one destination are batched into jobs of at most
 * <transport>_destination_recipient_limit (default
 * default_destination_recipient_limit, 50; local 1).
 *
 * Limits: per transport, the maxproc of its master.conf service (else
 * default_process_limit); per destination,
 * <transport>_destination_concurrency_limit (else
 * default_destination_concurrency_limit; local 2).
 *
 * Slow start (Postfix's concurrency window): a destination starts with
 * <transport>_initial_destination_concurrency (else
 * initial_destination_concurrency, 5) parallel deliveries; a delivery
 * the destination answered (some recipient delivered or refused) widens
 * the window by 1/window, one where every recipient was deferred narrows
 * it by as much, between 1 and the limit. A destination with nothing
 * queued or running is forgotten, and starts over. There is no
 * dead-destination throttling below a window of 1.
 *
 * Fairness: each transport keeps a ready list of destinations with queued
 * jobs. A start takes the first destination below its limit and moves it
 * to the tail, so destinations take turns and a slow one (at its limit)
 * is skipped, not waited for. Skipping costs at most the number of
 * running deliveries of the transport.
 *
 * Rate delay: <transport>_destination_rate_delay (else
 * default_destination_rate_delay, 0 = off) is the least time between the
 * starts of two deliveries to one destination, whose concurrency is then
 * 1. A start arms the destination's rate timer and takes it off the ready
 * list until the timer fires, so a waiting destination costs the others
 * nothing (no delivery process sleeps, no scan skips it) and the loop
 * needs no polling.
 *
 * Memory: a destination exists only while it has queued or running jobs
 * or its rate timer is armed (so mail arriving within the delay still
 * waits for it).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"
#include "mail/config.h"
#include "mail/mastercf.h"
#include "qmgr.h"

#define BUSY_RETRY_MS 200   /* the agent's listen queue is full */
#define RATE_DELAY_MAX (7 * 86400)   /* s; keeps the ms timer arithmetic sane */

struct qdest {
	struct qtransport *tp;
	char *key;
	char *nexthop;
	int active;
	int limit;                     /* (int)window */
	double window;                 /* slow start, see above */
	struct qjob *head, *tail;      /* queued jobs */
	struct qdest *hnext;           /* hash chain */
	struct qdest *rprev, *rnext;   /* ready list */
	int ready;
	uint64_t rate_timer;           /* armed: no start before it fires */
};

struct qtransport {
	char *name;
	int active;
	int limit;                 /* concurrent deliveries */
	int dest_limit;            /* per destination */
	int dest_initial;          /* a new destination's window */
	size_t rcpt_limit;         /* recipients per job */
	uint64_t rate_delay_ms;    /* between starts per destination, 0 off */
	int blocked;               /* cannot start now: wait for unblock_timer */
	int dead;                  /* no listener: logged, retried later */
	uint64_t unblock_timer;
	struct qdest **hash;
	size_t nbucket, ndest;
	struct qdest *rhead, *rtail;
	struct qtransport *next;
};

static struct qtransport *transports;
static struct master_service *svcs;
static size_t nsvcs;

void
qsched_init(void)
{
	char *path, *err = NULL;

	path = xasprintf("%s/master.conf", config_dir());
	if (mastercf_load(path, (int)qconf.process_limit, &svcs, &nsvcs, &err) < 0) {
		log_warnx("%s: %s; using default_process_limit for every transport",
		    path, err ? err : "cannot load");
		svcs = NULL;
		nsvcs = 0;
	}
	xfree(&err);
	xfree(&path);
}

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static int
transport_limit(const char *name)
{
	size_t i;

	for (i = 0; i < nsvcs; i++)
		if (strcmp(svcs[i].name, name) == 0 && strcmp(svcs[i].type, "unix") == 0) {
			/* maxproc 0 is "no limit": still keep a bound. */
			if (svcs[i].maxproc > 0)
				return svcs[i].maxproc;
			return (int)(qconf.process_limit > 0 ? qconf.process_limit * 10 : 1000);
		}
	return (int)(qconf.process_limit > 0 ? qconf.process_limit : 100);
}

static struct qtransport *
transport_get(const char *name)
{
	struct qtransport *tp;
	char *param;
	long long delay;
	int is_local = strcmp(name, "local") == 0;

	for (tp = transports; tp != NULL; tp = tp->next)
		if (strcmp(tp->name, name) == 0)
			return tp;
	tp = xcalloc(1, sizeof(*tp));
	tp->name = xstrdup(name);
	tp->limit = transport_limit(name);
	param = xasprintf("%s_destination_concurrency_limit", name);
	tp->dest_limit = (int)config_int_or(param, is_local ? 2 : qconf.dest_concurrency, 0, INT_MAX);
	xfree(&param);
	param = xasprintf("%s_destination_recipient_limit", name);
	tp->rcpt_limit = (size_t)config_int_or(param, is_local ? 1 : qconf.dest_rcpt_limit, 0,
	    1000000);
	xfree(&param);
	if (tp->dest_limit <= 0)
		tp->dest_limit = tp->limit;
	if (tp->rcpt_limit == 0)
		tp->rcpt_limit = 50;
	param = xasprintf("%s_destination_rate_delay", name);
	delay = config_time_or(param, qconf.rate_delay, 's');
	if (delay > RATE_DELAY_MAX) {
		log_warnx("%s: %llds is too long; using %ds", param, delay, RATE_DELAY_MAX);
		delay = RATE_DELAY_MAX;
	}
	xfree(&param);
	if (delay > 0) {
		tp->rate_delay_ms = (uint64_t)delay * 1000;
		tp->dest_limit = 1;
	}
	param = xasprintf("%s_initial_destination_concurrency", name);
	tp->dest_initial = (int)config_int_or(param, qconf.dest_initial, 1, INT_MAX);
	xfree(&param);
	if (tp->dest_initial > tp->dest_limit)
		tp->dest_initial = tp->dest_limit;
	tp->nbucket = 64;
	tp->hash = xcalloc(tp->nbucket, sizeof(*tp->hash));
	tp->next = transports;
	transports = tp;
	log_debug("transport %s: process limit %d, destination concurrency %d "
	    "(initial %d), recipients per delivery %zu, rate delay %llu ms", tp->name,
	    tp->limit, tp->dest_limit, tp->dest_initial, tp->rcpt_limit,
	    (unsigned long long)tp->rate_delay_ms);
	return tp;
}

static void
hash_grow(struct qtransport *tp)
{
	struct qdest **nh, *d, *next;
	size_t nb = tp->nbucket * 2, i, b;

	nh = xcalloc(nb, sizeof(*nh));
	for (i = 0; i < tp->nbucket; i++)
		for (d = tp->hash[i]; d != NULL; d = next) {
			next = d->hnext;
			b = hash_str(d->key) % nb;
			d->hnext = nh[b];
			nh[b] = d;
		}
	free(tp->hash);
	tp->hash = nh;
	tp->nbucket = nb;
}

static struct qdest *
dest_get(struct qtransport *tp, const char *key, const char *nexthop)
{
	struct qdest *d;
	size_t b = hash_str(key) % tp->nbucket;

	for (d = tp->hash[b]; d != NULL; d = d->hnext)
		if (strcmp(d->key, key) == 0)
			return d;
	if (tp->ndest >= tp->nbucket * 2) {
		hash_grow(tp);
		b = hash_str(key) % tp->nbucket;
	}
	d = xcalloc(1, sizeof(*d));
	d->tp = tp;
	d->key = xstrdup(key);
	d->nexthop = xstrdup(nexthop);
	d->window = tp->dest_initial;
	d->limit = tp->dest_initial;
	d->hnext = tp->hash[b];
	tp->hash[b] = d;
	tp->ndest++;
	return d;
}

static void
ready_remove(struct qdest *d)
{
	struct qtransport *tp = d->tp;

	if (!d->ready)
		return;
	if (d->rprev != NULL)
		d->rprev->rnext = d->rnext;
	else
		tp->rhead = d->rnext;
	if (d->rnext != NULL)
		d->rnext->rprev = d->rprev;
	else
		tp->rtail = d->rprev;
	d->rprev = d->rnext = NULL;
	d->ready = 0;
}

static void
ready_append(struct qdest *d)
{
	struct qtransport *tp = d->tp;

	if (d->ready)
		return;
	d->rprev = tp->rtail;
	d->rnext = NULL;
	if (tp->rtail != NULL)
		tp->rtail->rnext = d;
	else
		tp->rhead = d;
	tp->rtail = d;
	d->ready = 1;
}

/* Free d when nothing refers to it any more. */
static void
dest_maybe_free(struct qdest *d)
{
	struct qtransport *tp = d->tp;
	struct qdest **pp;

	if (d->active > 0 || d->head != NULL || d->rate_timer != 0)
		return;
	ready_remove(d);
	for (pp = &tp->hash[hash_str(d->key) % tp->nbucket]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	tp->ndest--;
	free(d->key);
	free(d->nexthop);
	free(d);
}

void
qsched_add(struct qmsg *m, size_t idx, const char *transport, const char *nexthop)
{
	struct qtransport *tp = transport_get(transport);
	struct qdest *d;
	struct qjob *job;

	d = dest_get(tp, tp->rcpt_limit == 1 ? m->env.rcpts[idx].addr : nexthop, nexthop);
	/* Jobs are only started from the loop, never while a message is
	 * being routed, so the tail job of m is still open for more. */
	job = d->tail;
	if (job == NULL || job->msg != m || job->n >= tp->rcpt_limit) {
		job = xcalloc(1, sizeof(*job));
		job->msg = m;
		job->dest = d;
		job->idx = xcalloc(tp->rcpt_limit < 64 ? tp->rcpt_limit : 64, sizeof(*job->idx));
		if (d->tail != NULL)
			d->tail->next = job;
		else
			d->head = job;
		d->tail = job;
		m->refs++;
		if (d->rate_timer == 0)
			ready_append(d);
	} else if (job->n >= 64 && (job->n & (job->n - 1)) == 0) {
		job->idx = xreallocarray(job->idx, job->n * 2, sizeof(*job->idx));
	}
	job->idx[job->n++] = idx;
}

static void
unblock_cb(struct loop *l, void *ctx)
{
	struct qtransport *tp = ctx;

	(void)l;
	tp->unblock_timer = 0;
	tp->blocked = 0;
	qmgr_kick();
}

/* The destination's rate delay is over: it may start again. */
static void
rate_cb(struct loop *l, void *ctx)
{
	struct qdest *d = ctx;

	(void)l;
	d->rate_timer = 0;
	if (d->head != NULL) {
		ready_append(d);
		qmgr_kick();
	} else {
		dest_maybe_free(d);
	}
}

/* The first destination of tp that may start a delivery, or NULL. */
static struct qdest *
pick(struct qtransport *tp)
{
	struct qdest *d;

	for (d = tp->rhead; d != NULL; d = d->rnext)
		if (d->active < d->limit && d->head != NULL)
			return d;
	return NULL;
}

void
qsched_run(void)
{
	struct qtransport *tp;
	struct qdest *d;
	struct qjob *job;
	int progress = 1;

	if (qmgr_draining)
		return;
	/* Round robin across transports too: one start each per round. */
	while (progress && !qmgr_draining) {
		progress = 0;
		for (tp = transports; tp != NULL; tp = tp->next) {
			if (tp->blocked || tp->active >= tp->limit)
				continue;
			d = pick(tp);
			if (d == NULL)
				continue;
			job = d->head;
			d->head = job->next;
			if (d->head == NULL)
				d->tail = NULL;
			job->next = NULL;
			ready_remove(d);
			/* Armed before the start: a start that fails at once
			 * (qsched_job_done) must not free d under us. */
			if (tp->rate_delay_ms > 0) {
				log_debug("%s: next delivery in %llu ms", d->key,
				    (unsigned long long)tp->rate_delay_ms);
				d->rate_timer = loop_timer_add(qmgr_loop, tp->rate_delay_ms,
				    rate_cb, d);
			} else if (d->head != NULL) {
				ready_append(d);
			}
			d->active++;
			tp->active++;
			switch (qdeliver_start(job)) {
			case 1:
				qsched_job_retry(job, BUSY_RETRY_MS);
				continue;
			case 2:
				qsched_job_retry(job, (uint64_t)qconf.transport_retry * 1000);
				continue;
			default:
				break;
			}
			if (tp->dead) {
				log_info("transport %s: reachable again", tp->name);
				tp->dead = 0;
			}
			progress = 1;
		}
	}
}

void
qsched_transport_dead(struct qjob *job, const char *why)
{
	struct qtransport *tp = job->dest->tp;

	if (!tp->dead)
		log_warnx("connect to transport %s/%s: %s; its mail stays queued, "
		    "retrying in %lld s", QUEUE_PRIVATE, tp->name, why,
		    qconf.transport_retry);
	tp->dead = 1;
}

void
qsched_job_retry(struct qjob *job, uint64_t delay_ms)
{
	struct qdest *d = job->dest;
	struct qtransport *tp = d->tp;

	d->active--;
	tp->active--;
	/* Nothing was started: no delay to honour. */
	if (d->rate_timer != 0) {
		loop_timer_cancel(qmgr_loop, d->rate_timer);
		d->rate_timer = 0;
	}
	job->next = d->head;
	d->head = job;
	if (d->tail == NULL)
		d->tail = job;
	ready_remove(d);
	/* Back to the front: it was this destination's turn. */
	d->rprev = NULL;
	d->rnext = tp->rhead;
	if (tp->rhead != NULL)
		tp->rhead->rprev = d;
	else
		tp->rtail = d;
	tp->rhead = d;
	d->ready = 1;
	tp->blocked = 1;
	if (tp->unblock_timer == 0)
		tp->unblock_timer = loop_timer_add(qmgr_loop, delay_ms, unblock_cb, tp);
}

void
qsched_job_done(struct qjob *job, int feedback)
{
	struct qdest *d = job->dest;
	struct qmsg *m = job->msg;

	if (feedback != 0) {
		d->window += feedback / d->window;
		if (d->window < 1)
			d->window = 1;
		if (d->window > d->tp->dest_limit)
			d->window = d->tp->dest_limit;
		d->limit = (int)d->window;
	}
	d->active--;
	d->tp->active--;
	dest_maybe_free(d);
	free(job->idx);
	free(job);
	qmsg_unref(m);
	qmgr_kick();
	qmgr_check_drained();
}

const char *
qsched_transport_name(const struct qjob *job)
{
	return job->dest->tp->name;
}

int
qsched_dest_backlog(const struct qjob *job)
{
	const struct qtransport *tp = job->dest->tp;

	/* One recipient per destination (local): the destination is the
	 * recipient, while a kept agent connection serves the nexthop, so
	 * what counts is whether the transport has more to start. */
	if (tp->rcpt_limit == 1)
		return tp->rhead != NULL || tp->active > 1;
	return job->dest->head != NULL || job->dest->active > 1;
}

int
qsched_transport_room(const struct qjob *job)
{
	const struct qtransport *tp = job->dest->tp;

	return tp->limit > tp->active ? tp->limit - tp->active : 0;
}

const char *
qsched_nexthop(const struct qjob *job)
{
	return job->dest->nexthop;
}

void
qsched_free_all(void)
{
	struct qtransport *tp;
	struct qdest *d, *dn;
	struct qjob *j, *jn;
	size_t i;

	while ((tp = transports) != NULL) {
		transports = tp->next;
		for (i = 0; i < tp->nbucket; i++)
			for (d = tp->hash[i]; d != NULL; d = dn) {
				dn = d->hnext;
				if (d->rate_timer != 0)
					loop_timer_cancel(qmgr_loop, d->rate_timer);
				for (j = d->head; j != NULL; j = jn) {
					jn = j->next;
					free(j->idx);
					free(j);
				}
				free(d->key);
				free(d->nexthop);
				free(d);
			}
		if (tp->unblock_timer != 0)
			loop_timer_cancel(qmgr_loop, tp->unblock_timer);
		free(tp->hash);
		free(tp->name);
		free(tp);
	}
	mastercf_free(svcs, nsvcs);
	svcs = NULL;
	nsvcs = 0;
}
