/*
 * smtp_io - one SMTP client connection: connect with a timeout, write
 * with a timeout, read bounded reply lines, over plain TCP or TLS.
 *
 * The socket is non-blocking after connect; every wait is a poll() with
 * the stage's deadline. Replies are parsed by lib/proto/smtpc.c: a line
 * is at most SMTPC_LINE_MAX bytes and a reply at most SMTPC_REPLY_LINES
 * lines; more is a protocol error (the session is abandoned, the
 * recipients deferred), never a crash. LMTP may also connect to a UNIX
 * socket (h->path): as this process's own uid, which is mail_owner (the
 * lmtp service refuses to run privileged, see smtp.c), so a socket path
 * is never followed with root's rights.
 * Trusts nothing the server sends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "proto/smtpc.h"
#include "smtp.h"

static int wait_fd(int fd, short ev, long long deadline);

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Non-blocking connect with a deadline, from smtp_bind_address when set
 * (an instance on its own address talks from that address). -1 errno. */
static int
connect_to(const struct smtp_host *h)
{
	struct sockaddr_storage ss, src;
	socklen_t sl, srcl = 0;
	int fd, err = 0, rc;
	socklen_t el = sizeof(err);
	const char *bind_addr = h->family == AF_INET6 ? sconf.bind_address6 :
	    sconf.bind_address;

	memset(&ss, 0, sizeof(ss));
	memset(&src, 0, sizeof(src));
	if (h->family == AF_UNIX) {
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;

		su->sun_family = AF_UNIX;
		if (strlen(h->addr) >= sizeof(su->sun_path))
			return errno = ENAMETOOLONG, -1;
		memcpy(su->sun_path, h->addr, strlen(h->addr) + 1);
		sl = (socklen_t)sizeof(*su);
		bind_addr = NULL;
	} else if (h->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)h->port);
		if (inet_pton(AF_INET6, h->addr, &s6->sin6_addr) != 1)
			return errno = EINVAL, -1;
		sl = sizeof(*s6);
		if (bind_addr != NULL && *bind_addr != '\0') {
			struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&src;

			b6->sin6_family = AF_INET6;
			if (inet_pton(AF_INET6, bind_addr, &b6->sin6_addr) == 1)
				srcl = sizeof(*b6);
		}
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)h->port);
		if (inet_pton(AF_INET, h->addr, &s4->sin_addr) != 1)
			return errno = EINVAL, -1;
		sl = sizeof(*s4);
		if (bind_addr != NULL && *bind_addr != '\0') {
			struct sockaddr_in *b4 = (struct sockaddr_in *)&src;

			b4->sin_family = AF_INET;
			if (inet_pton(AF_INET, bind_addr, &b4->sin_addr) == 1)
				srcl = sizeof(*b4);
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (srcl > 0 && bind(fd, (struct sockaddr *)&src, srcl) < 0) {
		log_warn("bind to smtp_bind_address %s", bind_addr);
		/* Carry on from the default address. */
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return errno = err, -1;
	}
	rc = wait_fd(fd, POLLOUT, mono_ms() + (long long)sconf.connect_timeout * 1000);
	if (rc <= 0) {
		close(fd);
		return errno = rc == 0 ? ETIMEDOUT : errno, -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
		close(fd);
		return errno = err != 0 ? err : ECONNREFUSED, -1;
	}
	return fd;
}

int
smtp_conn_open(struct smtp_conn *c, const struct smtp_host *h, char *why, size_t whylen)
{
	memset(c, 0, sizeof(*c));
	buf_init(&c->in, SMTPC_LINE_MAX * 4);
	errno = 0;
	c->fd = connect_to(h);
	if (c->fd < 0 && h->family == AF_UNIX) {
		snprintf(why, whylen, "connect to %s[%s]: %s", h->name, h->addr,
		    errno == ETIMEDOUT ? "Connection timed out" :
		    errno != 0 ? strerror(errno) : "Connection failed");
		buf_free(&c->in);
		return -1;
	}
	if (c->fd < 0) {
		snprintf(why, whylen, "connect to %s[%s]:%d: %s", h->name, h->addr, h->port,
		    errno == ETIMEDOUT ? "Connection timed out" :
		    errno != 0 ? strerror(errno) : "Connection failed");
		buf_free(&c->in);
		return -1;
	}
	return 0;
}

void
smtp_conn_close(struct smtp_conn *c)
{
	tls_conn_free(&c->tls);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
}

int
smtp_conn_idle_ok(struct smtp_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };

	if (c->fd < 0 || c->in.len > 0 || (c->tls != NULL && tls_pending(c->tls) > 0))
		return 0;
	if (poll(&p, 1, 0) < 0)
		return errno == EINTR;
	/* Nothing is due from an idle server: bytes, EOF or an error alike
	 * mean it is going away (a timeout 421, a restart). */
	return p.revents == 0;
}

void
smtp_conn_purge(struct smtp_conn *c)
{
	buf_reset(&c->in);
}

