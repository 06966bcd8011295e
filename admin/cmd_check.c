/*
 * cmd_check - "postern check": validate the whole installation and say
 * what is wrong and how to fix it (Postfix's "postfix check").
 *
 * Checks, in order: postern.conf (syntax, typed values), master.conf,
 * the mail_owner account, daemon_directory and every program master.conf
 * names, the lookup tables the configuration uses (lmdb:/path must have
 * a /path.lmdb not older than /path), queue_directory and its
 * sub-directories and files (owner, mode), the login directory (the
 * pre-login processes' chroot: root, group login_user, 0750, sockets
 * only) and login_user, data_directory, and the permissions of the
 * configuration files.
 *
 * One line per problem on stderr, "postern: error: ..." or "postern:
 * warning: ...", each with a fix. Exit 0 when there is no error (warnings
 * allowed), 78 (EX_CONFIG) otherwise; 64 for bad usage. Nothing is
 * changed. Limits: at most FILES_CHECKED_MAX files per queue directory
 * are looked at, and FILE_PROBLEMS_MAX reported.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/net.h"
#include "util/priv.h"
#include "util/strv.h"
#include "util/tls.h"
#include "mail/cchecks.h"
#include "mail/config.h"
#include "mail/tlspolicy.h"
#include "mail/restrict.h"
#include "mail/mastercf.h"
#include "mail/milter_client.h"
#include "mail/queue.h"
#include "mail/maps.h"
#include "proto/milter.h"
#include "sieve/sieve.h"
#include "admin.h"

#define FILES_CHECKED_MAX 10000
#define FILE_PROBLEMS_MAX 5

static int nerrors, nwarnings;
static int quiet_warnings;   /* start and reload: errors only */

