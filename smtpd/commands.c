/*
 * commands - the SMTP command table and the verbs that are not part of a
 * mail transaction (HELO, EHLO, RSET, NOOP, QUIT, VRFY, HELP, EXPN; the
 * not-yet-implemented ETRN), and the framing of BDAT (txn.c takes the
 * chunk). STARTTLS is in starttls.c, AUTH in auth.c.
 *
 * BDAT: the chunk size is read before anything else about the command is
 * checked, so that every refusal (no CHUNKING, 530, 503, error limits)
 * still consumes the chunk as data: its octets are never run as commands.
 * A BDAT whose size cannot be read leaves no way to find the chunk's end:
 * 501 and the session is closed.
 * smtpd_discard_ehlo_keywords hides EHLO keywords; CHUNKING and BINARYMIME
 * are also switched off by it (BDAT gets 502, BODY=BINARYMIME 555).
 *
 * command_run() is the single place where a command line is parsed,
 * counted (for the disconnect log), checked against the verb's argument
 * rules and handed to its handler; a handler's -1 counts as a client error.
 * STARTTLS replies 220, discards the pipelined plaintext (conn_starttls)
 * and resets the session, per DESIGN.md invariant 6 (starttls.c).
 * With smtpd_tls_security_level=encrypt, verbs without
 * SMTP_VF_NO_TLS_CHECK get 530 before TLS.
 * Trusts: the line is bounded by the caller (line_length_limit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/conn.h"
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

static void ehlo_reply(struct session *s);

/* After smtpd_helo_restrictions (run here only with smtpd_delay_reject =
 * no; Postfix checks the new name before it takes it): a reject keeps
 * the previous HELO name, if any. */
static void
helo_checked(struct session *s, const struct smtpd_restrict_verdict *v,
    void *arg)
{
	int esmtp = arg != NULL;

	if (v->reply != NULL) {
		reply(s, "%s", v->reply);
		free(s->helo);
		s->helo = s->helo_prev;
		s->helo_prev = NULL;
		txn_check_finish(s, esmtp ? SMTP_EHLO : SMTP_HELO, -1);
		return;
	}
	xfree(&s->helo_prev);
	s->esmtp = esmtp;
	smtpd_milter_helo(s);
	if (esmtp)
		ehlo_reply(s);
	else
		reply(s, "250 %s", smtpd_conf.myhostname);
	txn_check_finish(s, esmtp ? SMTP_EHLO : SMTP_HELO, 0);
}

static int
helo_start(struct session *s, const struct smtp_cmd *cmd, int esmtp)
{
	static char yes;

	txn_reset(s);   /* RFC 5321 4.1.4: HELO/EHLO reset the transaction */
	free(s->helo_prev);
	s->helo_prev = s->helo;   /* the checks and their log see the new name */
	s->helo = xstrndup(cmd->arg, cmd->arg_len);
	return txn_check(s, SMTPD_CHECK_HELO, NULL, helo_checked,
	    esmtp ? &yes : NULL);
}

static int
cmd_helo(struct session *s, const struct smtp_cmd *cmd)
{
	return helo_start(s, cmd, 0);
}

static int
cmd_ehlo(struct session *s, const struct smtp_cmd *cmd)
{
	return helo_start(s, cmd, 1);
}

