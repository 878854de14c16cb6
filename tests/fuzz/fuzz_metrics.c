/*
 * fuzz_metrics.c - a scraper's request head on any bytes, cut in pieces as a socket delivers
 * it (libFuzzer entry point; replay.c runs it in `make check`).
 *
 * The first byte of the input chooses where the pieces are cut; the rest is the request. The
 * head never grows past its buffer, a verdict never changes once given, and only a head that
 * starts "GET /metrics" and a separator is ever a scrape.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static bf_metrics_head h;
	size_t piece;

	if (n == 0)
		return 0;
	piece = (size_t)data[0] + 1;
	memset(&h, 0, sizeof(h));
	for (size_t at = 1; at < n; at += piece) {
		size_t len = n - at < piece ? n - at : piece;
		bf_metrics_verdict v = bf_metrics_head_feed(&h, (const char *)data + at, len);

		if (h.len > sizeof(h.buf))
			abort();
		if (v == BF_METRICS_SCRAPE && memcmp(h.buf, "GET /metrics", 12) != 0)
			abort();
		if (v != BF_METRICS_MORE)
			break;
	}
	return 0;
}
