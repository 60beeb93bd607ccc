/**
 * Endpoint descriptors (USB 2.0 §9.6.6) and SuperSpeed endpoint companions
 * (USB 3.2 §9.6.7), with the kernel's corrections of out-of-range values
 * (drivers/usb/core/config.c, usb_parse_endpoint and
 * usb_parse_ss_endpoint_companion).
 *
 * @module
 */

import { invalid, type Reader } from "./reader.ts";
import type {
  Correction,
  EndpointDescriptor,
  EndpointType,
  Speed,
  SsEndpointCompanion,
} from "./types.ts";

/** `USB_DT_ENDPOINT_SIZE`, ch9.h. */
export const USB_DT_ENDPOINT_SIZE = 7;
/** `USB_DT_ENDPOINT_AUDIO_SIZE`: audio endpoints add bRefresh and bSynchAddress. */
export const USB_DT_ENDPOINT_AUDIO_SIZE = 9;
/** `USB_DT_SS_EP_COMP_SIZE`, ch9.h. */
export const USB_DT_SS_EP_COMP_SIZE = 6;

const ENDPOINT_TYPES: readonly EndpointType[] = [
  "control",
  "isochronous",
  "bulk",
  "interrupt",
];
const SYNC_TYPES = ["none", "asynchronous", "adaptive", "synchronous"] as const;
const ISO_USAGES = [
  "data",
  "feedback",
  "implicit-feedback",
  "reserved",
] as const;
const INT_USAGES = [
  "periodic",
  "notification",
  "reserved",
  "reserved",
] as const;

/** Largest wMaxPacketSize per speed and type, config.c (*_maxpacket_maxes). */
const MAXPACKET: Readonly<
  Record<Speed, Readonly<Record<EndpointType, number>>>
> = {
  low: { control: 8, isochronous: 0, bulk: 0, interrupt: 8 },
  full: { control: 64, isochronous: 1023, bulk: 64, interrupt: 64 },
  high: { control: 64, isochronous: 1024, bulk: 1024, interrupt: 1024 },
  super: { control: 512, isochronous: 1024, bulk: 1024, interrupt: 1024 },
  "super-plus": {
    control: 512,
    isochronous: 1024,
    bulk: 1024,
    interrupt: 1024,
  },
};

/** Mutable twin of {@linkcode EndpointDescriptor}, filled by the walker. */
export type EndpointDraft =
  & { -readonly [K in keyof EndpointDescriptor]: EndpointDescriptor[K] }
  & { extra: import("./types.ts").RawDescriptor[] };

/** The index of the highest bit set, 1-based; 0 for 0 (the kernel's fls). */
function fls(n: number): number {
  return n === 0 ? 0 : 32 - Math.clz32(n);
}

/**
 * The `bInterval` the kernel uses for an endpoint at a speed: the device's
 * value when it is in range, otherwise config.c's replacement (for a
 * high-speed interrupt endpoint, `fls(bInterval * 8)` or 7, i.e. 8 ms).
 *
 * @param type the transfer type
 * @param interval the device's `bInterval`
 * @param speed the speed the device runs at
 * @returns the value in force
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelInterval } from "../descriptors.ts";
 * assert.equal(kernelInterval("interrupt", 0, "high"), 7); // 8 ms
 * assert.equal(kernelInterval("interrupt", 255, "high"), 11); // 128 ms
 * assert.equal(kernelInterval("interrupt", 0, "full"), 10);
 * assert.equal(kernelInterval("isochronous", 4, "high"), 4);
 * assert.equal(kernelInterval("bulk", 0, "high"), 0);
 * ```
 */
export function kernelInterval(
  type: EndpointType,
  interval: number,
  speed: Speed,
): number {
  let min = 0;
  let max = 255;
  let fallback = interval;
  if (type === "interrupt") {
    min = 1;
    if (speed === "low" || speed === "full") {
      fallback = 10;
    } else {
      // "Many device manufacturers are using full-speed bInterval values in
      // high-speed interrupt endpoint descriptors."
      fallback = fls(interval * 8) || 7;
      max = 16;
    }
  } else if (type === "isochronous") {
    min = 1;
    max = 16;
    fallback = speed === "high" ? 7 : 4;
  }
  return interval < min || interval > max ? fallback : interval;
}

