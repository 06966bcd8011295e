/*
 * managesieve-login - the pre-login half of ManageSieve (RFC 5804 non-
 * authenticated state: CAPABILITY, NOOP, LOGOUT, STARTTLS, AUTHENTICATE
 * PLAIN/LOGIN with an initial response or string continuations), a
 * SERVER_MULTI daemon under master on the sieve (4190) listener.
 *
 * Like pop3-login and imap-login it holds no mailbox access: it runs as
 * login_user (chrooted to the login directory when master.conf says so),
 * reads the TLS key while still root, checks passwords only by asking
 * auth for a login ticket, and hands a logged-in session to the
 * managesieve broker (login_handoff() in lib/mail/login.c), which runs it
 * as the mailbox owner and sends the OK. With TLS it stays in the path as
 * a plaintext proxy.
 *
 * Logs: the Login: / Login failed: / Disconnected: lines of the other
 * login processes (the fail2ban filter matches them).
 *
 * Trusts: nothing from the client; auth's verdict and ticket; the
 * broker's answer.
 * Limits: LOGIN_LINE_MAX per command line and LOGIN_LITERAL_MAX per
 * literal (lib/proto/imap.c, untagged mode, parses the commands),
 * SASL_RESP_MAX per SASL response, managesieve_hard_error_limit NO
 * replies, managesieve_login_timeout idle.
 */
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/tls.h"
#include "mail/config.h"
#include "mail/login.h"
#include "mail/server.h"
#include "proto/imap.h"
#include "proto/sasl.h"
#include "proto/managesieve.h"
#include "sieve/sieve.h"

#define LOGIN_LINE_MAX 8192
#define LOGIN_LITERAL_MAX 8192
#define SASL_RESP_MAX 16384

struct lsess {
	struct login_base b;
	struct imap_parser *parser;
	struct sasl_server sasl;
	int sasl_active;               /* reading AUTHENTICATE responses */
	int sasl_inlit;                /* a literal response is being read */
	uint64_t sasl_lit;             /* its bytes still to come */
	struct buf sasl_resp;          /* its bytes so far */
};

static void lsess_cb(struct conn *c, unsigned ev, void *ctx);

static void
lsess_free(struct lsess *s)
{
	login_base_free(&s->b);
	imap_parser_free(&s->parser);
	sasl_server_reset(&s->sasl);
	buf_free(&s->sasl_resp);
	free(s);
}

static void
reply(struct lsess *s, const char *kind, const char *code, const char *text)
{
	struct buf b = BUF_INIT(0);

	msieve_reply(&b, kind, code, text);
	conn_write(s->b.conn, b.data, b.len);
	buf_free(&b);
}

/* A NO (RFC 5804 has no BAD); too many of them end the session. */
static void
no(struct lsess *s, const char *code, const char *text)
{
	reply(s, "NO", code, text);
	login_count_error(&s->b, "BYE \"Too many invalid commands.\"");
}

/* The capability response (RFC 5804 section 1.7): the greeting, the
 * answer to CAPABILITY and what follows a STARTTLS. */
static void
capabilities(struct lsess *s)
{
	struct buf b = BUF_INIT(0);
	unsigned f = 0;

	if (login_plaintext_ok(&s->b))
		f |= MSIEVE_CAP_SASL;
	if (login_conf.tls_ctx != NULL && !conn_tls_active(s->b.conn))
		f |= MSIEVE_CAP_STARTTLS;
	msieve_capabilities(&b, f, sieve_extension_list(), 0);
	conn_write(s->b.conn, b.data, b.len);
	buf_free(&b);
}

static void
greet(struct lsess *s)
{
	capabilities(s);
	reply(s, "OK", NULL, "Postern ManageSieve ready.");
}

