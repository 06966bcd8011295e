/*
 * command - "|command" destinations and mailbox_command: run
 * /bin/sh -c COMMAND as the delivering user with the message on standard
 * input.
 *
 * Invariants: the child gets a clean environment, its own process group,
 * no descriptors but stdin (the message) and stdout/stderr (a pipe we
 * read, keeping the first 1 KiB for the bounce text), an empty signal
 * mask, and permanently the ids of the delivering user (priv_drop) before
 * exec. We never block on the child: writes and reads are multiplexed
 * with poll() against command_time_limit, after which the whole process
 * group is killed.
 * Exit status mapping (sysexits.h, as Postfix): 0 delivered; EX_TEMPFAIL
 * and EX_OSERR defer (4.3.0); other sysexits and other non-zero statuses
 * bounce; death by a signal defers; the time limit bounces (5.3.0).
 * Trusts: the command text (it comes from postern.conf's mailbox_command,
 * or from an alias, .forward or :include: file that was allowed to name
 * commands).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/priv.h"
#include "util/strv.h"
#include "local.h"

#define OUTPUT_KEEP 1024
#define EX_BASE 64
#define EX_OSERR_ 71
#define EX_TEMPFAIL_ 75

struct cmdio {
	int wfd;            /* child's stdin, -1 once closed */
	int rfd;            /* child's stdout+stderr, -1 at EOF */
	char output[OUTPUT_KEEP + 1];
	size_t outlen;
	double deadline;
	int epipe;          /* the child stopped reading: discard the rest */
	int timed_out;
	int werr;           /* a write error other than EPIPE */
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
read_output(struct cmdio *io)
{
	char tmp[4096];
	ssize_t n;

	while (io->rfd >= 0) {
		n = read(io->rfd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(io->rfd);
			io->rfd = -1;
			return;
		}
		if (io->outlen < OUTPUT_KEEP) {
			size_t k = (size_t)n < OUTPUT_KEEP - io->outlen ?
			    (size_t)n : OUTPUT_KEEP - io->outlen;

			memcpy(io->output + io->outlen, tmp, k);
			io->outlen += k;
		}
	}
}

static int
poll_ms(const struct cmdio *io)
{
	double left = io->deadline - now_s();

	if (left <= 0)
		return 0;
	return left > 1.0 ? 1000 : (int)(left * 1000) + 1;
}

