/*
 * cmd_conf - "postern conf": print and edit parameters the way postconf
 * does.
 *
 *   postern [-c DIR] conf [-n] [-x] [NAME...]
 *   postern [-c DIR] conf -d [NAME...]
 *   postern [-c DIR] conf -e NAME=VALUE...
 *
 * -n prints only parameters set in postern.conf; -x expands $names (by
 * default values print as written, like postconf); -d prints defaults;
 * -e edits postern.conf in place: an existing entry (with its
 * continuation lines) is replaced where it stands, later repeats of it are
 * dropped, a new one is appended; comments and other lines are kept. The
 * file is replaced atomically with its mode kept. postern.c has loaded the
 * configuration before calling here. Exit 0; 1 when a NAME is unknown (the
 * others still print); 64 for bad usage; 73/74 when the file cannot be
 * written.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "admin.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "mail/config.h"

#define CONF_EDIT_MAX (4 * 1024 * 1024)

static int
conf_usage(void)
{
	fprintf(stderr, "usage: postern conf [-n] [-x] [NAME...]\n"
	    "       postern conf -d [NAME...]\n"
	    "       postern conf -e NAME=VALUE...\n");
	return EX_USAGE;
}

/* The parameter name a line of postern.conf starts, in *name_r and *len_r;
 * 0 for comments, blank and continuation lines. */
static int
line_name(const char *line, size_t n, const char **name_r, size_t *len_r)
{
	size_t i = 0;

	if (n == 0 || !(isalnum((unsigned char)line[0]) || line[0] == '_'))
		return 0;
	while (i < n && (isalnum((unsigned char)line[i]) || line[i] == '_'))
		i++;
	*name_r = line;
	*len_r = i;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < n && line[i] == '=';
}

static int
is_continuation(const char *line, size_t n)
{
	size_t i = 0;

	if (n == 0 || (line[0] != ' ' && line[0] != '\t'))
		return 0;
	while (i < n && isspace((unsigned char)line[i]))
		i++;
	return i < n && line[i] != '#';
}

/* Rewrite text with name = value set; appended when not there. */
static void
edit_text(struct buf *out, const char *text, size_t len, const char *name,
    const char *value)
{
	const char *p = text, *end = text + len, *nl, *lname;
	size_t n, lnlen;
	int done = 0, dropping = 0;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (dropping && is_continuation(p, n))
			goto next;
		dropping = 0;
		if (line_name(p, n, &lname, &lnlen) && lnlen == strlen(name) &&
		    memcmp(lname, name, lnlen) == 0) {
			if (!done)
				buf_printf(out, "%s = %s\n", name, value);
			done = 1;
			dropping = 1;
			goto next;
		}
		buf_append(out, p, n);
		buf_putc(out, '\n');
next:
		p = nl != NULL ? nl + 1 : end;
	}
	if (!done)
		buf_printf(out, "%s = %s\n", name, value);
}

static int
conf_edit(int argc, char **argv)
{
	struct buf out = BUF_INIT(0);
	struct stat st;
	char *path = xasprintf("%s/postern.conf", config_dir()), *text = NULL;
	size_t len = 0;
	int i, status = 0;

	if (argc == 0)
		return conf_usage();
	for (i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (eq == NULL || eq == argv[i] || strpbrk(argv[i], "\n\r") != NULL) {
			fprintf(stderr, "postern: bad -e argument \"%s\": expected "
			    "name=value on one line\n", argv[i]);
			free(path);
			return EX_USAGE;
		}
	}
	if (file_read_all(path, CONF_EDIT_MAX, &text, &len) != 0 ||
	    stat(path, &st) != 0) {
		fprintf(stderr, "postern: cannot read %s: %s\n", path, strerror(errno));
		free(path);
		return EX_NOINPUT;
	}
	for (i = 0; i < argc; i++) {
		char *name = xstrdup(argv[i]), *value = strchr(name, '=');
		size_t k;

		*value++ = '\0';
		for (k = strlen(name); k > 0 && isspace((unsigned char)name[k - 1]); k--)
			name[k - 1] = '\0';
		while (isspace((unsigned char)*value))
			value++;
		if (!config_known(name))
			fprintf(stderr, "postern: warning: %s: unknown parameter\n", name);
		buf_reset(&out);
		edit_text(&out, text, len, name, value);
		free(text);
		len = out.len;
		text = buf_steal(&out);
		free(name);
	}
	if (file_write_atomic(path, text, len, st.st_mode & 07777) != 0) {
		fprintf(stderr, "postern: cannot write %s: %s\n", path, strerror(errno));
		status = EX_CANTCREAT;
	}
	free(text);
	free(path);
	return status;
}

int
cmd_conf(int argc, char **argv)
{
	int i, only_nondefault = 0, expand = 0, defaults = 0, edit = 0;
	int status = 0, names = 0;

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
			case 'd':
				defaults = 1;
				break;
			case 'e':
				edit = 1;
				break;
			default:
				return conf_usage();
			}
		}
	}
	if (edit)
		return defaults || only_nondefault || expand ? conf_usage() :
		    conf_edit(argc - i, argv + i);
	if (defaults && (only_nondefault || expand))
		return conf_usage();
	for (; i < argc; i++) {
		names++;
		if (defaults ? config_print_default_one(stdout, argv[i]) != 0 :
		    config_print_one_x(stdout, argv[i], expand) != 0) {
			fprintf(stderr, "postern: warning: %s: unknown parameter\n",
			    argv[i]);
			status = 1;
		}
	}
	if (names == 0) {
		if (defaults)
			config_print_defaults(stdout);
		else
			config_print_x(stdout, only_nondefault, expand);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "postern: write error\n");
		return EX_IOERR;
	}
	return status;
}
