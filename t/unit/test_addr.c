/*
 * test_addr - RFC 5321 path parsing, mailbox validation, splitting and
 * lookup keys.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "mail/addr.h"

/* Strings of n copies of c, for length limits. */
static char *
rep(char c, size_t n)
{
	char *s = xmalloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static const struct path_case {
	const char *in;
	int utf8;
	const char *addr;     /* NULL: must fail */
	const char *rest;     /* what *end_r points at */
	const char *err;      /* substring of the error text */
} path_cases[] = {
	{ "<>", 0, "", "", NULL },
	{ "<> SIZE=10", 0, "", " SIZE=10", NULL },
	{ "  <user@example.com>", 0, "user@example.com", "", NULL },
	{ "<user@example.com> BODY=8BITMIME", 0, "user@example.com", " BODY=8BITMIME", NULL },
	{ "<User.Name+tag@Sub.Example.COM>", 0, "User.Name+tag@Sub.Example.COM", "", NULL },
	{ "<!#$%&'*+-/=?^_`{|}~@x.y>", 0, "!#$%&'*+-/=?^_`{|}~@x.y", "", NULL },
	{ "<postmaster>", 0, "postmaster", "", NULL },
	{ "<Postmaster>", 0, "Postmaster", "", NULL },
	{ "<\"a b\"@example.com>", 0, "\"a b\"@example.com", "", NULL },
	{ "<\"a\\\"b\"@example.com>", 0, "\"a\\\"b\"@example.com", "", NULL },
	{ "<\"a>b\"@example.com>", 0, "\"a>b\"@example.com", "", NULL },
	{ "<\"a@b\"@example.com>", 0, "\"a@b\"@example.com", "", NULL },
	{ "<\"\"@example.com>", 0, "\"\"@example.com", "", NULL },
	{ "<u@[127.0.0.1]>", 0, "u@[127.0.0.1]", "", NULL },
	{ "<u@[IPv6:::1]>", 0, "u@[IPv6:::1]", "", NULL },
	{ "<u@[ipv6:2001:db8::1]>", 0, "u@[ipv6:2001:db8::1]", "", NULL },
	{ "<u@[IPv6:::ffff:192.0.2.1]>", 0, "u@[IPv6:::ffff:192.0.2.1]", "", NULL },
	{ "<@a.example,@b.example:u@c.example>", 0, "u@c.example", "", NULL },
	{ "<@a.example:u@c.example>", 0, "u@c.example", "", NULL },
	{ "<u@a-b.c-d.example>", 0, "u@a-b.c-d.example", "", NULL },
	{ "<u@1.2.3.4>", 0, "u@1.2.3.4", "", NULL },
	{ "<u@localhost>", 0, "u@localhost", "", NULL },
	/* SMTPUTF8 */
	{ "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", 1, "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "", NULL },
	{ "<j\xc3\xb6rg@example.com>", 0, NULL, NULL, "5.6.7" },
	{ "<u@b\xc3\xbc" "cher.example>", 0, NULL, NULL, "5.6.7" },
	{ "<\"\xe2\x82\xac\"@example.com>", 1, "\"\xe2\x82\xac\"@example.com", "", NULL },
	{ "<\xf0\x9f\x98\x80@example.com>", 1, "\xf0\x9f\x98\x80@example.com", "", NULL },
	{ "<\xc3@example.com>", 1, NULL, NULL, "UTF-8" },          /* truncated sequence */
	{ "<\xc0\xaf@example.com>", 1, NULL, NULL, "UTF-8" },      /* overlong */
	{ "<\xed\xa0\x80@example.com>", 1, NULL, NULL, "UTF-8" },  /* surrogate */
	{ "<\xf4\x90\x80\x80@example.com>", 1, NULL, NULL, "UTF-8" }, /* > U+10FFFF */
	{ "<\xff@example.com>", 1, NULL, NULL, "UTF-8" },
	{ "<u@\xe2\x82\xac>", 1, "u@\xe2\x82\xac", "", NULL },
	/* Missing brackets and garbage */
	{ "user@example.com", 0, NULL, NULL, "missing <" },
	{ "", 0, NULL, NULL, "missing <" },
	{ "<user@example.com", 0, NULL, NULL, "missing >" },
	{ "<", 0, NULL, NULL, "5.1.3" },
	{ "<user@example.com >", 0, NULL, NULL, "5.1.3" },
	{ "< user@example.com>", 0, NULL, NULL, "5.1.3" },
	{ "<user name@example.com>", 0, NULL, NULL, "5.1.3" },
	{ "<user@example.com>>", 0, "user@example.com", ">", NULL },
	{ "<user@example.com>garbage", 0, "user@example.com", "garbage", NULL },
	/* Local part syntax */
	{ "<.user@example.com>", 0, NULL, NULL, "local part" },
	{ "<user.@example.com>", 0, NULL, NULL, "local part" },
	{ "<us..er@example.com>", 0, NULL, NULL, "local part" },
	{ "<@example.com>", 0, NULL, NULL, "5.1.3" },
	{ "<us(er@example.com>", 0, NULL, NULL, "5.1.3" },
	{ "<us\ter@example.com>", 0, NULL, NULL, "5.1.3" },
	{ "<\"unterminated@example.com>", 0, NULL, NULL, "local part" },
	{ "<\"a\tb\"@example.com>", 0, NULL, NULL, "local part" },
	{ "<\"a\\\"@example.com>", 0, NULL, NULL, "local part" },
	{ "<u\"q\"@example.com>", 0, NULL, NULL, "5.1.3" },
	/* Domain syntax */
	{ "<u@>", 0, NULL, NULL, "domain" },
	{ "<u@-a.example>", 0, NULL, NULL, "domain" },
	{ "<u@a-.example>", 0, NULL, NULL, "domain" },
	{ "<u@a..example>", 0, NULL, NULL, "domain" },
	{ "<u@example.com.>", 0, NULL, NULL, "domain" },
	{ "<u@.example.com>", 0, NULL, NULL, "domain" },
	{ "<u@ex_ample.com>", 0, NULL, NULL, "5.1.3" },
	{ "<u@example.com@other>", 0, NULL, NULL, "5.1.3" },
	{ "<u@[127.0.0.256]>", 0, NULL, NULL, "literal" },
	{ "<u@[127.0.0]>", 0, NULL, NULL, "literal" },
	{ "<u@[127.0.0.1.2]>", 0, NULL, NULL, "literal" },
	{ "<u@[1234.0.0.1]>", 0, NULL, NULL, "literal" },
	{ "<u@[IPv6:zz::1]>", 0, NULL, NULL, "literal" },
	{ "<u@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, NULL, NULL, "literal" },
	{ "<u@[x-tag:whatever]>", 0, NULL, NULL, "literal" },
	{ "<u@[127.0.0.1>", 0, NULL, NULL, "literal" },
	{ "<u@[]>", 0, NULL, NULL, "literal" },
	/* Source routes */
	{ "<@a.example>", 0, NULL, NULL, "route" },
	{ "<@a.example:>", 0, NULL, NULL, "5.1.3" },
	{ "<@a.example,b.example:u@c>", 0, NULL, NULL, "route" },
	{ "<@:u@c>", 0, NULL, NULL, "route" },
	{ "<@a..b:u@c>", 0, NULL, NULL, "route" },
	{ "<@[1.2.3.4]:u@c>", 0, NULL, NULL, "route" },
};

START_TEST(test_path_table)
{
	const struct path_case *c = &path_cases[_i];
	const char *end = NULL, *err = NULL;
	char *addr = (char *)1;
	int ret;

	ret = addr_parse_path(c->in, c->utf8, &addr, &end, &err);
	if (c->addr != NULL) {
		ck_assert_msg(ret == 0, "%s: rejected: %s", c->in, err ? err : "?");
		ck_assert_str_eq(addr, c->addr);
		ck_assert_str_eq(end, c->rest);
		free(addr);
		/* Every mailbox with a domain that parses is also addr_valid. */
		if (strchr(c->addr, '@') != NULL)
			ck_assert_msg(addr_valid(c->addr, c->utf8) == 0, "%s not addr_valid", c->addr);
	} else {
		ck_assert_msg(ret == -1, "%s: accepted", c->in);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, c->err) != NULL, "%s: error \"%s\" lacks \"%s\"",
		    c->in, err, c->err);
		/* Error texts are reply-ready: "5.x.y text". */
		ck_assert(err[0] == '5' && err[1] == '.');
	}
}
END_TEST

/* Every strict prefix of a valid path fails; byte-at-a-time arrival never
 * yields a half address. */
START_TEST(test_path_prefixes)
{
	static const char *const ok[] = {
		"<@a.example,@b.example:\"x y\"@[IPv6:2001:db8::1]>",
		"<first.last@sub.example.org>",
		"<j\xc3\xb6rg@b\xc3\xbc" "cher.example>",
	};
	const char *end, *err;
	char *addr, *buf;
	size_t i, n, len;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		len = strlen(ok[i]);
		for (n = 0; n < len; n++) {
			buf = xstrndup(ok[i], n);
			ck_assert_msg(addr_parse_path(buf, 1, &addr, &end, &err) == -1,
			    "prefix %zu of %s accepted", n, ok[i]);
			free(buf);
		}
		ck_assert_int_eq(addr_parse_path(ok[i], 1, &addr, &end, &err), 0);
		ck_assert_ptr_eq(end, ok[i] + len);
		free(addr);
	}
}
END_TEST

