/*
 * imap-login - the pre-login half of IMAP (RFC 9051 / RFC 3501 not
 * authenticated state: CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN,
 * AUTHENTICATE PLAIN/LOGIN with SASL-IR (RFC 4959), ID (RFC 2971)), a
 * SERVER_MULTI daemon under master on the imap (143) and imaps (993,
 * imapd_tls_wrappermode=yes) listeners.
 *
 * It holds no mailbox access: it runs as mail_owner, reads the TLS key
 * while still root (pre_init), and checks passwords only by asking the
 * auth daemon (private/auth) for a login ticket. A successful login is
 * handed to the mailbox broker (private/imapd) by login_handoff()
 * (lib/mail/login.c, shared with pop3-login) together with the login
 * command's tag: the post-login process, running as the mailbox owner,
 * sends the tagged OK with its own CAPABILITY. With TLS this process
 * stays in the path as a plaintext proxy.
 *
 * Logs: "Login: user=<u>, method=M, rip=A, lip=B[, TLS]", "Login failed:
 * user=<u>, method=M, rip=A, lip=B[, TLS]: reason" (the fail2ban form),
 * "Disconnected: reason (no login, N errors): ..." for the others.
 *
 * Trusts: nothing from the client; auth's verdict and ticket; the
 * broker's answer. Failed logins are slowed down by auth's per-address
 * penalty (auth/penalty.c).
 * Limits: LOGIN_LINE_MAX per command line and LOGIN_LITERAL_MAX per
 * literal (the command parser lib/proto/imap.c enforces both),
 * imapd_hard_error_limit BAD commands and failed logins,
 * imapd_login_timeout idle.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/tls.h"
#include "mail/config.h"
#include "mail/login.h"
#include "mail/server.h"
#include "proto/imap.h"
#include "proto/sasl.h"

#define LOGIN_LINE_MAX 8192
#define LOGIN_LITERAL_MAX 8192
#define SASL_RESP_MAX 16384

struct lsess {
	struct login_base b;
	struct imap_parser *parser;
	struct sasl_server sasl;
	int sasl_active;               /* reading AUTHENTICATE responses */
};

static void lsess_cb(struct conn *c, unsigned ev, void *ctx);

static void
lsess_free(struct lsess *s)
{
	login_base_free(&s->b);
	imap_parser_free(&s->parser);
	sasl_server_reset(&s->sasl);
	free(s);
}

static void
tagged(struct lsess *s, const char *tag, const char *text)
{
	conn_printf(s->b.conn, "%s %s\r\n", tag, text);
}

static void
count_error(struct lsess *s)
{
	login_count_error(&s->b, "* BYE Too many invalid IMAP commands.");
}

static void
capabilities(struct lsess *s)
{
	conn_printf(s->b.conn, "CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE "
	    "IDLE LITERAL+");
	if (login_conf.tls_ctx != NULL && !conn_tls_active(s->b.conn))
		conn_printf(s->b.conn, " STARTTLS");
	if (login_plaintext_ok(&s->b))
		conn_printf(s->b.conn, " AUTH=PLAIN AUTH=LOGIN");
	else
		conn_printf(s->b.conn, " LOGINDISABLED");
}

static void
greet(struct lsess *s)
{
	conn_printf(s->b.conn, "* OK [");
	capabilities(s);
	conn_printf(s->b.conn, "] Postern ready.\r\n");
}

