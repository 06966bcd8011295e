/*
 * smtp - the outbound SMTP delivery agent (Postfix smtp(8)).
 *
 * One delivery request at a time (SERVER_SINGLE): qmgr names a queue
 * file, a nexthop and the recipients for it. We open the file and hold
 * flock(LOCK_SH) while delivering, find the server addresses for the
 * nexthop (smtp_addr.c), try them in order until every recipient has a
 * final answer or the list is exhausted (smtp_session.c), and answer one
 * result per recipient: 2 sent (already marked 'D' in the queue file),
 * 4 deferred, 5 bounced. We log each recipient's status line (dlvlog.h):
 * a delivery right after its 'D' mark, the others just before the reply;
 * qmgr writes the bounce reports. We also log TLS sessions and trouble.
 *
 * Connection caching: when the session may be kept (smtp_cache_wanted():
 * smtp_connection_cache_on_demand and qmgr's backlog flag, or the nexthop
 * in smtp_connection_cache_destinations) and was kept (smtp_session.c),
 * the reply says "cache" = smtp_connection_cache_time_limit and we wait
 * on the same qmgr connection for the next request, which qmgr sends only
 * for the same nexthop; it goes over the kept session. When qmgr closes
 * the connection (its time limit, no more mail, drain) we QUIT and go
 * back to master. Waiting is bounded by the time limit plus a margin
 * (dlv_serve()), in case qmgr forgets us. The kept session lives
 * in this process only: qmgr, not a separate scache daemon, brings the
 * next message to it (see ARCHITECTURE.md, "Outbound connection reuse").
 *
 * A request from local for mailbox_transport (req->pass) is delivered the
 * same way, but the queue file is local's to mark: it marks the queue
 * recipient when every copy its expansion produced is done.
 *
 * Invariants: a recipient is reported 2 only after the remote server
 * answered 2xx to the end of DATA; any doubt is a 4xx, so the message
 * stays queued. Runs as mail_owner (unpriv), reads no local mailboxes.
 * Trusts: qmgr for the request (offsets are checked against the file),
 * the configuration and tables. Not the network, not DNS answers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/net.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/dlvlog.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "mail/server_args.h"
#include "smtp.h"

#define LOCK_WAIT_MS 5000

struct smtp_conf sconf;

/* A number from the table (its default there, never here) held to
 * [min, max]: a value outside is capped, with a warning. */
static long long
conf_bounded(long long v, const char *name, long long min, long long max)
{
	if (v < min || v > max) {
		log_warnx("%s = %lld is out of range [%lld, %lld]; using %lld", name, v,
		    min, max, v < min ? min : max);
		return v < min ? min : max;
	}
	return v;
}

/* "smtp_NAME" or, in LMTP mode, "lmtp_NAME" (Postfix's parameter names;
 * each one read here is in lib/mail/config.c's table). */
static const char *
pname(const char *suffix)
{
	static char b[64];

	snprintf(b, sizeof(b), "%s_%s", sconf.lmtp ? "lmtp" : "smtp", suffix);
	return b;
}

/* Timeouts: a duration (default unit s), at most a day. */
static int
conf_secs(const char *suffix)
{
	const char *name = pname(suffix);

	return (int)conf_bounded(config_time(name), name, 0, 86400);
}

/* LMTP: Postfix's same program in another mode. No MX, no TLS, no AUTH;
 * the sockets it is pointed at are local services, so it must never
 * connect as root: a privileged lmtp service is refused. */
static void
lmtp_pre_init(void)
{
	if (server_privileged())
		log_fatalx("the lmtp service must run unprivileged (master.conf unpriv "
		    "column \"-\" or \"y\"): it connects to sockets by path");
	sconf.tls_level = TLS_LEV_NONE;
	sconf.tls_policy_specs = xstrdup("");
	sconf.sasl_passwd_specs = xstrdup("");
	sconf.bind_address = xstrdup("");
	sconf.bind_address6 = xstrdup("");
}

