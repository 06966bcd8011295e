/*
 * config - postern.conf: one typed parameter table with Postfix names and
 * defaults, a main.cf-style file reader, and $name expansion.
 *
 * Invariants: every known parameter has an entry in params[] from the first
 * call on; an entry's value is NULL while the default applies. A value is
 * stored as written and expanded when read; expanded strings are cached per
 * "generation" (bumped by every load or set). A string once returned by
 * config_get() is never freed (superseded strings go to a retired list), so
 * callers may keep the pointer across a reload - reloads are rare and the
 * leak is bounded by them.
 *
 * Trusts: nothing in the file; it is bounded (CONF_FILE_MAX) and every
 * line is checked. Expansion has a depth, an output and a work limit, and
 * a reference cycle is caught; on any expansion error the value is returned
 * as written with one warning.
 *
 * Limits: no Postfix "${name?{text}:{text}}" brace form; an undefined $name
 * expands to nothing. Parameters flagged RAW (forward_path, mailbox_command)
 * hold per-recipient $names that local expands itself, so config_get()
 * returns them unexpanded.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/net.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/tlspolicy.h"
#include "proto/pop3.h"
#include "proto/sasl.h"

#ifndef POSTERN_LIBEXECDIR
#define POSTERN_LIBEXECDIR "/usr/libexec/postern"
#endif
#ifndef POSTERN_VERSION
#define POSTERN_VERSION "0.0.0"   /* the build defines it from project(VERSION) */
#endif
#ifndef POSTERN_SYSCONFDIR
#define POSTERN_SYSCONFDIR "/etc/postern"
#endif

#define CONF_FILE_MAX (4 * 1024 * 1024)
#define CONF_EXPAND_DEPTH 20
#define CONF_EXPAND_MAX (1024 * 1024)
#define CONF_NAME_MAX 100
#define CONF_EXPAND_REFS 10000   /* references followed per value */

enum {
	PF_RAW = 1,        /* never expanded by config_get */
	PF_COMPUTED = 2,   /* default computed at run time */
};

struct param_def {
	const char *name;
	enum config_type type;
	const char *def;
	char unit;         /* CONF_TIME: unit of a bare number */
	unsigned flags;
};

