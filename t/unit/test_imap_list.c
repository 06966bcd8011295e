/*
 * test_imap_list - lib/proto/imap_list.c by bytes: mailbox arguments
 * (modified UTF-7 and UTF-8, INBOX in any case, hostile names), the
 * mailbox writer, STATUS items and "* STATUS", LIST/LSUB argument parsing
 * (LIST-EXTENDED selection and return options, several patterns), the
 * pattern matcher, and whole LIST/LSUB replies on the mailbox sets of RFC
 * 5258 section 5. Each command is parsed whole and one byte at a time and
 * must give the same reply.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap.h"
#include "proto/imap_list.h"
#include "store/index.h"
#include "util/alloc.h"

/* Parse one command line, fed step bytes at a time (0: whole). The
 * parser stays alive in *pp (the command points into it). */
static const struct imap_command *
parse(const char *line, size_t step, struct imap_parser **pp)
{
	static const struct imap_limits lim = IMAP_LIMITS_DEFAULT;
	size_t pos = 0, n = strlen(line);

	*pp = imap_parser_new(&lim);
	while (pos < n) {
		size_t len = step && n - pos > step ? step : n - pos, used;
		enum imap_result r = imap_parse(*pp, line + pos, len, &used);

		pos += used;
		if (r == IMAP_DONE)
			return imap_parser_command(*pp);
		if (r == IMAP_LITERAL)
			imap_literal_accept(*pp);
		ck_assert_msg(r != IMAP_ERROR, "%s: %s", line, imap_parser_error(*pp));
	}
	ck_abort_msg("incomplete: %s", line);
	return NULL;
}

/* ---- mailbox arguments ---- */

