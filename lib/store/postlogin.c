/*
 * postlogin - the mailbox broker and the per-owner workers of pop3d and
 * imapd (store/postlogin.h).
 *
 * Broker request (from the login process, ipc frame with the client's
 * descriptor): ticket= rip= lip= tls= method= [input=]
 * Reply: status=ok | tempfail reason=...
 *
 * Broker invariants:
 * - The user comes from auth (auth_ticket_redeem, SO_PEERCRED-checked
 *   against auth_owner when root), never from the login process.
 * - A worker runs as exactly one mailbox owner's uid and gid, set before
 *   exec (priv_drop); uid 0 is refused. Up to NAME_owner_process_limit
 *   workers per uid (pop3d_owner_process_limit, imapd_owner_process_limit;
 *   default: the CPU count; every virtual user shares one uid): a user's
 *   sessions all go to one of them, chosen by a hash of the name, and
 *   share its loop (and its open mailbox handles). Two workers may hold one
 *   Maildir: the index is made for concurrent processes; an mbox is
 *   locked per session.
 * - The broker reads only the login's frame and auth's reply; the
 *   client's bytes it passes on unread (the pipelined "input" goes
 *   through as an opaque attribute).
 * Worker invariants: it never runs as root (checked before anything
 * else); it reads only what the broker sends on fd 3 and the clients'
 * bytes. When the broker goes away (EOF on fd 3) or SIGTERM comes, it
 * takes no new sessions and exits when the last one ends; sessions in
 * progress are not cut.
 * Trusts: auth; master.conf (the broker runs as root only because it is
 * told so).
 * BUGS: broker requests are served one at a time, synchronously (ticket
 * redeem and a possible fork/exec, milliseconds). Workers live as long as
 * the broker; they exit when it goes (control socket EOF) after their
 * sessions end.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
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
#include "mail/server_args.h"
#include "store/owner.h"
#include "store/postlogin.h"

#define BROKER_IO_TIMEOUT_MS 10000
#define REQUEST_MAX (64 * 1024)

struct worker {
	uid_t uid;
	pid_t pid;
	int sock;
	unsigned slot;          /* users whose name hashes here (worker_pick) */
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
static const char *broker_name;      /* "pop3d", "imapd" */

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

/* The worker for one more session of user (owner o). Each user has one
 * slot of NAME_owner_process_limit per uid (a hash of the name), so all
 * sessions of one user meet in one worker: per-user limits
 * (imapd_client_connection_limit) hold, and an IMAP session hears of the
 * user's other sessions' changes at once; different users of one uid
 * (every virtual user) still spread over the CPUs. */
