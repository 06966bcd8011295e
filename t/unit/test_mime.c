/*
 * test_mime - lib/proto/mime.c over the corpus in t/data/mime/: exact
 * BODYSTRUCTURE, BODY and ENVELOPE strings, section resolution and
 * fetching, header helpers, RFC 2047/2231 decoding, transfer decoding,
 * the cache form (round trip, and refusal of corrupted bytes), and limits.
 *
 * Where the expected strings come from: RFC 3501 7.4.2 / RFC 9051
 * 7.5.2 by hand, checked against Dovecot 2.3.19 (a throwaway instance on
 * loopback fed the same files). We agree with Dovecot byte for byte on
 * every ENVELOPE and on sizes and line counts (Dovecot counts line ends,
 * so a part "first" before "\r\n--b" has 0 lines), and differ on purpose:
 *  - defaults are upper case, as in the RFC's examples: "TEXT" "PLAIN"
 *    ("CHARSET" "US-ASCII") and "7BIT" (Dovecot: "text" "plain"
 *    ("charset" "us-ascii"), "7bit");
 *  - multipart without boundary is one text/plain body (Dovecot invents
 *    an empty text part inside a multipart);
 *  - nesting stops at depth 32 (deep.eml has 40; Dovecot shows all 40):
 *    the multipart at depth 32 is reported as text/plain;
 *  - an RFC 2231 section that is not extended is percent-encoded when it
 *    is merged into an extended value ("%202026.txt"), so the merged value
 *    is a valid ext-value (Dovecot pastes " 2026.txt" in raw).
 * Every BODY[section] answer with rc 0 or 1 below is also what Dovecot
 * returned (rc 1, a missing part, is served as an empty string as Dovecot
 * does).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime.h"
#include "test_data.h"

static const struct {
	const char *file;
	const char *bodystructure;
	const char *body;
	const char *envelope;
} corpus[] = {
	{ "8bit-headers.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1 NIL NIL "
	    "NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1)",
	    "(\"Thu, 3 Dec 2026 08:00:00 +0100\" {17}\r\nGrüße aus Köln (({15}\r\nJür"
	    "gen Müller NIL \"juergen\" \"example.de\")) (({15}\r\nJürgen Müller NIL "
	    "\"juergen\" \"example.de\")) (({15}\r\nJürgen Müller NIL \"juergen\" \"exam"
	    "ple.de\")) ((NIL NIL {7}\r\nñandú \"example.es\")) NIL NIL NIL NIL)" },
	{ "deep.eml",
	    "(((((((((((((((((((((((((((((((((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASC"
	    "II\") NIL NIL \"7BIT\" 508 32 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"d"
	    "31\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d30\") NIL NIL NIL) \"mixed\" "
	    "(\"boundary\" \"d29\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d28\") NIL NIL"
	    " NIL) \"mixed\" (\"boundary\" \"d27\") NIL NIL NIL) \"mixed\" (\"boundary\" "
	    "\"d26\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d25\") NIL NIL NIL) \"mixed"
	    "\" (\"boundary\" \"d24\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d23\") NIL N"
	    "IL NIL) \"mixed\" (\"boundary\" \"d22\") NIL NIL NIL) \"mixed\" (\"boundary"
	    "\" \"d21\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d20\") NIL NIL NIL) \"mix"
	    "ed\" (\"boundary\" \"d19\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d18\") NIL"
	    " NIL NIL) \"mixed\" (\"boundary\" \"d17\") NIL NIL NIL) \"mixed\" (\"bounda"
	    "ry\" \"d16\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d15\") NIL NIL NIL) \"m"
	    "ixed\" (\"boundary\" \"d14\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d13\") N"
	    "IL NIL NIL) \"mixed\" (\"boundary\" \"d12\") NIL NIL NIL) \"mixed\" (\"boun"
	    "dary\" \"d11\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d10\") NIL NIL NIL) "
	    "\"mixed\" (\"boundary\" \"d9\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d8\") N"
	    "IL NIL NIL) \"mixed\" (\"boundary\" \"d7\") NIL NIL NIL) \"mixed\" (\"bound"
	    "ary\" \"d6\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d5\") NIL NIL NIL) \"mi"
	    "xed\" (\"boundary\" \"d4\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d3\") NIL "
	    "NIL NIL) \"mixed\" (\"boundary\" \"d2\") NIL NIL NIL) \"mixed\" (\"boundary"
	    "\" \"d1\") NIL NIL NIL) \"mixed\" (\"boundary\" \"d0\") NIL NIL NIL)",
	    "(((((((((((((((((((((((((((((((((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASC"
	    "II\") NIL NIL \"7BIT\" 508 32) \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"m"
	    "ixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixe"
	    "d\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\")"
	    " \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"m"
	    "ixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\") \"mixed\")",
	    "(NIL \"deep\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.o"
	    "rg\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)" },
	{ "empty-body.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL "
	    "NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)",
	    "(NIL \"empty\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example."
	    "org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)" },
	{ "encoded-words.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1 NIL NIL "
	    "NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1)",
	    "(\"Fri, 4 Dec 2026 09:00:00 +0000\" \"=?UTF-8?Q?Caf=C3=A9?= =?UTF-8?B"
	    "?IGF1IGxhaXQ=?= and =?bogus?X?broken?= =?UTF-8?Q?bad=ZZ?=\" ((\"=?IS"
	    "O-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" \"example.dk\")) ((\"=?"
	    "ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" \"example.dk\")) ((\""
	    "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" \"example.dk\")) ("
	    "(\"=?UTF-8?B?QW5kcsOp?=\" NIL \"andre\" \"example.fr\")) NIL NIL NIL NIL"
	    ")" },
	{ "forward.eml",
	    "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 0 NIL NI"
	    "L NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 149 (\"Wed, 2 Dec "
	    "2026 11:00:00 +0100\" \"lunch\" ((NIL NIL \"carol\" \"example.net\")) ((N"
	    "IL NIL \"carol\" \"example.net\")) ((NIL NIL \"carol\" \"example.net\")) ("
	    "(NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<lunch@example.net>\") "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 14 0 NIL NIL"
	    " NIL NIL) 6 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"fwd\") NIL NIL NI"
	    "L)",
	    "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 0)(\"mess"
	    "age\" \"rfc822\" NIL NIL NIL \"7BIT\" 149 (\"Wed, 2 Dec 2026 11:00:00 +0"
	    "100\" \"lunch\" ((NIL NIL \"carol\" \"example.net\")) ((NIL NIL \"carol\" \""
	    "example.net\")) ((NIL NIL \"carol\" \"example.net\")) ((NIL NIL \"bob\" \""
	    "example.net\")) NIL NIL NIL \"<lunch@example.net>\") (\"TEXT\" \"PLAIN\" "
	    "(\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 14 0) 6) \"mixed\")",
	    "(\"Wed, 2 Dec 2026 12:00:00 +0100\" \"Fwd: lunch\" ((NIL NIL \"bob\" \"ex"
	    "ample.net\")) ((NIL NIL \"bob\" \"example.net\")) ((NIL NIL \"bob\" \"exam"
	    "ple.net\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL NIL)" },
	{ "groups.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1 NIL NIL "
	    "NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1)",
	    "(\"Sat, 5 Dec 2026 10:00:00 +0000\" \"groups\" ((\"Joe Q. Public\" NIL \""
	    "john.q.public\" \"example.com\")) ((\"Michael Jones\" NIL \"mjones\" \"mac"
	    "hine.example\")) ((NIL \"@route1,@route2\" \"user\" \"example.com\")) ((N"
	    "IL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \""
	    "where.test\")(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)(\"Mary "
	    "Smith\" NIL \"mary\" \"x.test\")) ((NIL NIL \"Undisclosed recipients\" NI"
	    "L)(NIL NIL NIL NIL)) ((NIL NIL \"nodomain\" \"MISSING_DOMAIN\")(\"Pete "
	    "Comment\" NIL \"pete\" \"silly.test\")) \"<parent@example.com>\" NIL)" },
	{ "header-only.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL "
	    "NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)",
	    "(NIL \"header only\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"ex"
	    "ample.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)" },
	{ "longline.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10007 2 NIL "
	    "NIL NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10007 2)",
	    "(NIL \"long line\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"exam"
	    "ple.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)" },
	{ "mixed-alt.eml",
	    "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 2"
	    "6 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7B"
	    "IT\" 35 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL N"
	    "IL NIL)(\"application\" \"pdf\" (\"name\" \"report.pdf\") NIL \"The report\""
	    " \"base64\" 28 NIL (\"attachment\" (\"filename\" \"report.pdf\")) NIL NIL)"
	    "(\"image\" \"png\" NIL \"<img1@example.org>\" NIL \"base64\" 12 \"Q2hlY2sgS"
	    "W50ZWdyaXR5IQ==\" (\"inline\" NIL) (\"en\" \"de\") \"http://example.org/im"
	    "g.png\") \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)",
	    "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 2"
	    "6 0)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 35 0) \"alter"
	    "native\")(\"application\" \"pdf\" (\"name\" \"report.pdf\") NIL \"The report"
	    "\" \"base64\" 28)(\"image\" \"png\" NIL \"<img1@example.org>\" NIL \"base64\""
	    " 12) \"mixed\")",
	    "(\"Tue, 1 Dec 2026 10:00:00 +0000\" \"Report\" ((\"Alice Example\" NIL \""
	    "alice\" \"example.org\")) ((\"Alice Example\" NIL \"alice\" \"example.org\""
	    ")) ((\"Alice Example\" NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \""
	    "example.net\")(\"Carol, C.\" NIL \"carol\" \"example.net\")) ((\"Dave\" NIL"
	    " \"dave\" \"example.net\")) NIL NIL \"<report-1@example.org>\")" },
	{ "no-boundary.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1 NIL NIL"
	    " NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1)",
	    "(NIL \"multipart without boundary\" ((NIL NIL \"a\" \"example.org\")) (("
	    "NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL "
	    "NIL NIL NIL)" },
	{ "no-close.eml",
	    "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 0 NIL NIL"
	    " NIL NIL)(\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 40 "
	    "1 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)",
	    "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 0)(\"text\""
	    " \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 40 1) \"mixed\")",
	    "(NIL \"no closing boundary\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL"
	    " \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL"
	    " NIL)" },
	{ "rfc2231.eml",
	    "((\"application\" \"octet-stream\" (\"name*\" \"utf-8''%E2%82%AC%20rates%"
	    "202026.txt\") NIL NIL \"7BIT\" 4 NIL (\"attachment\" (\"filename*\" \"utf-"
	    "8'en'%E2%82%AC%20rates%202026.txt\")) NIL NIL) \"mixed\" (\"boundary\" "
	    "\"x\") NIL NIL NIL)",
	    "((\"application\" \"octet-stream\" (\"name*\" \"utf-8''%E2%82%AC%20rates%"
	    "202026.txt\") NIL NIL \"7BIT\" 4) \"mixed\")",
	    "(NIL \"RFC 2231\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"examp"
	    "le.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)" },
	{ "simple-crlf.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1 NIL NIL"
	    " NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1)",
	    "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" ((\"Fred Foob"
	    "ar\" NIL \"foobar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foob"
	    "ar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybl"
	    "oop.example\")) ((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL "
	    "NIL NIL \"<B27397-0100000@Blurdybloop.example>\")" },
	{ "simple-lf.eml",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1 NIL NIL"
	    " NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1)",
	    "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" ((\"Fred Foob"
	    "ar\" NIL \"foobar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foob"
	    "ar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybl"
	    "oop.example\")) ((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL "
	    "NIL NIL \"<B27397-0100000@Blurdybloop.example>\")" },
};

START_TEST(test_corpus)
{
	size_t n;
	char *msg = test_data_load("mime", corpus[_i].file, &n);
	struct mime_tree t;
	struct buf o = BUF_INIT(0);

	mime_parse(msg, n, NULL, &t);
	mime_bodystructure(&t, msg, NULL, 1, &o);
	ck_assert_msg(strcmp(buf_cstr(&o), corpus[_i].bodystructure) == 0,
	    "%s BODYSTRUCTURE got '%s', want '%s'", corpus[_i].file, buf_cstr(&o),
	    corpus[_i].bodystructure);
	buf_reset(&o);
	mime_bodystructure(&t, msg, NULL, 0, &o);
	ck_assert_msg(strcmp(buf_cstr(&o), corpus[_i].body) == 0,
	    "%s BODY got '%s', want '%s'", corpus[_i].file, buf_cstr(&o), corpus[_i].body);
	buf_reset(&o);
	mime_envelope(msg, t.parts[0].hdr_len, NULL, &o);
	ck_assert_msg(strcmp(buf_cstr(&o), corpus[_i].envelope) == 0,
	    "%s ENVELOPE got '%s', want '%s'", corpus[_i].file, buf_cstr(&o),
	    corpus[_i].envelope);

	/* The cache form gives the same answers. */
	struct buf ser = BUF_INIT(0);
	struct mime_tree t2;
	mime_serialize(&t, &ser);
	ck_assert_int_eq(mime_deserialize(ser.data, ser.len, n, NULL, &t2), 0);
	ck_assert_uint_eq(t2.nparts, t.nparts);
	buf_reset(&o);
	mime_bodystructure(&t2, msg, NULL, 1, &o);
	ck_assert_str_eq(buf_cstr(&o), corpus[_i].bodystructure);
	mime_tree_free(&t2);
	/* Every truncation and every flipped byte is refused or harmless. */
	for (size_t cut = 0; cut < ser.len; cut++) {
		struct mime_tree t3;
		ck_assert_int_eq(mime_deserialize(ser.data, cut, n, NULL, &t3), -1);
	}
	for (size_t i = 0; i < ser.len && i < 400; i++) {
		struct mime_tree t3;
		ser.data[i] ^= 0x5a;
		if (mime_deserialize(ser.data, ser.len, n, NULL, &t3) == 0) {
			struct buf junk = BUF_INIT(0);
			mime_bodystructure(&t3, msg, NULL, 1, &junk);
			buf_free(&junk);
			mime_tree_free(&t3);
		}
		ser.data[i] ^= 0x5a;
	}
	ck_assert_int_eq(mime_deserialize(ser.data, ser.len, n + 1, NULL, &t2), -1);
	buf_free(&ser);
	buf_free(&o);
	mime_tree_free(&t);
	free(msg);
}
END_TEST

