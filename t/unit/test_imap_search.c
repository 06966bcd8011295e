/*
 * test_imap_search - lib/proto/imap_search.c: every SEARCH key against
 * three messages whose views are set directly (an encoded-word subject
 * and sender with a base64 text body, a quoted-printable Latin-1 body, a
 * multipart whose attachment holds the searched word and must not
 * match), nested OR/NOT and the depth bound, CHARSET, ESEARCH and
 * SEARCHRES output bytes, MODSEQ, lazy loading. Commands are parsed from
 * bytes by the real parser, whole and one byte at a time.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap.h"
#include "proto/imap_search.h"
#include "proto/imap_search_int.h"
#include "proto/mime.h"
#include "store/index.h"

/* 2026-12-01 12:00 UTC and two days apart. */
#define DEC1 1796126400LL
#define DAY 86400LL

static const char msg1[] =
    "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Cc: carol@example.net\r\n"
    "Bcc: dave@example.com\r\n"
    "Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n"
    "Date: Thu, 3 Dec 2026 23:30:00 -0800\r\n"
    "Message-ID: <1@example.de>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "SGVsbG8sDQp0aGUgc2VjcmV0IHdvcmQgaXMgWmVicmEuDQo=\r\n";

static const char msg2[] =
    "From: alice@example.org\n"
    "To: juergen@example.de\n"
    "Subject: Re: Hello\n"
    "Date: Fri, 4 Dec 2026 08:00:00 +0000\n"
    "X-Custom: Foo\n"
    "  bar\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Un caf=E9 na=EFve pr=E8s de l'=C9cole,=\n"
    " merci.\n";

static const char msg3[] =
    "From: Eve <eve@example.net>\r\n"
    "To: bob@example.org\r\n"
    "Subject: report\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "Hello world, see the attachment.\r\n"
    "--b1\r\n"
    "Content-Type: application/octet-stream; name=\"z.bin\"\r\n"
    "Content-Disposition: attachment; filename*=UTF-8''%C3%89t%C3%A9.bin\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "WmVicmEgWmVicmEgYmluYXJ5IHN0dWZmDQo=\r\n"
    "--b1--\r\n";

static char *kw1[] = { "$Label1", NULL };
static char *kw2[] = { NULL };
static char *kw3[] = { "Work", NULL };

static struct imap_view views[3];
static struct mime_tree trees[3];
static int loads;
static int fail_load;

static int
load(struct imap_view *v, unsigned want, void *ctx)
{
	size_t i = (size_t)(uintptr_t)ctx;
	static const char *const msgs[] = { msg1, msg2, msg3 };
	static const size_t lens[] = { sizeof(msg1) - 1, sizeof(msg2) - 1,
		sizeof(msg3) - 1 };

	loads++;
	if (fail_load)
		return -1;
	v->data = msgs[i];
	v->len = lens[i];
	if ((want & IMAP_VIEW_TREE) && v->tree == NULL) {
		mime_parse(v->data, v->len, NULL, &trees[i]);
		v->tree = &trees[i];
	}
	return 0;
}

static void
setup(void)
{
	static const struct {
		uint32_t uid;
		unsigned flags;
		int recent;
		char **kw;
		uint64_t modseq, size;
		int64_t date;
	} f[3] = {
		{ 10, MBX_SEEN | MBX_ANSWERED, 0, kw1, 5, 1000, DEC1 },
		{ 11, MBX_SEEN | MBX_FLAGGED | MBX_DELETED, 1, kw2, 9, 2000, DEC1 + 2 * DAY },
		{ 12, MBX_DRAFT, 1, kw3, 7, 3000, DEC1 + 4 * DAY },
	};
	for (size_t i = 0; i < 3; i++) {
		memset(&views[i], 0, sizeof(views[i]));
		views[i].seq = (uint32_t)i + 1;
		views[i].uid = f[i].uid;
		views[i].flags = f[i].flags;
		views[i].recent = f[i].recent;
		views[i].keywords = f[i].kw;
		views[i].modseq = f[i].modseq;
		views[i].size = f[i].size;
		views[i].internaldate = f[i].date;
		views[i].load = load;
		views[i].load_ctx = (void *)(uintptr_t)i;
	}
	loads = 0;
	fail_load = 0;
}

