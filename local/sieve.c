/*
 * sieve - filtering at delivery: run the administrator's scripts
 * (local_sieve_before), the recipient's active script (lib/store/
 * sievestore.c: ~/sieve/NAME.sieve and the ~/.dovecot.sieve link, or the
 * Maildir for a virtual user) and local_sieve_after as one Sieve
 * execution (lib/sieve), then carry out its actions for a Maildir user.
 *
 * Actions: keep and fileinto store a copy with maildir_deliver_named's
 * deterministic name (a retry finds its copy), in a Maildir++ folder
 * named and created the way imapd does (lib/store/folder.c
 * mbx_folder_path, mbx_folder_create); imap4flags become Maildir info
 * letters (cur/NAME:2,FS) and keywords go to the mailbox index
 * (mbx_set_keywords); redirect adds the address to the recipient's
 * forward list (local_forward writes one new queue file, with
 * Delivered-To for loop detection); reject/ereject fail the recipient
 * with 5.7.1 and the reason, so qmgr's bounce carries it; discard
 * delivers nothing; vacation queues one reply per sender and :days.
 *
 * Invariants: scripts are read and run, and every copy is written, with
 * the mailbox owner's ids (local_become), and only below the user's
 * Maildir: folder names go through mbx_folder_path, never a raw path.
 * A script that fails to compile or run keeps the message in the INBOX
 * and says why in the log with the queue ID. A failure to store any copy
 * is a temporary failure of the recipient (the whole filter runs again
 * on retry; copies already made are found, not doubled); redirects and
 * the vacation reply happen only after every copy is durable. The
 * vacation and duplicate records live in an LMDB file beside the scripts
 * (".postern.db", ignored by sievestore's listings).
 * Trusts: the configuration and the administrator's scripts; not the
 * user's scripts or the message.
 * BUGS: ereject acts as reject (delivery is after the SMTP dialogue); an
 * mbox user gets no filtering (Maildir only).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/db.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "mail/submit.h"
#include "proto/sasl.h"
#include "sieve/sieve.h"
#include "store/index.h"
#include "store/maildir.h"
#include "store/sievestore.h"
#include "local.h"

#define SIEVE_MSG_MAX (4 * 1024 * 1024)   /* bytes of the message tests see */
#define SIEVE_DB_NAME ".postern.db"
#define SIEVE_SCRIPTS_MAX 34             /* before + user + after */

struct sctx {
	struct lrcpt *r;
	const struct laddr *a;
	const struct mailbox_owner *mo;
	struct sstore st;
	char *maildir;             /* INBOX path, no trailing '/' */
	struct db db;
	int db_open;
	char *err;
};

int
local_sieve_wanted(const struct mailbox_owner *mo)
{
	(void)mo;
	return lconf.sieve;
}

/* The home that "~/" means: $HOME, or a virtual user's Maildir. */
static char *
sieve_home(const struct mailbox_owner *mo)
{
	return sstore_home(mo->is_virtual ? NULL : mo->home, mo->path);
}

/* ---- the message ---- */

static int
collect(const char *p, size_t n, void *ctx)
{
	struct buf *b = ctx;

	if (b->len + n > SIEVE_MSG_MAX)
		n = SIEVE_MSG_MAX - b->len;
	(void)buf_append(b, p, n);
	return b->len >= SIEVE_MSG_MAX ? 1 : 0;
}

/* ---- the reply database (vacation, duplicate) ---- */

static int
db_ready(struct sctx *c)
{
	static const struct db_opts o = { .flags = MDB_NOSUBDIR, .mode = 0600 };
	char *path, *err = NULL;
	int rc;

	if (c->db_open)
		return c->db_open > 0 ? 0 : -1;
	if (mkdir_p(c->st.dir, 0700) < 0) {
		log_warnx("%s: sieve: cannot create %s: %s", c->r->msg->id, c->st.dir,
		    strerror(errno));
		c->db_open = -1;
		return -1;
	}
	path = xasprintf("%s/%s", c->st.dir, SIEVE_DB_NAME);
	rc = db_open(&c->db, path, &o, &err);
	if (rc != 0) {
		log_warnx("%s: sieve: cannot open %s: %s", c->r->msg->id, path,
		    err != NULL ? err : db_strerror(rc));
		free(err);
		c->db_open = -1;
	} else
		c->db_open = 1;
	free(path);
	return c->db_open > 0 ? 0 : -1;
}

