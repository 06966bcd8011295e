/*
 * milter - pure codec for the Sendmail milter protocol, version 6, as
 * Postfix speaks it (MTA side). No I/O.
 *
 * Wire format: every frame is a 4-octet length in network order (counting
 * the command octet and the payload), one command octet, the payload.
 * Strings in payloads are NUL-terminated; integers are 32 bits (16 for
 * the CONNECT port) in network order.
 *
 * Encoding (milter_enc_*): one function per MTA->milter command; each
 * appends whole frames to a struct buf and returns -1 only when the buf
 * refuses to grow (its max) or an argument cannot be encoded (a string
 * holding a NUL, a BODY chunk over MILTER_CHUNK_MAX). milter_enc_body
 * splits any body into chunks of at most MILTER_CHUNK_MAX octets.
 *
 * Decoding: milter_read() collects one frame from bytes as they arrive
 * (any split), refusing a length of 0 or over the reader's limit before
 * buffering anything. milter_reply_decode() checks that the frame is a
 * known reply with exactly the payload its type needs (every string
 * NUL-terminated, nothing left over) and points into the frame.
 * milter_optneg_decode() reads the OPTNEG answer with its macro lists.
 *
 * Steps: milter_cmd_sent() / milter_cmd_replies() say, for negotiated
 * protocol flags, whether a command is sent at all (SMFIP_NO*) and whether
 * the milter answers it (SMFIP_NR_*); milter_reply_allowed() says whether
 * a reply code is legal as the answer to a command (modifications only
 * after end of body, SKIP only for BODY and only when negotiated).
 *
 * Edits: milter_edits_add() copies an end-of-message modification into a
 * bounded list after checking the negotiated action flags.
 *
 * BUGS/LIMITS: SMFIR_SETSYMLIST is honoured only in the OPTNEG answer
 * (where libmilter sends it).
 */
#ifndef POSTERN_MILTER_PROTO_H
#define POSTERN_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

#define MILTER_VERSION 6
/* Body chunks: libmilter's MILTER_CHUNK_SIZE. */
#define MILTER_CHUNK_MAX 65535
/* Largest frame we accept from a milter by default: a REPLBODY chunk of
 * SMFIP_MDS_1M plus slack. */
#define MILTER_FRAME_MAX (1024 * 1024 + 64)
/* Modifications kept from one milter for one message. */
#define MILTER_EDITS_MAX 10000
#define MILTER_BODY_MAX (64L * 1024 * 1024)

/* Commands, MTA -> milter (SMFIC_*). */
enum {
	MILTER_CMD_ABORT = 'A',
	MILTER_CMD_BODY = 'B',
	MILTER_CMD_CONNECT = 'C',
	MILTER_CMD_MACRO = 'D',
	MILTER_CMD_EOB = 'E',
	MILTER_CMD_HELO = 'H',
	MILTER_CMD_QUIT_NC = 'K',
	MILTER_CMD_HEADER = 'L',
	MILTER_CMD_MAIL = 'M',
	MILTER_CMD_EOH = 'N',
	MILTER_CMD_OPTNEG = 'O',
	MILTER_CMD_QUIT = 'Q',
	MILTER_CMD_RCPT = 'R',
	MILTER_CMD_DATA = 'T',
	MILTER_CMD_UNKNOWN = 'U',
};

/* Replies, milter -> MTA (SMFIR_*). */
enum {
	MILTER_R_ADDRCPT = '+',
	MILTER_R_DELRCPT = '-',
	MILTER_R_ADDRCPT_PAR = '2',
	MILTER_R_SHUTDOWN = '4',
	MILTER_R_ACCEPT = 'a',
	MILTER_R_REPLBODY = 'b',
	MILTER_R_CONTINUE = 'c',
	MILTER_R_DISCARD = 'd',
	MILTER_R_CHGFROM = 'e',
	MILTER_R_CONN_FAIL = 'f',
	MILTER_R_ADDHEADER = 'h',
	MILTER_R_INSHEADER = 'i',
	MILTER_R_SETSYMLIST = 'l',
	MILTER_R_CHGHEADER = 'm',
	MILTER_R_OPTNEG = 'O',
	MILTER_R_PROGRESS = 'p',
	MILTER_R_QUARANTINE = 'q',
	MILTER_R_REJECT = 'r',
	MILTER_R_SKIP = 's',
	MILTER_R_TEMPFAIL = 't',
	MILTER_R_REPLYCODE = 'y',
};