static void
teardown(void)
{
	for (size_t i = 0; i < 3; i++)
		mime_tree_free(&trees[i]);
}

static struct imap_parser *parser;

/* Parse one command line, whole or one byte at a time. */
static const struct imap_command *
parse_cmd(const char *line, size_t len, int trickle)
{
	size_t off = 0, used;

	imap_parser_free(&parser);
	parser = imap_parser_new(NULL);
	while (off < len) {
		size_t chunk = trickle ? 1 : len - off;
		enum imap_result r = imap_parse(parser, line + off, chunk, &used);
		off += used;
		if (r == IMAP_DONE)
			return imap_parser_command(parser);
		ck_assert_msg(r == IMAP_NEED_MORE, "parse %s: %d %s", line, r,
		    imap_parser_error(parser));
	}
	ck_abort_msg("incomplete command %s", line);
	return NULL;
}

static struct imap_seqset saved;
static const struct imap_search_env env_default = { 3, 12, NULL, 0 };

/* Run "a SEARCH keys" (k = 0) over the three views and return the reply
 * bytes, "BAD reason", "NO reason" or "LOADFAIL". */
static char *
run_env(const char *keys, const struct imap_search_env *env, int trickle,
    int uid, unsigned *needs_r)
{
	char line[4096];
	int len = snprintf(line, sizeof(line), "a SEARCH %s\r\n", keys);
	const struct imap_command *c = parse_cmd(line, (size_t)len, trickle);
	struct imap_search *s = NULL;
	const char *err = NULL;
	struct buf out = BUF_INIT(0);

	int rc = imap_search_parse(c, 0, env, 1, 0, &s, &err);
	if (rc < 0) {
		ck_assert_ptr_null(s);
		buf_printf(&out, "%s %s", rc == -1 ? "BAD" : "NO", err);
		return buf_steal(&out);
	}
	if (needs_r)
		*needs_r = imap_search_needs(s);
	struct imap_view *m[3];
	size_t n = 0;
	for (size_t i = 0; i < 3; i++) {
		int r = imap_search_match(s, &views[i]);
		if (r < 0) {
			buf_puts(&out, "LOADFAIL");
			imap_search_free(&s);
			return buf_steal(&out);
		}
		if (r)
			m[n++] = &views[i];
	}
	imap_search_write(s, "a", uid, m, n, &out);
	if (imap_search_return(s) & IMAP_SR_SAVE) {
		imap_seqset_free(&saved);
		imap_search_saved(s, m, n, &saved);
	}
	imap_search_free(&s);
	if (out.data == NULL)
		buf_puts(&out, "");
	return buf_steal(&out);
}

static char *
run(const char *keys)
{
	return run_env(keys, &env_default, 0, 0, NULL);
}

