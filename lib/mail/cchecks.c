/*
 * cchecks - header_checks, mime_header_checks, nested_header_checks and
 * body_checks on streaming content (see cchecks.h for what is checked).
 *
 * The content is cut into records as Postfix stores it: a physical line,
 * or each line_length_limit bytes of a longer one ("mid" records go on
 * the line before). In a header block the records of one field and its
 * continuation lines are held until the next field starts, then looked
 * up as one logical header and written out (or not, or replaced). In a
 * body each record is looked up and written at once, so only one record
 * and one logical header are ever held: memory is bounded by
 * CC_HEADER_MAX + line_length_limit whatever the message.
 *
 * MIME: a header block's Content-Type decides what follows it: a
 * multipart pushes its boundary (the preamble is body), a message/rfc822
 * (or a digest's part without a type) makes the next block a nested
 * header, anything else is a body. A body line "--boundary" of any open
 * level closes the deeper ones and opens a part header; "--boundary--"
 * closes that level too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/strv.h"
#include "proto/mime.h"
#include "proto/smtp.h"
#include "mail/cchecks.h"

/* A logical header longer than this is checked on what was held, and
 * its further continuation lines pass unchecked (hdrlimit has already
 * cut primary headers to header_size_limit). */
#define CC_HEADER_MAX (100 * 1024)
#define CC_CTYPE_MAX 1000
#define CC_REPLY_MAX 400

void
cchecks_init(struct cchecks *c, const int has[CC_NCLASS], size_t body_limit,
    size_t line_length_limit, cc_lookup_fn lookup, cc_report_fn report,
    void *ctx)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->has, has, sizeof(c->has));
	c->body_limit = body_limit;
	c->piece = line_length_limit > 0 ? line_length_limit : 2048;
	c->lookup = lookup;
	c->report = report;
	c->ctx = ctx;
	c->in_header = 1;
	c->line_start = 1;
	buf_init(&c->cur, 0);
	buf_init(&c->rec, 0);
}

void
cchecks_free(struct cchecks *c)
{
	buf_free(&c->cur);
	buf_free(&c->rec);
	free(c->reject);
	free(c->redirect);
	strv_free(&c->bcc);
	free(c->ctype);
	for (int i = 0; i < c->depth; i++)
		free(c->bound[i]);
	c->reject = c->ctype = NULL;
	c->depth = 0;
}

int
cchecks_active(const struct cchecks *c)
{
	for (int i = 0; i < CC_NCLASS; i++)
		if (c->has[i])
			return 1;
	return 0;
}

/* "name:" with a name of printable ASCII without space or ':' (as
 * hdrlimit decides where the header ends). Its length, or 0. */
static size_t
field_name_len(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && p[i] != ':'; i++)
		if (p[i] <= ' ' || p[i] > '~')
			return 0;
	return i > 0 && i < n ? i : 0;
}

static int
is_mime_header(const char *p, size_t n)
{
	size_t k = field_name_len(p, n);

	return (k > 8 && strncasecmp(p, "Content-", 8) == 0)
	    || (k == 12 && strncasecmp(p, "MIME-Version", 12) == 0);
}

/* "text" from a table as an SMTP reply: Postfix's 550 5.7.1 unless the
 * text starts with its own 4.X.X or 5.X.X. Control characters (a $1 may
 * carry a header's line break) become spaces. */
static char *
reject_reply(const char *text)
{
	char dsn[16], *r, *q;
	const char *t;

	smtp_dsn_split(*text != '\0' ? text : "message content rejected", "5.7.1",
	    dsn, &t);
	if (dsn[0] != '4')
		dsn[0] = '5';   /* a REJECT is never a 2xx */
	r = xasprintf("%c50 %s %.*s", dsn[0], dsn, CC_REPLY_MAX, t);
	for (q = r; *q; q++)
		if ((unsigned char)*q < ' ' || *q == 0x7f)
			*q = ' ';
	return r;
}

/* One address, user@domain, nothing around it (a $1 from a header may
 * bring anything). */
static int
is_address(const char *t)
{
	const char *at = strrchr(t, '@');

	if (at == NULL || at == t || at[1] == '\0' || strlen(t) > 254)
		return 0;
	for (; *t != '\0'; t++)
		if ((unsigned char)*t <= ' ' || *t == '<' || *t == '>' || *t == ','
		    || (unsigned char)*t >= 0x7f)
			return 0;
	return 1;
}

