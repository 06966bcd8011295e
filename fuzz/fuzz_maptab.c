/*
 * fuzz_maptab - libFuzzer target over lib/mail/maptab.c: the cidr,
 * regexp, pcre, texthash and inline table parsers and their lookups.
 * The first byte picks the type, the rest is the table text. A table
 * either parses (and then answers lookups, including of keys cut from
 * its own text, with $n expansion) or fails with an error naming
 * "src:"; never both, never neither.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/maptab.h"
#include "util/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = { "", "10.1.2.3", "2001:db8::1", "[::1]",
    "user@example.com", "A-b@Example.COM", "\n", "$1" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum maptab_type types[] = { MAPTAB_CIDR, MAPTAB_REGEXP,
	    MAPTAB_PCRE, MAPTAB_HASH };
	struct maptab *t;
	char *err = NULL, *v, *text, *nl;
	size_t i;
	int sel, r;

	if (size < 1)
		return 0;
	sel = data[0] % 5;
	text = xstrndup((const char *)data + 1, size - 1);
	if (sel == 4)
		t = maptab_parse_inline("src", text, &err);
	else
		t = maptab_parse(types[sel], "src", (const char *)data + 1, size - 1,
		    &err);
	if ((t == NULL) == (err == NULL) || (err != NULL &&
	    strncmp(err, "src", 3) != 0))
		abort();
	if (t != NULL) {
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			v = NULL;
			r = maptab_lookup(t, keys[i], &v);
			if ((r == 1) != (v != NULL))
				abort();
			free(v);
		}
		/* the text's own first line as a key */
		if ((nl = strchr(text, '\n')) != NULL)
			*nl = '\0';
		v = NULL;
		(void)maptab_lookup(t, text, &v);
		free(v);
		maptab_free(&t);
	}
	free(err);
	free(text);
	return 0;
}
