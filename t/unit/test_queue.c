/*
 * test_queue - queue IDs, directories, the writer, the reader and every
 * way a queue file can be damaged.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "mail/queue.h"
#include "queue_fixture.h"

static void
setup(void)
{
	queue_fixture_setup("test_queue");
}

static void
teardown(void)
{
	queue_fixture_teardown();
}

/* Entries in <qdir>/<dir>, and how many start with ".tmp". */
static int
count_dir(const char *dir, int *tmp)
{
	char *path = xasprintf("%s/%s", qdir, dir);
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	if (tmp)
		*tmp = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n++;
		if (tmp && strncmp(e->d_name, ".tmp", 4) == 0)
			(*tmp)++;
	}
	closedir(d);
	free(path);
	return n;
}

static int
collect(const char *p, size_t n, void *ctx)
{
	return buf_append(ctx, p, n) < 0 ? -1 : 0;
}

static int
stop_cb(const char *p, size_t n, void *ctx)
{
	return 42;
}

static void
fill_pattern(char *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (char)((i * 31 + seed) % 251);
}

/* Write a small valid message; returns its ID in id. */
static void
write_small(char id[QUEUE_ID_MAX])
{
	struct queue_writer *w;
	char *err = NULL;

	w = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	ck_assert_msg(w != NULL, "open: %s", err ? err : "?");
	ck_assert_int_eq(queue_writer_sender(w, "s@example.org"), 0);
	ck_assert_int_eq(queue_writer_attr(w, "helo", "client.example"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "a@example.com", "", ""), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "b@example.com", "rfc822;B@example.com", "NEVER"), 0);
	ck_assert_int_eq(queue_writer_content(w, "Subject: x\n\nhi\n", 15), 0);
	ck_assert_int_eq(queue_writer_commit(w, id), 0);
	queue_writer_free(&w);
}

static void
read_file(const char *path, char **data, size_t *len)
{
	ck_assert_int_eq(file_read_all(path, 1 << 20, data, len), 0);
}

/* Write bytes to a scratch file and run queue_read on it. */
static int
read_bytes(const void *p, size_t n, char **err_r)
{
	char *path = xasprintf("%s/corrupt/scratch", qdir);
	struct qenv env;
	int fd, ret;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, p, n), 0);
	errno = 0;
	ret = queue_read(fd, &env, err_r);
	if (ret == 0)
		qenv_free(&env);
	else
		ck_assert_int_eq(errno, EINVAL);
	close(fd);
	free(path);
	return ret;
}

