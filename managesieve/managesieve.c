/*
 * managesieve - the post-login half of ManageSieve (RFC 5804): the broker
 * (root, on private/managesieve, fed by managesieve-login) and, as
 * "managesieve -W", the per-owner worker that serves every session of one
 * uid on one event loop. Both roles are lib/store/postlogin.c, shared with
 * pop3d and imapd.
 *
 * A session lists, uploads, checks (with the delivery agent's own Sieve
 * compiler, lib/sieve), activates, renames and deletes the user's scripts
 * in Pigeonhole's layout through lib/store/sievestore.h, the module local
 * reads the active script with (local_sieve_directory, by default
 * HOME/sieve/NAME.sieve, and the local_sieve_active link,
 * HOME/.dovecot.sieve), so what is activated here is what local runs.
 *
 * Trusts: the broker for the user, mailbox and home; nothing from the
 * client (script names pass sstore_name_ok before reaching a path).
 * Files: the scripts directory and the active link, as the mailbox owner.
 * Limits: local_sieve_max_script_size per script (twice it bounds the
 * literal), local_sieve_max_scripts, local_sieve_max_storage;
 * managesieve_hard_error_limit NO replies to commands not understood,
 * managesieve_timeout idle.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/config.h"
#include "proto/imap.h"
#include "proto/managesieve.h"
#include "proto/sasl.h"
#include "sieve/sieve.h"
#include "store/postlogin.h"
#include "store/sievestore.h"

/* Commands are small but for the script literal of PUTSCRIPT/CHECKSCRIPT. */
#define LINE_MAX_BYTES 8192

static struct {
	uint64_t timeout_ms;
	int hard_error_limit;
	uint64_t max_size, max_scripts, max_storage;
	const char *dir_spec, *active_spec;
	struct sieve_limits lim;
} conf;

static int nsessions;

struct msess {
	struct conn *conn;
	int fd;
	struct imap_parser *parser;
	struct sstore st;
	char *user, *rip;
	int tls, errors, quit;
	unsigned puts, gets, deletes;
};

static void msess_cb(struct conn *c, unsigned ev, void *ctx);

static void
reply(struct msess *s, const char *kind, const char *code, const char *text)
{
	struct buf b = BUF_INIT(0);

	msieve_reply(&b, kind, code, text);
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
}

static void
ok(struct msess *s, const char *text)
{
	reply(s, "OK", NULL, text);
}

static void
no(struct msess *s, const char *code, const char *text)
{
	reply(s, "NO", code, text);
}

/* A command not understood (RFC 5804 has no BAD): these, not a script
 * that does not compile or a name already taken, are what
 * managesieve_hard_error_limit counts. A Sieve editor checking a script
 * as its user types sends CHECKSCRIPT after CHECKSCRIPT that fails. */
static void
invalid(struct msess *s, const char *text)
{
	no(s, NULL, text);
	if (++s->errors >= conf.hard_error_limit) {
		reply(s, "BYE", NULL, "Too many invalid commands.");
		s->quit = 1;
	}
}

/* The store's answer as a reply (RFC 5804 section 1.3 response codes). */
static void
store_error(struct msess *s, int r, const char *what, char *err)
{
	switch (r) {
	case SSTORE_NOTFOUND:
		no(s, "NONEXISTENT", "There is no script by that name.");
		break;
	case SSTORE_EXISTS:
		no(s, "ALREADYEXISTS", "A script by that name already exists.");
		break;
	case SSTORE_ACTIVE:
		no(s, "ACTIVE", "You may not delete an active script.");
		break;
	case SSTORE_QUOTA:
		no(s, "QUOTA", err ? err : "Quota exceeded.");
		break;
	default:
		log_warnx("user=<%s>: %s: %s", s->user, what, err ? err : "failed");
		no(s, "TRYLATER", "Internal error occurred. Refer to server log for "
		    "more information.");
		break;
	}
	free(err);
}

/* A client's script name: 1 fine, 0 refused (the NO is sent). */
static int
name_ok(struct msess *s, const char *name)
{
	const char *why;

	if (sstore_name_ok(name, &why) == 0)
		return 1;
	invalid(s, why);
	return 0;
}

/* HAVESPACE and the check before PUTSCRIPT, with the specific codes of
 * RFC 5804 section 1.3: 1 fits, 0 not (the NO is sent). */
