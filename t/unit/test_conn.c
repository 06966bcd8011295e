/*
 * test_conn - lib/util/conn.c over a socketpair: lines in any split, an
 * over-long line refused once, output larger than the socket buffer
 * drained through the loop, back-pressure (reading pauses while the input
 * buffer is full), input in pieces taken by separate events, EOF with input left, the idle timeout, freeing from
 * inside the callback, and STARTTLS: plaintext pipelined after it is
 * discarded, then lines flow over TLS (a forked blocking TLS client).
 * The additions for smtpd: the bare-LF flag of a line, output held while
 * conn_set_write(0) (the error sleep) and released after, and last words
 * (conn_flush_last) after the idle timeout. A conn freed inside its
 * callback lets go of its fd at once: the number, reused by the next
 * connection in the same callback, stays registered for that one.
 * TLS resumption: a client with the session cache on resumes the session
 * a server context issued, under the same key only (TLS 1.3 tickets and
 * TLS 1.2 sessions).
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/conn.h"
#include "util/loop.h"
#include "util/net.h"
#include "util/tls.h"
#include "util/tlskeys.h"

struct rec {
	struct loop *loop;
	struct conn *conn;
	struct buf lines;
	unsigned events;
	int free_in_cb;
	struct tls_ctx *tls_ctx;
};

static void
rec_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct rec *r = ctx;
	const char *line;
	size_t len;
	int k;

	r->events |= ev;
	while ((k = conn_read_line(c, 16, &line, &len)) != 0) {
		if (k < 0) {
			buf_puts(&r->lines, "[long]");
			continue;
		}
		buf_printf(&r->lines, "[%.*s]", (int)len, line);
		if (len == 4 && memcmp(line, "STLS", 4) == 0 && r->tls_ctx != NULL) {
			conn_printf(c, "+OK go\r\n");
			ssize_t dropped = conn_starttls(c, r->tls_ctx);
			buf_printf(&r->lines, "(dropped %zd)", dropped);
			(void)conn_flush(c);
			break;
		}
		conn_printf(c, "+%.*s\r\n", (int)len, line);
	}
	if (ev & CONN_EV_TLS_UP)
		buf_puts(&r->lines, "(tls)");
	(void)conn_flush(c);
	if ((ev & (CONN_EV_EOF | CONN_EV_ERROR | CONN_EV_TIMEOUT)) || r->free_in_cb) {
		conn_free(&r->conn);
		loop_stop(r->loop);
	}
}

static void
setup(struct rec *r, int sv[2])
{
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	net_set_nonblock(sv[0], 1);
	r->loop = loop_new();
	buf_init(&r->lines, 0);
	r->conn = conn_new(r->loop, sv[0], 64, rec_cb, r);
}

/* The peer reads one chunk: exactly want. */
static void
peer_expect(int fd, const char *want)
{
	char got[256];
	ssize_t n = read(fd, got, sizeof(got) - 1);

	ck_assert(n > 0);
	got[n] = '\0';
	ck_assert_str_eq(got, want);
}

static void
teardown(struct rec *r, int sv[2])
{
	conn_free(&r->conn);
	close(sv[0]);
	close(sv[1]);
	loop_free(&r->loop);
	buf_free(&r->lines);
}

static void
stop_cb(struct loop *l, void *ctx)
{
	loop_stop(l);
}

START_TEST(test_lines_and_eof)
{
	struct rec r;
	int sv[2];
	const char *in = "one\r\ntwo\nthree-is-way-too-long-for-16\r\nfour\r\nfi";

	setup(&r, sv);
	ck_assert_int_eq(write(sv[1], in, strlen(in)), (ssize_t)strlen(in));
	shutdown(sv[1], SHUT_WR);
	loop_timer_add(r.loop, 5000, stop_cb, NULL);
	loop_run(r.loop);
	ck_assert_ptr_null(r.conn);
	ck_assert_str_eq(buf_cstr(&r.lines), "[one][two][long][four]");
	ck_assert(r.events & CONN_EV_EOF);
	peer_expect(sv[1], "+one\r\n+two\r\n+four\r\n");
	teardown(&r, sv);
}
END_TEST

/* Input arriving in pieces, each taken by its own event: a partial line
 * is kept across events, a consumed one lets the (released) input buffer
 * go, and the lines and replies come out the same (conn.c releases an
 * idle conn's buffers between events). */
