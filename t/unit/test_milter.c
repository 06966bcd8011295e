/*
 * test_milter - lib/proto/milter.c: command frames byte for byte, reply
 * frames decoded whole and trickled one byte at a time, malformed replies
 * refused, frame limits, OPTNEG macro lists, protocol step flags and the
 * bounded modification list.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/milter.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define BYTES(s) s, sizeof(s) - 1

static void
want_bytes(const struct buf *b, const char *want, size_t len)
{
	ck_assert_msg(b->len == len, "got %zu bytes, want %zu", b->len, len);
	ck_assert_msg(memcmp(b->data, want, len) == 0, "bytes differ");
}

START_TEST(test_encode)
{
	struct buf b = BUF_INIT(0);

	ck_assert_int_eq(milter_enc_optneg(&b, 6, MILTER_A_ALL, 0x1fffff), 0);
	want_bytes(&b, BYTES("\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\0\x1f\xff\xff"));
	buf_reset(&b);
	ck_assert_int_eq(milter_enc_connect(&b, "mx.example", '4', 2525, "192.0.2.1"), 0);
	want_bytes(&b, BYTES("\0\0\0\x19" "Cmx.example\0" "4\x09\xdd" "192.0.2.1\0"));
	buf_reset(&b);
	ck_assert_int_eq(milter_enc_connect(&b, "localhost", 'U', 0, NULL), 0);
	want_bytes(&b, BYTES("\0\0\0\x0c" "Clocalhost\0U"));
	buf_reset(&b);
	const char *mail[] = { "<a@x.test>", "SIZE=10", "BODY=8BITMIME" };
	ck_assert_int_eq(milter_enc_mail(&b, mail, 3), 0);
	want_bytes(&b, BYTES("\0\0\0\x22" "M<a@x.test>\0SIZE=10\0BODY=8BITMIME\0"));
	buf_reset(&b);
	const char *rcpt[] = { "<b@y.test>" };
	ck_assert_int_eq(milter_enc_rcpt(&b, rcpt, 1), 0);
	want_bytes(&b, BYTES("\0\0\0\x0c" "R<b@y.test>\0"));
	buf_reset(&b);
	ck_assert_int_eq(milter_enc_helo(&b, "h"), 0);
	ck_assert_int_eq(milter_enc_header(&b, "Subject", " hi"), 0);
	ck_assert_int_eq(milter_enc_simple(&b, MILTER_CMD_EOH), 0);
	want_bytes(&b, BYTES("\0\0\0\x03Hh\0" "\0\0\0\x0d" "LSubject\0 hi\0"
	    "\0\0\0\x01N"));
	buf_reset(&b);
	const char *names[] = { "i", "{auth_type}", "{mail_addr}" };
	const char *vals[] = { "ABC123", NULL, "a@x.test" };
	ck_assert_int_eq(milter_enc_macro(&b, MILTER_CMD_MAIL, names, vals, 3), 0);
	want_bytes(&b, BYTES("\0\0\0\x20" "DMi\0ABC123\0{mail_addr}\0a@x.test\0"));
	buf_reset(&b);
	ck_assert_int_eq(milter_enc_simple(&b, MILTER_CMD_HELO), -1);
	ck_assert_int_eq(milter_enc_connect(&b, "h", 'x', 0, "a"), -1);
	ck_assert_int_eq(b.len, 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_body_chunks)
{
	struct buf b = BUF_INIT(0);
	size_t len = MILTER_CHUNK_MAX * 2 + 7;
	char *body = malloc(len);

	memset(body, 'x', len);
	ck_assert_int_eq(milter_enc_body(&b, body, len), 0);
	ck_assert_uint_eq(b.len, len + 3 * 5);
	/* First chunk is exactly MILTER_CHUNK_MAX, last is 7. */
	ck_assert(memcmp(b.data, "\0\x01\0\0B", 5) == 0);
	ck_assert(memcmp(b.data + 2 * (MILTER_CHUNK_MAX + 5), "\0\0\0\x08" "B", 5) == 0);
	buf_reset(&b);
	ck_assert_int_eq(milter_enc_body(&b, body, 0), 0);
	ck_assert_uint_eq(b.len, 0);
	/* A bounded buffer refuses and keeps what it had. */
	struct buf small = BUF_INIT(100);
	ck_assert_int_eq(milter_enc_simple(&small, MILTER_CMD_EOB), 0);
	ck_assert_int_eq(milter_enc_body(&small, body, 200), -1);
	ck_assert_uint_eq(small.len, 5);
	buf_free(&small);
	buf_free(&b);
	free(body);
}
END_TEST

