/*
 * session - one SMTP connection: its conn (lib/util/conn.c: buffered,
 * non-blocking, optionally TLS I/O on the process's event loop), the state
 * machine, pipelining, the error limits and the connect/disconnect logs.
 *
 * Invariants:
 * - Replies are queued in the conn and flushed only when no complete
 *   command is left in its input (RFC 2920: one write per pipelined
 *   group), or when waiting would deadlock (OUT_HIGH unsent: stop reading
 *   and processing until the output drains).
 * - Nothing blocks: the error sleep is a timer during which the session
 *   neither reads nor writes (its replies are held in the conn); the idle
 *   timeout (smtpd_timeout) is the conn's.
 * - A session is freed only at the end of a callback (s->dead), so code
 *   deeper in the stack never sees freed memory.
 * - An idle session costs its struct, its two names and its conn (which
 *   holds no buffer while idle); its restriction state (restrict.c) is
 *   created only when a check has a list to run.
 * Trusts: nothing the client sends. Limits: the conn holds at most one
 *   command line (line_length_limit) plus one read; its output is bounded
 *   by the command line size times the replies of one pipelined group.
 * - While STARTTLS waits for its 220 to leave and the handshake runs, or
 *   the auth daemon or a milter (milter.c) has not answered, nothing is
 *   read or processed; the
 *   plaintext pipelined after STARTTLS is dropped by conn_starttls().
 * - After a BDAT command, its chunk_left octets are taken as chunk data
 *   (or dropped, when the BDAT was refused) before any further command
 *   line is looked for: a chunk is never read as commands.
 * - Before the greeting the client's name is looked up (peer.c) and,
 *   with smtpd_delay_reject = no, the client restrictions run; the
 *   session reads nothing meanwhile. A client refused there gets the
 *   reject as its greeting and 503 for every command but QUIT.
 * - With smtpd_forbid_bare_newline = reject (client not excluded), a
 *   command line ended by a bare LF is not run: 550 5.5.2, then close.
 * - While its queue file is committed (txn.c, s->commit_wait) the
 *   session reads and runs nothing; the other sessions go on.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/alloc.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/net.h"
#include "mail/auth_client.h"
#include "mail/server.h"
#include "smtpd.h"

#define OUT_HIGH (64 * 1024)        /* stop reading while this much is unsent */
#define IN_SLACK (4096 + 64)        /* a read beyond one command line */

static const char *const state_names[] = {
	[SESS_IDLE] = "IDLE", [SESS_MAIL] = "MAIL", [SESS_RCPT] = "RCPT",
	[SESS_DATA] = "DATA", [SESS_QUIT] = "QUIT",
};

static void session_process(struct session *s);
static void session_set_io(struct session *s);
static void session_begin(struct session *s);

void
session_enter(struct session *s, enum sess_state st)
{
	if (s->state != st)
		log_debug("%s[%s]: state %s -> %s", s->name, s->addr,
		    state_names[s->state], state_names[st]);
	s->state = st;
}

/* RFC 3848: ESMTPS with TLS, ESMTPA authenticated, ESMTPSA both. */
const char *
session_proto(const struct session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->tls_up)
		return s->sasl_user != NULL ? "ESMTPSA" : "ESMTPS";
	return s->sasl_user != NULL ? "ESMTPA" : "ESMTP";
}

/* One scratch buffer for the process (like command_run's line copy):
 * the reply is formatted once, logged, then handed to the conn. */
static struct buf replybuf = BUF_INIT(0);

/* soft_bounce = yes: every 5xx reply line becomes 4xx, its 5.x.x status
 * 4.x.x, so no client gives up on mail the administrator would rather
 * see again (Postfix's safety net while a configuration is tried). */
