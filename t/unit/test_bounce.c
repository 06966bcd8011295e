/*
 * test_bounce - the DSN composer and the bounce/defer log lines.
 *
 * The composer is pure, so every case builds a bounce_info, composes and
 * inspects the bytes: MIME structure, the RFC 3464 fields, the quoting of
 * remote texts (no control characters, no header injection), RET=HDRS
 * truncation, line lengths, and the failures that must leave out alone.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "mail/bounce.h"

#define BOUNDARY "4dQzXYZ0123z5.1700000000/mx.example"

static const char orig_lf[] =
    "Received: from client.example (client.example [192.0.2.7])\n"
    "\tby mx.example\n"
    "Subject: hello\n"
    "From: Alice <alice@example.org>\n"
    "\n"
    "secret body line\n"
    "second body line\n";

static struct bounce_rcpt rcpts2[] = {
	{ "bob@remote.example", "rfc822;bob@remote.example", "5.1.1",
	  "mx.remote.example[198.51.100.1]:25",
	  "host mx.remote.example[198.51.100.1] said: 550 5.1.1 <bob@remote.example>: "
	  "Recipient address rejected: User unknown (in reply to RCPT TO command)", 1 },
	{ "carol@mx.example", "list@mx.example", "5.2.2", "local",
	  "cannot write mailbox: quota exceeded", 0 },
};

static void
base_info(struct bounce_info *in)
{
	memset(in, 0, sizeof(*in));
	in->myhostname = "mx.example";
	in->queue_id = "4dQzXYZ0123z5";
	in->sender = "alice@example.org";
	in->envid = NULL;
	in->date = "Tue, 14 Nov 2023 22:13:20 +0000";
	in->arrival_date = "Tue, 14 Nov 2023 22:10:00 +0000";
	in->message_id = "<20231114221320.4dQzXYZ0124z6@mx.example>";
	in->boundary = BOUNDARY;
	in->orig_msg = orig_lf;
	in->orig_len = sizeof(orig_lf) - 1;
	in->rcpts = rcpts2;
	in->nrcpt = 2;
}

static char *
compose_ok(const struct bounce_info *in)
{
	struct buf out = BUF_INIT(0);
	const char *err = NULL;
	int rc;

	rc = bounce_compose(&out, in, &err);
	ck_assert_msg(rc == 0, "compose failed: %s", err ? err : "?");
	return buf_steal(&out);
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0, l = strlen(needle);
	const char *p = hay;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += l;
	}
	return n;
}

/* Every line ends in LF, is at most 998 octets, has no CR or other
 * control characters except TAB (allowed only as header folding). */
static void
check_lines(const char *s)
{
	const char *p = s, *nl;
	size_t len, i;

	ck_assert_msg(*s != '\0', "empty output");
	ck_assert_msg(s[strlen(s) - 1] == '\n', "output does not end in LF");
	while (*p != '\0') {
		nl = strchr(p, '\n');
		ck_assert_ptr_nonnull(nl);
		len = (size_t)(nl - p);
		ck_assert_msg(len <= BOUNCE_LINE_MAX, "line of %zu octets", len);
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)p[i];

			ck_assert_msg(c == '\t' || (c >= 0x20 && c != 0x7f),
			    "control character 0x%02x in line", c);
		}
		p = nl + 1;
	}
}

