/**
 * USB Audio class descriptors, versions 1.0 (UAC1) and 2.0 (UAC2):
 * AudioControl (header, terminals, units, clock entities), AudioStreaming
 * (AS general, format type) and the AS isochronous endpoint descriptor.
 * Layouts from the USB Audio 1.0 §4.3-4.6 and 2.0 §4.7-4.10 tables; field
 * names as there (and as `lsusb -v` prints them).
 *
 * @module
 */

import type {
  ClassContext,
  ClassDecoder,
  DecodedDescriptor,
} from "../types.ts";
import { FieldList, type TableEntry } from "./fields.ts";

/** `USB_CLASS_AUDIO`. */
export const USB_CLASS_AUDIO = 0x01;
/** Audio subclasses (include/uapi/linux/usb/audio.h). */
export const AudioSubclass = {
  AudioControl: 0x01,
  AudioStreaming: 0x02,
  MidiStreaming: 0x03,
} as const;
/** `UAC_VERSION_2`: bInterfaceProtocol of UAC2 interfaces. */
const UAC_VERSION_2 = 0x20;
const CS_INTERFACE = 0x24;
const CS_ENDPOINT = 0x25;

/** Terminal types (USB Audio Terminal Types 1.0 §2; audio.h UAC_*). */
const TERMINAL_TYPES: Readonly<Record<number, string>> = {
  0x0100: "USB Undefined",
  0x0101: "USB Streaming",
  0x01ff: "USB Vendor Specific",
  0x0200: "Input Undefined",
  0x0201: "Microphone",
  0x0202: "Desktop Microphone",
  0x0203: "Personal Microphone",
  0x0204: "Omni-directional Microphone",
  0x0205: "Microphone Array",
  0x0206: "Processing Microphone Array",
  0x0300: "Output Undefined",
  0x0301: "Speaker",
  0x0302: "Headphones",
  0x0303: "Head Mounted Display Audio",
  0x0304: "Desktop Speaker",
  0x0305: "Room Speaker",
  0x0306: "Communication Speaker",
  0x0307: "Low Frequency Effects Speaker",
  0x0400: "Bidirectional Undefined",
  0x0401: "Handset",
  0x0402: "Headset",
  0x0403: "Speakerphone, no echo reduction",
  0x0404: "Echo-suppressing speakerphone",
  0x0405: "Echo-canceling speakerphone",
  0x0500: "Telephony Undefined",
  0x0501: "Phone line",
  0x0502: "Telephone",
  0x0503: "Down Line Phone",
  0x0600: "External Undefined",
  0x0601: "Analog Connector",
  0x0602: "Digital Audio Interface",
  0x0603: "Line Connector",
  0x0604: "Legacy Audio Connector",
  0x0605: "SPDIF interface",
  0x0606: "1394 DA stream",
  0x0607: "1394 DV stream soundtrack",
  0x0700: "Embedded Undefined",
};

type Layout = readonly TableEntry[];

// AudioControl interface descriptors, by subtype, for UAC1 and UAC2.
const AC1: Readonly<Record<number, readonly [string, Layout]>> = {
  0x01: ["HEADER", [
    ["bcdADC", 2, "bcd"],
    ["wTotalLength", 2],
    ["bInCollection", 1],
    ["baInterfaceNr", 1, "number", "bInCollection"],
  ]],
  0x02: ["INPUT_TERMINAL", [
    ["bTerminalID", 1],
    ["wTerminalType", 2],
    ["bAssocTerminal", 1],
    ["bNrChannels", 1],
    ["wChannelConfig", 2],
    ["iChannelNames", 1, "string"],
    ["iTerminal", 1, "string"],
  ]],
  0x03: ["OUTPUT_TERMINAL", [
    ["bTerminalID", 1],
    ["wTerminalType", 2],
    ["bAssocTerminal", 1],
    ["bSourceID", 1],
    ["iTerminal", 1, "string"],
  ]],
  0x04: ["MIXER_UNIT", [
    ["bUnitID", 1],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["bNrChannels", 1],
    ["wChannelConfig", 2],
    ["iChannelNames", 1, "string"],
    ["bmControls", 1, "number", { leave: 1 }],
    ["iMixer", 1, "string"],
  ]],
  0x05: ["SELECTOR_UNIT", [
    ["bUnitID", 1],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["iSelector", 1, "string"],
  ]],
  0x06: ["FEATURE_UNIT", [
    ["bUnitID", 1],
    ["bSourceID", 1],
    ["bControlSize", 1],
    // bmaControls: bControlSize bytes each; handled in code.
  ]],
  0x07: ["PROCESSING_UNIT", [
    ["bUnitID", 1],
    ["wProcessType", 2],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["bNrChannels", 1],
    ["wChannelConfig", 2],
    ["iChannelNames", 1, "string"],
    ["bControlSize", 1],
    ["bmControls", 1, "number", "bControlSize"],
    ["iProcessing", 1, "string"],
  ]],
  0x08: ["EXTENSION_UNIT", [
    ["bUnitID", 1],
    ["wExtensionCode", 2],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["bNrChannels", 1],
    ["wChannelConfig", 2],
    ["iChannelNames", 1, "string"],
    ["bControlSize", 1],
    ["bmControls", 1, "number", "bControlSize"],
    ["iExtension", 1, "string"],
  ]],
};

