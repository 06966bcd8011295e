/*
 * test_config - postern.conf reading, expansion, types and printing.
 * Each case writes its own postern.conf into a mkdtemp directory; warnings
 * go to a log file there so the expected ones can be asserted.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "mail/config.h"

static char tmpdir[64];
static char logpath[128];

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* Load text as DIR/postern.conf; returns config_load's result. */
static int
load(const char *text, char **err)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/postern.conf", tmpdir);
	write_file(path, text, strlen(text));
	*err = NULL;
	return config_load(tmpdir, err);
}

static void
load_ok(const char *text)
{
	char *err = NULL;
	int r = load(text, &err);

	ck_assert_msg(r == 0, "config_load: %s", err ? err : "?");
}

static char *
read_log(void)
{
	FILE *f = fopen(logpath, "r");
	static char text[65536];
	size_t n;

	if (f == NULL)
		return strcpy(text, "");
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/test_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	log_open("test_config", logpath);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", tmpdir);
}

START_TEST(test_basic_and_continuation)
{
	load_ok("# a comment\n"
	    "mail_name = Foo\n"
	    "\n"
	    "mynetworks = 127.0.0.0/8,\n"
	    "    10.0.0.0/8\n"
	    "# comments inside do not end the line\n"
	    "\t192.168.0.0/16\n"
	    "   # indented comment\n"
	    "relayhost=[smtp.example.net]:587   \r\n"
	    "home_mailbox =\n");
	ck_assert_str_eq(config_get("mail_name"), "Foo");
	ck_assert_str_eq(config_get("mynetworks"),
	    "127.0.0.0/8, 10.0.0.0/8 192.168.0.0/16");
	ck_assert_str_eq(config_get("relayhost"), "[smtp.example.net]:587");
	ck_assert_str_eq(config_get("home_mailbox"), "");
	ck_assert_str_eq(config_dir(), tmpdir);
	ck_assert_str_eq(config_get("config_directory"), tmpdir);
}
END_TEST

START_TEST(test_defaults)
{
	const char *h;

	load_ok("");
	h = config_get("myhostname");
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(strchr(h, '.'));
	ck_assert_str_eq(config_get("queue_directory"), "/var/spool/postern");
	ck_assert_str_eq(config_get("mail_owner"), "postern");
	ck_assert_str_eq(config_get("mynetworks"), "127.0.0.0/8 [::1]/128");
	ck_assert_str_eq(config_get("alias_database"), "lmdb:/etc/aliases");
	ck_assert_str_eq(config_get("local_recipient_maps"),
	    "unix:passwd.byname lmdb:/etc/aliases");
	ck_assert_str_eq(config_get("virtual_mailbox_domains"), "");
	ck_assert_str_eq(config_get("recipient_delimiter"), "");
	ck_assert_int_eq(config_int("message_size_limit"), 10240000);
	ck_assert_int_eq(config_int("smtpd_recipient_limit"), 1000);
	ck_assert_int_eq(config_int("line_length_limit"), 2048);
	ck_assert_int_eq(config_time("smtpd_timeout"), 300);
	ck_assert_int_eq(config_time("maximal_queue_lifetime"), 5 * 86400);
	ck_assert_int_eq(config_time("delay_warning_time"), 0);
	ck_assert_int_eq(config_time("command_time_limit"), 1000);
	ck_assert_int_eq(config_bool("smtputf8_enable"), 1);
	/* local expands these itself: config_get must leave $home alone */
	ck_assert_str_eq(config_get("forward_path"), "$home/.forward");
	ck_assert_ptr_null(config_get("no_such_parameter"));
	ck_assert_ptr_null(config_get_raw("no_such_parameter"));
}
END_TEST

START_TEST(test_hostname_defaults)
{
	load_ok("myhostname = mail.Example.com\n");
	ck_assert_str_eq(config_get("mydomain"), "Example.com");
	ck_assert_str_eq(config_get("myorigin"), "mail.Example.com");
	ck_assert_str_eq(config_get("mydestination"),
	    "mail.Example.com, localhost.Example.com, localhost");
	ck_assert_str_eq(config_get("smtpd_banner"), "mail.Example.com ESMTP Postern");
	ck_assert_str_eq(config_get_raw("mydestination"),
	    "$myhostname, localhost.$mydomain, localhost");
	/* a name without a dot has no domain to give */
	config_set("myhostname", "single");
	ck_assert_str_eq(config_get("mydomain"), "localdomain");
}
END_TEST

