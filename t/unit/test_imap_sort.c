/*
 * test_imap_sort - SORT, THREAD and the base subject of RFC 5256
 * (lib/proto/imap_sort.c, imap_thread.c): every SORT key and REVERSE,
 * criteria errors, base subjects built from the section 2.1 grammar,
 * THREAD REFERENCES with missing parents (dummies kept, pruned and
 * promoted), subject grouping and a reference loop, ORDEREDSUBJECT.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap.h"
#include "proto/imap_search.h"

static const struct {
	const char *in, *want;
	int reply;
} subjects[] = {
	{ "test", "TEST", 0 },
	{ "   test \t  again  ", "TEST AGAIN", 0 },
	{ "Re: test", "TEST", 1 },
	{ "re: Re: RE:test", "TEST", 1 },
	{ "Fw: test", "TEST", 1 },
	{ "Fwd:test", "TEST", 1 },
	{ "Re[2]: test", "TEST", 1 },
	{ "Re [2] : test", "TEST", 1 },
	{ "[list] Re: test", "TEST", 1 },
	{ "[list] [x] Fwd: test", "TEST", 1 },
	{ "[list] test", "TEST", 0 },
	{ "[list]", "[LIST]", 0 },
	{ "[list] [x]", "[X]", 0 },
	{ "test (fwd)", "TEST", 1 },
	{ "test (fwd) (FWD)  ", "TEST", 1 },
	{ "[fwd: test]", "TEST", 1 },
	{ "Re: [Fwd: Re: test (fwd)]", "TEST", 1 },
	{ "[fwd: test", "[FWD: TEST", 0 },
	{ "Ref: test", "REF: TEST", 0 },
	{ "Re:", "", 1 },
	{ "", "", 0 },
	{ "=?UTF-8?Q?Re=3A_caf=C3=A9?=", "CAF\xc3\x89", 1 },
	{ "=?ISO-8859-1?Q?=E9t=E9?= Re: x", "\xc3\x89T\xc3\x89 RE: X", 0 },
	{ "Re: line\r\n folded", "LINE FOLDED", 1 },
};

START_TEST(test_base_subject)
{
	struct buf b = BUF_INIT(0);
	int reply = -1;

	imap_base_subject(subjects[_i].in, strlen(subjects[_i].in), &b, &reply);
	ck_assert_msg(strcmp(buf_cstr(&b), subjects[_i].want) == 0,
	    "[%s]: got [%s] want [%s]", subjects[_i].in, buf_cstr(&b), subjects[_i].want);
	ck_assert_msg(reply == subjects[_i].reply, "[%s]: reply %d", subjects[_i].in, reply);
	buf_free(&b);
}
END_TEST

static char *nokw[] = { NULL };

struct msg {
	char text[1024];
	struct imap_view v;
};

static void
mk(struct msg *m, uint32_t seq, uint64_t size, int64_t idate, const char *hdr)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->text, sizeof(m->text), "%s\r\nbody\r\n", hdr);
	m->v.seq = seq;
	m->v.uid = 100 + seq;
	m->v.keywords = nokw;
	m->v.size = size;
	m->v.internaldate = idate;
	m->v.data = m->text;
	m->v.len = strlen(m->text);
}

static struct msg sm[3];

static void
sort_setup(void)
{
	mk(&sm[0], 1, 300, 3,
	    "From: \"Zed\" <alpha@x>\r\nTo: b@x\r\nSubject: Re: beta\r\n"
	    "Date: Tue, 2 Jun 2026 10:00:00 +0200\r\n");
	mk(&sm[1], 2, 100, 1,
	    "From: Bob <charlie@x>\r\nTo: \"Al\" <zz@x>\r\nCc: undisclosed:; ,carol@x\r\n"
	    "Subject: alpha\r\nDate: Tue, 2 Jun 2026 09:00:00 +0000\r\n");
	mk(&sm[2], 3, 200, 2,
	    "From: =?UTF-8?Q?=C3=89mile?= <bravo@x>\r\nSubject: [list] Gamma\r\n");
}

static struct imap_parser *parser;

static const struct imap_command *
parse_cmd(const char *line)
{
	size_t used;

	imap_parser_free(&parser);
	parser = imap_parser_new(NULL);
	enum imap_result r = imap_parse(parser, line, strlen(line), &used);
	ck_assert_msg(r == IMAP_DONE, "%s: %s", line, imap_parser_error(parser));
	return imap_parser_command(parser);
}

static char *
sort(const char *args, int uid)
{
	char line[1024];
	struct buf out = BUF_INIT(0);
	struct imap_sort *so = NULL;
	struct imap_search *s = NULL;
	struct imap_search_env env = { 3, 103, NULL, 0 };
	const char *err;
	size_t next;

	snprintf(line, sizeof(line), "a SORT %s\r\n", args);
	const struct imap_command *c = parse_cmd(line);
	if (imap_sort_parse(c, 0, &so, &next, &err) < 0) {
		ck_assert_ptr_null(so);
		buf_printf(&out, "BAD %s", err);
		return buf_steal(&out);
	}
	int rc = imap_search_parse(c, next, &env, 0, 1, &s, &err);
	if (rc < 0) {
		buf_printf(&out, "%s %s", rc == -2 ? "NO" : "BAD", err);
		imap_sort_free(&so);
		return buf_steal(&out);
	}
	struct imap_view *v[3];
	size_t n = 0;
	for (size_t i = 0; i < 3; i++)
		if (imap_search_match(s, &sm[i].v) == 1)
			v[n++] = &sm[i].v;
	imap_sort_run(so, v, n);
	imap_sort_write(uid, v, n, &out);
	imap_sort_free(&so);
	ck_assert_ptr_null(so);
	imap_search_free(&s);
	return buf_steal(&out);
}

static const struct {
	const char *args, *want;
} sorts[] = {
	{ "(ARRIVAL) UTF-8 ALL", "* SORT 2 3 1\r\n" },
	{ "(REVERSE ARRIVAL) UTF-8 ALL", "* SORT 1 3 2\r\n" },
	{ "(SIZE) US-ASCII ALL", "* SORT 2 3 1\r\n" },
	{ "(REVERSE SIZE) UTF-8 ALL", "* SORT 1 3 2\r\n" },
	{ "(DATE) UTF-8 ALL", "* SORT 3 1 2\r\n" },   /* 3: no Date, INTERNALDATE */
	{ "(FROM) UTF-8 ALL", "* SORT 1 3 2\r\n" },   /* local parts */
	{ "(TO) UTF-8 ALL", "* SORT 3 1 2\r\n" },
	{ "(CC) UTF-8 ALL", "* SORT 1 3 2\r\n" },     /* group skipped: carol */
	{ "(CC ARRIVAL) UTF-8 ALL", "* SORT 3 1 2\r\n" },
	{ "(CC REVERSE ARRIVAL) UTF-8 ALL", "* SORT 1 3 2\r\n" },
	{ "(SUBJECT) UTF-8 ALL", "* SORT 2 1 3\r\n" },
	{ "(REVERSE SUBJECT) UTF-8 ALL", "* SORT 3 1 2\r\n" },
	{ "(DISPLAYFROM) UTF-8 ALL", "* SORT 2 1 3\r\n" },
	{ "(DISPLAYTO) UTF-8 ALL", "* SORT 3 2 1\r\n" },
	{ "(size) utf-8 LARGER 150", "* SORT 3 1\r\n" },
	{ "(SIZE) UTF-8 KEYWORD x", "* SORT\r\n" },
	{ "() UTF-8 ALL", "BAD Missing sort criteria" },
	{ "SIZE UTF-8 ALL", "BAD Missing sort criteria" },
	{ "(FOO) UTF-8 ALL", "BAD Invalid sort criteria" },
	{ "(REVERSE) UTF-8 ALL", "BAD Invalid sort criteria" },
	{ "(REVERSE REVERSE SIZE) UTF-8 ALL", "BAD Invalid sort criteria" },
	{ "(DATE) KOI8-R ALL", "* SORT 3 1 2\r\n" },
	{ "(DATE) X-NOPE ALL", "NO Unsupported charset" },
	{ "(DATE) UTF-8", "BAD Missing search key" },
	{ "(DATE)", "BAD Missing charset" },
	{ "(DATE) CHARSET UTF-8 ALL", "NO Unsupported charset" },
	{ "(DATE) UTF-8 RETURN (ALL) ALL", "BAD Unknown search key" },
};

