/*
 * test_resolve - address classes, recipient existence, virtual alias
 * expansion (recursion, loops, limits) and transport routing, against a
 * configuration and tables built in a mkdtemp directory.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/resolve.h"

static char tmpdir[64];
static struct resolver *res;

static void
write_file(const char *name, const char *text)
{
	char path[200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void
build(const char *name, const char *text)
{
	char spec[256], *err = NULL;

	write_file(name, text);
	snprintf(spec, sizeof(spec), "lmdb:%s/%s", tmpdir, name);
	ck_assert_msg(map_build(spec, &err) == 0, "%s", err);
}

static const char virtual_src[] =
    "info@virt.org      alice@example.com, bob@example.com\n"
    "team@virt.org      info@virt.org carol@virt.org\n"
    "self@virt.org      self@virt.org, alice@example.com\n"
    "loop1@virt.org     loop2@virt.org\n"
    "loop2@virt.org     loop3@virt.org\n"
    "loop3@virt.org     loop1@virt.org\n"
    "short@virt.org     alice\n"
    "dup@virt.org       alice@example.com, ALICE@example.com, info@virt.org\n"
    "@alias.net         catchall@example.com\n"
    "alias.net          anything\n"
    "special@alias.net  bob@example.com\n"
    "empty@virt.org     ,\n"
    "webmaster@example.com  alice@example.com\n";

static const char vmailbox_src[] =
    "carol@virt.org   virt.org/carol/\n"
    "dave@other.org   other.org/dave/\n";

static const char transport_src[] =
    "special.com         smtp:[10.0.0.1]:2525\n"
    ".sub.com            relay:[gw.example.net]\n"
    "user@example.com    local:\n"
    "onlyhop.com         :[hop.example.net]\n"
    "carol@virt.org      lmtp:unix:/run/lmtp\n";

static void
setup(void)
{
	struct buf conf = BUF_INIT(0);
	char *err = NULL;
	int i;

	strcpy(tmpdir, "/tmp/test_resolve.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	log_open("test_resolve", "/dev/stderr");
	build("users", "alice x\nbob x\nuser x\n");
	build("virtual", virtual_src);
	build("vmailbox", vmailbox_src);
	build("transport", transport_src);
	{
		/* a chain longer than the nesting limit */
		struct buf b = BUF_INIT(0);

		for (i = 0; i < 30; i++)
			buf_printf(&b, "c%d@deep.org c%d@deep.org\n", i, i + 1);
		buf_printf(&b, "deep.org x\n");
		/* and one alias fanning out past the address limit */
		buf_printf(&b, "wide@deep.org");
		for (i = 0; i < 1100; i++)
			buf_printf(&b, "%s w%d@example.com", i ? "," : "", i);
		buf_printf(&b, "\n");
		build("virtual2", buf_cstr(&b));
		buf_free(&b);
	}
	buf_printf(&conf,
	    "myhostname = mail.example.com\n"
	    "mydestination = $myhostname, localhost,\n"
	    "    example.com, lmdb:%s/localdomains\n"
	    "recipient_delimiter = +\n"
	    "local_recipient_maps = lmdb:%s/users\n"
	    "virtual_alias_maps = lmdb:%s/virtual lmdb:%s/virtual2\n"
	    "virtual_mailbox_maps = lmdb:%s/vmailbox\n"
	    "transport_maps = lmdb:%s/transport\n",
	    tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	build("localdomains", "Table.Example x\n");
	write_file("postern.conf", buf_cstr(&conf));
	buf_free(&conf);
	ck_assert_msg(config_load(tmpdir, &err) == 0, "%s", err);
	res = resolver_open(&err);
	ck_assert_msg(res != NULL, "resolver_open: %s", err);
}

static void
teardown(void)
{
	char cmd[128];

	resolver_close(&res);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", tmpdir);
}