/* Sorted by name only for the reader's convenience; lookups do not rely on it. */
static const struct param_def param_table[] = {
	{ "access_map_defer_code", CONF_INT, "450", 0, 0 },
	{ "access_map_reject_code", CONF_INT, "554", 0, 0 },
	{ "alias_database", CONF_STR, "$alias_maps", 0, 0 },
	{ "alias_maps", CONF_STR, "lmdb:/etc/aliases", 0, 0 },
	{ "allow_mail_to_commands", CONF_STR, "alias, forward", 0, 0 },
	{ "allow_mail_to_files", CONF_STR, "alias, forward", 0, 0 },
	{ "always_bcc", CONF_STR, "", 0, 0 },
	{ "auth_hash_workers", CONF_INT, NULL, 0, PF_COMPUTED },
	{ "auth_owner", CONF_STR, "postern-auth", 0, 0 },
	{ "auth_pam_service", CONF_STR, "postern", 0, 0 },
	{ "authorized_mailq_users", CONF_STR, "static:anyone", 0, 0 },
	{ "body_checks", CONF_STR, "", 0, 0 },
	{ "body_checks_size_limit", CONF_INT, "51200", 0, 0 },
	{ "bounce_queue_lifetime", CONF_TIME, "5d", 'd', 0 },
	{ "2bounce_notice_recipient", CONF_STR, "postmaster", 0, 0 },
	{ "bounce_size_limit", CONF_INT, "50000", 0, 0 },
	{ "command_directory", CONF_STR, NULL, 0, PF_COMPUTED },
	{ "command_time_limit", CONF_TIME, "1000s", 's', 0 },
	{ "config_directory", CONF_STR, NULL, 0, PF_COMPUTED },
	{ "daemon_directory", CONF_STR, POSTERN_LIBEXECDIR, 0, 0 },
	{ "data_directory", CONF_STR, "/var/lib/postern", 0, 0 },
	{ "default_destination_concurrency_limit", CONF_INT, "20", 0, 0 },
	{ "default_destination_rate_delay", CONF_TIME, "0s", 's', 0 },
	{ "default_destination_recipient_limit", CONF_INT, "50", 0, 0 },
	{ "default_privs", CONF_STR, "nobody", 0, 0 },
	{ "default_process_limit", CONF_INT, "100", 0, 0 },
	{ "default_transport", CONF_STR, "smtp", 0, 0 },
	{ "defer_code", CONF_INT, "450", 0, 0 },
	{ "delay_warning_time", CONF_TIME, "0h", 'h', 0 },
	{ "disable_vrfy_command", CONF_BOOL, "no", 0, 0 },
	{ "double_bounce_sender", CONF_STR, "double-bounce", 0, 0 },
	{ "forward_path", CONF_STR, "$home/.forward", 0, PF_RAW },
	{ "header_checks", CONF_STR, "", 0, 0 },
	{ "header_size_limit", CONF_INT, "102400", 0, 0 },
	{ "home_mailbox", CONF_STR, "", 0, 0 },
	{ "hopcount_limit", CONF_INT, "50", 0, 0 },
	{ "imapd_client_connection_limit", CONF_INT, "10", 0, 0 },
	{ "imapd_hard_error_limit", CONF_INT, "20", 0, 0 },
	{ "imapd_idle_notify_interval", CONF_TIME, "120s", 's', 0 },
	{ "imapd_login_timeout", CONF_TIME, "60s", 's', 0 },
	{ "imapd_owner_process_limit", CONF_INT, NULL, 0, PF_COMPUTED },
	{ "imapd_plaintext_auth", CONF_STR, "loopback", 0, 0 },
	{ "imapd_timeout", CONF_TIME, "1800s", 's', 0 },
	{ "imapd_tls_cert_file", CONF_STR, "$smtpd_tls_cert_file", 0, 0 },
	{ "imapd_tls_key_file", CONF_STR, "$smtpd_tls_key_file", 0, 0 },
	{ "imapd_tls_wrappermode", CONF_BOOL, "no", 0, 0 },
	{ "inet_interfaces", CONF_STR, "all", 0, 0 },
	{ "inet_protocols", CONF_STR, "all", 0, 0 },
	{ "initial_destination_concurrency", CONF_INT, "5", 0, 0 },
	{ "invalid_hostname_reject_code", CONF_INT, "501", 0, 0 },
	{ "line_length_limit", CONF_INT, "2048", 0, 0 },
	{ "lmtp_connect_timeout", CONF_TIME, "30s", 's', 0 },
	{ "lmtp_data_done_timeout", CONF_TIME, "600s", 's', 0 },
	{ "lmtp_data_init_timeout", CONF_TIME, "120s", 's', 0 },
	{ "lmtp_data_xfer_timeout", CONF_TIME, "180s", 's', 0 },
	{ "lmtp_lhlo_name", CONF_STR, "$myhostname", 0, 0 },
	{ "lmtp_lhlo_timeout", CONF_TIME, "300s", 's', 0 },
	{ "lmtp_mail_timeout", CONF_TIME, "300s", 's', 0 },
	{ "lmtp_quit_timeout", CONF_TIME, "300s", 's', 0 },
	{ "lmtp_rcpt_timeout", CONF_TIME, "300s", 's', 0 },
	{ "lmtp_sasl_auth_enable", CONF_BOOL, "no", 0, 0 },
	{ "lmtp_tcp_port", CONF_INT, "24", 0, 0 },
	{ "lmtp_tls_security_level", CONF_STR, "", 0, 0 },
	{ "local_destination_concurrency_limit", CONF_INT, "2", 0, 0 },
	{ "local_destination_recipient_limit", CONF_INT, "1", 0, 0 },
	{ "local_recipient_maps", CONF_STR, "unix:passwd.byname $alias_maps", 0, 0 },
	{ "local_sieve", CONF_BOOL, "yes", 0, 0 },
	{ "local_sieve_active", CONF_STR, "~/.dovecot.sieve", 0, 0 },
	{ "local_sieve_after", CONF_STR, "", 0, 0 },
	{ "local_sieve_before", CONF_STR, "", 0, 0 },
	{ "local_sieve_directory", CONF_STR, "~/sieve", 0, 0 },
	{ "local_sieve_global_directory", CONF_STR, "", 0, 0 },
	{ "local_sieve_max_actions", CONF_INT, "32", 0, 0 },
	{ "local_sieve_max_redirects", CONF_INT, "4", 0, 0 },
	{ "local_sieve_max_script_size", CONF_SIZE, "1048576", 0, 0 },
	{ "local_sieve_max_scripts", CONF_INT, "100", 0, 0 },
	{ "local_sieve_max_storage", CONF_SIZE, "10485760", 0, 0 },
	{ "local_transport", CONF_STR, "local", 0, 0 },
	{ "login_sockets", CONF_STR, "auth, pop3d, imapd, managesieve", 0, 0 },
	{ "login_user", CONF_STR, "postern-login", 0, 0 },
	{ "mail_name", CONF_STR, "Postern", 0, 0 },
	{ "mail_owner", CONF_STR, "postern", 0, 0 },
	{ "mail_spool_directory", CONF_STR, "/var/mail", 0, 0 },
	{ "mail_version", CONF_STR, POSTERN_VERSION, 0, 0 },
	{ "mailbox_command", CONF_STR, "", 0, PF_RAW },
	{ "mailbox_size_limit", CONF_SIZE, "51200000", 0, 0 },
	{ "mailbox_transport", CONF_STR, "", 0, 0 },
	{ "maillog_file", CONF_STR, "", 0, 0 },
	{ "managesieve_hard_error_limit", CONF_INT, "10", 0, 0 },
	{ "managesieve_login_timeout", CONF_TIME, "60s", 's', 0 },
	{ "managesieve_owner_process_limit", CONF_INT, NULL, 0, PF_COMPUTED },
	{ "managesieve_plaintext_auth", CONF_STR, "loopback", 0, 0 },
	{ "managesieve_timeout", CONF_TIME, "1800s", 's', 0 },
	{ "managesieve_tls_cert_file", CONF_STR, "$smtpd_tls_cert_file", 0, 0 },
	{ "managesieve_tls_key_file", CONF_STR, "$smtpd_tls_key_file", 0, 0 },
	{ "managesieve_tls_wrappermode", CONF_BOOL, "no", 0, 0 },
	{ "maps_rbl_reject_code", CONF_INT, "554", 0, 0 },
	{ "max_idle", CONF_TIME, "100s", 's', 0 },
	{ "max_use", CONF_INT, "100", 0, 0 },
	{ "maximal_backoff_time", CONF_TIME, "4000s", 's', 0 },
	{ "maximal_queue_lifetime", CONF_TIME, "5d", 'd', 0 },
	{ "message_size_limit", CONF_SIZE, "10240000", 0, 0 },
	{ "milter_command_timeout", CONF_TIME, "30s", 's', 0 },
	{ "milter_connect_macros", CONF_STR, "j {daemon_name} {daemon_addr} v _", 0, 0 },
	{ "milter_connect_timeout", CONF_TIME, "30s", 's', 0 },
	{ "milter_content_timeout", CONF_TIME, "300s", 's', 0 },
	{ "milter_data_macros", CONF_STR, "i", 0, 0 },
	{ "milter_default_action", CONF_STR, "tempfail", 0, 0 },
	{ "milter_end_of_data_macros", CONF_STR, "i", 0, 0 },
	{ "milter_end_of_header_macros", CONF_STR, "i", 0, 0 },
	{ "milter_helo_macros", CONF_STR, "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}", 0, 0 },
	{ "milter_macro_daemon_name", CONF_STR, "$myhostname", 0, 0 },
	{ "milter_macro_v", CONF_STR, "$mail_name $mail_version", 0, 0 },
	{ "milter_mail_macros", CONF_STR, "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}", 0, 0 },
	{ "milter_protocol", CONF_STR, "6", 0, 0 },
	{ "milter_unknown_command_macros", CONF_STR, "", 0, 0 },
	{ "milter_rcpt_macros", CONF_STR, "i {rcpt_addr} {rcpt_host} {rcpt_mailer}", 0, 0 },
	{ "mime_header_checks", CONF_STR, "$header_checks", 0, 0 },
	{ "minimal_backoff_time", CONF_TIME, "300s", 's', 0 },
	{ "mydestination", CONF_STR, "$myhostname, localhost.$mydomain, localhost", 0, 0 },
	{ "mydomain", CONF_STR, NULL, 0, PF_COMPUTED },
	{ "myhostname", CONF_STR, NULL, 0, PF_COMPUTED },
	{ "mynetworks", CONF_STR, "127.0.0.0/8 [::1]/128", 0, 0 },
	{ "myorigin", CONF_STR, "$myhostname", 0, 0 },
	{ "nested_header_checks", CONF_STR, "$header_checks", 0, 0 },
	{ "non_fqdn_reject_code", CONF_INT, "504", 0, 0 },
	{ "non_smtpd_milters", CONF_STR, "", 0, 0 },
	{ "notify_classes", CONF_STR, "resource, software", 0, 0 },
	{ "passwd_file", CONF_STR, "$config_directory/passwd", 0, 0 },
	{ "policy_time_limit", CONF_TIME, "1000s", 's', 0 },
	{ "pop3d_hard_error_limit", CONF_INT, "10", 0, 0 },
	{ "pop3d_uidl_format", CONF_STR, "%v.%u", 0, PF_RAW },
	{ "pop3d_owner_process_limit", CONF_INT, NULL, 0, PF_COMPUTED },
	{ "pop3d_plaintext_auth", CONF_STR, "loopback", 0, 0 },
	{ "pop3d_timeout", CONF_TIME, "600s", 's', 0 },
	{ "pop3d_tls_cert_file", CONF_STR, "$smtpd_tls_cert_file", 0, 0 },
	{ "pop3d_tls_key_file", CONF_STR, "$smtpd_tls_key_file", 0, 0 },
	{ "pop3d_tls_wrappermode", CONF_BOOL, "no", 0, 0 },
	{ "qmgr_message_active_limit", CONF_INT, "20000", 0, 0 },
	{ "qmgr_message_recipient_limit", CONF_INT, "20000", 0, 0 },
	{ "queue_directory", CONF_STR, "/var/spool/postern", 0, 0 },
	{ "queue_minfree", CONF_SIZE, "0", 0, 0 },
	{ "queue_run_delay", CONF_TIME, "300s", 's', 0 },
	{ "recipient_bcc_maps", CONF_STR, "", 0, 0 },
	{ "recipient_delimiter", CONF_STR, "", 0, 0 },
	{ "reject_code", CONF_INT, "554", 0, 0 },
	{ "relay_domains_reject_code", CONF_INT, "554", 0, 0 },
	{ "relayhost", CONF_STR, "", 0, 0 },
	{ "sender_bcc_maps", CONF_STR, "", 0, 0 },
	{ "smtp_bind_address", CONF_STR, "", 0, 0 },
	{ "smtp_bind_address6", CONF_STR, "", 0, 0 },
	{ "smtp_connect_timeout", CONF_TIME, "30s", 's', 0 },
	{ "smtp_connection_cache_destinations", CONF_STR, "", 0, 0 },
	{ "smtp_connection_cache_on_demand", CONF_BOOL, "yes", 0, 0 },
	{ "smtp_connection_cache_time_limit", CONF_TIME, "2s", 's', 0 },
	{ "smtp_connection_reuse_count_limit", CONF_INT, "0", 0, 0 },
	{ "smtp_connection_reuse_time_limit", CONF_TIME, "300s", 's', 0 },
	{ "smtp_data_done_timeout", CONF_TIME, "600s", 's', 0 },
	{ "smtp_data_init_timeout", CONF_TIME, "120s", 's', 0 },
	{ "smtp_data_xfer_timeout", CONF_TIME, "180s", 's', 0 },
	{ "smtp_destination_rate_delay", CONF_TIME, "$default_destination_rate_delay", 's', 0 },
	{ "smtp_dns_servers", CONF_STR, "", 0, 0 },
	{ "smtp_dns_timeout", CONF_TIME, "30s", 's', 0 },
	{ "smtp_helo_name", CONF_STR, "$myhostname", 0, 0 },
	{ "smtp_helo_timeout", CONF_TIME, "300s", 's', 0 },
	{ "smtp_mail_timeout", CONF_TIME, "300s", 's', 0 },
	{ "smtp_mx_address_limit", CONF_INT, "5", 0, 0 },
	{ "smtp_quit_timeout", CONF_TIME, "300s", 's', 0 },
	{ "smtp_rcpt_timeout", CONF_TIME, "300s", 's', 0 },
	{ "smtp_sasl_password_maps", CONF_STR, "", 0, 0 },
	{ "smtp_sasl_security_options", CONF_STR, "noanonymous", 0, 0 },
	{ "smtp_sasl_tls_security_options", CONF_STR, "$smtp_sasl_security_options", 0, 0 },
	{ "smtp_starttls_timeout", CONF_TIME, "300s", 's', 0 },
	{ "smtp_tcp_port", CONF_INT, "25", 0, 0 },
	{ "smtp_tls_CAfile", CONF_STR, "", 0, 0 },
	{ "smtp_tls_CApath", CONF_STR, "", 0, 0 },
	{ "smtp_tls_ciphers", CONF_STR, "medium", 0, 0 },
	{ "smtp_tls_exclude_ciphers", CONF_STR, "", 0, 0 },
	{ "smtp_tls_mandatory_ciphers", CONF_STR, "medium", 0, 0 },
	{ "smtp_tls_mandatory_exclude_ciphers", CONF_STR, "", 0, 0 },
	{ "smtp_tls_mandatory_protocols", CONF_STR, ">=TLSv1.2", 0, 0 },
	{ "smtp_tls_policy_maps", CONF_STR, "", 0, 0 },
	{ "smtp_tls_protocols", CONF_STR, ">=TLSv1.2", 0, 0 },
	{ "smtp_tls_security_level", CONF_STR, "may", 0, 0 },
	{ "smtp_tls_session_cache_database", CONF_STR, "", 0, 0 },
	{ "smtp_tls_session_cache_timeout", CONF_TIME, "3600s", 's', 0 },
	{ "smtpd_banner", CONF_STR, "$myhostname ESMTP $mail_name", 0, 0 },
	{ "smtpd_client_limit", CONF_INT, "1000", 0, 0 },
	{ "smtpd_client_restrictions", CONF_STR, "", 0, 0 },
	{ "smtpd_data_restrictions", CONF_STR, "", 0, 0 },
	{ "smtpd_delay_reject", CONF_BOOL, "yes", 0, 0 },
	{ "smtpd_discard_ehlo_keywords", CONF_STR, "", 0, 0 },
	{ "smtpd_dns_servers", CONF_STR, "", 0, 0 },
	{ "smtpd_dns_timeout", CONF_TIME, "10s", 's', 0 },
	{ "smtpd_end_of_data_restrictions", CONF_STR, "", 0, 0 },
	{ "smtpd_error_sleep_time", CONF_TIME, "1s", 's', 0 },
	{ "smtpd_forbidden_commands", CONF_STR, "CONNECT GET POST", 0, 0 },
	{ "smtpd_forbid_bare_newline", CONF_STR, "normalize", 0, 0 },
	{ "smtpd_forbid_bare_newline_exclusions", CONF_STR, "$mynetworks", 0, 0 },
	{ "smtpd_forbid_bare_newline_reject_code", CONF_INT, "550", 0, 0 },
	{ "smtpd_hard_error_limit", CONF_INT, "20", 0, 0 },
	{ "smtpd_helo_required", CONF_BOOL, "no", 0, 0 },
	{ "smtpd_helo_restrictions", CONF_STR, "", 0, 0 },
	{ "smtpd_milters", CONF_STR, "", 0, 0 },
	{ "smtpd_peername_lookup", CONF_BOOL, "yes", 0, 0 },
	{ "smtpd_policy_service_default_action", CONF_STR, "451 4.3.5 Server configuration problem", 0, 0 },
	{ "smtpd_policy_service_max_idle", CONF_TIME, "300s", 's', 0 },
	{ "smtpd_policy_service_max_ttl", CONF_TIME, "1000s", 's', 0 },
	{ "smtpd_policy_service_policy_context", CONF_STR, "", 0, 0 },
	{ "smtpd_policy_service_request_limit", CONF_INT, "0", 0, 0 },
	{ "smtpd_policy_service_retry_delay", CONF_TIME, "1s", 's', 0 },
	{ "smtpd_policy_service_timeout", CONF_TIME, "100s", 's', 0 },
	{ "smtpd_policy_service_try_limit", CONF_INT, "2", 0, 0 },
	{ "smtpd_process_count", CONF_INT, NULL, 0, PF_COMPUTED },
	{ "smtpd_recipient_limit", CONF_INT, "1000", 0, 0 },
	{ "smtpd_recipient_restrictions", CONF_STR, "", 0, 0 },
	{ "smtpd_relay_restrictions", CONF_STR, "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination", 0, 0 },
	{ "smtpd_reject_unlisted_sender", CONF_BOOL, "no", 0, 0 },
	{ "smtpd_restriction_classes", CONF_STR, "", 0, 0 },
	{ "smtpd_sasl_auth_enable", CONF_BOOL, "no", 0, 0 },
	{ "smtpd_sasl_path", CONF_STR, "private/auth", 0, 0 },
	{ "smtpd_sasl_security_options", CONF_STR, "noanonymous", 0, 0 },
	{ "smtpd_sasl_tls_security_options", CONF_STR, "$smtpd_sasl_security_options", 0, 0 },
	{ "smtpd_sender_login_maps", CONF_STR, "", 0, 0 },
	{ "smtpd_sender_restrictions", CONF_STR, "", 0, 0 },
	{ "smtpd_soft_error_limit", CONF_INT, "10", 0, 0 },
	{ "smtpd_timeout", CONF_TIME, "300s", 's', 0 },
	{ "smtpd_tls_auth_only", CONF_BOOL, "yes", 0, 0 },
	{ "smtpd_tls_cert_file", CONF_STR, "", 0, 0 },
	{ "smtpd_tls_ciphers", CONF_STR, "medium", 0, 0 },
	{ "smtpd_tls_dh1024_param_file", CONF_STR, "", 0, 0 },
	{ "smtpd_tls_eecdh_grade", CONF_STR, "auto", 0, 0 },
	{ "smtpd_tls_exclude_ciphers", CONF_STR, "", 0, 0 },
	{ "smtpd_tls_key_file", CONF_STR, "", 0, 0 },
	{ "smtpd_tls_mandatory_ciphers", CONF_STR, "medium", 0, 0 },
	{ "smtpd_tls_mandatory_exclude_ciphers", CONF_STR, "", 0, 0 },
	{ "smtpd_tls_mandatory_protocols", CONF_STR, ">=TLSv1.2", 0, 0 },
	{ "smtpd_tls_protocols", CONF_STR, ">=TLSv1.2", 0, 0 },
	{ "smtpd_tls_security_level", CONF_STR, "", 0, 0 },
	{ "smtpd_tls_session_cache_database", CONF_STR, "", 0, 0 },
	{ "smtpd_tls_session_cache_timeout", CONF_TIME, "3600s", 's', 0 },
	{ "smtpd_tls_wrappermode", CONF_BOOL, "no", 0, 0 },
	{ "smtputf8_enable", CONF_BOOL, "yes", 0, 0 },
	{ "soft_bounce", CONF_BOOL, "no", 0, 0 },
	{ "strict_rfc821_envelopes", CONF_BOOL, "no", 0, 0 },
	{ "syslog_facility", CONF_STR, "mail", 0, 0 },
	{ "syslog_name", CONF_STR, "postern", 0, 0 },
	{ "tls_export_cipherlist", CONF_STR, "HIGH:MEDIUM:LOW:EXPORT:!aNULL:!eNULL", 0, 0 },
	{ "tls_high_cipherlist", CONF_STR, "HIGH:!aNULL:!eNULL", 0, 0 },
	{ "tls_low_cipherlist", CONF_STR, "HIGH:MEDIUM:LOW:!aNULL:!eNULL", 0, 0 },
	{ "tls_medium_cipherlist", CONF_STR, "HIGH:MEDIUM:!aNULL:!eNULL", 0, 0 },
	{ "tls_null_cipherlist", CONF_STR, "eNULL:!aNULL", 0, 0 },
	{ "transport_maps", CONF_STR, "", 0, 0 },
	{ "transport_retry_time", CONF_TIME, "5s", 's', 0 },
	{ "unknown_address_reject_code", CONF_INT, "450", 0, 0 },
	{ "unknown_client_reject_code", CONF_INT, "450", 0, 0 },
	{ "unknown_hostname_reject_code", CONF_INT, "450", 0, 0 },
	{ "virtual_alias_domains", CONF_STR, "$virtual_alias_maps", 0, 0 },
	{ "virtual_alias_maps", CONF_STR, "", 0, 0 },
	{ "virtual_gid_maps", CONF_STR, "", 0, 0 },
	{ "virtual_mailbox_base", CONF_STR, "", 0, 0 },
	{ "virtual_mailbox_domains", CONF_STR, "$virtual_mailbox_maps", 0, 0 },
	{ "virtual_mailbox_limit", CONF_SIZE, "51200000", 0, 0 },
	{ "virtual_mailbox_limit_maps", CONF_STR, "", 0, 0 },
	{ "virtual_mailbox_maps", CONF_STR, "", 0, 0 },
	{ "virtual_minimum_uid", CONF_INT, "100", 0, 0 },
	{ "virtual_overquota_bounce", CONF_BOOL, "no", 0, 0 },
	{ "virtual_transport", CONF_STR, "virtual", 0, 0 },
	{ "virtual_uid_maps", CONF_STR, "", 0, 0 },
};

