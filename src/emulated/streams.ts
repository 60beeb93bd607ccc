/**
 * Streams as endpoint behaviour: an IN endpoint fed by an iterable of
 * chunks ({@linkcode SourceReader}), an OUT endpoint draining into a
 * `WritableStream` ({@linkcode SinkWriter}).
 *
 * How a source becomes transfers, following what a device with a FIFO does
 * on the wire: each chunk is sent as packets of `maxPacketSize` and ends
 * with a short packet (or a zero-length packet when it fills its last
 * packet), so a chunk is one transfer. A transfer that asks for less than
 * the rest of the chunk gets:
 * - exactly `length` bytes when `length` is a multiple of `maxPacketSize`
 *   (the transfer ends on a full packet; the rest waits for the next one);
 * - otherwise `length` bytes and -EOVERFLOW (babble): the next full packet
 *   did not fit in what was left of the buffer; that packet's bytes are
 *   lost, as on real hardware. Ask in multiples of `maxPacketSize`.
 *
 * An empty chunk is a zero-length packet. When the source ends, the
 * endpoint has nothing more to send: transfers wait until unlinked.
 *
 * @module
 */

import type { EndpointDefinition } from "./definition.ts";

/**
 * Waits for `promise`, or rejects with the signal's reason when `signal`
 * is aborted first. `promise` keeps a handler either way, so a late
 * rejection is never unhandled.
 *
 * @param promise what to wait for
 * @param signal when to stop waiting
 * @returns the promise's value
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { raceAbort } from "./streams.ts";
 * const ac = new AbortController();
 * const waiting = raceAbort(new Promise(() => {}), ac.signal);
 * ac.abort(new Error("unlinked"));
 * await assert.rejects(waiting, /unlinked/);
 * ```
 */
