/*
 * service - master's service table: one listening socket and one status
 * pipe per master.conf line, the children serving it, and the policy that
 * decides when to fork another (Postfix master_avail/master_spawn style).
 *
 * Spawn policy: a service with wakeup > 0 is resident - one child is kept
 * running and master connects to its socket every `wakeup` seconds to send
 * "W". Any other service gets children on demand: while it has no
 * available child and is under maxproc, master watches its listening
 * socket itself, and a pending connection forks one more child. A new
 * child counts as available until it reports busy, so one connection
 * never forks many. A MULTI service whose children report a process
 * count (smtpd: smtpd_process_count) is watched the same way while fewer
 * than that many run, even with one available: a waiting connection then
 * forks another, so the load can use more than one CPU. A SINGLE service
 * (one connection per process; its children say so in their status)
 * gets one child per connection waiting beyond the available children
 * at once, up to maxproc, instead of one per status round trip.
 *
 * Invariants:
 * - Children of one service share its listening fd and its status pipe;
 *   master keeps both ends of the pipe, so the read end never sees EOF.
 * - A retired child (old generation after reload, or a removed service)
 *   never counts as available, but still counts against maxproc, so a
 *   resident service with maxproc 1 (qmgr) never runs twice at once.
 * - Only a child that dies abnormally before it took any work (it never
 *   sent a status record with taken=1: a broken binary, configuration
 *   or environment) throttles the service: no spawn for a back-off that
 *   starts at 1 s and doubles to 60 s while failures repeat. A child
 *   that dies while working is logged and simply replaced, so a crash
 *   or kill of a busy smtpd never takes its port down (Postfix does the
 *   same with its use count).
 *
 * Trusts: master.conf (already parsed), status records only as far as
 *   the pid they name is one of the service's children.
 * Limits: inet listeners must use brackets for IPv6 ("[::1]:25").
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/net.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/mastercf.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "master.h"

#define BACKOFF_MAX_S 60
#define HEALTHY_MS (2 * BACKOFF_MAX_S * 1000)   /* failure-free period that resets back-off */
#define MIN_LIFETIME_MS 1000                     /* a resident child dying sooner is a failure */

struct child {
	pid_t pid;
	int avail;
	int retired;
	int taken;                    /* reported that it accepted work */
	uint64_t started_ms;
	struct child *next;
};

struct service {
	struct master_service cf;     /* deep copy */
	char *label;                  /* "smtp/inet" for logs */
	char *exec_path;
	char *sock_path;              /* unix: the socket file */
	int listen_fd;
	char *login_path;             /* login_sockets: the same in login/ */
	int login_fd;                 /* its listener, fd 5 in children (-l) */
	int status_rd;
	int status_wr;
	struct child *children;
	int total;                    /* all children, retired included */
	int active;                   /* not retired */
	int avail;                    /* available, not retired */
	int spread;                   /* the children's process count (status) */
	int single;                   /* children say they are SERVER_SINGLE */
	int watching;
	int throttled;
	uint64_t throttle_timer;
	int backoff_s;
	uint64_t last_fail_ms;
	uint64_t wakeup_timer;
	int dead;                     /* removed: waiting for children */
	struct service *next;
};

static struct loop *loop;
static struct service *services;

static void svc_update(struct service *s);

void
services_init(struct loop *l)
{
	loop = l;
}

/*
 * Table entries.
 */

static void
cf_copy(struct master_service *dst, const struct master_service *src)
{
	size_t i;

	*dst = *src;
	dst->name = xstrdup(src->name);
	dst->type = xstrdup(src->type);
	dst->command = xstrdup(src->command);
	dst->args = NULL;
	for (i = 0; src->args != NULL && src->args[i] != NULL; i++)
		strv_push(&dst->args, src->args[i]);
}

