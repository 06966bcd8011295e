/*
 * test_sendmail_hdr - the header processing of local submissions
 * (lib/mail/submit.c), driven with bytes: header extent, -t extraction
 * (folded fields, groups, quoted names, comments, Resent-), Bcc removal,
 * missing header addition.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/strv.h"
#include "mail/submit.h"

/* --- extent ----------------------------------------------------------------- */

static const struct {
	const char *in;
	int eof;
	size_t limit;
	int rc;
	size_t len;
} extent_cases[] = {
	{ "Subject: x\n\nbody\n", 0, 1000, 1, 11 },
	{ "Subject: x\r\n\r\nbody\r\n", 0, 1000, 1, 12 },
	{ "Subject: x\n", 0, 1000, 0, 0 },              /* more may follow */
	{ "Subject: x\n", 1, 1000, 1, 11 },
	{ "Subject: x", 1, 1000, 1, 10 },
	{ "Subject: x\n folded\n\tagain\nTo: a\n\nb", 0, 1000, 1, 32 },
	{ "hello world\n", 0, 1000, 1, 0 },             /* no header at all */
	{ "\nbody", 0, 1000, 1, 0 },
	{ " leading continuation\n", 0, 1000, 1, 0 },
	{ "Subject: x\nnot a header line\n", 0, 1000, 1, 11 },
	{ "From sender Mon Jan  1 00:00:00 2024\nSubject: x\n\n", 0, 1000, 1, 48 },
	{ "Subject : obsolete\n\n", 0, 1000, 1, 19 },
	{ "A: 1\nB: 2\nC: 3\n", 0, 12, 1, 10 },          /* limit: last whole field */
	{ "A: 1\n 2\n 3\n 4\n", 0, 9, 1, 0 },
	{ "", 1, 1000, 1, 0 },
	{ "", 0, 1000, 0, 0 },
};

START_TEST(test_extent)
{
	const char *in = extent_cases[_i].in;
	size_t len = 12345;
	int rc = submit_header_extent(in, strlen(in), extent_cases[_i].eof,
	    extent_cases[_i].limit, &len);

	ck_assert_msg(rc == extent_cases[_i].rc, "case %d: rc %d", _i, rc);
	if (rc == 1)
		ck_assert_msg(len == extent_cases[_i].len, "case %d: len %zu", _i, len);
}
END_TEST

/* Fed a growing prefix, the answer never changes once it is known. */
START_TEST(test_extent_bytewise)
{
	const char *in = "Subject: x\n folded\nTo: a@b\n\nbody\n.\n";
	size_t n = strlen(in), len = 0, first = 0;
	int known = 0;

	for (size_t k = 0; k <= n; k++) {
		if (submit_header_extent(in, k, 0, 1000, &len) == 1) {
			if (!known)
				first = len;
			known = 1;
			ck_assert_uint_eq(len, first);
		}
	}
	ck_assert(known);
	ck_assert_uint_eq(first, 27);
}
END_TEST

/* --- address lists ----------------------------------------------------------- */

