/**
 * The behaviour of an emulated device: the functions a definition gives for
 * control requests and for transfers on its endpoints.
 *
 * The rules every handler follows:
 * - it may be `async` and take as long as it needs (an interrupt IN endpoint
 *   with nothing to report simply waits);
 * - it gets an `AbortSignal` (`info.signal`), aborted when the host unlinks
 *   the URB, resets or reconfigures the device, or the device is closed. The
 *   URB completes at once either way; a handler that keeps going has its
 *   result dropped;
 * - to refuse, it returns {@linkcode STALL} (`"stall"`): a control request
 *   stalls (only that request), a bulk or interrupt endpoint halts until the
 *   host clears the halt;
 * - if it throws, the device reports the error through `onError` and stalls
 *   the same way (isochronous packets fail with -EPROTO instead: isochronous
 *   endpoints have no halt). The device keeps running.
 *
 * @module
 */

/**
 * What a handler returns to stall: the request (control) or the endpoint
 * (bulk, interrupt).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STALL } from "./handlers.ts";
 * assert.equal(STALL, "stall");
 * ```
 */
export const STALL = "stall" as const;

/**
 * The type of {@linkcode STALL}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Stall } from "./handlers.ts";
 * const s: Stall = "stall";
 * assert.equal(s, "stall");
 * ```
 */
export type Stall = typeof STALL;

/**
 * A control request, decoded from its setup packet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSetup } from "./setup.ts";
 * const r = parseSetup(new Uint8Array([0xc0, 0x5b, 1, 0, 2, 0, 4, 0]));
 * assert.equal(r.requestType, "vendor");
 * assert.equal(r.direction, "in");
 * assert.equal(r.length, 4);
 * ```
 */
export interface ControlRequest {
  /** Data stage direction (bit 7 of `bmRequestType`). */
  readonly direction: "in" | "out";
  /** Bits 6:5 of `bmRequestType`. */
  readonly requestType: "standard" | "class" | "vendor" | "reserved";
  /** Bits 4:0 of `bmRequestType`. */
  readonly recipient: "device" | "interface" | "endpoint" | "other";
  /** `bRequest`. */
  readonly request: number;
  /** `wValue`. */
  readonly value: number;
  /** `wIndex`. */
  readonly index: number;
  /** `wLength`: the most bytes an IN request may return, the size of an OUT request's data. */
  readonly length: number;
  /** OUT requests: the data stage (`length` bytes). Empty for IN. */
  readonly data: Uint8Array;
  /** The 8-byte setup packet. */
  readonly setup: Uint8Array;
}

/**
 * What a control handler learns besides the request.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ControlInfo } from "./handlers.ts";
 * const info: ControlInfo = { signal: new AbortController().signal, configuration: 1, speed: "high" };
 * assert.equal(info.configuration, 1);
 * ```
 */
export interface ControlInfo {
  /** Aborted when the URB is unlinked, the device reset or closed. */
  readonly signal: AbortSignal;
  /** The current configuration value, 0 while unconfigured. */
  readonly configuration: number;
  /** The device's speed. */
  readonly speed: "low" | "full" | "high" | "super";
}

/**
 * What a control handler returns:
 * - IN requests: the data (cut to `wLength` by the model), or `"stall"`;
 * - OUT requests: nothing (accepted) or `"stall"`;
 * - `undefined` from an IN handler is a mistake: reported and stalled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ControlResult } from "./handlers.ts";
 * const results: ControlResult[] = [new Uint8Array([1]), [1, 2], "stall", undefined];
 * assert.equal(results.length, 4);
 * ```
 */
export type ControlResult =
  | Uint8Array
  | readonly number[]
  | Stall
  | void
  | undefined;

/**
 * Handles class and vendor control requests (and, for an interface, standard
 * requests the model does not answer itself).
 *
 * @example A vendor request that reads back what an earlier one wrote
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ControlHandler } from "./handlers.ts";
 * let stored = new Uint8Array(0);
 * const control: ControlHandler = (req) => {
 *   if (req.requestType !== "vendor") return "stall";
 *   if (req.direction === "in") return stored;
 *   stored = req.data.slice();
 *   return undefined; // accepted
 * };
 * assert.equal(typeof control, "function");
 * ```
 */
export type ControlHandler = (
  request: ControlRequest,
  info: ControlInfo,
) => ControlResult | Promise<ControlResult>;

/**
 * What a bulk, interrupt or isochronous handler learns about its transfer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferInfo } from "./handlers.ts";
 * function describe(info: TransferInfo): string {
 *   return `0x${info.endpoint.toString(16)} ${info.type}, ${info.maxPacketSize} bytes per packet`;
 * }
 * assert.equal(typeof describe, "function");
 * ```
 */
export interface TransferInfo {
  /** Aborted when the URB is unlinked, the endpoint goes away (SET_CONFIGURATION, SET_INTERFACE), the device is reset or closed. */
  readonly signal: AbortSignal;
  /** The endpoint address (0x81 for IN 1). */
  readonly endpoint: number;
  /** The endpoint's transfer type. */
  readonly type: "bulk" | "interrupt" | "isochronous";
  /** Bytes per packet (`wMaxPacketSize` bits 10:0). */
  readonly maxPacketSize: number;
  /** The URB's `transfer_flags` (see {@linkcode TransferFlags}). */
  readonly transferFlags: number;
  /** The current configuration value. */
  readonly configuration: number;
  /** The interface the endpoint belongs to. */
  readonly interfaceNumber: number;
  /** That interface's current alternate setting. */
  readonly alternate: number;
  /** The service interval in microseconds (periodic endpoints), 0 for bulk. */
  readonly intervalMicroseconds: number;
}

