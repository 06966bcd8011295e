/*
 * test_cchecks - header_checks, mime_header_checks, nested_header_checks
 * and body_checks over streamed content (lib/mail/cchecks.c), with
 * regexp tables parsed by maptab. Each case is fed whole, a byte at a
 * time and in every two-piece split: the same bytes out and the same
 * actions reported, whatever the pieces.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/strv.h"
#include "mail/cchecks.h"
#include "mail/maptab.h"

static const char *const class_name[] = { "header", "mime", "nested", "body" };

struct env {
	struct maptab *t[CC_NCLASS];
	struct buf log;
	int fail;            /* lookups fail */
};

static int
lookup(void *ctx, enum cc_class c, const char *key, char **value_r)
{
	struct env *e = ctx;

	if (e->fail)
		return -1;
	return maptab_lookup(e->t[c], key, value_r);
}

static void
report(void *ctx, const char *action, enum cc_class c, const char *what,
    const char *text)
{
	struct env *e = ctx;

	buf_printf(&e->log, "%s %s [%s] %s;", action, class_name[c], what, text);
}

struct ccase {
	const char *name;
	const char *tables[CC_NCLASS];   /* regexp source per class, or NULL */
	const char *in, *out, *log;
	const char *reject;
	int hold, discard;
	size_t body_limit;
};

#define MIME_MSG \
	"Subject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n" \
	" boundary=\"b1\"\n\npreamble\n--b1\nContent-Type: text/plain\n" \
	"X-Part: p\n\nbody one\n--b1\nContent-Type: message/rfc822\n\n" \
	"Subject: inner\nX-Inner: i\n\ninner body\n--b1--\nepilogue\n"

