/*
 * master - the Postern supervisor: reads postern.conf and master.conf,
 * prepares the queue directory, binds every listener, and runs the
 * children that serve them (see service.c). It never reads a byte from a
 * client.
 *
 *   master -c DIR [-f] [-v]
 *
 * -f stays in the foreground (systemd Type=notify/simple, containers) and
 * logs to stderr when maillog_file is unset. Without -f it forks, and the
 * parent exits 0 only once the daemon holds the pid file lock and has
 * bound its listeners, or 1 with the reason on stderr.
 *
 * Signals: HUP reloads both files (an invalid configuration is logged and
 * the old one kept); TERM/INT stop the children (SIGKILL after
 * STOP_GRACE_MS) and exit.
 *
 * Invariants: one master per configuration - data_directory/master.pid is
 * locked with fcntl for the life of the process; the pid file is removed
 * only by the process holding the lock.
 *
 * Trusts: the configuration files and directories it is given (root owns
 * them). Limits: queue_directory, data_directory and mail_owner changes
 * need a restart; a reload warns about them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/priv.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/mastercf.h"
#include "mail/queue.h"
#include "master.h"

#define STOP_GRACE_MS 10000   /* SIGTERM to SIGKILL */
#define STOP_GIVEUP_MS 15000  /* exit even if a child cannot be reaped */
#define START_WAIT_MS 60000   /* background start-up must finish by then */

struct master_conf mconf;

static struct loop *loop;
static int ready_fd = -1;      /* background start-up: pipe to the waiting parent */
static int stderr_ok = 1;      /* stderr still reaches whoever started us */
static int log_is_stderr;      /* the log already goes there */
static int pid_fd = -1;
static char *pid_path;
static int stopping;
static int exit_status;
static uint64_t kill_timer;

int
master_stopping(void)
{
	return stopping;
}

/*
 * systemd readiness (sd_notify protocol): one datagram to $NOTIFY_SOCKET;
 * a leading '@' names an abstract socket.
 */
static void
notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t plen;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	plen = strlen(path);
	if (plen >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		log_debug("sd_notify: %s", strerror(errno));
	close(fd);
}

/*
 * Start-up errors: the waiting parent (background) or the terminal
 * (foreground) must see them, not only the log.
 */
static NORETURN PRINTF_LIKE(1, 2) void
startup_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ready_fd >= 0) {
		(void)write_all(ready_fd, "E", 1);
		(void)write_all(ready_fd, msg, strlen(msg));
		close(ready_fd);
		ready_fd = -1;
	} else if (stderr_ok && !log_is_stderr) {
		fprintf(stderr, "postern/master: fatal: %s\n", msg);
	}
	log_fatalx("%s", msg);
}

static void
usage(void)
{
	fprintf(stderr, "usage: master [-c config_dir] [-f] [-v]\n");
	exit(64);
}

/*
 * Configuration snapshot.
 */

static int
strv_equal_list(char *const *a, char *const *b)
{
	size_t i;

	for (i = 0; a != NULL && b != NULL && a[i] != NULL && b[i] != NULL; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return (a == NULL || a[i] == NULL) && (b == NULL || b[i] == NULL);
}

static char *
param_dup(const char *name)
{
	return xstrdup(config_str(name));
}

static void
conf_free(struct master_conf *c)
{
	xfree(&c->config_dir);
	xfree(&c->queue_dir);
	xfree(&c->data_dir);
	xfree(&c->daemon_dir);
	xfree(&c->mail_owner);
	xfree(&c->login_user);
	strv_free(&c->login_sockets);
	xfree(&c->syslog_name);
	xfree(&c->maillog_file);
}

/* Read both files into *c and a service table. 0, or -1 and *err_r. */
static int
conf_read(const char *dir, struct master_conf *c, struct master_service **svcs_r,
    size_t *n_r, char **err_r)
{
	const char *v;
	char *path, *end;
	long n;

	memset(c, 0, sizeof(*c));
	*svcs_r = NULL;
	*n_r = 0;
	if (config_load(dir, err_r) < 0)
		return -1;
	if (config_check(err_r) < 0)
		return -1;
	c->config_dir = xstrdup(dir);
	c->queue_dir = param_dup("queue_directory");
	c->data_dir = param_dup("data_directory");
	c->daemon_dir = param_dup("daemon_directory");
	c->mail_owner = param_dup("mail_owner");
	c->login_user = param_dup("login_user");
	c->login_sockets = strv_split_list(config_str("login_sockets"));
	c->syslog_name = param_dup("syslog_name");
	v = config_get("maillog_file");
	c->maillog_file = xstrdup(v != NULL ? v : "");
	c->default_maxproc = 100;
	v = config_get("default_process_limit");
	if (v != NULL && *v != '\0') {
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || *end != '\0' || n < 0 || n > INT_MAX) {
			*err_r = xasprintf("bad default_process_limit \"%s\"", v);
			conf_free(c);
			return -1;
		}
		c->default_maxproc = (int)n;
	}
	if (c->daemon_dir[0] != '/' || c->queue_dir[0] != '/' || c->data_dir[0] != '/') {
		*err_r = xasprintf("daemon_directory, queue_directory and data_directory "
		    "must be absolute paths");
		conf_free(c);
		return -1;
	}
	path = xasprintf("%s/master.conf", dir);
	if (mastercf_load(path, c->default_maxproc, svcs_r, n_r, err_r) < 0) {
		free(path);
		conf_free(c);
		return -1;
	}
	free(path);
	return 0;
}

