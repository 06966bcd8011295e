/*
 * fuzz_pop3 - libFuzzer target over lib/proto/pop3.c and util/line.c.
 *
 * The input is split into lines as pop3d does (line_split, the command
 * limit), each line goes through pop3_cmd_parse and, for each argument,
 * pop3_number. The whole input is also encoded as a message (RETR with
 * dot-stuffing, TOP with a line count from the first byte) once whole and
 * once in pieces: both runs must give the same bytes, the unstuffed run
 * must be exactly pop3_wire_size() long, and a stuffed message must never
 * contain a line that is a lone "." (the end-of-response marker), else
 * abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pop3.h"
#include "util/line.h"

static void
fuzz_lines(const char *in, size_t n)
{
	struct line_splitter ls = { 0 };
	size_t pos = 0;

	while (pos < n) {
		size_t used, len;
		enum line_result r = line_split(&ls, POP3_LINE_MAX, in + pos, n - pos,
		    &used, &len);
		if (used > n - pos || (r == LINE_DONE && len > POP3_LINE_MAX))
			abort();
		if (r == LINE_DONE) {
			struct pop3_cmd cmd;
			const char *err;
			if (pop3_cmd_parse(in + pos, len, &cmd, &err) == POP3_DONE) {
				for (int i = 0; i < cmd.argc; i++) {
					unsigned long v;
					if (cmd.argv[i].p < in + pos
					    || cmd.argv[i].p + cmd.argv[i].len > in + pos + len)
						abort();
					(void)pop3_number(&cmd.argv[i], &v);
				}
			}
		}
		pos += used;
		if (r == LINE_NEED_MORE)
			break;
	}
}

static void
encode(const char *in, size_t n, size_t step, int stuff, long top, struct buf *out)
{
	struct pop3_enc e;
	long long total = 0;

	pop3_enc_init(&e, stuff, top);
	for (size_t pos = 0; pos < n;) {
		size_t len = step && n - pos > step ? step : n - pos;
		long long r = pop3_enc_feed(&e, in + pos, len, out);
		if (r < 0)
			abort();
		total += r;
		pos += len;
	}
	total += pop3_enc_finish(&e, out);
	if (total != (long long)out->len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	long top = size > 0 ? (long)(data[0] % 8) - 1 : -1;
	size_t step = size > 1 ? (size_t)data[1] % 13 + 1 : 1;
	struct buf a = BUF_INIT(0), b = BUF_INIT(0), plain = BUF_INIT(0);

	fuzz_lines(in, size);
	encode(in, size, 0, 1, top, &a);
	encode(in, size, step, 1, top, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	encode(in, size, step, 0, -1, &plain);
	if ((long long)plain.len != pop3_wire_size(in, size))
		abort();
	/* No lone "." line in a stuffed body: it would end the response. */
	for (size_t i = 0; i + 3 <= a.len; i++) {
		int bol = i == 0 || a.data[i - 1] == '\n';
		if (bol && memcmp(a.data + i, ".\r\n", 3) == 0)
			abort();
	}
	buf_free(&a);
	buf_free(&b);
	buf_free(&plain);
	return 0;
}