static void PRINTF_LIKE(1, 2)
error(const char *fmt, ...)
{
	va_list ap;

	fputs("postern: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	nerrors++;
}

static void PRINTF_LIKE(1, 2)
warning(const char *fmt, ...)
{
	va_list ap;

	nwarnings++;
	if (quiet_warnings)
		return;
	fputs("postern: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}


/*
 * Lookup tables.
 */

/* Parameters whose values may name tables ("type:name"); plain words in
 * them (domain names) are not tables. Unknown names are skipped. */
static const char *const table_params[] = {
	"alias_maps", "alias_database", "local_recipient_maps", "transport_maps",
	"virtual_alias_maps", "virtual_alias_domains", "virtual_mailbox_maps",
	"virtual_mailbox_domains", "virtual_uid_maps", "virtual_gid_maps",
	"mydestination", "relay_domains", "relay_recipient_maps",
	"canonical_maps", "sender_canonical_maps", "recipient_canonical_maps",
	"relocated_maps", "smtpd_sender_login_maps", "smtp_tls_policy_maps",
	"sender_dependent_relayhost_maps", "smtp_sasl_password_maps",
	"sender_bcc_maps", "recipient_bcc_maps", "header_checks",
	"mime_header_checks", "nested_header_checks", "body_checks",
	NULL,
};

static void
check_lmdb(const char *param_name, const char *spec)
{
	const char *src = spec + 5;
	struct stat sst, dst;
	char *db;
	int have_src;

	if (*src != '/') {
		error("%s: table %s: the name must be an absolute path; fix: write "
		    "lmdb:/full/path in postern.conf", param_name, spec);
		return;
	}
	db = xasprintf("%s.lmdb", src);
	have_src = stat(src, &sst) == 0;
	if (stat(db, &dst) < 0) {
		if (have_src)
			error("%s: table %s: %s does not exist; fix: run: postern map "
			    "build %s", param_name, spec, db, spec);
		else
			error("%s: table %s: neither %s nor its source %s exists; fix: "
			    "create %s (\"key value\" lines) and run: postern map build %s",
			    param_name, spec, db, src, src, spec);
	} else if (!S_ISREG(dst.st_mode)) {
		error("%s: table %s: %s is not a regular file", param_name, spec, db);
	} else if (have_src && sst.st_mtime > dst.st_mtime) {
		warning("%s: table %s: %s is older than its source %s; fix: run: "
		    "postern map build %s", param_name, spec, db, src, spec);
	}
	free(db);
}

static int
is_text_table(const char *spec)
{
	static const char *const types[] = { "cidr:", "regexp:", "pcre:",
	    "texthash:", "inline:" };
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strncmp(spec, types[i], strlen(types[i])) == 0)
			return 1;
	return 0;
}

struct action_check {
	const char *param, *spec;
};

/* A content check's result must be an action Postern carries out: one
 * it would only log would look like protection and be none. */
static int
check_action(const char *result, void *ctx)
{
	const struct action_check *a = ctx;
	const char *why = cchecks_action_ok(result);

	if (why != NULL)
		error("%s: table %s: \"%s\": %s; fix: use REJECT, DISCARD, HOLD, "
		    "WARN, INFO, IGNORE, PREPEND, REPLACE, REDIRECT, BCC, DUNNO or OK "
		    "(see postern.conf(5), header_checks)", a->param, a->spec, result, why);
	return 0;
}

/* A table read from text must load now: the daemons would otherwise run
 * with it failing every lookup temporarily. */
static void
check_text(const char *param_name, const char *spec)
{
	struct map *m;
	char *err = NULL;

	if (strncmp(spec, "inline:", 7) != 0 && strchr(spec, ':')[1] != '/') {
		error("%s: table %s: the name must be an absolute path; fix: write "
		    "type:/full/path in postern.conf", param_name, spec);
		return;
	}
	if ((m = map_open(spec, &err)) == NULL) {
		error("%s: table %s: %s", param_name, spec, err ? err : "open failed");
		free(err);
		return;
	}
	for (int i = 0; i < CC_NCLASS; i++)
		if (strcmp(param_name, cchecks_param[i]) == 0) {
			struct action_check a = { param_name, spec };
			(void)map_foreach_result(m, check_action, &a);
		}
	map_close(&m);
}

static void
check_tables(void)
{
	char **seen = NULL, **v;
	const char *val;
	size_t i, j;

	for (i = 0; table_params[i] != NULL; i++) {
		val = config_get(table_params[i]);
		if (val == NULL || *val == '\0')
			continue;
		v = map_split_list(val);
		for (j = 0; v != NULL && v[j] != NULL; j++) {
			const char *spec = v[j];

			if (strchr(spec, ':') == NULL || strv_contains_ci(seen, spec))
				continue;
			strv_push(&seen, spec);
			if (strncmp(spec, "lmdb:", 5) == 0)
				check_lmdb(table_params[i], spec);
			else if (strncmp(spec, "static:", 7) == 0 ||
			    strcmp(spec, "unix:passwd.byname") == 0)
				continue;
			else if (is_text_table(spec))
				check_text(table_params[i], spec);
			else
				error("%s: table %s: unsupported table type; fix: use "
				    "lmdb:, cidr:, regexp:, pcre:, texthash:, inline:{...}, "
				    "static: or unix:passwd.byname (see postern-tables(5))",
				    table_params[i], spec);
		}
		strv_free(&v);
	}
	strv_free(&seen);
}

/*
 * Security settings.
 */

/* Postfix parameters an administrator sets for protection that Postern
 * does not implement yet. Set to anything but empty or "no", each is an
 * error: a configuration that looks protected and is not is worse than
 * one that refuses to start. */
static const char *const unimplemented_params[] = {
	"check_client_access", "postscreen_access_list", "postscreen_dnsbl_sites",
	"smtpd_authorized_xclient_hosts", "smtpd_authorized_xforward_hosts",
	"smtpd_client_auth_rate_limit",
	"smtpd_client_connection_count_limit", "smtpd_client_connection_rate_limit",
	"smtpd_client_message_rate_limit", "smtpd_client_new_tls_session_rate_limit",
	"smtpd_client_recipient_rate_limit", "smtpd_etrn_restrictions",
	"smtpd_tls_ask_ccert", "smtpd_tls_req_ccert",
	"smtpd_tls_CAfile", "smtpd_tls_CApath",
	NULL,
};

static int
unimplemented(const char *name)
{
	return words_contain_ci(unimplemented_params, name);
}

/* Set to something that would protect: not empty, not "no", and for the
 * smtpd_client_*_limit counters not 0 (Postfix's "no limit"). */
static int
unimplemented_set(const char *name, const char *v)
{
	if (v == NULL || *v == '\0' || strcasecmp(v, "no") == 0)
		return 0;
	if (strncmp(name, "smtpd_client_", 13) == 0 &&
	    strcmp(name + strlen(name) - 6, "_limit") == 0 && strcmp(v, "0") == 0)
		return 0;
	return 1;
}

static void
error_unimplemented(const char *where, const char *name, const char *value)
{
	error("%s%s = %s: Postern does not implement %s yet, so it would not "
	    "protect you; fix: remove it%s", where, name, value, name,
	    *where != '\0' ? "" : " from postern.conf");
}

/* A milter list (postern.conf or a master.conf -o override): one that
 * does not parse would stop smtpd, a milter silently dropped would let
 * mail through unfiltered. */
static void
check_milter_list(const char *where, const char *name, const char *v)
{
	struct milter_spec_defaults d = { 30, 30, 300, MILTER_DEF_TEMPFAIL, 6,
	    MILTER_P_ALL };
	struct milter_spec *specs = NULL;
	const char *err = NULL;
	size_t n = 0;

	if (milter_list_parse(v != NULL ? v : "", &d, &specs, &n, &err) < 0)
		error("%s%s = %s: %s; fix: list milters as inet:host:port or "
		    "unix:/path, optionally as { inet:host:port, "
		    "default_action=accept, ... }", where, name, v, err);
	milter_specs_free(&specs, n);
}

/* smtpd_milters and the milter_* settings. */
static void
check_milters(void)
{
	static const char *const lists[] = { "smtpd_milters", "non_smtpd_milters",
	    NULL };
	struct milter_spec_defaults d;
	const char *v = config_get("milter_default_action");
	const char *proto = config_get("milter_protocol"), *err = NULL;

	if (v != NULL && milter_default_parse(v, &d.default_action) < 0)
		error("milter_default_action = %s: unknown action; fix: accept, "
		    "reject, tempfail or quarantine", v);
	if (proto != NULL && milter_protocol_parse(proto, &d.protocol, &d.steps,
	    &err) < 0)
		error("milter_protocol = %s: %s; fix: 6", proto, err);
	for (size_t i = 0; lists[i] != NULL; i++)
		check_milter_list("", lists[i], config_get(lists[i]));
}

static void
check_security(void)
{
	const char *v;
	size_t i;

	for (i = 0; unimplemented_params[i] != NULL; i++) {
		v = config_get(unimplemented_params[i]);
		if (unimplemented_set(unimplemented_params[i], v))
			error_unimplemented("", unimplemented_params[i], v);
	}
	/* In Debian's default main.cf: a cache, no protection, so a warning
	 * that it is not used rather than a refusal to start. */
	for (i = 0; i < 2; i++) {
		const char *p = i == 0 ? "smtpd_tls_session_cache_database"
		    : "smtp_tls_session_cache_database";
		if (*(v = config_str(p)) != '\0')
			warning("%s = %s: not used: Postern has no tlsmgr; %s; fix: "
			    "remove it", p, v, i == 0 ? "smtpd's TLS sessions resume "
			    "through tickets shared by every smtpd process" : "each smtp "
			    "process keeps its TLS sessions in memory "
			    "(smtp_tls_session_cache_timeout)");
	}
	/* Older hardening guides set it; Postfix 3.6 and later ignore it too. */
	v = config_str("smtpd_tls_eecdh_grade");
	if (strcasecmp(v, "auto") != 0)
		warning("smtpd_tls_eecdh_grade = %s: ignored, as by Postfix 3.6 and "
		    "later: the key exchange groups are OpenSSL's defaults (Postfix's "
		    "\"auto\"); fix: remove it", v);
	/* The restriction lists, parsed as smtpd parses them at start. */
	{
		struct restrict_set set;
		char *err = NULL;

		memset(&set, 0, sizeof(set));
		restrict_settings_default(&set.st);
		for (i = 0; i < RS_STAGES; i++) {
			if (restrict_parse((enum restrict_stage)i,
			    config_get(restrict_param[i]), &set.list[i], &err) < 0) {
				error("%s; fix: use the entries listed in postern.conf(5) "
				    "(Postern refuses what it does not implement)", err);
				free(err);
				err = NULL;
			}
		}
		if (restrict_parse_classes(&set, &err) < 0) {
			error("%s; fix: list in smtpd_restriction_classes only names "
			    "set to a restriction list", err);
			free(err);
			err = NULL;
		}
		if (restrict_set_check_relay(&set, &err) < 0) {
			error("%s; fix: end smtpd_relay_restrictions with "
			    "reject_unauth_destination or defer_unauth_destination", err);
			free(err);
		}
		restrict_set_free(&set);
	}
	v = config_get("mynetworks");
	{
		char *err = NULL;

		if (net_cidr_match(NULL, v != NULL ? v : "", &err) < 0) {
			error("mynetworks: %s; fix: write addresses or CIDR blocks "
			    "(127.0.0.0/8 [::1]/128), separated by spaces or commas", err);
			free(err);
		}
	}
}

/* Is name "<spawn service>_time_limit" for a spawn service of svcs? */
static int
spawn_time_limit_name(const char *name, const struct master_service *svcs,
    size_t n)
{
	size_t len = strlen(name), suf = strlen("_time_limit");

	if (len <= suf || strcmp(name + len - suf, "_time_limit") != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(svcs[i].command, "spawn") == 0
		    && strlen(svcs[i].name) == len - suf
		    && strncmp(svcs[i].name, name, len - suf) == 0)
			return 1;
	return 0;
}

/* spawn(8) lines: "user=NAME argv=/path [args]" where NAME is not root,
 * the command exists, and spawn can become NAME (unpriv n); spawn
 * itself refuses the same at start, but only when a client connects. */
static void
check_spawn(const char *path, const struct master_service *svcs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct master_service *sv = &svcs[i];
		const char *user = NULL, *cmd = NULL;
		char where[300];

		if (strcmp(sv->command, "spawn") != 0)
			continue;
		snprintf(where, sizeof(where), "%s:%d: service %s", path, sv->lineno,
		    sv->name);
		for (size_t j = 0; sv->args != NULL && sv->args[j] != NULL; j++) {
			if (strcmp(sv->args[j], "-o") == 0 && sv->args[j + 1] != NULL) {
				j++;
				continue;
			}
			if (strncmp(sv->args[j], "user=", 5) == 0)
				user = sv->args[j] + 5;
			else if (strncmp(sv->args[j], "argv=", 5) == 0) {
				cmd = sv->args[j] + 5;
				break;
			}
		}
		if (user == NULL || *user == '\0')
			error("%s: spawn without user=; fix: add user=NAME (an "
			    "unprivileged account, e.g. nobody)", where);
		else {
			uid_t uid;
			gid_t gid;
			if (priv_user(user, &uid, &gid) < 0)
				error("%s: user=%s: no such user; fix: name an existing "
				    "unprivileged account", where, user);
			else if (uid == 0)
				error("%s: user=%s is root; fix: spawn never runs a command "
				    "as root, name an unprivileged account", where, user);
		}
		if (cmd == NULL || cmd[0] != '/')
			error("%s: spawn without argv=/absolute/path; fix: end the line "
			    "with argv=/path/to/command [arguments]", where);
		else if (access(cmd, X_OK) < 0)
			error("%s: argv=%s: %s; fix: install the command or correct "
			    "the path", where, cmd, strerror(errno));
		if (sv->unpriv && priv_is_root())
			error("%s: spawn with unpriv y cannot become user=; fix: put n "
			    "in the unpriv column", where);
		if (strcmp(sv->type, "inet") == 0)
			error("%s: spawn on an inet socket; fix: use a unix service "
			    "(check_policy_service unix:private/%s)", where, sv->name);
		char *tl = xasprintf("%s_time_limit", sv->name);
		const char *v = config_get(tl);
		if (v != NULL && config_parse_time(v, 's') < 0)
			error("%s: %s = %s is not a time; fix: write 3600s, 60m, 1h...",
			    path, tl, v);
		free(tl);
	}
}

/* master.conf "-o name=value" overrides: known names and good values, as
 * for postern.conf; a misspelled name would silently not apply. */
static void
check_overrides(const char *path, const struct master_service *svcs, size_t n)
{
	char where[300], *name, *eq, *err = NULL;
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; svcs[i].args != NULL && svcs[i].args[j] != NULL; j++) {
			if (strcmp(svcs[i].args[j], "-o") != 0 || svcs[i].args[j + 1] == NULL)
				continue;
			name = xstrdup(svcs[i].args[++j]);
			eq = strchr(name, '=');
			if (eq != NULL)
				*eq++ = '\0';
			snprintf(where, sizeof(where), "%s:%d: service %s: -o ", path,
			    svcs[i].lineno, svcs[i].name);
			if (eq == NULL)
				;       /* mastercf_load refused it already */
			else if (unimplemented(name) && unimplemented_set(name, eq))
				error_unimplemented(where, name, eq);
			else if (strcmp(name, "smtpd_milters") == 0
			    || strcmp(name, "non_smtpd_milters") == 0)
				check_milter_list(where, name, eq);
			else if (spawn_time_limit_name(name, svcs, n)) {
				if (config_parse_time(eq, 's') < 0)
					error("%s%s=%s is not a time; fix: write 3600s, 60m, "
					    "1h...", where, name, eq);
			}
			else if (config_check_value(name, eq, &err) < 0) {
				error("%s%s; fix: correct the override (\"postern conf -d\" "
				    "lists the parameters)", where, err);
				xfree(&err);
			}
			free(name);
		}
	}
}

