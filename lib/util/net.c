/*
 * net - sockets: listening, connecting, addresses, CIDR matching.
 *
 * Invariants: every socket made here is close-on-exec; listeners are
 * non-blocking, connected sockets are returned blocking. Address text is
 * numeric only (no reverse DNS here). IPv4-mapped IPv6 peers are reported
 * and matched as plain IPv4, so "127.0.0.0/8" covers "::ffff:127.0.0.1".
 * Trusts: the caller's configuration strings only as far as their syntax
 * is checked here; a bad network list is an error (fail closed), never a
 * silent non-match.
 * Limits: net_connect_inet resolves names with blocking getaddrinfo (use it
 * for configured hosts, not for mail routing, which goes through c-ares).
 * CIDR entries with host bits set ("10.1.2.3/8") are accepted and masked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/net.h"
#include "util/strv.h"

int
net_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

int
net_set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Split "host:port", "[v6]:port" or "port" into fresh strings; host NULL
 * for "all addresses". 0, or -1 on bad syntax. */
static int
split_hostport(const char *hp, char **host, char **port)
{
	const char *colon, *end;

	*host = *port = NULL;
	if (*hp == '[') {
		if ((end = strchr(hp, ']')) == NULL || end[1] != ':' || end[2] == '\0')
			return -1;
		*host = xstrndup(hp + 1, (size_t)(end - hp - 1));
		*port = xstrdup(end + 2);
		return 0;
	}
	if ((colon = strrchr(hp, ':')) == NULL) {
		if (*hp == '\0')
			return -1;
		*port = xstrdup(hp);
		return 0;
	}
	/* More than one colon without brackets: ambiguous IPv6. */
	if (strchr(hp, ':') != colon || colon[1] == '\0')
		return -1;
	if (colon > hp && !(colon - hp == 1 && hp[0] == '*'))
		*host = xstrndup(hp, (size_t)(colon - hp));
	*port = xstrdup(colon + 1);
	return 0;
}

int
net_interfaces(const char *v, const char **addr_r, int *family_r)
{
	static char one[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t len;

	while (*v == ' ' || *v == '\t')
		v++;
	len = strcspn(v, " \t");
	if (v[len + strspn(v + len, " \t")] != '\0' || len >= sizeof(one))
		return -1;      /* more than one word, or too long to be an address */
	memcpy(one, v, len);
	one[len] = '\0';
	*addr_r = NULL;
	*family_r = AF_UNSPEC;
	if (len == 0 || strcasecmp(one, "all") == 0)
		return 0;
	if (strcasecmp(one, "loopback-only") == 0) {
		*addr_r = "127.0.0.1";
		*family_r = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET, one, bin) == 1)
		*family_r = AF_INET;
	else if (inet_pton(AF_INET6, one, bin) == 1)
		*family_r = AF_INET6;
	else
		return -1;
	*addr_r = one;
	return 0;
}

int
net_listen_inet(const char *hostport, int backlog, char **err_r)
{
	struct addrinfo hints, *res = NULL, *ai;
	char *host, *port;
	int fd = -1, rc, one = 1, saved = 0;

	*err_r = NULL;
	if (split_hostport(hostport, &host, &port) < 0) {
		*err_r = xasprintf("bad listen address \"%s\" (want host:port, [v6]:port or port)",
		    hostport);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	/* A bare port means every IPv4 address, as inet_interfaces = all. */
	hints.ai_family = host == NULL ? AF_INET : AF_UNSPEC;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		*err_r = xasprintf("%s: %s", hostport, gai_strerror(rc));
		free(host);
		free(port);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, backlog) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		*err_r = xasprintf("cannot listen on %s: %s", hostport,
		    strerror(saved != 0 ? saved : EADDRNOTAVAIL));
	free(host);
	free(port);
	return fd;
}

int
net_listen_backlog(void)
{
	char buf[32];
	long v = 0;
	ssize_t n;
	int fd;

	fd = open("/proc/sys/net/core/somaxconn", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			v = strtol(buf, NULL, 10);
		}
	}
	/* The kernel clamps a larger value to somaxconn itself. */
	if (v < NET_LISTEN_BACKLOG_MIN || v > 65535)
		v = v > 65535 ? 65535 : NET_LISTEN_BACKLOG_MIN;
	return (int)v;
}

/* A listening UNIX socket's accept queue from the kernel's socket
 * diagnostics (unix_diag: for a listener, UNIX_DIAG_RQLEN's rqueue is
 * the number of connections waiting), asked by the socket's inode.
 * master asks on every status report of a SINGLE service's child: the
 * netlink socket is opened once and kept (close-on-exec); requests carry
 * a sequence number, so an answer left over from an interrupted call is
 * skipped, and any doubt closes it (the next call opens a fresh one). */