/**
 * Reads an endpoint descriptor of `len` bytes at `at`, applying the
 * kernel's corrections when the reader knows the speed.
 *
 * @param r the reader
 * @param at where it starts
 * @param len its `bLength` (7 or more)
 * @param alternateSetting the alternate setting it belongs to (isochronous
 *   endpoints of setting 0 may have a zero wMaxPacketSize)
 * @returns the endpoint, with empty extras and no companion yet
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Reader } from "./reader.ts";
 * import { endpointAt } from "./endpoint.ts";
 * const r = new Reader(new Uint8Array([7, 5, 0x02, 2, 0, 2, 0]), false, "low");
 * const ep = endpointAt(r, 0, 7, 0);
 * assert.equal(ep.type, "interrupt"); // low-speed bulk: the kernel makes it interrupt
 * assert.deepEqual(ep.corrections.map((c) => c.field), ["bmAttributes", "bInterval", "wMaxPacketSize"]);
 * ```
 */
export function endpointAt(
  r: Reader,
  at: number,
  len: number,
  alternateSetting: number,
): EndpointDraft {
  const address = r.u8(at + 2);
  const attributes = r.u8(at + 3);
  const wMaxPacketSize = r.u16(at + 4);
  const interval = r.u8(at + 6);
  const rawType = ENDPOINT_TYPES[attributes & 0x03] ?? "control"; // USB_ENDPOINT_XFERTYPE_MASK
  const periodicRaw = rawType === "isochronous" || rawType === "interrupt";
  const mult = (wMaxPacketSize >> 11) & 0x3; // USB_EP_MAXP_MULT
  if (r.strict && (address & 0x0f) === 0) {
    throw invalid(
      at + 2,
      "endpoint address 0 is the default control pipe, not a descriptor",
    );
  }
  if (r.strict && periodicRaw && mult === 3) {
    throw invalid(at + 4, "wMaxPacketSize bits 12:11 are 3 (reserved)");
  }

  const corrections: Correction[] = [];
  const fix = (field: string, raw: number, inForce: number) => {
    if (raw === inForce) return;
    corrections.push({ field, raw, inForce });
    r.warn(
      at,
      `endpoint 0x${
        (address & 0x8f).toString(16)
      }: the kernel changes ${field} from ${raw} to ${inForce}`,
    );
  };
  let type = rawType;
  let intervalInForce = interval;
  let maxp = wMaxPacketSize;
  const speed = r.speed;
  if (speed !== undefined) {
    intervalInForce = kernelInterval(rawType, interval, speed);
    fix("bInterval", interval, intervalInForce);
    if (speed === "low" && rawType === "bulk") {
      // "Some buggy low-speed devices have Bulk endpoints ... treating them
      // as Interrupt endpoints": type interrupt, bInterval 1, maxp <= 8.
      type = "interrupt";
      corrections.unshift({
        field: "bmAttributes",
        raw: attributes,
        inForce: 0x03,
      });
      r.warn(
        at,
        `endpoint is bulk at low speed; the kernel makes it interrupt`,
      );
      if (intervalInForce !== 1) {
        corrections.push({
          field: "bInterval",
          raw: interval,
          inForce: 1,
        });
      }
      intervalInForce = 1;
      if ((maxp & 0x7ff) > 8) {
        corrections.push({ field: "wMaxPacketSize", raw: maxp, inForce: 8 });
      }
      maxp = (maxp & 0x7ff) > 8 ? 8 : maxp;
    } else {
      const periodic = rawType === "isochronous" || rawType === "interrupt";
      const multBits = speed === "high" && periodic ? maxp & 0x1800 : 0;
      const size = maxp & ~multBits & 0xffff;
      const limit = MAXPACKET[speed][rawType];
      if (size > limit) {
        fix("wMaxPacketSize", maxp, multBits | limit);
        maxp = multBits | limit;
      }
    }
    if (
      (maxp & 0x7ff) === 0 &&
      !(rawType === "isochronous" && alternateSetting === 0)
    ) {
      r.warn(at, `endpoint has invalid wMaxPacketSize 0`);
    }
  }
  const periodic = type === "isochronous" || type === "interrupt";
  return {
    address,
    endpointNumber: address & 0x0f, // USB_ENDPOINT_NUMBER_MASK
    direction: (address & 0x80) !== 0 ? "in" : "out", // USB_ENDPOINT_DIR_MASK
    type,
    attributes,
    packetSize: maxp & 0x07ff, // USB_ENDPOINT_MAXP_MASK
    transactionsPerMicroframe: periodic ? ((maxp >> 11) & 0x3) + 1 : 1,
    interval,
    intervalInForce,
    corrections,
    synchronization: type === "isochronous"
      ? SYNC_TYPES[(attributes >> 2) & 0x3]
      : undefined,
    usage: type === "isochronous"
      ? ISO_USAGES[(attributes >> 4) & 0x3]
      : type === "interrupt"
      ? INT_USAGES[(attributes >> 4) & 0x3]
      : undefined,
    refresh: len >= USB_DT_ENDPOINT_AUDIO_SIZE ? r.u8(at + 7) : undefined,
    synchAddress: len >= USB_DT_ENDPOINT_AUDIO_SIZE ? r.u8(at + 8) : undefined,
    companion: undefined,
    extra: [],
    offset: at,
    raw: r.slice(at, at + len),
  };
}

