/*
 * psub - one local submission: the frames of lib/mail/submit.h in, one
 * queue file in incoming/ out.
 *
 * The same code serves the public/pickup socket and maildrop/ files, so a
 * message is treated the same whichever way it came.
 *
 * Invariants:
 * - The submitter is the uid given by the caller (SO_PEERCRED or the file
 *   owner), never a value from the stream. A sender from the stream (-f)
 *   is honoured, as Postfix does, and logged next to the uid.
 * - The queue file is committed only on the end frame, after its size
 *   matched what was received; any failure before that aborts it, so
 *   nothing half-written gets a queue ID.
 * - The header is buffered (at most header_size_limit plus one frame)
 *   until its end is known, because -t recipients must be in the envelope
 *   before any content is written; the body is streamed.
 * - header_checks, body_checks and the rest (lib/mail/cchecks.h) see the
 *   content as it comes (our Received: and the rewritten header first);
 *   with a table set the content is held in memory, as for the milters,
 *   and their verdict is applied at the end, before the milters see it:
 *   REJECT bounces as a milter's does (below), DISCARD drops, HOLD
 *   commits into hold/, a failed lookup is a temporary failure.
 * - With non_smtpd_milters the content is held in memory and goes through
 *   the milters at the end (milter_run_start, on pickup's loop: the end
 *   frame answers PSUB_WAIT and the caller's done callback gets the
 *   result, so other submissions go on meanwhile); their edits are applied to
 *   the still uncommitted file (milter_queue_apply), so what gets the
 *   queue ID is the edited message. TEMPFAIL (or a failed milter with
 *   milter_default_action = tempfail) is a temporary failure: sendmail
 *   leaves the message in maildrop/ for the next scan. REJECT bounces to
 *   the sender as Postfix does: the file is committed with every
 *   recipient done and a bounce/ID log (fsynced first) that qmgr turns
 *   into the DSN. DISCARD drops it (logged).
 * Trusts nothing in the frames: every attribute is checked and bounded.
 * Limits: message_size_limit content bytes; 100000 recipients (queue).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/bcc.h"
#include "mail/bounce.h"
#include "mail/hdrlimit.h"
#include "mail/milter_chain.h"
#include "mail/queue.h"
#include "mail/submit.h"
#include "pickup.h"

#define ENVID_MAX 100
#define FULLNAME_MAX 200

enum psub_state { ST_ENVELOPE, ST_HEADER, ST_BODY, ST_END };

struct psub {
	uid_t uid;
	const char *source;
	enum psub_state state;
	char *login;
	char *sender;
	char *fullname;
	char **rcpts;            /* from the envelope */
	int extract;
	const char *notify;      /* static: "", "NEVER" or a subset */
	char *ret, *envid, *body;
	struct buf hdr;          /* content until the header end is known */
	long long size;
	struct queue_writer *qw;
	char id[QUEUE_ID_MAX];
	char *message_id;
	char *reason;
	int exit_code;
	struct timespec arrival;
	int milter;              /* non_smtpd_milters: content held in msg */
	int cc_on;               /* content checks: content held in msg */
	struct cchecks cc;
	struct cc_log_ctx cclog;
	struct buf msg;
	char **mrcpts;           /* the recipients as the milters see them */
	const char *mrcpt;       /* {rcpt_addr}: the last one */
	struct loop *loop;       /* where the milters run */
	struct milter_run *run;  /* running, or NULL */
	struct milter_message mmsg;
	psub_done_fn done;
	void *done_ctx;
};

struct psub *
psub_new(uid_t uid, const char *source, struct loop *l, psub_done_fn done,
    void *ctx)
{
	struct psub *s = xcalloc(1, sizeof(*s));

	s->loop = l;
	s->done = done;
	s->done_ctx = ctx;
	s->uid = uid;
	s->source = source;
	s->notify = "";
	buf_init(&s->hdr, 0);
	buf_init(&s->msg, 0);
	s->milter = pconf.nmilters > 0;
	clock_gettime(CLOCK_REALTIME, &s->arrival);
	return s;
}

