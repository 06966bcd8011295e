/*
 * fuzz_imap - libFuzzer target over lib/proto/imap.c.
 *
 * The input is a client byte stream. It is parsed whole, one byte at a
 * time, in pieces whose size comes from the first byte, and (for short
 * inputs) split in two at every position; every run must log the same
 * events (commands with their token trees, literal requests, errors with
 * tag and reason), else abort(). Synchronizing literals are accepted up
 * to 64 bytes and refused above. Atoms also go through the sequence-set
 * and FETCH-attribute helpers, and every string token must survive
 * imap_quote() and a parse back unchanged. The first byte's top bit
 * selects the untagged (ManageSieve) grammar.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap.h"

/* untagged (ManageSieve) when the first byte's top bit is set */
static struct imap_limits lim = { 512, 256, 1024, 8, 64, 0, 0 };

static void
dump(const struct imap_command *c, size_t i, struct buf *o)
{
	const struct imap_arg *a = &c->args[i];

	buf_printf(o, "%d:%zu:", (int)a->kind, a->len);
	buf_append(o, a->str, a->len);
	if (a->kind == IMAP_ARG_LIST) {
		buf_putc(o, '(');
		size_t j = i + 1;
		for (size_t k = 0; k < a->nchildren; k++, j = c->args[j].next) {
			if (j >= c->nargs)
				abort();
			dump(c, j, o);
		}
		buf_putc(o, ')');
	}
}

static void
helpers(const struct imap_command *c)
{
	for (size_t i = 1; i < c->nargs; i++) {
		const struct imap_arg *a = &c->args[i];
		if (a->kind == IMAP_ARG_ATOM) {
			struct imap_seqset set;
			const char *err;
			if (imap_seqset_parse(a->str, a->len, &set, &err) == 0) {
				uint64_t it = 0;
				uint32_t v;
				int count = 0;
				(void)imap_seqset_resolve(&set, 1000, 0);
				while (count++ < 2000 && imap_seqset_next(&set, &it, &v))
					if (!imap_seqset_contains(&set, v))
						abort();
				imap_seqset_free(&set);
			}
			struct imap_fetch_att fa;
			(void)imap_fetch_att_split(a->str, a->len, &fa, &err);
		}
		if (imap_arg_is_string(a) && a->len < 200) {
			/* quote, parse back, compare */
			struct buf line = BUF_INIT(0);
			buf_puts(&line, "t X ");
			imap_quote(&line, a->str, a->len, IMAP_Q_ATOM);
			buf_puts(&line, "\r\n");
			struct imap_parser *p = imap_parser_new(NULL);
			size_t pos = 0, used;
			enum imap_result r;
			while ((r = imap_parse(p, line.data + pos, line.len - pos, &used)) == IMAP_LITERAL) {
				imap_literal_accept(p);
				pos += used;
			}
			if (r != IMAP_DONE)
				abort();
			const struct imap_command *c2 = imap_parser_command(p);
			const struct imap_arg *b = imap_arg_child(c2, 0, 0);
			if (b == NULL || b->len != a->len || memcmp(b->str, a->str, a->len) != 0)
				abort();
			imap_parser_free(&p);
			buf_free(&line);
		}
	}
}

/* Parse in[0..n) with chunk boundaries at cut (if any) and every step
 * bytes (0 = none); log events. */
static void
run(const char *in, size_t n, size_t step, size_t cut, int check, struct buf *o)
{
	struct imap_parser *p = imap_parser_new(&lim);
	size_t pos = 0;

	while (pos < n) {
		size_t len = n - pos, used;
		if (step && len > step)
			len = step;
		if (cut > pos && cut - pos < len)
			len = cut - pos;
		enum imap_result r = imap_parse(p, in + pos, len, &used);
		if (used > len || (r == IMAP_NEED_MORE && used != len))
			abort();
		pos += used;
		switch (r) {
		case IMAP_DONE: {
			const struct imap_command *c = imap_parser_command(p);
			buf_printf(o, "D%s %s ", c->tag, c->name);
			dump(c, 0, o);
			if (check)
				helpers(c);
			break;
		}
		case IMAP_LITERAL:
			buf_printf(o, "L%llu", (unsigned long long)imap_parser_literal_size(p));
			if (imap_parser_literal_size(p) <= 64)
				imap_literal_accept(p);
			else
				imap_literal_reject(p);
			break;
		case IMAP_ERROR:
			buf_printf(o, "E%s %s %d", imap_parser_tag(p) ? imap_parser_tag(p) : "*",
			    imap_parser_error(p), imap_parser_must_close(p));
			break;
		case IMAP_NEED_MORE:
			break;
		}
		buf_putc(o, '\n');
	}
	imap_parser_free(&p);
}

static void
same(const struct buf *a, const struct buf *b)
{
	if (a->len != b->len || (a->len && memcmp(a->data, b->data, a->len) != 0))
		abort();
}

/* Drop the blank lines NEED_MORE left, so logs of different splits compare. */
static void
squeeze(struct buf *b)
{
	size_t w = 0;

	for (size_t i = 0; i < b->len; i++)
		if (!(b->data[i] == '\n' && (w == 0 || b->data[w - 1] == '\n')))
			b->data[w++] = b->data[i];
	b->len = w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t step = (size_t)(data[0] % 13) + 2;
	lim.untagged = (data[0] & 0x80) != 0;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	struct buf whole = BUF_INIT(0), other = BUF_INIT(0);

	run(in, n, 0, 0, 1, &whole);
	squeeze(&whole);
	run(in, n, 1, 0, 0, &other);
	squeeze(&other);
	same(&whole, &other);
	buf_reset(&other);
	run(in, n, step, 0, 0, &other);
	squeeze(&other);
	same(&whole, &other);
	if (n <= 256)
		for (size_t cut = 1; cut < n; cut++) {
			buf_reset(&other);
			run(in, n, 0, cut, 0, &other);
			squeeze(&other);
			same(&whole, &other);
		}
	buf_free(&whole);
	buf_free(&other);
	return 0;
}
