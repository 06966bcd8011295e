/*
 * spawn - Postfix's spawn(8): runs an external command for each
 * connection to its socket, with the command's standard input, output
 * and error on the connection. Administrators use it for policy servers
 * that talk on stdin/stdout, such as postfix-policyd-spf-python:
 *
 *   master.conf:  policyd-spf unix - n n - 0 spawn
 *                   user=nobody argv=/usr/bin/policyd-spf
 *   postern.conf: smtpd_recipient_restrictions = ...,
 *                   check_policy_service unix:private/policyd-spf
 *
 * One connection per process at a time (SERVER_SINGLE); master starts
 * more processes as connections come (maxproc 0: no limit). The command
 * runs until the client (smtpd) closes the connection, or until the time
 * limit kills it: <service>_time_limit (policyd-spf_time_limit), else
 * policy_time_limit (1000s), as Postfix names them.
 *
 * Privileges: spawn itself keeps root (master.conf unpriv n) only to
 * start each command as user= (permanently, priv_drop, before exec);
 * user= may never be root (uid 0): refused at start. spawn reads no byte
 * of the connection itself. In an unprivileged instance (master not
 * root) the command runs as the instance's user, and that is logged.
 * The command gets a clean environment (PATH, and TZ/LANG if set), its
 * own process group (killed as a whole at the time limit), no descriptor
 * but 0, 1 and 2, and an empty signal mask.
 * Sockets: its master.conf socket (private/NAME), nothing else.
 * Trusts: the master.conf line (user=, argv=: administrator input); argv=
 *   must be an absolute path. Nothing from the client.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/priv.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/server.h"

static struct {
	char *user;
	uid_t uid;
	gid_t gid;
	int become;            /* root: become user= in each child */
	char **argv;           /* the command and its arguments */
	long long time_limit;  /* seconds; 0 none */
} sp;

static void
spawn_pre_init(void)
{
	char *const *ops = server_operands();
	size_t i;

	for (i = 0; ops[i] != NULL; i++) {
		if (strncmp(ops[i], "user=", 5) == 0) {
			free(sp.user);
			sp.user = xstrdup(ops[i] + 5);
		} else if (strncmp(ops[i], "argv=", 5) == 0) {
			strv_push(&sp.argv, ops[i] + 5);
			for (i++; ops[i] != NULL; i++)
				strv_push(&sp.argv, ops[i]);
			break;
		} else {
			log_fatalx("service %s: unexpected \"%s\" (want user=NAME "
			    "argv=/path/to/command [args...])", server_service_name(), ops[i]);
		}
	}
	if (sp.user == NULL || sp.user[0] == '\0')
		log_fatalx("service %s: missing user= (the user the command runs as)",
		    server_service_name());
	if (sp.argv == NULL || sp.argv[0] == NULL || sp.argv[0][0] != '/')
		log_fatalx("service %s: want argv=/absolute/path/to/command",
		    server_service_name());
	if (priv_user(sp.user, &sp.uid, &sp.gid) < 0)
		log_fatalx("service %s: user=%s: no such user", server_service_name(),
		    sp.user);
	if (sp.uid == 0)
		log_fatalx("service %s: user=%s has uid 0: spawn never runs a "
		    "command as root", server_service_name(), sp.user);
	if (priv_is_root()) {
		if (!server_privileged())
			log_fatalx("service %s: spawn must start as root to become "
			    "user=%s (master.conf unpriv column: n)",
			    server_service_name(), sp.user);
		sp.become = 1;
	} else if (getuid() != sp.uid) {
		log_info("privilege separation is off: service %s runs %s as uid "
		    "%ld, not as user=%s", server_service_name(), sp.argv[0],
		    (long)getuid(), sp.user);
	}
	/* Postfix: the service's own NAME_time_limit, else the default */
	char *name = xasprintf("%s_time_limit", server_service_name());
	sp.time_limit = config_time_or(name, config_time("policy_time_limit"), 's');
	free(name);
}

static void
spawn_post_init(struct loop *l)
{
	(void)l;
	/* DESIGN.md invariant 5: spawn reads no client byte, but it still
	 * hands a network connection only to an unprivileged command; an
	 * inet service is refused by the skeleton when we are root. */
	log_debug("service %s: %s as %s, time limit %llds", server_service_name(),
	    sp.argv[0], sp.user, sp.time_limit);
}

static NORETURN void
child(int fd)
{
	char *env[4];
	size_t ne = 0;
	const char *tz = getenv("TZ"), *lang = getenv("LANG");

	loop_sigmask_restore();
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	(void)setpgid(0, 0);
	if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(71);
	for (int d = 3; d < 1024; d++)
		(void)close(d);
	if (sp.become && priv_drop(sp.uid, sp.gid, NULL) < 0)
		_exit(71);
	if (getuid() == 0 || geteuid() == 0)
		_exit(71);   /* never a command as root */
	env[ne++] = xstrdup("PATH=/usr/local/bin:/usr/bin:/bin");
	if (tz != NULL)
		env[ne++] = xasprintf("TZ=%s", tz);
	if (lang != NULL)
		env[ne++] = xasprintf("LANG=%s", lang);
	env[ne] = NULL;
	execve(sp.argv[0], sp.argv, env);
	_exit(71);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait for pid, at most until deadline (0: none). 1 exited (*status),
 * 0 the time is up. A pidfd when the kernel has one, else short naps. */
static int
wait_until(pid_t pid, double deadline, int *status)
{
#ifdef SYS_pidfd_open
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	int pfd = -1;
#endif

	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid || (w < 0 && errno == ECHILD)) {
			if (pfd >= 0)
				close(pfd);
			return 1;
		}
		double left = deadline > 0 ? deadline - now_s() : 3600;
		if (left <= 0) {
			if (pfd >= 0)
				close(pfd);
			return 0;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };
			(void)poll(&p, 1, left > 3600 ? 3600 * 1000 : (int)(left * 1000) + 1);
		} else {
			struct timespec ts = { 0, 100 * 1000 * 1000 };
			(void)nanosleep(&ts, NULL);
		}
	}
}

static void
spawn_serve(int fd)
{
	double deadline = sp.time_limit > 0 ? now_s() + (double)sp.time_limit : 0;
	int status = 0;
	pid_t pid = fork();

	if (pid < 0) {
		log_warn("service %s: fork", server_service_name());
		return;
	}
	if (pid == 0)
		child(fd);
	(void)setpgid(pid, pid);   /* also here: no race with the kill below */
	if (!wait_until(pid, deadline, &status)) {
		(void)kill(-pid, SIGKILL);
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		log_warnx("service %s: command %s killed after the time limit "
		    "(%llds)", server_service_name(), sp.argv[0], sp.time_limit);
		return;
	}
	if (WIFSIGNALED(status))
		log_warnx("service %s: command %s killed by signal %d",
		    server_service_name(), sp.argv[0], WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warnx("service %s: command %s exit status %d",
		    server_service_name(), sp.argv[0], WEXITSTATUS(status));
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.kind = SERVER_SINGLE,
		.name = "spawn",
		.pre_init = spawn_pre_init,
		.post_init = spawn_post_init,
		.serve = spawn_serve,
		.operands = 1,
	};

	return server_main(argc, argv, &ops);
}