static void
soften(char *p, size_t len)
{
	char *end = p + len, *line = p;

	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = (size_t)((nl != NULL ? nl : end) - line);

		if (n >= 4 && line[0] == '5' && line[1] >= '0' && line[1] <= '9' &&
		    line[2] >= '0' && line[2] <= '9' && (line[3] == ' ' || line[3] == '-')) {
			line[0] = '4';
			if (n >= 6 && line[4] == '5' && line[5] == '.')
				line[4] = '4';
		}
		line = nl != NULL ? nl + 1 : end;
	}
}

void
reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->dead)
		return;
	buf_reset(&replybuf);
	va_start(ap, fmt);
	(void)buf_vprintf(&replybuf, fmt, ap);
	va_end(ap);
	if (smtpd_conf.soft_bounce)
		soften(replybuf.data, replybuf.len);
	if (log_verbose())
		log_debug("> %s[%s]: %s", s->name, s->addr, buf_cstr(&replybuf));
	(void)buf_append(&replybuf, "\r\n", 2);
	conn_write(s->conn, replybuf.data, replybuf.len);
}

static void
log_disconnect(struct session *s)
{
	struct buf b = BUF_INIT(0);
	unsigned total = 0, ok = 0;

	buf_printf(&b, "disconnect from %s[%s]", s->name, s->addr);
	/* Postfix's order (its command table), then ours, unknown last. */
	static const enum smtp_verb order[] = {
		SMTP_HELO, SMTP_EHLO, SMTP_STARTTLS, SMTP_AUTH, SMTP_MAIL, SMTP_RCPT,
		SMTP_DATA, SMTP_BDAT, SMTP_RSET, SMTP_NOOP, SMTP_VRFY, SMTP_ETRN,
		SMTP_QUIT, SMTP_HELP, SMTP_EXPN, SMTP_UNKNOWN,
	};
	_Static_assert(ARRAY_SIZE(order) == SMTP_VERB_COUNT, "every verb listed");
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		enum smtp_verb v = order[i];
		if (s->cmd_total[v] == 0)
			continue;
		char lower[16];
		size_t k;
		for (k = 0; smtp_verbs[v].name[k] && k < sizeof(lower) - 1; k++)
			lower[k] = (char)(smtp_verbs[v].name[k] | 0x20);
		lower[k] = '\0';
		if (s->cmd_ok[v] == s->cmd_total[v])
			buf_printf(&b, " %s=%u", lower, s->cmd_ok[v]);
		else
			buf_printf(&b, " %s=%u/%u", lower, s->cmd_ok[v], s->cmd_total[v]);
		total += s->cmd_total[v];
		ok += s->cmd_ok[v];
	}
	if (ok == total)
		buf_printf(&b, " commands=%u", ok);
	else
		buf_printf(&b, " commands=%u/%u", ok, total);
	log_info("%s", buf_cstr(&b));
	buf_free(&b);
}

/* Close now: the transaction is aborted, the fd goes back to the skeleton.
 * The struct itself is freed by the outermost callback. */
static void
session_close(struct session *s)
{
	if (s->dead)
		return;
	txn_reset(s);
	smtpd_milter_end(s);
	log_disconnect(s);
	if (s->sleep_timer)
		loop_timer_cancel(s->loop, s->sleep_timer);
	s->sleep_timer = 0;
	sasl_session_reset(s);
	smtpd_peer_end(s);
	smtpd_restrict_end(s);
	conn_free(&s->conn);   /* TLS close_notify; the fd stays open */
	server_disconnect(s->loop, s->fd);
	s->fd = -1;
	s->dead = 1;
}

/* End of a callback: free a dead session. */
static void
session_done(struct session *s)
{
	if (s->dead) {
		free(s->name);
		free(s->reverse_name);
		free(s->helo);
		free(s->helo_prev);
		free(s->access_denied);
		free(s->sasl_user);
		free(s);
	}
}

/* May commands run (and input be taken) now? */
static int
session_may_process(const struct session *s)
{
	return !s->dead && s->sleep_timer == 0 && s->state != SESS_QUIT
	    && s->peer == NULL && s->authc == NULL && !smtpd_restrict_busy(s)
	    && !s->milter_wait && !s->commit_wait
	    && !(conn_tls_active(s->conn) && conn_tls(s->conn) == NULL);
}

