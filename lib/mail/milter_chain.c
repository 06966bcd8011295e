/*
 * milter_chain - the milters of a session on the caller's event loop;
 * see milter_chain.h.
 *
 * Invariants:
 * - Nothing blocks: sockets are non-blocking, connects finish on the
 *   loop, each wait (connect, a reply) has a loop timer (milter_*_timeout;
 *   content_timeout for headers, body and end of message).
 * - The protocol is milter_sess's (lib/proto/milter.c): every byte from
 *   a milter is checked there; here only complete verdicts arrive.
 * - Edits are applied between milters to the message in memory, never to
 *   a queue file: the caller writes the result and commits it, so what
 *   is fsynced is the edited message (the 250 still follows the fsync).
 * - An envelope edit that cannot be applied (a malformed address, no
 *   recipient left) counts as that milter failing: its default_action
 *   decides, on an untouched copy of the envelope.
 * Limits: a name in "inet:name:port" is resolved with a blocking
 * getaddrinfo (IP literals, the usual case, resolve at once); the
 * message is held in memory (message_size_limit bounds it).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/milter_chain.h"
#include "mail/queue.h"
#include "mail/resolve.h"

#define IN_MAX (64 * 1024)
#define MACROS_MAX 64

static const char def_reject[] = "550 5.7.1 Command rejected";
static const char def_tempfail[] = "451 4.7.1 Service unavailable - try again later";

enum op {
	OP_NONE, OP_CONNECT, OP_HELO, OP_MAIL, OP_RCPT, OP_DATA, OP_MESSAGE,
	OP_UNKNOWN,
};

struct mc_milter {
	struct milter_chain *ch;
	struct milter_spec spec;        /* strings borrowed from ch->specs */
	struct milter_sess sess;
	int fd;
	struct conn *conn;
	int up;                         /* negotiated */
	int dead;                       /* failed: default_action applied */
	int sess_accepted;              /* ACCEPT at connect/HELO */
};

struct milter_chain {
	struct loop *loop;
	struct milter_spec *specs;
	size_t n;
	struct mc_milter *m;
	char *defmacros[MILTER_MACRO_LISTS];
	milter_macro_fn macro;
	void *mctx;

	enum op op;
	size_t i;                       /* milter being visited */
	size_t k;                       /* step of the operation for it */
	int waiting;                    /* command whose reply is awaited */
	milter_done_fn done;
	void *dctx;
	uint64_t timer;
	struct buf out;

	/* operation arguments */
	char *host, *addr, *str;
	int family;
	unsigned port;
	char **argv;
	size_t argc;
	struct milter_message *msg;
	/* the message as the current milter sees it */
	size_t nhdr, *hoff, *hlen, body_off, nchunk;
	struct buf body;                /* CRLF line ends */

	int rcpt_rej;                   /* OP_RCPT of a refused recipient */
	/* results */
	int in_msg;
	int sticky;                     /* a failed milter's verdict, for good */
	const char *sticky_reply;
	const char *sticky_milter;
	char *sticky_text;
	int hold_all;                   /* a quarantine default_action fired */
	const char *hold_milter;
	char *reply;
};

static void run(struct milter_chain *ch);

static const char *
qid(struct milter_chain *ch)
{
	const char *i = ch->macro(ch->mctx, "i");

	return i != NULL && *i ? i : "NOQUEUE";
}

static void
timer_stop(struct milter_chain *ch)
{
	if (ch->timer)
		loop_timer_cancel(ch->loop, ch->timer);
	ch->timer = 0;
}

static void
finish(struct milter_chain *ch, enum milter_kind kind, const char *reply,
    const char *milter)
{
	struct milter_verdict v = { .kind = kind, .reply = reply, .milter = milter };

	timer_stop(ch);
	if (ch->op == OP_MESSAGE && ch->msg != NULL) {
		if (ch->hold_all && !ch->msg->env.hold) {
			ch->msg->env.hold = 1;
			free(ch->msg->env.hold_reason);
			ch->msg->env.hold_reason = xasprintf("milter %s unavailable",
			    ch->hold_milter);
		}
		v.hold = ch->msg->env.hold;
		v.hold_reason = ch->msg->env.hold_reason;
		ch->in_msg = 0;   /* end of message: nothing to abort */
	}
	ch->op = OP_NONE;
	milter_done_fn done = ch->done;
	ch->done = NULL;
	done(ch->dctx, &v);   /* may free ch */
}

