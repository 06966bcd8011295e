/*
 * test_folder - Maildir++ folders in lib/store/folder.c: the name rule
 * against hostile names, delete (recursive, refusing what is not mail,
 * never following a planted link), rename (children move, UIDVALIDITY and
 * UIDs survive, INBOX's special case), subscriptions (atomic rewrite,
 * two processes subscribing at once both win, Dovecot's file format) and
 * the first-login folders created once.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "store/index.h"
#include "store/maildir.h"

#define FIXTURE_NAME "test_folder"
#include "maildir_fixture.h"

/* lstat of dir + rel. */
static int
exists(const char *dir, const char *rel)
{
	char p[2 * PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", dir, rel);
	return lstat(p, &st) == 0;
}

static void
put(const char *rel, const char *body)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", mdir, rel);
	ck_assert_int_eq(file_write_atomic(p, body, strlen(body), 0600), 0);
}

static void
create(const char *name)
{
	char *err = NULL;

	if (mbx_folder_create(mdir, name, &err) != 0)
		ck_abort_msg("create %s: %s", name, err);
}

static char *
joined(char **v)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; v[i] != NULL; i++)
		buf_printf(&b, "%s%s", i ? "," : "", v[i]);
	strv_free(&v);
	return b.data != NULL ? buf_steal(&b) : xstrdup("");
}

static char *
folders(void)
{
	char **v, *err = NULL;

	ck_assert_int_eq(mbx_folder_list(mdir, &v, &err), 0);
	return joined(v);
}

static char *
subs(void)
{
	char **v, *err = NULL;

	ck_assert_int_eq(mbx_subs_list(mdir, &v, &err), 0);
	return joined(v);
}

#define ASSERT_LIST(call, want) do { \
	char *got_ = (call); \
	ck_assert_str_eq(got_, want); \
	free(got_); \
} while (0)

START_TEST(test_hostile_names)
{
	char big[300], deep[64], ok16[64], max[256];
	const char *bad[] = { "..", ".", "a/../b", "../x", "/abs", "a/", "a//b", "",
	    "a\x01" "b", "a\nb", "a\x7f", "a.b", "a\\b", "\xff\xfe", "\xc0\xaf",
	    big, deep };
	const char *good[] = { "INBOX", "inbox", "Sent", "Archive/2024", "Entwürfe",
	    "a b", "&-", ok16, max };
	char *err = NULL, *path;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(max, 'y', sizeof(max) - 1);
	max[sizeof(max) - 1] = '\0';
	strcpy(deep, "a");
	for (int i = 1; i < 17; i++)
		strcat(deep, "/a");
	strcpy(ok16, "a");
	for (int i = 1; i < 16; i++)
		strcat(ok16, "/a");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(mbx_folder_name_ok(bad[i], &err) == MBX_ERR, "accepted %s", bad[i]);
		ck_assert_ptr_nonnull(err);
		free(err);
		err = NULL;
		/* every entry point refuses it before touching the disk */
		ck_assert_int_eq(mbx_folder_path(mdir, bad[i], &path, NULL), MBX_ERR);
		ck_assert_int_eq(mbx_folder_create(mdir, bad[i], NULL), MBX_ERR);
		ck_assert_int_eq(mbx_folder_delete(mdir, bad[i], NULL), MBX_ERR);
		ck_assert_int_eq(mbx_folder_rename(mdir, "Sent", bad[i], NULL), MBX_ERR);
		ck_assert_int_eq(mbx_subs_set(mdir, bad[i], 1, NULL), MBX_ERR);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(mbx_folder_name_ok(good[i], &err) == 0, "refused %s: %s", good[i],
		    err);
	ASSERT_LIST(folders(), "");
	ASSERT_LIST(subs(), "");
	ck_assert(!exists(mdir, "/../x"));
}
END_TEST

