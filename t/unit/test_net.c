/* Unit tests for util/net: CIDR matching table, listen/connect basics. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/net.h"

static const struct {
	const char *addr;
	const char *list;
	int want;
} cidr_cases[] = {
	{ "127.0.0.1", "127.0.0.0/8", 1 },
	{ "127.255.255.255", "127.0.0.0/8", 1 },
	{ "128.0.0.1", "127.0.0.0/8", 0 },
	{ "192.168.1.5", "192.168.1.5", 1 },
	{ "192.168.1.6", "192.168.1.5", 0 },
	{ "192.168.1.6", "10.0.0.0/8, 192.168.1.0/24", 1 },
	{ "192.168.1.6", "10.0.0.0/8 192.168.1.4/30", 1 },
	{ "192.168.1.8", "10.0.0.0/8\t192.168.1.4/30", 0 },
	{ "10.1.2.3", "10.0.0.0/9", 1 },
	{ "10.128.2.3", "10.0.0.0/9", 0 },
	{ "8.8.8.8", "0.0.0.0/0", 1 },
	{ "8.8.8.8", "", 0 },
	{ "10.9.9.9", "10.1.2.3/8", 1 },           /* host bits masked */
	{ "::1", "[::1]/128", 1 },
	{ "::1", "::1", 1 },
	{ "::1", "[::1]", 1 },
	{ "::2", "[::1]/128", 0 },
	{ "[::1]", "::1/128", 1 },
	{ "2001:db8::5", "[2001:db8::]/32", 1 },
	{ "2001:db9::5", "[2001:db8::]/32", 0 },
	{ "2001:db8:8000::1", "2001:db8::/33", 0 },
	{ "2001:db8:7fff::1", "2001:db8::/33", 1 },
	{ "fe80::1%eth0", "fe80::/10", 1 },
	{ "::", "::/0", 1 },
	{ "127.0.0.1", "::/0", 0 },                 /* families do not mix */
	{ "::1", "0.0.0.0/0", 0 },
	{ "::ffff:127.0.0.1", "127.0.0.0/8", 1 },   /* v4-mapped */
	{ "127.0.0.1", "[::ffff:127.0.0.0]/104", 1 },
	{ "not-an-address", "127.0.0.0/8", 0 },
	{ "", "127.0.0.0/8", 0 },
	{ "127.0.0.1", "127.0.0.0/8 [::1]/128, 192.168.1.5", 1 },
	{ "::1", "127.0.0.0/8 [::1]/128, 192.168.1.5", 1 },
	{ "192.168.1.5", "127.0.0.0/8 [::1]/128, 192.168.1.5", 1 },
	/* Syntax errors, reported even when an earlier entry matched. */
	{ "127.0.0.1", "127.0.0.0/33", -1 },
	{ "127.0.0.1", "127.0.0.0/", -1 },
	{ "127.0.0.1", "127.0.0.0/8x", -1 },
	{ "127.0.0.1", "127.0.0.0/-1", -1 },
	{ "127.0.0.1", "127.0.0.0/0008", -1 },
	{ "127.0.0.1", "127.0.0.0/8 127.1", -1 },
	{ "127.0.0.1", "127.0.0.256", -1 },
	{ "127.0.0.1", "localhost", -1 },
	{ "127.0.0.1", "[127.0.0.1]", -1 },
	{ "::1", "[::1/128]", -1 },
	{ "::1", "[::1", -1 },
	{ "::1", "::1/129", -1 },
	{ "::1", ":::1", -1 },
	{ "::1", "/8", -1 },
	{ "::1", "!::1", -1 },
};

START_TEST(test_cidr)
{
	char *err = NULL;
	int got = net_cidr_match(cidr_cases[_i].addr, cidr_cases[_i].list, &err);

	ck_assert_msg(got == cidr_cases[_i].want, "addr \"%s\" list \"%s\": got %d want %d",
	    cidr_cases[_i].addr, cidr_cases[_i].list, got, cidr_cases[_i].want);
	if (got < 0)
		ck_assert_ptr_nonnull(err);
	else
		ck_assert_ptr_null(err);
	free(err);
}
END_TEST

/* accept() on a listener whose client has just connected (up to 1 s). */
static int
accept_wait(int lfd, struct sockaddr_storage *ss, socklen_t *len)
{
	socklen_t want = len != NULL ? *len : 0;
	int afd = -1;

	for (int i = 0; i < 200 && afd < 0; i++) {
		if (len != NULL)
			*len = want;
		afd = accept(lfd, (struct sockaddr *)ss, len);
		if (afd < 0)
			usleep(5000);
	}
	ck_assert_int_ge(afd, 0);
	return afd;
}

