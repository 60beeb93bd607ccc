/**
 * HID class descriptors (Device Class Definition for HID 1.11 §6.2.1) and
 * the report descriptor's items (§6.2.2), decoded as `lsusb -v` shows them.
 *
 * @module
 */

import type { ClassDecoder } from "../types.ts";
import { FieldList } from "./fields.ts";

/** `bInterfaceClass` of HID (USB_CLASS_HID). */
const USB_CLASS_HID = 0x03;
/** `HID_DT_HID`, include/linux/hid.h. */
const HID_DT_HID = 0x21;

/** Class descriptor types a HID descriptor lists (HID 1.11 §7.1). */
const HID_TYPES: Readonly<Record<number, string>> = {
  0x21: "HID",
  0x22: "Report",
  0x23: "Physical",
};

/**
 * Decodes the HID descriptor (type 0x21) of a HID interface: `bcdHID`,
 * `bCountryCode`, and each class descriptor it lists (the report
 * descriptor and its length).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hidDecoder } from "./hid.ts";
 * const d = hidDecoder.decode(new Uint8Array([9, 0x21, 0x11, 0x01, 0, 1, 0x22, 63, 0]), {
 *   interfaceClass: 3, interfaceSubclass: 1, interfaceProtocol: 1, placement: "interface",
 * })!;
 * assert.equal(d.fields.find((f) => f.name === "wDescriptorLength")!.value, 63);
 * ```
 */
export const hidDecoder: ClassDecoder = {
  name: "hid",
  decode(raw, ctx) {
    if (
      raw[1] !== HID_DT_HID || raw.length < 6 ||
      ctx.interfaceClass !== USB_CLASS_HID || ctx.placement !== "interface"
    ) {
      return undefined;
    }
    const f = new FieldList(raw);
    f.header();
    f.bcd("bcdHID", 2);
    f.u8("bCountryCode", 4, (v) => v === 0 ? "Not supported" : undefined);
    const n = f.u8("bNumDescriptors", 5) ?? 0;
    for (let i = 0; i < n && 6 + 3 * i + 3 <= raw.length; i++) {
      f.u8("bDescriptorType", 6 + 3 * i, (v) => HID_TYPES[v] ?? "Unknown");
      f.u16("wDescriptorLength", 7 + 3 * i);
    }
    return f.done("HID Device Descriptor", "hid");
  },
};

/**
 * One item of a HID report descriptor (HID 1.11 §6.2.2): its tag, type and
 * data, and for usage pages, usages and collections a name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReportDescriptor } from "./hid.ts";
 * const items = decodeReportDescriptor(new Uint8Array([0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0xc0]));
 * assert.deepEqual(items.map((i) => i.tag), ["Usage Page", "Usage", "Collection", "End Collection"]);
 * assert.equal(items[0]!.note, "Generic Desktop Controls");
 * ```
 */
export interface ReportItem {
  /** Offset of the item's prefix byte. */
  readonly offset: number;
  /** "Main", "Global", "Local" or "Reserved"; "Long" for long items. */
  readonly type: string;
  /** The item's name ("Usage Page", "Input", "Report Size"). */
  readonly tag: string;
  /** The item's data, little-endian (signed for Logical/Physical Minimum/Maximum, Unit Exponent). */
  readonly value: number;
  /** The data's size in bytes (0, 1, 2 or 4). */
  readonly size: number;
  /** A meaning: the usage page's or collection's name, Input/Output/Feature flags. */
  readonly note: string | undefined;
}