/* CRLF and LF forms of one message have the same structure and sizes. */
START_TEST(test_crlf_lf_same)
{
	size_t n1, n2;
	char *a = test_data_load("mime", "simple-crlf.eml", &n1),
	    *b = test_data_load("mime", "simple-lf.eml", &n2);
	struct mime_tree t1, t2;

	mime_parse(a, n1, NULL, &t1);
	mime_parse(b, n2, NULL, &t2);
	ck_assert_uint_eq(t1.parts[0].hdr_size, t2.parts[0].hdr_size);
	ck_assert_uint_eq(t1.parts[0].body_size, t2.parts[0].body_size);
	ck_assert_uint_eq(t1.parts[0].body_lines, t2.parts[0].body_lines);
	ck_assert_uint_eq(t1.parts[0].hdr_size + t1.parts[0].body_size, n1);
	mime_tree_free(&t1);
	mime_tree_free(&t2);
	free(a);
	free(b);
}
END_TEST

static char *
section(const char *file, const char *spec, int *rc)
{
	size_t n;
	char *msg = test_data_load("mime", file, &n);
	struct mime_tree t;
	struct mime_section sec;
	const char *err;
	struct buf o = BUF_INIT(0);

	mime_parse(msg, n, NULL, &t);
	*rc = mime_section_resolve(&t, spec, strlen(spec), &sec, &err);
	if (*rc == 0)
		mime_section_fetch(msg, &sec, &o);
	else if (*rc < 0)
		ck_assert_ptr_nonnull(err);
	mime_section_free(&sec);
	mime_tree_free(&t);
	free(msg);
	buf_putc(&o, 0);
	return buf_steal(&o);
}

