/*
 * showq - the queue listing service behind "postern queue list" (and
 * mailq), so that a user who may not read the queue can still list it.
 *
 * master.conf: "showq unix n - n - - showq": a socket in public/, one
 * connection at a time (SERVER_SINGLE), running as mail_owner. The client
 * sends nothing; we answer one ipc frame per message and a final frame
 * "end" = count (see lib/mail/showq.h), then close.
 *
 * Who may list: authorized_mailq_users (Postfix's name), a list of login
 * names, or "static:anyone" (the default); root and mail_owner always.
 * The caller is identified by SO_PEERCRED, never by anything it says.
 *
 * Trusts: nothing from the client (it is not read). Queue files only as
 * far as showq_read() validates them; unreadable ones are logged and
 * skipped. Limits: a slow client gets SEND_TIMEOUT_MS per frame.
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/ipc.h"
#include "util/log.h"
#include "util/strv.h"
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

/* May the peer on fd list the queue? */
static int
authorized(int fd)
{
	const char *list = config_get("authorized_mailq_users");
	const char *owner = config_get("mail_owner");
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd *pw;
	char **names;
	int ok;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("SO_PEERCRED");
		return 0;
	}
	if (cred.uid == 0 || cred.uid == getuid())
		return 1;
	if (list == NULL || strcmp(list, "static:anyone") == 0)
		return 1;
	pw = getpwuid(cred.uid);
	if (pw == NULL)
		return 0;
	if (owner != NULL && strcmp(pw->pw_name, owner) == 0)
		return 1;
	names = strv_split_list(list);
	ok = strv_contains_ci(names, pw->pw_name) || strv_contains_ci(names, "static:anyone");
	strv_free(&names);
	return ok;
}

static void
showq_serve(int fd)
{
	const char *qdir = config_get("queue_directory");
	struct conn c = { fd, 0, 0 };
	struct ipc_msg f;
	char *err = NULL;

	if (!authorized(fd)) {
		log_warnx("uid of the client is not in authorized_mailq_users: listing refused");
		ipc_init(&f);
		ipc_put(&f, "error", "permission denied: not in authorized_mailq_users");
		(void)ipc_send(fd, &f, SEND_TIMEOUT_MS);
		ipc_free(&f);
		return;
	}
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
