/*
 * dns - MX, A and AAAA lookups for the SMTP client, through c-ares.
 *
 * Lookups block the calling process (smtp serves one request at a time)
 * but never longer than the timeout given to dns_open(): c-ares is driven
 * with poll() and ares_process_fd(). The resolver reads /etc/resolv.conf
 * unless smtp_dns_servers names servers ("127.0.0.1:5353, [::1]:53").
 *
 * Answer handling is split from I/O so it can be tested with crafted
 * answers: dns_parse_mx() turns a wire-format reply into records, and
 * dns_mx_sort() orders them (preference, random among equals) and spots
 * an RFC 7505 null MX.
 *
 * Results: every lookup returns a dns_status; the caller maps NXDOMAIN to
 * a bounce and TEMPFAIL to a deferral, as Postfix does.
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>

#define DNS_MX_MAX 100        /* records kept from one MX answer */
#define DNS_ADDR_MAX 32       /* addresses kept per host and family */
#define DNS_NAME_MAX 255

enum dns_status {
	DNS_OK = 0,
	DNS_NODATA,     /* the name exists, no record of that type */
	DNS_NXDOMAIN,   /* the name does not exist */
	DNS_TEMPFAIL,   /* timeout, SERVFAIL, REFUSED, no servers: try later */
	DNS_BADANSWER,  /* malformed answer; treated as temporary by callers */
};

struct dns_mx {
	char *host;     /* lower case, no trailing dot; "" for the root (".") */
	int pref;
};

struct dns_addr {
	int family;     /* AF_INET or AF_INET6 */
	char text[46];  /* INET6_ADDRSTRLEN */
};

struct dns;

/* servers: "" or NULL for /etc/resolv.conf, else a list for
 * ares_set_servers_ports_csv ("127.0.0.1:5353"). timeout_ms bounds each
 * lookup as a whole. NULL and *err_r (xmalloc'd) on failure. */
struct dns *dns_open(const char *servers, int timeout_ms, char **err_r);
void dns_close(struct dns **d);

/* MX records of name, unsorted (see dns_mx_sort). On DNS_OK *mx_r has
 * *n_r >= 1 entries; free with dns_mx_free. *why_r (static text) says
 * what went wrong for a non-OK status. */
enum dns_status dns_lookup_mx(struct dns *d, const char *name,
    struct dns_mx **mx_r, size_t *n_r, const char **why_r);
/* A (family AF_INET) or AAAA (AF_INET6) records; CNAMEs followed by the
 * server. Appends to *addrs_r / *n_r (caller initialises to NULL / 0;
 * free with free()). At most DNS_ADDR_MAX are added. */
enum dns_status dns_lookup_addr(struct dns *d, const char *name, int family,
    struct dns_addr **addrs_r, size_t *n_r, const char **why_r);

/* Pure helpers. */
/* Parse an MX answer (a whole DNS reply message). DNS_OK with >= 1
 * records, DNS_NODATA for none, DNS_BADANSWER for a malformed reply. */
enum dns_status dns_parse_mx(const unsigned char *abuf, int alen,
    struct dns_mx **mx_r, size_t *n_r);
/* Sort by preference; equal preferences in random order (rnd returns a
 * uniform value in [0, n) for n > 0; NULL = random()). Returns 1 when the
 * answer is a null MX (one record, host "." or "", preference 0: the
 * domain accepts no mail), else 0. Root targets among other records are
 * removed (RFC 7505 says they must not be mixed; we ignore them), which
 * may leave *n == 0. Host names are lower-cased; a trailing dot dropped. */
int dns_mx_sort(struct dns_mx *mx, size_t *n, unsigned (*rnd)(unsigned n, void *ctx),
    void *ctx);
void dns_mx_free(struct dns_mx *mx, size_t n);
const char *dns_status_str(enum dns_status s);

/* Non-blocking lookups on an event loop (smtpd's restrictions). A
 * query's answer comes to cb from the loop: status and the values as
 * text (addresses, TXT strings, MX hosts, PTR names; NULL-terminated,
 * borrowed for the call). dns_q_cancel() stops the callback (the query
 * handle is freed by the library when c-ares is done with it). */
struct loop;
struct dns_async;
struct dns_q;
/* DNS_Q_HOST: the IPv4 and IPv6 addresses of a host name, from the hosts
 * file first, then DNS (ares_getaddrinfo), for endpoints named in the
 * configuration (check_policy_service inet:localhost:10023). */
enum { DNS_Q_A, DNS_Q_AAAA, DNS_Q_TXT, DNS_Q_MX, DNS_Q_PTR, DNS_Q_HOST };
typedef void (*dns_async_cb)(void *ctx, enum dns_status st, char **values);
struct dns_async *dns_async_open(struct loop *l, const char *servers,
    int timeout_ms, char **err_r);
struct dns_q *dns_async_query(struct dns_async *d, const char *name, int type,
    dns_async_cb cb, void *ctx);
void dns_q_cancel(struct dns_q *q);
void dns_async_close(struct dns_async **d);

#endif
