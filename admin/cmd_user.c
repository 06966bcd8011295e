/*
 * cmd_user - "postern user": the users the auth daemon knows.
 *
 *   postern user add USER [--password-stdin] [--scheme SCHEME]
 *   postern user passwd USER [--password-stdin] [--scheme SCHEME]
 *   postern user del USER
 *   postern user chpasswd [--check-old] [--scheme SCHEME]
 *   postern user list
 *   postern user rebuild        (after editing the text file by hand)
 *
 * The source is a Dovecot passwd-file style text file, passwd_file
 * (default $config_directory/passwd), one "user:{SCHEME}hash" per line;
 * other lines (comments, extra ":uid:gid:..." fields) are kept as they
 * are. After every change the table lmdb:$passwd_file is rebuilt.
 *
 * The password comes from the terminal without echo (asked twice), or,
 * with --password-stdin or when stdin is not a terminal, from the first
 * line of stdin. New hashes use YESCRYPT unless --scheme says otherwise.
 *
 * "chpasswd" reads "user:password" lines on stdin as chpasswd(8) does;
 * with --check-old the lines are "user:old:new" and each old password
 * must verify against the stored hash (for webmail password plugins,
 * which run it as the mail user's agent). All lines or none: one unknown
 * user, bad line or wrong old password changes nothing. Extra fields of
 * an entry (":uid:gid:...") are kept.
 *
 * Invariants: the text file is replaced atomically (mode 0600) under an
 * exclusive lock on $passwd_file.lock, so two runs cannot lose an update.
 * The table is built in a fresh 0700 directory beside the file and only
 * then given its final mode (0640 root:<auth_owner's group> when run as
 * root, else 0600) and renamed into place: map_build's own 0644 is never
 * visible, and no other user ever reads a hash. Names are lower-cased,
 * as map lookups fold keys.
 *
 * Exit: 0; 1 user exists (add) or is missing (passwd, del, chpasswd) or an
 * old password is wrong (chpasswd --check-old); 64 usage;
 * 65 bad name or password; 74 I/O; 78 bad configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include "admin.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "mail/passwd.h"
#include "proto/sasl.h"

#define USER_FILE_MAX ((size_t)64 << 20)

static int
usage(void)
{
	fprintf(stderr,
	    "usage: postern user add USER [--password-stdin] [--scheme SCHEME]\n"
	    "       postern user passwd USER [--password-stdin] [--scheme SCHEME]\n"
	    "       postern user del USER\n"
	    "       postern user chpasswd [--check-old] [--scheme SCHEME]\n"
	    "       postern user list\n"
	    "       postern user rebuild\n");
	return EX_USAGE;
}

static char *
passwd_path(void)
{
	const char *f = config_get("passwd_file");

	if (f != NULL && *f != '\0')
		return xstrdup(f);
	return xasprintf("%s/passwd", config_dir());
}

/* Same rules as the auth daemon: no blanks, controls, ':' or '\'. */
static int
user_name_ok(const char *u)
{
	size_t n = strlen(u), i;

	if (n == 0 || n > SASL_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)u[i];

		if (ch <= 0x20 || ch == 0x7f || ch == ':' || ch == '\\' || ch == '#')
			return 0;
	}
	return 1;
}

/* One line of input of at most max bytes; the trailing newline (and CR)
 * removed. NULL at EOF, or with errno EOVERFLOW for a longer line. */
