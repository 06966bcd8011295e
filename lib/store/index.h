/*
 * index - a Maildir mailbox with its LMDB index: UIDs, flags, MODSEQ,
 * sizes, expunge records and a header cache, for POP3 now and IMAP later.
 *
 * Layout. A mailbox is a Maildir exactly as local writes it (tmp/ new/
 * cur/, ":2,FLAGS" info suffix in cur/). Beside them, MAILDIR/postern.index
 * (LMDB, MDB_NOSUBDIR) and its lock file MAILDIR/postern.index-lock, both
 * mode 0600 and owned by whoever opened the mailbox first - the caller
 * must already run as the mailbox owner (priv_become / priv_drop), never
 * as root on someone else's mailbox. MAILDIR/postern.uidvalidity holds the
 * last UIDVALIDITY ever used (decimal text), so a rebuilt index picks a
 * strictly greater one.
 *
 * Truth. The Maildir files say which messages exist; the index says their
 * UIDs, flags, keywords and MODSEQ. mbx_open() and mbx_sync() reconcile:
 * files the index does not know get UIDs uidnext, uidnext+1, ... in arrival
 * order (mtime, then name); indexed messages whose file is gone (checked
 * twice, to tolerate a concurrent rename by another MUA) become expunge
 * records (UID, MODSEQ); a file renamed by another program to a new
 * ":2,FLAGS" suffix updates the flags and gets a new MODSEQ.
 *
 * UID uniqueness. UIDs are assigned only inside an LMDB write transaction
 * that also advances uidnext; LMDB admits one writer at a time across
 * processes, so two processes never hand out one UID, and a writer killed
 * mid-transaction commits nothing (uidnext and the UIDs stay as they were).
 * UIDs strictly increase and are never reused under one UIDVALIDITY.
 * Reconciling, flag renames and expunges also hold flock(LOCK_EX) on the
 * index file, so our own renames never look like a vanished file.
 *
 * Rebuild rule. If the index is missing, unreadable as LMDB, or lacks its
 * header, it is moved aside (postern.index.corrupt) and rebuilt from the
 * Maildir: UIDVALIDITY = max(now, last in postern.uidvalidity + 1), UIDs
 * from 1 in arrival order (mtime, then name), flags from the file names.
 * Old UIDs are never reused under the old UIDVALIDITY because the
 * UIDVALIDITY always changes, and the new value is written to
 * postern.uidvalidity before any UID is given under it.
 * BUGS: a process that has the mailbox open while another rebuilds it
 * keeps using the old index file until it reopens.
 *
 * LMDB failure modes (lib/util/db.c): map full grows the map and retries;
 * a map resized by another process is adopted; stale reader slots of dead
 * processes are cleared at open. No read transaction outlives a call:
 * nothing here holds one while a session waits for its client.
 *
 * Errors. Functions return 0 on success and MBX_ERR (-1) on a temporary
 * failure (disk, LMDB, permissions: the session should say so and may
 * retry) with *err_r an xmalloc'd text the caller frees (err_r may be
 * NULL). MBX_GONE (-2) means the UID is not (or no longer) in the mailbox.
 * Nothing here logs; nothing exits.
 */
#ifndef POSTERN_INDEX_H
#define POSTERN_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "store/maildir.h"   /* mail_producer_fn */

#define MBX_ERR (-1)
#define MBX_GONE (-2)

#define MBX_INDEX_NAME "postern.index"
#define MBX_UIDVALIDITY_NAME "postern.uidvalidity"

/* System flags; the Maildir info letters are D F R S T (RFC 3501 names). */
#define MBX_SEEN     0x01u   /* S */
#define MBX_ANSWERED 0x02u   /* R */
#define MBX_FLAGGED  0x04u   /* F */
#define MBX_DELETED  0x08u   /* T */
#define MBX_DRAFT    0x10u   /* D */
#define MBX_FLAGS_ALL 0x1fu

/* mbx_open flags */
#define MBX_CREATE   0x01    /* make the Maildir (0700) if missing */
#define MBX_READONLY 0x02    /* no reconcile writes, no flag changes
                              * (still creates the index if missing) */

#define MBX_KEYWORDS_MAX 64          /* per message */
#define MBX_KEYWORD_LEN_MAX 64
#define MBX_CACHE_MAX (256 * 1024)   /* bytes per cache slot */

struct mailbox;

/* One message as the index knows it. All owned by the holder of the
 * snapshot (mbx_msgs_free / mbx_msg_free). */
struct mbx_msg {
	uint32_t uid;
	uint64_t modseq;
	unsigned flags;            /* MBX_SEEN ... */
	char **keywords;           /* NULL-terminated, never NULL */
	uint64_t size;             /* octets on disk */
	uint64_t wire_size;        /* octets with every line ending as CRLF,
	                            * plus a final CRLF if the file lacks one:
	                            * what POP3 RETR sends before dot-stuffing */
	int64_t internaldate;      /* seconds: the file's mtime when first indexed */
	char *name;                /* current file name, "new/X" or "cur/X:2,FS" */
};

