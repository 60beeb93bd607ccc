/**
 * Where a 64-byte round trip's time goes, hop by hop (issue 10's "where the
 * remaining time goes"). In one boot, pinned to one guest CPU like the
 * benchmark, each round runs, one process each:
 *
 * - the C contenders: `usbfs_bench` (raw usbfs, mapped buffers) and
 *   `libusb_bench` (libusb, `dev_mem` buffers), from `.cache/bench/bin`
 *   (built by `deno task bench`);
 * - usbkit's own contender, `bench/usbkit_bench.ts rt`, the public API;
 * - the ladder (this file with `--inner`): usbkit's path rebuilt from the
 *   helper calls up, one hop at a time, in one process:
 *   - L0: the helper calls alone (submit OUT and IN, the native spin on
 *     the completion ring, the ack), no promise;
 *   - L1: + one promise per transfer, resolved from the drain;
 *   - L2: + the zero-copy ownership rule (the IN buffer's views detached at
 *     submit, a fresh view at completion);
 *   - L3: + a timeout per transfer in the deadline heap;
 *   - L4: + a clock read per drain, and the second ack;
 * - the upper steps (this file with `--inner-api`), through the engine's
 *   completion loop, in interleaved segments in one process:
 *   - L5: the engine's slots and its completion loop (spin, park, drain),
 *     a promise per URB, the IN buffer's ownership rule and a deadline per
 *     URB, as L4 has them;
 *   - L6: + usbkit's transfer objects (Transfer, UrbSet, UrbBatch: the
 *     pooled transfer, URB records, result);
 *   - L7: + the Endpoint's argument checks: the public API.
 *
 * The gap from L0 to libusb is JavaScript calling the helper; from L4 to
 * L5 the completion loop; from L5 to L7 usbkit's own code per transfer.
 *
 * ```sh
 * deno task vm --full -- taskset -c 1 deno run -A --no-check bench/ladder.ts --rounds 5
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { gadget } from "../kernel/guest.ts";
import { open } from "../mod.ts";
import { deadlines, type DeadlineTarget } from "../src/deadlines.ts";
import { type UrbOwner, UrbType } from "../src/engine.ts";
import { Transfer } from "../src/transfer.ts";
import { monotonicMs, ringAck, ringOpen, ringSpin } from "../src/usbfs.ts";

/**
 * A completion record's layout in the helper's ring (helper/src/ring.rs;
 * src/completion.ts reads the same words): word offsets, and record kinds.
 * The ladders read the ring themselves, so they need it too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RECORD } from "./ladder.ts";
 * assert.equal(RECORD.slot, 2);
 * assert.equal(RECORD.kindStreamEnd, 3);
 * ```
 */
export const RECORD = {
  /** Word: the record's kind. */
  kind: 0,
  /** Word: the URB's slot, or a stream record's stream id. */
  slot: 2,
  /** Word: 0 or a negative errno. */
  status: 3,
  /** Word: `actual_length`. */
  actual: 4,
  /** Word: the error count, or a stream record's buffer index. */
  errors: 5,
  /** Kind: a stream buffer came back. */
  kindStream: 2,
  /** Kind: a stopped stream has nothing left in the kernel. */
  kindStreamEnd: 3,
} as const;

/** The hops the ladder adds, in order. */
interface Hops {
  /** A promise per transfer, resolved from the drain. */
  promises: boolean;
  /** The IN buffer's views detached at submit and made fresh at completion. */
  buffers: boolean;
  /** A deadline heap entry per transfer. */
  timers: boolean;
  /** A clock read per drain and a second ack. */
  clock: boolean;
}

/** The ladder's steps: a name and the hops it includes. */
const STEPS: readonly (readonly [string, Hops])[] = [
  ["L0 helper calls only", {
    promises: false,
    buffers: false,
    timers: false,
    clock: false,
  }],
  ["L1 + a promise per transfer", {
    promises: true,
    buffers: false,
    timers: false,
    clock: false,
  }],
  ["L2 + buffer ownership (views)", {
    promises: true,
    buffers: true,
    timers: false,
    clock: false,
  }],
  ["L3 + a timeout per transfer", {
    promises: true,
    buffers: true,
    timers: true,
    clock: false,
  }],
  ["L4 + clock read, second ack", {
    promises: true,
    buffers: true,
    timers: true,
    clock: true,
  }],
];

