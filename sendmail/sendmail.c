/*
 * sendmail - the sendmail(1), mailq(1) and newaliases(1) of Postern: one
 * program that acts by the name it is called under, as the originals do.
 *
 * Runs as whoever calls it, with no special privilege: a message goes to
 * pickup over public/pickup (pickup learns who we are from the kernel),
 * or, when the mail system is down, into maildrop/ for pickup to take at
 * its next start (see handoff.c). All message processing (-t, Bcc, added
 * headers) happens in pickup, the same for both ways; we only check what
 * lets us fail early with a clear error: options, recipient syntax, that
 * -t finds recipients, the size limit, and a readable stdin.
 *
 * Every error is one line on stderr ("sendmail: ...") and a sysexits.h
 * exit code; exit 0 means the message is durably queued or dropped.
 * Trusts: the configuration it is pointed at (-C, $MAIL_CONFIG); it is
 * not set-uid, so pointing it elsewhere gains nothing.
 * Limits: the message is held in memory up to message_size_limit.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/resolve.h"
#include "mail/submit.h"
#include "sendmail.h"

#define READ_CHUNK 65536

int sm_verbose;
const char *sm_qdir;
static const char *progname = "sendmail";

void
sm_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

NORETURN static void
die(int code, const char *fmt, ...) PRINTF_LIKE(2, 3);

NORETURN static void
die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* --- options ----------------------------------------------------------------- */

enum mode { M_DELIVER, M_SMTP, M_QUEUE_LIST, M_NEWALIASES, M_VERIFY, M_FLUSH, M_DAEMON };

struct opts {
	enum mode mode;
	const char *confdir;
	const char *sender;
	const char *fullname;
	int extract;
	int dot_ok;              /* -i/-oi: a lone "." is not the end */
	const char *notify;
	const char *ret;
	const char *envid;
	const char *body;
	char **args;             /* recipients (strv) */
};

/* Options that take a value (attached or the next word). Those we do not
 * use are accepted for compatibility and ignored. */
static const char with_value[] = "ABCFLNORVXbefhopr";
/* Flags without a value. */
static const char flags[] = "GIUimntvx";

static const char *
notify_check(const char *v)
{
	char **parts;
	size_t i;
	int ok = 1;

	if (strcasecmp(v, "never") == 0)
		return "NEVER";
	parts = strv_split(v, ",");
	for (i = 0; parts != NULL && parts[i] != NULL; i++)
		if (strcasecmp(parts[i], "success") != 0 && strcasecmp(parts[i], "failure") != 0
		    && strcasecmp(parts[i], "delay") != 0)
			ok = 0;
	if (i == 0)
		ok = 0;
	strv_free(&parts);
	if (!ok)
		die(EX_USAGE, "bad -N value: %s (use never, or success,failure,delay)", v);
	return v;
}

static void
set_b_mode(struct opts *o, const char *v)
{
	if (strcmp(v, "m") == 0)
		o->mode = M_DELIVER;
	else if (strcmp(v, "s") == 0)
		o->mode = M_SMTP;
	else if (strcmp(v, "p") == 0)
		o->mode = M_QUEUE_LIST;
	else if (strcmp(v, "i") == 0)
		o->mode = M_NEWALIASES;
	else if (strcmp(v, "v") == 0)
		o->mode = M_VERIFY;
	else if (strcmp(v, "d") == 0 || strcmp(v, "D") == 0 || strcmp(v, "l") == 0)
		o->mode = M_DAEMON;
	else
		die(EX_USAGE, "unsupported option -b%s", v);
}

