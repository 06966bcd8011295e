/*
 * cmd_map - "postern map": build and read lookup tables (postmap's job).
 *
 *   postern map build lmdb:/path...      compile /path into /path.lmdb
 *                                        (cidr:, regexp:, pcre:, texthash:
 *                                        and inline: are only checked:
 *                                        they are read directly)
 *   postern map query TYPE:NAME KEY...   print each key's value
 *   postern map list TYPE:NAME           print "key value" lines
 *
 * Exit 0; query 1 when a key is not found; 64 bad usage; 74 (EX_IOERR)
 * for a file that cannot be read or written; 75 (EX_TEMPFAIL) for a failed
 * lookup; 78 (EX_CONFIG) for a syntax error in the source or a bad or
 * unsupported map name. Errors go to stderr with file:line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "admin.h"
#include "mail/maps.h"

static int
usage(void)
{
	fprintf(stderr, "usage: postern map build type:name...\n"
	    "       postern map query type:name key...\n"
	    "       postern map list type:name\n");
	return EX_USAGE;
}

/* An open failure of a file-backed map is I/O, unless the file is there
 * and a text table's line is bad; anything else is config. */
static int
open_status(const char *spec)
{
	static const char *const text[] = { "cidr:", "regexp:", "pcre:",
	    "texthash:" };
	struct stat st;
	size_t i, n;

	if (strncmp(spec, "lmdb:", 5) == 0 && spec[5] != '\0')
		return EX_IOERR;
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		n = strlen(text[i]);
		if (strncmp(spec, text[i], n) == 0 && spec[n] != '\0')
			return stat(spec + n, &st) != 0 ? EX_IOERR : EX_CONFIG;
	}
	return EX_CONFIG;
}

static int
map_cmd_build(int argc, char **argv)
{
	char *err = NULL;
	int i, r, status = 0;

	if (argc < 1)
		return usage();
	for (i = 0; i < argc; i++) {
		r = map_build(argv[i], &err);
		if (r != 0)
			fprintf(stderr, "postern: %s\n", err ? err : "build failed");
		if (r < 0 && status == 0)
			status = r == -2 ? EX_CONFIG : EX_IOERR;
		free(err);
		err = NULL;
	}
	return status;
}

static int
map_cmd_query(int argc, char **argv)
{
	struct map *m;
	char *err = NULL, *value = NULL;
	int i, r, status = 0;

	if (argc < 2)
		return usage();
	m = map_open(argv[0], &err);
	if (m == NULL) {
		fprintf(stderr, "postern: %s\n", err ? err : "open failed");
		free(err);
		return open_status(argv[0]);
	}
	for (i = 1; i < argc; i++) {
		r = map_lookup(m, argv[i], &value);
		if (r == 1)
			printf("%s\n", value);
		else if (r == 0) {
			if (status == 0)
				status = 1;
		} else {
			fprintf(stderr, "postern: %s: lookup of %s failed\n",
			    argv[0], argv[i]);
			status = EX_TEMPFAIL;
		}
		free(value);
		value = NULL;
	}
	map_close(&m);
	if (fflush(stdout) != 0)
		return EX_IOERR;
	return status;
}

static int
map_cmd_list(int argc, char **argv)
{
	char *err = NULL;

	if (argc != 1)
		return usage();
	if (map_list(argv[0], stdout, &err) != 0) {
		fprintf(stderr, "postern: %s\n", err ? err : "list failed");
		free(err);
		return open_status(argv[0]);
	}
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

int
cmd_map(int argc, char **argv)
{
	if (argc < 1)
		return usage();
	if (strcmp(argv[0], "build") == 0)
		return map_cmd_build(argc - 1, argv + 1);
	if (strcmp(argv[0], "query") == 0)
		return map_cmd_query(argc - 1, argv + 1);
	if (strcmp(argv[0], "list") == 0)
		return map_cmd_list(argc - 1, argv + 1);
	return usage();
}
