/*
 * server - the skeleton every daemon runs under master: argument parsing,
 * configuration, privilege drop, accepting on the inherited listening
 * socket, availability reports to master, idle/use limits and the
 * graceful stop on SIGTERM. Also trigger_send(), the one-byte wake-up.
 *
 * Invariants:
 * - fd 3 (status pipe, write end) and fd 4 (listening socket) come from
 *   master; both are made close-on-exec here so nothing a daemon execs
 *   (local's pipe commands) inherits them.
 * - The availability we report is a hint for master's spawn policy, sent
 *   only on transitions; a record is smaller than PIPE_BUF so the writes
 *   of many children sharing the pipe never interleave.
 * - Once draining, the listening socket is closed and never reopened;
 *   the process ends when its last connection is gone.
 *
 * Trusts: master for fds 3 and 4 and argv; configuration files.
 * - The first accepted connection is reported (taken=1): master throttles
 *   a service only for children that die before that.
 * - A MULTI/TRIGGER child accepts until EAGAIN (or its client limit), so
 *   a burst is not left waiting in the backlog.
 * - Every status record carries the service's process count
 *   (server_ops.process_count), so master learns it from the child's
 *   own configuration, -o overrides included.
 *
 * Limits: master death is noticed by a periodic check (getppid() changed,
 * or the status pipe reports an error because its reader is gone), so it
 * may take up to SERVER_WATCH_MS to notice, unless the service asks first
 * (server_master_gone(), as qmgr does when an agent vanishes). The child
 * then drains as on SIGTERM: it finishes what it holds and exits.
 *
 * Memory: when a MULTI child's last client leaves, the heap's free pages
 * go back to the kernel (malloc_trim(), at most once per SERVER_TRIM_MS):
 * what a burst of sessions freed (spread over the heap, so glibc's own
 * trimming of the top does not reach it) is not carried by a process that
 * then sits idle or holds idle sessions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/net.h"
#include "util/priv.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "mail/server_args.h"

#define SERVER_WATCH_MS 2000          /* master-death check period */

static struct {
	const struct server_ops *ops;
	struct loop *loop;
	const char *service;
	int privileged;
	int inet;                 /* -t inet: the socket faces the network */
	pid_t parent;
	int accepting;            /* fd 4 (and 5) registered for reading */
	int listen_open;          /* fd 4 (and 5) still open */
	int login_fd;             /* SERVER_LOGIN_FD with -l, else -1 */
	char *login_dir;          /* where server_login_socket() looks */
	int draining;             /* SIGTERM seen */
	int exit_requested;       /* server_exit_when_idle() */
	int clients;
	int client_limit;
	int avail_reported;       /* last value sent to master, -1 none */
	int spread;               /* ops->process_count's value, for master */
	int taken_reported;       /* master knows we took work */
	long long max_use;
	long long max_idle;
	long long use_count;
	uint64_t idle_timer;
	uint64_t watch_timer;
	uint64_t trim_timer;
	uint64_t trim_last;       /* loop_now_ms() of the last trim, 0 none */
	char **operands;          /* after the options (server_ops.operands) */
	/* The peer accept4() gave for peer_fd, while ops->conn runs:
	 * server_peer_addr() then needs no getpeername(). */
	int peer_fd;
	socklen_t peer_len;
	struct sockaddr_storage peer;
} srv = { .avail_reported = -1, .login_fd = -1, .peer_fd = -1 };

/*
 * Argument parsing.
 */

static int
opt_value(int argc, char **argv, int *i, const char *arg, const char **val_r)
{
	if (arg[2] != '\0') {
		*val_r = arg + 2;
		return 0;
	}
	if (*i + 1 >= argc || argv[*i + 1] == NULL)
		return -1;
	*val_r = argv[++*i];
	return 0;
}

int
server_args_parse(int argc, char **argv, struct server_args *a, char **err_r)
{
	return server_args_parse_ex(argc, argv, 0, a, err_r);
}

int
server_args_parse_ex(int argc, char **argv, int operands_ok,
    struct server_args *a, char **err_r)
{
	int i;

