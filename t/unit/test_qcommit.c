/*
 * test_qcommit - the group commit thread: every writer handed over ends
 * as a complete queue file under its queue ID and is reported once on
 * the loop; a failed step is reported with its errno and leaves no
 * name; a detached request is still committed; the step-by-step commit
 * (seal, sync, link, done) refuses calls out of order.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/loop.h"
#include "mail/qcommit.h"
#include "mail/queue.h"
#include "queue_fixture.h"

#define N 50

struct seen {
	int calls;
	int err;
	int null_ctx;
	char id[QUEUE_ID_MAX];
	const char *step;
};

static struct seen seen[N];
static int reported, batch_rounds;
static struct loop *lp;

static void
setup(void)
{
	queue_fixture_setup("test_qcommit");
	memset(seen, 0, sizeof(seen));
	reported = batch_rounds = 0;
	lp = loop_new();
}

static void
teardown(void)
{
	loop_free(&lp);
	queue_fixture_teardown();
}

static void
done(void *ctx, const char *id, int err, const char *step)
{
	struct seen *sn = ctx;
	static struct seen orphan;

	if (sn == NULL)
		sn = &orphan;
	sn->calls++;
	sn->err = err;
	sn->step = step;
	snprintf(sn->id, sizeof(sn->id), "%s", id);
	if (ctx == NULL)
		seen[N - 1].null_ctx++;
	reported++;
}

static void
batch_done(void *ctx)
{
	(void)ctx;
	batch_rounds++;
}

static void
stop_when_all(struct loop *l, void *ctx)
{
	int *want = ctx;

	if (reported >= *want)
		loop_stop(l);
	else
		(void)loop_timer_add(l, 5, stop_when_all, ctx);
}

static void
run_until(int want)
{
	static int w;

	w = want;
	(void)loop_timer_add(lp, 5, stop_when_all, &w);
	ck_assert_int_eq(loop_run(lp), 0);
}

static struct queue_writer *
new_writer(int k, int with_rcpt)
{
	char *err = NULL, body[64];
	struct queue_writer *w = queue_writer_open(qdir, QUEUE_INCOMING,
	    (uid_t)-1, (gid_t)-1, &err);

	ck_assert_msg(w != NULL, "open: %s", err ? err : "?");
	ck_assert_int_eq(queue_writer_sender(w, "a@example.test"), 0);
	if (with_rcpt)
		ck_assert_int_eq(queue_writer_rcpt(w, "b@example.test", "", ""), 0);
	snprintf(body, sizeof(body), "Subject: %d\n\nbody %d\n", k, k);
	if (with_rcpt)
		ck_assert_int_eq(queue_writer_content(w, body, strlen(body)), 0);
	return w;
}

static int
file_ok(const char *dir, const char *id)
{
	char *path = queue_path(qdir, dir, id), *err = NULL;
	struct qenv env;
	int fd = open(path, O_RDONLY), ok;

	free(path);
	if (fd < 0)
		return 0;
	memset(&env, 0, sizeof(env));
	ok = queue_read(fd, &env, &err) == 0 && env.nrcpt == 1;
	qenv_free(&env);
	free(err);
	close(fd);
	return ok;
}

static int
count_entries(const char *dir)
{
	char *path = xasprintf("%s/%s", qdir, dir);
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	free(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' || strncmp(e->d_name, ".tmp", 4) == 0)
			n++;
	closedir(d);
	return n;
}

START_TEST(test_batch_commits_all)
{
	struct qcommit *qc = qcommit_new(lp, batch_done, NULL);
	unsigned long long files, dirs, batches;

	ck_assert_ptr_nonnull(qc);
	for (int k = 0; k < N; k++)
		(void)qcommit_submit(qc, new_writer(k, 1), done, &seen[k]);
	ck_assert_uint_eq(qcommit_pending(qc), N);
	/* Nothing is reported before the loop runs. */
	ck_assert_int_eq(reported, 0);
	run_until(N);
	ck_assert_uint_eq(qcommit_pending(qc), 0);
	for (int k = 0; k < N; k++) {
		ck_assert_int_eq(seen[k].calls, 1);
		ck_assert_int_eq(seen[k].err, 0);
		ck_assert_msg(queue_id_valid(seen[k].id), "id %s", seen[k].id);
		ck_assert_msg(file_ok(QUEUE_INCOMING, seen[k].id), "file %s", seen[k].id);
	}
	ck_assert_int_eq(count_entries(QUEUE_INCOMING), N);
	qcommit_stats(qc, &files, &dirs, &batches);
	ck_assert_uint_eq(files, N);
	/* Group commit: one directory fsync per batch, never one per file
	 * when several were waiting together. */
	ck_assert_uint_eq(dirs, batches);
	ck_assert_uint_le(batches, N);
	ck_assert_int_ge(batch_rounds, 1);
}
END_TEST

