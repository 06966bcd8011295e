/*
 * test_qmgr_scan - which queue files qmgr's incoming and deferred scans
 * hand to activation, with real files in a temporary queue. qmgr_scan.c
 * is compiled in; what it calls in the rest of qmgr is stubbed here, and
 * the stub activation moves the file to active/ as qmgr's does.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue_fixture.h"
#include "../../qmgr/qmgr_scan.c"

struct qmgr_conf qconf;
struct loop *qmgr_loop;
int qmgr_draining;

#define MAXTAKEN 64

static int room, kicks, ntaken;
static char taken[MAXTAKEN][QUEUE_ID_MAX];
static unsigned long long seq;

void
qmgr_kick(void)
{
	kicks++;
}

int
qmgr_room(void)
{
	return room;
}

void
qmsg_activate(const char *from, const char *id)
{
	ck_assert_int_lt(ntaken, MAXTAKEN);
	snprintf(taken[ntaken++], QUEUE_ID_MAX, "%s", id);
	ck_assert_int_eq(queue_move(qdir, from, QUEUE_ACTIVE, id), 0);
}

static void
setup(void)
{
	queue_fixture_setup("test_qmgr_scan");
	memset(&qconf, 0, sizeof(qconf));
	qconf.queue_directory = qdir;
	qmgr_draining = 0;
	room = 1;
	kicks = ntaken = 0;
}

static void
teardown(void)
{
	/* A scan left open by a test holds its directory. */
	for (size_t i = 0; i < sizeof(scans) / sizeof(scans[0]); i++)
		if (scans[i].d != NULL) {
			closedir(scans[i].d);
			scans[i].d = NULL;
		}
	queue_fixture_teardown();
}

/* A complete file in dir under a fresh queue ID, with the given mtime. */
static void
put(const char *dir, const struct timespec *mtime, char id[QUEUE_ID_MAX])
{
	struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 0 };
	struct timespec times[2];
	char *path;
	int fd;

	ts.tv_nsec = (long)(++seq * 1000);
	ck_assert_int_eq(queue_id_make(id, &ts, (ino_t)(4242 + seq)), 0);
	ck_assert(queue_id_valid(id));
	path = xasprintf("%s/%s/%s", qdir, dir, id);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	times[0] = *mtime;
	times[1] = *mtime;
	ck_assert_int_eq(futimens(fd, times), 0);
	close(fd);
	free(path);
}

static struct timespec
now_plus(time_t sec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += sec;
	return ts;
}

static int
was_taken(const char *id)
{
	for (int i = 0; i < ntaken; i++)
		if (strcmp(taken[i], id) == 0)
			return 1;
	return 0;
}

/* Run the feed until it says there is nothing more to do right away. */
static void
feed_all(void)
{
	int rounds = 0;

	while (qmgr_feed(2))
		ck_assert_int_lt(++rounds, 100);
}

START_TEST(test_due_and_not_before)
{
	struct timespec past = now_plus(-10), later = now_plus(60);
	char due[QUEUE_ID_MAX], held[QUEUE_ID_MAX], retry[QUEUE_ID_MAX];
	char *junk;
	int fd;

	put(QUEUE_INCOMING, &past, due);
	put(QUEUE_INCOMING, &later, held);        /* pushed back: locked */
	put(QUEUE_DEFERRED, &later, retry);       /* next retry in a minute */
	junk = xasprintf("%s/%s/.tmp.123", qdir, QUEUE_INCOMING);
	fd = open(junk, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	free(junk);

	qmgr_scan_incoming();
	qmgr_scan_deferred(0);
	ck_assert_int_ge(kicks, 1);
	feed_all();
	ck_assert_int_eq(ntaken, 1);
	ck_assert_str_eq(taken[0], due);

	/* A flush takes deferred mail whatever its retry time. */
	qmgr_scan_deferred(1);
	feed_all();
	ck_assert_int_eq(ntaken, 2);
	ck_assert_str_eq(taken[1], retry);
	ck_assert(!was_taken(held));
}
END_TEST

/*
 * A file written just after a second boundary carries that second in
 * its mtime (the kernel takes a fine-grained time for a file whose times
 * were looked at), while the coarse clock can still say the second
 * before. The scan that its own trigger starts must take it: otherwise
 * it waits for the next periodic scan. Each round waits for the next
 * boundary, so this costs up to a few seconds.
 */
START_TEST(test_written_at_second_boundary)
{
	char id[QUEUE_ID_MAX];
	struct timespec t0, t;
	int round;

	for (round = 0; round < 3; round++) {
		clock_gettime(CLOCK_REALTIME, &t0);
		do
			clock_gettime(CLOCK_REALTIME, &t);
		while (t.tv_sec == t0.tv_sec);
		put(QUEUE_INCOMING, &t, id);
		qmgr_scan_incoming();
		feed_all();
		ck_assert_msg(was_taken(id), "round %d: the file of %lld.%09ld "
		    "was left for a later scan, as if not yet due", round, (long long)t.tv_sec,
		    t.tv_nsec);
	}
}
END_TEST

/* A scan asked for while one is open reads the directory again when the
 * open one ends, so a file renamed in meanwhile is not missed. */
START_TEST(test_request_during_scan)
{
	struct timespec past = now_plus(-10);
	char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX], c[QUEUE_ID_MAX], late[QUEUE_ID_MAX];

	put(QUEUE_INCOMING, &past, a);
	put(QUEUE_INCOMING, &past, b);
	put(QUEUE_INCOMING, &past, c);
	qmgr_scan_incoming();
	ck_assert_int_eq(qmgr_feed(1), 1);       /* open, more to do */
	ck_assert_int_eq(ntaken, 1);
	put(QUEUE_INCOMING, &past, late);
	qmgr_scan_incoming();
	feed_all();
	ck_assert_int_eq(ntaken, 4);
	ck_assert(was_taken(a) && was_taken(b) && was_taken(c) && was_taken(late));
}
END_TEST

