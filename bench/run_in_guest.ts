/**
 * The benchmark's guest-side driver, run by `deno task bench` inside the
 * virtual bench (SuperSpeed SourceSink + Loopback gadgets). It runs every
 * contender on the same gadget, one process per contender and workload, in
 * turns: round 1 runs every contender on every workload, then round 2, and
 * so on, with the contender order rotated each round so that no contender is
 * always first after a warm cache. Every result line goes to the samples
 * file (`--out`) as soon as it exists, so a run that is cut short keeps what
 * it measured.
 *
 * `usbkit-park` (the zero-copy usbkit program with `USBKIT_WAKE=park`) runs
 * only on `in`, `rt1` and `ctrl`. The RSS workload (`rss`: a long stream of
 * small bulk IN transfers, RSS sampled along the way) runs once, in round 1,
 * by `usbkit-stream` alone. Each sample records the contender process's
 * wall time (`wall_s`), and the samples file the whole run's
 * (`guestSeconds`).
 *
 * The USB/IP track (workloads `usbip-in`, `usbip-iso`, right after `in` in
 * each round, run by the `usbkit-stream` contender only): for each, a device
 * process (bench/usbip_device.ts) attaches a TypeScript device to the
 * guest's vhci_hcd and prints where it is; the usbkit client runs against
 * it as a separate process; then the device process is told to detach (its
 * stdin is closed) and reports its own CPU.
 *
 * ```sh
 * deno run -A --no-check --cached-only bench/run_in_guest.ts --rounds 3 --out .cache/bench/samples.json
 * ```
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchInfo, DeviceLocation } from "../kernel/bench.ts";
import {
  type AnyWorkloadId,
  type BenchShape,
  benchShape,
  type ContenderId,
  CONTENDERS,
  parseResultLine,
  RSS_CONTENDER,
  RSS_WORKLOAD,
  runsWorkload,
  type Sample,
  toJson,
  USBIP_CONTENDER,
  USBIP_MARK_REQUEST,
  USBIP_WORKLOADS,
  type UsbipWorkloadId,
  type WorkloadId,
  WORKLOADS,
} from "./report.ts";
import type { UsbipReady, UsbipServerEnd } from "./usbip_device.ts";

/**
 * Every workload the driver knows, in the order a round runs them: the
 * USB/IP track right after `in`, so that the two bulk IN figures it compares
 * are measured close together.
 */
export const DRIVER_WORKLOADS: readonly AnyWorkloadId[] = [
  "in",
  ...USBIP_WORKLOADS,
  ...WORKLOADS.filter((w) => w !== "in"),
  RSS_WORKLOAD,
];

/** True for a USB/IP track workload. */
export function isUsbipWorkload(w: string): w is UsbipWorkloadId {
  return (USBIP_WORKLOADS as readonly string[]).includes(w);
}

/** What the driver was asked to do. */
export interface DriverOptions {
  /** Rounds over all contenders and workloads. */
  rounds: number;
  /** Small sizes. */
  quick: boolean;
  /** Contenders to run (default all). */
  contenders: ContenderId[];
  /** Workloads to run (default all, in {@link DRIVER_WORKLOADS} order). */
  workloads: AnyWorkloadId[];
  /** Where the samples file goes. */
  out: string;
  /** Directory of the compiled C programs. */
  binDir: string;
  /**
   * Run every contender pinned to this guest CPU (`taskset -c N`), or null
   * for no pinning. Default 1. Under TCG a wake-up or TLB shootdown between
   * threads on different vCPUs costs milliseconds, not microseconds, which
   * punishes multi-threaded runtimes (node, deno) far beyond what real
   * hardware does; pinning every contender alike removes that artefact.
   */
  pin: number | null;
  /**
   * Guest CPU the USB/IP track's device process is pinned to, or null for
   * none. Default: the other CPU of the two-CPU guest (0 when `pin` is 1),
   * so that device and client, both multi-threaded JavaScript processes,
   * each keep their threads on one vCPU (see `pin`) without taking turns
   * on the same one.
   */
  serverPin: number | null;
}

