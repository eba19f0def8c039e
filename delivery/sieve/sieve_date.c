/*
 * sieve_date.c - dates for the Sieve date extension (RFC 5260): parses
 * RFC 5322 date-time values (with the obsolete zone names and two-digit
 * years of section 4.3) and shows a time as a date-part (year, month,
 * day, date, julian, hour, minute, second, time, iso8601, std11, zone,
 * weekday) in a given zone.
 * Must not: read the clock (the caller passes the time) or depend on the
 * process's TZ except in sieve_local_zone.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "delivery/sieve/sieve_int.h"

static const char *const months[] = { "jan", "feb", "mar", "apr", "may",
	"jun", "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	"Fri", "Sat" };

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static long long
days_from_civil(long long y, int m, int d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static void
civil_from_days(long long z, long long *y, int *m, int *d)
{
	long long era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	*y = (long long)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y += *m <= 2;
}

/* Skips white space and (nested) comments, RFC 5322 CFWS. */
static const char *
cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		{
			int depth = 0;

			do {
				if (*p == '\\' && p[1])
					p++;
				else if (*p == '(')
					depth++;
				else if (*p == ')')
					depth--;
				p++;
			} while (*p && depth > 0 && depth < 64);
			if (depth != 0)
				return p + strlen(p);
		}
	}
}

static int
num(const char **pp, int mind, int maxd, long long *v)
{
	const char *p = *pp;
	int n = 0;

	*v = 0;
	while (isdigit((unsigned char)*p) && n < maxd) {
		*v = *v * 10 + (*p - '0');
		p++;
		n++;
	}
	if (n < mind || isdigit((unsigned char)*p))
		return -1;
	*pp = p;
	return 0;
}

int
sieve_zone_parse(const char *s, int *zone)
{
	int sign;

	if ((s[0] != '+' && s[0] != '-') || strlen(s) != 5)
		return -1;
	for (int i = 1; i < 5; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	sign = s[0] == '-' ? -1 : 1;
	if ((s[3] - '0') * 10 + (s[4] - '0') > 59)
		return -1;
	*zone = sign * (((s[1] - '0') * 10 + (s[2] - '0')) * 60
			+ (s[3] - '0') * 10 + (s[4] - '0'));
	return 0;
}

/* RFC 5322 4.3 obs-zone; military zones are treated as -0000 there. */
static int
zone_name(const char *p, size_t n, int *zone)
{
	static const struct { const char *n; int z; } names[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "UTC", 0 }, { "Z", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 },
		{ "CDT", -300 }, { "MST", -420 }, { "MDT", -360 },
		{ "PST", -480 }, { "PDT", -420 },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].n) == n && strncasecmp(p, names[i].n, n) == 0) {
			*zone = names[i].z;
			return 0;
		}
	if (n == 1 && isalpha((unsigned char)*p)) {
		*zone = 0;
		return 0;
	}
	return -1;
}

int
sieve_date_parse(const char *s, long long *t_r, int *zone_r)
{
	const char *p = cfws(s), *q;
	long long day, year, hh, mm, ss = 0;
	int mon = -1, zone;

	/* [ day-of-week "," ] */
	if (isalpha((unsigned char)*p)) {
		q = p;
		while (isalpha((unsigned char)*q))
			q++;
		p = cfws(q);
		if (*p != ',')
			return -1;
		p = cfws(p + 1);
	}
	if (num(&p, 1, 2, &day) < 0 || day < 1 || day > 31)
		return -1;
	p = cfws(p);
	for (int i = 0; i < 12; i++)
		if (strncasecmp(p, months[i], 3) == 0
		    && !isalpha((unsigned char)p[3]))
			mon = i + 1;
	if (mon < 0)
		return -1;
	p = cfws(p + 3);
	q = p;
	if (num(&p, 2, 4, &year) < 0)
		return -1;
	if (p - q == 2)		/* obs-year: 00-49 are 2000-2049 */
		year += year < 50 ? 2000 : 1900;
	else if (p - q == 3)
		year += 1900;
	p = cfws(p);
	if (num(&p, 1, 2, &hh) < 0 || hh > 23)
		return -1;
	p = cfws(p);
	if (*p++ != ':')
		return -1;
	p = cfws(p);
	if (num(&p, 2, 2, &mm) < 0 || mm > 59)
		return -1;
	p = cfws(p);
	if (*p == ':') {
		p = cfws(p + 1);
		if (num(&p, 2, 2, &ss) < 0 || ss > 60)
			return -1;
		p = cfws(p);
	}
	if (*p == '+' || *p == '-') {
		char z[6];

		/* +hhmm: never read past the end of a shorter string */
		if (strnlen(p, 5) != 5)
			return -1;
		memcpy(z, p, 5);
		z[5] = '\0';
		if (sieve_zone_parse(z, &zone) < 0)
			return -1;
		p += 5;
	} else {
		q = p;
		while (isalpha((unsigned char)*q))
			q++;
		if (zone_name(p, (size_t)(q - p), &zone) < 0)
			return -1;
		p = q;
	}
	if (*cfws(p) != '\0')
		return -1;
	if (day > 28) {
		long long y2;
		int m2, d2;

		/* "31 Feb" is not a date */
		civil_from_days(days_from_civil(year, mon, (int)day), &y2, &m2, &d2);
		if (m2 != mon)
			return -1;
	}
	*t_r = days_from_civil(year, mon, (int)day) * 86400 + hh * 3600 + mm * 60
	       + (ss > 59 ? 59 : ss) - (long long)zone * 60;
	*zone_r = zone;
	return 0;
}

