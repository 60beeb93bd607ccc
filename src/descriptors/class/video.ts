/**
 * USB Video class descriptors (UVC 1.5 §3.7-3.8 and the payload format
 * specifications): VideoControl header, terminals and units,
 * VideoStreaming input/output headers, the uncompressed and MJPEG formats
 * and frames, color matching, and the VC interrupt endpoint.
 *
 * @module
 */

import type { ClassDecoder } from "../types.ts";
import { FieldList, type TableEntry } from "./fields.ts";

/** `USB_CLASS_VIDEO`. */
const USB_CLASS_VIDEO = 0x0e;

type Layout = readonly TableEntry[];

const VC: Readonly<Record<number, readonly [string, Layout]>> = {
  0x01: ["HEADER", [
    ["bcdUVC", 2, "bcd"],
    ["wTotalLength", 2],
    ["dwClockFrequency", 4],
    ["bInCollection", 1],
    ["baInterfaceNr", 1, "number", "bInCollection"],
  ]],
  0x02: ["INPUT_TERMINAL", [
    ["bTerminalID", 1],
    ["wTerminalType", 2],
    ["bAssocTerminal", 1],
    ["iTerminal", 1, "string"],
  ]],
  0x03: ["OUTPUT_TERMINAL", [
    ["bTerminalID", 1],
    ["wTerminalType", 2],
    ["bAssocTerminal", 1],
    ["bSourceID", 1],
    ["iTerminal", 1, "string"],
  ]],
  0x04: ["SELECTOR_UNIT", [
    ["bUnitID", 1],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["iSelector", 1, "string"],
  ]],
  0x05: ["PROCESSING_UNIT", [
    ["bUnitID", 1],
    ["bSourceID", 1],
    ["wMaxMultiplier", 2],
    ["bControlSize", 1],
    ["bmControls", 1, "number", "bControlSize"],
    ["iProcessing", 1, "string"],
    ["bmVideoStandards", 1],
  ]],
  0x06: ["EXTENSION_UNIT", [
    ["bUnitID", 1],
    ["guidExtensionCode", 16, "guid"],
    ["bNumControls", 1],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["bControlSize", 1],
    ["bmControls", 1, "number", "bControlSize"],
    ["iExtension", 1, "string"],
  ]],
};

const FRAME: Layout = [
  ["bFrameIndex", 1],
  ["bmCapabilities", 1],
  ["wWidth", 2],
  ["wHeight", 2],
  ["dwMinBitRate", 4],
  ["dwMaxBitRate", 4],
  ["dwMaxVideoFrameBufferSize", 4],
  ["dwDefaultFrameInterval", 4],
  ["bFrameIntervalType", 1],
];

const VS: Readonly<Record<number, readonly [string, Layout]>> = {
  0x01: ["INPUT_HEADER", [
    ["bNumFormats", 1],
    ["wTotalLength", 2],
    ["bEndpointAddress", 1],
    ["bmInfo", 1],
    ["bTerminalLink", 1],
    ["bStillCaptureMethod", 1],
    ["bTriggerSupport", 1],
    ["bTriggerUsage", 1],
    ["bControlSize", 1],
    ["bmaControls", 1, "number", "rest"],
  ]],
  0x02: ["OUTPUT_HEADER", [
    ["bNumFormats", 1],
    ["wTotalLength", 2],
    ["bEndpointAddress", 1],
    ["bTerminalLink", 1],
    ["bControlSize", 1],
    ["bmaControls", 1, "number", "rest"],
  ]],
  0x04: ["FORMAT_UNCOMPRESSED", [
    ["bFormatIndex", 1],
    ["bNumFrameDescriptors", 1],
    ["guidFormat", 16, "guid"],
    ["bBitsPerPixel", 1],
    ["bDefaultFrameIndex", 1],
    ["bAspectRatioX", 1],
    ["bAspectRatioY", 1],
    ["bmInterlaceFlags", 1],
    ["bCopyProtect", 1],
  ]],
  0x05: ["FRAME_UNCOMPRESSED", FRAME],
  0x06: ["FORMAT_MJPEG", [
    ["bFormatIndex", 1],
    ["bNumFrameDescriptors", 1],
    ["bFlags", 1],
    ["bDefaultFrameIndex", 1],
    ["bAspectRatioX", 1],
    ["bAspectRatioY", 1],
    ["bmInterlaceFlags", 1],
    ["bCopyProtect", 1],
  ]],
  0x07: ["FRAME_MJPEG", FRAME],
  0x0d: ["COLORFORMAT", [
    ["bColorPrimaries", 1],
    ["bTransferCharacteristics", 1],
    ["bMatrixCoefficients", 1],
  ]],
};

