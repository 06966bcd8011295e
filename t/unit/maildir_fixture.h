/*
 * maildir_fixture - the Check fixture of the mail-store tests: each test
 * gets an empty Maildir, mdir, inside a fresh temporary directory,
 * tmpbase, removed afterwards. Included by one test program each (static
 * definitions); FIXTURE_NAME names the temporary directory.
 */
#ifndef POSTERN_MAILDIR_FIXTURE_H
#define POSTERN_MAILDIR_FIXTURE_H

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/maildir.h"

static char tmpbase[64];
static char mdir[128];

static void
setup(void)
{
	const char *dsn;
	char *err = NULL;

	snprintf(tmpbase, sizeof(tmpbase), "/tmp/%s.XXXXXX", FIXTURE_NAME);
	ck_assert_ptr_nonnull(mkdtemp(tmpbase));
	snprintf(mdir, sizeof(mdir), "%s/Maildir", tmpbase);
	ck_assert_int_eq(maildir_make(mdir, &dsn, &err), 0);
}

static void
teardown(void)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpbase);
	(void)system(cmd);
}

#endif
