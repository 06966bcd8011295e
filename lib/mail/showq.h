/*
 * showq - the queue listing: reading queue files and defer logs into
 * summaries, the ipc form the showq daemon sends, and the two output
 * formats of "postern queue list" (Postfix's mailq text and postqueue -j
 * JSON lines).
 *
 * Protocol on public/showq: the client connects and sends nothing; the
 * server sends one frame per message (see showq_msg_encode) and then a
 * final frame "end" = count. A listing without the final frame is
 * incomplete (the client says so).
 */
#ifndef POSTERN_SHOWQ_H
#define POSTERN_SHOWQ_H

#include <stddef.h>
#include "util/buf.h"
#include "util/ipc.h"
#include "mail/queue.h"

/* Recipients listed per message, at most; a frame stays well below the
 * ipc default limit. The rest is counted in showq_msg.omitted. */
#define SHOWQ_RCPT_MAX 1000
#define SHOWQ_FIELD_MAX 1000      /* bytes of an address or reason kept */

struct showq_rcpt {
	char *addr;
	char *orig;       /* "" when none or equal to addr */
	char *reason;     /* last deferral text from defer/ID, "" if none */
};

struct showq_msg {
	char id[QUEUE_ID_MAX];
	char queue[16];   /* incoming, active, deferred, hold */
	long long arrival;
	long long size;   /* message content bytes */
	int forced_expire;
	char *sender;
	struct showq_rcpt *rcpts;   /* pending recipients only */
	size_t nrcpt;
	size_t omitted;             /* pending recipients not listed */
};

/* The queues listed, in order (NULL-terminated). */
extern const char *const showq_queues[];

/* Read qdir/queue/id. 0, 1 when the file is gone (moved or removed since
 * the scan), -1 with *err_r (xmalloc'd) for a corrupt or unreadable file. */
int showq_read(const char *qdir, const char *queue, const char *id,
    struct showq_msg *m, char **err_r);
/* Every message of every queue, streamed in directory order. cb's non-zero
 * return stops the walk and is returned. Unreadable files are reported
 * through warn (may be NULL) and skipped. -1 and *err_r when a queue
 * directory cannot be read (EACCES: errno kept). */
int showq_scan(const char *qdir, int (*cb)(struct showq_msg *m, void *ctx),
    void *ctx, void (*warn)(const char *text), char **err_r);
void showq_msg_free(struct showq_msg *m);

void showq_msg_encode(const struct showq_msg *m, struct ipc_msg *out);
/* Fails closed (-1, *err_r xmalloc'd) on missing, bad or unknown fields. */
int showq_msg_decode(const struct ipc_msg *in, struct showq_msg *m, char **err_r);

/* mailq format. A listing is header, message..., footer; or only the
 * empty line when there are no messages. */
void showq_format_header(struct buf *out);
void showq_format_mailq(const struct showq_msg *m, struct buf *out);
void showq_format_footer(struct buf *out, long long bytes, size_t count);
/* One JSON object and "\n". Strings are escaped; bytes that are not
 * UTF-8 become U+FFFD, so the output is always valid JSON. */
void showq_format_json(const struct showq_msg *m, struct buf *out);
/* JSON string literal with its quotes. */
void showq_json_string(struct buf *out, const char *s);

#endif