/** The samples file the driver writes and the host reads. */
export interface SamplesFile {
  /** When the run started (ISO; the guest clock comes from QEMU's RTC). */
  date: string;
  /** Guest kernel release. */
  kernel: string;
  /** Rounds asked for. */
  rounds: number;
  /** Quick sizes. */
  quick: boolean;
  /** Guest CPU every contender was pinned to, or null. */
  pin: number | null;
  /** The gadgets measured: usbfs node and bulk endpoints, from sysfs. */
  devices: { sourceSink: GadgetTarget; loopback: GadgetTarget };
  /** Guest CPU of the USB/IP track's device process, or null (absent in older files). */
  serverPin?: number | null;
  /** The USB/IP device as its process last reported it (absent when the track did not run). */
  usbipDevice?: UsbipReady;
  /** False until every round is done. */
  finished: boolean;
  /** Wall seconds from the driver's start to its last sample (absent in older files). */
  guestSeconds?: number;
  /** Results so far. */
  samples: Sample[];
}

/** A gadget's usbfs node and its bulk endpoints, from sysfs. */
export interface GadgetTarget {
  /** usbfs node. */
  devnode: string;
  /** Bulk IN endpoint address. */
  epIn: number;
  /** Bulk OUT endpoint address. */
  epOut: number;
}

const PROJECT = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * Parses the driver's flags: `--rounds N`, `--quick`, `--only a,b`,
 * `--workloads in,usbip-in,out`, `--out FILE`, `--bin DIR`, `--pin N|none`,
 * `--server-pin N|none` (the USB/IP device process).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDriverArgs } from "./run_in_guest.ts";
 * const o = parseDriverArgs(["--rounds", "2", "--only", "raw-c-mmap,node-usb", "--quick"]);
 * assert.ok(o.rounds === 2 && o.quick && o.contenders.length === 2);
 * assert.ok(o.workloads.includes("usbip-iso") && o.serverPin === 0);
 * ```
 */
export function parseDriverArgs(args: readonly string[]): DriverOptions {
  const o: DriverOptions = {
    rounds: 5,
    quick: false,
    contenders: [...CONTENDERS],
    workloads: [...DRIVER_WORKLOADS],
    out: join(PROJECT, ".cache", "bench", "samples.json"),
    binDir: join(PROJECT, ".cache", "bench", "bin"),
    pin: 1,
    serverPin: null,
  };
  let serverPinGiven = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = () => {
      const x = args[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    switch (a) {
      case "--rounds":
        o.rounds = Number(v());
        if (!Number.isInteger(o.rounds) || o.rounds < 1) {
          throw new Error("--rounds wants a positive integer");
        }
        break;
      case "--quick":
        o.quick = true;
        break;
      case "--only":
        o.contenders = v().split(",").map((c) => {
          if (!(CONTENDERS as readonly string[]).includes(c)) {
            throw new Error(
              `unknown contender ${c}; known: ${CONTENDERS.join(", ")}`,
            );
          }
          return c as ContenderId;
        });
        break;
      case "--workloads": {
        const asked = v().split(",").map((w) => {
          if (!(DRIVER_WORKLOADS as readonly string[]).includes(w)) {
            throw new Error(
              `unknown workload ${w}; known: ${DRIVER_WORKLOADS.join(", ")}`,
            );
          }
          return w as AnyWorkloadId;
        });
        o.workloads = [...new Set(asked)];
        break;
      }
      case "--out":
        o.out = v();
        break;
      case "--bin":
        o.binDir = v();
        break;
      case "--pin": {
        const p = v();
        o.pin = p === "none" ? null : Number(p);
        if (o.pin !== null && (!Number.isInteger(o.pin) || o.pin < 0)) {
          throw new Error("--pin wants a CPU number or none");
        }
        break;
      }
      case "--server-pin": {
        const p = v();
        o.serverPin = p === "none" ? null : Number(p);
        if (
          o.serverPin !== null &&
          (!Number.isInteger(o.serverPin) || o.serverPin < 0)
        ) {
          throw new Error("--server-pin wants a CPU number or none");
        }
        serverPinGiven = true;
        break;
      }
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  if (!serverPinGiven) {
    o.serverPin = o.pin === null ? null : o.pin === 1 ? 0 : 1;
  }
  return o;
}

/**
 * The command line that runs `contender` on `workload`: every program takes
 * the same flags (bench/c/usbfs_bench.c documents them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { contenderArgv } from "./run_in_guest.ts";
 * import { benchShape } from "./report.ts";
 * const t = { devnode: "/dev/bus/usb/002/002", epIn: 0x81, epOut: 0x02 };
 * const argv = contenderArgv("libusb-devmem", "in", t, benchShape(true), { binDir: "/b", deno: "deno", project: "/p" });
 * assert.ok(argv[0] === "/b/libusb_bench" && argv.includes("devmem"));
 * ```
 */