static void
take_value(struct opts *o, char c, const char *v)
{
	switch (c) {
	case 'b':
		set_b_mode(o, v);
		break;
	case 'C':
		o->confdir = v;
		break;
	case 'f':
	case 'r':
		o->sender = v;
		break;
	case 'F':
		o->fullname = v;
		break;
	case 'N':
		o->notify = notify_check(v);
		break;
	case 'R':
		if (strcasecmp(v, "full") != 0 && strcasecmp(v, "hdrs") != 0)
			die(EX_USAGE, "bad -R value: %s (use full or hdrs)", v);
		o->ret = strcasecmp(v, "full") == 0 ? "FULL" : "HDRS";
		break;
	case 'V':
		if (*v == '\0' || strlen(v) > 100)
			die(EX_USAGE, "bad -V value: envelope ID empty or longer than 100");
		for (const char *p = v; *p; p++)
			if ((unsigned char)*p < '!' || (unsigned char)*p > '~')
				die(EX_USAGE, "bad -V value: envelope ID must be printable ASCII");
		o->envid = v;
		break;
	case 'B':
		if (strcasecmp(v, "7bit") != 0 && strcasecmp(v, "8bitmime") != 0)
			die(EX_USAGE, "bad -B value: %s (use 7BIT or 8BITMIME)", v);
		o->body = strcasecmp(v, "7bit") == 0 ? "7BIT" : "8BITMIME";
		break;
	case 'o':
		/* -oi is the only -o that matters; -odb, -odi, -oem... are
		 * accepted as sendmail accepts them. */
		if (strcmp(v, "i") == 0)
			o->dot_ok = 1;
		break;
	default:
		break;   /* -A -L -O -X -e -h -p: accepted, ignored */
	}
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	int i, no_more = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (no_more || a[0] != '-' || a[1] == '\0') {
			strv_push(&o->args, a);
			continue;
		}
		if (strcmp(a, "--") == 0) {
			no_more = 1;
			continue;
		}
		if (a[1] == 'q') {
			/* -q, -qINTERVAL (ignored), -qR site, -qI id, -qS...: flush */
			if ((a[2] == 'R' || a[2] == 'I' || a[2] == 'S') && a[3] == '\0' && i + 1 < argc)
				i++;
			o->mode = M_FLUSH;
			continue;
		}
		for (const char *p = a + 1; *p; p++) {
			char c = *p;

			if (strchr(with_value, c) != NULL) {
				const char *v = p[1] != '\0' ? p + 1 : NULL;
				if (v == NULL) {
					if (i + 1 >= argc)
						die(EX_USAGE, "option -%c requires an argument", c);
					v = argv[++i];
				}
				take_value(o, c, v);
				break;
			}
			if (strchr(flags, c) == NULL)
				die(EX_USAGE, "unknown option -%c", c);
			switch (c) {
			case 'I':
				o->mode = M_NEWALIASES;
				break;
			case 'i':
				o->dot_ok = 1;
				break;
			case 't':
				o->extract = 1;
				break;
			case 'v':
				sm_verbose++;
				break;
			default:
				break;   /* -G -U -m -n -x: accepted, ignored */
			}
		}
	}
}

/* --- reading the message ------------------------------------------------------- */

/*
 * stdin to content: CRLF becomes LF, NUL bytes are dropped (the stream
 * cannot carry them), and unless dot_ok a line that is only "." ends the
 * input, as in sendmail. Exits on a read error or an oversized message;
 * nothing has been handed over at that point.
 */
static void
read_message(int dot_ok, long long limit, struct buf *out)
{
	char in[READ_CHUNK];
	size_t line_start = 0;
	int cr = 0, done = 0;
	ssize_t n;

	while (!done) {
		n = read(STDIN_FILENO, in, sizeof(in));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(EX_IOERR, "error reading the message from standard input: %s",
			    strerror(errno));
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n && !done; i++) {
			char c = in[i];

			if (cr && c != '\n')
				buf_putc(out, '\r');
			cr = 0;
			if (c == '\r') {
				cr = 1;
				continue;
			}
			if (c == '\0')
				continue;
			buf_putc(out, c);
			if (c == '\n') {
				if (!dot_ok && out->len - line_start == 2 && out->data[line_start] == '.') {
					buf_truncate(out, line_start);
					done = 1;
					break;
				}
				line_start = out->len;
			}
		}
		if (limit > 0 && (long long)out->len > limit)
			die(EX_DATAERR, "message file too big (message_size_limit is %lld bytes)", limit);
	}
	if (cr)
		buf_putc(out, '\r');
	/* A last line "." without LF ends the input too. */
	if (!done && !dot_ok && out->len - line_start == 1 && out->data[line_start] == '.')
		buf_truncate(out, line_start);
}

/* --- modes ---------------------------------------------------------------------- */

static const char *
origin(void)
{
	const char *v = config_get("myorigin");

	if (v == NULL || *v == '\0')
		v = config_get("myhostname");
	return v != NULL && *v ? v : "localhost";
}

static char *
default_fullname(const struct passwd *pw)
{
	const char *env = getenv("NAME");

	if (env != NULL && *env != '\0')
		return xstrdup(env);
	if (pw != NULL && pw->pw_gecos != NULL)
		return submit_gecos_name(pw->pw_gecos, pw->pw_name);
	return NULL;
}

