/*
 * auth - SMTP AUTH (RFC 4954) in smtpd and smtpd_sender_login_maps (the
 * restrictions that look at AUTH, permit_sasl_authenticated, are in
 * restrict.c).
 *
 * The SASL exchange is parsed here with lib/proto/sasl.h; the password is
 * checked by the auth daemon over smtpd_sasl_path (lib/mail/auth_client.h)
 * without blocking the process: the session stops reading and processing
 * until the answer comes back. smtpd never sees a password hash.
 *
 * Invariants:
 * - AUTH is offered and accepted only with smtpd_sasl_auth_enable=yes, and,
 *   with smtpd_tls_auth_only=yes (the default), only once TLS is up; and
 *   only where smtpd_sasl_security_options (smtpd_sasl_tls_security_options
 *   under TLS) allow plaintext mechanisms, the only ones there are.
 * - Credentials are wiped as soon as the auth daemon has them or the
 *   exchange ends; they are never logged (only the user name is, after a
 *   success, and the method).
 * - An authenticated client may relay (txn.c asks s->sasl_user); with
 *   smtpd_sender_login_maps set it may only use the sender addresses that
 *   map to its login name.
 *
 * Trusts: the auth daemon's verdict and canonical user name.
 * Limits: see lib/proto/sasl.h for the sizes of names and passwords.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/auth_client.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/restrict.h"
#include "smtpd.h"

#define AUTH_TIMEOUT_MS (90 * 1000)   /* penalties are at most 15 s each */

void
smtpd_sasl_init(void)
{
	struct smtpd_conf *c = &smtpd_conf;
	const char *path = config_get("smtpd_sasl_path");
	const char *slm = config_get("smtpd_sender_login_maps");
	char *err = NULL;

	c->sasl_enable = config_bool("smtpd_sasl_auth_enable");
	c->tls_auth_only = config_bool("smtpd_tls_auth_only");
	/* Postfix's security options decide whether our two mechanisms,
	 * both plaintext, may be offered, without TLS and with it. */
	c->sasl_plain_ok[0] = config_sasl_plaintext("smtpd", 0);
	c->sasl_plain_ok[1] = config_sasl_plaintext("smtpd", 1);
	if (c->sasl_enable && !c->sasl_plain_ok[0] && !c->sasl_plain_ok[1])
		log_warnx("smtpd_sasl_auth_enable=yes, but the SASL security "
		    "options rule out PLAIN and LOGIN: AUTH will never be offered");
	if (path == NULL || *path == '\0')
		path = "private/auth";
	if (path[0] == '/')
		c->sasl_path = xstrdup(path);
	else
		c->sasl_path = xasprintf("%s/%s", c->queue_directory, path);
	if (slm != NULL && *slm != '\0') {
		c->sender_login_maps = maplist_open(slm, &err);
		if (c->sender_login_maps == NULL)
			log_fatalx("smtpd_sender_login_maps: %s", err ? err : "open failed");
	}
	if (c->sasl_enable && c->tls_auth_only && c->tls_ctx == NULL)
		log_warnx("smtpd_sasl_auth_enable=yes and smtpd_tls_auth_only=yes "
		    "without TLS: AUTH will never be offered");
}

int
sasl_offer(const struct session *s)
{
	return smtpd_conf.sasl_enable && (s->tls_up || !smtpd_conf.tls_auth_only) &&
	    smtpd_conf.sasl_plain_ok[s->tls_up ? 1 : 0];
}

void
sasl_session_reset(struct session *s)
{
	if (s->authc != NULL)
		auth_client_cancel(&s->authc);
	sasl_server_reset(&s->sasl);
	s->sasl_active = 0;
}

static void
auth_failed_log(struct session *s, const char *why)
{
	log_warnx("%s[%s]: SASL %s authentication failed: %s", s->name, s->addr,
	    sasl_mech_name(s->sasl.mech), why);
}

