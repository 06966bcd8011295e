/*
 * smtp - SMTP server-side parsers (see smtp.h for the DATA rules).
 *
 * Invariants: no parser reads past in[n); nothing here does I/O or keeps
 * hidden state; every state a parser needs lives in the caller's struct, so
 * a byte-at-a-time feed gives the same results as one whole buffer.
 * Trusts: nothing; every byte may be hostile.
 * Limits: command lines are bounded by line_length_limit (+2 for CRs);
 * parameters by params_max; ENVID 100 octets, ORCPT 500 (RFC 3461).
 */
#include "proto/smtp.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

const struct smtp_verb_info smtp_verbs[SMTP_VERB_COUNT] = {
	[SMTP_UNKNOWN] = { "UNKNOWN", SMTP_UNKNOWN, 0, "" },
	[SMTP_HELO] = { "HELO", SMTP_HELO, SMTP_VF_ARG_REQ | SMTP_VF_NO_TLS_CHECK,
	    "501 5.5.4 Syntax: HELO hostname" },
	[SMTP_EHLO] = { "EHLO", SMTP_EHLO,
	    SMTP_VF_ARG_REQ | SMTP_VF_LAST | SMTP_VF_NO_TLS_CHECK,
	    "501 5.5.4 Syntax: EHLO hostname" },
	[SMTP_MAIL] = { "MAIL", SMTP_MAIL, SMTP_VF_ARG_REQ | SMTP_VF_TXN,
	    "501 5.5.4 Syntax: MAIL FROM:<address>" },
	[SMTP_RCPT] = { "RCPT", SMTP_RCPT, SMTP_VF_ARG_REQ | SMTP_VF_TXN,
	    "501 5.5.4 Syntax: RCPT TO:<address>" },
	[SMTP_DATA] = { "DATA", SMTP_DATA,
	    SMTP_VF_ARG_NONE | SMTP_VF_LAST | SMTP_VF_TXN,
	    "501 5.5.4 Syntax: DATA" },
	[SMTP_RSET] = { "RSET", SMTP_RSET, SMTP_VF_ARG_NONE,
	    "501 5.5.4 Syntax: RSET" },
	[SMTP_NOOP] = { "NOOP", SMTP_NOOP, SMTP_VF_NO_TLS_CHECK, "" },
	[SMTP_QUIT] = { "QUIT", SMTP_QUIT,
	    SMTP_VF_ARG_NONE | SMTP_VF_LAST | SMTP_VF_NO_TLS_CHECK,
	    "501 5.5.4 Syntax: QUIT" },
	[SMTP_VRFY] = { "VRFY", SMTP_VRFY, SMTP_VF_ARG_REQ | SMTP_VF_LAST,
	    "501 5.5.4 Syntax: VRFY address" },
	[SMTP_HELP] = { "HELP", SMTP_HELP, 0, "" },
	[SMTP_EXPN] = { "EXPN", SMTP_EXPN, SMTP_VF_ARG_REQ | SMTP_VF_LAST,
	    "501 5.5.4 Syntax: EXPN address" },
	[SMTP_STARTTLS] = { "STARTTLS", SMTP_STARTTLS,
	    SMTP_VF_ARG_NONE | SMTP_VF_LAST | SMTP_VF_NO_TLS_CHECK,
	    "501 5.5.4 Syntax: STARTTLS" },
	[SMTP_AUTH] = { "AUTH", SMTP_AUTH, SMTP_VF_ARG_REQ | SMTP_VF_LAST,
	    "501 5.5.4 Syntax: AUTH mechanism" },
	[SMTP_BDAT] = { "BDAT", SMTP_BDAT, SMTP_VF_ARG_REQ | SMTP_VF_TXN,
	    "501 5.5.4 Syntax: BDAT count [LAST]" },
	[SMTP_ETRN] = { "ETRN", SMTP_ETRN, SMTP_VF_ARG_REQ | SMTP_VF_LAST,
	    "501 5.5.4 Syntax: ETRN domain" },
};

static const char err_bad_syntax[] = "500 5.5.2 Error: bad syntax";

const struct smtp_verb_info *
smtp_verb_lookup(const char *word, size_t len)
{
	for (size_t i = 1; i < SMTP_VERB_COUNT; i++) {
		const char *name = smtp_verbs[i].name;
		if (strlen(name) == len && strncasecmp(name, word, len) == 0)
			return &smtp_verbs[i];
	}
	return &smtp_verbs[SMTP_UNKNOWN];
}

