/*
 * fuzz_mime - libFuzzer target over lib/proto/mime.c.
 *
 * The input is a message: it is parsed with small limits (depth 8, 50
 * parts) and the defaults, every IMAP view is produced, every part's
 * sections are resolved and fetched, and each part's body is transfer-
 * decoded. The cache form must round-trip to the same BODYSTRUCTURE, and
 * the input is also handed to mime_deserialize as a hostile cache blob
 * for itself. Any difference aborts; ASan/UBSan catch the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime.h"

static void
views(const char *msg, size_t n, const struct mime_limits *lim)
{
	struct mime_tree t, t2;
	struct buf a = BUF_INIT(0), b = BUF_INIT(0), ser = BUF_INIT(0);

	mime_parse(msg, n, lim, &t);
	if (t.nparts < 1 || t.nparts > lim->max_parts)
		abort();
	mime_bodystructure(&t, msg, lim, 1, &a);
	mime_bodystructure(&t, msg, lim, 0, &b);
	buf_reset(&b);
	mime_serialize(&t, &ser);
	if (mime_deserialize(ser.data, ser.len, n, lim, &t2) != 0)
		abort();
	mime_bodystructure(&t2, msg, lim, 1, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	mime_tree_free(&t2);

	for (size_t i = 0; i < t.nparts; i++) {
		const struct mime_part *p = &t.parts[i];
		if (p->body_off + p->body_len > n || p->hdr_off + p->hdr_len != p->body_off)
			abort();
		buf_reset(&a);
		mime_envelope(msg + p->hdr_off, p->hdr_len, lim, &a);
		buf_reset(&a);
		if (mime_header_get(msg + p->hdr_off, p->hdr_len, "Subject", lim, &b))
			mime_decode_words(b.data ? b.data : "", b.len, &a);
		struct buf enc = BUF_INIT(0);
		(void)mime_header_get(msg + p->hdr_off, p->hdr_len,
		    "Content-Transfer-Encoding", lim, &enc);
		buf_reset(&a);
		(void)mime_cte_decode(buf_cstr(&enc), msg + p->body_off, p->body_len, &a);
		buf_free(&enc);
	}
	/* Sections: a few fixed ones, walked over the part numbers. */
	static const char *const specs[] = { "", "1", "2", "1.1", "1.2.3", "TEXT",
	    "HEADER", "1.MIME", "2.HEADER", "1.1.TEXT", "3.HEADER.FIELDS (From To)",
	    "1.HEADER.FIELDS.NOT (Subject)", "2.1.MIME" };
	for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
		struct mime_section sec;
		const char *err;
		if (mime_section_resolve(&t, specs[k], strlen(specs[k]), &sec, &err) == 0) {
			if (sec.off + sec.len > n)
				abort();
			buf_reset(&a);
			mime_section_fetch(msg, &sec, &a);
		}
		mime_section_free(&sec);
	}
	/* The message's first line as a section spec (garbage mostly). */
	const char *nl = memchr(msg, '\n', n < 200 ? n : 200);
	if (nl) {
		struct mime_section sec;
		const char *err;
		if (mime_section_resolve(&t, msg, (size_t)(nl - msg), &sec, &err) == 0) {
			buf_reset(&a);
			mime_section_fetch(msg, &sec, &a);
		}
		mime_section_free(&sec);
	}
	/* The input as a cache blob for itself. */
	if (mime_deserialize(msg, n, n, lim, &t2) == 0) {
		buf_reset(&a);
		mime_bodystructure(&t2, msg, lim, 1, &a);
		mime_tree_free(&t2);
	}
	mime_tree_free(&t);
	buf_free(&a);
	buf_free(&b);
	buf_free(&ser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits small = { 8, 50, 100, 4096 };
	struct mime_limits def = MIME_LIMITS_DEFAULT;

	views((const char *)data, size, &small);
	views((const char *)data, size, &def);
	return 0;
}