struct param {
	char *name;
	const struct param_def *def;   /* NULL: unknown name set in the file */
	char *value;                   /* as written; NULL = default */
	char *defval;                  /* computed default (PF_COMPUTED) */
	char *cache;                   /* expanded value */
	unsigned long cache_gen;
	unsigned long defval_gen;
	unsigned long warned_gen;
	int busy;                      /* being expanded: cycle detection */
};

static struct {
	struct param *v;
	size_t n;
	size_t cap;
	char *dir;
	char *path;
	unsigned long gen;
	char **retired;
	char *hostname;
	unsigned refs;                 /* work done by the current expansion */
} conf;

static void
retire(char **s)
{
	if (*s == NULL)
		return;
	/* Keep superseded strings: a caller may still hold one (see top). */
	size_t n = strv_len(conf.retired);

	conf.retired = xreallocarray(conf.retired, n + 2, sizeof(char *));
	conf.retired[n] = *s;
	conf.retired[n + 1] = NULL;
	*s = NULL;
}

static struct param *
param_add(const char *name, const struct param_def *def)
{
	struct param *p;

	if (conf.n == conf.cap) {
		conf.cap = conf.cap ? conf.cap * 2 : 128;
		conf.v = xreallocarray(conf.v, conf.cap, sizeof(*conf.v));
	}
	p = &conf.v[conf.n++];
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(name);
	p->def = def;
	return p;
}