START_TEST(test_lines_across_events)
{
	struct rec r;
	int sv[2];
	static const char *const piece[] = {
		"he", "llo\r", "\nwor", "ld\r\n", "x\r\n", "y\r\nz", "\r\n",
	};

	setup(&r, sv);
	for (size_t i = 0; i < sizeof(piece) / sizeof(piece[0]); i++) {
		ck_assert_int_eq(write(sv[1], piece[i], strlen(piece[i])),
		    (ssize_t)strlen(piece[i]));
		uint64_t t = loop_timer_add(r.loop, 20, stop_cb, NULL);
		loop_run(r.loop);
		loop_timer_cancel(r.loop, t);
	}
	shutdown(sv[1], SHUT_WR);
	loop_timer_add(r.loop, 5000, stop_cb, NULL);
	loop_run(r.loop);
	ck_assert_ptr_null(r.conn);
	ck_assert_str_eq(buf_cstr(&r.lines), "[hello][world][x][y][z]");
	peer_expect(sv[1], "+hello\r\n+world\r\n+x\r\n+y\r\n+z\r\n");
	teardown(&r, sv);
}
END_TEST

/* A reply far larger than the socket buffer leaves through the loop;
 * DRAINED comes when it is all out, and the reader gets every byte. */
static void
big_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct rec *r = ctx;

	r->events |= ev;
	if (ev & CONN_EV_DRAINED)
		loop_stop(r->loop);
}

static void
drain_peer(struct loop *l, int fd, unsigned ev, void *ctx)
{
	char tmp[65536];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n > 0)
		*(size_t *)ctx += (size_t)n;
}

START_TEST(test_big_write)
{
	struct rec r;
	int sv[2];
	size_t total = 4 * 1024 * 1024, got = 0;
	char *blob = malloc(total);

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	net_set_nonblock(sv[0], 1);
	net_set_nonblock(sv[1], 1);
	r.loop = loop_new();
	r.conn = conn_new(r.loop, sv[0], 0, big_cb, &r);
	memset(blob, 'z', total);
	conn_write(r.conn, blob, total);
	ck_assert_int_eq(conn_flush(r.conn), 0);
	ck_assert(conn_out_len(r.conn) > 0);
	loop_fd_set(r.loop, sv[1], LOOP_READ, drain_peer, &got);
	loop_timer_add(r.loop, 10000, stop_cb, NULL);
	loop_run(r.loop);
	ck_assert(r.events & CONN_EV_DRAINED);
	ck_assert_uint_eq(conn_out_len(r.conn), 0);
	/* What is still in the socket. */
	char tmp[65536];
	ssize_t n;
	while ((n = read(sv[1], tmp, sizeof(tmp))) > 0)
		got += (size_t)n;
	ck_assert_uint_eq(got, total);
	conn_free(&r.conn);
	loop_fd_del(r.loop, sv[1]);
	close(sv[0]);
	close(sv[1]);
	loop_free(&r.loop);
	free(blob);
}
END_TEST

/* Reading pauses while the owner leaves the input unconsumed. */
static void
hold_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct rec *r = ctx;

	r->events |= ev;
}

START_TEST(test_backpressure)
{
	struct rec r;
	int sv[2];
	char blob[1000];
	size_t n;

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	net_set_nonblock(sv[0], 1);
	r.loop = loop_new();
	r.conn = conn_new(r.loop, sv[0], 100, hold_cb, &r);
	memset(blob, 'a', sizeof(blob));
	ck_assert_int_eq(write(sv[1], blob, sizeof(blob)), (ssize_t)sizeof(blob));
	loop_timer_add(r.loop, 200, stop_cb, NULL);
	loop_run(r.loop);
	(void)conn_in(r.conn, &n);
	ck_assert_uint_eq(n, 100);
	conn_in_consume(r.conn, 100);
	loop_timer_add(r.loop, 200, stop_cb, NULL);
	loop_run(r.loop);
	(void)conn_in(r.conn, &n);
	ck_assert_uint_eq(n, 100);
	conn_free(&r.conn);
	close(sv[0]);
	close(sv[1]);
	loop_free(&r.loop);
}
END_TEST