/* --- Command lines: split by util/line.h ------------------------------ */

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

enum smtp_result
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd_r,
    const char **err_r)
{
	cmd_r->verb = &smtp_verbs[SMTP_UNKNOWN];
	cmd_r->arg = "";
	cmd_r->arg_len = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*err_r = err_bad_syntax;
			return SMTP_ERROR;
		}
	}
	/* RFC 5321 wants no leading blanks; tolerate them as Postfix does. */
	size_t i = 0;
	while (i < len && is_blank(line[i]))
		i++;
	size_t vstart = i;
	while (i < len && !is_blank(line[i]))
		i++;
	if (i == vstart) {
		*err_r = err_bad_syntax;
		return SMTP_ERROR;
	}
	cmd_r->verb = smtp_verb_lookup(line + vstart, i - vstart);
	while (i < len && is_blank(line[i]))
		i++;
	size_t end = len;
	while (end > i && is_blank(line[end - 1]))
		end--;
	cmd_r->arg = line + i;
	cmd_r->arg_len = end - i;
	return SMTP_DONE;
}

int
smtp_cmd_args_ok(const struct smtp_cmd *cmd, const char **err_r)
{
	unsigned f = cmd->verb->flags;

	if (((f & SMTP_VF_ARG_NONE) && cmd->arg_len > 0)
	    || ((f & SMTP_VF_ARG_REQ) && cmd->arg_len == 0)) {
		*err_r = cmd->verb->syntax;
		return -1;
	}
	return 0;
}

/* --- xtext ----------------------------------------------------------------- */

static int
hexval(int c)
{
	/* RFC 3461: hexchar is upper case only. */
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
smtp_xtext_decode(const char *in, size_t n, struct buf *out)
{
	size_t start = out->len;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			if (n - i < 3)
				goto bad;
			int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
			if (c < 0x20 || c == 0x7f)
				goto bad;
		} else if (c < '!' || c > '~' || c == '=') {
			goto bad;
		}
		if (buf_putc(out, c) < 0)
			goto bad;
	}
	return 0;
bad:
	buf_truncate(out, start);
	return -1;
}

void
smtp_xtext_encode(const char *s, struct buf *out)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < '!' || c > '~' || c == '+' || c == '=')
			buf_printf(out, "+%02X", c);
		else
			buf_putc(out, c);
	}
}

/* --- ESMTP parameters ------------------------------------------------------ */

struct param {
	const char *key;
	size_t klen;
	const char *val;   /* NULL when the parameter has no "=" */
	size_t vlen;
};

static int
key_is(const struct param *p, const char *name)
{
	return strlen(name) == p->klen && strncasecmp(p->key, name, p->klen) == 0;
}

static int
val_is(const struct param *p, const char *word)
{
	return p->val && strlen(word) == p->vlen
	    && strncasecmp(p->val, word, p->vlen) == 0;
}

/* Next parameter from s[*pos..len): 1 and *p, 0 at the end, -1 bad syntax
 * (esmtp-keyword or esmtp-value of RFC 5321 4.1.2; UTF-8 allowed in values
 * for RFC 6531). */
static int
param_next(const char *s, size_t len, size_t *pos, struct param *p)
{
	size_t i = *pos;

	while (i < len && is_blank(s[i]))
		i++;
	if (i == len)
		return 0;
	size_t kstart = i;
	while (i < len && !is_blank(s[i]) && s[i] != '=') {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
		    || (c >= '0' && c <= '9') || (c == '-' && i > kstart)))
			return -1;
		i++;
	}
	if (i == kstart)
		return -1;
	p->key = s + kstart;
	p->klen = i - kstart;
	p->val = NULL;
	p->vlen = 0;
	if (i < len && s[i] == '=') {
		size_t vstart = ++i;
		while (i < len && !is_blank(s[i])) {
			unsigned char c = (unsigned char)s[i];
			if (c < 33 || c == '=' || c == 127)
				return -1;
			i++;
		}
		if (i == vstart)
			return -1;
		p->val = s + vstart;
		p->vlen = i - vstart;
	}
	*pos = i;
	return 1;
}

