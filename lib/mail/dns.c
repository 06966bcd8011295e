/*
 * dns - blocking-with-timeout MX/A/AAAA lookups over c-ares (see dns.h).
 *
 * One c-ares channel per struct dns. A lookup starts one ares_query and
 * drives the channel's sockets with poll() until the callback ran or the
 * overall deadline passed (then the query is cancelled: TEMPFAIL). No
 * search list is applied: names are absolute, as for mail routing.
 *
 * Trusts: nothing in an answer; c-ares parses the wire format, and we
 * bound how many records we keep and how long names are.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"
#include "util/loop.h"
#include "mail/dns.h"

#define DNS_CLASS_IN 1
#define DNS_TYPE_A 1
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28
#define DNS_TRY_MS 2000

struct dns {
	ares_channel ch;
	int timeout_ms;
};

struct query {
	int done;
	int status;
	unsigned char *abuf;
	int alen;
};

static int ares_ready;

const char *
dns_status_str(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NODATA:
		return "no data";
	case DNS_NXDOMAIN:
		return "host not found";
	case DNS_TEMPFAIL:
		return "host not found, try again";
	case DNS_BADANSWER:
		return "malformed answer";
	}
	return "?";
}

static struct dns *
dns_open_ex(const char *servers, int timeout_ms, ares_sock_state_cb sock_cb,
    void *sock_data, char **err_r)
{
	struct ares_options o;
	struct dns *d;
	char **list = NULL;
	struct buf csv = BUF_INIT(4096);
	size_t i;
	int rc;

	*err_r = NULL;
	if (!ares_ready) {
		rc = ares_library_init(ARES_LIB_INIT_ALL);
		if (rc != ARES_SUCCESS) {
			*err_r = xasprintf("c-ares init: %s", ares_strerror(rc));
			return NULL;
		}
		ares_ready = 1;
	}
	d = xcalloc(1, sizeof(*d));
	d->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.timeout = d->timeout_ms < DNS_TRY_MS ? d->timeout_ms : DNS_TRY_MS;
	o.tries = 3;
	o.sock_state_cb = sock_cb;
	o.sock_state_cb_data = sock_data;
	rc = ares_init_options(&d->ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS
	    | ARES_OPT_TRIES | (sock_cb != NULL ? ARES_OPT_SOCK_STATE_CB : 0));
	if (rc != ARES_SUCCESS) {
		*err_r = xasprintf("c-ares channel: %s", ares_strerror(rc));
		free(d);
		return NULL;
	}
	if (servers != NULL && *servers != '\0') {
		list = strv_split_list(servers);
		for (i = 0; list[i] != NULL; i++) {
			if (i > 0)
				buf_putc(&csv, ',');
			buf_puts(&csv, list[i]);
		}
		strv_free(&list);
		rc = csv.len > 0 ? ares_set_servers_ports_csv(d->ch, buf_cstr(&csv)) :
		    ARES_SUCCESS;
		if (rc != ARES_SUCCESS) {
			*err_r = xasprintf("bad smtp_dns_servers \"%s\": %s", servers,
			    ares_strerror(rc));
			buf_free(&csv);
			ares_destroy(d->ch);
			free(d);
			return NULL;
		}
	}
	buf_free(&csv);
	return d;
}

struct dns *
dns_open(const char *servers, int timeout_ms, char **err_r)
{
	return dns_open_ex(servers, timeout_ms, NULL, NULL, err_r);
}

void
dns_close(struct dns **dp)
{
	if (*dp == NULL)
		return;
	ares_destroy((*dp)->ch);
	xfree(dp);
}

static void
query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query *q = arg;

	(void)timeouts;
	q->done = 1;
	q->status = status;
	if (status == ARES_SUCCESS && abuf != NULL && alen > 0) {
		q->abuf = xmalloc((size_t)alen);
		memcpy(q->abuf, abuf, (size_t)alen);
		q->alen = alen;
	}
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum dns_status
map_status(int status, const char **why_r)
{
	switch (status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENODATA:
		*why_r = "no data";
		return DNS_NODATA;
	case ARES_ENOTFOUND:
		*why_r = "host not found";
		return DNS_NXDOMAIN;
	case ARES_EBADNAME:
		*why_r = "bad domain name";
		return DNS_NXDOMAIN;
	case ARES_ETIMEOUT:
	case ARES_ECANCELLED:
		*why_r = "lookup timed out";
		return DNS_TEMPFAIL;
	case ARES_ESERVFAIL:
		*why_r = "server failure";
		return DNS_TEMPFAIL;
	case ARES_EREFUSED:
		*why_r = "query refused";
		return DNS_TEMPFAIL;
	default:
		*why_r = "host not found, try again";
		return DNS_TEMPFAIL;
	}
}

/* Run one query to completion or the deadline. */
static enum dns_status
run_query(struct dns *d, const char *name, int type, struct query *q,
    const char **why_r)
{
	long long deadline = now_ms() + d->timeout_ms;
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	struct timeval tv, maxtv, *tvp;
	int i, n, bits, wait, left;

	memset(q, 0, sizeof(*q));
	if (strlen(name) > DNS_NAME_MAX || *name == '\0') {
		*why_r = "bad domain name";
		return DNS_NXDOMAIN;
	}
	ares_query(d->ch, name, DNS_CLASS_IN, type, query_cb, q);
	while (!q->done) {
		left = (int)(deadline - now_ms());
		if (left <= 0) {
			ares_cancel(d->ch);   /* runs the callback: ECANCELLED */
			q->done = 1;
			q->status = ARES_ETIMEOUT;
			break;
		}
		bits = ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
		n = 0;
		for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			/* c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 by up
			 * to 31 places (undefined behaviour); test the bits
			 * with unsigned shifts instead. */
			if ((unsigned)bits & (1u << i))
				ev |= POLLIN;
			if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (ev == 0)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = ev;
			pfd[n].revents = 0;
			n++;
		}
		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(d->ch, &maxtv, &tv);
		wait = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
		if (wait <= 0)
			wait = 1;
		if (n == 0 && wait > left)
			wait = left;
		i = poll(pfd, (nfds_t)n, wait);
		if (i < 0 && errno != EINTR) {
			ares_cancel(d->ch);
			q->done = 1;
			q->status = ARES_ECONNREFUSED;
			break;
		}
		if (i <= 0) {
			ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (i = 0; i < n && !q->done; i++) {
			if (pfd[i].revents == 0)
				continue;
			ares_process_fd(d->ch,
			    (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd :
			    ARES_SOCKET_BAD,
			    (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
		}
	}
	return map_status(q->status, why_r);
}

enum dns_status
dns_parse_mx(const unsigned char *abuf, int alen, struct dns_mx **mx_r, size_t *n_r)
{
	struct ares_mx_reply *head = NULL, *p;
	struct dns_mx *mx;
	size_t n = 0;
	int rc;

	*mx_r = NULL;
	*n_r = 0;
	if (abuf == NULL || alen <= 0)
		return DNS_BADANSWER;
	rc = ares_parse_mx_reply(abuf, alen, &head);
	if (rc == ARES_ENODATA)
		return DNS_NODATA;
	if (rc != ARES_SUCCESS)
		return DNS_BADANSWER;
	for (p = head; p != NULL && n < DNS_MX_MAX; p = p->next)
		n++;
	if (n == 0) {
		ares_free_data(head);
		return DNS_NODATA;
	}
	mx = xcalloc(n, sizeof(*mx));
	n = 0;
	for (p = head; p != NULL && n < DNS_MX_MAX; p = p->next) {
		const char *h = p->host != NULL ? p->host : "";

		if (strlen(h) > DNS_NAME_MAX)
			continue;
		mx[n].host = xstrdup(h);
		mx[n].pref = p->priority;
		n++;
	}
	ares_free_data(head);
	if (n == 0) {
		free(mx);
		return DNS_BADANSWER;
	}
	*mx_r = mx;
	*n_r = n;
	return DNS_OK;
}

enum dns_status
dns_lookup_mx(struct dns *d, const char *name, struct dns_mx **mx_r, size_t *n_r,
    const char **why_r)
{
	struct query q;
	enum dns_status st;

	*mx_r = NULL;
	*n_r = 0;
	*why_r = "";
	st = run_query(d, name, DNS_TYPE_MX, &q, why_r);
	if (st == DNS_OK) {
		st = dns_parse_mx(q.abuf, q.alen, mx_r, n_r);
		if (st == DNS_NODATA)
			*why_r = "no data";
		else if (st == DNS_BADANSWER)
			*why_r = "malformed MX answer";
	}
	free(q.abuf);
	return st;
}

enum dns_status
dns_lookup_addr(struct dns *d, const char *name, int family,
    struct dns_addr **addrs_r, size_t *n_r, const char **why_r)
{
	struct ares_addrttl a4[DNS_ADDR_MAX];
	struct ares_addr6ttl a6[DNS_ADDR_MAX];
	struct query q;
	enum dns_status st;
	int i, na = DNS_ADDR_MAX, rc;

	*why_r = "";
	st = run_query(d, name, family == AF_INET6 ? DNS_TYPE_AAAA : DNS_TYPE_A, &q,
	    why_r);
	if (st != DNS_OK) {
		free(q.abuf);
		return st;
	}
	if (family == AF_INET6)
		rc = ares_parse_aaaa_reply(q.abuf, q.alen, NULL, a6, &na);
	else
		rc = ares_parse_a_reply(q.abuf, q.alen, NULL, a4, &na);
	free(q.abuf);
	if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && na <= 0)) {
		*why_r = "no data";
		return DNS_NODATA;
	}
	if (rc != ARES_SUCCESS) {
		*why_r = "malformed address answer";
		return DNS_BADANSWER;
	}
	*addrs_r = xreallocarray(*addrs_r, *n_r + (size_t)na, sizeof(**addrs_r));
	for (i = 0; i < na; i++) {
		struct dns_addr *o = &(*addrs_r)[*n_r];

		o->family = family;
		if (inet_ntop(family, family == AF_INET6 ? (const void *)&a6[i].ip6addr :
		    (const void *)&a4[i].ipaddr, o->text, sizeof(o->text)) == NULL)
			continue;
		(*n_r)++;
	}
	return DNS_OK;
}

/* ---- pure answer handling ---- */

static unsigned
default_rnd(unsigned n, void *ctx)
{
	(void)ctx;
	return (unsigned)((unsigned long)random() % n);
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;

	return (x->pref > y->pref) - (x->pref < y->pref);
}

static int
is_root(const char *h)
{
	return h[0] == '\0' || (h[0] == '.' && h[1] == '\0');
}

int
dns_mx_sort(struct dns_mx *mx, size_t *n, unsigned (*rnd)(unsigned n, void *ctx),
    void *ctx)
{
	size_t i, j, k, len;

	if (rnd == NULL)
		rnd = default_rnd;
	for (i = 0; i < *n; i++) {
		str_lower(mx[i].host);
		len = strlen(mx[i].host);
		if (len > 1 && mx[i].host[len - 1] == '.')
			mx[i].host[len - 1] = '\0';
	}
	if (*n == 1 && is_root(mx[0].host) && mx[0].pref == 0)
		return 1;
	/* A root target mixed with real ones (or with a non-zero preference)
	 * is a broken null MX: ignore that record. */
	for (i = j = 0; i < *n; i++) {
		if (is_root(mx[i].host)) {
			free(mx[i].host);
			continue;
		}
		mx[j++] = mx[i];
	}
	*n = j;
	if (*n == 0)
		return 0;
	qsort(mx, *n, sizeof(*mx), mx_cmp);
	/* Fisher-Yates within each run of equal preference. */
	for (i = 0; i < *n; i = j) {
		for (j = i + 1; j < *n && mx[j].pref == mx[i].pref; j++)
			;
		for (k = j - 1; k > i; k--) {
			size_t r = i + rnd((unsigned)(k - i + 1), ctx);
			struct dns_mx t = mx[k];

			mx[k] = mx[r];
			mx[r] = t;
		}
	}
	return 0;
}

void
dns_mx_free(struct dns_mx *mx, size_t n)
{
	size_t i;

	for (i = 0; mx != NULL && i < n; i++)
		free(mx[i].host);
	free(mx);
}

/* --- non-blocking lookups on an event loop (dns_async_*) --------------------
 *
 * c-ares tells us which sockets it wants watched (ARES_OPT_SOCK_STATE_CB);
 * they go on the process's loop, and one timer follows ares_timeout().
 * A query's callback runs from the loop, never from inside
 * dns_async_query(). A cancelled query's callback is simply not run. */

struct dns_async {
	ares_channel ch;
	struct loop *loop;
	uint64_t timer;
};

struct dns_q {
	struct dns_async *d;
	int type;
	dns_async_cb cb;
	void *ctx;
	int cancelled;
	int submitting;          /* inside ares_query(): do not call back yet */
	int deferred;            /* finished while submitting: result below */
	enum dns_status st;
	char **values;
};

static void async_arm_timer(struct dns_async *d);

static void
async_fd_cb(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct dns_async *d = arg;

	(void)l;
	ares_process_fd(d->ch,
	    (ev & (LOOP_READ | LOOP_ERROR)) ? fd : ARES_SOCKET_BAD,
	    (ev & LOOP_WRITE) ? fd : ARES_SOCKET_BAD);
	async_arm_timer(d);
}

static void
async_sock_state(void *arg, ares_socket_t fd, int readable, int writable)
{
	struct dns_async *d = arg;
	unsigned ev = (readable ? LOOP_READ : 0) | (writable ? LOOP_WRITE : 0);

	if (ev == 0)
		loop_fd_del(d->loop, fd);
	else
		(void)loop_fd_set(d->loop, fd, ev, async_fd_cb, d);
}

static void
async_timer_cb(struct loop *l, void *arg)
{
	struct dns_async *d = arg;

	(void)l;
	d->timer = 0;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	async_arm_timer(d);
}

static void
async_arm_timer(struct dns_async *d)
{
	struct timeval tv, *tvp;

	if (d->timer != 0)
		loop_timer_cancel(d->loop, d->timer);
	d->timer = 0;
	tvp = ares_timeout(d->ch, NULL, &tv);
	if (tvp == NULL)
		return;   /* nothing pending */
	d->timer = loop_timer_add(d->loop,
	    (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000 + 1,
	    async_timer_cb, d);
}

struct dns_async *
dns_async_open(struct loop *l, const char *servers, int timeout_ms, char **err_r)
{
	struct dns_async *d = xcalloc(1, sizeof(*d));
	struct dns *base;

	d->loop = l;
	base = dns_open_ex(servers, timeout_ms, async_sock_state, d, err_r);
	if (base == NULL) {
		free(d);
		return NULL;
	}
	d->ch = base->ch;   /* the channel is ours; the wrapper goes */
	free(base);
	return d;
}

static char **
async_values(int type, const unsigned char *abuf, int alen, int *status)
{
	char **v = NULL;
	char buf[64];

	strv_push(&v, "");
	free(v[0]);
	v[0] = NULL;
	if (type == DNS_Q_A) {
		struct ares_addrttl a4[DNS_ADDR_MAX];
		int na = DNS_ADDR_MAX;
		if ((*status = ares_parse_a_reply(abuf, alen, NULL, a4, &na)) == ARES_SUCCESS)
			for (int i = 0; i < na; i++)
				if (inet_ntop(AF_INET, &a4[i].ipaddr, buf, sizeof(buf)) != NULL)
					strv_push(&v, buf);
	} else if (type == DNS_Q_AAAA) {
		struct ares_addr6ttl a6[DNS_ADDR_MAX];
		int na = DNS_ADDR_MAX;
		if ((*status = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &na)) == ARES_SUCCESS)
			for (int i = 0; i < na; i++)
				if (inet_ntop(AF_INET6, &a6[i].ip6addr, buf, sizeof(buf)) != NULL)
					strv_push(&v, buf);
	} else if (type == DNS_Q_TXT) {
		/* One value per record: a record's strings joined (RFC 1035
		 * 3.3.14 splits long texts into 255-byte strings). */
		struct ares_txt_ext *head = NULL;
		if ((*status = ares_parse_txt_reply_ext(abuf, alen, &head)) == ARES_SUCCESS) {
			struct buf t = BUF_INIT(4096);
			size_t k = 0;
			for (struct ares_txt_ext *p = head; p != NULL; p = p->next) {
				if (p->record_start && t.len > 0) {
					strv_push(&v, buf_cstr(&t));
					buf_reset(&t);
					if (++k == 8)
						break;
				}
				(void)buf_append(&t, p->txt, p->length);
			}
			if (t.len > 0 && k < 8)
				strv_push(&v, buf_cstr(&t));
			buf_free(&t);
			ares_free_data(head);
		}
	} else if (type == DNS_Q_MX) {
		struct dns_mx *mx = NULL;
		size_t n = 0;
		enum dns_status st = dns_parse_mx(abuf, alen, &mx, &n);
		*status = st == DNS_OK ? ARES_SUCCESS : st == DNS_NODATA ? ARES_ENODATA
		    : ARES_EBADRESP;
		for (size_t i = 0; i < n; i++)
			strv_push(&v, mx[i].host);
		dns_mx_free(mx, n);
	} else if (type == DNS_Q_PTR) {
		struct hostent *he = NULL;
		unsigned char dummy[16] = { 0 };
		if ((*status = ares_parse_ptr_reply(abuf, alen, dummy, 4, AF_INET, &he))
		    == ARES_SUCCESS) {
			if (he->h_name != NULL && strlen(he->h_name) <= DNS_NAME_MAX)
				strv_push(&v, he->h_name);
			for (size_t i = 0; he->h_aliases && he->h_aliases[i] && i < 8; i++)
				if (strlen(he->h_aliases[i]) <= DNS_NAME_MAX)
					strv_push(&v, he->h_aliases[i]);
			ares_free_hostent(he);
		}
	}
	return v;
}

/* A query that c-ares finished inside ares_query() (no servers, a bad
 * name): its answer is delivered from the loop, as the contract says,
 * so the caller has its handle before the callback runs. */
static void
async_deliver_cb(struct loop *l, void *arg)
{
	struct dns_q *q = arg;

	(void)l;
	if (!q->cancelled)
		q->cb(q->ctx, q->st, q->values);
	strv_free(&q->values);
	free(q);
}

/* An answer reaches the caller from the loop, never from inside
 * dns_async_query() (submitting: kept until it returns), and never
 * after a cancel or the channel's destruction. Takes v. */
static void
async_finish(struct dns_q *q, int status, enum dns_status st, char **v)
{
	if (q->submitting && status != ARES_EDESTRUCTION) {
		q->deferred = 1;
		q->st = st;
		q->values = v;
		return;
	}
	if (!q->cancelled && status != ARES_EDESTRUCTION)
		q->cb(q->ctx, st, v);
	strv_free(&v);
	free(q);
}

static void
async_query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_q *q = arg;
	const char *why = "";
	char **v = NULL;
	enum dns_status st;

	(void)timeouts;
	if (status == ARES_SUCCESS && abuf != NULL && alen > 0)
		v = async_values(q->type, abuf, alen, &status);
	st = map_status(status, &why);
	if (st == DNS_OK && (v == NULL || v[0] == NULL))
		st = DNS_NODATA;
	if (status == ARES_EBADRESP)
		st = DNS_BADANSWER;
	if (v == NULL) {
		strv_push(&v, "");
		free(v[0]);
		v[0] = NULL;
	}
	async_finish(q, status, st, v);
}

