/*
 * smtpd - the SMTP server: a SERVER_MULTI daemon under master, one process
 * serving many sessions from one event loop (session.c).
 *
 * This file is the thin main: it reads the settings once after privileges
 * are dropped, opens the resolver (the maps of resolve.h) and hands every
 * accepted connection to session_start(). On SIGTERM the skeleton stops
 * accepting; sessions in progress run to their end, then the process exits.
 * Limits: see smtpd.h for the parameters; a command line is never allowed
 * below RFC 5321's 512 octets.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "mail/bcc.h"
#include "smtpd.h"

struct smtpd_conf smtpd_conf;

/* Still root: the key file may be readable by root only. */
static void
smtpd_pre_init(void)
{
	smtpd_tls_init();
}

static void
smtpd_post_init(struct loop *l)
{
	struct smtpd_conf *c = &smtpd_conf;
	char *err = NULL;

	c->myhostname = config_str("myhostname");
	c->banner = config_str("smtpd_banner");
	c->mail_name = config_str("mail_name");
	c->mynetworks = config_str("mynetworks");
	c->queue_directory = config_str("queue_directory");
	c->message_size_limit = config_int("message_size_limit");
	c->recipient_limit = config_int("smtpd_recipient_limit");
	c->soft_error_limit = config_int("smtpd_soft_error_limit");
	c->hard_error_limit = config_int("smtpd_hard_error_limit");
	c->error_sleep_ms = config_time("smtpd_error_sleep_time") * 1000;
	c->timeout_ms = config_time("smtpd_timeout") * 1000;
	c->hopcount_limit = config_int("hopcount_limit");
	c->helo_required = config_bool("smtpd_helo_required");
	c->peername_lookup = config_bool("smtpd_peername_lookup");
	c->smtputf8_enable = config_bool("smtputf8_enable");
	c->disable_vrfy = config_bool("disable_vrfy_command");
	c->path_flags = config_bool("strict_rfc821_envelopes") ? 0 : ADDR_BARE_OK;
	c->soft_bounce = config_bool("soft_bounce") == 1;

	c->header_size_limit = config_int("header_size_limit");
	if (c->header_size_limit <= 0)
		log_fatalx("header_size_limit: must be a positive number");
	const char *bl = config_get("smtpd_forbid_bare_newline");
	if (strcasecmp(bl, "reject") == 0)
		c->bare_newline = BARE_LF_REJECT;
	else if (strcasecmp(bl, "normalize") == 0 || strcasecmp(bl, "yes") == 0
	    || strcasecmp(bl, "no") == 0)
		c->bare_newline = BARE_LF_NORMALIZE;
	else
		log_fatalx("smtpd_forbid_bare_newline: unknown value \"%s\" "
		    "(normalize, reject or no)", bl);
	c->bare_newline_exclusions = config_get("smtpd_forbid_bare_newline_exclusions");
	c->bare_newline_reject_code =
	    (int)config_int("smtpd_forbid_bare_newline_reject_code");
	if (c->bare_newline_reject_code < 500 || c->bare_newline_reject_code > 599)
		log_fatalx("smtpd_forbid_bare_newline_reject_code: not a 5XX code");
	c->discard_ehlo = strv_split_list(config_get("smtpd_discard_ehlo_keywords"));
	c->forbidden = strv_split_list(config_str("smtpd_forbidden_commands"));

	long long line = config_int("line_length_limit");
	c->limits.line_length_limit = line < 512 ? 512 : (size_t)line;
	c->limits.params_max = 16;
	c->limits.max_size = c->message_size_limit;
	if (c->message_size_limit < 0)
		c->message_size_limit = c->limits.max_size = 0;
	/* Postfix's rule: room for one and a half of the largest message
	 * unless queue_minfree asks for more. */
	long long minfree = config_int("queue_minfree");
	c->queue_minfree = minfree > 0 ? (unsigned long long)minfree : 0;
	if ((unsigned long long)c->message_size_limit / 2 * 3 > c->queue_minfree)
		c->queue_minfree = (unsigned long long)c->message_size_limit / 2 * 3;
	if (c->timeout_ms <= 0)
		c->timeout_ms = 300 * 1000;

	if ((c->resolver = resolver_open(&err)) == NULL)
		log_fatalx("open recipient tables: %s", err ? err : "unknown error");
	if ((c->bcc = bcc_open(&err)) == NULL)
		log_fatalx("%s", err);
	if (cc_tables_open(&c->cc, &err) < 0)
		log_fatalx("%s", err);
	c->reject_unlisted_sender = config_bool("smtpd_reject_unlisted_sender") == 1;
	smtpd_sasl_init();
	smtpd_restrict_init();
	smtpd_milter_init();
	txn_init(l);
}

int
smtpd_ehlo_offer(const char *keyword)
{
	return !strv_contains_ci(smtpd_conf.discard_ehlo, keyword);
}

static void
smtpd_conn(struct loop *l, int fd)
{
	session_start(l, fd);
}

static void
smtpd_drain(struct loop *l)
{
	log_debug("draining: %d session(s) left", server_clients());
	txn_drain();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.kind = SERVER_MULTI,
		.name = "smtpd",
		.pre_init = smtpd_pre_init,
		.post_init = smtpd_post_init,
		.conn = smtpd_conn,
		.drain = smtpd_drain,
		.busy = txn_busy,
		.process_count = "smtpd_process_count",
	};

	return server_main(argc, argv, &ops);
}