export function contenderArgv(
  contender: ContenderId,
  workload: WorkloadId,
  target: GadgetTarget,
  shape: BenchShape,
  paths: { binDir: string; deno: string; project: string },
): string[] {
  const w = workload === "rt1" || workload === "rt16" ? "rt" : workload;
  const common = [
    "--dev",
    target.devnode,
    "--ep-in",
    String(target.epIn),
    "--ep-out",
    String(target.epOut),
    "--max-seconds",
    "120",
  ];
  switch (workload) {
    case "in":
    case "out":
      common.push(
        "--bytes",
        String(shape.bulkBytes),
        "--xfer",
        String(shape.bulkXfer),
        "--inflight",
        String(shape.bulkInflight),
      );
      break;
    case "rt1":
      common.push(
        "--inflight",
        "1",
        "--count",
        String(shape.rt1Count),
        "--rt-size",
        String(shape.rtSize),
      );
      break;
    case "rt16":
      common.push(
        "--inflight",
        "16",
        "--count",
        String(shape.rt16Count),
        "--rt-size",
        String(shape.rtSize),
      );
      break;
    case "ctrl":
      common.push("--count", String(shape.ctrlCount));
      break;
  }
  const usbkit = [
    paths.deno,
    "run",
    "-A",
    "--no-check",
    "--cached-only",
    join(paths.project, "bench", "usbkit_bench.ts"),
    w,
  ];
  switch (contender) {
    case "raw-c-mmap":
      return [
        join(paths.binDir, "usbfs_bench"),
        "--workload",
        w,
        "--mem",
        "mmap",
        ...common,
      ];
    case "raw-c-malloc":
      return [
        join(paths.binDir, "usbfs_bench"),
        "--workload",
        w,
        "--mem",
        "malloc",
        ...common,
      ];
    case "libusb-devmem":
      return [
        join(paths.binDir, "libusb_bench"),
        "--workload",
        w,
        "--mem",
        "devmem",
        ...common,
      ];
    case "libusb-malloc":
      return [
        join(paths.binDir, "libusb_bench"),
        "--workload",
        w,
        "--mem",
        "malloc",
        ...common,
      ];
    case "node-usb":
      return [
        "node",
        join(paths.project, "bench", "node", "node_usb_bench.mjs"),
        "--workload",
        w,
        ...common,
      ];
    case "usbkit-stream":
      return [
        ...usbkit,
        "--mode",
        "zero-copy",
        "--contender",
        contender,
        ...common,
      ];
    case "usbkit-copy":
      return [...usbkit, "--mode", "copy", "--contender", contender, ...common];
    case "usbkit-park":
      return [
        "env",
        "USBKIT_WAKE=park",
        ...usbkit,
        "--mode",
        "zero-copy",
        "--contender",
        contender,
        ...common,
      ];
  }
}

/**
 * The command line of the RSS workload: the usbkit zero-copy program's
 * `rss` workload on the SourceSink's bulk IN, with the shape's count, chunk
 * size, sampling interval, depth and time budget.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rssArgv } from "./run_in_guest.ts";
 * import { benchShape } from "./report.ts";
 * const t = { devnode: "/dev/bus/usb/002/002", epIn: 0x81, epOut: 0x02 };
 * const argv = rssArgv(t, benchShape(false), { deno: "deno", project: "/p" });
 * assert.ok(argv.includes("rss") && argv[argv.indexOf("--count") + 1] === "1000000");
 * ```
 */
export function rssArgv(
  target: GadgetTarget,
  shape: BenchShape,
  paths: { deno: string; project: string },
): string[] {
  return [
    paths.deno,
    "run",
    "-A",
    "--no-check",
    "--cached-only",
    join(paths.project, "bench", "usbkit_bench.ts"),
    "rss",
    "--dev",
    target.devnode,
    "--mode",
    "zero-copy",
    "--contender",
    RSS_CONTENDER,
    "--ep-in",
    String(target.epIn),
    "--ep-out",
    String(target.epOut),
    "--count",
    String(shape.rssCount),
    "--xfer",
    String(shape.rssXfer),
    "--rss-every",
    String(shape.rssEvery),
    "--inflight",
    String(shape.rssInflight),
    "--max-seconds",
    String(shape.rssMaxSeconds),
  ];
}

