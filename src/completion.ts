/**
 * The JavaScript side of the completion path: one per process.
 *
 * The helper's reaper thread writes a fixed-size record per reaped URB into a
 * ring in shared memory. This module reads the ring through long-lived typed
 * arrays and dispatches each record once: to the device's sink (a URB of a
 * transfer) or to a helper-side stream's sink (a stream chunk, which the
 * reaper resubmits by itself). Nothing is allocated per completion.
 *
 * Waking up. While anything is in flight the loop keeps one wait going. With
 * `USBKIT_WAKE=spin` (the default) it first spins briefly in native code on
 * the ring's head (yielding the CPU each round, so a reaper pinned to the
 * same CPU runs), after letting the code that the last completions resumed
 * submit more; only when nothing arrives in that window does it park in a
 * `nonblocking` wait on the helper's eventfd. `USBKIT_WAKE=park` always
 * parks. The park is race-free: the helper marks the consumer parked with a
 * native atomic store and re-checks the head before it polls, and the reaper
 * rings the doorbell only for a parked consumer (helper/src/ring.rs).
 * `USBKIT_SPIN_US` sets the spin window (default 400 µs).
 *
 * Only a one-shot URB (a transfer someone awaits) is worth a spin. Helper
 * streams always park: the reaper keeps their queue fed, so a slower wake
 * costs them no throughput, while a spin's CPU comes out of the kernel's
 * when they share a CPU. bench/stream_ladder.ts measured it pinned to one
 * guest CPU: 526 µs per 64 KiB chunk parked against 666 spinning, with the
 * JavaScript thread's CPU at 176 against 371 µs per chunk.
 *
 * @module
 */

import {
  monotonicMs,
  ringAck,
  ringDoorbell,
  type RingMemory,
  ringOpen,
  ringShutdown,
  ringSpin,
  ringWait,
} from "./usbfs.ts";
import { deadlines } from "./deadlines.ts";

/** Receives the completions of one open device. */
export interface CompletionSink {
  /** One URB of this device was reaped. `status` is 0 or a negative errno. */
  urbCompleted(
    slot: number,
    status: number,
    actualLength: number,
    errorCount: number,
  ): void;
  /** The device is gone: usbfs reports ENODEV and every URB has been reaped. */
  deviceGone(): void;
}

/** Receives the records of one helper-side stream (src/usbfs.ts `HelperStream`). */
export interface StreamSink {
  /** Buffer `index` came back from the kernel: `status` 0 or -errno. */
  chunk(index: number, status: number, actualLength: number): void;
  /** A resubmit failed with -errno `status`: the helper halted the stream. */
  halted(status: number): void;
  /** The stream was stopped and nothing is left in the kernel. */
  ended(): void;
}

/**
 * Counters of the completion loop, for benchmarks: how often it woke, how
 * many records each wake drained, and how long records waited between the
 * reaper and JavaScript.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { latencyPercentile, type CompletionStats } from "./completion.ts";
 * const s: CompletionStats = {
 *   wake: "spin", spinUs: 400, wakeups: 1, spins: 3, spinHits: 2, drains: 3, records: 3,
 *   latencyUs: new Uint32Array(32),
 * };
 * s.latencyUs[5] = 3; // three records waited 16-31 µs
 * assert.equal(latencyPercentile(s.latencyUs, 0.5), 32);
 * ```
 */
export interface CompletionStats {
  /** The wakeup strategy in use (`USBKIT_WAKE`). */
  readonly wake: "spin" | "park";
  /** The spin window, in microseconds (0 with `park`). */
  readonly spinUs: number;
  /** Parked waits that returned. */
  wakeups: number;
  /** Spins started (each before a park would have been). */
  spins: number;
  /** Spins that saw records arrive, so no park was needed. */
  spinHits: number;
  /** Drains that found records. */
  drains: number;
  /** Records drained (URB and stream completions). */
  records: number;
  /**
   * Records by reap → drain latency, from the record's reap time, sampled:
   * the records of one drain in 8 are counted. Bucket 0
   * is under 1 µs, bucket b ≥ 1 is [2^(b-1), 2^b) µs. Use
   * {@linkcode latencyPercentile}.
   */
  readonly latencyUs: Uint32Array;
}