/**
 * The median of `v` and its range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spread } from "./ladder.ts";
 * assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3 });
 * assert.deepEqual(spread([4, 1, 2, 3]), { median: 2.5, min: 1, max: 4 });
 * ```
 */
export function spread(
  v: readonly number[],
): { median: number; min: number; max: number } {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return {
    median: s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2,
    min: s[0]!,
    max: s[s.length - 1]!,
  };
}

class Entry implements DeadlineTarget {
  deadlineIndex = -1;
  expire(): void {
    throw new Error("a ladder transfer timed out");
  }
}

/** One round of the ladder in this process: µs per round trip, per step. */
async function inner(count: number): Promise<number[]> {
  const dev = await open(gadget("loopback0").location!.devnode);
  const iface = await dev.claimInterface(0);
  void iface;
  const bo = dev.allocBuffer(64), bi = dev.allocBuffer(64);
  bo.bytes.fill(1);
  const usbfs = dev.engine.usbfs;
  // The engine's completion loop never runs here (no transfer goes through
  // the engine): this process reads the ring itself, from its start.
  const ring = ringOpen();
  let tail = 0;
  const baseOut = bo.base!, baseIn = bi.base!;
  const eOut = new Entry(), eIn = new Entry();
  const step = async (h: Hops, n: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const a = h.promises ? Promise.withResolvers<number>() : undefined;
      const b = h.promises ? Promise.withResolvers<number>() : undefined;
      if (h.buffers) bi.acquire("ladder");
      // Slots 0 and 1: free, since the engine submits nothing.
      if (usbfs.submitMapped(0, 3, 0x02, 0, baseOut, 0, 64, 0) < 0) {
        throw new Error("ladder: OUT submit failed");
      }
      if (h.timers) deadlines.add(eOut, 5000);
      if (usbfs.submitMapped(1, 3, 0x81, 0, baseIn, 0, 64, 0) < 0) {
        throw new Error("ladder: IN submit failed");
      }
      if (h.timers) deadlines.add(eIn, 5000);
      let got = 0;
      const pump = async () => {
        while (got < 2) {
          if (h.promises) await null;
          const head = ringSpin(ring.handle, tail, 100_000);
          if (h.clock) monotonicMs();
          for (let t = tail; t !== head; t = (t + 1) >>> 0) {
            const base = (t & ring.mask) * ring.stride;
            const out = ring.words[base + RECORD.slot] === 0;
            const actual = ring.words[base + RECORD.actual]!;
            if (h.timers) deadlines.remove(out ? eOut : eIn);
            if (h.buffers && !out) bi.complete();
            if (h.promises) (out ? a! : b!).resolve(actual);
            got++;
          }
          tail = head;
          ringAck(ring.handle, tail);
          if (h.clock) ringAck(ring.handle, tail);
        }
      };
      if (h.promises) {
        void pump();
        const [x, y] = await Promise.all([a!.promise, b!.promise]);
        if (x !== 64 || y !== 64) throw new Error(`ladder: lengths ${x} ${y}`);
      } else await pump();
      if (h.buffers && bi.bytes[1] !== 1) {
        throw new Error("ladder: the IN data is not what was sent");
      }
    }
    return (performance.now() - t0) * 1000 / n;
  };
  // Warm-up like the benchmark's (2000 round trips), on the full ladder.
  await step(STEPS[STEPS.length - 1]![1], 2000);
  const out: number[] = [];
  for (const [, h] of STEPS) out.push(await step(h, count));
  deadlines.idle();
  return out;
}

