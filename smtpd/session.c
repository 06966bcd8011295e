/*
 * session - one SMTP connection: non-blocking reads and writes on the
 * process's event loop, the state machine, pipelining, timeouts, the error
 * limits and the connect/disconnect logs.
 *
 * Invariants:
 * - Replies are queued in s->out and written only when no complete command
 *   is left in s->in (RFC 2920: one write per pipelined group), or when
 *   waiting would deadlock (out over OUT_HIGH: stop reading, write).
 * - Nothing blocks: the error sleep is a timer during which the session
 *   neither reads nor writes; the idle timeout is a deadline timer.
 * - A session is freed only at the end of a loop callback (s->dead), so
 *   code deeper in the stack never sees freed memory.
 * - Buffers start empty and grow with use; an idle session costs its
 *   struct plus the small buffers it has needed so far.
 * Trusts: nothing the client sends. Limits: s->in holds at most one
 * command line (line_length_limit) plus one read; s->out is bounded by
 * the command line size times the replies of one pipelined group.
 * - With TLS on, every byte goes through session_io_read/write (tls.c);
 *   decrypted bytes OpenSSL still holds are picked up by a 0 ms timer,
 *   since the fd will not poll readable for them. While STARTTLS waits for
 *   its 220 to leave, or the auth daemon has not answered, nothing is read
 *   or processed.
 * - After a BDAT command, its chunk_left octets are taken as chunk data
 *   (or dropped, when the BDAT was refused) before any further command
 *   line is looked for: a chunk is never read as commands.
 * - With smtpd_forbid_bare_newline = reject (client not excluded), a
 *   command line ended by a bare LF is not run: 550 5.5.2, then close.
 * BUGS: the queue file fsync at end of DATA blocks the whole process.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/net.h"
#include "util/tls.h"
#include "mail/auth_client.h"
#include "mail/server.h"
#include "smtpd.h"

#define READ_CHUNK 4096
#define OUT_HIGH (64 * 1024)        /* stop reading while this much is unsent */
#define IN_SLACK (READ_CHUNK + 64)

static const char *const state_names[] = {
	[SESS_IDLE] = "IDLE", [SESS_MAIL] = "MAIL", [SESS_RCPT] = "RCPT",
	[SESS_DATA] = "DATA", [SESS_QUIT] = "QUIT",
};

static void session_process(struct session *s);
static void session_update_events(struct session *s);

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

void
reply(struct session *s, const char *fmt, ...)
{
	va_list ap;
	size_t start = s->out.len;

	if (s->dead)
		return;
	va_start(ap, fmt);
	(void)buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	if (log_verbose())
		log_debug("> %s[%s]: %.*s", s->name, s->addr,
		    (int)(s->out.len - start), s->out.data + start);
	(void)buf_append(&s->out, "\r\n", 2);
}

/* Loopback gets "localhost"; everything else "unknown" until DNS lookups
 * (c-ares) arrive. */
static const char *
client_name(const char *addr)
{
	if (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0
	    || strncmp(addr, "::ffff:127.", 11) == 0)
		return "localhost";
	return "unknown";
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
	log_disconnect(s);
	if (s->idle_timer)
		loop_timer_cancel(s->loop, s->idle_timer);
	if (s->sleep_timer)
		loop_timer_cancel(s->loop, s->sleep_timer);
	if (s->pending_timer)
		loop_timer_cancel(s->loop, s->pending_timer);
	s->idle_timer = s->sleep_timer = s->pending_timer = 0;
	sasl_session_reset(s);
	if (s->tls != NULL)
		tls_conn_free(&s->tls);
	server_disconnect(s->loop, s->fd);
	s->fd = -1;
	s->dead = 1;
}

static void
session_free(struct session *s)
{
	buf_free(&s->in);
	buf_free(&s->out);
	free(s->helo);
	free(s->sasl_user);
	free(s);
}

/* End of a callback: free a dead session, or re-register its interest. */
static void
session_done(struct session *s)
{
	if (s->dead)
		session_free(s);
	else
		session_update_events(s);
}