	memset(a, 0, sizeof(*a));
	*err_r = NULL;
	for (i = 1; i < argc && argv[i] != NULL; i++) {
		const char *arg = argv[i], *val = NULL;

		if (operands_ok && arg[0] != '-') {
			/* the rest is the service's own: "user=x argv=cmd -v" */
			for (; i < argc && argv[i] != NULL; i++)
				strv_push(&a->operands, argv[i]);
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			*err_r = xasprintf("unexpected argument \"%s\"", arg);
			return -1;
		}
		if (strcmp(arg, "--") == 0) {
			if (i + 1 < argc && argv[i + 1] != NULL) {
				*err_r = xasprintf("unexpected argument \"%s\"", argv[i + 1]);
				return -1;
			}
			break;
		}
		switch (arg[1]) {
		case 'p':
		case 'C':
		case 'l':
		case 'v':
			if (arg[2] != '\0') {
				*err_r = xasprintf("bad option \"%s\"", arg);
				return -1;
			}
			if (arg[1] == 'p')
				a->privileged = 1;
			else if (arg[1] == 'C')
				a->chroot_ = 1;
			else if (arg[1] == 'l')
				a->login_listener = 1;
			else
				a->verbose++;
			break;
		case 'c':
		case 'n':
		case 't':
		case 'o':
			if (opt_value(argc, argv, &i, arg, &val) < 0) {
				*err_r = xasprintf("option -%c needs a value", arg[1]);
				return -1;
			}
			if (arg[1] == 'c') {
				a->config_dir = val;
			} else if (arg[1] == 'n') {
				a->service = val;
			} else if (arg[1] == 't') {
				if (strcmp(val, "inet") != 0 && strcmp(val, "unix") != 0) {
					*err_r = xasprintf("bad service type \"%s\"", val);
					return -1;
				}
				a->type = val;
			} else {
				const char *eq = strchr(val, '=');

				if (eq == NULL || eq == val) {
					*err_r = xasprintf("-o needs name=value, not \"%s\"", val);
					return -1;
				}
				strv_push(&a->overrides, val);
			}
			if (val[0] == '\0' && arg[1] != 'o') {
				*err_r = xasprintf("option -%c has an empty value", arg[1]);
				return -1;
			}
			break;
		default:
			*err_r = xasprintf("unknown option \"%s\"", arg);
			return -1;
		}
	}
	return 0;
}

void
server_args_free(struct server_args *a)
{
	strv_free(&a->overrides);
	strv_free(&a->operands);
}

/*
 * Configuration: fall back to the Postfix default when the parameter
 * table lacks a name (config_get() answers NULL).
 */

/*
 * Availability and the exit decision.
 */

static void
send_status(int avail, int taken)
{
	struct server_status st;

	memset(&st, 0, sizeof(st));
	st.pid = log_pid();
	st.avail = avail;
	st.taken = taken;
	st.spread = srv.spread;
	st.single = srv.ops->kind == SERVER_SINGLE;
	if (write_all(SERVER_STATUS_FD, &st, sizeof(st)) < 0) {
		/* Master is gone or confused: finish what we have and leave. */
		log_debug("status report: %s", strerror(errno));
		srv.exit_requested = 1;
		return;
	}
	srv.avail_reported = avail;
	srv.taken_reported |= taken;
}

static void
report_avail(int avail)
{
	if (srv.avail_reported != avail)
		send_status(avail, srv.taken_reported);
}

/* The first connection accepted: from now on a death of this process is
 * a crash while working, which master answers with a plain restart
 * rather than a throttle (that is kept for start-up failures). */
static void
report_taken(void)
{
	if (!srv.taken_reported)
		send_status(srv.avail_reported < 0 ? 1 : srv.avail_reported, 1);
}

/* Nothing left to wait for: no connection, no work of the service's own. */
static int
idle_now(void)
{
	return srv.clients <= 0 && (srv.ops->busy == NULL || !srv.ops->busy());
}

static void
maybe_exit(void)
{
	if ((srv.draining || srv.exit_requested) && idle_now())
		loop_stop(srv.loop);
}

