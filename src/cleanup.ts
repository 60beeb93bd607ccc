/**
 * Every exit cleans up: the open devices of this process, and what happens to
 * them on Ctrl-C, SIGTERM, SIGHUP and `Deno.exit()`.
 *
 * While a device is open, usbkit listens for SIGINT, SIGTERM and SIGHUP. On
 * any of them it releases every claimed interface of every open device (the
 * kernel cancels their transfers as it does), binds again the kernel drivers
 * usbkit detached, and exits with 128 + the signal number, as a shell
 * reports a process killed by that signal: 130 for SIGINT, 143 for SIGTERM,
 * 129 for SIGHUP. This is done synchronously, so no pending promise of the
 * script can reject and print between the signal and the exit. The same
 * release runs on `Deno.exit()`, at the natural end of a script that never
 * closed its device (the `unload` event), and when an uncaught error or
 * rejection ends the process.
 *
 * A script that handles signals itself turns this off with
 * `handleExitSignals(false)` and calls {@linkcode closeAllDevices} from its
 * own handler. SIGKILL cannot be caught by anyone: `usb rebind` binds again
 * what a killed process left detached (see src/driver_journal.ts).
 *
 * @module
 */

import { UsbError } from "./errors.ts";
import { EXIT_SIGNALS, type ExitSignal, signalExitCode } from "./exit_codes.ts";

/** What the registry needs from an open device. */
export interface OpenResource {
  /** Closes it: cancels, releases, binds detached drivers again. */
  close(): Promise<void>;
  /** Synchronous last resort: release interfaces and bind drivers again. */
  emergencyRelease(): void;
}

const open = new Set<OpenResource>();
let enabled = true;
let unloadInstalled = false;
const listeners = new Map<ExitSignal, () => void>();

/**
 * Synchronously releases the claimed interfaces of every open device and
 * binds again the kernel drivers usbkit detached: for a handler that must
 * exit now (a second Ctrl-C). Prefer {@linkcode closeAllDevices}.
 *
 * @example
 * ```ts
 * import { releaseAllNow } from "./cleanup.ts";
 * releaseAllNow(); // nothing open: nothing to do
 * ```
 */
export function releaseAllNow(): void {
  emergencyAll();
}

function emergencyAll(): void {
  for (const r of [...open]) {
    try {
      r.emergencyRelease();
    } catch {
      // Keep going: the others still need their drivers back.
    }
  }
}

function onSignal(signal: ExitSignal): void {
  // Synchronous on purpose: the kernel cancels the URBs of an interface as
  // it is released (devio.c, destroy_async_on_interface), so nothing is left
  // to await, and no pending promise of the script can reject and print
  // between the signal and the exit.
  emergencyAll();
  Deno.exit(signalExitCode(signal));
}

function onUnload(): void {
  emergencyAll();
}

/** An uncaught error or rejection is about to end the process. */
function onFatal(e: Event): void {
  if (!e.defaultPrevented) emergencyAll();
}

function installSignals(): void {
  if (listeners.size > 0 || !enabled) return;
  for (const s of Object.keys(EXIT_SIGNALS) as ExitSignal[]) {
    const fn = () => void onSignal(s);
    try {
      Deno.addSignalListener(s, fn);
      listeners.set(s, fn);
    } catch {
      // Not supported here: the default action applies.
    }
  }
}

function removeSignals(): void {
  for (const [s, fn] of listeners) Deno.removeSignalListener(s, fn);
  listeners.clear();
}

/**
 * Turns usbkit's handling of SIGINT, SIGTERM and SIGHUP on (the default) or
 * off, for scripts that handle signals themselves. The `unload` cleanup
 * stays on either way.
 *
 * @param on whether usbkit handles the signals
 *
 * @example A script with its own Ctrl-C handling
 * ```ts
 * import { closeAllDevices, handleExitSignals } from "./cleanup.ts";
 * handleExitSignals(false);
 * const onInt = async () => {
 *   await closeAllDevices(); // cancel, release, bind drivers again
 *   Deno.exit(130);
 * };
 * Deno.addSignalListener("SIGINT", onInt);
 * Deno.removeSignalListener("SIGINT", onInt);
 * handleExitSignals(true);
 * ```
 */
export function handleExitSignals(on: boolean): void {
  if (typeof on !== "boolean") {
    throw new UsbError(
      "invalid-argument",
      `handleExitSignals(on): on must be true or false, got ${typeof on}`,
    );
  }
  enabled = on;
  if (!on) removeSignals();
  else if (open.size > 0) installSignals();
}

/**
 * Closes every device this process has open (each `close()`: transfers
 * cancelled, interfaces released, detached kernel drivers bound again).
 * Never rejects.
 *
 * @example
 * ```ts
 * import { closeAllDevices } from "./cleanup.ts";
 * await closeAllDevices(); // nothing open: resolves at once
 * ```
 */
export async function closeAllDevices(): Promise<void> {
  await Promise.allSettled([...open].map((r) => r.close()));
}

/**
 * Registers an open device (done by `open()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openCount, trackOpen, untrackOpen } from "./cleanup.ts";
 * const r = { close: () => Promise.resolve(), emergencyRelease() {} };
 * trackOpen(r);
 * assert.ok(openCount() === 1);
 * untrackOpen(r);
 * assert.ok(openCount() === 0);
 * ```
 */
export function trackOpen(r: OpenResource): void {
  open.add(r);
  installSignals();
  if (!unloadInstalled) {
    unloadInstalled = true;
    globalThis.addEventListener("unload", onUnload);
    globalThis.addEventListener("error", onFatal);
    globalThis.addEventListener("unhandledrejection", onFatal);
  }
}

/**
 * Unregisters a closed device; the signal listeners go with the last one, so
 * an idle script exits as usual.
 *
 * @example
 * ```ts
 * import { untrackOpen } from "./cleanup.ts";
 * untrackOpen({ close: () => Promise.resolve(), emergencyRelease() {} }); // unknown: no-op
 * ```
 */
export function untrackOpen(r: OpenResource): void {
  open.delete(r);
  if (open.size === 0) {
    removeSignals();
    if (unloadInstalled) {
      globalThis.removeEventListener("unload", onUnload);
      globalThis.removeEventListener("error", onFatal);
      globalThis.removeEventListener("unhandledrejection", onFatal);
    }
    unloadInstalled = false;
  }
}

/**
 * How many devices are open in this process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openCount } from "./cleanup.ts";
 * assert.ok(openCount() >= 0);
 * ```
 */
export function openCount(): number {
  return open.size;
}