/**
 * How long the USB/IP track's client may measure (each of warm-up and
 * measured phase): longer than the others' 120 s, as USB/IP under TCG on a
 * loaded host runs at a few MB/s.
 */
const USBIP_MAX_SECONDS = 200;

/**
 * The command line of the USB/IP track's usbkit client (bench/usbkit_bench.ts,
 * zero-copy) against the device its process reported: `usbip-in` is the
 * bulk IN stream of the `in` workload, `usbip-iso` isochronous IN on the
 * device's alternate setting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { usbipClientArgv } from "./run_in_guest.ts";
 * import { benchShape } from "./report.ts";
 * const ready = { ok: true, ready: true, devnode: "/dev/bus/usb/003/002", portPath: "3-1", epIn: 0x81, epOut: 0x02,
 *   isoEp: 0x83, isoInterface: 1, isoAlternate: 1, isoPacket: 1024, attachSeconds: 1 } as const;
 * const argv = usbipClientArgv("usbip-iso", ready, benchShape(true), { deno: "deno", project: "/p" });
 * assert.ok(argv.includes("iso") && argv[argv.indexOf("--alt") + 1] === "1");
 * ```
 */
export function usbipClientArgv(
  workload: UsbipWorkloadId,
  ready: UsbipReady,
  shape: BenchShape,
  paths: { deno: string; project: string },
): string[] {
  const head = [
    paths.deno,
    "run",
    "-A",
    "--no-check",
    "--cached-only",
    join(paths.project, "bench", "usbkit_bench.ts"),
  ];
  const common = [
    "--dev",
    ready.devnode,
    "--mode",
    "zero-copy",
    "--mark-request",
    String(USBIP_MARK_REQUEST),
  ];
  if (workload === "usbip-in") {
    return [
      ...head,
      "in",
      ...common,
      "--iface",
      "0",
      "--ep-in",
      String(ready.epIn),
      "--ep-out",
      String(ready.epOut),
      "--bytes",
      String(shape.bulkBytes),
      "--xfer",
      String(shape.bulkXfer),
      "--inflight",
      String(shape.bulkInflight),
      "--max-seconds",
      String(USBIP_MAX_SECONDS),
    ];
  }
  return [
    ...head,
    "iso",
    ...common,
    "--iface",
    String(ready.isoInterface),
    "--alt",
    String(ready.isoAlternate),
    "--ep-in",
    String(ready.isoEp),
    "--packets",
    String(shape.isoPackets),
    "--inflight",
    String(shape.isoInflight),
    "--count",
    String(shape.isoUrbs),
    "--max-seconds",
    String(USBIP_MAX_SECONDS),
  ];
}

/** What the USB/IP device process said on stdout. */
export interface UsbipServerLines {
  /** Its ready line, once enumerated. */
  ready?: UsbipReady;
  /** Its end line, once detached. */
  end?: UsbipServerEnd;
  /** Its failure. */
  error?: string;
}

/**
 * Reads the device process's JSON lines (bench/usbip_device.ts): the ready
 * line, the end line, or a failure; anything else is ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseUsbipServerLines } from "./run_in_guest.ts";
 * const r = parseUsbipServerLines('noise\n{"ok":true,"ready":true,"devnode":"/dev/bus/usb/003/002"}\n');
 * assert.equal(r.ready?.devnode, "/dev/bus/usb/003/002");
 * assert.equal(parseUsbipServerLines('{"ok":false,"error":"no vhci"}').error, "no vhci");
 * ```
 */
export function parseUsbipServerLines(stdout: string): UsbipServerLines {
  const out: UsbipServerLines = {};
  for (const raw of stdout.split("\n")) {
    const line = raw.trim();
    if (!line.startsWith("{")) continue;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (v.ok === false) {
      out.error = typeof v.error === "string" ? v.error : "failed";
    } else if (v.ready === true && typeof v.devnode === "string") {
      out.ready = v as unknown as UsbipReady;
    } else if (v.end === true) {
      out.end = v as unknown as UsbipServerEnd;
    }
  }
  return out;
}

