/*
 * qmgr - the queue manager: moves mail from incoming/ and deferred/ into
 * active/, hands recipients to delivery agents with per-transport and
 * per-destination concurrency limits, retries with backoff, and returns
 * undeliverable mail to its sender.
 *
 * One resident process (SERVER_TRIGGER) running as mail_owner. A
 * connection on private/qmgr is a wake-up: its bytes are requests ('I'
 * scan incoming, "N<queue id>\n" take this new file from incoming, 'D'
 * scan deferred, 'F' and 'A' deferred mail is due now, 'W' periodic
 * wakeup), then it is closed - unless the first bytes
 * carry 'K' (trigger_keep(): smtpd wakes qmgr per committed batch), and
 * then it stays open, up to TRIGGER_KEEP_MAX of them, until the client
 * closes it or qmgr exits. Timers scan incoming every few
 * seconds (a safety net for lost triggers) and deferred every
 * queue_run_delay. All work runs from the event loop: feeding happens in
 * slices so a large queue never stalls the loop.
 *
 * SIGTERM, or master gone: no new deliveries; those running get
 * DRAIN_WAIT_MS to finish, then the process exits. Recipients that got no
 * result are neither deferred nor backed off: their files stay in active/
 * and the next qmgr moves them to incoming/ at startup. A transport with
 * no listener is paused for transport_retry_time (qmgr_sched.c), its
 * mail kept queued.
 *
 * Trusts: trigger bytes are only flags (anything unknown is ignored) and
 * queue IDs, which are validated and then only looked up in incoming/.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "qmgr.h"

#define INCOMING_SCAN_MS 5000
#define TRIGGER_TIMEOUT_MS 5000
#define DRAIN_WAIT_MS 5000
#define FEED_SLICE 100

struct qmgr_conf qconf;
struct loop *qmgr_loop;
int qmgr_draining;

static uint64_t kick_timer, incoming_timer, deferred_timer, drain_timer;
static time_t last_deferred_scan;
static int exiting;

static void
read_config(void)
{
	static char host[256];
	const char *v;

	/* In a chroot the skeleton has set it to "/". */
	v = config_get("queue_directory");
	if (v == NULL || *v == '\0')
		log_fatalx("queue_directory is not set");
	qconf.queue_directory = v;
	v = config_get("myhostname");
	if (v == NULL || *v == '\0') {
		if (gethostname(host, sizeof(host) - 1) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		v = host;
	}
	qconf.myhostname = v;
	v = config_str("myorigin");
	if (*v == '\0')
		v = qconf.myhostname;
	qconf.postmaster = addr_qualify(config_str("2bounce_notice_recipient"), v);
	qconf.double_bounce = addr_qualify(config_str("double_bounce_sender"), v);
	{
		char **classes = strv_split_list(config_str("notify_classes"));

		qconf.notify_2bounce = strv_contains_ci(classes, "2bounce");
		strv_free(&classes);
	}
	qconf.active_limit = config_int_range("qmgr_message_active_limit", 1,
	    10000000);
	qconf.rcpt_limit = config_int_range("qmgr_message_recipient_limit", 1,
	    100000000);
	qconf.dest_concurrency = config_int_range("default_destination_concurrency_limit", 0, INT_MAX);
	qconf.dest_initial = config_int_range("initial_destination_concurrency", 1, INT_MAX);
	qconf.dest_rcpt_limit = config_int_range("default_destination_recipient_limit", 0, 1000000);
	qconf.process_limit = config_int_range("default_process_limit", 0, INT_MAX / 10);
	qconf.rate_delay = config_time("default_destination_rate_delay");
	qconf.max_lifetime = config_time("maximal_queue_lifetime");
	qconf.bounce_lifetime = config_time("bounce_queue_lifetime");
	qconf.delay_warning = config_time("delay_warning_time");
	qconf.soft_bounce = config_bool("soft_bounce") == 1;
	qconf.min_backoff = config_time("minimal_backoff_time");
	qconf.max_backoff = config_time("maximal_backoff_time");
	qconf.run_delay = config_time("queue_run_delay");
	qconf.transport_retry = config_time("transport_retry_time");
	qconf.command_time_limit = config_time("command_time_limit");
	qconf.bounce_size_limit = config_int_range("bounce_size_limit", 0,
	    1024 * 1024 * 1024);
	if (qconf.active_limit < 1)
		qconf.active_limit = 1;
	if (qconf.rcpt_limit < 1)
		qconf.rcpt_limit = 1;
	if (qconf.dest_rcpt_limit < 1)
		qconf.dest_rcpt_limit = 1;
	if (qconf.max_backoff < qconf.min_backoff)
		qconf.max_backoff = qconf.min_backoff;
	if (qconf.run_delay < 1)
		qconf.run_delay = 1;
	if (qconf.transport_retry < 1)
		qconf.transport_retry = 1;
}

