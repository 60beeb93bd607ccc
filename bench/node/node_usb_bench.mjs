// node_usb_bench.mjs: the node-usb contender of the usbkit benchmark.
//
// node-usb (npm `usb`), its legacy libusb-style API: `findByIds`,
// `device.open()`, `interface.claim()`, `endpoint.startPoll(n, size)` for IN
// streaming, `endpoint.transfer` for OUT and round trips, and
// `device.controlTransfer`. Same workloads, options and one-line JSON result
// as bench/c/usbfs_bench.c, so bench/run_in_guest.ts treats every contender
// alike.
//
//   node bench/node/node_usb_bench.mjs --vidpid 0525:a4a0 --workload in \
//     --bytes 268435456 --xfer 65536 --inflight 16
//
// Install first, on the host (the guest has no network):
//   npm install --prefix bench/node

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import process from "node:process";
import { parseArgs } from "node:util";

// Through require, not `import ... from "usb"`: the same CommonJS module
// either way under node, but `deno check bench/` does not try to resolve
// the npm package (installed for node only, in bench/node/node_modules).
const { findByIds, getDeviceList } = createRequire(import.meta.url)("usb");

// SourceSink pattern 1: byte i of each packet is (i % wMaxPacketSize) % 63
// (linux drivers/usb/gadget/function/f_sourcesink.c); 1024 is the
// SuperSpeed bulk wMaxPacketSize.
const PATTERN_PACKET = 1024;
const PATTERN_MOD = 63;
const TIMEOUT_MS = 5000;

const opt = {
  dev: undefined,
  vidpid: undefined,
  workload: "in",
  label: "node-usb",
  bytes: 256 * 1024 * 1024,
  xfer: 64 * 1024,
  inflight: 16,
  count: 2000,
  rtSize: 64,
  iface: 0,
  epIn: 0x81,
  epOut: 0x02,
  maxSeconds: 120,
};

// Numeric flags and the option each sets (numbers may be hex: 0x81).
const NUMBERS = {
  bytes: "bytes",
  xfer: "xfer",
  inflight: "inflight",
  count: "count",
  "rt-size": "rtSize",
  iface: "iface",
  "ep-in": "epIn",
  "ep-out": "epOut",
  "max-seconds": "maxSeconds",
};

function parseCommandLine(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: Object.fromEntries(
        [...Object.keys(NUMBERS), "dev", "vidpid", "workload", "label", "mem"]
          .map((flag) => [flag, { type: "string" }]),
      ),
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    usage();
  }
  // --mem is accepted for symmetry: node-usb has one kind of buffer.
  for (const key of ["dev", "vidpid", "workload", "label"]) {
    if (values[key] !== undefined) opt[key] = values[key];
  }
  for (const [flag, key] of Object.entries(NUMBERS)) {
    if (values[flag] !== undefined) opt[key] = Number(values[flag]);
  }
  if (opt.dev === undefined && opt.vidpid === undefined) usage();
}

function usage() {
  process.stderr.write(
    "usage: node node_usb_bench.mjs (--dev /dev/bus/usb/BBB/DDD | --vidpid VVVV:PPPP)\n" +
      "  [--workload in|out|rt|ctrl] [--bytes N] [--xfer N] [--inflight N] [--count N]\n" +
      "  [--rt-size N] [--iface N] [--ep-in 0x81] [--ep-out 0x02] [--max-seconds S]\n",
  );
  process.exit(2);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(message) {
  emit({
    ok: false,
    contender: opt.label,
    workload: opt.workload,
    error: String(message),
  });
  process.exit(1);
}

// Peak RSS, KiB: VmHWM of /proc/self/status. Not resourceUsage().maxRSS
// (getrusage), which Linux carries over from the parent across fork and
// execve (kernel/fork.c dup_mm, fs/exec.c exec_mmap).
function peakRssKb() {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(
      readFileSync("/proc/self/status", "utf8"),
    );
    if (m) return Number(m[1]);
  } catch {
    // no /proc: fall back
  }
  return process.resourceUsage().maxRSS;
}

function cpuSeconds() {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1e6;
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

function patternOk(b) {
  const n = b.length;
  if (n < 2) return true;
  return b[1] === 1 && b[n - 1] === ((n - 1) % PATTERN_PACKET) % PATTERN_MOD;
}

function pattern(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i % PATTERN_PACKET) % PATTERN_MOD;
  return b;
}