static void
mc_close(struct mc_milter *m)
{
	if (m->conn != NULL)
		conn_free(&m->conn);
	else if (m->fd >= 0)
		loop_fd_del(m->ch->loop, m->fd);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* m failed: close it and let its default_action decide. 1 when that
 * ended the operation (finish called), 0 to go on with the next one. */
static int
mc_fail(struct mc_milter *m, const char *why)
{
	struct milter_chain *ch = m->ch;

	timer_stop(ch);
	mc_close(m);
	m->dead = 1;
	log_warnx("%s: milter %s: %s; default_action=%s", qid(ch),
	    m->spec.endpoint, why, milter_default_name(m->spec.default_action));
	switch (m->spec.default_action) {
	case MILTER_DEF_ACCEPT:
		return 0;
	case MILTER_DEF_QUARANTINE:
		ch->hold_all = 1;
		ch->hold_milter = m->spec.endpoint;
		return 0;
	case MILTER_DEF_REJECT:
		ch->sticky = MILTER_V_REJECT;
		ch->sticky_reply = def_reject;
		break;
	case MILTER_DEF_TEMPFAIL:
		ch->sticky = MILTER_V_TEMPFAIL;
		ch->sticky_reply = def_tempfail;
		break;
	}
	ch->sticky_milter = m->spec.endpoint;
	finish(ch, (enum milter_kind)ch->sticky, ch->sticky_reply, ch->sticky_milter);
	return 1;
}

static void
fail_and_run(struct mc_milter *m, const char *why)
{
	struct milter_chain *ch = m->ch;

	if (mc_fail(m, why))
		return;
	ch->i++;
	ch->k = 0;
	run(ch);
}

static void
timeout_cb(struct loop *l, void *ctx)
{
	struct milter_chain *ch = ctx;

	ch->timer = 0;
	fail_and_run(&ch->m[ch->i], ch->waiting == MILTER_CMD_OPTNEG || ch->waiting == 0
	    ? "timeout while connecting or negotiating" : "timeout waiting for a reply");
}

static void
timer_start(struct milter_chain *ch, long long secs)
{
	timer_stop(ch);
	ch->timer = loop_timer_add(ch->loop, (uint64_t)(secs > 0 ? secs : 1) * 1000,
	    timeout_cb, ch);
}

/* --- the message as a milter sees it -------------------------------------- */

void
milter_message_split(const char *p, size_t len, size_t *hdr_len, size_t *body_off)
{
	size_t off = 0;

	while (off < len) {
		const char *nl = memchr(p + off, '\n', len - off);
		size_t end = nl != NULL ? (size_t)(nl - p) + 1 : len;
		if (p[off] == '\n') {
			*hdr_len = off;
			*body_off = end;
			return;
		}
		if (p[off] != ' ' && p[off] != '\t') {
			/* A field needs a name and a colon; anything else starts
			 * the body (Postfix's cleanup does the same). */
			size_t k = off;
			while (k < end && p[k] != ':' && p[k] > ' ' && p[k] < 0x7f)
				k++;
			if (k == off || k >= end || p[k] != ':') {
				*hdr_len = *body_off = off;
				return;
			}
		} else if (off == 0) {
			*hdr_len = *body_off = 0;
			return;
		}
		off = end;
	}
	*hdr_len = *body_off = len;
}

static void
plan_free(struct milter_chain *ch)
{
	xfree(&ch->hoff);
	xfree(&ch->hlen);
	ch->nhdr = 0;
	buf_free(&ch->body);
}

/* Before a milter gets the message: where its fields are, its body in
 * CRLF form. */
static void
plan_message(struct milter_chain *ch)
{
	const char *p = ch->msg->content->data;
	size_t len = ch->msg->content->len, hdr_len, off = 0;

	plan_free(ch);
	milter_message_split(p, len, &hdr_len, &ch->body_off);
	while (off < hdr_len) {
		size_t start = off;
		do {
			const char *nl = memchr(p + off, '\n', hdr_len - off);
			off = nl != NULL ? (size_t)(nl - p) + 1 : hdr_len;
		} while (off < hdr_len && (p[off] == ' ' || p[off] == '\t'));
		ch->hoff = xreallocarray(ch->hoff, ch->nhdr + 1, sizeof(size_t));
		ch->hlen = xreallocarray(ch->hlen, ch->nhdr + 1, sizeof(size_t));
		ch->hoff[ch->nhdr] = start;
		ch->hlen[ch->nhdr++] = off - start;
	}
	buf_init(&ch->body, 0);
	for (size_t i = ch->body_off; i < len; i++) {
		if (p[i] == '\n' && (i == ch->body_off || p[i - 1] != '\r'))
			(void)buf_putc(&ch->body, '\r');
		(void)buf_putc(&ch->body, p[i]);
	}
	ch->nchunk = (ch->body.len + MILTER_CHUNK_MAX - 1) / MILTER_CHUNK_MAX;
}

/* Header field i as name and value strings for SMFIC_HEADER. */
static int
enc_header(struct milter_chain *ch, struct mc_milter *m, size_t i)
{
	const char *f = ch->msg->content->data + ch->hoff[i];
	size_t len = ch->hlen[i];
	const char *colon = memchr(f, ':', len);
	char *name, *value;
	size_t vs;
	int r;

	if (len > 0 && f[len - 1] == '\n')
		len--;
	name = xstrndup(f, (size_t)(colon - f));
	vs = (size_t)(colon - f) + 1;
	if (!(m->sess.protocol & MILTER_P_HDR_LEADSPC))
		while (vs < len && (f[vs] == ' ' || f[vs] == '\t'))
			vs++;
	value = xstrndup(f + vs, len - vs);
	r = milter_enc_header(&ch->out, name, value);
	free(name);
	free(value);
	return r;
}

static char *
crlf_to_lf(const char *p, size_t n)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; i < n; i++)
		if (!(p[i] == '\r' && i + 1 < n && p[i + 1] == '\n'))
			(void)buf_putc(&b, p[i]);
	if (b.len > 0 && b.data[b.len - 1] != '\n')
		(void)buf_putc(&b, '\n');
	return buf_steal(&b);
}

