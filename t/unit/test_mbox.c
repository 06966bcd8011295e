/*
 * test_mbox - mbox append: From line, mboxrd quoting (whole and
 * byte-at-a-time), final blank line, dot-lock and fcntl locking,
 * truncation after a failure, refusal of unsafe files; and reading the
 * spool back as a POP3 maildrop (content, sizes, UIDLs, expunge, locks).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "store/mbox.h"

struct src {
	const char *data;
	size_t len;
	size_t chunk;
	size_t fail_at;    /* fail (EIO) once this many bytes were given; 0 = never */
};

static int
produce(mail_out_fn out, void *octx, void *ctx)
{
	struct src *s = ctx;
	size_t off = 0, n;

	while (off < s->len) {
		n = s->len - off < s->chunk ? s->len - off : s->chunk;
		if (s->fail_at && off >= s->fail_at) {
			errno = EIO;
			return -1;
		}
		if (out(s->data + off, n, octx) < 0)
			return -1;
		off += n;
	}
	return 0;
}

static char tmpbase[256];
static char mbox[PATH_MAX];

static void
setup(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	log_open("test_mbox", "/dev/null");
	snprintf(tmpbase, sizeof(tmpbase), "/tmp/test_mbox.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpbase));
	snprintf(mbox, sizeof(mbox), "%s/mbox", tmpbase);
}

static void
teardown(void)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpbase);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

static char *
slurp(const char *path, size_t *len_r)
{
	char *data = NULL;
	size_t len = 0;

	ck_assert_int_eq(file_read_all(path, 1 << 20, &data, &len), 0);
	if (len_r != NULL)
		*len_r = len;
	return data;
}

static int
deliver(const char *data, size_t chunk, const struct mbox_opts *o,
    const char **dsn, char **err)
{
	struct src s = { data, strlen(data), chunk, 0 };

	return mbox_deliver(mbox, "a@b", 0, produce, &s, o, dsn, err);
}

#define FROM0 "From a@b Thu Jan  1 00:00:00 1970\n"

static const struct {
	const char *in;
	const char *out;
} quote_cases[] = {
	{ "From x\n", ">From x\n\n" },
	{ ">From x\n", ">>From x\n\n" },
	{ ">>From x\n", ">>>From x\n\n" },
	{ "Fromage\n", "Fromage\n\n" },
	{ "From\n", "From\n\n" },
	{ ">Fro\n", ">Fro\n\n" },
	{ "a\nFrom b", "a\n>From b\n\n" },
	{ "x From y\n", "x From y\n\n" },
	{ ">>\n", ">>\n\n" },
	{ "", "\n" },
	{ "a\n>", "a\n>\n\n" },
	{ "From ", ">From \n\n" },
	{ "Subject: x\n\nFrom me\n>From you\nFrom: not\n",
	  "Subject: x\n\n>From me\n>>From you\nFrom: not\n\n" },
	{ "\n\nFrom \n", "\n\n>From \n\n" },
};

START_TEST(test_quoting)
{
	size_t chunks[] = { 4096, 1, 3 };
	const char *dsn = NULL;
	char *err = NULL, *got, *want;
	struct mbox_opts o;
	size_t c;

	mbox_opts_init(&o);
	for (c = 0; c < ARRAY_SIZE(chunks); c++) {
		unlink(mbox);
		ck_assert_int_eq(deliver(quote_cases[_i].in, chunks[c], &o, &dsn, &err), 0);
		ck_assert_str_eq(dsn, "2.0.0");
		got = slurp(mbox, NULL);
		want = xasprintf(FROM0 "%s", quote_cases[_i].out);
		ck_assert_msg(strcmp(got, want) == 0, "case %d chunk %zu: got [%s] want [%s]",
		    _i, chunks[c], got, want);
		free(got);
		free(want);
	}
}
END_TEST

