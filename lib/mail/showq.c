/*
 * showq - queue listing shared by the showq daemon and "postern queue
 * list" (which reads the queue itself when the daemon is not reachable).
 *
 * Invariants: only names that are valid queue IDs are opened (so only
 * complete files, see queue.h), with O_NOFOLLOW and a regular-file check;
 * a file that vanishes between readdir and open is skipped silently (qmgr
 * moves files all the time). Only pending recipients are listed, as mailq
 * does. Each summary is bounded (SHOWQ_RCPT_MAX recipients, a byte budget
 * for their strings) so its ipc frame always fits IPC_MAX_DEFAULT.
 *
 * Trusts: queue files as far as queue_read() validates them; defer logs
 * only as lines split by bounce_log_split() (a bad line is ignored).
 *
 * Output formats follow Postfix's showq_compat.c (long queue IDs):
 * "%-17s %8ld %19.19s %s" for the message line, recipients aligned under
 * the sender column, "(reason)" lines ending near column 78 whenever the
 * reason changes, a blank line after each message, and the footer
 * "-- N Kbytes in M Requests." or "Mail queue is empty". Control
 * characters from the envelope are shown as '?' so a listing cannot send
 * escape sequences to a terminal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "mail/bounce.h"
#include "mail/queue.h"
#include "mail/showq.h"

#define DEFER_LOG_MAX (4 * 1024 * 1024)
#define RCPT_BYTES_MAX (256 * 1024)     /* strings of one summary */
#define MAILQ_REASON_END 76             /* "(reason)" right edge, as Postfix */
#define MAILQ_RCPT_INDENT 47            /* 17 + 1 + 8 + 1 + 19 + 1 */

const char *const showq_queues[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, NULL,
};

static void PRINTF_LIKE(2, 3)
set_err(char **err_r, const char *fmt, ...)
{
	struct buf b = BUF_INIT(0);
	va_list ap;

	if (err_r == NULL)
		return;
	va_start(ap, fmt);
	(void)buf_vprintf(&b, fmt, ap);
	va_end(ap);
	*err_r = buf_steal(&b);
}

static char *
dup_field(const char *s)
{
	return xstrndup(s != NULL ? s : "", SHOWQ_FIELD_MAX);
}

/* defer/ID: "addr TAB dsn TAB text" lines; the last line for an address
 * wins (it is the latest attempt). */
struct reason {
	char *addr;
	char *text;
};

static size_t
load_reasons(const char *qdir, const char *id, struct reason **out)
{
	char *path = queue_path(qdir, QUEUE_DEFER, id), *data = NULL, *line, *next;
	char *f[3];
	struct reason *r = NULL;
	size_t n = 0, len = 0, i;

	*out = NULL;
	if (file_read_all(path, DEFER_LOG_MAX, &data, &len) < 0) {
		xfree(&path);
		return 0;
	}
	xfree(&path);
	for (line = data; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (bounce_log_split(line, f, 3) != 3)
			continue;
		for (i = 0; i < n; i++)
			if (strcmp(r[i].addr, f[0]) == 0)
				break;
		if (i == n) {
			r = xreallocarray(r, n + 1, sizeof(*r));
			r[n].addr = xstrdup(f[0]);
			r[n].text = NULL;
			n++;
		}
		free(r[i].text);
		r[i].text = dup_field(f[2]);
	}
	free(data);
	*out = r;
	return n;
}

static void
free_reasons(struct reason *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(r[i].addr);
		free(r[i].text);
	}
	free(r);
}

int
showq_read(const char *qdir, const char *queue, const char *id,
    struct showq_msg *m, char **err_r)
{
	struct qenv env;
	struct stat st;
	struct reason *reasons = NULL;
	size_t nreason, i, j, bytes = 0;
	char *path, *err = NULL;
	int fd;

