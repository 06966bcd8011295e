/*
 * milter - smtpd_milters in the SMTP conversation: one milter_chain
 * (lib/mail/milter_chain.h) per session, driven on smtpd's event loop.
 *
 * The hooks sit where Postfix's smtpd calls its milters: after the
 * greeting (connect), at HELO/EHLO, after smtpd's own checks passed for
 * MAIL and RCPT (their 250 is held until the milters answered), at DATA,
 * at end of data before the queue file is committed, and at a command
 * smtpd does not know (SMFIC_UNKNOWN, protocol 3 and later: a milter's
 * reject replaces the 502). While a milter
 * step runs the session neither reads nor runs commands (s->milter_wait):
 * pipelined commands wait, nothing blocks.
 *
 * Invariants:
 * - With milters the message stays in memory until they are done (txn
 *   holds its content); the edited content, sender and recipients go to
 *   the queue file only then, while it is still a .tmp file, and the
 *   caller's commit (fsync of file and directory) comes before "250 ...
 *   queued as" exactly as without milters. A quarantined message is
 *   committed into hold/ instead of incoming/ by the same commit.
 * - A milter that fails follows its default_action (milter_chain): a
 *   tempfail is 451 to the client, never a silently lost message; a
 *   discard is logged (milter-discard) and answered 250 as Postfix does.
 * - A recipient a milter refused is taken out of the queue file before
 *   its content is written; DATA with no recipient left is 554.
 * Trusts: milter verdicts and edits as far as milter_sess and
 *   milter_apply_* checked them; nothing else of the milter's bytes.
 * Log lines are Postfix's: "QUEUEID: milter-reject: RCPT from name[addr]:
 *   550 5.7.1 ...; from=<> to=<> proto=ESMTP helo=<>", milter-hold,
 *   milter-discard.
 * BUGS/LIMITS: BDAT skips the milter DATA step (the message still goes
 *   through the milters at its end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/net.h"
#include "util/strv.h"
#include "util/tls.h"
#include "mail/config.h"
#include "mail/milter_chain.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "smtpd.h"

/* Settings, read once at post_init. */
static struct milter_spec *specs;
static size_t nspecs;
static const char *defmacros[MILTER_MACRO_LISTS];
static const char *daemon_name, *macro_v;

/* Transport and next hop of addr ({mail_mailer}/{mail_host},
 * {rcpt_mailer}/{rcpt_host}), looked up once per address. */
struct route {
	int done;
	char *transport, *nexthop;
};

enum wait { W_NONE, W_CONNECT, W_HELO, W_MAIL, W_RCPT, W_DATA, W_EOM, W_UNKNOWN };

struct smtpd_milter {
	struct milter_chain *ch;
	enum wait wait;
	char *ok;                  /* the reply smtpd would give */
	char *rcpt;                /* RCPT being asked about */
	char *rcpt_rej;            /* its refusal ("550 5.1.1 text"), SMFIP_RCPT_REJ */
	void (*go)(struct session *s);
	void (*commit)(struct session *s, const char *rej);
	char underscore[340];      /* "_" macro: ptr-name [addr] (may be forged) */
	char daemon_addr[64];
	char daemon_port[8], client_port[8];
	/* values made on demand: one buffer each, as a stage's macros
	 * are all looked up before any is sent */
	char cipher_bits[16], cert_subject[256], cert_issuer[256], rej_dsn[16];
	struct route mail_route, rcpt_route;
	/* per message */
	char **rcpts;              /* RCPT addresses the milters accepted */
	size_t rcpt_mark;          /* queue file recipients before this RCPT */
	int discard;
	char *discard_milter;
	struct milter_message msg;
};

void
smtpd_milter_init(void)
{
	const char *err = NULL;

	if (milter_config_load("smtpd_milters", &specs, &nspecs, defmacros, &err) < 0)
		log_fatalx("smtpd_milters: %s", err);
	daemon_name = config_str("milter_macro_daemon_name");
	macro_v = config_str("milter_macro_v");
}

static void
route_reset(struct route *r)
{
	xfree(&r->transport);
	xfree(&r->nexthop);
	r->done = 0;
}

static const char *
route_get(struct route *r, const char *addr, int nexthop)
{
	if (addr == NULL)
		return NULL;
	if (!r->done) {
		r->done = 1;
		/* A failed lookup leaves the macro out; RCPT already
		 * deferred on such a failure, so this is a race at most. */
		if (resolver_route(smtpd_conf.resolver, addr, &r->transport,
		    &r->nexthop) < 0)
			route_reset(r), r->done = 1;
	}
	return nexthop ? r->nexthop : r->transport;
}