START_TEST(test_structure)
{
	struct bounce_info in;
	char *s, *body, *p1, *p2, *p3, *end;

	base_info(&in);
	s = compose_ok(&in);
	check_lines(s);
	ck_assert_ptr_eq(strstr(s, "Date: Tue, 14 Nov 2023 22:13:20 +0000\n"), s);
	ck_assert_ptr_nonnull(strstr(s,
	    "\nFrom: MAILER-DAEMON@mx.example (Mail Delivery System)\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nSubject: Undelivered Mail Returned to Sender\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nTo: alice@example.org\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nAuto-Submitted: auto-replied\n"));
	ck_assert_ptr_nonnull(strstr(s,
	    "\nMessage-Id: <20231114221320.4dQzXYZ0124z6@mx.example>\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nMIME-Version: 1.0\n"));
	ck_assert_ptr_nonnull(strstr(s,
	    "\nContent-Type: multipart/report; report-type=delivery-status;\n"
	    "    boundary=\"" BOUNDARY "\"\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nContent-Transfer-Encoding: 7bit\n"));

	/* The header ends before the first part; three parts, in order. */
	body = strstr(s, "\n\n");
	ck_assert_ptr_nonnull(body);
	ck_assert_ptr_null(memmem(s, (size_t)(body - s), "--" BOUNDARY "\n", 3 + strlen(BOUNDARY)));
	ck_assert_uint_eq(count(s, "\n--" BOUNDARY "\n"), 3);
	ck_assert_uint_eq(count(s, "\n--" BOUNDARY "--\n"), 1);
	end = strstr(s, "\n--" BOUNDARY "--\n");
	ck_assert_str_eq(end, "\n--" BOUNDARY "--\n");
	p1 = strstr(s, "\n--" BOUNDARY "\nContent-Description: Notification\n"
	    "Content-Type: text/plain; charset=us-ascii\n\n");
	p2 = strstr(s, "\n--" BOUNDARY "\nContent-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n");
	p3 = strstr(s, "\n--" BOUNDARY "\nContent-Description: Undelivered Message Headers\n"
	    "Content-Type: text/rfc822-headers\n\n");
	ck_assert_ptr_nonnull(p1);
	ck_assert_ptr_nonnull(p2);
	ck_assert_ptr_nonnull(p3);
	ck_assert(p1 < p2 && p2 < p3 && p3 < end);
	free(s);
}
END_TEST

START_TEST(test_status_fields)
{
	struct bounce_info in;
	char *s, *st;

	base_info(&in);
	in.envid = "QQ314159";
	s = compose_ok(&in);
	st = strstr(s, "Content-Type: message/delivery-status\n\n");
	ck_assert_ptr_nonnull(st);
	ck_assert_ptr_nonnull(strstr(st,
	    "\n\nReporting-MTA: dns; mx.example\n"
	    "X-Postern-Queue-ID: 4dQzXYZ0123z5\n"
	    "X-Postern-Sender: rfc822; alice@example.org\n"
	    "Original-Envelope-Id: QQ314159\n"
	    "Arrival-Date: Tue, 14 Nov 2023 22:10:00 +0000\n"
	    "\n"
	    "Final-Recipient: rfc822; bob@remote.example\n"
	    "Original-Recipient: rfc822;bob@remote.example\n"
	    "Action: failed\n"
	    "Status: 5.1.1\n"
	    "Remote-MTA: dns; mx.remote.example\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.example>: Recipient address\n"
	    "    rejected: User unknown\n"
	    "\n"
	    "Final-Recipient: rfc822; carol@mx.example\n"
	    "Original-Recipient: rfc822; list@mx.example\n"
	    "Action: failed\n"
	    "Status: 5.2.2\n"
	    "Diagnostic-Code: x-unix; cannot write mailbox: quota exceeded\n"
	    "\n--" BOUNDARY "\n"));
	free(s);
}
END_TEST

START_TEST(test_text_part)
{
	struct bounce_info in;
	char *s, *t;

	base_info(&in);
	s = compose_ok(&in);
	t = strstr(s, "charset=us-ascii\n\n");
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(strstr(t, "This is the mail system at host mx.example.\n"));
	/* The remote text is quoted whole, wrapped with an indent. */
	ck_assert_ptr_nonnull(strstr(t,
	    "<bob@remote.example>: host mx.remote.example[198.51.100.1] said: 550 5.1.1\n"
	    "    <bob@remote.example>: Recipient address rejected: User unknown (in reply\n"
	    "    to RCPT TO command)\n"));
	ck_assert_ptr_nonnull(strstr(t,
	    "<carol@mx.example> (expanded from <list@mx.example>): cannot write mailbox:\n"
	    "    quota exceeded\n"));
	free(s);
}
END_TEST

