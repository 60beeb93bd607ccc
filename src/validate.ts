/**
 * Checking arguments at the boundary of the public API: one rule for all of
 * usbkit.
 *
 * Every argument and option of a public function or method is checked before
 * anything else happens. A bad one gives a {@linkcode UsbError} with code
 * `invalid-argument` whose message names the argument, shows the value
 * (printed safely by {@linkcode describeValue}) and says what is allowed. A
 * bad argument never reaches the helper and never changes the state of the
 * device. Methods that return a promise reject; synchronous ones throw.
 *
 * The decisions, in one place:
 * - integers are JavaScript numbers: `-0`, `NaN`, `±Infinity`, fractions,
 *   bigints and strings are refused (Deno FFI refuses `-0`, so usbkit refuses
 *   it first, saying so);
 * - a timeout is a number of milliseconds from 0 to 2147483647 (the largest
 *   `setTimeout` takes); 0, absent or `Infinity` means no timeout;
 * - a signal is an `AbortSignal` (the real thing: a look-alike such as
 *   `{ aborted: false }` is refused);
 * - data is a `Uint8Array`, any other `ArrayBuffer` view, or an `ArrayBuffer`;
 *   arrays of numbers and views of a detached buffer are refused;
 * - an options object is an object or `undefined`; options it does not know
 *   are ignored, and each option is read exactly once.
 *
 * @module
 */

import { UsbError } from "./errors.ts";

/**
 * The most milliseconds a timeout may be: 2³¹−1, about 24.8 days, the largest
 * delay `setTimeout` honours.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_TIMEOUT_MS } from "./validate.ts";
 * assert.equal(MAX_TIMEOUT_MS, 2147483647);
 * ```
 */
export const MAX_TIMEOUT_MS = 0x7fffffff;

/**
 * The most bytes one transfer, buffer or stream chunk may have: 2³¹−1 (the
 * kernel's URB lengths are `int`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_TRANSFER_BYTES } from "./validate.ts";
 * assert.equal(MAX_TRANSFER_BYTES, 2 ** 31 - 1);
 * ```
 */
export const MAX_TRANSFER_BYTES = 0x7fffffff;

const MAX_STRING = 40;
const MAX_KEYS = 4;

/**
 * Prints any value for an error message, without throwing and without
 * calling user code that could: `-0`, `NaN`, symbols, bigints, long strings
 * (cut), arrays, typed arrays (detached or not), plain objects (their first
 * keys) and class instances (their class).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeValue } from "./validate.ts";
 * assert.equal(describeValue(-0), "-0");
 * assert.equal(describeValue(NaN), "NaN");
 * assert.equal(describeValue("yes"), '"yes"');
 * assert.equal(describeValue(Symbol("x")), "Symbol(x)");
 * assert.equal(describeValue({ aborted: false }), "an object { aborted: false }");
 * assert.equal(describeValue([1, 2, 3]), "an array [1, 2, 3]");
 * assert.equal(describeValue(new Uint8Array(4)), "a Uint8Array of 4 bytes");
 * assert.match(describeValue("x".repeat(1000)), /\(1000 characters\)$/);
 * ```
 */
export function describeValue(value: unknown): string {
  try {
    return describe(value, 0);
  } catch {
    return "a value that cannot be printed";
  }
}

function cut(text: string): string {
  return text.length <= MAX_STRING ? text : `${text.slice(0, MAX_STRING)}…`;
}

function article(name: string): string {
  // "a Uint8Array", "a UsbBuffer": a class name starting with U says "you".
  return /^[aeio]/i.test(name) ? `an ${name}` : `a ${name}`;
}