/**
 * Reads a SuperSpeed endpoint companion at `at` for endpoint `ep`, with
 * the kernel's corrections (bMaxBurst, bmAttributes, wBytesPerInterval).
 *
 * @param r the reader
 * @param at where it starts (its `bLength` is at least 6)
 * @param ep the endpoint it follows
 * @returns the companion
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Reader } from "./reader.ts";
 * import { companionAt, endpointAt } from "./endpoint.ts";
 * // An interrupt IN endpoint of 8 bytes whose companion says 0 bytes per interval.
 * const r = new Reader(new Uint8Array([7, 5, 0x81, 3, 8, 0, 4, 6, 0x30, 0, 0, 0, 0]), false, "super");
 * const c = companionAt(r, 7, endpointAt(r, 0, 7, 0));
 * assert.deepEqual(c.corrections, [{ field: "wBytesPerInterval", raw: 0, inForce: 8 }]);
 * ```
 */
export function companionAt(
  r: Reader,
  at: number,
  ep: Pick<EndpointDescriptor, "type" | "packetSize" | "direction" | "address">,
): SsEndpointCompanion {
  const maxBurst = r.u8(at + 2);
  const attributes = r.u8(at + 3);
  const bytesPerInterval = r.u16(at + 4);
  const corrections: Correction[] = [];
  const fix = (field: string, raw: number, inForce: number) => {
    corrections.push({ field, raw, inForce });
    r.warn(
      at,
      `companion of endpoint 0x${
        ep.address.toString(16)
      }: the kernel changes ${field} from ${raw} to ${inForce}`,
    );
  };
  let attrs = attributes;
  if (r.speed !== undefined) {
    // config.c usb_parse_ss_endpoint_companion, in its order.
    if (ep.type === "control" && maxBurst !== 0) {
      fix("bMaxBurst", maxBurst, 0);
    } else if (maxBurst > 15) {
      fix("bMaxBurst", maxBurst, 15);
    }
    const sspComp = (attributes & 0x80) !== 0;
    if (
      (ep.type === "control" || ep.type === "interrupt") && attributes !== 0
    ) {
      attrs = 0;
      fix("bmAttributes", attributes, 0);
    } else if (ep.type === "bulk" && attributes > 16) {
      attrs = 16;
      fix("bmAttributes", attributes, 16);
    } else if (
      ep.type === "isochronous" && !sspComp && (attributes & 0x3) + 1 > 3
    ) {
      attrs = 2;
      fix("bmAttributes", attributes, 2);
    }
    // The kernel computes max_tx from the raw bMaxBurst and bmAttributes.
    const maxTx = ep.type === "isochronous"
      ? (maxBurst + 1) * ((attributes & 0x3) + 1) * ep.packetSize
      : ep.type === "interrupt"
      ? ep.packetSize * (maxBurst + 1)
      : 999999;
    if (
      bytesPerInterval > maxTx ||
      (bytesPerInterval < ep.packetSize && ep.type === "interrupt" &&
        ep.direction === "in")
    ) {
      fix("wBytesPerInterval", bytesPerInterval, maxTx & 0xffff);
    }
  }
  const streamsExp = attrs & 0x1f; // usb_ss_max_streams
  return {
    maxBurst,
    attributes,
    maxStreams: ep.type === "bulk" && streamsExp !== 0 ? 2 ** streamsExp : 0,
    mult: ep.type === "isochronous" ? (attrs & 0x3) + 1 : 1, // USB_SS_MULT
    sspIsochCompanion: ep.type === "isochronous" && (attrs & 0x80) !== 0, // USB_SS_SSP_ISOC_COMP
    bytesPerInterval,
    corrections,
    offset: at,
    raw: r.slice(at, at + r.u8(at)),
  };
}
