/*
 * restrict - Postfix's smtpd access restrictions, evaluated without I/O
 * of its own (see restrict.h for the contract and the re-run model).
 *
 * Invariants:
 * - An entry that is not known, or lacks its argument, is a parse error:
 *   a list is never half-understood (restrict_parse).
 * - Evaluation has no side effect before RESTRICT_DONE: warnings, HOLD,
 *   DISCARD and PREPEND are returned as events, so a re-run after an
 *   answer arrived does not log or act twice.
 * - An access or policy action Postern does not know (FILTER, REDIRECT,
 *   a restriction name as a result) answers 451 4.3.5 and is logged,
 *   never ignored (Postfix does the same for unknown actions).
 * Trusts: nothing in access values, policy replies or DNS answers: texts
 * are bounded (RESTRICT_TEXT_MAX) and stripped of control characters
 * before they reach a reply.
 * BUGS: a restriction name as an access result (Postfix's restriction
 * classes) is not supported; smtpd_restriction_classes is refused by
 * postern check.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/net.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/restrict.h"
#include "proto/policy.h"
#include "proto/smtp.h"

const char *const restrict_param[RS_STAGES] = {
	[RS_CLIENT] = "smtpd_client_restrictions",
	[RS_HELO] = "smtpd_helo_restrictions",
	[RS_SENDER] = "smtpd_sender_restrictions",
	[RS_RELAY] = "smtpd_relay_restrictions",
	[RS_RECIPIENT] = "smtpd_recipient_restrictions",
	[RS_DATA] = "smtpd_data_restrictions",
	[RS_EOD] = "smtpd_end_of_data_restrictions",
};

enum kind {
	K_PERMIT, K_REJECT, K_DEFER, K_WARN_IF_REJECT,
	K_PERMIT_MYNETWORKS, K_PERMIT_SASL,
	K_REJECT_UNAUTH_DEST, K_DEFER_UNAUTH_DEST, K_REJECT_UNAUTH_PIPELINING,
	K_REJECT_INVALID_HELO, K_REJECT_NON_FQDN_HELO, K_REJECT_UNKNOWN_HELO,
	K_REJECT_NON_FQDN_SENDER, K_REJECT_NON_FQDN_RCPT,
	K_REJECT_UNKNOWN_SENDER_DOMAIN, K_REJECT_UNKNOWN_RCPT_DOMAIN,
	K_REJECT_UNLISTED_RCPT, K_REJECT_UNLISTED_SENDER,
	K_REJECT_UNKNOWN_CLIENT, K_REJECT_UNKNOWN_REVERSE,
	K_RBL_CLIENT, K_RHSBL_CLIENT, K_RHSBL_SENDER, K_DNSWL_CLIENT,
	K_CLIENT_ACCESS, K_HELO_ACCESS, K_SENDER_ACCESS, K_RCPT_ACCESS,
	K_POLICY,
	K_SENDER_LOGIN_MISMATCH, K_AUTH_SENDER_LOGIN_MISMATCH,
	K_UNAUTH_SENDER_LOGIN_MISMATCH, K_KNOWN_SENDER_LOGIN_MISMATCH,
	K_CLASS,
};

/* Restriction classes call each other at most this deep (a loop among
 * them ends here, as a configuration error). */
#define RESTRICT_CLASS_DEPTH 10

enum argtype { ARG_NONE, ARG_DNS, ARG_MAP, ARG_POLICY };

static const struct {
	const char *name;
	enum kind kind;
	enum argtype arg;
} entries[] = {
	{ "permit", K_PERMIT, ARG_NONE },
	{ "reject", K_REJECT, ARG_NONE },
	{ "defer", K_DEFER, ARG_NONE },
	{ "warn_if_reject", K_WARN_IF_REJECT, ARG_NONE },
	{ "permit_mynetworks", K_PERMIT_MYNETWORKS, ARG_NONE },
	{ "permit_sasl_authenticated", K_PERMIT_SASL, ARG_NONE },
	{ "reject_unauth_destination", K_REJECT_UNAUTH_DEST, ARG_NONE },
	{ "defer_unauth_destination", K_DEFER_UNAUTH_DEST, ARG_NONE },
	{ "reject_unauth_pipelining", K_REJECT_UNAUTH_PIPELINING, ARG_NONE },
	{ "reject_invalid_helo_hostname", K_REJECT_INVALID_HELO, ARG_NONE },
	{ "reject_non_fqdn_helo_hostname", K_REJECT_NON_FQDN_HELO, ARG_NONE },
	{ "reject_unknown_helo_hostname", K_REJECT_UNKNOWN_HELO, ARG_NONE },
	{ "reject_non_fqdn_sender", K_REJECT_NON_FQDN_SENDER, ARG_NONE },
	{ "reject_non_fqdn_recipient", K_REJECT_NON_FQDN_RCPT, ARG_NONE },
	{ "reject_unknown_sender_domain", K_REJECT_UNKNOWN_SENDER_DOMAIN, ARG_NONE },
	{ "reject_unknown_recipient_domain", K_REJECT_UNKNOWN_RCPT_DOMAIN, ARG_NONE },
	{ "reject_unlisted_recipient", K_REJECT_UNLISTED_RCPT, ARG_NONE },
	{ "reject_unlisted_sender", K_REJECT_UNLISTED_SENDER, ARG_NONE },
	{ "reject_unknown_client_hostname", K_REJECT_UNKNOWN_CLIENT, ARG_NONE },
	{ "reject_unknown_reverse_client_hostname", K_REJECT_UNKNOWN_REVERSE, ARG_NONE },
	{ "reject_rbl_client", K_RBL_CLIENT, ARG_DNS },
	{ "reject_rhsbl_client", K_RHSBL_CLIENT, ARG_DNS },
	{ "reject_rhsbl_sender", K_RHSBL_SENDER, ARG_DNS },
	{ "permit_dnswl_client", K_DNSWL_CLIENT, ARG_DNS },
	{ "check_client_access", K_CLIENT_ACCESS, ARG_MAP },
	{ "check_helo_access", K_HELO_ACCESS, ARG_MAP },
	{ "check_sender_access", K_SENDER_ACCESS, ARG_MAP },
	{ "check_recipient_access", K_RCPT_ACCESS, ARG_MAP },
	{ "check_policy_service", K_POLICY, ARG_POLICY },
	{ "reject_sender_login_mismatch", K_SENDER_LOGIN_MISMATCH, ARG_NONE },
	{ "reject_authenticated_sender_login_mismatch", K_AUTH_SENDER_LOGIN_MISMATCH,
	  ARG_NONE },
	{ "reject_unauthenticated_sender_login_mismatch",
	  K_UNAUTH_SENDER_LOGIN_MISMATCH, ARG_NONE },
	{ "reject_known_sender_login_mismatch", K_KNOWN_SENDER_LOGIN_MISMATCH,
	  ARG_NONE },
};

struct restrict_item {
	enum kind kind;
	char *arg;            /* DNS domain (filter cut off), map spec, endpoint */
	char *filter;         /* "=127.0.0.x" part, without '=', or NULL */
	struct map *map;
	/* check_policy_service { ... }: the values given (-1 / NULL: the
	 * smtpd_policy_service_* parameter applies) */
	struct restrict_policy pol;
	char *pol_action, *pol_context;   /* own pol.default_action, pol.policy_context */
};