/*
 * TLS certificates. A daemon that needs TLS and cannot load its
 * certificate exits at start (and master restarts it, again and again);
 * one that may do without it goes on without TLS. Both are found here,
 * before start, with the loader the daemons use.
 */

/* name's value for service s: its -o override, else postern.conf's. */
static const char *
svc_value(const struct master_service *s, const char *name)
{
	size_t len = strlen(name), j;

	for (j = 0; s->args != NULL && s->args[j] != NULL; j++)
		if (strcmp(s->args[j], "-o") == 0 && s->args[j + 1] != NULL &&
		    strncmp(s->args[j + 1], name, len) == 0 && s->args[j + 1][len] == '=')
			return s->args[j + 1] + len + 1;
	return config_str(name);
}

static const char *
svc_param(const char *name, const void *svc)
{
	return svc_value(svc, name);
}

/* A service's protocol and cipher settings, tried on ctx as the daemon
 * will (a cipher list OpenSSL cannot use stops it at start). */
static void
check_tls_settings(const char *where, const char *side, int mandatory,
    const struct master_service *s, struct tls_ctx *ctx)
{
	struct tls_settings ts;
	char *err = NULL;

	if (tls_settings_get(side, mandatory, svc_param, s, &ts, &err) < 0 ||
	    tls_ctx_settings(ctx, ts.versions, ts.ciphers, &err) < 0)
		error("%s: %s TLS: %s: the service would not start; fix: see "
		    "%s_tls_%sprotocols and %s_tls_%sciphers in postern.conf(5)", where,
		    mandatory ? "mandatory" : "opportunistic", err ? err : "?", side,
		    mandatory ? "mandatory_" : "", side, mandatory ? "mandatory_" : "");
	tls_settings_free(&ts);
	free(err);
}

