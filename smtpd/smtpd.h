/*
 * smtpd internals shared by smtpd.c (main, settings), session.c (the
 * conn, state machine, timers), commands.c (the command table and the
 * simple verbs) and txn.c (MAIL, RCPT, DATA: the mail transaction and the
 * queue file); starttls.c (STARTTLS, implicit TLS), auth.c (AUTH
 * through the auth daemon, smtpd_sender_login_maps), restrict.c (the
 * smtpd_*_restrictions lists, their DNS and policy-service questions),
 * peer.c (the client's name: PTR, then forward confirmation),
 * policy.c (the policy-service connections, kept open and reused)
 * and milter.c (smtpd_milters).
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <netinet/in.h>

#include "util/buf.h"
#include "util/compat.h"
#include "util/loop.h"
#include "proto/smtp.h"
#include "proto/sasl.h"
#include "mail/cchecks.h"

struct conn;
struct tls_ctx;
struct maplist;
struct auth_client;

/* Settings, read once at post_init (Postfix parameter names). */
struct smtpd_conf {
	const char *myhostname;
	const char *banner;           /* smtpd_banner */
	const char *mail_name;        /* in Received: "by host (mail_name)" */
	const char *mynetworks;
	const char *queue_directory;
	long long message_size_limit; /* 0 = unlimited */
	unsigned long long queue_minfree; /* bytes that stay free (MAIL FROM) */
	long long recipient_limit;    /* smtpd_recipient_limit */
	long long soft_error_limit;
	long long hard_error_limit;
	long long error_sleep_ms;     /* smtpd_error_sleep_time */
	long long timeout_ms;         /* smtpd_timeout */
	long long hopcount_limit;     /* Received: fields, ours included */
	long long header_size_limit;  /* per logical header (lib/mail/msghdr.h) */
	int bare_newline;             /* smtpd_forbid_bare_newline: BARE_LF_* */
	const char *bare_newline_exclusions;
	int bare_newline_reject_code; /* smtpd_forbid_bare_newline_reject_code */
	char **discard_ehlo;          /* smtpd_discard_ehlo_keywords (any case) */
	char **forbidden;             /* smtpd_forbidden_commands (any case) */
	int helo_required;            /* smtpd_helo_required */
	int peername_lookup;          /* smtpd_peername_lookup */
	int smtputf8_enable;
	int disable_vrfy;             /* disable_vrfy_command */
	unsigned path_flags;          /* ADDR_BARE_OK unless strict_rfc821_envelopes */
	int soft_bounce;              /* 5xx replies go out as 4xx */
	struct smtp_limits limits;
	struct resolver *resolver;
	/* TLS (tls.c) */
	struct tls_ctx *tls_ctx;      /* NULL: no TLS offered */
	int tls_level;                /* smtpd_tls_security_level */
	int tls_wrappermode;          /* smtpd_tls_wrappermode: TLS from the start */
	/* AUTH (sasl.c) */
	int sasl_enable;              /* smtpd_sasl_auth_enable */
	int tls_auth_only;            /* smtpd_tls_auth_only */
	int sasl_plain_ok[2];         /* PLAIN/LOGIN allowed [without, with TLS] */
	char *sasl_path;              /* socket of the auth daemon */
	struct maplist *sender_login_maps;
	struct bcc *bcc;              /* always_bcc, sender_/recipient_bcc_maps */
	struct cc_tables cc;          /* header_checks, body_checks, ... */
	int reject_unlisted_sender;   /* smtpd_reject_unlisted_sender */
};
extern struct smtpd_conf smtpd_conf;

enum { TLS_LEVEL_NONE, TLS_LEVEL_MAY, TLS_LEVEL_ENCRYPT };
/* smtpd_forbid_bare_newline. "no" is taken as "normalize": end of DATA is
 * only CRLF.CRLF whatever the setting (DESIGN.md invariant 3). */
enum { BARE_LF_NORMALIZE, BARE_LF_REJECT };

/* Session states; change only through session_enter(). */
enum sess_state {
	SESS_IDLE,      /* no transaction */
	SESS_MAIL,      /* MAIL accepted, no recipient yet */
	SESS_RCPT,      /* at least one recipient accepted */
	SESS_DATA,      /* reading message content */
	SESS_QUIT,      /* last reply queued: close once it is written */
};