static const char *
macro(void *ctx, const char *name)
{
	struct session *s = ctx;
	struct smtpd_milter *m = s->milter;
	const char *qid = txn_qid(s);
	struct tls_conn *tls = s->tls_up ? conn_tls(s->conn) : NULL;

	if (strcmp(name, "j") == 0)
		return smtpd_conf.myhostname;
	if (strcmp(name, "{daemon_name}") == 0)
		return daemon_name;
	if (strcmp(name, "{daemon_addr}") == 0)
		return m->daemon_addr[0] ? m->daemon_addr : NULL;
	if (strcmp(name, "{daemon_port}") == 0)
		return m->daemon_port[0] ? m->daemon_port : NULL;
	if (strcmp(name, "v") == 0)
		return macro_v;
	if (strcmp(name, "_") == 0)
		return m->underscore;
	if (strcmp(name, "{client_addr}") == 0)
		return s->addr;
	if (strcmp(name, "{client_port}") == 0)
		return m->client_port[0] ? m->client_port : NULL;
	/* {client_name} is the forward-confirmed name, {client_ptr} what
	 * the PTR record said (smtpd/peer.c), as Postfix gives them. */
	if (strcmp(name, "{client_name}") == 0)
		return s->name;
	if (strcmp(name, "{client_ptr}") == 0)
		return s->reverse_name;
	if (strcmp(name, "i") == 0)
		return strcmp(qid, "NOQUEUE") != 0 ? qid : NULL;
	if (strcmp(name, "{tls_version}") == 0)
		return tls != NULL ? tls_protocol(tls) : NULL;
	if (strcmp(name, "{cipher}") == 0)
		return tls != NULL ? tls_cipher(tls) : NULL;
	if (strcmp(name, "{cipher_bits}") == 0) {
		if (tls == NULL)
			return NULL;
		snprintf(m->cipher_bits, sizeof(m->cipher_bits), "%d",
		    tls_cipher_bits(tls));
		return m->cipher_bits;
	}
	if (strcmp(name, "{cert_subject}") == 0)
		return tls != NULL && tls_peer_cn(tls, 0, m->cert_subject,
		    sizeof(m->cert_subject)) == 0 ? m->cert_subject : NULL;
	if (strcmp(name, "{cert_issuer}") == 0)
		return tls != NULL && tls_peer_cn(tls, 1, m->cert_issuer,
		    sizeof(m->cert_issuer)) == 0 ? m->cert_issuer : NULL;
	if (strcmp(name, "{auth_type}") == 0)
		return s->sasl_user != NULL ? s->sasl_method : NULL;
	if (strcmp(name, "{auth_authen}") == 0)
		return s->sasl_user;
	if (strcmp(name, "{auth_author}") == 0)
		return txn_auth_author(s);
	if (strcmp(name, "{mail_addr}") == 0)
		return txn_sender(s);
	if (strcmp(name, "{mail_mailer}") == 0 || strcmp(name, "{mail_host}") == 0) {
		const char *from = txn_sender(s);
		/* The null sender has no route (Postfix leaves it out too). */
		return from != NULL && *from != '\0' ? route_get(&m->mail_route,
		    from, name[6] == 'h') : NULL;
	}
	if (m->rcpt_rej != NULL) {
		/* A refused recipient, as Postfix shows it: mailer "error",
		 * host the enhanced status code, address the reply text. */
		const char *r = m->rcpt_rej, *text = strlen(r) > 4 ? r + 4 : "";
		size_t dsn = strspn(text, "0123456789.");
		if (strcmp(name, "{rcpt_mailer}") == 0)
			return "error";
		if (strcmp(name, "{rcpt_host}") == 0) {
			snprintf(m->rej_dsn, sizeof(m->rej_dsn), "%.*s", (int)dsn, text);
			return m->rej_dsn;
		}
		if (strcmp(name, "{rcpt_addr}") == 0)
			return text + dsn + (text[dsn] == ' ');
	}
	if (strcmp(name, "{rcpt_addr}") == 0)
		return m->rcpt;
	if (strcmp(name, "{rcpt_mailer}") == 0 || strcmp(name, "{rcpt_host}") == 0)
		return route_get(&m->rcpt_route, m->rcpt, name[6] == 'h');
	return NULL;
}