static void
check_tls(const char *path, const struct master_service *svcs, size_t n)
{
	static const struct { const char *command, *prefix; } kinds[] = {
		{ "smtpd", "smtpd" }, { "imap-login", "imapd" },
		{ "pop3-login", "pop3d" }, { "managesieve-login", "managesieve" },
	};
	char p_cert[64], p_key[64], p_wrap[64], where[300], *err = NULL;
	struct tls_ctx *ctx;
	size_t i, k;

	for (i = 0; i < n; i++) {
		const struct master_service *s = &svcs[i];
		const char *cert, *key, *level = "";
		int required;

		if (strcmp(s->command, "smtp") == 0) {
			snprintf(where, sizeof(where), "%s:%d: service %s", path,
			    s->lineno, s->name);
			const char *cafile = svc_value(s, "smtp_tls_CAfile");
			const char *capath = svc_value(s, "smtp_tls_CApath");

			if ((ctx = tls_client_ctx_new(cafile, capath, &err)) != NULL) {
				check_tls_settings(where, "smtp", 0, s, ctx);
				check_tls_settings(where, "smtp", 1, s, ctx);
				tls_ctx_free(&ctx);
			} else {
				/* smtp goes on without TLS: "may" would then
				 * send in plain text. */
				error("%s: cannot load smtp_tls_CAfile %s or smtp_tls_CApath "
				    "%s: %s; the SMTP client would run without TLS; fix: "
				    "point them at a readable PEM bundle and a hashed "
				    "directory, or leave them empty for the system's", where,
				    *cafile ? cafile : "(none)", *capath ? capath : "(none)",
				    err ? err : "?");
			}
			xfree(&err);
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(kinds); k++)
			if (strcmp(s->command, kinds[k].command) == 0)
				break;
		if (k == ARRAY_SIZE(kinds))
			continue;
		snprintf(p_cert, sizeof(p_cert), "%s_tls_cert_file", kinds[k].prefix);
		snprintf(p_key, sizeof(p_key), "%s_tls_key_file", kinds[k].prefix);
		snprintf(p_wrap, sizeof(p_wrap), "%s_tls_wrappermode", kinds[k].prefix);
		snprintf(where, sizeof(where), "%s:%d: service %s", path, s->lineno, s->name);
		cert = svc_value(s, p_cert);
		key = svc_value(s, p_key);
		required = strcasecmp(svc_value(s, p_wrap), "yes") == 0;
		if (k == 0) {
			level = svc_value(s, "smtpd_tls_security_level");
			required |= strcasecmp(level, "encrypt") == 0;
			if (!required && strcasecmp(level, "may") != 0)
				continue;   /* no TLS: the files are not used */
		}
		if (*cert == '\0' || *key == '\0') {
			if (required)
				error("%s: TLS is required (%s) but %s or %s is not set; "
				    "fix: set both to the PEM certificate chain and key",
				    where, strcasecmp(level, "encrypt") == 0 ?
				    "smtpd_tls_security_level = encrypt" : p_wrap, p_cert, p_key);
			continue;
		}
		if ((ctx = tls_server_ctx_new(cert, key, &err)) != NULL) {
			if (k == 0)
				check_tls_settings(where, "smtpd", required, s, ctx);
			if (k == 0 && tls_server_dh(ctx, svc_value(s,
			    "smtpd_tls_dh1024_param_file"), &err) < 0)
				error("%s: smtpd_tls_dh1024_param_file: %s: the service "
				    "would not start; fix: a PEM file of at least 2048-bit "
				    "DH parameters (openssl dhparam -out FILE 2048), or "
				    "leave it empty", where, err);
			xfree(&err);
			tls_ctx_free(&ctx);
			continue;
		}
		/* The daemons load them as root: an ordinary user's check may
		 * just not be allowed to read the key. */
		if (!required || (geteuid() != 0 && (access(key, R_OK) < 0 ||
		    access(cert, R_OK) < 0) && errno == EACCES))
			warning("%s: cannot load %s and %s: %s; it %s; fix: point them "
			    "at a readable PEM chain and its key", where, cert, key,
			    err ? err : "?", required ? "may fail to start (run postern "
			    "check as root to know)" : "would run without TLS");
		else
			error("%s: cannot load %s and %s: %s, and TLS is required: it "
			    "would not start; fix: point them at a readable PEM chain "
			    "and its key", where, cert, key, err ? err : "?");
		xfree(&err);
	}
}

