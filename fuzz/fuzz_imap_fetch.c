/*
 * fuzz_imap_fetch - libFuzzer target over lib/proto/imap_fetch.c.
 *
 * The input's first line is a FETCH attribute list and modifiers (what
 * follows "a UID FETCH 1 "), the rest is a message. The command goes
 * through the IMAP parser and imap_fetch_parse; when accepted, the reply
 * is written for the message as given and for its CRLF form, through a
 * load() callback. Both replies must be byte-identical (every count and
 * partial is in the wire form, whatever the storage), and a client's
 * walk over the reply (literals skipped by their announced size) must
 * end exactly at its final CRLF with balanced parentheses; else abort().
 * ASan/UBSan catch reads outside the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap_fetch.h"
#include "proto/mime.h"

struct stored {
	const char *data;
	size_t len;
	struct mime_tree tree;
};

static int
load(struct imap_view *v, unsigned want, void *ctx)
{
	struct stored *s = ctx;

	v->data = s->data;
	v->len = s->len;
	if (want & IMAP_VIEW_TREE)
		v->tree = &s->tree;
	return 0;
}

/* The walk a client makes: literals by count, quoted strings, parens. */
static void
check_framing(const struct buf *b)
{
	size_t i = 0;
	int depth = 0;

	if (b->len < 4 || memcmp(b->data, "* ", 2) != 0)
		abort();
	while (i < b->len) {
		char c = b->data[i];
		if (c == '"') {
			for (i++; i < b->len && b->data[i] != '"'; i++)
				if (b->data[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (c == '{') {
			char *end;
			unsigned long long n = strtoull(b->data + i + 1, &end, 10);
			if (*end != '}' || end[1] != '\r' || end[2] != '\n')
				abort();
			i = (size_t)(end + 3 - b->data);
			if (n > b->len - i)
				abort();
			i += n;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && --depth < 0)
			abort();
		else if (c == '\r' || c == '\n') {
			if (c != '\r' || i + 2 != b->len || b->data[i + 1] != '\n'
			    || depth != 0)
				abort();
			return;
		}
		i++;
	}
	abort();
}

static int
write_one(const struct imap_fetch_req *req, const char *msg, size_t n,
    struct buf *out)
{
	static char *const kw[] = { "$Forwarded", NULL };
	struct stored s = { msg, n, { 0 } };
	struct imap_view v = {
		.seq = 1, .uid = 9, .flags = 5, .recent = 1, .keywords = kw,
		.modseq = 3, .size = mime_wire_size(msg, n), .internaldate = 1,
		.load = load, .load_ctx = &s,
	};
	const char *err;

	mime_parse(msg, n, NULL, &s.tree);
	int r = imap_fetch_write(req, &v, IMAP_FW_FLAGS | IMAP_FW_MODSEQ, out,
	    &err);
	mime_tree_free(&s.tree);
	if (r == 0 && out->len > 0)
		check_framing(out);
	else if (r == -2 && (out->len != 0 || err == NULL))
		abort();
	else if (r == -1)
		abort();                /* load() never fails here */
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_limits lim = IMAP_LIMITS_DEFAULT;
	const char *in = (const char *)data;
	const char *nl = memchr(in, '\n', size);
	size_t cmdlen = nl ? (size_t)(nl - in) : size;
	const char *msg = nl ? nl + 1 : in + size;
	size_t msglen = size - (size_t)(msg - in);
	struct buf cmd = BUF_INIT(0), a = BUF_INIT(0), b = BUF_INIT(0);
	struct buf crlf = BUF_INIT(0);

	if (cmdlen > 4096)
		return 0;
	buf_puts(&cmd, "a UID FETCH 1 ");
	buf_append(&cmd, in, cmdlen);
	buf_puts(&cmd, "\r\n");

	struct imap_parser *p = imap_parser_new(&lim);
	size_t used;
	if (imap_parse(p, cmd.data, cmd.len, &used) == IMAP_DONE) {
		const struct imap_command *c = imap_parser_command(p);
		struct imap_fetch_req req;
		const char *err;
		if (imap_fetch_parse(c, 2, 1, &req, &err) == 0) {
			int r1 = write_one(&req, msg, msglen, &a);
			mime_to_crlf(msg, msglen, &crlf);
			int r2 = write_one(&req, crlf.data, crlf.len, &b);
			if (r1 != r2 || a.len != b.len
			    || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
				abort();
			imap_fetch_req_free(&req);
		} else if (err == NULL || req.items != NULL)
			abort();
	}
	imap_parser_free(&p);
	buf_free(&cmd);
	buf_free(&a);
	buf_free(&b);
	buf_free(&crlf);
	return 0;
}