static void
rec(struct buf *b, int type, const void *p, size_t n)
{
	unsigned char h[5] = { (unsigned char)type, (unsigned char)(n >> 24),
		(unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n };

	buf_append(b, h, 5);
	buf_append(b, p, n);
}

/* A minimal valid file built by hand, optionally with one deviation. */
static void
build(struct buf *b, const char *skip, int bad_status)
{
	static const char r1[] = "Pa@b\0\0";
	char r[sizeof(r1)];

	memcpy(r, r1, sizeof(r1));
	if (bad_status)
		r[0] = 'X';
	buf_reset(b);
	if (!strchr(skip, 'V'))
		rec(b, 'V', QUEUE_VERSION, strlen(QUEUE_VERSION));
	if (!strchr(skip, 'T'))
		rec(b, 'T', "1700000000.000001", 17);
	if (!strchr(skip, 'S'))
		rec(b, 'S', "", 0);
	if (!strchr(skip, 'R'))
		rec(b, 'R', r, sizeof(r1) - 1);
	if (!strchr(skip, 'M'))
		rec(b, 'M', "", 0);
	rec(b, 'N', "hello\n", 6);
	if (!strchr(skip, 'E'))
		rec(b, 'E', "", 0);
}

START_TEST(test_roundtrip)
{
	struct queue_writer *w;
	struct timespec ts = { 1700000000, 123456000 };
	struct qenv env;
	struct buf got = BUF_INIT(0);
	char id[QUEUE_ID_MAX], *err = NULL, *path, *big, *mid;
	size_t bigsz = 3 * 1024 * 1024 + 17, midsz = 1536 * 1024, total = 0;
	int fd, tmp, i;
	struct stat st;

	w = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	ck_assert_msg(w != NULL, "open: %s", err ? err : "?");
	ck_assert(queue_id_valid(queue_writer_id(w)));
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, &tmp), 1);
	ck_assert_int_eq(tmp, 1);
	ck_assert_int_eq(queue_writer_arrival(w, &ts), 0);
	ck_assert_int_eq(queue_writer_sender(w, "sender@example.org"), 0);
	ck_assert_int_eq(queue_writer_attr(w, "envid", "abc=def"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "r1@example.com", "", ""), 0);
	ck_assert_int_eq(queue_writer_attr(w, "helo", "mx.example"), 0); /* after a rcpt */
	ck_assert_int_eq(queue_writer_rcpt(w, "\"q u\"@example.com", "rfc822;x@y", "SUCCESS,DELAY"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "r3@[127.0.0.1]", NULL, NULL), 0);

	big = xmalloc(bigsz);
	mid = xmalloc(midsz);
	fill_pattern(big, bigsz, 7);
	fill_pattern(mid, midsz, 3);
	struct buf want = BUF_INIT(0);
	for (i = 0; i < 100; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "Header-%d: value %d\n", i, i);
		ck_assert_int_eq(queue_writer_content(w, line, (size_t)n), 0);
		buf_append(&want, line, (size_t)n);
	}
	ck_assert_int_eq(queue_writer_content(w, mid, midsz), 0);
	buf_append(&want, mid, midsz);
	ck_assert_int_eq(queue_writer_content(w, "x", 1), 0);
	buf_append(&want, "x", 1);
	ck_assert_int_eq(queue_writer_content(w, big, bigsz), 0);
	buf_append(&want, big, bigsz);
	ck_assert_int_eq(queue_writer_content(w, "", 0), 0);
	ck_assert_int_eq(queue_writer_content(w, "end\n", 4), 0);
	buf_append(&want, "end\n", 4);
	total = want.len;
	ck_assert_int_eq(queue_writer_content_size(w), (off_t)total);
	/* Envelope after content is refused. */
	errno = 0;
	ck_assert_int_eq(queue_writer_rcpt(w, "late@example.com", "", ""), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(queue_writer_attr(w, "late", "x"), -1);

	ck_assert_int_eq(queue_writer_commit(w, id), 0);
	ck_assert_str_eq(id, queue_writer_id(w));
	queue_writer_free(&w);
	ck_assert(queue_id_valid(id));
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, &tmp), 1);
	ck_assert_int_eq(tmp, 0);

	path = queue_path(qdir, QUEUE_INCOMING, id);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(queue_read(fd, &env, &err) == 0, "read: %s", err ? err : "?");
	ck_assert_str_eq(env.id, "");
	ck_assert_int_eq(env.arrival.tv_sec, 1700000000);
	ck_assert_int_eq(env.arrival.tv_nsec, 123456000);
	ck_assert_str_eq(env.sender, "sender@example.org");
	ck_assert_uint_eq(env.nattr, 2);
	ck_assert_str_eq(qenv_attr(&env, "envid"), "abc=def");
	ck_assert_str_eq(qenv_attr(&env, "helo"), "mx.example");
	ck_assert_ptr_null(qenv_attr(&env, "nope"));
	ck_assert_uint_eq(env.nrcpt, 3);
	ck_assert_str_eq(env.rcpts[0].addr, "r1@example.com");
	ck_assert_str_eq(env.rcpts[1].addr, "\"q u\"@example.com");
	ck_assert_str_eq(env.rcpts[1].orig, "rfc822;x@y");
	ck_assert_str_eq(env.rcpts[1].notify, "SUCCESS,DELAY");
	ck_assert_str_eq(env.rcpts[2].orig, "");
	ck_assert_str_eq(env.rcpts[2].notify, "");
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(env.rcpts[i].status, 'P');
	ck_assert_int_eq(env.content_size, (off_t)total);
	ck_assert_int_eq(env.file_size, st.st_size);
	/* Walk the records: big pieces are split at QUEUE_CHUNK_MAX. */
	{
		unsigned char h[5];
		off_t off = env.content_off + 5;
		size_t len, nfull = 0, nrec = 0;

		for (;;) {
			ck_assert_int_eq(pread(fd, h, 5, off), 5);
			len = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) | h[4];
			if (h[0] == 'E')
				break;
			ck_assert_int_eq(h[0], 'N');
			ck_assert_uint_le(len, QUEUE_CHUNK_MAX);
			nfull += len == QUEUE_CHUNK_MAX;
			nrec++;
			off += 5 + (off_t)len;
		}
		ck_assert_uint_ge(nfull, 3);
		ck_assert_uint_lt(nrec, 100);   /* small pieces were coalesced */
		ck_assert_int_eq(off + 5, st.st_size);
	}
	ck_assert_int_eq(queue_content(fd, &env, collect, &got), 0);
	ck_assert_uint_eq(got.len, total);
	ck_assert(memcmp(got.data, want.data, total) == 0);
	/* The callback can stop the stream. */
	ck_assert_int_eq(queue_content(fd, &env, stop_cb, NULL), 42);
	qenv_free(&env);
	close(fd);
	free(path);
	free(big);
	free(mid);
	buf_free(&got);
	buf_free(&want);
}
END_TEST

