/*
 * test_showq - the queue listing formats (mailq text, postqueue -j JSON)
 * and the showq ipc form, driven with in-memory summaries and frames.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/ipc.h"
#include "mail/showq.h"

#define ID1 "4jXFq20rmDz1bgS0"

static struct showq_rcpt rcpts[] = {
	{ "a@example.com", "", "connect to mx: Connection refused" },
	{ "b@example.com", "B@example.com", "connect to mx: Connection refused" },
	{ "c@example.com", "", "" },
};

static struct showq_msg
sample(const char *queue)
{
	struct showq_msg m;

	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "%s", ID1);
	snprintf(m.queue, sizeof(m.queue), "%s", queue);
	m.arrival = 1700000000;
	m.size = 2345;
	m.sender = (char *)"sender@example.org";
	m.rcpts = rcpts;
	m.nrcpt = 3;
	return m;
}

START_TEST(test_header)
{
	struct buf b = BUF_INIT(0);

	showq_format_header(&b);
	ck_assert_str_eq(buf_cstr(&b), "-Queue ID-        --Size-- ---Arrival Time---- "
	    "-Sender/Recipient-------\n");
	buf_free(&b);
}
END_TEST

START_TEST(test_mailq_message)
{
	struct showq_msg m = sample("deferred");
	struct buf b = BUF_INIT(0);
	char when[32], expect[1024];
	struct tm tm;
	time_t t = 1700000000;
	const char *why = "(connect to mx: Connection refused)";

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
	showq_format_mailq(&m, &b);
	snprintf(expect, sizeof(expect),
	    "%-17s %8d %s sender@example.org\n"
	    "%*s%s\n"
	    "%47sa@example.com\n"
	    "%47sb@example.com\n"
	    "%47sc@example.com\n"
	    "\n", ID1, 2345, when, (int)(78 - strlen(why)), "", why, "", "", "");
	ck_assert_str_eq(buf_cstr(&b), expect);
	buf_free(&b);
}
END_TEST

START_TEST(test_mailq_flags)
{
	static const struct {
		const char *queue;
		int expire;
		const char *id;
	} cases[] = {
		{ "active", 0, ID1 "*" },
		{ "hold", 0, ID1 "!" },
		{ "deferred", 1, ID1 "#" },
		{ "incoming", 0, ID1 " " },
	};
	struct buf b = BUF_INIT(0);
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct showq_msg m = sample(cases[i].queue);

		m.forced_expire = cases[i].expire;
		buf_reset(&b);
		showq_format_mailq(&m, &b);
		ck_assert_msg(strncmp(buf_cstr(&b), cases[i].id, strlen(cases[i].id)) == 0,
		    "%s: %s", cases[i].queue, buf_cstr(&b));
	}
	buf_free(&b);
}
END_TEST

START_TEST(test_mailq_null_sender_and_controls)
{
	struct showq_rcpt r = { (char *)"x\033[2J@example.com", (char *)"", (char *)"" };
	struct showq_msg m = sample("deferred");
	struct buf b = BUF_INIT(0);

	m.sender = (char *)"";
	m.rcpts = &r;
	m.nrcpt = 1;
	showq_format_mailq(&m, &b);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&b), " MAILER-DAEMON\n"));
	ck_assert_ptr_null(strchr(buf_cstr(&b), '\033'));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&b), "x?[2J@example.com"));
	buf_free(&b);
}
END_TEST

START_TEST(test_footer)
{
	struct buf b = BUF_INIT(0);

	showq_format_footer(&b, 0, 0);
	ck_assert_str_eq(buf_cstr(&b), "Mail queue is empty\n");
	buf_reset(&b);
	showq_format_footer(&b, 358, 1);
	ck_assert_str_eq(buf_cstr(&b), "-- 1 Kbytes in 1 Request.\n");
	buf_reset(&b);
	showq_format_footer(&b, 4096, 3);
	ck_assert_str_eq(buf_cstr(&b), "-- 4 Kbytes in 3 Requests.\n");
	buf_free(&b);
}
END_TEST

START_TEST(test_json_message)
{
	struct showq_msg m = sample("deferred");
	struct buf b = BUF_INIT(0);

	showq_format_json(&m, &b);
	ck_assert_str_eq(buf_cstr(&b),
	    "{\"queue_name\": \"deferred\", \"queue_id\": \"" ID1 "\", "
	    "\"arrival_time\": 1700000000, \"message_size\": 2345, "
	    "\"forced_expire\": false, \"sender\": \"sender@example.org\", "
	    "\"recipients\": ["
	    "{\"address\": \"a@example.com\", \"delay_reason\": \"connect to mx: Connection refused\"}, "
	    "{\"address\": \"b@example.com\", \"orig_address\": \"B@example.com\", "
	    "\"delay_reason\": \"connect to mx: Connection refused\"}, "
	    "{\"address\": \"c@example.com\"}]}\n");
	buf_free(&b);
}
END_TEST

START_TEST(test_json_strings)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ "", "\"\"" },
		{ "plain", "\"plain\"" },
		{ "q\"b\\", "\"q\\\"b\\\\\"" },
		{ "t\tn\nc\001d\177", "\"t\\tn\\nc\\u0001d\\u007f\"" },
		{ "j\xc3\xbcrgen", "\"j\xc3\xbcrgen\"" },             /* UTF-8 kept */
		{ "\xf0\x9f\x93\xa7", "\"\xf0\x9f\x93\xa7\"" },
		{ "bad\xff", "\"bad\\ufffd\"" },                     /* not UTF-8 */
		{ "\xc3", "\"\\ufffd\"" },                           /* truncated */
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },                /* overlong */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },     /* surrogate */
	};
	struct buf b = BUF_INIT(0);
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		showq_json_string(&b, cases[i].in);
		ck_assert_msg(strcmp(buf_cstr(&b), cases[i].out) == 0, "case %zu: %s", i,
		    buf_cstr(&b));
	}
	buf_free(&b);
}
END_TEST

