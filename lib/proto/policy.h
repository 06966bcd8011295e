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

/*
 * The client's connection rules (smtpd/policy.c applies them; kept here,
 * pure, so that they are unit-tested). A connection carries one request
 * at a time and is reused while it is young and has served fewer than
 * request_limit requests (Postfix's smtpd_policy_service_max_ttl and
 * _request_limit).
 */
#include <stdint.h>

/* After a reply on a connection of age age_ms that has now served nreq
 * requests: 1 keep it for the next request, 0 close it. request_limit 0
 * means no limit. */
int policy_conn_keep(long long nreq, long long request_limit, uint64_t age_ms,
    long long max_ttl_ms);
/* How long an idle connection waits for its next request before it is
 * closed: max_idle, or less when max_ttl ends sooner (0: close now). */
uint64_t policy_idle_ms(uint64_t age_ms, long long max_idle_ms,
    long long max_ttl_ms);

/* What to do after an attempt failed (no reply, an error, a timeout).
 * A connection that was idle and reused, and failed before any byte of
 * a reply came, was most likely closed by the server while idle: it is
 * retried at once on a new connection and does not count as a try.
 * Otherwise tries (attempts made so far, this one included) is compared
 * with try_limit: another try after retry_delay, or give up. */
enum policy_retry { POLICY_RETRY_NOW, POLICY_RETRY_LATER, POLICY_GIVE_UP };
enum policy_retry policy_retry_decide(int reused, int got_reply, long long tries,
    long long try_limit);

#endif