static const struct {
	const char *frame;       /* without the length header */
	size_t len;
	int ok;
	int code;
	uint32_t index;
	const char *str, *value;
} reply_cases[] = {
	{ BYTES("a"), 1, 'a', 0, NULL, NULL },
	{ BYTES("c"), 1, 'c', 0, NULL, NULL },
	{ BYTES("d"), 1, 'd', 0, NULL, NULL },
	{ BYTES("r"), 1, 'r', 0, NULL, NULL },
	{ BYTES("t"), 1, 't', 0, NULL, NULL },
	{ BYTES("p"), 1, 'p', 0, NULL, NULL },
	{ BYTES("s"), 1, 's', 0, NULL, NULL },
	{ BYTES("cx"), 0, 0, 0, NULL, NULL },
	{ BYTES("y550 5.7.1 go away\0"), 1, 'y', 0, "550 5.7.1 go away", NULL },
	{ BYTES("y450-4.7.1 one\r\n450 4.7.1 two\0"), 1, 'y', 0,
	  "450-4.7.1 one\r\n450 4.7.1 two", NULL },
	{ BYTES("y450-4.7.1 one\r\n550 5.7.1 two\0"), 0, 0, 0, NULL, NULL },
	{ BYTES("y450 one\r\n450 two\0"), 0, 0, 0, NULL, NULL },
	{ BYTES("y250 ok\0"), 0, 0, 0, NULL, NULL },
	{ BYTES("y550 no NUL"), 0, 0, 0, NULL, NULL },
	{ BYTES("y550 x\0junk"), 0, 0, 0, NULL, NULL },
	{ BYTES("hX-Spam\0yes\0"), 1, 'h', 0, "X-Spam", "yes" },
	{ BYTES("hX Spam\0yes\0"), 0, 0, 0, NULL, NULL },
	{ BYTES("h\0yes\0"), 0, 0, 0, NULL, NULL },
	{ BYTES("hX-Spam\0yes"), 0, 0, 0, NULL, NULL },
	{ BYTES("m\0\0\0\x02Subject\0\0"), 1, 'm', 2, "Subject", "" },
	{ BYTES("i\0\0\0\0DKIM-Signature\0v=1\0"), 1, 'i', 0, "DKIM-Signature", "v=1" },
	{ BYTES("i\0\0\0"), 0, 0, 0, NULL, NULL },
	{ BYTES("+<c@z.test>\0"), 1, '+', 0, "<c@z.test>", NULL },
	{ BYTES("-<c@z.test>\0"), 1, '-', 0, "<c@z.test>", NULL },
	{ BYTES("2<c@z.test>\0NOTIFY=NEVER\0"), 1, '2', 0, "<c@z.test>", "NOTIFY=NEVER" },
	{ BYTES("2<c@z.test>\0"), 1, '2', 0, "<c@z.test>", NULL },
	{ BYTES("e<new@x.test>\0"), 1, 'e', 0, "<new@x.test>", NULL },
	{ BYTES("e<new@x.test>\0SIZE=1\0x"), 0, 0, 0, NULL, NULL },
	{ BYTES("qspam\0"), 1, 'q', 0, "spam", NULL },
	{ BYTES("bnew body\r\n"), 1, 'b', 0, NULL, NULL },
	{ BYTES("Z"), 0, 0, 0, NULL, NULL },
};

