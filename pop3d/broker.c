/*
 * broker - hands logged-in POP3 sessions to per-owner worker processes.
 *
 * Request (from pop3-login, ipc frame with the client's descriptor):
 *   ticket= rip= lip= tls= method= [input=]
 * Reply: status=ok | tempfail reason=...
 *
 * Invariants:
 * - The user comes from auth (auth_ticket_redeem, SO_PEERCRED-checked
 *   against auth_owner when root), never from the login process.
 * - A worker runs as exactly one mailbox owner's uid and gid, set before
 *   exec (priv_drop); uid 0 is refused. Up to pop3d_owner_process_limit
 *   workers per uid (default: the CPU count; every virtual user shares
 *   one uid): an owner's sessions go to the one that was given the fewest,
 *   and share its loop (and its open mailbox handles). Two workers may
 *   hold one Maildir: the index is made for concurrent processes; an mbox
 *   is locked per session.
 * - This process reads only the login's frame and auth's reply; the
 *   client's bytes it passes on unread (the pipelined "input" goes
 *   through as an opaque attribute).
 * Trusts: auth; master.conf (it runs as root only because it is told so).
 * BUGS: requests are served one at a time, synchronously (ticket redeem
 * and a possible fork/exec, milliseconds). Workers live as long as the
 * broker; they exit when it goes (control socket EOF) after their
 * sessions end.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/net.h"
#include "util/priv.h"
#include "mail/auth_client.h"
#include "mail/config.h"
#include "mail/server.h"
#include "store/owner.h"
#include "pop3d.h"

#define BROKER_IO_TIMEOUT_MS 10000
#define REQUEST_MAX (64 * 1024)

struct worker {
	uid_t uid;
	pid_t pid;
	int sock;
	unsigned long given;    /* sessions passed to it */
	struct worker *next;
};

static struct worker *workers;
static struct owner_conf oconf;
static char self_exe[PATH_MAX];
static char **self_argv;
static int self_argc;
static char *auth_path;
static uid_t auth_uid = (uid_t)-1;
static long long owner_process_limit;

static void
worker_drop(struct worker *w)
{
	struct worker **pp;

	for (pp = &workers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	close(w->sock);
	free(w);
}

static void
sigchld_cb(struct loop *l, void *ctx)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (struct worker *w = workers; w != NULL; w = w->next) {
			if (w->pid == pid) {
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
					log_warnx("worker for uid %ld (pid %ld) ended with "
					    "status %d", (long)w->uid, (long)pid, status);
				worker_drop(w);
				break;
			}
		}
	}
	server_exit_when_idle();
}

static struct worker *
worker_spawn(const struct mailbox_owner *o, char **err_r)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		*err_r = xasprintf("socketpair: %s", strerror(errno));
		return NULL;
	}
	pid = fork();
	if (pid < 0) {
		*err_r = xasprintf("fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	if (pid == 0) {
		char **argv = xcalloc((size_t)self_argc + 2, sizeof(char *));

		const char *lf = config_get("maillog_file");

		loop_sigmask_restore();
		if (dup2(sv[1], 3) < 0)
			_exit(75);
		/* The worker cannot open a root-owned log file as the mailbox
		 * owner: it gets it, opened now, as its stderr. */
		if (lf != NULL && *lf != '\0' && strcmp(lf, "-") != 0) {
			int fd = open(lf, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY, 0644);
			if (fd >= 0 && fd != 2) {
				(void)dup2(fd, 2);
				close(fd);
			}
		}
		if (priv_is_root() && priv_drop(o->uid, o->gid, NULL) < 0)
			_exit(75);
		argv[0] = self_argv[0];
		argv[1] = "-W";
		for (int i = 1; i < self_argc; i++)
			argv[i + 1] = self_argv[i];
		execv(self_exe, argv);
		_exit(75);
	}
	close(sv[1]);
	struct worker *w = xcalloc(1, sizeof(*w));
	w->uid = o->uid;
	w->pid = pid;
	w->sock = sv[0];
	w->next = workers;
	workers = w;
	log_debug("started worker pid %ld for uid %ld", (long)pid, (long)o->uid);
	return w;
}

/* The worker for one more session of o's uid: the one given the fewest,
 * or a new one while fewer than pop3d_owner_process_limit run. */
static struct worker *
worker_pick(const struct mailbox_owner *o, char **err_r)
{
	struct worker *w, *best = NULL;
	long long n = 0;

	for (w = workers; w != NULL; w = w->next)
		if (w->uid == o->uid) {
			n++;
			if (best == NULL || w->given < best->given)
				best = w;
		}
	if (best == NULL || (n < owner_process_limit && best->given > 0))
		best = worker_spawn(o, err_r);
	if (best != NULL)
		best->given++;
	return best;
}

