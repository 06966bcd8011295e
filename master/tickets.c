/*
 * tickets - the TLS session-ticket key file that every TLS server child
 * (smtpd, pop3-login, imap-login, managesieve-login) reads at pre_init,
 * so a ticket one process issued resumes on any other (util/tlskeys.h).
 *
 * master makes a random secret at start and rewrites
 * data_directory/tls_ticket_keys at each epoch turn (every
 * smtpd_tls_session_cache_timeout), holding the current epoch's secret
 * and the previous epoch's key only, so the file never holds anything an
 * older ticket could be opened with beyond one epoch back.
 *
 * Invariants: the file is created by this process (O_EXCL after unlink,
 * never a name someone else prepared), mode 0600, owner master's user
 * (root, or the instance user when unprivileged); data_directory belongs
 * to mail_owner, so readers check owner and mode (tls.c) before trusting
 * it. The secret reaches a child only through that file, which only the
 * TLS servers open, while still root: no child exec'd by local, pipe or
 * spawn inherits it (master's memory is replaced by exec).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/tlskeys.h"
#include "mail/config.h"
#include "master.h"

static struct tlskeys keys;
static int have_keys;
static uint64_t turn_timer;
static struct loop *tloop;

static void
keys_write(void)
{
	char *path = xasprintf("%s/%s", mconf.data_dir, TLSKEYS_FILE);
	char *tmp = xasprintf("%s.tmp", path);
	char line[TLSKEYS_TEXT_MAX];
	int fd;

	if (tlskeys_format(&keys, line, sizeof(line)) < 0) {
		log_warnx("%s: key line too long", path);
		goto out;
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warn("%s: TLS session tickets will resume only on the "
		    "process that issued them", tmp);
		goto out;
	}
	if (fchmod(fd, 0600) < 0 || write_all(fd, line, strlen(line)) < 0 ||
	    close(fd) < 0 || rename(tmp, path) < 0) {
		log_warn("write %s", path);
		(void)unlink(tmp);
	}
out:
	OPENSSL_cleanse(line, sizeof(line));
	free(tmp);
	free(path);
}

static void turn_cb(struct loop *l, void *ctx);

static void
turn_arm(void)
{
	long long now = (long long)time(NULL);
	long long next = (keys.epoch + 1) * keys.interval;
	uint64_t ms = next > now ? (uint64_t)(next - now) * 1000 : 0;

	/* A little after the turn, so readers never see next epoch's secret
	 * early (they ratchet by their own clocks either way). */
	turn_timer = loop_timer_add(tloop, ms + 100, turn_cb, NULL);
}

static void
turn_cb(struct loop *l, void *ctx)
{
	(void)l;
	(void)ctx;
	turn_timer = 0;
	tlskeys_advance(&keys, time(NULL));
	keys_write();
	turn_arm();
}

/* The epoch length: the ticket lifetime smtpd is configured with (0 turns
 * smtpd's tickets off; the login servers keep using the default). */
static int
interval_conf(void)
{
	long long t = config_time("smtpd_tls_session_cache_timeout");

	if (t <= 0)
		return 3600;
	return t > TLSKEYS_INTERVAL_MAX ? TLSKEYS_INTERVAL_MAX : (int)t;
}

void
tickets_start(struct loop *l)
{
	unsigned char secret[TLSKEYS_SECRET_LEN];
	int interval = interval_conf();

	tloop = l;
	if (have_keys && keys.interval == interval)
		return;
	if (turn_timer != 0) {
		loop_timer_cancel(l, turn_timer);
		turn_timer = 0;
	}
	if (RAND_bytes(secret, sizeof(secret)) != 1) {
		log_warnx("no random bytes for TLS ticket keys; tickets resume "
		    "only on the process that issued them");
		return;
	}
	tlskeys_init(&keys, secret, interval, (long long)time(NULL) / interval);
	OPENSSL_cleanse(secret, sizeof(secret));
	have_keys = 1;
	keys_write();
	turn_arm();
}

void
tickets_stop(void)
{
	char *path;

	if (!have_keys)
		return;
	/* Nothing left to serve: the secret need not outlive us on disk
	 * (the next master makes a new chain anyway). */
	path = xasprintf("%s/%s", mconf.data_dir, TLSKEYS_FILE);
	(void)unlink(path);
	free(path);
	tlskeys_wipe(&keys);
	have_keys = 0;
}