/* Frame the case, feed it whole or one byte at a time, decode. */
static void
check_reply(int i, size_t step)
{
	struct buf wire = BUF_INIT(0);
	struct milter_reader r;
	struct milter_reply rep;
	const char *err = NULL;
	enum milter_result res = MILTER_NEED_MORE;
	size_t pos = 0;

	ck_assert_int_eq(milter_enc_frame(&wire, reply_cases[i].frame[0],
	    reply_cases[i].frame + 1, reply_cases[i].len - 1), 0);
	milter_reader_init(&r, 0);
	while (pos < wire.len) {
		size_t used, n = step && wire.len - pos > step ? step : wire.len - pos;
		res = milter_read(&r, wire.data + pos, n, &used, &err);
		ck_assert_uint_le(used, n);
		pos += used;
		if (res != MILTER_NEED_MORE)
			break;
		ck_assert_uint_eq(used, n);
	}
	ck_assert_int_eq(res, MILTER_DONE);
	ck_assert_uint_eq(pos, wire.len);
	int rc = milter_reply_decode(r.frame.data, r.frame.len, &rep, &err);
	ck_assert_msg((rc == 0) == reply_cases[i].ok, "case %d: rc %d (%s)", i, rc,
	    rc ? err : "");
	if (rc == 0) {
		ck_assert_int_eq(rep.code, reply_cases[i].code);
		ck_assert_uint_eq(rep.index, reply_cases[i].index);
		if (reply_cases[i].str)
			ck_assert_str_eq(rep.str, reply_cases[i].str);
		if (reply_cases[i].value)
			ck_assert_str_eq(rep.value, reply_cases[i].value);
		else if (rep.code != 'm' && rep.code != 'i' && rep.code != 'h')
			ck_assert_ptr_null(rep.value);
	}
	milter_reader_free(&r);
	buf_free(&wire);
}

START_TEST(test_reply_whole)
{
	check_reply(_i, 0);
}
END_TEST

START_TEST(test_reply_trickled)
{
	check_reply(_i, 1);
}
END_TEST

START_TEST(test_reader_limits)
{
	struct milter_reader r;
	const char *err = NULL;
	size_t used;

	milter_reader_init(&r, 16);
	ck_assert_int_eq(milter_read(&r, "\0\0\0\0", 4, &used, &err), MILTER_ERROR);
	milter_reader_reset(&r);
	ck_assert_int_eq(milter_read(&r, "\0\0\0\x11", 4, &used, &err), MILTER_ERROR);
	ck_assert_str_eq(err, "milter frame too long");
	ck_assert_uint_eq(r.frame.len, 0);
	milter_reader_reset(&r);
	/* Two frames in one read: the first stops at its end. */
	ck_assert_int_eq(milter_read(&r, "\0\0\0\x01" "c\0\0\0\x01" "a", 10, &used, &err),
	    MILTER_DONE);
	ck_assert_uint_eq(used, 5);
	ck_assert_int_eq(r.frame.data[0], 'c');
	milter_reader_reset(&r);
	ck_assert_int_eq(milter_read(&r, "\0\0\0\x01" "a", 5, &used, &err), MILTER_DONE);
	ck_assert_int_eq(r.frame.data[0], 'a');
	milter_reader_free(&r);
}
END_TEST

START_TEST(test_optneg)
{
	struct milter_optneg o;
	const char *err;

	ck_assert_int_eq(milter_optneg_decode(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\x10"),
	    &o, &err), 0);
	ck_assert_uint_eq(o.version, 6);
	ck_assert_uint_eq(o.actions, MILTER_A_ADDHDRS);
	ck_assert_uint_eq(o.protocol, MILTER_P_NOBODY);
	ck_assert_ptr_null(o.macros[MILTER_M_CONNECT]);
	ck_assert_int_eq(milter_optneg_decode(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\x10"
	    "\0\0\0\x02{mail_addr} i\0" "\0\0\0\x05i\0"), &o, &err), 0);
	ck_assert_str_eq(o.macros[MILTER_M_ENVFROM], "{mail_addr} i");
	ck_assert_str_eq(o.macros[MILTER_M_EOM], "i");
	ck_assert_int_eq(milter_optneg_decode(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0"),
	    &o, &err), -1);
	ck_assert_int_eq(milter_optneg_decode(BYTES("\0\0\0\x07\0\0\0\x01\0\0\0\0"),
	    &o, &err), -1);
	ck_assert_int_eq(milter_optneg_decode(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0"
	    "\0\0\0\x09x\0"), &o, &err), -1);
	ck_assert_int_eq(milter_optneg_decode(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0"
	    "\0\0\0\x01x"), &o, &err), -1);
	ck_assert_int_eq(milter_optneg_decode(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0"
	    "\0\0\0\x01x\0\0\0\0\x01y\0"), &o, &err), -1);
}
END_TEST

