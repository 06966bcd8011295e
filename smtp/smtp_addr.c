/*
 * smtp_addr - from a nexthop to the addresses to try, best first.
 *
 *   "[host]:port", "[host]"   no MX lookup (relayhost, transport_maps
 *                             "smtp:[10.0.0.1]:2525"): host is an address
 *                             literal or a name looked up as A/AAAA
 *   "domain:port", "domain"   MX lookup; no MX records: the domain's own
 *                             A/AAAA (RFC 5321 5.1); null MX: bounce
 *
 * The default port is smtp_tcp_port (25). DNS outcomes follow Postfix:
 * NXDOMAIN for the domain bounces (5.4.4), a failed or timed-out lookup
 * defers (4.4.3), a null MX bounces at once (5.1.10). At most
 * smtp_mx_address_limit addresses are tried (MX hosts in preference
 * order, IPv4 then IPv6 per host).
 *
 * LMTP (smtp_find_lmtp_hosts) never looks up MX records: "unix:/path" is
 * one socket, and "inet:host:port" / "host:port" (default lmtp_tcp_port)
 * is the host's own addresses.
 */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strv.h"
#include "proto/smtpc.h"
#include "smtp.h"

int
smtp_parse_nexthop(const char *nh, int defport, char **host_r, int *port_r, int *mx_r)
{
	int bracket = 0;

	if (smtpc_hostport(nh, defport, host_r, port_r, &bracket) < 0)
		return -1;
	*mx_r = !bracket;
	return 0;
}

void
smtp_hosts_free(struct smtp_host *h, size_t n)
{
	size_t i;

	for (i = 0; h != NULL && i < n; i++)
		free(h[i].name);
	free(h);
}

static void
host_add(struct smtp_host **hv, size_t *n, const char *name, const struct dns_addr *a,
    int port)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*hv)[i].addr, a->text) == 0 && (*hv)[i].port == port)
			return;
	*hv = xreallocarray(*hv, *n + 1, sizeof(**hv));
	memset(&(*hv)[*n], 0, sizeof(**hv));
	(*hv)[*n].name = xstrdup(name);
	snprintf((*hv)[*n].addr, sizeof((*hv)[*n].addr), "%s", a->text);
	(*hv)[*n].family = a->family;
	(*hv)[*n].port = port;
	(*n)++;
}

static int
host_is_literal(const char *name)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1;
}

/* Addresses of one host name. Returns the worst DNS status seen when
 * nothing was found, DNS_OK when something was added. */
static enum dns_status
host_addrs(const char *name, int port, struct smtp_host **hv, size_t *n,
    const char **why_r)
{
	struct dns_addr *a = NULL;
	size_t na = 0, i;
	enum dns_status s4 = DNS_NODATA, s6 = DNS_NODATA;
	const char *w4 = "", *w6 = "";
	struct dns_addr lit;

	/* An address literal needs no lookup. */
	memset(&lit, 0, sizeof(lit));
	{
		if (host_is_literal(name)) {
			lit.family = strchr(name, ':') != NULL ? AF_INET6 : AF_INET;
			snprintf(lit.text, sizeof(lit.text), "%s", name);
			host_add(hv, n, name, &lit, port);
			return DNS_OK;
		}
	}
	if (sconf.use_ipv4)
		s4 = dns_lookup_addr(sconf.dns, name, AF_INET, &a, &na, &w4);
	if (sconf.use_ipv6)
		s6 = dns_lookup_addr(sconf.dns, name, AF_INET6, &a, &na, &w6);
	for (i = 0; i < na && *n < (size_t)sconf.mx_address_limit; i++)
		host_add(hv, n, name, &a[i], port);
	free(a);
	if (na > 0)
		return DNS_OK;
	/* Nothing: a temporary failure of either family wins. */
	if (s4 == DNS_TEMPFAIL || s4 == DNS_BADANSWER) {
		*why_r = w4;
		return DNS_TEMPFAIL;
	}
	if (s6 == DNS_TEMPFAIL || s6 == DNS_BADANSWER) {
		*why_r = w6;
		return DNS_TEMPFAIL;
	}
	if (s4 == DNS_NXDOMAIN || s6 == DNS_NXDOMAIN) {
		*why_r = "Host not found";
		return DNS_NXDOMAIN;
	}
	*why_r = "No address associated with hostname";
	return DNS_NODATA;
}

