/*
 * submit - the header processing of local submissions (see submit.h).
 *
 * Everything here is a pure function over bytes: sendmail uses it to check
 * a -t message before handing it over, pickup to rewrite the header it
 * queues, and the unit tests drive it directly.
 *
 * Invariants: output header fields always end with LF; text we add from
 * the submitter (the full name) has its control characters replaced, so it
 * cannot start a new header field; an address we return is qualified and
 * passes addr_valid().
 * Trusts nothing in its input; every loop is bounded by the input length.
 * Limits: comments nest at most 32 deep; a Message-ID is logged up to
 * MSGID_MAX bytes; a full name is used up to FULLNAME_MAX bytes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/submit.h"

#define MSGID_MAX 200
#define FULLNAME_MAX 200
#define COMMENT_DEPTH_MAX 32

/* --- header fields ---------------------------------------------------------- */

/* Is line[0..n) the start of a header field? *name_len_r = name length. */
static int
field_start(const char *line, size_t n, size_t *name_len_r)
{
	size_t i = 0, name_len;

	while (i < n && line[i] > ' ' && line[i] <= '~' && line[i] != ':')
		i++;
	name_len = i;
	if (name_len == 0)
		return 0;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i >= n || line[i] != ':')
		return 0;
	if (name_len_r != NULL)
		*name_len_r = name_len;
	return 1;
}

static int
is_mbox_from(const char *p, size_t n)
{
	return n >= 5 && memcmp(p, "From ", 5) == 0;
}

int
submit_header_extent(const char *p, size_t n, int eof, size_t limit,
    size_t *len_r)
{
	size_t off = 0, fstart = 0, nfields = 0;

	for (;;) {
		if (off >= n) {
			if (!eof && n <= limit)
				return 0;
			*len_r = off;
			return 1;
		}
		const char *l = p + off;
		const char *lf = memchr(l, '\n', n - off);
		size_t end = lf != NULL ? (size_t)(lf - p) + 1 : n;
		int cont = (l[0] == ' ' || l[0] == '\t');

		if (lf == NULL && !eof) {
			if (n <= limit)
				return 0;
			*len_r = cont ? fstart : off;
			return 1;
		}
		size_t ll = end - off;
		while (ll > 0 && (l[ll - 1] == '\n' || l[ll - 1] == '\r'))
			ll--;
		if (ll == 0) {                  /* the empty line */
			*len_r = off;
			return 1;
		}
		if (off == 0 && is_mbox_from(l, ll)) {
			off = fstart = end;
			continue;
		}
		if (cont) {
			if (nfields == 0) {
				*len_r = off;
				return 1;
			}
		} else if (field_start(l, ll, NULL)) {
			nfields++;
			fstart = off;
		} else {
			*len_r = off;
			return 1;
		}
		if (end > limit) {
			*len_r = cont || nfields == 0 ? fstart : off;
			return 1;
		}
		off = end;
	}
}

/*
 * One field of a header block: [start, end) is the whole field with its
 * continuation lines and final LF (if any); the value starts after ':'.
 */
struct field {
	size_t start, end;
	size_t name_len;
	size_t value;       /* offset of the value */
	int is_field;       /* 0: a line that is not a field (kept verbatim) */
};

/* The field at *pos; 0 at the end of the block. */
static int
next_field(const char *h, size_t len, size_t *pos, struct field *f)
{
	size_t off = *pos;

	if (off >= len)
		return 0;
	const char *lf = memchr(h + off, '\n', len - off);
	size_t end = lf != NULL ? (size_t)(lf - h) + 1 : len;

	memset(f, 0, sizeof(*f));
	f->start = off;
	f->is_field = field_start(h + off, end - off, &f->name_len);
	if (f->is_field) {
		f->value = off + f->name_len;
		while (h[f->value] != ':')
			f->value++;
		f->value++;
		/* continuation lines belong to this field */
		while (end < len && (h[end] == ' ' || h[end] == '\t')) {
			lf = memchr(h + end, '\n', len - end);
			end = lf != NULL ? (size_t)(lf - h) + 1 : len;
		}
	}
	f->end = end;
	*pos = end;
	return 1;
}

static int
field_is(const char *h, const struct field *f, const char *name)
{
	return f->is_field && f->name_len == strlen(name)
	    && strncasecmp(h + f->start, name, f->name_len) == 0;
}

/* --- address lists ---------------------------------------------------------- */

