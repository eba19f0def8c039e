/*
 * receive_override.c - parses receive_override_options (see
 * receive_override.h).
 * Must not: allocate more than the split list, or accept an unknown name.
 */
#include <strings.h>

#include "core/lib/strlist.h"
#include "core/receive_override.h"

static const struct { const char *name; unsigned bit; } names[] = {
	{ "no_unknown_recipient_checks", RECV_OVR_NO_UNKNOWN_RCPT },
	{ "no_address_mappings", RECV_OVR_NO_ADDRESS_MAPPINGS },
	{ "no_header_body_checks", RECV_OVR_NO_HEADER_BODY_CHECKS },
	{ "no_milters", RECV_OVR_NO_MILTERS },
};

int
receive_override_parse(const char *value, unsigned *bits_r, struct errbuf *err)
{
	struct strlist l;
	int rc = 0;

	*bits_r = 0;
	strlist_init(&l);
	(void)strlist_split(&l, value ? value : "");
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		size_t k;

		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (strcasecmp(l.v[i], names[k].name) == 0)
				break;
		if (k == sizeof(names) / sizeof(names[0])) {
			errbuf_set(err, "receive_override_options: unknown "
				   "option \"%.100s\"", l.v[i]);
			rc = -1;
		} else
			*bits_r |= names[k].bit;
	}
	strlist_free(&l);
	return rc;
}

bool
receive_override_has(const char *value, unsigned bit)
{
	struct errbuf err;
	unsigned bits;

	if (value == NULL || *value == '\0')
		return false;
	errbuf_clear(&err);
	return receive_override_parse(value, &bits, &err) == 0 &&
	       (bits & bit) != 0;
}