int
smtp_find_hosts(struct smtp_msg *m, const char *nexthop, struct smtp_host **hosts_r,
    size_t *n_r)
{
	struct smtp_host *hv = NULL;
	struct dns_mx *mx = NULL;
	size_t n = 0, nmx = 0, i;
	enum dns_status st, worst = DNS_NODATA;
	const char *why = "";
	char *host = NULL, *text;
	int port, want_mx;

	*hosts_r = NULL;
	*n_r = 0;
	if (smtp_parse_nexthop(nexthop, sconf.port, &host, &port, &want_mx) < 0) {
		text = xasprintf("bad nexthop \"%s\"", nexthop);
		log_warnx("%s: %s", m->id, text);
		smtp_open_result(m, 4, "4.3.5", "none", text);
		free(text);
		return -1;
	}
	if (sconf.dns == NULL) {
		smtp_open_result(m, 4, "4.3.0", "none", "DNS resolver unavailable");
		free(host);
		return -1;
	}
	if (!want_mx) {
		st = host_addrs(host, port, &hv, &n, &why);
		if (st != DNS_OK) {
			text = xasprintf("Host or domain name not found. Name service error "
			    "for name=%s type=%s: %s", host, sconf.use_ipv4 ? "A" : "AAAA", why);
			smtp_open_result(m, st == DNS_TEMPFAIL ? 4 : 5,
			    st == DNS_TEMPFAIL ? "4.4.3" : "5.4.4", "none", text);
			free(text);
			free(host);
			return -1;
		}
		goto done;
	}
	st = dns_lookup_mx(sconf.dns, host, &mx, &nmx, &why);
	if (st == DNS_OK) {
		if (dns_mx_sort(mx, &nmx, NULL, NULL) == 1) {
			text = xasprintf("Domain %s does not accept mail (nullMX)", host);
			smtp_open_result(m, 5, "5.1.10", "none", text);
			free(text);
			dns_mx_free(mx, 1);
			free(host);
			return -1;
		}
		for (i = 0; i < nmx && n < (size_t)sconf.mx_address_limit; i++) {
			const char *w = "";

			st = host_addrs(mx[i].host, port, &hv, &n, &w);
			if (st == DNS_TEMPFAIL)
				worst = DNS_TEMPFAIL;
			if (st != DNS_OK)
				log_debug("%s: MX host %s: %s", m->id, mx[i].host, w);
		}
		if (n == 0) {
			/* Every MX host failed to resolve. */
			text = xasprintf("Host or domain name not found. Name service error "
			    "for name=%s type=A: %s", nmx > 0 ? mx[0].host : host,
			    worst == DNS_TEMPFAIL ? "Host not found, try again" :
			    "Host not found");
			smtp_open_result(m, worst == DNS_TEMPFAIL || nmx == 0 ? 4 : 5,
			    worst == DNS_TEMPFAIL || nmx == 0 ? "4.4.3" : "5.4.4", "none", text);
			free(text);
			dns_mx_free(mx, nmx);
			free(host);
			return -1;
		}
		dns_mx_free(mx, nmx);
		goto done;
	}
	if (st == DNS_NODATA) {
		/* No MX: the domain itself (RFC 5321 5.1 implicit MX). */
		st = host_addrs(host, port, &hv, &n, &why);
		if (st == DNS_OK)
			goto done;
		text = xasprintf("Host or domain name not found. Name service error for "
		    "name=%s type=A: %s", host, why);
	} else {
		text = xasprintf("Host or domain name not found. Name service error for "
		    "name=%s type=MX: %s", host, st == DNS_NXDOMAIN ? "Host not found" :
		    "Host not found, try again");
	}
	smtp_open_result(m, st == DNS_NXDOMAIN || st == DNS_NODATA ? 5 : 4,
	    st == DNS_NXDOMAIN || st == DNS_NODATA ? "5.4.4" : "4.4.3", "none", text);
	free(text);
	free(host);
	return -1;
done:
	free(host);
	*hosts_r = hv;
	*n_r = n;
	return 0;
}

int
smtp_find_lmtp_hosts(struct smtp_msg *m, const char *nexthop, struct smtp_host **hosts_r,
    size_t *n_r)
{
	struct smtpc_dest d;
	struct smtp_host *hv = NULL;
	enum dns_status st;
	const char *why = "";
	size_t n = 0;
	char *text;

	*hosts_r = NULL;
	*n_r = 0;
	if (smtpc_lmtp_dest(nexthop, sconf.port, &d) < 0) {
		text = xasprintf("bad LMTP nexthop \"%s\"", nexthop);
		log_warnx("%s: %s", m->id, text);
		smtp_open_result(m, 4, "4.3.5", "none", text);
		free(text);
		return -1;
	}
	if (d.kind == SMTPC_DEST_UNIX) {
		/* Postfix logs a socket as relay=myhostname[path]. */
		hv = xcalloc(1, sizeof(*hv));
		hv->name = xstrdup(sconf.local_name);
		snprintf(hv->addr, sizeof(hv->addr), "%s", d.path);
		hv->family = AF_UNIX;
		*hosts_r = hv;
		*n_r = 1;
		smtpc_dest_free(&d);
		return 0;
	}
	st = DNS_TEMPFAIL;
	if (sconf.dns != NULL || host_is_literal(d.host))
		st = host_addrs(d.host, d.port, &hv, &n, &why);
	else
		why = "DNS resolver unavailable";
	if (st != DNS_OK) {
		text = xasprintf("Host or domain name not found. Name service error "
		    "for name=%s type=%s: %s", d.host, sconf.use_ipv4 ? "A" : "AAAA", why);
		smtp_open_result(m, st == DNS_TEMPFAIL ? 4 : 5,
		    st == DNS_TEMPFAIL ? "4.4.3" : "5.4.4", "none", text);
		free(text);
		smtp_hosts_free(hv, n);
		smtpc_dest_free(&d);
		return -1;
	}
	smtpc_dest_free(&d);
	*hosts_r = hv;
	*n_r = n;
	return 0;
}
