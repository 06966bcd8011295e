/*
 * test_imap - lib/proto/imap.c: commands fed whole and one byte at a time
 * (same events both ways), literals (synchronizing, LITERAL+, LITERAL-,
 * literal8, accepted and refused), limits (line, literal, nesting,
 * arguments), garbage answered by an error after which the next command
 * parses; sequence sets, FETCH attribute splitting and imap_quote().
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap.h"

static void
dump_arg(const struct imap_command *c, size_t i, struct buf *o)
{
	const struct imap_arg *a = &c->args[i];

	switch (a->kind) {
	case IMAP_ARG_ATOM:
		buf_append(o, a->str, a->len);
		break;
	case IMAP_ARG_NIL:
		buf_puts(o, "NIL");
		break;
	case IMAP_ARG_QUOTED:
		buf_printf(o, "\"%.*s\"", (int)a->len, a->str);
		break;
	case IMAP_ARG_LITERAL:
		buf_printf(o, "%s{%zu}%.*s", a->literal8 ? "~" : "", a->len, (int)a->len, a->str);
		break;
	case IMAP_ARG_LIST:
		buf_putc(o, '(');
		for (size_t k = 0, j = i + 1; k < a->nchildren; k++, j = c->args[j].next) {
			if (k)
				buf_putc(o, ' ');
			dump_arg(c, j, o);
		}
		buf_putc(o, ')');
		break;
	}
}

/* Feed in[] in pieces of step bytes (0 = whole); log events to o. Sync
 * literals are accepted unless reject is set. */
static void
run(const char *in, size_t n, size_t step, const struct imap_limits *lim,
    int reject, struct buf *o)
{
	struct imap_parser *p = imap_parser_new(lim);
	size_t pos = 0;

	buf_reset(o);
	while (pos < n) {
		size_t len = step && n - pos > step ? step : n - pos, used;
		enum imap_result r = imap_parse(p, in + pos, len, &used);
		ck_assert_uint_le(used, len);
		pos += used;
		switch (r) {
		case IMAP_DONE: {
			const struct imap_command *c = imap_parser_command(p);
			buf_printf(o, "[%s %s ", c->tag, c->name);
			dump_arg(c, 0, o);
			buf_puts(o, "]");
			break;
		}
		case IMAP_LITERAL:
			buf_printf(o, "[+%llu]", (unsigned long long)imap_parser_literal_size(p));
			if (reject)
				imap_literal_reject(p);
			else
				imap_literal_accept(p);
			break;
		case IMAP_ERROR:
			buf_printf(o, "[BAD %s %s%s]", imap_parser_tag(p) ? imap_parser_tag(p) : "*",
			    imap_parser_error(p), imap_parser_must_close(p) ? " CLOSE" : "");
			break;
		case IMAP_NEED_MORE:
			ck_assert_uint_eq(used, len);
			break;
		}
	}
	imap_parser_free(&p);
	ck_assert_ptr_null(p);
}

