/*
 * txn - one mail transaction: MAIL FROM, RCPT TO (the restriction lists
 * through restrict.c, then the recipient tables and the virtual alias
 * expansion), DATA or BDAT, and the queue file in incoming/ (hold/ after
 * a HOLD action).
 *
 * Invariants:
 * - "250 ... queued as ID" is sent only after the commit thread
 *   (lib/mail/qcommit.c) reported the file fsynced, renamed to its queue
 *   ID and its directory fsynced after the rename (commit_done()). Any
 *   queue error before that aborts the file and answers 451 4.3.0, logged
 *   with the queue ID; nothing half-written ever gets a queue-ID name.
 * - The event loop never waits for that commit: data_commit() hands the
 *   sealed file to the thread and pauses the session (s->commit_wait: no
 *   further command is read, so pipelined commands wait their turn and
 *   replies keep their order) while every other session runs. Messages
 *   ending together share a directory fsync (group commit). qmgr hears of
 *   new mail once per reported batch, after it is durable. A session that
 *   is closed while its commit runs detaches from it: the message is
 *   still committed (and delivered), as the client may not have seen it.
 * - With smtpd_milters the content stays in memory (hold_content) until
 *   the milters have seen it at end of data; smtpd/milter.c writes the
 *   edited message into the still uncommitted file and then calls
 *   data_commit(), so the 250 still follows the commit. With
 *   smtpd_end_of_data_restrictions it is held too, so that a PREPEND
 *   there reaches the top of the message (eod_checked()).
 * - smtpd_data_restrictions run at DATA, or at the first BDAT of the
 *   transaction (bdat_checked(), as Postfix): CHUNKING cannot pass them by.
 * - The queue file is created at the first accepted recipient (Postfix's
 *   smtpd_delay_open_until_valid_rcpt), so rejected transactions cost no
 *   disk I/O.
 * - MAIL, RCPT, DATA, the first BDAT and end of data wait for
 *   smtpd_restrict_check(); its continuation (mail_checked, rcpt_checked,
 *   data_checked, bdat_checked, eod_checked; helo_checked in commands.c)
 *   may run later from the loop, and then counts the command itself
 *   (txn_check_finish). No recipient is written before the relay and
 *   recipient restrictions said yes.
 * - Each final recipient address is written once (de-duplicated with the
 *   domain folded to lower case), with orig = ORCPT or the RCPT address.
 * - DATA content is never trusted to end anywhere but where smtp_data_parse
 *   says (see lib/proto/smtp.h); a too-big or too-many-hops message is read
 *   to its end, then rejected. With smtpd_forbid_bare_newline = reject a
 *   bare LF in DATA ends the session (session_bare_lf), message aborted.
 * - BDAT (RFC 3030): a chunk is exactly its announced octets, CRLF made
 *   LF and nothing else changed (binary safe, smtp_bdat_parse). "BDAT n"
 *   answers "250 2.0.0 Ok: n bytes" once the chunk is read; "BDAT n LAST"
 *   answers "queued as" only after queue_writer_commit(), like DATA. DATA
 *   after BDAT, and DATA with BODY=BINARYMIME, get 503. A chunk that takes
 *   the message over message_size_limit gets 552 and ends the transaction
 *   (later chunks are read and dropped with 503).
 * - Content limits, Postfix's meaning (lib/mail/hdrlimit.h): each logical
 *   header of the primary header is cut at header_size_limit (pieces of
 *   line_length_limit bytes started past the limit are dropped; the
 *   message is accepted, the cut logged); body lines of any length pass
 *   unchanged (Postfix splits them at line_length_limit in the queue file
 *   and joins them again at delivery, so delivered bytes are the same).
 *   Received: fields, ours included, at or over hopcount_limit: 554 5.4.0
 *   "too many hops" at end of data, as Postfix's cleanup answers.
 * Limits: smtpd_recipient_limit RCPT commands; 1000 addresses per alias
 * expansion (resolver); Message-ID is looked for in the first 1000 bytes of
 * each header field only.
 * BUGS: the content written during DATA (64 KiB pieces) still goes out
 * from the loop (page cache; see qcommit.c); the last piece, the 'E'
 * record and every wait for the disk are on the commit thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/bcc.h"
#include "mail/cchecks.h"
#include "mail/hdrlimit.h"
#include "mail/qcommit.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "smtpd.h"

#define CONTENT_FLUSH (64 * 1024)   /* write content to the queue file in chunks this big */

/* A set of strings (open addressing) for recipient de-duplication. */
struct strset {
	char **slot;
	size_t cap;    /* power of two, or 0 */
	size_t n;
};

struct txn {
	char *sender;
	struct smtp_mail_params mp;
	struct timespec arrival;
	struct queue_writer *qw;
	char id[QUEUE_ID_MAX];      /* "" until the queue file exists */
	char instance[64];          /* policy "instance": unique per transaction */
	long long nrcpt;            /* accepted RCPT commands */
	char *first_rcpt;           /* for "for <...>" in Received: */
	struct strset rcpts;
	int failed;                 /* queue I/O failed: 451 until RSET */
	struct smtp_data data;
	struct smtp_limits data_limits;
	struct buf raw;             /* parser output, before the header limits */
	struct buf content;         /* content not yet handed to the queue writer */
	int write_error;
	int lookup_error;           /* a blind copy table failed (451 at the end) */
	int bdat;                   /* content comes by BDAT (no DATA allowed) */
	int hold_content;           /* content stays in memory until end of data */
	int milters;                /* ... for the milters (smtpd_milters) */
	struct hdrlimit mh;
	/* header_checks, body_checks (lib/mail/cchecks.h), after the
	 * header limits: cc_on when a table is set */
	int cc_on;
	struct buf limited;         /* content between the two */
	struct cchecks cc;
	struct cc_log_ctx cclog;
	char *client;               /* "name[addr]", for their log lines */
	/* restrictions (restrict.c) */
	int hold;                   /* HOLD: commit into hold/ */
	int discard;                /* DISCARD: 250, then drop the file */
	char **prepend;             /* PREPEND: header lines, top of message */
	char *pend_addr;            /* RCPT waiting for its checks */
	char *pend_params;          /* its (or MAIL's) ESMTP parameters, for the milters */
	struct smtp_rcpt_params pend_rp;
	int pend_active;
	struct qcommit_req *commit; /* the commit thread has the queue file */
};

