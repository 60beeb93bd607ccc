/**
 * Bulk, interrupt and control transfers, one at a time or as a batch:
 * splitting each request into URBs of at most `maxUrbBytes`, and
 * assembling the result. The URB lifecycle itself (buffer, submit with
 * rollback, timeout, signal, cancel, statuses) is src/urb.ts.
 *
 * Transfer objects are pooled per device: a transfer's state (per-URB
 * typed arrays, per-request arrays, the control scratch buffer) is reused,
 * so a steady stream of `transferIn`/`transferOut`/control calls allocates
 * one promise per call, the result object and the data a copying
 * `transferIn` returns.
 *
 * @module
 */

import type { UsbBuffer } from "./buffer.ts";
import { type UrbEngine, UrbType } from "./engine.ts";
import { Errno, type UsbErrorOptions } from "./errors.ts";
import {
  type InResult,
  type OutResult,
  type TransferStatus,
  UrbBatch,
  urbError,
  urbOutcome,
  UrbSet,
} from "./urb.ts";
import type { CheckedTransferOptions } from "./validate.ts";

/** Requests a pooled Transfer is sized for before it grows. */
const INITIAL_REQUESTS = 4;
/** URBs a pooled Transfer is sized for before it grows. */
const INITIAL_URBS = 8;
/** Idle transfer objects kept per device. */
const POOL_LIMIT = 64;

/** The idle transfers of `engine` (kept in its `pool` field: no map lookup per call). */
function poolOf(engine: UrbEngine): Transfer[] {
  return (engine.pool ??= []) as Transfer[];
}

/** What a request of a batch returned: an InResult or an OutResult. */
export type BatchResult = InResult | OutResult;

/** An IN request of `Device.transferBatch`: read up to `length` bytes. */
export interface BatchInRequest {
  /** The IN endpoint's address (0x81 is IN 1), of a claimed interface. */
  endpoint: number;
  /** Bytes to read: an integer from 0 to 2147483647. */
  length: number;
}

/** An OUT request of `Device.transferBatch`: write `data`. */
export interface BatchOutRequest {
  /** The OUT endpoint's address (0x01 is OUT 1), of a claimed interface. */
  endpoint: number;
  /** The bytes to send: a Uint8Array (or another view), or a UsbBuffer. */
  data: Uint8Array | UsbBuffer;
}

/**
 * A request of `Device.transferBatch`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BatchRequest } from "./transfer.ts";
 * const pair: BatchRequest[] = [{ endpoint: 0x01, data: new Uint8Array(64) }, { endpoint: 0x81, length: 64 }];
 * assert.equal(pair.length, 2);
 * ```
 */
export type BatchRequest = BatchInRequest | BatchOutRequest;

/**
 * One bulk, interrupt or control transfer, or a batch of them submitted at
 * once, each split into as many URBs as it needs, completing as one.
 * Get one with {@linkcode Transfer.get}, {@linkcode add} requests, then
 * {@linkcode start}; it goes back to its device's pool when settled.
 *
 * @example
 * ```ts ignore
 * // Needs a URB engine (an open device's): tests/unit/urb_test.ts runs Transfer against
 * // a fake one, and every transfer in tests/device/io_test.ts goes through it.
 * import { Transfer } from "./transfer.ts";
 * import { UrbType } from "./engine.ts";
 * declare const engine: import("./engine.ts").UrbEngine;
 * const t = Transfer.get(engine, 0);
 * t.add("in", UrbType.bulk, 0x81, new Uint8Array(512), 0, 512, true, false, "bulk IN on endpoint 0x81");
 * const r = await t.start({ timeout: 0, signal: undefined });
 * ```
 */
export class Transfer extends UrbBatch<unknown> {
  #n = 0;
  #batch = false;
  #in = new Uint8Array(INITIAL_REQUESTS);
  #type = new Uint8Array(INITIAL_REQUESTS);
  #endpoint = new Uint8Array(INITIAL_REQUESTS);
  #continuation = new Uint8Array(INITIAL_REQUESTS);
  #zeroPacket = new Uint8Array(INITIAL_REQUESTS);
  #copyOut = new Uint8Array(INITIAL_REQUESTS);
  #dataOffset = new Int32Array(INITIAL_REQUESTS);
  #length = new Int32Array(INITIAL_REQUESTS);
  #firstUrb = new Int32Array(INITIAL_REQUESTS);
  #iface = new Int32Array(INITIAL_REQUESTS);
  #mem: (Uint8Array<ArrayBuffer> | UsbBuffer | null)[] = [];
  #what: string[] = [];
  #scratch = new Uint8Array(8 + 64);
  /** Set by `#moved`: the request's first failing status. */
  #status = 0;
  /** Set by `#moved`: every URB of the request was submitted. */
  #complete = false;

