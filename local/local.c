/*
 * local - the local (and virtual) delivery agent.
 *
 * One delivery request at a time (SERVER_SINGLE): qmgr names a queue
 * file and recipients; we open the file, hold flock(LOCK_SH) while
 * delivering, deliver each recipient (aliases, .forward, mailbox for the
 * local class; virtual_mailbox_maps for the virtual class), mark each
 * delivered recipient 'D' in the queue file as soon as its delivery is
 * durable, and answer one result per recipient. A Maildir recipient's
 * copy goes through the Sieve filters first (sieve.c). While qmgr says
 * it has more mail for local, the connection stays for the next request
 * (LOCAL_KEEP_S), so a burst costs no connect and no wake-up of every
 * idle local process per message.
 * Files: the queue file (read), mailboxes and the users' Sieve scripts
 * (as their owners), incoming/ (forwarded mail, vacation replies).
 *
 * Invariants: we keep root only to act as a recipient (priv_become) and
 * always return to root before the next recipient; a recipient's result
 * is 2.x.x only when every copy it produced is on stable storage; any
 * doubt is a 4.x.x so the message stays queued. A recipient is marked 'D'
 * before the next one starts, so a kill -9 repeats nothing finished.
 * Trusts: qmgr for the request (but checks that every offset names a
 * recipient of that queue file with the same address); the alias maps and
 * configuration. Does not trust .forward and :include: files, mailboxes,
 * or message content.
 * Logging: we log each recipient's status line (dlvlog.h) as soon as its
 * outcome is final - for a delivery right after the 'D' mark - and flag
 * the result "logged" so qmgr does not repeat it; as postern/virtual when
 * the service is "virtual". Details at debug level, trouble as warnings.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/priv.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/dlvlog.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "store/maildir.h"
#include "local.h"

#define LOCK_WAIT_MS 5000
#define HEADER_SCAN_MAX (256 * 1024)
#define DELIVERED_TO_MAX 1000
#define OKTEXT_MAX 400
/* While qmgr has more mail for us, one connection carries request after
 * request (dlv_serve()); this is how long qmgr may park it idle. Short:
 * a parked connection holds a process of the transport. */
#define LOCAL_KEEP_S 2

struct local_conf lconf;

/* Log as postern/virtual for the virtual service, like Postfix's
 * virtual(8): administrators' tools tell the two apart by name. */
static void
log_as_service(void)
{
	const char *svc = server_service_name(), *prog = log_progname();
	const char *slash = prog != NULL ? strrchr(prog, '/') : NULL;
	char *name;

	if (svc == NULL || *svc == '\0' || slash == NULL || strcmp(slash + 1, svc) == 0 ||
	    strchr(svc, '/') != NULL)
		return;
	name = xasprintf("%.*s/%s", (int)(slash - prog), prog, svc);
	log_open(name, config_get("maillog_file"));
	free(name);
}

