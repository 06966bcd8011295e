/*
 * test_maptab - cidr, regexp, pcre, texthash and inline tables parsed
 * from bytes: first match wins, negation, if/endif, $n substitution,
 * case folding, IPv6 networks, bad lines with src:line, and every prefix
 * of a table (as if the file were cut short) parsing or failing cleanly.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"
#include "mail/maptab.h"

static struct maptab *
parse_ok(enum maptab_type t, const char *text)
{
	char *err = NULL;
	struct maptab *tab = maptab_parse(t, "tab", text, strlen(text), &err);

	ck_assert_msg(tab != NULL, "parse: %s", err ? err : "?");
	ck_assert_ptr_null(err);
	return tab;
}

static void
parse_bad(enum maptab_type t, const char *text, const char *want)
{
	char *err = NULL;
	struct maptab *tab = maptab_parse(t, "tab", text, strlen(text), &err);

	ck_assert_msg(tab == NULL, "parsed \"%s\", want error \"%s\"", text, want);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, want) != NULL, "error \"%s\", want \"%s\"", err,
	    want);
	free(err);
}

static void
expect(const struct maptab *t, const char *key, const char *want)
{
	char *v = NULL;
	int r = maptab_lookup(t, key, &v);

	if (want == NULL) {
		ck_assert_msg(r == 0, "%s: found \"%s\", want none", key, v ? v : "");
		ck_assert_ptr_null(v);
	} else {
		ck_assert_msg(r == 1, "%s: r=%d, want \"%s\"", key, r, want);
		ck_assert_str_eq(v, want);
	}
	free(v);
}

START_TEST(test_cidr)
{
	struct maptab *t = parse_ok(MAPTAB_CIDR,
	    "# comment\n"
	    "192.168.1.1       one\n"
	    "192.168.0.0/16    lan\n"
	    "192.168.1.0/24    never: the /16 above wins\n"
	    "[10.0.0.0]/8      ten\n"
	    "2001:db8::/32     doc6\n"
	    "2001:0db8:1::/48  never6\n"
	    "::1               loop6\n"
	    "0.0.0.0/0         any4\n");

	expect(t, "192.168.1.1", "one");
	expect(t, "192.168.1.2", "lan");
	expect(t, "[192.168.200.9]", "lan");
	expect(t, "10.255.0.1", "ten");
	expect(t, "2001:DB8:1:0:0:0:0:5", "doc6");
	expect(t, "[2001:db8::1]", "doc6");
	expect(t, "0:0:0:0:0:0:0:1", "loop6");
	expect(t, "2001:db9::1", NULL);
	expect(t, "8.8.8.8", "any4");
	expect(t, "::ffff:8.8.8.8", NULL);   /* v6 key, no v4 rule */
	expect(t, "not-an-address", NULL);
	expect(t, "", NULL);
	maptab_free(&t);
	ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_cidr_negation_if)
{
	struct maptab *t = parse_ok(MAPTAB_CIDR,
	    "if 10.0.0.0/8\n"
	    "if !10.1.0.0/16\n"
	    "10.2.0.0/16 ten-two\n"
	    "endif\n"
	    "10.0.0.0/8 ten-rest\n"
	    "ENDIF\n"
	    "!::/0 not-v6\n"
	    "::/0 v6\n");

	expect(t, "10.2.3.4", "ten-two");
	expect(t, "10.1.2.3", "ten-rest");   /* skipped the inner block */
	expect(t, "10.3.0.1", "ten-rest");
	expect(t, "11.0.0.1", "not-v6");     /* an IPv4 key is not in ::/0 */
	expect(t, "fe80::1", "v6");
	maptab_free(&t);
}
END_TEST