START_TEST(test_dirs)
{
	static const struct {
		const char *name;
		mode_t mode;
	} want[] = {
		{ "incoming", 0700 }, { "active", 0700 }, { "deferred", 0700 },
		{ "hold", 0700 }, { "corrupt", 0700 }, { "bounce", 0700 },
		{ "defer", 0700 }, { "private", 0700 }, { "public", 0711 },
		{ "maildrop", 01733 }, { "recycle", 0700 },
	};
	struct stat st;
	char *path, *err = NULL;
	size_t i;

	/* Existing directories get their modes fixed. */
	path = xasprintf("%s/public", qdir);
	ck_assert_int_eq(chmod(path, 0777), 0);
	free(path);
	ck_assert_int_eq(queue_dirs_create(qdir, (uid_t)-1, (gid_t)-1, &err), 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		path = xasprintf("%s/%s", qdir, want[i].name);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_msg((st.st_mode & 07777) == want[i].mode, "%s: got %o want %o",
		    want[i].name, st.st_mode & 07777, want[i].mode);
		free(path);
	}
	/* A file where a directory belongs is an error. */
	path = xasprintf("%s/hold", qdir);
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
	ck_assert_int_eq(queue_dirs_create(qdir, (uid_t)-1, (gid_t)-1, &err), -1);
	ck_assert_ptr_nonnull(err);
	free(err);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(test_mark_and_move)
{
	struct qenv env;
	char id[QUEUE_ID_MAX], *path, *err = NULL;
	int fd;

	write_small(id);
	ck_assert_int_eq(queue_move(qdir, QUEUE_INCOMING, QUEUE_ACTIVE, id), 0);
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, NULL), 0);
	ck_assert_int_eq(count_dir(QUEUE_ACTIVE, NULL), 1);
	errno = 0;
	ck_assert_int_eq(queue_move(qdir, QUEUE_ACTIVE, QUEUE_DEFERRED, "../x"), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(queue_move(qdir, QUEUE_ACTIVE, "..", id), -1);
	/* queue_move back and forth: the same checks both ways. */
	ck_assert_int_eq(queue_move(qdir, QUEUE_ACTIVE, QUEUE_INCOMING, id), 0);
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, NULL), 1);
	ck_assert_int_eq(count_dir(QUEUE_ACTIVE, NULL), 0);
	errno = 0;
	ck_assert_int_eq(queue_move(qdir, QUEUE_ACTIVE, QUEUE_INCOMING, id), -1);
	ck_assert_int_eq(errno, ENOENT);
	errno = 0;
	ck_assert_int_eq(queue_move(qdir, QUEUE_INCOMING, QUEUE_ACTIVE, "../x"), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(queue_move(qdir, QUEUE_INCOMING, "..", id), -1);
	ck_assert_int_eq(queue_move(qdir, QUEUE_INCOMING, QUEUE_ACTIVE, id), 0);

	path = queue_path(qdir, QUEUE_ACTIVE, id);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(queue_read(fd, &env, &err), 0);
	ck_assert_uint_eq(env.nrcpt, 2);
	ck_assert_int_eq(queue_mark_rcpt(fd, env.rcpts[1].status_off, 'D'), 0);
	errno = 0;
	ck_assert_int_eq(queue_mark_rcpt(fd, env.rcpts[0].status_off, 'X'), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* An offset that is not a status byte is refused. */
	ck_assert_int_eq(queue_mark_rcpt(fd, env.rcpts[0].status_off + 1, 'D'), -1);
	ck_assert_int_eq(queue_mark_rcpt(fd, 0, 'D'), -1);
	ck_assert_int_eq(queue_mark_rcpt(fd, env.content_off + 5, 'D'), -1);
	qenv_free(&env);
	ck_assert_int_eq(queue_read(fd, &env, &err), 0);
	ck_assert_int_eq(env.rcpts[0].status, 'P');
	ck_assert_int_eq(env.rcpts[1].status, 'D');
	ck_assert_str_eq(env.rcpts[1].orig, "rfc822;B@example.com");
	ck_assert_str_eq(env.rcpts[1].notify, "NEVER");
	/* The delay-warning mark: never over a done recipient; read back as
	 * pending and warned; still finished with 'D'. */
	ck_assert_int_eq(queue_mark_rcpt(fd, env.rcpts[1].status_off, 'W'), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(queue_mark_rcpt(fd, env.rcpts[0].status_off, 'W'), 0);
	ck_assert_int_eq(queue_mark_rcpt(fd, env.rcpts[0].status_off, 'W'), 0);
	ck_assert_int_eq(queue_mark_rcpt(fd, env.rcpts[1].status_off, 'P'), 0);
	qenv_free(&env);
	ck_assert_int_eq(queue_read(fd, &env, &err), 0);
	ck_assert_int_eq(env.rcpts[0].status, 'P');
	ck_assert_int_eq(env.rcpts[0].warned, 1);
	ck_assert_int_eq(env.rcpts[1].status, 'P');
	ck_assert_int_eq(env.rcpts[1].warned, 0);
	ck_assert_int_eq(queue_mark_rcpt(fd, env.rcpts[0].status_off, 'D'), 0);
	qenv_free(&env);
	ck_assert_int_eq(queue_read(fd, &env, &err), 0);
	ck_assert_int_eq(env.rcpts[0].status, 'D');
	ck_assert_int_eq(env.rcpts[0].warned, 0);
	qenv_free(&env);
	close(fd);
	free(path);
}
END_TEST

START_TEST(test_truncated)
{
	char id[QUEUE_ID_MAX], *path, *data, *err;
	size_t len, n;

	write_small(id);
	path = queue_path(qdir, QUEUE_INCOMING, id);
	read_file(path, &data, &len);
	err = NULL;
	ck_assert_msg(read_bytes(data, len, &err) == 0, "%s", err ? err : "?");
	for (n = 0; n < len; n++) {
		err = NULL;
		ck_assert_msg(read_bytes(data, n, &err) == -1, "truncated at %zu accepted", n);
		ck_assert_ptr_nonnull(err);
		free(err);
	}
	free(data);
	free(path);
}
END_TEST

/* queue_content() on a small file (one 'N' record, read with its header
 * in one pread), and on the same file changed under the reader after
 * queue_read(): a record length past the end, a wrong record type, a
 * missing end - each an error, with nothing handed to the callback. */
START_TEST(test_content_small_and_changed)
{
	char *path = xasprintf("%s/corrupt/small", qdir);
	struct buf b = BUF_INIT(0), got = BUF_INIT(0);
	struct qenv env;
	char *err = NULL;
	off_t nrec;
	int fd, bad;

	build(&b, "", 0);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, b.data, b.len), 0);
	memset(&env, 0, sizeof(env));
	ck_assert_msg(queue_read(fd, &env, &err) == 0, "read: %s", err ? err : "?");
	ck_assert_int_eq(queue_content(fd, &env, collect, &got), 0);
	ck_assert_uint_eq(got.len, 6);
	ck_assert(memcmp(got.data, "hello\n", 6) == 0);
	nrec = env.content_off + 5;     /* the 'N' record's header */
	for (bad = 0; bad < 3; bad++) {
		static const unsigned char longer[5] = { 'N', 0, 0, 0, 200 };
		static const unsigned char wrong[5] = { 'X', 0, 0, 0, 6 };
		static const unsigned char noend[5] = { 'N', 0, 0, 0, 6 };

		ck_assert_int_eq(pwrite(fd, bad == 0 ? longer : bad == 1 ? wrong : noend,
		    5, nrec), 5);
		if (bad == 2)      /* the 'E' record becomes a second 'N' */
			ck_assert_int_eq(pwrite(fd, "N\0\0\0\1", 5, nrec + 11), 5);
		buf_reset(&got);
		errno = 0;
		ck_assert_int_eq(queue_content(fd, &env, collect, &got), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_uint_eq(got.len, bad == 2 ? 6 : 0);
	}
	qenv_free(&env);
	close(fd);
	buf_free(&b);
	buf_free(&got);
	free(path);
}
END_TEST

START_TEST(test_corrupt)
{
	struct buf b = BUF_INIT(0);
	char *err = NULL;
	size_t i;

	build(&b, "", 0);
	ck_assert_msg(read_bytes(b.data, b.len, &err) == 0, "%s", err ? err : "?");

	static const char *const skips[] = { "V", "T", "S", "R", "M", "E" };
	for (i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
		build(&b, skips[i], 0);
		err = NULL;
		ck_assert_msg(read_bytes(b.data, b.len, &err) == -1, "missing %s accepted", skips[i]);
		free(err);
	}
	build(&b, "", 1);
	ck_assert_int_eq(read_bytes(b.data, b.len, &err), -1);
	free(err);

	/* Record after 'E'; a second 'E'; trailing garbage. */
	build(&b, "", 0);
	rec(&b, 'N', "x", 1);
	ck_assert_int_eq(read_bytes(b.data, b.len, &err), -1);
	free(err);
	build(&b, "", 0);
	rec(&b, 'E', "", 0);
	ck_assert_int_eq(read_bytes(b.data, b.len, &err), -1);
	free(err);
	build(&b, "", 0);
	buf_putc(&b, 0);
	ck_assert_int_eq(read_bytes(b.data, b.len, &err), -1);
	free(err);

	/* Unknown type at every record position. */
	build(&b, "", 0);
	{
		size_t off = 0, len;

		while (off < b.len) {
			struct buf c = BUF_INIT(0);

			buf_append(&c, b.data, b.len);
			c.data[off] = 'Q';
			ck_assert_int_eq(read_bytes(c.data, c.len, &err), -1);
			ck_assert_ptr_nonnull(strstr(err, "offset"));
			free(err);
			/* Huge declared length at each record. */
			memcpy(c.data, b.data, b.len);
			memset(c.data + off + 1, 0xff, 4);
			ck_assert_int_eq(read_bytes(c.data, c.len, &err), -1);
			free(err);
			buf_free(&c);
			len = ((size_t)(unsigned char)b.data[off + 1] << 24) |
			    ((size_t)(unsigned char)b.data[off + 2] << 16) |
			    ((size_t)(unsigned char)b.data[off + 3] << 8) |
			    (size_t)(unsigned char)b.data[off + 4];
			off += 5 + len;
		}
	}

	/* Bad version, bad time, NUL in sender, attr without '=', rcpt
	 * without the NULs, an empty rcpt address, non-empty 'M'. */
	static const struct {
		int type;
		const char *data;
		size_t len;
	} bad[] = {
		{ 'V', "POSTERN-QUEUE 2", 15 },
		{ 'T', "1700000000", 10 },
		{ 'T', "1700000000.1", 12 },
		{ 'T', "-1.000000", 9 },
		{ 'S', "a\0b", 3 },
		{ 'A', "novalue", 7 },
		{ 'A', "=value", 6 },
		{ 'R', "Pa@b\0", 5 },
		{ 'R', "P\0\0\0", 4 },
		{ 'R', "Pa@b\0\0\0", 7 },
		{ 'M', "x", 1 },
	};
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		rec(&b, 'V', bad[i].type == 'V' ? bad[i].data : QUEUE_VERSION,
		    bad[i].type == 'V' ? bad[i].len : strlen(QUEUE_VERSION));
		if (bad[i].type == 'T')
			rec(&b, 'T', bad[i].data, bad[i].len);
		else
			rec(&b, 'T', "1.000000", 8);
		if (bad[i].type == 'S')
			rec(&b, 'S', bad[i].data, bad[i].len);
		else
			rec(&b, 'S', "s@x", 3);
		if (bad[i].type == 'A')
			rec(&b, 'A', bad[i].data, bad[i].len);
		if (bad[i].type == 'R')
			rec(&b, 'R', bad[i].data, bad[i].len);
		else
			rec(&b, 'R', "Pa@b\0\0", 6);
		rec(&b, 'M', bad[i].type == 'M' ? bad[i].data : "",
		    bad[i].type == 'M' ? bad[i].len : 0);
		rec(&b, 'E', "", 0);
		err = NULL;
		ck_assert_msg(read_bytes(b.data, b.len, &err) == -1, "bad %c #%zu accepted",
		    bad[i].type, i);
		free(err);
	}

	/* Oversized envelope record, even if the file holds it. */
	{
		char *big = xcalloc(1, 70000);

		buf_reset(&b);
		rec(&b, 'V', QUEUE_VERSION, strlen(QUEUE_VERSION));
		rec(&b, 'T', "1.000000", 8);
		memset(big, 'a', 70000);
		rec(&b, 'S', big, 70000);
		rec(&b, 'R', "Pa@b\0\0", 6);
		rec(&b, 'M', "", 0);
		rec(&b, 'E', "", 0);
		ck_assert_int_eq(read_bytes(b.data, b.len, &err), -1);
		free(err);
		free(big);
	}
	buf_free(&b);
}
END_TEST