const AC2: Readonly<Record<number, readonly [string, Layout]>> = {
  0x01: ["HEADER", [
    ["bcdADC", 2, "bcd"],
    ["bCategory", 1],
    ["wTotalLength", 2],
    ["bmControls", 1],
  ]],
  0x02: ["INPUT_TERMINAL", [
    ["bTerminalID", 1],
    ["wTerminalType", 2],
    ["bAssocTerminal", 1],
    ["bCSourceID", 1],
    ["bNrChannels", 1],
    ["bmChannelConfig", 4],
    ["iChannelNames", 1, "string"],
    ["bmControls", 2],
    ["iTerminal", 1, "string"],
  ]],
  0x03: ["OUTPUT_TERMINAL", [
    ["bTerminalID", 1],
    ["wTerminalType", 2],
    ["bAssocTerminal", 1],
    ["bSourceID", 1],
    ["bCSourceID", 1],
    ["bmControls", 2],
    ["iTerminal", 1, "string"],
  ]],
  0x04: ["MIXER_UNIT", [
    ["bUnitID", 1],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["bNrChannels", 1],
    ["bmChannelConfig", 4],
    ["iChannelNames", 1, "string"],
    ["bmMixerControls", 1, "number", { leave: 2 }],
    ["bmControls", 1],
    ["iMixer", 1, "string"],
  ]],
  0x05: ["SELECTOR_UNIT", [
    ["bUnitID", 1],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["bmControls", 1],
    ["iSelector", 1, "string"],
  ]],
  0x06: ["FEATURE_UNIT", [
    ["bUnitID", 1],
    ["bSourceID", 1],
    ["bmaControls", 4, "number", { leave: 1 }],
    ["iFeature", 1, "string"],
  ]],
  0x07: ["EFFECT_UNIT", [
    ["bUnitID", 1],
    ["wEffectType", 2],
    ["bSourceID", 1],
    ["bmaControls", 4, "number", { leave: 1 }],
    ["iEffects", 1, "string"],
  ]],
  0x08: ["PROCESSING_UNIT", [
    ["bUnitID", 1],
    ["wProcessType", 2],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["bNrChannels", 1],
    ["bmChannelConfig", 4],
    ["iChannelNames", 1, "string"],
    ["bmControls", 2],
    ["iProcessing", 1, "string"],
  ]],
  0x09: ["EXTENSION_UNIT", [
    ["bUnitID", 1],
    ["wExtensionCode", 2],
    ["bNrInPins", 1],
    ["baSourceID", 1, "number", "bNrInPins"],
    ["bNrChannels", 1],
    ["bmChannelConfig", 4],
    ["iChannelNames", 1, "string"],
    ["bmControls", 1],
    ["iExtension", 1, "string"],
  ]],
  0x0a: ["CLOCK_SOURCE", [
    ["bClockID", 1],
    ["bmAttributes", 1],
    ["bmControls", 1],
    ["bAssocTerminal", 1],
    ["iClockSource", 1, "string"],
  ]],
  0x0b: ["CLOCK_SELECTOR", [
    ["bClockID", 1],
    ["bNrInPins", 1],
    ["baCSourceID", 1, "number", "bNrInPins"],
    ["bmControls", 1],
    ["iClockSelector", 1, "string"],
  ]],
  0x0c: ["CLOCK_MULTIPLIER", [
    ["bClockID", 1],
    ["bCSourceID", 1],
    ["bmControls", 1],
    ["iClockMultiplier", 1, "string"],
  ]],
  0x0d: ["SAMPLE_RATE_CONVERTER", [
    ["bUnitID", 1],
    ["bSourceID", 1],
    ["bCSourceInID", 1],
    ["bCSourceOutID", 1],
    ["iSRC", 1, "string"],
  ]],
};

const AS_GENERAL1: Layout = [
  ["bTerminalLink", 1],
  ["bDelay", 1],
  ["wFormatTag", 2],
];
const AS_GENERAL2: Layout = [
  ["bTerminalLink", 1],
  ["bmControls", 1],
  ["bFormatType", 1],
  ["bmFormats", 4],
  ["bNrChannels", 1],
  ["bmChannelConfig", 4],
  ["iChannelNames", 1, "string"],
];
const EP_GENERAL1: Layout = [
  ["bmAttributes", 1],
  ["bLockDelayUnits", 1],
  ["wLockDelay", 2],
];
const EP_GENERAL2: Layout = [
  ["bmAttributes", 1],
  ["bmControls", 1],
  ["bLockDelayUnits", 1],
  ["wLockDelay", 2],
];

