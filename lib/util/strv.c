/*
 * strv - NULL-terminated vectors of xmalloc'd strings, and list splitting
 * the way Postfix splits parameter values (commas and/or white space).
 *
 * Invariants: a vector is NULL or ends in a NULL pointer; every element is
 * owned by the vector. strv_split never returns NULL (an empty input gives
 * an empty vector), so callers can iterate without checks.
 * Limits: no quoting; Postfix parameter lists have none either.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/strv.h"

char **
strv_split(const char *s, const char *seps)
{
	char **v = xcalloc(1, sizeof(*v));
	size_t n;

	if (s == NULL)
		return v;
	for (;;) {
		s += strspn(s, seps);
		if (*s == '\0')
			break;
		n = strcspn(s, seps);
		{
			char *field = xstrndup(s, n);

			strv_push(&v, field);
			free(field);
		}
		s += n;
	}
	return v;
}

char **
strv_split_list(const char *s)
{
	return strv_split(s, ", \t\r\n");
}

size_t
strv_len(char *const *v)
{
	size_t n = 0;

	if (v == NULL)
		return 0;
	while (v[n] != NULL)
		n++;
	return n;
}

void
strv_push(char ***v, const char *s)
{
	size_t n = strv_len(*v);

	*v = xreallocarray(*v, n + 2, sizeof(**v));
	(*v)[n] = xstrdup(s);
	(*v)[n + 1] = NULL;
}

void
strv_free(char ***v)
{
	size_t i;

	if (*v == NULL)
		return;
	for (i = 0; (*v)[i] != NULL; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
}

int
strv_contains_ci(char *const *v, const char *s)
{
	return words_contain_ci((const char *const *)v, s);
}

int
words_contain_ci(const char *const *v, const char *s)
{
	size_t i;

	if (v == NULL || s == NULL)
		return 0;
	for (i = 0; v[i] != NULL; i++)
		if (strcasecmp(v[i], s) == 0)
			return 1;
	return 0;
}

char *
str_lower(char *s)
{
	char *p;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

char *
str_trim(char *s)
{
	size_t start = 0, end = strlen(s);

	while (start < end && is_space(s[start]))
		start++;
	while (end > start && is_space(s[end - 1]))
		end--;
	if (start > 0)
		memmove(s, s + start, end - start);
	s[end - start] = '\0';
	return s;
}
