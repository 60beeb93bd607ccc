/**
 * The life of a URB, written once: every bulk, interrupt, control and
 * isochronous transfer, and every batch of them, goes through
 * {@linkcode UrbSet} (buffer acquire, submit with rollback, per-URB records,
 * discard, buffer hand-back) and, when a caller awaits it, through
 * {@linkcode UrbBatch} (the promise, timeout, signal, cancellation with its
 * reason, and the classification of the status). Transfer (src/transfer.ts)
 * and the iso transfer (src/isochronous.ts) only split and assemble.
 *
 * ## Statuses and error codes, on every path
 *
 * A URB ends with a status, 0 or a negative errno, and
 * {@linkcode urbOutcome} names it the same way everywhere:
 *
 * | status | outcome | one-shot call (`transferIn`, `transferOut`, control, `transferBatch`) | stream, iso, no result to carry it |
 * |---|---|---|---|
 * | 0, -EREMOTEIO (short), -EXDEV (iso: see the packets) | `ok` | resolves, `status: "ok"` | data |
 * | -EPIPE | `stall` | resolves, `status: "stall"` (WebUSB) | UsbError code `stall` |
 * | -EOVERFLOW | `babble` | resolves, `status: "babble"` | UsbError code `babble` |
 * | -ENOENT, -ECONNRESET | `cancelled` | UsbError `timeout` or `cancelled`, by reason | the same |
 * | -ENODEV, -ESHUTDOWN | `disconnected` | UsbError `disconnected` | the same |
 * | anything else | `error` | UsbError from the errno (`io` for -EPROTO and the like) | the same |
 *
 * A cancellation says why ({@linkcode cancelledBecause}): `timeout` (code
 * `timeout`), the caller's signal (code `cancelled`), or the device closed,
 * the interface released or the device reset (code `cancelled`, and the
 * message says which). Every error of a transfer that moved data carries it:
 * `bytesTransferred`, and for IN the bytes themselves in `data`.
 *
 * @module
 */

import type { UsbBuffer } from "./buffer.ts";
import type {
  Cancellable,
  CancelReason,
  UrbEngine,
  UrbOwner,
} from "./engine.ts";
import {
  Errno,
  type ErrnoContext,
  errnoName,
  errorFromErrno,
  UsbError,
  type UsbErrorOptions,
} from "./errors.ts";
import type { CheckedTransferOptions } from "./validate.ts";
import { deadlines, type DeadlineTarget } from "./deadlines.ts";

/** Settles nothing: a settled batch's resolve and reject, without a closure per call. */
const NOOP = (): void => {};

/** Result status of a transfer, as in WebUSB. */
export type TransferStatus = "ok" | "stall" | "babble";

/**
 * Options of every transfer. Checked before anything starts: a bad value
 * rejects with code `invalid-argument` (see src/validate.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferOptions } from "./urb.ts";
 * const o: TransferOptions = { timeout: 1000, signal: new AbortController().signal };
 * assert.ok(o.timeout === 1000);
 * ```
 */
export interface TransferOptions {
  /**
   * Milliseconds before the transfer is cancelled with code `"timeout"`: a
   * finite number from 0 to 2147483647 (2³¹−1, the most `setTimeout`
   * honours). 0, absent or `Infinity`: no timeout. Negative numbers, `NaN`,
   * and finite numbers above 2147483647 are `invalid-argument`.
   */
  timeout?: number;
  /**
   * Cancels the transfer with code `"cancelled"` when aborted. Must be a real
   * `AbortSignal` (an object that only looks like one is `invalid-argument`).
   */
  signal?: AbortSignal;
}

/** The result of an IN transfer. */
export interface InResult {
  /** `"ok"`, `"stall"` (the endpoint halted) or `"babble"` (the device sent too much). */
  status: TransferStatus;
  /** The bytes received (on a stall: those received before it). */
  data: Uint8Array<ArrayBuffer>;
}

/** The result of an OUT transfer. */
export interface OutResult {
  /** `"ok"` or `"stall"`. */
  status: TransferStatus;
  /** The bytes the device accepted. */
  bytesWritten: number;
}

