/*
 * smtp - shared state of the outbound SMTP client (smtp.c: requests and
 * results; smtp_addr.c: nexthop and DNS; smtp_session.c: the protocol;
 * smtp_io.c: lines and replies over plain or TLS sockets). The same
 * program is the LMTP client (Postfix lmtp(8)) when run as "lmtp"
 * (sconf.lmtp): LHLO, no MX, no TLS/AUTH, one reply per recipient
 * after DATA, UNIX or TCP sockets.
 *
 * One process handles one delivery request at a time: one message, the
 * recipients qmgr grouped for one (transport, nexthop). With connection
 * caching it takes further requests for the same nexthop on the same qmgr
 * connection and sends them over the SMTP session it kept (smtp.c
 * smtp_serve(), smtp_session.c smtp_session_cached()).
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <stddef.h>
#include <sys/types.h>

#include "util/buf.h"
#include "util/tls.h"
#include "mail/deliver.h"
#include "mail/dlvlog.h"
#include "mail/dns.h"
#include "mail/maps.h"
#include "mail/queue.h"
#include "mail/tlspolicy.h"
#include "proto/smtpc.h"

#define SMTP_HOSTS_MAX 20         /* addresses tried per delivery */

struct smtp_conf {
	int lmtp;                     /* LMTP mode: lmtp_* parameters */
	char *qdir;
	char *helo_name;              /* smtp_helo_name / lmtp_lhlo_name */
	char *local_name;             /* myhostname: relay=NAME[path] for sockets */
	int port;                     /* smtp_tcp_port / lmtp_tcp_port */
	int connect_timeout;          /* seconds */
	int helo_timeout;             /* smtp_helo_timeout / lmtp_lhlo_timeout */
	int starttls_timeout;
	int mail_timeout;
	int rcpt_timeout;
	int data_init_timeout;
	int data_xfer_timeout;
	int data_done_timeout;
	int quit_timeout;
	int dns_timeout;
	int mx_address_limit;
	int use_ipv4, use_ipv6;       /* inet_protocols */
	enum tls_level tls_level;     /* smtp_tls_security_level */
	struct maplist *tls_policy;   /* smtp_tls_policy_maps, may be NULL */
	struct maplist *sasl_passwd;  /* smtp_sasl_password_maps, may be NULL */
	char *sasl_passwd_specs;
	char *tls_policy_specs;
	struct tls_ctx *tls;          /* NULL: TLS unavailable */
	struct tls_settings tls_may;  /* smtp_tls_protocols, _ciphers, ... */
	struct tls_settings tls_must; /* smtp_tls_mandatory_* (encrypt, verify) */
	int sasl_plain_ok[2];         /* smtp_sasl_[tls_]security_options allow PLAIN */
	char *dns_servers;            /* smtp_dns_servers */
	struct dns *dns;
	char *bind_address;           /* smtp_bind_address */
	char *bind_address6;          /* smtp_bind_address6 */
	/* Connection caching (never in LMTP mode). */
	int cache_on_demand;          /* smtp_connection_cache_on_demand */
	char **cache_destinations;    /* smtp_connection_cache_destinations */
	int cache_time_limit;         /* smtp_connection_cache_time_limit, s */
	int reuse_time_limit;         /* smtp_connection_reuse_time_limit, s */
	int reuse_count_limit;        /* smtp_connection_reuse_count_limit, 0 none */
};
extern struct smtp_conf sconf;

/* One address to try. */
struct smtp_host {
	char *name;                   /* MX host or nexthop host (for TLS, logs) */
	char addr[110];               /* address text, or AF_UNIX: socket path */
	int family;                   /* AF_INET, AF_INET6, AF_UNIX */
	int port;
	int plain_only;               /* "may" handshake failed: retry in clear */
};

/* The recipients of the request and where each stands. */
struct smtp_rcpt {
	const struct dlv_rcpt *dr;
	struct qrcpt *qr;
	struct dlv_result *res;       /* filled once final or at the end */
	int final;                    /* 2 or 5 decided: do not try again */
	int accepted;                 /* RCPT 2xx in the current session */
	int have_soft;                /* a 4xx recorded (res holds it) */
};

struct smtp_msg {
	int peer;                     /* the qmgr connection (dlv_peer_gone) */
	int backlog;                  /* qmgr has more for this destination */
	int qfd;
	struct qenv env;
	const char *id;
	const char *sender;
	const char *nexthop;
	int pass;                     /* from local: do not mark the queue file */
	const char *body;             /* "8BITMIME", "7BIT" or NULL */
	const char *envid;
	const char *ret;
	int smtputf8;                 /* the message needs SMTPUTF8 */
	off_t size_est;               /* octets on the wire, for SIZE= */
	struct smtp_rcpt *rcpts;
	size_t nrcpt;
	struct dlvlog_times times;    /* for the status lines; connected per session */
};

