/*
 * log - one logging facility, in the line format Postfix tools read.
 *
 * Lines look like "postern/smtpd[1234]: 4dQz...: client=..." - the caller
 * puts the queue ID first when the line is about a message. Destination is
 * syslog (facility mail) or a file opened O_APPEND (maillog_file, as in
 * Postfix 3.4+); "/dev/stderr" and "-" mean standard error. File lines are
 * prefixed "Mon DD HH:MM:SS host " like syslog's, and written with a single
 * write() so lines from many processes do not interleave.
 *
 * Tiers: info; warn ("warning: "), error ("error: "), fatal ("fatal: ",
 * exit 1), panic ("panic: ", abort for a core). The x-less variants append
 * ": strerror(errno)".
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <sys/types.h>

#include "util/compat.h"

/* progname like "postern/smtpd"; logfile NULL or "" = syslog. */
void log_open(const char *progname, const char *logfile);
const char *log_progname(void);
void log_set_verbose(int level);
/* getpid(), without a system call after the first (kept right across
 * fork()). */
pid_t log_pid(void);
int log_verbose(void);

void log_info(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_debug(const char *fmt, ...) PRINTF_LIKE(1, 2);   /* only when verbose */
void log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_warnx(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_errorx(const char *fmt, ...) PRINTF_LIKE(1, 2);
NORETURN void log_fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);
NORETURN void log_fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2);
NORETURN void log_panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Test hook: instead of exit(1) on fatal, call this (e.g. longjmp). */
void log_set_fatal_hook(void (*hook)(void));

#endif