static const struct {
	const char *in;
	const char *want;
	int reject;
	size_t line_max;
	int literal_minus;
} cases[] = {
	{ .in = "a1 NOOP\r\n", .want = "[a1 NOOP ()]" },
	{ .in = "a1 noop\n", .want = "[a1 NOOP ()]" },
	{ .in = "\r\n\r\na1 CAPABILITY\r\n", .want = "[a1 CAPABILITY ()]" },
	{ .in = "a2 LOGIN \"fred\" \"p\\\"w\\\\d\"\r\n", .want = "[a2 LOGIN (\"fred\" \"p\"w\\d\")]" },
	{ .in = "a3 SELECT NIL nil \"NIL\"\r\n", .want = "[a3 SELECT (NIL NIL \"NIL\")]" },
	{ .in = "a4 FETCH 1:*,3 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM \"SUBJECT\")]<0.100> "
	  "BINARY[1.2])\r\n", .want = "[a4 FETCH (1:*,3 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM \"SUBJECT\")]<0.100> "
	  "BINARY[1.2]))]" },
	{ .in = "a5 STORE $ +FLAGS.SILENT (\\Seen \\Deleted)\r\n", .want = "[a5 STORE ($ +FLAGS.SILENT (\\Seen \\Deleted))]" },
	{ .in = "a6 LIST \"\" %/*\r\n", .want = "[a6 LIST (\"\" %/*)]" },
	{ .in = "a7 SEARCH OR (FROM x) (NOT (TO y))\r\n", .want = "[a7 SEARCH (OR (FROM x) (NOT (TO y)))]" },
	{ .in = "a8 LOGIN {4}\r\nfred {3}\r\nx y\r\n", .want = "[+4][+3][a8 LOGIN ({4}fred {3}x y)]" },
	{ .in = "a9 LOGIN {4+}\r\nfred {0+}\r\n\r\n", .want = "[a9 LOGIN ({4}fred {0})]" },
	{ .in = "b2 LOGIN {4}\r\nb3 NOOP\r\n", .want = "[+4][BAD b2 Missing space between arguments]" },
	{ .in = "b2 LOGIN {4}\r\nb3 NOOP\r\n", .want = "[+4][b3 NOOP ()]", .reject = 1 },
	/* garbage: an error, then the next command parses */
	{ .in = "\"x NOOP\r\nc1 NOOP\r\n", .want = "[BAD * Invalid tag][c1 NOOP ()]" },
	{ .in = "c2\r\nc3 NOOP\r\n", .want = "[BAD * Missing command][c3 NOOP ()]" },
	{ .in = "c4 NO(OP\r\nc5 NOOP\r\n", .want = "[BAD c4 Invalid command name][c5 NOOP ()]" },
	{ .in = "c6 X (a\r\nc7 NOOP\r\n", .want = "[BAD c6 Missing ')'][c7 NOOP ()]" },
	{ .in = "c8 X a)\r\nc9 NOOP\r\n", .want = "[BAD c8 Unexpected ')'][c9 NOOP ()]" },
	{ .in = "d1 X \"ab\r\nd2 NOOP\r\n", .want = "[BAD d1 Unterminated quoted string][d2 NOOP ()]" },
	{ .in = "d3 X \"a\\b\"\r\nd4 NOOP\r\n", .want = "[BAD d3 Invalid escape in quoted string][d4 NOOP ()]" },
	{ .in = "d5 X \"a\"b\r\nd6 NOOP\r\n", .want = "[BAD d5 Missing space between arguments][d6 NOOP ()]" },
	{ .in = "d7 X {x}\r\nd8 NOOP\r\n", .want = "[BAD d7 Invalid literal][d8 NOOP ()]" },
	{ .in = "d9 X {3} y\r\ne1 NOOP\r\n", .want = "[BAD d9 Literal must end the line][e1 NOOP ()]" },
	{ .in = "e4 X a\rb\r\ne5 NOOP\r\n", .want = "[BAD e4 CR without LF][e5 NOOP ()]" },
	{ .in = "e6 X BODY[1\r\ne7 NOOP\r\n", .want = "[BAD e6 Missing ']'][e7 NOOP ()]" },
	/* a bad line ending in a non-synchronizing literal: its bytes are skipped */
	{ .in = "e8 X ) {5+}\r\nf1 NO\r\nf2 NOOP\r\n", .want = "[BAD e8 Unexpected ')'][f2 NOOP ()]" },
	/* limits */
	{ .in = "f3 X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nf4 NOOP\r\n", .want = "[BAD f3 Command line too long][f4 NOOP ()]", .reject = 0, .line_max = 20 },
	{ .in = "f5 X 0123456789012\r\n", .want = "[f5 X (0123456789012)]", .reject = 0, .line_max = 20 },
	{ .in = "f6 X 01234567890123\r\n", .want = "[BAD f6 Command line too long]", .reject = 0, .line_max = 20 },
	{ .in = "f7 APPEND x {2000}\r\nf8 NOOP\r\n", .want = "[BAD f7 [TOOBIG] Literal too big][f8 NOOP ()]" },
	{ .in = "f9 APPEND x {2000+}\r\n", .want = "[BAD f9 [TOOBIG] Literal too big CLOSE]" },
	{ .in = "g1 APPEND x {99999999999999999999999}\r\n", .want = "[BAD g1 Invalid literal size]" },
	{ .in = "g2 LOGIN {5-}\r\nhello\r\n", .want = "[g2 LOGIN ({5}hello)]", .reject = 0, .line_max = 0, .literal_minus = 1 },
	{ .in = "g3 APPEND x {1001+}\r\n", .want = "[BAD g3 [TOOBIG] Literal too big CLOSE]", .reject = 0, .line_max = 0, .literal_minus = 1 },
	{ .in = "g4 X ((((((((((((((((((((((((((((((((((x))))))))))))))))))))))))))))))))))\r\n"
	  "g5 NOOP\r\n", .want = "[BAD g4 Too deeply nested][g5 NOOP ()]" },
	{ .in = "g6 NOOP", .want = "" },
};