/* Work: feed the active queue and start deliveries, one slice per turn. */

static void
run_cb(struct loop *l, void *ctx)
{
	int more;

	(void)l;
	(void)ctx;
	kick_timer = 0;
	if (qmgr_draining)
		return;
	/* Deliveries first: slots freed by finished jobs are refilled before
	 * a slice of activations (file reads) delays them, so a large
	 * backlog in incoming/ does not starve the messages already active. */
	qsched_run();
	more = qmgr_feed(FEED_SLICE);
	qsched_run();
	if (more)
		qmgr_kick();
}

void
qmgr_kick(void)
{
	if (kick_timer == 0 && !exiting && qmgr_loop != NULL)
		kick_timer = loop_timer_add(qmgr_loop, 0, run_cb, NULL);
}

static void
deferred_scan(int flush)
{
	last_deferred_scan = time(NULL);
	qmgr_scan_deferred(flush);
}

static void
incoming_timer_cb(struct loop *l, void *ctx)
{
	(void)ctx;
	incoming_timer = loop_timer_add(l, INCOMING_SCAN_MS, incoming_timer_cb, NULL);
	qmgr_scan_incoming();
}

static void
deferred_timer_cb(struct loop *l, void *ctx)
{
	(void)ctx;
	deferred_timer = loop_timer_add(l, (uint64_t)qconf.run_delay * 1000,
	    deferred_timer_cb, NULL);
	deferred_scan(0);
	qmgr_clean_stale();
}

/* Triggers. */

/* Connections a client asked to keep ('K', trigger_keep(): one per smtpd
 * process) stay open while they are fewer than this; the rest are closed
 * after their first bytes, like any trigger connection. */
#define TRIGGER_KEEP_MAX 64

struct trig {
	int fd;
	uint64_t timer;
	int kept;
	int cut;                  /* the last read ended inside an "N" name */
	struct trig *next;        /* kept ones */
};

static struct trig *kept;
static int n_kept;

static void
trig_close(struct loop *l, struct trig *t)
{
	struct trig **pp;

	if (t->timer != 0)
		loop_timer_cancel(l, t->timer);
	if (t->kept) {
		for (pp = &kept; *pp != NULL; pp = &(*pp)->next)
			if (*pp == t) {
				*pp = t->next;
				break;
			}
		n_kept--;
	}
	loop_fd_del(l, t->fd);
	server_disconnect(l, t->fd);
	free(t);
}

/* The client asked to keep it: no timeout, listed for qmgr_exit(). */
static void
trig_keep(struct loop *l, struct trig *t)
{
	t->kept = 1;
	n_kept++;
	t->next = kept;
	kept = t;
	if (t->timer != 0) {
		loop_timer_cancel(l, t->timer);
		t->timer = 0;
	}
}

static void
trig_timeout(struct loop *l, void *ctx)
{
	struct trig *t = ctx;

	t->timer = 0;
	trig_close(l, t);
}

/* Act on the bytes of one trigger connection (qmgr_trigger_parse()):
 * each request once, however often it came. Says whether the client
 * asked to keep the connection. */
static int
trig_run(const char *req, ssize_t n, size_t size, int *cut)
{
	unsigned r = qmgr_trigger_parse(req, n, size, cut);

	if (r & (QTRIG_INCOMING | QTRIG_WAKEUP))
		qmgr_scan_incoming();
	if (r & QTRIG_FLUSH)
		deferred_scan(1);
	else if ((r & QTRIG_DEFERRED) || ((r & QTRIG_WAKEUP) &&
	    time(NULL) - last_deferred_scan >= qconf.run_delay))
		deferred_scan(0);
	return (r & QTRIG_KEEP) != 0;
}