static const struct {
	const char *file, *spec;
	int rc;
	const char *want;
} sections[] = {
	{ "forward.eml", "1", 0, "See below." },
	{ "forward.eml", "1.MIME", 0, "Content-Type: text/plain\r\n\r\n" },
	{ "forward.eml", "2.HEADER.FIELDS (Subject from)", 0,
	    "From: carol@example.net\r\nSubject: lunch\r\n\r\n" },
	{ "forward.eml", "2.HEADER.FIELDS.NOT (Subject From To Date)", 0,
	    "Message-ID: <lunch@example.net>\r\n\r\n" },
	{ "forward.eml", "2.TEXT", 0, "Lunch at noon?" },
	{ "forward.eml", "2.1", 0, "Lunch at noon?" },
	{ "forward.eml", "2.1.MIME", 0, "From: carol@example.net\r\nTo: bob@example.net\r\n"
	    "Subject: lunch\r\nDate: Wed, 2 Dec 2026 11:00:00 +0100\r\n"
	    "Message-ID: <lunch@example.net>\r\n\r\n" },
	{ "forward.eml", "2.2", 1, "" },
	{ "forward.eml", "3", 1, "" },
	{ "forward.eml", "1.TEXT", 1, "" },
	{ "forward.eml", "HEADER.FIELDS (\"SUBJECT\")", 0, "Subject: Fwd: lunch\r\n\r\n" },
	{ "simple-lf.eml", "TEXT", 0, "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n" },
	{ "simple-lf.eml", "1", 0, "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n" },
	{ "simple-lf.eml", "2", 1, "" },
	{ "simple-lf.eml", "1.MIME", 0, "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
	    "From: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: afternoon meeting\r\n"
	    "To: mooch@owatagu.siam.edu.example\r\n"
	    "Message-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n" },
	{ "simple-lf.eml", "HEADER.FIELDS (X-None)", 0, "\r\n" },
	{ "mixed-alt.eml", "1.2", 0, "<p>Caf&eacute; report attached.</p>" },
	{ "mixed-alt.eml", "1.1.MIME", 0, "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n" },
	{ "mixed-alt.eml", "3", 0, "iVBORw0KGgo=" },
	{ "mixed-alt.eml", "1.3", 1, "" },
	{ "mixed-alt.eml", "MIME", -1, "" },
	{ "mixed-alt.eml", "0", -1, "" },
	{ "mixed-alt.eml", "01", -1, "" },
	{ "mixed-alt.eml", "1.", -1, "" },
	{ "mixed-alt.eml", "1..2", -1, "" },
	{ "mixed-alt.eml", "HEADER.FIELDS", -1, "" },
	{ "mixed-alt.eml", "HEADER.FIELDS ()", -1, "" },
	{ "mixed-alt.eml", "HEADER.FIELDS (a", -1, "" },
	{ "mixed-alt.eml", "TEXTX", -1, "" },
	{ "mixed-alt.eml", "99999999999999999999", -1, "" },
	{ "header-only.eml", "TEXT", 0, "" },
	{ "header-only.eml", "HEADER", 0, "From: a@example.org\r\nSubject: header only" },
	/* No blank line in the message: none after the fields either. */
	{ "header-only.eml", "HEADER.FIELDS (Subject)", 0, "Subject: header only\r\n" },
	{ "header-only.eml", "HEADER.FIELDS.NOT (Subject)", 0, "From: a@example.org\r\n" },
	{ "header-only.eml", "HEADER.FIELDS (X-None)", 0, "" },
	{ "empty-body.eml", "HEADER.FIELDS (X-None)", 0, "\r\n" },
};