void
psub_free(struct psub **sp)
{
	struct psub *s = *sp;

	if (s == NULL)
		return;
	milter_run_cancel(&s->run);
	milter_envelope_free(&s->mmsg.env);
	if (s->qw != NULL)
		queue_writer_abort(&s->qw);
	free(s->login);
	free(s->sender);
	free(s->fullname);
	strv_free(&s->rcpts);
	free(s->ret);
	free(s->envid);
	free(s->body);
	buf_free(&s->hdr);
	buf_free(&s->msg);
	cchecks_free(&s->cc);
	strv_free(&s->mrcpts);
	free(s->message_id);
	free(s->reason);
	free(s);
	*sp = NULL;
}

const char *
psub_reason(const struct psub *s)
{
	return s->reason != NULL ? s->reason : "";
}

int
psub_exit(const struct psub *s)
{
	return s->exit_code;
}

const char *
psub_queue_id(const struct psub *s)
{
	return s->id;
}

static enum psub_result
fail(struct psub *s, enum psub_result r, int code, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

static enum psub_result
fail(struct psub *s, enum psub_result r, int code, const char *fmt, ...)
{
	va_list ap;
	struct buf b = BUF_INIT(0);

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(s->reason);
	s->reason = buf_steal(&b);
	s->exit_code = code;
	if (s->qw != NULL)
		queue_writer_abort(&s->qw);
	s->state = ST_END;
	return r;
}

static int
printable(const char *v, size_t max)
{
	size_t n = 0;

	for (; *v; v++, n++)
		if ((unsigned char)*v < ' ' || *v == 0x7f || n >= max)
			return 0;
	return 1;
}

static int
has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* "", "NEVER", or a subset of SUCCESS,FAILURE,DELAY, as the queue writes it. */
static const char *
notify_canon(const char *v)
{
	static const char *const forms[] = {
		"", "SUCCESS", "FAILURE", "SUCCESS,FAILURE", "DELAY",
		"SUCCESS,DELAY", "FAILURE,DELAY", "SUCCESS,FAILURE,DELAY",
	};
	unsigned bits = 0;
	char **v2;
	size_t i;

	if (strcasecmp(v, "NEVER") == 0)
		return "NEVER";
	v2 = strv_split(v, ",");
	for (i = 0; v2 != NULL && v2[i] != NULL; i++) {
		if (strcasecmp(v2[i], "SUCCESS") == 0)
			bits |= 1;
		else if (strcasecmp(v2[i], "FAILURE") == 0)
			bits |= 2;
		else if (strcasecmp(v2[i], "DELAY") == 0)
			bits |= 4;
		else
			bits |= 8;
	}
	strv_free(&v2);
	return bits < 8 ? forms[bits] : NULL;
}

static enum psub_result
envelope(struct psub *s, const struct ipc_msg *m)
{
	const char *req = ipc_get(m, "request"), *ver = ipc_get(m, "version");
	const char *name, *v, *err;
	struct passwd *pw;
	size_t pos = 0;

	if (req == NULL || strcmp(req, "submit") != 0 || ver == NULL)
		return fail(s, PSUB_CORRUPT, EX_PROTOCOL, "not a submission");
	if (strcmp(ver, SUBMIT_VERSION) != 0)
		return fail(s, PSUB_CORRUPT, EX_PROTOCOL, "unsupported submission version %s", ver);
	errno = 0;
	if ((pw = getpwuid(s->uid)) == NULL)
		return fail(s, errno ? PSUB_TEMP : PSUB_FAIL, errno ? EX_TEMPFAIL : EX_NOUSER,
		    "uid %ld has no user name", (long)s->uid);
	s->login = xstrdup(pw->pw_name);

	while (ipc_next(m, &pos, &name, &v)) {
		if (strcmp(name, "sender") == 0) {
			free(s->sender);
			if ((s->sender = submit_addr_normalize(v, pconf.myorigin, 1)) == NULL)
				return fail(s, PSUB_FAIL, EX_DATAERR, "bad sender address syntax: %.100s", v);
		} else if (strcmp(name, "fullname") == 0) {
			free(s->fullname);
			s->fullname = xstrndup(v, FULLNAME_MAX);
		} else if (strcmp(name, "rcpt") == 0) {
			if (submit_addr_list(v, strlen(v), pconf.myorigin, &s->rcpts, &err) < 0)
				return fail(s, PSUB_FAIL, EX_DATAERR, "%s: %.100s", err, v);
		} else if (strcmp(name, "extract") == 0) {
			s->extract = strcmp(v, "yes") == 0;
		} else if (strcmp(name, "notify") == 0) {
			if ((s->notify = notify_canon(v)) == NULL)
				return fail(s, PSUB_FAIL, EX_USAGE, "bad DSN notification: %.100s", v);
		} else if (strcmp(name, "ret") == 0) {
			if (strcasecmp(v, "FULL") != 0 && strcasecmp(v, "HDRS") != 0)
				return fail(s, PSUB_FAIL, EX_USAGE, "bad DSN return type: %.100s", v);
			free(s->ret);
			s->ret = xstrdup(strcasecmp(v, "FULL") == 0 ? "FULL" : "HDRS");
		} else if (strcmp(name, "envid") == 0) {
			if (!printable(v, ENVID_MAX))
				return fail(s, PSUB_FAIL, EX_USAGE, "bad DSN envelope ID");
			free(s->envid);
			s->envid = xstrdup(v);
		} else if (strcmp(name, "body") == 0) {
			if (strcasecmp(v, "7BIT") != 0 && strcasecmp(v, "8BITMIME") != 0)
				return fail(s, PSUB_FAIL, EX_USAGE, "bad body type: %.100s", v);
			free(s->body);
			s->body = xstrdup(strcasecmp(v, "7BIT") == 0 ? "7BIT" : "8BITMIME");
		}
		/* request, version and unknown names: ignored (newer senders) */
	}
	if (s->sender == NULL)
		s->sender = xasprintf("%s@%s", s->login, pconf.myorigin);
	if (s->rcpts == NULL && !s->extract)
		return fail(s, PSUB_FAIL, EX_USAGE, "no recipients specified");
	s->state = ST_HEADER;
	return PSUB_MORE;
}

/* A set of folded addresses already written, for de-duplication. */
static int
seen_before(char ***seen, const char *addr)
{
	char *f = addr_fold_domain(addr);
	int dup = strv_contains_ci(*seen, f);

	if (!dup)
		strv_push(seen, f);
	free(f);
	return dup;
}

/* The blind copies (bcc.h), once the recipients are known. */
static enum psub_result
add_bcc(struct psub *s)
{
	int r = bcc_add(pconf.bcc, pconf.resolver, s->qw, s->sender);

	if (r == -2) {
		log_warn("%s: write queue file", s->id);
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
	}
	if (r < 0)
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "blind copy table lookup failed");
	return PSUB_MORE;
}