static void
auth_done(void *ctx, enum auth_status st, const char *user, const char *reason)
{
	struct lsess *s = ctx;
	const char *ticket = auth_client_reply_get("ticket");
	char *tag = s->b.tag;
	int r;

	s->b.authc = NULL;
	conn_set_read(s->b.conn, 1);
	if (st == AUTH_OK && ticket != NULL) {
		if ((r = login_handoff(&s->b, user, ticket)) == 0) {
			lsess_free(s);
			return;
		}
		tagged(s, tag, r == LOGIN_HO_UNAVAILABLE ? "NO [UNAVAILABLE] Mailbox "
		    "is unavailable." : "NO [UNAVAILABLE] Internal error occurred. "
		    "Refer to server log for more information.");
	} else if (st == AUTH_FAIL) {
		login_log_failed(&s->b, user ? user : s->b.user, reason);
		tagged(s, tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
		count_error(s);
	} else {
		log_warnx("Login aborted: user=<%s>, method=%s, rip=%s: %s",
		    user ? user : (s->b.user ? s->b.user : ""), s->b.method, s->b.rip,
		    reason ? reason : "temporary failure");
		tagged(s, tag, "NO [UNAVAILABLE] Temporary authentication failure.");
	}
	xfree(&s->b.tag);
	if (login_done(&s->b)) {
		lsess_free(s);
		return;
	}
	/* Commands pipelined behind the login wait in the input buffer. */
	lsess_cb(s->b.conn, CONN_EV_INPUT, s);
}

static void
start_auth(struct lsess *s, const char *tag, const char *user, const char *pass,
    const char *authzid)
{
	free(s->b.user);
	s->b.user = xstrdup(user);
	free(s->b.tag);
	s->b.tag = xstrdup(tag);
	login_auth_start(&s->b, "imap", user, pass, authzid, auth_done, s);
}

static int
plaintext_refused(struct lsess *s, const char *tag)
{
	if (login_plaintext_ok(&s->b))
		return 0;
	tagged(s, tag, "NO [PRIVACYREQUIRED] Plaintext authentication disallowed "
	    "on non-secure (SSL/TLS) connections.");
	count_error(s);
	return 1;
}

static void
sasl_finish(struct lsess *s, enum sasl_result r, struct buf *chal, const char *why)
{
	const char *tag = s->b.tag;

	switch (r) {
	case SASL_CONTINUE:
		s->sasl_active = 1;
		conn_printf(s->b.conn, "+ %s\r\n", buf_cstr(chal));
		return;
	case SASL_DONE: {
		char *t = xstrdup(tag);
		s->sasl_active = 0;
		start_auth(s, t, s->sasl.creds.authcid, s->sasl.creds.passwd,
		    s->sasl.creds.authzid);
		free(t);
		sasl_server_reset(&s->sasl);
		return;
	}
	case SASL_CANCEL:
		tagged(s, tag, "BAD Authentication aborted by client.");
		break;
	case SASL_ERR_MECH:
		tagged(s, tag, "NO Unsupported authentication mechanism.");
		break;
	default:
		login_log_failed(&s->b, NULL, why ? why : "bad response");
		tagged(s, tag, "BAD Invalid base64 data in continued response.");
		break;
	}
	xfree(&s->b.tag);
	s->sasl_active = 0;
	sasl_server_reset(&s->sasl);
	count_error(s);
}

static void
cmd_authenticate(struct lsess *s, const struct imap_command *c)
{
	const struct imap_arg *mech = imap_arg_child(c, 0, 0);
	const struct imap_arg *ir = imap_arg_child(c, 0, 1);
	struct buf chal = BUF_INIT(0);
	const char *why = NULL;
	enum sasl_result r;

	if (mech == NULL || mech->kind != IMAP_ARG_ATOM || (ir != NULL
	    && (!imap_arg_is_string(ir) || imap_arg_child(c, 0, 2) != NULL))) {
		tagged(s, c->tag, "BAD Invalid arguments.");
		count_error(s);
		return;
	}
	if (plaintext_refused(s, c->tag))
		return;
	s->b.method = sasl_mech_name(sasl_mech_lookup(mech->str));
	free(s->b.tag);
	s->b.tag = xstrdup(c->tag);
	r = sasl_server_start(&s->sasl, mech->str, ir != NULL ? ir->str : NULL,
	    ir != NULL ? ir->len : 0, &chal, &why);
	sasl_finish(s, r, &chal, why);
	buf_free(&chal);
}

static void
cmd_login(struct lsess *s, const struct imap_command *c)
{
	const struct imap_arg *u = imap_arg_child(c, 0, 0);
	const struct imap_arg *p = imap_arg_child(c, 0, 1);

	if (u == NULL || p == NULL || !imap_arg_is_string(u) || !imap_arg_is_string(p)
	    || imap_arg_child(c, 0, 2) != NULL || memchr(u->str, '\0', u->len) != NULL
	    || memchr(p->str, '\0', p->len) != NULL) {
		tagged(s, c->tag, "BAD Invalid arguments.");
		count_error(s);
		return;
	}
	if (plaintext_refused(s, c->tag))
		return;
	s->b.method = "PLAIN";
	start_auth(s, c->tag, u->str, p->str, NULL);
}

static void
cmd_id(struct lsess *s, const struct imap_command *c)
{
	const struct imap_arg *a = imap_arg_child(c, 0, 0);

	if (a == NULL || (a->kind != IMAP_ARG_NIL && a->kind != IMAP_ARG_LIST)) {
		tagged(s, c->tag, "BAD Invalid arguments.");
		count_error(s);
		return;
	}
	conn_printf(s->b.conn, "* ID (\"name\" \"Postern\")\r\n");
	tagged(s, c->tag, "OK ID completed.");
}

static void
cmd_run(struct lsess *s, const struct imap_command *c)
{
	const char *n = c->name;
	int noargs = c->args[0].nchildren == 0;

	if (strcmp(n, "CAPABILITY") == 0 && noargs) {
		conn_printf(s->b.conn, "* ");
		capabilities(s);
		conn_printf(s->b.conn, "\r\n");
		tagged(s, c->tag, "OK Capability completed.");
	} else if (strcmp(n, "NOOP") == 0 && noargs) {
		tagged(s, c->tag, "OK NOOP completed.");
	} else if (strcmp(n, "LOGOUT") == 0 && noargs) {
		conn_printf(s->b.conn, "* BYE Logging out\r\n");
		tagged(s, c->tag, "OK Logout completed.");
		s->b.quit = LOGIN_QUIT_LOGOUT;
	} else if (strcmp(n, "STARTTLS") == 0 && noargs) {
		if (login_conf.tls_ctx == NULL || conn_tls_active(s->b.conn)) {
			tagged(s, c->tag, "BAD TLS is not available.");
			count_error(s);
			return;
		}
		tagged(s, c->tag, "OK Begin TLS negotiation now.");
		/* DESIGN.md invariant 6 and RFC 9051 section 11.1: what was
		 * pipelined after STARTTLS is dropped. */
		ssize_t dropped = conn_starttls(s->b.conn, login_conf.tls_ctx);
		if (dropped > 0)
			log_info("rip=%s: discarding %zd bytes pipelined after STARTTLS",
			    s->b.rip, dropped);
		xfree(&s->b.user);
	} else if (strcmp(n, "LOGIN") == 0) {
		cmd_login(s, c);
	} else if (strcmp(n, "AUTHENTICATE") == 0) {
		cmd_authenticate(s, c);
	} else if (strcmp(n, "ID") == 0) {
		cmd_id(s, c);
	} else if (strcmp(n, "SELECT") == 0 || strcmp(n, "EXAMINE") == 0
	    || strcmp(n, "LIST") == 0 || strcmp(n, "STATUS") == 0
	    || strcmp(n, "ENABLE") == 0 || strcmp(n, "APPEND") == 0
	    || strcmp(n, "FETCH") == 0 || strcmp(n, "UID") == 0) {
		tagged(s, c->tag, "BAD Command not permitted before login.");
		count_error(s);
	} else {
		tagged(s, c->tag, "BAD Unknown command.");
		count_error(s);
	}
}

static void
sasl_line(struct lsess *s, const char *line, size_t len)
{
	struct buf chal = BUF_INIT(0);
	const char *why = NULL;
	enum sasl_result r = sasl_server_step(&s->sasl, line, len, &chal, &why);

	sasl_finish(s, r, &chal, why);
	buf_free(&chal);
}

/* Every command in the input, unless auth is pending or TLS is starting. */
static void
process(struct lsess *s)
{
	const char *in, *line;
	size_t n, used, len;
	enum imap_result r;
	int lr;

	while (!s->b.quit && s->b.authc == NULL && !(conn_tls_active(s->b.conn)
	    && conn_tls(s->b.conn) == NULL)) {
		if (s->sasl_active) {
			lr = conn_read_line(s->b.conn, SASL_RESP_MAX, &line, &len);
			if (lr == 0)
				break;
			if (lr < 0)
				sasl_finish(s, SASL_ERR_SYNTAX, NULL, "response too long");
			else
				sasl_line(s, line, len);
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
			conn_printf(s->b.conn, "+ OK\r\n");
			imap_literal_accept(s->parser);
		} else if (r == IMAP_ERROR) {
			const char *tag = imap_parser_tag(s->parser);
			conn_printf(s->b.conn, "%s BAD %s\r\n", tag ? tag : "*",
			    imap_parser_error(s->parser));
			count_error(s);
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

	if (login_conn_closed(&s->b, ev, "* BYE Disconnected for inactivity.")) {
		lsess_free(s);
		return;
	}
	if (ev & CONN_EV_TLS_UP) {
		log_debug("rip=%s: TLS up: %s", s->b.rip, tls_describe(conn_tls(c)));
		if (login_conf.wrappermode)
			greet(s);
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
	lim.depth_max = 4;
	lim.args_max = 128;
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
	login_conf_tls("imapd");
}

static void
login_post_init(struct loop *l)
{
	login_conf_load("imapd");
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
		.name = "imap-login",
		.login = 1,
		.pre_init = login_pre_init,
		.post_init = login_post_init,
		.conn = login_conn,
		.drain = login_drain,
	};

	return server_main(argc, argv, &ops);
}