static struct qcommit *committer;
/* The wake-up for what a batch committed: "N<id>\n" per message (qmgr
 * takes each from incoming/ without listing the directory), or "I" (a
 * scan) when there were more names than fit. */
static char qmgr_names[240];
static size_t qmgr_names_len;
static int qmgr_due;           /* a batch committed mail for qmgr */
static int draining;           /* SIGTERM: exit once the last commit is in */

static const char queue_error[] = "451 4.3.0 Error: queue file write error";

/* --- string set ------------------------------------------------------------ */

static size_t
str_hash(const char *s)
{
	size_t h = 1469598103934665603ULL & SIZE_MAX;   /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * (size_t)1099511628211ULL;
	return h;
}

/* 1 added (takes ownership of s), 0 already there (s is freed). */
static int
strset_add(struct strset *set, char *s)
{
	if (2 * (set->n + 1) > set->cap) {
		size_t ncap = set->cap ? set->cap * 2 : 16;
		char **nslot = xcalloc(ncap, sizeof(*nslot));
		for (size_t i = 0; i < set->cap; i++) {
			if (set->slot[i] == NULL)
				continue;
			size_t j = str_hash(set->slot[i]) & (ncap - 1);
			while (nslot[j] != NULL)
				j = (j + 1) & (ncap - 1);
			nslot[j] = set->slot[i];
		}
		free(set->slot);
		set->slot = nslot;
		set->cap = ncap;
	}
	size_t j = str_hash(s) & (set->cap - 1);
	while (set->slot[j] != NULL) {
		if (strcmp(set->slot[j], s) == 0) {
			free(s);
			return 0;
		}
		j = (j + 1) & (set->cap - 1);
	}
	set->slot[j] = s;
	set->n++;
	return 1;
}

static void
strset_free(struct strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slot[i]);
	free(set->slot);
	memset(set, 0, sizeof(*set));
}

/* --- the transaction ------------------------------------------------------- */

const char *
txn_qid(const struct session *s)
{
	return s->tx != NULL && s->tx->id[0] ? s->tx->id : "NOQUEUE";
}

struct queue_writer *
txn_writer(const struct session *s)
{
	return s->tx != NULL ? s->tx->qw : NULL;
}

const char *
txn_instance(const struct session *s)
{
	return s->tx != NULL ? s->tx->instance : "";
}

const char *
txn_sender(const struct session *s)
{
	return s->tx != NULL ? s->tx->sender : NULL;
}

const char *
txn_auth_author(const struct session *s)
{
	/* An unauthenticated client's claim is nobody's identity. */
	return s->tx != NULL && s->sasl_user != NULL ? s->tx->mp.auth : NULL;
}

long long
txn_rcpt_count(const struct session *s)
{
	return s->tx != NULL ? s->tx->nrcpt : 0;
}

/* --- restriction hooks (restrict.c) ----------------------------------------
 * A check's continuation runs before smtpd_restrict_check() returns, or
 * later from the loop. In the first case the handler returns its rc; in
 * the second the handler returned 1 (not counted) and the continuation
 * counts the command itself. Checks nest (the first BDAT's continuation
 * may reach end of data and its checks): each keeps its own state. */
#define CHECK_PENDING 2   /* the continuation has not run yet */
static int check_sync, check_rc;

int
txn_check(struct session *s, enum smtpd_check_point at, const char *rcpt,
    smtpd_restrict_done_fn done, void *arg)
{
	int saved_sync = check_sync, saved_rc = check_rc, rc;

	check_sync = 1;
	check_rc = CHECK_PENDING;
	smtpd_restrict_check(s, at, rcpt, done, arg);
	rc = check_rc == CHECK_PENDING ? 1 : check_rc;
	check_sync = saved_sync;
	check_rc = saved_rc;
	return rc;
}

void
txn_check_finish(struct session *s, enum smtp_verb verb, int rc)
{
	if (check_sync)
		check_rc = rc;
	else if (rc == 0)
		s->cmd_ok[verb]++;
	else if (rc < 0)
		s->errors++;
}

/* HOLD, DISCARD and PREPEND apply to the whole message, whichever
 * command triggered them (Postfix). */
static void
check_keep(struct txn *tx, const struct smtpd_restrict_verdict *v)
{
	if (tx == NULL)
		return;
	tx->hold |= v->hold;
	tx->discard |= v->discard;
	for (size_t i = 0; v->prepend != NULL && v->prepend[i] != NULL; i++)
		strv_push(&tx->prepend, v->prepend[i]);
}