/* Read only what can be processed now: a paused session (error sleep,
 * auth daemon, output backlog) holds the client back by TCP, and an EOF
 * is not seen before the input ahead of it has run. */
static void
session_set_io(struct session *s)
{
	if (s->dead)
		return;
	conn_set_read(s->conn, session_may_process(s)
	    && conn_out_len(s->conn) < OUT_HIGH);
	conn_set_write(s->conn, s->sleep_timer == 0);
}

static void
sleep_timer_cb(struct loop *l, void *ctx)
{
	struct session *s = ctx;

	s->sleep_timer = 0;
	session_set_io(s);
	/* The held replies first, then the commands behind them. */
	if (conn_flush(s->conn) >= 0)
		session_process(s);
	session_done(s);
}

/* After each command: the hard limit closes, the soft limit delays the
 * replies (and with them the client) by smtpd_error_sleep_time. */
static void
check_error_limits(struct session *s, long long before)
{
	if (s->errors == before)
		return;
	if (s->errors >= smtpd_conf.hard_error_limit) {
		reply(s, "421 4.7.0 %s Error: too many errors", smtpd_conf.myhostname);
		log_info("too many errors after %s from %s[%s]", s->where, s->name,
		    s->addr);
		session_enter(s, SESS_QUIT);
		return;
	}
	if (s->errors >= smtpd_conf.soft_error_limit && smtpd_conf.error_sleep_ms > 0
	    && s->sleep_timer == 0)
		s->sleep_timer = loop_timer_add(s->loop,
		    (uint64_t)smtpd_conf.error_sleep_ms, sleep_timer_cb, s);
}

/* RFC 2920 and Postfix's smtpd_forbid_unauth_pipelining: a client that
 * sends more after a command that must end a group, or pipelines without
 * EHLO, is logged once (not yet rejected). */
static void
check_pipelining(struct session *s, const struct smtp_verb_info *v, size_t rest)
{
	if (rest == 0 || s->pipelining_logged)
		return;
	if (!s->esmtp || (v->flags & SMTP_VF_LAST)) {
		log_info("improper command pipelining after %s from %s[%s]",
		    s->where, s->name, s->addr);
		s->pipelining_logged = 1;
	}
}

/* One command line from the conn; 0 when no whole line is buffered. */
static int
session_line(struct session *s)
{
	const char *line;
	size_t len, rest;
	long long before = s->errors;
	int r = conn_read_line(s->conn, smtpd_conf.limits.line_length_limit,
	    &line, &len);

	if (r == 0)
		return 0;
	if (r > 0 && conn_line_bare_lf(s->conn) && s->bare_lf_reject) {
		session_bare_lf(s);   /* not run: "RSET\nMAIL ..." stops here */
	} else if (r < 0) {
		reply(s, "500 5.5.0 Error: line too long");
		s->errors++;
	} else if (s->sasl_active) {
		sasl_session_line(s, line, len);
	} else {
		(void)conn_in(s->conn, &rest);   /* pipelined behind this line */
		const struct smtp_verb_info *v = command_run(s, line, len);
		if (v != NULL && !s->dead)
			check_pipelining(s, v, rest);
	}
	if (!s->dead)
		check_error_limits(s, before);
	return 1;
}

/* Run every complete command (and take DATA and BDAT octets) in the input
 * until it runs out or the session must wait. 1: stopped at OUT_HIGH. */
static int
session_run(struct session *s)
{
	while (session_may_process(s)) {
		size_t n, used;
		const char *p;

		if (conn_out_len(s->conn) >= OUT_HIGH)
			return 1;
		if (s->state != SESS_DATA && s->chunk_left == 0) {
			if (session_line(s) == 0)
				break;
			continue;
		}
		p = conn_in(s->conn, &n);
		if (n == 0)
			break;
		if (s->state == SESS_DATA) {
			used = txn_data_feed(s, p, n);
		} else {
			/* BDAT octets: data or dropped, never a command. */
			used = (long long)n > s->chunk_left ? (size_t)s->chunk_left : n;
			if (!s->chunk_discard)
				txn_chunk_feed(s, p, used);
			s->chunk_left -= (long long)used;
			if (s->chunk_left == 0 && !s->chunk_discard)
				txn_chunk_end(s);
		}
		if (s->dead)
			break;
		conn_in_consume(s->conn, used);
	}
	return 0;
}