static int
strv_equal(char *const *a, char *const *b)
{
	size_t i;

	if (a == NULL || b == NULL)
		return (a == NULL || a[0] == NULL) && (b == NULL || b[0] == NULL);
	for (i = 0; a[i] != NULL && b[i] != NULL; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return a[i] == NULL && b[i] == NULL;
}

static char *
exec_path_for(const char *command)
{
	if (command[0] == '/')
		return xstrdup(command);
	return xasprintf("%s/%s", mconf.daemon_dir, command);
}

static char *
sock_path_for(const struct master_service *cf)
{
	if (strcmp(cf->type, "unix") != 0)
		return NULL;
	return xasprintf("%s/%s/%s", mconf.queue_dir,
	    cf->private_ ? QUEUE_PRIVATE : QUEUE_PUBLIC, cf->name);
}

/* A unix service named in login_sockets also listens in the login
 * directory, for the chrooted pre-login processes (server.h). */
static char *
login_path_for(const struct master_service *cf)
{
	if (strcmp(cf->type, "unix") != 0 || !cf->private_ ||
	    !strv_contains_ci(mconf.login_sockets, cf->name))
		return NULL;
	return xasprintf("%s/%s/%s", mconf.queue_dir, QUEUE_LOGIN, cf->name);
}

static struct service *
svc_new(const struct master_service *cf)
{
	struct service *s = xcalloc(1, sizeof(*s));

	cf_copy(&s->cf, cf);
	s->label = xasprintf("%s/%s", cf->name, cf->type);
	s->exec_path = exec_path_for(cf->command);
	s->sock_path = sock_path_for(cf);
	s->listen_fd = -1;
	s->login_path = login_path_for(cf);
	s->login_fd = -1;
	s->status_rd = -1;
	s->status_wr = -1;
	return s;
}

static void
svc_free(struct service *s)
{
	struct child *c, *next;

	for (c = s->children; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	if (s->listen_fd >= 0) {
		loop_fd_del(loop, s->listen_fd);
		close(s->listen_fd);
	}
	if (s->login_fd >= 0) {
		loop_fd_del(loop, s->login_fd);
		close(s->login_fd);
	}
	if (s->status_rd >= 0) {
		loop_fd_del(loop, s->status_rd);
		close(s->status_rd);
	}
	if (s->status_wr >= 0)
		close(s->status_wr);
	if (s->throttle_timer != 0)
		loop_timer_cancel(loop, s->throttle_timer);
	if (s->wakeup_timer != 0)
		loop_timer_cancel(loop, s->wakeup_timer);
	free(s->cf.name);
	free(s->cf.type);
	free(s->cf.command);
	strv_free(&s->cf.args);
	free(s->label);
	free(s->exec_path);
	free(s->sock_path);
	free(s->login_path);
	free(s);
}

/* Same program, same socket, same options: a reload can keep it running. */
static int
svc_same(const struct service *s, const struct master_service *cf)
{
	char *path = exec_path_for(cf->command);
	char *sock = sock_path_for(cf);
	char *lsock = login_path_for(cf);
	int same;

	same = strcmp(s->cf.type, cf->type) == 0 &&
	    s->cf.private_ == cf->private_ &&
	    s->cf.unpriv == cf->unpriv &&
	    s->cf.chroot_ == cf->chroot_ &&
	    strcmp(s->exec_path, path) == 0 &&
	    ((s->sock_path == NULL && sock == NULL) ||
	     (s->sock_path != NULL && sock != NULL && strcmp(s->sock_path, sock) == 0)) &&
	    strv_equal(s->cf.args, cf->args) &&
	    (s->login_path == NULL) == (lsock == NULL);
	free(path);
	free(sock);
	free(lsock);
	return same;
}

/*
 * Listening sockets.
 */

char *
service_inet_addr(const char *name, char **err_r)
{
	const char *colon, *port;
	char *host = NULL, *out;
	char *end;
	long num;

	*err_r = NULL;
	if (name[0] == '[') {
		const char *rb = strchr(name, ']');

		if (rb == NULL || rb[1] != ':' || rb[2] == '\0') {
			*err_r = xasprintf("bad inet listener \"%s\": want [address]:port", name);
			return NULL;
		}
		host = xstrndup(name, (size_t)(rb - name) + 1);
		port = rb + 2;
	} else if ((colon = strrchr(name, ':')) != NULL) {
		if (strchr(name, ':') != colon) {
			*err_r = xasprintf("bad inet listener \"%s\": put IPv6 addresses in brackets", name);
			return NULL;
		}
		if (colon[1] == '\0') {
			*err_r = xasprintf("bad inet listener \"%s\": missing port", name);
			return NULL;
		}
		if (colon != name && !(colon - name == 1 && name[0] == '*'))
			host = xstrndup(name, (size_t)(colon - name));
		port = colon + 1;
	} else {
		/* No address: inet_interfaces says (Postfix's rule; "*:port"
		 * is every address whatever it says). */
		const char *addr;
		int family;

		port = name;
		if (net_interfaces(config_str("inet_interfaces"), &addr, &family) < 0) {
			*err_r = xasprintf("inet listener \"%s\": inet_interfaces = %s: want "
			    "all, loopback-only or one address", name,
			    config_str("inet_interfaces"));
			return NULL;
		}
		if (addr != NULL)
			host = family == AF_INET6 ? xasprintf("[%s]", addr) : xstrdup(addr);
	}
	if (*port == '\0') {
		free(host);
		*err_r = xasprintf("bad inet listener \"%s\": missing port", name);
		return NULL;
	}
	errno = 0;
	num = strtol(port, &end, 10);
	if (*end != '\0' || port[0] == '-' || port[0] == '+') {
		struct servent *se = getservbyname(port, "tcp");

		if (se == NULL) {
			*err_r = xasprintf("inet listener \"%s\": unknown service \"%s\"", name, port);
			free(host);
			return NULL;
		}
		num = ntohs((unsigned short)se->s_port);
	} else if (errno != 0 || num < 1 || num > 65535) {
		*err_r = xasprintf("inet listener \"%s\": bad port \"%s\"", name, port);
		free(host);
		return NULL;
	}
	if (host != NULL)
		out = xasprintf("%s:%ld", host, num);
	else
		out = xasprintf("%ld", num);
	free(host);
	return out;
}

static int
svc_listen(struct service *s, char **err_r)
{
	*err_r = NULL;
	if (strcmp(s->cf.type, "inet") == 0) {
		char *addr = service_inet_addr(s->cf.name, err_r);
		char *err = NULL;

		if (addr == NULL)
			return -1;
		s->listen_fd = net_listen_inet(addr, net_listen_backlog(), &err);
		if (s->listen_fd < 0) {
			if (err != NULL)
				*err_r = xasprintf("service %s: %s", s->label, err);
			else
				*err_r = xasprintf("service %s: listen on %s: %s", s->label,
				    addr, strerror(errno));
			free(err);
			free(addr);
			return -1;
		}
		free(addr);
	} else if (strcmp(s->cf.type, "unix") == 0) {
		char *err = NULL;
		int mode = s->cf.private_ ? 0600 : 0666;

		s->listen_fd = net_listen_unix(s->sock_path, mode, net_listen_backlog(), &err);
		if (s->listen_fd < 0) {
			if (err != NULL)
				*err_r = xasprintf("service %s: %s", s->label, err);
			else
				*err_r = xasprintf("service %s: listen on %s: %s", s->label,
				    s->sock_path, strerror(errno));
			free(err);
			return -1;
		}
		/* Children of private services run as mail_owner (qmgr connects
		 * to local's socket), so the socket belongs to mail_owner. */
		if (mconf.root && chown(s->sock_path, mconf.owner_uid, mconf.owner_gid) < 0) {
			*err_r = xasprintf("service %s: chown %s: %s", s->label,
			    s->sock_path, strerror(errno));
			close(s->listen_fd);
			s->listen_fd = -1;
			return -1;
		}
	} else {
		*err_r = xasprintf("service %s: unknown type", s->label);
		return -1;
	}
	(void)net_set_cloexec(s->listen_fd, 1);
	(void)net_set_nonblock(s->listen_fd, 1);
	return 0;
}

/* The second listener of a login_sockets service: root, group
 * login_user, 0660 (the login directory above it is 0750 root:that group). */
static int
svc_listen_login(struct service *s, char **err_r)
{
	char *err = NULL;
	int mode = mconf.root ? 0660 : 0600;

	s->login_fd = net_listen_unix(s->login_path, mode, net_listen_backlog(), &err);
	if (s->login_fd < 0) {
		*err_r = err != NULL ? xasprintf("service %s: %s", s->label, err) :
		    xasprintf("service %s: listen on %s: %s", s->label, s->login_path,
		    strerror(errno));
		free(err);
		return -1;
	}
	if (mconf.root && chown(s->login_path, 0, mconf.login_gid) < 0) {
		*err_r = xasprintf("service %s: chown %s: %s", s->label, s->login_path,
		    strerror(errno));
		close(s->login_fd);
		s->login_fd = -1;
		return -1;
	}
	(void)net_set_cloexec(s->login_fd, 1);
	(void)net_set_nonblock(s->login_fd, 1);
	return 0;
}

/*
 * Children.
 */

static struct child *
child_find(struct service *s, pid_t pid)
{
	struct child *c;

	for (c = s->children; c != NULL; c = c->next)
		if (c->pid == pid)
			return c;
	return NULL;
}

static void
child_retire(struct service *s, struct child *c)
{
	if (c->retired)
		return;
	if (c->avail)
		s->avail--;
	c->avail = 0;
	c->retired = 1;
	s->active--;
}

static void
svc_retire_all(struct service *s, int sig)
{
	struct child *c;

	for (c = s->children; c != NULL; c = c->next) {
		child_retire(s, c);
		if (sig != 0 && kill(c->pid, sig) < 0 && errno != ESRCH)
			log_warn("kill %s pid %d", s->exec_path, (int)c->pid);
	}
}

static const char *const env_keep[] = {
	"PATH", "TZ", "LANG", "LC_ALL", "MAIL_CONFIG",
	"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
};

static char **
child_env(void)
{
	char **env = NULL;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(env_keep); i++) {
		const char *v = getenv(env_keep[i]);
		char *kv;

		if (v == NULL)
			continue;
		kv = xasprintf("%s=%s", env_keep[i], v);
		strv_push(&env, kv);
		free(kv);
	}
	if (getenv("PATH") == NULL)
		strv_push(&env, "PATH=/usr/bin:/bin:/usr/sbin:/sbin");
	return env;
}

static char **
child_argv(const struct service *s)
{
	char **argv = NULL;
	size_t i;
	int v;

	strv_push(&argv, s->exec_path);
	strv_push(&argv, "-c");
	strv_push(&argv, mconf.config_dir);
	strv_push(&argv, "-n");
	strv_push(&argv, s->cf.name);
	strv_push(&argv, "-t");
	strv_push(&argv, s->cf.type);
	if (!s->cf.unpriv)
		strv_push(&argv, "-p");
	if (s->cf.chroot_)
		strv_push(&argv, "-C");
	if (s->login_fd >= 0)
		strv_push(&argv, "-l");
	for (v = 0; v < mconf.verbose; v++)
		strv_push(&argv, "-v");
	/* In the foreground without maillog_file everything goes to stderr,
	 * children too (containers usually have no syslog). master.conf -o
	 * arguments come later and win. */
	if (mconf.foreground && mconf.maillog_file[0] == '\0') {
		strv_push(&argv, "-o");
		strv_push(&argv, "maillog_file=/dev/stderr");
	}
	for (i = 0; s->cf.args != NULL && s->cf.args[i] != NULL; i++)
		strv_push(&argv, s->cf.args[i]);
	return argv;
}

/* In the child after fork: fds 3/4, nothing else, default signals, exec. */
static NORETURN void
child_exec(const struct service *s, char **argv, char **env)
{
	sigset_t none;
	int sfd, lfd, gfd, last, sig;

	sigemptyset(&none);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	/* Move out of the way first: any fd may already be 3, 4 or 5. */
	sfd = fcntl(s->status_wr, F_DUPFD, 10);
	lfd = fcntl(s->listen_fd, F_DUPFD, 10);
	gfd = s->login_fd >= 0 ? fcntl(s->login_fd, F_DUPFD, 10) : -1;
	if (sfd < 0 || lfd < 0 || dup2(sfd, SERVER_STATUS_FD) < 0 ||
	    dup2(lfd, SERVER_LISTEN_FD) < 0 || (s->login_fd >= 0 &&
	    (gfd < 0 || dup2(gfd, SERVER_LOGIN_FD) < 0))) {
		log_warn("%s: setting up descriptors", s->exec_path);
		_exit(1);
	}
	last = s->login_fd >= 0 ? SERVER_LOGIN_FD : SERVER_LISTEN_FD;
	if (close_range((unsigned)last + 1, ~0U, 0) < 0) {
		int fd;

		for (fd = last + 1; fd < 1024; fd++)
			(void)close(fd);
	}
	execve(argv[0], argv, env);
	{
		/* close_range took the log's descriptor with it: open the log
		 * again so the administrator learns why the service never ran. */
		char progname[200];
		const char *file = mconf.maillog_file;
		int e = errno;

		snprintf(progname, sizeof(progname), "%s", log_progname());
		if (file[0] == '\0' && mconf.foreground)
			file = "/dev/stderr";
		log_open(progname, file);
		errno = e;
		log_warn("service %s: cannot exec %s", s->label, argv[0]);
	}
	_exit(1);
}

static void svc_throttle(struct service *s, const char *why);

static void
svc_spawn(struct service *s)
{
	char **argv = child_argv(s), **env = child_env();
	struct child *c;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		log_warn("fork for service %s", s->label);
		strv_free(&argv);
		strv_free(&env);
		svc_throttle(s, "fork failed");
		return;
	}
	if (pid == 0)
		child_exec(s, argv, env);
	strv_free(&argv);
	strv_free(&env);
	c = xcalloc(1, sizeof(*c));
	c->pid = pid;
	c->avail = 1;
	c->started_ms = loop_now_ms();
	c->next = s->children;
	s->children = c;
	s->total++;
	s->active++;
	s->avail++;
	log_debug("service %s: started %s pid %d", s->label, s->exec_path, (int)pid);
}

