/*
 * test_deliver - delivery request/result codec: round trips through a
 * real ipc frame, and every malformed field rejected.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/ipc.h"
#include "mail/deliver.h"

/* Encode m into a frame and decode it again, as the peer would. */
static void
through_frame(struct ipc_msg *m)
{
	struct buf frame = BUF_INIT(0);

	ipc_encode(m, &frame);
	ipc_reset(m);
	ck_assert_int_eq(ipc_decode(m, frame.data, frame.len), 0);
	buf_free(&frame);
}

START_TEST(test_request_roundtrip)
{
	struct dlv_rcpt rc[3] = {
		{ "a@example.com", "", "", 123 },
		{ "\"x y\"@example.com", "rfc822;X@example.com", "SUCCESS,DELAY", 456 },
		{ "b@example.com", NULL, "never", 789 },
	};
	struct dlv_request in = {
		"4dQzBc1234z1", "active", "", "local", "example.com", 1700000000, rc, 3,
		1700000000123456LL, 1700000001000000LL, 0, 0, 0,
	}, out;
	struct ipc_msg m;
	char *err = NULL;
	size_t i;

	ipc_init(&m);
	dlv_request_encode(&in, &m);
	through_frame(&m);
	ck_assert_msg(dlv_request_decode(&m, &out, &err) == 0, "%s", err ? err : "?");
	ck_assert_str_eq(out.queue_id, in.queue_id);
	ck_assert_str_eq(out.queue_dir, "active");
	ck_assert_str_eq(out.sender, "");
	ck_assert_str_eq(out.transport, "local");
	ck_assert_str_eq(out.nexthop, "example.com");
	ck_assert_int_eq(out.arrival, 1700000000);
	ck_assert_int_eq(out.arrival_us, 1700000000123456LL);
	ck_assert_int_eq(out.active_us, 1700000001000000LL);
	ck_assert_int_eq(out.handoff_us, 0);     /* 0: not sent, still 0 */
	ck_assert_int_eq(out.pass, 0);
	ck_assert_uint_eq(out.nrcpt, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_str_eq(out.rcpts[i].addr, rc[i].addr);
		ck_assert_str_eq(out.rcpts[i].orig, rc[i].orig ? rc[i].orig : "");
		ck_assert_str_eq(out.rcpts[i].notify, rc[i].notify);
		ck_assert_int_eq(out.rcpts[i].offset, rc[i].offset);
	}
	dlv_request_free(&out);
	ck_assert_ptr_null(out.rcpts);
	/* local's mailbox_transport hand-off: "pass" survives the trip. */
	in.pass = 1;
	ipc_reset(&m);
	dlv_request_encode(&in, &m);
	through_frame(&m);
	ck_assert_msg(dlv_request_decode(&m, &out, &err) == 0, "%s", err ? err : "?");
	ck_assert_int_eq(out.pass, 1);
	ck_assert_int_eq(out.backlog, 0);
	dlv_request_free(&out);
	/* qmgr's backlog flag for connection caching survives it too. */
	in.backlog = 1;
	ipc_reset(&m);
	dlv_request_encode(&in, &m);
	through_frame(&m);
	ck_assert_msg(dlv_request_decode(&m, &out, &err) == 0, "%s", err ? err : "?");
	ck_assert_int_eq(out.backlog, 1);
	dlv_request_free(&out);
	in.backlog = 0;
	/* Any other value fails the whole request. */
	ipc_reset(&m);
	dlv_request_encode(&in, &m);
	ipc_reset(&m);
	ipc_put(&m, "queue_id", "4dQzBc1234z1");
	ipc_put(&m, "queue_dir", "active");
	ipc_put(&m, "sender", "");
	ipc_put(&m, "transport", "lmtp");
	ipc_put(&m, "nexthop", "unix:/x");
	ipc_put(&m, "arrival", "1");
	ipc_put(&m, "pass", "yes");
	ipc_put(&m, "rcpt", "1\t\t\ta@example.com");
	ck_assert_int_eq(dlv_request_decode(&m, &out, &err), -1);
	free(err);
	ipc_free(&m);
}
END_TEST