START_TEST(test_failures_reported)
{
	struct qcommit *qc = qcommit_new(lp, NULL, NULL);
	struct queue_writer *w;
	char *path;
	int fd;

	ck_assert_ptr_nonnull(qc);
	/* No recipient: the seal fails, reported from the loop. */
	(void)qcommit_submit(qc, new_writer(0, 0), done, &seen[0]);
	ck_assert_int_eq(reported, 0);
	/* The queue ID's name is taken: the rename fails, the tmp file goes. */
	w = new_writer(1, 1);
	path = queue_path(qdir, QUEUE_INCOMING, queue_writer_id(w));
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	free(path);
	(void)qcommit_submit(qc, w, done, &seen[1]);
	run_until(2);
	ck_assert_int_eq(seen[0].err, EINVAL);
	ck_assert_str_eq(seen[0].step, "write");
	ck_assert_int_eq(seen[1].err, EEXIST);
	ck_assert_str_eq(seen[1].step, "rename");
	/* Only the squatter is left: no .tmp file of ours. */
	ck_assert_int_eq(count_entries(QUEUE_INCOMING), 1);
}
END_TEST

START_TEST(test_detached_still_commits)
{
	struct qcommit *qc = qcommit_new(lp, NULL, NULL);
	struct qcommit_req *r;

	ck_assert_ptr_nonnull(qc);
	r = qcommit_submit(qc, new_writer(0, 1), done, &seen[0]);
	qcommit_detach(r);
	run_until(1);
	ck_assert_int_eq(seen[0].calls, 0);
	ck_assert_int_eq(seen[N - 1].null_ctx, 1);
	ck_assert_int_eq(count_entries(QUEUE_INCOMING), 1);
}
END_TEST

START_TEST(test_steps_in_order)
{
	struct queue_writer *w = new_writer(0, 1);
	char id[QUEUE_ID_MAX];

	snprintf(id, sizeof(id), "%s", queue_writer_id(w));
	ck_assert_int_eq(queue_writer_sync(w), -1);      /* not sealed */
	ck_assert_int_eq(queue_writer_link(w), -1);
	ck_assert_int_eq(queue_writer_seal(w), 0);
	ck_assert_int_eq(queue_writer_seal(w), -1);      /* once */
	ck_assert_int_eq(queue_writer_content(w, "x", 1), -1);
	ck_assert_int_eq(queue_writer_retarget(w, qdir, QUEUE_HOLD), -1);
	ck_assert_int_eq(queue_writer_done(w, 0), -1);   /* not linked */
	ck_assert_int_eq(queue_writer_sync(w), 0);
	ck_assert_int_eq(queue_writer_link(w), 0);
	ck_assert_msg(file_ok(QUEUE_INCOMING, id), "linked file");
	/* The directory fsync failed: the name is taken back. */
	ck_assert_int_eq(queue_writer_done(w, EIO), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(queue_writer_withdraw_failed(w), 0);
	ck_assert_msg(!file_ok(QUEUE_INCOMING, id), "withdrawn");
	queue_writer_abort(&w);
	ck_assert_int_eq(count_entries(QUEUE_INCOMING), 0);
}
END_TEST

static Suite *
qcommit_suite(void)
{
	Suite *s = suite_create("qcommit");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_batch_commits_all);
	tcase_add_test(tc, test_failures_reported);
	tcase_add_test(tc, test_detached_still_commits);
	tcase_add_test(tc, test_steps_in_order);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(qcommit_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