START_TEST(test_expansion)
{
	load_ok("a_one = 1\n"
	    "a_two = ${a_one}2\n"
	    "a_three = $(a_two)3 $a_two\n"
	    "deep1 = $deep2\n"
	    "deep2 = $deep3\n"
	    "deep3 = bottom\n"
	    "money = $$5 and $ alone and $\n"
	    "undef = [$no_such_thing]\n"
	    "cond_set = ${a_one?yes}${a_one:no}\n"
	    "cond_empty = ${home_mailbox?yes}${home_mailbox:no}\n"
	    "cond_nested = ${a_one?<$a_two>}\n");
	ck_assert_str_eq(config_get("a_two"), "12");
	ck_assert_str_eq(config_get("a_three"), "123 12");
	ck_assert_str_eq(config_get("deep1"), "bottom");
	ck_assert_str_eq(config_get("money"), "$5 and $ alone and $");
	ck_assert_str_eq(config_get("undef"), "[]");
	ck_assert_str_eq(config_get("cond_set"), "yes");
	ck_assert_str_eq(config_get("cond_empty"), "no");
	ck_assert_str_eq(config_get("cond_nested"), "<12>");
	ck_assert_str_eq(config_get_raw("a_two"), "${a_one}2");
}
END_TEST

START_TEST(test_expansion_errors)
{
	char *log;

	load_ok("self_ref = x $self_ref\n"
	    "cyc_a = $cyc_b\n"
	    "cyc_b = $cyc_a\n"
	    "unbal = ${a_one\n"
	    "badname = ${a-b}\n");
	/* errors leave the text as written, with one warning */
	ck_assert_str_eq(config_get("self_ref"), "x $self_ref");
	ck_assert_str_eq(config_get("cyc_a"), "$cyc_b");
	ck_assert_str_eq(config_get("unbal"), "${a_one");
	ck_assert_str_eq(config_get("badname"), "${a-b}");
	config_get("self_ref");
	log = read_log();
	ck_assert_ptr_nonnull(strstr(log, "parameter self_ref: parameter refers to itself"));
	ck_assert_ptr_nonnull(strstr(log, "parameter unbal: unbalanced"));
	/* warned once, not per call */
	ck_assert_ptr_null(strstr(strstr(log, "self_ref:") + 1, "parameter self_ref:"));
}
END_TEST

