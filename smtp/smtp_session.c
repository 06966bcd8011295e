/*
 * smtp_session - one SMTP client session with one server address:
 * greeting, EHLO (HELO fallback), STARTTLS per policy then EHLO again,
 * AUTH PLAIN from smtp_sasl_password_maps, MAIL/RCPT/DATA with the
 * extensions the server offers (PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
 * DSN), per-recipient results, QUIT.
 *
 * LMTP (sconf.lmtp, RFC 2033): LHLO instead of EHLO with no HELO
 * fallback, no STARTTLS or AUTH, and after the end of DATA one reply per
 * accepted recipient (lmtp_dot_replies), so each recipient is delivered,
 * deferred or bounced on its own.
 *
 * Invariants: after STARTTLS every byte read in clear is discarded and
 * the EHLO answer is forgotten (CVE-2011-0411 class); AUTH never goes out
 * in clear unless the TLS level is "none"; a recipient is marked 'D' in
 * the queue file only after the server's 2xx to the end of DATA, before
 * the result goes back to qmgr. Connection-level trouble (refused, 4xx or
 * 5xx greeting, TLS required but missing, lost connection) sends the
 * caller to the next address; the recipients keep a 4xx meanwhile.
 *
 * Connection caching (Postfix's smtp_connection_cache_*): after a
 * transaction whose replies all came in, a session that may be kept
 * (smtp_cache_wanted(), smtp_connection_reuse_count_limit and
 * smtp_connection_reuse_time_limit) gets RSET; on 250 it stays open as the
 * process's one kept session (with its TLS, EHLO answer and AUTH) instead
 * of QUIT. smtp_session_cached() sends the next message for the same
 * nexthop over it, skipping DNS, connect, greeting, EHLO, STARTTLS and
 * AUTH. A kept session is never trusted blindly: one with anything to
 * read (the server's EOF or 421) is dropped before use, and one that
 * fails before the first reply of the transaction is dropped with
 * nothing recorded: no message content was sent, so the caller delivers
 * on a fresh connection and nothing is deferred because of the cache.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/evp.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/config.h"
#include "smtp.h"

#define SMTP_WRITE_CHUNK (64 * 1024)
#define SMTP_STALE 3       /* transaction(): a kept session was dead */

struct sess {
	struct smtp_msg *m;
	struct smtp_host *h;
	struct smtp_conn c;
	char relay[320];
	unsigned ext;
	long long size_limit;
	enum tls_level level;
	struct buf text;       /* the last reply */
	int code;
	/* Connection caching. */
	int uses;              /* transactions on this connection */
	int reused;            /* this transaction runs on a kept session */
	int keep;              /* RSET accepted: keep it after this delivery */
	const char *trust;     /* "Trusted" ..., for the reuse log line; NULL: clear */
	long long born_ms;     /* connected (monotonic) */
	struct smtp_host hcopy;   /* h points here once kept */
	char *nexthop;         /* kept for this nexthop */
};

/* The process's kept session, or NULL. */
static struct sess *kept;

static void keep_session(const struct sess *s, const struct smtp_msg *m);

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
parse_ehlo(struct sess *s, char **lines)
{
	s->ext = smtpc_ext_parse(lines, &s->size_limit);
}

/* Record a failure reply for every open recipient (or accepted ones). */
static void
fail_open(struct sess *s, int status, const char *dsn, const char *text)
{
	smtp_open_result(s->m, status, dsn, s->relay, text);
}

/* "host X[A] said: 550 ... (in reply to RCPT TO command)" */
static char *
said(const struct sess *s, const char *cmd)
{
	return xasprintf("host %s[%s] said: %s (in reply to %s command)", s->h->name,
	    s->h->addr, buf_cstr(&s->text), cmd);
}

/* A lost session: temporary for everyone still open. */
static int
lost(struct sess *s, const char *stage)
{
	char *t = xasprintf("%s with %s[%s] while %s", strstr(s->c.errtext, "timed out")
	    ? "conversation timed out" : "lost connection", s->h->name, s->h->addr, stage);

	if (strcmp(s->c.errtext, "lost connection") != 0 &&
	    strstr(s->c.errtext, "timed out") == NULL) {
		free(t);
		t = xasprintf("error talking to %s[%s] while %s: %s", s->h->name, s->h->addr,
		    stage, s->c.errtext);
	}
	fail_open(s, 4, "4.4.2", t);
	free(t);
	return 1;
}

static int
send_line(struct sess *s, int timeout, const char *fmt, ...) PRINTF_LIKE(3, 4);

static int
send_line(struct sess *s, int timeout, const char *fmt, ...)
{
	struct buf b = BUF_INIT(0);
	va_list ap;
	int rc;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* Nothing we send carries CR or LF inside a command. */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\r' || b.data[i] == '\n')
			b.data[i] = ' ';
	buf_append(&b, "\r\n", 2);
	rc = smtp_conn_write(&s->c, b.data, b.len, timeout);
	buf_free(&b);
	return rc;
}

