/*
 * deliver - encode and decode delivery requests and results as ipc
 * attribute lists.
 *
 * Request: scalar attributes queue_id, queue_dir, sender, transport,
 * nexthop, arrival (each exactly once), the optional stamps arrival_us,
 * active_us, handoff_us, pass ("1", local's mailbox_transport hand-off),
 * backlog ("1", more mail for the destination: cache the connection)
 * (at most once each), then one "rcpt" per
 * recipient: "<offset>\t<notify>\t<orig>\t<addr>". Results: one "result"
 * per recipient: "<offset>\t<status>\t<dsn>\t<relay>\t<text>"; text is
 * last so it may hold anything but NUL. A result the agent logged itself
 * is followed by "logged" = its offset. An optional "cache" = seconds
 * (at most once, 1..3600) says the agent keeps its connection to the
 * destination and takes the next request on this one.
 *
 * Decoding trusts nothing (the peer may be a compromised agent): unknown
 * or repeated attributes, missing fields, control characters in
 * addresses, bad numbers, a DSN code that does not match the status and
 * duplicate recipient offsets all fail the whole message, with a text.
 *
 * LIMITS: 100000 recipients or results (as a queue file), text 64 KiB,
 * other fields 64 KiB (addresses) or 1 KiB (names, relay).
 */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/queue.h"

#define DLV_ITEMS_MAX 100000
#define FIELD_MAX (64 * 1024)
#define NAME_MAX_LEN 1024
#define TEXT_MAX (64 * 1024)

static int
fail(char **err_r, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int
fail(char **err_r, const char *fmt, ...)
{
	va_list ap;
	struct buf b = BUF_INIT(0);

	if (err_r != NULL) {
		va_start(ap, fmt);
		(void)buf_vprintf(&b, fmt, ap);
		va_end(ap);
		*err_r = buf_steal(&b);
	}
	errno = EPROTO;
	return -1;
}

/* Append s with TAB, CR and LF replaced: they would break the framing
 * of the tab-separated values or log lines. */
static void
put_field(struct buf *b, const char *s)
{
	if (s == NULL)
		return;
	for (; *s != '\0'; s++)
		(void)buf_putc(b, *s == '\t' || *s == '\r' || *s == '\n' ? ' ' : *s);
}

static const char *
nz(const char *s)
{
	return s == NULL ? "" : s;
}

void
dlv_request_encode(const struct dlv_request *r, struct ipc_msg *m)
{
	struct buf v = BUF_INIT(0);
	size_t i;

	ipc_put(m, "queue_id", nz(r->queue_id));
	ipc_put(m, "queue_dir", nz(r->queue_dir));
	ipc_put(m, "sender", nz(r->sender));
	ipc_put(m, "transport", nz(r->transport));
	ipc_put(m, "nexthop", nz(r->nexthop));
	ipc_put_int(m, "arrival", r->arrival);
	if (r->arrival_us > 0)
		ipc_put_int(m, "arrival_us", r->arrival_us);
	if (r->active_us > 0)
		ipc_put_int(m, "active_us", r->active_us);
	if (r->handoff_us > 0)
		ipc_put_int(m, "handoff_us", r->handoff_us);
	if (r->pass)
		ipc_put(m, "pass", "1");
	if (r->backlog)
		ipc_put(m, "backlog", "1");
	for (i = 0; i < r->nrcpt; i++) {
		buf_reset(&v);
		(void)buf_printf(&v, "%lld\t", r->rcpts[i].offset);
		put_field(&v, r->rcpts[i].notify);
		(void)buf_putc(&v, '\t');
		put_field(&v, r->rcpts[i].orig);
		(void)buf_putc(&v, '\t');
		put_field(&v, r->rcpts[i].addr);
		ipc_put(m, "rcpt", buf_cstr(&v));
	}
	buf_free(&v);
}

void
dlv_results_encode(const struct dlv_result *res, size_t n, int cache_s,
    struct ipc_msg *m)
{
	struct buf v = BUF_INIT(0);
	size_t i;

	for (i = 0; i < n; i++) {
		buf_reset(&v);
		(void)buf_printf(&v, "%lld\t%d\t", res[i].offset, res[i].status);
		put_field(&v, res[i].dsn);
		(void)buf_putc(&v, '\t');
		put_field(&v, res[i].relay);
		(void)buf_putc(&v, '\t');
		(void)buf_puts(&v, nz(res[i].text));
		ipc_put(m, "result", buf_cstr(&v));
		if (res[i].logged)
			ipc_put_int(m, "logged", res[i].offset);
	}
	if (cache_s > 0)
		ipc_put_int(m, "cache", cache_s);
	buf_free(&v);
}

/* Field checks. */

/* Non-negative decimal, no sign, no leading junk, at most 18 digits. */
static int
parse_num(const char *s, size_t n, long long *v)
{
	long long x = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return 0;
}

/* Printable text: no C0 controls, no DEL; bytes >= 0x80 (UTF-8) pass. */
static int
text_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || n >= max)
			return 0;
	return 1;
}

