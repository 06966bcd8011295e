/*
 * test_pop3 - lib/proto/pop3.c: the verb table, command splitting and its
 * errors, message numbers, the RETR/TOP encoder (CRLF, dot-stuffing, TOP
 * line counts, sizes equal to what RETR sends), whole and byte-at-a-time;
 * and lib/util/line.c as POP3 uses it (trickled lines, over-long lines);
 * UIDLs by pop3d_uidl_format.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pop3.h"
#include "util/line.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct {
	const char *line;
	enum pop3_result want;
	enum pop3_verb verb;
	int argc;
	const char *a0, *a1;
} cmd_cases[] = {
	{ "USER alice@example.test", POP3_DONE, POP3_USER, 1, "alice@example.test", NULL },
	{ "user bob", POP3_DONE, POP3_USER, 1, "bob", NULL },
	{ "USER", POP3_ERROR, POP3_USER, 0, NULL, NULL },
	{ "USER a b", POP3_ERROR, POP3_USER, 0, NULL, NULL },
	{ "PASS secret with spaces ", POP3_DONE, POP3_PASS, 1, "secret with spaces ", NULL },
	{ "PASS  lead", POP3_DONE, POP3_PASS, 1, " lead", NULL },
	{ "PASS", POP3_ERROR, POP3_PASS, 0, NULL, NULL },
	{ "STAT", POP3_DONE, POP3_STAT, 0, NULL, NULL },
	{ "stat 1", POP3_ERROR, POP3_STAT, 0, NULL, NULL },
	{ "LIST", POP3_DONE, POP3_LIST, 0, NULL, NULL },
	{ "LIST 3", POP3_DONE, POP3_LIST, 1, "3", NULL },
	{ "LIST 3 ", POP3_ERROR, POP3_LIST, 0, NULL, NULL },
	{ "LIST  3", POP3_ERROR, POP3_LIST, 0, NULL, NULL },
	{ "RETR 1", POP3_DONE, POP3_RETR, 1, "1", NULL },
	{ "RETR", POP3_ERROR, POP3_RETR, 0, NULL, NULL },
	{ "TOP 1 0", POP3_DONE, POP3_TOP, 2, "1", "0" },
	{ "TOP 1", POP3_ERROR, POP3_TOP, 0, NULL, NULL },
	{ "TOP 1 2 3", POP3_ERROR, POP3_TOP, 0, NULL, NULL },
	{ "UIDL", POP3_DONE, POP3_UIDL, 0, NULL, NULL },
	{ "uidl 7", POP3_DONE, POP3_UIDL, 1, "7", NULL },
	{ "DELE 2", POP3_DONE, POP3_DELE, 1, "2", NULL },
	{ "NOOP", POP3_DONE, POP3_NOOP, 0, NULL, NULL },
	{ "RSET", POP3_DONE, POP3_RSET, 0, NULL, NULL },
	{ "QUIT", POP3_DONE, POP3_QUIT, 0, NULL, NULL },
	{ "CAPA", POP3_DONE, POP3_CAPA, 0, NULL, NULL },
	{ "STLS", POP3_DONE, POP3_STLS, 0, NULL, NULL },
	{ "UTF8", POP3_DONE, POP3_UTF8, 0, NULL, NULL },
	{ "AUTH", POP3_DONE, POP3_AUTH, 0, NULL, NULL },
	{ "AUTH PLAIN", POP3_DONE, POP3_AUTH, 1, "PLAIN", NULL },
	{ "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXRzZWNyZXRzZWNyZXQ=",
	  POP3_DONE, POP3_AUTH, 2, "PLAIN",
	  "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXRzZWNyZXRzZWNyZXQ=" },
	{ "APOP a b", POP3_DONE, POP3_APOP, 2, "a", "b" },
	{ "XYZZY 1 2 3 4", POP3_DONE, POP3_UNKNOWN, 0, NULL, NULL },
	{ "", POP3_ERROR, POP3_UNKNOWN, 0, NULL, NULL },
	{ " STAT", POP3_ERROR, POP3_UNKNOWN, 0, NULL, NULL },
	{ "STAT\t", POP3_ERROR, POP3_UNKNOWN, 0, NULL, NULL },
	{ "USER a\x01", POP3_ERROR, POP3_UNKNOWN, 0, NULL, NULL },
	{ "USER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", POP3_ERROR, POP3_USER, 0, NULL, NULL },
};

START_TEST(test_cmd_parse)
{
	const char *line = cmd_cases[_i].line;
	struct pop3_cmd cmd;
	const char *err = NULL;
	enum pop3_result r = pop3_cmd_parse(line, strlen(line), &cmd, &err);

	ck_assert_msg(r == cmd_cases[_i].want, "\"%s\": got %d want %d", line, r,
	    cmd_cases[_i].want);
	if (r == POP3_ERROR) {
		ck_assert_ptr_nonnull(err);
		return;
	}
	ck_assert_msg(cmd.verb->verb == cmd_cases[_i].verb, "\"%s\": verb %s", line,
	    cmd.verb->name);
	if (cmd.verb->verb == POP3_UNKNOWN)
		return;
	ck_assert_int_eq(cmd.argc, cmd_cases[_i].argc);
	for (int k = 0; k < cmd.argc; k++) {
		const char *want = k == 0 ? cmd_cases[_i].a0 : cmd_cases[_i].a1;
		ck_assert_msg(cmd.argv[k].len == strlen(want)
		    && memcmp(cmd.argv[k].p, want, cmd.argv[k].len) == 0,
		    "\"%s\": argument %d is \"%.*s\", want \"%s\"", line, k,
		    (int)cmd.argv[k].len, cmd.argv[k].p, want);
	}
}
END_TEST

START_TEST(test_verb_table)
{
	for (int i = 1; i < POP3_VERB_COUNT; i++) {
		ck_assert_int_eq(pop3_verbs[i].verb, i);
		ck_assert(pop3_verbs[i].states != 0);
	}
}
END_TEST

START_TEST(test_cmd_accept)
{
	struct pop3_cmd cmd;
	const char *err = NULL;

	ck_assert_int_eq(pop3_cmd_accept("STAT", 4, POP3_ST_TRANS, &cmd, &err), POP3_DONE);
	ck_assert_int_eq(pop3_cmd_accept("STAT", 4, POP3_ST_AUTH, &cmd, &err), POP3_ERROR);
	ck_assert_str_eq(err, "Unknown command in AUTHORIZATION state");
	ck_assert_int_eq(pop3_cmd_accept("USER x", 6, POP3_ST_TRANS, &cmd, &err), POP3_ERROR);
	ck_assert_str_eq(err, "Unknown command in TRANSACTION state");
	ck_assert_int_eq(pop3_cmd_accept("FOO", 3, POP3_ST_AUTH, &cmd, &err), POP3_ERROR);
	ck_assert_str_eq(err, "Unknown command");
	ck_assert_int_eq(pop3_cmd_accept("QUIT", 4, POP3_ST_AUTH, &cmd, &err), POP3_DONE);
	ck_assert_int_eq(pop3_cmd_accept("QUIT x", 6, POP3_ST_AUTH, &cmd, &err), POP3_ERROR);
}
END_TEST

static const struct {
	const char *s;
	int ok;
	unsigned long n;
} num_cases[] = {
	{ "1", 0, 1 }, { "0", 0, 0 }, { "123456789", 0, 123456789 },
	{ "1234567890", -1, 0 }, { "-1", -1, 0 }, { "+1", -1, 0 }, { "1a", -1, 0 },
	{ "", -1, 0 }, { " 1", -1, 0 },
};

START_TEST(test_number)
{
	struct pop3_arg a = { num_cases[_i].s, strlen(num_cases[_i].s) };
	unsigned long n = 99;

	ck_assert_int_eq(pop3_number(&a, &n), num_cases[_i].ok);
	if (num_cases[_i].ok == 0)
		ck_assert_uint_eq(n, num_cases[_i].n);
}
END_TEST

static const struct {
	const char *in;
	int stuff;
	long top;
	const char *want;
} enc_cases[] = {
	{ "a\nb\n", 1, -1, "a\r\nb\r\n" },
	{ "a\r\nb\r\n", 1, -1, "a\r\nb\r\n" },
	{ "a\nb", 1, -1, "a\r\nb\r\n" },
	{ "", 1, -1, "" },
	{ ".\n..x\n.", 1, -1, "..\r\n...x\r\n..\r\n" },
	{ ".\n..x\n", 0, -1, ".\r\n..x\r\n" },
	{ "a\rb\n", 1, -1, "a\rb\r\n" },
	{ "a\r", 1, -1, "a\r\r\n" },
	{ "a\r\r\n.b\n", 1, -1, "a\r\r\n..b\r\n" },
	{ "S: x\nT: y\n\nl1\nl2\nl3\n", 1, 0, "S: x\r\nT: y\r\n\r\n" },
	{ "S: x\nT: y\n\nl1\n.l2\nl3\n", 1, 2, "S: x\r\nT: y\r\n\r\nl1\r\n..l2\r\n" },
	{ "S: x\nT: y\n\nl1\n", 1, 5, "S: x\r\nT: y\r\n\r\nl1\r\n" },
	{ "S: x\nno body", 1, 0, "S: x\r\nno body\r\n" },
	{ "\nbody\n", 1, 0, "\r\n" },
};

static void
encode(const char *in, size_t n, size_t step, int stuff, long top, struct buf *out)
{
	struct pop3_enc e;
	long long total = 0;

	pop3_enc_init(&e, stuff, top);
	for (size_t pos = 0; pos < n;) {
		size_t len = step && n - pos > step ? step : n - pos;
		long long r = pop3_enc_feed(&e, in + pos, len, out);
		ck_assert(r >= 0);
		total += r;
		pos += len;
	}
	total += pop3_enc_finish(&e, out);
	ck_assert_int_eq(total, (long long)out->len);
}

START_TEST(test_encode)
{
	const char *in = enc_cases[_i].in;

	for (size_t step = 0; step <= 3; step++) {
		struct buf out = BUF_INIT(0);
		encode(in, strlen(in), step, enc_cases[_i].stuff, enc_cases[_i].top, &out);
		ck_assert_msg(strcmp(buf_cstr(&out), enc_cases[_i].want) == 0,
		    "case %d step %zu: got \"%s\"", _i, step, buf_cstr(&out));
		buf_free(&out);
	}
}
END_TEST

/* LIST's size is what RETR sends before dot-stuffing. */
START_TEST(test_wire_size)
{
	const char *in = enc_cases[_i].in;
	struct buf out = BUF_INIT(0);

	if (enc_cases[_i].top >= 0)
		return;
	encode(in, strlen(in), 1, 0, -1, &out);
	ck_assert_int_eq(pop3_wire_size(in, strlen(in)), (long long)out.len);
	buf_free(&out);
}
END_TEST

