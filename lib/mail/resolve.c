/*
 * resolve - address classes, recipient existence, virtual aliasing and
 * routing, from the Postfix parameters mydestination,
 * virtual_alias_domains, virtual_mailbox_domains, local_recipient_maps,
 * virtual_alias_maps, virtual_mailbox_maps, transport_maps and the
 * *_transport/relayhost defaults.
 *
 * Invariants: domains are compared in lower case without a trailing dot.
 * Lookups go through maps.c, which folds keys and reopens changed tables;
 * the derived domain sets below are rebuilt when their table's generation
 * changes. A temporary lookup failure is never turned into "unknown" or
 * "relay": callers get -1 and defer.
 *
 * Class order, as Postfix: mydestination (local), virtual_alias_domains
 * and virtual_mailbox_domains (virtual), else relay. A domain list may
 * mix names and tables ("example.com, lmdb:/etc/postern/domains"): a
 * table matches when the domain is a key. For virtual_mailbox_domains a
 * table also matches when it has a key "...@domain" - its default is
 * $virtual_mailbox_maps, which lists addresses, not domains.
 *
 * Limits: exact domain matches only (no parent-domain patterns); address
 * literals are relay. Alias expansion stops at depth 20, 1000 addresses
 * or 10000 lookups.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/resolve.h"

#define ALIAS_DEPTH 20
#define ALIAS_MAX_ADDRS 1000
#define ALIAS_MAX_LOOKUPS 10000

struct domset {
	struct map *m;          /* borrowed from the list's maplist */
	unsigned long gen;
	char **doms;            /* sorted */
	size_t n;
};

struct domlist {
	const char *param;
	char **names;
	struct maplist *tables;
	int derive;             /* "@domain" keys count (virtual_mailbox_domains) */
	struct domset *sets;
	size_t nsets;
};

struct resolver {
	struct domlist mydest;
	struct domlist valias_dom;
	struct domlist vmbox_dom;
	struct maplist *local_rcpt;
	struct maplist *valias;
	struct maplist *vmbox;
	struct maplist *transport;
	char *delim;
	char *myorigin;
	char *myhostname;
	char *local_transport;
	char *virtual_transport;
	char *default_transport;
	char *relayhost;
};

static char *
norm_domain(const char *d)
{
	char *s = str_lower(xstrdup(d ? d : ""));
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '.')
		s[--n] = '\0';
	return s;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
domlist_open(struct domlist *dl, const char *param, int derive, char **err_r)
{
	struct buf specs = BUF_INIT(0);
	const char *value = config_get(param);
	char **items;
	size_t i;

	memset(dl, 0, sizeof(*dl));
	dl->param = param;
	dl->derive = derive;
	dl->names = xcalloc(1, sizeof(char *));
	items = map_split_list(value ? value : "");
	for (i = 0; items[i] != NULL; i++) {
		if (items[i][0] == '/' || items[i][0] == '!') {
			*err_r = xasprintf("%s: unsupported entry '%s'", param, items[i]);
			goto fail;
		}
		if (strchr(items[i], ':') != NULL) {
			if (specs.len > 0)
				buf_puts(&specs, ", ");
			buf_puts(&specs, items[i]);
		} else {
			char *d = norm_domain(items[i]);

			if (*d != '\0')
				strv_push(&dl->names, d);
			free(d);
		}
	}
	dl->tables = maplist_open(buf_cstr(&specs), err_r);
	if (dl->tables == NULL) {
		char *e = *err_r;

		*err_r = xasprintf("%s: %s", param, e);
		free(e);
		goto fail;
	}
	if (derive) {
		dl->nsets = maplist_count(dl->tables);
		dl->sets = xcalloc(dl->nsets ? dl->nsets : 1, sizeof(*dl->sets));
		for (i = 0; i < dl->nsets; i++)
			dl->sets[i].m = maplist_get(dl->tables, i);
	}
	strv_free(&items);
	buf_free(&specs);
	return 0;
fail:
	strv_free(&items);
	buf_free(&specs);
	strv_free(&dl->names);
	return -1;
}