START_TEST(test_delete)
{
	char *err = NULL;

	create("A");
	create("A/B");
	put(".A/cur/1.x:2,S", "msg\n");
	put(".A/maildirfolder", "");
	ck_assert_int_eq(mbx_folder_delete(mdir, "A", &err), MBX_HASKIDS);   /* has a child */
	ck_assert_ptr_nonnull(strstr(err, "child"));
	free(err);
	err = NULL;
	ck_assert_int_eq(mbx_folder_delete(mdir, "A/B", &err), 0);
	ck_assert_int_eq(mbx_folder_delete(mdir, "A", &err), 0);
	ck_assert(!exists(mdir, "/.A"));
	ASSERT_LIST(folders(), "");
	ck_assert_int_eq(mbx_folder_delete(mdir, "A", &err), MBX_NOENT); /* gone */
	free(err);
	err = NULL;
	ck_assert_int_eq(mbx_folder_delete(mdir, "INBOX", &err), MBX_ERR);
	free(err);
	err = NULL;
	ck_assert_int_eq(mbx_folder_delete(mdir, "iNbOx", NULL), MBX_ERR);
	ck_assert(exists(mdir, "/cur"));

	/* Something that is not mail: refused before one file is removed. */
	char p[PATH_MAX];
	create("C");
	put(".C/new/keep", "msg\n");
	snprintf(p, sizeof(p), "%s/.C/cur/odd", mdir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_int_eq(mbx_folder_delete(mdir, "C", &err), MBX_ERR);
	free(err);
	err = NULL;
	ck_assert(exists(mdir, "/.C/new/keep"));
	ASSERT_LIST(folders(), "C");
}
END_TEST

/* A directory outside the Maildir, with a file that must survive. */
static void
outside(char *dir, size_t size)
{
	const char *dsn;
	char *err = NULL, p[2 * PATH_MAX];

	snprintf(dir, size, "%s/outside", tmpbase);
	ck_assert_int_eq(maildir_make(dir, &dsn, &err), 0);
	snprintf(p, sizeof(p), "%s/cur/precious", dir);
	ck_assert_int_eq(file_write_atomic(p, "x", 1, 0600), 0);
}

START_TEST(test_symlinks_not_followed)
{
	char out[PATH_MAX], link[PATH_MAX], *err = NULL;

	outside(out, sizeof(out));
	/* the folder entry itself is a link */
	snprintf(link, sizeof(link), "%s/.Evil", mdir);
	ck_assert_int_eq(symlink(out, link), 0);
	ck_assert_int_eq(mbx_folder_delete(mdir, "Evil", &err), MBX_ERR);
	ck_assert_ptr_nonnull(strstr(err, "symbolic link"));
	free(err);
	err = NULL;
	ck_assert(exists(out, "/cur/precious"));
	ck_assert_int_eq(mbx_folder_rename(mdir, "Evil", "Good", &err), MBX_ERR);
	free(err);
	err = NULL;
	ck_assert(!exists(mdir, "/.Good"));
	ASSERT_LIST(folders(), "");      /* a link is not listed as a folder */

	/* cur/ inside a real folder is a link */
	create("Half");
	snprintf(link, sizeof(link), "%s/.Half/cur", mdir);
	ck_assert_int_eq(rmdir(link), 0);
	snprintf(out + strlen(out), sizeof(out) - strlen(out), "/cur");
	ck_assert_int_eq(symlink(out, link), 0);
	ck_assert_int_eq(mbx_folder_delete(mdir, "Half", &err), MBX_ERR);
	free(err);
	err = NULL;
	ck_assert(exists(out, "/precious"));
	ck_assert(exists(mdir, "/.Half/new"));

	/* INBOX's cur/ is a link elsewhere: renaming INBOX moves nothing
	 * out of that directory */
	char cur[PATH_MAX];
	snprintf(cur, sizeof(cur), "%s/cur", mdir);
	ck_assert_int_eq(rmdir(cur), 0);
	ck_assert_int_eq(symlink(out, cur), 0);
	ck_assert_int_eq(mbx_folder_rename(mdir, "INBOX", "Moved", &err), MBX_ERR);
	free(err);
	err = NULL;
	ck_assert(exists(out, "/precious"));
	ck_assert(!exists(mdir, "/.Moved/cur/precious"));
}
END_TEST

static uint32_t
uidvalidity_of(const char *name, uint32_t *count_r)
{
	struct mailbox *mb = NULL;
	struct mbx_status st;
	char *path, *err = NULL;
	uint32_t v;

	ck_assert_int_eq(mbx_folder_path(mdir, name, &path, &err), 0);
	if (mbx_open(path, 0, &mb, &err) != 0)
		ck_abort_msg("open %s: %s", name, err);
	ck_assert_int_eq(mbx_status(mb, &st, &err), 0);
	v = mbx_uidvalidity(mb);
	if (count_r != NULL)
		*count_r = st.messages;
	mbx_close(&mb);
	free(path);
	return v;
}

START_TEST(test_rename)
{
	uint32_t uv_a, uv_ab, n;
	char *err = NULL;

	create("A");
	create("A/B");
	create("A/B/C");
	create("AB");                  /* shares a prefix, not a child */
	put(".A/new/m1", "one\n");
	put(".A.B/cur/m2:2,S", "two\n");
	uv_a = uidvalidity_of("A", NULL);
	uv_ab = uidvalidity_of("A/B", NULL);
	ck_assert_int_eq(mbx_folder_rename(mdir, "A", "Z/Y", &err), 0);
	ASSERT_LIST(folders(), "AB,Z/Y,Z/Y/B,Z/Y/B/C");
	ck_assert_uint_eq(uidvalidity_of("Z/Y", &n), uv_a);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(uidvalidity_of("Z/Y/B", &n), uv_ab);
	ck_assert_uint_eq(n, 1);

	/* the target exists: nothing moves */
	ck_assert_int_eq(mbx_folder_rename(mdir, "AB", "Z/Y", &err), MBX_EXISTS);
	free(err);
	err = NULL;
	ck_assert_int_eq(mbx_folder_rename(mdir, "AB", "inbox", NULL), MBX_EXISTS);
	ck_assert_int_eq(mbx_folder_rename(mdir, "Nope", "X", NULL), MBX_NOENT);
	/* a child would end up 17 levels deep */
	ck_assert_int_eq(mbx_folder_rename(mdir, "Z", "1/2/3/4/5/6/7/8/9/10/11/12/13/14",
	    &err), MBX_ERR);
	ck_assert_ptr_nonnull(strstr(err, "levels"));
	free(err);
	err = NULL;
	ASSERT_LIST(folders(), "AB,Z/Y,Z/Y/B,Z/Y/B/C");
	/* a parent that exists only through its children renames them */
	ck_assert_int_eq(mbx_folder_rename(mdir, "Z", "Q", &err), 0);
	ASSERT_LIST(folders(), "AB,Q/Y,Q/Y/B,Q/Y/B/C");
}
END_TEST

START_TEST(test_rename_inbox)
{
	uint32_t n;
	char *err = NULL;

	put("new/m1", "one\n");
	put("cur/m2:2,FS", "two\n");
	create("INBOX/Child");
	put(".INBOX.Child/new/c1", "child\n");
	(void)uidvalidity_of("INBOX", &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(mbx_folder_rename(mdir, "inbox", "Old", &err), 0);
	(void)uidvalidity_of("INBOX", &n);
	ck_assert_uint_eq(n, 0);
	(void)uidvalidity_of("Old", &n);
	ck_assert_uint_eq(n, 2);
	ck_assert(exists(mdir, "/.Old/cur/m2:2,FS"));   /* flags kept */
	ck_assert(exists(mdir, "/.INBOX.Child/new/c1")); /* children stay */
	ASSERT_LIST(folders(), "INBOX/Child,Old");
	/* the target must not exist */
	put("new/m3", "three\n");
	ck_assert_int_eq(mbx_folder_rename(mdir, "INBOX", "Old", &err), MBX_EXISTS);
	free(err);
	ck_assert(exists(mdir, "/new/m3"));
}
END_TEST

START_TEST(test_subscriptions)
{
	char *err = NULL, *data;
	char p[PATH_MAX];
	struct stat st;

	ck_assert_int_eq(mbx_subs_set(mdir, "Sent", 1, &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "Entwürfe", 1, &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "inbox", 1, &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "Sent", 1, &err), 0);       /* twice: once */
	ck_assert_int_eq(mbx_subs_set(mdir, "Gone/Away", 1, &err), 0);  /* need not exist */
	ck_assert_int_eq(mbx_subs_set(mdir, "Gone/Away", 0, &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "Never", 0, &err), 0);
	ASSERT_LIST(subs(), "Entwürfe,INBOX,Sent");
	snprintf(p, sizeof(p), "%s/subscriptions", mdir);
	ck_assert_int_eq(file_read_all(p, 0, &data, NULL), 0);
	ck_assert_str_eq(data, "Entwürfe\nINBOX\nSent\n");
	free(data);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);

	/* Dovecot's v2 file, and junk lines that name nothing we could use */
	const char *dv = "V\t2\n\nArchive\t2024\nSent\n../etc\n\nEntw&APw-rfe\nA&-B\nQ&A\n";
	ck_assert_int_eq(file_write_atomic(p, dv, strlen(dv), 0600), 0);
	/* its names are modified UTF-7; one that is not stays as it is */
	ASSERT_LIST(subs(), "A&B,Archive/2024,Entwürfe,Q&A,Sent");

	/* a link planted as the file is not read */
	char out[PATH_MAX];
	snprintf(out, sizeof(out), "%s/elsewhere", tmpbase);
	ck_assert_int_eq(file_write_atomic(out, "Secret\n", 7, 0600), 0);
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(symlink(out, p), 0);
	ck_assert_int_eq(mbx_subs_list(mdir, (char ***)&data, &err), MBX_ERR);
	free(err);
}
END_TEST

/* RENAME: the subscriptions of the folder and the folders below it
 * move; others, and names that only share a prefix, stay. */
START_TEST(test_subscriptions_rename)
{
	char *err = NULL;

	ck_assert_int_eq(mbx_subs_set(mdir, "A", 1, &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "A/B/C", 1, &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "AB", 1, &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "Z/A", 1, &err), 0);   /* already there */
	ck_assert_int_eq(mbx_subs_rename(mdir, "A", "Z/A", &err), 0);
	ASSERT_LIST(subs(), "AB,Z/A,Z/A/B/C");
	/* not subscribed: the rename subscribes nothing */
	ck_assert_int_eq(mbx_subs_rename(mdir, "Q", "R", &err), 0);
	ASSERT_LIST(subs(), "AB,Z/A,Z/A/B/C");
	/* INBOX stays, its children stay, the new folder joins */
	ck_assert_int_eq(mbx_subs_set(mdir, "INBOX", 1, &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "INBOX/Kid", 1, &err), 0);
	ck_assert_int_eq(mbx_subs_rename(mdir, "inbox", "Old", &err), 0);
	ASSERT_LIST(subs(), "AB,INBOX,INBOX/Kid,Old,Z/A,Z/A/B/C");
	ck_assert_int_eq(mbx_subs_rename(mdir, "../x", "Y", &err), MBX_ERR);
	free(err);
}
END_TEST

/* Two processes subscribing different names at once: every one stays. */
START_TEST(test_subscriptions_concurrent)
{
	enum { PROCS = 2, EACH = 40 };
	pid_t pid[PROCS];
	char **v, *err = NULL;

	for (int k = 0; k < PROCS; k++) {
		pid[k] = fork();
		ck_assert_int_ge(pid[k], 0);
		if (pid[k] == 0) {
			char name[32];

			for (int i = 0; i < EACH; i++) {
				snprintf(name, sizeof(name), "p%d/n%02d", k, i);
				if (mbx_subs_set(mdir, name, 1, NULL) != 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < PROCS; k++) {
		int status;

		ck_assert_int_eq(waitpid(pid[k], &status, 0), pid[k]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(mbx_subs_list(mdir, &v, &err), 0);
	ck_assert_uint_eq(strv_len(v), PROCS * EACH);
	strv_free(&v);
}
END_TEST

START_TEST(test_folders_init)
{
	char *err = NULL;

	ck_assert_int_eq(mbx_folders_init(mdir, &err), 0);
	ASSERT_LIST(folders(), "Archive,Drafts,Junk,Sent,Trash");
	ASSERT_LIST(subs(), "Archive,Drafts,INBOX,Junk,Sent,Trash");
	ck_assert(exists(mdir, "/postern.folders-created"));
	ck_assert(exists(mdir, "/.Sent/maildirfolder"));
	ck_assert(!exists(mdir, "/maildirfolder"));
	/* the user deletes one: the next login does not bring it back */
	ck_assert_int_eq(mbx_folder_delete(mdir, "Junk", &err), 0);
	ck_assert_int_eq(mbx_subs_set(mdir, "Junk", 0, &err), 0);
	ck_assert_int_eq(mbx_folders_init(mdir, &err), 0);
	ASSERT_LIST(folders(), "Archive,Drafts,Sent,Trash");
	ASSERT_LIST(subs(), "Archive,Drafts,INBOX,Sent,Trash");
}
END_TEST

/* A Maildir Dovecot kept: its modified UTF-7 folder names on disk become
 * UTF-8 at the first login, once; names that do not decode, or whose
 * UTF-8 name is taken, stay. */
START_TEST(test_folders_init_dovecot_names)
{
	static const char *const dirs[] = {
		"/.Entw&APw-rfe", "/.Entw&APw-rfe.Alt", "/.A&-B", "/.Q&A", "/.Taken&-",
		"/.Taken&", "/.Dot&AC4-",
	};
	char p[PATH_MAX], *err = NULL;
	const char *dsn;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", mdir, dirs[i]);
		ck_assert_int_eq(maildir_make(p, &dsn, &err), 0);
	}
	snprintf(p, sizeof(p), "%s/dovecot-uidlist", mdir);
	ck_assert_int_eq(file_write_atomic(p, "3 V1 N1\n", 8, 0600), 0);
	ck_assert_int_eq(mbx_folders_init(mdir, &err), 0);
	ck_assert(exists(mdir, "/.Entwürfe/cur"));
	ck_assert(exists(mdir, "/.Entwürfe.Alt/cur"));
	ck_assert(exists(mdir, "/.A&B/cur"));
	ck_assert(exists(mdir, "/.Q&A/cur"));          /* not modified UTF-7 */
	ck_assert(exists(mdir, "/.Taken&-/cur"));      /* "Taken&" exists */
	ck_assert(exists(mdir, "/.Dot&AC4-/cur"));     /* would hold a '.' */
	ck_assert(!exists(mdir, "/.Entw&APw-rfe"));
	/* once: a folder made later under such a name is left alone */
	snprintf(p, sizeof(p), "%s/.Later&-", mdir);
	ck_assert_int_eq(maildir_make(p, &dsn, &err), 0);
	ck_assert_int_eq(mbx_folders_init(mdir, &err), 0);
	ck_assert(exists(mdir, "/.Later&-/cur"));
}
END_TEST

static Suite *
folder_suite(void)
{
	Suite *s = suite_create("folder");
	TCase *tc = tcase_create("folder");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hostile_names);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_symlinks_not_followed);
	tcase_add_test(tc, test_rename);
	tcase_add_test(tc, test_rename_inbox);
	tcase_add_test(tc, test_subscriptions);
	tcase_add_test(tc, test_subscriptions_rename);
	tcase_add_test(tc, test_subscriptions_concurrent);
	tcase_add_test(tc, test_folders_init);
	tcase_add_test(tc, test_folders_init_dovecot_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(folder_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