START_TEST(test_commands)
{
	struct imap_limits lim = IMAP_LIMITS_DEFAULT;
	struct buf whole = BUF_INIT(0), one = BUF_INIT(0), three = BUF_INIT(0);
	size_t n = strlen(cases[_i].in);

	lim.literal_max = 1000;
	if (cases[_i].line_max)
		lim.line_max = cases[_i].line_max;
	if (cases[_i].literal_minus)
		lim.literal_plus = 0;
	run(cases[_i].in, n, 0, &lim, cases[_i].reject, &whole);
	run(cases[_i].in, n, 1, &lim, cases[_i].reject, &one);
	run(cases[_i].in, n, 3, &lim, cases[_i].reject, &three);
	ck_assert_msg(strcmp(buf_cstr(&whole), cases[_i].want) == 0,
	    "'%s': got '%s', want '%s'", cases[_i].in, buf_cstr(&whole), cases[_i].want);
	ck_assert_msg(strcmp(buf_cstr(&one), buf_cstr(&whole)) == 0,
	    "'%s': trickled '%s', whole '%s'", cases[_i].in, buf_cstr(&one), buf_cstr(&whole));
	ck_assert_msg(strcmp(buf_cstr(&three), buf_cstr(&whole)) == 0,
	    "'%s': by 3 '%s', whole '%s'", cases[_i].in, buf_cstr(&three), buf_cstr(&whole));
	buf_free(&whole);
	buf_free(&one);
	buf_free(&three);
}
END_TEST

START_TEST(test_literal8_bytes)
{
	static const char in[] = "b1 APPEND INBOX ~{5+}\r\na\0b\r\n\r\n";
	struct imap_parser *p = imap_parser_new(NULL);
	size_t used;

	ck_assert_int_eq(imap_parse(p, in, sizeof(in) - 1, &used), IMAP_DONE);
	ck_assert_uint_eq(used, sizeof(in) - 1);
	const struct imap_command *c = imap_parser_command(p);
	const struct imap_arg *a = imap_arg_child(c, 0, 1);
	ck_assert_int_eq(a->kind, IMAP_ARG_LITERAL);
	ck_assert_int_eq(a->literal8, 1);
	ck_assert_uint_eq(a->len, 5);
	ck_assert(memcmp(a->str, "a\0b\r\n", 5) == 0);
	ck_assert_ptr_null(imap_arg_child(c, 0, 2));
	ck_assert(imap_arg_is_string(imap_arg_child(c, 0, 0)));
	imap_parser_free(&p);
}
END_TEST

