/*
 * test_data - read a file of t/data/ (under $POSTERN_SRCDIR, which ctest
 * sets) for a unit test: whole, at most 1 MiB, NUL-terminated. Fails the
 * test when the file is missing. The caller frees the result.
 */
#ifndef POSTERN_TEST_DATA_H
#define POSTERN_TEST_DATA_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static inline char *
test_data_load(const char *dir, const char *name, size_t *len)
{
	const char *src = getenv("POSTERN_SRCDIR");
	char path[1024];

	snprintf(path, sizeof(path), "%s/t/data/%s/%s", src ? src : ".", dir,
	    name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	char *b = malloc(1 << 20);
	ck_assert_ptr_nonnull(b);
	*len = fread(b, 1, (1 << 20) - 1, f);
	fclose(f);
	b[*len] = '\0';
	return b;
}

#endif
