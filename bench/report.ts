/**
 * The pure half of the benchmark (`deno task bench`): the contenders and
 * workloads, medians over rounds, ratios to the raw-C mmap ceiling, the
 * targets, the text table, the JSON results and the SVG chart. No I/O here,
 * so all of it is unit-tested on the host (tests/unit/benchmark_report_test.ts).
 *
 * @module
 */

/** Contender ids, in the order the report lists them. */
export const CONTENDERS = [
  "raw-c-mmap",
  "raw-c-malloc",
  "libusb-devmem",
  "libusb-malloc",
  "node-usb",
  "usbkit-stream",
  "usbkit-copy",
  "usbkit-park",
] as const;

/** One contender: a program and the buffers it uses. */
export type ContenderId = (typeof CONTENDERS)[number];

/** What the report calls each contender. */
export const CONTENDER_LABELS: Readonly<Record<ContenderId, string>> = {
  "raw-c-mmap": "raw-C mmap",
  "raw-c-malloc": "raw-C malloc",
  "libusb-devmem": "libusb dev_mem",
  "libusb-malloc": "libusb malloc",
  "node-usb": "node-usb",
  "usbkit-stream": "usbkit stream (zero-copy)",
  "usbkit-copy": "usbkit transferIn (copies)",
  "usbkit-park": "usbkit zero-copy, USBKIT_WAKE=park",
};

/** The usbkit contenders. */
export const USBKIT_CONTENDERS: readonly ContenderId[] = [
  "usbkit-stream",
  "usbkit-copy",
  "usbkit-park",
];

/**
 * The workloads `usbkit-park` runs: the zero-copy usbkit program with
 * `USBKIT_WAKE=park`, beside the default wakeup (`usbkit-stream`) in the same
 * boot, on the workloads where the wakeup matters most.
 */
export const PARK_WORKLOADS: readonly WorkloadId[] = ["in", "rt1", "ctrl"];

/**
 * Whether `contender` runs `workload` (`usbkit-park` only runs
 * {@link PARK_WORKLOADS}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runsWorkload } from "./report.ts";
 * assert.ok(runsWorkload("usbkit-park", "rt1") && !runsWorkload("usbkit-park", "rt16"));
 * assert.ok(runsWorkload("node-usb", "rt16"));
 * ```
 */
export function runsWorkload(
  contender: ContenderId,
  workload: WorkloadId,
): boolean {
  return contender !== "usbkit-park" || PARK_WORKLOADS.includes(workload);
}

/** Workload ids, in report order. */
export const WORKLOADS = ["in", "out", "rt1", "rt16", "ctrl"] as const;

/** One measured task. */
export type WorkloadId = (typeof WORKLOADS)[number];

/**
 * The USB/IP track's workloads: usbkit's zero-copy client against a device
 * written in TypeScript (bench/usbip_device.ts) attached to vhci_hcd in the
 * same boot. Only the `usbkit-stream` contender runs them; the report sets
 * them beside the same client on dummy_hcd ({@link usbipTrack}).
 */
export const USBIP_WORKLOADS = ["usbip-in", "usbip-iso"] as const;

/** A USB/IP track workload. */
export type UsbipWorkloadId = (typeof USBIP_WORKLOADS)[number];

/**
 * The RSS workload: usbkit alone ({@link RSS_CONTENDER}), a long stream of
 * small bulk IN transfers with the process's RSS sampled along the way, run
 * once per boot (round 1) for the "RSS flat" target.
 */
export const RSS_WORKLOAD = "rss";

/** The RSS workload's id. */
export type RssWorkloadId = typeof RSS_WORKLOAD;

/** The contender that runs the RSS workload. */
export const RSS_CONTENDER: ContenderId = "usbkit-stream";

/** Any workload a sample can be of. */
export type AnyWorkloadId = WorkloadId | UsbipWorkloadId | RssWorkloadId;

/** The contender that runs the USB/IP track. */
export const USBIP_CONTENDER: ContenderId = "usbkit-stream";

/**
 * The vendor request (OUT, recipient device, `wValue` 0 start, 1 end) the
 * USB/IP track's client sends around its measured phase, so that the
 * device process (bench/usbip_device.ts) can report its own CPU time over
 * exactly that phase.
 */
export const USBIP_MARK_REQUEST = 0x01;

/** How a workload is scored. */
export interface WorkloadSpec {
  /** Title in the table. */
  title: string;
  /** Which figure of a result line is the score (`pps`: isochronous packets per second). */
  metric: "mbps" | "tps" | "latency" | "pps";
  /** Unit of the score. */
  unit: string;
  /** Unit of the CPU figure. */
  cpuUnit: string;
  /** True when more is better (throughput); false for latency. */
  higherIsBetter: boolean;
}

/** The shape of the workloads of one run. */
export interface BenchShape {
  /** Bytes per bulk run. */
  bulkBytes: number;
  /** Bytes per bulk transfer. */
  bulkXfer: number;
  /** Bulk transfers in flight. */
  bulkInflight: number;
  /** Round trips with 1 in flight. */
  rt1Count: number;
  /** Round trips with 16 in flight. */
  rt16Count: number;
  /** Bytes per round trip. */
  rtSize: number;
  /** Control transfers. */
  ctrlCount: number;
  /** USB/IP track: isochronous packets per URB. */
  isoPackets: number;
  /** USB/IP track: isochronous URBs in flight. */
  isoInflight: number;
  /** USB/IP track: isochronous URBs measured. */
  isoUrbs: number;
  /** RSS workload: small bulk IN stream transfers. */
  rssCount: number;
  /** RSS workload: bytes per transfer (a multiple of SuperSpeed's 1024-byte bulk packet). */
  rssXfer: number;
  /** RSS workload: transfers between two RSS samples. */
  rssEvery: number;
  /** RSS workload: transfers in flight. */
  rssInflight: number;
  /** RSS workload: seconds after which the stream stops and reports what it did. */
  rssMaxSeconds: number;
}

/**
 * The shape of a full run and of `--quick`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchShape } from "./report.ts";
 * assert.ok(benchShape(false).bulkBytes === 256 * 1024 * 1024);
 * assert.ok(benchShape(true).bulkBytes < benchShape(false).bulkBytes);
 * ```
 */
export function benchShape(quick: boolean): BenchShape {
  return quick
    ? {
      bulkBytes: 32 << 20,
      bulkXfer: 64 << 10,
      bulkInflight: 16,
      rt1Count: 300,
      rt16Count: 1500,
      rtSize: 64,
      ctrlCount: 200,
      isoPackets: 32,
      isoInflight: 8,
      isoUrbs: 500,
      rssCount: 50_000,
      rssXfer: 1024,
      rssEvery: 5_000,
      rssInflight: 16,
      rssMaxSeconds: 60,
    }
    : {
      bulkBytes: 256 << 20,
      bulkXfer: 64 << 10,
      bulkInflight: 16,
      rt1Count: 2000,
      rt16Count: 10000,
      rtSize: 64,
      ctrlCount: 1000,
      isoPackets: 32,
      isoInflight: 8,
      isoUrbs: 2000,
      rssCount: 1_000_000,
      rssXfer: 1024,
      rssEvery: 100_000,
      rssInflight: 16,
      rssMaxSeconds: 180,
    };
}

/**
 * How each workload is scored and titled, for a given shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchShape, workloadSpecs } from "./report.ts";
 * const w = workloadSpecs(benchShape(false));
 * assert.ok(w.in.metric === "mbps" && !w.ctrl.higherIsBetter);
 * ```
 */
export function workloadSpecs(
  shape: BenchShape,
): Record<WorkloadId, WorkloadSpec> {
  const mib = (n: number) => `${Math.round(n / (1 << 20))} MiB`;
  const kib = (n: number) => `${Math.round(n / 1024)} KiB`;
  const bulk = `${mib(shape.bulkBytes)}, ${
    kib(shape.bulkXfer)
  } x ${shape.bulkInflight} in flight`;
  return {
    in: {
      title: `SourceSink bulk IN, ${bulk}`,
      metric: "mbps",
      unit: "MB/s",
      cpuUnit: "CPU s/GiB",
      higherIsBetter: true,
    },
    out: {
      title: `SourceSink bulk OUT, ${bulk}`,
      metric: "mbps",
      unit: "MB/s",
      cpuUnit: "CPU s/GiB",
      higherIsBetter: true,
    },
    rt1: {
      title: `Loopback ${shape.rtSize}-byte round trips, 1 in flight`,
      metric: "tps",
      unit: "trips/s",
      cpuUnit: "CPU us/trip",
      higherIsBetter: true,
    },
    rt16: {
      title: `Loopback ${shape.rtSize}-byte round trips, 16 in flight`,
      metric: "tps",
      unit: "trips/s",
      cpuUnit: "CPU us/trip",
      higherIsBetter: true,
    },
    ctrl: {
      title: "Control GET_DESCRIPTOR(DEVICE), sequential",
      metric: "latency",
      unit: "us median",
      cpuUnit: "CPU us/call",
      higherIsBetter: false,
    },
  };
}

