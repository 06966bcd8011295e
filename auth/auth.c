/*
 * auth - the only process that reads password hashes. A SERVER_MULTI
 * daemon on private/auth; smtpd (and later pop3d/imapd) send it one
 * request per connection in the ipc codec (util/ipc.h):
 *
 *   request=auth service=smtpd mechanism=PLAIN user=alice authzid=
 *   password=secret client_addr=192.0.2.1
 *
 * and get back "status=ok|fail|tempfail user=<canonical name>
 * reason=<text for the log>". Several requests may follow on one
 * connection; each is answered before the next is read.
 *
 * Users live in lmdb:$passwd_file, built by "postern user" from a
 * Dovecot passwd-file style text file: "user:{SCHEME}hash[:more fields]".
 * A name that is not there and has no '@' is a system login, checked
 * through PAM (service auth_pam_service) by a helper that keeps root
 * (pam.c); the broker of pop3d then serves that user's home mailbox.
 *
 * Privileges: master starts auth with unpriv=n (it keeps root); before it
 * reads any request, post_init drops to auth_owner (default
 * "postern-auth"), whose group may read the table (root:auth_owner,
 * 0640). mail_owner - and so smtpd - cannot read the hashes. Run as an
 * ordinary user everything is one uid and the drop is skipped.
 *
 * Invariants: a failed attempt costs the client address a growing delay
 * (penalty.c) that is waited with a loop timer, so other clients are not
 * held up. An unknown user costs the same crypt work as a known one. The
 * password is wiped once used and never logged.
 *
 * The crypt work (a yescrypt or bcrypt verification takes tens of
 * milliseconds) and the PAM round trip run in auth_hash_workers hashing
 * threads (pool.c); the event loop keeps accepting, scheduling penalties
 * and answering meanwhile. A request from an address that has failures
 * waits until the one before it from that address has its verdict.
 *
 * Trusts: the client daemon for client_addr (it is on a private socket),
 * nothing else in the request. Limits: AUTH_FRAME_MAX bytes per request;
 * auth_hash_workers verifications at once.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/priv.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/passwd.h"
#include "mail/server.h"
#include "proto/sasl.h"
#include "auth.h"

#define AUTH_FRAME_MAX 8192
#define AUTH_IO_TIMEOUT_MS (60 * 1000)

struct aconn {
	struct loop *loop;
	int fd;
	struct buf in;
	struct buf out;
	struct ipc_msg req;
	int busy;               /* a request is waiting or being answered */
	int inflight;           /* on the inflight list */
	int parked;             /* waits for an earlier request from its address */
	uint64_t timer;         /* penalty wait */
	uint64_t idle_timer;
	struct auth_job *job;   /* with a hashing thread */
	char *user;             /* the request's canonical user name */
	const char *reason;     /* static text for a JOB_DUMMY failure */
	char reason_buf[256];
	struct aconn *next;     /* inflight list */
};

static struct map *users;
static char *users_spec;

static void conn_io(struct loop *l, int fd, unsigned events, void *ctx);

static void
conn_close(struct aconn *c)
{
	/* Never while a request is in flight: the connection is not
	 * watched then (busy), and a job or the inflight list points here. */
	if (c->job != NULL || c->inflight)
		log_panic("auth: closing a connection with a request in flight");
	xfree(&c->user);
	if (c->timer != 0)
		loop_timer_cancel(c->loop, c->timer);
	if (c->idle_timer != 0)
		loop_timer_cancel(c->loop, c->idle_timer);
	if (c->req.b.data != NULL)
		sasl_wipe(c->req.b.data, c->req.b.cap);
	if (c->in.data != NULL)
		sasl_wipe(c->in.data, c->in.cap);
	ipc_free(&c->req);
	buf_free(&c->in);
	buf_free(&c->out);
	server_disconnect(c->loop, c->fd);
	free(c);
}

static void
idle_cb(struct loop *l, void *ctx)
{
	struct aconn *c = ctx;

	c->idle_timer = 0;
	log_warnx("client timed out");
	conn_close(c);
}

static void
idle_arm(struct aconn *c)
{
	if (c->idle_timer != 0)
		loop_timer_cancel(c->loop, c->idle_timer);
	c->idle_timer = loop_timer_add(c->loop, AUTH_IO_TIMEOUT_MS, idle_cb, c);
}

