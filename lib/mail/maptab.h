/*
 * maptab - in-memory lookup tables parsed from text, for the map types
 * that need no build step: cidr:, regexp:, pcre:, inline:{...} and
 * texthash:. maps.c owns files, reloads and lists of maps; this module
 * only turns bytes into a table and answers lookups, so it can be driven
 * with bytes (unit tests, fuzzing) and never touches the disk.
 *
 * Semantics are Postfix's (cidr_table(5), regexp_table(5), pcre_table(5),
 * DATABASE_README for inline and texthash):
 *   cidr     "[!]net[/len] result", "if [!]net[/len]" ... "endif"; keys
 *            are address text, compared as binary; first match wins.
 *   regexp   "[!]/re/flags result", "if [!]/re/flags" ... "endif";
 *            POSIX regcomp; flags i (case-insensitive, on by default),
 *            x (extended syntax, on), m (newline-sensitive, off), each
 *            letter toggling; $1..$9, ${n}, $(n) and $$ in results.
 *   pcre     the same with PCRE2; flags i, m, s, x, A, E, U, X.
 *   hash     "key value" lines (texthash) or inline pairs; keys folded
 *            to lower case; duplicates warned, the first wins.
 *
 * Every syntax error is fatal to the whole table and names src:line: a
 * table with a rule skipped could answer differently from what its
 * author wrote, so callers treat it as unusable (lookups fail
 * temporarily) until it is fixed.
 */
#ifndef POSTERN_MAPTAB_H
#define POSTERN_MAPTAB_H

#include <stddef.h>

enum maptab_type { MAPTAB_CIDR, MAPTAB_REGEXP, MAPTAB_PCRE, MAPTAB_HASH };

/* Bounds on untrusted table text. */
#define MAPTAB_LINE_MAX (64 * 1024)       /* one logical line */
#define MAPTAB_RULES_MAX 100000           /* patterns in one table */
#define MAPTAB_NEST_MAX 100               /* if..endif depth */
#define MAPTAB_VALUE_MAX (1024 * 1024)    /* one result or value */

struct maptab;

/* Parse text (len bytes; src names it in errors). NULL and *err_r
 * ("src:line: why") on a syntax error. */
struct maptab *maptab_parse(enum maptab_type t, const char *src,
    const char *text, size_t len, char **err_r);
/* inline:{ key=value, { key = value with spaces } } without the outer
 * braces. */
struct maptab *maptab_parse_inline(const char *src, const char *body,
    char **err_r);
/* 1 found (*value_r xmalloc'd), 0 not found, -1 error (logged). */
int maptab_lookup(const struct maptab *t, const char *key, char **value_r);
/* Hash tables only, in key order; -1 for pattern tables. cb returns
 * non-zero to stop, which maptab_foreach returns. */
int maptab_foreach(const struct maptab *t, int (*cb)(const char *key,
    const char *value, void *ctx), void *ctx);
int maptab_listable(const struct maptab *t);
/* Every result of the table as written (pattern tables: before $n is
 * expanded; hash tables: the values), in order. cb returns non-zero to
 * stop, which this returns. */
int maptab_foreach_result(const struct maptab *t,
    int (*cb)(const char *result, void *ctx), void *ctx);
/* One "key value" (or "key: value") source line, as postmap reads it:
 * key folded to lower case. NULL, or the problem (static text). Modifies
 * line. Shared by texthash: and the lmdb: builder. */
const char *maptab_parse_entry(char *line, char **key_r, char **value_r);
void maptab_free(struct maptab **tp);

#endif
