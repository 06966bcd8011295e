/*
 * penalty - a growing delay after failed logins, per client address (as
 * Dovecot's auth penalty): after N failures, the next request from that
 * address waits 2^(N-1) s, at most 15 s; a success forgets the address.
 *
 * Invariants: the delay is applied by the caller with a loop timer, never
 * by sleeping, so one address's penalty never slows anybody else. Requests
 * from one address are serialised (each one's slot starts after the one
 * before), so opening many connections at once does not skip the delay.
 *
 * Trusts: addr is whatever the client daemon reported; an empty one is one
 * shared bucket. Limits: PENALTY_MAX_ENTRIES addresses, the entry with the
 * oldest failure is reused when full; a linear scan is fine at that size
 * for an event as rare as a login.
 */
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "auth.h"

struct pen {
	char *addr;
	unsigned fails;
	uint64_t last_fail;
	uint64_t not_before;
};

static struct pen pens[PENALTY_MAX_ENTRIES];
static size_t npens;

uint64_t
penalty_delay_for(unsigned failures)
{
	uint64_t ms;

	if (failures == 0)
		return 0;
	if (failures > 5)
		return PENALTY_MAX_MS;
	ms = 1000ULL << (failures - 1);
	return ms > PENALTY_MAX_MS ? PENALTY_MAX_MS : ms;
}

static void
pen_remove(size_t i)
{
	xfree(&pens[i].addr);
	pens[i] = pens[--npens];
	pens[npens].addr = NULL;
}

static struct pen *
pen_find(const char *addr, uint64_t now)
{
	size_t i;

	for (i = 0; i < npens; i++) {
		if (strcmp(pens[i].addr, addr) != 0)
			continue;
		if (now > pens[i].last_fail + PENALTY_FORGET_MS &&
		    now >= pens[i].not_before) {
			pen_remove(i);
			return NULL;
		}
		return &pens[i];
	}
	return NULL;
}

unsigned
penalty_failures(const char *addr)
{
	struct pen *e = pen_find(addr, 0);

	return e != NULL ? e->fails : 0;
}

uint64_t
penalty_schedule(const char *addr, uint64_t now)
{
	struct pen *e = pen_find(addr, now);
	uint64_t t;

	if (e == NULL)
		return now;
	t = e->not_before > now ? e->not_before : now;
	t += penalty_delay_for(e->fails);
	e->not_before = t;
	return t;
}

void
penalty_failure(const char *addr, uint64_t now)
{
	struct pen *e = pen_find(addr, now);
	size_t i, old;

	if (e == NULL) {
		if (npens == PENALTY_MAX_ENTRIES) {
			for (old = 0, i = 1; i < npens; i++)
				if (pens[i].last_fail < pens[old].last_fail)
					old = i;
			pen_remove(old);
		}
		e = &pens[npens++];
		memset(e, 0, sizeof(*e));
		e->addr = xstrdup(addr);
	}
	if (e->fails < 1000)
		e->fails++;
	e->last_fail = now;
}

void
penalty_success(const char *addr)
{
	size_t i;

	for (i = 0; i < npens; i++)
		if (strcmp(pens[i].addr, addr) == 0) {
			pen_remove(i);
			return;
		}
}
