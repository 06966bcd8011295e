/*
 * milter_client - the MTA side of milters for one message: which milters
 * (smtpd_milters / non_smtpd_milters syntax) and, later, the conversation
 * and the edits it collects.
 *
 * This first part parses a milter list as Postfix writes it: entries
 * separated by white space or commas, each either "inet:host:port",
 * "inet:[v6addr]:port" or "unix:/path", or Postfix's per-milter form
 * "{ inet:host:port, connect_timeout=10s, command_timeout=..., 
 * content_timeout=..., default_action=accept|reject|tempfail|quarantine,
 * protocol=2|3|4|6 }" (milter_protocol's syntax, see proto/milter.h).
 * Settings not given in braces take the caller's
 * defaults (milter_connect_timeout etc., from the config table).
 */
#ifndef POSTERN_MILTER_CLIENT_H
#define POSTERN_MILTER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

enum milter_default {
	MILTER_DEF_ACCEPT,
	MILTER_DEF_REJECT,
	MILTER_DEF_TEMPFAIL,
	MILTER_DEF_QUARANTINE,
};

struct milter_spec {
	char *endpoint;          /* "inet:host:port" or "unix:/path", owned */
	int is_unix;
	char *host;              /* inet: host without brackets, owned */
	unsigned port;           /* inet: */
	char *path;              /* unix: owned */
	long long connect_timeout, command_timeout, content_timeout;
	enum milter_default default_action;
	int protocol;            /* version announced in OPTNEG */
	uint32_t steps;          /* step flags offered (milter_protocol_steps) */
};

/* Default macro lists: the seven SMFIM_* stages (proto/milter.h
 * MILTER_M_*), then the one for unknown SMTP commands, which has no
 * SMFIM_* stage (a milter cannot ask for its own). */
#define MILTER_MACRO_LISTS 8
#define MILTER_MACROS_UNKNOWN 7

/* Defaults for settings a list entry does not give. */
struct milter_spec_defaults {
	long long connect_timeout, command_timeout, content_timeout;
	enum milter_default default_action;
	int protocol;
	uint32_t steps;
};

/* "accept" ... "quarantine" -> *r; -1 when unknown. */
int milter_default_parse(const char *s, enum milter_default *r);
const char *milter_default_name(enum milter_default d);

/* Parse a list; *list_r (allocated, *n_r entries, NULL when empty) is
 * the caller's to free with milter_specs_free. -1 with *error_r (static
 * text) on any malformed entry: a list that cannot be read must not run
 * the mail unfiltered. */
int milter_list_parse(const char *list, const struct milter_spec_defaults *def,
    struct milter_spec **list_r, size_t *n_r, const char **error_r);
void milter_specs_free(struct milter_spec **list, size_t n);

/* A daemon's milters from the configuration: the list in parameter
 * param (smtpd_milters, non_smtpd_milters) with the milter_* defaults,
 * and the milter_*_macros lists (MILTER_MACRO_LISTS entries, borrowed
 * from the configuration). -1 with *error_r (static) on a bad
 * list, action or protocol: the daemon must not run unfiltered. */
int milter_config_load(const char *param, struct milter_spec **list_r,
    size_t *n_r, const char *defmacros[MILTER_MACRO_LISTS], const char **error_r);

/* The envelope of a message being queued, as milter edits change it. */
struct milter_envelope {
	char *sender;            /* without <>, "" for the null sender; owned */
	char *sender_args;       /* CHGFROM ESMTP args or NULL; owned */
	char **rcpts;            /* without <>; owned, nrcpt entries */
	char **rcpt_args;        /* per recipient: ADDRCPT_PAR args or NULL */
	size_t nrcpt;
	int hold;                /* QUARANTINE: the message goes on hold */
	char *hold_reason;       /* owned */
};

void milter_envelope_free(struct milter_envelope *env);
/* Apply CHGFROM, ADDRCPT, ADDRCPT_PAR, DELRCPT and QUARANTINE from e, in
 * order (header and body edits are milter_apply_headers' and the
 * caller's). Addresses may come with or without <>; DELRCPT removes every
 * recipient equal to its address (case-insensitive, as Postfix compares
 * the RCPT TO text). -1 with *error_r when an address is empty or holds
 * a control character, or when no recipient would be left: the caller
 * then follows the milter's default action rather than queueing an
 * envelope nobody can deliver (env may then be half changed: discard it). */
struct milter_edits;
int milter_apply_envelope(const struct milter_edits *e,
    struct milter_envelope *env, const char **error_r);

#endif