void
txn_reset(struct session *s)
{
	struct txn *tx = s->tx;

	if (tx != NULL) {
		if (tx->commit != NULL) {
			/* Closed while the commit runs: it still completes. */
			qcommit_detach(tx->commit);
			tx->commit = NULL;
			s->commit_wait = 0;
		}
		if (tx->qw != NULL)
			queue_writer_abort(&tx->qw);
		free(tx->sender);
		smtp_mail_params_free(&tx->mp);
		free(tx->first_rcpt);
		strset_free(&tx->rcpts);
		buf_free(&tx->raw);
		buf_free(&tx->content);
		hdrlimit_free(&tx->mh);
		buf_free(&tx->limited);
		cchecks_free(&tx->cc);
		free(tx->client);
		strv_free(&tx->prepend);
		free(tx->pend_addr);
		free(tx->pend_params);
		if (tx->pend_active)
			smtp_rcpt_params_free(&tx->pend_rp);
		free(tx);
		s->tx = NULL;
		smtpd_milter_abort(s);
	}
	if (s->state != SESS_QUIT)
		session_enter(s, SESS_IDLE);
}

static int
has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* "FROM:" / "TO:" then optional blanks (Postfix tolerates "FROM: <a>"). */
static const char *
skip_keyword(const struct smtp_cmd *cmd, const char *kw)
{
	size_t k = strlen(kw);

	if (cmd->arg_len < k || strncasecmp(cmd->arg, kw, k) != 0)
		return NULL;
	const char *p = cmd->arg + k;
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The text after the path: parameters, which must start with a blank. */
static int
params_start(const struct smtp_cmd *cmd, const char *end, const char **params_r,
    size_t *len_r)
{
	const char *stop = cmd->arg + cmd->arg_len;

	if (end < stop && *end != ' ' && *end != '\t')
		return -1;
	*params_r = end;
	*len_r = (size_t)(stop - end);
	return 0;
}

static void
mail_checked(struct session *s, const struct smtpd_restrict_verdict *v, void *arg)
{
	(void)arg;
	if (v->reply != NULL) {
		reply(s, "%s", v->reply);
		txn_reset(s);
		txn_check_finish(s, SMTP_MAIL, -1);
		return;
	}
	check_keep(s->tx, v);
	session_enter(s, SESS_MAIL);
	/* The milters see MAIL after smtpd's own checks; the 250 waits for them. */
	smtpd_milter_mail(s, s->tx->sender, s->tx->pend_params,
	    strlen(s->tx->pend_params), "250 2.1.0 Ok");
	xfree(&s->tx->pend_params);
	txn_check_finish(s, SMTP_MAIL, 0);
}

/* A full queue file system is a 452 at MAIL FROM, before the client
 * sends the message, as in Postfix (queue_minfree). A failed statvfs
 * lets the message in: its writes and fsyncs still answer for it. */
static int
queue_room(struct session *s, long long size)
{
	static const char rep[] = "452 4.3.1 Insufficient system storage";
	unsigned long long avail;
	int r = queue_space(smtpd_conf.queue_directory, smtpd_conf.queue_minfree,
	    size > 0 ? (unsigned long long)size : 0, &avail);

	if (r < 0)
		log_warn("statvfs %s", smtpd_conf.queue_directory);
	if (r != 0)
		return 0;
	log_warnx("not enough free space in the mail queue: %llu bytes available, "
	    "%llu must stay free (queue_minfree, 1.5 x message_size_limit)%s",
	    avail, smtpd_conf.queue_minfree, size > 0 ? ", and the declared SIZE "
	    "must fit in what is left and in half of what is available" : "");
	reply(s, "%s", rep);
	session_log_reject(s, "MAIL", rep, NULL);
	return -1;
}

int
txn_mail(struct session *s, const struct smtp_cmd *cmd)
{
	const char *p, *end, *err, *params;
	char *addr = NULL, *perr = NULL;
	size_t plen;
	struct smtp_mail_params mp;

	if (s->tx != NULL) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		return -1;
	}
	if ((p = skip_keyword(cmd, "FROM:")) == NULL) {
		reply(s, "%s", cmd->verb->syntax);
		return -1;
	}
	if (addr_parse_path(p, ADDR_UTF8 | smtpd_conf.path_flags, &addr, &end,
	    &err) < 0
	    || params_start(cmd, end, &params, &plen) < 0
	    || (addr[0] != '\0' && strchr(addr, '@') == NULL)) {
		log_debug("%s[%s]: MAIL: %s", s->name, s->addr, addr ? "bad" : err);
		reply(s, "501 5.1.7 Bad sender address syntax");
		free(addr);
		return -1;
	}
	if (smtp_mail_params_parse(params, plen, &smtpd_conf.limits, &mp, &perr)
	    != SMTP_DONE) {
		reply(s, "%s", perr);
		free(perr);
		free(addr);
		return -1;
	}
	const char *rej = NULL;
	if (mp.smtputf8 && !smtpd_conf.smtputf8_enable)
		rej = "555 5.5.4 Unsupported option: SMTPUTF8";
	else if (mp.auth_given && !smtpd_conf.sasl_enable)
		/* AUTH= goes with the AUTH extension (Postfix does the same). */
		rej = "555 5.5.4 Unsupported option: AUTH";
	else if (mp.body == SMTP_BODY_BINARYMIME && !smtpd_ehlo_offer("CHUNKING"))
		rej = "555 5.5.4 Unsupported option: BODY=BINARYMIME";
	else if (!mp.smtputf8 && has_8bit(addr))
		rej = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
	else if (smtpd_conf.message_size_limit > 0
	    && mp.size > smtpd_conf.message_size_limit)
		rej = "552 5.3.4 Message size exceeds fixed limit";
	if (rej != NULL) {
		reply(s, "%s", rej);
		smtp_mail_params_free(&mp);
		free(addr);
		return -1;
	}
	if (queue_room(s, mp.size) < 0) {
		smtp_mail_params_free(&mp);
		free(addr);
		return -1;
	}
	if (sasl_sender_check(s, addr) < 0) {
		smtp_mail_params_free(&mp);
		free(addr);
		return -1;
	}
	struct txn *tx = xcalloc(1, sizeof(*tx));
	tx->sender = addr;
	tx->mp = mp;
	clock_gettime(CLOCK_REALTIME, &tx->arrival);
	{
		/* Postfix's form: one value for all the requests of this
		 * transaction, another for the next (policyd-spf caches by it) */
		static unsigned long seq;
		snprintf(tx->instance, sizeof(tx->instance), "%lx.%lx.%lx",
		    (unsigned long)log_pid(), (unsigned long)tx->arrival.tv_sec, ++seq);
	}
	buf_init(&tx->raw, 0);
	buf_init(&tx->content, 0);
	buf_init(&tx->limited, 0);
	hdrlimit_init(&tx->mh, (size_t)smtpd_conf.header_size_limit,
	    smtpd_conf.limits.line_length_limit);
	s->tx = tx;
	tx->pend_params = xstrndup(params, plen);
	return txn_check(s, SMTPD_CHECK_MAIL, NULL, mail_checked, NULL);
}