START_TEST(test_ipc_roundtrip)
{
	struct showq_msg m = sample("hold"), d;
	struct ipc_msg f;
	char *err = NULL;
	size_t i;

	m.omitted = 7;
	ipc_init(&f);
	showq_msg_encode(&m, &f);
	ck_assert_int_eq(showq_msg_decode(&f, &d, &err), 0);
	ck_assert_str_eq(d.id, ID1);
	ck_assert_str_eq(d.queue, "hold");
	ck_assert_int_eq(d.arrival, 1700000000);
	ck_assert_int_eq(d.size, 2345);
	ck_assert_str_eq(d.sender, "sender@example.org");
	ck_assert_uint_eq(d.omitted, 7);
	ck_assert_uint_eq(d.nrcpt, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_str_eq(d.rcpts[i].addr, rcpts[i].addr);
		ck_assert_str_eq(d.rcpts[i].orig, rcpts[i].orig);
		ck_assert_str_eq(d.rcpts[i].reason, rcpts[i].reason);
	}
	showq_msg_free(&d);
	ipc_free(&f);
}
END_TEST

/* Frames built from "name=value" lists; each must be refused. */
START_TEST(test_ipc_garbage)
{
	static const char *const bad[][12] = {
		{ NULL },
		{ "queue=deferred", NULL },
		{ "queue=nope", "id=" ID1, "arrival=1", "size=1", "expire=0", "sender=",
		  "omitted=0", NULL },
		{ "queue=deferred", "id=../../x", "arrival=1", "size=1", "expire=0",
		  "sender=", "omitted=0", NULL },
		{ "queue=deferred", "id=" ID1, "arrival=-1", "size=1", "expire=0",
		  "sender=", "omitted=0", NULL },
		{ "queue=deferred", "id=" ID1, "arrival=1", "size=1x", "expire=0",
		  "sender=", "omitted=0", NULL },
		{ "queue=deferred", "id=" ID1, "arrival=1", "size=1", "expire=2",
		  "sender=", "omitted=0", NULL },
		{ "queue=deferred", "id=" ID1, "arrival=1", "size=1", "expire=0",
		  "sender=", "omitted=0", "rcpt=a", NULL },
		{ "queue=deferred", "id=" ID1, "arrival=1", "size=1", "expire=0",
		  "sender=", "omitted=0", "rcpt=a", "reason=x", NULL },
		{ "queue=deferred", "id=" ID1, "arrival=1", "size=1", "expire=0",
		  "sender=", "omitted=0", "orig=a", NULL },
		{ "queue=deferred", "id=" ID1, "arrival=1", "size=1", "expire=0",
		  "sender=", "omitted=0", "bogus=1", NULL },
		{ "queue=deferred", "queue=deferred", "id=" ID1, "arrival=1", "size=1",
		  "expire=0", "sender=", "omitted=0", NULL },
	};
	struct showq_msg d;
	struct ipc_msg f;
	char *err, name[64];
	size_t i, j;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ipc_init(&f);
		for (j = 0; bad[i][j] != NULL; j++) {
			const char *eq = strchr(bad[i][j], '=');

			snprintf(name, sizeof(name), "%.*s", (int)(eq - bad[i][j]), bad[i][j]);
			ipc_put(&f, name, eq + 1);
		}
		err = NULL;
		ck_assert_msg(showq_msg_decode(&f, &d, &err) == -1, "case %zu accepted", i);
		ck_assert_ptr_nonnull(err);
		free(err);
		ipc_free(&f);
	}
}
END_TEST

static Suite *
showq_suite(void)
{
	Suite *s = suite_create("showq");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_header);
	tcase_add_test(tc, test_mailq_message);
	tcase_add_test(tc, test_mailq_flags);
	tcase_add_test(tc, test_mailq_null_sender_and_controls);
	tcase_add_test(tc, test_footer);
	tcase_add_test(tc, test_json_message);
	tcase_add_test(tc, test_json_strings);
	tcase_add_test(tc, test_ipc_roundtrip);
	tcase_add_test(tc, test_ipc_garbage);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(showq_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
