/*
 * fuzz_milter - libFuzzer target over lib/proto/milter.c.
 *
 * The input is a stream of bytes from a milter. It is read into frames
 * once whole and once in pieces of a size taken from the first byte: both
 * runs must give the same frames and the same decode results, a frame is
 * never longer than the reader's limit, every decoded string lies inside
 * its frame, OPTNEG payloads decode without reading past them, and
 * modifications collected under all actions stay within their limits;
 * else abort(). The same bytes also drive a milter_sess through a whole
 * SMTP transaction (OPTNEG, CONNECT ... EOB) whole and in pieces: both
 * runs must end in the same state. Garbage must give an error, never a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/milter.h"

#define FUZZ_FRAME_MAX 4096

static void
inside(const struct buf *f, const char *s)
{
	if (s != NULL && (s < f->data || s >= f->data + f->len))
		abort();
}

/* Returns a digest of frame boundaries and decode results. */
static uint64_t
run(const uint8_t *data, size_t size, size_t step)
{
	struct milter_reader r;
	struct milter_edits e;
	uint64_t h = 1469598103934665603ULL;
	size_t pos = 0;

	milter_reader_init(&r, FUZZ_FRAME_MAX);
	milter_edits_init(&e, 16, 1024);
	while (pos < size) {
		size_t n = step && size - pos > step ? step : size - pos, used;
		const char *err = NULL;
		enum milter_result res = milter_read(&r, data + pos, n, &used, &err);
		if (used > n)
			abort();
		pos += used;
		if (res == MILTER_ERROR) {
			if (err == NULL)
				abort();
			h = (h ^ 0xee) * 1099511628211ULL;
			break;
		}
		if (res == MILTER_NEED_MORE) {
			if (used != n)
				abort();
			continue;
		}
		if (r.frame.len == 0 || r.frame.len > FUZZ_FRAME_MAX)
			abort();
		struct milter_reply rep;
		int rc = milter_reply_decode(r.frame.data, r.frame.len, &rep, &err);
		h = (h ^ (uint64_t)(rc + 2) ^ ((uint64_t)r.frame.len << 8))
		    * 1099511628211ULL;
		if (rc == 0) {
			inside(&r.frame, rep.str);
			inside(&r.frame, rep.value);
			if (rep.data_len > 0)
				inside(&r.frame, rep.data + rep.data_len - 1);
			if (rep.code == MILTER_R_OPTNEG) {
				struct milter_optneg o;
				if (milter_optneg_decode(rep.data, rep.data_len, &o, &err) == 0)
					for (int i = 0; i < MILTER_M_COUNT; i++)
						inside(&r.frame, o.macros[i]);
			}
			if (milter_reply_is_edit(rep.code))
				(void)milter_edits_add(&e, MILTER_A_ALL, &rep, &err);
			(void)milter_reply_allowed(MILTER_P_ALL, MILTER_CMD_EOB, rep.code);
		} else if (err == NULL) {
			abort();
		}
		milter_reader_reset(&r);
	}
	if (e.n > 16 || e.body.len > 1024)
		abort();
	/* Edited headers never contain an empty line (the end of the
	 * header) and end with a line end (unless every field was deleted). */
	static const char hdr[] = "From: a\nSubject: s\n\tx\nReceived: y";
	struct buf out = BUF_INIT(0);
	if (milter_apply_headers(hdr, sizeof(hdr) - 1, &e, size & 1, &out) < 0
	    || (out.len > 0 && out.data[out.len - 1] != '\n')
	    || (out.len > 0 && (strstr(out.data, "\n\n") != NULL || out.data[0] == '\n')))
		abort();
	h ^= out.len;
	buf_free(&out);
	h ^= e.n * 31 + e.body.len;
	milter_edits_free(&e);
	milter_reader_free(&r);
	return h;
}

static uint64_t
run_sess(const uint8_t *data, size_t size, size_t step)
{
	static const int cmds[] = {
		MILTER_CMD_CONNECT, MILTER_CMD_HELO, MILTER_CMD_MAIL, MILTER_CMD_RCPT,
		MILTER_CMD_DATA, MILTER_CMD_HEADER, MILTER_CMD_EOH, MILTER_CMD_BODY,
		MILTER_CMD_EOB,
	};
	struct milter_sess s;
	struct buf out = BUF_INIT(0);
	size_t pos = 0, next = 0;
	uint64_t h = 7;

	/* The first octet also picks the milter_protocol offered, so the
	 * older versions' step masks are exercised too. */
	static const int versions[] = { 6, 2, 3, 4 };
	int version = versions[size > 0 ? data[0] & 3 : 0];

	milter_sess_init(&s, (uint32_t)version, MILTER_A_ALL,
	    milter_protocol_steps(version));
	(void)milter_sess_start(&s, &out);
	while (pos < size) {
		size_t n = step && size - pos > step ? step : size - pos, used;
		const char *err = NULL;
		enum milter_result r = milter_sess_feed(&s, data + pos, n, &used, &err);
		if (used > n)
			abort();
		pos += used;
		if (r == MILTER_ERROR) {
			h = h * 31 + 1;
			break;
		}
		if (r == MILTER_NEED_MORE)
			continue;
		h = h * 31 + (uint64_t)s.verdict;
		/* Next command the milter wants an answer to. */
		while (next < sizeof(cmds) / sizeof(cmds[0])
		    && (!milter_sess_wants(&s, cmds[next])
		    || !milter_sess_sent(&s, cmds[next])))
			next++;
		if (next == sizeof(cmds) / sizeof(cmds[0]))
			break;
		next++;
	}
	if (s.edits.n > MILTER_EDITS_MAX)
		abort();
	h = h * 31 + s.edits.n + s.protocol + s.actions;
	milter_sess_free(&s);
	buf_free(&out);
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t step = size > 0 ? (size_t)data[0] % 7 + 1 : 1;

	if (run(data, size, 0) != run(data, size, step))
		abort();
	if (run_sess(data, size, 0) != run_sess(data, size, step))
		abort();
	return 0;
}