static void
smtp_pre_init(void)
{
	const char *v;
	char *err = NULL;
	char **protos;

	sconf.qdir = xstrdup(config_str("queue_directory"));
	sconf.local_name = xstrdup(config_str("myhostname"));
	sconf.helo_name = xstrdup(config_str(pname(sconf.lmtp ? "lhlo_name" : "helo_name")));
	sconf.port = (int)conf_bounded(config_int(pname("tcp_port")), pname("tcp_port"), 1,
	    65535);
	sconf.connect_timeout = conf_secs("connect_timeout");
	sconf.helo_timeout = conf_secs(sconf.lmtp ? "lhlo_timeout" : "helo_timeout");
	sconf.mail_timeout = conf_secs("mail_timeout");
	sconf.rcpt_timeout = conf_secs("rcpt_timeout");
	sconf.data_init_timeout = conf_secs("data_init_timeout");
	sconf.data_xfer_timeout = conf_secs("data_xfer_timeout");
	sconf.data_done_timeout = conf_secs("data_done_timeout");
	sconf.quit_timeout = conf_secs("quit_timeout");
	/* Host names in an LMTP nexthop use the SMTP client's resolver. */
	sconf.dns_timeout = (int)conf_bounded(config_time("smtp_dns_timeout"),
	    "smtp_dns_timeout", 0, 86400);
	sconf.mx_address_limit = (int)conf_bounded(config_int("smtp_mx_address_limit"),
	    "smtp_mx_address_limit", 1, SMTP_HOSTS_MAX);
	v = config_str("inet_protocols");
	protos = strv_split_list(v);
	sconf.use_ipv4 = strv_contains_ci(protos, "all") || strv_contains_ci(protos, "ipv4");
	sconf.use_ipv6 = strv_contains_ci(protos, "all") || strv_contains_ci(protos, "ipv6");
	if (!sconf.use_ipv4 && !sconf.use_ipv6)
		sconf.use_ipv4 = 1;
	strv_free(&protos);
	sconf.dns_servers = xstrdup(config_str("smtp_dns_servers"));
	if (sconf.lmtp) {
		lmtp_pre_init();
		return;
	}
	sconf.bind_address = xstrdup(config_str("smtp_bind_address"));
	sconf.bind_address6 = xstrdup(config_str("smtp_bind_address6"));
	{
		/* inet_interfaces of one address that is not loopback is also
		 * the source of outbound mail (Postfix's rule), unless
		 * smtp_bind_address(6) says otherwise. */
		const char *addr;
		int family;
		char **slot;

		if (net_interfaces(config_str("inet_interfaces"), &addr, &family) == 0 &&
		    addr != NULL && strncmp(addr, "127.", 4) != 0 &&
		    strcmp(addr, "::1") != 0) {
			slot = family == AF_INET6 ? &sconf.bind_address6 : &sconf.bind_address;
			if (**slot == '\0') {
				free(*slot);
				*slot = xstrdup(addr);
			}
		}
	}
	sconf.cache_on_demand = config_bool("smtp_connection_cache_on_demand");
	sconf.cache_destinations = strv_split_list(
	    config_str("smtp_connection_cache_destinations"));
	sconf.cache_time_limit = (int)conf_bounded(
	    config_time("smtp_connection_cache_time_limit"),
	    "smtp_connection_cache_time_limit", 0, 300);
	sconf.reuse_time_limit = (int)conf_bounded(
	    config_time("smtp_connection_reuse_time_limit"),
	    "smtp_connection_reuse_time_limit", 1, 86400);
	sconf.reuse_count_limit = (int)conf_bounded(
	    config_int("smtp_connection_reuse_count_limit"),
	    "smtp_connection_reuse_count_limit", 0, 1000000);
	sconf.starttls_timeout = conf_secs("starttls_timeout");
	v = config_str("smtp_tls_security_level");
	if (*v == '\0')
		sconf.tls_level = TLS_LEV_NONE;    /* Postfix: empty = none */
	else if (tls_level_parse(v, &sconf.tls_level) < 0)
		/* config_check() refused it before we got here */
		log_fatalx("bad smtp_tls_security_level \"%s\"", v);
	if (tls_settings_get("smtp", 0, config_param, NULL, &sconf.tls_may, &err) < 0 ||
	    tls_settings_get("smtp", 1, config_param, NULL, &sconf.tls_must, &err) < 0)
		log_fatalx("TLS settings: %s", err);
	sconf.tls_policy_specs = xstrdup(config_str("smtp_tls_policy_maps"));
	sconf.sasl_passwd_specs = xstrdup(config_str("smtp_sasl_password_maps"));
	sconf.sasl_plain_ok[0] = config_sasl_plaintext("smtp", 0);
	sconf.sasl_plain_ok[1] = config_sasl_plaintext("smtp", 1);
	/* Certificates and the CA store are read before dropping privileges. */
	sconf.tls = tls_client_ctx_new(config_str("smtp_tls_CAfile"),
	    config_str("smtp_tls_CApath"), &err);
	if (sconf.tls == NULL) {
		log_warnx("TLS client context: %s; TLS is off", err != NULL ? err : "?");
		free(err);
		err = NULL;
	}
	/* Sessions for resumption, in this process's memory (no tlsmgr). */
	tls_client_session_cache(sconf.tls, (int)conf_bounded(
	    config_time("smtp_tls_session_cache_timeout"),
	    "smtp_tls_session_cache_timeout", 0, 8640000));
}