static void
env_copy(struct milter_envelope *dst, const struct milter_envelope *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->sender = xstrdup(src->sender);
	dst->sender_args = src->sender_args ? xstrdup(src->sender_args) : NULL;
	dst->rcpts = xcalloc(src->nrcpt + 1, sizeof(char *));
	dst->rcpt_args = xcalloc(src->nrcpt + 1, sizeof(char *));
	for (size_t i = 0; i < src->nrcpt; i++) {
		dst->rcpts[i] = xstrdup(src->rcpts[i]);
		dst->rcpt_args[i] = src->rcpt_args[i] ? xstrdup(src->rcpt_args[i]) : NULL;
	}
	dst->nrcpt = src->nrcpt;
	dst->hold = src->hold;
	dst->hold_reason = src->hold_reason ? xstrdup(src->hold_reason) : NULL;
}

/* After m's end of message: its edits, applied to the message. -1 with
 * *why when they cannot be (the default action decides). */
static int
apply_edits(struct milter_chain *ch, struct mc_milter *m, const char **why)
{
	struct milter_edits *e = &m->sess.edits;
	struct milter_message *msg = ch->msg;
	struct milter_envelope env;
	int hdr_edits = 0;

	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].code == MILTER_R_ADDHEADER || e->v[i].code == MILTER_R_CHGHEADER
		    || e->v[i].code == MILTER_R_INSHEADER)
			hdr_edits = 1;
	env_copy(&env, &msg->env);
	if (milter_apply_envelope(e, &env, why) < 0) {
		milter_envelope_free(&env);
		return -1;
	}
	milter_envelope_free(&msg->env);
	msg->env = env;
	if (!hdr_edits && !e->body_replaced)
		return 0;

	struct buf nc = BUF_INIT(0);
	const char *p = msg->content->data;
	size_t hdr_len, body_off;
	milter_message_split(p, msg->content->len, &hdr_len, &body_off);
	if (milter_apply_headers(p, hdr_len, e,
	    (m->sess.protocol & MILTER_P_HDR_LEADSPC) != 0, &nc) < 0) {
		buf_free(&nc);
		*why = "edited message too large";
		return -1;
	}
	(void)buf_putc(&nc, '\n');
	if (e->body_replaced) {
		char *b = crlf_to_lf(e->body.data, e->body.len);
		(void)buf_puts(&nc, b);
		free(b);
	} else {
		(void)buf_append(&nc, p + body_off, msg->content->len - body_off);
	}
	buf_reset(msg->content);
	(void)buf_append(msg->content, nc.data, nc.len);
	buf_free(&nc);
	return 0;
}

/* --- sending ----------------------------------------------------------- */

/* Macros of stage for m (its own list, else the default), into ch->out. */
static void
enc_macros(struct milter_chain *ch, struct mc_milter *m, int stage, int cmd)
{
	const char *list = stage < MILTER_M_COUNT && m->sess.macros[stage] != NULL
	    ? m->sess.macros[stage] : ch->defmacros[stage];
	const char *names[MACROS_MAX], *values[MACROS_MAX];
	char *copy, *tok, *save = NULL;
	size_t n = 0;

	if (list == NULL || !milter_sess_wants(&m->sess, MILTER_CMD_MACRO))
		return;
	copy = xstrdup(list);
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL && n < MACROS_MAX;
	    tok = strtok_r(NULL, " \t,", &save)) {
		const char *v = ch->macro(ch->mctx, tok);
		if (v == NULL && tok[0] != '{' && tok[1] != '\0') {
			/* "client_addr" for "{client_addr}": Sendmail's
			 * long names go with or without their braces. */
			char *braced = xasprintf("{%s}", tok);
			v = ch->macro(ch->mctx, braced);
			free(braced);
		}
		if (v == NULL)
			continue;
		names[n] = tok;
		values[n++] = v;
	}
	if (n > 0)
		(void)milter_enc_macro(&ch->out, cmd, names, values, n);
	free(copy);
}

/* Next command of the operation for m into ch->out: the command, or 0
 * when the operation is over for m. */