static struct worker *
worker_pick(const struct mailbox_owner *o, const char *user, char **err_r)
{
	uint32_t h = 2166136261u;          /* FNV-1a: stable, no state */
	struct worker *w;
	unsigned slot;

	for (const unsigned char *p = (const unsigned char *)user; *p; p++)
		h = (h ^ (uint32_t)tolower(*p)) * 16777619u;
	slot = (unsigned)(h % (uint32_t)owner_process_limit);
	for (w = workers; w != NULL; w = w->next)
		if (w->uid == o->uid && w->slot == slot)
			return w;
	w = worker_spawn(o, err_r);
	if (w != NULL)
		w->slot = slot;
	return w;
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
	if (o.quota > 0)
		ipc_put_int(&fwd, "quota", (long long)o.quota);
	if (o.home != NULL)
		ipc_put(&fwd, "home", o.home);
	for (const char *const *k = (const char *const[]){ "rip", "lip", "tls",
	    "method", "input", "tag", NULL }; *k != NULL; k++) {
		const char *v = ipc_get(req, *k);
		if (v != NULL)
			ipc_put(&fwd, *k, v);
	}
	/* A worker that just died shows up as a failed send: one retry with
	 * a fresh one. */
	for (int attempt = 0; attempt < 2 && rc < 0; attempt++) {
		struct worker *w = worker_pick(&o, user, err_r);

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
		log_warn("request from the login process");
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
		log_warn("reply to the login process");
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
	char *lim = xasprintf("%s_owner_process_limit", broker_name);
	owner_process_limit = config_int_range(lim, 1, 64);
	free(lim);
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

static int
broker_main(int argc, char **argv, const struct postlogin_ops *pops)
{
	static struct server_ops ops = {
		.kind = SERVER_MULTI,
		.post_init = broker_post_init,
		.conn = broker_conn,
		.drain = broker_drain,
		.busy = broker_busy,
	};

	ops.name = pops->name;
	broker_name = pops->name;
	self_argc = argc;
	self_argv = argv;
	return server_main(argc, argv, &ops);
}

/* ---- worker ---- */

#define CTL_FD 3
#define CTL_FRAME_MAX (64 * 1024)

static struct loop *wloop;
static const struct postlogin_ops *wops;
static int ctl_open = 1;

static void
maybe_exit(void)
{
	if (!ctl_open && wops->session_count() == 0)
		loop_stop(wloop);
}

void
postlogin_session_gone(void)
{
	maybe_exit();
}

static void
ctl_close(void)
{
	if (!ctl_open)
		return;
	loop_fd_del(wloop, CTL_FD);
	close(CTL_FD);
	ctl_open = 0;
	maybe_exit();
}

static void
ctl_cb(struct loop *l, int fd, unsigned ev, void *ctx)
{
	struct ipc_msg m;
	int cfd = -1;

	ipc_init(&m);
	if (ipc_recv_fd(fd, &m, CTL_FRAME_MAX, &cfd, 5000) < 0) {
		if (errno != EPIPE)
			log_warn("session from the broker");
		ipc_free(&m);
		ctl_close();
		return;
	}
	if (net_set_nonblock(cfd, 1) < 0) {
		log_warn("session socket");
		close(cfd);
	} else {
		wops->session_start(l, &m, cfd);
	}
	ipc_free(&m);
}

static void
sigterm_cb(struct loop *l, void *ctx)
{
	ctl_close();
}

static int
worker_main(int argc, char **argv, const struct postlogin_ops *ops)
{
	struct server_args a;
	char *err = NULL, *progname;
	const char *dir;

	if (getuid() == 0 || geteuid() == 0) {
		log_open(ops->name, "/dev/stderr");
		log_fatalx("worker: refusing to serve mailboxes as root");
	}
	if (server_args_parse(argc, argv, &a, &err) < 0) {
		log_open(ops->name, "/dev/stderr");
		log_fatalx("worker: %s", err);
	}
	dir = a.config_dir != NULL ? a.config_dir : config_default_dir();
	if (config_load(dir, &err) < 0) {
		log_open(ops->name, "/dev/stderr");
		log_fatalx("%s", err);
	}
	for (size_t i = 0; a.overrides != NULL && a.overrides[i] != NULL; i++) {
		char *name = xstrdup(a.overrides[i]);
		char *eq = strchr(name, '=');
		*eq = '\0';
		(void)config_set(name, eq + 1);
		free(name);
	}
	progname = xasprintf("%s/%s", config_get("syslog_name"), ops->name);
	/* The broker opened maillog_file for us as fd 2 (see broker.c). */
	log_open(progname, *config_get("maillog_file") != '\0' ? "/dev/stderr" : "");
	free(progname);
	if (a.verbose > 0)
		log_set_verbose(a.verbose);
	server_args_free(&a);

	signal(SIGPIPE, SIG_IGN);
	wops = ops;
	wloop = loop_new();
	if (ops->worker_init != NULL)
		ops->worker_init(wloop);
	if (loop_signal(wloop, SIGTERM, sigterm_cb, NULL) < 0)
		log_fatal("SIGTERM handler");
	(void)net_set_cloexec(CTL_FD, 1);
	if (loop_fd_set(wloop, CTL_FD, LOOP_READ, ctl_cb, NULL) < 0)
		log_fatal("control socket");
	if (loop_run(wloop) < 0)
		log_fatal("event loop");
	return 0;
}

int
postlogin_main(int argc, char **argv, const struct postlogin_ops *ops)
{
	if (argc > 1 && strcmp(argv[1], "-W") == 0)
		return worker_main(argc - 1, argv + 1, ops);
	return broker_main(argc, argv, ops);
}
