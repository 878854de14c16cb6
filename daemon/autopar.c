/*
 * autopar.c - how many slices walk at once under `parallel: auto` (autopar.h).
 */
#include "backfilld/autopar.h"

void bf_autopar_init(bf_autopar *a, int64_t now)
{
	*a = (bf_autopar){.walkers = 1, .room_since = -1, .changed_at = now};
}

size_t bf_autopar_decide(bf_autopar *a, bool room, size_t left, int64_t now)
{
	size_t most = left < BF_AUTOPAR_MAX ? left : BF_AUTOPAR_MAX;

	if (most < 1)
		most = 1;
	if (!room) {
		a->room_since = -1;
		if (a->walkers > 1 && now - a->changed_at >= BF_AUTOPAR_SETTLE_MS) {
			a->walkers /= 2;
			a->changed_at = now;
		}
	} else if (a->room_since < 0) {
		a->room_since = now;
	} else if (now - a->room_since >= BF_AUTOPAR_GROW_MS && a->walkers < most) {
		a->walkers++;
		a->changed_at = now;
		a->room_since = now; /* the next walker after room with this one */
	}
	if (a->walkers > most)
		a->walkers = most;
	return a->walkers;
}
