/*
 * milter_chain - the milters of one SMTP session (smtpd_milters) or of
 * one locally submitted message (non_smtpd_milters), driven on the
 * caller's event loop: non-blocking connects, every wait bounded by a
 * loop timer, never a blocking read.
 *
 * Each operation (connect, HELO, MAIL, RCPT, DATA, the message) visits
 * the milters in list order, as Postfix does; the first milter that
 * rejects, tempfails or discards ends the operation with its verdict.
 * At end of message each milter's edits (headers, body, sender,
 * recipients, quarantine) are applied to the message before the next
 * milter sees it, so a verifier after a signer sees the signed message.
 *
 * A milter that cannot be reached, times out, hangs up or breaks the
 * protocol is closed and its default_action decides, for the rest of the
 * session: accept (go on without it), quarantine (go on; every message is
 * held), tempfail or reject (this and every later operation gets that
 * verdict). Nothing is lost: a tempfail is a 4xx to the client.
 *
 * The done callback runs exactly once per operation, always from a loop
 * callback (never inside the call that started the operation); it may
 * free the chain. One operation at a time.
 */
#ifndef POSTERN_MILTER_CHAIN_H
#define POSTERN_MILTER_CHAIN_H

#include <stddef.h>

#include "util/buf.h"
#include "util/loop.h"
#include "mail/milter_client.h"
#include "proto/milter.h"

enum milter_kind {
	MILTER_V_CONTINUE,
	MILTER_V_REJECT,
	MILTER_V_TEMPFAIL,
	MILTER_V_DISCARD,
};

struct milter_verdict {
	enum milter_kind kind;
	const char *reply;      /* REJECT/TEMPFAIL: the SMTP reply ("550 5.7.1 ..."),
	                         * borrowed until the next operation */
	const char *milter;     /* endpoint that decided, or NULL */
	int hold;               /* message: quarantined (edit or default_action) */
	const char *hold_reason;
};

/* The message at end of data: edited in place as milters answer. */
struct milter_message {
	struct buf *content;            /* header, empty line, body; LF line ends */
	struct milter_envelope env;     /* sender and the RCPT TO addresses */
};

/* Value of a macro ("j", "{client_addr}", "i"...) or NULL if unknown. */
typedef const char *(*milter_macro_fn)(void *ctx, const char *name);
typedef void (*milter_done_fn)(void *ctx, const struct milter_verdict *v);

struct milter_chain;

/* specs: n entries, copied. defmacros: per stage (MILTER_M_*, then
 * MILTER_MACROS_UNKNOWN), the macro names sent when a milter did not ask
 * for its own list (milter_connect_macros ...), copied; NULL entries
 * send none. */
struct milter_chain *milter_chain_new(struct loop *l,
    const struct milter_spec *specs, size_t n,
    const char *const defmacros[MILTER_MACRO_LISTS], milter_macro_fn macro,
    void *macro_ctx);
/* Closes every milter (QUIT, best effort) and cancels a running
 * operation without calling its done callback. NULLs *ch. */
void milter_chain_free(struct milter_chain **ch);

/* Connect and negotiate, then SMFIC_CONNECT. family: 'L', '4', '6', 'U'. */
void milter_chain_connect(struct milter_chain *ch, const char *host, int family,
    unsigned port, const char *addr, milter_done_fn done, void *ctx);
void milter_chain_helo(struct milter_chain *ch, const char *helo,
    milter_done_fn done, void *ctx);
/* argv: "<addr>" then ESMTP parameters. MAIL starts a new message. */
void milter_chain_mail(struct milter_chain *ch, const char *const *argv,
    size_t argc, milter_done_fn done, void *ctx);
void milter_chain_rcpt(struct milter_chain *ch, const char *const *argv,
    size_t argc, milter_done_fn done, void *ctx);
/* A recipient the server refused, for the milters that asked for those
 * (SMFIP_RCPT_REJ); their answers change nothing. */
int milter_chain_wants_rcpt_rej(const struct milter_chain *ch);
void milter_chain_rcpt_rejected(struct milter_chain *ch, const char *const *argv,
    size_t argc, milter_done_fn done, void *ctx);
void milter_chain_data(struct milter_chain *ch, milter_done_fn done, void *ctx);
/* An SMTP command the server does not know (the whole line), for
 * milters of protocol 3 and later (SMFIC_UNKNOWN): a REJECT/TEMPFAIL
 * verdict is the reply to give instead of the server's own. */
void milter_chain_unknown(struct milter_chain *ch, const char *line,
    milter_done_fn done, void *ctx);
/* Headers, end of headers, body, end of message; msg must live until
 * done. On CONTINUE msg holds the edited message (env.hold set when it
 * is to be held). */
void milter_chain_message(struct milter_chain *ch, struct milter_message *msg,
    milter_done_fn done, void *ctx);
/* The message ended without end of data (RSET, a rejection, a failed
 * queue file): SMFIC_ABORT to the milters, no answer awaited. */
void milter_chain_abort(struct milter_chain *ch);
/* The result of milter_chain_message into a queue file that has its
 * envelope but no content yet (the writer still in its envelope state):
 * the sender if it changed, recipients in orig_rcpts (the addresses the
 * milters saw) but no longer in msg->env deleted with what they expanded
 * to, new ones added after virtual_alias_maps expansion through res
 * (as Postfix's cleanup expands them; addresses already in the file are
 * not added twice), hold/ as the directory if held, then the content.
 * 0, or -1 (logged with qid: a write error, or an added recipient whose
 * expansion failed or looped, which Postfix defers too): the caller
 * aborts the file and answers with a temporary failure. */
struct queue_writer;
struct resolver;
int milter_queue_apply(struct queue_writer *w, const struct milter_message *msg,
    const char *orig_sender, char *const *orig_rcpts, struct resolver *res,
    const char *qid);

/* A whole message through the milters, for mail that did not come by
 * SMTP (non_smtpd_milters): connect as "localhost" [127.0.0.1], HELO
 * helo, MAIL, each RCPT, DATA, the message, on the caller's loop l (the
 * caller goes on with its other work meanwhile). done gets the verdict
 * (reply: the SMTP reply for REJECT/TEMPFAIL, borrowed for the call)
 * from a loop callback, exactly once, after the run freed itself; msg
 * (which must live until then) is edited as milter_chain_message does. */
struct milter_run;
typedef void (*milter_run_done_fn)(void *ctx, enum milter_kind kind,
    const char *reply);
struct milter_run *milter_run_start(struct loop *l,
    const struct milter_spec *specs, size_t n,
    const char *const defmacros[MILTER_MACRO_LISTS], milter_macro_fn macro,
    void *macro_ctx, const char *helo, struct milter_message *msg,
    milter_run_done_fn done, void *done_ctx);
/* Stop a run without calling its done callback. NULLs *r. */
void milter_run_cancel(struct milter_run **r);

/* A reply as Postfix's cleanup logs it at END-OF-MESSAGE: without its
 * three-digit code ("5.7.1 Spam detected"). */
const char *milter_reply_logtext(const char *reply);

/* Split content into its header block and body: *hdr_len octets of
 * header fields, the body from *body_off (after the empty line). */
void milter_message_split(const char *p, size_t len, size_t *hdr_len,
    size_t *body_off);

#endif
