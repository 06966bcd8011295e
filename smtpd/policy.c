/*
 * policy - smtpd's connections to policy services (check_policy_service),
 * kept open and reused across requests and sessions of this process, as
 * Postfix's smtpd does, all on the process's event loop.
 *
 * A request (policy_ask) takes an idle connection to its endpoint or
 * opens a new one, sends the request, and reads the reply
 * (policy_reply_parse, bounded). Then the connection goes back to the
 * endpoint's idle list unless smtpd_policy_service_request_limit or
 * _max_ttl says it is done (policy_conn_keep); an idle connection is
 * closed after smtpd_policy_service_max_idle, or when the server closes
 * it or sends anything unasked.
 *
 * Invariants:
 * - One request per connection at a time: a busy connection is never
 *   handed out; a request that finds none idle opens another.
 * - The answer always comes from the loop, never from inside policy_ask,
 *   so the caller holds its handle before the callback can run; a
 *   cancelled request (the session ended) closes its connection, whose
 *   reply is unknown, and nothing reaches the caller afterwards.
 * - A failed attempt is retried (policy_retry_decide): at once on a new
 *   connection when a reused one was found closed, otherwise after
 *   smtpd_policy_service_retry_delay, up to _try_limit attempts; then
 *   the caller gets the failure (and applies default_action). Each
 *   attempt is bounded by smtpd_policy_service_timeout.
 * - inet:host:port with a host name is resolved through c-ares on the
 *   loop (hosts file, then DNS: DNS_Q_HOST), once per new connection,
 *   which keeps that address for its life; each address is tried in turn.
 * Sockets: the endpoints of check_policy_service (unix: relative to
 *   queue_directory, e.g. unix:private/policyd-spf served by spawn(8)).
 * Trusts: nothing the service sends: replies are bounded by
 *   POLICY_REPLY_MAX and cleaned by the parser.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/dns.h"
#include "mail/restrict.h"
#include "proto/policy.h"
#include "smtpd.h"

#define POLICY_REPLY_MAX 4096

struct pconn;

struct pendpoint {
	struct pendpoint *next;
	char *endpoint;
	struct pconn *idle;        /* idle connections, most recent first */
};

struct pconn {
	struct pconn *next;        /* in the endpoint's idle list */
	struct pendpoint *ep;
	struct loop *loop;
	int fd;
	uint64_t born_ms;
	long long nreq;            /* replies received on it */
	uint64_t idle_timer;
	long long max_idle_ms, max_ttl_ms, request_limit;
	struct policy_req *req;    /* the request in flight, or NULL (idle) */
};

struct policy_req {
	struct loop *loop;
	struct restrict_policy pol;
	struct pendpoint *ep;
	char *text;
	char *id;                  /* queue ID (or NOQUEUE) for the log */
	policy_done_fn done;
	void *arg;
	struct pconn *conn;
	int reused;                /* conn came from the idle list */
	int fresh;                 /* this attempt must open a new connection */
	int connected;
	long long tries;           /* attempts that counted */
	uint64_t timer;            /* attempt timeout, or the retry delay */
	uint64_t start_timer;      /* the next attempt, from the loop */
	struct dns_q *q;           /* resolving the host */
	char **addrs;              /* resolved addresses, tried in order */
	size_t addr_i;
	char *port;
	size_t sent;
	struct buf in;
};

static struct pendpoint *endpoints;

static void attempt_start(struct loop *l, void *arg);
static void attempt_fail(struct policy_req *rq, const char *why);

static struct pendpoint *
endpoint_get(const char *name)
{
	struct pendpoint *ep;

	for (ep = endpoints; ep != NULL; ep = ep->next)
		if (strcmp(ep->endpoint, name) == 0)
			return ep;
	ep = xcalloc(1, sizeof(*ep));
	ep->endpoint = xstrdup(name);
	ep->next = endpoints;
	endpoints = ep;
	return ep;
}