/* Milter edits before content: the file keeps its ID, the envelope read
 * back is the edited one, and a held message lands in hold/. */
START_TEST(test_writer_milter_edits)
{
	struct queue_writer *w;
	char id[QUEUE_ID_MAX], wid[QUEUE_ID_MAX], *err = NULL;

	w = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	ck_assert_ptr_nonnull(w);
	snprintf(wid, sizeof(wid), "%s", queue_writer_id(w));
	ck_assert_int_eq(queue_writer_set_sender(w, "x@y"), -1);
	ck_assert_int_eq(queue_writer_sender(w, "old@x"), 0);
	ck_assert_int_eq(queue_writer_attr(w, "helo", "h"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "a@b", "alias@b", ""), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "c@d", "c@d", "NEVER"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "e@f", "e@f", ""), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "g@h", "g@h", ""), 0);
	ck_assert_uint_eq(queue_writer_rcpt_count(w), 4);
	ck_assert_int_eq(queue_writer_rcpt_truncate(w, 5), -1);
	ck_assert_int_eq(queue_writer_rcpt_truncate(w, 3), 0);
	ck_assert_int_eq(queue_writer_rcpt_delete(w, "ALIAS@b"), 1);
	ck_assert_int_eq(queue_writer_rcpt_delete(w, "nobody@b"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "new@z", "new@z", ""), 0);
	{
		/* the addresses, in order, after the cut and the delete */
		char **l = queue_writer_rcpt_list(w);

		ck_assert_uint_eq(strv_len(l), 3);
		ck_assert_str_eq(l[0], "c@d");
		ck_assert_str_eq(l[1], "e@f");
		ck_assert_str_eq(l[2], "new@z");
		strv_free(&l);
	}
	ck_assert_int_eq(queue_writer_set_sender(w, "new@sender"), 0);
	ck_assert_int_eq(queue_writer_set_dir(w, "../x"), -1);
	ck_assert_int_eq(queue_writer_set_dir(w, QUEUE_HOLD), 0);
	ck_assert_int_eq(queue_writer_rcpt_all_done(w), 0);
	ck_assert_int_eq(queue_writer_content(w, "S: x\n\nbody\n", 11), 0);
	ck_assert_int_eq(queue_writer_rcpt_all_done(w), -1);
	ck_assert_int_eq(queue_writer_set_sender(w, "late@x"), -1);
	ck_assert_int_eq(queue_writer_rcpt_delete(w, "c@d"), -1);
	ck_assert_int_eq(queue_writer_commit(w, id), 0);
	ck_assert_str_eq(id, wid);
	queue_writer_free(&w);

	char *path = queue_path(qdir, QUEUE_HOLD, id);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	struct qenv env;
	ck_assert_int_eq(queue_read(fd, &env, &err), 0);
	ck_assert_str_eq(env.sender, "new@sender");
	ck_assert_uint_eq(env.nrcpt, 3);
	ck_assert_str_eq(env.rcpts[0].addr, "c@d");
	ck_assert_str_eq(env.rcpts[0].notify, "NEVER");
	ck_assert_str_eq(env.rcpts[1].addr, "e@f");
	ck_assert_str_eq(env.rcpts[2].addr, "new@z");
	for (size_t i = 0; i < env.nrcpt; i++)
		ck_assert_int_eq(env.rcpts[i].status, 'D');
	ck_assert_str_eq(qenv_attr(&env, "helo"), "h");
	qenv_free(&env);
	close(fd);
	free(path);
	path = queue_path(qdir, QUEUE_INCOMING, id);
	ck_assert_int_eq(access(path, F_OK), -1);
	free(path);
}
END_TEST

