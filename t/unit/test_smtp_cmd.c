/*
 * test_smtp_cmd - command side of lib/proto/smtp.c: the verb table, line
 * splitting (whole and byte-at-a-time, over-long lines), verb/argument
 * splitting, argument rules, ESMTP parameters of MAIL and RCPT, xtext.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp.h"
#include "util/line.h"

/* --- verbs ---------------------------------------------------------------- */

static const struct {
	const char *word;
	enum smtp_verb want;
} verb_cases[] = {
	{ "HELO", SMTP_HELO }, { "ehlo", SMTP_EHLO }, { "MaIl", SMTP_MAIL },
	{ "rcpt", SMTP_RCPT }, { "DATA", SMTP_DATA }, { "rset", SMTP_RSET },
	{ "NOOP", SMTP_NOOP }, { "quit", SMTP_QUIT }, { "VRFY", SMTP_VRFY },
	{ "help", SMTP_HELP }, { "EXPN", SMTP_EXPN }, { "StartTLS", SMTP_STARTTLS },
	{ "AUTH", SMTP_AUTH }, { "bdat", SMTP_BDAT }, { "ETRN", SMTP_ETRN },
	{ "MAILX", SMTP_UNKNOWN }, { "MAI", SMTP_UNKNOWN }, { "", SMTP_UNKNOWN },
	{ "HELO\xc3", SMTP_UNKNOWN },
};

START_TEST(test_verb_lookup)
{
	const char *w = verb_cases[_i].word;
	const struct smtp_verb_info *v = smtp_verb_lookup(w, strlen(w));

	ck_assert_msg(v->verb == verb_cases[_i].want, "\"%s\": got %s want %s", w,
	    v->name, smtp_verbs[verb_cases[_i].want].name);
}
END_TEST

START_TEST(test_verb_table_consistent)
{
	for (int i = 0; i < SMTP_VERB_COUNT; i++) {
		ck_assert_msg(smtp_verbs[i].verb == (enum smtp_verb)i,
		    "table entry %d is verb %d", i, smtp_verbs[i].verb);
		ck_assert_ptr_nonnull(smtp_verbs[i].name);
		ck_assert_ptr_nonnull(smtp_verbs[i].syntax);
	}
	ck_assert(smtp_verbs[SMTP_DATA].flags & SMTP_VF_LAST);
	ck_assert(smtp_verbs[SMTP_EHLO].flags & SMTP_VF_LAST);
	ck_assert(!(smtp_verbs[SMTP_RCPT].flags & SMTP_VF_LAST));
}
END_TEST

/* --- command lines ---------------------------------------------------------- */

struct cmd_case {
	const char *line;
	size_t len;                /* 0: strlen */
	enum smtp_result want;
	enum smtp_verb verb;
	const char *arg;
	int args_ok;               /* smtp_cmd_args_ok() == 0 */
};

