/**
 * `deno task bench`: every contender side by side in one boot of the virtual
 * bench, results as ratios to a raw C usbfs loop.
 *
 * On the host: builds bench/c with gcc into .cache/bench/bin, installs
 * node-usb into bench/node, type-checks the guest-side code, builds the
 * helper. Then one guest boot with a SuperSpeed SourceSink and a Loopback
 * gadget, and vhci_hcd loaded, runs bench/run_in_guest.ts, which runs each
 * contender on each workload, round after round, and the USB/IP track: the
 * usbkit stream client against a TypeScript device (bench/usbip_device.ts)
 * attached to vhci_hcd by a separate process. Back on the host: a table on
 * stdout (every figure median [min-max] over the rounds, ratios to raw-C
 * mmap taken round by round), which contenders' ranges overlap usbkit's,
 * the USB/IP track beside the same client on dummy_hcd, the targets with
 * their numbers, met or not, where usbkit's time goes, and how long the
 * guest run took; bench/results/latest.json and latest.svg; and the
 * README's benchmark block (between `<!-- bench:start -->` and
 * `<!-- bench:end -->`, and the USB/IP paragraph after it when the track
 * ran) regenerated from those results (bench/readme.ts).
 *
 * A full run (default sizes, every contender and workload) writes
 * bench/results/ and the README; a partial one (`--quick`, `--only`,
 * `--workloads`) writes .cache/bench/partial.json and .svg and leaves the
 * README alone unless `--readme` is given, so a smoke test never replaces
 * the published figures.
 *
 * Flags: `--rounds N` (default 5), `--quick` (small sizes), `--only a,b`
 * (contenders; the USB/IP track runs with `usbkit-stream`), `--workloads
 * in,usbip-in,usbip-iso,out,rt1,rt16,ctrl,rss` (e.g. `--only usbkit-stream
 * --workloads in,usbip-in,usbip-iso` for the USB/IP track alone), `--out DIR`
 * (default bench/results, or .cache/bench for a partial run), `--no-readme`
 * (leave README.md alone), `--readme` (rewrite it even from a partial run),
 * `--pin N|none` (guest CPU every contender runs
 * on, default 1: see {@link DriverOptions.pin}), `--server-pin N|none`
 * (guest CPU of the USB/IP device process, default the other one: see
 * {@link DriverOptions.serverPin}), `--report-only` (re-render from the last
 * samples file).
 * Exit status: 0 measured (targets are reported, not enforced), 1 the run
 * failed, 2 usage.
 *
 * @example
 * ```ts ignore
 * // Boots a QEMU guest and benchmarks for minutes on every core; no test runs it.
 * // From a shell: deno task bench -- --quick --rounds 1
 * import { main } from "./bench.ts";
 * Deno.exit(await main(["--quick", "--rounds", "1"]));
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { runInGuest } from "../kernel/run.ts";
import type { Bench } from "../kernel/bench.ts";
import { ensureHostPackages } from "../kernel/setup.ts";
import {
  cacheDir,
  exists,
  progress,
  projectRoot,
  run,
  which,
} from "../kernel/util.ts";
import {
  benchShape,
  CONTENDERS,
  PARK_WORKLOADS,
  renderOverlaps,
  renderSvg,
  renderTable,
  renderTargets,
  renderTimeGoes,
  renderUsbipTrack,
  resultsFile,
  RSS_CONTENDER,
  RSS_WORKLOAD,
  toJson,
  USBIP_CONTENDER,
} from "../bench/report.ts";
import {
  renderReadmeBlock,
  renderUsbipParagraph,
  replaceReadmeBlock,
} from "../bench/readme.ts";
import {
  DRIVER_WORKLOADS,
  isUsbipWorkload,
  parseDriverArgs,
  type SamplesFile,
} from "../bench/run_in_guest.ts";

/**
 * The bench the benchmark boots: a SuperSpeed SourceSink with pattern 1 (the
 * configfs default is 0, all zeros: f_sourcesink.c source_sink_alloc_inst
 * leaves `pattern` zeroed) and 64 KiB gadget requests, so the gadget side
 * costs little per byte; a Loopback with its defaults (4096-byte requests,
 * qlen 32: GZERO_BULK_BUFLEN, GZERO_QLEN in g_zero.h); and vhci-hcd, for the
 * USB/IP track's TypeScript device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchmarkDevices } from "./bench.ts";
 * assert.ok(benchmarkDevices(600).gadgets.length === 2);
 * assert.deepEqual(benchmarkDevices(600).modules, ["vhci-hcd"]);
 * ```
 */