  private constructor(engine: UrbEngine) {
    super(new UrbSet(engine, INITIAL_URBS));
  }

  /**
   * A transfer of `engine`'s device from its pool (or a new one), with no
   * requests yet. `tag` is the interface number (-1 for control).
   */
  static get(engine: UrbEngine, tag: number): Transfer {
    const t = poolOf(engine).pop() ?? new Transfer(engine);
    t.tag = tag;
    t.#n = 0;
    t.#batch = false;
    return t;
  }

  /** Transfers idle in `engine`'s pool (for tests). */
  static pooled(engine: UrbEngine): number {
    return poolOf(engine).length;
  }

  /**
   * A scratch buffer of at least `bytes` bytes owned by this transfer, for
   * a control request's setup packet and data stage (reused, never
   * returned to the caller).
   */
  scratch(bytes: number): Uint8Array<ArrayBuffer> {
    if (this.#scratch.length < bytes) {
      this.#scratch = new Uint8Array(Math.max(bytes, this.#scratch.length * 2));
    }
    return this.#scratch;
  }

  #growRequests(): void {
    const n = this.#in.length * 2;
    const g8 = (a: Uint8Array) => {
      const b = new Uint8Array(n);
      b.set(a);
      return b;
    };
    const g32 = (a: Int32Array) => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.#in = g8(this.#in);
    this.#type = g8(this.#type);
    this.#endpoint = g8(this.#endpoint);
    this.#continuation = g8(this.#continuation);
    this.#zeroPacket = g8(this.#zeroPacket);
    this.#copyOut = g8(this.#copyOut);
    this.#dataOffset = g32(this.#dataOffset);
    this.#length = g32(this.#length);
    this.#firstUrb = g32(this.#firstUrb);
    this.#iface = g32(this.#iface);
  }

  /**
   * Adds a request. `mem` holds `length` bytes from its start, of which the
   * first `dataOffset` are not data (8: a control setup packet; the data
   * then starts at 8). `continuation` marks URBs after the first with
   * BULK_CONTINUATION and IN URBs before the last with SHORT_NOT_OK, so the
   * kernel cancels the rest of a request after a short or failed URB.
   * `copyOut`: the IN data is copied out of `mem` (the control scratch).
   */
  add(
    dir: "in" | "out",
    type: number,
    endpoint: number,
    mem: Uint8Array<ArrayBuffer> | UsbBuffer,
    dataOffset: number,
    length: number,
    continuation: boolean,
    zeroPacket: boolean,
    what: string,
    copyOut = false,
    interfaceNumber = this.tag,
  ): void {
    const i = this.#n;
    if (i === this.#in.length) this.#growRequests();
    this.#in[i] = dir === "in" ? 1 : 0;
    this.#type[i] = type;
    this.#endpoint[i] = endpoint;
    this.#continuation[i] = continuation ? 1 : 0;
    this.#zeroPacket[i] = zeroPacket ? 1 : 0;
    this.#copyOut[i] = copyOut ? 1 : 0;
    this.#dataOffset[i] = dataOffset;
    this.#length[i] = length;
    this.#firstUrb[i] = -1;
    this.#iface[i] = interfaceNumber;
    this.#mem[i] = mem;
    this.#what[i] = what;
    this.#n = i + 1;
    if (i === 0) this.what = what;
  }

  /** Cancellable: true when a request runs on interface `n`. */
  runsOn(n: number): boolean {
    for (let i = 0; i < this.#n; i++) if (this.#iface[i] === n) return true;
    return false;
  }

  /** Puts back an unstarted transfer (its requests were refused). */
  discardRequests(): void {
    this.recycle();
  }

  /** URBs request `i` needs. */
  #urbsOf(i: number, maxUrb: number): number {
    const total = this.#length[i]! - this.#dataOffset[i]!;
    return this.#type[i] === UrbType.control || total === 0
      ? 1
      : Math.ceil(total / maxUrb);
  }

  /** URBs the requests added so far need. */
  urbCount(): number {
    const maxUrb = this.urbs.engine.maxUrbBytes;
    let n = 0;
    for (let i = 0; i < this.#n; i++) n += this.#urbsOf(i, maxUrb);
    return n;
  }

  /**
   * Submits every request; resolves with the result (InResult or
   * OutResult), or with the results in order when `batch`.
   */
  start(options: CheckedTransferOptions, batch = false): Promise<unknown> {
    this.#batch = batch;
    if (batch) this.what = "transferBatch";
    return this.run(options);
  }

  /** UrbBatch: acquire the buffers, submit the URBs in request order. */
  protected plan(): void {
    const urbs = this.urbs;
    const maxUrb = urbs.engine.maxUrbBytes;
    const l = urbs.engine.layout;
    for (let r = 0; r < this.#n; r++) {
      const mem = this.#mem[r]!;
      if (!(mem instanceof Uint8Array)) urbs.acquire(mem, this.#what[r]!);
    }
    for (let r = 0; r < this.#n; r++) {
      const mem = this.#mem[r]!;
      const isIn = this.#in[r] === 1;
      const type = this.#type[r]!;
      const isControl = type === UrbType.control;
      const dataOffset = this.#dataOffset[r]!;
      const total = this.#length[r]! - dataOffset;
      const count = this.#urbsOf(r, maxUrb);
      const continuation = this.#continuation[r] === 1;
      const array = mem instanceof Uint8Array ? mem : mem.kernelArray;
      const base = mem instanceof Uint8Array ? null : mem.base;
      this.#firstUrb[r] = urbs.count;
      for (let i = 0; i < count; i++) {
        const off = isControl ? 0 : i * maxUrb;
        const len = isControl
          ? this.#length[r]!
          : Math.min(maxUrb, total - off);
        let flags = 0;
        if (i > 0 && continuation) flags |= l.flagBulkContinuation;
        if (continuation && isIn && i < count - 1) flags |= l.flagShortNotOk;
        if (this.#zeroPacket[r] === 1 && i === count - 1) {
          flags |= l.flagZeroPacket;
        }
        const ok = urbs.push(
          type,
          this.#endpoint[r]!,
          flags,
          array,
          base,
          off + (isControl ? 0 : dataOffset),
          len,
          isControl ? len - 8 : len,
          r,
          true,
        );
        if (!ok) return;
      }
    }
  }

  /**
   * Request `r`'s outcome: returns the bytes moved (contiguous from the
   * start, up to the first short or failed URB); the first failing status
   * goes to `#status` and whether every URB was submitted to `#complete`
   * (fields, not a tuple: this runs once per transfer).
   */
  #moved(r: number): number {
    const u = this.urbs;
    const first = this.#firstUrb[r]!;
    this.#status = 0;
    if (first < 0) {
      this.#complete = false;
      return 0;
    }
    let moved = 0;
    for (let i = first; i < u.count && u.urbGroup[i] === r; i++) {
      moved += u.urbActual[i]!;
      const s = u.urbStatus[i]!;
      if (s !== 0 && s !== -Errno.EREMOTEIO) {
        this.#status = s;
        break;
      }
      if (u.urbActual[i]! < u.urbLength[i]!) break;
    }
    this.#complete = first + this.#urbsOf(r, u.engine.maxUrbBytes) <= u.count;
    return moved;
  }

  #data(r: number, moved: number): Uint8Array<ArrayBuffer> {
    const mem = this.#mem[r]!;
    if (mem instanceof Uint8Array) {
      const off = this.#dataOffset[r]!;
      if (this.#copyOut[r] === 1) return mem.slice(off, off + moved);
      return moved === mem.length && off === 0
        ? mem
        : mem.subarray(off, off + moved);
    }
    const bytes = mem.bytes;
    return moved === bytes.length ? bytes : bytes.subarray(0, moved);
  }

  #result(r: number, status: TransferStatus, moved: number): BatchResult {
    return this.#in[r] === 1
      ? { status, data: this.#data(r, moved) }
      : { status, bytesWritten: moved };
  }

  #partialOf(r: number, moved: number): UsbErrorOptions {
    return this.#in[r] === 1
      ? { data: this.#data(r, moved), bytesTransferred: moved }
      : { bytesTransferred: moved };
  }

  /** The first request that did not end with a result (ok, stall, babble), or `#n`. */
  #firstUnfinished(): number {
    for (let r = 0; r < this.#n; r++) {
      this.#moved(r);
      const o = urbOutcome(this.#status);
      if (!this.#complete || (o !== "ok" && o !== "stall" && o !== "babble")) {
        return r;
      }
    }
    return this.#n;
  }

  #resultsBefore(end: number): BatchResult[] {
    const out: BatchResult[] = [];
    for (let r = 0; r < end; r++) {
      const moved = this.#moved(r);
      const o = urbOutcome(this.#status);
      out.push(
        this.#result(r, o === "stall" || o === "babble" ? o : "ok", moved),
      );
    }
    return out;
  }

  /** UrbBatch: what an error carries. */
  protected partial(): UsbErrorOptions {
    if (!this.#batch) return this.#partialOf(0, this.#moved(0));
    const r = this.#firstUnfinished();
    const results = this.#resultsBefore(r);
    if (r === this.#n) return { results, requestIndex: -1 };
    const moved = this.#moved(r);
    return { ...this.#partialOf(r, moved), results, requestIndex: r };
  }

  /** UrbBatch: everything reaped, no cancel, no disconnection. */
  protected settle(
    resolve: (v: unknown) => void,
    reject: (e: unknown) => void,
  ): void {
    if (!this.#batch) {
      const moved = this.#moved(0);
      const status = this.#status;
      const o = urbOutcome(status);
      if (o === "ok" || o === "cancelled") {
        resolve(this.#result(0, "ok", moved));
      } else if (o === "stall" || o === "babble") {
        resolve(this.#result(0, o, moved));
      } else {
        reject(
          urbError(
            this.what,
            status,
            this.urbs.engine.ids,
            this.#partialOf(0, moved),
          ),
        );
      }
      return;
    }
    const results: BatchResult[] = [];
    for (let r = 0; r < this.#n; r++) {
      const moved = this.#moved(r);
      const status = this.#status;
      const o = urbOutcome(status);
      if (o === "ok" || o === "cancelled") {
        results.push(this.#result(r, "ok", moved));
      } else if (o === "stall" || o === "babble") {
        results.push(this.#result(r, o, moved));
      } else {
        const e = urbError(
          `transferBatch: requests[${r}] (${this.#what[r]})`,
          status,
          this.urbs.engine.ids,
          { ...this.#partialOf(r, moved), results, requestIndex: r },
        );
        reject(e);
        return;
      }
    }
    resolve(results);
  }

  /** UrbBatch: back to the pool, holding no caller memory. */
  protected override recycle(): void {
    for (let r = 0; r < this.#n; r++) {
      this.#mem[r] = null;
      this.#what[r] = "";
    }
    this.#n = 0;
    const pool = poolOf(this.urbs.engine);
    if (pool.length < POOL_LIMIT) pool.push(this);
  }
}

/**
 * Starts one bulk, interrupt or control transfer on a pooled Transfer.
 *
 * @example
 * ```ts ignore
 * // Needs a URB engine (an open device's); nothing in the tree calls this function
 * // (Endpoint and Device use Transfer.get), so no test runs it.
 * import { transfer } from "./transfer.ts";
 * import { UrbType } from "./engine.ts";
 * declare const engine: import("./engine.ts").UrbEngine, options: import("./validate.ts").CheckedTransferOptions;
 * const r = await transfer(engine, 0, "in", UrbType.bulk, 0x81, new Uint8Array(64), 0, 64, true, false, "bulk IN", options);
 * ```
 */
export function transfer(
  engine: UrbEngine,
  tag: number,
  dir: "in" | "out",
  type: number,
  endpoint: number,
  mem: Uint8Array<ArrayBuffer> | UsbBuffer,
  dataOffset: number,
  length: number,
  continuation: boolean,
  zeroPacket: boolean,
  what: string,
  options: CheckedTransferOptions,
): Promise<unknown> {
  const t = Transfer.get(engine, tag);
  t.add(
    dir,
    type,
    endpoint,
    mem,
    dataOffset,
    length,
    continuation,
    zeroPacket,
    what,
  );
  return t.start(options);
}