/**
 * The upper bound, in µs, of the histogram bucket holding quantile `q`
 * (0..1) of {@linkcode CompletionStats.latencyUs}; NaN when it is empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { latencyPercentile } from "./completion.ts";
 * const h = new Uint32Array(32);
 * h[1] = 1; // 1 µs
 * h[9] = 9; // 256-511 µs
 * assert.equal(latencyPercentile(h, 0.5), 512);
 * assert.ok(Number.isNaN(latencyPercentile(new Uint32Array(32), 0.5)));
 * ```
 */
export function latencyPercentile(hist: Uint32Array, q: number): number {
  let total = 0;
  for (const n of hist) total += n;
  if (total === 0) return NaN;
  const want = Math.max(1, Math.ceil(total * q));
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b]!;
    if (seen >= want) return b === 0 ? 1 : 2 ** b;
  }
  return NaN;
}

/** Record kinds, from helper/src/ring.rs. */
const KIND_URB = 0,
  KIND_GONE = 1,
  KIND_STREAM = 2,
  KIND_STREAM_END = 3,
  KIND_STREAM_HALT = 4;
/** Word offsets in a record, from helper/src/ring.rs. */
const REC_KIND = 0,
  REC_DEVICE = 1,
  REC_SLOT = 2,
  REC_STATUS = 3,
  REC_ACTUAL = 4,
  REC_ERRORS = 5;

/** One drain in this many records its records' reap → drain latency. */
const LATENCY_SAMPLE = 8;
/** Consecutive spin rounds before the loop parks anyway, so timers and I/O get a turn. */
const MAX_SPINS_IN_ROW = 64;

function envOf(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the defaults
  }
}

class CompletionLoop {
  readonly #ring: RingMemory;
  #tail = 0;
  #inflight = 0;
  #parked = false;
  readonly #spinUs: number;
  readonly stats: CompletionStats;
  readonly #sinks = new Map<number, CompletionSink>();
  readonly #streams = new Map<number, StreamSink>();

  constructor() {
    this.#ring = ringOpen();
    const wake = envOf("USBKIT_WAKE") === "park" ? "park" : "spin";
    const us = Number(envOf("USBKIT_SPIN_US") ?? 400);
    this.#spinUs = wake === "park" || !(us >= 0 && us <= 100_000) ? 0 : us;
    this.stats = {
      wake,
      spinUs: this.#spinUs,
      wakeups: 0,
      spins: 0,
      spinHits: 0,
      drains: 0,
      records: 0,
      latencyUs: new Uint32Array(32),
    };
  }

  register(deviceId: number, sink: CompletionSink): void {
    this.#sinks.set(deviceId, sink);
  }

