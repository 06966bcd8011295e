/*
 * sieve - the Sieve mail filtering language (RFC 5228) and the extensions
 * mail clients generate, as a pure compiler and interpreter: bytes in,
 * a list of actions out. No file, socket or clock is touched here; the
 * caller (local/sieve.c, `postern sieve check`) supplies the message, the
 * time, and callbacks for include, duplicate and mailboxexists.
 *
 * Extensions: fileinto, reject, ereject, envelope, encoded-character,
 * comparator-i;ascii-numeric, variables, imap4flags, vacation, copy,
 * body, relational, subaddress, date, index, regex, include, duplicate,
 * mailbox, ihave.
 *
 * Bounds (struct sieve_limits): script size, nesting depth, number of
 * commands, actions, redirects, include depth, variables and their
 * length; a run also stops after SIEVE_STEPS_MAX evaluation steps, so no
 * script can make the interpreter loop or grow without limit.
 *
 * Errors: compile errors carry the line (1-based); a run-time error makes
 * the whole run fail (the caller keeps the message in the INBOX).
 */
#ifndef POSTERN_SIEVE_H
#define POSTERN_SIEVE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIEVE_STEPS_MAX 200000

struct sieve_limits {
	size_t script_max;       /* bytes of source */
	int nest_max;            /* block and test nesting */
	int commands_max;        /* commands + tests in one script */
	int actions_max;         /* actions one run may collect */
	int redirects_max;       /* redirect actions one run may collect */
	int include_max;         /* include nesting */
	int variables_max;       /* distinct variables */
	size_t variable_len_max; /* bytes of one variable's value */
	long vacation_min_days;  /* :days below this is raised to it */
	long vacation_max_days;  /* and above this lowered to it */
	long duplicate_max_seconds;
};
/* Defaults (documented in postern.conf(5) through local_sieve_*). */
void sieve_limits_default(struct sieve_limits *l);

struct sieve_script;

/* The extensions this implementation knows, space-separated, as
 * ManageSieve's SIEVE capability lists them (RFC 5804 section 1.7). */
const char *sieve_extension_list(void);

/* Compile src[0..len). 0 and *s_r, or -1 with *line_r and *err_r (an
 * xmalloc'd message, the caller frees). */
int sieve_compile(const char *src, size_t len, const struct sieve_limits *lim,
    struct sieve_script **s_r, int *line_r, char **err_r);
void sieve_free(struct sieve_script **s);

/* ---- running ---- */

enum sieve_act_type {
	SIEVE_KEEP,
	SIEVE_FILEINTO,
	SIEVE_REDIRECT,
	SIEVE_DISCARD,
	SIEVE_REJECT,
	SIEVE_EREJECT,
	SIEVE_VACATION,
	SIEVE_NOTIFY,            /* RFC 5435 with the mailto method (RFC 5436) */
};

struct sieve_action {
	enum sieve_act_type type;
	char *target;            /* fileinto: mailbox (UTF-8, '/'-separated as
	                          * written); redirect: address; reject: reason;
	                          * vacation: reason (the reply body) */
	char **flags;            /* keep/fileinto: IMAP flags (strv; NULL: none) */
	int create;              /* fileinto :create */
	int copy;                /* redirect/fileinto :copy */
	/* vacation */
	long days;               /* seconds between replies to one sender */
	char *subject, *from, *handle;
	char **addresses;
	int mime;
	/* notify: target is the mailto URI; from above; importance "1".."3";
	 * message may be NULL */
	char *importance, *message;
	int line;                /* where in its script */
};

struct sieve_result {
	struct sieve_action *acts;
	size_t nacts;
	/* RFC 7352: the duplicate ids to record once delivery succeeded
	 * (strv of "handle\0id" hashes as hex text); seconds per entry. */
	char **dup_ids;
	long *dup_secs;
	size_t ndup;
	char *error;             /* run-time error, NULL when the run succeeded */
	int error_line;
};
void sieve_result_free(struct sieve_result *r);

struct sieve_env {
	/* The message: the header block (without the empty line) and the
	 * body; body may be a prefix of the real body (body_truncated). */
	const char *hdr;
	size_t hdrlen;
	const char *body;
	size_t bodylen;
	uint64_t size;           /* the real message size */
	const char *env_from;    /* envelope sender ("" null sender) */
	const char *env_to;      /* envelope recipient (the user) */
	const char *delim;       /* recipient_delimiter characters ("" none) */
	/* environment (RFC 5183): myhostname, mydomain, mail_version; NULL
	 * makes the item unknown */
	const char *host, *domain, *version;
	time_t now;
	long tz_offset;          /* seconds east of UTC for currentdate/date */
	/* include: load the script called name (:global or :personal).
	 * 0 and *s_r, -1 not found, -2 other error; *err_r xmalloc'd. */
	int (*include)(void *ctx, int global, const char *name,
	    struct sieve_script **s_r, char **err_r);
	/* duplicate: was id (hex) recorded within its period? 1 yes, 0 no. */
	int (*duplicate)(void *ctx, const char *id);
	/* mailboxexists: 1 if the folder exists. */
	int (*mailbox_exists)(void *ctx, const char *name);
	void *ctx;
};

/* Run the scripts in order as one execution (Pigeonhole's sieve_before,
 * the user's script, sieve_after): a stop in any ends all, actions and
 * the implicit keep are shared. Fills *res (zeroed by the caller); an
 * implicit keep is returned as a last SIEVE_KEEP action. 0, or -1 with
 * res->error set (res->acts then undefined: keep the message). */
int sieve_run(struct sieve_script *const *scripts, size_t n, const struct sieve_env *env,
    struct sieve_result *res);

/* RFC 5230 and RFC 3834: may a vacation reply go to this message?
 * my_addrs are the user's addresses (the envelope recipient and the
 * :addresses of the action). 1 yes, 0 no with *why_r a static reason. */
int sieve_vacation_allowed(const struct sieve_env *env, const struct sieve_action *a,
    const char *const *my_addrs, const char **why_r);

/* A mailto URI (RFC 6068) as the notify method of RFC 5436: the
 * recipients (the path and the "to" and "cc" fields, %-decoded, each a
 * plain address; "bcc" and other fields are ignored), "subject" and
 * "body" (NULL when absent). 0, or -1 when uri is not a usable mailto
 * (no recipient, a bad address or escape, more than SIEVE_MAILTO_MAX
 * recipients). Any of the outputs may be NULL. */
#define SIEVE_MAILTO_MAX 32
int sieve_mailto_parse(const char *uri, char ***rcpts_r, char **subject_r, char **body_r);

/* A header field's value (first occurrence, unfolded, RFC 2047 decoded),
 * xmalloc'd, or NULL. */
char *sieve_header_get(const char *hdr, size_t len, const char *name);

#endif
