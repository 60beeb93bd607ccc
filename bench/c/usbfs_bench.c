/*
 * usbfs_bench: the ceiling. A plain C loop over the kernel's usbfs ioctls,
 * with nothing between the program and the kernel: N URBs in flight with
 * USBDEVFS_SUBMITURB / USBDEVFS_REAPURB, buffers either mmap'ed on the usbfs
 * fd (USBDEVFS_CAP_MMAP, kernel commit f7d34b445abc) or from malloc.
 *
 * Workloads (--workload):
 *   in    bulk IN  --bytes in --xfer-byte URBs, --inflight of them in flight
 *   out   bulk OUT of the SourceSink pattern, same shape
 *   rt    --rt-size byte round trips through a Loopback gadget (OUT then IN),
 *         --inflight pairs in flight, --count of them
 *   ctrl  synchronous USBDEVFS_CONTROL GET_DESCRIPTOR(DEVICE), --count calls,
 *         median latency
 *
 * Prints exactly one JSON line on stdout (see emit_result / emit_error), so
 * the benchmark driver (bench/run_in_guest.ts) parses it without guessing.
 * Exit status: 0 measured, 1 failed (the JSON line says why), 2 usage.
 *
 * Build: gcc -O2 -Wall -o usbfs_bench usbfs_bench.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h> /* include/uapi/linux/usbdevice_fs.h */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_cli.h"

/* USB 2.0 spec 9.4: GET_DESCRIPTOR is bRequest 6, DEVICE descriptor type 1
 * in the high byte of wValue; bmRequestType 0x80 = device-to-host, standard,
 * device. */
#define REQ_GET_DESCRIPTOR 6
#define DESC_DEVICE 0x0100
#define RT_IN_STD_DEVICE 0x80

static struct bench_opt opt = BENCH_OPT_DEFAULTS("mmap");

static int fd = -1;
static char mem_used[64] = "";
static char detached_driver[USBDEVFS_MAXDRIVERNAME + 1] = "";

static const char *contender(void)
{
	if (opt.label)
		return opt.label;
	return strcmp(opt.mem, "mmap") == 0 ? "raw-c-mmap" : "raw-c-malloc";
}

static void release(void);

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
	release();
	exit(1);
}

/* errno to a message; ENOMEM from SUBMITURB or mmap is the system-wide
 * usbfs_memory_mb cap (drivers/usb/core/devio.c usbfs_increase_memory_usage). */
static void __attribute__((noreturn)) fail_errno(const char *what, int e)
{
	if (e == ENOMEM)
		fail("%s: %s (usbfs_memory_mb caps usbfs buffers, see "
		     "/sys/module/usbcore/parameters/usbfs_memory_mb)",
		     what, strerror(e));
	fail("%s: %s", what, strerror(e));
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
	printf(",\"xfer\":%d,\"inflight\":%d}\n", opt.xfer, opt.inflight);
	fflush(stdout);
}

/* ---- device: open, claim ---------------------------------------------- */

static int read_sysfs_hex(const char *dir, const char *name, unsigned *out)
{
	char path[512];
	snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = fscanf(f, "%x", out);
	fclose(f);
	return n == 1 ? 0 : -1;
}

static int read_sysfs_int(const char *dir, const char *name, unsigned *out)
{
	char path[512];
	snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = fscanf(f, "%u", out);
	fclose(f);
	return n == 1 ? 0 : -1;
}