/* Write one recipient after virtual alias expansion. 0, or a failure. */
static enum psub_result
put_rcpt(struct psub *s, const char *rcpt, char ***seen, int *utf8)
{
	char **list = NULL;
	int r;

	if (!strv_contains_ci(s->mrcpts, rcpt))
		strv_push(&s->mrcpts, rcpt);
	r = resolver_virtual_alias(pconf.resolver, rcpt, &list);
	if (r == -1)
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "<%s>: temporary lookup failure", rcpt);
	if (r == -2)
		return fail(s, PSUB_FAIL, EX_DATAERR,
		    "<%s>: virtual alias loop or too many addresses", rcpt);
	if (r == 0)
		strv_push(&list, rcpt);
	for (size_t i = 0; list[i] != NULL; i++) {
		if (has_8bit(list[i]))
			*utf8 = 1;
		if (seen_before(seen, list[i]))
			continue;
		if (queue_writer_rcpt(s->qw, list[i], rcpt, s->notify) < 0) {
			strv_free(&list);
			log_warn("%s: write queue file", s->id);
			return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
		}
	}
	strv_free(&list);
	return PSUB_MORE;
}

/* Content toward the queue file, or held for the checks and milters. */
static int
put_content(struct psub *s, const void *p, size_t n)
{
	if (s->cc_on) {
		cchecks_feed(&s->cc, p, n, &s->msg);
		return 0;
	}
	if (s->milter)
		return buf_append(&s->msg, p, n);
	return queue_writer_content(s->qw, p, n);
}