START_TEST(test_cidr_bad)
{
	parse_bad(MAPTAB_CIDR, "1.2.3.4/24 x\n",
	    "tab:1: non-null host address bits in \"1.2.3.4/24\", perhaps you "
	    "should use \"1.2.3.0/24\" instead");
	parse_bad(MAPTAB_CIDR, "# c\n\n1.2.3.0/33 x\n", "tab:3: bad address pattern \"1.2.3.0/33\"");
	parse_bad(MAPTAB_CIDR, "::/129 x\n", "bad address pattern");
	parse_bad(MAPTAB_CIDR, "1.2.3.0/2x x\n", "bad address pattern");
	parse_bad(MAPTAB_CIDR, "1.2.3.0/ x\n", "bad address pattern");
	parse_bad(MAPTAB_CIDR, "1.2.3 x\n", "bad address pattern");
	parse_bad(MAPTAB_CIDR, "010.0.0.1 x\n", "bad address pattern");
	parse_bad(MAPTAB_CIDR, "example.com x\n", "bad address pattern");
	parse_bad(MAPTAB_CIDR, "1.2.3.4\n", "tab:1: missing result");
	parse_bad(MAPTAB_CIDR, "1.1.1.1 a\nendif\n", "tab:2: endif without if");
	parse_bad(MAPTAB_CIDR, "1.1.1.1 a\nif 1.0.0.0/8\n2.2.2.2 b\n",
	    "tab:2: if without endif");
	parse_bad(MAPTAB_CIDR, "if 1.0.0.0/8 x\nendif\n",
	    "tab:1: text after the pattern of an if");
	parse_bad(MAPTAB_CIDR, "  1.1.1.1 a\n", "tab:1: continuation line");
}
END_TEST

START_TEST(test_cidr_nesting_bound)
{
	char *text = xstrdup(""), *next;
	int i;

	for (i = 0; i <= MAPTAB_NEST_MAX; i++) {
		next = xasprintf("%sif 0.0.0.0/0\n", text);
		free(text);
		text = next;
	}
	parse_bad(MAPTAB_CIDR, text, "nested deeper");
	free(text);
}
END_TEST

/* The regexp and pcre tables share their syntax; run both. */
static const enum maptab_type re_types[] = { MAPTAB_REGEXP, MAPTAB_PCRE };

START_TEST(test_re_first_match_and_substitution)
{
	struct maptab *t = parse_ok(re_types[_i],
	    "/^(.*)-(.*)@example\\.com$/   $2+$1@example.net\n"
	    "/^(.+)@example\\.com$/        ${1}@example.org cost=$$5\n"
	    "/^(x)?y@/                     [$1]\n"
	    "/@example\\.com$/             never\n"
	    "#/x/ comment\n"
	    "/^multi/                      a\n"
	    "  continued\n"
	    "|a/b|                         pipe-delimited\n");

	expect(t, "bob-sales@EXAMPLE.com", "sales+bob@example.net");
	expect(t, "Bob@example.com", "Bob@example.org cost=$5");
	expect(t, "y@z", "[]");              /* unmatched group: empty */
	expect(t, "multiple", "a continued");
	expect(t, "xa/bx", "pipe-delimited");
	expect(t, "nobody@example.net", NULL);
	maptab_free(&t);
}
END_TEST

START_TEST(test_re_case_flags)
{
	struct maptab *t = parse_ok(re_types[_i],
	    "/^Exact$/i     exact-case\n"
	    "/^folded$/     folded\n"
	    "/^a b$/x       extended-off-or-on\n");

	expect(t, "Exact", "exact-case");
	expect(t, "exact", NULL);
	expect(t, "FOLDED", "folded");
	maptab_free(&t);
}
END_TEST

START_TEST(test_re_negation_if)
{
	struct maptab *t = parse_ok(re_types[_i],
	    "if /@example\\.com$/\n"
	    "!/^postmaster@/      not-postmaster\n"
	    "/^(.*)@/             $1\n"
	    "endif\n"
	    "if !/@/\n"
	    "/./                  bare\n"
	    "endif\n"
	    "/.*/                 fallback\n");

	expect(t, "joe@example.com", "not-postmaster");
	expect(t, "postmaster@example.com", "postmaster");
	expect(t, "joe", "bare");
	expect(t, "joe@elsewhere", "fallback");
	maptab_free(&t);
}
END_TEST

