/**
 * One USB/IP connection in its URB phase: the stream from a client (the
 * kernel's vhci_hcd, or a remote `usbip attach`) on one side, an
 * {@linkcode EmulatedDevice} on the other.
 *
 * - Every CMD_SUBMIT becomes one `device.handleUrb` call, at once: many URBs
 *   are in flight together, and each RET_SUBMIT goes out when its handler
 *   settles (completion order), with the command's seqnum.
 * - CMD_UNLINK of a pending URB aborts the handler's `signal` and answers
 *   RET_UNLINK -ECONNRESET at once; that URB then never gets a RET_SUBMIT
 *   (vhci_hcd would take one for an unknown seqnum as a broken connection).
 *   CMD_UNLINK of a URB already answered gets RET_UNLINK 0.
 * - Isochronous IN replies carry only each packet's actual bytes, back to
 *   back, then the descriptors with the command's offsets; `actual_length`
 *   is their sum (vhci_hcd pads the packets back into place, and drops the
 *   connection if the sum differs).
 * - When the stream ends (the client vanished, the port was detached, the
 *   input broke the protocol, or {@linkcode UsbipConnection.close}), every
 *   pending handler's signal is aborted and the device is closed (or reset,
 *   see {@linkcode ConnectionOptions.onEnd}).
 *
 * The stream side (transport.ts) and the device side (this file) are apart so
 * that the stream can be served from a worker: `attachLocal` (attach.ts) and
 * `serve` (server.ts) do that. {@linkcode serveConnection} runs both on the
 * calling thread, which is fine unless a usbfs client of the same device
 * blocks that thread: cancelling a transfer (usbkit's timeouts, `signal`,
 * breaking out of `stream()`, releasing an interface) blocks in the kernel
 * until the RET_UNLINK arrives, which that thread would have to send.
 *
 * @example Serve a device on a stream (a real vhci_hcd attach is in attach.ts)
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveConnection } from "./connection.ts";
 * import { defineDevice } from "../emulated/mod.ts";
 * const device = defineDevice({ speed: "full", vendorId: 0x1209, productId: 0x0001, interfaces: [] });
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const [conn, client] = await Promise.all([listener.accept(), Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port })]);
 * listener.close();
 * const c = serveConnection(conn, device);
 * client.close(); // the client goes
 * assert.deepEqual(await c.closed, { reason: "peer-closed" });
 * ```
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import {
  type CmdSubmit,
  type DecodeLimits,
  encodeRetSubmit,
  type IsoPacketDescriptor,
} from "./protocol.ts";
import {
  type ConnectionEnd,
  type TransportEvents,
  UrbTransport,
} from "./transport.ts";
import type {
  EmulatedDevice,
  EmulatedUrb,
  EmulatedUrbResult,
} from "../emulated/urb.ts";

const EPROTO = 71;
const EOVERFLOW = 75;

/**
 * Options of {@linkcode serveConnection}.
 *
 * @example
 * ```ts
 * import type { ConnectionOptions } from "./connection.ts";
 * const o: ConnectionOptions = { devid: 0x10001, onEnd: "reset" };
 * ```
 */
export interface ConnectionOptions {
  /**
   * The devid the client was given (attach's devid, or the import reply's
   * `busnum << 16 | devnum`). When set, a command with another devid is a
   * protocol error, as usbip-host treats it (stub_rx.c valid_request).
   */
  devid?: number;
  /** Decoding caps (largest transfer; default 16 MiB). */
  limits?: DecodeLimits;
  /** Bytes already read from the stream (after an OP_REQ_IMPORT). */
  initialBytes?: Uint8Array;
  /**
   * What happens to the device when the connection ends: `"close"` (the
   * default: it is gone for good), `"reset"` (it may be imported again) or
   * `"none"`.
   */
  onEnd?: "close" | "reset" | "none";
  /**
   * Most URBs in flight before the connection stops reading the stream
   * until one completes (default 1024).
   */
  maxPending?: number;
  /**
   * Told about device faults that do not end the connection: a handler that
   * threw or returned nonsense (the URB is answered with -EPROTO), and a
   * `close()`/`reset()` that threw. Default: `console.error`.
   */
  onError?: (error: unknown) => void;
}

/**
 * Counters of a connection.
 *
 * @example
 * ```ts
 * import type { ConnectionStats } from "./connection.ts";
 * function rate(s: ConnectionStats, seconds: number): number {
 *   return s.bytesIn / seconds;
 * }
 * ```
 */
export interface ConnectionStats {
  /** CMD_SUBMITs received. */
  submitted: number;
  /** RET_SUBMITs sent. */
  completed: number;
  /** URBs unlinked while pending. */
  unlinked: number;
  /** Data bytes sent to the client (IN). */
  bytesIn: number;
  /** Data bytes received from the client (OUT). */
  bytesOut: number;
}