static void
conn_unlink_idle(struct pconn *c)
{
	for (struct pconn **pp = &c->ep->idle; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->next = NULL;
}

/* Close c, idle or not (unlinking a busy one finds nothing). */
static void
conn_close(struct pconn *c)
{
	conn_unlink_idle(c);
	if (c->idle_timer != 0)
		loop_timer_cancel(c->loop, c->idle_timer);
	if (c->fd >= 0) {
		loop_fd_del(c->loop, c->fd);
		close(c->fd);
	}
	free(c);
}

static void
idle_timer_cb(struct loop *l, void *arg)
{
	struct pconn *c = arg;

	(void)l;
	c->idle_timer = 0;
	log_debug("policy %s: closing idle connection after %lld request%s",
	    c->ep->endpoint, c->nreq, c->nreq == 1 ? "" : "s");
	conn_close(c);
}

/* An idle connection that turns readable was closed by the server (or
 * says something nobody asked for): either way it is done. */
static void
idle_io(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct pconn *c = arg;

	(void)l;
	(void)fd;
	(void)ev;
	log_debug("policy %s: the server closed an idle connection",
	    c->ep->endpoint);
	conn_close(c);
}

/* The request on c got its reply: keep c for the next one, or close it. */
static void
conn_release(struct pconn *c)
{
	uint64_t age = loop_now_ms() - c->born_ms;

	c->req = NULL;
	if (!policy_conn_keep(c->nreq, c->request_limit, age, c->max_ttl_ms)) {
		log_debug("policy %s: closing a connection after %lld request%s",
		    c->ep->endpoint, c->nreq, c->nreq == 1 ? "" : "s");
		conn_close(c);
		return;
	}
	c->next = c->ep->idle;
	c->ep->idle = c;
	(void)loop_fd_set(c->loop, c->fd, LOOP_READ, idle_io, c);
	c->idle_timer = loop_timer_add(c->loop,
	    policy_idle_ms(age, c->max_idle_ms, c->max_ttl_ms), idle_timer_cb, c);
}

static void
req_free(struct policy_req *rq)
{
	if (rq->timer != 0)
		loop_timer_cancel(rq->loop, rq->timer);
	if (rq->start_timer != 0)
		loop_timer_cancel(rq->loop, rq->start_timer);
	dns_q_cancel(rq->q);
	strv_free(&rq->addrs);
	free(rq->port);
	free(rq->text);
	free(rq->id);
	buf_free(&rq->in);
	free(rq);
}

/* Hand the outcome to the caller: the request is gone before done runs,
 * so done may ask again at once (and reuse the connection just freed). */
static void
req_finish(struct policy_req *rq, const char *action, const char *why)
{
	policy_done_fn done = rq->done;
	void *arg = rq->arg;

	req_free(rq);
	done(arg, action, why);
}

static void
req_io(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct pconn *c = arg;
	struct policy_req *rq = c->req;
	char tmp[1024];
	ssize_t n;

	if (!rq->connected) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err != 0) {
			attempt_fail(rq, strerror(err));
			return;
		}
		rq->connected = 1;
	}
	if (rq->sent < strlen(rq->text)) {
		if (!(ev & (LOOP_WRITE | LOOP_ERROR)))
			return;
		n = send(fd, rq->text + rq->sent, strlen(rq->text) - rq->sent,
		    MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			attempt_fail(rq, strerror(errno));
			return;
		}
		if (n > 0)
			rq->sent += (size_t)n;
		if (rq->sent == strlen(rq->text))
			(void)loop_fd_set(l, fd, LOOP_READ, req_io, c);
		return;
	}
	if (!(ev & (LOOP_READ | LOOP_ERROR)))
		return;
	n = read(fd, tmp, sizeof(tmp));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		attempt_fail(rq, n == 0 ? "connection closed" : strerror(errno));
		return;
	}
	if (rq->in.len + (size_t)n > POLICY_REPLY_MAX)
		n = (ssize_t)(POLICY_REPLY_MAX - rq->in.len);   /* the parser says "too long" */
	(void)buf_append(&rq->in, tmp, (size_t)n);

	char *action = NULL;
	const char *err = NULL;
	int rc = policy_reply_parse(rq->in.data, rq->in.len, POLICY_REPLY_MAX,
	    &action, &err);
	if (rc == 0)
		return;
	if (rc < 0) {
		/* A protocol error: this connection cannot be trusted again. */
		rq->tries = rq->pol.try_limit;
		attempt_fail(rq, err);
		return;
	}
	c->nreq++;
	rq->conn = NULL;
	conn_release(c);
	req_finish(rq, action, NULL);
	free(action);
}