static const struct {
	const char *domain;
	enum rcpt_class want;
} classes[] = {
	{ "example.com", RCPT_LOCAL },
	{ "EXAMPLE.COM.", RCPT_LOCAL },
	{ "mail.example.com", RCPT_LOCAL },
	{ "localhost", RCPT_LOCAL },
	{ "table.example", RCPT_LOCAL },
	{ "", RCPT_LOCAL },
	{ "virt.org", RCPT_VIRTUAL },     /* from a key "...@virt.org" */
	{ "Other.Org", RCPT_VIRTUAL },
	{ "alias.net", RCPT_VIRTUAL },    /* virtual_alias_domains: domain key */
	{ "deep.org", RCPT_VIRTUAL },
	{ "sub.example.com", RCPT_RELAY },
	{ "gmail.com", RCPT_RELAY },
	{ "org", RCPT_RELAY },
	{ "[192.0.2.1]", RCPT_RELAY },
};

START_TEST(test_class)
{
	enum rcpt_class c;

	ck_assert_int_eq(resolver_class_ex(res, classes[_i].domain, &c), 0);
	ck_assert_msg(c == classes[_i].want, "%s: got %d want %d",
	    classes[_i].domain, c, classes[_i].want);
}
END_TEST

static const struct {
	const char *addr;
	int want;
} known[] = {
	{ "alice@example.com", 1 },
	{ "Alice@EXAMPLE.com", 1 },
	{ "alice+list@example.com", 1 },
	{ "alice", 1 },
	{ "\"alice\"@example.com", 1 },
	{ "nobody@example.com", 0 },
	{ "nobody+alice@example.com", 0 },
	{ "postmaster@example.com", 1 },
	{ "PostMaster@localhost", 1 },
	{ "webmaster@example.com", 1 },    /* only in virtual_alias_maps */
	{ "carol@virt.org", 1 },
	{ "carol+x@virt.org", 1 },
	{ "dave@other.org", 1 },
	{ "zed@virt.org", 0 },
	{ "info@virt.org", 1 },
	{ "anyone@alias.net", 1 },         /* catch-all */
	{ "someone@gmail.com", 1 },        /* relay: not ours to judge */
	{ "x@deep.org", 0 },
};

START_TEST(test_known)
{
	ck_assert_msg(resolver_rcpt_known(res, known[_i].addr) == known[_i].want,
	    "%s: got %d want %d", known[_i].addr,
	    resolver_rcpt_known(res, known[_i].addr), known[_i].want);
}
END_TEST

START_TEST(test_known_empty_local_maps)
{
	char *err = NULL;

	/* an empty local_recipient_maps accepts every local part */
	resolver_close(&res);
	config_set("local_recipient_maps", "");
	res = resolver_open(&err);
	ck_assert_ptr_nonnull(res);
	ck_assert_int_eq(resolver_rcpt_known(res, "nobody@example.com"), 1);
	ck_assert_int_eq(resolver_rcpt_known(res, "zed@virt.org"), 0);
}
END_TEST

static char *
joined(char **v)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		buf_printf(&b, "%s%s", i ? " " : "", v[i]);
	return buf_steal(&b);
}

static const struct {
	const char *addr;
	int want;
	const char *out;
} aliases[] = {
	{ "info@virt.org", 1, "alice@example.com bob@example.com" },
	{ "INFO@Virt.Org", 1, "alice@example.com bob@example.com" },
	{ "team@virt.org", 1, "alice@example.com bob@example.com carol@virt.org" },
	{ "self@virt.org", 1, "self@virt.org alice@example.com" },
	{ "short@virt.org", 1, "alice@mail.example.com" },
	{ "dup@virt.org", 1, "alice@example.com bob@example.com" },
	{ "info+tag@virt.org", 1, "alice+tag@example.com bob+tag@example.com" },
	{ "anyone@alias.net", 1, "catchall@example.com" },
	{ "special@alias.net", 1, "bob@example.com" },
	{ "webmaster@example.com", 1, "alice@example.com" },
	{ "carol@virt.org", 0, NULL },
	{ "alice@example.com", 0, NULL },
	{ "stranger@gmail.com", 0, NULL },
	{ "loop1@virt.org", -2, NULL },
	{ "loop2@virt.org", -2, NULL },
	{ "c0@deep.org", -2, NULL },
	{ "c15@deep.org", 1, "c30@deep.org" },
	{ "wide@deep.org", -2, NULL },
	{ "empty@virt.org", -2, NULL },
};

