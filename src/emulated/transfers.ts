/**
 * Running one bulk, interrupt or isochronous URB against an endpoint's
 * behaviour, and turning what the handler did into a URB result.
 *
 * Rules the results always follow, whatever a handler returns:
 * - an IN transfer never carries more than the URB asked for: more is
 *   babble (-EOVERFLOW, the first `length` bytes);
 * - a short IN transfer with `URB_SHORT_NOT_OK` ends with -EREMOTEIO;
 * - isochronous: every packet's `actualLength` is at most its requested
 *   `length` (a longer packet is babble: status -EOVERFLOW, length 0), and
 *   the URB's `actualLength` is the sum of the packets' (vhci_hcd drops the
 *   connection otherwise: usbip_common.c, `usbip_recv_iso`);
 * - a handler that throws or returns something impossible is reported and
 *   stalls the endpoint (bulk, interrupt) or fails its packets with -EPROTO
 *   (isochronous, which has no halt).
 *
 * @module
 */

import { describeValue } from "../validate.ts";
import type { IsoInPacket, TransferInfo } from "./handlers.ts";
import type { EndpointModel } from "./model.ts";
import { type SinkWriter, type SourceReader, untilAborted } from "./streams.ts";
import {
  type EmulatedUrb,
  type EmulatedUrbResult,
  TransferFlags,
  UrbStatus,
} from "./urb.ts";

/**
 * What a transfer needs from the device that runs it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferContext } from "./transfers.ts";
 * const keys: (keyof TransferContext)[] = ["info", "halted", "halt", "report", "source", "sink"];
 * assert.equal(keys.length, 6);
 * ```
 */
export interface TransferContext {
  /** What the handler gets. */
  readonly info: TransferInfo;
  /** The endpoint is halted now. */
  halted(): boolean;
  /** Halts the endpoint (a handler stalled or failed). */
  halt(): void;
  /** Reports a handler's error. */
  report(error: unknown, where: string): void;
  /** The endpoint's source reader (created on first use). */
  source(): SourceReader;
  /** The endpoint's sink writer (created on first use). */
  sink(): SinkWriter;
}

const STALLED: EmulatedUrbResult = {
  status: UrbStatus.stall,
  actualLength: 0,
};

/**
 * Names an endpoint handler for error reports: `endpoint 0x81 (bulk IN) onIn`.
 *
 * @param ep the endpoint
 * @param handler the handler's field name
 * @returns the description
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { handlerName } from "./transfers.ts";
 * assert.equal(handlerName({ address: 0x81, type: "bulk", direction: "in" }, "onIn"), "endpoint 0x81 (bulk IN) onIn");
 * ```
 */
export function handlerName(
  ep: Pick<EndpointModel, "address" | "type" | "direction">,
  handler: string,
): string {
  return `endpoint 0x${
    ep.address.toString(16).padStart(2, "0")
  } (${ep.type} ${ep.direction.toUpperCase()}) ${handler}`;
}

/**
 * Runs one bulk or interrupt URB.
 *
 * @param ep the endpoint
 * @param urb the URB
 * @param ctx the device's side
 * @returns the result
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runBulkOrInterrupt, type TransferContext } from "./transfers.ts";
 * import { resolveDefinition } from "./model.ts";
 * const m = resolveDefinition({ speed: "full", vendorId: 1, productId: 2, interfaces: [{
 *   endpoints: [{ address: 0x81, type: "bulk", onIn: () => new Uint8Array([1, 2, 3]) }],
 * }] });
 * const ep = m.configurations[0]!.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * const signal = new AbortController().signal;
 * const ctx = { info: { signal }, halted: () => false, halt() {}, report() {} } as unknown as TransferContext;
 * const r = await runBulkOrInterrupt(ep, { endpoint: 1, direction: "in", length: 64, transferFlags: 0, signal }, ctx);
 * assert.deepEqual([r.status, r.actualLength], [0, 3]);
 * ```
 */