START_TEST(test_sort)
{
	sort_setup();
	char *got = sort(sorts[_i].args, 0);
	ck_assert_msg(strcmp(got, sorts[_i].want) == 0, "SORT %s: got [%s] want [%s]",
	    sorts[_i].args, got, sorts[_i].want);
	free(got);
}
END_TEST

START_TEST(test_sort_uid)
{
	sort_setup();
	char *got = sort("(ARRIVAL) UTF-8 ALL", 1);
	ck_assert_str_eq(got, "* SORT 102 103 101\r\n");
	free(got);
	struct imap_sort *so;
	size_t next;
	const char *err;
	const struct imap_command *c = parse_cmd("a SORT (SIZE REVERSE ARRIVAL) UTF-8 ALL\r\n");
	ck_assert_int_eq(imap_sort_parse(c, 0, &so, &next, &err), 0);
	ck_assert_uint_eq(next, 1);
	ck_assert_uint_eq(imap_sort_needs(so), 0);
	imap_sort_free(&so);
	c = parse_cmd("a SORT (SIZE SUBJECT) UTF-8 ALL\r\n");
	ck_assert_int_eq(imap_sort_parse(c, 0, &so, &next, &err), 0);
	ck_assert_uint_eq(imap_sort_needs(so), IMAP_VIEW_DATA);
	imap_sort_free(&so);
}
END_TEST