static const struct cmd_case cmd_cases[] = {
	{ .line = "MAIL FROM:<a@b> SIZE=10", .want = SMTP_DONE, .verb = SMTP_MAIL,
	  .arg = "FROM:<a@b> SIZE=10", .args_ok = 1 },
	{ .line = "mail from:<>", .want = SMTP_DONE, .verb = SMTP_MAIL,
	  .arg = "from:<>", .args_ok = 1 },
	{ .line = "  NOOP  ", .want = SMTP_DONE, .verb = SMTP_NOOP, .arg = "",
	  .args_ok = 1 },
	{ .line = "NOOP hello there", .want = SMTP_DONE, .verb = SMTP_NOOP,
	  .arg = "hello there", .args_ok = 1 },
	{ .line = "RSET\tx", .want = SMTP_DONE, .verb = SMTP_RSET, .arg = "x",
	  .args_ok = 0 },
	{ .line = "DATA", .want = SMTP_DONE, .verb = SMTP_DATA, .arg = "",
	  .args_ok = 1 },
	{ .line = "DATA now", .want = SMTP_DONE, .verb = SMTP_DATA, .arg = "now",
	  .args_ok = 0 },
	{ .line = "HELO", .want = SMTP_DONE, .verb = SMTP_HELO, .arg = "",
	  .args_ok = 0 },
	{ .line = "EHLO client.example", .want = SMTP_DONE, .verb = SMTP_EHLO,
	  .arg = "client.example", .args_ok = 1 },
	{ .line = "QUIT ", .want = SMTP_DONE, .verb = SMTP_QUIT, .arg = "",
	  .args_ok = 1 },
	{ .line = "XYZZY plugh", .want = SMTP_DONE, .verb = SMTP_UNKNOWN,
	  .arg = "plugh", .args_ok = 1 },
	{ .line = "RCPT TO:<\xc3\xa9@x.example>", .want = SMTP_DONE,
	  .verb = SMTP_RCPT, .arg = "TO:<\xc3\xa9@x.example>", .args_ok = 1 },
	{ .line = "", .want = SMTP_ERROR },
	{ .line = "   ", .want = SMTP_ERROR },
	{ .line = "NOOP\0x", .len = 6, .want = SMTP_ERROR },
	{ .line = "HELO a\x01", .want = SMTP_ERROR },
	{ .line = "HELO a\rb", .want = SMTP_ERROR },
	{ .line = "HELO a\x7f", .want = SMTP_ERROR },
};

START_TEST(test_cmd_parse)
{
	const struct cmd_case *c = &cmd_cases[_i];
	size_t len = c->len ? c->len : strlen(c->line);
	struct smtp_cmd cmd;
	const char *err = NULL;
	enum smtp_result r = smtp_cmd_parse(c->line, len, &cmd, &err);

	ck_assert_msg(r == c->want, "\"%s\": result got %d want %d", c->line, r, c->want);
	if (r == SMTP_ERROR) {
		ck_assert_msg(err != NULL && strncmp(err, "500 5.5.2 ", 10) == 0,
		    "\"%s\": error reply got \"%s\"", c->line, err ? err : "(null)");
		return;
	}
	ck_assert_msg(cmd.verb->verb == c->verb, "\"%s\": verb got %s want %s",
	    c->line, cmd.verb->name, smtp_verbs[c->verb].name);
	ck_assert_msg(cmd.arg_len == strlen(c->arg) && memcmp(cmd.arg, c->arg,
	    cmd.arg_len) == 0, "\"%s\": arg got \"%.*s\" want \"%s\"", c->line,
	    (int)cmd.arg_len, cmd.arg, c->arg);
	int ok = smtp_cmd_args_ok(&cmd, &err) == 0;
	ck_assert_msg(ok == c->args_ok, "\"%s\": args_ok got %d want %d", c->line,
	    ok, c->args_ok);
	if (!ok)
		ck_assert_msg(strncmp(err, "501 5.5.4 Syntax: ", 18) == 0,
		    "\"%s\": syntax reply got \"%s\"", c->line, err);
}
END_TEST

/* --- line splitting --------------------------------------------------------- */

/* What a caller sees: "L:<line>" per line ("B:<line>" when it ended in a
 * bare LF, which smtpd_forbid_bare_newline = reject refuses), "E" per
 * over-long line. */
static void
split_lines(const char *in, size_t n, size_t step, size_t limit, char *got,
    size_t gotsz)
{
	struct line_splitter ls = { 0 };
	char buf[4096];
	size_t have = 0, fed = 0;

	got[0] = '\0';
	while (fed < n || have > 0) {
		size_t k = step && n - fed > step ? step : n - fed;
		memcpy(buf + have, in + fed, k);
		have += k;
		fed += k;
		for (;;) {
			size_t used, len;
			enum line_result r = line_split(&ls, limit, buf, have, &used, &len);
			ck_assert(used <= have);
			if (r == LINE_DONE) {
				size_t g = strlen(got);
				snprintf(got + g, gotsz - g, "%c:%.*s|",
				    ls.bare_lf ? 'B' : 'L', (int)len, buf);
			} else if (r == LINE_TOO_LONG) {
				strncat(got, "E|", gotsz - strlen(got) - 1);
			}
			memmove(buf, buf + used, have - used);
			have -= used;
			if (r == LINE_NEED_MORE)
				break;
		}
		if (fed == n)
			break;
		ck_assert(have <= limit + 2 + step);
	}
}