/* Write what is queued. 0, or -1 after closing the session on an error. */
static int
session_write(struct session *s)
{
	if (s->dead)
		return -1;
	if (s->tls != NULL && !s->tls_up) {
		/* Nothing can be said in the middle of a handshake. */
		buf_reset(&s->out);
		if (s->state == SESS_QUIT)
			session_close(s);
		return 0;
	}
	while (s->out.len > 0) {
		ssize_t n = session_io_write(s, s->out.data, s->out.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			log_info("lost connection after %s from %s[%s]", s->where,
			    s->name, s->addr);
			session_close(s);
			return -1;
		}
		buf_consume(&s->out, (size_t)n);
		s->last_activity = loop_now_ms();
	}
	/* Give memory back from idle sessions after a large burst. */
	if (s->out.cap > 4 * READ_CHUNK)
		buf_free(&s->out);
	if (s->state == SESS_QUIT)
		session_close(s);
	else if (s->tls_start)
		tls_session_begin(s);   /* the 220 is out: now the handshake */
	return 0;
}

static void session_fd_cb(struct loop *l, int fd, unsigned events, void *ctx);
static void session_read(struct session *s);

static void
pending_timer_cb(struct loop *l, void *ctx)
{
	struct session *s = ctx;

	s->pending_timer = 0;
	session_read(s);
	session_done(s);
}

/* May the session take more input now? */
static int
session_may_read(const struct session *s)
{
	return !s->sleep_timer && s->state != SESS_QUIT && s->out.len < OUT_HIGH
	    && !s->tls_start && s->authc == NULL;
}

static void
session_update_events(struct session *s)
{
	unsigned want = 0;

	if (s->dead)
		return;
	if (s->tls != NULL && !s->tls_up) {
		want = s->tls_want ? s->tls_want : LOOP_READ;
	} else if (!s->sleep_timer) {
		if (session_may_read(s))
			want |= LOOP_READ;
		if (s->out.len > 0)
			want |= LOOP_WRITE;
		if (want != 0 && s->tls != NULL)
			want |= s->tls_want;
		if ((want & LOOP_READ) && s->tls != NULL && tls_pending(s->tls) > 0
		    && s->pending_timer == 0)
			s->pending_timer = loop_timer_add(s->loop, 0, pending_timer_cb, s);
	}
	if (want != s->events) {
		if (loop_fd_set(s->loop, s->fd, want, session_fd_cb, s) < 0) {
			log_warn("%s[%s]: loop_fd_set", s->name, s->addr);
			session_close(s);
			return;
		}
		s->events = want;
	}
}

static void
idle_timer_cb(struct loop *l, void *ctx)
{
	struct session *s = ctx;
	uint64_t now = loop_now_ms(), deadline;

	s->idle_timer = 0;
	deadline = s->last_activity + (uint64_t)smtpd_conf.timeout_ms;
	if (now < deadline) {
		s->idle_timer = loop_timer_add(l, deadline - now, idle_timer_cb, s);
		return;
	}
	log_info("timeout after %s from %s[%s]", s->where, s->name, s->addr);
	reply(s, "421 4.4.2 %s Error: timeout exceeded", smtpd_conf.myhostname);
	/* One try; a client that does not read gets no more chances. */
	session_enter(s, SESS_QUIT);
	if (session_write(s) == 0 && !s->dead)
		session_close(s);
	session_done(s);
}