static void
local_pre_init(void)
{
	const char *v;

	log_as_service();
	lconf.qdir = xstrdup(config_str("queue_directory"));
	v = config_str("mail_owner");
	if (priv_user(v, &lconf.owner_uid, &lconf.owner_gid) < 0) {
		lconf.owner_uid = (uid_t)-1;
		lconf.owner_gid = (gid_t)-1;
	}
	v = config_str("default_privs");
	if (priv_user(v, &lconf.nobody_uid, &lconf.nobody_gid) < 0) {
		log_warnx("default_privs user \"%s\" unknown; using 65534", v);
		lconf.nobody_uid = 65534;
		lconf.nobody_gid = 65534;
	}
	if (lconf.nobody_uid == 0)
		log_fatalx("default_privs must not be root");
	lconf.alias_specs = map_split_list(config_str("alias_maps"));
	lconf.alias_db = xcalloc(strv_len(lconf.alias_specs) + 1, sizeof(struct map *));
	lconf.delim = xstrdup(config_str("recipient_delimiter"));
	lconf.mailbox_transport = xstrdup(config_str("mailbox_transport"));
	lconf.mailbox_command = xstrdup(config_str("mailbox_command"));
	lconf.allow_cmd = strv_split_list(config_str("allow_mail_to_commands"));
	lconf.allow_file = strv_split_list(config_str("allow_mail_to_files"));
	lconf.forward_path = xstrdup(config_str("forward_path"));
	lconf.cmd_limit = config_time("command_time_limit");
	owner_conf_load(&lconf.owner);
	lconf.myorigin = xstrdup(config_str("myorigin"));
	lconf.mbox_limit = config_int("mailbox_size_limit");
	lconf.vmbox_limit = config_int("virtual_mailbox_limit");
	lconf.overquota_bounce = config_bool("virtual_overquota_bounce");
	lconf.sieve = config_bool("local_sieve");
	lconf.sieve_dir = xstrdup(config_str("local_sieve_directory"));
	lconf.sieve_active = xstrdup(config_str("local_sieve_active"));
	lconf.sieve_global = xstrdup(config_str("local_sieve_global_directory"));
	lconf.sieve_before = strv_split_list(config_str("local_sieve_before"));
	lconf.sieve_after = strv_split_list(config_str("local_sieve_after"));
	lconf.sieve_max_size = config_int("local_sieve_max_script_size");
	lconf.sieve_max_scripts = config_int("local_sieve_max_scripts");
	lconf.sieve_max_storage = config_int("local_sieve_max_storage");
	lconf.sieve_max_actions = config_int("local_sieve_max_actions");
	lconf.sieve_max_redirects = config_int("local_sieve_max_redirects");
}

static void
local_post_init(struct loop *l)
{
	char *err = NULL;

	(void)l;
	lconf.root = geteuid() == 0;
	lconf.owner.check_vmin = lconf.root;
	/* Message after message to the same mailboxes (lib/store/maildir.c). */
	maildir_keep_open(1);
	if (!lconf.root)
		log_debug("not running as root: delivering as uid %ld only",
		    (long)geteuid());
	lconf.res = resolver_open(&err);
	if (lconf.res == NULL) {
		log_warnx("cannot open the resolver maps: %s", err != NULL ? err : "?");
		free(err);
	}
}

/* ---- results ---- */

void
lr_ok(struct lrcpt *r, const char *addr, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_debug("%s: to=<%s>, orig_to=<%s>, relay=%s: delivered: %s",
	    r->msg->id, addr, r->addr, r->relay, text);
	r->nok++;
	if (r->oktext.len < OKTEXT_MAX) {
		if (r->oktext.len > 0)
			buf_puts(&r->oktext, "; ");
		buf_puts(&r->oktext, text);
	} else if (!r->elided) {
		buf_puts(&r->oktext, "; ...");
		r->elided = 1;
	}
}

void
lr_fail(struct lrcpt *r, const char *addr, const char *dsn, const char *fmt, ...)
{
	char text[1024];
	int status = dsn[0] == '5' ? 5 : 4;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (status == 4)
		log_warnx("%s: to=<%s>, orig_to=<%s>: deferred: %s %s", r->msg->id,
		    addr, r->addr, dsn, text);
	else
		log_debug("%s: to=<%s>, orig_to=<%s>: bounced: %s %s", r->msg->id,
		    addr, r->addr, dsn, text);
	/* The first failure of the worst kind tells the story. */
	if (r->status == 4 || (r->status == 5 && status == 5))
		return;
	r->status = status;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	free(r->failtext);
	if (strcasecmp(addr, r->addr) == 0)
		r->failtext = xstrdup(text);
	else
		r->failtext = xasprintf("<%s>: %s", addr, text);
}

int
lr_stop(const struct lrcpt *r)
{
	return r->status == 4;
}

/* ---- privileges ---- */

