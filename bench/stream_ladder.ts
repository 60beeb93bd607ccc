/**
 * Where a zero-copy bulk IN stream's time goes, hop by hop (issue 10's
 * "where the remaining time goes" for the stream and CPU-per-GiB targets).
 * In one boot, pinned to one guest CPU like the benchmark, each round runs,
 * one process each, the benchmark's workload (SourceSink bulk IN, 64 KiB ×
 * 16 in flight):
 *
 * - the C contenders: `usbfs_bench` (raw usbfs, mapped buffers: one thread
 *   that reaps with a blocking REAPURB and resubmits) and `libusb_bench`
 *   (`dev_mem`), from `.cache/bench/bin` (built by `deno task bench`);
 * - S1: the helper-side stream with the least JavaScript: the reaper
 *   resubmits, JavaScript parks on the ring, reads each record and hands
 *   the buffer straight back (no view);
 * - S2: + a fresh view of each chunk, read, then detached at hand-back
 *   (the zero-copy ownership rule);
 * - S3: usbkit's `stream()` with `for await`, as the benchmark runs it
 *   (the default wake: a stream never spins, src/completion.ts).
 *
 * For the usbkit steps it reports each thread's CPU per chunk (from
 * /proc/self/task): the JavaScript thread, the helper's reaper, V8's
 * workers (garbage collection), Deno's blocking pool (a parked wait). The
 * kernel's own work (dummy_hcd moving the data, SourceSink filling its
 * pattern) is charged to whichever thread it interrupts, so the raw-C
 * process's CPU is the bar: what a stream costs beyond it is usbkit's.
 *
 * ```sh
 * deno task vm --full -- taskset -c 1 deno run -A --no-check bench/stream_ladder.ts --rounds 5
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { gadget } from "../kernel/guest.ts";
import { open } from "../mod.ts";
import { UrbType } from "../src/engine.ts";
import { streamSpares } from "../src/stream.ts";
import {
  HelperStream,
  ringAck,
  ringOpen,
  ringWait,
  StreamCtl,
} from "../src/usbfs.ts";
import { child, PIN, pinnedDeno, RECORD, spread } from "./ladder.ts";

/** The benchmark's stream shape. */
const XFER = 65536, IN_FLIGHT = 16;

/**
 * CPU time per thread name of this process, in seconds, from
 * /proc/self/task (threads of one name are added up).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { threadCpu } from "./stream_ladder.ts";
 * const t = threadCpu();
 * assert.ok([...t.values()].every((s) => s >= 0));
 * assert.ok(t.size >= 1);
 * ```
 */