static const struct {
	const char *keys;
	const char *want;
} cases[] = {
	{ "ALL", "1 2 3" },
	{ "ANSWERED", "1" },
	{ "UNANSWERED", "2 3" },
	{ "BCC dave", "1" },
	{ "BEFORE 3-Dec-2026", "1" },
	{ "ON 3-Dec-2026", "2" },
	{ "ON 03-Dec-2026", "2" },
	{ "SINCE 3-Dec-2026", "2 3" },
	{ "SINCE \"5-DEC-2026\"", "3" },
	{ "BODY zebra", "1" },              /* not 3's application part */
	{ "BODY \"SECRET WORD\"", "1" },
	{ "BODY {6+}\r\n\xc3\x89" "COLE", "2" },   /* É vs é: Latin-1 QP */
	{ "BODY {5+}\r\nCAF\xc3\x89", "2" },
	{ "BODY \"na\xc3\xafve pr\"", "2" },
	{ "BODY \"cole,merci\"", "" },      /* soft break joins "cole, merci" */
	{ "BODY \"cole, merci\"", "2" },
	{ "BODY \"hello world\"", "3" },
	{ "BODY z.bin", "" },
	{ "BODY \"\"", "1 2 3" },
	{ "CC carol", "1" },
	{ "DELETED", "2" },
	{ "UNDELETED", "1 3" },
	{ "DRAFT", "3" },
	{ "UNDRAFT", "1 2" },
	{ "FLAGGED", "2" },
	{ "UNFLAGGED", "1 3" },
	{ "FROM {7+}\r\nJ\xc3\x9cRGEN", "1" },   /* decoded encoded word, Ü/ü */
	{ "FROM example.net", "3" },
	{ "FROM juergen", "1" },
	{ "HEADER X-Custom \"foo bar\"", "" },   /* unfolding keeps both blanks */
	{ "HEADER X-Custom \"foo  bar\"", "2" },
	{ "HEADER x-custom \"\"", "2" },
	{ "HEADER Message-ID 1@EXAMPLE", "1" },
	{ "KEYWORD $Label1", "1" },
	{ "KEYWORD $label1", "1" },
	{ "UNKEYWORD $Label1", "2 3" },
	{ "KEYWORD Nope", "" },
	{ "LARGER 1500", "2 3" },
	{ "SMALLER 1500", "1" },
	{ "LARGER 3000", "" },
	{ "NEW", "3" },
	{ "OLD", "1" },
	{ "RECENT", "2 3" },
	{ "SEEN", "1 2" },
	{ "UNSEEN", "3" },
	{ "NOT SEEN", "3" },
	{ "NOT NOT SEEN", "1 2" },
	{ "OR ANSWERED DRAFT", "1 3" },
	{ "OR (SEEN FLAGGED) NOT RECENT", "1 2" },
	{ "NOT (OR SEEN DRAFT)", "" },
	{ "OR OR ANSWERED DRAFT FLAGGED", "1 2 3" },
	{ "(SEEN FLAGGED)", "2" },
	{ "((((SEEN)))) ((UNDELETED))", "1" },
	{ "SENTBEFORE 4-Dec-2026", "1" },       /* date as written, not UTC */
	{ "SENTON 3-Dec-2026", "1" },
	{ "SENTON 4-Dec-2026", "2" },
	{ "SENTON 5-Dec-2026", "3" },           /* no Date: INTERNALDATE */
	{ "SENTSINCE 4-Dec-2026", "2 3" },
	{ "SUBJECT {7+}\r\ngr\xc3\xbc\xc3\x9f" "e", "1" },
	{ "SUBJECT {5+}\r\nK\xc3\x96LN", "1" },
	{ "SUBJECT hello", "2" },
	{ "SUBJECT =?ISO", "" },
	{ "TEXT zebra", "1" },
	{ "TEXT x-custom", "2" },               /* header text */
	{ "TEXT \"hello world\"", "3" },
	{ "TEXT eve", "3" },
	/* TEXT sees the headers of the parts, and file names decoded. */
	{ "TEXT z.bin", "3" },
	{ "TEXT application/octet-stream", "3" },
	{ "TEXT {9+}\r\n\xc3\xa9t\xc3\xa9.bin", "3" },
	{ "BODY application/octet-stream", "" },
	{ "TEXT text/plain", "1 2 3" },
	{ "TO bob", "1 3" },
	{ "TO juergen", "2" },
	{ "UID 11:12", "2 3" },
	{ "UID *", "3" },
	{ "UID 12:100", "3" },
	{ "UID 1:9", "" },
	{ "1:2", "1 2" },
	{ "*", "3" },
	{ "2,3", "2 3" },
	{ "3:*", "3" },
	{ "5", "" },
	{ "1:* UNSEEN", "3" },
	{ "MODSEQ 7", "2 3 (MODSEQ 9)" },
	{ "MODSEQ \"/flags/\\\\draft\" all 8", "2 (MODSEQ 9)" },
	{ "MODSEQ 100", "" },
	{ "CHARSET UTF-8 BODY zebra", "1" },
	{ "CHARSET us-ascii SEEN", "1 2" },
	{ "charset utf-8 seen", "1 2" },
	/* another charset: the strings are converted to UTF-8 */
	{ "CHARSET ISO-8859-1 SEEN", "1 2" },
	{ "CHARSET ISO-8859-1 TEXT {7+}\r\n\xe9t\xe9.bin", "3" },
	{ "CHARSET windows-1252 TEXT {7+}\r\n\xc9T\xc9.BIN", "3" },
	{ "CHARSET KOI8-R BODY x", "" },
	{ "CHARSET X-NOPE BODY x", "NO Unsupported charset" },
	{ "CHARSET \"UTF-8//IGNORE\" BODY x", "NO Unsupported charset" },
	{ "CHARSET ASCII BODY {1+}\r\n\xff", "BAD Search string is not in the given charset" },
	{ "FOO", "BAD Unknown search key" },
	{ "OR SEEN", "BAD Missing search key" },
	{ "NOT", "BAD Missing search key" },
	{ "LARGER x", "BAD Invalid number" },
	{ "LARGER 99999999999999999999999", "BAD Invalid number" },
	{ "BEFORE 32-Foo-2026", "BAD Invalid date" },
	{ "BEFORE 3-Dec-26", "BAD Invalid date" },
	{ "SUBJECT", "BAD Missing search string" },
	{ "HEADER Subject", "BAD Missing search string" },
	{ "HEADER \"\" x", "BAD Invalid header field name" },
	{ "()", "BAD Missing search key" },
	{ "UID foo", "BAD Invalid UID set" },
	{ "1:x", "BAD Unknown search key" },
	{ "1,,2", "BAD Invalid sequence set" },
	{ "MODSEQ", "BAD Invalid MODSEQ value" },
	{ "MODSEQ \"/flags/x\" bogus 1", "BAD Invalid MODSEQ entry type" },
	{ "CHARSET", "BAD Missing charset" },
	{ "RETURN", "BAD RETURN needs a list" },
	{ "RETURN (FOO) ALL", "BAD Unknown RETURN option" },
	/* ESEARCH (RFC 4731) */
	{ "RETURN (MIN MAX COUNT ALL) UNDRAFT",
	    "* ESEARCH (TAG \"a\") MIN 1 MAX 2 COUNT 2 ALL 1:2\r\n" },
	{ "RETURN () ALL", "* ESEARCH (TAG \"a\") ALL 1:3\r\n" },
	{ "RETURN (ALL) OR ANSWERED DRAFT", "* ESEARCH (TAG \"a\") ALL 1,3\r\n" },
	{ "RETURN (COUNT) KEYWORD Nope", "* ESEARCH (TAG \"a\") COUNT 0\r\n" },
	{ "RETURN (MIN MAX ALL) KEYWORD Nope", "* ESEARCH (TAG \"a\")\r\n" },
	{ "RETURN (MAX) MODSEQ 1", "* ESEARCH (TAG \"a\") MAX 3 MODSEQ 7\r\n" },
	{ "RETURN (COUNT) MODSEQ 1", "* ESEARCH (TAG \"a\") COUNT 3 MODSEQ 9\r\n" },
	{ "RETURN (SAVE) SEEN", "=" },     /* SAVE alone: no reply */
	{ "RETURN (SAVE COUNT) SEEN", "* ESEARCH (TAG \"a\") COUNT 2\r\n" },
	{ "RETURN (MIN) CHARSET UTF-8 SEEN", "* ESEARCH (TAG \"a\") MIN 1\r\n" },
};

