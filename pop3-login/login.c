/*
 * pop3-login - the pre-login half of POP3 (RFC 1939 AUTHORIZATION state,
 * RFC 2449 CAPA, RFC 5034 AUTH PLAIN/LOGIN, RFC 2595 STLS, RFC 6856 UTF8),
 * a SERVER_MULTI daemon under master on the pop3 (110) and pop3s (995,
 * pop3d_tls_wrappermode=yes) listeners.
 *
 * It holds no mailbox access: it runs as login_user (chrooted to the
 * login directory, which holds only auth's and the broker's sockets, when
 * master.conf says so: server.h), reads the TLS key while still root
 * (pre_init), and checks passwords only by asking the auth daemon
 * (login/auth) for a login ticket. A successful login is handed to the
 * mailbox broker (login/pop3d, login_handoff() in lib/mail/login.c,
 * shared with imap-login), which runs the
 * session as the mailbox owner; with TLS this process stays in the path
 * as a plaintext proxy, since the TLS state cannot leave it.
 *
 * Logs (Dovecot's words, Postfix's prefix): "Login: user=<u>, method=M,
 * rip=A, lip=B[, TLS]", "Login failed: user=<u>, method=M, rip=A, lip=B
 * [, TLS]: reason" (the form the fail2ban filter matches), and
 * "Disconnected: reason ... rip=A" for sessions that never logged in.
 *
 * Trusts: nothing from the client; auth's verdict and ticket; the
 * broker's answer. Failed logins are slowed down by auth's per-address
 * penalty (auth/penalty.c), the same one SMTP AUTH has.
 * Limits: POP3_LINE_MAX per command line (POP3_AUTH_LINE_MAX inside
 * AUTH), pop3d_hard_error_limit bad commands, pop3d_timeout idle.
 */
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/tls.h"
#include "mail/config.h"
#include "mail/server.h"
#include "mail/login.h"
#include "proto/pop3.h"
#include "proto/sasl.h"

struct lsess {
	struct login_base b;           /* b.user: the USER argument, awaiting PASS */
	struct sasl_server sasl;
	int sasl_active;
	int utf8;
};

static void lsess_cb(struct conn *c, unsigned ev, void *ctx);

static void
reply(struct lsess *s, const char *text)
{
	conn_printf(s->b.conn, "%s\r\n", text);
}

static void
lsess_free(struct lsess *s)
{
	login_base_free(&s->b);
	sasl_server_reset(&s->sasl);
	free(s);
}

static int
plaintext_ok(const struct lsess *s)
{
	return login_plaintext_ok(&s->b);
}

static void
count_error(struct lsess *s)
{
	login_count_error(&s->b, "-ERR Too many bad commands.");
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
		if ((r = login_handoff(&s->b, user, ticket)) == 0) {
			lsess_free(s);
			return;
		}
		reply(s, r == LOGIN_HO_UNAVAILABLE ? "-ERR [SYS/TEMP] Mailbox is unavailable."
		    : "-ERR [SYS/TEMP] Internal error occurred. Refer to server log "
		    "for more information.");
	} else if (st == AUTH_FAIL) {
		login_log_failed(&s->b, user ? user : s->b.user, reason);
		reply(s, "-ERR [AUTH] Authentication failed.");
		count_error(s);
	} else {
		log_warnx("Login aborted: user=<%s>, method=%s, rip=%s: %s",
		    user ? user : (s->b.user ? s->b.user : ""), s->b.method, s->b.rip,
		    reason ? reason : "temporary failure");
		reply(s, "-ERR [SYS/TEMP] Temporary authentication failure.");
	}
	xfree(&s->b.user);
	if (login_done(&s->b)) {
		lsess_free(s);
		return;
	}
	/* Commands pipelined behind the login wait in the input buffer. */
	lsess_cb(s->b.conn, CONN_EV_INPUT, s);
}