/* A user name we are willing to look up (and log). */
static int
user_ok(const char *u)
{
	size_t n = strlen(u), i;

	if (n == 0 || n > SASL_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)u[i];

		if (ch <= 0x20 || ch == 0x7f || ch == ':' || ch == '\\')
			return 0;
	}
	return 1;
}

static int
table_ready(void)
{
	char *err = NULL;

	if (users == NULL) {
		users = map_open(users_spec, &err);
		if (users == NULL) {
			log_warnx("user table: %s", err ? err : "open failed");
			free(err);
			return -1;
		}
		return 0;
	}
	return map_refresh(users) < 0 ? -1 : 0;
}

/*
 * Login tickets: a successful login that asked for one ("ticket=yes", the
 * POP3/IMAP login processes) gets a random name for it, which the root
 * mailbox broker trades back for the user ("request=redeem") exactly once
 * within TICKET_TTL_MS. The broker so learns the user from auth, not from
 * the login process that holds the client's bytes.
 */
#define TICKET_TTL_MS 30000
#define TICKET_MAX 1024

struct ticket {
	char id[33];
	char *user;
	uint64_t expires;
};

static struct ticket tickets[TICKET_MAX];

static const char *
ticket_issue(const char *user)
{
	uint64_t now = loop_now_ms();
	unsigned char rnd[16];
	struct ticket *t = NULL;

	for (size_t i = 0; i < TICKET_MAX; i++) {
		if (tickets[i].user != NULL && tickets[i].expires <= now)
			xfree(&tickets[i].user);
		if (tickets[i].user == NULL && t == NULL)
			t = &tickets[i];
	}
	if (t == NULL || getentropy(rnd, sizeof(rnd)) < 0)
		return NULL;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(t->id + 2 * i, 3, "%02x", rnd[i]);
	t->user = xstrdup(user);
	t->expires = now + TICKET_TTL_MS;
	return t->id;
}

/* The user of a live ticket, which is used up; NULL if none. */
static char *
ticket_redeem(const char *id)
{
	uint64_t now = loop_now_ms();

	if (id == NULL || strlen(id) != 32)
		return NULL;
	for (size_t i = 0; i < TICKET_MAX; i++) {
		struct ticket *t = &tickets[i];
		if (t->user != NULL && strcmp(t->id, id) == 0) {
			char *u = t->user;
			t->user = NULL;
			if (t->expires <= now)
				xfree(&u);
			return u;
		}
	}
	return NULL;
}

/* request=redeem: no password, no penalty, one line in the log only
 * when it fails (a success is the Login: line of the login process). */
static void
redeem(struct ipc_msg *req, struct ipc_msg *rep)
{
	char *user = ticket_redeem(ipc_get(req, "ticket"));

	if (user == NULL) {
		ipc_put(rep, "status", "fail");
		ipc_put(rep, "reason", "unknown or expired ticket");
		log_warnx("login ticket redeem: unknown or expired ticket");
		return;
	}
	ipc_put(rep, "status", "ok");
	ipc_put(rep, "user", user);
	free(user);
}

enum verdict { V_OK, V_FAIL, V_TEMPFAIL, V_PENDING };

static void finish(struct aconn *c, enum verdict v, const char *reason);

/* A hashing thread has the answer. */
static void
job_done(struct auth_job *j)
{
	struct aconn *c = j->ctx;
	enum verdict v;
	const char *reason;

	c->job = NULL;
	if (j->kind == JOB_PAM) {
		v = j->result == PAMV_OK ? V_OK : j->result == PAMV_FAIL ? V_FAIL :
		    V_TEMPFAIL;
		/* The name as given: system logins are case-sensitive. */
		if (v == V_OK) {
			free(c->user);
			c->user = xstrdup(j->user);
		}
		snprintf(c->reason_buf, sizeof(c->reason_buf), "%s", j->reason);
		reason = c->reason_buf;
	} else if (j->kind == JOB_DUMMY) {
		v = V_FAIL;
		reason = c->reason;
	} else if (j->result == PASSWD_OK) {
		v = V_OK;
		reason = "ok";
	} else if (j->result == PASSWD_MISMATCH) {
		v = V_FAIL;
		reason = "password mismatch";
	} else {
		log_warnx("user %s: unknown password scheme or malformed hash in %s",
		    c->user, users_spec);
		v = V_FAIL;
		reason = "unusable password hash";
	}
	auth_job_free(j);
	finish(c, v, reason);
}

