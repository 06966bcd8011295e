/*
 * starttls - TLS in smtpd: STARTTLS (RFC 3207) on 25 and 587, implicit
 * TLS on 465 (RFC 8314, smtpd_tls_wrappermode=yes), and the TLS side of
 * the session's reads and writes.
 *
 * Invariants:
 * - STARTTLS replies 220, and only once that reply has left (session.c
 *   calls tls_session_begin() when s->out drains) does the handshake
 *   begin. Every plaintext byte buffered after the STARTTLS line has been
 *   dropped by then (session.c), and the session is reset as RFC 3207
 *   section 4.2 requires: no HELO, no transaction, no authentication.
 *   That is DESIGN.md invariant 6 (CVE-2011-0411).
 * - smtpd_tls_security_level=encrypt: every command but EHLO, HELO,
 *   STARTTLS, NOOP and QUIT gets "530 5.7.0 Must issue a STARTTLS command
 *   first" until TLS is up.
 * - The certificate and key are read in pre_init, while still root.
 *
 * Trusts: OpenSSL (util/tls.h) for the TLS protocol itself. TLS 1.2 is the
 * minimum (util/tls.c). No client certificates are asked for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/tls.h"
#include "mail/config.h"
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

int
cmd_starttls(struct session *s, const struct smtp_cmd *cmd)
{
	if (smtpd_conf.tls_ctx == NULL || smtpd_conf.tls_level == TLS_LEVEL_NONE) {
		reply(s, "502 5.5.1 Error: command not implemented");
		return -1;
	}
	if (s->tls != NULL) {
		reply(s, "554 5.5.1 Error: TLS already active");
		return -1;
	}
	if (cmd->arg_len != 0) {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		return -1;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	/* session.c drops the rest of s->in and starts the handshake once
	 * the 220 has been written. */
	s->tls_start = 1;
	return 0;
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

void
tls_session_begin(struct session *s)
{
	s->tls_start = 0;
	buf_reset(&s->in);
	session_forget(s);
	s->tls = tls_server_new(smtpd_conf.tls_ctx, s->fd);
	if (s->tls == NULL) {
		log_warnx("%s[%s]: cannot create TLS session", s->name, s->addr);
		session_close_now(s);
		return;
	}
	s->tls_want = LOOP_READ;
	s->where = smtpd_conf.tls_wrappermode ? "CONNECT" : "STARTTLS";
	tls_session_handshake(s);
}

void
tls_session_handshake(struct session *s)
{
	char *err = NULL;
	int r;

	r = tls_handshake(s->tls, &err);
	s->last_activity = loop_now_ms();
	if (r == TLS_WANT_READ) {
		s->tls_want = LOOP_READ;
		return;
	}
	if (r == TLS_WANT_WRITE) {
		s->tls_want = LOOP_WRITE;
		return;
	}
	if (r != 0) {
		log_info("SSL_accept error from %s[%s]: %s", s->name, s->addr,
		    err ? err : "unknown");
		free(err);
		session_close_now(s);
		return;
	}
	s->tls_up = 1;
	s->tls_want = 0;
	log_info("Anonymous TLS connection established from %s[%s]: %s",
	    s->name, s->addr, tls_describe(s->tls));
	/* Implicit TLS: only now the greeting. */
	if (smtpd_conf.tls_wrappermode)
		session_greet(s);
	if (!s->dead)
		session_process_more(s);
}

/* Map a tls_read/tls_write result for the session's I/O loop: data, or
 * EAGAIN with the event TLS waits for, or EIO. */
static ssize_t
tls_result(struct session *s, ssize_t r, const char *what)
{
	if (r >= 0) {
		s->tls_want = 0;
		return r;
	}
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		s->tls_want = r == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE;
		errno = EAGAIN;
		return -1;
	}
	log_debug("%s[%s]: TLS %s: %s", s->name, s->addr, what, tls_last_error(s->tls));
	errno = EIO;
	return -1;
}

ssize_t
session_io_read(struct session *s, void *p, size_t n)
{
	if (s->tls == NULL)
		return read(s->fd, p, n);
	return tls_result(s, tls_read(s->tls, p, n), "read");
}

ssize_t
session_io_write(struct session *s, const void *p, size_t n)
{
	if (s->tls == NULL)
		return write(s->fd, p, n);
	return tls_result(s, tls_write(s->tls, p, n), "write");
}

const char *
tls_session_describe(const struct session *s)
{
	return s->tls_up ? tls_describe(s->tls) : "";
}
