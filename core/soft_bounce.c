/*
 * soft_bounce.c - soft_bounce = yes (see soft_bounce.h): turns permanent
 * failures into temporary ones, for SMTP replies and delivery outcomes.
 * Must not: allocate, log, or change anything but the leading digits.
 */
#include <string.h>

#include "core/soft_bounce.h"

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

void
soft_bounce_reply(char *text)
{
	char *line = text;

	while (line != NULL && *line != '\0') {
		if (line[0] == '5' && is_digit(line[1]) && is_digit(line[2]) &&
		    (line[3] == ' ' || line[3] == '-' || line[3] == '\0' ||
		     line[3] == '\r' || line[3] == '\n')) {
			line[0] = '4';
			if ((line[3] == ' ' || line[3] == '-') &&
			    line[4] == '5' && line[5] == '.' && is_digit(line[6]))
				line[4] = '4';
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
}

bool
soft_bounce_delivery(bool on, enum deliver_status *st, char *dsn)
{
	if (!on || *st != DELIVER_BOUNCE)
		return false;
	*st = DELIVER_DEFER;
	if (dsn[0] == '5')
		dsn[0] = '4';
	else if (dsn[0] == '\0')
		strcpy(dsn, "4.0.0");
	return true;
}