  unregister(deviceId: number): void {
    this.drain();
    if (!this.#busy) deadlines.idle();
    this.#sinks.delete(deviceId);
    this.#nudge();
    this.#maybeShutdown();
  }

  /** A helper-side stream starts: its records go to `sink`, and the loop waits while it lives. */
  streamStarted(id: number, sink: StreamSink): void {
    this.#streams.set(id, sink);
    if (!this.#parked) void this.#park();
  }

  /** The stream was freed. */
  streamEnded(id: number): void {
    if (!this.#streams.delete(id)) return;
    this.#nudge();
  }

  /** A URB was handed to the kernel. */
  submitted(): void {
    this.#inflight++;
    if (!this.#parked) void this.#park();
  }

  /**
   * A URB submit failed after `submitted()` was counted. If that leaves
   * nothing in flight, the parked wait is woken so that it ends: it would
   * otherwise wait for a completion that never comes, and keep the process
   * from exiting.
   */
  submitFailed(): void {
    this.#inflight--;
    this.#nudge();
  }

  /** Wakes a parked wait that has nothing left to wait for. */
  #nudge(): void {
    if (this.#parked && !this.#busy) ringDoorbell(this.#ring.handle);
  }

  get #busy(): boolean {
    return this.#inflight > 0 || this.#streams.size > 0;
  }

  /** True when a transfer someone awaits is in flight: worth a spin. */
  get #expecting(): boolean {
    return this.#inflight > 0;
  }

  /**
   * Reads every published record (up to `published`, a head the caller
   * just read, else the head it asks for) and dispatches it. Each record is consumed
   * (and counted) exactly once even if a sink throws: the error is reported
   * with `reportError` after the batch, and the loop goes on.
   */
  drain(published?: number): void {
    const { words, times, mask, stride, handle } = this.#ring;
    let tail = this.#tail;
    let head = published ?? ringAck(handle, tail);
    if (tail === head) return;
    // Latency is sampled: the records of one drain in LATENCY_SAMPLE, so
    // the clock read (an FFI call) is not paid on every drain.
    const sampled = this.stats.drains++ % LATENCY_SAMPLE === 0;
    const hist = this.stats.latencyUs;
    let errors: unknown[] | undefined;
    while (tail !== head) {
      const now = sampled ? monotonicMs() : 0;
      // Gone records first: a URB killed by an unplug (EPROTO, ESHUTDOWN)
      // is published in the same batch as its device's gone record, and must
      // be reported as a disconnection, not as an I/O error.
      for (let t = tail; t !== head; t = (t + 1) >>> 0) {
        const base = (t & mask) * stride;
        if (words[base + REC_KIND] === KIND_GONE) {
          try {
            this.#sinks.get(words[base + REC_DEVICE]!)?.deviceGone();
          } catch (e) {
            (errors ??= []).push(e);
          }
        }
      }
      for (; tail !== head; tail = (tail + 1) >>> 0) {
        const base = (tail & mask) * stride;
        const kind = words[base + REC_KIND]!;
        if (kind === KIND_GONE) continue;
        this.stats.records++;
        if (sampled) {
          const us = (now - times[(base >>> 1) + 3]!) * 1000;
          hist[us < 1 ? 0 : Math.min(31, 32 - Math.clz32(us))]!++;
        }
        try {
          if (kind === KIND_URB) {
            this.#inflight--;
            this.#sinks.get(words[base + REC_DEVICE]!)?.urbCompleted(
              words[base + REC_SLOT]!,
              words[base + REC_STATUS]!,
              words[base + REC_ACTUAL]!,
              words[base + REC_ERRORS]!,
            );
          } else {
            const sink = this.#streams.get(words[base + REC_SLOT]!);
            if (sink === undefined) continue;
            if (kind === KIND_STREAM) {
              sink.chunk(
                words[base + REC_ERRORS]!,
                words[base + REC_STATUS]!,
                words[base + REC_ACTUAL]!,
              );
            } else if (kind === KIND_STREAM_END) sink.ended();
            else if (kind === KIND_STREAM_HALT) {
              sink.halted(words[base + REC_STATUS]!);
            }
          }
        } catch (e) {
          (errors ??= []).push(e);
        }
      }
      this.#tail = tail;
      head = ringAck(handle, tail);
    }
    this.#tail = tail;
    // A throwing sink is a bug: make it visible without breaking the ring.
    if (errors) { for (const e of errors) reportError(e); }
  }

  async #park(): Promise<void> {
    this.#parked = true;
    const handle = this.#ring.handle;
    try {
      let inRow = 0;
      while (this.#busy) {
        if (this.#spinUs > 0 && inRow < MAX_SPINS_IN_ROW) {
          // Let the code the last drain resumed (or the caller that just
          // submitted) run first: it may submit more before we spin.
          await null;
          if (!this.#busy) break;
          if (this.#expecting) {
            this.stats.spins++;
            const head = ringSpin(handle, this.#tail, this.#spinUs);
            if (head !== this.#tail) {
              this.stats.spinHits++;
              inRow++;
              this.drain(head);
              continue;
            }
          }
        }
        inRow = 0;
        await ringWait(handle, -1);
        this.stats.wakeups++;
        this.drain();
      }
    } finally {
      this.#parked = false;
    }
    deadlines.idle();
    this.#maybeShutdown();
  }

  #maybeShutdown(): void {
    if (this.#sinks.size > 0 || this.#parked || this.#busy) return;
    // Views of the ring are detached before the helper frees it.
    ringShutdown(this.#ring);
    if (current === this) current = undefined;
  }
}

let current: CompletionLoop | undefined;

/**
 * The process's completion loop, created (with the helper's reaper thread) on
 * first use and shut down when the last device closes.
 *
 * @example
 * ```ts ignore
 * // Needs open devices to count anything, and would start the helper's reaper thread,
 * // which stops only when the last device closes; tests/device/wake_probe.ts (run by
 * // tests/device/stream_test.ts in the guest) reads these stats.
 * import { completions } from "./completion.ts";
 * const { wakeups, records } = completions().stats;
 * console.log(`${records / wakeups} completions per wakeup`);
 * ```
 */
export function completions(): {
  register(deviceId: number, sink: CompletionSink): void;
  unregister(deviceId: number): void;
  streamStarted(id: number, sink: StreamSink): void;
  streamEnded(id: number): void;
  submitted(): void;
  submitFailed(): void;
  drain(): void;
  readonly stats: CompletionStats;
} {
  current ??= new CompletionLoop();
  return current;
}
