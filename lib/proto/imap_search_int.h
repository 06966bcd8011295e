/*
 * imap_search_int - helpers shared by imap_search.c and imap_sort.c
 * (SORT and THREAD): case folding, dates, header fields of a view.
 * Internal to lib/proto; not part of the imapd contract.
 */
#ifndef POSTERN_IMAP_SEARCH_INT_H
#define POSTERN_IMAP_SEARCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "proto/imap_view.h"

/* Case-map UTF-8 s[0..n) into out (appended): ASCII, Latin-1, Latin
 * Extended-A, basic Greek and Cyrillic letters are mapped to lower case
 * (upper = 0) or upper case (upper = 1); anything else, invalid UTF-8
 * included, is copied as it is. A small table rather than towlower(3),
 * whose answer depends on the process locale. */
void imap_casemap(const char *s, size_t n, struct buf *out, int upper);

/* The end of the RFC 5322 comment that opens at s[i] ('('), nesting and
 * backslash quoting followed; n when it is not closed. */
size_t imap_skip_comment(const char *s, size_t i, size_t n);

/* An RFC 5322 Date: value (lenient: obsolete zones and 2-digit years,
 * comments). 0 with *day_r the date as written (days since the epoch,
 * the zone disregarded) and *utc_r the instant in UTC seconds; -1 if it
 * does not parse. Either pointer may be NULL. */
int imap_rfc5322_date(const char *s, size_t n, int64_t *day_r,
    int64_t *utc_r);

/* The header block of a loaded view: data up to and including the blank
 * line (the whole message when there is none). */
size_t imap_view_header_len(const struct imap_view *v);
/* First field name of v's header, unfolded (and with decode, RFC 2047-
 * decoded to UTF-8) into out (reset first): 1, or 0 when absent or v
 * cannot be loaded (out then empty). */
int imap_view_field(struct imap_view *v, const char *name, int decode,
    struct buf *out);
/* The sent date of v in UTC seconds: its Date: field, else its
 * INTERNALDATE (RFC 5256, SORT DATE and THREAD). tmp is scratch. */
int64_t imap_sent_date(struct imap_view *v, struct buf *tmp);

#endif
