/*
 * run - the Sieve interpreter: walks compiled scripts over one message
 * and collects actions (RFC 5228 section 4, the implicit keep of 2.10.2),
 * with variables (RFC 5229), imap4flags (RFC 5232), include (RFC 6609),
 * duplicate (RFC 7352), date/index (RFC 5260) and relational (RFC 5231).
 *
 * Invariants: every run is bounded - SIEVE_STEPS_MAX evaluation steps,
 * lim.actions_max actions, lim.redirects_max redirects, lim.include_max
 * include depth, lim.variables_max variables of at most
 * lim.variable_len_max bytes, expanded strings at most EXPAND_MAX bytes.
 * Any violation is a run-time error: the caller keeps the message.
 * :matches is the linear one-backtrack-point wildcard algorithm, each
 * wildcard taking as little as possible (RFC 5229 section 3.2).
 * Conflicts (RFC 5429): reject/ereject with keep, fileinto, redirect or
 * vacation is an error; two vacations are an error.
 */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"
#include "proto/mime.h"
#include "sieve/sieve_int.h"

#define EXPAND_MAX (64 * 1024)
#define MATCH_VARS 10
#define FLAGS_MAX 64

struct vars {
	char **names;
	char **vals;
	size_t n;
};

struct scope {
	const struct sieve_script *s;
	struct vars local;
	char **globals;          /* names declared global here */
};

struct run {
	const struct sieve_env *env;
	struct sieve_result *res;
	struct sieve_limits lim;
	struct scope *sc;
	struct vars global;
	char *mvars[MATCH_VARS];
	char **flags;            /* the internal variable of imap4flags */
	int implicit_keep;
	int stopped, returned;
	long steps;
	int depth;
	char **once;
	int nredirect;
	int failed;
};

static int
fail(struct run *r, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int
fail(struct run *r, int line, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	if (r->failed)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	r->res->error = m != NULL ? m : xstrdup("run-time error");
	r->res->error_line = line;
	r->failed = 1;
	return -1;
}

static int
step(struct run *r, int line)
{
	if (++r->steps > SIEVE_STEPS_MAX)
		return fail(r, line, "script takes too many steps");
	return 0;
}

/* ---- variables ---- */

static void
vars_free(struct vars *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->names[i]);
		free(v->vals[i]);
	}
	free(v->names);
	free(v->vals);
	memset(v, 0, sizeof(*v));
}

static struct vars *
vars_for(struct run *r, const char *name, const char **base_r)
{
	*base_r = name;
	if (strncasecmp(name, "global.", 7) == 0) {
		*base_r = name + 7;
		return &r->global;
	}
	if (r->sc->globals != NULL && strv_contains_ci(r->sc->globals, name))
		return &r->global;
	return &r->sc->local;
}

static const char *
var_get(struct run *r, const char *name)
{
	const char *base;
	struct vars *v;

	if (isdigit((unsigned char)name[0])) {
		int i = atoi(name);

		if (i < MATCH_VARS && r->mvars[i] != NULL)
			return r->mvars[i];
		return "";
	}
	v = vars_for(r, name, &base);
	for (size_t i = 0; i < v->n; i++)
		if (strcasecmp(v->names[i], base) == 0)
			return v->vals[i];
	return "";
}

static int
var_set(struct run *r, int line, const char *name, const char *val)
{
	const char *base;
	struct vars *v = vars_for(r, name, &base);
	size_t len = strlen(val);
	char *cp;

	if (len > r->lim.variable_len_max) {
		/* RFC 5229 section 3: truncate (at a character boundary) */
		len = r->lim.variable_len_max;
		while (len > 0 && ((unsigned char)val[len] & 0xc0) == 0x80)
			len--;
	}
	cp = xstrndup(val, len);
	for (size_t i = 0; i < v->n; i++)
		if (strcasecmp(v->names[i], base) == 0) {
			free(v->vals[i]);
			v->vals[i] = cp;
			return 0;
		}
	if ((int)(r->global.n + r->sc->local.n) >= r->lim.variables_max) {
		free(cp);
		return fail(r, line, "too many variables (limit %d)", r->lim.variables_max);
	}
	v->names = xreallocarray(v->names, v->n + 1, sizeof(char *));
	v->vals = xreallocarray(v->vals, v->n + 1, sizeof(char *));
	v->names[v->n] = xstrdup(base);
	v->vals[v->n] = cp;
	v->n++;
	return 0;
}

static int
var_name_ok(const char *s, size_t n)
{
	int digits = 1;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			digits = 0;
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.')
			return 0;
	}
	if (digits)
		return 1;
	return isalpha((unsigned char)s[0]) || s[0] == '_';
}

/* ${name} substitution (RFC 5229 section 3), xmalloc'd. */
static char *
expand(struct run *r, const char *s)
{
	struct buf out = BUF_INIT(EXPAND_MAX);
	const char *p = s;

	if (!(r->sc->s->exts & EXT_VARIABLES) || strstr(s, "${") == NULL)
		return xstrdup(s);
	while (*p != '\0') {
		const char *close;

		if (p[0] == '$' && p[1] == '{' && (close = strchr(p + 2, '}')) != NULL &&
		    var_name_ok(p + 2, (size_t)(close - p - 2))) {
			char *name = xstrndup(p + 2, (size_t)(close - p - 2));

			(void)buf_puts(&out, var_get(r, name));
			free(name);
			p = close + 1;
			continue;
		}
		(void)buf_putc(&out, *p++);
	}
	if (out.data == NULL)
		return xstrdup("");
	return buf_steal(&out);
}

static char **
expand_list(struct run *r, const struct sv_strs *s)
{
	char **v = xcalloc(s->n + 1, sizeof(char *));

	for (size_t i = 0; i < s->n; i++)
		v[i] = expand(r, s->v[i]);
	return v;
}

static void
mvars_clear(struct run *r)
{
	for (int i = 0; i < MATCH_VARS; i++)
		xfree(&r->mvars[i]);
}

/* ---- comparators and match types ---- */

static int
fold(int c, enum sv_cmp cmp)
{
	return cmp == C_CASEMAP ? tolower(c) : c;
}

