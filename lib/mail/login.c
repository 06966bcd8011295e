/*
 * login - the protocol-independent half of pop3-login and imap-login
 * (lib/mail/login.h): configuration, the plaintext policy, the auth
 * request, and the hand-off of a logged-in session to the post-login
 * broker (private/pop3d, private/imapd), staying on as a plaintext proxy
 * for TLS sessions.
 *
 * The hand-off request is one ipc frame with a descriptor (ipc_send_fd):
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/net.h"
#include "util/tls.h"
#include "mail/config.h"
#include "mail/login.h"
#include "mail/server.h"
#include "proto/sasl.h"

struct login_conf login_conf;

void
login_conf_tls(const char *prefix)
{
	char *n_cert = xasprintf("%s_tls_cert_file", prefix);
	char *n_key = xasprintf("%s_tls_key_file", prefix);
	char *n_wrap = xasprintf("%s_tls_wrappermode", prefix);
	const char *cert = config_get(n_cert);
	const char *key = config_get(n_key);
	char *err = NULL;

	login_conf.prefix = prefix;
	login_conf.wrappermode = config_bool(n_wrap) == 1;
	if (cert == NULL || *cert == '\0' || key == NULL || *key == '\0') {
		if (login_conf.wrappermode)
			log_fatalx("%s=yes needs %s and %s", n_wrap, n_cert, n_key);
	} else if ((login_conf.tls_ctx = tls_server_ctx_new(cert, key, &err)) == NULL) {
		if (login_conf.wrappermode)
			log_fatalx("cannot load certificate or key: %s", err);
		log_warnx("cannot load certificate or key: %s: STARTTLS disabled", err);
		free(err);
	}
	/* Still root (pre_init): the key file is master's, mode 0600. */
	server_tls_ticket_keys(login_conf.tls_ctx);
	free(n_cert);
	free(n_key);
	free(n_wrap);
}

static const char *
param(const char *suffix)
{
	static char name[64];

	(void)snprintf(name, sizeof(name), "%s_%s", login_conf.prefix, suffix);
	return name;
}

void
login_conf_load(const char *broker)
{
	const char *pa = config_get(param("plaintext_auth"));
	const char *lt = config_get(param("login_timeout"));

	if (pa == NULL || strcasecmp(pa, "loopback") == 0)
		login_conf.plaintext = PLAIN_LOOPBACK;
	else if (strcasecmp(pa, "yes") == 0)
		login_conf.plaintext = PLAIN_YES;
	else if (strcasecmp(pa, "no") == 0)
		login_conf.plaintext = PLAIN_NO;
	else
		log_fatalx("%s: \"%s\" is not yes, no or loopback", param("plaintext_auth"), pa);
	login_conf.hard_error_limit = (int)config_int(param("hard_error_limit"));
	if (login_conf.hard_error_limit < 1)
		login_conf.hard_error_limit = 1;
	login_conf.timeout_ms = (uint64_t)config_time(lt != NULL
	    ? param("login_timeout") : param("timeout")) * 1000;
	if (login_conf.timeout_ms == 0)
		login_conf.timeout_ms = 600 * 1000;
	login_conf.auth_path = server_login_socket("auth");
	login_conf.broker_path = server_login_socket(broker);
}

