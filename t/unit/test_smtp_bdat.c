/*
 * test_smtp_bdat - RFC 3030 BDAT in lib/proto/smtp.c: the argument
 * ("count [LAST]"), the chunk content (CRLF made LF, every other octet
 * kept, binary included, a CRLF split across chunks), the size limit; and
 * smtpd_forbid_bare_newline = reject in the DATA parser. Every content case
 * is fed whole, byte at a time and in every two-piece split.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp.h"

/* --- BDAT arguments ------------------------------------------------------- */

static const struct {
	const char *arg;
	int ok;
	long long size;
	int last;
} arg_cases[] = {
	{ "0", 1, 0, 0 },
	{ "0 LAST", 1, 0, 1 },
	{ "1000", 1, 1000, 0 },
	{ "12 last", 1, 12, 1 },
	{ "12\tLaSt", 1, 12, 1 },
	{ "12  LAST", 1, 12, 1 },
	{ "999999999999999999", 1, 999999999999999999LL, 0 },
	{ "9999999999999999999", 0, 0, 0 },       /* 19 digits */
	{ "", 0, 0, 0 },
	{ "LAST", 0, 0, 0 },
	{ "-1", 0, 0, 0 },
	{ "+5", 0, 0, 0 },
	{ "5x", 0, 0, 0 },
	{ "5 LASTX", 0, 0, 0 },
	{ "5 LAST x", 0, 0, 0 },
	{ "5 FIRST", 0, 0, 0 },
	{ "0x10", 0, 0, 0 },
};

START_TEST(test_bdat_args)
{
	long long size = -1;
	int last = -1;
	int r = smtp_bdat_args(arg_cases[_i].arg, strlen(arg_cases[_i].arg), &size,
	    &last);

	if (!arg_cases[_i].ok) {
		ck_assert_msg(r < 0, "\"%s\": accepted", arg_cases[_i].arg);
		return;
	}
	ck_assert_msg(r == 0, "\"%s\": refused", arg_cases[_i].arg);
	ck_assert_msg(size == arg_cases[_i].size, "\"%s\": size %lld",
	    arg_cases[_i].arg, size);
	ck_assert_int_eq(last, arg_cases[_i].last);
}
END_TEST

/* --- chunk content -------------------------------------------------------- */

struct ccase {
	const char *name;
	const char *in;            /* the octets of all chunks, concatenated */
	size_t inlen;              /* 0: strlen */
	const char *out;
	size_t outlen;             /* 0: strlen */
};

static const struct ccase ccases[] = {
	{ "CRLF to LF", "Subject: x\r\n\r\nbody\r\n", 0, "Subject: x\n\nbody\n", 0 },
	{ "no dot handling", ".\r\n..x\r\n.\r\n", 0, ".\n..x\n.\n", 0 },
	{ "lone LF kept", "a\nb\r\n", 0, "a\nb\n", 0 },
	{ "lone CR kept", "a\rb\r\n", 0, "a\rb\n", 0 },
	{ "CRCRLF keeps one CR", "a\r\r\nb", 0, "a\r\nb", 0 },
	{ "trailing CR kept at the end", "a\r", 0, "a\r", 0 },
	{ "commands are content", "RSET\r\nQUIT\r\n", 0, "RSET\nQUIT\n", 0 },
	{ "binary", "\x00\x01\xff\r\x80\n\x00\r\n", 9, "\x00\x01\xff\r\x80\n\x00\n", 8 },
};

/* Feed in[0..n) in pieces of step (0: whole); a piece boundary is also a
 * chunk boundary, so a CRLF split across two BDATs is covered. */
static void
run(const struct ccase *c, size_t step, size_t split, long long max,
    struct buf *out, struct smtp_data *d)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	size_t n = c->inlen ? c->inlen : strlen(c->in), pos = 0;

	lim.max_size = max;
	smtp_data_init(d);
	buf_init(out, 0);
	if (split > 0 && split < n) {
		smtp_bdat_parse(d, &lim, c->in, split, out);
		pos = split;
	}
	while (pos < n) {
		size_t k = step && n - pos > step ? step : n - pos;
		smtp_bdat_parse(d, &lim, c->in + pos, k, out);
		pos += k;
	}
	smtp_bdat_end(d, &lim, out);
}