/* Run what the input holds, then write the replies of the group. */
static void
session_process(struct session *s)
{
	for (;;) {
		int blocked = session_run(s);
		if (s->dead || s->sleep_timer != 0)
			break;
		int r = conn_flush(s->conn);
		if (r == 1 && s->state == SESS_QUIT) {
			session_close(s);
			return;
		}
		/* All out at once: a group paused at OUT_HIGH goes on now;
		 * otherwise CONN_EV_DRAINED brings us back. */
		if (r != 1 || !blocked)
			break;
	}
	session_set_io(s);
}

static void
session_conn_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct session *s = ctx;

	if (ev & CONN_EV_TLS_UP)
		tls_session_up(s);
	if ((ev & CONN_EV_INPUT) && strcmp(s->where, "CONNECT") == 0
	    && conn_out_len(c) > 0 && !s->pipelining_logged) {
		/* Bytes while the greeting is still unsent: a client that talks
		 * first (spamware). Logged, not yet rejected. */
		log_info("improper command pipelining after CONNECT from %s[%s]",
		    s->name, s->addr);
		s->pipelining_logged = 1;
	}
	if (!s->dead && (ev & (CONN_EV_INPUT | CONN_EV_DRAINED | CONN_EV_TLS_UP)))
		session_process(s);
	if (s->dead) {
		session_done(s);
		return;
	}
	if (ev & CONN_EV_TIMEOUT) {
		log_info("timeout after %s from %s[%s]", s->where, s->name, s->addr);
		reply(s, "421 4.4.2 %s Error: timeout exceeded", smtpd_conf.myhostname);
		/* One try; a client that does not read gets no more chances. */
		(void)conn_flush_last(c);
		session_close(s);
	} else if ((ev & CONN_EV_ERROR) && conn_tls_active(c) && conn_tls(c) == NULL) {
		const char *err = conn_error(c);
		const char *tag = "TLS handshake: ";

		if (strncmp(err, tag, strlen(tag)) == 0)
			err += strlen(tag);
		log_info("SSL_accept error from %s[%s]: %s", s->name, s->addr, err);
		session_close(s);
	} else if (ev & (CONN_EV_EOF | CONN_EV_ERROR)) {
		if (ev & CONN_EV_ERROR)
			log_debug("%s[%s]: %s", s->name, s->addr, conn_error(c));
		log_info("lost connection after %s from %s[%s]", s->where, s->name,
		    s->addr);
		session_close(s);
	}
	session_done(s);
}

void
session_start(struct loop *l, int fd)
{
	struct session *s = xcalloc(1, sizeof(*s));
	char *err = NULL;

	s->loop = l;
	s->fd = fd;
	s->state = SESS_IDLE;
	s->where = "CONNECT";
	s->conn = conn_new(l, fd, smtpd_conf.limits.line_length_limit + 2 + IN_SLACK,
	    session_conn_cb, s);
	conn_set_timeout(s->conn, (uint64_t)smtpd_conf.timeout_ms);
	if (server_peer_addr(fd, s->addr, sizeof(s->addr), NULL) < 0)
		strcpy(s->addr, "unknown");
	s->in_mynetworks = net_cidr_match(s->addr, smtpd_conf.mynetworks, &err) == 1;
	if (err != NULL) {
		log_warnx("mynetworks: %s", err);
		free(err);
		err = NULL;
	}
	if (smtpd_conf.bare_newline == BARE_LF_REJECT) {
		s->bare_lf_reject = net_cidr_match(s->addr,
		    smtpd_conf.bare_newline_exclusions, &err) != 1;
		if (err != NULL) {
			log_warnx("smtpd_forbid_bare_newline_exclusions: %s", err);
			free(err);
		}
	}
	sasl_server_init(&s->sasl);
	/* The name first (Postfix logs "connect from" with it), then the
	 * client restrictions, then the greeting. */
	smtpd_peer_lookup(s, session_begin);
	if (s->peer != NULL)
		session_set_io(s);   /* paused: nothing is read until the greeting */
}

