/**
 * The transport half of a USB/IP connection in its URB phase: the stream,
 * the incremental decoder, the set of pending seqnums, the unlink replies
 * and the ordered write queue. It never touches the device: new URBs go out
 * through {@linkcode TransportEvents.submit}, and answers come back through
 * {@linkcode UrbTransport.reply} as encoded RET_SUBMITs.
 *
 * It answers CMD_UNLINK by itself, at once, without the device: this is what
 * lets it run in a worker (transport_worker.ts) while the device runs on the
 * main thread. A usbfs client on the main thread that cancels a transfer is
 * blocked in the kernel (USBDEVFS_DISCARDURB is `usb_kill_urb`, which waits
 * for vhci_hcd to give the URB back, which waits for RET_UNLINK): the reply
 * must not need that thread.
 *
 * @example Run a transport on a stream and answer every URB with a stall
 * ```ts
 * import assert from "node:assert/strict";
 * import { UrbTransport } from "./transport.ts";
 * import { encodeUrbResult } from "./connection.ts";
 * import { decodeReturn, encodeCmdSubmit } from "./protocol.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const [conn, client] = await Promise.all([listener.accept(), Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port })]);
 * listener.close();
 * const t: UrbTransport = new UrbTransport(conn, {
 *   submit: (cmd) => t.reply(cmd.seqnum, encodeUrbResult(cmd, { status: -32, actualLength: 0 })),
 *   unlinked: () => {},
 *   end: (e) => assert.equal(e.reason, "peer-closed"),
 * });
 * // The client's side, as vhci_hcd would: a bulk IN URB on endpoint 1
 * await client.write(encodeCmdSubmit({ seqnum: 7, devid: 0, direction: "in", ep: 1, transferFlags: 0, transferBufferLength: 64 }));
 * const reply = new Uint8Array(48);
 * for (let at = 0; at < reply.length;) at += (await client.read(reply.subarray(at)))!;
 * const r = decodeReturn(reply, () => ({ direction: "in", transferBufferLength: 64, numberOfPackets: 0 }));
 * assert.ok("value" in r && r.value.command === "ret-submit");
 * assert.equal(r.value.seqnum, 7);
 * assert.equal(r.value.status, -32); // stalled
 * client.close();
 * assert.equal((await t.closed).reason, "peer-closed");
 * ```
 *
 * @module
 */

import { StreamDecoder } from "./decoder.ts";
import {
  type CmdSubmit,
  type CmdUnlink,
  decodeCommand,
  type DecodeLimits,
  ECONNRESET,
  encodeRetUnlink,
  UsbipProtocolError,
} from "./protocol.ts";

/**
 * Why a connection ended.
 *
 * @example
 * ```ts
 * import type { ConnectionEnd } from "./transport.ts";
 * function explain(e: ConnectionEnd): string {
 *   return e.reason === "protocol-error" ? `bad input: ${e.error}` : e.reason;
 * }
 * ```
 */
export interface ConnectionEnd {
  /**
   * `peer-closed`: the client closed the stream (detach, usbip detach, exit);
   * `closed`: the connection was closed on this side;
   * `protocol-error`: the client's input broke the protocol (`error` says how);
   * `io-error`: reading or writing the stream failed.
   */
  reason: "peer-closed" | "closed" | "protocol-error" | "io-error";
  /** The error, for `protocol-error` and `io-error`. */
  error?: unknown;
}

/**
 * What a transport reports.
 *
 * @example
 * ```ts
 * import type { TransportEvents } from "./transport.ts";
 * const log: TransportEvents = {
 *   submit: (c) => console.log("URB", c.seqnum),
 *   unlinked: (s) => console.log("unlinked", s),
 *   end: (e) => console.log("end", e.reason),
 * };
 * ```
 */
export interface TransportEvents {
  /** A CMD_SUBMIT: answer it with {@linkcode UrbTransport.reply}. */
  submit(cmd: CmdSubmit): void;
  /** A pending URB was unlinked; RET_UNLINK is on its way, a reply would be dropped. */
  unlinked(seqnum: number): void;
  /** The stream is over (once); nothing is pending any more. */
  end(end: ConnectionEnd): void;
}

/**
 * Options of {@linkcode UrbTransport}.
 *
 * @example
 * ```ts
 * import type { TransportOptions } from "./transport.ts";
 * const o: TransportOptions = { devid: 0x10001, maxPending: 256 };
 * ```
 */
export interface TransportOptions {
  /**
   * When set, a command for another devid is a protocol error, as
   * usbip-host treats it (stub_rx.c valid_request).
   */
  devid?: number;
  /** Decoding caps. */
  limits?: DecodeLimits;
  /** Bytes already read from the stream (after an OP_REQ_IMPORT). */
  initialBytes?: Uint8Array;
  /** Most URBs pending before reading pauses until one is answered (default 1024). */
  maxPending?: number;
}

/**
 * The URB phase of one stream. Starts reading at once.
 *
 * @example See also the module example.
 * ```ts
 * import assert from "node:assert/strict";
 * import { type TransportEvents, UrbTransport } from "./transport.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const [conn, client] = await Promise.all([listener.accept(), Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port })]);
 * listener.close();
 * const events: TransportEvents = { submit: () => {}, unlinked: () => {}, end: () => {} };
 * const t = new UrbTransport(conn, events, { devid: 0x10001 });
 * assert.equal(t.pending, 0);
 * assert.equal((await t.close()).reason, "closed");
 * assert.equal(await client.read(new Uint8Array(1)), null); // the client sees the end
 * client.close();
 * ```
 */
