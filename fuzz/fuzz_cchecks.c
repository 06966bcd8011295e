/*
 * fuzz_cchecks - libFuzzer target over lib/mail/cchecks.c: header_checks,
 * mime_header_checks, nested_header_checks and body_checks on arbitrary
 * content (MIME boundaries, attached messages, long lines). The first
 * byte says where to cut the content in two; one table for every class
 * matches often and fires every action. Whatever the input, the output
 * is the same however the content was cut, and nothing crashes or leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/cchecks.h"
#include "mail/maptab.h"
#include "util/alloc.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rules[] =
    "/^Subject: (.)/ REPLACE Subject: $1$1\n"
    "/^X-I/ IGNORE\n/^X-P/ PREPEND X-Q: 1\n/^X-H/ HOLD h\n/^X-W/ WARN\n"
    "/^Content-Type:.*zip/ REJECT no\n/^--/ INFO boundary\n/^body-d/ DISCARD\n"
    "/^X-U/ FROB\n";

static struct maptab *tab;

static int
lookup(void *ctx, enum cc_class c, const char *key, char **value_r)
{
	(void)ctx;
	(void)c;
	return maptab_lookup(tab, key, value_r);
}

static void
report(void *ctx, const char *action, enum cc_class c, const char *what,
    const char *text)
{
	(void)ctx;
	(void)action;
	(void)c;
	(void)what;
	(void)text;
}

static void
run(const char *p, size_t n, size_t cut, struct buf *out)
{
	static const int has[CC_NCLASS] = { 1, 1, 1, 1 };
	struct cchecks c;

	cchecks_init(&c, has, 300, 64, lookup, report, NULL);
	cchecks_feed(&c, p, cut, out);
	cchecks_feed(&c, p + cut, n - cut, out);
	cchecks_end(&c, out);
	cchecks_free(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a = BUF_INIT(0), b = BUF_INIT(0);
	char *err = NULL;
	size_t cut;

	if (tab == NULL && (tab = maptab_parse(MAPTAB_REGEXP, "f", rules,
	    strlen(rules), &err)) == NULL)
		abort();
	if (size < 1)
		return 0;
	cut = data[0] % size;
	run((const char *)data + 1, size - 1, 0, &a);
	run((const char *)data + 1, size - 1, cut > 0 ? cut - 1 : 0, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	buf_free(&a);
	buf_free(&b);
	return 0;
}