/* Create the queue file and write the envelope head. 0, or -1 (logged). */
static int
queue_open(struct session *s)
{
	struct txn *tx = s->tx;
	char *err = NULL;

	tx->qw = queue_writer_open(smtpd_conf.queue_directory, QUEUE_INCOMING,
	    (uid_t)-1, (gid_t)-1, &err);
	if (tx->qw == NULL) {
		log_warnx("create queue file in %s/%s: %s", smtpd_conf.queue_directory,
		    QUEUE_INCOMING, err ? err : strerror(errno));
		free(err);
		return -1;
	}
	snprintf(tx->id, sizeof(tx->id), "%s", queue_writer_id(tx->qw));
	if (s->sasl_user != NULL)
		log_info("%s: client=%s[%s], sasl_method=%s, sasl_username=%s", tx->id,
		    s->name, s->addr, s->sasl_method, s->sasl_user);
	else
		log_info("%s: client=%s[%s]", tx->id, s->name, s->addr);

	static const char *const bodies[] = { NULL, "7BIT", "8BITMIME", "BINARYMIME" };
	static const char *const rets[] = { NULL, "FULL", "HDRS" };
	struct qattr attrs[] = {
		{ "client_name", (char *)s->name },
		{ "client_addr", s->addr },
		{ "helo", s->helo },
		{ "proto", (char *)session_proto(s) },
		{ "body", (char *)bodies[tx->mp.body] },
		{ "smtputf8", tx->mp.smtputf8 ? "yes" : NULL },
		{ "envid", tx->mp.envid },
		{ "ret", (char *)rets[tx->mp.ret] },
		{ "sasl_username", s->sasl_user },
	};
	if (queue_writer_arrival(tx->qw, &tx->arrival) < 0
	    || queue_writer_sender(tx->qw, tx->sender) < 0)
		goto fail;
	for (size_t i = 0; i < ARRAY_SIZE(attrs); i++)
		if (attrs[i].value != NULL
		    && queue_writer_attr(tx->qw, attrs[i].name, attrs[i].value) < 0)
			goto fail;
	return 0;
fail:
	log_warn("%s: write queue file", tx->id);
	queue_writer_abort(&tx->qw);
	return -1;
}

/* Which addresses does rcpt become? 0 and *list_r, or -1 after a reply. */
static int
rcpt_resolve(struct session *s, const char *rcpt, char ***list_r)
{
	struct resolver *res = smtpd_conf.resolver;
	char *local = NULL, *domain = NULL, *rep = NULL;
	char **list = NULL;
	int r;

	r = resolver_virtual_alias(res, rcpt, &list);
	if (r == 1) {
		*list_r = list;
		return 0;
	}
	if (r == -1) {
		rep = xasprintf("451 4.3.0 <%s>: Temporary lookup failure", rcpt);
	} else if (r == -2) {
		rep = xasprintf("550 5.1.1 <%s>: Recipient address rejected: "
		    "virtual alias loop or too many addresses", rcpt);
	} else {
		enum rcpt_class cls = RCPT_RELAY;
		addr_split(rcpt, &local, &domain);
		if (resolver_class_ex(res, domain, &cls) < 0) {
			rep = xasprintf("451 4.3.0 <%s>: Temporary lookup failure", rcpt);
		} else if (domain[0] == '\0' && strcasecmp(local, "postmaster") != 0) {
			rep = xasprintf("504 5.5.2 <%s>: Recipient address rejected: "
			    "need fully-qualified address", rcpt);
		} else if (cls != RCPT_RELAY && domain[0] != '\0') {
			/* Relaying (DESIGN.md invariant 4) was decided by
			 * smtpd_relay_restrictions before we got here. */
			/* RFC 5321 4.5.1: bare <postmaster> is always accepted. */
			int known = resolver_rcpt_known(res, rcpt);
			if (known < 0)
				rep = xasprintf("451 4.3.0 <%s>: Temporary lookup failure", rcpt);
			else if (known == 0)
				rep = xasprintf("550 5.1.1 <%s>: Recipient address rejected: "
				    "User unknown in %s", rcpt, cls == RCPT_VIRTUAL
				    ? "virtual mailbox table" : "local recipient table");
		}
		free(local);
		free(domain);
	}
	if (rep != NULL) {
		reply(s, "%s", rep);
		session_log_reject(s, "RCPT", rep, rcpt);
		smtpd_milter_rcpt_rejected(s, rcpt, s->tx->pend_params, rep);
		free(rep);
		strv_free(&list);
		return -1;
	}
	strv_free(&list);
	strv_push(&list, rcpt);
	*list_r = list;
	return 0;
}

