/*
 * queue - queue IDs, queue directories and the queue file format.
 *
 * A queue file is a sequence of records: 1 type byte, a 4-byte big-endian
 * data length, the data. In order:
 *
 *   'V'  "POSTERN-QUEUE 1"                       (first record, version)
 *   'T'  "<sec>.<usec>" arrival time
 *   'S'  envelope sender ("" for the null sender)
 *   'A'  "name=value" message attribute, any number (envid, ret, body,
 *        smtputf8, client_name, client_addr, helo, proto, sasl_username)
 *   'R'  recipient: status byte, then "addr\0orig\0notify"; status is 'P'
 *        (pending), 'W' (pending, and the sender was warned of the delay:
 *        delay_warning_time) or 'D' (done: delivered, or bounced and
 *        recorded). The status byte is rewritten in place (pwrite) by
 *        whoever finishes the recipient; it is at file offset
 *        record_start + 5. ('W' came later than version 1's first
 *        readers; one of those would call such a file corrupt.)
 *   'M'  start of content (empty)
 *   'N'  content bytes (the message, header and body, LF line ends); any
 *        number of these, each at most QUEUE_CHUNK_MAX bytes
 *   'E'  end (empty); nothing may follow
 *
 * A reader rejects an unknown type, a record out of order, a length past
 * the end, a missing 'E' or bytes after it: such a file is corrupt and goes
 * to corrupt/. A file only gets its queue-ID name in incoming/ after it is
 * complete and fsynced (writers use a ".tmp" name first), so a name that is
 * a valid queue ID is always a complete file.
 *
 * Queue IDs: base-52-ish seconds and microseconds, 'z', then the inode
 * number in base 51 (Postfix's long ID scheme). The inode part keeps IDs
 * unique among live files even when the clock goes backwards. Alphabet
 * 0-9 B-Z b-y without vowels.
 *
 * Delivery agents hold flock(LOCK_SH) on a queue file while delivering
 * from it; qmgr takes LOCK_EX|LOCK_NB before (re)reading one, and leaves a
 * locked file alone, so a message is never handed out twice at once.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define QUEUE_ID_MAX 32
#define QUEUE_CHUNK_MAX (1024 * 1024)
#define QUEUE_VERSION "POSTERN-QUEUE 1"

/* Sub-directories of queue_directory. The first five hold queue files. */
#define QUEUE_INCOMING "incoming"
#define QUEUE_ACTIVE   "active"
#define QUEUE_DEFERRED "deferred"
#define QUEUE_HOLD     "hold"
#define QUEUE_CORRUPT  "corrupt"
#define QUEUE_BOUNCE   "bounce"   /* per-message bounce logs (qmgr) */
#define QUEUE_DEFER    "defer"    /* per-message defer logs (qmgr, mailq) */
#define QUEUE_PRIVATE  "private"  /* internal sockets */
#define QUEUE_PUBLIC   "public"   /* sockets anyone may connect to */
#define QUEUE_MAILDROP "maildrop" /* sendmail's offline drop */
#define QUEUE_RECYCLE  "recycle"  /* finished files, written over by the next writer */
/* The pre-login processes' chroot: root-owned, mode 0750, group of
 * login_user, holding only the login_sockets listeners. master makes it
 * (not queue_dirs_create: it belongs to root, not to mail_owner). */
#define QUEUE_LOGIN    "login"

/* Errors: every *err_r in this module is xmalloc'd text the caller frees
 * (err_r may be NULL). */
int queue_id_valid(const char *id);
/* The ID of a file with inode ino that arrived at ts: 0, or -1 when it
 * does not fit. */
int queue_id_make(char id[QUEUE_ID_MAX], const struct timespec *ts, ino_t ino);
/* Create every sub-directory with the right modes, owned by uid/gid
 * (uid (uid_t)-1 = leave ownership). 0, or -1 and *err_r. */
int queue_dirs_create(const char *qdir, uid_t uid, gid_t gid, char **err_r);

struct qrcpt {
	char *addr;
	char *orig;       /* ORCPT or the address before alias expansion; may be "" */
	char *notify;     /* DSN NOTIFY: "" (default), "NEVER", or "SUCCESS,FAILURE,DELAY" subset */
	char status;      /* 'P' or 'D' ('W' in the file reads as 'P', warned) */
	int warned;       /* 'W': the sender has had the delay warning */
	off_t status_off; /* where the status byte is, for queue_mark_rcpt() */
};