export async function runBulkOrInterrupt(
  ep: EndpointModel,
  urb: EmulatedUrb,
  ctx: TransferContext,
): Promise<EmulatedUrbResult> {
  if (ctx.halted()) return STALLED;
  return ep.direction === "in" ? await runIn(ep, urb, ctx) : await runOut(
    ep,
    urb,
    ctx,
  );
}

async function runIn(
  ep: EndpointModel,
  urb: EmulatedUrb,
  ctx: TransferContext,
): Promise<EmulatedUrbResult> {
  const { signal } = ctx.info;
  const name = handlerName(ep, ep.onIn ? "onIn" : "source");
  let result: unknown;
  try {
    if (ep.onIn !== undefined) {
      result = await ep.onIn(urb.length, ctx.info);
    } else if (ep.source !== undefined) {
      const t = await ctx.source().take(
        urb.length,
        ep.maxPacketSize,
        signal,
      );
      return t.babble
        ? {
          status: UrbStatus.babble,
          data: t.data,
          actualLength: t.data.length,
        }
        : inResult(t.data, urb);
    } else {
      await untilAborted(signal); // nothing to send: NAK until unlinked
    }
  } catch (e) {
    return failed(e, name, ctx);
  }
  if (result === "stall") return stalled(ctx);
  const data = asBytes(result);
  if (data === undefined) {
    return failed(
      new TypeError(
        `returned ${
          describeValue(result)
        }; an IN handler returns a Uint8Array (empty for a zero-length packet) or "stall"`,
      ),
      name,
      ctx,
    );
  }
  if (data.length > urb.length) {
    return {
      status: UrbStatus.babble,
      data: data.slice(0, urb.length),
      actualLength: urb.length,
    };
  }
  return inResult(data, urb);
}

async function runOut(
  ep: EndpointModel,
  urb: EmulatedUrb,
  ctx: TransferContext,
): Promise<EmulatedUrbResult> {
  const data = (urb.data ?? new Uint8Array(0)).slice();
  const name = handlerName(ep, ep.onOut ? "onOut" : "sink");
  let result: unknown;
  try {
    if (ep.onOut !== undefined) result = await ep.onOut(data, ctx.info);
    else if (ep.sink !== undefined) {
      await ctx.sink().write(data, ctx.info.signal);
    }
  } catch (e) {
    return failed(e, name, ctx);
  }
  if (result === "stall") return stalled(ctx);
  if (result !== undefined) {
    // The data was taken; say so, but do not stall.
    ctx.report(
      new TypeError(
        `returned ${
          describeValue(result)
        }; an OUT handler returns nothing (data accepted) or "stall"`,
      ),
      name,
    );
  }
  return { status: UrbStatus.ok, actualLength: data.length };
}

/**
 * Runs one isochronous URB: IN packets from `onIsoIn` laid out at their
 * offsets, OUT packets cut from the data and given to `onIsoOut`.
 *
 * @param ep the endpoint
 * @param urb the URB (with `isoPackets`)
 * @param ctx the device's side
 * @returns the result, per packet
 *
 * @example A handler that fills packets shorter than asked
 * ```ts
 * import assert from "node:assert/strict";
 * import { runIsochronous, type TransferContext } from "./transfers.ts";
 * import { resolveDefinition } from "./model.ts";
 * const m = resolveDefinition({ speed: "full", vendorId: 1, productId: 2, interfaces: [{
 *   endpoints: [{ address: 0x81, type: "isochronous", maxPacketSize: 192,
 *     onIsoIn: (packets) => packets.map((_, i) => new Uint8Array(i * 10).fill(i)) }],
 * }] });
 * const ep = m.configurations[0]!.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * const signal = new AbortController().signal;
 * const ctx = { info: { signal }, halted: () => false, halt() {}, report() {} } as unknown as TransferContext;
 * const r = await runIsochronous(ep, {
 *   endpoint: 1, direction: "in", length: 384, transferFlags: 0, signal,
 *   isoPackets: [{ offset: 0, length: 192 }, { offset: 192, length: 192 }],
 * }, ctx);
 * assert.deepEqual(r.isoPackets!.map((p) => p.actualLength), [0, 10]);
 * assert.equal(r.actualLength, 10);
 * assert.equal(r.data![192], 1);
 * ```
 */