static const struct {
	const char *in;
	const char *out;     /* addresses joined with " ", or NULL: error */
} alist_cases[] = {
	{ "a@b.example", "a@b.example" },
	{ "<a@b.example>", "a@b.example" },
	{ "Alice <alice@x.test>, bob@y.test", "alice@x.test bob@y.test" },
	{ "\"Doe, John\" <john@x.test>", "john@x.test" },
	{ "\"Doe, John\" <john@x.test>, \"a\\\"b\" <c@d.test>", "john@x.test c@d.test" },
	{ "alice@x.test (Alice, at home), bob@y.test", "alice@x.test bob@y.test" },
	{ "(nested (comment)) a@x.test", "a@x.test" },
	{ "friends: a@x.test, B <b@y.test>;, c@z.test", "a@x.test b@y.test c@z.test" },
	{ "undisclosed-recipients:;", "" },
	{ "alice", "alice@origin.test" },
	{ "Alice <alice>", "alice@origin.test" },
	{ "a@x.test,,b@y.test,", "a@x.test b@y.test" },
	{ "\n a@x.test,\n\tb@y.test\n", "a@x.test b@y.test" },
	{ "<@relay.test,@r2.test:u@x.test>", "u@x.test" },
	{ "\"odd local\"@x.test", "\"odd local\"@x.test" },
	{ "John Q. Public <jqp@x.test>", "jqp@x.test" },
	{ "u@[192.0.2.1]", "u@[192.0.2.1]" },
	{ "<>", "" },
	{ "", "" },
	{ "John Doe", NULL },                  /* a name, no address */
	{ "a@x.test (unterminated", NULL },
	{ "\"unterminated <a@x.test>", NULL },
	{ "<a@x.test", NULL },
	{ "a@x.test>", NULL },
	{ "g: a@x.test, h: b@y.test;", NULL },  /* nested group */
	{ "a@", NULL },
	{ "@x.test", NULL },
	{ "a\001b@x.test", NULL },
	{ "<a@x.test> <b@y.test>", NULL },
};

START_TEST(test_alist)
{
	char **v = NULL;
	const char *err = NULL;
	const char *in = alist_cases[_i].in;
	int rc = submit_addr_list(in, strlen(in), "origin.test", &v, &err);

	if (alist_cases[_i].out == NULL) {
		ck_assert_msg(rc == -1, "case %d (%s): expected an error", _i, in);
		ck_assert_ptr_nonnull(err);
	} else {
		ck_assert_msg(rc == 0, "case %d (%s): %s", _i, in, err ? err : "");
		char *joined = xstrdup("");
		for (size_t k = 0; v != NULL && v[k] != NULL; k++) {
			char *t = xasprintf("%s%s%s", joined, k ? " " : "", v[k]);
			free(joined);
			joined = t;
		}
		ck_assert_msg(strcmp(joined, alist_cases[_i].out) == 0,
		    "case %d (%s): got \"%s\"", _i, in, joined);
		free(joined);
	}
	strv_free(&v);
}
END_TEST

START_TEST(test_normalize)
{
	char *a;

	a = submit_addr_normalize("<a@x.test>", "o.test", 0);
	ck_assert_str_eq(a, "a@x.test");
	free(a);
	a = submit_addr_normalize(" bob ", "o.test", 0);
	ck_assert_str_eq(a, "bob@o.test");
	free(a);
	a = submit_addr_normalize("<>", "o.test", 1);
	ck_assert_str_eq(a, "");
	free(a);
	ck_assert_ptr_null(submit_addr_normalize("<>", "o.test", 0));
	ck_assert_ptr_null(submit_addr_normalize("a@x.test, b@y.test", "o.test", 0));
	ck_assert_ptr_null(submit_addr_normalize("bad address@", "o.test", 0));
}
END_TEST

/* --- -t ----------------------------------------------------------------------- */

START_TEST(test_extract_plain)
{
	const char *h =
	    "From: me@x.test\n"
	    "To: Alice <alice@x.test>,\n"
	    "  \"Bob, the builder\" <bob@y.test>\n"
	    "Cc: team: carol@z.test, dave@z.test;\n"
	    "Subject: To: not@this.test\n"
	    "bcc: eve@w.test\n"
	    "X-To: nobody@x.test\n";
	char **v = NULL, *err = NULL;

	ck_assert_int_eq(submit_extract_rcpts(h, strlen(h), "o.test", &v, &err), 0);
	ck_assert_uint_eq(strv_len(v), 5);
	ck_assert_str_eq(v[0], "alice@x.test");
	ck_assert_str_eq(v[1], "bob@y.test");
	ck_assert_str_eq(v[2], "carol@z.test");
	ck_assert_str_eq(v[3], "dave@z.test");
	ck_assert_str_eq(v[4], "eve@w.test");
	strv_free(&v);
}
END_TEST

