/*
 * bs - "sendmail -bs": an SMTP session on stdin/stdout, run in this
 * process. Each message is handed to pickup exactly as a command-line
 * submission is (handoff.c), so the submitter is still our uid; MAIL FROM
 * is the envelope sender, as -f would be.
 *
 * The peer is the local user who started us, not the network, so line
 * ends are relaxed: a bare LF counts as CRLF (a person typing at a
 * terminal, or a script, sends those). The command and DATA parsers are
 * those of smtpd (lib/proto/smtp.h), with the same limits.
 * Limits: line_length_limit per command, message_size_limit per message,
 * 1000 recipients per message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"
#include "proto/smtp.h"
#include "util/line.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "sendmail.h"

#define RCPT_MAX 1000

struct bs {
	struct buf in;            /* input, LF already turned into CRLF */
	int eof;
	int prev_cr;
	struct smtp_limits lim;
	int have_mail;
	char *sender;
	struct smtp_mail_params mp;
	char **rcpts;
	const char *fullname;
	const char *body;
};

static void
out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	fflush(stdout);
}

/* Read more input. 0, or -1 at EOF; exits on a read error. */
static int
fill(struct bs *b)
{
	char tmp[8192];
	ssize_t n;

	if (b->eof)
		return -1;
	do
		n = read(STDIN_FILENO, tmp, sizeof(tmp));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		sm_error("error reading standard input: %s", strerror(errno));
		exit(EX_IOERR);
	}
	if (n == 0) {
		b->eof = 1;
		return -1;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (tmp[i] == '\n' && !b->prev_cr)
			buf_putc(&b->in, '\r');
		buf_putc(&b->in, tmp[i]);
		b->prev_cr = tmp[i] == '\r';
	}
	return 0;
}

static void
txn_reset(struct bs *b)
{
	if (b->have_mail)
		smtp_mail_params_free(&b->mp);
	b->have_mail = 0;
	xfree(&b->sender);
	strv_free(&b->rcpts);
}

