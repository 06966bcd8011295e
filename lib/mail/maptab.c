/*
 * maptab - tables parsed from text: cidr, regexp, pcre, and key/value
 * hashes (texthash:, inline:{}). See maptab.h for the formats.
 *
 * Pattern tables are a flat array of rules in file order. An "if" rule
 * records the index of its "endif", so a lookup is one forward walk with
 * no recursion: a failed "if" jumps past its block, a passed one steps
 * in, and "endif" is a no-op. The first matching rule answers.
 *
 * Trusts: nothing in the text. Lines are bounded (MAPTAB_LINE_MAX), as
 * are the rule count and if-nesting; every $n in a result is checked at
 * parse time against the pattern's group count, so expansion can only
 * copy bytes of the key and of the result.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/net.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/maptab.h"

#define CAPS_MAX 100         /* $0..$99: groups a result can name */
#define UNSET SIZE_MAX

enum rule_kind { R_MATCH, R_IF, R_ENDIF };

struct rule {
	enum rule_kind kind;
	int neg;
	size_t endif;        /* R_IF: index of the matching endif */
	/* cidr */
	struct net_addr net;
	unsigned plen;
	/* regexp, pcre */
	regex_t re;
	int re_ok;
	pcre2_code *pc;
	size_t ngroups;
	char *result;
};

struct hent {
	char *key;
	char *value;
	size_t seq;
	int lineno;
};

struct maptab {
	enum maptab_type type;
	char *src;
	struct rule *r;
	size_t nr;
	struct hent *h;
	size_t nh;
};

void
maptab_free(struct maptab **tp)
{
	struct maptab *t = *tp;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nr; i++) {
		if (t->r[i].re_ok)
			regfree(&t->r[i].re);
		pcre2_code_free(t->r[i].pc);
		free(t->r[i].result);
	}
	for (i = 0; i < t->nh; i++) {
		free(t->h[i].key);
		free(t->h[i].value);
	}
	free(t->r);
	free(t->h);
	free(t->src);
	free(t);
	*tp = NULL;
}