START_TEST(test_timeout_and_free_in_cb)
{
	struct rec r;
	int sv[2];

	setup(&r, sv);
	conn_set_timeout(r.conn, 50);
	loop_timer_add(r.loop, 5000, stop_cb, NULL);
	loop_run(r.loop);
	ck_assert(r.events & CONN_EV_TIMEOUT);
	ck_assert_ptr_null(r.conn);
	close(sv[0]);
	close(sv[1]);
	loop_free(&r.loop);
	buf_free(&r.lines);
}
END_TEST

/* Lines tagged L (CRLF) or B (bare LF); replies held until released. */
static void
held_out_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct rec *r = ctx;
	const char *line;
	size_t len;

	r->events |= ev;
	while (conn_read_line(c, 16, &line, &len) > 0) {
		buf_printf(&r->lines, "%c:%.*s|", conn_line_bare_lf(c) ? 'B' : 'L',
		    (int)len, line);
		conn_printf(c, "+%.*s\r\n", (int)len, line);
	}
	/* Held: flush says "not all out" and writes nothing. */
	ck_assert_int_eq(conn_flush(c), 0);
	loop_stop(r->loop);
}

START_TEST(test_bare_lf_and_held_output)
{
	struct rec r;
	int sv[2];
	const char *in = "one\r\ntwo\nthree\r\r\n";
	char got[256];

	setup(&r, sv);
	conn_set_cb(r.conn, held_out_cb, &r);
	conn_set_write(r.conn, 0);
	ck_assert_int_eq(write(sv[1], in, strlen(in)), (ssize_t)strlen(in));
	loop_timer_add(r.loop, 5000, stop_cb, NULL);
	loop_run(r.loop);
	ck_assert_str_eq(buf_cstr(&r.lines), "L:one|B:two|L:three|");
	/* A loop round with the output held: nothing reaches the peer. */
	loop_timer_add(r.loop, 50, stop_cb, NULL);
	loop_run(r.loop);
	net_set_nonblock(sv[1], 1);
	ck_assert_int_lt(read(sv[1], got, sizeof(got)), 0);
	ck_assert_uint_eq(conn_out_len(r.conn), strlen("+one\r\n+two\r\n+three\r\n"));
	conn_set_write(r.conn, 1);
	ck_assert_int_eq(conn_flush(r.conn), 1);
	peer_expect(sv[1], "+one\r\n+two\r\n+three\r\n");
	teardown(&r, sv);
}
END_TEST

static void
bye_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct rec *r = ctx;

	r->events |= ev;
	if (ev & CONN_EV_TIMEOUT) {
		conn_printf(c, "421 timeout\r\n");
		ck_assert_int_eq(conn_flush(c), -1);   /* finished: refused */
		ck_assert_int_eq(conn_flush_last(c), 1);
		conn_free(&r->conn);
		loop_stop(r->loop);
	}
}

START_TEST(test_last_words_after_timeout)
{
	struct rec r;
	int sv[2];

	setup(&r, sv);
	conn_set_cb(r.conn, bye_cb, &r);
	conn_set_timeout(r.conn, 50);
	loop_timer_add(r.loop, 5000, stop_cb, NULL);
	loop_run(r.loop);
	ck_assert(r.events & CONN_EV_TIMEOUT);
	ck_assert_ptr_null(r.conn);
	peer_expect(sv[1], "421 timeout\r\n");
	teardown(&r, sv);
}
END_TEST

struct reuse {
	struct loop *loop;
	struct conn *old, *fresh;
	int old_fd, peer[2];
	unsigned fresh_events;
};

static void
fresh_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct reuse *u = ctx;

	u->fresh_events |= ev;
	loop_stop(u->loop);
}

/* First input: free the conn, close its fd, open the next connection
 * (which gets the same fd number) and put a conn on it, all in here. */
static void
reuse_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct reuse *u = ctx;

	conn_free(&u->old);
	close(u->old_fd);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, u->peer), 0);
	ck_assert_int_eq(u->peer[0], u->old_fd);
	net_set_nonblock(u->peer[0], 1);
	u->fresh = conn_new(u->loop, u->peer[0], 64, fresh_cb, u);
}