/** What a URB status means: see the table in this module's docs. */
export type UrbOutcome =
  | "ok"
  | "stall"
  | "babble"
  | "cancelled"
  | "disconnected"
  | "error";

/**
 * Names a URB status (0 or a negative errno), the same on every path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { urbOutcome } from "./urb.ts";
 * assert.equal(urbOutcome(0), "ok");
 * assert.equal(urbOutcome(-32), "stall"); // EPIPE
 * assert.equal(urbOutcome(-75), "babble"); // EOVERFLOW
 * assert.equal(urbOutcome(-2), "cancelled"); // ENOENT: discarded
 * assert.equal(urbOutcome(-19), "disconnected"); // ENODEV
 * assert.equal(urbOutcome(-71), "error"); // EPROTO
 * ```
 */
export function urbOutcome(status: number): UrbOutcome {
  switch (-status) {
    case 0:
    case Errno.EREMOTEIO: // a short packet with SHORT_NOT_OK: the data ends here
    case Errno.EXDEV: // iso: some packets failed, each says which
      return "ok";
    case Errno.EPIPE:
      return "stall";
    case Errno.EOVERFLOW:
      return "babble";
    case Errno.ENOENT:
    case Errno.ECONNRESET:
      return "cancelled";
    case Errno.ENODEV:
    case Errno.ESHUTDOWN:
      return "disconnected";
    default:
      return "error";
  }
}

/** Statuses that mean the device went away (hcd.c / devio.c at disconnect). */
export function isDisconnectStatus(status: number): boolean {
  return status === -Errno.ENODEV || status === -Errno.ESHUTDOWN;
}

function transferErrorHint(status: number): string {
  switch (-status) {
    case Errno.EPIPE:
      return "the endpoint halted: call clearHalt() on it before using it again";
    case Errno.EOVERFLOW:
      return "the device sent more than was asked for: read in multiples of the endpoint's maxPacketSize";
    case Errno.EPROTO:
    case Errno.EILSEQ:
    case Errno.ETIME:
      return "a USB protocol error (bad CRC, bit stuffing or no response): check the cable and the device";
    case Errno.ENOSR:
    case Errno.ECOMM:
      return "the host controller could not keep up (buffer under/overrun)";
    default:
      return "see the errno; usbfs status values are listed in Documentation/driver-api/usb/error-codes.rst";
  }
}

/**
 * The UsbError for a URB status where there is no result to carry it: a
 * stall is code `stall`, a babble `babble`, a disconnection `disconnected`,
 * a kill `cancelled`, anything else from the errno (`io` for protocol
 * errors). The message is "`what` failed with EPIPE". `extra` adds partial
 * data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { urbError } from "./urb.ts";
 * const e = urbError("bulk IN on endpoint 0x81", -32);
 * assert.equal(e.code, "stall");
 * assert.equal(e.message, "bulk IN on endpoint 0x81 failed with EPIPE");
 * assert.equal(urbError("x", -71).code, "io");
 * assert.equal(urbError("x", -19).code, "disconnected");
 * ```
 */
export function urbError(
  what: string,
  status: number,
  ids?: ErrnoContext,
  extra: UsbErrorOptions = {},
): UsbError {
  const errno = -status;
  const outcome = urbOutcome(status);
  const message = `${what} failed with ${errnoName(errno)}`;
  const options = (hint: string): UsbErrorOptions => ({
    ...extra,
    errno,
    hint,
  });
  switch (outcome) {
    case "stall":
    case "babble":
      return new UsbError(outcome, message, options(transferErrorHint(status)));
    case "cancelled":
      return new UsbError("cancelled", `${what} was cancelled`, options(""));
    case "disconnected":
      return new UsbError(
        "disconnected",
        message,
        options("plug it back in and open it again"),
      );
    default: {
      const e = errorFromErrno(status, what, ids);
      return new UsbError(
        e.code,
        message,
        options(e.hint ?? transferErrorHint(status)),
      );
    }
  }
}

/**
 * The words a cancellation message ends with: "was cancelled because the
 * device was closed".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cancelledBecause } from "./urb.ts";
 * assert.equal(cancelledBecause("released"), "was cancelled because its interface was released");
 * ```
 */