/* inet_interfaces: all, loopback-only, or one numeric address. */
START_TEST(test_interfaces)
{
	static const struct { const char *in, *addr; int family; } ok[] = {
		{ "", NULL, AF_UNSPEC }, { "all", NULL, AF_UNSPEC },
		{ " ALL ", NULL, AF_UNSPEC },
		{ "loopback-only", "127.0.0.1", AF_INET },
		{ "192.0.2.7", "192.0.2.7", AF_INET },
		{ " 2001:db8::1 ", "2001:db8::1", AF_INET6 },
	};
	static const char *const bad[] = {
		"127.0.0.1, 127.0.0.2", "127.0.0.1 ::1", "mail.example.com",
		"192.0.2.300", "[::1]", "localhost",
		"11111111111111111111111111111111111111111111111111111111",
	};
	const char *addr;
	int family;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(net_interfaces(ok[i].in, &addr, &family) == 0, "%s", ok[i].in);
		if (ok[i].addr == NULL)
			ck_assert_ptr_null(addr);
		else
			ck_assert_str_eq(addr, ok[i].addr);
		ck_assert_int_eq(family, ok[i].family);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(net_interfaces(bad[i], &addr, &family) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(test_listen_connect_inet)
{
	char addr[64], *err = NULL;
	int lfd, cfd, afd, port = 0, lport = 0;
	char portstr[16];

	lfd = net_listen_inet("127.0.0.1:0", 5, &err);
	ck_assert_msg(lfd >= 0, "listen: %s", err ? err : "?");
	ck_assert_int_eq(net_local_addr(lfd, addr, sizeof(addr), &lport), 0);
	ck_assert_str_eq(addr, "127.0.0.1");
	ck_assert_int_gt(lport, 0);
	snprintf(portstr, sizeof(portstr), "%d", lport);
	cfd = net_connect_inet("127.0.0.1", portstr, 2000);
	ck_assert_int_ge(cfd, 0);
	afd = accept_wait(lfd, NULL, NULL);
	ck_assert_int_eq(net_peer_addr(afd, addr, sizeof(addr), &port), 0);
	ck_assert_str_eq(addr, "127.0.0.1");
	ck_assert_int_gt(port, 0);
	close(afd);
	close(cfd);
	close(lfd);
}
END_TEST

START_TEST(test_listen_bad)
{
	static const char *bad[] = { "", "::1:25", "[::1]", "[::1]25", "host:", "1.2.3.4:nosuchservice" };
	char *err;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		ck_assert_msg(net_listen_inet(bad[i], 5, &err) == -1, "\"%s\" accepted", bad[i]);
		ck_assert_ptr_nonnull(err);
		free(err);
	}
}
END_TEST

/* Never below the floor, never above what listen() can take. */
START_TEST(test_listen_backlog)
{
	int b = net_listen_backlog();

	ck_assert_int_ge(b, NET_LISTEN_BACKLOG_MIN);
	ck_assert_int_le(b, 65535);
}
END_TEST

/* The text of an address accept() returned, as net_peer_addr() gives
 * it for the same connection: IPv4, IPv6, v4-mapped IPv6 (as IPv4), a
 * UNIX peer (as 127.0.0.1, the way Postfix reports a local client). */
START_TEST(test_sockaddr_text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_un *su = (struct sockaddr_un *)&ss;
	char addr[64], small[4], *err = NULL, portstr[16];
	int port = -1, lfd, cfd, afd, lport = 0, pport = 0;
	socklen_t len;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(2525);
	ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.7", &s4->sin_addr), 1);
	ck_assert_int_eq(net_sockaddr_text(&ss, sizeof(*s4), addr, sizeof(addr), &port), 0);
	ck_assert_str_eq(addr, "192.0.2.7");
	ck_assert_int_eq(port, 2525);
	ck_assert_int_eq(net_sockaddr_text(&ss, sizeof(*s4), small, sizeof(small), NULL), -1);

	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(587);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::25", &s6->sin6_addr), 1);
	ck_assert_int_eq(net_sockaddr_text(&ss, sizeof(*s6), addr, sizeof(addr), &port), 0);
	ck_assert_str_eq(addr, "2001:db8::25");
	ck_assert_int_eq(port, 587);
	ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:198.51.100.1", &s6->sin6_addr), 1);
	ck_assert_int_eq(net_sockaddr_text(&ss, sizeof(*s6), addr, sizeof(addr), NULL), 0);
	ck_assert_str_eq(addr, "198.51.100.1");

	memset(&ss, 0, sizeof(ss));
	su->sun_family = AF_UNIX;
	ck_assert_int_eq(net_sockaddr_text(&ss, sizeof(sa_family_t), addr, sizeof(addr), NULL), 0);
	ck_assert_str_eq(addr, "127.0.0.1");

	/* What accept4 fills in reads as getpeername's does. */
	lfd = net_listen_inet("127.0.0.1:0", 5, &err);
	ck_assert_msg(lfd >= 0, "listen: %s", err ? err : "?");
	ck_assert_int_eq(net_local_addr(lfd, addr, sizeof(addr), &lport), 0);
	snprintf(portstr, sizeof(portstr), "%d", lport);
	cfd = net_connect_inet("127.0.0.1", portstr, 2000);
	ck_assert_int_ge(cfd, 0);
	len = sizeof(ss);
	afd = accept_wait(lfd, &ss, &len);
	ck_assert_int_eq(net_sockaddr_text(&ss, len, addr, sizeof(addr), &port), 0);
	ck_assert_int_eq(net_peer_addr(afd, small, 1, NULL), -1);
	{
		char peer[64];

		ck_assert_int_eq(net_peer_addr(afd, peer, sizeof(peer), &pport), 0);
		ck_assert_str_eq(addr, peer);
		ck_assert_int_eq(port, pport);
	}
	close(afd);
	close(cfd);
	close(lfd);
}
END_TEST

START_TEST(test_unix)
{
	char dir[] = "/tmp/postern-net-XXXXXX", path[128], *err = NULL;
	struct stat st;
	int lfd, cfd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	lfd = net_listen_unix(path, 0660, 5, &err);
	ck_assert_msg(lfd >= 0, "listen: %s", err ? err : "?");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0660);
	cfd = net_connect_unix(path, 1000);
	ck_assert_int_ge(cfd, 0);
	close(cfd);
	close(lfd);
	/* The stale socket is replaced. */
	lfd = net_listen_unix(path, 0600, 5, &err);
	ck_assert_int_ge(lfd, 0);
	close(lfd);
	unlink(path);
	ck_assert_int_eq(net_connect_unix(path, 100), -1);
	rmdir(dir);
}
END_TEST

