/*
 * ipc - the one codec for every internal request and reply.
 *
 * Wire format: a 4-byte big-endian length L, then L bytes of attributes
 * "name\0value\0name\0value\0...". Names may repeat and order is kept.
 *
 * Invariants: an ipc_msg's buffer always holds a well-formed attribute list
 * (an even number of NUL-terminated strings), whether built with ipc_put or
 * filled by ipc_decode/ipc_recv, so the accessors can walk it without
 * re-checking. A frame that fails validation is rejected as a whole and
 * leaves the message empty.
 * Trusts: nothing from the peer; every length is checked against the
 * caller's limit before memory is reserved for it.
 * Limits: the "max" of ipc_recv and ipc_frame_check bounds the attribute
 * bytes (without the 4-byte prefix); 0 means IPC_MAX_DEFAULT. ipc_recv
 * reads exactly one frame and never past it, so the fd may carry
 * other data afterwards; after an error the stream is out of sync and the
 * caller must close it.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/ipc.h"
#include "util/log.h"

void
ipc_init(struct ipc_msg *m)
{
	buf_init(&m->b, 0);
}

void
ipc_free(struct ipc_msg *m)
{
	buf_free(&m->b);
}

void
ipc_reset(struct ipc_msg *m)
{
	buf_reset(&m->b);
}

void
ipc_put(struct ipc_msg *m, const char *name, const char *value)
{
	/* The buffer has no max; failure here can only be size overflow. */
	if (buf_append(&m->b, name, strlen(name) + 1) < 0 ||
	    buf_append(&m->b, value, strlen(value) + 1) < 0)
		log_fatalx("%s: message too large", __func__);
}

void
ipc_put_int(struct ipc_msg *m, const char *name, long long v)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", v);
	ipc_put(m, name, num);
}

int
ipc_next(const struct ipc_msg *m, size_t *pos, const char **name, const char **value)
{
	const char *base = m->b.data;
	size_t len = m->b.len, p = *pos;
	const char *n, *v, *end;

	if (base == NULL || p >= len)
		return 0;
	n = base + p;
	if ((end = memchr(n, '\0', len - p)) == NULL)
		return 0;
	v = end + 1;
	if ((size_t)(v - base) >= len ||
	    (end = memchr(v, '\0', len - (size_t)(v - base))) == NULL)
		return 0;
	*name = n;
	*value = v;
	*pos = (size_t)(end + 1 - base);
	return 1;
}

const char *
ipc_get(const struct ipc_msg *m, const char *name)
{
	const char *n, *v;
	size_t pos = 0;

	while (ipc_next(m, &pos, &n, &v))
		if (strcmp(n, name) == 0)
			return v;
	return NULL;
}

int
ipc_get_int(const struct ipc_msg *m, const char *name, long long *v)
{
	const char *s = ipc_get(m, name);
	const char *p;
	char *end;
	long long x;

	if (s == NULL)
		return -1;
	p = *s == '-' ? s + 1 : s;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = x;
	return 0;
}

/* An attribute body is valid when empty, or when it ends in NUL and holds
 * an even number of strings. */
static int
body_valid(const char *p, size_t n)
{
	size_t i, nuls = 0;

	if (n == 0)
		return 1;
	if (p[n - 1] != '\0')
		return 0;
	for (i = 0; i < n; i++)
		if (p[i] == '\0')
			nuls++;
	return nuls % 2 == 0;
}

