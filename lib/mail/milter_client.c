/*
 * milter_client - milter list parsing; see milter_client.h.
 *
 * Invariant: an entry is accepted only when every part of it was
 * understood (unknown settings, bad numbers, a port outside 1..65535, a
 * relative unix path are errors), so a typo never turns a milter off.
 *
 * BUGS/LIMITS: the conversation and the apply step are not here yet.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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
		if (eq[0] >= '2' && eq[0] <= '6' && eq[1] == '\0') {
			m->protocol = eq[0] - '0';
			rc = 0;
		}
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