void
login_base_init(struct login_base *b, struct loop *l, int fd)
{
	b->loop = l;
	b->fd = fd;
	b->method = "PLAIN";
	/* Request/response: a reply must not wait for the ACK of the last
	 * one (Nagle against delayed ACK). The option travels with the
	 * socket to the post-login process. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	if (server_peer_addr(fd, b->rip, sizeof(b->rip), NULL) < 0)
		strcpy(b->rip, "unknown");
	if (net_local_addr(fd, b->lip, sizeof(b->lip), NULL) < 0)
		strcpy(b->lip, "unknown");
}

int
login_conn_open(struct login_base *b, size_t in_max, conn_cb cb, void *ctx)
{
	b->conn = conn_new(b->loop, b->fd, in_max, cb, ctx);
	conn_set_timeout(b->conn, login_conf.timeout_ms);
	if (!login_conf.wrappermode)
		return 1;
	(void)conn_starttls(b->conn, login_conf.tls_ctx);
	return 0;
}

void
login_base_free(struct login_base *b)
{
	if (b->authc != NULL)
		auth_client_cancel(&b->authc);
	conn_free(&b->conn);
	xfree(&b->tag);
	xfree(&b->user);
	if (b->fd >= 0)
		server_disconnect(b->loop, b->fd);
	b->fd = -1;
}

int
login_is_loopback(const char *a)
{
	return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0
	    || strncmp(a, "::ffff:127.", 11) == 0;
}

int
login_plaintext_ok(const struct login_base *b)
{
	if (conn_tls(b->conn) != NULL)
		return 1;
	switch (login_conf.plaintext) {
	case PLAIN_YES:
		return 1;
	case PLAIN_LOOPBACK:
		return login_is_loopback(b->rip);
	default:
		return 0;
	}
}

const char *
login_tls_tag(const struct login_base *b)
{
	return b->conn != NULL && conn_tls(b->conn) != NULL ? ", TLS" : "";
}

void
login_log_failed(const struct login_base *b, const char *user, const char *reason)
{
	log_info("Login failed: user=<%s>, method=%s, rip=%s, lip=%s%s: %s",
	    user != NULL ? user : "", b->method, b->rip, b->lip, login_tls_tag(b),
	    reason != NULL ? reason : "authentication failed");
}

void
login_disconnect_log(const struct login_base *b, const char *why)
{
	log_info("Disconnected: %s (no login, %d errors): user=<%s>, rip=%s, "
	    "lip=%s%s", why, b->errors, b->user ? b->user : "", b->rip, b->lip,
	    login_tls_tag(b));
}

void
login_count_error(struct login_base *b, const char *bye)
{
	if (++b->errors >= login_conf.hard_error_limit && !b->quit) {
		conn_printf(b->conn, "%s\r\n", bye);
		b->quit = LOGIN_QUIT_ERRORS;
	}
}

int
login_conn_closed(struct login_base *b, unsigned ev, const char *bye)
{
	if (!(ev & (CONN_EV_ERROR | CONN_EV_EOF | CONN_EV_TIMEOUT)))
		return 0;
	if (ev & CONN_EV_TIMEOUT) {
		conn_printf(b->conn, "%s\r\n", bye);
		(void)conn_flush_last(b->conn);
		login_disconnect_log(b, "Inactivity");
	} else
		login_disconnect_log(b, ev & CONN_EV_ERROR ? conn_error(b->conn)
		    : "Disconnected");
	return 1;
}

int
login_done(struct login_base *b)
{
	(void)conn_flush(b->conn);
	if (!b->quit || conn_out_len(b->conn) != 0)
		return 0;
	login_disconnect_log(b, b->quit == LOGIN_QUIT_LOGOUT ? "Logged out"
	    : "Too many invalid commands");
	return 1;
}

void
login_auth_start(struct login_base *b, const char *service, const char *user,
    const char *pass, const char *authzid, auth_done_fn done, void *ctx)
{
	struct auth_request req = {
		.service = service,
		.mechanism = b->method,
		.user = user,
		.authzid = authzid,
		.password = pass,
		.client_addr = b->rip,
		.want_ticket = 1,
	};

	/* Nothing is read or answered until auth has spoken. */
	conn_set_read(b->conn, 0);
	b->authc = auth_client_start(b->loop, login_conf.auth_path, &req,
	    (int)(login_conf.timeout_ms < 60000 ? login_conf.timeout_ms : 60000),
	    done, ctx);
}

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
login_proxy_count(void)
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
start_proxy(struct login_base *s, int inner_fd)
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
login_handoff(struct login_base *s, const char *user, const char *ticket)
{
	int tls = conn_tls(s->conn) != NULL;
	int sv[2] = { -1, -1 }, pass_fd, fd = -1, ok = 0, rc = LOGIN_HO_INTERNAL;
	struct ipc_msg m;
	const char *st;
	size_t n;
	const char *rest = conn_in(s->conn, &n);

	if (!tls && conn_flush(s->conn) != 1)
		return rc;
	ipc_init(&m);
	ipc_put(&m, "ticket", ticket);
	ipc_put(&m, "rip", s->rip);
	ipc_put(&m, "lip", s->lip);
	ipc_put(&m, "tls", tls ? "1" : "0");
	ipc_put(&m, "method", s->method);
	if (s->tag != NULL)
		ipc_put(&m, "tag", s->tag);
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
			return rc;
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
		rc = LOGIN_HO_UNAVAILABLE;
	}
	if (fd >= 0)
		close(fd);
	ipc_free(&m);
	if (!ok) {
		if (tls) {
			close(sv[0]);
			close(sv[1]);
		}
		return rc;
	}
	log_info("Login: user=<%s>, method=%s, rip=%s, lip=%s%s", user, s->method,
	    s->rip, s->lip, tls ? ", TLS" : "");
	if (tls) {
		close(sv[1]);
		net_set_nonblock(sv[0], 1);
		start_proxy(s, sv[0]);
	}
	/* Plaintext: the post-login process has the socket; ours goes. */
	login_base_free(s);
	return 0;
}