/*
 * Throttling and wake-ups.
 */

static void
throttle_end(struct loop *l, void *ctx)
{
	struct service *s = ctx;

	s->throttle_timer = 0;
	s->throttled = 0;
	svc_update(s);
}

static void
svc_throttle(struct service *s, const char *why)
{
	uint64_t now = loop_now_ms();

	if (s->dead || master_stopping())
		return;
	/* Back to one child per round trip until one takes work again, so a
	 * service that broke at start is not forked once per waiting
	 * connection. */
	s->single = 0;
	/* The children of one ramp that fail together are one failure: the
	 * backoff doubles once per throttle, not once per child. */
	if (s->throttled)
		return;
	if (s->last_fail_ms == 0 || now - s->last_fail_ms > HEALTHY_MS)
		s->backoff_s = 1;
	else if (s->backoff_s < BACKOFF_MAX_S)
		s->backoff_s = s->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : s->backoff_s * 2;
	s->last_fail_ms = now;
	s->throttled = 1;
	log_warnx("service %s: %s -- throttling for %d s", s->label, why, s->backoff_s);
	s->throttle_timer = loop_timer_add(loop, (uint64_t)s->backoff_s * 1000,
	    throttle_end, s);
	svc_update(s);
}

/* Like trigger_send(), but never blocks: a service whose backlog is full
 * is busy anyway, and the next wake-up comes soon. */