static const struct ccase cases[] = {
	{ "no match passes", { "/^X-Nothing:/ REJECT\n", NULL, NULL, NULL },
	  "Subject: hi\nTo: a@b\n\nbody\n", "Subject: hi\nTo: a@b\n\nbody\n", "",
	  NULL, 0, 0, 51200 },
	{ "IGNORE a folded header, whole",
	  { "/^Received: .*with ESMTPSA/ IGNORE\n", NULL, NULL, NULL },
	  "Received: from x\n\tby y with ESMTPSA id 1\nSubject: s\n\nb\n",
	  "Subject: s\n\nb\n", "", NULL, 0, 0, 51200 },
	{ "REPLACE and PREPEND",
	  { "/^Subject: (.*)/ REPLACE Subject: [ext] $1\n"
	    "/^To:/ PREPEND X-Seen: yes\n", NULL, NULL, NULL },
	  "Subject: hi\nTo: a@b\n\nb\n",
	  "Subject: [ext] hi\nX-Seen: yes\nTo: a@b\n\nb\n",
	  "replace header [Subject: hi] Subject: [ext] hi;", NULL, 0, 0, 51200 },
	{ "REJECT stops the checks, the content passes",
	  { "/^Subject: buy/ REJECT no spam here\n/^To:/ WARN seen\n", NULL, NULL,
	    "/x/ WARN body\n" },
	  "Subject: buy now\nTo: a@b\n\nx\n", "Subject: buy now\nTo: a@b\n\nx\n",
	  "reject header [Subject: buy now] no spam here;",
	  "550 5.7.1 no spam here", 0, 0, 51200 },
	{ "REJECT with its own code, no text, control characters",
	  { "/^Subject: (.*)/ REJECT 4.7.1 later $1\n", NULL, NULL, NULL },
	  "Subject: a\n b\n\n", "Subject: a\n b\n\n",
	  "reject header [Subject: a\n b] 4.7.1 later a\n b;",
	  "450 4.7.1 later a  b", 0, 0, 51200 },
	{ "default reject text", { "/^Subject/ REJECT\n", NULL, NULL, NULL },
	  "Subject: a\n\n", "Subject: a\n\n", "reject header [Subject: a] ;",
	  "550 5.7.1 message content rejected", 0, 0, 51200 },
	{ "HOLD goes on, DISCARD stops",
	  { "/^A:/ HOLD held\n/^B:/ DISCARD\n/^C:/ WARN c\n", NULL, NULL, NULL },
	  "A: 1\nB: 2\nC: 3\n\n", "A: 1\nB: 2\nC: 3\n\n",
	  "hold header [A: 1] held;discard header [B: 2] ;", NULL, 1, 1, 51200 },
	{ "unknown and unimplemented actions do nothing else",
	  { "/^A:/ FROB x\n/^B:/ FILTER smtp:x\n/^C:/ DUNNO\n/^D: (.*)/ REDIRECT $1\n",
	    NULL, NULL, NULL },
	  "A: 1\nB: 2\nC: 3\nD: a b@c\n\n", "A: 1\nB: 2\nC: 3\nD: a b@c\n\n",
	  "unknown header [A: 1] FROB x;unknown header [B: 2] FILTER smtp:x;"
	  "unknown header [D: a b@c] REDIRECT a b@c;",
	  NULL, 0, 0, 51200 },
	{ "body lines, IGNORE and REPLACE, separator not a body line",
	  { NULL, NULL, NULL, "/^$/ WARN empty\n/^secret/ IGNORE\n"
	    "/^(.*)password(.*)$/ REPLACE $1********$2\n/^last/ INFO end\n" },
	  "S: s\n\nmy password is\nsecret line\n\nlast", 
	  "S: s\n\nmy ******** is\n\nlast",
	  "replace body [my password is] my ******** is;warning body [] empty;"
	  "info body [last] end;", NULL, 0, 0, 51200 },
	{ "body_checks_size_limit", { NULL, NULL, NULL, "/x/ WARN\n" },
	  "S: s\n\nx1\nx2\nx3\n", "S: s\n\nx1\nx2\nx3\n",
	  "warning body [x1] ;warning body [x2] ;", NULL, 0, 0, 4 },
	{ "a header block ended by a line that is no field",
	  { "/^S:/ WARN h\n", NULL, NULL, "/^not a field/ WARN b\n" },
	  "S: s\nnot a field\nmore\n", "S: s\nnot a field\nmore\n",
	  "warning header [S: s] h;warning body [not a field] b;", NULL, 0, 0, 51200 },
	{ "MIME: each header in its class",
	  { "/^(Subject|X-Part|X-Inner):/ WARN h\n",
	    "/^(MIME-Version|Content-Type|X-Part):/ WARN m\n",
	    "/^(Subject|X-Inner|X-Part):/ WARN n\n",
	    "/^(preamble|body one|inner body|epilogue|--b1.*|Subject.*|X-.*)$/ WARN b\n" },
	  MIME_MSG, MIME_MSG,
	  "warning header [Subject: s] h;warning mime [MIME-Version: 1.0] m;"
	  "warning mime [Content-Type: multipart/mixed;\n boundary=\"b1\"] m;"
	  "warning body [preamble] b;warning body [--b1] b;"
	  "warning mime [Content-Type: text/plain] m;warning mime [X-Part: p] m;"
	  "warning body [body one] b;warning body [--b1] b;"
	  "warning mime [Content-Type: message/rfc822] m;"
	  "warning nested [Subject: inner] n;warning nested [X-Inner: i] n;"
	  "warning body [inner body] b;warning body [--b1--] b;"
	  "warning body [epilogue] b;", NULL, 0, 0, 51200 },
	{ "a digest's parts are messages; nested multipart",
	  { NULL, "/^Content-Type:/ WARN m\n", "/^Subject:/ WARN n\n", NULL },
	  "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\n"
	  "x\n--d\nContent-Type: multipart/alternative; boundary=\"a\"\n\n--a\n"
	  "Subject: not nested\n\n--a--\n--d--\n",
	  "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\n"
	  "x\n--d\nContent-Type: multipart/alternative; boundary=\"a\"\n\n--a\n"
	  "Subject: not nested\n\n--a--\n--d--\n",
	  "warning mime [Content-Type: multipart/digest; boundary=d] m;"
	  "warning nested [Subject: one] n;"
	  "warning mime [Content-Type: multipart/alternative; boundary=\"a\"] m;",
	  NULL, 0, 0, 51200 },
};

static void
run_pieces(const struct ccase *k, const size_t *cuts, size_t ncuts,
    struct buf *out, struct env *e, struct cchecks *c)
{
	int has[CC_NCLASS];
	size_t prev = 0, len = strlen(k->in);

	for (int i = 0; i < CC_NCLASS; i++)
		has[i] = e->t[i] != NULL;
	cchecks_init(c, has, k->body_limit, 16, lookup, report, e);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		cchecks_feed(c, k->in + prev, end - prev, out);
		prev = end;
	}
	cchecks_end(c, out);
}