/* What master reads to start one child per waiting connection: the
 * accept queue of a UNIX and of a TCP listener, as clients queue and
 * are taken. */
START_TEST(test_listen_pending)
{
	char dir[] = "/tmp/postern-net-XXXXXX", path[128], portstr[16], addr[64];
	char *err = NULL;
	int lfd, cfd[3], afd, i, lport = 0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	lfd = net_listen_unix(path, 0600, 16, &err);
	ck_assert_msg(lfd >= 0, "listen: %s", err ? err : "?");
	ck_assert_int_eq(net_listen_pending(lfd), 0);
	for (i = 0; i < 3; i++) {
		cfd[i] = net_connect_unix(path, 1000);
		ck_assert_int_ge(cfd[i], 0);
	}
	ck_assert_int_eq(net_listen_pending(lfd), 3);
	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(net_listen_pending(lfd), 2);
	close(afd);
	for (i = 0; i < 3; i++)
		close(cfd[i]);
	close(lfd);
	unlink(path);
	rmdir(dir);

	lfd = net_listen_inet("127.0.0.1:0", 16, &err);
	ck_assert_msg(lfd >= 0, "listen: %s", err ? err : "?");
	ck_assert_int_eq(net_local_addr(lfd, addr, sizeof(addr), &lport), 0);
	snprintf(portstr, sizeof(portstr), "%d", lport);
	ck_assert_int_eq(net_listen_pending(lfd), 0);
	for (i = 0; i < 2; i++) {
		cfd[i] = net_connect_inet("127.0.0.1", portstr, 2000);
		ck_assert_int_ge(cfd[i], 0);
	}
	/* The handshake completes in the kernel; wait for it, bounded. */
	for (i = 0; i < 200 && net_listen_pending(lfd) < 2; i++)
		usleep(5000);
	ck_assert_int_eq(net_listen_pending(lfd), 2);
	for (i = 0; i < 2; i++)
		close(cfd[i]);
	close(lfd);
}
END_TEST

static Suite *
net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_cidr, 0, (int)(sizeof(cidr_cases) / sizeof(cidr_cases[0])));
	tcase_add_test(tc, test_listen_connect_inet);
	tcase_add_test(tc, test_interfaces);
	tcase_add_test(tc, test_listen_bad);
	tcase_add_test(tc, test_sockaddr_text);
	tcase_add_test(tc, test_unix);
	tcase_add_test(tc, test_listen_backlog);
	tcase_add_test(tc, test_listen_pending);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(net_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