/* smtpd_reject_unlisted_sender, after the restrictions as Postfix does
 * it: a sender of our domains that is no recipient of ours is refused
 * (at RCPT, whatever the lists said). 1 after the reply, else 0. */
static int
sender_unlisted(struct session *s, const char *rcpt)
{
	const char *sender = s->tx->sender, *why = "User unknown";
	char *rep = NULL;
	int r;

	if (sender[0] == '\0' || (r = smtpd_addr_known(sender, &why)) == 1)
		return 0;
	rep = r < 0 ? xasprintf("451 4.3.0 <%s>: Temporary lookup failure", sender)
	    : xasprintf("550 5.1.0 <%s>: Sender address rejected: %s", sender, why);
	reply(s, "%s", rep);
	session_log_reject(s, "RCPT", rep, rcpt);
	smtpd_milter_rcpt_rejected(s, rcpt, s->tx->pend_params, rep);
	free(rep);
	return 1;
}

static void rcpt_checked(struct session *s,
    const struct smtpd_restrict_verdict *v, void *arg);

int
txn_rcpt(struct session *s, const struct smtp_cmd *cmd)
{
	struct txn *tx = s->tx;
	const char *p, *end, *err, *params;
	char *addr = NULL, *perr = NULL;
	size_t plen;
	struct smtp_rcpt_params rp;

	if (tx == NULL) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return -1;
	}
	if (tx->failed) {
		reply(s, "%s", queue_error);
		return -1;
	}
	if ((p = skip_keyword(cmd, "TO:")) == NULL) {
		reply(s, "%s", cmd->verb->syntax);
		return -1;
	}
	if (addr_parse_path(p, (tx->mp.smtputf8 ? ADDR_UTF8 : 0) | smtpd_conf.path_flags,
	    &addr, &end, &err) < 0
	    || params_start(cmd, end, &params, &plen) < 0 || addr[0] == '\0') {
		log_debug("%s[%s]: RCPT: %s", s->name, s->addr, addr ? "bad" : err);
		reply(s, "501 5.1.3 Bad recipient address syntax");
		free(addr);
		return -1;
	}
	if (smtp_rcpt_params_parse(params, plen, &smtpd_conf.limits, &rp, &perr)
	    != SMTP_DONE) {
		reply(s, "%s", perr);
		free(perr);
		free(addr);
		return -1;
	}
	tx->pend_addr = addr;
	tx->pend_rp = rp;
	tx->pend_active = 1;
	free(tx->pend_params);
	tx->pend_params = xstrndup(params, plen);
	return txn_check(s, SMTPD_CHECK_RCPT, addr, rcpt_checked, NULL);
}

/* After the restrictions: the limit, the tables, the queue file. */
static void
rcpt_checked(struct session *s, const struct smtpd_restrict_verdict *v, void *arg)
{
	struct txn *tx = s->tx;
	char *addr = tx->pend_addr;
	struct smtp_rcpt_params rp = tx->pend_rp;
	char **list = NULL;
	int rc = -1;

	(void)arg;
	tx->pend_addr = NULL;
	tx->pend_active = 0;
	if (v->reply != NULL) {
		reply(s, "%s", v->reply);
		smtpd_milter_rcpt_rejected(s, addr, tx->pend_params, v->reply);
		goto out;
	}
	if (smtpd_conf.recipient_limit > 0 && tx->nrcpt >= smtpd_conf.recipient_limit) {
		/* Not a client error (Postfix): the client retries the rest. */
		reply(s, "452 4.5.3 Error: too many recipients");
		rc = 1;
		goto out;
	}
	if (smtpd_conf.reject_unlisted_sender && sender_unlisted(s, addr))
		goto out;
	if (rcpt_resolve(s, addr, &list) < 0)
		goto out;
	check_keep(tx, v);
	if (tx->qw == NULL && queue_open(s) < 0)
		goto queue_fail;
	const char *orig = rp.orcpt != NULL ? rp.orcpt : addr;
	const char *notify = smtp_notify_str(rp.notify);
	for (size_t i = 0; list[i] != NULL; i++) {
		if (strset_add(&tx->rcpts, addr_fold_domain(list[i]))
		    && queue_writer_rcpt(tx->qw, list[i], orig, notify) < 0) {
			log_warn("%s: write queue file", tx->id);
			goto queue_fail;
		}
	}
	if (tx->nrcpt++ == 0)
		tx->first_rcpt = xstrdup(addr);
	session_enter(s, SESS_RCPT);
	smtpd_milter_rcpt(s, addr, tx->pend_params, strlen(tx->pend_params),
	    "250 2.1.5 Ok");
	rc = 0;
	goto out;

queue_fail:
	if (tx->qw != NULL)
		queue_writer_abort(&tx->qw);
	tx->failed = 1;
	reply(s, "%s", queue_error);
out:
	strv_free(&list);
	smtp_rcpt_params_free(&rp);
	free(addr);
	txn_check_finish(s, SMTP_RCPT, rc);
}

/* Hand buffered content to the queue writer. */
static void
content_flush(struct txn *tx)
{
	if (tx->content.len == 0 || tx->hold_content)
		return;   /* held: the whole message, at its end */
	if (!tx->write_error && tx->qw != NULL
	    && queue_writer_content(tx->qw, tx->content.data, tx->content.len) < 0) {
		log_warn("%s: write queue file", tx->id);
		tx->write_error = 1;
	}
	buf_reset(&tx->content);
}

