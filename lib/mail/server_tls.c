/*
 * server_tls - the server skeleton's TLS part: a TLS server's processes
 * share master's session-ticket keys (server.h).
 *
 * Apart from server.c so that a daemon without TLS (local, showq, spawn)
 * does not link the TLS code: it then does not load libssl and libcrypto
 * either (linked --as-needed), whose relocation is most of a process
 * start here - about 3.8 of 5.2 ms of CPU on this project's benchmark
 * VM, paid again by every local process that reaches max_use. (qmgr and
 * pickup still load them, through the connection layer, once.)
 */
#include <stdlib.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/tls.h"
#include "util/tlskeys.h"
#include "mail/config.h"
#include "mail/server.h"

void
server_tls_ticket_keys(struct tls_ctx *ctx)
{
	char *path, *err = NULL;

	if (ctx == NULL)
		return;
	path = xasprintf("%s/%s", config_str("data_directory"), TLSKEYS_FILE);
	if (tls_server_ticket_keys(ctx, path, &err) < 0) {
		log_warnx("TLS session tickets resume only on the process that "
		    "issued them: %s", err != NULL ? err : "?");
		free(err);
	}
	free(path);
}