static char *
read_line_max(FILE *fp, size_t max)
{
	struct buf b = BUF_INIT(max);
	int ch;

	while ((ch = getc(fp)) != EOF && ch != '\n') {
		if (buf_putc(&b, ch) < 0) {
			sasl_wipe(b.data, b.cap);
			buf_free(&b);
			errno = EOVERFLOW;
			return NULL;
		}
	}
	if (ch == EOF && b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	if (b.len > 0 && b.data[b.len - 1] == '\r')
		buf_truncate(&b, b.len - 1);
	return buf_steal(&b);
}

static char *
read_line(FILE *fp)
{
	return read_line_max(fp, SASL_PASS_MAX + 2);
}

static char *
prompt_noecho(const char *prompt)
{
	struct termios old, quiet;
	char *pw;
	int tty = fileno(stdin);

	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	if (tcgetattr(tty, &old) < 0)
		return read_line(stdin);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	(void)tcsetattr(tty, TCSAFLUSH, &quiet);
	pw = read_line(stdin);
	(void)tcsetattr(tty, TCSAFLUSH, &old);
	fprintf(stderr, "\n");
	return pw;
}

/* The new password; NULL after saying why. */
static char *
get_password(int from_stdin)
{
	char *a, *b;

	if (from_stdin || !isatty(fileno(stdin))) {
		a = read_line(stdin);
		if (a == NULL) {
			fprintf(stderr, "postern: no password on standard input\n");
			return NULL;
		}
	} else {
		a = prompt_noecho("New password: ");
		b = a != NULL ? prompt_noecho("Retype new password: ") : NULL;
		if (a == NULL || b == NULL || strcmp(a, b) != 0) {
			fprintf(stderr, "postern: passwords do not match\n");
			if (a != NULL)
				sasl_wipe(a, strlen(a));
			free(a);
			if (b != NULL)
				sasl_wipe(b, strlen(b));
			free(b);
			return NULL;
		}
		sasl_wipe(b, strlen(b));
		free(b);
	}
	if (*a == '\0' || strlen(a) > SASL_PASS_MAX) {
		fprintf(stderr, "postern: the password must be 1 to %d bytes\n",
		    SASL_PASS_MAX);
		free(a);
		return NULL;
	}
	return a;
}

/* The user name of a source line, or NULL for comments and blank lines. */
static char *
line_user(const char *line, size_t len)
{
	size_t i = 0, start;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i > 0 || i == len || line[i] == '#')
		return NULL;   /* continuation, blank or comment */
	start = i;
	while (i < len && line[i] != ':' && line[i] != ' ' && line[i] != '\t')
		i++;
	return str_lower(xstrndup(line + start, i - start));
}

/* Build lmdb:path with a private mode, never exposing the hashes. */
static int
build_table(const char *path, const char *text, size_t len)
{
	const char *owner = config_get("auth_owner");
	char *dir = xstrdup(path), *slash, *tmpdir, *src = NULL, *db = NULL;
	char *spec = NULL, *dst = NULL, *err = NULL;
	struct passwd *pw;
	gid_t gid = (gid_t)-1;
	mode_t mode = 0600;
	int ret = EX_IOERR, r;

	if (owner == NULL || *owner == '\0')
		owner = "postern-auth";
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	tmpdir = xasprintf("%s/.passwd-build.XXXXXX", dir);
	if (mkdtemp(tmpdir) == NULL) {
		fprintf(stderr, "postern: mkdtemp %s: %s\n", tmpdir, strerror(errno));
		goto out_notmp;
	}
	src = xasprintf("%s/passwd", tmpdir);
	db = xasprintf("%s/passwd.lmdb", tmpdir);
	spec = xasprintf("lmdb:%s", src);
	dst = xasprintf("%s.lmdb", path);
	if (file_write_atomic(src, text, len, 0600) < 0) {
		fprintf(stderr, "postern: write %s: %s\n", src, strerror(errno));
		goto out;
	}
	r = map_build(spec, &err);
	if (r != 0) {
		/* errors name the copy; say which file the admin edits */
		fprintf(stderr, "postern: %s (a copy of %s)\n", err ? err : "build failed",
		    path);
		ret = r == -2 ? EX_DATAERR : EX_IOERR;
		goto out;
	}
	if (geteuid() == 0) {
		if ((pw = getpwnam(owner)) != NULL) {
			gid = pw->pw_gid;
			mode = 0640;
		} else
			fprintf(stderr, "postern: warning: auth_owner \"%s\" is not a "
			    "known user: %s is readable by root only\n", owner, dst);
	}
	if ((gid != (gid_t)-1 && chown(db, 0, gid) < 0) || chmod(db, mode) < 0 ||
	    rename(db, dst) < 0) {
		fprintf(stderr, "postern: install %s: %s\n", dst, strerror(errno));
		goto out;
	}
	if (fsync_parent(dst) < 0) {
		fprintf(stderr, "postern: fsync directory of %s: %s\n", dst,
		    strerror(errno));
		goto out;
	}
	ret = 0;
out:
	(void)unlink(db);
	(void)unlink(src);
	(void)rmdir(tmpdir);
out_notmp:
	free(err);
	free(src);
	free(db);
	free(spec);
	free(dst);
	free(tmpdir);
	free(dir);
	return ret;
}

