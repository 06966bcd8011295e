/*
 * handoff - give a logged-in POP3 session to the mailbox broker
 * (private/pop3d), and for TLS sessions stay on as a plaintext proxy.
 *
 * The request is one ipc frame with a descriptor (ipc_send_fd):
 *   ticket=<from auth> rip= lip= tls=0|1 method= input=<base64 of bytes
 *   the client pipelined after its login>
 * Plaintext: the descriptor is the client socket itself; this process
 * closes its copy once the broker says "status=ok". TLS: OpenSSL's state
 * lives here, so the descriptor is one end of a socketpair and this
 * process copies bytes between it and the TLS connection (Dovecot's
 * login-proxy way), with back-pressure both ways.
 *
 * Invariants: the broker learns the user from auth by the ticket, never
 * from this process. Nothing of the login's output is left unsent when a
 * plaintext socket changes hands. When the client goes away, the proxy
 * closes the post-login side at once (a dropped connection deletes
 * nothing there); when the post-login side ends, what it said is
 * flushed to the client first.
 * BUGS: the broker is asked synchronously (a few milliseconds; at most
 * HANDOFF_TIMEOUT_MS when it is stuck), which holds up this process's
 * other sessions meanwhile.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/net.h"
#include "util/tls.h"
#include "mail/server.h"
#include "proto/sasl.h"
#include "login.h"

#define HANDOFF_TIMEOUT_MS 10000
#define PROXY_HIGH (256 * 1024)

struct proxy {
	struct loop *loop;
	struct conn *outer;       /* the client, TLS */
	struct conn *inner;       /* the post-login process */
	int outer_fd, inner_fd;
	int closing;              /* inner side ended: flush outer, then end */
};

static int nproxies;

int
proxy_count(void)
{
	return nproxies;
}

static void
proxy_free(struct proxy *p)
{
	conn_free(&p->outer);
	conn_free(&p->inner);
	close(p->inner_fd);
	server_disconnect(p->loop, p->outer_fd);
	nproxies--;
	free(p);
}

/* Move everything readable on from to to; pause from when to is full. */
static void
pump(struct conn *from, struct conn *to)
{
	size_t n;
	const char *p = conn_in(from, &n);

	if (n > 0) {
		conn_write(to, p, n);
		conn_in_consume(from, n);
	}
	(void)conn_flush(to);
	conn_set_read(from, conn_out_len(to) < PROXY_HIGH);
}

static void
outer_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct proxy *p = ctx;

	if (ev & (CONN_EV_EOF | CONN_EV_ERROR | CONN_EV_TIMEOUT)) {
		proxy_free(p);
		return;
	}
	if (ev & CONN_EV_INPUT && !p->closing)
		pump(p->outer, p->inner);
	if (ev & CONN_EV_DRAINED) {
		if (p->closing) {
			proxy_free(p);
			return;
		}
		conn_set_read(p->inner, 1);
	}
}

static void
inner_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct proxy *p = ctx;

	if (ev & CONN_EV_INPUT || ev & CONN_EV_EOF)
		pump(p->inner, p->outer);
	if (ev & (CONN_EV_EOF | CONN_EV_ERROR | CONN_EV_TIMEOUT)) {
		p->closing = 1;
		conn_set_read(p->outer, 0);
		if (conn_out_len(p->outer) == 0 || (ev & CONN_EV_ERROR))
			proxy_free(p);
		return;
	}
	if (ev & CONN_EV_DRAINED)
		conn_set_read(p->outer, 1);
}

static void
start_proxy(struct lsess *s, int inner_fd)
{
	struct proxy *p = xcalloc(1, sizeof(*p));
	size_t n;

	p->loop = s->loop;
	p->outer = s->conn;
	p->outer_fd = s->fd;
	p->inner_fd = inner_fd;
	s->conn = NULL;
	s->fd = -1;
	conn_set_cb(p->outer, outer_cb, p);
	/* The post-login side has its own idle timeout. */
	conn_set_timeout(p->outer, 0);
	p->inner = conn_new(p->loop, inner_fd, 64 * 1024, inner_cb, p);
	nproxies++;
	/* Commands pipelined behind the login go first. */
	(void)conn_in(p->outer, &n);
	if (n > 0)
		pump(p->outer, p->inner);
	else
		conn_set_read(p->outer, 1);
}

int
handoff(struct lsess *s, const char *user, const char *ticket, const char **reply_r)
{
	int tls = conn_tls(s->conn) != NULL;
	int sv[2] = { -1, -1 }, pass_fd, fd = -1, ok = 0;
	struct ipc_msg m;
	const char *st;
	size_t n;
	const char *rest = conn_in(s->conn, &n);

	*reply_r = "-ERR [SYS/TEMP] Internal error occurred. Refer to server log "
	    "for more information.";
	if (!tls && conn_flush(s->conn) != 1)
		return -1;
	ipc_init(&m);
	ipc_put(&m, "ticket", ticket);
	ipc_put(&m, "rip", s->rip);
	ipc_put(&m, "lip", s->lip);
	ipc_put(&m, "tls", tls ? "1" : "0");
	ipc_put(&m, "method", s->method);
	if (!tls && n > 0) {
		struct buf b64 = BUF_INIT(0);
		(void)sasl_b64_encode(rest, n, &b64);
		ipc_put(&m, "input", buf_cstr(&b64));
		buf_free(&b64);
	}
	if (tls) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			log_warn("socketpair");
			ipc_free(&m);
			return -1;
		}
		pass_fd = sv[1];
	} else {
		pass_fd = s->fd;
	}
	fd = net_connect_unix(login_conf.broker_path, HANDOFF_TIMEOUT_MS);
	if (fd < 0) {
		log_warn("connect %s", login_conf.broker_path);
	} else if (ipc_send_fd(fd, &m, pass_fd, HANDOFF_TIMEOUT_MS) < 0
	    || ipc_recv(fd, &m, 4096, HANDOFF_TIMEOUT_MS) < 0) {
		log_warn("user=<%s>, rip=%s: mailbox broker", user, s->rip);
	} else if ((st = ipc_get(&m, "status")) != NULL && strcmp(st, "ok") == 0) {
		ok = 1;
	} else {
		const char *why = ipc_get(&m, "reason");
		log_warnx("user=<%s>, rip=%s: mailbox unavailable: %s", user, s->rip,
		    why ? why : "unknown reason");
		*reply_r = "-ERR [SYS/TEMP] Mailbox is unavailable.";
	}
	if (fd >= 0)
		close(fd);
	ipc_free(&m);
	if (!ok) {
		if (tls) {
			close(sv[0]);
			close(sv[1]);
		}
		return -1;
	}
	log_info("Login: user=<%s>, method=%s, rip=%s, lip=%s%s", user, s->method,
	    s->rip, s->lip, tls ? ", TLS" : "");
	if (tls) {
		close(sv[1]);
		net_set_nonblock(sv[0], 1);
		start_proxy(s, sv[0]);
	}
	/* Plaintext: the post-login process has the socket; ours goes. */
	lsess_free(s);
	return 0;
}