interface Pending {
  cmd: CmdSubmit;
  abort: AbortController;
}

/**
 * The stream side as the device side sees it: a {@linkcode UrbTransport} on
 * the same thread, or one in a worker.
 *
 * @example
 * ```ts
 * import type { TransportHandle } from "./connection.ts";
 * const none: TransportHandle = { reply() {}, close() {}, closed: Promise.resolve() };
 * ```
 */
export interface TransportHandle {
  /** Sends an encoded RET_SUBMIT (dropped if the URB is no longer pending). */
  reply(seqnum: number, retSubmit: Uint8Array): void;
  /** Asks the stream to close; the end arrives as an event. */
  close(): void;
  /** Settles once the stream side has fully stopped. */
  closed: Promise<unknown>;
}

function clampInt(v: unknown, min: number, max: number): number {
  const n = typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : 0;
  return Math.min(Math.max(n, min), max);
}

function checkStatus(status: unknown): number {
  if (
    typeof status !== "number" || !Number.isInteger(status) || status > 0 ||
    status < -4095
  ) {
    throw new TypeError(
      `status must be 0 or a negative errno, got ${String(status)}`,
    );
  }
  return status;
}

/**
 * The RET_SUBMIT for a command and the device's result, as vhci_hcd accepts
 * it: IN data cut to the buffer (more is a babble, -EOVERFLOW), isochronous
 * packets' actual lengths clamped to each packet, their bytes taken from
 * `result.data` at the command's offsets and sent back to back, and
 * `actual_length` their sum. Throws a TypeError on a result it cannot make
 * sense of (a positive status).
 *
 * @example A short isochronous IN: 3 of 4 bytes in packet 0, packet 1 empty
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeUrbResult } from "./connection.ts";
 * const cmd = {
 *   command: "submit", seqnum: 5, devid: 1, direction: "in", ep: 1, transferFlags: 0,
 *   transferBufferLength: 8, startFrame: 0, numberOfPackets: 2, interval: 1,
 *   setup: new Uint8Array(8),
 *   isoPackets: [{ offset: 0, length: 4, actualLength: 0, status: 0 },
 *                { offset: 4, length: 4, actualLength: 0, status: 0 }],
 * } as const;
 * const bytes = encodeUrbResult({ ...cmd, isoPackets: [...cmd.isoPackets] }, {
 *   status: 0, actualLength: 3, data: new Uint8Array([1, 2, 3, 0, 0, 0, 0, 0]),
 *   isoPackets: [{ offset: 0, length: 4, actualLength: 3, status: 0 },
 *                { offset: 4, length: 4, actualLength: 0, status: 0 }],
 * });
 * assert.equal(bytes.length, 48 + 3 + 2 * 16);
 * assert.deepEqual([...bytes.subarray(48, 51)], [1, 2, 3]);
 * ```
 */
export function encodeUrbResult(
  cmd: CmdSubmit,
  result: EmulatedUrbResult,
): Uint8Array {
  let status = checkStatus(result.status);
  const common = {
    seqnum: cmd.seqnum,
    startFrame: cmd.startFrame,
    numberOfPackets: cmd.numberOfPackets,
  };
  const data = result.data;
  if (cmd.isoPackets !== undefined) {
    const packets: IsoPacketDescriptor[] = [];
    const parts: Uint8Array[] = [];
    let total = 0, errors = 0;
    for (const [i, p] of cmd.isoPackets.entries()) {
      const r = result.isoPackets?.[i];
      let actual = clampInt(r?.actualLength, 0, p.length);
      const st = r === undefined
        ? (result.isoPackets ? -EPROTO : status)
        : checkStatus(r.status);
      if (cmd.direction === "in") {
        const available = Math.max(0, (data?.length ?? 0) - p.offset);
        actual = Math.min(actual, available);
        if (actual > 0) parts.push(data!.subarray(p.offset, p.offset + actual));
      }
      if (st !== 0) errors++;
      total += actual;
      packets.push({
        offset: p.offset,
        length: p.length,
        actualLength: actual,
        status: st,
      });
    }
    let packed: Uint8Array | undefined;
    if (cmd.direction === "in" && total > 0) {
      packed = new Uint8Array(total);
      let at = 0;
      for (const part of parts) {
        packed.set(part, at);
        at += part.length;
      }
    }
    return encodeRetSubmit({
      ...common,
      status,
      actualLength: total,
      errorCount: result.errorCount === undefined
        ? errors
        : clampInt(result.errorCount, 0, packets.length),
      isoPackets: packets,
      ...(packed !== undefined ? { data: packed } : {}),
    });
  }
  if (cmd.direction === "in") {
    let n = clampInt(result.actualLength, 0, data?.length ?? 0);
    if (n > cmd.transferBufferLength) {
      n = cmd.transferBufferLength;
      if (status === 0) status = -EOVERFLOW;
    }
    return encodeRetSubmit({
      ...common,
      status,
      actualLength: n,
      errorCount: 0,
      ...(n > 0 ? { data: data!.subarray(0, n) } : {}),
    });
  }
  return encodeRetSubmit({
    ...common,
    status,
    actualLength: clampInt(result.actualLength, 0, cmd.transferBufferLength),
    errorCount: 0,
  });
}