START_TEST(test_free_in_cb_then_fd_reused)
{
	struct reuse u;
	int sv[2];

	memset(&u, 0, sizeof(u));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	net_set_nonblock(sv[0], 1);
	u.loop = loop_new();
	u.old_fd = sv[0];
	u.old = conn_new(u.loop, sv[0], 64, reuse_cb, &u);
	ck_assert_int_eq(write(sv[1], "x\n", 2), 2);
	loop_timer_add(u.loop, 200, stop_cb, NULL);
	loop_run(u.loop);                  /* reuse_cb ran; old conn gone */
	ck_assert_ptr_nonnull(u.fresh);
	ck_assert_int_eq(write(u.peer[1], "y\n", 2), 2);
	loop_timer_add(u.loop, 5000, stop_cb, NULL);
	loop_run(u.loop);
	ck_assert(u.fresh_events & CONN_EV_INPUT);
	conn_free(&u.fresh);
	close(u.peer[0]);
	close(u.peer[1]);
	close(sv[1]);
	loop_free(&u.loop);
}
END_TEST

static char tmpdir[] = "/tmp/test_conn.XXXXXX";

static void
tls_client(int fd, const char *expect_after_go)
{
	char buf[256] = "";
	size_t have = 0;
	char *err = NULL;

	/* Plaintext: STLS and a command pipelined after it (to be dropped). */
	const char *pre = "NOOP\r\nSTLS\r\nEVIL\r\n";
	if (write(fd, pre, strlen(pre)) < 0)
		_exit(2);
	while (strstr(buf, "+OK go\r\n") == NULL && have < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			_exit(3);
		have += (size_t)n;
		buf[have] = '\0';
	}
	struct tls_ctx *ctx = tls_client_ctx_new(NULL, NULL, &err);
	struct tls_conn *t = ctx ? tls_client_new(ctx, fd, NULL, NULL) : NULL;
	if (t == NULL || tls_handshake_timeout(t, 5000, &err) < 0)
		_exit(4);
	if (tls_write(t, "hello\r\n", 7) != 7)
		_exit(5);
	have = 0;
	while (have < strlen(expect_after_go)) {
		ssize_t n = tls_read(t, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			_exit(6);
		have += (size_t)n;
	}
	buf[have] = '\0';
	_exit(strcmp(buf, expect_after_go) == 0 ? 0 : 7);
}

/* A new directory dir (a mkdtemp template) with a self-signed
 * certificate and its key: cert and key get their paths. */
static void
make_cert(char *dir, char *cert, size_t certsz, char *key, size_t keysz)
{
	char cmd[1024];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cert, certsz, "%s/cert.pem", dir);
	snprintf(key, keysz, "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 -nodes "
	    "-subj /CN=localhost -keyout %s -out %s -days 1 2>/dev/null", key, cert);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_starttls)
{
	struct rec r;
	int sv[2], status;
	char cert[200], key[200];
	char *err = NULL;

	make_cert(tmpdir, cert, sizeof(cert), key, sizeof(key));
	setup(&r, sv);
	r.tls_ctx = tls_server_ctx_new(cert, key, &err);
	ck_assert_msg(r.tls_ctx != NULL, "%s", err);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		tls_client(sv[1], "+hello\r\n");
	}
	close(sv[1]);
	loop_timer_add(r.loop, 10000, stop_cb, NULL);
	/* Runs until the child closes (EOF or a TLS error ends the conn). */
	loop_run(r.loop);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client status %d",
	    status);
	/* EVIL never reached the owner; the dropped count covers it. */
	ck_assert_str_eq(buf_cstr(&r.lines), "[NOOP][STLS](dropped 6)(tls)[hello]");
	conn_free(&r.conn);
	close(sv[0]);
	tls_ctx_free(&r.tls_ctx);
	loop_free(&r.loop);
	buf_free(&r.lines);
	unlink(cert);
	unlink(key);
	rmdir(tmpdir);
}
END_TEST

/* Server side of the resumption test: sequential handshakes on fds, each
 * followed by one byte ("x") so a TLS 1.3 client reads the tickets. */
static void
resume_server(struct tls_ctx **sctx, size_t nctx, const int *fds, size_t n)
{
	char *err = NULL, b[16];

	for (size_t i = 0; i < n; i++) {
		/* Several contexts stand for several server processes. */
		struct tls_conn *t = tls_server_new(sctx[i % nctx], fds[i]);

		if (t == NULL || tls_handshake_timeout(t, 5000, &err) < 0)
			_exit(10 + (int)i);
		if (tls_write(t, "x", 1) != 1)
			_exit(20 + (int)i);
		/* Until the client is done with this connection. */
		while (tls_read(t, b, sizeof(b)) > 0)
			;
		tls_conn_free(&t);
		close(fds[i]);
	}
	_exit(0);
}

