/*
 * peer - the client's name, as Postfix's smtpd finds it before the
 * greeting: /etc/hosts first (as getnameinfo() with "files dns"), then
 * the PTR record of the address, then the A (or AAAA) records
 * of that name, which must hold the address again (forward
 * confirmation). The confirmed name is the client name everywhere (logs,
 * Received:, restrictions, policy requests, milters); otherwise it is
 * "unknown". The PTR name alone is the reverse name
 * (reject_unknown_reverse_client_hostname, reverse_client_name).
 *
 * Invariants:
 * - Nothing blocks: both questions go through c-ares on the process's
 *   loop (smtpd_dns(), smtpd_dns_servers); the session neither reads nor
 *   greets meanwhile (s->peer, session_may_process).
 * - The whole lookup is bounded by smtpd_dns_timeout; a timeout or any
 *   other DNS failure is temporary (PEER_TEMP: reject_unknown_* answer
 *   450), no PTR or a name that does not map back is permanent
 *   (unknown_client_reject_code).
 * - A session that closes cancels its query and timer (smtpd_peer_end):
 *   no callback reaches freed memory.
 * Trusts: nothing in the DNS answers: a PTR name must be a valid host name
 *   (peer_name_valid) of at most 255 octets, else the client is unknown.
 * Sockets: the DNS servers of smtpd_dns_servers (or resolv.conf).
 * Files: /etc/hosts (stat per connection, read when it changed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/loop.h"
#include "mail/dns.h"
#include "mail/peer.h"
#include "smtpd.h"

#define HOSTS_FILE "/etc/hosts"
#define HOSTS_RECHECK_MS 1000

struct smtpd_peer {
	struct session *s;
	void (*done)(struct session *s);
	struct dns_q *q;
	uint64_t timer;
	int step;                  /* 0 PTR, 1 A/AAAA of the PTR name */
};

/* Set one of the session's names (cut at SMTPD_NAME_MAX bytes). */
static void
name_set(char **dst, const char *v)
{
	char *old = *dst;

	*dst = xstrndup(v, SMTPD_NAME_MAX);
	free(old);
}

static void
peer_finish(struct session *s, int name_status, int reverse_status)
{
	struct smtpd_peer *p = s->peer;

	s->name_status = name_status;
	s->reverse_name_status = reverse_status;
	if (name_status != PEER_OK)
		name_set(&s->name, "unknown");
	if (reverse_status != PEER_OK)
		name_set(&s->reverse_name, "unknown");
	if (p != NULL) {
		dns_q_cancel(p->q);
		if (p->timer != 0)
			loop_timer_cancel(s->loop, p->timer);
		s->peer = NULL;
		p->done(s);
		free(p);
	}
}

static void
peer_timeout(struct loop *l, void *arg)
{
	struct smtpd_peer *p = arg;
	struct session *s = p->s;

	(void)l;
	p->timer = 0;
	log_info("%s: reverse lookup timed out", s->addr);
	if (p->step == 0)
		peer_finish(s, PEER_TEMP, PEER_TEMP);
	else
		peer_finish(s, PEER_TEMP, PEER_OK);
	session_done_cb(s);
}

static void
peer_answer(void *arg, enum dns_status st, char **values)
{
	struct smtpd_peer *p = arg;
	struct session *s = p->s;
	int temp = st == DNS_TEMPFAIL || st == DNS_BADANSWER;

	p->q = NULL;
	if (p->step == 0) {
		if (st != DNS_OK || values[0] == NULL) {
			peer_finish(s, temp ? PEER_TEMP : PEER_UNKNOWN,
			    temp ? PEER_TEMP : PEER_UNKNOWN);
		} else if (!peer_name_valid(values[0])) {
			log_warnx("%s: malformed or numeric hostname in PTR: %.100s",
			    s->addr, values[0]);
			peer_finish(s, PEER_UNKNOWN, PEER_UNKNOWN);
		} else {
			/* The first name, as getnameinfo() gives Postfix. */
			name_set(&s->name, values[0]);
			size_t n = strlen(s->name);
			if (n > 0 && s->name[n - 1] == '.')
				s->name[n - 1] = '\0';
			for (char *c = s->name; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c + ('a' - 'A'));
			name_set(&s->reverse_name, s->name);
			p->step = 1;
			p->q = dns_async_query(smtpd_dns(s->loop), s->name,
			    strchr(s->addr, ':') != NULL
			    && strncmp(s->addr, "::ffff:", 7) != 0 ? DNS_Q_AAAA : DNS_Q_A,
			    peer_answer, p);
			return;
		}
	} else if (st == DNS_OK && peer_addr_match(s->addr, values)) {
		peer_finish(s, PEER_OK, PEER_OK);
	} else {
		/* Postfix's warnings, which admins grep for. */
		if (st == DNS_OK)
			log_warnx("hostname %s does not resolve to address %s",
			    s->name, s->addr);
		else
			log_warnx("hostname %s does not resolve to address %s: %s",
			    s->name, s->addr, dns_status_str(st));
		peer_finish(s, temp ? PEER_TEMP : PEER_FORGED, PEER_OK);
	}
	session_done_cb(s);
}