/* Check the count before looking at any parameter, so that a flood of
 * parameters gets one answer whatever they are. */
static char *
too_many(const char *s, size_t len, const struct smtp_limits *lim)
{
	struct param p;
	size_t pos = 0, count = 0;

	while (param_next(s, len, &pos, &p) > 0)
		if (++count > lim->params_max)
			return xasprintf("501 5.5.4 Error: too many parameters");
	return NULL;
}

static char *
unsupported(const struct param *p)
{
	return xasprintf("555 5.5.4 Unsupported option: %.*s", (int)p->klen, p->key);
}

static char *
bad_param(const char *what)
{
	return xasprintf("501 5.5.4 Bad %s parameter syntax", what);
}

/* Decode an xtext value into a fresh string of at most max octets. */
static char *
xtext_value(const struct param *p, size_t max)
{
	struct buf b = BUF_INIT(max);

	if (smtp_xtext_decode(p->val, p->vlen, &b) < 0 || b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

enum smtp_result
smtp_mail_params_parse(const char *s, size_t len, const struct smtp_limits *lim,
    struct smtp_mail_params *mp, char **err_r)
{
	struct param p;
	size_t pos = 0;
	int r, seen_size = 0, seen_utf8 = 0;

	memset(mp, 0, sizeof(*mp));
	mp->size = -1;
	if ((*err_r = too_many(s, len, lim)) != NULL)
		return SMTP_ERROR;
	while ((r = param_next(s, len, &pos, &p)) > 0) {
		if (key_is(&p, "SIZE")) {
			if (seen_size || p.val == NULL)
				goto bad_size;
			long long v = 0;
			for (size_t i = 0; i < p.vlen; i++) {
				if (p.val[i] < '0' || p.val[i] > '9')
					goto bad_size;
				if (v > (LLONG_MAX - 9) / 10)
					v = LLONG_MAX;   /* saturate: over any limit */
				else
					v = v * 10 + (p.val[i] - '0');
			}
			mp->size = v;
			seen_size = 1;
		} else if (key_is(&p, "BODY")) {
			if (mp->body != SMTP_BODY_NONE)
				goto bad_body;
			if (val_is(&p, "7BIT"))
				mp->body = SMTP_BODY_7BIT;
			else if (val_is(&p, "8BITMIME"))
				mp->body = SMTP_BODY_8BITMIME;
			else if (val_is(&p, "BINARYMIME"))
				mp->body = SMTP_BODY_BINARYMIME;
			else
				goto bad_body;
		} else if (key_is(&p, "SMTPUTF8")) {
			if (seen_utf8 || p.val != NULL) {
				*err_r = bad_param("SMTPUTF8");
				goto fail;
			}
			mp->smtputf8 = seen_utf8 = 1;
		} else if (key_is(&p, "RET")) {
			if (mp->ret != SMTP_RET_NONE)
				goto bad_ret;
			if (val_is(&p, "FULL"))
				mp->ret = SMTP_RET_FULL;
			else if (val_is(&p, "HDRS"))
				mp->ret = SMTP_RET_HDRS;
			else
				goto bad_ret;
		} else if (key_is(&p, "AUTH")) {
			if (mp->auth_given || p.val == NULL
			    || (!(p.vlen == 2 && memcmp(p.val, "<>", 2) == 0)
			    && (mp->auth = xtext_value(&p, 500)) == NULL)) {
				*err_r = bad_param("AUTH");
				goto fail;
			}
			mp->auth_given = 1;
		} else if (key_is(&p, "ENVID")) {
			if (mp->envid != NULL || p.val == NULL
			    || (mp->envid = xtext_value(&p, 100)) == NULL) {
				*err_r = bad_param("ENVID");
				goto fail;
			}
		} else {
			*err_r = unsupported(&p);
			goto fail;
		}
	}
	if (r < 0) {
		*err_r = xasprintf("501 5.5.4 Error: bad parameter syntax");
		goto fail;
	}
	return SMTP_DONE;

bad_size:
	*err_r = bad_param("SIZE");
	goto fail;
bad_body:
	*err_r = xasprintf("501 5.5.4 Unsupported BODY parameter value");
	goto fail;
bad_ret:
	*err_r = bad_param("RET");
fail:
	smtp_mail_params_free(mp);
	return SMTP_ERROR;
}

void
smtp_mail_params_free(struct smtp_mail_params *mp)
{
	xfree(&mp->envid);
	xfree(&mp->auth);
}

/* NOTIFY=NEVER | SUCCESS,FAILURE,DELAY subset (RFC 3461 4.1). */
static int
parse_notify(const struct param *p, unsigned *notify_r)
{
	unsigned notify = 0;
	size_t i = 0;

	if (p->val == NULL)
		return -1;
	while (i <= p->vlen) {
		size_t start = i;
		while (i < p->vlen && p->val[i] != ',')
			i++;
		struct param word = { .val = p->val + start, .vlen = i - start };
		unsigned bit;
		if (val_is(&word, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (val_is(&word, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (val_is(&word, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (val_is(&word, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if (notify & bit)
			return -1;
		notify |= bit;
		i++;   /* past the comma (or past the end: loop ends) */
	}
	if ((notify & SMTP_NOTIFY_NEVER) && notify != SMTP_NOTIFY_NEVER)
		return -1;
	*notify_r = notify;
	return 0;
}

enum smtp_result
smtp_rcpt_params_parse(const char *s, size_t len, const struct smtp_limits *lim,
    struct smtp_rcpt_params *rp, char **err_r)
{
	struct param p;
	size_t pos = 0;
	int r;

	memset(rp, 0, sizeof(*rp));
	if ((*err_r = too_many(s, len, lim)) != NULL)
		return SMTP_ERROR;
	while ((r = param_next(s, len, &pos, &p)) > 0) {
		if (key_is(&p, "NOTIFY")) {
			if (rp->notify != 0 || parse_notify(&p, &rp->notify) < 0) {
				*err_r = bad_param("NOTIFY");
				goto fail;
			}
		} else if (key_is(&p, "ORCPT")) {
			/* addr-type ";" xtext; only rfc822 addresses here. */
			const char *semi = p.val ? memchr(p.val, ';', p.vlen) : NULL;
			struct param x;
			if (rp->orcpt != NULL || semi == NULL
			    || (size_t)(semi - p.val) != 6
			    || strncasecmp(p.val, "rfc822", 6) != 0)
				goto bad_orcpt;
			x.val = semi + 1;
			x.vlen = p.vlen - 7;
			if ((rp->orcpt = xtext_value(&x, 500)) == NULL)
				goto bad_orcpt;
		} else {
			*err_r = unsupported(&p);
			goto fail;
		}
	}
	if (r < 0) {
		*err_r = xasprintf("501 5.5.4 Error: bad parameter syntax");
		goto fail;
	}
	return SMTP_DONE;

bad_orcpt:
	*err_r = bad_param("ORCPT");
fail:
	smtp_rcpt_params_free(rp);
	return SMTP_ERROR;
}

void
smtp_rcpt_params_free(struct smtp_rcpt_params *rp)
{
	xfree(&rp->orcpt);
}

const char *
smtp_notify_str(unsigned notify)
{
	static const char *const subsets[8] = {
		"", "SUCCESS", "FAILURE", "SUCCESS,FAILURE", "DELAY",
		"SUCCESS,DELAY", "FAILURE,DELAY", "SUCCESS,FAILURE,DELAY",
	};

	if (notify & SMTP_NOTIFY_NEVER)
		return "NEVER";
	return subsets[(notify >> 1) & 7];
}

/* --- DATA ------------------------------------------------------------------ */

enum { D_SOL, D_DOT, D_MID };

void
smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = D_SOL;
	d->prev_std = 1;   /* "." CRLF as the very first line ends the data */
}

static void
emit(struct smtp_data *d, const struct smtp_limits *lim, struct buf *out,
    const char *p, size_t n)
{
	/* Output is exactly the first max_size content bytes, however the
	 * input was split. */
	size_t keep = n;
	if (lim->max_size > 0 && d->size + (long long)n > lim->max_size) {
		keep = d->size < lim->max_size ? (size_t)(lim->max_size - d->size) : 0;
		d->too_big = 1;
	}
	d->size += (long long)n;
	if (keep > 0 && buf_append(out, p, keep) < 0)
		d->too_big = 1;
}

/* Held-back CRs turned out to be content (not followed by LF). */
static void
emit_crs(struct smtp_data *d, const struct smtp_limits *lim, struct buf *out)
{
	static const char crs[] = "\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r";

	while (d->crs > 0) {
		size_t k = d->crs < sizeof(crs) - 1 ? d->crs : sizeof(crs) - 1;
		emit(d, lim, out, crs, k);
		d->crs -= k;
	}
}

enum smtp_result
smtp_data_parse(struct smtp_data *d, const struct smtp_limits *lim,
    const char *in, size_t n, size_t *consumed_r, struct buf *out)
{
	size_t i = 0;

	*consumed_r = 0;
	if (d->done)
		return SMTP_ERROR;
	while (i < n) {
		char c = in[i];

		if (c == '\r') {
			d->crs++;
			i++;
			continue;
		}
		if (c == '\n') {
			int std = d->crs == 1;
			if (d->crs == 0 && lim->reject_bare_lf) {
				d->bare_lf = d->done = 1;
				*consumed_r = i + 1;
				return SMTP_ERROR;
			}
			if (d->state == D_DOT) {
				if (std && d->prev_std) {
					d->done = 1;
					d->crs = 0;
					*consumed_r = i + 1;
					return SMTP_DONE;
				}
				/* A lone "." that cannot end the data. */
				emit(d, lim, out, ".", 1);
			}
			emit(d, lim, out, "\n", 1);
			d->crs = 0;
			d->prev_std = std;
			d->state = D_SOL;
			i++;
			continue;
		}
		if (d->state == D_SOL && d->crs == 0 && c == '.') {
			d->state = D_DOT;
			i++;
			continue;
		}
		/* Content byte; a held "." in D_DOT is the stuffing dot: dropped. */
		emit_crs(d, lim, out);
		size_t j = i + 1;
		while (j < n && in[j] != '\r' && in[j] != '\n')
			j++;
		emit(d, lim, out, in + i, j - i);
		d->state = D_MID;
		i = j;
	}
	*consumed_r = n;
	return SMTP_NEED_MORE;
}

/* --- BDAT ------------------------------------------------------------------ */

int
smtp_bdat_args(const char *arg, size_t len, long long *size_r, int *last_r)
{
	size_t i = 0;
	long long v = 0;

	while (i < len && arg[i] >= '0' && arg[i] <= '9') {
		if (i == 18)
			return -1;   /* more than any message; and no overflow */
		v = v * 10 + (arg[i] - '0');
		i++;
	}
	if (i == 0)
		return -1;
	*size_r = v;
	*last_r = 0;
	if (i == len)
		return 0;
	if (!is_blank(arg[i]))
		return -1;
	while (i < len && is_blank(arg[i]))
		i++;
	if (len - i != 4 || strncasecmp(arg + i, "LAST", 4) != 0)
		return -1;
	*last_r = 1;
	return 0;
}

void
smtp_bdat_parse(struct smtp_data *d, const struct smtp_limits *lim,
    const char *in, size_t n, struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		if (in[i] == '\r') {
			d->crs++;
			i++;
			continue;
		}
		if (in[i] == '\n' && d->crs > 0) {
			d->crs--;    /* the CR of the CRLF pair goes; others stay */
			emit_crs(d, lim, out);
			emit(d, lim, out, "\n", 1);
			i++;
			continue;
		}
		emit_crs(d, lim, out);
		size_t j = i + 1;
		while (j < n && in[j] != '\r')
			j++;
		/* A run up to the next CR: an LF inside it has no CR before
		 * it, so it is a lone LF, content like any other octet. */
		emit(d, lim, out, in + i, j - i);
		i = j;
	}
}

void
smtp_bdat_end(struct smtp_data *d, const struct smtp_limits *lim,
    struct buf *out)
{
	emit_crs(d, lim, out);
	d->done = 1;
}

/* See smtp.h. */
void
smtp_dsn_split(const char *text, const char *def, char dsn[16], const char **text_r)
{
	const char *p = text;
	size_t n = 0;

	if ((*p == '2' || *p == '4' || *p == '5') && p[1] == '.') {
		n = strspn(p, "0123456789.");
		if (n < 15 && (p[n] == ' ' || p[n] == '\0')) {
			memcpy(dsn, p, n);
			dsn[n] = '\0';
			p += n;
			while (*p == ' ')
				p++;
			*text_r = p;
			return;
		}
	}
	snprintf(dsn, 16, "%s", def);
	*text_r = text;
}