static char *
want_reply(const char *want)
{
	struct buf b = BUF_INIT(0);

	if (strcmp(want, "=") == 0)
		buf_puts(&b, "");
	else if (strncmp(want, "BAD ", 4) == 0 || strncmp(want, "NO ", 3) == 0
	    || strncmp(want, "* ", 2) == 0) {
		buf_puts(&b, want);
	} else {
		buf_puts(&b, "* SEARCH");
		if (*want)
			buf_printf(&b, " %s", want);
		buf_puts(&b, "\r\n");
	}
	return buf_steal(&b);
}

START_TEST(test_keys)
{
	for (int trickle = 0; trickle < 2; trickle++) {
		setup();
		char *got = run_env(cases[_i].keys, &env_default, trickle, 0, NULL);
		char *want = want_reply(cases[_i].want);
		ck_assert_msg(strcmp(got, want) == 0, "SEARCH %s: got [%s] want [%s]",
		    cases[_i].keys, got, want);
		free(got);
		free(want);
		teardown();
	}
}
END_TEST

START_TEST(test_uid_esearch)
{
	setup();
	char *got = run_env("RETURN (MIN MAX COUNT ALL) UNDRAFT", &env_default, 0, 1, NULL);
	ck_assert_str_eq(got, "* ESEARCH (TAG \"a\") UID MIN 10 MAX 11 COUNT 2 ALL 10:11\r\n");
	free(got);
	got = run_env("UID 10,12", &env_default, 0, 1, NULL);
	ck_assert_str_eq(got, "* SEARCH 10 12\r\n");
	free(got);
	teardown();
}
END_TEST

