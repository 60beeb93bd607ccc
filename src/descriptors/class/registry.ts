/**
 * The class decoder registry: one decoder per class, each in its own file,
 * tried newest first. The parser asks the registry about every descriptor
 * it keeps raw, so a decoder registered here (a vendor's) is used
 * everywhere without touching the parser.
 *
 * @module
 */

import { invalidArgument } from "../../validate.ts";
import type {
  ClassContext,
  ClassDecoder,
  DecodedDescriptor,
  DecoderLookup,
} from "../types.ts";
import { audioDecoder } from "./audio.ts";
import { cdcDecoder } from "./cdc.ts";
import { hidDecoder } from "./hid.ts";
import { midiDecoder } from "./midi.ts";
import { videoDecoder } from "./video.ts";

/**
 * An ordered set of class decoders. The parser uses
 * {@linkcode defaultDecoders} unless `ParseOptions.decoders` names another.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClassDecoderRegistry, defaultDecoders } from "../../descriptors.ts";
 * const mine = new ClassDecoderRegistry(defaultDecoders.decoders);
 * assert.ok(mine.decoders.some((d) => d.name === "hid"));
 * ```
 */
export class ClassDecoderRegistry implements DecoderLookup {
  #decoders: ClassDecoder[] = [];

  /**
   * A registry holding `decoders`, tried last to first (the last has the
   * first say).
   *
   * @param decoders the decoders to start with
   */
  constructor(decoders: readonly ClassDecoder[] = []) {
    for (const d of decoders) this.register(d);
  }

  /** The decoders, newest first. */
  get decoders(): readonly ClassDecoder[] {
    return [...this.#decoders];
  }

  /**
   * Adds a decoder; it is tried before those already registered. A
   * decoder with the same name is replaced.
   *
   * @throws {UsbError} `invalid-argument` unless `decoder` has a string
   *   `name` and a `decode` function
   */
  register(decoder: ClassDecoder): void {
    if (
      typeof decoder !== "object" || decoder === null ||
      typeof decoder.name !== "string" || typeof decoder.decode !== "function"
    ) {
      throw invalidArgument(
        "registerClassDecoder: decoder",
        decoder,
        "an object with a string name and a decode(raw, context) function",
      );
    }
    this.#decoders = [
      decoder,
      ...this.#decoders.filter((d) => d.name !== decoder.name),
    ];
  }

  /** Removes the decoder of that name; true if there was one. */
  unregister(name: string): boolean {
    const before = this.#decoders.length;
    this.#decoders = this.#decoders.filter((d) => d.name !== name);
    return this.#decoders.length !== before;
  }

  /** The first decoder's answer, newest first; undefined if none knows it. */
  decode(
    raw: Uint8Array,
    context: ClassContext,
  ): DecodedDescriptor | undefined {
    for (const d of this.#decoders) {
      const out = d.decode(raw, context);
      if (out !== undefined) return out;
    }
    return undefined;
  }
}

/**
 * The registry the parser uses by default: HID, CDC, USB Audio 1 and 2,
 * MIDIStreaming and USB Video.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultDecoders } from "../../descriptors.ts";
 * assert.deepEqual(defaultDecoders.decoders.map((d) => d.name).sort(), ["cdc", "hid", "midi", "uac", "uvc"]);
 * ```
 */
export const defaultDecoders: ClassDecoderRegistry = new ClassDecoderRegistry([
  hidDecoder,
  cdcDecoder,
  audioDecoder,
  midiDecoder,
  videoDecoder,
]);

/**
 * Adds a decoder to the default registry, so that every later parse (and
 * `usb describe`) decodes those descriptors.
 *
 * @param decoder the decoder
 * @throws {UsbError} `invalid-argument` for something that is not a decoder
 *
 * @example A vendor's interface descriptor 0x41
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultDecoders, parseConfiguration, registerClassDecoder } from "../../descriptors.ts";
 * registerClassDecoder({
 *   name: "acme",
 *   decode: (raw, ctx) =>
 *     ctx.interfaceClass === 0xff && raw[1] === 0x41 && raw.length >= 3
 *       ? { name: "ACME Widget", decoder: "acme", fields: [{ name: "bWidgets", value: raw[2]!, note: undefined, stringIndex: false }] }
 *       : undefined,
 * });
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 21, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 0, 0xff, 0, 0, 0,
 *   3, 0x41, 7,
 * ]));
 * assert.equal(c.interfaces[0]!.alternates[0]!.extra[0]!.decoded?.name, "ACME Widget");
 * defaultDecoders.unregister("acme");
 * ```
 */
export function registerClassDecoder(decoder: ClassDecoder): void {
  defaultDecoders.register(decoder);
}

/**
 * Decodes one class-specific descriptor outside a parse.
 *
 * @param raw the whole descriptor
 * @param context where it sits
 * @param registry the decoders (default: {@linkcode defaultDecoders})
 * @returns the fields, or undefined when no decoder knows it
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeClassDescriptor } from "../../descriptors.ts";
 * const d = decodeClassDescriptor(new Uint8Array([4, 0x24, 2, 2]), {
 *   interfaceClass: 2, interfaceSubclass: 2, interfaceProtocol: 1, placement: "interface",
 * });
 * assert.equal(d?.fields[3]?.note, "line coding and serial state");
 * ```
 */
export function decodeClassDescriptor(
  raw: Uint8Array,
  context: ClassContext,
  registry: DecoderLookup = defaultDecoders,
): DecodedDescriptor | undefined {
  return registry.decode(raw, context);
}