/* i;ascii-numeric: the leading digits as a number; none = infinity. */
static int
numcmp(const char *a, const char *b)
{
	int ia = isdigit((unsigned char)*a), ib = isdigit((unsigned char)*b);
	size_t la, lb;

	if (!ia || !ib)
		return ia == ib ? 0 : ia ? -1 : 1;
	while (*a == '0' && isdigit((unsigned char)a[1]))
		a++;
	while (*b == '0' && isdigit((unsigned char)b[1]))
		b++;
	for (la = 0; isdigit((unsigned char)a[la]); la++)
		;
	for (lb = 0; isdigit((unsigned char)b[lb]); lb++)
		;
	if (la != lb)
		return la < lb ? -1 : 1;
	return strncmp(a, b, la) < 0 ? -1 : strncmp(a, b, la) > 0 ? 1 : 0;
}

static int
order(const char *a, const char *b, enum sv_cmp cmp)
{
	if (cmp == C_NUMERIC)
		return numcmp(a, b);
	for (;; a++, b++) {
		int ca = fold((unsigned char)*a, cmp), cb = fold((unsigned char)*b, cmp);

		if (ca != cb)
			return ca < cb ? -1 : 1;
		if (ca == 0)
			return 0;
	}
}

static int
rel_ok(int c, enum sv_rel rel)
{
	switch (rel) {
	case R_GT: return c > 0;
	case R_GE: return c >= 0;
	case R_LT: return c < 0;
	case R_LE: return c <= 0;
	case R_EQ: return c == 0;
	case R_NE: return c != 0;
	}
	return 0;
}

static int
contains(const char *h, const char *n, enum sv_cmp cmp)
{
	size_t nl = strlen(n);

	if (nl == 0)
		return 1;
	for (; *h != '\0'; h++) {
		size_t i;

		for (i = 0; i < nl && h[i] != '\0' &&
		    fold((unsigned char)h[i], cmp) == fold((unsigned char)n[i], cmp); i++)
			;
		if (i == nl)
			return 1;
	}
	return 0;
}

struct welem {
	int kind;                /* 0 literal, '?' or '*' */
	char c;
	int wc;                  /* wildcard number */
};

static size_t
utf8_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* :matches; fills caps (start, length per wildcard) on success. */
static int
glob(struct run *r, const char *pat, const char *t, enum sv_cmp cmp, size_t (*caps)[2],
    int *ncaps_r)
{
	size_t np = strlen(pat), n = strlen(t), ne = 0, i = 0, j = 0, star_j = 0;
	struct welem *el = xcalloc(np + 1, sizeof(*el));
	long star_i = -1;
	int nw = 0, ok;

	for (size_t k = 0; k < np; k++) {
		if (pat[k] == '\\' && k + 1 < np) {
			el[ne].kind = 0;
			el[ne++].c = pat[++k];
		} else if (pat[k] == '*' || pat[k] == '?') {
			el[ne].kind = pat[k];
			el[ne++].wc = nw++;
		} else {
			el[ne].kind = 0;
			el[ne++].c = pat[k];
		}
	}
	while (j < n) {
		if (++r->steps > SIEVE_STEPS_MAX * 10L) {
			free(el);
			return 0;
		}
		if (i < ne && el[i].kind == '?') {
			size_t l = utf8_len((unsigned char)t[j]);

			if (j + l > n)
				l = n - j;
			if (el[i].wc < MATCH_VARS * 4) {
				caps[el[i].wc][0] = j;
				caps[el[i].wc][1] = l;
			}
			i++;
			j += l;
		} else if (i < ne && el[i].kind == 0 &&
		    fold((unsigned char)el[i].c, cmp) == fold((unsigned char)t[j], cmp)) {
			i++;
			j++;
		} else if (i < ne && el[i].kind == '*') {
			star_i = (long)i;
			star_j = j;
			if (el[i].wc < MATCH_VARS * 4) {
				caps[el[i].wc][0] = j;
				caps[el[i].wc][1] = 0;
			}
			i++;
		} else if (star_i >= 0) {
			star_j++;
			if (el[star_i].wc < MATCH_VARS * 4)
				caps[el[star_i].wc][1] = star_j - caps[el[star_i].wc][0];
			j = star_j;
			i = (size_t)star_i + 1;
		} else {
			free(el);
			return 0;
		}
	}
	while (i < ne && el[i].kind == '*') {
		if (el[i].wc < MATCH_VARS * 4) {
			caps[el[i].wc][0] = j;
			caps[el[i].wc][1] = 0;
		}
		i++;
	}
	ok = i == ne;
	*ncaps_r = nw;
	free(el);
	return ok;
}

/* One value against one key. Sets the match variables when asked. */
static int
match_one(struct run *r, const struct sv_opts *o, const char *val, const char *key, int line)
{
	if (step(r, line) < 0)
		return -1;
	switch (o->match) {
	case M_IS:
		return order(val, key, o->cmp) == 0;
	case M_CONTAINS:
		return contains(val, key, o->cmp);
	case M_VALUE:
		return rel_ok(order(val, key, o->cmp), o->rel);
	case M_COUNT:
		return 0;      /* counted by the caller */
	case M_MATCHES: {
		size_t caps[MATCH_VARS * 4][2];
		int nc = 0;

		if (!glob(r, key, val, o->cmp, caps, &nc))
			return 0;
		if (r->sc->s->exts & EXT_VARIABLES) {
			mvars_clear(r);
			r->mvars[0] = xstrdup(val);
			for (int i = 0; i < nc && i + 1 < MATCH_VARS; i++)
				r->mvars[i + 1] = xstrndup(val + caps[i][0], caps[i][1]);
		}
		return 1;
	}
	case M_REGEX: {
		regex_t rx;
		regmatch_t m[MATCH_VARS];
		int rc;

		if (strlen(key) > 1024)
			return fail(r, line, "regular expression too long");
		if (regcomp(&rx, key, REG_EXTENDED | (o->cmp == C_CASEMAP ? REG_ICASE : 0)) != 0)
			return fail(r, line, "bad regular expression \"%s\"", key);
		rc = regexec(&rx, val, MATCH_VARS, m, 0);
		if (rc == 0 && (r->sc->s->exts & EXT_VARIABLES)) {
			mvars_clear(r);
			for (int i = 0; i < MATCH_VARS; i++)
				if (m[i].rm_so >= 0)
					r->mvars[i] = xstrndup(val + m[i].rm_so,
					    (size_t)(m[i].rm_eo - m[i].rm_so));
		}
		regfree(&rx);
		return rc == 0;
	}
	}
	return 0;
}

/* RFC 5183 environment items: those a delivery agent knows; NULL for the
 * others (remote-host and remote-ip are the SMTP server's, not ours). */