static int
do_deliver(struct opts *o)
{
	struct sm_msg m;
	struct sm_result res;
	struct passwd *pw = getpwuid(getuid());
	char *fullname = NULL, *sender = NULL;
	const char *err;
	long long limit = config_int("message_size_limit");

	memset(&m, 0, sizeof(m));
	if (pw == NULL && o->sender == NULL)
		die(EX_USAGE, "unable to find out your login name (uid %ld)", (long)getuid());
	for (size_t i = 0; o->args != NULL && o->args[i] != NULL; i++) {
		char **list = NULL;
		if (submit_addr_list(o->args[i], strlen(o->args[i]), origin(), &list, &err) < 0)
			die(EX_DATAERR, "%s: %s", o->args[i], err);
		strv_free(&list);
		strv_push(&m.rcpts, o->args[i]);
	}
	if (m.rcpts == NULL && !o->extract)
		die(EX_USAGE, "no recipients specified");
	if (o->sender != NULL) {
		if ((sender = submit_addr_normalize(o->sender, origin(), 1)) == NULL)
			die(EX_DATAERR, "bad sender address syntax: %s", o->sender);
		m.sender = sender;
	}
	fullname = o->fullname != NULL ? xstrdup(o->fullname) : default_fullname(pw);
	m.fullname = fullname;
	m.extract = o->extract;
	m.notify = o->notify;
	m.ret = o->ret;
	m.envid = o->envid;
	m.body = o->body;
	buf_init(&m.content, 0);
	read_message(o->dot_ok, limit, &m.content);

	if (o->extract) {
		char **x = NULL, *xerr = NULL;
		size_t hlen = 0;
		long long hl = config_get("header_size_limit") != NULL
		    ? config_int("header_size_limit") : 102400;

		(void)submit_header_extent(m.content.data ? m.content.data : "", m.content.len, 1,
		    hl > 0 ? (size_t)hl : 102400, &hlen);
		if (submit_extract_rcpts(m.content.data ? m.content.data : "", hlen, origin(),
		    &x, &xerr) < 0)
			die(EX_DATAERR, "%s", xerr);
		if (x == NULL && m.rcpts == NULL)
			die(EX_USAGE, "no recipient addresses found in message header");
		strv_free(&x);
	}

	sm_submit(&m, &res);
	if (res.exit_code != 0)
		sm_error("%s%s", res.temp ? "cannot queue the message: " : "", res.reason);
	else if (sm_verbose)
		fprintf(stderr, "%s: %s\n", progname, res.queue_id[0]
		    ? res.queue_id : "queued in maildrop");
	buf_free(&m.content);
	strv_free(&m.rcpts);
	free(fullname);
	free(sender);
	return res.exit_code;
}

/* The postern command next to us (a build tree or the same sbin), or in
 * command_directory. */
static char *
postern_path(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			char *p = xasprintf("%s/postern", self);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	const char *cd = config_get("command_directory");
	return xasprintf("%s/postern", cd != NULL && *cd ? cd : "/usr/sbin");
}

static int
do_queue_list(void)
{
	char *cmd = postern_path();

	fflush(NULL);
	execl(cmd, "postern", "-c", config_dir(), "queue", "list", (char *)NULL);
	die(EX_UNAVAILABLE, "cannot run %s: %s", cmd, strerror(errno));
}

static int
do_newaliases(void)
{
	const char *db = config_get("alias_database");
	char **specs = strv_split_list(db != NULL ? db : "");
	int rc = 0;

	for (size_t i = 0; specs != NULL && specs[i] != NULL; i++) {
		const char *spec = specs[i];
		char *err = NULL;
		struct stat st;

		if (strncmp(spec, "lmdb:", 5) != 0) {
			if (sm_verbose)
				fprintf(stderr, "%s: %s: not a buildable table, skipped\n", progname, spec);
			continue;
		}
		const char *path = spec + 5;
		if (stat(path, &st) < 0) {
			sm_error("%s: %s", path, strerror(errno));
			rc = rc ? rc : (errno == EACCES ? EX_NOPERM : EX_NOINPUT);
			continue;
		}
		if (getuid() != 0 && st.st_uid != getuid()) {
			sm_error("%s: only root or the owner of the file may rebuild it", path);
			rc = rc ? rc : EX_NOPERM;
			continue;
		}
		char *dir = xstrdup(path), *slash = strrchr(dir, '/');
		if (slash != NULL)
			*(slash == dir ? slash + 1 : slash) = '\0';
		if (access(slash != NULL ? dir : ".", W_OK) < 0) {
			sm_error("%s: cannot write in %s: %s", path, slash != NULL ? dir : ".",
			    strerror(errno));
			free(dir);
			rc = rc ? rc : EX_NOPERM;
			continue;
		}
		free(dir);
		int r = map_build(spec, &err);
		if (r < 0) {
			sm_error("%s", err ? err : "cannot build table");
			rc = rc ? rc : (r == -2 ? EX_DATAERR : EX_CANTCREAT);
		}
		free(err);
	}
	strv_free(&specs);
	return rc;
}