export function benchmarkDevices(timeoutSec: number): Bench {
  return {
    speed: "super",
    gadgets: [
      {
        function: "sourcesink",
        attributes: { pattern: 1, bulk_buflen: 65536 },
      },
      { function: "loopback" },
    ],
    qemuDevices: [],
    modules: ["vhci-hcd"],
    timeoutSec,
  };
}

/**
 * How long the guest may run: boot, then per round and contender the
 * bulk runs (256 MiB at a pessimistic 20 MB/s, twice), the round trips and
 * the control loop, plus process start-up (`parkRuns` more runs per round
 * for `usbkit-park`); per round each USB/IP track run (`usbipRuns` of
 * them), which also starts and attaches the device; and once the RSS
 * workload, when it runs (its own time budget plus start-up).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { guestTimeoutSec } from "./bench.ts";
 * assert.ok(guestTimeoutSec(3, false, 7) > guestTimeoutSec(1, true, 7));
 * assert.ok(guestTimeoutSec(3, false, 7, 2) > guestTimeoutSec(3, false, 7));
 * assert.ok(guestTimeoutSec(3, false, 7, 0, 3, true) > guestTimeoutSec(3, false, 7));
 * ```
 */
export function guestTimeoutSec(
  rounds: number,
  quick: boolean,
  contenders: number,
  usbipRuns = 0,
  parkRuns = 0,
  rss = false,
): number {
  const perRun = quick ? 25 : 60;
  const shape = benchShape(quick);
  return 120 +
    rounds *
      (contenders * 5 * perRun + parkRuns * perRun +
        usbipRuns * (perRun + 60)) +
    (rss ? shape.rssMaxSeconds + perRun : 0);
}

const BIN = () => cacheDir("bench", "bin");

async function buildC(): Promise<void> {
  const root = projectRoot();
  await Deno.mkdir(BIN(), { recursive: true });
  const cc = [
    ["usbfs_bench", []],
    ["libusb_bench", ["-lusb-1.0"]],
  ] as const;
  for (const [name, libs] of cc) {
    progress(`gcc -O2 bench/c/${name}.c`);
    await run([
      "gcc",
      "-O2",
      "-Wall",
      "-Wextra",
      "-o",
      join(BIN(), name),
      join(root, "bench", "c", `${name}.c`),
      ...libs,
    ]);
  }
}

async function installNodeUsb(): Promise<void> {
  const dir = join(projectRoot(), "bench", "node");
  if (await exists(join(dir, "node_modules", "usb", "package.json"))) return;
  if ((await which("npm")) === null) {
    throw new Error(
      "npm is not installed: node-usb cannot be installed (apt-get install npm)",
    );
  }
  progress("npm install (node-usb) in bench/node");
  const lock = await exists(join(dir, "package-lock.json"));
  await run(["npm", lock ? "ci" : "install", "--no-audit", "--no-fund"], {
    cwd: dir,
  });
}

async function prepare(): Promise<void> {
  const missing: string[] = [];
  if ((await which("gcc")) === null) missing.push("gcc");
  if ((await which("node")) === null) missing.push("nodejs");
  if ((await which("npm")) === null) missing.push("npm");
  // libusb-1.0-0-dev and qemu come with the bench's own host packages.
  await ensureHostPackages(missing);
  await buildC();
  await installNodeUsb();
  const root = projectRoot();
  const deno = Deno.execPath();
  progress("deno check (guest-side code: type-checking under TCG is slow)");
  await run([
    deno,
    "check",
    "bench/usbkit_bench.ts",
    "bench/run_in_guest.ts",
    "bench/usbip_device.ts",
  ], {
    cwd: root,
    inheritStderr: true,
  });
  progress("building the helper");
  await run([deno, "run", "-A", "scripts/build_helper.ts"], {
    cwd: root,
    inheritStderr: true,
  });
}