static void
smtp_post_init(struct loop *l)
{
	char *err = NULL;

	(void)l;
	srandom((unsigned)(time(NULL) ^ getpid()));
	sconf.dns = dns_open(sconf.dns_servers, sconf.dns_timeout * 1000, &err);
	if (sconf.dns == NULL) {
		log_warnx("DNS resolver: %s", err != NULL ? err : "?");
		xfree(&err);
	}
	if (*sconf.tls_policy_specs != '\0') {
		sconf.tls_policy = maplist_open(sconf.tls_policy_specs, &err);
		if (sconf.tls_policy == NULL) {
			log_warnx("smtp_tls_policy_maps: %s", err != NULL ? err : "?");
			xfree(&err);
		}
	}
	if (*sconf.sasl_passwd_specs != '\0') {
		sconf.sasl_passwd = maplist_open(sconf.sasl_passwd_specs, &err);
		if (sconf.sasl_passwd == NULL) {
			log_warnx("smtp_sasl_password_maps: %s", err != NULL ? err : "?");
			xfree(&err);
		}
	}
}

/* ---- results ---- */

static void
result_set(struct dlv_result *res, int status, const char *dsn, const char *relay,
    const char *text)
{
	xfree(&res->dsn);
	xfree(&res->relay);
	xfree(&res->text);
	res->status = status;
	res->dsn = xstrdup(dsn);
	res->relay = xstrdup(relay != NULL && *relay != '\0' ? relay : "none");
	res->text = xstrdup(text != NULL ? text : "");
}

void
smtp_rcpt_result(struct smtp_rcpt *r, int status, const char *dsn, const char *relay,
    const char *text)
{
	if (r->final)
		return;
	if (status == 2 || status == 5)
		r->final = 1;
	else
		r->have_soft = 1;
	result_set(r->res, status, dsn, relay, text);
}

void
smtp_open_result(struct smtp_msg *m, int status, const char *dsn, const char *relay,
    const char *text)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		smtp_rcpt_result(&m->rcpts[i], status, dsn, relay, text);
}

size_t
smtp_open_count(const struct smtp_msg *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->nrcpt; i++)
		n += !m->rcpts[i].final;
	return n;
}

static void
result_all(struct dlv_result *res, const struct dlv_request *req, const char *text)
{
	size_t i;

	for (i = 0; i < req->nrcpt; i++) {
		res[i].offset = req->rcpts[i].offset;
		result_set(&res[i], 4, "4.3.0", "none", text);
	}
}

