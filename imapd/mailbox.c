/*
 * mailbox - the mailboxes open in one imapd worker, shared by its
 * sessions, and how they learn of changes without polling.
 *
 * One inotify descriptor per worker; per open mailbox three watches: new/
 * and cur/ (a delivery by local, a flag rename or an expunge by anyone)
 * and the index file (IN_MODIFY: another session's or process's flag or
 * keyword change, which touches only the index). Events are coalesced for
 * NOTIFY_DELAY_MS, then the mailbox's gen goes up and idling sessions on
 * it are told (session_box_changed), so an IDLE client hears of a new
 * message well within a second and nothing reads the disk while nothing
 * happens.
 *
 * The snapshot (mbx_sync + mbx_list) is taken once per change and shared
 * by every session that compares its view with it.
 * Invariant: a session's own write calls imbox_changed(), so it never
 * depends on inotify to see what it did itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "imapd.h"

#define NOTIFY_DELAY_MS 20

static struct imbox *boxes;
static struct loop *iloop;
static int ifd = -1;
static uint64_t notify_timer;

static void
notify_cb(struct loop *l, void *ctx)
{
	notify_timer = 0;
	for (struct imbox *b = boxes; b != NULL; b = b->next) {
		if (b->gen != b->snap_gen)
			session_box_changed(b);
	}
}

static void
inotify_cb(struct loop *l, int fd, unsigned ev, void *ctx)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	int any = 0;

	while ((n = read(ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n; ) {
			struct inotify_event *e = (struct inotify_event *)p;
			for (struct imbox *b = boxes; b != NULL; b = b->next) {
				if (e->wd == b->wd[0] || e->wd == b->wd[1] || e->wd == b->wd[2]) {
					b->gen++;
					any = 1;
				}
			}
			p += sizeof(*e) + e->len;
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		log_warn("inotify read");
	if (any && notify_timer == 0)
		notify_timer = loop_timer_add(iloop, NOTIFY_DELAY_MS, notify_cb, NULL);
}

void
imbox_init(struct loop *l)
{
	iloop = l;
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0) {
		log_warn("inotify_init1: IDLE falls back to the client's NOOPs");
		return;
	}
	if (loop_fd_set(l, ifd, LOOP_READ, inotify_cb, NULL) < 0)
		log_fatal("inotify descriptor");
}

static void
watch(struct imbox *b)
{
	static const char *const sub[3] = { "new", "cur", MBX_INDEX_NAME };
	static const uint32_t mask[3] = {
		IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE,
		IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE,
		IN_MODIFY,
	};

	for (int i = 0; i < 3; i++) {
		b->wd[i] = -1;
		if (ifd < 0)
			continue;
		char *p = xasprintf("%s/%s", b->path, sub[i]);
		b->wd[i] = inotify_add_watch(ifd, p, mask[i] | IN_DONT_FOLLOW);
		if (b->wd[i] < 0)
			log_warn("inotify_add_watch %s", p);
		free(p);
	}
}

struct imbox *
imbox_acquire(const char *path, int create, char **err_r)
{
	struct imbox *b;

	for (b = boxes; b != NULL; b = b->next) {
		if (strcmp(b->path, path) == 0) {
			b->refs++;
			return b;
		}
	}
	b = xcalloc(1, sizeof(*b));
	if (mbx_open(path, create ? MBX_CREATE : 0, &b->mb, err_r) < 0) {
		free(b);
		return NULL;
	}
	b->path = xstrdup(path);
	b->refs = 1;
	b->gen = 1;
	watch(b);
	b->next = boxes;
	boxes = b;
	return b;
}

void
imbox_release(struct imbox **bp)
{
	struct imbox *b = *bp, **pp;

	*bp = NULL;
	if (b == NULL || --b->refs > 0)
		return;
	for (pp = &boxes; *pp != b; pp = &(*pp)->next)
		;
	*pp = b->next;
	for (int i = 0; i < 3; i++) {
		/* Watches on one inode share a descriptor: keep it while
		 * another open path (none today) would still need it. */
		if (b->wd[i] >= 0)
			(void)inotify_rm_watch(ifd, b->wd[i]);
	}
	mbx_msgs_free(&b->snap, b->nsnap);
	mbx_close(&b->mb);
	free(b->path);
	free(b);
}

void
imbox_changed(struct imbox *b)
{
	b->gen++;
	if (notify_timer == 0 && iloop != NULL)
		notify_timer = loop_timer_add(iloop, NOTIFY_DELAY_MS, notify_cb, NULL);
}

int
imbox_snapshot(struct imbox *b, char **err_r)
{
	uint64_t gen = b->gen;

	if (b->snap != NULL && b->snap_gen == gen)
		return 0;
	if (mbx_sync(b->mb, NULL, err_r) < 0)
		return -1;
	mbx_msgs_free(&b->snap, b->nsnap);
	b->nsnap = 0;
	if (mbx_list(b->mb, &b->snap, &b->nsnap, err_r) < 0) {
		b->snap = NULL;
		return -1;
	}
	/* What mbx_sync itself wrote comes back as an event: that one is
	 * ours, already in this snapshot (gen may have moved meanwhile only
	 * by the loop, which does not run here). */
	b->snap_gen = gen;
	return 0;
}