static void
auth_done(void *ctx, enum auth_status st, const char *user, const char *reason)
{
	struct lsess *s = ctx;
	const char *ticket = auth_client_reply_get("ticket");
	int r;

	s->b.authc = NULL;
	conn_set_read(s->b.conn, 1);
	if (st == AUTH_OK && ticket != NULL) {
		/* The broker's worker, as the owner, says OK. */
		if ((r = login_handoff(&s->b, user, ticket)) == 0) {
			lsess_free(s);
			return;
		}
		no(s, "TRYLATER", r == LOGIN_HO_UNAVAILABLE ? "Mailbox is unavailable."
		    : "Internal error occurred. Refer to server log for more information.");
	} else if (st == AUTH_FAIL) {
		login_log_failed(&s->b, user ? user : s->b.user, reason);
		no(s, NULL, "Authentication failed.");
	} else {
		log_warnx("Login aborted: user=<%s>, method=%s, rip=%s: %s",
		    user ? user : (s->b.user ? s->b.user : ""), s->b.method, s->b.rip,
		    reason ? reason : "temporary failure");
		no(s, "TRYLATER", "Temporary authentication failure.");
	}
	if (login_done(&s->b)) {
		lsess_free(s);
		return;
	}
	/* Commands pipelined behind the login wait in the input buffer. */
	lsess_cb(s->b.conn, CONN_EV_INPUT, s);
}

static void
sasl_finish(struct lsess *s, enum sasl_result r, struct buf *chal, const char *why)
{
	switch (r) {
	case SASL_CONTINUE: {
		struct buf q = BUF_INIT(0);
		s->sasl_active = 1;
		imap_quote(&q, buf_cstr(chal), chal->len, 0);
		conn_printf(s->b.conn, "%s\r\n", buf_cstr(&q));
		buf_free(&q);
		return;
	}
	case SASL_DONE:
		s->sasl_active = 0;
		free(s->b.user);
		s->b.user = xstrdup(s->sasl.creds.authcid);
		login_auth_start(&s->b, "sieve", s->sasl.creds.authcid,
		    s->sasl.creds.passwd, s->sasl.creds.authzid, auth_done, s);
		sasl_server_reset(&s->sasl);
		return;
	case SASL_CANCEL:
		no(s, NULL, "Authentication aborted by client.");
		break;
	case SASL_ERR_MECH:
		no(s, NULL, "Unsupported authentication mechanism.");
		break;
	default:
		login_log_failed(&s->b, NULL, why ? why : "bad response");
		no(s, NULL, "Invalid base64 data in continued response.");
		break;
	}
	s->sasl_active = 0;
	sasl_server_reset(&s->sasl);
}

static void
sasl_response(struct lsess *s, const char *resp, size_t len)
{
	struct buf chal = BUF_INIT(0);
	const char *why = NULL;

	sasl_finish(s, sasl_server_step(&s->sasl, resp, len, &chal, &why), &chal, why);
	buf_free(&chal);
}

/*
 * A continuation response is a string (RFC 5804 section 2.1): "base64",
 * {n+} CRLF and n bytes, or "*" (quoted or not) to cancel. A literal's
 * bytes are read on; the CRLF after them ends the response.
 */
