/*
 * fsync.h - the two disk primitives durable writers share: write a whole
 * iovec, and fsync a directory so that names created in it survive a crash.
 * Both block: worker threads and start-up only.
 */
#ifndef FACTEUR_FSYNC_H
#define FACTEUR_FSYNC_H
#include <sys/types.h>
#include <sys/uio.h>

/* Writes every byte of iov (adjusting it as it goes); -1 + errno. */
ssize_t fsync_writev_all(int fd, struct iovec *iov, int iovcnt);
/* Opens and fsyncs a directory; -1 + errno (open or fsync failed). */
int fsync_dir(const char *path);

#endif