/* Texts from remote servers cannot inject lines or control bytes. */
START_TEST(test_hostile_text)
{
	struct bounce_info in;
	struct bounce_rcpt r = { "bob@remote.example", NULL, "5.7.1", "none",
		"rejected\r\nX-Evil: 1\r\n\r\nbody\ttab\x01\x7f end", 0 };
	char *s, *p;

	base_info(&in);
	in.rcpts = &r;
	in.nrcpt = 1;
	s = compose_ok(&in);
	check_lines(s);
	for (p = s; (p = strstr(p, "X-Evil")) != NULL; p++)
		ck_assert_msg(p[-1] != '\n', "injected line start");
	ck_assert_ptr_nonnull(strstr(s,
	    "Diagnostic-Code: x-unix; rejected X-Evil: 1 body tab end\n"));
	ck_assert_ptr_null(strstr(s, "Original-Recipient"));
	ck_assert_ptr_null(strstr(s, "Remote-MTA"));
	free(s);
}
END_TEST

static const struct {
	const char *name;
	const char *msg;
} hdrs_cases[] = {
	{ "lf", "Subject: hello\nFrom: a@b\n\nsecret body\n" },
	{ "crlf", "Subject: hello\r\nFrom: a@b\r\n\r\nsecret body\r\n" },
	{ "no-final-newline", "Subject: hello\nFrom: a@b\n\nsecret body" },
};

START_TEST(test_ret_hdrs)
{
	struct bounce_info in;
	char *s, *h;

	base_info(&in);
	in.orig_msg = hdrs_cases[_i].msg;
	in.orig_len = strlen(hdrs_cases[_i].msg);
	s = compose_ok(&in);
	check_lines(s);
	h = strstr(s, "Content-Type: text/rfc822-headers\n\n");
	ck_assert_msg(h != NULL, "%s: no headers part", hdrs_cases[_i].name);
	ck_assert_str_eq(h, "Content-Type: text/rfc822-headers\n\n"
	    "Subject: hello\nFrom: a@b\n\n--" BOUNDARY "--\n");
	ck_assert_ptr_null(strstr(s, "secret body"));
	free(s);
}
END_TEST

START_TEST(test_ret_full)
{
	struct bounce_info in;
	char *s, *m;

	base_info(&in);
	in.return_full = 1;
	s = compose_ok(&in);
	check_lines(s);
	m = strstr(s, "Content-Description: Undelivered Message\n"
	    "Content-Type: message/rfc822\n\n");
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "Subject: hello\n"));
	ck_assert_ptr_nonnull(strstr(m, "\n\nsecret body line\nsecond body line\n"
	    "\n--" BOUNDARY "--\n"));
	ck_assert_ptr_null(strstr(s, "text/rfc822-headers"));
	free(s);
}
END_TEST

/* A delay warning: says so in the subject and the text, Action delayed
 * with a 4.x.x status (a 5.x.x one is not passed on as such), the retry
 * limit, and only the header even with RET=FULL. */