static const struct {
	const char *in;
	size_t limit;
	const char *want;
} line_cases[] = {
	{ "RSET\r\n", 16, "L:RSET|" },
	{ "RSET\n", 16, "B:RSET|" },
	{ "\n", 16, "B:|" },
	{ "RSET\nMAIL FROM:<a@b>\r\n", 32, "B:RSET|L:MAIL FROM:<a@b>|" },
	{ "NOOP\r\nRSET\nQUIT\r\n", 16, "L:NOOP|B:RSET|L:QUIT|" },
	{ "RSET\r\r\n", 16, "L:RSET|" },
	{ "RSET", 16, "" },
	{ "\r\n", 16, "L:|" },
	{ "NOOP\r\nQUIT\r\n", 16, "L:NOOP|L:QUIT|" },
	{ "0123456789abcdef\r\nNOOP\r\n", 16, "L:0123456789abcdef|L:NOOP|" },
	{ "0123456789abcdefg\r\nNOOP\r\n", 16, "E|L:NOOP|" },
	{ "0123456789abcdefghijklmnopqrstuvwxyz0123456789\r\nNOOP\r\n", 16,
	  "E|L:NOOP|" },
	{ "0123456789abcdefghijklmnopqrstuvwxyz0123456789", 16, "" },
	{ "0123456789abcdef\r\r\r\r\nNOOP\n", 16, "E|B:NOOP|" },
};

START_TEST(test_line_split)
{
	const char *in = line_cases[_i].in;
	char whole[512], bytes[512], three[512];

	split_lines(in, strlen(in), 0, line_cases[_i].limit, whole, sizeof(whole));
	ck_assert_msg(strcmp(whole, line_cases[_i].want) == 0,
	    "\"%s\" whole: got \"%s\" want \"%s\"", in, whole, line_cases[_i].want);
	split_lines(in, strlen(in), 1, line_cases[_i].limit, bytes, sizeof(bytes));
	ck_assert_msg(strcmp(bytes, whole) == 0,
	    "\"%s\" byte-at-a-time: got \"%s\" want \"%s\"", in, bytes, whole);
	split_lines(in, strlen(in), 3, line_cases[_i].limit, three, sizeof(three));
	ck_assert_msg(strcmp(three, whole) == 0,
	    "\"%s\" 3 bytes at a time: got \"%s\" want \"%s\"", in, three, whole);
}
END_TEST

/* --- ESMTP parameters -------------------------------------------------------- */

struct mail_case {
	const char *params;
	int ok;
	const char *err_prefix;    /* for !ok */
	long long size;
	enum smtp_body body;
	int smtputf8;
	enum smtp_ret ret;
	const char *envid;
	int auth_given;
	const char *auth;
};