/* VID:PID to /dev/bus/usb/BBB/DDD through sysfs (no udev in the guest). */
static const char *find_by_vidpid(const char *vidpid)
{
	static char node[64];
	unsigned vid, pid;
	if (sscanf(vidpid, "%x:%x", &vid, &pid) != 2)
		fail("--vidpid wants VVVV:PPPP, got %s", vidpid);
	DIR *d = opendir("/sys/bus/usb/devices");
	if (!d)
		fail_errno("opendir /sys/bus/usb/devices", errno);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strchr(e->d_name, ':'))
			continue; /* an interface, not a device */
		unsigned v, p, bus, dev;
		if (read_sysfs_hex(e->d_name, "idVendor", &v) || read_sysfs_hex(e->d_name, "idProduct", &p))
			continue;
		if (v != vid || p != pid)
			continue;
		if (read_sysfs_int(e->d_name, "busnum", &bus) || read_sysfs_int(e->d_name, "devnum", &dev))
			continue;
		snprintf(node, sizeof node, "/dev/bus/usb/%03u/%03u", bus, dev);
		closedir(d);
		return node;
	}
	closedir(d);
	fail("no USB device %s", vidpid);
}

static void open_and_claim(void)
{
	const char *node = opt.dev ? opt.dev : find_by_vidpid(opt.vidpid);
	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail_errno(node, errno);

	/* Remember a bound kernel driver (e.g. usbtest on 0525:a4a0) so it can
	 * be bound again at exit. ENODATA = no driver (devio.c proc_getdriver). */
	struct usbdevfs_getdriver gd = { .interface = (unsigned)opt.iface };
	if (ioctl(fd, USBDEVFS_GETDRIVER, &gd) == 0 && strcmp(gd.driver, "usbfs") != 0)
		snprintf(detached_driver, sizeof detached_driver, "%s", gd.driver);

	/* flags 0: disconnect whatever driver is bound, then claim
	 * (devio.c proc_disconnect_claim). */
	struct usbdevfs_disconnect_claim dc = { .interface = (unsigned)opt.iface, .flags = 0 };
	if (ioctl(fd, USBDEVFS_DISCONNECT_CLAIM, &dc) < 0)
		fail_errno("USBDEVFS_DISCONNECT_CLAIM", errno);
}

static void release(void)
{
	if (fd < 0)
		return;
	unsigned ifno = (unsigned)opt.iface;
	ioctl(fd, USBDEVFS_RELEASEINTERFACE, &ifno);
	if (detached_driver[0]) {
		/* Ask usbcore to probe drivers again for the interface
		 * (devio.c proc_ioctl, USBDEVFS_CONNECT). */
		struct usbdevfs_ioctl ctl = { .ifno = opt.iface, .ioctl_code = USBDEVFS_CONNECT };
		ioctl(fd, USBDEVFS_IOCTL, &ctl);
	}
	close(fd);
	fd = -1;
}

/* ---- buffers ---------------------------------------------------------- */

static int mmap_ok = -1;

/* One mmap per buffer, as libusb_dev_mem_alloc does: a URB's buffer must lie
 * inside a single mmap region (devio.c find_memory_area). */
