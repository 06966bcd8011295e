/*
 * imap_view - one message as the IMAP FETCH, SEARCH, SORT and THREAD code
 * sees it: the index's facts plus its bytes and MIME tree on demand.
 *
 * The session (imapd) fills the facts from the index and sets load();
 * the pure code in lib/proto calls load() only for what it needs, so a
 * FETCH FLAGS or SEARCH UNSEEN never opens a message file. Nothing here
 * does I/O itself; tests give views whose data is already set.
 */
#ifndef POSTERN_IMAP_VIEW_H
#define POSTERN_IMAP_VIEW_H

#include <stddef.h>
#include <stdint.h>

struct mime_tree;

/* What load() is asked for (bits). */
#define IMAP_VIEW_DATA 1u          /* data/len: the message bytes */
#define IMAP_VIEW_TREE 2u          /* tree (implies DATA) */

struct imap_view {
	uint32_t seq;              /* message sequence number in the session */
	uint32_t uid;
	unsigned flags;            /* MBX_SEEN ... (store/index.h) */
	int recent;                /* \Recent in this session */
	char *const *keywords;     /* NULL-terminated, never NULL */
	uint64_t modseq;
	uint64_t size;             /* RFC822.SIZE: octets of the CRLF wire form */
	int64_t internaldate;      /* seconds since the epoch */

	/* Filled by load(); NULL until then. data is the message as stored
	 * (lines may end in LF or CRLF: writers convert to CRLF); tree was
	 * parsed from exactly these bytes. Owned by the session. */
	const char *data;
	size_t len;
	const struct mime_tree *tree;
	/* 0, or -1 when the message cannot be read (expunged meanwhile,
	 * I/O error): the caller then treats the message as gone. */
	int (*load)(struct imap_view *v, unsigned want, void *ctx);
	void *load_ctx;
};

/* Make sure want is loaded: calls v->load when something is missing.
 * 0 or -1. */
static inline int
imap_view_need(struct imap_view *v, unsigned want)
{
	if (((want & IMAP_VIEW_DATA) && v->data == NULL)
	    || ((want & IMAP_VIEW_TREE) && v->tree == NULL))
		return v->load != NULL ? v->load(v, want, v->load_ctx) : -1;
	return 0;
}

#endif