/** What a contender program prints for one workload: its one JSON result line. */
export interface ResultLine {
  /** Contender. */
  contender: string;
  /** Workload. */
  workload: string;
  /** Measured (true), or failed / not available (false). */
  ok: boolean;
  /** With ok false: the feature is missing (n/a) rather than broken. */
  na?: boolean;
  /** With ok false: why. */
  error?: string;
  /** Buffers used (mmap, malloc, fallback and why). */
  mem?: string;
  /** Bytes moved in the measured phase. */
  bytes?: number;
  /** Transfers or round trips in the measured phase. */
  transfers?: number;
  /** Wall seconds of the measured phase. */
  seconds?: number;
  /** CPU seconds (user + system, whole process) of the measured phase. */
  cpu_s?: number;
  /** CPU seconds of the whole process, start to end. */
  cpu_total_s?: number;
  /** Peak RSS of the process, KiB. */
  peak_rss_kb?: number;
  /** ctrl: median latency, us. */
  latency_us_median?: number;
  /** ctrl: 90th percentile latency, us. */
  latency_us_p90?: number;
  /** iso: packets received complete in the measured phase. */
  packets?: number;
  /** Library version string. */
  version?: string;
  /** usbkit: the completion wakeup asked for (`USBKIT_WAKE`, or `default`). */
  wake?: string;
  /**
   * usbkit: the completion loop's `completions().stats` over the measured
   * phase, flattened (`a.b` for nested figures): counters such as `wakeups`
   * and `records` as differences, other figures (latencies) as read at the
   * end.
   */
  completion?: Record<string, number>;
  /** rss: the process's RSS (VmRSS), KiB, every `rss_every` transfers. */
  rss_samples_kb?: number[];
  /** rss: transfers between two RSS samples. */
  rss_every?: number;
  /** rss: transfers asked for (the measured `transfers` is less when the time ran out). */
  rss_target?: number;
}

/** What one contender program printed for one workload in one round. */
export interface Sample extends Omit<ResultLine, "contender" | "workload"> {
  /** Round number, from 1. */
  round: number;
  /** Contender. */
  contender: ContenderId;
  /** Workload. */
  workload: AnyWorkloadId;
  /** USB/IP track: CPU seconds of the whole device (server) process. */
  server_cpu_total_s?: number;
  /** USB/IP track: peak RSS of the device process, KiB. */
  server_peak_rss_kb?: number;
  /** USB/IP track: seconds from the device process's start to enumerated. */
  attach_s?: number;
  /** USB/IP track: CPU seconds of the device process in the client's measured phase. */
  server_cpu_s?: number;
  /** USB/IP track: wall seconds of the measured phase, by the device process's clock. */
  server_wall_s?: number;
  /** Wall seconds of the whole contender process, start to exit (the driver's clock). */
  wall_s?: number;
}

/**
 * The median of numbers (mean of the middle two for an even count), or NaN
 * for none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { median } from "./report.ts";
 * assert.ok(median([3, 1, 2]) === 2 && median([4, 1, 2, 3]) === 2.5);
 * assert.ok(Number.isNaN(median([])));
 * ```
 */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/**
 * The score of one sample under a workload's metric: MB/s (10^6 bytes),
 * transfers per second, or median latency in microseconds. NaN when the
 * sample has no such figure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { score } from "./report.ts";
 * const s = { round: 1, contender: "raw-c-mmap", workload: "in", ok: true, bytes: 4e8, seconds: 2 } as const;
 * assert.ok(score(s, "mbps") === 200);
 * ```
 */
export function score(s: Sample, metric: WorkloadSpec["metric"]): number {
  if (!s.ok) return NaN;
  switch (metric) {
    case "mbps":
      return s.bytes !== undefined && s.seconds
        ? s.bytes / 1e6 / s.seconds
        : NaN;
    case "tps":
      return s.transfers !== undefined && s.seconds
        ? s.transfers / s.seconds
        : NaN;
    case "latency":
      return s.latency_us_median ?? NaN;
    case "pps":
      return s.packets !== undefined && s.seconds ? s.packets / s.seconds : NaN;
  }
}

/**
 * CPU cost of one sample: seconds per GiB for bulk, microseconds per
 * packet for isochronous, microseconds per transfer otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cpuCost } from "./report.ts";
 * const s = { round: 1, contender: "raw-c-mmap", workload: "in", ok: true, bytes: 2 ** 31, cpu_s: 1 } as const;
 * assert.ok(cpuCost(s, "mbps") === 0.5);
 * ```
 */
export function cpuCost(s: Sample, metric: WorkloadSpec["metric"]): number {
  if (!s.ok || s.cpu_s === undefined) return NaN;
  if (metric === "mbps") return s.bytes ? s.cpu_s / (s.bytes / 2 ** 30) : NaN;
  if (metric === "pps") {
    return s.packets ? (s.cpu_s * 1e6) / s.packets : NaN;
  }
  return s.transfers ? (s.cpu_s * 1e6) / s.transfers : NaN;
}

/** Median figures of one contender on one workload, with their spread over the rounds. */
export interface Cell {
  /** Contender. */
  contender: ContenderId;
  /** Workload. */
  workload: WorkloadId;
  /** `ok` measured (at least one round), `failed`, `n/a` (feature missing), `skipped` (not run). */
  state: "ok" | "failed" | "n/a" | "skipped";
  /** Median score over the rounds that measured. */
  value: number;
  /** Lowest score of a round (NaN without any). */
  min: number;
  /** Highest score of a round (NaN without any). */
  max: number;
  /** Every run round's score, in round order (NaN for failed rounds). */
  values: number[];
  /** The round number of each of `values`. */
  rounds: number[];
  /**
   * Score relative to raw-C mmap, oriented so that more is better (value /
   * baseline for throughput, baseline / value for latency), taken round by
   * round against the same round's raw-C mmap: the median of those per-round
   * ratios. NaN without a round where both measured.
   */
  ratio: number;
  /** Lowest per-round ratio. */
  ratioMin: number;
  /** Highest per-round ratio. */
  ratioMax: number;
  /** The per-round ratios, in round order (rounds where both measured). */
  ratios: number[];
  /** Median CPU cost (unit: the workload's cpuUnit). */
  cpu: number;
  /** Lowest CPU cost of a round. */
  cpuMin: number;
  /** Highest CPU cost of a round. */
  cpuMax: number;
  /** Every run round's CPU cost, in round order (NaN for failed rounds). */
  cpuValues: number[];
  /** CPU cost relative to raw-C mmap (more is worse), per round: median. */
  cpuRatio: number;
  /** Lowest per-round CPU ratio. */
  cpuRatioMin: number;
  /** Highest per-round CPU ratio. */
  cpuRatioMax: number;
  /** Median CPU microseconds per transfer (every workload; bulk transfers are `bulkXfer` bytes). */
  cpuPerTransferUs: number;
  /** Largest peak RSS over the rounds, KiB. */
  peakRssKb: number;
  /** Median peak RSS over the rounds, KiB. */
  rssMedianKb: number;
  /** Smallest peak RSS over the rounds, KiB. */
  rssMinKb: number;
  /** usbkit: completion records drained per wakeup, median over the rounds (NaN without the figures). */
  perWakeup: number;
  /** Lowest per-round completions per wakeup. */
  perWakeupMin: number;
  /** Highest per-round completions per wakeup. */
  perWakeupMax: number;
  /** usbkit: completion records per drain of the ring (spin hits included), median (NaN without the figures). */
  perDrain: number;
  /** usbkit: reap to JavaScript drain latency, microseconds, median over the rounds (NaN without it). */
  wakeLatencyUs: number;
  /** Lowest per-round wake latency. */
  wakeLatencyUsMin: number;
  /** Highest per-round wake latency. */
  wakeLatencyUsMax: number;
  /** Which `completions().stats` figure `wakeLatencyUs` is. */
  wakeLatencyKey: string | undefined;
  /** Buffers used, as the program said. */
  mem: string;
  /** Rounds that failed. */
  failedRounds: number;
  /** First error seen. */
  error: string | undefined;
  /** Library version, as the program said. */
  version: string | undefined;
}

/** The baseline every ratio in the table is relative to. */
export const BASELINE: ContenderId = "raw-c-mmap";

/**
 * The reap-to-drain latency among a result line's `completion` figures:
 * the first key (in order) that names a latency (`lat`) and a median
 * (`median`, `p50`), else a mean (`mean`, `avg`), converted to microseconds
 * when the key says `ns` or `ms`. Undefined when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wakeLatency } from "./report.ts";
 * assert.deepEqual(wakeLatency({ wakeups: 3, "latencyNs.median": 41000 }), { key: "latencyNs.median", us: 41 });
 * assert.equal(wakeLatency({ wakeups: 3, records: 9 }), undefined);
 * ```
 */
export function wakeLatency(
  completion: Readonly<Record<string, number>> | undefined,
): { key: string; us: number } | undefined {
  if (completion === undefined) return undefined;
  const keys = Object.keys(completion).filter((k) => /lat/i.test(k));
  const pick = keys.find((k) => /median|p50/i.test(k)) ??
    keys.find((k) => /mean|avg|average/i.test(k));
  if (pick === undefined) return undefined;
  const v = completion[pick]!;
  const scale = /ns/i.test(pick) ? 1e-3 : /ms/i.test(pick) ? 1e3 : 1;
  return { key: pick, us: v * scale };
}

/**
 * Completion records drained per wakeup of one result line (`records /
 * wakeups` of its `completion` figures), NaN without them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { completionsPerWakeup } from "./report.ts";
 * assert.equal(completionsPerWakeup({ wakeups: 4, records: 64 }), 16);
 * assert.ok(Number.isNaN(completionsPerWakeup(undefined)));
 * ```
 */