/* At most this many lines per "chpasswd" run: the input is held in memory. */
#define CHPASSWD_MAX_LINES 100000

struct change {
	char *user;
	char *rest;     /* "new", or "old:new" with --check-old */
	char *hash;     /* the new "{SCHEME}hash" once checked */
};

static void
change_free(struct change *c)
{
	free(c->user);
	if (c->rest != NULL)
		sasl_wipe(c->rest, strlen(c->rest));
	free(c->rest);
	free(c->hash);
}

/* The new password of c, checked: with check_old, "old:new" is split at the
 * colon where the old part verifies against stored (a password may itself
 * hold colons, a user name never does). NULL after saying why; *wrong is
 * set when no old password matched. */
static const char *
change_new_password(struct change *c, int check_old, const char *stored,
    int *wrong)
{
	char *p;

	*wrong = 0;
	if (!check_old)
		return c->rest;
	for (p = strchr(c->rest, ':'); p != NULL; p = strchr(p + 1, ':')) {
		enum passwd_result r;

		*p = '\0';
		r = passwd_verify(c->rest, stored);
		*p = ':';
		if (r == PASSWD_OK)
			return p + 1;
	}
	*wrong = 1;
	return NULL;
}

/*
 * "postern user chpasswd": every line of stdin changes one password; the
 * file is written once, after every line was checked. Returns the exit
 * status. The caller holds the lock; text/len is the current file.
 */
static int
chpasswd_apply(const char *path, const char *text, size_t len, int check_old,
    const char *scheme)
{
	struct change *ch = NULL;
	struct buf out = BUF_INIT(0);
	size_t n = 0, cap = 0, i, lineno = 0;
	const char *p, *end, *nl, *err = NULL;
	char *line, *colon;
	int ret = EX_DATAERR;

	for (;;) {
		line = read_line_max(stdin, SASL_NAME_MAX + 2 * SASL_PASS_MAX + 4);
		if (line == NULL) {
			if (errno == EOVERFLOW) {
				fprintf(stderr, "postern: line %zu: too long\n", lineno + 1);
				goto out;
			}
			break;
		}
		lineno++;
		if (*line == '\0') {
			free(line);
			continue;
		}
		if (n == CHPASSWD_MAX_LINES) {
			fprintf(stderr, "postern: more than %d lines\n", CHPASSWD_MAX_LINES);
			sasl_wipe(line, strlen(line));
			free(line);
			goto out;
		}
		colon = strchr(line, ':');
		if (colon != NULL)
			*colon = '\0';
		if (colon == NULL || !user_name_ok(line) || colon[1] == '\0' ||
		    (check_old && strchr(colon + 1, ':') == NULL)) {
			fprintf(stderr, "postern: line %zu: expected \"%s\"\n", lineno,
			    check_old ? "user:old:new" : "user:password");
			sasl_wipe(line, strlen(line));
			free(line);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			ch = xreallocarray(ch, cap, sizeof *ch);
		}
		ch[n].user = str_lower(xstrdup(line));
		ch[n].rest = xstrdup(colon + 1);
		ch[n].hash = NULL;
		sasl_wipe(line, strlen(line));
		free(line);
		for (i = 0; i < n; i++)
			if (strcmp(ch[i].user, ch[n].user) == 0)
				break;
		n++;
		if (i < n - 1) {
			fprintf(stderr, "postern: line %zu: %s given twice\n", lineno,
			    ch[i].user);
			goto out;
		}
	}
	if (n == 0) {
		fprintf(stderr, "postern: no \"user:password\" lines on standard input\n");
		goto out;
	}

	/* Copy the file, replacing the password field of each named user. */
	for (p = text, end = text + len; p < end; p = nl) {
		char *u, *stored;
		const char *val, *field_end, *newpw;
		int wrong;

		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl != NULL ? nl + 1 : end;
		u = line_user(p, (size_t)(nl - p));
		i = n;
		if (u != NULL)
			for (i = 0; i < n; i++)
				if (strcmp(ch[i].user, u) == 0)
					break;
		free(u);
		if (i == n || ch[i].hash != NULL) {
			buf_append(&out, p, (size_t)(nl - p));
			if (nl == end && nl > p && nl[-1] != '\n')
				buf_putc(&out, '\n');
			continue;
		}
		val = memchr(p, ':', (size_t)(nl - p));
		val = val != NULL ? val + 1 : nl;
		{
			char *v = xstrndup(val, (size_t)(nl - val));

			v[strcspn(v, "\r\n")] = '\0';
			stored = passwd_field(v);
			free(v);
		}
		field_end = val + strlen(stored);
		newpw = change_new_password(&ch[i], check_old, stored, &wrong);
		sasl_wipe(stored, strlen(stored));
		free(stored);
		if (newpw == NULL) {
			fprintf(stderr, "postern: %s: the old password is wrong\n", ch[i].user);
			ret = 1;
			goto out;
		}
		if (*newpw == '\0' || strlen(newpw) > SASL_PASS_MAX) {
			fprintf(stderr, "postern: %s: the password must be 1 to %d bytes\n",
			    ch[i].user, SASL_PASS_MAX);
			goto out;
		}
		if ((ch[i].hash = passwd_hash(newpw, scheme, &err)) == NULL) {
			fprintf(stderr, "postern: %s\n", err);
			ret = EX_SOFTWARE;
			goto out;
		}
		buf_printf(&out, "%s:%s", ch[i].user, ch[i].hash);
		buf_append(&out, field_end, (size_t)(nl - field_end));
		if (nl == end && nl > p && nl[-1] != '\n')
			buf_putc(&out, '\n');
	}
	for (i = 0; i < n; i++)
		if (ch[i].hash == NULL) {
			fprintf(stderr, "postern: no such user: %s\n", ch[i].user);
			ret = 1;
			goto out;
		}
	if (file_write_atomic(path, buf_cstr(&out), out.len, 0600) < 0) {
		fprintf(stderr, "postern: write %s: %s\n", path, strerror(errno));
		ret = EX_IOERR;
		goto out;
	}
	ret = build_table(path, buf_cstr(&out), out.len);
	for (i = 0; ret == 0 && i < n; i++)
		fprintf(stderr, "postern: %s password changed\n", ch[i].user);
out:
	for (i = 0; i < n; i++)
		change_free(&ch[i]);
	free(ch);
	if (out.data != NULL)
		sasl_wipe(out.data, out.cap);
	buf_free(&out);
	return ret;
}