START_TEST(test_nul)
{
	static const char in[] = "e2 X a\0b\r\ne3 NOOP\r\n";
	struct buf o = BUF_INIT(0);

	run(in, sizeof(in) - 1, 0, NULL, 0, &o);
	ck_assert_str_eq(buf_cstr(&o), "[BAD e2 NUL in command][e3 NOOP ()]");
	run(in, sizeof(in) - 1, 1, NULL, 0, &o);
	ck_assert_str_eq(buf_cstr(&o), "[BAD e2 NUL in command][e3 NOOP ()]");
	buf_free(&o);
}
END_TEST

/* imap_parser_too_big() tells a literal over the limit from any other
 * error, synchronizing or not, whatever the error's text. */
START_TEST(test_too_big)
{
	static const struct { const char *in; int big, close; } t[] = {
		{ "f7 APPEND x {2000}\r\n", 1, 0 },
		{ "f9 APPEND x {2000+}\r\n", 1, 1 },
		{ "e6 X BODY[1\r\n", 0, 0 },
		{ "g1 APPEND x {99999999999999999999999}\r\n", 0, 0 },
	};
	struct imap_limits lim = IMAP_LIMITS_DEFAULT;

	lim.literal_max = 1000;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct imap_parser *p = imap_parser_new(&lim);
		size_t used;

		ck_assert_int_eq(imap_parse(p, t[i].in, strlen(t[i].in), &used), IMAP_ERROR);
		ck_assert_int_eq(imap_parser_too_big(p), t[i].big);
		ck_assert_int_eq(imap_parser_must_close(p), t[i].close);
		imap_parser_free(&p);
	}
}
END_TEST

START_TEST(test_args_max)
{
	struct imap_limits lim = IMAP_LIMITS_DEFAULT;
	struct buf in = BUF_INIT(0), o = BUF_INIT(0);

	lim.args_max = 10;
	buf_puts(&in, "h1 X");
	for (int i = 0; i < 11; i++)
		buf_puts(&in, " a");
	buf_puts(&in, "\r\nh2 X a a a a a a a a a a\r\n");
	run(in.data, in.len, 0, &lim, 0, &o);
	ck_assert_str_eq(buf_cstr(&o), "[BAD h1 Too many arguments][h2 X (a a a a a a a a a a)]");
	run(in.data, in.len, 1, &lim, 0, &o);
	ck_assert_str_eq(buf_cstr(&o), "[BAD h1 Too many arguments][h2 X (a a a a a a a a a a)]");
	buf_free(&in);
	buf_free(&o);
}
END_TEST

START_TEST(test_untagged)
{
	/* ManageSieve (RFC 5804) commands: no tag, every split alike. */
	static const char in[] = "PUTSCRIPT \"vac\" {9+}\r\nkeep;\r\n\r\n"
	    "\r\nlistscripts\r\nHAVESPACE \"a b\" 12\r\n\"x\"\r\nLOGOUT\r\n";
	static const char want[] = "[ PUTSCRIPT (\"vac\" {9}keep;\r\n\r\n)]"
	    "[ LISTSCRIPTS ()][ HAVESPACE (\"a b\" 12)][BAD  Invalid command name]"
	    "[ LOGOUT ()]";
	struct imap_limits lim = IMAP_LIMITS_DEFAULT;
	struct buf o = BUF_INIT(0);

	lim.untagged = 1;
	for (size_t step = 0; step < 8; step++) {
		run(in, sizeof(in) - 1, step, &lim, 0, &o);
		ck_assert_str_eq(buf_cstr(&o), want);
	}
	buf_free(&o);
}
END_TEST

START_TEST(test_literal_wait)
{
	/* Until the caller decides, the parser consumes nothing more. */
	struct imap_parser *p = imap_parser_new(NULL);
	size_t used;
	const char *in = "a LOGIN {3}\r\nabc\r\n";

	ck_assert_int_eq(imap_parse(p, in, strlen(in), &used), IMAP_LITERAL);
	ck_assert_uint_eq(used, 13);
	ck_assert_int_eq(imap_parse(p, in + 13, 5, &used), IMAP_LITERAL);
	ck_assert_uint_eq(used, 0);
	imap_literal_accept(p);
	ck_assert_int_eq(imap_parse(p, in + 13, 5, &used), IMAP_DONE);
	ck_assert_uint_eq(used, 5);
	imap_parser_free(&p);
}
END_TEST