static int
next_cmd(struct milter_chain *ch, struct mc_milter *m, int *stage_r)
{
	size_t k = ch->k;
	int r = 0;

	*stage_r = -1;
	switch (ch->op) {
	case OP_CONNECT:
		if (k != 1)
			return 0;
		*stage_r = MILTER_M_CONNECT;
		enc_macros(ch, m, MILTER_M_CONNECT, MILTER_CMD_CONNECT);
		r = milter_enc_connect(&ch->out, ch->host, ch->family, ch->port, ch->addr);
		return r < 0 ? -1 : MILTER_CMD_CONNECT;
	case OP_HELO:
		if (k != 0)
			return 0;
		enc_macros(ch, m, MILTER_M_HELO, MILTER_CMD_HELO);
		return milter_enc_helo(&ch->out, ch->str) < 0 ? -1 : MILTER_CMD_HELO;
	case OP_MAIL:
	case OP_RCPT: {
		if (k != 0)
			return 0;
		if (ch->op == OP_RCPT && ch->rcpt_rej
		    && !(m->sess.protocol & MILTER_P_RCPT_REJ))
			return 0;
		int mail = ch->op == OP_MAIL;
		int cmd = mail ? MILTER_CMD_MAIL : MILTER_CMD_RCPT;
		enc_macros(ch, m, mail ? MILTER_M_ENVFROM : MILTER_M_ENVRCPT, cmd);
		r = mail ? milter_enc_mail(&ch->out, (const char *const *)ch->argv, ch->argc)
		    : milter_enc_rcpt(&ch->out, (const char *const *)ch->argv, ch->argc);
		return r < 0 ? -1 : cmd;
	}
	case OP_UNKNOWN:
		if (k != 0)
			return 0;
		enc_macros(ch, m, MILTER_MACROS_UNKNOWN, MILTER_CMD_UNKNOWN);
		return milter_enc_frame(&ch->out, MILTER_CMD_UNKNOWN, ch->str,
		    strlen(ch->str) + 1) < 0 ? -1 : MILTER_CMD_UNKNOWN;
	case OP_DATA:
		if (k != 0)
			return 0;
		enc_macros(ch, m, MILTER_M_DATA, MILTER_CMD_DATA);
		return milter_enc_simple(&ch->out, MILTER_CMD_DATA) < 0 ? -1
		    : MILTER_CMD_DATA;
	case OP_MESSAGE:
		if (k < ch->nhdr)
			return enc_header(ch, m, k) < 0 ? -1 : MILTER_CMD_HEADER;
		k -= ch->nhdr;
		if (k == 0) {
			enc_macros(ch, m, MILTER_M_EOH, MILTER_CMD_EOH);
			return milter_enc_simple(&ch->out, MILTER_CMD_EOH) < 0 ? -1
			    : MILTER_CMD_EOH;
		}
		k--;
		if (k < ch->nchunk) {
			size_t off = k * MILTER_CHUNK_MAX, len = ch->body.len - off;
			if (len > MILTER_CHUNK_MAX)
				len = MILTER_CHUNK_MAX;
			return milter_enc_body(&ch->out, ch->body.data + off, len) < 0 ? -1
			    : MILTER_CMD_BODY;
		}
		if (k == ch->nchunk) {
			enc_macros(ch, m, MILTER_M_EOM, MILTER_CMD_EOB);
			return milter_enc_simple(&ch->out, MILTER_CMD_EOB) < 0 ? -1
			    : MILTER_CMD_EOB;
		}
		return 0;
	case OP_NONE:
		break;
	}
	return 0;
}

static long long
cmd_timeout(const struct mc_milter *m, int cmd)
{
	switch (cmd) {
	case MILTER_CMD_HEADER: case MILTER_CMD_EOH: case MILTER_CMD_BODY:
	case MILTER_CMD_EOB:
		return m->spec.content_timeout;
	}
	return m->spec.command_timeout;
}

/* Send m's next commands until one awaits a reply. 1 waiting, 0 the
 * operation is over for m, -1 failed (*why). */
static int
mc_step(struct milter_chain *ch, struct mc_milter *m, const char **why)
{
	for (;;) {
		int stage, cmd;

		buf_reset(&ch->out);
		cmd = next_cmd(ch, m, &stage);
		if (cmd == 0)
			return 0;
		if (cmd < 0) {
			*why = "cannot encode a command";
			return -1;
		}
		if (!milter_sess_wants(&m->sess, cmd)) {
			/* Negotiated away, or the milter accepted already:
			 * the macros encoded with it go unsent too. */
			ch->k++;
			continue;
		}
		if (m->conn == NULL) {
			*why = "connection lost";
			return -1;
		}
		conn_write(m->conn, ch->out.data, ch->out.len);
		if (conn_flush(m->conn) < 0) {
			*why = conn_error(m->conn);
			return -1;
		}
		if (milter_sess_sent(&m->sess, cmd)) {
			ch->waiting = cmd;
			timer_start(ch, cmd_timeout(m, cmd));
			return 1;
		}
		ch->k++;
	}
}

/* --- connecting -------------------------------------------------------- */

static void mc_conn_cb(struct conn *c, unsigned ev, void *ctx);

/* A TCP connect to a local port nobody listens on can connect the
 * socket to itself (source port == destination port); our own OPTNEG
 * would then come back as the "answer". */
static int
self_connected(int fd)
{
	struct sockaddr_storage a, b;
	socklen_t al = sizeof(a), bl = sizeof(b);

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	return getsockname(fd, (struct sockaddr *)&a, &al) == 0
	    && getpeername(fd, (struct sockaddr *)&b, &bl) == 0
	    && a.ss_family != AF_UNIX && al == bl && memcmp(&a, &b, al) == 0;
}