/* An expunge record, for QRESYNC VANISHED (EARLIER). */
struct mbx_expunge {
	uint32_t uid;
	uint64_t modseq;
};

/* Open the Maildir at path (a directory with cur/ new/ tmp/), create or
 * rebuild its index as needed, and reconcile. *mb_r is the caller's, to be
 * freed with mbx_close(). 0 or MBX_ERR. */
int mbx_open(const char *path, int flags, struct mailbox **mb_r, char **err_r);
/* Close and set *mb to NULL; NULL is fine. */
void mbx_close(struct mailbox **mb);

/* Reconcile again: new files get UIDs, vanished files become expunges.
 * *changed_r (may be NULL) is set to 1 when anything changed. */
int mbx_sync(struct mailbox *mb, int *changed_r, char **err_r);

/* Header values as of the last open/sync/change (no LMDB access). */
uint32_t mbx_uidvalidity(const struct mailbox *mb);
uint32_t mbx_uidnext(const struct mailbox *mb);
uint64_t mbx_highestmodseq(const struct mailbox *mb);
const char *mbx_path(const struct mailbox *mb);      /* borrowed */
/* 1 if mbx_open had to rebuild the index (new UIDVALIDITY). */
int mbx_rebuilt(const struct mailbox *mb);

/* A snapshot of every message in UID order: *msgs_r an array of *n_r,
 * freed with mbx_msgs_free(). One short read transaction. */
int mbx_list(struct mailbox *mb, struct mbx_msg **msgs_r, size_t *n_r, char **err_r);
void mbx_msgs_free(struct mbx_msg **msgs, size_t n);
/* One message; *m filled (free its parts with mbx_msg_free). 0, MBX_GONE
 * or MBX_ERR. */
int mbx_msg_get(struct mailbox *mb, uint32_t uid, struct mbx_msg *m, char **err_r);
void mbx_msg_free(struct mbx_msg *m);

/* Open the message file read-only (O_NOFOLLOW, O_CLOEXEC), finding it in
 * new/ or cur/ whatever flags another process renamed it to. *fd_r is the
 * caller's to close. 0, MBX_GONE (expunged, or the file vanished) or
 * MBX_ERR. */
int mbx_msg_open(struct mailbox *mb, uint32_t uid, int *fd_r, char **err_r);

/* Change the system flags: flags |= add, then &= ~remove; renames the file
 * to cur/BASE:2,<letters> (keeping unknown letters, as Dovecot does) and
 * records a new MODSEQ (*modseq_r, may be NULL). No change, no new MODSEQ.
 * MBX_GONE if the UID is gone. */
int mbx_set_flags(struct mailbox *mb, uint32_t uid, unsigned add, unsigned remove,
    uint64_t *modseq_r, char **err_r);
/* 1 when k may be a keyword: an IMAP atom of at most MBX_KEYWORD_LEN_MAX. */
int mbx_keyword_ok(const char *k);
/* Replace the keyword set (IMAP atoms, at most MBX_KEYWORDS_MAX of at most
 * MBX_KEYWORD_LEN_MAX bytes, no space or control characters): index only,
 * new MODSEQ. */
int mbx_set_keywords(struct mailbox *mb, uint32_t uid, const char *const *keywords,
    uint64_t *modseq_r, char **err_r);

/* Expunge these UIDs: unlink each file (an already missing one is fine),
 * then in one transaction drop them and write expunge records with one
 * new MODSEQ. UIDs not in the mailbox are skipped. */
int mbx_expunge(struct mailbox *mb, const uint32_t *uids, size_t n, char **err_r);
/* Expunge records with modseq > since, in UID order (array freed with
 * free()). */
int mbx_expunged_since(struct mailbox *mb, uint64_t since, struct mbx_expunge **exp_r,
    size_t *n_r, char **err_r);

/* Store a new message (IMAP APPEND): written via maildir_deliver into
 * new/ (or cur/ with flags), mtime set to internaldate (0: now), then
 * indexed at once: *uid_r (may be NULL) is its UID. With a quota
 * (mbx_set_quota) a message that takes the mailbox over it is removed
 * again and MBX_OVERQUOTA returned; its size is added to the usage
 * otherwise (and mbx_expunge subtracts what it removes). */
int mbx_append(struct mailbox *mb, mail_producer_fn produce, void *ctx, unsigned flags,
    time_t internaldate, uint32_t *uid_r, char **err_r);

/* ---- quota (store/quota.h: Maildir++ maildirsize at the user's top
 * Maildir, counting every folder) ---- */
#define MBX_OVERQUOTA (-3)
/* Count this mailbox's appends and expunges against the quota of the
 * user whose top Maildir is root (limit bytes; 0 = no quota). */
void mbx_set_quota(struct mailbox *mb, const char *root, uint64_t limit);
/* Usage and limit (*limit_r 0: no quota). 0 or MBX_ERR. */
int mbx_quota_get(struct mailbox *mb, uint64_t *bytes_r, uint64_t *count_r,
    uint64_t *limit_r, char **err_r);
/* 1 if adding bytes would exceed the quota (APPEND and COPY ask first,
 * with the sizes they know), 0 if not, MBX_ERR. */
