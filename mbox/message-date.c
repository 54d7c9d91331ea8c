/*
 * message-date.c: RFC 5322 3.3 date-time, with the obsolete forms of 4.3 and the asctime()
 * layout some old software writes ("Mon Jan  1 10:00:00 2024"), for SENTBEFORE/SENTON/SENTSINCE.
 */
#include "mbox/message.h"

#include <string.h>

/* Tokens looked at; a real date has at most seven. */
#define DATE_MAX_TOKENS	12

struct dtok {
	const char *s;
	size_t len;
	bool digits;	/* all digits */
};

static const char *const months[12] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"
};

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int
month_of(const struct dtok *t)
{
	int m;

	if (t->len < 3 || t->digits)
		return -1;
	for (m = 0; m < 12; m++) {
		if (lower(t->s[0]) == months[m][0] && lower(t->s[1]) == months[m][1] &&
		    lower(t->s[2]) == months[m][2])
			return m;
	}
	return -1;
}

static long
number(const struct dtok *t)
{
	long v = 0;
	size_t i;

	if (!t->digits || t->len > 6)
		return -1;
	for (i = 0; i < t->len; i++)
		v = v * 10 + (t->s[i] - '0');
	return v;
}

/* "hh:mm" or "hh:mm:ss" */
static bool
parse_time(const struct dtok *t, int *h, int *m, int *s)
{
	long v[3] = { 0, 0, 0 };
	size_t i;
	int n = 0, digits = 0;

	for (i = 0; i < t->len; i++) {
		char c = t->s[i];

		if (c >= '0' && c <= '9') {
			if (++digits > 2)
				return false;
			v[n] = v[n] * 10 + (c - '0');
		} else if (c == ':' && digits > 0 && n < 2) {
			n++;
			digits = 0;
		} else {
			return false;
		}
	}
	if (n < 1 || digits == 0 || v[0] > 23 || v[1] > 59 || v[2] > 60)
		return false;
	*h = (int)v[0];
	*m = (int)v[1];
	*s = v[2] == 60 ? 59 : (int)v[2];
	return true;
}

/* Zone: "+hhmm"/"-hhmm" or a name of RFC 5322 4.3; unknown names mean -0000, i.e. 0. */
static bool
parse_zone(const struct dtok *t, int *min)
{
	static const struct {
		const char *name;
		int off;
	} names[] = {
		{ "ut", 0 }, { "utc", 0 }, { "gmt", 0 }, { "z", 0 },
		{ "est", -300 }, { "edt", -240 }, { "cst", -360 }, { "cdt", -300 },
		{ "mst", -420 }, { "mdt", -360 }, { "pst", -480 }, { "pdt", -420 },
	};
	size_t i;

	if (t->len == 5 && (t->s[0] == '+' || t->s[0] == '-')) {
		int v = 0;

		for (i = 1; i < 5; i++) {
			if (t->s[i] < '0' || t->s[i] > '9')
				return false;
			v = v * 10 + (t->s[i] - '0');
		}
		if (v % 100 > 59)
			return false;
		*min = (v / 100 * 60 + v % 100) * (t->s[0] == '-' ? -1 : 1);
		return true;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (msg_name_eq(t->s, t->len, names[i].name)) {
			*min = names[i].off;
			return true;
		}
	}
	return false;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
static long long
days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static size_t
tokenize(const char *s, size_t len, struct dtok *tok)
{
	size_t i = 0, n = 0;

	while (i < len && n < DATE_MAX_TOKENS) {
		char c = s[i];

		if (c == '(') {
			unsigned int depth = 0;

			for (; i < len; i++) {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				else if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0)
					break;
			}
			i++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',') {
			i++;
			continue;
		}
		tok[n].s = s + i;
		tok[n].digits = true;
		for (; i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n' &&
		     s[i] != ',' && s[i] != '('; i++) {
			size_t tl = (size_t)(s + i - tok[n].s);

			/* "1-Jan-2024": "-" after a day or a month name separates; a leading
			 * "-" is a zone sign */
			if (s[i] == '-' && tl > 0 &&
			    ((tok[n].digits && tl <= 2) || (!tok[n].digits && tl == 3)))
				break;
			if (s[i] < '0' || s[i] > '9')
				tok[n].digits = false;
		}
		tok[n].len = (size_t)(s + i - tok[n].s);
		if (i < len && s[i] == '-')
			i++;
		n++;
	}
	return n;
}

int
msg_date_parse(const char *s, size_t len, time_t *t_r, int *tz_min_r)
{
	struct dtok tok[DATE_MAX_TOKENS];
	size_t n = tokenize(s, len, tok), i = 0;
	long day = -1, year = -1;
	int mon = -1, h = 0, mi = 0, se = 0, zone = 0;
	bool have_time = false;

	/* optional day of week */
	if (i < n && !tok[i].digits && month_of(&tok[i]) < 0)
		i++;
	if (i < n && tok[i].digits) {
		/* RFC 5322: day month year */
		day = number(&tok[i++]);
		if (i < n)
			mon = month_of(&tok[i++]);
		if (i < n)
			year = number(&tok[i++]);
	} else if (i < n && month_of(&tok[i]) >= 0) {
		/* asctime: month day time year */
		mon = month_of(&tok[i++]);
		if (i < n)
			day = number(&tok[i++]);
	}
	for (; i < n; i++) {
		int z;

		if (!have_time && parse_time(&tok[i], &h, &mi, &se))
			have_time = true;
		else if (year < 0 && tok[i].digits)
			year = number(&tok[i]);
		else if (parse_zone(&tok[i], &z))
			zone = z;
	}
	if (day < 1 || day > 31 || mon < 0 || year < 0)
		return -1;
	/* RFC 5322 4.3: two-digit years are 19xx from 50 up, 20xx below; three digits add 1900 */
	if (year < 50)
		year += 2000;
	else if (year < 1000)
		year += 1900;
	if (year > 9999)
		return -1;
	*t_r = (time_t)(days_from_civil(year, mon + 1, (int)day) * 86400LL + h * 3600LL +
			mi * 60LL + se - zone * 60LL);
	*tz_min_r = zone;
	return 0;
}
