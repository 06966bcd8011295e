/*
 * fuzz_queue - libFuzzer target for queue_read() and queue_content().
 *
 * The input is a queue file: it goes into a memfd so the reader sees a
 * real descriptor (pread, fstat) exactly as in the queue.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "mail/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
sink(const char *p, size_t n, void *ctx)
{
	size_t *total = ctx;

	(void)p;
	*total += n;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct qenv env;
	char *err = NULL;
	size_t total = 0;

	if (fd < 0 && (fd = memfd_create("fuzz_queue", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
	    write_all(fd, data, size) < 0)
		abort();
	if (queue_read(fd, &env, &err) == 0) {
		/* A file the reader accepts must stream exactly its size. */
		if (queue_content(fd, &env, sink, &total) != 0 ||
		    (off_t)total != env.content_size || env.nrcpt == 0)
			abort();
		qenv_free(&env);
	} else if (err == NULL) {
		abort();
	}
	free(err);
	return 0;
}
