/*
 * session - one logged-in IMAP session (RFC 9051 and RFC 3501
 * authenticated and selected states) over the connection object: command
 * parsing (lib/proto/imap.c), dispatch, IDLE, and the untagged updates
 * that keep the client's view of the selected mailbox true.
 *
 * The view. A selected session keeps its own array of messages (UID,
 * flags, keywords, MODSEQ, \Recent): message sequence numbers are indexes
 * into it, and they change only when this session reports an EXPUNGE.
 * s_updates() compares the view with the mailbox's shared snapshot
 * (mailbox.c) and reports, in this order, FETCH FLAGS for changed flags,
 * EXPUNGE (descending, so every number is right when sent) and EXISTS /
 * RECENT for new mail. It runs after every command, and at once for
 * idling sessions when the mailbox changes; EXPUNGE is held back during
 * FETCH, STORE and SEARCH (RFC 3501 7.4.1) and a message expunged
 * meanwhile stays in the view, marked gone, until it may be reported.
 * \Recent: the index hands each new UID to one claimer only
 * (mbx_recent_claim), and only read-write sessions claim.
 *
 * Invariants: the session runs as the mailbox owner (the worker refuses
 * root); mailbox names from the client go only through imap_mailbox_arg()
 * and mbx_folder_path() (s_folder_path); nothing is read from the client
 * while a FETCH streams or auth-like continuation is pending, so input is
 * bounded by the parser's limits (line, literal = APPENDLIMIT, nesting).
 * Trusts: the broker for user, mailbox and addresses.
 * Limits: imapd_hard_error_limit BADs, imapd_timeout idle (also in IDLE),
 * imapd_client_connection_limit sessions per user and address.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "proto/imap_fetch.h"
#include "proto/imap_list.h"
#include "proto/sasl.h"
#include "store/maildir.h"
#include "store/postlogin.h"
#include "imapd.h"

#define OUT_HIGH (256 * 1024)
#define IDLE_LINE_MAX 1024

static struct isess *sessions;
static int nsessions;

int
session_count(void)
{
	return nsessions;
}

/* ---- replies ---- */

void
s_write(struct isess *s, const void *p, size_t n)
{
	conn_write(s->conn, p, n);
}

void
s_tagged(struct isess *s, const char *tag, const char *fmt, ...)
{
	struct buf b = BUF_INIT(0);
	va_list ap;

	(void)buf_printf(&b, "%s ", tag);
	va_start(ap, fmt);
	(void)buf_vprintf(&b, fmt, ap);
	va_end(ap);
	(void)buf_puts(&b, "\r\n");
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
}

void
s_untagged(struct isess *s, const char *fmt, ...)
{
	struct buf b = BUF_INIT(0);
	va_list ap;

	(void)buf_puts(&b, "* ");
	va_start(ap, fmt);
	(void)buf_vprintf(&b, fmt, ap);
	va_end(ap);
	(void)buf_puts(&b, "\r\n");
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
}

void
s_bad(struct isess *s, const char *tag, const char *text)
{
	s_tagged(s, tag, "BAD %s", text);
	if (++s->errors >= imapd_conf.hard_error_limit) {
		s_untagged(s, "BYE Too many invalid IMAP commands.");
		s->quit = 1;
	}
}

/* Only what works is advertised (issue 9). */
static const char *
capabilities(void)
{
	static char caps[512];

	if (caps[0] == '\0')
		(void)snprintf(caps, sizeof(caps), "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ "
		    "ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE MULTIAPPEND "
		    "APPENDLIMIT=%" PRIu64 " UTF8=ACCEPT CHILDREN LIST-EXTENDED "
		    "LIST-STATUS SPECIAL-USE STATUS=SIZE ESEARCH SEARCHRES BINARY SORT SORT=DISPLAY "
		    "CONDSTORE QRESYNC COMPRESS=DEFLATE "
		    "QUOTA QUOTA=RES-STORAGE "
		    "THREAD=ORDEREDSUBJECT THREAD=REFERENCES",
		    imapd_conf.append_limit);
	return caps;
}

