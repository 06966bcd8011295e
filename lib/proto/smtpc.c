/*
 * smtpc - pure client-side SMTP/LMTP parsers (see smtpc.h).
 *
 * Invariants: every input is bounded before it is buffered (a line at
 * SMTPC_LINE_MAX, a reply at SMTPC_REPLY_LINES lines, the kept text near
 * SMTPC_REPLY_TEXT_MAX); the server's bytes reach logs and DSNs only with
 * control characters replaced. Parsing the same bytes in any split gives
 * the same replies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/strv.h"
#include "proto/smtpc.h"

void
smtpc_reply_init(struct smtpc_reply *r, int want_lines)
{
	if (r->text.max == 0 && r->text.data == NULL)
		buf_init(&r->text, SMTPC_REPLY_TEXT_MAX + SMTPC_LINE_MAX);
	buf_reset(&r->text);
	strv_free(&r->lines);
	r->want_lines = want_lines;
	r->code = 0;
	r->nlines = 0;
	r->err[0] = '\0';
}

void
smtpc_reply_free(struct smtpc_reply *r)
{
	buf_free(&r->text);
	strv_free(&r->lines);
}

int
smtpc_reply_line(const char *line, size_t len, int *code, int *last)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9'
	    || line[2] < '0' || line[2] > '9')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = len == 3 || line[3] == ' ';
	return 0;
}

/* One complete line (without its line end). DONE after the last line. */
static enum smtpc_result
reply_add_line(struct smtpc_reply *r, const char *l, size_t len)
{
	char tmp[SMTPC_LINE_MAX];
	int code, last;
	size_t i;

	if (smtpc_reply_line(l, len, &code, &last) < 0 ||
	    (r->nlines > 0 && code != r->code)) {
		snprintf(r->err, sizeof(r->err), "malformed reply: %.60s", l);
		for (i = 0; r->err[i] != '\0'; i++)
			if ((unsigned char)r->err[i] < 0x20 || r->err[i] == 0x7f)
				r->err[i] = ' ';
		return SMTPC_ERROR;
	}
	if (++r->nlines > SMTPC_REPLY_LINES) {
		snprintf(r->err, sizeof(r->err), "reply has too many lines");
		return SMTPC_ERROR;
	}
	r->code = code;
	/* Keep the text printable: the server's bytes go to logs and DSNs. */
	for (i = 0; i < len; i++)
		tmp[i] = (unsigned char)l[i] < 0x20 || l[i] == 0x7f ? ' ' : l[i];
	tmp[len] = '\0';
	if (r->text.len < SMTPC_REPLY_TEXT_MAX) {
		if (r->text.len == 0)
			buf_printf(&r->text, "%d", code);
		if (len > 4)
			buf_printf(&r->text, " %s", tmp + 4);
	}
	if (r->want_lines && len > 4)
		strv_push(&r->lines, tmp + 4);
	return last ? SMTPC_DONE : SMTPC_NEED_MORE;
}

enum smtpc_result
smtpc_reply_parse(struct smtpc_reply *r, const char *in, size_t n, size_t *consumed_r)
{
	size_t used = 0, len;
	const char *nl;
	enum smtpc_result rc;

	*consumed_r = 0;
	for (;;) {
		nl = memchr(in + used, '\n', n - used);
		if (nl == NULL) {
			if (n - used >= SMTPC_LINE_MAX) {
				snprintf(r->err, sizeof(r->err), "reply line too long");
				return SMTPC_ERROR;
			}
			return SMTPC_NEED_MORE;
		}
		len = (size_t)(nl - (in + used));
		if (len >= SMTPC_LINE_MAX) {
			snprintf(r->err, sizeof(r->err), "reply line too long");
			return SMTPC_ERROR;
		}
		rc = reply_add_line(r, in + used, len > 0 && nl[-1] == '\r' ? len - 1 : len);
		used += len + 1;
		*consumed_r = used;
		if (rc != SMTPC_NEED_MORE)
			return rc;
	}
}