/* IMAP4rev2 sessions get ESEARCH for a plain SEARCH; RETURN is kept. */
START_TEST(test_rev2)
{
	const struct imap_command *c = parse_cmd("a SEARCH UNDRAFT\r\n", 18, 0);
	struct imap_search *s;
	const char *err;
	struct buf out = BUF_INIT(0);
	struct imap_view *m[2];

	setup();
	m[0] = &views[0];
	m[1] = &views[1];
	ck_assert_int_eq(imap_search_parse(c, 0, &env_default, 1, 0, &s, &err), 0);
	imap_search_rev2(s);
	imap_search_write(s, "a", 1, m, 2, &out);
	ck_assert_str_eq(buf_cstr(&out), "* ESEARCH (TAG \"a\") UID ALL 10:11\r\n");
	imap_search_free(&s);
	buf_reset(&out);
	c = parse_cmd("a SEARCH RETURN (COUNT) UNDRAFT\r\n", 33, 0);
	ck_assert_int_eq(imap_search_parse(c, 0, &env_default, 1, 0, &s, &err), 0);
	imap_search_rev2(s);
	imap_search_write(s, "a", 0, m, 2, &out);
	ck_assert_str_eq(buf_cstr(&out), "* ESEARCH (TAG \"a\") COUNT 2\r\n");
	imap_search_free(&s);
	buf_free(&out);
	teardown();
}
END_TEST

/* RFC 5182: RETURN (SAVE) keeps the UIDs; "$" then names them, for
 * sequence and UID keys alike; SAVE with MIN keeps just the minimum. */
START_TEST(test_searchres)
{
	setup();
	char *got = run("RETURN (SAVE) OR ANSWERED DRAFT");
	ck_assert_str_eq(got, "");
	free(got);
	ck_assert_uint_eq(saved.n, 2);
	ck_assert_uint_eq(saved.r[0].lo, 10);
	ck_assert_uint_eq(saved.r[1].lo, 12);
	struct imap_search_env env = env_default;
	env.saved = &saved;
	got = run_env("$", &env, 0, 0, NULL);
	ck_assert_str_eq(got, "* SEARCH 1 3\r\n");
	free(got);
	got = run_env("UID $ DRAFT", &env, 0, 0, NULL);
	ck_assert_str_eq(got, "* SEARCH 3\r\n");
	free(got);
	got = run_env("NOT $", &env, 0, 0, NULL);
	ck_assert_str_eq(got, "* SEARCH 2\r\n");
	free(got);
	/* "$" with nothing saved is empty. */
	got = run("$");
	ck_assert_str_eq(got, "* SEARCH\r\n");
	free(got);
	got = run("RETURN (SAVE MIN) ALL");
	ck_assert_str_eq(got, "* ESEARCH (TAG \"a\") MIN 1\r\n");
	free(got);
	ck_assert_uint_eq(saved.n, 1);
	ck_assert_uint_eq(saved.r[0].lo, 10);
	ck_assert_uint_eq(saved.r[0].hi, 10);
	got = run("RETURN (SAVE) ALL");
	free(got);
	ck_assert_uint_eq(saved.n, 1);
	ck_assert_uint_eq(saved.r[0].lo, 10);
	ck_assert_uint_eq(saved.r[0].hi, 12);
	imap_seqset_free(&saved);
	teardown();
}
END_TEST