#define SMTPD_NAME_MAX 255   /* of s->name, s->reverse_name */

struct txn;
struct smtpd_restrict;
struct dns_async;

struct session {
	struct loop *loop;
	int fd;
	enum sess_state state;
	char addr[INET6_ADDRSTRLEN + 1];
	/* peer.c: the verified name (PTR, forward-confirmed) or "unknown",
	 * the PTR name alone, and Postfix's status of each (enum peer_status
	 * in lib/mail/peer.h). Set before the greeting, never changed;
	 * allocated (at most SMTPD_NAME_MAX bytes), freed with the session. */
	char *name;
	char *reverse_name;
	int name_status;
	int reverse_name_status;
	struct smtpd_peer *peer;   /* the lookup in progress, else NULL */
	/* smtpd_delay_reject = no: smtpd_client_restrictions refused the
	 * client at connect; this reply was the greeting, and every command
	 * but QUIT is answered 503 (Postfix). */
	char *access_denied;
	char *helo;                /* NULL before HELO/EHLO */
	char *helo_prev;           /* kept while a new HELO name is checked */
	int esmtp;                 /* EHLO (not HELO) seen */
	int in_mynetworks;
	struct conn *conn;         /* the client's bytes, both ways (util/conn.h) */
	long long errors;          /* replies that counted as client errors */
	const char *where;         /* "CONNECT", "RCPT", "DATA", ... for logs */
	unsigned cmd_total[SMTP_VERB_COUNT];
	unsigned cmd_ok[SMTP_VERB_COUNT];
	uint64_t sleep_timer;      /* error sleep in progress */
	int pipelining_logged;
	int dead;                  /* closed; freed by the outermost callback */
	struct txn *tx;            /* NULL outside a transaction */
	int bare_lf_reject;        /* smtpd_forbid_bare_newline applies here */
	/* BDAT: the chunk being read. Whatever the reply to BDAT was, its
	 * chunk_left octets are consumed as data (or discarded), never run
	 * as commands. */
	long long chunk_left;
	long long chunk_size;
	int chunk_last;            /* BDAT ... LAST */
	int chunk_discard;         /* the BDAT was refused: drop the octets */
	int tls_up;                /* TLS handshake finished */
	/* AUTH */
	struct sasl_server sasl;
	int sasl_active;           /* inside an AUTH exchange (334 sent) */
	struct auth_client *authc; /* waiting for the auth daemon */
	char *sasl_user;           /* authenticated user, or NULL */
	const char *sasl_method;
	struct smtpd_restrict *rs; /* restrictions: answers cache, evaluation */
	/* smtpd_milters (milter.c); NULL without milters */
	struct smtpd_milter *milter;
	int milter_wait;           /* a milter step runs: nothing is processed */
	int commit_wait;           /* the queue file is being committed (txn.c) */
};

