/* Unit tests for util/ipc: encode/decode, malformed frames, trickled
 * input, and send/recv over a socketpair. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/ipc.h"

static void
frame(struct buf *out, const void *body, size_t len)
{
	unsigned char pfx[4] = {
		(unsigned char)(len >> 24), (unsigned char)(len >> 16),
		(unsigned char)(len >> 8), (unsigned char)len,
	};

	buf_append(out, pfx, 4);
	buf_append(out, body, len);
}

START_TEST(test_round_trip)
{
	struct ipc_msg m, d;
	struct buf out = BUF_INIT(0);
	const char *n, *v;
	size_t pos = 0, fl;
	long long x;
	int i;

	ipc_init(&m);
	ipc_init(&d);
	ipc_put(&m, "request", "queue");
	ipc_put(&m, "rcpt", "a@example.org");
	ipc_put(&m, "rcpt", "b@example.org");
	ipc_put(&m, "empty", "");
	ipc_put_int(&m, "size", -1234567890123LL);
	ipc_encode(&m, &out);
	ck_assert_int_eq(ipc_frame_check(&out, 0, &fl), 1);
	ck_assert_uint_eq(fl, out.len);
	ck_assert_int_eq(ipc_decode(&d, out.data, out.len), 0);
	ck_assert_str_eq(ipc_get(&d, "request"), "queue");
	ck_assert_str_eq(ipc_get(&d, "rcpt"), "a@example.org");
	ck_assert_str_eq(ipc_get(&d, "empty"), "");
	ck_assert_ptr_null(ipc_get(&d, "missing"));
	ck_assert_int_eq(ipc_get_int(&d, "size", &x), 0);
	ck_assert(x == -1234567890123LL);
	ck_assert_int_eq(ipc_get_int(&d, "request", &x), -1);
	ck_assert_int_eq(ipc_get_int(&d, "empty", &x), -1);
	ck_assert_int_eq(ipc_get_int(&d, "nope", &x), -1);

	/* Repeated names come back in order. */
	i = 0;
	while (ipc_next(&d, &pos, &n, &v)) {
		if (strcmp(n, "rcpt") == 0)
			ck_assert_str_eq(v, i++ == 0 ? "a@example.org" : "b@example.org");
	}
	ck_assert_int_eq(i, 2);
	ipc_free(&m);
	ipc_free(&d);
	buf_free(&out);
}
END_TEST

START_TEST(test_empty_msg)
{
	struct ipc_msg m, d;
	struct buf out = BUF_INIT(0);
	const char *n, *v;
	size_t pos = 0;

	ipc_init(&m);
	ipc_init(&d);
	ipc_encode(&m, &out);
	ck_assert_uint_eq(out.len, 4);
	ck_assert_int_eq(ipc_decode(&d, out.data, out.len), 0);
	ck_assert_int_eq(ipc_next(&d, &pos, &n, &v), 0);
	ck_assert_ptr_null(ipc_get(&d, "x"));
	ipc_free(&m);
	ipc_free(&d);
	buf_free(&out);
}
END_TEST

static const struct {
	const char *name;
	const char *body;
	size_t len;
	int ok;
} bodies[] = {
	{ "one pair", "a\0b", 4, 1 },
	{ "two pairs", "a\0b\0c\0d", 8, 1 },
	{ "empty value", "a\0", 3, 1 },
	{ "empty name and value", "\0", 2, 1 },
	{ "odd string count", "a\0b\0c", 6, 0 },
	{ "single string", "a", 2, 0 },
	{ "missing final NUL", "a\0b", 3, 0 },
	{ "no NUL at all", "abc", 3, 0 },
	{ "lone NUL", "", 1, 0 },
};

START_TEST(test_bodies)
{
	struct ipc_msg d;
	struct buf f = BUF_INIT(0);
	int rc;

	ipc_init(&d);
	frame(&f, bodies[_i].body, bodies[_i].len);
	errno = 0;
	rc = ipc_decode(&d, f.data, f.len);
	if (bodies[_i].ok) {
		ck_assert_msg(rc == 0, "%s: got %d want 0", bodies[_i].name, rc);
	} else {
		ck_assert_msg(rc == -1, "%s: got %d want -1", bodies[_i].name, rc);
		ck_assert_int_eq(errno, EPROTO);
		ck_assert_uint_eq(d.b.len, 0);
	}
	ipc_free(&d);
	buf_free(&f);
}
END_TEST

START_TEST(test_bad_prefix)
{
	struct ipc_msg d;
	struct buf f = BUF_INIT(0);

	ipc_init(&d);
	frame(&f, "a\0b", 4);
	/* Truncated frame, truncated prefix, trailing garbage. */
	ck_assert_int_eq(ipc_decode(&d, f.data, f.len - 1), -1);
	ck_assert_int_eq(ipc_decode(&d, f.data, 3), -1);
	ck_assert_int_eq(ipc_decode(&d, f.data, 0), -1);
	buf_putc(&f, 'x');
	ck_assert_int_eq(ipc_decode(&d, f.data, f.len), -1);
	ck_assert_int_eq(errno, EPROTO);
	ipc_free(&d);
	buf_free(&f);
}
END_TEST