START_TEST(test_depth)
{
	char keys[512] = "", *p = keys;

	setup();
	for (int i = 0; i < IMAP_SEARCH_DEPTH_MAX; i++)
		p += sprintf(p, "NOT ");
	strcpy(p, "SEEN");
	char *got = run(keys);
	ck_assert_str_eq(got, "* SEARCH 1 2\r\n");
	free(got);
	p = keys;
	for (int i = 0; i <= IMAP_SEARCH_DEPTH_MAX; i++)
		p += sprintf(p, "NOT ");
	strcpy(p, "SEEN");
	got = run(keys);
	ck_assert_str_eq(got, "BAD Search keys nested too deeply");
	free(got);
	/* OR chains nest as deep as NOT. */
	p = keys;
	for (int i = 0; i < 40; i++)
		p += sprintf(p, "OR SEEN ");
	strcpy(p, "DRAFT");
	got = run(keys);
	ck_assert_str_eq(got, "BAD Search keys nested too deeply");
	free(got);
	/* Parentheses inside NOT count too. */
	p = keys;
	for (int i = 0; i < 20; i++)
		p += sprintf(p, "NOT (");
	p += sprintf(p, "SEEN");
	for (int i = 0; i < 20; i++)
		*p++ = ')';
	*p = '\0';
	got = run(keys);
	ck_assert_str_eq(got, "BAD Search keys nested too deeply");
	free(got);
	teardown();
}
END_TEST

/* Flag, size, date, UID and MODSEQ keys never load a message; text keys
 * load only the messages the cheap keys let through. */
START_TEST(test_needs)
{
	static const struct {
		const char *keys;
		unsigned needs;
	} t[] = {
		{ "SEEN UNSEEN ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT", 0 },
		{ "LARGER 1 SMALLER 9 BEFORE 1-Jan-2030 ON 1-Jan-2026 SINCE 1-Jan-2000", 0 },
		{ "UID 1:* 1:* KEYWORD a UNKEYWORD b MODSEQ 1 ALL NOT OR SEEN DRAFT", 0 },
		{ "SUBJECT x", IMAP_VIEW_DATA },
		{ "HEADER a b", IMAP_VIEW_DATA },
		{ "SENTON 1-Jan-2026", IMAP_VIEW_DATA },
		{ "NOT (SEEN BODY x)", IMAP_VIEW_DATA | IMAP_VIEW_TREE },
		{ "OR SEEN TEXT x", IMAP_VIEW_DATA | IMAP_VIEW_TREE },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		unsigned needs = 99;
		setup();
		char *got = run_env(t[i].keys, &env_default, 0, 0, &needs);
		ck_assert_msg(strncmp(got, "BAD", 3) != 0, "%s: %s", t[i].keys, got);
		ck_assert_msg(needs == t[i].needs, "%s: needs %u", t[i].keys, needs);
		if (needs == 0)
			ck_assert_int_eq(loads, 0);
		free(got);
		teardown();
	}
	setup();
	char *got = run("BODY zebra SEEN");
	ck_assert_str_eq(got, "* SEARCH 1\r\n");
	ck_assert_int_eq(loads, 2);     /* message 3 is unseen: never read */
	free(got);
	teardown();
	setup();
	fail_load = 1;
	got = run("SUBJECT x");
	ck_assert_str_eq(got, "LOADFAIL");
	free(got);
	got = run("TEXT x");
	ck_assert_str_eq(got, "LOADFAIL");
	free(got);
	got = run("SENTON 1-Jan-2026");
	ck_assert_str_eq(got, "LOADFAIL");
	free(got);
	teardown();
}
END_TEST

START_TEST(test_charset_utf8_accept)
{
	struct imap_search_env env = env_default;

	env.utf8 = 1;
	setup();
	char *got = run_env("CHARSET UTF-8 SEEN", &env, 0, 0, NULL);
	ck_assert_str_eq(got, "BAD CHARSET is not allowed after ENABLE UTF8=ACCEPT");
	free(got);
	got = run_env("SUBJECT {5+}\r\nK\xc3\x96LN", &env, 0, 0, NULL);
	ck_assert_str_eq(got, "* SEARCH 1\r\n");
	free(got);
	teardown();
}
END_TEST

