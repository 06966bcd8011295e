/*
 * test_imap_fetch - lib/proto/imap_fetch.c: FETCH commands are parsed from
 * bytes by the IMAP command parser (fed one byte at a time), then written
 * against views whose data and tree are set directly (or loaded through a
 * counting load() callback). Replies are compared byte for byte.
 *
 * Where the expected strings come from: RFC 3501 6.4.5 / 7.4.2, RFC 9051
 * 6.4.5 / 7.5.2 and RFC 3516 by hand, then checked against Dovecot 2.3.19
 * (imap in PREAUTH mode over a throwaway Maildir holding the same files):
 * every section, partial, HEADER.FIELDS(.NOT), BINARY and BINARY.SIZE
 * answer below has the bytes Dovecot sent, except on purpose:
 *  - an empty string is "" (Dovecot: {0}\r\n): both are an nstring;
 *  - the HEADER.FIELDS list is echoed as the client wrote it (Dovecot
 *    upper-cases the names);
 *  - BINARY uses a literal8 only when the bytes hold a NUL (Dovecot
 *    always does), as RFC 3516 4.3 allows;
 *  - BINARY[] is the whole message as BODY[] gives it (Dovecot decodes
 *    every part and rewrites their Content-Transfer-Encoding fields);
 *  - BODY / BODYSTRUCTURE defaults in upper case (see test_mime.c).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap_fetch.h"
#include "proto/mime.h"
#include "test_data.h"
#include "store/index.h"

static char *const no_keywords[] = { NULL };

struct msg {
	char *data;
	size_t len;
	struct mime_tree tree;
	struct imap_view v;
};

static void
msg_bytes(struct msg *m, const char *data, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->data = malloc(len + 1);
	memcpy(m->data, data, len);
	m->len = len;
	mime_parse(m->data, len, NULL, &m->tree);
	m->v = (struct imap_view){
		.seq = 7, .uid = 42, .keywords = no_keywords, .modseq = 5,
		.size = mime_wire_size(data, len), .internaldate = 1796465200,
		.data = m->data, .len = len, .tree = &m->tree,
	};
}

static void
msg_file(struct msg *m, const char *name)
{
	size_t len;
	char *b = test_data_load("mime", name, &len);

	msg_bytes(m, b, len);
	free(b);
}

static void
msg_free(struct msg *m)
{
	mime_tree_free(&m->tree);
	free(m->data);
}

/* Parse "tag FETCH ..." / "tag UID FETCH ..." (CRLF added), one byte at a
 * time, into req. 0, or -1 with *err_r. */
static int
parse_fetch(const char *line, struct imap_fetch_req *req, const char **err_r)
{
	static const struct imap_limits lim = IMAP_LIMITS_DEFAULT;
	struct imap_parser *p = imap_parser_new(&lim);
	char *full = malloc(strlen(line) + 3);
	enum imap_result r = IMAP_NEED_MORE;
	size_t i = 0, n = strlen(line) + 2, used;

	sprintf(full, "%s\r\n", line);
	while (i < n && r == IMAP_NEED_MORE) {
		r = imap_parse(p, full + i, 1, &used);
		i += used;
	}
	ck_assert_msg(r == IMAP_DONE, "command not parsed: %s", line);
	const struct imap_command *c = imap_parser_command(p);
	int uid = strcmp(c->name, "UID") == 0;
	int rc = imap_fetch_parse(c, uid ? 2 : 1, uid, req, err_r);
	imap_parser_free(&p);
	free(full);
	return rc;
}

/* The reply to line for v, in out (reset first); the write's result. */
static int
run(const char *line, struct imap_view *v, unsigned opts, struct buf *out)
{
	struct imap_fetch_req req;
	const char *err;

	buf_reset(out);
	ck_assert_msg(parse_fetch(line, &req, &err) == 0, "%s: BAD %s", line, err);
	int rc = imap_fetch_write(&req, v, opts, out, &err);
	imap_fetch_req_free(&req);
	return rc;
}

static void
want_bytes(const struct buf *got, const char *want, size_t wlen,
    const char *line)
{
	ck_assert_msg(got->len == wlen && memcmp(got->data, want, wlen) == 0,
	    "%s:\n got '%.*s'\nwant '%.*s'", line, (int)got->len,
	    got->data ? got->data : "", (int)wlen, want);
}

static void
check(const char *line, struct imap_view *v, unsigned opts, const char *want)
{
	struct buf out = BUF_INIT(0);

	ck_assert_int_eq(run(line, v, opts, &out), 0);
	want_bytes(&out, want, strlen(want), line);
	buf_free(&out);
}

/* Walk a reply as a client would (literals skipped by their count): it
 * must be one "* n FETCH (...)\r\n" with balanced parentheses. */
static void
check_framing(const struct buf *b, const char *what)
{
	size_t i = 0;
	int depth = 0, quoted = 0;

	ck_assert_msg(b->len > 4 && memcmp(b->data, "* ", 2) == 0, "%s", what);
	while (i < b->len) {
		char c = b->data[i];
		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = 0;
			i++;
			continue;
		}
		if (c == '{') {
			char *end;
			unsigned long long n = strtoull(b->data + i + 1, &end, 10);
			ck_assert_msg(*end == '}' && end[1] == '\r' && end[2] == '\n',
			    "%s: bad literal at %zu", what, i);
			i = (size_t)(end + 3 - b->data);
			ck_assert_msg(n <= b->len - i, "%s: literal too long", what);
			i += n;
			continue;
		}
		if (c == '"')
			quoted = 1;
		else if (c == '(')
			depth++;
		else if (c == ')')
			ck_assert_msg(--depth >= 0, "%s: unbalanced at %zu", what, i);
		else if (c == '\r') {
			ck_assert_msg(i + 2 == b->len && b->data[i + 1] == '\n'
			    && depth == 0, "%s: CRLF inside the reply at %zu", what, i);
			return;
		}
		i++;
	}
	ck_abort_msg("%s: no final CRLF", what);
}

/* --- A simple message ------------------------------------------------------ */

#define SIMPLE_HDR \
	"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n" \
	"From: Fred Foobar <foobar@Blurdybloop.example>\r\n" \
	"Subject: afternoon meeting\r\n" \
	"To: mooch@owatagu.siam.edu.example\r\n" \
	"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n" \
	"MIME-Version: 1.0\r\n" \
	"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n" \
	"\r\n"