/* The header block is hdr[0..hlen): open the queue file, write the
 * envelope and the new header, then what followed the header. */
static enum psub_result
open_queue(struct psub *s, size_t hlen)
{
	struct submit_out out;
	struct submit_info si;
	char *err = NULL, **seen = NULL;
	enum psub_result r = PSUB_MORE;
	int utf8 = has_8bit(s->sender);

	s->qw = queue_writer_open(pconf.qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	if (s->qw == NULL) {
		log_warnx("create queue file in %s/%s: %s", pconf.qdir, QUEUE_INCOMING,
		    err ? err : strerror(errno));
		free(err);
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "cannot create queue file");
	}
	snprintf(s->id, sizeof(s->id), "%s", queue_writer_id(s->qw));

	memset(&si, 0, sizeof(si));
	si.extract = s->extract;
	si.sender = s->sender;
	si.fullname = s->fullname;
	si.origin = pconf.myorigin;
	si.hostname = pconf.myhostname;
	si.mail_name = pconf.mail_name;
	si.queue_id = s->id;
	si.uid = (long)s->uid;
	si.now = s->arrival.tv_sec;
	if (submit_header_rewrite(s->hdr.data ? s->hdr.data : "", hlen, &si, &out, &err) < 0) {
		r = fail(s, PSUB_FAIL, EX_DATAERR, "%s", err);
		free(err);
		submit_out_free(&out);
		return r;
	}
	if (s->rcpts == NULL && out.rcpts == NULL) {
		submit_out_free(&out);
		return fail(s, PSUB_FAIL, EX_USAGE, "no recipient addresses found in message header");
	}
	/* As smtpd (and Postfix's cleanup): our Received: counts too. */
	if (pconf.hopcount_limit > 0
	    && hdrlimit_hops(out.header.data, out.header.len) >= pconf.hopcount_limit) {
		submit_out_free(&out);
		return fail(s, PSUB_FAIL, EX_DATAERR, "too many hops (mail forwarding loop)");
	}
	log_info("%s: uid=%ld from=<%s>", s->id, (long)s->uid, s->sender);

	if (queue_writer_arrival(s->qw, &s->arrival) < 0
	    || queue_writer_sender(s->qw, s->sender) < 0
	    || queue_writer_attr(s->qw, "proto", "local") < 0
	    || (s->body && queue_writer_attr(s->qw, "body", s->body) < 0)
	    || (s->envid && queue_writer_attr(s->qw, "envid", s->envid) < 0)
	    || (s->ret && queue_writer_attr(s->qw, "ret", s->ret) < 0))
		goto write_error;
	for (size_t i = 0; r == PSUB_MORE && s->rcpts != NULL && s->rcpts[i] != NULL; i++)
		r = put_rcpt(s, s->rcpts[i], &seen, &utf8);
	for (size_t i = 0; r == PSUB_MORE && out.rcpts != NULL && out.rcpts[i] != NULL; i++)
		r = put_rcpt(s, out.rcpts[i], &seen, &utf8);
	strv_free(&seen);
	/* Blind copies before the content: the envelope ends there. */
	if (r == PSUB_MORE)
		r = add_bcc(s);
	if (r != PSUB_MORE) {
		submit_out_free(&out);
		return r;
	}
	if (utf8 && queue_writer_attr(s->qw, "smtputf8", "yes") < 0)
		goto write_error;
	s->message_id = out.message_id;
	out.message_id = NULL;
	s->cclog = (struct cc_log_ctx){ &pconf.cc, s->id, "local", s->sender,
	    strv_len(s->mrcpts) > 0 ? s->mrcpts[0] : "", NULL, NULL };
	cc_tables_begin(&pconf.cc, &s->cc, pconf.line_length_limit, &s->cclog);
	s->cc_on = cchecks_active(&s->cc);

	const char *rest = s->hdr.data ? s->hdr.data + hlen : "";
	size_t nrest = s->hdr.len - hlen;
	if (put_content(s, out.header.data, out.header.len) < 0)
		goto write_error;
	/* The header must end with an empty line before any body. */
	if (nrest > 0 && rest[0] != '\n' && !(nrest > 1 && rest[0] == '\r' && rest[1] == '\n')
	    && put_content(s, "\n", 1) < 0)
		goto write_error;
	if (nrest > 0 && put_content(s, rest, nrest) < 0)
		goto write_error;
	submit_out_free(&out);
	buf_free(&s->hdr);
	s->state = ST_BODY;
	return PSUB_MORE;

write_error:
	submit_out_free(&out);
	log_warn("%s: write queue file", s->id);
	return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
}