/* No room (active limits): nothing is taken, and the scan goes on from
 * where it was once there is room again. */
START_TEST(test_no_room)
{
	struct timespec past = now_plus(-10);
	char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX];

	put(QUEUE_INCOMING, &past, a);
	put(QUEUE_INCOMING, &past, b);
	room = 0;
	qmgr_scan_incoming();
	ck_assert_int_eq(qmgr_feed(10), 0);
	ck_assert_int_eq(ntaken, 0);
	room = 1;
	feed_all();
	ck_assert_int_eq(ntaken, 2);
	ck_assert(was_taken(a) && was_taken(b));
}
END_TEST

/* Startup: what a previous qmgr had in active/ starts over from incoming/. */
START_TEST(test_recover)
{
	struct timespec past = now_plus(-10);
	char a[QUEUE_ID_MAX];
	char *path;
	struct stat st;

	put(QUEUE_ACTIVE, &past, a);
	qmgr_recover();
	path = xasprintf("%s/%s/%s", qdir, QUEUE_INCOMING, a);
	ck_assert_int_eq(stat(path, &st), 0);
	free(path);
	qmgr_scan_incoming();
	feed_all();
	ck_assert_int_eq(ntaken, 1);
	ck_assert_str_eq(taken[0], a);
}
END_TEST

/* Feed a trigger read of the given bytes (a buffer of size bytes). */
static unsigned
trig(const char *bytes, size_t size, int *cut)
{
	return qmgr_trigger_parse(bytes, (ssize_t)strlen(bytes), size, cut);
}

/* "N<id>\n" from a writer: the file is taken at once, without a scan,
 * and the other requests in the same read still count. */
START_TEST(test_named_wakeup)
{
	struct timespec past = now_plus(-10);
	char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX], bytes[256];
	int cut = 0;
	unsigned r;

	put(QUEUE_INCOMING, &past, a);
	put(QUEUE_INCOMING, &past, b);
	snprintf(bytes, sizeof(bytes), "KN%s\nN%s\nD", a, b);
	r = trig(bytes, sizeof(bytes), &cut);
	ck_assert_uint_eq(r, QTRIG_KEEP | QTRIG_DEFERRED);
	ck_assert_int_eq(cut, 0);
	ck_assert_int_eq(ntaken, 2);
	ck_assert(was_taken(a) && was_taken(b));
	ck_assert_ptr_null(scans[0].d);

	/* Named again (taken already), or gone: nothing to do, no scan. */
	snprintf(bytes, sizeof(bytes), "N%s\n", a);
	ck_assert_uint_eq(trig(bytes, sizeof(bytes), &cut), 0);
	ck_assert_int_eq(ntaken, 2);
}
END_TEST