START_TEST(test_steps)
{
	ck_assert(milter_cmd_sent(0, MILTER_CMD_HELO));
	ck_assert(!milter_cmd_sent(MILTER_P_NOHELO, MILTER_CMD_HELO));
	ck_assert(!milter_cmd_sent(MILTER_P_NOBODY, MILTER_CMD_BODY));
	ck_assert(milter_cmd_sent(MILTER_P_NOBODY, MILTER_CMD_EOB));
	ck_assert(milter_cmd_replies(0, MILTER_CMD_HEADER));
	ck_assert(!milter_cmd_replies(MILTER_P_NR_HDR, MILTER_CMD_HEADER));
	ck_assert(!milter_cmd_replies(0, MILTER_CMD_MACRO));
	ck_assert(!milter_cmd_replies(0, MILTER_CMD_QUIT));
	ck_assert(milter_cmd_replies(MILTER_P_ALL, MILTER_CMD_EOB));
	ck_assert(milter_reply_allowed(0, MILTER_CMD_EOB, MILTER_R_ADDHEADER));
	ck_assert(!milter_reply_allowed(0, MILTER_CMD_RCPT, MILTER_R_ADDHEADER));
	ck_assert(!milter_reply_allowed(0, MILTER_CMD_BODY, MILTER_R_SKIP));
	ck_assert(milter_reply_allowed(MILTER_P_SKIP, MILTER_CMD_BODY, MILTER_R_SKIP));
	ck_assert(milter_reply_allowed(0, MILTER_CMD_RCPT, MILTER_R_REPLYCODE));
	ck_assert(!milter_reply_allowed(0, MILTER_CMD_OPTNEG, MILTER_R_ACCEPT));
	ck_assert(milter_reply_allowed(0, MILTER_CMD_OPTNEG, MILTER_R_OPTNEG));
	ck_assert(!milter_reply_allowed(0, MILTER_CMD_RCPT, MILTER_R_PROGRESS));
	ck_assert(milter_reply_allowed(0, MILTER_CMD_EOB, MILTER_R_PROGRESS));
}
END_TEST

START_TEST(test_edits)
{
	struct milter_edits e;
	struct milter_reply rep;
	const char *err;

	milter_edits_init(&e, 2, 8);
	ck_assert_int_eq(milter_reply_decode(BYTES("hX-A\0b\0"), &rep, &err), 0);
	ck_assert_int_eq(milter_edits_add(&e, MILTER_A_CHGHDRS, &rep, &err), -1);
	ck_assert_str_eq(err, "milter modification not negotiated");
	ck_assert_int_eq(milter_edits_add(&e, MILTER_A_ADDHDRS, &rep, &err), 0);
	ck_assert_int_eq(milter_reply_decode(BYTES("-<x@y>\0"), &rep, &err), 0);
	ck_assert_int_eq(milter_edits_add(&e, MILTER_A_ALL, &rep, &err), 0);
	ck_assert_int_eq(milter_edits_add(&e, MILTER_A_ALL, &rep, &err), -1);
	ck_assert_str_eq(err, "too many milter modifications");
	ck_assert_int_eq(milter_reply_decode(BYTES("b12345"), &rep, &err), 0);
	ck_assert_int_eq(milter_edits_add(&e, MILTER_A_ALL, &rep, &err), 0);
	ck_assert_int_eq(milter_edits_add(&e, MILTER_A_ALL, &rep, &err), -1);
	ck_assert(e.body_replaced);
	ck_assert_uint_eq(e.body.len, 5);
	ck_assert_str_eq(e.v[0].str, "X-A");
	ck_assert_str_eq(e.v[0].value, "b");
	ck_assert_int_eq(e.v[1].code, MILTER_R_DELRCPT);
	ck_assert_int_eq(milter_reply_decode(BYTES("a"), &rep, &err), 0);
	ck_assert_int_eq(milter_edits_add(&e, MILTER_A_ALL, &rep, &err), -1);
	milter_edits_free(&e);
	ck_assert_uint_eq(e.n, 0);
}
END_TEST


