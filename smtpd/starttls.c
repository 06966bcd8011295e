/*
 * starttls - TLS in smtpd: STARTTLS (RFC 3207) on 25 and 587, implicit
 * TLS on 465 (RFC 8314, smtpd_tls_wrappermode=yes). The TLS I/O itself is
 * the session's conn (lib/util/conn.c).
 *
 * Invariants:
 * - STARTTLS replies 220, and only once that reply has left does the
 *   handshake begin (conn_starttls()). Every plaintext byte buffered after
 *   the STARTTLS line is dropped at once, nothing more is read from the
 *   socket before the handshake, and the session is reset as RFC 3207
 *   section 4.2 requires: no HELO, no transaction, no authentication.
 *   That is DESIGN.md invariant 6 (CVE-2011-0411).
 * - smtpd_tls_security_level=encrypt: every command but EHLO, HELO,
 *   STARTTLS, NOOP and QUIT gets "530 5.7.0 Must issue a STARTTLS command
 *   first" until TLS is up.
 * - The certificate and key are read in pre_init, while still root, and
 *   so are master's shared session-ticket keys (server_tls_ticket_keys()).
 *
 * Trusts: OpenSSL (util/tls.h) for the TLS protocol itself. TLS 1.2 is the
 * minimum (util/tls.c). No client certificates are asked for.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/tls.h"
#include "util/tlskeys.h"
#include "mail/config.h"
#include "mail/server.h"
#include "mail/tlspolicy.h"
#include "smtpd.h"

void
smtpd_tls_init(void)
{
	struct smtpd_conf *c = &smtpd_conf;
	const char *level = config_str("smtpd_tls_security_level");
	const char *cert = config_str("smtpd_tls_cert_file");
	const char *key = config_str("smtpd_tls_key_file");
	const char *wrap = config_get("smtpd_tls_wrappermode");
	char *err = NULL;

	c->tls_wrappermode = wrap != NULL && config_bool("smtpd_tls_wrappermode") == 1;
	if (*level == '\0' || strcasecmp(level, "none") == 0)
		c->tls_level = TLS_LEVEL_NONE;
	else if (strcasecmp(level, "may") == 0)
		c->tls_level = TLS_LEVEL_MAY;
	else if (strcasecmp(level, "encrypt") == 0)
		c->tls_level = TLS_LEVEL_ENCRYPT;
	else
		log_fatalx("smtpd_tls_security_level: unknown value \"%s\" "
		    "(none, may or encrypt)", level);
	if (c->tls_level == TLS_LEVEL_NONE && !c->tls_wrappermode)
		return;
	if (*cert == '\0' || *key == '\0') {
		if (c->tls_level == TLS_LEVEL_MAY && !c->tls_wrappermode) {
			log_warnx("smtpd_tls_security_level=may but no "
			    "smtpd_tls_cert_file/smtpd_tls_key_file: TLS disabled");
			c->tls_level = TLS_LEVEL_NONE;
			return;
		}
		log_fatalx("TLS is required (%s) but smtpd_tls_cert_file or "
		    "smtpd_tls_key_file is not set", c->tls_wrappermode ?
		    "smtpd_tls_wrappermode=yes" : "smtpd_tls_security_level=encrypt");
	}
	c->tls_ctx = tls_server_ctx_new(cert, key, &err);
	if (c->tls_ctx == NULL) {
		if (c->tls_level == TLS_LEVEL_MAY && !c->tls_wrappermode) {
			log_warnx("cannot load certificate or key: %s: TLS disabled", err);
			free(err);
			c->tls_level = TLS_LEVEL_NONE;
			return;
		}
		log_fatalx("cannot load certificate or key: %s", err);
	}
	/* Implicit TLS and "encrypt" are mandatory TLS: Postfix's
	 * smtpd_tls_mandatory_* settings apply, else the opportunistic ones. */
	{
		struct tls_settings ts;

		if (tls_settings_get("smtpd", c->tls_level == TLS_LEVEL_ENCRYPT ||
		    c->tls_wrappermode, config_param, NULL, &ts, &err) < 0 ||
		    tls_ctx_settings(c->tls_ctx, ts.versions, ts.ciphers, &err) < 0)
			log_fatalx("TLS settings: %s", err);
		tls_settings_free(&ts);
	}
	if (tls_server_dh(c->tls_ctx, config_str("smtpd_tls_dh1024_param_file"), &err) < 0)
		log_fatalx("smtpd_tls_dh1024_param_file: %s", err);
	/* Tickets any smtpd process of this master resumes, for as long as
	 * Postfix's parameter says (0: no resumption at all). */
	{
		long long t = config_time("smtpd_tls_session_cache_timeout");

		if (t < 0 || t > TLSKEYS_INTERVAL_MAX) {
			log_warnx("smtpd_tls_session_cache_timeout = %lld is out of "
			    "range; using %d", t, t < 0 ? 0 : TLSKEYS_INTERVAL_MAX);
			t = t < 0 ? 0 : TLSKEYS_INTERVAL_MAX;
		}
		tls_server_session_timeout(c->tls_ctx, (int)t);
		if (t > 0)
			server_tls_ticket_keys(c->tls_ctx);
	}
	/* Implicit TLS is encryption whatever the level says. */
	if (c->tls_wrappermode)
		c->tls_level = TLS_LEVEL_ENCRYPT;
}