/** UAC1 format type I and III (Audio Data Formats 1.0 §2.2.5), II (§2.3.4). */
function formatType1(f: FieldList): void {
  const type = f.u8("bFormatType", 3);
  if (type === 2) {
    f.table(4, [["wMaxBitRate", 2], ["wSamplesPerFrame", 2]]);
    samplingFrequencies(f, 8);
  } else {
    f.table(4, [["bNrChannels", 1], ["bSubframeSize", 1], [
      "bBitResolution",
      1,
    ]]);
    samplingFrequencies(f, 7);
  }
}

/** `bSamFreqType` and the frequencies: a range when 0, else a list. */
function samplingFrequencies(f: FieldList, at: number): void {
  const n = f.u8(
    "bSamFreqType",
    at,
    (v) => v === 0 ? "Continuous" : "Discrete",
  );
  if (n === undefined) return;
  if (n === 0) f.table(at + 1, [["tLowerSamFreq", 3], ["tUpperSamFreq", 3]]);
  else f.table(at + 1, [["tSamFreq", 3, "number", n]]);
}

/** UAC2 format types I, III (§2.3.1.6) and II (§2.3.2.6). */
function formatType2(f: FieldList): void {
  const type = f.u8("bFormatType", 3);
  if (type === 2) f.table(4, [["wMaxBitRate", 2], ["wSlotsPerFrame", 2]]);
  else f.table(4, [["bSubslotSize", 1], ["bBitResolution", 1]]);
}

function finish(
  f: FieldList,
  title: string,
  subtype: string,
): DecodedDescriptor {
  const sub = f.fields[2];
  if (sub !== undefined) f.fields[2] = { ...sub, note: subtype };
  return f.done(title, "uac");
}

/**
 * Decodes audio class-specific descriptors of AudioControl and
 * AudioStreaming interfaces (UAC1 or UAC2, from `bInterfaceProtocol`),
 * and the AS isochronous data endpoint descriptor. Terminal types are
 * named. MIDIStreaming has its own decoder (midi.ts).
 *
 * @example A UAC1 output terminal: a speaker
 * ```ts
 * import assert from "node:assert/strict";
 * import { audioDecoder } from "./audio.ts";
 * const d = audioDecoder.decode(new Uint8Array([9, 0x24, 3, 2, 0x01, 0x03, 0, 1, 0]), {
 *   interfaceClass: 1, interfaceSubclass: 1, interfaceProtocol: 0, placement: "interface",
 * })!;
 * assert.equal(d.fields.find((f) => f.name === "wTerminalType")!.note, "Speaker");
 * assert.equal(d.fields.find((f) => f.name === "iTerminal")!.stringIndex, true);
 * ```
 */
export const audioDecoder: ClassDecoder = {
  name: "uac",
  decode(raw, ctx: ClassContext) {
    if (ctx.interfaceClass !== USB_CLASS_AUDIO || raw.length < 3) {
      return undefined;
    }
    const v2 = ctx.interfaceProtocol === UAC_VERSION_2;
    const subtype = raw[2]!;
    const f = new FieldList(raw);
    f.header();
    f.u8("bDescriptorSubtype", 2);
    if (ctx.placement === "endpoint") {
      if (
        raw[1] !== CS_ENDPOINT || subtype !== 1 ||
        ctx.interfaceSubclass !== AudioSubclass.AudioStreaming
      ) {
        return undefined;
      }
      f.table(3, v2 ? EP_GENERAL2 : EP_GENERAL1);
      return finish(f, "AudioStreaming Endpoint Descriptor", "EP_GENERAL");
    }
    if (raw[1] !== CS_INTERFACE) return undefined;
    if (ctx.interfaceSubclass === AudioSubclass.AudioControl) {
      const entry = (v2 ? AC2 : AC1)[subtype];
      if (entry === undefined) return undefined;
      const end = f.table(3, entry[1]);
      if (!v2 && subtype === 0x06) {
        // UAC1 feature unit: bmaControls of bControlSize bytes, then iFeature.
        const size = raw[5] ?? 0;
        if (size > 0 && size <= 4) {
          f.table(end, [["bmaControls", size, "number", { leave: 1 }]]);
          f.str("iFeature", raw.length - 1);
        }
      }
      for (const field of f.fields) {
        if (field.name === "wTerminalType" && typeof field.value === "number") {
          f.fields[f.fields.indexOf(field)] = {
            ...field,
            note: TERMINAL_TYPES[field.value] ?? "Unknown",
          };
        }
      }
      return finish(f, "AudioControl Interface Descriptor", entry[0]);
    }
    if (ctx.interfaceSubclass === AudioSubclass.AudioStreaming) {
      if (subtype === 0x01) {
        f.table(3, v2 ? AS_GENERAL2 : AS_GENERAL1);
        return finish(f, "AudioStreaming Interface Descriptor", "AS_GENERAL");
      }
      if (subtype === 0x02) {
        if (v2) formatType2(f);
        else formatType1(f);
        return finish(f, "AudioStreaming Interface Descriptor", "FORMAT_TYPE");
      }
    }
    return undefined;
  },
};