export function completionsPerWakeup(
  completion: Readonly<Record<string, number>> | undefined,
): number {
  const w = completion?.wakeups;
  const r = completion?.records;
  return w !== undefined && r !== undefined && w > 0 ? r / w : NaN;
}

/**
 * Folds samples into one cell per contender and workload: medians and
 * spreads over the rounds, and per-round ratios to {@link BASELINE}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aggregate, benchShape } from "./report.ts";
 * const cells = aggregate([
 *   { round: 1, contender: "raw-c-mmap", workload: "in", ok: true, bytes: 4e8, seconds: 1 },
 *   { round: 1, contender: "node-usb", workload: "in", ok: true, bytes: 1e8, seconds: 1 },
 * ], benchShape(false));
 * const node = cells.find((c) => c.contender === "node-usb" && c.workload === "in");
 * assert.ok(node?.ratio === 0.25 && node.min === 100 && node.max === 100);
 * ```
 */
export function aggregate(
  samples: readonly Sample[],
  shape: BenchShape,
): Cell[] {
  const specs = workloadSpecs(shape);
  const cells: Cell[] = [];
  for (const workload of WORKLOADS) {
    const spec = specs[workload];
    const rows = CONTENDERS.map((contender): Cell => {
      const mine = samples.filter((s) =>
        s.contender === contender && s.workload === workload
      ).sort((a, b) => a.round - b.round);
      const ok = mine.filter((s) => s.ok);
      const failed = mine.filter((s) => !s.ok);
      const values = mine.map((s) => score(s, spec.metric));
      const cpuValues = mine.map((s) => cpuCost(s, spec.metric));
      const state = mine.length === 0
        ? "skipped"
        : ok.length > 0
        ? "ok"
        : failed.every((s) => s.na)
        ? "n/a"
        : "failed";
      const sc = spreadOf(values);
      const cpu = spreadOf(cpuValues);
      const rss = spreadOf(ok.map((s) => s.peak_rss_kb ?? NaN));
      const perWakeup = spreadOf(
        ok.map((s) => completionsPerWakeup(s.completion)),
      );
      const lats = ok.map((s) => wakeLatency(s.completion));
      const lat = spreadOf(lats.map((l) => l?.us ?? NaN));
      return {
        contender,
        workload,
        state,
        value: sc.median,
        min: sc.min,
        max: sc.max,
        values,
        rounds: mine.map((s) => s.round),
        ratio: NaN,
        ratioMin: NaN,
        ratioMax: NaN,
        ratios: [],
        cpu: cpu.median,
        cpuMin: cpu.min,
        cpuMax: cpu.max,
        cpuValues,
        cpuRatio: NaN,
        cpuRatioMin: NaN,
        cpuRatioMax: NaN,
        cpuPerTransferUs: median(
          ok.map((s) =>
            s.cpu_s !== undefined && s.transfers
              ? (s.cpu_s * 1e6) / s.transfers
              : NaN
          ),
        ),
        peakRssKb: ok.reduce((m, s) => Math.max(m, s.peak_rss_kb ?? 0), 0),
        rssMedianKb: rss.median,
        rssMinKb: rss.min,
        perWakeup: perWakeup.median,
        perWakeupMin: perWakeup.min,
        perWakeupMax: perWakeup.max,
        perDrain: median(
          ok.map((s) => {
            const d = s.completion?.drains;
            const r = s.completion?.records;
            return d !== undefined && r !== undefined && d > 0 ? r / d : NaN;
          }),
        ),
        wakeLatencyUs: lat.median,
        wakeLatencyUsMin: lat.min,
        wakeLatencyUsMax: lat.max,
        wakeLatencyKey: lats.find((l) => l !== undefined)?.key,
        mem: ok[0]?.mem ?? "",
        failedRounds: failed.length,
        error: failed[0]?.error,
        version: ok[0]?.version,
      };
    });
    const base = rows.find((r) => r.contender === BASELINE);
    for (const r of rows) {
      if (!base || base.state !== "ok" || r.state !== "ok") continue;
      r.ratios = pairRounds(
        r,
        base,
        (a, b) => spec.higherIsBetter ? a.value / b.value : b.value / a.value,
      );
      const rs = spreadOf(r.ratios);
      [r.ratio, r.ratioMin, r.ratioMax] = [rs.median, rs.min, rs.max];
      const cr = spreadOf(pairRounds(r, base, (a, b) => a.cpu / b.cpu));
      [r.cpuRatio, r.cpuRatioMin, r.cpuRatioMax] = [cr.median, cr.min, cr.max];
    }
    cells.push(...rows);
  }
  return cells;
}

/** A cell's figures of one round. */
interface RoundFigures {
  value: number;
  cpu: number;
}

function roundFigures(c: Cell): Map<number, RoundFigures> {
  const m = new Map<number, RoundFigures>();
  c.rounds.forEach((r, i) => {
    const value = c.values[i]!;
    if (Number.isFinite(value)) m.set(r, { value, cpu: c.cpuValues[i]! });
  });
  return m;
}

/**
 * `f(a's round, b's round)` for every round both cells measured, in round
 * order; non-finite results are left out.
 */
function pairRounds(
  a: Cell,
  b: Cell,
  f: (a: RoundFigures, b: RoundFigures) => number,
): number[] {
  const ma = roundFigures(a);
  const mb = roundFigures(b);
  return [...ma.keys()].sort((x, y) => x - y).filter((r) => mb.has(r)).map((
    r,
  ) => f(ma.get(r)!, mb.get(r)!)).filter((v) => Number.isFinite(v));
}

/** The RSS workload's figure: the process's RSS along a long small-transfer stream. */
export interface RssFigure {
  /** `ok` measured, `failed`, `n/a`, `skipped` (not run). */
  state: "ok" | "failed" | "n/a" | "skipped";
  /** Transfers measured. */
  transfers: number;
  /** Transfers asked for. */
  target: number;
  /** Transfers between two samples. */
  every: number;
  /** RSS samples, KiB. */
  samplesKb: number[];
  /** First sample (after the first `every` transfers), KiB. */
  firstKb: number;
  /** Last sample, KiB. */
  lastKb: number;
  /** Largest sample, KiB. */
  maxKb: number;
  /** Wall seconds of the stream. */
  seconds: number;
  /** Why it failed, or that the time ran out. */
  note: string | undefined;
}

/** "RSS flat": the last sample at most this many times the first. */
export const RSS_FLAT_LIMIT = 1.1;

/**
 * The RSS figure of the run: the `rss` sample of {@link RSS_CONTENDER} with
 * the most growth (last over first sample) when there are several.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rssFigure } from "./report.ts";
 * const f = rssFigure([{ round: 1, contender: "usbkit-stream", workload: "rss", ok: true, transfers: 300,
 *   rss_target: 300, rss_every: 100, rss_samples_kb: [50000, 52000, 51000], seconds: 3 }]);
 * assert.ok(f.state === "ok" && f.firstKb === 50000 && f.lastKb === 51000 && f.maxKb === 52000);
 * assert.equal(rssFigure([]).state, "skipped");
 * ```
 */
export function rssFigure(samples: readonly Sample[]): RssFigure {
  const mine = samples.filter((s) =>
    s.contender === RSS_CONTENDER && s.workload === RSS_WORKLOAD
  );
  const ok = mine.filter((s) => s.ok && (s.rss_samples_kb?.length ?? 0) > 0);
  const growth = (s: Sample) =>
    s.rss_samples_kb!.at(-1)! / s.rss_samples_kb![0]!;
  const worst = ok.sort((a, b) => growth(b) - growth(a))[0];
  if (worst === undefined) {
    const failed = mine.find((s) => !s.ok) ?? mine[0];
    return {
      state: mine.length === 0
        ? "skipped"
        : mine.every((s) => s.na)
        ? "n/a"
        : "failed",
      transfers: 0,
      target: failed?.rss_target ?? NaN,
      every: failed?.rss_every ?? NaN,
      samplesKb: [],
      firstKb: NaN,
      lastKb: NaN,
      maxKb: NaN,
      seconds: NaN,
      note: failed?.error ??
        (failed !== undefined ? "no RSS samples" : undefined),
    };
  }
  const v = worst.rss_samples_kb!;
  const transfers = worst.transfers ?? 0;
  const target = worst.rss_target ?? transfers;
  return {
    state: "ok",
    transfers,
    target,
    every: worst.rss_every ?? NaN,
    samplesKb: [...v],
    firstKb: v[0]!,
    lastKb: v.at(-1)!,
    maxKb: Math.max(...v),
    seconds: worst.seconds ?? NaN,
    note: transfers < target
      ? `stopped after ${transfers} of ${target} transfers (time limit)`
      : undefined,
  };
}

/** A goal the benchmark checks (reported, never asserted). */
export interface Target {
  /** Short id, e.g. `in-vs-mmap`. */
  id: string;
  /** What is claimed, in words. */
  claim: string;
  /** The measured ratio: median of the per-round ratios (RSS: last over first sample). */
  ratio: number;
  /** Lowest per-round ratio. */
  ratioMin: number;
  /** Highest per-round ratio. */
  ratioMax: number;
  /** The per-round ratios, in round order. */
  ratios: number[];
  /** Required ratio. */
  required: number;
  /** `>=`: the ratio must reach `required`; `<=`: it must stay under. */
  comparison: ">=" | "<=";
  /** `met`, `missed`, or `unknown` when a figure is missing. */
  status: "met" | "missed" | "unknown";
  /** The figures behind the ratio, in words (median [min-max] over the rounds). */
  numbers: string;
}

