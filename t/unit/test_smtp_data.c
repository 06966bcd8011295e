/*
 * test_smtp_data - the DATA-phase parser (lib/proto/smtp.c): end-of-data
 * detection, SMTP smuggling probes, dot-unstuffing, CR handling, the size
 * limit, and that every split of the input (whole, byte-at-a-time, two
 * pieces at every offset) gives the same output and the same consumed
 * count.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp.h"

struct dcase {
	const char *name;
	const char *in;
	size_t inlen;              /* 0: strlen(in) */
	enum smtp_result want;     /* DONE or NEED_MORE */
	const char *out;           /* expected content */
	size_t outlen;             /* 0: strlen(out) */
	size_t consumed;           /* for DONE; 0: all of in */
	long long max_size;        /* 0: unlimited */
	int too_big;
};

static const struct dcase cases[] = {
	{ .name = "simple", .in = "Subject: x\r\n\r\nbody\r\n.\r\n",
	  .want = SMTP_DONE, .out = "Subject: x\n\nbody\n" },
	{ .name = "empty message", .in = ".\r\n", .want = SMTP_DONE, .out = "" },
	{ .name = "empty line then end", .in = "\r\n.\r\n", .want = SMTP_DONE,
	  .out = "\n" },
	/* Smuggling probes: none of these may end the data. */
	{ .name = "LF.LF", .in = "a\n.\nMAIL FROM:<x@y>\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\n.\nMAIL FROM:<x@y>\n" },
	{ .name = "LF.CRLF", .in = "a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\n.\nMAIL FROM:<x@y>\n" },
	{ .name = "CRLF.LF", .in = "a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\n.\nMAIL FROM:<x@y>\n" },
	{ .name = "CRLF.CRCRLF", .in = "a\r\n.\r\r\nRSET\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\n.\nRSET\n" },
	{ .name = "CRCRLF.CRLF", .in = "a\r\r\n.\r\nRSET\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\n.\nRSET\n" },
	{ .name = "LF.LF unterminated", .in = "a\n.\n", .want = SMTP_NEED_MORE,
	  .out = "a\n.\n" },
	{ .name = "first line bare LF", .in = "\n.\r\n", .want = SMTP_NEED_MORE,
	  .out = "\n.\n" },
	{ .name = "first line LF.LF", .in = ".\n", .want = SMTP_NEED_MORE,
	  .out = ".\n" },
	{ .name = "non-standard then standard", .in = "a\r\r\r\n.\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\n.\n" },
	/* Transparency. */
	{ .name = "dot-unstuffing", .in = "..foo\r\n..\r\n...\r\n.\r\n",
	  .want = SMTP_DONE, .out = ".foo\n.\n..\n" },
	{ .name = "dot inside line", .in = "a.b\r\n .\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a.b\n .\n" },
	{ .name = "unstuff after bare LF", .in = "a\n..x\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\n.x\n" },
	/* CRs. */
	{ .name = "CRCRLF is one line end", .in = "a\r\r\nb\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\nb\n" },
	{ .name = "bare CR kept", .in = "a\rb\r\n.\r\n", .want = SMTP_DONE,
	  .out = "a\rb\n" },
	{ .name = "many bare CRs kept", .in = "a\r\r\r\rb\r\n.\r\n",
	  .want = SMTP_DONE, .out = "a\r\r\r\rb\n" },
	{ .name = "CR starts line", .in = "\r.\r\n.\r\n", .want = SMTP_DONE,
	  .out = "\r.\n" },
	{ .name = "dot CR x", .in = ".\rx\r\n.\r\n", .want = SMTP_DONE,
	  .out = "\rx\n" },
	{ .name = "trailing CRs pending", .in = "abc\r\r", .want = SMTP_NEED_MORE,
	  .out = "abc" },
	{ .name = "NUL is content", .in = "a\0b\r\n.\r\n", .inlen = 8,
	  .want = SMTP_DONE, .out = "a\0b\n", .outlen = 4 },
	/* What follows the end is not consumed. */
	{ .name = "pipelined after end", .in = "x\r\n.\r\nQUIT\r\n",
	  .want = SMTP_DONE, .out = "x\n", .consumed = 6 },
	{ .name = "end then dot line", .in = ".\r\n.\r\n", .want = SMTP_DONE,
	  .out = "", .consumed = 3 },
	{ .name = "no end yet", .in = "abc\r\n", .want = SMTP_NEED_MORE,
	  .out = "abc\n" },
	{ .name = "nothing", .in = "", .want = SMTP_NEED_MORE, .out = "" },
	/* Size. */
	{ .name = "too big", .in = "0123456789\r\n.\r\n", .want = SMTP_DONE,
	  .out = "01234", .max_size = 5, .too_big = 1 },
	{ .name = "exactly the limit", .in = "0123\r\n.\r\n", .want = SMTP_DONE,
	  .out = "0123\n", .max_size = 5 },
	{ .name = "one over the limit", .in = "01234\r\n.\r\n", .want = SMTP_DONE,
	  .out = "01234", .max_size = 5, .too_big = 1 },
};

