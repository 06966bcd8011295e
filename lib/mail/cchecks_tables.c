/*
 * cchecks_tables - the tables of header_checks, mime_header_checks,
 * nested_header_checks and body_checks, and Postfix's log lines for the
 * actions that fire (see cchecks.h). The filter itself (cchecks.c)
 * stays free of I/O.
 *
 * Trusts: the tables (the administrator's). The header or line a log
 * line quotes is the sender's: cut to 200 bytes, its line breaks and
 * tabs made spaces (the log makes any CR or LF a space as well), so one
 * action is one log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "mail/bcc.h"
#include "mail/cchecks.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/queue.h"

const char *const cchecks_param[CC_NCLASS] = { "header_checks",
	"mime_header_checks", "nested_header_checks", "body_checks" };

/* Does a result change the envelope? */
static int
envelope_action(const char *result, void *ctx)
{
	size_t n = strcspn(result, " \t");

	(void)ctx;
	return (n == 8 && strncasecmp(result, "REDIRECT", 8) == 0)
	    || (n == 3 && strncasecmp(result, "BCC", 3) == 0);
}

int
cc_tables_open(struct cc_tables *t, char **err_r)
{
	long long limit = config_int("body_checks_size_limit");

	memset(t, 0, sizeof(*t));
	t->body_limit = limit > 0 ? (size_t)limit : 0;
	for (int i = 0; i < CC_NCLASS; i++) {
		t->t[i] = maplist_open_param(cchecks_param[i], err_r);
		if (*err_r != NULL) {
			cc_tables_close(t);
			return -1;
		}
		for (size_t k = 0; t->t[i] != NULL && k < maplist_count(t->t[i]); k++)
			t->envelope |= map_foreach_result(maplist_get(t->t[i], k),
			    envelope_action, NULL) != 0;
	}
	return 0;
}

void
cc_tables_close(struct cc_tables *t)
{
	for (int i = 0; i < CC_NCLASS; i++)
		maplist_close(&t->t[i]);
}

static int
lookup(void *ctx, enum cc_class c, const char *key, char **value_r)
{
	struct cc_log_ctx *l = ctx;

	return maplist_lookup(l->tables->t[c], key, value_r);
}

static void
report(void *ctx, const char *action, enum cc_class c, const char *what,
    const char *text)
{
	struct cc_log_ctx *l = ctx;
	char quoted[201];
	size_t i;

	/* One log line: the header's line breaks as spaces. */
	snprintf(quoted, sizeof(quoted), "%s", what);
	for (i = 0; quoted[i] != '\0'; i++)
		if (quoted[i] == '\n' || quoted[i] == '\t')
			quoted[i] = ' ';
	if (strcmp(action, "unknown") == 0) {
		log_warnx("%s: %s: unknown action \"%s\" for %s %s (Postern does "
		    "REJECT, DISCARD, HOLD, WARN, INFO, IGNORE, PREPEND, REPLACE, "
		    "REDIRECT and BCC to one address, DUNNO and OK): ignored", l->id, cchecks_param[c], text,
		    c == CC_BODY ? "body" : "header", quoted);
		return;
	}
	struct buf b = BUF_INIT(0);

	buf_printf(&b, "%s: %s: %s %s from %s; from=<%s> to=<%s>", l->id, action,
	    c == CC_BODY ? "body" : "header", quoted, l->client, l->from, l->to);
	if (l->proto != NULL)
		buf_printf(&b, " proto=%s", l->proto);
	if (l->helo != NULL)
		buf_printf(&b, " helo=<%s>", l->helo);
	if (*text != '\0')
		buf_printf(&b, ": %s", text);
	log_info("%s", buf_cstr(&b));
	buf_free(&b);
}

int
cc_envelope_apply(const struct cchecks *c, struct resolver *res,
    struct queue_writer *w)
{
	int r = 0;

	if (c->redirect != NULL)
		r = queue_writer_rcpt_truncate(w, 0) < 0 ? -2
		    : bcc_add_addr(res, w, c->redirect, "");
	for (size_t i = 0; r == 0 && c->bcc != NULL && c->bcc[i] != NULL; i++)
		r = bcc_add_addr(res, w, c->bcc[i], "NEVER");
	return r;
}

void
cc_tables_begin(struct cc_tables *t, struct cchecks *c,
    size_t line_length_limit, void *log_ctx)
{
	int has[CC_NCLASS];

	for (int i = 0; i < CC_NCLASS; i++)
		has[i] = t->t[i] != NULL;
	cchecks_init(c, has, t->body_limit, line_length_limit, lookup, report,
	    log_ctx);
}
