/*
 * commands - the SMTP command table and the verbs that are not part of a
 * mail transaction (HELO, EHLO, RSET, NOOP, QUIT, VRFY, HELP, EXPN; the
 * not-yet-implemented BDAT, ETRN). STARTTLS is in starttls.c, AUTH in
 * auth.c.
 *
 * command_run() is the single place where a command line is parsed,
 * counted (for the disconnect log), checked against the verb's argument
 * rules and handed to its handler; a handler's -1 counts as a client error.
 * STARTTLS replies 220; session.c then discards s->in (pipelined
 * plaintext) and starttls.c resets the session, per DESIGN.md invariant 6.
 * With smtpd_tls_security_level=encrypt, verbs without
 * SMTP_VF_NO_TLS_CHECK get 530 before TLS.
 * Trusts: the line is bounded by the caller (line_length_limit).
 */
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"
#include "smtpd.h"

typedef int (*cmd_fn)(struct session *s, const struct smtp_cmd *cmd);

enum {
	CMD_NO_ARGCHECK = 1,   /* reply before complaining about syntax */
};

struct command {
	cmd_fn fn;
	unsigned flags;
};

static void
set_helo(struct session *s, const struct smtp_cmd *cmd, int esmtp)
{
	txn_reset(s);   /* RFC 5321 4.1.4: HELO/EHLO reset the transaction */
	free(s->helo);
	s->helo = xstrndup(cmd->arg, cmd->arg_len);
	s->esmtp = esmtp;
}

static int
cmd_helo(struct session *s, const struct smtp_cmd *cmd)
{
	set_helo(s, cmd, 0);
	reply(s, "250 %s", smtpd_conf.myhostname);
	return 0;
}

static int
cmd_ehlo(struct session *s, const struct smtp_cmd *cmd)
{
	set_helo(s, cmd, 1);
	reply(s, "250-%s", smtpd_conf.myhostname);
	reply(s, "250-PIPELINING");
	if (smtpd_conf.message_size_limit > 0)
		reply(s, "250-SIZE %lld", smtpd_conf.message_size_limit);
	else
		reply(s, "250-SIZE");
	if (smtpd_conf.tls_ctx != NULL && smtpd_conf.tls_level != TLS_LEVEL_NONE
	    && s->tls == NULL)
		reply(s, "250-STARTTLS");
	if (sasl_offer(s))
		reply(s, "250-AUTH %s", sasl_mechanisms());
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250-8BITMIME");
	if (smtpd_conf.smtputf8_enable)
		reply(s, "250-SMTPUTF8");
	reply(s, "250 DSN");
	return 0;
}

static int
cmd_rset(struct session *s, const struct smtp_cmd *cmd)
{
	txn_reset(s);
	reply(s, "250 2.0.0 Ok");
	return 0;
}

static int
cmd_noop(struct session *s, const struct smtp_cmd *cmd)
{
	reply(s, "250 2.0.0 Ok");
	return 0;
}

static int
cmd_quit(struct session *s, const struct smtp_cmd *cmd)
{
	reply(s, "221 2.0.0 Bye");
	session_enter(s, SESS_QUIT);
	return 0;
}

static int
cmd_vrfy(struct session *s, const struct smtp_cmd *cmd)
{
	if (smtpd_conf.disable_vrfy) {
		reply(s, "502 5.5.1 VRFY command is disabled");
		return -1;
	}
	/* Never confirm or deny: that would hand out the user list. */
	reply(s, "252 2.0.0 %.*s", (int)cmd->arg_len, cmd->arg);
	return 0;
}

static int
cmd_help(struct session *s, const struct smtp_cmd *cmd)
{
	reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
	return 0;
}

static int
cmd_not_implemented(struct session *s, const struct smtp_cmd *cmd)
{
	reply(s, "502 5.5.1 Error: command not implemented");
	return -1;
}

static const struct command commands[SMTP_VERB_COUNT] = {
	[SMTP_HELO] = { cmd_helo, 0 },
	[SMTP_EHLO] = { cmd_ehlo, 0 },
	[SMTP_MAIL] = { txn_mail, 0 },
	[SMTP_RCPT] = { txn_rcpt, 0 },
	[SMTP_DATA] = { txn_data, 0 },
	[SMTP_RSET] = { cmd_rset, 0 },
	[SMTP_NOOP] = { cmd_noop, 0 },
	[SMTP_QUIT] = { cmd_quit, 0 },
	[SMTP_VRFY] = { cmd_vrfy, 0 },
	[SMTP_HELP] = { cmd_help, 0 },
	[SMTP_EXPN] = { cmd_not_implemented, CMD_NO_ARGCHECK },
	[SMTP_STARTTLS] = { cmd_starttls, CMD_NO_ARGCHECK },
	[SMTP_AUTH] = { cmd_auth, 0 },
	[SMTP_BDAT] = { cmd_not_implemented, CMD_NO_ARGCHECK },
	[SMTP_ETRN] = { cmd_not_implemented, CMD_NO_ARGCHECK },
};

/* One scratch copy of the current line for the whole process: handlers run
 * to completion, and an idle session should not carry a line buffer. */
static struct buf linebuf = BUF_INIT(0);

const struct smtp_verb_info *
command_run(struct session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	const char *err;

	buf_reset(&linebuf);
	(void)buf_append(&linebuf, line, len);
	line = buf_cstr(&linebuf);
	log_debug("< %s[%s]: %s", s->name, s->addr, line);

	if (smtp_cmd_parse(line, len, &cmd, &err) != SMTP_DONE) {
		s->cmd_total[SMTP_UNKNOWN]++;
		reply(s, "%s", err);
		s->errors++;
		return NULL;
	}
	const struct smtp_verb_info *v = cmd.verb;
	const struct command *c = &commands[v->verb];
	s->cmd_total[v->verb]++;
	if (v->verb == SMTP_UNKNOWN || c->fn == NULL) {
		reply(s, "502 5.5.2 Error: command not recognized");
		s->errors++;
		return v;
	}
	s->where = v->name;
	if (tls_required_reply(s, v)) {
		s->errors++;
		return v;
	}
	if (!(c->flags & CMD_NO_ARGCHECK) && smtp_cmd_args_ok(&cmd, &err) < 0) {
		reply(s, "%s", err);
		s->errors++;
		return v;
	}
	if ((v->flags & SMTP_VF_TXN) && smtpd_conf.helo_required && s->helo == NULL) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		s->errors++;
		return v;
	}
	int rc = c->fn(s, &cmd);
	if (rc == 0)
		s->cmd_ok[v->verb]++;
	else if (rc < 0)
		s->errors++;
	return v;
}