/**
 * Checks the targets of issue 10 (Deliver 4), each a ratio taken round by
 * round (each round's usbkit figure over the same round's reference; the
 * median decides, the range is reported):
 * - usbkit zero-copy bulk IN >= 0.9 x raw-C mmap and >= 1.0 x libusb dev_mem;
 * - usbkit bulk OUT (zero-copy) >= 0.9 x raw-C mmap;
 * - usbkit `transferIn` with copies >= 0.9 x raw-C malloc;
 * - 64 B round trips >= 0.8 x libusb with 1 in flight, >= 0.5 x libusb with
 *   16 (the better usbkit mode against the better libusb mode, per round);
 * - GET_DESCRIPTOR latency <= 1.5 x libusb (the better of each);
 * - CPU per GiB of bulk IN <= 1.5 x raw-C mmap;
 * - RSS flat over the RSS workload (last sample <= {@link RSS_FLAT_LIMIT} x
 *   the first).
 *
 * `usbkit-park` is a variant under test, not part of the targets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aggregate, benchShape, checkTargets } from "./report.ts";
 * const t = checkTargets(aggregate([], benchShape(false)));
 * assert.ok(t.length === 9 && t.every((x) => x.status === "unknown"));
 * ```
 */
export function checkTargets(
  cells: readonly Cell[],
  rss?: RssFigure,
): Target[] {
  const cell = (c: ContenderId, w: WorkloadId) =>
    cells.find((x) => x.contender === c && x.workload === w);
  const okCells = (cs: readonly ContenderId[], w: WorkloadId) =>
    cs.map((c) => cell(c, w)).filter((x): x is Cell =>
      x !== undefined && x.state === "ok"
    );
  /** Per round, the best of each group (max, or min for latency and CPU). */
  const series = (
    a: readonly ContenderId[],
    b: readonly ContenderId[],
    w: WorkloadId,
    field: "value" | "cpu",
    best: "max" | "min",
  ): number[] => {
    const pick = (cs: Cell[], round: number) => {
      const v = cs.map((c) => roundFigures(c).get(round)?.[field] ?? NaN)
        .filter((x) => Number.isFinite(x));
      return v.length === 0
        ? NaN
        : best === "max"
        ? Math.max(...v)
        : Math.min(...v);
    };
    const ca = okCells(a, w);
    const cb = okCells(b, w);
    const rounds = [
      ...new Set([...ca, ...cb].flatMap((c) => c.rounds)),
    ].sort((x, y) => x - y);
    return rounds.map((r) => pick(ca, r) / pick(cb, r)).filter((x) =>
      Number.isFinite(x)
    );
  };
  const describe = (
    cs: readonly ContenderId[],
    w: WorkloadId,
    field: "value" | "cpu",
    unit: string,
    best: "max" | "min",
  ) => {
    const ok = okCells(cs, w);
    if (ok.length === 0) {
      return `${cs.map((c) => CONTENDER_LABELS[c]).join(" / ")} not measured`;
    }
    const c = ok.sort((x, y) =>
      best === "max" ? y[field] - x[field] : x[field] - y[field]
    )[0]!;
    const s = field === "value"
      ? { median: c.value, min: c.min, max: c.max }
      : { median: c.cpu, min: c.cpuMin, max: c.cpuMax };
    return `${CONTENDER_LABELS[c.contender]} ${fmtSpread(s)} ${unit}`;
  };
  const mk = (
    id: string,
    claim: string,
    ratios: number[],
    required: number,
    comparison: ">=" | "<=",
    numbers: string,
  ): Target => {
    const s = spreadOf(ratios);
    return {
      id,
      claim,
      ratio: s.median,
      ratioMin: s.min,
      ratioMax: s.max,
      ratios,
      required,
      comparison,
      status: !Number.isFinite(s.median)
        ? "unknown"
        : (comparison === ">=" ? s.median >= required : s.median <= required)
        ? "met"
        : "missed",
      numbers,
    };
  };
  const usbkit = ["usbkit-stream", "usbkit-copy"] as const;
  const libusb = ["libusb-devmem", "libusb-malloc"] as const;
  const vs = (
    a: readonly ContenderId[],
    b: readonly ContenderId[],
    w: WorkloadId,
    unit: string,
    field: "value" | "cpu" = "value",
    best: "max" | "min" = "max",
  ) => ({
    ratios: series(a, b, w, field, best),
    numbers: `${describe(a, w, field, unit, best)}; ${
      describe(b, w, field, unit, best)
    }`,
  });
  const t = (
    id: string,
    claim: string,
    v: { ratios: number[]; numbers: string },
    required: number,
    comparison: ">=" | "<=" = ">=",
  ) => mk(id, claim, v.ratios, required, comparison, v.numbers);
  const targets = [
    t(
      "in-vs-mmap",
      "zero-copy bulk IN stream vs raw-C mmap",
      vs(["usbkit-stream"], ["raw-c-mmap"], "in", "MB/s"),
      0.9,
    ),
    t(
      "in-vs-libusb",
      "zero-copy bulk IN stream vs libusb dev_mem",
      vs(["usbkit-stream"], ["libusb-devmem"], "in", "MB/s"),
      1.0,
    ),
    t(
      "out-vs-mmap",
      "bulk OUT stream (zero-copy) vs raw-C mmap",
      vs(["usbkit-stream"], ["raw-c-mmap"], "out", "MB/s"),
      0.9,
    ),
    t(
      "copy-in-vs-malloc",
      "transferIn with copies vs raw-C malloc",
      vs(["usbkit-copy"], ["raw-c-malloc"], "in", "MB/s"),
      0.9,
    ),
    t(
      "rt1-vs-libusb",
      "64 B round trips, 1 in flight, vs libusb (better mode of each)",
      vs(usbkit, libusb, "rt1", "trips/s"),
      0.8,
    ),
    t(
      "rt16-vs-libusb",
      "64 B round trips, 16 in flight, vs libusb (better mode of each)",
      vs(usbkit, libusb, "rt16", "trips/s"),
      0.5,
    ),
    t(
      "ctrl-vs-libusb",
      "GET_DESCRIPTOR latency vs libusb (better of each; lower is better)",
      vs(usbkit, libusb, "ctrl", "us", "value", "min"),
      1.5,
      "<=",
    ),
    t(
      "cpu-in-vs-mmap",
      "CPU per GiB of bulk IN (zero-copy) vs raw-C mmap (lower is better)",
      vs(["usbkit-stream"], ["raw-c-mmap"], "in", "CPU s/GiB", "cpu", "min"),
      1.5,
      "<=",
    ),
  ];
  const r = rss ?? rssFigure([]);
  const mib = (kb: number) => fmtNum(kb / 1024);
  targets.push(
    mk(
      "rss-flat",
      `RSS flat over ${
        Number.isFinite(r.target) ? r.target.toLocaleString("en-US") : "1M"
      } small stream transfers (last / first sample)`,
      r.state === "ok" ? [r.lastKb / r.firstKb] : [],
      RSS_FLAT_LIMIT,
      "<=",
      r.state === "ok"
        ? `RSS first ${mib(r.firstKb)} MiB, last ${mib(r.lastKb)} MiB, max ${
          mib(r.maxKb)
        } MiB, sampled every ${r.every.toLocaleString("en-US")} of ${
          r.transfers.toLocaleString("en-US")
        } transfers${r.note ? ` (${r.note})` : ""}`
        : r.state === "skipped"
        ? "not run"
        : `${r.state}${r.note ? `: ${r.note}` : ""}`,
    ),
  );
  return targets;
}

/**
 * Formats a number with about three significant digits ("-" for NaN).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fmtNum } from "./report.ts";
 * assert.ok(fmtNum(412.345) === "412" && fmtNum(0.12345) === "0.123" && fmtNum(NaN) === "-");
 * ```
 */