/* smtpd_delay_reject = no: the client list has run. A reject is the
 * greeting (RFC 5321 3.1: 554 instead of 220), and then every command
 * but QUIT gets 503 (command_run), as Postfix does. */
static void
connect_checked(struct session *s, const struct smtpd_restrict_verdict *v,
    void *arg)
{
	(void)arg;
	if (v->reply != NULL)
		s->access_denied = xstrdup(v->reply);
	if (smtpd_conf.tls_wrappermode)
		tls_session_begin(s);   /* RFC 8314: the greeting comes over TLS */
	else
		session_greet(s);
	smtpd_milter_connect(s);
	session_set_io(s);
}

/* The client's name is known (peer.c). */
static void
session_begin(struct session *s)
{
	log_info("connect from %s[%s]", s->name, s->addr);
	smtpd_restrict_check(s, SMTPD_CHECK_CONNECT, NULL, connect_checked, NULL);
}

void
session_greet(struct session *s)
{
	size_t early = 0;
	char b;

	/* Bytes before the greeting (sent while the name was looked up):
	 * a client that talks first, as spamware does. */
	(void)conn_in(s->conn, &early);
	if (!s->pipelining_logged && (early > 0 || (!conn_tls_active(s->conn)
	    && recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1))) {
		log_info("improper command pipelining after CONNECT from %s[%s]",
		    s->name, s->addr);
		s->pipelining_logged = 1;
	}
	if (s->access_denied != NULL)
		reply(s, "%s", s->access_denied);
	else
		reply(s, "220 %s", smtpd_conf.banner);
	(void)conn_flush(s->conn);
}

/* After an asynchronous step (the auth daemon's answer): write, go on. */
void
session_process_more(struct session *s)
{
	session_process(s);
}

void
session_done_cb(struct session *s)
{
	session_done(s);
}

void
session_count_errors(struct session *s, long long before)
{
	if (!s->dead)
		check_error_limits(s, before);
}

void
session_bare_lf(struct session *s)
{
	char rep[64];

	/* Postfix's reply and its disconnect: after a bare LF nothing the
	 * client sends can be trusted to be a command or content. */
	snprintf(rep, sizeof(rep), "%d 5.5.2 Error: bare <LF> received",
	    smtpd_conf.bare_newline_reject_code);
	reply(s, "%s", rep);
	session_log_reject(s, s->where, rep, NULL);
	log_info("bare <LF> received from %s[%s]: closing", s->name, s->addr);
	txn_reset(s);
	session_enter(s, SESS_QUIT);
}

void
session_log_reject(struct session *s, const char *cmd, const char *rep,
    const char *rcpt)
{
	session_log_event(s, "reject", cmd, rep, rcpt);
}

void
session_log_event(struct session *s, const char *event, const char *cmd,
    const char *rep, const char *rcpt)
{
	const char *sender = txn_sender(s);
	struct buf b = BUF_INIT(0);

	buf_printf(&b, "%s: %s: %s from %s[%s]: %s;", txn_qid(s), event, cmd,
	    s->name, s->addr, rep);
	if (sender != NULL)
		buf_printf(&b, " from=<%s>", sender);
	if (rcpt != NULL)
		buf_printf(&b, " to=<%s>", rcpt);
	buf_printf(&b, " proto=%s", session_proto(s));
	if (s->helo != NULL)
		buf_printf(&b, " helo=<%s>", s->helo);
	log_info("%s", buf_cstr(&b));
	buf_free(&b);
}