static void
conf_init(void)
{
	size_t i;

	if (conf.n != 0)
		return;
	conf.gen = 1;
	for (i = 0; i < ARRAY_SIZE(param_table); i++)
		param_add(param_table[i].name, &param_table[i]);
}

static struct param *
param_find(const char *name)
{
	size_t i;

	conf_init();
	for (i = 0; i < conf.n; i++)
		if (strcmp(conf.v[i].name, name) == 0)
			return &conf.v[i];
	return NULL;
}

static int
valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > CONF_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

/* A name that may be set: also with '-' inside, since per-service names
 * begin with a master.conf service name ("policyd-spf_time_limit", as
 * Postfix's main.cf allows). $references keep valid_name(). */
static int
valid_set_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > CONF_NAME_MAX || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

static const char *
host_name(void)
{
	char h[256];

	if (conf.hostname != NULL)
		return conf.hostname;
	if (gethostname(h, sizeof(h) - 1) != 0 || h[0] == '\0')
		snprintf(h, sizeof(h), "localhost");
	h[sizeof(h) - 1] = '\0';
	str_lower(h);
	if (strchr(h, '.') == NULL)
		conf.hostname = xasprintf("%s.localdomain", h);
	else
		conf.hostname = xstrdup(h);
	return conf.hostname;
}

