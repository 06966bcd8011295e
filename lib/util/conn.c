/*
 * conn - buffered, non-blocking, optionally TLS connection I/O on the loop.
 * See conn.h for the contract.
 *
 * Invariants:
 * - Events reach the owner only from dispatch(), which runs at the end of
 *   a loop callback (fd, timer or the 0 ms "kick"), never from inside a
 *   conn_* call the owner made: the owner's stack never re-enters itself.
 * - A conn freed inside its callback is released by the outermost
 *   dispatch (busy counter), so no code below sees freed memory; its fd
 *   registration, timers and TLS go at once (detach()).
 * - After conn_starttls() nothing is read from the socket until the
 *   handshake: the client's TLS bytes must reach OpenSSL, not c->in.
 * - Decrypted bytes OpenSSL holds (tls_pending) are read through the kick
 *   timer, since the fd will not poll readable for them.
 * - After EOF, ERROR or TIMEOUT the conn reports nothing more.
 * BUGS/LIMITS: server-side TLS only (the SMTP client keeps its blocking
 * style in smtp/); no TLS renegotiation handling beyond OpenSSL's own.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/alloc.h"
#include "util/conn.h"
#include "util/line.h"
#include "util/tls.h"

#define READ_CHUNK 4096
#define IN_MAX_DEFAULT (64 * 1024)
#define SHRINK_ABOVE (4 * READ_CHUNK)

enum tls_state { TLS_OFF, TLS_WAIT_DRAIN, TLS_HANDSHAKE, TLS_UP };

/* COMPRESS=DEFLATE (RFC 4978): raw deflate both ways, under TLS if any. */
struct zstate {
	z_stream def, inf;
	struct buf zout;        /* wire bytes waiting: compressed (and what
	                         * was queued before compression began) */
	struct buf zin;         /* compressed bytes not yet inflated (<= READ_CHUNK) */
	int more;               /* inflate filled its output: it may hold more */
};

struct conn {
	struct loop *loop;
	int fd;
	conn_cb cb;
	void *ctx;
	struct buf in;          /* unread input is in.data[in_off..in.len) */
	size_t in_off;
	size_t in_max;
	struct buf out;
	int read_on;
	int write_on;           /* 0: output held (conn_set_write) */
	struct line_splitter lines;   /* conn_read_line's state */
	int eof;
	int finished;           /* EOF/ERROR/TIMEOUT reported: silent from now */
	int dead;
	int busy;
	unsigned pending;       /* events not yet reported */
	unsigned registered;    /* interest set in the loop (0 = none) */
	enum tls_state tls_state;
	struct tls_ctx *tls_ctx;
	struct tls_conn *tls;
	unsigned tls_want;
	uint64_t timeout_ms;
	uint64_t last_activity;
	uint64_t idle_timer;
	uint64_t kick_timer;
	struct zstate *z;
	char *err;              /* ERR_MAX bytes, allocated at the first error */
};

#define ERR_MAX 256

/* Bytes waiting to be written, compressed or not. */
static size_t
out_pending(const struct conn *c)
{
	return c->out.len + (c->z != NULL ? c->z->zout.len : 0);
}

static void conn_fd_cb(struct loop *l, int fd, unsigned events, void *ctx);
static void dispatch(struct conn *c);

/* The error text: its buffer comes with the first error, so a conn that
 * never fails (nearly all) does not carry it. */
static void PRINTF_LIKE(2, 3)
err_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err == NULL)
		c->err = xmalloc(ERR_MAX);
	va_start(ap, fmt);
	(void)vsnprintf(c->err, ERR_MAX, fmt, ap);
	va_end(ap);
}

static void
set_error(struct conn *c, const char *what, const char *detail)
{
	err_printf(c, "%s: %s", what, detail);
	c->pending |= CONN_EV_ERROR;
}

static void
kick_cb(struct loop *l, void *ctx)
{
	struct conn *c = ctx;

	c->kick_timer = 0;
	c->busy++;
	/* Bytes inside OpenSSL: read them as if the fd had polled readable. */
	conn_fd_cb(l, c->fd, LOOP_READ, c);
	c->busy--;
	dispatch(c);
}

/* Events were posted outside a dispatch: deliver them from the loop. */
static void
kick(struct conn *c)
{
	if (c->busy == 0 && c->kick_timer == 0 && !c->dead)
		c->kick_timer = loop_timer_add(c->loop, 0, kick_cb, c);
}

