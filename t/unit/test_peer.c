/*
 * test_peer - the pure parts of smtpd's client name lookup: the PTR
 * query name, which PTR answers are usable names, and the forward
 * confirmation (the name's addresses must hold the client's).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mail/peer.h"

START_TEST(ptr_query)
{
	char q[128];

	ck_assert_int_eq(peer_ptr_query("192.0.2.10", q, sizeof(q)), 0);
	ck_assert_str_eq(q, "10.2.0.192.in-addr.arpa");
	/* a v4-mapped client is asked about as IPv4 */
	ck_assert_int_eq(peer_ptr_query("::ffff:192.0.2.10", q, sizeof(q)), 0);
	ck_assert_str_eq(q, "10.2.0.192.in-addr.arpa");
	ck_assert_int_eq(peer_ptr_query("2001:db8::1", q, sizeof(q)), 0);
	ck_assert_str_eq(q, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "8.b.d.0.1.0.0.2.ip6.arpa");
	ck_assert_int_eq(peer_ptr_query("unknown", q, sizeof(q)), -1);
	ck_assert_int_eq(peer_ptr_query("192.0.2.10", q, 20), -1);
}
END_TEST

START_TEST(name_valid)
{
	static const struct {
		const char *name;
		int ok;
	} t[] = {
		{ "mail.example.org", 1 },
		{ "mail.example.org.", 1 },
		{ "MX-1.Example.ORG", 1 },
		{ "host_1.example", 1 },
		{ "localhost", 1 },
		{ "1.2.3.4", 0 },           /* an address posing as a name */
		{ "1.2.3.4.", 0 },
		{ "", 0 },
		{ ".", 0 },
		{ "a..b", 0 },
		{ ".a.b", 0 },
		{ "-a.b", 0 },
		{ "a-.b", 0 },
		{ "a.b-", 0 },
		{ "a b.example", 0 },
		{ "a\nb.example", 0 },
		{ "[192.0.2.1]", 0 },
		{ "a/b.example", 0 },
	};
	char longlab[80], longname[300];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(peer_name_valid(t[i].name) == t[i].ok, "%s: want %d",
		    t[i].name, t[i].ok);
	memset(longlab, 'a', 64);
	strcpy(longlab + 64, ".example");
	ck_assert_int_eq(peer_name_valid(longlab), 0);
	strcpy(longlab + 63, ".example");   /* 63 octets: the longest label */
	ck_assert_int_eq(peer_name_valid(longlab), 1);
	for (size_t i = 0; i < 257; i++)
		longname[i] = i % 2 ? '.' : 'a';
	longname[257] = '\0';   /* 257 octets */
	ck_assert_int_eq(peer_name_valid(longname), 0);
	longname[255] = '\0';
	ck_assert_int_eq(peer_name_valid(longname), 1);
}
END_TEST

START_TEST(addr_match)
{
	char *v4[] = { "192.0.2.9", "192.0.2.10", NULL };
	char *v6[] = { "2001:db8:0:0::1", NULL };
	char *junk[] = { "not-an-address", "", NULL };
	char *none[] = { NULL };

	ck_assert_int_eq(peer_addr_match("192.0.2.10", v4), 1);
	ck_assert_int_eq(peer_addr_match("192.0.2.11", v4), 0);
	ck_assert_int_eq(peer_addr_match("::ffff:192.0.2.10", v4), 1);
	ck_assert_int_eq(peer_addr_match("2001:db8::1", v6), 1);   /* text forms differ */
	ck_assert_int_eq(peer_addr_match("2001:db8::2", v6), 0);
	ck_assert_int_eq(peer_addr_match("192.0.2.10", v6), 0);
	ck_assert_int_eq(peer_addr_match("192.0.2.10", junk), 0);
	ck_assert_int_eq(peer_addr_match("192.0.2.10", none), 0);
	ck_assert_int_eq(peer_addr_match("192.0.2.10", NULL), 0);
	ck_assert_int_eq(peer_addr_match("unknown", v4), 0);
}
END_TEST

START_TEST(hosts_name)
{
	static const char hosts[] =
	    "# comment 192.0.2.1 commented.example\n"
	    "127.0.0.1\tLocalHost localhost.localdomain\r\n"
	    "127.0.0.1 second-line\n"
	    "192.0.2.7   # nothing but a comment\n"
	    "192.0.2.8 1.2.3.4\n"
	    "192.0.2.9 bad..name good.example\n"
	    "::1 ip6-localhost ip6-loopback\n"
	    "garbage\n"
	    "192.0.2.10 trailing.example.";
	char name[256];

	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "127.0.0.1",
	    name, sizeof(name)), 1);
	ck_assert_str_eq(name, "localhost");
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "::ffff:127.0.0.1",
	    name, sizeof(name)), 1);
	ck_assert_str_eq(name, "localhost");
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "::1",
	    name, sizeof(name)), 1);
	ck_assert_str_eq(name, "ip6-localhost");
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "192.0.2.10",
	    name, sizeof(name)), 1);
	ck_assert_str_eq(name, "trailing.example");
	/* commented, empty, numeric or invalid names are no names */
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "192.0.2.1",
	    name, sizeof(name)), 0);
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "192.0.2.7",
	    name, sizeof(name)), 0);
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "192.0.2.8",
	    name, sizeof(name)), 0);
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "192.0.2.9",
	    name, sizeof(name)), 0);
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "192.0.2.99",
	    name, sizeof(name)), 0);
	/* too small a buffer is no answer, not a truncated name */
	ck_assert_int_eq(peer_hosts_name(hosts, sizeof(hosts) - 1, "127.0.0.1",
	    name, 5), 0);
	/* bounded by len, not by a NUL */
	ck_assert_int_eq(peer_hosts_name(hosts, 10, "127.0.0.1", name, sizeof(name)), 0);
}
END_TEST

static Suite *
peer_suite(void)
{
	Suite *s = suite_create("peer");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, ptr_query);
	tcase_add_test(tc, name_valid);
	tcase_add_test(tc, addr_match);
	tcase_add_test(tc, hosts_name);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(peer_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
