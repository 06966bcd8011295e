/*
 * postern - the administrator's command: start, stop, reload and inspect
 * the mail system, and dispatch to the sub-commands in admin.h.
 *
 *   postern [-c DIR] [-v] start|start-fg|stop|status|reload|check|conf|map|queue|user|mailbox ...
 *   postern --help | --version
 *
 * DIR defaults to $MAIL_CONFIG, then the compiled-in directory. Whether
 * the system runs is decided by the fcntl lock master holds on
 * data_directory/master.pid, never by the file's mere presence, so a stale
 * file after a crash is harmless.
 *
 * Messages go to stderr as Postfix's postfix-script does. Exit codes:
 * 0 success, 1 failure (not running, already running, failed to start),
 * 64 usage, 78 configuration error.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "mail/config.h"
#include "mail/mastercf.h"
#include "admin.h"

#define EX_USAGE_ 64
#define EX_CONFIG_ 78
#define STOP_WAIT_MS 30000

static const char *confdir;
static int verbose;
static int logging;      /* log lines too (the log is not our stderr) */

static void
print_usage(FILE *out)
{
	fprintf(out,
	    "usage: postern [-c config_dir] [-v] command [args...]\n"
	    "       postern --help | --version\n"
	    "commands:\n"
	    "  start      check the configuration and start the mail system\n"
	    "  start-fg   the same, with master in the foreground\n"
	    "  stop       stop the mail system\n"
	    "  status     is the mail system running?\n"
	    "  reload     re-read the configuration\n"
	    "  check      validate the configuration, tables, directories, owners\n"
	    "  queue      list, show, flush, hold, release, delete, requeue mail\n"
	    "  conf       print parameters (-n set, -x expanded, -d defaults),\n"
	    "             or edit postern.conf (-e name=value)\n"
	    "  map        build, query or list lookup tables\n"
	    "  user       add, delete or list users, change passwords\n"
	    "  mailbox    list, status or reindex a user's mailboxes\n"
	    "  sieve      check FILE: compile a Sieve script, errors with line numbers\n"
	    "See postern(1), postern.conf(5) and master.conf(5).\n");
}

static NORETURN void
usage(void)
{
	print_usage(stderr);
	exit(EX_USAGE_);
}

static void PRINTF_LIKE(1, 2)
say(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "postern: %s\n", msg);
	if (logging)
		log_info("%s", msg);
}

static NORETURN void PRINTF_LIKE(2, 3)
die(int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "postern: fatal: %s\n", msg);
	exit(status);
}

/* Load postern.conf (and master.conf too when full); exit 78 on error. */
static void
load_config(int full)
{
	struct master_service *svcs = NULL;
	size_t n = 0;
	char *err = NULL, *path;
	const char *logfile, *name;

	if (config_load(confdir, &err) < 0 || config_check(&err) < 0)
		die(EX_CONFIG_, "%s", err);
	if (full) {
		path = xasprintf("%s/master.conf", confdir);
		if (mastercf_load(path, (int)config_int("default_process_limit"),
		    &svcs, &n, &err) < 0)
			die(EX_CONFIG_, "%s", err);
		mastercf_free(svcs, n);
		free(path);
	}
	logfile = config_get("maillog_file");
	name = config_get("syslog_name");
	if (logfile == NULL)
		logfile = "";
	/* A user who may only read (postern queue list, mailq) cannot write
	 * the mail log: say nothing about it, stderr is enough for them. */
	if (*logfile != '\0' && getuid() != 0 && access(logfile, W_OK) != 0 &&
	    errno != ENOENT)
		return;
	if (strcmp(logfile, "/dev/stderr") != 0 && strcmp(logfile, "-") != 0) {
		char *progname = xasprintf("%s/postern",
		    name != NULL && *name != '\0' ? name : "postern");

		log_open(progname, logfile);
		free(progname);
		logging = 1;
	}
}

static char *
pid_path(void)
{
	const char *d = config_get("data_directory");

	return xasprintf("%s/master.pid", d != NULL && *d != '\0' ? d : "/var/lib/postern");
}

/* The pid of the running master, 0 if none. */
static pid_t
running_pid(void)
{
	char *path = pid_path(), buf[32];
	struct flock fl;
	ssize_t n;
	pid_t pid = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			die(1, "open %s: %s", path, strerror(errno));
		free(path);
		return 0;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) == 0) {
		if (fl.l_type != F_UNLCK)
			pid = fl.l_pid;
	} else {
		/* Cannot ask the kernel: trust the file if that pid lives. */
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			pid = (pid_t)strtol(buf, NULL, 10);
			if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
				pid = 0;
		}
	}
	close(fd);
	free(path);
	return pid;
}

static char *
master_path(void)
{
	const char *d = config_get("daemon_directory");

	if (d == NULL || *d == '\0')
		die(EX_CONFIG_, "daemon_directory is not set");
	return xasprintf("%s/master", d);
}

static char **
master_argv(const char *path, int foreground)
{
	char **argv = xcalloc(8, sizeof(*argv));
	int i = 0;

	argv[i++] = (char *)path;
	argv[i++] = (char *)"-c";
	argv[i++] = (char *)confdir;
	if (foreground)
		argv[i++] = (char *)"-f";
	if (verbose)
		argv[i++] = (char *)"-v";
	argv[i] = NULL;
	return argv;
}