struct qattr {
	char *name;
	char *value;
};

struct qenv {
	char id[QUEUE_ID_MAX];   /* queue_read() leaves it "": the caller copies the file name */
	struct timespec arrival;
	char *sender;
	struct qattr *attrs;
	size_t nattr;
	struct qrcpt *rcpts;
	size_t nrcpt;
	off_t content_off;   /* offset of the 'M' record */
	off_t content_size;  /* total bytes in 'N' records */
	off_t file_size;
};

/* Writer: creates <qdir>/<dir>/.tmp... now; queue_writer_commit() writes
 * 'E', fsyncs the file, renames it to its queue ID, fsyncs the directory.
 * Only then may the caller report success. Errors: -1 and errno. */
struct queue_writer;
struct queue_writer *queue_writer_open(const char *qdir, const char *dir,
    uid_t owner, gid_t group, char **err_r);
const char *queue_writer_id(const struct queue_writer *w);  /* known at open */
int queue_writer_arrival(struct queue_writer *w, const struct timespec *ts);
int queue_writer_sender(struct queue_writer *w, const char *sender);
int queue_writer_attr(struct queue_writer *w, const char *name, const char *value);
int queue_writer_rcpt(struct queue_writer *w, const char *addr, const char *orig,
    const char *notify);
/* Order: arrival (optional, default: open time) and sender first; attrs
 * and rcpts in any order after the sender (the file still gets them as
 * S A* R*); an envelope call after content, a second sender or a rcpt
 * before the sender fail with EINVAL; an envelope record over 64 KiB or
 * more than 100000 rcpts fails with E2BIG. commit needs >= 1 rcpt.
 * After any error the writer stays failed; the caller aborts it. */
/* Milter edits, before the first content call (the envelope is still
 * only in memory, so the file keeps its inode and its queue ID):
 * replace the sender; count recipients; drop those from index n on (a
 * RCPT a milter refused after it was written); drop every recipient
 * whose address or orig equals addr, case-insensitively (DELRCPT; the
 * number dropped, or -1); commit into another queue directory (hold/
 * for a quarantined message; the .tmp file stays where it was made). */
int queue_writer_set_sender(struct queue_writer *w, const char *sender);
size_t queue_writer_rcpt_count(const struct queue_writer *w);
int queue_writer_rcpt_truncate(struct queue_writer *w, size_t n);
int queue_writer_rcpt_delete(struct queue_writer *w, const char *addr);
/* Is addr (not orig) a recipient already, case-insensitively? */
int queue_writer_rcpt_has(const struct queue_writer *w, const char *addr);
/* The recipients' addresses so far, as a strv to strv_free(). */
char **queue_writer_rcpt_list(const struct queue_writer *w);
int queue_writer_set_dir(struct queue_writer *w, const char *dir);
/* Every recipient so far is done ('D'): a message refused after it was
 * received, whose bounce/ID log qmgr turns into a DSN. */
int queue_writer_rcpt_all_done(struct queue_writer *w);
/* Content; the first call writes 'M'. Envelope calls after this fail. */
int queue_writer_content(struct queue_writer *w, const void *p, size_t n);
off_t queue_writer_content_size(const struct queue_writer *w);
int queue_writer_commit(struct queue_writer *w, char id_r[QUEUE_ID_MAX]);
/* The same commit in steps, so that the waiting can happen on another
 * thread (lib/mail/qcommit.c: smtpd's group commit). queue_writer_commit()
 * is exactly seal, sync, link, fsync of queue_writer_dir(), done.
 * - seal: write 'E' and everything buffered (the page cache only).
 *   After it no other call changes the file.
 * - start_sync: start the write-back of the data without waiting (a hint
 *   that lets one thread overlap the I/O of a batch).
 * - sync: fsync the file.
 * - link: close the file (dropping its lock) and rename the .tmp name to
 *   the queue ID (never replacing).
 * - done(dir_err): dir_err 0: the directory holding the new name was
 *   fsynced after link; committed. Else the name is taken back
 *   (withdraw_failed() says if that failed too) and the writer failed.
 * seal, sync, link and done touch nothing but w and the file system (no
 * log, no loop): one thread may run them for writers another made.
 * Each returns 0, or -1 with errno and the writer failed (abort it). */