int
local_become(struct lrcpt *r, const struct laddr *a, uid_t uid, gid_t gid)
{
	if (!lconf.root) {
		if (uid == geteuid())
			return 0;
		lr_fail(r, a->addr, "4.3.0", "cannot deliver as uid %ld: not running as root",
		    (long)uid);
		return -1;
	}
	if (priv_become(uid, gid) < 0) {
		int e = errno;

		local_restore();
		lr_fail(r, a->addr, "4.3.0", "cannot become uid %ld gid %ld: %s",
		    (long)uid, (long)gid, strerror(e));
		return -1;
	}
	return 0;
}

void
local_restore(void)
{
	if (lconf.root && priv_restore() < 0)
		log_fatal("cannot get root privileges back");
}

void
local_privs_fix(struct lprivs *p)
{
	if (!lconf.root) {
		p->uid = geteuid();
		p->gid = getegid();
	}
}

int
local_domain(const char *domain)
{
	enum rcpt_class cls;

	if (domain == NULL || *domain == '\0')
		return 1;
	if (lconf.res == NULL)
		return strcasecmp(domain, lconf.myorigin) == 0;
	if (resolver_class_ex(lconf.res, domain, &cls) != 0)
		return -1;
	return cls == RCPT_LOCAL;
}

int
local_loop(const struct lmsg *m, const char *addr)
{
	size_t i;

	for (i = 0; m->delivered_to != NULL && m->delivered_to[i] != NULL; i++)
		if (strcasecmp(m->delivered_to[i], addr) == 0)
			return 1;
	return 0;
}

/* ---- the content ---- */

/* A small message's content is read once per request and kept: the
 * header scan, Sieve and every copy of it (recipients, aliases, .forward)
 * would each read the queue file again. */
#define CONTENT_CACHE_MAX (256 * 1024)

static int
cache_cb(const char *p, size_t n, void *ctx)
{
	struct buf *b = ctx;

	if (b->len + n > CONTENT_CACHE_MAX) {
		/* Not what queue_read() saw: the file changed under us. */
		errno = EINVAL;
		return -1;
	}
	buf_append(b, p, n);
	return 0;
}

int
local_content(struct lmsg *m, int (*cb)(const char *, size_t, void *), void *ctx)
{
	int rc;

	if (m->env.content_size > CONTENT_CACHE_MAX)
		return queue_content(m->qfd, &m->env, cb, ctx);
	/* Kept once it holds all content_size bytes (queue_read() counted
	 * them; empty content needs no read at all). */
	if (m->content.len != (size_t)m->env.content_size) {
		buf_reset(&m->content);
		if ((rc = queue_content(m->qfd, &m->env, cache_cb, &m->content)) != 0)
			return rc;
	}
	return m->content.len > 0 ? cb(m->content.data, m->content.len, ctx) : 0;
}

/* ---- the message header: Delivered-To values for loop detection ---- */

static int
header_cb(const char *p, size_t n, void *ctx)
{
	struct buf *b = ctx;
	const char *cp;

	if (b->len == 0 && n > 0 && p[0] == '\n')
		return 1;
	if (b->len + n > HEADER_SCAN_MAX)
		n = HEADER_SCAN_MAX - b->len;
	buf_append(b, p, n);
	if (b->len >= HEADER_SCAN_MAX)
		return 1;
	cp = memmem(b->data, b->len, "\n\n", 2);
	return cp != NULL ? 1 : 0;
}

