/*
 * line - split bounded lines out of a byte stream (pure, no I/O).
 *
 * A line ends at LF; CRs right before the LF are dropped ("X\r\n", "X\n"
 * and "X\r\r\n" are all "X"). A line longer than max is consumed up to its
 * LF and reported once as LINE_TOO_LONG; while it is being skipped the
 * caller may drop what it buffered, so it never holds more than max plus
 * one read. Raw bytes allowed before the LF are max + 2 (room for CRs), so
 * a line's fate does not depend on how the stream was split into reads.
 * A line ended by a bare LF (no CR right before it) is flagged (bare_lf),
 * so SMTP can refuse it (smtpd_forbid_bare_newline = reject) before
 * running it. The one line splitter of the tree: conn_read_line(), the
 * SMTP command lines (smtpd, sendmail -bs) and the fuzz targets.
 */
#ifndef POSTERN_LINE_H
#define POSTERN_LINE_H

#include <stddef.h>

struct line_splitter {
	int skipping;            /* inside an over-long line */
	int bare_lf;             /* after DONE: the line ended in LF without CR */
};

enum line_result {
	LINE_DONE,               /* a line of *len_r bytes at in[0] */
	LINE_NEED_MORE,          /* *consumed_r bytes (over-long) may go */
	LINE_TOO_LONG,           /* an over-long line ended: drop *consumed_r */
};

/* *consumed_r: bytes to drop from the front of in (line and terminator
 * on DONE). */
enum line_result line_split(struct line_splitter *ls, size_t max,
    const char *in, size_t n, size_t *consumed_r, size_t *len_r);

#endif