/* Does the word w (case-insensitive) start s, followed by a blank or end? */
static const char *
keyword(const char *s, const char *w)
{
	size_t n = strlen(w);

	if (strncasecmp(s, w, n) != 0)
		return NULL;
	if (s[n] != '\0' && !isspace((unsigned char)s[n]))
		return NULL;
	s += n;
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* Results: "$n", "${n}", "$(n)", "$$". Returns the group number, -2 for
 * "$$", or -1 for a malformed reference; *len_r is the bytes consumed. */
static int
dollar_ref(const char *s, size_t *len_r)
{
	const char *p = s + 1;
	char close;
	int n = 0, digits = 0;

	if (*p == '$') {
		*len_r = 2;
		return -2;
	}
	if (isdigit((unsigned char)*p)) {
		*len_r = 2;
		return *p - '0';
	}
	if (*p != '{' && *p != '(')
		return -1;
	close = *p == '{' ? '}' : ')';
	for (p++; isdigit((unsigned char)*p) && digits < 2; p++, digits++)
		n = n * 10 + (*p - '0');
	if (digits == 0 || *p != close)
		return -1;
	*len_r = (size_t)(p + 1 - s);
	return n;
}

static char *
check_result(const char *res, size_t ngroups, int neg)
{
	size_t len;
	int n;

	for (; *res != '\0'; res++) {
		if (*res != '$')
			continue;
		n = dollar_ref(res, &len);
		if (n == -1)
			return xstrdup("bad '$' in result: use $n, ${n} or $$");
		if (n >= 0 && neg)
			return xstrdup("$n in the result of a negated pattern");
		if (n >= 0 && (n < 1 || (size_t)n > ngroups))
			return xasprintf("$%d: no such group in the pattern", n);
		res += len - 1;
	}
	return NULL;
}

/* caps: (start, end) byte offsets into key per group, UNSET if none. */
static char *
expand_result(const char *res, const char *key, const size_t (*caps)[2],
    size_t ncaps)
{
	struct buf b = BUF_INIT(0);
	size_t len;
	char *out;
	int n;

	for (; *res != '\0'; res++) {
		if (*res != '$') {
			(void)buf_putc(&b, *res);
			continue;
		}
		n = dollar_ref(res, &len);   /* checked at parse time */
		res += len - 1;
		if (n == -2)
			(void)buf_putc(&b, '$');
		else if (n >= 0 && (size_t)n < ncaps && caps[n][0] != UNSET)
			(void)buf_append(&b, key + caps[n][0], caps[n][1] - caps[n][0]);
	}
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* CIDR */

/* "net/bits" or "address" (all bits), optionally in []: the host bits
 * must be zero, as Postfix insists, so a typo cannot widen a network. */
static char *
parse_cidr(const char *tok, struct rule *r)
{
	struct net_addr masked;
	char shown[INET6_ADDRSTRLEN];
	unsigned i, max;

	if (net_prefix_parse(tok, 1, &r->net, &r->plen) != 0)
		return xasprintf("bad address pattern \"%s\"", tok);
	max = r->net.family == AF_INET ? 32 : 128;
	masked = r->net;
	for (i = r->plen; i < max; i++)
		masked.b[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
	if (memcmp(masked.b, r->net.b, max / 8) != 0) {
		inet_ntop(masked.family, masked.b, shown, sizeof(shown));
		return xasprintf("non-null host address bits in \"%s\", "
		    "perhaps you should use \"%s/%u\" instead", tok, shown, r->plen);
	}
	return NULL;
}

/* Regular expressions */

/* "/re/flags" with any non-alphanumeric delimiter; a backslash keeps
 * the next character (the delimiter included) inside the pattern, and
 * stays there, as the regex engine reads it too. */
static char *
split_delimited(const char **pp, char **re_r, char **flags_r)
{
	const char *p = *pp, *start;
	char d = *p;

	if (d == '\0' || isalnum((unsigned char)d) || isspace((unsigned char)d) ||
	    d == '\\')
		return xstrdup("expected /pattern/");
	start = ++p;
	while (*p != '\0' && *p != d) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	if (*p == '\0')
		return xasprintf("missing closing '%c' delimiter", d);
	*re_r = xstrndup(start, (size_t)(p - start));
	start = ++p;
	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	*flags_r = xstrndup(start, (size_t)(p - start));
	while (isspace((unsigned char)*p))
		p++;
	*pp = p;
	return NULL;
}

/* POSIX leaves adjacent repetition operators ("a++", "(.*)*+") undefined,
 * and glibc's regcomp answers a run of them with memory exponential in
 * its length. Refuse them in extended expressions: no portable table
 * needs them. Bracket expressions and escapes are skipped. */
static int
adjacent_repeats(const char *p)
{
	int prev_rep = 0;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			prev_rep = 0;
		} else if (*p == '[') {
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p != '\0' && *p != ']') {
				if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
					const char *e = strchr(p + 2, p[1]);

					p = e != NULL && e[1] == ']' ? e + 1 : p;
				}
				p++;
			}
			if (*p == '\0')
				return 0;   /* regcomp reports the open bracket */
			prev_rep = 0;
		} else if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
			if (prev_rep)
				return 1;
			if (*p == '{') {
				while (p[1] != '\0' && p[1] != '}')
					p++;
				if (p[1] == '\0')
					return 0;
				p++;
			}
			prev_rep = 1;
		} else
			prev_rep = 0;
	}
	return 0;
}