export function cancelledBecause(reason: CancelReason): string {
  switch (reason) {
    case "timeout":
      return "timed out";
    case "closed":
      return "was cancelled because the device was closed";
    case "released":
      return "was cancelled because its interface was released";
    case "reset":
      return "was cancelled because the device was reset";
    default:
      return "was cancelled";
  }
}

/**
 * The error of a transfer that ended on the caller's side, by reason: code
 * `timeout` for a timeout, `cancelled` otherwise, the message saying why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cancelError } from "./urb.ts";
 * const e = cancelError("bulk IN on endpoint 0x81", "closed", { bytesTransferred: 3 });
 * assert.equal(e.code, "cancelled");
 * assert.equal(e.message, "bulk IN on endpoint 0x81 was cancelled because the device was closed after 3 bytes");
 * ```
 */
export function cancelError(
  what: string,
  reason: CancelReason,
  partial: UsbErrorOptions,
): UsbError {
  return new UsbError(
    reason === "timeout" ? "timeout" : "cancelled",
    `${what} ${cancelledBecause(reason)} after ${
      partial.bytesTransferred ?? partial.data?.length ?? 0
    } bytes`,
    partial,
  );
}

const ONCE = Object.freeze({ once: true });

/**
 * Listens for `signal`'s abort, before anything is submitted, so that a
 * signal that cannot be listened to (a hostile Proxy of one) fails the call
 * cleanly. Returns the unsubscribe function, which never throws.
 *
 * @throws {UsbError} `invalid-argument` when the signal refuses the listener
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenForAbort } from "./urb.ts";
 * const ac = new AbortController();
 * let aborted = 0;
 * const stop = listenForAbort(ac.signal, () => aborted++, "transferIn");
 * stop();
 * ac.abort();
 * assert.equal(aborted, 0);
 * ```
 */
export function listenForAbort(
  signal: AbortSignal,
  onAbort: () => void,
  what: string,
): () => void {
  addAbortListener(signal, onAbort, what);
  return () => removeAbortListener(signal, onAbort);
}

function addAbortListener(
  signal: AbortSignal,
  onAbort: () => void,
  what: string,
): void {
  try {
    signal.addEventListener("abort", onAbort, ONCE);
  } catch (e) {
    throw new UsbError(
      "invalid-argument",
      `${what}: options.signal does not take an abort listener`,
      { cause: e },
    );
  }
}

function removeAbortListener(signal: AbortSignal, onAbort: () => void): void {
  try {
    signal.removeEventListener("abort", onAbort);
  } catch {
    // Nothing more can be done about a signal that refuses this.
  }
}

/**
 * The URBs of one submission, over one or more buffers: the part of the URB
 * lifecycle every path shares, promise or not (an iso stream resubmits one
 * over and over). Per-URB records live in typed arrays that grow to the
 * largest submission seen and are then reused: nothing is allocated per
 * submission.
 *
 * - {@linkcode acquire} hands a UsbBuffer to the kernel (views detached);
 * - {@linkcode push} submits one URB. When nothing is in flight yet and it
 *   fails, every acquired UsbBuffer is given back (views live again,
 *   `release()` works) and it throws; when URBs are in flight, the ones
 *   still in the kernel are discarded, {@linkcode submitError} says why,
 *   and it returns false;
 * - as URBs are reaped their `actual_length` and status are recorded
 *   ({@linkcode reaped} is the hook for more, such as iso packet records);
 *   a short or failed URB of a transfer discards the rest of its group;
 * - when the last one is reaped the buffers come back and `onDone` runs.
 *
 * Not part of the public API.
 *
 * @example
 * ```ts ignore
 * // Needs a URB engine (an open device's): Transfer and IsoUrbs build on it, and
 * // tests/unit/urb_test.ts and tests/unit/isochronous_test.ts run them against fakes.
 * import { UrbSet } from "./urb.ts";
 * import { UrbType } from "./engine.ts";
 * declare const engine: import("./engine.ts").UrbEngine;
 * const urbs = new UrbSet(engine, 4);
 * urbs.onDone = () => console.log(urbs.urbActual[0]);
 * urbs.begin();
 * urbs.push(UrbType.bulk, 0x81, 0, new Uint8Array(64), null, 0, 64, 0, 0, true);
 * ```
 */
