/*
 * libusb_bench: the libusb-1.0 baseline. Asynchronous API
 * (libusb_submit_transfer + libusb_handle_events_completed) with buffers
 * from libusb_dev_mem_alloc (usbfs mmap, --mem devmem) or malloc
 * (--mem malloc). Same workloads, options and one-line JSON output as
 * usbfs_bench.c, so bench/run_in_guest.ts treats them alike.
 *
 * Opens the device by usbfs path (--dev: the fd is handed to libusb with
 * libusb_wrap_sys_device, and device discovery is switched off, since the
 * guest has no udev) or by --vidpid through libusb's own discovery.
 *
 * Build (dynamically: Debian ships no static libudev that libusb-1.0.a
 * would need): gcc -O2 -Wall -o libusb_bench libusb_bench.c -lusb-1.0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libusb-1.0/libusb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_cli.h"

static struct bench_opt opt = BENCH_OPT_DEFAULTS("devmem");

static libusb_context *ctx;
static libusb_device_handle *handle;
static int claimed;
static char mem_used[96] = "";

static const char *contender(void)
{
	if (opt.label)
		return opt.label;
	return strcmp(opt.mem, "devmem") == 0 ? "libusb-devmem" : "libusb-malloc";
}

static void cleanup(void)
{
	if (handle) {
		if (claimed)
			libusb_release_interface(handle, opt.iface); /* re-attaches (auto-detach) */
		libusb_close(handle);
		handle = NULL;
	}
	if (ctx) {
		libusb_exit(ctx);
		ctx = NULL;
	}
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printf("{\"ok\":false,\"contender\":");
	json_string(contender());
	printf(",\"workload\":");
	json_string(opt.workload);
	printf(",\"error\":");
	json_string(msg);
	printf("}\n");
	fflush(stdout);
	_exit(1); /* not cleanup(): transfers may still be in flight */
}

static void __attribute__((noreturn)) fail_usb(const char *what, int rc)
{
	if (rc == LIBUSB_ERROR_NO_MEM)
		fail("%s: %s (usbfs_memory_mb caps usbfs buffers)", what, libusb_error_name(rc));
	fail("%s: %s", what, libusb_error_name(rc));
}

struct result {
	long long bytes;
	long transfers;
	double seconds;
	double cpu;
	double lat_median_us;
	double lat_p90_us;
	int has_lat;
};

/* Peak RSS of this program, KiB: VmHWM of /proc/self/status (fs/proc/
 * task_mmu.c task_mem). Not ru_maxrss: a forked child starts with the
 * parent's RSS as its high-water mark (kernel/fork.c dup_mm) and execve
 * keeps it in signal->maxrss (fs/exec.c exec_mmap), which getrusage reports
 * (kernel/sys.c), so a child of a 50 MB driver would report 50 MB. */
static long peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void emit_result(const struct result *r)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	const struct libusb_version *v = libusb_get_version();
	printf("{\"ok\":true,\"contender\":");
	json_string(contender());
	printf(",\"workload\":");
	json_string(opt.workload);
	printf(",\"mem\":");
	json_string(mem_used);
	printf(",\"bytes\":%lld,\"transfers\":%ld,\"seconds\":%.6f", r->bytes, r->transfers,
	       r->seconds);
	printf(",\"cpu_s\":%.6f", r->cpu);
	printf(",\"cpu_total_s\":%.6f",
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
		       ru.ru_stime.tv_usec / 1e6);
	printf(",\"peak_rss_kb\":%ld", peak_rss_kb());
	if (r->has_lat)
		printf(",\"latency_us_median\":%.3f,\"latency_us_p90\":%.3f", r->lat_median_us,
		       r->lat_p90_us);
	printf(",\"xfer\":%d,\"inflight\":%d,\"version\":\"libusb %u.%u.%u\"}\n", opt.xfer,
	       opt.inflight, v->major, v->minor, v->micro);
	fflush(stdout);
}

/* ---- device ----------------------------------------------------------- */