static unsigned char *alloc_buffer(size_t size)
{
	if (strcmp(opt.mem, "mmap") == 0) {
		if (mmap_ok != 0) {
			void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p != MAP_FAILED) {
				mmap_ok = 1;
				snprintf(mem_used, sizeof mem_used, "mmap");
				return p;
			}
			/* Visible fallback: the result says which path ran. */
			mmap_ok = 0;
			snprintf(mem_used, sizeof mem_used, "malloc (mmap failed: %s)", strerror(errno));
		}
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

/* Spot check of the SourceSink IN pattern: two bytes per transfer keep the
 * data honest without turning the ceiling into a memcmp benchmark. The
 * other contenders check the same two bytes. */
static int pattern_ok(const unsigned char *b, int n)
{
	if (n < 2)
		return 1;
	return b[1] == 1 && b[n - 1] == (unsigned char)(((n - 1) % PATTERN_PACKET) % PATTERN_MOD);
}

/* ---- URB helpers ------------------------------------------------------ */

static void submit(struct usbdevfs_urb *u)
{
	while (ioctl(fd, USBDEVFS_SUBMITURB, u) < 0) {
		if (errno == EINTR)
			continue;
		fail_errno("USBDEVFS_SUBMITURB", errno);
	}
}

static struct usbdevfs_urb *reap(void)
{
	void *p = NULL;
	while (ioctl(fd, USBDEVFS_REAPURB, &p) < 0) {
		if (errno == EINTR)
			continue;
		fail_errno("USBDEVFS_REAPURB", errno);
	}
	return p;
}

static void init_urb(struct usbdevfs_urb *u, unsigned ep, unsigned char *buf, int len)
{
	memset(u, 0, sizeof *u);
	u->type = USBDEVFS_URB_TYPE_BULK;
	u->endpoint = (unsigned char)ep;
	u->buffer = buf;
	u->buffer_length = len;
}

/* ---- workloads -------------------------------------------------------- */

/* Bulk IN or OUT: keep opt.inflight URBs of opt.xfer bytes in flight until
 * `total` bytes moved. */
static struct result run_bulk(int in, long long total, unsigned char **bufs, struct usbdevfs_urb *urbs)
{
	struct result r = { 0 };
	long long submitted = 0, done = 0;
	long transfers = 0;
	int n = opt.inflight;
	double t0 = now_s(), c0 = cpu_s();
	for (int i = 0; i < n && submitted < total; i++) {
		init_urb(&urbs[i], in ? opt.ep_in : opt.ep_out, bufs[i], opt.xfer);
		submit(&urbs[i]);
		submitted += opt.xfer;
	}
	long outstanding = submitted / opt.xfer;
	while (outstanding > 0) {
		struct usbdevfs_urb *u = reap();
		outstanding--;
		if (u->status != 0)
			fail_errno(in ? "bulk IN URB" : "bulk OUT URB (a halt means bad pattern data)",
				   -u->status);
		if (in && !pattern_ok(u->buffer, u->actual_length))
			fail("bulk IN data is not the SourceSink pattern");
		if (u->actual_length != opt.xfer)
			fail("short transfer: %d of %d bytes", u->actual_length, opt.xfer);
		done += u->actual_length;
		transfers++;
		if (submitted < total) {
			u->actual_length = 0;
			u->status = 0;
			submit(u);
			submitted += opt.xfer;
			outstanding++;
		}
		if (now_s() - t0 > opt.max_seconds)
			fail("timed out after %.0f s", opt.max_seconds);
	}
	r.seconds = now_s() - t0;
	r.cpu = cpu_s() - c0;
	r.bytes = done;
	r.transfers = transfers;
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Loopback round trips: slot i owns one OUT and one IN URB; a slot is
 * resubmitted once both of its URBs are reaped (a URB must not be
 * resubmitted before it is reaped). */
static struct result run_rt(long count, unsigned char **bufs, struct usbdevfs_urb *urbs)
{
	struct result r = { 0 };
	int n = opt.inflight;
	int *pending = calloc((size_t)n, sizeof *pending); /* URBs of the slot in the kernel */
	long started = 0, finished = 0;
	double t0 = now_s(), c0 = cpu_s();
	for (int i = 0; i < n && started < count; i++, started++) {
		fill_pattern(bufs[2 * i], (size_t)opt.rt_size);
		init_urb(&urbs[2 * i], opt.ep_out, bufs[2 * i], opt.rt_size);
		init_urb(&urbs[2 * i + 1], opt.ep_in, bufs[2 * i + 1], opt.rt_size);
		urbs[2 * i].usercontext = (void *)(intptr_t)i;
		urbs[2 * i + 1].usercontext = (void *)(intptr_t)i;
		submit(&urbs[2 * i]);
		submit(&urbs[2 * i + 1]);
		pending[i] = 2;
	}
	while (finished < started) {
		struct usbdevfs_urb *u = reap();
		int slot = (int)(intptr_t)u->usercontext;
		if (u->status != 0)
			fail_errno("loopback URB", -u->status);
		if (u->endpoint & 0x80) {
			if (u->actual_length != opt.rt_size)
				fail("loopback IN returned %d of %d bytes", u->actual_length, opt.rt_size);
			if (((unsigned char *)u->buffer)[1] != 1)
				fail("loopback IN data differs from what was written");
		}
		if (--pending[slot] > 0)
			continue;
		finished++;
		if (started < count) {
			started++;
			urbs[2 * slot].status = urbs[2 * slot + 1].status = 0;
			urbs[2 * slot].actual_length = urbs[2 * slot + 1].actual_length = 0;
			submit(&urbs[2 * slot]);
			submit(&urbs[2 * slot + 1]);
			pending[slot] = 2;
		}
		if (now_s() - t0 > opt.max_seconds)
			fail("timed out after %.0f s", opt.max_seconds);
	}
	r.seconds = now_s() - t0;
	r.cpu = cpu_s() - c0;
	r.transfers = finished;
	r.bytes = finished * (long long)opt.rt_size;
	free(pending);
	return r;
}

static struct result run_ctrl(long count)
{
	struct result r = { 0 };
	unsigned char buf[DEVICE_DESC_LEN];
	double *lat = malloc(sizeof(double) * (size_t)count);
	struct usbdevfs_ctrltransfer c = {
		.bRequestType = RT_IN_STD_DEVICE,
		.bRequest = REQ_GET_DESCRIPTOR,
		.wValue = DESC_DEVICE,
		.wIndex = 0,
		.wLength = DEVICE_DESC_LEN,
		.timeout = TIMEOUT_MS,
		.data = buf,
	};
	double t0 = now_s(), c0 = cpu_s();
	for (long i = 0; i < count; i++) {
		double a = now_s();
		int n = ioctl(fd, USBDEVFS_CONTROL, &c);
		double b = now_s();
		if (n < 0)
			fail_errno("USBDEVFS_CONTROL GET_DESCRIPTOR", errno);
		/* bLength 18, bDescriptorType 1 (USB 2.0 spec table 9-8) */
		if (n != DEVICE_DESC_LEN || buf[0] != DEVICE_DESC_LEN || buf[1] != 1)
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
	bench_usage("usbfs_bench", "mmap");
}

int main(int argc, char **argv)
{
	bench_parse_args(argc, argv, &opt, "usbfs_bench");

	open_and_claim();
	struct result r;
	if (!strcmp(opt.workload, "in") || !strcmp(opt.workload, "out")) {
		int in = !strcmp(opt.workload, "in");
		unsigned char **bufs = calloc((size_t)opt.inflight, sizeof *bufs);
		struct usbdevfs_urb *urbs = calloc((size_t)opt.inflight, sizeof *urbs);
		for (int i = 0; i < opt.inflight; i++) {
			bufs[i] = alloc_buffer((size_t)opt.xfer);
			if (!in)
				fill_pattern(bufs[i], (size_t)opt.xfer);
		}
		/* Warm-up, the same in every contender (JIT, page faults, caches):
		 * 64 rounds of the in-flight transfers, 2000 + 16 x inflight round
		 * trips, 100 control calls. Not measured. */
		run_bulk(in, (long long)opt.xfer * opt.inflight * 64, bufs, urbs);
		r = run_bulk(in, opt.bytes, bufs, urbs);
	} else if (!strcmp(opt.workload, "rt")) {
		unsigned char **bufs = calloc((size_t)opt.inflight * 2, sizeof *bufs);
		struct usbdevfs_urb *urbs = calloc((size_t)opt.inflight * 2, sizeof *urbs);
		for (int i = 0; i < opt.inflight * 2; i++)
			bufs[i] = alloc_buffer((size_t)opt.rt_size);
		run_rt(2000 + opt.inflight * 16L, bufs, urbs); /* warm-up */
		r = run_rt(opt.count, bufs, urbs);
	} else if (!strcmp(opt.workload, "ctrl")) {
		snprintf(mem_used, sizeof mem_used, "n/a (USBDEVFS_CONTROL copies)");
		run_ctrl(100); /* warm-up */
		r = run_ctrl(opt.count);
	} else {
		usage();
	}
	emit_result(&r);
	release();
	return 0;
}