static void accept_cb(struct loop *l, int fd, unsigned events, void *ctx);

static void
set_accepting(int on)
{
	if (!srv.listen_open)
		on = 0;
	if (on == srv.accepting)
		return;
	if (on) {
		if (loop_fd_set(srv.loop, SERVER_LISTEN_FD, LOOP_READ, accept_cb, NULL) < 0 ||
		    (srv.login_fd >= 0 &&
		    loop_fd_set(srv.loop, srv.login_fd, LOOP_READ, accept_cb, NULL) < 0))
			log_fatal("watch listening socket");
	} else {
		loop_fd_del(srv.loop, SERVER_LISTEN_FD);
		if (srv.login_fd >= 0)
			loop_fd_del(srv.loop, srv.login_fd);
	}
	srv.accepting = on;
}

static void
stop_listening(void)
{
	set_accepting(0);
	if (srv.listen_open) {
		close(SERVER_LISTEN_FD);
		if (srv.login_fd >= 0)
			close(srv.login_fd);
		srv.listen_open = 0;
	}
	report_avail(0);
}

static void
idle_cb(struct loop *l, void *ctx)
{
	srv.idle_timer = 0;
	if (srv.clients > 0)
		return;
	log_debug("idle for %llds, exiting", srv.max_idle);
	srv.exit_requested = 1;
	stop_listening();
	maybe_exit();
}

/* (Re)start the idle clock; TRIGGER servers are resident and never idle out. */
static void
idle_arm(void)
{
	if (srv.idle_timer != 0) {
		loop_timer_cancel(srv.loop, srv.idle_timer);
		srv.idle_timer = 0;
	}
	if (srv.ops->kind == SERVER_TRIGGER || srv.max_idle <= 0 || srv.draining)
		return;
	if (srv.clients > 0)
		return;
	srv.idle_timer = loop_timer_add(srv.loop, (uint64_t)srv.max_idle * 1000,
	    idle_cb, NULL);
}

#define SERVER_TRIM_MS 1000

static void
trim_cb(struct loop *l, void *ctx)
{
	(void)l;
	(void)ctx;
	srv.trim_timer = 0;
	srv.trim_last = loop_now_ms();
#ifdef __GLIBC__
	(void)malloc_trim(0);
#endif
}

/* The last client left: trim from the loop (not inside the owner's
 * disconnect), and not more often than every SERVER_TRIM_MS, since one
 * client after another makes this transition at every session. */
static void
trim_arm(void)
{
	uint64_t now = loop_now_ms(), at = srv.trim_last + SERVER_TRIM_MS;

	if (srv.trim_timer != 0)
		return;
	srv.trim_timer = loop_timer_add(srv.loop,
	    srv.trim_last != 0 && at > now ? at - now : 0, trim_cb, NULL);
}

static void
begin_drain(struct loop *l)
{
	if (srv.draining)
		return;
	srv.draining = 1;
	if (srv.idle_timer != 0) {
		loop_timer_cancel(l, srv.idle_timer);
		srv.idle_timer = 0;
	}
	stop_listening();
	if (srv.ops->drain != NULL)
		srv.ops->drain(l);
	maybe_exit();
}

static void
sigterm_cb(struct loop *l, void *ctx)
{
	log_debug("SIGTERM: finishing work in progress");
	begin_drain(l);
}

int
server_master_gone(void)
{
	struct pollfd pfd = { .fd = SERVER_STATUS_FD, .events = 0 };
	int gone = 0;

	if (srv.loop == NULL)
		return 0;
	if (getppid() != srv.parent)
		gone = 1;
	/* A pipe's write end reports POLLERR once no reader is left. */
	else if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLERR | POLLNVAL)))
		gone = 1;
	if (gone && !srv.draining) {
		log_warnx("master process went away, exiting when idle");
		begin_drain(srv.loop);
	}
	return gone;
}

static void
watch_cb(struct loop *l, void *ctx)
{
	srv.watch_timer = 0;
	(void)server_master_gone();
	srv.watch_timer = loop_timer_add(l, SERVER_WATCH_MS, watch_cb, NULL);
}