START_TEST(test_append_two)
{
	const char *dsn;
	char *err = NULL, *got;
	struct mbox_opts o;
	struct stat st;

	mbox_opts_init(&o);
	o.owner = geteuid();
	ck_assert_int_eq(deliver("one\n", 100, &o, &dsn, &err), 0);
	ck_assert_int_eq(mbox_deliver(mbox, "", 0, produce,
	    &(struct src){ "two\n", 4, 4, 0 }, &o, &dsn, &err), 0);
	got = slurp(mbox, NULL);
	ck_assert_str_eq(got, FROM0 "one\n\nFrom MAILER-DAEMON Thu Jan  1 00:00:00 1970\ntwo\n\n");
	free(got);
	ck_assert_int_eq(stat(mbox, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	got = xasprintf("%s.lock", mbox);
	ck_assert_int_eq(access(got, F_OK), -1);
	free(got);
}
END_TEST

START_TEST(test_dotlock_held)
{
	const char *dsn;
	char *err = NULL, *lock = xasprintf("%s.lock", mbox);
	struct mbox_opts o;
	struct stat st;
	int fd;

	mbox_opts_init(&o);
	o.lock_timeout = 1;
	fd = open(lock, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "4.2.0");
	ck_assert_ptr_nonnull(strstr(err, "lock"));
	free(err);
	err = NULL;
	/* Someone else's lock is left alone; the mailbox was not touched. */
	ck_assert_int_eq(access(lock, F_OK), 0);
	ck_assert_int_eq(stat(mbox, &st), -1);
	/* A stale one is removed. */
	ck_assert_int_eq(utimes(lock, (struct timeval[2]){ { 1000, 0 }, { 1000, 0 } }), 0);
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), 0);
	ck_assert_int_eq(access(lock, F_OK), -1);
	free(lock);
}
END_TEST

START_TEST(test_fcntl_held)
{
	int pfd[2], fd;
	const char *dsn;
	char *err = NULL, c, *got;
	struct mbox_opts o;
	struct flock fl;
	pid_t pid;
	int status;

	fd = open(mbox, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_SETLK, &fl) < 0)
			_exit(1);
		if (write(pfd[1], "L", 1) != 1)
			_exit(1);
		sleep(30);
		_exit(0);
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	mbox_opts_init(&o);
	o.lock_timeout = 1;
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "4.2.0");
	ck_assert_ptr_nonnull(strstr(err, "locked"));
	free(err);
	err = NULL;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* Lock released: the same delivery now goes through. */
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), 0);
	got = slurp(mbox, NULL);
	ck_assert_str_eq(got, FROM0 "x\n\n");
	free(got);
	close(fd);
	close(pfd[0]);
}
END_TEST

START_TEST(test_truncate_on_error)
{
	static const char big[] = "line one\nline two\nline three\nline four\n";
	struct src s = { big, sizeof(big) - 1, 5, 20 };
	const char *dsn;
	char *err = NULL, *before, *after;
	size_t blen, alen;
	struct mbox_opts o;

	mbox_opts_init(&o);
	ck_assert_int_eq(deliver("first\n", 100, &o, &dsn, &err), 0);
	before = slurp(mbox, &blen);
	ck_assert_int_eq(mbox_deliver(mbox, "a@b", 0, produce, &s, &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "4.3.0");
	ck_assert_ptr_nonnull(err);
	after = slurp(mbox, &alen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(after, before, blen);
	free(before);
	free(after);
	free(err);
}
END_TEST

START_TEST(test_size_limit)
{
	const char *dsn;
	char *err = NULL;
	struct mbox_opts o;
	struct stat st;

	mbox_opts_init(&o);
	o.size_limit = 60;
	ck_assert_int_eq(deliver("small\n", 100, &o, &dsn, &err), 0);
	ck_assert_int_eq(deliver("this one is long enough to pass the limit\n", 100,
	    &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "5.2.2");
	free(err);
	ck_assert_int_eq(stat(mbox, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)strlen(FROM0 "small\n\n"));
}
END_TEST

START_TEST(test_refuse_unsafe)
{
	const char *dsn;
	char *err = NULL, *target = xasprintf("%s/target", tmpbase);
	char *other = xasprintf("%s/other", tmpbase), *got;
	struct mbox_opts o;
	int fd;

	mbox_opts_init(&o);
	fd = open(target, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* Symlink. */
	ck_assert_int_eq(symlink(target, mbox), 0);
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "5.2.0");
	ck_assert_ptr_nonnull(strstr(err, "symbolic"));
	free(err);
	err = NULL;
	got = slurp(target, NULL);
	ck_assert_str_eq(got, "");
	free(got);
	unlink(mbox);
	/* Hard link. */
	ck_assert_int_eq(link(target, mbox), 0);
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "5.2.0");
	free(err);
	err = NULL;
	unlink(mbox);
	/* Not a regular file. */
	ck_assert_int_eq(mkfifo(mbox, 0600), 0);
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "5.2.0");
	free(err);
	err = NULL;
	unlink(mbox);
	/* Wrong owner. */
	o.owner = geteuid() + 1;
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "5.2.0");
	ck_assert_ptr_nonnull(strstr(err, "owned"));
	free(err);
	(void)other;
	free(other);
	free(target);
}
END_TEST

