/*
 * strv - NULL-terminated vectors of xmalloc'd strings; list splitting as
 * Postfix does for parameter values (commas and/or white space).
 */
#ifndef POSTERN_STRV_H
#define POSTERN_STRV_H

#include <stddef.h>

char **strv_split(const char *s, const char *seps);  /* empty fields dropped */
char **strv_split_list(const char *s);               /* seps ", \t\r\n" */
size_t strv_len(char *const *v);
void strv_push(char ***v, const char *s);            /* copies s */
void strv_free(char ***v);
int strv_contains_ci(char *const *v, const char *s);
/* The same for a constant word list (a static table of names). */
int words_contain_ci(const char *const *v, const char *s);
/* Lower-case ASCII in place; returns s. */
char *str_lower(char *s);
/* Trim ASCII white space at both ends, in place; returns s. */
char *str_trim(char *s);

#endif