static const struct {
	const char *in;
	uint32_t max;
	const char *want;   /* resolved ranges, or "ERR" */
} seqs[] = {
	{ "1", 10, "1:1" },
	{ "3:1,7,*", 10, "1:3,7:7,10:10" },
	{ "*:4,2:5", 10, "2:10" },
	{ "1:3,4:6,8", 10, "1:6,8:8" },
	{ "4294967295", 10, "ERR" },
	{ "0", 10, "ERR" },
	{ "1,", 10, "ERR" },
	{ ",1", 10, "ERR" },
	{ "1::2", 10, "ERR" },
	{ "a", 10, "ERR" },
	{ "", 10, "ERR" },
	{ "1:01", 10, "ERR" },
	{ "01", 10, "ERR" },
};

START_TEST(test_seqset)
{
	struct imap_seqset set;
	const char *err;
	struct buf o = BUF_INIT(0);

	if (imap_seqset_parse(seqs[_i].in, strlen(seqs[_i].in), &set, &err) < 0)
		buf_puts(&o, "ERR");
	else {
		ck_assert_int_eq(imap_seqset_resolve(&set, seqs[_i].max, 0), 0);
		for (size_t k = 0; k < set.n; k++)
			buf_printf(&o, "%s%u:%u", k ? "," : "", set.r[k].lo, set.r[k].hi);
	}
	ck_assert_msg(strcmp(buf_cstr(&o), seqs[_i].want) == 0, "'%s' got %s, want %s",
	    seqs[_i].in, buf_cstr(&o), seqs[_i].want);
	imap_seqset_free(&set);
	buf_free(&o);
}
END_TEST

START_TEST(test_seqset_iter)
{
	struct imap_seqset set;
	const char *err;
	uint64_t it = 0;
	uint32_t v, got[16], n = 0;

	ck_assert_int_eq(imap_seqset_parse("5,1:2,*", 7, &set, &err), 0);
	ck_assert_int_eq(imap_seqset_resolve(&set, 6, 1), 0);
	while (n < 16 && imap_seqset_next(&set, &it, &v))
		got[n++] = v;
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(got[0], 1);
	ck_assert_uint_eq(got[1], 2);
	ck_assert_uint_eq(got[2], 5);
	ck_assert_uint_eq(got[3], 6);
	ck_assert(imap_seqset_contains(&set, 5));
	ck_assert(!imap_seqset_contains(&set, 4));
	imap_seqset_free(&set);

	/* message numbers beyond the mailbox are an error with clamp */
	ck_assert_int_eq(imap_seqset_parse("9", 1, &set, &err), 0);
	ck_assert_int_eq(imap_seqset_resolve(&set, 6, 1), -1);
	imap_seqset_free(&set);
	/* "*" in an empty mailbox is 0: no message */
	ck_assert_int_eq(imap_seqset_parse("*", 1, &set, &err), 0);
	ck_assert_int_eq(imap_seqset_resolve(&set, 0, 0), 0);
	it = 0;
	ck_assert_int_eq(imap_seqset_next(&set, &it, &v), 0);
	imap_seqset_free(&set);
	/* the whole UID space iterates without wrapping */
	ck_assert_int_eq(imap_seqset_parse("4294967294:4294967290", 21, &set, &err), 0);
	ck_assert_int_eq(imap_seqset_resolve(&set, 0, 0), 0);
	it = 0;
	n = 0;
	while (imap_seqset_next(&set, &it, &v))
		n++;
	ck_assert_uint_eq(n, 5);
	imap_seqset_free(&set);
	ck_assert_int_eq(imap_seqset_parse("$", 1, &set, &err), 0);
	ck_assert_int_eq(set.saved, 1);
	imap_seqset_free(&set);
}
END_TEST

