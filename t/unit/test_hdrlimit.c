/*
 * test_hdrlimit - Postfix's header_size_limit over streamed content
 * (lib/mail/hdrlimit.c): a logical header is cut at the first piece
 * (physical line, or line_length_limit bytes of a long one) that starts
 * at or over the limit; the body passes untouched; Received: fields are
 * counted; Message-ID is found. Every case is fed whole, byte at a time
 * and in every two-piece split, and must give the same bytes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/hdrlimit.h"

struct hcase {
	const char *name;
	const char *in;
	const char *out;
	size_t limit, piece;
	long long hops, truncated;
	const char *msgid;
};

static const struct hcase cases[] = {
	{ "untouched", "Subject: hi\nTo: a@b\n\nbody\n",
	  "Subject: hi\nTo: a@b\n\nbody\n", 100, 16, 0, 0, NULL },
	{ "folded header kept", "Subject: a\n b\n\tc\n\nx\n",
	  "Subject: a\n b\n\tc\n\nx\n", 100, 16, 0, 0, NULL },
	/* 4 pieces of 4 bytes: the ones starting at 0, 4 (cur 4 < 6) are kept,
	 * the one starting at 8 is not. */
	{ "long line cut at a piece", "X:0123456789abcdef\nY: y\n\nb\n",
	  "X:012345\nY: y\n\nb\n", 6, 4, 0, 1, NULL },
	{ "continuation lines dropped with their LF",
	  "X: aaaa\n bbbb\n cccc\n dddd\nY: y\n\n",
	  "X: aaaa\n bbbb\nY: y\n\n", 10, 100, 0, 1, NULL },
	{ "cut header at the end of input", "X: aaaa\n bbbb\n cccc\n",
	  "X: aaaa\n bbbb\n", 10, 100, 0, 1, NULL },
	{ "body lines are never cut", "A: b\n\n0123456789012345678901234567890123\n",
	  "A: b\n\n0123456789012345678901234567890123\n", 6, 4, 0, 0, NULL },
	{ "no header at all", "just text\nmore\n", "just text\nmore\n", 4, 4, 0, 0, NULL },
	{ "non-header line ends the header",
	  "A: b\nnot a header 0123456789012345678901234567890123\n C: d\n",
	  "A: b\nnot a header 0123456789012345678901234567890123\n C: d\n",
	  6, 4, 0, 0, NULL },
	{ "continuation first is body", " x: y\nA: b\n", " x: y\nA: b\n", 6, 4, 0, 0, NULL },
	{ "hops", "Received: a\nreceived: b\n c\nX-Received: c\nRECEIVED:d\n\nReceived: body\n",
	  "Received: a\nreceived: b\n c\nX-Received: c\nRECEIVED:d\n\nReceived: body\n",
	  100, 16, 3, 0, NULL },
	{ "message-id", "Message-Id:  <a@b> \nMessage-ID: <c@d>\n\n",
	  "Message-Id:  <a@b> \nMessage-ID: <c@d>\n\n", 100, 16, 0, 0, "<a@b>" },
	{ "no final LF", "Subject: x", "Subject: x", 100, 16, 0, 0, NULL },
	{ "empty line first", "\nA: b\n", "\nA: b\n", 100, 16, 0, 0, NULL },
	{ "name too long is body", "ABCDEFGHIJ: x\n", "ABCDEFGHIJ: x\n", 100, 4, 0, 0, NULL },
};

static void
feed(const struct hcase *c, size_t split, size_t step, struct buf *out,
    struct hdrlimit *h)
{
	size_t n = strlen(c->in), pos = 0;

	hdrlimit_init(h, c->limit, c->piece);
	buf_init(out, 0);
	if (split > 0 && split < n) {
		hdrlimit_feed(h, c->in, split, out);
		pos = split;
	}
	while (pos < n) {
		size_t k = step && n - pos > step ? step : n - pos;
		hdrlimit_feed(h, c->in + pos, k, out);
		pos += k;
	}
	hdrlimit_end(h, out);
}

START_TEST(test_cases)
{
	const struct hcase *c = &cases[_i];
	size_t n = strlen(c->in);

	for (size_t split = 0; split <= n; split++) {
		for (size_t step = 0; step <= 1; step++) {
			struct buf out;
			struct hdrlimit h;
			feed(c, split, step, &out, &h);
			ck_assert_msg(out.len == strlen(c->out)
			    && memcmp(out.data, c->out, out.len) == 0,
			    "%s (split %zu step %zu): got \"%.*s\"", c->name, split, step,
			    (int)out.len, out.data);
			ck_assert_msg(h.hops == c->hops, "%s: hops %lld", c->name, h.hops);
			ck_assert_msg(h.truncated == c->truncated, "%s: truncated %lld",
			    c->name, h.truncated);
			if (c->msgid == NULL)
				ck_assert_ptr_null(h.message_id);
			else
				ck_assert_str_eq(h.message_id, c->msgid);
			hdrlimit_free(&h);
			buf_free(&out);
		}
	}
}
END_TEST

/* The cases at Postfix's defaults: a 2 MB header line and a
 * million folded lines each become one bounded header. */
START_TEST(test_big_headers_bounded)
{
	size_t limit = 102400, piece = 2048;
	struct buf in = BUF_INIT(0), out = BUF_INIT(0);
	struct hdrlimit h;

	buf_puts(&in, "X-Big: ");
	for (int i = 0; i < 2 * 1024 * 1024; i++)
		buf_putc(&in, 'a');
	buf_puts(&in, "\nSubject: after\n\nbody\n");
	hdrlimit_init(&h, limit, piece);
	for (size_t pos = 0; pos < in.len; pos += 4096)
		hdrlimit_feed(&h, in.data + pos, in.len - pos < 4096 ? in.len - pos : 4096,
		    &out);
	hdrlimit_end(&h, &out);
	ck_assert_uint_le(out.len, limit + piece + 64);
	ck_assert_uint_ge(out.len, limit);
	ck_assert(strstr(buf_cstr(&out), "\nSubject: after\n\nbody\n") != NULL);
	ck_assert_int_eq(h.truncated, 1);
	hdrlimit_free(&h);

	buf_reset(&in);
	buf_reset(&out);
	buf_puts(&in, "X-Fold: x\n");
	for (int i = 0; i < 1000000; i++)
		buf_puts(&in, " a\n");
	buf_puts(&in, "\nbody\n");
	hdrlimit_init(&h, limit, piece);
	hdrlimit_feed(&h, in.data, in.len, &out);
	hdrlimit_end(&h, &out);
	ck_assert_uint_le(out.len, limit + piece + 64);
	ck_assert(memcmp(out.data + out.len - 7, "\n\nbody\n", 7) == 0);
	hdrlimit_free(&h);
	buf_free(&in);
	buf_free(&out);
}
END_TEST

START_TEST(test_hops_of_a_block)
{
	static const char hdr[] = "Received: a\n b\nReceived: c\nX: Received: d\n";

	ck_assert_int_eq(hdrlimit_hops(hdr, strlen(hdr)), 2);
	ck_assert_int_eq(hdrlimit_hops("", 0), 0);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("hdrlimit");
	TCase *tc = tcase_create("hdrlimit");

	tcase_add_loop_test(tc, test_cases, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_big_headers_bounded);
	tcase_add_test(tc, test_hops_of_a_block);
	tcase_set_timeout(tc, 60);
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