static const char *const parts[] = { "year", "month", "day", "date",
	"julian", "hour", "minute", "second", "time", "iso8601", "std11",
	"zone", "weekday" };

bool
sieve_date_part_known(const char *name)
{
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (strcasecmp(name, parts[i]) == 0)
			return true;
	return false;
}

int
sieve_date_part(long long t, int zone, const char *part, struct buf *out)
{
	long long lt = t + (long long)zone * 60, days, y;
	long long sec = lt % 86400;
	int m, d, wd;
	char z[16];
	int az = zone < 0 ? -zone : zone;

	if (sec < 0)
		sec += 86400;
	days = (lt - sec) / 86400;
	civil_from_days(days, &y, &m, &d);
	wd = (int)(((days % 7) + 11) % 7);	/* 1970-01-01 was a Thursday */
	snprintf(z, sizeof(z), "%c%02d%02d", zone < 0 ? '-' : '+', az / 60, az % 60);
	buf_reset(out);
	if (strcasecmp(part, "year") == 0)
		buf_printf(out, "%04lld", y);
	else if (strcasecmp(part, "month") == 0)
		buf_printf(out, "%02d", m);
	else if (strcasecmp(part, "day") == 0)
		buf_printf(out, "%02d", d);
	else if (strcasecmp(part, "date") == 0)
		buf_printf(out, "%04lld-%02d-%02d", y, m, d);
	else if (strcasecmp(part, "julian") == 0)	/* Modified Julian Day */
		buf_printf(out, "%lld", days + 40587);
	else if (strcasecmp(part, "hour") == 0)
		buf_printf(out, "%02lld", sec / 3600);
	else if (strcasecmp(part, "minute") == 0)
		buf_printf(out, "%02lld", sec / 60 % 60);
	else if (strcasecmp(part, "second") == 0)
		buf_printf(out, "%02lld", sec % 60);
	else if (strcasecmp(part, "time") == 0)
		buf_printf(out, "%02lld:%02lld:%02lld", sec / 3600, sec / 60 % 60,
			   sec % 60);
	else if (strcasecmp(part, "iso8601") == 0)
		buf_printf(out, "%04lld-%02d-%02dT%02lld:%02lld:%02lld%c%02d:%02d",
			   y, m, d, sec / 3600, sec / 60 % 60, sec % 60,
			   zone < 0 ? '-' : '+', az / 60, az % 60);
	else if (strcasecmp(part, "std11") == 0) {
		static const char *const mn[] = { "Jan", "Feb", "Mar", "Apr",
			"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

		buf_printf(out, "%s, %d %s %04lld %02lld:%02lld:%02lld %s",
			   wdays[wd], d, mn[m - 1], y, sec / 3600, sec / 60 % 60,
			   sec % 60, z);
	} else if (strcasecmp(part, "zone") == 0)
		buf_puts(out, z);
	else if (strcasecmp(part, "weekday") == 0)
		buf_printf(out, "%d", wd);
	else
		return 0;
	return 1;
}

int
sieve_local_zone(long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}