void
restrict_settings_default(struct restrict_settings *st)
{
	memset(st, 0, sizeof(*st));
	st->delay_reject = 1;
	st->policy.timeout_ms = 100 * 1000;
	st->policy.max_idle_ms = 300 * 1000;
	st->policy.max_ttl_ms = 1000 * 1000;
	st->policy.request_limit = 0;
	st->policy.try_limit = 2;
	st->policy.retry_delay_ms = 1000;
	st->policy.default_action = "451 4.3.5 Server configuration problem";
	st->policy.policy_context = "";
	st->rbl_reject_code = 554;
	st->access_defer_code = 450;
	st->access_reject_code = 554;
	st->defer_code = 450;
	st->reject_code = 554;
	st->relay_reject_code = 554;
	st->unknown_address_code = 450;
	st->unknown_client_code = 450;
	st->unknown_hostname_code = 450;
	st->non_fqdn_code = 504;
	st->invalid_hostname_code = 501;
	st->unauth_pipelining_code = 503;
}

/* --- parsing ---------------------------------------------------------------- */

/* "127.0.0.2", "127.0.0.[2..11]", "127.0.[0..255].[1;3]": Postfix's
 * DNSBL reply filter. 0 if well formed. */
static int
filter_valid(const char *f)
{
	int octets = 0;

	while (*f) {
		if (*f == '[') {
			const char *e = strchr(f, ']');
			if (e == NULL || e == f + 1)
				return -1;
			for (const char *p = f + 1; p < e; p++)
				if (!isdigit((unsigned char)*p) && *p != '.' && *p != ';')
					return -1;
			f = e + 1;
		} else if (isdigit((unsigned char)*f)) {
			while (isdigit((unsigned char)*f))
				f++;
		} else {
			return -1;
		}
		octets++;
		if (*f == '.')
			f++;
		else if (*f != '\0')
			return -1;
	}
	return octets == 4 ? 0 : -1;
}

/* Does one octet value match a filter element ("7", "[2..11]", "[2;4]")? */
static int
octet_match(const char *el, size_t len, int v)
{
	char tmp[64];

	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, el, len);
	tmp[len] = '\0';
	if (tmp[0] != '[')
		return atoi(tmp) == v;
	tmp[len - 1] = '\0';
	for (char *alt = strtok(tmp + 1, ";"); alt != NULL; alt = strtok(NULL, ";")) {
		char *dots = strstr(alt, "..");
		if (dots != NULL) {
			*dots = '\0';
			if (v >= atoi(alt) && v <= atoi(dots + 2))
				return 1;
		} else if (atoi(alt) == v) {
			return 1;
		}
	}
	return 0;
}

static int
filter_match(const char *filter, const char *addr)
{
	int o[4];
	const char *f = filter;

	if (sscanf(addr, "%d.%d.%d.%d", &o[0], &o[1], &o[2], &o[3]) != 4)
		return 0;
	for (int i = 0; i < 4; i++) {
		const char *e = *f == '[' ? strchr(f, ']') + 1 : f + strcspn(f, ".");
		if (!octet_match(f, (size_t)(e - f), o[i]))
			return 0;
		f = *e == '.' ? e + 1 : e;
	}
	return 1;
}

static int
endpoint_valid(const char *e)
{
	if (strncmp(e, "unix:", 5) == 0)
		return e[5] != '\0';
	if (strncmp(e, "inet:", 5) == 0) {
		const char *colon = strrchr(e + 5, ':');
		return colon != NULL && colon > e + 5 && colon[1] != '\0';
	}
	return 0;
}

static void
policy_unset(struct restrict_policy *p)
{
	p->timeout_ms = p->max_idle_ms = p->max_ttl_ms = -1;
	p->request_limit = p->try_limit = p->retry_delay_ms = -1;
	p->default_action = p->policy_context = NULL;
}

/* Postfix 3.0's "{ endpoint, name=value, ... }": the endpoint first, then
 * overrides; "name = value" may be spread over words, and a value with
 * commas or spaces goes in braces ("default_action = { 451 4.7.1 No }").
 * 0, or -1 and *err_r (xmalloc'd). */
static int
policy_spec_parse(const char *spec, struct restrict_item *it, char **err_r)
{
	size_t len = strlen(spec);
	char *inner, **tok;
	int rc = -1;

	*err_r = NULL;
	if (len < 2 || spec[0] != '{' || spec[len - 1] != '}') {
		*err_r = xasprintf("unbalanced braces in \"%s\"", spec);
		return -1;
	}
	inner = xstrndup(spec + 1, len - 2);
	tok = map_split_list(inner);
	free(inner);
	for (size_t i = 0; tok[i] != NULL; i++) {
		struct buf nv = BUF_INIT(0);
		buf_puts(&nv, tok[i]);
		while (tok[i + 1] != NULL && (tok[i + 1][0] == '='
		    || (nv.len > 0 && nv.data[nv.len - 1] == '=')))
			buf_puts(&nv, tok[++i]);
		char *item = buf_steal(&nv);
		char *eq = strchr(item, '=');
		if (eq == NULL) {
			if (it->arg != NULL) {
				*err_r = xasprintf("\"%s\": want name=value after the endpoint",
				    item);
				free(item);
				goto out;
			}
			it->arg = item;
			continue;
		}
		*eq = '\0';
		char *val = eq + 1;
		size_t vl = strlen(val);
		if (vl >= 2 && val[0] == '{' && val[vl - 1] == '}') {
			val[vl - 1] = '\0';
			val++;
			while (isspace((unsigned char)*val))
				val++;
			for (vl = strlen(val); vl > 0 && isspace((unsigned char)val[vl - 1]); )
				val[--vl] = '\0';
		}
		static const struct {
			const char *name;
			size_t off;
			char kind;   /* 't' time (ms), 'n' count, 'a' action, 'c' context */
		} names[] = {
			{ "timeout", offsetof(struct restrict_policy, timeout_ms), 't' },
			{ "max_idle", offsetof(struct restrict_policy, max_idle_ms), 't' },
			{ "max_ttl", offsetof(struct restrict_policy, max_ttl_ms), 't' },
			{ "retry_delay", offsetof(struct restrict_policy, retry_delay_ms), 't' },
			{ "request_limit", offsetof(struct restrict_policy, request_limit), 'n' },
			{ "try_limit", offsetof(struct restrict_policy, try_limit), 'n' },
			{ "default_action", 0, 'a' },
			{ "policy_context", 0, 'c' },
		};
		size_t k;
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (strcmp(names[k].name, item) == 0)
				break;
		if (k == sizeof(names) / sizeof(names[0])) {
			*err_r = xasprintf("unknown attribute \"%s\" (want timeout, "
			    "default_action, max_idle, max_ttl, request_limit, "
			    "try_limit, retry_delay or policy_context)", item);
			free(item);
			goto out;
		}
		long long v = 0;
		char *end = NULL;
		switch (names[k].kind) {
		case 't':
			v = config_parse_time(val, 's');
			if (v < 0 || v > LLONG_MAX / 1000) {
				*err_r = xasprintf("%s=%s: not a time (3600, 100s, 5m...)",
				    item, val);
				free(item);
				goto out;
			}
			*(long long *)(void *)((char *)&it->pol + names[k].off) = v * 1000;
			break;
		case 'n':
			errno = 0;
			v = strtoll(val, &end, 10);
			if (*val == '\0' || *end != '\0' || errno != 0 || v < 0
			    || (strcmp(item, "try_limit") == 0 && v < 1)) {
				*err_r = xasprintf("%s=%s: want a number (%s)", item, val,
				    strcmp(item, "try_limit") == 0 ? "at least 1" : "0 or more");
				free(item);
				goto out;
			}
			*(long long *)(void *)((char *)&it->pol + names[k].off) = v;
			break;
		case 'a':
			free(it->pol_action);
			it->pol_action = xstrdup(val);
			it->pol.default_action = it->pol_action;
			break;
		case 'c':
			free(it->pol_context);
			it->pol_context = xstrdup(val);
			it->pol.policy_context = it->pol_context;
			break;
		}
		free(item);
	}
	if (it->arg == NULL)
		*err_r = xasprintf("\"%s\" names no endpoint", spec);
	else
		rc = 0;
out:
	strv_free(&tok);
	return rc;
}

