/*
 * dlvlog - one formatter for the "to=<...>, relay=..., status=..." line
 * that local, smtp and qmgr all log (see dlvlog.h for who logs when).
 *
 * Invariants: one call, one log line (control characters in any field
 * become spaces); the delays= parts are clamped at zero and never
 * exceed delay= (a stamp before its predecessor counts as equal).
 * Trusts: nothing in the texts; the stamps only as numbers.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/buf.h"
#include "util/log.h"
#include "mail/dlvlog.h"

void
dlvlog_format_delay(char *out, size_t len, double v)
{
	char *p;

	if (v >= 10)
		snprintf(out, len, "%.0f", v);
	else if (v >= 1)
		snprintf(out, len, "%.1f", v);
	else if (v >= 0.01)
		snprintf(out, len, "%.2f", v);
	else {
		snprintf(out, len, "0");
		return;
	}
	if (strchr(out, '.') != NULL) {
		p = out + strlen(out) - 1;
		while (*p == '0')
			*p-- = '\0';
		if (*p == '.')
			*p = '\0';
	}
}

static struct timespec
us_to_ts(long long us)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(us / 1000000);
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	return ts;
}

void
dlvlog_times_request(struct dlvlog_times *t, const struct dlv_request *r)
{
	memset(t, 0, sizeof(*t));
	if (r->arrival_us > 0)
		t->arrival = us_to_ts(r->arrival_us);
	else
		t->arrival.tv_sec = (time_t)r->arrival;
	if (r->active_us > 0)
		t->active = us_to_ts(r->active_us);
	if (r->handoff_us > 0)
		t->handoff = us_to_ts(r->handoff_us);
	t->connected = t->handoff;
}

static double
ts_secs(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static int
ts_unset(const struct timespec *t)
{
	return t->tv_sec == 0 && t->tv_nsec == 0;
}

/* Without an "rfc822;" type prefix, for display. */
static const char *
orig_addr(const char *orig)
{
	if (orig != NULL && strncasecmp(orig, "rfc822;", 7) == 0) {
		orig += 7;
		while (*orig == ' ')
			orig++;
	}
	return orig != NULL ? orig : "";
}

static void
put_clean(struct buf *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		buf_putc(out, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

void
dlvlog_format(struct buf *out, const char *id, const char *addr,
    const char *orig, const char *relay, const struct dlvlog_times *t,
    const struct timespec *now, const char *dsn, const char *status,
    const char *text)
{
	const struct timespec *stamp[4] = { &t->active, &t->handoff, &t->connected, now };
	double prev, cur, total, part[4];
	char d[32], p[4][32];
	const char *o = orig_addr(orig);
	size_t i;

	/* Each stamp at least its predecessor and at most now. */
	prev = ts_secs(&t->arrival);
	total = ts_secs(now) - prev;
	if (total < 0)
		total = 0;
	for (i = 0; i < 4; i++) {
		cur = ts_unset(stamp[i]) ? prev : ts_secs(stamp[i]);
		if (i < 3 && cur > ts_secs(now))
			cur = ts_secs(now);
		if (cur < prev)
			cur = prev;
		part[i] = cur - prev;
		prev = cur;
	}
	dlvlog_format_delay(d, sizeof(d), total);
	for (i = 0; i < 4; i++)
		dlvlog_format_delay(p[i], sizeof(p[i]), part[i]);
	put_clean(out, id);
	buf_puts(out, ": to=<");
	put_clean(out, addr);
	buf_puts(out, ">");
	if (*o != '\0' && strcasecmp(o, addr) != 0) {
		buf_puts(out, ", orig_to=<");
		put_clean(out, o);
		buf_puts(out, ">");
	}
	buf_puts(out, ", relay=");
	put_clean(out, relay != NULL && *relay != '\0' ? relay : "none");
	if (t->conn_use > 1)
		buf_printf(out, ", conn_use=%d", t->conn_use);
	buf_printf(out, ", delay=%s, delays=%s/%s/%s/%s, dsn=", d, p[0], p[1], p[2], p[3]);
	put_clean(out, dsn != NULL && *dsn != '\0' ? dsn : "4.0.0");
	buf_puts(out, ", status=");
	put_clean(out, status);
	buf_puts(out, " (");
	put_clean(out, text);
	buf_puts(out, ")");
}

void
dlvlog_status(const char *id, const char *addr, const char *orig,
    const char *relay, const struct dlvlog_times *t, const char *dsn,
    const char *status, const char *text)
{
	struct buf line = BUF_INIT(0);
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	dlvlog_format(&line, id, addr, orig, relay, t, &now, dsn, status, text);
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

void
dlvlog_result(const char *id, const char *addr, const char *orig,
    const struct dlvlog_times *t, struct dlv_result *res)
{
	const char *status;

	(void)dlv_result_soften(res);
	status = res->status == 2 ? "sent" : res->status == 5 ? "bounced" : "deferred";

	dlvlog_status(id, addr, orig, res->relay, t, res->dsn, status, res->text);
	res->logged = 1;
}
