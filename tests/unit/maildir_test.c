/*
 * maildir_test.c - Maildir delivery: file names, S= sizes, byte-exact
 * content, tmp/ left empty, creation of missing maildirs and folders,
 * flags into cur/, errors instead of crashes, concurrent first deliveries;
 * IMAP keywords through dovecot-keywords (letters kept, new ones added,
 * non-atoms and the 27th dropped, a stale dotlock broken).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery/maildir.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

static char base[256];

static int
setup(void **state)
{
	return testdir_make(base, sizeof(base), "facteur-maildir-test");
}

static int
teardown(void **state)
{
	return testdir_remove(base);
}

/* Names of the files in dir (not . and ..); returns the count. */
static size_t
list_dir(const char *dir, char names[][512], size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return (size_t)-1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n < max)
			snprintf(names[n], 512, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void
test_deliver_new(void **state)
{
	static const char pre[] = "Return-Path: <a@b>\nDelivered-To: c@d\n";
	static const char body[] = "Subject: x\n\n8bit \xe9\xff\x00 body\n";
	char path[512], dir[600], names[4][512], name[512], file[1200];
	struct maildir_msg m = { pre, sizeof(pre) - 1, body, sizeof(body) - 1,
				 NULL, NULL, NULL, 0 };
	struct errbuf err;
	struct stat sb;
	regex_t re;
	size_t len;
	char *data;

	snprintf(path, sizeof(path), "%s/example.test/alice/", base);
	assert_int_equal(maildir_deliver(base, path, &m, name, sizeof(name), &err), 0);
	snprintf(dir, sizeof(dir), "%snew", path);
	assert_int_equal(list_dir(dir, names, 4), 1);
	assert_string_equal(names[0], name);
	assert_int_equal(regcomp(&re, "^[0-9]+\\.M[0-9]+P[0-9]+_[0-9]+\\.[^/:]+,S=([0-9]+)$",
				 REG_EXTENDED), 0);
	regmatch_t mt[2];
	assert_int_equal(regexec(&re, name, 2, mt, 0), 0);
	regfree(&re);
	snprintf(file, sizeof(file), "%s/%s", dir, name);
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(strtoull(name + mt[1].rm_so, NULL, 10), (unsigned long long)sb.st_size);
	data = testdir_slurp(file, &len);
	assert_int_equal(len, sizeof(pre) - 1 + sizeof(body) - 1);
	assert_memory_equal(data, pre, sizeof(pre) - 1);
	assert_memory_equal(data + sizeof(pre) - 1, body, sizeof(body) - 1);
	free(data);
	/* tmp/ empty, cur/ exists and is empty, maildir mode 0700 */
	snprintf(dir, sizeof(dir), "%stmp", path);
	assert_int_equal(list_dir(dir, names, 4), 0);
	snprintf(dir, sizeof(dir), "%scur", path);
	assert_int_equal(list_dir(dir, names, 4), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(dir, sizeof(dir), "%s/example.test", base);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);

	/* second delivery: a different name, two files */
	char name2[512];
	assert_int_equal(maildir_deliver(base, path, &m, name2, sizeof(name2), &err), 0);
	assert_string_not_equal(name, name2);
	snprintf(dir, sizeof(dir), "%snew", path);
	assert_int_equal(list_dir(dir, names, 4), 2);
}

static void
test_folder_and_flags(void **state)
{
	char path[512], dir[700], names[4][512], name[512];
	struct maildir_msg m = { NULL, 0, "x\n", 2, "Sub.Folder", "SaF", NULL, 0 };
	struct errbuf err;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/d/u/Maildir/", base);
	assert_int_equal(maildir_deliver(base, path, &m, name, sizeof(name), &err), 0);
	assert_non_null(strstr(name, ",S=2:2,FSa"));
	snprintf(dir, sizeof(dir), "%s.Sub.Folder/cur", path);
	assert_int_equal(list_dir(dir, names, 4), 1);
	assert_string_equal(names[0], name);
	snprintf(dir, sizeof(dir), "%s.Sub.Folder/maildirfolder", path);
	assert_int_equal(stat(dir, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	/* the parent maildir exists too */
	snprintf(dir, sizeof(dir), "%snew", path);
	assert_int_equal(list_dir(dir, names, 4), 0);
	snprintf(dir, sizeof(dir), "%s.Sub.Folder/new", path);
	assert_int_equal(list_dir(dir, names, 4), 0);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *path;	/* "%s" = base */
		const char *folder, *flags;
		int err;
		const char *why;
	} t[] = {
		{ "relative/", NULL, NULL, EINVAL, "absolute" },
		{ "%s/noslash", NULL, NULL, EINVAL, "absolute" },
		{ "%s/a/../../etc/", NULL, NULL, EINVAL, "unsafe" },
		{ "%s/a/./b/", NULL, NULL, EINVAL, "unsafe" },
		{ "%s/ok/", "../x", NULL, EINVAL, "folder" },
		{ "%s/ok/", ".hidden", NULL, EINVAL, "folder" },
		{ "%s/ok/", "", NULL, EINVAL, "folder" },
		{ "%s/ok/", "a..b", NULL, EINVAL, "folder" },
		{ "%s/ok/", NULL, "S1", EINVAL, "flags" },
		{ "/nonexistent-facteur-base/u/", NULL, NULL, ENOENT,
		  "create maildir directory /nonexistent-facteur-base/u" },
		{ "%s/file/u/", NULL, NULL, ENOTDIR, "create maildir file" },
	};
	char path[512], f[1200];
	struct errbuf err;
	size_t i;
	FILE *fp;

	snprintf(f, sizeof(f), "%s/file", base);
	fp = fopen(f, "w");
	assert_non_null(fp);
	fclose(fp);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct maildir_msg m = { NULL, 0, "x\n", 2, t[i].folder, t[i].flags,
					 NULL, 0 };
		int rc;
		snprintf(path, sizeof(path), t[i].path, base);
		rc = maildir_deliver(base, path, &m, NULL, 0, &err);
		if (rc != t[i].err || strstr(errbuf_str(&err), t[i].why) == NULL)
			fail_msg("case %zu (%s): rc %d, err \"%s\"", i, path, rc,
				 errbuf_str(&err));
	}
	/* base itself missing: nothing is created above it */
	snprintf(path, sizeof(path), "%s/missing-base/u/", base);
	snprintf(f, sizeof(f), "%s/missing-base", base);
	struct maildir_msg m = { NULL, 0, "x\n", 2, NULL, NULL, NULL, 0 };
	assert_int_equal(maildir_deliver(f, path, &m, NULL, 0, &err), ENOENT);
	assert_int_equal(access(f, F_OK), -1);
	/* new/ is not a directory: link fails, tmp/ is cleaned up */
	{
		char names[4][512];
		snprintf(path, sizeof(path), "%s/badnew/", base);
		assert_int_equal(maildir_deliver(base, path, &m, NULL, 0, &err), 0);
		snprintf(f, sizeof(f), "rm -rf '%snew' && touch '%snew'", path, path);
		assert_int_equal(system(f), 0);
		assert_int_equal(maildir_deliver(base, path, &m, NULL, 0, &err), ENOTDIR);
		assert_non_null(strstr(errbuf_str(&err), "link maildir file"));
		assert_non_null(strstr(errbuf_str(&err), "Not a directory"));
		snprintf(f, sizeof(f), "%stmp", path);
		assert_int_equal(list_dir(f, names, 4), 0);
	}
	/* read-only new/: an errno, a Postfix-like text, and no tmp/ leftover */
	if (geteuid() != 0) {
		char names[4][512];
		snprintf(path, sizeof(path), "%s/ro/", base);
		assert_int_equal(maildir_deliver(base, path, &m, NULL, 0, &err), 0);
		snprintf(f, sizeof(f), "%snew", path);
		chmod(f, 0500);
		assert_int_equal(maildir_deliver(base, path, &m, NULL, 0, &err), EACCES);
		assert_non_null(strstr(errbuf_str(&err), "link maildir file"));
		snprintf(f, sizeof(f), "%stmp", path);
		assert_int_equal(list_dir(f, names, 4), 0);
		chmod(f, 0500);
		assert_int_equal(maildir_deliver(base, path, &m, NULL, 0, &err), EACCES);
		assert_non_null(strstr(errbuf_str(&err), "create maildir file"));
		assert_non_null(strstr(errbuf_str(&err), "Permission denied"));
		chmod(f, 0700);
		snprintf(f, sizeof(f), "%snew", path);
		chmod(f, 0700);
	}
}

#define NTH 8
#define PER 25
struct th_arg {
	const char *path;
	int fails;
};

static void *
deliver_thread(void *arg)
{
	struct th_arg *a = arg;
	struct maildir_msg m = { "P: 1\n", 5, "body\n", 5, NULL, NULL, NULL, 0 };
	struct errbuf err;

	for (int i = 0; i < PER; i++) {
		m.folder = (i % 2) ? "Shared" : NULL;
		if (maildir_deliver(base, a->path, &m, NULL, 0, &err) != 0)
			a->fails++;
	}
	return NULL;
}

static void
test_concurrent_creation(void **state)
{
	pthread_t th[NTH];
	struct th_arg a[NTH];
	char path[512], dir[700];
	static char names[NTH * PER][512];
	int i;

	snprintf(path, sizeof(path), "%s/race.test/new-user/Maildir/", base);
	for (i = 0; i < NTH; i++) {
		a[i].path = path;
		a[i].fails = 0;
		assert_int_equal(pthread_create(&th[i], NULL, deliver_thread, &a[i]), 0);
	}
	for (i = 0; i < NTH; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].fails, 0);
	}
	snprintf(dir, sizeof(dir), "%snew", path);
	assert_int_equal(list_dir(dir, names, NTH * PER), NTH * ((PER + 1) / 2));
	snprintf(dir, sizeof(dir), "%s.Shared/new", path);
	assert_int_equal(list_dir(dir, names, NTH * PER), NTH * (PER / 2));
	snprintf(dir, sizeof(dir), "%stmp", path);
	assert_int_equal(list_dir(dir, names, NTH * PER), 0);
}

