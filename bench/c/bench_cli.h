/*
 * bench_cli.h: what the C contenders (usbfs_bench.c, libusb_bench.c) share:
 * the command line every contender takes (bench/run_in_guest.ts passes the
 * same flags to each), the SourceSink pattern, the clocks and the JSON
 * string writer of the one result line. Header-only: each program is one
 * `gcc -O2 -Wall -Wextra x.c` (scripts/bench.ts).
 */
#ifndef USBKIT_BENCH_CLI_H
#define USBKIT_BENCH_CLI_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* SourceSink pattern 1: byte i of each packet is (i % wMaxPacketSize) % 63
 * (drivers/usb/gadget/function/f_sourcesink.c, reinit_write_data and
 * check_read_data). 1024 is the SuperSpeed bulk wMaxPacketSize (USB 3.2
 * spec table 9-24; f_sourcesink.c ss_source_desc). */
#define PATTERN_PACKET 1024
#define PATTERN_MOD 63

/* USB 2.0 spec 9.4 and table 9-8: GET_DESCRIPTOR(DEVICE) is 18 bytes. */
#define DEVICE_DESC_LEN 18

#define TIMEOUT_MS 5000

/* The options, with the defaults every contender shares; `mem` is the
 * program's own (its default and the one alternative, "malloc"). */
struct bench_opt {
	const char *dev;
	const char *vidpid;
	const char *workload;
	const char *mem;
	const char *label;
	long long bytes;
	int xfer;
	int inflight;
	long count;
	int rt_size;
	int iface;
	unsigned ep_in;
	unsigned ep_out;
	double max_seconds;
};

#define BENCH_OPT_DEFAULTS(default_mem)                                                        \
	{                                                                                      \
		.dev = NULL, .vidpid = NULL, .workload = "in", .mem = (default_mem),           \
		.label = NULL, .bytes = 256LL << 20, .xfer = 64 << 10, .inflight = 16,         \
		.count = 2000, .rt_size = 64, .iface = 0, .ep_in = 0x81, .ep_out = 0x02,       \
		.max_seconds = 120,                                                            \
	}

/* Prints the usage of `program` (whose --mem is `default_mem` or "malloc")
 * and exits 2. */
static void __attribute__((noreturn)) bench_usage(const char *program, const char *default_mem)
{
	fprintf(stderr,
		"usage: %s (--dev /dev/bus/usb/BBB/DDD | --vidpid VVVV:PPPP)\n"
		"  [--workload in|out|rt|ctrl] [--mem %s|malloc] [--bytes N] [--xfer N]\n"
		"  [--inflight N] [--count N] [--rt-size N] [--iface N] [--ep-in 0x81]\n"
		"  [--ep-out 0x02] [--max-seconds S] [--label NAME]\n",
		program, default_mem);
	exit(2);
}

/* Parses `--flag value` pairs into `o` (numbers may be hex: 0x81); a bad
 * flag, a missing value, no device or a bad --mem prints the usage. */
static void bench_parse_args(int argc, char **argv, struct bench_opt *o, const char *program)
{
	const char *default_mem = o->mem;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			bench_usage(program, default_mem);
		i++;
		if (!strcmp(a, "--dev"))
			o->dev = v;
		else if (!strcmp(a, "--vidpid"))
			o->vidpid = v;
		else if (!strcmp(a, "--workload"))
			o->workload = v;
		else if (!strcmp(a, "--mem"))
			o->mem = v;
		else if (!strcmp(a, "--label"))
			o->label = v;
		else if (!strcmp(a, "--bytes"))
			o->bytes = strtoll(v, NULL, 0);
		else if (!strcmp(a, "--xfer"))
			o->xfer = (int)strtol(v, NULL, 0);
		else if (!strcmp(a, "--inflight"))
			o->inflight = (int)strtol(v, NULL, 0);
		else if (!strcmp(a, "--count"))
			o->count = strtol(v, NULL, 0);
		else if (!strcmp(a, "--rt-size"))
			o->rt_size = (int)strtol(v, NULL, 0);
		else if (!strcmp(a, "--iface"))
			o->iface = (int)strtol(v, NULL, 0);
		else if (!strcmp(a, "--ep-in"))
			o->ep_in = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--ep-out"))
			o->ep_out = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--max-seconds"))
			o->max_seconds = strtod(v, NULL);
		else
			bench_usage(program, default_mem);
	}
	if ((!o->dev && !o->vidpid) || o->inflight < 1 || o->xfer < 1 || o->count < 1 ||
	    (strcmp(o->mem, default_mem) && strcmp(o->mem, "malloc")))
		bench_usage(program, default_mem);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* Writes `s` as a JSON string. */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

#endif