static char *
computed_default(const struct param *p)
{
	const char *s;

	if (strcmp(p->name, "config_directory") == 0)
		return xstrdup(conf.dir ? conf.dir : POSTERN_SYSCONFDIR);
	if (strcmp(p->name, "myhostname") == 0)
		return xstrdup(host_name());
	if (strcmp(p->name, "mydomain") == 0) {
		s = config_get("myhostname");
		s = s ? strchr(s, '.') : NULL;
		return xstrdup(s != NULL && s[1] != '\0' ? s + 1 : "localdomain");
	}
	if (strcmp(p->name, "auth_hash_workers") == 0 ||
	    strcmp(p->name, "pop3d_owner_process_limit") == 0 ||
	    strcmp(p->name, "imapd_owner_process_limit") == 0 ||
	    strcmp(p->name, "managesieve_owner_process_limit") == 0 ||
	    strcmp(p->name, "smtpd_process_count") == 0) {
		/* One per CPU: password hashing is pure CPU work, and one
		 * owner's sessions (every virtual user shares one uid) need
		 * no more processes than there are CPUs to run them; nor do
		 * smtpd's sessions, each process being one event loop. */
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		return xasprintf("%ld", n < 1 ? 1 : n > 64 ? 64 : n);
	}
	if (strcmp(p->name, "command_directory") == 0) {
		/* sbin next to the libexec directory the build installs into */
		static const char tail[] = "/libexec/postern";
		const char *d = POSTERN_LIBEXECDIR;
		size_t n = strlen(d), t = sizeof(tail) - 1;

		if (n >= t && strcmp(d + n - t, tail) == 0)
			return xasprintf("%.*s/sbin", (int)(n - t), d);
		return xstrdup("/usr/sbin");
	}
	return xstrdup("");
}

static const char *
param_raw(struct param *p)
{
	if (p->value != NULL)
		return p->value;
	if (p->def == NULL)
		return "";
	if (p->def->flags & PF_COMPUTED) {
		if (p->defval == NULL || p->defval_gen != conf.gen) {
			char *v;

			/* computing may recurse (mydomain reads myhostname) */
			if (p->busy)
				return "";
			p->busy = 1;
			v = computed_default(p);
			p->busy = 0;
			retire(&p->defval);
			p->defval = v;
			p->defval_gen = conf.gen;
		}
		return p->defval;
	}
	return p->def->def;
}

static int expand(const char *s, size_t len, struct buf *out, int depth,
    const char **err_r);

/* Expand the parameter name (n bytes) into out. */
static int
expand_ref(const char *name, size_t n, struct buf *out, int depth,
    const char **err_r)
{
	char tmp[CONF_NAME_MAX + 1];
	struct param *p;
	const char *raw;
	int r;

	if (!valid_name(name, n)) {
		*err_r = "bad parameter name in $reference";
		return -1;
	}
	memcpy(tmp, name, n);
	tmp[n] = '\0';
	p = param_find(tmp);
	if (p == NULL)
		return 0;   /* undefined: nothing, as Postfix does */
	if (p->busy) {
		*err_r = "parameter refers to itself";
		return -1;
	}
	if (depth >= CONF_EXPAND_DEPTH) {
		*err_r = "expansion nested too deeply";
		return -1;
	}
	/* $b$b$b... chains to empty values grow no output but take
	 * exponential time: bound the work itself */
	if (++conf.refs > CONF_EXPAND_REFS) {
		*err_r = "expansion too complex";
		return -1;
	}
	raw = param_raw(p);
	if (p->def != NULL && (p->def->flags & PF_RAW))
		return buf_puts(out, raw) == 0 ? 0 : (*err_r = "expansion too long", -1);
	p->busy = 1;
	r = expand(raw, strlen(raw), out, depth + 1, err_r);
	p->busy = 0;
	return r;
}

static int
expand(const char *s, size_t len, struct buf *out, int depth, const char **err_r)
{
	size_t i = 0, start, n;
	char open, close;
	int nest;

	while (i < len) {
		if (s[i] != '$') {
			start = i;
			while (i < len && s[i] != '$')
				i++;
			if (buf_append(out, s + start, i - start) != 0)
				goto toolong;
			continue;
		}
		i++;
		if (i >= len) {
			if (buf_putc(out, '$') != 0)
				goto toolong;
			break;
		}
		if (s[i] == '$') {
			if (buf_putc(out, '$') != 0)
				goto toolong;
			i++;
			continue;
		}
		if (s[i] == '{' || s[i] == '(') {
			size_t body, name_end, end;

			open = s[i];
			close = open == '{' ? '}' : ')';
			body = ++i;
			nest = 1;
			while (i < len) {
				if (s[i] == open)
					nest++;
				else if (s[i] == close && --nest == 0)
					break;
				i++;
			}
			if (i >= len) {
				*err_r = "unbalanced bracket in $reference";
				return -1;
			}
			end = i++;
			name_end = body;
			while (name_end < end && (isalnum((unsigned char)s[name_end]) ||
			    s[name_end] == '_'))
				name_end++;
			if (name_end == end) {
				if (expand_ref(s + body, end - body, out, depth, err_r) != 0)
					return -1;
				continue;
			}
			if (s[name_end] != '?' && s[name_end] != ':') {
				*err_r = "bad parameter name in $reference";
				return -1;
			}
			{
				/* ${name?text}: text if name is non-empty;
				 * ${name:text}: text if name is empty. */
				struct buf val = BUF_INIT(CONF_EXPAND_MAX);
				int want_set = s[name_end] == '?', r;

				r = expand_ref(s + body, name_end - body, &val, depth, err_r);
				if (r == 0 && (val.len != 0) == want_set)
					r = expand(s + name_end + 1, end - name_end - 1, out,
					    depth + 1, err_r);
				buf_free(&val);
				if (r != 0)
					return -1;
			}
			continue;
		}
		if (isalnum((unsigned char)s[i]) || s[i] == '_') {
			start = i;
			while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_'))
				i++;
			n = i - start;
			if (expand_ref(s + start, n, out, depth, err_r) != 0)
				return -1;
			continue;
		}
		/* '$' before anything else is just a dollar sign */
		if (buf_putc(out, '$') != 0)
			goto toolong;
	}
	return 0;
toolong:
	*err_r = "expansion too long";
	return -1;
}

static const char *
param_expanded(struct param *p)
{
	struct buf b = BUF_INIT(CONF_EXPAND_MAX);
	const char *raw = param_raw(p), *err = NULL;

	if (p->def != NULL && (p->def->flags & PF_RAW))
		return raw;
	if (p->cache != NULL && p->cache_gen == conf.gen)
		return p->cache;
	p->busy = 1;
	conf.refs = 0;
	if (expand(raw, strlen(raw), &b, 0, &err) != 0) {
		if (p->warned_gen != conf.gen)
			log_warnx("%s%sparameter %s: %s; value left unexpanded: %s",
			    conf.path ? conf.path : "", conf.path ? ": " : "",
			    p->name, err, raw);
		p->warned_gen = conf.gen;
		buf_reset(&b);
		buf_puts(&b, raw);
	}
	p->busy = 0;
	retire(&p->cache);
	p->cache = b.data ? buf_steal(&b) : xstrdup("");
	p->cache_gen = conf.gen;
	return p->cache;
}

const char *
config_get(const char *name)
{
	struct param *p;

	if (name == NULL || (p = param_find(name)) == NULL)
		return NULL;
	return param_expanded(p);
}

int
config_sasl_plaintext(const char *side, int tls)
{
	char name[64];
	const char *why;
	int ok;

	snprintf(name, sizeof(name), "%s_sasl_%ssecurity_options", side,
	    tls ? "tls_" : "");
	if ((ok = sasl_plaintext_allowed(config_str(name), &why)) < 0)
		log_fatalx("%s: %s", name, why);
	return ok;
}

const char *
config_param(const char *name, const void *unused)
{
	(void)unused;
	return config_str(name);
}