function describe(value: unknown, depth: number): string {
  switch (typeof value) {
    case "undefined":
      return "undefined";
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint": {
      const s = `${value}n`;
      return s.length <= MAX_STRING ? s : `a ${s.length - 1}-digit bigint`;
    }
    case "boolean":
      return String(value);
    case "string":
      return value.length <= MAX_STRING
        ? JSON.stringify(value)
        : `${
          JSON.stringify(value.slice(0, MAX_STRING))
        }… (${value.length} characters)`;
    case "symbol":
      return cut(Symbol.prototype.toString.call(value));
    case "function": {
      const d = Object.getOwnPropertyDescriptor(value, "name");
      const name = typeof d?.value === "string" ? d.value : "";
      return name === "" ? "a function" : `a function ${cut(name)}`;
    }
  }
  const obj = value as object | null;
  if (obj === null) return "null";
  if (depth > 0) {
    return Array.isArray(obj) ? "[…]" : ArrayBuffer.isView(obj) ? "[…]" : "{…}";
  }
  if (ArrayBuffer.isView(obj)) {
    const kind = viewKind(obj);
    const view = viewParts(obj);
    if (view.detached) return `${article(kind)} of a detached ArrayBuffer`;
    return `${article(kind)} of ${view.byteLength} byte${
      view.byteLength === 1 ? "" : "s"
    }`;
  }
  if (isArrayBuffer(obj)) {
    return bufferDetached(obj)
      ? "a detached ArrayBuffer"
      : `an ArrayBuffer of ${bufferByteLength(obj)} bytes`;
  }
  if (Array.isArray(obj)) {
    const n = obj.length;
    if (n === 0) return "an empty array";
    const shown = [];
    for (let i = 0; i < Math.min(n, MAX_KEYS); i++) {
      const d = Object.getOwnPropertyDescriptor(obj, i);
      shown.push(d === undefined ? "<empty>" : describe(d.value, depth + 1));
    }
    return `an array [${shown.join(", ")}${n > MAX_KEYS ? `, … (${n})` : ""}]`;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto === Object.prototype || proto === null) {
    const keys = Object.keys(obj);
    if (keys.length === 0) return "an empty object";
    const shown = keys.slice(0, MAX_KEYS).map((k) => {
      const d = Object.getOwnPropertyDescriptor(obj, k);
      const v = d === undefined || "get" in d
        ? "<getter>"
        : describe(d.value, depth + 1);
      return `${cut(k)}: ${v}`;
    });
    return `an object { ${shown.join(", ")}${
      keys.length > MAX_KEYS ? ", …" : ""
    } }`;
  }
  const ctor = proto === null
    ? undefined
    : Object.getOwnPropertyDescriptor(proto, "constructor")?.value;
  const name = typeof ctor === "function"
    ? Object.getOwnPropertyDescriptor(ctor, "name")?.value
    : undefined;
  return typeof name === "string" && name !== ""
    ? article(cut(name))
    : "an object";
}

// Intrinsic accessors, so that a value cannot lie about itself through own
// properties (a typed array with an own `byteLength`, say).
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
const getter = (proto: object, key: PropertyKey) =>
  Object.getOwnPropertyDescriptor(proto, key)!.get!;
const typedBuffer = getter(TypedArrayPrototype, "buffer");
const typedByteOffset = getter(TypedArrayPrototype, "byteOffset");
const typedByteLength = getter(TypedArrayPrototype, "byteLength");
const typedTag = getter(TypedArrayPrototype, Symbol.toStringTag);
const dataViewBuffer = getter(DataView.prototype, "buffer");
const dataViewByteOffset = getter(DataView.prototype, "byteOffset");
const dataViewByteLength = getter(DataView.prototype, "byteLength");
const arrayBufferByteLength = getter(ArrayBuffer.prototype, "byteLength");
const arrayBufferDetached = getter(ArrayBuffer.prototype, "detached");
const sharedByteLength = typeof SharedArrayBuffer === "function"
  ? getter(SharedArrayBuffer.prototype, "byteLength")
  : undefined;
const abortedGetter = getter(AbortSignal.prototype, "aborted");

function isArrayBuffer(v: object): v is ArrayBuffer {
  try {
    arrayBufferByteLength.call(v);
    return true;
  } catch {
    return false;
  }
}

function isSharedArrayBuffer(v: object): boolean {
  if (sharedByteLength === undefined) return false;
  try {
    sharedByteLength.call(v);
    return true;
  } catch {
    return false;
  }
}

function bufferDetached(b: ArrayBufferLike): boolean {
  return isArrayBuffer(b) && arrayBufferDetached.call(b) === true;
}

function bufferByteLength(b: ArrayBufferLike): number {
  return isArrayBuffer(b)
    ? arrayBufferByteLength.call(b)
    : sharedByteLength!.call(b);
}

function viewKind(v: ArrayBufferView): string {
  const tag = typedTag.call(v);
  return typeof tag === "string" ? tag : "DataView";
}

