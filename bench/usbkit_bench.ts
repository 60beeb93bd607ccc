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
 *   buffers); bulk OUT through `Endpoint.outStream` when this usbkit has it
 *   (else `transferOut` of `Device.allocBuffer` buffers, `inflight` at
 *   once); round trips through `Device.allocBuffer` buffers, and with more
 *   than one in flight through `Device.transferBatch` when this usbkit has
 *   it (batches of `inflight` OUT/IN pairs, one promise each);
 * - `copy`: the ordinary calls, `transferIn(length)` and
 *   `transferOut(Uint8Array)`, `inflight` of them awaited concurrently.
 *
 * The newer APIs are feature-detected, so the benchmark runs on a usbkit
 * that does not have them yet; the result line's `mem` says which path ran.
 * `--contender usbkit-park` names the zero-copy run made with
 * `USBKIT_WAKE=park` in the environment (the driver sets it); every result
 * line carries `wake` (the completion loop's strategy, else that variable,
 * else `default`) and `completion`, the
 * completion loop's `completions().stats` over the measured phase.
 *
 * The `rss` workload (usbkit only) streams `--count` small bulk IN
 * transfers of `--xfer` bytes and samples the process's RSS every
 * `--rss-every` transfers; `--max-seconds` is its time budget (it stops and
 * reports what it did, rather than failing).
 *
 * Workloads, options and the one JSON line printed on stdout are those of
 * bench/c/usbfs_bench.c (see {@link BenchArgs}). A feature this usbkit does
 * not have yet is reported as `{"ok":false,"na":true,...}`, which the report
 * shows as "n/a".
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { open } from "../mod.ts";
import type { Device } from "../src/device.ts";
import type { Endpoint } from "../src/endpoint.ts";
import type { UsbBuffer } from "../src/buffer.ts";
import { completions } from "../src/completion.ts";
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
export type Workload = "in" | "out" | "rt" | "ctrl" | "iso" | "rss";

/** The contender names this program answers to. */
export const USBKIT_PROGRAM_CONTENDERS = [
  "usbkit-stream",
  "usbkit-copy",
  "usbkit-park",
] as const;

/** Command line of every contender program (bench/c, bench/node and this one). */
export interface BenchArgs {
  /** What to measure. */
  workload: Workload;
  /** usbfs node, `/dev/bus/usb/BBB/DDD`. */
  dev: string;
  /** `zero-copy` or `copy` (usbkit only). */
  mode: "zero-copy" | "copy";
  /** The contender name in the result line (default from the mode). */
  contender: (typeof USBKIT_PROGRAM_CONTENDERS)[number];
  /** rss: transfers between two RSS samples. */
  rssEvery: number;
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
    workload !== "ctrl" && workload !== "iso" && workload !== "rss"
  ) {
    throw new Error(
      `usage: usbkit_bench.ts in|out|rt|ctrl|iso|rss --dev PATH [--mode zero-copy|copy] [...] (got ${workload})`,
    );
  }
  // Unknown flags and missing values throw (node:util parseArgs, strict).
  const { values } = parseArgs({
    args: [...rest],
    options: Object.fromEntries(
      [...BENCH_NUMBERS.map(([flag]) => flag), ...BENCH_STRINGS].map(
        (flag) => [flag, { type: "string" }],
      ),
    ),
    strict: true,
  }) as { values: Record<string, string | undefined> };
  const a: BenchArgs = {
    workload,
    dev: values.dev ?? "",
    mode: "zero-copy",
    contender: "usbkit-stream",
    rssEvery: 100_000,
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
  for (const [flag, key] of BENCH_NUMBERS) {
    const v = values[flag];
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isFinite(n)) {
      throw new Error(`--${flag} wants a number, got ${v}`);
    }
    a[key] = n;
  }
  if (values.mode !== undefined) {
    if (values.mode !== "zero-copy" && values.mode !== "copy") {
      throw new Error(`--mode is zero-copy or copy, got ${values.mode}`);
    }
    a.mode = values.mode;
  }
  const contender = values.contender;
  if (
    contender !== undefined &&
    !(USBKIT_PROGRAM_CONTENDERS as readonly string[]).includes(contender)
  ) {
    throw new Error(
      `--contender is one of ${
        USBKIT_PROGRAM_CONTENDERS.join(", ")
      }, got ${contender}`,
    );
  }
  if (a.dev === "") throw new Error("--dev /dev/bus/usb/BBB/DDD is required");
  a.contender = (contender as BenchArgs["contender"] | undefined) ??
    (a.mode === "zero-copy" ? "usbkit-stream" : "usbkit-copy");
  return a;
}