static int
may_read(const struct conn *c)
{
	return c->read_on && !c->eof && !c->finished && !c->dead
	    && c->in.len - c->in_off < c->in_max
	    && (c->tls_state == TLS_OFF || c->tls_state == TLS_UP);
}

static void
update_events(struct conn *c)
{
	unsigned want = 0;

	if (c->dead)
		return;
	if (!c->finished) {
		if (c->tls_state == TLS_HANDSHAKE) {
			want = c->tls_want ? c->tls_want : LOOP_READ;
		} else {
			if (may_read(c))
				want |= LOOP_READ;
			if (out_pending(c) > 0 && c->write_on)
				want |= LOOP_WRITE;
			/* Compressed input already read waits in zin. */
			if ((want & LOOP_READ) && c->z != NULL
			    && (c->z->zin.len > 0 || c->z->more))
				kick(c);
			if (want != 0 && c->tls != NULL)
				want |= c->tls_want;
			if ((want & LOOP_READ) && c->tls != NULL && tls_pending(c->tls) > 0)
				kick(c);
		}
	}
	if (want == c->registered)
		return;
	if (loop_fd_set(c->loop, c->fd, want, conn_fd_cb, c) < 0) {
		set_error(c, "loop_fd_set", strerror(errno));
		kick(c);
		return;
	}
	c->registered = want;
}

/* Everything that touches the fd or the loop, done by conn_free() at
 * once even inside the callback: the owner closes the fd right after, and
 * its number may be reused (a new connection) before the struct goes. */
static void
detach(struct conn *c)
{
	if (c->idle_timer)
		loop_timer_cancel(c->loop, c->idle_timer);
	if (c->kick_timer)
		loop_timer_cancel(c->loop, c->kick_timer);
	c->idle_timer = c->kick_timer = 0;
	if (c->registered)
		loop_fd_del(c->loop, c->fd);
	c->registered = 0;
	if (c->tls != NULL)
		tls_conn_free(&c->tls);
}

static void
release(struct conn *c)
{
	detach(c);
	if (c->z != NULL) {
		deflateEnd(&c->z->def);
		inflateEnd(&c->z->inf);
		buf_free(&c->z->zout);
		buf_free(&c->z->zin);
		free(c->z);
	}
	buf_free(&c->in);
	buf_free(&c->out);
	free(c->err);
	free(c);
}

static void
dispatch(struct conn *c)
{
	while (c->pending != 0 && !c->dead && !c->finished && c->busy == 0) {
		unsigned ev = c->pending;
		c->pending = 0;
		if (ev & (CONN_EV_EOF | CONN_EV_ERROR | CONN_EV_TIMEOUT))
			c->finished = 1;
		c->busy++;
		c->cb(c, ev, c->ctx);
		c->busy--;
	}
	if (c->busy > 0)
		return;
	if (c->dead) {
		release(c);
		return;
	}
	/* Every byte read was consumed and the owner's callback returned:
	 * the next read may come at any time and would reuse the buffer
	 * anyway, so nothing the owner was given can still be in use. An
	 * idle conn holds no input buffer. A paused one keeps it. */
	if (c->in.len == c->in_off && c->read_on && c->in.data != NULL) {
		buf_free(&c->in);
		c->in_off = 0;
	}
	update_events(c);
}

static void
touch(struct conn *c)
{
	c->last_activity = loop_now_ms();
}

static void
idle_cb(struct loop *l, void *ctx)
{
	struct conn *c = ctx;
	uint64_t now = loop_now_ms(), deadline;

	c->idle_timer = 0;
	if (c->timeout_ms == 0 || c->finished)
		return;
	deadline = c->last_activity + c->timeout_ms;
	if (now < deadline) {
		c->idle_timer = loop_timer_add(l, deadline - now, idle_cb, c);
		return;
	}
	c->pending |= CONN_EV_TIMEOUT;
	dispatch(c);
}

/* Map a TLS result: bytes, or -1 with errno EAGAIN (and tls_want set) or
 * EIO (error text set). */
static ssize_t
tls_result(struct conn *c, ssize_t r, const char *what)
{
	if (r >= 0) {
		c->tls_want = 0;
		return r;
	}
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		c->tls_want = r == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE;
		errno = EAGAIN;
		return -1;
	}
	err_printf(c, "TLS %s: %s", what, tls_last_error(c->tls));
	errno = EIO;
	return -1;
}

static ssize_t
io_read(struct conn *c, void *p, size_t n)
{
	if (c->tls == NULL)
		return read(c->fd, p, n);
	return tls_result(c, tls_read(c->tls, p, n), "read");
}