static void
wakeup_cb(struct loop *l, void *ctx)
{
	struct service *s = ctx;
	struct sockaddr_un sun;
	int fd;

	s->wakeup_timer = 0;
	if (s->dead || master_stopping())
		return;
	if (s->sock_path != NULL && strlen(s->sock_path) < sizeof(sun.sun_path)) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, s->sock_path, strlen(s->sock_path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 &&
			    write(fd, "W", 1) != 1)
				log_debug("wakeup %s: %s", s->label, strerror(errno));
			close(fd);
		}
	}
	s->wakeup_timer = loop_timer_add(loop, (uint64_t)s->cf.wakeup * 1000, wakeup_cb, s);
}

static void
svc_arm_wakeup(struct service *s)
{
	if (s->wakeup_timer != 0) {
		loop_timer_cancel(loop, s->wakeup_timer);
		s->wakeup_timer = 0;
	}
	if (s->cf.wakeup <= 0 || s->dead)
		return;
	if (s->sock_path == NULL) {
		log_warnx("service %s: wakeup applies to unix services only", s->label);
		return;
	}
	s->wakeup_timer = loop_timer_add(loop, (uint64_t)s->cf.wakeup * 1000, wakeup_cb, s);
}

/*
 * Event handlers and the policy.
 */

static int
svc_under_limit(const struct service *s)
{
	return s->cf.maxproc <= 0 || s->total < s->cf.maxproc;
}

