/*
 * milter_client - milter list parsing; see milter_client.h.
 *
 * Invariant: an entry is accepted only when every part of it was
 * understood (unknown settings, bad numbers, a port outside 1..65535, a
 * relative unix path are errors), so a typo never turns a milter off.
 *
 * BUGS/LIMITS: the socket side of the conversation (connect, timeouts,
 * default actions) and the queue-file rewrite are not here yet; the
 * protocol state machine is proto/milter.h's milter_sess.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/milter_client.h"
#include "proto/milter.h"
#include "util/alloc.h"

static const char *const default_names[] = {
	[MILTER_DEF_ACCEPT] = "accept",
	[MILTER_DEF_REJECT] = "reject",
	[MILTER_DEF_TEMPFAIL] = "tempfail",
	[MILTER_DEF_QUARANTINE] = "quarantine",
};

int
milter_default_parse(const char *s, enum milter_default *r)
{
	for (size_t i = 0; i < sizeof(default_names) / sizeof(default_names[0]); i++)
		if (strcmp(s, default_names[i]) == 0) {
			*r = (enum milter_default)i;
			return 0;
		}
	return -1;
}

const char *
milter_default_name(enum milter_default d)
{
	return default_names[d];
}

void
milter_specs_free(struct milter_spec **list, size_t n)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		xfree(&(*list)[i].endpoint);
		xfree(&(*list)[i].host);
		xfree(&(*list)[i].path);
	}
	xfree(list);
}

static int
parse_endpoint(struct milter_spec *m, const char *s, size_t len,
    const char **error_r)
{
	m->endpoint = xstrndup(s, len);
	if (strncmp(m->endpoint, "unix:", 5) == 0) {
		if (m->endpoint[5] != '/') {
			*error_r = "milter unix: endpoint needs an absolute path";
			return -1;
		}
		m->is_unix = 1;
		m->path = xstrdup(m->endpoint + 5);
		return 0;
	}
	if (strncmp(m->endpoint, "inet:", 5) != 0) {
		*error_r = "milter endpoint must be inet:host:port or unix:/path";
		return -1;
	}
	const char *h = m->endpoint + 5, *colon;
	size_t hlen;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (close == NULL || close[1] != ':') {
			*error_r = "malformed milter inet: address";
			return -1;
		}
		h++;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (colon == NULL) {
			*error_r = "milter inet: endpoint without a port";
			return -1;
		}
		hlen = (size_t)(colon - h);
	}
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (hlen == 0 || !isdigit((unsigned char)colon[1]) || *end != '\0'
	    || port == 0 || port > 65535) {
		*error_r = "malformed milter inet: host or port";
		return -1;
	}
	m->host = xstrndup(h, hlen);
	m->port = (unsigned)port;
	return 0;
}

/* One "name=value" inside braces. */
static int
parse_setting(struct milter_spec *m, const char *s, size_t len,
    const char **error_r)
{
	char *kv = xstrndup(s, len), *eq = strchr(kv, '=');
	long long t;
	int rc = -1;

	*error_r = "unknown or malformed milter setting";
	if (eq == NULL)
		goto out;
	*eq++ = '\0';
	if (strcmp(kv, "default_action") == 0) {
		rc = milter_default_parse(eq, &m->default_action);
	} else if (strcmp(kv, "protocol") == 0) {
		rc = milter_protocol_parse(eq, &m->protocol, &m->steps, error_r);
	} else if ((t = config_parse_time(eq, 's')) >= 0) {
		if (strcmp(kv, "connect_timeout") == 0)
			m->connect_timeout = t, rc = 0;
		else if (strcmp(kv, "command_timeout") == 0)
			m->command_timeout = t, rc = 0;
		else if (strcmp(kv, "content_timeout") == 0)
			m->content_timeout = t, rc = 0;
	}
out:
	free(kv);
	return rc;
}

/* Next token: a run of characters up to white space, ',' or a brace; a
 * brace is a token of its own. */
static const char *
next_token(const char **pp, size_t *len_r)
{
	const char *p = *pp, *start;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')
		p++;
	if (*p == '\0') {
		*pp = p;
		return NULL;
	}
	start = p;
	if (*p == '{' || *p == '}')
		p++;
	else
		while (*p != '\0' && strchr(" \t\r\n,{}", *p) == NULL)
			p++;
	*len_r = (size_t)(p - start);
	*pp = p;
	return start;
}

int
milter_list_parse(const char *list, const struct milter_spec_defaults *def,
    struct milter_spec **list_r, size_t *n_r, const char **error_r)
{
	struct milter_spec *v = NULL;
	size_t n = 0;
	const char *p = list, *tok;
	size_t len;

