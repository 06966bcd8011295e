/*
 * resolve - what a recipient address means here: which class its domain
 * is in, whether it exists, what virtual_alias_maps rewrites it to, and
 * which transport delivers it. Used by smtpd (RCPT checks, alias rewrite
 * at enqueue), qmgr (routing) and local.
 *
 *   local    domain in mydestination (or no domain): system users and
 *            aliases; transport local_transport (default "local")
 *   virtual  domain in virtual_mailbox_domains; transport
 *            virtual_transport (default "virtual")
 *   relay    anything else; transport default_transport ("smtp"),
 *            nexthop relayhost or the domain
 *
 * Lookups follow Postfix: virtual_alias_maps tries "user@domain", then
 * "@domain" (catch-all); local_recipient_maps tries the local part (with
 * any recipient_delimiter extension removed).
 */
#ifndef POSTERN_RESOLVE_H
#define POSTERN_RESOLVE_H

enum rcpt_class { RCPT_LOCAL, RCPT_VIRTUAL, RCPT_RELAY };

struct resolver;

/* Opens the maps the configuration names. NULL and *err_r on failure. */
struct resolver *resolver_open(char **err_r);
void resolver_close(struct resolver **r);

/* The class of a domain: 0 and *cls, or -1 when a table lookup failed.
 * A failure is never a class: the caller defers (451 / 4.3.0), as a
 * default of "relay" would turn a missing table into a bounce. */
int resolver_class_ex(struct resolver *r, const char *domain,
    enum rcpt_class *cls);
/* 1 known, 0 unknown (550 5.1.1), -1 temporary failure (451 4.3.0). */
int resolver_rcpt_known(struct resolver *r, const char *addr);
/* Recursive virtual_alias_maps expansion (depth 20, 1000 addresses max).
 * 1 and *out_r (strv of final addresses), 0 not an alias, -1 temporary
 * failure, -2 loop or too many (bounce). */
int resolver_virtual_alias(struct resolver *r, const char *addr, char ***out_r);
/* Transport and nexthop; both xmalloc'd. 0, or -1 temporary failure. */
int resolver_route(struct resolver *r, const char *addr, char **transport_r,
    char **nexthop_r);

#endif