/* One client connection: 1 resumed, 0 full handshake, -1 failure. */
static int
resume_client(struct tls_ctx *ctx, int fd, const char *key)
{
	struct tls_conn *t = tls_client_new(ctx, fd, NULL, key);
	char *err = NULL, b[4];
	int reused;

	if (t == NULL || tls_handshake_timeout(t, 5000, &err) < 0) {
		free(err);
		return -1;
	}
	if (tls_read(t, b, 1) != 1 || b[0] != 'x')
		return -1;
	reused = tls_session_reused(t);
	tls_conn_free(&t);
	close(fd);
	return reused;
}

static void
resume_case(const char *cert, const char *key, int maxver)
{
	struct tls_ctx *sctx, *cctx;
	int sv[4][2], sfd[4], status;
	char *err = NULL;
	pid_t pid;
	size_t i;

	sctx = tls_server_ctx_new(cert, key, &err);
	ck_assert_msg(sctx != NULL, "%s", err);
	cctx = tls_client_ctx_new(NULL, NULL, &err);
	ck_assert_msg(cctx != NULL, "%s", err);
	if (maxver == 12)
		tls_ctx_max_tls12(cctx);
	tls_client_session_cache(cctx, 60);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
		sfd[i] = sv[i][0];
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (i = 0; i < 4; i++)
			close(sv[i][1]);
		resume_server(&sctx, 1, sfd, 4);
	}
	for (i = 0; i < 4; i++)
		close(sv[i][0]);
	/* First contact: full handshake. Then the same key resumes, a key
	 * never seen does not, and the first key still does. */
	ck_assert_int_eq(resume_client(cctx, sv[0][1], "nh|mx|192.0.2.1|25|1"), 0);
	ck_assert_int_eq(resume_client(cctx, sv[1][1], "nh|mx|192.0.2.1|25|1"), 1);
	ck_assert_int_eq(resume_client(cctx, sv[2][1], "other|mx|192.0.2.1|25|1"), 0);
	ck_assert_int_eq(resume_client(cctx, sv[3][1], "nh|mx|192.0.2.1|25|1"), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "server status %d",
	    status);
	tls_ctx_free(&cctx);
	tls_ctx_free(&sctx);
}