/* DNS_Q_HOST: ares_getaddrinfo reads the hosts file before DNS, as the
 * system resolver does ("localhost" works without a DNS server). */
static void
async_addrinfo_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_q *q = arg;
	char **v = NULL;
	char text[INET6_ADDRSTRLEN];
	const char *why = "";
	enum dns_status st;
	size_t n = 0;

	(void)timeouts;
	strv_push(&v, "");
	free(v[0]);
	v[0] = NULL;
	for (struct ares_addrinfo_node *a = res != NULL ? res->nodes : NULL;
	    a != NULL && n < DNS_ADDR_MAX; a = a->ai_next) {
		const void *ip = NULL;
		if (a->ai_family == AF_INET)
			ip = &((const struct sockaddr_in *)(const void *)a->ai_addr)->sin_addr;
		else if (a->ai_family == AF_INET6)
			ip = &((const struct sockaddr_in6 *)(const void *)a->ai_addr)->sin6_addr;
		if (ip != NULL && inet_ntop(a->ai_family, ip, text, sizeof(text)) != NULL) {
			strv_push(&v, text);
			n++;
		}
	}
	if (res != NULL)
		ares_freeaddrinfo(res);
	st = map_status(status, &why);
	if (st == DNS_OK && n == 0)
		st = DNS_NODATA;
	async_finish(q, status, st, v);
}