int queue_writer_seal(struct queue_writer *w);
int queue_writer_start_sync(struct queue_writer *w);
int queue_writer_sync(struct queue_writer *w);
int queue_writer_link(struct queue_writer *w);
const char *queue_writer_dir(const struct queue_writer *w);
int queue_writer_done(struct queue_writer *w, int dir_err);
int queue_writer_withdraw_failed(const struct queue_writer *w);
/* Commit into <qdir>/<dir> instead (HOLD: the hold queue). The rename
 * crosses directories of one file system; commit fsyncs the new one. */
int queue_writer_retarget(struct queue_writer *w, const char *qdir,
    const char *dir);
void queue_writer_abort(struct queue_writer **w);   /* unlinks the tmp file */
void queue_writer_free(struct queue_writer **w);    /* after commit */

/* Reader: validate the whole file and load the envelope. 0, or -1 with
 * *err_r (corrupt; errno EINVAL) or errno from I/O (*err_r is set then too).
 * Limits: 'S', 'A', 'R' records <= 64 KiB each, <= 100000 recipients.
 * Uses pread only: the file offset of fd is not changed. */
int queue_read(int fd, struct qenv *env, char **err_r);
void qenv_free(struct qenv *env);
const char *qenv_attr(const struct qenv *env, const char *name);
/* Stream the content: cb gets chunks in order; a non-zero return stops
 * and is returned. */
int queue_content(int fd, const struct qenv *env,
    int (*cb)(const char *p, size_t n, void *ctx), void *ctx);
/* Rewrite a recipient's status byte in place (no fsync: a crash may
 * repeat a delivery, never lose one). 'W' only over a pending one. */
int queue_mark_rcpt(int fd, off_t status_off, char status);

/* Path helpers: "<qdir>/<dir>/<id>", xmalloc'd. */
char *queue_path(const char *qdir, const char *dir, const char *id);
/* Move a queue file between directories (rename, no directory fsync: a
 * crash leaves it in from/ or to/, never lost). 0 once the rename is done;
 * -1 and errno (ENOENT: the file is not in from/; EINVAL: a bad ID or
 * directory name). */
int queue_move(const char *qdir, const char *from, const char *to, const char *id);

/* Remove a finished queue file <qdir>/<from>/<id> by keeping its inode for
 * the next writer in incoming/ (see queue.c, "Recycled queue files"):
 * rename to recycle/, and truncate it there only when its size (as the
 * caller read it: qenv.file_size; no stat here) is larger than
 * QUEUE_RECYCLE_KEEP bytes. Falls back to unlink when recycle/ holds
 * QUEUE_RECYCLE_MAX files or the rename fails. 0 once the name is gone
 * from from/, -1 and errno (ENOENT: it was not there; EINVAL: a bad ID or
 * directory name). */
#define QUEUE_RECYCLE_MAX 1000
#define QUEUE_RECYCLE_KEEP (64 * 1024)
int queue_remove(const char *qdir, const char *from, const char *id, off_t size);

/* Room for one more message in the queue's file system, asked before a
 * message is taken (smtpd's MAIL FROM, Postfix's queue_minfree), so a
 * full disk is a 452 up front rather than a 451 after DATA. avail: bytes
 * an unprivileged writer may still use; minfree: bytes that must stay
 * free; size: the size the client declared, 0 for none. A declared size
 * must also leave minfree free and be under half of avail (several such
 * messages may be arriving at once). 1: room, 0: none. */
int queue_space_ok(unsigned long long avail, unsigned long long minfree,
    unsigned long long size);

/* queue_space_ok() for the file system of qdir: 1, 0, or -1 with errno
 * when statvfs fails. *avail_r gets the bytes available (0 on error). */
int queue_space(const char *qdir, unsigned long long minfree,
    unsigned long long size, unsigned long long *avail_r);

/* Delivery agents: open <qdir>/<dir>/<id> read-write (O_NOFOLLOW,
 * close-on-exec), hold flock(LOCK_SH) on it, waiting up to wait_ms while
 * qmgr holds its exclusive lock, and read the envelope (env->id = id).
 * dir must be active, incoming or deferred and id a valid queue ID. The
 * fd (closing it drops the lock), or -1 with errno and *err_r naming the
 * step that failed ("open ...", "lock ...", "read ..."). */
int queue_open_shared(const char *qdir, const char *dir, const char *id,
    int wait_ms, struct qenv *env, char **err_r);

#endif