/**
 * The device side of a served connection. Create it with
 * {@linkcode serveConnection}, `attachLocal` (attach.ts) or `serve` (server.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveConnection } from "./connection.ts";
 * import { defineDevice } from "../emulated/mod.ts";
 * const device = defineDevice({ speed: "full", vendorId: 0x1209, productId: 0x0001, interfaces: [] });
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const [conn, client] = await Promise.all([listener.accept(), Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port })]);
 * listener.close();
 * const c = serveConnection(conn, device);
 * assert.equal(c.pending, 0);
 * assert.equal(c.stats.submitted, 0);
 * assert.equal((await c.close()).reason, "closed"); // the client sees the device unplugged
 * assert.equal(await client.read(new Uint8Array(1)), null);
 * client.close();
 * ```
 */
export class UsbipConnection implements TransportEvents {
  readonly #device: EmulatedDevice;
  readonly #onEnd: "close" | "reset" | "none";
  readonly #onError: (error: unknown) => void;
  readonly #transport: TransportHandle;
  readonly #pending = new Map<number, Pending>();
  readonly #stats: ConnectionStats = {
    submitted: 0,
    completed: 0,
    unlinked: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
  #end: ConnectionEnd | null = null;
  #ended!: (end: ConnectionEnd) => void;
  /** Settles once the connection has ended and its stream is closed. */
  readonly closed: Promise<ConnectionEnd>;

