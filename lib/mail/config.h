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
#include "util/buf.h"

enum config_type { CONF_STR, CONF_INT, CONF_TIME, CONF_SIZE, CONF_BOOL };

/* Load DIR/postern.conf (a missing file is an error). 0, or -1 and *err_r. */
int config_load(const char *dir, char **err_r);
/* Override as "-o name=value" does. */
int config_set(const char *name, const char *value);
const char *config_dir(void);
/* The compiled-in configuration directory (POSTERN_SYSCONFDIR), used when
 * neither -c nor $MAIL_CONFIG names one. (lib/mail/paths.c) */
const char *config_default_dir(void);

/* Expanded value; "" for a known parameter that is empty; NULL if unknown. */
const char *config_get(const char *name);
/* The value of a parameter of the table (its default when unset); a
 * name not in the table is a bug (panic). Daemons use this, never a
 * fallback of their own. */
const char *config_str(const char *name);
/* Do <side>_sasl_security_options (tls: <side>_sasl_tls_security_options)
 * allow plaintext mechanisms, PLAIN and LOGIN? side is "smtpd" or "smtp";
 * a value config_check() would refuse is fatal. */
int config_sasl_plaintext(const char *side, int tls);
/* config_str() in the shape of a lookup callback (tls_settings_get()). */
const char *config_param(const char *name, const void *unused);
long long config_int(const char *name);      /* CONF_INT/CONF_SIZE */
long long config_time(const char *name);     /* seconds; units s m h d w */
int config_bool(const char *name);           /* yes/no/true/false/1/0 */
/* For names the table may lack (per-transport names built at run time,
 * parameters of new daemons): the value, or def when unset or empty, or
 * when it is not a number in [min, max] / not a duration (logged, never
 * fatal). Times use the table's default unit for a known name, else
 * unit. */
long long config_int_or(const char *name, long long def, long long min,
    long long max);
long long config_time_or(const char *name, long long def, char unit);
long long config_int_range(const char *name, long long min, long long max);
/* Validate every typed value (ints parse, times have units, bools are
 * bools). 0, or -1 with *err_r naming the parameter. */
int config_check(char **err_r);
/* Would name = value pass config_check (as a master.conf "-o name=value"
 * override, expanded in this configuration)? 0, or -1 and *err_r; an
 * unknown name is an error. The configuration is left as it was. */
int config_check_value(const char *name, const char *value, char **err_r);

/* Print "name = value" lines sorted by name: all known parameters (and
 * unknown ones set in the file), or only non-defaults. */
void config_print(FILE *out, int only_nondefault);
/* Print every known parameter with its default, sorted (postconf -d). */
void config_print_defaults(FILE *out);
/* One default; -1 if name is not in the table. */
int config_print_default_one(FILE *out, const char *name);
/* Is name in the parameter table? */
int config_known(const char *name);
/* Print one parameter; -1 if unknown. */
int config_print_one(FILE *out, const char *name);

/* Parse a duration with optional unit (default_unit 's' etc.). -1 on error. */
long long config_parse_time(const char *s, char default_unit);

/* Like config_get, but the value as written (no $name expansion). */
const char *config_get_raw(const char *name);
/* Is name set in the file or by config_set (not a default)? */
int config_is_set(const char *name);
/* config_print/config_print_one with a choice: raw values as written (as
 * postconf prints them) or expanded (postconf -x). */
void config_print_x(FILE *out, int only_nondefault, int expand);
int config_print_one_x(FILE *out, const char *name, int expand);

/*
 * Logical lines, shared by the readers of postern.conf, master.conf and
 * map sources: a line starting with white space continues the previous
 * logical line (joined with one space); empty lines and lines whose first
 * non-blank character is '#' are skipped and do not end a logical line;
 * trailing white space and CR are dropped. The reader borrows text.
 */
struct lline {
	const char *p;
	const char *end;
	int lineno;          /* physical lines consumed so far */
	size_t max;          /* longest logical line; lline_init sets 1 MiB */
};
void lline_init(struct lline *ll, const char *text, size_t len);
/* 1 and the logical line in *out (reset first) with *lineno_r its first
 * physical line; 0 at the end; -1 with *lineno_r and *why_r (static) for a
 * continuation with nothing to continue, a NUL byte or an overlong line. */
int lline_next(struct lline *ll, struct buf *out, int *lineno_r,
    const char **why_r);

#endif