static int
reply(struct sess *s, int timeout, char ***lines)
{
	return smtp_conn_reply(&s->c, timeout, &s->code, &s->text, lines);
}

static int
ehlo(struct sess *s)
{
	char **lines = NULL;

	if (send_line(s, sconf.helo_timeout, "%s %s", sconf.lmtp ? "LHLO" : "EHLO",
	    sconf.helo_name) < 0 || reply(s, sconf.helo_timeout, &lines) < 0) {
		strv_free(&lines);
		return -1;
	}
	if (s->code / 100 == 2) {
		parse_ehlo(s, lines);
		strv_free(&lines);
		return 0;
	}
	strv_free(&lines);
	s->ext = 0;
	if (sconf.lmtp)
		return 0;   /* RFC 2033 4.1: LHLO or nothing; the caller defers */
	/* RFC 5321 4.1.4: fall back to HELO (no extensions). */
	if (send_line(s, sconf.helo_timeout, "HELO %s", sconf.helo_name) < 0 ||
	    reply(s, sconf.helo_timeout, NULL) < 0)
		return -1;
	return 0;
}

static int
sasl_lookup(void *ctx, const char *key, char **value_r)
{
	return maplist_lookup(ctx, key, value_r);
}

/* base64 of "\0user\0pass" */
static char *
auth_plain(const char *user, const char *pass)
{
	size_t ul = strlen(user), pl = strlen(pass), n = ul + pl + 2;
	unsigned char *raw = xmalloc(n);
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pass, pl);
	EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
	explicit_bzero(raw, n);
	free(raw);
	return out;
}

/* 0 ok or nothing to do, 1 try next host (result recorded). */
static int
authenticate(struct sess *s)
{
	char *cred = NULL, *key, *colon, *b64, *t;
	int found = 0;

	if (sconf.sasl_passwd == NULL)
		return 0;
	/* Postfix order: the nexthop as given, then the server's name. */
	key = str_lower(xstrdup(s->m->nexthop));
	found = maplist_lookup(sconf.sasl_passwd, key, &cred);
	free(key);
	if (found == 0)
		found = sasl_lookup(sconf.sasl_passwd, s->h->name, &cred);
	if (found < 0) {
		fail_open(s, 4, "4.3.0", "SASL password table lookup failed");
		return 1;
	}
	if (found == 0)
		return 0;
	if (s->c.tls == NULL && s->level != TLS_LEV_NONE) {
		log_warnx("%s: not sending SASL credentials to %s[%s] without TLS",
		    s->m->id, s->h->name, s->h->addr);
		free(cred);
		return 0;
	}
	if (!sconf.sasl_plain_ok[s->c.tls != NULL]) {
		/* PLAIN is all we have: Postfix's "no mechanism available". */
		t = xasprintf("SASL authentication failed; cannot authenticate to "
		    "server %s[%s]: no mechanism available (%s rules out PLAIN)",
		    s->h->name, s->h->addr, s->c.tls != NULL ?
		    "smtp_sasl_tls_security_options" : "smtp_sasl_security_options");
		explicit_bzero(cred, strlen(cred));
		free(cred);
		fail_open(s, 4, "4.7.0", t);
		free(t);
		return 1;
	}
	if (!(s->ext & SMTPC_EXT_AUTH_PLAIN)) {
		log_warnx("%s: %s[%s] offers no AUTH PLAIN; sending without authentication",
		    s->m->id, s->h->name, s->h->addr);
		free(cred);
		return 0;
	}
	colon = strchr(cred, ':');
	if (colon == NULL) {
		log_warnx("%s: smtp_sasl_password_maps entry for %s is not user:password",
		    s->m->id, s->m->nexthop);
		explicit_bzero(cred, strlen(cred));
		free(cred);
		fail_open(s, 4, "4.7.0", "bad SASL credentials entry");
		return 1;
	}
	*colon = '\0';
	b64 = auth_plain(cred, colon + 1);
	explicit_bzero(cred, strlen(cred) + 1 + strlen(colon + 1));
	free(cred);
	if (send_line(s, sconf.helo_timeout, "AUTH PLAIN %s", b64) < 0 ||
	    reply(s, sconf.helo_timeout, NULL) < 0) {
		explicit_bzero(b64, strlen(b64));
		free(b64);
		return lost(s, "authenticating");
	}
	explicit_bzero(b64, strlen(b64));
	free(b64);
	if (s->code / 100 != 2) {
		t = xasprintf("SASL authentication failed; server %s[%s] said: %s",
		    s->h->name, s->h->addr, buf_cstr(&s->text));
		fail_open(s, 4, "4.7.0", t);
		free(t);
		return 1;
	}
	log_debug("%s: authenticated to %s[%s]", s->m->id, s->h->name, s->h->addr);
	return 0;
}

