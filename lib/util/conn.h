/*
 * conn - the one connection object: buffered, non-blocking, optionally TLS
 * I/O on the process's event loop: smtpd, pop3-login/pop3d, imapd,
 * qmgr's delivery-agent links and pickup's submission connections.
 *
 * A conn wraps a connected non-blocking socket the caller keeps owning
 * (conn_free never closes it: servers hand it back to server_disconnect).
 * The owner gets one callback with event bits:
 *   CONN_EV_INPUT    new bytes are in the input buffer
 *   CONN_EV_DRAINED  the output buffer has been fully written
 *   CONN_EV_TLS_UP   the TLS handshake finished (conn_tls() describes it)
 *   CONN_EV_EOF      the peer closed its side; input left is still readable
 *   CONN_EV_ERROR    a read, write or TLS failure (conn_error() says which)
 *   CONN_EV_TIMEOUT  no byte came or went for the idle timeout
 * After EOF, ERROR or TIMEOUT no more events come; the owner frees the
 * conn. The callback may call conn_free() (even from inside itself): the
 * object is then released when the conn's own handler returns.
 *
 * Input: conn_in() exposes the buffered bytes to pure parsers (lib/proto),
 * which consume with conn_in_consume(); conn_read_line() and conn_read_n() serve
 * simple line protocols. Reading stops while the buffer is full (in_max)
 * or the owner paused it, so a slow parser holds back the client (TCP
 * back-pressure) instead of growing memory.
 * Output: conn_write()/conn_printf() only buffer; conn_flush() writes what
 * it can now and leaves the rest to the loop, so a pipelined group of
 * replies leaves in one write (RFC 2920 / RFC 2449 PIPELINING).
 * STARTTLS: conn_starttls() discards every byte of input already buffered
 * (DESIGN.md invariant 6: commands pipelined before STARTTLS) and starts
 * the handshake once the output buffer (the "go ahead" reply) has drained.
 * Implicit TLS: conn_starttls() right after conn_new().
 *
 * Memory: an idle connection (its input consumed, its output written, its
 * owner's callback returned, reading on) holds no buffer: a read lands on
 * the stack unless a buffer with room is already there, the input buffer
 * is released at the end of the event that consumed it, the output
 * buffer once it is written. So it costs the struct plus, with TLS,
 * OpenSSL's session. The error text is allocated at the first error.
 * Not thread-safe (one loop per process).
 */
#ifndef POSTERN_CONN_H
#define POSTERN_CONN_H

#include <stddef.h>
#include <sys/types.h>

#include "util/buf.h"
#include "util/compat.h"
#include "util/loop.h"

struct conn;
struct tls_ctx;
struct tls_conn;

enum {
	CONN_EV_INPUT = 1,
	CONN_EV_DRAINED = 2,
	CONN_EV_TLS_UP = 4,
	CONN_EV_EOF = 8,
	CONN_EV_ERROR = 16,
	CONN_EV_TIMEOUT = 32,
};

typedef void (*conn_cb)(struct conn *c, unsigned events, void *ctx);

/* fd must be non-blocking. in_max bounds the input buffer (0: 64 KiB).
 * Reading starts at once. */
struct conn *conn_new(struct loop *l, int fd, size_t in_max, conn_cb cb, void *ctx);
/* Unregister from the loop, free TLS (close_notify, best effort) and the
 * buffers; the fd stays open. NULLs *c. Safe inside the callback. */
void conn_free(struct conn **c);

int conn_fd(const struct conn *c);
/* Hand the conn to another owner (a session becoming a proxy). */
void conn_set_cb(struct conn *c, conn_cb cb, void *ctx);
/* Idle timeout in ms (0: none), re-armed by every byte read or written. */
void conn_set_timeout(struct conn *c, uint64_t ms);
/* Stop (0) or resume (1) reading from the socket. Buffered input stays. */
void conn_set_read(struct conn *c, int on);
/* Hold (0) or release (1) the output: while held, nothing is written and
 * conn_flush() returns 0 (smtpd's error sleep delays its replies, and with
 * them the client). */
void conn_set_write(struct conn *c, int on);

/* --- Input ---------------------------------------------------------------- */
/* The unread input: *len_r bytes at the pointer returned (borrowed until
 * the next conn call that reads or consumes). Parse, then consume. */
const char *conn_in(const struct conn *c, size_t *len_r);
void conn_in_consume(struct conn *c, size_t n);
/* One line ending in LF, CRs before the LF dropped. 1: *line_r (borrowed
 * until the next input call) of *len_r bytes, the line is consumed. 0: no
 * whole line yet. -1: a line longer than max: it is consumed up to its LF
 * (or as far as it is buffered, the rest dropped as it arrives) and
 * reported once. */
int conn_read_line(struct conn *c, size_t max, const char **line_r, size_t *len_r);
/* After conn_read_line() returned 1: did that line end in a bare LF (no CR
 * before it)? SMTP refuses those (smtpd_forbid_bare_newline). */
int conn_line_bare_lf(const struct conn *c);
/* Put bytes at the front of the input as if read from the socket: what a
 * previous holder of the connection (a login process handing it over)
 * had already read. An INPUT event follows from the loop. -1 if over
 * in_max. */
int conn_in_inject(struct conn *c, const void *p, size_t n);
/* Exactly n bytes (n <= in_max): 1 and *p_r (borrowed, consumed), or 0. */
int conn_read_n(struct conn *c, size_t n, const char **p_r);

/* --- Output --------------------------------------------------------------- */
void conn_write(struct conn *c, const void *p, size_t n);
void conn_printf(struct conn *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Bytes waiting to be written. */
size_t conn_out_len(const struct conn *c);
/* Write what the socket takes now; the rest goes when it is writable.
 * 1: all is out. 0: some is left, CONN_EV_DRAINED comes when it is out.
 * -1: a write error (an ERROR event follows). Calling it from outside a
 * conn callback is fine: events it causes are delivered from the loop. */
int conn_flush(struct conn *c);
/* Last words before conn_free(): one non-blocking try at writing the
 * output, also after a TIMEOUT or EOF event (SMTP's "421 timeout", IMAP's
 * "* BYE Autologout"). Reports nothing. 1 all out, 0 some left, -1 not
 * written (an error, or a TLS handshake in progress). */
int conn_flush_last(struct conn *c);

/* --- TLS ------------------------------------------------------------------ */
/* Discard buffered input (returns how many bytes) and start the server
 * side of a handshake once the output has drained. -1 if TLS is already
 * on or the session cannot be created. */
ssize_t conn_starttls(struct conn *c, struct tls_ctx *ctx);
/* NULL until TLS_UP. */
struct tls_conn *conn_tls(const struct conn *c);
int conn_tls_active(const struct conn *c);   /* started (maybe not up yet) */

/* --- COMPRESS=DEFLATE (RFC 4978) ------------------------------------------ */
/* From now on raw deflate both ways (inside TLS, if any). What is queued
 * for output (the OK to the command) still goes out uncompressed; input
 * already buffered is taken as compressed. -1 if already on or a TLS
 * handshake is pending. Costs about 300 KiB of zlib state. */
int conn_compress(struct conn *c);
int conn_compressed(const struct conn *c);

/* Static text of the last error ("read: Connection reset by peer",
 * "TLS handshake: ...") */
const char *conn_error(const struct conn *c);

#endif