/** The numeric flags of {@linkcode parseBenchArgs} and the field each sets. */
const BENCH_NUMBERS = [
  ["rss-every", "rssEvery"],
  ["bytes", "bytes"],
  ["xfer", "xfer"],
  ["inflight", "inflight"],
  ["count", "count"],
  ["rt-size", "rtSize"],
  ["packets", "packets"],
  ["iface", "iface"],
  ["alt", "alt"],
  ["mark-request", "markRequest"],
  ["ep-in", "epIn"],
  ["ep-out", "epOut"],
  ["max-seconds", "maxSeconds"],
] as const satisfies readonly (readonly [string, keyof BenchArgs])[];

/** The string flags; `--mem` and `--label` are accepted for symmetry with the C programs. */
const BENCH_STRINGS = ["dev", "mode", "contender", "mem", "label"] as const;

interface Measured {
  bytes: number;
  transfers: number;
  seconds: number;
  cpu_s: number;
  mem: string;
  latency_us_median?: number;
  latency_us_p90?: number;
  packets?: number;
  rss_samples_kb?: number[];
  rss_every?: number;
  rss_target?: number;
}

class NotAvailable extends Error {}

/** The agreed `OutStream` (src/out_stream.ts), as far as the bench uses it. */
interface OutStreamLike {
  buffer(): Promise<Uint8Array>;
  send(length?: number): void;
  close(): Promise<number>;
  return?(): Promise<unknown>;
  readonly zeroCopy?: boolean;
}

/** `Endpoint.outStream`, feature-detected. */
type OutStreamMethod = (options: {
  transferSize: number;
  inFlight: number;
  zeroCopy?: boolean;
}) => OutStreamLike | Promise<OutStreamLike>;

/** One request of `Device.transferBatch`. */
type BatchRequest =
  | { endpoint: number; data: Uint8Array | UsbBuffer }
  | { endpoint: number; length: number };

/** One result of `Device.transferBatch`: an InResult or an OutResult. */
interface BatchResult {
  status: string;
  data?: Uint8Array;
  bytesWritten?: number;
}

/** `Device.transferBatch`, feature-detected. */
type TransferBatchMethod = (
  requests: BatchRequest[],
  options?: { timeout?: number },
) => Promise<BatchResult[]>;

function outStreamOf(ep: Endpoint): OutStreamMethod | undefined {
  const f = (ep as unknown as { outStream?: unknown }).outStream;
  return typeof f === "function" ? (f.bind(ep) as OutStreamMethod) : undefined;
}

function transferBatchOf(dev: Device): TransferBatchMethod | undefined {
  const f = (dev as unknown as { transferBatch?: unknown }).transferBatch;
  return typeof f === "function"
    ? (f.bind(dev) as TransferBatchMethod)
    : undefined;
}

/**
 * Flattens the numbers of a stats object: nested objects become `a.b`,
 * typed arrays (histograms) `a.0`, `a.1`, ..., bigints numbers; anything
 * else is left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flattenStats } from "./usbkit_bench.ts";
 * assert.deepEqual(flattenStats({ wakeups: 2, latency: { median: 40 }, name: "x", n: 3n, h: new Uint32Array([1, 2]) }),
 *   { wakeups: 2, "latency.median": 40, n: 3, "h.0": 1, "h.1": 2 });
 * ```
 */
export function flattenStats(
  v: unknown,
  prefix = "",
  out: Record<string, number> = {},
): Record<string, number> {
  if (v === null || typeof v !== "object") return out;
  for (const [k, x] of Object.entries(v)) {
    const key = prefix === "" ? k : `${prefix}.${k}`;
    if (typeof x === "number") out[key] = x;
    else if (typeof x === "bigint") out[key] = Number(x);
    else if (ArrayBuffer.isView(x) && !(x instanceof DataView)) {
      // A histogram (typed array): one figure per bucket.
      Array.from(x as unknown as ArrayLike<number | bigint>).forEach((n, i) => {
        out[`${key}.${i}`] = Number(n);
      });
    } else if (x !== null && typeof x === "object" && !Array.isArray(x)) {
      flattenStats(x, key, out);
    }
  }
  return out;
}

