/*
 * hdrlimit - header_size_limit, hop count and Message-ID over streamed
 * content (see hdrlimit.h for the rules, which are Postfix's).
 *
 * Invariants: every state lives in struct hdrlimit, so any split of the
 * input gives the same output; held bytes are bounded (a field name of at
 * most one piece, HDRLIMIT_FIELD_MAX of field text). Trusts: nothing.
 */
#include "mail/hdrlimit.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

enum { M_SOL, M_NAME, M_VAL, M_BODY };

void
hdrlimit_init(struct hdrlimit *h, size_t header_size_limit, size_t line_length_limit)
{
	memset(h, 0, sizeof(*h));
	h->header_size_limit = header_size_limit > 0 ? header_size_limit : 102400;
	h->piece = line_length_limit > 0 ? line_length_limit : 2048;
	h->state = M_SOL;
	buf_init(&h->name, 0);
	buf_init(&h->field, 0);
}

void
hdrlimit_free(struct hdrlimit *h)
{
	buf_free(&h->name);
	buf_free(&h->field);
	free(h->message_id);
	h->message_id = NULL;
}

static void
field_add(struct hdrlimit *h, const char *p, size_t n)
{
	size_t room = HDRLIMIT_FIELD_MAX - h->field.len;

	(void)buf_append(&h->field, p, n < room ? n : room);
}

/* A field is complete: look at what was kept of it. */
static void
field_done(struct hdrlimit *h)
{
	const char *f = buf_cstr(&h->field);

	if (h->in_field && h->message_id == NULL
	    && strncasecmp(f, "Message-ID:", 11) == 0) {
		const char *v = f + 11;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t len = strlen(v);
		while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
		if (len > HDRLIMIT_MSGID_MAX)
			len = HDRLIMIT_MSGID_MAX;
		h->message_id = xstrndup(v, len);
		for (char *c = h->message_id; *c; c++)
			if (*c < ' ' || *c > '~')
				*c = '?';
	}
	h->in_field = 0;
	buf_reset(&h->field);
}

static void
flush_lf(struct hdrlimit *h, struct buf *out)
{
	if (h->pending_lf)
		(void)buf_putc(out, '\n');
	h->pending_lf = 0;
}

/* The header is over: what was held goes out, the rest passes through. */
static void
to_body(struct hdrlimit *h, struct buf *out)
{
	field_done(h);
	flush_lf(h, out);
	(void)buf_append(out, h->name.data, h->name.len);
	buf_reset(&h->name);
	h->state = M_BODY;
}

/* Bytes of a field line up to (not including) its LF, piece by piece. */
static void
value_bytes(struct hdrlimit *h, const char *p, size_t n, struct buf *out)
{
	while (n > 0) {
		if (h->line_pos > 0 && h->line_pos % h->piece == 0) {
			int was = h->keep;
			h->keep = h->cur < h->header_size_limit;
			if (was && !h->keep)
				h->truncated++;
		}
		size_t room = h->piece - h->line_pos % h->piece;
		size_t k = n < room ? n : room;
		if (h->keep) {
			(void)buf_append(out, p, k);
			h->cur += k;
			field_add(h, p, k);
		}
		h->line_pos += k;
		p += k;
		n -= k;
	}
}

void
hdrlimit_feed(struct hdrlimit *h, const char *p, size_t n, struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];

		switch (h->state) {
		case M_BODY:
			(void)buf_append(out, p + i, n - i);
			return;
		case M_SOL:
			if (c == '\n') {
				to_body(h, out);
				continue;   /* the empty line goes out as body */
			}
			if (c == ' ' || c == '\t') {
				if (!h->in_field) {
					to_body(h, out);
					continue;
				}
				/* A continuation line: a new piece of this header. */
				int was = h->keep;
				h->keep = h->cur < h->header_size_limit;
				if (was && !h->keep)
					h->truncated++;
				if (h->keep) {
					flush_lf(h, out);
					h->cur++;
				}
				h->line_pos = 0;
				h->state = M_VAL;
				continue;
			}
			field_done(h);
			h->state = M_NAME;
			continue;
		case M_NAME:
			if (c == ':' && h->name.len > 0) {
				flush_lf(h, out);
				if (h->name.len == 8
				    && strncasecmp(h->name.data, "Received", 8) == 0)
					h->hops++;
				h->in_field = 1;
				h->keep = 1;
				h->cur = h->line_pos = 0;
				value_bytes(h, h->name.data, h->name.len, out);
				value_bytes(h, ":", 1, out);
				buf_reset(&h->name);
				h->state = M_VAL;
				i++;
				continue;
			}
			if ((unsigned char)c <= ' ' || (unsigned char)c > '~'
			    || c == ':' || h->name.len >= h->piece) {
				to_body(h, out);
				continue;
			}
			(void)buf_putc(&h->name, c);
			i++;
			continue;
		case M_VAL: {
			const char *lf = memchr(p + i, '\n', n - i);
			size_t end = lf != NULL ? (size_t)(lf - p) : n;
			value_bytes(h, p + i, end - i, out);
			i = end;
			if (lf != NULL) {
				h->pending_lf = 1;
				h->state = M_SOL;
				i++;
			}
			continue;
		}
		}
	}
}

void
hdrlimit_end(struct hdrlimit *h, struct buf *out)
{
	if (h->state != M_BODY)
		to_body(h, out);
}

long long
hdrlimit_hops(const char *p, size_t n)
{
	struct hdrlimit h;
	struct buf sink = BUF_INIT(0);
	long long hops;

	hdrlimit_init(&h, n + 1, n + 1);   /* nothing to cut: only counting */
	hdrlimit_feed(&h, p, n, &sink);
	hdrlimit_end(&h, &sink);
	hops = h.hops;
	hdrlimit_free(&h);
	buf_free(&sink);
	return hops;
}
