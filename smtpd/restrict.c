/*
 * restrict - smtpd's side of the access restrictions: reads the
 * smtpd_*_restrictions lists at start (lib/mail/restrict.c parses and
 * evaluates them), runs them at MAIL, RCPT, DATA and end of data, answers
 * the evaluator's questions without blocking (DNS through c-ares on the
 * process's loop, policy services through smtpd/policy.c), and logs
 * rejects in Postfix's format.
 *
 * Invariants:
 * - While an answer is awaited the session neither reads nor runs
 *   commands (smtpd_restrict_busy, checked by session_may_process), so
 *   pipelined commands wait their turn; a session that closes cancels its
 *   question (smtpd_restrict_end) and no callback reaches freed memory.
 * - Every DNS or policy failure is temporary: a DNSBL that does not answer
 *   does not list; a policy service that fails applies
 *   smtpd_policy_service_default_action (451 4.3.5 by default).
 * - Relaying is decided here and only here (smtpd_relay_restrictions,
 *   then smtpd_recipient_restrictions); smtpd refuses to start when
 *   neither list can refuse an unauthorised destination (DESIGN.md
 *   invariant 4, restrict_set_check_relay()).
 * Sockets: policy services (inet:host:port, unix:/path) through the
 *   connection pool of smtpd/policy.c; the DNS servers of
 *   smtpd_dns_servers (or resolv.conf), through one c-ares channel per
 *   process (smtpd_dns(), shared with peer.c and policy.c).
 * Trusts: nothing in DNS or policy answers (bounded and cleaned by the
 *   evaluator; a policy reply line is cut at RESTRICT_TEXT_MAX).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/net.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/dns.h"
#include "mail/maps.h"
#include "mail/resolve.h"
#include "mail/restrict.h"
#include "smtpd.h"

static struct restrict_set rset;
static struct dns_async *dns;
static char *dns_servers;
static long long dns_timeout_ms;

struct smtpd_restrict {
	struct session *s;
	struct restrict_ctx ctx;
	/* the evaluation in progress */
	int busy;
	enum restrict_stage stages[RS_STAGES];
	size_t nstages;
	smtpd_restrict_done_fn done;
	void *arg;
	char *rcpt;
	/* the question in flight */
	struct dns_q *q;
	enum restrict_query qtype;
	char *qkey;
	int ptr_step;              /* RQ_DOMAIN: 0 MX, 1 A, 2 AAAA */
	int in_ask;                /* inside ask(): answers are stored, not run */
	int answered;              /* ask() got its answer at once */
	struct policy_req *preq;   /* the policy request in flight */
};

static int
code_param(const char *name, int lo, int hi)
{
	long long v = config_int(name);

	if (v < lo || v > hi)
		log_fatalx("%s: want a number from %d to %d", name, lo, hi);
	return (int)v;
}

/* Read and check every list; fatal on an error (postern check says the
 * same through restrict_parse). */
void
smtpd_restrict_init(void)
{
	struct restrict_settings *st = &rset.st;
	char *err = NULL;

	restrict_settings_default(st);
	st->delay_reject = config_bool("smtpd_delay_reject");
	st->policy.timeout_ms = config_time("smtpd_policy_service_timeout") * 1000;
	st->policy.max_idle_ms = config_time("smtpd_policy_service_max_idle") * 1000;
	st->policy.max_ttl_ms = config_time("smtpd_policy_service_max_ttl") * 1000;
	st->policy.request_limit = config_int_range("smtpd_policy_service_request_limit",
	    0, LLONG_MAX);
	st->policy.try_limit = config_int_range("smtpd_policy_service_try_limit",
	    1, LLONG_MAX);
	st->policy.retry_delay_ms = config_time("smtpd_policy_service_retry_delay") * 1000;
	st->policy.default_action = config_str("smtpd_policy_service_default_action");
	st->policy.policy_context = config_str("smtpd_policy_service_policy_context");
	st->rbl_reject_code = code_param("maps_rbl_reject_code", 400, 599);
	st->access_defer_code = code_param("access_map_defer_code", 400, 499);
	st->access_reject_code = code_param("access_map_reject_code", 500, 599);
	st->defer_code = code_param("defer_code", 400, 499);
	st->reject_code = code_param("reject_code", 500, 599);
	st->relay_reject_code = code_param("relay_domains_reject_code", 400, 599);
	st->unknown_address_code = code_param("unknown_address_reject_code", 400, 599);
	st->unknown_client_code = code_param("unknown_client_reject_code", 400, 599);
	st->unknown_hostname_code = code_param("unknown_hostname_reject_code", 400, 599);
	st->non_fqdn_code = code_param("non_fqdn_reject_code", 400, 599);
	st->invalid_hostname_code = code_param("invalid_hostname_reject_code", 400, 599);
	if (st->policy.timeout_ms <= 0)
		st->policy.timeout_ms = 100 * 1000;
	for (int i = 0; i < RS_STAGES; i++)
		if (restrict_parse((enum restrict_stage)i, config_get(restrict_param[i]),
		    &rset.list[i], &err) < 0)
			log_fatalx("%s", err);
	if (restrict_parse_classes(&rset, &err) < 0)
		log_fatalx("%s", err);
	if (restrict_set_check_relay(&rset, &err) < 0)
		log_fatalx("%s", err);
	dns_servers = xstrdup(config_str("smtpd_dns_servers"));
	dns_timeout_ms = config_time("smtpd_dns_timeout") * 1000;
}

