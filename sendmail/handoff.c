/*
 * handoff - give one message to pickup: over public/pickup when pickup
 * is running, else as a file in maildrop/ that pickup takes at its next
 * start or wake-up.
 *
 * Invariants:
 * - The whole stream (envelope, content, end frame) is built in memory
 *   first, so a read error on stdin can never leave anything behind, and
 *   the maildrop fallback has the complete message even when the socket
 *   failed half-way.
 * - Success is reported only after pickup said "ok" (its queue file is
 *   committed) or after the maildrop file and its directory entry are
 *   fsynced under their final name. A maildrop file is created O_EXCL
 *   under a '.' name (pickup skips those) and renamed when complete.
 * - A "fail" answer from pickup is final (the message is refused, nothing
 *   is queued); a "temp" answer, no answer or a broken connection falls
 *   back to maildrop/, so a message is never lost (at worst queued twice
 *   when pickup committed and then died before answering).
 * Trusts: the configuration for queue_directory.
 * Limits: the message must fit in memory (message_size_limit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/ipc.h"
#include "util/net.h"
#include "mail/queue.h"
#include "mail/submit.h"
#include "sendmail.h"

#define CONNECT_TIMEOUT_MS 5000
#define REPLY_TIMEOUT_MS (300 * 1000)

static void
put_frame(struct buf *out, struct ipc_msg *m)
{
	ipc_encode(m, out);
	ipc_reset(m);
}

static void
build_stream(const struct sm_msg *msg, struct buf *out)
{
	struct ipc_msg m;
	size_t off;

	ipc_init(&m);
	ipc_put(&m, "request", "submit");
	ipc_put(&m, "version", SUBMIT_VERSION);
	if (msg->sender != NULL)
		ipc_put(&m, "sender", msg->sender);
	if (msg->fullname != NULL && *msg->fullname)
		ipc_put(&m, "fullname", msg->fullname);
	for (size_t i = 0; msg->rcpts != NULL && msg->rcpts[i] != NULL; i++)
		ipc_put(&m, "rcpt", msg->rcpts[i]);
	if (msg->extract)
		ipc_put(&m, "extract", "yes");
	if (msg->notify != NULL && *msg->notify)
		ipc_put(&m, "notify", msg->notify);
	if (msg->ret != NULL)
		ipc_put(&m, "ret", msg->ret);
	if (msg->envid != NULL)
		ipc_put(&m, "envid", msg->envid);
	if (msg->body != NULL)
		ipc_put(&m, "body", msg->body);
	put_frame(out, &m);

	for (off = 0; off < msg->content.len; off += SUBMIT_CHUNK) {
		size_t n = msg->content.len - off;
		char *chunk;

		if (n > SUBMIT_CHUNK)
			n = SUBMIT_CHUNK;
		chunk = xstrndup(msg->content.data + off, n);
		ipc_put(&m, "data", chunk);
		free(chunk);
		put_frame(out, &m);
	}
	ipc_put(&m, "end", "yes");
	ipc_put_int(&m, "size", (long long)msg->content.len);
	put_frame(out, &m);
	ipc_free(&m);
}

/* 1 answered (res filled), 0 pickup not reachable or no answer. */
static int
via_socket(const struct buf *stream, struct sm_result *res)
{
	char *path = xasprintf("%s/%s/%s", sm_qdir, QUEUE_PUBLIC, SUBMIT_SOCKET);
	struct timeval tv = { .tv_sec = REPLY_TIMEOUT_MS / 1000 };
	struct ipc_msg m;
	const char *st, *v;
	long long code;
	int fd, ok = 0;

	fd = net_connect_unix(path, CONNECT_TIMEOUT_MS);
	if (fd < 0) {
		if (sm_verbose)
			fprintf(stderr, "sendmail: connect %s: %s\n", path, strerror(errno));
		free(path);
		return 0;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	ipc_init(&m);
	/* pickup may answer early (a refusal) and close: still read it. */
	if (write_all(fd, stream->data, stream->len) < 0 && sm_verbose)
		fprintf(stderr, "sendmail: write %s: %s\n", path, strerror(errno));
	if (ipc_recv(fd, &m, 64 * 1024, REPLY_TIMEOUT_MS) < 0) {
		if (sm_verbose)
			fprintf(stderr, "sendmail: no answer from %s: %s\n", path, strerror(errno));
		goto out;
	}
	st = ipc_get(&m, "status");
	if (st != NULL && strcmp(st, "ok") == 0) {
		v = ipc_get(&m, "queue_id");
		snprintf(res->queue_id, sizeof(res->queue_id), "%s", v ? v : "");
		res->exit_code = 0;
		ok = 1;
	} else if (st != NULL && strcmp(st, "fail") == 0) {
		v = ipc_get(&m, "reason");
		snprintf(res->reason, sizeof(res->reason), "%s", v ? v : "message refused");
		if (ipc_get_int(&m, "exit", &code) < 0 || code < 64 || code > 78)
			code = EX_DATAERR;
		res->exit_code = (int)code;
		ok = 1;
	} else if (sm_verbose) {
		v = ipc_get(&m, "reason");
		fprintf(stderr, "sendmail: pickup: %s\n", v ? v : "temporary failure");
	}
out:
	ipc_free(&m);
	close(fd);
	free(path);
	return ok;
}

static int
via_maildrop(const struct buf *stream, struct sm_result *res)
{
	unsigned char rnd[16];
	char name[2 * sizeof(rnd) + 1];
	char *dir = xasprintf("%s/%s", sm_qdir, QUEUE_MAILDROP), *tmp = NULL, *fin = NULL;
	int fd = -1, ok = 0;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(res->reason, sizeof(res->reason), "getrandom: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(name + 2 * i, 3, "%02x", rnd[i]);
	tmp = xasprintf("%s/.%s", dir, name);
	fin = xasprintf("%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(res->reason, sizeof(res->reason), "cannot create %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	/* pickup (mail_owner) must read it whatever our umask. */
	if (fchmod(fd, 0644) < 0 || write_all(fd, stream->data, stream->len) < 0
	    || fsync(fd) < 0) {
		snprintf(res->reason, sizeof(res->reason), "write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		snprintf(res->reason, sizeof(res->reason), "write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, fin) < 0) {
		snprintf(res->reason, sizeof(res->reason), "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	xfree(&tmp);
	/* We may not be able to open a 01733 directory for reading: then
	 * the rename is as durable as the file system makes it. */
	if (fsync_dir(dir) < 0 && errno != EACCES && sm_verbose)
		fprintf(stderr, "sendmail: fsync %s: %s\n", dir, strerror(errno));
	ok = 1;
out:
	if (fd >= 0)
		close(fd);
	if (!ok && tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	free(fin);
	free(dir);
	return ok;
}

void
sm_submit(const struct sm_msg *msg, struct sm_result *res)
{
	struct buf stream = BUF_INIT(0);

	memset(res, 0, sizeof(*res));
	build_stream(msg, &stream);
	if (via_socket(&stream, res)) {
		buf_free(&stream);
		return;
	}
	if (via_maildrop(&stream, res)) {
		if (sm_verbose)
			fprintf(stderr, "sendmail: mail system not running: message kept in %s/%s\n",
			    sm_qdir, QUEUE_MAILDROP);
		sm_trigger(SUBMIT_SOCKET, "I");
		res->exit_code = 0;
	} else {
		res->exit_code = EX_TEMPFAIL;
		res->temp = 1;
	}
	buf_free(&stream);
}

void
sm_trigger(const char *service, const char *bytes)
{
	const char *dirs[] = { QUEUE_PUBLIC, QUEUE_PRIVATE };

	for (size_t i = 0; i < 2; i++) {
		char *path = xasprintf("%s/%s/%s", sm_qdir, dirs[i], service);
		int fd = net_connect_unix(path, 1000);

		free(path);
		if (fd < 0)
			continue;
		(void)write_all(fd, bytes, strlen(bytes));
		close(fd);
		return;
	}
}