START_TEST(test_delayed)
{
	static struct bounce_rcpt late[] = {
		{ "bob@remote.example", NULL, "4.4.1", NULL,
		  "connect to mx.remote.example[198.51.100.1]:25: Connection refused", 0 },
		{ "carol@remote.example", NULL, "5.1.1", NULL, "odd", 0 },
	};
	struct bounce_info in;
	char *s;

	base_info(&in);
	in.delayed = 1;
	in.return_full = 1;
	in.retry_until = "Tue, 19 Nov 2023 22:10:00 +0000";
	in.rcpts = late;
	in.nrcpt = 2;
	s = compose_ok(&in);
	check_lines(s);
	ck_assert_ptr_nonnull(strstr(s, "\nSubject: Delayed Mail (still being retried)\n"));
	ck_assert_ptr_nonnull(strstr(s, "THIS IS A WARNING ONLY"));
	ck_assert_uint_eq(count(s, "Action: delayed\n"), 2);
	ck_assert_ptr_null(strstr(s, "Action: failed"));
	ck_assert_ptr_nonnull(strstr(s, "Status: 4.4.1\n"));
	ck_assert_ptr_nonnull(strstr(s, "Status: 4.0.0\n"));
	ck_assert_uint_eq(count(s, "Will-Retry-Until: Tue, 19 Nov 2023 22:10:00 +0000\n"), 2);
	ck_assert_ptr_nonnull(strstr(s, "Content-Description: Message Headers\n"
	    "Content-Type: text/rfc822-headers\n\n"));
	ck_assert_ptr_null(strstr(s, "secret body"));
	ck_assert_ptr_null(strstr(s, "message/rfc822"));
	free(s);

	/* A retry date that could inject a field is refused. */
	{
		struct buf out = BUF_INIT(0);
		const char *err = NULL;

		in.retry_until = "soon\nBcc: x@y";
		ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);
		ck_assert_uint_eq(out.len, 0);
		buf_free(&out);
	}
}
END_TEST

/* A failed notification (the null sender) reported to the postmaster. */
START_TEST(test_postmaster_copy)
{
	struct bounce_info in;
	struct buf out = BUF_INIT(0);
	const char *err = NULL;
	char *s;

	base_info(&in);
	in.sender = "";
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);   /* nobody to tell */
	ck_assert_uint_eq(out.len, 0);
	in.to = "postmaster@mx.example";
	s = compose_ok(&in);
	check_lines(s);
	ck_assert_ptr_nonnull(strstr(s, "\nSubject: Postmaster Copy: Undelivered Mail\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nTo: postmaster@mx.example\n"));
	ck_assert_ptr_nonnull(strstr(s, "there is nobody to return it to"));
	ck_assert_ptr_null(strstr(s, "X-Postern-Sender"));
	ck_assert_uint_eq(count(s, "Action: failed\n"), 2);
	free(s);
	in.to = "postmaster@mx.example\nBcc: x@y";
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);
	buf_free(&out);
}
END_TEST

START_TEST(test_no_original)
{
	struct bounce_info in;
	char *s;

	base_info(&in);
	in.orig_msg = NULL;
	in.orig_len = 0;
	s = compose_ok(&in);
	ck_assert_uint_eq(count(s, "\n--" BOUNDARY "\n"), 2);
	ck_assert_ptr_null(strstr(s, "rfc822-headers"));
	free(s);
}
END_TEST

START_TEST(test_long_lines)
{
	struct bounce_info in;
	struct bounce_rcpt r = { "bob@remote.example", NULL, "5.0.0", "none", NULL, 0 };
	struct buf orig = BUF_INIT(0), text = BUF_INIT(0), longorig = BUF_INIT(0);
	char *s;
	size_t i;

	for (i = 0; i < 5000; i++)
		buf_putc(&text, (char)('a' + i % 26));
	buf_puts(&text, " tail");
	buf_puts(&orig, "X-Long: ");
	for (i = 0; i < 3000; i++)
		buf_putc(&orig, (char)('A' + i % 26));
	buf_puts(&orig, "\nSubject: s\n\n");
	for (i = 0; i < 2500; i++)
		buf_putc(&orig, 'b');
	buf_puts(&orig, "\n");
	for (i = 0; i < 1500; i++)
		buf_putc(&longorig, (char)('m' + i % 5));
	r.text = buf_cstr(&text);
	r.orig = buf_cstr(&longorig);

	base_info(&in);
	in.rcpts = &r;
	in.nrcpt = 1;
	in.orig_msg = orig.data;
	in.orig_len = orig.len;
	in.return_full = 1;
	s = compose_ok(&in);
	check_lines(s);
	/* A broken header line continues with white space. */
	{
		const char *x = strstr(s, "\nX-Long: ");

		ck_assert_ptr_nonnull(x);
		x = strchr(x + 1, '\n');
		ck_assert_int_eq(x[1], '\t');
	}
	ck_assert_ptr_nonnull(strstr(s, " tail"));
	free(s);
	buf_free(&orig);
	buf_free(&text);
	buf_free(&longorig);
}
END_TEST