static char *
compile_regexp(const char *re, const char *flags, struct rule *r)
{
	int cflags = REG_EXTENDED | REG_ICASE, rc;
	char msg[256];

	for (; *flags != '\0'; flags++) {
		switch (*flags) {
		case 'i': cflags ^= REG_ICASE; break;
		case 'x': cflags ^= REG_EXTENDED; break;
		case 'm': cflags ^= REG_NEWLINE; break;
		default:
			return xasprintf("unknown regexp flag '%c'", *flags);
		}
	}
	if ((cflags & REG_EXTENDED) && adjacent_repeats(re))
		return xasprintf("bad regular expression /%s/: adjacent repetition "
		    "operators", re);
	rc = regcomp(&r->re, re, cflags);
	if (rc != 0) {
		regerror(rc, &r->re, msg, sizeof(msg));
		return xasprintf("bad regular expression /%s/: %s", re, msg);
	}
	r->re_ok = 1;
	r->ngroups = r->re.re_nsub < CAPS_MAX ? r->re.re_nsub : CAPS_MAX - 1;
	return NULL;
}

static char *
compile_pcre(const char *re, const char *flags, struct rule *r)
{
	uint32_t opts = PCRE2_CASELESS, ncap = 0;
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	int rc;

	for (; *flags != '\0'; flags++) {
		switch (*flags) {
		case 'i': opts ^= PCRE2_CASELESS; break;
		case 'm': opts ^= PCRE2_MULTILINE; break;
		case 's': opts ^= PCRE2_DOTALL; break;
		case 'x': opts ^= PCRE2_EXTENDED; break;
		case 'A': opts ^= PCRE2_ANCHORED; break;
		case 'E': opts ^= PCRE2_DOLLAR_ENDONLY; break;
		case 'U': opts ^= PCRE2_UNGREEDY; break;
		case 'X':
			/* PCRE's "extra" strictness (an unknown escape is an
			 * error) is always on in PCRE2 */
			break;
		default:
			return xasprintf("unknown pcre flag '%c'", *flags);
		}
	}
	r->pc = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &rc,
	    &off, NULL);
	if (r->pc == NULL) {
		pcre2_get_error_message(rc, msg, sizeof(msg));
		return xasprintf("bad regular expression /%s/ at offset %zu: %s",
		    re, (size_t)off, (char *)msg);
	}
	(void)pcre2_pattern_info(r->pc, PCRE2_INFO_CAPTURECOUNT, &ncap);
	r->ngroups = ncap < CAPS_MAX ? ncap : CAPS_MAX - 1;
	return NULL;
}

/* Parse "[!]pattern" at *pp into r; *pp moves past it and its blanks. */
static char *
parse_pattern(enum maptab_type t, const char **pp, struct rule *r)
{
	const char *p = *pp;
	char *re = NULL, *flags = NULL, *why;

	if (*p == '!') {
		r->neg = 1;
		p++;
	}
	if (t == MAPTAB_CIDR) {
		const char *s = p;
		char *tok;

		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		tok = xstrndup(s, (size_t)(p - s));
		why = *tok == '\0' ? xstrdup("missing address pattern") :
		    parse_cidr(tok, r);
		free(tok);
		while (isspace((unsigned char)*p))
			p++;
		*pp = p;
		return why;
	}
	why = split_delimited(&p, &re, &flags);
	if (why == NULL)
		why = t == MAPTAB_PCRE ? compile_pcre(re, flags, r) :
		    compile_regexp(re, flags, r);
	free(re);
	free(flags);
	*pp = p;
	return why;
}

static char *
parse_rule(struct maptab *t, const char *line, struct rule *r,
    size_t *open, size_t *depth)
{
	const char *p;
	char *why;

	if ((p = keyword(line, "endif")) != NULL) {
		if (*depth == 0)
			return xstrdup("endif without if");
		if (*p != '\0')
			return xstrdup("text after endif");
		r->kind = R_ENDIF;
		t->r[open[--*depth]].endif = t->nr;
		return NULL;
	}
	if ((p = keyword(line, "if")) != NULL) {
		if (*depth >= MAPTAB_NEST_MAX)
			return xasprintf("if nested deeper than %d", MAPTAB_NEST_MAX);
		r->kind = R_IF;
		if ((why = parse_pattern(t->type, &p, r)) != NULL)
			return why;
		if (*p != '\0')
			return xstrdup("text after the pattern of an if");
		open[(*depth)++] = t->nr;
		return NULL;
	}
	r->kind = R_MATCH;
	p = line;
	if ((why = parse_pattern(t->type, &p, r)) != NULL)
		return why;
	if (*p == '\0')
		return xstrdup("missing result after the pattern");
	if (t->type != MAPTAB_CIDR &&
	    (why = check_result(p, r->ngroups, r->neg)) != NULL)
		return why;
	r->result = xstrdup(p);
	return NULL;
}