static const struct {
	const char *arg;           /* wire bytes after "a SELECT " */
	int utf8;
	const char *want;          /* NULL: refused */
} mbox_args[] = {
	{ "INBOX", 0, "INBOX" },
	{ "inbox", 0, "INBOX" },
	{ "\"InBoX\"", 1, "INBOX" },
	{ "inbox/Sub", 0, "INBOX/Sub" },
	{ "inboxes", 0, "inboxes" },
	{ "Entw&APw-rfe", 0, "Entwürfe" },
	{ "\"Entwürfe\"", 1, "Entwürfe" },
	{ "Entw&APw-rfe", 1, "Entw&APw-rfe" },     /* rev2: '&' is just '&' */
	{ "&ZeVnLIqe-/&-", 0, "日本語/&" },
	{ "\"Entwürfe\"", 0, NULL },                 /* rev1: 8-bit is not mUTF-7 */
	{ "a&b", 0, NULL },                          /* unterminated run */
	{ "&AGEAYg-", 0, NULL },                     /* ASCII inside a run */
	{ "a&AAA-b", 0, NULL },                      /* U+0000 */
	{ "a&AAE-b", 0, NULL },                      /* U+0001 */
	{ "\"\xff\"", 1, NULL },                     /* not UTF-8 */
	{ "foo/", 0, "foo" },                        /* CREATE foo/ */
	{ "\"a b\"", 0, "a b" },
	{ "{3}\r\na/b", 0, "a/b" },
	{ "~{3}\r\nabc", 0, NULL },                  /* literal8 is not a mailbox */
	{ "\"..\"", 0, NULL },
	{ "\"a/../b\"", 0, NULL },
	{ "\"/abs\"", 0, NULL },
	{ "a.b", 0, NULL },
	{ "\"a\\\\b\"", 0, NULL },
	{ "a//b", 0, NULL },
	{ "\"\"", 0, NULL },
	{ "{3}\r\na\x01" "b", 1, NULL },
	{ "{3}\r\na\0b", 1, NULL },
	{ "NIL", 0, NULL },
	{ "(a)", 0, NULL },
	{ "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", 0, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p" },
	{ "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", 0, NULL },
};

START_TEST(test_mailbox_arg)
{
	char line[512], *name = NULL;
	const char *err = NULL;
	struct imap_parser *p;
	const struct imap_command *c;
	int rc;

	snprintf(line, sizeof(line), "a SELECT %s\r\n", mbox_args[_i].arg);
	/* the literal cases hold a NUL: build them by length */
	size_t alen = strlen(mbox_args[_i].arg);
	if (strncmp(mbox_args[_i].arg, "{3}\r\na", 6) == 0) {
		alen = 8;
		memcpy(line + 9, mbox_args[_i].arg, alen);
		memcpy(line + 9 + alen, "\r\n", 3);
	}
	{
		static const struct imap_limits lim = IMAP_LIMITS_DEFAULT;
		size_t used, pos = 0, n = 9 + alen + 2;

		p = imap_parser_new(&lim);
		for (;;) {
			enum imap_result r = imap_parse(p, line + pos, n - pos, &used);
			pos += used;
			if (r == IMAP_DONE)
				break;
			ck_assert_int_eq(r, IMAP_LITERAL);
			imap_literal_accept(p);
		}
		c = imap_parser_command(p);
	}
	rc = imap_mailbox_arg(imap_arg_child(c, 0, 0), mbox_args[_i].utf8, &name, &err);
	if (mbox_args[_i].want == NULL) {
		ck_assert_msg(rc == -1, "%s: accepted as %s", mbox_args[_i].arg, name);
		ck_assert_ptr_null(name);
		ck_assert_ptr_nonnull(err);
	} else {
		ck_assert_msg(rc == 0, "%s: %s", mbox_args[_i].arg, err);
		ck_assert_str_eq(name, mbox_args[_i].want);
	}
	free(name);
	imap_parser_free(&p);
}
END_TEST

START_TEST(test_mailbox_long)
{
	char line[1024], *name = NULL;
	const char *err = NULL;
	struct imap_parser *p;

	memset(line, 0, sizeof(line));
	strcpy(line, "a SELECT ");
	memset(line + 9, 'x', 300);
	strcat(line, "\r\n");
	const struct imap_command *c = parse(line, 0, &p);
	ck_assert_int_eq(imap_mailbox_arg(imap_arg_child(c, 0, 0), 1, &name, &err), -1);
	imap_parser_free(&p);
	line[9 + 255] = '\0';
	strcat(line, "\r\n");
	c = parse(line, 0, &p);
	ck_assert_int_eq(imap_mailbox_arg(imap_arg_child(c, 0, 0), 1, &name, &err), 0);
	ck_assert_uint_eq(strlen(name), 255);
	free(name);
	imap_parser_free(&p);
}
END_TEST

START_TEST(test_write_mailbox)
{
	static const struct {
		const char *name;
		int utf8;
		const char *want;
	} w[] = {
		{ "INBOX", 0, "INBOX" },
		{ "Entwürfe", 0, "Entw&APw-rfe" },
		{ "Entwürfe", 1, "\"Entwürfe\"" },
		{ "日本語/&", 0, "&ZeVnLIqe-/&-" },
		{ "a b", 0, "\"a b\"" },
		{ "a\"b", 1, "\"a\\\"b\"" },
		{ "", 0, "\"\"" },
		{ "NIL", 0, "\"NIL\"" },
		{ "x%", 0, "\"x%\"" },
		{ "~x", 0, "\"~x\"" },
		{ "x~", 0, "x~" },
	};
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		buf_reset(&b);
		imap_write_mailbox(&b, w[i].name, w[i].utf8);
		ck_assert_str_eq(buf_cstr(&b), w[i].want);
	}
	buf_free(&b);
}
END_TEST

/* ---- STATUS ---- */