/* Should a waiting connection get one more child? When none is
 * available, or (MULTI with a process count) fewer than that run: one
 * event loop is one CPU, so a second process takes connections while
 * the first is busy with its sessions. */
static int
svc_wants_child(const struct service *s)
{
	return (s->avail == 0 || s->active < s->spread) && svc_under_limit(s);
}

/* A SINGLE service serves one connection per process: every connection
 * waiting beyond the children that are available (idle, or started and
 * not yet accepting) gets its own child now, up to maxproc, rather than
 * one child per status round trip (fork, exec, start-up, accept, status
 * record), which made the last of a burst wait for all the others'
 * start-ups. */
static void
svc_ramp(struct service *s)
{
	int want;

	if (!s->single || s->listen_fd < 0 || s->dead || s->throttled ||
	    master_stopping() || !svc_under_limit(s))
		return;
	want = net_listen_pending(s->listen_fd) - s->avail;
	if (want > 0)
		log_debug("service %s: %d connection(s) waiting beyond the %d "
		    "available child(ren)", s->label, want, s->avail);
	while (want-- > 0 && svc_under_limit(s) && !s->throttled)
		svc_spawn(s);
}

static void
listen_cb(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct service *s = ctx;

	if (!s->dead && !s->throttled && !master_stopping() && svc_wants_child(s)) {
		svc_spawn(s);
		svc_ramp(s);
	}
	svc_update(s);
}

