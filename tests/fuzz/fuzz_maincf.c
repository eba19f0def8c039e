/*
 * fuzz_maincf.c - libFuzzer target for the configuration parsers: the
 * input is split at the first NUL-free "\n%%\n" into main.cf and master.cf
 * text; both are parsed, a few values are expanded, every listener gets
 * its override copy and settings_load runs on each. Any crash, leak or
 * sanitizer report is a bug: bad input must only ever give an error.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"

static const char *const names[] = {
	"myhostname", "mydomain", "mydestination", "smtpd_banner",
	"virtual_mailbox_domains", "message_size_limit", "a", "b", "x",
};

static void
exercise(const struct config *c)
{
	struct settings s;
	struct strlist set;
	struct errbuf err;
	char *e;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		(void)config_get(c, names[i]);
		(void)config_get_err(c, names[i], &err);
	}
	strlist_init(&set);
	config_names_set(c, &set);
	for (size_t i = 0; i < set.n && i < 64; i++) {
		const char *file;
		int line;

		(void)config_get(c, set.v[i]);
		(void)config_where(c, set.v[i], &file, &line);
	}
	strlist_free(&set);
	if ((e = config_expand(c, "$a ${b?x} ${x:y} $$", &err)) != NULL)
		free(e);
	memset(&s, 0, sizeof(s));
	(void)settings_load(&s, c, &err);
	settings_free(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strlist warnings;
	struct errbuf err;
	struct config *c;
	char *text, *sep, *master = NULL;

	if (size > 256 * 1024)
		return 0;
	text = xstrndup((const char *)data, size);	/* stops at a NUL */
	if ((sep = strstr(text, "\n%%\n")) != NULL) {
		*sep = '\0';
		master = sep + 4;
	}
	strlist_init(&warnings);
	c = config_parse_main(text, "main.cf", &warnings, &err);
	if (c != NULL) {
		exercise(c);
		if (master &&
		    config_parse_master(c, master, "master.cf", &warnings, &err) == 0) {
			const struct master_cf *m = config_master(c);

			for (size_t i = 0; i < m->n && i < 16; i++) {
				struct config *l = config_with_service(c, &m->v[i], &err);

				if (l) {
					exercise(l);
					config_free(&l);
				}
				l = config_with_overrides(c, &m->v[i].overrides, &err);
				config_free(&l);
			}
		}
		config_free(&c);
	}
	strlist_free(&warnings);
	free(text);
	return 0;
}
