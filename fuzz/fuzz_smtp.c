/*
 * fuzz_smtp - libFuzzer target over the SMTP parsers of lib/proto/smtp.c
 * and the header limits of lib/mail/hdrlimit.c.
 *
 * The input is split into command lines exactly as smtpd does; each line
 * goes through smtp_cmd_parse, smtp_cmd_args_ok, both ESMTP parameter
 * parsers and smtp_bdat_args, and a line's bare-LF flag must match its
 * terminator. The whole input is also fed to the DATA parser (with
 * smtpd_forbid_bare_newline = reject when bit 3 of the first byte is set),
 * to the BDAT chunk parser and to the header limiter, each once whole and
 * once in pieces whose sizes come from the input's first byte; both runs
 * must agree on result, consumed count, content and size (the parsers'
 * split-independence is what keeps SMTP smuggling out), else abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/hdrlimit.h"
#include "proto/smtp.h"
#include "util/line.h"

static void
fuzz_commands(const char *in, size_t n)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct line_splitter ls = { 0 };
	size_t pos = 0;

	lim.line_length_limit = 512;
	while (pos < n) {
		size_t used, len;
		enum line_result r = line_split(&ls, lim.line_length_limit, in + pos,
		    n - pos, &used, &len);
		if (used > n - pos || (r == LINE_DONE && len > lim.line_length_limit))
			abort();
		if (r == LINE_DONE) {
			struct smtp_cmd cmd;
			const char *err;
			long long bsize;
			int blast;
			/* The flag says exactly "LF without a CR before it". */
			if (ls.bare_lf != (used < 2 || in[pos + used - 2] != '\r'))
				abort();
			if (smtp_bdat_args(in + pos, len, &bsize, &blast) == 0
			    && (bsize < 0 || (blast != 0 && blast != 1)))
				abort();
			if (smtp_cmd_parse(in + pos, len, &cmd, &err) == SMTP_DONE) {
				(void)smtp_cmd_args_ok(&cmd, &err);
				struct smtp_mail_params mp;
				struct smtp_rcpt_params rp;
				char *perr = NULL;
				if (smtp_mail_params_parse(cmd.arg, cmd.arg_len, &lim, &mp,
				    &perr) == SMTP_DONE)
					smtp_mail_params_free(&mp);
				free(perr);
				perr = NULL;
				if (smtp_rcpt_params_parse(cmd.arg, cmd.arg_len, &lim, &rp,
				    &perr) == SMTP_DONE) {
					(void)smtp_notify_str(rp.notify);
					smtp_rcpt_params_free(&rp);
				}
				free(perr);
			}
		}
		pos += used;
		if (r == LINE_NEED_MORE)
			break;
	}
}

struct run {
	enum smtp_result r;
	size_t consumed;
	long long size;
	int too_big;
	struct buf out;
};

static void
data_run(const char *in, size_t n, size_t step, int reject, struct run *res)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_data d;
	size_t pos = 0;

	lim.max_size = 4096;
	lim.reject_bare_lf = reject;
	smtp_data_init(&d);
	buf_init(&res->out, 0);
	res->r = SMTP_NEED_MORE;
	while (pos < n) {
		size_t len = step && n - pos > step ? step : n - pos, used;
		res->r = smtp_data_parse(&d, &lim, in + pos, len, &used, &res->out);
		if (used > len || (res->r == SMTP_NEED_MORE && used != len))
			abort();
		pos += used;
		if (res->r != SMTP_NEED_MORE)
			break;
	}
	res->consumed = pos;
	res->size = d.size;
	res->too_big = d.too_big;
	if (res->out.len > 4096 || (res->r == SMTP_ERROR && !d.bare_lf))
		abort();
}

/* BDAT: every octet is a chunk octet; a piece boundary is a chunk boundary. */
static void
bdat_run(const char *in, size_t n, size_t step, struct run *res)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_data d;

	lim.max_size = 4096;
	smtp_data_init(&d);
	buf_init(&res->out, 0);
	for (size_t pos = 0; pos < n;) {
		size_t len = step && n - pos > step ? step : n - pos;
		smtp_bdat_parse(&d, &lim, in + pos, len, &res->out);
		pos += len;
	}
	smtp_bdat_end(&d, &lim, &res->out);
	res->r = SMTP_DONE;
	res->consumed = n;
	res->size = d.size;
	res->too_big = d.too_big;
	if (res->out.len > 4096 || res->size > (long long)n)
		abort();
}

/* Header limits: small ones, so the cutting is reached. */
static void
hdr_run(const char *in, size_t n, size_t step, struct run *res)
{
	struct hdrlimit h;

	hdrlimit_init(&h, 64, 16);
	buf_init(&res->out, 0);
	for (size_t pos = 0; pos < n;) {
		size_t len = step && n - pos > step ? step : n - pos;
		hdrlimit_feed(&h, in + pos, len, &res->out);
		pos += len;
	}
	hdrlimit_end(&h, &res->out);
	res->r = SMTP_DONE;
	res->consumed = n;
	res->size = h.hops;
	res->too_big = (int)h.truncated;
	if (res->out.len > n + 1)
		abort();
	hdrlimit_free(&h);
}

static void
compare(struct run *a, struct run *b)
{
	if (a->r != b->r || a->consumed != b->consumed || a->size != b->size
	    || a->too_big != b->too_big || a->out.len != b->out.len
	    || (a->out.len > 0 && memcmp(a->out.data, b->out.data, a->out.len) != 0))
		abort();
	buf_free(&a->out);
	buf_free(&b->out);
}

static void
fuzz_data(const char *in, size_t n, size_t step, int reject)
{
	struct run a, b;

	data_run(in, n, 0, reject, &a);
	data_run(in, n, step, reject, &b);
	compare(&a, &b);
	bdat_run(in, n, 0, &a);
	bdat_run(in, n, step, &b);
	compare(&a, &b);
	hdr_run(in, n, 0, &a);
	hdr_run(in, n, step, &b);
	compare(&a, &b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t step = (size_t)(data[0] % 7) + 1;
	const char *in = (const char *)data + 1;

	fuzz_commands(in, size - 1);
	fuzz_data(in, size - 1, step, (data[0] & 8) != 0);
	return 0;
}