static int
fits(struct msess *s, const char *name, uint64_t size)
{
	char **v = NULL, *act = NULL, *err = NULL;
	size_t n;
	int known = 0;

	if (!name_ok(s, name))
		return 0;
	if (conf.max_size > 0 && size > conf.max_size) {
		no(s, "QUOTA/MAXSIZE", "Script is larger than the size limit.");
		return 0;
	}
	if (conf.max_scripts == 0)
		return 1;
	if (sstore_list(&s->st, &v, &act, &err) < 0) {
		store_error(s, -1, "list", err);
		return 0;
	}
	n = strv_len(v);
	for (size_t i = 0; i < n; i++)
		known |= strcmp(v[i], name) == 0;
	strv_free(&v);
	free(act);
	if (!known && n >= conf.max_scripts) {
		no(s, "QUOTA/MAXSCRIPTS", "Too many scripts.");
		return 0;
	}
	return 1;
}

static void
capabilities(struct msess *s)
{
	struct buf b = BUF_INIT(0);

	msieve_capabilities(&b, MSIEVE_CAP_AUTHED, sieve_extension_list(),
	    (unsigned long)conf.lim.redirects_max);
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
}

/* Compile src: 1 fine, 0 not (the NO is sent). */
static int
check_script(struct msess *s, const char *src, size_t len)
{
	struct sieve_script *sc = NULL;
	char *err = NULL, *msg;
	int line = 0;

	if (sieve_compile(src, len, &conf.lim, &sc, &line, &err) == 0) {
		sieve_free(&sc);
		return 1;
	}
	msg = xasprintf("line %d: %s", line, err ? err : "error");
	no(s, NULL, msg);
	free(msg);
	free(err);
	return 0;
}

static const struct imap_arg *
arg(const struct imap_command *c, size_t k)
{
	return imap_arg_child(c, 0, k);
}

/* Exactly n string arguments with no NUL in the names. */
static int
want_strings(struct msess *s, const struct imap_command *c, size_t n)
{
	if (c->args[0].nchildren != n)
		goto bad;
	for (size_t k = 0; k < n; k++) {
		const struct imap_arg *a = arg(c, k);
		if (a == NULL || (a->kind != IMAP_ARG_QUOTED && a->kind != IMAP_ARG_LITERAL
		    && !(a->kind == IMAP_ARG_ATOM && k == 1 && strcmp(c->name,
		    "HAVESPACE") == 0)))
			goto bad;
	}
	return 1;
bad:
	invalid(s, "Invalid arguments.");
	return 0;
}

static void
cmd_listscripts(struct msess *s)
{
	char **v = NULL, *act = NULL, *err = NULL;
	struct buf b = BUF_INIT(0);

	if (sstore_list(&s->st, &v, &act, &err) < 0) {
		store_error(s, -1, "list", err);
		return;
	}
	for (size_t i = 0; v[i] != NULL; i++) {
		imap_quote(&b, v[i], strlen(v[i]), IMAP_Q_UTF8);
		buf_puts(&b, act != NULL && strcmp(v[i], act) == 0 ? " ACTIVE\r\n" : "\r\n");
	}
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	strv_free(&v);
	free(act);
	ok(s, "Listscripts completed.");
}

static void
cmd_getscript(struct msess *s, const char *name)
{
	struct buf b = BUF_INIT(0);
	char *data = NULL, *err = NULL;
	size_t len;
	int r;

	if (!name_ok(s, name))
		return;
	if ((r = sstore_get(&s->st, name, &data, &len, &err)) < 0) {
		store_error(s, r, "get", err);
		return;
	}
	/* Always a literal: a script has line ends (section 2.9). */
	buf_printf(&b, "{%zu}\r\n", len);
	buf_append(&b, data, len);
	buf_puts(&b, "\r\n");
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	free(data);
	s->gets++;
	ok(s, "Getscript completed.");
}