static ssize_t
io_write(struct conn *c, const void *p, size_t n)
{
	if (c->tls == NULL)
		return write(c->fd, p, n);
	return tls_result(c, tls_write(c->tls, p, n), "write");
}

static void
handshake_step(struct conn *c)
{
	char *err = NULL;
	int r = tls_handshake(c->tls, &err);

	touch(c);
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		c->tls_want = r == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE;
		return;
	}
	if (r != 0) {
		set_error(c, "TLS handshake", err ? err : "unknown error");
		free(err);
		return;
	}
	c->tls_state = TLS_UP;
	c->tls_want = 0;
	c->pending |= CONN_EV_TLS_UP;
}

static void
start_handshake(struct conn *c)
{
	c->tls = tls_server_new(c->tls_ctx, c->fd);
	if (c->tls == NULL) {
		set_error(c, "TLS", "cannot create a session");
		return;
	}
	c->tls_state = TLS_HANDSHAKE;
	handshake_step(c);
}

/* Write out; 1 all written, 0 some left, -1 error (ERROR posted). */
/* Deflate what is queued in out onto zout, flushed to a byte boundary so
 * the peer can read every reply at once. */
static int
z_deflate(struct conn *c)
{
	struct zstate *z = c->z;
	int rc;

	z->def.next_in = (unsigned char *)c->out.data;
	z->def.avail_in = (uInt)c->out.len;
	do {
		if (buf_reserve(&z->zout, c->out.len / 2 + 64) < 0)
			return -1;
		z->def.next_out = (unsigned char *)z->zout.data + z->zout.len;
		z->def.avail_out = (uInt)(z->zout.cap - z->zout.len - 1);
		size_t room = z->def.avail_out;
		rc = deflate(&z->def, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -1;
		z->zout.len += room - z->def.avail_out;
	} while (z->def.avail_out == 0 || z->def.avail_in > 0);
	buf_reset(&c->out);
	return 0;
}

static int
do_write(struct conn *c)
{
	struct buf *ob = &c->out;

	if (c->z != NULL) {
		if (c->out.len > 0 && z_deflate(c) < 0) {
			set_error(c, "write", "compression failed");
			return -1;
		}
		ob = &c->z->zout;
	}
	while (ob->len > 0) {
		ssize_t n = io_write(c, ob->data, ob->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (c->tls == NULL || errno != EIO)
				err_printf(c, "write: %s", strerror(errno));
			c->pending |= CONN_EV_ERROR;
			return -1;
		}
		buf_consume(ob, (size_t)n);
		touch(c);
	}
	/* All out: nothing is kept while nothing waits (an idle conn holds
	 * no output buffer; the next reply allocates a small one again). */
	buf_free(ob);
	buf_free(&c->out);
	if (c->tls_state == TLS_WAIT_DRAIN)
		start_handshake(c);
	return 1;
}

/* io_read through inflate: up to n plain bytes. Reads the socket only
 * when nothing compressed is left, READ_CHUNK at a time, so the input
 * held stays bounded (in_max plus one chunk's inflation). */
static ssize_t
z_read(struct conn *c, void *p, size_t n)
{
	struct zstate *z = c->z;
	char tmp[READ_CHUNK];

	for (;;) {
		if (z->zin.len == 0 && !z->more) {
			ssize_t r = io_read(c, tmp, sizeof(tmp));
			if (r <= 0)
				return r;
			(void)buf_append(&z->zin, tmp, (size_t)r);
		}
		z->inf.next_in = (unsigned char *)z->zin.data;
		z->inf.avail_in = (uInt)z->zin.len;
		z->inf.next_out = p;
		z->inf.avail_out = (uInt)n;
		int rc = inflate(&z->inf, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
			err_printf(c, "read: decompression failed");
			errno = EPROTO;
			return -1;
		}
		buf_consume(&z->zin, z->zin.len - z->inf.avail_in);
		size_t got = n - z->inf.avail_out;
		z->more = z->inf.avail_out == 0;
		if (got > 0)
			return (ssize_t)got;
		z->more = 0;
		if (rc == Z_STREAM_END) {
			errno = EPROTO;
			err_printf(c, "read: compressed stream ended");
			return -1;
		}
	}
}

static void
do_read(struct conn *c)
{
	size_t unread = c->in.len - c->in_off;

	/* Compact: unread bytes to the front, so in_max bounds what is held. */
	if (c->in_off > 0) {
		buf_consume(&c->in, c->in_off);
		c->in_off = 0;
	}
	if (unread == 0 && c->in.cap > SHRINK_ABOVE)
		buf_free(&c->in);
	size_t room = c->in_max - c->in.len;
	if (room > READ_CHUNK)
		room = READ_CHUNK;
	/* In place when the buffer has the room (a burst); else into the
	 * stack and then only what came (a command line: a small buffer,
	 * released again once it is consumed, see dispatch()). */
	char tmp[READ_CHUNK];
	char *p = tmp;
	if (c->in.cap > c->in.len + room)
		p = c->in.data + c->in.len;
	ssize_t n = c->z != NULL ? z_read(c, p, room) : io_read(c, p, room);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EPROTO)
			;   /* c->err says it */
		else if (c->tls == NULL || errno != EIO)
			err_printf(c, "read: %s", strerror(errno));
		c->pending |= CONN_EV_ERROR;
		return;
	}
	touch(c);
	if (n == 0) {
		c->eof = 1;
		c->pending |= CONN_EV_EOF;
		return;
	}
	if (p == tmp) {
		if (buf_append(&c->in, tmp, (size_t)n) < 0) {
			set_error(c, "read", "input buffer full");
			return;
		}
	} else {
		c->in.len += (size_t)n;
		c->in.data[c->in.len] = '\0';
	}
	c->pending |= CONN_EV_INPUT;
}