/* smtp.c: results */
/* Record a status for a recipient: 2 and 5 are final; 4 is kept unless a
 * later host does better. relay: "host[addr]:port" or "none". */
void smtp_rcpt_result(struct smtp_rcpt *r, int status, const char *dsn,
    const char *relay, const char *text);
/* The same for every recipient still open. */
void smtp_open_result(struct smtp_msg *m, int status, const char *dsn,
    const char *relay, const char *text);
size_t smtp_open_count(const struct smtp_msg *m);

/* smtp_addr.c: the addresses for a nexthop, best first. 0 and *hosts_r;
 * -1 after recording a result for every open recipient (DNS failure,
 * null MX, nothing found). */
int smtp_find_hosts(struct smtp_msg *m, const char *nexthop,
    struct smtp_host **hosts_r, size_t *n_r);
/* LMTP: the same from an lmtp(8) nexthop ("unix:/path", "inet:host:port",
 * "host:port"): no MX lookup; a name is looked up as A/AAAA. */
int smtp_find_lmtp_hosts(struct smtp_msg *m, const char *nexthop,
    struct smtp_host **hosts_r, size_t *n_r);
void smtp_hosts_free(struct smtp_host *h, size_t n);
/* Split "[host]:port", "host:port", "host"; *mx_r: MX lookup wanted.
 * 0, or -1 for a malformed nexthop. host_r xmalloc'd. Pure. */
int smtp_parse_nexthop(const char *nh, int defport, char **host_r, int *port_r,
    int *mx_r);

/* smtp_session.c: deliver to one host. Returns 1 when the caller should
 * try the next host for the open recipients, 0 when done with this
 * delivery (all final, or a failure that another host would repeat).
 * When the session may be cached (smtp_cache_wanted()) and the server
 * accepts RSET after the transaction, it is kept instead of closed. */
int smtp_session(struct smtp_msg *m, struct smtp_host *h);
/* Deliver over the kept session, if there is one for m->nexthop. -1: none
 * usable (no session, another nexthop, past its reuse limits, or the
 * server closed it or failed before answering the first command of the
 * transaction: dropped, nothing recorded), deliver as usual; else as
 * smtp_session(). */
int smtp_session_cached(struct smtp_msg *m);
/* Is a session kept (for the reply's "cache" attribute)? */
int smtp_session_kept(void);
/* QUIT and close the kept session, if any. */
void smtp_session_drop(void);
/* smtp.c: may a session used for m be kept afterwards? (LMTP never;
 * smtp_connection_cache_on_demand with qmgr's backlog flag, or a nexthop
 * in smtp_connection_cache_destinations; qmgr still connected.) The
 * per-session limits are smtp_session.c's. */
int smtp_cache_wanted(const struct smtp_msg *m);

/* smtp_io.c: one connection */
struct smtp_conn {
	int fd;
	struct tls_conn *tls;
	struct buf in;
	char errtext[256];
};
int smtp_conn_open(struct smtp_conn *c, const struct smtp_host *h, char *why,
    size_t whylen);
void smtp_conn_close(struct smtp_conn *c);
/* An idle connection that has something to read (the server's EOF, or a
 * 421 before closing) is no longer usable. 1 usable, 0 not. */
int smtp_conn_idle_ok(struct smtp_conn *c);
/* Whole write within timeout seconds. 0 or -1 (errtext). */
int smtp_conn_write(struct smtp_conn *c, const void *p, size_t n, int timeout);
/* One reply: *code (200..599), text = the reply lines joined with a
 * space, the first "NNN " kept ("250 2.0.0 Ok"). Extension keywords (for
 * EHLO) collected into lines when not NULL (one per line, without code).
 * 0, or -1 on timeout/EOF/garbage (errtext). */
int smtp_conn_reply(struct smtp_conn *c, int timeout, int *code, struct buf *text,
    char ***lines);
/* Drop any buffered input (STARTTLS: nothing read in clear survives). */
void smtp_conn_purge(struct smtp_conn *c);
/* Pure: the enhanced status code at the start of text (after "NNN "),
 * when its class matches code; else "X.0.0" from code. out >= 16 bytes. */
void smtp_reply_dsn(int code, const char *text, char *out, size_t outlen);

/* Pure: convert stored content (LF line ends) to the wire: CRLF line
 * ends, dot-stuffed, no bare CR or LF. State carries across chunks;
 * smtp_wire_end() closes an unterminated last line and adds ".\r\n". */
struct smtp_wire {
	int bol;          /* at the beginning of a line */
	int cr;           /* a CR is pending */
};
void smtp_wire_init(struct smtp_wire *w);
void smtp_wire_chunk(struct smtp_wire *w, const char *p, size_t n, struct buf *out);
void smtp_wire_end(struct smtp_wire *w, struct buf *out);

#endif