static void
cmd_run(struct msess *s, const struct imap_command *c)
{
	const char *n = c->name;
	const struct imap_arg *a0 = arg(c, 0), *a1 = arg(c, 1);
	size_t argc = c->args[0].nchildren;
	char *err = NULL;
	int r;

	if (strcmp(n, "CAPABILITY") == 0 && argc == 0) {
		capabilities(s);
		ok(s, "Capability completed.");
	} else if (strcmp(n, "NOOP") == 0 && argc <= 1) {
		if (a0 != NULL && imap_arg_is_string(a0)) {
			struct buf code = BUF_INIT(0);
			buf_puts(&code, "TAG ");
			imap_quote(&code, a0->str, a0->len, IMAP_Q_UTF8);
			reply(s, "OK", buf_cstr(&code), "Done");
			buf_free(&code);
		} else
			ok(s, "NOOP completed.");
	} else if (strcmp(n, "LOGOUT") == 0 && argc == 0) {
		ok(s, "Logout completed.");
		s->quit = 2;
	} else if (strcmp(n, "LISTSCRIPTS") == 0 && argc == 0) {
		cmd_listscripts(s);
	} else if (strcmp(n, "GETSCRIPT") == 0) {
		if (want_strings(s, c, 1))
			cmd_getscript(s, a0->str);
	} else if (strcmp(n, "HAVESPACE") == 0) {
		char *end;
		unsigned long long size;
		if (!want_strings(s, c, 2))
			return;
		size = strtoull(a1->str, &end, 10);
		if (a1->len == 0 || *end != '\0') {
			invalid(s, "Invalid size.");
			return;
		}
		if (fits(s, a0->str, size))
			ok(s, "Putscript would succeed.");
	} else if (strcmp(n, "PUTSCRIPT") == 0) {
		if (!want_strings(s, c, 2) || !fits(s, a0->str, a1->len)
		    || !check_script(s, a1->str, a1->len))
			return;
		if ((r = sstore_put(&s->st, a0->str, a1->str, a1->len, &err)) < 0)
			store_error(s, r, "put", err);
		else {
			s->puts++;
			log_info("user=<%s>: script \"%s\" stored (%zu bytes)", s->user,
			    a0->str, a1->len);
			ok(s, "Putscript completed.");
		}
	} else if (strcmp(n, "CHECKSCRIPT") == 0) {
		if (want_strings(s, c, 1) && check_script(s, a0->str, a0->len))
			ok(s, "Script is valid.");
	} else if (strcmp(n, "SETACTIVE") == 0) {
		if (!want_strings(s, c, 1) || (*a0->str != '\0' && !name_ok(s, a0->str)))
			return;
		if ((r = sstore_activate(&s->st, *a0->str ? a0->str : NULL, &err)) < 0)
			store_error(s, r, "setactive", err);
		else {
			log_info("user=<%s>: active script: \"%s\"", s->user, a0->str);
			ok(s, *a0->str ? "Setactive completed." : "No script is active now.");
		}
	} else if (strcmp(n, "DELETESCRIPT") == 0) {
		if (!want_strings(s, c, 1) || !name_ok(s, a0->str))
			return;
		if ((r = sstore_delete(&s->st, a0->str, &err)) < 0)
			store_error(s, r, "delete", err);
		else {
			s->deletes++;
			ok(s, "Deletescript completed.");
		}
	} else if (strcmp(n, "RENAMESCRIPT") == 0) {
		if (!want_strings(s, c, 2) || !name_ok(s, a0->str) || !name_ok(s, a1->str))
			return;
		if ((r = sstore_rename(&s->st, a0->str, a1->str, &err)) < 0)
			store_error(s, r, "rename", err);
		else
			ok(s, "Renamescript completed.");
	} else if (strcmp(n, "STARTTLS") == 0 || strcmp(n, "AUTHENTICATE") == 0) {
		invalid(s, "Already authenticated.");
	} else {
		invalid(s, "Unknown command.");
	}
}

static void
stats_line(struct msess *s, const char *why)
{
	log_info("Disconnected: %s put=%u, get=%u, delete=%u: user=<%s>, rip=%s%s",
	    why, s->puts, s->gets, s->deletes, s->user, s->rip, s->tls ? ", TLS" : "");
}

static void
session_free(struct msess *s)
{
	conn_free(&s->conn);
	close(s->fd);
	imap_parser_free(&s->parser);
	sstore_free(&s->st);
	free(s->user);
	free(s->rip);
	free(s);
	nsessions--;
	postlogin_session_gone();
}

static void
process(struct msess *s)
{
	const char *in;
	size_t n, used;
	enum imap_result r;

	while (!s->quit && s->conn != NULL) {
		in = conn_in(s->conn, &n);
		if (n == 0)
			break;
		r = imap_parse(s->parser, in, n, &used);
		conn_in_consume(s->conn, used);
		if (r == IMAP_NEED_MORE)
			break;
		if (r == IMAP_LITERAL) {
			/* No continuation request in ManageSieve: a script too
			 * large for the quota is refused after it was read. */
			imap_literal_accept(s->parser);
		} else if (r == IMAP_ERROR) {
			if (imap_parser_must_close(s->parser)) {
				reply(s, "BYE", "QUOTA/MAXSIZE", imap_parser_error(s->parser));
				s->quit = 1;
			} else
				invalid(s, imap_parser_error(s->parser));
		} else
			cmd_run(s, imap_parser_command(s->parser));
	}
}

