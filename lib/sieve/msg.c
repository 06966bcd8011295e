/*
 * msg - what Sieve tests look at in a message: header fields (unfolded,
 * RFC 2047 encoded words decoded to UTF-8 by lib/proto/mime.c), the addresses in a field (RFC 5322 address lists with
 * display names, comments, groups), address parts (RFC 5228 2.7.4 and
 * RFC 5233 subaddress), and dates (RFC 5322 date-time, RFC 5260 parts).
 *
 * Pure functions over bytes; each output is bounded by its input.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"
#include "proto/mime.h"
#include "sieve/sieve_int.h"

#define HEADER_VALUES_MAX 1000

/* RFC 2047 decoding is lib/proto/mime.c's (iconv for other charsets). */
static char *
decode_2047(const char *v)
{
	struct buf out = BUF_INIT(0);

	if (strstr(v, "=?") == NULL)
		return xstrdup(v);
	mime_decode_words(v, strlen(v), &out);
	if (out.data == NULL)
		return xstrdup("");
	for (size_t i = 0; i < out.len; i++)
		if (out.data[i] == '\0')
			out.data[i] = ' ';
	return buf_steal(&out);
}

void
sv_header_values(const char *hdr, size_t len, const char *name, char ***v)
{
	const char *p = hdr, *end = hdr + len;
	size_t nl = strlen(name), count = 0;

	while (p < end && count < HEADER_VALUES_MAX) {
		const char *line = p, *e;
		struct buf val = BUF_INIT(0);

		e = memchr(p, '\n', (size_t)(end - p));
		e = e != NULL ? e : end;
		p = e < end ? e + 1 : end;
		if ((size_t)(e - line) <= nl || line[nl] != ':' ||
		    strncasecmp(line, name, nl) != 0) {
			continue;
		}
		buf_append(&val, line + nl + 1, (size_t)(e - line - nl - 1));
		while (p < end && (*p == ' ' || *p == '\t')) {
			e = memchr(p, '\n', (size_t)(end - p));
			e = e != NULL ? e : end;
			buf_append(&val, p, (size_t)(e - p));
			p = e < end ? e + 1 : end;
		}
		{
			char *raw = buf_steal(&val), *s, *d;

			if (raw == NULL)
				raw = xstrdup("");
			/* drop CRs, trim leading/trailing white space */
			for (s = d = raw; *s != '\0'; s++)
				if (*s != '\r')
					*d++ = *s;
			*d = '\0';
			str_trim(raw);
			s = decode_2047(raw);
			strv_push(v, s);
			free(s);
			free(raw);
		}
		count++;
	}
	if (*v == NULL)
		*v = xcalloc(1, sizeof(char *));
}

char *
sieve_header_get(const char *hdr, size_t len, const char *name)
{
	char **v = NULL, *r = NULL;

	sv_header_values(hdr, len, name, &v);
	if (v[0] != NULL)
		r = xstrdup(v[0]);
	strv_free(&v);
	return r;
}

/* ---- addresses ---- */

static const char *
skip_comment(const char *p)
{
	int depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return p;
}

/* Strip comments and surrounding space from an addr-spec candidate. */
static void
push_addr(char ***out, const char *s, size_t n)
{
	struct buf b = BUF_INIT(0);
	const char *p = s, *end = s + n;
	int inq = 0;

	while (p < end) {
		if (!inq && *p == '(') {
			const char *q = skip_comment(p);

			p = q < end ? q : end;
			continue;
		}
		if (*p == '"')
			inq = !inq;
		if (!inq && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
			p++;
			continue;
		}
		buf_putc(&b, *p++);
	}
	if (b.len > 0)
		strv_push(out, b.data);
	buf_free(&b);
}

