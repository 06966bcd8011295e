/*
 * mastercf - read master.conf, the service table, in master.cf's columns.
 *
 * Invariants: a loaded table is complete and checked or not returned at
 * all; every service has a type of inet or unix, a command without '/'
 * (it runs from daemon_directory) and a unique name/type pair. "-o" is
 * always followed by a "name=value" word, kept in args as written.
 *
 * Trusts: nothing in the file (root reads it, so every column is checked
 * and the file size is bounded).
 *
 * Limits: no Postfix "{ text with spaces }" argument grouping, and no
 * fifo/pass service types.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/mastercf.h"

#define MASTERCF_FILE_MAX (1024 * 1024)
#define MASTERCF_MAX_SERVICES 1000
#define MASTERCF_NUM_MAX 1000000

static int
parse_flag(const char *s, int def, int *v)
{
	if (strcmp(s, "-") == 0)
		*v = def;
	else if (strcmp(s, "y") == 0)
		*v = 1;
	else if (strcmp(s, "n") == 0)
		*v = 0;
	else
		return -1;
	return 0;
}

static int
parse_num(const char *s, int def, int allow_q, int *v)
{
	long n = 0;
	size_t i, len = strlen(s);

	if (strcmp(s, "-") == 0) {
		*v = def;
		return 0;
	}
	/* Postfix's "60?" means: wake only while the service is in use */
	if (allow_q && len > 1 && s[len - 1] == '?')
		len--;
	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		n = n * 10 + (s[i] - '0');
		if (n > MASTERCF_NUM_MAX)
			return -1;
	}
	*v = (int)n;
	return 0;
}