static void
attempt_timeout(struct loop *l, void *arg)
{
	struct policy_req *rq = arg;

	(void)l;
	rq->timer = 0;
	attempt_fail(rq, "timeout");
}

/* Connect c to the next address (or the UNIX path) without blocking. */
static int
conn_connect(struct policy_req *rq, struct pconn *c, const char **why_r)
{
	const char *ep = rq->pol.endpoint;
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (strncmp(ep, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
		const char *path = ep + 5;
		char *full = path[0] == '/' ? xstrdup(path)
		    : xasprintf("%s/%s", smtpd_conf.queue_directory, path);
		if (strlen(full) >= sizeof(sun->sun_path)) {
			free(full);
			*why_r = "socket path too long";
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, full);
		free(full);
		sl = sizeof(*sun);
	} else {
		const char *a = rq->addrs[rq->addr_i];
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		long port = strtol(rq->port, NULL, 10);
		if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
			sl = sizeof(*s4);
		} else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
			sl = sizeof(*s6);
		} else {
			*why_r = "bad address";
			return -1;
		}
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		*why_r = strerror(errno);
		return -1;
	}
	if (connect(c->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		*why_r = strerror(errno);
		return -1;
	}
	return 0;
}

/* Open a new connection for rq (its addresses are known). */
static void
conn_open(struct policy_req *rq)
{
	struct pconn *c = xcalloc(1, sizeof(*c));
	const char *why = "cannot connect";

	c->ep = rq->ep;
	c->loop = rq->loop;
	c->fd = -1;
	c->req = rq;
	c->born_ms = loop_now_ms();
	c->max_idle_ms = rq->pol.max_idle_ms;
	c->max_ttl_ms = rq->pol.max_ttl_ms;
	c->request_limit = rq->pol.request_limit;
	rq->conn = c;
	rq->reused = 0;
	rq->connected = 0;
	for (;;) {
		if (conn_connect(rq, c, &why) == 0)
			break;
		if (c->fd >= 0) {
			close(c->fd);
			c->fd = -1;
		}
		if (rq->addrs == NULL || rq->addrs[++rq->addr_i] == NULL) {
			attempt_fail(rq, why);
			return;
		}
	}
	(void)loop_fd_set(rq->loop, c->fd, LOOP_WRITE, req_io, c);
}

static void
resolved(void *arg, enum dns_status st, char **values)
{
	struct policy_req *rq = arg;

	rq->q = NULL;
	if (st != DNS_OK || values == NULL || values[0] == NULL) {
		attempt_fail(rq, st == DNS_OK ? "host has no address"
		    : dns_status_str(st));
		return;
	}
	strv_free(&rq->addrs);
	for (size_t i = 0; values[i] != NULL; i++)
		strv_push(&rq->addrs, values[i]);
	rq->addr_i = 0;
	conn_open(rq);
}

/* Start one attempt: an idle connection, or a new one (resolving its
 * host first when inet: names one). */