static void
domset_clear(struct domset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->doms[i]);
	free(s->doms);
	s->doms = NULL;
	s->n = 0;
}

static void
domlist_close(struct domlist *dl)
{
	size_t i;

	for (i = 0; i < dl->nsets; i++)
		domset_clear(&dl->sets[i]);
	free(dl->sets);
	strv_free(&dl->names);
	maplist_close(&dl->tables);
	memset(dl, 0, sizeof(*dl));
}

struct collect {
	char **v;
	size_t n, cap;
};

static int
collect_domain(const char *key, const char *value, void *ctx)
{
	struct collect *c = ctx;
	const char *at = strrchr(key, '@');

	(void)value;
	if (at == NULL || at[1] == '\0')
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = xreallocarray(c->v, c->cap, sizeof(char *));
	}
	c->v[c->n++] = norm_domain(at + 1);
	return 0;
}

/* Rebuild the "@domain" set of one table when the table changed. */
static int
domset_refresh(struct domset *s)
{
	struct collect c = { NULL, 0, 0 };
	char *err = NULL;
	size_t i, j;
	int r;

	if (!map_has_keys(s->m))
		return 0;
	r = map_refresh(s->m);
	if (r < 0)
		return -1;
	if (s->gen == map_generation(s->m) && s->gen != 0)
		return 0;
	if (map_foreach(s->m, collect_domain, &c, &err) != 0) {
		log_warnx("%s", err ? err : "map read error");
		free(err);
		for (i = 0; i < c.n; i++)
			free(c.v[i]);
		free(c.v);
		return -1;
	}
	if (c.n > 0)
		qsort(c.v, c.n, sizeof(char *), cmp_str);
	for (i = j = 0; i < c.n; i++) {
		if (j > 0 && strcmp(c.v[j - 1], c.v[i]) == 0)
			free(c.v[i]);
		else
			c.v[j++] = c.v[i];
	}
	domset_clear(s);
	s->doms = c.v;
	s->n = j;
	s->gen = map_generation(s->m);
	return 0;
}

/* 1 domain (normalized) in the list, 0 not, -1 temporary failure. */
static int
domlist_match(struct domlist *dl, const char *domain)
{
	char *value = NULL;
	size_t i;
	int r;

	for (i = 0; dl->names[i] != NULL; i++)
		if (strcmp(dl->names[i], domain) == 0)
			return 1;
	if (maplist_empty(dl->tables))
		return 0;
	r = maplist_lookup(dl->tables, domain, &value);
	free(value);
	if (r != 0)
		return r;
	for (i = 0; i < dl->nsets; i++) {
		if (domset_refresh(&dl->sets[i]) != 0)
			return -1;
		if (dl->sets[i].n > 0 && bsearch(&domain, dl->sets[i].doms,
		    dl->sets[i].n, sizeof(char *), cmp_str) != NULL)
			return 1;
	}
	return 0;
}

static struct maplist *
open_param_maps(const char *param, char **err_r)
{
	struct maplist *ml;
	char *e = NULL;

	ml = maplist_open(config_get(param), &e);
	if (ml == NULL) {
		*err_r = xasprintf("%s: %s", param, e);
		free(e);
	}
	return ml;
}

/* The table holds every default (config.c): no fallback here. */
static char *
param_dup(const char *name)
{
	const char *v = config_get(name);

	return xstrdup(v != NULL ? v : "");
}

struct resolver *
resolver_open(char **err_r)
{
	struct resolver *r = xcalloc(1, sizeof(*r));

	*err_r = NULL;
	if (domlist_open(&r->mydest, "mydestination", 0, err_r) != 0 ||
	    domlist_open(&r->valias_dom, "virtual_alias_domains", 0, err_r) != 0 ||
	    domlist_open(&r->vmbox_dom, "virtual_mailbox_domains", 1, err_r) != 0 ||
	    (r->local_rcpt = open_param_maps("local_recipient_maps", err_r)) == NULL ||
	    (r->valias = open_param_maps("virtual_alias_maps", err_r)) == NULL ||
	    (r->vmbox = open_param_maps("virtual_mailbox_maps", err_r)) == NULL ||
	    (r->transport = open_param_maps("transport_maps", err_r)) == NULL) {
		resolver_close(&r);
		return NULL;
	}
	r->delim = param_dup("recipient_delimiter");
	r->myhostname = param_dup("myhostname");
	r->myorigin = param_dup("myorigin");
	r->local_transport = param_dup("local_transport");
	r->virtual_transport = param_dup("virtual_transport");
	r->default_transport = param_dup("default_transport");
	r->relayhost = param_dup("relayhost");
	return r;
}