static void
message_reset(struct smtpd_milter *m)
{
	strv_free(&m->rcpts);
	route_reset(&m->mail_route);
	route_reset(&m->rcpt_route);
	m->rcpt_mark = 0;
	m->discard = 0;
	xfree(&m->discard_milter);
	milter_envelope_free(&m->msg.env);
	m->msg.content = NULL;
}

/* A step is over: let the session go on. */
static void
resume(struct session *s)
{
	s->milter_wait = 0;
	s->milter->wait = W_NONE;
	xfree(&s->milter->ok);
	session_process_more(s);
	session_done_cb(s);
}

static void
wait_for(struct session *s, enum wait w)
{
	s->milter->wait = w;
	s->milter_wait = 1;
}

static const char *
first_rcpt(const struct smtpd_milter *m)
{
	return m->rcpts != NULL && strv_len(m->rcpts) == 1 ? m->rcpts[0] : NULL;
}

/* --- connect, HELO -------------------------------------------------------- */

static void
conn_done(void *ctx, const struct milter_verdict *v)
{
	struct session *s = ctx;

	/* A connect or HELO verdict stays with the session (the chain
	 * repeats it for every later command), as in Postfix. */
	if (v->kind == MILTER_V_REJECT || v->kind == MILTER_V_TEMPFAIL)
		session_log_event(s, "milter-reject",
		    s->milter->wait == W_CONNECT ? "CONNECT" : "HELO", v->reply, NULL);
	resume(s);
}

void
smtpd_milter_connect(struct session *s)
{
	struct smtpd_milter *m;
	int port = 0, lport = 0;
	char peer[INET6_ADDRSTRLEN + 1];

	if (nspecs == 0)
		return;
	m = s->milter = xcalloc(1, sizeof(*m));
	/* Sendmail's "_": the PTR name, flagged when it did not confirm. */
	snprintf(m->underscore, sizeof(m->underscore), "%s [%s]%s", s->reverse_name,
	    s->addr, strcasecmp(s->name, s->reverse_name) != 0
	    ? " (may be forged)" : "");
	if (net_local_addr(s->fd, m->daemon_addr, sizeof(m->daemon_addr), &lport) < 0)
		m->daemon_addr[0] = '\0';
	else
		snprintf(m->daemon_port, sizeof(m->daemon_port), "%d", lport);
	if (net_peer_addr(s->fd, peer, sizeof(peer), &port) == 0)
		snprintf(m->client_port, sizeof(m->client_port), "%d", port);
	m->ch = milter_chain_new(s->loop, specs, nspecs, defmacros, macro, s);
	wait_for(s, W_CONNECT);
	milter_chain_connect(m->ch, s->name, strchr(s->addr, ':') ? '6' : '4',
	    (unsigned)port, s->addr, conn_done, s);
}

void
smtpd_milter_helo(struct session *s)
{
	if (s->milter == NULL)
		return;
	wait_for(s, W_HELO);
	milter_chain_helo(s->milter->ch, s->helo, conn_done, s);
}

/* --- MAIL, RCPT, DATA ------------------------------------------------------ */

/* "<addr>" and the ESMTP parameters as milter argv. */
static char **
cmd_argv(const char *addr, const char *params, size_t plen)
{
	char **v = NULL, *p = xstrndup(params, plen), *a = xasprintf("<%s>", addr);
	char **words = strv_split_list(p);

	strv_push(&v, a);
	for (size_t i = 0; words[i] != NULL; i++)
		strv_push(&v, words[i]);
	strv_free(&words);
	free(p);
	free(a);
	return v;
}

static void
mail_done(void *ctx, const struct milter_verdict *v)
{
	struct session *s = ctx;
	struct smtpd_milter *m = s->milter;

	if (v->kind == MILTER_V_REJECT || v->kind == MILTER_V_TEMPFAIL) {
		reply(s, "%s", v->reply);
		session_log_event(s, "milter-reject", "MAIL", v->reply, NULL);
		txn_reset(s);
	} else {
		if (v->kind == MILTER_V_DISCARD) {
			m->discard = 1;
			m->discard_milter = xstrdup(v->milter);
		}
		reply(s, "%s", m->ok);
	}
	resume(s);
}

void
smtpd_milter_mail(struct session *s, const char *addr, const char *params,
    size_t plen, const char *ok)
{
	struct smtpd_milter *m = s->milter;

	if (m == NULL) {
		reply(s, "%s", ok);
		return;
	}
	message_reset(m);
	m->ok = xstrdup(ok);
	char **argv = cmd_argv(addr, params, plen);
	wait_for(s, W_MAIL);
	milter_chain_mail(m->ch, (const char *const *)argv, strv_len(argv),
	    mail_done, s);
	strv_free(&argv);
}