/* "*" with an empty mailbox, and UID ranges past the last UID. */
START_TEST(test_sets)
{
	struct imap_search_env env = { 0, 0, NULL, 0 };

	setup();
	char *got = run_env("*", &env, 0, 0, NULL);
	ck_assert_str_eq(got, "* SEARCH\r\n");
	free(got);
	teardown();
}
END_TEST

START_TEST(test_casemap)
{
	static const struct {
		const char *in, *lower, *upper;
	} t[] = {
		{ "AbC", "abc", "ABC" },
		{ "\xc3\x84\xc3\xb6\xc3\x9f", "\xc3\xa4\xc3\xb6\xc3\x9f", "\xc3\x84\xc3\x96\xc3\x9f" },
		{ "\xc5\x81\xc3\xb3" "d\xc5\xba", "\xc5\x82\xc3\xb3" "d\xc5\xba", "\xc5\x81\xc3\x93" "D\xc5\xb9" },
		{ "\xce\xa3\xcf\x89", "\xcf\x83\xcf\x89", "\xce\xa3\xce\xa9" },
		{ "\xd0\x96\xd1\x91", "\xd0\xb6\xd1\x91", "\xd0\x96\xd0\x81" },
		{ "\xff\xc3(", "\xff\xc3(", "\xff\xc3(" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct buf b = BUF_INIT(0);
		imap_casemap(t[i].in, strlen(t[i].in), &b, 0);
		ck_assert_str_eq(buf_cstr(&b), t[i].lower);
		buf_reset(&b);
		imap_casemap(t[i].in, strlen(t[i].in), &b, 1);
		ck_assert_str_eq(buf_cstr(&b), t[i].upper);
		buf_free(&b);
	}
}
END_TEST

START_TEST(test_dates)
{
	static const struct {
		const char *s;
		int rc;
		int64_t day, utc;
	} t[] = {
		{ "Thu, 3 Dec 2026 23:30:00 -0800", 0, 20790, 20791 * 86400LL + 7 * 3600 + 1800 },
		{ "3 Dec 2026 23:30 +0100", 0, 20790, 20790 * 86400LL + 22 * 3600 + 1800 },
		{ "Thu (comment), 03 Dec 26 10:00:00 GMT", 0, 20790, 20790 * 86400LL + 10 * 3600 },
		{ "1 Jan 1970 00:00:00 EST", 0, 0, 5 * 3600 },
		{ "29 Feb 2000", 0, 11016, 11016 * 86400LL },
		{ "Thu, Dec 3 2026", -1, 0, 0 },
		{ "", -1, 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		int64_t day = -1, utc = -1;
		int rc = imap_rfc5322_date(t[i].s, strlen(t[i].s), &day, &utc);
		ck_assert_msg(rc == t[i].rc, "%s: rc %d", t[i].s, rc);
		if (rc == 0) {
			ck_assert_msg(day == t[i].day, "%s: day %lld", t[i].s, (long long)day);
			ck_assert_msg(utc == t[i].utc, "%s: utc %lld", t[i].s, (long long)utc);
		}
	}
	ck_assert_int_eq(imap_days_from_civil(1970, 1, 1), 0);
	ck_assert_int_eq(imap_days_from_civil(1969, 12, 31), -1);
	ck_assert_int_eq(imap_days_from_civil(2026, 12, 1) * 86400, DEC1 - 12 * 3600);
}
END_TEST

static Suite *
search_suite(void)
{
	Suite *s = suite_create("imap_search");
	TCase *tc = tcase_create("search");

	tcase_add_loop_test(tc, test_keys, 0, ARRAY_SIZE(cases));
	tcase_add_test(tc, test_uid_esearch);
	tcase_add_test(tc, test_searchres);
	tcase_add_test(tc, test_rev2);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_needs);
	tcase_add_test(tc, test_charset_utf8_accept);
	tcase_add_test(tc, test_sets);
	tcase_add_test(tc, test_casemap);
	tcase_add_test(tc, test_dates);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(search_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	imap_parser_free(&parser);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
