/*
 * fuzz_smtp - libFuzzer target over the SMTP parsers of lib/proto/smtp.c.
 *
 * The input is split into command lines exactly as smtpd does; each line
 * goes through smtp_cmd_parse, smtp_cmd_args_ok and both ESMTP parameter
 * parsers. The whole input is also fed to the DATA parser once whole and
 * once in pieces whose sizes come from the input's first byte; both runs
 * must agree on result, consumed count, content and size (the parser's
 * split-independence is what keeps SMTP smuggling out), else abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp.h"

static void
fuzz_commands(const char *in, size_t n)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_line_parser lp = { 0 };
	size_t pos = 0;

	lim.line_length_limit = 512;
	while (pos < n) {
		size_t used, len;
		enum smtp_result r = smtp_line_parse(&lp, &lim, in + pos, n - pos,
		    &used, &len);
		if (used > n - pos || (r == SMTP_DONE && len > lim.line_length_limit))
			abort();
		if (r == SMTP_DONE) {
			struct smtp_cmd cmd;
			const char *err;
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
		if (r == SMTP_NEED_MORE)
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
data_run(const char *in, size_t n, size_t step, struct run *res)
{
	struct smtp_limits lim = SMTP_LIMITS_DEFAULT;
	struct smtp_data d;
	size_t pos = 0;

	lim.max_size = 4096;
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
	if (res->out.len > 4096)
		abort();
}

static void
fuzz_data(const char *in, size_t n, size_t step)
{
	struct run a, b;

	data_run(in, n, 0, &a);
	data_run(in, n, step, &b);
	if (a.r != b.r || a.consumed != b.consumed || a.size != b.size
	    || a.too_big != b.too_big || a.out.len != b.out.len
	    || (a.out.len > 0 && memcmp(a.out.data, b.out.data, a.out.len) != 0))
		abort();
	buf_free(&a.out);
	buf_free(&b.out);
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
	fuzz_data(in, size - 1, step);
	return 0;
}