static void
msess_cb(struct conn *c, unsigned ev, void *ctx)
{
	struct msess *s = ctx;

	if (ev & CONN_EV_TIMEOUT) {
		reply(s, "BYE", NULL, "Disconnected for inactivity.");
		(void)conn_flush(c);
		stats_line(s, "Inactivity");
		session_free(s);
		return;
	}
	if (ev & (CONN_EV_EOF | CONN_EV_ERROR)) {
		stats_line(s, "Connection closed");
		session_free(s);
		return;
	}
	process(s);
	(void)conn_flush(c);
	if (s->quit && conn_out_len(c) == 0) {
		stats_line(s, s->quit == 2 ? "Logged out" : "Too many invalid commands");
		session_free(s);
	}
}

static void
session_start(struct loop *l, const struct ipc_msg *m, int fd)
{
	struct msess *s = xcalloc(1, sizeof(*s));
	const char *mbox = ipc_get(m, "mailbox"), *input = ipc_get(m, "input");
	const char *tls = ipc_get(m, "tls");
	struct imap_limits lim = IMAP_LIMITS_DEFAULT;
	char *home, *dir, *act;

	nsessions++;
	s->fd = fd;
	s->user = xstrdup(ipc_get(m, "user") ? ipc_get(m, "user") : "");
	s->rip = xstrdup(ipc_get(m, "rip") ? ipc_get(m, "rip") : "");
	s->tls = tls != NULL && strcmp(tls, "1") == 0;
	home = sstore_home(ipc_get(m, "home"), mbox ? mbox : "");
	dir = sstore_expand(conf.dir_spec, home);
	act = sstore_expand(conf.active_spec, home);
	sstore_init(&s->st, dir, act);
	s->st.max_size = (size_t)conf.max_size;
	s->st.max_scripts = conf.max_scripts;
	s->st.max_storage = conf.max_storage;
	free(home);
	free(dir);
	free(act);
	lim.line_max = LINE_MAX_BYTES;
	/* A script over the size limit is read (to stay in step with the
	 * client) only up to twice the limit; past that the session ends. */
	lim.literal_max = conf.max_size > 0 ? 2 * conf.max_size : 16u << 20;
	lim.literal_total_max = lim.literal_max + 1024;
	lim.depth_max = 1;
	lim.args_max = 8;
	lim.untagged = 1;
	s->parser = imap_parser_new(&lim);
	s->conn = conn_new(l, fd, LINE_MAX_BYTES + 4096, msess_cb, s);
	conn_set_timeout(s->conn, conf.timeout_ms);
	if (input != NULL && *input != '\0') {
		struct buf raw = BUF_INIT(0);
		if (sasl_b64_decode(input, strlen(input), &raw, 8192) == 0)
			(void)conn_in_inject(s->conn, raw.data, raw.len);
		buf_free(&raw);
	}
	if (mbox == NULL || *mbox == '\0') {
		reply(s, "NO", "TRYLATER", "Mailbox is unavailable.");
		s->quit = 1;
	} else
		ok(s, "Logged in.");
	if (conn_flush(s->conn) != 0 && s->quit)
		session_free(s);
}

static int
session_count(void)
{
	return nsessions;
}

static void
worker_init(struct loop *l)
{
	(void)l;
	conf.timeout_ms = (uint64_t)config_time("managesieve_timeout") * 1000;
	if (conf.timeout_ms == 0)
		conf.timeout_ms = 1800 * 1000;
	conf.hard_error_limit = (int)config_int("managesieve_hard_error_limit");
	if (conf.hard_error_limit < 1)
		conf.hard_error_limit = 1;
	conf.max_size = (uint64_t)config_int("local_sieve_max_script_size");
	conf.max_scripts = (uint64_t)config_int("local_sieve_max_scripts");
	conf.max_storage = (uint64_t)config_int("local_sieve_max_storage");
	conf.dir_spec = config_str("local_sieve_directory");
	conf.active_spec = config_str("local_sieve_active");
	sieve_limits_default(&conf.lim);
}

int
main(int argc, char **argv)
{
	static const struct postlogin_ops ops = {
		.name = "managesieve",
		.worker_init = worker_init,
		.session_start = session_start,
		.session_count = session_count,
	};

	return postlogin_main(argc, argv, &ops);
}
