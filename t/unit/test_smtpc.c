/*
 * test_smtpc - the client-side SMTP/LMTP parsers in lib/proto/smtpc.c:
 * replies assembled from bytes (whole, byte at a time, every two-piece
 * split), bounds, the LHLO/EHLO keyword list from a real Dovecot LHLO
 * answer, LMTP nexthops, and the per-recipient replies after DATA
 * (RFC 2033 4.2) collected from a byte stream.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/strv.h"
#include "proto/smtpc.h"

/* Replies in[0..n) fed in pieces of `step` bytes (0: whole, else the
 * split at `step` then the rest when split_once). Codes and texts of the
 * complete replies are appended to out as "CODE|TEXT\n"; returns the
 * number of replies, or -1 on ERROR. */
static int
feed(const char *in, size_t n, size_t step, int split_once, struct buf *out,
    int want_lines, char ***lines_r)
{
	struct smtpc_reply r;
	struct buf pending = BUF_INIT(0);
	size_t pos = 0, used, chunk;
	int count = 0;
	enum smtpc_result rc;

	memset(&r, 0, sizeof(r));
	smtpc_reply_init(&r, want_lines);
	while (pos < n || pending.len > 0) {
		chunk = step == 0 ? n - pos : split_once ? (pos == 0 ? step : n - pos) : step;
		if (chunk > n - pos)
			chunk = n - pos;
		buf_append(&pending, in + pos, chunk);
		pos += chunk;
		for (;;) {
			rc = smtpc_reply_parse(&r, pending.data != NULL ? pending.data : "",
			    pending.len, &used);
			buf_consume(&pending, used);
			if (rc == SMTPC_ERROR) {
				count = -1;
				goto out;
			}
			if (rc == SMTPC_NEED_MORE)
				break;
			buf_printf(out, "%d|%s\n", r.code, buf_cstr(&r.text));
			count++;
			if (lines_r != NULL) {
				strv_free(lines_r);
				*lines_r = r.lines;
				r.lines = NULL;
			}
			smtpc_reply_init(&r, want_lines);
		}
		if (pos == n)
			break;
	}
out:
	buf_free(&pending);
	smtpc_reply_free(&r);
	return count;
}

static const struct {
	const char *in;
	int n;                      /* replies, -1 error */
	const char *want;
} reply_cases[] = {
	{ "220 mx ESMTP\r\n", 1, "220|220 mx ESMTP\n" },
	{ "250-first\r\n250-second\r\n250 last\r\n", 1, "250|250 first second last\n" },
	{ "250\r\n", 1, "250|250\n" },
	{ "250 bare lf\n354 go\n", 2, "250|250 bare lf\n354|354 go\n" },
	{ "250 a\tb\x01" "c\r\n", 1, "250|250 a b c\n" },
	{ "250-one\r\n251 two\r\n", -1, NULL },         /* code changes */
	{ "25 short\r\n", -1, NULL },
	{ "250xtext\r\n", -1, NULL },
	{ "600 no\r\n", -1, NULL },
	{ "250-partial\r\n", 0, "" },                   /* needs more */
};

START_TEST(test_reply_splits)
{
	const char *in = reply_cases[_i].in;
	size_t n = strlen(in), step;

	for (step = 0; step <= n; step++) {
		for (int once = 0; once < 2; once++) {
			struct buf out = BUF_INIT(0);
			int got = feed(in, n, step, once, &out, 0, NULL);

			ck_assert_msg(got == reply_cases[_i].n, "case %d step %zu: got %d want %d",
			    _i, step, got, reply_cases[_i].n);
			if (got >= 0)
				ck_assert_str_eq(buf_cstr(&out), reply_cases[_i].want);
			buf_free(&out);
			if (step == 0)
				break;
		}
	}
}
END_TEST

START_TEST(test_reply_bounds)
{
	struct buf in = BUF_INIT(0), out = BUF_INIT(0);
	int i;

	/* A line without end beyond the limit is an error, not a buffer. */
	buf_puts(&in, "250 ");
	for (i = 0; i < SMTPC_LINE_MAX; i++)
		buf_putc(&in, 'x');
	ck_assert_int_eq(feed(in.data, in.len, 0, 0, &out, 0, NULL), -1);
	ck_assert_int_eq(feed(in.data, in.len, 1, 0, &out, 0, NULL), -1);
	/* Too many lines in one reply. */
	buf_reset(&in);
	for (i = 0; i <= SMTPC_REPLY_LINES; i++)
		buf_puts(&in, "250-more\r\n");
	buf_puts(&in, "250 end\r\n");
	ck_assert_int_eq(feed(in.data, in.len, 0, 0, &out, 0, NULL), -1);
	/* SMTPC_REPLY_LINES lines are fine; the kept text is capped. */
	buf_reset(&in);
	for (i = 0; i < SMTPC_REPLY_LINES - 1; i++)
		buf_puts(&in, "250-0123456789012345678901234567890123456789012345678901234567890123456789\r\n");
	buf_puts(&in, "250 end\r\n");
	ck_assert_int_eq(feed(in.data, in.len, 0, 0, &out, 0, NULL), 1);
	ck_assert_uint_le(out.len, SMTPC_REPLY_TEXT_MAX + SMTPC_LINE_MAX + 8);
	buf_free(&in);
	buf_free(&out);
}
END_TEST

