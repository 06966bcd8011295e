/*
 * pass - mailbox_transport: a local user's mailbox copy goes to another
 * delivery agent (Postfix deliver_pass(3)), typically
 * "lmtp:unix:/run/dovecot/lmtp", so Dovecot keeps the mailboxes.
 *
 * Aliases and .forward have been applied already (Postfix precedence);
 * what arrives here is one user's copy. We send the agent at
 * <queue_directory>/private/<transport> one delivery request for it, with
 * "pass" set: its offset is the queue recipient being expanded, its
 * address the user. The agent delivers, logs its status line and answers;
 * it does not mark the queue file. We take its answer as this copy's
 * result (lr_ok / lr_fail), and deliver_request() marks the queue
 * recipient once every copy is done, as for any other copy.
 *
 * Invariants: any failure to reach the agent or to read its answer is a
 * 4.3.0 (the message stays queued). The agent reads the queue file under
 * its own shared lock, beside ours.
 * LIMITS: we wait at most LOCAL_PASS_WAIT_MS for the answer; it must
 * exceed the agent's own timeouts (lmtp_*_timeout) or a slow delivery is
 * deferred here and repeated later (a duplicate, never a loss).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/net.h"
#include "mail/deliver.h"
#include "mail/queue.h"
#include "local.h"

#define LOCAL_PASS_WAIT_MS (3600 * 1000)
#define PASS_CONNECT_MS (30 * 1000)   /* master starts the agent on demand */

static int
pass_connect(const char *transport)
{
	char *path;
	int fd;

	if (strchr(transport, '/') != NULL || *transport == '\0') {
		errno = EINVAL;
		return -1;
	}
	path = xasprintf("%s/%s/%s", lconf.qdir, QUEUE_PRIVATE, transport);
	fd = net_connect_unix(path, PASS_CONNECT_MS);
	free(path);
	return fd;
}

void
local_pass(struct lrcpt *r, const struct laddr *a)
{
	const struct dlv_request *in = r->msg->req;
	const char *spec = lconf.mailbox_transport, *colon = strchr(spec, ':');
	char *transport = colon != NULL ? xstrndup(spec, (size_t)(colon - spec)) :
	    xstrdup(spec);
	struct dlv_request req;
	struct dlv_rcpt dr;
	struct dlv_result *res = NULL;
	struct ipc_msg msg;
	char *err = NULL;
	size_t nres = 0;
	int fd;

	memset(&req, 0, sizeof(req));
	memset(&dr, 0, sizeof(dr));
	req.queue_id = (char *)r->msg->id;
	req.queue_dir = in->queue_dir;
	req.sender = (char *)r->msg->sender;
	req.transport = transport;
	/* Postfix: "transport:nexthop", else the recipient's domain. */
	req.nexthop = (char *)(colon != NULL && colon[1] != '\0' ? colon + 1 : a->domain);
	req.arrival = in->arrival;
	req.arrival_us = in->arrival_us;
	req.active_us = in->active_us;
	req.handoff_us = in->handoff_us;
	req.pass = 1;
	dr.addr = (char *)a->addr;
	/* The queue recipient is the original one (orig_to= in the agent's
	 * log line, as Postfix shows an alias's target). */
	dr.orig = (char *)(*r->orig != '\0' ? r->orig : r->addr);
	dr.notify = (char *)r->notify;
	dr.offset = r->offset;
	req.rcpts = &dr;
	req.nrcpt = 1;
	ipc_init(&msg);
	fd = pass_connect(transport);
	if (fd < 0) {
		log_warn("%s: mailbox_transport %s", r->msg->id, transport);
		lr_fail(r, a->addr, "4.3.0", "mail transport unavailable: %s", transport);
		goto out;
	}
	dlv_request_encode(&req, &msg);
	if (ipc_send(fd, &msg, LOCAL_PASS_WAIT_MS) < 0) {
		lr_fail(r, a->addr, "4.3.0", "cannot hand the message to the %s service",
		    transport);
		goto out;
	}
	ipc_reset(&msg);
	if (ipc_recv(fd, &msg, IPC_MAX_DEFAULT, LOCAL_PASS_WAIT_MS) < 0 ||
	    dlv_results_decode(&msg, &res, &nres, NULL, &err) < 0 || nres != 1 ||
	    res[0].offset != r->offset) {
		log_warnx("%s: no answer from the %s service%s%s", r->msg->id, transport,
		    err != NULL ? ": " : "", err != NULL ? err : "");
		lr_fail(r, a->addr, "4.3.0", "lost connection with the %s service", transport);
		goto out;
	}
	if (res[0].status == 2) {
		lr_ok(r, a->addr, "delivered via %s service (%s)", transport, res[0].text);
		r->npassed++;
	} else
		lr_fail(r, a->addr, res[0].dsn, "%s", res[0].text);
out:
	if (fd >= 0)
		close(fd);
	dlv_results_free(res, nres);
	ipc_free(&msg);
	free(err);
	free(transport);
}