static int
name_ok(const char *s, const char *extra)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++) {
		if (n >= NAME_MAX_LEN)
			return 0;
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return 0;
	}
	return n > 0;
}

/* "" or NEVER, or a subset of SUCCESS,FAILURE,DELAY, each at most once. */
static int
notify_ok(const char *s)
{
	static const char *const kw[] = { "SUCCESS", "FAILURE", "DELAY" };
	unsigned seen = 0;
	size_t len, i;

	if (*s == '\0' || strcasecmp(s, "NEVER") == 0)
		return 1;
	for (;;) {
		len = strcspn(s, ",");
		for (i = 0; i < ARRAY_SIZE(kw); i++)
			if (len == strlen(kw[i]) && strncasecmp(s, kw[i], len) == 0)
				break;
		if (i == ARRAY_SIZE(kw) || (seen & (1u << i)))
			return 0;
		seen |= 1u << i;
		if (s[len] == '\0')
			return 1;
		s += len + 1;
	}
}

/* RFC 3463 class.subject.detail, class matching the status digit. */
static int
dsn_ok(const char *s, int status)
{
	size_t n;

	if (s[0] != '0' + status || s[1] != '.')
		return 0;
	s += 2;
	n = strspn(s, "0123456789");
	if (n < 1 || n > 3 || s[n] != '.')
		return 0;
	s += n + 1;
	n = strspn(s, "0123456789");
	return n >= 1 && n <= 3 && s[n] == '\0';
}

/* Split v at the first max-1 TABs into fields (pointers into copy); the
 * last field keeps any further TABs. Returns the number of fields. */
static size_t
split_tabs(char *copy, char **f, size_t max)
{
	size_t n = 0;
	char *p = copy, *t;

	f[n++] = p;
	while (n < max && (t = strchr(p, '\t')) != NULL) {
		*t = '\0';
		p = t + 1;
		f[n++] = p;
	}
	return n;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Offsets are the key between request and results: no duplicates. */
static int
offsets_unique(long long *v, size_t n)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_ll);
	for (i = 1; i < n; i++)
		if (v[i] == v[i - 1])
			return 0;
	return 1;
}

enum {
	F_QUEUE_ID = 1,
	F_QUEUE_DIR = 2,
	F_SENDER = 4,
	F_TRANSPORT = 8,
	F_NEXTHOP = 16,
	F_ARRIVAL = 32,
	F_ALL = 63,           /* the required ones */
	F_ARRIVAL_US = 64,
	F_ACTIVE_US = 128,
	F_HANDOFF_US = 256,
	F_PASS = 512,
	F_BACKLOG = 1024,
};