START_TEST(test_status)
{
	static const struct {
		const char *items;
		unsigned want;       /* 0: refused */
	} s[] = {
		{ "(MESSAGES)", IMAP_ST_MESSAGES },
		{ "(messages uidNext UIDVALIDITY unseen RECENT)", IMAP_ST_MESSAGES |
		  IMAP_ST_UIDNEXT | IMAP_ST_UIDVALIDITY | IMAP_ST_UNSEEN | IMAP_ST_RECENT },
		{ "(SIZE HIGHESTMODSEQ DELETED)", IMAP_ST_SIZE | IMAP_ST_HIGHESTMODSEQ |
		  IMAP_ST_DELETED },
		{ "()", 0 },
		{ "(MESSAGES FOO)", 0 },
		{ "MESSAGES", 0 },
		{ "(\"MESSAGES\")", 0 },
		{ "((MESSAGES))", 0 },
	};
	struct buf b = BUF_INIT(0);
	char line[128];

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		struct imap_parser *p;
		const struct imap_command *c;
		const char *err = NULL;
		unsigned items = 99;
		int rc;

		snprintf(line, sizeof(line), "a STATUS x %s\r\n", s[i].items);
		c = parse(line, 1, &p);
		rc = imap_status_items_parse(c, (size_t)(imap_arg_child(c, 0, 1) - c->args),
		    &items, &err);
		if (s[i].want == 0) {
			ck_assert_msg(rc == -1, "%s accepted", s[i].items);
			ck_assert_ptr_nonnull(err);
		} else {
			ck_assert_msg(rc == 0, "%s: %s", s[i].items, err);
			ck_assert_uint_eq(items, s[i].want);
		}
		imap_parser_free(&p);
	}

	struct mbx_status st = { .messages = 3, .unseen = 2, .size = 4567,
	    .uidvalidity = 1234, .uidnext = 10, .highestmodseq = 99 };
	imap_status_write(&b, "Entwürfe", 0, 0xff, &st, 1, 1);
	ck_assert_str_eq(buf_cstr(&b), "* STATUS Entw&APw-rfe (MESSAGES 3 RECENT 1 UIDNEXT 10 "
	    "UIDVALIDITY 1234 UNSEEN 2 DELETED 1 SIZE 4567 HIGHESTMODSEQ 99)\r\n");
	buf_reset(&b);
	imap_status_write(&b, "Entwürfe", 1, IMAP_ST_UNSEEN | IMAP_ST_MESSAGES, &st, 0, 0);
	ck_assert_str_eq(buf_cstr(&b), "* STATUS \"Entwürfe\" (MESSAGES 3 UNSEEN 2)\r\n");
	buf_free(&b);
}
END_TEST

/* ---- LIST arguments ---- */

static const struct {
	const char *cmd;
	int utf8;
	const char *want;          /* NULL: refused; else "ext sel ret status ref|p1|p2" */
} list_args[] = {
	{ "a LIST \"\" *", 0, "0 0 0 0 |*" },
	{ "a LIST Mail/ %", 0, "0 0 0 0 Mail/|%" },
	{ "a LSUB \"\" \"Fruit/%\"", 0, "0 0 0 0 |Fruit/%" },
	{ "a LIST () \"\" %", 0, "1 0 0 0 |%" },
	{ "a LIST (subscribed remote RECURSIVEMATCH special-use) \"\" %", 0, "1 15 0 0 |%" },
	{ "a LIST \"\" % RETURN ()", 0, "1 0 0 0 |%" },
	{ "a LIST \"\" % RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)", 0, "1 0 7 0 |%" },
	{ "a LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN) CHILDREN)", 0, "1 0 10 9 |%" },
	{ "a LIST \"\" (INBOX \"Fruit/*\" {5}\r\nTofu%)", 0, "1 0 0 0 |INBOX|Fruit/*|Tofu%" },
	{ "a LIST \"\" \"Entw&APw-rfe/%\"", 0, "0 0 0 0 |Entwürfe/%" },
	{ "a LIST \"\" \"Entwürfe/%\"", 1, "0 0 0 0 |Entwürfe/%" },
	{ "a LIST \"\" \"\"", 0, "0 0 0 0 |" },
	{ "a LIST \"\" \"Entwürfe\"", 0, NULL },
	{ "a LIST (RECURSIVEMATCH) \"\" %", 0, NULL },
	{ "a LIST (REMOTE RECURSIVEMATCH) \"\" %", 0, NULL },
	{ "a LIST (FOO) \"\" %", 0, NULL },
	{ "a LIST (\"SUBSCRIBED\") \"\" %", 0, NULL },
	{ "a LIST \"\" % RETURN (FOO)", 0, NULL },
	{ "a LIST \"\" % RETURN (STATUS)", 0, NULL },
	{ "a LIST \"\" % RETURN (STATUS ())", 0, NULL },
	{ "a LIST \"\" % RETURN CHILDREN", 0, NULL },
	{ "a LIST \"\" % EXTRA", 0, NULL },
	{ "a LIST \"\" % RETURN () X", 0, NULL },
	{ "a LIST \"\"", 0, NULL },
	{ "a LIST", 0, NULL },
	{ "a LIST NIL %", 0, NULL },
	{ "a LIST \"\" ()", 0, NULL },
	{ "a LIST \"\" (a (b))", 0, NULL },
	{ "a LSUB \"\" (a)", 0, NULL },
	{ "a LSUB () \"\" a", 0, NULL },
	{ "a LSUB \"\" a RETURN ()", 0, NULL },
};