const char *
config_str(const char *name)
{
	struct param *p = name != NULL ? param_find(name) : NULL;

	/* Every parameter is in the table with its default; a name that is
	 * not is a bug, not a reason for a private fallback. */
	if (p == NULL || p->def == NULL)
		log_panic("%s: parameter %s is not in the parameter table", __func__,
		    name != NULL ? name : "(null)");
	return param_expanded(p);
}

const char *
config_get_raw(const char *name)
{
	struct param *p;

	if (name == NULL || (p = param_find(name)) == NULL)
		return NULL;
	return param_raw(p);
}

int
config_is_set(const char *name)
{
	struct param *p = name ? param_find(name) : NULL;

	return p != NULL && p->value != NULL;
}

const char *
config_dir(void)
{
	return conf.dir ? conf.dir : POSTERN_SYSCONFDIR;
}

static int
param_store(const char *name, const char *value)
{
	struct param *p;

	if (!valid_set_name(name, strlen(name)))
		return -1;
	p = param_find(name);
	if (p == NULL)
		p = param_add(name, NULL);
	retire(&p->value);
	p->value = xstrdup(value);
	conf.gen++;
	return 0;
}

int
config_set(const char *name, const char *value)
{
	if (name == NULL || value == NULL)
		return -1;
	return param_store(name, value);
}

/* Logical line reader (see config.h). */

void
lline_init(struct lline *ll, const char *text, size_t len)
{
	ll->p = text;
	ll->end = text + len;
	ll->lineno = 0;
	ll->max = 1024 * 1024;
}

int
lline_next(struct lline *ll, struct buf *out, int *lineno_r, const char **why_r)
{
	const char *line, *eol, *s, *e;
	int have = 0;

	buf_reset(out);
	*lineno_r = 0;
	while (ll->p < ll->end) {
		line = ll->p;
		eol = memchr(line, '\n', (size_t)(ll->end - line));
		if (eol == NULL)
			eol = ll->end;
		if (memchr(line, '\0', (size_t)(eol - line)) != NULL) {
			*lineno_r = ll->lineno + 1;
			*why_r = "NUL byte in line";
			return -1;
		}
		s = line;
		while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r' ||
		    *s == '\f' || *s == '\v'))
			s++;
		if (s == eol || *s == '#') {
			/* blank and comment lines never end a logical line */
			ll->p = eol < ll->end ? eol + 1 : eol;
			ll->lineno++;
			continue;
		}
		if (s != line && !have) {
			/* indented lines are always taken by the logical
			 * line before them, so this one has none */
			*lineno_r = ll->lineno + 1;
			*why_r = "continuation line without a preceding line";
			ll->p = eol < ll->end ? eol + 1 : eol;
			ll->lineno++;
			return -1;
		}
		if (s == line && have)
			break;   /* the next logical line starts here */
		e = eol;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (have && buf_putc(out, ' ') != 0)
			goto toolong;
		if ((size_t)(e - s) > ll->max || out->len + (size_t)(e - s) > ll->max ||
		    buf_append(out, s, (size_t)(e - s)) != 0)
			goto toolong;
		if (!have)
			*lineno_r = ll->lineno + 1;
		have = 1;
		ll->p = eol < ll->end ? eol + 1 : eol;
		ll->lineno++;
	}
	return have;
toolong:
	*why_r = "line too long";
	if (*lineno_r == 0)
		*lineno_r = ll->lineno + 1;
	return -1;
}

static void
conf_reset(void)
{
	size_t i;

	conf_init();
	/* Drop file values and unknown names; keep table entries. */
	for (i = 0; i < conf.n; i++) {
		retire(&conf.v[i].value);
		if (conf.v[i].def == NULL) {
			retire(&conf.v[i].cache);
			retire(&conf.v[i].name);
		}
	}
	for (i = 0; i < conf.n;) {
		if (conf.v[i].def == NULL) {
			conf.v[i] = conf.v[conf.n - 1];
			conf.n--;
		} else
			i++;
	}
	conf.gen++;
}

int
config_load(const char *dir, char **err_r)
{
	struct buf line = BUF_INIT(0);
	struct lline ll;
	char *text = NULL, *path, *eq, *name, *value;
	char **names = NULL, **values = NULL, **unknown = NULL, **repeated = NULL;
	const char *why = NULL;
	size_t len = 0, i, nlines = 0;
	int lineno, r, *lines = NULL;

	*err_r = NULL;
	if (dir == NULL || *dir == '\0')
		dir = POSTERN_SYSCONFDIR;
	path = xasprintf("%s/postern.conf", dir);
	if (file_read_all(path, CONF_FILE_MAX, &text, &len) != 0) {
		if (errno == EFBIG || errno == ENOBUFS)
			*err_r = xasprintf("%s: file too large", path);
		else
			*err_r = xasprintf("open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	/* Parse everything first: a bad file leaves the old settings intact
	 * (master keeps running on a failed reload). */
	names = xcalloc(1, sizeof(char *));
	values = xcalloc(1, sizeof(char *));
	lline_init(&ll, text, len);
	while ((r = lline_next(&ll, &line, &lineno, &why)) != 0) {
		if (r < 0) {
			*err_r = xasprintf("%s:%d: %s", path, lineno, why);
			goto fail;
		}
		name = line.data;
		eq = strchr(name, '=');
		if (eq == NULL) {
			*err_r = xasprintf("%s:%d: missing '=' after parameter name",
			    path, lineno);
			goto fail;
		}
		*eq = '\0';
		value = str_trim(eq + 1);
		str_trim(name);
		if (*name == '\0') {
			*err_r = xasprintf("%s:%d: missing parameter name before '='",
			    path, lineno);
			goto fail;
		}
		if (!valid_set_name(name, strlen(name))) {
			*err_r = xasprintf("%s:%d: bad parameter name '%.100s'",
			    path, lineno, name);
			goto fail;
		}
		if (nlines % 64 == 0)
			lines = xreallocarray(lines, nlines + 64, sizeof(int));
		lines[nlines++] = lineno;
		strv_push(&names, name);
		strv_push(&values, value);
	}
	conf_reset();
	free(conf.dir);
	conf.dir = xstrdup(dir);
	free(conf.path);
	conf.path = path;
	for (i = 0; names[i] != NULL; i++) {
		size_t nl = strlen(names[i]), sl = strlen("_time_limit");
		/* NAME_time_limit: a service's own limit (Postfix's
		 * convention; spawn reads it, postern check judges it) */
		int per_service = nl > sl && strcmp(names[i] + nl - sl, "_time_limit") == 0;
		if (param_find(names[i]) == NULL && !per_service)
			strv_push(&unknown, names[i]);
		else if (config_is_set(names[i])) {
			char *w = xasprintf("%s:%d: overriding earlier entry: %s=%.200s",
			    path, lines[i], names[i], values[i]);

			strv_push(&repeated, w);
			free(w);
		}
		param_store(names[i], values[i]);
	}
	/* Postfix warns too: the later line wins, which is rarely meant. */
	for (i = 0; repeated != NULL && repeated[i] != NULL; i++)
		log_warnx("%s", repeated[i]);
	/* smtpd_restriction_classes names parameters of the admin's own. */
	char **classes = strv_split_list(config_str("smtpd_restriction_classes"));
	for (i = 0; unknown != NULL && unknown[i] != NULL; i++)
		if (!strv_contains_ci(classes, unknown[i]))
			log_warnx("%s: unknown parameter %s", path, unknown[i]);
	strv_free(&classes);
	strv_free(&unknown);
	strv_free(&repeated);
	free(lines);
	strv_free(&names);
	strv_free(&values);
	buf_free(&line);
	free(text);
	return 0;
fail:
	strv_free(&names);
	strv_free(&values);
	strv_free(&repeated);
	free(lines);
	buf_free(&line);
	free(text);
	free(path);
	return -1;
}

long long
config_parse_time(const char *s, char default_unit)
{
	long long total = 0, n, mul;
	const char *p = s;
	int digits, units = 0;

	if (s == NULL)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return -1;
	/* "300", "300s", "5d" and Postfix 3.x combinations like "1h30m" */
	while (*p != '\0' && *p != ' ' && *p != '\t') {
		n = 0;
		digits = 0;
		while (*p >= '0' && *p <= '9') {
			if (__builtin_mul_overflow(n, 10, &n) ||
			    __builtin_add_overflow(n, *p - '0', &n))
				return -1;
			p++;
			digits++;
		}
		if (digits == 0)
			return -1;
		char u = *p;

		if (u == '\0' || u == ' ' || u == '\t') {
			if (units > 0)
				return -1;   /* "1h30" is ambiguous */
			u = default_unit ? default_unit : 's';
		} else
			p++;
		switch (tolower((unsigned char)u)) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		case 'w': mul = 7 * 86400; break;
		default: return -1;
		}
		if (__builtin_mul_overflow(n, mul, &n) ||
		    __builtin_add_overflow(total, n, &total))
			return -1;
		units++;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0' ? total : -1;
}

static int
parse_int(const char *s, long long *v)
{
	char *end;
	long long n;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!(*s >= '0' && *s <= '9'))
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || n < 0)
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0')
		return -1;
	*v = n;
	return 0;
}

