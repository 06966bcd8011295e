/*
 * test_dlvlog - the shared delivery status line: Postfix's number style,
 * the delays= split (clamped, adding up), orig_to= only when different,
 * control characters flattened, and stamps taken from a request.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "mail/deliver.h"
#include "mail/dlvlog.h"

START_TEST(test_delay_style)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{ 0, "0" }, { 0.004, "0" }, { 0.01, "0.01" }, { 0.123, "0.12" },
		{ 0.5, "0.5" }, { 1, "1" }, { 3.45, "3.5" }, { 9.94, "9.9" },
		{ 10, "10" }, { 123.6, "124" },
	};
	char out[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dlvlog_format_delay(out, sizeof(out), cases[i].v);
		ck_assert_msg(strcmp(out, cases[i].want) == 0, "%g: got %s, want %s",
		    cases[i].v, out, cases[i].want);
	}
}
END_TEST

static struct timespec
ts(long s, long ms)
{
	struct timespec t = { s, ms * 1000000L };

	return t;
}

START_TEST(test_line)
{
	struct dlvlog_times t;
	struct timespec now = ts(1012, 0);
	struct buf b = BUF_INIT(0);

	memset(&t, 0, sizeof(t));
	t.arrival = ts(1000, 0);
	t.active = ts(1001, 0);
	t.handoff = ts(1001, 500);
	t.connected = ts(1002, 0);
	dlvlog_format(&b, "4dQzBc", "bob@example.com", "rfc822;Alias@example.com",
	    "virtual", &t, &now, "2.0.0", "sent", "delivered to maildir");
	ck_assert_str_eq(buf_cstr(&b), "4dQzBc: to=<bob@example.com>, "
	    "orig_to=<Alias@example.com>, relay=virtual, delay=12, "
	    "delays=1/0.5/0.5/10, dsn=2.0.0, status=sent (delivered to maildir)");

	/* Same address: no orig_to; unknown stamps count as the one before;
	 * a stamp after "now" is clamped; control characters become spaces. */
	buf_reset(&b);
	memset(&t, 0, sizeof(t));
	t.arrival = ts(1000, 0);
	t.handoff = ts(2000, 0);
	dlvlog_format(&b, "ID", "a@b", "A@B", NULL, &t, &now, NULL, "deferred",
	    "host said:\r\n451\ttry later");
	ck_assert_str_eq(buf_cstr(&b), "ID: to=<a@b>, relay=none, delay=12, "
	    "delays=0/12/0/0, dsn=4.0.0, status=deferred (host said:  451 try later)");

	/* A clock that went backwards gives zeros, never negative numbers. */
	buf_reset(&b);
	memset(&t, 0, sizeof(t));
	t.arrival = ts(5000, 0);
	dlvlog_format(&b, "ID", "a@b\n", "", "local", &t, &now, "5.1.1", "bounced", "x");
	ck_assert_str_eq(buf_cstr(&b), "ID: to=<a@b >, relay=local, delay=0, "
	    "delays=0/0/0/0, dsn=5.1.1, status=bounced (x)");

	/* A reused (cached) connection: Postfix's conn_use=N after relay=;
	 * the first use of a connection shows nothing. */
	buf_reset(&b);
	memset(&t, 0, sizeof(t));
	t.arrival = ts(1000, 0);
	t.conn_use = 3;
	dlvlog_format(&b, "ID", "a@b", "", "mx[192.0.2.1]:25", &t, &now, "2.0.0", "sent",
	    "250 ok");
	ck_assert_str_eq(buf_cstr(&b), "ID: to=<a@b>, relay=mx[192.0.2.1]:25, conn_use=3, "
	    "delay=12, delays=0/0/0/12, dsn=2.0.0, status=sent (250 ok)");
	buf_reset(&b);
	t.conn_use = 1;
	dlvlog_format(&b, "ID", "a@b", "", "mx[192.0.2.1]:25", &t, &now, "2.0.0", "sent",
	    "250 ok");
	ck_assert_str_eq(buf_cstr(&b), "ID: to=<a@b>, relay=mx[192.0.2.1]:25, "
	    "delay=12, delays=0/0/0/12, dsn=2.0.0, status=sent (250 ok)");
	buf_free(&b);
}
END_TEST

START_TEST(test_request_stamps)
{
	struct dlv_request r;
	struct dlvlog_times t;

	memset(&r, 0, sizeof(r));
	r.arrival = 1700000000;
	dlvlog_times_request(&t, &r);
	ck_assert_int_eq(t.arrival.tv_sec, 1700000000);
	ck_assert_int_eq(t.active.tv_sec, 0);
	r.arrival_us = 1700000000250000LL;
	r.active_us = 1700000001000000LL;
	r.handoff_us = 1700000002500000LL;
	dlvlog_times_request(&t, &r);
	ck_assert_int_eq(t.arrival.tv_nsec, 250000000L);
	ck_assert_int_eq(t.active.tv_sec, 1700000001);
	ck_assert_int_eq(t.handoff.tv_sec, 1700000002);
	ck_assert_int_eq(t.connected.tv_nsec, 500000000L);
}
END_TEST

static Suite *
dlvlog_suite(void)
{
	Suite *s = suite_create("dlvlog");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_delay_style);
	tcase_add_test(tc, test_line);
	tcase_add_test(tc, test_request_stamps);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(dlvlog_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