const char *
cchecks_action_ok(const char *result)
{
	static const char *const ok[] = { "REJECT", "DISCARD", "HOLD", "WARN",
	    "INFO", "IGNORE", "DUNNO", "OK", NULL };
	static const char *const later[] = { "FILTER", "PASS", "STRIP", NULL };
	size_t n = strcspn(result, " \t");
	const char *text = result + n + strspn(result + n, " \t");

	for (int i = 0; ok[i] != NULL; i++)
		if (strlen(ok[i]) == n && strncasecmp(result, ok[i], n) == 0)
			return NULL;
	if ((n == 7 && strncasecmp(result, "PREPEND", 7) == 0) ||
	    (n == 7 && strncasecmp(result, "REPLACE", 7) == 0))
		return *text != '\0' ? NULL : "PREPEND and REPLACE need a text";
	if ((n == 8 && strncasecmp(result, "REDIRECT", 8) == 0) ||
	    (n == 3 && strncasecmp(result, "BCC", 3) == 0))
		return is_address(text) ? NULL : "REDIRECT and BCC need one address";
	for (int i = 0; later[i] != NULL; i++)
		if (strlen(later[i]) == n && strncasecmp(result, later[i], n) == 0)
			return "Postern does not implement this action yet";
	return "not an action of header_checks(5)";
}

/* Look the logical header or line p[0..n) (its LF included, if any) up
 * and write what the action leaves of it. */
static void
check(struct cchecks *c, enum cc_class cl, const char *p, size_t n,
    struct buf *out)
{
	size_t klen = n > 0 && p[n - 1] == '\n' ? n - 1 : n;
	char *key, *val = NULL;
	const char *text;
	size_t wl;
	int r, lf = klen < n;

	if (c->stopped || !c->has[cl]) {
		(void)buf_append(out, p, n);
		return;
	}
	key = xstrndup(p, klen);
	r = c->lookup(c->ctx, cl, key, &val);
	if (r <= 0) {
		if (r < 0) {
			c->lookup_error = 1;
			c->stopped = 1;
		}
		(void)buf_append(out, p, n);
		free(key);
		return;
	}
	wl = strcspn(val, " \t");
	text = val + wl + strspn(val + wl, " \t");
#define IS(w) (wl == sizeof(w) - 1 && strncasecmp(val, w, wl) == 0)
	if (cchecks_action_ok(val) != NULL) {
		/* what postern check refuses: a table changed since */
		c->report(c->ctx, "unknown", cl, key, val);
		(void)buf_append(out, p, n);
	} else if (IS("IGNORE"))
		;
	else if (IS("REPLACE")) {
		c->report(c->ctx, "replace", cl, key, text);
		(void)buf_puts(out, text);
		if (lf)
			(void)buf_putc(out, '\n');
	} else {
		if (IS("PREPEND")) {
			(void)buf_puts(out, text);
			(void)buf_putc(out, '\n');
		} else if (IS("REJECT")) {
			c->report(c->ctx, "reject", cl, key, text);
			c->reject = reject_reply(text);
			c->stopped = 1;
		} else if (IS("DISCARD")) {
			c->report(c->ctx, "discard", cl, key, text);
			c->discard = 1;
			c->stopped = 1;
		} else if (IS("HOLD")) {
			c->report(c->ctx, "hold", cl, key, text);
			c->hold = 1;
		} else if (IS("WARN"))
			c->report(c->ctx, "warning", cl, key, text);
		else if (IS("INFO"))
			c->report(c->ctx, "info", cl, key, text);
		else if (IS("REDIRECT")) {
			c->report(c->ctx, "redirect", cl, key, text);
			free(c->redirect);
			c->redirect = xstrdup(text);
		} else if (IS("BCC")) {
			c->report(c->ctx, "bcc", cl, key, text);
			if (strv_len(c->bcc) < CCHECKS_BCC_MAX
			    && !strv_contains_ci(c->bcc, text))
				strv_push(&c->bcc, text);
		}
		(void)buf_append(out, p, n);
	}
#undef IS
	free(key);
	free(val);
}

/* The held logical header is complete: note its Content-Type, check it,
 * write it. */
static void
header_done(struct cchecks *c, struct buf *out)
{
	const char *p = c->cur.data;
	size_t n = c->cur.len, k;
	enum cc_class cl;

	if (n == 0)
		return;
	k = field_name_len(p, n);
	if (k == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
		free(c->ctype);
		c->ctype = xstrndup(p + 13, n - 13 < CC_CTYPE_MAX ? n - 13 : CC_CTYPE_MAX);
	}
	if (is_mime_header(p, n))
		cl = CC_MIME;
	else
		cl = c->block == 0 ? CC_HEADER : c->block == 1 ? CC_MIME : CC_NESTED;
	check(c, cl, p, n, out);
	buf_reset(&c->cur);
}

