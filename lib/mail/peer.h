/*
 * peer - the pure parts of smtpd's client name lookup (Postfix's
 * smtpd_peer.c behaviour): the PTR query name of an address, which PTR
 * names are usable, and the forward confirmation (does the name's A/AAAA
 * answer hold the client's address?). smtpd/peer.c does the DNS I/O.
 *
 * The outcome is a name status as Postfix keeps it, so that
 * reject_unknown_client_hostname and reject_unknown_reverse_client_hostname
 * can tell a temporary failure (450) from a permanent one
 * (unknown_client_reject_code).
 */
#ifndef POSTERN_PEER_H
#define POSTERN_PEER_H

#include <stddef.h>

enum peer_status {
	PEER_UNKNOWN = 0,   /* no name (no PTR, bad name, lookup off): permanent */
	PEER_OK,            /* name known (and, for the client name, confirmed) */
	PEER_TEMP,          /* a DNS failure: try again later */
	PEER_FORGED,        /* the name does not resolve back to the address */
};

/* "4.3.2.1.in-addr.arpa" or the ip6.arpa nibble name; 0, or -1 for an
 * address that is not one (or outlen too small). */
int peer_ptr_query(const char *addr, char *out, size_t outlen);
/* Is a PTR answer usable as a client name? A syntactically valid host
 * name (labels of letters, digits, '-' and '_', at most 63 octets each,
 * 255 in all), not an address in disguise ("1.2.3.4"). A trailing dot is
 * allowed. 1 yes, 0 no. */
int peer_name_valid(const char *name);
/* Does one of addrs (A or AAAA answers as text, NULL-terminated) equal
 * the client address? v4-mapped IPv6 clients compare as IPv4. 1 or 0. */
int peer_addr_match(const char *client, char *const *addrs);

/* The hosts file (text, len: /etc/hosts as read) names the client: 1 and
 * its first name for the address (lower case, valid per peer_name_valid)
 * in name, or 0. The line that names it also maps the name back, so a
 * hosts entry is confirmed by itself, as getnameinfo() then getaddrinfo()
 * with "files" first would find. */
int peer_hosts_name(const char *text, size_t len, const char *client,
    char *name, size_t namelen);

#endif
