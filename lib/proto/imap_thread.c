/*
 * imap_thread - THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256
 * section 3) over the matched views (contract in imap_search.h).
 *
 * Both build one tree of nodes (a message, or a dummy standing for a
 * referenced message that is not there) under a root node whose children
 * are the threads, and write it with one writer. Sibling lists are
 * doubly linked so moving a node is O(1); message-ID and subject lookups
 * use open-addressing hash tables.
 *
 * Invariants: nothing recurses (pruning and writing use explicit
 * stacks), so a deep thread cannot exhaust the C stack; a new link is
 * refused when it would make a loop (RFC 5256 step 1), so parent walks
 * end. At most REFS_MAX references of a message are used (the last
 * ones, nearest to the message).
 *
 * BUGS: the loop check walks up the ancestors of the new parent, so
 * linking costs the depth of the thread; a mailbox of very long
 * reference chains threads in time proportional to messages x depth.
 */
#include "proto/imap_search.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/imap_search_int.h"
#include "util/alloc.h"

#define NONE UINT32_MAX
#define REFS_MAX 256

struct tnode {
	uint32_t msg;              /* index in views, NONE for a dummy */
	uint32_t parent, first, next, prev;
	int64_t date;              /* sent date (a dummy: its first child's) */
	uint32_t seq;
};

struct hent {
	char *key;                 /* owned */
	uint32_t val;
};

struct htab {
	struct hent *e;
	size_t n, cap;             /* cap: power of two */
};

struct tctx {
	struct tnode *nodes;
	size_t n, cap;
	uint32_t root;
	struct imap_view *const *views;
	char **subj;               /* base subject per message */
	int *reply;
};

/* --- Hash of strings ------------------------------------------------------- */

static size_t
hash(const char *s)
{
	size_t h = 1469598103934665603u;   /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211u;
	return h;
}

static struct hent *
hfind(struct htab *t, const char *key)
{
	if (t->cap == 0)
		return NULL;
	for (size_t i = hash(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		if (t->e[i].key == NULL)
			return &t->e[i];
		if (strcmp(t->e[i].key, key) == 0)
			return &t->e[i];
	}
}

static void
hput(struct htab *t, const char *key, uint32_t val)
{
	if ((t->n + 1) * 2 > t->cap) {
		struct htab nt = { NULL, 0, t->cap ? t->cap * 2 : 64 };
		nt.e = xcalloc(nt.cap, sizeof(*nt.e));
		for (size_t i = 0; i < t->cap; i++)
			if (t->e[i].key) {
				struct hent *h = hfind(&nt, t->e[i].key);
				*h = t->e[i];
				nt.n++;
			}
		free(t->e);
		*t = nt;
	}
	struct hent *h = hfind(t, key);
	if (h->key == NULL) {
		h->key = xstrdup(key);
		t->n++;
	}
	h->val = val;
}

static void
hfree(struct htab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->e[i].key);
	free(t->e);
	memset(t, 0, sizeof(*t));
}

/* --- Nodes ----------------------------------------------------------------- */

static uint32_t
node_new(struct tctx *c, uint32_t msg)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->nodes = xreallocarray(c->nodes, c->cap, sizeof(*c->nodes));
	}
	struct tnode *t = &c->nodes[c->n];
	t->msg = msg;
	t->parent = t->first = t->next = t->prev = NONE;
	t->date = 0;
	t->seq = 0;
	if (msg != NONE) {
		t->seq = c->views[msg]->seq;
	}
	return (uint32_t)c->n++;
}

#define N(i) (c->nodes[i])

static void
unlink_node(struct tctx *c, uint32_t x)
{
	uint32_t p = N(x).parent;

	if (p == NONE)
		return;
	if (N(x).prev != NONE)
		N(N(x).prev).next = N(x).next;
	else
		N(p).first = N(x).next;
	if (N(x).next != NONE)
		N(N(x).next).prev = N(x).prev;
	N(x).parent = N(x).next = N(x).prev = NONE;
}