enum op { OP_ADD, OP_PASSWD, OP_DEL, OP_LIST, OP_REBUILD, OP_CHPASSWD };

int
cmd_user(int argc, char **argv)
{
	struct buf out = BUF_INIT(0);
	const char *user_arg = NULL, *scheme = NULL, *err = NULL, *p, *end, *nl;
	char *path = NULL, *lockpath = NULL, *text = NULL, *user = NULL;
	char *pw = NULL, *hash = NULL, *u;
	size_t len = 0;
	int from_stdin = 0, check_old = 0, found = 0, lockfd = -1, ret = EX_IOERR, i;
	enum op op;

	if (argc < 1)
		return usage();
	if (strcmp(argv[0], "add") == 0)
		op = OP_ADD;
	else if (strcmp(argv[0], "passwd") == 0)
		op = OP_PASSWD;
	else if (strcmp(argv[0], "del") == 0)
		op = OP_DEL;
	else if (strcmp(argv[0], "list") == 0)
		op = OP_LIST;
	else if (strcmp(argv[0], "rebuild") == 0)
		op = OP_REBUILD;
	else if (strcmp(argv[0], "chpasswd") == 0)
		op = OP_CHPASSWD;
	else
		return usage();
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0 &&
		    (op == OP_ADD || op == OP_PASSWD))
			from_stdin = 1;
		else if (strcmp(argv[i], "--scheme") == 0 && i + 1 < argc &&
		    (op == OP_ADD || op == OP_PASSWD || op == OP_CHPASSWD))
			scheme = argv[++i];
		else if (strcmp(argv[i], "--check-old") == 0 && op == OP_CHPASSWD)
			check_old = 1;
		else if (argv[i][0] != '-' && user_arg == NULL &&
		    (op == OP_ADD || op == OP_PASSWD || op == OP_DEL))
			user_arg = argv[i];
		else
			return usage();
	}
	if ((op == OP_ADD || op == OP_PASSWD || op == OP_DEL) && user_arg == NULL)
		return usage();
	if (scheme != NULL && passwd_scheme_canon(scheme) == NULL) {
		fprintf(stderr, "postern: unknown password scheme \"%s\" (use YESCRYPT, "
		    "SHA512-CRYPT, SHA256-CRYPT or BLF-CRYPT)\n", scheme);
		return EX_USAGE;
	}
	if (user_arg != NULL) {
		if (!user_name_ok(user_arg)) {
			fprintf(stderr, "postern: invalid user name \"%s\"\n", user_arg);
			return EX_DATAERR;
		}
		user = str_lower(xstrdup(user_arg));
	}

	path = passwd_path();
	(void)umask(077);
	if (op != OP_LIST) {
		lockpath = xasprintf("%s.lock", path);
		lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0) {
			fprintf(stderr, "postern: lock %s: %s\n", lockpath, strerror(errno));
			goto out;
		}
	}
	if (file_read_all(path, USER_FILE_MAX, &text, &len) < 0) {
		if (errno != ENOENT) {
			fprintf(stderr, "postern: read %s: %s\n", path, strerror(errno));
			goto out;
		}
		text = xstrdup("");
		len = 0;
	}
	if (op == OP_CHPASSWD) {
		ret = chpasswd_apply(path, text, len, check_old, scheme);
		goto out;
	}

	/* Copy every line but the user's; note whether it was there. */
	for (p = text, end = text + len; p < end; p = nl) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl != NULL ? nl + 1 : end;
		u = line_user(p, (size_t)(nl - p));
		if (op == OP_LIST) {
			if (u != NULL) {
				const char *c = memchr(p, ':', (size_t)(nl - p));
				const char *q = c != NULL ? c + 1 : NULL;
				size_t sl = 0;

				if (q != NULL && q < nl && *q == '{') {
					const char *e = memchr(q, '}', (size_t)(nl - q));

					sl = e != NULL ? (size_t)(e - q - 1) : 0;
				}
				printf("%s%s%.*s\n", u, sl ? " " : "", (int)sl, sl ? q + 1 : "");
			}
			free(u);
			continue;
		}
		if (u != NULL && user != NULL && strcmp(u, user) == 0) {
			found = 1;
			free(u);
			/* continuation lines of this entry go with it */
			while (nl < end && (*nl == ' ' || *nl == '\t')) {
				const char *n2 = memchr(nl, '\n', (size_t)(end - nl));

				nl = n2 != NULL ? n2 + 1 : end;
			}
			continue;
		}
		free(u);
		buf_append(&out, p, (size_t)(nl - p));
		if (nl == end && nl > p && nl[-1] != '\n')
			buf_putc(&out, '\n');
	}
	if (op == OP_LIST) {
		ret = 0;
		goto out;
	}
	if (op == OP_ADD && found) {
		fprintf(stderr, "postern: user %s already exists\n", user);
		ret = 1;
		goto out;
	}
	if ((op == OP_PASSWD || op == OP_DEL) && !found) {
		fprintf(stderr, "postern: no such user: %s\n", user);
		ret = 1;
		goto out;
	}
	if (op == OP_ADD || op == OP_PASSWD) {
		if ((pw = get_password(from_stdin)) == NULL) {
			ret = EX_DATAERR;
			goto out;
		}
		hash = passwd_hash(pw, scheme, &err);
		sasl_wipe(pw, strlen(pw));
		if (hash == NULL) {
			fprintf(stderr, "postern: %s\n", err);
			ret = EX_SOFTWARE;
			goto out;
		}
		buf_printf(&out, "%s:%s\n", user, hash);
	}
	if (op != OP_REBUILD &&
	    file_write_atomic(path, buf_cstr(&out), out.len, 0600) < 0) {
		fprintf(stderr, "postern: write %s: %s\n", path, strerror(errno));
		goto out;
	}
	ret = build_table(path, buf_cstr(&out), out.len);
	if (ret == 0 && op != OP_REBUILD)
		fprintf(stderr, "postern: %s %s\n", user, op == OP_ADD ? "added" :
		    op == OP_DEL ? "deleted" : "password changed");
out:
	if (lockfd >= 0)
		close(lockfd);
	if (out.data != NULL)
		sasl_wipe(out.data, out.cap);
	buf_free(&out);
	free(hash);
	free(pw);
	free(text);
	free(user);
	free(path);
	free(lockpath);
	return ret;
}
