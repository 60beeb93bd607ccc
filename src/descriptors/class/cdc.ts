/**
 * CDC functional descriptors (USB CDC 1.2 §5.2.3; ECM 1.2 §5.4; NCM 1.0
 * §5.2.1; MBIM 1.0 §6.4), decoded as `lsusb -v` shows them.
 *
 * @module
 */

import type { ClassContext, ClassDecoder } from "../types.ts";
import { bitNames, FieldList, guid } from "./fields.ts";

/** `USB_CLASS_COMM`. */
const USB_CLASS_COMM = 0x02;
/** `USB_DT_CS_INTERFACE`. */
const CS_INTERFACE = 0x24;
/** Wireless controllers (class 0xe0) carry CDC functional descriptors too (RNDIS). */
const USB_CLASS_WIRELESS = 0xe0;
/** Miscellaneous (0xef) subclass 4: RNDIS over Ethernet. */
const USB_CLASS_MISC = 0xef;
/** CDC data interfaces: functional descriptors may follow them in some devices. */
const USB_CLASS_CDC_DATA = 0x0a;

function isCdc(ctx: ClassContext): boolean {
  return ctx.interfaceClass === USB_CLASS_COMM ||
    ctx.interfaceClass === USB_CLASS_WIRELESS ||
    ctx.interfaceClass === USB_CLASS_CDC_DATA ||
    (ctx.interfaceClass === USB_CLASS_MISC && ctx.interfaceSubclass === 4);
}

/**
 * Decodes CDC functional descriptors (class-specific interface
 * descriptors, type 0x24) of communications interfaces: Header, Call
 * Management, ACM, Union, Country Selection, Network Channel Terminal,
 * Ethernet (with `iMACAddress`), WHCM, MDLM, Device Management, OBEX, NCM,
 * MBIM and MBIM Extended. A descriptor of the wrong length for its subtype
 * is left raw (lsusb calls it INVALID CDC).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cdcDecoder } from "./cdc.ts";
 * const ctx = { interfaceClass: 2, interfaceSubclass: 2, interfaceProtocol: 1, placement: "interface" } as const;
 * const union = cdcDecoder.decode(new Uint8Array([5, 0x24, 6, 0, 1]), ctx)!;
 * assert.equal(union.name, "CDC Union");
 * assert.deepEqual(union.fields.slice(3).map((f) => f.value), [0, "1"]);
 * ```
 */
export const cdcDecoder: ClassDecoder = {
  name: "cdc",
  decode(raw, ctx) {
    if (raw[1] !== CS_INTERFACE || raw.length < 3 || !isCdc(ctx)) {
      return undefined;
    }
    if (ctx.placement === "endpoint") return undefined;
    const f = new FieldList(raw);
    f.header();
    f.u8("bDescriptorSubtype", 2);
    const len = raw.length;
    switch (raw[2]) {
      case 0x00:
        if (len !== 5) return undefined;
        f.bcd("bcdCDC", 3);
        return f.done("CDC Header", "cdc");
      case 0x01:
        if (len !== 5) return undefined;
        f.u8(
          "bmCapabilities",
          3,
          (v) => bitNames(v, ["call management", "use DataInterface"]),
        );
        f.u8("bDataInterface", 4);
        return f.done("CDC Call Management", "cdc");
      case 0x02:
        if (len !== 4) return undefined;
        f.u8("bmCapabilities", 3, (v) =>
          bitNames(v, [
            "get/set/clear comm features",
            "line coding and serial state",
            "sends break",
            "connection notifications",
          ]));
        return f.done("CDC ACM", "cdc");
      case 0x06: {
        if (len < 5) return undefined;
        f.u8("bMasterInterface", 3);
        f.text("bSlaveInterface", Array.from(raw.subarray(4)).join(" "));
        return f.done("CDC Union", "cdc");
      }
      case 0x07: {
        if (len < 6 || len % 2 !== 0) return undefined;
        f.str("iCountryCodeRelDate", 3);
        for (let at = 4; at + 1 < len; at += 2) f.u16("wCountryCode", at);
        return f.done("Country Selection", "cdc");
      }
      case 0x08:
        if (len !== 4) return undefined;
        f.u8(
          "bmCapabilities",
          3,
          (v) =>
            bitNames(v, [
              "simple mode",
              "standalone mode",
              "computer centric mode",
            ]),
        );
        return f.done("CDC Telephone operations", "cdc");
      case 0x0a:
        if (len !== 7) return undefined;
        f.u8("bEntityId", 3);
        f.str("iName", 4);
        f.u8("bChannelIndex", 5);
        f.u8("bPhysicalInterface", 6);
        return f.done("Network Channel Terminal", "cdc");
      case 0x0f:
        if (len !== 13) return undefined;
        f.str("iMacAddress", 3);
        f.u32("bmEthernetStatistics", 4);
        f.u16("wMaxSegmentSize", 8);
        f.u16("wNumberMCFilters", 10);
        f.u8("bNumberPowerFilters", 12);
        return f.done("CDC Ethernet", "cdc");
      case 0x11:
        if (len !== 5) return undefined;
        f.bcd("bcdVersion", 3);
        return f.done("CDC WHCM", "cdc");
      case 0x12:
        if (len !== 21) return undefined;
        f.bcd("bcdCDC", 3);
        f.text("bGUID", guid(raw.subarray(5, 21)));
        return f.done("CDC MDLM", "cdc");
      case 0x13:
        if (len < 5) return undefined;
        f.u8("bGuidDescriptorType", 3);
        f.text(
          "bDetailData",
          Array.from(raw.subarray(4), (b) => b.toString(16).padStart(2, "0"))
            .join(" "),
        );
        return f.done("CDC MDLM detail", "cdc");
      case 0x14:
        if (len !== 7) return undefined;
        f.bcd("bcdVersion", 3);
        f.u16("wMaxCommand", 5);
        return f.done("CDC Device Management", "cdc");
      case 0x15:
        if (len !== 5) return undefined;
        f.bcd("bcdVersion", 3);
        return f.done("CDC OBEX", "cdc");
      case 0x16:
        if (len !== 22) return undefined;
        f.bcd("bcdVersion", 3);
        f.str("iCommandSet", 5);
        f.text("bGUID", guid(raw.subarray(6, 22)));
        return f.done("CDC Command Set", "cdc");
      case 0x1a:
        if (len !== 6) return undefined;
        f.bcd("bcdNcmVersion", 3);
        f.u8("bmNetworkCapabilities", 5, (v) =>
          bitNames(v, [
            "packet filter",
            "net address",
            "encapsulated commands",
            "max datagram size",
            "crc mode",
            "8-byte ntb input size",
          ]));
        return f.done("CDC NCM", "cdc");
      case 0x1b:
        if (len !== 12) return undefined;
        f.bcd("bcdMBIMVersion", 3);
        f.u16("wMaxControlMessage", 5);
        f.u8("bNumberFilters", 7);
        f.u8("bMaxFilterSize", 8);
        f.u16("wMaxSegmentSize", 9);
        f.u8(
          "bmNetworkCapabilities",
          11,
          (v) =>
            bitNames(v, [
              undefined,
              undefined,
              undefined,
              "max datagram size",
              undefined,
              "8-byte ntb input size",
            ]),
        );
        return f.done("CDC MBIM", "cdc");
      case 0x1c:
        if (len !== 8) return undefined;
        f.bcd("bcdMBIMExtendedVersion", 3);
        f.u8("bMaxOutstandingCommandMessages", 5);
        f.u16("wMTU", 6);
        return f.done("CDC MBIM Extended", "cdc");
      default:
        return undefined;
    }
  },
};
