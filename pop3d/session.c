/*
 * session - one logged-in POP3 session: RFC 1939 TRANSACTION and UPDATE
 * states, RFC 2449 CAPA, over the connection object (util/conn.h).
 *
 * Invariants:
 * - The message list is a snapshot taken at login (mbx_sync, then
 *   mbx_list): mail arriving later does not appear in this session, and
 *   message numbers never shift under the client.
 * - LIST/STAT sizes are the index's wire_size, which is exactly what RETR
 *   sends before dot-stuffing (pop3_enc, lib/proto/pop3.h).
 * - UIDLs are pop3d_uidl_format of UID and UIDVALIDITY (by default
 *   "<UIDVALIDITY>.<UID>"): stable across sessions and restarts and
 *   unique in the mailbox, because the index never reuses a UID under
 *   one UIDVALIDITY (lib/store/index.h).
 * - DELE only marks. The marked messages are expunged (mbx_expunge, files
 *   and index together, so IMAP sees them gone) only on QUIT; a dropped
 *   connection or a timeout deletes nothing.
 * - RETR/TOP stream the file in chunks, at most STREAM_HIGH bytes ahead
 *   of the client, so a large message does not grow memory.
 * - Sessions of one mailbox share one open index handle (refcounted).
 * - An mbox INBOX (mail_spool_directory) is read through
 *   lib/store/mbox.h: locked for the session as local locks it, UIDLs
 *   from the content hash it gives, compacted at QUIT. BUGS: an mbox
 *   message is encoded whole in memory before it is sent.
 * Trusts: the broker for user and mailbox; nothing from the client.
 * Limits: POP3_LINE_MAX per line; pop3d_hard_error_limit errors;
 * pop3d_timeout idle.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/conn.h"
#include "util/log.h"
#include "proto/pop3.h"
#include "proto/sasl.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/postlogin.h"
#include "pop3d.h"

#define STREAM_HIGH (64 * 1024)
#define READ_CHUNK (16 * 1024)

struct mbref {
	char *path;
	struct mailbox *mb;
	int refs;
	struct mbref *next;
};

struct pmsg {
	uint32_t uid;
	uint64_t size;
	int deleted;
	char *uidl;                    /* Maildir: by pop3d_uidl_format */
};

struct psess {
	struct loop *loop;
	struct conn *conn;
	int fd;
	char *user, *rip;
	int tls;
	struct mbref *mbr;             /* a Maildir INBOX, or */
	struct mbox_drop *drop;        /* an mbox INBOX, locked for the session */
	struct pmsg *msgs;
	size_t n;
	uint32_t uidvalidity;
	uint64_t total_size;
	unsigned top_n, retr_n, del_n;
	uint64_t top_bytes, retr_bytes;
	int errors;
	int quit;
	/* A RETR/TOP in progress. */
	int mfd;
	struct pop3_enc enc;
	struct buf chunk;
};

static struct mbref *mailboxes;
static int nsessions;

int
session_count(void)
{
	return nsessions;
}

static struct mbref *
mb_acquire(const char *path, char **err_r)
{
	struct mbref *r;

	for (r = mailboxes; r != NULL; r = r->next) {
		if (strcmp(r->path, path) == 0) {
			/* New mail since the last session: give it UIDs now. */
			if (mbx_sync(r->mb, NULL, err_r) < 0)
				return NULL;
			r->refs++;
			return r;
		}
	}
	r = xcalloc(1, sizeof(*r));
	if (mbx_open(path, MBX_CREATE, &r->mb, err_r) < 0) {
		free(r);
		return NULL;
	}
	r->path = xstrdup(path);
	r->refs = 1;
	r->next = mailboxes;
	mailboxes = r;
	return r;
}

static void
mb_release(struct mbref *r)
{
	struct mbref **pp;

	if (r == NULL || --r->refs > 0)
		return;
	for (pp = &mailboxes; *pp != r; pp = &(*pp)->next)
		;
	*pp = r->next;
	mbx_close(&r->mb);
	free(r->path);
	free(r);
}