static void
svc_watch(struct service *s, int on)
{
	if (s->listen_fd < 0)
		on = 0;
	if (on == s->watching)
		return;
	if (on) {
		if (loop_fd_set(loop, s->listen_fd, LOOP_READ, listen_cb, s) < 0 ||
		    (s->login_fd >= 0 &&
		    loop_fd_set(loop, s->login_fd, LOOP_READ, listen_cb, s) < 0)) {
			log_warn("service %s: watch listener", s->label);
			loop_fd_del(loop, s->listen_fd);
			return;
		}
	} else {
		loop_fd_del(loop, s->listen_fd);
		if (s->login_fd >= 0)
			loop_fd_del(loop, s->login_fd);
	}
	s->watching = on;
}

/* ramp 0: skip svc_ramp() (see status_cb()). */
static void
svc_update_ramp(struct service *s, int ramp)
{
	if (s->dead || master_stopping() || s->listen_fd < 0) {
		svc_watch(s, 0);
		return;
	}
	if (s->throttled) {
		svc_watch(s, 0);
		return;
	}
	if (s->cf.wakeup > 0 && s->active == 0 && svc_under_limit(s))
		svc_spawn(s);
	if (ramp)
		svc_ramp(s);
	svc_watch(s, svc_wants_child(s) && !s->throttled);
}

static void
svc_update(struct service *s)
{
	svc_update_ramp(s, 1);
}

/* Take in every status record waiting in the pipe. Returns 1 when a
 * child took a connection or became unavailable. */
static int
svc_read_status(struct service *s)
{
	struct server_status st[64];
	ssize_t n;
	size_t i;
	int taken = 0;

	for (;;) {
		n = read(s->status_rd, st, sizeof(st));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_warn("service %s: status pipe", s->label);
			break;
		}
		if (n == 0)
			break;
		if ((size_t)n % sizeof(st[0]) != 0)
			log_warnx("service %s: partial status record ignored", s->label);
		for (i = 0; i < (size_t)n / sizeof(st[0]); i++) {
			struct child *c = child_find(s, st[i].pid);
			int avail = st[i].avail != 0;

			if (c == NULL)
				continue;
			if (st[i].taken && !c->taken) {
				c->taken = 1;
				taken = 1;
			}
			if (!c->retired) {
				s->spread = st[i].spread;
				s->single = st[i].single;
			}
			if (c->retired)
				continue;
			if (avail != c->avail) {
				s->avail += avail ? 1 : -1;
				c->avail = avail;
				if (!avail)
					taken = 1;
			}
		}
		if ((size_t)n < sizeof(st))
			break;
	}
	return taken;
}

/* The accept queue is asked about (svc_ramp) only when a child took a
 * connection or became unavailable: a report that only makes children
 * available lowers what is wanted, and connections waiting beyond the
 * available children are then taken by one of those, whose report asks.
 * For local that is one question per delivery instead of two. */
static void
status_cb(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct service *s = ctx;

	svc_update_ramp(s, svc_read_status(s));
}