static enum verdict
submit(struct aconn *c, struct auth_job *j)
{
	j->done = job_done;
	j->ctx = c;
	c->job = j;
	pool_submit(j);
	return V_PENDING;
}

/*
 * The loop's half of a request: the checks and the table lookup. Either
 * a verdict now (*reason_r static text), or V_PENDING: a hashing thread
 * does the crypt (or PAM) work and job_done() finishes. c->user gets the
 * canonical name.
 */
static enum verdict
decide(struct aconn *c, const char **reason_r)
{
	const struct ipc_msg *req = &c->req;
	const char *what = ipc_get(req, "request");
	const char *user = ipc_get(req, "user");
	const char *authzid = ipc_get(req, "authzid");
	const char *pw = ipc_get(req, "password");
	char *value = NULL, *canon;
	struct auth_job *j;
	int r;

	if (what == NULL || strcmp(what, "auth") != 0) {
		*reason_r = "unknown request";
		return V_FAIL;
	}
	if (user == NULL || pw == NULL || !user_ok(user) || *pw == '\0') {
		*reason_r = "invalid user name or password";
		if (pw == NULL)
			return V_FAIL;
		c->reason = *reason_r;
		return submit(c, auth_job_new(JOB_DUMMY, pw));
	}
	canon = str_lower(xstrdup(user));
	c->user = canon;
	if (authzid != NULL && *authzid != '\0' && strcasecmp(authzid, user) != 0) {
		*reason_r = "authorization identity differs from user";
		return V_FAIL;
	}
	if (table_ready() < 0) {
		*reason_r = "user table unavailable";
		return V_TEMPFAIL;
	}
	r = map_lookup(users, canon, &value);
	if (r < 0) {
		*reason_r = "user table lookup failed";
		return V_TEMPFAIL;
	}
	if (r == 0 && strchr(canon, '@') == NULL && pam_helper_available()) {
		/* Not a postern user: a system login, checked through PAM. */
		j = auth_job_new(JOB_PAM, pw);
		j->user = xstrdup(user);
		j->rip = xstrdup(ipc_get(req, "client_addr") ?
		    ipc_get(req, "client_addr") : "");
		return submit(c, j);
	}
	if (r == 0) {
		c->reason = "unknown user";
		return submit(c, auth_job_new(JOB_DUMMY, pw));
	}
	j = auth_job_new(JOB_VERIFY, pw);
	j->hash = passwd_field(value);
	sasl_wipe(value, strlen(value));
	free(value);
	return submit(c, j);
}

/*
 * Requests between their arrival and their answer, for the per-address
 * penalty: a request from an address that has failures waits (parked)
 * while another request from that address is scheduled or being
 * verified, and its delay is computed only when that one has its verdict.
 * So the hashing threads never let an address that is being penalised
 * run guesses side by side, and every failure counts before the next
 * guess's delay. Addresses without failures are not held back (a busy
 * client host logging in many users at once). A linear scan: requests in
 * flight are few.
 */
static struct aconn *inflight;

static const char *
req_addr(const struct aconn *c)
{
	const char *a = ipc_get(&c->req, "client_addr");

	return a != NULL ? a : "";
}

static int
addr_active(const char *addr)
{
	for (struct aconn *o = inflight; o != NULL; o = o->next)
		if (!o->parked && strcmp(req_addr(o), addr) == 0)
			return 1;
	return 0;
}

static void
inflight_remove(struct aconn *c)
{
	for (struct aconn **pp = &inflight; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			c->next = NULL;
			c->inflight = 0;
			return;
		}
}

static void process_cb(struct loop *l, void *ctx);

/* Reserve the penalty slot and wait for it (always through the loop:
 * one code path, and never recursion). */
static void
schedule(struct aconn *c)
{
	uint64_t now = loop_now_ms(), when;
	const char *addr = ipc_get(&c->req, "client_addr");

	c->parked = 0;
	/* A redeem carries no client address and costs no penalty. */
	if (addr == NULL && ipc_get(&c->req, "ticket") != NULL)
		when = now;
	else
		when = penalty_schedule(addr ? addr : "", now);
	if (when > now)
		log_debug("rip=%s: delaying request by %llu ms", addr ? addr : "",
		    (unsigned long long)(when - now));
	c->timer = loop_timer_add(c->loop, when - now, process_cb, c);
}

/* The answer for c's request is out: the next parked request from its
 * address may go. */
