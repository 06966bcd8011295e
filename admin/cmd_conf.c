/*
 * cmd_conf - "postern conf": print parameters the way postconf does.
 *
 *   postern [-c DIR] conf [-n] [-x] [NAME...]
 *
 * -n prints only parameters set in postern.conf; -x expands $names (by
 * default values print as written, like postconf). postern.c has loaded
 * the configuration before calling here. Exit 0; 1 when a NAME is
 * unknown (the others still print); 64 for bad usage.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "admin.h"
#include "mail/config.h"

int
cmd_conf(int argc, char **argv)
{
	int i, only_nondefault = 0, expand = 0, status = 0, names = 0;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			break;
		for (const char *o = argv[i] + 1; *o != '\0'; o++) {
			switch (*o) {
			case 'n':
				only_nondefault = 1;
				break;
			case 'x':
				expand = 1;
				break;
			default:
				fprintf(stderr, "usage: postern conf [-n] [-x] [NAME...]\n");
				return EX_USAGE;
			}
		}
	}
	for (; i < argc; i++) {
		names++;
		if (config_print_one_x(stdout, argv[i], expand) != 0) {
			fprintf(stderr, "postern: warning: %s: unknown parameter\n",
			    argv[i]);
			status = 1;
		}
	}
	if (names == 0)
		config_print_x(stdout, only_nondefault, expand);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "postern: write error\n");
		return EX_IOERR;
	}
	return status;
}