/* Is name one of smtpd_restriction_classes? */
static int
is_class(const char *name)
{
	char **v = map_split_list(config_str("smtpd_restriction_classes"));
	int yes = strv_contains_ci(v, name);

	strv_free(&v);
	return yes;
}

static int parse_list(const char *param, const char *text,
    struct restrict_list *list_r, char **err_r);

int
restrict_parse(enum restrict_stage stage, const char *text,
    struct restrict_list *list_r, char **err_r)
{
	return parse_list(restrict_param[stage], text, list_r, err_r);
}

int
restrict_parse_classes(struct restrict_set *set, char **err_r)
{
	char **names = map_split_list(config_str("smtpd_restriction_classes"));
	int rc = 0;

	*err_r = NULL;
	for (size_t i = 0; rc == 0 && names[i] != NULL; i++) {
		const char *text = config_get(names[i]);

		for (size_t k = 0; k < sizeof(entries) / sizeof(entries[0]); k++)
			if (strcasecmp(entries[k].name, names[i]) == 0) {
				*err_r = xasprintf("smtpd_restriction_classes: %s is the name "
				    "of a restriction", names[i]);
				rc = -1;
			}
		if (rc == 0 && text == NULL) {
			*err_r = xasprintf("smtpd_restriction_classes: %s: no such "
			    "parameter (the class's restrictions, as %s = ...)", names[i],
			    names[i]);
			rc = -1;
		}
		if (rc < 0)
			break;
		set->classes = xreallocarray(set->classes, set->nclasses + 1,
		    sizeof(*set->classes));
		struct restrict_class *c = &set->classes[set->nclasses];
		if ((rc = parse_list(names[i], text, &c->list, err_r)) == 0) {
			c->name = xstrdup(names[i]);
			set->nclasses++;
		}
	}
	strv_free(&names);
	return rc;
}

static int
parse_list(const char *param, const char *text, struct restrict_list *list_r,
    char **err_r)
{
	char **tok = map_split_list(text != NULL ? text : "");
	struct restrict_list l = { NULL, 0 };
	size_t i, k;

	*err_r = NULL;
	for (i = 0; tok[i] != NULL; i++) {
		for (k = 0; k < sizeof(entries) / sizeof(entries[0]); k++)
			if (strcasecmp(entries[k].name, tok[i]) == 0)
				break;
		if (k == sizeof(entries) / sizeof(entries[0]) && is_class(tok[i])) {
			l.v = xreallocarray(l.v, l.n + 1, sizeof(*l.v));
			memset(&l.v[l.n], 0, sizeof(l.v[l.n]));
			l.v[l.n].kind = K_CLASS;
			l.v[l.n++].arg = xstrdup(tok[i]);
			continue;
		}
		if (k == sizeof(entries) / sizeof(entries[0])) {
			*err_r = xasprintf("%s: unknown restriction \"%s\"", param, tok[i]);
			goto fail;
		}
		l.v = xreallocarray(l.v, l.n + 1, sizeof(*l.v));
		struct restrict_item *it = &l.v[l.n++];
		memset(it, 0, sizeof(*it));
		it->kind = entries[k].kind;
		/* Without the table they would let every sender through. */
		if (it->kind >= K_SENDER_LOGIN_MISMATCH
		    && it->kind <= K_KNOWN_SENDER_LOGIN_MISMATCH
		    && *config_str("smtpd_sender_login_maps") == '\0') {
			*err_r = xasprintf("%s: %s needs smtpd_sender_login_maps", param,
			    entries[k].name);
			goto fail;
		}
		if (entries[k].arg == ARG_NONE)
			continue;
		if (tok[i + 1] == NULL || (tok[i + 1][0] == '{'
		    && entries[k].arg != ARG_POLICY)) {
			*err_r = xasprintf("%s: %s needs %s", param, entries[k].name,
			    entries[k].arg == ARG_DNS ? "a DNS domain" :
			    entries[k].arg == ARG_MAP ? "a table (type:name)" :
			    "an endpoint (inet:host:port or unix:/path)");
			goto fail;
		}
		const char *a = tok[++i];
		if (entries[k].arg == ARG_DNS) {
			const char *eq = strchr(a, '=');
			it->arg = eq ? xstrndup(a, (size_t)(eq - a)) : xstrdup(a);
			if (eq != NULL) {
				it->filter = xstrdup(eq + 1);
				if (it->kind == K_RHSBL_CLIENT || it->kind == K_RHSBL_SENDER
				    || it->kind == K_RBL_CLIENT || it->kind == K_DNSWL_CLIENT)
					if (filter_valid(it->filter) < 0) {
						*err_r = xasprintf("%s: %s %s: bad reply filter "
						    "(want d.d.d.d, an octet may be [n..m] or [a;b])",
						    param, entries[k].name, a);
						goto fail;
					}
			}
			if (it->arg[0] == '\0' || strchr(it->arg, '.') == NULL) {
				*err_r = xasprintf("%s: %s %s: not a DNS domain", param,
				    entries[k].name, a);
				goto fail;
			}
		} else if (entries[k].arg == ARG_MAP) {
			char *err = NULL;
			it->arg = xstrdup(a);
			it->map = map_open(a, &err);
			if (it->map == NULL) {
				*err_r = xasprintf("%s: %s %s: %s", param, entries[k].name, a,
				    err ? err : "cannot open");
				free(err);
				goto fail;
			}
		} else {
			char *err = NULL;
			policy_unset(&it->pol);
			if (a[0] != '{')
				it->arg = xstrdup(a);
			else if (policy_spec_parse(a, it, &err) < 0) {
				*err_r = xasprintf("%s: check_policy_service %s: %s", param,
				    a, err);
				free(err);
				goto fail;
			}
			if (!endpoint_valid(it->arg)) {
				*err_r = xasprintf("%s: check_policy_service %s: want "
				    "inet:host:port or unix:/path", param, it->arg);
				goto fail;
			}
		}
	}
	strv_free(&tok);
	*list_r = l;
	return 0;
fail:
	strv_free(&tok);
	restrict_list_free(&l);
	memset(list_r, 0, sizeof(*list_r));
	return -1;
}

void
restrict_list_free(struct restrict_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].arg);
		free(l->v[i].filter);
		free(l->v[i].pol_action);
		free(l->v[i].pol_context);
		map_close(&l->v[i].map);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