/* What cannot be taken at once is left to a scan, as 'I' was. */
START_TEST(test_named_wakeup_falls_back)
{
	struct timespec past = now_plus(-10), later = now_plus(60);
	char a[QUEUE_ID_MAX], held[QUEUE_ID_MAX], bytes[256];
	char *dir;
	int cut = 0;

	put(QUEUE_INCOMING, &past, a);
	put(QUEUE_INCOMING, &later, held);

	/* No room: the scan takes it when there is. */
	room = 0;
	snprintf(bytes, sizeof(bytes), "N%s\n", a);
	ck_assert_uint_eq(trig(bytes, sizeof(bytes), &cut), QTRIG_INCOMING);
	ck_assert_int_eq(ntaken, 0);
	room = 1;

	/* A scan is running: it keeps the order. */
	qmgr_scan_incoming();
	ck_assert_ptr_nonnull(scans[0].d);
	ck_assert_uint_eq(trig(bytes, sizeof(bytes), &cut), QTRIG_INCOMING);
	ck_assert_int_eq(ntaken, 0);
	feed_all();
	ck_assert_int_eq(ntaken, 1);
	ck_assert(was_taken(a));

	/* Not due (pushed back), not a queue ID, not a regular file, too
	 * long: never taken here. */
	snprintf(bytes, sizeof(bytes), "N%s\n", held);
	ck_assert_uint_eq(trig(bytes, sizeof(bytes), &cut), QTRIG_INCOMING);
	ck_assert_uint_eq(trig("N../active/x\n", 256, &cut), QTRIG_INCOMING);
	dir = xasprintf("%s/%s/%s", qdir, QUEUE_INCOMING, "4jjpyq3DYlz1bY3s");
	ck_assert(queue_id_valid("4jjpyq3DYlz1bY3s"));
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_uint_eq(trig("N4jjpyq3DYlz1bY3s\n", 256, &cut), QTRIG_INCOMING);
	free(dir);
	memset(bytes, 'a', 200);
	bytes[0] = 'N';
	strcpy(bytes + 200, "\n");
	ck_assert_uint_eq(trig(bytes, sizeof(bytes), &cut), QTRIG_INCOMING);
	ck_assert_int_eq(ntaken, 1);
	ck_assert_int_eq(cut, 0);

	/* Draining: nothing new is activated. */
	qmgr_scan_incoming();
	feed_all();
	qmgr_draining = 1;
	put(QUEUE_INCOMING, &past, a);
	snprintf(bytes, sizeof(bytes), "N%s\n", a);
	ck_assert_uint_eq(trig(bytes, sizeof(bytes), &cut), QTRIG_INCOMING);
	ck_assert(!was_taken(a));
}
END_TEST

/* A name cut by the end of a read asks for a scan, and its rest at the
 * start of the next read is skipped, not read as requests (a queue ID
 * holds letters such as 'D' and 'F'). A read that fills the buffer asks
 * for a scan: the writer may have dropped a wake-up. */
START_TEST(test_named_wakeup_cut)
{
	struct timespec past = now_plus(-10);
	char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX], first[64], rest[64];
	int cut = 0;

	put(QUEUE_INCOMING, &past, a);
	put(QUEUE_INCOMING, &past, b);
	snprintf(first, sizeof(first), "N%s\nNDFA", a);
	ck_assert_uint_eq(trig(first, sizeof(first), &cut), QTRIG_INCOMING);
	ck_assert_int_eq(cut, 1);
	ck_assert_int_eq(ntaken, 1);
	ck_assert(was_taken(a));
	snprintf(rest, sizeof(rest), "WFD\nN%s\n", b);
	ck_assert_uint_eq(trig(rest, sizeof(rest), &cut), 0);
	ck_assert_int_eq(cut, 0);
	ck_assert(was_taken(b));

	/* The rest longer than one read. */
	ck_assert_uint_eq(trig("N4jjp", 64, &cut), QTRIG_INCOMING);
	ck_assert_uint_eq(trig("yq3D", 64, &cut), 0);
	ck_assert_int_eq(cut, 1);
	ck_assert_uint_eq(trig("Ylz1bY3s\nK", 64, &cut), QTRIG_KEEP);
	ck_assert_int_eq(cut, 0);

	/* A full buffer. */
	ck_assert_uint_eq(trig("KIIIIII", 7, &cut), QTRIG_KEEP | QTRIG_INCOMING);
	ck_assert_uint_eq(trig("K", 7, &cut), QTRIG_KEEP);
}
END_TEST

static Suite *
qmgr_scan_suite(void)
{
	Suite *s = suite_create("qmgr_scan");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_due_and_not_before);
	tcase_add_test(tc, test_written_at_second_boundary);
	tcase_add_test(tc, test_request_during_scan);
	tcase_add_test(tc, test_no_room);
	tcase_add_test(tc, test_recover);
	tcase_add_test(tc, test_named_wakeup);
	tcase_add_test(tc, test_named_wakeup_falls_back);
	tcase_add_test(tc, test_named_wakeup_cut);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(qmgr_scan_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