/**
 * Decodes video class-specific descriptors: VideoControl (subclass 1) and
 * VideoStreaming (subclass 2) interface descriptors, and the VC interrupt
 * endpoint descriptor. Frame descriptors list their frame intervals
 * (`dwFrameInterval(i)`, or min/max/step for a continuous range).
 *
 * @example A VideoControl header
 * ```ts
 * import assert from "node:assert/strict";
 * import { videoDecoder } from "./video.ts";
 * const d = videoDecoder.decode(new Uint8Array([13, 0x24, 1, 0x10, 0x01, 40, 0, 0x80, 0x8d, 0x5b, 0, 1, 1]), {
 *   interfaceClass: 0x0e, interfaceSubclass: 1, interfaceProtocol: 0, placement: "interface",
 * })!;
 * assert.equal(d.fields.find((f) => f.name === "bcdUVC")!.value, "1.10");
 * assert.equal(d.fields.find((f) => f.name === "baInterfaceNr(0)")!.value, 1);
 * ```
 */
export const videoDecoder: ClassDecoder = {
  name: "uvc",
  decode(raw, ctx) {
    if (ctx.interfaceClass !== USB_CLASS_VIDEO || raw.length < 3) {
      return undefined;
    }
    const f = new FieldList(raw);
    f.header();
    const subtype = raw[2]!;
    if (ctx.placement === "endpoint") {
      if (raw[1] !== 0x25 || subtype !== 3) return undefined;
      f.u8("bDescriptorSubtype", 2, () => "EP_INTERRUPT");
      f.u16("wMaxTransferSize", 3);
      return f.done("VideoControl Endpoint Descriptor", "uvc");
    }
    if (raw[1] !== 0x24) return undefined;
    const table = ctx.interfaceSubclass === 1
      ? VC
      : ctx.interfaceSubclass === 2
      ? VS
      : undefined;
    const entry = table?.[subtype];
    if (entry === undefined) return undefined;
    f.u8("bDescriptorSubtype", 2, () => entry[0]);
    let at = f.table(3, entry[1]);
    if (
      ctx.interfaceSubclass === 1 && subtype === 0x02 &&
      (raw[4]! | (raw[5]! << 8)) === 0x0201 // ITT_CAMERA
    ) {
      at = f.table(at, [
        ["wObjectiveFocalLengthMin", 2],
        ["wObjectiveFocalLengthMax", 2],
        ["wOcularFocalLength", 2],
        ["bControlSize", 1],
      ]);
      f.table(at, [["bmControls", 1, "number", raw[at - 1] ?? 0]]);
    }
    if (ctx.interfaceSubclass === 2 && (subtype === 0x05 || subtype === 0x07)) {
      const n = raw[25] ?? 0;
      if (n === 0) {
        f.table(at, [
          ["dwMinFrameInterval", 4],
          ["dwMaxFrameInterval", 4],
          ["dwFrameIntervalStep", 4],
        ]);
      } else f.table(at, [["dwFrameInterval", 4, "number", n]]);
    }
    const title = ctx.interfaceSubclass === 1
      ? "VideoControl Interface Descriptor"
      : "VideoStreaming Interface Descriptor";
    return f.done(title, "uvc");
  },
};