START_TEST(test_eightbit)
{
	struct bounce_info in;
	static const char msg[] = "Subject: gr\xc3\xbc\xc3\x9f""e\n\nbody\n";
	char *s;

	base_info(&in);
	in.orig_msg = msg;
	in.orig_len = sizeof(msg) - 1;
	s = compose_ok(&in);
	ck_assert_ptr_nonnull(strstr(s, "\nContent-Transfer-Encoding: 8bit\n\nThis is"));
	ck_assert_ptr_nonnull(strstr(s, "Content-Type: text/rfc822-headers\n"
	    "Content-Transfer-Encoding: 8bit\n\n"));
	free(s);
}
END_TEST

START_TEST(test_bad_status)
{
	struct bounce_info in;
	static const char *const bad[] = { "", "2.0.0", "5.1", "5.1.1x", "x", "5.1234.1", NULL };
	struct bounce_rcpt r = { "bob@remote.example", NULL, NULL, "none", "t", 0 };
	char *s;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		r.dsn = bad[i];
		base_info(&in);
		in.rcpts = &r;
		in.nrcpt = 1;
		s = compose_ok(&in);
		ck_assert_msg(strstr(s, "\nStatus: 5.0.0\n") != NULL, "dsn %s", bad[i] ? bad[i] : "NULL");
		free(s);
	}
	r.dsn = "4.4.7";
	base_info(&in);
	in.rcpts = &r;
	in.nrcpt = 1;
	in.expired = 1;
	s = compose_ok(&in);
	ck_assert_ptr_nonnull(strstr(s, "\nStatus: 4.4.7\n"));
	ck_assert_ptr_nonnull(strstr(s, "longer than this system"));
	free(s);
}
END_TEST

/* Errors leave out as it was. */
START_TEST(test_errors)
{
	struct bounce_info in;
	struct buf out = BUF_INIT(0);
	const char *err;
	static const char with_boundary[] = "Subject: x\nX-B: --" BOUNDARY "\n\n";

	buf_puts(&out, "keep");
	base_info(&in);
	in.sender = "";
	err = NULL;
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);
	ck_assert_ptr_nonnull(err);

	base_info(&in);
	in.nrcpt = 0;
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);

	base_info(&in);
	in.boundary = "bad\nboundary";
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);
	base_info(&in);
	in.boundary = "";
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);
	base_info(&in);
	in.boundary = "0123456789012345678901234567890123456789012345678901234567890123456789x";
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);

	base_info(&in);
	in.myhostname = NULL;
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);
	base_info(&in);
	in.sender = "a@b\nBcc: x@y";
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);

	base_info(&in);
	in.orig_msg = with_boundary;
	in.orig_len = sizeof(with_boundary) - 1;
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);
	ck_assert_str_eq(err, "boundary occurs in the content");
	ck_assert_str_eq(buf_cstr(&out), "keep");

	/* out's own limit */
	buf_free(&out);
	buf_init(&out, 100);
	buf_puts(&out, "keep");
	base_info(&in);
	ck_assert_int_eq(bounce_compose(&out, &in, &err), -1);
	ck_assert_str_eq(buf_cstr(&out), "keep");
	buf_free(&out);
}
END_TEST

