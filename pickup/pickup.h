/* pickup - local submission daemon (see pickup.c). */
#ifndef POSTERN_PICKUP_H
#define POSTERN_PICKUP_H

#include <sys/types.h>
#include "util/ipc.h"
#include "mail/cchecks.h"
#include "mail/milter_client.h"
#include "mail/resolve.h"

struct pickup_conf {
	char *qdir;
	char *myorigin;
	char *myhostname;
	char *mail_name;
	long long size_limit;     /* message_size_limit; 0 = none */
	size_t header_limit;      /* header_size_limit */
	size_t line_length_limit; /* body_checks see lines in pieces of this */
	long long hopcount_limit; /* Received: fields, ours included; 0 = none */
	struct resolver *resolver;
	struct bcc *bcc;          /* always_bcc, sender_/recipient_bcc_maps */
	struct cc_tables cc;      /* header_checks, body_checks, ... */
	/* non_smtpd_milters (psub.c applies them before the commit) */
	struct milter_spec *milters;
	size_t nmilters;
	const char *milter_macros[MILTER_MACRO_LISTS];
	const char *macro_daemon_name, *macro_v;
};

extern struct pickup_conf pconf;

/* One submission, from the socket or a maildrop file. */
struct psub;

enum psub_result {
	PSUB_MORE,      /* frame taken, send the next */
	PSUB_DONE,      /* committed: psub_queue_id() */
	PSUB_FAIL,      /* refused for good: psub_reason(), psub_exit() */
	PSUB_TEMP,      /* could not queue now (disk, lookup): try again later */
	PSUB_CORRUPT,   /* the stream itself is malformed */
	PSUB_WAIT,      /* the end frame: non_smtpd_milters run on the loop;
	                 * the result comes through the done callback */
};

struct loop;
typedef void (*psub_done_fn)(void *ctx, enum psub_result r);

/* uid: the submitter as the kernel says (SO_PEERCRED, file owner);
 * source: "socket" or "maildrop" for the logs. With non_smtpd_milters
 * the end frame gives PSUB_WAIT, and done(ctx, result) runs later from
 * a callback of loop l (never inside psub_frame); psub_free before that
 * cancels the milters and the queue file. */
struct psub *psub_new(uid_t uid, const char *source, struct loop *l,
    psub_done_fn done, void *ctx);
enum psub_result psub_frame(struct psub *s, const struct ipc_msg *m);
const char *psub_reason(const struct psub *s);
int psub_exit(const struct psub *s);
const char *psub_queue_id(const struct psub *s);
/* Aborts an uncommitted queue file. */
void psub_free(struct psub **s);

#endif