int
tls_required_reply(struct session *s, const struct smtp_verb_info *v)
{
	if (smtpd_conf.tls_level != TLS_LEVEL_ENCRYPT || s->tls_up ||
	    (v->flags & SMTP_VF_NO_TLS_CHECK))
		return 0;
	reply(s, "530 5.7.0 Must issue a STARTTLS command first");
	return 1;
}

/* RFC 3207 4.2: forget everything learnt from the client in plaintext. */
static void
session_forget(struct session *s)
{
	txn_reset(s);
	xfree(&s->helo);
	s->esmtp = 0;
	sasl_session_reset(s);
	xfree(&s->sasl_user);
	s->sasl_method = NULL;
}

int
cmd_starttls(struct session *s, const struct smtp_cmd *cmd)
{
	ssize_t dropped;

	if (smtpd_conf.tls_ctx == NULL || smtpd_conf.tls_level == TLS_LEVEL_NONE) {
		reply(s, "502 5.5.1 Error: command not implemented");
		return -1;
	}
	if (conn_tls_active(s->conn)) {
		reply(s, "554 5.5.1 Error: TLS already active");
		return -1;
	}
	if (cmd->arg_len != 0) {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		return -1;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	/* DESIGN.md invariant 6: whatever the client sent after STARTTLS in
	 * plaintext is thrown away; the handshake starts once the 220 is out. */
	dropped = conn_starttls(s->conn, smtpd_conf.tls_ctx);
	if (dropped > 0)
		log_info("%s[%s]: discarding %zd bytes pipelined after STARTTLS",
		    s->name, s->addr, dropped);
	session_forget(s);
	s->where = "STARTTLS";
	return 0;
}

void
tls_session_begin(struct session *s)
{
	s->where = "CONNECT";
	(void)conn_starttls(s->conn, smtpd_conf.tls_ctx);
}

void
tls_session_up(struct session *s)
{
	s->tls_up = 1;
	/* Postfix's line; a resumed session says so the way smtp's
	 * delivery log does (smtp_session.c), so both ends read alike. */
	log_info("Anonymous TLS connection established from %s[%s]: %s%s",
	    s->name, s->addr, tls_describe(conn_tls(s->conn)),
	    tls_session_reused(conn_tls(s->conn)) ? " (session reused)" : "");
	/* Implicit TLS: only now the greeting. */
	if (smtpd_conf.tls_wrappermode)
		session_greet(s);
}

const char *
tls_session_describe(const struct session *s)
{
	return s->tls_up ? tls_describe(conn_tls(s->conn)) : "";
}
