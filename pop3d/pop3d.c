/*
 * pop3d - the post-login half of POP3. One binary, two roles:
 *
 *   pop3d -c DIR -n pop3d -t unix -p ...   the mailbox broker (broker.c):
 *       started by master as root (master.conf unpriv=n) on
 *       private/pop3d; it never reads client bytes. pop3-login sends it
 *       a logged-in session (a login ticket and the client's socket); it
 *       trades the ticket with auth for the user, finds the mailbox owner
 *       (lib/store/owner.h) and passes the socket to the worker of that
 *       owner's uid, starting one if needed.
 *   pop3d -W <the same arguments>          a worker (worker.c): exec'd by
 *       the broker already running as the mailbox owner (never root), it
 *       serves every session of that uid on one event loop (session.c).
 *
 * See doc/ARCHITECTURE.md ("POP3") for why the split is drawn here.
 */
#include <string.h>

#include "pop3d.h"

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "-W") == 0)
		return worker_main(argc - 1, argv + 1);
	return broker_main(argc, argv);
}