/* start and reload refuse what check calls an error, with its words:
 * otherwise daemons crash-loop on a configuration master accepted. */
static void
refuse_bad_config(const char *what)
{
	if (check_run(0) > 0)
		die(EX_CONFIG_, "not %s the Postern mail system: the configuration "
		    "has errors (postern check lists warnings too)", what);
}

static int
cmd_start(int foreground)
{
	char *path, **argv;
	pid_t pid, w;
	int status;

	refuse_bad_config("starting");
	load_config(1);
	if ((pid = running_pid()) > 0)
		die(1, "the Postern mail system is already running: PID: %d", (int)pid);
	path = master_path();
	if (access(path, X_OK) < 0)
		die(1, "cannot run %s: %s", path, strerror(errno));
	argv = master_argv(path, foreground);
	if (foreground) {
		fflush(NULL);
		execv(path, argv);
		die(1, "exec %s: %s", path, strerror(errno));
	}
	say("starting the Postern mail system");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die(1, "fork: %s", strerror(errno));
	if (pid == 0) {
		execv(path, argv);
		fprintf(stderr, "postern: fatal: exec %s: %s\n", path, strerror(errno));
		_exit(1);
	}
	/* master's first process exits once the daemon is up (or has failed). */
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w < 0)
		die(1, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die(1, "the Postern mail system failed to start");
	if (running_pid() <= 0)
		die(1, "the Postern mail system failed to start: no master process");
	free(argv);
	free(path);
	return 0;
}

static int
cmd_stop(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	pid_t pid;
	int waited;

	load_config(0);
	if ((pid = running_pid()) <= 0)
		die(1, "the Postern mail system is not running");
	say("stopping the Postern mail system");
	if (kill(pid, SIGTERM) < 0)
		die(1, "kill %d: %s", (int)pid, strerror(errno));
	for (waited = 0; waited < STOP_WAIT_MS; waited += 100) {
		if (running_pid() <= 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	die(1, "the master process (PID %d) did not stop within %d s", (int)pid,
	    STOP_WAIT_MS / 1000);
}

static int
cmd_status(void)
{
	pid_t pid;

	load_config(0);
	logging = 0;
	if ((pid = running_pid()) <= 0) {
		say("the Postern mail system is not running");
		return 1;
	}
	say("the Postern mail system is running: PID: %d", (int)pid);
	return 0;
}

static int
cmd_reload(void)
{
	pid_t pid;

	refuse_bad_config("reloading");
	load_config(1);
	if ((pid = running_pid()) <= 0)
		die(1, "the Postern mail system is not running");
	say("refreshing the Postern mail system");
	if (kill(pid, SIGHUP) < 0)
		die(1, "kill %d: %s", (int)pid, strerror(errno));
	return 0;
}

int
main(int argc, char **argv)
{
	const char *cmd;
	int ch;

	log_open("postern/postern", "/dev/stderr");
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		print_usage(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		/* the value postern conf mail_version prints, from the table */
		printf("postern %s\n", config_get("mail_version"));
		return 0;
	}
	while ((ch = getopt(argc, argv, "+c:v")) != -1) {
		switch (ch) {
		case 'c':
			confdir = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	if (verbose)
		log_set_verbose(verbose);
	if (confdir == NULL)
		confdir = getenv("MAIL_CONFIG");
	if (confdir == NULL || *confdir == '\0')
		confdir = config_default_dir();
	/* Sub-commands and the daemons we start find it here too. */
	if (setenv("MAIL_CONFIG", confdir, 1) < 0)
		die(1, "setenv: %s", strerror(errno));
	cmd = argv[optind];
	argc -= optind + 1;
	argv += optind + 1;

	if (strcmp(cmd, "start") == 0 && argc == 0)
		return cmd_start(0);
	if (strcmp(cmd, "start-fg") == 0 && argc == 0)
		return cmd_start(1);
	if (strcmp(cmd, "stop") == 0 && argc == 0)
		return cmd_stop();
	if (strcmp(cmd, "status") == 0 && argc == 0)
		return cmd_status();
	if (strcmp(cmd, "reload") == 0 && argc == 0)
		return cmd_reload();
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc, argv);
	if (strcmp(cmd, "queue") == 0) {
		load_config(0);
		return cmd_queue(argc, argv);
	}
	if (strcmp(cmd, "conf") == 0) {
		load_config(0);
		return cmd_conf(argc, argv);
	}
	if (strcmp(cmd, "map") == 0) {
		load_config(0);
		return cmd_map(argc, argv);
	}
	if (strcmp(cmd, "user") == 0) {
		load_config(0);
		return cmd_user(argc, argv);
	}
	if (strcmp(cmd, "mailbox") == 0) {
		load_config(0);
		return cmd_mailbox(argc, argv);
	}
	if (strcmp(cmd, "sieve") == 0) {
		load_config(0);
		return cmd_sieve(argc, argv);
	}
	usage();
}