/* The versions and ciphers for this session: Postfix's smtp_tls_* for
 * "may", smtp_tls_mandatory_* for the levels that require TLS, and over
 * them the protocols=, ciphers= and exclude= of the destination's
 * smtp_tls_policy_maps entry. 0 (*ts to be freed), or -1 with *err_r. */
static int
tls_settings_for(const struct sess *s, struct tls_settings *ts, char **err_r)
{
	const struct tls_settings *base = s->level == TLS_LEV_MAY ? &sconf.tls_may :
	    &sconf.tls_must;
	enum tls_level lev;
	const char *why;
	char *entry = NULL;
	int rc = 0;

	*err_r = NULL;
	ts->versions = base->versions;
	ts->ciphers = base->ciphers != NULL ? xstrdup(base->ciphers) : NULL;
	if (sconf.tls_policy == NULL)
		return 0;
	/* Looked up again here, not kept from the level's lookup: only a
	 * session that gets this far needs it. */
	if (tlspolicy_find(s->m->nexthop, sconf.tls_level, sasl_lookup, sconf.tls_policy,
	    &lev, &why, &entry) < 0) {
		*err_r = xstrdup(why);
		rc = -1;
	} else if (entry != NULL) {
		rc = tls_settings_policy(entry, s->level != TLS_LEV_MAY, config_param,
		    NULL, ts, err_r);
	}
	free(entry);
	if (rc < 0)
		tls_settings_free(ts);
	return rc;
}

static int starttls_with(struct sess *s, const struct tls_settings *ts);

/* 0 go on, 1 try the next host (result recorded), 2 retry this host in
 * plain text ("may" and the handshake failed). */
static int
starttls(struct sess *s)
{
	struct tls_settings ts;
	char *err = NULL, *t;
	int rc;

	if (s->level == TLS_LEV_NONE || s->h->plain_only)
		return 0;
	/* Before STARTTLS: a policy entry we cannot apply never becomes a
	 * session with weaker settings, nor a half-started one. */
	if (tls_settings_for(s, &ts, &err) < 0) {
		t = xasprintf("invalid TLS policy for %s: %s", s->m->nexthop, err);
		log_warnx("%s: %s", s->m->id, t);
		free(err);
		fail_open(s, 4, "4.7.5", t);
		free(t);
		return 1;
	}
	rc = starttls_with(s, &ts);
	tls_settings_free(&ts);
	return rc;
}

static int
starttls_with(struct sess *s, const struct tls_settings *ts)
{
	char *err = NULL, *t, *skey;
	const char *trust;

	if (!(s->ext & SMTPC_EXT_STARTTLS) || sconf.tls == NULL) {
		if (s->level == TLS_LEV_MAY)
			return 0;
		if (sconf.tls == NULL)
			t = xasprintf("TLS is required, but this client has no TLS support");
		else
			t = xasprintf("TLS is required, but was not offered by host %s[%s]",
			    s->h->name, s->h->addr);
		fail_open(s, 4, "4.7.4", t);
		free(t);
		return 1;
	}
	if (send_line(s, sconf.starttls_timeout, "STARTTLS") < 0 ||
	    reply(s, sconf.starttls_timeout, NULL) < 0)
		return lost(s, "sending STARTTLS");
	if (s->code != 220) {
		if (s->level == TLS_LEV_MAY) {
			/* Opportunistic: carry on in clear with this server. */
			log_info("%s: STARTTLS refused by %s[%s]: %s; continuing in clear",
			    s->m->id, s->h->name, s->h->addr, buf_cstr(&s->text));
			return 0;
		}
		t = said(s, "STARTTLS");
		fail_open(s, 4, "4.7.5", t);
		free(t);
		return 1;
	}
	/* Whatever arrived in clear after the 220 is an injection attempt. */
	smtp_conn_purge(&s->c);
	/* Sessions are resumed only with the same server, for the same
	 * destination, under the same policy (the verification result of the
	 * first handshake travels with the session). */
	skey = xasprintf("%s|%s|%s|%d|%d", s->m->nexthop, s->h->name, s->h->addr,
	    s->h->port, (int)s->level);
	s->c.tls = tls_client_new(sconf.tls, s->c.fd, s->h->name, skey);
	free(skey);
	if (s->c.tls == NULL ||
	    tls_conn_settings(s->c.tls, ts->versions, ts->ciphers, &err) < 0 ||
	    tls_handshake_timeout(s->c.tls, sconf.starttls_timeout * 1000, &err) < 0) {
		t = xasprintf("Cannot start TLS: handshake failure with %s[%s]:%d: %s",
		    s->h->name, s->h->addr, s->h->port, err != NULL ? err : "out of memory");
		log_info("%s: %s", s->m->id, t);
		free(err);
		if (s->level == TLS_LEV_MAY) {
			free(t);
			return 2;
		}
		fail_open(s, 4, "4.7.5", t);
		free(t);
		return 1;
	}
	if (!tls_peer_has_cert(s->c.tls))
		trust = "Anonymous";
	else if (tls_peer_verified(s->c.tls))
		trust = s->level == TLS_LEV_VERIFY ? "Verified" : "Trusted";
	else
		trust = "Untrusted";
	/* A resumed session says so: no certificate was sent this time. */
	log_info("%s TLS connection established to %s[%s]:%d: %s%s", trust, s->h->name,
	    s->h->addr, s->h->port, tls_describe(s->c.tls),
	    tls_session_reused(s->c.tls) ? " (session reused)" : "");
	s->trust = trust;
	if (s->level == TLS_LEV_VERIFY && !tls_peer_verified(s->c.tls)) {
		t = xasprintf("Server certificate not verified: %s[%s]:%d: %s", s->h->name,
		    s->h->addr, s->h->port, tls_verify_error(s->c.tls));
		fail_open(s, 4, "4.7.5", t);
		free(t);
		return 1;
	}
	/* Forget the clear-text EHLO answer and ask again. */
	s->ext = 0;
	if (ehlo(s) < 0)
		return lost(s, "performing the EHLO handshake");
	if (s->code / 100 != 2) {
		t = said(s, "EHLO");
		fail_open(s, 4, "4.0.0", t);
		free(t);
		return 1;
	}
	return 0;
}