/* The hosts file, read again when it changes: getnameinfo() looks there
 * before DNS on a Debian host, so a Postfix admin's loopback clients are
 * "localhost[127.0.0.1]", not "unknown". It is looked at (stat) at most
 * once a second, not on every connection: an edit shows within a second. */
static int
hosts_name(const char *addr, char *name, size_t namelen)
{
	static char *text;
	static size_t len;
	static struct stat seen;
	static uint64_t checked;        /* loop_now_ms() of the last stat */
	static int checked_any;
	uint64_t now = loop_now_ms();
	struct stat st;

	if (checked_any && now - checked < HOSTS_RECHECK_MS)
		return text != NULL && peer_hosts_name(text, len, addr, name, namelen);
	checked = now;
	checked_any = 1;
	if (stat(HOSTS_FILE, &st) < 0) {
		free(text);
		text = NULL;
		len = 0;
		memset(&seen, 0, sizeof(seen));
		return 0;
	}
	if (text == NULL || st.st_mtim.tv_sec != seen.st_mtim.tv_sec
	    || st.st_mtim.tv_nsec != seen.st_mtim.tv_nsec
	    || st.st_size != seen.st_size || st.st_ino != seen.st_ino) {
		free(text);
		text = NULL;
		len = 0;
		if (file_read_all(HOSTS_FILE, 1024 * 1024, &text, &len) < 0) {
			log_warn("read %s", HOSTS_FILE);
			return 0;
		}
		seen = st;
	}
	return peer_hosts_name(text, len, addr, name, namelen);
}

void
smtpd_peer_lookup(struct session *s, void (*done)(struct session *s))
{
	char q[128], hname[SMTPD_NAME_MAX + 1];
	struct dns_async *d;

	name_set(&s->name, "unknown");
	name_set(&s->reverse_name, "unknown");
	if (!smtpd_conf.peername_lookup || peer_ptr_query(s->addr, q, sizeof(q)) < 0) {
		peer_finish(s, PEER_UNKNOWN, PEER_UNKNOWN);
		done(s);
		return;
	}
	if (hosts_name(s->addr, hname, sizeof(hname))) {
		name_set(&s->name, hname);
		name_set(&s->reverse_name, hname);
		peer_finish(s, PEER_OK, PEER_OK);
		done(s);
		return;
	}
	if ((d = smtpd_dns(s->loop)) == NULL) {
		peer_finish(s, PEER_TEMP, PEER_TEMP);
		done(s);
		return;
	}
	struct smtpd_peer *p = xcalloc(1, sizeof(*p));
	p->s = s;
	p->done = done;
	s->peer = p;
	p->timer = loop_timer_add(s->loop, (uint64_t)smtpd_dns_timeout_ms(),
	    peer_timeout, p);
	p->q = dns_async_query(d, q, DNS_Q_PTR, peer_answer, p);
}

void
smtpd_peer_end(struct session *s)
{
	struct smtpd_peer *p = s->peer;

	if (p == NULL)
		return;
	dns_q_cancel(p->q);
	if (p->timer != 0)
		loop_timer_cancel(s->loop, p->timer);
	free(p);
	s->peer = NULL;
}