/* Protocol step flags (SMFIP_*). */
#define MILTER_P_NOCONNECT   0x00000001u
#define MILTER_P_NOHELO      0x00000002u
#define MILTER_P_NOMAIL      0x00000004u
#define MILTER_P_NORCPT      0x00000008u
#define MILTER_P_NOBODY      0x00000010u
#define MILTER_P_NOHDRS      0x00000020u
#define MILTER_P_NOEOH       0x00000040u
#define MILTER_P_NR_HDR      0x00000080u
#define MILTER_P_NOUNKNOWN   0x00000100u
#define MILTER_P_NODATA      0x00000200u
#define MILTER_P_SKIP        0x00000400u
#define MILTER_P_RCPT_REJ    0x00000800u
#define MILTER_P_NR_CONN     0x00001000u
#define MILTER_P_NR_HELO     0x00002000u
#define MILTER_P_NR_MAIL     0x00004000u
#define MILTER_P_NR_RCPT     0x00008000u
#define MILTER_P_NR_DATA     0x00010000u
#define MILTER_P_NR_UNKN     0x00020000u
#define MILTER_P_NR_EOH      0x00040000u
#define MILTER_P_NR_BODY     0x00080000u
#define MILTER_P_HDR_LEADSPC 0x00100000u
#define MILTER_P_MDS_256K    0x10000000u
#define MILTER_P_MDS_1M      0x20000000u
/* What Postern offers in OPTNEG with protocol 6: every step flag it
 * honours. */
#define MILTER_P_ALL         0x301fffffu
/* Steps a milter can ask not to be sent (the SMFIP_NO* flags). */
#define MILTER_P_NOSEND_MASK (MILTER_P_NOCONNECT | MILTER_P_NOHELO \
	| MILTER_P_NOMAIL | MILTER_P_NORCPT | MILTER_P_NOBODY | MILTER_P_NOHDRS \
	| MILTER_P_NOEOH | MILTER_P_NOUNKNOWN | MILTER_P_NODATA)

/* Action flags (SMFIF_*). */
#define MILTER_A_ADDHDRS     0x001u
#define MILTER_A_CHGBODY     0x002u
#define MILTER_A_ADDRCPT     0x004u
#define MILTER_A_DELRCPT     0x008u
#define MILTER_A_CHGHDRS     0x010u
#define MILTER_A_QUARANTINE  0x020u
#define MILTER_A_CHGFROM     0x040u
#define MILTER_A_ADDRCPT_PAR 0x080u
#define MILTER_A_SETSYMLIST  0x100u
#define MILTER_A_ALL         0x1ffu

/* Macro stages in SETSYMLIST (SMFIM_*). */
enum milter_stage {
	MILTER_M_CONNECT = 0,
	MILTER_M_HELO,
	MILTER_M_ENVFROM,
	MILTER_M_ENVRCPT,
	MILTER_M_DATA,
	MILTER_M_EOM,
	MILTER_M_EOH,
	MILTER_M_COUNT,
};

enum milter_result {
	MILTER_DONE,
	MILTER_NEED_MORE,
	MILTER_ERROR,
};

/* ---- milter_protocol ---- */

/* The step flags offered in OPTNEG for a protocol version, as Postfix
 * offers them: 2 has the seven original SMFIP_NO* steps, 3 adds
 * UNKNOWN, 4 adds DATA, 6 everything (SKIP, RCPT_REJ, the no-reply
 * flags, HDR_LEADSPC, the larger data sizes). A step whose NO* flag a
 * version lacks is a step that version does not have: it is never sent
 * (milter_sess_wants). 0 for a version that is not 2, 3, 4 or 6. */