START_TEST(test_writer_order)
{
	struct queue_writer *w;
	struct timespec ts = { 1, 0 };
	char id[QUEUE_ID_MAX], *err = NULL, *big;
	int tmp;

	w = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	ck_assert_ptr_nonnull(w);
	errno = 0;
	ck_assert_int_eq(queue_writer_rcpt(w, "a@b", "", ""), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(queue_writer_attr(w, "a", "b"), -1);
	ck_assert_int_eq(queue_writer_commit(w, id), -1);
	ck_assert_int_eq(queue_writer_sender(w, ""), 0);
	ck_assert_int_eq(queue_writer_sender(w, "again@x"), -1);
	ck_assert_int_eq(queue_writer_arrival(w, &ts), -1);
	ck_assert_int_eq(queue_writer_attr(w, "", "b"), -1);
	ck_assert_int_eq(queue_writer_attr(w, "a=b", "c"), -1);
	ck_assert_int_eq(queue_writer_rcpt(w, "", "", ""), -1);
	big = xcalloc(1, 70000);
	memset(big, 'a', 69999);
	errno = 0;
	ck_assert_int_eq(queue_writer_rcpt(w, big, "", ""), -1);
	ck_assert_int_eq(errno, E2BIG);
	free(big);
	ck_assert_int_eq(queue_writer_content(w, "x\n", 2), 0);
	/* Content before any rcpt: the commit fails, the abort cleans up. */
	errno = 0;
	ck_assert_int_eq(queue_writer_commit(w, id), -1);
	ck_assert_int_eq(errno, EINVAL);
	queue_writer_abort(&w);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, &tmp), 0);

	/* Null sender, no content: still a valid file. */
	w = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(queue_writer_sender(w, ""), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "a@b", "", ""), 0);
	ck_assert_int_eq(queue_writer_commit(w, id), 0);
	ck_assert_int_eq(queue_writer_commit(w, id), -1);
	queue_writer_free(&w);
	{
		char *path = queue_path(qdir, QUEUE_INCOMING, id);
		struct qenv env;
		int fd = open(path, O_RDONLY);

		ck_assert_int_eq(queue_read(fd, &env, &err), 0);
		ck_assert_str_eq(env.sender, "");
		ck_assert_int_eq(env.content_size, 0);
		qenv_free(&env);
		close(fd);
		free(path);
	}
	/* A bad directory name. */
	ck_assert_ptr_null(queue_writer_open(qdir, "../x", (uid_t)-1, (gid_t)-1, &err));
	free(err);
	err = NULL;
	ck_assert_ptr_null(queue_writer_open(qdir, "nonexistent", (uid_t)-1, (gid_t)-1, &err));
	ck_assert_ptr_nonnull(err);
	free(err);
}
END_TEST