struct dns_q *
dns_async_query(struct dns_async *d, const char *name, int type,
    dns_async_cb cb, void *ctx)
{
	static const int rr[] = {
		[DNS_Q_A] = DNS_TYPE_A, [DNS_Q_AAAA] = DNS_TYPE_AAAA,
		[DNS_Q_TXT] = 16, [DNS_Q_MX] = DNS_TYPE_MX, [DNS_Q_PTR] = 12,
	};
	struct dns_q *q = xcalloc(1, sizeof(*q));

	q->d = d;
	q->type = type;
	q->cb = cb;
	q->ctx = ctx;
	q->submitting = 1;
	if (type == DNS_Q_HOST) {
		struct ares_addrinfo_hints h;
		memset(&h, 0, sizeof(h));
		h.ai_family = AF_UNSPEC;
		h.ai_socktype = SOCK_STREAM;
		ares_getaddrinfo(d->ch, name, NULL, &h, async_addrinfo_cb, q);
	} else {
		ares_query(d->ch, name, DNS_CLASS_IN, rr[type], async_query_cb, q);
	}
	q->submitting = 0;
	if (q->deferred)
		(void)loop_timer_add(d->loop, 0, async_deliver_cb, q);
	async_arm_timer(d);
	return q;
}

void
dns_q_cancel(struct dns_q *q)
{
	if (q != NULL)
		q->cancelled = 1;
}

void
dns_async_close(struct dns_async **dp)
{
	struct dns_async *d = *dp;

	if (d == NULL)
		return;
	ares_destroy(d->ch);   /* callbacks run with ARES_EDESTRUCTION */
	if (d->timer != 0)
		loop_timer_cancel(d->loop, d->timer);
	xfree(dp);
}