static int
unix_listen_pending(int fd)
{
	static int nl = -1;
	static uint32_t seq;
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} rq;
	union {
		struct nlmsghdr nlh;
		char buf[1024];
	} rp;
	struct sockaddr_nl sa;
	struct nlmsghdr *h;
	struct stat st;
	ssize_t n;
	int pending = -1, tries, answered = 0;

	if (fstat(fd, &st) < 0)
		return -1;
	if (nl < 0)
		nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	memset(&rq, 0, sizeof(rq));
	rq.nlh.nlmsg_len = sizeof(rq);
	rq.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	rq.nlh.nlmsg_flags = NLM_F_REQUEST;
	rq.nlh.nlmsg_seq = ++seq;
	rq.req.sdiag_family = AF_UNIX;
	rq.req.udiag_states = ~0U;
	rq.req.udiag_ino = (uint32_t)st.st_ino;
	rq.req.udiag_show = UDIAG_SHOW_RQLEN;
	rq.req.udiag_cookie[0] = rq.req.udiag_cookie[1] = ~0U;   /* no cookie */
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (sendto(nl, &rq, sizeof(rq), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	/* One datagram answers each request; older ones go first. */
	for (tries = 0; tries < 4 && !answered; tries++) {
		n = recv(nl, &rp, sizeof(rp), 0);
		if (n <= 0 || !NLMSG_OK(&rp.nlh, (size_t)n))
			break;
		if (rp.nlh.nlmsg_seq != seq)
			continue;
		answered = 1;
		for (h = &rp.nlh; n > 0 && NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct unix_diag_msg *m = NLMSG_DATA(h);
			struct rtattr *a;
			unsigned int alen;

			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
			    m->udiag_ino != (uint32_t)st.st_ino)
				break;
			alen = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
			for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
				if (a->rta_type == UNIX_DIAG_RQLEN &&
				    RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen))
					pending = (int)((struct unix_diag_rqlen *)RTA_DATA(a))->udiag_rqueue;
			break;
		}
	}
out:
	if (pending < 0) {
		close(nl);
		nl = -1;
	}
	return pending;
}

int
net_listen_pending(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_UNIX)
		return unix_listen_pending(fd);
	if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
		struct tcp_info ti;

		/* For a listener the kernel reports its accept queue in
		 * tcpi_unacked (and the backlog in tcpi_sacked). */
		len = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
		    ti.tcpi_state != TCP_LISTEN)
			return -1;
		return (int)ti.tcpi_unacked;
	}
	return -1;
}