/* Make x the first child of p (x must have no parent). */
static void
link_node(struct tctx *c, uint32_t p, uint32_t x)
{
	N(x).parent = p;
	N(x).prev = NONE;
	N(x).next = N(p).first;
	if (N(p).first != NONE)
		N(N(p).first).prev = x;
	N(p).first = x;
}

/* 1 if making x a child of p would make a loop. */
static int
would_loop(const struct tctx *c, uint32_t p, uint32_t x)
{
	for (uint32_t a = p; a != NONE; a = N(a).parent)
		if (a == x)
			return 1;
	return 0;
}

static int
is_dummy(const struct tctx *c, uint32_t x)
{
	return N(x).msg == NONE;
}

/* --- Sorting siblings by sent date ----------------------------------------- */

static int
date_cmp(const void *a, const void *b, void *arg)
{
	const struct tctx *c = arg;
	const struct tnode *x = &N(*(const uint32_t *)a), *y = &N(*(const uint32_t *)b);

	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
sort_children(struct tctx *c, uint32_t p, uint32_t **tmp, size_t *tmpcap)
{
	size_t k = 0;

	for (uint32_t x = N(p).first; x != NONE; x = N(x).next) {
		if (k == *tmpcap) {
			*tmpcap = *tmpcap ? *tmpcap * 2 : 64;
			*tmp = xreallocarray(*tmp, *tmpcap, sizeof(**tmp));
		}
		(*tmp)[k++] = x;
	}
	if (k < 2)
		return;
	qsort_r(*tmp, k, sizeof(**tmp), date_cmp, c);
	N(p).first = (*tmp)[0];
	for (size_t i = 0; i < k; i++) {
		N((*tmp)[i]).prev = i ? (*tmp)[i - 1] : NONE;
		N((*tmp)[i]).next = i + 1 < k ? (*tmp)[i + 1] : NONE;
	}
}

/* RFC 5256 step 4 (and 6): every sibling set by date; a dummy dates
 * from its first child once its children are sorted (dummies have only
 * message children by then, so one pass over the others suffices). */
static void
sort_all(struct tctx *c)
{
	uint32_t *tmp = NULL;
	size_t cap = 0;

	for (uint32_t i = 0; i < c->n; i++)
		if (i != c->root && !is_dummy(c, i))
			sort_children(c, i, &tmp, &cap);
	for (uint32_t i = 0; i < c->n; i++)
		if (i != c->root && is_dummy(c, i) && N(i).first != NONE) {
			sort_children(c, i, &tmp, &cap);
			N(i).date = N(N(i).first).date;
			N(i).seq = N(N(i).first).seq;
		}
	sort_children(c, c->root, &tmp, &cap);
	free(tmp);
}

/* --- Output ---------------------------------------------------------------- */

#define CLOSE (UINT64_C(1) << 62)
#define WRAP (UINT64_C(1) << 61)

static void
write_tree(struct tctx *c, int uid, struct buf *out)
{
	uint64_t *st = NULL;
	size_t sn = 0, scap = 0;

#define PUSH(v) do { \
	if (sn == scap) { \
		scap = scap ? scap * 2 : 64; \
		st = xreallocarray(st, scap, sizeof(*st)); \
	} \
	st[sn++] = (v); \
} while (0)

	buf_puts(out, "* THREAD");
	if (N(c->root).first != NONE)
		buf_putc(out, ' ');
	/* Threads are pushed last first so they pop in order. */
	{
		uint32_t last = N(c->root).first;
		while (last != NONE && N(last).next != NONE)
			last = N(last).next;
		for (uint32_t x = last; x != NONE; x = N(x).prev)
			PUSH(WRAP | x);
	}
	while (sn > 0) {
		uint64_t f = st[--sn];
		if (f & CLOSE) {
			buf_putc(out, ')');
			continue;
		}
		uint32_t x = (uint32_t)(f & 0xffffffffu);
		int after_num = out->len > 0 && out->data[out->len - 1] >= '0'
		    && out->data[out->len - 1] <= '9';
		if (f & WRAP) {
			if (after_num)
				buf_putc(out, ' ');
			buf_putc(out, '(');
			PUSH(CLOSE);
			after_num = 0;
		}
		size_t nkids = 0;
		uint32_t last = NONE;
		for (uint32_t k = N(x).first; k != NONE; k = N(k).next) {
			nkids++;
			last = k;
		}
		if (!is_dummy(c, x)) {
			const struct imap_view *v = c->views[N(x).msg];
			buf_printf(out, "%s%u", after_num ? " " : "", uid ? v->uid : v->seq);
		}
		if (nkids == 1)
			PUSH(N(x).first);      /* a chain goes on inline */
		else
			for (uint32_t k = last; k != NONE; k = N(k).prev)
				PUSH(WRAP | k);
	}
	buf_puts(out, "\r\n");
	free(st);
#undef PUSH
}