START_TEST(test_sections)
{
	int rc;
	char *got = section(sections[_i].file, sections[_i].spec, &rc);

	ck_assert_msg(rc == sections[_i].rc, "%s [%s] rc %d, want %d", sections[_i].file,
	    sections[_i].spec, rc, sections[_i].rc);
	ck_assert_msg(strcmp(got, sections[_i].want) == 0, "%s [%s] got '%s', want '%s'",
	    sections[_i].file, sections[_i].spec, got, sections[_i].want);
	free(got);
}
END_TEST

START_TEST(test_header_get)
{
	const char *h = "Subject: one\r\n two\r\n\tthree  \r\nX-Empty:\r\nTo : x\r\nbroken line\r\n"
	    "\r\nSubject: body\r\n";
	struct buf o = BUF_INIT(0);

	ck_assert_int_eq(mime_header_get(h, strlen(h), "subject", NULL, &o), 1);
	ck_assert_str_eq(buf_cstr(&o), "one two\tthree");
	ck_assert_int_eq(mime_header_get(h, strlen(h), "X-Empty", NULL, &o), 1);
	ck_assert_str_eq(buf_cstr(&o), "");
	ck_assert_int_eq(mime_header_get(h, strlen(h), "To", NULL, &o), 1);
	ck_assert_str_eq(buf_cstr(&o), "x");
	ck_assert_int_eq(mime_header_get(h, strlen(h), "broken line", NULL, &o), 0);

	/* Only the first max_header_fields fields are looked at. */
	struct mime_limits lim = MIME_LIMITS_DEFAULT;
	lim.max_header_fields = 2;
	ck_assert_int_eq(mime_header_get(h, strlen(h), "To", &lim, &o), 0);
	lim.max_header_fields = 1000;
	lim.max_field_len = 3;
	ck_assert_int_eq(mime_header_get(h, strlen(h), "Subject", &lim, &o), 1);
	ck_assert_str_eq(buf_cstr(&o), "one");
	buf_free(&o);
}
END_TEST