static void
stats_line(struct psess *s, const char *why)
{
	unsigned total = 0;

	for (size_t i = 0; i < s->n; i++)
		total++;
	log_info("Disconnected: %s top=%u/%" PRIu64 ", retr=%u/%" PRIu64
	    ", del=%u/%u, size=%" PRIu64 ": user=<%s>, rip=%s%s", why, s->top_n,
	    s->top_bytes, s->retr_n, s->retr_bytes, s->del_n, total, s->total_size,
	    s->user, s->rip, s->tls ? ", TLS" : "");
}

static void
session_free(struct psess *s)
{
	if (s->mfd >= 0)
		close(s->mfd);
	mbox_drop_close(&s->drop);
	conn_free(&s->conn);
	close(s->fd);
	mb_release(s->mbr);
	for (size_t i = 0; s->msgs != NULL && i < s->n; i++)
		free(s->msgs[i].uidl);
	free(s->msgs);
	free(s->user);
	free(s->rip);
	buf_free(&s->chunk);
	free(s);
	nsessions--;
	postlogin_session_gone();
}

static void
count_error(struct psess *s)
{
	if (++s->errors >= pop3d_conf.hard_error_limit) {
		conn_printf(s->conn, "-ERR Too many bad commands.\r\n");
		s->quit = 1;
	}
}

/* Message number argument: index into msgs, or -1 after the -ERR. */
static long
msg_arg(struct psess *s, const struct pop3_arg *a)
{
	unsigned long n;

	if (pop3_number(a, &n) < 0) {
		conn_printf(s->conn, "-ERR Invalid message number: %.*s\r\n",
		    (int)a->len, a->p);
		count_error(s);
		return -1;
	}
	if (n < 1 || n > s->n) {
		conn_printf(s->conn, "-ERR There's no message %lu.\r\n", n);
		count_error(s);
		return -1;
	}
	if (s->msgs[n - 1].deleted) {
		conn_printf(s->conn, "-ERR Message is deleted.\r\n");
		count_error(s);
		return -1;
	}
	return (long)n - 1;
}

/* Feed the message being sent; 1 finished, 0 more later, -1 failed (the
 * session must end: a response cannot be taken back half-way). */
static int
stream_more(struct psess *s)
{
	char tmp[READ_CHUNK];

	while (s->mfd >= 0 && conn_out_len(s->conn) < STREAM_HIGH) {
		ssize_t r = read(s->mfd, tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			log_warn("user=<%s>: reading a message", s->user);
			return -1;
		}
		buf_reset(&s->chunk);
		if (r == 0) {
			(void)pop3_enc_finish(&s->enc, &s->chunk);
			(void)buf_puts(&s->chunk, ".\r\n");
			close(s->mfd);
			s->mfd = -1;
		} else {
			(void)pop3_enc_feed(&s->enc, tmp, (size_t)r, &s->chunk);
		}
		conn_write(s->conn, s->chunk.data, s->chunk.len);
	}
	if (s->chunk.cap > 4 * READ_CHUNK)
		buf_free(&s->chunk);
	return s->mfd < 0 ? 1 : 0;
}

static int
mbox_out(const char *p, size_t n, void *ctx)
{
	struct psess *s = ctx;

	return pop3_enc_feed(&s->enc, p, n, &s->chunk) < 0 ? -1 : 0;
}

/* mbox: the message is encoded whole first (mbox_drop_read has no
 * back-pressure), so a read error can still be an -ERR. */
static void
retr_mbox(struct psess *s, long i, long lines)
{
	char *err = NULL;

	buf_reset(&s->chunk);
	pop3_enc_init(&s->enc, 1, lines);
	if (mbox_drop_read(s->drop, (size_t)i, mbox_out, s, &err) < 0) {
		log_warnx("user=<%s>: mbox message %ld: %s", s->user, i + 1,
		    err ? err : "read failed");
		free(err);
		conn_printf(s->conn, "-ERR [SYS/TEMP] Cannot read the message.\r\n");
		return;
	}
	(void)pop3_enc_finish(&s->enc, &s->chunk);
	if (lines >= 0) {
		s->top_n++;
		s->top_bytes += s->chunk.len;
		conn_printf(s->conn, "+OK\r\n");
	} else {
		s->retr_n++;
		s->retr_bytes += s->msgs[i].size;
		conn_printf(s->conn, "+OK %" PRIu64 " octets\r\n", s->msgs[i].size);
	}
	conn_write(s->conn, s->chunk.data, s->chunk.len);
	conn_printf(s->conn, ".\r\n");
	buf_free(&s->chunk);
}