/* --- Message IDs ----------------------------------------------------------- */

/* Next "<id>" in s[0..n) from *pos: 1 and the id (blanks removed) in
 * out, or 0. */
static int
next_msgid(const char *s, size_t n, size_t *pos, struct buf *out)
{
	while (*pos < n) {
		const char *lt = memchr(s + *pos, '<', n - *pos);
		if (lt == NULL)
			break;
		size_t b = (size_t)(lt - s) + 1;
		const char *gt = memchr(s + b, '>', n - b);
		if (gt == NULL)
			break;
		size_t e = (size_t)(gt - s);
		*pos = e + 1;
		buf_reset(out);
		for (size_t i = b; i < e; i++)
			if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
				buf_putc(out, s[i]);
		if (out->len > 0)
			return 1;
	}
	*pos = n;
	return 0;
}

static uint32_t
node_for_id(struct tctx *c, struct htab *ids, const char *id)
{
	struct hent *h = hfind(ids, id);

	if (h != NULL && h->key != NULL)
		return h->val;
	uint32_t x = node_new(c, NONE);
	hput(ids, id, x);
	return x;
}

/* RFC 5256 REFERENCES steps 1 and 2. */
static void
link_references(struct tctx *c, size_t n)
{
	struct htab ids = { NULL, 0, 0 };
	struct buf raw = BUF_INIT(0), id = BUF_INIT(0);
	char **refs = xcalloc(REFS_MAX, sizeof(*refs));

	for (size_t i = 0; i < n; i++) {
		struct imap_view *v = c->views[i];
		size_t pos = 0;
		uint32_t x = NONE;
		if (imap_view_field(v, "Message-ID", 0, &raw)
		    && next_msgid(raw.data, raw.len, &pos, &id)) {
			uint32_t y = node_for_id(c, &ids, id.data);
			if (!is_dummy(c, y))
				y = NONE;   /* a duplicate: this one gets its own */
			x = y;
		}
		if (x == NONE)
			x = node_new(c, (uint32_t)i);
		N(x).msg = (uint32_t)i;
		N(x).seq = v->seq;
		N(x).date = imap_sent_date(v, &raw);

		/* References, else the first ID of In-Reply-To. */
		size_t nrefs = 0, total = 0;
		pos = 0;
		if (imap_view_field(v, "References", 0, &raw))
			while (next_msgid(raw.data, raw.len, &pos, &id)) {
				size_t slot = total++ % REFS_MAX;
				free(refs[slot]);
				refs[slot] = xstrdup(id.data);
			}
		pos = 0;
		if (total == 0 && imap_view_field(v, "In-Reply-To", 0, &raw)
		    && next_msgid(raw.data, raw.len, &pos, &id)) {
			refs[0] = xstrdup(id.data);
			total = 1;
		}
		nrefs = total < REFS_MAX ? total : REFS_MAX;
		uint32_t prev = NONE;
		for (size_t k = 0; k < nrefs; k++) {
			size_t slot = (total - nrefs + k) % REFS_MAX;
			uint32_t r = node_for_id(c, &ids, refs[slot]);
			free(refs[slot]);
			refs[slot] = NULL;
			if (prev != NONE && N(r).parent == NONE && !would_loop(c, prev, r))
				link_node(c, prev, r);
			prev = r;
		}
		/* The last reference is the parent, whatever was there. */
		if (prev != NONE && !would_loop(c, prev, x)) {
			unlink_node(c, x);
			link_node(c, prev, x);
		} else if (prev == NONE)
			unlink_node(c, x);
	}
	c->root = node_new(c, NONE);
	for (uint32_t i = 0; i < c->root; i++)
		if (N(i).parent == NONE)
			link_node(c, c->root, i);
	free(refs);
	buf_free(&raw);
	buf_free(&id);
	hfree(&ids);
}