static void
received_header(struct session *s)
{
	struct txn *tx = s->tx;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int v6 = strchr(s->addr, ':') != NULL;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
	buf_printf(&tx->raw, "Received: from %s (%s [%s%s])\n",
	    s->helo ? s->helo : s->name, s->name, v6 ? "IPv6:" : "", s->addr);
	if (s->tls_up)
		buf_printf(&tx->raw, "\t(using %s)\n\t(No client certificate "
		    "requested)\n", tls_session_describe(s));
	buf_printf(&tx->raw, "\tby %s (%s) with %s id %s",
	    smtpd_conf.myhostname, smtpd_conf.mail_name,
	    session_proto(s), tx->id);
	if (tx->nrcpt == 1)
		buf_printf(&tx->raw, "\n\tfor <%s>; %s\n", tx->first_rcpt, date);
	else
		buf_printf(&tx->raw, ";\n\t%s\n", date);
}

/* What the header limits let through, through the content checks. */
static void
content_checks(struct txn *tx)
{
	if (tx->limited.len > 0) {
		cchecks_feed(&tx->cc, tx->limited.data, tx->limited.len, &tx->content);
		buf_reset(&tx->limited);
	}
}

/* Parser output through the header limits and the content checks, then
 * toward the queue file. Our Received: goes through too, so it counts as
 * a hop and header_checks see it (as Postfix's cleanup does). */
static void
content_take(struct txn *tx)
{
	if (tx->raw.len > 0) {
		hdrlimit_feed(&tx->mh, tx->raw.data, tx->raw.len,
		    tx->cc_on ? &tx->limited : &tx->content);
		buf_reset(&tx->raw);
		content_checks(tx);
	}
	if (tx->data.too_big || tx->write_error)
		buf_reset(&tx->content);   /* read to the end, keep nothing */
	else if (tx->content.len >= CONTENT_FLUSH)
		content_flush(tx);
}

/* DATA or the first BDAT: our Received: and the content parser. */
static void
content_begin(struct session *s)
{
	struct txn *tx = s->tx;
	int r;

	/* Blind copies join the recipients now: the queue file's envelope
	 * ends where its content starts. A failure is said at the end of
	 * the content, as a write error is. */
	r = bcc_add(smtpd_conf.bcc, smtpd_conf.resolver, tx->qw, tx->sender);
	if (r == -2) {
		log_warn("%s: write queue file", tx->id);
		tx->write_error = 1;
	} else if (r == -1) {
		log_warnx("%s: blind copy table lookup failed", tx->id);
		tx->lookup_error = 1;
	}

	/* PREPEND (access and policy actions) above our Received:, as
	 * Postfix's smtpd writes them. */
	for (size_t i = 0; tx->prepend != NULL && tx->prepend[i] != NULL; i++)
		buf_printf(&tx->raw, "%s\n", tx->prepend[i]);
	/* Held for the milters, for a PREPEND that
	 * smtpd_end_of_data_restrictions may still add at the top, or for
	 * the recipients a header_checks REDIRECT or BCC changes. */
	tx->milters = smtpd_milter_active(s);
	tx->hold_content = tx->milters || smtpd_restrict_eod_set()
	    || smtpd_conf.cc.envelope;
	cc_tables_begin(&smtpd_conf.cc, &tx->cc, smtpd_conf.limits.line_length_limit,
	    &tx->cclog);
	if ((tx->cc_on = cchecks_active(&tx->cc))) {
		tx->client = xasprintf("%s[%s]", s->name, s->addr);
		tx->cclog = (struct cc_log_ctx){ &smtpd_conf.cc, tx->id, tx->client,
		    tx->sender, tx->first_rcpt != NULL ? tx->first_rcpt : "",
		    session_proto(s), s->helo != NULL ? s->helo : "" };
	}
	received_header(s);
	smtp_data_init(&tx->data);
	tx->data_limits = smtpd_conf.limits;
	tx->data_limits.max_size = smtpd_conf.message_size_limit;
	tx->data_limits.reject_bare_lf = s->bare_lf_reject;
	content_take(tx);
}

/* May content (DATA, BDAT) come now? 0, or -1 after the 503/451 reply. */
static int
content_check(struct session *s)
{
	struct txn *tx = s->tx;

	if (tx == NULL) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return -1;
	}
	if (tx->failed || tx->qw == NULL) {
		reply(s, "%s", tx->nrcpt == 0 && !tx->failed
		    ? "503 5.5.1 Error: need RCPT command" : queue_error);
		return -1;
	}
	return 0;
}

/* DATA accepted (by the restrictions and the milters): the content comes. */
static void
data_go(struct session *s)
{
	content_begin(s);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	session_enter(s, SESS_DATA);
}

static void
data_checked(struct session *s, const struct smtpd_restrict_verdict *v, void *arg)
{
	(void)arg;
	if (v->reply != NULL) {
		reply(s, "%s", v->reply);
		txn_check_finish(s, SMTP_DATA, -1);
		return;
	}
	check_keep(s->tx, v);
	smtpd_milter_data(s, data_go);
	txn_check_finish(s, SMTP_DATA, 0);
}

int
txn_data(struct session *s, const struct smtp_cmd *cmd)
{
	struct txn *tx = s->tx;

	if (content_check(s) < 0)
		return -1;
	/* RFC 3030 section 3: DATA after BDAT, or with BINARYMIME, is 503. */
	if (tx->bdat) {
		reply(s, "503 5.5.1 Error: DATA cannot be mixed with BDAT");
		return -1;
	}
	if (tx->mp.body == SMTP_BODY_BINARYMIME) {
		reply(s, "503 5.5.1 Error: BODY=BINARYMIME requires BDAT");
		return -1;
	}
	return txn_check(s, SMTPD_CHECK_DATA, NULL, data_checked, NULL);
}