restrict_set_free(struct restrict_set *set)
{
	for (int i = 0; i < RS_STAGES; i++)
		restrict_list_free(&set->list[i]);
	for (size_t i = 0; i < set->nclasses; i++) {
		restrict_list_free(&set->classes[i].list);
		free(set->classes[i].name);
	}
	free(set->classes);
	set->classes = NULL;
	set->nclasses = 0;
}

int
restrict_set_check_relay(const struct restrict_set *set, char **err_r)
{
	static const enum restrict_stage st[] = { RS_RELAY, RS_RECIPIENT };

	*err_r = NULL;
	for (size_t s = 0; s < 2; s++) {
		const struct restrict_list *l = &set->list[st[s]];
		for (size_t i = 0; i < l->n; i++) {
			enum kind k = l->v[i].kind;
			if (k == K_REJECT_UNAUTH_DEST || k == K_DEFER_UNAUTH_DEST
			    || k == K_REJECT || k == K_DEFER)
				return 0;
		}
	}
	*err_r = xasprintf("smtpd_relay_restrictions and smtpd_recipient_restrictions:"
	    " neither has reject_unauth_destination, defer_unauth_destination, "
	    "reject or defer; Postern refuses to be an open relay");
	return -1;
}

/* --- answers ---------------------------------------------------------------- */

void
restrict_answer(struct restrict_ctx *ctx, enum restrict_query type,
    const char *key, enum restrict_answer_status status, char *const *values)
{
	struct restrict_answer_ent *e;

	if (ctx->nans == RESTRICT_ANSWERS_MAX) {
		free(ctx->ans[0].key);
		strv_free(&ctx->ans[0].values);
		memmove(&ctx->ans[0], &ctx->ans[1],
		    (RESTRICT_ANSWERS_MAX - 1) * sizeof(ctx->ans[0]));
		ctx->nans--;
	}
	if (ctx->nans == ctx->capans) {
		size_t ncap = ctx->capans == 0 ? 4 : ctx->capans * 2;

		if (ncap > RESTRICT_ANSWERS_MAX)
			ncap = RESTRICT_ANSWERS_MAX;
		ctx->ans = xreallocarray(ctx->ans, ncap, sizeof(*ctx->ans));
		ctx->capans = ncap;
	}
	e = &ctx->ans[ctx->nans++];
	e->type = type;
	e->key = xstrdup(key);
	e->status = status;
	e->values = NULL;
	strv_push(&e->values, "");   /* never NULL */
	free(e->values[0]);
	e->values[0] = NULL;
	for (size_t i = 0; values != NULL && values[i] != NULL && i < 32; i++) {
		char *v = xstrndup(values[i], RESTRICT_TEXT_MAX);
		strv_push(&e->values, v);
		free(v);
	}
}

void
restrict_forget_policy(struct restrict_ctx *ctx)
{
	size_t j = 0;

	for (size_t i = 0; i < ctx->nans; i++) {
		if (ctx->ans[i].type == RQ_POLICY) {
			free(ctx->ans[i].key);
			strv_free(&ctx->ans[i].values);
		} else {
			ctx->ans[j++] = ctx->ans[i];
		}
	}
	ctx->nans = j;
}

void
restrict_ctx_free(struct restrict_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nans; i++) {
		free(ctx->ans[i].key);
		strv_free(&ctx->ans[i].values);
	}
	ctx->nans = 0;
	free(ctx->ans);
	ctx->ans = NULL;
	ctx->capans = 0;
	free(ctx->need_key);
	ctx->need_key = NULL;
}

/* --- evaluation ------------------------------------------------------------- */

enum verdict { V_DUNNO, V_PERMIT, V_REJECT, V_NEED };

struct eval {
	const struct restrict_set *set;
	const struct restrict_settings *st;
	struct restrict_ctx *ctx;
	struct restrict_result *res;
	enum restrict_stage stage;
	char *reply;               /* the reject of the current entry */
	char *defer_if_permit;     /* a DEFER_IF_PERMIT reply held back */
	int defer_if_reject;
	int depth;                 /* restriction classes being evaluated */
	struct buf keybuf;         /* scratch */
};