static int
svc_open(struct service *s, char **err_r)
{
	int p[2];

	if (s->listen_fd < 0 && svc_listen(s, err_r) < 0)
		return -1;
	if (s->login_path != NULL && s->login_fd < 0 && svc_listen_login(s, err_r) < 0)
		return -1;
	if (pipe2(p, O_CLOEXEC) < 0) {
		*err_r = xasprintf("service %s: pipe: %s", s->label, strerror(errno));
		return -1;
	}
	s->status_rd = p[0];
	s->status_wr = p[1];
	(void)net_set_nonblock(s->status_rd, 1);
	if (loop_fd_set(loop, s->status_rd, LOOP_READ, status_cb, s) < 0) {
		*err_r = xasprintf("service %s: watch status pipe: %s", s->label, strerror(errno));
		return -1;
	}
	return 0;
}

static void
svc_link(struct service *s)
{
	struct service **pp = &services;

	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = s;
}

static void
svc_unlink_free(struct service *s)
{
	struct service **pp;

	for (pp = &services; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	svc_free(s);
}

int
services_start(struct master_service *svcs, size_t n, char **err_r)
{
	struct service *s;
	size_t i;

	*err_r = NULL;
	for (i = 0; i < n; i++) {
		s = svc_new(&svcs[i]);
		if (svc_open(s, err_r) < 0) {
			svc_free(s);
			return -1;
		}
		svc_link(s);
	}
	for (s = services; s != NULL; s = s->next) {
		svc_arm_wakeup(s);
		svc_update(s);
	}
	return 0;
}

/* A removed (or replaced) service: no listener, children told to go. */
static void
svc_kill(struct service *s)
{
	s->dead = 1;
	svc_watch(s, 0);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	if (s->sock_path != NULL)
		(void)unlink(s->sock_path);
	if (s->login_fd >= 0) {
		close(s->login_fd);
		s->login_fd = -1;
	}
	if (s->login_path != NULL)
		(void)unlink(s->login_path);
	if (s->wakeup_timer != 0) {
		loop_timer_cancel(loop, s->wakeup_timer);
		s->wakeup_timer = 0;
	}
	if (s->throttle_timer != 0) {
		loop_timer_cancel(loop, s->throttle_timer);
		s->throttle_timer = 0;
	}
	svc_retire_all(s, SIGTERM);
	if (s->total == 0)
		svc_unlink_free(s);
}

void
services_reload(struct master_service *svcs, size_t n)
{
	struct service *s, *next, *added = NULL, **tail = &added, *s2;
	char *err = NULL;
	size_t i;
	char *keep = xcalloc(n + 1, 1);

	/* Match old entries to new ones by name and type. */
	for (s = services; s != NULL; s = next) {
		next = s->next;
		if (s->dead)
			continue;
		for (i = 0; i < n; i++)
			if (!keep[i] && strcmp(s->cf.name, svcs[i].name) == 0 &&
			    strcmp(s->cf.type, svcs[i].type) == 0)
				break;
		if (i < n && svc_same(s, &svcs[i])) {
			keep[i] = 1;
			s->cf.wakeup = svcs[i].wakeup;
			s->cf.maxproc = svcs[i].maxproc;
			s->cf.lineno = svcs[i].lineno;
			svc_retire_all(s, SIGTERM);
			continue;
		}
		if (i == n) {
			log_info("service %s: removed", s->label);
			svc_kill(s);
			continue;
		}
		/* Changed: new children, but the same listener when the address
		 * is the same - old children may still hold it, so a new bind
		 * could fail, and clients would see a refusal meanwhile. */
		log_info("service %s: changed, restarting its processes", s->label);
		keep[i] = 1;
		s2 = svc_new(&svcs[i]);
		if (s->listen_fd >= 0 && ((s->sock_path == NULL && s2->sock_path == NULL) ||
		    (s->sock_path != NULL && s2->sock_path != NULL &&
		     strcmp(s->sock_path, s2->sock_path) == 0))) {
			svc_watch(s, 0);
			s2->listen_fd = s->listen_fd;
			s->listen_fd = -1;
			xfree(&s->sock_path);    /* s2 owns the file now */
			if (s->login_path != NULL && s2->login_path != NULL) {
				s2->login_fd = s->login_fd;
				s->login_fd = -1;
				xfree(&s->login_path);
			}
		}
		svc_kill(s);
		if (svc_open(s2, &err) < 0) {
			log_errorx("%s; service not started", err);
			xfree(&err);
			svc_free(s2);
			continue;
		}
		*tail = s2;
		tail = &s2->next;
	}
	/* Bind new ones only after removals, so a changed one can rebind. */
	for (i = 0; i < n; i++) {
		if (keep[i])
			continue;
		s = svc_new(&svcs[i]);
		if (svc_open(s, &err) < 0) {
			log_errorx("%s; service not started", err);
			xfree(&err);
			svc_free(s);
			continue;
		}
		log_info("service %s: added", s->label);
		*tail = s;
		tail = &s->next;
	}
	free(keep);
	for (s = added; s != NULL; s = next) {
		next = s->next;
		s->next = NULL;
		svc_link(s);
	}
	for (s = services; s != NULL; s = s->next) {
		if (s->dead)
			continue;
		svc_arm_wakeup(s);
		svc_update(s);
	}
}

void
services_stop(void)
{
	struct service *s, *next;

	for (s = services; s != NULL; s = next) {
		next = s->next;
		svc_watch(s, 0);
		if (s->listen_fd >= 0) {
			close(s->listen_fd);
			s->listen_fd = -1;
		}
		if (s->login_fd >= 0) {
			close(s->login_fd);
			s->login_fd = -1;
		}
		if (s->wakeup_timer != 0) {
			loop_timer_cancel(loop, s->wakeup_timer);
			s->wakeup_timer = 0;
		}
		if (s->throttle_timer != 0) {
			loop_timer_cancel(loop, s->throttle_timer);
			s->throttle_timer = 0;
		}
		svc_retire_all(s, SIGTERM);
	}
}

void
services_kill(int sig)
{
	struct service *s;
	struct child *c;

	for (s = services; s != NULL; s = s->next)
		for (c = s->children; c != NULL; c = c->next)
			(void)kill(c->pid, sig);
}

int
services_children(void)
{
	struct service *s;
	int n = 0;

	for (s = services; s != NULL; s = s->next)
		n += s->total;
	return n;
}

static void
child_exited(struct service *s, struct child *c, int status)
{
	uint64_t lived = loop_now_ms() - c->started_ms;
	int abnormal = 0;

	if (WIFSIGNALED(status) && c->retired &&
	    (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGINT)) {
		/* Told to stop before it could set up its handler. */
		log_debug("process %s pid %d killed by signal %d", s->exec_path,
		    (int)c->pid, WTERMSIG(status));
	} else if (WIFSIGNALED(status)) {
		log_warnx("process %s pid %d killed by signal %d", s->exec_path,
		    (int)c->pid, WTERMSIG(status));
		abnormal = 1;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		log_warnx("process %s pid %d exit status %d", s->exec_path,
		    (int)c->pid, WEXITSTATUS(status));
		abnormal = 1;
	} else {
		log_debug("process %s pid %d exited", s->exec_path, (int)c->pid);
	}
	if (!c->retired) {
		if (abnormal && !c->taken)
			svc_throttle(s, "abnormal exit before taking any work");
		else if (abnormal)
			log_info("service %s: process pid %d died while working; "
			    "starting another on demand", s->label, (int)c->pid);
		else if (s->cf.wakeup > 0 && lived < MIN_LIFETIME_MS)
			svc_throttle(s, "resident process exited right after start");
	}
}

void
services_reap(void)
{
	struct service *s;
	struct child **cp, *c;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (s = services; s != NULL; s = s->next) {
			for (cp = &s->children; *cp != NULL; cp = &(*cp)->next)
				if ((*cp)->pid == pid)
					break;
			if (*cp != NULL)
				break;
		}
		if (s == NULL) {
			log_debug("reaped unknown pid %d", (int)pid);
			continue;
		}
		/* What the child said before it died decides whether its
		 * death throttles the service: read it first. */
		if (s->status_rd >= 0)
			svc_read_status(s);
		c = *cp;
		*cp = c->next;
		s->total--;
		if (!c->retired) {
			s->active--;
			if (c->avail)
				s->avail--;
		}
		child_exited(s, c, status);
		free(c);
		if (s->dead && s->total == 0)
			svc_unlink_free(s);
		else
			svc_update(s);
	}
	if (master_stopping() && services_children() == 0)
		master_children_gone();
}