  /**
   * Serves a device on one connection.
   *
   * @param device the device to serve
   * @param options end action and fault reporting (the stream options go
   *   to the transport)
   * @param transport makes the stream side, given this object's events
   */
  constructor(
    device: EmulatedDevice,
    options: Pick<ConnectionOptions, "onEnd" | "onError">,
    transport: (events: TransportEvents) => TransportHandle,
  ) {
    this.#device = device;
    this.#onEnd = options.onEnd ?? "close";
    this.#onError = options.onError ?? ((e) => console.error(e));
    const ended = new Promise<ConnectionEnd>((r) => this.#ended = r);
    this.#transport = transport(this);
    this.closed = ended.then(async (end) => {
      await this.#transport.closed;
      return end;
    });
  }

  /** URBs the device is working on. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Counters so far (a copy). */
  get stats(): ConnectionStats {
    return { ...this.#stats };
  }

  /**
   * Ends the connection: pending handlers are aborted, the stream is closed
   * (the client sees the device unplugged), the device is closed or reset.
   *
   * @returns how it ended (`closed`, unless it had ended already)
   */
  close(): Promise<ConnectionEnd> {
    if (this.#end === null) this.#transport.close();
    return this.closed;
  }

  /**
   * Transport event: a new URB. Called by the stream side.
   *
   * @param cmd the CMD_SUBMIT
   */
  submit(cmd: CmdSubmit): void {
    if (this.#end !== null) return;
    const abort = new AbortController();
    const entry: Pending = { cmd, abort };
    this.#pending.set(cmd.seqnum, entry);
    this.#stats.submitted++;
    this.#stats.bytesOut += cmd.data?.length ?? 0;
    const urb: EmulatedUrb = {
      endpoint: cmd.ep,
      direction: cmd.direction,
      length: cmd.transferBufferLength,
      transferFlags: cmd.transferFlags,
      signal: abort.signal,
    };
    if (cmd.ep === 0) urb.setup = cmd.setup;
    if (cmd.direction === "out") urb.data = cmd.data ?? new Uint8Array(0);
    if (cmd.isoPackets !== undefined) {
      urb.isoPackets = cmd.isoPackets.map((p) => ({
        offset: p.offset,
        length: p.length,
      }));
    }
    let result: Promise<EmulatedUrbResult>;
    try {
      result = Promise.resolve(this.#device.handleUrb(urb));
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      (r) => this.#complete(entry, r, undefined),
      (e) => this.#complete(entry, undefined, e),
    );
  }

  /**
   * Transport event: the host unlinked a pending URB (RET_UNLINK is sent).
   *
   * @param seqnum the URB's seqnum
   */
  unlinked(seqnum: number): void {
    const entry = this.#pending.get(seqnum);
    if (entry === undefined) return;
    this.#pending.delete(seqnum);
    this.#stats.unlinked++;
    entry.abort.abort(
      new UsbError(
        "cancelled",
        `URB seqnum ${seqnum} was unlinked by the host (CMD_UNLINK)`,
      ),
    );
  }

  /**
   * Transport event: the stream is over.
   *
   * @param end why
   */
  end(end: ConnectionEnd): void {
    if (this.#end !== null) return;
    this.#end = end;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    const reason = new UsbError(
      "disconnected",
      "the USB/IP connection ended: the device was detached",
    );
    for (const p of pending) p.abort.abort(reason);
    try {
      if (this.#onEnd === "close") this.#device.close();
      else if (this.#onEnd === "reset") this.#device.reset();
    } catch (e) {
      this.#onError(e);
    }
    this.#ended(end);
  }

  #complete(
    entry: Pending,
    result: EmulatedUrbResult | undefined,
    error: unknown,
  ): void {
    const { cmd } = entry;
    // Unlinked, or the connection ended: the host wants no answer.
    if (this.#pending.get(cmd.seqnum) !== entry) return;
    this.#pending.delete(cmd.seqnum);
    let bytes: Uint8Array;
    try {
      if (result === undefined) throw error;
      bytes = encodeUrbResult(cmd, result);
    } catch (e) {
      this.#onError(
        new Error(
          `the device's handler failed URB seqnum ${cmd.seqnum} (endpoint ${cmd.ep} ${cmd.direction}); answered -EPROTO`,
          { cause: e },
        ),
      );
      bytes = encodeUrbResult(cmd, { status: -EPROTO, actualLength: 0 });
    }
    this.#stats.completed++;
    if (cmd.direction === "in") {
      // actual_length: the data bytes on the wire.
      this.#stats.bytesIn += new DataView(bytes.buffer, bytes.byteOffset)
        .getInt32(24);
    }
    this.#transport.reply(cmd.seqnum, bytes);
  }
}

/**
 * Serves `device` on `conn`, which must be in the URB phase, on the calling
 * thread (see the module doc for when that can deadlock; `attachLocal` and
 * `serve` use a worker instead).
 *
 * @example Answer one URB from a client on TCP loopback (a test client plays vhci_hcd)
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReturn, encodeCmdSubmit, serveConnection } from "./mod.ts";
 * import { defineDevice } from "../emulated/mod.ts";
 * const device = defineDevice({ speed: "full", vendorId: 0x1209, productId: 0x0001, interfaces: [] });
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const [conn, client] = await Promise.all([listener.accept(), Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port })]);
 * listener.close();
 * const c = serveConnection(conn, device, { devid: 0x10001 });
 * // GET_DESCRIPTOR(device), 18 bytes, on endpoint 0
 * const setup = new Uint8Array([0x80, 0x06, 0x00, 0x01, 0, 0, 18, 0]);
 * await client.write(encodeCmdSubmit({ seqnum: 1, devid: 0x10001, direction: "in", ep: 0, transferFlags: 0, transferBufferLength: 18, setup }));
 * const reply = new Uint8Array(48 + 18);
 * for (let at = 0; at < reply.length;) at += (await client.read(reply.subarray(at)))!;
 * const r = decodeReturn(reply, () => ({ direction: "in", transferBufferLength: 18, numberOfPackets: 0 }));
 * assert.ok("value" in r && r.value.command === "ret-submit");
 * assert.equal(r.value.status, 0);
 * assert.equal(r.value.actualLength, 18);
 * client.close();
 * assert.equal((await c.closed).reason, "peer-closed");
 * assert.equal(c.stats.completed, 1);
 * ```
 *
 * @param conn the stream
 * @param device the device
 * @param options see {@linkcode ConnectionOptions}
 * @returns the running connection
 */
export function serveConnection(
  conn: Deno.Conn,
  device: EmulatedDevice,
  options: ConnectionOptions = {},
): UsbipConnection {
  return new UsbipConnection(device, options, (events) => {
    const t = new UrbTransport(conn, events, {
      ...(options.devid !== undefined ? { devid: options.devid } : {}),
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
      ...(options.initialBytes !== undefined
        ? { initialBytes: options.initialBytes }
        : {}),
      ...(options.maxPending !== undefined
        ? { maxPending: options.maxPending }
        : {}),
    });
    return {
      reply: (seqnum, bytes) => t.reply(seqnum, bytes),
      close: () => void t.close(),
      closed: t.closed,
    };
  });
}