	memset(m, 0, sizeof(*m));
	memset(&env, 0, sizeof(env));
	if (!queue_id_valid(id)) {
		set_err(err_r, "%.100s: not a queue ID", id);
		return -1;
	}
	path = queue_path(qdir, queue, id);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT) {
			xfree(&path);
			return 1;
		}
		set_err(err_r, "open %s: %s", path, strerror(errno));
		xfree(&path);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		set_err(err_r, "%s: not a regular file", path);
		close(fd);
		xfree(&path);
		return -1;
	}
	if (queue_read(fd, &env, &err) < 0) {
		/* Finished and recycled (emptied) while we read: gone. */
		if (access(path, F_OK) < 0 && errno == ENOENT) {
			xfree(&err);
			close(fd);
			qenv_free(&env);
			xfree(&path);
			return 1;
		}
		set_err(err_r, "%s: %s", path, err != NULL ? err : strerror(errno));
		xfree(&err);
		close(fd);
		qenv_free(&env);
		xfree(&path);
		return -1;
	}
	close(fd);
	xfree(&path);

	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->queue, sizeof(m->queue), "%s", queue);
	m->arrival = (long long)env.arrival.tv_sec;
	m->size = (long long)env.content_size;
	m->sender = dup_field(env.sender);
	nreason = load_reasons(qdir, id, &reasons);
	for (i = 0; i < env.nrcpt; i++) {
		const struct qrcpt *r = &env.rcpts[i];
		struct showq_rcpt *sr;

		if (r->status != 'P')
			continue;
		if (m->nrcpt >= SHOWQ_RCPT_MAX || bytes >= RCPT_BYTES_MAX) {
			m->omitted++;
			continue;
		}
		m->rcpts = xreallocarray(m->rcpts, m->nrcpt + 1, sizeof(*m->rcpts));
		sr = &m->rcpts[m->nrcpt++];
		sr->addr = dup_field(r->addr);
		sr->orig = dup_field(r->orig != NULL && strcmp(r->orig, r->addr) != 0 ?
		    r->orig : "");
		sr->reason = NULL;
		for (j = 0; j < nreason; j++)
			if (strcmp(reasons[j].addr, r->addr) == 0)
				sr->reason = xstrdup(reasons[j].text);
		if (sr->reason == NULL)
			sr->reason = xstrdup("");
		bytes += strlen(sr->addr) + strlen(sr->orig) + strlen(sr->reason);
	}
	free_reasons(reasons, nreason);
	qenv_free(&env);
	return 0;
}

void
showq_msg_free(struct showq_msg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].orig);
		free(m->rcpts[i].reason);
	}
	free(m->rcpts);
	free(m->sender);
	memset(m, 0, sizeof(*m));
}

/* Directory order, as Postfix's showq: each name is read and handed to cb
 * as readdir() returns it, so the first message is out at once and no
 * list of the queue's names is built (a backlog of 100,000 costs nothing
 * here). A file moved between queues during the walk may be listed in
 * both or in neither; one gone since readdir() is skipped. */
int
showq_scan(const char *qdir, int (*cb)(struct showq_msg *m, void *ctx),
    void *ctx, void (*warn)(const char *text), char **err_r)
{
	struct dirent *de;
	struct showq_msg m;
	char *path, *err;
	int q, rc = 0, r, save;
	DIR *d;

	for (q = 0; showq_queues[q] != NULL && rc == 0; q++) {
		path = xasprintf("%s/%s", qdir, showq_queues[q]);
		d = opendir(path);
		if (d == NULL) {
			save = errno;
			if (save == ENOENT) {
				xfree(&path);
				continue;
			}
			set_err(err_r, "open %s: %s", path, strerror(save));
			xfree(&path);
			errno = save;
			return -1;
		}
		xfree(&path);
		while (rc == 0 && (de = readdir(d)) != NULL) {
			if (!queue_id_valid(de->d_name))
				continue;
			err = NULL;
			r = showq_read(qdir, showq_queues[q], de->d_name, &m, &err);
			if (r == 0) {
				rc = cb(&m, ctx);
				showq_msg_free(&m);
			} else if (r < 0 && warn != NULL) {
				warn(err != NULL ? err : "unreadable queue file");
			}
			xfree(&err);
		}
		closedir(d);
	}
	return rc;
}

/* ipc form. */

void
showq_msg_encode(const struct showq_msg *m, struct ipc_msg *out)
{
	size_t i;

	ipc_put(out, "queue", m->queue);
	ipc_put(out, "id", m->id);
	ipc_put_int(out, "arrival", m->arrival);
	ipc_put_int(out, "size", m->size);
	ipc_put_int(out, "expire", m->forced_expire ? 1 : 0);
	ipc_put(out, "sender", m->sender != NULL ? m->sender : "");
	ipc_put_int(out, "omitted", (long long)m->omitted);
	for (i = 0; i < m->nrcpt; i++) {
		ipc_put(out, "rcpt", m->rcpts[i].addr);
		ipc_put(out, "orig", m->rcpts[i].orig);
		ipc_put(out, "reason", m->rcpts[i].reason);
	}
}