/* End of data: reject, or commit and only then say "queued". */
static void data_commit(struct session *s, const char *rej);
static void commit_done(void *ctx, const char *id, int err, const char *step);

/* After smtpd_end_of_data_restrictions, the milters see the message
 * (Postfix: smtpd's checks, then cleanup's milters), then the commit. */
static void
eod_checked(struct session *s, const struct smtpd_restrict_verdict *v, void *arg)
{
	struct txn *tx = s->tx;

	(void)arg;
	tx->hold |= v->hold;
	tx->discard |= v->discard;
	if (v->reply == NULL && v->prepend != NULL) {
		/* The content is still in memory (content_begin): the header
		 * goes on top, where the earlier stages put theirs. */
		struct buf top = BUF_INIT(0);
		for (size_t i = 0; v->prepend[i] != NULL; i++)
			buf_printf(&top, "%s\n", v->prepend[i]);
		(void)buf_append(&top, tx->content.data, tx->content.len);
		buf_free(&tx->content);
		tx->content = top;
	}
	if (v->reply == NULL && tx->milters) {
		smtpd_milter_eom(s, &tx->content, data_commit);
		return;
	}
	if (v->reply == NULL && tx->hold_content) {
		tx->hold_content = 0;
		content_flush(tx);
		if (tx->write_error) {
			session_log_reject(s, "END-OF-MESSAGE", queue_error,
			    tx->nrcpt == 1 ? tx->first_rcpt : NULL);
			data_commit(s, queue_error);
			return;
		}
	}
	data_commit(s, v->reply);
}

/* header_checks' REDIRECT and BCC, at the end of the content, which is
 * still in memory (content_begin held it): the recipients can change.
 * 0, -1 lookup failure, -2 queue file error. */
static int
content_checks_envelope(struct txn *tx)
{
	if (tx->cc.redirect == NULL && tx->cc.bcc == NULL)
		return 0;
	if (!tx->hold_content) {
		log_warnx("%s: REDIRECT or BCC from a table that had none when smtpd "
		    "started: ignored (postern reload makes it count)", tx->id);
		return 0;
	}
	return cc_envelope_apply(&tx->cc, smtpd_conf.resolver, tx->qw);
}

static void
data_done(struct session *s)
{
	struct txn *tx = s->tx;
	const char *rej = NULL;
	int r;

	s->where = "END-OF-MESSAGE";
	content_take(tx);
	hdrlimit_end(&tx->mh, tx->cc_on ? &tx->limited : &tx->content);
	content_checks(tx);
	cchecks_end(&tx->cc, &tx->content);
	if (tx->data.too_big || tx->write_error)
		buf_reset(&tx->content);   /* as content_take() */
	content_flush(tx);
	tx->hold |= tx->cc.hold;
	tx->discard |= tx->cc.discard;
	if (tx->cc.lookup_error) {
		log_warnx("%s: header_checks or body_checks: table lookup failed",
		    tx->id);
		tx->lookup_error = 1;
	}
	if (tx->mh.truncated > 0)
		log_info("%s: %lld header(s) truncated at header_size_limit=%lld",
		    tx->id, tx->mh.truncated, smtpd_conf.header_size_limit);
	if (tx->data.too_big)
		rej = "552 5.3.4 Error: message file too big";
	else if (smtpd_conf.hopcount_limit > 0
	    && tx->mh.hops >= smtpd_conf.hopcount_limit)
		rej = "554 5.4.0 Error: too many hops";   /* Postfix's cleanup */
	else if (tx->write_error)
		rej = queue_error;
	else if (tx->lookup_error)
		rej = "451 4.3.0 Error: temporary lookup failure";
	else if (tx->cc.reject != NULL) {
		/* logged as the action fired, as Postfix's cleanup does */
		data_commit(s, tx->cc.reject);
		return;
	} else if ((r = content_checks_envelope(tx)) == -1)
		rej = "451 4.3.0 Error: temporary lookup failure";
	else if (r < 0) {
		log_warn("%s: write queue file", tx->id);
		rej = queue_error;
	}
	if (rej != NULL) {
		session_log_reject(s, "END-OF-MESSAGE", rej,
		    tx->nrcpt == 1 ? tx->first_rcpt : NULL);
		data_commit(s, rej);
		return;
	}
	(void)txn_check(s, SMTPD_CHECK_EOD, NULL, eod_checked, NULL);
}

/* rej: NULL to commit, else the reply (already logged). */
static void
data_commit(struct session *s, const char *rej)
{
	struct txn *tx = s->tx;
	char id[QUEUE_ID_MAX];

	if (rej == NULL && tx->discard) {
		/* DISCARD: the client hears success, the queue keeps nothing
		 * (logged as "discard" when the action fired). */
		snprintf(id, sizeof(id), "%s", tx->id);
		queue_writer_abort(&tx->qw);
		reply(s, "250 2.0.0 Ok: queued as %s", id);
		txn_reset(s);
		return;
	}
	if (rej == NULL && tx->hold && queue_writer_retarget(tx->qw,
	    smtpd_conf.queue_directory, QUEUE_HOLD) < 0) {
		log_warn("%s: hold queue", tx->id);
		rej = queue_error;
	}
	if (rej != NULL) {
		reply(s, "%s", rej);
		txn_reset(s);
		return;
	}
	/* The 250 comes from commit_done(); until then nothing is read. */
	tx->commit = qcommit_submit(committer, tx->qw, commit_done, s);
	tx->qw = NULL;
	s->commit_wait = 1;
}