int
dlv_request_decode(const struct ipc_msg *m, struct dlv_request *r, char **err_r)
{
	static const struct {
		const char *name;
		unsigned flag;
	} scalars[] = {
		{ "queue_id", F_QUEUE_ID }, { "queue_dir", F_QUEUE_DIR },
		{ "sender", F_SENDER }, { "transport", F_TRANSPORT },
		{ "nexthop", F_NEXTHOP }, { "arrival", F_ARRIVAL },
		{ "arrival_us", F_ARRIVAL_US }, { "active_us", F_ACTIVE_US },
		{ "handoff_us", F_HANDOFF_US }, { "pass", F_PASS },
		{ "backlog", F_BACKLOG },
	};
	const char *name, *value;
	char *copy = NULL, *f[4];
	long long *offs = NULL;
	size_t pos = 0, cap = 0, i;
	unsigned seen = 0, flag;
	struct dlv_rcpt *rc;

	memset(r, 0, sizeof(*r));
	if (err_r != NULL)
		*err_r = NULL;
	while (ipc_next(m, &pos, &name, &value)) {
		if (strcmp(name, "rcpt") == 0) {
			if (r->nrcpt >= DLV_ITEMS_MAX) {
				fail(err_r, "too many recipients");
				goto bad;
			}
			copy = xstrdup(value);
			if (split_tabs(copy, f, 4) != 4) {
				fail(err_r, "malformed rcpt attribute");
				goto bad;
			}
			if (r->nrcpt == cap) {
				cap = cap ? cap * 2 : 8;
				r->rcpts = xreallocarray(r->rcpts, cap, sizeof(*r->rcpts));
			}
			rc = &r->rcpts[r->nrcpt];
			if (parse_num(f[0], strlen(f[0]), &rc->offset) < 0) {
				fail(err_r, "bad rcpt offset");
				goto bad;
			}
			if (!notify_ok(f[1])) {
				fail(err_r, "bad rcpt notify");
				goto bad;
			}
			if (!text_ok(f[2], FIELD_MAX) || !text_ok(f[3], FIELD_MAX) ||
			    f[3][0] == '\0') {
				fail(err_r, "bad rcpt address");
				goto bad;
			}
			rc->notify = xstrdup(f[1]);
			rc->orig = xstrdup(f[2]);
			rc->addr = xstrdup(f[3]);
			r->nrcpt++;
			xfree(&copy);
			continue;
		}
		for (i = 0; i < ARRAY_SIZE(scalars); i++)
			if (strcmp(name, scalars[i].name) == 0)
				break;
		if (i == ARRAY_SIZE(scalars)) {
			fail(err_r, "unknown attribute");
			goto bad;
		}
		flag = scalars[i].flag;
		if (seen & flag) {
			fail(err_r, "repeated attribute %s", scalars[i].name);
			goto bad;
		}
		seen |= flag;
		switch (flag) {
		case F_QUEUE_ID:
			if (!queue_id_valid(value)) {
				fail(err_r, "bad queue_id");
				goto bad;
			}
			r->queue_id = xstrdup(value);
			break;
		case F_QUEUE_DIR:
			if (!name_ok(value, "")) {
				fail(err_r, "bad queue_dir");
				goto bad;
			}
			r->queue_dir = xstrdup(value);
			break;
		case F_SENDER:
			if (!text_ok(value, FIELD_MAX)) {
				fail(err_r, "bad sender");
				goto bad;
			}
			r->sender = xstrdup(value);
			break;
		case F_TRANSPORT:
			if (!name_ok(value, "-_.")) {
				fail(err_r, "bad transport");
				goto bad;
			}
			r->transport = xstrdup(value);
			break;
		case F_NEXTHOP:
			if (!text_ok(value, NAME_MAX_LEN) || strchr(value, ' ') != NULL) {
				fail(err_r, "bad nexthop");
				goto bad;
			}
			r->nexthop = xstrdup(value);
			break;
		case F_ARRIVAL:
			if (parse_num(value, strlen(value), &r->arrival) < 0) {
				fail(err_r, "bad arrival");
				goto bad;
			}
			break;
		case F_PASS:
			if (strcmp(value, "1") != 0) {
				fail(err_r, "bad pass");
				goto bad;
			}
			r->pass = 1;
			break;
		case F_BACKLOG:
			if (strcmp(value, "1") != 0) {
				fail(err_r, "bad backlog");
				goto bad;
			}
			r->backlog = 1;
			break;
		case F_ARRIVAL_US:
		case F_ACTIVE_US:
		case F_HANDOFF_US:
			{
				long long *dst = flag == F_ARRIVAL_US ? &r->arrival_us :
				    flag == F_ACTIVE_US ? &r->active_us : &r->handoff_us;

				if (parse_num(value, strlen(value), dst) < 0) {
					fail(err_r, "bad %s", scalars[i].name);
					goto bad;
				}
			}
			break;
		}
	}
	if ((seen & F_ALL) != F_ALL) {
		fail(err_r, "missing attribute");
		goto bad;
	}
	if (r->nrcpt == 0) {
		fail(err_r, "no recipients");
		goto bad;
	}
	offs = xreallocarray(NULL, r->nrcpt, sizeof(*offs));
	for (i = 0; i < r->nrcpt; i++)
		offs[i] = r->rcpts[i].offset;
	if (!offsets_unique(offs, r->nrcpt)) {
		fail(err_r, "duplicate rcpt offset");
		goto bad;
	}
	free(offs);
	return 0;
bad:
	xfree(&copy);
	free(offs);
	dlv_request_free(r);
	errno = EPROTO;
	return -1;
}

