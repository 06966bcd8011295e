/*
 * imap_search - SEARCH (RFC 3501/9051 6.4.4, every key), ESEARCH and
 * SEARCHRES (RFC 4731, 5182), CONDSTORE's MODSEQ key (RFC 7162), SORT and
 * THREAD (RFC 5256: ORDEREDSUBJECT, REFERENCES). Pure: a search is
 * compiled once per command into a tree and evaluated against struct
 * imap_view (imap_view.h), loading bytes only when a key needs them.
 *
 * Text keys (SUBJECT, FROM, BODY, TEXT, HEADER ...) match case-
 * insensitively on UTF-8 after RFC 2047 decoding of header text and
 * quoted-printable / base64 decoding of text/... body parts (charset
 * converted to UTF-8). CHARSET US-ASCII and UTF-8 are accepted; any other
 * gets NO [BADCHARSET (US-ASCII UTF-8)]. Nesting of parentheses, OR and
 * NOT is bounded (IMAP_SEARCH_DEPTH_MAX).
 */
#ifndef POSTERN_IMAP_SEARCH_H
#define POSTERN_IMAP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "proto/imap.h"
#include "proto/imap_view.h"

#define IMAP_SEARCH_DEPTH_MAX 32

/* Facts about the selected mailbox that parsing needs. */
struct imap_search_env {
	uint32_t max_seq;          /* messages in the session ("*" for seqs) */
	uint32_t max_uid;          /* UID of the last message ("*" for UIDs) */
	const struct imap_seqset *saved;  /* SEARCHRES "$" (UIDs, resolved);
	                            * NULL when none was saved: "$" is empty */
	int utf8;                  /* UTF8=ACCEPT enabled: CHARSET not allowed */
};

/* ESEARCH RETURN options (bits); 0 = a plain "* SEARCH" reply. */
#define IMAP_SR_MIN   1u
#define IMAP_SR_MAX   2u
#define IMAP_SR_ALL   4u
#define IMAP_SR_COUNT 8u
#define IMAP_SR_SAVE  16u
#define IMAP_SR_ESEARCH 32u        /* RETURN given (even "RETURN ()") */

struct imap_search;

/* Parse "[RETURN (...)] [CHARSET x] keys..." starting at child k of
 * c->args[0] (for SORT/THREAD pass the index after their own arguments
 * and allow_return 0; their charset is mandatory and comes first:
 * charset_first 1). 0; -1 syntax (*err_r for "tag BAD"); -2 unknown
 * charset (*err_r for "tag NO [BADCHARSET (US-ASCII UTF-8)] ..."). */
int imap_search_parse(const struct imap_command *c, size_t k,
    const struct imap_search_env *env, int allow_return, int charset_first,
    struct imap_search **s_r, const char **err_r);
void imap_search_free(struct imap_search **s);

/* IMAP_VIEW_* bits the keys may need (0: flags/sizes/dates only). */
unsigned imap_search_needs(const struct imap_search *s);
unsigned imap_search_return(const struct imap_search *s);
/* IMAP4rev2 (RFC 9051 6.4.4): SEARCH always answers with ESEARCH, a
 * search without RETURN as if it had "RETURN (ALL)". Call after
 * imap_search_parse for sessions that enabled IMAP4rev2. */
void imap_search_rev2(struct imap_search *s);
/* 1 if a MODSEQ key was used: the reply carries (MODSEQ highest-match). */
int imap_search_uses_modseq(const struct imap_search *s);

/* 1 match, 0 no match, -1 the message could not be loaded. */
int imap_search_match(struct imap_search *s, struct imap_view *v);

/* Write the untagged reply for the matched views (in sequence order):
 * "* SEARCH 2 5 9[ (MODSEQ n)]\r\n" or, with RETURN,
 * "* ESEARCH (TAG \"t\") [UID] MIN 2 MAX 9 COUNT 3 ALL 2,5,9\r\n".
 * uid: UID SEARCH (numbers are UIDs). */
void imap_search_write(const struct imap_search *s, const char *tag, int uid,
    struct imap_view *const *matched, size_t n, struct buf *out);

/* What RETURN (SAVE) stores as "$" (RFC 5182 2.4): the UIDs of all the
 * matched views, or only of the MIN and/or MAX ones when those were the
 * only other options. *out is overwritten (free with imap_seqset_free);
 * empty when nothing matched. Ascending UIDs in matched assumed. */
void imap_search_saved(const struct imap_search *s,
    struct imap_view *const *matched, size_t n, struct imap_seqset *out);

/* --- SORT (RFC 5256) --------------------------------------------------- */

struct imap_sort;

/* Parse "(criteria...)" at child k; *next_k is where the charset and the
 * search keys begin (pass it to imap_search_parse with charset_first). */
int imap_sort_parse(const struct imap_command *c, size_t k,
    struct imap_sort **so_r, size_t *next_k, const char **err_r);
void imap_sort_free(struct imap_sort **so);
unsigned imap_sort_needs(const struct imap_sort *so);
/* Sort views in place (stable; ties by sequence number). Views that fail
 * to load sort as if their fields were empty. */
void imap_sort_run(const struct imap_sort *so, struct imap_view **views,
    size_t n);
/* "* SORT 3 1 2\r\n" (UIDs if uid). */
void imap_sort_write(int uid, struct imap_view *const *views, size_t n,
    struct buf *out);

/* --- THREAD (RFC 5256) ------------------------------------------------- */

enum imap_thread_alg { IMAP_THREAD_ORDEREDSUBJECT, IMAP_THREAD_REFERENCES };

/* The algorithm atom at child k: 0 or -1 (*err_r). */
int imap_thread_parse(const struct imap_command *c, size_t k,
    enum imap_thread_alg *alg_r, const char **err_r);
/* "* THREAD (1 2)(3 (4)(5))\r\n" for the matched views. */
void imap_thread_write(enum imap_thread_alg alg, int uid,
    struct imap_view *const *views, size_t n, struct buf *out);

/* RFC 5256 base subject of s[0..n) (RFC 2047-decoded, UTF-8, upper-
 * cased for comparison), appended to out; *is_reply_r (may be NULL) is 1
 * when a "Re:"/"Fwd:"/"[fwd: ]" was removed. */
void imap_base_subject(const char *s, size_t n, struct buf *out, int *is_reply_r);

#endif