/* strict_rfc821_envelopes = no: the same mailbox without <...>, up to
 * the first space; still the same syntax and limits inside. */
START_TEST(test_bare)
{
	static const struct { const char *in, *addr, *rest; } ok[] = {
		{ "user@example.com", "user@example.com", "" },
		{ "  user@example.com SIZE=10", "user@example.com", " SIZE=10" },
		{ "\"a b\"@example.com BODY=8BITMIME", "\"a b\"@example.com", " BODY=8BITMIME" },
		{ "postmaster", "postmaster", "" },
		{ "u@[192.0.2.1]", "u@[192.0.2.1]", "" },
		{ "<u@example.com> SIZE=1", "u@example.com", " SIZE=1" },
		{ "<>", "", "" },
	};
	static const char *const bad[] = {
		"", "   ", "u@example.com>", "u@@example.com", "u@example..com",
		"u@example.com<", "@a:u@example.com", "a\x01b@example.com", "u@ex\tample.com",
	};
	const char *end, *err;
	char *addr, *s, *l65 = rep('a', 65);

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(addr_parse_path(ok[i].in, ADDR_BARE_OK, &addr, &end, &err) == 0,
		    "%s", ok[i].in);
		ck_assert_str_eq(addr, ok[i].addr);
		ck_assert_str_eq(end, ok[i].rest);
		free(addr);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		ck_assert_msg(addr_parse_path(bad[i], ADDR_BARE_OK, &addr, &end, &err) == -1,
		    "%s", bad[i]);
		ck_assert_ptr_null(addr);
		ck_assert_ptr_nonnull(err);
	}
	/* Without the flag, the brackets are required. */
	ck_assert_int_eq(addr_parse_path("user@example.com", 0, &addr, &end, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "missing <"));
	/* UTF-8 only with ADDR_UTF8, as inside brackets. */
	ck_assert_int_eq(addr_parse_path("j\xc3\xb6rg@example.com", ADDR_BARE_OK, &addr,
	    &end, &err), -1);
	ck_assert_int_eq(addr_parse_path("j\xc3\xb6rg@example.com", ADDR_BARE_OK | ADDR_UTF8,
	    &addr, &end, &err), 0);
	free(addr);
	/* The local-part limit holds. */
	s = xasprintf("%s@example.com", l65);
	ck_assert_int_eq(addr_parse_path(s, ADDR_BARE_OK, &addr, &end, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "too long"));
	free(s);
	free(l65);
}
END_TEST