void
resolver_close(struct resolver **rp)
{
	struct resolver *r = *rp;

	if (r == NULL)
		return;
	domlist_close(&r->mydest);
	domlist_close(&r->valias_dom);
	domlist_close(&r->vmbox_dom);
	maplist_close(&r->local_rcpt);
	maplist_close(&r->valias);
	maplist_close(&r->vmbox);
	maplist_close(&r->transport);
	free(r->delim);
	free(r->myorigin);
	free(r->myhostname);
	free(r->local_transport);
	free(r->virtual_transport);
	free(r->default_transport);
	free(r->relayhost);
	free(r);
	*rp = NULL;
}

int
resolver_class_ex(struct resolver *r, const char *domain, enum rcpt_class *cls)
{
	char *d = norm_domain(domain);
	int m;

	*cls = RCPT_LOCAL;
	if (*d == '\0') {
		free(d);
		return 0;
	}
	if ((m = domlist_match(&r->mydest, d)) != 0)
		goto done;
	*cls = RCPT_VIRTUAL;
	if ((m = domlist_match(&r->valias_dom, d)) != 0)
		goto done;
	if ((m = domlist_match(&r->vmbox_dom, d)) != 0)
		goto done;
	*cls = RCPT_RELAY;
	m = 0;
done:
	free(d);
	return m < 0 ? -1 : 0;
}

/* The parts of an address as lookups use them. */
struct parts {
	char *local;     /* as written */
	char *domain;    /* normalized */
	char *key;       /* unquoted, lower case */
	char *base;      /* key without the extension */
	const char *ext; /* in key: delimiter and extension, or "" */
};

static void
parts_init(struct resolver *r, const char *addr, struct parts *p)
{
	char *dom;

	addr_split(addr, &p->local, &dom);
	p->domain = norm_domain(dom);
	free(dom);
	p->key = addr_lookup_key(p->local, "");
	p->base = addr_lookup_key(p->local, r->delim);
	p->ext = p->key + strlen(p->base);
}

static void
parts_free(struct parts *p)
{
	free(p->local);
	free(p->domain);
	free(p->key);
	free(p->base);
}

/* Look up user@domain, the extension-less form, then the catch-all. */
static int
valias_find(struct resolver *r, const struct parts *p, char **value_r,
    int *by_base)
{
	char *k;
	int found;

	*value_r = NULL;
	*by_base = 0;
	if (*p->domain == '\0' || maplist_empty(r->valias))
		return 0;
	k = xasprintf("%s@%s", p->key, p->domain);
	found = maplist_lookup(r->valias, k, value_r);
	free(k);
	if (found == 0 && *p->ext != '\0') {
		k = xasprintf("%s@%s", p->base, p->domain);
		found = maplist_lookup(r->valias, k, value_r);
		free(k);
		*by_base = found == 1;
	}
	if (found == 0) {
		k = xasprintf("@%s", p->domain);
		found = maplist_lookup(r->valias, k, value_r);
		free(k);
	}
	return found;
}

static int
lookup_pair(struct maplist *ml, const char *a, const char *b)
{
	char *v = NULL;
	int found;

	found = maplist_lookup(ml, a, &v);
	free(v);
	if (found == 0 && b != NULL && strcmp(a, b) != 0) {
		found = maplist_lookup(ml, b, &v);
		free(v);
	}
	return found;
}