/* Feed a milter's bytes whole or one at a time until DONE. */
static enum milter_result
sess_feed_all(struct milter_sess *s, const char *p, size_t n, size_t step,
    size_t *used_r, const char **err)
{
	enum milter_result r = MILTER_NEED_MORE;
	size_t pos = 0, used;

	while (pos < n) {
		size_t k = step && n - pos > step ? step : n - pos;
		r = milter_sess_feed(s, p + pos, k, &used, err);
		pos += used;
		if (r != MILTER_NEED_MORE)
			break;
	}
	*used_r = pos;
	return r;
}

START_TEST(test_session)
{
	size_t step = (size_t)_i;
	struct milter_sess s;
	struct buf out = BUF_INIT(0), w = BUF_INIT(0);
	const char *err = NULL;
	size_t used;

	milter_sess_init(&s, MILTER_VERSION, MILTER_A_ALL, MILTER_P_ALL);
	ck_assert_int_eq(milter_sess_start(&s, &out), 0);
	want_bytes(&out, BYTES("\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\x30\x1f\xff\xff"));
	/* OpenDKIM-like answer: add headers, no reply to HEADER, a macro
	 * list for end of message. */
	ck_assert_int_eq(milter_enc_frame(&w, 'O', BYTES("\0\0\0\x06\0\0\0\x01"
	    "\0\0\0\x80" "\0\0\0\x05{daemon_name}\0")), 0);
	ck_assert_int_eq(sess_feed_all(&s, w.data, w.len, step, &used, &err),
	    MILTER_DONE);
	ck_assert_uint_eq(used, w.len);
	ck_assert_uint_eq(s.actions, MILTER_A_ADDHDRS);
	ck_assert_str_eq(s.macros[MILTER_M_EOM], "{daemon_name}");
	ck_assert(milter_sess_wants(&s, MILTER_CMD_HEADER));
	ck_assert_int_eq(milter_sess_sent(&s, MILTER_CMD_HEADER), 0);
	ck_assert_int_eq(milter_sess_sent(&s, MILTER_CMD_MAIL), 1);
	/* A reply and the start of the next one: DONE stops at the first. */
	buf_reset(&w);
	milter_enc_frame(&w, 'c', NULL, 0);
	milter_enc_frame(&w, 'y', BYTES("451 4.7.1 later\0"));
	ck_assert_int_eq(sess_feed_all(&s, w.data, w.len, step, &used, &err),
	    MILTER_DONE);
	ck_assert_uint_eq(used, 5);
	ck_assert_int_eq(s.verdict, MILTER_R_CONTINUE);
	ck_assert_int_eq(milter_sess_sent(&s, MILTER_CMD_RCPT), 1);
	ck_assert_int_eq(sess_feed_all(&s, w.data + 5, w.len - 5, step, &used, &err),
	    MILTER_DONE);
	ck_assert_int_eq(s.verdict, MILTER_R_REPLYCODE);
	ck_assert_str_eq(s.reply, "451 4.7.1 later");
	/* End of message: progress, an edit, then the verdict. */
	ck_assert_int_eq(milter_sess_sent(&s, MILTER_CMD_EOB), 1);
	buf_reset(&w);
	milter_enc_frame(&w, 'p', NULL, 0);
	milter_enc_frame(&w, 'i', BYTES("\0\0\0\0DKIM-Signature\0v=1; a=rsa-sha256\0"));
	milter_enc_frame(&w, 'a', NULL, 0);
	ck_assert_int_eq(sess_feed_all(&s, w.data, w.len, step, &used, &err),
	    MILTER_DONE);
	ck_assert_uint_eq(used, w.len);
	ck_assert_int_eq(s.verdict, MILTER_R_ACCEPT);
	ck_assert_uint_eq(s.edits.n, 1);
	ck_assert_str_eq(s.edits.v[0].str, "DKIM-Signature");
	ck_assert(!milter_sess_wants(&s, MILTER_CMD_BODY));
	ck_assert(milter_sess_wants(&s, MILTER_CMD_QUIT));
	/* Unasked-for bytes, and an edit the milter did not negotiate. */
	ck_assert_int_eq(milter_sess_feed(&s, "x", 1, &used, &err), MILTER_ERROR);
	ck_assert_int_eq(milter_sess_sent(&s, MILTER_CMD_EOB), 1);
	buf_reset(&w);
	milter_enc_frame(&w, '-', BYTES("<x@y>\0"));
	ck_assert_int_eq(sess_feed_all(&s, w.data, w.len, step, &used, &err),
	    MILTER_ERROR);
	ck_assert_str_eq(err, "milter modification not negotiated");
	milter_sess_free(&s);

	/* A milter asking for more than offered is refused. */
	milter_sess_init(&s, MILTER_VERSION, MILTER_A_ADDHDRS, 0);
	buf_reset(&out);
	milter_sess_start(&s, &out);
	buf_reset(&w);
	milter_enc_frame(&w, 'O', BYTES("\0\0\0\x06\0\0\0\x03\0\0\0\0"));
	ck_assert_int_eq(sess_feed_all(&s, w.data, w.len, step, &used, &err),
	    MILTER_ERROR);
	milter_sess_free(&s);
	/* SKIP only after BODY, and only when negotiated. */
	milter_sess_init(&s, MILTER_VERSION, MILTER_A_ALL, MILTER_P_ALL);
	milter_sess_start(&s, &out);
	buf_reset(&w);
	milter_enc_frame(&w, 'O', BYTES("\0\0\0\x06\0\0\0\0\0\0\x04\0"));
	milter_enc_frame(&w, 's', NULL, 0);
	ck_assert_int_eq(sess_feed_all(&s, w.data, w.len, step, &used, &err),
	    MILTER_DONE);
	ck_assert_int_eq(milter_sess_sent(&s, MILTER_CMD_BODY), 1);
	ck_assert_int_eq(sess_feed_all(&s, w.data + used, w.len - used, step, &used,
	    &err), MILTER_DONE);
	ck_assert(s.skip_body);
	ck_assert(!milter_sess_wants(&s, MILTER_CMD_BODY));
	ck_assert(milter_sess_wants(&s, MILTER_CMD_EOB));
	ck_assert_int_eq(milter_sess_sent(&s, MILTER_CMD_RCPT), 1);
	ck_assert_int_eq(sess_feed_all(&s, w.data + w.len - 5, 5, step, &used, &err),
	    MILTER_ERROR);
	milter_sess_free(&s);
	buf_free(&out);
	buf_free(&w);
}
END_TEST

