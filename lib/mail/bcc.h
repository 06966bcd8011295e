/*
 * bcc - Postfix's always_bcc, sender_bcc_maps and recipient_bcc_maps:
 * which addresses get a blind copy of a message as it enters the queue
 * (smtpd and pickup; the notices qmgr writes itself are not copied).
 *
 * A map is looked up with the whole address (domain in lower case), then
 * with "@domain"; its value is one address, "@$myorigin" added when it
 * has no domain. A copy goes to each address once, and not to one the
 * message already has. The callers add the copies as recipients with
 * NOTIFY=NEVER (Postfix's: the sender never hears that a copy it did not
 * ask for failed) and pass them through virtual_alias_maps like any other.
 */
#ifndef POSTERN_BCC_H
#define POSTERN_BCC_H

struct bcc;

/* From always_bcc, sender_bcc_maps and recipient_bcc_maps; NULL with
 * *err_r when a table cannot be opened. */
struct bcc *bcc_open(char **err_r);
/* Append to *list (a strv) the copies for a message from sender to
 * rcpts (a NULL-terminated list): 0, or -1 when a lookup failed (the
 * message is then a temporary failure, nothing appended). */
int bcc_collect(struct bcc *b, const char *sender, char *const *rcpts,
    char ***list);
/* The copies for the message being written to w: each passes through
 * virtual_alias_maps (res) and goes in as a recipient with NOTIFY=NEVER
 * and itself as the original recipient. 0; -1 when a lookup failed, -2
 * when w refused a recipient (errno set): a temporary failure either
 * way, the message is not to be queued. */
struct queue_writer;
struct resolver;
int bcc_add(struct bcc *b, struct resolver *res, struct queue_writer *w,
    const char *sender);
/* One address (a copy, or header_checks' REDIRECT and BCC) through
 * virtual_alias_maps into w, each result once, with notify ("" for the
 * default) and addr as the original recipient. A virtual alias loop is
 * logged and adds nothing. 0, -1 lookup failure, -2 w refused (errno). */
int bcc_add_addr(struct resolver *res, struct queue_writer *w, const char *addr,
    const char *notify);
void bcc_close(struct bcc **b);

#endif