struct alist {
	const char *origin;
	char ***addrs;
	struct buf spec;     /* addr-spec tokens outside <>, no white space */
	struct buf angle;    /* tokens inside <> */
	int in_angle;
	int saw_angle;
	int prev_word;       /* the last spec token was a word */
	int gap;             /* white space or a comment since that word */
	int phrase;          /* two words in a row: a display name */
	int in_group;
};

static void
alist_reset(struct alist *a)
{
	buf_reset(&a->spec);
	buf_reset(&a->angle);
	a->in_angle = a->saw_angle = a->prev_word = a->gap = a->phrase = 0;
}

/* Qualify and validate one address; xmalloc'd result or NULL. */
static char *
qualify(const char *addr, const char *origin)
{
	char *local = NULL, *domain = NULL, *res;

	addr_split(addr, &local, &domain);
	if (local[0] == '\0')
		res = NULL;
	else if (domain[0] == '\0' && strchr(addr, '@') == NULL)
		res = xasprintf("%s@%s", local, origin != NULL && *origin ? origin : "localhost");
	else
		res = xstrdup(addr);
	free(local);
	free(domain);
	if (res != NULL && addr_valid(res, 1) < 0)
		xfree(&res);
	return res;
}

static int
alist_flush(struct alist *a, const char **err_r)
{
	const char *addr;
	char *q;

	if (a->in_angle) {
		*err_r = "missing '>'";
		return -1;
	}
	if (a->saw_angle) {
		addr = buf_cstr(&a->angle);
		/* RFC 5322 obs-route: "@a,@b:user@domain" */
		if (addr[0] == '@') {
			const char *colon = strchr(addr, ':');
			if (colon == NULL) {
				*err_r = "bad route address";
				return -1;
			}
			addr = colon + 1;
		}
	} else {
		if (a->phrase) {
			*err_r = "display name without <address>";
			return -1;
		}
		addr = buf_cstr(&a->spec);
	}
	if (*addr != '\0') {
		if ((q = qualify(addr, a->origin)) == NULL) {
			*err_r = "bad address syntax";
			return -1;
		}
		strv_push(a->addrs, q);
		free(q);
	}
	alist_reset(a);
	return 0;
}

/* Append token text to the part being collected. */
static void
alist_token(struct alist *a, const char *p, size_t n, int word)
{
	if (a->in_angle) {
		(void)buf_append(&a->angle, p, n);
		return;
	}
	if (a->saw_angle)
		return;    /* text after <addr>: ignored, as readers do */
	if (word && a->prev_word && a->gap)
		a->phrase = 1;
	(void)buf_append(&a->spec, p, n);
	a->prev_word = word;
	a->gap = 0;
}