static char *
xtext(const char *s)
{
	struct buf b = BUF_INIT(0);

	/* RFC 3461 4: '+', '=', controls and non-ASCII as +XX. */
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 33 || ch > 126 || ch == '+' || ch == '=')
			buf_printf(&b, "+%02X", ch);
		else
			buf_putc(&b, (char)ch);
	}
	return buf_steal(&b);
}

static void
mail_cmd(struct sess *s, struct buf *out)
{
	struct smtp_msg *m = s->m;

	buf_printf(out, "MAIL FROM:<%s>", m->sender);
	if (s->ext & SMTPC_EXT_SIZE)
		buf_printf(out, " SIZE=%lld", (long long)m->size_est);
	if ((s->ext & SMTPC_EXT_8BITMIME) && m->body != NULL &&
	    strcasecmp(m->body, "8BITMIME") == 0)
		buf_puts(out, " BODY=8BITMIME");
	if ((s->ext & SMTPC_EXT_SMTPUTF8) && m->smtputf8)
		buf_puts(out, " SMTPUTF8");
	if (s->ext & SMTPC_EXT_DSN) {
		if (m->ret != NULL && (strcasecmp(m->ret, "FULL") == 0 ||
		    strcasecmp(m->ret, "HDRS") == 0))
			buf_printf(out, " RET=%s", m->ret);
		if (m->envid != NULL && *m->envid != '\0') {
			char *x = xtext(m->envid);

			buf_printf(out, " ENVID=%s", x);
			free(x);
		}
	}
	buf_puts(out, "\r\n");
}

static void
rcpt_cmd(struct sess *s, const struct smtp_rcpt *r, struct buf *out)
{
	const char *orig = r->dr->orig;

	buf_printf(out, "RCPT TO:<%s>", r->dr->addr);
	if (s->ext & SMTPC_EXT_DSN) {
		if (r->dr->notify != NULL && *r->dr->notify != '\0')
			buf_printf(out, " NOTIFY=%s", r->dr->notify);
		if (orig != NULL && *orig != '\0') {
			const char *semi = strchr(orig, ';');
			char *x;

			if (semi != NULL && strncasecmp(orig, "rfc822;", 7) == 0) {
				x = xtext(semi + 1);
				buf_printf(out, " ORCPT=rfc822;%s", x);
			} else if (semi == NULL) {
				x = xtext(orig);
				buf_printf(out, " ORCPT=rfc822;%s", x);
			} else {
				x = xtext(semi + 1);
				buf_printf(out, " ORCPT=%.*s;%s", (int)(semi - orig), orig, x);
			}
			free(x);
		}
	}
	buf_puts(out, "\r\n");
}

struct content_ctx {
	struct sess *s;
	struct smtp_wire w;
	struct buf out;
	int failed;
};

static int
content_cb(const char *p, size_t n, void *ctx)
{
	struct content_ctx *cc = ctx;

	smtp_wire_chunk(&cc->w, p, n, &cc->out);
	if (cc->out.len >= SMTP_WRITE_CHUNK) {
		if (smtp_conn_write(&cc->s->c, cc->out.data, cc->out.len,
		    sconf.data_xfer_timeout) < 0) {
			cc->failed = 1;
			return 1;
		}
		buf_reset(&cc->out);
	}
	return 0;
}