START_TEST(test_protocol_parse)
{
	int v = 0;
	uint32_t steps = 0;
	const char *err = NULL;

	ck_assert_int_eq(milter_protocol_parse("6", &v, &steps, &err), 0);
	ck_assert_int_eq(v, 6);
	ck_assert_uint_eq(steps, MILTER_P_ALL);
	ck_assert_int_eq(milter_protocol_parse("2", &v, &steps, &err), 0);
	ck_assert_int_eq(v, 2);
	ck_assert_uint_eq(steps, 0x7f);
	ck_assert_int_eq(milter_protocol_parse(" 3 ", &v, &steps, &err), 0);
	ck_assert_uint_eq(steps, 0x7f | MILTER_P_NOUNKNOWN);
	ck_assert_int_eq(milter_protocol_parse("4,no_header_reply", &v, &steps,
	    &err), 0);
	ck_assert_int_eq(v, 4);
	ck_assert_uint_eq(steps, 0x7f | MILTER_P_NOUNKNOWN | MILTER_P_NODATA
	    | MILTER_P_NR_HDR);
	ck_assert_int_eq(milter_protocol_parse("no_header_reply 2", &v, &steps,
	    &err), 0);
	ck_assert_int_eq(v, 2);
	ck_assert_uint_eq(steps, 0x7f | MILTER_P_NR_HDR);
	/* Postfix knows no version 5 (nor 1 or 7). */
	static const char *const bad[] = { "", "5", "1", "7", "66", "6 4",
	    "no_header_reply", "6 foo", "six" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		ck_assert_msg(milter_protocol_parse(bad[i], &v, &steps, &err) < 0,
		    "%s", bad[i]);
		ck_assert_ptr_nonnull(err);
	}
	ck_assert_uint_eq(milter_protocol_steps(5), 0);
}
END_TEST