static const struct {
	const char *in, *want;
} words[] = {
	{ "=?UTF-8?Q?Caf=C3=A9?= =?UTF-8?B?IGF1IGxhaXQ=?= and =?bogus?X?broken?= "
	  "=?UTF-8?Q?bad=ZZ?=",
	  "Café au lait and =?bogus?X?broken?= =?UTF-8?Q?bad=ZZ?=" },
	{ "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=", "Keld Jørn Simonsen" },
	{ "=?ISO-8859-1?Q?a?=  \t =?ISO-8859-1?Q?b?=", "ab" },
	{ "=?ISO-8859-1?Q?a?= x =?ISO-8859-1?Q?b?=", "a x b" },
	{ "=?UTF-8*en?Q?hi?=", "hi" },
	{ "=?iso-8859-15?q?=A4uro?=", "€uro" },
	{ "=?x-unknown-cs?Q?abc?=", "=?x-unknown-cs?Q?abc?=" },
	{ "=?UTF-8?B?@@@?=", "=?UTF-8?B?@@@?=" },
	{ "=?UTF-8?Q?has space?=", "=?UTF-8?Q?has space?=" },
	{ "=?UTF-8?Q?unterminated", "=?UTF-8?Q?unterminated" },
	{ "=?", "=?" },
	{ "plain text", "plain text" },
	{ "raw 8-bit Grüße", "raw 8-bit Grüße" },
};