START_TEST(test_re_bad)
{
	enum maptab_type t = re_types[_i];

	parse_bad(t, "/a(/ x\n", "tab:1: bad regular expression /a(/");
	parse_bad(t, "/abc x\n", "tab:1: missing closing '/' delimiter");
	parse_bad(t, "abc x\n", "tab:1: expected /pattern/");
	parse_bad(t, "/a/\n", "tab:1: missing result");
	parse_bad(t, "/a/q x\n", "flag 'q'");
	parse_bad(t, "/(a)/ $2\n", "$2: no such group");
	parse_bad(t, "/(a)/ $x\n", "bad '$' in result");
	parse_bad(t, "/(a)/ ${1\n", "bad '$' in result");
	parse_bad(t, "!/(a)/ $1\n", "$n in the result of a negated pattern");
	parse_bad(t, "/a/ x\n\nendif\n", "tab:3: endif without if");
	parse_bad(t, "if /a/\n/b/ c\n", "tab:1: if without endif");
	parse_bad(t, "if /a/ x\nendif\n", "text after the pattern");
	parse_bad(t, "/a/ x\nendif junk\n", "endif");
}
END_TEST

START_TEST(test_pcre_flags)
{
	struct maptab *t = parse_ok(MAPTAB_PCRE,
	    "/^a.b$/s       dotall\n"
	    "/^x$^y$/m      never-matches-one-line\n"
	    "/b/A           anchored\n"
	    "/(a+)/U        lazy:$1\n"
	    "/ q u u x /x   extended\n"
	    "/end$/E        dollar-endonly\n"
	    "/\\d+/X        digits\n");

	expect(t, "a\nb", "dotall");
	expect(t, "bcd", "anchored");
	expect(t, "cbd", NULL);
	expect(t, "caaa", "lazy:a");
	expect(t, "quux", "extended");
	expect(t, "the end", "dollar-endonly");
	expect(t, "the end\n", NULL);
	expect(t, "42", "digits");
	maptab_free(&t);
}
END_TEST

START_TEST(test_regexp_flags)
{
	struct maptab *t = parse_ok(MAPTAB_REGEXP,
	    "/^a+$/x        basic:a+\n"      /* x off: + is literal */
	    "/^b$/m         line\n"
	    "/[*+][[:digit:]?]+\\+*c/ not-adjacent\n");

	expect(t, "a+", "basic:a+");
	parse_bad(MAPTAB_REGEXP, "/^(.*)++/ x\n", "adjacent repetition operators");
	parse_bad(MAPTAB_REGEXP, "/a{2}*/ x\n", "adjacent repetition operators");
	expect(t, "aa", NULL);
	expect(t, "x\nb", "line");
	expect(t, "+5?+++c", "not-adjacent");
	maptab_free(&t);
}
END_TEST

START_TEST(test_texthash)
{
	struct maptab *t = parse_ok(MAPTAB_HASH,
	    "# users\n"
	    "Alice  alice@example.com\n"
	    "bob:   bob@example.com,\n"
	    "       bob2@example.com\n"
	    "alice  duplicate, ignored\n");
	char *v = NULL;

	expect(t, "ALICE", "alice@example.com");
	expect(t, "bob", "bob@example.com, bob2@example.com");
	expect(t, "carol", NULL);
	ck_assert(maptab_listable(t));
	maptab_free(&t);
	parse_bad(MAPTAB_HASH, "k v\nlonely\n", "tab:2: expected format");
	t = parse_ok(MAPTAB_CIDR, "1.1.1.1 a\n");
	ck_assert(!maptab_listable(t));
	ck_assert_int_eq(maptab_lookup(t, "1.1.1.1", &v), 1);
	free(v);
	maptab_free(&t);
}
END_TEST

