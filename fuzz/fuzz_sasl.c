/*
 * fuzz_sasl - libFuzzer target for the SASL server parsers (PLAIN, LOGIN)
 * and the bounded base64 codec they use.
 *
 * First byte: bit 0 picks PLAIN or LOGIN. The rest is split at '\n' into
 * the initial response and the client's following lines. Checks: a
 * decode/encode round trip is exact, and credentials after SASL_DONE are
 * within the documented bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "proto/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_b64(const char *p, size_t n)
{
	struct buf dec = BUF_INIT(0), enc = BUF_INIT(0);

	if (sasl_b64_decode(p, n, &dec, SASL_LINE_MAX) == 0) {
		if (sasl_b64_encode(dec.data, dec.len, &enc) != 0)
			abort();
		/* The decoder refuses non-canonical input, so re-encoding
		 * must give back exactly what was decoded. */
		if (enc.len != n || (n > 0 && memcmp(enc.data, p, n) != 0))
			abort();
	}
	buf_free(&dec);
	buf_free(&enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sasl_server s;
	struct buf ch = BUF_INIT(0);
	const char *p, *end, *nl, *err = NULL;
	enum sasl_result r;

	if (size == 0 || size > 8192)
		return 0;
	p = (const char *)data + 1;
	end = (const char *)data + size;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL)
		nl = end;
	check_b64(p, (size_t)(nl - p));

	sasl_server_init(&s);
	r = sasl_server_start(&s, (data[0] & 1) ? "LOGIN" : "PLAIN",
	    nl > p ? p : NULL, (size_t)(nl - p), &ch, &err);
	while (r == SASL_CONTINUE && nl < end) {
		p = nl + 1;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		buf_reset(&ch);
		r = sasl_server_step(&s, p, (size_t)(nl - p), &ch, &err);
	}
	if (r == SASL_DONE) {
		if (s.creds.authcid == NULL || s.creds.passwd == NULL ||
		    strlen(s.creds.authcid) > SASL_NAME_MAX ||
		    strlen(s.creds.passwd) > SASL_PASS_MAX)
			abort();
	}
	sasl_server_reset(&s);
	buf_free(&ch);
	return 0;
}
