/*
 * pam - system users' passwords, checked through PAM by a helper that
 * keeps root.
 *
 * auth itself runs as auth_owner, and pam_unix cannot read /etc/shadow
 * as a non-root caller (its unix_chkpwd fallback only checks the caller's
 * own account). So before auth drops privileges it forks this helper,
 * which stays root, holds no other descriptor than its socketpair to
 * auth, and answers one request at a time:
 *   user= password= rip= service=  ->  status=ok|fail|tempfail reason=
 * with pam_authenticate() then pam_acct_mgmt() on the PAM service
 * auth_pam_service ("postern"; see etc/pam.d/postern).
 *
 * Trusts: auth (its parent, over a private socketpair), and PAM. It never
 * sees network input. It exits when auth goes (EOF). Passwords are wiped.
 * Requests come from auth's hashing threads (pool.c), one at a time
 * (helper_mu). If the helper dies, system logins get tempfail and auth
 * (its SIGCHLD handler, pam_helper_exited()) stops taking requests and
 * exits once idle: having dropped root, auth cannot fork a new root
 * helper, but master starts a fresh auth (and with it a fresh helper) on
 * the next connection.
 *
 * Limits: a PAM module that blocks holds up system logins (one hashing
 * thread) for up to PAM_TIMEOUT_MS; then the answer is tempfail and
 * auth shuts the socketpair down (it cannot signal a root process), so
 * the helper exits when PAM returns and is restarted as above.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "util/alloc.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/loop.h"
#include "proto/sasl.h"
#include "auth.h"

#define PAM_TIMEOUT_MS 20000
#define PAM_FRAME_MAX 8192

static pthread_mutex_t helper_mu = PTHREAD_MUTEX_INITIALIZER;
static int helper_fd = -1;      /* under helper_mu once threads run */
static pid_t helper_pid = -1;   /* the loop thread's only */
static char *pam_service;

struct conv_data {
	const char *password;
};

static int
conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
	struct conv_data *cd = appdata;
	struct pam_response *r;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		/* Only the password prompt gets an answer. */
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
			r[i].resp = strdup(cd->password);
			if (r[i].resp == NULL) {
				for (int k = 0; k < i; k++)
					free(r[k].resp);
				free(r);
				return PAM_BUF_ERR;
			}
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static void
helper_answer(int fd, struct ipc_msg *req)
{
	struct ipc_msg rep;
	const char *user = ipc_get(req, "user"), *pw = ipc_get(req, "password");
	const char *rip = ipc_get(req, "rip");
	struct conv_data cd = { pw };
	struct pam_conv pc = { conv, &cd };
	pam_handle_t *ph = NULL;
	int r;

	ipc_init(&rep);
	if (user == NULL || pw == NULL) {
		ipc_put(&rep, "status", "fail");
		ipc_put(&rep, "reason", "bad request");
	} else if ((r = pam_start(pam_service, user, &pc, &ph)) != PAM_SUCCESS) {
		ipc_put(&rep, "status", "tempfail");
		ipc_put(&rep, "reason", pam_strerror(ph, r));
	} else {
		if (rip != NULL && *rip != '\0')
			(void)pam_set_item(ph, PAM_RHOST, rip);
		r = pam_authenticate(ph, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
		if (r == PAM_SUCCESS)
			r = pam_acct_mgmt(ph, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
		if (r == PAM_SUCCESS) {
			ipc_put(&rep, "status", "ok");
			ipc_put(&rep, "reason", "ok");
		} else {
			ipc_put(&rep, "status", r == PAM_AUTHINFO_UNAVAIL || r == PAM_SYSTEM_ERR
			    || r == PAM_BUF_ERR ? "tempfail" : "fail");
			ipc_put(&rep, "reason", pam_strerror(ph, r));
		}
		pam_end(ph, r);
	}
	sasl_wipe(req->b.data, req->b.cap);
	if (ipc_send(fd, &rep, PAM_TIMEOUT_MS) < 0)
		_exit(0);
	ipc_free(&rep);
}

static NORETURN void
helper_main(int fd)
{
	struct ipc_msg req;

	loop_sigmask_restore();
	signal(SIGPIPE, SIG_IGN);
	ipc_init(&req);
	for (;;) {
		if (ipc_recv(fd, &req, PAM_FRAME_MAX, -1) < 0)
			_exit(0);
		helper_answer(fd, &req);
	}
}

int
pam_helper_start(const char *service)
{
	int sv[2];

	free(pam_service);
	pam_service = xstrdup(service);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	helper_pid = fork();
	if (helper_pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (helper_pid == 0) {
		close(sv[0]);
		/* Nothing of auth's but the socketpair. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != sv[1])
				(void)close(fd);
		helper_main(sv[1]);
	}
	close(sv[1]);
	helper_fd = sv[0];
	return 0;
}

int
pam_helper_available(void)
{
	int up;

	pthread_mutex_lock(&helper_mu);
	up = helper_fd >= 0;
	pthread_mutex_unlock(&helper_mu);
	return up;
}

int
pam_helper_exited(pid_t pid)
{
	if (helper_pid <= 0 || pid != helper_pid)
		return 0;
	helper_pid = -1;
	pthread_mutex_lock(&helper_mu);
	if (helper_fd >= 0) {
		close(helper_fd);
		helper_fd = -1;
	}
	pthread_mutex_unlock(&helper_mu);
	return 1;
}

enum pam_verdict
pam_check(const char *user, const char *password, const char *rip,
    char *reason, size_t reason_size)
{
	struct ipc_msg m;
	const char *st, *why;
	enum pam_verdict v = PAMV_TEMPFAIL;
	int sent;

	pthread_mutex_lock(&helper_mu);
	if (helper_fd < 0) {
		pthread_mutex_unlock(&helper_mu);
		snprintf(reason, reason_size, "PAM helper unavailable");
		return PAMV_TEMPFAIL;
	}
	ipc_init(&m);
	ipc_put(&m, "user", user);
	ipc_put(&m, "password", password);
	ipc_put(&m, "rip", rip ? rip : "");
	sent = ipc_send(helper_fd, &m, PAM_TIMEOUT_MS);
	sasl_wipe(m.b.data, m.b.cap);
	if (sent < 0 || ipc_recv(helper_fd, &m, PAM_FRAME_MAX, PAM_TIMEOUT_MS) < 0) {
		snprintf(reason, reason_size, "PAM helper: %s",
		    errno != 0 ? strerror(errno) : "connection closed");
		/* Hung or gone: end it; the loop reaps it (SIGCHLD) and
		 * restarts auth. shutdown, not close: the loop thread owns
		 * closing the descriptor (pam_helper_exited). */
		(void)shutdown(helper_fd, SHUT_RDWR);
		pthread_mutex_unlock(&helper_mu);
		ipc_free(&m);
		return PAMV_TEMPFAIL;
	}
	pthread_mutex_unlock(&helper_mu);
	st = ipc_get(&m, "status");
	why = ipc_get(&m, "reason");
	snprintf(reason, reason_size, "PAM: %s", why ? why : "?");
	if (st != NULL && strcmp(st, "ok") == 0)
		v = PAMV_OK;
	else if (st != NULL && strcmp(st, "fail") == 0)
		v = PAMV_FAIL;
	ipc_free(&m);
	return v;
}
