/*
 * pop3 - POP3 command parsing and message encoding; see pop3.h.
 *
 * Invariants: no I/O, no allocation in the parser (arguments are borrowed
 * from the line); every argument and count is bounded; the encoder is a
 * byte-at-a-time state machine, so its output is the same for any split
 * of the message (fuzz_pop3 checks it).
 * LIMITS: APOP is recognised (so it gets a clean -ERR) but not offered.
 */
#include <string.h>
#include <strings.h>

#include "proto/pop3.h"

#define A POP3_ST_AUTH
#define T POP3_ST_TRANS

const struct pop3_verb_info pop3_verbs[POP3_VERB_COUNT] = {
	[POP3_UNKNOWN] = { "",     POP3_UNKNOWN, A | T, 0, 2 },
	[POP3_USER]    = { "USER", POP3_USER, A, 1, 1 },
	[POP3_PASS]    = { "PASS", POP3_PASS, A, 1, -1 },
	[POP3_APOP]    = { "APOP", POP3_APOP, A, 2, 2 },
	[POP3_AUTH]    = { "AUTH", POP3_AUTH, A, 0, 2 },
	[POP3_STLS]    = { "STLS", POP3_STLS, A, 0, 0 },
	[POP3_CAPA]    = { "CAPA", POP3_CAPA, A | T, 0, 0 },
	[POP3_UTF8]    = { "UTF8", POP3_UTF8, A, 0, 0 },
	[POP3_STAT]    = { "STAT", POP3_STAT, T, 0, 0 },
	[POP3_LIST]    = { "LIST", POP3_LIST, T, 0, 1 },
	[POP3_RETR]    = { "RETR", POP3_RETR, T, 1, 1 },
	[POP3_DELE]    = { "DELE", POP3_DELE, T, 1, 1 },
	[POP3_NOOP]    = { "NOOP", POP3_NOOP, T, 0, 0 },
	[POP3_RSET]    = { "RSET", POP3_RSET, T, 0, 0 },
	[POP3_QUIT]    = { "QUIT", POP3_QUIT, A | T, 0, 0 },
	[POP3_TOP]     = { "TOP",  POP3_TOP, T, 2, 2 },
	[POP3_UIDL]    = { "UIDL", POP3_UIDL, T, 0, 1 },
};

#undef A
#undef T

static const struct pop3_verb_info *
verb_lookup(const char *w, size_t len)
{
	for (int i = 1; i < POP3_VERB_COUNT; i++)
		if (strlen(pop3_verbs[i].name) == len
		    && strncasecmp(pop3_verbs[i].name, w, len) == 0)
			return &pop3_verbs[i];
	return &pop3_verbs[POP3_UNKNOWN];
}

enum pop3_result
pop3_cmd_parse(const char *line, size_t len, struct pop3_cmd *cmd, const char **err_r)
{
	size_t i = 0, kw;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = &pop3_verbs[POP3_UNKNOWN];
	for (size_t k = 0; k < len; k++) {
		unsigned char ch = (unsigned char)line[k];
		if (ch < 0x20 || ch == 0x7f) {
			*err_r = "Invalid characters in command";
			return POP3_ERROR;
		}
	}
	while (i < len && line[i] != ' ')
		i++;
	kw = i;
	if (kw == 0) {
		*err_r = "Empty command";
		return POP3_ERROR;
	}
	if (kw > POP3_ARG_MAX) {
		*err_r = "Command too long";
		return POP3_ERROR;
	}
	cmd->verb = verb_lookup(line, kw);
	if (cmd->verb->verb == POP3_UNKNOWN)
		return POP3_DONE;
	if (i < len)
		i++;   /* the one space after the keyword */
	if (cmd->verb->max_args < 0) {
		/* PASS: the rest is the password, spaces and all. */
		if (i >= len) {
			*err_r = "Missing argument";
			return POP3_ERROR;
		}
		cmd->argc = 1;
		cmd->argv[0].p = line + i;
		cmd->argv[0].len = len - i;
		return POP3_DONE;
	}
	while (i < len) {
		size_t start = i;
		while (i < len && line[i] != ' ')
			i++;
		if (i == start) {
			*err_r = "Invalid arguments";  /* two spaces, or a trailing one */
			return POP3_ERROR;
		}
		if (cmd->argc >= cmd->verb->max_args || cmd->argc >= 2) {
			*err_r = "Too many arguments";
			return POP3_ERROR;
		}
		/* AUTH's initial response is base64, bounded by the line. */
		if (i - start > POP3_ARG_MAX
		    && !(cmd->verb->verb == POP3_AUTH && cmd->argc == 1)) {
			*err_r = "Argument too long";
			return POP3_ERROR;
		}
		cmd->argv[cmd->argc].p = line + start;
		cmd->argv[cmd->argc].len = i - start;
		cmd->argc++;
		if (i < len) {
			i++;
			if (i == len) {
				*err_r = "Invalid arguments";
				return POP3_ERROR;
			}
		}
	}
	if (cmd->argc < cmd->verb->min_args) {
		*err_r = "Missing argument";
		return POP3_ERROR;
	}
	return POP3_DONE;
}

enum pop3_result
pop3_cmd_accept(const char *line, size_t len, unsigned state, struct pop3_cmd *cmd,
    const char **err_r)
{
	if (pop3_cmd_parse(line, len, cmd, err_r) != POP3_DONE)
		return POP3_ERROR;
	if (cmd->verb->verb == POP3_UNKNOWN) {
		*err_r = "Unknown command";
		return POP3_ERROR;
	}
	if (!(cmd->verb->states & state)) {
		*err_r = state == POP3_ST_AUTH ? "Unknown command in AUTHORIZATION state"
		    : "Unknown command in TRANSACTION state";
		return POP3_ERROR;
	}
	return POP3_DONE;
}

