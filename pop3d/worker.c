/*
 * worker - one post-login process per mailbox owner: receives sessions
 * from the broker on fd 3 (ipc frames with the client's descriptor) and
 * serves them all on one event loop (session.c).
 *
 * Invariants: it never runs as root (checked before anything else); it
 * reads only what the broker sends on fd 3 and the clients' bytes. When
 * the broker goes away (EOF on fd 3) or SIGTERM comes, it takes no new
 * sessions and exits when the last one ends; sessions in progress are
 * not cut (a dropped connection would delete nothing anyway).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/net.h"
#include "mail/config.h"
#include "mail/server_args.h"
#include "pop3d.h"

#define CTL_FD 3
#define CTL_FRAME_MAX (64 * 1024)

struct pop3d_conf pop3d_conf;

static struct loop *wloop;
static int ctl_open = 1;

static void
maybe_exit(void)
{
	if (!ctl_open && session_count() == 0)
		loop_stop(wloop);
}

void
worker_session_gone(void)
{
	maybe_exit();
}

static void
ctl_close(void)
{
	if (!ctl_open)
		return;
	loop_fd_del(wloop, CTL_FD);
	close(CTL_FD);
	ctl_open = 0;
	maybe_exit();
}

static void
ctl_cb(struct loop *l, int fd, unsigned ev, void *ctx)
{
	struct ipc_msg m;
	int cfd = -1;

	ipc_init(&m);
	if (ipc_recv_fd(fd, &m, CTL_FRAME_MAX, &cfd, 5000) < 0) {
		if (errno != EPIPE)
			log_warn("session from the broker");
		ipc_free(&m);
		ctl_close();
		return;
	}
	if (net_set_nonblock(cfd, 1) < 0) {
		log_warn("session socket");
		close(cfd);
	} else {
		session_start(l, &m, cfd);
	}
	ipc_free(&m);
}

static void
sigterm_cb(struct loop *l, void *ctx)
{
	ctl_close();
}

int
worker_main(int argc, char **argv)
{
	struct server_args a;
	char *err = NULL, *progname;
	const char *dir;

	if (getuid() == 0 || geteuid() == 0) {
		log_open("postern/pop3d", "/dev/stderr");
		log_fatalx("worker: refusing to serve mailboxes as root");
	}
	if (server_args_parse(argc, argv, &a, &err) < 0) {
		log_open("postern/pop3d", "/dev/stderr");
		log_fatalx("worker: %s", err);
	}
	dir = a.config_dir != NULL ? a.config_dir : config_default_dir();
	if (config_load(dir, &err) < 0) {
		log_open("postern/pop3d", "/dev/stderr");
		log_fatalx("%s", err);
	}
	for (size_t i = 0; a.overrides != NULL && a.overrides[i] != NULL; i++) {
		char *name = xstrdup(a.overrides[i]);
		char *eq = strchr(name, '=');
		*eq = '\0';
		(void)config_set(name, eq + 1);
		free(name);
	}
	progname = xasprintf("%s/pop3d", config_get("syslog_name"));
	/* The broker opened maillog_file for us as fd 2 (see broker.c). */
	log_open(progname, *config_get("maillog_file") != '\0' ? "/dev/stderr" : "");
	free(progname);
	if (a.verbose > 0)
		log_set_verbose(a.verbose);
	server_args_free(&a);

	pop3d_conf.timeout_ms = (uint64_t)config_time("pop3d_timeout") * 1000;
	if (pop3d_conf.timeout_ms == 0)
		pop3d_conf.timeout_ms = 600 * 1000;
	pop3d_conf.hard_error_limit = (int)config_int("pop3d_hard_error_limit");
	if (pop3d_conf.hard_error_limit < 1)
		pop3d_conf.hard_error_limit = 1;

	signal(SIGPIPE, SIG_IGN);
	wloop = loop_new();
	if (loop_signal(wloop, SIGTERM, sigterm_cb, NULL) < 0)
		log_fatal("SIGTERM handler");
	(void)net_set_cloexec(CTL_FD, 1);
	if (loop_fd_set(wloop, CTL_FD, LOOP_READ, ctl_cb, NULL) < 0)
		log_fatal("control socket");
	if (loop_run(wloop) < 0)
		log_fatal("event loop");
	return 0;
}
