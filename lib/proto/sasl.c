/*
 * sasl - PLAIN and LOGIN server exchanges and bounded base64.
 *
 * Invariants: every client line is length-checked before it is decoded,
 * and decoding checks the output bound before writing. Temporary buffers
 * that held a password are wiped before they are freed, as are the
 * credentials in sasl_creds_free(). Nothing here logs a password.
 *
 * Trusts: nothing from the client. The decoded PLAIN message must hold
 * exactly two NULs; names are refused if they hold control characters.
 *
 * Limits: see sasl.h (SASL_NAME_MAX, SASL_PASS_MAX, SASL_LINE_MAX).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/b64.h"
#include "proto/sasl.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
sasl_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

/* Wipe what the buffer held, then release it. */
static void
buf_wipe_free(struct buf *b)
{
	if (b->data != NULL)
		sasl_wipe(b->data, b->cap);
	buf_free(b);
}

int
sasl_b64_decode(const char *in, size_t n, struct buf *out, size_t max)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i, pad = 0, outlen;
	unsigned char q[3];
	int v[4], j;

	if (n % 4 != 0)
		return -1;
	if (n > 0 && p[n - 1] == '=') {
		pad++;
		if (p[n - 2] == '=')
			pad++;
	}
	outlen = n / 4 * 3 - pad;
	if (outlen > max)
		return -1;
	if (buf_reserve(out, outlen) < 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		int last = i + 4 == n;

		for (j = 0; j < 4; j++) {
			v[j] = b64_digit(p[i + j], '/');
			if (v[j] < 0) {
				/* '=' only as the last one or two characters */
				if (!(last && p[i + j] == '=' && j >= 4 - (int)pad))
					return -1;
				v[j] = 0;
			}
		}
		q[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		q[1] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
		q[2] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
		if (last && pad == 2 && (v[1] & 0xf) != 0)
			return -1;
		if (last && pad == 1 && (v[2] & 0x3) != 0)
			return -1;
		if (buf_append(out, q, last ? 3 - pad : 3) < 0)
			return -1;
	}
	return 0;
}

int
sasl_b64_encode(const void *in, size_t n, struct buf *out)
{
	const unsigned char *p = in;
	char q[4];
	size_t i;

	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = b64_alphabet[v >> 18 & 0x3f];
		q[1] = b64_alphabet[v >> 12 & 0x3f];
		q[2] = i + 1 < n ? b64_alphabet[v >> 6 & 0x3f] : '=';
		q[3] = i + 2 < n ? b64_alphabet[v & 0x3f] : '=';
		if (buf_append(out, q, 4) < 0)
			return -1;
	}
	return 0;
}

int
sasl_plaintext_allowed(const char *options, const char **bad_r)
{
	static const char *const known[] = { "noanonymous", "noplaintext",
	    "noactive", "nodictionary", "mutual_auth", "forward_secrecy" };
	const char *p = options != NULL ? options : "";
	int ok = 1;
	size_t n, i;

	*bad_r = NULL;
	for (; *(p += strspn(p, " \t\r\n,")) != '\0'; p += n) {
		n = strcspn(p, " \t\r\n,");
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strlen(known[i]) == n && strncasecmp(p, known[i], n) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0])) {
			*bad_r = "unknown SASL security option (noanonymous, noplaintext, "
			    "noactive, nodictionary, mutual_auth or forward_secrecy)";
			return -1;
		}
		/* Everything but noanonymous rules out PLAIN and LOGIN. */
		if (i > 0)
			ok = 0;
	}
	return ok;
}

const char *
sasl_mechanisms(void)
{
	return "PLAIN LOGIN";
}

enum sasl_mech
sasl_mech_lookup(const char *name)
{
	if (strcasecmp(name, "PLAIN") == 0)
		return SASL_MECH_PLAIN;
	if (strcasecmp(name, "LOGIN") == 0)
		return SASL_MECH_LOGIN;
	return SASL_MECH_NONE;
}

const char *
sasl_mech_name(enum sasl_mech mech)
{
	switch (mech) {
	case SASL_MECH_PLAIN:
		return "PLAIN";
	case SASL_MECH_LOGIN:
		return "LOGIN";
	default:
		return "NONE";
	}
}

void
sasl_creds_free(struct sasl_creds *c)
{
	if (c->passwd != NULL)
		sasl_wipe(c->passwd, strlen(c->passwd));
	xfree(&c->passwd);
	xfree(&c->authcid);
	xfree(&c->authzid);
}

