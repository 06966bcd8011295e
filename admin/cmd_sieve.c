/*
 * cmd_sieve - `postern sieve check FILE...`: compile Sieve scripts the
 * way local(8) will at delivery (the same limits from postern.conf) and
 * print each error as "FILE:LINE: message". Exit 0 when every script
 * compiles, EX_DATAERR when one does not, EX_NOINPUT when one cannot be
 * read. Runs as the caller; reads only the named files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "util/fsutil.h"
#include "mail/config.h"
#include "sieve/sieve.h"
#include "admin.h"

int
cmd_sieve(int argc, char **argv)
{
	struct sieve_limits lim;
	int status = 0;

	if (argc < 2 || strcmp(argv[0], "check") != 0) {
		fprintf(stderr, "usage: postern sieve check FILE...\n");
		return EX_USAGE;
	}
	sieve_limits_default(&lim);
	lim.script_max = (size_t)config_int("local_sieve_max_script_size");
	lim.actions_max = (int)config_int("local_sieve_max_actions");
	lim.redirects_max = (int)config_int("local_sieve_max_redirects");
	for (int i = 1; i < argc; i++) {
		struct sieve_script *s = NULL;
		char *data = NULL, *err = NULL;
		size_t len;
		int line;

		/* read a little past the limit so "too large" is reported */
		if (file_read_all(argv[i], lim.script_max + 1, &data, &len) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], errno == EFBIG || errno == ENOBUFS ?
			    "script too large" : strerror(errno));
			if (status == 0)
				status = errno == EFBIG || errno == ENOBUFS ? EX_DATAERR : EX_NOINPUT;
			continue;
		}
		if (sieve_compile(data, len, &lim, &s, &line, &err) < 0) {
			if (line > 0)
				fprintf(stderr, "%s:%d: %s\n", argv[i], line, err);
			else
				fprintf(stderr, "%s: %s\n", argv[i], err);
			status = EX_DATAERR;
			free(err);
		} else if (argc > 2)
			printf("%s: ok\n", argv[i]);
		sieve_free(&s);
		free(data);
	}
	return status;
}