START_TEST(test_decode_words)
{
	struct buf o = BUF_INIT(0);

	mime_decode_words(words[_i].in, strlen(words[_i].in), &o);
	ck_assert_msg(strcmp(buf_cstr(&o), words[_i].want) == 0, "'%s' got '%s', want '%s'",
	    words[_i].in, buf_cstr(&o), words[_i].want);
	buf_free(&o);
}
END_TEST

START_TEST(test_ctype)
{
	struct mime_ctype ct;
	struct buf o = BUF_INIT(0);
	const char *s = "Text/Plain (comment) ; charset = \"utf-8\" ; format=flowed;"
	    " junk; title*0*=us-ascii'en'This%20is%20; title*1*=%2A%2A%2Afun%2A%2A%2A;"
	    " title*2=\"isn't it!\"";

	mime_ctype_parse(s, strlen(s), &ct, 0);
	ck_assert_str_eq(ct.type, "Text");
	ck_assert_str_eq(ct.subtype, "Plain");
	ck_assert_uint_eq(ct.nparams, 3);
	ck_assert_str_eq(ct.params[0].name, "charset");
	ck_assert_str_eq(ct.params[0].value, "utf-8");
	ck_assert_str_eq(ct.params[2].name, "title*");
	ck_assert_str_eq(ct.params[2].value,
	    "us-ascii'en'This%20is%20%2A%2A%2Afun%2A%2A%2Aisn%27t%20it!");
	ck_assert_int_eq(mime_param_get(&ct, "TITLE", &o), 1);
	ck_assert_str_eq(buf_cstr(&o), "This is ***fun***isn't it!");
	ck_assert_int_eq(mime_param_get(&ct, "name", &o), 0);
	mime_ctype_free(&ct);

	/* A type without subtype is no type at all; garbage never crashes. */
	mime_ctype_parse("text", 4, &ct, 0);
	ck_assert_ptr_null(ct.type);
	mime_ctype_free(&ct);
	mime_ctype_parse("a/b; =; x=\"unterminated", 23, &ct, 0);
	ck_assert_str_eq(ct.type, "a");
	ck_assert_uint_eq(ct.nparams, 1);
	ck_assert_str_eq(ct.params[0].value, "unterminated");
	mime_ctype_free(&ct);
	mime_ctype_parse("attachment; filename=a.txt", 26, &ct, 1);
	ck_assert_str_eq(ct.type, "attachment");
	ck_assert_str_eq(ct.params[0].value, "a.txt");
	mime_ctype_free(&ct);
	/* A gap in the sections ends the value. */
	s = "a/b; n*0=x; n*2=z; n*1=y; m*0=p; m*2=q";
	mime_ctype_parse(s, strlen(s), &ct, 0);
	ck_assert_uint_eq(ct.nparams, 2);
	ck_assert_str_eq(ct.params[0].value, "xyz");
	ck_assert_str_eq(ct.params[1].value, "p");
	mime_ctype_free(&ct);
	/* "name*=" without sections keeps its mark: the value is still
	 * charset'language'percent-encoded, and a client must know it. */
	s = "attachment; filename*=UTF-8''r%C3%A9port.pdf; size=12";
	mime_ctype_parse(s, strlen(s), &ct, 1);
	ck_assert_uint_eq(ct.nparams, 2);
	ck_assert_str_eq(ct.params[0].name, "filename*");
	ck_assert_str_eq(ct.params[0].value, "UTF-8''r%C3%A9port.pdf");
	ck_assert_int_eq(mime_param_get(&ct, "filename", &o), 1);
	ck_assert_str_eq(buf_cstr(&o), "r\xc3\xa9port.pdf");
	mime_ctype_free(&ct);
	buf_free(&o);
}
END_TEST

