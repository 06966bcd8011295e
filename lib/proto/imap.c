/*
 * imap - IMAP command parser, sequence sets and the string writer
 * (contract in imap.h).
 *
 * Invariants: no parser reads past the bytes it is given; all parser state
 * lives in struct imap_parser, so any split of the input gives the same
 * result. Trusts: nothing; every byte may be hostile.
 */
#include "proto/imap.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/mutf7.h"
#include "util/alloc.h"

static int
is_atom_char(unsigned char c)
{
	return c > ' ' && c < 127 && strchr("(){%*\"\\]", c) == NULL;
}

void
imap_quote(struct buf *out, const char *s, size_t n, unsigned flags)
{
	int atom = (flags & IMAP_Q_ATOM) && n > 0, quoted = n <= IMAP_QUOTED_MAX;
	int high = 0;

	if (s == NULL) {
		buf_puts(out, flags & IMAP_Q_NIL ? "NIL" : "\"\"");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_atom_char(c) || c == '[')
			atom = 0;      /* '[' would open a section in our parser */
		if (c == 0 || c == '\r' || c == '\n')
			quoted = 0;
		else if (c >= 0x80)
			high = 1;
	}
	if (atom && n == 3 && strncasecmp(s, "NIL", 3) == 0)
		atom = 0;
	if (high && !((flags & IMAP_Q_UTF8) && utf8_valid(s, n)))
		quoted = 0;
	if (atom)
		buf_append(out, s, n);
	else if (quoted) {
		buf_putc(out, '"');
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '"' || s[i] == '\\')
				buf_putc(out, '\\');
			buf_putc(out, s[i]);
		}
		buf_putc(out, '"');
	} else {
		buf_printf(out, "{%zu}\r\n", n);
		buf_append(out, s, n);
	}
}

/* --- Command parser -------------------------------------------------------- */

enum pstate {
	P_TAG,          /* at or in the tag */
	P_NAME,         /* in the command name */
	P_ARGSTART,     /* between arguments */
	P_AFTERTOK,     /* right after a quoted string, literal or ')' */
	P_ATOM,
	P_BRACKET,      /* inside [...] of an atom */
	P_BRACKET_Q,    /* inside a quoted string inside [...] */
	P_BRACKET_QESC,
	P_QUOTED,
	P_QESC,
	P_TILDE,        /* "~" of a literal8 */
	P_LITLEN,       /* inside {...} */
	P_LITEND,       /* after '}' */
	P_LITLF,        /* after '}' CR */
	P_LITWAIT,      /* synchronizing literal announced, caller decides */
	P_LITDATA,
	P_CR,           /* CR at the end of the line */
	P_SKIP,         /* rest of a bad line */
	P_SKIPLIT,      /* non-synchronizing literal bytes of a bad line */
};

struct pa {
	enum imap_arg_kind kind;
	size_t off, len;
	uint32_t parent, nchildren, next, last;
	int literal8;
};

struct imap_parser {
	struct imap_limits lim;
	enum pstate st;
	int fresh;              /* reset the command at the next byte */
	struct buf arena;       /* token bytes, each token NUL-terminated */
	struct pa *pa;
	size_t npa, pacap;
	uint32_t list;          /* the open list */
	unsigned depth;
	size_t tok_off;         /* start of the token being read */
	size_t name_off;
	int have_tag, have_name;
	struct buf tag;         /* kept apart: errors report it */
	size_t line_len;
	int bracket;            /* [ ] nesting inside an atom */
	uint64_t lit_size, lit_total;
	int lit_kind;           /* 0 sync, '+', '-' */
	int lit8, lit_digits, lit_big;
	const char *err;
	int must_close;
	int too_big;     /* the error is a literal over the size limit */
	int sk_state;           /* skip-mode tail scanner: see skip_byte */
	uint64_t sk_num, sk_left;
	struct imap_arg *out;
	size_t outcap;
	struct imap_command cmd;
};