const MAIN: Readonly<Record<number, string>> = {
  0x8: "Input",
  0x9: "Output",
  0xb: "Feature",
  0xa: "Collection",
  0xc: "End Collection",
};
const GLOBAL: Readonly<Record<number, string>> = {
  0x0: "Usage Page",
  0x1: "Logical Minimum",
  0x2: "Logical Maximum",
  0x3: "Physical Minimum",
  0x4: "Physical Maximum",
  0x5: "Unit Exponent",
  0x6: "Unit",
  0x7: "Report Size",
  0x8: "Report ID",
  0x9: "Report Count",
  0xa: "Push",
  0xb: "Pop",
};
const LOCAL: Readonly<Record<number, string>> = {
  0x0: "Usage",
  0x1: "Usage Minimum",
  0x2: "Usage Maximum",
  0x3: "Designator Index",
  0x4: "Designator Minimum",
  0x5: "Designator Maximum",
  0x7: "String Index",
  0x8: "String Minimum",
  0x9: "String Maximum",
  0xa: "Delimiter",
};
const SIGNED = new Set([
  "Logical Minimum",
  "Logical Maximum",
  "Physical Minimum",
  "Physical Maximum",
  "Unit Exponent",
]);
/** HID Usage Tables 1.4 §3: the usage pages lsusb names most often. */
const PAGES: Readonly<Record<number, string>> = {
  0x01: "Generic Desktop Controls",
  0x02: "Simulation Controls",
  0x05: "Game Controls",
  0x06: "Generic Device Controls",
  0x07: "Keyboard",
  0x08: "LEDs",
  0x09: "Buttons",
  0x0a: "Ordinal",
  0x0b: "Telephony",
  0x0c: "Consumer",
  0x0d: "Digitizer",
  0x0f: "PID Page",
  0x14: "Auxiliary Display",
  0x20: "Sensor",
  0x40: "Medical Instruments",
  0x84: "Power Page",
  0x85: "Battery System Page",
};
const COLLECTIONS = [
  "Physical",
  "Application",
  "Logical",
  "Report",
  "Named Array",
  "Usage Switch",
  "Usage Modifier",
];
const MAIN_BITS: readonly [string, string][] = [
  ["Data", "Constant"],
  ["Array", "Variable"],
  ["Absolute", "Relative"],
  ["No_Wrap", "Wrap"],
  ["Linear", "Non_Linear"],
  ["Preferred_State", "No_Preferred_State"],
  ["No_Null_Position", "Null_State"],
  ["Non_Volatile", "Volatile"],
  ["Bitfield", "Buffered Bytes"],
];

/**
 * Decodes a HID report descriptor into its items. Total: a truncated last
 * item is reported with the bytes there are, and the walk always advances,
 * so the work is linear in the input.
 *
 * @param bytes the report descriptor (GET_DESCRIPTOR(REPORT) data)
 * @returns the items, in order
 *
 * @example A mouse's first items
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReportDescriptor } from "./hid.ts";
 * const items = decodeReportDescriptor(new Uint8Array([0x15, 0x81, 0x25, 0x7f, 0x81, 0x06]));
 * assert.deepEqual(items.map((i) => i.value), [-127, 127, 6]);
 * assert.equal(items[2]!.note, "Data Variable Relative No_Wrap Linear Preferred_State No_Null_Position Non_Volatile Bitfield");
 * ```
 */
export function decodeReportDescriptor(bytes: Uint8Array): ReportItem[] {
  const items: ReportItem[] = [];
  let i = 0;
  while (i < bytes.length) {
    const prefix = bytes[i]!;
    if (prefix === 0xfe) {
      // Long item: bDataSize, bLongItemTag, data.
      const size = bytes[i + 1] ?? 0;
      items.push({
        offset: i,
        type: "Long",
        tag: `Long Item 0x${(bytes[i + 2] ?? 0).toString(16)}`,
        value: size,
        size,
        note: undefined,
      });
      i += 3 + size;
      continue;
    }
    const size = [0, 1, 2, 4][prefix & 0x3]!;
    const kind = (prefix >> 2) & 0x3;
    const tagCode = prefix >> 4;
    let value = 0;
    for (let k = size - 1; k >= 0; k--) {
      value = value * 256 + (bytes[i + 1 + k] ?? 0);
    }
    const table = [MAIN, GLOBAL, LOCAL][kind];
    const tag = table?.[tagCode] ??
      `Unknown (0x${prefix.toString(16).padStart(2, "0")})`;
    if (SIGNED.has(tag) && size > 0 && value >= 2 ** (8 * size - 1)) {
      value -= 2 ** (8 * size);
    }
    let note: string | undefined;
    if (tag === "Usage Page") note = PAGES[value];
    else if (tag === "Collection") note = COLLECTIONS[value];
    else if (tag === "Input" || tag === "Output" || tag === "Feature") {
      note = MAIN_BITS.map(([off, on], b) =>
        Math.floor(value / 2 ** b) % 2 === 1 ? on : off
      ).join(" ");
    }
    items.push({
      offset: i,
      type: ["Main", "Global", "Local", "Reserved"][kind]!,
      tag,
      value,
      size,
      note,
    });
    i += 1 + size;
  }
  return items;
}