void
sv_addr_list(const char *value, char ***out)
{
	const char *p = value, *start = value, *lt = NULL;
	int inq = 0;
	size_t count = 0;

	if (*out == NULL)
		*out = xcalloc(1, sizeof(char *));
	for (;; p++) {
		if (*p == '\0' || (!inq && (*p == ',' || *p == ';'))) {
			if (count++ >= HEADER_VALUES_MAX)
				return;
			if (lt != NULL) {
				const char *gt = strchr(lt, '>');

				if (gt != NULL && gt < p)
					push_addr(out, lt + 1, (size_t)(gt - lt - 1));
			} else
				push_addr(out, start, (size_t)(p - start));
			if (*p == '\0')
				return;
			start = p + 1;
			lt = NULL;
			continue;
		}
		if (inq) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				inq = 0;
			continue;
		}
		if (*p == '"')
			inq = 1;
		else if (*p == '(') {
			const char *q = skip_comment(p);

			p = q - 1;
			if (*q == '\0')
				p = q - 1;
		} else if (*p == '<')
			lt = p;
		else if (*p == ':' && lt == NULL) {
			/* "group: a@b, c@d;" - the display name is not an address */
			start = p + 1;
		}
	}
}

char *
sv_addr_part(const char *addr, enum sv_part part, const char *delim)
{
	const char *at = strrchr(addr, '@');
	size_t llen = at != NULL ? (size_t)(at - addr) : strlen(addr);
	char *local;
	size_t cut;

	switch (part) {
	case P_ALL:
		return xstrdup(addr);
	case P_DOMAIN:
		return xstrdup(at != NULL ? at + 1 : "");
	case P_LOCAL:
		return xstrndup(addr, llen);
	case P_USER:
	case P_DETAIL:
		local = xstrndup(addr, llen);
		cut = delim != NULL && *delim != '\0' ? strcspn(local, delim) : strlen(local);
		if (part == P_USER) {
			local[cut] = '\0';
			return local;
		}
		if (local[cut] == '\0') {
			free(local);
			return NULL;
		}
		{
			char *d = xstrdup(local + cut + 1);

			free(local);
			return d;
		}
	}
	return NULL;
}

/* ---- dates ---- */

