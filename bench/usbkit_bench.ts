/**
 * The usbkit contenders of the benchmark (`deno task bench`), one workload
 * per process, run inside the virtual bench:
 *
 * ```sh
 * deno run -A --no-check --cached-only bench/usbkit_bench.ts in \
 *   --dev /dev/bus/usb/002/002 --mode zero-copy --bytes 268435456
 * ```
 *
 * Modes:
 * - `zero-copy`: bulk IN through `Endpoint.stream` (views of usbfs-mapped
 *   buffers), OUT and round trips through `Device.allocBuffer` buffers;
 * - `copy`: the ordinary calls, `transferIn(length)` and
 *   `transferOut(Uint8Array)`, `inflight` of them awaited concurrently.
 *
 * Workloads, options and the one JSON line printed on stdout are those of
 * bench/c/usbfs_bench.c (see {@link BenchArgs}). A feature this usbkit does
 * not have yet is reported as `{"ok":false,"na":true,...}`, which the report
 * shows as "n/a".
 *
 * @module
 */

import process from "node:process";
import { open } from "../mod.ts";
import type { Device } from "../src/device.ts";
import type { Endpoint } from "../src/endpoint.ts";
import type { ResultLine } from "./report.ts";

// SourceSink pattern 1: byte i of each packet is (i % wMaxPacketSize) % 63
// (drivers/usb/gadget/function/f_sourcesink.c); 1024 is the SuperSpeed bulk
// wMaxPacketSize.
const PATTERN_PACKET = 1024;
const PATTERN_MOD = 63;
const TIMEOUT_MS = 5000;

/**
 * The workloads every contender program runs; `iso` (isochronous IN, for the
 * USB/IP track: dummy_hcd has no isochronous endpoints) is usbkit's alone.
 */
export type Workload = "in" | "out" | "rt" | "ctrl" | "iso";

/** Command line of every contender program (bench/c, bench/node and this one). */
export interface BenchArgs {
  /** What to measure. */
  workload: Workload;
  /** usbfs node, `/dev/bus/usb/BBB/DDD`. */
  dev: string;
  /** `zero-copy` or `copy` (usbkit only). */
  mode: "zero-copy" | "copy";
  /** Bytes to move (in/out). */
  bytes: number;
  /** Bytes per transfer (in/out). */
  xfer: number;
  /** Transfers (in/out) or round trips (rt) in flight. */
  inflight: number;
  /** Round trips (rt) or control transfers (ctrl). */
  count: number;
  /** Bytes per round trip. */
  rtSize: number;
  /** iso: packets per URB (each of the endpoint's maxPacketSize). */
  packets: number;
  /** Interface to claim. */
  iface: number;
  /** Alternate setting to select first (iso), or -1 for none. */
  alt: number;
  /**
   * A vendor request (OUT, no data, recipient device) sent with `wValue` 0
   * just before the measured phase and 1 just after it, or -1 for none: the
   * USB/IP bench device (bench/usbip_device.ts) notes its own CPU time then.
   */
  markRequest: number;
  /** IN endpoint address. */
  epIn: number;
  /** OUT endpoint address. */
  epOut: number;
  /** Give up after this long. */
  maxSeconds: number;
}

