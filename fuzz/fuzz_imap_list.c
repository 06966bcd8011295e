/*
 * fuzz_imap_list - libFuzzer target over lib/proto/imap_list.c and the
 * folder-name rule (lib/proto/mboxname.c).
 *
 * The first input byte picks rev1 (modified UTF-7) or UTF-8 names; the
 * rest is client bytes, parsed as commands. For every command:
 *   - each string argument that imap_mailbox_arg accepts passes
 *     mboxname_check (so it has no '.', no control character, no empty
 *     level: it cannot leave the Maildir), and written back with
 *     imap_write_mailbox and parsed again it gives the same name;
 *   - a LIST/LSUB that parses runs against a fixed set of folders and
 *     subscriptions: every entry is unique, is a folder, a subscribed
 *     name or a parent of one, and some pattern matches it (except the
 *     "" delimiter reply); each (pattern, candidate) match agrees with a
 *     plain table-driven matcher;
 *   - STATUS items that parse write a line ending in ")\r\n".
 * Anything else aborts.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/imap.h"
#include "proto/imap_list.h"
#include "proto/mboxname.h"
#include "store/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct imap_limits lim = { 4096, 1024, 4096, 8, 256, 1, 0 };

static char *const folders[] = { "INBOX", "INBOX/a", "Sent", "Archive", "Archive/2024",
    "Entwürfe", "a/b/c", "a*b", NULL };
static char *const subs[] = { "INBOX", "Sent", "Gone/x", "a/b", "Entwürfe/Alt", NULL };
static const char *const cands[] = { "INBOX", "INBOX/a", "Sent", "Archive", "Archive/2024",
    "Entwürfe", "Entwürfe/Alt", "a", "a/b", "a/b/c", "a*b", "Gone", "Gone/x", NULL };

/* The wildcard rules as a table (the INBOX level in any case). */
static int
ref_match(const char *p, const char *n)
{
	size_t pl = strlen(p), nl = strlen(n), inbox = 0;
	unsigned char *t = calloc((pl + 1) * (nl + 1), 1);
	int ok;

	if (strncasecmp(n, "INBOX", 5) == 0 && (n[5] == '\0' || n[5] == '/'))
		inbox = 5;
	t[0] = 1;
	for (size_t i = 1; i <= pl; i++)
		for (size_t j = 0; j <= nl; j++) {
			unsigned char c = (unsigned char)p[i - 1], d = j > 0 ? (unsigned char)n[j - 1] : 0;
			unsigned char *cell = &t[i * (nl + 1) + j];

			if (c == '*')
				*cell = t[(i - 1) * (nl + 1) + j] || (j > 0 && cell[-1]);
			else if (c == '%')
				*cell = t[(i - 1) * (nl + 1) + j] || (j > 0 && d != '/' && cell[-1]);
			else
				*cell = j > 0 && t[(i - 1) * (nl + 1) + j - 1] &&
				    (c == d || (j <= inbox && toupper(c) == toupper(d)));
		}
	ok = t[pl * (nl + 1) + nl];
	free(t);
	return ok;
}

static const struct imap_command *
parse_one(struct imap_parser *p, const char *in, size_t n, size_t *pos)
{
	while (*pos < n) {
		size_t used;
		enum imap_result r = imap_parse(p, in + *pos, n - *pos, &used);

		*pos += used;
		if (r == IMAP_DONE)
			return imap_parser_command(p);
		if (r == IMAP_LITERAL)
			imap_literal_accept(p);
		if (r == IMAP_ERROR && imap_parser_must_close(p))
			return NULL;
	}
	return NULL;
}

