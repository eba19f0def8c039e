/*
 * throttle.c - per-IP authentication failure counts in a fixed-size table
 * (hashing by address; a colliding newer address takes the slot), decaying
 * one step per minute. The delay grows with the count: brute force gets
 * slower, a user who mistyped twice does not notice.
 * Must not: grow with the number of clients, or be used off the loop.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth/throttle.h"

#define SLOTS       4096
#define DECAY_SECS  60
#define FREE_FAILS  3
#define MAX_DELAY   30

struct slot {
	char     addr[46];
	unsigned count;
	time_t   last;
};

static struct slot table[SLOTS];

static struct slot *
find(const char *addr, time_t now, int create)
{
	uint32_t h = 2166136261u;
	struct slot *s;

	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	s = &table[h % SLOTS];
	if (strcmp(s->addr, addr) != 0) {
		if (!create)
			return NULL;
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
		s->count = 0;
		s->last = now;
	}
	if (now > s->last) {
		time_t steps = (now - s->last) / DECAY_SECS;

		s->count = (time_t)s->count > steps ? s->count - (unsigned)steps : 0;
		s->last += steps * DECAY_SECS;
	}
	return s;
}

unsigned
throttle_auth_fail(const char *addr, time_t now)
{
	struct slot *s = find(addr, now, 1);
	unsigned d;

	if (s->count < 1000)
		s->count++;
	s->last = now;
	if (s->count <= FREE_FAILS)
		return 0;
	d = s->count - FREE_FAILS;
	return d > MAX_DELAY ? MAX_DELAY : d;
}

unsigned
throttle_auth_count(const char *addr, time_t now)
{
	struct slot *s = find(addr, now, 0);

	return s ? s->count : 0;
}