START_TEST(test_expansion_depth)
{
	struct buf b = BUF_INIT(0);
	int i;

	/* a chain longer than the depth limit is refused, not followed */
	for (i = 0; i < 40; i++)
		buf_printf(&b, "chain%d = $chain%d\n", i, i + 1);
	buf_printf(&b, "chain40 = end\n");
	buf_printf(&b, "short0 = $short1\nshort1 = $short2\nshort2 = ok\n");
	load_ok(buf_cstr(&b));
	ck_assert_str_eq(config_get("chain0"), "$chain1");
	ck_assert_str_eq(config_get("chain35"), "end");
	ck_assert_str_eq(config_get("short0"), "ok");
	buf_free(&b);
	/* exponential blow-up is bounded too */
	buf_init(&b, 0);
	buf_printf(&b, "blow0 = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
	for (i = 1; i < 19; i++)
		buf_printf(&b, "blow%d = $blow%d$blow%d\n", i, i - 1, i - 1);
	load_ok(buf_cstr(&b));
	ck_assert_str_eq(config_get("blow18"), "$blow17$blow17");
	buf_free(&b);
	/* ... and so is a blow-up that produces nothing */
	buf_init(&b, 0);
	buf_printf(&b, "nil0 =\n");
	for (i = 1; i < 19; i++)
		buf_printf(&b, "nil%d = $nil%d$nil%d$nil%d\n", i, i - 1, i - 1, i - 1);
	load_ok(buf_cstr(&b));
	ck_assert_str_eq(config_get("nil18"), "$nil17$nil17$nil17");
	ck_assert_str_eq(config_get("nil5"), "");
	buf_free(&b);
}
END_TEST

START_TEST(test_unknown_kept)
{
	char *log;

	load_ok("foo_bar = hello\nuses_foo = <$foo_bar>\nfoo_bar = again\n");
	ck_assert_str_eq(config_get("foo_bar"), "again");
	ck_assert_str_eq(config_get("uses_foo"), "<again>");
	log = read_log();
	ck_assert_msg(strstr(log, "postern.conf: unknown parameter foo_bar") != NULL,
	    "log: %s", log);
	/* once, although set twice */
	ck_assert_ptr_null(strstr(strstr(log, "unknown parameter foo_bar") + 1,
	    "unknown parameter foo_bar"));
	/* a reload forgets names that are gone */
	load_ok("mail_name = X\n");
	ck_assert_ptr_null(config_get("foo_bar"));
	ck_assert_str_eq(config_get("mail_name"), "X");
}
END_TEST

static const struct {
	const char *text;
	const char *want;
} bad_files[] = {
	{ "mail_name = x\n\nthis line is junk\n", "postern.conf:3: missing '=' after parameter name" },
	{ "  indented = first\n", "postern.conf:1: continuation line without a preceding line" },
	{ "# c\n\n   \n  x = y\n", "postern.conf:4: continuation line" },
	{ "= value\n", "postern.conf:1: missing parameter name before '='" },
	{ "bad name = value\n", "postern.conf:1: bad parameter name 'bad name'" },
	{ "a.b = value\n", "postern.conf:1: bad parameter name" },
	{ "-x_time_limit = 1\n", "postern.conf:1: bad parameter name" },
	{ "x = 1\ny = 2\n  more\nz\n", "postern.conf:4: missing '='" },
};

START_TEST(test_bad_files)
{
	char *err = NULL;

	load_ok("mail_name = Before\n");
	ck_assert_int_eq(load(bad_files[_i].text, &err), -1);
	/* a failed load keeps what was there */
	ck_assert_str_eq(config_get("mail_name"), "Before");
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, bad_files[_i].want) != NULL,
	    "case %d: got \"%s\", want \"%s\"", _i, err, bad_files[_i].want);
	ck_assert_msg(strncmp(err, tmpdir, strlen(tmpdir)) == 0, "no path: %s", err);
	free(err);
}
END_TEST

/* A per-service name begins with a master.conf service name, which may
 * hold '-' (Postfix: policyd-spf_time_limit in main.cf); it is kept and
 * read by its service. */
START_TEST(test_service_names)
{
	load_ok("policyd-spf_time_limit = 1h\n");
	ck_assert_str_eq(config_get("policyd-spf_time_limit"), "1h");
	ck_assert_int_eq(config_time_or("policyd-spf_time_limit", 5, 's'), 3600);
	ck_assert_int_eq(config_time_or("other-spf_time_limit", 5, 's'), 5);
}
END_TEST