export function fmtNum(n: number): string {
  if (!Number.isFinite(n)) return "-";
  const a = Math.abs(n);
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

/**
 * The text table: one block per workload, one row per contender, every
 * figure as median [min-max] over the rounds: the score, its per-round ratio
 * to raw-C mmap, CPU cost and its per-round ratio, peak RSS, and the buffers
 * used. Failed and n/a cells say so, with the error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aggregate, benchShape, renderTable } from "./report.ts";
 * const shape = benchShape(true);
 * const text = renderTable(aggregate([
 *   { round: 1, contender: "raw-c-mmap", workload: "in", ok: true, bytes: 4e8, seconds: 1, cpu_s: 0.5 },
 *   { round: 2, contender: "raw-c-mmap", workload: "in", ok: true, bytes: 3e8, seconds: 1, cpu_s: 0.5 },
 * ], shape), shape);
 * assert.ok(text.includes("raw-C mmap") && text.includes("350 [300-400]"));
 * ```
 */
export function renderTable(cells: readonly Cell[], shape: BenchShape): string {
  const specs = workloadSpecs(shape);
  const out: string[] = [];
  for (const w of WORKLOADS) {
    const spec = specs[w];
    const rows = cells.filter((c) => c.workload === w);
    if (rows.every((r) => r.state === "skipped")) continue;
    out.push(
      `${spec.title}  (median [min-max] over the rounds; ratios: x raw-C mmap, per round${
        spec.higherIsBetter ? "" : ", latency inverted so more is better"
      })`,
    );
    const head = [
      "contender",
      spec.unit,
      "ratio",
      spec.cpuUnit,
      "CPU ratio",
      "peak RSS MiB",
      "buffers",
    ];
    const body: string[][] = rows.map((r) => {
      const label = CONTENDER_LABELS[r.contender];
      if (r.state !== "ok") {
        const why = r.state === "skipped"
          ? "not run"
          : `${r.state}${r.error ? `: ${r.error}` : ""}`;
        const tag = r.state === "n/a"
          ? "n/a"
          : r.state === "skipped"
          ? "-"
          : "FAILED";
        return [label, tag, "", "", "", "", why];
      }
      const note = r.failedRounds > 0
        ? ` (${r.failedRounds} round(s) failed: ${r.error ?? "?"})`
        : "";
      return [
        label,
        fmtSpread({ median: r.value, min: r.min, max: r.max }),
        fmtSpread({ median: r.ratio, min: r.ratioMin, max: r.ratioMax }),
        fmtSpread({ median: r.cpu, min: r.cpuMin, max: r.cpuMax }),
        fmtSpread({
          median: r.cpuRatio,
          min: r.cpuRatioMin,
          max: r.cpuRatioMax,
        }),
        fmtSpread({
          median: r.rssMedianKb / 1024,
          min: r.rssMinKb / 1024,
          max: r.peakRssKb / 1024,
        }),
        `${r.mem}${note}`,
      ];
    });
    const widths = head.map((h, i) =>
      Math.max(h.length, ...body.map((b) => b[i]!.length))
    );
    const line = (cols: string[]) =>
      "  " +
      cols.map((c, i) =>
        i === cols.length - 1
          ? c
          : i === 0
          ? c.padEnd(widths[i]!)
          : c.padStart(widths[i]!)
      ).join("  ");
    out.push(line(head));
    for (const b of body) {
      // A failed row has nothing to align after the tag: its reason follows.
      out.push(
        b[2] === "" && b[1] !== ""
          ? `  ${b[0]!.padEnd(widths[0]!)}  ${b[1]!.padStart(widths[1]!)}  ${
            b[6]
          }`
          : line(b).trimEnd(),
      );
    }
    out.push("");
  }
  return out.join("\n");
}

/**
 * A target's verdict in words: `met`, `MISSED` or `unknown`, the ratio as
 * median [min-max] of the per-round ratios, and the requirement.
 */
function targetVerdict(t: Target, dash: string): string {
  const ratio = fmtSpread(
    { median: t.ratio, min: t.ratioMin, max: t.ratioMax },
    dash,
  );
  const straddles = t.status !== "unknown" && t.ratios.length > 1 &&
    t.ratioMin < t.required && t.ratioMax >= t.required;
  return `${ratio} (need ${t.comparison} ${t.required})${
    straddles ? ", the range straddles the target" : ""
  }`;
}

/**
 * The targets as lines: `[met]`, `[MISSED]` or `[unknown]`, the ratio as
 * median [min-max] of the per-round ratios (each round's usbkit figure over
 * the same round's reference), the requirement, and the figures behind it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderTargets } from "./report.ts";
 * const s = renderTargets([{ id: "x", claim: "x", ratio: 1, ratioMin: 0.95, ratioMax: 1.1, ratios: [0.95, 1, 1.1],
 *   required: 0.9, comparison: ">=", status: "met", numbers: "a 1 MB/s; b 1 MB/s" }]);
 * assert.ok(s.includes("[met]") && s.includes("1.00 [0.950-1.10] (need >= 0.9)"));
 * ```
 */
export function renderTargets(targets: readonly Target[]): string {
  return targets
    .map((t) => {
      const tag = t.status === "met"
        ? "[met]    "
        : t.status === "missed"
        ? "[MISSED] "
        : "[unknown]";
      return `  ${tag} ${t.claim}: ${targetVerdict(t, "-")}\n` +
        `              ${t.numbers}`;
    })
    .join("\n");
}

/** Which contenders' ranges overlap a usbkit contender's, on one workload. */
export interface Overlap {
  /** Workload. */
  workload: WorkloadId;
  /** The usbkit contender. */
  contender: ContenderId;
  /** The other contenders whose [min, max] over the rounds meets its own. */
  with: ContenderId[];
}

/**
 * For each workload and each measured usbkit contender, the other measured
 * contenders whose [min, max] over the rounds meets its own (their medians
 * alone cannot tell them apart).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aggregate, benchShape, overlaps } from "./report.ts";
 * const s = (contender: "node-usb" | "usbkit-copy" | "raw-c-mmap", round: number, tps: number) =>
 *   ({ round, contender, workload: "rt1", ok: true, transfers: tps, seconds: 1 }) as const;
 * const o = overlaps(aggregate([s("node-usb", 1, 100), s("node-usb", 2, 120), s("usbkit-copy", 1, 110),
 *   s("usbkit-copy", 2, 130), s("raw-c-mmap", 1, 300), s("raw-c-mmap", 2, 310)], benchShape(false)));
 * assert.deepEqual(o, [{ workload: "rt1", contender: "usbkit-copy", with: ["node-usb"] }]);
 * ```
 */
export function overlaps(cells: readonly Cell[]): Overlap[] {
  const out: Overlap[] = [];
  for (const w of WORKLOADS) {
    const ok = cells.filter((c) =>
      c.workload === w && c.state === "ok" && Number.isFinite(c.min)
    );
    for (const u of ok) {
      if (!USBKIT_CONTENDERS.includes(u.contender)) continue;
      const hit = ok.filter((o) =>
        o.contender !== u.contender && o.min <= u.max && u.min <= o.max
      ).map((o) => o.contender);
      if (hit.length > 0) {
        out.push({ workload: w, contender: u.contender, with: hit });
      }
    }
  }
  return out;
}

/**
 * The overlaps as sentences, one per line: `usbkit copies and node-usb
 * overlap on rt1`; a line saying none do when no range meets another.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderOverlaps } from "./report.ts";
 * assert.equal(
 *   renderOverlaps([{ workload: "rt1", contender: "usbkit-copy", with: ["node-usb", "usbkit-stream"] }]),
 *   "usbkit transferIn (copies) and node-usb, usbkit stream (zero-copy) overlap on rt1",
 * );
 * ```
 */
export function renderOverlaps(list: readonly Overlap[]): string {
  if (list.length === 0) {
    return "no usbkit contender's range overlaps another contender's";
  }
  return list.map((o) =>
    `${CONTENDER_LABELS[o.contender]} and ${
      o.with.map((c) => CONTENDER_LABELS[c]).join(", ")
    } overlap on ${o.workload}`
  ).join("\n");
}

/**
 * "Where the time goes" for usbkit, per workload and usbkit contender that
 * measured: CPU per transfer against raw-C mmap's (the difference is what
 * the runtime and usbkit add per transfer), completion records drained per
 * wakeup and the reap-to-drain latency from `completions().stats`
 * (median [min-max] over the rounds, `-` when this usbkit has no such
 * figure). Empty when no usbkit contender measured.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aggregate, benchShape, renderTimeGoes } from "./report.ts";
 * const text = renderTimeGoes(aggregate([
 *   { round: 1, contender: "raw-c-mmap", workload: "rt1", ok: true, transfers: 1000, seconds: 1, cpu_s: 0.03 },
 *   { round: 1, contender: "usbkit-stream", workload: "rt1", ok: true, transfers: 1000, seconds: 1, cpu_s: 0.5,
 *     completion: { wakeups: 1000, records: 2000, "latencyUs.median": 40 } },
 * ], benchShape(false)));
 * assert.ok(text.includes("500 us/transfer") && text.includes("+470") && text.includes("2.00 per wakeup"));
 * ```
 */
export function renderTimeGoes(cells: readonly Cell[]): string {
  const out: string[] = [];
  for (const w of WORKLOADS) {
    const base = cells.find((c) =>
      c.workload === w && c.contender === BASELINE && c.state === "ok"
    );
    for (const c of cells) {
      if (
        c.workload !== w || c.state !== "ok" ||
        !USBKIT_CONTENDERS.includes(c.contender)
      ) continue;
      const extra = base !== undefined &&
          Number.isFinite(base.cpuPerTransferUs)
        ? ` (raw-C mmap ${fmtNum(base.cpuPerTransferUs)}, +${
          fmtNum(c.cpuPerTransferUs - base.cpuPerTransferUs)
        })`
        : "";
      const wake = Number.isFinite(c.perWakeup)
        ? `${
          fmtSpread({
            median: c.perWakeup,
            min: c.perWakeupMin,
            max: c.perWakeupMax,
          })
        } per wakeup${
          Number.isFinite(c.perDrain)
            ? ` (${fmtNum(c.perDrain)} per drain)`
            : ""
        }`
        : "-";
      const lat = Number.isFinite(c.wakeLatencyUs)
        ? `${
          fmtSpread({
            median: c.wakeLatencyUs,
            min: c.wakeLatencyUsMin,
            max: c.wakeLatencyUsMax,
          })
        } us (${c.wakeLatencyKey})`
        : "-";
      out.push(
        `  ${w.padEnd(5)} ${CONTENDER_LABELS[c.contender]}: CPU ${
          fmtNum(c.cpuPerTransferUs)
        } us/transfer${extra}; completions ${wake}; reap->drain ${lat}`,
      );
    }
  }
  return out.join("\n");
}

/** Escapes text for XML content and attribute values. */
function xml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(
    ">",
    "&gt;",
  ).replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

const COLORS: Readonly<Record<ContenderId, string>> = {
  "raw-c-mmap": "#4c566a",
  "raw-c-malloc": "#8a94a8",
  "libusb-devmem": "#d08770",
  "libusb-malloc": "#ebcb8b",
  "node-usb": "#a3be8c",
  "usbkit-stream": "#2e6fd8",
  "usbkit-copy": "#88b4f0",
  "usbkit-park": "#5e81ac",
};

/**
 * A hand-written SVG chart of the ratios to raw-C mmap: one panel per
 * workload, one horizontal bar per contender (`class="bar"`, with
 * `data-contender` and `data-workload`), a line at 1.0. A contender that
 * failed or was n/a gets an empty bar and says so. With a `track` that was
 * run, a last panel shows the USB/IP track in absolute figures: per
 * workload, a bar for USB/IP and one for dummy_hcd (`class="track-bar"`,
 * `data-transport`, `data-row`), a min-max whisker, the ratio.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aggregate, benchShape, renderSvg } from "./report.ts";
 * const shape = benchShape(true);
 * const svg = renderSvg(aggregate([], shape), shape, "test");
 * assert.ok(svg.startsWith("<?xml") && svg.includes("</svg>"));
 * ```
 */
export function renderSvg(
  cells: readonly Cell[],
  shape: BenchShape,
  subtitle: string,
  track?: UsbipTrack,
): string {
  const specs = workloadSpecs(shape);
  const workloads = WORKLOADS.filter((w) =>
    cells.some((c) => c.workload === w && c.state !== "skipped")
  );
  const labelW = 200;
  const plotW = 480;
  const rightW = 170;
  const width = labelW + plotW + rightW;
  const barH = 14;
  const gap = 4;
  const panelHead = 26;
  const panelH = panelHead + CONTENDERS.length * (barH + gap) + 12;
  const top = 56;
  const trackRows = track?.rows.filter((r) => r.usbip.state !== "skipped") ??
    [];
  const trackRowH = 20 + 2 * (barH + gap) + 8;
  const trackH = trackRows.length
    ? panelHead + trackRows.length * trackRowH
    : 0;
  const height = top + workloads.length * panelH + trackH + 10;
  const ratios = cells.filter((c) => Number.isFinite(c.ratio)).map((c) =>
    Number.isFinite(c.ratioMax) ? Math.max(c.ratio, c.ratioMax) : c.ratio
  );
  const maxRatio = Math.max(1.25, ...ratios) * 1.05;
  const x = (r: number) => labelW + (Math.max(0, r) / maxRatio) * plotW;
  const parts: string[] = [];
  parts.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="sans-serif" font-size="11">`,
  );
  parts.push(
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  );
  parts.push(
    `<text x="10" y="20" font-size="15" font-weight="bold">usbkit benchmark: ratio to raw-C mmap, per round (bar: median, line: min-max; more is better)</text>`,
  );
  parts.push(`<text x="10" y="38" fill="#555555">${xml(subtitle)}</text>`);
  workloads.forEach((w, wi) => {
    const spec = specs[w];
    const y0 = top + wi * panelH;
    parts.push(`<g class="panel" data-workload="${w}">`);
    parts.push(
      `<text x="10" y="${y0 + 16}" font-weight="bold">${
        xml(`${spec.title} (${spec.unit})`)
      }</text>`,
    );
    const barsTop = y0 + panelHead;
    const barsBottom = barsTop + CONTENDERS.length * (barH + gap);
    parts.push(
      `<line x1="${x(1).toFixed(1)}" y1="${barsTop - 3}" x2="${
        x(1).toFixed(1)
      }" y2="${barsBottom}" stroke="#bf616a" ` +
        `stroke-dasharray="3,2"/>`,
    );
    CONTENDERS.forEach((c, ci) => {
      const cell = cells.find((k) => k.contender === c && k.workload === w);
      const y = barsTop + ci * (barH + gap);
      const ok = cell !== undefined && Number.isFinite(cell.ratio);
      const wBar = ok ? x(cell.ratio) - labelW : 0;
      parts.push(
        `<text x="${labelW - 6}" y="${y + barH - 3}" text-anchor="end">${
          xml(CONTENDER_LABELS[c])
        }</text>`,
      );
      parts.push(
        `<rect class="bar" data-contender="${c}" data-workload="${w}" x="${labelW}" y="${y}" width="${
          wBar.toFixed(1)
        }" ` +
          `height="${barH}" fill="${COLORS[c]}"/>`,
      );
      const spread = ok && Number.isFinite(cell.ratioMin) &&
        cell.ratioMax > cell.ratioMin;
      if (spread) {
        const ym = (y + barH / 2).toFixed(1);
        parts.push(
          `<line class="whisker" x1="${
            x(cell.ratioMin).toFixed(1)
          }" y1="${ym}" x2="${
            x(cell.ratioMax).toFixed(1)
          }" y2="${ym}" stroke="#222222"/>`,
        );
      }
      const textX = labelW +
        (spread ? Math.max(wBar, x(cell.ratioMax) - labelW) : wBar);
      const text = ok
        ? `${cell.ratio.toFixed(2)}x [${fmtNum(cell.ratioMin)}-${
          fmtNum(cell.ratioMax)
        }] (${fmtNum(cell.value)})`
        : cell === undefined || cell.state === "skipped"
        ? "not run"
        : cell.state === "n/a"
        ? "n/a"
        : cell.state === "failed"
        ? "failed"
        : "no baseline";
      parts.push(
        `<text x="${(textX + 4).toFixed(1)}" y="${
          y + barH - 3
        }" fill="#333333">${xml(text)}</text>`,
      );
    });
    parts.push(`</g>`);
  });
  if (trackRows.length) {
    const y0 = top + workloads.length * panelH;
    parts.push(`<g class="track-panel" data-track="usbip">`);
    parts.push(
      `<text x="10" y="${y0 + 16}" font-weight="bold">${
        xml(
          "USB/IP track (usbkit stream): TS device on vhci_hcd vs SourceSink on dummy_hcd",
        )
      }</text>`,
    );
    trackRows.forEach((r, ri) => {
      const ry = y0 + panelHead + ri * trackRowH;
      const ratio = r.ratio.state === "ok"
        ? `; USB/IP : dummy_hcd ${fmtSpread(r.ratio)}`
        : "";
      parts.push(
        `<text x="10" y="${ry + 12}" fill="#333333">${
          xml(`${r.title} (${r.unit})${ratio}`)
        }</text>`,
      );
      const figs = [["usbip", "USB/IP", r.usbip, "#2e6fd8"], [
        "dummy_hcd",
        "dummy_hcd",
        r.dummy,
        "#4c566a",
      ]] as const;
      const top = Math.max(
        ...figs.map(([, , f]) => Number.isFinite(f.max) ? f.max : 0),
      );
      // The longest bar takes 70% of the plot, leaving room for its label.
      const scale = (v: number) =>
        top > 0 && Number.isFinite(v)
          ? (Math.max(0, v) / top) * plotW * 0.7
          : 0;
      figs.forEach(([id, label, f, color], fi) => {
        const y = ry + 20 + fi * (barH + gap);
        const wBar = scale(f.median);
        parts.push(
          `<text x="${labelW - 6}" y="${
            y + barH - 3
          }" text-anchor="end">${label}</text>`,
        );
        parts.push(
          `<rect class="track-bar" data-transport="${id}" data-row="${r.id}" x="${labelW}" y="${y}" width="${
            wBar.toFixed(1)
          }" height="${barH}" fill="${color}"/>`,
        );
        if (
          f.state === "ok" && Number.isFinite(f.min) && f.max > f.min
        ) {
          const ym = (y + barH / 2).toFixed(1);
          parts.push(
            `<line class="whisker" x1="${
              (labelW + scale(f.min)).toFixed(1)
            }" y1="${ym}" x2="${
              (labelW + scale(f.max)).toFixed(1)
            }" y2="${ym}" stroke="#222222"/>`,
          );
        }
        const text = f.state === "ok"
          ? fmtSpread(f)
          : f.state === "n/a"
          ? `n/a${f.note ? `: ${f.note.split(" (")[0]}` : ""}`
          : f.state === "skipped"
          ? "not run"
          : "failed";
        parts.push(
          `<text x="${
            (labelW + Math.max(wBar, scale(f.max)) + 4).toFixed(1)
          }" y="${y + barH - 3}" fill="#333333">${xml(text)}</text>`,
        );
      });
    });
    parts.push(`</g>`);
  }
  parts.push(`</svg>`);
  return parts.join("\n") + "\n";
}