interface Cli {
  rounds: number;
  /** `true` --readme, `false` --no-readme, undefined: only for a full run. */
  readme: boolean | undefined;
  quick: boolean;
  only: string | undefined;
  workloads: string | undefined;
  /** `--out`, when given. */
  outDir: string | undefined;
  reportOnly: boolean;
  pin: string;
  serverPin: string | undefined;
}

/**
 * Parses the command line of `deno task bench`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBenchCli } from "./bench.ts";
 * const c = parseBenchCli(["--", "--rounds", "7", "--quick", "--no-readme"]);
 * assert.ok(c.rounds === 7 && c.quick && !c.reportOnly && c.readme === false);
 * assert.equal(parseBenchCli([]).rounds, 5);
 * ```
 */
export function parseBenchCli(args: readonly string[]): Cli {
  const c: Cli = {
    rounds: 5,
    readme: undefined,
    quick: false,
    only: undefined,
    workloads: undefined,
    outDir: undefined,
    reportOnly: false,
    pin: "1",
    serverPin: undefined,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = () => {
      const x = args[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    switch (a) {
      case "--":
        break;
      case "--rounds":
        c.rounds = Number(v());
        if (!Number.isInteger(c.rounds) || c.rounds < 1) {
          throw new Error("--rounds wants a positive integer");
        }
        break;
      case "--quick":
        c.quick = true;
        break;
      case "--only":
        c.only = v();
        break;
      case "--workloads":
        c.workloads = v();
        break;
      case "--out":
        c.outDir = v();
        break;
      case "--report-only":
        c.reportOnly = true;
        break;
      case "--readme":
        c.readme = true;
        break;
      case "--no-readme":
        c.readme = false;
        break;
      case "--pin":
        c.pin = v();
        break;
      case "--server-pin":
        c.serverPin = v();
        break;
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  return c;
}

/**
 * Whether the samples are of a full run: default sizes, and every contender
 * and every workload measured at least once (so the README may quote it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isFullRun } from "./bench.ts";
 * assert.equal(isFullRun({ quick: false, samples: [] }), false);
 * ```
 */
export function isFullRun(
  samples: Pick<SamplesFile, "quick" | "samples">,
): boolean {
  if (samples.quick) return false;
  const has = (c: string, w: string) =>
    samples.samples.some((s) => s.contender === c && s.workload === w);
  return CONTENDERS.every((c) =>
    samples.samples.some((s) => s.contender === c)
  ) &&
    DRIVER_WORKLOADS.every((w) =>
      samples.samples.some((s) => s.workload === w)
    ) &&
    PARK_WORKLOADS.every((w) => has("usbkit-park", w)) &&
    has(RSS_CONTENDER, RSS_WORKLOAD);
}

/**
 * The machine the run was on, for the report: cores, memory and CPU model
 * of the host that runs the guest.
 */
async function machineKind(): Promise<string> {
  const cores = navigator.hardwareConcurrency;
  const gib = Math.round(Deno.systemMemoryInfo().total / 2 ** 30);
  let model = "";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(
      await Deno.readTextFile("/proc/cpuinfo"),
    );
    if (m) model = `, ${m[1]!.trim()}`;
  } catch {
    // no /proc/cpuinfo
  }
  return `${cores} cores, ${gib} GiB${model}`;
}

/** Formats a block of Markdown as `deno fmt` would (stdin to stdout). */
async function fmtMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "md", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  return out.success ? new TextDecoder().decode(out.stdout) : text;
}

/**
 * Renders the table, JSON and SVG from a samples file, and the README's
 * benchmark block when `readme` says so (see the module doc).
 */
async function report(samples: SamplesFile, cli: Cli): Promise<void> {
  const full = isFullRun(samples);
  const readme = cli.readme ?? full;
  // The README quotes bench/results/latest.*: a run that rewrites it writes
  // them; a partial one keeps out of the published results.
  const outDir = cli.outDir ??
    (readme ? join(projectRoot(), "bench", "results") : cacheDir("bench"));
  const name = readme || cli.outDir !== undefined ? "latest" : "partial";
  const shape = benchShape(samples.quick);
  const date = samples.date ?? new Date().toISOString();
  const machine = await machineKind();
  const results = resultsFile(samples.samples, {
    date,
    machine,
    kernel: samples.kernel,
    rounds: samples.rounds,
    quick: samples.quick,
    pinnedCpu: samples.pin ?? null,
    guestSeconds: samples.guestSeconds ?? null,
    finished: samples.finished,
    devices: samples.devices ?? {},
    shape,
  });
  await Deno.mkdir(outDir, { recursive: true });
  const jsonPath = join(outDir, `${name}.json`);
  const svgPath = join(outDir, `${name}.svg`);
  await Deno.writeTextFile(jsonPath, toJson(results));
  const pin = samples.pin ?? null;
  const sub = [
    date.slice(0, 10),
    machine,
    `guest kernel ${samples.kernel}`,
    `median [min-max] of ${samples.rounds} round(s)`,
    pin === null
      ? "contenders not pinned"
      : `every contender pinned to guest CPU ${pin}`,
    ...(samples.quick ? ["--quick sizes"] : []),
    ...(samples.finished ? [] : ["run cut short"]),
  ].join(", ");
  await Deno.writeTextFile(
    svgPath,
    renderSvg(results.cells, shape, sub, results.usbip),
  );
  // deno fmt formats JSON and SVG too: leave the results as `deno task
  // check` wants them.
  await run([Deno.execPath(), "fmt", "--quiet", jsonPath, svgPath], {
    allowFail: true,
  });
  console.log(`usbkit benchmark: ${sub}`);
  console.log(
    "Every figure is median [min-max] over the rounds; ratios are taken round by round (each round's figure over the same round's raw-C mmap).",
  );
  console.log(
    "CPU is user+sys of the whole contender process during the measured phase; RSS is the process's peak. MB = 10^6 bytes.",
  );
  if (results.guestSeconds !== null) {
    console.log(
      `The guest run took ${(results.guestSeconds / 60).toFixed(1)} min.`,
    );
  }
  const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;
  for (const [name, d] of Object.entries(samples.devices ?? {})) {
    console.log(
      `${name}: ${d.devnode}, bulk IN ${hex(d.epIn)}, bulk OUT ${hex(d.epOut)}`,
    );
  }
  const u = samples.usbipDevice;
  if (u !== undefined) {
    const sp = samples.serverPin ?? null;
    console.log(
      `usbip (TypeScript device on vhci_hcd): ${u.devnode}, bulk IN ${
        hex(u.epIn)
      }, iso IN ${
        hex(u.isoEp)
      } (interface ${u.isoInterface} alternate ${u.isoAlternate}, ${u.isoPacket} B); device process ${
        sp === null ? "not pinned" : `pinned to guest CPU ${sp}`
      }`,
    );
  }
  console.log("");
  console.log(renderTable(results.cells, shape));
  console.log("Overlapping ranges:");
  console.log(
    renderOverlaps(results.overlaps).split("\n").map((l) => `  ${l}`).join(
      "\n",
    ),
  );
  console.log("");
  const track = renderUsbipTrack(results.usbip);
  if (track !== "") console.log(track);
  console.log("Targets (ratio per round: median [min-max]):");
  console.log(renderTargets(results.targets));
  const goes = renderTimeGoes(results.cells);
  if (goes !== "") {
    console.log("\nWhere the time goes (usbkit, median [min-max]):");
    console.log(goes);
  }
  console.log(`\nwrote ${jsonPath} and ${svgPath}`);
  if (!readme) {
    console.log(
      cli.readme === false
        ? "README.md left alone (--no-readme)"
        : "README.md left alone: a partial run (--quick, --only or --workloads; --readme to write it anyway)",
    );
    return;
  }
  const readmePath = join(projectRoot(), "README.md");
  const block = await fmtMarkdown(renderReadmeBlock(results));
  const usbip = renderUsbipParagraph(results, samples.serverPin ?? null);
  const text = replaceReadmeBlock(
    await Deno.readTextFile(readmePath),
    block,
    usbip === null ? null : await fmtMarkdown(usbip),
  );
  await Deno.writeTextFile(readmePath, text);
  console.log(
    `rewrote README.md's benchmark block${
      usbip === null ? "" : " and its USB/IP track paragraph"
    } from this run`,
  );
}

/**
 * Runs the benchmark (see the module doc) and returns the exit status.
 *
 * @example
 * ```ts ignore
 * // Boots a QEMU guest and benchmarks for minutes on every core; no test runs it.
 * import { main } from "./bench.ts";
 * Deno.exit(await main(["--quick", "--rounds", "1"]));
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let cli: Cli;
  let driverArgs: string[];
  try {
    cli = parseBenchCli(args);
    driverArgs = ["--rounds", String(cli.rounds), "--pin", cli.pin];
    if (cli.quick) driverArgs.push("--quick");
    if (cli.only !== undefined) driverArgs.push("--only", cli.only);
    if (cli.workloads !== undefined) {
      driverArgs.push("--workloads", cli.workloads);
    }
    if (cli.serverPin !== undefined) {
      driverArgs.push("--server-pin", cli.serverPin);
    }
    parseDriverArgs(driverArgs); // validates names before a boot is spent on them
  } catch (e) {
    console.error(`usbkit bench: ${(e as Error).message}`);
    return 2;
  }
  const samplesPath = cacheDir("bench", "samples.json");
  if (!cli.reportOnly) {
    try {
      await prepare();
    } catch (e) {
      console.error(`usbkit bench: ${(e as Error).message}`);
      return 1;
    }
    await Deno.remove(samplesPath).catch(() => {});
    const d = parseDriverArgs(driverArgs);
    const usbipRuns = d.contenders.includes(USBIP_CONTENDER)
      ? d.workloads.filter(isUsbipWorkload).length
      : 0;
    const parkRuns = d.contenders.includes("usbkit-park")
      ? d.workloads.filter((w) =>
        (PARK_WORKLOADS as readonly string[]).includes(w)
      ).length
      : 0;
    const timeoutSec = guestTimeoutSec(
      cli.rounds,
      cli.quick,
      d.contenders.filter((c) => c !== "usbkit-park").length,
      usbipRuns,
      parkRuns,
      d.contenders.includes(RSS_CONTENDER) &&
        d.workloads.includes(RSS_WORKLOAD),
    );
    progress(
      `booting the bench (SourceSink + Loopback, SuperSpeed; vhci-hcd); at most ${
        Math.round(timeoutSec / 60)
      } min`,
    );
    const deno = Deno.execPath();
    const r = await runInGuest(
      benchmarkDevices(timeoutSec),
      [
        deno,
        "run",
        "-A",
        "--no-check",
        "--cached-only",
        "bench/run_in_guest.ts",
        ...driverArgs,
        "--out",
        samplesPath,
        "--bin",
        BIN(),
      ],
      { timeoutSec, cwd: projectRoot(), stdout: "inherit", stderr: "inherit" },
    );
    if (r.code !== 0) {
      console.error(
        `usbkit bench: the guest run ended with ${r.code}${
          r.failure ? ` (${r.failure.kind}: ${r.failure.message})` : ""
        }`,
      );
      if (!(await exists(samplesPath))) return 1;
      console.error("usbkit bench: reporting what was measured before that");
    }
  }
  let samples: SamplesFile;
  try {
    samples = JSON.parse(await Deno.readTextFile(samplesPath)) as SamplesFile;
  } catch (e) {
    console.error(
      `usbkit bench: no samples at ${samplesPath}: ${(e as Error).message}`,
    );
    return 1;
  }
  try {
    await report(samples, cli);
  } catch (e) {
    console.error(`usbkit bench: ${(e as Error).message}`);
    return 1;
  }
  return samples.finished ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
