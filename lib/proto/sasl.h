/*
 * sasl - pure server-side SASL parsers for the PLAIN (RFC 4616) and LOGIN
 * mechanisms, and bounded base64 (RFC 4648) as SMTP AUTH (RFC 4954), IMAP
 * AUTHENTICATE and POP3 AUTH carry it. No I/O and no verification: the
 * result is a set of credentials that the caller hands to the auth daemon.
 *
 * A server exchange: sasl_server_start() with the mechanism name and the
 * initial response (NULL when the client gave none; "=" is an empty one),
 * then sasl_server_step() with each client line while the result is
 * SASL_CONTINUE. A CONTINUE comes with the base64 challenge to send (for
 * SMTP: "334 <challenge>"). A client line "*" cancels.
 *
 * Bounds: authzid and authcid at most SASL_NAME_MAX bytes, the password at
 * most SASL_PASS_MAX; a client line longer than SASL_LINE_MAX base64
 * characters is refused before decoding. Names may not contain NUL or
 * control characters (they end up in logs); the password may hold any
 * byte but NUL. Passwords are wiped from memory when freed.
 */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <stddef.h>
#include "util/buf.h"

#define SASL_NAME_MAX 255
#define SASL_PASS_MAX 1024
/* base64 of the longest PLAIN message: 4 * ceil((2 * 255 + 1024 + 2) / 3) */
#define SASL_LINE_MAX 2048

enum sasl_result {
	SASL_DONE,          /* credentials complete */
	SASL_CONTINUE,      /* send the challenge, feed the next client line */
	SASL_CANCEL,        /* the client sent "*" */
	SASL_ERR_MECH,      /* unknown or unsupported mechanism */
	SASL_ERR_DECODE,    /* not valid base64, or too long */
	SASL_ERR_SYNTAX,    /* decoded, but not a valid message for the mechanism */
};

enum sasl_mech { SASL_MECH_NONE, SASL_MECH_PLAIN, SASL_MECH_LOGIN };

struct sasl_creds {
	char *authzid;      /* "" when not given */
	char *authcid;
	char *passwd;
};

struct sasl_server {
	enum sasl_mech mech;
	int step;                 /* internal */
	struct sasl_creds creds;  /* valid after SASL_DONE; owned */
};

/* The mechanisms offered, "PLAIN LOGIN". */
const char *sasl_mechanisms(void);
/* Postfix's SASL security options (smtpd_sasl_security_options and the
 * like: noanonymous, noplaintext, noactive, nodictionary, mutual_auth,
 * forward_secrecy, separated by spaces or commas): 1 when PLAIN and LOGIN
 * meet them, 0 when they rule both out (they are plaintext mechanisms,
 * open to active and dictionary attacks, without mutual authentication or
 * forward secrecy; never anonymous), -1 with *bad_r (static) for a word
 * that is no option. */
int sasl_plaintext_allowed(const char *options, const char **bad_r);
/* Case-insensitive; SASL_MECH_NONE if unknown. */
enum sasl_mech sasl_mech_lookup(const char *name);
/* Upper-case name, e.g. for "sasl_method=PLAIN". */
const char *sasl_mech_name(enum sasl_mech mech);

void sasl_server_init(struct sasl_server *s);
/* Free credentials (password wiped) and return to the initial state. */
void sasl_server_reset(struct sasl_server *s);
/* mech: the name as the client sent it. initial: the initial response
 * (ilen bytes) or NULL. challenge (reset first) receives the base64 text to
 * send on CONTINUE. *err_r (may be NULL) gets a static reason on errors. */
enum sasl_result sasl_server_start(struct sasl_server *s, const char *mech,
    const char *initial, size_t ilen, struct buf *challenge, const char **err_r);
/* A client line (no terminator) during CONTINUE. */
enum sasl_result sasl_server_step(struct sasl_server *s, const char *line,
    size_t len, struct buf *challenge, const char **err_r);

/* PLAIN message (already decoded): authzid NUL authcid NUL passwd. 0, or -1
 * and *err_r. c is filled only on success. */
int sasl_plain_parse(const char *msg, size_t len, struct sasl_creds *c,
    const char **err_r);
void sasl_creds_free(struct sasl_creds *c);

/* base64, standard alphabet with padding, no white space. Decoding appends
 * to out; -1 on bad syntax (bad character, bad length, misplaced or
 * missing padding, non-zero pad bits) or when the decoded size would
 * exceed max. Encoding appends (fatal only on allocation failure; -1 if
 * out's own max is hit). */
int sasl_b64_decode(const char *in, size_t n, struct buf *out, size_t max);
int sasl_b64_encode(const void *in, size_t n, struct buf *out);

/* Overwrite n bytes with zeros in a way the compiler keeps. */
void sasl_wipe(void *p, size_t n);

#endif