/** A figure over the rounds: its median and spread. */
export interface Spread {
  /**
   * `ok` measured in at least one round, `failed` (every round failed),
   * `n/a` (cannot be measured: see `note`), `skipped` (not run).
   */
  state: "ok" | "failed" | "n/a" | "skipped";
  /** Median over the rounds that measured (NaN without any). */
  median: number;
  /** Smallest round (NaN without any). */
  min: number;
  /** Largest round (NaN without any). */
  max: number;
  /** Every run round's figure, in round order (NaN for a failed round). */
  values: number[];
  /** Rounds that failed. */
  failedRounds: number;
  /** First error seen, or why the figure is n/a. */
  note: string | undefined;
}

/**
 * Median, min and max of the finite numbers of `values` (NaN for none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spreadOf } from "./report.ts";
 * assert.deepEqual(spreadOf([3, NaN, 1, 2]), { median: 2, min: 1, max: 3 });
 * assert.ok(Number.isNaN(spreadOf([]).median));
 * ```
 */
export function spreadOf(
  values: readonly number[],
): { median: number; min: number; max: number } {
  const v = values.filter((x) => Number.isFinite(x));
  return {
    median: median(v),
    min: v.length ? Math.min(...v) : NaN,
    max: v.length ? Math.max(...v) : NaN,
  };
}

