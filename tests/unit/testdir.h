/*
 * testdir.h - a private temporary directory for one unit test program:
 * testdir_make() creates /tmp/NAME.XXXXXX (mkdtemp) into the caller's
 * buffer, testdir_remove() deletes it and everything below it (nftw,
 * depth first, symbolic links not followed). Header-only, static
 * functions: every tests/unit/NAME_test.c is a program of its own, built
 * from its one source file and libfacteur.a.
 * Must not: remove anything outside the directory it was given, or
 * follow a symbolic link out of it.
 */
#ifndef FACTEUR_TESTDIR_H
#define FACTEUR_TESTDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

/* Creates /tmp/name.XXXXXX; 0, or -1 (buffer too small, mkdtemp failed). */
static inline int
testdir_make(char *dir, size_t size, const char *name)
{
	int n = snprintf(dir, size, "/tmp/%s.XXXXXX", name);

	if (n < 0 || (size_t)n >= size)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static inline int
testdir_unlink(const char *path, const struct stat *st, int type,
	       struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* Removes dir and its contents; 0, or -1 at the first failure. */
static inline int
testdir_remove(const char *dir)
{
	return nftw(dir, testdir_unlink, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

#endif
