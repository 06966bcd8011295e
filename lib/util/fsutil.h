/*
 * fsutil - file helpers with the durability rules of DESIGN.md.
 */
#ifndef POSTERN_FSUTIL_H
#define POSTERN_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

int write_all(int fd, const void *p, size_t n);          /* 0 or -1; EINTR retried */
ssize_t read_full(int fd, void *p, size_t n);            /* reads until n or EOF */
int fsync_dir(const char *dir);                          /* open O_DIRECTORY, fsync */
int fsync_dir_fd(int fd);   /* fsync an open directory; EINVAL/EROFS count as done */
int fsync_parent(const char *path);                      /* fsync dirname(path) */
int mkdir_p(const char *path, mode_t mode);              /* existing dirs are fine */
/* Read a whole small file (max bytes) into a NUL-terminated xmalloc'd string. */
int file_read_all(const char *path, size_t max, char **data_r, size_t *len_r);
/* Write a file atomically: tmp in the same dir, fsync, rename, fsync dir. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