/* Dovecot 2.3's answer to LHLO, byte for byte. */
static const char dovecot_lhlo[] =
    "250-mx.example.test\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n"
    "250-PIPELINING\r\n250 STARTTLS\r\n";

START_TEST(test_lhlo_keywords)
{
	size_t n = strlen(dovecot_lhlo), step;

	for (step = 0; step <= n; step++) {
		struct buf out = BUF_INIT(0);
		char **lines = NULL;
		long long size = -1;
		unsigned ext;

		ck_assert_int_eq(feed(dovecot_lhlo, n, step, 0, &out, 1, &lines), 1);
		ck_assert_ptr_nonnull(lines);
		ck_assert_str_eq(lines[0], "mx.example.test");
		ext = smtpc_ext_parse(lines + 1, &size);
		ck_assert_uint_eq(ext, SMTPC_EXT_8BITMIME | SMTPC_EXT_ENHANCEDSTATUSCODES |
		    SMTPC_EXT_PIPELINING | SMTPC_EXT_STARTTLS);
		ck_assert_int_eq(size, 0);
		strv_free(&lines);
		buf_free(&out);
	}
}
END_TEST

START_TEST(test_ext_parse)
{
	char *l1[] = { "SIZE 10240000", "AUTH PLAIN LOGIN", "DSN", "SMTPUTF8",
	    "pipelining", NULL };
	char *l2[] = { "SIZE", "SIZE=5", "AUTH=LOGIN", "PIPELININGX", "SIZE -5", NULL };
	long long size;

	ck_assert_uint_eq(smtpc_ext_parse(l1, &size), SMTPC_EXT_SIZE | SMTPC_EXT_AUTH_PLAIN |
	    SMTPC_EXT_AUTH_LOGIN | SMTPC_EXT_DSN | SMTPC_EXT_SMTPUTF8 | SMTPC_EXT_PIPELINING);
	ck_assert_int_eq(size, 10240000);
	/* "AUTH=LOGIN" is the old (pre-RFC 2554) form some servers still send. */
	ck_assert_uint_eq(smtpc_ext_parse(l2, &size), SMTPC_EXT_SIZE | SMTPC_EXT_AUTH_LOGIN);
	ck_assert_int_eq(size, 0);
	ck_assert_uint_eq(smtpc_ext_parse(NULL, &size), 0);
}
END_TEST

static const struct {
	const char *nh;
	int ok;
	int unix_;
	const char *host;     /* or path */
	int port;
} dest_cases[] = {
	{ "unix:/var/run/dovecot/lmtp", 1, 1, "/var/run/dovecot/lmtp", 0 },
	{ "unix:private/dovecot-lmtp", 1, 1, "private/dovecot-lmtp", 0 },
	{ "UNIX:/x", 1, 1, "/x", 0 },
	{ "inet:127.0.0.1:24", 1, 0, "127.0.0.1", 24 },
	{ "inet:mail.Example.com", 1, 0, "mail.example.com", 24 },
	{ "inet:[::1]:2003", 1, 0, "::1", 2003 },
	{ "inet:[ipv6:::1]", 1, 0, "::1", 24 },
	{ "localhost:2003", 1, 0, "localhost", 2003 },
	{ "[127.0.0.1]", 1, 0, "127.0.0.1", 24 },
	{ "example.com", 1, 0, "example.com", 24 },
	{ "unix:", 0, 0, NULL, 0 },
	{ "unix:/a\nb", 0, 0, NULL, 0 },
	{ "inet:", 0, 0, NULL, 0 },
	{ "inet:host:0", 0, 0, NULL, 0 },
	{ "inet:host:65536", 0, 0, NULL, 0 },
	{ "inet:host:24x", 0, 0, NULL, 0 },
	{ "inet:host:", 0, 0, NULL, 0 },
	{ "::1", 0, 0, NULL, 0 },
	{ "[]:24", 0, 0, NULL, 0 },
	{ "ho st:24", 0, 0, NULL, 0 },
	{ "", 0, 0, NULL, 0 },
};