START_TEST(test_chown_new)
{
	const char *dsn;
	char *err = NULL;
	struct mbox_opts o;
	struct stat st;

	if (geteuid() != 0)
		return;
	mbox_opts_init(&o);
	o.owner = 65534;
	o.group = 65534;
	o.chown_new = 1;
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), 0);
	ck_assert_int_eq(stat(mbox, &st), 0);
	ck_assert_int_eq(st.st_uid, 65534);
	ck_assert_int_eq(st.st_gid, 65534);
}
END_TEST

/* ---- reading the spool as a POP3 maildrop ---- */

static int
collect(const char *p, size_t n, void *ctx)
{
	return buf_append(ctx, p, n);
}

static char *
drop_text(struct mbox_drop *d, size_t i)
{
	struct buf b = BUF_INIT(0);
	char *err = NULL;

	ck_assert_int_eq(mbox_drop_read(d, i, collect, &b, &err), 0);
	return buf_steal(&b);
}

/* Everything local writes reads back as it was given (plus the final
 * newline the writer adds), each message apart, sizes as POP3 counts. */
START_TEST(test_drop_roundtrip)
{
	struct mbox_opts o;
	struct mbox_drop *d;
	const char *dsn;
	char *err = NULL, *got, want[256], uidl0[56];
	size_t i, n = ARRAY_SIZE(quote_cases);

	mbox_opts_init(&o);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(deliver(quote_cases[i].in, 1, &o, &dsn, &err), 0);
	ck_assert_int_eq(mbox_drop_open(mbox, &o, &d, &err), 0);
	ck_assert_uint_eq(mbox_drop_count(d), n);
	for (i = 0; i < n; i++) {
		const char *in = quote_cases[i].in;
		const struct mbox_drop_msg *m = mbox_drop_msg(d, i);
		size_t len = strlen(in), lf = 0, k;

		snprintf(want, sizeof(want), "%s%s", in,
		    len > 0 && in[len - 1] != '\n' ? "\n" : "");
		got = drop_text(d, i);
		ck_assert_msg(strcmp(got, want) == 0, "case %zu: got \"%s\" want \"%s\"", i,
		    got, want);
		ck_assert_uint_eq(m->size, strlen(want));
		for (k = 0; want[k] != '\0'; k++)
			lf += want[k] == '\n';
		ck_assert_uint_eq(m->wire_size, strlen(want) + lf);
		ck_assert_uint_ge(strlen(m->uidl), 32);
		free(got);
	}
	/* repeated contents still get distinct UIDLs */
	for (i = 1; i < n; i++)
		ck_assert_str_ne(mbox_drop_msg(d, 0)->uidl, mbox_drop_msg(d, i)->uidl);
	snprintf(uidl0, sizeof(uidl0), "%s", mbox_drop_msg(d, 3)->uidl);
	mbox_drop_close(&d);
	ck_assert_ptr_null(d);
	/* stable across sessions */
	ck_assert_int_eq(mbox_drop_open(mbox, &o, &d, &err), 0);
	ck_assert_str_eq(mbox_drop_msg(d, 3)->uidl, uidl0);
	mbox_drop_close(&d);
}
END_TEST

