/*
 * parse - the Sieve compiler: lexer (RFC 5228 section 8.1), parser
 * (section 8.2) and validation of every command and test against one
 * table of what it takes (tags, positional arguments, tests, block, the
 * extension it needs). The result is a tree run.c walks.
 *
 * Invariants: the source is at most lim.script_max bytes; nesting is at
 * most lim.nest_max; the number of commands and tests at most
 * lim.commands_max; numbers never overflow (checked with the builtins);
 * every string is NUL-free (a NUL in a script is refused). Any error
 * stops the compile with its line number: there is no partial script.
 * ihave (RFC 5463): a block guarded by an ihave of known extensions is
 * checked with them; one naming an unknown extension is parsed but not
 * checked, and ihave is false for it at run time.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"
#include "sieve/sieve_int.h"

void
sieve_limits_default(struct sieve_limits *l)
{
	l->script_max = 1024 * 1024;
	l->nest_max = 32;
	l->commands_max = 10000;
	l->actions_max = 32;
	l->redirects_max = 4;
	l->include_max = 10;
	l->variables_max = 128;
	l->variable_len_max = 4000;
	l->vacation_min_days = 1;
	l->vacation_max_days = 60;
	l->duplicate_max_seconds = 7 * 86400;
}

static const struct {
	const char *name;
	unsigned bit;
} exts[] = {
	{ "fileinto", EXT_FILEINTO }, { "reject", EXT_REJECT },
	{ "ereject", EXT_EREJECT }, { "envelope", EXT_ENVELOPE },
	{ "encoded-character", EXT_ENCODED },
	{ "comparator-i;ascii-numeric", EXT_NUMERIC },
	{ "comparator-i;octet", EXT_OCTET },
	{ "comparator-i;ascii-casemap", EXT_CASEMAP },
	{ "variables", EXT_VARIABLES }, { "imap4flags", EXT_IMAP4FLAGS },
	{ "vacation", EXT_VACATION }, { "copy", EXT_COPY }, { "body", EXT_BODY },
	{ "relational", EXT_RELATIONAL }, { "subaddress", EXT_SUBADDRESS },
	{ "date", EXT_DATE }, { "index", EXT_INDEX }, { "regex", EXT_REGEX },
	{ "include", EXT_INCLUDE }, { "duplicate", EXT_DUPLICATE },
	{ "mailbox", EXT_MAILBOX }, { "ihave", EXT_IHAVE },
	{ "vacation-seconds", EXT_VACATION_SECONDS }, { "environment", EXT_ENVIRONMENT },
	{ "enotify", EXT_ENOTIFY },
};

const char *
sieve_extension_list(void)
{
	static char list[512];

	if (list[0] == '\0')
		for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
			(void)snprintf(list + strlen(list), sizeof(list) - strlen(list),
			    "%s%s", i ? " " : "", exts[i].name);
	return list;
}

unsigned
sv_ext_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strcmp(exts[i].name, name) == 0)
			return exts[i].bit;
	return 0;
}

/* ---- the table ---- */

/* test: 0 none, 1 one test, 2 a test list. pos: positional arguments,
 * 's' string, 'l' string list, 'n' number; a leading '?' makes the first
 * optional (setflag's variable name). */
static const struct spec {
	const char *name;
	int op;
	int is_test;
	unsigned ext;
	const char *tags;       /* " tag tag " */
	const char *pos;
	int test;
	int block;
} specs[] = {
	{ "require", OP_REQUIRE, 0, 0, "", "l", 0, 0 },
	{ "if", OP_IF, 0, 0, "", "", 1, 1 },
	{ "elsif", OP_ELSIF, 0, 0, "", "", 1, 1 },
	{ "else", OP_ELSE, 0, 0, "", "", 0, 1 },
	{ "stop", OP_STOP, 0, 0, "", "", 0, 0 },
	{ "keep", OP_KEEP, 0, 0, " flags ", "", 0, 0 },
	{ "discard", OP_DISCARD, 0, 0, "", "", 0, 0 },
	{ "redirect", OP_REDIRECT, 0, 0, " copy ", "s", 0, 0 },
	{ "fileinto", OP_FILEINTO, 0, EXT_FILEINTO, " copy create flags ", "s", 0, 0 },
	{ "reject", OP_REJECT, 0, EXT_REJECT, "", "s", 0, 0 },
	{ "ereject", OP_EREJECT, 0, EXT_EREJECT, "", "s", 0, 0 },
	{ "vacation", OP_VACATION, 0, EXT_VACATION,
	  " days seconds subject from addresses mime handle ", "s", 0, 0 },
	{ "setflag", OP_SETFLAG, 0, EXT_IMAP4FLAGS, "", "?l", 0, 0 },
	{ "addflag", OP_ADDFLAG, 0, EXT_IMAP4FLAGS, "", "?l", 0, 0 },
	{ "removeflag", OP_REMOVEFLAG, 0, EXT_IMAP4FLAGS, "", "?l", 0, 0 },
	{ "set", OP_SET, 0, EXT_VARIABLES,
	  " lower upper lowerfirst upperfirst quotewildcard length encodeurl ", "ss", 0, 0 },
	{ "include", OP_INCLUDE, 0, EXT_INCLUDE, " personal global once optional ", "s", 0, 0 },
	{ "return", OP_RETURN, 0, EXT_INCLUDE, "", "", 0, 0 },
	{ "global", OP_GLOBAL, 0, EXT_INCLUDE | EXT_VARIABLES, "", "l", 0, 0 },
	{ "error", OP_ERROR, 0, EXT_IHAVE, "", "s", 0, 0 },
	{ "notify", OP_NOTIFY, 0, EXT_ENOTIFY, " from importance options message ", "s", 0, 0 },
#define MATCH_TAGS " is contains matches regex value count comparator "
	{ "address", OP_ADDRESS, 1, 0,
	  MATCH_TAGS "all localpart domain user detail index last ", "ll", 0, 0 },
	{ "header", OP_HEADER, 1, 0, MATCH_TAGS "index last ", "ll", 0, 0 },
	{ "envelope", OP_ENVELOPE, 1, EXT_ENVELOPE,
	  MATCH_TAGS "all localpart domain user detail ", "ll", 0, 0 },
	{ "exists", OP_EXISTS, 1, 0, "", "l", 0, 0 },
	{ "size", OP_SIZE, 1, 0, " over under ", "", 0, 0 },
	{ "allof", OP_ALLOF, 1, 0, "", "", 2, 0 },
	{ "anyof", OP_ANYOF, 1, 0, "", "", 2, 0 },
	{ "not", OP_NOT, 1, 0, "", "", 1, 0 },
	{ "true", OP_TRUE, 1, 0, "", "", 0, 0 },
	{ "false", OP_FALSE, 1, 0, "", "", 0, 0 },
	{ "body", OP_BODY, 1, EXT_BODY, MATCH_TAGS "raw content text ", "l", 0, 0 },
	{ "string", OP_STRING, 1, EXT_VARIABLES, MATCH_TAGS, "ll", 0, 0 },
	{ "hasflag", OP_HASFLAG, 1, EXT_IMAP4FLAGS, MATCH_TAGS, "?l", 0, 0 },
	{ "mailboxexists", OP_MAILBOXEXISTS, 1, EXT_MAILBOX, "", "l", 0, 0 },
	{ "date", OP_DATE, 1, EXT_DATE,
	  MATCH_TAGS "zone originalzone index last ", "ssl", 0, 0 },
	{ "currentdate", OP_CURRENTDATE, 1, EXT_DATE, MATCH_TAGS "zone ", "sl", 0, 0 },
	{ "ihave", OP_IHAVE, 1, EXT_IHAVE, "", "l", 0, 0 },
	{ "duplicate", OP_DUPLICATE, 1, EXT_DUPLICATE,
	  " handle header uniqueid seconds last ", "", 0, 0 },
	{ "environment", OP_ENVIRONMENT, 1, EXT_ENVIRONMENT, MATCH_TAGS, "sl", 0, 0 },
	{ "valid_notify_method", OP_VALID_NOTIFY, 1, EXT_ENOTIFY, "", "l", 0, 0 },
	{ "notify_method_capability", OP_NOTIFY_CAP, 1, EXT_ENOTIFY, MATCH_TAGS, "ssl", 0, 0 },
};