/* A name: 1..SASL_NAME_MAX bytes (0 allowed if empty_ok), no controls. */
static int
name_ok(const char *p, size_t n, int empty_ok)
{
	size_t i;

	if (n > SASL_NAME_MAX || (n == 0 && !empty_ok))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

int
sasl_plain_parse(const char *msg, size_t len, struct sasl_creds *c,
    const char **err_r)
{
	const char *nul1, *nul2, *authcid, *pw;
	size_t zlen, clen, plen;

	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		goto syntax;
	authcid = nul1 + 1;
	nul2 = memchr(authcid, '\0', len - (size_t)(authcid - msg));
	if (nul2 == NULL)
		goto syntax;
	pw = nul2 + 1;
	zlen = (size_t)(nul1 - msg);
	clen = (size_t)(nul2 - authcid);
	plen = len - (size_t)(pw - msg);
	if (memchr(pw, '\0', plen) != NULL)
		goto syntax;
	if (!name_ok(msg, zlen, 1) || !name_ok(authcid, clen, 0)) {
		if (err_r != NULL)
			*err_r = "invalid user name";
		return -1;
	}
	if (plen == 0 || plen > SASL_PASS_MAX) {
		if (err_r != NULL)
			*err_r = "invalid password length";
		return -1;
	}
	c->authzid = xstrndup(msg, zlen);
	c->authcid = xstrndup(authcid, clen);
	c->passwd = xstrndup(pw, plen);
	return 0;
syntax:
	if (err_r != NULL)
		*err_r = "malformed PLAIN message";
	return -1;
}

void
sasl_server_init(struct sasl_server *s)
{
	memset(s, 0, sizeof(*s));
}

void
sasl_server_reset(struct sasl_server *s)
{
	sasl_creds_free(&s->creds);
	sasl_server_init(s);
}

/* Decode one client response into dec (bounded). */
static enum sasl_result
decode_response(const char *line, size_t len, struct buf *dec, size_t max,
    const char **err_r)
{
	if (len > SASL_LINE_MAX) {
		if (err_r != NULL)
			*err_r = "response too long";
		return SASL_ERR_DECODE;
	}
	if (len == 1 && line[0] == '=')   /* RFC 4954: an empty response */
		len = 0;
	if (sasl_b64_decode(line, len, dec, max) < 0) {
		if (err_r != NULL)
			*err_r = "invalid base64 data";
		return SASL_ERR_DECODE;
	}
	return SASL_DONE;
}

static void
challenge_set(struct buf *challenge, const char *text)
{
	buf_reset(challenge);
	(void)sasl_b64_encode(text, strlen(text), challenge);
}

/* Handle one response for the current step. */
static enum sasl_result
sasl_feed(struct sasl_server *s, const char *line, size_t len,
    struct buf *challenge, const char **err_r)
{
	struct buf dec = BUF_INIT(0);
	enum sasl_result r;

	if (s->mech == SASL_MECH_PLAIN) {
		r = decode_response(line, len, &dec, 2 * SASL_NAME_MAX + SASL_PASS_MAX + 2,
		    err_r);
		if (r == SASL_DONE && sasl_plain_parse(dec.data ? dec.data : "",
		    dec.len, &s->creds, err_r) < 0)
			r = SASL_ERR_SYNTAX;
		goto out;
	}
	if (s->step == 1) {
		r = decode_response(line, len, &dec, SASL_NAME_MAX, err_r);
		if (r != SASL_DONE)
			goto out;
		if (!name_ok(buf_cstr(&dec), dec.len, 0)) {
			if (err_r != NULL)
				*err_r = "invalid user name";
			r = SASL_ERR_SYNTAX;
			goto out;
		}
		s->creds.authzid = xstrdup("");
		s->creds.authcid = xstrndup(buf_cstr(&dec), dec.len);
		s->step = 2;
		challenge_set(challenge, "Password:");
		r = SASL_CONTINUE;
		goto out;
	}
	r = decode_response(line, len, &dec, SASL_PASS_MAX, err_r);
	if (r != SASL_DONE)
		goto out;
	if (dec.len == 0 || memchr(dec.data, '\0', dec.len) != NULL) {
		if (err_r != NULL)
			*err_r = "invalid password";
		r = SASL_ERR_SYNTAX;
		goto out;
	}
	s->creds.passwd = xstrndup(dec.data, dec.len);
out:
	buf_wipe_free(&dec);
	if (r != SASL_DONE && r != SASL_CONTINUE)
		sasl_creds_free(&s->creds);
	if (r == SASL_DONE)
		s->step = 3;
	return r;
}

enum sasl_result
sasl_server_start(struct sasl_server *s, const char *mech, const char *initial,
    size_t ilen, struct buf *challenge, const char **err_r)
{
	sasl_server_reset(s);
	buf_reset(challenge);
	s->mech = sasl_mech_lookup(mech);
	if (s->mech == SASL_MECH_NONE) {
		if (err_r != NULL)
			*err_r = "unsupported mechanism";
		return SASL_ERR_MECH;
	}
	s->step = 1;
	if (initial == NULL) {
		if (s->mech == SASL_MECH_LOGIN)
			challenge_set(challenge, "Username:");
		return SASL_CONTINUE;
	}
	return sasl_feed(s, initial, ilen, challenge, err_r);
}

enum sasl_result
sasl_server_step(struct sasl_server *s, const char *line, size_t len,
    struct buf *challenge, const char **err_r)
{
	buf_reset(challenge);
	if (s->mech == SASL_MECH_NONE || s->step < 1 || s->step > 2) {
		if (err_r != NULL)
			*err_r = "no exchange in progress";
		return SASL_ERR_SYNTAX;
	}
	if (len == 1 && line[0] == '*') {
		sasl_creds_free(&s->creds);
		s->step = 0;
		return SASL_CANCEL;
	}
	return sasl_feed(s, line, len, challenge, err_r);
}