export class UrbSet implements UrbOwner {
  /** The device's URB engine. */
  engine: UrbEngine;
  /** Per URB: its engine slot while in flight. */
  urbSlot: Int32Array;
  /** Per URB: the data bytes asked for (setup packet excluded). */
  urbLength: Int32Array;
  /** Per URB: `actual_length`, once reaped. */
  urbActual: Int32Array;
  /** Per URB: 0 or a negative errno, once reaped. */
  urbStatus: Int32Array;
  /** Per URB: the group (request) it belongs to. */
  urbGroup: Int32Array;
  /** Per URB: 1 while the kernel has it. */
  urbBusy: Uint8Array;
  /** Per URB: 1 when a short or failed completion ends its group. */
  urbStops: Uint8Array;
  /** URBs submitted in this submission. */
  count = 0;
  /** URBs not reaped yet. */
  remaining = 0;
  /** Why a URB after the first could not be submitted (the others were discarded). */
  submitError: unknown = undefined;
  /** Runs when every URB of a submission has been reaped. */
  onDone: () => void = () => {};
  #buffers: UsbBuffer[] = [];
  #nbuffers = 0;

  /**
   * @param engine the device's URB engine
   * @param capacity URBs to size the records for (they grow when needed)
   */
  constructor(engine: UrbEngine, capacity: number) {
    this.engine = engine;
    const n = Math.max(1, capacity);
    this.urbSlot = new Int32Array(n);
    this.urbLength = new Int32Array(n);
    this.urbActual = new Int32Array(n);
    this.urbStatus = new Int32Array(n);
    this.urbGroup = new Int32Array(n);
    this.urbBusy = new Uint8Array(n);
    this.urbStops = new Uint8Array(n);
  }

  /** True from the first submit until every URB has been reaped. */
  get inFlight(): boolean {
    return this.remaining > 0;
  }

  /** Starts a new submission: forgets the last one's records. */
  begin(): void {
    this.count = 0;
    this.remaining = 0;
    this.submitError = undefined;
    this.#nbuffers = 0;
  }

  /**
   * Hands `buffer` to the kernel for this submission (its views detach).
   * Throws, with nothing acquired, when it is released, in flight or
   * another device's; buffers acquired before stay acquired (see
   * {@linkcode giveBack}).
   */
  acquire(buffer: UsbBuffer, what: string): void {
    buffer.acquire(what);
    this.#buffers[this.#nbuffers++] = buffer;
  }

  /** Gives every acquired buffer back to its owner (fresh views). */
  giveBack(): void {
    for (let i = 0; i < this.#nbuffers; i++) {
      this.#buffers[i]!.complete();
      this.#buffers[i] = undefined as unknown as UsbBuffer;
    }
    this.#nbuffers = 0;
  }