static int
parse_num(const char *v, long long *out)
{
	char *end;

	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	*out = strtoll(v, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

int
showq_msg_decode(const struct ipc_msg *in, struct showq_msg *m, char **err_r)
{
	const char *name, *value, *why = NULL;
	struct showq_rcpt *r = NULL;
	size_t pos = 0;
	long long v;
	int seen = 0, q, want = 0;   /* want: 0 any, 1 orig next, 2 reason next */

	memset(m, 0, sizeof(*m));
	while (why == NULL && ipc_next(in, &pos, &name, &value)) {
		if (want == 1 && strcmp(name, "orig") != 0)
			why = "recipient without orig";
		else if (want == 2 && strcmp(name, "reason") != 0)
			why = "recipient without reason";
		else if (strcmp(name, "queue") == 0 && !(seen & 1)) {
			for (q = 0; showq_queues[q] != NULL; q++)
				if (strcmp(value, showq_queues[q]) == 0)
					break;
			if (showq_queues[q] == NULL)
				why = "bad queue name";
			else
				snprintf(m->queue, sizeof(m->queue), "%s", value);
			seen |= 1;
		} else if (strcmp(name, "id") == 0 && !(seen & 2)) {
			if (!queue_id_valid(value))
				why = "bad queue ID";
			else
				snprintf(m->id, sizeof(m->id), "%s", value);
			seen |= 2;
		} else if (strcmp(name, "arrival") == 0 && !(seen & 4)) {
			if (parse_num(value, &m->arrival) < 0)
				why = "bad arrival time";
			seen |= 4;
		} else if (strcmp(name, "size") == 0 && !(seen & 8)) {
			if (parse_num(value, &m->size) < 0)
				why = "bad size";
			seen |= 8;
		} else if (strcmp(name, "expire") == 0 && !(seen & 16)) {
			if (parse_num(value, &v) < 0 || v > 1)
				why = "bad expire flag";
			else
				m->forced_expire = v == 1;
			seen |= 16;
		} else if (strcmp(name, "sender") == 0 && !(seen & 32)) {
			m->sender = dup_field(value);
			seen |= 32;
		} else if (strcmp(name, "omitted") == 0 && !(seen & 64)) {
			if (parse_num(value, &v) < 0)
				why = "bad omitted count";
			else
				m->omitted = (size_t)v;
			seen |= 64;
		} else if (strcmp(name, "rcpt") == 0) {
			if (m->nrcpt >= SHOWQ_RCPT_MAX) {
				why = "too many recipients";
				break;
			}
			m->rcpts = xreallocarray(m->rcpts, m->nrcpt + 1, sizeof(*m->rcpts));
			r = &m->rcpts[m->nrcpt++];
			r->addr = dup_field(value);
			r->orig = NULL;
			r->reason = NULL;
			want = 1;
		} else if (strcmp(name, "orig") == 0 && want == 1) {
			r->orig = dup_field(value);
			want = 2;
		} else if (strcmp(name, "reason") == 0 && want == 2) {
			r->reason = dup_field(value);
			want = 0;
		} else {
			why = "unexpected attribute";
		}
	}
	if (why == NULL && want != 0)
		why = "truncated recipient";
	if (why == NULL && seen != 127)
		why = "missing attribute";
	if (why != NULL) {
		/* Recipients half-filled: give them strings before freeing. */
		if (r != NULL) {
			if (r->orig == NULL)
				r->orig = xstrdup("");
			if (r->reason == NULL)
				r->reason = xstrdup("");
		}
		showq_msg_free(m);
		if (err_r != NULL)
			*err_r = xasprintf("showq reply: %s", why);
		return -1;
	}
	return 0;
}

/* Output. */

static void
put_text(struct buf *out, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		buf_putc(out, *p < 0x20 || *p == 0x7f ? '?' : *p);
}

void
showq_format_header(struct buf *out)
{
	buf_printf(out, "%-17s %8s %-19s %s\n", "-Queue ID-", "--Size--",
	    "---Arrival Time----", "-Sender/Recipient-------");
}

void
showq_format_mailq(const struct showq_msg *m, struct buf *out)
{
	char idcol[QUEUE_ID_MAX + 2], when[64];
	const char *last = NULL, *flag = "";
	struct tm tm;
	time_t t = (time_t)m->arrival;
	size_t i, len;

	if (strcmp(m->queue, QUEUE_ACTIVE) == 0)
		flag = "*";
	else if (strcmp(m->queue, QUEUE_HOLD) == 0)
		flag = "!";
	else if (m->forced_expire)
		flag = "#";
	snprintf(idcol, sizeof(idcol), "%s%s", m->id, flag);
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
		snprintf(when, sizeof(when), "%s", "?");
	buf_printf(out, "%-17s %8lld %19.19s ", idcol, m->size, when);
	put_text(out, m->sender != NULL && *m->sender != '\0' ? m->sender :
	    "MAILER-DAEMON");
	buf_putc(out, '\n');
	for (i = 0; i < m->nrcpt; i++) {
		const char *why = m->rcpts[i].reason;

		if (why != NULL && *why != '\0' && (last == NULL || strcmp(last, why) != 0)) {
			len = strlen(why);
			buf_printf(out, "%*s(", len < MAILQ_REASON_END ?
			    (int)(MAILQ_REASON_END - len) : 0, "");
			put_text(out, why);
			buf_puts(out, ")\n");
			last = why;
		}
		buf_printf(out, "%*s", MAILQ_RCPT_INDENT, "");
		put_text(out, m->rcpts[i].addr);
		buf_putc(out, '\n');
	}
	if (m->omitted > 0)
		buf_printf(out, "%*s(%zu more recipients not shown)\n",
		    MAILQ_RCPT_INDENT, "", m->omitted);
	buf_putc(out, '\n');
}

void
showq_format_footer(struct buf *out, long long bytes, size_t count)
{
	if (count == 0) {
		buf_puts(out, "Mail queue is empty\n");
		return;
	}
	/* Rounded up: a queue holding mail never shows "0 Kbytes". */
	buf_printf(out, "-- %lld Kbytes in %zu Request%s.\n", (bytes + 1023) / 1024, count,
	    count == 1 ? "" : "s");
}

/* Length of the UTF-8 sequence at p (1..4), or 0 if it is not one. */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned int c;
	size_t n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	c = p[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates, and past U+10FFFF. */
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

void
showq_json_string(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	buf_putc(out, '"');
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			buf_putc(out, '\\');
			buf_putc(out, *p++);
		} else if (*p == '\n') {
			buf_puts(out, "\\n");
			p++;
		} else if (*p == '\t') {
			buf_puts(out, "\\t");
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_printf(out, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) == 0) {
			buf_puts(out, "\\ufffd");
			p++;
		} else {
			buf_append(out, p, n);
			p += n;
		}
	}
	buf_putc(out, '"');
}

void
showq_format_json(const struct showq_msg *m, struct buf *out)
{
	size_t i;

	buf_puts(out, "{\"queue_name\": ");
	showq_json_string(out, m->queue);
	buf_puts(out, ", \"queue_id\": ");
	showq_json_string(out, m->id);
	buf_printf(out, ", \"arrival_time\": %lld, \"message_size\": %lld, "
	    "\"forced_expire\": %s, \"sender\": ", m->arrival, m->size,
	    m->forced_expire ? "true" : "false");
	showq_json_string(out, m->sender != NULL ? m->sender : "");
	buf_puts(out, ", \"recipients\": [");
	for (i = 0; i < m->nrcpt; i++) {
		const struct showq_rcpt *r = &m->rcpts[i];

		buf_puts(out, i > 0 ? ", {\"address\": " : "{\"address\": ");
		showq_json_string(out, r->addr);
		if (r->orig != NULL && *r->orig != '\0') {
			buf_puts(out, ", \"orig_address\": ");
			showq_json_string(out, r->orig);
		}
		if (r->reason != NULL && *r->reason != '\0') {
			buf_puts(out, ", \"delay_reason\": ");
			showq_json_string(out, r->reason);
		}
		buf_putc(out, '}');
	}
	buf_puts(out, "]}\n");
}