static void open_and_claim(void)
{
	int rc;
	if (opt.dev) {
		/* The guest has no udev: skip discovery and wrap our own fd
		 * (libusb.h LIBUSB_OPTION_NO_DEVICE_DISCOVERY, libusb >= 1.0.24). */
		rc = libusb_set_option(NULL, LIBUSB_OPTION_NO_DEVICE_DISCOVERY);
		if (rc < 0)
			fail_usb("libusb_set_option(NO_DEVICE_DISCOVERY)", rc);
	}
	rc = libusb_init(&ctx);
	if (rc < 0)
		fail_usb("libusb_init", rc);
	if (opt.dev) {
		int fd = open(opt.dev, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			fail("%s: %s", opt.dev, strerror(errno));
		rc = libusb_wrap_sys_device(ctx, (intptr_t)fd, &handle);
		if (rc < 0)
			fail_usb("libusb_wrap_sys_device", rc);
	} else {
		unsigned vid, pid;
		if (sscanf(opt.vidpid, "%x:%x", &vid, &pid) != 2)
			fail("--vidpid wants VVVV:PPPP, got %s", opt.vidpid);
		handle = libusb_open_device_with_vid_pid(ctx, (uint16_t)vid, (uint16_t)pid);
		if (!handle)
			fail("cannot open %s", opt.vidpid);
	}
	/* Detaches a bound kernel driver at claim (USBDEVFS_DISCONNECT_CLAIM in
	 * libusb/os/linux_usbfs.c) and re-attaches it at release. */
	libusb_set_auto_detach_kernel_driver(handle, 1);
	rc = libusb_claim_interface(handle, opt.iface);
	if (rc < 0)
		fail_usb("libusb_claim_interface", rc);
	claimed = 1;
}

static unsigned char *alloc_buffer(size_t size)
{
	if (strcmp(opt.mem, "devmem") == 0) {
		unsigned char *p = libusb_dev_mem_alloc(handle, size);
		if (p) {
			snprintf(mem_used, sizeof mem_used, "dev_mem (mmap)");
			return p;
		}
		/* libusb returns NULL when the usbfs mmap fails: say so. */
		snprintf(mem_used, sizeof mem_used, "malloc (libusb_dev_mem_alloc failed)");
	} else {
		snprintf(mem_used, sizeof mem_used, "malloc");
	}
	unsigned char *p = aligned_alloc(4096, (size + 4095) & ~(size_t)4095);
	if (!p)
		fail("out of memory");
	memset(p, 0, size);
	return p;
}

static void fill_pattern(unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)((i % PATTERN_PACKET) % PATTERN_MOD);
}

static int pattern_ok(const unsigned char *b, int n)
{
	if (n < 2)
		return 1;
	return b[1] == 1 && b[n - 1] == (unsigned char)(((n - 1) % PATTERN_PACKET) % PATTERN_MOD);
}

/* ---- bulk ------------------------------------------------------------- */

static struct {
	int in;
	long long total, submitted, done;
	long transfers, outstanding;
	const char *error;
	int error_rc;
} bulk;

static void LIBUSB_CALL bulk_cb(struct libusb_transfer *t)
{
	bulk.outstanding--;
	if (bulk.error)
		return;
	if (t->status != LIBUSB_TRANSFER_COMPLETED) {
		bulk.error = libusb_error_name(t->status == LIBUSB_TRANSFER_STALL ? LIBUSB_ERROR_PIPE
										  : LIBUSB_ERROR_IO);
		return;
	}
	if (t->actual_length != opt.xfer) {
		bulk.error = "short transfer";
		return;
	}
	if (bulk.in && !pattern_ok(t->buffer, t->actual_length)) {
		bulk.error = "bulk IN data is not the SourceSink pattern";
		return;
	}
	bulk.done += t->actual_length;
	bulk.transfers++;
	if (bulk.submitted < bulk.total) {
		int rc = libusb_submit_transfer(t);
		if (rc < 0) {
			bulk.error = "libusb_submit_transfer";
			bulk.error_rc = rc;
			return;
		}
		bulk.submitted += opt.xfer;
		bulk.outstanding++;
	}
}