int
submit_addr_list(const char *s, size_t n, const char *origin, char ***addrs,
    const char **err_r)
{
	struct alist a;
	size_t i = 0, j;
	int rc = -1, depth;
	const char *err = "bad address syntax";

	memset(&a, 0, sizeof(a));
	a.origin = origin;
	a.addrs = addrs;
	buf_init(&a.spec, 0);
	buf_init(&a.angle, 0);
	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case ' ': case '\t': case '\r': case '\n':
			a.gap = 1;
			i++;
			break;
		case '(':
			depth = 0;
			for (j = i; j < n; j++) {
				if (s[j] == '\\' && j + 1 < n) {
					j++;
				} else if (s[j] == '(') {
					if (++depth > COMMENT_DEPTH_MAX)
						goto fail;
				} else if (s[j] == ')' && --depth == 0) {
					break;
				}
			}
			if (j >= n) {
				err = "unterminated comment";
				goto fail;
			}
			a.gap = 1;
			i = j + 1;
			break;
		case '"':
			for (j = i + 1; j < n && s[j] != '"'; j++)
				if (s[j] == '\\' && j + 1 < n)
					j++;
			if (j >= n) {
				err = "unterminated quoted string";
				goto fail;
			}
			alist_token(&a, s + i, j + 1 - i, 1);
			i = j + 1;
			break;
		case '[':
			for (j = i + 1; j < n && s[j] != ']'; j++)
				if (s[j] == '\\' && j + 1 < n)
					j++;
			if (j >= n) {
				err = "unterminated domain literal";
				goto fail;
			}
			alist_token(&a, s + i, j + 1 - i, 1);
			i = j + 1;
			break;
		case '<':
			if (a.in_angle || a.saw_angle) {
				err = "unexpected '<'";
				goto fail;
			}
			a.in_angle = a.saw_angle = 1;
			i++;
			break;
		case '>':
			if (!a.in_angle) {
				err = "unexpected '>'";
				goto fail;
			}
			a.in_angle = 0;
			i++;
			break;
		case ',':
			if (a.in_angle) {   /* obs-route "<@a,@b:u@d>" */
				alist_token(&a, ",", 1, 0);
				i++;
				break;
			}
			if (alist_flush(&a, &err) < 0)
				goto fail;
			i++;
			break;
		case ':':
			if (a.in_angle) {
				alist_token(&a, ":", 1, 0);
				i++;
				break;
			}
			if (a.in_group || a.saw_angle) {
				err = "unexpected ':'";
				goto fail;
			}
			/* group: what came before was its name */
			alist_reset(&a);
			a.in_group = 1;
			i++;
			break;
		case ';':
			if (a.in_angle) {
				err = "unexpected ';'";
				goto fail;
			}
			if (alist_flush(&a, &err) < 0)
				goto fail;
			a.in_group = 0;
			i++;
			break;
		case '.': case '@':
			alist_token(&a, s + i, 1, 0);
			i++;
			break;
		default:
			if (c < ' ' || c == 0x7f || c == ')' || c == '\\' || c == ']') {
				err = "bad character in address";
				goto fail;
			}
			for (j = i; j < n; j++) {
				unsigned char d = (unsigned char)s[j];
				if (d <= ' ' || d == 0x7f || strchr("()<>[]:;@\\,.\"", d) != NULL)
					break;
			}
			alist_token(&a, s + i, j - i, 1);
			i = j;
			break;
		}
	}
	if (alist_flush(&a, &err) < 0)
		goto fail;
	rc = 0;
fail:
	if (rc < 0 && err_r != NULL)
		*err_r = err;
	buf_free(&a.spec);
	buf_free(&a.angle);
	return rc;
}

char *
submit_addr_normalize(const char *s, const char *origin, int allow_null)
{
	char **list = NULL, *res = NULL;
	const char *err;
	size_t n = strlen(s);

	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || (n == 2 && s[0] == '<' && s[1] == '>'))
		return allow_null ? xstrdup("") : NULL;
	if (submit_addr_list(s, n, origin, &list, &err) == 0 && strv_len(list) == 1)
		res = xstrdup(list[0]);
	strv_free(&list);
	return res;
}

/* --- -t ----------------------------------------------------------------------- */

int
submit_extract_rcpts(const char *hdr, size_t len, const char *origin,
    char ***rcpts, char **err_r)
{
	static const char *const plain[] = { "To", "Cc", "Bcc" };
	static const char *const resent[] = { "Resent-To", "Resent-Cc", "Resent-Bcc" };
	const char *const *names = plain;
	struct field f;
	size_t pos = 0, i;
	const char *err;

	while (next_field(hdr, len, &pos, &f))
		for (i = 0; i < 3; i++)
			if (field_is(hdr, &f, resent[i]))
				names = resent;
	pos = 0;
	while (next_field(hdr, len, &pos, &f)) {
		for (i = 0; i < 3; i++) {
			if (!field_is(hdr, &f, names[i]))
				continue;
			if (submit_addr_list(hdr + f.value, f.end - f.value, origin,
			    rcpts, &err) < 0) {
				size_t vl = f.end - f.value;
				const char *v = hdr + f.value;
				while (vl > 0 && (*v == ' ' || *v == '\t')) {
					v++;
					vl--;
				}
				while (vl > 0 && (v[vl - 1] == '\n' || v[vl - 1] == '\r'))
					vl--;
				if (vl > 100)
					vl = 100;
				if (err_r != NULL) {
					char *shown = xstrndup(v, vl);
					for (char *c = shown; *c; c++)
						if ((unsigned char)*c < ' ')
							*c = ' ';
					*err_r = xasprintf("%s in %s: header: %s", err, names[i], shown);
					free(shown);
				}
				return -1;
			}
		}
	}
	return 0;
}

/* --- the rewrite -------------------------------------------------------------- */

void
submit_date(time_t t, char *out, size_t n)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(out, n, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0 && n > 0)
		out[0] = '\0';
}

static int
is_atext_phrase(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!(isalnum(c) || c == ' ' || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c)))
			return 0;
	}
	return 1;
}