static struct maptab *
parse_rules(struct maptab *t, const char *text, size_t len, char **err_r)
{
	struct buf line = BUF_INIT(0);
	struct lline ll;
	const char *lwhy;
	size_t open[MAPTAB_NEST_MAX], depth = 0, cap = 0;
	int lineno, r, if_line[MAPTAB_NEST_MAX];
	char *why = NULL;

	lline_init(&ll, text, len);
	ll.max = MAPTAB_LINE_MAX;
	while ((r = lline_next(&ll, &line, &lineno, &lwhy)) != 0) {
		if (r < 0) {
			why = xstrdup(lwhy);
			break;
		}
		if (t->nr >= MAPTAB_RULES_MAX) {
			why = xasprintf("more than %d rules", MAPTAB_RULES_MAX);
			break;
		}
		if (t->nr == cap) {
			cap = cap ? cap * 2 : 16;
			t->r = xreallocarray(t->r, cap, sizeof(*t->r));
		}
		memset(&t->r[t->nr], 0, sizeof(t->r[t->nr]));
		if (depth < MAPTAB_NEST_MAX)
			if_line[depth] = lineno;
		why = parse_rule(t, line.data, &t->r[t->nr], open, &depth);
		t->nr++;     /* a half-built rule is freed with the rest */
		if (why != NULL)
			break;
	}
	if (why == NULL && depth > 0) {
		lineno = if_line[depth - 1];
		why = xstrdup("if without endif");
	}
	buf_free(&line);
	if (why != NULL) {
		*err_r = xasprintf("%s:%d: %s", t->src, lineno, why);
		free(why);
		maptab_free(&t);
	}
	return t;
}

/* Hashes */

const char *
maptab_parse_entry(char *line, char **key_r, char **value_r)
{
	char *p = line, *key, *value;
	size_t n;

	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		/* aliases(5) lets "name:value" go without a blank */
		p = strchr(line, ':');
		if (p == NULL || p[1] == '\0')
			return "expected format: key whitespace value";
	}
	*p++ = '\0';
	key = line;
	value = p;
	n = strlen(key);
	if (n > 0 && key[n - 1] == ':')
		key[--n] = '\0';
	if (n == 0)
		return "missing key";
	str_trim(value);
	if (*value == '\0')
		return "expected format: key whitespace value";
	if (strlen(value) > MAPTAB_VALUE_MAX)
		return "value too long";
	*key_r = str_lower(xstrdup(key));
	*value_r = xstrdup(value);
	return NULL;
}

static void
hash_add(struct maptab *t, char *key, char *value, int lineno, size_t *cap)
{
	if (t->nh == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		t->h = xreallocarray(t->h, *cap, sizeof(*t->h));
	}
	t->h[t->nh].key = key;
	t->h[t->nh].value = value;
	t->h[t->nh].lineno = lineno;
	t->h[t->nh].seq = t->nh;
	t->nh++;
}