/**
 * Parses the contender command line: the workload first, then `--flag
 * value` pairs (numbers may be hex, `0x81`). `iso` takes `--iface`, `--alt`,
 * `--ep-in`, `--packets` (per URB), `--inflight` (URBs) and `--count` (URBs
 * measured).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBenchArgs } from "./usbkit_bench.ts";
 * const a = parseBenchArgs(["rt", "--dev", "/dev/bus/usb/004/002", "--inflight", "16", "--ep-out", "0x02"]);
 * assert.ok(a.workload === "rt" && a.inflight === 16 && a.epOut === 2);
 * ```
 */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const [workload, ...rest] = argv;
  if (
    workload !== "in" && workload !== "out" && workload !== "rt" &&
    workload !== "ctrl" && workload !== "iso"
  ) {
    throw new Error(
      `usage: usbkit_bench.ts in|out|rt|ctrl|iso --dev PATH [--mode zero-copy|copy] [...] (got ${workload})`,
    );
  }
  const a: BenchArgs = {
    workload,
    dev: "",
    mode: "zero-copy",
    bytes: 256 * 1024 * 1024,
    xfer: 64 * 1024,
    inflight: 16,
    count: 2000,
    rtSize: 64,
    packets: 32,
    iface: 0,
    alt: -1,
    markRequest: -1,
    epIn: 0x81,
    epOut: 0x02,
    maxSeconds: 120,
  };
  for (let i = 0; i < rest.length; i += 2) {
    const k = rest[i]!;
    const v = rest[i + 1];
    if (v === undefined) throw new Error(`${k} needs a value`);
    const n = Number(v);
    const num = () => {
      if (!Number.isFinite(n)) throw new Error(`${k} wants a number, got ${v}`);
      return n;
    };
    switch (k) {
      case "--dev":
        a.dev = v;
        break;
      case "--mode":
        if (v !== "zero-copy" && v !== "copy") {
          throw new Error(`--mode is zero-copy or copy, got ${v}`);
        }
        a.mode = v;
        break;
      case "--bytes":
        a.bytes = num();
        break;
      case "--xfer":
        a.xfer = num();
        break;
      case "--inflight":
        a.inflight = num();
        break;
      case "--count":
        a.count = num();
        break;
      case "--rt-size":
        a.rtSize = num();
        break;
      case "--packets":
        a.packets = num();
        break;
      case "--iface":
        a.iface = num();
        break;
      case "--alt":
        a.alt = num();
        break;
      case "--mark-request":
        a.markRequest = num();
        break;
      case "--ep-in":
        a.epIn = num();
        break;
      case "--ep-out":
        a.epOut = num();
        break;
      case "--max-seconds":
        a.maxSeconds = num();
        break;
      case "--mem":
      case "--label":
        break; // accepted for symmetry with the C programs
      default:
        throw new Error(`unknown option ${k}`);
    }
  }
  if (a.dev === "") throw new Error("--dev /dev/bus/usb/BBB/DDD is required");
  return a;
}

interface Measured {
  bytes: number;
  transfers: number;
  seconds: number;
  cpu_s: number;
  mem: string;
  latency_us_median?: number;
  latency_us_p90?: number;
  packets?: number;
}

class NotAvailable extends Error {}

const cpuSeconds = () => {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1e6;
};

/**
 * Peak RSS, KiB: VmHWM of /proc/self/status. Not `resourceUsage().maxRSS`
 * (getrusage), which Linux carries over from the parent across fork and
 * execve (kernel/fork.c dup_mm, fs/exec.c exec_mmap).
 */
function peakRssKb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(
      Deno.readTextFileSync("/proc/self/status"),
    );
    if (m) return Number(m[1]);
  } catch {
    // no /proc: fall back
  }
  return process.resourceUsage().maxRSS;
}

function patternOk(b: Uint8Array): boolean {
  const n = b.length;
  if (n < 2) return true;
  return b[1] === 1 && b[n - 1] === ((n - 1) % PATTERN_PACKET) % PATTERN_MOD;
}

function pattern(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i % PATTERN_PACKET) % PATTERN_MOD;
  return b;
}

/** Runs `lanes` async loops concurrently, each taking work while `more()`. */
async function lanes(
  n: number,
  more: () => boolean,
  step: (lane: number) => Promise<void>,
): Promise<void> {
  const run = async (lane: number) => {
    while (more()) await step(lane);
  };
  await Promise.all(Array.from({ length: n }, (_, i) => run(i)));
}

function timeGuard(a: BenchArgs, t0: number): void {
  if (performance.now() - t0 > a.maxSeconds * 1000) {
    throw new Error(`timed out after ${a.maxSeconds} s`);
  }
}

