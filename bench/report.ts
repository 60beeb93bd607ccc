/**
 * The pure half of the benchmark (`deno task bench`): the contenders and
 * workloads, medians over rounds, ratios to the raw-C mmap ceiling, the
 * targets, the text table, the JSON results and the SVG chart. No I/O here,
 * so all of it is unit-tested on the host (tests/unit/bench_report_test.ts).
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
};

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

/** Any workload a sample can be of. */
export type AnyWorkloadId = WorkloadId | UsbipWorkloadId;

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

/** Median figures of one contender on one workload. */
export interface Cell {
  /** Contender. */
  contender: ContenderId;
  /** Workload. */
  workload: WorkloadId;
  /** `ok` measured (at least one round), `failed`, `n/a` (feature missing), `skipped` (not run). */
  state: "ok" | "failed" | "n/a" | "skipped";
  /** Median score over the rounds that measured. */
  value: number;
  /** Every round's score (NaN for failed rounds). */
  values: number[];
  /**
   * Score relative to raw-C mmap, oriented so that more is better: value /
   * baseline for throughput, baseline / value for latency. NaN without both.
   */
  ratio: number;
  /** Median CPU cost (unit: the workload's cpuUnit). */
  cpu: number;
  /** CPU cost relative to raw-C mmap (more is worse). */
  cpuRatio: number;
  /** Largest peak RSS over the rounds, KiB. */
  peakRssKb: number;
  /** Buffers used, as the program said. */
  mem: string;
  /** Rounds that failed. */
  failedRounds: number;
  /** First error seen. */
  error: string | undefined;
  /** Library version, as the program said. */
  version: string | undefined;
}

/** The baseline every ratio is relative to. */
export const BASELINE: ContenderId = "raw-c-mmap";

/**
 * Folds samples into one cell per contender and workload: medians over the
 * rounds, and ratios to {@link BASELINE}.
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
 * assert.ok(node?.ratio === 0.25);
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
      );
      const ok = mine.filter((s) => s.ok);
      const failed = mine.filter((s) => !s.ok);
      const values = mine.map((s) => score(s, spec.metric));
      const state = mine.length === 0
        ? "skipped"
        : ok.length > 0
        ? "ok"
        : failed.every((s) => s.na)
        ? "n/a"
        : "failed";
      return {
        contender,
        workload,
        state,
        value: median(ok.map((s) => score(s, spec.metric))),
        values,
        ratio: NaN,
        cpu: median(ok.map((s) => cpuCost(s, spec.metric))),
        cpuRatio: NaN,
        peakRssKb: ok.reduce((m, s) => Math.max(m, s.peak_rss_kb ?? 0), 0),
        mem: ok[0]?.mem ?? "",
        failedRounds: failed.length,
        error: failed[0]?.error,
        version: ok[0]?.version,
      };
    });
    const base = rows.find((r) => r.contender === BASELINE);
    for (const r of rows) {
      if (base && base.state === "ok" && r.state === "ok") {
        r.ratio = spec.higherIsBetter
          ? r.value / base.value
          : base.value / r.value;
        r.cpuRatio = r.cpu / base.cpu;
      }
    }
    cells.push(...rows);
  }
  return cells;
}

/** A goal the benchmark checks. */
export interface Target {
  /** What is claimed, in words. */
  claim: string;
  /** Measured ratio. */
  ratio: number;
  /** Required ratio. */
  required: number;
  /** `met`, `missed`, or `unknown` when a figure is missing. */
  status: "met" | "missed" | "unknown";
}

/**
 * Checks the targets: usbkit's zero-copy bulk IN at least 0.9 x raw-C mmap,
 * 1.2 x libusb dev_mem and 3 x node-usb; small round trips (1 and 16 in
 * flight; the better usbkit mode against the better libusb mode) at least
 * 0.8 x libusb.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aggregate, benchShape, checkTargets } from "./report.ts";
 * const t = checkTargets(aggregate([], benchShape(false)));
 * assert.ok(t.length === 5 && t.every((x) => x.status === "unknown"));
 * ```
 */
