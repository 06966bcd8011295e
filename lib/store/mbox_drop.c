/*
 * mbox_drop - an mbox spool read as a POP3 maildrop (store/mbox.h): parsed
 * under the locks local delivers under, read message by message, expunged
 * in place.
 *
 * Apart from mbox.c (delivery) so that local does not link OpenSSL for
 * the UIDL digest below: a local process starts without libcrypto.
 * Trusts: nothing in the file: it must be a regular file with one link
 * (O_NOFOLLOW) owned by the expected uid, and parsing stays inside the
 * mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/alloc.h"
#include "store/mbox.h"

struct mbox_drop {
	char *path;
	char *lock;              /* our dot-lock, or NULL */
	int fd;
	char *map;
	size_t maplen;
	struct mbox_drop_msg *v;
	size_t n;
};

static int
drop_fail(char **err_r, char *text)
{
	if (err_r != NULL)
		*err_r = text;
	else
		free(text);
	return -1;
}

static int
is_from_line(const char *p, size_t len)
{
	return len >= 5 && memcmp(p, "From ", 5) == 0;
}

/* ^>+From : quoted by the writer; one '>' goes. */
static int
is_quoted_from(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] == '>')
		i++;
	return i > 0 && is_from_line(p + i, len - i);
}

static void
drop_unmap(struct mbox_drop *d)
{
	if (d->map != NULL && d->maplen > 0)
		munmap(d->map, d->maplen);
	d->map = NULL;
	d->maplen = 0;
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/* Sizes and the UIDL of one message. */
static void
drop_measure(struct mbox_drop *d, struct mbox_drop_msg *m)
{
	const char *p = d->map + m->body_off, *end = d->map + m->body_end, *nl;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned long long size = 0, lines = 0;
	size_t i;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		size += len - (is_quoted_from(p, len) ? 1 : 0);
		if (nl != NULL)
			lines++;
		p += len;
	}
	m->size = size;
	/* each LF becomes CRLF; an unended last line gets one */
	m->wire_size = size + lines + (size > 0 && d->map[m->body_end - 1] != '\n' ? 2 : 0);
	if (EVP_Digest(d->map + m->from_off, (size_t)(m->body_end - m->from_off), md, NULL,
	    EVP_sha256(), NULL) != 1)
		memset(md, 0, sizeof(md));   /* still unique: the suffix below */
	for (i = 0; i < 16; i++)
		snprintf(m->uidl + 2 * i, 3, "%02x", md[i]);
}

static int
drop_parse(struct mbox_drop *d, char **err_r)
{
	struct stat st;
	size_t off = 0, cap = 0, i, j;
	int e;

	drop_unmap(d);
	if (fstat(d->fd, &st) != 0) {
		e = errno;
		return drop_fail(err_r, xasprintf("stat %s: %s", d->path, strerror(e)));
	}
	if (st.st_size == 0)
		return 0;
	d->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, d->fd, 0);
	if (d->map == MAP_FAILED) {
		e = errno;
		d->map = NULL;
		return drop_fail(err_r, xasprintf("map %s: %s", d->path, strerror(e)));
	}
	d->maplen = (size_t)st.st_size;
	while (off < d->maplen) {
		const char *p = d->map + off;
		const char *nl = memchr(p, '\n', d->maplen - off);
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : d->maplen - off;

		if (is_from_line(p, len)) {
			if (d->n == cap) {
				cap = cap ? cap * 2 : 64;
				d->v = xreallocarray(d->v, cap, sizeof(*d->v));
			}
			memset(&d->v[d->n], 0, sizeof(d->v[0]));
			d->v[d->n].from_off = (off_t)off;
			d->v[d->n].body_off = (off_t)(off + len);
			d->n++;
		} else if (d->n == 0 && off == 0) {
			drop_unmap(d);
			return drop_fail(err_r, xasprintf("%s: not an mbox file (no From line "
			    "at the start)", d->path));
		}
		off += len;
	}
	for (i = 0; i < d->n; i++) {
		struct mbox_drop_msg *m = &d->v[i];

		m->next_off = i + 1 < d->n ? d->v[i + 1].from_off : (off_t)d->maplen;
		m->body_end = m->next_off;
		/* the blank line the writer put after the message */
		if (m->body_end - m->body_off >= 2 && d->map[m->body_end - 1] == '\n' &&
		    d->map[m->body_end - 2] == '\n')
			m->body_end--;
		else if (m->body_end - m->body_off == 1 && d->map[m->body_off] == '\n')
			m->body_end--;
		drop_measure(d, m);
		/* identical messages still get distinct UIDLs */
		for (j = 0; j < i; j++)
			if (strncmp(d->v[j].uidl, m->uidl, 32) == 0) {
				snprintf(m->uidl + 32, sizeof(m->uidl) - 32, "-%zu", i);
				break;
			}
	}
	return 0;
}

