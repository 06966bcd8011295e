/* sendmail - the sendmail(1)/mailq(1)/newaliases(1) front end (see sendmail.c). */
#ifndef POSTERN_SENDMAIL_H
#define POSTERN_SENDMAIL_H

#include <stddef.h>
#include "util/buf.h"

/* One message to hand over. */
struct sm_msg {
	const char *sender;      /* -f / MAIL FROM; NULL: pickup decides */
	const char *fullname;    /* -F or the passwd entry; NULL: none */
	char **rcpts;            /* strv */
	int extract;             /* -t */
	const char *notify;      /* -N, "" none */
	const char *ret;         /* -R, NULL none */
	const char *envid;       /* -V, NULL none */
	const char *body;        /* -B, NULL none */
	struct buf content;      /* LF line ends, no NUL bytes */
};

struct sm_result {
	int exit_code;           /* 0 (queued or dropped) or a sysexits code */
	int temp;                /* exit_code is a temporary failure */
	char queue_id[64];       /* "" when it went to maildrop/ */
	char reason[512];        /* for the error line */
};

extern int sm_verbose;
extern const char *sm_qdir;

/* Hand a message over: public/pickup, or maildrop/ when that fails. */
void sm_submit(const struct sm_msg *m, struct sm_result *res);
/* Wake a service through public/ or private/ (best effort). */
void sm_trigger(const char *service, const char *bytes);

/* -bs: an SMTP session on stdin/stdout. Returns the exit code. */
int sm_smtp_session(const char *fullname, const char *body);

/* One-line error "sendmail: ..." on stderr. */
void sm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