START_TEST(test_frame_check_trickle)
{
	struct ipc_msg m, d;
	struct buf whole = BUF_INIT(0), in = BUF_INIT(0);
	size_t i, fl = 0;
	int rc;

	ipc_init(&m);
	ipc_init(&d);
	ipc_put(&m, "k", "v");
	ipc_put(&m, "long", "0123456789abcdef");
	ipc_encode(&m, &whole);
	ipc_encode(&m, &whole);        /* two frames back to back */
	for (i = 0; i < whole.len; i++) {
		buf_putc(&in, whole.data[i]);
		rc = ipc_frame_check(&in, 1024, &fl);
		if (rc == 0)
			continue;
		ck_assert_int_eq(rc, 1);
		ck_assert_uint_eq(fl, in.len);
		ck_assert_int_eq(ipc_decode(&d, in.data, fl), 0);
		ck_assert_str_eq(ipc_get(&d, "long"), "0123456789abcdef");
		buf_consume(&in, fl);
	}
	ck_assert_uint_eq(in.len, 0);
	ipc_free(&m);
	ipc_free(&d);
	buf_free(&whole);
	buf_free(&in);
}
END_TEST

START_TEST(test_frame_check_oversize)
{
	struct buf in = BUF_INIT(0);
	size_t fl = 0;

	buf_append(&in, "\x00\x00\x01", 3);
	ck_assert_int_eq(ipc_frame_check(&in, 100, &fl), 0);
	buf_putc(&in, 0x01);            /* length 257 */
	errno = 0;
	ck_assert_int_eq(ipc_frame_check(&in, 100, &fl), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_int_eq(ipc_frame_check(&in, 257, &fl), 0);
	buf_reset(&in);
	buf_append(&in, "\xff\xff\xff\xff", 4);
	ck_assert_int_eq(ipc_frame_check(&in, 0, &fl), -1);
	buf_free(&in);
}
END_TEST

/* Half a frame on sv[0], then EOF: the receiver says ECONNRESET; then
 * EOF at a frame boundary: EPIPE. Closes both ends. */
static void
half_frame_then_eof(int sv[2], struct ipc_msg *d,
    int (*rcv)(int, struct ipc_msg *, size_t, int))
{
	ck_assert_int_eq(write(sv[0], "\0\0\0\4a\0", 6), 6);
	close(sv[0]);
	errno = 0;
	ck_assert_int_eq(rcv(sv[1], d, 0, 1000), -1);
	ck_assert_int_eq(errno, ECONNRESET);
	errno = 0;
	ck_assert_int_eq(rcv(sv[1], d, 0, 1000), -1);
	ck_assert_int_eq(errno, EPIPE);
	close(sv[1]);
}

START_TEST(test_socketpair)
{
	struct ipc_msg m, d;
	char big[70000];
	int sv[2];

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ipc_init(&m);
	ipc_init(&d);
	ipc_put(&m, "a", "1");
	ck_assert_int_eq(ipc_send(sv[0], &m, 1000), 0);
	ck_assert_int_eq(ipc_send(sv[0], &m, 1000), 0);
	ck_assert_int_eq(ipc_recv(sv[1], &d, 0, 1000), 0);
	ck_assert_str_eq(ipc_get(&d, "a"), "1");
	ck_assert_int_eq(ipc_recv(sv[1], &d, 0, 1000), 0);
	ck_assert_str_eq(ipc_get(&d, "a"), "1");

	/* Nothing more: a timeout, not a hang. */
	errno = 0;
	ck_assert_int_eq(ipc_recv(sv[1], &d, 0, 50), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);

	/* Over the receiver's limit. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ipc_reset(&m);
	ipc_put(&m, "big", big);
	if (fork() == 0) {
		ipc_send(sv[0], &m, 5000);
		_exit(0);
	}
	errno = 0;
	ck_assert_int_eq(ipc_recv(sv[1], &d, 1000, 1000), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	close(sv[0]);
	close(sv[1]);

	/* A malformed frame on the wire, then EOF in the middle of a frame,
	 * then EOF at a frame boundary. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[0], "\0\0\0\3abc", 7), 7);
	errno = 0;
	ck_assert_int_eq(ipc_recv(sv[1], &d, 0, 1000), -1);
	ck_assert_int_eq(errno, EPROTO);
	half_frame_then_eof(sv, &d, ipc_recv);

	/* Sending to a closed peer: EPIPE, no signal. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	signal(SIGPIPE, SIG_DFL);
	ipc_reset(&m);
	ipc_put(&m, "a", "1");
	errno = 0;
	ck_assert_int_eq(ipc_send(sv[0], &m, 1000), -1);
	ck_assert_int_eq(errno, EPIPE);
	close(sv[0]);
	ipc_free(&m);
	ipc_free(&d);
}
END_TEST

/* ipc_recv_ready: the same frames, errors and timeout as ipc_recv. */
START_TEST(test_recv_ready)
{
	struct ipc_msg m, d;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ipc_init(&m);
	ipc_init(&d);
	ipc_put(&m, "a", "1");
	ck_assert_int_eq(ipc_send(sv[0], &m, 1000), 0);
	ck_assert_int_eq(ipc_recv_ready(sv[1], &d, 0, 1000), 0);
	ck_assert_str_eq(ipc_get(&d, "a"), "1");
	/* Not there after all: it waits, up to the timeout. */
	errno = 0;
	ck_assert_int_eq(ipc_recv_ready(sv[1], &d, 0, 50), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	half_frame_then_eof(sv, &d, ipc_recv_ready);
	ipc_free(&m);
	ipc_free(&d);
}
END_TEST

static Suite *
ipc_suite(void)
{
	Suite *s = suite_create("ipc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_empty_msg);
	tcase_add_loop_test(tc, test_bodies, 0, (int)(sizeof(bodies) / sizeof(bodies[0])));
	tcase_add_test(tc, test_bad_prefix);
	tcase_add_test(tc, test_frame_check_trickle);
	tcase_add_test(tc, test_frame_check_oversize);
	tcase_add_test(tc, test_socketpair);
	tcase_add_test(tc, test_recv_ready);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ipc_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