static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const wdays[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

int
sv_zone_parse(const char *z, long *off_r)
{
	int sign;

	if ((z[0] != '+' && z[0] != '-') || strlen(z) != 5)
		return -1;
	for (int i = 1; i < 5; i++)
		if (!isdigit((unsigned char)z[i]))
			return -1;
	sign = z[0] == '-' ? -1 : 1;
	*off_r = sign * (((z[1] - '0') * 10 + (z[2] - '0')) * 3600 +
	    ((z[3] - '0') * 10 + (z[4] - '0')) * 60);
	if ((z[3] - '0') * 10 + (z[4] - '0') > 59)
		return -1;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

int
sv_parse_date(const char *s, time_t *t_r, long *off_r)
{
	char buf[128], *tok[8], *save = NULL, *w;
	int ntok = 0, day, mon = -1, year, hh, mm, ss = 0;
	long off = 0;
	long long days;

	/* drop comments and commas */
	{
		size_t j = 0;
		int depth = 0;

		for (const char *p = s; *p != '\0' && j + 1 < sizeof(buf); p++) {
			if (*p == '(')
				depth++;
			else if (*p == ')' && depth > 0)
				depth--;
			else if (depth == 0)
				buf[j++] = *p == ',' ? ' ' : *p;
		}
		buf[j] = '\0';
	}
	for (w = strtok_r(buf, " \t\r\n", &save); w != NULL && ntok < 8;
	    w = strtok_r(NULL, " \t\r\n", &save))
		tok[ntok++] = w;
	if (ntok > 0 && isalpha((unsigned char)tok[0][0])) {
		memmove(tok, tok + 1, (size_t)(ntok - 1) * sizeof(char *));
		ntok--;
	}
	if (ntok < 4)
		return -1;
	day = atoi(tok[0]);
	for (int i = 0; i < 12; i++)
		if (strncasecmp(tok[1], months[i], 3) == 0)
			mon = i;
	year = atoi(tok[2]);
	if (strlen(tok[2]) == 2)
		year += year < 50 ? 2000 : 1900;
	else if (strlen(tok[2]) == 3)
		year += 1900;
	if (mon < 0 || day < 1 || day > 31 || year < 1900 || year > 9999)
		return -1;
	if (sscanf(tok[3], "%d:%d:%d", &hh, &mm, &ss) < 2 || hh > 23 || mm > 59 ||
	    ss > 60 || hh < 0 || mm < 0 || ss < 0)
		return -1;
	if (ntok >= 5 && sv_zone_parse(tok[4], &off) < 0) {
		if (strcasecmp(tok[4], "gmt") == 0 || strcasecmp(tok[4], "ut") == 0 ||
		    strcasecmp(tok[4], "utc") == 0 || strcasecmp(tok[4], "z") == 0)
			off = 0;
		else if (strcasecmp(tok[4], "edt") == 0)
			off = -4 * 3600;
		else if (strcasecmp(tok[4], "est") == 0 || strcasecmp(tok[4], "cdt") == 0)
			off = strcasecmp(tok[4], "est") == 0 ? -5 * 3600 : -5 * 3600;
		else if (strcasecmp(tok[4], "cst") == 0 || strcasecmp(tok[4], "mdt") == 0)
			off = -6 * 3600;
		else if (strcasecmp(tok[4], "mst") == 0 || strcasecmp(tok[4], "pdt") == 0)
			off = -7 * 3600;
		else if (strcasecmp(tok[4], "pst") == 0)
			off = -8 * 3600;
		else
			off = 0;
	}
	days = days_from_civil(year, (unsigned)mon + 1, (unsigned)day);
	*t_r = (time_t)(days * 86400 + hh * 3600 + mm * 60 + ss - off);
	*off_r = off;
	return 0;
}

char *
sv_date_part(time_t t, long off, const char *part)
{
	time_t lt = t + off;
	struct tm tm;
	char zone[40];
	long a = off < 0 ? -off : off;

	if (gmtime_r(&lt, &tm) == NULL)
		return NULL;
	snprintf(zone, sizeof(zone), "%c%02ld%02ld", off < 0 ? '-' : '+', a / 3600,
	    (a % 3600) / 60);
	if (strcasecmp(part, "year") == 0)
		return xasprintf("%04d", tm.tm_year + 1900);
	if (strcasecmp(part, "month") == 0)
		return xasprintf("%02d", tm.tm_mon + 1);
	if (strcasecmp(part, "day") == 0)
		return xasprintf("%02d", tm.tm_mday);
	if (strcasecmp(part, "date") == 0)
		return xasprintf("%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	if (strcasecmp(part, "julian") == 0)
		return xasprintf("%lld", days_from_civil(tm.tm_year + 1900,
		    (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday) + 40587);
	if (strcasecmp(part, "hour") == 0)
		return xasprintf("%02d", tm.tm_hour);
	if (strcasecmp(part, "minute") == 0)
		return xasprintf("%02d", tm.tm_min);
	if (strcasecmp(part, "second") == 0)
		return xasprintf("%02d", tm.tm_sec);
	if (strcasecmp(part, "time") == 0)
		return xasprintf("%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (strcasecmp(part, "iso8601") == 0)
		return xasprintf("%04d-%02d-%02dT%02d:%02d:%02d%.3s:%s", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, zone, zone + 3);
	if (strcasecmp(part, "std11") == 0) {
		char m[4], d[4];

		snprintf(m, sizeof(m), "%s", months[tm.tm_mon]);
		snprintf(d, sizeof(d), "%s", wdays[tm.tm_wday]);
		m[0] = (char)toupper((unsigned char)m[0]);
		d[0] = (char)toupper((unsigned char)d[0]);
		return xasprintf("%s, %d %s %04d %02d:%02d:%02d %s", d, tm.tm_mday, m,
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
	}
	if (strcasecmp(part, "zone") == 0)
		return xstrdup(zone);
	if (strcasecmp(part, "weekday") == 0)
		return xasprintf("%d", tm.tm_wday);
	return NULL;
}

/* ---- addresses and mailto URIs ---- */

int
sv_addr_ok(const char *a)
{
	const char *at = strrchr(a, '@');

	if (at == NULL || at == a || at[1] == '\0' || strlen(a) > 512)
		return 0;
	for (const char *p = a; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f || *p == '<' ||
		    *p == '>' || *p == ',' || *p == '(' || *p == ')' || *p == ';' ||
		    *p == '\\' || *p == '"')
			return 0;
	return 1;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* %-decode s[0..n) (RFC 3986); NULL for a bad escape or a NUL. */
static char *
pct_decode(const char *s, size_t n)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				buf_free(&b);
				return NULL;
			}
			c = hi * 16 + lo;
			i += 2;
		}
		buf_putc(&b, c);
	}
	return b.data != NULL ? buf_steal(&b) : xstrdup("");
}

/* Split a decoded address list at commas into *v; 0, or -1 on a bad one. */
static int
add_rcpts(char ***v, const char *list)
{
	char **parts = strv_split(list, ",");
	int rc = 0;

	for (size_t i = 0; parts[i] != NULL && rc == 0; i++) {
		char *a = str_trim(parts[i]);

		if (!sv_addr_ok(a) || strv_len(*v) >= SIEVE_MAILTO_MAX)
			rc = -1;
		else if (!strv_contains_ci(*v, a))
			strv_push(v, a);
	}
	strv_free(&parts);
	return rc;
}

int
sieve_mailto_parse(const char *uri, char ***rcpts_r, char **subject_r, char **body_r)
{
	char **rcpts = xcalloc(1, sizeof(char *)), *subject = NULL, *body = NULL, *d;
	const char *q, *p;
	int rc = 0;

	if (strncasecmp(uri, "mailto:", 7) != 0 || strlen(uri) > 8192) {
		strv_free(&rcpts);
		return -1;
	}
	uri += 7;
	q = strchr(uri, '?');
	d = pct_decode(uri, q != NULL ? (size_t)(q - uri) : strlen(uri));
	if (d == NULL || (*d != '\0' && add_rcpts(&rcpts, d) < 0))
		rc = -1;
	free(d);
	for (p = q != NULL ? q + 1 : NULL; rc == 0 && p != NULL && *p != '\0'; ) {
		const char *amp = strchr(p, '&'), *end = amp != NULL ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		char *name, *value;

		if (eq == NULL) {
			rc = -1;
			break;
		}
		name = pct_decode(p, (size_t)(eq - p));
		value = pct_decode(eq + 1, (size_t)(end - eq - 1));
		if (name == NULL || value == NULL)
			rc = -1;
		else if (strcasecmp(name, "to") == 0 || strcasecmp(name, "cc") == 0)
			rc = add_rcpts(&rcpts, value);
		else if (strcasecmp(name, "subject") == 0 && subject == NULL) {
			subject = value;
			value = NULL;
		} else if (strcasecmp(name, "body") == 0 && body == NULL) {
			body = value;
			value = NULL;
		}
		free(name);
		free(value);
		p = amp != NULL ? amp + 1 : NULL;
	}
	if (rc == 0 && rcpts[0] == NULL)
		rc = -1;
	if (rc != 0) {
		strv_free(&rcpts);
		free(subject);
		free(body);
		return -1;
	}
	if (rcpts_r != NULL)
		*rcpts_r = rcpts;
	else
		strv_free(&rcpts);
	if (subject_r != NULL)
		*subject_r = subject;
	else
		free(subject);
	if (body_r != NULL)
		*body_r = body;
	else
		free(body);
	return 0;
}
