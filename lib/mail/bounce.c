/*
 * bounce - compose delivery status notifications and the per-message
 * bounce/defer log lines.
 *
 * The notification (a failure, or with delayed a warning that the
 * message is still being tried) is an RFC 6522 multipart/report with
 * report-type delivery-status: a human-readable text part, an RFC 3464
 * message/delivery-status part, and the original header
 * (text/rfc822-headers) or, with RET=FULL, the whole original
 * (message/rfc822). Composition is pure: no clock, no files, no config.
 *
 * Invariants: every output line ends in LF and is at most BOUNCE_LINE_MAX
 * octets; the boundary never occurs in the embedded content (checked, the
 * caller picks another one otherwise); recipient texts and log fields
 * never carry control characters into the output.
 *
 * Trusts: nothing in the original message or the recipient texts (they
 * come from remote servers); the caller's hostname, IDs and dates are
 * taken as given.
 *
 * LIMITS: SMTPUTF8 addresses are reported with address type rfc822 in a
 * plain message/delivery-status (RFC 6533's global types are not used).
 * A word longer than a line is broken where it must be, possibly inside a
 * UTF-8 sequence only if no boundary is found within 3 octets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "mail/bounce.h"

#define WRAP_WIDTH 76
#define INDENT "    "

/* Text output with folding. */

static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Where to cut a run of at most room octets of p so that a UTF-8
 * sequence is not split, when possible. */
static size_t
utf8_cut(const char *p, size_t room)
{
	size_t cut = room, back;

	for (back = 0; back < 3 && cut > 1; back++) {
		if (((unsigned char)p[cut] & 0xc0) != 0x80)
			return cut;
		cut--;
	}
	return ((unsigned char)p[cut] & 0xc0) != 0x80 ? cut : room;
}

/*
 * Append prefix and text word by word, breaking lines before WRAP_WIDTH
 * when a word would cross it and continuing with INDENT. Control
 * characters count as spaces, runs of spaces collapse. A word too long for
 * even an empty line is cut at BOUNCE_LINE_MAX. Ends with LF. The prefix
 * goes through the same mill, so a huge address cannot make a long line.
 */
static void
put_wrapped(struct buf *out, const char *prefix, const char *text)
{
	const size_t ilen = sizeof(INDENT) - 1;
	struct buf all = BUF_INIT(0);
	const char *p;
	size_t col = 0, wlen, cut;
	int fresh = 1;           /* nothing on this line after the indent yet */

	buf_puts(&all, prefix);
	buf_puts(&all, text != NULL ? text : "");
	p = buf_cstr(&all);
	for (;;) {
		while (*p != '\0' && (*p == ' ' || is_ctl((unsigned char)*p)))
			p++;
		if (*p == '\0')
			break;
		for (wlen = 0; p[wlen] != '\0' && p[wlen] != ' ' &&
		    !is_ctl((unsigned char)p[wlen]); wlen++)
			;
		if (!fresh && col + 1 + wlen > WRAP_WIDTH) {
			buf_puts(out, "\n" INDENT);
			col = ilen;
			fresh = 1;
		}
		if (!fresh) {
			buf_putc(out, ' ');
			col++;
		}
		while (col + wlen > BOUNCE_LINE_MAX) {
			cut = utf8_cut(p, BOUNCE_LINE_MAX - col);
			buf_append(out, p, cut);
			buf_puts(out, "\n" INDENT);
			col = ilen;
			p += cut;
			wlen -= cut;
		}
		buf_append(out, p, wlen);
		col += wlen;
		p += wlen;
		fresh = 0;
	}
	buf_putc(out, '\n');
	buf_free(&all);
}

/* A DSN field "Name: value" folded like a header. */
static void
put_field(struct buf *out, const char *name, const char *value)
{
	struct buf pre = BUF_INIT(0);

	buf_printf(&pre, "%s: ", name);
	put_wrapped(out, buf_cstr(&pre), value);
	buf_free(&pre);
}