static void
mc_connected(struct mc_milter *m)
{
	struct milter_chain *ch = m->ch;

	if (self_connected(m->fd)) {
		fail_and_run(m, "connect: Connection refused (connected to itself)");
		return;
	}
	m->conn = conn_new(ch->loop, m->fd, IN_MAX, mc_conn_cb, m);
	buf_reset(&ch->out);
	if (milter_sess_start(&m->sess, &ch->out) < 0) {
		fail_and_run(m, "cannot encode OPTNEG");
		return;
	}
	conn_write(m->conn, ch->out.data, ch->out.len);
	(void)conn_flush(m->conn);
	ch->waiting = MILTER_CMD_OPTNEG;
	timer_start(ch, m->spec.command_timeout);
}

static void
connect_cb(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct mc_milter *m = ctx;
	int err = 0;
	socklen_t len = sizeof(err);

	loop_fd_del(l, fd);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		char why[128];
		snprintf(why, sizeof(why), "connect: %s", strerror(err));
		fail_and_run(m, why);
		return;
	}
	timer_stop(m->ch);
	mc_connected(m);
}

/* Start the connect; 1 in progress, -1 failed (*why, static). */
static int
mc_connect(struct mc_milter *m, const char **why)
{
	struct milter_chain *ch = m->ch;
	struct sockaddr_storage ss;
	socklen_t sslen;

	memset(&ss, 0, sizeof(ss));
	if (m->spec.is_unix) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
		if (strlen(m->spec.path) >= sizeof(sun->sun_path)) {
			*why = "socket path too long";
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, m->spec.path);
		sslen = sizeof(*sun);
	} else {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		    .ai_flags = AI_NUMERICSERV }, *ai = NULL;
		char port[8];
		snprintf(port, sizeof(port), "%u", m->spec.port);
		if (getaddrinfo(m->spec.host, port, &hints, &ai) != 0 || ai == NULL) {
			*why = "cannot resolve the milter host";
			return -1;
		}
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		sslen = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	m->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		*why = "socket failed";
		return -1;
	}
	if (connect(m->fd, (struct sockaddr *)&ss, sslen) == 0) {
		mc_connected(m);
		return 1;
	}
	if (errno != EINPROGRESS && errno != EAGAIN) {
		*why = errno == ECONNREFUSED ? "connect: Connection refused"
		    : errno == ENOENT ? "connect: No such file or directory"
		    : "connect failed";
		return -1;
	}
	(void)loop_fd_set(ch->loop, m->fd, LOOP_WRITE, connect_cb, m);
	timer_start(ch, m->spec.connect_timeout);
	return 1;
}

/* --- replies ----------------------------------------------------------- */

static void
on_reply(struct mc_milter *m)
{
	struct milter_chain *ch = m->ch;
	int cmd = ch->waiting, v = m->sess.verdict;
	const char *why = NULL;

	timer_stop(ch);
	ch->waiting = 0;
	switch (v) {
	case MILTER_R_OPTNEG:
		m->up = 1;
		break;
	case MILTER_R_ACCEPT:
		if (ch->op == OP_CONNECT || ch->op == OP_HELO)
			m->sess_accepted = 1;
		/* FALLTHROUGH */
	case MILTER_R_CONTINUE:
	case MILTER_R_SKIP:
		if (cmd == MILTER_CMD_EOB && apply_edits(ch, m, &why) < 0) {
			fail_and_run(m, why);
			return;
		}
		break;
	case MILTER_R_DISCARD:
		finish(ch, MILTER_V_DISCARD, NULL, m->spec.endpoint);
		return;
	case MILTER_R_REPLYCODE:
	case MILTER_R_REJECT:
	case MILTER_R_TEMPFAIL: {
		enum milter_kind kind;
		const char *rep;
		if (v == MILTER_R_REPLYCODE) {
			free(ch->reply);
			ch->reply = xstrdup(m->sess.reply);
			rep = ch->reply;
			kind = rep[0] == '4' ? MILTER_V_TEMPFAIL : MILTER_V_REJECT;
		} else {
			kind = v == MILTER_R_REJECT ? MILTER_V_REJECT : MILTER_V_TEMPFAIL;
			rep = v == MILTER_R_REJECT ? def_reject : def_tempfail;
		}
		if (ch->op == OP_CONNECT || ch->op == OP_HELO) {
			/* Postfix: the session's later commands get it. */
			free(ch->sticky_text);
			ch->sticky_text = xstrdup(rep);
			ch->sticky = kind;
			ch->sticky_reply = ch->sticky_text;
			ch->sticky_milter = m->spec.endpoint;
		}
		finish(ch, kind, rep, m->spec.endpoint);
		return;
	}
	default:
		fail_and_run(m, "unexpected reply");
		return;
	}
	ch->k++;
	run(ch);
}