START_TEST(test_results_roundtrip)
{
	struct dlv_result in[3] = {
		{ 123, 2, "2.0.0", "local", "delivered to maildir", 1 },
		{ 456, 4, "4.4.1", "mx.example[192.0.2.1]:25", "host said:\t451 try\r\nlater", 0 },
		{ 789, 5, "5.1.1", "none", "", 1 },
	}, *out = NULL;
	struct ipc_msg m;
	size_t n = 0, i;
	char *err = NULL;

	ipc_init(&m);
	dlv_results_encode(in, 3, 0, &m);
	through_frame(&m);
	ck_assert_msg(dlv_results_decode(&m, &out, &n, NULL, &err) == 0, "%s", err ? err : "?");
	ck_assert_uint_eq(n, 3);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(out[i].offset, in[i].offset);
		ck_assert_int_eq(out[i].status, in[i].status);
		ck_assert_str_eq(out[i].dsn, in[i].dsn);
		ck_assert_str_eq(out[i].relay, in[i].relay);
		ck_assert_str_eq(out[i].text, in[i].text);   /* text kept as is */
		ck_assert_int_eq(out[i].logged, in[i].logged);
	}
	dlv_results_free(out, n);

	/* No results at all is a valid (if useless) answer. */
	ipc_reset(&m);
	ck_assert_int_eq(dlv_results_decode(&m, &out, &n, NULL, &err), 0);
	ck_assert_uint_eq(n, 0);
	dlv_results_free(out, n);

	/* A TAB in relay is replaced on encode, so the fields stay aligned. */
	in[0].relay = "bad\trelay";
	ipc_reset(&m);
	dlv_results_encode(in, 1, 0, &m);
	ck_assert_int_eq(dlv_results_decode(&m, &out, &n, NULL, &err), 0);
	ck_assert_str_eq(out[0].relay, "bad relay");
	ck_assert_str_eq(out[0].text, "delivered to maildir");
	dlv_results_free(out, n);

	/* The agent's offer to take the next request on this connection. */
	{
		int cache = -1;

		ipc_reset(&m);
		dlv_results_encode(in, 1, 2, &m);
		through_frame(&m);
		ck_assert_int_eq(dlv_results_decode(&m, &out, &n, &cache, &err), 0);
		ck_assert_int_eq(cache, 2);
		ck_assert_uint_eq(n, 1);
		dlv_results_free(out, n);
		ipc_reset(&m);
		dlv_results_encode(in, 1, 0, &m);
		ck_assert_int_eq(dlv_results_decode(&m, &out, &n, &cache, &err), 0);
		ck_assert_int_eq(cache, 0);
		dlv_results_free(out, n);
	}
	ipc_free(&m);
}
END_TEST

/* Scalars of a good request, overridable by name; NULL value = omit. */
static void
put_request(struct ipc_msg *m, const char *name, const char *value, const char *rcpt)
{
	static const char *const def[][2] = {
		{ "queue_id", "4dQzBc1234z1" }, { "queue_dir", "active" },
		{ "sender", "s@example.org" }, { "transport", "smtp" },
		{ "nexthop", "[relay.example]:587" }, { "arrival", "1700000000" },
	};
	size_t i;

	ipc_reset(m);
	for (i = 0; i < sizeof(def) / sizeof(def[0]); i++) {
		if (name != NULL && strcmp(name, def[i][0]) == 0) {
			if (value != NULL)
				ipc_put(m, name, value);
		} else {
			ipc_put(m, def[i][0], def[i][1]);
		}
	}
	if (name != NULL && strcmp(name, "extra") == 0)
		ipc_put(m, value, "x");
	ipc_put(m, "rcpt", rcpt != NULL ? rcpt : "100\t\t\tu@example.com");
}