int
resolver_rcpt_known(struct resolver *r, const char *addr)
{
	struct parts p;
	enum rcpt_class cls;
	char *v = NULL, *full = NULL, *base = NULL;
	int found, by_base;

	parts_init(r, addr, &p);
	if (resolver_class_ex(r, p.domain, &cls) != 0) {
		found = -1;
		goto out;
	}
	if (cls == RCPT_RELAY) {
		found = 1;
		goto out;
	}
	/* an aliased address exists whatever its class */
	found = valias_find(r, &p, &v, &by_base);
	free(v);
	if (found != 0)
		goto out;
	if (cls == RCPT_LOCAL) {
		if (strcmp(p.base, "postmaster") == 0 || maplist_empty(r->local_rcpt))
			found = 1;
		else
			found = lookup_pair(r->local_rcpt, p.key, p.base);
		goto out;
	}
	full = xasprintf("%s@%s", p.key, p.domain);
	base = xasprintf("%s@%s", p.base, p.domain);
	found = lookup_pair(r->vmbox, full, base);
out:
	free(full);
	free(base);
	parts_free(&p);
	return found;
}

struct expansion {
	char **out;
	char **path;
	size_t lookups;
};

/* Qualify a target and carry an unmatched extension over, as Postfix's
 * propagate_unmatched_extensions does for virtual aliases. */
static char *
alias_target(struct resolver *r, const char *t, const char *ext)
{
	const char *at = strrchr(t, '@');
	size_t ln = at ? (size_t)(at - t) : strlen(t);
	const char *dom = at ? at + 1 : r->myorigin;
	int has_ext = 0;
	size_t i;

	for (i = 1; i < ln && *r->delim != '\0'; i++)
		if (strchr(r->delim, t[i]) != NULL)
			has_ext = 1;
	if (*ext != '\0' && !has_ext && ln > 0)
		return xasprintf("%.*s%s@%s", (int)ln, t, ext, dom);
	return xasprintf("%.*s@%s", (int)ln, t, dom);
}

static int
expand_alias(struct resolver *r, const char *addr, int depth,
    struct expansion *x, int *found_r)
{
	struct parts p;
	char *value = NULL, **targets = NULL;
	int found, by_base, ret = 0;
	size_t i;

	*found_r = 0;
	if (++x->lookups > ALIAS_MAX_LOOKUPS) {
		log_warnx("%s: virtual alias expansion too large", addr);
		return -2;
	}
	parts_init(r, addr, &p);
	found = valias_find(r, &p, &value, &by_base);
	if (found < 0) {
		ret = -1;
		goto out;
	}
	if (found == 0) {
		if (!strv_contains_ci(x->out, addr)) {
			if (strv_len(x->out) >= ALIAS_MAX_ADDRS) {
				log_warnx("%s: virtual alias expansion has more than "
				    "%d addresses", addr, ALIAS_MAX_ADDRS);
				ret = -2;
				goto out;
			}
			strv_push(&x->out, addr);
		}
		goto out;
	}
	*found_r = 1;
	if (depth >= ALIAS_DEPTH) {
		log_warnx("%s: virtual alias nesting exceeds %d", addr, ALIAS_DEPTH);
		ret = -2;
		goto out;
	}
	targets = strv_split_list(value);
	if (targets[0] == NULL) {
		log_warnx("%s: empty virtual alias", addr);
		ret = -2;
		goto out;
	}
	strv_push(&x->path, addr);
	for (i = 0; targets[i] != NULL && ret == 0; i++) {
		char *t = alias_target(r, targets[i], by_base ? p.ext : "");
		int sub;

		if (strcasecmp(t, addr) == 0) {
			/* "a@x  a@x, b@x": deliver to a@x itself as well */
			if (!strv_contains_ci(x->out, t))
				strv_push(&x->out, t);
		} else if (strv_contains_ci(x->path, t)) {
			log_warnx("%s: virtual alias loop through %s", addr, t);
			ret = -2;
		} else
			ret = expand_alias(r, t, depth + 1, x, &sub);
		free(t);
	}
	{
		size_t n = strv_len(x->path);

		free(x->path[n - 1]);
		x->path[n - 1] = NULL;
	}
out:
	strv_free(&targets);
	free(value);
	parts_free(&p);
	return ret;
}