static void
mc_conn_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct mc_milter *m = ctx;
	struct milter_chain *ch = m->ch;

	if (ev & CONN_EV_INPUT) {
		size_t n, used;
		const char *p = conn_in(c, &n), *err = NULL;
		int waiting_me = ch->op != OP_NONE && &ch->m[ch->i] == m && ch->waiting;

		if (!waiting_me && n > 0) {
			m->sess.pending = 0;   /* read below as garbage */
		}
		enum milter_result r = milter_sess_feed(&m->sess, p, n, &used, &err);
		conn_in_consume(c, used);
		if (r == MILTER_ERROR) {
			if (waiting_me)
				fail_and_run(m, err);
			else
				mc_close(m);   /* found dead at its next command */
			return;
		}
		if (r == MILTER_DONE) {
			on_reply(m);   /* may free ch */
			return;
		}
	}
	if (ev & (CONN_EV_EOF | CONN_EV_ERROR | CONN_EV_TIMEOUT)) {
		int waiting_me = ch->op != OP_NONE && &ch->m[ch->i] == m && ch->waiting;
		const char *why = (ev & CONN_EV_EOF) ? "connection closed by the milter"
		    : conn_error(c);
		if (waiting_me)
			fail_and_run(m, why);
		else
			mc_close(m);
	}
}

/* --- the operation ----------------------------------------------------- */

static void
run(struct milter_chain *ch)
{
	while (ch->i < ch->n) {
		struct mc_milter *m = &ch->m[ch->i];
		const char *why = NULL;
		int r;

		if (m->dead) {
			ch->i++;
			ch->k = 0;
			continue;
		}
		if (ch->op == OP_CONNECT && ch->k == 0) {
			if (mc_connect(m, &why) > 0)
				return;
			if (mc_fail(m, why))
				return;
			ch->i++;
			continue;
		}
		if (!m->up) {
			if (mc_fail(m, "not connected"))
				return;
			ch->i++;
			continue;
		}
		if (ch->op == OP_MESSAGE && ch->k == 0)
			plan_message(ch);
		r = mc_step(ch, m, &why);
		if (r > 0)
			return;
		if (r < 0 && mc_fail(m, why))
			return;
		ch->i++;
		ch->k = 0;
	}
	finish(ch, MILTER_V_CONTINUE, NULL, NULL);
}

static void
kick_cb(struct loop *l, void *ctx)
{
	struct milter_chain *ch = ctx;

	ch->timer = 0;
	if (ch->sticky && ch->op != OP_CONNECT) {
		finish(ch, (enum milter_kind)ch->sticky, ch->sticky_reply,
		    ch->sticky_milter);
		return;
	}
	run(ch);
}

static void
op_start(struct milter_chain *ch, enum op op, milter_done_fn done, void *ctx)
{
	if (ch->op != OP_NONE)
		log_panic("%s: an operation is already running", __func__);
	ch->op = op;
	ch->i = 0;
	ch->k = 0;
	ch->done = done;
	ch->dctx = ctx;
	ch->timer = loop_timer_add(ch->loop, 0, kick_cb, ch);
}

static void
args_set(struct milter_chain *ch, const char *const *argv, size_t argc)
{
	for (size_t i = 0; i < ch->argc; i++)
		free(ch->argv[i]);
	free(ch->argv);
	ch->argv = xcalloc(argc + 1, sizeof(char *));
	for (size_t i = 0; i < argc; i++)
		ch->argv[i] = xstrdup(argv[i]);
	ch->argc = argc;
}

struct milter_chain *
milter_chain_new(struct loop *l, const struct milter_spec *specs, size_t n,
    const char *const defmacros[MILTER_MACRO_LISTS], milter_macro_fn macro,
    void *macro_ctx)
{
	struct milter_chain *ch = xcalloc(1, sizeof(*ch));

	ch->loop = l;
	ch->n = n;
	ch->m = xcalloc(n + 1, sizeof(*ch->m));
	ch->macro = macro;
	ch->mctx = macro_ctx;
	buf_init(&ch->out, 0);
	buf_init(&ch->body, 0);
	for (int i = 0; i < MILTER_MACRO_LISTS; i++)
		ch->defmacros[i] = defmacros[i] ? xstrdup(defmacros[i]) : NULL;
	for (size_t i = 0; i < n; i++) {
		struct mc_milter *m = &ch->m[i];
		m->ch = ch;
		m->fd = -1;
		m->spec = specs[i];
		m->spec.endpoint = xstrdup(specs[i].endpoint);
		m->spec.host = specs[i].host ? xstrdup(specs[i].host) : NULL;
		m->spec.path = specs[i].path ? xstrdup(specs[i].path) : NULL;
		milter_sess_init(&m->sess, (uint32_t)specs[i].protocol, MILTER_A_ALL,
		    specs[i].steps);
	}
	return ch;
}

void
milter_chain_free(struct milter_chain **chp)
{
	struct milter_chain *ch = *chp;

	if (ch == NULL)
		return;
	timer_stop(ch);
	for (size_t i = 0; i < ch->n; i++) {
		struct mc_milter *m = &ch->m[i];
		if (m->conn != NULL && m->up && !m->dead) {
			buf_reset(&ch->out);
			(void)milter_enc_simple(&ch->out, MILTER_CMD_QUIT);
			conn_write(m->conn, ch->out.data, ch->out.len);
			(void)conn_flush_last(m->conn);
		}
		mc_close(m);
		milter_sess_free(&m->sess);
		free(m->spec.endpoint);
		free(m->spec.host);
		free(m->spec.path);
	}
	free(ch->m);
	for (int i = 0; i < MILTER_MACRO_LISTS; i++)
		free(ch->defmacros[i]);
	args_set(ch, NULL, 0);
	free(ch->argv);
	free(ch->host);
	free(ch->addr);
	free(ch->str);
	free(ch->reply);
	free(ch->sticky_text);
	plan_free(ch);
	buf_free(&ch->out);
	free(ch);
	*chp = NULL;
}