static const char *
skip_kw(const struct smtp_cmd *c, const char *kw)
{
	size_t k = strlen(kw);
	const char *p;

	if (c->arg_len < k || strncasecmp(c->arg, kw, k) != 0)
		return NULL;
	p = c->arg + k;
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static void
cmd_mail(struct bs *b, const struct smtp_cmd *c)
{
	const char *p, *end, *err;
	char *addr = NULL, *perr = NULL;

	if (b->have_mail) {
		out("503 5.5.1 Error: nested MAIL command");
		return;
	}
	if ((p = skip_kw(c, "FROM:")) == NULL) {
		out("%s", c->verb->syntax);
		return;
	}
	if (addr_parse_path(p, 1, &addr, &end, &err) < 0) {
		out("501 5.1.7 Bad sender address syntax");
		return;
	}
	if (smtp_mail_params_parse(end, strlen(end), &b->lim, &b->mp, &perr) != SMTP_DONE) {
		out("%s", perr);
		free(perr);
		free(addr);
		return;
	}
	if (b->lim.max_size > 0 && b->mp.size > b->lim.max_size) {
		out("552 5.3.4 Message size exceeds fixed limit");
		smtp_mail_params_free(&b->mp);
		free(addr);
		return;
	}
	b->have_mail = 1;
	b->sender = addr;
	out("250 2.1.0 Ok");
}

static void
cmd_rcpt(struct bs *b, const struct smtp_cmd *c)
{
	const char *p, *end, *err;
	char *addr = NULL, *perr = NULL;
	struct smtp_rcpt_params rp;

	if (!b->have_mail) {
		out("503 5.5.1 Error: need MAIL command");
		return;
	}
	if ((p = skip_kw(c, "TO:")) == NULL) {
		out("%s", c->verb->syntax);
		return;
	}
	if (addr_parse_path(p, 1, &addr, &end, &err) < 0 || addr[0] == '\0') {
		out("501 5.1.3 Bad recipient address syntax");
		free(addr);
		return;
	}
	if (smtp_rcpt_params_parse(end, strlen(end), &b->lim, &rp, &perr) != SMTP_DONE) {
		out("%s", perr);
		free(perr);
		free(addr);
		return;
	}
	smtp_rcpt_params_free(&rp);
	if (strv_len(b->rcpts) >= RCPT_MAX) {
		out("452 4.5.3 Error: too many recipients");
		free(addr);
		return;
	}
	strv_push(&b->rcpts, addr);
	free(addr);
	out("250 2.1.5 Ok");
}

/* DATA phase and hand-over. 0, or -1 at EOF in the middle. */
static int
cmd_data(struct bs *b)
{
	struct smtp_data d;
	struct sm_msg m;
	struct sm_result res;
	size_t used;
	enum smtp_result r;
	static const char *const bodies[] = { NULL, "7BIT", "8BITMIME" };
	static const char *const rets[] = { NULL, "FULL", "HDRS" };

	if (!b->have_mail) {
		out("503 5.5.1 Error: need MAIL command");
		return 0;
	}
	if (b->rcpts == NULL) {
		out("503 5.5.1 Error: need RCPT command");
		return 0;
	}
	out("354 End data with <CR><LF>.<CR><LF>");
	memset(&m, 0, sizeof(m));
	buf_init(&m.content, 0);
	smtp_data_init(&d);
	for (;;) {
		if (b->in.len == 0 && fill(b) < 0) {
			buf_free(&m.content);
			return -1;
		}
		r = smtp_data_parse(&d, &b->lim, b->in.data, b->in.len, &used, &m.content);
		buf_consume(&b->in, used);
		if (r == SMTP_DONE)
			break;
	}
	if (d.too_big) {
		out("552 5.3.4 Error: message file too big");
		buf_free(&m.content);
		txn_reset(b);
		return 0;
	}
	/* The stream carries no NUL bytes; drop them as -bm does. */
	size_t k = 0;
	for (size_t i = 0; i < m.content.len; i++)
		if (m.content.data[i] != '\0')
			m.content.data[k++] = m.content.data[i];
	buf_truncate(&m.content, k);

	m.sender = b->sender;
	m.fullname = b->fullname;
	m.rcpts = b->rcpts;
	m.notify = "";
	m.body = bodies[b->mp.body] != NULL ? bodies[b->mp.body] : b->body;
	m.ret = rets[b->mp.ret];
	m.envid = b->mp.envid;
	sm_submit(&m, &res);
	if (res.exit_code == 0 && res.queue_id[0])
		out("250 2.0.0 Ok: queued as %s", res.queue_id);
	else if (res.exit_code == 0)
		out("250 2.0.0 Ok: queued");
	else if (res.temp)
		out("451 4.3.0 Error: %s", res.reason);
	else
		out("554 5.7.1 Error: %s", res.reason);
	buf_free(&m.content);
	txn_reset(b);
	return 0;
}

int
sm_smtp_session(const char *fullname, const char *body)
{
	struct bs b;
	struct line_splitter ls = { 0 };
	struct smtp_cmd cmd;
	const char *hostname = config_get("myhostname");
	const char *err;
	size_t used, len;
	enum line_result r;
	long long limit = config_int("message_size_limit");
	long long ll = config_int("line_length_limit");

	memset(&b, 0, sizeof(b));
	buf_init(&b.in, 0);
	b.fullname = fullname;
	b.body = body;
	b.lim.line_length_limit = ll > 0 ? (size_t)ll : 2048;
	b.lim.params_max = 16;
	b.lim.max_size = limit;
	if (hostname == NULL || *hostname == '\0')
		hostname = "localhost";
	out("220 %s ESMTP Postern", hostname);
	for (;;) {
		r = line_split(&ls, b.lim.line_length_limit,
		    b.in.data ? b.in.data : "", b.in.len, &used, &len);
		if (r == LINE_NEED_MORE) {
			buf_consume(&b.in, used);
			if (fill(&b) < 0)
				break;
			continue;
		}
		if (r == LINE_TOO_LONG) {
			buf_consume(&b.in, used);
			out("500 5.5.2 Error: line too long");
			continue;
		}
		char *line = xstrndup(b.in.data, len);
		buf_consume(&b.in, used);
		if (smtp_cmd_parse(line, len, &cmd, &err) != SMTP_DONE) {
			out("%s", err);
			free(line);
			continue;
		}
		if (cmd.verb->verb != SMTP_UNKNOWN && smtp_cmd_args_ok(&cmd, &err) < 0) {
			out("%s", err);
			free(line);
			continue;
		}
		switch (cmd.verb->verb) {
		case SMTP_HELO:
			out("250 %s", hostname);
			break;
		case SMTP_EHLO:
			out("250-%s", hostname);
			out("250-PIPELINING");
			if (limit > 0)
				out("250-SIZE %lld", limit);
			out("250-8BITMIME");
			out("250-DSN");
			out("250 SMTPUTF8");
			break;
		case SMTP_MAIL:
			cmd_mail(&b, &cmd);
			break;
		case SMTP_RCPT:
			cmd_rcpt(&b, &cmd);
			break;
		case SMTP_DATA:
			if (cmd_data(&b) < 0) {
				free(line);
				goto eof;
			}
			break;
		case SMTP_RSET:
			txn_reset(&b);
			out("250 2.0.0 Ok");
			break;
		case SMTP_NOOP:
			out("250 2.0.0 Ok");
			break;
		case SMTP_VRFY:
			out("252 2.0.0 Send some mail, I will try my best");
			break;
		case SMTP_HELP:
			out("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY QUIT");
			break;
		case SMTP_QUIT:
			out("221 2.0.0 Bye");
			free(line);
			txn_reset(&b);
			buf_free(&b.in);
			return 0;
		case SMTP_UNKNOWN:
			out("502 5.5.2 Error: command not recognized");
			break;
		default:
			out("502 5.5.1 Error: command not implemented");
			break;
		}
		free(line);
	}
eof:
	txn_reset(&b);
	buf_free(&b.in);
	return 0;
}
