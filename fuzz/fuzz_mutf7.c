/*
 * fuzz_mutf7 - libFuzzer target over lib/proto/mutf7.c: round-trip
 * properties. Input accepted as modified UTF-7 must decode to valid UTF-8
 * that encodes back to exactly the input (canonical form); input that is
 * valid UTF-8 must encode and decode back to itself; a refused conversion
 * leaves the output untouched. Anything else aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf a = BUF_INIT(0), b = BUF_INIT(0);

	buf_puts(&a, "x");
	if (mutf7_to_utf8(s, size, &a) == 0) {
		if (!utf8_valid(a.data + 1, a.len - 1) || !mutf7_valid(s, size))
			abort();
		if (utf8_to_mutf7(a.data + 1, a.len - 1, &b) != 0 || b.len != size
		    || (size && memcmp(b.data, s, size) != 0))
			abort();
	} else if (a.len != 1 || mutf7_valid(s, size))
		abort();
	buf_reset(&a);
	buf_reset(&b);
	if (utf8_valid(s, size)) {
		if (utf8_to_mutf7(s, size, &a) != 0 || mutf7_to_utf8(a.data, a.len, &b) != 0
		    || b.len != size || (size && memcmp(b.data, s, size) != 0))
			abort();
	} else if (utf8_to_mutf7(s, size, &a) != -1 || a.len != 0)
		abort();
	buf_free(&a);
	buf_free(&b);
	return 0;
}
