/**
 * MIDIStreaming class descriptors (USB MIDI 1.0 §6): the MS header, MIDI
 * IN and OUT jacks, elements, and the MS bulk endpoint descriptor.
 *
 * @module
 */

import type { ClassDecoder } from "../types.ts";
import { FieldList } from "./fields.ts";
import { AudioSubclass, USB_CLASS_AUDIO } from "./audio.ts";

const JACK_TYPES: Readonly<Record<number, string>> = {
  1: "Embedded",
  2: "External",
};

/**
 * Decodes MIDIStreaming interface (type 0x24) and endpoint (0x25)
 * descriptors of audio subclass 3.
 *
 * @example A MIDI OUT jack with one input pin
 * ```ts
 * import assert from "node:assert/strict";
 * import { midiDecoder } from "./midi.ts";
 * const d = midiDecoder.decode(new Uint8Array([9, 0x24, 3, 1, 3, 1, 2, 1, 0]), {
 *   interfaceClass: 1, interfaceSubclass: 3, interfaceProtocol: 0, placement: "interface",
 * })!;
 * assert.deepEqual(d.fields.slice(3).map((f) => [f.name, f.value]), [
 *   ["bJackType", 1], ["bJackID", 3], ["bNrInputPins", 1], ["baSourceID(0)", 2], ["BaSourcePin(0)", 1], ["iJack", 0],
 * ]);
 * ```
 */
export const midiDecoder: ClassDecoder = {
  name: "midi",
  decode(raw, ctx) {
    if (
      ctx.interfaceClass !== USB_CLASS_AUDIO ||
      ctx.interfaceSubclass !== AudioSubclass.MidiStreaming || raw.length < 3
    ) {
      return undefined;
    }
    const f = new FieldList(raw);
    f.header();
    const subtype = raw[2]!;
    if (ctx.placement === "endpoint") {
      if (raw[1] !== 0x25) return undefined;
      f.u8(
        "bDescriptorSubtype",
        2,
        (v) => ["invalid", "GENERAL", "GENERAL_2_0"][v] ?? "invalid",
      );
      f.table(3, [["bNumEmbMIDIJack", 1], [
        "baAssocJackID",
        1,
        "number",
        "bNumEmbMIDIJack",
      ]]);
      return f.done("MIDIStreaming Endpoint Descriptor", "midi");
    }
    if (raw[1] !== 0x24) return undefined;
    const names = ["", "HEADER", "MIDI_IN_JACK", "MIDI_OUT_JACK", "ELEMENT"];
    const name = names[subtype];
    if (name === undefined || name === "") return undefined;
    f.u8("bDescriptorSubtype", 2, () => name);
    const jack = (v: number) => JACK_TYPES[v] ?? "Unknown";
    switch (subtype) {
      case 1:
        f.table(3, [["bcdMSC", 2, "bcd"], ["wTotalLength", 2]]);
        break;
      case 2:
        f.u8("bJackType", 3, jack);
        f.table(4, [["bJackID", 1], ["iJack", 1, "string"]]);
        break;
      case 3:
      case 4: {
        let at = 3;
        if (subtype === 3) {
          f.u8("bJackType", 3, jack);
          f.u8("bJackID", 4);
          at = 5;
        } else {
          f.u8("bElementID", 3);
          at = 4;
        }
        const pins = f.u8("bNrInputPins", at) ?? 0;
        at++;
        for (let i = 0; i < pins && at + 1 < raw.length; i++, at += 2) {
          f.u8(`baSourceID(${i})`, at);
          f.u8(`BaSourcePin(${i})`, at + 1);
        }
        if (subtype === 3) f.str("iJack", at);
        else {
          at = f.table(at, [
            ["bNrOutputPins", 1],
            ["bInTerminalLink", 1],
            ["bOutTerminalLink", 1],
            ["bElCapsSize", 1],
          ]);
          const caps = raw[at - 1] ?? 0;
          at = f.table(at, [["bmElementCaps", 1, "number", caps]]);
          f.str("iElement", at);
        }
        break;
      }
    }
    return f.done("MIDIStreaming Interface Descriptor", "midi");
  },
};