struct dns_async *
smtpd_dns(struct loop *l)
{
	static int warned;
	char *err = NULL;

	if (dns == NULL) {
		dns = dns_async_open(l, dns_servers, (int)dns_timeout_ms, &err);
		if (dns == NULL && !warned++)
			log_warnx("smtpd_dns_servers: %s", err ? err : "c-ares failed");
		free(err);
	}
	return dns;
}

long long
smtpd_dns_timeout_ms(void)
{
	return dns_timeout_ms;
}

int
smtpd_restrict_delay_reject(void)
{
	return rset.st.delay_reject;
}

int
smtpd_restrict_eod_set(void)
{
	return rset.list[RS_EOD].n > 0;
}

int
smtpd_restrict_busy(const struct session *s)
{
	return s->rs != NULL && s->rs->busy;
}

static void
question_cancel(struct smtpd_restrict *r)
{
	dns_q_cancel(r->q);
	r->q = NULL;
	policy_cancel(&r->preq);
	free(r->qkey);
	r->qkey = NULL;
}

void
smtpd_restrict_end(struct session *s)
{
	struct smtpd_restrict *r = s->rs;

	if (r == NULL)
		return;
	question_cancel(r);
	restrict_ctx_free(&r->ctx);
	free(r->rcpt);
	free(r);
	s->rs = NULL;
}

/* --- callbacks for the evaluator ------------------------------------------- */

static int
domain_is_ours(void *arg, const char *domain)
{
	enum rcpt_class cls = RCPT_RELAY;

	(void)arg;
	if (resolver_class_ex(smtpd_conf.resolver, domain, &cls) < 0)
		return -1;
	return cls != RCPT_RELAY;
}

static int
sender_owners(void *arg, const char *sender, char **owners_r)
{
	(void)arg;
	*owners_r = NULL;
	if (smtpd_conf.sender_login_maps == NULL)
		return 0;
	return maplist_lookup_addr(smtpd_conf.sender_login_maps, sender, owners_r);
}

int
smtpd_addr_known(const char *rcpt, const char **why_r)
{
	enum rcpt_class cls = RCPT_RELAY;
	const char *at = strrchr(rcpt, '@');
	int r;

	if (at == NULL)
		return 1;
	if (resolver_class_ex(smtpd_conf.resolver, at + 1, &cls) < 0)
		return -1;
	if (cls == RCPT_RELAY)
		return 1;   /* not ours: relay rules decide */
	r = resolver_rcpt_known(smtpd_conf.resolver, rcpt);
	*why_r = cls == RCPT_VIRTUAL ? "User unknown in virtual mailbox table"
	    : "User unknown in local recipient table";
	return r < 0 ? -1 : r;
}

static int
rcpt_known(void *arg, const char *rcpt, const char **why_r)
{
	(void)arg;
	return smtpd_addr_known(rcpt, why_r);
}

/* --- logging ------------------------------------------------------------------ */