export function checkTargets(cells: readonly Cell[]): Target[] {
  const get = (c: ContenderId, w: WorkloadId) =>
    cells.find((x) => x.contender === c && x.workload === w && x.state === "ok")
      ?.value ?? NaN;
  const best = (cs: ContenderId[], w: WorkloadId) => {
    const v = cs.map((c) => get(c, w)).filter((x) => Number.isFinite(x));
    return v.length ? Math.max(...v) : NaN;
  };
  const mk = (claim: string, ratio: number, required: number): Target => ({
    claim,
    ratio,
    required,
    status: !Number.isFinite(ratio)
      ? "unknown"
      : ratio >= required
      ? "met"
      : "missed",
  });
  const zin = get("usbkit-stream", "in");
  return [
    mk(
      "usbkit zero-copy bulk IN vs raw-C mmap",
      zin / get("raw-c-mmap", "in"),
      0.9,
    ),
    mk(
      "usbkit zero-copy bulk IN vs libusb dev_mem",
      zin / get("libusb-devmem", "in"),
      1.2,
    ),
    mk("usbkit zero-copy bulk IN vs node-usb", zin / get("node-usb", "in"), 3),
    mk(
      "usbkit round trips, 1 in flight, vs libusb",
      best(["usbkit-stream", "usbkit-copy"], "rt1") /
        best(["libusb-devmem", "libusb-malloc"], "rt1"),
      0.8,
    ),
    mk(
      "usbkit round trips, 16 in flight, vs libusb",
      best(["usbkit-stream", "usbkit-copy"], "rt16") /
        best(["libusb-devmem", "libusb-malloc"], "rt16"),
      0.8,
    ),
  ];
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
 * The text table: one block per workload, one row per contender, with the
 * score, its ratio to raw-C mmap, CPU cost and its ratio, peak RSS and the
 * buffers used. Failed and n/a cells say so, with the error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aggregate, benchShape, renderTable } from "./report.ts";
 * const shape = benchShape(true);
 * const text = renderTable(aggregate([
 *   { round: 1, contender: "raw-c-mmap", workload: "in", ok: true, bytes: 4e8, seconds: 1, cpu_s: 0.5 },
 * ], shape), shape);
 * assert.ok(text.includes("raw-C mmap") && text.includes("400"));
 * ```
 */
export function renderTable(cells: readonly Cell[], shape: BenchShape): string {
  const specs = workloadSpecs(shape);
  const out: string[] = [];
  const pad = (s: string, n: number) => s.padEnd(n);
  const lpad = (s: string, n: number) => s.padStart(n);
  for (const w of WORKLOADS) {
    const spec = specs[w];
    const rows = cells.filter((c) => c.workload === w);
    if (rows.every((r) => r.state === "skipped")) continue;
    out.push(
      `${spec.title}  (ratios: x raw-C mmap${
        spec.higherIsBetter ? "" : ", latency inverted so more is better"
      })`,
    );
    out.push(
      `  ${pad("contender", 27)}${lpad(spec.unit, 11)}${lpad("ratio", 7)}${
        lpad(spec.cpuUnit, 13)
      }${lpad("ratio", 7)}${lpad("RSS MiB", 9)}  buffers`,
    );
    for (const r of rows) {
      const label = CONTENDER_LABELS[r.contender];
      if (r.state !== "ok") {
        const why = r.state === "skipped"
          ? "not run"
          : `${r.state}${r.error ? `: ${r.error}` : ""}`;
        out.push(
          `  ${pad(label, 27)}${
            lpad(
              r.state === "n/a"
                ? "n/a"
                : r.state === "skipped"
                ? "-"
                : "FAILED",
              11,
            )
          }  ${why}`,
        );
        continue;
      }
      const note = r.failedRounds > 0
        ? ` (${r.failedRounds} round(s) failed: ${r.error ?? "?"})`
        : "";
      out.push(
        `  ${pad(label, 27)}${lpad(fmtNum(r.value), 11)}${
          lpad(fmtNum(r.ratio), 7)
        }${lpad(fmtNum(r.cpu), 13)}${lpad(fmtNum(r.cpuRatio), 7)}${
          lpad(fmtNum(r.peakRssKb / 1024), 9)
        }  ${r.mem}${note}`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}

/**
 * The targets as lines: `[met]`, `[MISSED]` or `[unknown]`, the ratio and
 * the requirement.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderTargets } from "./report.ts";
 * const s = renderTargets([{ claim: "x", ratio: 1, required: 0.9, status: "met" }]);
 * assert.ok(s.includes("[met]") && s.includes("1.00 >= 0.9"));
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
      return `  ${tag} ${t.claim}: ${
        Number.isFinite(t.ratio) ? t.ratio.toFixed(2) : "-"
      } >= ${t.required}`;
    })
    .join("\n");
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
  const rightW = 80;
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
    c.ratio
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
    `<text x="10" y="20" font-size="15" font-weight="bold">usbkit benchmark: ratio to raw-C mmap (more is better)</text>`,
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
      const text = ok
        ? `${cell.ratio.toFixed(2)}x (${fmtNum(cell.value)})`
        : cell === undefined || cell.state === "skipped"
        ? "not run"
        : cell.state === "n/a"
        ? "n/a"
        : cell.state === "failed"
        ? "failed"
        : "no baseline";
      parts.push(
        `<text x="${(labelW + wBar + 4).toFixed(1)}" y="${
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
 * value or a zero spread, `-` for none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fmtSpread } from "./report.ts";
 * assert.equal(fmtSpread({ median: 41.23, min: 39, max: 43.1 }), "41.2 [39.0-43.1]");
 * assert.equal(fmtSpread({ median: 5, min: 5, max: 5 }), "5.00");
 * assert.equal(fmtSpread({ median: NaN, min: NaN, max: NaN }), "-");
 * ```
 */
export function fmtSpread(
  s: { median: number; min: number; max: number },
): string {
  if (!Number.isFinite(s.median)) return "-";
  if (!Number.isFinite(s.min) || !Number.isFinite(s.max) || s.min === s.max) {
    return fmtNum(s.median);
  }
  return `${fmtNum(s.median)} [${fmtNum(s.min)}-${fmtNum(s.max)}]`;
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
  /** Machine kind, e.g. "node (2 cores, TCG guest)". */
  machine: string;
  /** Guest kernel release. */
  kernel: string;
  /** Rounds run. */
  rounds: number;
  /** Whether `--quick` sizes were used. */
  quick: boolean;
  /** Guest CPU every contender was pinned to (`taskset -c`), or null. */
  pinnedCpu: number | null;
  /** The gadgets measured, by name: usbfs node and bulk endpoint addresses. */
  devices: Record<string, { devnode: string; epIn: number; epOut: number }>;
  /** Workload shape. */
  shape: BenchShape;
  /** Scoring of each workload. */
  workloads: Record<WorkloadId, WorkloadSpec>;
  /** Contender labels. */
  contenders: Record<ContenderId, string>;
  /** Median figures. NaN is written as null. */
  cells: Cell[];
  /** Target checks. */
  targets: Target[];
  /** The USB/IP track (its samples are among `samples`). */
  usbip: UsbipTrack;
  /** Every sample of every round. */
  samples: Sample[];
}

/**
 * Builds the results file object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchShape, resultsFile } from "./report.ts";
 * const r = resultsFile([], { date: "2025-01-01T00:00:00Z", machine: "m", kernel: "k", rounds: 1, quick: true, pinnedCpu: 1, devices: {}, shape: benchShape(true) });
 * assert.ok(r.cells.length === 35 && r.targets.length === 5);
 * ```
 */
export function resultsFile(
  samples: readonly Sample[],
  meta: {
    date: string;
    machine: string;
    kernel: string;
    rounds: number;
    quick: boolean;
    pinnedCpu: number | null;
    devices: Record<string, { devnode: string; epIn: number; epOut: number }>;
    shape: BenchShape;
  },
): ResultsFile {
  const cells = aggregate(samples, meta.shape);
  return {
    ...meta,
    workloads: workloadSpecs(meta.shape),
    contenders: { ...CONTENDER_LABELS },
    cells,
    targets: checkTargets(cells),
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