static void
release(struct aconn *c)
{
	const char *addr = req_addr(c);
	struct aconn *last = NULL;

	inflight_remove(c);
	/* The oldest parked one is the last in the list (new ones go first). */
	for (struct aconn *o = inflight; o != NULL; o = o->next)
		if (o->parked && strcmp(req_addr(o), addr) == 0)
			last = o;
	if (last != NULL)
		schedule(last);
}

/* The penalty wait is over (or there was none): decide, now or in a
 * hashing thread. */
static void
process_cb(struct loop *l, void *ctx)
{
	struct aconn *c = ctx;
	struct ipc_msg rep;
	const char *reason = "";
	enum verdict v;

	(void)l;
	c->timer = 0;
	if (strcmp(ipc_get(&c->req, "request") ? ipc_get(&c->req, "request") : "",
	    "redeem") == 0) {
		ipc_init(&rep);
		redeem(&c->req, &rep);
		ipc_encode(&rep, &c->out);
		ipc_free(&rep);
		finish(c, V_PENDING, NULL);
		return;
	}
	v = decide(c, &reason);
	if (v != V_PENDING)
		finish(c, v, reason);
}

/* Log the verdict, record it for the penalty, answer. V_PENDING here: the
 * answer is already in c->out (a redeem). */
static void
finish(struct aconn *c, enum verdict v, const char *reason)
{
	struct ipc_msg rep;
	const char *addr = req_addr(c);
	const char *service = ipc_get(&c->req, "service");
	const char *mech = ipc_get(&c->req, "mechanism");
	const char *user = c->user;

	ipc_init(&rep);
	switch (v) {
	case V_OK:
		penalty_success(addr);
		ipc_put(&rep, "status", "ok");
		if (strcmp(ipc_get(&c->req, "ticket") ? ipc_get(&c->req, "ticket") : "",
		    "yes") == 0) {
			const char *t = ticket_issue(user);
			if (t == NULL) {
				ipc_reset(&rep);
				ipc_put(&rep, "status", "tempfail");
				reason = "no login ticket available";
				log_warnx("user=%s, rip=%s: %s", user, addr, reason);
				break;
			}
			ipc_put(&rep, "ticket", t);
		}
		log_info("service=%s, method=%s, user=%s, rip=%s: authenticated",
		    service ? service : "?", mech ? mech : "?", user, addr);
		break;
	case V_FAIL:
		penalty_failure(addr, loop_now_ms());
		ipc_put(&rep, "status", "fail");
		log_info("service=%s, method=%s, user=%s, rip=%s: authentication "
		    "failed: %s (failures %u)", service ? service : "?",
		    mech ? mech : "?", user ? user : "(invalid)", addr, reason,
		    penalty_failures(addr));
		break;
	case V_TEMPFAIL:
		ipc_put(&rep, "status", "tempfail");
		log_warnx("service=%s, user=%s, rip=%s: temporary failure: %s",
		    service ? service : "?", user ? user : "(invalid)", addr, reason);
		break;
	case V_PENDING:
		break;
	}
	if (v != V_PENDING) {
		if (user != NULL)
			ipc_put(&rep, "user", user);
		ipc_put(&rep, "reason", reason);
		ipc_encode(&rep, &c->out);
	}
	ipc_free(&rep);
	release(c);
	xfree(&c->user);
	sasl_wipe(c->req.b.data, c->req.b.cap);
	ipc_reset(&c->req);
	idle_arm(c);
	(void)loop_fd_set(c->loop, c->fd, LOOP_WRITE, conn_io, c);
}

/* Take the next whole request from the input, if there is one. */
static int
next_request(struct aconn *c)
{
	size_t flen;
	const char *addr;
	int r;

	r = ipc_frame_check(&c->in, AUTH_FRAME_MAX, &flen);
	if (r == 0)
		return 0;
	if (r < 0 || ipc_decode(&c->req, c->in.data, flen) < 0) {
		log_warnx("malformed request from client");
		return -1;
	}
	sasl_wipe(c->in.data, flen);
	buf_consume(&c->in, flen);
	c->busy = 1;
	/* No reading while busy; a hang-up is noticed when we write. */
	(void)loop_fd_set(c->loop, c->fd, 0, conn_io, c);
	if (c->idle_timer != 0) {
		loop_timer_cancel(c->loop, c->idle_timer);
		c->idle_timer = 0;
	}
	addr = req_addr(c);
	c->parked = ipc_get(&c->req, "client_addr") != NULL &&
	    penalty_failures(addr) > 0 && addr_active(addr);
	c->next = inflight;
	inflight = c;
	c->inflight = 1;
	if (c->parked)
		log_debug("rip=%s: request waits for the one before it", addr);
	else
		schedule(c);
	return 1;
}