static int
sasl_read(struct lsess *s)
{
	const char *line;
	size_t len;
	int lr;

	if (s->sasl_lit > 0) {
		size_t n;
		const char *in = conn_in(s->b.conn, &n);
		if (n == 0)
			return 0;
		if (n > s->sasl_lit)
			n = (size_t)s->sasl_lit;
		buf_append(&s->sasl_resp, in, n);
		conn_in_consume(s->b.conn, n);
		s->sasl_lit -= n;
		return 1;
	}
	lr = conn_read_line(s->b.conn, SASL_RESP_MAX, &line, &len);
	if (lr == 0)
		return 0;
	if (lr < 0) {
		sasl_finish(s, SASL_ERR_SYNTAX, NULL, "response too long");
		return 1;
	}
	if (s->sasl_inlit) {
		/* The CRLF after a literal response. */
		s->sasl_inlit = 0;
		if (len != 0)
			sasl_finish(s, SASL_ERR_SYNTAX, NULL, "junk after literal");
		else
			sasl_response(s, buf_cstr(&s->sasl_resp), s->sasl_resp.len);
		buf_free(&s->sasl_resp);
		return 1;
	}
	if (len >= 2 && line[0] == '"' && line[len - 1] == '"') {
		if (len == 3 && line[1] == '*')
			sasl_finish(s, SASL_CANCEL, NULL, NULL);
		else
			sasl_response(s, line + 1, len - 2);
	} else if (len >= 4 && line[0] == '{' && line[len - 1] == '}') {
		char *end;
		unsigned long long n = strtoull(line + 1, &end, 10);
		if (*end == '+')
			end++;
		if (end != line + len - 1 || n == 0 || n > SASL_RESP_MAX) {
			sasl_finish(s, SASL_ERR_SYNTAX, NULL, "bad literal");
			return 1;
		}
		buf_init(&s->sasl_resp, (size_t)n + 1);
		s->sasl_inlit = 1;
		s->sasl_lit = n;
	} else if (len == 1 && line[0] == '*') {
		sasl_finish(s, SASL_CANCEL, NULL, NULL);
	} else {
		/* Some clients send bare base64, as in IMAP. */
		sasl_response(s, line, len);
	}
	return 1;
}

static void
cmd_authenticate(struct lsess *s, const struct imap_command *c)
{
	const struct imap_arg *mech = imap_arg_child(c, 0, 0);
	const struct imap_arg *ir = imap_arg_child(c, 0, 1);
	struct buf chal = BUF_INIT(0);
	const char *why = NULL;

	if (mech == NULL || !imap_arg_is_string(mech) || (ir != NULL
	    && (!imap_arg_is_string(ir) || imap_arg_child(c, 0, 2) != NULL))) {
		no(s, NULL, "Invalid arguments.");
		return;
	}
	if (!login_plaintext_ok(&s->b)) {
		no(s, "ENCRYPT-NEEDED", "Plaintext authentication disallowed on "
		    "non-secure (SSL/TLS) connections.");
		return;
	}
	s->b.method = sasl_mech_name(sasl_mech_lookup(mech->str));
	sasl_finish(s, sasl_server_start(&s->sasl, mech->str, ir != NULL ? ir->str
	    : NULL, ir != NULL ? ir->len : 0, &chal, &why), &chal, why);
	buf_free(&chal);
}

static void
cmd_run(struct lsess *s, const struct imap_command *c)
{
	const char *n = c->name;
	const struct imap_arg *a0 = imap_arg_child(c, 0, 0);
	int noargs = c->args[0].nchildren == 0;

	if (strcmp(n, "CAPABILITY") == 0 && noargs) {
		capabilities(s);
		reply(s, "OK", NULL, "Capability completed.");
	} else if (strcmp(n, "NOOP") == 0 && (noargs || (a0 != NULL
	    && imap_arg_is_string(a0) && c->args[0].nchildren == 1))) {
		/* RFC 5804 section 2.11: a string argument comes back as TAG. */
		struct buf q = BUF_INIT(0);
		if (a0 != NULL) {
			imap_quote(&q, a0->str, a0->len, IMAP_Q_UTF8);
			conn_printf(s->b.conn, "OK (TAG %s) \"Done\"\r\n", buf_cstr(&q));
		} else
			reply(s, "OK", NULL, "NOOP completed.");
		buf_free(&q);
	} else if (strcmp(n, "LOGOUT") == 0 && noargs) {
		reply(s, "OK", NULL, "Logout completed.");
		s->b.quit = LOGIN_QUIT_LOGOUT;
	} else if (strcmp(n, "STARTTLS") == 0 && noargs) {
		if (login_conf.tls_ctx == NULL || conn_tls_active(s->b.conn)) {
			no(s, NULL, "TLS is not available.");
			return;
		}
		reply(s, "OK", NULL, "Begin TLS negotiation now.");
		/* DESIGN.md invariant 6: what was pipelined after STARTTLS is
		 * dropped; the capabilities follow the handshake (lsess_cb). */
		ssize_t dropped = conn_starttls(s->b.conn, login_conf.tls_ctx);
		if (dropped > 0)
			log_info("rip=%s: discarding %zd bytes pipelined after STARTTLS",
			    s->b.rip, dropped);
		xfree(&s->b.user);
	} else if (strcmp(n, "AUTHENTICATE") == 0) {
		cmd_authenticate(s, c);
	} else {
		no(s, NULL, "Authenticate first.");
	}
}