export async function runIsochronous(
  ep: EndpointModel,
  urb: EmulatedUrb,
  ctx: TransferContext,
): Promise<EmulatedUrbResult> {
  const packets = urb.isoPackets;
  const bufferLength = ep.direction === "in"
    ? urb.length
    : (urb.data?.length ?? 0);
  const layoutError = checkLayout(packets, bufferLength);
  if (layoutError !== undefined) {
    ctx.report(new RangeError(layoutError), handlerName(ep, "URB"));
    return { status: UrbStatus.invalid, actualLength: 0 };
  }
  const list = packets!;
  return ep.direction === "in"
    ? await isoIn(ep, urb, list, ctx)
    : await isoOut(ep, urb, list, ctx);
}

type IsoResultPacket = NonNullable<EmulatedUrbResult["isoPackets"]>[number];

async function isoIn(
  ep: EndpointModel,
  urb: EmulatedUrb,
  packets: readonly { offset: number; length: number }[],
  ctx: TransferContext,
): Promise<EmulatedUrbResult> {
  const name = handlerName(ep, "onIsoIn");
  let produced: unknown = [];
  try {
    if (ep.onIsoIn !== undefined) {
      produced = await ep.onIsoIn(
        packets.map((p) => ({ length: p.length })),
        ctx.info,
      );
    }
  } catch (e) {
    if (ctx.info.signal.aborted) throw e;
    ctx.report(e, name);
    return allFailed(packets, new Uint8Array(urb.length));
  }
  if (!Array.isArray(produced)) {
    ctx.report(
      new TypeError(
        `returned ${
          describeValue(produced)
        }; onIsoIn returns an array with one entry per packet`,
      ),
      name,
    );
    return allFailed(packets, new Uint8Array(urb.length));
  }
  if (produced.length > packets.length) {
    ctx.report(
      new RangeError(
        `returned ${produced.length} packets for a URB of ${packets.length}; the extra ones are dropped`,
      ),
      name,
    );
  }
  const buffer = new Uint8Array(urb.length);
  const results: IsoResultPacket[] = packets.map((p, i) => {
    const entry: unknown = produced[i];
    let data: Uint8Array | undefined;
    let status = 0;
    if (entry === undefined) data = new Uint8Array(0);
    else if (entry instanceof Uint8Array || Array.isArray(entry)) {
      data = asBytes(entry);
    } else if (typeof entry === "object" && entry !== null) {
      const packet = entry as Exclude<
        IsoInPacket,
        Uint8Array | readonly number[]
      >;
      data = packet.data === undefined
        ? new Uint8Array(0)
        : asBytes(packet.data);
      const s: unknown = packet.status;
      if (s !== undefined) {
        if (typeof s !== "number" || !Number.isInteger(s) || s > 0) {
          ctx.report(
            new TypeError(
              `packet ${i} has status ${
                describeValue(s)
              }; a status is 0 or a negative errno`,
            ),
            name,
          );
          status = UrbStatus.protocolError;
          data = new Uint8Array(0);
        } else status = s === 0 ? 0 : s; // -0 is 0
      }
    }
    if (data === undefined) {
      ctx.report(
        new TypeError(
          `packet ${i} is ${
            describeValue(entry)
          }; a packet is a Uint8Array or { data, status }`,
        ),
        name,
      );
      return failedPacket(p);
    }
    if (data.length > p.length) {
      // Babble: more than the host asked for in this packet.
      return {
        offset: p.offset,
        length: p.length,
        actualLength: 0,
        status: UrbStatus.babble,
      };
    }
    buffer.set(data, p.offset);
    return {
      offset: p.offset,
      length: p.length,
      actualLength: data.length,
      status,
    };
  });
  return isoResult(results, buffer);
}