/*
 * Users, programs, directories.
 */

struct owner {
	int known;       /* we know who must own the queue */
	uid_t uid;
	gid_t gid;
	const char *name;
	char *name_buf;  /* name when we made it (freed by check_run) */
};

static void
check_owner(struct owner *o)
{
	const char *name = config_str("mail_owner");
	const char *qdir = config_str("queue_directory");
	struct passwd *pw;
	int root = priv_is_root();

	o->name = name;
	o->name_buf = NULL;
	o->known = 0;
	if (priv_user(name, &o->uid, &o->gid) < 0) {
		if (root)
			error("mail_owner \"%s\" does not exist; fix: useradd --system "
			    "--home-dir %s --shell /usr/sbin/nologin %s", name, qdir, name);
		else
			warning("mail_owner \"%s\" does not exist (needed when Postern "
			    "runs as root); fix: useradd --system --home-dir %s --shell "
			    "/usr/sbin/nologin %s", name, qdir, name);
	} else if (o->uid == 0) {
		error("mail_owner \"%s\" has uid 0; it must be an unprivileged "
		    "account of its own; fix: set mail_owner = postern in %s/postern.conf",
		    name, config_dir());
		return;
	} else {
		if (o->gid == 0)
			warning("mail_owner \"%s\" has group root; fix: give it a group "
			    "of its own (usermod -g %s %s)", name, name, name);
		pw = getpwuid(o->uid);
		if (pw != NULL && strcmp(pw->pw_name, name) != 0)
			warning("mail_owner \"%s\" shares uid %d with \"%s\"; fix: give "
			    "the mail owner an account of its own", name, (int)o->uid,
			    pw->pw_name);
		if (root)
			o->known = 1;
	}
	if (!root) {
		/* Privilege separation is off: the instance runs as us. */
		o->uid = getuid();
		o->gid = getgid();
		pw = getpwuid(o->uid);
		o->name_buf = pw != NULL ? xstrdup(pw->pw_name) : xasprintf("%d", (int)o->uid);
		o->name = o->name_buf;
		o->known = 1;
	}
}

static void
check_program(const char *dir, const char *prog, const char *what)
{
	char *path = xasprintf("%s/%s", dir, prog);

	if (access(path, X_OK) < 0)
		error("%s: program %s %s; fix: install Postern's daemons there "
		    "(cmake --install) or set daemon_directory in %s/postern.conf",
		    what, path, errno == ENOENT ? "does not exist" : "is not executable",
		    config_dir());
	free(path);
}