START_TEST(test_qualify)
{
	static const char *const cases[][2] = {
		{ "postmaster", "postmaster@mx.example" },
		{ "admin@example.org", "admin@example.org" },
		{ "\"a@b\"", "\"a@b\"@mx.example" },
		{ "\"a@b\"@example.org", "\"a@b\"@example.org" },
		{ "", "@mx.example" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *q = addr_qualify(cases[i][0], "mx.example");

		ck_assert_str_eq(q, cases[i][1]);
		free(q);
	}
}
END_TEST

START_TEST(test_lengths)
{
	const char *end, *err;
	char *addr, *l64 = rep('a', 64), *l65 = rep('a', 65), *lab63 = rep('b', 63),
	    *lab64 = rep('b', 64), *s;
	char dom[300];

	s = xasprintf("<%s@example.com>", l64);
	ck_assert_int_eq(addr_parse_path(s, 0, &addr, &end, &err), 0);
	free(addr);
	free(s);
	s = xasprintf("<%s@example.com>", l65);
	ck_assert_int_eq(addr_parse_path(s, 0, &addr, &end, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "too long"));
	free(s);
	s = xasprintf("<\"%s\"@example.com>", l64);   /* quotes count */
	ck_assert_int_eq(addr_parse_path(s, 0, &addr, &end, &err), -1);
	free(s);
	s = xasprintf("<u@%s.example>", lab63);
	ck_assert_int_eq(addr_parse_path(s, 0, &addr, &end, &err), 0);
	free(addr);
	free(s);
	s = xasprintf("<u@%s.example>", lab64);
	ck_assert_int_eq(addr_parse_path(s, 0, &addr, &end, &err), -1);
	free(s);
	/* A domain of 4 x 63-char labels + 3 dots = 255 octets is fine for the
	 * domain, but the path then exceeds 256. */
	snprintf(dom, sizeof(dom), "%s.%s.%s.%s", lab63, lab63, lab63, lab63);
	ck_assert_uint_eq(strlen(dom), 255);
	ck_assert_int_eq(addr_valid_domain(dom, 0), 0);
	s = xasprintf("<u@%s>", dom);
	ck_assert_int_eq(addr_parse_path(s, 0, &addr, &end, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "too long"));
	free(s);
	s = xasprintf("%sx", dom);
	ck_assert_int_eq(addr_valid_domain(s, 0), -1);
	free(s);
	/* 64 + 1 + 189 = 254 octets inside brackets: exactly 256 in all. */
	snprintf(dom, sizeof(dom), "%s.%s.%.61s", lab63, lab63, lab63);
	ck_assert_uint_eq(strlen(dom), 189);
	s = xasprintf("<%s@%s>", l64, dom);
	ck_assert_uint_eq(strlen(s), 256);
	ck_assert_int_eq(addr_parse_path(s, 0, &addr, &end, &err), 0);
	ck_assert_int_eq(addr_valid(addr, 0), 0);
	free(addr);
	free(s);
	s = xasprintf("<%s@%sc>", l64, dom);
	ck_assert_int_eq(addr_parse_path(s, 0, &addr, &end, &err), -1);
	free(s);
	free(l64);
	free(l65);
	free(lab63);
	free(lab64);
}
END_TEST

START_TEST(test_valid)
{
	static const struct {
		const char *a;
		int utf8, ok;
	} t[] = {
		{ "u@example.com", 0, 0 },
		{ "\"a b\"@example.com", 0, 0 },
		{ "u@[192.0.2.1]", 0, 0 },
		{ "postmaster", 0, -1 },        /* bare mailbox needs a domain */
		{ "", 0, -1 },
		{ "<u@example.com>", 0, -1 },
		{ "u@example.com ", 0, -1 },
		{ "u@@example.com", 0, -1 },
		{ "j\xc3\xb6rg@example.com", 0, -1 },
		{ "j\xc3\xb6rg@example.com", 1, 0 },
	};
	static const struct {
		const char *d;
		int utf8, ok;
	} d[] = {
		{ "example.com", 0, 0 },
		{ "EXAMPLE.com", 0, 0 },
		{ "[127.0.0.1]", 0, 0 },
		{ "[IPv6:::1]", 0, 0 },
		{ "b\xc3\xbc" "cher.example", 1, 0 },
		{ "b\xc3\xbc" "cher.example", 0, -1 },
		{ "", 0, -1 },
		{ "example.com.", 0, -1 },
		{ "exa mple.com", 0, -1 },
		{ "-x.com", 0, -1 },
		{ "[127.0.0.1]x", 0, -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(addr_valid(t[i].a, t[i].utf8) == t[i].ok, "addr_valid(%s)", t[i].a);
	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		ck_assert_msg(addr_valid_domain(d[i].d, d[i].utf8) == d[i].ok,
		    "addr_valid_domain(%s)", d[i].d);
}
END_TEST

START_TEST(test_split_fold_key)
{
	static const struct {
		const char *in, *local, *domain;
	} s[] = {
		{ "u@example.com", "u", "example.com" },
		{ "\"a@b\"@example.com", "\"a@b\"", "example.com" },
		{ "\"a\\\"@b\"@x", "\"a\\\"@b\"", "x" },
		{ "postmaster", "postmaster", "" },
		{ "\"x@y\"", "\"x@y\"", "" },
		{ "a@b@c", "a@b", "c" },
		{ "", "", "" },
	};
	static const struct {
		const char *local, *delim, *key;
	} k[] = {
		{ "User", "", "user" },
		{ "User+Ext", "+", "user" },
		{ "User+Ext", "", "user+ext" },
		{ "User-Ext+x", "+-", "user" },
		{ "+ext", "+", "+ext" },
		{ "\"John Doe\"", "", "john doe" },
		{ "\"a\\\"b\"", "", "a\"b" },
		{ "J\xc3\xb6RG", NULL, "j\xc3\xb6rg" },
	};
	char *l, *d, *f;
	size_t i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		addr_split(s[i].in, &l, &d);
		ck_assert_str_eq(l, s[i].local);
		ck_assert_str_eq(d, s[i].domain);
		free(l);
		free(d);
	}
	for (i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		f = addr_lookup_key(k[i].local, k[i].delim);
		ck_assert_str_eq(f, k[i].key);
		free(f);
	}
	f = addr_fold_domain("User@EXAMPLE.Com");
	ck_assert_str_eq(f, "User@example.com");
	free(f);
	f = addr_fold_domain("\"A@B\"@X.ORG");
	ck_assert_str_eq(f, "\"A@B\"@x.org");
	free(f);
	f = addr_fold_domain("PostMaster");
	ck_assert_str_eq(f, "PostMaster");
	free(f);
}
END_TEST

static Suite *
addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_path_table, 0, (int)(sizeof(path_cases) / sizeof(path_cases[0])));
	tcase_add_test(tc, test_path_prefixes);
	tcase_add_test(tc, test_lengths);
	tcase_add_test(tc, test_bare);
	tcase_add_test(tc, test_qualify);
	tcase_add_test(tc, test_valid);
	tcase_add_test(tc, test_split_fold_key);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(addr_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