START_TEST(test_tls_server_dh)
{
	char cmd[1024], cert[200], key[200], dh[200];
	char dir[] = "/tmp/test_conn_dh.XXXXXX";
	struct tls_ctx *ctx;
	char *err = NULL;

	make_cert(dir, cert, sizeof(cert), key, sizeof(key));
	snprintf(dh, sizeof(dh), "%s/dh.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl genpkey -genparam -algorithm DH "
	    "-pkeyopt group:ffdhe3072 -out %s 2>/dev/null", dh);
	ck_assert_int_eq(system(cmd), 0);
	ctx = tls_server_ctx_new(cert, key, &err);
	ck_assert_msg(ctx != NULL, "%s", err);
	ck_assert_int_eq(tls_server_dh(ctx, NULL, &err), 0);
	ck_assert_int_eq(tls_server_dh(ctx, "auto", &err), 0);
	ck_assert_int_eq(tls_server_dh(ctx, dh, &err), 0);
	ck_assert_ptr_null(err);
	/* A certificate is no group; a missing file names itself. */
	ck_assert_int_eq(tls_server_dh(ctx, cert, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "no DH parameters"));
	free(err);
	ck_assert_int_eq(tls_server_dh(ctx, "/nonexistent/dh.pem", &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dh.pem"));
	free(err);
	tls_ctx_free(&ctx);
	unlink(cert);
	unlink(key);
	unlink(dh);
	rmdir(dir);
}
END_TEST

START_TEST(test_tls_resume)
{
	char cert[200], key[200];
	char dir[] = "/tmp/test_conn_resume.XXXXXX";

	make_cert(dir, cert, sizeof(cert), key, sizeof(key));
	resume_case(cert, key, 0);        /* TLS 1.3: tickets */
	resume_case(cert, key, 12);       /* TLS 1.2: session tickets / IDs */
	unlink(cert);
	unlink(key);
	rmdir(dir);
}
END_TEST

/* Two server contexts (two smtpd processes) with one key file, or each
 * with OpenSSL's own keys (keyfile NULL): the client alternates between
 * them; want is the "resumed" flag of connections 1..3. */
static void
shared_case(const char *cert, const char *key, const char *keyfile, int maxver,
    int want)
{
	struct tls_ctx *sctx[2], *cctx;
	int sv[4][2], sfd[4], status;
	char *err = NULL;
	pid_t pid;
	size_t i;

	for (i = 0; i < 2; i++) {
		sctx[i] = tls_server_ctx_new(cert, key, &err);
		ck_assert_msg(sctx[i] != NULL, "%s", err);
		if (keyfile != NULL)
			ck_assert_msg(tls_server_ticket_keys(sctx[i], keyfile, &err) == 0,
			    "%s", err);
	}
	cctx = tls_client_ctx_new(NULL, NULL, &err);
	ck_assert_msg(cctx != NULL, "%s", err);
	if (maxver == 12)
		tls_ctx_max_tls12(cctx);
	tls_client_session_cache(cctx, 60);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
		sfd[i] = sv[i][0];
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (i = 0; i < 4; i++)
			close(sv[i][1]);
		resume_server(sctx, 2, sfd, 4);
	}
	for (i = 0; i < 4; i++)
		close(sv[i][0]);
	ck_assert_int_eq(resume_client(cctx, sv[0][1], "k"), 0);
	for (i = 1; i < 4; i++) {
		int got = resume_client(cctx, sv[i][1], "k");

		ck_assert_msg(got == want, "TLS max %d, keys %s, connection %zu: "
		    "resumed %d", maxver, keyfile != NULL ? "shared" : "own", i, got);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "server status %d",
	    status);
	tls_ctx_free(&cctx);
	tls_ctx_free(&sctx[0]);
	tls_ctx_free(&sctx[1]);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

START_TEST(test_tls_shared_ticket_keys)
{
	char cert[200], key[200], keys[200], line[TLSKEYS_TEXT_MAX];
	char dir[] = "/tmp/test_conn_keys.XXXXXX";
	unsigned char secret[TLSKEYS_SECRET_LEN] = { 1, 2, 3 };
	struct tlskeys k;
	struct tls_ctx *sctx;
	char *err = NULL;

	make_cert(dir, cert, sizeof(cert), key, sizeof(key));
	snprintf(keys, sizeof(keys), "%s/tls_ticket_keys", dir);
	tlskeys_init(&k, secret, 3600, (long long)time(NULL) / 3600);
	ck_assert_int_eq(tlskeys_format(&k, line, sizeof(line)), 0);

	/* A file others may read is no secret; a malformed one is refused. */
	sctx = tls_server_ctx_new(cert, key, &err);
	ck_assert_ptr_nonnull(sctx);
	write_file(keys, line, 0644);
	ck_assert_int_eq(tls_server_ticket_keys(sctx, keys, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "mode 0600"));
	free(err);
	write_file(keys, "postern-ticket-keys 1 x\n", 0600);
	ck_assert_int_eq(tls_server_ticket_keys(sctx, keys, &err), -1);
	free(err);
	tls_ctx_free(&sctx);

	write_file(keys, line, 0600);
	shared_case(cert, key, keys, 0, 1);      /* TLS 1.3 */
	shared_case(cert, key, keys, 12, 1);     /* TLS 1.2 tickets */
	shared_case(cert, key, NULL, 0, 0);      /* per-process keys: never */
	unlink(keys);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("conn");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_lines_and_eof);
	tcase_add_test(tc, test_lines_across_events);
	tcase_add_test(tc, test_tls_resume);
	tcase_add_test(tc, test_tls_server_dh);
	tcase_add_test(tc, test_tls_shared_ticket_keys);
	tcase_add_test(tc, test_big_write);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_timeout_and_free_in_cb);
	tcase_add_test(tc, test_starttls);
	tcase_add_test(tc, test_bare_lf_and_held_output);
	tcase_add_test(tc, test_last_words_after_timeout);
	tcase_add_test(tc, test_free_in_cb_then_fd_reused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failures;

	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