/* Wait for fd events until deadline: 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short ev, long long deadline)
{
	struct pollfd p;
	int left, rc;

	for (;;) {
		left = (int)(deadline - mono_ms());
		if (left <= 0)
			return 0;
		p.fd = fd;
		p.events = ev;
		p.revents = 0;
		rc = poll(&p, 1, left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

int
smtp_conn_write(struct smtp_conn *c, const void *p, size_t n, int timeout)
{
	long long deadline = mono_ms() + (long long)timeout * 1000;
	const char *s = p;
	ssize_t w;
	short ev;

	while (n > 0) {
		ev = POLLOUT;
		if (c->tls != NULL) {
			w = tls_write(c->tls, s, n);
			if (w == TLS_WANT_READ)
				ev = POLLIN;
			if (w == TLS_ERR) {
				snprintf(c->errtext, sizeof(c->errtext), "%s",
				    tls_last_error(c->tls));
				return -1;
			}
		} else {
			w = write(c->fd, s, n);
			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				snprintf(c->errtext, sizeof(c->errtext), "%s", strerror(errno));
				return -1;
			}
		}
		if (w > 0) {
			s += w;
			n -= (size_t)w;
			continue;
		}
		if (wait_fd(c->fd, ev, deadline) <= 0) {
			snprintf(c->errtext, sizeof(c->errtext), "timeout");
			return -1;
		}
	}
	return 0;
}

/* Read more input: 1 got bytes, 0 EOF, -1 error/timeout (errtext). */
static int
fill(struct smtp_conn *c, long long deadline)
{
	char tmp[4096];
	ssize_t r;
	short ev;

	if (c->in.len >= SMTPC_LINE_MAX * 2) {
		snprintf(c->errtext, sizeof(c->errtext), "reply line too long");
		return -1;
	}
	for (;;) {
		ev = POLLIN;
		if (c->tls != NULL) {
			r = tls_read(c->tls, tmp, sizeof(tmp));
			if (r == TLS_WANT_WRITE)
				ev = POLLOUT;
			if (r == TLS_ERR) {
				snprintf(c->errtext, sizeof(c->errtext), "%s",
				    tls_last_error(c->tls));
				return -1;
			}
		} else {
			r = read(c->fd, tmp, sizeof(tmp));
			if (r < 0 && errno != EAGAIN && errno != EINTR) {
				snprintf(c->errtext, sizeof(c->errtext), "%s", strerror(errno));
				return -1;
			}
		}
		if (r == 0) {
			snprintf(c->errtext, sizeof(c->errtext), "lost connection");
			return 0;
		}
		if (r > 0) {
			buf_append(&c->in, tmp, (size_t)r);
			return 1;
		}
		if (wait_fd(c->fd, ev, deadline) <= 0) {
			snprintf(c->errtext, sizeof(c->errtext), "conversation timed out");
			return -1;
		}
	}
}

int
smtp_conn_reply(struct smtp_conn *c, int timeout, int *code, struct buf *text,
    char ***lines)
{
	long long deadline = mono_ms() + (long long)timeout * 1000;
	struct smtpc_reply r;
	size_t used;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	smtpc_reply_init(&r, lines != NULL);
	for (;;) {
		switch (smtpc_reply_parse(&r, c->in.data != NULL ? c->in.data : "", c->in.len,
		    &used)) {
		case SMTPC_DONE:
			buf_consume(&c->in, used);
			*code = r.code;
			buf_reset(text);
			buf_append(text, r.text.data, r.text.len);
			if (lines != NULL) {
				*lines = r.lines;
				r.lines = NULL;
			}
			rc = 0;
			goto out;
		case SMTPC_ERROR:
			snprintf(c->errtext, sizeof(c->errtext), "%s", r.err);
			goto out;
		case SMTPC_NEED_MORE:
			buf_consume(&c->in, used);
			if (fill(c, deadline) <= 0)
				goto out;
			break;
		}
	}
out:
	smtpc_reply_free(&r);
	return rc;
}

void
smtp_reply_dsn(int code, const char *text, char *out, size_t outlen)
{
	const char *p = text;
	size_t b, c;

	snprintf(out, outlen, "%d.0.0", code / 100);
	if (strlen(p) >= 4 && p[3] == ' ')
		p += 4;
	if (p[0] != '0' + code / 100 || p[1] != '.')
		return;
	b = strspn(p + 2, "0123456789");
	if (b < 1 || b > 3 || p[2 + b] != '.')
		return;
	c = strspn(p + 3 + b, "0123456789");
	if (c < 1 || c > 3 || (p[3 + b + c] != ' ' && p[3 + b + c] != '\0'))
		return;
	snprintf(out, outlen, "%.*s", (int)(3 + b + c), p);
}

void
smtp_wire_init(struct smtp_wire *w)
{
	w->bol = 1;
	w->cr = 0;
}

void
smtp_wire_chunk(struct smtp_wire *w, const char *p, size_t n, struct buf *out)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (w->cr) {
			/* CR LF is one line end; a lone CR ends a line too. */
			w->cr = 0;
			buf_append(out, "\r\n", 2);
			w->bol = 1;
			if (ch == '\n') {
				start = i + 1;
				continue;
			}
		}
		if (ch == '\r' || ch == '\n') {
			buf_append(out, p + start, i - start);
			start = i + 1;
			if (ch == '\r') {
				w->cr = 1;
			} else {
				buf_append(out, "\r\n", 2);
				w->bol = 1;
			}
			continue;
		}
		if (w->bol) {
			buf_append(out, p + start, i - start);
			start = i;
			if (ch == '.')
				buf_putc(out, '.');
			w->bol = 0;
		}
	}
	buf_append(out, p + start, n - start);
}

void
smtp_wire_end(struct smtp_wire *w, struct buf *out)
{
	if (w->cr || !w->bol)
		buf_append(out, "\r\n", 2);
	w->cr = 0;
	w->bol = 1;
	buf_append(out, ".\r\n", 3);
}