static void
expect(const struct ccase *k, struct env *e, const size_t *cuts, size_t ncuts,
    const char *how)
{
	struct buf out = BUF_INIT(0);
	struct cchecks c;

	buf_reset(&e->log);
	run_pieces(k, cuts, ncuts, &out, e, &c);
	ck_assert_msg(strcmp(buf_cstr(&out), k->out) == 0, "%s (%s): out [%s]",
	    k->name, how, buf_cstr(&out));
	ck_assert_msg(strcmp(buf_cstr(&e->log), k->log) == 0, "%s (%s): log [%s]",
	    k->name, how, buf_cstr(&e->log));
	if (k->reject == NULL)
		ck_assert_ptr_null(c.reject);
	else
		ck_assert_str_eq(c.reject, k->reject);
	ck_assert_int_eq(c.hold, k->hold);
	ck_assert_int_eq(c.discard, k->discard);
	cchecks_free(&c);
	buf_free(&out);
}

START_TEST(test_cases)
{
	const struct ccase *k = &cases[_i];
	struct env e;
	char *err = NULL;
	size_t len = strlen(k->in), *cuts;

	memset(&e, 0, sizeof(e));
	buf_init(&e.log, 0);
	for (int i = 0; i < CC_NCLASS; i++)
		if (k->tables[i] != NULL) {
			e.t[i] = maptab_parse(MAPTAB_REGEXP, "t", k->tables[i],
			    strlen(k->tables[i]), &err);
			ck_assert_msg(e.t[i] != NULL, "%s: %s", k->name, err);
		}
	expect(k, &e, NULL, 0, "whole");
	for (size_t cut = 1; cut < len; cut++)
		expect(k, &e, &cut, 1, "split");
	cuts = calloc(len, sizeof(*cuts));
	for (size_t i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	if (len > 1)
		expect(k, &e, cuts, len - 1, "bytes");
	free(cuts);
	for (int i = 0; i < CC_NCLASS; i++)
		maptab_free(&e.t[i]);
	buf_free(&e.log);
}
END_TEST

/* Lines longer than line_length_limit (16 here) are checked in pieces;
 * a folded header is one unit however long its lines. */
START_TEST(test_long_lines)
{
	static const struct ccase k = { "long", { "/^Subject: .*tail/ WARN h\n",
	    NULL, NULL, "/./ WARN b\n" },
	    "Subject: 0123456789abcdef tail\n\n0123456789abcdefXY\n",
	    "Subject: 0123456789abcdef tail\n\n0123456789abcdefXY\n",
	    "warning header [Subject: 0123456789abcdef tail] h;"
	    "warning body [0123456789abcdef] b;warning body [XY] b;",
	    NULL, 0, 0, 51200 };
	struct env e;
	char *err = NULL;

	memset(&e, 0, sizeof(e));
	buf_init(&e.log, 0);
	e.t[CC_HEADER] = maptab_parse(MAPTAB_REGEXP, "t", k.tables[0],
	    strlen(k.tables[0]), &err);
	e.t[CC_BODY] = maptab_parse(MAPTAB_REGEXP, "t", k.tables[3],
	    strlen(k.tables[3]), &err);
	expect(&k, &e, NULL, 0, "whole");
	maptab_free(&e.t[CC_HEADER]);
	maptab_free(&e.t[CC_BODY]);
	buf_free(&e.log);
}
END_TEST

/* A logical header over what is held is checked on its start, the rest
 * passes; the next field is one unit again. */
START_TEST(test_header_over_the_bound)
{
	static const char table[] = "/^X-Big:/ WARN big\n/^Subject: a\\s+b$/ WARN subj\n";
	int has[CC_NCLASS] = { 1, 0, 0, 0 };
	struct env e;
	struct cchecks c;
	struct buf in = BUF_INIT(0), out = BUF_INIT(0);
	char *err = NULL;

	memset(&e, 0, sizeof(e));
	buf_init(&e.log, 0);
	e.t[CC_HEADER] = maptab_parse(MAPTAB_REGEXP, "t", table, strlen(table), &err);
	ck_assert_msg(e.t[CC_HEADER] != NULL, "%s", err);
	buf_puts(&in, "X-Big: 0\n");
	for (int i = 0; i < 30000; i++)
		buf_puts(&in, " xxxxxxx\n");   /* 270 KB of continuation lines */
	buf_puts(&in, "Subject: a\n b\n\nbody\n");
	cchecks_init(&c, has, 100, 64, lookup, report, &e);
	for (size_t off = 0; off < in.len; off += 1000)
		cchecks_feed(&c, in.data + off, in.len - off < 1000 ? in.len - off : 1000, &out);
	cchecks_end(&c, &out);
	ck_assert_uint_eq(out.len, in.len);
	ck_assert(memcmp(out.data, in.data, in.len) == 0);
	ck_assert_int_eq(strstr(buf_cstr(&e.log), "warning header [X-Big: 0") != NULL, 1);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&e.log), "warning header [Subject: a\n b] subj;"));
	cchecks_free(&c);
	maptab_free(&e.t[CC_HEADER]);
	buf_free(&in);
	buf_free(&out);
	buf_free(&e.log);
}
END_TEST