int
net_listen_unix(const char *path, int mode, int backlog, char **err_r)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t omask;
	int fd, rc, saved;

	*err_r = NULL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*err_r = xasprintf("socket path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*err_r = xasprintf("%s exists and is not a socket", path);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			*err_r = xasprintf("cannot remove stale socket %s: %s", path,
			    strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err_r = xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	/* Create the node with at most mode, so there is no window in which
	 * it is more open than asked; chmod then sets it exactly. */
	omask = umask((mode_t)(~mode & 0777));
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	saved = errno;
	umask(omask);
	if (rc < 0) {
		*err_r = xasprintf("cannot bind %s: %s", path, strerror(saved));
		close(fd);
		return -1;
	}
	if (chmod(path, (mode_t)mode) < 0 || listen(fd, backlog) < 0) {
		*err_r = xasprintf("cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Connect fd (non-blocking) to sa within deadline; leaves fd blocking.
 * 0, or -1 with errno (ETIMEDOUT). */
static int
connect_wait(int fd, const struct sockaddr *sa, socklen_t salen, int64_t deadline,
    int blocking)
{
	struct pollfd pfd;
	socklen_t elen;
	int64_t left;
	int err, t, rc;

	for (;;) {
		if (connect(fd, sa, salen) == 0)
			return blocking ? net_set_nonblock(fd, 0) : 0;
		if (errno == EINTR)
			continue;
		/* A full AF_UNIX backlog says EAGAIN and cannot be polled
		 * for: retry for a while. */
		if (errno == EAGAIN) {
			if (deadline >= 0 && mono_ms() >= deadline) {
				errno = ETIMEDOUT;
				return -1;
			}
			poll(NULL, 0, 10);
			continue;
		}
		if (errno != EINPROGRESS)
			return -1;
		break;
	}
	for (;;) {
		t = -1;
		if (deadline >= 0) {
			left = deadline - mono_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			t = left > 1000000 ? 1000000 : (int)left;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		rc = poll(&pfd, 1, t);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -1;
		if (rc > 0)
			break;
	}
	elen = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return blocking ? net_set_nonblock(fd, 0) : 0;
}

static int
connect_unix(const char *path, int timeout_ms, int blocking)
{
	struct sockaddr_un sun;
	int fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect_wait(fd, (struct sockaddr *)&sun, sizeof(sun),
	    timeout_ms < 0 ? -1 : mono_ms() + timeout_ms, blocking) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
net_connect_unix(const char *path, int timeout_ms)
{
	return connect_unix(path, timeout_ms, 1);
}

int
net_connect_unix_nb(const char *path, int timeout_ms)
{
	return connect_unix(path, timeout_ms, 0);
}

int
net_connect_inet(const char *host, const char *port, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, saved = EHOSTUNREACH, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		errno = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect_wait(fd, ai->ai_addr, ai->ai_addrlen, deadline, 1) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
		if (saved == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		errno = saved;
	return fd;
}

int
net_sockaddr_text(const struct sockaddr_storage *ss, socklen_t len, char *addr,
    size_t addrlen, int *port)
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;
	struct in_addr a4;
	const char *p = NULL;

	if (port != NULL)
		*port = 0;
	if (addrlen == 0) {
		errno = ENOSPC;
		return -1;
	}
	switch (ss->ss_family) {
	case AF_INET:
		s4 = (const struct sockaddr_in *)ss;
		p = inet_ntop(AF_INET, &s4->sin_addr, addr, (socklen_t)addrlen);
		if (port != NULL)
			*port = ntohs(s4->sin_port);
		break;
	case AF_INET6:
		s6 = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(&a4, s6->sin6_addr.s6_addr + 12, 4);
			p = inet_ntop(AF_INET, &a4, addr, (socklen_t)addrlen);
		} else {
			p = inet_ntop(AF_INET6, &s6->sin6_addr, addr, (socklen_t)addrlen);
		}
		if (port != NULL)
			*port = ntohs(s6->sin6_port);
		break;
	case AF_UNIX:
		/* A local client, as Postfix reports it. */
		if (addrlen < sizeof("127.0.0.1")) {
			errno = ENOSPC;
			return -1;
		}
		strcpy(addr, "127.0.0.1");
		return 0;
	default:
		(void)len;
		errno = EAFNOSUPPORT;
		return -1;
	}
	return p != NULL ? 0 : -1;
}

int
net_peer_addr(int fd, char *addr, size_t addrlen, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return net_sockaddr_text(&ss, len, addr, addrlen, port);
}

int
net_local_addr(int fd, char *addr, size_t addrlen, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return net_sockaddr_text(&ss, len, addr, addrlen, port);
}

/* ---- CIDR ---- */

int
net_addr_parse(const char *s, size_t n, struct net_addr *ip, int unmap)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	char *pct;

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(ip, 0, sizeof(*ip));
	if (strchr(tmp, ':') == NULL) {
		ip->family = AF_INET;
		return inet_pton(AF_INET, tmp, ip->b) == 1 ? 0 : -1;
	}
	if ((pct = strchr(tmp, '%')) != NULL)
		*pct = '\0';
	ip->family = AF_INET6;
	if (inet_pton(AF_INET6, tmp, ip->b) != 1)
		return -1;
	if (unmap && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)ip->b)) {
		memmove(ip->b, ip->b + 12, 4);
		memset(ip->b + 4, 0, 12);
		ip->family = AF_INET;
	}
	return 0;
}

int
net_prefix_match(const struct net_addr *a, const struct net_addr *net,
    unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (a->family != net->family)
		return 0;
	if (memcmp(a->b, net->b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a->b[full] & mask) == (net->b[full] & mask);
}

int
net_prefix_parse(const char *e, int v4_brackets, struct net_addr *net,
    unsigned *bits)
{
	const char *slash = strrchr(e, '/'), *p;
	size_t alen = slash != NULL ? (size_t)(slash - e) : strlen(e);
	unsigned max, v = 0;

	if (!v4_brackets && e[0] == '[' && strchr(e, ':') == NULL)
		return -1;
	if (net_addr_parse(e, alen, net, 0) < 0)
		return -1;
	max = net->family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		*bits = max;
		return 0;
	}
	p = slash + 1;
	if (*p == '\0' || strlen(p) > 3)
		return -1;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > max)
		return -1;
	*bits = v;
	return 0;
}

int
net_cidr_match(const char *addr, const char *list, char **err_r)
{
	struct net_addr a, net;
	char **v;
	size_t i;
	unsigned bits;
	int have_addr, match = 0;

	if (err_r != NULL)
		*err_r = NULL;
	have_addr = addr != NULL && net_addr_parse(addr, strlen(addr), &a, 1) == 0;
	v = strv_split_list(list != NULL ? list : "");
	/* Check every entry, even after a match, so that a typo is reported
	 * at once rather than when an unlucky client shows up. */
	for (i = 0; v[i] != NULL; i++) {
		if (net_prefix_parse(v[i], 0, &net, &bits) < 0) {
			if (err_r != NULL)
				*err_r = xasprintf("bad network address or CIDR block \"%s\"",
				    v[i]);
			strv_free(&v);
			return -1;
		}
		if (have_addr && !match && net_prefix_match(&a, &net, bits))
			match = 1;
		/* A v4-mapped entry should still match an IPv4 client. */
		if (have_addr && !match && net.family == AF_INET6 && a.family == AF_INET &&
		    IN6_IS_ADDR_V4MAPPED((struct in6_addr *)net.b) && bits >= 96) {
			struct net_addr n4;

			memset(&n4, 0, sizeof(n4));
			n4.family = AF_INET;
			memcpy(n4.b, net.b + 12, 4);
			if (net_prefix_match(&a, &n4, bits - 96))
				match = 1;
		}
	}
	strv_free(&v);
	return match;
}
