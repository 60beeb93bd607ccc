/**
 * Binding again the kernel drivers that a process killed with SIGKILL (or
 * otherwise unable to clean up) left detached: `usb rebind`.
 *
 * Two sources of work: the journal of detached drivers
 * (src/driver_journal.ts), whose entries name the interface and the driver,
 * and, for a selected device, every interface of it that has no driver at
 * all. Either way the kernel is asked to probe the interface again
 * (USBDEVFS_CONNECT through usbfs), which is what the driver's own binding
 * would have done; it needs no root, only access to the device node.
 *
 * @module
 */

import { Device } from "./device.ts";
import {
  clearDetach,
  type DetachRecord,
  readJournal,
  recordAlive,
} from "./driver_journal.ts";
import { type DeviceInfo, listDevices } from "./enumeration.ts";
import { UsbError } from "./errors.ts";
import { type DeviceSelector, selectDevice } from "./selector.ts";

/** What happened to one interface. */
export interface RebindOutcome {
  /** The interface's sysfs name ("2-1:1.0"), or port and number when gone. */
  interface: string;
  /** The driver the journal says was detached, if it says. */
  detachedDriver: string | undefined;
  /**
   * `rebound`: a driver is bound now; `no-driver`: the kernel probed it and no
   * driver wanted it; `already-bound`: nothing to do; `held`: the process
   * that detached it is still running (skipped); `gone`: the device is not
   * attached any more; `failed`: the kernel refused (see `error`).
   */
  result:
    | "rebound"
    | "no-driver"
    | "already-bound"
    | "held"
    | "gone"
    | "failed";
  /** The driver bound after the attempt. */
  driver: string | undefined;
  /** Why it failed. */
  error?: UsbError;
}

/** Options of {@linkcode rebindDetached}. */
export interface RebindOptions {
  /** Only this device, and every driverless interface of it. */
  selector?: DeviceSelector | string;
  /** Also rebind entries whose process is still running. */
  force?: boolean;
}

interface Target {
  portPath: string;
  interfaceNumber: number;
  record?: DetachRecord;
}

function sameDevice(info: DeviceInfo, r: DetachRecord): boolean {
  return info.vendorId === r.vendorId && info.productId === r.productId;
}

/**
 * Binds again what was left detached: the journal's entries whose process
 * is gone (or every entry with `force`), and with a `selector`, every
 * interface of that device that has no driver. Entries that are resolved
 * (rebound, already bound, device gone) leave the journal.
 *
 * @param options which device, and whether to override live processes
 * @returns one outcome per interface looked at
 *
 * @example After a script that detached a driver was killed with SIGKILL
 * ```ts
 * import assert from "node:assert/strict";
 * import { rebindDetached } from "./rebind.ts";
 * const outcomes = await rebindDetached();
 * for (const o of outcomes) console.log(o.interface, o.result, o.driver);
 * assert.ok(outcomes.every((o) => o.result !== "failed"));
 * ```
 */
export async function rebindDetached(
  options: RebindOptions = {},
): Promise<RebindOutcome[]> {
  if (typeof options !== "object" || options === null) {
    throw new UsbError(
      "invalid-argument",
      "rebindDetached(options): options must be an object",
    );
  }
  let devices = await listDevices();
  const only = options.selector === undefined
    ? undefined
    : selectDevice(devices, options.selector);
  const targets: Target[] = [];
  const journal = readJournal();
  for (const r of journal) {
    if (only && r.portPath !== only.portPath) continue;
    targets.push({
      portPath: r.portPath,
      interfaceNumber: r.interfaceNumber,
      record: r,
    });
  }
  if (only) {
    for (const i of only.interfaces) {
      if (i.driver !== undefined) continue;
      if (targets.some((t) => t.interfaceNumber === i.interfaceNumber)) {
        continue;
      }
      targets.push({
        portPath: only.portPath,
        interfaceNumber: i.interfaceNumber,
      });
    }
  }

  const outcomes: RebindOutcome[] = [];
  for (const t of targets) {
    const info = devices.find((d) => d.portPath === t.portPath);
    const name = info
      ? `${t.portPath}:${info.activeConfiguration ?? 0}.${t.interfaceNumber}`
      : `${t.portPath} interface ${t.interfaceNumber}`;
    const base = { interface: name, detachedDriver: t.record?.driver };
    if (t.record && !options.force && recordAlive(t.record)) {
      outcomes.push({ ...base, result: "held", driver: undefined });
      continue;
    }
    if (!info || (t.record && !sameDevice(info, t.record))) {
      // Unplugged (or another device in that port): its drivers were
      // bound afresh at enumeration, so there is nothing left to undo.
      if (t.record) clearDetach(t.portPath, t.interfaceNumber);
      outcomes.push({ ...base, result: "gone", driver: undefined });
      continue;
    }
    const now = info.interfaces.find((i) =>
      i.interfaceNumber === t.interfaceNumber
    );
    if (now?.driver !== undefined) {
      if (t.record) clearDetach(t.portPath, t.interfaceNumber);
      outcomes.push({ ...base, result: "already-bound", driver: now.driver });
      continue;
    }
    let error: UsbError | undefined;
    try {
      await connect(info, t.interfaceNumber);
    } catch (e) {
      error = e instanceof UsbError
        ? e
        : new UsbError("io", String(e), { cause: e });
    }
    devices = await listDevices();
    const after = devices.find((d) => d.portPath === t.portPath)?.interfaces
      .find((i) => i.interfaceNumber === t.interfaceNumber);
    if (error) {
      outcomes.push({
        ...base,
        result: "failed",
        driver: after?.driver,
        error,
      });
      continue;
    }
    if (t.record) clearDetach(t.portPath, t.interfaceNumber);
    outcomes.push({
      ...base,
      result: after?.driver === undefined ? "no-driver" : "rebound",
      driver: after?.driver,
    });
  }
  return outcomes;
}

/** Asks the kernel to probe interface `n` again (USBDEVFS_CONNECT). */
async function connect(info: DeviceInfo, n: number): Promise<void> {
  const dev = Device.openInfo(info, { maxUrbs: 8 });
  try {
    const usbfs = dev.engine.usbfs;
    usbfs.check(
      await usbfs.connectDriver(n),
      `binding a kernel driver to interface ${n}`,
    );
  } finally {
    await dev.close();
  }
}