/** The upper steps: the engine's own parts, one more each, in one process. */
const API_STEPS = [
  "L5 engine: slots + completion loop",
  "L6 + Transfer, UrbSet, UrbBatch",
  "L7 + Endpoint checks: the public API",
] as const;

/** An engine slot owner that resolves a promise (L5). */
class Resolver implements UrbOwner {
  resolve: (actual: number) => void = () => {};
  urbDone(_i: number, _s: number, actual: number): void {
    this.resolve(actual);
  }
}

/**
 * One round of the upper steps in this process: µs per round trip, per
 * step. Unlike L0–L4, these go through the completion loop (the spin, the
 * park, the drain), so the loop reads the ring, not this file. The steps
 * run in interleaved segments of 100 round trips; each step's figure is
 * the median of its segments.
 */
async function innerApi(count: number): Promise<number[]> {
  const dev = await open(gadget("loopback0").location!.devnode);
  const iface = await dev.claimInterface(0);
  const epOut = iface.endpoint(0x02), epIn = iface.endpoint(0x81);
  const bo = dev.allocBuffer(64), bi = dev.allocBuffer(64);
  bo.bytes.fill(1);
  const engine = dev.engine;
  const ro = new Resolver(), ri = new Resolver();
  const eOut = new Entry(), eIn = new Entry();
  const options = { timeout: 5000 };
  const checked = { timeout: 5000, signal: undefined };
  const check = (w: number, data: Uint8Array) => {
    if (w !== 64 || data.length !== 64 || data[1] !== 1) {
      throw new Error("ladder: the IN data is not what was sent");
    }
  };
  const steps: (() => Promise<void>)[] = [
    async () => {
      const a = new Promise<number>((r) => (ro.resolve = r));
      const b = new Promise<number>((r) => (ri.resolve = r));
      bi.acquire("ladder");
      deadlines.add(eOut, 5000);
      engine.submitAt(ro, 0, UrbType.bulk, 0x02, 0, null, bo.base!, 0, 64, 0);
      deadlines.add(eIn, 5000);
      engine.submitAt(ri, 0, UrbType.bulk, 0x81, 0, null, bi.base!, 0, 64, 0);
      const [x] = await Promise.all([a, b]);
      deadlines.remove(eOut);
      deadlines.remove(eIn);
      bi.complete();
      check(x, bi.bytes);
    },
    async () => {
      const a = Transfer.get(engine, 0);
      a.add("out", UrbType.bulk, 0x02, bo, 0, 64, true, false, "out");
      const b = Transfer.get(engine, 0);
      b.add("in", UrbType.bulk, 0x81, bi, 0, 64, true, false, "in");
      const [w, r] = await Promise.all([a.start(checked), b.start(checked)]);
      check(
        (w as { bytesWritten: number }).bytesWritten,
        (r as { data: Uint8Array }).data,
      );
    },
    async () => {
      const [w, r] = await Promise.all([
        epOut.transferOut(bo, options),
        epIn.transferIn(bi, options),
      ]);
      check(w.bytesWritten, r.data);
    },
  ];
  for (const f of steps) for (let i = 0; i < 700; i++) await f();
  const seg = 100;
  const per: number[][] = steps.map(() => []);
  for (let s = 0; s < Math.max(1, Math.round(count / seg)); s++) {
    for (let k = 0; k < steps.length; k++) {
      const t0 = performance.now();
      for (let i = 0; i < seg; i++) await steps[k]!();
      per[k]!.push((performance.now() - t0) * 1000 / seg);
    }
  }
  bo.release();
  bi.release();
  await dev.close();
  return per.map((v) => spread(v).median);
}

/**
 * The command line that runs `script` with `args` under Deno, pinned to
 * guest CPU 1 like every contender of the benchmark.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pinnedDeno } from "./ladder.ts";
 * const argv = pinnedDeno("/p/x.ts", "--inner");
 * assert.deepEqual(argv.slice(0, 3), ["taskset", "-c", "1"]);
 * assert.deepEqual(argv.slice(-2), ["/p/x.ts", "--inner"]);
 * ```
 */