static enum psub_result
content(struct psub *s, const char *data)
{
	size_t n = strlen(data), hlen;

	s->size += (long long)n;
	if (pconf.size_limit > 0 && s->size > pconf.size_limit)
		return fail(s, PSUB_FAIL, EX_DATAERR, "message file too big");
	if (s->state == ST_BODY) {
		if (put_content(s, data, n) < 0) {
			log_warn("%s: write queue file", s->id);
			return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
		}
		return PSUB_MORE;
	}
	(void)buf_append(&s->hdr, data, n);
	if (submit_header_extent(s->hdr.data, s->hdr.len, 0, pconf.header_limit, &hlen))
		return open_queue(s, hlen);
	return PSUB_MORE;
}

/* --- non_smtpd_milters ------------------------------------------------- */

static const char *
milter_macro(void *ctx, const char *name)
{
	struct psub *s = ctx;

	if (strcmp(name, "j") == 0)
		return pconf.myhostname;
	if (strcmp(name, "{daemon_name}") == 0)
		return pconf.macro_daemon_name;
	if (strcmp(name, "v") == 0)
		return pconf.macro_v;
	if (strcmp(name, "_") == 0)
		return "localhost [127.0.0.1]";
	if (strcmp(name, "{client_addr}") == 0)
		return "127.0.0.1";
	if (strcmp(name, "{client_name}") == 0 || strcmp(name, "{client_ptr}") == 0)
		return "localhost";
	if (strcmp(name, "i") == 0)
		return s->id;
	if (strcmp(name, "{mail_addr}") == 0)
		return s->sender;
	if (strcmp(name, "{rcpt_addr}") == 0)
		return s->mrcpt;
	return NULL;
}

/* Postfix's cleanup line for a milter verdict on local mail. */
static void
milter_log(struct psub *s, const char *event, const char *text)
{
	struct buf b = BUF_INIT(0);

	buf_printf(&b, "%s: %s: END-OF-MESSAGE from localhost[127.0.0.1]: %s; "
	    "from=<%s>", s->id, event, text, s->sender);
	if (strv_len(s->mrcpts) == 1)
		buf_printf(&b, " to=<%s>", s->mrcpts[0]);
	log_info("%s", buf_cstr(&b));
	buf_free(&b);
}

/* REJECT (a milter's, or a content check's): a bounce/ID log naming
 * every recipient, durable before the file (all recipients done, the
 * content held in msg) is committed; qmgr sends the DSN. */
