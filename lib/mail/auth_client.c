/*
 * auth_client - one password check against the auth daemon, driven by the
 * caller's event loop.
 *
 * Invariants: the connect is non-blocking (a full backlog on the UNIX
 * socket is a temporary failure, not a stall); the done callback runs once,
 * from a timer or fd callback, after every registration of the handle is
 * gone; the encoded request (it holds the password) is wiped as soon as it
 * is written or abandoned.
 *
 * Trusts: the reply only as far as "status" and "user"; anything else or a
 * frame over AUTH_REPLY_MAX is a temporary failure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/net.h"
#include "mail/auth_client.h"

#define AUTH_REPLY_MAX 4096

struct auth_client {
	struct loop *loop;
	int fd;
	struct buf out;
	struct buf in;
	uint64_t timer;      /* deadline */
	uint64_t kick;       /* 0 ms timer for an early failure */
	char *early_reason;
	auth_done_fn done;
	void *ctx;
};

static void
wipe_buf(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

static void
detach(struct auth_client *ac)
{
	if (ac->timer != 0)
		loop_timer_cancel(ac->loop, ac->timer);
	if (ac->kick != 0)
		loop_timer_cancel(ac->loop, ac->kick);
	ac->timer = ac->kick = 0;
	if (ac->fd >= 0) {
		loop_fd_del(ac->loop, ac->fd);
		close(ac->fd);
		ac->fd = -1;
	}
	wipe_buf(&ac->out);
}

static void
release(struct auth_client *ac)
{
	detach(ac);
	buf_free(&ac->in);
	free(ac->early_reason);
	free(ac);
}

/* The reply being handed to a done callback (auth_client_reply_get). */
static const struct ipc_msg *current_reply;

const char *
auth_client_reply_get(const char *name)
{
	return current_reply != NULL ? ipc_get(current_reply, name) : NULL;
}

static void
finish(struct auth_client *ac, enum auth_status st, const char *user,
    const char *reason)
{
	detach(ac);
	ac->done(ac->ctx, st, user, reason);
	release(ac);
}

static void
kick_cb(struct loop *l, void *ctx)
{
	struct auth_client *ac = ctx;

	ac->kick = 0;
	finish(ac, AUTH_TEMPFAIL, NULL, ac->early_reason);
}

static void
timeout_cb(struct loop *l, void *ctx)
{
	struct auth_client *ac = ctx;

	ac->timer = 0;
	finish(ac, AUTH_TEMPFAIL, NULL, "timeout talking to the auth service");
}

static void
got_reply(struct auth_client *ac, size_t flen)
{
	struct ipc_msg rep;
	const char *st, *user, *reason;
	enum auth_status s;

	ipc_init(&rep);
	if (ipc_decode(&rep, ac->in.data, flen) < 0 ||
	    (st = ipc_get(&rep, "status")) == NULL) {
		ipc_free(&rep);
		finish(ac, AUTH_TEMPFAIL, NULL, "malformed reply from the auth service");
		return;
	}
	user = ipc_get(&rep, "user");
	reason = ipc_get(&rep, "reason");
	if (strcmp(st, "ok") == 0 && user != NULL && *user != '\0')
		s = AUTH_OK;
	else if (strcmp(st, "fail") == 0)
		s = AUTH_FAIL;
	else
		s = AUTH_TEMPFAIL;
	current_reply = &rep;
	finish(ac, s, user, reason != NULL ? reason : st);
	current_reply = NULL;
	ipc_free(&rep);
}

static void
io_cb(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct auth_client *ac = ctx;
	char tmp[1024];
	size_t flen;
	ssize_t n;
	int r;

	if (ac->out.len > 0) {
		n = write(fd, ac->out.data, ac->out.len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			finish(ac, AUTH_TEMPFAIL, NULL, "cannot send to the auth service");
			return;
		}
		explicit_bzero(ac->out.data, (size_t)n);
		buf_consume(&ac->out, (size_t)n);
		if (ac->out.len == 0) {
			wipe_buf(&ac->out);
			(void)loop_fd_set(l, fd, LOOP_READ, io_cb, ac);
		}
		return;
	}
	n = read(fd, tmp, sizeof(tmp));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		finish(ac, AUTH_TEMPFAIL, NULL, "the auth service closed the connection");
		return;
	}
	if (buf_append(&ac->in, tmp, (size_t)n) < 0) {
		finish(ac, AUTH_TEMPFAIL, NULL, "reply from the auth service too large");
		return;
	}
	r = ipc_frame_check(&ac->in, AUTH_REPLY_MAX, &flen);
	if (r < 0)
		finish(ac, AUTH_TEMPFAIL, NULL, "reply from the auth service too large");
	else if (r > 0)
		got_reply(ac, flen);
}