START_TEST(test_nul_and_missing)
{
	char path[160], *err = NULL;

	snprintf(path, sizeof(path), "%s/postern.conf", tmpdir);
	write_file(path, "a_x = 1\nb_x = \0oops\n", 20);
	ck_assert_int_eq(config_load(tmpdir, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "postern.conf:2: NUL byte"));
	free(err);
	unlink(path);
	ck_assert_int_eq(config_load(tmpdir, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	free(err);
}
END_TEST

static const struct {
	const char *s;
	char unit;
	long long want;
} times[] = {
	{ "300", 's', 300 },
	{ "300s", 'd', 300 },
	{ "5", 'd', 5 * 86400 },
	{ "5d", 's', 5 * 86400 },
	{ "2h", 's', 7200 },
	{ "0h", 'h', 0 },
	{ "10m", 's', 600 },
	{ "1w", 's', 604800 },
	{ "1h30m", 's', 5400 },
	{ "3H", 's', 10800 },
	{ " 7s ", 's', 7 },
	{ "", 's', -1 },
	{ "s", 's', -1 },
	{ "10x", 's', -1 },
	{ "-5", 's', -1 },
	{ "1.5h", 's', -1 },
	{ "1h30", 's', -1 },
	{ "1 h", 's', -1 },
	{ "99999999999999999999", 's', -1 },
	{ "999999999999999w", 's', -1 },
};

START_TEST(test_parse_time)
{
	ck_assert_msg(config_parse_time(times[_i].s, times[_i].unit) == times[_i].want,
	    "\"%s\" unit %c: got %lld want %lld", times[_i].s, times[_i].unit,
	    config_parse_time(times[_i].s, times[_i].unit), times[_i].want);
}
END_TEST

START_TEST(test_time_units)
{
	load_ok("maximal_queue_lifetime = 3\n"
	    "bounce_queue_lifetime = 12h\n"
	    "smtpd_timeout = 60\n"
	    "max_idle = 2m\n"
	    "delay_warning_time = 4\n");
	ck_assert_int_eq(config_time("maximal_queue_lifetime"), 3 * 86400);
	ck_assert_int_eq(config_time("bounce_queue_lifetime"), 12 * 3600);
	ck_assert_int_eq(config_time("smtpd_timeout"), 60);
	ck_assert_int_eq(config_time("max_idle"), 120);
	ck_assert_int_eq(config_time("delay_warning_time"), 4 * 3600);
}
END_TEST

static const struct {
	const char *v;
	int want;   /* -1: config_check must fail */
} bools[] = {
	{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
	{ "1", 1 }, { "0", 0 }, { "YES", 1 }, { "No", 0 },
	{ "maybe", -1 }, { "", -1 }, { "yess", -1 },
};

START_TEST(test_bool)
{
	char *err = NULL;

	load_ok("");
	ck_assert_int_eq(config_set("smtpd_helo_required", bools[_i].v), 0);
	if (bools[_i].want < 0) {
		ck_assert_int_eq(config_check(&err), -1);
		ck_assert_ptr_nonnull(strstr(err, "smtpd_helo_required"));
		free(err);
	} else {
		ck_assert_int_eq(config_check(&err), 0);
		ck_assert_int_eq(config_bool("smtpd_helo_required"), bools[_i].want);
	}
}
END_TEST

static const struct {
	const char *name;
	const char *value;
} bad_values[] = {
	{ "message_size_limit", "10MB" },
	{ "message_size_limit", "-1" },
	{ "smtpd_recipient_limit", "" },
	{ "smtpd_timeout", "5 minutes" },
	{ "maximal_queue_lifetime", "5y" },
	{ "disable_vrfy_command", "perhaps" },
	{ "default_process_limit", "99999999999999999999999" },
	/* enumerated values */
	{ "smtpd_tls_security_level", "bogus" },
	{ "smtp_tls_security_level", "mandatory" },
	{ "inet_protocols", "ipv4, ipx" },
	{ "allow_mail_to_files", "alias, everywhere" },
	{ "syslog_facility", "local9" },
	{ "notify_classes", "resource, bounce" },
	{ "inet_interfaces", "127.0.0.1, 127.0.0.2" },
	{ "smtpd_forbid_bare_newline", "sometimes" },
	{ "pop3d_plaintext_auth", "maybe" },
};

START_TEST(test_check)
{
	char *err = NULL, text[256];

	load_ok("");
	ck_assert_int_eq(config_check(&err), 0);
	snprintf(text, sizeof(text), "%s = %s\n", bad_values[_i].name,
	    bad_values[_i].value);
	load_ok(text);
	ck_assert_int_eq(config_check(&err), -1);
	ck_assert_msg(strstr(err, bad_values[_i].name) != NULL, "%s", err);
	free(err);
}
END_TEST

START_TEST(test_check_expanded)
{
	char *err = NULL;

	/* typed values are checked after expansion */
	load_ok("my_limit = 5000\nsmtpd_recipient_limit = $my_limit\n");
	ck_assert_int_eq(config_check(&err), 0);
	ck_assert_int_eq(config_int("smtpd_recipient_limit"), 5000);
}
END_TEST

START_TEST(test_set_override)
{
	const char *old;

	load_ok("myhostname = a.example.com\n");
	old = config_get("myorigin");
	ck_assert_str_eq(old, "a.example.com");
	ck_assert_int_eq(config_set("myhostname", "b.example.org"), 0);
	ck_assert_str_eq(config_get("myorigin"), "b.example.org");
	ck_assert_str_eq(config_get("mydomain"), "example.org");
	/* a pointer handed out earlier stays readable */
	ck_assert_str_eq(old, "a.example.com");
	ck_assert_int_eq(config_set("custom_thing", "v"), 0);
	ck_assert_str_eq(config_get("custom_thing"), "v");
	ck_assert_int_eq(config_set("bad name", "v"), -1);
	ck_assert_int_eq(config_set("", "v"), -1);
	ck_assert_int_eq(config_is_set("myhostname"), 1);
	ck_assert_int_eq(config_is_set("mail_name"), 0);
}
END_TEST

START_TEST(test_enumerated_ok)
{
	char *err = NULL;

	load_ok("smtpd_tls_security_level = Encrypt\nsmtp_tls_security_level = dane-only\n"
	    "inet_protocols = ipv4 ipv6\nallow_mail_to_commands =\n"
	    "smtpd_forbid_bare_newline = reject\npop3d_plaintext_auth = no\n"
	    "my_level = may\nsmtpd_tls_security_level = $my_level\n");
	ck_assert_msg(config_check(&err) == 0, "%s", err ? err : "");
}
END_TEST

START_TEST(test_check_value)
{
	char *err = NULL;

	load_ok("myhostname = a.example.com\nlevel = may\n");
	ck_assert_int_eq(config_check_value("smtpd_tls_security_level", "$level", &err), 0);
	ck_assert_int_eq(config_check_value("smtpd_tls_security_level", "maybe", &err), -1);
	ck_assert_str_eq(err, "parameter smtpd_tls_security_level: bad value 'maybe' "
	    "(expected none, may or encrypt)");
	free(err);
	ck_assert_int_eq(config_check_value("smtpd_timeout", "1 hour", &err), -1);
	free(err);
	ck_assert_int_eq(config_check_value("smtpd_tls_wrapermode", "yes", &err), -1);
	ck_assert_str_eq(err, "unknown parameter smtpd_tls_wrapermode");
	free(err);
	/* the configuration is left as it was */
	ck_assert_int_eq(config_check_value("myhostname", "b.example.org", &err), 0);
	ck_assert_str_eq(config_get("myhostname"), "a.example.com");
	ck_assert_int_eq(config_is_set("smtpd_tls_security_level"), 0);
}
END_TEST

START_TEST(test_repeated_warns)
{
	char *log;

	load_ok("myhostname = a.example.com\n# comment\nmail_name = X\n"
	    "myhostname = b.example.com\n");
	ck_assert_str_eq(config_get("myhostname"), "b.example.com");
	log = read_log();
	ck_assert_msg(strstr(log, "postern.conf:4: overriding earlier entry: "
	    "myhostname=b.example.com") != NULL, "log: %s", log);
	ck_assert_ptr_null(strstr(log, "mail_name=X"));
}
END_TEST

START_TEST(test_defaults_and_str)
{
	char *data = NULL;
	size_t len = 0;
	FILE *f;

	load_ok("queue_directory = /elsewhere\ncustom = 1\n");
	f = open_memstream(&data, &len);
	config_print_defaults(f);
	ck_assert_int_eq(config_print_default_one(f, "mail_name"), 0);
	ck_assert_int_eq(config_print_default_one(f, "custom"), -1);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(data, "\nqueue_directory = /var/spool/postern\n"));
	ck_assert_ptr_null(strstr(data, "custom"));
	ck_assert_ptr_nonnull(strstr(data, "\nhome_mailbox =\n"));
	ck_assert_ptr_nonnull(strstr(data, "mail_name = Postern\n"));
	free(data);
	ck_assert_str_eq(config_get("queue_directory"), "/elsewhere");
	ck_assert_str_eq(config_str("alias_maps"), "lmdb:/etc/aliases");
	ck_assert_int_eq(config_known("custom"), 0);
	ck_assert_int_eq(config_known("alias_maps"), 1);
}
END_TEST

static char *
print_to_string(int only_nondefault, int expand, const char *one)
{
	char *data = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&data, &len);

	ck_assert_ptr_nonnull(f);
	if (one != NULL) {
		if (config_print_one_x(f, one, expand) != 0)
			fputs("UNKNOWN", f);
	} else
		config_print_x(f, only_nondefault, expand);
	fclose(f);
	return data;
}

START_TEST(test_print)
{
	char *s;

	load_ok("zz_custom = 1\nmail_name = Mine\nmyhostname = h.example.com\n");
	s = print_to_string(1, 0, NULL);
	ck_assert_str_eq(s, "mail_name = Mine\nmyhostname = h.example.com\nzz_custom = 1\n");
	free(s);
	s = print_to_string(0, 0, NULL);
	ck_assert_ptr_nonnull(strstr(s, "\nmydestination = $myhostname, localhost.$mydomain, localhost\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nhome_mailbox =\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nzz_custom = 1\n"));
	ck_assert_ptr_nonnull(strstr(s, "alias_database = $alias_maps\nalias_maps ="));
	free(s);
	s = print_to_string(0, 1, NULL);
	ck_assert_ptr_nonnull(strstr(s, "\nmydestination = h.example.com, localhost.example.com, localhost\n"));
	free(s);
	s = print_to_string(0, 1, "myorigin");
	ck_assert_str_eq(s, "myorigin = h.example.com\n");
	free(s);
	s = print_to_string(0, 0, "nonesuch");
	ck_assert_str_eq(s, "UNKNOWN");
	free(s);
	{
		FILE *devnull = fopen("/dev/null", "w");

		ck_assert_int_eq(config_print_one(devnull, "nonesuch"), -1);
		ck_assert_int_eq(config_print_one(devnull, "mail_name"), 0);
		fclose(devnull);
	}
}
END_TEST

START_TEST(test_bad_int_fatal)
{
	/* fatal exits before the checked teardown can run: clean up then. */
	atexit(teardown);
	load_ok("line_length_limit = lots\n");
	(void)config_int("line_length_limit");
}
END_TEST

/* The logical-line reader on its own, whole and with CRLF. */
static const struct {
	const char *in;
	const char *lines[4];
	int linenos[4];
} llines[] = {
	{ "a\nb\n", { "a", "b" }, { 1, 2 } },
	{ "a\r\n b\r\nc", { "a b", "c" }, { 1, 3 } },
	{ "#x\n\na 1\n\n  2\n#y\n\t3  \nb", { "a 1 2 3", "b" }, { 3, 8 } },
	{ "", { NULL }, { 0 } },
	{ "\n\n# only\n", { NULL }, { 0 } },
};

START_TEST(test_lline)
{
	struct buf b = BUF_INIT(0);
	struct lline ll;
	const char *why;
	int lineno, r, n = 0;

	lline_init(&ll, llines[_i].in, strlen(llines[_i].in));
	while ((r = lline_next(&ll, &b, &lineno, &why)) == 1) {
		ck_assert_int_lt(n, 4);
		ck_assert_ptr_nonnull(llines[_i].lines[n]);
		ck_assert_str_eq(buf_cstr(&b), llines[_i].lines[n]);
		ck_assert_int_eq(lineno, llines[_i].linenos[n]);
		n++;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_null(n < 4 ? llines[_i].lines[n] : NULL);
	buf_free(&b);
}
END_TEST

START_TEST(test_lline_long)
{
	struct buf b = BUF_INIT(0);
	struct lline ll;
	const char *why = NULL;
	char *text = xmalloc(5000);
	int lineno;

	memset(text, 'x', 4999);
	text[4999] = '\0';
	lline_init(&ll, text, strlen(text));
	ll.max = 1000;
	ck_assert_int_eq(lline_next(&ll, &b, &lineno, &why), -1);
	ck_assert_str_eq(why, "line too long");
	free(text);
	buf_free(&b);
}
END_TEST

START_TEST(test_garbage)
{
	static const char alphabet[] = " \t\n\r=$${}()?:#ab_09xyz";
	char text[2048], *err = NULL;
	unsigned seed = 4242;
	size_t i;
	int loaded = 0;

	/* fixed-seed garbage: loaded or refused, every value readable */
	for (int round = 0; round < 100; round++) {
		for (i = 0; i < sizeof(text) - 1; i++) {
			seed = seed * 1103515245 + 12345;
			text[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
			/* mostly well-formed lines, so values get expanded */
			if (round % 2 == 0 && (i == 0 || text[i - 1] == '\n') &&
			    i + 8 < sizeof(text)) {
				memcpy(text + i, (seed >> 20) % 2 ? "ab = $" : "ab_0 = ", 7);
				text[i + 1] = "abxyz"[(seed >> 8) % 5];
				i += 6;
			}
		}
		text[i] = '\0';
		if (load(text, &err) == 0) {
			loaded++;
			FILE *devnull = fopen("/dev/null", "w");

			config_print_x(devnull, 0, 1);
			(void)config_check(&err);
			fclose(devnull);
		}
		free(err);
		err = NULL;
	}
	ck_assert_int_gt(loaded, 0);
}
END_TEST

/* The lenient accessors for names the table may lack: defaults, ranges,
 * units, never fatal. */
/* The SASL security options of each side, with and without TLS; the
 * TLS one follows the other by default. */
START_TEST(test_sasl_plaintext)
{
	load_ok("smtpd_sasl_security_options = noanonymous, noplaintext\n"
	    "smtpd_sasl_tls_security_options = noanonymous\n"
	    "smtp_sasl_security_options = noactive\n");
	ck_assert_int_eq(config_sasl_plaintext("smtpd", 0), 0);
	ck_assert_int_eq(config_sasl_plaintext("smtpd", 1), 1);
	ck_assert_int_eq(config_sasl_plaintext("smtp", 0), 0);
	ck_assert_int_eq(config_sasl_plaintext("smtp", 1), 0);
	load_ok("myhostname = x.example\n");
	ck_assert_int_eq(config_sasl_plaintext("smtp", 0), 1);
	ck_assert_int_eq(config_sasl_plaintext("smtpd", 1), 1);
}
END_TEST

START_TEST(test_int_time_or)
{
	load_ok("smtp_destination_concurrency_limit = 7\n"
	    "local_destination_recipient_limit = lots\n"
	    "foo_limit = 5000\n"
	    "empty_limit =\n"
	    "maximal_queue_lifetime = 2\n"
	    "foo_time = 2m\n"
	    "bar_time = soon\n"
	    "neg_limit = -3\n");
	ck_assert_int_eq(config_int_or("smtp_destination_concurrency_limit", 20, 0, 100), 7);
	ck_assert_int_eq(config_int_or("local_destination_recipient_limit", 1, 0, 100), 1);
	ck_assert_int_eq(config_int_or("foo_limit", 3, 0, 100), 3);
	ck_assert_int_eq(config_int_or("foo_limit", 3, 0, 10000), 5000);
	ck_assert_int_eq(config_int_or("empty_limit", 9, 0, 100), 9);
	ck_assert_int_eq(config_int_or("neg_limit", 9, 0, 100), 9);
	ck_assert_int_eq(config_int_or("no_such_name_at_all", 11, 0, 100), 11);
	/* A known name keeps its table unit: a bare 2 is two days here. */
	ck_assert_int_eq(config_time_or("maximal_queue_lifetime", 1, 's'), 2 * 86400);
	ck_assert_int_eq(config_time_or("foo_time", 1, 's'), 120);
	ck_assert_int_eq(config_time_or("bar_time", 42, 's'), 42);
	ck_assert_int_eq(config_time_or("no_such_time", 43, 's'), 43);
	ck_assert_ptr_nonnull(strstr(read_log(), "bad numerical value for foo_limit"));
	ck_assert_ptr_nonnull(strstr(read_log(), "bad time value for bar_time"));
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_basic_and_continuation);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_sasl_plaintext);
	tcase_add_test(tc, test_hostname_defaults);
	tcase_add_test(tc, test_expansion);
	tcase_add_test(tc, test_expansion_errors);
	tcase_add_test(tc, test_expansion_depth);
	tcase_add_test(tc, test_unknown_kept);
	tcase_add_loop_test(tc, test_bad_files, 0, (int)(sizeof(bad_files) / sizeof(bad_files[0])));
	tcase_add_test(tc, test_nul_and_missing);
	tcase_add_test(tc, test_service_names);
	tcase_add_loop_test(tc, test_parse_time, 0, (int)(sizeof(times) / sizeof(times[0])));
	tcase_add_test(tc, test_time_units);
	tcase_add_loop_test(tc, test_bool, 0, (int)(sizeof(bools) / sizeof(bools[0])));
	tcase_add_loop_test(tc, test_check, 0, (int)(sizeof(bad_values) / sizeof(bad_values[0])));
	tcase_add_test(tc, test_check_expanded);
	tcase_add_test(tc, test_set_override);
	tcase_add_test(tc, test_print);
	tcase_add_exit_test(tc, test_bad_int_fatal, 1);
	tcase_add_loop_test(tc, test_lline, 0, (int)(sizeof(llines) / sizeof(llines[0])));
	tcase_add_test(tc, test_lline_long);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_int_time_or);
	tcase_add_test(tc, test_enumerated_ok);
	tcase_add_test(tc, test_check_value);
	tcase_add_test(tc, test_repeated_warns);
	tcase_add_test(tc, test_defaults_and_str);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