/* A failed lookup stops the checks and says so; nothing is lost. */
START_TEST(test_lookup_failure)
{
	int has[CC_NCLASS] = { 1, 0, 0, 1 };
	struct env e;
	struct cchecks c;
	struct buf out = BUF_INIT(0);
	const char *in = "A: 1\n\nbody\n";

	memset(&e, 0, sizeof(e));
	buf_init(&e.log, 0);
	e.fail = 1;
	cchecks_init(&c, has, 100, 16, lookup, report, &e);
	cchecks_feed(&c, in, strlen(in), &out);
	cchecks_end(&c, &out);
	ck_assert_str_eq(buf_cstr(&out), in);
	ck_assert_int_eq(c.lookup_error, 1);
	ck_assert_ptr_null(c.reject);
	cchecks_free(&c);
	buf_free(&out);
	buf_free(&e.log);
}
END_TEST

/* REDIRECT: the last one wins; BCC: each address once. */
START_TEST(test_envelope_actions)
{
	static const char table[] = "/^Subject: (\\w+)/ REDIRECT $1@quarantine.test\n"
	    "/^X-Copy: (.*)/ BCC $1\n";
	int has[CC_NCLASS] = { 1, 0, 0, 0 };
	const char *in = "Subject: first\nX-Copy: a@b.test\nSubject: second\n"
	    "X-Copy: A@b.test\nX-Copy: c@d.test\n\nbody\n";
	struct env e;
	struct cchecks c;
	struct buf out = BUF_INIT(0);
	char *err = NULL;

	memset(&e, 0, sizeof(e));
	buf_init(&e.log, 0);
	e.t[CC_HEADER] = maptab_parse(MAPTAB_REGEXP, "t", table, strlen(table), &err);
	ck_assert_msg(e.t[CC_HEADER] != NULL, "%s", err);
	cchecks_init(&c, has, 100, 64, lookup, report, &e);
	cchecks_feed(&c, in, strlen(in), &out);
	cchecks_end(&c, &out);
	ck_assert_str_eq(buf_cstr(&out), in);
	ck_assert_str_eq(c.redirect, "second@quarantine.test");
	ck_assert_int_eq(strv_len(c.bcc), 2);
	ck_assert_str_eq(c.bcc[0], "a@b.test");
	ck_assert_str_eq(c.bcc[1], "c@d.test");
	ck_assert_ptr_nonnull(strstr(buf_cstr(&e.log),
	    "redirect header [Subject: first] first@quarantine.test;"));
	cchecks_free(&c);
	maptab_free(&e.t[CC_HEADER]);
	buf_free(&out);
	buf_free(&e.log);
}
END_TEST

START_TEST(test_action_ok)
{
	ck_assert_ptr_null(cchecks_action_ok("REJECT"));
	ck_assert_ptr_null(cchecks_action_ok("reject go away"));
	ck_assert_ptr_null(cchecks_action_ok("PREPEND X-A: b"));
	ck_assert_ptr_null(cchecks_action_ok("ignore"));
	ck_assert_ptr_nonnull(cchecks_action_ok("PREPEND"));
	ck_assert_ptr_nonnull(cchecks_action_ok("REPLACE  "));
	ck_assert_ptr_null(cchecks_action_ok("REDIRECT a@b"));
	ck_assert_ptr_null(cchecks_action_ok("bcc archive@example.test"));
	ck_assert_ptr_nonnull(strstr(cchecks_action_ok("REDIRECT"), "one address"));
	ck_assert_ptr_nonnull(strstr(cchecks_action_ok("BCC a@b, c@d"), "one address"));
	ck_assert_ptr_nonnull(strstr(cchecks_action_ok("REDIRECT nobody"), "one address"));
	ck_assert_ptr_nonnull(strstr(cchecks_action_ok("STRIP x"), "not implement"));
	ck_assert_ptr_nonnull(strstr(cchecks_action_ok("FILTER smtp:x"), "not implement"));
	ck_assert_ptr_nonnull(strstr(cchecks_action_ok("REJECTED"), "not an action"));
	ck_assert_ptr_nonnull(cchecks_action_ok(""));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cchecks");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_loop_test(tc, test_cases, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_lookup_failure);
	tcase_add_test(tc, test_action_ok);
	tcase_add_test(tc, test_envelope_actions);
	tcase_add_test(tc, test_header_over_the_bound);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