static void
event(struct eval *e, enum restrict_ev type, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void
event(struct eval *e, enum restrict_ev type, const char *fmt, ...)
{
	va_list ap;
	struct buf b = BUF_INIT(0);

	va_start(ap, fmt);
	(void)buf_vprintf(&b, fmt, ap);
	va_end(ap);
	e->res->ev = xreallocarray(e->res->ev, e->res->nev + 1, sizeof(*e->res->ev));
	e->res->ev[e->res->nev].type = type;
	e->res->ev[e->res->nev].text = buf_steal(&b);
	e->res->nev++;
}

static enum verdict
reject(struct eval *e, const char *fmt, ...) PRINTF_LIKE(2, 3);

static enum verdict
reject(struct eval *e, const char *fmt, ...)
{
	va_list ap;
	struct buf b = BUF_INIT(0);

	va_start(ap, fmt);
	(void)buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(e->reply);
	e->reply = buf_steal(&b);
	return V_REJECT;
}

static enum verdict eval_list(struct eval *e, const struct restrict_list *l);

/* A restriction class, by name: its list decides as one entry. NULL
 * when there is no such class. */
static const struct restrict_class *
find_class(const struct eval *e, const char *name)
{
	for (size_t i = 0; i < e->set->nclasses; i++)
		if (strcasecmp(e->set->classes[i].name, name) == 0)
			return &e->set->classes[i];
	return NULL;
}

static enum verdict
eval_class(struct eval *e, const struct restrict_class *c)
{
	enum verdict v;

	if (e->depth >= RESTRICT_CLASS_DEPTH) {
		event(e, REV_INFO, "restriction class %s: nested more than %d deep "
		    "(a loop?)", c->name, RESTRICT_CLASS_DEPTH);
		return reject(e, "451 4.3.5 Server configuration error");
	}
	e->depth++;
	v = eval_list(e, &c->list);
	e->depth--;
	return v;
}

/* A cached answer, or NULL after setting ctx->need. */
static const struct restrict_answer_ent *
ask(struct eval *e, enum restrict_query type, const char *key,
    const char *endpoint)
{
	struct restrict_ctx *c = e->ctx;

	for (size_t i = 0; i < c->nans; i++)
		if (c->ans[i].type == type && strcmp(c->ans[i].key, key) == 0)
			return &c->ans[i];
	memset(&c->need, 0, sizeof(c->need));
	free(c->need_key);
	c->need_key = xstrdup(key);   /* the caller's copy of the question */
	c->need.type = type;
	c->need.name = c->need_key;
	c->need.endpoint = endpoint;
	return NULL;
}

/* Printable text for a reply: control characters become '?'. */
static void
clean_text(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* The "who" of a reply: "<name[addr]>: Client host", "<helo>: Helo
 * command", ... per kind of check. */
struct who {
	const char *cls;       /* "Client host" */
	char name[600];        /* "<...>" */
};

static void
who_for(struct eval *e, enum restrict_stage stage, struct who *w)
{
	struct restrict_ctx *c = e->ctx;

	switch (stage) {
	case RS_CLIENT:
		w->cls = "Client host";
		snprintf(w->name, sizeof(w->name), "<%s[%s]>", c->client_name,
		    c->client_addr);
		break;
	case RS_HELO:
		w->cls = "Helo command";
		snprintf(w->name, sizeof(w->name), "<%s>", c->helo ? c->helo : "");
		break;
	case RS_SENDER:
		w->cls = "Sender address";
		snprintf(w->name, sizeof(w->name), "<%s>", c->sender ? c->sender : "");
		break;
	case RS_RELAY:
	case RS_RECIPIENT:
		w->cls = "Recipient address";
		snprintf(w->name, sizeof(w->name), "<%s>", c->rcpt ? c->rcpt : "");
		break;
	case RS_DATA:
		w->cls = "Data command";
		snprintf(w->name, sizeof(w->name), "<DATA>");
		break;
	default:
		w->cls = "End-of-data";
		snprintf(w->name, sizeof(w->name), "<END-OF-MESSAGE>");
		break;
	}
}

static enum verdict
reply_with(struct eval *e, const struct who *w, int code, const char *defdsn,
    const char *text)
{
	char dsn[16];
	const char *t;

	smtp_dsn_split(text, defdsn, dsn, &t);
	if (dsn[0] != (char)('0' + code / 100))
		dsn[0] = (char)('0' + code / 100);   /* a 4xx never says 5.x.x */
	return reject(e, "%d %s %s: %s rejected: %s", code, dsn, w->name, w->cls,
	    *t ? t : "Access denied");
}

/* One access(5) action (from a table or a policy service). */
static enum verdict
access_action(struct eval *e, const struct who *w, const char *value_in,
    const char *source)
{
	char *value = xstrndup(value_in, RESTRICT_TEXT_MAX);
	char *sp, *text;
	enum verdict v = V_DUNNO;
	size_t n;

	clean_text(value);
	(void)str_trim(value);
	n = strcspn(value, " \t");
	sp = value + n;
	text = *sp ? sp + 1 : sp;
	*sp = '\0';
	while (*text == ' ' || *text == '\t')
		text++;
	if (strcasecmp(value, "OK") == 0 || (n > 0 && strspn(value, "0123456789") == n
	    && n != 3)) {
		v = V_PERMIT;
	} else if (strcasecmp(value, "DUNNO") == 0 || value[0] == '\0') {
		v = V_DUNNO;
	} else if (strcasecmp(value, "REJECT") == 0) {
		v = reply_with(e, w, e->st->access_reject_code, "5.7.1", text);
	} else if (strcasecmp(value, "DEFER") == 0) {
		v = reply_with(e, w, e->st->access_defer_code, "4.7.1", text);
	} else if (strcasecmp(value, "DEFER_IF_PERMIT") == 0) {
		if (e->defer_if_permit == NULL) {
			(void)reply_with(e, w, e->st->access_defer_code, "4.7.1", text);
			e->defer_if_permit = e->reply;
			e->reply = NULL;
		}
	} else if (strcasecmp(value, "DEFER_IF_REJECT") == 0) {
		e->defer_if_reject = 1;
	} else if (n == 3 && (value[0] == '4' || value[0] == '5')
	    && isdigit((unsigned char)value[1]) && isdigit((unsigned char)value[2])) {
		v = reply_with(e, w, atoi(value), value[0] == '4' ? "4.7.1" : "5.7.1",
		    text);
	} else if (strcasecmp(value, "DISCARD") == 0) {
		event(e, REV_DISCARD, "%s: %s %s", w->name, w->cls,
		    *text ? text : "triggers DISCARD action");
		v = V_PERMIT;
	} else if (strcasecmp(value, "HOLD") == 0) {
		event(e, REV_HOLD, "%s: %s %s", w->name, w->cls,
		    *text ? text : "triggers HOLD action");
	} else if (strcasecmp(value, "PREPEND") == 0) {
		const char *colon = strchr(text, ':');
		if (colon == NULL || colon == text || strcspn(text, " \t:") != (size_t)(colon - text)) {
			event(e, REV_INFO, "%s: bad PREPEND header \"%s\" (want Name: value)",
			    source, text);
			v = reject(e, "451 4.3.5 Server configuration error");
		} else {
			event(e, REV_PREPEND, "%s", text);
		}
	} else if (strcasecmp(value, "WARN") == 0 || strcasecmp(value, "INFO") == 0) {
		event(e, strcasecmp(value, "WARN") == 0 ? REV_LOG_WARN : REV_LOG_INFO,
		    "%s: %s", w->name, text);
	} else if (find_class(e, value) != NULL) {
		v = eval_class(e, find_class(e, value));
	} else {
		/* FILTER, REDIRECT, BCC: not ours. */
		event(e, REV_INFO, "%s: unsupported access action \"%s\"", source, value);
		v = reject(e, "451 4.3.5 Server configuration error");
	}
	free(value);
	return v;
}

/* Parent domains: "a.b.c" -> "b.c" -> "c" (Postfix's
 * parent_domain_matches_subdomains for access maps). */
static const char *
parent_domain(const char *d)
{
	const char *dot = strchr(d, '.');

	return dot != NULL && dot[1] != '\0' ? dot + 1 : NULL;
}

static int
full_key_only(const struct restrict_item *it)
{
	return strncmp(it->arg, "regexp:", 7) == 0 || strncmp(it->arg, "pcre:", 5) == 0
	    || strncmp(it->arg, "cidr:", 5) == 0;
}

/* Look keys up in order; *value_r on the first hit. 1 found, 0 not, -1 error. */
static int
access_lookup(const struct restrict_item *it, char *const *keys, char **value_r)
{
	for (size_t i = 0; keys[i] != NULL; i++) {
		int r = map_lookup(it->map, keys[i], value_r);
		if (r != 0)
			return r;
		if (full_key_only(it))
			break;
	}
	return 0;
}

static void
push_domain_keys(char ***keys, const char *domain)
{
	for (const char *d = domain; d != NULL && *d; d = parent_domain(d))
		strv_push(keys, d);
}

static char **
access_keys(struct eval *e, enum kind k)
{
	struct restrict_ctx *c = e->ctx;
	char **keys = NULL;

	strv_push(&keys, "");
	free(keys[0]);
	keys[0] = NULL;
	switch (k) {
	case K_CLIENT_ACCESS: {
		if (strcmp(c->client_name, "unknown") != 0)
			push_domain_keys(&keys, c->client_name);
		strv_push(&keys, c->client_addr);
		char *a = xstrdup(c->client_addr);
		int v6 = strchr(a, ':') != NULL;
		char *cut;
		while ((cut = strrchr(a, v6 ? ':' : '.')) != NULL && cut != a) {
			*cut = '\0';
			if (*a && a[strlen(a) - 1] != ':')
				strv_push(&keys, a);
		}
		free(a);
		break;
	}
	case K_HELO_ACCESS:
		if (c->helo != NULL)
			push_domain_keys(&keys, c->helo);
		break;
	case K_SENDER_ACCESS:
	case K_RCPT_ACCESS: {
		const char *addr = k == K_SENDER_ACCESS ? c->sender : c->rcpt;
		if (addr == NULL)
			break;
		if (addr[0] == '\0') {
			strv_push(&keys, "<>");   /* smtpd_null_access_lookup_key */
			break;
		}
		strv_push(&keys, addr);
		const char *at = strrchr(addr, '@');
		if (at != NULL) {
			push_domain_keys(&keys, at + 1);
			char *lp = xstrndup(addr, (size_t)(at - addr) + 1);
			strv_push(&keys, lp);
			free(lp);
		}
		break;
	}
	default:
		break;
	}
	return keys;
}

static const char *
domain_of(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	return at ? at + 1 : "";
}

/* DNSBL-style lookup of name: 1 listed (*hit_r = the address), 0 not,
 * -1 temporary failure, 2 need. */
static int
dnsbl(struct eval *e, const struct restrict_item *it, const char *name,
    const char **hit_r)
{
	const struct restrict_answer_ent *a = ask(e, RQ_A, name, NULL);

	if (a == NULL)
		return 2;
	if (a->status == RA_TEMPFAIL)
		return -1;
	if (a->status != RA_OK)
		return 0;
	for (size_t i = 0; a->values[i] != NULL; i++) {
		/* RFC 5782: 127.0.0.0/8 answers are listings; others are
		 * errors of the list (Postfix ignores them without a filter too). */
		if (it->filter != NULL ? filter_match(it->filter, a->values[i])
		    : strncmp(a->values[i], "127.", 4) == 0) {
			*hit_r = a->values[i];
			return 1;
		}
	}
	return 0;
}

static enum verdict
rbl_reject(struct eval *e, const char *name, const char *domain,
    const char *cls, const char *what)
{
	const struct restrict_answer_ent *t = ask(e, RQ_TXT, name, NULL);

	if (t == NULL)
		return V_NEED;
	if (t->status == RA_OK && t->values[0] != NULL) {
		char *txt = xstrdup(t->values[0]);
		clean_text(txt);
		reject(e, "%d 5.7.1 Service unavailable; %s [%s] blocked using %s; %s",
		    e->st->rbl_reject_code, cls, what, domain, txt);
		free(txt);
		return V_REJECT;
	}
	return reject(e, "%d 5.7.1 Service unavailable; %s [%s] blocked using %s",
	    e->st->rbl_reject_code, cls, what, domain);
}

/* A service's settings: its own { name=value } values over the
 * smtpd_policy_service_* parameters. */
static struct restrict_policy
policy_merge(const struct restrict_policy *def, const struct restrict_item *it)
{
	struct restrict_policy p = *def;
	const struct restrict_policy *o = &it->pol;

	p.endpoint = it->arg;
	if (o->timeout_ms >= 0)
		p.timeout_ms = o->timeout_ms;
	if (o->max_idle_ms >= 0)
		p.max_idle_ms = o->max_idle_ms;
	if (o->max_ttl_ms >= 0)
		p.max_ttl_ms = o->max_ttl_ms;
	if (o->request_limit >= 0)
		p.request_limit = o->request_limit;
	if (o->try_limit >= 0)
		p.try_limit = o->try_limit;
	if (o->retry_delay_ms >= 0)
		p.retry_delay_ms = o->retry_delay_ms;
	if (o->default_action != NULL)
		p.default_action = o->default_action;
	if (o->policy_context != NULL)
		p.policy_context = o->policy_context;
	return p;
}

/* Postfix's policy delegation request (SMTPD_POLICY_README). */
static char *
policy_request(struct eval *e, const char *context)
{
	struct restrict_ctx *c = e->ctx;
	struct buf b = BUF_INIT(0);
	static const char *const states[] = {
		[RS_CLIENT] = "RCPT", [RS_HELO] = "RCPT", [RS_SENDER] = "RCPT",
		[RS_RELAY] = "RCPT", [RS_RECIPIENT] = "RCPT", [RS_DATA] = "DATA",
		[RS_EOD] = "END-OF-MESSAGE",
	};
	const char *state = c->stage_name;

	if (state == NULL || strcmp(state, "END-OF-MESSAGE") != 0)
		state = c->rcpt != NULL ? "RCPT" : state ? state : states[e->stage];
	char num[32];

	policy_attr(&b, "request", "smtpd_access_policy");
	policy_attr(&b, "protocol_state", state);
	policy_attr(&b, "protocol_name", c->protocol ? c->protocol : "SMTP");
	policy_attr(&b, "helo_name", c->helo);
	policy_attr(&b, "queue_id", c->queue_id);
	policy_attr(&b, "sender", c->sender);
	policy_attr(&b, "recipient", c->rcpt);
	snprintf(num, sizeof(num), "%lld", c->rcpt_count);
	policy_attr(&b, "recipient_count", num);
	policy_attr(&b, "client_address", c->client_addr);
	policy_attr(&b, "client_name", c->client_name);
	policy_attr(&b, "reverse_client_name", c->reverse_client_name != NULL
	    ? c->reverse_client_name : c->client_name);
	policy_attr(&b, "instance", c->instance != NULL ? c->instance : c->queue_id);
	policy_attr(&b, "sasl_method", c->sasl_method);
	policy_attr(&b, "sasl_username", c->sasl_user);
	policy_attr(&b, "sasl_sender", "");
	snprintf(num, sizeof(num), "%lld", c->size);
	policy_attr(&b, "size", num);
	policy_attr(&b, "etrn_domain", "");
	policy_attr(&b, "stress", "");
	policy_attr(&b, "policy_context", context);
	buf_putc(&b, '\n');
	return buf_steal(&b);
}

int
restrict_login_owns(const char *owners, const char *user)
{
	char **v = strv_split_list(owners);
	int yes = strv_contains_ci(v, user);

	strv_free(&v);
	return yes;
}

static enum verdict
eval_item(struct eval *e, const struct restrict_item *it)
{
	struct restrict_ctx *c = e->ctx;
	const struct restrict_settings *st = e->st;
	struct who w;
	const char *hit = NULL;
	char name[600];
	int r;

	who_for(e, e->stage, &w);
	switch (it->kind) {
	case K_PERMIT:
		return V_PERMIT;
	case K_REJECT:
		return reply_with(e, &w, st->reject_code, "5.7.1", "");
	case K_DEFER:
		return reject(e, "%d 4.3.2 %s: %s rejected: Try again later",
		    st->defer_code, w.name, w.cls);
	case K_WARN_IF_REJECT:
		return V_DUNNO;   /* handled by the caller */
	case K_PERMIT_MYNETWORKS:
		return c->in_mynetworks ? V_PERMIT : V_DUNNO;
	case K_PERMIT_SASL:
		return c->sasl_user != NULL ? V_PERMIT : V_DUNNO;
	case K_CLASS: {
		const struct restrict_class *cl = find_class(e, it->arg);
		if (cl == NULL)
			return reject(e, "451 4.3.5 Server configuration error");
		return eval_class(e, cl);
	}
	case K_SENDER_LOGIN_MISMATCH:
	case K_AUTH_SENDER_LOGIN_MISMATCH:
	case K_UNAUTH_SENDER_LOGIN_MISMATCH:
	case K_KNOWN_SENDER_LOGIN_MISMATCH: {
		char *owners = NULL;
		int authed = c->sasl_user != NULL, mine;

		if (c->sender == NULL || c->sender[0] == '\0' || c->sender_owners == NULL
		    || (authed && it->kind == K_UNAUTH_SENDER_LOGIN_MISMATCH)
		    || (!authed && it->kind == K_AUTH_SENDER_LOGIN_MISMATCH))
			return V_DUNNO;
		r = c->sender_owners(c->cb_arg, c->sender, &owners);
		mine = r == 1 && authed && restrict_login_owns(owners, c->sasl_user);
		free(owners);
		if (r < 0)
			return reject(e, "451 4.3.0 <%s>: Temporary lookup failure", c->sender);
		/* Unlisted: only an authenticated client's sender under the
		 * strict forms is refused (Postfix's "known" lets it pass). */
		if (mine || (r == 0 && (!authed || it->kind == K_KNOWN_SENDER_LOGIN_MISMATCH)))
			return V_DUNNO;
		if (!authed)
			return reject(e, "553 5.7.1 <%s>: Sender address rejected: not "
			    "logged in", c->sender);
		return reject(e, "553 5.7.1 <%s>: Sender address rejected: not owned "
		    "by user %s", c->sender, c->sasl_user);
	}
	case K_REJECT_UNAUTH_DEST:
	case K_DEFER_UNAUTH_DEST: {
		if (c->rcpt == NULL)
			return V_DUNNO;
		const char *d = domain_of(c->rcpt);
		r = *d == '\0' ? 1 : c->domain_is_ours ? c->domain_is_ours(c->cb_arg, d) : 0;
		if (r < 0)
			return reject(e, "451 4.3.0 <%s>: Temporary lookup failure", c->rcpt);
		if (r == 1)
			return V_DUNNO;
		if (it->kind == K_DEFER_UNAUTH_DEST)
			return reject(e, "454 4.7.1 <%s>: Relay access denied", c->rcpt);
		return reject(e, "%d 5.7.1 <%s>: Relay access denied",
		    st->relay_reject_code, c->rcpt);
	}
	case K_REJECT_UNAUTH_PIPELINING:
		if (!c->improper_pipelining)
			return V_DUNNO;
		return reject(e, "%d 5.5.0 %s: %s rejected: Improper use of SMTP "
		    "command pipelining", st->unauth_pipelining_code, w.name, w.cls);
	case K_REJECT_INVALID_HELO:
		if (c->helo == NULL)
			return V_DUNNO;
		if (restrict_helo_valid(c->helo))
			return V_DUNNO;
		return reject(e, "%d 5.5.2 <%s>: Helo command rejected: Invalid name",
		    st->invalid_hostname_code, c->helo);
	case K_REJECT_NON_FQDN_HELO:
		if (c->helo == NULL || c->helo[0] == '['
		    || (strchr(c->helo, '.') != NULL && c->helo[strlen(c->helo) - 1] != '.'))
			return V_DUNNO;
		return reject(e, "%d 5.5.2 <%s>: Helo command rejected: need "
		    "fully-qualified hostname", st->non_fqdn_code, c->helo);
	case K_REJECT_UNKNOWN_HELO: {
		if (c->helo == NULL || c->helo[0] == '[')
			return V_DUNNO;
		const struct restrict_answer_ent *a = ask(e, RQ_DOMAIN, c->helo, NULL);
		if (a == NULL)
			return V_NEED;
		if (a->status == RA_OK)
			return V_DUNNO;
		return reject(e, "%d 4.7.1 <%s>: Helo command rejected: Host not found",
		    st->unknown_hostname_code, c->helo);
	}
	case K_REJECT_NON_FQDN_SENDER:
	case K_REJECT_NON_FQDN_RCPT: {
		int snd = it->kind == K_REJECT_NON_FQDN_SENDER;
		const char *a = snd ? c->sender : c->rcpt;
		if (a == NULL || a[0] == '\0')
			return V_DUNNO;
		const char *d = domain_of(a);
		if (!snd && *d == '\0' && strcasecmp(a, "postmaster") == 0)
			return V_DUNNO;
		if (*d != '\0' && strchr(d, '.') != NULL && d[strlen(d) - 1] != '.')
			return V_DUNNO;
		return reject(e, "%d 5.5.2 <%s>: %s address rejected: need "
		    "fully-qualified address", st->non_fqdn_code, a,
		    snd ? "Sender" : "Recipient");
	}
	case K_REJECT_UNKNOWN_SENDER_DOMAIN:
	case K_REJECT_UNKNOWN_RCPT_DOMAIN: {
		int snd = it->kind == K_REJECT_UNKNOWN_SENDER_DOMAIN;
		const char *a = snd ? c->sender : c->rcpt;
		if (a == NULL || a[0] == '\0' || *domain_of(a) == '\0')
			return V_DUNNO;
		if (!snd && c->domain_is_ours
		    && c->domain_is_ours(c->cb_arg, domain_of(a)) == 1)
			return V_DUNNO;
		const struct restrict_answer_ent *ans = ask(e, RQ_DOMAIN, domain_of(a),
		    NULL);
		if (ans == NULL)
			return V_NEED;
		if (ans->status == RA_OK)
			return V_DUNNO;
		return reject(e, "%d %s <%s>: %s address rejected: Domain not found",
		    ans->status == RA_TEMPFAIL ? 451 : st->unknown_address_code,
		    snd ? "4.1.8" : "4.1.2", a, snd ? "Sender" : "Recipient");
	}
	case K_REJECT_UNLISTED_RCPT:
	case K_REJECT_UNLISTED_SENDER: {
		const char *why = "User unknown";
		int snd = it->kind == K_REJECT_UNLISTED_SENDER;
		const char *a = snd ? c->sender : c->rcpt;
		if (a == NULL || a[0] == '\0' || c->rcpt_known == NULL)
			return V_DUNNO;
		r = c->rcpt_known(c->cb_arg, a, &why);
		if (r < 0)
			return reject(e, "451 4.3.0 <%s>: Temporary lookup failure", a);
		if (r == 1)
			return V_DUNNO;
		return reject(e, "550 %s <%s>: %s address rejected: %s",
		    snd ? "5.1.0" : "5.1.1", a, snd ? "Sender" : "Recipient", why);
	}
	case K_REJECT_UNKNOWN_CLIENT:
	case K_REJECT_UNKNOWN_REVERSE: {
		/* smtpd looked the name up at connect (smtpd/peer.c): a DNS
		 * failure is 450 whatever unknown_client_reject_code says. */
		int rev = it->kind == K_REJECT_UNKNOWN_REVERSE;
		enum peer_status ps = rev ? c->reverse_name_status
		    : c->client_name_status;
		if (ps == PEER_OK)
			return V_DUNNO;
		int code = ps == PEER_TEMP ? 450 : st->unknown_client_code;
		return reject(e, "%d %c.7.25 Client host rejected: cannot find your "
		    "%shostname, [%s]", code, code >= 500 ? '5' : '4',
		    rev ? "reverse " : "", c->client_addr);
	}
	case K_RBL_CLIENT:
	case K_DNSWL_CLIENT: {
		char rev[80];
		if (restrict_reverse_addr(c->client_addr, rev, sizeof(rev)) < 0)
			return V_DUNNO;
		snprintf(name, sizeof(name), "%s.%s", rev, it->arg);
		r = dnsbl(e, it, name, &hit);
		if (r == 2)
			return V_NEED;
		if (r != 1)
			return V_DUNNO;   /* a list that does not answer: not listed */
		if (it->kind == K_DNSWL_CLIENT)
			return V_PERMIT;
		return rbl_reject(e, name, it->arg, "Client host", c->client_addr);
	}
	case K_RHSBL_CLIENT:
	case K_RHSBL_SENDER: {
		const char *d = it->kind == K_RHSBL_CLIENT ? c->client_name
		    : c->sender != NULL ? domain_of(c->sender) : "";
		if (*d == '\0' || strcmp(d, "unknown") == 0 || strlen(d) > 253)
			return V_DUNNO;
		snprintf(name, sizeof(name), "%s.%s", d, it->arg);
		r = dnsbl(e, it, name, &hit);
		if (r == 2)
			return V_NEED;
		if (r != 1)
			return V_DUNNO;
		return rbl_reject(e, name, it->arg, it->kind == K_RHSBL_CLIENT ?
		    "Client host" : "Sender address", d);
	}
	case K_CLIENT_ACCESS:
	case K_HELO_ACCESS:
	case K_SENDER_ACCESS:
	case K_RCPT_ACCESS: {
		static const enum restrict_stage of[] = {
			[K_CLIENT_ACCESS] = RS_CLIENT, [K_HELO_ACCESS] = RS_HELO,
			[K_SENDER_ACCESS] = RS_SENDER, [K_RCPT_ACCESS] = RS_RECIPIENT,
		};
		char **keys = access_keys(e, it->kind);
		char *value = NULL;
		enum verdict v = V_DUNNO;
		char src[700];

		who_for(e, of[it->kind], &w);
		r = keys[0] != NULL ? access_lookup(it, keys, &value) : 0;
		snprintf(src, sizeof(src), "%s", it->arg);
		if (r < 0)
			v = reject(e, "451 4.3.0 %s: Temporary lookup failure", w.name);
		else if (r > 0)
			v = access_action(e, &w, value, src);
		free(value);
		strv_free(&keys);
		return v;
	}
	case K_POLICY: {
		struct restrict_policy p = policy_merge(&st->policy, it);
		char *req = policy_request(e, p.policy_context);
		const struct restrict_answer_ent *a = ask(e, RQ_POLICY, req, it->arg);
		enum verdict v;
		char src[700];

		free(req);
		if (a == NULL) {
			c->need.policy = p;
			return V_NEED;
		}
		snprintf(src, sizeof(src), "check_policy_service %s", it->arg);
		if (a->status != RA_OK || a->values[0] == NULL) {
			event(e, REV_INFO, "%s: no usable answer: using "
			    "smtpd_policy_service_default_action", src);
			v = access_action(e, &w, p.default_action, src);
		} else {
			v = access_action(e, &w, a->values[0], src);
		}
		return v;
	}
	}
	return V_DUNNO;
}

static enum verdict
eval_list(struct eval *e, const struct restrict_list *l)
{
	int warn = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct restrict_item *it = &l->v[i];
		if (it->kind == K_WARN_IF_REJECT) {
			warn = 1;
			continue;
		}
		enum verdict v = eval_item(e, it);
		if (v == V_NEED)
			return V_NEED;
		if (v == V_REJECT && warn) {
			event(e, REV_WARN, "%s", e->reply);
			free(e->reply);
			e->reply = NULL;
			v = V_DUNNO;
		}
		warn = 0;
		if (v != V_DUNNO)
			return v;
	}
	return V_DUNNO;
}

enum restrict_status
restrict_eval(const struct restrict_set *set, const enum restrict_stage *stages,
    size_t n, struct restrict_ctx *ctx, struct restrict_result *res)
{
	struct eval e;
	enum verdict v = V_DUNNO;

	memset(res, 0, sizeof(*res));
	memset(&e, 0, sizeof(e));
	e.set = set;
	e.st = &set->st;
	e.ctx = ctx;
	e.res = res;
	for (size_t i = 0; i < n; i++) {
		e.stage = stages[i];
		v = eval_list(&e, &set->list[stages[i]]);
		if (v == V_NEED || v == V_REJECT)
			break;
	}
	if (v == V_NEED) {
		free(e.reply);
		free(e.defer_if_permit);
		restrict_result_free(res);
		return RESTRICT_NEED;
	}
	if (v == V_REJECT) {
		if (e.defer_if_reject && e.reply[0] == '5') {
			/* DEFER_IF_REJECT: the reject becomes a 450 4.x.x. */
			e.reply[0] = '4';
			e.reply[1] = '5';
			e.reply[2] = '0';
			char *dsn = strchr(e.reply, ' ');
			if (dsn != NULL && dsn[1] == '5')
				dsn[1] = '4';
		}
		res->reply = e.reply;
		free(e.defer_if_permit);
	} else {
		res->reply = e.defer_if_permit;   /* NULL: accepted */
		free(e.reply);
	}
	return RESTRICT_DONE;
}

void
restrict_result_free(struct restrict_result *res)
{
	for (size_t i = 0; i < res->nev; i++)
		free(res->ev[i].text);
	free(res->ev);
	free(res->reply);
	memset(res, 0, sizeof(*res));
}

/* --- helpers ---------------------------------------------------------------- */

size_t
restrict_stages(int delay_reject, enum restrict_point at,
    enum restrict_stage *stages)
{
	size_t n = 0;

	switch (at) {
	case RP_CONNECT:
		if (!delay_reject)
			stages[n++] = RS_CLIENT;
		break;
	case RP_HELO:
		if (!delay_reject)
			stages[n++] = RS_HELO;
		break;
	case RP_MAIL:
		if (!delay_reject)
			stages[n++] = RS_SENDER;
		break;
	case RP_RCPT:
		if (delay_reject) {
			stages[n++] = RS_CLIENT;
			stages[n++] = RS_HELO;
			stages[n++] = RS_SENDER;
		}
		stages[n++] = RS_RELAY;
		stages[n++] = RS_RECIPIENT;
		break;
	case RP_DATA:
		stages[n++] = RS_DATA;
		break;
	case RP_EOD:
		stages[n++] = RS_EOD;
		break;
	}
	return n;
}

int
restrict_helo_valid(const char *h)
{
	size_t n = strlen(h), lab = 0;

	if (n == 0 || n > 255)
		return 0;
	if (h[0] == '[') {
		struct net_addr a;
		const char *in = h + 1;
		size_t len = n - 2;
		if (h[n - 1] != ']')
			return 0;
		if (strncasecmp(in, "IPv6:", 5) == 0) {
			in += 5;
			len -= 5;
		}
		return net_addr_parse(in, len, &a, 0) == 0;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];
		if (ch == '.') {
			if (lab == 0 && i != n - 1)
				return 0;
			lab = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return 0;
		if (++lab > 63)
			return 0;
	}
	/* All-numeric names that are not address literals: Postfix calls
	 * "1.2.3.4" (no brackets) invalid too. */
	if (strspn(h, "0123456789.") == n)
		return 0;
	return 1;
}

int
restrict_reverse_addr(const char *addr, char *out, size_t outlen)
{
	struct net_addr a;
	const char *p = addr;

	if (strncmp(p, "::ffff:", 7) == 0 && strchr(p + 7, '.') != NULL)
		p += 7;
	if (net_addr_parse(p, strlen(p), &a, 1) < 0)
		return -1;
	if (strchr(p, ':') == NULL) {
		unsigned o[4];
		if (sscanf(p, "%u.%u.%u.%u", &o[0], &o[1], &o[2], &o[3]) != 4)
			return -1;
		return snprintf(out, outlen, "%u.%u.%u.%u", o[3], o[2], o[1], o[0])
		    < (int)outlen ? 0 : -1;
	}
	if (a.family != AF_INET6 || outlen < 64)
		return -1;
	size_t k = 0;
	for (int i = 15; i >= 0; i--) {
		static const char hx[] = "0123456789abcdef";
		out[k++] = hx[a.b[i] & 15];
		out[k++] = '.';
		out[k++] = hx[a.b[i] >> 4];
		out[k++] = i ? '.' : '\0';
	}
	return 0;
}