/* session.c */
void session_start(struct loop *l, int fd);
void session_enter(struct session *s, enum sess_state st);
void reply(struct session *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* "NOQUEUE: reject: RCPT from name[addr]: <reply>; from=<> to=<> ..." */
void session_log_reject(struct session *s, const char *cmd, const char *rep,
    const char *rcpt);
const char *session_proto(const struct session *s);
/* A line ended by a bare LF under smtpd_forbid_bare_newline = reject:
 * reply, log, abort the transaction and close after the reply. */
void session_bare_lf(struct session *s);
/* Is the EHLO keyword not in smtpd_discard_ehlo_keywords? */
int smtpd_ehlo_offer(const char *keyword);

/* commands.c: run one command line (no terminator; need not be
 * NUL-terminated). Returns the verb, or NULL for a line that did not parse. */
const struct smtp_verb_info *command_run(struct session *s, const char *line,
    size_t len);

/* txn.c: MAIL/RCPT/DATA and the content. Handlers (here and in
 * commands.c) return 0 (ok), -1 (the reply was an error that counts
 * against the error limits) or 1 (refused, but not the client's error). */
int txn_mail(struct session *s, const struct smtp_cmd *cmd);
int txn_rcpt(struct session *s, const struct smtp_cmd *cmd);
int txn_data(struct session *s, const struct smtp_cmd *cmd);
/* Feed DATA-phase bytes; returns how many were used. At end of data it
 * replies and leaves SESS_DATA. Returns with s->dead possibly set. */
size_t txn_data_feed(struct session *s, const char *p, size_t n);
/* BDAT (CHUNKING): the handler, after commands.c set s->chunk_*; it
 * clears s->chunk_discard when the chunk is taken. */
int txn_bdat(struct session *s, const struct smtp_cmd *cmd);
/* Octets of a taken chunk, then its end (replies; LAST commits). */
void txn_chunk_feed(struct session *s, const char *p, size_t n);
void txn_chunk_end(struct session *s);
/* Abort and free the transaction (RSET, HELO, disconnect); state IDLE. */
void txn_reset(struct session *s);
/* Queue ID of the open queue file, or "NOQUEUE". */
const char *txn_qid(const struct session *s);
/* Envelope sender of the transaction, or NULL before MAIL. */
const char *txn_sender(const struct session *s);
/* The policy delegation "instance" of the transaction ("" outside one). */
const char *txn_instance(const struct session *s);
/* MAIL FROM's AUTH= mailbox (RFC 4954 section 5) of an authenticated
 * client, else NULL (the {auth_author} milter macro). */
const char *txn_auth_author(const struct session *s);
/* Recipients accepted so far. */
long long txn_rcpt_count(const struct session *s);
/* post_init: start the queue commit thread (lib/mail/qcommit.h). */
void txn_init(struct loop *l);
/* Commits not yet reported (the process must not exit yet). */
int txn_busy(void);
/* SIGTERM: log the commit counters (fsyncs, batches); exit once the
 * last commit is reported. */
void txn_drain(void);

/* restrict.c: smtpd_*_restrictions (lib/mail/restrict.h). */
enum smtpd_check_point {
	SMTPD_CHECK_CONNECT, SMTPD_CHECK_HELO, SMTPD_CHECK_MAIL, SMTPD_CHECK_RCPT,
	SMTPD_CHECK_DATA, SMTPD_CHECK_EOD,
};
struct smtpd_restrict_verdict {
	const char *reply;   /* NULL: go on; else send it (already logged) */
	int hold;            /* HOLD: the message goes to the hold queue */
	int discard;         /* DISCARD: say 250, keep nothing */
	char **prepend;      /* PREPEND: header lines for the message */
};
typedef void (*smtpd_restrict_done_fn)(struct session *s,
    const struct smtpd_restrict_verdict *v, void *arg);
void smtpd_restrict_init(void);
/* Run the lists of a check point; done runs before this returns when no
 * DNS or policy answer is needed, else later from the loop (the session
 * stays paused meanwhile, and processing resumes after done). */
/* Is addr a known recipient of ours? 1 yes, or not of our domains (the
 * relay rules decide then); 0 no, with *why_r ("User unknown in ...
 * table", static); -1 temporary failure. */
int smtpd_addr_known(const char *addr, const char **why_r);
void smtpd_restrict_check(struct session *s, enum smtpd_check_point at,
    const char *rcpt, smtpd_restrict_done_fn done, void *arg);
int smtpd_restrict_busy(const struct session *s);
int smtpd_restrict_eod_set(void);   /* smtpd_end_of_data_restrictions set */
int smtpd_restrict_delay_reject(void);
/* The c-ares channel on the process's loop (smtpd_dns_servers), opened
 * at first use; NULL (logged) if c-ares cannot start. */
struct dns_async *smtpd_dns(struct loop *l);
long long smtpd_dns_timeout_ms(void);

/* peer.c: look the client's name up (smtpd_peername_lookup), fill
 * s->name and friends, then call done (from the loop, or at once when
 * no lookup is made). smtpd_peer_end cancels a lookup in progress. */
void smtpd_peer_lookup(struct session *s, void (*done)(struct session *s));
void smtpd_peer_end(struct session *s);

/* txn.c: run the restrictions of a check point for a command handler.
 * done's reply and counting go through txn_check_finish(); the handler
 * returns what txn_check returns. */
int txn_check(struct session *s, enum smtpd_check_point at, const char *rcpt,
    smtpd_restrict_done_fn done, void *arg);
void txn_check_finish(struct session *s, enum smtp_verb verb, int rc);
void smtpd_restrict_end(struct session *s);   /* session close */
/* policy.c: connections to policy services, kept and reused across
 * sessions. policy_ask sends request (a whole policy delegation request)
 * to pol->endpoint (id, the queue ID or NOQUEUE, starts its log lines);
 * done runs later from the loop, once, with the action
 * (borrowed for the call), or with action NULL and why (static text)
 * after the tries failed. policy_cancel stops it (done never runs) and
 * NULLs the handle. */
struct restrict_policy;
struct policy_req;
typedef void (*policy_done_fn)(void *arg, const char *action, const char *why);
struct policy_req *policy_ask(struct loop *l, const struct restrict_policy *pol,
    const char *request, const char *id, policy_done_fn done, void *arg);
void policy_cancel(struct policy_req **rq);

/* milter.c: smtpd_milters. Each hook is a no-op (or replies ok at once)
 * without milters; otherwise it pauses the session (s->milter_wait) and
 * replies when the milters answered. */
void smtpd_milter_init(void);
void smtpd_milter_connect(struct session *s);
void smtpd_milter_helo(struct session *s);
void smtpd_milter_mail(struct session *s, const char *addr, const char *params,
    size_t plen, const char *ok);
void smtpd_milter_rcpt(struct session *s, const char *addr, const char *params,
    size_t plen, const char *ok);
/* A command line smtpd does not know: reply ok (the 502) unless a
 * milter rejects it with its own reply. */
void smtpd_milter_unknown(struct session *s, const char *line, const char *ok);
/* After smtpd refused a recipient with rep: shown to the milters that
 * asked for refused recipients (SMFIP_RCPT_REJ), if any (the session
 * then waits for them); the refusal stands. */
void smtpd_milter_rcpt_rejected(struct session *s, const char *addr,
    const char *params, const char *rep);
/* go: what DATA does when the milters let it (354 and content). */
void smtpd_milter_data(struct session *s, void (*go)(struct session *s));
/* Is content to be held in memory for the milters (not written yet)? */
int smtpd_milter_active(const struct session *s);
/* End of data: content (the whole message) through the milters, then
 * commit(s, NULL) to fsync and say 250, or commit(s, rej) after a queue
 * write error; rejections and discards are answered here. */
void smtpd_milter_eom(struct session *s, struct buf *content,
    void (*commit)(struct session *s, const char *rej));
void smtpd_milter_abort(struct session *s);   /* txn_reset */
void smtpd_milter_end(struct session *s);     /* session_close */
/* The open queue file of the transaction, or NULL. */
struct queue_writer *txn_writer(const struct session *s);
/* "QUEUEID: event: CMD from name[addr]: text; from=<> to=<> proto= helo=<>" */
void session_log_event(struct session *s, const char *event, const char *cmd,
    const char *text, const char *rcpt);

/* tls.c */
void smtpd_tls_init(void);      /* pre_init: read certificate and key */
int cmd_starttls(struct session *s, const struct smtp_cmd *cmd);
/* Implicit TLS: the handshake at connect, the greeting after it. */
void tls_session_begin(struct session *s);
/* The handshake finished (CONN_EV_TLS_UP): log it, greet on 465. */
void tls_session_up(struct session *s);
/* "(using TLSv1.3 with cipher ...)" for Received:, "" without TLS. */
const char *tls_session_describe(const struct session *s);
/* Must the client STARTTLS before this verb? Replies 530 if so. */
int tls_required_reply(struct session *s, const struct smtp_verb_info *v);
/* session.c helpers for tls.c */
void session_greet(struct session *s);
void session_process_more(struct session *s);
void session_done_cb(struct session *s);
/* After an asynchronous step that may have counted errors (s->errors
 * was before): apply smtpd_soft/hard_error_limit as for a command. */
void session_count_errors(struct session *s, long long before);

/* sasl.c */
void smtpd_sasl_init(void);
int cmd_auth(struct session *s, const struct smtp_cmd *cmd);
/* A line during an AUTH exchange (no terminator). */
void sasl_session_line(struct session *s, const char *line, size_t len);
/* AUTH may be offered now (EHLO). */
int sasl_offer(const struct session *s);
/* Forget the authentication (STARTTLS) and cancel a pending check. */
void sasl_session_reset(struct session *s);
/* smtpd_sender_login_maps at MAIL: 0 ok, -1 after a 553 reply. */
int sasl_sender_check(struct session *s, const char *sender);

#endif