function findDevice() {
  if (opt.dev !== undefined) {
    const m = /\/(\d+)\/(\d+)$/.exec(opt.dev);
    if (!m) fail(`--dev wants /dev/bus/usb/BBB/DDD, got ${opt.dev}`);
    const bus = Number(m[1]);
    const addr = Number(m[2]);
    const d = getDeviceList().find((x) =>
      x.busNumber === bus && x.deviceAddress === addr
    );
    if (!d) fail(`no USB device at ${opt.dev}`);
    return d;
  }
  const [vid, pid] = opt.vidpid.split(":").map((h) => parseInt(h, 16));
  const d = findByIds(vid, pid);
  if (!d) fail(`no USB device ${opt.vidpid}`);
  return d;
}

// Bulk IN with startPoll: node-usb keeps `inflight` transfers pending from its
// libusb event thread and emits a 'data' event per completed transfer.
function runIn(ep, total) {
  return new Promise((resolve, reject) => {
    let done = 0;
    let transfers = 0;
    let finished = false;
    let error;
    const t0 = now();
    const c0 = cpuSeconds();
    let result;
    const onData = (buf) => {
      if (finished) return;
      if (buf.length !== opt.xfer) {
        error ??= new Error(`short transfer: ${buf.length} of ${opt.xfer}`);
      } else if (!patternOk(buf)) {
        error ??= new Error("bulk IN data is not the SourceSink pattern");
      }
      done += buf.length;
      transfers++;
      if (done >= total || error || now() - t0 > opt.maxSeconds) {
        finished = true;
        result = {
          bytes: done,
          transfers,
          seconds: now() - t0,
          cpu: cpuSeconds() - c0,
        };
        if (!error && done < total) {
          error = new Error(`timed out after ${opt.maxSeconds} s`);
        }
        ep.stopPoll();
      }
    };
    const onError = (e) => {
      error ??= e;
      finished = true;
    };
    ep.on("data", onData);
    ep.on("error", onError);
    ep.once("end", () => {
      ep.off("data", onData);
      ep.off("error", onError);
      if (error) reject(error);
      else resolve(result);
    });
    ep.startPoll(opt.inflight, opt.xfer);
  });
}

// Bulk OUT: `inflight` endpoint.transfer calls outstanding, each resubmitted
// from its callback.
function runOut(ep, total) {
  return new Promise((resolve, reject) => {
    const data = pattern(opt.xfer);
    let submitted = 0;
    let done = 0;
    let transfers = 0;
    let outstanding = 0;
    let error;
    const t0 = now();
    const c0 = cpuSeconds();
    const submit = () => {
      submitted += opt.xfer;
      outstanding++;
      ep.transfer(data, (err, actual) => {
        outstanding--;
        if (err) error ??= err;
        else if (actual !== opt.xfer) {
          error ??= new Error(`short write ${actual}`);
        } else {
          done += actual;
          transfers++;
        }
        if (!error && submitted < total && now() - t0 < opt.maxSeconds) {
          submit();
        }
        if (outstanding === 0) {
          if (error) reject(error);
          else if (done < total) {
            reject(new Error(`timed out after ${opt.maxSeconds} s`));
          } else {resolve({
              bytes: done,
              transfers,
              seconds: now() - t0,
              cpu: cpuSeconds() - c0,
            });}
        }
      });
    };
    for (let i = 0; i < opt.inflight && submitted < total; i++) submit();
  });
}

// Loopback round trips: a slot writes rtSize bytes and reads them back; it is
// started again when both of its transfers completed.
function runRt(epIn, epOut, count) {
  return new Promise((resolve, reject) => {
    const data = pattern(opt.rtSize);
    let started = 0;
    let finished = 0;
    let active = 0;
    let error;
    const t0 = now();
    const c0 = cpuSeconds();
    const settle = () => {
      if (active > 0) return;
      if (error) reject(error);
      else {
        resolve({
          bytes: finished * opt.rtSize,
          transfers: finished,
          seconds: now() - t0,
          cpu: cpuSeconds() - c0,
        });
      }
    };
    const start = () => {
      started++;
      active++;
      let pending = 2;
      const part = () => {
        if (--pending > 0) return;
        active--;
        finished++;
        if (!error && started < count && now() - t0 < opt.maxSeconds) start();
        settle();
      };
      epOut.transfer(data, (err) => {
        if (err) error ??= err;
        part();
      });
      epIn.transfer(opt.rtSize, (err, buf) => {
        if (err) error ??= err;
        else if (buf.length !== opt.rtSize || buf[1] !== 1) {
          error ??= new Error("loopback IN data differs from what was written");
        }
        part();
      });
    };
    for (let i = 0; i < opt.inflight && started < count; i++) start();
  });
}