/*
 * Accepting.
 */

int
server_use_another(void)
{
	if (srv.draining || srv.exit_requested)
		return 0;
	/* serve_single() counts the last request of the connection. */
	if (srv.max_use > 0 && srv.use_count + 2 > srv.max_use)
		return 0;
	srv.use_count++;
	return 1;
}

static void
serve_single(struct loop *l, int fd)
{
	report_avail(0);
	srv.ops->serve(fd);
	close(fd);
	srv.use_count++;
	if (srv.max_use > 0 && srv.use_count >= srv.max_use) {
		log_debug("served %lld clients, exiting", srv.use_count);
		srv.exit_requested = 1;
		stop_listening();
		return;
	}
	if (!srv.draining && !srv.exit_requested)
		report_avail(1);
}

/* One connection accepted, or 0 when none is waiting (or it failed and
 * was logged): the caller stops. */
static int
accept_one(struct loop *l, int lfd)
{
	int flags = SOCK_CLOEXEC, fd;

	if (srv.ops->kind != SERVER_SINGLE)
		flags |= SOCK_NONBLOCK;
	srv.peer_len = sizeof(srv.peer);
	fd = accept4(lfd, (struct sockaddr *)&srv.peer, &srv.peer_len, flags);
	if (fd < 0) {
		switch (errno) {
		case EAGAIN:
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			return 0;   /* another process won, or the peer gave up */
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			log_warn("accept");
			return 0;
		default:
			log_fatal("accept");
		}
	}
	report_taken();
	if (srv.idle_timer != 0) {
		loop_timer_cancel(l, srv.idle_timer);
		srv.idle_timer = 0;
	}
	if (srv.ops->kind == SERVER_SINGLE) {
		serve_single(l, fd);
		idle_arm();
		maybe_exit();
		return 0;   /* one at a time: back to the loop */
	}
	srv.clients++;
	if (srv.ops->kind == SERVER_MULTI && srv.client_limit > 0 &&
	    srv.clients >= srv.client_limit) {
		set_accepting(0);
		report_avail(0);
	}
	srv.peer_fd = fd;
	srv.ops->conn(l, fd);
	srv.peer_fd = -1;
	return 1;
}

int
server_peer_addr(int fd, char *addr, size_t addrlen, int *port)
{
	if (fd >= 0 && fd == srv.peer_fd && srv.peer_len > 0 &&
	    srv.peer_len <= sizeof(srv.peer))
		return net_sockaddr_text(&srv.peer, srv.peer_len, addr, addrlen, port);
	return net_peer_addr(fd, addr, addrlen, port);
}

/* Accept until the queue is empty (EAGAIN) or the client limit is
 * reached: one connection per wake-up falls behind a burst, whose
 * clients would then sit in the backlog without a greeting. */
static void
accept_cb(struct loop *l, int lfd, unsigned events, void *ctx)
{
	while (srv.accepting && accept_one(l, lfd))
		;
}

void
server_disconnect(struct loop *l, int fd)
{
	loop_fd_del(l, fd);
	close(fd);
	if (srv.clients > 0)
		srv.clients--;
	if (srv.clients == 0 && srv.ops->kind == SERVER_MULTI)
		trim_arm();
	if (!srv.draining && !srv.exit_requested && srv.listen_open) {
		if (srv.ops->kind != SERVER_MULTI || srv.client_limit <= 0 ||
		    srv.clients < srv.client_limit) {
			set_accepting(1);
			report_avail(1);
		}
		idle_arm();
	}
	maybe_exit();
}

char *
server_login_socket(const char *service)
{
	if (srv.login_dir == NULL)
		srv.login_dir = xasprintf("%s/%s", config_str("queue_directory"),
		    QUEUE_LOGIN);
	return xasprintf("%s%s%s", srv.login_dir,
	    strcmp(srv.login_dir, "/") == 0 ? "" : "/", service);
}