/* Tags: the argument each takes, its group (two tags of one group
 * conflict), the extension it needs. */
static const struct tagspec {
	const char *name;
	char arg;               /* 0, 's', 'l', 'n' */
	int group;
	unsigned ext;
} tagspecs[] = {
	{ "is", 0, 1, 0 }, { "contains", 0, 1, 0 }, { "matches", 0, 1, 0 },
	{ "regex", 0, 1, EXT_REGEX }, { "value", 's', 1, EXT_RELATIONAL },
	{ "count", 's', 1, EXT_RELATIONAL }, { "comparator", 's', 2, 0 },
	{ "all", 0, 3, 0 }, { "localpart", 0, 3, 0 }, { "domain", 0, 3, 0 },
	{ "user", 0, 3, EXT_SUBADDRESS }, { "detail", 0, 3, EXT_SUBADDRESS },
	{ "index", 'n', 4, EXT_INDEX }, { "last", 0, 5, 0 },
	{ "over", 'n', 6, 0 }, { "under", 'n', 6, 0 },
	{ "raw", 0, 7, 0 }, { "content", 'l', 7, 0 }, { "text", 0, 7, 0 },
	{ "zone", 's', 8, EXT_DATE }, { "originalzone", 0, 8, EXT_DATE },
	{ "flags", 'l', 9, EXT_IMAP4FLAGS }, { "copy", 0, 10, EXT_COPY },
	{ "create", 0, 11, EXT_MAILBOX },
	{ "days", 'n', 12, 0 }, { "subject", 's', 13, 0 }, { "from", 's', 14, 0 },
	{ "addresses", 'l', 15, 0 }, { "mime", 0, 16, 0 }, { "handle", 's', 17, 0 },
	{ "lower", 0, 18, 0 }, { "upper", 0, 18, 0 }, { "lowerfirst", 0, 19, 0 },
	{ "upperfirst", 0, 19, 0 }, { "quotewildcard", 0, 20, 0 }, { "length", 0, 21, 0 },
	{ "personal", 0, 22, 0 }, { "global", 0, 22, 0 }, { "once", 0, 23, 0 },
	{ "optional", 0, 24, 0 }, { "header", 's', 25, 0 }, { "uniqueid", 's', 25, 0 },
	{ "seconds", 'n', 26, 0 }, { "importance", 's', 27, 0 }, { "options", 'l', 28, 0 },
	{ "message", 's', 29, 0 }, { "encodeurl", 0, 30, EXT_ENOTIFY },
};

/* ---- lexer ---- */

enum tok { T_EOF, T_ID, T_TAG, T_NUM, T_STR, T_PUNCT };

struct lexer {
	const char *p, *end;
	int line;
	enum tok t;
	int tline;
	char punct;
	uint64_t num;
	struct buf text;        /* identifier, tag or string */
	char *err;
	int eline;
	int depth, count;
	const struct sieve_limits *lim;
	unsigned exts;          /* required so far (plus ihave's in a block) */
	int novalidate;         /* inside an ihave of an unknown extension */
	int seen_other;         /* a command other than require came */
};

static int
lx_fail(struct lexer *lx, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int
lx_fail(struct lexer *lx, int line, const char *fmt, ...)
{
	va_list ap;

	if (lx->err != NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&lx->err, fmt, ap) < 0)
		lx->err = NULL;
	va_end(ap);
	if (lx->err == NULL)
		lx->err = xstrdup("out of memory");
	lx->eline = line;
	return -1;
}

static int
is_idstart(int c)
{
	return isalpha(c) || c == '_';
}

/* "text:" multi-line string: lines up to one holding only ".". */
static int
lex_multiline(struct lexer *lx)
{
	const char *p = lx->p;
	int start = lx->line;

	while (p < lx->end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < lx->end && *p == '#')
		while (p < lx->end && *p != '\n')
			p++;
	if (p < lx->end && *p == '\r')
		p++;
	if (p >= lx->end || *p != '\n')
		return lx_fail(lx, lx->line, "text: must be followed by a line break");
	p++;
	lx->line++;
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(lx->end - p));
		const char *e;

		if (nl == NULL)
			return lx_fail(lx, start, "unterminated multi-line string");
		e = nl;
		if (e > p && e[-1] == '\r')
			e--;
		lx->line++;
		if (e - p == 1 && *p == '.') {
			lx->p = nl + 1;
			return 0;
		}
		if (*p == '.' && e > p + 1 && p[1] == '.')
			p++;
		buf_append(&lx->text, p, (size_t)(e - p));
		buf_puts(&lx->text, "\r\n");
		p = nl + 1;
	}
}

