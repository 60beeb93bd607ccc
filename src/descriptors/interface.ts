/**
 * Interface descriptors (USB 2.0 §9.6.5) and interface association
 * descriptors (IAD, USB 2.0 ECN): the readers the configuration walker
 * calls.
 *
 * @module
 */

import type { Reader } from "./reader.ts";
import type {
  AlternateSetting,
  InterfaceAssociation,
  RawDescriptor,
} from "./types.ts";
import type { EndpointDraft } from "./endpoint.ts";

/** `USB_DT_INTERFACE_SIZE`, ch9.h. */
export const USB_DT_INTERFACE_SIZE = 9;
/** `USB_DT_INTERFACE_ASSOCIATION_SIZE`, ch9.h. */
export const USB_DT_INTERFACE_ASSOCIATION_SIZE = 8;

/** Mutable twin of {@linkcode AlternateSetting}, filled by the walker. */
export type AltDraft =
  & { -readonly [K in keyof AlternateSetting]: AlternateSetting[K] }
  & { endpoints: EndpointDraft[]; extra: RawDescriptor[] };

/** Mutable twin of {@linkcode InterfaceAssociation}. */
export type IadDraft =
  & { -readonly [K in keyof InterfaceAssociation]: InterfaceAssociation[K] }
  & { extra: RawDescriptor[] };

/**
 * Reads an interface descriptor (an alternate setting) at `at`.
 *
 * @param r the reader
 * @param at where it starts; its `bLength` is at least 9
 * @param len its `bLength`
 * @returns the alternate setting, with no endpoints yet
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Reader } from "./reader.ts";
 * import { interfaceAt } from "./interface.ts";
 * const r = new Reader(new Uint8Array([9, 4, 1, 2, 0, 0xff, 0, 0, 5]), true);
 * const alt = interfaceAt(r, 0, 9);
 * assert.ok(alt.interfaceNumber === 1 && alt.alternateSetting === 2 && alt.interfaceStringIndex === 5);
 * ```
 */
export function interfaceAt(r: Reader, at: number, len: number): AltDraft {
  return {
    interfaceNumber: r.u8(at + 2),
    alternateSetting: r.u8(at + 3),
    numEndpoints: r.u8(at + 4),
    interfaceClass: r.u8(at + 5),
    interfaceSubclass: r.u8(at + 6),
    interfaceProtocol: r.u8(at + 7),
    interfaceStringIndex: r.u8(at + 8),
    endpoints: [],
    extra: [],
    offset: at,
    raw: r.slice(at, at + len),
  };
}

/**
 * Reads an interface association descriptor at `at`.
 *
 * @param r the reader
 * @param at where it starts; its `bLength` is at least 8
 * @param len its `bLength`
 * @returns the association
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Reader } from "./reader.ts";
 * import { associationAt } from "./interface.ts";
 * const r = new Reader(new Uint8Array([8, 0x0b, 0, 2, 2, 2, 1, 4]), true);
 * const iad = associationAt(r, 0, 8);
 * assert.ok(iad.interfaceCount === 2 && iad.functionStringIndex === 4);
 * ```
 */
export function associationAt(r: Reader, at: number, len: number): IadDraft {
  return {
    firstInterface: r.u8(at + 2),
    interfaceCount: r.u8(at + 3),
    functionClass: r.u8(at + 4),
    functionSubclass: r.u8(at + 5),
    functionProtocol: r.u8(at + 6),
    functionStringIndex: r.u8(at + 7),
    extra: [],
    offset: at,
    raw: r.slice(at, at + len),
  };
}