/**
 * What an IN handler returns: the data of one transfer (at most `length`
 * bytes; fewer is a short transfer), or `"stall"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { InHandlerResult } from "./handlers.ts";
 * const r: InHandlerResult = new Uint8Array([1, 2, 3]);
 * assert.ok(r instanceof Uint8Array);
 * ```
 */
export type InHandlerResult = Uint8Array | readonly number[] | Stall;

/**
 * A bulk or interrupt IN handler: called once per URB with the number of
 * bytes the host asked for. Returning more than `length` bytes is babble
 * (the URB ends with -EOVERFLOW and the first `length` bytes).
 *
 * @example A counter that waits when there is nothing to say
 * ```ts
 * import assert from "node:assert/strict";
 * import type { InHandler } from "./handlers.ts";
 * let n = 0;
 * const onIn: InHandler = (length) => new Uint8Array(Math.min(length, 4)).fill(n++);
 * assert.equal(typeof onIn, "function");
 * ```
 */
export type InHandler = (
  length: number,
  info: TransferInfo,
) => InHandlerResult | Promise<InHandlerResult>;

/**
 * What an OUT handler returns: nothing (the data is accepted) or `"stall"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { OutHandlerResult } from "./handlers.ts";
 * const r: OutHandlerResult = undefined;
 * assert.equal(r, undefined);
 * ```
 */
export type OutHandlerResult = Stall | void | undefined;

/**
 * A bulk or interrupt OUT handler: called once per URB with its data (a
 * copy the handler may keep).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { OutHandler } from "./handlers.ts";
 * const received: Uint8Array[] = [];
 * const onOut: OutHandler = (data) => { received.push(data); };
 * assert.equal(typeof onOut, "function");
 * ```
 */
export type OutHandler = (
  data: Uint8Array,
  info: TransferInfo,
) => OutHandlerResult | Promise<OutHandlerResult>;

/**
 * One isochronous IN packet as a handler produces it: the data (at most the
 * requested length; empty is a zero-length packet), or an object that can
 * also carry an error status such as -71 (EPROTO) to simulate a bad packet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { IsoInPacket } from "./handlers.ts";
 * const packets: IsoInPacket[] = [new Uint8Array(192), new Uint8Array(0), { status: -71 }];
 * assert.equal(packets.length, 3);
 * ```
 */
export type IsoInPacket =
  | Uint8Array
  | readonly number[]
  | { data?: Uint8Array | readonly number[]; status?: number };

/**
 * An isochronous IN handler: given the requested length of each packet of
 * one URB, returns one entry per packet (missing entries are empty
 * packets). A packet longer than requested is babble: its status is
 * -EOVERFLOW and its length 0.
 *
 * @example 48 kHz stereo 16-bit audio at full speed: 192 bytes per 1 ms frame
 * ```ts
 * import assert from "node:assert/strict";
 * import type { IsoInHandler } from "./handlers.ts";
 * const onIsoIn: IsoInHandler = (packets) => packets.map((p) => new Uint8Array(Math.min(192, p.length)));
 * assert.equal(typeof onIsoIn, "function");
 * ```
 */
export type IsoInHandler = (
  packets: readonly { readonly length: number }[],
  info: TransferInfo,
) => readonly IsoInPacket[] | Promise<readonly IsoInPacket[]>;

/**
 * An isochronous OUT handler: receives the packets of one URB (copies).
 * It may return a status per packet (0, or a negative errno to mark a
 * packet bad); nothing means all were received.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { IsoOutHandler } from "./handlers.ts";
 * let samples = 0;
 * const onIsoOut: IsoOutHandler = (packets) => { for (const p of packets) samples += p.length / 4; };
 * assert.equal(typeof onIsoOut, "function");
 * ```
 */
export type IsoOutHandler = (
  packets: readonly Uint8Array[],
  info: TransferInfo,
) =>
  | readonly number[]
  | void
  | undefined
  | Promise<readonly number[] | void | undefined>;

/**
 * A state change of an emulated device, for `onEvent`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EmulatedDeviceEvent } from "./handlers.ts";
 * const seen: string[] = [];
 * const onEvent = (e: EmulatedDeviceEvent) => { seen.push(e.type); };
 * onEvent({ type: "configuration", value: 1 });
 * assert.deepEqual(seen, ["configuration"]);
 * ```
 */
export type EmulatedDeviceEvent =
  | { readonly type: "address"; readonly address: number }
  | { readonly type: "configuration"; readonly value: number }
  | {
    readonly type: "interface";
    readonly interfaceNumber: number;
    readonly alternate: number;
  }
  | {
    readonly type: "halt";
    readonly endpoint: number;
    readonly halted: boolean;
  }
  | { readonly type: "remote-wakeup"; readonly enabled: boolean }
  | { readonly type: "reset" }
  | { readonly type: "close" };
