/*
 * imapd - the post-login half of IMAP: the mailbox broker (root, on
 * private/imapd, fed by imap-login) and, as "imapd -W", the per-owner
 * worker that serves every IMAP session of one uid on one event loop
 * (session.c), with the mailboxes it has open shared by its sessions and
 * watched with inotify (mailbox.c). Both roles are lib/store/postlogin.c,
 * shared with pop3d. See doc/ARCHITECTURE.md ("IMAP").
 *
 * Trusts: the broker for the user and mailbox; nothing from the client.
 * Files: the user's Maildir and its folders, their postern.index, as the
 * mailbox owner only.
 */
#include "util/loop.h"
#include "mail/config.h"
#include "store/postlogin.h"
#include "imapd.h"

struct imapd_conf imapd_conf;

static void
worker_init(struct loop *l)
{
	long long lim = config_int("message_size_limit");

	imapd_conf.timeout_ms = (uint64_t)config_time("imapd_timeout") * 1000;
	if (imapd_conf.timeout_ms == 0)
		imapd_conf.timeout_ms = 1800 * 1000;
	imapd_conf.idle_notify_ms = (uint64_t)config_time("imapd_idle_notify_interval") * 1000;
	imapd_conf.hard_error_limit = (int)config_int("imapd_hard_error_limit");
	if (imapd_conf.hard_error_limit < 1)
		imapd_conf.hard_error_limit = 1;
	imapd_conf.userip_limit = (int)config_int("imapd_client_connection_limit");
	/* APPENDLIMIT is what smtpd would accept: a message the system
	 * refuses by mail is refused by APPEND too. 0 (no limit) still
	 * gets one, since the literal is held in memory. */
	imapd_conf.append_limit = lim > 0 && lim < (1LL << 30) ? (uint64_t)lim
	    : (uint64_t)1 << 30;
	imbox_init(l);
}

int
main(int argc, char **argv)
{
	static const struct postlogin_ops ops = {
		.name = "imapd",
		.worker_init = worker_init,
		.session_start = session_start,
		.session_count = session_count,
	};

	return postlogin_main(argc, argv, &ops);
}