/** A view's memory, read through the intrinsic accessors. */
function viewParts(v: ArrayBufferView): {
  buffer: ArrayBufferLike;
  detached: boolean;
  byteOffset: number;
  byteLength: number;
} {
  const typed = typeof typedTag.call(v) === "string";
  const buffer: ArrayBufferLike = typed
    ? typedBuffer.call(v)
    : dataViewBuffer.call(v);
  if (bufferDetached(buffer)) {
    return { buffer, detached: true, byteOffset: 0, byteLength: 0 };
  }
  return {
    buffer,
    detached: false,
    byteOffset: (typed ? typedByteOffset : dataViewByteOffset).call(v),
    byteLength: (typed ? typedByteLength : dataViewByteLength).call(v),
  };
}

/**
 * The `invalid-argument` error for argument `name`: "`name` must be
 * `allowed`, got `value`".
 *
 * @param name the argument as the caller wrote it, with the method: `"transferIn: length"`
 * @param value what was passed
 * @param allowed what is allowed, as a noun phrase
 * @param hint what to do instead, if there is more to say
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invalidArgument } from "./validate.ts";
 * const e = invalidArgument("endpoint: address", -1, "an integer from 0 to 255");
 * assert.equal(e.code, "invalid-argument");
 * assert.equal(e.message, "endpoint: address must be an integer from 0 to 255, got -1");
 * ```
 */
export function invalidArgument(
  name: string,
  value: unknown,
  allowed: string,
  hint?: string,
): UsbError {
  return new UsbError(
    "invalid-argument",
    `${name} must be ${allowed}, got ${describeValue(value)}`,
    hint === undefined ? {} : { hint },
  );
}

/**
 * Checks that `value` is an integer from `min` to `max` and returns it.
 * Refuses `-0` (Deno FFI does), `NaN`, `±Infinity`, fractions, bigints and
 * anything that is not a number.
 *
 * @param name the argument, for the message
 * @param value what was passed
 * @param min the smallest allowed
 * @param max the largest allowed
 * @param hint optional advice for the error
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkInteger } from "./validate.ts";
 * assert.equal(checkInteger("transferIn: length", 512, 0, 2 ** 31 - 1), 512);
 * assert.throws(() => checkInteger("transferIn: length", -0, 0, 10), /length must be an integer from 0 to 10, got -0/);
 * assert.throws(() => checkInteger("claimInterface: number", 1.5, 0, 255), /got 1\.5/);
 * ```
 */
export function checkInteger(
  name: string,
  value: unknown,
  min: number,
  max: number,
  hint?: string,
): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) ||
    Object.is(value, -0) || value < min || value > max
  ) {
    throw invalidArgument(
      name,
      value,
      `an integer from ${min} to ${max}`,
      Object.is(value, -0)
        ? "-0 is not accepted (Deno FFI refuses it): pass 0"
        : hint,
    );
  }
  return value;
}

/**
 * Checks a timeout in milliseconds and returns it, with 0 meaning none.
 * Allowed: absent, a finite number from 0 to {@linkcode MAX_TIMEOUT_MS}
 * (fractions are fine: timers round them), or `Infinity` (no timeout).
 * Negative numbers, `NaN` and finite numbers above the maximum are refused,
 * rather than silently meaning "no timeout" or firing at once.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTimeout } from "./validate.ts";
 * assert.equal(checkTimeout("transferIn: options.timeout", undefined), 0);
 * assert.equal(checkTimeout("transferIn: options.timeout", 1000), 1000);
 * assert.equal(checkTimeout("transferIn: options.timeout", Infinity), 0);
 * assert.throws(() => checkTimeout("transferIn: options.timeout", -1), /options\.timeout must be/);
 * assert.throws(() => checkTimeout("transferIn: options.timeout", NaN), /got NaN/);
 * assert.throws(() => checkTimeout("transferIn: options.timeout", 2 ** 31), /got 2147483648/);
 * ```
 */
export function checkTimeout(name: string, value: unknown): number {
  if (value === undefined || value === Infinity) return 0;
  if (
    typeof value !== "number" || !(value >= 0) || value > MAX_TIMEOUT_MS ||
    Object.is(value, -0)
  ) {
    throw invalidArgument(
      name,
      value,
      `a number of milliseconds from 0 to ${MAX_TIMEOUT_MS} (0 or Infinity: no timeout)`,
      Object.is(value, -0)
        ? "-0 is not accepted: pass 0 for no timeout"
        : undefined,
    );
  }
  return value;
}

