/*
 * backfilld.c - the daemon's command line (SPEC.md, "Command line").
 *
 * Parses the options, loads the configuration (every error listed, exit 1), sets up the log,
 * then hands over to the daemon loop, or to the checker for --check.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/check.h"
#include "backfilld/config.h"
#include "backfilld/daemon.h"
#include "backfilld/log.h"
#include "backfilld/version.h"

#define DEFAULT_CONFIG "/etc/backfilld/backfilld.yaml"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: backfilld [-c FILE] [--check] [--dry-run] [--exit-when-done] "
	        "[-v|--verbose]\n"
	        "                 [--log-format text|json] [--version] [--help]\n"
	        "\n"
	        "  -c FILE             configuration (default " DEFAULT_CONFIG ")\n"
	        "  --check             validate the file and every job against the live schema,\n"
	        "                      print each job's batch SQL and estimate; change nothing\n"
	        "  --dry-run           run as usual but roll back every batch\n"
	        "  --exit-when-done    exit once every job is done or failed (0, or 3 if one "
	        "failed)\n"
	        "  -v, --verbose       log at debug level\n"
	        "  --log-format FMT    text (logfmt, default) or json\n"
	        "\n"
	        "Signals: SIGUSR1 pause, SIGUSR2 resume, SIGHUP reload, SIGTERM/SIGINT stop.\n");
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_DRY, OPT_EXIT, OPT_FORMAT, OPT_VERSION, OPT_HELP };
	static const struct option longopts[] = {
	        {"check", no_argument, NULL, OPT_CHECK},
	        {"dry-run", no_argument, NULL, OPT_DRY},
	        {"exit-when-done", no_argument, NULL, OPT_EXIT},
	        {"verbose", no_argument, NULL, 'v'},
	        {"log-format", required_argument, NULL, OPT_FORMAT},
	        {"version", no_argument, NULL, OPT_VERSION},
	        {"help", no_argument, NULL, OPT_HELP},
	        {NULL, 0, NULL, 0},
	};
	bf_daemon_opts opts = {.config_path = DEFAULT_CONFIG};
	enum bf_log_format format = BF_LOG_TEXT;
	bool check = false;
	bool journal = getenv("JOURNAL_STREAM") != NULL;
	bf_config *cfg = NULL;
	bf_errors errs = {0};
	bf_daemon *d;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:v", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			opts.config_path = optarg;
			break;
		case 'v':
			opts.verbose = true;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case OPT_DRY:
			opts.dry_run = true;
			break;
		case OPT_EXIT:
			opts.exit_when_done = true;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "text") == 0) {
				format = BF_LOG_TEXT;
			} else if (strcmp(optarg, "json") == 0) {
				format = BF_LOG_JSON;
			} else {
				fprintf(stderr,
				        "backfilld: --log-format: expected text or json, got "
				        "\"%s\"\n",
				        optarg);
				return 1;
			}
			break;
		case OPT_VERSION:
			printf("backfilld %s\n", BF_VERSION);
			return 0;
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "backfilld: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	bf_log_setup(BF_LOG_INFO, format, journal);
	if (bf_config_load(opts.config_path, &cfg, &errs) != 0) {
		/* the operator's editor wants FILE:LINE:COL lines, one per problem */
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		fprintf(stderr, "backfilld: %s: %zu error%s, nothing started\n", opts.config_path,
		        errs.n, errs.n == 1 ? "" : "s");
		bf_errors_clear(&errs);
		return 1;
	}
	bf_log_set_level(opts.verbose ? BF_LOG_DEBUG : cfg->log_level);
	if (check) {
		rc = bf_check_run(cfg);
		bf_config_free(cfg);
		return rc;
	}
	d = bf_daemon_new(&opts, cfg);
	rc = bf_daemon_run(d);
	bf_daemon_free(d);
	return rc;
}