async function bulkIn(
  a: BenchArgs,
  ep: Endpoint,
  total: number,
): Promise<Measured> {
  let done = 0;
  let transfers = 0;
  let mem: string;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  if (a.mode === "zero-copy") {
    if (typeof ep.stream !== "function") {
      throw new NotAvailable("Endpoint.stream is not in this usbkit yet");
    }
    const stream = ep.stream({ transferSize: a.xfer, inFlight: a.inflight });
    mem = stream.zeroCopy
      ? "mmap (stream)"
      : "fallback: ordinary memory (stream)";
    for await (const chunk of stream) {
      if (chunk.length !== a.xfer) {
        throw new Error(`short transfer: ${chunk.length} of ${a.xfer}`);
      }
      if (!patternOk(chunk)) {
        throw new Error("bulk IN data is not the SourceSink pattern");
      }
      done += chunk.length;
      transfers++;
      if (done >= total) {
        // Measured up to the last byte, like the others; cancelling the
        // URBs still queued (the loop's return()) is teardown.
        const m = {
          bytes: done,
          transfers,
          seconds: (performance.now() - t0) / 1000,
          cpu_s: cpuSeconds() - c0,
          mem,
        };
        await stream.return();
        return m;
      }
      timeGuard(a, t0);
    }
  } else {
    mem = "copies (transferIn)";
    let submitted = 0;
    await lanes(a.inflight, () => submitted < total, async () => {
      submitted += a.xfer;
      const r = await ep.transferIn(a.xfer, { timeout: TIMEOUT_MS });
      if (r.status !== "ok") throw new Error(`bulk IN ended with ${r.status}`);
      if (r.data.length !== a.xfer) {
        throw new Error(`short transfer: ${r.data.length} of ${a.xfer}`);
      }
      if (!patternOk(r.data)) {
        throw new Error("bulk IN data is not the SourceSink pattern");
      }
      done += r.data.length;
      transfers++;
      timeGuard(a, t0);
    });
  }
  return {
    bytes: done,
    transfers,
    seconds: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    mem,
  };
}

async function bulkOut(
  a: BenchArgs,
  dev: Device,
  ep: Endpoint,
  total: number,
): Promise<Measured> {
  let done = 0;
  let transfers = 0;
  let submitted = 0;
  let mem: string;
  const data = pattern(a.xfer);
  type Buf = ReturnType<Device["allocBuffer"]>;
  let bufs: Buf[] = [];
  if (a.mode === "zero-copy") {
    if (typeof dev.allocBuffer !== "function") {
      throw new NotAvailable("Device.allocBuffer is not in this usbkit yet");
    }
    bufs = Array.from({ length: a.inflight }, () => dev.allocBuffer(a.xfer));
    for (const b of bufs) b.bytes.set(data);
    const b0 = bufs[0]!;
    mem = b0.zeroCopy
      ? "mmap (allocBuffer)"
      : `fallback: ${b0.fallbackReason ?? "ordinary memory"}`;
  } else {
    mem = "copies (transferOut)";
  }
  const t0 = performance.now();
  const c0 = cpuSeconds();
  await lanes(a.inflight, () => submitted < total, async (lane) => {
    submitted += a.xfer;
    const r = await ep.transferOut(
      a.mode === "zero-copy" ? bufs[lane]! : data,
      { timeout: TIMEOUT_MS },
    );
    if (r.status !== "ok") {
      throw new Error(
        `bulk OUT ended with ${r.status} (a stall means bad pattern data)`,
      );
    }
    done += r.bytesWritten;
    transfers++;
    timeGuard(a, t0);
  });
  const m = {
    bytes: done,
    transfers,
    seconds: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    mem,
  };
  for (const b of bufs) b.release();
  return m;
}