START_TEST(test_extract_resent)
{
	const char *h =
	    "To: old@x.test\n"
	    "Resent-To: new@x.test\n"
	    "Resent-Bcc: hidden@x.test\n";
	char **v = NULL, *err = NULL;

	ck_assert_int_eq(submit_extract_rcpts(h, strlen(h), "o.test", &v, &err), 0);
	ck_assert_uint_eq(strv_len(v), 2);
	ck_assert_str_eq(v[0], "new@x.test");
	ck_assert_str_eq(v[1], "hidden@x.test");
	strv_free(&v);
}
END_TEST

START_TEST(test_extract_bad)
{
	const char *h = "To: ok@x.test\nCc: John Smith\n";
	char **v = NULL, *err = NULL;

	ck_assert_int_eq(submit_extract_rcpts(h, strlen(h), "o.test", &v, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "Cc:"));
	ck_assert_ptr_nonnull(strstr(err, "John Smith"));
	free(err);
	strv_free(&v);
}
END_TEST

/* --- rewrite ------------------------------------------------------------------ */

static struct submit_info
info(int extract)
{
	struct submit_info si = {
		.extract = extract,
		.sender = "joe@o.test",
		.fullname = "Joe \"JJ\" User",
		.origin = "o.test",
		.hostname = "mx.o.test",
		.mail_name = "Postern",
		.queue_id = "4QID",
		.uid = 1001,
		.now = 1700000000,
	};
	return si;
}

START_TEST(test_rewrite_adds)
{
	const char *h = "Subject: hi\nTo: a@x.test\n";
	struct submit_info si = info(0);
	struct submit_out out;
	char *err = NULL;

	ck_assert_int_eq(submit_header_rewrite(h, strlen(h), &si, &out, &err), 0);
	const char *o = buf_cstr(&out.header);
	ck_assert_msg(strncmp(o, "Received: by mx.o.test (Postern, from userid 1001)\n\tid 4QID; ", 60) == 0, "%s", o);
	ck_assert_ptr_nonnull(strstr(o, "\nSubject: hi\nTo: a@x.test\n"));
	ck_assert_ptr_nonnull(strstr(o, "\nFrom: \"Joe \\\"JJ\\\" User\" <joe@o.test>\n"));
	ck_assert_ptr_nonnull(strstr(o, "\nDate: "));
	ck_assert_ptr_nonnull(strstr(o, "\nMessage-ID: <20231114221320.4QID@mx.o.test>\n"));
	ck_assert_str_eq(out.message_id, "<20231114221320.4QID@mx.o.test>");
	ck_assert_ptr_null(out.rcpts);
	ck_assert_int_eq(o[out.header.len - 1], '\n');
	submit_out_free(&out);
}
END_TEST

START_TEST(test_rewrite_keeps)
{
	const char *h =
	    "From sender@x Mon Jan  1 00:00:00 2024\n"
	    "From: Someone <s@x.test>\n"
	    "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
	    "Message-Id: <abc@x.test>\n"
	    "To: a@x.test\n"
	    "Bcc: secret@x.test,\n"
	    "  other-secret@y.test\n"
	    "Subject: last line without LF";
	struct submit_info si = info(1);
	struct submit_out out;
	char *err = NULL;

	ck_assert_int_eq(submit_header_rewrite(h, strlen(h), &si, &out, &err), 0);
	const char *o = buf_cstr(&out.header);
	ck_assert_ptr_null(strstr(o, "secret"));
	ck_assert_ptr_null(strstr(o, "Bcc"));
	ck_assert_ptr_null(strstr(o, "From sender"));
	ck_assert_ptr_nonnull(strstr(o, "\nFrom: Someone <s@x.test>\n"));
	ck_assert_ptr_null(strstr(o, "From: \"Joe"));
	ck_assert_ptr_null(strstr(o, "Message-ID:"));
	ck_assert_ptr_nonnull(strstr(o, "Subject: last line without LF\n"));
	ck_assert_str_eq(out.message_id, "<abc@x.test>");
	ck_assert_uint_eq(strv_len(out.rcpts), 3);
	ck_assert_str_eq(out.rcpts[0], "a@x.test");
	ck_assert_str_eq(out.rcpts[1], "secret@x.test");
	ck_assert_str_eq(out.rcpts[2], "other-secret@y.test");
	/* exactly one Date: */
	ck_assert_ptr_null(strstr(strstr(o, "Date:") + 1, "Date:"));
	submit_out_free(&out);
}
END_TEST

