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
  type BenchShape,
  benchShape,
  type ContenderId,
  CONTENDERS,
  parseResultLine,
  type Sample,
  toJson,
  type WorkloadId,
  WORKLOADS,
} from "./report.ts";

/** What the driver was asked to do. */
export interface DriverOptions {
  /** Rounds over all contenders and workloads. */
  rounds: number;
  /** Small sizes. */
  quick: boolean;
  /** Contenders to run (default all). */
  contenders: ContenderId[];
  /** Workloads to run (default all). */
  workloads: WorkloadId[];
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
  /** False until every round is done. */
  finished: boolean;
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
 * `--workloads in,out`, `--out FILE`, `--bin DIR`, `--pin N|none`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDriverArgs } from "./run_in_guest.ts";
 * const o = parseDriverArgs(["--rounds", "2", "--only", "raw-c-mmap,node-usb", "--quick"]);
 * assert.ok(o.rounds === 2 && o.quick && o.contenders.length === 2);
 * ```
 */
export function parseDriverArgs(args: readonly string[]): DriverOptions {
  const o: DriverOptions = {
    rounds: 3,
    quick: false,
    contenders: [...CONTENDERS],
    workloads: [...WORKLOADS],
    out: join(PROJECT, ".cache", "bench", "samples.json"),
    binDir: join(PROJECT, ".cache", "bench", "bin"),
    pin: 1,
  };
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
      case "--workloads":
        o.workloads = v().split(",").map((w) => {
          if (!(WORKLOADS as readonly string[]).includes(w)) {
            throw new Error(
              `unknown workload ${w}; known: ${WORKLOADS.join(", ")}`,
            );
          }
          return w as WorkloadId;
        });
        break;
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
      default:
        throw new Error(`unknown option ${a}`);
    }
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
      return [...usbkit, "--mode", "zero-copy", ...common];
    case "usbkit-copy":
      return [...usbkit, "--mode", "copy", ...common];
  }
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
  workload: WorkloadId,
  round: number,
): Promise<Sample> {
  const base = { round, contender, workload };
  const [cmd, ...args] = argv;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd!, {
      args,
      cwd: PROJECT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // The programs give up on their own after 120 s of measuring; this
      // catches a hang outside the measured loop (e.g. in open or teardown).
      signal: AbortSignal.timeout(300_000),
    }).output();
  } catch (e) {
    return {
      ...base,
      ok: false,
      error: `cannot run ${cmd}: ${(e as Error).message}`,
    };
  }
  const td = new TextDecoder();
  const line = parseResultLine(td.decode(out.stdout));
  if (line === null) {
    const err = td.decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    const how = out.signal ? `killed by ${out.signal}` : `exit ${out.code}`;
    return {
      ...base,
      ok: false,
      error: `no result line (${how})${err ? `: ${err}` : ""}`,
    };
  }
  const num = (
    k: string,
  ) => (typeof line[k] === "number" ? (line[k] as number) : undefined);
  const str = (
    k: string,
  ) => (typeof line[k] === "string" ? (line[k] as string) : undefined);
  const s: Sample = { ...base, ok: line.ok === true };
  if (line.na === true) s.na = true;
  for (const k of ["error", "mem", "version"] as const) {
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
    ] as const
  ) {
    const v = num(k);
    if (v !== undefined) s[k] = v;
  }
  return s;
}

function summary(s: Sample): string {
  if (!s.ok) return s.na ? `n/a: ${s.error}` : `FAILED: ${s.error}`;
  if (s.workload === "ctrl") {
    return `${s.latency_us_median?.toFixed(0)} us median`;
  }
  if (s.workload === "rt1" || s.workload === "rt16") {
    return `${((s.transfers ?? 0) / (s.seconds ?? 1)).toFixed(0)} trips/s`;
  }
  return `${((s.bytes ?? 0) / 1e6 / (s.seconds ?? 1)).toFixed(1)} MB/s`;
}

/**
 * Runs the benchmark in the guest and writes the samples file.
 *
 * @example
 * ```ts ignore
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
    devices: { sourceSink, loopback },
    finished: false,
    samples: [],
  };
  const paths = { binDir: o.binDir, deno: Deno.execPath(), project: PROJECT };
  await Deno.mkdir(dirname(o.out), { recursive: true });
  for (let round = 1; round <= o.rounds; round++) {
    for (const w of o.workloads) {
      for (const c of roundOrder(o.contenders, round)) {
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
        await Deno.writeTextFile(o.out, toJson(file));
      }
    }
  }
  file.finished = true;
  await Deno.writeTextFile(o.out, toJson(file));
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