char *const *
server_operands(void)
{
	static char *none[] = { NULL };

	return srv.operands != NULL ? srv.operands : none;
}

const char *
server_service_name(void)
{
	return srv.service != NULL ? srv.service : "";
}

int
server_privileged(void)
{
	return srv.privileged;
}

int
server_clients(void)
{
	return srv.clients;
}

void
server_exit_when_idle(void)
{
	srv.exit_requested = 1;
	if (srv.loop == NULL)
		return;
	stop_listening();
	maybe_exit();
}

/*
 * Start-up.
 */

static void
check_inherited_fds(int login_listener)
{
	struct stat st;

	if (login_listener) {
		if (fstat(SERVER_LOGIN_FD, &st) < 0 || !S_ISSOCK(st.st_mode))
			log_fatalx("-l: fd %d is not a listening socket",
			    SERVER_LOGIN_FD);
		(void)net_set_cloexec(SERVER_LOGIN_FD, 1);
		if (net_set_nonblock(SERVER_LOGIN_FD, 1) < 0)
			log_fatal("login listening socket: non-blocking mode");
		srv.login_fd = SERVER_LOGIN_FD;
	}

	if (fcntl(SERVER_STATUS_FD, F_GETFD) < 0)
		log_fatalx("fd %d (status pipe) is not open: run this program from master",
		    SERVER_STATUS_FD);
	if (fstat(SERVER_LISTEN_FD, &st) < 0 || !S_ISSOCK(st.st_mode))
		log_fatalx("fd %d is not a listening socket: run this program from master",
		    SERVER_LISTEN_FD);
	(void)net_set_cloexec(SERVER_STATUS_FD, 1);
	(void)net_set_cloexec(SERVER_LISTEN_FD, 1);
	/* Shared with master and siblings: it must stay non-blocking for all. */
	if (net_set_nonblock(SERVER_LISTEN_FD, 1) < 0)
		log_fatal("listening socket: non-blocking mode");
}

/*
 * Become mail_owner (a pre-login service: login_user), chrooted with -C
 * to queue_directory (a pre-login service: its login directory).
 */
static void
drop_privileges(int chroot_)
{
	const char *param = srv.ops->login ? "login_user" : "mail_owner";
	const char *owner = config_str(param);
	const char *qdir = config_str("queue_directory");
	char *jail;
	uid_t uid;
	gid_t gid;

	if (!priv_is_root()) {
		if (chroot_)
			log_debug("not root: -C ignored");
		return;
	}
	if (srv.privileged) {
		if (chroot_)
			log_warnx("privileged service %s: -C ignored", srv.service);
		return;
	}
	if (priv_user(owner, &uid, &gid) < 0)
		log_fatalx("%s \"%s\" is not a known user; fix: useradd --system "
		    "--user-group --no-create-home --shell /usr/sbin/nologin %s",
		    param, owner, owner);
	if (uid == 0)
		log_fatalx("%s \"%s\" must not be root", param, owner);
	jail = srv.ops->login ? xasprintf("%s/%s", qdir, QUEUE_LOGIN) : xstrdup(qdir);
	if (priv_drop(uid, gid, chroot_ ? jail : NULL) < 0)
		log_fatal("cannot become %s%s%s", owner, chroot_ ? " in chroot " : "",
		    chroot_ ? jail : "");
	free(jail);
	if (chroot_) {
		/* Inside the jail the queue (or the login directory) is the
		 * root; paths built from queue_directory must keep working. */
		if (srv.ops->login)
			srv.login_dir = xstrdup("/");
		if (config_set("queue_directory", "/") < 0)
			log_warnx("cannot reset queue_directory inside the chroot");
	}
}

