/*
 * admin - the postern command's sub-commands. postern.c parses the global
 * options (-c DIR, -v) and dispatches; each cmd_* gets the words after its
 * own name and returns a process exit status (sysexits.h codes on error).
 */
#ifndef POSTERN_ADMIN_H
#define POSTERN_ADMIN_H

/* postern [-c DIR] conf [-n] [KEY...] */
int cmd_conf(int argc, char **argv);
/* postern [-c DIR] map build|query|list ... */
int cmd_map(int argc, char **argv);
/* postern [-c DIR] user add|passwd|del|list|rebuild ... (cmd_user.c) */
int cmd_user(int argc, char **argv);
/* postern [-c DIR] queue list|show|flush|hold|release|delete|requeue ...
 * (admin/cmd_queue.c; the configuration is loaded) */
int cmd_queue(int argc, char **argv);
/* postern [-c DIR] check: loads the configuration itself (from
 * $MAIL_CONFIG, which postern.c sets) so it can report what is wrong
 * instead of stopping at the first error. (admin/cmd_check.c) */
int cmd_check(int argc, char **argv);
/* The checks of "postern check", which start and reload run too: prints
 * each error (and each warning when show_warnings) and returns the number
 * of errors. The configuration is loaded from $MAIL_CONFIG. */
int check_run(int show_warnings);
/* postern [-c DIR] mailbox list|status|reindex USER [FOLDER]
 * (admin/cmd_mailbox.c; the configuration is loaded) */
int cmd_mailbox(int argc, char **argv);
/* postern [-c DIR] sieve check FILE...: compile with local's limits and
 * print errors as FILE:LINE: text (admin/cmd_sieve.c) */
int cmd_sieve(int argc, char **argv);

#endif