/* milter_protocol = 2: OPTNEG says 2 and offers the version 2 steps; the
 * steps version 2 lacks (DATA, UNKNOWN) are never sent; a milter that
 * answers with a higher version is refused. */
START_TEST(test_session_v2)
{
	struct milter_sess s;
	struct buf out = BUF_INIT(0), w = BUF_INIT(0);
	const char *err = NULL;
	size_t used;

	milter_sess_init(&s, 2, MILTER_A_ALL, milter_protocol_steps(2));
	ck_assert_int_eq(milter_sess_start(&s, &out), 0);
	want_bytes(&out, BYTES("\0\0\0\x0dO\0\0\0\x02\0\0\x01\xff\0\0\0\x7f"));
	milter_enc_frame(&w, 'O', BYTES("\0\0\0\x02\0\0\0\x01\0\0\0\0"));
	ck_assert_int_eq(milter_sess_feed(&s, w.data, w.len, &used, &err),
	    MILTER_DONE);
	ck_assert_uint_eq(s.version, 2);
	ck_assert(milter_sess_wants(&s, MILTER_CMD_CONNECT));
	ck_assert(milter_sess_wants(&s, MILTER_CMD_EOH));
	ck_assert(!milter_sess_wants(&s, MILTER_CMD_DATA));
	ck_assert(!milter_sess_wants(&s, MILTER_CMD_UNKNOWN));
	milter_sess_free(&s);

	/* Version 4 has DATA but not the no-reply flags. */
	milter_sess_init(&s, 4, MILTER_A_ALL, milter_protocol_steps(4));
	buf_reset(&out);
	milter_sess_start(&s, &out);
	buf_reset(&w);
	milter_enc_frame(&w, 'O', BYTES("\0\0\0\x04\0\0\0\x01\0\0\0\0"));
	ck_assert_int_eq(milter_sess_feed(&s, w.data, w.len, &used, &err),
	    MILTER_DONE);
	ck_assert(milter_sess_wants(&s, MILTER_CMD_DATA));
	ck_assert(milter_sess_wants(&s, MILTER_CMD_UNKNOWN));
	milter_sess_free(&s);

	/* A version 6 answer to a version 2 offer. */
	milter_sess_init(&s, 2, MILTER_A_ALL, milter_protocol_steps(2));
	buf_reset(&out);
	milter_sess_start(&s, &out);
	buf_reset(&w);
	milter_enc_frame(&w, 'O', BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0"));
	ck_assert_int_eq(milter_sess_feed(&s, w.data, w.len, &used, &err),
	    MILTER_ERROR);
	milter_sess_free(&s);
	/* A step flag version 2 does not offer (NR_CONN). */
	milter_sess_init(&s, 2, MILTER_A_ALL, milter_protocol_steps(2));
	buf_reset(&out);
	milter_sess_start(&s, &out);
	buf_reset(&w);
	milter_enc_frame(&w, 'O', BYTES("\0\0\0\x02\0\0\0\x01\0\0\x10\0"));
	ck_assert_int_eq(milter_sess_feed(&s, w.data, w.len, &used, &err),
	    MILTER_ERROR);
	milter_sess_free(&s);
	buf_free(&out);
	buf_free(&w);
}
END_TEST

static const struct {
	const char *edits;       /* frames' payloads: code, [index,] name, value */
	int leadspc;
	const char *want;
} hdr_cases[] = {
	{ "h|X-A|1", 0, "From: a\nSubject: s\n received: x\n\tmore\nReceived: y\nX-A: 1\n" },
	{ "i0|X-A|1", 0, "X-A: 1\nFrom: a\nSubject: s\n received: x\n\tmore\nReceived: y\n" },
	{ "i2|X-A| 1", 1, "From: a\nSubject: s\n received: x\n\tmore\nX-A: 1\nReceived: y\n" },
	{ "i99|X-A|1", 0, "From: a\nSubject: s\n received: x\n\tmore\nReceived: y\nX-A: 1\n" },
	/* The continuation lines are part of Subject and go with it. */
	{ "m1|subject|new", 0, "From: a\nsubject: new\nReceived: y\n" },
	{ "m1|Received|", 0, "From: a\nSubject: s\n received: x\n\tmore\n" },
	/* No second Received (" received" continues Subject): appended. */
	{ "m2|Received|z", 0, "From: a\nSubject: s\n received: x\n\tmore\nReceived: y\nReceived: z\n" },
	{ "m1|Received|\nm1|Received|", 0, "From: a\nSubject: s\n received: x\n\tmore\n" },
	{ "m3|To|b", 0, "From: a\nSubject: s\n received: x\n\tmore\nReceived: y\nTo: b\n" },
	{ "m1|From|\ni0|X|1", 0, "X: 1\nSubject: s\n received: x\n\tmore\nReceived: y\n" },
	{ "h|X-B|l1\r\nl2\n", 0, "From: a\nSubject: s\n received: x\n\tmore\nReceived: y\nX-B: l1\n\tl2\n" },
};

/* "h|name|value", "iN|name|value", "mN|name|value", one per line. */
static void
load_edits(struct milter_edits *e, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	const char *err;

	for (char *line = strtok_r(copy, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		struct milter_reply rep = { 0 };
		char *bar = strchr(line, '|'), *bar2 = strchr(bar + 1, '|');
		*bar = *bar2 = '\0';
		rep.code = line[0];
		rep.index = (uint32_t)atoi(line + 1);
		rep.str = bar + 1;
		rep.value = bar2 + 1;
		ck_assert_int_eq(milter_edits_add(e, MILTER_A_ALL, &rep, &err), 0);
	}
	free(copy);
}

START_TEST(test_apply_headers)
{
	static const char hdr[] = "From: a\nSubject: s\n received: x\n\tmore\nReceived: y";
	struct milter_edits e;
	struct buf out = BUF_INIT(0);
	char *spec = strdup(hdr_cases[_i].edits);

	/* Values with line breaks cannot go through strtok: patch in. */
	milter_edits_init(&e, 0, 0);
	if (strstr(spec, "l1") != NULL) {
		struct milter_reply rep = { .code = 'h', .str = "X-B", .value = "l1\r\nl2\n" };
		const char *err;
		milter_edits_add(&e, MILTER_A_ALL, &rep, &err);
	} else {
		load_edits(&e, spec);
	}
	ck_assert_int_eq(milter_apply_headers(hdr, sizeof(hdr) - 1, &e,
	    hdr_cases[_i].leadspc, &out), 0);
	ck_assert_str_eq(buf_cstr(&out), hdr_cases[_i].want);
	milter_edits_free(&e);
	buf_free(&out);
	free(spec);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("milter");
	TCase *tc = tcase_create("milter");

	tcase_add_test(tc, test_encode);
	tcase_add_test(tc, test_body_chunks);
	tcase_add_loop_test(tc, test_reply_whole, 0, N(reply_cases));
	tcase_add_loop_test(tc, test_reply_trickled, 0, N(reply_cases));
	tcase_add_test(tc, test_reader_limits);
	tcase_add_test(tc, test_optneg);
	tcase_add_test(tc, test_protocol_parse);
	tcase_add_test(tc, test_session_v2);
	tcase_add_test(tc, test_steps);
	tcase_add_test(tc, test_edits);
	tcase_add_loop_test(tc, test_session, 0, 2);
	tcase_add_loop_test(tc, test_apply_headers, 0, N(hdr_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