/**
 * Checks an optional `AbortSignal`. Only a real `AbortSignal` passes (the
 * check is the one the platform's own `aborted` getter makes), so an object
 * that only looks like one, such as `{ aborted: false }`, is refused before
 * anything is started.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSignal } from "./validate.ts";
 * const signal = new AbortController().signal;
 * assert.equal(checkSignal("transferIn: options.signal", signal), signal);
 * assert.equal(checkSignal("transferIn: options.signal", undefined), undefined);
 * assert.throws(() => checkSignal("transferIn: options.signal", { aborted: false }), /options\.signal must be an AbortSignal/);
 * assert.throws(() => checkSignal("transferIn: options.signal", "yes"), /got "yes"/);
 * ```
 */
export function checkSignal(
  name: string,
  value: unknown,
): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "object" && value !== null) {
    try {
      abortedGetter.call(value);
      return value as AbortSignal;
    } catch {
      // Not a real AbortSignal.
    }
  }
  throw invalidArgument(
    name,
    value,
    "an AbortSignal or undefined",
    "pass the `signal` of an AbortController, or AbortSignal.timeout(ms)",
  );
}

/**
 * Checks an optional boolean option.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkBoolean } from "./validate.ts";
 * assert.equal(checkBoolean("transferOut: options.zeroPacket", true), true);
 * assert.equal(checkBoolean("transferOut: options.zeroPacket", undefined), undefined);
 * assert.throws(() => checkBoolean("transferOut: options.zeroPacket", "yes"), /zeroPacket must be true, false or undefined/);
 * ```
 */
export function checkBoolean(
  name: string,
  value: unknown,
): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw invalidArgument(name, value, "true, false or undefined");
}

/**
 * Checks a string argument and returns it.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkString } from "./validate.ts";
 * assert.equal(checkString("listDevices: options.sysfsRoot", "/sys"), "/sys");
 * assert.throws(() => checkString("listDevices: options.sysfsRoot", 7), /sysfsRoot must be a string, got 7/);
 * ```
 */
export function checkString(name: string, value: unknown): string {
  if (typeof value === "string") return value;
  throw invalidArgument(name, value, "a string");
}

/**
 * Checks that `value` is one of the given strings.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOneOf } from "./validate.ts";
 * assert.equal(checkOneOf("setup.recipient", "device", ["device", "interface"] as const), "device");
 * assert.throws(() => checkOneOf("setup.recipient", "host", ["device", "interface"] as const), /"device" or "interface", got "host"/);
 * ```
 */
export function checkOneOf<T extends string>(
  name: string,
  value: unknown,
  choices: readonly T[],
): T {
  if (
    typeof value === "string" && (choices as readonly string[]).includes(value)
  ) {
    return value as T;
  }
  const quoted = choices.map((c) => JSON.stringify(c));
  const list = quoted.length === 1
    ? quoted[0]!
    : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
  throw invalidArgument(name, value, list);
}

/**
 * Checks bytes to send: a `Uint8Array`, any other `ArrayBuffer` view
 * (`DataView`, `Int16Array`...), or an `ArrayBuffer`, of at most `maxBytes`.
 * Returns a `Uint8Array` over the same memory (no copy), made from the
 * value's real extent, so a view cannot lie about its length. A view of a
 * detached (transferred) buffer, an array of numbers or an object with a
 * `length` are refused.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkBytes } from "./validate.ts";
 * const data = new Uint16Array([0x0201, 0x0403]);
 * assert.deepEqual([...checkBytes("transferOut: data", data)], [1, 2, 3, 4]);
 * assert.throws(() => checkBytes("transferOut: data", [1, 2, 3]), /data must be a Uint8Array/);
 * const buffer = new ArrayBuffer(4);
 * const view = new Uint8Array(buffer);
 * buffer.transfer();
 * assert.throws(() => checkBytes("transferOut: data", view), /detached/);
 * ```
 */
export function checkBytes(
  name: string,
  value: unknown,
  maxBytes: number = MAX_TRANSFER_BYTES,
): Uint8Array {
  const allowed =
    `a Uint8Array (or another ArrayBuffer view, or an ArrayBuffer) of at most ${maxBytes} bytes`;
  if (typeof value === "object" && value !== null) {
    if (ArrayBuffer.isView(value)) {
      let parts;
      try {
        parts = viewParts(value);
      } catch {
        // A DataView out of its resizable buffer's bounds.
        throw invalidArgument(name, value, allowed);
      }
      if (parts.detached) {
        throw invalidArgument(
          name,
          value,
          allowed,
          "its ArrayBuffer was transferred or detached (a UsbBuffer's view is detached while a transfer owns it): use a live view",
        );
      }
      if (parts.byteLength <= maxBytes) {
        return new Uint8Array(
          parts.buffer,
          parts.byteOffset,
          parts.byteLength,
        );
      }
    } else if (isArrayBuffer(value) || isSharedArrayBuffer(value)) {
      if (bufferDetached(value as ArrayBufferLike)) {
        throw invalidArgument(name, value, allowed);
      }
      const n = bufferByteLength(value as ArrayBufferLike);
      if (n <= maxBytes) return new Uint8Array(value as ArrayBufferLike, 0, n);
    }
  }
  throw invalidArgument(name, value, allowed);
}