static int
do_verify(struct opts *o)
{
	struct resolver *r;
	char *err = NULL;
	int rc = 0;

	if (o->args == NULL)
		die(EX_USAGE, "no recipients specified");
	if ((r = resolver_open(&err)) == NULL)
		die(EX_TEMPFAIL, "%s", err ? err : "cannot open lookup tables");
	for (size_t i = 0; o->args[i] != NULL; i++) {
		char *a = submit_addr_normalize(o->args[i], origin(), 0);
		char **alias = NULL;
		int k;

		if (a == NULL) {
			printf("%s: undeliverable: bad address syntax\n", o->args[i]);
			rc = rc ? rc : EX_DATAERR;
			continue;
		}
		k = resolver_virtual_alias(r, a, &alias);
		if (k < 0) {
			printf("%s: %s\n", a, k == -1 ? "deferred: temporary lookup failure"
			    : "undeliverable: virtual alias loop");
			rc = rc ? rc : (k == -1 ? EX_TEMPFAIL : EX_NOUSER);
		} else if (k == 1) {
			printf("%s: deliverable: alias for", a);
			for (size_t j = 0; alias[j] != NULL; j++)
				printf(" %s", alias[j]);
			printf("\n");
		} else {
			char *local = NULL, *domain = NULL;
			enum rcpt_class cls;

			addr_split(a, &local, &domain);
			if (resolver_class_ex(r, domain, &cls) < 0) {
				printf("%s: deferred: temporary lookup failure\n", a);
				rc = rc ? rc : EX_TEMPFAIL;
			} else if (cls == RCPT_RELAY) {
				printf("%s: deliverable: remote domain, relayed\n", a);
			} else {
				int known = resolver_rcpt_known(r, a);
				if (known > 0) {
					printf("%s: deliverable\n", a);
				} else if (known == 0) {
					printf("%s: undeliverable: unknown user\n", a);
					rc = rc ? rc : EX_NOUSER;
				} else {
					printf("%s: deferred: temporary lookup failure\n", a);
					rc = rc ? rc : EX_TEMPFAIL;
				}
			}
			free(local);
			free(domain);
		}
		strv_free(&alias);
		free(a);
	}
	resolver_close(&r);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o;
	const char *base;
	char *err = NULL;
	int rc = 0;

	base = argv[0] != NULL && (base = strrchr(argv[0], '/')) != NULL ? base + 1
	    : (argv[0] != NULL ? argv[0] : "sendmail");
	memset(&o, 0, sizeof(o));
	o.notify = "";
	if (strcmp(base, "mailq") == 0) {
		progname = "mailq";
		o.mode = M_QUEUE_LIST;
	} else if (strcmp(base, "newaliases") == 0) {
		progname = "newaliases";
		o.mode = M_NEWALIASES;
	}
	signal(SIGPIPE, SIG_IGN);
	log_open("postern/sendmail", "/dev/stderr");
	parse_args(argc, argv, &o);
	if (sm_verbose > 1)
		log_set_verbose(sm_verbose - 1);

	if (o.confdir == NULL)
		o.confdir = getenv("MAIL_CONFIG");
	if (o.confdir == NULL || *o.confdir == '\0')
		o.confdir = config_default_dir();
	if (config_load(o.confdir, &err) < 0 || config_check(&err) < 0)
		die(EX_CONFIG, "%s", err);
	(void)setenv("MAIL_CONFIG", o.confdir, 1);
	sm_qdir = config_get("queue_directory");
	if (sm_qdir == NULL || *sm_qdir == '\0')
		sm_qdir = "/var/spool/postern";

	switch (o.mode) {
	case M_DELIVER:
		rc = do_deliver(&o);
		break;
	case M_SMTP: {
		struct passwd *pw = getpwuid(getuid());
		char *fn = o.fullname != NULL ? xstrdup(o.fullname) : default_fullname(pw);
		rc = sm_smtp_session(fn, o.body);
		free(fn);
		break;
	}
	case M_QUEUE_LIST:
		rc = do_queue_list();
		break;
	case M_NEWALIASES:
		rc = do_newaliases();
		break;
	case M_VERIFY:
		rc = do_verify(&o);
		break;
	case M_FLUSH:
		sm_trigger("qmgr", "F");
		break;
	case M_DAEMON:
		die(EX_USAGE, "use \"postern start\" to start the mail system");
	}
	strv_free(&o.args);
	fflush(stdout);
	if (ferror(stdout))
		die(EX_IOERR, "write error on standard output");
	return rc;
}