export class UrbTransport {
  readonly #conn: Deno.Conn;
  readonly #events: TransportEvents;
  readonly #decoder = new StreamDecoder();
  readonly #limits: DecodeLimits | undefined;
  readonly #devid: number | undefined;
  readonly #maxPending: number;
  readonly #pending = new Set<number>();
  #queue: Uint8Array[] = [];
  #flushing: Promise<void> | null = null;
  #end: ConnectionEnd | null = null;
  #capacity: (() => void) | null = null;
  /** Settles once the stream is closed and no write is in progress. */
  readonly closed: Promise<ConnectionEnd>;

  /**
   * Starts the transport on a connection.
   *
   * @param conn the stream, in its URB phase
   * @param events where URBs, unlinks and the end go
   * @param options devid check, limits, initial bytes, backpressure
   */
  constructor(
    conn: Deno.Conn,
    events: TransportEvents,
    options: TransportOptions = {},
  ) {
    this.#conn = conn;
    this.#events = events;
    this.#limits = options.limits;
    this.#devid = options.devid;
    this.#maxPending = Math.max(1, options.maxPending ?? 1024);
    this.closed = this.#read(options.initialBytes).then(async () => {
      while (this.#flushing !== null) await this.#flushing;
      return this.#end!;
    });
  }

  /** URBs submitted and not yet answered or unlinked. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Sends the RET_SUBMIT of a pending URB. Returns false (and sends nothing)
   * when the URB is no longer pending: unlinked, or the stream ended.
   *
   * @param seqnum the URB's seqnum
   * @param retSubmit the encoded RET_SUBMIT
   * @returns whether it was sent
   */
  reply(seqnum: number, retSubmit: Uint8Array): boolean {
    if (!this.#pending.delete(seqnum)) return false;
    this.#send(retSubmit);
    this.#wake();
    return true;
  }

  /**
   * Ends the stream (the client sees the device unplugged).
   *
   * @returns how it ended
   */
  close(): Promise<ConnectionEnd> {
    this.#finish({ reason: "closed" });
    return this.closed;
  }

  async #read(initial: Uint8Array | undefined): Promise<void> {
    const buf = new Uint8Array(256 * 1024);
    try {
      if (initial !== undefined && initial.length > 0) {
        this.#decoder.push(initial);
        this.#drain();
      }
      while (this.#end === null) {
        if (this.#pending.size >= this.#maxPending) {
          await new Promise<void>((resolve) => this.#capacity = resolve);
          continue;
        }
        const n = await this.#conn.read(buf);
        if (n === null) {
          this.#finish({ reason: "peer-closed" });
          break;
        }
        this.#decoder.push(buf.subarray(0, n));
        this.#drain();
      }
    } catch (e) {
      if (e instanceof UsbipProtocolError) {
        this.#finish({ reason: "protocol-error", error: e });
      } else if (this.#end === null) {
        this.#finish({ reason: "io-error", error: e });
      }
    }
  }

  #drain(): void {
    const decode = (b: Uint8Array) => decodeCommand(b, this.#limits);
    for (
      let c;
      this.#end === null && (c = this.#decoder.next(decode)) !== undefined;
    ) {
      if (this.#devid !== undefined && c.devid !== this.#devid) {
        throw new UsbipProtocolError(
          `seqnum ${c.seqnum} is for devid 0x${
            c.devid.toString(16)
          }, this connection serves 0x${this.#devid.toString(16)}`,
        );
      }
      if (c.command === "submit") {
        if (this.#pending.has(c.seqnum)) {
          throw new UsbipProtocolError(
            `CMD_SUBMIT reuses seqnum ${c.seqnum}, which is still pending`,
          );
        }
        this.#pending.add(c.seqnum);
        this.#events.submit(c);
      } else {
        this.#unlink(c);
      }
    }
  }

  #unlink(cmd: CmdUnlink): void {
    if (!this.#pending.delete(cmd.unlinkSeqnum)) {
      // Answered already (its RET_SUBMIT is sent or queued before this).
      this.#send(encodeRetUnlink({ seqnum: cmd.seqnum, status: 0 }));
      return;
    }
    this.#events.unlinked(cmd.unlinkSeqnum);
    this.#send(encodeRetUnlink({ seqnum: cmd.seqnum, status: -ECONNRESET }));
    this.#wake();
  }

  #wake(): void {
    const wake = this.#capacity;
    this.#capacity = null;
    wake?.();
  }

  #send(bytes: Uint8Array): void {
    if (this.#end !== null) return;
    this.#queue.push(bytes);
    this.#flushing ??= this.#flush();
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#end === null) {
        const batch = this.#queue;
        this.#queue = [];
        let total = 0;
        for (const b of batch) total += b.length;
        if (batch.length > 1 && total <= 1 << 20) {
          const joined = new Uint8Array(total);
          let at = 0;
          for (const b of batch) {
            joined.set(b, at);
            at += b.length;
          }
          await this.#writeAll(joined);
        } else {
          for (const b of batch) await this.#writeAll(b);
        }
      }
    } catch (e) {
      this.#finish({ reason: "io-error", error: e });
    } finally {
      this.#flushing = null;
    }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) {
      at += await this.#conn.write(bytes.subarray(at));
    }
  }

  #finish(end: ConnectionEnd): void {
    if (this.#end !== null) return;
    this.#end = end;
    this.#queue = [];
    this.#pending.clear();
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    this.#wake();
    this.#events.end(end);
  }
}
