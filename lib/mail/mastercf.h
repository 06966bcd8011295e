/*
 * mastercf - master.conf, in master.cf's column format:
 *
 *   service type private unpriv chroot wakeup maxproc command args...
 *
 * type is inet or unix. '-' takes the default (private y, unpriv y,
 * chroot n, wakeup 0, maxproc default_process_limit). A line starting with
 * white space continues the previous one; '#' starts a comment line.
 * "-o name=value" arguments are passed to the child as overrides.
 */
#ifndef POSTERN_MASTERCF_H
#define POSTERN_MASTERCF_H

#include <stddef.h>

struct master_service {
	char *name;        /* "127.0.0.1:2525", "smtp", "qmgr", "local" */
	char *type;        /* "inet" | "unix" */
	int private_;      /* unix sockets: private/ (1) or public/ (0) */
	int unpriv;        /* 1: drop to mail_owner; 0: keep root (local) */
	int chroot_;
	int wakeup;        /* seconds between wakeup triggers; 0 none */
	int maxproc;       /* 0 = unlimited */
	char *command;     /* program name in daemon_directory */
	char **args;       /* NULL-terminated, the columns after command */
	int lineno;
};

int mastercf_load(const char *path, int default_maxproc,
    struct master_service **svcs_r, size_t *n_r, char **err_r);
void mastercf_free(struct master_service *svcs, size_t n);

#endif