static const char *
environment_item(const struct sieve_env *env, const char *name)
{
	if (strcasecmp(name, "domain") == 0)
		return env->domain;
	if (strcasecmp(name, "host") == 0)
		return env->host;
	if (strcasecmp(name, "location") == 0)
		return "MDA";
	if (strcasecmp(name, "name") == 0)
		return "Postern";
	if (strcasecmp(name, "phase") == 0)
		return "during";
	if (strcasecmp(name, "version") == 0)
		return env->version;
	return NULL;
}

/* Any value against any key; :count compares the number of values. */
static int
match_values(struct run *r, const struct sv_opts *o, char *const *vals,
    const struct sv_strs *keys, int line)
{
	char **k = expand_list(r, keys);
	int res = 0;

	if (o->match == M_COUNT) {
		char cnt[32];

		snprintf(cnt, sizeof(cnt), "%zu", strv_len(vals));
		for (size_t j = 0; k[j] != NULL && !res; j++)
			res = rel_ok(order(cnt, k[j], o->cmp), o->rel);
		strv_free(&k);
		return res;
	}
	for (size_t i = 0; vals[i] != NULL && res == 0; i++)
		for (size_t j = 0; k[j] != NULL && res == 0; j++)
			res = match_one(r, o, vals[i], k[j], line);
	strv_free(&k);
	return res;
}

/* :index n / :last on a list of values (RFC 5260 section 6). */
static void
apply_index(const struct sv_opts *o, char ***vals)
{
	size_t n = strv_len(*vals), want;
	char **one;

	if (o->index == 0)
		return;
	if ((size_t)o->index > n) {
		strv_free(vals);
		*vals = xcalloc(1, sizeof(char *));
		return;
	}
	want = o->last ? n - (size_t)o->index : (size_t)o->index - 1;
	one = xcalloc(2, sizeof(char *));
	one[0] = xstrdup((*vals)[want]);
	strv_free(vals);
	*vals = one;
}

static char **
header_values(struct run *r, const struct sv_strs *names)
{
	char **hn = expand_list(r, names), **vals = NULL;

	for (size_t i = 0; hn[i] != NULL; i++)
		sv_header_values(r->env->hdr, r->env->hdrlen, hn[i], &vals);
	if (vals == NULL)
		vals = xcalloc(1, sizeof(char *));
	strv_free(&hn);
	return vals;
}

/* ---- flags (RFC 5232) ---- */

static void
flags_add(char ***set, const char *list)
{
	char **w = strv_split(list, " ");

	for (size_t i = 0; w[i] != NULL; i++) {
		if (strv_len(*set) >= FLAGS_MAX)
			break;
		if (!strv_contains_ci(*set, w[i]))
			strv_push(set, w[i]);
	}
	strv_free(&w);
}

static void
flags_remove(char ***set, const char *list)
{
	char **w = strv_split(list, " "), **out = xcalloc(1, sizeof(char *));

	for (size_t i = 0; *set != NULL && (*set)[i] != NULL; i++)
		if (!strv_contains_ci(w, (*set)[i]))
			strv_push(&out, (*set)[i]);
	strv_free(&w);
	strv_free(set);
	*set = out;
}

static char *
flags_join(char *const *set)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; set != NULL && set[i] != NULL; i++) {
		if (i > 0)
			buf_putc(&b, ' ');
		buf_puts(&b, set[i]);
	}
	return b.data != NULL ? buf_steal(&b) : xstrdup("");
}

static char **
flags_copy(char *const *set)
{
	char **out = xcalloc(1, sizeof(char *));

	for (size_t i = 0; set != NULL && set[i] != NULL; i++)
		strv_push(&out, set[i]);
	return out;
}

/* ---- actions ---- */