struct imap_parser *
imap_parser_new(const struct imap_limits *lim)
{
	static const struct imap_limits def = IMAP_LIMITS_DEFAULT;
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->lim = lim ? *lim : def;
	buf_init(&p->arena, 0);
	buf_init(&p->tag, 0);
	p->fresh = 1;
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	buf_free(&p->arena);
	buf_free(&p->tag);
	free(p->pa);
	free(p->out);
	free(p);
	*pp = NULL;
}

static void
reset_command(struct imap_parser *p)
{
	buf_reset(&p->arena);
	buf_reset(&p->tag);
	p->npa = 0;
	p->depth = 0;
	p->have_tag = p->have_name = 0;
	p->line_len = 0;
	p->lit_total = 0;
	p->err = NULL;
	p->must_close = 0;
	p->too_big = 0;
	p->lit8 = 0;
	p->fresh = 0;
}

/* Append a token or list to the open list; -1 past args_max. */
static int
add_arg(struct imap_parser *p, enum imap_arg_kind kind, size_t off, size_t len)
{
	if (p->npa >= p->lim.args_max + 1u)
		return -1;
	if (p->npa == p->pacap) {
		p->pacap = p->pacap ? p->pacap * 2 : 32;
		p->pa = xreallocarray(p->pa, p->pacap, sizeof(*p->pa));
	}
	uint32_t i = (uint32_t)p->npa++;
	struct pa *a = &p->pa[i];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->off = off;
	a->len = len;
	a->literal8 = p->lit8;
	if (i == 0) {
		a->parent = 0;
		return 0;
	}
	a->parent = p->list;
	struct pa *l = &p->pa[p->list];
	if (l->nchildren++ > 0)
		p->pa[l->last].next = i;
	l->last = i;
	return 0;
}

static void
start_token(struct imap_parser *p)
{
	p->tok_off = p->arena.len;
}

static int
end_token(struct imap_parser *p, enum imap_arg_kind kind)
{
	size_t len = p->arena.len - p->tok_off;

	buf_putc(&p->arena, 0);
	if (kind == IMAP_ARG_ATOM && len == 3
	    && strncasecmp(p->arena.data + p->tok_off, "NIL", 3) == 0)
		kind = IMAP_ARG_NIL;
	int rc = add_arg(p, kind, p->tok_off, len);
	p->lit8 = 0;
	return rc;
}

static enum imap_result
fail(struct imap_parser *p, const char *reason, int at_lf)
{
	p->err = reason;
	p->sk_state = 0;
	if (at_lf) {
		p->st = P_TAG;
		p->fresh = 1;
	} else
		p->st = P_SKIP;
	return IMAP_ERROR;
}

static enum imap_result
finish_command(struct imap_parser *p)
{
	if (p->depth > 0)
		return fail(p, "Missing ')'", 1);
	if (p->npa > p->outcap) {
		p->outcap = p->npa;
		p->out = xreallocarray(p->out, p->outcap, sizeof(*p->out));
	}
	for (size_t i = 0; i < p->npa; i++) {
		p->out[i].kind = p->pa[i].kind;
		p->out[i].str = p->arena.data + p->pa[i].off;
		p->out[i].len = p->pa[i].len;
		p->out[i].nchildren = p->pa[i].nchildren;
		p->out[i].next = p->pa[i].next;
		p->out[i].literal8 = p->pa[i].literal8;
	}
	p->cmd.tag = buf_cstr(&p->tag);
	p->cmd.name = p->arena.data + p->name_off;
	p->cmd.args = p->out;
	p->cmd.nargs = p->npa;
	p->st = P_TAG;
	p->fresh = 1;
	return IMAP_DONE;
}

static int
is_arg_atom_char(unsigned char c)
{
	/* ATOM-CHAR plus ']' (astring), '%' and '*' (list-mailbox, sequence
	 * sets) and '\\' (flags). */
	return c > ' ' && c < 127 && c != '(' && c != ')' && c != '{' && c != '"';
}