/* Command lines, trickled one byte at a time through line_split as
 * conn_read_line does: the same lines and errors as whole. */
static void
split_all(const char *in, size_t n, size_t step, size_t max, struct buf *got)
{
	struct line_splitter ls = { 0 };
	struct buf pend = BUF_INIT(0);

	for (size_t pos = 0; pos < n;) {
		size_t len = step && n - pos > step ? step : n - pos;
		buf_append(&pend, in + pos, len);
		pos += len;
		for (;;) {
			size_t used, ll;
			enum line_result r = line_split(&ls, max, pend.data, pend.len,
			    &used, &ll);
			if (r == LINE_DONE) {
				struct pop3_cmd cmd;
				const char *err;
				if (pop3_cmd_parse(pend.data, ll, &cmd, &err) == POP3_DONE)
					buf_printf(got, "[%s %d]", cmd.verb->name, cmd.argc);
				else
					buf_printf(got, "[-ERR %s]", err);
			} else if (r == LINE_TOO_LONG) {
				buf_puts(got, "[long]");
			}
			buf_consume(&pend, used);
			if (r == LINE_NEED_MORE)
				break;
		}
	}
	buf_free(&pend);
}

START_TEST(test_trickled)
{
	char big[600];
	struct buf in = BUF_INIT(0);

	memset(big, 'x', sizeof(big));
	buf_puts(&in, "USER alice\r\nPASS p w\nSTAT\r\r\nLIST 1\r\nNOPE\r\n");
	buf_puts(&in, "RETR ");
	buf_append(&in, big, sizeof(big));
	buf_puts(&in, "\r\nTOP 1 2\r\nQUIT\r\n");
	struct buf whole = BUF_INIT(0);
	split_all(in.data, in.len, 0, POP3_LINE_MAX, &whole);
	ck_assert_str_eq(buf_cstr(&whole),
	    "[USER 1][PASS 1][STAT 0][LIST 1][ 0][long][TOP 2][QUIT 0]");
	for (size_t step = 1; step <= 7; step++) {
		struct buf got = BUF_INIT(0);
		split_all(in.data, in.len, step, POP3_LINE_MAX, &got);
		ck_assert_str_eq(buf_cstr(&got), buf_cstr(&whole));
		buf_free(&got);
	}
	buf_free(&whole);
	buf_free(&in);
}
END_TEST