static void
start_auth(struct lsess *s, const char *user, const char *pass, const char *authzid)
{
	free(s->b.user);
	s->b.user = xstrdup(user);
	login_auth_start(&s->b, "pop3", user, pass, authzid, auth_done, s);
}

static void
sasl_finish(struct lsess *s, enum sasl_result r, struct buf *chal, const char *why)
{
	switch (r) {
	case SASL_CONTINUE:
		s->sasl_active = 1;
		conn_printf(s->b.conn, "+ %s\r\n", buf_cstr(chal));
		return;
	case SASL_DONE:
		s->sasl_active = 0;
		start_auth(s, s->sasl.creds.authcid, s->sasl.creds.passwd,
		    s->sasl.creds.authzid);
		sasl_server_reset(&s->sasl);
		return;
	case SASL_CANCEL:
		reply(s, "-ERR Authentication aborted by client.");
		break;
	case SASL_ERR_MECH:
		reply(s, "-ERR Unsupported authentication mechanism.");
		break;
	default:
		login_log_failed(&s->b, NULL, why ? why : "bad response");
		reply(s, "-ERR Invalid base64 data in continued response");
		break;
	}
	s->sasl_active = 0;
	sasl_server_reset(&s->sasl);
	count_error(s);
}

static void
cmd_auth(struct lsess *s, const struct pop3_cmd *cmd)
{
	struct buf chal = BUF_INIT(0);
	const char *why = NULL;
	char mech[POP3_ARG_MAX + 1];

	if (cmd->argc == 0) {
		/* RFC 1734 style list, as clients probe it. */
		conn_printf(s->b.conn, "+OK\r\n");
		if (plaintext_ok(s))
			conn_printf(s->b.conn, "PLAIN\r\nLOGIN\r\n");
		conn_printf(s->b.conn, ".\r\n");
		return;
	}
	if (!plaintext_ok(s)) {
		reply(s, "-ERR [AUTH] Plaintext authentication disallowed on "
		    "non-secure (SSL/TLS) connections.");
		count_error(s);
		return;
	}
	memcpy(mech, cmd->argv[0].p, cmd->argv[0].len);
	mech[cmd->argv[0].len] = '\0';
	s->b.method = sasl_mech_name(sasl_mech_lookup(mech));
	enum sasl_result r = sasl_server_start(&s->sasl, mech,
	    cmd->argc > 1 ? cmd->argv[1].p : NULL, cmd->argc > 1 ? cmd->argv[1].len : 0,
	    &chal, &why);
	sasl_finish(s, r, &chal, why);
	buf_free(&chal);
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

static void
cmd_run(struct lsess *s, const char *line, size_t len)
{
	struct pop3_cmd cmd;
	const char *err = NULL;

	if (pop3_cmd_accept(line, len, POP3_ST_AUTH, &cmd, &err) != POP3_DONE) {
		conn_printf(s->b.conn, "-ERR %s.\r\n", err);
		count_error(s);
		return;
	}
	switch (cmd.verb->verb) {
	case POP3_CAPA: {
		struct buf b = BUF_INIT(0);
		unsigned f = 0;
		if (plaintext_ok(s))
			f |= POP3_CAPA_USER | POP3_CAPA_SASL;
		if (login_conf.tls_ctx != NULL && !conn_tls_active(s->b.conn))
			f |= POP3_CAPA_STLS;
		pop3_capa(&b, f, sasl_mechanisms());
		conn_write(s->b.conn, b.data, b.len);
		buf_free(&b);
		break;
	}
	case POP3_QUIT:
		reply(s, "+OK Logging out.");
		s->b.quit = LOGIN_QUIT_LOGOUT;
		break;
	case POP3_STLS:
		if (login_conf.tls_ctx == NULL) {
			reply(s, "-ERR TLS support isn't enabled.");
			count_error(s);
		} else if (conn_tls_active(s->b.conn)) {
			reply(s, "-ERR [IN-USE] TLS is already active.");
			count_error(s);
		} else {
			reply(s, "+OK Begin TLS negotiation now.");
			/* DESIGN.md invariant 6 and RFC 2595 section 4: what
			 * was pipelined after STLS is dropped; and nothing
			 * learnt in plaintext (USER) survives. */
			ssize_t dropped = conn_starttls(s->b.conn, login_conf.tls_ctx);
			if (dropped > 0)
				log_info("rip=%s: discarding %zd bytes pipelined after STLS",
				    s->b.rip, dropped);
			xfree(&s->b.user);
		}
		break;
	case POP3_UTF8:
		s->utf8 = 1;
		reply(s, "+OK UTF8 enabled");
		break;
	case POP3_USER:
		if (!plaintext_ok(s)) {
			reply(s, "-ERR [AUTH] Plaintext authentication disallowed on "
			    "non-secure (SSL/TLS) connections.");
			count_error(s);
			break;
		}
		free(s->b.user);
		s->b.user = xstrndup(cmd.argv[0].p, cmd.argv[0].len);
		reply(s, "+OK");
		break;
	case POP3_PASS: {
		if (s->b.user == NULL) {
			reply(s, "-ERR No username given.");
			count_error(s);
			break;
		}
		char *pass = xstrndup(cmd.argv[0].p, cmd.argv[0].len);
		char *user = xstrdup(s->b.user);
		s->b.method = "PLAIN";
		start_auth(s, user, pass, NULL);
		sasl_wipe(pass, strlen(pass));
		free(pass);
		free(user);
		break;
	}
	case POP3_AUTH:
		cmd_auth(s, &cmd);
		break;
	case POP3_APOP:
		reply(s, "-ERR APOP is not supported.");
		count_error(s);
		break;
	default:
		reply(s, "-ERR Unknown command.");
		count_error(s);
		break;
	}
}

static void
greet(struct lsess *s)
{
	reply(s, "+OK Postern ready.");
}

/* Every line in the input, unless auth is pending or TLS is starting. */
static void
process(struct lsess *s)
{
	const char *line;
	size_t len;
	int r;

	while (!s->b.quit && s->b.authc == NULL && !(conn_tls_active(s->b.conn)
	    && conn_tls(s->b.conn) == NULL)) {
		r = conn_read_line(s->b.conn, s->sasl_active ? POP3_AUTH_LINE_MAX
		    : POP3_LINE_MAX, &line, &len);
		if (r == 0)
			break;
		if (r < 0) {
			reply(s, "-ERR Input line too long.");
			if (s->sasl_active) {
				s->sasl_active = 0;
				sasl_server_reset(&s->sasl);
			}
			count_error(s);
			continue;
		}
		if (s->sasl_active)
			sasl_line(s, line, len);
		else
			cmd_run(s, line, len);
		if (s->b.conn == NULL)
			return;
	}
}

static void
lsess_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct lsess *s = ctx;

	if (login_conn_closed(&s->b, ev, "-ERR Disconnected for inactivity.")) {
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

	login_base_init(&s->b, l, fd);
	sasl_server_init(&s->sasl);
	if (login_conn_open(&s->b, POP3_AUTH_LINE_MAX + 4096, lsess_cb, s)) {
		greet(s);
		(void)conn_flush(s->b.conn);
	}
}

/* Still root: the key may be readable by root only. */
static void
login_pre_init(void)
{
	login_conf_tls("pop3d");
}

static void
login_post_init(struct loop *l)
{
	login_conf_load("pop3d");
}

static void
login_drain(struct loop *l)
{
	log_debug("draining: %d session(s), %d proxied", server_clients(), login_proxy_count());
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.kind = SERVER_MULTI,
		.name = "pop3-login",
		.login = 1,
		.pre_init = login_pre_init,
		.post_init = login_post_init,
		.conn = login_conn,
		.drain = login_drain,
	};

	return server_main(argc, argv, &ops);
}