int
smtp_cache_wanted(const struct smtp_msg *m)
{
	size_t i;
	int want;

	if (sconf.lmtp || m->pass || sconf.cache_time_limit <= 0)
		return 0;
	want = m->backlog && sconf.cache_on_demand;
	for (i = 0; !want && sconf.cache_destinations != NULL &&
	    sconf.cache_destinations[i] != NULL; i++)
		want = strcasecmp(sconf.cache_destinations[i], m->nexthop) == 0;
	/* Nobody would bring the next request. */
	return want && !dlv_peer_gone(m->peer);
}

/* Non-ASCII in the envelope means SMTPUTF8 is needed on the wire. */
static int
has_8bit(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

static int
count_cb(const char *p, size_t n, void *ctx)
{
	off_t *lines = ctx;
	const char *e = p + n;

	while ((p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		(*lines)++;
		p++;
	}
	return 0;
}

static void
deliver_request(int peer, const struct dlv_request *req, struct dlv_result *res)
{
	struct smtp_msg m;
	struct smtp_host *hosts = NULL;
	char *err = NULL;
	size_t i, j, nhosts = 0;
	off_t lines = 0;

	memset(&m, 0, sizeof(m));
	m.peer = peer;
	m.backlog = req->backlog;
	dlvlog_times_request(&m.times, req);
	m.qfd = queue_open_shared(sconf.qdir, req->queue_dir, req->queue_id,
	    LOCK_WAIT_MS, &m.env, &err);
	if (m.qfd < 0) {
		log_warnx("%s: %s", req->queue_id != NULL ? req->queue_id : "?",
		    err != NULL ? err : "cannot open queue file");
		result_all(res, req, errno == EINVAL ? "bad queue file name in delivery request" :
		    "cannot open queue file");
		goto out;
	}
	if (dlv_peer_gone(peer)) {
		/* Checked under the lock: the qmgr that asked is gone and its
		 * successor hands these recipients out anew. */
		log_warnx("%s: qmgr closed the connection, request dropped", m.env.id);
		result_all(res, req, "queue manager went away");
		for (i = 0; i < req->nrcpt; i++)
			res[i].logged = 1;
		goto out;
	}
	m.id = m.env.id;
	m.sender = m.env.sender != NULL ? m.env.sender : "";
	m.nexthop = req->nexthop;
	m.pass = req->pass;
	m.body = qenv_attr(&m.env, "body");
	m.envid = qenv_attr(&m.env, "envid");
	m.ret = qenv_attr(&m.env, "ret");
	m.smtputf8 = qenv_attr(&m.env, "smtputf8") != NULL && has_8bit(m.sender);
	(void)queue_content(m.qfd, &m.env, count_cb, &lines);
	m.size_est = m.env.content_size + lines;
	m.rcpts = xcalloc(req->nrcpt + 1, sizeof(*m.rcpts));
	m.nrcpt = req->nrcpt;
	for (i = 0; i < req->nrcpt; i++) {
		const struct dlv_rcpt *dr = &req->rcpts[i];
		struct smtp_rcpt *r = &m.rcpts[i];

		r->dr = dr;
		r->res = &res[i];
		res[i].offset = dr->offset;
		for (j = 0; j < m.env.nrcpt; j++)
			if ((long long)m.env.rcpts[j].status_off == dr->offset) {
				r->qr = &m.env.rcpts[j];
				break;
			}
		/* A pass (local's mailbox_transport) names the queue recipient
		 * by offset and the local user it expanded to by address. */
		if (r->qr == NULL || (!req->pass && strcmp(r->qr->addr, dr->addr) != 0)) {
			log_warnx("%s: recipient <%s> at offset %lld is not in the queue file",
			    m.id, dr->addr, dr->offset);
			r->qr = NULL;
			smtp_rcpt_result(r, 4, "4.3.0", "none",
			    "recipient not found in queue file");
			r->final = 1;   /* do not send it anywhere */
			continue;
		}
		if (r->qr->status == 'D') {
			/* An earlier attempt delivered it and logged that. */
			smtp_rcpt_result(r, 2, "2.0.0", "none", "already delivered");
			res[i].logged = 1;
			continue;
		}
		if (has_8bit(dr->addr) && qenv_attr(&m.env, "smtputf8") != NULL)
			m.smtputf8 = 1;
	}
	if (smtp_open_count(&m) == 0)
		goto out;
	/* The session kept from the last request, if it is for this nexthop:
	 * no DNS, no handshakes. */
	switch (smtp_session_cached(&m)) {
	case 0:
		goto out;
	case 1:
		if (smtp_open_count(&m) == 0)
			goto out;
		break;
	default:
		break;
	}
	if ((sconf.lmtp ? smtp_find_lmtp_hosts : smtp_find_hosts)(&m, req->nexthop,
	    &hosts, &nhosts) < 0)
		goto out;
	for (i = 0; i < nhosts && smtp_open_count(&m) > 0; i++) {
		if (smtp_session(&m, &hosts[i]) == 0)
			break;
	}
	/* Anything still open without a recorded answer (should not happen). */
	for (i = 0; i < m.nrcpt; i++)
		if (!m.rcpts[i].final && !m.rcpts[i].have_soft)
			smtp_rcpt_result(&m.rcpts[i], 4, "4.4.1", "none",
			    "delivery temporarily suspended: no server was reachable");
out:
	/* Every outcome not logged yet (deferrals, bounces) is final for
	 * this attempt now: log it before the reply goes out. */
	for (i = 0; i < req->nrcpt; i++) {
		if (res[i].dsn == NULL) {
			res[i].offset = req->rcpts[i].offset;
			result_set(&res[i], 4, "4.3.0", "none", "internal error");
		}
		if (!res[i].logged)
			dlvlog_result(req->queue_id, req->rcpts[i].addr, req->rcpts[i].orig,
			    &m.times, &res[i]);
	}
	smtp_hosts_free(hosts, nhosts);
	free(m.rcpts);
	free(err);
	if (m.qfd >= 0) {
		qenv_free(&m.env);
		close(m.qfd);   /* drops the flock */
	}
}

/* A kept session: qmgr may park this connection that long. */
static int
smtp_keep(const struct dlv_request *req)
{
	(void)req;
	return smtp_session_kept() ? sconf.cache_time_limit : 0;
}

static void
smtp_serve(int fd)
{
	dlv_serve(fd, deliver_request, sconf.lmtp ? NULL : smtp_keep);
	smtp_session_drop();
}

/* LMTP mode, as Postfix's lmtp(8) is its smtp(8) under another name:
 * run as "lmtp" (the program name, a link to smtp) or for a master.conf
 * service named "lmtp" (-n lmtp). */
static int
lmtp_mode(int argc, char **argv)
{
	struct server_args a;
	const char *base = strrchr(argv[0], '/');
	char *err = NULL;
	int lmtp;

	base = base != NULL ? base + 1 : argv[0];
	if (strcmp(base, "lmtp") == 0)
		return 1;
	/* A bad command line is the skeleton's to report; here it is "smtp". */
	memset(&a, 0, sizeof(a));
	lmtp = server_args_parse(argc, argv, &a, &err) == 0 && a.service != NULL &&
	    strcmp(a.service, "lmtp") == 0;
	server_args_free(&a);
	free(err);
	return lmtp;
}

int
main(int argc, char **argv)
{
	static struct server_ops ops = {
		.kind = SERVER_SINGLE,
		.name = "smtp",
		.pre_init = smtp_pre_init,
		.post_init = smtp_post_init,
		.serve = smtp_serve,
	};

	if (argc > 0 && lmtp_mode(argc, argv)) {
		sconf.lmtp = 1;
		ops.name = "lmtp";   /* logs as postern/lmtp, as Postfix's postfix/lmtp */
	}
	return server_main(argc, argv, &ops);
}