/* --- THREAD ---------------------------------------------------------------- */

static struct msg tm[12];

static void
thread_msg(size_t i, const char *id, const char *refs, const char *subject,
    int minute)
{
	char hdr[512];

	snprintf(hdr, sizeof(hdr), "Message-ID: %s\r\n%s%s%sSubject: %s\r\n"
	    "Date: Mon, 1 Jun 2026 10:%02d:00 +0000\r\n", id,
	    refs ? "References: " : "", refs ? refs : "", refs ? "\r\n" : "",
	    subject, minute);
	mk(&tm[i], (uint32_t)i + 1, 100, 0, hdr);
}

static char *
thread(enum imap_thread_alg alg, size_t n, int uid)
{
	struct imap_view *v[12];
	struct buf out = BUF_INIT(0);

	for (size_t i = 0; i < n; i++)
		v[i] = &tm[i].v;
	imap_thread_write(alg, uid, v, n, &out);
	return buf_steal(&out);
}

static void
thread_setup(void)
{
	thread_msg(0, "<a@x>", NULL, "Hello", 1);
	thread_msg(1, "<b@x>", "<a@x>", "Re: Hello", 2);
	thread_msg(2, "<c@x>", "<missing-x@x>", "Other", 3);
	thread_msg(3, "<d@x>", "<missing-x@x>", "Re: Other", 4);
	thread_msg(4, "<e@x>", "<a@x> <b@x>", "Re: Hello", 5);
	thread_msg(5, "<f@x>", NULL, "unrelated", 0);
	thread_msg(6, "<g@x>", "<missing-y@x>", "Lonely", 6);
	thread_msg(7, "<h@x>", "<a@x>", "Re: Hello", 7);
	thread_msg(8, "<i@x>", NULL, "Re: Unrelated", 8);
	thread_msg(9, "<j@x>", NULL, "Lonely", 9);
}

START_TEST(test_thread_references)
{
	thread_setup();
	/* 6 and its reply 9 gathered by subject; 1 with children 2 (then
	 * 5) and 8; the missing parent of 3 and 4 stays as a dummy root;
	 * 7's missing parent is pruned, and 7 and 10 (same subject, neither
	 * a reply) go under a new dummy. */
	char *got = thread(IMAP_THREAD_REFERENCES, 10, 0);
	ck_assert_str_eq(got, "* THREAD (6 9)(1 (2 5)(8))((3)(4))((7)(10))\r\n");
	free(got);
	got = thread(IMAP_THREAD_REFERENCES, 2, 1);
	ck_assert_str_eq(got, "* THREAD (101 102)\r\n");
	free(got);
	got = thread(IMAP_THREAD_REFERENCES, 0, 0);
	ck_assert_str_eq(got, "* THREAD\r\n");
	free(got);
	/* A reply whose parent is not among the views: its own thread. */
	struct imap_view *v[1] = { &tm[4].v };
	struct buf out = BUF_INIT(0);
	imap_thread_write(IMAP_THREAD_REFERENCES, 0, v, 1, &out);
	ck_assert_str_eq(buf_cstr(&out), "* THREAD (5)\r\n");
	buf_free(&out);
}
END_TEST

