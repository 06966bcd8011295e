/*
 * policy - Postfix's policy delegation protocol (SMTPD_POLICY_README), as
 * pure functions: encoding request attributes and parsing the reply.
 *
 * A request is "name=value" lines ended by an empty line; the reply is
 * the same, and carries "action=<access(5) action>". The service is
 * another process: its bytes are bounded (max) and checked here, so the
 * parser can be fuzzed without sockets (fuzz/fuzz_policy.c).
 */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H

#include <stddef.h>

struct buf;

/* Append "name=value\n"; CR and LF in value become '?' (a value can
 * never end the request early). */
void policy_attr(struct buf *b, const char *name, const char *value);

/* Parse a reply from the start of the service's bytes p[0..n). Returns 1
 * with *action_r (xmalloc'd: the first action= value, control characters
 * made '?'), 0 when the empty line has not come yet and n < max, -1 with
 * *err_r (static text) for a reply over max bytes, a line without '=',
 * or no action=. */
int policy_reply_parse(const char *p, size_t n, size_t max, char **action_r,
    const char **err_r);

#endif