static int
hent_cmp(const void *a, const void *b)
{
	const struct hent *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort by key; of duplicates keep the first written, as postmap does. */
static void
hash_finish(struct maptab *t)
{
	size_t i, o = 0;

	if (t->nh == 0)
		return;     /* t->h may be NULL: qsort must not see it */
	qsort(t->h, t->nh, sizeof(*t->h), hent_cmp);
	for (i = 0; i < t->nh; i++) {
		if (o > 0 && strcmp(t->h[o - 1].key, t->h[i].key) == 0) {
			if (t->h[i].lineno > 0)
				log_warnx("%s:%d: duplicate entry for \"%s\" ignored",
				    t->src, t->h[i].lineno, t->h[i].key);
			else
				log_warnx("%s: duplicate entry for \"%s\" ignored",
				    t->src, t->h[i].key);
			free(t->h[i].key);
			free(t->h[i].value);
			continue;
		}
		t->h[o++] = t->h[i];
	}
	t->nh = o;
}

static struct maptab *
parse_hash(struct maptab *t, const char *text, size_t len, char **err_r)
{
	struct buf line = BUF_INIT(0);
	struct lline ll;
	const char *why;
	char *key, *value;
	size_t cap = 0;
	int lineno, r;

	lline_init(&ll, text, len);
	ll.max = MAPTAB_VALUE_MAX + 1024;
	while ((r = lline_next(&ll, &line, &lineno, &why)) != 0) {
		if (r > 0)
			why = maptab_parse_entry(line.data, &key, &value);
		if (why != NULL) {
			*err_r = xasprintf("%s:%d: %s", t->src, lineno, why);
			buf_free(&line);
			maptab_free(&t);
			return NULL;
		}
		hash_add(t, key, value, lineno, &cap);
	}
	buf_free(&line);
	hash_finish(t);
	return t;
}

struct maptab *
maptab_parse(enum maptab_type type, const char *src, const char *text,
    size_t len, char **err_r)
{
	struct maptab *t = xcalloc(1, sizeof(*t));

	*err_r = NULL;
	t->type = type;
	t->src = xstrdup(src);
	if (type == MAPTAB_HASH)
		return parse_hash(t, text, len, err_r);
	return parse_rules(t, text, len, err_r);
}

/* "key=value, { key = value, with blanks }": items split at commas and
 * blanks, braces keep one item together. */
struct maptab *
maptab_parse_inline(const char *src, const char *body, char **err_r)
{
	struct maptab *t = xcalloc(1, sizeof(*t));
	const char *p = body, *start, *end;
	char *item, *eq, *why = NULL;
	size_t cap = 0;
	int depth;

	*err_r = NULL;
	t->type = MAPTAB_HASH;
	t->src = xstrdup(src);
	for (;;) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		if (*p == '{') {
			start = ++p;
			for (depth = 1; *p != '\0'; p++) {
				if (*p == '{')
					depth++;
				else if (*p == '}' && --depth == 0)
					break;
			}
			if (*p == '\0') {
				why = xstrdup("missing '}'");
				break;
			}
			end = p++;
		} else {
			start = p;
			while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p))
				p++;
			end = p;
		}
		item = xstrndup(start, (size_t)(end - start));
		eq = strchr(item, '=');
		if (eq == NULL) {
			why = xasprintf("\"%s\": expected key=value", item);
			free(item);
			break;
		}
		*eq = '\0';
		str_trim(item);
		str_trim(eq + 1);
		if (*item == '\0') {
			why = xasprintf("\"=%s\": missing key", eq + 1);
			free(item);
			break;
		}
		hash_add(t, str_lower(xstrdup(item)), xstrdup(eq + 1), 0, &cap);
		free(item);
	}
	if (why != NULL) {
		*err_r = xasprintf("%s: %s", src, why);
		free(why);
		maptab_free(&t);
		return NULL;
	}
	hash_finish(t);
	return t;
}

/* Lookups */

