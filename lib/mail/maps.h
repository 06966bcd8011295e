/*
 * maps - lookup tables, named as in Postfix: "type:name".
 *
 *   lmdb:/path          LMDB file /path.lmdb built from text file /path
 *   static:value        every key maps to value
 *   unix:passwd.byname  system users (getpwnam)
 *   cidr:/path          Postfix cidr_table(5), read directly
 *   regexp:/path        Postfix regexp_table(5) (POSIX regcomp)
 *   pcre:/path          Postfix pcre_table(5) (PCRE2)
 *   texthash:/path      "key value" text, read directly (no .lmdb)
 *   inline:{k=v, {k = v w}}  the table in the name itself
 *
 * Text tables (maptab.h) are re-read when their file changes, like lmdb
 * ones are reopened; a bad line makes the table unusable (lookups -1)
 * until fixed. regexp: and pcre: see keys as written (their flags decide
 * about case); cidr: compares address text numerically.
 *
 * Keys of lmdb, texthash and inline tables are folded to lower case when
 * built and when looked up. Readers open
 * LMDB read-only without a lock file (MDB_NOLOCK); builders write a new file
 * and rename it over the old one, so a reader sees the old or the new table,
 * never a mix, and reopens when the file changes.
 *
 * Text format for building (postmap and postalias alike): "key value" or
 * "key: value"; a line starting with white space continues the previous;
 * '#' comments; empty lines ignored. Duplicate keys: the first wins, warned.
 */
#ifndef POSTERN_MAPS_H
#define POSTERN_MAPS_H

#include <stdio.h>

struct map;
struct maplist;

struct map *map_open(const char *spec, char **err_r);
/* 1 found (*value_r xmalloc'd), 0 not found, -1 temporary error. */
int map_lookup(struct map *m, const char *key, char **value_r);
void map_close(struct map **m);

/* A list of maps, "lmdb:/a, lmdb:/b": the first that finds the key wins.
 * An lmdb table whose file does not exist yet does not fail the open: it
 * is warned about once, its lookups return -1 (temporary failure) and
 * each one tries the file again, so building it later fixes it without a
 * restart. A bad spec or an unreadable file still fails. map_open() is
 * strict: a missing file is an error. */
struct maplist *maplist_open(const char *specs, char **err_r);
/* Split a parameter value into its items at commas and white space, as
 * strv_split_list() does, but keeping "inline:{ a=b, {c = d e} }" one
 * item. Free with strv_free(). */
char **map_split_list(const char *s);
int maplist_lookup(struct maplist *ml, const char *key, char **value_r);
/* The tables of a parameter (config_str(param)): NULL with *err_r NULL
 * when it is empty, NULL with *err_r ("param: why") when they cannot be
 * opened. */
struct maplist *maplist_open_param(const char *param, char **err_r);
/* An address as Postfix's address tables take it: the whole address,
 * then "@domain" (from its last '@'). As maplist_lookup(). */
int maplist_lookup_addr(struct maplist *ml, const char *addr, char **value_r);
int maplist_empty(const struct maplist *ml);
void maplist_close(struct maplist **ml);

/* postern map build|list|query */
/* 0 built; -1 I/O or system error; -2 bad spec or syntax error in the
 * source (*err_r names file:line). Building "lmdb:/path" reads /path.
 * 1 for a type read directly (cidr, regexp, pcre, texthash, inline): its
 * source was checked, nothing was written, *err_r says so. */
int map_build(const char *spec, char **err_r);
/* Print "key value" lines. 0, or -1 and *err_r. */
int map_list(const char *spec, FILE *out, char **err_r);

/* Walk every entry (lmdb, texthash, inline; unix:passwd.byname). cb returns 0 to go on,
 * non-zero to stop (map_foreach then returns that). -1 and *err_r on error
 * or for a map type that cannot be listed (static). */
int map_foreach(struct map *m, int (*cb)(const char *key, const char *value,
    void *ctx), void *ctx, char **err_r);
/* Every result a text, inline or static table can give, as written
 * (maptab_foreach_result); 0 without a call for other types. */
int map_foreach_result(struct map *m, int (*cb)(const char *result,
    void *ctx), void *ctx);
/* Reopen the map if its file changed. 1 reopened, 0 unchanged, -1 error. */
int map_refresh(struct map *m);
/* A table of literal keys that map_foreach can walk (lmdb, texthash,
 * inline), not patterns nor a system database. */
int map_has_keys(const struct map *m);
/* Changes whenever the map is reopened onto a new file version. */
unsigned long map_generation(const struct map *m);
const char *map_spec(const struct map *m);
/* The maps of a list, in order (borrowed). */
size_t maplist_count(const struct maplist *ml);
struct map *maplist_get(const struct maplist *ml, size_t i);

#endif