START_TEST(test_rewrite_injection)
{
	const char *h = "";
	struct submit_info si = info(0);
	struct submit_out out;
	char *err = NULL;

	si.fullname = "Evil\nBcc: victim@x.test";
	si.sender = "";
	ck_assert_int_eq(submit_header_rewrite(h, 0, &si, &out, &err), 0);
	const char *o = buf_cstr(&out.header);
	ck_assert_ptr_null(strstr(o, "\nBcc:"));
	ck_assert_ptr_nonnull(strstr(o, "<MAILER-DAEMON>\n"));
	submit_out_free(&out);
}
END_TEST

START_TEST(test_rewrite_bad_t)
{
	const char *h = "To: <broken\n";
	struct submit_info si = info(1);
	struct submit_out out;
	char *err = NULL;

	ck_assert_int_eq(submit_header_rewrite(h, strlen(h), &si, &out, &err), -1);
	ck_assert_ptr_nonnull(err);
	free(err);
	submit_out_free(&out);
}
END_TEST

START_TEST(test_gecos)
{
	char *n = submit_gecos_name("& Smith,Room 1,555", "joe");
	ck_assert_str_eq(n, "Joe Smith");
	free(n);
	n = submit_gecos_name("", "joe");
	ck_assert_str_eq(n, "");
	free(n);
}
END_TEST

/* Garbage in: no crash, and whatever comes out is well-formed. */
START_TEST(test_garbage)
{
	static const char alphabet[] = "ab@.<>,:;\"()[]\\ \t\n\r:Toc\x80\x01";
	unsigned seed = 12345;
	char in[200];

	for (int round = 0; round < 20000; round++) {
		size_t n = (seed = seed * 1103515245u + 12345u) % sizeof(in);
		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			in[k] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		char **v = NULL, *err = NULL;
		const char *e = NULL;
		size_t len = 0;
		if (submit_addr_list(in, n, "o.test", &v, &e) == 0)
			for (size_t k = 0; v != NULL && v[k] != NULL; k++)
				ck_assert_ptr_nonnull(strchr(v[k], '@'));
		strv_free(&v);
		if (submit_header_extent(in, n, 1, 150, &len) == 1)
			ck_assert_uint_le(len, n);
		struct submit_info si = info(1);
		struct submit_out out;
		if (submit_header_rewrite(in, n, &si, &out, &err) == 0)
			ck_assert_int_eq(out.header.data[out.header.len - 1], '\n');
		free(err);
		submit_out_free(&out);
	}
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("sendmail_hdr");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_extent, 0, sizeof(extent_cases) / sizeof(extent_cases[0]));
	tcase_add_test(tc, test_extent_bytewise);
	tcase_add_loop_test(tc, test_alist, 0, sizeof(alist_cases) / sizeof(alist_cases[0]));
	tcase_add_test(tc, test_normalize);
	tcase_add_test(tc, test_extract_plain);
	tcase_add_test(tc, test_extract_resent);
	tcase_add_test(tc, test_extract_bad);
	tcase_add_test(tc, test_rewrite_adds);
	tcase_add_test(tc, test_rewrite_keeps);
	tcase_add_test(tc, test_rewrite_injection);
	tcase_add_test(tc, test_rewrite_bad_t);
	tcase_add_test(tc, test_gecos);
	tcase_add_test(tc, test_garbage);
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