static void
log_reopen(void)
{
	char *progname = xasprintf("%s/master", mconf.syslog_name);
	const char *file = mconf.maillog_file;

	if (file[0] == '\0' && mconf.foreground)
		file = "/dev/stderr";
	log_open(progname, file);
	log_is_stderr = strcmp(file, "/dev/stderr") == 0 || strcmp(file, "-") == 0;
	free(progname);
}

/*
 * Background start-up: the parent waits for "R" (ready) or "E<reason>".
 */
static void
daemonize(void)
{
	char buf[1100];
	size_t got = 0;
	ssize_t n;
	int p[2], fd;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		log_fatal("pipe");
	pid = fork();
	if (pid < 0)
		log_fatal("fork");
	if (pid > 0) {
		close(p[1]);
		while (got < sizeof(buf) - 1) {
			struct pollfd pfd = { .fd = p[0], .events = POLLIN };
			int pr = poll(&pfd, 1, START_WAIT_MS);

			if (pr < 0 && errno == EINTR)
				continue;
			if (pr == 0) {
				fprintf(stderr, "postern/master: fatal: the master daemon "
				    "(PID %d) did not finish starting within %d s\n", (int)pid,
				    START_WAIT_MS / 1000);
				_exit(1);
			}
			n = read(p[0], buf + got, sizeof(buf) - 1 - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		buf[got] = '\0';
		if (got > 0 && buf[0] == 'R')
			_exit(0);
		if (got > 1 && buf[0] == 'E')
			fprintf(stderr, "postern/master: fatal: %s\n", buf + 1);
		else
			fprintf(stderr, "postern/master: fatal: the master daemon exited "
			    "during start-up; see the mail log\n");
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	stderr_ok = 0;
	if (setsid() < 0)
		log_fatal("setsid");
	if (chdir("/") < 0)
		log_fatal("chdir /");
	fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		log_fatal("open /dev/null");
	(void)dup2(fd, 0);
	(void)dup2(fd, 1);
	(void)dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/*
 * Directories, user, pid file.
 */

/*
 * The login directory: the pre-login processes' chroot (server.h). It
 * belongs to root, group login_user, mode 0750: the login user may reach
 * the sockets master binds there (login_sockets) and nothing else, and
 * cannot create anything. Without login_user (not created yet) it is
 * made root-only and the login services fail at start with the fix;
 * the rest of the system runs.
 */
static void
prepare_login_dir(void)
{
	char *path = xasprintf("%s/%s", mconf.queue_dir, QUEUE_LOGIN);
	uid_t uid;
	gid_t gid = 0;
	struct stat st;

	mconf.login_ok = 1;
	if (mconf.root) {
		if (priv_user(mconf.login_user, &uid, &gid) < 0 || uid == 0) {
			log_warnx("login_user \"%s\" %s: POP3/IMAP logins will not work; "
			    "fix: useradd --system --user-group --no-create-home --shell "
			    "/usr/sbin/nologin %s", mconf.login_user, uid == 0 ?
			    "is root" : "does not exist", mconf.login_user);
			mconf.login_ok = 0;
			gid = 0;
		}
		mconf.login_gid = gid;
	}
	if (mkdir(path, 0750) < 0 && errno != EEXIST)
		startup_fail("mkdir %s: %s", path, strerror(errno));
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		startup_fail("%s is not a directory", path);
	/* chown before chmod: chown may clear mode bits. */
	if (mconf.root && (st.st_uid != 0 || st.st_gid != gid) &&
	    chown(path, 0, gid) < 0)
		startup_fail("chown %s: %s", path, strerror(errno));
	if (chmod(path, 0750) < 0)
		startup_fail("chmod %s: %s", path, strerror(errno));
	free(path);
}

static void
prepare_dirs(void)
{
	char *err = NULL;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	struct stat st;

	mconf.root = priv_is_root();
	if (mconf.root) {
		if (priv_user(mconf.mail_owner, &mconf.owner_uid, &mconf.owner_gid) < 0)
			startup_fail("mail_owner \"%s\" does not exist; create it with: "
			    "useradd --system --home-dir %s --shell /usr/sbin/nologin %s",
			    mconf.mail_owner, mconf.queue_dir, mconf.mail_owner);
		if (mconf.owner_uid == 0)
			startup_fail("mail_owner \"%s\" must not be root", mconf.mail_owner);
		uid = mconf.owner_uid;
		gid = mconf.owner_gid;
	} else {
		log_warnx("running as uid %d, not root: privilege separation is off",
		    (int)getuid());
	}
	if (mkdir_p(mconf.queue_dir, 0755) < 0)
		startup_fail("create %s: %s", mconf.queue_dir, strerror(errno));
	if (queue_dirs_create(mconf.queue_dir, uid, gid, &err) < 0)
		startup_fail("queue directory %s: %s", mconf.queue_dir,
		    err != NULL ? err : strerror(errno));
	prepare_login_dir();
	if (mkdir_p(mconf.data_dir, 0700) < 0)
		startup_fail("create %s: %s", mconf.data_dir, strerror(errno));
	if (mconf.root) {
		if (lstat(mconf.data_dir, &st) < 0 || !S_ISDIR(st.st_mode))
			startup_fail("data_directory %s is not a directory", mconf.data_dir);
		if ((st.st_uid != uid || st.st_gid != gid) &&
		    chown(mconf.data_dir, uid, gid) < 0)
			startup_fail("chown %s: %s", mconf.data_dir, strerror(errno));
	}
}

static int
pid_open(void)
{
	struct stat st;
	int fd, tries;

	for (tries = 0; tries < 2; tries++) {
		fd = open(pid_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0) {
			if (errno == ELOOP && tries == 0 && unlink(pid_path) == 0)
				continue;
			return -1;
		}
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    st.st_uid == geteuid())
			return fd;
		/* Someone else's file (data_directory belongs to mail_owner):
		 * replace it rather than write through it. */
		close(fd);
		if (unlink(pid_path) < 0)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

static void
pid_lock(void)
{
	struct flock fl;
	char buf[32];
	int len;

	pid_path = xasprintf("%s/master.pid", mconf.data_dir);
	pid_fd = pid_open();
	if (pid_fd < 0)
		startup_fail("open %s: %s", pid_path, strerror(errno));
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(pid_fd, F_SETLK, &fl) < 0) {
		if (errno == EAGAIN || errno == EACCES)
			startup_fail("the Postern mail system is already running");
		startup_fail("lock %s: %s", pid_path, strerror(errno));
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(pid_fd, 0) < 0 || pwrite(pid_fd, buf, (size_t)len, 0) != len)
		startup_fail("write %s: %s", pid_path, strerror(errno));
}

static void
pid_remove(void)
{
	if (pid_fd < 0)
		return;
	(void)unlink(pid_path);
	close(pid_fd);
	pid_fd = -1;
}

/*
 * Signals.
 */

static void
stop_giveup(struct loop *l, void *ctx)
{
	log_warnx("%d processes did not exit; giving up on them", services_children());
	loop_stop(l);
}

static void
stop_kill(struct loop *l, void *ctx)
{
	kill_timer = 0;
	if (services_children() == 0)
		return;
	log_warnx("sending SIGKILL to %d processes that did not stop in time",
	    services_children());
	services_kill(SIGKILL);
	kill_timer = loop_timer_add(l, STOP_GIVEUP_MS - STOP_GRACE_MS, stop_giveup, NULL);
}

void
master_children_gone(void)
{
	if (kill_timer != 0) {
		loop_timer_cancel(loop, kill_timer);
		kill_timer = 0;
	}
	loop_stop(loop);
}

static void
stop_on(int sig)
{
	if (stopping)
		return;
	stopping = 1;
	log_info("terminating on signal %d", sig);
	notify("STOPPING=1");
	services_stop();
	if (services_children() == 0) {
		loop_stop(loop);
		return;
	}
	kill_timer = loop_timer_add(loop, STOP_GRACE_MS, stop_kill, NULL);
}

static void
sigterm_cb(struct loop *l, void *ctx)
{
	stop_on(SIGTERM);
}

static void
sigint_cb(struct loop *l, void *ctx)
{
	stop_on(SIGINT);
}

static void
sigchld_cb(struct loop *l, void *ctx)
{
	services_reap();
}

static void
sighup_cb(struct loop *l, void *ctx)
{
	struct master_conf c;
	struct master_service *svcs;
	size_t n;
	char *err = NULL, msg[64];
	struct timespec ts;

	if (stopping)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	notify(msg);
	if (conf_read(mconf.config_dir, &c, &svcs, &n, &err) < 0) {
		log_errorx("reload failed, keeping the running configuration: %s", err);
		free(err);
		notify("READY=1");
		return;
	}
	if (strcmp(c.queue_dir, mconf.queue_dir) != 0 ||
	    strcmp(c.data_dir, mconf.data_dir) != 0 ||
	    strcmp(c.mail_owner, mconf.mail_owner) != 0 ||
	    strcmp(c.login_user, mconf.login_user) != 0 ||
	    !strv_equal_list(c.login_sockets, mconf.login_sockets))
		log_warnx("queue_directory, data_directory, mail_owner, login_user "
		    "and login_sockets changes take effect only after a restart");
	/* Swap in what may change at run time. */
	free(mconf.daemon_dir);
	mconf.daemon_dir = c.daemon_dir;
	c.daemon_dir = NULL;
	free(mconf.syslog_name);
	mconf.syslog_name = c.syslog_name;
	c.syslog_name = NULL;
	free(mconf.maillog_file);
	mconf.maillog_file = c.maillog_file;
	c.maillog_file = NULL;
	mconf.default_maxproc = c.default_maxproc;
	conf_free(&c);
	log_reopen();

	tickets_start(l);
	services_reload(svcs, n);
	mastercf_free(svcs, n);
	log_info("reload -- version %s, configuration %s", config_get("mail_version"),
	    mconf.config_dir);
	notify("READY=1");
}

/*
 * main
 */

int
main(int argc, char **argv)
{
	struct master_service *svcs;
	size_t nsvcs;
	char *err = NULL, *dir_abs;
	const char *dir = NULL;
	int ch;

	while ((ch = getopt(argc, argv, "c:fv")) != -1) {
		switch (ch) {
		case 'c':
			dir = optarg;
			break;
		case 'f':
			mconf.foreground = 1;
			break;
		case 'v':
			mconf.verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	umask(022);
	log_open("postern/master", mconf.foreground ? "/dev/stderr" : NULL);
	log_is_stderr = mconf.foreground;
	if (mconf.verbose > 0)
		log_set_verbose(mconf.verbose);
	if (dir == NULL)
		dir = getenv("MAIL_CONFIG");
	if (dir == NULL || *dir == '\0')
		dir = config_default_dir();
	/* Children and reloads must find it after chdir("/"). */
	dir_abs = realpath(dir, NULL);
	if (dir_abs == NULL)
		startup_fail("configuration directory %s: %s", dir, strerror(errno));

	{
		int fg = mconf.foreground, verbose = mconf.verbose;

		if (conf_read(dir_abs, &mconf, &svcs, &nsvcs, &err) < 0)
			startup_fail("%s", err);
		mconf.foreground = fg;
		mconf.verbose = verbose;
	}
	free(dir_abs);
	log_reopen();

	if (!mconf.foreground)
		daemonize();
	prepare_dirs();
	pid_lock();

	signal(SIGPIPE, SIG_IGN);
	loop = loop_new();
	if (loop_signal(loop, SIGCHLD, sigchld_cb, NULL) < 0 ||
	    loop_signal(loop, SIGHUP, sighup_cb, NULL) < 0 ||
	    loop_signal(loop, SIGTERM, sigterm_cb, NULL) < 0 ||
	    loop_signal(loop, SIGINT, sigint_cb, NULL) < 0)
		startup_fail("signal set-up: %s", strerror(errno));
	tickets_start(loop);
	services_init(loop);
	if (services_start(svcs, nsvcs, &err) < 0) {
		pid_remove();
		startup_fail("%s", err);
	}
	mastercf_free(svcs, nsvcs);

	log_info("daemon started -- version %s, configuration %s", config_get("mail_version"),
	    mconf.config_dir);
	if (ready_fd >= 0) {
		(void)write_all(ready_fd, "R", 1);
		close(ready_fd);
		ready_fd = -1;
	}
	notify("READY=1");

	if (loop_run(loop) < 0) {
		log_error("event loop");
		exit_status = 1;
	}
	tickets_stop();
	pid_remove();
	loop_free(&loop);
	conf_free(&mconf);
	return exit_status;
}