static const struct {
	const char *enc, *in, *want;
	int rc;
} ctes[] = {
	{ "quoted-printable", "Caf=C3=A9 =\r\nsoft  \r\nend=3D=\n", "Café soft\r\nend=", 0 },
	{ "Quoted-Printable", "bad =ZZ =4", "bad =ZZ =4", 0 },
	{ "base64", "SGVs\r\nbG8=\r\n", "Hello", 0 },
	{ "BASE64", "SG!V*sbG8", "Hello", 0 },
	{ "7bit", "as is\r\n", "as is\r\n", 0 },
	{ NULL, "x", "x", 0 },
	{ "x-uuencode", "x", "", -1 },
};

START_TEST(test_cte)
{
	struct buf o = BUF_INIT(0);
	int rc = mime_cte_decode(ctes[_i].enc, ctes[_i].in, strlen(ctes[_i].in), &o);

	ck_assert_int_eq(rc, ctes[_i].rc);
	ck_assert_msg(strcmp(buf_cstr(&o), ctes[_i].want) == 0, "got '%s', want '%s'",
	    buf_cstr(&o), ctes[_i].want);
	buf_free(&o);
}
END_TEST

START_TEST(test_part_limit)
{
	struct buf m = BUF_INIT(0);
	struct mime_limits lim = MIME_LIMITS_DEFAULT;
	struct mime_tree t;

	buf_puts(&m, "Content-Type: multipart/mixed; boundary=b\n\n");
	for (int i = 0; i < 2000; i++)
		buf_printf(&m, "--b\n\npart %d\n", i);
	buf_puts(&m, "--b--\n");
	mime_parse(m.data, m.len, NULL, &t);
	ck_assert_uint_eq(t.nparts, 1000);
	ck_assert(t.flags & MIME_TF_TRUNCATED);
	/* The last part kept ends at its own boundary. */
	ck_assert_uint_eq(t.parts[999].body_len, strlen("part 998"));
	mime_tree_free(&t);

	lim.max_parts = 1;
	mime_parse(m.data, m.len, &lim, &t);
	ck_assert_uint_eq(t.nparts, 1);
	ck_assert(t.parts[0].flags & MIME_PF_ASTEXT);
	mime_tree_free(&t);
	buf_free(&m);
}
END_TEST

