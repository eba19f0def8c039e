/*
 * fsync.c - full writes and directory fsync for the queue and the Maildir
 * writer. Must not: retry anything but EINTR, or hide an errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/lib/fsync.h"

ssize_t
fsync_writev_all(int fd, struct iovec *iov, int iovcnt)
{
	ssize_t total = 0, n;

	while (iovcnt > 0) {
		n = writev(fd, iov, iovcnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		total += n;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return total;
}

int
fsync_dir(const char *path)
{
	int fd, rc, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}
