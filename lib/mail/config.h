/*
 * config - postern.conf, read the way Postfix reads main.cf.
 *
 * Syntax: "name = value"; a line starting with white space continues the
 * previous one; '#' at the start of a (trimmed) line is a comment; $name and
 * ${name} expand when a value is read (recursively, with a depth limit),
 * and $$ is a literal $. Known parameters come from one typed table in
 * config.c with their Postfix names and defaults; an unknown name in the file
 * is kept (maps may refer to it) and warned about once. Errors name the file
 * and line: "/etc/postern/postern.conf:12: missing '=' after name".
 *
 * One global configuration per process; daemons read values at init.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdio.h>

enum config_type { CONF_STR, CONF_INT, CONF_TIME, CONF_SIZE, CONF_BOOL };

/* Load DIR/postern.conf (a missing file is an error). 0, or -1 and *err_r. */
int config_load(const char *dir, char **err_r);
/* Override as "-o name=value" does. */
int config_set(const char *name, const char *value);
const char *config_dir(void);

/* Expanded value; "" for a known parameter that is empty; NULL if unknown. */
const char *config_get(const char *name);
long long config_int(const char *name);      /* CONF_INT/CONF_SIZE */
long long config_time(const char *name);     /* seconds; units s m h d w */
int config_bool(const char *name);           /* yes/no/true/false/1/0 */
/* Validate every typed value (ints parse, times have units, bools are
 * bools). 0, or -1 with *err_r naming the parameter. */
int config_check(char **err_r);

/* Print "name = value" lines sorted by name: all known parameters (and
 * unknown ones set in the file), or only non-defaults. */
void config_print(FILE *out, int only_nondefault);
/* Print one parameter; -1 if unknown. */
int config_print_one(FILE *out, const char *name);

/* Parse a duration with optional unit (default_unit 's' etc.). -1 on error. */
long long config_parse_time(const char *s, char default_unit);

#endif
