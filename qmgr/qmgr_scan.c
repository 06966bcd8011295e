/*
 * qmgr_scan - startup recovery and the incoming/deferred scans that feed
 * the active queue (Postfix's qmgr_active_feed with a leaky bucket).
 *
 * A scan is an open directory stream read a few names at a time, so a
 * huge queue costs no memory: qmgr_feed() pulls names while the number of
 * messages in memory is below qmgr_message_active_limit and their
 * recipients below qmgr_message_recipient_limit (qmgr_room), alternating
 * between incoming and deferred for fairness. A scan requested while one
 * is running is remembered and started when the current one ends.
 *
 * What is taken: names that are valid queue IDs (so complete files, see
 * queue.h), regular files (lstat), with an mtime not in the future -
 * deferred files carry their next retry time there, and files pushed back
 * because they were locked carry "not before". A flush ignores the mtime.
 *
 * Trusts: nothing about the names (validated) or file types (checked).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "mail/queue.h"
#include "qmgr.h"

#define STALE_TMP_SEC 3600      /* unlockable temporary: remove by age */
#define ORPHAN_TMP_MIN_AGE 5     /* s: covers a writer between close and rename */

struct scan {
	const char *dir;
	DIR *d;
	int flush;        /* this scan takes files whatever their mtime */
	int again;        /* another scan was asked for meanwhile */
	int again_flush;
};

static struct scan scans[2] = {
	{ QUEUE_INCOMING, NULL, 0, 0, 0 },
	{ QUEUE_DEFERRED, NULL, 0, 0, 0 },
};
static int turn;

static DIR *
open_queue_dir(const char *dir)
{
	char *path = xasprintf("%s/%s", qconf.queue_directory, dir);
	DIR *d = opendir(path);

	if (d == NULL)
		log_warn("open %s", path);
	xfree(&path);
	return d;
}

static void
scan_request(struct scan *s, int flush)
{
	if (s->d != NULL) {
		s->again = 1;
		s->again_flush |= flush;
		return;
	}
	s->d = open_queue_dir(s->dir);
	s->flush = flush;
}

void
qmgr_scan_incoming(void)
{
	scan_request(&scans[0], 0);
	qmgr_kick();
}

void
qmgr_scan_deferred(int flush)
{
	scan_request(&scans[1], flush);
	qmgr_kick();
}

