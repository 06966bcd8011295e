/*
 * milter - the Sendmail milter protocol (version 6) codec; see milter.h.
 *
 * Invariants: a frame from a milter is never buffered past the reader's
 * limit (the length is checked when the 4-octet header is complete, before
 * any payload is stored); every decoded string lies inside the frame and
 * ends with its NUL; a reply with leftover bytes is an error, never
 * silently accepted. Nothing here aborts on peer input.
 *
 * BUGS/LIMITS: see milter.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/milter.h"
#include "util/alloc.h"

static int
put32(struct buf *out, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };
	return buf_append(out, b, 4);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int
milter_enc_frame(struct buf *out, int cmd, const void *payload, size_t len)
{
	size_t old = out->len;
	unsigned char c = (unsigned char)cmd;

	if (len > UINT32_MAX - 1) {
		errno = EINVAL;
		return -1;
	}
	if (buf_reserve(out, len + 5) < 0)
		return -1;
	if (put32(out, (uint32_t)len + 1) < 0 || buf_append(out, &c, 1) < 0
	    || (len > 0 && buf_append(out, payload, len) < 0)) {
		buf_truncate(out, old);
		return -1;
	}
	return 0;
}

/* Strings joined with their NULs into one payload. */
static int
enc_strings(struct buf *out, int cmd, const char *prefix, size_t prefix_len,
    const char *const *s, size_t n)
{
	struct buf p = BUF_INIT(UINT32_MAX - 1);
	int rc = -1;

	if (prefix_len > 0 && buf_append(&p, prefix, prefix_len) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (buf_append(&p, s[i], strlen(s[i]) + 1) < 0)
			goto out;
	rc = milter_enc_frame(out, cmd, p.data, p.len);
out:
	buf_free(&p);
	return rc;
}

int
milter_enc_optneg(struct buf *out, uint32_t version, uint32_t actions,
    uint32_t protocol)
{
	struct buf p = BUF_INIT(12);
	int rc = -1;

	if (put32(&p, version) == 0 && put32(&p, actions) == 0
	    && put32(&p, protocol) == 0)
		rc = milter_enc_frame(out, MILTER_CMD_OPTNEG, p.data, p.len);
	buf_free(&p);
	return rc;
}

int
milter_enc_connect(struct buf *out, const char *host, int family,
    unsigned port, const char *addr)
{
	struct buf p = BUF_INIT(0);
	unsigned char f = (unsigned char)family, pb[2] = { port >> 8, port };
	int rc = -1;

	if (family != 'L' && family != '4' && family != '6' && family != 'U') {
		errno = EINVAL;
		return -1;
	}
	if (buf_append(&p, host, strlen(host) + 1) < 0 || buf_append(&p, &f, 1) < 0)
		goto out;
	if (family != 'U' && (port > 65535 || buf_append(&p, pb, 2) < 0
	    || buf_append(&p, addr, strlen(addr) + 1) < 0))
		goto out;
	rc = milter_enc_frame(out, MILTER_CMD_CONNECT, p.data, p.len);
out:
	buf_free(&p);
	return rc;
}

int
milter_enc_helo(struct buf *out, const char *helo)
{
	return enc_strings(out, MILTER_CMD_HELO, NULL, 0, &helo, 1);
}

int
milter_enc_mail(struct buf *out, const char *const *argv, size_t argc)
{
	return enc_strings(out, MILTER_CMD_MAIL, NULL, 0, argv, argc);
}

int
milter_enc_rcpt(struct buf *out, const char *const *argv, size_t argc)
{
	return enc_strings(out, MILTER_CMD_RCPT, NULL, 0, argv, argc);
}

int
milter_enc_header(struct buf *out, const char *name, const char *value)
{
	const char *s[2] = { name, value };
	return enc_strings(out, MILTER_CMD_HEADER, NULL, 0, s, 2);
}

int
milter_enc_body(struct buf *out, const void *p, size_t len)
{
	size_t old = out->len;
	const char *c = p;

	for (size_t pos = 0; pos < len; pos += MILTER_CHUNK_MAX) {
		size_t n = len - pos > MILTER_CHUNK_MAX ? MILTER_CHUNK_MAX : len - pos;
		if (milter_enc_frame(out, MILTER_CMD_BODY, c + pos, n) < 0) {
			buf_truncate(out, old);
			return -1;
		}
	}
	return 0;
}

int
milter_enc_simple(struct buf *out, int cmd)
{
	switch (cmd) {
	case MILTER_CMD_DATA: case MILTER_CMD_EOH: case MILTER_CMD_EOB:
	case MILTER_CMD_ABORT: case MILTER_CMD_QUIT: case MILTER_CMD_QUIT_NC:
		return milter_enc_frame(out, cmd, NULL, 0);
	}
	errno = EINVAL;
	return -1;
}

int
milter_enc_macro(struct buf *out, int stage_cmd, const char *const *names,
    const char *const *values, size_t n)
{
	struct buf p = BUF_INIT(UINT32_MAX - 1);
	unsigned char c = (unsigned char)stage_cmd;
	int rc = -1;

	if (buf_append(&p, &c, 1) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (values[i] == NULL)
			continue;
		if (buf_append(&p, names[i], strlen(names[i]) + 1) < 0
		    || buf_append(&p, values[i], strlen(values[i]) + 1) < 0)
			goto out;
	}
	rc = milter_enc_frame(out, MILTER_CMD_MACRO, p.data, p.len);
out:
	buf_free(&p);
	return rc;
}

void
milter_reader_init(struct milter_reader *r, uint32_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max ? max : MILTER_FRAME_MAX;
	buf_init(&r->frame, (size_t)r->max);
}

void
milter_reader_free(struct milter_reader *r)
{
	buf_free(&r->frame);
}

void
milter_reader_reset(struct milter_reader *r)
{
	r->hlen = 0;
	r->need = 0;
	buf_reset(&r->frame);
}

enum milter_result
milter_read(struct milter_reader *r, const void *p, size_t n, size_t *used_r,
    const char **error_r)
{
	const unsigned char *c = p;
	size_t used = 0;

	*used_r = 0;
	while (r->hlen < 4) {
		if (used == n)
			return MILTER_NEED_MORE;
		r->hdr[r->hlen++] = c[used++];
		*used_r = used;
		if (r->hlen == 4) {
			r->need = get32(r->hdr);
			if (r->need == 0) {
				*error_r = "milter frame of length 0";
				return MILTER_ERROR;
			}
			if (r->need > r->max) {
				*error_r = "milter frame too long";
				return MILTER_ERROR;
			}
		}
	}
	size_t want = r->need - r->frame.len, take = n - used < want ? n - used : want;
	if (take > 0 && buf_append(&r->frame, c + used, take) < 0) {
		*error_r = "milter frame too long";
		return MILTER_ERROR;
	}
	used += take;
	*used_r = used;
	return r->frame.len == r->need ? MILTER_DONE : MILTER_NEED_MORE;
}

/* Next NUL-terminated string at *pos, or NULL if it runs off the end. */
static const char *
take_str(const char *p, size_t len, size_t *pos)
{
	const char *s = p + *pos;
	const char *nul;

	if (*pos >= len || (nul = memchr(s, '\0', len - *pos)) == NULL)
		return NULL;
	*pos = (size_t)(nul - p) + 1;
	return s;
}

int
milter_replycode_check(const char *text, const char **error_r)
{
	const char *line = text;
	char code[3];

	*error_r = "malformed milter reply code";
	if (!((text[0] == '4' || text[0] == '5') && text[1] >= '0'
	    && text[1] <= '9' && text[2] >= '0' && text[2] <= '9'))
		return -1;
	memcpy(code, text, 3);
	for (;;) {
		if (memcmp(line, code, 3) != 0)
			return -1;
		if (line[3] == '\0' || line[3] == ' ') {
			/* Last line: no line break may follow. */
			if (strpbrk(line, "\r\n") != NULL)
				return -1;
			return 0;
		}
		if (line[3] != '-')
			return -1;
		const char *eol = strstr(line, "\r\n");
		if (eol == NULL)
			return -1;
		/* A bare CR or LF inside a line would let the text forge a
		 * new SMTP reply line. */
		for (const char *q = line; q < eol; q++)
			if (*q == '\r' || *q == '\n')
				return -1;
		line = eol + 2;
	}
}

int
milter_reply_decode(const void *frame, size_t len, struct milter_reply *rep,
    const char **error_r)
{
	const char *f = frame, *p;
	size_t n, pos = 0;

	memset(rep, 0, sizeof(*rep));
	if (len < 1) {
		*error_r = "empty milter frame";
		return -1;
	}
	rep->code = (unsigned char)f[0];
	p = f + 1;
	n = len - 1;
	*error_r = "malformed milter reply";
	switch (rep->code) {
	case MILTER_R_ACCEPT: case MILTER_R_CONTINUE: case MILTER_R_DISCARD:
	case MILTER_R_REJECT: case MILTER_R_TEMPFAIL: case MILTER_R_PROGRESS:
	case MILTER_R_SKIP: case MILTER_R_SHUTDOWN: case MILTER_R_CONN_FAIL:
		return n == 0 ? 0 : -1;
	case MILTER_R_REPLBODY:
	case MILTER_R_OPTNEG:
		rep->data = p;
		rep->data_len = n;
		return 0;
	case MILTER_R_REPLYCODE:
		if ((rep->str = take_str(p, n, &pos)) == NULL || pos != n)
			return -1;
		return milter_replycode_check(rep->str, error_r);
	case MILTER_R_ADDRCPT: case MILTER_R_DELRCPT: case MILTER_R_QUARANTINE:
		if ((rep->str = take_str(p, n, &pos)) == NULL || pos != n)
			return -1;
		return 0;
	case MILTER_R_ADDRCPT_PAR: case MILTER_R_CHGFROM:
		if ((rep->str = take_str(p, n, &pos)) == NULL)
			return -1;
		/* ESMTP args are optional. */
		if (pos < n && (rep->value = take_str(p, n, &pos)) == NULL)
			return -1;
		return pos == n ? 0 : -1;
	case MILTER_R_CHGHEADER: case MILTER_R_INSHEADER:
		if (n < 4)
			return -1;
		rep->index = get32((const unsigned char *)p);
		pos = 4;
		/* FALLTHROUGH */
	case MILTER_R_ADDHEADER:
		if ((rep->str = take_str(p, n, &pos)) == NULL
		    || (rep->value = take_str(p, n, &pos)) == NULL || pos != n)
			return -1;
		if (rep->str[0] == '\0') {
			*error_r = "milter header edit without a name";
			return -1;
		}
		/* A name with ':' or white space would make a different
		 * header in the queue file (folded values are the apply
		 * step's to normalise). */
		for (const char *q = rep->str; *q; q++)
			if ((unsigned char)*q <= ' ' || *q == ':' || *q == 0x7f) {
				*error_r = "milter header name not allowed";
				return -1;
			}
		return 0;
	}
	*error_r = "unknown milter reply";
	return -1;
}

int
milter_optneg_decode(const void *payload, size_t len, struct milter_optneg *o,
    const char **error_r)
{
	const unsigned char *u = payload;
	size_t pos = 12;

	memset(o, 0, sizeof(*o));
	if (len < 12) {
		*error_r = "short milter OPTNEG reply";
		return -1;
	}
	o->version = get32(u);
	o->actions = get32(u + 4);
	o->protocol = get32(u + 8);
	if (o->version < 2 || o->version > MILTER_VERSION) {
		*error_r = "unsupported milter protocol version";
		return -1;
	}
	while (pos < len) {
		const char *s;
		uint32_t stage;
		if (len - pos < 5) {
			*error_r = "malformed milter macro list";
			return -1;
		}
		stage = get32(u + pos);
		pos += 4;
		if (stage >= MILTER_M_COUNT || o->macros[stage] != NULL
		    || (s = take_str(payload, len, &pos)) == NULL) {
			*error_r = "malformed milter macro list";
			return -1;
		}
		o->macros[stage] = s;
	}
	return 0;
}

uint32_t
milter_protocol_steps(int version)
{
	const uint32_t v2 = MILTER_P_NOCONNECT | MILTER_P_NOHELO | MILTER_P_NOMAIL
	    | MILTER_P_NORCPT | MILTER_P_NOBODY | MILTER_P_NOHDRS | MILTER_P_NOEOH;

	switch (version) {
	case 2: return v2;
	case 3: return v2 | MILTER_P_NOUNKNOWN;
	case 4: return v2 | MILTER_P_NOUNKNOWN | MILTER_P_NODATA;
	case 6: return MILTER_P_ALL;
	}
	return 0;
}

int
milter_protocol_parse(const char *s, int *version_r, uint32_t *steps_r,
    const char **error_r)
{
	uint32_t ext = 0;
	int version = 0;

	while (*s != '\0') {
		size_t n;
		s += strspn(s, " \t\r\n,");
		if ((n = strcspn(s, " \t\r\n,")) == 0)
			break;
		if (n == 15 && strncmp(s, "no_header_reply", n) == 0) {
			ext |= MILTER_P_NR_HDR;
		} else if (n == 1 && milter_protocol_steps(*s - '0') != 0) {
			if (version != 0) {
				*error_r = "more than one milter protocol version";
				return -1;
			}
			version = *s - '0';
		} else {
			*error_r = "not a milter protocol version (2, 3, 4 or 6, "
			    "optionally no_header_reply)";
			return -1;
		}
		s += n;
	}
	if (version == 0) {
		*error_r = "no milter protocol version (2, 3, 4 or 6)";
		return -1;
	}
	*version_r = version;
	*steps_r = milter_protocol_steps(version) | ext;
	return 0;
}

int
milter_cmd_sent(uint32_t protocol, int cmd)
{
	switch (cmd) {
	case MILTER_CMD_CONNECT: return !(protocol & MILTER_P_NOCONNECT);
	case MILTER_CMD_HELO: return !(protocol & MILTER_P_NOHELO);
	case MILTER_CMD_MAIL: return !(protocol & MILTER_P_NOMAIL);
	case MILTER_CMD_RCPT: return !(protocol & MILTER_P_NORCPT);
	case MILTER_CMD_DATA: return !(protocol & MILTER_P_NODATA);
	case MILTER_CMD_HEADER: return !(protocol & MILTER_P_NOHDRS);
	case MILTER_CMD_EOH: return !(protocol & MILTER_P_NOEOH);
	case MILTER_CMD_BODY: return !(protocol & MILTER_P_NOBODY);
	case MILTER_CMD_UNKNOWN: return !(protocol & MILTER_P_NOUNKNOWN);
	}
	return 1;
}

int
milter_cmd_replies(uint32_t protocol, int cmd)
{
	switch (cmd) {
	case MILTER_CMD_CONNECT: return !(protocol & MILTER_P_NR_CONN);
	case MILTER_CMD_HELO: return !(protocol & MILTER_P_NR_HELO);
	case MILTER_CMD_MAIL: return !(protocol & MILTER_P_NR_MAIL);
	case MILTER_CMD_RCPT: return !(protocol & MILTER_P_NR_RCPT);
	case MILTER_CMD_DATA: return !(protocol & MILTER_P_NR_DATA);
	case MILTER_CMD_HEADER: return !(protocol & MILTER_P_NR_HDR);
	case MILTER_CMD_EOH: return !(protocol & MILTER_P_NR_EOH);
	case MILTER_CMD_BODY: return !(protocol & MILTER_P_NR_BODY);
	case MILTER_CMD_UNKNOWN: return !(protocol & MILTER_P_NR_UNKN);
	case MILTER_CMD_OPTNEG: case MILTER_CMD_EOB: return 1;
	}
	/* MACRO, ABORT, QUIT, QUIT_NC are never answered. */
	return 0;
}

int
milter_reply_is_edit(int code)
{
	switch (code) {
	case MILTER_R_ADDHEADER: case MILTER_R_CHGHEADER: case MILTER_R_INSHEADER:
	case MILTER_R_REPLBODY: case MILTER_R_ADDRCPT: case MILTER_R_ADDRCPT_PAR:
	case MILTER_R_DELRCPT: case MILTER_R_CHGFROM: case MILTER_R_QUARANTINE:
		return 1;
	}
	return 0;
}

int
milter_reply_allowed(uint32_t protocol, int cmd, int reply)
{
	if (cmd == MILTER_CMD_OPTNEG)
		return reply == MILTER_R_OPTNEG;
	if (!milter_cmd_replies(protocol, cmd))
		return 0;
	switch (reply) {
	case MILTER_R_ACCEPT: case MILTER_R_CONTINUE: case MILTER_R_DISCARD:
	case MILTER_R_REJECT: case MILTER_R_TEMPFAIL: case MILTER_R_REPLYCODE:
	case MILTER_R_SHUTDOWN: case MILTER_R_CONN_FAIL:
		return 1;
	case MILTER_R_SKIP:
		return cmd == MILTER_CMD_BODY && (protocol & MILTER_P_SKIP);
	case MILTER_R_PROGRESS:
		return cmd == MILTER_CMD_EOB;
	}
	return cmd == MILTER_CMD_EOB && milter_reply_is_edit(reply);
}

const char *
milter_reply_name(int code)
{
	switch (code) {
	case MILTER_R_ACCEPT: return "accept";
	case MILTER_R_CONTINUE: return "continue";
	case MILTER_R_DISCARD: return "discard";
	case MILTER_R_REJECT: return "reject";
	case MILTER_R_TEMPFAIL: return "tempfail";
	case MILTER_R_REPLYCODE: return "replycode";
	case MILTER_R_SKIP: return "skip";
	case MILTER_R_PROGRESS: return "progress";
	case MILTER_R_SHUTDOWN: return "shutdown";
	case MILTER_R_CONN_FAIL: return "conn_fail";
	case MILTER_R_ADDHEADER: return "add header";
	case MILTER_R_CHGHEADER: return "change header";
	case MILTER_R_INSHEADER: return "insert header";
	case MILTER_R_REPLBODY: return "replace body";
	case MILTER_R_ADDRCPT: return "add recipient";
	case MILTER_R_ADDRCPT_PAR: return "add recipient with args";
	case MILTER_R_DELRCPT: return "delete recipient";
	case MILTER_R_CHGFROM: return "change sender";
	case MILTER_R_QUARANTINE: return "quarantine";
	case MILTER_R_OPTNEG: return "optneg";
	}
	return "unknown";
}

void
milter_edits_init(struct milter_edits *e, size_t max_edits, size_t max_body)
{
	memset(e, 0, sizeof(*e));
	e->max = max_edits ? max_edits : MILTER_EDITS_MAX;
	buf_init(&e->body, max_body ? max_body : (size_t)MILTER_BODY_MAX);
}

void
milter_edits_free(struct milter_edits *e)
{
	for (size_t i = 0; i < e->n; i++) {
		xfree(&e->v[i].str);
		xfree(&e->v[i].value);
	}
	xfree(&e->v);
	e->n = e->cap = 0;
	buf_free(&e->body);
	e->body_replaced = 0;
}

static uint32_t
edit_action(int code)
{
	switch (code) {
	case MILTER_R_ADDHEADER: case MILTER_R_INSHEADER: return MILTER_A_ADDHDRS;
	case MILTER_R_CHGHEADER: return MILTER_A_CHGHDRS;
	case MILTER_R_REPLBODY: return MILTER_A_CHGBODY;
	case MILTER_R_ADDRCPT: return MILTER_A_ADDRCPT;
	case MILTER_R_ADDRCPT_PAR: return MILTER_A_ADDRCPT_PAR;
	case MILTER_R_DELRCPT: return MILTER_A_DELRCPT;
	case MILTER_R_CHGFROM: return MILTER_A_CHGFROM;
	case MILTER_R_QUARANTINE: return MILTER_A_QUARANTINE;
	}
	return 0;
}

int
milter_edits_add(struct milter_edits *e, uint32_t actions,
    const struct milter_reply *rep, const char **error_r)
{
	uint32_t need = edit_action(rep->code);

	if (need == 0) {
		*error_r = "not a milter modification";
		return -1;
	}
	if (!(actions & need)) {
		*error_r = "milter modification not negotiated";
		return -1;
	}
	if (rep->code == MILTER_R_REPLBODY) {
		if (buf_append(&e->body, rep->data, rep->data_len) < 0) {
			*error_r = "milter replacement body too large";
			return -1;
		}
		e->body_replaced = 1;
		return 0;
	}
	if (e->n >= e->max) {
		*error_r = "too many milter modifications";
		return -1;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		e->v = xreallocarray(e->v, cap, sizeof(*e->v));
		e->cap = cap;
	}
	struct milter_edit *ed = &e->v[e->n++];
	ed->code = rep->code;
	ed->index = rep->index;
	ed->str = xstrdup(rep->str);
	ed->value = rep->value ? xstrdup(rep->value) : NULL;
	return 0;
}

void
milter_sess_init(struct milter_sess *s, uint32_t version, uint32_t actions,
    uint32_t protocol)
{
	memset(s, 0, sizeof(*s));
	s->offer_version = version;
	s->offer_actions = actions;
	s->offer_protocol = protocol;
	milter_reader_init(&s->rd, 0);
	milter_edits_init(&s->edits, 0, 0);
}

void
milter_sess_free(struct milter_sess *s)
{
	for (int i = 0; i < MILTER_M_COUNT; i++)
		xfree(&s->macros[i]);
	xfree(&s->reply);
	milter_reader_free(&s->rd);
	milter_edits_free(&s->edits);
}

int
milter_sess_start(struct milter_sess *s, struct buf *out)
{
	if (milter_enc_optneg(out, s->offer_version, s->offer_actions,
	    s->offer_protocol) < 0)
		return -1;
	s->pending = MILTER_CMD_OPTNEG;
	return 0;
}

int
milter_sess_wants(const struct milter_sess *s, int cmd)
{
	switch (cmd) {
	case MILTER_CMD_QUIT: case MILTER_CMD_QUIT_NC: case MILTER_CMD_ABORT:
		return 1;
	case MILTER_CMD_MACRO:
		return !s->accepted;
	case MILTER_CMD_BODY:
		if (s->skip_body)
			return 0;
		break;
	}
	/* Steps the offered version lacks count as negotiated away. */
	return !s->accepted && milter_cmd_sent(s->protocol
	    | (MILTER_P_NOSEND_MASK & ~s->offer_protocol), cmd);
}

int
milter_sess_sent(struct milter_sess *s, int cmd)
{
	if (!milter_cmd_replies(s->protocol, cmd)) {
		s->verdict = MILTER_R_CONTINUE;
		return 0;
	}
	s->pending = cmd;
	return 1;
}

static enum milter_result
sess_optneg(struct milter_sess *s, const struct milter_reply *rep,
    const char **error_r)
{
	struct milter_optneg o;

	if (milter_optneg_decode(rep->data, rep->data_len, &o, error_r) < 0)
		return MILTER_ERROR;
	/* A milter may only take less than was offered: steps it wants
	 * skipped must be steps we can skip, actions must be ones we
	 * can apply. */
	if (o.version > s->offer_version) {
		*error_r = "milter protocol version conflicts with milter_protocol";
		return MILTER_ERROR;
	}
	if ((o.actions & ~s->offer_actions) != 0
	    || (o.protocol & ~s->offer_protocol) != 0) {
		*error_r = "milter asks for actions or steps not offered";
		return MILTER_ERROR;
	}
	s->version = o.version;
	s->actions = o.actions;
	s->protocol = o.protocol;
	for (int i = 0; i < MILTER_M_COUNT; i++)
		if (o.macros[i] != NULL)
			s->macros[i] = xstrdup(o.macros[i]);
	s->verdict = MILTER_R_OPTNEG;
	return MILTER_DONE;
}

enum milter_result
milter_sess_feed(struct milter_sess *s, const void *p, size_t n, size_t *used_r,
    const char **error_r)
{
	const char *c = p;
	size_t pos = 0, used;

	*used_r = 0;
	if (s->pending == 0) {
		*error_r = "milter sent data nobody asked for";
		return n > 0 ? MILTER_ERROR : MILTER_NEED_MORE;
	}
	while (pos < n) {
		enum milter_result r = milter_read(&s->rd, c + pos, n - pos, &used, error_r);
		pos += used;
		*used_r = pos;
		if (r != MILTER_DONE)
			return r;
		struct milter_reply rep;
		if (milter_reply_decode(s->rd.frame.data, s->rd.frame.len, &rep, error_r) < 0)
			return MILTER_ERROR;
		if (!milter_reply_allowed(s->protocol, s->pending, rep.code)) {
			*error_r = "milter reply not allowed at this step";
			return MILTER_ERROR;
		}
		enum milter_result res = MILTER_DONE;
		if (rep.code == MILTER_R_OPTNEG) {
			res = sess_optneg(s, &rep, error_r);
		} else if (rep.code == MILTER_R_PROGRESS) {
			res = MILTER_NEED_MORE;
		} else if (milter_reply_is_edit(rep.code)) {
			if (milter_edits_add(&s->edits, s->actions, &rep, error_r) < 0)
				return MILTER_ERROR;
			res = MILTER_NEED_MORE;
		} else {
			s->verdict = rep.code;
			xfree(&s->reply);
			if (rep.code == MILTER_R_REPLYCODE)
				s->reply = xstrdup(rep.str);
			if (rep.code == MILTER_R_ACCEPT || rep.code == MILTER_R_DISCARD)
				s->accepted = 1;
			if (rep.code == MILTER_R_SKIP)
				s->skip_body = 1;
		}
		milter_reader_reset(&s->rd);
		if (res == MILTER_ERROR)
			return res;
		if (res == MILTER_DONE) {
			s->pending = 0;
			return MILTER_DONE;
		}
	}
	return MILTER_NEED_MORE;
}

/* A header field of the block being edited. */
struct hfield {
	const char *p;           /* original bytes, or NULL once replaced */
	size_t len;
	char *own;               /* replacement "Name: value\n", owned */
	int deleted;
};

static char *
make_field(const char *name, const char *value, int leadspc)
{
	struct buf b = BUF_INIT(0);

	buf_printf(&b, "%s:%s", name, leadspc ? "" : " ");
	for (const char *v = value; *v; v++) {
		if (*v == '\r')
			continue;
		buf_putc(&b, *v);
		if (*v == '\n' && v[1] != ' ' && v[1] != '\t' && v[1] != '\0')
			buf_putc(&b, '\t');
	}
	/* A value ending in a line break would leave an empty line: the end
	 * of the header. */
	while (b.len > 0 && b.data[b.len - 1] == '\n')
		buf_truncate(&b, b.len - 1);
	buf_putc(&b, '\n');
	return buf_steal(&b);
}

static int
field_named(const struct hfield *f, const char *name)
{
	const char *p = f->own ? f->own : f->p;
	size_t n = strlen(name);
	return !f->deleted && strncasecmp(p, name, n) == 0
	    && (p[n] == ':' || p[n] == ' ' || p[n] == '\t');
}

int
milter_apply_headers(const char *hdr, size_t len, const struct milter_edits *e,
    int leadspc, struct buf *out)
{
	struct hfield *f = NULL;
	size_t nf = 0, pos = 0;
	int rc = 0;

	/* Split into fields: a field runs until a line that does not start
	 * with white space. */
	while (pos < len) {
		size_t start = pos;
		do {
			const char *nl = memchr(hdr + pos, '\n', len - pos);
			pos = nl ? (size_t)(nl - hdr) + 1 : len;
		} while (pos < len && (hdr[pos] == ' ' || hdr[pos] == '\t'));
		f = xreallocarray(f, nf + 1, sizeof(*f));
		f[nf++] = (struct hfield){ hdr + start, pos - start, NULL, 0 };
	}
	for (size_t i = 0; i < e->n; i++) {
		const struct milter_edit *ed = &e->v[i];
		size_t at = nf;
		if (ed->code == MILTER_R_CHGHEADER) {
			uint32_t seen = 0;
			for (size_t k = 0; k < nf; k++)
				if (field_named(&f[k], ed->str) && ++seen == ed->index) {
					at = k;
					break;
				}
			if (at < nf) {
				xfree(&f[at].own);
				if (ed->value == NULL || ed->value[0] == '\0')
					f[at].deleted = 1;
				else
					f[at].own = make_field(ed->str, ed->value, leadspc);
				continue;
			}
			if (ed->value == NULL || ed->value[0] == '\0')
				continue;
		} else if (ed->code == MILTER_R_INSHEADER) {
			/* Count only fields still present, as the milter saw
			 * them after its earlier edits. */
			uint32_t live = 0;
			for (size_t k = 0; k < nf; k++) {
				if (f[k].deleted)
					continue;
				if (live++ == ed->index) {
					at = k;
					break;
				}
			}
		} else if (ed->code != MILTER_R_ADDHEADER) {
			continue;
		}
		f = xreallocarray(f, nf + 1, sizeof(*f));
		memmove(f + at + 1, f + at, (nf - at) * sizeof(*f));
		f[at] = (struct hfield){ NULL, 0, make_field(ed->str, ed->value ?
		    ed->value : "", leadspc), 0 };
		nf++;
	}
	for (size_t k = 0; k < nf; k++) {
		if (rc == 0 && !f[k].deleted)
			rc = f[k].own ? buf_puts(out, f[k].own)
			    : buf_append(out, f[k].p, f[k].len) < 0
			    || (f[k].p[f[k].len - 1] != '\n' && buf_putc(out, '\n') < 0)
			    ? -1 : 0;
		free(f[k].own);
	}
	free(f);
	return rc;
}