static void
check_services(const char *daemon_dir, struct master_service *svcs, size_t n)
{
	struct stat st;
	char what[256];
	size_t i;

	if (stat(daemon_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		error("daemon_directory %s %s; fix: install Postern (cmake --install) "
		    "or set daemon_directory in %s/postern.conf", daemon_dir,
		    errno == ENOENT ? "does not exist" : "is not a directory", config_dir());
		return;
	}
	check_program(daemon_dir, "master", "the master");
	for (i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "master.conf:%d: service %s", svcs[i].lineno,
		    svcs[i].name);
		check_program(daemon_dir, svcs[i].command, what);
	}
}

static const struct {
	const char *name;
	mode_t mode;
	int holds_files;
} queue_subdirs[] = {
	{ QUEUE_INCOMING, 0700, 1 },
	{ QUEUE_ACTIVE, 0700, 1 },
	{ QUEUE_DEFERRED, 0700, 1 },
	{ QUEUE_HOLD, 0700, 1 },
	{ QUEUE_CORRUPT, 0700, 1 },
	{ QUEUE_BOUNCE, 0700, 1 },
	{ QUEUE_DEFER, 0700, 1 },
	{ QUEUE_PRIVATE, 0700, 0 },
	{ QUEUE_PUBLIC, 0711, 0 },
	{ QUEUE_MAILDROP, 01733, 0 },
};

static const char *
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %d", (int)uid);
	return buf;
}

static void
check_files(const char *dir, const struct owner *o)
{
	struct dirent *de;
	struct stat st;
	char who[64];
	size_t seen = 0, bad = 0;
	DIR *d = opendir(dir);

	if (d == NULL) {
		error("cannot read %s: %s; fix: run postern check as root", dir,
		    strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL && seen < FILES_CHECKED_MAX) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		seen++;
		if (!S_ISREG(st.st_mode)) {
			if (++bad <= FILE_PROBLEMS_MAX)
				error("%s/%s is not a regular file; fix: remove it", dir,
				    de->d_name);
			continue;
		}
		if (st.st_uid != o->uid) {
			if (++bad <= FILE_PROBLEMS_MAX)
				error("%s/%s is owned by %s, not by %s; fix: chown %s: %s/%s "
				    "(or for the whole queue: chown -R %s: %s)", dir,
				    de->d_name, user_name(st.st_uid, who, sizeof(who)), o->name,
				    o->name, dir, de->d_name, o->name, dir);
		}
	}
	closedir(d);
	if (bad > FILE_PROBLEMS_MAX)
		error("%s: %zu more files with problems; fix: chown -R %s: %s", dir,
		    bad - FILE_PROBLEMS_MAX, o->name, dir);
}

/* Can uid/gid search directory st (the x bit that applies to them)? */
static int
searchable(const struct stat *st, uid_t uid, gid_t gid)
{
	if (uid == 0)
		return 1;
	if (st->st_uid == uid)
		return (st->st_mode & S_IXUSR) != 0;
	if (st->st_gid == gid)
		return (st->st_mode & S_IXGRP) != 0;
	return (st->st_mode & S_IXOTH) != 0;
}

/* Every directory on the way to queue_directory must let the mail owner
 * through, and where the path stops existing, postern start must be able
 * to create the rest; otherwise every daemon fails at its first chdir. */
static void
check_reach(const char *qdir, const struct owner *o)
{
	char *path = xstrdup(qdir), *slash;
	struct stat st;

	if (*path != '/') {
		error("queue_directory %s is not an absolute path; fix: set "
		    "queue_directory = /var/spool/postern in %s/postern.conf", qdir,
		    config_dir());
		free(path);
		return;
	}
	for (slash = path; slash != NULL; slash = strchr(slash + 1, '/')) {
		char *prefix = slash == path ? xstrdup("/") :
		    xstrndup(path, (size_t)(slash - path));

		if (stat(prefix, &st) < 0) {
			char *parent = slash == path ? xstrdup("/") :
			    xstrndup(path, (size_t)(strrchr(prefix, '/') - prefix));

			if (errno != ENOENT)
				error("queue_directory %s: %s: %s", qdir, prefix, strerror(errno));
			else if (access(*parent != '\0' ? parent : "/", W_OK) < 0)
				error("queue_directory %s cannot be created: %s does not exist "
				    "and %s is not writable; fix: create it or choose another "
				    "queue_directory", qdir, prefix, *parent != '\0' ? parent : "/");
			free(parent);
			free(prefix);
			break;
		}
		if (!S_ISDIR(st.st_mode)) {
			error("queue_directory %s: %s is not a directory; fix: choose "
			    "another queue_directory", qdir, prefix);
			free(prefix);
			break;
		}
		if (o->known && !searchable(&st, o->uid, o->gid))
			error("queue_directory %s: mail_owner %s cannot reach it: %s has "
			    "mode %04o; fix: chmod o+x %s", qdir, o->name, prefix,
			    (unsigned)(st.st_mode & 07777), prefix);
		free(prefix);
	}
	free(path);
}

/* A directory postern start makes: 0 and *st, or -1 once reported. */
static int
lstat_dir(const char *path, struct stat *st)
{
	if (lstat(path, st) < 0) {
		if (errno == ENOENT)
			warning("%s does not exist; fix: postern start creates it", path);
		else
			error("%s: %s; fix: run postern check as root", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st->st_mode)) {
		error("%s is not a directory; fix: remove it and run postern start", path);
		return -1;
	}
	return 0;
}

