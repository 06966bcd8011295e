/*
 * line - bounded line splitting; see line.h. Invariant: the result for a
 * stream is the same whatever the read boundaries (test_line.c checks it
 * byte by byte).
 */
#include <string.h>

#include "util/line.h"

enum line_result
line_split(struct line_splitter *ls, size_t max, const char *in, size_t n,
    size_t *consumed_r, size_t *len_r)
{
	size_t raw_max = max + 2;
	const char *lf = n > 0 ? memchr(in, '\n', n) : NULL;

	*len_r = 0;
	ls->bare_lf = 0;
	if (ls->skipping) {
		if (lf == NULL) {
			*consumed_r = n;
			return LINE_NEED_MORE;
		}
		ls->skipping = 0;
		*consumed_r = (size_t)(lf - in) + 1;
		return LINE_TOO_LONG;
	}
	if (lf == NULL) {
		if (n > raw_max) {
			ls->skipping = 1;
			*consumed_r = n;
		} else {
			*consumed_r = 0;
		}
		return LINE_NEED_MORE;
	}
	size_t raw = (size_t)(lf - in);
	*consumed_r = raw + 1;
	if (raw > raw_max)
		return LINE_TOO_LONG;
	ls->bare_lf = raw == 0 || in[raw - 1] != '\r';
	while (raw > 0 && in[raw - 1] == '\r')
		raw--;
	if (raw > max)
		return LINE_TOO_LONG;
	*len_r = raw;
	return LINE_DONE;
}