static int
cmd_out(const char *p, size_t n, void *ctx)
{
	struct cmdio *io = ctx;
	struct pollfd pf[2];
	ssize_t w;

	while (n > 0 && !io->epipe) {
		if (now_s() >= io->deadline) {
			io->timed_out = 1;
			errno = ETIMEDOUT;
			return -1;
		}
		pf[0].fd = io->wfd;
		pf[0].events = POLLOUT;
		pf[1].fd = io->rfd;
		pf[1].events = POLLIN;
		pf[0].revents = pf[1].revents = 0;
		if (poll(pf, 2, poll_ms(io)) < 0 && errno != EINTR) {
			io->werr = errno;
			return -1;
		}
		if (pf[1].revents != 0)
			read_output(io);
		if (pf[0].revents == 0)
			continue;
		w = write(io->wfd, p, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno == EPIPE) {
				io->epipe = 1;
				return 0;
			}
			io->werr = errno;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
env_add(char ***envp, const char *name, const char *value)
{
	char *s = xasprintf("%s=%s", name, value != NULL ? value : "");

	strv_push(envp, s);
	free(s);
}

/*
 * If local dies (kill -9), the recipient stays pending and is delivered
 * again by the next attempt; a command left running would deliver it a
 * second time. So the forked child stays behind as a guard: it runs the
 * command as its own child, in the process group setsid() made, passes
 * on its exit status, and kills the whole group when local dies
 * (PR_SET_PDEATHSIG, set after the uid change, which would clear it).
 * Returns only in the process that is to exec the command.
 */
static void
guard(pid_t parent)
{
	sigset_t set, none;
	siginfo_t si;
	pid_t pid;
	int status;

	sigemptyset(&none);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
		_exit(EX_TEMPFAIL_);
	pid = fork();
	if (pid < 0)
		_exit(EX_OSERR_);
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &none, NULL);
		return;
	}
	close(0);
	close(1);
	close(2);
	for (;;) {
		if (sigwaitinfo(&set, &si) < 0)
			continue;
		if (si.si_signo == SIGTERM) {
			kill(-getpgrp(), SIGKILL);
			_exit(EX_TEMPFAIL_);
		}
		if (waitpid(pid, &status, WNOHANG) != pid)
			continue;
		if (WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		/* Die the way the command died, so local reports it alike. */
		signal(WTERMSIG(status), SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		kill(getpid(), WTERMSIG(status));
		_exit(EX_TEMPFAIL_);
	}
}

NORETURN static void
child(const char *cmd, const struct lprivs *p, const char *home, int in, int out,
    char **envp, pid_t parent)
{
	sigset_t none;
	int sig;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	(void)setsid();
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(EX_OSERR_);
	if (close_range(3, ~0U, 0) < 0) {
		long fd, max = sysconf(_SC_OPEN_MAX);

		for (fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			close((int)fd);
	}
	if (lconf.root && priv_drop(p->uid, p->gid, NULL) < 0) {
		dprintf(2, "cannot become uid %ld\n", (long)p->uid);
		_exit(EX_OSERR_);
	}
	if (chdir(home) < 0 && chdir("/") < 0)
		_exit(EX_OSERR_);
	guard(parent);
	execve("/bin/sh", (char *[]){ "sh", "-c", (char *)cmd, NULL }, envp);
	dprintf(2, "cannot execute /bin/sh: %s\n", strerror(errno));
	_exit(EX_OSERR_);
}

/* Printable, single-line command output for logs and bounces. */
static void
clean_output(struct cmdio *io)
{
	size_t i, o = 0;
	int space = 1;

	for (i = 0; i < io->outlen; i++) {
		unsigned char c = (unsigned char)io->output[i];

		if (c < 0x20 || c == 0x7f) {
			if (!space)
				io->output[o++] = ' ';
			space = 1;
			continue;
		}
		io->output[o++] = (char)c;
		space = c == ' ';
	}
	while (o > 0 && io->output[o - 1] == ' ')
		o--;
	io->output[o] = '\0';
}

static const char *
exit_dsn(int code)
{
	static const char *const table[] = {
		"5.3.0", /* 64 EX_USAGE */
		"5.6.0", /* 65 EX_DATAERR */
		"5.3.0", /* 66 EX_NOINPUT */
		"5.1.1", /* 67 EX_NOUSER */
		"5.1.2", /* 68 EX_NOHOST */
		"5.3.0", /* 69 EX_UNAVAILABLE */
		"5.3.0", /* 70 EX_SOFTWARE */
		"4.3.0", /* 71 EX_OSERR */
		"5.3.0", /* 72 EX_OSFILE */
		"5.2.0", /* 73 EX_CANTCREAT */
		"5.3.0", /* 74 EX_IOERR */
		"4.3.0", /* 75 EX_TEMPFAIL */
		"5.5.0", /* 76 EX_PROTOCOL */
		"5.7.0", /* 77 EX_NOPERM */
		"5.3.5", /* 78 EX_CONFIG */
	};

	if (code >= EX_BASE && code < EX_BASE + (int)ARRAY_SIZE(table))
		return table[code - EX_BASE];
	return "5.3.0";
}

void
local_command(struct lrcpt *r, const struct laddr *a, const char *cmd,
    const struct lprivs *p)
{
	struct lproduce pr = { r->msg, a->addr };
	struct cmdio io;
	char **envp = NULL, *user = NULL, *home = NULL, uidbuf[32];
	struct passwd *pw;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, status = 0, prc, pe;
	pid_t pid, w, self;

	/* Sources map root to default_privs; never run a command as root
	 * should one slip through. */
	if (lconf.root && p->uid == 0) {
		lr_fail(r, a->addr, "4.3.0", "refusing to run a command as root: \"%s\"", cmd);
		return;
	}
	/* Alias and include destinations have no user of their own. */
	if (p->user != NULL) {
		user = xstrdup(p->user);
		home = xstrdup(p->home != NULL ? p->home : "/");
	} else if ((pw = getpwuid(p->uid)) != NULL) {
		user = xstrdup(pw->pw_name);
		home = xstrdup(pw->pw_dir != NULL && *pw->pw_dir ? pw->pw_dir : "/");
	} else {
		snprintf(uidbuf, sizeof(uidbuf), "%ld", (long)p->uid);
		user = xstrdup(uidbuf);
		home = xstrdup("/");
	}
	env_add(&envp, "HOME", home);
	env_add(&envp, "USER", user);
	env_add(&envp, "LOGNAME", user);
	env_add(&envp, "SHELL", "/bin/sh");
	env_add(&envp, "PATH", "/usr/bin:/bin");
	env_add(&envp, "SENDER", r->msg->sender);
	env_add(&envp, "RECIPIENT", a->addr);
	env_add(&envp, "LOCAL", a->local);
	env_add(&envp, "DOMAIN", a->domain);
	env_add(&envp, "EXTENSION", a->ext);
	env_add(&envp, "ORIGINAL_RECIPIENT", *r->orig != '\0' ? r->orig : r->addr);

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		lr_fail(r, a->addr, "4.3.0", "cannot create pipe: %s", strerror(errno));
		goto out;
	}
	self = getpid();
	pid = fork();
	if (pid < 0) {
		lr_fail(r, a->addr, "4.3.0", "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child(cmd, p, home, in[0], out[1], envp, self);
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	memset(&io, 0, sizeof(io));
	io.wfd = in[1];
	io.rfd = out[0];
	in[1] = out[0] = -1;
	io.deadline = now_s() + (double)lconf.cmd_limit;
	(void)fcntl(io.wfd, F_SETFL, O_NONBLOCK);
	(void)fcntl(io.rfd, F_SETFL, O_NONBLOCK);

	errno = 0;
	prc = local_produce(cmd_out, &io, &pr);
	pe = errno;
	close(io.wfd);
	io.wfd = -1;

	/* Wait for the exit, reading output meanwhile; a grandchild holding
	 * the pipe open must not keep us here after the child is gone. */
	for (;;) {
		struct pollfd pf = { io.rfd, POLLIN, 0 };

		w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (prc != 0 && !io.timed_out)
			kill(-pid, SIGKILL);       /* no message for it: stop it */
		if (now_s() >= io.deadline) {
			io.timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		if (io.rfd >= 0) {
			if (poll(&pf, 1, poll_ms(&io) < 50 ? poll_ms(&io) : 50) > 0)
				read_output(&io);
		} else {
			usleep(20000);
		}
	}
	read_output(&io);
	if (io.rfd >= 0)
		close(io.rfd);
	clean_output(&io);

	if (io.timed_out) {
		kill(-pid, SIGKILL);
		lr_fail(r, a->addr, "5.3.0", "Command time limit exceeded: \"%s\"%s%s", cmd,
		    io.outlen ? ". Command output: " : "", io.output);
	} else if (prc != 0) {
		lr_fail(r, a->addr, "4.3.0", "cannot deliver to command \"%s\": %s", cmd,
		    io.werr ? strerror(io.werr) : pe ? strerror(pe) : "cannot read message");
	} else if (WIFSIGNALED(status)) {
		lr_fail(r, a->addr, "4.3.0", "Command died with signal %d: \"%s\"%s%s",
		    WTERMSIG(status), cmd, io.outlen ? ". Command output: " : "", io.output);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		lr_ok(r, a->addr, "delivered to command: %s", cmd);
	} else {
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;

		lr_fail(r, a->addr, exit_dsn(code), "Command died with status %d: \"%s\"%s%s",
		    code, cmd, io.outlen ? ". Command output: " : "", io.output);
	}
out:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	strv_free(&envp);
	free(user);
	free(home);
}