async function roundTrips(
  a: BenchArgs,
  dev: Device,
  epIn: Endpoint,
  epOut: Endpoint,
  count: number,
): Promise<Measured> {
  let started = 0;
  let finished = 0;
  let mem: string;
  const data = pattern(a.rtSize);
  type Buf = ReturnType<Device["allocBuffer"]>;
  let outs: Buf[] = [];
  let ins: Buf[] = [];
  if (a.mode === "zero-copy") {
    if (typeof dev.allocBuffer !== "function") {
      throw new NotAvailable("Device.allocBuffer is not in this usbkit yet");
    }
    outs = Array.from({ length: a.inflight }, () => dev.allocBuffer(a.rtSize));
    ins = Array.from({ length: a.inflight }, () => dev.allocBuffer(a.rtSize));
    for (const b of outs) b.bytes.set(data);
    mem = outs[0]!.zeroCopy
      ? "mmap (allocBuffer)"
      : `fallback: ${outs[0]!.fallbackReason ?? "ordinary memory"}`;
  } else {
    mem = "copies";
  }
  const t0 = performance.now();
  const c0 = cpuSeconds();
  await lanes(a.inflight, () => started < count, async (lane) => {
    started++;
    const [w, r] = await Promise.all([
      epOut.transferOut(a.mode === "zero-copy" ? outs[lane]! : data, {
        timeout: TIMEOUT_MS,
      }),
      a.mode === "zero-copy"
        ? epIn.transferIn(ins[lane]!, { timeout: TIMEOUT_MS })
        : epIn.transferIn(a.rtSize, { timeout: TIMEOUT_MS }),
    ]);
    if (w.status !== "ok" || r.status !== "ok") {
      throw new Error(`loopback ended with ${w.status}/${r.status}`);
    }
    if (r.data.length !== a.rtSize || r.data[1] !== 1) {
      throw new Error("loopback IN data differs from what was written");
    }
    finished++;
    timeGuard(a, t0);
  });
  const m = {
    bytes: finished * a.rtSize,
    transfers: finished,
    seconds: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    mem,
  };
  for (const b of [...outs, ...ins]) b.release();
  return m;
}

/**
 * Isochronous IN: `count` URBs of `packets` full-size packets, `inflight` of
 * them in flight; zero-copy mode reads into `Device.allocBuffer` buffers.
 * Every packet must arrive complete (the USB/IP bench device sends them full
 * length).
 */
async function isoIn(
  a: BenchArgs,
  dev: Device,
  ep: Endpoint,
  count: number,
): Promise<Measured> {
  const size = ep.maxPacketSize;
  const lengths = new Array<number>(a.packets).fill(size);
  type Buf = ReturnType<Device["allocBuffer"]>;
  let bufs: Buf[] = [];
  let mem: string;
  if (a.mode === "zero-copy") {
    bufs = Array.from(
      { length: a.inflight },
      () => dev.allocBuffer(size * a.packets),
    );
    mem = bufs[0]!.zeroCopy
      ? "mmap (allocBuffer)"
      : `fallback: ${bufs[0]!.fallbackReason ?? "ordinary memory"}`;
  } else {
    mem = "copies (isochronousTransferIn)";
  }
  let started = 0;
  let urbs = 0;
  let packets = 0;
  let bytes = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  await lanes(a.inflight, () => started < count, async (lane) => {
    started++;
    const r = await ep.isochronousTransferIn(
      lengths,
      a.mode === "zero-copy"
        ? { timeout: TIMEOUT_MS, buffer: bufs[lane]! }
        : { timeout: TIMEOUT_MS },
    );
    for (const p of r.packets) {
      if (p.status !== "ok" || p.data.length !== size) {
        throw new Error(
          `iso packet ${p.status}, ${p.data.length} of ${size} bytes`,
        );
      }
    }
    if (r.data[1] !== 1) throw new Error("iso data is not the pattern");
    urbs++;
    packets += r.packets.length;
    bytes += r.data.length;
    timeGuard(a, t0);
  });
  const m = {
    bytes,
    transfers: urbs,
    packets,
    seconds: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    mem,
  };
  for (const b of bufs) b.release();
  return m;
}