START_TEST(test_lmtp_dest)
{
	struct smtpc_dest d;
	int rc = smtpc_lmtp_dest(dest_cases[_i].nh, 24, &d);

	ck_assert_msg((rc == 0) == dest_cases[_i].ok, "%s: rc %d", dest_cases[_i].nh, rc);
	if (rc == 0) {
		ck_assert_int_eq(d.kind == SMTPC_DEST_UNIX, dest_cases[_i].unix_);
		if (d.kind == SMTPC_DEST_UNIX) {
			ck_assert_str_eq(d.path, dest_cases[_i].host);
		} else {
			ck_assert_str_eq(d.host, dest_cases[_i].host);
			ck_assert_int_eq(d.port, dest_cases[_i].port);
		}
	}
	smtpc_dest_free(&d);
}
END_TEST

/* After DATA: RCPTs 0..3, of which 1 was refused at RCPT. The server's
 * byte stream has one reply per accepted recipient (0, 2, 3), a
 * multi-line one among them; each goes to its own recipient. */
START_TEST(test_lmtp_dot_replies)
{
	static const char stream[] =
	    "250 2.0.0 <a@x> 9Hd Saved\r\n"
	    "452-4.2.2 <c@x> Quota exceeded\r\n452 4.2.2 try later\r\n"
	    "550 5.2.0 <d@x> Mailbox unavailable\r\n";
	static const unsigned char accepted[] = { 1, 0, 1, 1 };
	static const char *const want[] = {
		"0:250 2.0.0 <a@x> 9Hd Saved",
		"2:452 4.2.2 <c@x> Quota exceeded 4.2.2 try later",
		"3:550 5.2.0 <d@x> Mailbox unavailable",
	};
	size_t n = strlen(stream), step;

	for (step = 1; step <= n; step++) {
		struct smtpc_lmtp_dot dot;
		struct smtpc_reply r;
		struct buf pending = BUF_INIT(0);
		size_t pos = 0, used, got = 0;
		long k;
		char line[200];

		memset(&r, 0, sizeof(r));
		smtpc_lmtp_dot_init(&dot, accepted, 4);
		smtpc_reply_init(&r, 0);
		k = smtpc_lmtp_dot_next(&dot);
		while (pos < n) {
			size_t c = step < n - pos ? step : n - pos;

			buf_append(&pending, stream + pos, c);
			pos += c;
			while (smtpc_reply_parse(&r, buf_cstr(&pending), pending.len, &used) ==
			    SMTPC_DONE) {
				buf_consume(&pending, used);
				ck_assert_int_ge(k, 0);
				ck_assert_uint_lt(got, 3);
				snprintf(line, sizeof(line), "%ld:%s", k, buf_cstr(&r.text));
				ck_assert_str_eq(line, want[got]);
				got++;
				k = smtpc_lmtp_dot_next(&dot);
				smtpc_reply_init(&r, 0);
			}
			buf_consume(&pending, used);
		}
		ck_assert_uint_eq(got, 3);
		ck_assert_int_eq(k, -1);     /* every accepted recipient answered */
		ck_assert_int_eq(smtpc_lmtp_dot_next(&dot), -1);
		buf_free(&pending);
		smtpc_reply_free(&r);
	}
}
END_TEST

START_TEST(test_lmtp_dot_none)
{
	static const unsigned char none[] = { 0, 0 };
	struct smtpc_lmtp_dot dot;

	smtpc_lmtp_dot_init(&dot, none, 2);
	ck_assert_int_eq(smtpc_lmtp_dot_next(&dot), -1);
	smtpc_lmtp_dot_init(&dot, NULL, 0);
	ck_assert_int_eq(smtpc_lmtp_dot_next(&dot), -1);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("smtpc");
	TCase *tc = tcase_create("smtpc");

	tcase_add_loop_test(tc, test_reply_splits, 0,
	    (int)(sizeof(reply_cases) / sizeof(reply_cases[0])));
	tcase_add_test(tc, test_reply_bounds);
	tcase_add_test(tc, test_lhlo_keywords);
	tcase_add_test(tc, test_ext_parse);
	tcase_add_loop_test(tc, test_lmtp_dest, 0,
	    (int)(sizeof(dest_cases) / sizeof(dest_cases[0])));
	tcase_add_test(tc, test_lmtp_dot_replies);
	tcase_add_test(tc, test_lmtp_dot_none);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