static int
is_tag_char(unsigned char c)
{
	return c > ' ' && c < 127 && strchr("(){%*\"\\+", c) == NULL;
}

/* The literal announced by "{n}" is complete up to its line end. */
static enum imap_result
literal_start(struct imap_parser *p)
{
	int nonsync = p->lit_kind != 0;

	if (nonsync && (p->lit_big || (!p->lim.literal_plus
	    && p->lit_size > IMAP_LITERAL_MINUS_MAX))) {
		/* The bytes are coming whatever we say. */
		p->must_close = 1;
		p->too_big = 1;
		p->err = "[TOOBIG] Literal too big";
		p->st = P_SKIPLIT;
		p->sk_left = p->lit_size;
		p->sk_state = 0;
		return IMAP_ERROR;
	}
	if (p->lit_big) {
		p->too_big = 1;
		return fail(p, "[TOOBIG] Literal too big", 1);
	}
	p->lit_total += p->lit_size;
	start_token(p);
	if (nonsync) {
		p->st = P_LITDATA;
		if (p->lit_size == 0) {
			if (end_token(p, IMAP_ARG_LITERAL) < 0)
				return fail(p, "Too many arguments", 0);
			p->st = P_AFTERTOK;
		}
		return IMAP_NEED_MORE;
	}
	p->st = P_LITWAIT;
	return IMAP_LITERAL;
}

uint64_t
imap_parser_literal_size(const struct imap_parser *p)
{
	return p->lit_size;
}

void
imap_literal_accept(struct imap_parser *p)
{
	if (p->st != P_LITWAIT)
		return;
	p->st = P_LITDATA;
	if (p->lit_size == 0) {
		if (end_token(p, IMAP_ARG_LITERAL) < 0)
			(void)fail(p, "Too many arguments", 0);
		else
			p->st = P_AFTERTOK;
	}
}

void
imap_literal_reject(struct imap_parser *p)
{
	if (p->st != P_LITWAIT)
		return;
	p->st = P_TAG;
	p->fresh = 1;
}

/* Skip mode: watch for "{n+}" / "{n-}" right before the line end, whose
 * bytes the client sends without waiting. States: 0 nothing, 1 after '{',
 * 2 digits, 3 '+'/'-', 4 '}' of a non-sync literal, 5 its CR. Returns 1
 * at the end of the line. */
static int
skip_byte(struct imap_parser *p, unsigned char c)
{
	if (c == '\n') {
		if (p->sk_state == 4 || p->sk_state == 5) {
			p->sk_left = p->sk_num;
			p->st = P_SKIPLIT;
			p->sk_state = 0;
			return 0;
		}
		return 1;
	}
	switch (p->sk_state) {
	case 1:
	case 2:
		if (c >= '0' && c <= '9') {
			if (p->sk_num <= UINT64_MAX / 20)
				p->sk_num = p->sk_num * 10 + (c - '0');
			p->sk_state = 2;
			return 0;
		}
		p->sk_state = p->sk_state == 2 && (c == '+' || c == '-') ? 3 : 0;
		break;
	case 3:
		p->sk_state = c == '}' ? 4 : 0;
		break;
	case 4:
		p->sk_state = c == '\r' ? 5 : 0;
		break;
	default:
		p->sk_state = 0;
	}
	if (c == '{') {
		p->sk_state = 1;
		p->sk_num = 0;
	}
	return 0;
}