#define SIMPLE_TEXT "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
#define SIMPLE_ENV \
	"(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" ((\"Fred " \
	"Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL" \
	" \"foobar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foobar\" " \
	"\"Blurdybloop.example\")) ((NIL NIL \"mooch\" \"owatagu.siam.edu.examp" \
	"le\")) NIL NIL NIL \"<B27397-0100000@Blurdybloop.example>\")"

static const struct {
	const char *line, *want;
} simple_cases[] = {
	{ "a FETCH 7 (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)",
	    "* 7 FETCH (UID 42 FLAGS (\\Flagged \\Seen \\Recent $Label1 Work) "
	    "INTERNALDATE \"05-Dec-2026 10:06:40 +0000\" RFC822.SIZE 320 "
	    "MODSEQ (5))\r\n" },
	{ "a FETCH 7 FAST",
	    "* 7 FETCH (FLAGS (\\Flagged \\Seen \\Recent $Label1 Work) "
	    "INTERNALDATE \"05-Dec-2026 10:06:40 +0000\" RFC822.SIZE 320)\r\n" },
	{ "a FETCH 7 all",
	    "* 7 FETCH (FLAGS (\\Flagged \\Seen \\Recent $Label1 Work) "
	    "INTERNALDATE \"05-Dec-2026 10:06:40 +0000\" RFC822.SIZE 320 "
	    "ENVELOPE " SIMPLE_ENV ")\r\n" },
	{ "a FETCH 7 FULL",
	    "* 7 FETCH (FLAGS (\\Flagged \\Seen \\Recent $Label1 Work) "
	    "INTERNALDATE \"05-Dec-2026 10:06:40 +0000\" RFC822.SIZE 320 "
	    "ENVELOPE " SIMPLE_ENV " BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	    "\"US-ASCII\") NIL NIL \"7BIT\" 55 1))\r\n" },
	{ "a FETCH 7 BODYSTRUCTURE",
	    "* 7 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\")"
	    " NIL NIL \"7BIT\" 55 1 NIL NIL NIL NIL))\r\n" },
	/* UID FETCH: UID comes first, once. */
	{ "a UID FETCH 42 (FLAGS UID)",
	    "* 7 FETCH (UID 42 FLAGS (\\Flagged \\Seen \\Recent $Label1 Work))\r\n" },
	{ "a FETCH 7 (FLAGS flags Flags)",
	    "* 7 FETCH (FLAGS (\\Flagged \\Seen \\Recent $Label1 Work))\r\n" },
	{ "a FETCH 7 BODY[]",
	    "* 7 FETCH (BODY[] {320}\r\n" SIMPLE_HDR SIMPLE_TEXT ")\r\n" },
	{ "a FETCH 7 RFC822",
	    "* 7 FETCH (RFC822 {320}\r\n" SIMPLE_HDR SIMPLE_TEXT ")\r\n" },
	{ "a FETCH 7 (RFC822.HEADER RFC822.TEXT)",
	    "* 7 FETCH (RFC822.HEADER {265}\r\n" SIMPLE_HDR " RFC822.TEXT {55}\r\n"
	    SIMPLE_TEXT ")\r\n" },
	{ "a FETCH 7 (BODY.PEEK[HEADER] BODY[TEXT] BODY.PEEK[1] body[1.mime])",
	    "* 7 FETCH (BODY[HEADER] {265}\r\n" SIMPLE_HDR " BODY[TEXT] {55}\r\n"
	    SIMPLE_TEXT " BODY[1] {55}\r\n" SIMPLE_TEXT " BODY[1.MIME] {265}\r\n"
	    SIMPLE_HDR ")\r\n" },
	/* A single-part message has no part 2, and part 1 is no message. */
	{ "a FETCH 7 (BODY[2] BODY[1.1] BODY[1.TEXT] BINARY[2] BINARY.SIZE[2])",
	    "* 7 FETCH (BODY[2] \"\" BODY[1.1] \"\" BODY[1.TEXT] \"\" "
	    "BINARY[2] \"\" BINARY.SIZE[2] 0)\r\n" },
	{ "a FETCH 7 (BINARY.PEEK[1] BINARY.SIZE[1])",
	    "* 7 FETCH (BINARY[1] {55}\r\n" SIMPLE_TEXT " BINARY.SIZE[1] 55)\r\n" },
	{ "a FETCH 7 BODY.PEEK[HEADER.FIELDS (subject X-None FROM)]",
	    "* 7 FETCH (BODY[HEADER.FIELDS (subject X-None FROM)] {78}\r\n"
	    "From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
	    "Subject: afternoon meeting\r\n\r\n)\r\n" },
	{ "a FETCH 7 BODY.PEEK[header.fields.not (\"Message-Id\" Date To From "
	    "MIME-Version Content-Type)]",
	    "* 7 FETCH (BODY[HEADER.FIELDS.NOT (\"Message-Id\" Date To From "
	    "MIME-Version Content-Type)] {30}\r\n"
	    "Subject: afternoon meeting\r\n\r\n)\r\n" },
	{ "a FETCH 7 (BODY[HEADER.FIELDS (X-None)])",
	    "* 7 FETCH (BODY[HEADER.FIELDS (X-None)] {2}\r\n\r\n)\r\n" },
	/* Partials: offsets and counts in the CRLF form, reply named <o>. */
	{ "a FETCH 7 BODY[]<0.4>", "* 7 FETCH (BODY[]<0> {4}\r\nDate)\r\n" },
	/* The first line is 36 octets: the CR at 36 is not in LF storage. */
	{ "a FETCH 7 BODY[]<35.3>", "* 7 FETCH (BODY[]<35> {3}\r\n0\r\n)\r\n" },
	{ "a FETCH 7 BODY[]<36.1>", "* 7 FETCH (BODY[]<36> {1}\r\n\r)\r\n" },
	{ "a FETCH 7 BODY[]<37.1>", "* 7 FETCH (BODY[]<37> {1}\r\n\n)\r\n" },
	{ "a FETCH 7 BODY[]<319.100>", "* 7 FETCH (BODY[]<319> {1}\r\n\n)\r\n" },
	{ "a FETCH 7 BODY[]<320.1>", "* 7 FETCH (BODY[]<320> \"\")\r\n" },
	{ "a FETCH 7 BODY[]<4294967295.4294967295>",
	    "* 7 FETCH (BODY[]<4294967295> \"\")\r\n" },
	{ "a FETCH 7 BODY.PEEK[TEXT]<50.4294967295>",
	    "* 7 FETCH (BODY[TEXT]<50> {5}\r\now?\r\n)\r\n" },
	{ "a FETCH 7 BINARY.PEEK[1]<53.10>",
	    "* 7 FETCH (BINARY[1]<53> {2}\r\n\r\n)\r\n" },
	{ "a FETCH 7 BODY[HEADER.FIELDS (Subject)]<9.100>",
	    "* 7 FETCH (BODY[HEADER.FIELDS (Subject)]<9> {21}\r\n"
	    "afternoon meeting\r\n\r\n)\r\n" },
	/* Different partials are different items; the same one is one. */
	{ "a FETCH 7 (BODY[]<0.4> BODY.PEEK[]<0.4> BODY[]<1.3>)",
	    "* 7 FETCH (BODY[]<0> {4}\r\nDate BODY[]<1> {3}\r\nate)\r\n" },
};

/* The stored form (LF or CRLF) never shows: same replies, same counts. */
START_TEST(test_simple)
{
	static const char *const files[] = { "simple-lf.eml", "simple-crlf.eml" };
	char *const kw[] = { "$Label1", "Work", NULL };
	struct msg m;

	msg_file(&m, files[_i % 2]);
	m.v.flags = MBX_SEEN | MBX_FLAGGED;
	m.v.keywords = kw;
	m.v.recent = 1;
	for (size_t i = 0; i < sizeof(simple_cases) / sizeof(simple_cases[0]); i++)
		check(simple_cases[i].line, &m.v, 0, simple_cases[i].want);
	msg_free(&m);
}
END_TEST

/* --- multipart/alternative ------------------------------------------------- */

static const char alt_msg[] =
    "From: a@example.org\n"
    "Subject: alt\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/alternative; boundary=\"=_b\"\n"
    "\n"
    "preamble\n"
    "--=_b\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "plain text\n"
    "--=_b\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "<p>caf=C3=A9 =\n"
    "ok</p>\n"
    "--=_b--\n";

START_TEST(test_alternative)
{
	struct msg m;

	msg_bytes(&m, alt_msg, strlen(alt_msg));
	check("a FETCH 7 BODYSTRUCTURE", &m.v, 0,
	    "* 7 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") "
	    "NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" "
	    "\"utf-8\") NIL NIL \"quoted-printable\" 22 1 NIL NIL NIL NIL) "
	    "\"alternative\" (\"boundary\" \"=_b\") NIL NIL NIL))\r\n");
	check("a FETCH 7 (BODY[1] BODY[2] BODY[2.MIME])", &m.v, 0,
	    "* 7 FETCH (BODY[1] {10}\r\nplain text BODY[2] {22}\r\n"
	    "<p>caf=C3=A9 =\r\nok</p> BODY[2.MIME] {87}\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n)\r\n");
	/* Quoted-printable decoded: the soft break joins the lines. */
	check("a FETCH 7 (BINARY[2] BINARY.SIZE[2] BINARY[1]<6.100>)", &m.v, 0,
	    "* 7 FETCH (BINARY[2] {15}\r\n<p>caf\xc3\xa9 ok</p> "
	    "BINARY.SIZE[2] 15 BINARY[1]<6> {4}\r\ntext)\r\n");
	check("a FETCH 7 (BODY[TEXT]<0.10> BODY[3] BODY[1.2] BODY[2.TEXT])",
	    &m.v, 0,
	    "* 7 FETCH (BODY[TEXT]<0> {10}\r\npreamble\r\n BODY[3] \"\" "
	    "BODY[1.2] \"\" BODY[2.TEXT] \"\")\r\n");
	msg_free(&m);
}
END_TEST

/* --- An attachment --------------------------------------------------------- */

static const char att_msg[] =
    "From: a@example.org\r\n"
    "Subject: data\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=X\r\n"
    "\r\n"
    "--X\r\n"
    "\r\n"
    "see attached\r\n"
    "--X\r\n"
    "Content-Type: application/octet-stream; name=\"d.bin\"\r\n"
    "Content-Transfer-Encoding: BASE64\r\n"
    "Content-Disposition: attachment; filename=\"d.bin\"\r\n"
    "\r\n"
    "AAEC\r\n"
    "A0FC\r\n"
    "--X\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: x-uuencode\r\n"
    "\r\n"
    "begin 644 x\r\n"
    "--X--\r\n";

START_TEST(test_attachment)
{
	struct msg m;
	struct buf out = BUF_INIT(0);
	struct imap_fetch_req req;
	const char *err;

	msg_bytes(&m, att_msg, strlen(att_msg));
	/* "AAECA0FC" is 00 01 02 03 41 42: a NUL, so a literal8. */
	ck_assert_int_eq(run("a FETCH 7 (BINARY.PEEK[2] BINARY.SIZE[2])", &m.v,
	    0, &out), 0);
	static const char want1[] = "* 7 FETCH (BINARY[2] ~{6}\r\n\0\1\2\3AB "
	    "BINARY.SIZE[2] 6)\r\n";
	want_bytes(&out, want1, sizeof(want1) - 1, "BINARY[2]");
	/* Partials of the decoded bytes; one without a NUL is a literal. */
	ck_assert_int_eq(run("a FETCH 7 (BINARY[2]<1.2> BINARY[2]<3.9> "
	    "BINARY[2]<6.1>)", &m.v, 0, &out), 0);
	static const char want2[] = "* 7 FETCH (BINARY[2]<1> {2}\r\n\1\2 "
	    "BINARY[2]<3> {3}\r\n\3AB BINARY[2]<6> \"\")\r\n";
	want_bytes(&out, want2, sizeof(want2) - 1, "BINARY partials");
	/* BODY[2] is the encoded text, as stored. */
	check("a FETCH 7 BODY.PEEK[2]", &m.v, 0,
	    "* 7 FETCH (BODY[2] {10}\r\nAAEC\r\nA0FC)\r\n");
	check("a FETCH 7 BINARY.PEEK[1]", &m.v, 0,
	    "* 7 FETCH (BINARY[1] {12}\r\nsee attached)\r\n");

	/* Unknown encoding: -2, [UNKNOWN-CTE], the output left as it was. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(parse_fetch(i ? "a FETCH 7 BINARY.SIZE[3]"
		    : "a FETCH 7 (UID BINARY.PEEK[3])", &req, &err), 0);
		buf_reset(&out);
		buf_puts(&out, "kept");
		ck_assert_int_eq(imap_fetch_write(&req, &m.v, 0, &out, &err), -2);
		ck_assert_ptr_nonnull(strstr(err, "[UNKNOWN-CTE]"));
		want_bytes(&out, "kept", 4, "UNKNOWN-CTE");
		imap_fetch_req_free(&req);
	}
	/* BODY of that part is fine. */
	check("a FETCH 7 BODY.PEEK[3]", &m.v, 0,
	    "* 7 FETCH (BODY[3] {11}\r\nbegin 644 x)\r\n");
	buf_free(&out);
	msg_free(&m);
}
END_TEST

/* The corpus attachment: base64 and quoted-printable inside mixed/alt. */
START_TEST(test_mixed_alt)
{
	struct msg m;

	msg_file(&m, "mixed-alt.eml");
	check("a FETCH 7 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1.1] "
	    "BINARY.SIZE[1.1] BINARY.PEEK[3]<2.5>)", &m.v, 0,
	    "* 7 FETCH (BINARY[2] {19}\r\n%PDF-1.4\n%\xc3\xa4\xc3\xbc\xc3\xb6\xc3\x9f\n"
	    " BINARY.SIZE[2] 19 BINARY[1.1] {22}\r\nCaf\xc3\xa9 report attached. "
	    "BINARY.SIZE[1.1] 22 BINARY[3]<2> {5}\r\nNG\r\n\x1a)\r\n");
	check("a FETCH 7 BODY.PEEK[HEADER.FIELDS (From Subject)]", &m.v, 0,
	    "* 7 FETCH (BODY[HEADER.FIELDS (From Subject)] {62}\r\n"
	    "From: \"Alice Example\" <alice@example.org>\r\n"
	    "Subject: Report\r\n\r\n)\r\n");
	check("a FETCH 7 BODY.PEEK[1.2.MIME]", &m.v, 0,
	    "* 7 FETCH (BODY[1.2.MIME] {42}\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n\r\n)\r\n");
	msg_free(&m);
}
END_TEST

/* --- message/rfc822 inside --------------------------------------------------- */

#define FWD_HDR \
	"From: carol@example.net\r\n" \
	"To: bob@example.net\r\n" \
	"Subject: lunch\r\n" \
	"Date: Wed, 2 Dec 2026 11:00:00 +0100\r\n" \
	"Message-ID: <lunch@example.net>\r\n\r\n"

START_TEST(test_nested)
{
	struct msg m;

	msg_file(&m, "forward.eml");
	check("a FETCH 7 (BODY.PEEK[1] BODY.PEEK[2])", &m.v, 0,
	    "* 7 FETCH (BODY[1] {10}\r\nSee below. BODY[2] {149}\r\n" FWD_HDR
	    "Lunch at noon?)\r\n");
	check("a FETCH 7 (BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] "
	    "BODY.PEEK[2.1.MIME])", &m.v, 0,
	    "* 7 FETCH (BODY[2.HEADER] {135}\r\n" FWD_HDR " BODY[2.TEXT] {14}\r\n"
	    "Lunch at noon? BODY[2.1] {14}\r\nLunch at noon? BODY[2.1.MIME] {135}"
	    "\r\n" FWD_HDR ")\r\n");
	check("a FETCH 7 (BODY.PEEK[2.MIME] BODY.PEEK[2.2] BODY.PEEK[2.1.1])",
	    &m.v, 0,
	    "* 7 FETCH (BODY[2.MIME] {32}\r\nContent-Type: message/rfc822\r\n\r\n"
	    " BODY[2.2] \"\" BODY[2.1.1] \"\")\r\n");
	check("a FETCH 7 (BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]<6.4> "
	    "BINARY.PEEK[2.1] BINARY.SIZE[2])", &m.v, 0,
	    "* 7 FETCH (BODY[2.HEADER.FIELDS (SUBJECT)]<6> {4}\r\n"
	    "t: l BINARY[2.1] {14}\r\nLunch at noon? BINARY.SIZE[2] 149)\r\n");
	msg_free(&m);
}
END_TEST

/* Literal payload of a one-item reply "* n FETCH (NAME {k}\r\n...)\r\n". */
static void
payload(const struct buf *b, struct buf *to)
{
	const char *lit = memchr(b->data, '{', b->len);

	if (lit == NULL) {             /* "" */
		ck_assert_ptr_nonnull(strstr(b->data, "\"\")\r\n"));
		return;
	}
	char *end;
	size_t k = strtoul(lit + 1, &end, 10);
	ck_assert(end[0] == '}' && end[1] == '\r' && end[2] == '\n');
	ck_assert_uint_eq((size_t)(b->data + b->len - (end + 3)), k + 3);
	buf_append(to, end + 3, k);
}

/* A client downloading in chunks (Thunderbird: BODY.PEEK[]<o.n>) gets
 * exactly BODY[], for LF storage and for a base64 attachment's BINARY. */
START_TEST(test_chunks)
{
	struct buf msgb = BUF_INIT(0), whole = BUF_INIT(0), parts = BUF_INIT(0);
	struct buf out = BUF_INIT(0), line = BUF_INIT(0);
	struct msg m;

	buf_puts(&msgb, "Subject: big\nContent-Type: multipart/mixed; "
	    "boundary=z\n\n--z\n\nsome text\n--z\nContent-Transfer-Encoding: "
	    "base64\n\n");
	for (int i = 0; i < 3000; i++)
		buf_puts(&msgb, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n");
	buf_puts(&msgb, "--z--\n");
	msg_bytes(&m, msgb.data, msgb.len);
	static const char *const items[] = { "BODY.PEEK[]", "BINARY.PEEK[2]",
	    "BODY.PEEK[2]" };
	for (size_t it = 0; it < 3; it++) {
		buf_reset(&line);
		buf_printf(&line, "a FETCH 7 %s", items[it]);
		buf_reset(&whole);
		ck_assert_int_eq(run(line.data, &m.v, 0, &out), 0);
		payload(&out, &whole);
		ck_assert_uint_gt(whole.len, 90000);
		buf_reset(&parts);
		for (size_t off = 0; off < whole.len + 2 * 4093; off += 4093) {
			buf_reset(&line);
			buf_printf(&line, "a FETCH 7 %s<%zu.4093>", items[it], off);
			ck_assert_int_eq(run(line.data, &m.v, 0, &out), 0);
			payload(&out, &parts);
		}
		ck_assert_msg(parts.len == whole.len
		    && memcmp(parts.data, whole.data, whole.len) == 0,
		    "%s: %zu octets in chunks, %zu whole", items[it], parts.len,
		    whole.len);
	}
	ck_assert_uint_eq(whole.len, m.v.tree->parts[2].body_size);
	buf_free(&msgb);
	buf_free(&whole);
	buf_free(&parts);
	buf_free(&out);
	buf_free(&line);
	msg_free(&m);
}
END_TEST

/* --- \Seen ----------------------------------------------------------------- */

static const struct {
	const char *line;
	int sets_seen;
} seen_cases[] = {
	{ "a FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)", 0 },
	{ "a FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)", 0 },
	{ "a FETCH 1 ALL", 0 },
	{ "a FETCH 1 FULL", 0 },
	{ "a FETCH 1 RFC822", 1 },
	{ "a FETCH 1 RFC822.HEADER", 0 },
	{ "a FETCH 1 RFC822.TEXT", 1 },
	{ "a FETCH 1 BODY[]", 1 },
	{ "a FETCH 1 BODY[HEADER]", 1 },
	{ "a FETCH 1 BODY[1.MIME]<0.10>", 1 },
	{ "a FETCH 1 BODY.PEEK[]", 0 },
	{ "a FETCH 1 BODY.PEEK[HEADER.FIELDS (From)]", 0 },
	{ "a FETCH 1 BINARY[1]", 1 },
	{ "a FETCH 1 BINARY.PEEK[1]", 0 },
	{ "a FETCH 1 BINARY.SIZE[1]", 0 },
	{ "a FETCH 1 (BODY.PEEK[1] BODY[1])", 1 },
	{ "a FETCH 1 (BODY[1] BODY.PEEK[1])", 1 },
	{ "a UID FETCH 1 (BODY.PEEK[] BINARY.PEEK[1]) (CHANGEDSINCE 3)", 0 },
};

START_TEST(test_sets_seen)
{
	struct imap_fetch_req req;
	const char *err;

	ck_assert_int_eq(parse_fetch(seen_cases[_i].line, &req, &err), 0);
	ck_assert_msg(req.sets_seen == seen_cases[_i].sets_seen, "%s: %d",
	    seen_cases[_i].line, req.sets_seen);
	imap_fetch_req_free(&req);
}
END_TEST

/* The session sets \Seen, then asks for FLAGS to be added. */
START_TEST(test_flags_added)
{
	struct msg m;

	msg_file(&m, "simple-lf.eml");
	m.v.flags = MBX_SEEN | MBX_ANSWERED | MBX_DELETED | MBX_DRAFT;
	check("a FETCH 7 BODY[]<0.4>", &m.v, IMAP_FW_FLAGS,
	    "* 7 FETCH (BODY[]<0> {4}\r\nDate FLAGS (\\Answered \\Deleted "
	    "\\Seen \\Draft))\r\n");
	check("a FETCH 7 (FLAGS BODY[]<0.4>)", &m.v, IMAP_FW_FLAGS,
	    "* 7 FETCH (FLAGS (\\Answered \\Deleted \\Seen \\Draft) BODY[]<0> "
	    "{4}\r\nDate)\r\n");
	check("a FETCH 7 UID", &m.v, IMAP_FW_FLAGS | IMAP_FW_MODSEQ,
	    "* 7 FETCH (UID 42 FLAGS (\\Answered \\Deleted \\Seen \\Draft) "
	    "MODSEQ (5))\r\n");
	msg_free(&m);
}
END_TEST

/* --- Loading --------------------------------------------------------------- */

struct loader {
	struct msg *m;
	unsigned calls, last_want;
	int fail;
};

static int
count_load(struct imap_view *v, unsigned want, void *ctx)
{
	struct loader *l = ctx;

	l->calls++;
	l->last_want = want;
	if (l->fail)
		return -1;
	v->data = l->m->data;
	v->len = l->m->len;
	if (want & IMAP_VIEW_TREE)
		v->tree = &l->m->tree;
	return 0;
}

static const struct {
	const char *line;
	unsigned want;             /* 0: load() is not called */
} load_cases[] = {
	{ "a FETCH 7 FLAGS", 0 },
	{ "a UID FETCH 42 (FLAGS UID INTERNALDATE RFC822.SIZE MODSEQ)", 0 },
	{ "a FETCH 7 FAST", 0 },
	{ "a UID FETCH 42 FLAGS (CHANGEDSINCE 1)", 0 },
	{ "a FETCH 7 BODY.PEEK[]<0.100>", IMAP_VIEW_DATA },
	{ "a FETCH 7 RFC822", IMAP_VIEW_DATA },
	{ "a FETCH 7 BINARY.SIZE[]", IMAP_VIEW_DATA },
	{ "a FETCH 7 ENVELOPE", IMAP_VIEW_DATA | IMAP_VIEW_TREE },
	{ "a FETCH 7 (FLAGS BODY)", IMAP_VIEW_DATA | IMAP_VIEW_TREE },
	{ "a FETCH 7 RFC822.HEADER", IMAP_VIEW_DATA | IMAP_VIEW_TREE },
	{ "a FETCH 7 (BODY[]<0.1> BODY[1])", IMAP_VIEW_DATA | IMAP_VIEW_TREE },
};

START_TEST(test_load)
{
	struct msg m;
	struct loader l = { .m = &m };
	struct imap_fetch_req req;
	struct buf out = BUF_INIT(0);
	const char *err;

	msg_file(&m, "simple-lf.eml");
	m.v.data = NULL;
	m.v.len = 0;
	m.v.tree = NULL;
	m.v.load = count_load;
	m.v.load_ctx = &l;
	ck_assert_int_eq(parse_fetch(load_cases[_i].line, &req, &err), 0);
	ck_assert_uint_eq(req.need, load_cases[_i].want);
	ck_assert_int_eq(imap_fetch_write(&req, &m.v, 0, &out, &err), 0);
	ck_assert_uint_eq(l.calls, load_cases[_i].want ? 1 : 0);
	ck_assert_uint_eq(l.last_want, load_cases[_i].want);
	check_framing(&out, load_cases[_i].line);

	/* A message that vanished meanwhile: -1, nothing written. */
	if (load_cases[_i].want != 0) {
		m.v.data = NULL;
		m.v.tree = NULL;
		l.fail = 1;
		buf_reset(&out);
		buf_puts(&out, "kept");
		ck_assert_int_eq(imap_fetch_write(&req, &m.v, 0, &out, &err), -1);
		want_bytes(&out, "kept", 4, "load failure");
	}
	imap_fetch_req_free(&req);
	buf_free(&out);
	msg_free(&m);
}
END_TEST

/* A tree that does not describe the view's bytes is refused, never used. */
START_TEST(test_tree_mismatch)
{
	struct msg m;
	struct buf out = BUF_INIT(0);

	msg_file(&m, "mixed-alt.eml");
	m.v.len = 100;
	ck_assert_int_eq(run("a FETCH 7 BODY[3]", &m.v, 0, &out), -1);
	ck_assert_uint_eq(out.len, 0);
	buf_free(&out);
	msg_free(&m);
}
END_TEST

/* --- CONDSTORE / QRESYNC --------------------------------------------------- */

START_TEST(test_modifiers)
{
	struct msg m;
	struct imap_fetch_req req;
	struct buf out = BUF_INIT(0);
	const char *err;

	msg_file(&m, "simple-lf.eml");
	ck_assert_int_eq(parse_fetch("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 "
	    "VANISHED)", &req, &err), 0);
	ck_assert(req.changedsince_given && req.changedsince == 4 && req.vanished
	    && req.has_modseq);
	/* modseq 5 > 4: reported, with MODSEQ though not asked for. */
	ck_assert_int_eq(imap_fetch_write(&req, &m.v, 0, &out, &err), 0);
	want_bytes(&out, "* 7 FETCH (UID 42 FLAGS () MODSEQ (5))\r\n", 40,
	    "CHANGEDSINCE 4");
	/* modseq 4 <= 4: nothing at all. */
	m.v.modseq = 4;
	buf_reset(&out);
	ck_assert_int_eq(imap_fetch_write(&req, &m.v, 0, &out, &err), 0);
	ck_assert_uint_eq(out.len, 0);
	imap_fetch_req_free(&req);

	ck_assert_int_eq(parse_fetch("a FETCH 1 (MODSEQ) (changedsince 0)", &req,
	    &err), 0);
	ck_assert(req.changedsince_given && req.changedsince == 0
	    && !req.vanished);
	imap_fetch_req_free(&req);
	ck_assert_int_eq(parse_fetch("a FETCH 1 FLAGS (CHANGEDSINCE "
	    "9223372036854775807)", &req, &err), 0);
	ck_assert(req.changedsince == INT64_MAX);
	imap_fetch_req_free(&req);
	buf_free(&out);
	msg_free(&m);
}
END_TEST

/* --- Syntax ---------------------------------------------------------------- */

static const char *const bad_cases[] = {
	"a FETCH 1",
	"a FETCH 1 ()",
	"a FETCH 1 \"FLAGS\"",
	"a FETCH 1 NIL",
	"a FETCH 1 (FLAGS (UID))",
	"a FETCH 1 (ALL)",            /* macros stand alone */
	"a FETCH 1 (FLAGS FAST)",
	"a FETCH 1 FLAG",
	"a FETCH 1 RFC822.PEEK",
	"a FETCH 1 BODY.PEEK",
	"a FETCH 1 BODY<0.10>",
	"a FETCH 1 FLAGS[]",
	"a FETCH 1 BODYSTRUCTURE[1]",
	"a FETCH 1 BINARY",
	"a FETCH 1 BINARY.SIZE",
	"a FETCH 1 BINARY[TEXT]",
	"a FETCH 1 BINARY[1.MIME]",
	"a FETCH 1 BINARY[1.HEADER]",
	"a FETCH 1 BINARY.SIZE[1]<0.10>",
	"a FETCH 1 BODY[0]",
	"a FETCH 1 BODY[1.0]",
	"a FETCH 1 BODY[1.]",
	"a FETCH 1 BODY[.1]",
	"a FETCH 1 BODY[1..2]",
	"a FETCH 1 BODY[MIME]",
	"a FETCH 1 BODY[HEADERS]",
	"a FETCH 1 BODY[TEXT.HEADER]",
	"a FETCH 1 BODY[1.TEXT ]",
	"a FETCH 1 BODY[HEADER.FIELDS]",
	"a FETCH 1 BODY[HEADER.FIELDS ()]",
	"a FETCH 1 BODY[HEADER.FIELDS (From]",
	"a FETCH 1 BODY[HEADER.FIELDS (From) ]",
	"a FETCH 1 BODY[HEADER.FIELDS(From)]",
	"a FETCH 1 BODY[HEADER.FIELDS.NOT]",
	"a FETCH 1 BODY[99999999999]",
	"a FETCH 1 BODY[]<0.0>",
	"a FETCH 1 BODY[]<1>",
	"a FETCH 1 BODY[]<4294967296.1>",
	"a FETCH 1 BODY[]<0.1>x",
	"a FETCH 1 FLAGS ()",
	"a FETCH 1 FLAGS (CHANGEDSINCE)",
	"a FETCH 1 FLAGS (CHANGEDSINCE -1)",
	"a FETCH 1 FLAGS (CHANGEDSINCE 01)",
	"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)",
	"a FETCH 1 FLAGS (CHANGEDSINCE 99999999999999999999)",
	"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
	"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)",   /* not UID FETCH */
	"a UID FETCH 1 FLAGS (VANISHED)",
	"a UID FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED VANISHED)",
	"a UID FETCH 1 FLAGS (CHANGEDSINCE 1 UNCHANGEDSINCE 2)",
	"a UID FETCH 1 FLAGS CHANGEDSINCE 1",
	"a FETCH 1 FLAGS (CHANGEDSINCE 1) FLAGS",
};

START_TEST(test_bad)
{
	struct imap_fetch_req req;
	const char *err = NULL;

	ck_assert_msg(parse_fetch(bad_cases[_i], &req, &err) == -1,
	    "accepted: %s", bad_cases[_i]);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_null(req.items);
	ck_assert_uint_eq(req.n, 0);
}
END_TEST

/* Too many distinct items is refused; a repeated one is merged. */
START_TEST(test_item_bound)
{
	struct imap_fetch_req req;
	struct buf line = BUF_INIT(0);
	const char *err;

	buf_puts(&line, "a FETCH 1 (");
	for (int i = 0; i < 500; i++)
		buf_puts(&line, "BODY[] ");
	buf_puts(&line, "FLAGS)");
	ck_assert_int_eq(parse_fetch(line.data, &req, &err), 0);
	ck_assert_uint_eq(req.n, 2);
	imap_fetch_req_free(&req);
	buf_reset(&line);
	buf_puts(&line, "a FETCH 1 (");
	for (int i = 0; i < 500; i++)
		buf_printf(&line, "BODY[]<%d.1> ", i);
	buf_puts(&line, "FLAGS)");
	ck_assert_int_eq(parse_fetch(line.data, &req, &err), -1);
	buf_free(&line);
}
END_TEST

/* --- Broken mail: every corpus file, every item kind ---------------------- */

static const char *const corpus[] = {
	"8bit-headers.eml", "deep.eml", "empty-body.eml", "encoded-words.eml",
	"forward.eml", "groups.eml", "header-only.eml", "longline.eml",
	"mixed-alt.eml", "no-boundary.eml", "no-close.eml", "rfc2231.eml",
	"simple-crlf.eml", "simple-lf.eml",
};

START_TEST(test_corpus_framing)
{
	static const char *const lines[] = {
		"a UID FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY "
		"BODYSTRUCTURE MODSEQ)",
		"a FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT)",
		"a FETCH 1 (BODY[] BODY[TEXT] BODY[1] BODY[1.MIME] BODY[2] "
		"BODY[2.1] BODY[2.HEADER] BODY[1.1.1.1])",
		"a FETCH 1 (BODY[HEADER.FIELDS (From To Subject)] "
		"BODY[HEADER.FIELDS.NOT (From)] BODY[1.HEADER.FIELDS (A)])",
		"a FETCH 1 (BODY[]<0.7> BODY[]<100.50> BODY[TEXT]<3.1000000>)",
		"a FETCH 1 (BINARY[1] BINARY.SIZE[1] BINARY[2] BINARY.SIZE[2] "
		"BINARY[1.1]<0.5> BINARY[])",
	};
	struct msg m;
	struct buf out = BUF_INIT(0);

	msg_file(&m, corpus[_i]);
	for (size_t k = 0; k < sizeof(lines) / sizeof(lines[0]); k++) {
		ck_assert_int_eq(run(lines[k], &m.v, IMAP_FW_FLAGS | IMAP_FW_MODSEQ,
		    &out), 0);
		check_framing(&out, lines[k]);
	}
	buf_free(&out);
	msg_free(&m);
}
END_TEST

/* Garbage bytes as a message, and no message at all. */
START_TEST(test_garbage)
{
	static const char junk[] = "\0\r\r\n--\n\n\0Content-Type: multipart/mixed;"
	    " boundary=\"\"\n\n--\n\x80\xff";
	struct msg m;
	struct buf out = BUF_INIT(0);

	msg_bytes(&m, junk, sizeof(junk) - 1);
	ck_assert_int_eq(run("a FETCH 1 (ENVELOPE BODYSTRUCTURE BODY[] BODY[1] "
	    "BINARY[1] BODY[HEADER.FIELDS (Content-Type)] BODY[]<3.5>)", &m.v, 0,
	    &out), 0);
	check_framing(&out, "junk");
	msg_free(&m);
	msg_bytes(&m, "", 0);
	check("a FETCH 1 (BODY[] BODY[1] BINARY[1] BINARY.SIZE[1] RFC822.SIZE)",
	    &m.v, 0, "* 7 FETCH (BODY[] \"\" BODY[1] \"\" BINARY[1] \"\" "
	    "BINARY.SIZE[1] 0 RFC822.SIZE 0)\r\n");
	buf_free(&out);
	msg_free(&m);
}
END_TEST

/* --- Flags and dates ------------------------------------------------------- */

START_TEST(test_write_flags)
{
	struct buf out = BUF_INIT(0);
	char *const kw[] = { "$Forwarded", "NIL", "bad word", NULL };

	imap_write_flags(&out, 0, no_keywords, 0);
	ck_assert_str_eq(buf_cstr(&out), "()");
	buf_reset(&out);
	imap_write_flags(&out, MBX_FLAGS_ALL, kw, 1);
	/* Not atoms (a damaged index) are quoted, never sent raw. */
	ck_assert_str_eq(buf_cstr(&out), "(\\Answered \\Flagged \\Deleted \\Seen "
	    "\\Draft \\Recent $Forwarded \"NIL\" \"bad word\")");
	buf_reset(&out);
	imap_write_flags(&out, 0, kw + 2, 1);
	ck_assert_str_eq(buf_cstr(&out), "(\\Recent \"bad word\")");
	buf_free(&out);
}
END_TEST

static const struct {
	int64_t t;
	const char *text;
} dates[] = {
	{ 0, "\"01-Jan-1970 00:00:00 +0000\"" },
	{ 1796465200, "\"05-Dec-2026 10:06:40 +0000\"" },
	{ 951782400, "\"29-Feb-2000 00:00:00 +0000\"" },
	{ INT64_C(253402300799), "\"31-Dec-9999 23:59:59 +0000\"" },
	{ -5, "\"01-Jan-1970 00:00:00 +0000\"" },     /* clamped */
	{ INT64_MAX, "\"31-Dec-9999 23:59:59 +0000\"" },
};

START_TEST(test_write_datetime)
{
	struct buf out = BUF_INIT(0);
	int64_t t;

	imap_write_datetime(&out, dates[_i].t);
	ck_assert_str_eq(buf_cstr(&out), dates[_i].text);
	/* What we write we read back (inside the quotes). */
	ck_assert_int_eq(imap_parse_datetime(out.data + 1, out.len - 2, &t), 0);
	if (dates[_i].t >= 0 && dates[_i].t <= INT64_C(253402300799))
		ck_assert_int_eq(t, dates[_i].t);
	buf_free(&out);
}
END_TEST

static const struct {
	const char *text;
	int rc;
	int64_t t;
} parse_dates[] = {
	{ "05-Dec-2026 10:06:40 +0000", 0, 1796465200 },
	{ " 5-Dec-2026 10:06:40 +0000", 0, 1796465200 },
	{ "05-dec-2026 10:06:40 +0000", 0, 1796465200 },
	{ "05-Dec-2026 11:36:40 +0130", 0, 1796465200 },
	{ "05-Dec-2026 02:06:40 -0800", 0, 1796465200 },
	{ "01-Jan-1970 00:00:00 +0100", 0, -3600 },
	{ "29-Feb-2024 12:00:00 +0000", 0, 1709208000 },
	{ "31-Dec-1969 23:59:59 +0000", 0, -1 },
	{ "30-Jun-2026 23:59:60 +0000", 0, 1782864000 },   /* leap second */
	{ "29-Feb-2026 12:00:00 +0000", -1, 0 },
	{ "29-Feb-1900 12:00:00 +0000", -1, 0 },
	{ "31-Apr-2026 12:00:00 +0000", -1, 0 },
	{ "00-Dec-2026 10:06:40 +0000", -1, 0 },
	{ "5-Dec-2026 10:06:40 +0000", 0, 1796465200 },     /* no date-day-fixed space */
	{ "5-Dec-2026 10:06:40 +000", -1, 0 },
	{ "-5-Dec-2026 10:06:40 +0000", -1, 0 },
	{ "05-Dez-2026 10:06:40 +0000", -1, 0 },
	{ "05-Dec-26 10:06:40 +0000", -1, 0 },
	{ "05-Dec-2026 24:00:00 +0000", -1, 0 },
	{ "05-Dec-2026 10:60:00 +0000", -1, 0 },
	{ "05-Dec-2026 10:06:61 +0000", -1, 0 },
	{ "05-Dec-2026 10:06:40 +2400", -1, 0 },
	{ "05-Dec-2026 10:06:40 +0060", -1, 0 },
	{ "05-Dec-2026 10:06:40 0000", -1, 0 },
	{ "05-Dec-2026 10:06:40 +0000 ", -1, 0 },
	{ "05-Dec-2026  10:06:40 +000", -1, 0 },
	{ "05-Dec-2026 10:06:40 UTC", -1, 0 },
	{ "05-Dec-2026T10:06:40 +0000", -1, 0 },
	{ "05-Dec-2026 1a:06:40 +0000", -1, 0 },
	{ "05-Dec-2026 10:06:40 +00a0", -1, 0 },
	{ "", -1, 0 },
};

START_TEST(test_parse_datetime)
{
	int64_t t = 12345;
	const char *s = parse_dates[_i].text;

	ck_assert_msg(imap_parse_datetime(s, strlen(s), &t) == parse_dates[_i].rc,
	    "%s", s);
	if (parse_dates[_i].rc == 0)
		ck_assert_msg(t == parse_dates[_i].t, "%s: %lld", s, (long long)t);
	else
		ck_assert_int_eq(t, 12345);
}
END_TEST

/* The length is what bounds the parse: no NUL is looked for. */
START_TEST(test_parse_datetime_bounded)
{
	char s[26];
	int64_t t;

	memcpy(s, "05-Dec-2026 10:06:40 +0000", 26);
	ck_assert_int_eq(imap_parse_datetime(s, 26, &t), 0);
	ck_assert_int_eq(imap_parse_datetime(s, 25, &t), -1);
}
END_TEST

/* --- mime.c helpers this module added -------------------------------------- */

START_TEST(test_crlf_range)
{
	static const char in[] = "ab\ncd\r\ne\n";   /* wire: ab\r\ncd\r\ne\r\n */
	static const char wire[] = "ab\r\ncd\r\ne\r\n";
	struct buf out = BUF_INIT(0);

	ck_assert_uint_eq(mime_wire_size(in, strlen(in)), strlen(wire));
	for (size_t off = 0; off <= strlen(wire) + 1; off++) {
		for (size_t len = 0; len <= strlen(wire) + 1; len++) {
			buf_reset(&out);
			mime_to_crlf_range(in, strlen(in), off, len, &out);
			size_t e = off + len < strlen(wire) ? off + len : strlen(wire);
			size_t wl = off < e ? e - off : 0;
			ck_assert_msg(out.len == wl
			    && memcmp(buf_cstr(&out), wire + off, wl) == 0,
			    "off %zu len %zu: '%s'", off, len, buf_cstr(&out));
		}
	}
	buf_reset(&out);
	mime_to_crlf_range(in, strlen(in), 3, SIZE_MAX, &out);
	ck_assert_str_eq(buf_cstr(&out), "\ncd\r\ne\r\n");
	buf_free(&out);
}
END_TEST

START_TEST(test_part_binary)
{
	struct msg m;
	struct buf out = BUF_INIT(0);

	msg_bytes(&m, alt_msg, strlen(alt_msg));
	/* Part 1 (7bit, LF stored): wire form for BINARY, raw for SEARCH. */
	ck_assert_int_eq(mime_part_binary(&m.tree, m.data, 1, &out), 0);
	ck_assert_str_eq(buf_cstr(&out), "plain text");
	buf_reset(&out);
	ck_assert_int_eq(mime_part_binary(&m.tree, m.data, 0, &out), 0);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "preamble\r\n--=_b\r\n"));
	buf_reset(&out);
	ck_assert_int_eq(mime_part_decode(&m.tree, m.data, 0, &out), 0);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "preamble\n--=_b\n"));
	buf_free(&out);
	msg_free(&m);
}
END_TEST