static void
check_queue(const struct owner *o)
{
	const char *qdir = config_str("queue_directory");
	struct stat st;
	char *path, who[64];
	size_t i;
	mode_t mode;

	check_reach(qdir, o);
	if (stat(qdir, &st) < 0) {
		if (errno == ENOENT)
			warning("queue_directory %s does not exist; fix: postern start "
			    "creates it", qdir);
		else
			error("queue_directory %s: %s", qdir, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		error("queue_directory %s is not a directory; fix: move it away "
		    "and run postern start", qdir);
		return;
	}
	if ((st.st_mode & 022) != 0)
		error("queue_directory %s is writable by group or others (mode %04o); "
		    "fix: chmod go-w %s", qdir, (unsigned)(st.st_mode & 07777), qdir);
	for (i = 0; i < sizeof(queue_subdirs) / sizeof(queue_subdirs[0]); i++) {
		path = xasprintf("%s/%s", qdir, queue_subdirs[i].name);
		if (lstat_dir(path, &st) < 0) {
			free(path);
			continue;
		}
		if (o->known && st.st_uid != o->uid)
			error("%s is owned by %s, not by mail_owner %s; fix: chown -R %s: %s "
			    "(postern start also fixes the directory itself)", path,
			    user_name(st.st_uid, who, sizeof(who)), o->name, o->name, path);
		mode = st.st_mode & 07777;
		if (mode != queue_subdirs[i].mode) {
			if ((mode & ~queue_subdirs[i].mode & 0022) != 0)
				error("%s has mode %04o, expected %04o; fix: chmod %04o %s "
				    "(or postern start)", path, (unsigned)mode,
				    (unsigned)queue_subdirs[i].mode,
				    (unsigned)queue_subdirs[i].mode, path);
			else
				warning("%s has mode %04o, expected %04o; fix: chmod %04o %s "
				    "(or postern start)", path, (unsigned)mode,
				    (unsigned)queue_subdirs[i].mode,
				    (unsigned)queue_subdirs[i].mode, path);
		}
		if (queue_subdirs[i].holds_files && o->known)
			check_files(path, o);
		free(path);
	}
}

/* Does master.conf run a pre-login process (pop3-login, imap-login,
 * managesieve-login)? */
static int
has_login_service(const struct master_service *svcs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *c = strrchr(svcs[i].command, '/');

		c = c != NULL ? c + 1 : svcs[i].command;
		if (strcmp(c, "pop3-login") == 0 || strcmp(c, "imap-login") == 0
		    || strcmp(c, "managesieve-login") == 0)
			return 1;
	}
	return 0;
}

/*
 * login_user and the login directory (server.h): the pre-login processes
 * run as an account of their own, chrooted to a directory they can read
 * but not change, with nothing in it but the sockets master binds there.
 */
static void
check_login(const struct master_service *svcs, size_t n, const struct owner *o)
{
	const char *user = config_str("login_user");
	const char *qdir = config_str("queue_directory");
	char *path = xasprintf("%s/%s", qdir, QUEUE_LOGIN), who[64];
	int root = priv_is_root(), known = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (priv_user(user, &uid, &gid) < 0) {
		if (root && has_login_service(svcs, n))
			error("login_user \"%s\" does not exist, so POP3/IMAP logins "
			    "fail; fix: useradd --system --user-group --no-create-home "
			    "--home-dir /nonexistent --shell /usr/sbin/nologin %s", user, user);
		else if (root)
			warning("login_user \"%s\" does not exist (needed for POP3/IMAP); "
			    "fix: useradd --system --user-group --no-create-home "
			    "--home-dir /nonexistent --shell /usr/sbin/nologin %s", user, user);
	} else if (uid == 0 || gid == 0) {
		error("login_user \"%s\" has uid or gid 0; it must be an unprivileged "
		    "account of its own; fix: set login_user = postern-login in "
		    "%s/postern.conf", user, config_dir());
	} else if (o->known && root && (uid == o->uid || gid == o->gid)) {
		error("login_user \"%s\" shares its uid or group with mail_owner %s, "
		    "so a pre-login process could reach the queue; fix: give it an "
		    "account of its own (useradd --system --user-group postern-login)",
		    user, o->name);
	} else
		known = root;
	if (lstat_dir(path, &st) < 0) {
		free(path);
		return;
	}
	if (root && st.st_uid != 0)
		error("%s is owned by %s, not root, so a pre-login process could "
		    "change its own chroot; fix: chown root %s (or postern start)", path,
		    user_name(st.st_uid, who, sizeof(who)), path);
	if (known && st.st_gid != gid)
		error("%s has group %d, not login_user %s's group %d, so the login "
		    "process cannot reach its sockets; fix: chgrp %d %s (or postern "
		    "start)", path, (int)st.st_gid, user, (int)gid, (int)gid, path);
	if ((st.st_mode & 07777) != 0750)
		error("%s has mode %04o, expected 0750; fix: chmod 0750 %s (or postern "
		    "start)", path, (unsigned)(st.st_mode & 07777), path);
	d = opendir(path);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISSOCK(st.st_mode))
			error("%s/%s is not a socket; the login directory holds only the "
			    "sockets master makes there (login_sockets); fix: remove it",
			    path, de->d_name);
	}
	if (d != NULL)
		closedir(d);
	free(path);
}