enum imap_result
imap_parse(struct imap_parser *p, const char *in, size_t n, size_t *consumed_r)
{
	size_t i = 0;
	enum imap_result r;

#define RETURN(res) do { *consumed_r = i + 1; return (res); } while (0)
	if (p->st == P_LITWAIT) {
		*consumed_r = 0;
		return IMAP_LITERAL;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (p->st == P_LITDATA) {
			size_t take = n - i;
			if (take > p->lit_size - (p->arena.len - p->tok_off))
				take = (size_t)(p->lit_size - (p->arena.len - p->tok_off));
			buf_append(&p->arena, in + i, take);
			i += take - 1;
			if (p->arena.len - p->tok_off == p->lit_size) {
				if (end_token(p, IMAP_ARG_LITERAL) < 0)
					RETURN(fail(p, "Too many arguments", 0));
				p->st = P_AFTERTOK;
			}
			continue;
		}
		if (p->st == P_SKIPLIT) {
			size_t take = n - i;
			if (take > p->sk_left)
				take = (size_t)p->sk_left;
			p->sk_left -= take;
			if (p->sk_left == 0)
				p->st = P_SKIP;
			i += take;
			i--;                /* unsigned wrap is fine: the loop adds 1 */
			continue;
		}
		if (p->st == P_SKIP) {
			if (skip_byte(p, c)) {
				p->st = P_TAG;
				p->fresh = 1;
			}
			continue;
		}
		if (p->fresh) {
			if (c == '\n' || c == '\r')
				continue;       /* empty lines are ignored */
			reset_command(p);
			if (p->lim.untagged) {
				p->have_tag = 1;
				p->st = P_NAME;
				p->name_off = p->arena.len;
			}
		}
		if (++p->line_len > p->lim.line_max)
			RETURN(fail(p, "Command line too long", c == '\n'));
		if (c == 0)
			RETURN(fail(p, "NUL in command", 0));

		switch (p->st) {
		case P_TAG:
			if (c == ' ' && p->tag.len > 0) {
				p->have_tag = 1;
				p->st = P_NAME;
				p->name_off = p->arena.len;
			} else if (c == '\n' || c == '\r')
				RETURN(fail(p, "Missing command", c == '\n'));
			else if (!is_tag_char(c))
				RETURN(fail(p, "Invalid tag", 0));
			else
				buf_putc(&p->tag, c);
			break;
		case P_NAME:
			if (c == ' ' || c == '\r' || c == '\n') {
				if (p->arena.len == p->name_off)
					RETURN(fail(p, "Missing command", c == '\n'));
				buf_putc(&p->arena, 0);
				p->have_name = 1;
				(void)add_arg(p, IMAP_ARG_LIST, p->arena.len, 0);  /* the root */
				p->list = 0;
				if (c == '\n')
					RETURN(finish_command(p));
				p->st = c == ' ' ? P_ARGSTART : P_CR;
			} else if (c < 127 && (isalnum(c) || c == '-' || c == '_' || c == '.'))
				buf_putc(&p->arena, toupper(c));
			else
				RETURN(fail(p, "Invalid command name", 0));
			break;
		case P_AFTERTOK:
			if (c != ' ' && c != ')' && c != '\r' && c != '\n')
				RETURN(fail(p, "Missing space between arguments", 0));
			/* FALLTHROUGH */
		case P_ARGSTART:
			if (c == ' ')
				p->st = P_ARGSTART;
			else if (c == '(') {
				if (p->depth >= p->lim.depth_max)
					RETURN(fail(p, "Too deeply nested", 0));
				if (add_arg(p, IMAP_ARG_LIST, p->arena.len, 0) < 0)
					RETURN(fail(p, "Too many arguments", 0));
				p->list = (uint32_t)(p->npa - 1);
				p->depth++;
				p->st = P_ARGSTART;
			} else if (c == ')') {
				if (p->depth == 0)
					RETURN(fail(p, "Unexpected ')'", 0));
				p->depth--;
				p->list = p->pa[p->list].parent;
				p->st = P_AFTERTOK;
			} else if (c == '"') {
				start_token(p);
				p->st = P_QUOTED;
			} else if (c == '{') {
				p->lit_size = 0;
				p->lit_kind = p->lit_digits = p->lit_big = 0;
				p->st = P_LITLEN;
			} else if (c == '~') {
				p->st = P_TILDE;
			} else if (c == '\r')
				p->st = P_CR;
			else if (c == '\n')
				RETURN(finish_command(p));
			else if (is_arg_atom_char(c)) {
				start_token(p);
				buf_putc(&p->arena, c);
				p->bracket = c == '[';
				p->st = c == '[' ? P_BRACKET : P_ATOM;
			} else
				RETURN(fail(p, "Invalid character in command", 0));
			break;
		case P_ATOM:
			if (c == ' ' || c == ')' || c == '\r' || c == '\n') {
				if (end_token(p, IMAP_ARG_ATOM) < 0)
					RETURN(fail(p, "Too many arguments", c == '\n'));
				p->st = P_ARGSTART;
				i--;            /* the separator is handled there */
				p->line_len--;
			} else if (c == '[') {
				buf_putc(&p->arena, c);
				p->bracket = 1;
				p->st = P_BRACKET;
			} else if (is_arg_atom_char(c))
				buf_putc(&p->arena, c);
			else
				RETURN(fail(p, "Invalid character in atom", 0));
			break;
		case P_BRACKET:
			if (c == '\r' || c == '\n')
				RETURN(fail(p, "Missing ']'", c == '\n'));
			buf_putc(&p->arena, c);
			if (c == '"')
				p->st = P_BRACKET_Q;
			else if (c == '[') {
				if (++p->bracket > 8)
					RETURN(fail(p, "Too deeply nested", 0));
			} else if (c == ']' && --p->bracket == 0)
				p->st = P_ATOM;
			break;
		case P_BRACKET_Q:
		case P_BRACKET_QESC:
			if (c == '\r' || c == '\n')
				RETURN(fail(p, "Unterminated quoted string", c == '\n'));
			buf_putc(&p->arena, c);
			if (p->st == P_BRACKET_QESC)
				p->st = P_BRACKET_Q;
			else if (c == '\\')
				p->st = P_BRACKET_QESC;
			else if (c == '"')
				p->st = P_BRACKET;
			break;
		case P_QUOTED:
			if (c == '\\')
				p->st = P_QESC;
			else if (c == '"') {
				if (end_token(p, IMAP_ARG_QUOTED) < 0)
					RETURN(fail(p, "Too many arguments", 0));
				p->st = P_AFTERTOK;
			} else if (c == '\r' || c == '\n')
				RETURN(fail(p, "Unterminated quoted string", c == '\n'));
			else
				buf_putc(&p->arena, c);
			break;
		case P_QESC:
			if (c != '"' && c != '\\')
				RETURN(fail(p, "Invalid escape in quoted string", c == '\n'));
			buf_putc(&p->arena, c);
			p->st = P_QUOTED;
			break;
		case P_TILDE:
			if (c != '{')
				RETURN(fail(p, "Invalid literal8", c == '\n'));
			p->lit8 = 1;
			p->lit_size = 0;
			p->lit_kind = p->lit_digits = p->lit_big = 0;
			p->st = P_LITLEN;
			break;
		case P_LITLEN:
			if (c >= '0' && c <= '9' && p->lit_kind == 0) {
				if (++p->lit_digits > 20)
					RETURN(fail(p, "Invalid literal size", 0));
				if (!p->lit_big) {
					p->lit_size = p->lit_size * 10 + (c - '0');
					if (p->lit_size > p->lim.literal_max
					    || p->lit_size > p->lim.literal_total_max - p->lit_total)
						p->lit_big = 1;
				}
			} else if ((c == '+' || c == '-') && p->lit_digits > 0 && p->lit_kind == 0)
				p->lit_kind = c;
			else if (c == '}' && p->lit_digits > 0)
				p->st = P_LITEND;
			else
				RETURN(fail(p, "Invalid literal", c == '\n'));
			break;
		case P_LITEND:
		case P_LITLF:
			if (c == '\r' && p->st == P_LITEND)
				p->st = P_LITLF;
			else if (c == '\n') {
				r = literal_start(p);
				if (r != IMAP_NEED_MORE)
					RETURN(r);
			} else
				RETURN(fail(p, "Literal must end the line", 0));
			break;
		case P_CR:
			if (c != '\n')
				RETURN(fail(p, "CR without LF", 0));
			RETURN(finish_command(p));
		default:
			abort();
		}
	}
	*consumed_r = n;
	return IMAP_NEED_MORE;
#undef RETURN
}