	while ((tok = next_token(&p, &len)) != NULL) {
		int braced = *tok == '{';
		if (*tok == '}') {
			*error_r = "unbalanced '}' in milter list";
			goto fail;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		struct milter_spec *m = &v[n++];
		memset(m, 0, sizeof(*m));
		m->connect_timeout = def->connect_timeout;
		m->command_timeout = def->command_timeout;
		m->content_timeout = def->content_timeout;
		m->default_action = def->default_action;
		m->protocol = def->protocol;
		m->steps = def->steps;
		if (braced && (tok = next_token(&p, &len)) == NULL) {
			*error_r = "unbalanced '{' in milter list";
			goto fail;
		}
		if (*tok == '{' || *tok == '}') {
			*error_r = "milter entry without an endpoint";
			goto fail;
		}
		if (parse_endpoint(m, tok, len, error_r) < 0)
			goto fail;
		if (!braced)
			continue;
		for (;;) {
			if ((tok = next_token(&p, &len)) == NULL) {
				*error_r = "unbalanced '{' in milter list";
				goto fail;
			}
			if (*tok == '}')
				break;
			if (*tok == '{' || parse_setting(m, tok, len, error_r) < 0) {
				if (*tok == '{')
					*error_r = "nested '{' in milter list";
				goto fail;
			}
		}
	}
	*list_r = v;
	*n_r = n;
	return 0;
fail:
	milter_specs_free(&v, n);
	return -1;
}

int
milter_config_load(const char *param, struct milter_spec **list_r, size_t *n_r,
    const char *defmacros[MILTER_MACRO_LISTS], const char **error_r)
{
	static const char *const stage_params[MILTER_MACRO_LISTS] = {
		[MILTER_M_CONNECT] = "milter_connect_macros",
		[MILTER_M_HELO] = "milter_helo_macros",
		[MILTER_M_ENVFROM] = "milter_mail_macros",
		[MILTER_M_ENVRCPT] = "milter_rcpt_macros",
		[MILTER_M_DATA] = "milter_data_macros",
		[MILTER_M_EOM] = "milter_end_of_data_macros",
		[MILTER_M_EOH] = "milter_end_of_header_macros",
		[MILTER_MACROS_UNKNOWN] = "milter_unknown_command_macros",
	};
	struct milter_spec_defaults d;
	_Static_assert(MILTER_M_COUNT == MILTER_MACROS_UNKNOWN,
	    "one macro list per stage, then unknown commands");

	d.connect_timeout = config_time("milter_connect_timeout");
	d.command_timeout = config_time("milter_command_timeout");
	d.content_timeout = config_time("milter_content_timeout");
	if (milter_default_parse(config_str("milter_default_action"),
	    &d.default_action) < 0) {
		*error_r = "milter_default_action: unknown action (accept, reject, "
		    "tempfail or quarantine)";
		return -1;
	}
	if (milter_protocol_parse(config_str("milter_protocol"), &d.protocol,
	    &d.steps, error_r) < 0)
		return -1;
	for (int i = 0; i < MILTER_MACRO_LISTS; i++)
		defmacros[i] = config_str(stage_params[i]);
	return milter_list_parse(config_str(param), &d, list_r, n_r, error_r);
}

void
milter_envelope_free(struct milter_envelope *env)
{
	for (size_t i = 0; i < env->nrcpt; i++) {
		xfree(&env->rcpts[i]);
		xfree(&env->rcpt_args[i]);
	}
	xfree(&env->rcpts);
	xfree(&env->rcpt_args);
	env->nrcpt = 0;
	xfree(&env->sender);
	xfree(&env->sender_args);
	xfree(&env->hold_reason);
	env->hold = 0;
}

/* "<a@b>" or "a@b" -> "a@b"; NULL when it holds control characters or
 * unbalanced brackets. allow_null: "<>" gives "". */
static char *
bare_addr(const char *s, int allow_null)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return NULL;
	if (n > 0 && s[0] == '<') {
		if (n < 2 || s[n - 1] != '>')
			return NULL;
		s++;
		n -= 2;
	}
	if (n == 0 && !allow_null)
		return NULL;
	if (memchr(s, '<', n) != NULL || memchr(s, '>', n) != NULL)
		return NULL;
	return xstrndup(s, n);
}

int
milter_apply_envelope(const struct milter_edits *e, struct milter_envelope *env,
    const char **error_r)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct milter_edit *ed = &e->v[i];
		char *a;
		switch (ed->code) {
		case MILTER_R_CHGFROM:
			if ((a = bare_addr(ed->str, 1)) == NULL) {
				*error_r = "milter changed the sender to a malformed address";
				return -1;
			}
			free(env->sender);
			env->sender = a;
			free(env->sender_args);
			env->sender_args = ed->value ? xstrdup(ed->value) : NULL;
			break;
		case MILTER_R_ADDRCPT:
		case MILTER_R_ADDRCPT_PAR:
			if ((a = bare_addr(ed->str, 0)) == NULL) {
				*error_r = "milter added a malformed recipient";
				return -1;
			}
			env->rcpts = xreallocarray(env->rcpts, env->nrcpt + 1, sizeof(char *));
			env->rcpt_args = xreallocarray(env->rcpt_args, env->nrcpt + 1,
			    sizeof(char *));
			env->rcpts[env->nrcpt] = a;
			env->rcpt_args[env->nrcpt++] = ed->value ? xstrdup(ed->value) : NULL;
			break;
		case MILTER_R_DELRCPT:
			if ((a = bare_addr(ed->str, 0)) == NULL) {
				*error_r = "milter deleted a malformed recipient";
				return -1;
			}
			for (size_t k = 0; k < env->nrcpt;) {
				if (strcasecmp(env->rcpts[k], a) != 0) {
					k++;
					continue;
				}
				free(env->rcpts[k]);
				free(env->rcpt_args[k]);
				memmove(env->rcpts + k, env->rcpts + k + 1,
				    (env->nrcpt - k - 1) * sizeof(char *));
				memmove(env->rcpt_args + k, env->rcpt_args + k + 1,
				    (env->nrcpt - k - 1) * sizeof(char *));
				env->nrcpt--;
			}
			free(a);
			break;
		case MILTER_R_QUARANTINE:
			env->hold = 1;
			free(env->hold_reason);
			env->hold_reason = xstrdup(ed->str);
			break;
		}
	}
	if (env->nrcpt == 0) {
		*error_r = "milter deleted every recipient";
		return -1;
	}
	return 0;
}