START_TEST(test_request_malformed)
{
	static const struct {
		const char *name, *value, *rcpt;
	} t[] = {
		{ "queue_id", NULL, NULL },
		{ "queue_id", "../../etc/passwd", NULL },
		{ "queue_id", "", NULL },
		{ "queue_dir", "../active", NULL },
		{ "queue_dir", "", NULL },
		{ "sender", "a\rb@x", NULL },
		{ "sender", NULL, NULL },
		{ "transport", "lo cal", NULL },
		{ "transport", "", NULL },
		{ "nexthop", "a b", NULL },
		{ "nexthop", "a\nb", NULL },
		{ "arrival", "-1", NULL },
		{ "arrival", "12x", NULL },
		{ "arrival", "", NULL },
		{ "arrival", "+5", NULL },
		{ "arrival", "9999999999999999999999", NULL },
		{ "extra", "unknown_attr", NULL },
		{ "extra", "queue_id", NULL },            /* repeated */
		{ NULL, NULL, "100\t\tu@example.com" },   /* 3 fields */
		{ NULL, NULL, "100" },
		{ NULL, NULL, "" },
		{ NULL, NULL, "x\t\t\tu@example.com" },
		{ NULL, NULL, "-1\t\t\tu@example.com" },
		{ NULL, NULL, "\t\t\tu@example.com" },
		{ NULL, NULL, "100\t\t\t" },               /* empty address */
		{ NULL, NULL, "100\tBOGUS\t\tu@example.com" },
		{ NULL, NULL, "100\tSUCCESS,SUCCESS\t\tu@example.com" },
		{ NULL, NULL, "100\tNEVER,SUCCESS\t\tu@example.com" },
		{ NULL, NULL, "100\tSUCCESS,\t\tu@example.com" },
		{ NULL, NULL, "100\t\t\tu@exa\tmple.com" },  /* TAB in address */
		{ NULL, NULL, "100\t\tor\x01ig\tu@example.com" },
	};
	struct dlv_request r;
	struct ipc_msg m;
	char *err;
	size_t i;

	ipc_init(&m);
	put_request(&m, NULL, NULL, NULL);
	err = NULL;
	ck_assert_msg(dlv_request_decode(&m, &r, &err) == 0, "%s", err ? err : "?");
	dlv_request_free(&r);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		put_request(&m, t[i].name, t[i].value, t[i].rcpt);
		err = NULL;
		ck_assert_msg(dlv_request_decode(&m, &r, &err) == -1, "case %zu accepted", i);
		ck_assert_ptr_nonnull(err);
		ck_assert_ptr_null(r.rcpts);
		free(err);
	}
	/* No recipients; duplicate offsets. */
	ipc_reset(&m);
	ipc_put(&m, "queue_id", "4dQzBc1234z1");
	ipc_put(&m, "queue_dir", "active");
	ipc_put(&m, "sender", "");
	ipc_put(&m, "transport", "local");
	ipc_put(&m, "nexthop", "");
	ipc_put(&m, "arrival", "0");
	ck_assert_int_eq(dlv_request_decode(&m, &r, &err), -1);
	free(err);
	ipc_put(&m, "rcpt", "5\t\t\ta@b");
	ck_assert_int_eq(dlv_request_decode(&m, &r, &err), 0);
	dlv_request_free(&r);
	ipc_put(&m, "rcpt", "5\t\t\tc@d");
	ck_assert_int_eq(dlv_request_decode(&m, &r, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "duplicate"));
	free(err);
	ipc_free(&m);
}
END_TEST