async function isoOut(
  ep: EndpointModel,
  urb: EmulatedUrb,
  packets: readonly { offset: number; length: number }[],
  ctx: TransferContext,
): Promise<EmulatedUrbResult> {
  const name = handlerName(ep, "onIsoOut");
  const data = urb.data ?? new Uint8Array(0);
  const chunks = packets.map((p) => data.slice(p.offset, p.offset + p.length));
  let statuses: unknown;
  try {
    if (ep.onIsoOut !== undefined) {
      statuses = await ep.onIsoOut(chunks, ctx.info);
    }
  } catch (e) {
    if (ctx.info.signal.aborted) throw e;
    ctx.report(e, name);
    return allFailed(packets);
  }
  if (statuses !== undefined && !Array.isArray(statuses)) {
    ctx.report(
      new TypeError(
        `returned ${
          describeValue(statuses)
        }; onIsoOut returns nothing or one status per packet`,
      ),
      name,
    );
    statuses = undefined;
  }
  const results = packets.map((p, i): IsoResultPacket => {
    const s: unknown = (statuses as unknown[] | undefined)?.[i] ?? 0;
    if (typeof s !== "number" || !Number.isInteger(s) || s > 0) {
      ctx.report(
        new TypeError(
          `status ${
            describeValue(s)
          } for packet ${i}; a status is 0 or a negative errno`,
        ),
        name,
      );
      return failedPacket(p);
    }
    return {
      offset: p.offset,
      length: p.length,
      actualLength: s === 0 ? p.length : 0,
      status: s === 0 ? 0 : s, // -0 is 0
    };
  });
  return isoResult(results, undefined);
}

function checkLayout(
  packets: EmulatedUrb["isoPackets"],
  bufferLength: number,
): string | undefined {
  if (!Array.isArray(packets)) {
    return "an isochronous URB without isoPackets";
  }
  for (const [i, p] of packets.entries()) {
    if (
      !Number.isInteger(p?.offset) || !Number.isInteger(p?.length) ||
      p.offset < 0 || p.length < 0 || p.offset + p.length > bufferLength
    ) {
      return `isoPackets[${i}] ${
        describeValue(p)
      } is outside the ${bufferLength}-byte transfer buffer`;
    }
  }
  return undefined;
}

function isoResult(
  packets: IsoResultPacket[],
  data: Uint8Array | undefined,
): EmulatedUrbResult {
  const result: EmulatedUrbResult = {
    status: UrbStatus.ok,
    actualLength: packets.reduce((n, p) => n + p.actualLength, 0),
    isoPackets: packets,
    errorCount: packets.filter((p) => p.status !== 0).length,
  };
  if (data !== undefined) result.data = data;
  return result;
}

function failedPacket(p: { offset: number; length: number }): IsoResultPacket {
  return {
    offset: p.offset,
    length: p.length,
    actualLength: 0,
    status: UrbStatus.protocolError,
  };
}

function allFailed(
  packets: readonly { offset: number; length: number }[],
  data?: Uint8Array,
): EmulatedUrbResult {
  return isoResult(packets.map(failedPacket), data);
}

function inResult(data: Uint8Array, urb: EmulatedUrb): EmulatedUrbResult {
  const short = data.length < urb.length &&
    (urb.transferFlags & TransferFlags.shortNotOk) !== 0;
  return {
    status: short ? UrbStatus.shortNotOk : UrbStatus.ok,
    data,
    actualLength: data.length,
  };
}

function stalled(ctx: TransferContext): EmulatedUrbResult {
  ctx.halt();
  return STALLED;
}

function failed(
  error: unknown,
  name: string,
  ctx: TransferContext,
): EmulatedUrbResult {
  // After an unlink the URB is already complete: drop what the handler did.
  if (ctx.info.signal.aborted) throw error;
  ctx.report(error, name);
  return stalled(ctx);
}

/**
 * Bytes from a handler's result: a `Uint8Array` (copied, so the handler may
 * reuse its buffer) or an array of byte values; undefined for anything else.
 *
 * @param value what a handler returned
 * @returns a copy, or undefined
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { asBytes } from "./transfers.ts";
 * assert.deepEqual([...asBytes([1, 2])!], [1, 2]);
 * assert.equal(asBytes("x"), undefined);
 * assert.equal(asBytes([1, 256]), undefined);
 * ```
 */
export function asBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value.slice();
  if (
    Array.isArray(value) &&
    value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)
  ) {
    return Uint8Array.from(value);
  }
  return undefined;
}