START_TEST(test_list_parse)
{
	struct buf got = BUF_INIT(0);
	char line[256];

	snprintf(line, sizeof(line), "%s\r\n", list_args[_i].cmd);
	for (size_t step = 0; step < 2; step++) {
		struct imap_list_req r;
		struct imap_parser *p;
		const struct imap_command *c = parse(line, step, &p);
		const char *err = NULL;
		int rc = imap_list_parse(c, strcmp(c->name, "LSUB") == 0, list_args[_i].utf8, &r,
		    &err);

		if (list_args[_i].want == NULL) {
			ck_assert_msg(rc == -1, "%s: accepted", list_args[_i].cmd);
			ck_assert_ptr_nonnull(err);
			ck_assert_ptr_null(r.patterns);
			ck_assert_ptr_null(r.ref);
		} else {
			ck_assert_msg(rc == 0, "%s: %s", list_args[_i].cmd, err);
			buf_reset(&got);
			buf_printf(&got, "%d %u %u %u %s", r.extended, r.sel, r.ret, r.status_items,
			    r.ref);
			for (size_t k = 0; r.patterns[k] != NULL; k++)
				buf_printf(&got, "|%s", r.patterns[k]);
			ck_assert_str_eq(buf_cstr(&got), list_args[_i].want);
			imap_list_req_free(&r);
		}
		imap_parser_free(&p);
	}
	buf_free(&got);
}
END_TEST

/* ---- matching ---- */