static void
check_data_dir(const struct owner *o)
{
	const char *dir = config_str("data_directory");
	struct stat st;
	char who[64];

	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			warning("data_directory %s does not exist; fix: postern start "
			    "creates it", dir);
		else
			error("data_directory %s: %s", dir, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode))
		error("data_directory %s is not a directory; fix: move it away and run "
		    "postern start", dir);
	else if (o->known && st.st_uid != o->uid &&
	    !(st.st_uid == 0 && geteuid() == 0))
		/* Root's (a package's mkdir, scripts/demo.sh) is what a start
		 * as root hands to mail_owner (master.c); anyone else's is not
		 * ours to take. */
		error("data_directory %s is owned by %s, not by %s; fix: chown -R %s: %s",
		    dir, user_name(st.st_uid, who, sizeof(who)), o->name, o->name, dir);
}

/* Configuration files must not be writable by anyone but their owner,
 * and (as root) that owner must be root: they name programs that run as
 * root. */
static void
check_conf_file(const char *name)
{
	struct stat st;
	char *path = xasprintf("%s/%s", config_dir(), name), who[64];

	if (stat(path, &st) == 0) {
		if ((st.st_mode & 022) != 0)
			error("%s is writable by group or others (mode %04o); fix: chmod "
			    "go-w %s", path, (unsigned)(st.st_mode & 07777), path);
		if (priv_is_root() && st.st_uid != 0)
			warning("%s is owned by %s, not root; fix: chown root: %s", path,
			    user_name(st.st_uid, who, sizeof(who)), path);
	}
	free(path);
}


/*
 * Sieve: the administrator's scripts run before and after every user's;
 * one that does not compile would send all mail to INBOX with a warning
 * per delivery, so it is an error here (and start refuses).
 */
static void
check_sieve(void)
{
	static const char *const params[] = { "local_sieve_before", "local_sieve_after" };
	struct sieve_limits lim;

	if (!config_bool("local_sieve"))
		return;
	sieve_limits_default(&lim);
	lim.script_max = (size_t)config_int("local_sieve_max_script_size");
	lim.actions_max = (int)config_int("local_sieve_max_actions");
	lim.redirects_max = (int)config_int("local_sieve_max_redirects");
	for (size_t p = 0; p < sizeof(params) / sizeof(params[0]); p++) {
		char **files = strv_split_list(config_str(params[p]));

		for (size_t i = 0; files[i] != NULL; i++) {
			struct sieve_script *sc = NULL;
			char *data = NULL, *err = NULL;
			size_t len;
			int line;

			if (file_read_all(files[i], lim.script_max, &data, &len) < 0) {
				if (errno == ENOENT)
					warning("%s: %s does not exist (skipped at delivery)", params[p],
					    files[i]);
				else
					error("%s: %s: %s; fix: make it readable, at most "
					    "local_sieve_max_script_size bytes", params[p], files[i],
					    strerror(errno));
				continue;
			}
			if (sieve_compile(data, len, &lim, &sc, &line, &err) < 0) {
				error("%s: %s:%d: %s; fix: correct the script (postern sieve check "
				    "FILE)", params[p], files[i], line, err);
				free(err);
			}
			sieve_free(&sc);
			free(data);
		}
		strv_free(&files);
	}
}

int
check_run(int show_warnings)
{
	struct master_service *svcs = NULL;
	struct owner o;
	const char *dir = getenv("MAIL_CONFIG");
	char *err = NULL, *path;
	size_t n = 0;
	int loaded_master;

	nerrors = nwarnings = 0;
	quiet_warnings = !show_warnings;
	if (dir == NULL || *dir == '\0')
		dir = config_default_dir();
	if (config_load(dir, &err) < 0) {
		error("%s; fix: correct %s/postern.conf (lines are \"name = value\"; "
		    "continuation lines start with white space)", err, dir);
		free(err);
		return nerrors;
	}
	if (config_check(&err) < 0) {
		error("%s; fix: correct the value in %s/postern.conf (\"postern conf "
		    "NAME\" shows it)", err, dir);
		xfree(&err);
	}
	check_security();
	check_milters();
	path = xasprintf("%s/master.conf", dir);
	/* The limit only fills in maxproc "-", which nothing here judges; a
	 * bad default_process_limit was reported above. */
	loaded_master = mastercf_load(path, 0, &svcs, &n, &err) == 0;
	if (!loaded_master) {
		error("%s; fix: correct %s (columns: service type private unpriv "
		    "chroot wakeup maxproc command)", err, path);
		xfree(&err);
	} else {
		check_overrides(path, svcs, n);
		check_spawn(path, svcs, n);
		check_tls(path, svcs, n);
	}
	free(path);
	check_conf_file("postern.conf");
	check_conf_file("master.conf");

	check_owner(&o);
	check_services(config_str("daemon_directory"), svcs,
	    loaded_master ? n : 0);
	check_tables();
	check_queue(&o);
	check_login(svcs, loaded_master ? n : 0, &o);
	if (loaded_master)
		mastercf_free(svcs, n);
	check_data_dir(&o);
	check_sieve();
	free(o.name_buf);
	return nerrors;
}

int
cmd_check(int argc, char **argv)
{
	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: postern check\n");
		return EX_USAGE;
	}
	return check_run(1) > 0 ? EX_CONFIG : 0;
}
