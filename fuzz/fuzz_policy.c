/*
 * fuzz_policy - the policy service's reply parser: whatever the bytes,
 * no crash, a bounded answer, and parsing every prefix agrees with the
 * whole (a reply complete in a prefix is the same reply).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/policy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	char *whole = NULL, *part = NULL;
	const char *err;
	int rw = policy_reply_parse(p, size, 4096, &whole, &err);

	if (rw == 1 && strlen(whole) >= size)
		abort();
	for (size_t k = 0; k < size && k < 512; k++) {
		int rp = policy_reply_parse(p, k, 4096, &part, &err);
		if (rp == 1 && (rw != 1 || strcmp(part, whole) != 0))
			abort();
		free(part);
		part = NULL;
	}
	free(whole);
	return 0;
}