static void
scan_delivered_to(struct lmsg *m)
{
	struct buf b = BUF_INIT(0), line = BUF_INIT(0);
	char *p, *end, *nl;
	size_t count = 0;

	(void)local_content(m, header_cb, &b);
	if (b.len == 0)
		goto done;
	p = b.data;
	end = b.data + b.len;
	while (p < end && *p != '\n' && count < DELIVERED_TO_MAX) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		buf_reset(&line);
		buf_append(&line, p, (size_t)(nl - p));
		p = nl < end ? nl + 1 : end;
		/* Unfold continuation lines. */
		while (p < end && (*p == ' ' || *p == '\t')) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				nl = end;
			buf_append(&line, p, (size_t)(nl - p));
			p = nl < end ? nl + 1 : end;
		}
		if (line.len > 13 && strncasecmp(line.data, "Delivered-To:", 13) == 0) {
			char *v = str_trim(xstrdup(line.data + 13));

			if (v[0] == '<' && v[strlen(v) - 1] == '>' && strlen(v) >= 2) {
				memmove(v, v + 1, strlen(v));
				v[strlen(v) - 1] = '\0';
			}
			strv_push(&m->delivered_to, str_lower(v));
			free(v);
			count++;
		}
	}
done:
	buf_free(&b);
	buf_free(&line);
}

/* ---- one recipient ---- */

static void
deliver_one(struct lmsg *m, const struct dlv_rcpt *dr, struct dlv_result *res)
{
	struct lrcpt r;
	char *local = NULL, *domain = NULL;
	enum rcpt_class cls = RCPT_LOCAL;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.msg = m;
	r.addr = dr->addr;
	r.orig = dr->orig != NULL ? dr->orig : "";
	r.notify = dr->notify != NULL ? dr->notify : "";
	r.offset = dr->offset;
	buf_init(&r.oktext, 0);
	addr_split(dr->addr, &local, &domain);
	if (*domain != '\0' && lconf.res != NULL &&
	    resolver_class_ex(lconf.res, domain, &cls) != 0) {
		/* A table we cannot read says nothing about the recipient:
		 * keep the message (never "unknown user" for a lookup error). */
		r.relay = "none";
		lr_fail(&r, dr->addr, "4.3.0", "cannot resolve domain \"%s\": "
		    "table lookup failed", domain);
	} else if (cls == RCPT_VIRTUAL) {
		r.relay = "virtual";
		local_virtual(&r, dr->addr);
		/* Sieve redirects of a virtual user */
		if (!lr_stop(&r))
			local_forward(&r);
	} else {
		r.relay = "local";
		local_deliver_addr(&r, dr->addr, 0, 0);
		if (!lr_stop(&r))
			local_forward(&r);
	}
	res->offset = dr->offset;
	res->relay = xstrdup(r.relay);
	if (r.status != 0) {
		res->status = r.status;
		res->dsn = xstrdup(r.dsn);
		res->text = xstrdup(r.failtext);
	} else if (r.nok > 0) {
		res->logged = r.npassed == r.nok;
		res->status = 2;
		res->dsn = xstrdup("2.0.0");
		res->text = xstrdup(buf_cstr(&r.oktext));
	} else {
		res->status = 5;
		/* Every destination was already seen: an alias loop. */
		res->dsn = xstrdup("5.4.6");
		res->text = xasprintf("mail forwarding loop for %s", dr->addr);
	}
	for (i = 0; i < r.nfwd; i++) {
		free(r.fwd[i].addr);
		free(r.fwd[i].orig);
	}
	free(r.fwd);
	strv_free(&r.seen);
	buf_free(&r.oktext);
	free(r.failtext);
	free(local);
	free(domain);
}

static void
result_set(struct dlv_result *res, const struct dlv_rcpt *dr, const char *dsn,
    const char *relay, const char *text)
{
	res->offset = dr->offset;
	res->status = dsn[0] - '0';
	res->dsn = xstrdup(dsn);
	res->relay = xstrdup(relay);
	res->text = xstrdup(text);
}

static void
result_all(struct dlv_result *res, const struct dlv_request *req,
    const struct dlvlog_times *t, const char *dsn, const char *text)
{
	size_t i;

	for (i = 0; i < req->nrcpt; i++) {
		result_set(&res[i], &req->rcpts[i], dsn, "none", text);
		dlvlog_result(req->queue_id, req->rcpts[i].addr, req->rcpts[i].orig,
		    t, &res[i]);
	}
}