/* Every command in the input, unless auth is pending or TLS is starting. */
static void
process(struct lsess *s)
{
	const char *in;
	size_t n, used;
	enum imap_result r;

	while (!s->b.quit && s->b.authc == NULL && !(conn_tls_active(s->b.conn)
	    && conn_tls(s->b.conn) == NULL)) {
		if (s->sasl_active) {
			if (!sasl_read(s))
				break;
			continue;
		}
		in = conn_in(s->b.conn, &n);
		if (n == 0)
			break;
		r = imap_parse(s->parser, in, n, &used);
		conn_in_consume(s->b.conn, used);
		if (r == IMAP_NEED_MORE)
			break;
		if (r == IMAP_LITERAL) {
			/* ManageSieve has no continuation request: {n} is
			 * read at once, as {n+} is. */
			imap_literal_accept(s->parser);
		} else if (r == IMAP_ERROR) {
			no(s, NULL, imap_parser_error(s->parser));
			if (imap_parser_must_close(s->parser))
				s->b.quit = LOGIN_QUIT_ERRORS;
		} else {
			cmd_run(s, imap_parser_command(s->parser));
		}
		if (s->b.conn == NULL)
			return;
	}
}

static void
lsess_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct lsess *s = ctx;

	if (login_conn_closed(&s->b, ev, "BYE \"Disconnected for inactivity.\"")) {
		lsess_free(s);
		return;
	}
	if (ev & CONN_EV_TLS_UP) {
		log_debug("rip=%s: TLS up: %s", s->b.rip, tls_describe(conn_tls(c)));
		/* RFC 5804 section 2.2: the capabilities again after STARTTLS;
		 * the greeting in wrapper mode. */
		if (login_conf.wrappermode)
			greet(s);
		else {
			capabilities(s);
			reply(s, "OK", NULL, "TLS negotiation successful.");
		}
	}
	process(s);
	if (s->b.conn != NULL && login_done(&s->b))
		lsess_free(s);
}

static void
login_conn(struct loop *l, int fd)
{
	struct lsess *s = xcalloc(1, sizeof(*s));
	struct imap_limits lim = IMAP_LIMITS_DEFAULT;

	login_base_init(&s->b, l, fd);
	sasl_server_init(&s->sasl);
	lim.line_max = LOGIN_LINE_MAX;
	lim.literal_max = LOGIN_LITERAL_MAX;
	lim.literal_total_max = 2 * LOGIN_LITERAL_MAX;
	lim.depth_max = 1;
	lim.args_max = 16;
	lim.untagged = 1;
	s->parser = imap_parser_new(&lim);
	if (login_conn_open(&s->b, SASL_RESP_MAX + 4096, lsess_cb, s)) {
		greet(s);
		(void)conn_flush(s->b.conn);
	}
}

/* Still root: the key may be readable by root only. */
static void
login_pre_init(void)
{
	login_conf_tls("managesieve");
}

static void
login_post_init(struct loop *l)
{
	login_conf_load("managesieve");
}

static void
login_drain(struct loop *l)
{
	log_debug("draining: %d session(s), %d proxied", server_clients(),
	    login_proxy_count());
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.kind = SERVER_MULTI,
		.name = "managesieve-login",
		.login = 1,
		.pre_init = login_pre_init,
		.post_init = login_post_init,
		.conn = login_conn,
		.drain = login_drain,
	};

	return server_main(argc, argv, &ops);
}