unsigned
smtpc_ext_parse(char *const *lines, long long *size_r)
{
	unsigned ext = 0;
	size_t i;

	*size_r = 0;
	for (i = 0; lines != NULL && lines[i] != NULL; i++) {
		const char *l = lines[i];
		size_t kw = strcspn(l, " =");

		if (kw == 10 && strncasecmp(l, "PIPELINING", kw) == 0)
			ext |= SMTPC_EXT_PIPELINING;
		else if (kw == 4 && strncasecmp(l, "SIZE", kw) == 0) {
			ext |= SMTPC_EXT_SIZE;
			*size_r = l[4] == ' ' ? strtoll(l + 5, NULL, 10) : 0;
			if (*size_r < 0)
				*size_r = 0;
		} else if (kw == 8 && strncasecmp(l, "8BITMIME", kw) == 0)
			ext |= SMTPC_EXT_8BITMIME;
		else if (kw == 8 && strncasecmp(l, "SMTPUTF8", kw) == 0)
			ext |= SMTPC_EXT_SMTPUTF8;
		else if (kw == 3 && strncasecmp(l, "DSN", kw) == 0)
			ext |= SMTPC_EXT_DSN;
		else if (kw == 8 && strncasecmp(l, "STARTTLS", kw) == 0)
			ext |= SMTPC_EXT_STARTTLS;
		else if (kw == 19 && strncasecmp(l, "ENHANCEDSTATUSCODES", kw) == 0)
			ext |= SMTPC_EXT_ENHANCEDSTATUSCODES;
		else if (kw == 4 && strncasecmp(l, "AUTH", kw) == 0) {
			char **mechs = strv_split_list(l + 4 + (l[4] != '\0'));

			if (strv_contains_ci(mechs, "PLAIN"))
				ext |= SMTPC_EXT_AUTH_PLAIN;
			if (strv_contains_ci(mechs, "LOGIN"))
				ext |= SMTPC_EXT_AUTH_LOGIN;
			strv_free(&mechs);
		}
	}
	return ext;
}

void
smtpc_dest_free(struct smtpc_dest *d)
{
	xfree(&d->host);
	xfree(&d->path);
}

int
smtpc_hostport(const char *s, int defport, char **host_r, int *port_r, int *bracket_r)
{
	const char *end, *p, *colon;
	char *e, *host;
	long port = defport;

	*host_r = NULL;
	if (s == NULL || *s == '\0' || strlen(s) > 300)
		return -1;
	if (*s == '[') {
		end = strchr(s, ']');
		if (end == NULL || end == s + 1)
			return -1;
		host = xstrndup(s + 1, (size_t)(end - s - 1));
		p = end + 1;
		*bracket_r = 1;
		if (strncasecmp(host, "ipv6:", 5) == 0)
			memmove(host, host + 5, strlen(host + 5) + 1);
	} else {
		colon = strrchr(s, ':');
		/* A bare IPv6 address needs brackets to carry a port. */
		if (colon != NULL && strchr(s, ':') != colon)
			return -1;
		host = colon != NULL ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
		p = colon != NULL ? colon : s + strlen(s);
		*bracket_r = 0;
	}
	if (*p == ':') {
		port = strtol(p + 1, &e, 10);
		if (p[1] < '0' || p[1] > '9' || *e != '\0' || port < 1 || port > 65535) {
			free(host);
			return -1;
		}
	} else if (*p != '\0') {
		free(host);
		return -1;
	}
	if (*host == '\0' || strpbrk(host, " \t\r\n/[]") != NULL) {
		free(host);
		return -1;
	}
	*host_r = str_lower(host);
	*port_r = (int)port;
	return 0;
}

int
smtpc_lmtp_dest(const char *nh, int defport, struct smtpc_dest *d)
{
	int bracket;

	memset(d, 0, sizeof(*d));
	if (nh == NULL || *nh == '\0' || strlen(nh) > 1000)
		return -1;
	if (strncasecmp(nh, "unix:", 5) == 0) {
		const char *p = nh + 5;

		/* Bound by sun_path; no control characters in a path we log. */
		if (*p == '\0' || strlen(p) > 107)
			return -1;
		for (; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return -1;
		d->kind = SMTPC_DEST_UNIX;
		d->path = xstrdup(nh + 5);
		return 0;
	}
	d->kind = SMTPC_DEST_INET;
	if (strncasecmp(nh, "inet:", 5) == 0)
		nh += 5;
	return smtpc_hostport(nh, defport, &d->host, &d->port, &bracket);
}

void
smtpc_lmtp_dot_init(struct smtpc_lmtp_dot *d, const unsigned char *accepted,
    size_t nrcpt)
{
	d->accepted = accepted;
	d->nrcpt = nrcpt;
	d->next = 0;
}

long
smtpc_lmtp_dot_next(struct smtpc_lmtp_dot *d)
{
	while (d->next < d->nrcpt) {
		size_t i = d->next++;

		if (d->accepted[i])
			return (long)i;
	}
	return -1;
}