/**
 * The order contenders run in, in round `round` (from 1): rotated by one per
 * round.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roundOrder } from "./run_in_guest.ts";
 * assert.ok(roundOrder(["a", "b", "c"], 2).join() === "b,c,a");
 * ```
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const k = (round - 1) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Reads the bulk endpoints of interface 0 from sysfs (`ep_XX/direction`, `ep_XX/type`). */
async function findTarget(
  loc: DeviceLocation | null,
  what: string,
): Promise<GadgetTarget> {
  if (loc === null) throw new Error(`the ${what} gadget did not enumerate`);
  const ifDir = `${loc.sysfs}/${loc.port}:1.0`;
  let epIn = 0;
  let epOut = 0;
  for await (const e of Deno.readDir(ifDir)) {
    const m = /^ep_([0-9a-f]{2})$/.exec(e.name);
    if (!m) continue;
    const type = (await Deno.readTextFile(`${ifDir}/${e.name}/type`)).trim();
    if (type !== "Bulk") continue;
    const addr = parseInt(m[1]!, 16);
    if (addr & 0x80) epIn ||= addr;
    else epOut ||= addr;
  }
  if (!epIn || !epOut) {
    throw new Error(`the ${what} gadget has no bulk IN/OUT pair in ${ifDir}`);
  }
  return { devnode: loc.devnode, epIn, epOut };
}