START_TEST(test_thread_loops)
{
	/* References that point at each other and at the message itself;
	 * a duplicate Message-ID; messages without one. */
	thread_msg(0, "<p@x>", "<q@x>", "one", 1);
	thread_msg(1, "<q@x>", "<p@x>", "two", 2);
	thread_msg(2, "<r@x>", "<r@x>", "three", 3);
	thread_msg(3, "<r@x>", "<s@x> <r@x> <s@x>", "four", 4);
	thread_msg(4, "", NULL, "five", 5);
	thread_msg(5, "", "<p@x>", "six", 6);
	char *got = thread(IMAP_THREAD_REFERENCES, 6, 0);
	ck_assert_str_eq(got, "* THREAD (2 1 6)((3)(4))(5)\r\n");
	free(got);
}
END_TEST

START_TEST(test_thread_orderedsubject)
{
	thread_setup();
	char *got = thread(IMAP_THREAD_ORDEREDSUBJECT, 10, 0);
	ck_assert_str_eq(got, "* THREAD (6 9)(1 (2)(5)(8))(3 4)(7 10)\r\n");
	free(got);
}
END_TEST

/* A chain as long as the views allow, and a wide thread: no recursion. */
START_TEST(test_thread_deep)
{
	enum { N = 3000 };
	static struct msg big[N];
	static struct imap_view *v[N];
	char hdr[512];

	for (size_t i = 0; i < N; i++) {
		if (i == 0)
			snprintf(hdr, sizeof(hdr), "Message-ID: <m0@x>\r\nSubject: s\r\n");
		else
			snprintf(hdr, sizeof(hdr), "Message-ID: <m%zu@x>\r\n"
			    "In-Reply-To: <m%zu@x>\r\nSubject: Re: s\r\n", i, i - 1);
		mk(&big[i], (uint32_t)i + 1, 1, (int64_t)i, hdr);
		v[i] = &big[i].v;
	}
	struct buf out = BUF_INIT(0);
	imap_thread_write(IMAP_THREAD_REFERENCES, 0, v, N, &out);
	ck_assert(strncmp(buf_cstr(&out), "* THREAD (1 2 3 ", 16) == 0);
	ck_assert(strcmp(buf_cstr(&out) + out.len - 8, " 3000)\r\n") == 0);
	buf_free(&out);
}
END_TEST

START_TEST(test_thread_parse)
{
	enum imap_thread_alg alg;
	const char *err;
	const struct imap_command *c = parse_cmd("a THREAD references UTF-8 ALL\r\n");

	ck_assert_int_eq(imap_thread_parse(c, 0, &alg, &err), 0);
	ck_assert_int_eq(alg, IMAP_THREAD_REFERENCES);
	c = parse_cmd("a THREAD ORDEREDSUBJECT UTF-8 ALL\r\n");
	ck_assert_int_eq(imap_thread_parse(c, 0, &alg, &err), 0);
	ck_assert_int_eq(alg, IMAP_THREAD_ORDEREDSUBJECT);
	c = parse_cmd("a THREAD REFS UTF-8 ALL\r\n");
	ck_assert_int_eq(imap_thread_parse(c, 0, &alg, &err), -1);
	ck_assert_str_eq(err, "Unknown threading algorithm");
	c = parse_cmd("a THREAD (REFERENCES) UTF-8 ALL\r\n");
	ck_assert_int_eq(imap_thread_parse(c, 0, &alg, &err), -1);
}
END_TEST

static Suite *
sort_suite(void)
{
	Suite *s = suite_create("imap_sort");
	TCase *tc = tcase_create("sort");

	tcase_add_loop_test(tc, test_base_subject, 0,
	    sizeof(subjects) / sizeof(subjects[0]));
	tcase_add_loop_test(tc, test_sort, 0, sizeof(sorts) / sizeof(sorts[0]));
	tcase_add_test(tc, test_sort_uid);
	tcase_add_test(tc, test_thread_references);
	tcase_add_test(tc, test_thread_loops);
	tcase_add_test(tc, test_thread_orderedsubject);
	tcase_add_test(tc, test_thread_deep);
	tcase_add_test(tc, test_thread_parse);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sort_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	imap_parser_free(&parser);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
