/*
 * master - internal interfaces of the supervisor daemon.
 *
 * master.c owns the process: options, configuration snapshot, pid file,
 * signals, reload and stop. service.c owns the service table: listening
 * sockets, status pipes, children, spawn policy, throttling and wake-ups.
 */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <stddef.h>
#include <sys/types.h>

#include "util/loop.h"
#include "mail/mastercf.h"

/* What master uses from postern.conf, copied so a failed reload (which may
 * leave the global configuration half-read) cannot change it. */
struct master_conf {
	char *config_dir;      /* absolute */
	char *queue_dir;
	char *data_dir;
	char *daemon_dir;
	char *mail_owner;
	char *syslog_name;
	char *maillog_file;    /* "" = syslog */
	int default_maxproc;
	int root;              /* running as root: children drop to owner */
	uid_t owner_uid;       /* valid when root */
	gid_t owner_gid;
	char *login_user;
	char **login_sockets;  /* unix services also bound in the login directory */
	gid_t login_gid;       /* login_user's group; valid when root and login_ok */
	int login_ok;          /* login_user exists (or not root) */
	int foreground;
	int verbose;
};

extern struct master_conf mconf;

/* tickets.c: (re)make the shared TLS ticket keys (start, and reload if
 * smtpd_tls_session_cache_timeout changed). */
void tickets_start(struct loop *l);
/* At exit: remove the key file, wipe the secret. */
void tickets_stop(void);

/* service.c */
void services_init(struct loop *l);
/* Start the first table. A listener that cannot be bound makes this return
 * -1 with *err_r (start-up is fatal); on reload the service is skipped. */
int services_start(struct master_service *svcs, size_t n, char **err_r);
/* Replace the table: removed or changed services lose their listener and
 * their children get SIGTERM; unchanged ones keep the listener while their
 * children are retired (SIGTERM) so the new configuration takes effect. */
void services_reload(struct master_service *svcs, size_t n);
/* Close every listener, cancel timers, SIGTERM every child. */
void services_stop(void);
void services_kill(int sig);
int services_children(void);
void services_reap(void);
/* Called by services_reap() when stopping and the last child is gone. */
void master_children_gone(void);
int master_stopping(void);

/* Resolve an inet listener name ("smtp", "127.0.0.1:2525", "[::1]:smtp",
 * "*:25") into what net_listen_inet() takes, with a numeric port; a name
 * without an address listens where inet_interfaces says.
 * xmalloc'd, or NULL and *err_r. */
char *service_inet_addr(const char *name, char **err_r);

#endif