static const struct mail_case mail_cases[] = {
	{ .params = "", .ok = 1, .size = -1 },
	{ .params = "   ", .ok = 1, .size = -1 },
	{ .params = " SIZE=1000", .ok = 1, .size = 1000 },
	{ .params = "size=1000 BODY=8bitmime SMTPUTF8 RET=HDRS ENVID=abc+2Bdef",
	  .ok = 1, .size = 1000, .body = SMTP_BODY_8BITMIME, .smtputf8 = 1,
	  .ret = SMTP_RET_HDRS, .envid = "abc+def" },
	{ .params = "BODY=7BIT RET=full", .ok = 1, .size = -1,
	  .body = SMTP_BODY_7BIT, .ret = SMTP_RET_FULL },
	{ .params = "SIZE=99999999999999999999999999", .ok = 1, .size = LLONG_MAX },
	{ .params = "ENVID=QQ+3D+20x", .ok = 1, .size = -1, .envid = "QQ= x" },
	{ .params = "SIZE=abc", .err_prefix = "501 5.5.4 " },
	{ .params = "SIZE=", .err_prefix = "501 5.5.4 " },
	{ .params = "SIZE", .err_prefix = "501 5.5.4 " },
	{ .params = "SIZE=1 SIZE=2", .err_prefix = "501 5.5.4 " },
	{ .params = "FOO=bar", .err_prefix = "555 5.5.4 Unsupported option: FOO" },
	{ .params = "X-SOMETHING", .err_prefix = "555 5.5.4 Unsupported option: X-SOMETHING" },
	{ .params = "NOTIFY=NEVER", .err_prefix = "555 5.5.4 Unsupported option: NOTIFY" },
	{ .params = "AUTH=<>", .ok = 1, .size = -1, .auth_given = 1 },
	{ .params = "AUTH=alice@example.test SIZE=1", .ok = 1, .size = 1,
	  .auth_given = 1, .auth = "alice@example.test" },
	{ .params = "AUTH=a+2Bb@x", .ok = 1, .size = -1, .auth_given = 1,
	  .auth = "a+b@x" },
	{ .params = "AUTH", .err_prefix = "501 5.5.4 Bad AUTH" },
	{ .params = "AUTH=", .err_prefix = "501 5.5.4 " },
	{ .params = "AUTH=<> AUTH=<>", .err_prefix = "501 5.5.4 Bad AUTH" },
	{ .params = "AUTH=a+0Ab", .err_prefix = "501 5.5.4 Bad AUTH" },
	{ .params = "body=binarymime", .ok = 1, .size = -1,
	  .body = SMTP_BODY_BINARYMIME },
	{ .params = "BODY=BINARY", .err_prefix = "501 5.5.4 " },
	{ .params = "BODY=7BIT BODY=7BIT", .err_prefix = "501 5.5.4 " },
	{ .params = "SMTPUTF8=yes", .err_prefix = "501 5.5.4 " },
	{ .params = "RET=ALL", .err_prefix = "501 5.5.4 " },
	{ .params = "ENVID=a+2", .err_prefix = "501 5.5.4 Bad ENVID" },
	{ .params = "ENVID=a+2b", .err_prefix = "501 5.5.4 Bad ENVID" },
	{ .params = "ENVID=+00", .err_prefix = "501 5.5.4 Bad ENVID" },
	{ .params = "ENVID=+0D+0A", .err_prefix = "501 5.5.4 Bad ENVID" },
	{ .params = "ENVID=a ENVID=b", .err_prefix = "501 5.5.4 Bad ENVID" },
	{ .params = "=x", .err_prefix = "501 5.5.4 " },
	{ .params = "-X=1", .err_prefix = "501 5.5.4 " },
	{ .params = "SIZE=1=2", .err_prefix = "501 5.5.4 " },
	{ .params = "A B C D E F G H I J K L M N O P Q",
	  .err_prefix = "501 5.5.4 Error: too many parameters" },
};