static void
stats_line(struct isess *s, const char *why)
{
	log_info("Disconnected: %s fetch=%u/%" PRIu64 ", store=%u, append=%u, "
	    "copy=%u, expunge=%u: user=<%s>, rip=%s%s", why, s->n_fetch,
	    s->fetch_bytes, s->n_store, s->n_append, s->n_copy, s->n_expunge,
	    s->user, s->rip, s->tls ? ", TLS" : "");
}

void
imsg_free_kw(struct imsg *m)
{
	strv_free(&m->keywords);
}

static void
view_free(struct isess *s)
{
	for (size_t i = 0; i < s->n; i++)
		imsg_free_kw(&s->msgs[i]);
	free(s->msgs);
	s->msgs = NULL;
	s->n = s->cap = 0;
}

static void
idle_notify_stop(struct isess *s)
{
	if (s->idle_timer != 0)
		loop_timer_cancel(s->loop, s->idle_timer);
	s->idle_timer = 0;
}

static void
session_free(struct isess *s)
{
	struct isess **pp;

	for (pp = &sessions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	idle_notify_stop(s);
	fetch_job_free(&s->job);
	s_unselect(s);
	imap_parser_free(&s->parser);
	conn_free(&s->conn);
	close(s->fd);
	free(s->user);
	free(s->rip);
	free(s->maildir);
	free(s->idle_tag);
	free(s);
	nsessions--;
	postlogin_session_gone();
}

/* ---- the view of the selected mailbox ---- */

static char **
kw_dup(char *const *kw)
{
	char **v = xcalloc(1, sizeof(char *));

	for (size_t i = 0; kw != NULL && kw[i] != NULL; i++)
		strv_push(&v, kw[i]);
	return v;
}

static int
kw_equal(char *const *a, char *const *b)
{
	size_t i;

	for (i = 0; a[i] != NULL && b[i] != NULL; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return a[i] == NULL && b[i] == NULL;
}

static void
view_push(struct isess *s, const struct mbx_msg *m, int recent)
{
	struct imsg *v;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->msgs = xreallocarray(s->msgs, s->cap, sizeof(*s->msgs));
	}
	v = &s->msgs[s->n++];
	memset(v, 0, sizeof(*v));
	v->uid = m->uid;
	v->flags = m->flags;
	v->keywords = kw_dup(m->keywords);
	v->modseq = m->modseq;
	v->size = m->wire_size;
	v->internaldate = m->internaldate;
	v->recent = recent;
}

void
s_condstore_on(struct isess *s)
{
	if (s->condstore)
		return;
	s->condstore = 1;
	if (s->box != NULL)
		s_untagged(s, "OK [HIGHESTMODSEQ %" PRIu64 "] Highest",
		    mbx_highestmodseq(s->box->mb));
}

void
s_keywords_seen(struct isess *s, char *const *kw)
{
	struct buf b = BUF_INIT(0);
	int added = s->kw_known == NULL;

	if (s->kw_known == NULL)
		s->kw_known = xcalloc(1, sizeof(char *));
	for (size_t i = 0; kw != NULL && kw[i] != NULL; i++)
		if (!strv_contains_ci(s->kw_known, kw[i])) {
			strv_push(&s->kw_known, kw[i]);
			added = 1;
		}
	if (!added)
		return;
	(void)buf_puts(&b, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (size_t k = 0; s->kw_known[k] != NULL; k++)
		(void)buf_printf(&b, " %s", s->kw_known[k]);
	(void)buf_puts(&b, ")\r\n");
	s_write(s, b.data, b.len);
	buf_free(&b);
}

static void
flags_update(struct isess *s, size_t i)
{
	struct buf b = BUF_INIT(0);
	struct imsg *m = &s->msgs[i];

	(void)buf_printf(&b, "* %zu FETCH (UID %" PRIu32 " FLAGS ", i + 1, m->uid);
	imap_write_flags(&b, m->flags, m->keywords, s_recent(s, m));
	if (s->condstore)
		(void)buf_printf(&b, " MODSEQ (%" PRIu64 ")", m->modseq);
	(void)buf_puts(&b, ")\r\n");
	s_write(s, b.data, b.len);
	buf_free(&b);
}

void
s_view_add_new(struct isess *s, size_t j)
{
	struct imbox *b = s->box;
	uint32_t lo = 0, hi = 0;
	char *err = NULL;
	int r;

	if (j >= b->nsnap)
		return;
	/* A read-write session claims the new UIDs; EXAMINE only looks,
	 * for it MUST NOT take \Recent away (RFC 3501 6.3.2). */
	if (!s->readonly)
		r = mbx_recent_claim(b->mb, &lo, &hi, &err);
	else if ((r = mbx_recent_first(b->mb, &lo, &err)) == 0)
		hi = UINT32_MAX;
	if (r < 0) {
		log_warnx("user=<%s>: %s: recent: %s", s->user, s->box_name, err);
		free(err);
		lo = hi = 0;
	}
	for (; j < b->nsnap; j++)
		view_push(s, &b->snap[j], b->snap[j].uid >= lo && b->snap[j].uid < hi);
}

void
s_updates(struct isess *s, int allow_expunge)
{
	struct imbox *b = s->box;
	char *err = NULL;
	size_t i, j = 0, n0;
	int any_gone = 0;

	if (b == NULL)
		return;
	if (s->seen_gen != b->gen) {
		if (imbox_snapshot(b, &err) < 0) {
			log_warnx("user=<%s>: %s: %s", s->user, s->box_name, err);
			free(err);
			return;
		}
		s->seen_gen = b->snap_gen;
		/* Both in UID order. */
		for (i = 0; i < s->n; i++) {
			struct imsg *m = &s->msgs[i];
			while (j < b->nsnap && b->snap[j].uid < m->uid)
				j++;
			if (j < b->nsnap && b->snap[j].uid == m->uid) {
				const struct mbx_msg *x = &b->snap[j];
				if (x->flags != m->flags || !kw_equal(x->keywords, m->keywords)) {
					m->flags = x->flags;
					imsg_free_kw(m);
					m->keywords = kw_dup(x->keywords);
					m->modseq = x->modseq;
					if (!m->gone) {
						s_keywords_seen(s, m->keywords);
						flags_update(s, i);
					}
				}
				m->modseq = x->modseq;
				j++;
			} else {
				m->gone = 1;
			}
		}
		/* Messages newer than the last one in the view. */
		uint32_t last = s->n > 0 ? s->msgs[s->n - 1].uid : 0;
		for (j = 0; j < b->nsnap && b->snap[j].uid <= last; j++)
			;
		n0 = s->n;
		s_view_add_new(s, j);
		if (s->n != n0) {
			size_t r = 0;
			for (i = n0; i < s->n; i++)
				s_keywords_seen(s, s->msgs[i].keywords);
			s_untagged(s, "%zu EXISTS", s->n);
			for (i = 0; i < s->n; i++)
				r += s->msgs[i].recent;
			if (!s->rev2)
				s_untagged(s, "%zu RECENT", r);
		}
	}
	for (i = 0; i < s->n; i++)
		any_gone |= s->msgs[i].gone;
	if (!allow_expunge || !any_gone)
		return;
	size_t w = 0, recent_gone = 0, recent = 0;
	if (s->qresync) {
		/* RFC 7162 3.2.10: VANISHED instead of EXPUNGE. */
		uint32_t *u = xcalloc(s->n, sizeof(*u));
		size_t k = 0;
		struct buf vb = BUF_INIT(0);
		for (i = 0; i < s->n; i++)
			if (s->msgs[i].gone)
				u[k++] = s->msgs[i].uid;
		(void)buf_puts(&vb, "* VANISHED ");
		uidset_write(&vb, u, k);
		(void)buf_puts(&vb, "\r\n");
		s_write(s, vb.data, vb.len);
		buf_free(&vb);
		free(u);
	} else {
		/* Highest first, so each number is still right when the
		 * client reads it. */
		for (i = s->n; i-- > 0; )
			if (s->msgs[i].gone)
				s_untagged(s, "%zu EXPUNGE", i + 1);
	}
	/* One pass closes the gaps. */
	for (i = 0; i < s->n; i++) {
		if (s->msgs[i].gone) {
			recent_gone += s_recent(s, &s->msgs[i]);
			imsg_free_kw(&s->msgs[i]);
		} else {
			recent += s_recent(s, &s->msgs[i]);
			s->msgs[w++] = s->msgs[i];
		}
	}
	s->n = w;
	/* RFC 3501 7.3.2: the count of \Recent changed (with VANISHED too:
	 * QRESYNC changes how expunges are told, not RECENT). */
	if (recent_gone > 0)
		s_untagged(s, "%zu RECENT", recent);
}

void
s_unselect(struct isess *s)
{
	view_free(s);
	strv_free(&s->kw_known);
	imbox_release(&s->box);
	xfree(&s->box_name);
	imap_seqset_free(&s->saved);
	s->have_saved = 0;
	s->readonly = 0;
}

int
s_seqset(struct isess *s, const char *tag, const struct imap_arg *a, int uid,
    size_t **idx_r, size_t *n_r)
{
	struct imap_seqset set = { 0 };
	const char *err = NULL;
	size_t *idx, k = 0;

	*idx_r = NULL;
	*n_r = 0;
	if (a == NULL || a->kind != IMAP_ARG_ATOM
	    || imap_seqset_parse(a->str, a->len, &set, &err) < 0) {
		s_bad(s, tag, err != NULL ? err : "Invalid sequence set.");
		return -1;
	}
	idx = xcalloc(s->n + 1, sizeof(*idx));
	if (set.saved) {
		/* "$": the UIDs saved by SEARCH RETURN (SAVE). */
		for (size_t i = 0; s->have_saved && i < s->n; i++)
			if (imap_seqset_contains(&s->saved, s->msgs[i].uid))
				idx[k++] = i;
	} else if (uid) {
		(void)imap_seqset_resolve(&set, s->n > 0 ? s->msgs[s->n - 1].uid : 0, 0);
		for (size_t i = 0; i < s->n; i++)
			if (imap_seqset_contains(&set, s->msgs[i].uid))
				idx[k++] = i;
	} else if (s->n > 0) {
		uint64_t it = 0;
		uint32_t v;
		if (imap_seqset_resolve(&set, (uint32_t)s->n, 1) < 0) {
			imap_seqset_free(&set);
			free(idx);
			s_bad(s, tag, "Invalid messageset.");
			return -1;
		}
		while (imap_seqset_next(&set, &it, &v) == 1 && k < s->n)
			idx[k++] = v - 1;
	}
	/* An empty mailbox: "1:*" names nothing, which is not an error
	 * (clients clear a mailbox so without looking first). */
	imap_seqset_free(&set);
	*idx_r = idx;
	*n_r = k;
	return 0;
}

int
s_folder_path(struct isess *s, const char *tag, const struct imap_arg *a,
    char **name_r, char **path_r)
{
	const char *err = NULL;
	char *e = NULL;

	*name_r = *path_r = NULL;
	if (a == NULL || !imap_arg_is_string(a)) {
		s_bad(s, tag, "Invalid mailbox name.");
		return -1;
	}
	if (imap_mailbox_arg(a, s->utf8, name_r, &err) < 0) {
		s_tagged(s, tag, "NO [CANNOT] Invalid mailbox name: %s", err ? err : "refused");
		return -1;
	}
	if (mbx_folder_path(s->maildir, *name_r, path_r, &e) < 0) {
		s_tagged(s, tag, "NO [CANNOT] Invalid mailbox name: %s", e ? e : "refused");
		free(e);
		xfree(name_r);
		return -1;
	}
	return 0;
}

struct imbox *
s_box_acquire(struct isess *s, const char *path, int create, char **err_r)
{
	struct imbox *b = imbox_acquire(path, create, err_r);

	if (b != NULL)
		mbx_set_quota(b->mb, s->maildir, s->quota);
	return b;
}

/* ---- commands without a mailbox ---- */

static void
cmd_enable(struct isess *s, const struct imap_command *c, int arg)
{
	struct buf b = BUF_INIT(0);
	const struct imap_arg *a;
	int cs = 0;

	if (c->args[0].nchildren == 0) {
		s_bad(s, c->tag, "ENABLE needs arguments.");
		return;
	}
	(void)buf_puts(&b, "* ENABLED");
	for (size_t k = 0; (a = imap_arg_child(c, 0, k)) != NULL; k++) {
		if (a->kind != IMAP_ARG_ATOM)
			continue;
		if (strcasecmp(a->str, "IMAP4rev2") == 0 && !s->rev2) {
			s->rev2 = 1;
			(void)buf_puts(&b, " IMAP4rev2");
		} else if (strcasecmp(a->str, "CONDSTORE") == 0 && !s->condstore && !cs) {
			cs = 1;
			(void)buf_puts(&b, " CONDSTORE");
		} else if (strcasecmp(a->str, "QRESYNC") == 0 && !s->qresync) {
			s->qresync = cs = 1;
			(void)buf_puts(&b, " QRESYNC");
		} else if (strcasecmp(a->str, "UTF8=ACCEPT") == 0 && !s->utf8) {
			s->utf8 = 1;
			(void)buf_puts(&b, " UTF8=ACCEPT");
		}
	}
	(void)buf_puts(&b, "\r\n");
	s_write(s, b.data, b.len);
	buf_free(&b);
	if (cs)
		s_condstore_on(s);
	s_tagged(s, c->tag, "OK Enabled.");
}

/* "* OK Still here" every imapd_idle_notify_interval while a client
 * idles, as Dovecot does: NAT and firewall state between a phone and the
 * server is kept alive, and a client that vanished is found when a write
 * fails. Those writes would reset the connection's inactivity timer, so
 * imapd_timeout is checked here against the client's last input. */
static void
idle_notify_cb(struct loop *l, void *ctx)
{
	struct isess *s = ctx;
	uint64_t now = loop_now_ms();

	s->idle_timer = 0;
	if (!s->idling)
		return;
	if (now - s->last_input >= imapd_conf.timeout_ms) {
		conn_printf(s->conn, "* BYE Disconnected for inactivity.\r\n");
		(void)conn_flush(s->conn);
		stats_line(s, "Inactivity");
		session_free(s);
		return;
	}
	conn_printf(s->conn, "* OK Still here\r\n");
	(void)conn_flush(s->conn);
	s->idle_timer = loop_timer_add(l, imapd_conf.idle_notify_ms, idle_notify_cb, s);
}

static void
cmd_idle(struct isess *s, const struct imap_command *c, int arg)
{
	free(s->idle_tag);
	s->idle_tag = xstrdup(c->tag);
	s->idling = 1;
	conn_printf(s->conn, "+ idling\r\n");
	s_updates(s, 1);
	if (imapd_conf.idle_notify_ms > 0)
		s->idle_timer = loop_timer_add(s->loop, imapd_conf.idle_notify_ms,
		    idle_notify_cb, s);
}

static void
idle_line(struct isess *s, const char *line, size_t len)
{
	s->idling = 0;
	idle_notify_stop(s);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
		s_updates(s, 1);
		s_tagged(s, s->idle_tag, "OK Idle completed.");
	} else {
		s_bad(s, s->idle_tag, "Expected DONE.");
	}
	xfree(&s->idle_tag);
}

enum { NEED_AUTH = 0, NEED_SELECTED = 1 };

struct command {
	const char *name;
	int state;                     /* NEED_* */
	void (*fn)(struct isess *s, const struct imap_command *c, int uid);
	int arg;
};

static void
c_simple(struct isess *s, const struct imap_command *c, int a)
{
	switch (a) {
	case 0:   /* CAPABILITY */
		s_untagged(s, "CAPABILITY %s", capabilities());
		s_tagged(s, c->tag, "OK Capability completed.");
		break;
	case 1:   /* NOOP, CHECK */
		s_updates(s, 1);
		s_tagged(s, c->tag, "OK %s completed.", c->name);
		break;
	case 2:   /* LOGOUT */
		s_untagged(s, "BYE Logging out");
		s_tagged(s, c->tag, "OK Logout completed.");
		s->quit = 2;
		break;
	case 3:   /* NAMESPACE */
		s_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
		s_tagged(s, c->tag, "OK Namespace completed.");
		break;
	case 5: { /* COMPRESS DEFLATE */
		const struct imap_arg *m = imap_arg_child(c, 0, 0);
		if (m == NULL || m->kind != IMAP_ARG_ATOM || strcasecmp(m->str, "DEFLATE") != 0
		    || imap_arg_child(c, 0, 1) != NULL) {
			s_bad(s, c->tag, "Unknown compression mechanism.");
		} else if (conn_compressed(s->conn)) {
			s_tagged(s, c->tag, "NO [COMPRESSIONACTIVE] DEFLATE active via COMPRESS.");
		} else {
			s_tagged(s, c->tag, "OK DEFLATE active.");
			if (conn_compress(s->conn) < 0) {
				log_warnx("user=<%s>: COMPRESS: cannot start zlib", s->user);
				s->quit = 3;
			}
		}
		break;
	}
	case 4:   /* ID */
		s_untagged(s, "ID (\"name\" \"Postern\")");
		s_tagged(s, c->tag, "OK ID completed.");
		break;
	}
}

static const struct command commands[] = {
	{ "APPEND", NEED_AUTH, cmd_append, 0 },
	{ "CAPABILITY", NEED_AUTH, c_simple, 0 },
	{ "CHECK", NEED_SELECTED, c_simple, 1 },
	{ "CLOSE", NEED_SELECTED, cmd_close, 1 },
	{ "COMPRESS", NEED_AUTH, c_simple, 5 },
	{ "COPY", NEED_SELECTED, cmd_copy, 0 },
	{ "CREATE", NEED_AUTH, cmd_create, 0 },
	{ "DELETE", NEED_AUTH, cmd_delete, 0 },
	{ "ENABLE", NEED_AUTH, cmd_enable, 0 },
	{ "EXAMINE", NEED_AUTH, cmd_select, 1 },
	{ "EXPUNGE", NEED_SELECTED, cmd_expunge, 0 },
	{ "FETCH", NEED_SELECTED, cmd_fetch, 0 },
	{ "GETQUOTA", NEED_AUTH, cmd_quota, 0 },
	{ "GETQUOTAROOT", NEED_AUTH, cmd_quota, 1 },
	{ "ID", NEED_AUTH, c_simple, 4 },
	{ "IDLE", NEED_AUTH, cmd_idle, 0 },
	{ "LIST", NEED_AUTH, cmd_list, 0 },
	{ "LOGOUT", NEED_AUTH, c_simple, 2 },
	{ "LSUB", NEED_AUTH, cmd_list, 1 },
	{ "MOVE", NEED_SELECTED, cmd_copy, 2 },
	{ "NAMESPACE", NEED_AUTH, c_simple, 3 },
	{ "NOOP", NEED_AUTH, c_simple, 1 },
	{ "RENAME", NEED_AUTH, cmd_rename, 0 },
	{ "SEARCH", NEED_SELECTED, cmd_search, 0 },
	{ "SELECT", NEED_AUTH, cmd_select, 0 },
	{ "SETQUOTA", NEED_AUTH, cmd_quota, 2 },
	{ "SORT", NEED_SELECTED, cmd_sort, 0 },
	{ "STATUS", NEED_AUTH, cmd_status, 0 },
	{ "STORE", NEED_SELECTED, cmd_store, 0 },
	{ "SUBSCRIBE", NEED_AUTH, cmd_subscribe, 1 },
	{ "THREAD", NEED_SELECTED, cmd_thread, 0 },
	{ "UNSELECT", NEED_SELECTED, cmd_close, 0 },
	{ "UNSUBSCRIBE", NEED_AUTH, cmd_subscribe, 0 },
};

static const struct command uid_commands[] = {
	{ "COPY", NEED_SELECTED, cmd_copy, 1 },
	{ "EXPUNGE", NEED_SELECTED, cmd_expunge, 1 },
	{ "FETCH", NEED_SELECTED, cmd_fetch, 1 },
	{ "MOVE", NEED_SELECTED, cmd_copy, 3 },
	{ "SEARCH", NEED_SELECTED, cmd_search, 1 },
	{ "SORT", NEED_SELECTED, cmd_sort, 1 },
	{ "STORE", NEED_SELECTED, cmd_store, 1 },
	{ "THREAD", NEED_SELECTED, cmd_thread, 1 },
};

static const struct command *
lookup(const struct command *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

static void
cmd_run(struct isess *s, const struct imap_command *c)
{
	const struct command *k;
	struct imap_command uc;
	struct imap_arg *args = NULL;

	if (strcmp(c->name, "UID") == 0) {
		const struct imap_arg *sub = imap_arg_child(c, 0, 0);
		if (sub == NULL || sub->kind != IMAP_ARG_ATOM
		    || (k = lookup(uid_commands, sizeof(uid_commands) / sizeof(*uid_commands),
		    sub->str)) == NULL) {
			s_bad(s, c->tag, "Unknown UID command.");
			return;
		}
		/* The sub-command with its own argument list: arguments are
		 * stored in document order, so dropping the list head makes
		 * the sub-command's name the head; it becomes the list of the
		 * remaining children, and every sibling index moves by one. */
		args = xcalloc(c->nargs - 1, sizeof(*args));
		memcpy(args, c->args + 1, (c->nargs - 1) * sizeof(*args));
		args[0] = c->args[0];
		args[0].nchildren--;
		args[0].next = 0;
		for (size_t i = 1; i < c->nargs - 1; i++)
			if (args[i].next != 0)
				args[i].next--;
		uc = *c;
		uc.name = k->name;
		uc.args = args;
		uc.nargs = c->nargs - 1;
		c = &uc;
	} else {
		k = lookup(commands, sizeof(commands) / sizeof(*commands), c->name);
		if (k == NULL) {
			s_bad(s, c->tag, "Unknown command.");
			return;
		}
	}
	if (k->state == NEED_SELECTED && s->box == NULL) {
		s_bad(s, c->tag, "No mailbox selected.");
	} else {
		/* What others changed is reported before this command runs,
		 * so its replies (FETCH FLAGS, SEARCH) are never older than
		 * the mailbox. No EXPUNGE here: the command's sequence numbers
		 * refer to the view the client has. */
		s_updates(s, 0);
		k->fn(s, c, k->arg);
	}
	free(args);
}

/* ---- input ---- */

/* Run the commands in the input: 0 when it needs more input, 1 when it
 * stopped for its output to drain, -1 on an internal error. */
static int
process(struct isess *s)
{
	const char *in, *line;
	size_t n, used, len;
	enum imap_result r;
	int lr;

	for (;;) {
		if (s->job != NULL) {
			int jr = fetch_job_more(s);
			if (jr < 0)
				return -1;
			if (jr == 0)
				return 1;   /* the rest when the output drains */
		}
		if (s->quit)
			return 0;
		if (conn_out_len(s->conn) >= OUT_HIGH)
			return 1;
		if (s->idling) {
			lr = conn_read_line(s->conn, IDLE_LINE_MAX, &line, &len);
			if (lr == 0)
				return 0;
			if (lr < 0)
				idle_line(s, "", 0);
			else
				idle_line(s, line, len);
			continue;
		}
		in = conn_in(s->conn, &n);
		if (n == 0)
			return 0;
		r = imap_parse(s->parser, in, n, &used);
		conn_in_consume(s->conn, used);
		switch (r) {
		case IMAP_NEED_MORE:
			return 0;
		case IMAP_LITERAL:
			conn_printf(s->conn, "+ OK\r\n");
			imap_literal_accept(s->parser);
			break;
		case IMAP_ERROR: {
			const char *tag = imap_parser_tag(s->parser);
			const char *err = imap_parser_error(s->parser);
			/* A synchronizing literal over the limit is a message
			 * too big for APPEND (the only command with literals
			 * that large), not bad syntax: NO [TOOBIG], as RFC
			 * 7889 shows, and the client need not send it. */
			if (tag != NULL && imap_parser_too_big(s->parser)
			    && !imap_parser_must_close(s->parser))
				s_tagged(s, tag, "NO [TOOBIG] Message too big (APPENDLIMIT %"
				    PRIu64 ").", imapd_conf.append_limit);
			else
				s_bad(s, tag ? tag : "*", err);
			if (imap_parser_must_close(s->parser))
				s->quit = 1;
			break;
		}
		case IMAP_DONE:
			cmd_run(s, imap_parser_command(s->parser));
			break;
		}
	}
}

static void
isess_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct isess *s = ctx;

	if (ev & CONN_EV_TIMEOUT) {
		conn_printf(c, "* BYE Disconnected for inactivity.\r\n");
		(void)conn_flush(c);
		stats_line(s, "Inactivity");
		session_free(s);
		return;
	}
	if (ev & (CONN_EV_EOF | CONN_EV_ERROR)) {
		stats_line(s, "Connection closed");
		session_free(s);
		return;
	}
	if (ev & CONN_EV_INPUT)
		s->last_input = loop_now_ms();
	/* A flush that writes everything at once posts no DRAINED: a
	 * session that stopped for its output goes on here, or a large
	 * response to a fast reader would wait forever. */
	int r;
	while ((r = process(s)) == 1 && conn_flush(c) == 1)
		;
	if (r < 0) {
		stats_line(s, "Internal error");
		session_free(s);
		return;
	}
	if (r == 0)
		(void)conn_flush(c);
	if (s->quit && conn_out_len(c) == 0) {
		stats_line(s, s->quit == 2 ? "Logged out" : s->quit == 3 ? "Refused"
		    : "Too many invalid commands");
		session_free(s);
	}
}

void
session_box_changed(struct imbox *b)
{
	for (struct isess *s = sessions; s != NULL; s = s->next) {
		if (s->box != b || !s->idling)
			continue;
		s_updates(s, 1);
		(void)conn_flush(s->conn);
	}
}

static int
userip_count(const char *user, const char *rip)
{
	int n = 0;

	for (struct isess *s = sessions; s != NULL; s = s->next)
		if (strcmp(s->user, user) == 0 && strcmp(s->rip, rip) == 0)
			n++;
	return n;
}

void
session_start(struct loop *l, const struct ipc_msg *m, int fd)
{
	struct isess *s = xcalloc(1, sizeof(*s));
	const char *input = ipc_get(m, "input"), *tls = ipc_get(m, "tls");
	const char *tag = ipc_get(m, "tag"), *type = ipc_get(m, "mailbox_type");
	const char *path = ipc_get(m, "mailbox");
	struct imap_limits lim = IMAP_LIMITS_DEFAULT;
	const char *dsn = NULL;
	char *err = NULL;

	nsessions++;
	s->loop = l;
	s->fd = fd;
	s->user = xstrdup(ipc_get(m, "user") ? ipc_get(m, "user") : "");
	s->rip = xstrdup(ipc_get(m, "rip") ? ipc_get(m, "rip") : "");
	s->maildir = xstrdup(path ? path : "");
	s->tls = tls != NULL && strcmp(tls, "1") == 0;
	if (ipc_get(m, "quota") != NULL)
		s->quota = strtoull(ipc_get(m, "quota"), NULL, 10);
	lim.literal_max = imapd_conf.append_limit;
	lim.literal_total_max = imapd_conf.append_limit + 65536;
	s->parser = imap_parser_new(&lim);
	s->last_input = loop_now_ms();
	s->conn = conn_new(l, fd, 64 * 1024 + 4096, isess_cb, s);
	conn_set_timeout(s->conn, imapd_conf.timeout_ms);
	if (imapd_conf.userip_limit > 0
	    && userip_count(s->user, s->rip) >= imapd_conf.userip_limit) {
		log_info("user=<%s>, rip=%s: refused: %d sessions from this address "
		    "(imapd_client_connection_limit)", s->user, s->rip,
		    imapd_conf.userip_limit);
		s_untagged(s, "BYE [UNAVAILABLE] Maximum number of connections from "
		    "user+IP exceeded (imapd_client_connection_limit=%d)",
		    imapd_conf.userip_limit);
		s->quit = 3;
	} else if (type == NULL || strcmp(type, "maildir") != 0 || path == NULL) {
		log_warnx("user=<%s>: IMAP needs a Maildir mailbox, not %s", s->user,
		    path ? path : "(none)");
		s_untagged(s, "BYE [UNAVAILABLE] Mailbox is unavailable.");
		s->quit = 3;
	} else if (maildir_make(s->maildir, &dsn, &err) < 0
	    || mbx_folders_init(s->maildir, &err) < 0) {
		log_warnx("user=<%s>: creating the default folders: %s", s->user, err);
		free(err);
	}
	s->next = sessions;
	sessions = s;
	if (s->quit) {
		if (conn_flush(s->conn) != 0) {
			stats_line(s, "Refused");
			session_free(s);
		}
		return;
	}
	if (input != NULL && *input != '\0') {
		struct buf raw = BUF_INIT(0);
		if (sasl_b64_decode(input, strlen(input), &raw, 65536) == 0)
			(void)conn_in_inject(s->conn, raw.data, raw.len);
		buf_free(&raw);
	}
	s_tagged(s, tag != NULL ? tag : "*", "OK [CAPABILITY %s] Logged in", capabilities());
	(void)conn_flush(s->conn);
}