const struct imap_command *
imap_parser_command(const struct imap_parser *p)
{
	return &p->cmd;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->err ? p->err : "";
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	return p->have_tag ? buf_cstr(&p->tag) : NULL;
}

int
imap_parser_must_close(const struct imap_parser *p)
{
	return p->must_close;
}

int
imap_parser_too_big(const struct imap_parser *p)
{
	return p->too_big;
}

const struct imap_arg *
imap_arg_child(const struct imap_command *c, size_t li, size_t k)
{
	if (li >= c->nargs || c->args[li].kind != IMAP_ARG_LIST
	    || k >= c->args[li].nchildren)
		return NULL;
	size_t i = li + 1;
	while (k-- > 0)
		i = c->args[i].next;
	return &c->args[i];
}

int
imap_arg_is_string(const struct imap_arg *a)
{
	return a && (a->kind == IMAP_ARG_ATOM || a->kind == IMAP_ARG_QUOTED
	    || a->kind == IMAP_ARG_LITERAL);
}

/* --- Sequence sets --------------------------------------------------------- */

static int
seq_number(const char *s, size_t n, size_t *i, uint32_t *v)
{
	if (*i < n && s[*i] == '*') {
		(*i)++;
		*v = IMAP_SEQ_STAR;
		return 0;
	}
	if (*i >= n || s[*i] < '1' || s[*i] > '9')
		return -1;
	uint64_t x = 0;
	while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
		x = x * 10 + (uint64_t)(s[(*i)++] - '0');
		if (x >= IMAP_SEQ_STAR)
			return -1;
	}
	*v = (uint32_t)x;
	return 0;
}

