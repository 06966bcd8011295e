/*
 * index_int - what index.c (open, reconcile, reading) shares with
 * index_msg.c (flags, expunge, append, cache) and folder.c. Not for use
 * outside lib/store: the public contract is index.h.
 */
#ifndef POSTERN_INDEX_INT_H
#define POSTERN_INDEX_INT_H

#include <stdint.h>

#include "util/db.h"
#include "store/index.h"

#define INDEX_VERSION 1

enum { DB_HDR, DB_MSG, DB_NAME, DB_EXP, DB_CACHE };

struct hdr {
	uint32_t version;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t flags;       /* HDR_* */
	uint64_t highestmodseq;
};

/* Made from a dovecot-uidlist whose UIDs the files have not been given
 * yet: set with the header, cleared by the reconcile that gives them (in
 * the same transaction), so a process killed in between leaves an index
 * whose next opener imports again instead of numbering the files anew. */
#define HDR_IMPORTING 0x1u

struct rec {
	uint64_t modseq;
	uint64_t size;
	uint64_t wire_size;
	int64_t internaldate;
	uint32_t flags;
	uint16_t namelen;
	uint16_t kwlen;
};

/* Age after which a file in tmp/ is a dead writer's (36 hours; tests
 * shorten it). */
extern long mbx_tmp_dead_seconds;

struct mailbox {
	char *path;
	struct db db;
	int lockfd;           /* the index file, for flock */
	int readonly;
	int rebuilt;
	struct hdr hdr;       /* as of the last transaction */
	char *quota_root;     /* the user's top Maildir (mbx_set_quota), or NULL */
	uint64_t quota_limit;
	/* Dovecot's UIDs, keywords for the first reconcile of a new index
	 * (open_db), then freed; NULL otherwise. */
	struct dc_uidlist *import;
};

/* *err_r = text (or text freed when err_r is NULL or already set); rc. */
int idx_fail(char **err_r, int rc, char *text);
void idx_uid_key(uint32_t uid, unsigned char k[4]);
uint32_t idx_key_uid(const MDB_val *k);
/* Length of a Maildir file's base name: up to the first ':'. */
size_t idx_base_len(const char *file);
/* "cur/BASE:2,<letters>" for flags, keeping other letters of oldfile. */
char *idx_flagged_name(const char *base, size_t blen, const char *oldfile, unsigned flags);
int idx_hdr_get(struct mailbox *mb, MDB_txn *txn, struct hdr *h);
int idx_hdr_put(struct mailbox *mb, MDB_txn *txn, const struct hdr *h);
int idx_get_rec(struct mailbox *mb, MDB_txn *txn, uint32_t uid, struct rec *r,
    const char **name, const char **kw);
int idx_put_rec(struct mailbox *mb, MDB_txn *txn, uint32_t uid, const struct rec *r,
    const char *name, const char *kw);
/* Drop a message and write its expunge record with modseq. */
int idx_del_uid(struct mailbox *mb, MDB_txn *txn, uint32_t uid, const char *name,
    uint64_t modseq);
/* flock(LOCK_EX) on the index file: reconcile, renames, unlinks. */
int idx_lock_ex(struct mailbox *mb, char **err_r);
void idx_unlock(struct mailbox *mb);
/* Bring the index up to date with the files (mbx_sync). */
int idx_reconcile(struct mailbox *mb, int *changed_r, char **err_r);
/* Tests only: called inside reconcile's write transaction, after UIDs
 * were assigned and before the commit (t/unit/test_index.c kills itself
 * there). */
extern void (*mbx_hook_in_txn)(void);

#endif
