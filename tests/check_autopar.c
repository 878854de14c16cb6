/*
 * check_autopar.c - parallel: auto's walkers: one to start, one more after each stretch of
 * room, halved at the first look without room (not twice within the settle time), never
 * more than the cap or the slices left, never fewer than one.
 */
#include <check.h>
#include <stdint.h>

#include "backfilld/autopar.h"
#include "suites.h"

/* Looks once a second from `from` to `to` (ms), each with `room`; the walkers at the end. */
static size_t looks(bf_autopar *a, bool room, size_t left, int64_t from, int64_t to)
{
	size_t w = a->walkers;

	for (int64_t t = from; t <= to; t += 1000)
		w = bf_autopar_decide(a, room, left, t);
	return w;
}

START_TEST(test_grows_with_room)
{
	bf_autopar a;

	bf_autopar_init(&a, 0);
	ck_assert_uint_eq(a.walkers, 1);
	/* the stretch starts at the first look with room: one more after GROW_MS of it */
	ck_assert_uint_eq(looks(&a, true, 10, 1000, 1000 + BF_AUTOPAR_GROW_MS - 1000), 1);
	ck_assert_uint_eq(bf_autopar_decide(&a, true, 10, 1000 + BF_AUTOPAR_GROW_MS), 2);
	/* and the next after another stretch, with the new walker in it */
	ck_assert_uint_eq(bf_autopar_decide(&a, true, 10, 2000 + BF_AUTOPAR_GROW_MS), 2);
	ck_assert_uint_eq(bf_autopar_decide(&a, true, 10, 1000 + 2 * BF_AUTOPAR_GROW_MS), 3);
	/* up to the cap, whatever the room */
	ck_assert_uint_eq(looks(&a, true, 10, 20000, 200000), BF_AUTOPAR_MAX);
}
END_TEST

START_TEST(test_room_must_last)
{
	bf_autopar a;

	bf_autopar_init(&a, 0);
	/* one look without room in the middle starts the stretch over */
	looks(&a, true, 10, 1000, 1000 + BF_AUTOPAR_GROW_MS - 1000);
	ck_assert_uint_eq(bf_autopar_decide(&a, false, 10, 1000 + BF_AUTOPAR_GROW_MS), 1);
	ck_assert_uint_eq(
	        looks(&a, true, 10, 2000 + BF_AUTOPAR_GROW_MS, 1000 + 2 * BF_AUTOPAR_GROW_MS), 1);
	ck_assert_uint_eq(bf_autopar_decide(&a, true, 10, 2000 + 2 * BF_AUTOPAR_GROW_MS), 2);
}
END_TEST

START_TEST(test_halves_without_room)
{
	bf_autopar a;
	int64_t t;

	bf_autopar_init(&a, 0);
	looks(&a, true, 10, 1000, 200000);
	ck_assert_uint_eq(a.walkers, 4);
	t = a.changed_at + BF_AUTOPAR_SETTLE_MS;
	ck_assert_uint_eq(bf_autopar_decide(&a, false, 10, t), 2);
	/* not again before the settle time: the signals have to see the change first */
	ck_assert_uint_eq(bf_autopar_decide(&a, false, 10, t + BF_AUTOPAR_SETTLE_MS - 1), 2);
	ck_assert_uint_eq(bf_autopar_decide(&a, false, 10, t + BF_AUTOPAR_SETTLE_MS), 1);
	/* never below one */
	ck_assert_uint_eq(looks(&a, false, 10, t + 2 * BF_AUTOPAR_SETTLE_MS, t + 60000), 1);
}
END_TEST

START_TEST(test_bounded_by_slices_left)
{
	bf_autopar a;

	bf_autopar_init(&a, 0);
	ck_assert_uint_eq(looks(&a, true, 2, 1000, 100000), 2);
	/* slices finish: fewer left, fewer walkers */
	ck_assert_uint_eq(bf_autopar_decide(&a, true, 1, 101000), 1);
	ck_assert_uint_eq(bf_autopar_decide(&a, true, 0, 102000), 1);
}
END_TEST

Suite *autopar_suite(void)
{
	Suite *s = suite_create("autopar");
	TCase *tc = tcase_create("walkers");

	tcase_add_test(tc, test_grows_with_room);
	tcase_add_test(tc, test_room_must_last);
	tcase_add_test(tc, test_halves_without_room);
	tcase_add_test(tc, test_bounded_by_slices_left);
	suite_add_tcase(s, tc);
	return s;
}
