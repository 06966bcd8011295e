/*
 * test_restrict - the restriction evaluator driven with bytes: lists
 * parsed from text (inline: tables, no files), a context filled in by
 * hand, DNS and policy answers given from tables when the evaluator asks
 * (RESTRICT_NEED). Covers parsing errors, Postfix's evaluation order
 * across lists, smtpd_delay_reject's stage choice, warn_if_reject, the
 * access(5) actions, DNSBL filters and reply texts, and the policy
 * protocol request and default action.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/restrict.h"

/* Canned answers: type, key, status, first value (NULL: none). */
struct canned {
	enum restrict_query type;
	const char *key;
	enum restrict_answer_status status;
	const char *value;
};

static struct restrict_set set;
static struct restrict_ctx ctx;
static int asked;                 /* questions asked during the last run */
static char last_policy[4096];    /* the last policy request */
static char last_endpoint[256];
static struct restrict_policy last_pol;   /* the settings of the last policy question */

static int
ours(void *arg, const char *domain)
{
	(void)arg;
	return strcmp(domain, "example.test") == 0;
}

static int
known(void *arg, const char *rcpt, const char **why_r)
{
	(void)arg;
	*why_r = "User unknown in virtual mailbox table";
	return strcmp(rcpt, "alice@example.test") == 0;
}

static void
setup_lists(const char *client, const char *helo, const char *sender,
    const char *relay, const char *rcpt)
{
	const char *texts[RS_STAGES] = { client, helo, sender, relay, rcpt, "", "" };
	char *err = NULL;

	memset(&set, 0, sizeof(set));
	restrict_settings_default(&set.st);
	for (int i = 0; i < RS_STAGES; i++) {
		int r = restrict_parse((enum restrict_stage)i, texts[i] ? texts[i] : "",
		    &set.list[i], &err);
		ck_assert_msg(r == 0, "parse %s: %s", texts[i], err ? err : "?");
	}
	ck_assert_msg(restrict_parse_classes(&set, &err) == 0, "classes: %s", err);
	memset(&ctx, 0, sizeof(ctx));
	ctx.client_name = "unknown";
	ctx.client_addr = "192.0.2.1";
	ctx.helo = "client.example.org";
	ctx.protocol = "ESMTP";
	ctx.queue_id = "";
	ctx.sender = "sender@example.org";
	ctx.rcpt = "alice@example.test";
	ctx.stage_name = "RCPT";
	ctx.domain_is_ours = ours;
	ctx.rcpt_known = known;
}

static void
teardown_lists(void)
{
	restrict_set_free(&set);
	restrict_ctx_free(&ctx);
}

/* Evaluate the RCPT stages, answering questions from table; returns the
 * reply (or NULL) and leaves the events in *res. */
static const char *
run_rcpt(const struct canned *table, size_t n, struct restrict_result *res)
{
	enum restrict_stage st[RS_STAGES];
	size_t ns = restrict_stages(1, RP_RCPT, st);

	asked = 0;
	while (restrict_eval(&set, st, ns, &ctx, res) == RESTRICT_NEED) {
		size_t i;

		asked++;
		ck_assert_int_lt(asked, 20);
		if (ctx.need.type == RQ_POLICY) {
			snprintf(last_policy, sizeof(last_policy), "%s", ctx.need.name);
			snprintf(last_endpoint, sizeof(last_endpoint), "%s", ctx.need.endpoint);
			last_pol = ctx.need.policy;
		}
		for (i = 0; i < n; i++)
			if (table[i].type == ctx.need.type
			    && (table[i].key == NULL || strcmp(table[i].key, ctx.need.name) == 0))
				break;
		ck_assert_msg(i < n, "unexpected question %d \"%s\"", ctx.need.type,
		    ctx.need.name);
		char *v[2] = { (char *)table[i].value, NULL };
		restrict_answer(&ctx, ctx.need.type, ctx.need.name, table[i].status,
		    table[i].value ? v : NULL);
	}
	return res->reply;
}

static void
want_reply(const struct canned *t, size_t n, const char *want)
{
	struct restrict_result res;
	const char *got = run_rcpt(t, n, &res);

	if (want == NULL)
		ck_assert_msg(got == NULL, "got '%s', want accept", got);
	else
		ck_assert_msg(got != NULL && strcmp(got, want) == 0, "got '%s', want '%s'",
		    got ? got : "(accept)", want);
	restrict_result_free(&res);
}

/* --- parsing -------------------------------------------------------------- */