/* The second run goes through the portable tmp/ + link path. */
static int
portable_setup(void **state)
{
	(void)state;
	maildir_use_tmpfile(0);
	return 0;
}

static int
portable_teardown(void **state)
{
	(void)state;
	maildir_use_tmpfile(1);
	return 0;
}

static void
test_keywords(void **state)
{
	char path[512], file[700], name[512];
	const char *kw1[] = { "$Label1", "work", "bad atom", "\\Seen" };
	const char *kw2[] = { "WORK", "New" };
	struct maildir_msg m = { NULL, 0, "x\n", 2, "F", NULL, kw1, 4 };
	struct errbuf err;
	char letters[27], *text;
	size_t len, dropped;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/u/", base);
	/* a folder that does not exist yet gets its keywords file */
	assert_int_equal(maildir_deliver(base, path, &m, name, sizeof(name), &err), 0);
	assert_non_null(strstr(name, ":2,ab"));
	snprintf(file, sizeof(file), "%s.F/dovecot-keywords", path);
	text = testdir_slurp(file, &len);
	text[len] = '\0';
	assert_string_equal(text, "0 $Label1\n1 work\n");
	free(text);
	/* system flags and keywords together; known keywords keep their
	 * letters (case-insensitively), new ones take the next free one */
	m.flags = "S";
	m.keywords = kw2;
	m.nkeywords = 2;
	assert_int_equal(maildir_deliver(base, path, &m, name, sizeof(name), &err), 0);
	assert_non_null(strstr(name, ":2,Sbc"));
	text = testdir_slurp(file, &len);
	text[len] = '\0';
	assert_string_equal(text, "0 $Label1\n1 work\n2 New\n");
	free(text);
	/* a file Dovecot wrote with gaps: its letters are used, gaps filled */
	f = fopen(file, "w");
	fputs("0 $Label1\n4 Later\n", f);
	fclose(f);
	snprintf(file, sizeof(file), "%s.F/", path);
	assert_int_equal(maildir_keywords(file, kw2, 2, letters, &dropped, &err), 0);
	assert_string_equal(letters, "bc");
	assert_int_equal(dropped, 0);
	/* 26 letters at most: 4 are taken, 22 of 30 new ones fit */
	{
		char *many[30];

		for (int i = 0; i < 30; i++)
			many[i] = xasprintf("k%d", i);
		assert_int_equal(maildir_keywords(file, (const char *const *)many,
						  30, letters, &dropped, &err), 0);
		assert_int_equal(strlen(letters), 22);
		assert_int_equal(dropped, 8);
		for (int i = 0; i < 30; i++)
			free(many[i]);
	}
	/* a stale lock (older than 30 s) is broken, a fresh one waited on */
	{
		char lock[800];
		struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };
		const char *one[] = { "zz" };
		int fd;

		snprintf(path, sizeof(path), "%s/v/", base);
		mkdir(path, 0700);
		snprintf(lock, sizeof(lock), "%sdovecot-keywords.lock", path);
		fd = open(lock, O_WRONLY | O_CREAT, 0600);
		close(fd);
		utimensat(AT_FDCWD, lock, old, 0);
		assert_int_equal(maildir_keywords(path, one, 1, letters, &dropped,
						  &err), 0);
		assert_string_equal(letters, "a");
		assert_int_equal(access(lock, F_OK), -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deliver_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_folder_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_creation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keywords, setup, teardown),
	};
	int failed;

	failed = cmocka_run_group_tests_name("maildir", tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("maildir via tmp/", tests,
					      portable_setup, portable_teardown);
	return failed;
}