struct result {
	enum smtp_result r;
	size_t consumed;
	struct buf out;
	long long size;
	int too_big;
};

/* Feed in[] in pieces of at most step bytes (0 = whole), the second piece
 * starting at split when split > 0. Stops at DONE, as smtpd does. */
static void
run(const struct dcase *c, size_t step, size_t split, struct result *res)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_data d;
	size_t n = c->inlen ? c->inlen : strlen(c->in), pos = 0;

	lim.max_size = c->max_size;
	smtp_data_init(&d);
	buf_init(&res->out, 0);
	res->r = SMTP_NEED_MORE;
	res->consumed = 0;
	while (pos < n || n == 0) {
		size_t len = n - pos, used = 0;
		if (step > 0 && len > step)
			len = step;
		if (split > 0 && pos < split && pos + len > split)
			len = split - pos;
		res->r = smtp_data_parse(&d, &lim, c->in + pos, len, &used, &res->out);
		ck_assert_msg(used <= len, "%s: consumed %zu of %zu", c->name, used, len);
		pos += used;
		if (res->r != SMTP_NEED_MORE || n == 0)
			break;
		ck_assert_msg(used == len, "%s: NEED_MORE but consumed %zu of %zu",
		    c->name, used, len);
	}
	res->consumed = pos;
	res->size = d.size;
	res->too_big = d.too_big;
}

static void
check_result(const struct dcase *c, const struct result *res, const char *how)
{
	size_t n = c->inlen ? c->inlen : strlen(c->in);
	size_t outlen = c->outlen ? c->outlen : strlen(c->out);
	size_t want_consumed = c->consumed ? c->consumed : n;

	ck_assert_msg(res->r == c->want, "%s (%s): result got %d want %d",
	    c->name, how, res->r, c->want);
	ck_assert_msg(res->consumed == want_consumed,
	    "%s (%s): consumed got %zu want %zu", c->name, how, res->consumed,
	    want_consumed);
	ck_assert_msg(res->out.len == outlen && memcmp(res->out.data ? res->out.data : "",
	    c->out, outlen) == 0, "%s (%s): content got \"%s\" want \"%s\"",
	    c->name, how, buf_cstr(&res->out), c->out);
	ck_assert_msg(res->too_big == c->too_big, "%s (%s): too_big got %d want %d",
	    c->name, how, res->too_big, c->too_big);
}

START_TEST(test_whole)
{
	const struct dcase *c = &cases[_i];
	struct result res;

	run(c, 0, 0, &res);
	check_result(c, &res, "whole");
	buf_free(&res.out);
}
END_TEST

START_TEST(test_byte_at_a_time)
{
	const struct dcase *c = &cases[_i];
	struct result res;

	run(c, 1, 0, &res);
	check_result(c, &res, "byte-at-a-time");
	buf_free(&res.out);
}
END_TEST