static struct result run_bulk(int in, long long total, struct libusb_transfer **ts)
{
	struct result r = { 0 };
	memset(&bulk, 0, sizeof bulk);
	bulk.in = in;
	bulk.total = total;
	double t0 = now_s(), c0 = cpu_s();
	for (int i = 0; i < opt.inflight && bulk.submitted < total; i++) {
		int rc = libusb_submit_transfer(ts[i]);
		if (rc < 0)
			fail_usb("libusb_submit_transfer", rc);
		bulk.submitted += opt.xfer;
		bulk.outstanding++;
	}
	while (bulk.outstanding > 0) {
		struct timeval tv = { 1, 0 };
		int rc = libusb_handle_events_timeout_completed(ctx, &tv, NULL);
		if (rc < 0 && rc != LIBUSB_ERROR_INTERRUPTED)
			fail_usb("libusb_handle_events", rc);
		if (bulk.error && bulk.outstanding == 0)
			break;
		if (now_s() - t0 > opt.max_seconds)
			fail("timed out after %.0f s", opt.max_seconds);
	}
	if (bulk.error) {
		if (bulk.error_rc)
			fail_usb(bulk.error, bulk.error_rc);
		fail("%s%s", bulk.error, in ? "" : " (a halt on OUT means bad pattern data)");
	}
	r.seconds = now_s() - t0;
	r.cpu = cpu_s() - c0;
	r.bytes = bulk.done;
	r.transfers = bulk.transfers;
	return r;
}

/* ---- loopback round trips ---------------------------------------------- */

static struct {
	long count, started, finished, outstanding;
	int *pending;
	struct libusb_transfer **ts;
	const char *error;
} rt;

static void rt_submit_slot(int slot)
{
	for (int k = 0; k < 2; k++) {
		int rc = libusb_submit_transfer(rt.ts[2 * slot + k]);
		if (rc < 0)
			fail_usb("libusb_submit_transfer", rc);
		rt.outstanding++;
	}
	rt.pending[slot] = 2;
	rt.started++;
}

static void LIBUSB_CALL rt_cb(struct libusb_transfer *t)
{
	int slot = (int)(intptr_t)t->user_data;
	rt.outstanding--;
	if (t->status != LIBUSB_TRANSFER_COMPLETED) {
		rt.error = "loopback transfer failed";
		return;
	}
	if (t->endpoint & LIBUSB_ENDPOINT_IN) {
		if (t->actual_length != opt.rt_size || t->buffer[1] != 1) {
			rt.error = "loopback IN data differs from what was written";
			return;
		}
	}
	if (--rt.pending[slot] > 0)
		return;
	rt.finished++;
	if (!rt.error && rt.started < rt.count)
		rt_submit_slot(slot);
}

static struct result run_rt(long count, struct libusb_transfer **ts)
{
	struct result r = { 0 };
	rt.count = count;
	rt.started = rt.finished = rt.outstanding = 0;
	rt.error = NULL;
	rt.ts = ts;
	double t0 = now_s(), c0 = cpu_s();
	for (int i = 0; i < opt.inflight && rt.started < count; i++)
		rt_submit_slot(i);
	while (rt.outstanding > 0) {
		struct timeval tv = { 1, 0 };
		int rc = libusb_handle_events_timeout_completed(ctx, &tv, NULL);
		if (rc < 0 && rc != LIBUSB_ERROR_INTERRUPTED)
			fail_usb("libusb_handle_events", rc);
		if (now_s() - t0 > opt.max_seconds)
			fail("timed out after %.0f s", opt.max_seconds);
	}
	if (rt.error)
		fail("%s", rt.error);
	r.seconds = now_s() - t0;
	r.cpu = cpu_s() - c0;
	r.transfers = rt.finished;
	r.bytes = rt.finished * (long long)opt.rt_size;
	return r;
}

