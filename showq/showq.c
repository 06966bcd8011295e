/*
 * showq - the queue listing service behind "postern queue list" (and
 * mailq), so that a user who may not read the queue can still list it.
 *
 * master.conf: "showq unix n - n - - showq": a socket in public/, one
 * connection at a time (SERVER_SINGLE), running as mail_owner. The client
 * sends nothing; we answer one ipc frame per message and a final frame
 * "end" = count (see lib/mail/showq.h), then close.
 *
 * Trusts: nothing from the client (it is not read). Queue files only as
 * far as showq_read() validates them; unreadable ones are logged and
 * skipped. Limits: a slow client gets SEND_TIMEOUT_MS per frame.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/ipc.h"
#include "util/log.h"
#include "mail/config.h"
#include "mail/server.h"
#include "mail/showq.h"

#define SEND_TIMEOUT_MS 10000

struct conn {
	int fd;
	long long count;
	int failed;
};

static void
warn_text(const char *text)
{
	log_warnx("%s", text);
}

static int
send_one(struct showq_msg *m, void *ctx)
{
	struct conn *c = ctx;
	struct ipc_msg f;
	int rc = 0;

	ipc_init(&f);
	showq_msg_encode(m, &f);
	if (ipc_send(c->fd, &f, SEND_TIMEOUT_MS) < 0) {
		log_debug("send listing: %s", strerror(errno));
		c->failed = 1;
		rc = 1;
	}
	ipc_free(&f);
	c->count++;
	return rc;
}

static void
showq_serve(int fd)
{
	const char *qdir = config_get("queue_directory");
	struct conn c = { fd, 0, 0 };
	struct ipc_msg f;
	char *err = NULL;

	if (qdir == NULL || *qdir == '\0')
		qdir = ".";
	if (showq_scan(qdir, send_one, &c, warn_text, &err) < 0) {
		log_warnx("%s", err != NULL ? err : "queue scan failed");
		free(err);
		return;     /* no "end": the client reports an incomplete listing */
	}
	if (c.failed)
		return;
	ipc_init(&f);
	ipc_put_int(&f, "end", c.count);
	if (ipc_send(fd, &f, SEND_TIMEOUT_MS) < 0)
		log_debug("send listing end: %s", strerror(errno));
	ipc_free(&f);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.kind = SERVER_SINGLE,
		.name = "showq",
		.serve = showq_serve,
	};

	return server_main(argc, argv, &ops);
}
