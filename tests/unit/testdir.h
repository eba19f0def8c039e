/*
 * testdir.h - files for one unit test program: testdir_make() creates
 * a private directory /tmp/NAME.XXXXXX (mkdtemp) into the caller's
 * buffer, testdir_remove() deletes it and everything below it (nftw,
 * depth first, symbolic links not followed), testdir_write() writes a
 * file in it and testdir_slurp() reads a whole file back. Header-only,
 * static functions: every tests/unit/NAME_test.c is a program of its
 * own, built from its one source file and libfacteur.a. Include it
 * after <cmocka.h>: a file that cannot be written or read fails the
 * test.
 * Must not: remove anything outside the directory it was given, or
 * follow a symbolic link out of it.
 */
#ifndef FACTEUR_TESTDIR_H
#define FACTEUR_TESTDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Writes text to dir/name; returns the path (caller frees). */
static inline char *
testdir_write(const char *dir, const char *name, const char *text)
{
	size_t size = strlen(dir) + strlen(name) + 2;
	char *path = malloc(size);
	FILE *fp;

	assert_non_null(path);
	snprintf(path, size, "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* The whole file, NUL-terminated (caller frees); its length in *len
 * unless len is NULL. */
static inline char *
testdir_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;
	size_t n = 0, cap = 4096, got;

	assert_non_null(f);
	data = malloc(cap + 1);
	assert_non_null(data);
	while ((got = fread(data + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			data = realloc(data, cap + 1);
			assert_non_null(data);
		}
	}
	assert_int_equal(ferror(f), 0);
	fclose(f);
	data[n] = '\0';
	if (len != NULL)
		*len = n;
	return data;
}

#endif