START_TEST(test_broken)
{
	static const char *const msgs[] = {
		"",
		"\n",
		"\r\n\r\n",
		"Content-Type: multipart/mixed; boundary=x\n\n--x--\n",
		"Content-Type: multipart/mixed; boundary=x\n\n--x",
		"Content-Type: multipart/mixed; boundary=x\n\n--x\n",
		"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n",
		"Content-Type: message/rfc822\n\n",
		"Content-Type: message/rfc822\n",
		"Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: x\n\nhi\n--d--\n",
		"From: <>\nTo: ,,;:;<@a:>,\"unterminated\nCc: (((\nBcc: a@\n\n",
		"Content-Type: text/plain; charset*0*=''; charset*1*=%ZZ\n\n",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct mime_tree t;
		struct buf o = BUF_INIT(0);
		mime_parse(msgs[i], strlen(msgs[i]), NULL, &t);
		ck_assert_uint_ge(t.nparts, 1);
		mime_bodystructure(&t, msgs[i], NULL, 1, &o);
		ck_assert_uint_gt(o.len, 0);
		mime_envelope(msgs[i], t.parts[0].hdr_len, NULL, &o);
		mime_tree_free(&t);
		buf_free(&o);
	}
	/* digest children default to message/rfc822 */
	struct mime_tree t;
	struct buf o = BUF_INIT(0);
	mime_parse(msgs[9], strlen(msgs[9]), NULL, &t);
	mime_bodystructure(&t, msgs[9], NULL, 0, &o);
	ck_assert_str_eq(buf_cstr(&o), "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 16 "
	    "(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	    "\"US-ASCII\") NIL NIL \"7BIT\" 2 0) 2) \"digest\")");
	mime_tree_free(&t);
	buf_reset(&o);
	mime_parse(msgs[10], strlen(msgs[10]), NULL, &t);
	mime_envelope(msgs[10], t.parts[0].hdr_len, NULL, &o);
	ck_assert_str_eq(buf_cstr(&o), "(NIL NIL NIL NIL NIL "
	    "((NIL NIL \"\" NIL)(NIL NIL NIL NIL)"
	    "(NIL NIL \"unterminated\" \"MISSING_DOMAIN\")) NIL "
	    "((NIL NIL \"a\" \"MISSING_DOMAIN\")) NIL NIL)");
	mime_tree_free(&t);
	buf_free(&o);
}
END_TEST

/* The ENVELOPE of the header msg must be want. */
static void
check_envelope(const char *msg, const char *want)
{
	struct mime_tree t;
	struct buf o = BUF_INIT(0);

	mime_parse(msg, strlen(msg), NULL, &t);
	mime_envelope(msg, t.parts[0].hdr_len, NULL, &o);
	ck_assert_str_eq(buf_cstr(&o), want);
	mime_tree_free(&t);
	buf_free(&o);
}

/* RFC 5322 appendix A.5: comments inside an angle-addr are blanks. */
START_TEST(test_envelope_comments)
{
	check_envelope(
	    "From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\n"
	    "To: <(c)@a.test,@b.test:(c)x(c)@(c)y.test(c)>\n\n",
	    "(NIL NIL "
	    "((\"Pete\" NIL \"pete\" \"silly.test\")) "
	    "((\"Pete\" NIL \"pete\" \"silly.test\")) "
	    "((\"Pete\" NIL \"pete\" \"silly.test\")) "
	    "((NIL \"@a.test,@b.test\" \"x\" \"y.test\")) NIL NIL NIL NIL)");
}
END_TEST

/* A field given more than once: every address of every one. */
START_TEST(test_envelope_repeated)
{
	check_envelope(
	    "From: a@x.test\nCc: c1@x.test\nCC:\nSubject: s\ncc: c2@x.test, c3@x.test\n\n",
	    "(NIL \"s\" "
	    "((NIL NIL \"a\" \"x.test\")) ((NIL NIL \"a\" \"x.test\")) "
	    "((NIL NIL \"a\" \"x.test\")) NIL "
	    "((NIL NIL \"c1\" \"x.test\")(NIL NIL \"c2\" \"x.test\")"
	    "(NIL NIL \"c3\" \"x.test\")) NIL NIL NIL)");
	/* an empty first one, then a value as short as the separator */
	check_envelope("To:\nTo: ab\nTo:\n\n", "(NIL NIL NIL NIL NIL "
	    "((NIL NIL \"ab\" \"MISSING_DOMAIN\")) NIL NIL NIL NIL)");
}
END_TEST

static Suite *
mime_suite(void)
{
	Suite *s = suite_create("mime");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_corpus, 0, sizeof(corpus) / sizeof(corpus[0]));
	tcase_add_test(tc, test_crlf_lf_same);
	tcase_add_loop_test(tc, test_sections, 0, sizeof(sections) / sizeof(sections[0]));
	tcase_add_test(tc, test_header_get);
	tcase_add_loop_test(tc, test_decode_words, 0, sizeof(words) / sizeof(words[0]));
	tcase_add_test(tc, test_ctype);
	tcase_add_loop_test(tc, test_cte, 0, sizeof(ctes) / sizeof(ctes[0]));
	tcase_add_test(tc, test_part_limit);
	tcase_add_test(tc, test_broken);
	tcase_add_test(tc, test_envelope_comments);
	tcase_add_test(tc, test_envelope_repeated);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mime_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