void
dlv_request_free(struct dlv_request *r)
{
	size_t i;

	for (i = 0; i < r->nrcpt; i++) {
		free(r->rcpts[i].addr);
		free(r->rcpts[i].orig);
		free(r->rcpts[i].notify);
	}
	free(r->rcpts);
	free(r->queue_id);
	free(r->queue_dir);
	free(r->sender);
	free(r->transport);
	free(r->nexthop);
	memset(r, 0, sizeof(*r));
}

int
dlv_results_decode(const struct ipc_msg *m, struct dlv_result **res_r,
    size_t *n_r, int *cache_s_r, char **err_r)
{
	const char *name, *value;
	struct dlv_result *res = NULL, *x;
	char *copy = NULL, *f[5];
	long long *offs = NULL;
	size_t pos = 0, n = 0, cap = 0, i;
	int cache_seen = 0;

	*res_r = NULL;
	*n_r = 0;
	if (cache_s_r != NULL)
		*cache_s_r = 0;
	if (err_r != NULL)
		*err_r = NULL;
	while (ipc_next(m, &pos, &name, &value)) {
		if (strcmp(name, "cache") == 0) {
			long long secs;

			if (cache_seen || parse_num(value, strlen(value), &secs) < 0 ||
			    secs < 1 || secs > 3600) {
				fail(err_r, "bad cache attribute");
				goto bad;
			}
			cache_seen = 1;
			if (cache_s_r != NULL)
				*cache_s_r = (int)secs;
			continue;
		}
		if (strcmp(name, "logged") == 0) {
			long long off;

			/* Flags the result just before it, by its offset. */
			if (n == 0 || res[n - 1].logged ||
			    parse_num(value, strlen(value), &off) < 0 ||
			    off != res[n - 1].offset) {
				fail(err_r, "bad logged attribute");
				goto bad;
			}
			res[n - 1].logged = 1;
			continue;
		}
		if (strcmp(name, "result") != 0) {
			fail(err_r, "unknown attribute");
			goto bad;
		}
		if (n >= DLV_ITEMS_MAX) {
			fail(err_r, "too many results");
			goto bad;
		}
		copy = xstrdup(value);
		if (split_tabs(copy, f, 5) != 5) {
			fail(err_r, "malformed result attribute");
			goto bad;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			res = xreallocarray(res, cap, sizeof(*res));
		}
		x = &res[n];
		memset(x, 0, sizeof(*x));
		if (parse_num(f[0], strlen(f[0]), &x->offset) < 0) {
			fail(err_r, "bad result offset");
			goto bad;
		}
		if (strlen(f[1]) != 1 || (f[1][0] != '2' && f[1][0] != '4' &&
		    f[1][0] != '5')) {
			fail(err_r, "bad result status");
			goto bad;
		}
		x->status = f[1][0] - '0';
		if (!dsn_ok(f[2], x->status)) {
			fail(err_r, "bad result dsn");
			goto bad;
		}
		if (!text_ok(f[3], NAME_MAX_LEN) || f[3][0] == '\0') {
			fail(err_r, "bad result relay");
			goto bad;
		}
		if (strlen(f[4]) > TEXT_MAX) {
			fail(err_r, "result text too long");
			goto bad;
		}
		x->dsn = xstrdup(f[2]);
		x->relay = xstrdup(f[3]);
		x->text = xstrdup(f[4]);
		n++;
		xfree(&copy);
	}
	if (n > 0) {
		offs = xreallocarray(NULL, n, sizeof(*offs));
		for (i = 0; i < n; i++)
			offs[i] = res[i].offset;
		if (!offsets_unique(offs, n)) {
			fail(err_r, "duplicate result offset");
			goto bad;
		}
		free(offs);
	}
	*res_r = res;
	*n_r = n;
	return 0;
bad:
	xfree(&copy);
	free(offs);
	dlv_results_free(res, n);
	errno = EPROTO;
	return -1;
}