static void
qmgr_note(const char *id)
{
	int n;

	qmgr_due = 1;
	if (qmgr_names_len == SIZE_MAX)
		return;
	n = snprintf(qmgr_names + qmgr_names_len,
	    sizeof(qmgr_names) - qmgr_names_len, "N%s\n", id);
	if (n < 0 || (size_t)n >= sizeof(qmgr_names) - qmgr_names_len)
		qmgr_names_len = SIZE_MAX;   /* too many: a scan finds them */
	else
		qmgr_names_len += (size_t)n;
}

/* The commit thread's report (on the loop). s is NULL when the session
 * was closed meanwhile. */
static void
commit_done(void *ctx, const char *id, int err, const char *step)
{
	struct session *s = ctx;
	struct txn *tx;

	if (s == NULL) {
		if (err != 0)
			log_warnx("%s: commit queue file: %s: %s (client gone)", id,
			    step, strerror(err));
		else {
			log_info("%s: queued after the client went away", id);
			qmgr_note(id);
		}
		return;
	}
	tx = s->tx;
	tx->commit = NULL;
	s->commit_wait = 0;
	if (err != 0) {
		log_warnx("%s: commit queue file: %s: %s", id, step, strerror(err));
		session_log_reject(s, "END-OF-MESSAGE", queue_error,
		    tx->nrcpt == 1 ? tx->first_rcpt : NULL);
		reply(s, "%s", queue_error);
		txn_reset(s);
	} else {
		if (tx->mh.message_id != NULL)
			log_info("%s: message-id=%s", id, tx->mh.message_id);
		reply(s, "250 2.0.0 Ok: queued as %s", id);
		if (!tx->hold)
			qmgr_note(id);
		txn_reset(s);
	}
	session_process_more(s);
	session_done_cb(s);
}

/* After each reported batch: one wake-up for all its messages. */
static void
commit_batch_done(void *ctx)
{
	(void)ctx;
	if (qmgr_due) {
		qmgr_due = 0;
		if (qmgr_names_len == SIZE_MAX)
			(void)trigger_keep("qmgr", "I");
		else
			(void)trigger_keep("qmgr", qmgr_names);
		qmgr_names_len = 0;
		qmgr_names[0] = '\0';
	}
	if (draining && !txn_busy())
		server_exit_when_idle();   /* the skeleton looks again */
}

void
txn_init(struct loop *l)
{
	committer = qcommit_new(l, commit_batch_done, NULL);
	if (committer == NULL)
		log_fatal("start the queue commit thread");
}

int
txn_busy(void)
{
	return committer != NULL && qcommit_pending(committer) > 0;
}

void
txn_drain(void)
{
	unsigned long long files, dirs, batches;

	draining = 1;
	if (committer == NULL)
		return;
	qcommit_stats(committer, &files, &dirs, &batches);
	log_info("queue commits: %llu file fsyncs, %llu directory fsyncs, "
	    "%llu batches", files, dirs, batches);
}

size_t
txn_data_feed(struct session *s, const char *p, size_t n)
{
	struct txn *tx = s->tx;
	size_t used = 0;
	enum smtp_result r;

	r = smtp_data_parse(&tx->data, &tx->data_limits, p, n, &used, &tx->raw);
	content_take(tx);
	if (r == SMTP_DONE)
		data_done(s);
	else if (r == SMTP_ERROR && tx->data.bare_lf)
		session_bare_lf(s);
	else if (r == SMTP_ERROR)
		log_panic("%s: DATA parser called after the end", __func__);
	return used;
}

/* The chunk of this BDAT is taken as content. */
static void
bdat_take(struct session *s)
{
	s->chunk_discard = 0;
	if (s->chunk_left == 0)
		txn_chunk_end(s);   /* "BDAT 0 LAST": no octets to wait for */
}

/* The first BDAT of a transaction passed smtpd_data_restrictions (as
 * Postfix runs them there); refused, its chunk and any later ones are
 * dropped (the transaction is gone: 503 until a new MAIL). */
static void
bdat_checked(struct session *s, const struct smtpd_restrict_verdict *v,
    void *arg)
{
	(void)arg;
	if (v->reply != NULL) {
		reply(s, "%s", v->reply);
		txn_reset(s);
		txn_check_finish(s, SMTP_BDAT, -1);
		return;
	}
	check_keep(s->tx, v);
	s->tx->bdat = 1;
	content_begin(s);
	bdat_take(s);
	txn_check_finish(s, SMTP_BDAT, 0);
}

int
txn_bdat(struct session *s, const struct smtp_cmd *cmd)
{
	if (content_check(s) < 0)
		return -1;
	if (!s->tx->bdat)
		return txn_check(s, SMTPD_CHECK_DATA, NULL, bdat_checked, NULL);
	bdat_take(s);
	return 0;
}

void
txn_chunk_feed(struct session *s, const char *p, size_t n)
{
	struct txn *tx = s->tx;

	smtp_bdat_parse(&tx->data, &tx->data_limits, p, n, &tx->raw);
	content_take(tx);
}

void
txn_chunk_end(struct session *s)
{
	struct txn *tx = s->tx;

	if (s->chunk_last) {
		smtp_bdat_end(&tx->data, &tx->data_limits, &tx->raw);
		data_done(s);   /* 250 only after the commit, as for DATA */
		return;
	}
	if (tx->data.too_big) {
		/* Said now, not at LAST: the client stops sending chunks. */
		const char *rej = "552 5.3.4 Error: message file too big";
		reply(s, "%s", rej);
		session_log_reject(s, "BDAT", rej,
		    tx->nrcpt == 1 ? tx->first_rcpt : NULL);
		txn_reset(s);
		return;
	}
	reply(s, "250 2.0.0 Ok: %lld bytes", s->chunk_size);
}