static uint32_t
get_be32(const void *v)
{
	const unsigned char *p = v;

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put_be32(unsigned char *p, uint32_t x)
{
	p[0] = (unsigned char)(x >> 24);
	p[1] = (unsigned char)(x >> 16);
	p[2] = (unsigned char)(x >> 8);
	p[3] = (unsigned char)x;
}

int
ipc_frame_len(const void *p, size_t n, size_t max, size_t *frame_len)
{
	uint32_t l;

	if (max == 0)
		max = IPC_MAX_DEFAULT;
	if (n < 4)
		return 0;
	l = get_be32(p);
	if (l > max) {
		errno = EMSGSIZE;
		return -1;
	}
	if (n - 4 < l)
		return 0;
	*frame_len = (size_t)l + 4;
	return 1;
}

int
ipc_frame_check(const struct buf *in, size_t max, size_t *frame_len)
{
	return ipc_frame_len(in->data, in->len, max, frame_len);
}

int
ipc_decode(struct ipc_msg *m, const void *frame, size_t len)
{
	const char *p = frame;

	ipc_reset(m);
	if (len < 4 || get_be32(p) != len - 4 || !body_valid(p + 4, len - 4)) {
		errno = EPROTO;
		return -1;
	}
	if (buf_append(&m->b, p + 4, len - 4) < 0) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

void
ipc_encode(const struct ipc_msg *m, struct buf *out)
{
	unsigned char pfx[4];

	if (m->b.len > UINT32_MAX)
		log_panic("%s: message of %zu bytes cannot be framed", __func__, m->b.len);
	put_be32(pfx, (uint32_t)m->b.len);
	if (buf_append(out, pfx, 4) < 0 ||
	    (m->b.len > 0 && buf_append(out, m->b.data, m->b.len) < 0))
		log_fatalx("%s: output buffer full", __func__);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline (<0 = none). 0 ready, -1 errno. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int rc, t;

	for (;;) {
		t = -1;
		if (deadline >= 0) {
			left = deadline - now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			t = left > 1000000 ? 1000000 : (int)left;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		rc = poll(&pfd, 1, t);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (rc > 0)
			return 0;   /* ready, or error: the next I/O call says which */
	}
}

/* On a socket the send comes first and poll() only after EAGAIN
 * (MSG_DONTWAIT: a blocking socket cannot hang past the deadline), which
 * saves a poll() per frame when the peer keeps up; another fd (a pipe,
 * which may block) is polled first. */
static int
send_bytes(int fd, const char *p, size_t n, int64_t deadline)
{
	int use_send = 1;
	ssize_t w;

	while (n > 0) {
		if (use_send) {
			/* MSG_NOSIGNAL: a dead peer is EPIPE, not SIGPIPE. */
			w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno == ENOTSOCK) {
				use_send = 0;
				continue;
			}
		} else {
			if (wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
			w = write(fd, p, n);
		}
		if (w < 0) {
			if (use_send && (errno == EAGAIN || errno == EWOULDBLOCK)
			    && wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read exactly n bytes. EOF: EPIPE before the first byte of a frame
 * (at_start), ECONNRESET in the middle of one. With wait, the bytes are
 * waited for first (an answer is seldom there yet when a frame starts);
 * without, read at once (the rest of a frame, sent with it, or a frame
 * the caller knows is there). */
static int
recv_bytes(int fd, char *p, size_t n, int64_t deadline, int at_start, int wait)
{
	int use_recv = 1;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (wait || !use_recv) {
			if (wait_fd(fd, POLLIN, deadline) < 0)
				return -1;
		}
		wait = 0;
		if (use_recv) {
			r = recv(fd, p + got, n - got, MSG_DONTWAIT);
			if (r < 0 && errno == ENOTSOCK) {
				use_recv = 0;
				continue;
			}
		} else {
			r = read(fd, p + got, n - got);
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				wait = 1;
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = at_start && got == 0 ? EPIPE : ECONNRESET;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

static int64_t
deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

int
ipc_send(int fd, const struct ipc_msg *m, int timeout_ms)
{
	struct buf out = BUF_INIT(0);
	int rc, saved;

	if (m->b.len > UINT32_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	ipc_encode(m, &out);
	rc = send_bytes(fd, out.data, out.len, deadline_of(timeout_ms));
	saved = errno;
	buf_free(&out);
	errno = saved;
	return rc;
}

static int
recv_frame(int fd, struct ipc_msg *m, size_t max, int timeout_ms, int wait_first)
{
	int64_t deadline = deadline_of(timeout_ms);
	unsigned char pfx[4];
	uint32_t l;

	if (max == 0)
		max = IPC_MAX_DEFAULT;
	ipc_reset(m);
	if (recv_bytes(fd, (char *)pfx, 4, deadline, 1, wait_first) < 0)
		return -1;
	l = get_be32(pfx);
	if (l > max) {
		errno = EMSGSIZE;
		return -1;
	}
	if (buf_reserve(&m->b, l) < 0) {
		errno = EMSGSIZE;
		return -1;
	}
	if (recv_bytes(fd, m->b.data, l, deadline, 0, 0) < 0) {
		ipc_reset(m);
		return -1;
	}
	if (!body_valid(m->b.data, l)) {
		ipc_reset(m);
		errno = EPROTO;
		return -1;
	}
	m->b.len = l;
	m->b.data[l] = '\0';
	return 0;
}

int
ipc_recv(int fd, struct ipc_msg *m, size_t max, int timeout_ms)
{
	return recv_frame(fd, m, max, timeout_ms, 1);
}

int
ipc_recv_ready(int fd, struct ipc_msg *m, size_t max, int timeout_ms)
{
	return recv_frame(fd, m, max, timeout_ms, 0);
}

/* The first byte of the frame carries the descriptor (SCM_RIGHTS); the
 * rest goes as plain bytes. */
int
ipc_send_fd(int sock, const struct ipc_msg *m, int pass_fd, int timeout_ms)
{
	struct buf out = BUF_INIT(0);
	int64_t deadline = deadline_of(timeout_ms);
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov;
	struct msghdr mh;
	ssize_t w;
	int rc = -1, saved;

	ipc_encode(m, &out);
	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = out.data;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.space;
	mh.msg_controllen = sizeof(cm.space);
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&cm.h), &pass_fd, sizeof(int));
	for (;;) {
		if (wait_fd(sock, POLLOUT, deadline) < 0)
			goto out;
		w = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == 1)
			break;
		if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (w >= 0)
			errno = EIO;
		goto out;
	}
	rc = send_bytes(sock, out.data + 1, out.len - 1, deadline);
out:
	saved = errno;
	buf_free(&out);
	errno = saved;
	return rc;
}

int
ipc_recv_fd(int sock, struct ipc_msg *m, size_t max, int *fd_r, int timeout_ms)
{
	int64_t deadline = deadline_of(timeout_ms);
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov;
	struct msghdr mh;
	unsigned char pfx[4];
	struct cmsghdr *h;
	uint32_t l;
	ssize_t r;

	*fd_r = -1;
	if (max == 0)
		max = IPC_MAX_DEFAULT;
	ipc_reset(m);
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = pfx;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.space;
	mh.msg_controllen = sizeof(cm.space);
	for (;;) {
		if (wait_fd(sock, POLLIN, deadline) < 0)
			return -1;
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		break;
	}
	for (h = CMSG_FIRSTHDR(&mh); h != NULL; h = CMSG_NXTHDR(&mh, h)) {
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS
		    && h->cmsg_len == CMSG_LEN(sizeof(int)) && *fd_r < 0)
			memcpy(fd_r, CMSG_DATA(h), sizeof(int));
	}
	if ((mh.msg_flags & MSG_CTRUNC) || *fd_r < 0)
		goto bad;
	if (recv_bytes(sock, (char *)pfx + 1, 3, deadline, 0, 0) < 0)
		goto fail;
	l = get_be32(pfx);
	if (l > max || buf_reserve(&m->b, l) < 0) {
		errno = EMSGSIZE;
		goto fail;
	}
	if (recv_bytes(sock, m->b.data, l, deadline, 0, 0) < 0)
		goto fail;
	if (!body_valid(m->b.data, l))
		goto bad;
	m->b.len = l;
	m->b.data[l] = '\0';
	return 0;
bad:
	errno = EPROTO;
fail:
	{
		int saved = errno;
		if (*fd_r >= 0)
			close(*fd_r);
		*fd_r = -1;
		ipc_reset(m);
		errno = saved;
	}
	return -1;
}