void
milter_chain_connect(struct milter_chain *ch, const char *host, int family,
    unsigned port, const char *addr, milter_done_fn done, void *ctx)
{
	free(ch->host);
	free(ch->addr);
	ch->host = xstrdup(host);
	ch->addr = xstrdup(addr);
	ch->family = family;
	ch->port = port;
	op_start(ch, OP_CONNECT, done, ctx);
}

void
milter_chain_helo(struct milter_chain *ch, const char *helo,
    milter_done_fn done, void *ctx)
{
	free(ch->str);
	ch->str = xstrdup(helo);
	op_start(ch, OP_HELO, done, ctx);
}

void
milter_chain_mail(struct milter_chain *ch, const char *const *argv, size_t argc,
    milter_done_fn done, void *ctx)
{
	if (ch->in_msg)
		milter_chain_abort(ch);
	/* A new message: what milters accepted or edited last time is gone. */
	for (size_t i = 0; i < ch->n; i++) {
		struct mc_milter *m = &ch->m[i];
		m->sess.accepted = m->sess_accepted;
		m->sess.skip_body = 0;
		milter_edits_free(&m->sess.edits);
		milter_edits_init(&m->sess.edits, 0, 0);
	}
	ch->in_msg = 1;
	args_set(ch, argv, argc);
	op_start(ch, OP_MAIL, done, ctx);
}

void
milter_chain_rcpt(struct milter_chain *ch, const char *const *argv, size_t argc,
    milter_done_fn done, void *ctx)
{
	args_set(ch, argv, argc);
	ch->rcpt_rej = 0;
	op_start(ch, OP_RCPT, done, ctx);
}

int
milter_chain_wants_rcpt_rej(const struct milter_chain *ch)
{
	for (size_t i = 0; i < ch->n; i++)
		if (ch->m[i].up && !ch->m[i].dead
		    && (ch->m[i].sess.protocol & MILTER_P_RCPT_REJ))
			return 1;
	return 0;
}

void
milter_chain_rcpt_rejected(struct milter_chain *ch, const char *const *argv,
    size_t argc, milter_done_fn done, void *ctx)
{
	args_set(ch, argv, argc);
	ch->rcpt_rej = 1;
	op_start(ch, OP_RCPT, done, ctx);
}

void
milter_chain_data(struct milter_chain *ch, milter_done_fn done, void *ctx)
{
	op_start(ch, OP_DATA, done, ctx);
}

void
milter_chain_unknown(struct milter_chain *ch, const char *line,
    milter_done_fn done, void *ctx)
{
	free(ch->str);
	ch->str = xstrdup(line);
	op_start(ch, OP_UNKNOWN, done, ctx);
}

void
milter_chain_message(struct milter_chain *ch, struct milter_message *msg,
    milter_done_fn done, void *ctx)
{
	ch->msg = msg;
	op_start(ch, OP_MESSAGE, done, ctx);
}

void
milter_chain_abort(struct milter_chain *ch)
{
	if (!ch->in_msg)
		return;
	ch->in_msg = 0;
	for (size_t i = 0; i < ch->n; i++) {
		struct mc_milter *m = &ch->m[i];
		if (m->conn == NULL || !m->up || m->dead)
			continue;
		buf_reset(&ch->out);
		(void)milter_enc_simple(&ch->out, MILTER_CMD_ABORT);
		conn_write(m->conn, ch->out.data, ch->out.len);
		(void)conn_flush(m->conn);
	}
}

const char *
milter_reply_logtext(const char *reply)
{
	if (reply != NULL && strlen(reply) > 4 && reply[0] >= '2' && reply[0] <= '5'
	    && reply[1] >= '0' && reply[1] <= '9' && reply[2] >= '0' && reply[2] <= '9'
	    && (reply[3] == ' ' || reply[3] == '-'))
		return reply + 4;
	return reply != NULL ? reply : "";
}

/* --- applying the result to a queue file ---------------------------------- */

static int
in_list(char *const *v, const char *a)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		if (strcasecmp(v[i], a) == 0)
			return 1;
	return 0;
}

/* A recipient a milter added, as smtpd's RCPT would queue it: its
 * virtual alias expansion, each address once. 0, or -1 (logged). */
