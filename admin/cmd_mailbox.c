/*
 * cmd_mailbox - "postern mailbox": look at and repair a user's mail store,
 * as doveadm mailbox does.
 *
 *   postern mailbox list USER                 INBOX and the Maildir++ folders
 *   postern mailbox status USER [FOLDER]      messages, unseen, size,
 *                                             UIDVALIDITY, next UID, HIGHESTMODSEQ
 *   postern mailbox reindex USER [FOLDER]     rebuild the index (new UIDVALIDITY)
 *
 * USER is a system login or a virtual address (lib/store/owner.c answers
 * where the mailbox is and whose it is). Invariant 5: the mailbox is only
 * opened as its owner - run as root we drop to the owner's uid and gid for
 * good before touching it; run as anyone else we must be the owner.
 * Exit: 0; 64 usage; 67 (EX_NOUSER) unknown user or folder; 69
 * (EX_UNAVAILABLE) the INBOX is an mbox file (not indexed yet); 75
 * (EX_TEMPFAIL) lookup or index failure; 77 (EX_NOPERM) not the owner.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/priv.h"
#include "util/strv.h"
#include "store/index.h"
#include "store/owner.h"
#include "admin.h"

static int
usage(void)
{
	fprintf(stderr, "usage: postern mailbox list USER\n"
	    "       postern mailbox status USER [FOLDER]\n"
	    "       postern mailbox reindex USER [FOLDER]\n");
	return EX_USAGE;
}

/* Find USER's mailbox and become its owner. 0, or an exit status. */
static int
become_owner(const char *user, struct mailbox_owner *o)
{
	struct owner_conf c;
	char *err = NULL;
	int rc;

	owner_conf_load(&c);
	rc = owner_lookup(&c, user, o, &err);
	owner_conf_free(&c);
	if (rc <= 0) {
		fprintf(stderr, "postern: %s\n", err != NULL ? err : user);
		free(err);
		return rc == 0 ? EX_NOUSER : EX_TEMPFAIL;
	}
	if (geteuid() == 0) {
		if (o->uid == 0 || priv_drop(o->uid, o->gid, NULL) < 0) {
			fprintf(stderr, "postern: cannot become uid %ld for %s: %s\n",
			    (long)o->uid, user, o->uid == 0 ? "refusing root" : strerror(errno));
			return EX_NOPERM;
		}
	} else if (geteuid() != o->uid) {
		fprintf(stderr, "postern: the mailbox of %s belongs to uid %ld; "
		    "run as root or as that user\n", user, (long)o->uid);
		return EX_NOPERM;
	}
	return 0;
}

/* The Maildir of USER's FOLDER (INBOX when NULL). 0 or an exit status. */
static int
folder_dir(const struct mailbox_owner *o, const char *folder, char **path_r)
{
	char *base, *err = NULL;
	size_t n;

	*path_r = NULL;
	if (!owner_is_maildir(o->path)) {
		fprintf(stderr, "postern: the INBOX of %s is the mbox file %s, "
		    "which has no index\n", o->user, o->path);
		return EX_UNAVAILABLE;
	}
	base = xstrdup(o->path);
	n = strlen(base);
	while (n > 1 && base[n - 1] == '/')
		base[--n] = '\0';
	if (mbx_folder_path(base, folder != NULL ? folder : "INBOX", path_r, &err) != 0) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
		free(base);
		return EX_USAGE;
	}
	free(base);
	return 0;
}

static int
open_folder(const char *path, struct mailbox **mb_r)
{
	struct stat st;
	char *err = NULL;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "postern: %s: %s\n", path, strerror(errno));
		return errno == ENOENT ? EX_NOUSER : EX_TEMPFAIL;
	}
	if (mbx_open(path, 0, mb_r, &err) != 0) {
		fprintf(stderr, "postern: %s\n", err != NULL ? err : path);
		free(err);
		return EX_TEMPFAIL;
	}
	return 0;
}

static int
mb_list(const struct mailbox_owner *o)
{
	char *path, **names = NULL, *err = NULL;
	size_t i;
	int rc;

	if ((rc = folder_dir(o, NULL, &path)) != 0)
		return rc;
	if (mbx_folder_list(path, &names, &err) != 0) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
		free(path);
		return errno == ENOENT ? EX_NOUSER : EX_TEMPFAIL;
	}
	printf("INBOX\n");
	for (i = 0; names[i] != NULL; i++)
		printf("%s\n", names[i]);
	strv_free(&names);
	free(path);
	return 0;
}

static int
mb_status(const struct mailbox_owner *o, const char *folder, int reindex)
{
	struct mailbox *mb = NULL;
	struct mbx_status st;
	char *path, *err = NULL;
	int rc;

	if ((rc = folder_dir(o, folder, &path)) != 0)
		return rc;
	if (reindex) {
		struct stat sb;

		if (stat(path, &sb) != 0) {
			fprintf(stderr, "postern: %s: %s\n", path, strerror(errno));
			free(path);
			return EX_NOUSER;
		}
		if (mbx_reindex(path, &err) != 0) {
			fprintf(stderr, "postern: %s\n", err != NULL ? err : path);
			free(err);
			free(path);
			return EX_TEMPFAIL;
		}
	}
	rc = open_folder(path, &mb);
	if (rc == 0 && mbx_status(mb, &st, &err) != 0) {
		fprintf(stderr, "postern: %s\n", err != NULL ? err : path);
		free(err);
		rc = EX_TEMPFAIL;
	}
	if (rc == 0)
		printf("%s messages=%u unseen=%u size=%llu uidvalidity=%u uidnext=%u "
		    "highestmodseq=%llu\n", folder != NULL ? folder : "INBOX",
		    st.messages, st.unseen, (unsigned long long)st.size, st.uidvalidity,
		    st.uidnext, (unsigned long long)st.highestmodseq);
	mbx_close(&mb);
	free(path);
	return rc;
}

int
cmd_mailbox(int argc, char **argv)
{
	struct mailbox_owner o;
	int rc;

	if (argc < 2 || argc > 3)
		return usage();
	if (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "status") != 0 &&
	    strcmp(argv[0], "reindex") != 0)
		return usage();
	if (strcmp(argv[0], "list") == 0 && argc != 2)
		return usage();
	if ((rc = become_owner(argv[1], &o)) != 0)
		return rc;
	umask(077);
	if (strcmp(argv[0], "list") == 0)
		rc = mb_list(&o);
	else
		rc = mb_status(&o, argc == 3 ? argv[2] : NULL, strcmp(argv[0], "reindex") == 0);
	owner_free(&o);
	fflush(stdout);
	return rc == 0 && ferror(stdout) ? EX_IOERR : rc;
}
