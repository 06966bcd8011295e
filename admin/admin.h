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

#endif