static int
parse_bool(const char *s)
{
	static const char *const yes[] = { "yes", "true", "1", "on" };
	static const char *const no[] = { "no", "false", "0", "off" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(yes); i++)
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
	for (i = 0; i < ARRAY_SIZE(no); i++)
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	return -1;
}

static struct param *
typed_param(const char *name, const char *what)
{
	struct param *p = name ? param_find(name) : NULL;

	if (p == NULL) {
		log_warnx("%s: unknown parameter %s", what, name ? name : "(null)");
		return NULL;
	}
	return p;
}

long long
config_int(const char *name)
{
	struct param *p = typed_param(name, __func__);
	long long v;

	if (p == NULL)
		return -1;
	if (parse_int(param_expanded(p), &v) != 0)
		log_fatalx("bad numerical configuration: %s = %s", name,
		    param_expanded(p));
	return v;
}

long long
config_int_or(const char *name, long long def, long long min, long long max)
{
	const char *v = config_get(name);
	long long n;

	if (v == NULL || *v == '\0')
		return def;
	if (parse_int(v, &n) != 0 || n < min || n > max) {
		log_warnx("bad numerical value for %s: %s; using %lld", name, v, def);
		return def;
	}
	return n;
}

/* A table parameter kept within [min, max]: config_check() refuses
 * values that are not numbers at start-up; a number out of range here is
 * clamped with a warning. */
long long
config_int_range(const char *name, long long min, long long max)
{
	long long n = config_int(name);

	if (n < min || n > max) {
		long long c = n < min ? min : max;

		log_warnx("%s = %lld is out of range; using %lld", name, n, c);
		return c;
	}
	return n;
}

long long
config_time_or(const char *name, long long def, char unit)
{
	struct param *p = name != NULL ? param_find(name) : NULL;
	const char *v = config_get(name);
	long long n;

	if (v == NULL || *v == '\0')
		return def;
	if (p != NULL && p->def != NULL && p->def->unit)
		unit = p->def->unit;
	n = config_parse_time(v, unit);
	if (n < 0) {
		log_warnx("bad time value for %s: %s; using %llds", name, v, def);
		return def;
	}
	return n;
}

long long
config_time(const char *name)
{
	struct param *p = typed_param(name, __func__);
	long long v;

	if (p == NULL)
		return -1;
	v = config_parse_time(param_expanded(p),
	    p->def && p->def->unit ? p->def->unit : 's');
	if (v < 0)
		log_fatalx("bad time configuration: %s = %s", name,
		    param_expanded(p));
	return v;
}

int
config_bool(const char *name)
{
	struct param *p = typed_param(name, __func__);
	int v;

	if (p == NULL)
		return 0;
	v = parse_bool(param_expanded(p));
	if (v < 0)
		log_fatalx("bad boolean configuration: %s = %s", name,
		    param_expanded(p));
	return v;
}

/*
 * Enumerated parameters: the values the code that reads each one accepts.
 * A list parameter takes any of them, separated by commas or spaces.
 */
static const char *const tls_server_levels[] = { "", "none", "may", "encrypt", NULL };
static const char *const tls_client_levels[] = { "", "none", "may", "encrypt",
	"verify", "secure", "dane", "dane-only", NULL };
static const char *const protocols[] = { "all", "ipv4", "ipv6", NULL };
static const char *const sources[] = { "alias", "forward", "include", NULL };
/* Postfix's postmaster notice classes that Postern acts on (2bounce) or
 * that report nothing Postern would notice (resource, software: its
 * resource and software problems are logged, and their defaults). The
 * others would promise notices Postern does not send. */
static const char *const notify_classes[] = { "2bounce", "resource", "software", NULL };
/* lib/util/log.c logs to LOG_MAIL only: accept nothing it would ignore. */
static const char *const facilities[] = { "mail", NULL };
static const char *const bare_newline[] = { "normalize", "reject", "yes", "no", NULL };
static const char *const plaintext_auth[] = { "yes", "no", "loopback", NULL };
/* The LMTP client has no TLS and no SASL: a setting asking for them is
 * refused, not silently ignored. */
static const char *const lmtp_tls_levels[] = { "", "none", NULL };
static const char *const bool_no[] = { "no", "false", "0", "off", NULL };
static const char *const cipher_grades[] = { "high", "medium", "low", "export",
	"null", NULL };
static const char *const eecdh_grades[] = { "auto", "strong", "ultra", "none", NULL };

static const struct {
	const char *name;
	const char *const *choices;
	int list;
} param_choices[] = {
	{ "allow_mail_to_commands", sources, 1 },
	{ "allow_mail_to_files", sources, 1 },
	{ "imapd_plaintext_auth", plaintext_auth, 0 },
	{ "inet_protocols", protocols, 1 },
	{ "notify_classes", notify_classes, 1 },
	{ "lmtp_sasl_auth_enable", bool_no, 0 },
	{ "lmtp_tls_security_level", lmtp_tls_levels, 0 },
	{ "managesieve_plaintext_auth", plaintext_auth, 0 },
	{ "pop3d_plaintext_auth", plaintext_auth, 0 },
	{ "smtp_tls_security_level", tls_client_levels, 0 },
	{ "smtpd_forbid_bare_newline", bare_newline, 0 },
	{ "smtpd_tls_security_level", tls_server_levels, 0 },
	{ "smtp_tls_ciphers", cipher_grades, 0 },
	{ "smtp_tls_mandatory_ciphers", cipher_grades, 0 },
	{ "smtpd_tls_ciphers", cipher_grades, 0 },
	{ "smtpd_tls_mandatory_ciphers", cipher_grades, 0 },
	{ "smtpd_tls_eecdh_grade", eecdh_grades, 0 },
	{ "syslog_facility", facilities, 0 },
};