export function raceAbort<T>(
  promise: PromiseLike<T>,
  signal: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      Promise.resolve(promise).catch(() => {});
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    Promise.resolve(promise).then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * A promise that never settles unless `signal` is aborted (then it
 * rejects with the reason): an endpoint with nothing to send.
 *
 * @param signal when to stop waiting
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { untilAborted } from "./streams.ts";
 * const ac = new AbortController();
 * const w = untilAborted(ac.signal);
 * ac.abort(new Error("bye"));
 * await assert.rejects(w, /bye/);
 * ```
 */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return raceAbort(new Promise<never>(() => {}), signal);
}

/**
 * One transfer's worth of a source: the bytes, and whether it babbled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SourceReader } from "./streams.ts";
 * const r = new SourceReader([new Uint8Array(100)]);
 * const t = await r.take(10, 64, new AbortController().signal); // 10 is not a whole packet
 * assert.deepEqual([t.data.length, t.babble], [10, true]);
 * r.close();
 * ```
 */
export interface SourceTransfer {
  /** The bytes sent (a copy). */
  readonly data: Uint8Array;
  /** The device sent a packet that did not fit: -EOVERFLOW. */
  readonly babble: boolean;
}

/**
 * Reads an IN endpoint's `source` and slices it into transfers (see the
 * module documentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SourceReader } from "./streams.ts";
 * const r = new SourceReader([new Uint8Array(100), new Uint8Array(3)]);
 * const signal = new AbortController().signal;
 * assert.equal((await r.take(64, 64, signal)).data.length, 64); // a full packet
 * assert.equal((await r.take(512, 64, signal)).data.length, 36); // the rest: short packet
 * assert.equal((await r.take(512, 64, signal)).data.length, 3);  // the next chunk
 * r.close();
 * ```
 */
export class SourceReader {
  readonly #source: NonNullable<EndpointDefinition["source"]>;
  #iterator: AsyncIterator<unknown> | Iterator<unknown> | undefined;
  #pending: Promise<IteratorResult<unknown>> | undefined;
  #chunk: Uint8Array | undefined;
  #offset = 0;
  #done = false;

  /** @param source the endpoint's `source` */
  constructor(source: NonNullable<EndpointDefinition["source"]>) {
    this.#source = source;
  }

  /**
   * The next transfer: waits for data (or for `signal`), then slices.
   *
   * @param length bytes the host asked for
   * @param maxPacketSize the endpoint's packet size
   * @param signal aborts the wait; data that arrives later is kept
   * @returns the transfer
   * @throws what the source throws, or a non-bytes chunk as a TypeError
   */
  async take(
    length: number,
    maxPacketSize: number,
    signal: AbortSignal,
  ): Promise<SourceTransfer> {
    while (this.#chunk === undefined) {
      if (this.#done) await untilAborted(signal);
      this.#pending ??= this.#next();
      let r: IteratorResult<unknown>;
      try {
        r = await raceAbort(this.#pending, signal);
      } catch (e) {
        if (!signal.aborted) this.#pending = undefined; // the source failed
        throw e;
      }
      this.#pending = undefined;
      if (r.done) {
        this.#done = true;
        continue;
      }
      this.#chunk = bytesOf(r.value);
      this.#offset = 0;
    }
    const chunk = this.#chunk;
    const start = this.#offset;
    const remaining = chunk.length - start;
    if (remaining <= length) {
      this.#chunk = undefined;
      return { data: chunk.slice(start), babble: false };
    }
    const whole = Math.floor(length / maxPacketSize) * maxPacketSize;
    if (whole === length) {
      this.#offset += length;
      return { data: chunk.slice(start, start + length), babble: false };
    }
    // The packet after `whole` bytes does not fit: babble; it is lost.
    this.#offset = Math.min(start + whole + maxPacketSize, chunk.length);
    if (this.#offset >= chunk.length) this.#chunk = undefined;
    return { data: chunk.slice(start, start + length), babble: true };
  }

  /** Stops reading: calls the iterator's `return()` (which cancels a ReadableStream). */
  close(): void {
    const it = this.#iterator;
    this.#iterator = undefined;
    this.#done = true;
    if (it?.return === undefined) return;
    try {
      Promise.resolve(it.return()).catch(() => {});
    } catch {
      // a source that cannot be closed is not our problem
    }
  }

  #next(): Promise<IteratorResult<unknown>> {
    try {
      if (this.#iterator === undefined) {
        const src = typeof this.#source === "function"
          ? this.#source()
          : this.#source;
        const it = Symbol.asyncIterator in src
          ? (src as AsyncIterable<unknown>)[Symbol.asyncIterator]()
          : (src as Iterable<unknown>)[Symbol.iterator]();
        this.#iterator = it;
      }
      return Promise.resolve(this.#iterator.next());
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

/**
 * Writes an OUT endpoint's data to its `sink`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SinkWriter } from "./streams.ts";
 * const got: number[] = [];
 * const w = new SinkWriter(new WritableStream({ write(c) { got.push(...c); } }));
 * await w.write(new Uint8Array([1, 2]), new AbortController().signal);
 * assert.deepEqual(got, [1, 2]);
 * w.close();
 * ```
 */
export class SinkWriter {
  readonly #sink: NonNullable<EndpointDefinition["sink"]>;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;

  /** @param sink the endpoint's `sink` */
  constructor(sink: NonNullable<EndpointDefinition["sink"]>) {
    this.#sink = sink;
  }

  /**
   * Writes one transfer's data; waits while the stream applies
   * backpressure (the endpoint NAKs meanwhile).
   *
   * @param data the bytes (the stream may keep them)
   * @param signal stops waiting (the write itself goes on)
   */
  async write(data: Uint8Array, signal: AbortSignal): Promise<void> {
    if (this.#writer === undefined) {
      const stream = typeof this.#sink === "function"
        ? this.#sink()
        : this.#sink;
      this.#writer = stream.getWriter();
      this.#writer.closed.catch(() => {});
    }
    await raceAbort(this.#writer.write(data), signal);
  }

  /** Releases the stream (it stays open for its owner). */
  close(): void {
    try {
      this.#writer?.releaseLock();
    } catch {
      // already released
    }
    this.#writer = undefined;
  }
}

function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return Uint8Array.from(value);
  throw new TypeError(
    `the source produced ${
      value === null ? "null" : typeof value
    } instead of a Uint8Array`,
  );
}