static int
send_content(struct sess *s)
{
	struct content_ctx cc;
	int rc;

	memset(&cc, 0, sizeof(cc));
	cc.s = s;
	smtp_wire_init(&cc.w);
	buf_init(&cc.out, 0);
	rc = queue_content(s->m->qfd, &s->m->env, content_cb, &cc);
	if (rc != 0 && !cc.failed) {
		buf_free(&cc.out);
		return -2;   /* the queue file could not be read */
	}
	if (!cc.failed) {
		smtp_wire_end(&cc.w, &cc.out);
		if (smtp_conn_write(&s->c, cc.out.data, cc.out.len,
		    sconf.data_xfer_timeout) < 0)
			cc.failed = 1;
	}
	buf_free(&cc.out);
	return cc.failed ? -1 : 0;
}

/* A RCPT reply for r. */
static void
rcpt_reply(struct sess *s, struct smtp_rcpt *r)
{
	char dsn[16], *t;

	if (s->code / 100 == 2) {
		r->accepted = 1;
		return;
	}
	smtp_reply_dsn(s->code, buf_cstr(&s->text), dsn, sizeof(dsn));
	t = said(s, "RCPT TO");
	smtp_rcpt_result(r, s->code / 100 == 5 ? 5 : 4, dsn, s->relay, t);
	free(t);
}

/* The server has r's copy durably (2xx to the end of DATA): mark it 'D'
 * in the queue file, then record and log the result, in that order. */
static void
rcpt_delivered(struct sess *s, struct smtp_rcpt *r, const char *dsn)
{
	struct smtp_msg *m = s->m;

	if (m->pass)
		;   /* local marks its queue recipient when all copies are done */
	else if (r->qr != NULL && queue_mark_rcpt(m->qfd, r->qr->status_off, 'D') < 0)
		log_warn("%s: mark recipient <%s> done", m->id, r->dr->addr);
	else if (r->qr != NULL)
		r->qr->status = 'D';
	smtp_rcpt_result(r, 2, dsn, s->relay, buf_cstr(&s->text));
	if (!r->res->logged)
		dlvlog_result(m->id, r->dr->addr, r->dr->orig, &m->times, r->res);
}

/* RFC 2033 4.2: after the end of DATA, one reply per recipient accepted
 * at RCPT, in RCPT order. Each recipient gets its own result: a 2xx is
 * delivered at once, a 4xx defers only that one, a 5xx bounces only that
 * one. A lost connection defers the ones still without a reply (their
 * copies' fate is unknown: may be delivered twice, never lost). */
static void
lmtp_dot_replies(struct sess *s, struct smtp_rcpt **sent, size_t nsent)
{
	struct smtpc_lmtp_dot dot;
	unsigned char *acc = xcalloc(nsent + 1, 1);
	char dsn[16], *t;
	size_t i;
	long k;

	for (i = 0; i < nsent; i++)
		acc[i] = sent[i]->accepted != 0;
	smtpc_lmtp_dot_init(&dot, acc, nsent);
	while ((k = smtpc_lmtp_dot_next(&dot)) >= 0) {
		struct smtp_rcpt *r = sent[k];

		if (reply(s, sconf.data_done_timeout, NULL) < 0) {
			/* This one and every later accepted one: unknown. */
			t = xasprintf("%s with %s[%s] while sending end of data -- message may "
			    "be sent more than once", strstr(s->c.errtext, "timed out") ?
			    "conversation timed out" : "lost connection", s->h->name, s->h->addr);
			do
				smtp_rcpt_result(sent[k], 4, "4.4.2", s->relay, t);
			while ((k = smtpc_lmtp_dot_next(&dot)) >= 0);
			free(t);
			break;
		}
		smtp_reply_dsn(s->code, buf_cstr(&s->text), dsn, sizeof(dsn));
		if (s->code / 100 == 2) {
			rcpt_delivered(s, r, dsn);
			continue;
		}
		t = said(s, "end of DATA");
		smtp_rcpt_result(r, s->code / 100 == 5 ? 5 : 4, dsn, s->relay, t);
		free(t);
	}
	free(acc);
}

static void
quit(struct sess *s)
{
	if (send_line(s, sconf.quit_timeout, "QUIT") == 0)
		(void)reply(s, sconf.quit_timeout < 10 ? sconf.quit_timeout : 10, NULL);
}

/* May this session be kept after its transaction? */
static int
keepable(const struct sess *s)
{
	if (!smtp_cache_wanted(s->m) || s->c.fd < 0)
		return 0;
	if (sconf.reuse_count_limit > 0 && s->uses >= sconf.reuse_count_limit)
		return 0;
	return now_ms() - s->born_ms < (long long)sconf.reuse_time_limit * 1000;
}