static void
ehlo_reply(struct session *s)
{
	char size[32];
	struct {
		const char *kw;
		const char *arg;   /* NULL: no argument */
		int on;
	} ext[] = {
		{ "PIPELINING", NULL, 1 },
		{ "SIZE", NULL, 1 },
		{ "STARTTLS", NULL, smtpd_conf.tls_ctx != NULL
		    && smtpd_conf.tls_level != TLS_LEVEL_NONE
		    && !conn_tls_active(s->conn) },
		{ "AUTH", NULL, sasl_offer(s) },
		{ "ENHANCEDSTATUSCODES", NULL, 1 },
		{ "8BITMIME", NULL, 1 },
		/* BINARYMIME needs BDAT (RFC 3030 section 3). */
		{ "BINARYMIME", NULL, smtpd_ehlo_offer("CHUNKING") },
		{ "DSN", NULL, 1 },
		{ "SMTPUTF8", NULL, smtpd_conf.smtputf8_enable },
		{ "CHUNKING", NULL, 1 },
	};
	size_t last = 0;

	snprintf(size, sizeof(size), "%lld", smtpd_conf.message_size_limit);
	ext[1].arg = smtpd_conf.message_size_limit > 0 ? size : NULL;
	if (ext[3].on)
		ext[3].arg = sasl_mechanisms();
	for (size_t i = 0; i < ARRAY_SIZE(ext); i++) {
		ext[i].on = ext[i].on && smtpd_ehlo_offer(ext[i].kw);
		if (ext[i].on)
			last = i + 1;
	}
	/* Every keyword discarded: the hostname line is the last one. */
	reply(s, "250%c%s", last ? '-' : ' ', smtpd_conf.myhostname);
	for (size_t i = 0; i < last; i++) {
		if (!ext[i].on)
			continue;
		reply(s, "250%c%s%s%s", i + 1 == last ? ' ' : '-', ext[i].kw,
		    ext[i].arg ? " " : "", ext[i].arg ? ext[i].arg : "");
	}
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

static int
cmd_bdat(struct session *s, const struct smtp_cmd *cmd)
{
	if (!smtpd_ehlo_offer("CHUNKING"))
		return cmd_not_implemented(s, cmd);
	return txn_bdat(s, cmd);
}

/* Before any check of a BDAT: how long is its chunk? 0, or -1 after 501
 * and with the session closing. */
static int
bdat_frame(struct session *s, const struct smtp_cmd *cmd)
{
	long long size;
	int last;

	if (smtp_bdat_args(cmd->arg, cmd->arg_len, &size, &last) < 0) {
		reply(s, "%s", smtp_verbs[SMTP_BDAT].syntax);
		log_info("bad BDAT syntax from %s[%s]: closing", s->name, s->addr);
		s->errors++;
		session_enter(s, SESS_QUIT);
		return -1;
	}
	s->chunk_left = s->chunk_size = size;
	s->chunk_last = last;
	s->chunk_discard = 1;   /* until txn_bdat takes it */
	return 0;
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
	[SMTP_BDAT] = { cmd_bdat, CMD_NO_ARGCHECK },
	[SMTP_ETRN] = { cmd_not_implemented, CMD_NO_ARGCHECK },
};

/* One scratch copy of the current line for the whole process: handlers run
 * to completion, and an idle session should not carry a line buffer. */
static struct buf linebuf = BUF_INIT(0);

/* Is the line's first word one of smtpd_forbidden_commands? */
static int
forbidden(const char *line)
{
	char **f;
	size_t n = strcspn(line, " \t");

	for (f = smtpd_conf.forbidden; f != NULL && *f != NULL; f++)
		if (strlen(*f) == n && strncasecmp(*f, line, n) == 0)
			return 1;
	return 0;
}

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
	if (v->verb == SMTP_UNKNOWN && forbidden(line)) {
		/* An HTTP request (a web page making a browser post to port
		 * 25): what follows may be SMTP commands in a form's body, so
		 * nothing more is read (Postfix's smtpd_forbidden_commands). */
		log_warnx("non-SMTP command from %s[%s]: %.100s", s->name, s->addr, line);
		reply(s, "221 2.7.0 Error: I can break rules, too. Goodbye.");
		session_enter(s, SESS_QUIT);
		return v;
	}
	if (v->verb == SMTP_UNKNOWN || c->fn == NULL) {
		smtpd_milter_unknown(s, line, "502 5.5.2 Error: command not recognized");
		s->errors++;
		return v;
	}
	s->where = v->name;
	if (v->verb == SMTP_BDAT && bdat_frame(s, &cmd) < 0)
		return v;
	if (s->access_denied != NULL && v->verb != SMTP_QUIT) {
		reply(s, "503 5.7.0 Error: access denied for %s[%s]", s->name, s->addr);
		s->errors++;
		return v;
	}
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