START_TEST(test_inline)
{
	char *err = NULL;
	struct maptab *t = maptab_parse_inline("inline:{...}",
	    " key=value, { Spaced Key = value with, comma } ,x=y ,k2=v=w ",
	    &err);

	ck_assert_msg(t != NULL, "%s", err ? err : "?");
	expect(t, "KEY", "value");
	expect(t, "spaced key", "value with, comma");
	expect(t, "x", "y");
	expect(t, "k2", "v=w");
	expect(t, "value", NULL);
	maptab_free(&t);

	t = maptab_parse_inline("s", "", &err);
	ck_assert_ptr_nonnull(t);
	expect(t, "a", NULL);
	maptab_free(&t);

	ck_assert_ptr_null(maptab_parse_inline("s", "a=b, novalue", &err));
	ck_assert_str_eq(err, "s: \"novalue\": expected key=value");
	free(err);
	ck_assert_ptr_null(maptab_parse_inline("s", "{a=b", &err));
	ck_assert_str_eq(err, "s: missing '}'");
	free(err);
	ck_assert_ptr_null(maptab_parse_inline("s", "=b", &err));
	ck_assert_ptr_nonnull(strstr(err, "missing key"));
	free(err);
}
END_TEST

/* Every prefix of a good table is either a table or an error, never a
 * crash or a leak (run under ASan in CI). */
START_TEST(test_prefixes)
{
	static const char *const texts[] = {
		"if 10.0.0.0/8\n!10.1.0.0/16 x\nendif\n2001:db8::/32 y\n",
		"if /^a/i\n!/b/ x\n/(c)(d)?/ $1${2}$$\nendif\n|e\\|f|m g\n",
		"k v\nk2: v2\n  more\n",
	};
	static const enum maptab_type types[] = { MAPTAB_CIDR, MAPTAB_REGEXP,
	    MAPTAB_HASH };
	struct maptab *t;
	char *err, *v;
	size_t i, n;

	for (i = 0; i < 3; i++) {
		for (n = 0; n <= strlen(texts[i]); n++) {
			enum maptab_type ty = types[i];
			int pass;

			for (pass = 0; pass < (ty == MAPTAB_REGEXP ? 2 : 1); pass++) {
				err = NULL;
				t = maptab_parse(pass ? MAPTAB_PCRE : ty, "p", texts[i], n,
				    &err);
				ck_assert((t == NULL) != (err == NULL));
				if (t != NULL) {
					v = NULL;
					(void)maptab_lookup(t, "10.2.0.1", &v);
					free(v);
					v = NULL;
					(void)maptab_lookup(t, "acd", &v);
					free(v);
				}
				maptab_free(&t);
				free(err);
			}
		}
	}
}
END_TEST

START_TEST(test_line_bound)
{
	size_t n = MAPTAB_LINE_MAX + 10;
	char *text = xmalloc(n + 1);

	memset(text, 'a', n);
	text[0] = '/';
	text[n - 5] = '/';
	text[n - 4] = ' ';
	text[n] = '\0';
	parse_bad(MAPTAB_REGEXP, text, "tab:1: line too long");
	free(text);
}
END_TEST

static Suite *
maptab_suite(void)
{
	Suite *s = suite_create("maptab");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_cidr);
	tcase_add_test(tc, test_cidr_negation_if);
	tcase_add_test(tc, test_cidr_bad);
	tcase_add_test(tc, test_cidr_nesting_bound);
	tcase_add_loop_test(tc, test_re_first_match_and_substitution, 0, 2);
	tcase_add_loop_test(tc, test_re_case_flags, 0, 2);
	tcase_add_loop_test(tc, test_re_negation_if, 0, 2);
	tcase_add_loop_test(tc, test_re_bad, 0, 2);
	tcase_add_test(tc, test_pcre_flags);
	tcase_add_test(tc, test_regexp_flags);
	tcase_add_test(tc, test_texthash);
	tcase_add_test(tc, test_inline);
	tcase_add_test(tc, test_prefixes);
	tcase_add_test(tc, test_line_bound);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(maptab_suite());
	int failures;

	log_open("test_maptab", "/dev/null");
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
