/*
 * fuzz_smtpc - libFuzzer target over the client-side parsers of
 * lib/proto/smtpc.c: a server's reply stream (what the smtp and lmtp
 * agents read), the EHLO/LHLO keyword list and LMTP nexthops.
 *
 * The input is parsed as a stream of replies once whole and once in
 * pieces whose sizes come from the first byte; both runs must give the
 * same replies (code and text) and stop at the same place, else abort().
 * Each reply's lines go through smtpc_ext_parse, and the input as a
 * string through smtpc_lmtp_dest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/strv.h"
#include "proto/smtpc.h"

/* Parse in[0..n) fed in pieces of step bytes (0: whole); replies appended
 * to out as "code|text\n", the final state as "E" or "M". */
static void
run(const char *in, size_t n, size_t step, struct buf *out)
{
	struct smtpc_reply r;
	struct buf pending = BUF_INIT(0);
	size_t pos = 0, used;
	enum smtpc_result rc = SMTPC_NEED_MORE;

	memset(&r, 0, sizeof(r));
	smtpc_reply_init(&r, 1);
	while (pos < n && rc != SMTPC_ERROR) {
		size_t c = step == 0 || step > n - pos ? n - pos : step;

		buf_append(&pending, in + pos, c);
		pos += c;
		for (;;) {
			rc = smtpc_reply_parse(&r, buf_cstr(&pending), pending.len, &used);
			if (used > pending.len)
				abort();
			buf_consume(&pending, used);
			if (rc != SMTPC_DONE)
				break;
			if (r.code < 200 || r.code > 599)
				abort();
			{
				long long size;

				(void)smtpc_ext_parse(r.lines, &size);
				if (size < 0)
					abort();
			}
			buf_printf(out, "%d|%s\n", r.code, buf_cstr(&r.text));
			smtpc_reply_init(&r, 1);
		}
	}
	buf_puts(out, rc == SMTPC_ERROR ? "E" : "M");
	buf_free(&pending);
	smtpc_reply_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct buf a = BUF_INIT(0), b = BUF_INIT(0);
	struct smtpc_dest d;
	char *s;

	if (size == 0)
		return 0;
	run(in + 1, size - 1, 0, &a);
	run(in + 1, size - 1, (size_t)(data[0] % 17) + 1, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	s = strndup(in, size);
	if (s != NULL && smtpc_lmtp_dest(s, 24, &d) == 0) {
		if (d.kind == SMTPC_DEST_UNIX ? d.path == NULL :
		    (d.host == NULL || d.port < 1 || d.port > 65535))
			abort();
		smtpc_dest_free(&d);
	}
	free(s);
	buf_free(&a);
	buf_free(&b);
	return 0;
}