/* "ID: what: CMD from name[addr]: text; from=<> to=<> proto=P helo=<h>" */
static void
log_action(struct session *s, const char *what, const char *text,
    const char *rcpt)
{
	const char *sender = txn_sender(s);
	struct buf b = BUF_INIT(0);

	buf_printf(&b, "%s: %s: %s from %s[%s]: %s;", txn_qid(s), what, s->where,
	    s->name, s->addr, text);
	if (sender != NULL)
		buf_printf(&b, " from=<%s>", sender);
	if (rcpt != NULL)
		buf_printf(&b, " to=<%s>", rcpt);
	buf_printf(&b, " proto=%s", session_proto(s));
	if (s->helo != NULL)
		buf_printf(&b, " helo=<%s>", s->helo);
	log_info("%s", buf_cstr(&b));
	buf_free(&b);
}

/* --- running an evaluation ------------------------------------------------- */

static void run(struct smtpd_restrict *r);

static void
answer_and_run(struct smtpd_restrict *r, enum restrict_answer_status st,
    char **values)
{
	struct session *s = r->s;

	restrict_answer(&r->ctx, r->qtype, r->qkey, st, values);
	question_cancel(r);
	if (r->in_ask) {
		r->answered = 1;   /* ask() returns to run(), which goes on */
		return;
	}
	run(r);
	session_done_cb(s);
}

static void
dns_done(void *arg, enum dns_status st, char **values)
{
	struct smtpd_restrict *r = arg;

	r->q = NULL;
	if (r->qtype == RQ_DOMAIN && r->ptr_step == 0 && st != DNS_OK
	    && st != DNS_TEMPFAIL && st != DNS_BADANSWER) {
		/* No MX: try A, then AAAA (ptr_step counts the tries). */
		r->ptr_step = 1;
		r->q = dns_async_query(dns, r->qkey, DNS_Q_A, dns_done, r);
		return;
	}
	if (r->qtype == RQ_DOMAIN && r->ptr_step == 1 && st != DNS_OK
	    && st != DNS_TEMPFAIL && st != DNS_BADANSWER) {
		r->ptr_step = 2;
		r->q = dns_async_query(dns, r->qkey, DNS_Q_AAAA, dns_done, r);
		return;
	}
	answer_and_run(r, st == DNS_OK ? RA_OK : (st == DNS_TEMPFAIL
	    || st == DNS_BADANSWER) ? RA_TEMPFAIL : RA_NOTFOUND,
	    st == DNS_OK ? values : NULL);
}

/* The policy service's answer (smtpd/policy.c), from the loop. */
static void
policy_done(void *arg, const char *action, const char *why)
{
	struct smtpd_restrict *r = arg;

	r->preq = NULL;
	if (action == NULL) {
		log_warnx("%s: check_policy_service %s: %s", txn_qid(r->s),
		    r->ctx.need.endpoint ? r->ctx.need.endpoint : "?", why);
		answer_and_run(r, RA_TEMPFAIL, NULL);
		return;
	}
	char *v[2] = { (char *)action, NULL };
	answer_and_run(r, RA_OK, v);
}

/* Start answering ctx.need. 1 when the answer is already stored (a
 * failure known at once), 0 when it will come from the loop. */
static void ask_start(struct smtpd_restrict *r, const struct restrict_need *n);

static int
ask(struct smtpd_restrict *r)
{
	const struct restrict_need *n = &r->ctx.need;

	r->in_ask = 1;
	r->answered = 0;
	ask_start(r, n);
	r->in_ask = 0;
	return r->answered;
}

static void
ask_start(struct smtpd_restrict *r, const struct restrict_need *n)
{
	r->qtype = n->type;
	r->qkey = xstrdup(n->name);
	r->ptr_step = 0;
	if (n->type == RQ_POLICY) {
		r->preq = policy_ask(r->s->loop, &n->policy, r->qkey, txn_qid(r->s),
		    policy_done, r);
		return;
	}
	if (smtpd_dns(r->s->loop) == NULL) {
		answer_and_run(r, RA_TEMPFAIL, NULL);
		return;
	}
	static const int qt[] = {
		[RQ_A] = DNS_Q_A, [RQ_TXT] = DNS_Q_TXT, [RQ_DOMAIN] = DNS_Q_MX,
	};
	const char *name = r->qkey;
	r->q = dns_async_query(dns, name, qt[n->type], dns_done, r);
}