START_TEST(test_virtual_alias)
{
	char **out = (char **)1, *got;
	int r = resolver_virtual_alias(res, aliases[_i].addr, &out);

	ck_assert_msg(r == aliases[_i].want, "%s: got %d want %d", aliases[_i].addr,
	    r, aliases[_i].want);
	if (r != 1) {
		ck_assert_ptr_null(out);
		return;
	}
	got = joined(out);
	ck_assert_msg(strcmp(got, aliases[_i].out) == 0, "%s: got \"%s\" want \"%s\"",
	    aliases[_i].addr, got, aliases[_i].out);
	free(got);
	strv_free(&out);
}
END_TEST

static const struct {
	const char *addr;
	const char *transport;
	const char *nexthop;
} routes[] = {
	{ "x@gmail.com", "smtp", "gmail.com" },
	{ "x@Gmail.COM", "smtp", "gmail.com" },
	{ "x@special.com", "smtp", "[10.0.0.1]:2525" },
	{ "x@a.sub.com", "relay", "[gw.example.net]" },
	{ "x@b.a.sub.com", "relay", "[gw.example.net]" },
	{ "x@sub.com", "smtp", "sub.com" },
	{ "x@onlyhop.com", "smtp", "[hop.example.net]" },
	{ "user@example.com", "local", "example.com" },
	{ "user+ext@example.com", "local", "example.com" },
	{ "alice@example.com", "local", "example.com" },
	{ "alice", "local", "mail.example.com" },
	{ "carol@virt.org", "lmtp", "unix:/run/lmtp" },
	{ "dave@other.org", "virtual", "other.org" },
};

START_TEST(test_route)
{
	char *t = NULL, *nh = NULL;

	ck_assert_int_eq(resolver_route(res, routes[_i].addr, &t, &nh), 0);
	ck_assert_msg(strcmp(t, routes[_i].transport) == 0 &&
	    strcmp(nh, routes[_i].nexthop) == 0, "%s: got %s:%s want %s:%s",
	    routes[_i].addr, t, nh, routes[_i].transport, routes[_i].nexthop);
	free(t);
	free(nh);
}
END_TEST

START_TEST(test_route_defaults)
{
	char *t = NULL, *nh = NULL, *err = NULL;

	resolver_close(&res);
	config_set("transport_maps", "");
	config_set("relayhost", "[smart.example.net]:587");
	config_set("local_transport", "local:$myhostname");
	config_set("virtual_transport", "lmtp:unix:private/dovecot");
	res = resolver_open(&err);
	ck_assert_msg(res != NULL, "%s", err);
	ck_assert_int_eq(resolver_route(res, "x@special.com", &t, &nh), 0);
	ck_assert_str_eq(t, "smtp");
	ck_assert_str_eq(nh, "[smart.example.net]:587");
	free(t);
	free(nh);
	ck_assert_int_eq(resolver_route(res, "alice@example.com", &t, &nh), 0);
	ck_assert_str_eq(t, "local");
	ck_assert_str_eq(nh, "mail.example.com");
	free(t);
	free(nh);
	ck_assert_int_eq(resolver_route(res, "dave@other.org", &t, &nh), 0);
	ck_assert_str_eq(t, "lmtp");
	ck_assert_str_eq(nh, "unix:private/dovecot");
	free(t);
	free(nh);
	/* default_transport's own nexthop beats relayhost, as in Postfix */
	resolver_close(&res);
	config_set("default_transport", "smtp:[other.example.net]");
	res = resolver_open(&err);
	ck_assert_int_eq(resolver_route(res, "x@gmail.com", &t, &nh), 0);
	ck_assert_str_eq(nh, "[other.example.net]");
	free(t);
	free(nh);
}
END_TEST

static enum rcpt_class
class_of(const char *domain)
{
	enum rcpt_class c;

	ck_assert_int_eq(resolver_class_ex(res, domain, &c), 0);
	return c;
}

START_TEST(test_domains_follow_rebuild)
{
	ck_assert_int_eq(class_of("new.org"), RCPT_RELAY);
	ck_assert_int_eq(resolver_rcpt_known(res, "eve@new.org"), 1);
	build("vmailbox", "carol@virt.org x\neve@new.org y\n");
	ck_assert_int_eq(class_of("new.org"), RCPT_VIRTUAL);
	ck_assert_int_eq(class_of("other.org"), RCPT_RELAY);
	ck_assert_int_eq(resolver_rcpt_known(res, "eve@new.org"), 1);
	ck_assert_int_eq(resolver_rcpt_known(res, "frank@new.org"), 0);
}
END_TEST

