/*
 * dlvlog - the per-recipient delivery status line, in Postfix's format:
 *
 *   ID: to=<addr>, orig_to=<orig>, relay=R, conn_use=N, delay=D, delays=a/b/c/d,
 *       dsn=X.Y.Z, status=sent|deferred|bounced|... (text)
 *
 * Who logs it: the delivery agent (local, virtual, smtp) at the moment a
 * recipient's outcome is final for this attempt - for "sent" right after
 * the durable delivery and the 'D' mark, before replying to qmgr - and
 * marks the result "logged" (deliver.h). qmgr logs only outcomes no agent
 * reported (agent died, no connection, expiry, bounce log failure). So a
 * qmgr killed mid-delivery loses no status line, and none is doubled.
 *
 * delay= is the time since arrival; delays= splits it Postfix's way:
 * a before qmgr (arrival to activation), b in qmgr (activation to
 * hand-off to the agent), c connection setup (hand-off to connected),
 * d transmission (connected to now). Unknown stamps (zero) count as the
 * previous one, so the parts still add up to delay. conn_use= appears
 * only for a reused connection (N > 1), as in Postfix.
 */
#ifndef POSTERN_DLVLOG_H
#define POSTERN_DLVLOG_H

#include <stddef.h>
#include <time.h>

#include "util/buf.h"
#include "mail/deliver.h"

struct dlvlog_times {
	struct timespec arrival;     /* the queue file's 'T' */
	struct timespec active;      /* qmgr moved it to active/ */
	struct timespec handoff;     /* qmgr handed the recipients to the agent */
	struct timespec connected;   /* the agent reached the destination */
	/* Deliveries so far on that connection, this one counted; above 1
	 * (a cached connection reused) the line shows Postfix's conn_use=N
	 * after relay=. */
	int conn_use;
};

/* Postfix's number style: two significant digits below 10 s ("0.12",
 * "3.4"), whole seconds above, "0" below 10 ms. */
void dlvlog_format_delay(char *out, size_t len, double seconds);

/* Stamps from a delivery request (arrival, active, handoff; connected =
 * handoff until the agent sets it). */
void dlvlog_times_request(struct dlvlog_times *t, const struct dlv_request *r);

/* Append the line (without a newline) to out; now is the completion time.
 * orig may be NULL or "" or carry an "rfc822;" prefix; orig_to= is shown
 * only when it differs from addr. Control characters in text become
 * spaces: the text may come from a remote server. */
void dlvlog_format(struct buf *out, const char *id, const char *addr,
    const char *orig, const char *relay, const struct dlvlog_times *t,
    const struct timespec *now, const char *dsn, const char *status,
    const char *text);

/* Format with now = the current time and log it (info). */
void dlvlog_status(const char *id, const char *addr, const char *orig,
    const char *relay, const struct dlvlog_times *t, const char *dsn,
    const char *status, const char *text);

/* The same for an agent's result: status from res->status (2 sent,
 * 4 deferred, 5 bounced); sets res->logged. */
void dlvlog_result(const char *id, const char *addr, const char *orig,
    const struct dlvlog_times *t, struct dlv_result *res);

#endif