static void
auth_done(void *ctx, enum auth_status st, const char *user, const char *reason)
{
	struct session *s = ctx;

	s->authc = NULL;
	switch (st) {
	case AUTH_OK:
		s->sasl_user = xstrdup(user);
		s->sasl_method = sasl_mech_name(s->sasl.mech);
		s->cmd_ok[SMTP_AUTH]++;
		log_debug("%s[%s]: sasl_method=%s, sasl_username=%s", s->name,
		    s->addr, s->sasl_method, s->sasl_user);
		reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_FAIL:
		auth_failed_log(s, "authentication failure");
		reply(s, "535 5.7.8 Error: authentication failed: authentication failure");
		s->errors++;
		break;
	default:
		log_warnx("%s[%s]: SASL %s authentication problem: %s", s->name,
		    s->addr, sasl_mech_name(s->sasl.mech), reason ? reason : "unknown");
		reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	sasl_server_reset(&s->sasl);
	session_process_more(s);
	session_done_cb(s);
}

/* Act on one step of the exchange. Always 1 (the outcome is counted
 * when it is known) or -1 for a client error. */
static int
sasl_result(struct session *s, enum sasl_result r, const struct buf *challenge,
    const char *err)
{
	struct auth_request req;

	s->sasl_active = 0;
	switch (r) {
	case SASL_CONTINUE:
		s->sasl_active = 1;
		reply(s, "334 %s", buf_cstr(challenge));
		return 1;
	case SASL_DONE:
		memset(&req, 0, sizeof(req));
		req.service = "smtpd";
		req.mechanism = sasl_mech_name(s->sasl.mech);
		req.user = s->sasl.creds.authcid;
		req.authzid = s->sasl.creds.authzid;
		req.password = s->sasl.creds.passwd;
		req.client_addr = s->addr;
		s->authc = auth_client_start(s->loop, smtpd_conf.sasl_path, &req,
		    AUTH_TIMEOUT_MS, auth_done, s);
		/* the request holds its own copy; ours goes now */
		sasl_wipe(s->sasl.creds.passwd, strlen(s->sasl.creds.passwd));
		return 1;
	case SASL_CANCEL:
		reply(s, "501 5.7.0 Authentication aborted");
		break;
	case SASL_ERR_MECH:
		reply(s, "504 5.5.4 Unsupported authentication mechanism");
		break;
	case SASL_ERR_DECODE:
		auth_failed_log(s, err ? err : "cannot decode response");
		reply(s, "501 5.5.2 Cannot decode response");
		break;
	case SASL_ERR_SYNTAX:
	default:
		auth_failed_log(s, err ? err : "malformed response");
		reply(s, "535 5.7.8 Error: authentication failed: %s",
		    err ? err : "malformed response");
		break;
	}
	sasl_server_reset(&s->sasl);
	return -1;
}

int
cmd_auth(struct session *s, const struct smtp_cmd *cmd)
{
	struct buf challenge = BUF_INIT(0);
	const char *err = NULL, *arg = cmd->arg, *end = cmd->arg + cmd->arg_len;
	const char *sp, *ir = NULL;
	char mech[32];
	size_t mlen, irlen = 0;
	enum sasl_result r;
	int rc;

	if (!smtpd_conf.sasl_enable) {
		reply(s, "503 5.5.1 Error: authentication not enabled");
		return -1;
	}
	if (!s->esmtp) {
		reply(s, "503 5.5.1 Error: send EHLO first");
		return -1;
	}
	if (s->sasl_user != NULL) {
		reply(s, "503 5.5.1 Error: already authenticated");
		return -1;
	}
	if (s->tx != NULL) {
		reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return -1;
	}
	if (!sasl_offer(s)) {
		if (s->tls_up)       /* the security options rule both out */
			reply(s, "504 5.5.4 Unsupported authentication mechanism");
		else
			reply(s, "538 5.7.11 Encryption required for requested "
			    "authentication mechanism");
		return -1;
	}
	for (sp = arg; sp < end && *sp != ' ' && *sp != '\t'; sp++)
		;
	mlen = (size_t)(sp - arg);
	while (sp < end && (*sp == ' ' || *sp == '\t'))
		sp++;
	if (sp < end) {
		ir = sp;
		irlen = (size_t)(end - sp);
		if (memchr(ir, ' ', irlen) != NULL || memchr(ir, '\t', irlen) != NULL) {
			reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
			return -1;
		}
	}
	if (mlen == 0 || mlen >= sizeof(mech)) {
		reply(s, "504 5.5.4 Unsupported authentication mechanism");
		return -1;
	}
	memcpy(mech, arg, mlen);
	mech[mlen] = '\0';
	r = sasl_server_start(&s->sasl, mech, ir, irlen, &challenge, &err);
	rc = sasl_result(s, r, &challenge, err);
	buf_free(&challenge);
	return rc;
}

void
sasl_session_line(struct session *s, const char *line, size_t len)
{
	struct buf challenge = BUF_INIT(0);
	const char *err = NULL;
	enum sasl_result r;

	r = sasl_server_step(&s->sasl, line, len, &challenge, &err);
	if (sasl_result(s, r, &challenge, err) < 0)
		s->errors++;
	buf_free(&challenge);
}

int
sasl_sender_check(struct session *s, const char *sender)
{
	char *value = NULL, *rep = NULL;
	int r;

	if (s->sasl_user == NULL || sender[0] == '\0' ||
	    smtpd_conf.sender_login_maps == NULL)
		return 0;
	r = maplist_lookup_addr(smtpd_conf.sender_login_maps, sender, &value);
	if (r < 0)
		rep = xasprintf("451 4.3.0 <%s>: Temporary lookup failure", sender);
	else if (r == 0 || !restrict_login_owns(value, s->sasl_user))
		rep = xasprintf("553 5.7.1 <%s>: Sender address rejected: not owned "
		    "by user %s", sender, s->sasl_user);
	free(value);
	if (rep == NULL)
		return 0;
	reply(s, "%s", rep);
	session_log_reject(s, "MAIL", rep, NULL);
	free(rep);
	return -1;
}
