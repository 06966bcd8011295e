/*
 * pop3d - the post-login half of POP3: the mailbox broker (root, on
 * private/pop3d) and, as "pop3d -W", the per-owner worker whose sessions
 * are in session.c. Both roles are lib/store/postlogin.c, shared with
 * imapd. See doc/ARCHITECTURE.md ("POP3") for why the split is drawn here.
 */
#include "util/loop.h"
#include "mail/config.h"
#include "store/postlogin.h"
#include "pop3d.h"

struct pop3d_conf pop3d_conf;

static void
worker_init(struct loop *l)
{
	pop3d_conf.timeout_ms = (uint64_t)config_time("pop3d_timeout") * 1000;
	if (pop3d_conf.timeout_ms == 0)
		pop3d_conf.timeout_ms = 600 * 1000;
	pop3d_conf.hard_error_limit = (int)config_int("pop3d_hard_error_limit");
	if (pop3d_conf.hard_error_limit < 1)
		pop3d_conf.hard_error_limit = 1;
	pop3d_conf.uidl_format = config_get("pop3d_uidl_format");
}

int
main(int argc, char **argv)
{
	static const struct postlogin_ops ops = {
		.name = "pop3d",
		.worker_init = worker_init,
		.session_start = session_start,
		.session_count = session_count,
	};

	return postlogin_main(argc, argv, &ops);
}