static void
rcpt_done(void *ctx, const struct milter_verdict *v)
{
	struct session *s = ctx;
	struct smtpd_milter *m = s->milter;
	struct queue_writer *w = txn_writer(s);

	if (v->kind == MILTER_V_REJECT || v->kind == MILTER_V_TEMPFAIL) {
		/* Written already: out of the queue file again. */
		if (w != NULL)
			(void)queue_writer_rcpt_truncate(w, m->rcpt_mark);
		reply(s, "%s", v->reply);
		session_log_event(s, "milter-reject", "RCPT", v->reply, m->rcpt);
	} else {
		if (v->kind == MILTER_V_DISCARD && !m->discard) {
			m->discard = 1;
			m->discard_milter = xstrdup(v->milter);
		}
		strv_push(&m->rcpts, m->rcpt);
		if (w != NULL)
			m->rcpt_mark = queue_writer_rcpt_count(w);
		reply(s, "%s", m->ok);
	}
	xfree(&m->rcpt);
	resume(s);
}

void
smtpd_milter_rcpt(struct session *s, const char *addr, const char *params,
    size_t plen, const char *ok)
{
	struct smtpd_milter *m = s->milter;

	if (m == NULL) {
		reply(s, "%s", ok);
		return;
	}
	m->ok = xstrdup(ok);
	free(m->rcpt);
	m->rcpt = xstrdup(addr);
	route_reset(&m->rcpt_route);
	char **argv = cmd_argv(addr, params, plen);
	wait_for(s, W_RCPT);
	milter_chain_rcpt(m->ch, (const char *const *)argv, strv_len(argv),
	    rcpt_done, s);
	strv_free(&argv);
}

static void
rcpt_rej_done(void *ctx, const struct milter_verdict *v)
{
	struct session *s = ctx;
	struct smtpd_milter *m = s->milter;

	(void)v;   /* the recipient is refused whatever the milters say */
	xfree(&m->rcpt_rej);
	xfree(&m->rcpt);
	resume(s);
}

void
smtpd_milter_rcpt_rejected(struct session *s, const char *addr,
    const char *params, const char *rep)
{
	struct smtpd_milter *m = s->milter;

	if (m == NULL || !milter_chain_wants_rcpt_rej(m->ch))
		return;
	free(m->rcpt);
	m->rcpt = xstrdup(addr);
	free(m->rcpt_rej);
	m->rcpt_rej = xstrdup(rep);
	route_reset(&m->rcpt_route);
	char **argv = cmd_argv(addr, params, strlen(params));
	wait_for(s, W_RCPT);
	milter_chain_rcpt_rejected(m->ch, (const char *const *)argv,
	    strv_len(argv), rcpt_rej_done, s);
	strv_free(&argv);
}

static void
data_done(void *ctx, const struct milter_verdict *v)
{
	struct session *s = ctx;
	struct smtpd_milter *m = s->milter;

	if (v->kind == MILTER_V_REJECT || v->kind == MILTER_V_TEMPFAIL) {
		reply(s, "%s", v->reply);
		session_log_event(s, "milter-reject", "DATA", v->reply, first_rcpt(m));
		txn_reset(s);
	} else {
		if (v->kind == MILTER_V_DISCARD && !m->discard) {
			m->discard = 1;
			m->discard_milter = xstrdup(v->milter);
		}
		m->go(s);
	}
	resume(s);
}

void
smtpd_milter_data(struct session *s, void (*go)(struct session *s))
{
	struct smtpd_milter *m = s->milter;

	if (m == NULL) {
		go(s);
		return;
	}
	if (m->rcpts == NULL) {
		/* Every recipient was refused by a milter. */
		reply(s, "554 5.5.1 Error: no valid recipients");
		txn_reset(s);
		return;
	}
	m->go = go;
	wait_for(s, W_DATA);
	milter_chain_data(m->ch, data_done, s);
}

static void
unknown_done(void *ctx, const struct milter_verdict *v)
{
	struct session *s = ctx;
	struct smtpd_milter *m = s->milter;

	if (v->kind == MILTER_V_REJECT || v->kind == MILTER_V_TEMPFAIL) {
		reply(s, "%s", v->reply);
		session_log_event(s, "milter-reject", "UNKNOWN", v->reply, NULL);
	} else {
		reply(s, "%s", m->ok);
	}
	resume(s);
}