static void
attempt_start(struct loop *l, void *arg)
{
	struct policy_req *rq = arg;
	struct pconn *c;

	rq->start_timer = 0;
	rq->sent = 0;
	buf_reset(&rq->in);
	rq->timer = loop_timer_add(l, (uint64_t)rq->pol.timeout_ms,
	    attempt_timeout, rq);
	if ((c = rq->ep->idle) != NULL && !rq->fresh) {
		conn_unlink_idle(c);
		if (c->idle_timer != 0)
			loop_timer_cancel(l, c->idle_timer);
		c->idle_timer = 0;
		c->req = rq;
		rq->conn = c;
		rq->reused = 1;
		rq->connected = 1;
		(void)loop_fd_set(l, c->fd, LOOP_READ | LOOP_WRITE, req_io, c);
		return;
	}
	rq->reused = 0;
	rq->fresh = 0;
	if (strncmp(rq->pol.endpoint, "inet:", 5) != 0) {
		conn_open(rq);
		return;
	}
	/* inet:host:port, inet:[v6]:port */
	char *hp = xstrdup(rq->pol.endpoint + 5);
	char *colon = strrchr(hp, ':');
	char *host = hp;
	unsigned char tmp[16];
	*colon = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		host++;
	}
	free(rq->port);
	rq->port = xstrdup(colon + 1);
	strv_free(&rq->addrs);
	rq->addr_i = 0;
	if (inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1) {
		strv_push(&rq->addrs, host);
		free(hp);
		conn_open(rq);
		return;
	}
	struct dns_async *d = smtpd_dns(l);
	if (d == NULL) {
		free(hp);
		attempt_fail(rq, "no resolver");
		return;
	}
	rq->q = dns_async_query(d, host, DNS_Q_HOST, resolved, rq);
	free(hp);
}

static void
attempt_fail(struct policy_req *rq, const char *why)
{
	int got_reply = rq->in.len > 0;
	int reused = rq->reused;

	if (rq->timer != 0)
		loop_timer_cancel(rq->loop, rq->timer);
	rq->timer = 0;
	dns_q_cancel(rq->q);
	rq->q = NULL;
	if (rq->conn != NULL) {
		conn_close(rq->conn);
		rq->conn = NULL;
	}
	/* A connection refused on one address: the next one, same attempt. */
	if (!reused && !rq->connected && rq->addrs != NULL
	    && rq->addrs[rq->addr_i] != NULL && rq->addrs[rq->addr_i + 1] != NULL
	    && strcmp(why, "timeout") != 0) {
		rq->addr_i++;
		rq->timer = loop_timer_add(rq->loop, (uint64_t)rq->pol.timeout_ms,
		    attempt_timeout, rq);
		conn_open(rq);
		return;
	}
	if (!reused || got_reply)
		rq->tries++;
	switch (policy_retry_decide(reused, got_reply, rq->tries, rq->pol.try_limit)) {
	case POLICY_RETRY_NOW:
		log_debug("%s: check_policy_service %s: reused connection failed "
		    "(%s): retrying on a new one", rq->id, rq->pol.endpoint, why);
		rq->fresh = 1;
		rq->start_timer = loop_timer_add(rq->loop, 0, attempt_start, rq);
		return;
	case POLICY_RETRY_LATER:
		log_warnx("%s: check_policy_service %s: %s: trying again in %lldms",
		    rq->id, rq->pol.endpoint, why, rq->pol.retry_delay_ms);
		rq->start_timer = loop_timer_add(rq->loop,
		    (uint64_t)rq->pol.retry_delay_ms, attempt_start, rq);
		return;
	case POLICY_GIVE_UP:
		break;
	}
	req_finish(rq, NULL, why);
}

struct policy_req *
policy_ask(struct loop *l, const struct restrict_policy *pol,
    const char *request, const char *id, policy_done_fn done, void *arg)
{
	struct policy_req *rq = xcalloc(1, sizeof(*rq));

	rq->id = xstrdup(id != NULL ? id : "NOQUEUE");
	rq->loop = l;
	rq->pol = *pol;
	if (rq->pol.try_limit < 1)
		rq->pol.try_limit = 1;
	if (rq->pol.timeout_ms <= 0)
		rq->pol.timeout_ms = 100 * 1000;
	rq->ep = endpoint_get(pol->endpoint);
	rq->text = xstrdup(request);
	rq->done = done;
	rq->arg = arg;
	buf_init(&rq->in, POLICY_REPLY_MAX + 1024);
	/* from the loop: the caller stores the handle first */
	rq->start_timer = loop_timer_add(l, 0, attempt_start, rq);
	return rq;
}

void
policy_cancel(struct policy_req **rqp)
{
	struct policy_req *rq = *rqp;

	if (rq == NULL)
		return;
	if (rq->conn != NULL) {
		/* its reply is unknown now: nobody may read it as theirs */
		conn_close(rq->conn);
	}
	req_free(rq);
	*rqp = NULL;
}