static void
put_display_name(struct buf *b, const char *name)
{
	char *clean = xstrndup(name, FULLNAME_MAX);

	for (char *c = clean; *c; c++)
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			*c = ' ';
	str_trim(clean);
	if (*clean == '\0') {
		free(clean);
		return;
	}
	if (is_atext_phrase(clean)) {
		buf_puts(b, clean);
	} else {
		buf_putc(b, '"');
		for (char *c = clean; *c; c++) {
			if (*c == '"' || *c == '\\')
				buf_putc(b, '\\');
			buf_putc(b, *c);
		}
		buf_putc(b, '"');
	}
	buf_putc(b, ' ');
	free(clean);
}

int
submit_header_rewrite(const char *hdr, size_t len, const struct submit_info *si,
    struct submit_out *out, char **err_r)
{
	struct field f;
	size_t pos = 0;
	int seen_from = 0, seen_date = 0, seen_msgid = 0;
	char date[80], stamp[32];
	struct tm tm;

	buf_init(&out->header, 0);
	out->rcpts = NULL;
	out->message_id = NULL;
	if (si->extract && submit_extract_rcpts(hdr, len, si->origin,
	    &out->rcpts, err_r) < 0)
		return -1;

	submit_date(si->now, date, sizeof(date));
	buf_printf(&out->header, "Received: by %s (%s, from userid %ld)\n\tid %s; %s\n",
	    si->hostname, si->mail_name ? si->mail_name : "Postern", si->uid,
	    si->queue_id ? si->queue_id : "", date);

	while (next_field(hdr, len, &pos, &f)) {
		if (f.start == 0 && is_mbox_from(hdr, f.end))
			continue;
		if (field_is(hdr, &f, "Bcc") || field_is(hdr, &f, "Resent-Bcc"))
			continue;
		if (field_is(hdr, &f, "From"))
			seen_from = 1;
		else if (field_is(hdr, &f, "Date"))
			seen_date = 1;
		else if (field_is(hdr, &f, "Message-ID")) {
			seen_msgid = 1;
			if (out->message_id == NULL) {
				const char *v = hdr + f.value;
				size_t vl = f.end - f.value;
				while (vl > 0 && (*v == ' ' || *v == '\t')) {
					v++;
					vl--;
				}
				while (vl > 0 && isspace((unsigned char)v[vl - 1]))
					vl--;
				out->message_id = xstrndup(v, vl < MSGID_MAX ? vl : MSGID_MAX);
				for (char *c = out->message_id; *c; c++)
					if ((unsigned char)*c < ' ' || (unsigned char)*c > '~')
						*c = '?';
			}
		}
		(void)buf_append(&out->header, hdr + f.start, f.end - f.start);
		if (hdr[f.end - 1] != '\n')
			buf_putc(&out->header, '\n');
	}

	if (!seen_from) {
		buf_puts(&out->header, "From: ");
		if (si->fullname != NULL && *si->fullname != '\0') {
			put_display_name(&out->header, si->fullname);
			buf_printf(&out->header, "<%s>\n",
			    *si->sender ? si->sender : "MAILER-DAEMON");
		} else {
			buf_printf(&out->header, "%s\n",
			    *si->sender ? si->sender : "MAILER-DAEMON");
		}
	}
	if (!seen_date)
		buf_printf(&out->header, "Date: %s\n", date);
	if (!seen_msgid) {
		gmtime_r(&si->now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		free(out->message_id);
		out->message_id = xasprintf("<%s.%s@%s>", stamp,
		    si->queue_id ? si->queue_id : "", si->hostname);
		buf_printf(&out->header, "Message-ID: %s\n", out->message_id);
	}
	return 0;
}

void
submit_out_free(struct submit_out *out)
{
	buf_free(&out->header);
	strv_free(&out->rcpts);
	xfree(&out->message_id);
}

char *
submit_gecos_name(const char *gecos, const char *login)
{
	struct buf b = BUF_INIT(0);
	size_t n = strcspn(gecos, ",");

	for (size_t i = 0; i < n && b.len < FULLNAME_MAX; i++) {
		if (gecos[i] == '&') {
			if (login[0] != '\0') {
				buf_putc(&b, toupper((unsigned char)login[0]));
				buf_puts(&b, login + 1);
			}
		} else {
			buf_putc(&b, gecos[i]);
		}
	}
	return b.len > 0 ? buf_steal(&b) : xstrdup("");
}