/* Evaluate (again); on a result, apply it and call the continuation. */
static void
run(struct smtpd_restrict *r)
{
	struct session *s = r->s;
	struct restrict_result res;

	if (s->dead) {
		r->busy = 0;
		return;
	}
	r->ctx.queue_id = txn_qid(s)[0] == 'N' ? "" : txn_qid(s);
	r->ctx.sender = txn_sender(s);
	r->ctx.instance = txn_instance(s);
	r->ctx.helo = s->helo;
	r->ctx.protocol = session_proto(s);
	r->ctx.sasl_user = s->sasl_user;
	r->ctx.sasl_method = s->sasl_method;
	r->ctx.improper_pipelining = s->pipelining_logged;
	r->ctx.rcpt = r->rcpt;
	r->ctx.stage_name = s->where;
	while (restrict_eval(&rset, r->stages, r->nstages, &r->ctx, &res)
	    == RESTRICT_NEED) {
		if (!ask(r)) {
			r->busy = 1;
			return;
		}
	}
	int was_busy = r->busy;
	r->busy = 0;
	struct smtpd_restrict_verdict v = { 0 };
	for (size_t i = 0; i < res.nev; i++) {
		const char *t = res.ev[i].text;
		switch (res.ev[i].type) {
		case REV_WARN:
			log_action(s, "reject_warning", t, r->rcpt);
			break;
		case REV_HOLD:
			log_action(s, "hold", t, r->rcpt);
			v.hold = 1;
			break;
		case REV_DISCARD:
			log_action(s, "discard", t, r->rcpt);
			v.discard = 1;
			break;
		case REV_PREPEND:
			strv_push(&v.prepend, t);
			break;
		case REV_INFO:
			log_warnx("%s: %s", txn_qid(s), t);
			break;
		case REV_LOG_WARN:
			log_action(s, "warn", t, r->rcpt);
			break;
		case REV_LOG_INFO:
			log_action(s, "info", t, r->rcpt);
			break;
		}
	}
	if (res.reply != NULL) {
		v.reply = res.reply;
		log_action(s, "reject", res.reply, r->rcpt);
	}
	long long before = s->errors;
	r->done(s, &v, r->arg);
	strv_free(&v.prepend);
	restrict_result_free(&res);
	if (was_busy && !s->dead) {
		session_count_errors(s, before);
		session_process_more(s);
	}
}

void
smtpd_restrict_check(struct session *s, enum smtpd_check_point at,
    const char *rcpt, smtpd_restrict_done_fn done, void *arg)
{
	static const enum restrict_point points[] = {
		[SMTPD_CHECK_CONNECT] = RP_CONNECT, [SMTPD_CHECK_HELO] = RP_HELO,
		[SMTPD_CHECK_MAIL] = RP_MAIL, [SMTPD_CHECK_RCPT] = RP_RCPT,
		[SMTPD_CHECK_DATA] = RP_DATA, [SMTPD_CHECK_EOD] = RP_EOD,
	};
	struct smtpd_restrict *r = s->rs;
	enum restrict_stage stages[RS_STAGES];
	size_t n = restrict_stages(rset.st.delay_reject, points[at], stages), i;

	/* No entry to run (CONNECT, HELO and MAIL under smtpd_delay_reject,
	 * or empty lists): the evaluation would accept with no event, so
	 * accept at once and do not create the session's state for it; an
	 * idle session then carries none. */
	for (i = 0; i < n && rset.list[stages[i]].n == 0; i++)
		;
	if (r == NULL && i == n) {
		struct smtpd_restrict_verdict v = { 0 };

		if (!s->dead)   /* as run() */
			done(s, &v, arg);
		return;
	}
	if (r == NULL) {
		r = s->rs = xcalloc(1, sizeof(*r));
		r->s = s;
		r->ctx.client_name = s->name;
		r->ctx.reverse_client_name = s->reverse_name;
		r->ctx.client_name_status = (enum peer_status)s->name_status;
		r->ctx.reverse_name_status = (enum peer_status)s->reverse_name_status;
		r->ctx.client_addr = s->addr;
		r->ctx.in_mynetworks = s->in_mynetworks;
		r->ctx.domain_is_ours = domain_is_ours;
		r->ctx.rcpt_known = rcpt_known;
		r->ctx.sender_owners = sender_owners;
	}
	memcpy(r->stages, stages, n * sizeof(stages[0]));
	r->nstages = n;
	r->done = done;
	r->arg = arg;
	free(r->rcpt);
	r->rcpt = rcpt != NULL ? xstrdup(rcpt) : NULL;
	r->ctx.rcpt_count = txn_rcpt_count(s);
	restrict_forget_policy(&r->ctx);
	run(r);
}