START_TEST(test_results_malformed)
{
	static const char *const bad[] = {
		"",
		"1\t2\t2.0.0\tlocal",          /* 4 fields */
		"x\t2\t2.0.0\tlocal\tok",
		"-1\t2\t2.0.0\tlocal\tok",
		"1\t3\t3.0.0\tlocal\tok",
		"1\t22\t2.0.0\tlocal\tok",
		"1\t\t2.0.0\tlocal\tok",
		"1\t2\t5.0.0\tlocal\tok",      /* class does not match status */
		"1\t2\t2.0\tlocal\tok",
		"1\t2\t2.0.0.0\tlocal\tok",
		"1\t2\t2.1000.0\tlocal\tok",
		"1\t2\t2..0\tlocal\tok",
		"1\t2\tx.0.0\tlocal\tok",
		"1\t2\t\tlocal\tok",
		"1\t2\t2.0.0\t\tok",           /* empty relay */
		"1\t2\t2.0.0\tlo\rcal\tok",
	};
	struct dlv_result *res;
	struct ipc_msg m;
	size_t n, i;
	char *err;

	ipc_init(&m);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ipc_reset(&m);
		ipc_put(&m, "result", "7\t5\t5.1.1\tnone\tfirst is fine");
		ipc_put(&m, "result", bad[i]);
		err = NULL;
		ck_assert_msg(dlv_results_decode(&m, &res, &n, NULL, &err) == -1, "%s accepted", bad[i]);
		ck_assert_ptr_nonnull(err);
		ck_assert_ptr_null(res);
		ck_assert_uint_eq(n, 0);
		free(err);
	}
	ipc_reset(&m);
	ipc_put(&m, "result", "7\t5\t5.1.1\tnone\ttext\twith\ttabs");
	ck_assert_int_eq(dlv_results_decode(&m, &res, &n, NULL, &err), 0);
	ck_assert_str_eq(res[0].text, "text\twith\ttabs");
	dlv_results_free(res, n);
	ipc_put(&m, "result", "7\t2\t2.0.0\tlocal\tdup");
	ck_assert_int_eq(dlv_results_decode(&m, &res, &n, NULL, &err), -1);
	free(err);
	ipc_reset(&m);
	ipc_put(&m, "rcpt", "7\t2\t2.0.0\tlocal\tx");
	ck_assert_int_eq(dlv_results_decode(&m, &res, &n, NULL, &err), -1);
	free(err);

	/* "logged" flags the result just before it, by offset, once. */
	{
		static const char *const badlog[][2] = {
			{ NULL, "7" },          /* before any result */
			{ "7", "8" },           /* another offset */
			{ "7", "x" },
			{ "7", "7,7" },
		};

		for (i = 0; i < sizeof(badlog) / sizeof(badlog[0]); i++) {
			ipc_reset(&m);
			if (badlog[i][0] != NULL)
				ipc_put(&m, "result", "7\t2\t2.0.0\tlocal\tok");
			ipc_put(&m, "logged", badlog[i][1]);
			err = NULL;
			ck_assert_msg(dlv_results_decode(&m, &res, &n, NULL, &err) == -1,
			    "logged=%s accepted", badlog[i][1]);
			free(err);
		}
		ipc_reset(&m);
		ipc_put(&m, "result", "7\t2\t2.0.0\tlocal\tok");
		ipc_put(&m, "logged", "7");
		ipc_put(&m, "logged", "7");
		ck_assert_int_eq(dlv_results_decode(&m, &res, &n, NULL, &err), -1);
		free(err);
		ipc_reset(&m);
		ipc_put(&m, "result", "7\t2\t2.0.0\tlocal\tok");
		ipc_put(&m, "logged", "7");
		ipc_put(&m, "result", "9\t4\t4.0.0\tlocal\tlater");
		ck_assert_int_eq(dlv_results_decode(&m, &res, &n, NULL, &err), 0);
		ck_assert_int_eq(res[0].logged, 1);
		ck_assert_int_eq(res[1].logged, 0);
		dlv_results_free(res, n);
	}

	/* "cache": seconds 1..3600, at most once. */
	{
		static const char *const badcache[] = { "0", "3601", "x", "-1", "" };
		int cache;

		for (i = 0; i < sizeof(badcache) / sizeof(badcache[0]); i++) {
			ipc_reset(&m);
			ipc_put(&m, "result", "7\t2\t2.0.0\tlocal\tok");
			ipc_put(&m, "cache", badcache[i]);
			err = NULL;
			ck_assert_msg(dlv_results_decode(&m, &res, &n, &cache, &err) == -1,
			    "cache=%s accepted", badcache[i]);
			free(err);
		}
		ipc_reset(&m);
		ipc_put(&m, "result", "7\t2\t2.0.0\tlocal\tok");
		ipc_put(&m, "cache", "2");
		ipc_put(&m, "cache", "2");
		ck_assert_int_eq(dlv_results_decode(&m, &res, &n, &cache, &err), -1);
		free(err);
	}
	ipc_free(&m);
}
END_TEST

static Suite *
deliver_suite(void)
{
	Suite *s = suite_create("deliver");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_request_roundtrip);
	tcase_add_test(tc, test_results_roundtrip);
	tcase_add_test(tc, test_request_malformed);
	tcase_add_test(tc, test_results_malformed);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(deliver_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
