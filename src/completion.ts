/**
 * The JavaScript side of the completion path: one per process.
 *
 * The helper's reaper thread writes a fixed-size record per reaped URB into a
 * ring in shared memory. This module reads the ring through long-lived typed
 * arrays and keeps at most one parked `usbkit_wait` call, and only while URBs
 * are in flight, so an idle process can exit. A wakeup drains every record
 * published so far; nothing is allocated per completion.
 *
 * @module
 */

import { type Helper, helper } from "./ffi.ts";

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

/** Record kinds, from helper/src/ring.rs. */
const KIND_GONE = 1;
/** Word offsets in a record, from helper/src/ring.rs. */
const REC_KIND = 0,
  REC_DEVICE = 1,
  REC_SLOT = 2,
  REC_STATUS = 3,
  REC_ACTUAL = 4,
  REC_ERRORS = 5;

class CompletionLoop {
  readonly #h: Helper;
  #handle: Deno.PointerObject;
  #words: Int32Array<ArrayBuffer>;
  #mask: number;
  #stride: number;
  #tail = 0;
  #inflight = 0;
  #parked = false;
  /** Parked waits that returned, and records drained: their ratio is the batching. */
  readonly stats = { wakeups: 0, records: 0 };
  readonly #sinks = new Map<number, CompletionSink>();

  constructor(h: Helper) {
    this.#h = h;
    const r = h.sym.usbkit_init();
    if (r < 0) throw new Error(`usbkit_init failed: errno ${-r}`);
    const handle = h.sym.usbkit_ring_handle();
    const records = h.sym.usbkit_ring_records();
    if (handle === null || records === null) {
      throw new Error("usbkit ring missing after init");
    }
    this.#handle = handle;
    const bytes = h.sym.usbkit_ring_bytes();
    this.#words = new Int32Array(
      Deno.UnsafePointerView.getArrayBuffer(records, bytes),
    );
    this.#mask = h.layout.ringCapacity - 1;
    this.#stride = h.layout.recordWords;
  }

  register(deviceId: number, sink: CompletionSink): void {
    this.#sinks.set(deviceId, sink);
  }

  unregister(deviceId: number): void {
    this.drain();
    this.#sinks.delete(deviceId);
    // A parked wait with nothing left in flight would hold the process open.
    if (this.#parked && this.#inflight === 0) {
      this.#h.sym.usbkit_ring_doorbell(this.#handle);
    }
    this.#maybeShutdown();
  }

  /** A URB was handed to the kernel. */
  submitted(): void {
    this.#inflight++;
    if (!this.#parked) this.#park();
  }

  /**
   * A URB submit failed after `submitted()` was counted. If that leaves
   * nothing in flight, the parked wait is woken so that it ends: it would
   * otherwise wait for a completion that never comes, and keep the process
   * from exiting.
   */
  submitFailed(): void {
    this.#inflight--;
    if (this.#parked && this.#inflight === 0) {
      this.#h.sym.usbkit_ring_doorbell(this.#handle);
    }
  }

  /**
   * Reads every published record and dispatches it. Each record is consumed
   * (and counted) exactly once even if a sink throws: the error is reported
   * with `reportError` after the batch, and the loop goes on.
   */
  drain(): void {
    const sym = this.#h.sym;
    const words = this.#words;
    let tail = this.#tail;
    let head = sym.usbkit_ring_ack(this.#handle, tail);
    const errors: unknown[] = [];
    while (tail !== head) {
      // Gone records first: a URB killed by an unplug (EPROTO, ESHUTDOWN)
      // is published in the same batch as its device's gone record, and must
      // be reported as a disconnection, not as an I/O error.
      for (let t = tail; t !== head; t = (t + 1) >>> 0) {
        const base = (t & this.#mask) * this.#stride;
        if (words[base + REC_KIND] === KIND_GONE) {
          try {
            this.#sinks.get(words[base + REC_DEVICE]!)?.deviceGone();
          } catch (e) {
            errors.push(e);
          }
        }
      }
      for (; tail !== head; tail = (tail + 1) >>> 0) {
        const base = (tail & this.#mask) * this.#stride;
        if (words[base + REC_KIND] === KIND_GONE) continue;
        this.#inflight--;
        this.stats.records++;
        try {
          this.#sinks.get(words[base + REC_DEVICE]!)?.urbCompleted(
            words[base + REC_SLOT]!,
            words[base + REC_STATUS]!,
            words[base + REC_ACTUAL]!,
            words[base + REC_ERRORS]!,
          );
        } catch (e) {
          errors.push(e);
        }
      }
      this.#tail = tail;
      head = sym.usbkit_ring_ack(this.#handle, tail);
    }
    this.#tail = tail;
    // A throwing sink is a bug: make it visible without breaking the ring.
    for (const e of errors) reportError(e);
  }

  async #park(): Promise<void> {
    this.#parked = true;
    try {
      while (this.#inflight > 0) {
        await this.#h.sym.usbkit_wait(this.#handle, -1);
        this.stats.wakeups++;
        this.drain();
      }
    } finally {
      this.#parked = false;
    }
    this.#maybeShutdown();
  }

  #maybeShutdown(): void {
    if (this.#sinks.size > 0 || this.#parked || this.#inflight > 0) return;
    // Views of the ring must be detached before the helper frees it.
    this.#words.buffer.transfer(0);
    this.#h.sym.usbkit_shutdown();
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
 * import { completions } from "./completion.ts";
 * completions().drain();
 * ```
 */
export function completions(): {
  register(deviceId: number, sink: CompletionSink): void;
  unregister(deviceId: number): void;
  submitted(): void;
  submitFailed(): void;
  drain(): void;
  readonly stats: { wakeups: number; records: number };
} {
  current ??= new CompletionLoop(helper());
  return current;
}