/** Stats figures that are a level (read at the end), not a count. */
const GAUGE = /median|mean|avg|average|p\d{2,3}|max|min|last|current/i;
/** ... and settings in a unit (`spinUs`). */
const SETTING = /[a-z](Us|Ms|Ns)$/;

/**
 * The completion figures of a measured phase from two flattened
 * `completions().stats` snapshots: counters (`wakeups`, `records`, ...) as
 * differences (the value at the end if it went down: a new loop), levels
 * (medians, means, percentiles, max) and settings (`spinUs`) as read at the
 * end; a latency histogram's buckets (differences too) become its `p50`,
 * `p90` and `count`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { completionDelta } from "./usbkit_bench.ts";
 * assert.deepEqual(
 *   completionDelta({ wakeups: 10, records: 50 }, { wakeups: 30, records: 450, "latencyUs.median": 35 }),
 *   { wakeups: 20, records: 400, "latencyUs.median": 35 },
 * );
 * assert.deepEqual(
 *   completionDelta({ "latencyUs.0": 5, "latencyUs.5": 1 }, { "latencyUs.0": 5, "latencyUs.5": 4, "latencyUs.6": 1 }),
 *   { "latencyUs.count": 4, "latencyUs.p50": 32, "latencyUs.p90": 64 },
 * );
 * ```
 */
export function completionDelta(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const b = before[k];
    out[k] = GAUGE.test(k) || SETTING.test(k) || b === undefined || v < b
      ? v
      : v - b;
  }
  return latencyFromHistogram(out);
}

/**
 * The upper bound, in µs, of the histogram bucket that holds quantile `q`
 * of a power-of-two latency histogram (bucket 0: under 1 µs; bucket b:
 * [2^(b-1), 2^b) µs), as src/completion.ts keeps it; NaN when empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { histogramQuantile } from "./usbkit_bench.ts";
 * assert.equal(histogramQuantile([0, 1, 0, 0, 0, 0, 0, 0, 0, 9], 0.5), 512);
 * assert.ok(Number.isNaN(histogramQuantile([0, 0], 0.5)));
 * ```
 */
export function histogramQuantile(hist: readonly number[], q: number): number {
  const total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const want = Math.max(1, Math.ceil(total * q));
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b]!;
    if (seen >= want) return b === 0 ? 1 : 2 ** b;
  }
  return NaN;
}

/**
 * Folds a flattened latency histogram (`<name>.0`, `<name>.1`, ... for a
 * stats field whose name says latency) into its median and 90th percentile
 * (`<name>.p50`, `<name>.p90`: bucket upper bounds) and its count
 * (`<name>.count`); other figures pass through.
 */
function latencyFromHistogram(
  figures: Record<string, number>,
): Record<string, number> {
  const hists = new Map<string, number[]>();
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(figures)) {
    const m = /^(.*lat[^.]*)\.(\d+)$/i.exec(k);
    if (m === null) {
      out[k] = v;
      continue;
    }
    const h = hists.get(m[1]!) ?? [];
    h[Number(m[2])] = v;
    hists.set(m[1]!, h);
  }
  for (const [name, sparse] of hists) {
    const h = Array.from(sparse, (x) => x ?? 0);
    const count = h.reduce((a, b) => a + b, 0);
    out[`${name}.count`] = count;
    if (count > 0) {
      out[`${name}.p50`] = histogramQuantile(h, 0.5);
      out[`${name}.p90`] = histogramQuantile(h, 0.9);
    }
  }
  return out;
}

/** The completion loop's stats, flattened; empty when they cannot be read. */
function completionStats(): Record<string, number> {
  try {
    return flattenStats(completions().stats);
  } catch {
    return {};
  }
}

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
  const data = pattern(a.xfer);
  const outStream = outStreamOf(ep);
  if (a.mode === "zero-copy" && outStream !== undefined) {
    return await bulkOutStream(a, outStream, data, total);
  }
  let done = 0;
  let transfers = 0;
  let submitted = 0;
  let mem: string;
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