static int
lex(struct lexer *lx)
{
	const char *p;

	buf_reset(&lx->text);
	for (;;) {
		while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' ||
		    *lx->p == '\r' || *lx->p == '\n')) {
			if (*lx->p == '\n')
				lx->line++;
			lx->p++;
		}
		if (lx->p < lx->end && *lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
			continue;
		}
		if (lx->end - lx->p >= 2 && lx->p[0] == '/' && lx->p[1] == '*') {
			int l = lx->line;

			lx->p += 2;
			for (;;) {
				if (lx->end - lx->p < 2)
					return lx_fail(lx, l, "unterminated comment");
				if (lx->p[0] == '*' && lx->p[1] == '/')
					break;
				if (*lx->p == '\n')
					lx->line++;
				lx->p++;
			}
			lx->p += 2;
			continue;
		}
		break;
	}
	lx->tline = lx->line;
	if (lx->p >= lx->end) {
		lx->t = T_EOF;
		return 0;
	}
	p = lx->p;
	if (*p == '"') {
		p++;
		for (;;) {
			if (p >= lx->end)
				return lx_fail(lx, lx->tline, "unterminated string");
			if (*p == '"')
				break;
			if (*p == '\\') {
				p++;
				if (p >= lx->end)
					return lx_fail(lx, lx->tline, "unterminated string");
			}
			if (*p == '\n')
				lx->line++;
			buf_putc(&lx->text, *p);
			p++;
		}
		lx->p = p + 1;
		lx->t = T_STR;
		return 0;
	}
	if (isdigit((unsigned char)*p)) {
		uint64_t n = 0, mul = 1;

		while (p < lx->end && isdigit((unsigned char)*p)) {
			if (__builtin_mul_overflow(n, 10, &n) ||
			    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
				return lx_fail(lx, lx->tline, "number too large");
			p++;
		}
		if (p < lx->end && strchr("KkMmGg", *p) != NULL) {
			mul = (*p == 'K' || *p == 'k') ? 1024 :
			    (*p == 'M' || *p == 'm') ? 1024 * 1024 : 1024 * 1024 * 1024;
			p++;
		}
		if (__builtin_mul_overflow(n, mul, &n) || n > INT64_MAX)
			return lx_fail(lx, lx->tline, "number too large");
		if (p < lx->end && (isalnum((unsigned char)*p) || *p == '_'))
			return lx_fail(lx, lx->tline, "bad number");
		lx->num = n;
		lx->p = p;
		lx->t = T_NUM;
		return 0;
	}
	if (*p == ':' || is_idstart((unsigned char)*p)) {
		int tag = *p == ':';

		if (tag)
			p++;
		if (p >= lx->end || !is_idstart((unsigned char)*p))
			return lx_fail(lx, lx->tline, "bad tag");
		while (p < lx->end && (isalnum((unsigned char)*p) || *p == '_'))
			p++;
		buf_append(&lx->text, lx->p + tag, (size_t)(p - lx->p - tag));
		lx->p = p;
		if (!tag && strcasecmp(buf_cstr(&lx->text), "text") == 0 && p < lx->end &&
		    *p == ':') {
			lx->p++;
			buf_reset(&lx->text);
			if (lex_multiline(lx) < 0)
				return -1;
			lx->t = T_STR;
			return 0;
		}
		lx->t = tag ? T_TAG : T_ID;
		return 0;
	}
	if (strchr("[](){},;", *p) != NULL) {
		lx->punct = *p;
		lx->p++;
		lx->t = T_PUNCT;
		return 0;
	}
	if (*p == '\0')
		return lx_fail(lx, lx->tline, "NUL in script");
	return lx_fail(lx, lx->tline, "unexpected character '%c'",
	    isprint((unsigned char)*p) ? *p : '?');
}

static int
is_punct(const struct lexer *lx, char c)
{
	return lx->t == T_PUNCT && lx->punct == c;
}

/* ---- tree ---- */

static void
strs_free(struct sv_strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void
node_free(struct sv_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nargs; i++)
		strs_free(&n->args[i].s);
	free(n->args);
	for (size_t i = 0; i < n->ntests; i++)
		node_free(n->tests[i]);
	free(n->tests);
	for (size_t i = 0; i < n->nblock; i++)
		node_free(n->block[i]);
	free(n->block);
	strs_free(&n->o.content_types);
	strs_free(&n->o.flags);
	strs_free(&n->o.addresses);
	free(n->o.zone);
	free(n->o.subject);
	free(n->o.from);
	free(n->o.handle);
	free(n->o.header);
	free(n->o.uniqueid);
	free(n->o.importance);
	free(n->o.message);
	strs_free(&n->o.options);
	free(n);
}

void
sieve_free(struct sieve_script **sp)
{
	struct sieve_script *s = *sp;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->ncmds; i++)
		node_free(s->cmds[i]);
	free(s->cmds);
	free(s);
	*sp = NULL;
}

/* encoded-character (RFC 5228 2.4.2.4): "${hex: 41 42}", "${unicode:263a}".
 * A sequence that does not parse is left as written. */