struct auth_client *
auth_client_start(struct loop *l, const char *socket_path,
    const struct auth_request *req, int timeout_ms, auth_done_fn done, void *ctx)
{
	struct auth_client *ac = xcalloc(1, sizeof(*ac));
	struct sockaddr_un sun;
	struct ipc_msg m;

	ac->loop = l;
	ac->fd = -1;
	ac->done = done;
	ac->ctx = ctx;
	buf_init(&ac->out, 0);
	buf_init(&ac->in, AUTH_REPLY_MAX + 1024);

	ipc_init(&m);
	ipc_put(&m, "request", "auth");
	ipc_put(&m, "service", req->service ? req->service : "");
	ipc_put(&m, "mechanism", req->mechanism ? req->mechanism : "");
	ipc_put(&m, "user", req->user ? req->user : "");
	ipc_put(&m, "authzid", req->authzid ? req->authzid : "");
	ipc_put(&m, "password", req->password ? req->password : "");
	ipc_put(&m, "client_addr", req->client_addr ? req->client_addr : "");
	if (req->want_ticket)
		ipc_put(&m, "ticket", "yes");
	ipc_encode(&m, &ac->out);
	if (m.b.data != NULL)
		explicit_bzero(m.b.data, m.b.cap);
	ipc_free(&m);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		ac->early_reason = xasprintf("%s: socket path too long", socket_path);
		goto early;
	}
	strcpy(sun.sun_path, socket_path);
	ac->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ac->fd < 0 || (connect(ac->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0
	    && errno != EINPROGRESS)) {
		ac->early_reason = xasprintf("connect %s: %s", socket_path,
		    strerror(errno));
		goto early;
	}
	if (loop_fd_set(l, ac->fd, LOOP_WRITE, io_cb, ac) < 0) {
		ac->early_reason = xasprintf("register %s: %s", socket_path,
		    strerror(errno));
		goto early;
	}
	ac->timer = loop_timer_add(l, (uint64_t)(timeout_ms > 0 ? timeout_ms : 60000),
	    timeout_cb, ac);
	return ac;
early:
	detach(ac);
	ac->kick = loop_timer_add(l, 0, kick_cb, ac);
	return ac;
}

void
auth_client_cancel(struct auth_client **acp)
{
	if (*acp == NULL)
		return;
	release(*acp);
	*acp = NULL;
}

int
auth_ticket_redeem(const char *socket_path, const char *ticket, uid_t expect_uid,
    int timeout_ms, char **user_r)
{
	struct ipc_msg m;
	struct ucred cred = { 0 };
	socklen_t clen = sizeof(cred);
	const char *st, *user;
	int fd, rc = -1;

	*user_r = NULL;
	fd = net_connect_unix(socket_path, timeout_ms);
	if (fd < 0)
		return -1;
	if (expect_uid != (uid_t)-1
	    && (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0
	    || (cred.uid != expect_uid && cred.uid != 0))) {
		log_warnx("%s: not served by the auth owner (uid %ld)", socket_path,
		    (long)cred.uid);
		close(fd);
		return -1;
	}
	ipc_init(&m);
	ipc_put(&m, "request", "redeem");
	ipc_put(&m, "ticket", ticket);
	if (ipc_send(fd, &m, timeout_ms) == 0
	    && ipc_recv(fd, &m, AUTH_REPLY_MAX, timeout_ms) == 0
	    && (st = ipc_get(&m, "status")) != NULL) {
		user = ipc_get(&m, "user");
		if (strcmp(st, "ok") == 0 && user != NULL && *user != '\0') {
			*user_r = xstrdup(user);
			rc = 1;
		} else {
			rc = strcmp(st, "fail") == 0 ? 0 : -1;
		}
	}
	ipc_free(&m);
	close(fd);
	return rc;
}