int
server_main(int argc, char **argv, const struct server_ops *ops)
{
	struct server_args a;
	char *err = NULL, *progname;
	const char *dir, *early_log = NULL, *logfile;
	size_t i;

	srv.ops = ops;
	if ((ops->kind == SERVER_SINGLE && ops->serve == NULL) ||
	    (ops->kind != SERVER_SINGLE && ops->conn == NULL))
		log_panic("server_main: %s has no handler for its server kind", ops->name);
	if (server_args_parse_ex(argc, argv, ops->operands, &a, &err) < 0) {
		log_open(ops->name, "/dev/stderr");
		log_fatalx("usage: %s -c DIR -n SERVICE -t inet|unix [-p] [-C] [-v] "
		    "[-o name=value]...: %s", argv[0] != NULL ? argv[0] : ops->name, err);
	}
	for (i = 0; a.overrides != NULL && a.overrides[i] != NULL; i++)
		if (strncmp(a.overrides[i], "maillog_file=", 13) == 0)
			early_log = a.overrides[i] + 13;
	progname = xasprintf("postern/%s", ops->name);
	log_open(progname, early_log);
	free(progname);
	if (a.verbose > 0)
		log_set_verbose(a.verbose);

	dir = a.config_dir;
	if (dir == NULL)
		dir = getenv("MAIL_CONFIG");
	if (dir == NULL || *dir == '\0')
		dir = config_default_dir();
	if (config_load(dir, &err) < 0)
		log_fatalx("%s", err);
	for (i = 0; a.overrides != NULL && a.overrides[i] != NULL; i++) {
		char *name = xstrdup(a.overrides[i]);
		char *eq = strchr(name, '=');

		*eq = '\0';
		if (config_set(name, eq + 1) < 0)
			log_fatalx("-o %s: cannot set parameter", a.overrides[i]);
		free(name);
	}
	if (config_check(&err) < 0)
		log_fatalx("%s", err);

	logfile = config_get("maillog_file");
	progname = xasprintf("%s/%s", config_str("syslog_name"), ops->name);
	log_open(progname, logfile);
	free(progname);

	srv.service = a.service != NULL ? xstrdup(a.service) : xstrdup(ops->name);
	srv.parent = getppid();
	srv.privileged = a.privileged && priv_is_root();
	srv.inet = a.type != NULL && strcmp(a.type, "inet") == 0;
	srv.max_use = config_int_range("max_use", 0, LLONG_MAX);
	srv.max_idle = config_time("max_idle");
	srv.client_limit = (int)config_int_range("smtpd_client_limit", 0, INT_MAX);
	if (ops->process_count != NULL && ops->kind == SERVER_MULTI)
		srv.spread = (int)config_int_range(ops->process_count, 0, 1024);

	check_inherited_fds(a.login_listener);
	srv.listen_open = 1;
	signal(SIGPIPE, SIG_IGN);

	srv.loop = loop_new();
	if (loop_signal(srv.loop, SIGTERM, sigterm_cb, NULL) < 0)
		log_fatal("SIGTERM handler");

	srv.operands = a.operands;
	a.operands = NULL;
	if (ops->pre_init != NULL)
		ops->pre_init();
	drop_privileges(a.chroot_);
	{
		const char *qdir = config_str("queue_directory");

		if (chdir(qdir) < 0)
			log_fatal("chdir %s", qdir);
	}
	server_args_free(&a);

	if (ops->post_init != NULL)
		ops->post_init(srv.loop);
	/* DESIGN.md invariant 5: whatever master.conf says (unpriv=n), a
	 * process that accepts network connections never does so as root. */
	if (srv.inet && (geteuid() == 0 || getuid() == 0))
		log_fatalx("service %s: refusing to accept network connections as "
		    "root (master.conf unpriv=n on an inet service)", srv.service);

	/* Master counts a new child as available until it says otherwise. */
	if (srv.avail_reported < 0)
		srv.avail_reported = 1;
	if (!srv.exit_requested)
		set_accepting(1);
	idle_arm();
	srv.watch_timer = loop_timer_add(srv.loop, SERVER_WATCH_MS, watch_cb, NULL);
	log_debug("service %s: ready", srv.service);

	maybe_exit();
	if (!(srv.exit_requested && idle_now()) && loop_run(srv.loop) < 0)
		log_fatal("event loop");
	return 0;
}

/* A connection to private/<service> (or public/ when master.conf says
 * private=n), non-blocking; connect has a timeout of a second. */