static void
put_utf8(struct buf *b, unsigned long cp)
{
	if (cp < 0x80)
		buf_putc(b, (int)cp);
	else if (cp < 0x800) {
		buf_putc(b, (int)(0xc0 | (cp >> 6)));
		buf_putc(b, (int)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_putc(b, (int)(0xe0 | (cp >> 12)));
		buf_putc(b, (int)(0x80 | ((cp >> 6) & 0x3f)));
		buf_putc(b, (int)(0x80 | (cp & 0x3f)));
	} else {
		buf_putc(b, (int)(0xf0 | (cp >> 18)));
		buf_putc(b, (int)(0x80 | ((cp >> 12) & 0x3f)));
		buf_putc(b, (int)(0x80 | ((cp >> 6) & 0x3f)));
		buf_putc(b, (int)(0x80 | (cp & 0x3f)));
	}
}

static int
decode_encoded(struct lexer *lx, const char *s, struct buf *out)
{
	while (*s != '\0') {
		const char *q;
		int hex;

		if (strncmp(s, "${", 2) != 0) {
			buf_putc(out, *s++);
			continue;
		}
		q = s + 2;
		if (strncasecmp(q, "hex:", 4) == 0)
			hex = 1;
		else if (strncasecmp(q, "unicode:", 8) == 0)
			hex = 0;
		else {
			buf_putc(out, *s++);
			continue;
		}
		q += hex ? 4 : 8;
		{
			struct buf tmp = BUF_INIT(0);
			int ok = 1;

			for (;;) {
				unsigned long v = 0;
				int nd = 0;

				while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
					q++;
				if (*q == '}')
					break;
				while (isxdigit((unsigned char)*q) && nd < 8) {
					v = v * 16 + (unsigned long)(isdigit((unsigned char)*q) ? *q - '0' :
					    (tolower((unsigned char)*q) - 'a' + 10));
					q++;
					nd++;
				}
				if (nd == 0 || isxdigit((unsigned char)*q)) {
					ok = 0;
					break;
				}
				if (hex) {
					if (v > 0xff || v == 0) {
						ok = 0;
						break;
					}
					buf_putc(&tmp, (int)v);
				} else {
					if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || v == 0) {
						buf_free(&tmp);
						return lx_fail(lx, lx->tline,
						    "invalid unicode character in encoded-character");
					}
					put_utf8(&tmp, v);
				}
			}
			if (ok && *q == '}') {
				buf_append(out, tmp.data != NULL ? tmp.data : "", tmp.len);
				s = q + 1;
			} else
				buf_putc(out, *s++);
			buf_free(&tmp);
		}
	}
	return 0;
}

/* The current string token as an xmalloc'd C string. */
static char *
take_string(struct lexer *lx)
{
	if (memchr(buf_cstr(&lx->text), '\0', lx->text.len) != NULL) {
		lx_fail(lx, lx->tline, "NUL in string");
		return NULL;
	}
	if (lx->exts & EXT_ENCODED) {
		struct buf out = BUF_INIT(0);

		if (decode_encoded(lx, buf_cstr(&lx->text), &out) < 0) {
			buf_free(&out);
			return NULL;
		}
		if (out.data == NULL)
			return xstrdup("");
		return buf_steal(&out);
	}
	return xstrdup(buf_cstr(&lx->text));
}

struct rawarg {
	int is_tag;
	char *tag;
	struct sv_arg a;
};

static void
rawargs_free(struct rawarg *ra, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ra[i].tag);
		strs_free(&ra[i].a.s);
	}
	free(ra);
}

static struct sv_node *parse_test(struct lexer *lx);
static int parse_commands(struct lexer *lx, struct sv_node ***v, size_t *n, int inblock);

/* string / string-list, the lexer on its first token */
static int
parse_strs(struct lexer *lx, struct sv_strs *s)
{
	char *v;

	if (lx->t == T_STR) {
		if ((v = take_string(lx)) == NULL)
			return -1;
		s->v = xcalloc(1, sizeof(char *));
		s->v[0] = v;
		s->n = 1;
		return lex(lx);
	}
	s->is_list = 1;
	if (lex(lx) < 0)
		return -1;
	for (;;) {
		if (lx->t != T_STR)
			return lx_fail(lx, lx->tline, "expected a string in the list");
		if (s->n >= 10000)
			return lx_fail(lx, lx->tline, "string list too long");
		if ((v = take_string(lx)) == NULL)
			return -1;
		s->v = xreallocarray(s->v, s->n + 1, sizeof(char *));
		s->v[s->n++] = v;
		if (lex(lx) < 0)
			return -1;
		if (is_punct(lx, ']'))
			return lex(lx);
		if (!is_punct(lx, ','))
			return lx_fail(lx, lx->tline, "expected ',' or ']' in string list");
		if (lex(lx) < 0)
			return -1;
	}
}

static const struct spec *
spec_find(const char *name, int is_test)
{
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (specs[i].is_test == is_test && strcasecmp(specs[i].name, name) == 0)
			return &specs[i];
	return NULL;
}

static const struct tagspec *
tag_find(const char *name)
{
	for (size_t i = 0; i < sizeof(tagspecs) / sizeof(tagspecs[0]); i++)
		if (strcasecmp(tagspecs[i].name, name) == 0)
			return &tagspecs[i];
	return NULL;
}