/* Step 3: dummies without children go; a dummy with children is replaced
 * by them, except a dummy at the root with several children. */
static void
prune(struct tctx *c)
{
	uint32_t *st = xreallocarray(NULL, (c->n) ? (c->n) : 1, sizeof(uint32_t));
	size_t sn = 0;

	st[sn++] = c->root;
	while (sn > 0) {
		uint32_t p = st[--sn];
		uint32_t x = N(p).first;
		while (x != NONE) {
			uint32_t next = N(x).next;
			if (!is_dummy(c, x)) {
				if (N(x).first != NONE)
					st[sn++] = x;
				x = next;
				continue;
			}
			if (N(x).first == NONE) {
				unlink_node(c, x);
				x = next;
				continue;
			}
			if (p == c->root && N(N(x).first).next != NONE) {
				st[sn++] = x;   /* kept; its children are looked at */
				x = next;
				continue;
			}
			/* Splice x's children in its place; look at them next. */
			uint32_t first = N(x).first, last = first;
			for (uint32_t k = first; k != NONE; k = N(k).next) {
				N(k).parent = p;
				last = k;
			}
			N(first).prev = N(x).prev;
			N(last).next = next;
			if (N(x).prev != NONE)
				N(N(x).prev).next = first;
			else
				N(p).first = first;
			if (next != NONE)
				N(next).prev = last;
			N(x).first = N(x).parent = N(x).next = N(x).prev = NONE;
			x = first;
		}
	}
	free(st);
}

/* Subject of a thread root: its message's, or its first child's. */
static uint32_t
subject_msg(const struct tctx *c, uint32_t x)
{
	if (!is_dummy(c, x))
		return N(x).msg;
	x = N(x).first;
	return x != NONE && !is_dummy(c, x) ? N(x).msg : NONE;
}

/* Step 5: roots with the same base subject are gathered. */
static void
group_subjects(struct tctx *c)
{
	struct htab subj = { NULL, 0, 0 };
	size_t nroots = 0;

	for (uint32_t x = N(c->root).first; x != NONE; x = N(x).next)
		nroots++;
	uint32_t *roots = xreallocarray(NULL, (nroots) ? (nroots) : 1, sizeof(uint32_t));
	nroots = 0;
	for (uint32_t x = N(c->root).first; x != NONE; x = N(x).next)
		roots[nroots++] = x;

	for (size_t i = 0; i < nroots; i++) {
		uint32_t x = roots[i], m = subject_msg(c, x);
		if (m == NONE || c->subj[m][0] == '\0')
			continue;
		struct hent *h = hfind(&subj, c->subj[m]);
		if (h == NULL || h->key == NULL) {
			hput(&subj, c->subj[m], x);
			continue;
		}
		uint32_t t = h->val;
		if ((is_dummy(c, x) && !is_dummy(c, t))
		    || (!is_dummy(c, x) && !is_dummy(c, t) && c->reply[N(t).msg]
		    && !c->reply[m]))
			h->val = x;
	}
	for (size_t i = 0; i < nroots; i++) {
		uint32_t x = roots[i], m = subject_msg(c, x);
		if (m == NONE || c->subj[m][0] == '\0')
			continue;
		struct hent *h = hfind(&subj, c->subj[m]);
		uint32_t t = h->val;
		if (t == x)
			continue;
		if (is_dummy(c, t) && is_dummy(c, x)) {
			while (N(x).first != NONE) {
				uint32_t k = N(x).first;
				unlink_node(c, k);
				link_node(c, t, k);
			}
			unlink_node(c, x);
		} else if (is_dummy(c, t)) {
			unlink_node(c, x);
			link_node(c, t, x);
		} else if (is_dummy(c, x)) {
			unlink_node(c, t);
			link_node(c, x, t);
			h->val = x;
		} else if (!c->reply[N(t).msg] && c->reply[N(x).msg]) {
			unlink_node(c, x);
			link_node(c, t, x);
		} else {
			uint32_t d = node_new(c, NONE);
			unlink_node(c, t);
			unlink_node(c, x);
			link_node(c, c->root, d);
			link_node(c, d, t);
			link_node(c, d, x);
			h->val = d;
		}
	}
	free(roots);
	hfree(&subj);
}

