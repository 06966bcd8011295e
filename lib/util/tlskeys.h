/*
 * tlskeys - the TLS session-ticket keys that every TLS server process of
 * one master shares, so that a ticket issued by one smtpd (or login)
 * process resumes on any other. Pure: no I/O but the caller's buffers.
 *
 * The keys form a one-way chain over wall-clock epochs of `interval`
 * seconds: secret(e+1) = HMAC-SHA256(secret(e), "chain"), and epoch e's
 * ticket key (16-byte name, AES-256 key, HMAC-SHA256 key) is derived
 * from secret(e). Every holder of secret(e) computes the same keys for
 * e and every later epoch without talking to anyone, and nobody who
 * holds only a later secret can compute an earlier key: a process
 * forgets secret(e) once it moves on, keeping only epoch e-1's key (for
 * tickets issued just before the turn, Postfix tlsmgr's "previous key").
 *
 * master makes secret(now) at random at start and writes it, with the
 * previous epoch's key, to a file only the TLS servers read (tls.c:
 * tls_server_ticket_keys()); see doc/ARCHITECTURE.md.
 *
 * File format, one line (bounded by TLSKEYS_TEXT_MAX):
 *   postern-ticket-keys 1 INTERVAL EPOCH SECRET-HEX PREVKEY-HEX|-
 */
#ifndef POSTERN_TLSKEYS_H
#define POSTERN_TLSKEYS_H

#include <stddef.h>
#include <time.h>

#define TLSKEYS_SECRET_LEN 32
#define TLSKEYS_NAME_LEN 16
#define TLSKEYS_TEXT_MAX 512
#define TLSKEYS_INTERVAL_MAX 8640000   /* 100 days, Postfix's cap */
/* In data_directory (master/tickets.c writes, util/tls.c reads). */
#define TLSKEYS_FILE "tls_ticket_keys"

struct tlskey {
	unsigned char name[TLSKEYS_NAME_LEN];
	unsigned char aes[32];
	unsigned char mac[32];
};

struct tlskeys {
	int interval;                 /* seconds per epoch, > 0 */
	long long epoch;              /* the epoch of secret and cur */
	unsigned char secret[TLSKEYS_SECRET_LEN];
	struct tlskey cur;            /* issues and accepts tickets */
	struct tlskey prev;           /* accepts only (epoch - 1) */
	int have_prev;
};

/* Start a chain at epoch with the given secret; no previous key. */
void tlskeys_init(struct tlskeys *k, const unsigned char *secret, int interval,
    long long epoch);
/* Move to the epoch of `now` (never backwards: a clock stepped back keeps
 * the current key), forgetting the secrets passed. */
void tlskeys_advance(struct tlskeys *k, time_t now);
/* The key named name: cur (*is_prev_r 0) or prev (1), or NULL. */
const struct tlskey *tlskeys_find(const struct tlskeys *k,
    const unsigned char *name, int *is_prev_r);

/* The file line; 0, or -1 if buf is too small. */
int tlskeys_format(const struct tlskeys *k, char *buf, size_t len);
/* Parse text (len bytes, need not be NUL-terminated); 0, or -1 with a
 * static reason in *err_r. */
int tlskeys_parse(const char *text, size_t len, struct tlskeys *k,
    const char **err_r);
/* Overwrite the secrets (before free or exit). */
void tlskeys_wipe(struct tlskeys *k);

#endif