static void
cmd_retr(struct psess *s, const struct pop3_cmd *cmd, int top)
{
	long i = msg_arg(s, &cmd->argv[0]);
	unsigned long lines = 0;
	char *err = NULL;
	int r;

	if (i < 0)
		return;
	if (top && pop3_number(&cmd->argv[1], &lines) < 0) {
		conn_printf(s->conn, "-ERR Invalid number of lines: %.*s\r\n",
		    (int)cmd->argv[1].len, cmd->argv[1].p);
		count_error(s);
		return;
	}
	if (s->drop != NULL) {
		retr_mbox(s, i, top ? (long)lines : -1);
		return;
	}
	r = mbx_msg_open(s->mbr->mb, s->msgs[i].uid, &s->mfd, &err);
	if (r < 0) {
		s->mfd = -1;
		if (r == MBX_GONE) {
			conn_printf(s->conn, "-ERR Message was deleted by another "
			    "session.\r\n");
		} else {
			log_warnx("user=<%s>: message UID %" PRIu32 ": %s", s->user,
			    s->msgs[i].uid, err ? err : "cannot open");
			conn_printf(s->conn, "-ERR [SYS/TEMP] Cannot read the "
			    "message.\r\n");
		}
		free(err);
		return;
	}
	pop3_enc_init(&s->enc, 1, top ? (long)lines : -1);
	if (top) {
		s->top_n++;
		conn_printf(s->conn, "+OK\r\n");
	} else {
		s->retr_n++;
		s->retr_bytes += s->msgs[i].size;
		conn_printf(s->conn, "+OK %" PRIu64 " octets\r\n", s->msgs[i].size);
	}
}

static void
cmd_list(struct psess *s, const struct pop3_cmd *cmd, int uidl)
{
	if (cmd->argc == 1) {
		long i = msg_arg(s, &cmd->argv[0]);
		if (i < 0)
			return;
		if (uidl && s->drop != NULL)
			conn_printf(s->conn, "+OK %ld %s\r\n", i + 1,
			    mbox_drop_msg(s->drop, (size_t)i)->uidl);
		else if (uidl)
			conn_printf(s->conn, "+OK %ld %s\r\n", i + 1, s->msgs[i].uidl);
		else
			conn_printf(s->conn, "+OK %ld %" PRIu64 "\r\n", i + 1,
			    s->msgs[i].size);
		return;
	}
	conn_printf(s->conn, "+OK\r\n");
	for (size_t i = 0; i < s->n; i++) {
		if (s->msgs[i].deleted)
			continue;
		if (uidl && s->drop != NULL)
			conn_printf(s->conn, "%zu %s\r\n", i + 1,
			    mbox_drop_msg(s->drop, i)->uidl);
		else if (uidl)
			conn_printf(s->conn, "%zu %s\r\n", i + 1, s->msgs[i].uidl);
		else
			conn_printf(s->conn, "%zu %" PRIu64 "\r\n", i + 1, s->msgs[i].size);
	}
	conn_printf(s->conn, ".\r\n");
}