static void
conn_fd_cb(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct conn *c = ctx;

	if (c->dead || c->finished)
		return;
	c->busy++;
	if (c->tls_state == TLS_HANDSHAKE) {
		handshake_step(c);
	} else {
		/* TLS may wait for the opposite direction of the call it
		 * blocked in: with TLS any event retries both. */
		if (c->tls != NULL)
			events |= LOOP_READ | LOOP_WRITE;
		if ((events & LOOP_WRITE) && out_pending(c) > 0 && c->write_on
		    && do_write(c) == 1)
			c->pending |= CONN_EV_DRAINED;
		if ((events & (LOOP_READ | LOOP_ERROR)) && may_read(c))
			do_read(c);
	}
	c->busy--;
	dispatch(c);
}

struct conn *
conn_new(struct loop *l, int fd, size_t in_max, conn_cb cb, void *ctx)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->loop = l;
	c->fd = fd;
	c->cb = cb;
	c->ctx = ctx;
	c->in_max = in_max ? in_max : IN_MAX_DEFAULT;
	buf_init(&c->in, c->in_max + 1);
	buf_init(&c->out, 0);
	c->read_on = 1;
	c->write_on = 1;
	touch(c);
	update_events(c);
	return c;
}

void
conn_free(struct conn **cp)
{
	struct conn *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	c->dead = 1;
	detach(c);
	if (c->busy == 0)
		release(c);
}

int
conn_fd(const struct conn *c)
{
	return c->fd;
}

void
conn_set_cb(struct conn *c, conn_cb cb, void *ctx)
{
	c->cb = cb;
	c->ctx = ctx;
}

void
conn_set_timeout(struct conn *c, uint64_t ms)
{
	c->timeout_ms = ms;
	touch(c);
	if (c->idle_timer) {
		loop_timer_cancel(c->loop, c->idle_timer);
		c->idle_timer = 0;
	}
	if (ms > 0)
		c->idle_timer = loop_timer_add(c->loop, ms, idle_cb, c);
}

void
conn_set_read(struct conn *c, int on)
{
	c->read_on = on;
	if (c->busy == 0)
		update_events(c);
}

void
conn_set_write(struct conn *c, int on)
{
	c->write_on = on;
	if (c->busy == 0)
		update_events(c);
}

const char *
conn_in(const struct conn *c, size_t *len_r)
{
	*len_r = c->in.len - c->in_off;
	return c->in.data != NULL ? c->in.data + c->in_off : "";
}

void
conn_in_consume(struct conn *c, size_t n)
{
	size_t unread = c->in.len - c->in_off;

	c->in_off += n < unread ? n : unread;
	if (c->in_off == c->in.len) {
		/* No NUL written: a line just returned may still sit here. */
		c->in.len = 0;
		c->in_off = 0;
	}
	/* Room again: a paused read may resume. */
	if (c->busy == 0)
		update_events(c);
}