uint32_t milter_protocol_steps(int version);
/* Postfix's milter_protocol value: one version (2, 3, 4 or 6) and the
 * optional extension "no_header_reply" (SMFIP_NR_HDR offered), words
 * separated by white space or commas. 0 with *version_r and *steps_r
 * (what to offer), or -1 with *error_r (static). */
int milter_protocol_parse(const char *s, int *version_r, uint32_t *steps_r,
    const char **error_r);

/* ---- encoding: each appends whole frames to out ---- */

/* A frame with any command and payload. */
int milter_enc_frame(struct buf *out, int cmd, const void *payload, size_t len);
int milter_enc_optneg(struct buf *out, uint32_t version, uint32_t actions,
    uint32_t protocol);
/* family: 'L' (local), '4', '6' or 'U' (unknown: no port and address are
 * sent). addr is the textual address (IPv6 without "IPv6:"), or the
 * socket path for 'L'. */
int milter_enc_connect(struct buf *out, const char *host, int family,
    unsigned port, const char *addr);
int milter_enc_helo(struct buf *out, const char *helo);
/* argv: the address in <> first, then ESMTP parameters; argc entries. */
int milter_enc_mail(struct buf *out, const char *const *argv, size_t argc);
int milter_enc_rcpt(struct buf *out, const char *const *argv, size_t argc);
int milter_enc_header(struct buf *out, const char *name, const char *value);
/* Splits into chunks of at most MILTER_CHUNK_MAX; nothing for len 0. */
int milter_enc_body(struct buf *out, const void *p, size_t len);
/* DATA, EOH, EOB, ABORT, QUIT, QUIT_NC: no payload. */
int milter_enc_simple(struct buf *out, int cmd);
/* Macros for the command `stage_cmd` (e.g. MILTER_CMD_MAIL): n pairs of
 * names[i] = values[i]; a NULL value leaves that macro out. */
int milter_enc_macro(struct buf *out, int stage_cmd, const char *const *names,
    const char *const *values, size_t n);

/* ---- decoding ---- */

struct milter_reader {
	unsigned char hdr[4];
	size_t hlen;
	uint32_t need;           /* frame length from the header */
	struct buf frame;        /* command octet + payload once DONE */
	uint32_t max;            /* longest frame accepted */
};

void milter_reader_init(struct milter_reader *r, uint32_t max);
void milter_reader_free(struct milter_reader *r);
/* Start on the next frame (after DONE). */
void milter_reader_reset(struct milter_reader *r);
/* Feed bytes; *used_r says how many were taken. DONE: r->frame holds the
 * whole frame. ERROR: *error_r says why (length 0 or over max); the
 * connection cannot be resynchronised. */
enum milter_result milter_read(struct milter_reader *r, const void *p, size_t n,
    size_t *used_r, const char **error_r);

/* A reply, borrowing from the frame it was decoded from. */
struct milter_reply {
	int code;                /* MILTER_R_* */
	uint32_t index;          /* CHGHEADER, INSHEADER */
	const char *str;         /* REPLYCODE text, header name, recipient,
	                          * sender, QUARANTINE reason */
	const char *value;       /* header value, ESMTP args (NULL if none) */
	const char *data;        /* REPLBODY / OPTNEG payload */
	size_t data_len;
};

int milter_reply_decode(const void *frame, size_t len, struct milter_reply *rep,
    const char **error_r);

struct milter_optneg {
	uint32_t version, actions, protocol;
	/* Macro lists the milter asked for per stage (borrowed; NULL when it
	 * left the stage to the MTA's default). */
	const char *macros[MILTER_M_COUNT];
};

int milter_optneg_decode(const void *payload, size_t len,
    struct milter_optneg *o, const char **error_r);

/* A REPLYCODE text is usable: "4yz " or "5yz " (or "xyz-" continuation
 * lines each starting with the same code), ends without stray bytes. */
int milter_replycode_check(const char *text, const char **error_r);

/* ---- protocol steps ---- */

/* Whether cmd is sent at all under the negotiated protocol flags. */
int milter_cmd_sent(uint32_t protocol, int cmd);
/* Whether the milter answers cmd. */
int milter_cmd_replies(uint32_t protocol, int cmd);
/* Whether reply is a legal answer to cmd (PROGRESS is legal but means
 * "read again"). */
