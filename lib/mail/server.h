/*
 * server - the skeleton every daemon runs under master (Postfix's
 * single_server/multi_server/trigger_server in one).
 *
 * master starts a child as
 *   COMMAND -c CONFDIR -n SERVICE -t TYPE [-p] [-C] [-o name=value]...
 * with fd 3 the status pipe (write end) and fd 4 the listening socket.
 * -p: privileged (master.conf unpriv=n), the child keeps root;
 * -C: chroot to queue_directory. Otherwise, when started as root, the
 * skeleton drops to mail_owner after pre_init. A pre-login service
 * (server_ops.login: pop3-login, imap-login) drops to login_user instead,
 * and -C chroots it to queue_directory/login, which holds nothing but the
 * sockets it needs (server_login_socket()). -l: fd 5 is a second
 * listening socket, the service's one in that login directory (master
 * binds it for the services named in login_sockets); both are served
 * alike. The child writes a
 * struct server_status to fd 3 whenever it turns available or busy, and
 * once with taken=1 when it accepts its first connection (master
 * throttles a service only for children that die before that), and
 * exits, after finishing what it holds, when master is gone (fd 3's
 * reader closed, or a new parent), after max_idle seconds
 * without work (not TRIGGER), or after max_use connections (SINGLE).
 * SIGTERM: stop accepting, let work in progress finish, exit.
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <sys/types.h>
#include "util/loop.h"

#define SERVER_STATUS_FD 3
#define SERVER_LISTEN_FD 4
#define SERVER_LOGIN_FD 5     /* with -l */

struct server_status {
	pid_t pid;
	int avail;      /* 1 ready for more work, 0 busy */
	int taken;      /* 1: this child has accepted work (sent once) */
	int spread;     /* MULTI: processes master should run for the service
	                 * while connections wait, even with one available
	                 * (server_ops.process_count); 0 = only when none is */
	int single;     /* SERVER_SINGLE: one connection per process, so master
	                 * starts one child per waiting connection at once */
};

enum server_kind {
	SERVER_MULTI,   /* event-driven, many connections (smtpd) */
	SERVER_SINGLE,  /* one connection at a time, served synchronously (local) */
	SERVER_TRIGGER, /* resident, connections are wake-up triggers (qmgr) */
};

struct server_ops {
	enum server_kind kind;
	const char *name;                    /* "smtpd": log as postern/smtpd */
	/* A pre-login process: runs as login_user, -C means chroot to the
	 * login directory. It reaches other services only through
	 * server_login_socket(). */
	int login;
	void (*pre_init)(void);              /* still root if started as root */
	void (*post_init)(struct loop *l);   /* after dropping privileges */
	/* MULTI, TRIGGER: fd is non-blocking; call server_disconnect() when done. */
	void (*conn)(struct loop *l, int fd);
	/* SINGLE: fd is blocking; the skeleton closes it after return. */
	void (*serve)(int fd);
	/* SIGTERM received: stop new work; MULTI sessions keep running. */
	void (*drain)(struct loop *l);
	/* Optional: nonzero while the service has work of its own in
	 * progress (qmgr's deliveries). After a drain, or an idle/max_use
	 * exit, the skeleton stops only when no connection is open and this
	 * says 0; the service calls server_exit_when_idle() when its work
	 * ends so the skeleton looks again. */
	int (*busy)(void);
	/* The service takes words after its options, as master.conf gives
	 * them (spawn: "user=nobody argv=/usr/bin/policyd-spf"); see
	 * server_operands(). Others refuse them. */
	int operands;
	/* Optional (MULTI): the parameter naming how many processes of the
	 * service master starts on demand before any is full (smtpd:
	 * "smtpd_process_count"), so that one process's loop is not the
	 * limit when there is work for several CPUs. Reported to master in
	 * every status record; maxproc still caps it. */
	const char *process_count;
};

int server_main(int argc, char **argv, const struct server_ops *ops);
/* MULTI/TRIGGER: a connection ended; closes fd, updates availability. */
void server_disconnect(struct loop *l, int fd);
const char *server_service_name(void);
/* The words after the options (server_ops.operands), NULL-terminated;
 * never NULL. */
char *const *server_operands(void);
/* The path of service's socket in the login directory ("/pop3d" inside
 * the login chroot, else queue_directory/login/pop3d). xmalloc'd. */
char *server_login_socket(const char *service);
/* pre_init of a TLS server: share master's session-ticket keys
 * (data_directory/tls_ticket_keys, util/tlskeys.h) so any process of the
 * service resumes any other's ticket. A missing or untrustworthy file is
 * logged; tickets then resume only on the process that issued them. */
struct tls_ctx;
void server_tls_ticket_keys(struct tls_ctx *ctx);
int server_privileged(void);         /* started as root and kept root (-p) */
int server_clients(void);            /* open connections (MULTI) */
/* net_peer_addr() of a connection, from what accept returned while the
 * service's conn() runs for it (one getpeername() less per client). */
int server_peer_addr(int fd, char *addr, size_t addrlen, int *port);
/* The loop's exit: after drain, when no connection is left, the skeleton
 * stops; services with their own work call this when they are done. */
void server_exit_when_idle(void);
/* Is master gone (new parent, or the status pipe has no reader)? If so,
 * the drain begins now (as on SIGTERM) rather than at the next periodic
 * check: a service that sees its peers vanish asks before it acts. */
int server_master_gone(void);
/* A SINGLE service about to take another request on the connection it
 * serves: counts it as a use (max_use counts requests, not connections)
 * and says 0 when the process has had its uses or is to stop, so the
 * connection ends with this request. */
int server_use_another(void);

/* Wake a service listening on <qdir>/private/<service>: connect, write
 * bytes ("I" new mail, "D" deferred scan, "F" flush), close. Never blocks
 * longer than a second; failure is logged at debug level only. */
int trigger_send(const char *service, const char *bytes);
/* The same over one connection kept open between calls (for one service
 * per process), for a process that wakes the service per message. */
int trigger_keep(const char *service, const char *bytes);

#endif