int
mbox_drop_open(const char *path, const struct mbox_opts *o, struct mbox_drop **d_r,
    char **err_r)
{
	int timeout = o->lock_timeout > 0 ? o->lock_timeout : 10;
	int stale = o->stale_lock > 0 ? o->stale_lock : 300;
	struct mbox_drop *d;
	struct stat st;
	int e;

	*d_r = NULL;
	d = xcalloc(1, sizeof(*d));
	d->path = xstrdup(path);
	d->fd = -1;
	if (o->dotlock && mbox_dotlock_take(path, timeout, stale, &d->lock) < 0) {
		e = errno;
		mbox_drop_close(&d);
		return drop_fail(err_r, e == EAGAIN ?
		    xasprintf("mailbox %s: dot-lock %s.lock is held", path, path) :
		    xasprintf("create dot-lock %s.lock: %s", path, strerror(e)));
	}
	d->fd = open(path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (d->fd < 0 && errno == ENOENT) {
		*d_r = d;   /* no mail yet: an empty maildrop */
		return 0;
	}
	if (d->fd < 0) {
		e = errno;
		mbox_drop_close(&d);
		return drop_fail(err_r, xasprintf("open mailbox %s: %s", path, strerror(e)));
	}
	if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (o->owner != (uid_t)-1 && st.st_uid != o->owner)) {
		mbox_drop_close(&d);
		return drop_fail(err_r, xasprintf("mailbox %s is not a regular file with one "
		    "link owned by uid %ld", path, (long)o->owner));
	}
	(void)fcntl(d->fd, F_SETFL, O_RDWR);
	if (mbox_fcntl_lock(d->fd, timeout) < 0) {
		e = errno;
		mbox_drop_close(&d);
		return drop_fail(err_r, e == EAGAIN ? xasprintf("mailbox %s is locked", path) :
		    xasprintf("lock mailbox %s: %s", path, strerror(e)));
	}
	if (drop_parse(d, err_r) != 0) {
		mbox_drop_close(&d);
		return -1;
	}
	*d_r = d;
	return 0;
}

size_t
mbox_drop_count(const struct mbox_drop *d)
{
	return d->n;
}

const struct mbox_drop_msg *
mbox_drop_msg(const struct mbox_drop *d, size_t i)
{
	return i < d->n ? &d->v[i] : NULL;
}

int
mbox_drop_read(struct mbox_drop *d, size_t i, mail_out_fn out, void *out_ctx,
    char **err_r)
{
	const char *p, *end, *nl;

	if (i >= d->n)
		return drop_fail(err_r, xasprintf("no message %zu", i + 1));
	p = d->map + d->v[i].body_off;
	end = d->map + d->v[i].body_end;
	while (p < end) {
		size_t len;
		int q;

		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		q = is_quoted_from(p, len);
		if (out(p + q, len - (size_t)q, out_ctx) != 0)
			return drop_fail(err_r, xasprintf("write: %s", strerror(errno)));
		p += len;
	}
	return 0;
}

/* Copy [from, from+len) down to to (to <= from) in the file. */
static int
move_down(int fd, off_t from, off_t to, off_t len)
{
	char buf[64 * 1024];
	ssize_t r;

	while (len > 0) {
		size_t want = len < (off_t)sizeof(buf) ? (size_t)len : sizeof(buf);

		r = pread(fd, buf, want, from);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				errno = EIO;
			return -1;
		}
		if (pwrite(fd, buf, (size_t)r, to) != r)
			return -1;
		from += r;
		to += r;
		len -= r;
	}
	return 0;
}

int
mbox_drop_expunge(struct mbox_drop *d, const size_t *idx, size_t n, char **err_r)
{
	char *del;
	off_t w = -1;
	size_t i;
	int e;

	if (n == 0 || d->n == 0)
		return 0;
	del = xcalloc(d->n, 1);
	for (i = 0; i < n; i++)
		if (idx[i] < d->n)
			del[idx[i]] = 1;
	for (i = 0; i < d->n; i++) {
		struct mbox_drop_msg *m = &d->v[i];

		if (del[i]) {
			if (w < 0)
				w = m->from_off;
			continue;
		}
		if (w < 0)
			continue;
		if (move_down(d->fd, m->from_off, w, m->next_off - m->from_off) != 0)
			goto fail;
		w += m->next_off - m->from_off;
	}
	free(del);
	del = NULL;
	if (w >= 0 && (ftruncate(d->fd, w) != 0 || fsync(d->fd) != 0))
		goto fail;
	return drop_parse(d, err_r);
fail:
	e = errno;
	free(del);
	return drop_fail(err_r, xasprintf("rewrite mailbox %s: %s", d->path, strerror(e)));
}

void
mbox_drop_close(struct mbox_drop **dp)
{
	struct mbox_drop *d = *dp;

	if (d == NULL)
		return;
	drop_unmap(d);
	if (d->fd >= 0)
		close(d->fd);   /* drops the fcntl lock */
	if (d->lock != NULL) {
		unlink(d->lock);
		free(d->lock);
	}
	free(d->path);
	free(d);
	*dp = NULL;
}