START_TEST(test_fetch_att)
{
	struct imap_fetch_att fa;
	const char *err, *s;

	s = "BODY.PEEK[HEADER.FIELDS (A \"]\")]<10.20>";
	ck_assert_int_eq(imap_fetch_att_split(s, strlen(s), &fa, &err), 0);
	ck_assert_uint_eq(fa.name_len, 9);
	ck_assert(fa.has_section);
	ck_assert_uint_eq(fa.section_len, strlen("HEADER.FIELDS (A \"]\")"));
	ck_assert(fa.has_partial);
	ck_assert_uint_eq(fa.partial_off, 10);
	ck_assert_uint_eq(fa.partial_len, 20);
	s = "FLAGS";
	ck_assert_int_eq(imap_fetch_att_split(s, strlen(s), &fa, &err), 0);
	ck_assert(!fa.has_section && !fa.has_partial);
	s = "BODY[]";
	ck_assert_int_eq(imap_fetch_att_split(s, strlen(s), &fa, &err), 0);
	ck_assert(fa.has_section && fa.section_len == 0);
	static const char *const bad[] = { "BODY[1", "BODY[]<1>", "BODY[]<1.0>",
	    "BODY[]<.1>", "BODY[]<1.2>x", "BODY[]<4294967296.1>", "[1]", "BODY[]<1.2" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(imap_fetch_att_split(bad[i], strlen(bad[i]), &fa, &err) == -1,
		    "%s accepted", bad[i]);
}
END_TEST

START_TEST(test_quote)
{
	struct buf o = BUF_INIT(0);

	imap_quote(&o, "INBOX", 5, IMAP_Q_ATOM);
	buf_putc(&o, ' ');
	imap_quote(&o, "a b", 3, IMAP_Q_ATOM);
	buf_putc(&o, ' ');
	imap_quote(&o, "NIL", 3, IMAP_Q_ATOM);
	buf_putc(&o, ' ');
	imap_quote(&o, NULL, 0, IMAP_Q_NIL);
	buf_putc(&o, ' ');
	imap_quote(&o, "q\"b\\", 4, 0);
	buf_putc(&o, ' ');
	imap_quote(&o, "a\r\nb", 4, 0);
	buf_putc(&o, ' ');
	imap_quote(&o, "Grüße", 7, 0);
	buf_putc(&o, ' ');
	imap_quote(&o, "Grüße", 7, IMAP_Q_UTF8);
	buf_putc(&o, ' ');
	imap_quote(&o, "\xff", 1, IMAP_Q_UTF8);
	ck_assert_str_eq(buf_cstr(&o), "INBOX \"a b\" \"NIL\" NIL \"q\\\"b\\\\\" "
	    "{4}\r\na\r\nb {7}\r\nGrüße \"Grüße\" {1}\r\n\xff");
	buf_reset(&o);
	char big[IMAP_QUOTED_MAX + 1];
	memset(big, 'x', sizeof(big));
	imap_quote(&o, big, sizeof(big), 0);
	ck_assert(strncmp(buf_cstr(&o), "{1025}\r\n", 8) == 0);
	buf_free(&o);
}
END_TEST

static Suite *
imap_suite(void)
{
	Suite *s = suite_create("imap");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_commands, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_literal8_bytes);
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_too_big);
	tcase_add_test(tc, test_args_max);
	tcase_add_test(tc, test_literal_wait);
	tcase_add_test(tc, test_untagged);
	tcase_add_loop_test(tc, test_seqset, 0, sizeof(seqs) / sizeof(seqs[0]));
	tcase_add_test(tc, test_seqset_iter);
	tcase_add_test(tc, test_fetch_att);
	tcase_add_test(tc, test_quote);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(imap_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