/** One figure of the USB/IP track, through one host controller. */
export interface TransportFigure extends Spread {
  /** Median CPU cost of the client (the workload's cpuUnit). */
  cpu: number;
  /** Largest peak RSS of the client, KiB. */
  peakRssKb: number;
  /** Buffers the client used. */
  mem: string;
}

/** One line of the USB/IP track: a workload through USB/IP and through dummy_hcd. */
export interface UsbipRow {
  /** The figure. */
  id: "bulk-in" | "iso-in";
  /** Title, with the shape. */
  title: string;
  /** Unit of the figures. */
  unit: string;
  /** Unit of the client CPU figures. */
  cpuUnit: string;
  /** usbkit against the TypeScript device on vhci_hcd. */
  usbip: TransportFigure;
  /** usbkit against the SourceSink gadget on dummy_hcd (`n/a` for isochronous). */
  dummy: TransportFigure;
  /**
   * USB/IP ÷ dummy_hcd, paired by round (both run in the same round,
   * minutes apart): median and spread of the per-round ratios.
   */
  ratio: Spread;
  /** Median CPU seconds of the whole device process (start, attach, warm-up and measured phase). */
  serverCpuTotalS: number;
  /** Largest peak RSS of the device process, KiB. */
  serverPeakRssKb: number;
  /** Median seconds from the device process's start to enumerated. */
  attachS: number;
  /** Median CPU cost of the device process in the measured phase (the row's cpuUnit). */
  serverCpu: number;
  /** Median share of one CPU the device process used in the measured phase. */
  serverBusy: number;
  /** Median share of one CPU the client used in the measured phase. */
  clientBusy: number;
}

/** The USB/IP track of the results. */
export interface UsbipTrack {
  /** The client contender. */
  contender: ContenderId;
  /** Bulk IN and isochronous IN. */
  rows: UsbipRow[];
}

/** Why there is no dummy_hcd isochronous figure. */
export const DUMMY_HCD_NO_ISO =
  "dummy_hcd does not emulate isochronous transfers (a gadget's iso endpoints are dropped on it)";

function transportFigure(
  samples: readonly Sample[],
  workload: AnyWorkloadId,
  metric: WorkloadSpec["metric"],
): TransportFigure {
  const mine = samples.filter((s) =>
    s.contender === USBIP_CONTENDER && s.workload === workload
  ).sort((a, b) => a.round - b.round);
  const ok = mine.filter((s) => s.ok);
  const failed = mine.filter((s) => !s.ok);
  const values = mine.map((s) => score(s, metric));
  return {
    state: mine.length === 0
      ? "skipped"
      : ok.length > 0
      ? "ok"
      : failed.every((s) => s.na)
      ? "n/a"
      : "failed",
    ...spreadOf(values),
    values,
    failedRounds: failed.length,
    note: failed[0]?.error,
    cpu: median(ok.map((s) => cpuCost(s, metric))),
    peakRssKb: ok.reduce((m, s) => Math.max(m, s.peak_rss_kb ?? 0), 0),
    mem: ok[0]?.mem ?? "",
  };
}

function notAvailable(note: string): TransportFigure {
  return {
    state: "n/a",
    median: NaN,
    min: NaN,
    max: NaN,
    values: [],
    failedRounds: 0,
    note,
    cpu: NaN,
    peakRssKb: 0,
    mem: "",
  };
}

/**
 * The per-round ratios a ÷ b of two workloads' samples of the track's
 * contender, paired by round (rounds where either failed are left out).
 */
function pairedRatio(
  samples: readonly Sample[],
  a: AnyWorkloadId,
  b: AnyWorkloadId,
  metric: WorkloadSpec["metric"],
): Spread {
  const byRound = (w: AnyWorkloadId) => {
    const m = new Map<number, number>();
    for (const s of samples) {
      if (s.contender === USBIP_CONTENDER && s.workload === w && s.ok) {
        m.set(s.round, score(s, metric));
      }
    }
    return m;
  };
  const ma = byRound(a);
  const mb = byRound(b);
  const rounds = [...ma.keys()].filter((r) => mb.has(r)).sort((x, y) => x - y);
  const values = rounds.map((r) => ma.get(r)! / mb.get(r)!);
  const finite = values.filter((v) => Number.isFinite(v));
  return {
    state: finite.length ? "ok" : "skipped",
    ...spreadOf(values),
    values,
    failedRounds: 0,
    note: undefined,
  };
}

/**
 * The USB/IP track: usbkit's zero-copy bulk IN stream through USB/IP (a
 * TypeScript device on vhci_hcd) beside the same stream through dummy_hcd
 * (the SourceSink gadget, workload `in`), with their per-round ratio; and
 * isochronous IN packets per second through USB/IP, which dummy_hcd cannot
 * give (its figure is `n/a`, {@link DUMMY_HCD_NO_ISO}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchShape, usbipTrack } from "./report.ts";
 * const t = usbipTrack([
 *   { round: 1, contender: "usbkit-stream", workload: "in", ok: true, bytes: 4e8, seconds: 2 },
 *   { round: 1, contender: "usbkit-stream", workload: "usbip-in", ok: true, bytes: 1e8, seconds: 2 },
 *   { round: 1, contender: "usbkit-stream", workload: "usbip-iso", ok: true, packets: 6000, seconds: 2 },
 * ], benchShape(false));
 * assert.ok(t.rows[0]!.usbip.median === 50 && t.rows[0]!.ratio.median === 0.25);
 * assert.ok(t.rows[1]!.usbip.median === 3000 && t.rows[1]!.dummy.state === "n/a");
 * ```
 */
export function usbipTrack(
  samples: readonly Sample[],
  shape: BenchShape,
): UsbipTrack {
  const mine = samples.filter((s) =>
    s.contender === USBIP_CONTENDER &&
    (USBIP_WORKLOADS as readonly string[]).includes(s.workload)
  );
  const server = (w: UsbipWorkloadId, metric: WorkloadSpec["metric"]) => {
    const ss = mine.filter((s) => s.workload === w && s.ok);
    return {
      serverCpu: median(
        ss.map((s) =>
          s.server_cpu_s === undefined
            ? NaN
            : cpuCost({ ...s, cpu_s: s.server_cpu_s }, metric)
        ),
      ),
      serverBusy: median(
        ss.map((s) =>
          s.server_cpu_s !== undefined && s.server_wall_s
            ? s.server_cpu_s / s.server_wall_s
            : NaN
        ),
      ),
      clientBusy: median(
        ss.map((s) =>
          s.cpu_s !== undefined && s.seconds ? s.cpu_s / s.seconds : NaN
        ),
      ),
      serverCpuTotalS: median(ss.map((s) => s.server_cpu_total_s ?? NaN)),
      serverPeakRssKb: ss.reduce(
        (m, s) => Math.max(m, s.server_peak_rss_kb ?? 0),
        0,
      ),
      attachS: median(ss.map((s) => s.attach_s ?? NaN)),
    };
  };
  const mib = Math.round(shape.bulkBytes / (1 << 20));
  const kib = Math.round(shape.bulkXfer / 1024);
  return {
    contender: USBIP_CONTENDER,
    rows: [
      {
        id: "bulk-in",
        title:
          `bulk IN, ${mib} MiB, ${kib} KiB x ${shape.bulkInflight} in flight`,
        unit: "MB/s",
        cpuUnit: "CPU s/GiB",
        usbip: transportFigure(samples, "usbip-in", "mbps"),
        dummy: transportFigure(samples, "in", "mbps"),
        ratio: pairedRatio(samples, "usbip-in", "in", "mbps"),
        ...server("usbip-in", "mbps"),
      },
      {
        id: "iso-in",
        title:
          `iso IN, ${shape.isoUrbs} URBs of ${shape.isoPackets} x 1024 B, ${shape.isoInflight} in flight`,
        unit: "packets/s",
        cpuUnit: "CPU us/packet",
        usbip: transportFigure(samples, "usbip-iso", "pps"),
        dummy: notAvailable(DUMMY_HCD_NO_ISO),
        ratio: {
          state: "n/a",
          median: NaN,
          min: NaN,
          max: NaN,
          values: [],
          failedRounds: 0,
          note: DUMMY_HCD_NO_ISO,
        },
        ...server("usbip-iso", "pps"),
      },
    ],
  };
}

