/*
 * policy - the policy delegation protocol's encoder and reply parser
 * (see policy.h). Trusts nothing in the reply: bounded by the caller's
 * max, every line must be name=value, and the action text is cleaned of
 * control characters before it can reach an SMTP reply or a log line.
 */
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "proto/policy.h"

void
policy_attr(struct buf *b, const char *name, const char *value)
{
	size_t start;

	buf_puts(b, name);
	buf_putc(b, '=');
	start = b->len;
	buf_puts(b, value != NULL ? value : "");
	for (size_t i = start; i < b->len; i++)
		if (b->data[i] == '\n' || b->data[i] == '\r')
			b->data[i] = '?';
	buf_putc(b, '\n');
}

int
policy_reply_parse(const char *p, size_t n, size_t max, char **action_r,
    const char **err_r)
{
	size_t pos = 0;
	const char *action = NULL;
	size_t alen = 0;

	*action_r = NULL;
	*err_r = NULL;
	for (;;) {
		const char *nl = memchr(p + pos, '\n', n - pos);
		if (nl == NULL)
			break;
		size_t len = (size_t)(nl - (p + pos));
		if (len > 0 && p[pos + len - 1] == '\r')
			len--;   /* tolerate CRLF */
		if (len == 0) {
			if (action == NULL) {
				*err_r = "reply without action=";
				return -1;
			}
			char *a = xstrndup(action, alen);
			for (char *c = a; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?';
			*action_r = a;
			return 1;
		}
		const char *eq = memchr(p + pos, '=', len);
		if (eq == NULL) {
			*err_r = "reply line without name=value";
			return -1;
		}
		if (action == NULL && (size_t)(eq - (p + pos)) == 6
		    && memcmp(p + pos, "action", 6) == 0) {
			action = eq + 1;
			alen = len - 7;
		}
		pos += (size_t)(nl - (p + pos)) + 1;
	}
	if (n >= max) {
		*err_r = "reply too long";
		return -1;
	}
	return 0;
}

int
policy_conn_keep(long long nreq, long long request_limit, uint64_t age_ms,
    long long max_ttl_ms)
{
	if (request_limit > 0 && nreq >= request_limit)
		return 0;
	return max_ttl_ms <= 0 || age_ms < (uint64_t)max_ttl_ms;
}

uint64_t
policy_idle_ms(uint64_t age_ms, long long max_idle_ms, long long max_ttl_ms)
{
	uint64_t idle = max_idle_ms > 0 ? (uint64_t)max_idle_ms : 0;

	if (max_ttl_ms > 0) {
		uint64_t left = age_ms < (uint64_t)max_ttl_ms
		    ? (uint64_t)max_ttl_ms - age_ms : 0;
		if (left < idle)
			idle = left;
	}
	return idle;
}

enum policy_retry
policy_retry_decide(int reused, int got_reply, long long tries,
    long long try_limit)
{
	if (reused && !got_reply)
		return POLICY_RETRY_NOW;
	return tries < try_limit ? POLICY_RETRY_LATER : POLICY_GIVE_UP;
}