/* UPDATE state (RFC 1939 section 6). */
static void
cmd_quit(struct psess *s)
{
	uint32_t *uids = xcalloc(s->n + 1, sizeof(*uids));
	size_t *idx = xcalloc(s->n + 1, sizeof(*idx));
	size_t k = 0;
	char *err = NULL;
	int r = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (s->msgs[i].deleted) {
			idx[k] = i;
			uids[k++] = s->msgs[i].uid;
		}
	}
	if (k > 0)
		r = s->drop != NULL ? mbox_drop_expunge(s->drop, idx, k, &err)
		    : mbx_expunge(s->mbr->mb, uids, k, &err);
	free(idx);
	if (r < 0) {
		log_warnx("user=<%s>: expunge: %s", s->user, err ? err : "failed");
		conn_printf(s->conn, "-ERR [SYS/TEMP] Some deleted messages were not "
		    "removed.\r\n");
		s->del_n = 0;
	} else {
		conn_printf(s->conn, "+OK Logging out%s.\r\n",
		    k > 0 ? ", messages deleted" : "");
	}
	free(err);
	free(uids);
	s->quit = 2;
}

static void
cmd_run(struct psess *s, const char *line, size_t len)
{
	struct pop3_cmd cmd;
	const char *err = NULL;

	if (pop3_cmd_accept(line, len, POP3_ST_TRANS, &cmd, &err) != POP3_DONE) {
		conn_printf(s->conn, "-ERR %s.\r\n", err);
		count_error(s);
		return;
	}
	switch (cmd.verb->verb) {
	case POP3_STAT: {
		unsigned long cnt = 0;
		uint64_t sz = 0;
		for (size_t i = 0; i < s->n; i++) {
			if (!s->msgs[i].deleted) {
				cnt++;
				sz += s->msgs[i].size;
			}
		}
		conn_printf(s->conn, "+OK %lu %" PRIu64 "\r\n", cnt, sz);
		break;
	}
	case POP3_LIST:
		cmd_list(s, &cmd, 0);
		break;
	case POP3_UIDL:
		cmd_list(s, &cmd, 1);
		break;
	case POP3_RETR:
		cmd_retr(s, &cmd, 0);
		break;
	case POP3_TOP:
		cmd_retr(s, &cmd, 1);
		break;
	case POP3_DELE: {
		long i = msg_arg(s, &cmd.argv[0]);
		if (i < 0)
			break;
		s->msgs[i].deleted = 1;
		s->del_n++;
		conn_printf(s->conn, "+OK Marked to be deleted.\r\n");
		break;
	}
	case POP3_RSET:
		for (size_t i = 0; i < s->n; i++)
			s->msgs[i].deleted = 0;
		s->del_n = 0;
		conn_printf(s->conn, "+OK\r\n");
		break;
	case POP3_NOOP:
		conn_printf(s->conn, "+OK\r\n");
		break;
	case POP3_CAPA: {
		struct buf b = BUF_INIT(0);
		pop3_capa(&b, 0, "");
		conn_write(s->conn, b.data, b.len);
		buf_free(&b);
		break;
	}
	case POP3_QUIT:
		cmd_quit(s);
		break;
	default:
		conn_printf(s->conn, "-ERR Unknown command.\r\n");
		count_error(s);
		break;
	}
}

/* Run the commands in the input until a response must stream first: 0
 * when it needs more input, 1 when it stopped for its output to drain,
 * -1 on an internal error. */
static int
process(struct psess *s)
{
	const char *line;
	size_t len;
	int r;

	for (;;) {
		if (s->mfd >= 0) {
			r = stream_more(s);
			if (r < 0)
				return -1;
			if (r == 0)
				return 1;   /* the rest when the output drains */
		}
		if (s->quit)
			return 0;
		if (conn_out_len(s->conn) >= STREAM_HIGH)
			return 1;
		r = conn_read_line(s->conn, POP3_LINE_MAX, &line, &len);
		if (r == 0)
			return 0;
		if (r < 0) {
			conn_printf(s->conn, "-ERR Input line too long.\r\n");
			count_error(s);
			continue;
		}
		cmd_run(s, line, len);
	}
}

static void
psess_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct psess *s = ctx;

	if (ev & CONN_EV_TIMEOUT) {
		conn_printf(c, "-ERR Disconnected for inactivity.\r\n");
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
		stats_line(s, s->quit == 2 ? "Logged out" : "Too many invalid commands");
		session_free(s);
	}
}

/* An mbox INBOX (the spool): locked as local locks it, for the whole
 * session (RFC 1939's exclusive maildrop). A second session of the same
 * mailbox waits at most a second, then gets [IN-USE]. */