void
dlv_results_free(struct dlv_result *res, size_t n)
{
	size_t i;

	if (res == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(res[i].dsn);
		free(res[i].relay);
		free(res[i].text);
	}
	free(res);
}

int
dlv_peer_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

	if (poll(&pfd, 1, 0) < 0)
		return 0;
	return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Long enough for qmgr to write a request it has already built, and for a
 * busy qmgr to read our reply; neither waits on the network. */
#define DLV_IO_TIMEOUT_MS 100000

/* 0 a request, 1 the peer closed the connection before sending one (the
 * normal end), -1 error (logged). */
static int
dlv_recv(int fd, struct dlv_request *req)
{
	struct ipc_msg in;
	char *err = NULL;

	ipc_init(&in);
	memset(req, 0, sizeof(*req));
	/* qmgr writes its request as it connects, and a kept connection
	 * is read after wait_next(): the request is there, or on its way. */
	if (ipc_recv_ready(fd, &in, IPC_MAX_DEFAULT, DLV_IO_TIMEOUT_MS) < 0) {
		int clean = errno == EPIPE;

		if (!clean)
			log_warn("receive delivery request");
		ipc_free(&in);
		return clean ? 1 : -1;
	}
	if (dlv_request_decode(&in, req, &err) < 0) {
		log_warnx("bad delivery request: %s", err != NULL ? err : "?");
		free(err);
		ipc_free(&in);
		return -1;
	}
	ipc_free(&in);
	return 0;
}

/* 0 sent, -1 failed (logged). */
static int
dlv_reply(int fd, const struct dlv_request *req, const struct dlv_result *res,
    int cache_s)
{
	struct ipc_msg out;
	int rc = 0;

	ipc_init(&out);
	dlv_results_encode(res, req->nrcpt, cache_s, &out);
	if (ipc_send(fd, &out, DLV_IO_TIMEOUT_MS) < 0) {
		log_warn("%s: send delivery results", req->queue_id);
		rc = -1;
	}
	ipc_free(&out);
	return rc;
}

/* Longer than any delay between qmgr's parking timer and its close, so
 * that qmgr, not we, ends an idle kept connection: a request sent on a
 * connection we had just given up would be a deferral. */
#define DLV_WAIT_MARGIN_S 30

/* Wait for qmgr's next request on a kept connection: 1 readable (a
 * request or its EOF), 0 not within qmgr's time plus the margin. */
static int
wait_next(int fd, int cache_s)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int rc;

	do
		rc = poll(&p, 1, (cache_s + DLV_WAIT_MARGIN_S) * 1000);
	while (rc < 0 && errno == EINTR);
	return rc > 0;
}

void
dlv_serve(int fd, dlv_deliver_fn deliver, dlv_keep_fn keep)
{
	struct dlv_request req;
	struct dlv_result *res;
	int rc, kept = 0, cache_s;

	for (;;) {
		rc = dlv_recv(fd, &req);
		if (rc != 0) {
			if (rc > 0 && !kept)
				log_warnx("receive delivery request: connection closed");
			return;
		}
		res = xcalloc(req.nrcpt + 1, sizeof(*res));
		deliver(fd, &req, res);
		cache_s = keep != NULL ? keep(&req) : 0;
		rc = dlv_reply(fd, &req, res, cache_s);
		dlv_results_free(res, req.nrcpt);
		dlv_request_free(&req);
		if (rc < 0 || cache_s == 0 || !wait_next(fd, cache_s))
			return;
		kept = 1;
	}
}

int
dlv_result_soften(struct dlv_result *res)
{
	if (res->status != 5 || config_bool("soft_bounce") != 1)
		return 0;
	res->status = 4;
	if (res->dsn != NULL && res->dsn[0] == '5')
		res->dsn[0] = '4';
	return 1;
}