async function runOne(
  argv: string[],
  contender: ContenderId,
  workload: AnyWorkloadId,
  round: number,
  timeoutMs = 300_000,
): Promise<Sample> {
  const base = { round, contender, workload };
  const [cmd, ...args] = argv;
  let out: Deno.CommandOutput;
  const started = performance.now();
  try {
    out = await new Deno.Command(cmd!, {
      args,
      cwd: PROJECT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // The programs give up on their own after 120 s of measuring; this
      // catches a hang outside the measured loop (e.g. in open or teardown).
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
  } catch (e) {
    return {
      ...base,
      ok: false,
      error: `cannot run ${cmd}: ${(e as Error).message}`,
    };
  }
  const wall_s = (performance.now() - started) / 1000;
  const td = new TextDecoder();
  const line = parseResultLine(td.decode(out.stdout));
  if (line === null) {
    const err = td.decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    const how = out.signal ? `killed by ${out.signal}` : `exit ${out.code}`;
    return {
      ...base,
      ok: false,
      wall_s,
      error: `no result line (${how})${err ? `: ${err}` : ""}`,
    };
  }
  const num = (
    k: string,
  ) => (typeof line[k] === "number" ? (line[k] as number) : undefined);
  const str = (
    k: string,
  ) => (typeof line[k] === "string" ? (line[k] as string) : undefined);
  const s: Sample = { ...base, ok: line.ok === true, wall_s };
  if (line.na === true) s.na = true;
  for (const k of ["error", "mem", "version", "wake"] as const) {
    const v = str(k);
    if (v !== undefined) s[k] = v;
  }
  for (
    const k of [
      "bytes",
      "transfers",
      "seconds",
      "cpu_s",
      "cpu_total_s",
      "peak_rss_kb",
      "latency_us_median",
      "packets",
      "rss_every",
      "rss_target",
    ] as const
  ) {
    const v = num(k);
    if (v !== undefined) s[k] = v;
  }
  const numbers = (v: unknown) =>
    Array.isArray(v) && v.every((x) => typeof x === "number")
      ? (v as number[])
      : undefined;
  const rss = numbers(line.rss_samples_kb);
  if (rss !== undefined) s.rss_samples_kb = rss;
  const c = line.completion;
  if (c !== null && typeof c === "object" && !Array.isArray(c)) {
    const figures = Object.fromEntries(
      Object.entries(c).filter(([, v]) => typeof v === "number"),
    ) as Record<string, number>;
    if (Object.keys(figures).length > 0) s.completion = figures;
  }
  return s;
}

function summary(s: Sample): string {
  if (!s.ok) return s.na ? `n/a: ${s.error}` : `FAILED: ${s.error}`;
  if (s.workload === RSS_WORKLOAD) {
    const r = s.rss_samples_kb ?? [];
    return `${s.transfers} transfers in ${(s.seconds ?? 0).toFixed(0)} s, RSS ${
      r[0] ?? "-"
    } -> ${r.at(-1) ?? "-"} KiB`;
  }
  if (s.workload === "usbip-iso") {
    return `${((s.packets ?? 0) / (s.seconds ?? 1)).toFixed(0)} packets/s`;
  }
  if (s.workload === "ctrl") {
    return `${s.latency_us_median?.toFixed(0)} us median`;
  }
  if (s.workload === "rt1" || s.workload === "rt16") {
    return `${((s.transfers ?? 0) / (s.seconds ?? 1)).toFixed(0)} trips/s`;
  }
  return `${((s.bytes ?? 0) / 1e6 / (s.seconds ?? 1)).toFixed(1)} MB/s`;
}

/** A running USB/IP device process. */
interface UsbipServer {
  ready: UsbipReady;
  /** Closes its stdin; resolves with its end line, once it exited. */
  stop(): Promise<UsbipServerLines>;
}

/**
 * Starts bench/usbip_device.ts (pinned as `pinArgv` says) and waits for its
 * ready line; throws with its last words when it fails or takes more than
 * two minutes.
 */
async function startUsbipServer(pinArgv: string[]): Promise<UsbipServer> {
  const [cmd, ...args] = [
    ...pinArgv,
    Deno.execPath(),
    "run",
    "-A",
    "--no-check",
    "--cached-only",
    join(PROJECT, "bench", "usbip_device.ts"),
  ];
  const child = new Deno.Command(cmd!, {
    args,
    cwd: PROJECT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const outText = new TextDecoder();
  const errText = new TextDecoder();
  let stdout = "";
  let stderr = "";
  const drained = Promise.all([
    (async () => {
      for await (const c of child.stdout) {
        stdout += outText.decode(c, { stream: true });
      }
    })(),
    (async () => {
      for await (const c of child.stderr) {
        stderr += errText.decode(c, { stream: true });
      }
    })(),
  ]).catch(() => {});
  const lastWords = () =>
    stderr.trim().split("\n").slice(-3).join(" | ") || "(nothing on stderr)";
  const stdin = child.stdin.getWriter();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  const deadline = Date.now() + 120_000;
  let exited = false;
  child.status.then(() => exited = true);
  for (;;) {
    const lines = parseUsbipServerLines(stdout);
    if (lines.error !== undefined) {
      await stdin.close().catch(() => {});
      await child.status;
      throw new Error(`the USB/IP device failed: ${lines.error}`);
    }
    if (lines.ready !== undefined) {
      const ready = lines.ready;
      return {
        ready,
        async stop() {
          await stdin.close().catch(() => {});
          const t = setTimeout(kill, 60_000);
          await child.status;
          clearTimeout(t);
          await drained;
          return parseUsbipServerLines(stdout);
        },
      };
    }
    if (exited) {
      await drained;
      throw new Error(
        `the USB/IP device process exited before the device enumerated: ${lastWords()}`,
      );
    }
    if (Date.now() > deadline) {
      kill();
      await child.status;
      throw new Error(
        `the USB/IP device did not enumerate within 120 s: ${lastWords()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One USB/IP track sample: device process, client, device process ends. */
async function runUsbip(
  o: DriverOptions,
  workload: UsbipWorkloadId,
  round: number,
  shape: BenchShape,
  file: SamplesFile,
): Promise<Sample> {
  const base = { round, contender: USBIP_CONTENDER, workload };
  const pin = (p: number | null) =>
    p === null ? [] : ["taskset", "-c", String(p)];
  let server: UsbipServer;
  try {
    await Deno.stat("/sys/devices/platform/vhci_hcd.0/attach");
  } catch {
    return {
      ...base,
      ok: false,
      error: "vhci_hcd is not loaded in the guest (module vhci-hcd)",
    };
  }
  try {
    server = await startUsbipServer(pin(o.serverPin));
  } catch (e) {
    return { ...base, ok: false, error: (e as Error).message };
  }
  file.usbipDevice = server.ready;
  const argv = [
    ...pin(o.pin),
    ...usbipClientArgv(workload, server.ready, shape, {
      deno: Deno.execPath(),
      project: PROJECT,
    }),
  ];
  const s = await runOne(
    argv,
    USBIP_CONTENDER,
    workload,
    round,
    (2 * USBIP_MAX_SECONDS + 60) * 1000,
  );
  s.attach_s = server.ready.attachSeconds;
  const end = await server.stop();
  if (end.end !== undefined) {
    s.server_cpu_total_s = end.end.cpu_total_s;
    s.server_peak_rss_kb = end.end.peak_rss_kb;
    if (end.end.measured_cpu_s !== undefined) {
      s.server_cpu_s = end.end.measured_cpu_s;
    }
    if (end.end.measured_wall_s !== undefined) {
      s.server_wall_s = end.end.measured_wall_s;
    }
  } else if (s.ok) {
    s.ok = false;
    s.error = `the USB/IP device did not detach cleanly${
      end.error !== undefined ? `: ${end.error}` : ""
    }`;
  }
  return s;
}

/**
 * Runs the benchmark in the guest and writes the samples file.
 *
 * @example
 * ```ts ignore
 * // Runs the benchmark inside a QEMU guest (minutes of both cores): `deno task bench`
 * // (scripts/bench.ts) boots one and runs this file there; no test runs it.
 * import { drive, parseDriverArgs } from "./run_in_guest.ts";
 * await drive(parseDriverArgs(["--quick", "--rounds", "1"]));
 * ```
 */
export async function drive(o: DriverOptions): Promise<SamplesFile> {
  const infoPath = Deno.env.get("USBKIT_BENCH") ?? "/run/usbkit-bench.json";
  const info = JSON.parse(await Deno.readTextFile(infoPath)) as BenchInfo;
  const ss = info.gadgets.find((g) => g.function === "sourcesink");
  const lb = info.gadgets.find((g) => g.function === "loopback");
  if (!ss || !lb) {
    throw new Error(
      `the bench needs a SourceSink and a Loopback gadget (${infoPath})`,
    );
  }
  const sourceSink = await findTarget(ss.location, "SourceSink");
  const loopback = await findTarget(lb.location, "Loopback");
  const shape = benchShape(o.quick);
  const file: SamplesFile = {
    date: new Date().toISOString(),
    kernel: info.kernel,
    rounds: o.rounds,
    quick: o.quick,
    pin: o.pin,
    serverPin: o.serverPin,
    devices: { sourceSink, loopback },
    finished: false,
    samples: [],
  };
  const paths = { binDir: o.binDir, deno: Deno.execPath(), project: PROJECT };
  await Deno.mkdir(dirname(o.out), { recursive: true });
  const t0 = performance.now();
  const save = async () => {
    file.guestSeconds = (performance.now() - t0) / 1000;
    await Deno.writeTextFile(o.out, toJson(file));
  };
  for (let round = 1; round <= o.rounds; round++) {
    for (const w of o.workloads) {
      if (w === RSS_WORKLOAD) {
        if (round !== 1 || !o.contenders.includes(RSS_CONTENDER)) continue;
        const argv = [
          ...(o.pin === null ? [] : ["taskset", "-c", String(o.pin)]),
          ...rssArgv(sourceSink, shape, paths),
        ];
        const s = await runOne(argv, RSS_CONTENDER, w, round);
        file.samples.push(s);
        console.error(
          `bench: round ${round}/${o.rounds} ${w.padEnd(4)} ${
            RSS_CONTENDER.padEnd(14)
          } ${summary(s)}`,
        );
        await save();
        continue;
      }
      if (isUsbipWorkload(w)) {
        if (!o.contenders.includes(USBIP_CONTENDER)) continue;
        const s = await runUsbip(o, w, round, shape, file);
        file.samples.push(s);
        console.error(
          `bench: round ${round}/${o.rounds} ${w.padEnd(9)} ${
            USBIP_CONTENDER.padEnd(14)
          } ${summary(s)}`,
        );
        await save();
        continue;
      }
      for (const c of roundOrder(o.contenders, round)) {
        if (!runsWorkload(c, w)) continue;
        const target = w === "rt1" || w === "rt16" ? loopback : sourceSink;
        const argv = [
          ...(o.pin === null ? [] : ["taskset", "-c", String(o.pin)]),
          ...contenderArgv(c, w, target, shape, paths),
        ];
        const s = await runOne(argv, c, w, round);
        file.samples.push(s);
        console.error(
          `bench: round ${round}/${o.rounds} ${w.padEnd(4)} ${c.padEnd(14)} ${
            summary(s)
          }`,
        );
        await save();
      }
    }
  }
  file.finished = true;
  await save();
  return file;
}

if (import.meta.main) {
  let o: DriverOptions;
  try {
    o = parseDriverArgs(Deno.args);
  } catch (e) {
    console.error(`run_in_guest: ${(e as Error).message}`);
    Deno.exit(2);
  }
  try {
    await drive(o);
  } catch (e) {
    console.error(`run_in_guest: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
