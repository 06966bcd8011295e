/*
 * queue_fixture - a fresh queue directory tree (queue_dirs_create) in a
 * temporary directory for each test, removed afterwards. Included by one
 * test program each (static definitions); the program's own fixture
 * calls queue_fixture_setup(name) and queue_fixture_teardown().
 */
#ifndef POSTERN_QUEUE_FIXTURE_H
#define POSTERN_QUEUE_FIXTURE_H

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "mail/queue.h"

static char qdir[64];

static void
rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char *p;

	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = xasprintf("%s/%s", path, e->d_name);
		rm_tree(p);
		free(p);
	}
	closedir(d);
	(void)rmdir(path);
}

static void
queue_fixture_setup(const char *name)
{
	char *err = NULL;

	snprintf(qdir, sizeof(qdir), "/tmp/%s.XXXXXX", name);
	ck_assert_ptr_nonnull(mkdtemp(qdir));
	ck_assert_msg(queue_dirs_create(qdir, (uid_t)-1, (gid_t)-1, &err) == 0,
	    "queue_dirs_create: %s", err ? err : "?");
}

static void
queue_fixture_teardown(void)
{
	rm_tree(qdir);
}

#endif