static int
valid_port(const char *s)
{
	size_t i;

	if (*s == '\0' || strlen(s) > 32)
		return 0;
	if (isdigit((unsigned char)*s)) {
		long n = 0;

		for (i = 0; s[i] != '\0'; i++) {
			if (!isdigit((unsigned char)s[i]))
				return 0;
			n = n * 10 + (s[i] - '0');
			if (n > 65535)
				return 0;
		}
		return n > 0;
	}
	/* a service name from /etc/services ("smtp") */
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

/* "port", "host:port", "[v6addr]:port"; NULL if fine, else the problem. */
static const char *
check_inet_name(const char *name)
{
	const char *colon;
	size_t i;

	if (name[0] == '[') {
		const char *close = strchr(name, ']');

		if (close == NULL || close == name + 1)
			return "bad inet address";
		if (close[1] != ':')
			return "inet service needs host:port";
		return valid_port(close + 2) ? NULL : "bad port";
	}
	colon = strrchr(name, ':');
	if (colon == NULL)
		return valid_port(name) ? NULL : "bad port";
	if (colon == name)
		return "bad inet address";
	for (i = 0; name + i < colon; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '-' && name[i] != '_' && name[i] != '*')
			return "bad inet address";
	return valid_port(colon + 1) ? NULL : "bad port";
}

static const char *
check_unix_name(const char *name)
{
	size_t i;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return "bad service name";
	for (i = 0; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' &&
		    name[i] != '_' && name[i] != '.')
			return "bad service name";
	return i > 100 ? "service name too long" : NULL;
}

static void
svc_free_one(struct master_service *s)
{
	free(s->name);
	free(s->type);
	free(s->command);
	strv_free(&s->args);
}

void
mastercf_free(struct master_service *svcs, size_t n)
{
	size_t i;

	if (svcs == NULL)
		return;
	for (i = 0; i < n; i++)
		svc_free_one(&svcs[i]);
	free(svcs);
}

/* Parse one logical line into svc; NULL or a static description. */
static const char *
parse_line(char *const *col, int default_maxproc, struct master_service *svc,
    char **detail)
{
	size_t ncol = strv_len(col), i;
	const char *why;

	if (ncol < 8)
		return "expected 8 or more columns";
	if (strcmp(col[1], "inet") == 0)
		why = check_inet_name(col[0]);
	else if (strcmp(col[1], "unix") == 0)
		why = check_unix_name(col[0]);
	else {
		*detail = xasprintf("bad transport type '%.50s'", col[1]);
		return "";
	}
	if (why != NULL) {
		*detail = xasprintf("%s '%.100s'", why, col[0]);
		return "";
	}
	if (parse_flag(col[2], 1, &svc->private_) != 0 ||
	    parse_flag(col[3], 1, &svc->unpriv) != 0 ||
	    parse_flag(col[4], 0, &svc->chroot_) != 0) {
		for (i = 2; i <= 4; i++)
			if (strcmp(col[i], "-") != 0 && strcmp(col[i], "y") != 0 &&
			    strcmp(col[i], "n") != 0)
				break;
		*detail = xasprintf("bad boolean '%.50s' in column %zu", col[i], i + 1);
		return "";
	}
	if (parse_num(col[5], 0, 1, &svc->wakeup) != 0) {
		*detail = xasprintf("bad wakeup time '%.50s'", col[5]);
		return "";
	}
	if (parse_num(col[6], default_maxproc, 0, &svc->maxproc) != 0) {
		*detail = xasprintf("bad process limit '%.50s'", col[6]);
		return "";
	}
	if (strcmp(col[7], "-") == 0 || strchr(col[7], '/') != NULL ||
	    strlen(col[7]) > 100) {
		*detail = xasprintf("bad command name '%.100s'", col[7]);
		return "";
	}
	for (i = 8; i < ncol; i++) {
		if (strcmp(col[i], "-o") != 0)
			continue;
		if (i + 1 >= ncol || col[i + 1][0] == '=' ||
		    strchr(col[i + 1], '=') == NULL) {
			*detail = xasprintf("-o requires name=value");
			return "";
		}
		i++;
	}
	svc->name = xstrdup(col[0]);
	svc->type = xstrdup(col[1]);
	svc->command = xstrdup(col[7]);
	svc->args = xcalloc(1, sizeof(char *));
	for (i = 8; i < ncol; i++)
		strv_push(&svc->args, col[i]);
	return NULL;
}

int
mastercf_load(const char *path, int default_maxproc,
    struct master_service **svcs_r, size_t *n_r, char **err_r)
{
	struct master_service *svcs = NULL, svc;
	struct buf line = BUF_INIT(0);
	struct lline ll;
	char *text = NULL, *detail = NULL;
	char **col = NULL;
	const char *why;
	size_t len, n = 0, i;
	int lineno, r;

	*svcs_r = NULL;
	*n_r = 0;
	*err_r = NULL;
	if (file_read_all(path, MASTERCF_FILE_MAX, &text, &len) != 0) {
		if (errno == EFBIG || errno == ENOBUFS)
			*err_r = xasprintf("%s: file too large", path);
		else
			*err_r = xasprintf("open %s: %s", path, strerror(errno));
		return -1;
	}
	lline_init(&ll, text, len);
	ll.max = 64 * 1024;
	while ((r = lline_next(&ll, &line, &lineno, &why)) != 0) {
		if (r < 0) {
			*err_r = xasprintf("%s:%d: %s", path, lineno, why);
			goto fail;
		}
		if (n >= MASTERCF_MAX_SERVICES) {
			*err_r = xasprintf("%s:%d: too many services", path, lineno);
			goto fail;
		}
		memset(&svc, 0, sizeof(svc));
		col = strv_split(line.data, " \t");
		why = parse_line(col, default_maxproc, &svc, &detail);
		strv_free(&col);
		if (why != NULL) {
			*err_r = xasprintf("%s:%d: %s", path, lineno,
			    detail != NULL ? detail : why);
			free(detail);
			goto fail;
		}
		svc.lineno = lineno;
		for (i = 0; i < n; i++) {
			if (strcmp(svcs[i].name, svc.name) == 0 &&
			    strcmp(svcs[i].type, svc.type) == 0) {
				*err_r = xasprintf("%s:%d: duplicate service %s/%s "
				    "(first at line %d)", path, lineno, svc.name,
				    svc.type, svcs[i].lineno);
				svc_free_one(&svc);
				goto fail;
			}
		}
		svcs = xreallocarray(svcs, n + 1, sizeof(*svcs));
		svcs[n++] = svc;
	}
	buf_free(&line);
	free(text);
	*svcs_r = svcs;
	*n_r = n;
	return 0;
fail:
	mastercf_free(svcs, n);
	buf_free(&line);
	free(text);
	return -1;
}