/* name written for the client and read back must be name again. */
static void
roundtrip(const char *name, int utf8)
{
	static const struct imap_limits big = IMAP_LIMITS_DEFAULT;
	struct buf line = BUF_INIT(0);
	struct imap_parser *p = imap_parser_new(&big);
	const struct imap_command *c;
	const char *err;
	char *again = NULL;
	size_t pos = 0;

	buf_puts(&line, "a SELECT ");
	imap_write_mailbox(&line, name, utf8);
	buf_puts(&line, "\r\n");
	c = parse_one(p, line.data, line.len, &pos);
	if (c == NULL || imap_mailbox_arg(imap_arg_child(c, 0, 0), utf8, &again, &err) != 0 ||
	    strcmp(again, name) != 0)
		abort();
	free(again);
	imap_parser_free(&p);
	buf_free(&line);
}

static void
check_list(const struct imap_command *c, int utf8)
{
	struct imap_list_req r;
	struct imap_list_entry *e;
	const char *err;
	size_t n;
	struct buf out = BUF_INIT(0);

	if (imap_list_parse(c, strcmp(c->name, "LSUB") == 0, utf8, &r, &err) != 0)
		return;
	for (size_t k = 0; r.patterns[k] != NULL; k++)
		for (size_t i = 0; cands[i] != NULL; i++) {
			char *full = malloc(strlen(r.ref) + strlen(r.patterns[k]) + 1);

			strcpy(full, r.ref);
			strcat(full, r.patterns[k]);
			if (imap_list_match(r.ref, r.patterns[k], cands[i]) != ref_match(full, cands[i]))
				abort();
			free(full);
		}
	if (imap_list_run(&r, folders, subs, imap_special_use, &e, &n) != 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		int known = 0, matched = 0;

		for (size_t j = 0; j < i; j++)
			if (strcmp(e[i].name, e[j].name) == 0)
				abort();
		for (size_t j = 0; cands[j] != NULL; j++)
			known |= strcmp(cands[j], e[i].name) == 0;
		for (size_t k = 0; r.patterns[k] != NULL; k++)
			matched |= r.patterns[k][0] != '\0' &&
			    imap_list_match(r.ref, r.patterns[k], e[i].name);
		if (!(n == 1 && e[i].name[0] == '\0') && (!known || !matched))
			abort();
		imap_list_write(&out, &r, &e[i], utf8);
	}
	if (n > 0 && (out.len < 2 || memcmp(out.data + out.len - 2, "\r\n", 2) != 0))
		abort();
	imap_list_entries_free(&e, n);
	imap_list_req_free(&r);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *p;
	const struct imap_command *c;
	size_t pos = 0;
	int utf8;

	if (size == 0)
		return 0;
	utf8 = data[0] & 1;
	p = imap_parser_new(&lim);
	while ((c = parse_one(p, (const char *)data + 1, size - 1, &pos)) != NULL) {
		for (size_t i = 1; i < c->nargs; i++) {
			char *name = NULL;
			const char *err;

			if (imap_mailbox_arg(&c->args[i], utf8, &name, &err) == 0) {
				if (mboxname_check(name, strlen(name), &err) != 0 ||
				    strchr(name, '.') != NULL)
					abort();
				roundtrip(name, utf8);
				free(name);
			} else if (name != NULL)
				abort();
		}
		if (strcmp(c->name, "LIST") == 0 || strcmp(c->name, "LSUB") == 0)
			check_list(c, utf8);
		if (strcmp(c->name, "STATUS") == 0) {
			const struct imap_arg *a = imap_arg_child(c, 0, 1);
			unsigned items;
			const char *err;

			if (a != NULL && imap_status_items_parse(c, (size_t)(a - c->args), &items,
			    &err) == 0) {
				struct mbx_status st = { 1, 2, 3, 4, 5, 6 };
				struct buf out = BUF_INIT(0);

				imap_status_write(&out, "INBOX", utf8, items, &st, 7, 8);
				if (out.len < 3 || memcmp(out.data + out.len - 3, ")\r\n", 3) != 0)
					abort();
				buf_free(&out);
			}
		}
	}
	imap_parser_free(&p);
	return 0;
}
