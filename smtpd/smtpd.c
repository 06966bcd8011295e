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
#include "mail/config.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "smtpd.h"

struct smtpd_conf smtpd_conf;

/* Parameters the config table may not know fall back to Postfix defaults. */
static const char *
conf_str(const char *name, const char *dflt)
{
	const char *v = config_get(name);

	return v != NULL ? v : dflt;
}

static long long
conf_int(const char *name, long long dflt)
{
	return config_get(name) != NULL ? config_int(name) : dflt;
}

static long long
conf_time_ms(const char *name, long long dflt_s)
{
	long long v = config_get(name) != NULL ? config_time(name) : dflt_s;

	return v < 0 ? dflt_s * 1000 : v * 1000;
}

static int
conf_bool(const char *name, int dflt)
{
	return config_get(name) != NULL ? config_bool(name) : dflt;
}

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

	c->myhostname = conf_str("myhostname", "localhost");
	c->banner = conf_str("smtpd_banner", c->myhostname);
	c->mail_name = conf_str("mail_name", "Postern");
	c->mynetworks = conf_str("mynetworks", "127.0.0.0/8 [::1]/128");
	c->queue_directory = conf_str("queue_directory", "/var/spool/postern");
	c->message_size_limit = conf_int("message_size_limit", 10240000);
	c->recipient_limit = conf_int("smtpd_recipient_limit", 1000);
	c->soft_error_limit = conf_int("smtpd_soft_error_limit", 10);
	c->hard_error_limit = conf_int("smtpd_hard_error_limit", 20);
	c->error_sleep_ms = conf_time_ms("smtpd_error_sleep_time", 1);
	c->timeout_ms = conf_time_ms("smtpd_timeout", 300);
	c->hopcount_limit = conf_int("hopcount_limit", 50);
	c->helo_required = conf_bool("smtpd_helo_required", 0);
	c->smtputf8_enable = conf_bool("smtputf8_enable", 1);
	c->disable_vrfy = conf_bool("disable_vrfy_command", 0);

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

	long long line = conf_int("line_length_limit", 2048);
	c->limits.line_length_limit = line < 512 ? 512 : (size_t)line;
	c->limits.params_max = 16;
	c->limits.max_size = c->message_size_limit;
	if (c->message_size_limit < 0)
		c->message_size_limit = c->limits.max_size = 0;
	if (c->timeout_ms <= 0)
		c->timeout_ms = 300 * 1000;

	if ((c->resolver = resolver_open(&err)) == NULL)
		log_fatalx("open recipient tables: %s", err ? err : "unknown error");
	smtpd_sasl_init();
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
	};

	return server_main(argc, argv, &ops);
}