START_TEST(test_every_split)
{
	const struct dcase *c = &cases[_i];
	size_t n = c->inlen ? c->inlen : strlen(c->in);

	for (size_t split = 1; split < n; split++) {
		struct result res;
		char how[32];
		snprintf(how, sizeof(how), "split at %zu", split);
		run(c, 0, split, &res);
		check_result(c, &res, how);
		buf_free(&res.out);
	}
}
END_TEST

START_TEST(test_smuggling_content_lines)
{
	/* The smuggled "message" must come out as content lines of the
	 * first one, and the data must still be open after them. */
	static const char *const probes[] = { "\n.\n", "\n.\r\n", "\r\n.\n" };

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
		struct smtp_data d;
		struct buf out = BUF_INIT(0);
		char in[128];
		size_t used;

		snprintf(in, sizeof(in), "Subject: a\r\n\r\nhello%sMAIL FROM:<evil@x>\r\n",
		    probes[i]);
		smtp_data_init(&d);
		enum smtp_result r = smtp_data_parse(&d, &lim, in, strlen(in), &used, &out);
		ck_assert_msg(r == SMTP_NEED_MORE, "probe %zu: ended the data", i);
		ck_assert_msg(strstr(buf_cstr(&out), "hello\n.\nMAIL FROM:<evil@x>\n") != NULL,
		    "probe %zu: content got \"%s\"", i, buf_cstr(&out));
		r = smtp_data_parse(&d, &lim, ".\r\n", 3, &used, &out);
		ck_assert_msg(r == SMTP_DONE && used == 3, "probe %zu: no end after probe", i);
		buf_free(&out);
	}
}
END_TEST

START_TEST(test_after_done_is_error)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_data d;
	struct buf out = BUF_INIT(0);
	size_t used;

	smtp_data_init(&d);
	ck_assert_int_eq(smtp_data_parse(&d, &lim, ".\r\n", 3, &used, &out), SMTP_DONE);
	ck_assert_int_eq(smtp_data_parse(&d, &lim, "x", 1, &used, &out), SMTP_ERROR);
	ck_assert_uint_eq(used, 0);
	buf_free(&out);
}
END_TEST

START_TEST(test_size_counts_past_limit)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_data d;
	struct buf out = BUF_INIT(0);
	char chunk[1000];
	size_t used;

	lim.max_size = 1500;
	memset(chunk, 'x', sizeof(chunk));
	chunk[sizeof(chunk) - 2] = '\r';
	chunk[sizeof(chunk) - 1] = '\n';
	smtp_data_init(&d);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(smtp_data_parse(&d, &lim, chunk, sizeof(chunk), &used, &out),
		    SMTP_NEED_MORE);
	ck_assert_int_eq(smtp_data_parse(&d, &lim, ".\r\n", 3, &used, &out), SMTP_DONE);
	ck_assert_int_eq(d.too_big, 1);
	ck_assert_int_eq(d.size, 10 * 999);
	ck_assert_uint_eq(out.len, 1500);
	buf_free(&out);
}
END_TEST

START_TEST(test_long_line_passes)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_data d;
	struct buf out = BUF_INIT(0);
	size_t n = 100000, used;
	char *in = malloc(n + 5);

	memset(in, 'y', n);
	memcpy(in + n, "\r\n.\r\n", 5);
	smtp_data_init(&d);
	ck_assert_int_eq(smtp_data_parse(&d, &lim, in, n + 5, &used, &out), SMTP_DONE);
	ck_assert_uint_eq(out.len, n + 1);
	ck_assert_int_eq(d.too_big, 0);
	free(in);
	buf_free(&out);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("smtp_data");
	TCase *tc = tcase_create("data");
	int n = (int)(sizeof(cases) / sizeof(cases[0]));

	tcase_add_loop_test(tc, test_whole, 0, n);
	tcase_add_loop_test(tc, test_byte_at_a_time, 0, n);
	tcase_add_loop_test(tc, test_every_split, 0, n);
	tcase_add_test(tc, test_smuggling_content_lines);
	tcase_add_test(tc, test_after_done_is_error);
	tcase_add_test(tc, test_size_counts_past_limit);
	tcase_add_test(tc, test_long_line_passes);
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