START_TEST(test_id_valid)
{
	static const struct {
		const char *id;
		int ok;
	} t[] = {
		{ "4dQzBc1234z1", 1 },
		{ "00000z0000zb", 1 },       /* 'z' in the time part; last 'z' separates */
		{ "000000zzzzzb", 0 },       /* usec part >= 10^6 */
		{ "4dQzBc1234zy", 1 },
		{ "4dQzBc1234", 0 },         /* no inode part */
		{ "4dQzBc1234z", 0 },        /* empty inode part */
		{ "4dQzB1234z1", 0 },        /* time part too short */
		{ "4dQzBc1234zz", 0 },       /* 'z' may not be last */
		{ "4dQzBcA234z1", 0 },       /* vowel */
		{ "4dQzBc1234za", 0 },
		{ "4dQzBc12.4z1", 0 },
		{ "4dQzBc12/4z1", 0 },
		{ ".tmp.1.2.3zz", 0 },
		{ "", 0 },
		{ "..", 0 },
		{ "4dQzBcyyyyz1", 0 },       /* usec >= 10^6 */
		{ "4dQzBc1234z123456789012345678901", 0 },  /* 32 chars */
		{ "4dQzBc1234z12345678901234567890", 1 },   /* 31 chars */
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(queue_id_valid(t[i].id) == t[i].ok, "%s: want %d", t[i].id, t[i].ok);
	ck_assert(!queue_id_valid(NULL));
}
END_TEST

START_TEST(test_id_unique)
{
	enum { N = 300 };
	struct queue_writer *w[N];
	char *err = NULL;
	int i, j, tmp;

	for (i = 0; i < N; i++) {
		w[i] = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
		ck_assert_ptr_nonnull(w[i]);
		ck_assert_msg(queue_id_valid(queue_writer_id(w[i])), "%s", queue_writer_id(w[i]));
		ck_assert_uint_ge(strlen(queue_writer_id(w[i])), 12);
	}
	for (i = 0; i < N; i++)
		for (j = i + 1; j < N; j++)
			ck_assert_str_ne(queue_writer_id(w[i]), queue_writer_id(w[j]));
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, &tmp), N);
	ck_assert_int_eq(tmp, N);
	for (i = 0; i < N; i++)
		queue_writer_abort(&w[i]);
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, NULL), 0);
}
END_TEST


