/*
 * log - one logging facility, in the line format Postfix tools read.
 *
 * Every line is "progname[pid]: [tier: ]text". To syslog the "progname[pid]"
 * part is the ident (we format the pid ourselves and re-open after a fork so
 * it stays right: a pthread_atfork() child handler marks the pid stale, so
 * a line costs no getpid()); to a file each line gets a syslog-like
 * "Mon DD HH:MM:SS host " prefix and goes out with a single write(), so
 * lines from concurrent processes appending to one file do not interleave.
 *
 * Invariants: logging never allocates (it may be called from the
 * out-of-memory path) and preserves errno for the caller. CR and LF inside
 * the text become spaces so that data from a client can never forge a
 * second log line. A line is bounded (LOG_LINE_MAX) and silently truncated.
 * Trusts: the format strings (compile-time constants), not the arguments.
 * Limits: not thread-safe (no threads in Postern); a failed write is
 * dropped, as there is nowhere else to report it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_LINE_MAX 8192

static char progname[128] = "postern";
static char ident[160];                 /* "progname[pid]", openlog keeps it */
static char hostname[256] = "localhost";
static int log_fd = 2;                  /* -1 = syslog */
static pid_t ident_pid;
static int ident_stale = 1;             /* set in a fork() child */
static int verbose;
static void (*fatal_hook)(void);

static void
after_fork(void)
{
	ident_stale = 1;
}

static int atfork;                      /* after_fork() registered */

static void
set_ident(void)
{
	if (!atfork && pthread_atfork(NULL, NULL, after_fork) == 0)
		atfork = 1;
	ident_pid = getpid();
	/* Without the handler every line asks again. */
	ident_stale = !atfork;
	snprintf(ident, sizeof(ident), "%s[%ld]", progname, (long)ident_pid);
}

/* A forked child: its own pid in the ident (and syslog's copy of it). */
static void
refresh_ident(void)
{
	if (!ident_stale)
		return;
	if (ident_pid == getpid()) {
		ident_stale = !atfork;
		return;
	}
	set_ident();
	if (log_fd < 0) {
		closelog();
		openlog(ident, LOG_NDELAY, LOG_MAIL);
	}
}

pid_t
log_pid(void)
{
	refresh_ident();
	return ident_pid;
}

void
log_open(const char *name, const char *logfile)
{
	char *dot;
	int fd;

	if (name != NULL && *name != '\0')
		snprintf(progname, sizeof(progname), "%s", name);
	if (gethostname(hostname, sizeof(hostname)) < 0)
		snprintf(hostname, sizeof(hostname), "localhost");
	hostname[sizeof(hostname) - 1] = '\0';
	if ((dot = strchr(hostname, '.')) != NULL && dot != hostname)
		*dot = '\0';
	/* Load the zone now: after a chroot /etc/localtime is out of reach. */
	tzset();

	if (log_fd > 2)
		close(log_fd);
	if (log_fd < 0)
		closelog();
	set_ident();
	if (logfile == NULL || *logfile == '\0') {
		log_fd = -1;
		openlog(ident, LOG_NDELAY, LOG_MAIL);
		return;
	}
	if (strcmp(logfile, "-") == 0 || strcmp(logfile, "/dev/stderr") == 0) {
		log_fd = 2;
		return;
	}
	fd = open(logfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0) {
		log_fd = 2;
		log_warn("cannot open log file %s, logging to stderr", logfile);
		return;
	}
	log_fd = fd;
}

const char *
log_progname(void)
{
	return progname;
}

void
log_set_verbose(int level)
{
	verbose = level;
}

int
log_verbose(void)
{
	return verbose;
}

void
log_set_fatal_hook(void (*hook)(void))
{
	fatal_hook = hook;
}

/* Append to line[*len] without overflowing; silently truncates. */
static void
line_add(char *line, size_t *len, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (*len >= cap)
		return;
	if (n > cap - *len)
		n = cap - *len;
	memcpy(line + *len, s, n);
	*len += n;
}

static void vlog(int prio, const char *tier, int errnum, const char *fmt, va_list ap)
    PRINTF_LIKE(4, 0);

static void
vlog(int prio, const char *tier, int errnum, const char *fmt, va_list ap)
{
	char text[LOG_LINE_MAX];
	char line[LOG_LINE_MAX + 512];
	char stamp[32];
	size_t tlen = 0, len = 0, i;
	struct tm tm;
	time_t now;
	int n;

	if (tier != NULL)
		line_add(text, &tlen, sizeof(text) - 1, tier);
	n = vsnprintf(text + tlen, sizeof(text) - tlen, fmt, ap);
	if (n > 0)
		tlen += (size_t)n < sizeof(text) - tlen ? (size_t)n : sizeof(text) - tlen - 1;
	text[tlen] = '\0';
	if (errnum >= 0) {
		line_add(text, &tlen, sizeof(text) - 1, ": ");
		line_add(text, &tlen, sizeof(text) - 1, strerror(errnum));
		text[tlen] = '\0';
	}
	for (i = 0; i < tlen; i++)
		if (text[i] == '\r' || text[i] == '\n')
			text[i] = ' ';

	refresh_ident();
	if (log_fd < 0) {
		syslog(prio, "%s", text);
		return;
	}
	now = time(NULL);
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
	line_add(line, &len, sizeof(line) - 1, stamp);
	line_add(line, &len, sizeof(line) - 1, " ");
	line_add(line, &len, sizeof(line) - 1, hostname);
	line_add(line, &len, sizeof(line) - 1, " ");
	line_add(line, &len, sizeof(line) - 1, ident);
	line_add(line, &len, sizeof(line) - 1, ": ");
	line_add(line, &len, sizeof(line) - 1, text);
	line[len++] = '\n';
	/* One write() per line: short writes on a regular O_APPEND file do
	 * not happen in practice, and retrying would split the line. */
	while (write(log_fd, line, len) < 0 && errno == EINTR)
		;
}

#define LOG_BODY(prio, tier, use_errno)				\
	do {							\
		int saved_errno = errno;			\
		va_list ap;					\
		va_start(ap, fmt);				\
		vlog(prio, tier, use_errno ? saved_errno : -1, fmt, ap); \
		va_end(ap);					\
		errno = saved_errno;				\
	} while (0)

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, NULL, 0);
}

void
log_debug(const char *fmt, ...)
{
	if (verbose <= 0)
		return;
	LOG_BODY(LOG_DEBUG, NULL, 0);
}

void
log_warn(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, "warning: ", 1);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, "warning: ", 0);
}

void
log_error(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, "error: ", 1);
}

void
log_errorx(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, "error: ", 0);
}

static NORETURN void
fatal_exit(void)
{
	if (fatal_hook != NULL)
		fatal_hook();
	exit(1);
}

void
log_fatal(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, "fatal: ", 1);
	fatal_exit();
}

void
log_fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, "fatal: ", 0);
	fatal_exit();
}

void
log_panic(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, "panic: ", 0);
	abort();
}