/* --- ORDEREDSUBJECT -------------------------------------------------------- */

static int
subj_cmp(const void *a, const void *b, void *arg)
{
	const struct tctx *c = arg;
	const struct tnode *x = &N(*(const uint32_t *)a), *y = &N(*(const uint32_t *)b);
	int r = strcmp(c->subj[x->msg], c->subj[y->msg]);

	if (r != 0)
		return r;
	return date_cmp(a, b, arg);
}

static void
ordered_subject(struct tctx *c, size_t n)
{
	struct buf raw = BUF_INIT(0);
	uint32_t *order = xreallocarray(NULL, (n) ? (n) : 1, sizeof(uint32_t));

	for (size_t i = 0; i < n; i++) {
		uint32_t x = node_new(c, (uint32_t)i);
		N(x).date = imap_sent_date(c->views[i], &raw);
		order[i] = x;
	}
	c->root = node_new(c, NONE);
	qsort_r(order, n, sizeof(*order), subj_cmp, c);
	for (size_t i = 0; i < n;) {
		uint32_t head = order[i];
		link_node(c, c->root, head);
		size_t j = i + 1;
		while (j < n && strcmp(c->subj[N(order[j]).msg], c->subj[N(head).msg]) == 0)
			link_node(c, head, order[j++]);
		i = j;
	}
	free(order);
	buf_free(&raw);
}

int
imap_thread_parse(const struct imap_command *c, size_t k,
    enum imap_thread_alg *alg_r, const char **err_r)
{
	const struct imap_arg *a = imap_arg_child(c, 0, k);

	if (a != NULL && a->kind == IMAP_ARG_ATOM) {
		if (strcasecmp(a->str, "ORDEREDSUBJECT") == 0) {
			*alg_r = IMAP_THREAD_ORDEREDSUBJECT;
			return 0;
		}
		if (strcasecmp(a->str, "REFERENCES") == 0) {
			*alg_r = IMAP_THREAD_REFERENCES;
			return 0;
		}
	}
	*err_r = "Unknown threading algorithm";
	return -1;
}

void
imap_thread_write(enum imap_thread_alg alg, int uid,
    struct imap_view *const *views, size_t n, struct buf *out)
{
	struct tctx c = { .views = views };
	struct buf raw = BUF_INIT(0);

	c.subj = xcalloc(n ? n : 1, sizeof(*c.subj));
	c.reply = xcalloc(n ? n : 1, sizeof(*c.reply));
	for (size_t i = 0; i < n; i++) {
		struct buf bs = BUF_INIT(0);
		(void)imap_view_field(views[i], "Subject", 0, &raw);
		imap_base_subject(raw.data ? raw.data : "", raw.len, &bs, &c.reply[i]);
		c.subj[i] = buf_steal(&bs);
	}
	if (alg == IMAP_THREAD_ORDEREDSUBJECT) {
		ordered_subject(&c, n);
	} else {
		link_references(&c, n);
		prune(&c);
		sort_all(&c);
		group_subjects(&c);
	}
	sort_all(&c);
	write_tree(&c, uid, out);
	for (size_t i = 0; i < n; i++)
		free(c.subj[i]);
	free(c.subj);
	free(c.reply);
	free(c.nodes);
	buf_free(&raw);
}