/* The transaction is over with every reply read: keep the session when
 * allowed and the server answers RSET with 250 (Postfix checks a session
 * the same way before caching it), else QUIT. */
static void
finish(struct sess *s)
{
	if (keepable(s)) {
		if (send_line(s, sconf.helo_timeout, "RSET") == 0 &&
		    reply(s, sconf.helo_timeout, NULL) == 0 && s->code == 250) {
			s->keep = 1;
			return;
		}
		log_debug("%s: %s: RSET failed, not keeping the connection", s->m->id,
		    s->relay);
		return;     /* nothing to QUIT politely on a confused session */
	}
	quit(s);
}

/* Before the first reply of a transaction on a kept session: the server
 * may have closed it just now. Nothing is recorded then; the caller
 * delivers on a new connection. Else as lost(). */
static int
lost_first(struct sess *s, const char *stage)
{
	if (s->reused) {
		log_info("%s: kept connection to %s failed (%s); delivering on a new "
		    "connection", s->m->id, s->relay, s->c.errtext);
		return SMTP_STALE;
	}
	return lost(s, stage);
}

/* The transaction after EHLO/TLS/AUTH. Returns as smtp_session, or
 * SMTP_STALE (see lost_first()). */
static int
transaction(struct sess *s)
{
	struct smtp_msg *m = s->m;
	struct buf cmds = BUF_INIT(0);
	struct smtp_rcpt **sent = NULL;
	size_t nsent = 0, i, naccepted = 0;
	char dsn[16], *t;
	int pipelining = (s->ext & SMTPC_EXT_PIPELINING) != 0, rc;

	if (m->smtputf8 && !(s->ext & SMTPC_EXT_SMTPUTF8)) {
		t = xasprintf("SMTPUTF8 is required, but was not offered by host %s[%s]",
		    s->h->name, s->h->addr);
		fail_open(s, 5, "5.6.7", t);
		free(t);
		finish(s);
		return 0;
	}
	if ((s->ext & SMTPC_EXT_SIZE) && s->size_limit > 0 && m->size_est > s->size_limit) {
		t = xasprintf("message size %lld exceeds size limit %lld of server %s[%s]",
		    (long long)m->size_est, s->size_limit, s->h->name, s->h->addr);
		fail_open(s, 5, "5.3.4", t);
		free(t);
		finish(s);
		return 0;
	}
	sent = xcalloc(m->nrcpt + 1, sizeof(*sent));
	for (i = 0; i < m->nrcpt; i++)
		if (!m->rcpts[i].final) {
			m->rcpts[i].accepted = 0;
			sent[nsent++] = &m->rcpts[i];
		}
	/* MAIL */
	mail_cmd(s, &cmds);
	if (!pipelining) {
		if (smtp_conn_write(&s->c, cmds.data, cmds.len, sconf.mail_timeout) < 0 ||
		    reply(s, sconf.mail_timeout, NULL) < 0) {
			rc = lost_first(s, "sending MAIL FROM");
			goto out;
		}
		buf_reset(&cmds);
		if (s->code / 100 != 2)
			goto mail_failed;
		for (i = 0; i < nsent; i++) {
			rcpt_cmd(s, sent[i], &cmds);
			if (smtp_conn_write(&s->c, cmds.data, cmds.len, sconf.rcpt_timeout) < 0 ||
			    reply(s, sconf.rcpt_timeout, NULL) < 0) {
				rc = lost(s, "sending RCPT TO");
				goto out;
			}
			buf_reset(&cmds);
			rcpt_reply(s, sent[i]);
			naccepted += sent[i]->accepted;
		}
		if (naccepted == 0)
			goto none_accepted;
		if (send_line(s, sconf.data_init_timeout, "DATA") < 0 ||
		    reply(s, sconf.data_init_timeout, NULL) < 0) {
			rc = lost(s, "sending DATA");
			goto out;
		}
	} else {
		/* RFC 2920: MAIL, every RCPT and DATA in one go; replies in order. */
		for (i = 0; i < nsent; i++)
			rcpt_cmd(s, sent[i], &cmds);
		buf_puts(&cmds, "DATA\r\n");
		if (smtp_conn_write(&s->c, cmds.data, cmds.len, sconf.mail_timeout) < 0) {
			rc = lost_first(s, "sending MAIL FROM");
			goto out;
		}
		if (reply(s, sconf.mail_timeout, NULL) < 0) {
			rc = lost_first(s, "receiving the MAIL FROM reply");
			goto out;
		}
		if (s->code / 100 != 2) {
			/* Drain the RCPT and DATA replies; they do not matter. */
			for (i = 0; i <= nsent; i++) {
				struct buf keep = BUF_INIT(0);
				int code = s->code;

				buf_puts(&keep, buf_cstr(&s->text));
				if (reply(s, sconf.rcpt_timeout, NULL) < 0)
					i = nsent;
				s->code = code;
				buf_reset(&s->text);
				buf_puts(&s->text, buf_cstr(&keep));
				buf_free(&keep);
			}
			goto mail_failed;
		}
		for (i = 0; i < nsent; i++) {
			if (reply(s, sconf.rcpt_timeout, NULL) < 0) {
				rc = lost(s, "receiving the RCPT TO reply");
				goto out;
			}
			rcpt_reply(s, sent[i]);
			naccepted += sent[i]->accepted;
		}
		if (reply(s, sconf.data_init_timeout, NULL) < 0) {
			rc = lost(s, "receiving the DATA reply");
			goto out;
		}
		if (naccepted == 0) {
			if (s->code == 354) {
				/* Nothing to send: end the empty message at once. */
				if (smtp_conn_write(&s->c, ".\r\n", 3, sconf.data_xfer_timeout) == 0)
					(void)reply(s, sconf.data_done_timeout, NULL);
			}
			goto none_accepted;
		}
	}
	if (s->code != 354) {
		smtp_reply_dsn(s->code, buf_cstr(&s->text), dsn, sizeof(dsn));
		t = said(s, "DATA");
		for (i = 0; i < nsent; i++)
			if (sent[i]->accepted)
				smtp_rcpt_result(sent[i], s->code / 100 == 5 ? 5 : 4, dsn, s->relay, t);
		free(t);
		finish(s);
		rc = smtp_open_count(m) > 0;
		goto out;
	}
	rc = send_content(s);
	if (rc == -2) {
		/* Our side failed: do not let the server deliver a truncated
		 * message; drop the connection without the final dot. */
		smtp_open_result(m, 4, "4.3.0", s->relay, "error reading the queue file");
		rc = 0;
		goto out;
	}
	if (rc < 0) {
		rc = lost(s, "sending message body");
		goto out;
	}
	if (sconf.lmtp) {
		lmtp_dot_replies(s, sent, nsent);
		finish(s);
		rc = smtp_open_count(m) > 0;
		goto out;
	}
	if (reply(s, sconf.data_done_timeout, NULL) < 0) {
		rc = lost(s, "sending end of data -- message may be sent more than once");
		goto out;
	}
	smtp_reply_dsn(s->code, buf_cstr(&s->text), dsn, sizeof(dsn));
	if (s->code / 100 == 2) {
		for (i = 0; i < nsent; i++)
			if (sent[i]->accepted)
				rcpt_delivered(s, sent[i], dsn);
	} else {
		t = said(s, "end of DATA");
		for (i = 0; i < nsent; i++)
			if (sent[i]->accepted)
				smtp_rcpt_result(sent[i], s->code / 100 == 5 ? 5 : 4, dsn, s->relay, t);
		free(t);
	}
	finish(s);
	rc = smtp_open_count(m) > 0;
	goto out;
mail_failed:
	smtp_reply_dsn(s->code, buf_cstr(&s->text), dsn, sizeof(dsn));
	t = said(s, "MAIL FROM");
	fail_open(s, s->code / 100 == 5 ? 5 : 4, dsn, t);
	free(t);
	rc = s->code / 100 != 5;    /* before finish()'s RSET reply */
	finish(s);
	goto out;
none_accepted:
	finish(s);
	rc = smtp_open_count(m) > 0;
out:
	free(sent);
	buf_free(&cmds);
	return rc;
}