int milter_reply_allowed(uint32_t protocol, int cmd, int reply);
/* Postfix's name of a reply code, for logs ("reject", "tempfail"...). */
const char *milter_reply_name(int code);

/* ---- modifications at end of message ---- */

struct milter_edit {
	int code;                /* MILTER_R_ADDHEADER ... QUARANTINE */
	uint32_t index;
	char *str;               /* owned */
	char *value;             /* owned, may be NULL */
};

struct milter_edits {
	struct milter_edit *v;
	size_t n, cap, max;
	struct buf body;         /* REPLBODY chunks joined */
	int body_replaced;
};

void milter_edits_init(struct milter_edits *e, size_t max_edits, size_t max_body);
void milter_edits_free(struct milter_edits *e);
/* Whether code is a modification (to be collected, not a verdict). */
int milter_reply_is_edit(int code);
/* Copies a modification reply; -1 with *error_r when the negotiated
 * actions do not allow it or a limit is reached. */
int milter_edits_add(struct milter_edits *e, uint32_t actions,
    const struct milter_reply *rep, const char **error_r);

/* Apply the header edits in e (in the order received) to a header block
 * (fields with LF line ends, no empty line), appending the result to out,
 * with Postfix's index semantics: CHGHEADER index n is the n-th field of
 * that name (case-insensitive, from 1), an empty value deletes it, and a
 * missing n-th field is appended; INSHEADER index n inserts before the
 * n-th field of the block (0: at the top, past the end: appended);
 * ADDHEADER appends. leadspc: the milter negotiated HDR_LEADSPC, so
 * values carry their own leading white space; else one space is put
 * after the colon. CRs in values are dropped and a continuation line
 * that does not start with white space gets a TAB, so a value can never
 * start a new field. -1 when out refuses to grow. */
int milter_apply_headers(const char *hdr, size_t len,
    const struct milter_edits *e, int leadspc, struct buf *out);

/* ---- one milter's conversation, pure (the caller moves the bytes) ----
 *
 * The caller encodes each command with milter_enc_* after asking
 * milter_sess_wants() (negotiated NO_* steps, SKIP, a milter that already
 * accepted the message), then calls milter_sess_sent(): 1 means a reply
 * is due, to be fed with milter_sess_feed() until DONE. DONE leaves the
 * answer in s->verdict (CONTINUE, ACCEPT, REJECT, TEMPFAIL, DISCARD,
 * REPLYCODE with s->reply, SKIP); PROGRESS is swallowed and edits after
 * EOB are collected in s->edits. ERROR (garbage, an answer not allowed at
 * this step, a negotiation that asks for more than was offered) means the
 * caller applies its default action.
 */
struct milter_sess {
	uint32_t offer_version, offer_actions, offer_protocol;
	uint32_t version, actions, protocol;       /* negotiated */
	char *macros[MILTER_M_COUNT];     /* owned; NULL: the MTA's default */
	int pending;                      /* command awaiting a reply, or 0 */
	int verdict;                      /* last answer (MILTER_R_*) */
	char *reply;                      /* REPLYCODE text, owned */
	int accepted;                     /* ACCEPT/DISCARD: no more commands */
	int skip_body;                    /* SKIP: no more BODY chunks */
	struct milter_reader rd;
	struct milter_edits edits;
};

/* version: what OPTNEG announces (milter_protocol); protocol: the step
 * flags offered (milter_protocol_steps). A milter answering with a
 * higher version, more actions or more step flags breaks the protocol. */
void milter_sess_init(struct milter_sess *s, uint32_t version, uint32_t actions,
    uint32_t protocol);
void milter_sess_free(struct milter_sess *s);
/* Append OPTNEG and wait for its answer. */
int milter_sess_start(struct milter_sess *s, struct buf *out);
int milter_sess_wants(const struct milter_sess *s, int cmd);
int milter_sess_sent(struct milter_sess *s, int cmd);
enum milter_result milter_sess_feed(struct milter_sess *s, const void *p,
    size_t n, size_t *used_r, const char **error_r);

#endif