static void
deliver_request(int peer, const struct dlv_request *req, struct dlv_result *res)
{
	struct lmsg m;
	struct dlvlog_times t;
	char *err = NULL;
	size_t i, j;

	memset(&m, 0, sizeof(m));
	buf_init(&m.content, 0);
	dlvlog_times_request(&t, req);
	m.qfd = queue_open_shared(lconf.qdir, req->queue_dir, req->queue_id,
	    LOCK_WAIT_MS, &m.env, &err);
	clock_gettime(CLOCK_REALTIME, &t.connected);
	if (m.qfd < 0) {
		log_warnx("%s: %s", req->queue_id != NULL ? req->queue_id : "?",
		    err != NULL ? err : "cannot open queue file");
		result_all(res, req, &t, "4.3.0", "cannot open queue file");
		goto out;
	}
	m.id = m.env.id;
	m.sender = m.env.sender != NULL ? m.env.sender : "";
	m.req = req;
	scan_delivered_to(&m);

	for (i = 0; i < req->nrcpt; i++) {
		const struct dlv_rcpt *dr = &req->rcpts[i];
		struct qrcpt *qr = NULL;

		for (j = 0; j < m.env.nrcpt; j++)
			if ((long long)m.env.rcpts[j].status_off == dr->offset) {
				qr = &m.env.rcpts[j];
				break;
			}
		if (qr == NULL || strcmp(qr->addr, dr->addr) != 0) {
			log_warnx("%s: recipient <%s> at offset %lld is not in the queue file",
			    m.id, dr->addr, dr->offset);
			result_set(&res[i], dr, "4.3.0", "none",
			    "recipient not found in queue file");
			dlvlog_result(m.id, dr->addr, dr->orig, &t, &res[i]);
			continue;
		}
		if (dlv_peer_gone(peer)) {
			/* Checked under the lock: the qmgr that asked is gone
			 * and its successor hands these recipients out anew. */
			log_warnx("%s: qmgr closed the connection, leaving <%s> to the next attempt",
			    m.id, dr->addr);
			result_set(&res[i], dr, "4.3.0", "none", "queue manager went away");
			res[i].logged = 1;
			continue;
		}
		if (qr->status == 'D') {
			/* An earlier attempt delivered it and logged that. */
			result_set(&res[i], dr, "2.0.0", "local", "already delivered");
			res[i].logged = 1;
			continue;
		}
		deliver_one(&m, dr, &res[i]);
		if (res[i].status == 2) {
			if (queue_mark_rcpt(m.qfd, qr->status_off, 'D') < 0)
				log_warn("%s: mark recipient <%s> done", m.id, dr->addr);
			else
				qr->status = 'D';
		}
		/* Final for this attempt: log it now, before the reply, so a
		 * dying qmgr cannot lose the line (unless the mailbox_transport
		 * agent logged every copy: Postfix shows only its line then). */
		if (!res[i].logged)
			dlvlog_result(m.id, dr->addr, dr->orig, &t, &res[i]);
	}
out:
	free(err);
	strv_free(&m.delivered_to);
	buf_free(&m.content);
	if (m.qfd >= 0) {
		qenv_free(&m.env);
		close(m.qfd);   /* drops the flock */
	}
}

/* While qmgr has more for us and this process has uses left (max_use
 * counts requests). */
static int
local_keep(const struct dlv_request *req)
{
	return req->backlog && server_use_another() ? LOCAL_KEEP_S : 0;
}

static void
local_serve(int fd)
{
	dlv_serve(fd, deliver_request, local_keep);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.kind = SERVER_SINGLE,
		.name = "local",
		.pre_init = local_pre_init,
		.post_init = local_post_init,
		.serve = local_serve,
	};

	return server_main(argc, argv, &ops);
}
