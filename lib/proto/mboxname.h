/*
 * mboxname - the one rule for which mailbox (folder) names Postern
 * accepts, shared by the IMAP layer (names from clients) and the mail
 * store (names turned into Maildir++ paths: store/index.h
 * mbx_folder_name_ok wraps this). It lives below both layers so that the
 * wire side and the disk side can never disagree.
 *
 * A name is UTF-8 with '/' as the hierarchy separator. Refused: empty
 * names or levels ("a//b", "/a", "a/"), '.' anywhere (Maildir++ uses it
 * as its separator, and it rules out "." and ".." levels), '\\', control
 * characters (0x00-0x1f, 0x7f), invalid UTF-8, more than
 * MBOXNAME_LEN_MAX bytes or MBOXNAME_DEPTH_MAX levels. "INBOX" in any
 * case passes (the callers give it its meaning).
 */
#ifndef POSTERN_MBOXNAME_H
#define POSTERN_MBOXNAME_H

#include <stddef.h>

#define MBOXNAME_LEN_MAX 255
#define MBOXNAME_DEPTH_MAX 16

/* name[0..len): 0, or -1 with *why_r a static reason. */
int mboxname_check(const char *name, size_t len, const char **why_r);

#endif
