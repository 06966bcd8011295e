/*
 * uidlist - Dovecot's dovecot-uidlist and dovecot-keywords, read once
 * when Postern first indexes a Maildir that Dovecot kept, so that its
 * messages keep their UIDs, the folder its UIDVALIDITY and the messages
 * their keywords: IMAP clients do not fetch everything again, and POP3
 * UIDLs built from UID and UIDVALIDITY (pop3d_uidl_format) stay the same.
 */
#ifndef POSTERN_STORE_UIDLIST_H
#define POSTERN_STORE_UIDLIST_H

#include <stddef.h>
#include <stdint.h>

#define DC_UIDLIST_NAME "dovecot-uidlist"
#define DC_KEYWORDS_NAME "dovecot-keywords"

struct dc_uid {
	char *base;                    /* the file name up to ':' */
	uint32_t uid;
};

struct dc_uidlist {
	uint32_t uidvalidity;
	uint32_t uidnext;              /* > every uid in v (unless UINT32_MAX) */
	struct dc_uid *v;              /* sorted by base, bases unique */
	size_t n;
	char *kw[26];                  /* keyword of letter 'a' + i, or NULL */
};

/* Parse a dovecot-uidlist (versions 1, 2, 3). 0, or -1 when the header
 * is unusable (then nothing is imported). Bad message lines are skipped. */
int dc_uidlist_parse(const char *text, size_t len, struct dc_uidlist *u);
/* Add the keyword letters of a dovecot-keywords file; bad lines skipped. */
void dc_keywords_parse(const char *text, size_t len, struct dc_uidlist *u);
/* Both files of the Maildir dir: 0, or -1 with *u empty when there is no
 * usable dovecot-uidlist. */
int dc_uidlist_load(const char *dir, struct dc_uidlist *u);
const struct dc_uid *dc_uidlist_find(const struct dc_uidlist *u, const char *base,
    size_t blen);
/* The keywords the letters of file's ":2," info stand for, separated by
 * spaces as the index keeps them ("" for none); the caller frees. */
char *dc_uidlist_keywords(const struct dc_uidlist *u, const char *file);
void dc_uidlist_free(struct dc_uidlist *u);

#endif