static struct sieve_action *
act_add(struct run *r, enum sieve_act_type type, int line)
{
	struct sieve_result *res = r->res;
	struct sieve_action *a;

	if ((int)res->nacts >= r->lim.actions_max)
		return fail(r, line, "too many actions (limit %d)", r->lim.actions_max), NULL;
	for (size_t i = 0; i < res->nacts; i++) {
		enum sieve_act_type t = res->acts[i].type;
		int rej = t == SIEVE_REJECT || t == SIEVE_EREJECT;
		int newrej = type == SIEVE_REJECT || type == SIEVE_EREJECT;

		/* RFC 5435 3.9: notify goes with every other action. */
		if ((rej && type != SIEVE_DISCARD && type != SIEVE_NOTIFY) ||
		    (newrej && t != SIEVE_DISCARD && t != SIEVE_NOTIFY))
			return fail(r, line, "reject cannot be combined with other actions"), NULL;
		if (t == SIEVE_VACATION && type == SIEVE_VACATION)
			return fail(r, line, "only one vacation action is allowed"), NULL;
	}
	res->acts = xreallocarray(res->acts, res->nacts + 1, sizeof(*res->acts));
	a = &res->acts[res->nacts++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->line = line;
	return a;
}

static int
store_action(struct run *r, const struct sv_node *n, enum sieve_act_type type,
    const char *target)
{
	struct sieve_action *a;
	char **flags;

	if (n->o.has_flags) {
		char **raw = expand_list(r, &n->o.flags);

		flags = xcalloc(1, sizeof(char *));
		for (size_t i = 0; raw[i] != NULL; i++)
			flags_add(&flags, raw[i]);
		strv_free(&raw);
	} else
		flags = flags_copy(r->flags);
	/* a second keep or fileinto into one mailbox stores one copy */
	for (size_t i = 0; i < r->res->nacts; i++) {
		struct sieve_action *b = &r->res->acts[i];

		if ((b->type == SIEVE_KEEP || b->type == SIEVE_FILEINTO) &&
		    strcmp(b->target, target) == 0) {
			for (size_t k = 0; flags[k] != NULL; k++)
				flags_add(&b->flags, flags[k]);
			strv_free(&flags);
			if (!n->o.copy)
				r->implicit_keep = 0;
			return 0;
		}
	}
	if ((a = act_add(r, type, n->line)) == NULL) {
		strv_free(&flags);
		return -1;
	}
	a->target = xstrdup(target);
	a->flags = flags;
	a->create = n->o.create;
	a->copy = n->o.copy;
	if (!n->o.copy)
		r->implicit_keep = 0;
	return 0;
}

/* RFC 5435 notify with the mailto method: one action per method URI
 * (a second notify to the same URI is a duplicate, 3.10). */
static int
notify_action(struct run *r, const struct sv_node *n)
{
	struct sieve_action *a = NULL;
	char *method = expand(r, n->args[0].s.v[0]);
	char *imp = n->o.importance != NULL ? expand(r, n->o.importance) : NULL;
	int rc = 0;

	if (sieve_mailto_parse(method, NULL, NULL, NULL) != 0) {
		rc = fail(r, n->line, "notify: unsupported or invalid method \"%s\"", method);
		goto out;
	}
	for (size_t i = 0; i < r->res->nacts; i++)
		if (r->res->acts[i].type == SIEVE_NOTIFY &&
		    strcasecmp(r->res->acts[i].target, method) == 0)
			goto out;
	if ((a = act_add(r, SIEVE_NOTIFY, n->line)) == NULL) {
		rc = -1;
		goto out;
	}
	a->target = method;
	method = NULL;
	/* a variable that gave something else: normal */
	a->importance = xstrdup(imp != NULL && strlen(imp) == 1 && imp[0] >= '1' &&
	    imp[0] <= '3' ? imp : "2");
	a->from = n->o.from != NULL ? expand(r, n->o.from) : NULL;
	a->message = n->o.message != NULL ? expand(r, n->o.message) : NULL;
out:
	free(method);
	free(imp);
	return rc;
}

static int
vacation_action(struct run *r, const struct sv_node *n)
{
	struct sieve_action *a;
	/* :seconds (RFC 6131) is held to the same limits as :days. */
	long secs = n->o.seconds >= 0 ? n->o.seconds : (n->o.days < 0 ? 7 : n->o.days) * 86400L;
	struct buf h = BUF_INIT(0);

	if (secs < r->lim.vacation_min_days * 86400L)
		secs = r->lim.vacation_min_days * 86400L;
	if (secs > r->lim.vacation_max_days * 86400L)
		secs = r->lim.vacation_max_days * 86400L;
	if ((a = act_add(r, SIEVE_VACATION, n->line)) == NULL)
		return -1;
	a->target = expand(r, n->args[0].s.v[0]);
	a->days = secs;
	a->subject = n->o.subject != NULL ? expand(r, n->o.subject) : NULL;
	a->from = n->o.from != NULL ? expand(r, n->o.from) : NULL;
	a->addresses = n->o.addresses.n > 0 ? expand_list(r, &n->o.addresses) : NULL;
	a->mime = n->o.mime;
	if (n->o.handle != NULL)
		a->handle = expand(r, n->o.handle);
	else {
		/* RFC 5230 4.2: without :handle, the reason, subject and from
		 * together identify the response. */
		buf_printf(&h, "%s\n%s\n%s\n%d", a->target, a->subject != NULL ? a->subject : "",
		    a->from != NULL ? a->from : "", a->mime);
		a->handle = buf_steal(&h);
	}
	return 0;
}

/* ---- tests ---- */

static int eval(struct run *r, const struct sv_node *t);

static int
test_address(struct run *r, const struct sv_node *t, int envelope)
{
	char **vals = xcalloc(1, sizeof(char *)), **parts = xcalloc(1, sizeof(char *));
	char **names = expand_list(r, &t->args[0].s);
	int res;

	for (size_t i = 0; names[i] != NULL; i++) {
		if (envelope) {
			if (strcasecmp(names[i], "from") == 0)
				strv_push(&vals, r->env->env_from != NULL ? r->env->env_from : "");
			else if (strcasecmp(names[i], "to") == 0)
				strv_push(&vals, r->env->env_to != NULL ? r->env->env_to : "");
			continue;
		}
		{
			char **hv = NULL;

			sv_header_values(r->env->hdr, r->env->hdrlen, names[i], &hv);
			apply_index(&t->o, &hv);
			for (size_t k = 0; hv[k] != NULL; k++)
				sv_addr_list(hv[k], &vals);
			strv_free(&hv);
		}
	}
	strv_free(&names);
	for (size_t i = 0; vals[i] != NULL; i++) {
		char *p;

		if (vals[i][0] == '\0' && t->o.part != P_ALL) {
			/* the null sender has no parts: only :all "" matches */
			continue;
		}
		p = sv_addr_part(vals[i], t->o.part, r->env->delim);
		if (p != NULL) {
			strv_push(&parts, p);
			free(p);
		}
	}
	strv_free(&vals);
	res = match_values(r, &t->o, parts, &t->args[1].s, t->line);
	strv_free(&parts);
	return res;
}

static int
test_date(struct run *r, const struct sv_node *t)
{
	int cur = t->kind == OP_CURRENTDATE;
	char **vals = xcalloc(1, sizeof(char *)), **parts = xcalloc(1, sizeof(char *));
	char *part = expand(r, t->args[cur ? 0 : 1].s.v[0]);
	long zoff = r->env->tz_offset;
	int res;

	if (t->o.zone != NULL)
		(void)sv_zone_parse(t->o.zone, &zoff);
	if (cur) {
		char *p = sv_date_part(r->env->now, zoff, part);

		if (p != NULL)
			strv_push(&parts, p);
		free(p);
	} else {
		char *hn = expand(r, t->args[0].s.v[0]);

		sv_header_values(r->env->hdr, r->env->hdrlen, hn, &vals);
		free(hn);
		apply_index(&t->o, &vals);
		for (size_t i = 0; vals[i] != NULL; i++) {
			const char *v = vals[i];
			time_t tt;
			long off;
			char *p;

			/* Received: the date follows the last ';' */
			if (strrchr(v, ';') != NULL)
				v = strrchr(v, ';') + 1;
			if (sv_parse_date(v, &tt, &off) < 0)
				continue;
			p = sv_date_part(tt, t->o.originalzone ? off : zoff, part);
			if (p != NULL)
				strv_push(&parts, p);
			free(p);
		}
	}
	free(part);
	res = match_values(r, &t->o, parts, &t->args[cur ? 1 : 2].s, t->line);
	strv_free(&vals);
	strv_free(&parts);
	return res;
}

static int
test_duplicate(struct run *r, const struct sv_node *t)
{
	char *id, *val = NULL, *handle;
	long secs = t->o.seconds >= 0 ? t->o.seconds : r->lim.duplicate_max_seconds;
	int seen = 0;

	if (secs > r->lim.duplicate_max_seconds)
		secs = r->lim.duplicate_max_seconds;
	if (t->o.uniqueid != NULL)
		val = expand(r, t->o.uniqueid);
	else {
		char *hn = expand(r, t->o.header != NULL ? t->o.header : "Message-ID");

		val = sieve_header_get(r->env->hdr, r->env->hdrlen, hn);
		free(hn);
		if (val == NULL)
			return 0;    /* RFC 7352 3.1: no such header - not a duplicate */
	}
	handle = t->o.handle != NULL ? expand(r, t->o.handle) : xstrdup("");
	id = xasprintf("%s%s:%s", t->o.header != NULL ? "h:" : t->o.uniqueid != NULL ? "u:" :
	    "m:", handle, val);
	if (strlen(id) > 1000)
		id[1000] = '\0';
	if (r->env->duplicate != NULL)
		seen = r->env->duplicate(r->env->ctx, id) == 1;
	/* Seen ids in one run count too (a script testing twice). */
	for (size_t i = 0; i < r->res->ndup; i++)
		if (strcmp(r->res->dup_ids[i], id) == 0)
			seen = 1;
	if (!seen || t->o.last) {
		if (r->res->ndup < 64) {
			r->res->dup_ids = xreallocarray(r->res->dup_ids, r->res->ndup + 2,
			    sizeof(char *));
			r->res->dup_secs = xreallocarray(r->res->dup_secs, r->res->ndup + 1,
			    sizeof(long));
			r->res->dup_ids[r->res->ndup] = xstrdup(id);
			r->res->dup_secs[r->res->ndup] = secs;
			r->res->ndup++;
			r->res->dup_ids[r->res->ndup] = NULL;
		}
	}
	free(id);
	free(val);
	free(handle);
	return seen;
}

/* Does a part's type match a :content type ("" all, "text", "text/html")? */
static int
ctype_match(const char *type, const char *sub, char *const *want)
{
	for (size_t i = 0; want[i] != NULL; i++) {
		const char *w = want[i], *slash = strchr(w, '/');

		if (*w == '\0')
			return 1;
		if (slash == NULL && strcasecmp(w, type) == 0)
			return 1;
		if (slash != NULL && strncasecmp(w, type, (size_t)(slash - w)) == 0 &&
		    type[slash - w] == '\0' && strcasecmp(slash + 1, sub) == 0)
			return 1;
	}
	return 0;
}

/* RFC 5173: :raw is the undecoded body; :content and :text the parts of
 * those types, transfer-decoded and converted to UTF-8 (multipart
 * containers and message/rfc822 wrappers are not matched themselves,
 * their parts are). */
static char **
body_values(struct run *r, const struct sv_node *t)
{
	char **vals = xcalloc(1, sizeof(char *)), **want;
	struct buf m = BUF_INIT(0), hv = BUF_INIT(0), dec = BUF_INIT(0), cs = BUF_INIT(0);
	struct buf utf = BUF_INIT(0);
	struct mime_tree tree;

	if (t->o.xform == X_RAW) {
		char *b = xstrndup(r->env->body != NULL ? r->env->body : "", r->env->bodylen);

		strv_push(&vals, b);
		free(b);
		return vals;
	}
	if (t->o.xform == X_TEXT) {
		want = xcalloc(2, sizeof(char *));
		want[0] = xstrdup("text");
	} else
		want = expand_list(r, &t->o.content_types);
	buf_append(&m, r->env->hdr, r->env->hdrlen);
	if (m.len > 0 && m.data[m.len - 1] != '\n')
		buf_puts(&m, "\r\n");
	buf_puts(&m, "\r\n");
	if (r->env->body != NULL)
		buf_append(&m, r->env->body, r->env->bodylen);
	mime_parse(m.data, m.len, NULL, &tree);
	for (size_t i = 0; i < tree.nparts; i++) {
		const struct mime_part *p = &tree.parts[i];
		struct mime_ctype ct;
		const char *type = "text", *sub = "plain";

		if (p->flags & (MIME_PF_MULTIPART | MIME_PF_MESSAGE))
			continue;
		memset(&ct, 0, sizeof(ct));
		if (!(p->flags & MIME_PF_ASTEXT) &&
		    mime_header_get(m.data + p->hdr_off, p->hdr_len, "Content-Type", NULL, &hv)) {
			mime_ctype_parse(hv.data, hv.len, &ct, 0);
			if (ct.type != NULL && ct.subtype != NULL) {
				type = ct.type;
				sub = ct.subtype;
			}
		} else if (p->parent != MIME_NONE &&
		    (tree.parts[p->parent].flags & MIME_PF_DIGEST)) {
			type = "message";
			sub = "rfc822";
		}
		if (ctype_match(type, sub, want)) {
			buf_reset(&dec);
			(void)mime_part_decode(&tree, m.data, (uint32_t)i, &dec);
			buf_reset(&utf);
			if (strcasecmp(type, "text") == 0 && mime_param_get(&ct, "charset", &cs) &&
			    mime_charset_to_utf8(cs.data, cs.len, dec.data != NULL ? dec.data : "",
			    dec.len, &utf) == 0) {
				buf_reset(&dec);
				buf_append(&dec, utf.data != NULL ? utf.data : "", utf.len);
			}
			/* a NUL would cut the value short: drop it */
			for (size_t k = 0; k < dec.len; k++)
				if (dec.data[k] == '\0')
					dec.data[k] = ' ';
			strv_push(&vals, buf_cstr(&dec));
		}
		mime_ctype_free(&ct);
	}
	mime_tree_free(&tree);
	strv_free(&want);
	buf_free(&m);
	buf_free(&hv);
	buf_free(&dec);
	buf_free(&cs);
	buf_free(&utf);
	return vals;
}

static int
eval(struct run *r, const struct sv_node *t)
{
	int res = 0;

	if (step(r, t->line) < 0)
		return -1;
	switch (t->kind) {
	case OP_TRUE:
		return 1;
	case OP_FALSE:
		return 0;
	case OP_NOT:
		res = eval(r, t->tests[0]);
		return res < 0 ? -1 : !res;
	case OP_ALLOF:
		for (size_t i = 0; i < t->ntests; i++)
			if ((res = eval(r, t->tests[i])) <= 0)
				return res;
		return 1;
	case OP_ANYOF:
		for (size_t i = 0; i < t->ntests; i++)
			if ((res = eval(r, t->tests[i])) != 0)
				return res;
		return 0;
	case OP_EXISTS: {
		char **names = expand_list(r, &t->args[0].s);

		res = 1;
		for (size_t i = 0; names[i] != NULL && res; i++) {
			char *v = sieve_header_get(r->env->hdr, r->env->hdrlen, names[i]);

			res = v != NULL;
			free(v);
		}
		strv_free(&names);
		return res;
	}
	case OP_SIZE:
		return t->o.over ? r->env->size > t->args[0].num : r->env->size < t->args[0].num;
	case OP_HEADER: {
		char **vals = header_values(r, &t->args[0].s);

		apply_index(&t->o, &vals);
		res = match_values(r, &t->o, vals, &t->args[1].s, t->line);
		strv_free(&vals);
		return res;
	}
	case OP_ADDRESS:
		return test_address(r, t, 0);
	case OP_ENVELOPE:
		return test_address(r, t, 1);
	case OP_BODY: {
		char **vals = body_values(r, t);

		res = match_values(r, &t->o, vals, &t->args[0].s, t->line);
		strv_free(&vals);
		return res;
	}
	case OP_STRING: {
		char **src = expand_list(r, &t->args[0].s), **vals = xcalloc(1, sizeof(char *));

		/* RFC 5229 5: :count counts the non-empty strings */
		for (size_t i = 0; src[i] != NULL; i++)
			if (t->o.match != M_COUNT || src[i][0] != '\0')
				strv_push(&vals, src[i]);
		res = match_values(r, &t->o, vals, &t->args[1].s, t->line);
		strv_free(&src);
		strv_free(&vals);
		return res;
	}
	case OP_HASFLAG: {
		char **vals = xcalloc(1, sizeof(char *));

		if (t->nargs == 2) {
			char **names = expand_list(r, &t->args[0].s);

			for (size_t i = 0; names[i] != NULL; i++)
				flags_add(&vals, var_get(r, names[i]));
			strv_free(&names);
		} else
			for (size_t i = 0; r->flags != NULL && r->flags[i] != NULL; i++)
				strv_push(&vals, r->flags[i]);
		res = match_values(r, &t->o, vals, &t->args[t->nargs - 1].s, t->line);
		strv_free(&vals);
		return res;
	}
	case OP_MAILBOXEXISTS: {
		char **names = expand_list(r, &t->args[0].s);

		res = 1;
		for (size_t i = 0; names[i] != NULL && res; i++)
			res = r->env->mailbox_exists != NULL &&
			    r->env->mailbox_exists(r->env->ctx, names[i]) == 1;
		strv_free(&names);
		return res;
	}
	case OP_DATE:
	case OP_CURRENTDATE:
		return test_date(r, t);
	case OP_IHAVE:
		for (size_t i = 0; i < t->args[0].s.n; i++)
			if (sv_ext_bit(t->args[0].s.v[i]) == 0)
				return 0;
		return 1;
	case OP_DUPLICATE:
		return test_duplicate(r, t);
	case OP_VALID_NOTIFY: {
		char **uris = expand_list(r, &t->args[0].s);

		res = uris[0] != NULL;
		for (size_t i = 0; uris[i] != NULL && res; i++)
			res = sieve_mailto_parse(uris[i], NULL, NULL, NULL) == 0;
		strv_free(&uris);
		return res;
	}
	case OP_NOTIFY_CAP: {
		/* RFC 5436 2.2: whether a mailto recipient is "online" is
		 * not known here: "maybe". Other capabilities: false. */
		char *uri = expand(r, t->args[0].s.v[0]), *cap = expand(r, t->args[1].s.v[0]);
		char *one[2] = { "maybe", NULL };

		res = sieve_mailto_parse(uri, NULL, NULL, NULL) == 0 && strcasecmp(cap, "online") == 0
		    ? match_values(r, &t->o, one, &t->args[2].s, t->line) : 0;
		free(uri);
		free(cap);
		return res;
	}
	case OP_ENVIRONMENT: {
		char *name = expand(r, t->args[0].s.v[0]);
		const char *v = environment_item(r->env, name);
		char *one[2] = { (char *)v, NULL };

		/* RFC 5183 4: an item this implementation does not know
		 * makes the test false. */
		res = v != NULL ? match_values(r, &t->o, one, &t->args[1].s, t->line) : 0;
		free(name);
		return res;
	}
	}
	return fail(r, t->line, "unknown test");
}

/* ---- commands ---- */

static int exec_block(struct run *r, struct sv_node *const *cmds, size_t n);

static int
run_script(struct run *r, const struct sieve_script *s)
{
	struct scope sc, *saved = r->sc;
	int rc;

	memset(&sc, 0, sizeof(sc));
	sc.s = s;
	r->sc = &sc;
	rc = exec_block(r, s->cmds, s->ncmds);
	r->returned = 0;
	r->sc = saved;
	vars_free(&sc.local);
	strv_free(&sc.globals);
	return rc;
}

static int
do_include(struct run *r, const struct sv_node *n)
{
	char *name = expand(r, n->args[0].s.v[0]), *key, *err = NULL;
	struct sieve_script *s = NULL;
	int rc;

	key = xasprintf("%c%s", n->o.global ? 'g' : 'p', name);
	if (n->o.once && r->once != NULL && strv_contains_ci(r->once, key)) {
		free(key);
		free(name);
		return 0;
	}
	if (r->depth >= r->lim.include_max) {
		free(key);
		free(name);
		return fail(r, n->line, "includes nested too deeply (limit %d)", r->lim.include_max);
	}
	if (strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0') {
		rc = fail(r, n->line, "bad script name \"%s\"", name);
		free(key);
		free(name);
		return rc;
	}
	rc = r->env->include != NULL ? r->env->include(r->env->ctx, n->o.global, name, &s, &err) :
	    -1;
	if (rc < 0) {
		if (rc == -1 && n->o.optional)
			rc = 0;
		else
			rc = fail(r, n->line, "include \"%s\": %s", name,
			    err != NULL ? err : "script not found");
		free(err);
		free(key);
		free(name);
		return rc;
	}
	strv_push(&r->once, key);
	r->depth++;
	rc = run_script(r, s);
	r->depth--;
	sieve_free(&s);
	free(key);
	free(name);
	return rc;
}

static int
exec_cmd(struct run *r, const struct sv_node *n, int *cond_done)
{
	char *s = NULL, *v = NULL;
	int rc = 0;

	if (step(r, n->line) < 0)
		return -1;
	switch (n->kind) {
	case OP_REQUIRE:
		return 0;
	case OP_IF:
	case OP_ELSIF:
		if (n->kind == OP_ELSIF && *cond_done)
			return 0;
		rc = eval(r, n->tests[0]);
		if (rc < 0)
			return -1;
		*cond_done = rc;
		return rc ? exec_block(r, n->block, n->nblock) : 0;
	case OP_ELSE:
		if (*cond_done)
			return 0;
		return exec_block(r, n->block, n->nblock);
	case OP_STOP:
		r->stopped = 1;
		return 0;
	case OP_RETURN:
		r->returned = 1;
		return 0;
	case OP_KEEP:
		return store_action(r, n, SIEVE_KEEP, "INBOX");
	case OP_FILEINTO:
		s = expand(r, n->args[0].s.v[0]);
		rc = store_action(r, n, SIEVE_FILEINTO, s);
		break;
	case OP_DISCARD:
		r->implicit_keep = 0;
		return act_add(r, SIEVE_DISCARD, n->line) != NULL ? 0 : -1;
	case OP_REDIRECT: {
		struct sieve_action *a;

		s = expand(r, n->args[0].s.v[0]);
		if (!sv_addr_ok(s)) {
			rc = fail(r, n->line, "redirect: bad address \"%s\"", s);
			break;
		}
		for (size_t i = 0; i < r->res->nacts; i++)
			if (r->res->acts[i].type == SIEVE_REDIRECT &&
			    strcasecmp(r->res->acts[i].target, s) == 0) {
				if (!n->o.copy)
					r->implicit_keep = 0;
				free(s);
				return 0;
			}
		if (++r->nredirect > r->lim.redirects_max) {
			rc = fail(r, n->line, "too many redirects (limit %d)", r->lim.redirects_max);
			break;
		}
		if ((a = act_add(r, SIEVE_REDIRECT, n->line)) == NULL) {
			rc = -1;
			break;
		}
		a->target = s;
		s = NULL;
		a->copy = n->o.copy;
		if (!n->o.copy)
			r->implicit_keep = 0;
		break;
	}
	case OP_REJECT:
	case OP_EREJECT: {
		struct sieve_action *a = act_add(r, n->kind == OP_REJECT ? SIEVE_REJECT :
		    SIEVE_EREJECT, n->line);

		if (a == NULL)
			return -1;
		a->target = expand(r, n->args[0].s.v[0]);
		r->implicit_keep = 0;
		return 0;
	}
	case OP_VACATION:
		return vacation_action(r, n);
	case OP_NOTIFY:
		return notify_action(r, n);
	case OP_SETFLAG:
	case OP_ADDFLAG:
	case OP_REMOVEFLAG: {
		char **list = expand_list(r, &n->args[n->nargs - 1].s);
		char **set;

		if (n->nargs == 2) {
			v = expand(r, n->args[0].s.v[0]);
			set = xcalloc(1, sizeof(char *));
			if (n->kind != OP_SETFLAG)
				flags_add(&set, var_get(r, v));
		} else {
			set = r->flags != NULL ? r->flags : xcalloc(1, sizeof(char *));
			r->flags = NULL;
			if (n->kind == OP_SETFLAG) {
				strv_free(&set);
				set = xcalloc(1, sizeof(char *));
			}
		}
		for (size_t i = 0; list[i] != NULL; i++) {
			if (n->kind == OP_REMOVEFLAG)
				flags_remove(&set, list[i]);
			else
				flags_add(&set, list[i]);
		}
		strv_free(&list);
		if (n->nargs == 2) {
			s = flags_join(set);
			strv_free(&set);
			rc = var_set(r, n->line, v, s);
		} else
			r->flags = set;
		break;
	}
	case OP_SET: {
		char *val = expand(r, n->args[1].s.v[0]);
		unsigned m = n->o.modifiers;

		if (m & MOD_LOWER)
			for (char *p = val; *p != '\0'; p++)
				*p = (char)tolower((unsigned char)*p);
		if (m & MOD_UPPER)
			for (char *p = val; *p != '\0'; p++)
				*p = (char)toupper((unsigned char)*p);
		if (m & MOD_LOWERFIRST)
			val[0] = (char)tolower((unsigned char)val[0]);
		if (m & MOD_UPPERFIRST)
			val[0] = (char)toupper((unsigned char)val[0]);
		if (m & MOD_QUOTEWILDCARD) {
			struct buf b = BUF_INIT(0);

			for (char *p = val; *p != '\0'; p++) {
				if (*p == '*' || *p == '?' || *p == '\\')
					buf_putc(&b, '\\');
				buf_putc(&b, *p);
			}
			free(val);
			val = b.data != NULL ? buf_steal(&b) : xstrdup("");
		}
		if (m & MOD_ENCODEURL) {
			/* RFC 5435 7: %-encode all but RFC 3986 unreserved */
			struct buf b = BUF_INIT(0);

			for (char *p = val; *p != '\0'; p++) {
				if (isalnum((unsigned char)*p) || strchr("-._~", *p) != NULL)
					buf_putc(&b, *p);
				else
					buf_printf(&b, "%%%02X", (unsigned char)*p);
			}
			free(val);
			val = b.data != NULL ? buf_steal(&b) : xstrdup("");
		}
		if (m & MOD_LENGTH) {
			size_t chars = 0;

			for (char *p = val; *p != '\0'; p++)
				if (((unsigned char)*p & 0xc0) != 0x80)
					chars++;
			free(val);
			val = xasprintf("%zu", chars);
		}
		rc = var_set(r, n->line, n->args[0].s.v[0], val);
		free(val);
		return rc;
	}
	case OP_INCLUDE:
		return do_include(r, n);
	case OP_GLOBAL:
		for (size_t i = 0; i < n->args[0].s.n; i++)
			if (!strv_contains_ci(r->sc->globals, n->args[0].s.v[i]))
				strv_push(&r->sc->globals, n->args[0].s.v[i]);
		return 0;
	case OP_ERROR:
		s = expand(r, n->args[0].s.v[0]);
		rc = fail(r, n->line, "error: %s", s);
		break;
	default:
		rc = fail(r, n->line, "command not usable here");
	}
	free(s);
	free(v);
	return rc;
}

static int
exec_block(struct run *r, struct sv_node *const *cmds, size_t n)
{
	int cond_done = 0;

	for (size_t i = 0; i < n && !r->stopped && !r->returned; i++) {
		if (cmds[i]->kind != OP_ELSIF && cmds[i]->kind != OP_ELSE)
			cond_done = 0;
		if (exec_cmd(r, cmds[i], &cond_done) < 0)
			return -1;
	}
	return 0;
}

void
sieve_result_free(struct sieve_result *res)
{
	for (size_t i = 0; i < res->nacts; i++) {
		struct sieve_action *a = &res->acts[i];

		free(a->target);
		strv_free(&a->flags);
		free(a->subject);
		free(a->from);
		free(a->handle);
		strv_free(&a->addresses);
		free(a->importance);
		free(a->message);
	}
	free(res->acts);
	strv_free(&res->dup_ids);
	free(res->dup_secs);
	free(res->error);
	memset(res, 0, sizeof(*res));
}

int
sieve_run(struct sieve_script *const *scripts, size_t n, const struct sieve_env *env,
    struct sieve_result *res)
{
	struct run r;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	memset(res, 0, sizeof(*res));
	r.env = env;
	r.res = res;
	r.implicit_keep = 1;
	if (n > 0)
		r.lim = scripts[0]->lim;
	else
		sieve_limits_default(&r.lim);
	for (size_t i = 0; i < n && !r.stopped && rc == 0; i++) {
		mvars_clear(&r);
		rc = run_script(&r, scripts[i]);
	}
	if (rc == 0 && r.implicit_keep) {
		int have_keep = 0;

		for (size_t i = 0; i < res->nacts; i++)
			if (res->acts[i].type == SIEVE_KEEP)
				have_keep = 1;
		if (!have_keep) {
			struct sieve_action *a;

			/* the implicit keep is not counted against actions_max */
			res->acts = xreallocarray(res->acts, res->nacts + 1, sizeof(*res->acts));
			a = &res->acts[res->nacts++];
			memset(a, 0, sizeof(*a));
			a->type = SIEVE_KEEP;
			a->target = xstrdup("INBOX");
			a->flags = flags_copy(r.flags);
		}
	}
	mvars_clear(&r);
	strv_free(&r.flags);
	strv_free(&r.once);
	vars_free(&r.global);
	return rc;
}

/* ---- vacation (RFC 5230 4.5, RFC 3834 2) ---- */

static int
hdr_has(const struct sieve_env *env, const char *name)
{
	char *v = sieve_header_get(env->hdr, env->hdrlen, name);

	free(v);
	return v != NULL;
}

int
sieve_vacation_allowed(const struct sieve_env *env, const struct sieve_action *a,
    const char *const *my_addrs, const char **why_r)
{
	static const char *const listhdrs[] = { "List-Id", "List-Help", "List-Subscribe",
		"List-Unsubscribe", "List-Post", "List-Owner", "List-Archive" };
	const char *from = env->env_from != NULL ? env->env_from : "";
	char *v, **addrs = NULL;
	int found = 0;

	if (*from == '\0') {
		*why_r = "null sender";
		return 0;
	}
	{
		const char *at = strrchr(from, '@');
		size_t ll = at != NULL ? (size_t)(at - from) : strlen(from);
		static const char *const robots[] = { "mailer-daemon", "listserv", "majordomo",
			"owner-", "-request", "-owner", "postmaster" };

		for (size_t i = 0; i < sizeof(robots) / sizeof(robots[0]); i++) {
			size_t rl = strlen(robots[i]);

			if (robots[i][0] == '-' ? (ll >= rl &&
			    strncasecmp(from + ll - rl, robots[i], rl) == 0) :
			    robots[i][rl - 1] == '-' ? strncasecmp(from, robots[i], rl) == 0 :
			    (ll == rl && strncasecmp(from, robots[i], rl) == 0)) {
				*why_r = "sender is a mail robot";
				return 0;
			}
		}
	}
	if ((v = sieve_header_get(env->hdr, env->hdrlen, "Auto-Submitted")) != NULL) {
		int no = strncasecmp(v, "no", 2) == 0 && (v[2] == '\0' || v[2] == ';' ||
		    v[2] == ' ' || v[2] == '(');

		free(v);
		if (!no) {
			*why_r = "auto-submitted message";
			return 0;
		}
	}
	if ((v = sieve_header_get(env->hdr, env->hdrlen, "Precedence")) != NULL) {
		int bulk = strcasecmp(v, "bulk") == 0 || strcasecmp(v, "list") == 0 ||
		    strcasecmp(v, "junk") == 0;

		free(v);
		if (bulk) {
			*why_r = "bulk or list precedence";
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(listhdrs) / sizeof(listhdrs[0]); i++)
		if (hdr_has(env, listhdrs[i])) {
			*why_r = "mailing list message";
			return 0;
		}
	if (hdr_has(env, "X-Auto-Response-Suppress") || hdr_has(env, "X-Autoreply") ||
	    hdr_has(env, "X-Autorespond")) {
		*why_r = "automatic response suppressed";
		return 0;
	}
	/* One of my addresses must be a recipient in the header (4.5). */
	{
		static const char *const rh[] = { "To", "Cc", "Bcc", "Resent-To", "Resent-Cc",
			"Resent-Bcc" };

		for (size_t i = 0; i < sizeof(rh) / sizeof(rh[0]); i++) {
			char **hv = NULL;

			sv_header_values(env->hdr, env->hdrlen, rh[i], &hv);
			for (size_t k = 0; hv[k] != NULL; k++)
				sv_addr_list(hv[k], &addrs);
			strv_free(&hv);
		}
	}
	for (size_t i = 0; addrs != NULL && addrs[i] != NULL && !found; i++) {
		for (size_t k = 0; my_addrs != NULL && my_addrs[k] != NULL && !found; k++)
			found = strcasecmp(addrs[i], my_addrs[k]) == 0;
		for (size_t k = 0; a != NULL && a->addresses != NULL && a->addresses[k] != NULL &&
		    !found; k++)
			found = strcasecmp(addrs[i], a->addresses[k]) == 0;
	}
	strv_free(&addrs);
	if (!found) {
		*why_r = "my address is not in To/Cc";
		return 0;
	}
	/* Never answer myself. */
	for (size_t k = 0; my_addrs != NULL && my_addrs[k] != NULL; k++)
		if (strcasecmp(from, my_addrs[k]) == 0) {
			*why_r = "message from myself";
			return 0;
		}
	return 1;
}