/* ---- control ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static struct result run_ctrl(long count)
{
	struct result r = { 0 };
	unsigned char buf[DEVICE_DESC_LEN];
	double *lat = malloc(sizeof(double) * (size_t)count);
	double t0 = now_s(), c0 = cpu_s();
	for (long i = 0; i < count; i++) {
		double a = now_s();
		int n = libusb_control_transfer(handle,
						LIBUSB_ENDPOINT_IN | LIBUSB_REQUEST_TYPE_STANDARD |
							LIBUSB_RECIPIENT_DEVICE,
						LIBUSB_REQUEST_GET_DESCRIPTOR, LIBUSB_DT_DEVICE << 8, 0, buf,
						DEVICE_DESC_LEN, TIMEOUT_MS);
		double b = now_s();
		if (n < 0)
			fail_usb("GET_DESCRIPTOR", n);
		if (n != DEVICE_DESC_LEN || buf[0] != DEVICE_DESC_LEN || buf[1] != LIBUSB_DT_DEVICE)
			fail("GET_DESCRIPTOR returned %d bytes, not a device descriptor", n);
		lat[i] = (b - a) * 1e6;
	}
	r.seconds = now_s() - t0;
	r.cpu = cpu_s() - c0;
	r.transfers = count;
	r.bytes = count * DEVICE_DESC_LEN;
	qsort(lat, (size_t)count, sizeof *lat, cmp_double);
	r.has_lat = 1;
	r.lat_median_us = count % 2 ? lat[count / 2] : (lat[count / 2 - 1] + lat[count / 2]) / 2;
	r.lat_p90_us = lat[(long)((count - 1) * 0.9)];
	free(lat);
	return r;
}

/* ---- main ------------------------------------------------------------- */

static void usage(void)
{
	bench_usage("libusb_bench", "devmem");
}

int main(int argc, char **argv)
{
	bench_parse_args(argc, argv, &opt, "libusb_bench");

	open_and_claim();
	struct result r;
	if (!strcmp(opt.workload, "in") || !strcmp(opt.workload, "out")) {
		int in = !strcmp(opt.workload, "in");
		struct libusb_transfer **ts = calloc((size_t)opt.inflight, sizeof *ts);
		for (int i = 0; i < opt.inflight; i++) {
			unsigned char *b = alloc_buffer((size_t)opt.xfer);
			if (!in)
				fill_pattern(b, (size_t)opt.xfer);
			ts[i] = libusb_alloc_transfer(0);
			libusb_fill_bulk_transfer(ts[i], handle,
						  (unsigned char)(in ? opt.ep_in : opt.ep_out), b,
						  opt.xfer, bulk_cb, NULL, TIMEOUT_MS);
		}
		/* Warm-up, the same in every contender (JIT, page faults, caches):
		 * 64 rounds of the in-flight transfers, 2000 + 16 x inflight round
		 * trips, 100 control calls. Not measured. */
		run_bulk(in, (long long)opt.xfer * opt.inflight * 64, ts);
		r = run_bulk(in, opt.bytes, ts);
	} else if (!strcmp(opt.workload, "rt")) {
		struct libusb_transfer **ts = calloc((size_t)opt.inflight * 2, sizeof *ts);
		rt.pending = calloc((size_t)opt.inflight, sizeof *rt.pending);
		for (int i = 0; i < opt.inflight; i++) {
			unsigned char *out = alloc_buffer((size_t)opt.rt_size);
			unsigned char *in = alloc_buffer((size_t)opt.rt_size);
			fill_pattern(out, (size_t)opt.rt_size);
			ts[2 * i] = libusb_alloc_transfer(0);
			ts[2 * i + 1] = libusb_alloc_transfer(0);
			libusb_fill_bulk_transfer(ts[2 * i], handle, (unsigned char)opt.ep_out, out,
						  opt.rt_size, rt_cb, (void *)(intptr_t)i, TIMEOUT_MS);
			libusb_fill_bulk_transfer(ts[2 * i + 1], handle, (unsigned char)opt.ep_in, in,
						  opt.rt_size, rt_cb, (void *)(intptr_t)i, TIMEOUT_MS);
		}
		run_rt(2000 + opt.inflight * 16L, ts); /* warm-up */
		r = run_rt(opt.count, ts);
	} else if (!strcmp(opt.workload, "ctrl")) {
		snprintf(mem_used, sizeof mem_used, "n/a (libusb_control_transfer)");
		run_ctrl(100); /* warm-up */
		r = run_ctrl(opt.count);
	} else {
		usage();
	}
	emit_result(&r);
	cleanup();
	return 0;
}
