/*
 * fuzz_config.c - the configuration loader on any bytes (libFuzzer entry point; replay.c runs
 * it on the corpus and every crash kept, in `make check`).
 *
 * The loader must refuse what it cannot read with messages and never crash, leak or loop.
 * The word "include" is spelt "inclxde" in the copy parsed: an include reads files of this
 * machine by glob, which is the filesystem's behaviour to fuzz, not the parser's (the key
 * becomes an unknown one, the rest of the input parses as before).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/config.h"
#include "backfilld/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *text;
	bf_config *cfg = NULL;
	bf_errors errs = {0};

	text = malloc(n + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, n);
	text[n] = '\0';
	for (size_t i = 0; i + 7 <= n; i++)
		if (memcmp(text + i, "include", 7) == 0)
			text[i + 4] = 'x';
	if (bf_config_parse_string("fuzz.yaml", text, &cfg, &errs) == 0)
		bf_config_free(cfg);
	bf_errors_clear(&errs);
	free(text);
	return 0;
}