static void
sleep_timer_cb(struct loop *l, void *ctx)
{
	struct session *s = ctx;

	s->sleep_timer = 0;
	if (session_write(s) == 0)
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

/* Run every complete command (and DATA bytes) in s->in, then flush. */
static void
session_process(struct session *s)
{
	size_t pos = 0;

	while (!s->dead && s->sleep_timer == 0 && s->state != SESS_QUIT
	    && pos < s->in.len && s->out.len < OUT_HIGH && s->authc == NULL
	    && !s->tls_start) {
		const char *p = s->in.data + pos;
		size_t n = s->in.len - pos, used, line_len;

		if (s->state == SESS_DATA) {
			pos += txn_data_feed(s, p, n);
			continue;
		}
		if (s->chunk_left > 0) {
			/* BDAT octets: data or dropped, never a command. */
			size_t k = (long long)n > s->chunk_left ? (size_t)s->chunk_left : n;
			if (!s->chunk_discard)
				txn_chunk_feed(s, p, k);
			pos += k;
			s->chunk_left -= k;
			if (s->chunk_left == 0 && !s->chunk_discard)
				txn_chunk_end(s);
			continue;
		}
		long long before = s->errors;
		enum smtp_result r = smtp_line_parse(&s->lp, &smtpd_conf.limits, p, n,
		    &used, &line_len);
		pos += used;
		if (r == SMTP_NEED_MORE)
			break;
		if (r == SMTP_DONE && s->lp.bare_lf && s->bare_lf_reject) {
			session_bare_lf(s);   /* not run: "RSET\nMAIL ..." stops here */
		} else if (r == SMTP_ERROR) {
			reply(s, "500 5.5.0 Error: line too long");
			s->errors++;
		} else if (s->sasl_active) {
			sasl_session_line(s, p, line_len);
		} else {
			const struct smtp_verb_info *v = command_run(s, p, line_len);
			if (v != NULL && !s->dead)
				check_pipelining(s, v, s->in.len - pos);
			if (s->tls_start) {
				/* DESIGN.md invariant 6: whatever the client sent
				 * after STARTTLS in plaintext is thrown away. */
				if (s->in.len > pos)
					log_info("%s[%s]: discarding %zu bytes pipelined "
					    "after STARTTLS", s->name, s->addr,
					    s->in.len - pos);
				pos = s->in.len;
			}
		}
		if (s->dead)
			break;
		check_error_limits(s, before);
	}
	if (s->dead)
		return;
	buf_consume(&s->in, pos);
	if (s->in.len == 0 && s->in.cap > 4 * READ_CHUNK)
		buf_free(&s->in);
	if (s->sleep_timer == 0)
		(void)session_write(s);
}

static void
session_read(struct session *s)
{
	if (buf_reserve(&s->in, READ_CHUNK) < 0) {
		/* Cannot happen: process() keeps s->in under its max. */
		log_warnx("%s[%s]: input buffer full", s->name, s->addr);
		session_close(s);
		return;
	}
	if (!session_may_read(s))
		return;
	ssize_t n = session_io_read(s, s->in.data + s->in.len, READ_CHUNK);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		log_info("lost connection after %s from %s[%s]", s->where, s->name,
		    s->addr);
		session_close(s);
		return;
	}
	if (n == 0) {
		log_info("lost connection after %s from %s[%s]", s->where, s->name,
		    s->addr);
		session_close(s);
		return;
	}
	if (strcmp(s->where, "CONNECT") == 0 && s->out.len > 0
	    && !s->pipelining_logged) {
		/* Bytes while the greeting is still unsent: a client that talks
		 * first (spamware). Logged, not yet rejected. */
		log_info("improper command pipelining after CONNECT from %s[%s]",
		    s->name, s->addr);
		s->pipelining_logged = 1;
	}
	s->in.len += (size_t)n;
	s->in.data[s->in.len] = '\0';
	s->last_activity = loop_now_ms();
	session_process(s);
}

static void
session_fd_cb(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct session *s = ctx;

	if (s->tls != NULL && !s->tls_up) {
		tls_session_handshake(s);
		session_done(s);
		return;
	}
	/* TLS may need the opposite direction of the call it blocked in, so
	 * with TLS any event retries both (a needless try just says EAGAIN). */
	if (s->tls != NULL)
		events |= LOOP_READ | LOOP_WRITE;
	if ((events & LOOP_WRITE) && s->out.len > 0 && session_write(s) == 0
	    && !s->dead && s->out.len < OUT_HIGH)
		session_process(s);   /* output drained: resume a paused group */
	if (!s->dead && (events & (LOOP_READ | LOOP_ERROR)))
		session_read(s);
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
	buf_init(&s->in, smtpd_conf.limits.line_length_limit + 2 + IN_SLACK);
	buf_init(&s->out, 0);
	if (net_peer_addr(fd, s->addr, sizeof(s->addr), NULL) < 0)
		strcpy(s->addr, "unknown");
	s->name = client_name(s->addr);
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
	log_info("connect from %s[%s]", s->name, s->addr);
	s->last_activity = loop_now_ms();
	s->idle_timer = loop_timer_add(l, (uint64_t)smtpd_conf.timeout_ms,
	    idle_timer_cb, s);
	sasl_server_init(&s->sasl);
	if (smtpd_conf.tls_wrappermode)
		tls_session_begin(s);   /* RFC 8314: the greeting comes over TLS */
	else
		session_greet(s);
	session_done(s);
}

void
session_greet(struct session *s)
{
	reply(s, "220 %s", smtpd_conf.banner);
	(void)session_write(s);
}

/* After an asynchronous step (TLS up, auth answer): write, go on. */
void
session_process_more(struct session *s)
{
	if (session_write(s) == 0 && !s->dead)
		session_process(s);
}

void
session_close_now(struct session *s)
{
	session_close(s);
}

void
session_done_cb(struct session *s)
{
	session_done(s);
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
	const char *sender = txn_sender(s);
	struct buf b = BUF_INIT(0);

	buf_printf(&b, "%s: reject: %s from %s[%s]: %s;", txn_qid(s), cmd,
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