START_TEST(test_drop_expunge)
{
	struct mbox_opts o;
	struct mbox_drop *d;
	const char *dsn;
	char *err = NULL, *got, uidl[56];
	size_t del[] = { 0, 2 };

	mbox_opts_init(&o);
	ck_assert_int_eq(deliver("one\nFrom inside\n", 5, &o, &dsn, &err), 0);
	ck_assert_int_eq(deliver("two\n", 5, &o, &dsn, &err), 0);
	ck_assert_int_eq(deliver("three\n", 5, &o, &dsn, &err), 0);
	ck_assert_int_eq(deliver("four", 5, &o, &dsn, &err), 0);
	ck_assert_int_eq(mbox_drop_open(mbox, &o, &d, &err), 0);
	ck_assert_uint_eq(mbox_drop_count(d), 4);
	snprintf(uidl, sizeof(uidl), "%s", mbox_drop_msg(d, 1)->uidl);
	ck_assert_int_eq(mbox_drop_expunge(d, del, 2, &err), 0);
	ck_assert_uint_eq(mbox_drop_count(d), 2);
	ck_assert_str_eq(mbox_drop_msg(d, 0)->uidl, uidl);
	got = drop_text(d, 0);
	ck_assert_str_eq(got, "two\n");
	free(got);
	got = drop_text(d, 1);
	ck_assert_str_eq(got, "four\n");
	free(got);
	mbox_drop_close(&d);
	got = slurp(mbox, NULL);
	ck_assert_str_eq(got, FROM0 "two\n\n" FROM0 "four\n\n");
	free(got);
	/* and all of them: an empty file */
	ck_assert_int_eq(mbox_drop_open(mbox, &o, &d, &err), 0);
	ck_assert_int_eq(mbox_drop_expunge(d, (size_t[]){ 0, 1 }, 2, &err), 0);
	ck_assert_uint_eq(mbox_drop_count(d), 0);
	mbox_drop_close(&d);
	got = slurp(mbox, NULL);
	ck_assert_str_eq(got, "");
	free(got);
}
END_TEST

/* A session holds local's locks: delivery waits, then defers (4.2.0). */
START_TEST(test_drop_locks_out_delivery)
{
	struct mbox_opts o;
	struct mbox_drop *d;
	const char *dsn;
	char *err = NULL;

	mbox_opts_init(&o);
	ck_assert_int_eq(mbox_drop_open(mbox, &o, &d, &err), 0);   /* missing: empty */
	ck_assert_uint_eq(mbox_drop_count(d), 0);
	o.lock_timeout = 1;
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "4.2.0");
	free(err);
	err = NULL;
	mbox_drop_close(&d);
	ck_assert_int_eq(deliver("x\n", 10, &o, &dsn, &err), 0);
	/* not an mbox at all */
	ck_assert_int_eq(file_write_atomic(mbox, "junk\n", 5, 0600), 0);
	ck_assert_int_eq(mbox_drop_open(mbox, &o, &d, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an mbox"));
	free(err);
}
END_TEST

static Suite *
mbox_suite(void)
{
	Suite *s = suite_create("mbox");
	TCase *tc = tcase_create("deliver");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_quoting, 0, ARRAY_SIZE(quote_cases));
	tcase_add_test(tc, test_append_two);
	tcase_add_test(tc, test_dotlock_held);
	tcase_add_test(tc, test_fcntl_held);
	tcase_add_test(tc, test_truncate_on_error);
	tcase_add_test(tc, test_size_limit);
	tcase_add_test(tc, test_refuse_unsafe);
	tcase_add_test(tc, test_chown_new);
	tcase_add_test(tc, test_drop_roundtrip);
	tcase_add_test(tc, test_drop_expunge);
	tcase_add_test(tc, test_drop_locks_out_delivery);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mbox_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