START_TEST(test_bdat_content)
{
	const struct ccase *c = &ccases[_i];
	size_t n = c->inlen ? c->inlen : strlen(c->in);
	size_t want = c->outlen ? c->outlen : strlen(c->out);
	struct buf out;
	struct smtp_data d;

	for (size_t split = 0; split <= n; split++) {
		for (size_t step = 0; step <= 1; step++) {
			run(c, step, split, 0, &out, &d);
			ck_assert_msg(out.len == want && memcmp(out.data, c->out, want) == 0,
			    "%s (split %zu, step %zu): got %zu bytes \"%.*s\"", c->name,
			    split, step, out.len, (int)out.len, out.data);
			ck_assert_msg(d.size == (long long)want, "%s: size %lld", c->name,
			    d.size);
			buf_free(&out);
		}
	}
}
END_TEST

START_TEST(test_bdat_size_limit)
{
	static const struct ccase c = { "big", "0123456789\r\n0123456789\r\n", 0, "", 0 };
	struct buf out;
	struct smtp_data d;

	run(&c, 1, 0, 15, &out, &d);
	ck_assert_int_eq(d.too_big, 1);
	ck_assert_uint_eq(out.len, 15);
	ck_assert_int_eq(d.size, 22);
	ck_assert(memcmp(out.data, "0123456789\n0123", 15) == 0);
	buf_free(&out);
	run(&c, 0, 0, 22, &out, &d);
	ck_assert_int_eq(d.too_big, 0);
	buf_free(&out);
}
END_TEST

/* --- DATA with smtpd_forbid_bare_newline = reject ----------------------------- */

static const struct {
	const char *in;
	enum smtp_result want;
	size_t consumed;           /* for ERROR and DONE */
	const char *out;
} bare_cases[] = {
	{ "a\r\nb\r\n.\r\n", SMTP_DONE, 9, "a\nb\n" },
	{ "a\r\nb\nRSET\r\n.\r\n", SMTP_ERROR, 5, "a\nb" },
	{ "a\r\n.\n", SMTP_ERROR, 5, "a\n" },
	{ "\n.\r\n", SMTP_ERROR, 1, "" },
	{ "a\r\r\nb\r\n.\r\n", SMTP_DONE, 10, "a\nb\n" },   /* CR before the LF */
	{ "a\rb\r\n.\r\n", SMTP_DONE, 8, "a\rb\n" },         /* bare CR: content */
};

START_TEST(test_data_bare_lf_reject)
{
	const char *in = bare_cases[_i].in;
	size_t n = strlen(in);

	for (size_t step = 0; step <= 1; step++) {
		struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
		struct smtp_data d;
		struct buf out = BUF_INIT(0);
		size_t pos = 0, used;
		enum smtp_result r = SMTP_NEED_MORE;

		lim.reject_bare_lf = 1;
		smtp_data_init(&d);
		while (pos < n && r == SMTP_NEED_MORE) {
			size_t k = step && n - pos > step ? step : n - pos;
			r = smtp_data_parse(&d, &lim, in + pos, k, &used, &out);
			pos += used;
		}
		ck_assert_msg(r == bare_cases[_i].want, "\"%s\" step %zu: result %d",
		    in, step, r);
		ck_assert_msg(pos == bare_cases[_i].consumed, "\"%s\": consumed %zu",
		    in, pos);
		ck_assert_int_eq(d.bare_lf, r == SMTP_ERROR);
		ck_assert_uint_eq(out.len, strlen(bare_cases[_i].out));
		ck_assert(memcmp(out.data ? out.data : "", bare_cases[_i].out, out.len) == 0);
		if (r == SMTP_ERROR)   /* and it stays stopped */
			ck_assert_int_eq(smtp_data_parse(&d, &lim, "x\r\n", 3, &used, &out),
			    SMTP_ERROR);
		buf_free(&out);
	}
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("smtp_bdat");
	TCase *tc = tcase_create("bdat");

	tcase_add_loop_test(tc, test_bdat_args, 0,
	    (int)(sizeof(arg_cases) / sizeof(arg_cases[0])));
	tcase_add_loop_test(tc, test_bdat_content, 0,
	    (int)(sizeof(ccases) / sizeof(ccases[0])));
	tcase_add_test(tc, test_bdat_size_limit);
	tcase_add_loop_test(tc, test_data_bare_lf_reject, 0,
	    (int)(sizeof(bare_cases) / sizeof(bare_cases[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
