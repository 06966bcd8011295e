/*
 * cmd_list - the folder commands: LIST (LIST-EXTENDED, LIST-STATUS,
 * SPECIAL-USE), LSUB, STATUS (STATUS=SIZE), CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE. Matching and writing are lib/proto/imap_list.c;
 * the folders and subscriptions are lib/store (mbx_folder_*, mbx_subs_*).
 * Every name from the client goes through s_folder_path() (session.c):
 * imap_mailbox_arg() then mbx_folder_path(), which refuse names that
 * would leave the Maildir.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "proto/imap_list.h"
#include "imapd.h"

/* STATUS of one folder into out: 0, or -1 (not written; *err_r). */
static int
status_of(struct isess *s, const char *name, unsigned items, struct buf *out,
    char **err_r)
{
	struct mbx_status st;
	struct imbox *b;
	char *path = NULL;
	uint32_t recent = 0, deleted = 0;
	int rc = -1;

	if (mbx_folder_path(s->maildir, name, &path, err_r) < 0)
		return -1;
	if ((b = s_box_acquire(s, path, strcmp(name, "INBOX") == 0, err_r)) == NULL) {
		free(path);
		return -1;
	}
	if (mbx_sync(b->mb, NULL, err_r) == 0 && mbx_status(b->mb, &st, err_r) == 0) {
		if (items & IMAP_ST_RECENT) {
			uint32_t first = 0;
			if (mbx_recent_first(b->mb, &first, NULL) == 0 && first < st.uidnext)
				recent = st.uidnext - first;
			/* The selected folder's recent messages are this
			 * session's: the store counts them claimed (EXAMINE
			 * claims none: they are in the count above). */
			if (b == s->box && !s->readonly)
				for (size_t i = 0; i < s->n; i++)
					recent += s->msgs[i].recent && !s->msgs[i].gone;
			if (recent > st.messages)
				recent = st.messages;
		}
		if ((items & IMAP_ST_DELETED) && imbox_snapshot(b, err_r) == 0) {
			for (size_t i = 0; i < b->nsnap; i++)
				deleted += (b->snap[i].flags & MBX_DELETED) != 0;
		}
		imap_status_write(out, name, s->utf8, items, &st, recent, deleted);
		rc = 0;
	}
	imbox_release(&b);
	free(path);
	return rc;
}

void
cmd_status(struct isess *s, const struct imap_command *c, int arg)
{
	const struct imap_arg *a = imap_arg_child(c, 0, 0), *l = imap_arg_child(c, 0, 1);
	char *name = NULL, *path = NULL, *err = NULL;
	const char *perr = NULL;
	struct buf out = BUF_INIT(0);
	unsigned items;
	struct stat st;

	if (a == NULL || l == NULL || l->kind != IMAP_ARG_LIST
	    || imap_arg_child(c, 0, 2) != NULL
	    || imap_status_items_parse(c, (size_t)(l - c->args), &items, &perr) < 0) {
		s_bad(s, c->tag, perr ? perr : "Invalid arguments.");
		return;
	}
	if (s_folder_path(s, c->tag, a, &name, &path) < 0)
		return;
	{
		char *cur = xasprintf("%s/cur", path);
		int exists = strcmp(name, "INBOX") == 0 || (stat(cur, &st) == 0
		    && S_ISDIR(st.st_mode));
		free(cur);
		if (!exists) {
			s_tagged(s, c->tag, "NO [NONEXISTENT] Mailbox doesn't exist: %s", name);
			goto out;
		}
	}
	if (status_of(s, name, items, &out, &err) < 0) {
		log_warnx("user=<%s>: status %s: %s", s->user, name, err ? err : "?");
		s_tagged(s, c->tag, "NO [SERVERBUG] Cannot read the mailbox.");
		goto out;
	}
	s_write(s, out.data, out.len);
	s_updates(s, 1);
	s_tagged(s, c->tag, "OK Status completed.");
out:
	buf_free(&out);
	free(err);
	free(name);
	free(path);
}

void
cmd_list(struct isess *s, const struct imap_command *c, int lsub)
{
	struct imap_list_req req;
	struct imap_list_entry *e = NULL;
	char **folders = NULL, **subs = NULL, *err = NULL;
	const char *perr = NULL;
	struct buf out = BUF_INIT(0);
	size_t n = 0;

	memset(&req, 0, sizeof(req));
	if (imap_list_parse(c, lsub, s->utf8, &req, &perr) < 0) {
		s_bad(s, c->tag, perr ? perr : "Invalid arguments.");
		return;
	}
	if (mbx_folder_list(s->maildir, &folders, &err) < 0
	    || mbx_subs_list(s->maildir, &subs, &err) < 0) {
		log_warnx("user=<%s>: folders: %s", s->user, err ? err : "?");
		s_tagged(s, c->tag, "NO [SERVERBUG] Cannot list the folders.");
		goto out;
	}
	/* INBOX first, then the folders as the store sorts them. */
	{
		char **all = NULL;
		strv_push(&all, "INBOX");
		for (size_t i = 0; folders != NULL && folders[i] != NULL; i++)
			strv_push(&all, folders[i]);
		strv_free(&folders);
		folders = all;
	}
	if (subs == NULL)
		subs = xcalloc(1, sizeof(char *));
	if (imap_list_run(&req, folders, subs, imap_special_use, &e, &n) < 0) {
		s_tagged(s, c->tag, "NO [SERVERBUG] Cannot list the folders.");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		imap_list_write(&out, &req, &e[i], s->utf8);
		if ((req.ret & IMAP_LR_STATUS) && !(e[i].attrs & (IMAP_LA_NOSELECT
		    | IMAP_LA_NONEXISTENT))) {
			char *se = NULL;
			/* RFC 5819: a folder whose status cannot be read is
			 * listed without one. */
			(void)status_of(s, e[i].name, req.status_items, &out, &se);
			free(se);
		}
		if (out.len > 64 * 1024) {
			s_write(s, out.data, out.len);
			buf_reset(&out);
		}
	}
	s_write(s, out.data, out.len);
	s_updates(s, 1);
	s_tagged(s, c->tag, "OK %s completed.", lsub ? "Lsub" : "List");
out:
	imap_list_entries_free(&e, n);
	imap_list_req_free(&req);
	strv_free(&folders);
	strv_free(&subs);
	free(err);
	buf_free(&out);
}

/* CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE: one name, one store call. */
/* The RFC 5530 code for what the store said, so a client can tell a
 * typo from a failure. */
static const char *
mbx_code(int rc)
{
	return rc == MBX_NOENT ? "[NONEXISTENT] " : rc == MBX_EXISTS ? "[ALREADYEXISTS] " :
	    rc == MBX_HASKIDS ? "[HASCHILDREN] " : "";
}

static void
one_name(struct isess *s, const struct imap_command *c, const char *what,
    int (*fn)(struct isess *s, const char *name, char **err_r))
{
	const struct imap_arg *a = imap_arg_child(c, 0, 0);
	char *name = NULL, *path = NULL, *err = NULL;
	int rc;

	if (a == NULL || imap_arg_child(c, 0, 1) != NULL) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	if (s_folder_path(s, c->tag, a, &name, &path) < 0)
		return;
	if ((rc = fn(s, name, &err)) < 0) {
		s_tagged(s, c->tag, "NO %s%s", mbx_code(rc), err ? err : "Failed.");
	} else {
		s_updates(s, 1);
		s_tagged(s, c->tag, "OK %s completed.", what);
	}
	free(err);
	free(name);
	free(path);
}

static int
do_create(struct isess *s, const char *name, char **err_r)
{
	struct stat st;
	char *path = NULL, *cur;
	int exists;

	if (strcmp(name, "INBOX") == 0) {
		*err_r = xstrdup("[ALREADYEXISTS] INBOX always exists.");
		return -1;
	}
	if (mbx_folder_path(s->maildir, name, &path, err_r) < 0)
		return -1;
	cur = xasprintf("%s/cur", path);
	exists = stat(cur, &st) == 0;
	free(cur);
	free(path);
	if (exists) {
		*err_r = xstrdup("[ALREADYEXISTS] Mailbox already exists.");
		return -1;
	}
	if (mbx_folder_create(s->maildir, name, err_r) < 0) {
		log_warnx("user=<%s>: create %s: %s", s->user, name, *err_r ? *err_r : "?");
		return -1;
	}
	(void)mbx_subs_set(s->maildir, name, 1, NULL);
	return 0;
}

static int
do_delete(struct isess *s, const char *name, char **err_r)
{
	int rc;

	if (s->box_name != NULL && strcmp(s->box_name, name) == 0)
		s_unselect(s);
	if ((rc = mbx_folder_delete(s->maildir, name, err_r)) == 0)
		(void)mbx_subs_set(s->maildir, name, 0, NULL);
	return rc;
}

static int
do_subscribe(struct isess *s, const char *name, char **err_r)
{
	return mbx_subs_set(s->maildir, name, 1, err_r);
}

static int
do_unsubscribe(struct isess *s, const char *name, char **err_r)
{
	return mbx_subs_set(s->maildir, name, 0, err_r);
}

void
cmd_create(struct isess *s, const struct imap_command *c, int arg)
{
	one_name(s, c, "Create", do_create);
}

void
cmd_delete(struct isess *s, const struct imap_command *c, int arg)
{
	one_name(s, c, "Delete", do_delete);
}

void
cmd_subscribe(struct isess *s, const struct imap_command *c, int on)
{
	one_name(s, c, on ? "Subscribe" : "Unsubscribe", on ? do_subscribe : do_unsubscribe);
}

void
cmd_rename(struct isess *s, const struct imap_command *c, int arg)
{
	const struct imap_arg *a = imap_arg_child(c, 0, 0), *b = imap_arg_child(c, 0, 1);
	char *from = NULL, *to = NULL, *p1 = NULL, *p2 = NULL, *err = NULL;
	int rc;

	if (a == NULL || b == NULL || imap_arg_child(c, 0, 2) != NULL) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	if (s_folder_path(s, c->tag, a, &from, &p1) < 0)
		return;
	if (s_folder_path(s, c->tag, b, &to, &p2) < 0)
		goto out;
	if (s->box_name != NULL && strcmp(s->box_name, from) == 0)
		s_unselect(s);
	if ((rc = mbx_folder_rename(s->maildir, from, to, &err)) < 0) {
		s_tagged(s, c->tag, "NO %s%s", mbx_code(rc), err ? err : "Rename failed.");
	} else {
		/* Subscriptions follow the folder and the folders below it. */
		(void)mbx_subs_rename(s->maildir, from, to, NULL);
		s_updates(s, 1);
		s_tagged(s, c->tag, "OK Rename completed.");
	}
out:
	free(err);
	free(from);
	free(to);
	free(p1);
	free(p2);
}