START_TEST(test_mail_params)
{
	const struct mail_case *c = &mail_cases[_i];
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_mail_params mp;
	char *err = NULL;
	enum smtp_result r = smtp_mail_params_parse(c->params, strlen(c->params),
	    &lim, &mp, &err);

	if (!c->ok) {
		ck_assert_msg(r == SMTP_ERROR, "\"%s\": accepted", c->params);
		ck_assert_msg(err && strncmp(err, c->err_prefix, strlen(c->err_prefix)) == 0,
		    "\"%s\": error got \"%s\" want \"%s...\"", c->params,
		    err ? err : "(null)", c->err_prefix);
		ck_assert_ptr_null(mp.envid);
		ck_assert_ptr_null(mp.auth);
		free(err);
		return;
	}
	ck_assert_int_eq(mp.auth_given, c->auth_given);
	if (c->auth == NULL)
		ck_assert_ptr_null(mp.auth);
	else
		ck_assert_msg(mp.auth && strcmp(mp.auth, c->auth) == 0,
		    "\"%s\": auth got \"%s\"", c->params, mp.auth ? mp.auth : "(null)");
	ck_assert_msg(r == SMTP_DONE, "\"%s\": rejected: %s", c->params, err);
	ck_assert_msg(mp.size == c->size, "\"%s\": size got %lld want %lld",
	    c->params, mp.size, c->size);
	ck_assert_msg(mp.body == c->body, "\"%s\": body got %d want %d", c->params,
	    mp.body, c->body);
	ck_assert_int_eq(mp.smtputf8, c->smtputf8);
	ck_assert_int_eq(mp.ret, c->ret);
	if (c->envid == NULL)
		ck_assert_ptr_null(mp.envid);
	else
		ck_assert_msg(mp.envid && strcmp(mp.envid, c->envid) == 0,
		    "\"%s\": envid got \"%s\" want \"%s\"", c->params,
		    mp.envid ? mp.envid : "(null)", c->envid);
	smtp_mail_params_free(&mp);
}
END_TEST

struct rcpt_case {
	const char *params;
	int ok;
	const char *err_prefix;
	const char *notify;
	const char *orcpt;
};

static const struct rcpt_case rcpt_cases[] = {
	{ .params = "", .ok = 1, .notify = "" },
	{ .params = "NOTIFY=NEVER", .ok = 1, .notify = "NEVER" },
	{ .params = "notify=delay,success", .ok = 1, .notify = "SUCCESS,DELAY" },
	{ .params = "NOTIFY=FAILURE,DELAY,SUCCESS", .ok = 1,
	  .notify = "SUCCESS,FAILURE,DELAY" },
	{ .params = "ORCPT=rfc822;a+40b.example", .ok = 1, .notify = "",
	  .orcpt = "a@b.example" },
	{ .params = "NOTIFY=FAILURE ORCPT=RFC822;user@x.example", .ok = 1,
	  .notify = "FAILURE", .orcpt = "user@x.example" },
	{ .params = "NOTIFY=NEVER,SUCCESS", .err_prefix = "501 5.5.4 Bad NOTIFY" },
	{ .params = "NOTIFY=SUCCESS,SUCCESS", .err_prefix = "501 5.5.4 Bad NOTIFY" },
	{ .params = "NOTIFY=SUCCESS,", .err_prefix = "501 5.5.4 Bad NOTIFY" },
	{ .params = "NOTIFY=SOMETIMES", .err_prefix = "501 5.5.4 Bad NOTIFY" },
	{ .params = "NOTIFY", .err_prefix = "501 5.5.4 Bad NOTIFY" },
	{ .params = "NOTIFY=", .err_prefix = "501 5.5.4 " },
	{ .params = "NOTIFY=NEVER NOTIFY=NEVER", .err_prefix = "501 5.5.4 Bad NOTIFY" },
	{ .params = "ORCPT=x400;foo", .err_prefix = "501 5.5.4 Bad ORCPT" },
	{ .params = "ORCPT=rfc822;", .err_prefix = "501 5.5.4 Bad ORCPT" },
	{ .params = "ORCPT=rfc822", .err_prefix = "501 5.5.4 Bad ORCPT" },
	{ .params = "ORCPT=rfc822;a+0Ab", .err_prefix = "501 5.5.4 Bad ORCPT" },
	{ .params = "SIZE=1", .err_prefix = "555 5.5.4 Unsupported option: SIZE" },
	{ .params = "BODY=8BITMIME", .err_prefix = "555 5.5.4 Unsupported option: BODY" },
};

