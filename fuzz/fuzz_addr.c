/*
 * fuzz_addr - libFuzzer target for addr_parse_path() and the helpers.
 *
 * First byte: bit 0 selects SMTPUTF8. The rest is the text after
 * "MAIL FROM:" up to the end of the line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "mail/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *end = NULL, *err = NULL;
	char *s, *addr = NULL, *local, *domain, *key, *fold;
	int utf8;

	if (size == 0 || size > 4096)
		return 0;
	utf8 = data[0] & 1;
	s = xstrndup((const char *)data + 1, size - 1);   /* stops at a NUL */
	if (addr_parse_path(s, utf8, &addr, &end, &err) == 0) {
		if (end < s || end > s + strlen(s) || end[-1] != '>')
			abort();
		if (strlen(addr) > 254)
			abort();
		/* Whatever the path parser accepts with a domain is valid. */
		addr_split(addr, &local, &domain);
		if (domain[0] != '\0' && (addr_valid(addr, utf8) != 0 ||
		    addr_valid_domain(domain, utf8) != 0))
			abort();
		key = addr_lookup_key(local, "+-");
		fold = addr_fold_domain(addr);
		if (strlen(fold) != strlen(addr))
			abort();
		free(key);
		free(fold);
		free(local);
		free(domain);
		free(addr);
	} else if (err == NULL || addr != NULL) {
		abort();
	}
	(void)addr_valid(s, utf8);
	(void)addr_valid_domain(s, utf8);
	free(s);
	return 0;
}
