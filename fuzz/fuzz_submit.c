/*
 * fuzz_submit - libFuzzer target for the local-submission header code
 * (lib/mail/submit.c): header extent, -t recipient extraction and the
 * header rewrite that adds Date:, Message-ID:, From: and drops Bcc:.
 *
 * Checks: the extent never passes the input or the limit; a rewritten
 * header never keeps a Bcc: field and never contains an empty line (which
 * would move header text into the body).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/strv.h"
#include "mail/submit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
has_bcc(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (n - i >= 4 && strncasecmp(p + i, "bcc:", 4) == 0)
			return 1;
		while (i < n && p[i] != '\n')
			i++;
		i++;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t len = 0, limit = 4096;
	struct submit_info si;
	struct submit_out out;
	char *err = NULL;

	if (size > 65536)
		return 0;
	if (submit_header_extent(p, size, 1, limit, &len) != 1)
		abort();   /* at end of input the extent is always known */
	if (len > size || len > limit)
		abort();

	memset(&si, 0, sizeof(si));
	si.extract = 1;
	si.sender = "user@example.test";
	si.fullname = "A User";
	si.origin = "example.test";
	si.hostname = "mx.example.test";
	si.mail_name = "Postern";
	si.queue_id = "4dQzB5XrbHzFk";
	si.uid = 1000;
	si.now = 1700000000;
	if (submit_header_rewrite(p, len, &si, &out, &err) == 0) {
		if (has_bcc(out.header.data ? out.header.data : "", out.header.len))
			abort();
		if (out.header.len > 0 && memmem(out.header.data, out.header.len, "\n\n", 2))
			abort();
	}
	free(err);
	submit_out_free(&out);
	return 0;
}