int
pop3_number(const struct pop3_arg *a, unsigned long *n_r)
{
	unsigned long n = 0;

	if (a->len == 0 || a->len > 9)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		if (a->p[i] < '0' || a->p[i] > '9')
			return -1;
		n = n * 10 + (unsigned long)(a->p[i] - '0');
	}
	*n_r = n;
	return 0;
}

void
pop3_enc_init(struct pop3_enc *e, int stuff, long body_lines)
{
	memset(e, 0, sizeof(*e));
	e->stuff = stuff;
	e->body_lines = body_lines;
	e->bol = 1;
	e->hdr_empty = 1;
}

static int
put(struct buf *out, const char *p, size_t n)
{
	return out == NULL ? 0 : buf_append(out, p, n);
}

/* A line has ended (CRLF emitted): track header/body and TOP's count. */
static void
line_end(struct pop3_enc *e)
{
	if (!e->in_body) {
		if (e->hdr_empty)
			e->in_body = 1;
		e->hdr_empty = 1;
	} else if (e->body_lines >= 0) {
		e->body_lines--;
	}
	e->bol = 1;
	if (e->in_body && e->body_lines == 0)
		e->done = 1;
}

long long
pop3_enc_feed(struct pop3_enc *e, const char *in, size_t n, struct buf *out)
{
	long long produced = 0;
	size_t i = 0;

	while (i < n && !e->done) {
		char ch = in[i];
		if (e->cr) {
			/* A held CR: CRLF is one line end, anything else keeps the
			 * CR as content. */
			e->cr = 0;
			if (ch == '\n') {
				if (put(out, "\r\n", 2) < 0)
					return -1;
				produced += 2;
				i++;
				line_end(e);
				continue;
			}
			if (put(out, "\r", 1) < 0)
				return -1;
			produced++;
			e->bol = 0;
			e->hdr_empty = 0;
			continue;   /* ch is looked at again */
		}
		if (ch == '\r') {
			e->cr = 1;
			i++;
			continue;
		}
		if (ch == '\n') {
			if (put(out, "\r\n", 2) < 0)
				return -1;
			produced += 2;
			i++;
			line_end(e);
			continue;
		}
		if (e->bol && ch == '.' && e->stuff) {
			if (put(out, ".", 1) < 0)
				return -1;
			produced++;
		}
		/* Copy the run of plain bytes up to the next CR or LF. */
		size_t j = i;
		while (j < n && in[j] != '\r' && in[j] != '\n')
			j++;
		if (put(out, in + i, j - i) < 0)
			return -1;
		produced += (long long)(j - i);
		i = j;
		e->bol = 0;
		e->hdr_empty = 0;
	}
	return produced;
}

long long
pop3_enc_finish(struct pop3_enc *e, struct buf *out)
{
	long long produced = 0;

	if (e->done)
		return 0;
	if (e->cr) {
		e->cr = 0;
		if (put(out, "\r", 1) < 0)
			return -1;
		produced++;
		e->bol = 0;
	}
	if (!e->bol) {
		if (put(out, "\r\n", 2) < 0)
			return -1;
		produced += 2;
		e->bol = 1;
	}
	return produced;
}

long long
pop3_wire_size(const char *msg, size_t n)
{
	struct pop3_enc e;
	long long a, b;

	pop3_enc_init(&e, 0, -1);
	a = pop3_enc_feed(&e, msg, n, NULL);
	b = pop3_enc_finish(&e, NULL);
	return a < 0 || b < 0 ? -1 : a + b;
}

void
pop3_capa(struct buf *out, unsigned flags, const char *sasl_mechs)
{
	(void)buf_puts(out, "+OK Capability list follows\r\n"
	    "CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n");
	if (flags & POP3_CAPA_USER)
		(void)buf_puts(out, "USER\r\n");
	if (flags & POP3_CAPA_SASL)
		(void)buf_printf(out, "SASL %s\r\n", sasl_mechs);
	if (flags & POP3_CAPA_STLS)
		(void)buf_puts(out, "STLS\r\n");
	(void)buf_puts(out, "UTF8\r\n.\r\n");
}

/* --- UIDL ------------------------------------------------------------------ */

int
pop3_uidl_format(struct buf *out, const char *fmt, uint32_t uid,
    uint32_t uidvalidity, const char *base)
{
	int unique = 0;

	for (const char *p = fmt; *p != '\0'; p++) {
		unsigned width = 0;
		int hex = 0, zero = 0;
		uint32_t v;

		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127)
			return -1;     /* RFC 1939: 0x21..0x7E */
		if (*p != '%') {
			buf_putc(out, *p);
			continue;
		}
		p++;
		if (*p == '%') {
			buf_putc(out, '%');
			continue;
		}
		if (*p == '0') {
			zero = 1;
			p++;
		}
		while (*p >= '0' && *p <= '9' && width < 100)
			width = width * 10 + (unsigned)(*p++ - '0');
		if (width > 32 || (width > 0 && !zero))
			return -1;     /* space padding: not in a UIDL */
		if (*p == 'X') {
			hex = 1;
			p++;
		}
		if (*p == 'f' && width == 0 && !hex && !zero) {
			for (const char *b = base; *b != '\0' && *b != ':'; b++)
				if ((unsigned char)*b > ' ' && (unsigned char)*b < 127)
					buf_putc(out, *b);
			unique = 1;
			continue;
		}
		if (*p != 'u' && *p != 'v')
			return -1;
		unique |= *p == 'u';
		v = *p == 'u' ? uid : uidvalidity;
		if (hex)
			buf_printf(out, "%0*x", (int)width, (unsigned)v);
		else
			buf_printf(out, "%0*u", (int)width, (unsigned)v);
	}
	return unique ? 0 : -1;
}