int
smtp_session(struct smtp_msg *m, struct smtp_host *h)
{
	struct sess s;
	char why[512], dsnbuf[16], *t;
	const char *pwhy;
	int rc, attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		memset(&s, 0, sizeof(s));
		s.m = m;
		s.h = h;
		buf_init(&s.text, SMTPC_REPLY_TEXT_MAX + SMTPC_LINE_MAX);
		if (h->family == AF_UNIX)
			snprintf(s.relay, sizeof(s.relay), "%s[%s]", h->name, h->addr);
		else
			snprintf(s.relay, sizeof(s.relay), "%s[%s]:%d", h->name, h->addr,
			    h->port);
		if (tlspolicy_find(m->nexthop, sconf.tls_level,
		    sconf.tls_policy != NULL ? sasl_lookup : NULL, sconf.tls_policy,
		    &s.level, &pwhy, NULL) < 0) {
			fail_open(&s, 4, "4.7.5", pwhy);
			buf_free(&s.text);
			return 0;
		}
		if (smtp_conn_open(&s.c, h, why, sizeof(why)) < 0) {
			log_info("%s: %s", m->id, why);
			fail_open(&s, 4, "4.4.1", why);
			buf_free(&s.text);
			return 1;
		}
		clock_gettime(CLOCK_REALTIME, &m->times.connected);
		s.born_ms = now_ms();
		s.uses = 1;
		m->times.conn_use = 1;
		if (reply(&s, sconf.helo_timeout, NULL) < 0) {
			rc = lost(&s, "receiving the initial server greeting");
			goto done;
		}
		if (s.code / 100 != 2) {
			/* Postfix smtp_skip_5xx_greeting: try another server. */
			t = xasprintf("host %s[%s] refused to talk to me: %s", h->name, h->addr,
			    buf_cstr(&s.text));
			log_info("%s: %s", m->id, t);
			smtp_reply_dsn(s.code, buf_cstr(&s.text), dsnbuf, sizeof(dsnbuf));
			dsnbuf[0] = '4';   /* another server may take it */
			fail_open(&s, 4, dsnbuf, t);
			free(t);
			quit(&s);
			rc = 1;
			goto done;
		}
		if (ehlo(&s) < 0) {
			rc = lost(&s, "performing the EHLO handshake");
			goto done;
		}
		if (s.code / 100 != 2) {
			t = said(&s, sconf.lmtp ? "LHLO" : "HELO");
			fail_open(&s, 4, "4.0.0", t);
			free(t);
			quit(&s);
			rc = 1;
			goto done;
		}
		rc = starttls(&s);
		if (rc == 2) {
			/* "may": once more with this server, in clear. */
			smtp_conn_close(&s.c);
			buf_free(&s.text);
			h->plain_only = 1;
			continue;
		}
		if (rc != 0 || smtp_open_count(m) == 0) {
			if (s.c.fd >= 0)
				quit(&s);
			goto done;
		}
		rc = authenticate(&s);
		if (rc != 0) {
			quit(&s);
			goto done;
		}
		rc = transaction(&s);
		if (s.keep) {
			keep_session(&s, m);
			return rc;
		}
done:
		smtp_conn_close(&s.c);
		buf_free(&s.text);
		return rc;
	}
	return 1;
}

