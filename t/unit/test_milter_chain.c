/*
 * test_milter_chain - lib/mail/milter_chain.c without sockets: where a
 * message's header ends as milters see it (milter_message_split), and
 * the end-of-message result written into an uncommitted queue file
 * (milter_queue_apply): changed sender, deleted and added recipients,
 * hold, edited content, same queue ID. The conversation itself runs
 * against a real milter in t/integration/test_milter.py.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/milter_chain.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "util/alloc.h"
#include "util/buf.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct {
	const char *msg;
	size_t hdr_len, body_off;
} splits[] = {
	{ "A: b\nC: d\n\nbody\n", 10, 11 },
	{ "A: b\n cont\n\nbody\n", 11, 12 },
	{ "\nbody only\n", 0, 1 },
	{ "A: b\n", 5, 5 },                      /* no body, no empty line */
	{ "A: b\nnot a field\nrest\n", 5, 5 },   /* a non-field line starts the body */
	{ " folded first\n\n", 0, 0 },
	{ "", 0, 0 },
	{ "Bad Name: x\n\n", 0, 0 },             /* a space in the name */
};

START_TEST(test_split)
{
	size_t h = 99, b = 99;
	const char *m = splits[_i].msg;

	milter_message_split(m, strlen(m), &h, &b);
	ck_assert_uint_eq(h, splits[_i].hdr_len);
	ck_assert_uint_eq(b, splits[_i].body_off);
}
END_TEST

static char qdir[] = "/tmp/test_milter_chain.XXXXXX";
static struct resolver *res;

/* virtual_alias_maps for recipients a milter adds: c@x.test is an alias
 * of c1@y.test and a@x.test (already a recipient); loop@x.test loops. */
static void
setup(void)
{
	char path[128], *err = NULL;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(qdir));
	snprintf(path, sizeof(path), "%s/postern.conf", qdir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "mydestination = localhost\n"
	    "virtual_alias_maps = inline:{ { c@x.test = c1@y.test, a@x.test },"
	    " loop@x.test=loop2@x.test, loop2@x.test=loop@x.test }\n");
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(config_load(qdir, &err) == 0, "%s", err);
	res = resolver_open(&err);
	ck_assert_msg(res != NULL, "resolver_open: %s", err);
	ck_assert_int_eq(queue_dirs_create(qdir, (uid_t)-1, (gid_t)-1, &err), 0);
}

static void
teardown(void)
{
	char cmd[128];

	resolver_close(&res);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", qdir);
	(void)system(cmd);
	strcpy(qdir, "/tmp/test_milter_chain.XXXXXX");
}

START_TEST(test_queue_apply)
{
	struct queue_writer *w;
	struct buf content = BUF_INIT(0);
	struct milter_message msg;
	char *err = NULL, id[QUEUE_ID_MAX], wid[QUEUE_ID_MAX];
	char *orig[] = { "a@x.test", "b@x.test", NULL };

	w = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	ck_assert_ptr_nonnull(w);
	snprintf(wid, sizeof(wid), "%s", queue_writer_id(w));
	ck_assert_int_eq(queue_writer_sender(w, "s@x.test"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "a@x.test", "a@x.test", ""), 0);
	/* an alias expanded to two: DELRCPT of b@x.test takes both */
	ck_assert_int_eq(queue_writer_rcpt(w, "b1@y.test", "b@x.test", ""), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "b2@y.test", "b@x.test", ""), 0);

	memset(&msg, 0, sizeof(msg));
	(void)buf_puts(&content, "X-New: 1\nSubject: s\n\nnew body\n");
	msg.content = &content;
	msg.env.sender = xstrdup("changed@x.test");
	msg.env.rcpts = xcalloc(4, sizeof(char *));
	msg.env.rcpt_args = xcalloc(4, sizeof(char *));
	msg.env.rcpts[0] = xstrdup("A@x.test");   /* kept: compared case-insensitively */
	msg.env.rcpts[1] = xstrdup("c@x.test");   /* added: an alias */
	msg.env.rcpts[2] = xstrdup("d@x.test");   /* added: not one */
	msg.env.nrcpt = 3;
	msg.env.hold = 1;
	ck_assert_int_eq(milter_queue_apply(w, &msg, "s@x.test", orig, res, wid), 0);
	ck_assert_int_eq(queue_writer_commit(w, id), 0);
	ck_assert_str_eq(id, wid);
	queue_writer_free(&w);

	char *path = queue_path(qdir, QUEUE_HOLD, id);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	struct qenv env;
	ck_assert_int_eq(queue_read(fd, &env, &err), 0);
	ck_assert_str_eq(env.sender, "changed@x.test");
	/* c@x.test became c1@y.test (a@x.test was there already) */
	ck_assert_uint_eq(env.nrcpt, 3);
	ck_assert_str_eq(env.rcpts[0].addr, "a@x.test");
	ck_assert_str_eq(env.rcpts[1].addr, "c1@y.test");
	ck_assert_str_eq(env.rcpts[1].orig, "c@x.test");
	ck_assert_str_eq(env.rcpts[2].addr, "d@x.test");
	ck_assert_int_eq(env.content_size, (off_t)content.len);
	qenv_free(&env);
	close(fd);
	unlink(path);
	free(path);
	milter_envelope_free(&msg.env);
	buf_free(&content);
}
END_TEST

/* An added recipient whose expansion loops: the file is not to be
 * committed (the caller defers, as Postfix's cleanup does). */
START_TEST(test_queue_apply_alias_loop)
{
	struct queue_writer *w;
	struct buf content = BUF_INIT(0);
	struct milter_message msg;
	char *err = NULL;
	char *orig[] = { "a@x.test", NULL };

	w = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(queue_writer_sender(w, "s@x.test"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "a@x.test", "a@x.test", ""), 0);
	memset(&msg, 0, sizeof(msg));
	(void)buf_puts(&content, "Subject: s\n\nbody\n");
	msg.content = &content;
	msg.env.sender = xstrdup("s@x.test");
	msg.env.rcpts = xcalloc(3, sizeof(char *));
	msg.env.rcpt_args = xcalloc(3, sizeof(char *));
	msg.env.rcpts[0] = xstrdup("a@x.test");
	msg.env.rcpts[1] = xstrdup("loop@x.test");
	msg.env.nrcpt = 2;
	ck_assert_int_eq(milter_queue_apply(w, &msg, "s@x.test", orig, res,
	    queue_writer_id(w)), -1);
	queue_writer_abort(&w);
	milter_envelope_free(&msg.env);
	buf_free(&content);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("milter_chain");
	TCase *tc = tcase_create("milter_chain");

	tcase_add_loop_test(tc, test_split, 0, N(splits));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_queue_apply);
	tcase_add_test(tc, test_queue_apply_alias_loop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