void
smtpd_milter_unknown(struct session *s, const char *line, const char *ok)
{
	struct smtpd_milter *m = s->milter;

	if (m == NULL) {
		reply(s, "%s", ok);
		return;
	}
	m->ok = xstrdup(ok);
	wait_for(s, W_UNKNOWN);
	milter_chain_unknown(m->ch, line, unknown_done, s);
}

int
smtpd_milter_active(const struct session *s)
{
	return s->milter != NULL;
}

/* --- end of message -------------------------------------------------------- */

/* The verdict at end of message: the reply, and the commit or not. */
static void
eom_finish(struct session *s, const struct milter_verdict *v)
{
	struct smtpd_milter *m = s->milter;
	struct queue_writer *w = txn_writer(s);
	char text[512];

	if (v->kind == MILTER_V_REJECT || v->kind == MILTER_V_TEMPFAIL) {
		reply(s, "%s", v->reply);
		/* Postfix's cleanup logs it without the SMTP code. */
		session_log_event(s, "milter-reject", "END-OF-MESSAGE",
		    milter_reply_logtext(v->reply), first_rcpt(m));
		txn_reset(s);
	} else if (v->kind == MILTER_V_DISCARD || m->discard) {
		/* Postfix answers 250 and drops the message. */
		char id[QUEUE_ID_MAX];
		snprintf(id, sizeof(id), "%s", txn_qid(s));
		session_log_event(s, "milter-discard", "END-OF-MESSAGE",
		    "milter triggers DISCARD action", first_rcpt(m));
		reply(s, "250 2.0.0 Ok: queued as %s", id);
		txn_reset(s);
	} else if (w == NULL || milter_queue_apply(w, &m->msg, txn_sender(s),
	    m->rcpts, smtpd_conf.resolver, txn_qid(s)) < 0) {
		m->commit(s, "451 4.3.0 Error: queue file write error");
	} else {
		if (v->hold) {
			snprintf(text, sizeof(text), "milter triggers HOLD action%s%s",
			    v->hold_reason ? ": " : "", v->hold_reason ? v->hold_reason : "");
			session_log_event(s, "milter-hold", "END-OF-MESSAGE", text,
			    first_rcpt(m));
		}
		m->commit(s, NULL);   /* fsync file and directory, then 250 */
	}
}

static void
eom_done(void *ctx, const struct milter_verdict *v)
{
	struct session *s = ctx;

	eom_finish(s, v);
	resume(s);
}

void
smtpd_milter_eom(struct session *s, struct buf *content,
    void (*commit)(struct session *s, const char *rej))
{
	struct smtpd_milter *m = s->milter;

	m->commit = commit;
	m->msg.content = content;
	milter_envelope_free(&m->msg.env);
	m->msg.env.sender = xstrdup(txn_sender(s));
	for (size_t i = 0; m->rcpts != NULL && m->rcpts[i] != NULL; i++) {
		m->msg.env.rcpts = xreallocarray(m->msg.env.rcpts, i + 1, sizeof(char *));
		m->msg.env.rcpt_args = xreallocarray(m->msg.env.rcpt_args, i + 1,
		    sizeof(char *));
		m->msg.env.rcpts[i] = xstrdup(m->rcpts[i]);
		m->msg.env.rcpt_args[i] = NULL;
		m->msg.env.nrcpt = i + 1;
	}
	if (m->discard) {
		/* Discarded at MAIL/RCPT/DATA: the milters need not see it. */
		struct milter_verdict v = { .kind = MILTER_V_DISCARD };
		milter_chain_abort(m->ch);
		eom_finish(s, &v);
		return;
	}
	wait_for(s, W_EOM);
	milter_chain_message(m->ch, &m->msg, eom_done, s);
}

/* --- the end of a message or session --------------------------------------- */

void
smtpd_milter_abort(struct session *s)
{
	struct smtpd_milter *m = s->milter;

	if (m == NULL || m->wait != W_NONE)
		return;
	milter_chain_abort(m->ch);
	message_reset(m);
}

void
smtpd_milter_end(struct session *s)
{
	struct smtpd_milter *m = s->milter;

	if (m == NULL)
		return;
	milter_chain_free(&m->ch);
	message_reset(m);
	free(m->ok);
	free(m->rcpt);
	free(m->rcpt_rej);
	free(m);
	s->milter = NULL;
	s->milter_wait = 0;
}
