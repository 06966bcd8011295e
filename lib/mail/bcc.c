/*
 * bcc - blind copies as Postfix's cleanup makes them (see bcc.h).
 *
 * Trusts: the tables' contents (the administrator's). A value is used
 * only as an address for the queue file, never as a path or a command.
 * Limits: one copy per sender and per recipient; a value that is not a
 * plain address (empty, white space, a list) is logged and skipped, so a
 * bad entry loses no mail.
 */
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/bcc.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/queue.h"
#include "mail/resolve.h"

struct bcc {
	char *always;               /* always_bcc, qualified, or NULL */
	char *myorigin;
	struct maplist *sender, *rcpt;
};

struct bcc *
bcc_open(char **err_r)
{
	struct bcc *b = xcalloc(1, sizeof(*b));
	const char *always = config_str("always_bcc");

	*err_r = NULL;
	b->myorigin = xstrdup(config_str("myorigin"));
	if (*always != '\0')
		b->always = addr_qualify(always, b->myorigin);
	b->sender = maplist_open_param("sender_bcc_maps", err_r);
	if (*err_r == NULL)
		b->rcpt = maplist_open_param("recipient_bcc_maps", err_r);
	if (*err_r != NULL)
		bcc_close(&b);
	return b;
}

/* One table's copy for addr: 1 and *copy_r, 0 none, -1 lookup failure. */
static int
lookup(struct bcc *b, struct maplist *ml, const char *addr, char **copy_r)
{
	char *key = addr_fold_domain(addr), *value = NULL;
	int r = maplist_lookup_addr(ml, key, &value);

	*copy_r = NULL;
	if (r == 1) {
		char *v = value + strspn(value, " \t");
		size_t n = strcspn(v, " \t,");

		if (n == 0 || v[n + strspn(v + n, " \t")] != '\0') {
			log_warnx("bcc table entry for %s is not one address: "
			    "\"%s\"; no copy made", key, value);
			r = 0;
		} else {
			v[n] = '\0';
			*copy_r = addr_qualify(v, b->myorigin);
		}
	}
	free(value);
	free(key);
	return r;
}

static void
add_copy(char ***list, char *const *rcpts, char *copy)
{
	if (!strv_contains_ci(rcpts, copy) && !strv_contains_ci(*list, copy))
		strv_push(list, copy);
	free(copy);
}

int
bcc_collect(struct bcc *b, const char *sender, char *const *rcpts, char ***list)
{
	char **found = NULL, *copy;
	size_t i;
	int r = 0;

	if (b == NULL)
		return 0;
	if (b->always != NULL)
		add_copy(&found, rcpts, xstrdup(b->always));
	if (b->sender != NULL && *sender != '\0' &&
	    (r = lookup(b, b->sender, sender, &copy)) == 1)
		add_copy(&found, rcpts, copy);
	for (i = 0; r >= 0 && b->rcpt != NULL && rcpts[i] != NULL; i++)
		if ((r = lookup(b, b->rcpt, rcpts[i], &copy)) == 1)
			add_copy(&found, rcpts, copy);
	if (r < 0) {
		strv_free(&found);
		return -1;
	}
	for (i = 0; found != NULL && found[i] != NULL; i++)
		if (!strv_contains_ci(*list, found[i]))
			strv_push(list, found[i]);
	strv_free(&found);
	return 0;
}

int
bcc_add_addr(struct resolver *res, struct queue_writer *w, const char *addr,
    const char *notify)
{
	char **list = NULL;
	size_t j;
	int r = resolver_virtual_alias(res, addr, &list);

	if (r == -2) {
		/* A loop is the table's fault, not the message's. */
		log_warnx("added recipient %s: virtual alias loop or too many "
		    "addresses; not added", addr);
		return 0;
	}
	if (r < 0)
		return -1;
	if (r == 0)
		strv_push(&list, addr);
	r = 0;
	for (j = 0; list[j] != NULL && r == 0; j++)
		if (!queue_writer_rcpt_has(w, list[j]) &&
		    queue_writer_rcpt(w, list[j], addr, notify) < 0)
			r = -2;
	strv_free(&list);
	return r;
}

int
bcc_add(struct bcc *b, struct resolver *res, struct queue_writer *w,
    const char *sender)
{
	char **rcpts, **copies = NULL;
	size_t i;
	int r;

	if (b == NULL || (b->always == NULL && b->sender == NULL && b->rcpt == NULL))
		return 0;
	rcpts = queue_writer_rcpt_list(w);
	r = bcc_collect(b, sender, rcpts, &copies);
	strv_free(&rcpts);
	for (i = 0; r == 0 && copies != NULL && copies[i] != NULL; i++)
		r = bcc_add_addr(res, w, copies[i], "NEVER");
	strv_free(&copies);
	return r;
}

void
bcc_close(struct bcc **bp)
{
	struct bcc *b = *bp;

	if (b == NULL)
		return;
	free(b->always);
	free(b->myorigin);
	maplist_close(&b->sender);
	maplist_close(&b->rcpt);
	xfree(bp);
}