/* 1 match, 0 none, -1 error. caps gets the groups when not NULL. */
static int
rule_match(const struct maptab *t, const struct rule *r, const char *key,
    size_t (*caps)[2], size_t *ncaps)
{
	if (t->type == MAPTAB_CIDR) {
		struct net_addr a;

		/* keys as Postfix sees them: an IPv4-mapped IPv6 address is
		 * IPv6 here (smtpd passes IPv4 clients as IPv4) */
		if (net_addr_parse(key, strlen(key), &a, 0) != 0)
			return 0;
		return net_prefix_match(&a, &r->net, r->plen);
	}
	if (t->type == MAPTAB_REGEXP) {
		regmatch_t m[CAPS_MAX];
		size_t i, n = r->ngroups + 1;

		if (regexec(&r->re, key, n, m, 0) != 0)
			return 0;
		for (i = 0; caps != NULL && i < n; i++) {
			caps[i][0] = m[i].rm_so < 0 ? UNSET : (size_t)m[i].rm_so;
			caps[i][1] = m[i].rm_so < 0 ? UNSET : (size_t)m[i].rm_eo;
		}
		*ncaps = n;
		return 1;
	} else {
		pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->pc,
		    NULL);
		PCRE2_SIZE *ov;
		size_t i, n;
		int rc;

		if (md == NULL) {
			log_warnx("%s: out of memory for a pcre match", t->src);
			return -1;
		}
		rc = pcre2_match(r->pc, (PCRE2_SPTR)key, strlen(key), 0, 0, md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH) {
			pcre2_match_data_free(md);
			return 0;
		}
		if (rc < 0) {
			PCRE2_UCHAR msg[256];

			pcre2_get_error_message(rc, msg, sizeof(msg));
			log_warnx("%s: pcre match of \"%s\": %s", t->src, key,
			    (char *)msg);
			pcre2_match_data_free(md);
			return -1;
		}
		ov = pcre2_get_ovector_pointer(md);
		n = pcre2_get_ovector_count(md);
		if (n > r->ngroups + 1)
			n = r->ngroups + 1;
		for (i = 0; caps != NULL && i < n; i++) {
			caps[i][0] = ov[2 * i] == PCRE2_UNSET ? UNSET : ov[2 * i];
			caps[i][1] = ov[2 * i] == PCRE2_UNSET ? UNSET : ov[2 * i + 1];
		}
		*ncaps = n;
		pcre2_match_data_free(md);
		return 1;
	}
}

static int
rules_lookup(const struct maptab *t, const char *key, char **value_r)
{
	size_t caps[CAPS_MAX][2], ncaps = 0, i = 0;
	const struct rule *r;
	int m;

	while (i < t->nr) {
		r = &t->r[i];
		if (r->kind == R_ENDIF) {
			i++;
			continue;
		}
		m = rule_match(t, r, key, caps, &ncaps);
		if (m < 0)
			return -1;
		if (r->kind == R_IF) {
			i = m != r->neg ? i + 1 : r->endif + 1;
			continue;
		}
		if (m != r->neg) {
			*value_r = t->type == MAPTAB_CIDR || r->neg ?
			    xstrdup(r->result) :
			    expand_result(r->result, key, (const size_t (*)[2])caps,
			    ncaps);
			return 1;
		}
		i++;
	}
	return 0;
}

static int
hkey_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct hent *)e)->key);
}

int
maptab_lookup(const struct maptab *t, const char *key, char **value_r)
{
	const struct hent *e;
	char *lkey;

	*value_r = NULL;
	if (t->type != MAPTAB_HASH)
		return rules_lookup(t, key, value_r);
	if (t->nh == 0)
		return 0;
	lkey = str_lower(xstrdup(key));
	e = bsearch(lkey, t->h, t->nh, sizeof(*t->h), hkey_cmp);
	free(lkey);
	if (e == NULL)
		return 0;
	*value_r = xstrdup(e->value);
	return 1;
}

int
maptab_foreach_result(const struct maptab *t,
    int (*cb)(const char *result, void *ctx), void *ctx)
{
	size_t i;
	int r;

	for (i = 0; i < t->nr; i++)
		if (t->r[i].result != NULL && (r = cb(t->r[i].result, ctx)) != 0)
			return r;
	for (i = 0; i < t->nh; i++)
		if ((r = cb(t->h[i].value, ctx)) != 0)
			return r;
	return 0;
}

int
maptab_listable(const struct maptab *t)
{
	return t->type == MAPTAB_HASH;
}

int
maptab_foreach(const struct maptab *t, int (*cb)(const char *key,
    const char *value, void *ctx), void *ctx)
{
	size_t i;
	int r;

	if (t->type != MAPTAB_HASH)
		return -1;
	for (i = 0; i < t->nh; i++)
		if ((r = cb(t->h[i].key, t->h[i].value, ctx)) != 0)
			return r;
	return 0;
}