static enum psub_result
bounce_all(struct psub *s, const char *reply)
{
	struct buf b = BUF_INIT(0);
	char dsn[16] = "5.7.1", *path;
	const char *p = reply;
	int fd, ok;

	/* "550 5.7.1 text": the enhanced code when the milter gave one. */
	if (strlen(p) > 4 && p[3] == ' ' && p[4] == '5' && p[5] == '.') {
		size_t k = strspn(p + 4, "0123456789.");
		if (k < sizeof(dsn))
			snprintf(dsn, sizeof(dsn), "%.*s", (int)k, p + 4);
	}
	for (size_t i = 0; s->mrcpts != NULL && s->mrcpts[i] != NULL; i++)
		bounce_log_bounce_line(&b, s->mrcpts[i], s->mrcpts[i], dsn, "none", reply);
	path = queue_path(pconf.qdir, QUEUE_BOUNCE, s->id);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	ok = fd >= 0 && write_all(fd, b.data, b.len) == 0 && fsync(fd) == 0;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	if (ok) {
		char *dir = queue_path(pconf.qdir, QUEUE_BOUNCE, "");
		ok = fsync_dir(dir) == 0;
		free(dir);
	}
	free(path);
	buf_free(&b);
	if (!ok || queue_writer_rcpt_all_done(s->qw) < 0
	    || queue_writer_content(s->qw, s->msg.data, s->msg.len) < 0) {
		log_warn("%s: write bounce log or queue file", s->id);
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
	}
	return PSUB_MORE;
}

static enum psub_result commit(struct psub *s);

/* The milters' verdict; PSUB_MORE: commit the file as it now is. */
static enum psub_result
milters_verdict(struct psub *s, enum milter_kind kind, const char *reply)
{
	struct milter_message *msg = &s->mmsg;
	enum psub_result r = PSUB_MORE;

	switch (kind) {
	case MILTER_V_TEMPFAIL:
		milter_log(s, "milter-reject", milter_reply_logtext(reply));
		r = fail(s, PSUB_TEMP, EX_TEMPFAIL, "%s", reply);
		break;
	case MILTER_V_REJECT:
		if (s->sender[0] == '\0') {
			/* Nobody to bounce to: dropped, as Postfix does. */
			milter_log(s, "milter-reject", milter_reply_logtext(reply));
			queue_writer_abort(&s->qw);
			s->state = ST_END;
			r = PSUB_DONE;
		} else if ((r = bounce_all(s, reply)) == PSUB_MORE)
			milter_log(s, "milter-reject", milter_reply_logtext(reply));
		break;
	case MILTER_V_DISCARD:
		milter_log(s, "milter-discard", "milter triggers DISCARD action");
		queue_writer_abort(&s->qw);
		s->state = ST_END;
		r = PSUB_DONE;
		break;
	case MILTER_V_CONTINUE:
		if (milter_queue_apply(s->qw, msg, s->sender, s->mrcpts,
		    pconf.resolver, s->id) < 0) {
			r = fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
			break;
		}
		if (msg->env.hold) {
			char *t = xasprintf("milter triggers HOLD action%s%s",
			    msg->env.hold_reason ? ": " : "",
			    msg->env.hold_reason ? msg->env.hold_reason : "");
			milter_log(s, "milter-hold", t);
			free(t);
		}
		break;
	}
	return r;
}

/* From the loop: the milters are done (the run freed itself). */
static void
milters_done(void *ctx, enum milter_kind kind, const char *reply)
{
	struct psub *s = ctx;
	enum psub_result r;

	s->run = NULL;
	r = milters_verdict(s, kind, reply);
	milter_envelope_free(&s->mmsg.env);
	if (r == PSUB_MORE)
		r = commit(s);
	s->done(s->done_ctx, r);   /* may free s */
}

/* The message through non_smtpd_milters, on the loop: PSUB_WAIT. */
static enum psub_result
start_milters(struct psub *s)
{
	struct milter_message *msg = &s->mmsg;

	memset(msg, 0, sizeof(*msg));
	msg->content = &s->msg;
	msg->env.sender = xstrdup(s->sender);
	msg->env.nrcpt = strv_len(s->mrcpts);
	msg->env.rcpts = xcalloc(msg->env.nrcpt + 1, sizeof(char *));
	msg->env.rcpt_args = xcalloc(msg->env.nrcpt + 1, sizeof(char *));
	for (size_t i = 0; i < msg->env.nrcpt; i++)
		msg->env.rcpts[i] = xstrdup(s->mrcpts[i]);
	s->mrcpt = msg->env.nrcpt > 0 ? s->mrcpts[msg->env.nrcpt - 1] : NULL;
	s->run = milter_run_start(s->loop, pconf.milters, pconf.nmilters,
	    pconf.milter_macros, milter_macro, s, "localhost", msg, milters_done, s);
	return PSUB_WAIT;
}