/* The header block is over: what comes next follows its Content-Type. */
static void
block_done(struct cchecks *c)
{
	const char *v = c->ctype != NULL ? c->ctype : "";
	struct mime_ctype ct;
	struct buf b = BUF_INIT(0);

	mime_ctype_parse(v, strlen(v), &ct, 0);
	c->in_header = 0;
	c->body_seen = 0;
	if (ct.type != NULL && strcasecmp(ct.type, "multipart") == 0) {
		if (c->depth < CCHECKS_DEPTH && mime_param_get(&ct, "boundary", &b)
		    && b.len > 0 && b.len <= CCHECKS_BOUNDARY_MAX) {
			c->digest[c->depth] = ct.subtype != NULL
			    && strcasecmp(ct.subtype, "digest") == 0;
			c->bound[c->depth++] = xstrdup(buf_cstr(&b));
		}
	} else if ((ct.type != NULL && ct.subtype != NULL
	    && strcasecmp(ct.type, "message") == 0
	    && strcasecmp(ct.subtype, "rfc822") == 0)
	    || (c->ctype == NULL && c->block == 1 && c->part_digest)) {
		c->in_header = 1;
		c->block = 2;
	}
	buf_free(&b);
	mime_ctype_free(&ct);
	free(c->ctype);
	c->ctype = NULL;
}

/* A body line "--boundary[--]" of an open level: close the deeper ones,
 * and that one too for "--". */
static void
boundary(struct cchecks *c, const char *p, size_t n)
{
	for (int k = c->depth - 1; k >= 0; k--) {
		size_t bl = strlen(c->bound[k]);
		if (n < 2 + bl || memcmp(p + 2, c->bound[k], bl) != 0)
			continue;
		int closing = n >= 4 + bl && p[2 + bl] == '-' && p[3 + bl] == '-';
		while (c->depth > k + 1)
			free(c->bound[--c->depth]);
		if (closing)
			free(c->bound[--c->depth]);
		else {
			c->in_header = 1;
			c->block = 1;
			c->part_digest = c->digest[k];
		}
		c->body_seen = 0;
		return;
	}
}

static void
body_record(struct cchecks *c, const char *p, size_t n, int mid, struct buf *out)
{
	if (c->body_seen < c->body_limit)
		check(c, CC_BODY, p, n, out);
	else
		(void)buf_append(out, p, n);
	c->body_seen += n;
	if (!mid && c->depth > 0 && n >= 2 && p[0] == '-' && p[1] == '-')
		boundary(c, p, n);
}

/* One record: a line with its LF, or a piece of a long one; mid: it
 * goes on the record before (same physical line). */
static void
record(struct cchecks *c, const char *p, size_t n, int mid, struct buf *out)
{
	if (!c->in_header) {
		body_record(c, p, n, mid, out);
		return;
	}
	if (mid || (n > 0 && (p[0] == ' ' || p[0] == '\t') && c->cur.len > 0)) {
		/* More of the open header. */
		if (c->spill || c->cur.len + n > CC_HEADER_MAX) {
			header_done(c, out);
			c->spill = 1;
			(void)buf_append(out, p, n);
		} else
			(void)buf_append(&c->cur, p, n);
		return;
	}
	if (c->spill && n > 0 && (p[0] == ' ' || p[0] == '\t')) {
		(void)buf_append(out, p, n);
		return;
	}
	header_done(c, out);
	c->spill = 0;
	if (field_name_len(p, n) > 0) {
		(void)buf_append(&c->cur, p, n);
		return;
	}
	/* An empty line, or a line that is no field: the block is over. */
	block_done(c);
	if (n == 1 && p[0] == '\n')
		(void)buf_append(out, p, n);   /* the separator is no body line */
	else
		record(c, p, n, 0, out);
}

void
cchecks_feed(struct cchecks *c, const char *p, size_t n, struct buf *out)
{
	if (!cchecks_active(c)) {
		(void)buf_append(out, p, n);
		return;
	}
	while (n > 0) {
		size_t room = c->piece - c->rec.len;
		const char *lf = memchr(p, '\n', n < room ? n : room);
		size_t k = lf != NULL ? (size_t)(lf - p) + 1 : (n < room ? n : room);

		(void)buf_append(&c->rec, p, k);
		p += k;
		n -= k;
		if (lf != NULL || c->rec.len >= c->piece) {
			int mid = !c->line_start;
			c->line_start = lf != NULL;
			record(c, c->rec.data, c->rec.len, mid, out);
			buf_reset(&c->rec);
		}
	}
}

void
cchecks_end(struct cchecks *c, struct buf *out)
{
	if (!cchecks_active(c))
		return;
	if (c->rec.len > 0) {
		record(c, c->rec.data, c->rec.len, !c->line_start, out);
		buf_reset(&c->rec);
	}
	if (c->in_header)
		header_done(c, out);
}