/* The delivery agents' open: names checked, shared lock, envelope read. */
START_TEST(test_open_shared)
{
	struct qenv env, env2;
	char id[QUEUE_ID_MAX], *path, *err = NULL;
	int fd, fd2, xfd;

	write_small(id);
	ck_assert_int_eq(queue_move(qdir, QUEUE_INCOMING, QUEUE_ACTIVE, id), 0);
	fd = queue_open_shared(qdir, QUEUE_ACTIVE, id, 0, &env, &err);
	ck_assert_msg(fd >= 0, "open: %s", err ? err : "?");
	ck_assert_str_eq(env.id, id);
	ck_assert_uint_eq(env.nrcpt, 2);
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	/* A second agent shares the lock. */
	fd2 = queue_open_shared(qdir, QUEUE_ACTIVE, id, 0, &env2, &err);
	ck_assert_int_ge(fd2, 0);
	qenv_free(&env2);
	close(fd2);
	qenv_free(&env);
	/* qmgr's exclusive lock keeps an agent out until the wait is over. */
	path = queue_path(qdir, QUEUE_ACTIVE, id);
	close(fd);
	xfd = open(path, O_RDWR);
	ck_assert_int_ge(xfd, 0);
	ck_assert_int_eq(flock(xfd, LOCK_EX | LOCK_NB), 0);
	errno = 0;
	ck_assert_int_eq(queue_open_shared(qdir, QUEUE_ACTIVE, id, 60, &env, &err), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	ck_assert_ptr_nonnull(strstr(err, "lock "));
	free(err);
	err = NULL;
	close(xfd);
	/* Names from the request are checked before any path is built. */
	ck_assert_int_eq(queue_open_shared(qdir, "..", id, 0, &env, &err), -1);
	ck_assert_int_eq(errno, EINVAL);
	free(err);
	err = NULL;
	ck_assert_int_eq(queue_open_shared(qdir, QUEUE_CORRUPT, id, 0, &env, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(queue_open_shared(qdir, QUEUE_ACTIVE, "../active/x", 0, &env,
	    &err), -1);
	ck_assert_int_eq(errno, EINVAL);
	free(err);
	err = NULL;
	/* A symbolic link in place of the file is not followed. */
	ck_assert_int_eq(queue_move(qdir, QUEUE_ACTIVE, QUEUE_HOLD, id), 0);
	{
		char *target = queue_path(qdir, QUEUE_HOLD, id);

		ck_assert_int_eq(symlink(target, path), 0);
		free(target);
	}
	ck_assert_int_eq(queue_open_shared(qdir, QUEUE_ACTIVE, id, 0, &env, &err), -1);
	ck_assert_int_eq(errno, ELOOP);
	free(err);
	err = NULL;
	ck_assert_int_eq(unlink(path), 0);
	/* Gone (an administrator deleted it): ENOENT, nothing else. */
	ck_assert_int_eq(queue_open_shared(qdir, QUEUE_ACTIVE, id, 0, &env, &err), -1);
	ck_assert_int_eq(errno, ENOENT);
	free(err);
	ck_assert_int_eq(queue_move(qdir, QUEUE_ACTIVE, QUEUE_DEFERRED, id), -1);
	ck_assert_int_eq(errno, ENOENT);
	free(path);
}
END_TEST

/* Replace what the file at path holds with n bytes c (same inode). */
static void
overwrite(const char *path, int c, size_t n)
{
	char *p = xmalloc(n);
	int fd = open(path, O_WRONLY | O_TRUNC);

	ck_assert_int_ge(fd, 0);
	memset(p, c, n);
	ck_assert_int_eq(write_all(fd, p, n), 0);
	ck_assert_int_eq(close(fd), 0);
	free(p);
}

/* The size qmgr passes to queue_remove(): what it read, env.file_size. */
static off_t
qsize(const char *dir, const char *id)
{
	char *path = queue_path(qdir, dir, id);
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	free(path);
	return st.st_size;
}

static ino_t
inode_of(const char *dir, const char *id)
{
	char *path = queue_path(qdir, dir, id);
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s", path);
	free(path);
	return st.st_ino;
}

/* A finished file goes to recycle/, emptied; the next writer in incoming/
 * takes that inode instead of creating one, and what it writes reads back
 * whole, with a new queue ID. */
START_TEST(test_recycle)
{
	char id[QUEUE_ID_MAX], id2[QUEUE_ID_MAX], id3[QUEUE_ID_MAX], *path, *err = NULL;
	struct stat st;
	struct qenv env;
	ino_t ino;
	off_t size;
	int fd;

	write_small(id);
	ino = inode_of(QUEUE_INCOMING, id);
	path = queue_path(qdir, QUEUE_INCOMING, id);
	ck_assert_int_eq(stat(path, &st), 0);
	size = st.st_size;
	free(path);
	ck_assert_int_eq(queue_move(qdir, QUEUE_INCOMING, QUEUE_ACTIVE, id), 0);
	ck_assert_int_eq(queue_remove(qdir, QUEUE_ACTIVE, id, size), 0);
	ck_assert_int_eq(count_dir(QUEUE_ACTIVE, NULL), 0);
	/* A small file keeps its blocks for the next writer. */
	path = queue_path(qdir, QUEUE_RECYCLE, id);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, size);
	free(path);
	/* Gone already: ENOENT, nothing recycled twice. */
	ck_assert_int_eq(queue_remove(qdir, QUEUE_ACTIVE, id, size), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(queue_remove(qdir, QUEUE_ACTIVE, "../x", 0), -1);
	ck_assert_int_eq(errno, EINVAL);

	write_small(id2);
	ck_assert_str_ne(id, id2);
	ck_assert_int_eq(inode_of(QUEUE_INCOMING, id2), ino);
	ck_assert_int_eq(count_dir(QUEUE_RECYCLE, NULL), 0);
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, NULL), 1);
	path = queue_path(qdir, QUEUE_INCOMING, id2);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	memset(&env, 0, sizeof(env));
	ck_assert_msg(queue_read(fd, &env, &err) == 0, "read: %s", err ? err : "?");
	ck_assert_str_eq(env.sender, "s@example.org");
	ck_assert_int_eq(env.nrcpt, 2);
	ck_assert_int_eq(env.file_size, size);
	qenv_free(&env);
	close(fd);
	free(path);

	/* A large file gives its blocks back when it is recycled. */
	write_small(id3);
	path = queue_path(qdir, QUEUE_INCOMING, id3);
	overwrite(path, 'x', QUEUE_RECYCLE_KEEP + 1);
	free(path);
	ck_assert_int_eq(queue_remove(qdir, QUEUE_INCOMING, id3,
	    qsize(QUEUE_INCOMING, id3)), 0);
	path = queue_path(qdir, QUEUE_RECYCLE, id3);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(unlink(path), 0);
	free(path);

	/* Without recycle/ (a queue made by an older version), a removal
	 * still removes. */
	path = xasprintf("%s/%s", qdir, QUEUE_RECYCLE);
	ck_assert_int_eq(rmdir(path), 0);
	write_small(id);
	ck_assert_int_eq(queue_remove(qdir, QUEUE_INCOMING, id,
	    qsize(QUEUE_INCOMING, id)), 0);
	ck_assert_int_eq(count_dir(QUEUE_INCOMING, NULL), 1);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	free(path);

	/* recycle/ is empty now: the next writer creates an inode. */
	write_small(id);
	ck_assert_int_ne(inode_of(QUEUE_INCOMING, id), ino);
}
END_TEST

/* A recycled file that somebody changed (not 0600) is not reused, and
 * whatever a crash left in a recycled file is gone once it is taken. */
START_TEST(test_recycle_checks)
{
	char id[QUEUE_ID_MAX], id2[QUEUE_ID_MAX], *path;
	struct qenv env;
	struct stat st;
	char *err = NULL;
	ino_t ino;
	off_t size;
	int fd;

	write_small(id);
	ck_assert_int_eq(queue_remove(qdir, QUEUE_INCOMING, id,
	    qsize(QUEUE_INCOMING, id)), 0);
	path = queue_path(qdir, QUEUE_RECYCLE, id);
	ck_assert_int_eq(chmod(path, 0644), 0);
	free(path);
	write_small(id2);
	ck_assert_int_eq(count_dir(QUEUE_RECYCLE, NULL), 0);
	path = queue_path(qdir, QUEUE_INCOMING, id2);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	free(path);

	/* A longer old message in recycle/: the taker writes over it and
	 * the result is exactly its own message, not the old one's tail. */
	ino = inode_of(QUEUE_INCOMING, id2);
	path = queue_path(qdir, QUEUE_INCOMING, id2);
	ck_assert_int_eq(stat(path, &st), 0);
	size = st.st_size;
	overwrite(path, 'R', 8192);
	{
		char *dst = queue_path(qdir, QUEUE_RECYCLE, id2);

		ck_assert_int_eq(rename(path, dst), 0);
		free(dst);
	}
	free(path);
	write_small(id);
	ck_assert_int_eq(inode_of(QUEUE_INCOMING, id), ino);
	path = queue_path(qdir, QUEUE_INCOMING, id);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	memset(&env, 0, sizeof(env));
	ck_assert_msg(queue_read(fd, &env, &err) == 0, "read: %s", err ? err : "?");
	ck_assert_int_eq(env.nrcpt, 2);
	ck_assert_int_eq(env.file_size, size);
	qenv_free(&env);
	close(fd);
	free(path);
}
END_TEST

/* A large message over a smaller recycled file: the pieces written
 * unbuffered count too, so the file is cut after the last byte, not in
 * the middle of the message. */
START_TEST(test_recycle_large_message)
{
	char id[QUEUE_ID_MAX], *path, *err = NULL, *big;
	struct queue_writer *w;
	struct buf got = BUF_INIT(0);
	struct qenv env;
	size_t n = 300 * 1024;
	int fd;

	/* Larger than the message (as a file an older version kept, or one
	 * recycled by a process killed before its truncate). */
	write_small(id);
	path = queue_path(qdir, QUEUE_INCOMING, id);
	overwrite(path, 'R', 2 * n);
	{
		char *dst = queue_path(qdir, QUEUE_RECYCLE, id);

		ck_assert_int_eq(rename(path, dst), 0);
		free(dst);
	}
	free(path);

	big = xmalloc(n);
	fill_pattern(big, n, 7);
	w = queue_writer_open(qdir, QUEUE_INCOMING, (uid_t)-1, (gid_t)-1, &err);
	ck_assert_msg(w != NULL, "open: %s", err ? err : "?");
	ck_assert_int_eq(queue_writer_sender(w, "s@example.org"), 0);
	ck_assert_int_eq(queue_writer_rcpt(w, "a@example.com", "", ""), 0);
	ck_assert_int_eq(queue_writer_content(w, "Subject: big\n\n", 14), 0);
	ck_assert_int_eq(queue_writer_content(w, big, n), 0);
	ck_assert_int_eq(queue_writer_commit(w, id), 0);
	queue_writer_free(&w);
	ck_assert_int_eq(count_dir(QUEUE_RECYCLE, NULL), 0);

	path = queue_path(qdir, QUEUE_INCOMING, id);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	memset(&env, 0, sizeof(env));
	ck_assert_msg(queue_read(fd, &env, &err) == 0, "read: %s", err ? err : "?");
	ck_assert_int_eq(queue_content(fd, &env, collect, &got), 0);
	ck_assert_uint_eq(got.len, n + 14);
	ck_assert(memcmp(got.data, "Subject: big\n\n", 14) == 0);
	ck_assert(memcmp(got.data + 14, big, n) == 0);
	buf_free(&got);
	qenv_free(&env);
	close(fd);
	free(path);
	free(big);
}
END_TEST

/* An empty file named like the queue file that arrived at sec + n us with
 * inode ino, in dir; its ID in id. */
static void
make_named(const char *dir, time_t sec, int n, ino_t ino, char id[QUEUE_ID_MAX])
{
	struct timespec ts = { sec, (long)n * 1000 };
	char *path;
	int fd;

	ck_assert_int_eq(queue_id_make(id, &ts, ino), 0);
	path = queue_path(qdir, dir, id);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	free(path);
}

/* The MAIL FROM room check: minfree stays free, a declared size leaves
 * it free too and takes under half of what is available. */
START_TEST(test_space)
{
	const unsigned long long M = 1024 * 1024;
	unsigned long long avail = 7;

	ck_assert_int_eq(queue_space_ok(100 * M, 15 * M, 0), 1);
	ck_assert_int_eq(queue_space_ok(15 * M, 15 * M, 0), 0);
	ck_assert_int_eq(queue_space_ok(10 * M, 15 * M, 0), 0);
	ck_assert_int_eq(queue_space_ok(0, 0, 0), 0);
	ck_assert_int_eq(queue_space_ok(100 * M, 15 * M, 40 * M), 1);
	ck_assert_int_eq(queue_space_ok(100 * M, 15 * M, 50 * M), 0);   /* half */
	ck_assert_int_eq(queue_space_ok(100 * M, 60 * M, 40 * M), 0);   /* minfree */
	ck_assert_int_eq(queue_space_ok(100 * M, 0, 49 * M), 1);
	ck_assert_int_eq(queue_space_ok(ULLONG_MAX, ULLONG_MAX - 1, 0), 1);
	ck_assert_int_eq(queue_space_ok(ULLONG_MAX, 0, ULLONG_MAX), 0);

	/* The real file system of the test's directory: room with nothing
	 * reserved, none when all of it must stay free. */
	ck_assert_int_eq(queue_space(qdir, 0, 0, &avail), 1);
	ck_assert(avail > 0);
	ck_assert_int_eq(queue_space(qdir, avail * 4, 0, &avail), 0);
	ck_assert_int_eq(queue_space("/nonexistent/queue", 0, 0, &avail), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert(avail == 0);
}
END_TEST

/* recycle/ stays bounded: once it holds QUEUE_RECYCLE_MAX files, removal
 * unlinks (the count is taken again every 256 removals). */
START_TEST(test_recycle_bound)
{
	char id[QUEUE_ID_MAX];
	int i, n;

	for (i = 0; i < QUEUE_RECYCLE_MAX; i++)
		make_named(QUEUE_RECYCLE, 1700000000, i, (ino_t)(100000 + i), id);
	for (i = 0; i < 300; i++) {
		make_named(QUEUE_ACTIVE, 1710000000, i, (ino_t)(200000 + i), id);
		ck_assert_int_eq(queue_remove(qdir, QUEUE_ACTIVE, id, 0), 0);
	}
	ck_assert_int_eq(count_dir(QUEUE_ACTIVE, NULL), 0);
	n = count_dir(QUEUE_RECYCLE, NULL);
	ck_assert_msg(n >= QUEUE_RECYCLE_MAX && n < QUEUE_RECYCLE_MAX + 256,
	    "recycle/ holds %d", n);
}
END_TEST

static Suite *
queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_content_small_and_changed);
	tcase_add_test(tc, test_dirs);
	tcase_add_test(tc, test_mark_and_move);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_writer_order);
	tcase_add_test(tc, test_writer_milter_edits);
	tcase_add_test(tc, test_id_valid);
	tcase_add_test(tc, test_id_unique);
	tcase_add_test(tc, test_open_shared);
	tcase_add_test(tc, test_recycle);
	tcase_add_test(tc, test_recycle_checks);
	tcase_add_test(tc, test_recycle_large_message);
	tcase_add_test(tc, test_recycle_bound);
	tcase_add_test(tc, test_space);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(queue_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