/**
 * Checks an options argument (an object, or `undefined` for none) and
 * returns a plain snapshot of the named options, each read exactly once.
 * Options not named are ignored. A getter that throws is reported as an
 * `invalid-argument` for that option.
 *
 * @param name the argument, for the message: `"transferIn: options"`
 * @param value what was passed
 * @param keys the options this call understands
 * @throws {UsbError} `invalid-argument` for null, a number, a string, an array, a function
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOptions } from "./validate.ts";
 * assert.deepEqual(checkOptions("stream: options", { inFlight: 4, other: 1 }, ["inFlight", "transferSize"]), { inFlight: 4, transferSize: undefined });
 * assert.deepEqual(checkOptions("stream: options", undefined, ["inFlight"]), { inFlight: undefined });
 * assert.throws(() => checkOptions("stream: options", null, ["inFlight"]), /stream: options must be an object or undefined, got null/);
 * ```
 */
export function checkOptions<K extends string>(
  name: string,
  value: unknown,
  keys: readonly K[],
): { readonly [P in K]: unknown } {
  const out = {} as { [P in K]: unknown };
  if (value === undefined) {
    for (const k of keys) out[k] = undefined;
    return out;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument(name, value, "an object or undefined");
  }
  for (const k of keys) {
    try {
      out[k] = (value as Record<string, unknown>)[k];
    } catch (e) {
      throw new UsbError(
        "invalid-argument",
        `${name}.${k} could not be read: ${describeValue(e)}`,
        { cause: e },
      );
    }
  }
  return out;
}

/**
 * The options every transfer takes, checked: see {@linkcode checkTransferOptions}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CheckedTransferOptions } from "./validate.ts";
 * const none: CheckedTransferOptions = { timeout: 0, signal: undefined };
 * assert.equal(none.timeout, 0);
 * ```
 */
export interface CheckedTransferOptions {
  /** Milliseconds, 0 for none. */
  readonly timeout: number;
  /** A real AbortSignal, or undefined. */
  readonly signal: AbortSignal | undefined;
}

/**
 * Checks the options of a transfer: `timeout` ({@linkcode checkTimeout}),
 * `signal` ({@linkcode checkSignal}), and returns the raw values of the
 * `extra` options the method also takes, for it to check.
 *
 * @param method the method, for messages: `"transferIn"`
 * @param value the options argument
 * @param extra the method's other options
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTransferOptions } from "./validate.ts";
 * const o = checkTransferOptions("transferOut", { timeout: 500, zeroPacket: true }, ["zeroPacket"]);
 * assert.equal(o.timeout, 500);
 * assert.equal(o.signal, undefined);
 * assert.equal(o.extra.zeroPacket, true);
 * assert.throws(() => checkTransferOptions("transferIn", { signal: "yes" }), /transferIn: options\.signal must be an AbortSignal/);
 * ```
 */
export function checkTransferOptions<K extends string = never>(
  method: string,
  value: unknown,
  extra: readonly K[] = [],
): CheckedTransferOptions & { readonly extra: { readonly [P in K]: unknown } } {
  const o = checkOptions(
    `${method}: options`,
    value,
    [
      "timeout",
      "signal",
      ...extra,
    ] as const,
  );
  const timeout = checkTimeout(`${method}: options.timeout`, o.timeout);
  const signal = checkSignal(`${method}: options.signal`, o.signal);
  return { timeout, signal, extra: o as { readonly [P in K]: unknown } };
}

/**
 * Hexadecimal for messages: `hex(0x81)` is `"0x81"`. A value that is not a
 * non-negative safe integer is printed with {@linkcode describeValue}
 * instead, so a message never shows `0x-1`.
 *
 * @param value the number
 * @param digits the least number of digits (zero-padded)
 * @param prefix what goes in front, `"0x"` by default
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex } from "./validate.ts";
 * assert.equal(hex(0x81), "0x81");
 * assert.equal(hex(0x525, 4, ""), "0525");
 * assert.equal(hex(-1), "-1");
 * assert.equal(hex(-0), "-0");
 * ```
 */