/* Make s (a stack copy) the process's kept session. */
static void
keep_session(const struct sess *s, const struct smtp_msg *m)
{
	struct sess *k;

	smtp_session_drop();
	k = xmalloc(sizeof(*k));
	*k = *s;
	k->hcopy = *s->h;
	k->hcopy.name = xstrdup(s->h->name);
	k->h = &k->hcopy;
	k->m = NULL;
	k->keep = 0;
	k->reused = 0;
	k->nexthop = xstrdup(m->nexthop);
	kept = k;
	log_debug("%s: keeping the connection to %s for %s", m->id, k->relay,
	    k->nexthop);
}

static void
kept_free(struct sess **sp)
{
	struct sess *s = *sp;

	if (s == NULL)
		return;
	smtp_conn_close(&s->c);
	buf_free(&s->text);
	free(s->hcopy.name);
	free(s->nexthop);
	xfree(sp);
}

void
smtp_session_drop(void)
{
	struct sess *s = kept;

	if (s == NULL)
		return;
	kept = NULL;
	if (smtp_conn_idle_ok(&s->c) &&
	    send_line(s, sconf.quit_timeout < 5 ? sconf.quit_timeout : 5, "QUIT") == 0)
		(void)reply(s, sconf.quit_timeout < 5 ? sconf.quit_timeout : 5, NULL);
	kept_free(&s);
}

int
smtp_session_kept(void)
{
	return kept != NULL;
}

int
smtp_session_cached(struct smtp_msg *m)
{
	struct sess *s = kept;
	int rc;

	if (s == NULL)
		return -1;
	if (strcmp(s->nexthop, m->nexthop) != 0 ||
	    now_ms() - s->born_ms >= (long long)sconf.reuse_time_limit * 1000) {
		smtp_session_drop();
		return -1;
	}
	kept = NULL;
	if (!smtp_conn_idle_ok(&s->c)) {
		log_info("%s: kept connection to %s was closed by the server; delivering "
		    "on a new connection", m->id, s->relay);
		kept_free(&s);
		return -1;
	}
	s->m = m;
	s->uses++;
	s->reused = 1;
	clock_gettime(CLOCK_REALTIME, &m->times.connected);
	m->times.conn_use = s->uses;
	if (s->trust != NULL && s->c.tls != NULL)
		log_info("%s TLS connection reused to %s[%s]:%d: %s", s->trust, s->h->name,
		    s->h->addr, s->h->port, tls_describe(s->c.tls));
	rc = transaction(s);
	if (rc == SMTP_STALE) {
		kept_free(&s);
		return -1;
	}
	if (s->keep) {
		s->keep = 0;
		s->reused = 0;
		s->m = NULL;
		smtp_session_drop();     /* a session kept meanwhile (none expected) */
		kept = s;
	} else {
		kept_free(&s);
	}
	return rc;
}
