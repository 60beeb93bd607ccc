/**
 * Reading capture files back: pcap and pcapng of link type 220 (what
 * {@linkcode Capture} and `usb capture` write), decoded to usbmon events,
 * and a one-line description of an event for the terminal (recipe reports
 * show the last packets of a failed step with it).
 *
 * @module
 */

import { errnoName } from "../errors.ts";
import { hex } from "../validate.ts";
import {
  decodeUsbmonEvent,
  LINKTYPE_USB_LINUX_MMAPPED,
  type UsbmonEvent,
} from "./usbmon_header.ts";

/**
 * One packet of a capture file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CapturedPacket } from "./read.ts";
 * const first = (packets: CapturedPacket[]) => packets[0]?.number;
 * assert.equal(first([]), undefined);
 * ```
 */
export interface CapturedPacket {
  /** 1-based, as Wireshark numbers frames. */
  number: number;
  /** The usbmon event. */
  event: UsbmonEvent;
}

function bad(why: string): Error {
  return new Error(`not a usbmon capture file: ${why}`);
}

/**
 * Decodes a pcap or pcapng file (little-endian, link type 220).
 *
 * @throws {Error} when the bytes are not such a file
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Capture } from "./capture.ts";
 * import { readCapture } from "./read.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".pcap" });
 * const cap = Capture.open(path);
 * cap.endEvent(cap.beginEvent(0, 0x53, 3, 0x02, 4, 1, 9), 0, 0);
 * cap.close();
 * const [p] = readCapture(Deno.readFileSync(path));
 * assert.equal(p!.event.type, "S");
 * assert.equal(p!.event.devnum, 4);
 * Deno.removeSync(path);
 * ```
 */
export function readCapture(bytes: Uint8Array): CapturedPacket[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: CapturedPacket[] = [];
  if (bytes.length < 24) throw bad("too short");
  const magic = v.getUint32(0, true);
  if (magic === 0xa1b2c3d4) {
    if (v.getUint32(20, true) !== LINKTYPE_USB_LINUX_MMAPPED) {
      throw bad(`link type ${v.getUint32(20, true)}, not 220`);
    }
    for (let at = 24; at + 16 <= bytes.length;) {
      const caplen = v.getUint32(at + 8, true);
      const body = bytes.subarray(at + 16, at + 16 + caplen);
      out.push({ number: out.length + 1, event: decodeUsbmonEvent(body) });
      at += 16 + caplen;
    }
    return out;
  }
  if (magic !== 0x0a0d0d0a) throw bad("no pcap or pcapng magic");
  const linkTypes: number[] = [];
  for (let at = 0; at + 12 <= bytes.length;) {
    const type = v.getUint32(at, true);
    const total = v.getUint32(at + 4, true);
    if (total < 12 || at + total > bytes.length) break;
    if (type === 0x0a0d0d0a) linkTypes.length = 0;
    else if (type === 1) linkTypes.push(v.getUint16(at + 8, true));
    else if (type === 6) {
      const iface = v.getUint32(at + 8, true);
      if (linkTypes[iface] === LINKTYPE_USB_LINUX_MMAPPED) {
        const caplen = v.getUint32(at + 20, true);
        const body = bytes.subarray(at + 28, at + 28 + caplen);
        out.push({ number: out.length + 1, event: decodeUsbmonEvent(body) });
      }
    }
    at += total;
  }
  return out;
}

const TYPES = ["iso", "interrupt", "control", "bulk"];

/**
 * One line for an event: number, S/C, transfer type, endpoint, setup,
 * status, length and the first bytes of data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describePacket } from "./read.ts";
 * import type { UsbmonEvent } from "./usbmon_header.ts";
 * const e = { type: "C", xferType: 3, epnum: 0x81, status: -32, length: 0, data: new Uint8Array(0), setup: null } as unknown as UsbmonEvent;
 * assert.equal(describePacket({ number: 7, event: e }), "#7 C bulk 0x81 EPIPE len 0");
 * ```
 */
export function describePacket(p: CapturedPacket, maxBytes = 16): string {
  const e = p.event;
  const parts = [
    `#${p.number}`,
    e.type,
    TYPES[e.xferType] ?? String(e.xferType),
    hex(e.epnum),
  ];
  if (e.setup !== null) {
    const s = new DataView(e.setup.buffer, e.setup.byteOffset, 8);
    parts.push(
      `setup ${hex(s.getUint8(0))} ${hex(s.getUint8(1))} ${
        hex(s.getUint16(2, true), 4)
      } ${hex(s.getUint16(4, true), 4)} ${s.getUint16(6, true)}`,
    );
  }
  if (e.type !== "S") {
    parts.push(e.status === 0 ? "ok" : errnoName(-e.status));
  }
  parts.push(`len ${e.length}`);
  if (e.data.length > 0) {
    const shown = [...e.data.subarray(0, maxBytes)].map((b) =>
      b.toString(16).padStart(2, "0")
    ).join(" ");
    parts[parts.length - 1] += `: ${shown}${
      e.data.length > maxBytes ? " ..." : ""
    }`;
  }
  return parts.join(" ");
}