static void
trig_read(struct loop *l, int fd, unsigned events, void *ctx)
{
	struct trig *t = ctx;
	/* About a hundred names (FEED_SLICE) per read: more pending than
	 * that means qmgr is behind, and a scan takes them (a full read
	 * asks for one). */
	char req[2048];
	ssize_t n;

	(void)events;
	n = read(fd, req, sizeof(req));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (trig_run(req, n, sizeof(req), &t->cut) && !t->kept &&
	    n_kept < TRIGGER_KEEP_MAX &&
	    !exiting)
		trig_keep(l, t);
	if (n <= 0 || !t->kept)
		trig_close(l, t);
}

static void
qmgr_conn(struct loop *l, int fd)
{
	struct trig *t;
	char req[64];
	ssize_t n;
	int cut = 0;

	/* A client writes its trigger right after connecting, so it is
	 * usually here by the accept: read it now, and register with the
	 * loop (epoll_ctl twice, one more wakeup) only when it is not, or
	 * when the client asked to keep the connection. */
	n = read(fd, req, sizeof(req));
	if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		if (!trig_run(req, n, sizeof(req), &cut) || n <= 0 ||
		    n_kept >= TRIGGER_KEEP_MAX ||
		    exiting) {
			server_disconnect(l, fd);
			return;
		}
	}
	t = xcalloc(1, sizeof(*t));
	t->fd = fd;
	t->cut = cut;
	if (loop_fd_set(l, fd, LOOP_READ, trig_read, t) < 0) {
		log_warn("register trigger connection");
		server_disconnect(l, fd);
		free(t);
		return;
	}
	if (n > 0)
		trig_keep(l, t);
	else
		t->timer = loop_timer_add(l, TRIGGER_TIMEOUT_MS, trig_timeout, t);
}

/* Startup and shutdown. */

static void
qmgr_post_init(struct loop *l)
{
	qmgr_loop = l;
	read_config();
	qmsg_init();
	qsched_init();
	qmgr_recover();
	qmgr_scan_incoming();
	deferred_scan(0);
	incoming_timer = loop_timer_add(l, INCOMING_SCAN_MS, incoming_timer_cb, NULL);
	deferred_timer = loop_timer_add(l, (uint64_t)qconf.run_delay * 1000,
	    deferred_timer_cb, NULL);
}

/* The skeleton stops the loop once no trigger connection is open and
 * qmgr_busy() says 0. */
static void
qmgr_exit(void)
{
	if (exiting)
		return;
	exiting = 1;
	if (drain_timer != 0) {
		loop_timer_cancel(qmgr_loop, drain_timer);
		drain_timer = 0;
	}
	if (kick_timer != 0) {
		loop_timer_cancel(qmgr_loop, kick_timer);
		kick_timer = 0;
	}
	/* Kept trigger connections would hold the skeleton's loop open. */
	while (kept != NULL)
		trig_close(qmgr_loop, kept);
	server_exit_when_idle();
}

/* Deliveries in progress keep the process alive through a drain. */
static int
qmgr_busy(void)
{
	return qdeliver_running() > 0;
}

void
qmgr_check_drained(void)
{
	if (qmgr_draining && qdeliver_running() == 0)
		qmgr_exit();
}

static void
drain_timeout(struct loop *l, void *ctx)
{
	(void)l;
	(void)ctx;
	drain_timer = 0;
	if (qdeliver_running() > 0)
		log_info("exiting with %d delivery(ies) still running", qdeliver_running());
	qdeliver_abort_all();
	qmgr_exit();
}

static void
qmgr_drain(struct loop *l)
{
	if (qmgr_draining)
		return;
	qmgr_draining = 1;
	/* Parked agents QUIT their sessions and go back to master. */
	qdeliver_close_idle();
	if (incoming_timer != 0)
		loop_timer_cancel(l, incoming_timer);
	if (deferred_timer != 0)
		loop_timer_cancel(l, deferred_timer);
	incoming_timer = deferred_timer = 0;
	if (qdeliver_running() == 0) {
		qmgr_exit();
		return;
	}
	drain_timer = loop_timer_add(l, DRAIN_WAIT_MS, drain_timeout, NULL);
}

static const struct server_ops qmgr_ops = {
	.kind = SERVER_TRIGGER,
	.name = "qmgr",
	.pre_init = NULL,
	.post_init = qmgr_post_init,
	.conn = qmgr_conn,
	.serve = NULL,
	.drain = qmgr_drain,
	.busy = qmgr_busy,
};

int
main(int argc, char **argv)
{
	return server_main(argc, argv, &qmgr_ops);
}