async function control(dev: Device, count: number): Promise<Measured> {
  const lat = new Float64Array(count);
  const t0 = performance.now();
  const c0 = cpuSeconds();
  for (let i = 0; i < count; i++) {
    const s = performance.now();
    // GET_DESCRIPTOR(DEVICE), 18 bytes: USB 2.0 spec 9.4 and table 9-8.
    const r = await dev.controlTransferIn(
      {
        requestType: "standard",
        recipient: "device",
        request: 6,
        value: 0x0100,
        index: 0,
      },
      18,
      { timeout: TIMEOUT_MS },
    );
    lat[i] = (performance.now() - s) * 1000;
    if (
      r.status !== "ok" || r.data.length !== 18 || r.data[0] !== 18 ||
      r.data[1] !== 1
    ) {
      throw new Error("GET_DESCRIPTOR did not return a device descriptor");
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - c0;
  lat.sort();
  const mid = count >> 1;
  const median = count % 2 ? lat[mid]! : (lat[mid - 1]! + lat[mid]!) / 2;
  return {
    bytes: count * 18,
    transfers: count,
    seconds,
    cpu_s: cpu,
    mem: "copies (control)",
    latency_us_median: median,
    latency_us_p90: lat[Math.floor((count - 1) * 0.9)]!,
  };
}

/**
 * Runs one workload against the device and returns its result line (never
 * throws: a failure becomes `ok: false` with the error).
 *
 * @example
 * ```ts ignore
 * import { parseBenchArgs, runBench } from "./usbkit_bench.ts";
 * const line = await runBench(parseBenchArgs(["ctrl", "--dev", "/dev/bus/usb/002/002"]));
 * console.log(JSON.stringify(line));
 * ```
 */
export async function runBench(a: BenchArgs): Promise<ResultLine> {
  const contender = a.mode === "zero-copy" ? "usbkit-stream" : "usbkit-copy";
  let dev: Device | undefined;
  try {
    dev = await open(a.dev);
    const iface = await dev.claimInterface(a.iface, {
      detachKernelDriver: true,
    });
    if (a.alt >= 0) await iface.selectAlternate(a.alt);
    const device = dev;
    const mark = async (phase: 0 | 1) => {
      if (a.markRequest < 0) return;
      await device.controlTransferOut(
        {
          requestType: "vendor",
          recipient: "device",
          request: a.markRequest,
          value: phase,
          index: 0,
        },
        new Uint8Array(0),
        { timeout: TIMEOUT_MS },
      );
    };
    let m: Measured;
    switch (a.workload) {
      case "in": {
        const ep = iface.endpoint(a.epIn);
        // Warm-up, the same in every contender (JIT, page faults, caches): 64
        // rounds of the in-flight transfers, 2000 + 16 x inflight round trips,
        // 100 control calls. Not measured. A JIT under TCG needs that much:
        // a 16 MiB usbkit stream ran at 65 MB/s, a 2 GiB one at 230 MB/s.
        await bulkIn(a, ep, a.xfer * a.inflight * 64);
        await mark(0);
        m = await bulkIn(a, ep, a.bytes);
        await mark(1);
        break;
      }
      case "out": {
        const ep = iface.endpoint(a.epOut);
        await bulkOut(a, dev, ep, a.xfer * a.inflight * 64);
        m = await bulkOut(a, dev, ep, a.bytes);
        break;
      }
      case "rt": {
        const epIn = iface.endpoint(a.epIn);
        const epOut = iface.endpoint(a.epOut);
        await roundTrips(a, dev, epIn, epOut, 2000 + a.inflight * 16);
        m = await roundTrips(a, dev, epIn, epOut, a.count);
        break;
      }
      case "ctrl":
        await control(dev, 100);
        m = await control(dev, a.count);
        break;
      case "iso": {
        const ep = iface.endpoint(a.epIn);
        // Warm-up like bulk IN: 64 rounds of the in-flight URBs.
        await isoIn(a, dev, ep, a.inflight * 64);
        await mark(0);
        m = await isoIn(a, dev, ep, a.count);
        await mark(1);
        break;
      }
    }
    const u = process.resourceUsage();
    return {
      ok: true,
      contender,
      workload: a.workload,
      ...m,
      cpu_total_s: (u.userCPUTime + u.systemCPUTime) / 1e6,
      peak_rss_kb: peakRssKb(),
      version: `usbkit, deno ${Deno.version.deno}`,
    };
  } catch (e) {
    const na = e instanceof NotAvailable;
    return {
      ok: false,
      ...(na ? { na: true } : {}),
      contender,
      workload: a.workload,
      error: e instanceof Error ? e.message : String(e),
    };
  } finally {
    await dev?.close().catch(() => {});
  }
}

if (import.meta.main) {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const line = await runBench(args);
  console.log(JSON.stringify(line));
  Deno.exit(line.ok ? 0 : 1);
}