static int
trigger_connect(const char *service)
{
	const char *qdir = config_str("queue_directory");
	static const char *const dirs[2] = { "private", "public" };
	static int public_first;
	char *path;
	int fd;

	if (strchr(service, '/') != NULL || strcmp(service, "..") == 0) {
		log_debug("trigger %s: bad service name", service);
		errno = EINVAL;
		return -1;
	}
	/* Start where the last trigger found it: a failed connect costs
	 * three syscalls. */
	path = xasprintf("%s/%s/%s", qdir, dirs[public_first], service);
	fd = net_connect_unix_nb(path, 1000);
	if (fd < 0 && errno == ENOENT) {
		free(path);
		path = xasprintf("%s/%s/%s", qdir, dirs[!public_first], service);
		fd = net_connect_unix_nb(path, 1000);
		if (fd >= 0)
			public_first = !public_first;
	}
	if (fd < 0)
		log_debug("trigger %s: connect %s: %s", service, path, strerror(errno));
	free(path);
	return fd;
}

/* The bytes, with a wait of at most a second if they do not fit at once
 * (a few bytes into an empty socket buffer always do). */
static int
trigger_write(int fd, const char *service, const char *bytes)
{
	struct pollfd pfd;
	const char *p = bytes;
	size_t left = strlen(bytes);
	uint64_t deadline = 0, now;
	ssize_t w;

	while (left > 0) {
		w = send(fd, p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			left -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			now = loop_now_ms();
			if (deadline == 0)
				deadline = now + 1000;
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (now < deadline && poll(&pfd, 1, (int)(deadline - now)) >= 0)
				continue;
			errno = ETIMEDOUT;
		}
		log_debug("trigger %s: write: %s", service, strerror(errno));
		return -1;
	}
	return 0;
}

/* trigger_send: a short connection, the bytes, close. */
int
trigger_send(const char *service, const char *bytes)
{
	int fd = trigger_connect(service);
	int rc;

	if (fd < 0)
		return -1;
	rc = trigger_write(fd, service, bytes);
	close(fd);
	return rc;
}

/*
 * trigger_keep: the same bytes over one connection kept open, for a
 * process that triggers per message (smtpd once per committed batch,
 * pickup once per submission):
 * one send instead of socket, connect, send and close here, and accept,
 * read and close in the server. The first bytes on a new connection are
 * "K" (keep me), which the server honours up to its own bound. A send
 * that finds the server gone (restarted, say) connects again once. A
 * full socket buffer means the server has not read the bytes before
 * these yet: they are wake-ups, so the pending ones do, and this one
 * is dropped rather than waited for - and the next send starts with
 * "I", since what the dropped bytes named (qmgr's "N<id>") is then
 * left to a scan.
 */
int
trigger_keep(const char *service, const char *bytes)
{
	static int fd = -1, dropped;
	static char *for_service;
	char *buf = dropped ? xasprintf("I%s", bytes) : NULL;
	const char *out = buf != NULL ? buf : bytes;
	size_t len = strlen(out);
	ssize_t w;
	char *kb;
	int rc;

	if (fd >= 0 && for_service != NULL && strcmp(for_service, service) == 0) {
		w = send(fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w == (ssize_t)len ||
		    (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
			dropped = w < 0;
			free(buf);
			return 0;
		}
		log_debug("trigger %s: kept connection: %s", service,
		    w < 0 ? strerror(errno) : "short write");
	}
	/* No kept connection, or it failed: connect again. A name that a
	 * short write cut off makes the server scan (qmgr's trig_run()). */
	if (fd >= 0)
		close(fd);
	free(for_service);
	for_service = NULL;
	if ((fd = trigger_connect(service)) < 0) {
		dropped = 1;
		free(buf);
		return -1;
	}
	kb = xasprintf("K%s", out);
	free(buf);
	rc = trigger_write(fd, service, kb);
	free(kb);
	if (rc < 0) {
		close(fd);
		fd = -1;
		dropped = 1;
		return -1;
	}
	dropped = 0;
	for_service = xstrdup(service);
	return 0;
}
