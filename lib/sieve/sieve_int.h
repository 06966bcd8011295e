/*
 * sieve_int - the compiled form shared by parse.c (builds it), run.c
 * (walks it) and msg.c (message helpers). Not for callers.
 */
#ifndef POSTERN_SIEVE_INT_H
#define POSTERN_SIEVE_INT_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include "sieve/sieve.h"

/* Extensions, as bits of a script's require set. */
enum {
	EXT_FILEINTO = 1u << 0, EXT_REJECT = 1u << 1, EXT_ENVELOPE = 1u << 2,
	EXT_ENCODED = 1u << 3, EXT_NUMERIC = 1u << 4, EXT_VARIABLES = 1u << 5,
	EXT_IMAP4FLAGS = 1u << 6, EXT_VACATION = 1u << 7, EXT_COPY = 1u << 8,
	EXT_BODY = 1u << 9, EXT_RELATIONAL = 1u << 10, EXT_SUBADDRESS = 1u << 11,
	EXT_DATE = 1u << 12, EXT_INDEX = 1u << 13, EXT_REGEX = 1u << 14,
	EXT_INCLUDE = 1u << 15, EXT_DUPLICATE = 1u << 16, EXT_MAILBOX = 1u << 17,
	EXT_IHAVE = 1u << 18, EXT_EREJECT = 1u << 19, EXT_OCTET = 1u << 20,
	EXT_CASEMAP = 1u << 21, EXT_VACATION_SECONDS = 1u << 22,
	EXT_ENVIRONMENT = 1u << 23, EXT_ENOTIFY = 1u << 24,
};
/* Looks an extension name up: its bit, or 0 when unknown. */
unsigned sv_ext_bit(const char *name);

enum sv_argtype { ARG_NUM, ARG_STR, ARG_LIST };

/* A string or string list: one or more strings, each kept as written
 * (escapes resolved) with a flag saying whether it holds "${" (so a run
 * without variables expands nothing). */
struct sv_strs {
	char **v;
	size_t n;
	int is_list;
};

struct sv_arg {
	enum sv_argtype type;
	uint64_t num;
	struct sv_strs s;
	int line;
};

enum sv_match { M_IS, M_CONTAINS, M_MATCHES, M_REGEX, M_VALUE, M_COUNT };
enum sv_rel { R_GT, R_GE, R_LT, R_LE, R_EQ, R_NE };
enum sv_cmp { C_OCTET, C_CASEMAP, C_NUMERIC };
enum sv_part { P_ALL, P_LOCAL, P_DOMAIN, P_USER, P_DETAIL };
enum sv_xform { X_TEXT, X_RAW, X_CONTENT };

/* Everything tagged arguments can say, for any command or test. */
struct sv_opts {
	enum sv_match match;
	enum sv_rel rel;
	enum sv_cmp cmp;
	enum sv_part part;
	enum sv_xform xform;
	struct sv_strs content_types;
	int index;              /* 0: none */
	int last;
	int over, under;        /* size */
	char *zone;             /* date :zone, NULL */
	int originalzone;
	struct sv_strs flags;   /* :flags */
	int has_flags;
	int copy, create, mime;
	long days;              /* -1 unset */
	long seconds;           /* -1 unset (duplicate :seconds) */
	char *subject, *from, *handle, *header, *uniqueid;
	char *importance, *message;     /* notify */
	struct sv_strs options;         /* notify :options (checked, unused) */
	struct sv_strs addresses;
	int global, once, optional;
	unsigned modifiers;     /* set */
	int regex_compiled;     /* keys compiled once when constant */
	regex_t *rx;
	size_t nrx;
};

struct sv_node {
	int kind;               /* the op (parse.c table index) */
	int is_test;
	int line;
	struct sv_opts o;
	struct sv_arg *args;    /* positional */
	size_t nargs;
	struct sv_node **tests; /* a command's test, a test's tests */
	size_t ntests;
	struct sv_node **block; /* if/elsif/else */
	size_t nblock;
};

struct sieve_script {
	unsigned exts;          /* required */
	struct sv_node **cmds;
	size_t ncmds;
	struct sieve_limits lim;
};

/* Operation kinds. */
enum sv_op {
	OP_REQUIRE, OP_IF, OP_ELSIF, OP_ELSE, OP_STOP, OP_KEEP, OP_DISCARD,
	OP_REDIRECT, OP_FILEINTO, OP_REJECT, OP_EREJECT, OP_VACATION, OP_SETFLAG,
	OP_ADDFLAG, OP_REMOVEFLAG, OP_SET, OP_INCLUDE, OP_RETURN, OP_GLOBAL,
	OP_ERROR, OP_NOTIFY,
	/* tests */
	OP_ADDRESS, OP_HEADER, OP_ENVELOPE, OP_EXISTS, OP_SIZE, OP_ALLOF,
	OP_ANYOF, OP_NOT, OP_TRUE, OP_FALSE, OP_BODY, OP_STRING, OP_HASFLAG,
	OP_MAILBOXEXISTS, OP_DATE, OP_CURRENTDATE, OP_IHAVE, OP_DUPLICATE,
	OP_ENVIRONMENT, OP_VALID_NOTIFY, OP_NOTIFY_CAP,
	OP_COUNT_
};

/* set modifiers (RFC 5229 4.1), applied highest precedence first */
#define MOD_LENGTH 0x01u
#define MOD_QUOTEWILDCARD 0x02u
#define MOD_LOWER 0x04u
#define MOD_UPPER 0x08u
#define MOD_LOWERFIRST 0x10u
#define MOD_UPPERFIRST 0x20u
#define MOD_ENCODEURL 0x40u      /* RFC 5435 7: precedence 15 */

/* ---- msg.c: message helpers ---- */
/* Every value of header name (index 1 = first), unfolded and RFC 2047
 * decoded, appended to *v (strv). */
void sv_header_values(const char *hdr, size_t len, const char *name, char ***v);
/* The addresses in a header value (strv of addr-specs, "" for a group
 * marker is not included). */
void sv_addr_list(const char *value, char ***out);
/* The part of an address; NULL when the part does not exist (no detail). */
char *sv_addr_part(const char *addr, enum sv_part part, const char *delim);
/* RFC 2822 date text -> time and its zone offset (seconds). 0 or -1. */
int sv_parse_date(const char *s, time_t *t_r, long *off_r);
/* A date part of t at zone offset off (RFC 5260 2.3), xmalloc'd, or NULL
 * for an unknown part name. */
char *sv_date_part(time_t t, long off, const char *part);
/* Zone "+hhmm"/"-hhmm" -> seconds; 0 or -1. */
int sv_zone_parse(const char *z, long *off_r);
/* A plain address (local@domain, nothing a header or the queue would
 * read as syntax): redirect targets and mailto recipients. */
int sv_addr_ok(const char *a);

#endif