  #grow(): void {
    const n = this.urbSlot.length * 2;
    const grow = <T extends Int32Array | Uint8Array>(a: T, make: T): T => {
      make.set(a);
      return make;
    };
    this.urbSlot = grow(this.urbSlot, new Int32Array(n));
    this.urbLength = grow(this.urbLength, new Int32Array(n));
    this.urbActual = grow(this.urbActual, new Int32Array(n));
    this.urbStatus = grow(this.urbStatus, new Int32Array(n));
    this.urbGroup = grow(this.urbGroup, new Int32Array(n));
    this.urbBusy = grow(this.urbBusy, new Uint8Array(n));
    this.urbStops = grow(this.urbStops, new Uint8Array(n));
  }

  /**
   * Submits URB number {@linkcode count}: `length` bytes at `offset` of
   * `array` or of the mapped region `base` (or no data when both are null).
   * `dataLength` is what the URB's `actual_length` is compared with (a
   * control URB's length less its setup packet). Returns true when it is in
   * flight; see the class docs for a failure.
   */
  push(
    type: number,
    endpoint: number,
    flags: number,
    array: Uint8Array<ArrayBuffer> | null,
    base: Deno.PointerObject | null,
    offset: number,
    length: number,
    dataLength: number,
    group: number,
    stops: boolean,
    packets = 0,
    isoLengths?: ArrayLike<number>,
    isoStart = 0,
  ): boolean {
    const index = this.count;
    if (index === this.urbSlot.length) this.#grow();
    let slot: number;
    try {
      slot = this.engine.submitAt(
        this,
        index,
        type,
        endpoint,
        flags,
        array,
        base,
        offset,
        length,
        packets,
        isoLengths,
        isoStart,
      );
    } catch (e) {
      if (this.remaining === 0) {
        // Nothing in flight: the buffers go back to their owner at once.
        this.giveBack();
        throw e;
      }
      // Part of the submission is in flight: give it back, then report.
      this.submitError = e;
      this.discard();
      return false;
    }
    this.urbSlot[index] = slot;
    this.urbLength[index] = dataLength;
    this.urbActual[index] = 0;
    this.urbStatus[index] = 0;
    this.urbGroup[index] = group;
    this.urbBusy[index] = 1;
    this.urbStops[index] = stops ? 1 : 0;
    this.count++;
    this.remaining++;
    return true;
  }

  /** Asks the kernel to give back every URB still in flight. */
  discard(): void {
    for (let i = 0; i < this.count; i++) {
      if (this.urbBusy[i] === 1) this.engine.discard(this.urbSlot[i]!);
    }
  }

  /**
   * Hook: URB `index` was reaped in `slot` (its records are stored). Read
   * anything else of the slot here: it is reused afterwards.
   */
  reaped(
    _index: number,
    _slot: number,
    _status: number,
    _errors: number,
  ): void {}

  /** UrbOwner: one URB was reaped. */
  urbDone(
    index: number,
    status: number,
    actualLength: number,
    errorCount: number,
    slot: number,
  ): void {
    this.urbActual[index] = actualLength;
    this.urbStatus[index] = status;
    this.urbBusy[index] = 0;
    this.remaining--;
    this.reaped(index, slot, status, errorCount);
    if (
      this.urbStops[index] === 1 && this.remaining > 0 &&
      (status !== 0 || actualLength < this.urbLength[index]!)
    ) {
      // The transfer ended here; URBs after it must not eat the next
      // transfer's data. With BULK_CONTINUATION the kernel cancels them too.
      const group = this.urbGroup[index];
      for (let i = index + 1; i < this.count; i++) {
        if (this.urbGroup[i] !== group) break;
        if (this.urbBusy[i] === 1) this.engine.discard(this.urbSlot[i]!);
      }
    }
    if (this.remaining === 0) {
      this.giveBack();
      this.onDone();
    }
  }
}

/**
 * One awaited submission: a {@linkcode UrbSet} with the promise, the
 * timeout, the signal, cancellation by close(), release() and reset() with
 * the reason, and the classification of the outcome. A subclass plans the
 * URBs ({@linkcode plan}) and assembles the result ({@linkcode settle});
 * everything else is here. Objects are reused: {@linkcode recycle} runs
 * once the promise is settled, and {@linkcode run} may be called again.
 *
 * Not part of the public API.
 */