struct dbop {
	const char *key;
	int64_t expires;         /* put: the value */
	int64_t now;
	int found;               /* get: unexpired entry present */
};

static int
db_get_fn(MDB_txn *txn, void *ctx)
{
	struct dbop *op = ctx;
	MDB_val k = { strlen(op->key), (void *)op->key }, v;
	MDB_dbi dbi;
	int rc;

	if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0)
		return rc;
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size == sizeof(int64_t)) {
		int64_t e;

		memcpy(&e, v.mv_data, sizeof(e));
		op->found = e > op->now;
	}
	return 0;
}

static int
db_put_fn(MDB_txn *txn, void *ctx)
{
	struct dbop *op = ctx;
	MDB_val k = { strlen(op->key), (void *)op->key }, v = { sizeof(int64_t), &op->expires };
	MDB_dbi dbi;
	int rc;

	if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0)
		return rc;
	return mdb_put(txn, dbi, &k, &v, 0);
}

/* 1 recorded and unexpired, 0 not, -1 error. */
static int
db_seen(struct sctx *c, const char *key)
{
	struct dbop op = { .key = key, .now = (int64_t)time(NULL) };
	char *err = NULL;

	if (strlen(key) > 500 || db_ready(c) < 0)
		return -1;
	if (db_read(&c->db, db_get_fn, &op, &err) != 0) {
		log_warnx("%s: sieve: reply database: %s", c->r->msg->id, err != NULL ? err : "?");
		free(err);
		return -1;
	}
	return op.found;
}

static int
db_record(struct sctx *c, const char *key, long seconds)
{
	struct dbop op = { .key = key, .now = (int64_t)time(NULL) };
	char *err = NULL;

	op.expires = op.now + seconds;
	if (strlen(key) > 500 || db_ready(c) < 0)
		return -1;
	if (db_write(&c->db, db_put_fn, &op, &err) != 0) {
		log_warnx("%s: sieve: reply database: %s", c->r->msg->id, err != NULL ? err : "?");
		free(err);
		return -1;
	}
	return 0;
}

/* ---- callbacks for lib/sieve ---- */

static struct sieve_limits lim_conf;

static int
cb_include(void *ctx, int global, const char *name, struct sieve_script **s_r, char **err_r)
{
	struct sctx *c = ctx;
	struct sstore g;
	char *data = NULL;
	size_t len;
	int rc, line;

	if (global) {
		if (*lconf.sieve_global == '\0') {
			*err_r = xstrdup("no local_sieve_global_directory");
			return -1;
		}
		sstore_init(&g, lconf.sieve_global, "/nonexistent");
		rc = sstore_get(&g, name, &data, &len, err_r);
		sstore_free(&g);
	} else
		rc = sstore_get(&c->st, name, &data, &len, err_r);
	if (rc != 0)
		return rc == SSTORE_NOTFOUND ? -1 : -2;
	free(*err_r);
	*err_r = NULL;
	if (sieve_compile(data, len, &lim_conf, s_r, &line, err_r) < 0) {
		char *e = xasprintf("line %d: %s", line, *err_r);

		free(*err_r);
		*err_r = e;
		free(data);
		return -2;
	}
	free(data);
	return 0;
}

static int
cb_duplicate(void *ctx, const char *id)
{
	char *k = xasprintf("d:%s", id);
	int rc = db_seen(ctx, k);

	free(k);
	return rc == 1;
}

/* Sieve names Dovecot users have ("Lists.foo") are Maildir++ names;
 * '.' is never part of a Postern folder name, so it is the separator. */
static char *
folder_name(const char *s)
{
	char *n = xstrdup(s);

	for (char *p = n; *p != '\0'; p++)
		if (*p == '.')
			*p = '/';
	return n;
}

static int
cb_exists(void *ctx, const char *name)
{
	struct sctx *c = ctx;
	char *fn = folder_name(name), *path = NULL, *cur;
	struct stat sb;
	int ok = 0;

	if (mbx_folder_path(c->maildir, fn, &path, NULL) == 0) {
		cur = xasprintf("%s/cur", path);
		ok = lstat(cur, &sb) == 0 && S_ISDIR(sb.st_mode);
		free(cur);
	}
	free(path);
	free(fn);
	return ok;
}

