/*
 * net - sockets: listening, connecting, addresses, CIDR matching.
 */
#ifndef POSTERN_NET_H
#define POSTERN_NET_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* hostport: "127.0.0.1:2525", "[::1]:25", "localhost:25", "25" (all
 * addresses). SO_REUSEADDR, non-blocking, close-on-exec. -1 and *err_r
 * (static or xasprintf'd, caller frees) on failure. */
int net_listen_inet(const char *hostport, int backlog, char **err_r);
/* inet_interfaces as Postern takes it: "all" (or empty), "loopback-only"
 * or one numeric IPv4/IPv6 address. Sets *addr_r to NULL (all),
 * "127.0.0.1" or the address (a static buffer: copy it); *family_r to AF_INET,
 * AF_INET6 or AF_UNSPEC (all). 0, or -1 for anything else (a list, a
 * host name). */
int net_interfaces(const char *v, const char **addr_r, int *family_r);
/* Unlinks a stale socket first; chmods to mode. */
int net_listen_unix(const char *path, int mode, int backlog, char **err_r);
/* The backlog to ask listen() for: the kernel's ceiling
 * (net.core.somaxconn), at least NET_LISTEN_BACKLOG_MIN, so a burst of
 * clients waits in the queue instead of being dropped. */
#define NET_LISTEN_BACKLOG_MIN 1024
int net_listen_backlog(void);
/* Connections waiting in a listening socket's accept queue (UNIX or
 * TCP), or -1 when the kernel does not say. */
int net_listen_pending(int fd);
/* Blocking connect with a timeout; the fd returned is blocking. */
int net_connect_unix(const char *path, int timeout_ms);
/* The same, but the fd returned stays non-blocking (saves two fcntl()s
 * for a caller that does its own waiting). */
int net_connect_unix_nb(const char *path, int timeout_ms);
int net_connect_inet(const char *host, const char *port, int timeout_ms);

int net_set_nonblock(int fd, int on);
int net_set_cloexec(int fd, int on);

/* Text form of the peer/local address ("127.0.0.1", "::1"); port may be NULL. */
int net_peer_addr(int fd, char *addr, size_t addrlen, int *port);
int net_local_addr(int fd, char *addr, size_t addrlen, int *port);
/* The same for an address already in hand (accept's). */
int net_sockaddr_text(const struct sockaddr_storage *ss, socklen_t len,
    char *addr, size_t addrlen, int *port);

/* An IP address in binary: 4 (AF_INET) or 16 (AF_INET6) bytes of b. */
struct net_addr {
	int family;
	unsigned char b[16];
};
/* n bytes of text: "a.b.c.d", "v6" or "v6%zone", optionally inside [];
 * with unmap, a v4-mapped IPv6 address becomes IPv4. 0 or -1. */
int net_addr_parse(const char *s, size_t n, struct net_addr *ip, int unmap);
/* "addr[/bits]"; without a /bits, all bits. Brackets around an IPv4
 * address only with v4_brackets (cidr tables allow them, mynetworks does
 * not). 0 or -1. */
int net_prefix_parse(const char *e, int v4_brackets, struct net_addr *net,
    unsigned *bits);
/* Are the first bits of a those of net (same family)? */
int net_prefix_match(const struct net_addr *a, const struct net_addr *net,
    unsigned bits);

/* Is addr (text form) inside any entry of list ("127.0.0.0/8 [::1]/128,
 * 192.168.1.5")? 1 yes, 0 no, -1 list syntax error (*err_r). */
int net_cidr_match(const char *addr, const char *list, char **err_r);

#endif