int mbx_quota_check(struct mailbox *mb, uint64_t bytes, char **err_r);

/* The cache slot of a UID (parsed headers, BODYSTRUCTURE...): opaque bytes
 * of at most MBX_CACHE_MAX. get: 0 with *data_r xmalloc'd (caller frees),
 * MBX_GONE when empty or the UID is gone. The slot dies with its message. */
int mbx_cache_get(struct mailbox *mb, uint32_t uid, void **data_r, size_t *len_r,
    char **err_r);
int mbx_cache_put(struct mailbox *mb, uint32_t uid, const void *data, size_t len,
    char **err_r);

/* IMAP \Recent (RFC 3501 2.3.2): a new message is recent to exactly one
 * session. Claim, atomically across processes (one write transaction),
 * every UID not claimed before: *lo_r..*hi_r-1 are this caller's (empty
 * when *lo_r == *hi_r; hi is uidnext). The first claim of a mailbox gets
 * every message. Writes nothing when there is nothing to claim. */
int mbx_recent_claim(struct mailbox *mb, uint32_t *lo_r, uint32_t *hi_r, char **err_r);
/* The first UID not yet claimed (for STATUS RECENT: uidnext - it, roughly). */
int mbx_recent_first(struct mailbox *mb, uint32_t *first_r, char **err_r);

/* Totals for status: messages, unseen (no \Seen), bytes on disk. */
struct mbx_status {
	uint32_t messages;
	uint32_t unseen;
	uint64_t size;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
};
int mbx_status(struct mailbox *mb, struct mbx_status *st, char **err_r);

/* Move the index aside and rebuild it now (postern mailbox reindex): a
 * new UIDVALIDITY. */
int mbx_reindex(const char *path, char **err_r);

/* ---- folders (Maildir++) ----
 * "INBOX" (any case) is the Maildir itself; "Sent" is MAILDIR/.Sent,
 * "Archive/2024" is MAILDIR/.Archive.2024 ('/' is the hierarchy
 * separator). Refused: empty names or components, "." or ".." components,
 * a '.' inside a component (it is Maildir++'s separator), control
 * characters, names over 255 bytes or 16 levels. */
/* Folder operations tell the failures a client can act on apart
 * (IMAP's [NONEXISTENT] and [ALREADYEXISTS], RFC 5530, and
 * [HASCHILDREN], RFC 9051: a folder is deleted only without children). */
#define MBX_NOENT (-4)
#define MBX_EXISTS (-5)
#define MBX_HASKIDS (-6)
#define MBX_FOLDER_NAME_MAX 255
#define MBX_FOLDER_DEPTH_MAX 16
/* *path_r xmalloc'd. 0, or MBX_ERR with *err_r saying why. */
int mbx_folder_path(const char *maildir, const char *name, char **path_r, char **err_r);
/* Folder names (without INBOX) under maildir, sorted: directories
 * ".NAME" with a cur/ inside. *names_r NULL-terminated, free with
 * strv_free(). */
int mbx_folder_list(const char *maildir, char ***names_r, char **err_r);
/* Create the folder (Maildir with a maildirfolder file). Existing is fine. */
int mbx_folder_create(const char *maildir, const char *name, char **err_r);

/* Check a folder name by the rules above without building a path: 0, or
 * MBX_ERR with *err_r. */
int mbx_folder_name_ok(const char *name, char **err_r);
/* Delete a folder (its Maildir, messages and index). INBOX cannot be
 * deleted; a folder with children is refused with MBX_HASKIDS (RFC 3501
 * allows \Noselect parents, Maildir++ has none; RFC 9051 6.3.4 allows
 * the refusal). */
int mbx_folder_delete(const char *maildir, const char *name, char **err_r);
/* Rename a folder and every folder below it (one rename(2) each; the
 * indexes move with them, so UIDs and UIDVALIDITY survive). Renaming
 * INBOX moves its messages into the new folder, INBOX stays, empty
 * (RFC 3501 6.3.5). The target must not exist. */
int mbx_folder_rename(const char *maildir, const char *from, const char *to,
    char **err_r);
/* Subscriptions: MAILDIR/subscriptions, one UTF-8 name per line (the file
 * Dovecot and Courier use), rewritten atomically (tmp + rename). */
int mbx_subs_list(const char *maildir, char ***names_r, char **err_r);
int mbx_subs_set(const char *maildir, const char *name, int subscribe,
    char **err_r);
/* Subscriptions of from and its inferiors move to to; of INBOX, to is added. */
int mbx_subs_rename(const char *maildir, const char *from, const char *to,
    char **err_r);
/* A Maildir that Dovecot kept, before the first login: its folders named
 * in modified UTF-7 on disk get their UTF-8 names (mbx_folders_init does
 * it too; local calls it before a fileinto looks for a folder). */
void mbx_folders_adopt(const char *maildir);
/* First login: create Drafts, Sent, Trash, Junk and Archive and subscribe
 * them, once (a marker file MAILDIR/postern.folders-created, so a folder
 * the user deleted stays deleted). */
int mbx_folders_init(const char *maildir, char **err_r);

#endif