/* Does the folder exist (fileinto, mailboxexists)? A Maildir that Dovecot
 * kept may have it under its modified UTF-7 name until the first IMAP
 * login: mbx_folders_adopt() renames those, then it is looked at again. */
static int
cb_folder_exists(void *ctx, const char *name)
{
	struct sctx *c = ctx;

	if (cb_exists(c, name))
		return 1;
	mbx_folders_adopt(c->maildir);
	return cb_exists(c, name);
}

/* ---- actions ---- */

static const struct {
	const char *flag;
	char letter;
} sysflags[] = {
	{ "\\Draft", 'D' }, { "\\Flagged", 'F' }, { "\\Answered", 'R' }, { "\\Seen", 'S' },
	{ "\\Deleted", 'T' },
};

/* Flags -> Maildir info letters (sorted, as Maildir wants) and keywords. */
static void
split_flags(char *const *flags, char *info, size_t isize, char ***kw)
{
	size_t n = 0;

	info[0] = '\0';
	for (size_t k = 0; k < sizeof(sysflags) / sizeof(sysflags[0]); k++)
		for (size_t i = 0; flags != NULL && flags[i] != NULL; i++)
			if (strcasecmp(flags[i], sysflags[k].flag) == 0 && n + 1 < isize) {
				info[n++] = sysflags[k].letter;
				info[n] = '\0';
				break;
			}
	for (size_t i = 0; flags != NULL && flags[i] != NULL; i++) {
		int ok = flags[i][0] != '\\' && strlen(flags[i]) <= MBX_KEYWORD_LEN_MAX;

		for (const char *p = flags[i]; *p != '\0' && ok; p++)
			if ((unsigned char)*p <= ' ' || *p == '(' || *p == ')' || *p == '{' ||
			    *p == '%' || *p == '*' || *p == '"' || *p == '\\' || *p == ']' ||
			    (unsigned char)*p >= 0x7f)
				ok = 0;
		if (ok && strv_len(*kw) < MBX_KEYWORDS_MAX)
			strv_push(kw, flags[i]);
	}
}

/* Keywords live in the index: index the new file and set them. */
static void
set_keywords(struct sctx *c, const char *dir, const char *name, char **kw)
{
	struct mailbox *mb = NULL;
	struct mbx_msg *msgs = NULL;
	size_t n = 0, nl = strlen(name);
	char *err = NULL;

	if (mbx_open(dir, 0, &mb, &err) != 0 || mbx_list(mb, &msgs, &n, &err) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *base = strchr(msgs[i].name, '/');

		base = base != NULL ? base + 1 : msgs[i].name;
		if (strncmp(base, name, nl) == 0 && (base[nl] == '\0' || base[nl] == ':')) {
			char **all = NULL;

			for (size_t k = 0; msgs[i].keywords[k] != NULL; k++)
				strv_push(&all, msgs[i].keywords[k]);
			for (size_t k = 0; kw[k] != NULL; k++)
				if (!strv_contains_ci(all, kw[k]))
					strv_push(&all, kw[k]);
			if (mbx_set_keywords(mb, msgs[i].uid, (const char *const *)all, NULL,
			    &err) != 0) {
				strv_free(&all);
				goto out;
			}
			strv_free(&all);
			break;
		}
	}
out:
	if (err != NULL)
		log_warnx("%s: sieve: cannot set keywords in %s: %s", c->r->msg->id, dir, err);
	free(err);
	mbx_msgs_free(&msgs, n);
	mbx_close(&mb);
}

