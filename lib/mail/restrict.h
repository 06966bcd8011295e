/*
 * restrict - Postfix's SMTP access restrictions (smtpd_*_restrictions) as
 * a pure evaluator: lists are parsed once (restrict_parse), then evaluated
 * against a context the caller fills in (restrict_eval). Nothing here does
 * I/O except access-table lookups (lib/mail/maps.h, local files).
 *
 * DNS and policy-service answers come in from outside: when an entry needs
 * one that the context does not hold yet, restrict_eval returns
 * RESTRICT_NEED with ctx->need describing the question. The caller gets
 * the answer (without blocking: smtpd's event loop), stores it with
 * restrict_answer(), and calls restrict_eval again with the same
 * arguments; the evaluation re-runs from the start and finds its earlier
 * answers in the context, so it is deterministic and side-effect free
 * until it returns RESTRICT_DONE. (Unit tests answer from tables.)
 *
 * Evaluation (Postfix's): the lists of the stages given are run in order;
 * in each list the first entry that decides wins: a permit ends that list
 * only, a reject ends the whole evaluation. warn_if_reject turns the
 * reject of the next entry into a warning. DEFER_IF_PERMIT (an access or
 * policy action) defers at the end if nothing rejected.
 *
 * Limits: RESTRICT_ANSWERS_MAX cached answers per context (oldest
 * dropped; the table grows from nothing); access values, policy replies and DNS TXT texts are cut at
 * RESTRICT_TEXT_MAX bytes.
 */
#ifndef POSTERN_RESTRICT_H
#define POSTERN_RESTRICT_H

#include <stddef.h>

#include "mail/peer.h"

#define RESTRICT_ANSWERS_MAX 64
#define RESTRICT_TEXT_MAX 1024

enum restrict_stage {
	RS_CLIENT, RS_HELO, RS_SENDER, RS_RELAY, RS_RECIPIENT, RS_DATA, RS_EOD,
	RS_STAGES,
};

/* The parameter name of each stage ("smtpd_client_restrictions"...). */
extern const char *const restrict_param[RS_STAGES];

/* Questions the evaluator asks the caller. */
enum restrict_query {
	RQ_A,        /* IPv4 addresses of name (DNSBL/DNSWL/RHSBL lookups) */
	RQ_TXT,      /* TXT of name (the DNSBL's reason) */
	RQ_DOMAIN,   /* does name have MX, A or AAAA records? */
	RQ_POLICY,   /* policy service 'endpoint', request text 'name' */
};

enum restrict_answer_status {
	RA_OK,          /* values hold the answer (maybe none) */
	RA_NOTFOUND,    /* NXDOMAIN / no data */
	RA_TEMPFAIL,    /* DNS or policy service failure */
};

/* How one policy service is used: the smtpd_policy_service_* parameters,
 * or a check_policy_service { endpoint, name=value, ... } entry's own
 * values (Postfix 3.0 names: timeout, default_action, max_idle, max_ttl,
 * request_limit, try_limit, retry_delay, policy_context). Strings are
 * borrowed from the list or the settings. */
struct restrict_policy {
	const char *endpoint;          /* "inet:host:port" or "unix:path" */
	long long timeout_ms;          /* smtpd_policy_service_timeout */
	long long max_idle_ms;         /* smtpd_policy_service_max_idle */
	long long max_ttl_ms;          /* smtpd_policy_service_max_ttl */
	long long request_limit;       /* smtpd_policy_service_request_limit, 0 none */
	long long try_limit;           /* smtpd_policy_service_try_limit */
	long long retry_delay_ms;      /* smtpd_policy_service_retry_delay */
	const char *default_action;    /* smtpd_policy_service_default_action */
	const char *policy_context;    /* smtpd_policy_service_policy_context */
};

struct restrict_need {
	enum restrict_query type;
	const char *name;       /* DNS name, address, or policy request */
	const char *endpoint;   /* RQ_POLICY: "inet:host:port" or "unix:/path" */
	struct restrict_policy policy;   /* RQ_POLICY: the service's settings */
};

