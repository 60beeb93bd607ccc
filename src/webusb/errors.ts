/**
 * WebUSB's errors: `DOMException`s with the names the WICG spec gives, and
 * `TypeError` where WebIDL gives one. The usbkit {@linkcode UsbError} that
 * caused one (with its `code` and `hint`) is kept as its `cause`, and its
 * message and hint are repeated in the exception's message, so that a
 * script that prints only `e.message` still says what to do.
 *
 * | usbkit code | DOMException name |
 * |---|---|
 * | `cancelled` (close, releaseInterface, reset, selectAlternateInterface) | `AbortError` |
 * | `timeout` (only with the `transferTimeout` option, outside the spec) | `TimeoutError` |
 * | `invalid-argument` | `TypeError` (what WebIDL throws) |
 * | anything else, including `disconnected` | `NetworkError` |
 *
 * @module
 */

import { UsbError } from "../errors.ts";

/**
 * The `DOMException` names WebUSB uses.
 *
 * @example
 * ```ts
 * import type { WebUsbErrorName } from "./errors.ts";
 * const n: WebUsbErrorName = "NotFoundError";
 * console.log(n);
 * ```
 */
export type WebUsbErrorName =
  | "NotFoundError"
  | "InvalidStateError"
  | "InvalidAccessError"
  | "NetworkError"
  | "AbortError"
  | "SecurityError"
  | "TimeoutError";

/**
 * A `DOMException` named `name`, with `cause` kept as its `cause`.
 *
 * @param name the spec's name, such as `"InvalidStateError"`
 * @param message what happened
 * @param cause the error behind it, if any
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { domException } from "./errors.ts";
 * const e = domException("InvalidStateError", "the device is not open");
 * assert.equal(e.name, "InvalidStateError");
 * assert.ok(e instanceof DOMException);
 * ```
 */
export function domException(
  name: WebUsbErrorName,
  message: string,
  cause?: unknown,
): DOMException {
  const e = new DOMException(message, name);
  if (cause !== undefined) {
    Object.defineProperty(e, "cause", {
      value: cause,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  return e;
}

/** The usbkit message with its hint, for the DOMException's message. */
function describe(e: UsbError): string {
  return e.hint === undefined ? e.message : `${e.message} (${e.hint})`;
}

/**
 * What a failure of usbkit becomes at the WebUSB surface: see the table in
 * this module's docs. `gone` says the device is known to be disconnected:
 * then a transfer that was cancelled because of it is a `NetworkError`, as
 * the spec says for a transfer that failed.
 *
 * @param error what usbkit threw
 * @param method the WebUSB method, for the message
 * @param gone true when the device is known to be disconnected
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UsbError } from "../errors.ts";
 * import { toWebUsbError } from "./errors.ts";
 * const e = toWebUsbError(new UsbError("cancelled", "cancelled: the interface was released"), "transferIn", false);
 * assert.equal((e as DOMException).name, "AbortError");
 * assert.equal((e as Error).cause instanceof UsbError, true);
 * ```
 */
export function toWebUsbError(
  error: unknown,
  method: string,
  gone: boolean,
): Error {
  if (error instanceof DOMException || error instanceof TypeError) {
    return error;
  }
  if (!(error instanceof UsbError)) {
    return domException("NetworkError", `${method}: ${String(error)}`, error);
  }
  const text = `${method}: ${describe(error)}`;
  if (gone || error.code === "disconnected") {
    return domException(
      "NetworkError",
      `${method}: the device was disconnected (${describe(error)})`,
      error,
    );
  }
  switch (error.code) {
    case "cancelled":
      return domException("AbortError", text, error);
    case "timeout":
      return domException("TimeoutError", text, error);
    case "invalid-argument":
      return new TypeError(text, { cause: error });
    default:
      return domException("NetworkError", text, error);
  }
}

/**
 * Runs a usbkit argument check and turns its `invalid-argument` UsbError
 * into the `TypeError` WebIDL gives for a bad argument (the UsbError is
 * its `cause`).
 *
 * @param check the check, such as `() => checkInteger(...)`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkInteger } from "../validate.ts";
 * import { webidl } from "./errors.ts";
 * assert.throws(() => webidl(() => checkInteger("transferIn: length", -1, 0, 10)), TypeError);
 * assert.equal(webidl(() => checkInteger("transferIn: length", 3, 0, 10)), 3);
 * ```
 */
export function webidl<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof UsbError && e.code === "invalid-argument") {
      throw new TypeError(describe(e), { cause: e });
    }
    throw e;
  }
}