/* keep or fileinto: one copy. 0, or -1 after an lr_fail. */
static int
do_store(struct sctx *c, const struct sieve_action *act)
{
	char info[8], fname[MAILDIR_NAME_MAX], *label, *path = NULL, *err = NULL;
	char *fn = NULL, **kw = NULL;
	struct lstore sp;
	int rc, inbox = act->type == SIEVE_KEEP || strcasecmp(act->target, "INBOX") == 0;

	split_flags(act->flags, info, sizeof(info), &kw);
	if (inbox)
		path = xstrdup(c->mo->path);
	else {
		fn = folder_name(act->target);
		if (mbx_folder_path(c->maildir, fn, &path, &err) != 0) {
			log_warnx("%s: sieve: to=<%s>: fileinto \"%s\": %s; keeping in INBOX",
			    c->r->msg->id, c->a->addr, act->target, err);
			free(err);
			err = NULL;
			inbox = 1;
			path = xstrdup(c->mo->path);
		} else if (!cb_folder_exists(c, act->target)) {
			if (act->create) {
				if (mbx_folder_create(c->maildir, fn, &err) != 0) {
					lr_fail(c->r, c->a->addr, "4.2.0",
					    "sieve: cannot create folder \"%s\": %s", fn, err);
					free(err);
					free(fn);
					free(path);
					strv_free(&kw);
					return -1;
				}
				(void)mbx_subs_set(c->maildir, fn, 1, NULL);
			} else {
				log_info("%s: sieve: to=<%s>: folder \"%s\" does not exist "
				    "(no :create); keeping in INBOX", c->r->msg->id, c->a->addr, fn);
				inbox = 1;
				free(path);
				path = xstrdup(c->mo->path);
			}
		}
		if (!inbox) {
			const char *dsn = "4.2.0";

			/* The INBOX first, as imapd has it: the quota file and
			 * its tmp/ live there even when mail only went to folders. */
			if (maildir_make(c->mo->path, &dsn, &err) != 0) {
				lr_fail(c->r, c->a->addr, dsn, "%s", err);
				free(err);
				free(fn);
				free(path);
				strv_free(&kw);
				return -1;
			}
		}
		if (!inbox) {
			/* maildir_deliver_named wants the directory form */
			char *p2 = xasprintf("%s/", path);

			free(path);
			path = p2;
		}
	}
	label = inbox ? xstrdup("maildir") : xasprintf("maildir folder %s", fn);
	memset(&sp, 0, sizeof(sp));
	sp.qroot = c->mo->path;
	sp.info = info;
	sp.label = label;
	sp.name_r = fname;
	sp.name_size = sizeof(fname);
	fname[0] = '\0';
	rc = local_store(c->r, c->a, path, c->mo->quota, &sp);
	if (rc == 0) {
		char *kws = NULL;

		for (size_t i = 0; kw != NULL && kw[i] != NULL; i++) {
			char *t = xasprintf("%s%s%s", kws != NULL ? kws : "", i > 0 ? " " : "", kw[i]);

			free(kws);
			kws = t;
		}
		log_info("%s: sieve: to=<%s>: stored into %s%s%s%s%s", c->r->msg->id, c->a->addr,
		    inbox ? "INBOX" : fn, *info != '\0' ? " flags=" : "", info,
		    kws != NULL ? " keywords=" : "", kws != NULL ? kws : "");
		free(kws);
		if (kw != NULL && kw[0] != NULL && fname[0] != '\0')
			set_keywords(c, path, fname, kw);
	}
	strv_free(&kw);
	free(label);
	free(path);
	free(fn);
	return rc;
}

static int
vac_out(const char *p, size_t n, void *ctx)
{
	return queue_writer_content(ctx, p, n);
}

/* s as one line of header text: line breaks from the script or the
 * message become spaces, and 8-bit text is one RFC 2047 word. */