/* A literal never carries NUL: 0x80 instead, same size; literal8
 * (BINARY) keeps it. */
START_TEST(test_nul)
{
	static const char nul_msg[] = "Subject: n\n\na\0b\n";
	static const char want1[] = "* 7 FETCH (BODY[] {19}\r\nSubject: n\r\n\r\na\x80" "b\r\n)\r\n";
	static const char want2[] = "* 7 FETCH (BINARY[1] ~{5}\r\na\0b\r\n)\r\n";
	static const char want3[] = "* 7 FETCH (BODY[TEXT]<1> {1}\r\n\x80)\r\n";
	struct msg m;
	struct buf out = BUF_INIT(0);

	msg_bytes(&m, nul_msg, sizeof(nul_msg) - 1);
	ck_assert_int_eq(run("a FETCH 7 BODY.PEEK[]", &m.v, 0, &out), 0);
	want_bytes(&out, want1, sizeof(want1) - 1, "BODY[]");
	ck_assert_int_eq(run("a FETCH 7 BINARY.PEEK[1]", &m.v, 0, &out), 0);
	want_bytes(&out, want2, sizeof(want2) - 1, "BINARY[1]");
	ck_assert_int_eq(run("a FETCH 7 BODY.PEEK[TEXT]<1.1>", &m.v, 0, &out), 0);
	want_bytes(&out, want3, sizeof(want3) - 1, "BODY[TEXT]<1.1>");
	buf_free(&out);
	msg_free(&m);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("imap_fetch");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_simple, 0, 2);
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_alternative);
	tcase_add_test(tc, test_attachment);
	tcase_add_test(tc, test_mixed_alt);
	tcase_add_test(tc, test_nested);
	tcase_add_test(tc, test_chunks);
	tcase_add_loop_test(tc, test_sets_seen, 0,
	    sizeof(seen_cases) / sizeof(seen_cases[0]));
	tcase_add_test(tc, test_flags_added);
	tcase_add_loop_test(tc, test_load, 0,
	    sizeof(load_cases) / sizeof(load_cases[0]));
	tcase_add_test(tc, test_tree_mismatch);
	tcase_add_test(tc, test_modifiers);
	tcase_add_loop_test(tc, test_bad, 0,
	    sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_item_bound);
	tcase_add_loop_test(tc, test_corpus_framing, 0,
	    sizeof(corpus) / sizeof(corpus[0]));
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_write_flags);
	tcase_add_loop_test(tc, test_write_datetime, 0,
	    sizeof(dates) / sizeof(dates[0]));
	tcase_add_loop_test(tc, test_parse_datetime, 0,
	    sizeof(parse_dates) / sizeof(parse_dates[0]));
	tcase_add_test(tc, test_parse_datetime_bounded);
	tcase_add_test(tc, test_crlf_range);
	tcase_add_test(tc, test_part_binary);
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
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