struct restrict_settings {
	int delay_reject;              /* smtpd_delay_reject */
	struct restrict_policy policy; /* smtpd_policy_service_* (no endpoint) */
	int rbl_reject_code;           /* maps_rbl_reject_code (554) */
	int access_defer_code;         /* access_map_defer_code (450) */
	int access_reject_code;        /* access_map_reject_code (554) */
	int defer_code;                /* defer_code (450) */
	int reject_code;               /* reject_code (554) */
	int relay_reject_code;         /* relay_domains_reject_code (554) */
	int unknown_address_code;      /* unknown_address_reject_code (450) */
	int unknown_client_code;       /* unknown_client_reject_code (450) */
	int unknown_hostname_code;     /* unknown_hostname_reject_code (450) */
	int non_fqdn_code;             /* non_fqdn_reject_code (504) */
	int invalid_hostname_code;     /* invalid_hostname_reject_code (501) */
	int unauth_pipelining_code;    /* unverified... : 503 */
};

/* Defaults as Postfix 3.x. */
void restrict_settings_default(struct restrict_settings *st);

struct restrict_item;
struct restrict_list {
	struct restrict_item *v;
	size_t n;
};

/* smtpd_restriction_classes: a named list, usable as an entry of any
 * list and as an access table's result. */
struct restrict_class {
	char *name;
	struct restrict_list list;
};

/* The parsed lists of all stages, and the classes. */
struct restrict_set {
	struct restrict_list list[RS_STAGES];
	struct restrict_settings st;
	struct restrict_class *classes;
	size_t nclasses;
};

/* Parse "text" (a Postfix restriction list) for a stage: entries that do
 * not exist, do not belong in that stage, or miss their argument are
 * errors (*err_r, xmalloc'd), as are maps that do not open. 0 or -1. */
int restrict_parse(enum restrict_stage stage, const char *text,
    struct restrict_list *list_r, char **err_r);
void restrict_list_free(struct restrict_list *l);
/* The classes smtpd_restriction_classes names, each from the parameter
 * of its name, into set (a name in a list that is a class is taken as
 * one by restrict_parse). 0, or -1 and *err_r. */
int restrict_parse_classes(struct restrict_set *set, char **err_r);
/* Postfix's open-relay guard: relay or recipient restrictions must hold
 * reject_unauth_destination, defer_unauth_destination, reject or defer.
 * 0, or -1 with *err_r. */
int restrict_set_check_relay(const struct restrict_set *set, char **err_r);
void restrict_set_free(struct restrict_set *set);

/* What the caller knows about the session, and the cached answers. */
struct restrict_answer_ent {
	enum restrict_query type;
	char *key;
	enum restrict_answer_status status;
	char **values;
};

struct restrict_ctx {
	/* session */
	const char *client_name;   /* verified name, "unknown" when not known */
	const char *reverse_client_name;  /* PTR name or "unknown"; NULL: as above */
	enum peer_status client_name_status;    /* PEER_UNKNOWN: permanent */
	enum peer_status reverse_name_status;
	const char *client_addr;
	const char *helo;          /* NULL before HELO/EHLO */
	const char *protocol;      /* "SMTP", "ESMTP", ... */
	const char *queue_id;      /* "" before the queue file exists */
	const char *instance;      /* the transaction's policy "instance", or NULL */
	int in_mynetworks;
	const char *sasl_user;     /* NULL unless authenticated */
	const char *sasl_method;
	int improper_pipelining;   /* the client talked before our reply */
	/* transaction */
	const char *sender;        /* NULL before MAIL */
	const char *rcpt;          /* NULL outside RCPT */
	long long rcpt_count;
	long long size;            /* SIZE=, or 0 */
	const char *stage_name;    /* "CONNECT", "HELO", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE" */
	/* callbacks into the caller's tables (synchronous, local) */
	void *cb_arg;
	/* class of a recipient domain: 1 ours (local/virtual), 0 not, -1 temp */
	int (*domain_is_ours)(void *arg, const char *domain);
	/* is rcpt a known user? 1 yes, 0 no (*why_r: "User unknown in ...",
	 * static), -1 temporary */
	int (*rcpt_known)(void *arg, const char *rcpt, const char **why_r);
	/* the logins that own sender (smtpd_sender_login_maps): 1 and
	 * *owners_r (xmalloc'd, a list), 0 not listed, -1 temporary */
	int (*sender_owners)(void *arg, const char *sender, char **owners_r);
	/* answers; need is set when restrict_eval returns RESTRICT_NEED */
	/* grown on the first answer: a session that asks nothing (most
	 * of them) pays no table (restrict_ctx_free releases it) */
	struct restrict_answer_ent *ans;
	size_t nans, capans;
	struct restrict_need need;
	char *need_key;            /* owns need.name */
};