static char *
header_text(const char *s)
{
	char *t = xstrdup(s);

	for (char *p = t; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	for (const char *p = t; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80) {
			struct buf e = BUF_INIT(0);

			buf_puts(&e, "=?utf-8?b?");
			(void)sasl_b64_encode(t, strlen(t), &e);
			buf_puts(&e, "?=");
			free(t);
			return buf_steal(&e);
		}
	return t;
}

/* Append a body from a script or a URI with bare LF line ends (as the
 * queue takes local's messages), ended by one. */
static void
put_body(struct buf *b, const char *text)
{
	for (const char *p = text; *p != '\0'; p++)
		if (*p != '\r')
			buf_putc(b, *p);
	if (b->len > 0 && b->data[b->len - 1] != '\n')
		buf_putc(b, '\n');
}

/* Queue msg (a whole message, LF line ends) from the null sender to
 * rcpts, as a vacation reply or notification (what, for the log). */
static void
queue_auto(struct sctx *c, char *const *rcpts, const struct buf *msg, const char *what)
{
	struct lmsg *m = c->r->msg;
	struct queue_writer *w;
	char *err = NULL, id[QUEUE_ID_MAX];
	int rc;

	w = queue_writer_open(lconf.qdir, QUEUE_INCOMING,
	    lconf.root ? lconf.owner_uid : (uid_t)-1,
	    lconf.root ? lconf.owner_gid : (gid_t)-1, &err);
	rc = w != NULL && queue_writer_sender(w, "") == 0 ? 0 : -1;
	for (size_t i = 0; rc == 0 && rcpts[i] != NULL; i++)
		rc = queue_writer_rcpt(w, rcpts[i], "", "NEVER");
	if (rc < 0 || vac_out(msg->data, msg->len, w) < 0 || queue_writer_commit(w, id) < 0) {
		log_warnx("%s: sieve: to=<%s>: cannot queue the %s: %s", m->id, c->a->addr,
		    what, err != NULL ? err : strerror(errno));
		if (w != NULL)
			queue_writer_abort(&w);
	} else {
		queue_writer_free(&w);
		log_info("%s: sieve: to=<%s>: %s to <%s>%s queued as %s", m->id, c->a->addr,
		    what, rcpts[0], rcpts[1] != NULL ? " and others" : "", id);
		(void)trigger_send("qmgr", "I");
	}
	free(err);
}

/* The vacation reply (RFC 5230 section 5), queued from the null sender. */
static void
do_vacation(struct sctx *c, const struct sieve_env *env, const struct sieve_action *act)
{
	struct lmsg *m = c->r->msg;
	struct buf b = BUF_INIT(0);
	char *subj, *msgid, date[64];
	const char *from = act->from != NULL ? act->from : c->a->addr;
	char *to[2] = { (char *)env->env_from, NULL };
	static unsigned seq;

	if (act->subject != NULL)
		subj = header_text(act->subject);
	else {
		char *s = sieve_header_get(env->hdr, env->hdrlen, "Subject");
		char *t = xasprintf("Auto: %s", s != NULL ? s : "");

		subj = header_text(t);
		free(t);
		free(s);
	}
	submit_date(time(NULL), date, sizeof(date));
	msgid = sieve_header_get(env->hdr, env->hdrlen, "Message-ID");
	buf_printf(&b, "From: %s\n", strpbrk(from, "\r\n") == NULL ? from : c->a->addr);
	buf_printf(&b, "To: <%s>\n", env->env_from);
	buf_printf(&b, "Subject: %s\n", subj);
	buf_printf(&b, "Date: %s\n", date);
	buf_printf(&b, "Message-ID: <%ld.%u.%s.vacation@%s>\n", (long)time(NULL), seq++, m->id,
	    lconf.myorigin);
	if (msgid != NULL && strpbrk(msgid, "\r\n") == NULL)
		buf_printf(&b, "In-Reply-To: %s\nReferences: %s\n", msgid, msgid);
	buf_puts(&b, "Auto-Submitted: auto-replied (vacation)\nPrecedence: bulk\n"
	    "MIME-Version: 1.0\n");
	if (!act->mime)
		buf_puts(&b, "Content-Type: text/plain; charset=utf-8\n"
		    "Content-Transfer-Encoding: 8bit\n\n");
	/* :mime: the reason is a MIME entity, its header part of ours */
	put_body(&b, act->target);
	queue_auto(c, to, &b, "vacation reply");
	free(subj);
	free(msgid);
	buf_free(&b);
}

/* A notification by mail (RFC 5435 with RFC 5436's mailto method), from
 * the null sender, marked Auto-Submitted: auto-notified. None for a
 * message that is itself automatic (RFC 5436 2.7, RFC 3834). */
static void
do_notify(struct sctx *c, const struct sieve_env *env, const struct sieve_action *act)
{
	struct lmsg *m = c->r->msg;
	struct buf b = BUF_INIT(0);
	char **rcpts = NULL, *usubj = NULL, *ubody = NULL, *subj, *t, date[64];
	char *auto_sub = sieve_header_get(env->hdr, env->hdrlen, "Auto-Submitted");
	char *osubj = sieve_header_get(env->hdr, env->hdrlen, "Subject");
	char *ofrom = sieve_header_get(env->hdr, env->hdrlen, "From");
	const char *from = act->from != NULL && strpbrk(act->from, "\r\n") == NULL
	    ? act->from : c->a->addr;
	static const char *const importance[] = { "high", "normal", "low" };
	static unsigned seq;

	if (auto_sub != NULL && strncasecmp(str_trim(auto_sub), "no", 2) != 0) {
		log_info("%s: sieve: to=<%s>: no notification: the message is Auto-Submitted",
		    m->id, c->a->addr);
		goto out;
	}
	if (sieve_mailto_parse(act->target, &rcpts, &usubj, &ubody) != 0)
		goto out;   /* checked when the action was made */
	t = usubj != NULL ? xstrdup(usubj) : act->message != NULL ? xstrdup(act->message)
	    : xasprintf("[SIEVE] New mail: %s", osubj != NULL ? osubj : "");
	subj = header_text(t);
	free(t);
	submit_date(time(NULL), date, sizeof(date));
	buf_printf(&b, "From: %s\n", from);
	buf_puts(&b, "To: ");
	for (size_t i = 0; rcpts[i] != NULL; i++)
		buf_printf(&b, "%s<%s>", i > 0 ? ",\n " : "", rcpts[i]);
	buf_printf(&b, "\nSubject: %s\n", subj);
	buf_printf(&b, "Date: %s\n", date);
	buf_printf(&b, "Message-ID: <%ld.%u.%s.notify@%s>\n", (long)time(NULL), seq++, m->id,
	    lconf.myorigin);
	buf_printf(&b, "Auto-Submitted: auto-notified\nImportance: %s\n"
	    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: 8bit\n\n", importance[act->importance[0] - '1']);
	t = ubody != NULL ? xstrdup(ubody)
	    : xasprintf("%s%sNew mail for %s\nFrom: %s\nSubject: %s\n",
	    act->message != NULL ? act->message : "", act->message != NULL ? "\n\n" : "",
	    c->a->addr, ofrom != NULL ? ofrom : "", osubj != NULL ? osubj : "");
	put_body(&b, t);
	free(t);
	queue_auto(c, rcpts, &b, "notification");
	free(subj);
out:
	strv_free(&rcpts);
	free(usubj);
	free(ubody);
	free(auto_sub);
	free(osubj);
	free(ofrom);
	buf_free(&b);
}

/* ---- the scripts ---- */

static int
compile_one(struct sctx *c, const char *what, const char *data, size_t len,
    struct sieve_script **s_r)
{
	char *err = NULL;
	int line;

	if (sieve_compile(data, len, &lim_conf, s_r, &line, &err) < 0) {
		c->err = line > 0 ? xasprintf("%s: line %d: %s", what, line, err) :
		    xasprintf("%s: %s", what, err);
		free(err);
		return -1;
	}
	return 0;
}

/* An administrator's script: a missing file is skipped. */
static int
load_admin(struct sctx *c, const char *path, struct sieve_script **s, size_t *n)
{
	char *data = NULL;
	size_t len;
	int rc;

	if (file_read_all(path, (size_t)lconf.sieve_max_size, &data, &len) < 0) {
		if (errno == ENOENT)
			return 0;
		c->err = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	rc = compile_one(c, path, data, len, &s[*n]);
	free(data);
	if (rc == 0)
		(*n)++;
	return rc;
}

/* Loop detection for redirect: the target already had this message
 * (a Delivered-To: line names it) or is the recipient itself. */
static int
redirect_refused(const struct lrcpt *r, const struct laddr *a, const char *target)
{
	return local_loop(r->msg, target) || strcasecmp(target, a->addr) == 0;
}

static void
keep_after_failure(struct sctx *c)
{
	struct sieve_action keep;
	const char *fl[] = { NULL };

	log_warnx("%s: sieve: to=<%s>: %s; keeping the message in INBOX", c->r->msg->id,
	    c->a->addr, c->err != NULL ? c->err : "error");
	memset(&keep, 0, sizeof(keep));
	keep.type = SIEVE_KEEP;
	keep.target = (char *)"INBOX";
	keep.flags = (char **)fl;
	(void)do_store(c, &keep);
}

void
local_sieve(struct lrcpt *r, const struct laddr *a, const struct mailbox_owner *mo)
{
	struct sieve_script *scripts[SIEVE_SCRIPTS_MAX];
	struct sieve_result res;
	struct sieve_env env;
	struct sctx c;
	struct buf msg = BUF_INIT(0);
	char *home, *dir, *act, *udata = NULL, *uname = NULL, *err = NULL, *sep;
	const struct sieve_action *vacation = NULL;
	size_t n = 0, ulen, i;
	int rc, failed = 0, have_user;
	struct tm tm;
	time_t now = time(NULL);

	memset(&c, 0, sizeof(c));
	memset(&res, 0, sizeof(res));
	c.r = r;
	c.a = a;
	c.mo = mo;
	c.maildir = xstrdup(mo->path);
	if (strlen(c.maildir) > 1 && c.maildir[strlen(c.maildir) - 1] == '/')
		c.maildir[strlen(c.maildir) - 1] = '\0';
	home = sieve_home(mo);
	dir = sstore_expand(lconf.sieve_dir, home);
	act = sstore_expand(lconf.sieve_active, home);
	sstore_init(&c.st, dir, act);
	c.st.max_size = (size_t)lconf.sieve_max_size;
	free(home);
	free(dir);
	free(act);
	sieve_limits_default(&lim_conf);
	lim_conf.script_max = (size_t)lconf.sieve_max_size;
	lim_conf.actions_max = (int)lconf.sieve_max_actions;
	lim_conf.redirects_max = (int)lconf.sieve_max_redirects;

	if (local_become(r, a, mo->uid, mo->gid) < 0)
		goto out_free;
	/* before, the user's active script, after */
	for (i = 0; lconf.sieve_before[i] != NULL && !failed && n < SIEVE_SCRIPTS_MAX - 1; i++)
		failed = load_admin(&c, lconf.sieve_before[i], scripts, &n) < 0;
	rc = failed ? 0 : sstore_active_read(&c.st, &udata, &ulen, &uname, &err);
	have_user = rc > 0;
	if (rc < 0) {
		c.err = xasprintf("active script: %s", err != NULL ? err : "unreadable");
		failed = 1;
	} else if (rc > 0 && compile_one(&c, uname, udata, ulen, &scripts[n]) < 0)
		failed = 1;
	else if (rc > 0)
		n++;
	for (i = 0; lconf.sieve_after[i] != NULL && !failed && n < SIEVE_SCRIPTS_MAX; i++)
		failed = load_admin(&c, lconf.sieve_after[i], scripts, &n) < 0;
	if (!failed && n == 0) {
		/* nothing to run: the ordinary delivery */
		struct lstore sp = { .qroot = mo->path };

		(void)local_store(r, a, mo->path, mo->quota, &sp);
		goto out_restore;
	}
	if (failed) {
		keep_after_failure(&c);
		goto out_restore;
	}
	/* the message as the tests see it */
	(void)local_content(r->msg, collect, &msg);
	memset(&env, 0, sizeof(env));
	sep = msg.data != NULL ? memmem(msg.data, msg.len, "\n\n", 2) : NULL;
	env.hdr = buf_cstr(&msg);
	env.hdrlen = sep != NULL ? (size_t)(sep - msg.data) + 1 : msg.len;
	env.body = sep != NULL ? sep + 2 : "";
	env.bodylen = sep != NULL ? msg.len - (size_t)(sep + 2 - msg.data) : 0;
	env.size = (uint64_t)r->msg->env.content_size;
	env.env_from = r->msg->sender;
	env.env_to = a->addr;
	env.delim = lconf.delim;
	env.host = config_str("myhostname");
	env.domain = config_str("mydomain");
	env.version = config_str("mail_version");
	env.now = now;
	env.tz_offset = localtime_r(&now, &tm) != NULL ? tm.tm_gmtoff : 0;
	env.include = cb_include;
	env.duplicate = cb_duplicate;
	env.mailbox_exists = cb_folder_exists;
	env.ctx = &c;
	if (sieve_run(scripts, n, &env, &res) < 0) {
		c.err = xasprintf("run-time error at line %d%s%s: %s", res.error_line,
		    n > 1 ? " of one of the scripts" : have_user ? " of " : "",
		    n > 1 ? "" : have_user ? uname : "", res.error);
		keep_after_failure(&c);
		goto out_restore;
	}
	/* A redirect that would loop is not sent: the message is kept
	 * instead of vanishing (the redirect had cancelled the keep). */
	{
		int refused = 0, stored = 0;

		for (i = 0; i < res.nacts; i++) {
			const struct sieve_action *x = &res.acts[i];

			if (x->type == SIEVE_REDIRECT && redirect_refused(r, a, x->target))
				refused = 1;
			if (x->type == SIEVE_KEEP || x->type == SIEVE_FILEINTO ||
			    x->type == SIEVE_REJECT || x->type == SIEVE_EREJECT ||
			    x->type == SIEVE_DISCARD)
				stored = 1;
		}
		if (refused && !stored) {
			c.err = xstrdup("redirect refused");
			keep_after_failure(&c);
			if (lr_stop(r))
				goto out_restore;
		}
	}
	/* copies first: all durable before anything leaves the host */
	for (i = 0; i < res.nacts; i++) {
		const struct sieve_action *x = &res.acts[i];

		if ((x->type == SIEVE_KEEP || x->type == SIEVE_FILEINTO) && do_store(&c, x) < 0)
			goto out_restore;
	}
	for (i = 0; i < res.nacts; i++) {
		const struct sieve_action *x = &res.acts[i];

		switch (x->type) {
		case SIEVE_DISCARD:
			log_info("%s: sieve: to=<%s>: discarded", r->msg->id, a->addr);
			lr_ok(r, a->addr, "discarded by sieve");
			break;
		case SIEVE_REJECT:
		case SIEVE_EREJECT:
			log_info("%s: sieve: to=<%s>: rejected: %s", r->msg->id, a->addr, x->target);
			lr_fail(r, a->addr, "5.7.1", "rejected by sieve: %s", x->target);
			break;
		case SIEVE_REDIRECT:
			if (redirect_refused(r, a, x->target)) {
				log_warnx("%s: sieve: to=<%s>: redirect to <%s> would loop "
				    "(Delivered-To or itself): not sent", r->msg->id, a->addr,
				    x->target);
			} else {
				r->fwd = xreallocarray(r->fwd, r->nfwd + 1, sizeof(*r->fwd));
				r->fwd[r->nfwd].addr = xstrdup(x->target);
				r->fwd[r->nfwd].orig = xstrdup(a->addr);
				r->nfwd++;
				log_info("%s: sieve: to=<%s>: redirect to <%s>", r->msg->id, a->addr,
				    x->target);
			}
			break;
		case SIEVE_VACATION:
			vacation = x;
			break;
		default:
			break;
		}
	}
	/* a redirect or discard alone still counts as handled */
	for (i = 0; i < res.ndup; i++) {
		char *k = xasprintf("d:%s", res.dup_ids[i]);

		(void)db_record(&c, k, res.dup_secs[i]);
		free(k);
	}
	if (vacation != NULL && r->status == 0) {
		const char *why = NULL;
		const char *mine[3] = { a->addr, r->addr, NULL };
		char *k;

		if (!sieve_vacation_allowed(&env, vacation, mine, &why)) {
			log_info("%s: sieve: to=<%s>: no vacation reply: %s", r->msg->id, a->addr,
			    why);
		} else {
			char *lsender = str_lower(xstrdup(env.env_from));

			k = xasprintf("v:%s\n%s", vacation->handle, lsender);
			free(lsender);
			if (db_seen(&c, k) == 1)
				log_info("%s: sieve: to=<%s>: no vacation reply: <%s> already "
				    "answered within :days", r->msg->id, a->addr, env.env_from);
			else if (db_record(&c, k, vacation->days) == 0) {
				/* the queue belongs to mail_owner: write it as root */
				local_restore();
				do_vacation(&c, &env, vacation);
				if (local_become(r, a, mo->uid, mo->gid) < 0) {
					free(k);
					goto out_free;
				}
			}
			free(k);
		}
	}
	/* Notifications once the message is where the script put it; a
	 * delivery that failed sends none (it is tried again). */
	for (i = 0; i < res.nacts && r->status == 0; i++) {
		if (res.acts[i].type != SIEVE_NOTIFY)
			continue;
		local_restore();   /* the queue belongs to mail_owner */
		do_notify(&c, &env, &res.acts[i]);
		if (local_become(r, a, mo->uid, mo->gid) < 0)
			goto out_free;
	}
	if (res.nacts > 0 && r->nok == 0 && r->status == 0 && r->nfwd == 0)
		lr_ok(r, a->addr, "filtered by sieve");
out_restore:
	local_restore();
out_free:
	for (i = 0; i < n; i++)
		sieve_free(&scripts[i]);
	sieve_result_free(&res);
	if (c.db_open > 0)
		db_close(&c.db);
	sstore_free(&c.st);
	buf_free(&msg);
	free(c.maildir);
	free(c.err);
	free(udata);
	free(uname);
	free(err);
}
