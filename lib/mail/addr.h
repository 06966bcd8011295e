/*
 * addr - RFC 5321/5322 addresses.
 *
 * An address here is the mailbox string inside the angle brackets of a
 * reverse- or forward-path: "local@domain", or "" for the null sender.
 * Quoted local parts are kept as written ("\"a b\"@x"). Domain literals
 * ([127.0.0.1]) are accepted. With utf8 (SMTPUTF8), non-ASCII UTF-8 is
 * allowed in the local part and the domain.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stddef.h>

#define ADDR_MAX 512          /* > RFC 5321 path limit of 256 */

/* addr_parse_path flags. */
#define ADDR_UTF8    1u   /* SMTPUTF8: UTF-8 in the local part and domain */
#define ADDR_BARE_OK 2u   /* also a mailbox without <...> (strict_rfc821_envelopes = no) */

/* Parse a path "<...>" at s (the text after "FROM:"/"TO:" and optional
 * spaces), or with ADDR_BARE_OK also a bare mailbox that ends at a space
 * or at the end. Accepts and discards an RFC 5321 source route
 * (<@a,@b:u@d>). On success *addr_r is an xmalloc'd mailbox ("" for <>),
 * *end_r points after '>' (after the bare mailbox). Returns 0, or -1 with
 * *err_r a static text for a 501 reply that starts with an enhanced status
 * code ("5.1.3 Bad address syntax"). A local part without a domain
 * ("<postmaster>") is accepted: the caller decides (RFC 5321 requires
 * RCPT TO:<Postmaster>; MAIL FROM should not take it). Limits: path 256
 * octets, local part 64, domain 255, label 63. */
int addr_parse_path(const char *s, unsigned flags, char **addr_r, const char **end_r,
    const char **err_r);
/* Validate a bare mailbox "local@domain" (no brackets). 0 ok, -1 bad. */
int addr_valid(const char *addr, int utf8);
/* A domain name or an address literal ("[192.0.2.1]", "[IPv6:...]"). */
int addr_valid_domain(const char *domain, int utf8);

/* Split at the last '@' outside quotes: *local_r and *domain_r xmalloc'd;
 * an address without '@' gets domain "". */
void addr_split(const char *addr, char **local_r, char **domain_r);
/* addr with "@origin" added when it has no domain (an '@' outside a
 * quoted local part); xmalloc'd. Nothing is validated. */
char *addr_qualify(const char *addr, const char *origin);
/* Copy with the domain folded to lower case (local part kept). */
char *addr_fold_domain(const char *addr);
/* Local part without quotes, lower-cased, for lookups; strips an extension
 * after delim ("user+ext" -> "user") when delim is non-empty. delim is a set
 * of characters (Postfix recipient_delimiter): the first one present
 * starts the extension, unless it is the first character. */
char *addr_lookup_key(const char *local, const char *delim);

#endif
