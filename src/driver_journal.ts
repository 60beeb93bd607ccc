/**
 * The journal of kernel drivers usbkit detached, so that none stays unbound
 * after a process that cannot clean up (SIGKILL, a power cut of the lab PC's
 * session, a crash in native code).
 *
 * `claimInterface(n, { detachKernelDriver: true })` writes one small file per
 * detached interface before it returns; `release()` and `close()` delete it.
 * A file whose process is gone is a driver left unbound: `usb rebind` (or
 * {@linkcode rebindDetached}) reads the journal and asks the kernel to probe
 * those interfaces again (USBDEVFS_CONNECT).
 *
 * The journal lives in `$USBKIT_STATE_DIR`, else `/run/usbkit` for root, else
 * `$XDG_RUNTIME_DIR/usbkit`, else `/tmp/usbkit-<uid>`. Writing it is best
 * effort: a read-only file system costs the journal, never the claim.
 *
 * @module
 */

/** One interface whose kernel driver usbkit detached. */
export interface DetachRecord {
  /** The process that detached it. */
  pid: number;
  /** That process's start time (field 22 of /proc/PID/stat), against pid reuse. */
  pidStart: string;
  /** The device's port path ("2-1"), stable across re-enumeration. */
  portPath: string;
  /** The usbfs node at the time. */
  devnode: string;
  /** idVendor, to recognise the device at that port. */
  vendorId: number;
  /** idProduct. */
  productId: number;
  /** bInterfaceNumber. */
  interfaceNumber: number;
  /** The kernel driver that was bound ("usbtest", "cdc_acm"). */
  driver: string;
  /** When, as an ISO date. */
  detachedAt: string;
}

/**
 * The journal's directory (see the module documentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { journalDir } from "./driver_journal.ts";
 * assert.ok(journalDir().includes("usbkit"));
 * ```
 */
export function journalDir(): string {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  const explicit = env("USBKIT_STATE_DIR");
  if (explicit) return explicit;
  const uid = Deno.uid();
  if (uid === 0) return "/run/usbkit";
  const xdg = env("XDG_RUNTIME_DIR");
  if (xdg) return `${xdg}/usbkit`;
  return `/tmp/usbkit-${uid ?? "user"}`;
}

function fileOf(portPath: string, interfaceNumber: number): string {
  return `${journalDir()}/detached-${portPath}-if${interfaceNumber}.json`;
}

/**
 * The start time of a process (field 22 of /proc/PID/stat), or undefined when
 * it does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { processStart } from "./driver_journal.ts";
 * assert.ok(processStart(Deno.pid) !== undefined);
 * ```
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name may hold spaces and parentheses: fields follow the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

/**
 * True while the process that wrote `r` is still running.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { processStart, recordAlive } from "./driver_journal.ts";
 * const mine = { pid: Deno.pid, pidStart: processStart(Deno.pid)! };
 * assert.ok(recordAlive(mine));
 * assert.ok(!recordAlive({ ...mine, pidStart: "0" }));
 * ```
 */
export function recordAlive(r: Pick<DetachRecord, "pid" | "pidStart">) {
  return processStart(r.pid) === r.pidStart;
}

/**
 * Writes the journal entry for a detached driver. Best effort: failures are
 * ignored (the claim matters more than the journal).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clearDetach, readJournal, recordDetach } from "./driver_journal.ts";
 * Deno.env.set("USBKIT_STATE_DIR", await Deno.makeTempDir());
 * recordDetach({ portPath: "9-9", devnode: "/dev/bus/usb/009/002", vendorId: 0x0525,
 *   productId: 0xa4a0, interfaceNumber: 0, driver: "usbtest" });
 * assert.ok(readJournal().some((r) => r.portPath === "9-9" && r.pid === Deno.pid));
 * clearDetach("9-9", 0);
 * assert.ok(!readJournal().some((r) => r.portPath === "9-9"));
 * Deno.env.delete("USBKIT_STATE_DIR");
 * ```
 */
export function recordDetach(
  r: Omit<DetachRecord, "pid" | "pidStart" | "detachedAt">,
): void {
  try {
    const record: DetachRecord = {
      pid: Deno.pid,
      pidStart: processStart(Deno.pid) ?? "",
      ...r,
      detachedAt: new Date().toISOString(),
    };
    Deno.mkdirSync(journalDir(), { recursive: true, mode: 0o700 });
    const path = fileOf(r.portPath, r.interfaceNumber);
    Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(record) + "\n");
    Deno.renameSync(`${path}.tmp`, path);
  } catch {
    // Read-only or not allowed: the claim goes on without a journal.
  }
}

/**
 * Deletes the journal entry of an interface whose driver is bound again.
 *
 * @example
 * ```ts
 * import { clearDetach } from "./driver_journal.ts";
 * clearDetach("9-9", 3); // nothing to delete: no error
 * ```
 */
export function clearDetach(portPath: string, interfaceNumber: number): void {
  try {
    Deno.removeSync(fileOf(portPath, interfaceNumber));
  } catch {
    // Already gone.
  }
}

/**
 * Every entry of the journal. Unreadable or malformed files are skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readJournal } from "./driver_journal.ts";
 * assert.ok(Array.isArray(readJournal()));
 * ```
 */
export function readJournal(): DetachRecord[] {
  const out: DetachRecord[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(journalDir())];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^detached-.*\.json$/.test(e.name)) continue;
    try {
      const r = JSON.parse(
        Deno.readTextFileSync(`${journalDir()}/${e.name}`),
      ) as DetachRecord;
      if (
        typeof r.portPath === "string" &&
        Number.isInteger(r.interfaceNumber) && typeof r.driver === "string"
      ) out.push(r);
    } catch {
      // Half-written or foreign: skip.
    }
  }
  return out.sort((a, b) =>
    a.portPath.localeCompare(b.portPath) ||
    a.interfaceNumber - b.interfaceNumber
  );
}