START_TEST(test_match)
{
	static const struct {
		const char *ref, *pat, *name;
		int want;
	} m[] = {
		{ "", "*", "a/b", 1 },
		{ "", "%", "a/b", 0 },
		{ "", "%", "a", 1 },
		{ "", "a/%", "a/b", 1 },
		{ "", "a/%", "a/b/c", 0 },
		{ "", "a/*", "a/b/c", 1 },
		{ "", "a/*", "a", 0 },
		{ "", "a*", "a", 1 },
		{ "a/", "%", "a/b", 1 },
		{ "a/", "%", "b", 0 },
		{ "Fruit/", "*", "Fruit/Apple", 1 },
		{ "", "%/%", "a/b", 1 },
		{ "", "*b", "a/b", 1 },
		{ "", "%b", "a/b", 0 },
		{ "", "**%%*", "x/y/z", 1 },
		{ "", "%%%", "x/y", 0 },
		{ "", "inbox", "INBOX", 1 },
		{ "", "InBox/%", "INBOX/x", 1 },
		{ "", "INBOX/X", "INBOX/x", 0 },    /* only the INBOX level ignores case */
		{ "", "i%", "INBOX", 1 },
		{ "", "inboxes", "inboxes", 1 },
		{ "", "INBOXES", "inboxes", 0 },
		{ "", "Sent", "sent", 0 },
		{ "", "S%t", "Sent", 1 },
		{ "", "Entwürfe", "Entwürfe", 1 },
		{ "", "Entw%", "Entwürfe", 1 },
		{ "", "", "", 1 },
		{ "", "a", "ab", 0 },
		{ "", "ab", "a", 0 },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		ck_assert_msg(imap_list_match(m[i].ref, m[i].pat, m[i].name) == m[i].want,
		    "ref %s pattern %s name %s: want %d", m[i].ref, m[i].pat, m[i].name, m[i].want);

	/* hostile patterns cost pattern x name at most, and fail */
	char pat[1025], name[256];
	for (size_t i = 0; i < 1024; i++)
		pat[i] = i % 2 ? 'a' : '%';
	pat[1024] = '\0';
	memset(name, 'a', 255);
	name[254] = 'b';
	name[255] = '\0';
	for (int k = 0; k < 1000; k++)
		ck_assert_int_eq(imap_list_match("", pat, name), 0);
	pat[500] = '\0';
	for (int k = 0; k < 1000; k++)
		ck_assert_int_eq(imap_list_match("", pat, name), 0);
}
END_TEST

/* The RFC 3501 wildcard rules as a plain table, to check the
 * bit-parallel matcher against: t[i][j] = p[0..i) matches n[0..j). */
static int
ref_match(const char *p, const char *n)
{
	size_t pl = strlen(p), nl = strlen(n);
	static unsigned char t[64][256];

	memset(t, 0, sizeof(t));
	t[0][0] = 1;
	for (size_t i = 1; i <= pl; i++)
		for (size_t j = 0; j <= nl; j++) {
			char c = p[i - 1];

			if (c == '*')
				t[i][j] = t[i - 1][j] || (j > 0 && t[i][j - 1]);
			else if (c == '%')
				t[i][j] = t[i - 1][j] || (j > 0 && n[j - 1] != '/' && t[i][j - 1]);
			else
				t[i][j] = j > 0 && n[j - 1] == c && t[i - 1][j - 1];
		}
	return t[pl][nl];
}

START_TEST(test_match_random)
{
	static const char palpha[] = "ab/%*", nalpha[] = "aab/";
	unsigned seed = 12345;
	char p[16], n[200];
	int matched = 0;

	for (int iter = 0; iter < 20000; iter++) {
		size_t pl, nl;

		seed = seed * 1103515245u + 12345u;
		pl = seed >> 16 & 7;
		seed = seed * 1103515245u + 12345u;
		nl = (seed >> 16) % 150;
		for (size_t i = 0; i < pl; i++) {
			seed = seed * 1103515245u + 12345u;
			p[i] = palpha[(seed >> 16) % 5];
		}
		p[pl] = '\0';
		for (size_t i = 0; i < nl; i++) {
			seed = seed * 1103515245u + 12345u;
			n[i] = nalpha[(seed >> 16) % 4];
		}
		n[nl] = '\0';
		/* long names: make the match depend on the tail too */
		if (pl > 0 && nl > 64 && iter % 3 == 0)
			memset(n, 'a', nl - 3);
		ck_assert_msg(imap_list_match("", p, n) == ref_match(p, n),
		    "pattern %s name %s: want %d", p, n, ref_match(p, n));
		matched += ref_match(p, n);
	}
	ck_assert_int_gt(matched, 2000);     /* both answers were exercised */
	ck_assert_int_lt(matched, 18000);
}
END_TEST

/* ---- whole LIST / LSUB replies ---- */

/* RFC 5258 section 5, examples 2-5 (INBOX spelled so). */
static char *const fruit_folders[] = { "INBOX", "Fruit", "Fruit/Apple", "Fruit/Banana",
    "Tofu", "Vegetable", "Vegetable/Broccoli", "Vegetable/Corn", NULL };
static char *const fruit_subs[] = { "INBOX", "Fruit/Banana", "Fruit/Peach", "Vegetable",
    "Vegetable/Broccoli", NULL };
/* RFC 5258 section 5, example 8 */
static char *const foo_folders[] = { "foo", NULL };
static char *const foo_subs[] = { "foo/bar", NULL };
/* RFC 5258 section 5, example 9 */
static char *const music_folders[] = { "music/rock", "another_mailbox", NULL };
/* Postern's first-login set plus a rev1 8-bit name */
static char *const std_folders[] = { "INBOX", "Trash", "Sent", "Entwürfe", "Entwürfe/Alt",
    "Archive", NULL };
static char *const std_subs[] = { "Sent", "Entwürfe/Alt", NULL };
static char *const empty[] = { NULL };

static const struct {
	const char *cmd;
	char *const *folders, *const *subs;
	int utf8;
	const char *want;
} lists[] = {
	/* example 2 */
	{ "LIST (SUBSCRIBED) \"\" \"*\"", fruit_folders, fruit_subs, 0,
	  "* LIST (\\Subscribed) \"/\" INBOX\r\n"
	  "* LIST (\\Subscribed) \"/\" Fruit/Banana\r\n"
	  "* LIST (\\Subscribed \\NonExistent) \"/\" Fruit/Peach\r\n"
	  "* LIST (\\Subscribed) \"/\" Vegetable\r\n"
	  "* LIST (\\Subscribed) \"/\" Vegetable/Broccoli\r\n" },
	/* example 3 */
	{ "LIST () \"\" \"%\" RETURN (CHILDREN)", fruit_folders, fruit_subs, 0,
	  "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
	  "* LIST (\\HasChildren) \"/\" Fruit\r\n"
	  "* LIST (\\HasNoChildren) \"/\" Tofu\r\n"
	  "* LIST (\\HasChildren) \"/\" Vegetable\r\n" },
	/* example 5: RECURSIVEMATCH: parents of subscribed children that
	 * the pattern does not reach */
	{ "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)", fruit_folders,
	  fruit_subs, 0,
	  "* LIST (\\Subscribed \\HasNoChildren) \"/\" INBOX\r\n"
	  "* LIST (\\HasChildren) \"/\" Fruit (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
	  "* LIST (\\Subscribed \\HasChildren) \"/\" Vegetable (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n" },
	{ "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"*\"", fruit_folders, fruit_subs, 0,
	  "* LIST (\\Subscribed) \"/\" INBOX\r\n"
	  "* LIST (\\Subscribed) \"/\" Fruit/Banana\r\n"
	  "* LIST (\\Subscribed \\NonExistent) \"/\" Fruit/Peach\r\n"
	  "* LIST (\\Subscribed) \"/\" Vegetable\r\n"
	  "* LIST (\\Subscribed) \"/\" Vegetable/Broccoli\r\n" },
	{ "LIST (SUBSCRIBED) \"\" \"%\"", fruit_folders, fruit_subs, 0,
	  "* LIST (\\Subscribed) \"/\" INBOX\r\n"
	  "* LIST (\\Subscribed) \"/\" Vegetable\r\n" },
	{ "LIST \"\" \"Vegetable*\" RETURN (SUBSCRIBED)", fruit_folders, fruit_subs, 0,
	  "* LIST (\\Subscribed) \"/\" Vegetable\r\n"
	  "* LIST (\\Subscribed) \"/\" Vegetable/Broccoli\r\n"
	  "* LIST () \"/\" Vegetable/Corn\r\n" },
	{ "LIST Fruit/ %", fruit_folders, fruit_subs, 0,
	  "* LIST (\\HasNoChildren) \"/\" Fruit/Apple\r\n"
	  "* LIST (\\HasNoChildren) \"/\" Fruit/Banana\r\n" },
	{ "LIST \"\" (inbox Tofu \"\")", fruit_folders, fruit_subs, 0,
	  "* LIST () \"/\" INBOX\r\n"
	  "* LIST () \"/\" Tofu\r\n" },
	/* example 8 */
	{ "LIST \"\" (\"foo\")", foo_folders, foo_subs, 0,
	  "* LIST () \"/\" foo\r\n" },
	{ "LIST (SUBSCRIBED) \"\" \"foo/*\"", foo_folders, foo_subs, 0,
	  "* LIST (\\Subscribed \\NonExistent) \"/\" foo/bar\r\n" },
	{ "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" foo RETURN (CHILDREN)", foo_folders, foo_subs, 0,
	  "* LIST (\\HasNoChildren) \"/\" foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n" },
	/* example 9: a missing level of hierarchy */
	{ "LIST () \"\" %", music_folders, empty, 0,
	  "* LIST () \"/\" another_mailbox\r\n"
	  "* LIST (\\NonExistent) \"/\" music\r\n" },
	{ "LIST \"\" *", music_folders, empty, 0,
	  "* LIST (\\HasNoChildren) \"/\" another_mailbox\r\n"
	  "* LIST (\\HasNoChildren) \"/\" music/rock\r\n" },
	{ "LIST \"\" %", music_folders, empty, 0,
	  "* LIST (\\HasNoChildren) \"/\" another_mailbox\r\n"
	  "* LIST (\\Noselect \\HasChildren) \"/\" music\r\n" },
	/* the hierarchy delimiter request */
	{ "LIST \"\" \"\"", fruit_folders, fruit_subs, 0, "* LIST (\\Noselect) \"/\" \"\"\r\n" },
	{ "LIST Fruit/ \"\"", fruit_folders, fruit_subs, 0, "* LIST (\\Noselect) \"/\" \"\"\r\n" },
	{ "LIST \"\" \"\"", empty, empty, 1, "* LIST (\\Noselect) \"/\" \"\"\r\n" },
	/* LSUB, RFC 3501 6.3.9: an unsubscribed parent under '%' is \Noselect */
	{ "LSUB \"\" %", fruit_folders, fruit_subs, 0,
	  "* LSUB () \"/\" INBOX\r\n"
	  "* LSUB (\\Noselect) \"/\" Fruit\r\n"
	  "* LSUB () \"/\" Vegetable\r\n" },
	{ "LSUB \"\" *", fruit_folders, fruit_subs, 0,
	  "* LSUB () \"/\" INBOX\r\n"
	  "* LSUB () \"/\" Fruit/Banana\r\n"
	  "* LSUB () \"/\" Fruit/Peach\r\n"
	  "* LSUB () \"/\" Vegetable\r\n"
	  "* LSUB () \"/\" Vegetable/Broccoli\r\n" },
	{ "LSUB \"\" Fruit/%", fruit_folders, fruit_subs, 0,
	  "* LSUB () \"/\" Fruit/Banana\r\n"
	  "* LSUB () \"/\" Fruit/Peach\r\n" },
	{ "LSUB \"\" Tofu", fruit_folders, fruit_subs, 0, "" },
	/* plain LIST: children and special use, rev1 and rev2 names */
	{ "LIST \"\" *", std_folders, std_subs, 0,
	  "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
	  "* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n"
	  "* LIST (\\HasChildren) \"/\" Entw&APw-rfe\r\n"
	  "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe/Alt\r\n"
	  "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
	  "* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n" },
	{ "LIST \"\" \"Entwürfe/*\"", std_folders, std_subs, 1,
	  "* LIST (\\HasNoChildren) \"/\" \"Entwürfe/Alt\"\r\n" },
	{ "LIST \"\" \"Entw&APw-rfe\"", std_folders, std_subs, 0,
	  "* LIST (\\HasChildren) \"/\" Entw&APw-rfe\r\n" },
	{ "LIST (SPECIAL-USE) \"\" *", std_folders, std_subs, 0,
	  "* LIST (\\Archive) \"/\" Archive\r\n"
	  "* LIST (\\Sent) \"/\" Sent\r\n"
	  "* LIST (\\Trash) \"/\" Trash\r\n" },
	{ "LIST \"\" % RETURN (SPECIAL-USE SUBSCRIBED CHILDREN STATUS (MESSAGES))", std_folders,
	  std_subs, 1,
	  "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
	  "* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n"
	  "* LIST (\\HasChildren) \"/\" \"Entwürfe\"\r\n"
	  "* LIST (\\Subscribed \\HasNoChildren \\Sent) \"/\" Sent\r\n"
	  "* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n" },
	{ "LIST (SUBSCRIBED SPECIAL-USE) \"\" *", std_folders, std_subs, 0,
	  "* LIST (\\Subscribed \\Sent) \"/\" Sent\r\n" },
	{ "LIST \"\" nothing", std_folders, std_subs, 0, "" },
	{ "LIST \"\" *", empty, empty, 0, "" },
};

static void
list_reply(const char *cmd, size_t step, char *const *folders, char *const *subs, int utf8,
    struct buf *out)
{
	char line[256];
	struct imap_parser *p;
	struct imap_list_req r;
	struct imap_list_entry *e;
	const char *err = NULL;
	size_t n;

	snprintf(line, sizeof(line), "a %s\r\n", cmd);
	const struct imap_command *c = parse(line, step, &p);
	if (imap_list_parse(c, strcmp(c->name, "LSUB") == 0, utf8, &r, &err) != 0)
		ck_abort_msg("%s: %s", cmd, err);
	ck_assert_int_eq(imap_list_run(&r, folders, subs, imap_special_use, &e, &n), 0);
	buf_reset(out);
	for (size_t i = 0; i < n; i++)
		imap_list_write(out, &r, &e[i], utf8);
	imap_list_entries_free(&e, n);
	ck_assert_ptr_null(e);
	imap_list_req_free(&r);
	imap_parser_free(&p);
}

START_TEST(test_list_run)
{
	struct buf whole = BUF_INIT(0), trickled = BUF_INIT(0);

	list_reply(lists[_i].cmd, 0, lists[_i].folders, lists[_i].subs, lists[_i].utf8, &whole);
	ck_assert_msg(strcmp(buf_cstr(&whole), lists[_i].want) == 0, "%s:\ngot:\n%s\nwant:\n%s",
	    lists[_i].cmd, buf_cstr(&whole), lists[_i].want);
	list_reply(lists[_i].cmd, 1, lists[_i].folders, lists[_i].subs, lists[_i].utf8,
	    &trickled);
	ck_assert_str_eq(buf_cstr(&trickled), buf_cstr(&whole));
	buf_free(&whole);
	buf_free(&trickled);
}
END_TEST

START_TEST(test_special_use)
{
	ck_assert_uint_eq(imap_special_use("Sent"), IMAP_LA_SENT);
	ck_assert_uint_eq(imap_special_use("Drafts"), IMAP_LA_DRAFTS);
	ck_assert_uint_eq(imap_special_use("Trash"), IMAP_LA_TRASH);
	ck_assert_uint_eq(imap_special_use("Junk"), IMAP_LA_JUNK);
	ck_assert_uint_eq(imap_special_use("Archive"), IMAP_LA_ARCHIVE);
	ck_assert_uint_eq(imap_special_use("sent"), 0);
	ck_assert_uint_eq(imap_special_use("Sent/2024"), 0);
	ck_assert_uint_eq(imap_special_use("INBOX"), 0);
}
END_TEST

static Suite *
imap_list_suite(void)
{
	Suite *s = suite_create("imap_list");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_mailbox_arg, 0, sizeof(mbox_args) / sizeof(mbox_args[0]));
	tcase_add_test(tc, test_mailbox_long);
	tcase_add_test(tc, test_write_mailbox);
	tcase_add_test(tc, test_status);
	tcase_add_loop_test(tc, test_list_parse, 0, sizeof(list_args) / sizeof(list_args[0]));
	tcase_add_test(tc, test_match);
	tcase_add_test(tc, test_match_random);
	tcase_add_loop_test(tc, test_list_run, 0, sizeof(lists) / sizeof(lists[0]));
	tcase_add_test(tc, test_special_use);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(imap_list_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