static const struct {
	const char *fmt;
	const char *want;              /* NULL: refused */
} uidl_cases[] = {
	{ "%v.%u", "1796647670.10" },
	{ "%08Xu%08Xv", "0000000a6b16aaf6" },     /* Dovecot's default */
	{ "%08u-%v", "00000010-1796647670" },
	{ "%Xu", "a" },
	{ "%f", "1700000000.M9P1.host,S=42" },
	{ "u%u%%", "u10%" },
	{ "%v", NULL },                 /* not unique */
	{ "%v %u", NULL },              /* a space */
	{ "%8u", NULL },                /* space padding */
	{ "%y%u", NULL },
	{ "%u%", NULL },
	{ "%08Xf", NULL },
	{ "%099u", NULL },
	{ "", NULL },
};

START_TEST(test_uidl_format)
{
	struct buf b = BUF_INIT(0);
	int r = pop3_uidl_format(&b, uidl_cases[_i].fmt, 10, 1796647670u,
	    "1700000000.M9P1.host,S=42:2,S");

	if (uidl_cases[_i].want == NULL) {
		ck_assert_msg(r != 0, "%s accepted", uidl_cases[_i].fmt);
	} else {
		ck_assert_int_eq(r, 0);
		ck_assert_str_eq(buf_cstr(&b), uidl_cases[_i].want);
	}
	buf_free(&b);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("pop3");
	TCase *tc = tcase_create("pop3");

	tcase_add_loop_test(tc, test_cmd_parse, 0, N(cmd_cases));
	tcase_add_test(tc, test_verb_table);
	tcase_add_test(tc, test_cmd_accept);
	tcase_add_loop_test(tc, test_number, 0, N(num_cases));
	tcase_add_loop_test(tc, test_encode, 0, N(enc_cases));
	tcase_add_loop_test(tc, test_wire_size, 0, N(enc_cases));
	tcase_add_test(tc, test_trickled);
	tcase_add_loop_test(tc, test_uidl_format, 0, N(uidl_cases));
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
