/**
 * The exit statuses of the `usb` command, in one place. Scripts and CI
 * switch on these; they are documented in the README.
 *
 * | status | meaning |
 * |---|---|
 * | 0 | success: every step passed |
 * | 1 | a step failed, or a device operation failed |
 * | 2 | invalid input: a recipe, a usage error, no such device (or several) |
 * | 3 | broken installation: the helper is missing, or cannot be built or loaded |
 * | 129, 130, 143 | interrupted by SIGHUP, SIGINT (Ctrl-C), SIGTERM: 128 + the signal number, after cleaning up |
 *
 * @module
 */

import type { UsbErrorCode } from "./errors.ts";

/** Every step passed; the command did what it was asked. */
export const EXIT_OK = 0;
/** A step failed, or a device operation failed. */
export const EXIT_FAILED = 1;
/** Invalid input: a recipe, the command line, a selector matching no device or several. */
export const EXIT_INVALID = 2;
/** The installation is broken: the helper is missing or cannot be built or loaded. */
export const EXIT_BROKEN = 3;

/** The signals usbkit handles, with their numbers. */
export const EXIT_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/** A signal usbkit cleans up after. */
export type ExitSignal = keyof typeof EXIT_SIGNALS;

/**
 * The status after cleaning up on `signal`: 128 + its number, as a shell
 * reports a process killed by it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signalExitCode } from "./exit_codes.ts";
 * assert.ok(signalExitCode("SIGINT") === 130 && signalExitCode("SIGTERM") === 143);
 * ```
 */
export function signalExitCode(signal: ExitSignal): number {
  return 128 + EXIT_SIGNALS[signal];
}

/**
 * The status for a UsbError that ended a command.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exitCodeFor } from "./exit_codes.ts";
 * assert.ok(exitCodeFor("not-found") === 2 && exitCodeFor("helper-unavailable") === 3);
 * assert.ok(exitCodeFor("stall") === 1);
 * ```
 */
export function exitCodeFor(code: UsbErrorCode | string): number {
  switch (code) {
    case "invalid-argument":
    case "not-found":
    case "ambiguous":
      return EXIT_INVALID;
    case "helper-unavailable":
      return EXIT_BROKEN;
    default:
      return EXIT_FAILED;
  }
}