export abstract class UrbBatch<R> implements Cancellable, DeadlineTarget {
  /** The URBs. */
  readonly urbs: UrbSet;
  /** For messages: `"bulk IN on endpoint 0x81"`. */
  what = "";
  /** The interface number it runs on; -1 for control. */
  tag = -1;
  #cancel: CancelReason | undefined;
  /** Its entry in {@linkcode deadlines} while a timeout runs, else -1. */
  deadlineIndex = -1;
  #signal: AbortSignal | undefined;
  #resolve: (v: R) => void = NOOP;
  #reject: (e: unknown) => void = NOOP;
  #waiters: (() => void)[] = [];
  readonly #executor = (res: (v: R) => void, rej: (e: unknown) => void) => {
    this.#resolve = res;
    this.#reject = rej;
  };
  readonly #onAbort = () => this.cancel("cancelled");

  constructor(urbs: UrbSet) {
    this.urbs = urbs;
    urbs.onDone = () => this.#finish();
  }

  /** Settles (never rejects) when the submission is over. */
  get settled(): Promise<unknown> {
    if (!this.urbs.inFlight) return Promise.resolve();
    return new Promise<void>((res) => this.#waiters.push(res));
  }

  /** Why it was cancelled, if it was. */
  get cancelReason(): CancelReason | undefined {
    return this.#cancel;
  }

  /**
   * Acquires the buffers and submits the URBs (with {@linkcode UrbSet.acquire}
   * and {@linkcode UrbSet.push}). Throwing before anything is in flight
   * rejects the call with that error.
   */
  protected abstract plan(): void;

  /**
   * Everything was reaped and nothing went wrong on the caller's side or
   * the bus: resolve with the result, or reject (through the functions).
   */
  protected abstract settle(
    resolve: (v: R) => void,
    reject: (e: unknown) => void,
  ): void;

  /** The partial result for an error: bytes moved, and data for IN. */
  protected abstract partial(): UsbErrorOptions;

  /** Called once the promise is settled; the object may be reused. */
  protected recycle(): void {}

  /**
   * Runs the submission. The options must have been checked
   * (src/validate.ts): nothing here may fail on them after a URB is in
   * flight.
   */
  run(options: CheckedTransferOptions): Promise<R> {
    const promise = new Promise<R>(this.#executor);
    this.#cancel = undefined;
    this.urbs.begin();
    const signal = options.signal;
    if (signal !== undefined && signal.aborted) {
      // Nothing was acquired or submitted.
      this.#reject(
        new UsbError(
          "cancelled",
          `${this.what} was cancelled before it started (the signal was already aborted)`,
          this.partial(),
        ),
      );
      this.#release();
      return promise;
    }
    try {
      if (signal !== undefined) {
        addAbortListener(signal, this.#onAbort, this.what);
        this.#signal = signal;
      }
      this.plan();
    } catch (e) {
      this.#unlisten();
      this.urbs.giveBack();
      this.#reject(e);
      this.#release();
      return promise;
    }
    this.urbs.engine.track(this);
    if (options.timeout > 0 && this.urbs.submitError === undefined) {
      deadlines.add(this, options.timeout);
    }
    return promise;
  }

  /** The timeout passed (called by {@linkcode deadlines}). */
  expire(): void {
    this.cancel("timeout");
  }

  /** Gives back every URB in flight; the call then rejects with `reason`. */
  cancel(reason: CancelReason): void {
    if (this.#cancel !== undefined || !this.urbs.inFlight) return;
    this.#cancel = reason;
    this.urbs.discard();
  }

  #unlisten(): void {
    if (this.#signal !== undefined) {
      removeAbortListener(this.#signal, this.#onAbort);
      this.#signal = undefined;
    }
  }

  #release(): void {
    this.#resolve = this.#reject = NOOP;
    for (const w of this.#waiters) w();
    this.#waiters.length = 0;
    this.recycle();
  }

  #finish(): void {
    this.urbs.engine.untrack(this);
    if (this.deadlineIndex >= 0) deadlines.remove(this);
    this.#unlisten();
    const resolve = this.#resolve, reject = this.#reject;
    const u = this.urbs;
    try {
      if (u.submitError !== undefined) {
        reject(u.submitError);
        return;
      }
      let disconnected = u.engine.gone;
      for (let i = 0; i < u.count && !disconnected; i++) {
        disconnected = isDisconnectStatus(u.urbStatus[i]!);
      }
      if (disconnected) {
        const e = u.engine.disconnectedError(this.what);
        reject(
          new UsbError("disconnected", e.message, {
            ...this.partial(),
            errno: Errno.ENODEV,
            hint: e.hint ?? "",
          }),
        );
        return;
      }
      if (this.#cancel !== undefined) {
        reject(cancelError(this.what, this.#cancel, this.partial()));
        return;
      }
      this.settle(resolve, reject);
    } catch (e) {
      reject(e);
    } finally {
      this.#release();
    }
  }
}