int
resolver_virtual_alias(struct resolver *r, const char *addr, char ***out_r)
{
	struct expansion x = { NULL, NULL, 0 };
	int found, ret;

	*out_r = NULL;
	x.out = xcalloc(1, sizeof(char *));
	x.path = xcalloc(1, sizeof(char *));
	ret = expand_alias(r, addr, 0, &x, &found);
	strv_free(&x.path);
	if (ret == 0 && !found) {
		strv_free(&x.out);
		return 0;
	}
	if (ret != 0) {
		strv_free(&x.out);
		return ret;
	}
	*out_r = x.out;
	return 1;
}

/* "transport:nexthop" -> parts; either may come out empty. */
static void
split_transport(const char *v, char **transport_r, char **nexthop_r)
{
	const char *colon = strchr(v, ':');

	if (colon == NULL) {
		*transport_r = str_trim(xstrdup(v));
		*nexthop_r = xstrdup("");
	} else {
		*transport_r = str_trim(xstrndup(v, (size_t)(colon - v)));
		*nexthop_r = str_trim(xstrdup(colon + 1));
	}
}

/* Try the Postfix transport(5) lookup order. 1 and the value, 0, -1. */
static int
transport_find(struct resolver *r, const struct parts *p, char **value_r)
{
	const char *d;
	char *k;
	int found;

	*value_r = NULL;
	if (*p->domain != '\0') {
		k = xasprintf("%s@%s", p->key, p->domain);
		found = maplist_lookup(r->transport, k, value_r);
		free(k);
		if (found != 0)
			return found;
		if (*p->ext != '\0') {
			k = xasprintf("%s@%s", p->base, p->domain);
			found = maplist_lookup(r->transport, k, value_r);
			free(k);
			if (found != 0)
				return found;
		}
		found = maplist_lookup(r->transport, p->domain, value_r);
		if (found != 0)
			return found;
		for (d = strchr(p->domain, '.'); d != NULL; d = strchr(d + 1, '.')) {
			found = maplist_lookup(r->transport, d, value_r);
			if (found != 0)
				return found;
		}
	}
	return maplist_lookup(r->transport, "*", value_r);
}

int
resolver_route(struct resolver *r, const char *addr, char **transport_r,
    char **nexthop_r)
{
	struct parts p;
	enum rcpt_class cls;
	const char *def;
	char *value = NULL, *t = NULL, *nh = NULL, *dt = NULL, *dnh = NULL;
	int found;

	*transport_r = NULL;
	*nexthop_r = NULL;
	parts_init(r, addr, &p);
	if (resolver_class_ex(r, p.domain, &cls) != 0)
		goto fail;
	def = cls == RCPT_LOCAL ? r->local_transport :
	    cls == RCPT_VIRTUAL ? r->virtual_transport : r->default_transport;
	split_transport(def, &dt, &dnh);
	if (*dt == '\0') {
		free(dt);
		dt = xstrdup(cls == RCPT_LOCAL ? "local" :
		    cls == RCPT_VIRTUAL ? "virtual" : "smtp");
	}
	if (*dnh == '\0') {
		free(dnh);
		if (cls == RCPT_RELAY && *r->relayhost != '\0')
			dnh = xstrdup(r->relayhost);
		else if (cls == RCPT_LOCAL && *p.domain == '\0')
			dnh = xstrdup(r->myhostname);
		else
			dnh = xstrdup(p.domain);
	}
	found = maplist_empty(r->transport) ? 0 :
	    transport_find(r, &p, &value);
	if (found < 0)
		goto fail;
	if (found == 1) {
		split_transport(value, &t, &nh);
		free(value);
		if (*t == '\0') {
			free(t);
			t = xstrdup(dt);
		}
		if (*nh == '\0') {
			free(nh);
			nh = xstrdup(dnh);
		}
	} else {
		t = xstrdup(dt);
		nh = xstrdup(dnh);
	}
	free(dt);
	free(dnh);
	parts_free(&p);
	*transport_r = t;
	*nexthop_r = nh;
	return 0;
fail:
	free(dt);
	free(dnh);
	parts_free(&p);
	return -1;
}