/* The next name the scan may take; 0 when it is done. */
static int
scan_next(struct scan *s, char name[QUEUE_ID_MAX])
{
	struct dirent *de;
	struct stat st;
	struct timespec now;

	/* Not time(): it reads the coarse clock, up to a tick behind the
	 * fine-grained mtime the kernel gives a file whose times were
	 * stat'ed (multigrain timestamps, Linux 6.13+). Near a second
	 * boundary a file just written then looks "not before" the next
	 * second, is skipped, and waits for the next scan - seconds, when
	 * its own trigger was the last. */
	clock_gettime(CLOCK_REALTIME, &now);
	while (s->d != NULL) {
		errno = 0;
		de = readdir(s->d);
		if (de == NULL) {
			if (errno != 0)
				log_warn("read directory %s", s->dir);
			closedir(s->d);
			s->d = NULL;
			if (s->again) {
				s->again = 0;
				s->d = open_queue_dir(s->dir);
				s->flush = s->again_flush;
				s->again_flush = 0;
			}
			continue;
		}
		if (!queue_id_valid(de->d_name))
			continue;
		if (fstatat(dirfd(s->d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (!s->flush && st.st_mtime > now.tv_sec)
			continue;
		/* queue_id_valid() bounds the length below QUEUE_ID_MAX. */
		memcpy(name, de->d_name, strlen(de->d_name) + 1);
		return 1;
	}
	return 0;
}

int
qmgr_feed(int budget)
{
	char name[QUEUE_ID_MAX];
	struct scan *s;
	int n = 0, k;

	while (n < budget && !qmgr_draining && qmgr_room()) {
		s = NULL;
		for (k = 0; k < 2 && s == NULL; k++)
			if (scan_next(&scans[(turn + k) % 2], name))
				s = &scans[(turn + k) % 2];
		if (s == NULL)
			return 0;
		turn = (int)(s - scans + 1) % 2;
		qmsg_activate(s->dir, name);
		n++;
	}
	return n >= budget && !qmgr_draining && qmgr_room() &&
	    (scans[0].d != NULL || scans[1].d != NULL);
}

/* A writer named the file it just committed to incoming/ (trigger "N"):
 * take it without listing the directory - an opendir, a getdents and a
 * close per wake-up saved. Only when no incoming scan runs (its stream may
 * or may not return the new name, and it keeps the order) and there is
 * room; otherwise the caller asks for a scan, as for 'I'. The checks are
 * the scan's (scan_next()): a queue ID, a regular file, an mtime not in
 * the future. Returns 1 when the name needs nothing more. */
int
qmgr_take_incoming(const char *id)
{
	struct timespec now;
	struct stat st;
	char *path;
	int rc;

	if (!queue_id_valid(id) || scans[0].d != NULL || qmgr_draining ||
	    !qmgr_room())
		return 0;
	path = queue_path(qconf.queue_directory, QUEUE_INCOMING, id);
	rc = lstat(path, &st);
	xfree(&path);
	if (rc < 0)
		return errno == ENOENT;   /* taken already (a scan, a flush) */
	clock_gettime(CLOCK_REALTIME, &now);
	if (!S_ISREG(st.st_mode) || st.st_mtime > now.tv_sec)
		return 0;                 /* the scan's rules decide */
	qmsg_activate(QUEUE_INCOMING, id);
	qmgr_kick();
	return 1;
}

/* The requests in one read of a trigger connection, each once however
 * often it came (a kept connection brings one per message), except
 * "N<queue id>\n": a writer names the file it committed to incoming/, and
 * it is taken here without a scan when it can be (qmgr_take_incoming()).
 * A name cut off by the end of the read, or one not taken, asks for a
 * scan like 'I'; *cut carries "skip to the next newline" to the next
 * read. A read that filled its buffer (size) asks for a scan too: the
 * writer drops a wake-up when the socket is full (trigger_keep()), and a
 * name dropped then would wait for the timer's scan. */
unsigned
qmgr_trigger_parse(const char *req, ssize_t n, size_t size, int *cut)
{
	char id[QUEUE_ID_MAX];
	const char *nl;
	unsigned r = 0;
	ssize_t i = 0;
	size_t len;

	if (n > 0 && *cut) {
		nl = memchr(req, '\n', (size_t)n);
		i = nl != NULL ? nl - req + 1 : n;
		*cut = nl == NULL;
	}
	if (n > 0 && (size_t)n >= size)
		r |= QTRIG_INCOMING;
	for (; i < n; i++) {
		switch (req[i]) {
		case 'N':
			nl = memchr(req + i + 1, '\n', (size_t)(n - i - 1));
			if (nl == NULL) {
				*cut = 1;
				r |= QTRIG_INCOMING;
				return r;
			}
			len = (size_t)(nl - (req + i + 1));
			if (len >= sizeof(id)) {
				r |= QTRIG_INCOMING;
			} else {
				memcpy(id, req + i + 1, len);
				id[len] = '\0';
				if (!qmgr_take_incoming(id))
					r |= QTRIG_INCOMING;
			}
			i = nl - req;
			break;
		case 'I':
			r |= QTRIG_INCOMING;
			break;
		case 'D':
			r |= QTRIG_DEFERRED;
			break;
		case 'F':
		case 'A':
			r |= QTRIG_FLUSH;
			break;
		case 'W':
			r |= QTRIG_WAKEUP;
			break;
		case 'K':
			r |= QTRIG_KEEP;
			break;
		default:
			break;
		}
	}
	return r;
}

/* Writer temporaries (".tmp.*") in incoming/ older than an hour belong to
 * nobody: a writer that lives takes seconds, and one killed mid-message
 * never comes back for its file. Called at startup and with every
 * deferred-queue run; one readdir of incoming/, which is short. */
void
qmgr_clean_stale(void)
{
	struct dirent *de;
	struct stat st;
	time_t now = time(NULL);
	DIR *d;
	int fd, dead;

	d = open_queue_dir(QUEUE_INCOMING);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".tmp", 4) != 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime < ORPHAN_TMP_MIN_AGE)
			continue;
		/* The writer holds LOCK_EX until it closes the file: if we
		 * get the lock, nobody will ever finish this file. */
		dead = 0;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC | O_NOCTTY);
		if (fd >= 0) {
			dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
		} else if (now - st.st_mtime >= STALE_TMP_SEC) {
			dead = 1;    /* cannot ask the lock: trust the age */
		}
		if (dead && unlinkat(dirfd(d), de->d_name, 0) < 0) {
			if (errno != ENOENT)
				log_warn("remove stale %s/%s", QUEUE_INCOMING, de->d_name);
		} else if (dead) {
			log_warnx("removed stale temporary file %s/%s: its writer is gone",
			    QUEUE_INCOMING, de->d_name);
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
}

/* Startup: a previous qmgr's in-memory state is gone, so whatever it had
 * in active/ starts over from incoming/ (agents it started may still hold
 * locks; activation then pushes those back for a while). */
void
qmgr_recover(void)
{
	struct dirent *de;
	size_t moved = 0;
	DIR *d;

	d = open_queue_dir(QUEUE_ACTIVE);
	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (!queue_id_valid(de->d_name))
				continue;
			if (queue_move(qconf.queue_directory, QUEUE_ACTIVE, QUEUE_INCOMING,
			    de->d_name) < 0)
				log_warn("%s: move from active to incoming", de->d_name);
			else
				moved++;
		}
		closedir(d);
	}
	if (moved > 0)
		log_info("moved %zu message(s) from active back to incoming", moved);

	qmgr_clean_stale();
}