/* Resolve and pass one session. 0, or -1 with *err_r. */
static int
serve(const struct ipc_msg *req, int cfd, char **err_r)
{
	const char *ticket = ipc_get(req, "ticket");
	struct mailbox_owner o;
	struct ipc_msg fwd;
	char *user = NULL;
	int r, rc = -1;

	memset(&o, 0, sizeof(o));
	if (ticket == NULL) {
		*err_r = xstrdup("no ticket");
		return -1;
	}
	r = auth_ticket_redeem(auth_path, ticket, auth_uid, BROKER_IO_TIMEOUT_MS, &user);
	if (r <= 0) {
		*err_r = xstrdup(r == 0 ? "login ticket refused by auth"
		    : "auth service unavailable");
		return -1;
	}
	r = owner_lookup(&oconf, user, &o, err_r);
	if (r <= 0) {
		if (r == 0) {
			char *e = *err_r;
			*err_r = xasprintf("user %s: no mailbox: %s", user, e ? e : "");
			free(e);
		}
		free(user);
		return -1;
	}
	if (o.uid == 0) {
		*err_r = xasprintf("user %s: mailbox owner is root: refused", user);
		goto out;
	}
	ipc_init(&fwd);
	ipc_put(&fwd, "user", user);
	ipc_put(&fwd, "mailbox", o.path);
	ipc_put(&fwd, "mailbox_type", owner_is_maildir(o.path) ? "maildir" : "mbox");
	for (const char *const *k = (const char *const[]){ "rip", "lip", "tls",
	    "method", "input", NULL }; *k != NULL; k++) {
		const char *v = ipc_get(req, *k);
		if (v != NULL)
			ipc_put(&fwd, *k, v);
	}
	/* A worker that just died shows up as a failed send: one retry with
	 * a fresh one. */
	for (int attempt = 0; attempt < 2 && rc < 0; attempt++) {
		struct worker *w = worker_pick(&o, err_r);

		if (w == NULL)
			break;
		if (ipc_send_fd(w->sock, &fwd, cfd, BROKER_IO_TIMEOUT_MS) == 0) {
			rc = 0;
		} else {
			log_warn("worker pid %ld (uid %ld)", (long)w->pid, (long)w->uid);
			worker_drop(w);
		}
	}
	if (rc < 0 && *err_r == NULL)
		*err_r = xstrdup("cannot reach the worker");
	ipc_free(&fwd);
out:
	owner_free(&o);
	free(user);
	return rc;
}

static void
broker_conn(struct loop *l, int fd)
{
	struct ipc_msg req, rep;
	int cfd = -1;
	char *err = NULL;

	ipc_init(&req);
	ipc_init(&rep);
	if (ipc_recv_fd(fd, &req, REQUEST_MAX, &cfd, BROKER_IO_TIMEOUT_MS) < 0) {
		log_warn("request from pop3-login");
		goto out;
	}
	if (serve(&req, cfd, &err) == 0) {
		ipc_put(&rep, "status", "ok");
	} else {
		log_warnx("rip=%s: %s", ipc_get(&req, "rip") ? ipc_get(&req, "rip") : "?",
		    err ? err : "failed");
		ipc_put(&rep, "status", "tempfail");
		ipc_put(&rep, "reason", err ? err : "failed");
	}
	if (ipc_send(fd, &rep, BROKER_IO_TIMEOUT_MS) < 0)
		log_warn("reply to pop3-login");
out:
	free(err);
	if (cfd >= 0)
		close(cfd);
	ipc_free(&req);
	ipc_free(&rep);
	server_disconnect(l, fd);
}

static void
broker_post_init(struct loop *l)
{
	ssize_t n;

	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0)
		log_fatal("readlink /proc/self/exe");
	self_exe[n] = '\0';
	owner_conf_load(&oconf);
	owner_process_limit = config_int_range("pop3d_owner_process_limit", 1, 64);
	auth_path = xasprintf("%s/private/auth", config_get("queue_directory"));
	if (priv_is_root()) {
		const char *owner = config_get("auth_owner");
		gid_t gid;
		if (priv_user(owner, &auth_uid, &gid) < 0)
			log_fatalx("auth_owner \"%s\" is not a known user", owner);
	} else {
		log_info("not root: privilege separation is off, workers run as uid %ld",
		    (long)getuid());
	}
	if (loop_signal(l, SIGCHLD, sigchld_cb, NULL) < 0)
		log_fatal("SIGCHLD handler");
}

static int
broker_busy(void)
{
	return workers != NULL;
}

static void
broker_drain(struct loop *l)
{
	/* Workers see their control socket close and finish their sessions. */
	while (workers != NULL) {
		struct worker *w = workers;
		workers = w->next;
		close(w->sock);
		free(w);
	}
}

int
broker_main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.kind = SERVER_MULTI,
		.name = "pop3d",
		.post_init = broker_post_init,
		.conn = broker_conn,
		.drain = broker_drain,
		.busy = broker_busy,
	};

	self_argc = argc;
	self_argv = argv;
	return server_main(argc, argv, &ops);
}