static int
tag_allowed(const struct spec *sp, const char *tag)
{
	char key[64];

	if (strlen(tag) > 60)
		return 0;
	snprintf(key, sizeof(key), " %s ", tag);
	for (char *p = key; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return strstr(sp->tags, key) != NULL;
}

static int
relop(const char *s, enum sv_rel *r)
{
	static const char *const names[] = { "gt", "ge", "lt", "le", "eq", "ne" };

	for (int i = 0; i < 6; i++)
		if (strcasecmp(s, names[i]) == 0) {
			*r = (enum sv_rel)i;
			return 0;
		}
	return -1;
}

/* Move one tag into the node's options. */
static int
apply_tag(struct lexer *lx, struct sv_node *n, const struct spec *sp, struct rawarg *ra)
{
	const char *t = ra->tag;
	struct sv_opts *o = &n->o;
	const char *s1 = ra->a.s.n > 0 ? ra->a.s.v[0] : "";

	if (strcasecmp(t, "is") == 0)
		o->match = M_IS;
	else if (strcasecmp(t, "contains") == 0)
		o->match = M_CONTAINS;
	else if (strcasecmp(t, "matches") == 0)
		o->match = M_MATCHES;
	else if (strcasecmp(t, "regex") == 0)
		o->match = M_REGEX;
	else if (strcasecmp(t, "value") == 0 || strcasecmp(t, "count") == 0) {
		o->match = strcasecmp(t, "value") == 0 ? M_VALUE : M_COUNT;
		if (relop(s1, &o->rel) < 0)
			return lx_fail(lx, ra->a.line, "unknown relational operator \"%s\"", s1);
	} else if (strcasecmp(t, "comparator") == 0) {
		if (strcasecmp(s1, "i;octet") == 0)
			o->cmp = C_OCTET;
		else if (strcasecmp(s1, "i;ascii-casemap") == 0)
			o->cmp = C_CASEMAP;
		else if (strcasecmp(s1, "i;ascii-numeric") == 0) {
			if (!(lx->exts & EXT_NUMERIC))
				return lx_fail(lx, ra->a.line,
				    "comparator i;ascii-numeric needs require \"comparator-i;ascii-numeric\"");
			o->cmp = C_NUMERIC;
		} else
			return lx_fail(lx, ra->a.line, "unknown comparator \"%s\"", s1);
	} else if (strcasecmp(t, "all") == 0)
		o->part = P_ALL;
	else if (strcasecmp(t, "localpart") == 0)
		o->part = P_LOCAL;
	else if (strcasecmp(t, "domain") == 0)
		o->part = P_DOMAIN;
	else if (strcasecmp(t, "user") == 0)
		o->part = P_USER;
	else if (strcasecmp(t, "detail") == 0)
		o->part = P_DETAIL;
	else if (strcasecmp(t, "index") == 0) {
		if (ra->a.num == 0 || ra->a.num > 100000)
			return lx_fail(lx, ra->a.line, ":index must be at least 1");
		o->index = (int)ra->a.num;
	} else if (strcasecmp(t, "last") == 0)
		o->last = 1;
	else if (strcasecmp(t, "over") == 0) {
		o->over = 1;
		n->args = xreallocarray(n->args, n->nargs + 1, sizeof(*n->args));
		n->args[n->nargs++] = ra->a;
		memset(&ra->a, 0, sizeof(ra->a));
	} else if (strcasecmp(t, "under") == 0) {
		o->under = 1;
		n->args = xreallocarray(n->args, n->nargs + 1, sizeof(*n->args));
		n->args[n->nargs++] = ra->a;
		memset(&ra->a, 0, sizeof(ra->a));
	} else if (strcasecmp(t, "raw") == 0)
		o->xform = X_RAW;
	else if (strcasecmp(t, "text") == 0)
		o->xform = X_TEXT;
	else if (strcasecmp(t, "content") == 0) {
		o->xform = X_CONTENT;
		o->content_types = ra->a.s;
		memset(&ra->a.s, 0, sizeof(ra->a.s));
	} else if (strcasecmp(t, "zone") == 0) {
		long off;

		if (sv_zone_parse(s1, &off) < 0)
			return lx_fail(lx, ra->a.line, "bad :zone \"%s\"", s1);
		o->zone = xstrdup(s1);
	} else if (strcasecmp(t, "originalzone") == 0)
		o->originalzone = 1;
	else if (strcasecmp(t, "flags") == 0) {
		o->flags = ra->a.s;
		o->has_flags = 1;
		memset(&ra->a.s, 0, sizeof(ra->a.s));
	} else if (strcasecmp(t, "copy") == 0)
		o->copy = 1;
	else if (strcasecmp(t, "create") == 0)
		o->create = 1;
	else if (strcasecmp(t, "days") == 0)
		o->days = ra->a.num > 100000 ? 100000 : (long)ra->a.num;
	else if (strcasecmp(t, "subject") == 0)
		o->subject = xstrdup(s1);
	else if (strcasecmp(t, "from") == 0)
		o->from = xstrdup(s1);
	else if (strcasecmp(t, "addresses") == 0) {
		o->addresses = ra->a.s;
		memset(&ra->a.s, 0, sizeof(ra->a.s));
	} else if (strcasecmp(t, "mime") == 0)
		o->mime = 1;
	else if (strcasecmp(t, "handle") == 0)
		o->handle = xstrdup(s1);
	else if (strcasecmp(t, "lower") == 0)
		o->modifiers |= MOD_LOWER;
	else if (strcasecmp(t, "upper") == 0)
		o->modifiers |= MOD_UPPER;
	else if (strcasecmp(t, "lowerfirst") == 0)
		o->modifiers |= MOD_LOWERFIRST;
	else if (strcasecmp(t, "upperfirst") == 0)
		o->modifiers |= MOD_UPPERFIRST;
	else if (strcasecmp(t, "quotewildcard") == 0)
		o->modifiers |= MOD_QUOTEWILDCARD;
	else if (strcasecmp(t, "length") == 0)
		o->modifiers |= MOD_LENGTH;
	else if (strcasecmp(t, "personal") == 0)
		o->global = 0;
	else if (strcasecmp(t, "global") == 0)
		o->global = 1;
	else if (strcasecmp(t, "once") == 0)
		o->once = 1;
	else if (strcasecmp(t, "optional") == 0)
		o->optional = 1;
	else if (strcasecmp(t, "header") == 0)
		o->header = xstrdup(s1);
	else if (strcasecmp(t, "uniqueid") == 0)
		o->uniqueid = xstrdup(s1);
	else if (strcasecmp(t, "seconds") == 0)
		o->seconds = ra->a.num > 100000000 ? 100000000 : (long)ra->a.num;
	else if (strcasecmp(t, "importance") == 0) {
		/* RFC 5435 3.3: "1" high, "2" normal, "3" low */
		if (!((lx->exts & EXT_VARIABLES) && strstr(s1, "${") != NULL) &&
		    (strlen(s1) != 1 || s1[0] < '1' || s1[0] > '3'))
			return lx_fail(lx, ra->a.line, "notify :importance must be \"1\", \"2\" or \"3\"");
		o->importance = xstrdup(s1);
	} else if (strcasecmp(t, "options") == 0) {
		o->options = ra->a.s;
		memset(&ra->a.s, 0, sizeof(ra->a.s));
	} else if (strcasecmp(t, "message") == 0)
		o->message = xstrdup(s1);
	else if (strcasecmp(t, "encodeurl") == 0)
		o->modifiers |= MOD_ENCODEURL;
	else
		return lx_fail(lx, ra->a.line, "tag :%s not allowed for %s", t, sp->name);
	return 0;
}

static int
check_strings_known(struct lexer *lx, const struct sv_strs *s, int line)
{
	for (size_t i = 0; i < s->n; i++)
		if (sv_ext_bit(s->v[i]) == 0)
			return lx_fail(lx, line, "unknown extension \"%s\"", s->v[i]);
	return 0;
}

/* Validate the raw arguments against the spec and build the node. */
static int
build(struct lexer *lx, struct sv_node *n, const struct spec *sp, struct rawarg *ra,
    size_t nra)
{
	size_t i, npos = 0;
	int groups[32] = { 0 };
	const char *pos = sp->pos;
	int optional_first = 0;

	n->kind = sp->op;
	n->o.cmp = C_CASEMAP;      /* RFC 5228 2.7.3: the default comparator */
	n->o.days = -1;
	n->o.seconds = -1;
	if (sp->ext != 0 && (lx->exts & sp->ext) != sp->ext)
		return lx_fail(lx, n->line, "%s %s needs require \"%s\"",
		    sp->is_test ? "test" : "command", sp->name,
		    sp->op == OP_EREJECT ? "ereject" : sp->op == OP_GLOBAL ?
		    "include\" and \"variables" : sp->op == OP_ERROR ? "ihave" : sp->name);
	if (*pos == '?') {
		optional_first = 1;
		pos++;
	}
	for (i = 0; i < nra && ra[i].is_tag; i++) {
		const struct tagspec *ts = tag_find(ra[i].tag);

		if (ts == NULL || !tag_allowed(sp, ra[i].tag))
			return lx_fail(lx, ra[i].a.line, "unknown tag :%s for %s", ra[i].tag,
			    sp->name);
		if (ts->ext != 0 && !(lx->exts & ts->ext))
			return lx_fail(lx, ra[i].a.line, "tag :%s needs its extension required",
			    ra[i].tag);
		if (groups[ts->group]++)
			return lx_fail(lx, ra[i].a.line, "tag :%s conflicts with an earlier tag",
			    ra[i].tag);
		if (apply_tag(lx, n, sp, &ra[i]) < 0)
			return -1;
	}
	if (sp->op == OP_SIZE && !n->o.over && !n->o.under)
		return lx_fail(lx, n->line, "size needs :over or :under");
	if (n->o.match == M_COUNT || n->o.match == M_VALUE) {
		/* RFC 5231: :count with i;ascii-numeric is the useful form;
		 * other comparators are allowed. */
	}
	if ((n->o.match == M_REGEX || n->o.match == M_CONTAINS || n->o.match == M_MATCHES) &&
	    n->o.cmp == C_NUMERIC)
		return lx_fail(lx, n->line,
		    "comparator i;ascii-numeric supports only :is, :value and :count");
	if (sp->op == OP_DUPLICATE && n->o.header != NULL && n->o.uniqueid != NULL)
		return lx_fail(lx, n->line, "duplicate: :header and :uniqueid conflict");
	if (sp->op == OP_VACATION && n->o.seconds >= 0) {
		if (!(lx->exts & EXT_VACATION_SECONDS))
			return lx_fail(lx, n->line, "vacation :seconds needs require \"vacation-seconds\"");
		if (n->o.days >= 0)
			return lx_fail(lx, n->line, "vacation: :days and :seconds conflict");
	}
	npos = nra - i;
	if (optional_first && npos == strlen(pos) + 1) {
		/* setflag "var" ["flags"]: the variable name first */
		if (!(lx->exts & EXT_VARIABLES))
			return lx_fail(lx, n->line, "%s with a variable name needs \"variables\"",
			    sp->name);
	} else if (npos != strlen(pos))
		return lx_fail(lx, n->line, "%s takes %zu positional argument%s, not %zu",
		    sp->name, strlen(pos), strlen(pos) == 1 ? "" : "s", npos);
	for (size_t k = 0; i < nra; i++, k++) {
		char want = (optional_first && npos == strlen(pos) + 1) ?
		    (k == 0 ? 's' : pos[k - 1]) : pos[k];

		if (ra[i].is_tag)
			return lx_fail(lx, ra[i].a.line, "tag :%s after positional arguments",
			    ra[i].tag);
		if (want == 'n' && ra[i].a.type != ARG_NUM)
			return lx_fail(lx, ra[i].a.line, "%s: expected a number", sp->name);
		if (want != 'n' && ra[i].a.type == ARG_NUM)
			return lx_fail(lx, ra[i].a.line, "%s: expected a string", sp->name);
		if (want == 's' && ra[i].a.s.is_list)
			return lx_fail(lx, ra[i].a.line, "%s: expected a string, not a list",
			    sp->name);
		n->args = xreallocarray(n->args, n->nargs + 1, sizeof(*n->args));
		n->args[n->nargs++] = ra[i].a;
		memset(&ra[i].a, 0, sizeof(ra[i].a));
	}
	if ((sp->op == OP_REQUIRE || sp->op == OP_IHAVE) &&
	    check_strings_known(lx, &n->args[0].s, n->line) < 0 && sp->op == OP_REQUIRE)
		return -1;
	if (sp->op == OP_IHAVE) {
		free(lx->err);
		lx->err = NULL;
	}
	/* RFC 5435 3.1: a method known now must be one we can use. */
	if (sp->op == OP_NOTIFY) {
		const char *m = n->args[0].s.v[0];

		if (!((lx->exts & EXT_VARIABLES) && strstr(m, "${") != NULL) &&
		    sieve_mailto_parse(m, NULL, NULL, NULL) != 0)
			return lx_fail(lx, n->line, "notify: unsupported or invalid method \"%s\"", m);
	}
	/* Constant regex keys are compiled now so errors show a line. */
	if (n->o.match == M_REGEX && n->nargs > 0) {
		const struct sv_strs *keys = &n->args[n->nargs - 1].s;

		for (size_t k = 0; k < keys->n; k++) {
			regex_t rx;
			int rc;

			if ((lx->exts & EXT_VARIABLES) && strstr(keys->v[k], "${") != NULL)
				continue;
			if (strlen(keys->v[k]) > 1024)
				return lx_fail(lx, n->line, "regular expression too long");
			rc = regcomp(&rx, keys->v[k], REG_EXTENDED | REG_NOSUB);
			if (rc != 0)
				return lx_fail(lx, n->line, "bad regular expression \"%s\"",
				    keys->v[k]);
			regfree(&rx);
		}
	}
	if (sp->op == OP_SET && n->nargs == 2) {
		const char *v = n->args[0].s.v[0];

		/* RFC 6609 5: the "global." namespace, when include is required */
		if ((lx->exts & EXT_INCLUDE) && strncasecmp(v, "global.", 7) == 0)
			v += 7;

		if (!is_idstart((unsigned char)v[0]))
			return lx_fail(lx, n->line, "bad variable name \"%s\"", v);
		for (const char *p = v; *p != '\0'; p++)
			if (!isalnum((unsigned char)*p) && *p != '_')
				return lx_fail(lx, n->line, "bad variable name \"%s\"", v);
	}
	if (sp->op == OP_INCLUDE) {
		const char *v = n->args[0].s.v[0];

		if (*v == '\0' || strchr(v, '/') != NULL || v[0] == '.' || strlen(v) > 255)
			return lx_fail(lx, n->line, "bad script name \"%s\" for include", v);
	}
	return 0;
}

static int
count_node(struct lexer *lx, int line)
{
	if (++lx->count > lx->lim->commands_max)
		return lx_fail(lx, line, "too many commands (limit %d)", lx->lim->commands_max);
	return 0;
}

/* Arguments (and a test or test list) of the current command or test;
 * the lexer is on the token after the identifier. */
static int
parse_arguments(struct lexer *lx, struct rawarg **ra_r, size_t *nra_r, struct sv_node *n,
    int *was_list_r)
{
	struct rawarg *ra = NULL;
	size_t nra = 0;

	*was_list_r = 0;
	for (;;) {
		struct rawarg a;

		memset(&a, 0, sizeof(a));
		a.a.line = lx->tline;
		if (lx->t == T_TAG) {
			const struct tagspec *ts;

			a.is_tag = 1;
			a.tag = xstrdup(buf_cstr(&lx->text));
			ts = tag_find(a.tag);
			if (lex(lx) < 0)
				goto fail_a;
			/* A tag's own argument follows it (":days 7"). */
			if (ts != NULL && ts->arg != 0) {
				if (ts->arg == 'n') {
					if (lx->t != T_NUM) {
						lx_fail(lx, lx->tline, ":%s needs a number", a.tag);
						goto fail_a;
					}
					a.a.type = ARG_NUM;
					a.a.num = lx->num;
					if (lex(lx) < 0)
						goto fail_a;
				} else {
					if (lx->t != T_STR && !is_punct(lx, '[')) {
						lx_fail(lx, lx->tline, ":%s needs a string", a.tag);
						goto fail_a;
					}
					a.a.type = ts->arg == 's' ? ARG_STR : ARG_LIST;
					if (parse_strs(lx, &a.a.s) < 0)
						goto fail_a;
					if (ts->arg == 's' && a.a.s.is_list) {
						lx_fail(lx, a.a.line, ":%s needs a string, not a list", a.tag);
						goto fail_a;
					}
				}
			}
		} else if (lx->t == T_NUM) {
			a.a.type = ARG_NUM;
			a.a.num = lx->num;
			if (lex(lx) < 0)
				goto fail_a;
		} else if (lx->t == T_STR || is_punct(lx, '[')) {
			a.a.type = ARG_LIST;
			if (parse_strs(lx, &a.a.s) < 0)
				goto fail_a;
		} else
			break;
		if (nra >= 64) {
			lx_fail(lx, a.a.line, "too many arguments");
			goto fail_a;
		}
		ra = xreallocarray(ra, nra + 1, sizeof(*ra));
		ra[nra++] = a;
		continue;
fail_a:
		free(a.tag);
		strs_free(&a.a.s);
		rawargs_free(ra, nra);
		return -1;
	}
	*ra_r = ra;
	*nra_r = nra;
	/* a test, or a test list */
	if (lx->t == T_ID) {
		struct sv_node *t = parse_test(lx);

		if (t == NULL)
			return -1;
		n->tests = xcalloc(1, sizeof(*n->tests));
		n->tests[0] = t;
		n->ntests = 1;
	} else if (is_punct(lx, '(')) {
		int l = lx->tline;

		if (lex(lx) < 0)
			return -1;
		for (;;) {
			struct sv_node *t = parse_test(lx);

			if (t == NULL)
				return -1;
			n->tests = xreallocarray(n->tests, n->ntests + 1, sizeof(*n->tests));
			n->tests[n->ntests++] = t;
			if (is_punct(lx, ')'))
				break;
			if (!is_punct(lx, ','))
				return lx_fail(lx, lx->tline, "expected ',' or ')' in test list");
			if (lex(lx) < 0)
				return -1;
		}
		if (lex(lx) < 0)
			return -1;
		*was_list_r = 1;
		(void)l;
	}
	return 0;
}

static int
check_tests(struct lexer *lx, struct sv_node *n, const struct spec *sp, int was_list)
{
	if (sp->test == 0 && n->ntests > 0)
		return lx_fail(lx, n->line, "%s takes no test", sp->name);
	if (sp->test == 1 && (n->ntests != 1 || was_list))
		return lx_fail(lx, n->line, "%s needs one test", sp->name);
	if (sp->test == 2 && (!was_list || n->ntests == 0))
		return lx_fail(lx, n->line, "%s needs a test list", sp->name);
	return 0;
}

static struct sv_node *
parse_test(struct lexer *lx)
{
	struct sv_node *n;
	struct rawarg *ra = NULL;
	size_t nra = 0;
	const struct spec *sp;
	int was_list;

	if (lx->t != T_ID) {
		lx_fail(lx, lx->tline, "expected a test");
		return NULL;
	}
	if (count_node(lx, lx->tline) < 0)
		return NULL;
	if (++lx->depth > lx->lim->nest_max) {
		lx_fail(lx, lx->tline, "tests nested too deeply (limit %d)", lx->lim->nest_max);
		return NULL;
	}
	n = xcalloc(1, sizeof(*n));
	n->is_test = 1;
	n->line = lx->tline;
	sp = spec_find(buf_cstr(&lx->text), 1);
	if (sp == NULL && !lx->novalidate) {
		lx_fail(lx, lx->tline, "unknown test \"%s\"", buf_cstr(&lx->text));
		goto fail;
	}
	if (lex(lx) < 0 || parse_arguments(lx, &ra, &nra, n, &was_list) < 0)
		goto fail;
	if (!lx->novalidate) {
		if (check_tests(lx, n, sp, was_list) < 0 || build(lx, n, sp, ra, nra) < 0)
			goto fail;
	} else
		n->kind = OP_FALSE;
	rawargs_free(ra, nra);
	lx->depth--;
	return n;
fail:
	rawargs_free(ra, nra);
	node_free(n);
	return NULL;
}

/* The extensions an ihave test names, when all are known. */
static unsigned
ihave_exts(const struct sv_node *t, int *unknown_r)
{
	unsigned bits = 0;

	*unknown_r = 0;
	if (t == NULL || t->kind != OP_IHAVE || !t->is_test)
		return 0;
	for (size_t i = 0; i < t->args[0].s.n; i++) {
		unsigned b = sv_ext_bit(t->args[0].s.v[i]);

		if (b == 0)
			*unknown_r = 1;
		bits |= b;
	}
	return bits;
}

static struct sv_node *
parse_command(struct lexer *lx, int inblock, int *prev_if)
{
	struct sv_node *n;
	struct rawarg *ra = NULL;
	size_t nra = 0;
	const struct spec *sp;
	int was_list;
	unsigned saved_exts = lx->exts;
	int saved_nov = lx->novalidate;

	if (count_node(lx, lx->tline) < 0)
		return NULL;
	n = xcalloc(1, sizeof(*n));
	n->line = lx->tline;
	sp = spec_find(buf_cstr(&lx->text), 0);
	if (sp == NULL && !lx->novalidate) {
		lx_fail(lx, lx->tline, "unknown command \"%s\"", buf_cstr(&lx->text));
		goto fail;
	}
	if (lex(lx) < 0 || parse_arguments(lx, &ra, &nra, n, &was_list) < 0)
		goto fail;
	if (!lx->novalidate) {
		if (check_tests(lx, n, sp, was_list) < 0 || build(lx, n, sp, ra, nra) < 0)
			goto fail;
		if (sp->op == OP_REQUIRE) {
			if (inblock || lx->seen_other) {
				lx_fail(lx, n->line, "require must come before any other command");
				goto fail;
			}
			for (size_t i = 0; i < n->args[0].s.n; i++)
				lx->exts |= sv_ext_bit(n->args[0].s.v[i]);
			/* RFC 6131 4: "vacation-seconds" implies "vacation". */
			if (lx->exts & EXT_VACATION_SECONDS)
				lx->exts |= EXT_VACATION;
		} else
			lx->seen_other = 1;
		if ((sp->op == OP_ELSIF || sp->op == OP_ELSE) && !*prev_if) {
			lx_fail(lx, n->line, "%s without if", sp->name);
			goto fail;
		}
		*prev_if = sp->op == OP_IF || sp->op == OP_ELSIF;
	} else
		n->kind = OP_STOP;
	rawargs_free(ra, nra);
	ra = NULL;
	nra = 0;
	if (sp != NULL && sp->block) {
		int unknown = 0;

		if (!is_punct(lx, '{')) {
			lx_fail(lx, lx->tline, "%s needs a block", sp->name);
			goto fail;
		}
		/* if ihave "x" { ... }: x is usable in the block (RFC 5463) */
		if (sp->op != OP_ELSE && n->ntests == 1 && !lx->novalidate) {
			lx->exts |= ihave_exts(n->tests[0], &unknown);
			if (unknown)
				lx->novalidate = 1;
		}
		if (++lx->depth > lx->lim->nest_max) {
			lx_fail(lx, lx->tline, "blocks nested too deeply (limit %d)",
			    lx->lim->nest_max);
			goto fail;
		}
		if (lex(lx) < 0 || parse_commands(lx, &n->block, &n->nblock, 1) < 0)
			goto fail;
		if (!is_punct(lx, '}')) {
			lx_fail(lx, lx->tline, "expected '}'");
			goto fail;
		}
		lx->depth--;
		lx->exts = saved_exts;
		lx->novalidate = saved_nov;
		if (lex(lx) < 0)
			goto fail;
		return n;
	}
	if (sp == NULL && is_punct(lx, '{')) {
		/* an unknown command with a block, under an unknown ihave */
		if (++lx->depth > lx->lim->nest_max) {
			lx_fail(lx, lx->tline, "blocks nested too deeply");
			goto fail;
		}
		if (lex(lx) < 0 || parse_commands(lx, &n->block, &n->nblock, 1) < 0)
			goto fail;
		if (!is_punct(lx, '}')) {
			lx_fail(lx, lx->tline, "expected '}'");
			goto fail;
		}
		lx->depth--;
		if (lex(lx) < 0)
			goto fail;
		return n;
	}
	if (!is_punct(lx, ';')) {
		lx_fail(lx, lx->tline, "expected ';' after %s", sp != NULL ? sp->name : "command");
		goto fail;
	}
	if (lex(lx) < 0)
		goto fail;
	return n;
fail:
	lx->exts = saved_exts;
	rawargs_free(ra, nra);
	node_free(n);
	return NULL;
}

static int
parse_commands(struct lexer *lx, struct sv_node ***v, size_t *nv, int inblock)
{
	int prev_if = 0;

	for (;;) {
		struct sv_node *n;

		if (lx->t == T_EOF || is_punct(lx, '}'))
			return 0;
		if (lx->t != T_ID)
			return lx_fail(lx, lx->tline, "expected a command");
		n = parse_command(lx, inblock, &prev_if);
		if (n == NULL)
			return -1;
		*v = xreallocarray(*v, *nv + 1, sizeof(**v));
		(*v)[(*nv)++] = n;
	}
}

int
sieve_compile(const char *src, size_t len, const struct sieve_limits *lim,
    struct sieve_script **s_r, int *line_r, char **err_r)
{
	struct sieve_limits def;
	struct lexer lx;
	struct sieve_script *s;

	*s_r = NULL;
	*line_r = 0;
	*err_r = NULL;
	if (lim == NULL) {
		sieve_limits_default(&def);
		lim = &def;
	}
	if (len > lim->script_max) {
		*err_r = xasprintf("script too large (%zu bytes, limit %zu)", len, lim->script_max);
		return -1;
	}
	memset(&lx, 0, sizeof(lx));
	lx.p = src;
	lx.end = src + len;
	lx.line = 1;
	lx.lim = lim;
	buf_init(&lx.text, 0);
	s = xcalloc(1, sizeof(*s));
	s->lim = *lim;
	if (lex(&lx) < 0 || parse_commands(&lx, &s->cmds, &s->ncmds, 0) < 0)
		goto fail;
	if (lx.t != T_EOF) {
		lx_fail(&lx, lx.tline, "unexpected '}'");
		goto fail;
	}
	s->exts = lx.exts;
	buf_free(&lx.text);
	*s_r = s;
	return 0;
fail:
	buf_free(&lx.text);
	sieve_free(&s);
	*line_r = lx.eline;
	*err_r = lx.err != NULL ? lx.err : xstrdup("compile error");
	return -1;
}