/**
 * A figure with its spread: `median [min-max]`, the median alone for one
 * value or a zero spread, `-` for none. `dash` goes between min and max
 * (the README uses an en dash).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fmtSpread } from "./report.ts";
 * assert.equal(fmtSpread({ median: 41.23, min: 39, max: 43.1 }), "41.2 [39.0-43.1]");
 * assert.equal(fmtSpread({ median: 41.23, min: 39, max: 43.1 }, "–"), "41.2 [39.0–43.1]");
 * assert.equal(fmtSpread({ median: 5, min: 5, max: 5 }), "5.00");
 * assert.equal(fmtSpread({ median: NaN, min: NaN, max: NaN }), "-");
 * ```
 */
export function fmtSpread(
  s: { median: number; min: number; max: number },
  dash = "-",
): string {
  if (!Number.isFinite(s.median)) return "-";
  if (!Number.isFinite(s.min) || !Number.isFinite(s.max) || s.min === s.max) {
    return fmtNum(s.median);
  }
  return `${fmtNum(s.median)} [${fmtNum(s.min)}${dash}${fmtNum(s.max)}]`;
}

function figureText(f: TransportFigure | Spread): string {
  switch (f.state) {
    case "ok":
      return fmtSpread(f) +
        (f.failedRounds > 0 ? ` (${f.failedRounds} failed)` : "");
    case "skipped":
      return "not run";
    case "n/a":
      return "n/a";
    case "failed":
      return "FAILED";
  }
}

/**
 * The USB/IP track as text: per workload, USB/IP and dummy_hcd as `median
 * [min-max]` over the rounds and their per-round ratio; then client CPU,
 * the device process, and the notes (n/a reasons, errors). Empty when the
 * track was not run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchShape, renderUsbipTrack, usbipTrack } from "./report.ts";
 * const shape = benchShape(false);
 * const text = renderUsbipTrack(usbipTrack([
 *   { round: 1, contender: "usbkit-stream", workload: "usbip-in", ok: true, bytes: 1e8, seconds: 2 },
 * ], shape));
 * assert.ok(text.includes("50.0") && text.includes("dummy_hcd does not emulate isochronous"));
 * assert.equal(renderUsbipTrack(usbipTrack([], shape)), "");
 * ```
 */
export function renderUsbipTrack(track: UsbipTrack): string {
  if (track.rows.every((r) => r.usbip.state === "skipped")) return "";
  const pad = (s: string, n: number) => s.padEnd(n);
  const out: string[] = [];
  out.push(
    `USB/IP track: ${
      CONTENDER_LABELS[track.contender]
    } client; a TypeScript device on vhci_hcd (bench/usbip_device.ts, high speed) vs the SourceSink gadget on dummy_hcd (SuperSpeed)`,
  );
  out.push("  median [min-max] over the rounds; ratio paired by round");
  const w0 = 2 +
    Math.max(...track.rows.map((r) => `${r.title} (${r.unit})`.length));
  const w1 = 2 +
    Math.max(
      "dummy_hcd".length,
      ...track.rows.flatMap((r) => [r.usbip, r.dummy].map(figureText))
        .map((t) => t.length),
    );
  out.push(
    `  ${pad("", w0)}${pad("USB/IP", w1)}${
      pad("dummy_hcd", w1)
    }USB/IP : dummy_hcd`,
  );
  const notes: string[] = [];
  for (const r of track.rows) {
    out.push(
      `  ${pad(`${r.title} (${r.unit})`, w0)}${pad(figureText(r.usbip), w1)}${
        pad(figureText(r.dummy), w1)
      }${figureText(r.ratio)}`,
    );
    const cpu = [
      `USB/IP ${fmtNum(r.usbip.cpu)}`,
      `dummy_hcd ${fmtNum(r.dummy.cpu)}`,
    ].join(", ");
    out.push(`    client ${r.cpuUnit}: ${cpu}`);
    if (r.usbip.state === "ok") {
      out.push(
        `    measured phase, USB/IP: device process ${
          fmtNum(r.serverCpu)
        } ${r.cpuUnit}, busy ${fmtNum(r.serverBusy)} of a CPU; client busy ${
          fmtNum(r.clientBusy)
        }`,
      );
      out.push(
        `    device process: ${
          fmtNum(r.serverCpuTotalS)
        } CPU s in all (start, attach, warm-up, measured), peak RSS ${
          fmtNum(r.serverPeakRssKb / 1024)
        } MiB, enumerated ${fmtNum(r.attachS)} s after start`,
      );
    }
    for (
      const [where, f] of [["USB/IP", r.usbip], ["dummy_hcd", r.dummy]] as const
    ) {
      if (f.note !== undefined && f.state !== "ok") {
        notes.push(`    ${r.id} ${where}: ${f.note}`);
      } else if (f.note !== undefined && f.failedRounds > 0) {
        notes.push(`    ${r.id} ${where}, failed round(s): ${f.note}`);
      }
    }
  }
  if (notes.length) out.push("  notes:", ...notes);
  out.push("");
  return out.join("\n");
}

/** The results file, bench/results/latest.json. */
export interface ResultsFile {
  /** ISO date of the run. */
  date: string;
  /** Machine kind, e.g. "2 cores, 24 GiB, AMD EPYC". */
  machine: string;
  /** Guest kernel release. */
  kernel: string;
  /** Rounds run. */
  rounds: number;
  /** Whether `--quick` sizes were used. */
  quick: boolean;
  /** Guest CPU every contender was pinned to (`taskset -c`), or null. */
  pinnedCpu: number | null;
  /** Wall seconds of the whole guest-side run (every round, contender and workload), or null when unknown. */
  guestSeconds: number | null;
  /** False when the run was cut short. */
  finished: boolean;
  /** The gadgets measured, by name: usbfs node and bulk endpoint addresses. */
  devices: Record<string, { devnode: string; epIn: number; epOut: number }>;
  /** Workload shape. */
  shape: BenchShape;
  /** Scoring of each workload. */
  workloads: Record<WorkloadId, WorkloadSpec>;
  /** Contender labels. */
  contenders: Record<ContenderId, string>;
  /** Figures per contender and workload: medians, [min, max], per-round ratios. NaN is written as null. */
  cells: Cell[];
  /** Which contenders' ranges overlap a usbkit contender's, per workload. */
  overlaps: Overlap[];
  /** The RSS workload. */
  rss: RssFigure;
  /** Target checks. */
  targets: Target[];
  /** The USB/IP track (its samples are among `samples`). */
  usbip: UsbipTrack;
  /** Every sample of every round. */
  samples: Sample[];
}

/** What a results file says about the run itself. */
export interface RunMeta {
  /** ISO date of the run. */
  date: string;
  /** Machine kind. */
  machine: string;
  /** Guest kernel release. */
  kernel: string;
  /** Rounds run. */
  rounds: number;
  /** `--quick` sizes. */
  quick: boolean;
  /** Guest CPU of the contenders, or null. */
  pinnedCpu: number | null;
  /** Wall seconds of the guest-side run, or null. */
  guestSeconds?: number | null;
  /** False when cut short (default true). */
  finished?: boolean;
  /** The gadgets. */
  devices: Record<string, { devnode: string; epIn: number; epOut: number }>;
  /** Workload shape. */
  shape: BenchShape;
}

/**
 * Builds the results file object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchShape, CONTENDERS, resultsFile, WORKLOADS } from "./report.ts";
 * const r = resultsFile([], { date: "2025-01-01T00:00:00Z", machine: "m", kernel: "k", rounds: 1, quick: true, pinnedCpu: 1, devices: {}, shape: benchShape(true) });
 * assert.ok(r.cells.length === CONTENDERS.length * WORKLOADS.length && r.targets.length === 9);
 * ```
 */
export function resultsFile(
  samples: readonly Sample[],
  meta: RunMeta,
): ResultsFile {
  const cells = aggregate(samples, meta.shape);
  const rss = rssFigure(samples);
  return {
    ...meta,
    guestSeconds: meta.guestSeconds ?? null,
    finished: meta.finished ?? true,
    workloads: workloadSpecs(meta.shape),
    contenders: { ...CONTENDER_LABELS },
    cells,
    overlaps: overlaps(cells),
    rss,
    targets: checkTargets(cells, rss),
    usbip: usbipTrack(samples, meta.shape),
    samples: [...samples],
  };
}

/**
 * JSON text of a results file: NaN becomes null, two-space indent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toJson } from "./report.ts";
 * assert.ok(toJson({ a: NaN }).includes("null"));
 * ```
 */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v),
    2,
  ) + "\n";
}

/**
 * Finds the result line in a contender's stdout: the last line that parses
 * as a JSON object with `ok` and `contender`. Null when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseResultLine } from "./report.ts";
 * const r = parseResultLine('noise\n{"ok":true,"contender":"node-usb","bytes":1}\n');
 * assert.ok(r?.ok === true && r.bytes === 1);
 * ```
 */
export function parseResultLine(
  stdout: string,
): Record<string, unknown> | null {
  const lines = stdout.split("\n").map((l) => l.trim()).filter((l) =>
    l.startsWith("{")
  );
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const v = JSON.parse(lines[i]!);
      if (v && typeof v === "object" && "ok" in v && "contender" in v) {
        return v as Record<string, unknown>;
      }
    } catch {
      // not the result line
    }
  }
  return null;
}
