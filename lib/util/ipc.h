/*
 * ipc - the one codec for every internal request and reply.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of
 * attributes: name\0value\0name\0value\0... Names may repeat (a recipient
 * list is repeated "rcpt" attributes, in order). Decoding fails closed: a
 * frame over the caller's limit, an odd string count or a missing final NUL
 * is an error, never half-parsed.
 */
#ifndef POSTERN_IPC_H
#define POSTERN_IPC_H

#include <stddef.h>
#include "util/buf.h"

#define IPC_MAX_DEFAULT (1024 * 1024)

struct ipc_msg {
	struct buf b;    /* the attribute bytes, without the length prefix */
};

void ipc_init(struct ipc_msg *m);
void ipc_free(struct ipc_msg *m);
void ipc_reset(struct ipc_msg *m);
void ipc_put(struct ipc_msg *m, const char *name, const char *value);
void ipc_put_int(struct ipc_msg *m, const char *name, long long v);

/* First value of name, or NULL. */
const char *ipc_get(const struct ipc_msg *m, const char *name);
/* 0 and *v, or -1 when missing or not a decimal integer. */
int ipc_get_int(const struct ipc_msg *m, const char *name, long long *v);
/* Iterate all pairs: start with *pos = 0; returns 1 per pair, 0 at end. */
int ipc_next(const struct ipc_msg *m, size_t *pos, const char **name, const char **value);

/* Blocking I/O with a timeout (ms, <0 = none): 0, or -1 with errno
 * (ETIMEDOUT, EPIPE/ECONNRESET, EPROTO for a malformed frame, EMSGSIZE). */
int ipc_send(int fd, const struct ipc_msg *m, int timeout_ms);
int ipc_recv(int fd, struct ipc_msg *m, size_t max, int timeout_ms);
/* ipc_recv for a frame the caller knows has begun to arrive (poll said
 * readable): read at once, poll only if it has not. */
int ipc_recv_ready(int fd, struct ipc_msg *m, size_t max, int timeout_ms);

/* The same, passing a descriptor along (SCM_RIGHTS, UNIX sockets only):
 * the frame arrives with it or not at all. The receiver gets it
 * close-on-exec in *fd_r (-1 on failure; a frame without one is EPROTO).
 * pass_fd stays open in the sender. */
int ipc_send_fd(int sock, const struct ipc_msg *m, int pass_fd, int timeout_ms);
int ipc_recv_fd(int sock, struct ipc_msg *m, size_t max, int *fd_r, int timeout_ms);
/* For event-driven readers: is a whole frame at the start of in?
 * 1 and *frame_len (prefix included), 0 need more, -1 too large (errno EMSGSIZE). */
int ipc_frame_check(const struct buf *in, size_t max, size_t *frame_len);
/* The same on bytes not in a struct buf (a conn's input, conn_in()). */
int ipc_frame_len(const void *p, size_t n, size_t max, size_t *frame_len);
/* Decode a whole frame (prefix included) into m. 0, or -1 (EPROTO). */
int ipc_decode(struct ipc_msg *m, const void *frame, size_t len);
/* Append the encoded frame of m to out. */
void ipc_encode(const struct ipc_msg *m, struct buf *out);

#endif