START_TEST(test_parse_errors)
{
	static const struct {
		enum restrict_stage st;
		const char *text;
		const char *want;
	} cases[] = {
		{ RS_RECIPIENT, "permit_mynetworks, reject_bogus", "unknown restriction \"reject_bogus\"" },
		{ RS_CLIENT, "reject_rbl_client", "needs a DNS domain" },
		{ RS_CLIENT, "reject_rbl_client zen.example=127.0.0", "bad reply filter" },
		{ RS_CLIENT, "reject_rbl_client zen.example=127.0.0.[2..", "bad reply filter" },
		{ RS_CLIENT, "reject_rbl_client nodots", "not a DNS domain" },
		{ RS_HELO, "check_helo_access", "needs a table" },
		{ RS_HELO, "check_helo_access nosuchtype:/x", "check_helo_access nosuchtype:/x" },
		{ RS_RECIPIENT, "check_policy_service tcp:1.2.3.4", "want inet:host:port" },
		{ RS_RECIPIENT, "check_policy_service inet:127.0.0.1", "want inet:host:port" },
		{ RS_SENDER, "smtpd_restriction_classes", "unknown restriction" },
		{ RS_RECIPIENT, "check_policy_service { timeout=1s }", "names no endpoint" },
		{ RS_RECIPIENT, "check_policy_service { inet:127.0.0.1:9, bogus=1 }",
		  "unknown attribute \"bogus\"" },
		{ RS_RECIPIENT, "check_policy_service { inet:127.0.0.1:9, timeout=soon }",
		  "timeout=soon: not a time" },
		{ RS_RECIPIENT, "check_policy_service { inet:127.0.0.1:9, try_limit=0 }",
		  "at least 1" },
		{ RS_RECIPIENT, "check_policy_service { inet:127.0.0.1:9, request_limit=-1 }",
		  "want a number" },
		{ RS_RECIPIENT, "check_policy_service { inet:127.0.0.1:9, unix:/x }",
		  "want name=value after the endpoint" },
		{ RS_RECIPIENT, "check_policy_service { tcp:1.2.3.4 }", "want inet:host:port" },
		{ RS_RECIPIENT, "check_policy_service { inet:127.0.0.1:9", "unbalanced" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct restrict_list l;
		char *err = NULL;
		ck_assert_int_eq(restrict_parse(cases[i].st, cases[i].text, &l, &err), -1);
		ck_assert_msg(err != NULL && strstr(err, cases[i].want) != NULL,
		    "%s: got '%s', want '%s'", cases[i].text, err ? err : "", cases[i].want);
		ck_assert_msg(strncmp(err, restrict_param[cases[i].st],
		    strlen(restrict_param[cases[i].st])) == 0, "names the parameter: %s", err);
		free(err);
	}
}
END_TEST

START_TEST(test_parse_ok_and_relay_guard)
{
	char *err = NULL;

	setup_lists("permit_mynetworks, reject_rbl_client zen.example=127.0.0.[2..11]",
	    "reject_invalid_helo_hostname, check_helo_access inline:{a.example=REJECT, b=OK}",
	    "reject_non_fqdn_sender",
	    "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
	    "check_policy_service unix:private/policy, check_policy_service inet:127.0.0.1:10023");
	ck_assert_int_eq(restrict_set_check_relay(&set, &err), 0);
	teardown_lists();
	/* neither list can refuse a foreign destination: an open relay */
	setup_lists("", "", "", "permit_mynetworks", "permit_sasl_authenticated");
	ck_assert_int_eq(restrict_set_check_relay(&set, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "open relay"));
	free(err);
	teardown_lists();
}
END_TEST

/* --- order ---------------------------------------------------------------- */

START_TEST(test_delay_reject_stages)
{
	enum restrict_stage st[RS_STAGES];

	ck_assert_int_eq(restrict_stages(1, RP_MAIL, st), 0);
	ck_assert_int_eq(restrict_stages(1, RP_RCPT, st), 5);
	ck_assert_int_eq(st[0], RS_CLIENT);
	ck_assert_int_eq(st[1], RS_HELO);
	ck_assert_int_eq(st[2], RS_SENDER);
	ck_assert_int_eq(st[3], RS_RELAY);
	ck_assert_int_eq(st[4], RS_RECIPIENT);
	ck_assert_int_eq(restrict_stages(1, RP_CONNECT, st), 0);
	ck_assert_int_eq(restrict_stages(1, RP_HELO, st), 0);
	/* smtpd_delay_reject = no: each list at its own command (Postfix) */
	ck_assert_int_eq(restrict_stages(0, RP_CONNECT, st), 1);
	ck_assert_int_eq(st[0], RS_CLIENT);
	ck_assert_int_eq(restrict_stages(0, RP_HELO, st), 1);
	ck_assert_int_eq(st[0], RS_HELO);
	ck_assert_int_eq(restrict_stages(0, RP_MAIL, st), 1);
	ck_assert_int_eq(st[0], RS_SENDER);
	ck_assert_int_eq(restrict_stages(0, RP_RCPT, st), 2);
	ck_assert_int_eq(st[0], RS_RELAY);
	ck_assert_int_eq(restrict_stages(1, RP_DATA, st), 1);
	ck_assert_int_eq(st[0], RS_DATA);
	ck_assert_int_eq(restrict_stages(0, RP_EOD, st), 1);
	ck_assert_int_eq(st[0], RS_EOD);
}
END_TEST

static int
owners(void *arg, const char *sender, char **owners_r)
{
	(void)arg;
	*owners_r = NULL;
	if (strcmp(sender, "temp@example.test") == 0)
		return -1;
	if (strcmp(sender, "alice@example.test") == 0)
		*owners_r = strdup("alice, admin");
	return *owners_r != NULL;
}

/* reject_*sender_login_mismatch over smtpd_sender_login_maps: who may
 * use a listed address, and what an unlisted one gets. */
START_TEST(test_sender_login_mismatch)
{
	static const struct {
		const char *restriction, *user, *sender, *want;
	} cases[] = {
		{ "reject_sender_login_mismatch", NULL, "alice@example.test",
		  "553 5.7.1 <alice@example.test>: Sender address rejected: not logged in" },
		{ "reject_sender_login_mismatch", NULL, "x@example.org", NULL },
		{ "reject_sender_login_mismatch", "bob", "alice@example.test",
		  "553 5.7.1 <alice@example.test>: Sender address rejected: not owned by "
		  "user bob" },
		{ "reject_sender_login_mismatch", "bob", "x@example.org",
		  "553 5.7.1 <x@example.org>: Sender address rejected: not owned by user bob" },
		{ "reject_sender_login_mismatch", "ADMIN", "alice@example.test", NULL },
		{ "reject_sender_login_mismatch", "alice", "", NULL },
		{ "reject_known_sender_login_mismatch", "bob", "x@example.org", NULL },
		{ "reject_known_sender_login_mismatch", "bob", "alice@example.test",
		  "553 5.7.1 <alice@example.test>: Sender address rejected: not owned by "
		  "user bob" },
		{ "reject_authenticated_sender_login_mismatch", NULL, "alice@example.test",
		  NULL },
		{ "reject_unauthenticated_sender_login_mismatch", "bob",
		  "alice@example.test", NULL },
		{ "reject_unauthenticated_sender_login_mismatch", NULL,
		  "alice@example.test", "553 5.7.1 <alice@example.test>: Sender address "
		  "rejected: not logged in" },
		{ "reject_sender_login_mismatch", "alice", "temp@example.test",
		  "451 4.3.0 <temp@example.test>: Temporary lookup failure" },
	};
	char *err = NULL;
	struct restrict_list l;

	/* without the table they would pass everyone: refused */
	ck_assert_int_eq(restrict_parse(RS_SENDER, "reject_sender_login_mismatch",
	    &l, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs smtpd_sender_login_maps"));
	free(err);
	ck_assert_int_eq(config_set("smtpd_sender_login_maps", "inline:{a=b}"), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setup_lists("", "", cases[i].restriction, "permit", "");
		ctx.sender_owners = owners;
		ctx.sasl_user = cases[i].user;
		ctx.sender = cases[i].sender;
		want_reply(NULL, 0, cases[i].want);
		teardown_lists();
	}
	ck_assert_int_eq(config_set("smtpd_sender_login_maps", ""), 0);
	ck_assert(restrict_login_owns("alice, admin", "Admin"));
	ck_assert(restrict_login_owns("alice admin", "alice"));
	ck_assert(!restrict_login_owns("alice,admin", "ali"));
}
END_TEST

START_TEST(test_unlisted_sender)
{
	setup_lists("", "", "reject_unlisted_sender", "permit", "");
	ctx.sender = "bob@example.test";
	want_reply(NULL, 0, "550 5.1.0 <bob@example.test>: Sender address rejected: "
	    "User unknown in virtual mailbox table");
	ctx.sender = "alice@example.test";
	want_reply(NULL, 0, NULL);
	ctx.sender = "";
	want_reply(NULL, 0, NULL);
	teardown_lists();
}
END_TEST

/* smtpd_restriction_classes: a class as an entry and as an access
 * result decides as one entry; a loop among classes is a 451. */
START_TEST(test_restriction_classes)
{
	struct restrict_set bad;
	char *err = NULL;

	config_set("smtpd_restriction_classes", "strict, loop");
	config_set("strict", "reject_non_fqdn_sender, permit");
	config_set("loop", "loop");
	setup_lists("", "", "check_sender_access inline:{{root@localhost=strict}, "
	    "{a@example.org=strict}}", "permit", "reject");
	ctx.sender = "root@localhost";
	want_reply(NULL, 0, "504 5.5.2 <root@localhost>: Sender address rejected: "
	    "need fully-qualified address");
	/* the class's permit ends the sender list only */
	ctx.sender = "a@example.org";
	want_reply(NULL, 0, "554 5.7.1 <alice@example.test>: Recipient address "
	    "rejected: Access denied");
	teardown_lists();
	setup_lists("", "", "strict", "permit", "");
	ctx.sender = "root@localhost";
	want_reply(NULL, 0, "504 5.5.2 <root@localhost>: Sender address rejected: "
	    "need fully-qualified address");
	teardown_lists();
	setup_lists("", "", "loop", "permit", "");
	want_reply(NULL, 0, "451 4.3.5 Server configuration error");
	teardown_lists();
	/* a class named like a restriction, or without its parameter */
	memset(&bad, 0, sizeof(bad));
	config_set("smtpd_restriction_classes", "permit");
	ck_assert_int_eq(restrict_parse_classes(&bad, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "is the name of a restriction"));
	free(err);
	restrict_set_free(&bad);
	config_set("smtpd_restriction_classes", "nosuchclass");
	ck_assert_int_eq(restrict_parse_classes(&bad, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "no such parameter"));
	free(err);
	restrict_set_free(&bad);
	config_set("smtpd_restriction_classes", "");
}
END_TEST

START_TEST(test_permit_ends_only_its_list)
{
	/* a permit in the client list does not skip the recipient list */
	setup_lists("permit", "", "", "permit", "reject");
	want_reply(NULL, 0, "554 5.7.1 <alice@example.test>: Recipient address "
	    "rejected: Access denied");
	teardown_lists();
}
END_TEST

START_TEST(test_reject_ends_everything)
{
	/* the client reject wins; the policy service is never asked */
	static const struct canned none[] = { { RQ_POLICY, NULL, RA_OK, "OK" } };
	setup_lists("reject", "", "", "permit", "check_policy_service inet:127.0.0.1:9");
	want_reply(none, 1, "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: "
	    "Access denied");
	ck_assert_int_eq(asked, 0);
	teardown_lists();
	/* the order of the lists: helo before sender */
	setup_lists("", "reject_non_fqdn_helo_hostname", "reject_non_fqdn_sender",
	    "permit", "");
	ctx.helo = "localhost";
	ctx.sender = "root@localhost";
	want_reply(NULL, 0, "504 5.5.2 <localhost>: Helo command rejected: need "
	    "fully-qualified hostname");
	teardown_lists();
}
END_TEST

START_TEST(test_relay)
{
	setup_lists("", "", "", "permit_mynetworks, permit_sasl_authenticated, "
	    "defer_unauth_destination", "");
	ctx.rcpt = "victim@remote.example";
	want_reply(NULL, 0, "454 4.7.1 <victim@remote.example>: Relay access denied");
	ctx.in_mynetworks = 1;
	want_reply(NULL, 0, NULL);
	ctx.in_mynetworks = 0;
	ctx.sasl_user = "alice";
	want_reply(NULL, 0, NULL);
	ctx.sasl_user = NULL;
	ctx.rcpt = "alice@example.test";
	want_reply(NULL, 0, NULL);
	teardown_lists();
	setup_lists("", "", "", "reject_unauth_destination", "");
	ctx.rcpt = "victim@remote.example";
	want_reply(NULL, 0, "554 5.7.1 <victim@remote.example>: Relay access denied");
	teardown_lists();
}
END_TEST

/* --- warn_if_reject --------------------------------------------------------- */

START_TEST(test_warn_if_reject)
{
	struct restrict_result res;

	setup_lists("warn_if_reject, reject_unknown_client_hostname, warn_if_reject",
	    "", "", "permit", "");
	ctx.client_name_status = PEER_UNKNOWN;
	ck_assert_ptr_null(run_rcpt(NULL, 0, &res));
	ck_assert_int_eq(res.nev, 1);
	ck_assert_int_eq(res.ev[0].type, REV_WARN);
	ck_assert_str_eq(res.ev[0].text, "450 4.7.25 Client host rejected: cannot find "
	    "your hostname, [192.0.2.1]");
	restrict_result_free(&res);
	teardown_lists();
	/* warn_if_reject applies to the next entry only */
	setup_lists("warn_if_reject, permit_mynetworks, reject", "", "", "permit", "");
	want_reply(NULL, 0, "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: "
	    "Access denied");
	teardown_lists();
}
END_TEST

/* --- access actions ------------------------------------------------------------ */

START_TEST(test_access_actions)
{
	static const struct {
		const char *value;
		const char *want;        /* reply, or NULL */
		int ev;                  /* expected event type, or -1 */
		const char *evtext;
	} cases[] = {
		{ "OK", NULL, -1, NULL },
		{ "DUNNO", "554 5.7.1 <alice@example.test>: Recipient address rejected: Access denied", -1, NULL },
		{ "REJECT", "554 5.7.1 <alice@example.test>: Recipient address rejected: Access denied", -1, NULL },
		{ "REJECT no thanks", "554 5.7.1 <alice@example.test>: Recipient address rejected: no thanks", -1, NULL },
		{ "REJECT 5.7.26 spoofed", "554 5.7.26 <alice@example.test>: Recipient address rejected: spoofed", -1, NULL },
		{ "DEFER later", "450 4.7.1 <alice@example.test>: Recipient address rejected: later", -1, NULL },
		{ "550 5.1.1 gone", "550 5.1.1 <alice@example.test>: Recipient address rejected: gone", -1, NULL },
		{ "421 busy", "421 4.7.1 <alice@example.test>: Recipient address rejected: busy", -1, NULL },
		{ "HOLD", "554 5.7.1 <alice@example.test>: Recipient address rejected: Access denied", REV_HOLD,
		  "<alice@example.test>: Recipient address triggers HOLD action" },
		{ "DISCARD", NULL, REV_DISCARD, "<alice@example.test>: Recipient address triggers DISCARD action" },
		{ "PREPEND X-Tag: yes", "554 5.7.1 <alice@example.test>: Recipient address rejected: Access denied",
		  REV_PREPEND, "X-Tag: yes" },
		{ "PREPEND no colon", "451 4.3.5 Server configuration error", REV_INFO, NULL },
		{ "FILTER smtp:x", "451 4.3.5 Server configuration error", REV_INFO, NULL },
		{ "WARN looks odd", "554 5.7.1 <alice@example.test>: Recipient address rejected: Access denied",
		  REV_LOG_WARN, "<alice@example.test>: looks odd" },
		{ "INFO noted", "554 5.7.1 <alice@example.test>: Recipient address rejected: Access denied",
		  REV_LOG_INFO, "<alice@example.test>: noted" },
		/* a reject after DEFER_IF_PERMIT still rejects */
		{ "DEFER_IF_PERMIT wait", "554 5.7.1 <alice@example.test>: Recipient address rejected: Access denied", -1, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *list = xasprintf("check_recipient_access inline:{{alice@example.test = %s}}, reject",
		    cases[i].value);
		struct restrict_result res;
		/* after the access entry: "reject" (so DUNNO-like results show) */
		setup_lists("", "", "", "permit", list);
		const char *got = run_rcpt(NULL, 0, &res);
		if (cases[i].want == NULL)
			ck_assert_msg(got == NULL, "%s: got '%s'", cases[i].value, got);
		else
			ck_assert_msg(got != NULL && strcmp(got, cases[i].want) == 0,
			    "%s: got '%s' want '%s'", cases[i].value, got ? got : "(accept)",
			    cases[i].want);
		if (cases[i].ev >= 0) {
			ck_assert_msg(res.nev >= 1, "%s: no event", cases[i].value);
			ck_assert_int_eq(res.ev[0].type, cases[i].ev);
			if (cases[i].evtext)
				ck_assert_str_eq(res.ev[0].text, cases[i].evtext);
		} else {
			ck_assert_msg(res.nev == 0, "%s: %zu events", cases[i].value, res.nev);
		}
		restrict_result_free(&res);
		teardown_lists();
		free(list);
	}
}
END_TEST

START_TEST(test_access_keys)
{
	/* client: address, then its prefixes; sender: domain, parents, user@ */
	setup_lists("check_client_access inline:{{192.0.2 = REJECT by net}}", "", "",
	    "permit", "");
	want_reply(NULL, 0, "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: by net");
	teardown_lists();
	setup_lists("", "", "check_sender_access inline:{{example.org = REJECT parent}}",
	    "permit", "");
	ctx.sender = "x@mail.example.org";
	want_reply(NULL, 0, "554 5.7.1 <x@mail.example.org>: Sender address rejected: parent");
	teardown_lists();
	setup_lists("", "", "check_sender_access inline:{{postmaster@ = REJECT local}}",
	    "permit", "");
	ctx.sender = "postmaster@else.example";
	want_reply(NULL, 0, "554 5.7.1 <postmaster@else.example>: Sender address rejected: local");
	/* the null sender is looked up as <> */
	teardown_lists();
	setup_lists("", "", "check_sender_access inline:{{<> = REJECT no bounces}}",
	    "permit", "");
	ctx.sender = "";
	want_reply(NULL, 0, "554 5.7.1 <>: Sender address rejected: no bounces");
	teardown_lists();
	/* DEFER_IF_REJECT turns a later reject into 450 */
	setup_lists("check_client_access inline:{192.0.2.1=DEFER_IF_REJECT}", "", "",
	    "permit", "reject");
	want_reply(NULL, 0, "450 4.7.1 <alice@example.test>: Recipient address "
	    "rejected: Access denied");
	teardown_lists();
}
END_TEST

/* --- DNS lists -------------------------------------------------------------------- */

START_TEST(test_rbl)
{
	static const struct canned listed[] = {
		{ RQ_A, "1.2.0.192.zen.example", RA_OK, "127.0.0.2" },
		{ RQ_TXT, "1.2.0.192.zen.example", RA_OK, "listed; see http://zen.example/" },
	};
	static const struct canned no_txt[] = {
		{ RQ_A, "1.2.0.192.zen.example", RA_OK, "127.0.0.4" },
		{ RQ_TXT, "1.2.0.192.zen.example", RA_NOTFOUND, NULL },
	};
	static const struct canned notlisted[] = {
		{ RQ_A, "1.2.0.192.zen.example", RA_NOTFOUND, NULL },
	};
	static const struct canned down[] = {
		{ RQ_A, "1.2.0.192.zen.example", RA_TEMPFAIL, NULL },
	};

	setup_lists("reject_rbl_client zen.example", "", "", "permit", "");
	want_reply(listed, 2, "554 5.7.1 Service unavailable; Client host [192.0.2.1] "
	    "blocked using zen.example; listed; see http://zen.example/");
	teardown_lists();
	setup_lists("reject_rbl_client zen.example", "", "", "permit", "");
	want_reply(no_txt, 2, "554 5.7.1 Service unavailable; Client host [192.0.2.1] "
	    "blocked using zen.example");
	teardown_lists();
	setup_lists("reject_rbl_client zen.example", "", "", "permit", "");
	want_reply(notlisted, 1, NULL);
	teardown_lists();
	setup_lists("reject_rbl_client zen.example", "", "", "permit", "");
	want_reply(down, 1, NULL);   /* a list that does not answer does not list */
	teardown_lists();
	/* filters */
	setup_lists("reject_rbl_client zen.example=127.0.0.3", "", "", "permit", "");
	want_reply(listed, 2, NULL);
	teardown_lists();
	setup_lists("reject_rbl_client zen.example=127.0.0.[2..3]", "", "", "permit", "");
	want_reply(no_txt, 2, NULL);   /* 127.0.0.4 outside */
	teardown_lists();
	setup_lists("reject_rbl_client zen.example=127.0.[0..1].[1;4]", "", "", "permit", "");
	want_reply(no_txt, 2, "554 5.7.1 Service unavailable; Client host [192.0.2.1] "
	    "blocked using zen.example");
	teardown_lists();
	/* a DNSWL permit ends the client list before the DNSBL */
	static const struct canned wl[] = {
		{ RQ_A, "1.2.0.192.wl.example", RA_OK, "127.0.10.1" },
	};
	setup_lists("permit_dnswl_client wl.example, reject_rbl_client zen.example",
	    "", "", "permit", "");
	want_reply(wl, 1, NULL);
	teardown_lists();
	/* answers are cached in the context: asked once per name */
	setup_lists("reject_rbl_client zen.example=127.0.0.9, reject_rbl_client "
	    "zen.example=127.0.0.8", "", "", "permit", "");
	want_reply(listed, 2, NULL);
	ck_assert_int_eq(asked, 1);
	teardown_lists();
}
END_TEST

START_TEST(test_rhsbl)
{
	static const struct canned t[] = {
		{ RQ_A, "spam.example.dbl.example", RA_OK, "127.0.1.2" },
		{ RQ_TXT, "spam.example.dbl.example", RA_NOTFOUND, NULL },
	};
	setup_lists("", "", "reject_rhsbl_sender dbl.example", "permit", "");
	ctx.sender = "x@spam.example";
	want_reply(t, 2, "554 5.7.1 Service unavailable; Sender address [spam.example] "
	    "blocked using dbl.example");
	ctx.sender = "";
	want_reply(t, 2, NULL);   /* no domain to look up */
	teardown_lists();
	setup_lists("reject_rhsbl_client dbl.example", "", "", "permit", "");
	ctx.client_name = "spam.example";
	want_reply(t, 2, "554 5.7.1 Service unavailable; Client host [spam.example] "
	    "blocked using dbl.example");
	teardown_lists();
}
END_TEST

START_TEST(test_unknown_domains_and_names)
{
	static const struct canned nx[] = {
		{ RQ_DOMAIN, "nx.example", RA_NOTFOUND, NULL },
	};
	setup_lists("", "", "reject_unknown_sender_domain", "permit", "");
	ctx.sender = "a@nx.example";
	want_reply(nx, 1, "450 4.1.8 <a@nx.example>: Sender address rejected: Domain "
	    "not found");
	teardown_lists();
	setup_lists("", "reject_invalid_helo_hostname", "", "permit", "");
	ctx.helo = "bad_name!";
	want_reply(NULL, 0, "501 5.5.2 <bad_name!>: Helo command rejected: Invalid name");
	ctx.helo = "[192.0.2.1]";
	want_reply(NULL, 0, NULL);
	teardown_lists();
	setup_lists("", "", "", "permit", "reject_non_fqdn_recipient, "
	    "reject_unlisted_recipient");
	ctx.rcpt = "nobody@example.test";
	want_reply(NULL, 0, "550 5.1.1 <nobody@example.test>: Recipient address "
	    "rejected: User unknown in virtual mailbox table");
	ctx.rcpt = "x@nodot";
	want_reply(NULL, 0, "504 5.5.2 <x@nodot>: Recipient address rejected: need "
	    "fully-qualified address");
	teardown_lists();
	setup_lists("reject_unauth_pipelining", "", "", "permit", "");
	want_reply(NULL, 0, NULL);
	ctx.improper_pipelining = 1;
	want_reply(NULL, 0, "503 5.5.0 <unknown[192.0.2.1]>: Client host rejected: "
	    "Improper use of SMTP command pipelining");
	teardown_lists();
	/* the client name: smtpd's lookup status decides 450 or the
	 * configured unknown_client_reject_code, as in Postfix */
	setup_lists("reject_unknown_reverse_client_hostname, "
	    "reject_unknown_client_hostname", "", "", "permit", "");
	set.st.unknown_client_code = 550;
	ctx.client_name = "unknown";
	ctx.reverse_client_name = "mail.example.org";
	ctx.reverse_name_status = PEER_OK;
	ctx.client_name_status = PEER_FORGED;
	want_reply(NULL, 0, "550 5.7.25 Client host rejected: cannot find your "
	    "hostname, [192.0.2.1]");
	ctx.client_name_status = PEER_TEMP;
	want_reply(NULL, 0, "450 4.7.25 Client host rejected: cannot find your "
	    "hostname, [192.0.2.1]");
	ctx.reverse_name_status = PEER_UNKNOWN;
	want_reply(NULL, 0, "550 5.7.25 Client host rejected: cannot find your "
	    "reverse hostname, [192.0.2.1]");
	ctx.client_name = ctx.reverse_client_name = "mail.example.org";
	ctx.client_name_status = ctx.reverse_name_status = PEER_OK;
	want_reply(NULL, 0, NULL);
	teardown_lists();
}
END_TEST

/* --- policy service ---------------------------------------------------------------- */

START_TEST(test_policy)
{
	static const struct canned grey[] = {
		{ RQ_POLICY, NULL, RA_OK, "DEFER_IF_PERMIT Greylisted, see http://x/" },
	};
	static const struct canned down[] = { { RQ_POLICY, NULL, RA_TEMPFAIL, NULL } };
	static const struct canned dunno[] = { { RQ_POLICY, NULL, RA_OK, "DUNNO" } };
	struct restrict_result res;

	setup_lists("", "", "", "permit_mynetworks, reject_unauth_destination",
	    "check_policy_service inet:127.0.0.1:10023");
	ctx.instance = "7b2.6572c3a1.1";
	want_reply(grey, 1, "450 4.7.1 <alice@example.test>: Recipient address "
	    "rejected: Greylisted, see http://x/");
	ck_assert_str_eq(last_endpoint, "inet:127.0.0.1:10023");
	ck_assert_ptr_nonnull(strstr(last_policy, "request=smtpd_access_policy\n"
	    "protocol_state=RCPT\nprotocol_name=ESMTP\n"));
	ck_assert_ptr_nonnull(strstr(last_policy, "\nrecipient=alice@example.test\n"));
	ck_assert_ptr_nonnull(strstr(last_policy, "\nsender=sender@example.org\n"));
	ck_assert_ptr_nonnull(strstr(last_policy, "\nclient_address=192.0.2.1\n"));
	ck_assert_ptr_nonnull(strstr(last_policy, "\nhelo_name=client.example.org\n"));
	/* one instance per transaction, before the queue ID exists */
	ck_assert_ptr_nonnull(strstr(last_policy, "\ninstance=7b2.6572c3a1.1\n"));
	ck_assert_int_eq(last_policy[strlen(last_policy) - 1], '\n');
	ck_assert_int_eq(last_policy[strlen(last_policy) - 2], '\n');
	/* an answer is kept for the same request until forgotten */
	want_reply(grey, 1, "450 4.7.1 <alice@example.test>: Recipient address "
	    "rejected: Greylisted, see http://x/");
	ck_assert_int_eq(asked, 0);
	restrict_forget_policy(&ctx);
	want_reply(dunno, 1, NULL);
	ck_assert_int_eq(asked, 1);
	restrict_forget_policy(&ctx);
	ck_assert_ptr_nonnull(run_rcpt(down, 1, &res));
	restrict_result_free(&res);
	teardown_lists();
	/* default action when the service fails */
	setup_lists("", "", "", "permit", "check_policy_service unix:/nonexistent");
	want_reply(down, 1, "451 4.3.5 <alice@example.test>: Recipient address rejected: "
	    "Server configuration problem");
	teardown_lists();
	/* a relay reject comes before the policy service is asked */
	setup_lists("", "", "", "reject_unauth_destination",
	    "check_policy_service inet:127.0.0.1:10023");
	ctx.rcpt = "x@remote.example";
	want_reply(grey, 1, "554 5.7.1 <x@remote.example>: Relay access denied");
	ck_assert_int_eq(asked, 0);
	teardown_lists();
}
END_TEST

/* Postfix 3.0's per-service settings in braces; the rest from the
 * smtpd_policy_service_* settings. */
START_TEST(test_policy_braces)
{
	static const struct canned dunno[] = { { RQ_POLICY, NULL, RA_OK, "DUNNO" } };
	static const struct canned down[] = { { RQ_POLICY, NULL, RA_TEMPFAIL, NULL } };

	setup_lists("", "", "", "permit",
	    "check_policy_service { inet:localhost:10023, timeout=10s, "
	    "default_action = { 450 4.7.1 Try again later }, max_idle=1m, "
	    "max_ttl = 600, request_limit=5, try_limit=3, retry_delay=2s, "
	    "policy_context=submission }");
	want_reply(dunno, 1, NULL);
	ck_assert_str_eq(last_endpoint, "inet:localhost:10023");
	ck_assert_str_eq(last_pol.endpoint, "inet:localhost:10023");
	ck_assert_int_eq(last_pol.timeout_ms, 10000);
	ck_assert_int_eq(last_pol.max_idle_ms, 60000);
	ck_assert_int_eq(last_pol.max_ttl_ms, 600000);
	ck_assert_int_eq(last_pol.request_limit, 5);
	ck_assert_int_eq(last_pol.try_limit, 3);
	ck_assert_int_eq(last_pol.retry_delay_ms, 2000);
	ck_assert_str_eq(last_pol.default_action, "450 4.7.1 Try again later");
	ck_assert_ptr_nonnull(strstr(last_policy, "\npolicy_context=submission\n"));
	/* its own default_action when it fails */
	restrict_forget_policy(&ctx);
	want_reply(down, 1, "450 4.7.1 <alice@example.test>: Recipient address "
	    "rejected: Try again later");
	teardown_lists();
	/* without braces: the parameters' values */
	setup_lists("", "", "", "permit", "check_policy_service inet:127.0.0.1:9");
	set.st.policy.request_limit = 7;
	set.st.policy.policy_context = "mx";
	want_reply(dunno, 1, NULL);
	ck_assert_int_eq(last_pol.timeout_ms, 100000);
	ck_assert_int_eq(last_pol.max_idle_ms, 300000);
	ck_assert_int_eq(last_pol.max_ttl_ms, 1000000);
	ck_assert_int_eq(last_pol.request_limit, 7);
	ck_assert_int_eq(last_pol.try_limit, 2);
	ck_assert_int_eq(last_pol.retry_delay_ms, 1000);
	ck_assert_ptr_nonnull(strstr(last_policy, "\npolicy_context=mx\n"));
	teardown_lists();
	/* only some overridden: the others from the parameters */
	setup_lists("", "", "", "permit",
	    "check_policy_service {unix:private/policyd-spf,timeout=5}");
	want_reply(dunno, 1, NULL);
	ck_assert_str_eq(last_pol.endpoint, "unix:private/policyd-spf");
	ck_assert_int_eq(last_pol.timeout_ms, 5000);
	ck_assert_int_eq(last_pol.try_limit, 2);
	ck_assert_str_eq(last_pol.default_action, "451 4.3.5 Server configuration problem");
	teardown_lists();
}
END_TEST

START_TEST(test_helpers)
{
	char out[128];

	ck_assert_int_eq(restrict_reverse_addr("192.0.2.1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "1.2.0.192");
	ck_assert_int_eq(restrict_reverse_addr("::ffff:10.1.2.3", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "3.2.1.10");
	ck_assert_int_eq(restrict_reverse_addr("2001:db8::1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
	ck_assert_int_eq(restrict_reverse_addr("nonsense", out, sizeof(out)), -1);
	ck_assert(restrict_helo_valid("mail.example.org"));
	ck_assert(restrict_helo_valid("[192.0.2.1]"));
	ck_assert(restrict_helo_valid("[IPv6:2001:db8::1]"));
	ck_assert(!restrict_helo_valid("1.2.3.4"));
	ck_assert(!restrict_helo_valid("a..b"));
	ck_assert(!restrict_helo_valid("[1.2.3]"));
	ck_assert(!restrict_helo_valid(""));
}
END_TEST

/* Bytes from a policy service or DNS TXT never put control characters
 * into a reply. */
START_TEST(test_answers_are_cleaned)
{
	static const struct canned evil[] = {
		{ RQ_POLICY, NULL, RA_OK, "REJECT a\r\n250 ok" },
	};
	setup_lists("", "", "", "permit", "check_policy_service inet:127.0.0.1:1");
	want_reply(evil, 1, "554 5.7.1 <alice@example.test>: Recipient address rejected: "
	    "a??250 ok");
	teardown_lists();
}
END_TEST

static Suite *
restrict_suite(void)
{
	Suite *s = suite_create("restrict");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_parse_ok_and_relay_guard);
	tcase_add_test(tc, test_delay_reject_stages);
	tcase_add_test(tc, test_permit_ends_only_its_list);
	tcase_add_test(tc, test_sender_login_mismatch);
	tcase_add_test(tc, test_restriction_classes);
	tcase_add_test(tc, test_unlisted_sender);
	tcase_add_test(tc, test_reject_ends_everything);
	tcase_add_test(tc, test_relay);
	tcase_add_test(tc, test_warn_if_reject);
	tcase_add_test(tc, test_access_actions);
	tcase_add_test(tc, test_access_keys);
	tcase_add_test(tc, test_rbl);
	tcase_add_test(tc, test_rhsbl);
	tcase_add_test(tc, test_unknown_domains_and_names);
	tcase_add_test(tc, test_policy);
	tcase_add_test(tc, test_policy_braces);
	tcase_add_test(tc, test_helpers);
	tcase_add_test(tc, test_answers_are_cleaned);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(restrict_suite());
	int failures;

	log_open("test_restrict", "/dev/null");
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