static int
start_mbox(struct psess *s, const char *path)
{
	struct mbox_opts o;
	char *err = NULL;

	mbox_opts_init(&o);
	o.owner = geteuid();
	o.lock_timeout = 1;
	if (mbox_drop_open(path, &o, &s->drop, &err) < 0) {
		log_warnx("user=<%s>: mbox %s: %s", s->user, path, err ? err : "?");
		free(err);
		conn_printf(s->conn, "-ERR [IN-USE] Mailbox is locked or unavailable.\r\n");
		return -1;
	}
	s->n = mbox_drop_count(s->drop);
	s->msgs = xcalloc(s->n + 1, sizeof(*s->msgs));
	for (size_t i = 0; i < s->n; i++) {
		s->msgs[i].size = mbox_drop_msg(s->drop, i)->wire_size;
		s->total_size += s->msgs[i].size;
	}
	return 0;
}

void
session_start(struct loop *l, const struct ipc_msg *m, int fd)
{
	struct psess *s = xcalloc(1, sizeof(*s));
	const char *path = ipc_get(m, "mailbox"), *input = ipc_get(m, "input");
	const char *tls = ipc_get(m, "tls");
	const char *type = ipc_get(m, "mailbox_type");
	struct mbx_msg *list = NULL;
	char *err = NULL;
	size_t n = 0;

	nsessions++;
	s->loop = l;
	s->fd = fd;
	s->mfd = -1;
	s->user = xstrdup(ipc_get(m, "user") ? ipc_get(m, "user") : "");
	s->rip = xstrdup(ipc_get(m, "rip") ? ipc_get(m, "rip") : "");
	s->tls = tls != NULL && strcmp(tls, "1") == 0;
	buf_init(&s->chunk, 0);
	s->conn = conn_new(l, fd, POP3_LINE_MAX + 4096 + 1024, psess_cb, s);
	conn_set_timeout(s->conn, pop3d_conf.timeout_ms);
	if (type != NULL && strcmp(type, "mbox") == 0 && path != NULL) {
		if (start_mbox(s, path) < 0) {
			s->quit = 1;
			if (conn_flush(s->conn) != 0)
				session_free(s);
			return;
		}
		goto ready;
	}
	if (path == NULL || (s->mbr = mb_acquire(path, &err)) == NULL
	    || mbx_list(s->mbr->mb, &list, &n, &err) < 0) {
		log_warnx("user=<%s>: mailbox %s: %s", s->user, path ? path : "?",
		    err ? err : "no mailbox given");
		free(err);
		conn_printf(s->conn, "-ERR [SYS/TEMP] Mailbox is unavailable.\r\n");
		s->quit = 1;
		if (conn_flush(s->conn) != 0)
			session_free(s);   /* else psess_cb ends it when drained */
		return;
	}
	s->uidvalidity = mbx_uidvalidity(s->mbr->mb);
	s->msgs = xcalloc(n + 1, sizeof(*s->msgs));
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		struct buf b = BUF_INIT(0);

		s->msgs[i].uid = list[i].uid;
		s->msgs[i].size = list[i].wire_size;
		s->total_size += list[i].wire_size;
		/* The format was checked at start; "%v.%u" if it was not. */
		if (pop3_uidl_format(&b, pop3d_conf.uidl_format, list[i].uid,
		    s->uidvalidity, list[i].name + 4) != 0) {
			buf_reset(&b);
			(void)pop3_uidl_format(&b, "%v.%u", list[i].uid, s->uidvalidity, "");
		}
		s->msgs[i].uidl = buf_steal(&b);
	}
	mbx_msgs_free(&list, n);
ready:
	if (input != NULL && *input != '\0') {
		struct buf raw = BUF_INIT(0);
		if (sasl_b64_decode(input, strlen(input), &raw, 8192) == 0)
			(void)conn_in_inject(s->conn, raw.data, raw.len);
		buf_free(&raw);
	}
	conn_printf(s->conn, "+OK Logged in.\r\n");
	(void)conn_flush(s->conn);
}