START_TEST(test_rcpt_params)
{
	const struct rcpt_case *c = &rcpt_cases[_i];
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_rcpt_params rp;
	char *err = NULL;
	enum smtp_result r = smtp_rcpt_params_parse(c->params, strlen(c->params),
	    &lim, &rp, &err);

	if (!c->ok) {
		ck_assert_msg(r == SMTP_ERROR, "\"%s\": accepted", c->params);
		ck_assert_msg(err && strncmp(err, c->err_prefix, strlen(c->err_prefix)) == 0,
		    "\"%s\": error got \"%s\" want \"%s...\"", c->params,
		    err ? err : "(null)", c->err_prefix);
		ck_assert_ptr_null(rp.orcpt);
		free(err);
		return;
	}
	ck_assert_msg(r == SMTP_DONE, "\"%s\": rejected: %s", c->params, err);
	ck_assert_msg(strcmp(smtp_notify_str(rp.notify), c->notify) == 0,
	    "\"%s\": notify got \"%s\" want \"%s\"", c->params,
	    smtp_notify_str(rp.notify), c->notify);
	if (c->orcpt == NULL)
		ck_assert_ptr_null(rp.orcpt);
	else
		ck_assert_msg(rp.orcpt && strcmp(rp.orcpt, c->orcpt) == 0,
		    "\"%s\": orcpt got \"%s\" want \"%s\"", c->params,
		    rp.orcpt ? rp.orcpt : "(null)", c->orcpt);
	smtp_rcpt_params_free(&rp);
}
END_TEST

START_TEST(test_xtext_roundtrip)
{
	static const char *const samples[] = {
		"plain", "a+b=c", "with space", "\xc3\xa9t\xc3\xa9", "~!{}", "",
	};

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct buf enc = BUF_INIT(0), dec = BUF_INIT(0);
		smtp_xtext_encode(samples[i], &enc);
		for (size_t k = 0; k < enc.len; k++)
			ck_assert_msg(enc.data[k] > ' ' && enc.data[k] <= '~'
			    && enc.data[k] != '=', "\"%s\": encoded byte %02x",
			    samples[i], (unsigned char)enc.data[k]);
		ck_assert_int_eq(smtp_xtext_decode(enc.data, enc.len, &dec), 0);
		ck_assert_msg(strcmp(buf_cstr(&dec), samples[i]) == 0,
		    "\"%s\": round trip got \"%s\"", samples[i], buf_cstr(&dec));
		buf_free(&enc);
		buf_free(&dec);
	}
}
END_TEST

START_TEST(test_xtext_bad)
{
	static const char *const bad[] = { "a=b", "a b", "+", "+4", "+4g", "+4a", "+7F", "\x80" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf out = BUF_INIT(0);
		buf_puts(&out, "keep");
		ck_assert_msg(smtp_xtext_decode(bad[i], strlen(bad[i]), &out) < 0,
		    "\"%s\" decoded", bad[i]);
		ck_assert_msg(strcmp(buf_cstr(&out), "keep") == 0,
		    "\"%s\": output not restored: \"%s\"", bad[i], buf_cstr(&out));
		buf_free(&out);
	}
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("smtp_cmd");
	TCase *tc = tcase_create("cmd");

	tcase_add_loop_test(tc, test_verb_lookup, 0,
	    (int)(sizeof(verb_cases) / sizeof(verb_cases[0])));
	tcase_add_test(tc, test_verb_table_consistent);
	tcase_add_loop_test(tc, test_cmd_parse, 0,
	    (int)(sizeof(cmd_cases) / sizeof(cmd_cases[0])));
	tcase_add_loop_test(tc, test_line_split, 0,
	    (int)(sizeof(line_cases) / sizeof(line_cases[0])));
	tcase_add_loop_test(tc, test_mail_params, 0,
	    (int)(sizeof(mail_cases) / sizeof(mail_cases[0])));
	tcase_add_loop_test(tc, test_rcpt_params, 0,
	    (int)(sizeof(rcpt_cases) / sizeof(rcpt_cases[0])));
	tcase_add_test(tc, test_xtext_roundtrip);
	tcase_add_test(tc, test_xtext_bad);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