int
conn_read_line(struct conn *c, size_t max, const char **line_r, size_t *len_r)
{
	for (;;) {
		size_t n, used, len;
		const char *p = conn_in(c, &n);
		enum line_result r = line_split(&c->lines, max, p, n, &used, &len);

		/* Offsets only: the bytes stay in place until the next read. */
		conn_in_consume(c, used);
		if (r == LINE_TOO_LONG)
			return -1;
		if (r == LINE_NEED_MORE) {
			/* A full buffer without a line end: max >= in_max. */
			if (n >= c->in_max && used == 0) {
				conn_in_consume(c, n);
				c->lines.skipping = 1;
				return -1;
			}
			return 0;
		}
		*line_r = p;
		*len_r = len;
		return 1;
	}
}

int
conn_line_bare_lf(const struct conn *c)
{
	return c->lines.bare_lf;
}

int
conn_in_inject(struct conn *c, const void *p, size_t n)
{
	struct buf tmp = BUF_INIT(0);
	size_t unread;
	const char *rest = conn_in(c, &unread);

	if (n + unread > c->in_max)
		return -1;
	(void)buf_append(&tmp, p, n);
	(void)buf_append(&tmp, rest, unread);
	buf_reset(&c->in);
	c->in_off = 0;
	(void)buf_append(&c->in, tmp.data, tmp.len);
	buf_free(&tmp);
	c->pending |= CONN_EV_INPUT;
	kick(c);
	return 0;
}

int
conn_read_n(struct conn *c, size_t n, const char **p_r)
{
	size_t have;
	const char *p = conn_in(c, &have);

	if (have < n)
		return 0;
	conn_in_consume(c, n);
	*p_r = p;
	return 1;
}

void
conn_write(struct conn *c, const void *p, size_t n)
{
	/* out has no max: only an allocation failure can stop it (fatal). */
	(void)buf_append(&c->out, p, n);
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
}

size_t
conn_out_len(const struct conn *c)
{
	return out_pending(c);
}

int
conn_flush(struct conn *c)
{
	int r;

	if (c->dead || c->finished)
		return -1;
	if (c->tls_state == TLS_HANDSHAKE || !c->write_on)
		return 0;
	r = do_write(c);
	if (c->pending != 0)
		kick(c);
	if (c->busy == 0)
		update_events(c);
	return r;
}

int
conn_flush_last(struct conn *c)
{
	int r;

	/* Nothing can be said in the middle of a handshake. */
	if (c->dead || (c->tls_state != TLS_OFF && c->tls_state != TLS_UP))
		return -1;
	r = do_write(c);
	c->pending = 0;   /* the owner frees the conn next: nothing to report */
	return r;
}

int
conn_compress(struct conn *c)
{
	struct zstate *z;

	if (c->z != NULL || c->tls_state == TLS_WAIT_DRAIN
	    || c->tls_state == TLS_HANDSHAKE)
		return -1;
	z = xcalloc(1, sizeof(*z));
	/* Raw deflate (no zlib header), as RFC 4978 says. */
	if (deflateInit2(&z->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		return -1;
	}
	if (inflateInit2(&z->inf, -15) != Z_OK) {
		deflateEnd(&z->def);
		free(z);
		return -1;
	}
	/* What is queued now (the OK to COMPRESS) goes out as it is; what
	 * is buffered unread was already compressed by the peer. */
	(void)buf_append(&z->zout, c->out.data, c->out.len);
	buf_reset(&c->out);
	size_t unread;
	const char *rest = conn_in(c, &unread);   /* no buffer while idle */
	(void)buf_append(&z->zin, rest, unread);
	c->in.len = 0;
	c->in_off = 0;
	c->z = z;
	if (c->busy == 0)
		update_events(c);
	return 0;
}

int
conn_compressed(const struct conn *c)
{
	return c->z != NULL;
}

ssize_t
conn_starttls(struct conn *c, struct tls_ctx *ctx)
{
	size_t dropped = c->in.len - c->in_off;

	if (c->tls_state != TLS_OFF)
		return -1;
	c->in.len = 0;
	c->in_off = 0;
	c->lines.skipping = 0;
	c->tls_ctx = ctx;
	c->tls_state = TLS_WAIT_DRAIN;
	if (out_pending(c) == 0)
		start_handshake(c);
	if (c->pending != 0)
		kick(c);
	if (c->busy == 0)
		update_events(c);
	return (ssize_t)dropped;
}

struct tls_conn *
conn_tls(const struct conn *c)
{
	return c->tls_state == TLS_UP ? c->tls : NULL;
}

int
conn_tls_active(const struct conn *c)
{
	return c->tls_state != TLS_OFF;
}

const char *
conn_error(const struct conn *c)
{
	return c->err != NULL ? c->err : "";
}