export function threadCpu(): Map<string, number> {
  const hz = 100; // USER_HZ: /proc's clock ticks
  const m = new Map<string, number>();
  for (const e of Deno.readDirSync("/proc/self/task")) {
    try {
      const stat = Deno.readTextFileSync(`/proc/self/task/${e.name}/stat`);
      // Fields after the command name: utime and stime are 14 and 15 in all.
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const name = Deno.readTextFileSync(`/proc/self/task/${e.name}/comm`)
        .trim();
      m.set(name, (m.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / hz);
    } catch {
      // The thread ended while it was read.
    }
  }
  return m;
}

/** One step's figures: µs of wall time per chunk, and CPU µs per chunk by thread. */
interface StepResult {
  usPerChunk: number;
  cpu: Record<string, number>;
}

type Device = Awaited<ReturnType<typeof open>>;
type Interface = Awaited<ReturnType<Device["claimInterface"]>>;

/** The ring, read by this process itself (S1, S2), and how far. */
let ring: ReturnType<typeof ringOpen> | undefined;
let tail = 0;

/** S1/S2: the helper stream driven by the least JavaScript. */
async function bare(
  dev: Device,
  views: boolean,
  bytes: number,
): Promise<number> {
  const n = IN_FLIGHT + streamSpares(IN_FLIGHT, XFER);
  const hs = HelperStream.open(dev.engine.usbfs, {
    type: UrbType.bulk,
    endpoint: 0x81,
    flags: 0,
    size: XFER,
    inFlight: IN_FLIGHT,
    buffers: n,
    isoLengths: [],
    zeroCopy: true,
  }, "stream ladder");
  // No transfer goes through the engine: this process reads the ring
  // itself, from the start, as bench/ladder.ts does.
  ring ??= ringOpen();
  const { handle, words, mask, stride } = ring;
  const ctl = hs.ctl;
  let retHead = ctl[StreamCtl.retHead]!, chunks = 0, stopped = false;
  if (hs.refill() < 0) throw new Error("stream ladder: first submit failed");
  const total = bytes / XFER;
  for (;;) {
    let head = ringAck(handle, tail);
    if (head === tail) {
      await ringWait(handle, -1);
      head = ringAck(handle, tail);
    }
    for (; tail !== head; tail = (tail + 1) >>> 0) {
      const base = (tail & mask) * stride;
      const kind = words[base + RECORD.kind];
      // A record of an earlier stream (published after it was freed).
      if (words[base + RECORD.slot] !== hs.id) continue;
      if (kind === RECORD.kindStreamEnd) {
        tail = (tail + 1) >>> 0;
        ringAck(handle, tail);
        hs.free();
        return chunks;
      }
      if (kind !== RECORD.kindStream || stopped) continue;
      const i = words[base + RECORD.errors]!;
      const actual = words[base + RECORD.actual]!;
      if (words[base + RECORD.status] !== 0 || actual !== XFER) {
        throw new Error(
          `stream ladder: status ${
            words[base + RECORD.status]
          }, ${actual} bytes`,
        );
      }
      if (views) {
        const v = hs.view(i, actual);
        if (v[1] !== 1) throw new Error("stream ladder: not the pattern");
        v.buffer.transfer(0);
      }
      if (++chunks === total) {
        stopped = true;
        if (hs.stop() === 0) {
          hs.free();
          return chunks;
        }
        continue;
      }
      // The return queue written by hand, as StreamCore.giveBack does: S3
      // adds StreamCore back, so its cost is the S2 → S3 hop.
      ctl[StreamCtl.header + (retHead >>> 0) % n] = i;
      retHead = (retHead + 1) | 0;
      Atomics.store(ctl, StreamCtl.retHead, retHead);
      // As src/stream.ts does: only an empty queue needs JavaScript.
      if (Atomics.load(ctl, StreamCtl.queued) === 0) hs.refill();
    }
  }
}

/** S3: the public API, as the benchmark runs it. */
async function publicApi(iface: Interface, bytes: number): Promise<number> {
  const stream = iface.endpoint(0x81).stream({
    transferSize: XFER,
    inFlight: IN_FLIGHT,
  });
  let chunks = 0;
  for await (const chunk of stream) {
    if (chunk.length !== XFER || chunk[1] !== 1) {
      throw new Error("stream ladder: not the pattern");
    }
    if (++chunks * XFER >= bytes) break;
  }
  return chunks;
}

/** One step in this process: warm up, then measure. */
async function inner(step: string, bytes: number): Promise<StepResult> {
  const dev = await open(gadget("sourcesink0").location!.devnode);
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  const run = step === "bare" || step === "views"
    ? (b: number) => bare(dev, step === "views", b)
    : (b: number) => publicApi(iface, b);
  await run(32 * XFER * IN_FLIGHT);
  const c0 = threadCpu();
  const t0 = performance.now();
  const chunks = await run(bytes);
  const us = (performance.now() - t0) * 1000;
  const c1 = threadCpu();
  const cpu: Record<string, number> = {};
  for (const [k, v] of c1) {
    const d = (v - (c0.get(k) ?? 0)) * 1e6 / chunks;
    if (d > 0) cpu[k] = d;
  }
  await dev.close();
  return { usPerChunk: us / chunks, cpu };
}

/** The steps: name, and how the child runs. */
const STEPS: readonly (readonly [string, string, Record<string, string>])[] = [
  ["S1 helper stream, JS hands back", "bare", {}],
  ["S2 + a view per chunk", "views", {}],
  ["S3 stream() for await", "public", {}],
];

/** Thread names, shortened for the table. */
function group(thread: string): string {
  if (thread === "deno" || thread === "main") return "js";
  if (thread.startsWith("usbkit-reaper")) return "reaper";
  if (thread.startsWith("V8")) return "v8";
  if (thread.startsWith("tokio")) return "pool";
  return "other";
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      mib: { type: "string", default: "256" },
      inner: { type: "string" },
    },
  });
  const bytes = Number(values.mib) * 1048576;
  if (values.inner !== undefined) {
    console.log(JSON.stringify(await inner(values.inner, bytes)));
    Deno.exit(0);
  }
  const ss = gadget("sourcesink0").location!.devnode;
  const bin = new URL("../.cache/bench/bin/", import.meta.url).pathname;
  const here = new URL(import.meta.url).pathname;
  const c = [
    "--workload",
    "in",
    "--dev",
    ss,
    "--inflight",
    String(IN_FLIGHT),
    "--xfer",
    String(XFER),
    "--bytes",
    String(bytes),
  ];
  const wall = new Map<string, number[]>();
  const cpu = new Map<string, Map<string, number[]>>();
  const push = (k: string, v: number, by: Record<string, number>) => {
    wall.set(k, [...wall.get(k) ?? [], v]);
    const m = cpu.get(k) ?? new Map<string, number[]>();
    for (const [t, us] of Object.entries(by)) {
      m.set(t, [...m.get(t) ?? [], us]);
    }
    cpu.set(k, m);
  };
  const cLine = (line: Record<string, unknown>) => {
    if (line.ok === false) throw new Error(`contender failed: ${line.error}`);
    const n = line.transfers as number;
    return {
      us: (line.seconds as number) * 1e6 / n,
      cpu: { process: (line.cpu_s as number) * 1e6 / n },
    };
  };
  for (let r = 1; r <= Number(values.rounds); r++) {
    for (
      const [name, prog, mem] of [
        ["raw-C mmap", "usbfs_bench", "mmap"],
        ["libusb dev_mem", "libusb_bench", "devmem"],
      ] as const
    ) {
      const l = cLine(await child([...PIN, bin + prog, ...c, "--mem", mem]));
      push(name, l.us, l.cpu);
    }
    for (const [name, step, env] of STEPS) {
      const res = await child(
        pinnedDeno(here, "--inner", step, "--mib", String(values.mib)),
        env,
      ) as unknown as StepResult;
      const by: Record<string, number> = {};
      let all = 0;
      for (const [t, us] of Object.entries(res.cpu)) {
        by[group(t)] = (by[group(t)] ?? 0) + us;
        all += us;
      }
      by.process = all;
      push(name, res.usPerChunk, by);
    }
    console.error(`stream ladder: round ${r} done`);
  }
  const raw = spread(wall.get("raw-C mmap")!).median;
  console.log(
    `SourceSink bulk IN, 64 KiB × 16 in flight, µs per chunk, median [min–max] of ${values.rounds} rounds`,
  );
  const cols = ["process", "js", "reaper", "v8", "pool"];
  console.log(
    `${"step".padEnd(34)} ${"wall".padStart(16)}  rate  ${
      cols.map((c) => c.padStart(8)).join(" ")
    }  (CPU µs per chunk)`,
  );
  for (const [k, v] of wall) {
    const s = spread(v);
    const m = cpu.get(k)!;
    console.log(
      `${k.padEnd(34)} ${s.median.toFixed(0).padStart(5)} [${
        s.min.toFixed(0)
      }–${s.max.toFixed(0)}]`.padEnd(52) +
        ` ${(raw / s.median).toFixed(2)}× ${
          cols.map((c) =>
            (m.has(c) ? spread(m.get(c)!).median.toFixed(0) : "").padStart(8)
          ).join(" ")
        }`,
    );
  }
}
