/*
 * imap_list - mailbox names and the LIST family for imapd: LIST (RFC
 * 3501/9051, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE
 * RFC 6154), LSUB, STATUS (STATUS=SIZE RFC 8438), and the name a client
 * sends turned into the folder name lib/store uses (modified UTF-7 for
 * rev1 clients, UTF-8 for rev2 / UTF8=ACCEPT). Pure: the session gives
 * the folder and subscription lists (lib/store) and writes the output.
 *
 * Names inside Postern are UTF-8 with '/' as hierarchy separator and
 * "INBOX" spelled so (any case from a client means the INBOX).
 */
#ifndef POSTERN_IMAP_LIST_H
#define POSTERN_IMAP_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "proto/imap.h"

struct mbx_status;

#define IMAP_HIER_SEP '/'

/* A mailbox argument to its internal UTF-8 name: mUTF-7 decoded unless
 * utf8, "INBOX" normalized, then checked by mbx_folder_name_ok() rules
 * (store/index.h). *name_r xmalloc'd. 0, or -1 with *err_r static (the
 * session answers NO). */
int imap_mailbox_arg(const struct imap_arg *a, int utf8, char **name_r,
    const char **err_r);
/* Write a name as a mailbox for the client (mUTF-7 unless utf8). */
void imap_write_mailbox(struct buf *out, const char *name, int utf8);

/* Folder attributes (bits). */
#define IMAP_LA_NOSELECT      0x001u
#define IMAP_LA_NONEXISTENT   0x002u
#define IMAP_LA_HASCHILDREN   0x004u
#define IMAP_LA_HASNOCHILDREN 0x008u
#define IMAP_LA_SUBSCRIBED    0x010u
#define IMAP_LA_NOINFERIORS   0x020u
#define IMAP_LA_ALL           0x040u   /* special-use \All ... */
#define IMAP_LA_ARCHIVE       0x080u
#define IMAP_LA_DRAFTS        0x100u
#define IMAP_LA_JUNK          0x200u
#define IMAP_LA_SENT          0x400u
#define IMAP_LA_TRASH         0x800u
#define IMAP_LA_SPECIAL (IMAP_LA_ALL | IMAP_LA_ARCHIVE | IMAP_LA_DRAFTS \
    | IMAP_LA_JUNK | IMAP_LA_SENT | IMAP_LA_TRASH)

/* STATUS items (bits). */
#define IMAP_ST_MESSAGES      1u
#define IMAP_ST_UIDNEXT       2u
#define IMAP_ST_UIDVALIDITY   4u
#define IMAP_ST_UNSEEN        8u
#define IMAP_ST_RECENT       16u
#define IMAP_ST_SIZE         32u
#define IMAP_ST_HIGHESTMODSEQ 64u
#define IMAP_ST_DELETED     128u

/* The "(MESSAGES UNSEEN ...)" list at a (a LIST arg): 0 or -1 (*err_r). */
int imap_status_items_parse(const struct imap_command *c, size_t li,
    unsigned *items_r, const char **err_r);
/* "* STATUS name (MESSAGES n ...)\r\n"; recent and deleted counts are
 * passed separately because the index does not keep them. */
void imap_status_write(struct buf *out, const char *name, int utf8,
    unsigned items, const struct mbx_status *st, uint32_t recent,
    uint32_t deleted);

struct imap_list_req {
	int lsub;
	int extended;              /* selection or return options were given,
	                            * or several patterns */
	unsigned sel;              /* IMAP_LS_* */
	unsigned ret;              /* IMAP_LR_* */
	unsigned status_items;     /* RETURN (STATUS (...)) */
	char *ref;                 /* UTF-8, owned */
	char **patterns;           /* UTF-8, NULL-terminated, owned */
};
#define IMAP_LS_SUBSCRIBED     1u
#define IMAP_LS_REMOTE         2u
#define IMAP_LS_RECURSIVEMATCH 4u
#define IMAP_LS_SPECIALUSE     8u
#define IMAP_LR_SUBSCRIBED     1u
#define IMAP_LR_CHILDREN       2u
#define IMAP_LR_SPECIALUSE     4u
#define IMAP_LR_STATUS         8u

/* Parse LIST/LSUB arguments from child 0 of c->args[0]. 0 or -1 (*err_r). */
int imap_list_parse(const struct imap_command *c, int lsub, int utf8,
    struct imap_list_req *r, const char **err_r);
void imap_list_req_free(struct imap_list_req *r);

struct imap_list_entry {
	char *name;                /* UTF-8, owned */
	unsigned attrs;            /* IMAP_LA_* to report */
	int childinfo_subscribed;  /* CHILDINFO ("SUBSCRIBED") extended item */
};

/* Match: folders are every existing folder name (INBOX included), subs the
 * subscribed names (may name folders that no longer exist), special maps
 * a name to its IMAP_LA_* special-use bits (NULL: none). Fills *e_r (in
 * folder order, the hierarchy sorted) per RFC 5258's rules, including
 * \NonExistent parents and the "" pattern (the hierarchy delimiter reply). */
int imap_list_run(const struct imap_list_req *r, char *const *folders,
    char *const *subs, unsigned (*special)(const char *name),
    struct imap_list_entry **e_r, size_t *n_r);
void imap_list_entries_free(struct imap_list_entry **e, size_t n);
/* '* LIST (\HasNoChildren \Sent) "/" Sent\r\n' (or LSUB). */
void imap_list_write(struct buf *out, const struct imap_list_req *r,
    const struct imap_list_entry *e, int utf8);

/* Special-use bits of a folder by name (Drafts, Sent, Trash, Junk,
 * Archive, as mbx_folders_init creates them): the special() of
 * imap_list_run. */
unsigned imap_special_use(const char *name);

/* 1 if name matches an IMAP LIST pattern ('*' anything, '%' anything but
 * the separator); ref prefixed as RFC 3501 says. */
int imap_list_match(const char *ref, const char *pattern, const char *name);

#endif