static const struct {
	const char *text;
	int is_smtp;
	const char *reply;
} reply_cases[] = {
	{ "host mx[1.2.3.4] said: 550 5.1.1 no such user (in reply to RCPT TO command)",
	  1, "550 5.1.1 no such user" },
	{ "host mx[1.2.3.4] said: 554 5.7.1 spam (see (x)) (in reply to end of DATA command)",
	  1, "554 5.7.1 spam (see (x))" },
	{ "host mx[1.2.3.4] said: 552 too big", 1, "552 too big" },
	{ "mailbox full", 0, "mailbox full" },
	{ "", 0, "" },
};

START_TEST(test_smtp_reply)
{
	size_t len;
	const char *p;

	ck_assert_int_eq(bounce_text_is_smtp(reply_cases[_i].text), reply_cases[_i].is_smtp);
	p = bounce_smtp_reply(reply_cases[_i].text, &len);
	ck_assert_uint_eq(len, strlen(reply_cases[_i].reply));
	ck_assert(memcmp(p, reply_cases[_i].reply, len) == 0);
}
END_TEST

START_TEST(test_log_lines)
{
	struct buf b = BUF_INIT(0);
	char *line, *f[5];

	bounce_log_bounce_line(&b, "bob@x", "", "5.1.1", "mx[1.2.3.4]:25",
	    "said:\t550\r\nuser\tunknown");
	ck_assert_str_eq(buf_cstr(&b), "bob@x\t\t5.1.1\tmx[1.2.3.4]:25\tsaid: 550  user unknown\n");
	line = buf_steal(&b);
	line[strlen(line) - 1] = '\0';
	ck_assert_uint_eq(bounce_log_split(line, f, 5), 5);
	ck_assert_str_eq(f[0], "bob@x");
	ck_assert_str_eq(f[1], "");
	ck_assert_str_eq(f[2], "5.1.1");
	ck_assert_str_eq(f[3], "mx[1.2.3.4]:25");
	ck_assert_str_eq(f[4], "said: 550  user unknown");
	free(line);

	bounce_log_defer_line(&b, "a\tb@x", NULL, "t");
	ck_assert_str_eq(buf_cstr(&b), "a b@x\t\tt\n");
	buf_free(&b);

	line = strdup("one\ttwo\tthree\tfour");
	ck_assert_uint_eq(bounce_log_split(line, f, 3), 3);
	ck_assert_str_eq(f[2], "three\tfour");
	free(line);
	line = strdup("only");
	ck_assert_uint_eq(bounce_log_split(line, f, 3), 1);
	free(line);
}
END_TEST

START_TEST(test_date)
{
	char d[64];

	setenv("TZ", "UTC", 1);
	tzset();
	bounce_format_date(1700000000, d, sizeof(d));
	ck_assert_str_eq(d, "Tue, 14 Nov 2023 22:13:20 +0000");
	setenv("TZ", "EST5", 1);
	tzset();
	bounce_format_date(1700000000, d, sizeof(d));
	ck_assert_str_eq(d, "Tue, 14 Nov 2023 17:13:20 -0500");
}
END_TEST

static Suite *
bounce_suite(void)
{
	Suite *s = suite_create("bounce");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_structure);
	tcase_add_test(tc, test_status_fields);
	tcase_add_test(tc, test_text_part);
	tcase_add_test(tc, test_hostile_text);
	tcase_add_loop_test(tc, test_ret_hdrs, 0, ARRAY_SIZE(hdrs_cases));
	tcase_add_test(tc, test_ret_full);
	tcase_add_test(tc, test_no_original);
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_eightbit);
	tcase_add_test(tc, test_bad_status);
	tcase_add_test(tc, test_errors);
	tcase_add_loop_test(tc, test_smtp_reply, 0, ARRAY_SIZE(reply_cases));
	tcase_add_test(tc, test_log_lines);
	tcase_add_test(tc, test_date);
	tcase_add_test(tc, test_delayed);
	tcase_add_test(tc, test_postmaster_copy);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bounce_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
