/*
 * server_args - the command line master gives every child (see server.h):
 *
 *   COMMAND -c CONFDIR -n SERVICE -t TYPE [-p] [-C] [-l] [-v]... [-o name=value]...
 *
 * Kept apart from the skeleton so that it can be tested without sockets.
 * An option value may be attached ("-cDIR") or the next word. Anything
 * else (unknown option, missing value, "-o" without '=', a stray operand)
 * is an error; the skeleton makes it fatal.
 */
#ifndef POSTERN_SERVER_ARGS_H
#define POSTERN_SERVER_ARGS_H

struct server_args {
	const char *config_dir;   /* -c; NULL if not given (borrowed from argv) */
	const char *service;      /* -n; NULL if not given */
	const char *type;         /* -t: "inet" or "unix"; NULL if not given */
	int privileged;           /* -p */
	int chroot_;              /* -C */
	int login_listener;       /* -l: fd 5 is a second listener (login/NAME) */
	int verbose;              /* number of -v */
	char **overrides;         /* -o values "name=value", strv (owned) */
	char **operands;          /* with operands_ok: the first word that is
	                           * not an option and all after it (owned) */
};

/* 0, or -1 and *err_r (xmalloc'd, caller frees). Free with
 * server_args_free() in both cases. */
int server_args_parse(int argc, char **argv, struct server_args *a, char **err_r);
/* The same, but with operands_ok a word that is not an option ends the
 * options and it and the rest are kept in a->operands (spawn's
 * "user=nobody argv=/usr/bin/policyd-spf"). */
int server_args_parse_ex(int argc, char **argv, int operands_ok,
    struct server_args *a, char **err_r);
void server_args_free(struct server_args *a);

#endif