async function runCtrl(device, count) {
  const lat = [];
  const t0 = now();
  const c0 = cpuSeconds();
  for (let i = 0; i < count; i++) {
    const a = process.hrtime.bigint();
    const buf = await new Promise((resolve, reject) =>
      // bmRequestType 0x80 (IN, standard, device), GET_DESCRIPTOR (6),
      // DEVICE (1 << 8), 18 bytes: USB 2.0 spec 9.4 and table 9-8.
      device.controlTransfer(
        0x80,
        6,
        0x0100,
        0,
        18,
        (err, b) => (err ? reject(err) : resolve(b)),
      )
    );
    const b = process.hrtime.bigint();
    if (
      !Buffer.isBuffer(buf) || buf.length !== 18 || buf[0] !== 18 ||
      buf[1] !== 1
    ) {
      throw new Error("GET_DESCRIPTOR did not return a device descriptor");
    }
    lat.push(Number(b - a) / 1e3);
  }
  const seconds = now() - t0;
  const cpu = cpuSeconds() - c0;
  lat.sort((x, y) => x - y);
  const mid = lat.length >> 1;
  const median = lat.length % 2 ? lat[mid] : (lat[mid - 1] + lat[mid]) / 2;
  return {
    bytes: count * 18,
    transfers: count,
    seconds,
    cpu,
    latency_us_median: median,
    latency_us_p90: lat[Math.floor((lat.length - 1) * 0.9)],
  };
}

async function main() {
  parseCommandLine(process.argv.slice(2));
  const require = createRequire(import.meta.url);
  const version = require("usb/package.json").version;
  const device = findDevice();
  device.timeout = TIMEOUT_MS;
  device.open();
  const iface = device.interface(opt.iface);
  let detached = false;
  if (iface.isKernelDriverActive()) {
    iface.detachKernelDriver();
    detached = true;
  }
  iface.claim();
  let r;
  try {
    switch (opt.workload) {
      case "in": {
        const ep = iface.endpoint(opt.epIn);
        // Warm-up, the same in every contender (JIT, page faults, caches): 64
        // rounds of the in-flight transfers, 2000 + 16 x inflight round trips,
        // 100 control calls. Not measured. A JIT under TCG needs that much:
        // a 16 MiB usbkit stream ran at 65 MB/s, a 2 GiB one at 230 MB/s.
        await runIn(ep, opt.xfer * opt.inflight * 64);
        r = await runIn(ep, opt.bytes);
        break;
      }
      case "out": {
        const ep = iface.endpoint(opt.epOut);
        ep.timeout = TIMEOUT_MS;
        await runOut(ep, opt.xfer * opt.inflight * 64);
        r = await runOut(ep, opt.bytes);
        break;
      }
      case "rt": {
        const epIn = iface.endpoint(opt.epIn);
        const epOut = iface.endpoint(opt.epOut);
        epIn.timeout = epOut.timeout = TIMEOUT_MS;
        await runRt(epIn, epOut, 2000 + opt.inflight * 16);
        r = await runRt(epIn, epOut, opt.count);
        break;
      }
      case "ctrl":
        await runCtrl(device, 100);
        r = await runCtrl(device, opt.count);
        break;
      default:
        usage();
    }
  } catch (e) {
    fail(e instanceof Error ? e.message : e);
  }
  const u = process.resourceUsage();
  emit({
    ok: true,
    contender: opt.label,
    workload: opt.workload,
    mem: "node Buffer (libusb copies)",
    ...r,
    cpu_s: r.cpu,
    cpu: undefined,
    cpu_total_s: (u.userCPUTime + u.systemCPUTime) / 1e6,
    peak_rss_kb: peakRssKb(),
    xfer: opt.xfer,
    inflight: opt.inflight,
    version: `node-usb ${version}, node ${process.versions.node}`,
  });
  await new Promise((resolve) => iface.release(true, () => resolve()));
  if (detached) {
    try {
      iface.attachKernelDriver();
    } catch {
      // the driver may refuse to bind again; nothing to measure there
    }
  }
  device.close();
}

main().catch((e) => fail(e instanceof Error ? e.stack ?? e.message : e));