export function hex(value: number, digits = 2, prefix = "0x"): string {
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 ||
    Object.is(value, -0)
  ) {
    return describeValue(value);
  }
  return prefix + value.toString(16).padStart(digits, "0");
}

/**
 * The options of a hot transfer call (`transferIn`, `transferOut`, control
 * transfers), read by {@linkcode readTransferOptions} into one shared
 * object: valid until the next call, to be used at once.
 */
export interface HotTransferOptions extends CheckedTransferOptions {
  /** The raw `length` option (when asked for), for the caller to check. */
  readonly length: unknown;
  /** The raw `zeroPacket` option (when asked for), for the caller to check. */
  readonly zeroPacket: unknown;
}

const hot = {
  timeout: 0,
  signal: undefined as AbortSignal | undefined,
  length: undefined as unknown,
  zeroPacket: undefined as unknown,
};

function readOption(method: string, value: object, key: string): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch (e) {
    throw new UsbError(
      "invalid-argument",
      `${method}: options.${key} could not be read: ${describeValue(e)}`,
      { cause: e },
    );
  }
}

/**
 * {@linkcode checkTransferOptions} for the hot paths, without allocating:
 * the same checks and the same messages, each option read once, into one
 * shared object that the next call overwrites (so use it before anything
 * else can run). `length` and `zeroPacket` are read only when asked for.
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readTransferOptions } from "./validate.ts";
 * const o = readTransferOptions("transferOut", { timeout: 5, zeroPacket: true }, false, true);
 * assert.equal(o.timeout, 5);
 * assert.equal(o.zeroPacket, true);
 * assert.throws(() => readTransferOptions("transferIn", { timeout: -1 }, true, false), /transferIn: options\.timeout must be/);
 * ```
 */
export function readTransferOptions(
  method: string,
  value: unknown,
  length: boolean,
  zeroPacket: boolean,
): HotTransferOptions {
  hot.timeout = 0;
  hot.signal = undefined;
  hot.length = undefined;
  hot.zeroPacket = undefined;
  if (value === undefined) return hot;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument(
      `${method}: options`,
      value,
      "an object or undefined",
    );
  }
  const timeout = readOption(method, value, "timeout");
  const signal = readOption(method, value, "signal");
  if (length) hot.length = readOption(method, value, "length");
  if (zeroPacket) hot.zeroPacket = readOption(method, value, "zeroPacket");
  hot.timeout = typeof timeout === "number" && timeout >= 0 &&
      timeout <= MAX_TIMEOUT_MS && !Object.is(timeout, -0)
    ? timeout
    : checkTimeout(`${method}: options.timeout`, timeout);
  hot.signal = signal === undefined
    ? undefined
    : checkSignal(`${method}: options.signal`, signal);
  return hot;
}

/**
 * {@linkcode checkBytes} without allocating for the common case: a plain
 * `Uint8Array` (its prototype `Uint8Array.prototype`, no own `length` or
 * `buffer`) on
 * a live `ArrayBuffer` is returned as it is; anything else goes through `checkBytes` (a view over
 * the same memory, or the error).
 *
 * @throws {UsbError} `invalid-argument`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plainBytes } from "./validate.ts";
 * const a = new Uint8Array(4);
 * assert.equal(plainBytes("transferOut: data", a), a);
 * assert.deepEqual([...plainBytes("transferOut: data", new Uint16Array([0x0201]))], [1, 2]);
 * ```
 */
export function plainBytes(
  name: string,
  value: unknown,
  maxBytes: number = MAX_TRANSFER_BYTES,
): Uint8Array {
  if (
    typeof value === "object" && value !== null && ArrayBuffer.isView(value) &&
    // Not a Proxy (isView), so these read the object itself.
    Object.getPrototypeOf(value) === Uint8Array.prototype &&
    !Object.hasOwn(value, "length") && !Object.hasOwn(value, "buffer")
  ) {
    const buffer = typedBuffer.call(value);
    if (
      isArrayBuffer(buffer) && arrayBufferDetached.call(buffer) !== true &&
      typedByteLength.call(value) <= maxBytes
    ) {
      return value as Uint8Array;
    }
  }
  return checkBytes(name, value, maxBytes);
}