static void
conn_io(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct aconn *c = ctx;
	char tmp[4096];
	ssize_t n;
	int r;

	if (c->busy && c->out.len > 0 && (events & (LOOP_WRITE | LOOP_ERROR))) {
		n = write(fd, c->out.data, c->out.len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
		if (c->out.len > 0)
			return;
		c->busy = 0;
		r = next_request(c);
		if (r < 0)
			conn_close(c);
		else if (r == 0)
			(void)loop_fd_set(l, fd, LOOP_READ, conn_io, c);
		return;
	}
	if (c->busy)
		return;
	n = read(fd, tmp, sizeof(tmp));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	if (buf_append(&c->in, tmp, (size_t)n) < 0) {
		sasl_wipe(tmp, sizeof(tmp));
		log_warnx("request too large");
		conn_close(c);
		return;
	}
	sasl_wipe(tmp, (size_t)n);
	if (next_request(c) < 0)
		conn_close(c);
}

static void
auth_conn(struct loop *l, int fd)
{
	struct aconn *c = xcalloc(1, sizeof(*c));

	c->loop = l;
	c->fd = fd;
	buf_init(&c->in, AUTH_FRAME_MAX + 4096);
	buf_init(&c->out, 0);
	ipc_init(&c->req);
	idle_arm(c);
	if (loop_fd_set(l, fd, LOOP_READ, conn_io, c) < 0) {
		log_warn("register connection");
		conn_close(c);
	}
}

/* The PAM helper (our only child) exited. auth is no longer root and
 * cannot fork a root helper again, so it stops taking requests and exits
 * when the ones it holds are answered; master starts a fresh auth, with a
 * fresh helper, for the next connection. */
static void
child_cb(struct loop *l, void *ctx)
{
	pid_t pid;
	int st;

	(void)l;
	(void)ctx;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (!pam_helper_exited(pid))
			continue;
		log_warnx("PAM helper (pid %d) %s %d: restarting auth to restart it",
		    (int)pid, WIFSIGNALED(st) ? "killed by signal" : "exited with status",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		server_exit_when_idle();
	}
}

static void
auth_post_init(struct loop *l)
{
	long long workers;
	const char *owner = config_get("auth_owner");
	const char *file = config_get("passwd_file");
	const char *pam_svc = config_get("auth_pam_service");
	uid_t uid;
	gid_t gid;

	if (owner == NULL || *owner == '\0')
		owner = "postern-auth";
	/* Before the drop: the PAM helper must keep root to read shadow. */
	if (*pam_svc != '\0' && pam_helper_start(pam_svc) < 0)
		log_warn("PAM helper: system users cannot log in");
	if (priv_is_root()) {
		if (priv_user(owner, &uid, &gid) < 0)
			log_fatalx("auth_owner \"%s\" is not a known user", owner);
		if (uid == 0)
			log_fatalx("auth_owner \"%s\" must not be root", owner);
		if (priv_drop(uid, gid, NULL) < 0)
			log_fatal("cannot become %s", owner);
	} else
		log_debug("not root: privilege separation is off");
	if (file == NULL || *file == '\0')
		users_spec = xasprintf("lmdb:%s/passwd", config_dir());
	else
		users_spec = xasprintf("lmdb:%s", file);
	/* Before the threads that read it exist. */
	passwd_dummy_prepare();
	(void)table_ready();
	if (loop_signal(l, SIGCHLD, child_cb, NULL) < 0)
		log_fatal("SIGCHLD handler");
	child_cb(l, NULL);   /* a helper that died before the handler */
	workers = config_int_range("auth_hash_workers", 1, 64);
	if (pool_start(l, (unsigned)workers) < 0)
		log_fatal("cannot start hashing threads");
	log_debug("%u hashing threads", pool_size());
}

static void
auth_drain(struct loop *l)
{
	log_debug("draining: %d request(s) left", server_clients());
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.kind = SERVER_MULTI,
		.name = "auth",
		.post_init = auth_post_init,
		.conn = auth_conn,
		.drain = auth_drain,
	};

	return server_main(argc, argv, &ops);
}