/* Store an answer to ctx->need (or any question); values are copied. */
void restrict_answer(struct restrict_ctx *ctx, enum restrict_query type,
    const char *key, enum restrict_answer_status status, char *const *values);
/* Forget policy answers (each RCPT asks the policy service again). */
void restrict_forget_policy(struct restrict_ctx *ctx);
void restrict_ctx_free(struct restrict_ctx *ctx);

/* An event of an evaluation, in order. */
enum restrict_ev {
	REV_WARN,      /* warn_if_reject: text is the reply that was not sent */
	REV_HOLD,      /* text: "<x>: Recipient address triggers HOLD action" */
	REV_DISCARD,   /* text: "<x>: ... triggers DISCARD action" */
	REV_PREPEND,   /* text: the header line */
	REV_INFO,      /* a warning for the administrator (config errors) */
	REV_LOG_WARN,  /* access action WARN: "warn: RCPT from ...: text" */
	REV_LOG_INFO,  /* access action INFO: "info: RCPT from ...: text" */
};

struct restrict_event {
	enum restrict_ev type;
	char *text;
};

struct restrict_result {
	char *reply;     /* NULL: accepted; else "554 5.7.1 ..." */
	struct restrict_event *ev;
	size_t nev;
};

enum restrict_status { RESTRICT_DONE, RESTRICT_NEED };

/* Evaluate the lists of stages[0..n) in order. On RESTRICT_DONE *res is
 * filled (free with restrict_result_free). stages earlier than RS_RELAY
 * are skipped while their data is missing (no HELO yet: helo list runs
 * with helo NULL as Postfix does). */
enum restrict_status restrict_eval(const struct restrict_set *set,
    const enum restrict_stage *stages, size_t n, struct restrict_ctx *ctx,
    struct restrict_result *res);
void restrict_result_free(struct restrict_result *res);

/* Which lists run at a point of the SMTP dialogue (Postfix's order):
 * with delay_reject the client, HELO and sender lists wait for RCPT;
 * without it the client list runs at connect, the HELO list at HELO/EHLO
 * and the sender list at MAIL. Fills stages (RS_STAGES entries), returns
 * how many (0: nothing runs there). */
enum restrict_point { RP_CONNECT, RP_HELO, RP_MAIL, RP_RCPT, RP_DATA, RP_EOD };
size_t restrict_stages(int delay_reject, enum restrict_point at,
    enum restrict_stage *stages);

/* Pure helpers, exported for tests. */
/* Postfix's reject_invalid_helo_hostname syntax check: 1 valid. */
int restrict_helo_valid(const char *helo);
/* Is user among the logins of owners (a smtpd_sender_login_maps value:
 * names separated by commas or spaces)? */
int restrict_login_owns(const char *owners, const char *user);
/* "d.c.b.a" for IPv4 "a.b.c.d", nibbles for IPv6; 0 or -1. */
int restrict_reverse_addr(const char *addr, char *out, size_t outlen);

#endif
