/*
 * test_index - the mailbox index against its Maildir: reconcile of files
 * added and removed behind its back, rebuild after a lost or corrupt index
 * (never reusing a UID under one UIDVALIDITY), concurrent writers in two
 * processes, a writer killed inside its transaction, flag renames,
 * expunge records, the cache, map growth, folder names.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "store/index.h"
#include "store/maildir.h"

#include "store/index_int.h"

#define FIXTURE_NAME "test_index"
#include "maildir_fixture.h"

/* A file as another program would drop it, with a chosen mtime. */
static void
put_file(const char *sub, const char *name, const char *body, time_t mtime)
{
	char p[PATH_MAX];
	struct timespec ts[2];

	snprintf(p, sizeof(p), "%s/%s/%s", mdir, sub, name);
	ck_assert_int_eq(file_write_atomic(p, body, strlen(body), 0600), 0);
	ts[0].tv_sec = ts[1].tv_sec = mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static struct mailbox *
open_mb(void)
{
	struct mailbox *mb = NULL;
	char *err = NULL;

	if (mbx_open(mdir, 0, &mb, &err) != 0)
		ck_abort_msg("mbx_open: %s", err != NULL ? err : "?");
	return mb;
}

static uint32_t
uid_of(struct mailbox *mb, const char *base)
{
	struct mbx_msg *v;
	size_t n, i;
	uint32_t uid = 0;
	char *err = NULL;

	ck_assert_int_eq(mbx_list(mb, &v, &n, &err), 0);
	for (i = 0; i < n; i++)
		if (strncmp(v[i].name + 4, base, strlen(base)) == 0 &&
		    (v[i].name[4 + strlen(base)] == '\0' || v[i].name[4 + strlen(base)] == ':'))
			uid = v[i].uid;
	mbx_msgs_free(&v, n);
	return uid;
}

START_TEST(test_reconcile_arrival_order)
{
	struct mailbox *mb;
	struct mbx_msg *v;
	size_t n;
	char *err = NULL;
	int changed;

	put_file("new", "b", "second\n", 2000);
	put_file("new", "a", "third\n", 3000);
	put_file("cur", "c:2,S", "first\r\nline\n", 1000);
	mb = open_mb();
	ck_assert_int_eq(mbx_rebuilt(mb), 1);
	ck_assert_int_eq(mbx_list(mb, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	/* arrival order is mtime order, not name order */
	ck_assert_str_eq(v[0].name, "cur/c:2,S");
	ck_assert_uint_eq(v[0].uid, 1);
	ck_assert_uint_eq(v[0].flags, MBX_SEEN);
	ck_assert_uint_eq(v[0].size, 12);
	ck_assert_uint_eq(v[0].wire_size, 13);   /* one bare LF */
	ck_assert_int_eq(v[0].internaldate, 1000);
	ck_assert_str_eq(v[1].name, "new/b");
	ck_assert_uint_eq(v[1].uid, 2);
	ck_assert_str_eq(v[2].name, "new/a");
	ck_assert_uint_eq(v[2].uid, 3);
	ck_assert_uint_eq(mbx_uidnext(mb), 4);
	mbx_msgs_free(&v, n);

	/* another program removes one and adds one */
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/new/b", mdir);
	ck_assert_int_eq(unlink(p), 0);
	put_file("new", "d", "x", 500);   /* older mtime, still a higher UID */
	ck_assert_int_eq(mbx_sync(mb, &changed, &err), 0);
	ck_assert_int_eq(changed, 1);
	ck_assert_uint_eq(uid_of(mb, "d"), 4);
	ck_assert_uint_eq(uid_of(mb, "b"), 0);
	ck_assert_uint_eq(mbx_uidnext(mb), 5);

	struct mbx_expunge *e;
	ck_assert_int_eq(mbx_expunged_since(mb, 0, &e, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(e[0].uid, 2);
	ck_assert_uint_le(e[0].modseq, mbx_highestmodseq(mb));
	free(e);

	/* nothing new: no change */
	ck_assert_int_eq(mbx_sync(mb, &changed, &err), 0);
	ck_assert_int_eq(changed, 0);
	/* a reopen keeps everything */
	uint32_t uv = mbx_uidvalidity(mb);
	mbx_close(&mb);
	ck_assert_ptr_null(mb);
	mb = open_mb();
	ck_assert_int_eq(mbx_rebuilt(mb), 0);
	ck_assert_uint_eq(mbx_uidvalidity(mb), uv);
	ck_assert_uint_eq(uid_of(mb, "d"), 4);
	mbx_close(&mb);
}
END_TEST

/* Deleting or corrupting the index gives a new, greater UIDVALIDITY. */
START_TEST(test_rebuild_new_uidvalidity)
{
	struct mailbox *mb;
	char p[PATH_MAX];
	uint32_t uv1, uv2, uv3;
	int fd;

	put_file("new", "a", "a\n", 1000);
	put_file("new", "b", "b\n", 2000);
	mb = open_mb();
	uv1 = mbx_uidvalidity(mb);
	ck_assert_uint_eq(mbx_uidnext(mb), 3);
	mbx_close(&mb);

	snprintf(p, sizeof(p), "%s/%s", mdir, MBX_INDEX_NAME);
	ck_assert_int_eq(unlink(p), 0);
	mb = open_mb();
	uv2 = mbx_uidvalidity(mb);
	ck_assert_int_eq(mbx_rebuilt(mb), 1);
	ck_assert_uint_gt(uv2, uv1);   /* same second: still greater */
	mbx_close(&mb);

	/* garbage over the index file */
	fd = open(p, O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(write(fd, "garbage garbage garbage garbage!!", 32), 32);
	close(fd);
	mb = open_mb();
	uv3 = mbx_uidvalidity(mb);
	ck_assert_uint_gt(uv3, uv2);
	ck_assert_uint_eq(uid_of(mb, "a"), 1);
	ck_assert_uint_eq(uid_of(mb, "b"), 2);
	mbx_close(&mb);

	/* reindex on demand does the same */
	char *err = NULL;
	ck_assert_int_eq(mbx_reindex(mdir, &err), 0);
	mb = open_mb();
	ck_assert_uint_gt(mbx_uidvalidity(mb), uv3);
	mbx_close(&mb);
}
END_TEST

START_TEST(test_index_mode)
{
	struct mailbox *mb;
	struct stat st;
	char p[PATH_MAX];
	mode_t old = umask(0);

	mb = open_mb();
	umask(old);
	snprintf(p, sizeof(p), "%s/%s", mdir, MBX_INDEX_NAME);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s/%s-lock", mdir, MBX_INDEX_NAME);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	mbx_close(&mb);
}
END_TEST

static const char body[] = "Subject: x\n\nhello\n";

static int
produce(mail_out_fn out, void *octx, void *ctx)
{
	(void)ctx;
	return out(body, sizeof(body) - 1, octx);
}

/* Child: deliver n messages the way local does, syncing after each. */
static void
writer(int n)
{
	struct mailbox *mb = NULL;
	const char *dsn;
	char *err = NULL;
	int i;

	if (mbx_open(mdir, 0, &mb, &err) != 0)
		_exit(2);
	for (i = 0; i < n; i++) {
		if (maildir_deliver(mdir, produce, NULL, NULL, 0, &dsn, &err) != 0)
			_exit(3);
		if (mbx_sync(mb, NULL, &err) != 0)
			_exit(4);
	}
	mbx_close(&mb);
	_exit(0);
}

START_TEST(test_concurrent_writers)
{
	struct mailbox *mb;
	struct mbx_msg *v;
	size_t n, i;
	pid_t pid[3];
	int st, k;
	char *err = NULL;

	mbx_close(&(struct mailbox *){ open_mb() });
	for (k = 0; k < 3; k++) {
		pid[k] = fork();
		ck_assert_int_ge(pid[k], 0);
		if (pid[k] == 0)
			writer(40);
	}
	for (k = 0; k < 3; k++) {
		ck_assert_int_eq(waitpid(pid[k], &st, 0), pid[k]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d status %d", k, st);
	}
	mb = open_mb();
	ck_assert_int_eq(mbx_list(mb, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 120);
	for (i = 0; i < n; i++) {
		/* unique, increasing, no gaps: nothing was lost or duplicated */
		ck_assert_uint_eq(v[i].uid, i + 1);
		ck_assert_uint_eq(v[i].wire_size, sizeof(body) - 1 + 3);
	}
	ck_assert_uint_eq(mbx_uidnext(mb), 121);
	mbx_msgs_free(&v, n);
	mbx_close(&mb);
}
END_TEST

static void
die_in_txn(void)
{
	kill(getpid(), SIGKILL);
}

/* A writer killed inside its write transaction commits nothing: the next
 * opener gives the files UIDs above every UID ever committed. */
START_TEST(test_killed_in_txn)
{
	struct mailbox *mb;
	pid_t pid;
	int st;

	put_file("new", "a", "a\n", 1000);
	put_file("new", "b", "b\n", 1001);
	mb = open_mb();
	ck_assert_uint_eq(mbx_uidnext(mb), 3);
	mbx_close(&mb);
	put_file("new", "c", "c\n", 1002);
	put_file("new", "d", "d\n", 1003);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mailbox *m2 = NULL;

		mbx_hook_in_txn = die_in_txn;
		(void)mbx_open(mdir, 0, &m2, NULL);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	mb = open_mb();   /* the dead writer's lock and reader slot are cleared */
	ck_assert_int_eq(mbx_rebuilt(mb), 0);
	ck_assert_uint_eq(uid_of(mb, "a"), 1);
	ck_assert_uint_eq(uid_of(mb, "b"), 2);
	ck_assert_uint_eq(uid_of(mb, "c"), 3);
	ck_assert_uint_eq(uid_of(mb, "d"), 4);
	ck_assert_uint_eq(mbx_uidnext(mb), 5);
	mbx_close(&mb);
}
END_TEST

START_TEST(test_flags_rename)
{
	struct mailbox *mb;
	struct mbx_msg m;
	char p[PATH_MAX], *err = NULL;
	uint64_t ms1, ms2;
	int fd;

	put_file("new", "m1", "hello\n", 1000);
	put_file("cur", "m2:2,Sa", "x\n", 1001);   /* 'a': another tool's keyword */
	mb = open_mb();
	ck_assert_int_eq(mbx_set_flags(mb, 1, MBX_SEEN | MBX_FLAGGED, 0, &ms1, &err), 0);
	ck_assert_int_eq(mbx_msg_get(mb, 1, &m, &err), 0);
	ck_assert_str_eq(m.name, "cur/m1:2,FS");
	ck_assert_uint_eq(m.flags, MBX_SEEN | MBX_FLAGGED);
	ck_assert_uint_eq(m.modseq, ms1);
	mbx_msg_free(&m);
	snprintf(p, sizeof(p), "%s/cur/m1:2,FS", mdir);
	ck_assert_int_eq(access(p, F_OK), 0);
	ck_assert_int_eq(mbx_set_flags(mb, 2, MBX_DELETED, MBX_SEEN, &ms2, &err), 0);
	ck_assert_uint_gt(ms2, ms1);
	snprintf(p, sizeof(p), "%s/cur/m2:2,Ta", mdir);
	ck_assert_int_eq(access(p, F_OK), 0);
	/* no change, no new MODSEQ */
	ck_assert_int_eq(mbx_set_flags(mb, 2, MBX_DELETED, 0, &ms1, &err), 0);
	ck_assert_uint_eq(ms1, ms2);

	/* another MUA renames it behind our back: open still finds it */
	char q[PATH_MAX];
	snprintf(q, sizeof(q), "%s/cur/m2:2,RTa", mdir);
	ck_assert_int_eq(rename(p, q), 0);
	ck_assert_int_eq(mbx_msg_open(mb, 2, &fd, &err), 0);
	close(fd);
	ck_assert_int_eq(mbx_sync(mb, NULL, &err), 0);
	ck_assert_int_eq(mbx_msg_get(mb, 2, &m, &err), 0);
	ck_assert_uint_eq(m.flags, MBX_DELETED | MBX_ANSWERED);
	ck_assert_uint_gt(m.modseq, ms2);
	mbx_msg_free(&m);

	/* keywords live in the index */
	const char *kw[] = { "$Forwarded", "Work", NULL };
	ck_assert_int_eq(mbx_set_keywords(mb, 1, kw, NULL, &err), 0);
	ck_assert_int_eq(mbx_msg_get(mb, 1, &m, &err), 0);
	ck_assert_str_eq(m.keywords[0], "$Forwarded");
	ck_assert_str_eq(m.keywords[1], "Work");
	ck_assert_ptr_null(m.keywords[2]);
	mbx_msg_free(&m);
	const char *bad[] = { "a b", NULL };
	ck_assert_int_eq(mbx_set_keywords(mb, 1, bad, NULL, &err), MBX_ERR);
	free(err);
	err = NULL;
	ck_assert_int_eq(mbx_set_flags(mb, 99, MBX_SEEN, 0, NULL, &err), MBX_GONE);
	mbx_close(&mb);
}
END_TEST

START_TEST(test_expunge_and_cache)
{
	struct mailbox *mb;
	struct mbx_expunge *e;
	struct mbx_status st;
	size_t n, len;
	void *data;
	char *err = NULL, p[PATH_MAX];
	uint32_t uids[] = { 1, 3, 77 };
	uint64_t before;
	int fd;

	put_file("new", "a", "aa\n", 1000);
	put_file("new", "b", "bb\n", 1001);
	put_file("cur", "c:2,S", "cc\n", 1002);
	mb = open_mb();
	ck_assert_int_eq(mbx_cache_put(mb, 1, "hdrs", 4, &err), 0);
	ck_assert_int_eq(mbx_cache_get(mb, 1, &data, &len, &err), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(memcmp(data, "hdrs", 4), 0);
	free(data);
	ck_assert_int_eq(mbx_cache_get(mb, 2, &data, &len, &err), MBX_GONE);
	ck_assert_int_eq(mbx_status(mb, &st, &err), 0);
	ck_assert_uint_eq(st.messages, 3);
	ck_assert_uint_eq(st.unseen, 2);
	ck_assert_uint_eq(st.size, 9);
	before = mbx_highestmodseq(mb);
	ck_assert_int_eq(mbx_expunge(mb, uids, 3, &err), 0);
	snprintf(p, sizeof(p), "%s/new/a", mdir);
	ck_assert_int_ne(access(p, F_OK), 0);
	ck_assert_int_eq(mbx_msg_open(mb, 1, &fd, &err), MBX_GONE);
	ck_assert_int_eq(mbx_cache_get(mb, 1, &data, &len, &err), MBX_GONE);
	ck_assert_int_eq(mbx_expunged_since(mb, before, &e, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(e[0].uid, 1);
	ck_assert_uint_eq(e[1].uid, 3);
	ck_assert_uint_gt(e[0].modseq, before);
	free(e);
	ck_assert_int_eq(mbx_expunged_since(mb, mbx_highestmodseq(mb), &e, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	free(e);
	ck_assert_int_eq(mbx_status(mb, &st, &err), 0);
	ck_assert_uint_eq(st.messages, 1);
	mbx_close(&mb);
	/* the UIDs stay used */
	put_file("new", "z", "z\n", 1003);
	mb = open_mb();
	ck_assert_uint_eq(uid_of(mb, "z"), 4);
	mbx_close(&mb);
}
END_TEST

START_TEST(test_append)
{
	struct mailbox *mb;
	struct mbx_msg m;
	uint32_t uid;
	char *err = NULL;

	mb = open_mb();
	ck_assert_int_eq(mbx_append(mb, produce, NULL, MBX_SEEN | MBX_DRAFT, 123456, &uid, &err), 0);
	ck_assert_uint_eq(uid, 1);
	ck_assert_int_eq(mbx_msg_get(mb, uid, &m, &err), 0);
	ck_assert_int_eq(m.internaldate, 123456);
	ck_assert_uint_eq(m.flags, MBX_SEEN | MBX_DRAFT);
	ck_assert_uint_eq(m.size, sizeof(body) - 1);
	ck_assert(strncmp(m.name, "cur/", 4) == 0 && strstr(m.name, ":2,DS") != NULL);
	mbx_msg_free(&m);
	mbx_close(&mb);
}
END_TEST

/* \Recent goes to one claimer only, across handles (two sessions, or
 * two processes: one LMDB write transaction each). */
START_TEST(test_recent_claim)
{
	struct mailbox *a = NULL, *b = NULL;
	uint32_t lo, hi, first;
	char *err = NULL;

	put_file("new", "1.a.host", "Subject: a\n\nx\n", 1000);
	put_file("new", "2.b.host", "Subject: b\n\nx\n", 1001);
	a = open_mb();
	b = open_mb();
	ck_assert_int_eq(mbx_recent_claim(a, &lo, &hi, &err), 0);
	ck_assert_uint_eq(lo, 1);
	ck_assert_uint_eq(hi, 3);
	ck_assert_int_eq(mbx_recent_claim(b, &lo, &hi, &err), 0);
	ck_assert_uint_eq(lo, hi);
	put_file("new", "3.c.host", "Subject: c\n\nx\n", 1002);
	ck_assert_int_eq(mbx_sync(b, NULL, &err), 0);
	ck_assert_int_eq(mbx_recent_first(a, &first, &err), 0);
	ck_assert_uint_eq(first, 3);
	ck_assert_int_eq(mbx_recent_claim(b, &lo, &hi, &err), 0);
	ck_assert_uint_eq(lo, 3);
	ck_assert_uint_eq(hi, 4);
	ck_assert_int_eq(mbx_recent_claim(a, &lo, &hi, &err), 0);
	ck_assert_uint_eq(lo, hi);
	ck_assert_uint_eq(hi, 4);
	mbx_close(&a);
	mbx_close(&b);
}
END_TEST

/* Many messages from a tiny initial map: the map grows, nothing fails.
 * (The index starts at 4 MiB; 3000 records with long names and cache
 * entries of 4 KiB need more.) */
START_TEST(test_map_growth)
{
	struct mailbox *mb;
	struct mbx_status st;
	char name[128], *err = NULL;
	static char blob[4096];
	int i;

	for (i = 0; i < 1500; i++) {
		snprintf(name, sizeof(name), "%d.M%06dP1.host-with-a-rather-long-name-to-fill-pages", 1000 + i, i);
		put_file("new", name, "x\n", 1000 + i);
	}
	mb = open_mb();
	memset(blob, 'h', sizeof(blob));
	for (i = 1; i <= 1500; i++)
		ck_assert_int_eq(mbx_cache_put(mb, (uint32_t)i, blob, sizeof(blob), &err), 0);
	ck_assert_int_eq(mbx_status(mb, &st, &err), 0);
	ck_assert_uint_eq(st.messages, 1500);
	mbx_close(&mb);
}
END_TEST

START_TEST(test_folders)
{
	static const struct {
		const char *name;
		const char *want;   /* NULL: refused */
	} cases[] = {
		{ "INBOX", "" }, { "inbox", "" }, { "Sent", "/.Sent" },
		{ "Archive/2024", "/.Archive.2024" }, { "..", NULL }, { "a/../b", NULL },
		{ "a.b", NULL }, { "", NULL }, { "a//b", NULL }, { "/a", NULL },
		{ "a\nb", NULL }, { "a/", NULL },
		{ "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", NULL },
	};
	char *path, *err = NULL, want[PATH_MAX], **names;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = mbx_folder_path(mdir, cases[i].name, &path, &err);

		if (cases[i].want == NULL) {
			ck_assert_msg(rc == MBX_ERR, "%s: accepted", cases[i].name);
			free(err);
			err = NULL;
			continue;
		}
		ck_assert_msg(rc == 0, "%s: %s", cases[i].name, err);
		snprintf(want, sizeof(want), "%s%s", mdir, cases[i].want);
		ck_assert_str_eq(path, want);
		free(path);
	}
	ck_assert_int_eq(mbx_folder_create(mdir, "Sent", &err), 0);
	ck_assert_int_eq(mbx_folder_create(mdir, "Archive/2024", &err), 0);
	ck_assert_int_eq(mbx_folder_create(mdir, "../x", &err), MBX_ERR);
	free(err);
	err = NULL;
	ck_assert_int_eq(mbx_folder_list(mdir, &names, &err), 0);
	ck_assert_uint_eq(strv_len(names), 2);
	ck_assert_str_eq(names[0], "Archive/2024");
	ck_assert_str_eq(names[1], "Sent");
	strv_free(&names);
}
END_TEST

/* A Maildir Dovecot kept: its UIDs, UIDVALIDITY and keywords are taken
 * by the first index, a file it did not list gets a UID from its uidnext
 * on; a Maildir Postern indexed before imports nothing again. */
START_TEST(test_dovecot_import)
{
	struct mailbox *mb;
	struct mbx_msg *v;
	size_t n, i;
	char p[PATH_MAX], *err = NULL;
	static const char uidlist[] = "3 V1796647670 N1 Gfe22860df6aa166b1c1d000083ecc375\n"
	    "4 :1700000000.M0P1.dc\n"
	    "9 :1700000001.M1P1.dc,S=6\n"
	    "12 :1700000002.M2P1.dc\n";
	static const char keywords[] = "0 $Label1\n1 Work\n";

	put_file("cur", "1700000000.M0P1.dc:2,Sb", "first\n", 1000);
	put_file("cur", "1700000001.M1P1.dc,S=6:2,FRa", "second\n", 2000);
	put_file("new", "1700000002.M2P1.dc", "third\n", 3000);
	put_file("new", "1700000009.M9P1.other", "unlisted\n", 500);
	snprintf(p, sizeof(p), "%s/dovecot-uidlist", mdir);
	ck_assert_int_eq(file_write_atomic(p, uidlist, strlen(uidlist), 0600), 0);
	snprintf(p, sizeof(p), "%s/dovecot-keywords", mdir);
	ck_assert_int_eq(file_write_atomic(p, keywords, strlen(keywords), 0600), 0);

	mb = open_mb();
	ck_assert_uint_eq(mbx_uidvalidity(mb), 1796647670u);
	ck_assert_uint_eq(uid_of(mb, "1700000000.M0P1.dc"), 4);
	ck_assert_uint_eq(uid_of(mb, "1700000001.M1P1.dc,S=6"), 9);
	ck_assert_uint_eq(uid_of(mb, "1700000002.M2P1.dc"), 12);
	ck_assert_uint_eq(uid_of(mb, "1700000009.M9P1.other"), 13);
	ck_assert_uint_eq(mbx_uidnext(mb), 14);
	ck_assert_int_eq(mbx_list(mb, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 4);
	for (i = 0; i < n; i++) {
		if (v[i].uid == 4) {
			ck_assert_uint_eq(v[i].flags, MBX_SEEN);
			ck_assert_str_eq(v[i].keywords[0], "Work");
			ck_assert_ptr_null(v[i].keywords[1]);
		} else if (v[i].uid == 9) {
			ck_assert_uint_eq(v[i].flags, MBX_FLAGGED | MBX_ANSWERED);
			ck_assert_str_eq(v[i].keywords[0], "$Label1");
		} else {
			ck_assert_ptr_null(v[i].keywords[0]);
		}
	}
	mbx_msgs_free(&v, n);
	mbx_close(&mb);

	/* Lost index: rebuilt under a new UIDVALIDITY, since Postern gave
	 * UID 13 and a client may have it; Dovecot's list is not read. */
	snprintf(p, sizeof(p), "%s/%s", mdir, MBX_INDEX_NAME);
	ck_assert_int_eq(unlink(p), 0);
	mb = open_mb();
	ck_assert_uint_ne(mbx_uidvalidity(mb), 1796647670u);
	ck_assert_uint_eq(uid_of(mb, "1700000000.M0P1.dc"), 2);
	mbx_close(&mb);
}
END_TEST

/* Killed after the imported index was made and before its first
 * reconcile committed: the next opener imports again, so the files get
 * Dovecot's UIDs, not new ones above its uidnext. */
START_TEST(test_dovecot_import_killed)
{
	struct mailbox *mb;
	char p[PATH_MAX];
	pid_t pid;
	int st;
	static const char uidlist[] = "3 V1796647670 N20\n"
	    "4 :1700000000.M0P1.dc\n"
	    "9 :1700000001.M1P1.dc\n";

	put_file("cur", "1700000000.M0P1.dc:2,S", "first\n", 1000);
	put_file("new", "1700000001.M1P1.dc", "second\n", 2000);
	snprintf(p, sizeof(p), "%s/dovecot-uidlist", mdir);
	ck_assert_int_eq(file_write_atomic(p, uidlist, strlen(uidlist), 0600), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mailbox *m2 = NULL;

		mbx_hook_in_txn = die_in_txn;
		(void)mbx_open(mdir, 0, &m2, NULL);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	mb = open_mb();
	ck_assert_uint_eq(mbx_uidvalidity(mb), 1796647670u);
	ck_assert_uint_eq(uid_of(mb, "1700000000.M0P1.dc"), 4);
	ck_assert_uint_eq(uid_of(mb, "1700000001.M1P1.dc"), 9);
	ck_assert_uint_eq(mbx_uidnext(mb), 20);
	mbx_close(&mb);
	/* Done: a later open leaves the UIDs alone even if the list
	 * changes. */
	put_file("new", "1700000002.M2P1.dc", "third\n", 3000);
	ck_assert_int_eq(file_write_atomic(p, "3 V1796647670 N30\n30 :1700000002.M2P1.dc\n",
	    strlen("3 V1796647670 N30\n30 :1700000002.M2P1.dc\n"), 0600), 0);
	mb = open_mb();
	ck_assert_uint_eq(uid_of(mb, "1700000002.M2P1.dc"), 20);
	ck_assert_uint_eq(mbx_uidnext(mb), 21);
	mbx_close(&mb);
}
END_TEST

/* Files a dead writer left in tmp/ go once untouched long enough (36
 * hours; 1 second here), at the next open; a fresh one (a writer at work,
 * even with an old mtime, as APPEND sets INTERNALDATE) and a link stay. */
START_TEST(test_tmp_sweep)
{
	struct mailbox *mb;
	char p[PATH_MAX], q[PATH_MAX];
	struct stat st;

	mbx_tmp_dead_seconds = 1;
	put_file("tmp", "dead", "half a message", time(NULL) - 40 * 3600);
	snprintf(p, sizeof(p), "%s/tmp/link", mdir);
	snprintf(q, sizeof(q), "%s/outside", tmpbase);
	ck_assert_int_eq(file_write_atomic(q, "x", 1, 0600), 0);
	ck_assert_int_eq(symlink(q, p), 0);
	sleep(2);
	put_file("tmp", "appending", "old INTERNALDATE, written now", time(NULL) - 40 * 3600);
	mb = open_mb();
	mbx_close(&mb);
	mbx_tmp_dead_seconds = 36 * 3600;
	snprintf(p, sizeof(p), "%s/tmp/dead", mdir);
	ck_assert_int_ne(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/tmp/appending", mdir);
	ck_assert_int_eq(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/tmp/link", mdir);
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_int_eq(stat(q, &st), 0);
}
END_TEST

static Suite *
index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tcase_create("index");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reconcile_arrival_order);
	tcase_add_test(tc, test_rebuild_new_uidvalidity);
	tcase_add_test(tc, test_index_mode);
	tcase_add_test(tc, test_concurrent_writers);
	tcase_add_test(tc, test_killed_in_txn);
	tcase_add_test(tc, test_flags_rename);
	tcase_add_test(tc, test_expunge_and_cache);
	tcase_add_test(tc, test_append);
	tcase_add_test(tc, test_recent_claim);
	tcase_add_test(tc, test_map_growth);
	tcase_add_test(tc, test_folders);
	tcase_add_test(tc, test_dovecot_import);
	tcase_add_test(tc, test_dovecot_import_killed);
	tcase_add_test(tc, test_tmp_sweep);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(index_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