START_TEST(test_temp_failure)
{
	char path[200], **out = NULL, *t = NULL, *nh = NULL;
	enum rcpt_class c;

	/* a vanished table defers; it never turns into "unknown" */
	snprintf(path, sizeof(path), "%s/users.lmdb", tmpdir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(resolver_rcpt_known(res, "alice@example.com"), -1);
	snprintf(path, sizeof(path), "%s/virtual.lmdb", tmpdir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(resolver_virtual_alias(res, "info@virt.org", &out), -1);
	ck_assert_ptr_null(out);
	snprintf(path, sizeof(path), "%s/localdomains.lmdb", tmpdir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(resolver_class_ex(res, "gmail.com", &c), -1);
	ck_assert_int_eq(resolver_route(res, "x@gmail.com", &t, &nh), -1);
	ck_assert_ptr_null(t);
	ck_assert_ptr_null(nh);
	/* names listed literally still resolve before any table is asked */
	ck_assert_int_eq(resolver_class_ex(res, "example.com", &c), 0);
	ck_assert_int_eq(c, RCPT_LOCAL);
}
END_TEST

/* The qmgr crash loop: local_recipient_maps names a table nobody built
 * yet. The resolver still opens; routing needs no such table; existence
 * checks fail temporarily (451, deferral) until the table is built, and
 * then work without reopening. */
START_TEST(test_missing_table_at_open)
{
	char spec[256], *err = NULL, *t = NULL, *nh = NULL;

	resolver_close(&res);
	snprintf(spec, sizeof(spec), "unix:passwd.byname lmdb:%s/aliases", tmpdir);
	config_set("local_recipient_maps", spec);
	res = resolver_open(&err);
	ck_assert_msg(res != NULL, "resolver_open: %s", err ? err : "?");
	ck_assert_int_eq(resolver_route(res, "root@example.com", &t, &nh), 0);
	ck_assert_str_eq(t, "local");
	free(t);
	free(nh);
	ck_assert_int_eq(resolver_rcpt_known(res, "nosuchuser@example.com"), -1);
	ck_assert_int_eq(resolver_rcpt_known(res, "nosuchuser@example.com"), -1);
	build("aliases", "nosuchuser root\n");
	ck_assert_int_eq(resolver_rcpt_known(res, "nosuchuser@example.com"), 1);
	ck_assert_int_eq(resolver_rcpt_known(res, "stillnobody@example.com"), 0);
}
END_TEST

START_TEST(test_open_errors)
{
	char *err = NULL;
	struct resolver *r2;

	config_set("virtual_alias_maps", "hash:/etc/postfix/virtual");
	r2 = resolver_open(&err);
	ck_assert_ptr_null(r2);
	ck_assert_ptr_nonnull(strstr(err, "virtual_alias_"));
	ck_assert_ptr_nonnull(strstr(err, "'hash'"));
	free(err);
	config_set("virtual_alias_maps", "");
	config_set("mydestination", "example.com, /etc/postern/domains");
	ck_assert_ptr_null(resolver_open(&err));
	ck_assert_ptr_nonnull(strstr(err, "mydestination"));
	free(err);
}
END_TEST

static Suite *
resolve_suite(void)
{
	Suite *s = suite_create("resolve");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_class, 0, (int)(sizeof(classes) / sizeof(classes[0])));
	tcase_add_loop_test(tc, test_known, 0, (int)(sizeof(known) / sizeof(known[0])));
	tcase_add_test(tc, test_known_empty_local_maps);
	tcase_add_loop_test(tc, test_virtual_alias, 0, (int)(sizeof(aliases) / sizeof(aliases[0])));
	tcase_add_loop_test(tc, test_route, 0, (int)(sizeof(routes) / sizeof(routes[0])));
	tcase_add_test(tc, test_route_defaults);
	tcase_add_test(tc, test_domains_follow_rebuild);
	tcase_add_test(tc, test_temp_failure);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_missing_table_at_open);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(resolve_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