static void
put_field2(struct buf *out, const char *name, const char *type, const char *value)
{
	struct buf v = BUF_INIT(0);

	buf_printf(&v, "%s; %s", type, value);
	put_field(out, name, buf_cstr(&v));
	buf_free(&v);
}

static int
has_8bit(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

/* Validation. */

static int
digits(const char **pp, size_t max)
{
	const char *p = *pp;
	size_t n = 0;

	while (*p >= '0' && *p <= '9') {
		p++;
		n++;
	}
	*pp = p;
	return n >= 1 && n <= max;
}

/* An RFC 3463 status "class.subject.detail" of a failure (4 or 5). */
static int
dsn_failure_ok(const char *s)
{
	const char *p = s;

	if (s == NULL || (s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	p = s + 2;
	if (!digits(&p, 3) || *p++ != '.' || !digits(&p, 3))
		return 0;
	return *p == '\0';
}

/* RFC 2046 bchars, not ending in a space. */
static int
boundary_ok(const char *b)
{
	static const char extra[] = "'()+_,-./:=? ";
	size_t n, i;

	if (b == NULL)
		return 0;
	n = strlen(b);
	if (n == 0 || n > BOUNCE_BOUNDARY_MAX || b[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z') || strchr(extra, c) != NULL))
			return 0;
	}
	return 1;
}

/* Header-safe: no control characters, not empty. */
static int
field_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (is_ctl((unsigned char)*s))
			return 0;
	return 1;
}

/* The original message. */

/* Length of the header section of p (up to, not including, the first
 * empty line; all of p when there is none). */
static size_t
header_len(const char *p, size_t n)
{
	size_t i = 0, eol;
	const char *nl;

	while (i < n) {
		nl = memchr(p + i, '\n', n - i);
		eol = nl != NULL ? (size_t)(nl - p) : n;
		if (eol == i || (eol == i + 1 && p[i] == '\r'))
			return i;
		i = nl != NULL ? eol + 1 : n;
	}
	return n;
}

/* Copy n octets of p with LF line ends, breaking lines over the limit
 * (header lines continue with a TAB, so they stay one field). Always ends
 * with LF. */
static void
put_orig(struct buf *out, const char *p, size_t n)
{
	size_t hdr = header_len(p, n), i = 0, eol, len, cut;
	const char *nl;

	while (i < n) {
		nl = memchr(p + i, '\n', n - i);
		eol = nl != NULL ? (size_t)(nl - p) : n;
		len = eol - i;
		if (len > 0 && nl != NULL && p[eol - 1] == '\r')
			len--;
		while (len > BOUNCE_LINE_MAX) {
			cut = utf8_cut(p + i, BOUNCE_LINE_MAX - 1);
			buf_append(out, p + i, cut);
			buf_puts(out, i < hdr ? "\n\t" : "\n");
			i += cut;
			len -= cut;
		}
		buf_append(out, p + i, len);
		buf_putc(out, '\n');
		i = nl != NULL ? eol + 1 : n;
	}
}

/* Display form of an original recipient: without an "rfc822;" type. */
static const char *
orig_display(const char *orig)
{
	const char *semi;

	if (orig == NULL)
		return "";
	semi = strchr(orig, ';');
	if (semi != NULL && (size_t)(semi - orig) == 6 &&
	    strncasecmp(orig, "rfc822", 6) == 0) {
		semi++;
		while (*semi == ' ')
			semi++;
		return semi;
	}
	return orig;
}

/* Parts. */

static void
put_text_part(struct buf *t, const struct bounce_info *in)
{
	struct buf pre = BUF_INIT(0);
	const struct bounce_rcpt *r;
	const char *od;
	size_t i;

	buf_printf(t, "This is the mail system at host %s.\n\n", in->myhostname);
	if (in->to != NULL)
		buf_puts(t,
		    "A message with the null sender (a delivery notification)\n"
		    "could not be delivered to the recipients listed below, and\n"
		    "there is nobody to return it to, so it is reported to you.\n\n");
	else if (in->delayed)
		buf_puts(t,
		    "####################################################################\n"
		    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
		    "####################################################################\n\n"
		    "Your message could not be delivered yet to the recipients\n"
		    "listed below. This system keeps trying; you will be told if it\n"
		    "gives up. The reasons are listed below, and the message header\n"
		    "is attached at the end.\n\n");
	else if (in->expired)
		buf_puts(t,
		    "Your message stayed in the queue longer than this system\n"
		    "keeps trying, and could not be delivered to the recipients\n"
		    "listed below.\n\n");
	else
		buf_puts(t,
		    "Your message could not be delivered to one or more of its\n"
		    "recipients. The reasons are listed below, and the message\n"
		    "header (or the whole message) is attached at the end.\n\n");
	buf_printf(t,
	    "If you need help, write to postmaster@%s and include this\n"
	    "report.\n\n"
	    "                   The mail system\n\n", in->myhostname);
	for (i = 0; i < in->nrcpt; i++) {
		r = &in->rcpts[i];
		buf_reset(&pre);
		od = orig_display(r->orig);
		if (*od != '\0' && strcmp(od, r->addr) != 0)
			buf_printf(&pre, "<%s> (expanded from <%s>): ", r->addr, od);
		else
			buf_printf(&pre, "<%s>: ", r->addr);
		put_wrapped(t, buf_cstr(&pre), r->text);
		buf_putc(t, '\n');
	}
	buf_free(&pre);
}

static void
put_status_part(struct buf *t, const struct bounce_info *in)
{
	const struct bounce_rcpt *r;
	struct buf v = BUF_INIT(0);
	const char *reply, *od;
	size_t i, rlen, hlen;

	put_field2(t, "Reporting-MTA", "dns", in->myhostname);
	put_field(t, "X-Postern-Queue-ID", in->queue_id);
	if (*in->sender != '\0')
		put_field2(t, "X-Postern-Sender", "rfc822", in->sender);
	if (in->envid != NULL && *in->envid != '\0')
		put_field(t, "Original-Envelope-Id", in->envid);
	if (in->arrival_date != NULL && *in->arrival_date != '\0')
		put_field(t, "Arrival-Date", in->arrival_date);
	for (i = 0; i < in->nrcpt; i++) {
		r = &in->rcpts[i];
		buf_putc(t, '\n');
		put_field2(t, "Final-Recipient", "rfc822", r->addr);
		if (r->orig != NULL && *r->orig != '\0') {
			od = orig_display(r->orig);
			if (od != r->orig)
				put_field(t, "Original-Recipient", r->orig);
			else
				put_field2(t, "Original-Recipient", "rfc822", r->orig);
		}
		if (in->delayed) {
			put_field(t, "Action", "delayed");
			put_field(t, "Status", dsn_failure_ok(r->dsn) && r->dsn[0] == '4' ?
			    r->dsn : "4.0.0");
		} else {
			put_field(t, "Action", "failed");
			put_field(t, "Status", dsn_failure_ok(r->dsn) ? r->dsn : "5.0.0");
		}
		if (r->is_smtp && r->relay != NULL && *r->relay != '\0' &&
		    strcmp(r->relay, "none") != 0 && strcmp(r->relay, "local") != 0) {
			hlen = strcspn(r->relay, "[:");
			if (hlen > 0) {
				buf_reset(&v);
				buf_append(&v, r->relay, hlen);
				put_field2(t, "Remote-MTA", "dns", buf_cstr(&v));
			}
		}
		buf_reset(&v);
		if (r->is_smtp) {
			reply = bounce_smtp_reply(r->text != NULL ? r->text : "", &rlen);
			buf_puts(&v, "smtp; ");
			buf_append(&v, reply, rlen);
		} else {
			buf_printf(&v, "x-unix; %s", r->text != NULL ? r->text : "");
		}
		put_field(t, "Diagnostic-Code", buf_cstr(&v));
		if (in->delayed && in->retry_until != NULL && *in->retry_until != '\0')
			put_field(t, "Will-Retry-Until", in->retry_until);
	}
	buf_free(&v);
}

static void
put_part_header(struct buf *out, const char *boundary, const char *descr,
    const char *type, int eightbit)
{
	buf_printf(out, "\n--%s\n", boundary);
	buf_printf(out, "Content-Description: %s\n", descr);
	buf_printf(out, "Content-Type: %s\n", type);
	if (eightbit)
		buf_puts(out, "Content-Transfer-Encoding: 8bit\n");
	buf_putc(out, '\n');
}

int
bounce_compose(struct buf *out, const struct bounce_info *in, const char **err_r)
{
	struct buf text = BUF_INIT(0), status = BUF_INIT(0), msg = BUF_INIT(0);
	struct buf all = BUF_INIT(0);
	const char *err = NULL;
	size_t olen, i, blen;
	int text8, status8, orig8;

	if (in == NULL || !field_ok(in->myhostname) || !field_ok(in->queue_id) ||
	    !field_ok(in->date) || !field_ok(in->message_id)) {
		err = "missing or invalid notification fields";
		goto done;
	}
	if (in->to != NULL ? !field_ok(in->to) || in->sender == NULL ||
	    (*in->sender != '\0' && !field_ok(in->sender)) :
	    !field_ok(in->sender)) {
		err = "no sender to notify";
		goto done;
	}
	if (in->rcpts == NULL || in->nrcpt == 0) {
		err = "no failed recipients";
		goto done;
	}
	for (i = 0; i < in->nrcpt; i++)
		if (!field_ok(in->rcpts[i].addr)) {
			err = "invalid recipient address";
			goto done;
		}
	if (!boundary_ok(in->boundary)) {
		err = "invalid MIME boundary";
		goto done;
	}
	if (in->delayed && in->retry_until != NULL && !field_ok(in->retry_until)) {
		err = "invalid notification fields";
		goto done;
	}
	/* A warning returns the header only (RET= is about failures). */
	if (in->orig_msg == NULL)
		olen = 0;
	else if (in->return_full && !in->delayed)
		olen = in->orig_len;
	else
		olen = header_len(in->orig_msg, in->orig_len);

	put_text_part(&text, in);
	put_status_part(&status, in);
	if (olen > 0)
		put_orig(&msg, in->orig_msg, olen);
	blen = strlen(in->boundary);
	if (memmem(text.data, text.len, in->boundary, blen) != NULL ||
	    memmem(status.data, status.len, in->boundary, blen) != NULL ||
	    (msg.len > 0 && memmem(msg.data, msg.len, in->boundary, blen) != NULL)) {
		err = "boundary occurs in the content";
		goto done;
	}
	text8 = has_8bit(text.data, text.len);
	status8 = has_8bit(status.data, status.len);
	orig8 = has_8bit(msg.data, msg.len);

	buf_printf(&all, "Date: %s\n", in->date);
	buf_printf(&all, "From: MAILER-DAEMON@%s (Mail Delivery System)\n",
	    in->myhostname);
	buf_puts(&all, in->to != NULL ? "Subject: Postmaster Copy: Undelivered Mail\n" :
	    in->delayed ? "Subject: Delayed Mail (still being retried)\n" :
	    "Subject: Undelivered Mail Returned to Sender\n");
	put_field(&all, "To", in->to != NULL ? in->to : in->sender);
	buf_puts(&all, "Auto-Submitted: auto-replied\n");
	put_field(&all, "Message-Id", in->message_id);
	buf_puts(&all, "MIME-Version: 1.0\n");
	buf_printf(&all, "Content-Type: multipart/report; report-type=delivery-status;\n"
	    "    boundary=\"%s\"\n", in->boundary);
	buf_printf(&all, "Content-Transfer-Encoding: %s\n",
	    text8 || status8 || orig8 ? "8bit" : "7bit");
	buf_puts(&all, "\nThis is a MIME-encapsulated message.\n");

	put_part_header(&all, in->boundary, "Notification",
	    text8 ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
	    text8);
	buf_append(&all, text.data, text.len);
	put_part_header(&all, in->boundary, "Delivery report",
	    "message/delivery-status", status8);
	buf_append(&all, status.data, status.len);
	if (msg.len > 0) {
		int full = in->return_full && !in->delayed;

		put_part_header(&all, in->boundary,
		    full ? "Undelivered Message" : in->delayed ? "Message Headers" :
		    "Undelivered Message Headers",
		    full ? "message/rfc822" : "text/rfc822-headers", orig8);
		buf_append(&all, msg.data, msg.len);
	}
	buf_printf(&all, "\n--%s--\n", in->boundary);
	if (buf_append(out, all.data, all.len) < 0)
		err = "notification too large";

done:
	buf_free(&text);
	buf_free(&status);
	buf_free(&msg);
	buf_free(&all);
	if (err != NULL) {
		if (err_r != NULL)
			*err_r = err;
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* SMTP replies inside agent texts. */

#define SAID " said: "
#define IN_REPLY " (in reply to "

int
bounce_text_is_smtp(const char *text)
{
	return text != NULL && strstr(text, SAID) != NULL;
}

const char *
bounce_smtp_reply(const char *text, size_t *len_r)
{
	const char *p, *tail, *t;
	size_t len;

	p = strstr(text, SAID);
	if (p == NULL) {
		*len_r = strlen(text);
		return text;
	}
	p += sizeof(SAID) - 1;
	len = strlen(p);
	tail = NULL;
	for (t = strstr(p, IN_REPLY); t != NULL; t = strstr(t + 1, IN_REPLY))
		tail = t;
	if (tail != NULL && len > 0 && p[len - 1] == ')')
		len = (size_t)(tail - p);
	*len_r = len;
	return p;
}

/* C locale names, whatever the environment says. */
static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void
bounce_format_date(time_t t, char *out, size_t outlen)
{
	struct tm tm;
	long off;
	char zone[16];

	if (localtime_r(&t, &tm) == NULL || outlen < 64) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	off = tm.tm_gmtoff / 60;
	snprintf(zone, sizeof(zone), "%c%02ld%02ld", off < 0 ? '-' : '+',
	    (off < 0 ? -off : off) / 60 % 100, (off < 0 ? -off : off) % 60);
	snprintf(out, outlen, "%s, %d %s %d %02d:%02d:%02d %s",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
}

/* Log lines. */

static void
put_log_field(struct buf *out, const char *s)
{
	for (s = s != NULL ? s : ""; *s != '\0'; s++)
		buf_putc(out, is_ctl((unsigned char)*s) ? ' ' : *s);
}

void
bounce_log_bounce_line(struct buf *out, const char *addr, const char *orig,
    const char *dsn, const char *relay, const char *text)
{
	put_log_field(out, addr);
	buf_putc(out, '\t');
	put_log_field(out, orig);
	buf_putc(out, '\t');
	put_log_field(out, dsn);
	buf_putc(out, '\t');
	put_log_field(out, relay);
	buf_putc(out, '\t');
	put_log_field(out, text);
	buf_putc(out, '\n');
}

void
bounce_log_defer_line(struct buf *out, const char *addr, const char *dsn,
    const char *text)
{
	put_log_field(out, addr);
	buf_putc(out, '\t');
	put_log_field(out, dsn);
	buf_putc(out, '\t');
	put_log_field(out, text);
	buf_putc(out, '\n');
}

size_t
bounce_log_split(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *tab;

	if (max == 0)
		return 0;
	fields[n++] = line;
	while (n < max && (tab = strchr(line, '\t')) != NULL) {
		*tab = '\0';
		line = tab + 1;
		fields[n++] = line;
	}
	return n;
}