static int
add_rcpt(struct queue_writer *w, struct resolver *res, const char *addr,
    const char *qid)
{
	char **list = NULL;
	int r = resolver_virtual_alias(res, addr, &list);

	if (r < 0) {
		log_warnx("%s: milter added recipient <%s>: %s", qid, addr,
		    r == -1 ? "temporary lookup failure"
		    : "virtual alias loop or too many addresses");
		return -1;
	}
	if (r == 0)
		strv_push(&list, addr);
	for (size_t i = 0; list[i] != NULL; i++)
		if (!queue_writer_rcpt_has(w, list[i])
		    && queue_writer_rcpt(w, list[i], addr, NULL) < 0) {
			log_warn("%s: write queue file", qid);
			strv_free(&list);
			return -1;
		}
	strv_free(&list);
	return 0;
}

int
milter_queue_apply(struct queue_writer *w, const struct milter_message *msg,
    const char *orig_sender, char *const *orig_rcpts, struct resolver *res,
    const char *qid)
{
	const struct milter_envelope *env = &msg->env;
	char **final = NULL;

	for (size_t i = 0; i < env->nrcpt; i++)
		strv_push(&final, env->rcpts[i]);
	if (strcmp(env->sender, orig_sender) != 0) {
		log_info("%s: milter changed the sender from <%s> to <%s>", qid,
		    orig_sender, env->sender);
		if (queue_writer_set_sender(w, env->sender) < 0)
			goto fail;
	}
	for (size_t i = 0; orig_rcpts != NULL && orig_rcpts[i] != NULL; i++)
		if (!in_list(final, orig_rcpts[i])
		    && queue_writer_rcpt_delete(w, orig_rcpts[i]) < 0)
			goto fail;
	for (size_t i = 0; final != NULL && final[i] != NULL; i++)
		if (!in_list(orig_rcpts, final[i])
		    && add_rcpt(w, res, final[i], qid) < 0) {
			strv_free(&final);
			return -1;
		}
	if (env->hold && queue_writer_set_dir(w, QUEUE_HOLD) < 0)
		goto fail;
	if (msg->content->len > 0
	    && queue_writer_content(w, msg->content->data, msg->content->len) < 0)
		goto fail;
	strv_free(&final);
	return 0;
fail:
	log_warn("%s: write queue file", qid);
	strv_free(&final);
	return -1;
}

/* --- one local message, start to end ---------------------------------------- */

struct milter_run {
	struct milter_chain *ch;
	struct milter_message *msg;
	char *helo;
	size_t step;              /* 0 connect, 1 helo, 2 mail, 3.. rcpts, data, message */
	milter_run_done_fn done;
	void *done_ctx;
};

static void
run_free(struct milter_run **rp)
{
	struct milter_run *r = *rp;

	milter_chain_free(&r->ch);
	free(r->helo);
	free(r);
	*rp = NULL;
}

/* The chain's done callback for each step: the next step, or the end.
 * The run frees itself (and its chain: allowed from the chain's done
 * callback) before telling the caller, who may free msg's owner. */
static void
local_next(void *ctx, const struct milter_verdict *v)
{
	struct milter_run *r = ctx;
	struct milter_message *msg = r->msg;
	size_t step = r->step++;

	if ((v != NULL && v->kind != MILTER_V_CONTINUE)
	    || step >= msg->env.nrcpt + 5) {
		enum milter_kind kind = v != NULL ? v->kind : MILTER_V_CONTINUE;
		char *reply = v != NULL && v->reply != NULL ? xstrdup(v->reply) : NULL;
		milter_run_done_fn done = r->done;
		void *dctx = r->done_ctx;
		run_free(&r);
		done(dctx, kind, reply);
		free(reply);
		return;
	}
	if (step == 0) {
		milter_chain_connect(r->ch, "localhost", '4', 0, "127.0.0.1", local_next, r);
	} else if (step == 1) {
		milter_chain_helo(r->ch, r->helo, local_next, r);
	} else if (step == 2) {
		char *a = xasprintf("<%s>", msg->env.sender);
		const char *argv[] = { a };
		milter_chain_mail(r->ch, argv, 1, local_next, r);
		free(a);
	} else if (step - 3 < msg->env.nrcpt) {
		char *a = xasprintf("<%s>", msg->env.rcpts[step - 3]);
		const char *argv[] = { a };
		milter_chain_rcpt(r->ch, argv, 1, local_next, r);
		free(a);
	} else if (step - 3 == msg->env.nrcpt) {
		milter_chain_data(r->ch, local_next, r);
	} else {
		milter_chain_message(r->ch, msg, local_next, r);
	}
}

struct milter_run *
milter_run_start(struct loop *l, const struct milter_spec *specs, size_t n,
    const char *const defmacros[MILTER_MACRO_LISTS], milter_macro_fn macro,
    void *macro_ctx, const char *helo, struct milter_message *msg,
    milter_run_done_fn done, void *done_ctx)
{
	struct milter_run *r = xcalloc(1, sizeof(*r));

	r->msg = msg;
	r->helo = xstrdup(helo);
	r->done = done;
	r->done_ctx = done_ctx;
	r->ch = milter_chain_new(l, specs, n, defmacros, macro, macro_ctx);
	/* The connect runs from the loop, so done never runs inside this
	 * call (the chain's operations start on a timer). */
	local_next(r, NULL);
	return r;
}

void
milter_run_cancel(struct milter_run **r)
{
	if (*r != NULL)
		run_free(r);
}
