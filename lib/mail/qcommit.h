/*
 * qcommit - group commit of queue files off the event loop.
 *
 * A process that holds an event loop (smtpd) hands sealed queue writers
 * to one commit thread and gets a callback on its loop when each is
 * durable or failed. The thread takes every writer waiting when it
 * wakes as one batch: it writes their last bytes, starts the write-back
 * of all their data, fsyncs each file, renames each to its queue ID, then fsyncs each directory
 * named in the batch once, so messages that end together share their
 * directory fsyncs. Nothing is delayed on purpose: a lone message is
 * committed at once, and the messages that end while a batch is on the
 * disk form the next batch.
 *
 * Guarantees: a callback with err 0 runs only after the file's fsync and
 * an fsync of its directory that started after its rename returned; on
 * err != 0 the writer has already been aborted (no queue-ID name left,
 * unless withdrawing it failed: then *note says so). Callbacks run on the
 * loop, in the order the writers were submitted within a batch.
 */
#ifndef POSTERN_QCOMMIT_H
#define POSTERN_QCOMMIT_H

#include "mail/queue.h"

struct loop;
struct qcommit;
struct qcommit_req;

/* id: the queue ID; err: 0 committed, else errno of the failed step and
 * step names it ("fsync", "rename", "fsync directory", ...). */
typedef void (*qcommit_done_fn)(void *ctx, const char *id, int err,
    const char *step);

/* Start the thread (signals blocked in it; the loop keeps them).
 * batch_done (may be NULL) runs on the loop after the callbacks of each
 * round of reports (a batch, or more than one if they piled up): the
 * place for one wake-up of qmgr for all of them. NULL and errno on
 * failure. */
struct qcommit *qcommit_new(struct loop *l, void (*batch_done)(void *ctx),
    void *ctx);
/* Take w: from now on only the thread touches it (it seals it, writing
 * what is still buffered and the 'E' record; a failure there is reported
 * through done like any other). done always runs later, from the loop,
 * never from here. Returns the request, which the caller may detach
 * until done has run. */
struct qcommit_req *qcommit_submit(struct qcommit *qc, struct queue_writer *w,
    qcommit_done_fn done, void *ctx);
/* The caller is going away: its commit still completes (a committed
 * message stays queued) but done is called with ctx NULL. */
void qcommit_detach(struct qcommit_req *r);
/* Writers submitted and not yet reported. */
size_t qcommit_pending(const struct qcommit *qc);
/* Counters since start: files and directories fsynced, batches. */
void qcommit_stats(const struct qcommit *qc, unsigned long long *files,
    unsigned long long *dirs, unsigned long long *batches);

#endif