/**
 * Bulk OUT through `Endpoint.outStream`: fill the chunk `buffer()` gives (a
 * pool buffer keeps what was written to it, so only a chunk that does not
 * already hold the pattern is written, as the C loop fills its buffers
 * once), `send()`, and `close()` waits for the last one.
 */
async function bulkOutStream(
  a: BenchArgs,
  outStream: OutStreamMethod,
  data: Uint8Array,
  total: number,
): Promise<Measured> {
  const os = await outStream({
    transferSize: a.xfer,
    inFlight: a.inflight,
    zeroCopy: true,
  });
  // Measured from here, as the others measure after allocating buffers.
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const mem = os.zeroCopy === false
    ? "fallback: ordinary memory (outStream)"
    : "mmap (outStream)";
  let submitted = 0;
  let transfers = 0;
  const last = a.xfer - 1;
  const lastByte = data[last]!;
  try {
    while (submitted < total) {
      const b = await os.buffer();
      if (b.length < a.xfer) {
        throw new Error(`outStream chunk of ${b.length} bytes, not ${a.xfer}`);
      }
      if (b[1] !== data[1] || b[last] !== lastByte) b.set(data);
      os.send(a.xfer);
      submitted += a.xfer;
      transfers++;
      timeGuard(a, t0);
    }
  } catch (e) {
    await os.return?.().catch(() => {});
    throw e;
  }
  const written = await os.close();
  if (written !== submitted) {
    throw new Error(`outStream wrote ${written} of ${submitted} bytes`);
  }
  return {
    bytes: written,
    transfers,
    seconds: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    mem,
  };
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
  const batch = transferBatchOf(dev);
  if (a.mode === "zero-copy" && a.inflight > 1 && batch !== undefined) {
    try {
      return await roundTripBatches(a, batch, epIn, epOut, outs, count, mem);
    } finally {
      for (const b of [...outs, ...ins]) b.release();
    }
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
 * Round trips through `Device.transferBatch`: each batch is `inflight`
 * OUT/IN pairs (OUT from the zero-copy buffers, IN by length), submitted at
 * once and resolved by one promise; batches follow each other.
 */
async function roundTripBatches(
  a: BenchArgs,
  batch: TransferBatchMethod,
  epIn: Endpoint,
  epOut: Endpoint,
  outs: readonly UsbBuffer[],
  count: number,
  mem: string,
): Promise<Measured> {
  const n = a.inflight;
  const requests: BatchRequest[] = [];
  for (let i = 0; i < n; i++) {
    requests.push({ endpoint: epOut.address, data: outs[i]! });
    requests.push({ endpoint: epIn.address, length: a.rtSize });
  }
  let finished = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  while (finished < count) {
    const results = await batch(requests, { timeout: TIMEOUT_MS });
    if (results.length !== requests.length) {
      throw new Error(
        `transferBatch gave ${results.length} results for ${requests.length} requests`,
      );
    }
    for (let i = 0; i < n; i++) {
      const w = results[2 * i]!;
      const r = results[2 * i + 1]!;
      if (w.status !== "ok" || r.status !== "ok") {
        throw new Error(`loopback ended with ${w.status}/${r.status}`);
      }
      if (r.data?.length !== a.rtSize || r.data[1] !== 1) {
        throw new Error("loopback IN data differs from what was written");
      }
    }
    finished += n;
    timeGuard(a, t0);
  }
  return {
    bytes: finished * a.rtSize,
    transfers: finished,
    seconds: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    mem: `${mem}, transferBatch of ${n} OUT/IN pairs`,
  };
}

/**
 * RSS over a long stream of small bulk IN transfers: `count` transfers of
 * `xfer` bytes through `Endpoint.stream`, the process's RSS sampled every
 * `rssEvery` transfers; when `maxSeconds` runs out it stops and reports the
 * transfers it made.
 */
async function rssStream(a: BenchArgs, ep: Endpoint): Promise<Measured> {
  const samples: number[] = [];
  let transfers = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const stream = ep.stream({ transferSize: a.xfer, inFlight: a.inflight });
  const mem = stream.zeroCopy
    ? "mmap (stream)"
    : "fallback: ordinary memory (stream)";
  for await (const chunk of stream) {
    if (chunk.length !== a.xfer) {
      throw new Error(`short transfer: ${chunk.length} of ${a.xfer}`);
    }
    if (chunk[1] !== 1) {
      throw new Error("bulk IN data is not the SourceSink pattern");
    }
    transfers++;
    if (transfers % a.rssEvery === 0) {
      samples.push(Math.round(Deno.memoryUsage().rss / 1024));
    }
    if (
      transfers >= a.count ||
      (transfers % 1024 === 0 &&
        performance.now() - t0 > a.maxSeconds * 1000)
    ) break;
  }
  const m: Measured = {
    bytes: transfers * a.xfer,
    transfers,
    seconds: (performance.now() - t0) / 1000,
    cpu_s: cpuSeconds() - c0,
    mem,
    rss_samples_kb: samples,
    rss_every: a.rssEvery,
    rss_target: a.count,
  };
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
  const size = ep.packetSize;
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
 * // Needs a device (the bench's gadgets, in the guest): bench/run_in_guest.ts runs this
 * // file under `deno task bench`; no test runs it.
 * import { parseBenchArgs, runBench } from "./usbkit_bench.ts";
 * const line = await runBench(parseBenchArgs(["ctrl", "--dev", "/dev/bus/usb/002/002"]));
 * console.log(JSON.stringify(line));
 * ```
 */
export async function runBench(a: BenchArgs): Promise<ResultLine> {
  const contender = a.contender;
  // The wakeup in use, as the completion loop says (else as asked).
  let wake = Deno.env.get("USBKIT_WAKE") ?? "default";
  let dev: Device | undefined;
  try {
    dev = await open(a.dev);
    const iface = await dev.claimInterface(a.iface, {
      detachKernelDriver: true,
    });
    if (a.alt >= 0) await iface.selectAlternateInterface(a.alt);
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
    // The completion loop's figures over the measured phase only.
    let stats0: Record<string, number> = {};
    const measure = async (f: () => Promise<Measured>) => {
      stats0 = completionStats();
      return await f();
    };
    switch (a.workload) {
      case "in": {
        const ep = iface.endpoint(a.epIn);
        // Warm-up, the same in every contender (JIT, page faults, caches): 64
        // rounds of the in-flight transfers, 2000 + 16 x inflight round trips,
        // 100 control calls. Not measured. A JIT under TCG needs that much:
        // a 16 MiB usbkit stream ran at 65 MB/s, a 2 GiB one at 230 MB/s.
        await bulkIn(a, ep, a.xfer * a.inflight * 64);
        await mark(0);
        m = await measure(() => bulkIn(a, ep, a.bytes));
        await mark(1);
        break;
      }
      case "out": {
        const ep = iface.endpoint(a.epOut);
        await bulkOut(a, dev, ep, a.xfer * a.inflight * 64);
        m = await measure(() => bulkOut(a, device, ep, a.bytes));
        break;
      }
      case "rt": {
        const epIn = iface.endpoint(a.epIn);
        const epOut = iface.endpoint(a.epOut);
        await roundTrips(a, dev, epIn, epOut, 2000 + a.inflight * 16);
        m = await measure(() => roundTrips(a, device, epIn, epOut, a.count));
        break;
      }
      case "ctrl":
        await control(dev, 100);
        m = await measure(() => control(device, a.count));
        break;
      case "iso": {
        const ep = iface.endpoint(a.epIn);
        // Warm-up like bulk IN: 64 rounds of the in-flight URBs.
        await isoIn(a, dev, ep, a.inflight * 64);
        await mark(0);
        m = await measure(() => isoIn(a, device, ep, a.count));
        await mark(1);
        break;
      }
      case "rss":
        m = await measure(() => rssStream(a, iface.endpoint(a.epIn)));
        break;
    }
    const completion = completionDelta(stats0, completionStats());
    try {
      const w = (completions().stats as { wake?: unknown }).wake;
      if (typeof w === "string") wake = w;
    } catch {
      // no completion loop: the variable as set
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
      wake,
      ...(Object.keys(completion).length > 0 ? { completion } : {}),
    };
  } catch (e) {
    const na = e instanceof NotAvailable;
    return {
      ok: false,
      ...(na ? { na: true } : {}),
      contender,
      workload: a.workload,
      wake,
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