int
imap_seqset_parse(const char *s, size_t n, struct imap_seqset *set,
    const char **err_r)
{
	size_t i = 0, cap = 0;

	memset(set, 0, sizeof(*set));
	if (n == 1 && s[0] == '$') {
		set->saved = 1;
		return 0;
	}
	for (;;) {
		uint32_t lo, hi;
		if (seq_number(s, n, &i, &lo) < 0)
			goto bad;
		hi = lo;
		if (i < n && s[i] == ':') {
			i++;
			if (seq_number(s, n, &i, &hi) < 0)
				goto bad;
		}
		if (set->n >= IMAP_SEQSET_MAX_RANGES) {
			*err_r = "Sequence set too long";
			goto fail;
		}
		if (set->n == cap) {
			cap = cap ? cap * 2 : 8;
			set->r = xreallocarray(set->r, cap, sizeof(*set->r));
		}
		set->r[set->n].lo = lo < hi ? lo : hi;
		set->r[set->n].hi = lo < hi ? hi : lo;
		set->n++;
		if (i == n)
			return 0;
		if (s[i++] != ',')
			goto bad;
	}
bad:
	*err_r = "Invalid sequence set";
fail:
	imap_seqset_free(set);
	return -1;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

int
imap_seqset_resolve(struct imap_seqset *set, uint32_t max, int clamp)
{
	for (size_t k = 0; k < set->n; k++) {
		struct imap_seq_range *r = &set->r[k];
		if (r->lo == IMAP_SEQ_STAR)
			r->lo = max;
		if (r->hi == IMAP_SEQ_STAR)
			r->hi = max;
		if (r->lo > r->hi) {
			uint32_t t = r->lo;
			r->lo = r->hi;
			r->hi = t;
		}
		if (clamp && (r->hi > max || r->lo == 0))
			return -1;
	}
	if (set->n == 0)
		return 0;
	qsort(set->r, set->n, sizeof(*set->r), range_cmp);
	size_t w = 0;
	for (size_t k = 1; k < set->n; k++) {
		if (set->r[k].lo <= set->r[w].hi
		    || (set->r[w].hi != UINT32_MAX && set->r[k].lo == set->r[w].hi + 1)) {
			if (set->r[k].hi > set->r[w].hi)
				set->r[w].hi = set->r[k].hi;
		} else
			set->r[++w] = set->r[k];
	}
	set->n = w + 1;
	return 0;
}

int
imap_seqset_next(const struct imap_seqset *set, uint64_t *it, uint32_t *val)
{
	/* *it = (range index << 32) | offset into the range */
	for (;;) {
		uint64_t k = *it >> 32, off = *it & 0xffffffffu;
		if (k >= set->n)
			return 0;
		const struct imap_seq_range *r = &set->r[k];
		if (r->lo == 0 && off == 0 && r->hi == 0) {
			*it = (k + 1) << 32;
			continue;
		}
		if ((uint64_t)r->lo + off > r->hi) {
			*it = (k + 1) << 32;
			continue;
		}
		*val = (uint32_t)(r->lo + off);
		*it = (uint64_t)r->lo + off == r->hi ? (k + 1) << 32 : (k << 32) | (off + 1);
		if (*val == 0)
			continue;
		return 1;
	}
}

int
imap_seqset_contains(const struct imap_seqset *set, uint32_t val)
{
	for (size_t k = 0; k < set->n; k++)
		if (val >= set->r[k].lo && val <= set->r[k].hi)
			return 1;
	return 0;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	free(set->r);
	memset(set, 0, sizeof(*set));
}

/* --- FETCH attributes ------------------------------------------------------ */

int
imap_fetch_att_split(const char *s, size_t n, struct imap_fetch_att *fa,
    const char **err_r)
{
	size_t i = 0;

	memset(fa, 0, sizeof(*fa));
	while (i < n && s[i] != '[' && s[i] != '<')
		i++;
	fa->name = s;
	fa->name_len = i;
	if (i == 0) {
		*err_r = "Invalid fetch attribute";
		return -1;
	}
	if (i < n && s[i] == '[') {
		size_t start = ++i;
		int depth = 1, q = 0;
		for (; i < n; i++) {
			if (q) {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				else if (s[i] == '"')
					q = 0;
			} else if (s[i] == '"')
				q = 1;
			else if (s[i] == '[')
				depth++;
			else if (s[i] == ']' && --depth == 0)
				break;
		}
		if (i >= n) {
			*err_r = "Missing ']'";
			return -1;
		}
		fa->has_section = 1;
		fa->section = s + start;
		fa->section_len = i - start;
		i++;
	}
	if (i < n && s[i] == '<') {
		uint64_t v[2] = { 0, 0 };
		int k = 0;
		i++;
		for (;;) {
			size_t d = i;
			while (i < n && s[i] >= '0' && s[i] <= '9' && v[k] <= UINT32_MAX)
				v[k] = v[k] * 10 + (uint64_t)(s[i++] - '0');
			if (i == d || v[k] > UINT32_MAX || i >= n)
				goto badpartial;
			if (k == 0 && s[i] == '.') {
				k = 1;
				i++;
				continue;
			}
			if (s[i] != '>' || k != 1 || v[1] == 0)
				goto badpartial;
			i++;
			break;
		}
		fa->has_partial = 1;
		fa->partial_off = (uint32_t)v[0];
		fa->partial_len = (uint32_t)v[1];
	}
	if (i != n) {
		*err_r = "Junk after fetch attribute";
		return -1;
	}
	return 0;
badpartial:
	*err_r = "Invalid partial";
	return -1;
}

/* --- Dates --------------------------------------------------------------- */

int64_t
imap_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Count from 1 March so the leap day ends the year: era of 400
	 * years = 146097 days. */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

unsigned
imap_month(const char *s)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";

	for (unsigned k = 0; k < 12; k++)
		if (strncasecmp(s, months + 3 * k, 3) == 0)
			return k + 1;
	return 0;
}