export function pinnedDeno(script: string, ...args: string[]): string[] {
  return [
    ...PIN,
    Deno.execPath(),
    "run",
    "-A",
    "--no-check",
    script,
    ...args,
  ];
}

/** Every contender runs on guest CPU 1, as in the benchmark. */
export const PIN: readonly string[] = ["taskset", "-c", "1"];

/**
 * Runs `argv` (with `env` added) and returns the JSON object its last line
 * of output holds: a contender's result line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { child } from "./ladder.ts";
 * const line = await child([Deno.execPath(), "eval", "console.log(JSON.stringify({ ok: Deno.env.get('X') }))"], { X: "1" });
 * assert.deepEqual(line, { ok: "1" });
 * ```
 */
export async function child(
  argv: string[],
  env: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const p = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(p.stdout).trim().split("\n").pop()!;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(
      `${argv.join(" ")}: no result line (${
        new TextDecoder().decode(p.stderr).trim().slice(-300)
      })`,
    );
  }
}

function usPerTrip(line: Record<string, unknown>): number {
  if (line.ok === false) throw new Error(`contender failed: ${line.error}`);
  return (line.seconds as number) * 1e6 / (line.transfers as number);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      count: { type: "string", default: "2000" },
      inner: { type: "boolean", default: false },
      "inner-api": { type: "boolean", default: false },
    },
  });
  const count = Number(values.count);
  if (values.inner) {
    console.log(JSON.stringify(await inner(count)));
    Deno.exit(0);
  }
  if (values["inner-api"]) {
    console.log(JSON.stringify(await innerApi(count)));
    Deno.exit(0);
  }
  const lb = gadget("loopback0").location!.devnode;
  const bin = new URL("../.cache/bench/bin/", import.meta.url).pathname;
  const here = new URL(import.meta.url).pathname;
  const c = ["--dev", lb, "--inflight", "1", "--count", String(count)];
  const rows = new Map<string, number[]>();
  const push = (k: string, v: number) => rows.set(k, [...rows.get(k) ?? [], v]);
  for (let r = 1; r <= Number(values.rounds); r++) {
    push(
      "raw-C mmap",
      usPerTrip(
        await child([
          ...PIN,
          `${bin}usbfs_bench`,
          "--workload",
          "rt",
          "--mem",
          "mmap",
          ...c,
        ]),
      ),
    );
    push(
      "libusb dev_mem",
      usPerTrip(
        await child([
          ...PIN,
          `${bin}libusb_bench`,
          "--workload",
          "rt",
          "--mem",
          "devmem",
          ...c,
        ]),
      ),
    );
    const steps = await child(
      pinnedDeno(here, "--inner", "--count", String(count)),
    ) as unknown as number[];
    STEPS.forEach(([name], i) => push(name, steps[i]!));
    const upper = await child(
      pinnedDeno(here, "--inner-api", "--count", String(count)),
    ) as unknown as number[];
    API_STEPS.forEach((name, i) => push(name, upper[i]!));
    push(
      "usbkit transferOut/transferIn",
      usPerTrip(
        await child(
          pinnedDeno(
            new URL("./usbkit_bench.ts", import.meta.url).pathname,
            "rt",
            "--mode",
            "zero-copy",
            "--ep-out",
            "0x02",
            "--ep-in",
            "0x81",
            ...c,
          ),
        ),
      ),
    );
    console.error(`ladder: round ${r} done`);
  }
  const libusb = spread(rows.get("libusb dev_mem")!).median;
  console.log(
    `64 B round trips on Loopback, 1 in flight, µs per round trip, median [min–max] of ${values.rounds} rounds`,
  );
  for (const [k, v] of rows) {
    const s = spread(v);
    console.log(
      `${k.padEnd(32)} ${s.median.toFixed(0).padStart(6)} [${
        s.min.toFixed(0)
      }–${s.max.toFixed(0)}]  ${(libusb / s.median).toFixed(2)}× libusb's rate`,
    );
  }
}