/* Commit the file: fsync file and directory, then it has its queue ID. */
static enum psub_result
commit(struct psub *s)
{
	char id[QUEUE_ID_MAX];

	if (queue_writer_commit(s->qw, id) < 0) {
		log_warn("%s: commit queue file", s->id);
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
	}
	queue_writer_free(&s->qw);
	snprintf(s->id, sizeof(s->id), "%s", id);
	if (s->message_id != NULL)
		log_info("%s: message-id=%s", s->id, s->message_id);
	s->state = ST_END;
	return PSUB_DONE;
}

/* The content checks' verdict, the content all in msg: PSUB_MORE to go
 * on (to the milters, or the commit). */
static enum psub_result
checks_verdict(struct psub *s)
{
	enum psub_result r;
	int rc;

	cchecks_end(&s->cc, &s->msg);
	s->cc_on = 0;   /* what still comes goes to the file */
	if (s->cc.lookup_error) {
		log_warnx("%s: header_checks or body_checks: table lookup failed", s->id);
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "temporary lookup failure");
	}
	if (s->cc.discard || (s->cc.reject != NULL && s->sender[0] == '\0')) {
		/* DISCARD, or a REJECT with nobody to bounce to: dropped
		 * (logged as the action fired). */
		queue_writer_abort(&s->qw);
		s->state = ST_END;
		return PSUB_DONE;
	}
	if (s->cc.reject != NULL) {
		if ((r = bounce_all(s, s->cc.reject)) != PSUB_MORE)
			return r;
		return commit(s);
	}
	/* REDIRECT and BCC: the content is all in msg, the envelope still
	 * open. */
	rc = cc_envelope_apply(&s->cc, pconf.resolver, s->qw);
	if (rc == -1)
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "temporary lookup failure");
	if (rc < 0) {
		log_warn("%s: write queue file", s->id);
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
	}
	if (s->cc.hold && queue_writer_set_dir(s->qw, QUEUE_HOLD) < 0) {
		log_warn("%s: hold queue", s->id);
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
	}
	return PSUB_MORE;
}

static enum psub_result
end(struct psub *s, const struct ipc_msg *m)
{
	long long size;
	size_t hlen;
	enum psub_result r;
	int held;

	if (ipc_get_int(m, "size", &size) < 0 || size != s->size)
		return fail(s, PSUB_CORRUPT, EX_PROTOCOL, "content size mismatch");
	if (s->state == ST_HEADER) {
		(void)submit_header_extent(s->hdr.data ? s->hdr.data : "", s->hdr.len, 1,
		    pconf.header_limit, &hlen);
		if ((r = open_queue(s, hlen)) != PSUB_MORE)
			return r;
	}
	held = s->cc_on;
	if (held && (r = checks_verdict(s)) != PSUB_MORE)
		return r;
	if (s->milter) {
		s->state = ST_END;   /* no more frames */
		return start_milters(s);
	}
	if (held && queue_writer_content(s->qw, s->msg.data, s->msg.len) < 0) {
		log_warn("%s: write queue file", s->id);
		return fail(s, PSUB_TEMP, EX_TEMPFAIL, "queue file write error");
	}
	return commit(s);
}

enum psub_result
psub_frame(struct psub *s, const struct ipc_msg *m)
{
	const char *v;

	switch (s->state) {
	case ST_ENVELOPE:
		return envelope(s, m);
	case ST_HEADER:
	case ST_BODY:
		if ((v = ipc_get(m, "data")) != NULL)
			return content(s, v);
		if (ipc_get(m, "end") != NULL)
			return end(s, m);
		return fail(s, PSUB_CORRUPT, EX_PROTOCOL, "unexpected frame");
	case ST_END:
		break;
	}
	return fail(s, PSUB_CORRUPT, EX_PROTOCOL, "frame after the end");
}