static char *
choices_text(const char *const *choices)
{
	struct buf b = BUF_INIT(0);

	for (; *choices != NULL; choices++) {
		if (**choices == '\0')
			continue;
		if (b.len > 0)
			buf_puts(&b, choices[1] != NULL ? ", " : " or ");
		buf_puts(&b, *choices);
	}
	return buf_steal(&b);
}

/* NULL when v is acceptable for def, else the expected form (allocated). */
static char *
value_problem(const struct param_def *def, const char *v)
{
	long long n;
	size_t i, j;

	switch (def->type) {
	case CONF_STR:
		break;
	case CONF_INT:
	case CONF_SIZE:
		if (parse_int(v, &n) != 0)
			return xstrdup("a non-negative integer");
		break;
	case CONF_TIME:
		if (config_parse_time(v, def->unit ? def->unit : 's') < 0)
			return xstrdup("a time (number with unit s, m, h, d or w)");
		break;
	case CONF_BOOL:
		if (parse_bool(v) < 0)
			return xstrdup("yes or no");
		break;
	}
	if (strcmp(def->name, "inet_interfaces") == 0) {
		const char *addr;
		int family;

		if (net_interfaces(v, &addr, &family) < 0)
			return xstrdup("all, loopback-only or one IP address (name "
			    "more listening addresses in master.conf)");
	}
	n = (long long)strlen(def->name);
	if (n > 10 && strcmp(def->name + n - 10, "_protocols") == 0 &&
	    strstr(def->name, "_tls_") != NULL) {
		unsigned mask;
		const char *why;

		if (tls_protocols_parse(v, &mask, &why) < 0)
			return xasprintf("a TLS protocol list such as \">=TLSv1.2\" or "
			    "\"!SSLv2, !SSLv3, !TLSv1, !TLSv1.1\" (%s)", why);
	}
	if (n > 17 && strcmp(def->name + n - 17, "_security_options") == 0 &&
	    strstr(def->name, "_sasl_") != NULL) {
		const char *why;

		if (sasl_plaintext_allowed(v, &why) < 0)
			return xstrdup("a list of noanonymous, noplaintext, noactive, "
			    "nodictionary, mutual_auth or forward_secrecy");
	}
	if (strcmp(def->name, "pop3d_uidl_format") == 0) {
		struct buf b = BUF_INIT(0);
		int bad = pop3_uidl_format(&b, v, 1, 1, "1.M1P1.host") != 0;

		buf_free(&b);
		if (bad)
			return xstrdup("printable text with %u, %v, %f, %%, zero-padded "
			    "widths and X, holding %u or %f");
	}
	for (i = 0; i < ARRAY_SIZE(param_choices); i++) {
		char **items;
		int ok = 1;

		if (strcmp(param_choices[i].name, def->name) != 0)
			continue;
		if (!param_choices[i].list) {
			char *t = xstrdup(v);

			ok = words_contain_ci(param_choices[i].choices, str_trim(t));
			free(t);
		} else {
			items = strv_split_list(v);
			for (j = 0; items[j] != NULL; j++)
				ok = ok && words_contain_ci(param_choices[i].choices, items[j]);
			strv_free(&items);
		}
		if (!ok) {
			char *list = choices_text(param_choices[i].choices), *r;

			r = xasprintf("%s%s", param_choices[i].list ? "a list of " : "",
			    list);
			free(list);
			return r;
		}
	}
	return NULL;
}

static char *
value_error(const char *name, const char *v, const char *expected)
{
	return xasprintf("parameter %s: bad value '%.200s' (expected %s)", name, v,
	    expected);
}

int
config_check_value(const char *name, const char *value, char **err_r)
{
	struct param *p = name != NULL ? param_find(name) : NULL;
	char *why, *saved;
	const char *v;
	int r = 0;

	*err_r = NULL;
	if (p == NULL || p->def == NULL) {
		*err_r = xasprintf("unknown parameter %s", name ? name : "(null)");
		return -1;
	}
	/* Expand as the daemon will: set it, look, and put the old value back. */
	saved = p->value != NULL ? xstrdup(p->value) : NULL;
	param_store(name, value);
	v = param_expanded(param_find(name));
	if ((why = value_problem(p->def, v)) != NULL) {
		*err_r = value_error(name, v, why);
		free(why);
		r = -1;
	}
	p = param_find(name);
	retire(&p->value);
	p->value = saved;
	conf.gen++;
	return r;
}

int
config_check(char **err_r)
{
	char *why;
	const char *v;
	size_t i;

	*err_r = NULL;
	conf_init();
	for (i = 0; i < conf.n; i++) {
		struct param *p = &conf.v[i];

		if (p->def == NULL)
			continue;
		v = param_expanded(p);
		if ((why = value_problem(p->def, v)) != NULL) {
			*err_r = value_error(p->name, v, why);
			free(why);
			return -1;
		}
	}
	return 0;
}

static int
cmp_param(const void *a, const void *b)
{
	const struct param *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static void
print_param(FILE *out, struct param *p, int expand_it)
{
	const char *v = expand_it ? param_expanded(p) : param_raw(p);

	if (*v == '\0')
		fprintf(out, "%s =\n", p->name);
	else
		fprintf(out, "%s = %s\n", p->name, v);
}

void
config_print_x(FILE *out, int only_nondefault, int expand_it)
{
	struct param **sorted;
	size_t i, n = 0;

	conf_init();
	sorted = xcalloc(conf.n, sizeof(*sorted));
	for (i = 0; i < conf.n; i++)
		if (!only_nondefault || conf.v[i].value != NULL)
			sorted[n++] = &conf.v[i];
	qsort(sorted, n, sizeof(*sorted), cmp_param);
	for (i = 0; i < n; i++)
		print_param(out, sorted[i], expand_it);
	free(sorted);
}

static void
print_default(FILE *out, struct param *p)
{
	char *saved = p->value;
	const char *v;

	/* param_raw without the file's value is the default */
	p->value = NULL;
	v = param_raw(p);
	fprintf(out, *v == '\0' ? "%s =\n" : "%s = %s\n", p->name, v);
	p->value = saved;
}

void
config_print_defaults(FILE *out)
{
	struct param **sorted;
	size_t i, n = 0;

	conf_init();
	sorted = xcalloc(conf.n, sizeof(*sorted));
	for (i = 0; i < conf.n; i++)
		if (conf.v[i].def != NULL)
			sorted[n++] = &conf.v[i];
	qsort(sorted, n, sizeof(*sorted), cmp_param);
	for (i = 0; i < n; i++)
		print_default(out, sorted[i]);
	free(sorted);
}

int
config_print_default_one(FILE *out, const char *name)
{
	struct param *p = name != NULL ? param_find(name) : NULL;

	if (p == NULL || p->def == NULL)
		return -1;
	print_default(out, p);
	return 0;
}

int
config_known(const char *name)
{
	struct param *p = name != NULL ? param_find(name) : NULL;

	return p != NULL && p->def != NULL;
}

void
config_print(FILE *out, int only_nondefault)
{
	config_print_x(out, only_nondefault, 0);
}

int
config_print_one_x(FILE *out, const char *name, int expand_it)
{
	struct param *p = name ? param_find(name) : NULL;

	if (p == NULL)
		return -1;
	print_param(out, p, expand_it);
	return 0;
}

int
config_print_one(FILE *out, const char *name)
{
	return config_print_one_x(out, name, 0);
}
