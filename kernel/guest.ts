/**
 * Helpers for code running INSIDE the bench guest (device tests, examples):
 * what the bench contains, where each device is now, and unplugging and
 * re-plugging gadgets.
 *
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init) and QEMU's monitor:
 * // tests/device/hotplug_test.ts and tests/device/sequencing_test.ts do this in the guest.
 * import { benchInfo, plugGadget, qemuDeviceAdd, qemuDeviceDel, unplugGadget } from "../kernel/guest.ts";
 * const ss = benchInfo().gadgets.find((g) => g.function === "sourcesink")!;
 * await unplugGadget(ss.name); // the device disappears, as if pulled out
 * const where = await plugGadget(ss.name); // and comes back, new devnum
 * await qemuDeviceDel("storage0"); // QEMU's usb-storage leaves the xHCI port
 * await qemuDeviceAdd("storage0"); // and comes back, same port, same image
 * ```
 *
 * @module
 */

import {
  BENCH_INFO_PATH,
  type BenchInfo,
  type DeviceLocation,
  type GadgetInfo,
  type QemuDeviceInfo,
} from "./bench.ts";
import {
  qemuDeviceProperties,
  QMP_PORT_NAME,
  storageDriveOptions,
} from "./qemu.ts";

export type { BenchInfo, DeviceLocation, GadgetInfo, QemuDeviceInfo };

const SYS_USB = "/sys/bus/usb/devices";

/**
 * Whether this process runs inside a bench guest (env `USBKIT_GUEST=1`, set
 * by the guest init for the command).
 *
 * @example
 * ```ts
 * import { inGuest } from "./guest.ts";
 * if (!inGuest()) console.log("on the host: no virtual devices here");
 * ```
 */
export function inGuest(): boolean {
  return Deno.env.get("USBKIT_GUEST") === "1";
}

let cached: BenchInfo | null = null;

/**
 * The bench record written by the guest init (`USBKIT_BENCH`, by default
 * `/run/usbkit-bench.json`). Throws outside a guest. Locations are those at
 * boot; use {@link locate} for the current one after a re-plug.
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init):
 * // most of tests/device/ starts with it, in the guest.
 * import { benchInfo } from "./guest.ts";
 * for (const g of benchInfo().gadgets) console.log(g.name, g.id, g.location?.devnode);
 * ```
 */
export function benchInfo(): BenchInfo {
  if (cached !== null) return cached;
  const path = Deno.env.get("USBKIT_BENCH") ?? BENCH_INFO_PATH;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(
      `no bench record at ${path}: not running in a usbkit guest? (${
        (e as Error).message
      })`,
    );
  }
  cached = JSON.parse(text) as BenchInfo;
  return cached;
}

/**
 * The gadget called `name` (throws if there is none).
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init):
 * // plugGadget and unplugGadget call it, in the guest (tests/device/hotplug_test.ts).
 * import { gadget } from "./guest.ts";
 * console.log(gadget("sourcesink0").udc); // dummy_udc.0
 * ```
 */
export function gadget(name: string): GadgetInfo {
  const g = benchInfo().gadgets.find((x) => x.name === name);
  if (g === undefined) {
    const names = benchInfo().gadgets.map((x) => x.name).join(", ") || "none";
    throw new Error(`no gadget "${name}" in this bench (gadgets: ${names})`);
  }
  return g;
}

/**
 * The QEMU device called `name`, or the first one of kind `name` (throws if
 * there is none).
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init):
 * // tests/device/io_test.ts and tests/device/enumeration_test.ts call it in the guest.
 * import { qemuDevice } from "./guest.ts";
 * console.log(qemuDevice("storage").image);
 * ```
 */
export function qemuDevice(name: string): QemuDeviceInfo {
  const all = benchInfo().qemuDevices;
  const d = all.find((x) => x.name === name) ??
    all.find((x) => x.kind === name);
  if (d === undefined) {
    const names = all.map((x) => x.name).join(", ") || "none";
    throw new Error(
      `no QEMU device "${name}" in this bench (devices: ${names})`,
    );
  }
  return d;
}

function readSys(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return null;
  }
}

/**
 * Where the device with iSerialNumber `serial` is right now, from sysfs, or
 * null if it is not connected. The devnum changes at every re-plug; the
 * port usually stays.
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init) and sysfs with the bench's devices:
 * // tests/device/webusb_test.ts calls it in the guest.
 * import { locate } from "./guest.ts";
 * console.log(locate("usbkit-ss-0001")?.devnode); // /dev/bus/usb/002/002
 * ```
 */
export function locate(serial: string): DeviceLocation | null {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(SYS_USB)];
  } catch {
    return null;
  }
  for (const e of entries) {
    // Devices are "B-P.P..."; interfaces have a colon, root hubs are "usbN".
    if (e.name.includes(":") || e.name.startsWith("usb")) continue;
    const dir = `${SYS_USB}/${e.name}`;
    if (readSys(`${dir}/serial`) !== serial) continue;
    const bus = Number(readSys(`${dir}/busnum`));
    const dev = Number(readSys(`${dir}/devnum`));
    if (!bus || !dev) return null;
    const p3 = (n: number) => String(n).padStart(3, "0");
    return {
      busnum: bus,
      devnum: dev,
      port: e.name,
      sysfs: dir,
      devnode: `/dev/bus/usb/${p3(bus)}/${p3(dev)}`,
      speed: readSys(`${dir}/speed`) ?? "",
    };
  }
  return null;
}

/**
 * True when `p` exists (a file, a directory or a device node).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { existsSync } from "./guest.ts";
 * assert.equal(existsSync("/nonexistent/usbkit"), false);
 * ```
 */
export function existsSync(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Options of {@link waitForDevice}, {@link plugGadget}, {@link unplugGadget}.
 *
 * @example
 * ```ts
 * import type { WaitOptions } from "./guest.ts";
 * const o: WaitOptions = { timeoutMs: 30_000, intervalMs: 50 };
 * ```
 */
export interface WaitOptions {
  /** Give up after this long (default 15000 ms: enumeration under TCG is slow). */
  timeoutMs?: number;
  /** Poll interval (default 20 ms). There is no udev in the guest to notify us. */
  intervalMs?: number;
}

/**
 * Waits until the device with `serial` is present (its devnode exists too)
 * or, with `present: false`, gone (sysfs entry and devnode both). Returns the
 * location when present, null when gone; throws on timeout.
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init) and its devices:
 * // kernel/composite.ts calls it, in the guest (tests/device/descriptors_lsusb_test.ts).
 * import { waitForDevice } from "./guest.ts";
 * const loc = await waitForDevice("usbkit-lb-0001", true);
 * ```
 */
export async function waitForDevice(
  serial: string,
  present: boolean,
  opts: WaitOptions = {},
): Promise<DeviceLocation | null> {
  const timeout = opts.timeoutMs ?? 15000;
  const interval = opts.intervalMs ?? 20;
  const t0 = Date.now();
  let lastNode: string | null = null;
  for (;;) {
    const loc = locate(serial);
    if (loc !== null) lastNode = loc.devnode;
    if (present && loc !== null && existsSync(loc.devnode)) return loc;
    if (
      !present && loc === null && (lastNode === null || !existsSync(lastNode))
    ) {
      return null;
    }
    if (Date.now() - t0 > timeout) {
      throw new Error(
        `device ${serial} did not ${
          present ? "appear" : "disappear"
        } within ${timeout} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Disconnects a gadget from its UDC (`echo "" > UDC` in configfs): for the
 * host side this is the device being pulled out, even mid-transfer. Waits
 * until it is gone unless `wait` is false. Unplugging an unplugged gadget
 * only waits.
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init), root and configfs:
 * // tests/device/hotplug_test.ts unbinds gadgets this way in the guest.
 * import { unplugGadget } from "./guest.ts";
 * await unplugGadget("sourcesink0");
 * ```
 */
export async function unplugGadget(
  name: string,
  opts: WaitOptions & { wait?: boolean } = {},
): Promise<void> {
  const g = gadget(name);
  const before = locate(g.serial);
  // An empty line unbinds (drivers/usb/gadget/configfs.c
  // gadget_dev_desc_UDC_store); it fails with ENODEV when already unbound.
  if (gadgetBound(name)) Deno.writeTextFileSync(`${g.configfs}/UDC`, "\n");
  if (opts.wait === false) return;
  await waitForDevice(g.serial, false, opts);
  // devtmpfs removes the node from its own thread: wait for that too.
  const t0 = Date.now();
  while (before !== null && existsSync(before.devnode)) {
    if (Date.now() - t0 > (opts.timeoutMs ?? 15000)) {
      throw new Error(
        `${before.devnode} still exists after unplugging ${name}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}

/**
 * Connects a gadget to its UDC again (or for the first time, for gadgets
 * created with `bind: false`) and waits until it has enumerated. Returns its
 * new location. Plugging a plugged gadget only waits.
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init), root and configfs:
 * // tests/device/hotplug_test.ts binds gadgets this way in the guest.
 * import { plugGadget } from "./guest.ts";
 * const loc = await plugGadget("sourcesink0");
 * console.log(loc.devnode);
 * ```
 */
export async function plugGadget(
  name: string,
  opts: WaitOptions = {},
): Promise<DeviceLocation> {
  const g = gadget(name);
  // Binding twice fails with EBUSY: a bound gadget only needs the wait.
  if (!gadgetBound(name)) {
    Deno.writeTextFileSync(`${g.configfs}/UDC`, `${g.udc}\n`);
  }
  const loc = await waitForDevice(g.serial, true, opts);
  if (loc === null) throw new Error(`gadget ${name} did not come back`);
  return loc;
}

/**
 * One reply of QEMU's monitor: `return` on success, `error` otherwise.
 *
 * @example
 * ```ts
 * import type { QmpReply } from "./guest.ts";
 * const r: QmpReply = { error: { class: "DeviceNotFound", desc: "Device 'x' not found" } };
 * ```
 */
export interface QmpReply {
  /** The command's result. */
  return?: unknown;
  /** Why the command failed. */
  error?: { class: string; desc: string };
}

/** The guest's device node of the virtio-serial port called `name`. */
function portDevice(name: string): string | null {
  try {
    for (const e of Deno.readDirSync("/sys/class/virtio-ports")) {
      if (readSys(`/sys/class/virtio-ports/${e.name}/name`) === name) {
        return `/dev/${e.name}`;
      }
    }
  } catch {
    // no virtio-serial ports at all
  }
  return null;
}

let qmpSequence = 0;

/**
 * Runs one command of QEMU's monitor (QMP) from inside the guest, over the
 * bench's virtio-serial port `usbkit.qmp` (kernel/qemu.ts connects it to
 * QEMU's monitor). The port has one user at a time: a second caller waits
 * for it. Replies are matched by id, so events and replies left from an
 * earlier session are skipped. Rejects on a timeout or when the port is
 * missing; a command QEMU refuses resolves with its `error`.
 *
 * @param execute the QMP command, such as `query-status`
 * @param args its arguments
 * @param opts how long to wait for the port and the reply (default 15000 ms)
 * @returns QEMU's reply
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init) and QEMU's monitor socket:
 * // qemuDeviceDel and qemuDeviceAdd use it (tests/device/sequencing_test.ts, in the guest).
 * import { qmp } from "./guest.ts";
 * console.log((await qmp("query-status")).return); // { status: "running", … }
 * ```
 */
export async function qmp(
  execute: string,
  args?: Record<string, unknown>,
  opts: WaitOptions = {},
): Promise<QmpReply> {
  const timeout = opts.timeoutMs ?? 15000;
  const deadline = Date.now() + timeout;
  const path = portDevice(QMP_PORT_NAME);
  if (path === null) {
    throw new Error(
      `no virtio-serial port ${QMP_PORT_NAME} in this guest: QEMU's monitor is not reachable (a bench booted by an older kernel/qemu.ts?)`,
    );
  }
  // virtio_console lets one process open a port at a time (EBUSY).
  let file: Deno.FsFile;
  for (;;) {
    try {
      file = await Deno.open(path, { read: true, write: true });
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.Busy) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
    }
  }
  const id = `usbkit-${Deno.pid}-${++qmpSequence}`;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // The monitor wants qmp_capabilities once per connection; the connection
    // outlives this session, so a second one is refused, harmlessly.
    const lines = [
      { execute: "qmp_capabilities", id: `${id}-caps` },
      { execute, ...(args ? { arguments: args } : {}), id },
    ].map((c) => JSON.stringify(c)).join("\n") + "\n";
    // The write blocks while QEMU is not connected to the port
    // (virtio_console's wait_port_writable): it is under the timeout too.
    const read = async (): Promise<QmpReply> => {
      let out = encoder.encode(lines);
      while (out.length > 0) out = out.subarray(await file.write(out));
      const buffer = new Uint8Array(65536);
      let text = "";
      for (;;) {
        const n = await file.read(buffer);
        if (n === null) throw new Error("QEMU's monitor port closed");
        text += decoder.decode(buffer.subarray(0, n), { stream: true });
        let nl: number;
        while ((nl = text.indexOf("\n")) >= 0) {
          const line = text.slice(0, nl).trim();
          text = text.slice(nl + 1);
          if (line === "") continue;
          let reply: QmpReply & { id?: unknown };
          try {
            reply = JSON.parse(line);
          } catch {
            continue; // not JSON: not ours
          }
          if (reply.id === id) return reply;
        }
      }
    };
    return await Promise.race([
      read(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `QEMU's monitor did not answer ${execute} within ${timeout} ms`,
              ),
            ),
          Math.max(0, deadline - Date.now()),
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    file.close();
  }
}

/** The bench's QEMU device `name`, with its place among them. */
function qemuDeviceAt(name: string): { device: QemuDeviceInfo; index: number } {
  const device = qemuDevice(name);
  return { device, index: benchInfo().qemuDevices.indexOf(device) };
}

/**
 * Removes a QEMU device of the bench from its xHCI port (QMP `device_del`):
 * for the guest, the device is pulled out, even mid-transfer. Waits until
 * it is gone unless `wait` is false. Removing a removed device only waits.
 * QEMU also deletes a storage device's drive: {@linkcode qemuDeviceAdd}
 * adds it again.
 *
 * @param name the device's name in the bench (`storage0`), or its kind
 * @param opts whether and how long to wait
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init) and QEMU's monitor socket:
 * // tests/device/sequencing_test.ts unplugs the usb-storage this way in the guest.
 * import { qemuDeviceDel } from "./guest.ts";
 * await qemuDeviceDel("storage0");
 * ```
 */
export async function qemuDeviceDel(
  name: string,
  opts: WaitOptions & { wait?: boolean } = {},
): Promise<void> {
  const { device } = qemuDeviceAt(name);
  const before = locate(device.serial);
  const r = await qmp("device_del", { id: device.name }, opts);
  if (r.error && r.error.class !== "DeviceNotFound") {
    throw new Error(`device_del ${device.name}: ${r.error.desc}`);
  }
  if (opts.wait === false) return;
  await waitForDevice(device.serial, false, opts);
  const t0 = Date.now();
  while (before !== null && existsSync(before.devnode)) {
    if (Date.now() - t0 > (opts.timeoutMs ?? 15000)) {
      throw new Error(`${before.devnode} still exists after removing ${name}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}

/**
 * Plugs a QEMU device of the bench back (QMP `device_add`), with the
 * properties it was booted with: the same id, serial, xHCI port and backend
 * (for usb-storage the same image and options; its drive is added again
 * first if QEMU deleted it). Waits until it has enumerated and returns its
 * location. Adding a present device only waits.
 *
 * A `snapshot` drive (the generated image) comes back as the image is:
 * writes of the guest before the removal are gone with the old drive. A
 * drive without `snapshot` writes to the image, so they stay.
 *
 * @param name the device's name in the bench (`storage0`), or its kind
 * @param opts how long to wait
 * @returns where it enumerated
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init) and QEMU's monitor socket:
 * // tests/device/sequencing_test.ts plugs the usb-storage back this way in the guest.
 * import { qemuDeviceAdd } from "./guest.ts";
 * const loc = await qemuDeviceAdd("storage0");
 * console.log(loc.devnode);
 * ```
 */
export async function qemuDeviceAdd(
  name: string,
  opts: WaitOptions = {},
): Promise<DeviceLocation> {
  const { device, index } = qemuDeviceAt(name);
  if (device.kind === "storage") {
    const blocks = await qmp("query-block", undefined, opts);
    const drive = `drv-${device.name}`;
    const present = Array.isArray(blocks.return) &&
      blocks.return.some((b: { device?: string }) => b.device === drive);
    if (!present) {
      const options = storageDriveOptions(device);
      if (/\s/.test(options)) {
        throw new Error(`storage ${device.name}: image path has white space`);
      }
      const r = await qmp("human-monitor-command", {
        "command-line": `drive_add 0 ${options}`,
      }, opts);
      // HMP answers in text; an empty or "OK" answer is success.
      const text = typeof r.return === "string" ? r.return.trim() : "";
      if (r.error || (text !== "" && text !== "OK")) {
        throw new Error(
          `drive_add ${drive}: ${r.error?.desc ?? text}`,
        );
      }
    }
  }
  const { driver, properties } = qemuDeviceProperties(device, index);
  const r = await qmp("device_add", { driver, ...properties }, opts);
  if (r.error && !/Duplicate device ID/.test(r.error.desc)) {
    throw new Error(`device_add ${device.name}: ${r.error.desc}`);
  }
  const loc = await waitForDevice(device.serial, true, opts);
  if (loc === null) throw new Error(`QEMU device ${name} did not come back`);
  return loc;
}

/**
 * Whether a gadget is currently bound to its UDC (configfs `UDC` not empty).
 *
 * @example
 * ```ts ignore
 * // Needs the guest's bench record (/run/usbkit-bench.json, written by its init) and configfs:
 * // tests/device/hotplug_test.ts calls it in the guest.
 * import { gadgetBound } from "./guest.ts";
 * console.log(gadgetBound("loopback0"));
 * ```
 */
export function gadgetBound(name: string): boolean {
  return (readSys(`${gadget(name).configfs}/UDC`) ?? "") !== "";
}

/**
 * The kernel modules loaded now (`/proc/modules`), most recently loaded
 * first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadedModules } from "./guest.ts";
 * assert.ok(Array.isArray(await loadedModules()));
 * ```
 */
export async function loadedModules(): Promise<string[]> {
  try {
    const text = await Deno.readTextFile("/proc/modules");
    return text.split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) =>
      n !== ""
    );
  } catch {
    return [];
  }
}

/** Every `modalias` in the sysfs subtree of `dir` (symbolic links not followed). */
async function modaliases(dir: string, depth = 8): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return out; // the device went away meanwhile
  }
  for (const e of entries) {
    if (e.name === "modalias" && e.isFile) {
      const a = (await Deno.readTextFile(`${dir}/modalias`).catch(() => ""))
        .trim();
      if (a !== "") out.push(a);
    } else if (e.isDirectory && !e.isSymlink && depth > 0) {
      out.push(...await modaliases(`${dir}/${e.name}`, depth - 1));
    }
  }
  return out;
}

/**
 * Options of {@linkcode loadDrivers}.
 *
 * @example
 * ```ts
 * import type { LoadDriversOptions } from "./guest.ts";
 * const o: LoadDriversOptions = { modulesRoot: "/", rounds: 4 };
 * ```
 */
export interface LoadDriversOptions {
  /**
   * The directory `modprobe -d` takes (its `lib/modules/<release>` holds
   * the modules). Default: the bench record's `modulesRoot` inside a guest,
   * else the system's own modules.
   */
  modulesRoot?: string;
  /** At most this many rounds of loading (default 6). */
  rounds?: number;
}

/**
 * Loads the kernel modules a USB device asks for, as udev does on a
 * desktop (the guest has no udev): `modprobe` of every `modalias` under the
 * device's sysfs directory (its interfaces), then again for what the
 * drivers that bound created (a HID device under usbhid, an input device
 * under hid-generic, which evdev takes), until nothing new appears. Drivers
 * bind as their module loads. Aliases nothing matches are skipped.
 *
 * @param port the device's sysfs name, e.g. "3-1"
 * @param options where the modules are; how many rounds
 * @returns the modules it loaded, in load order (for
 *   {@linkcode unloadModules})
 *
 * @example
 * ```ts ignore
 * // Needs root and the guest's kernel modules, with a CDC ACM device written in TypeScript
 * // attached at 3-1: tests/device/webusb_serial_test.ts does this in the guest.
 * import { loadDrivers } from "./guest.ts";
 * console.log(await loadDrivers("3-1")); // [ "cdc_acm" ], and /dev/ttyACM0 exists
 * ```
 */
export async function loadDrivers(
  port: string,
  options: LoadDriversOptions = {},
): Promise<string[]> {
  const root = options.modulesRoot ??
    (inGuest() ? benchInfo().modulesRoot : undefined);
  const before = new Set(await loadedModules());
  const dir = await Deno.realPath(`${SYS_USB}/${port}`);
  const seen = new Set<string>();
  for (let round = 0; round < (options.rounds ?? 6); round++) {
    const fresh = (await modaliases(dir)).filter((a) => !seen.has(a));
    if (fresh.length === 0) break;
    for (const a of fresh) seen.add(a);
    // -a: every name; -q: an alias no module matches is not an error. The
    // exit status says only that one of them matched nothing.
    const args = [...(root ? ["-d", root] : []), "-q", "-a", ...fresh];
    let out;
    try {
      out = await new Deno.Command("modprobe", {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
    } catch (e) {
      throw new Error(
        `cannot run modprobe (kmod) to load the drivers of ${port}: ${
          (e as Error).message
        }`,
      );
    }
    const err = new TextDecoder().decode(out.stderr).trim();
    if (err !== "") console.error(`modprobe: ${err}`);
  }
  return (await loadedModules()).filter((m) => !before.has(m)).reverse();
}

/**
 * Unloads modules (`rmmod`), last loaded first: what
 * {@linkcode loadDrivers} returned, to leave the kernel as it was. A module
 * still in use stays; the names of those that could not be unloaded are
 * returned.
 *
 * @param modules module names, in load order
 * @returns those still loaded
 *
 * @example
 * ```ts ignore
 * // Needs root and the guest's kernel modules: tests/device/emulated_devices_test.ts
 * // loads and unloads class drivers this way in the guest.
 * import { loadDrivers, unloadModules } from "./guest.ts";
 * const loaded = await loadDrivers("3-1");
 * // ... use the device through its kernel driver ...
 * await unloadModules(loaded);
 * ```
 */
export async function unloadModules(
  modules: readonly string[],
): Promise<string[]> {
  const left: string[] = [];
  for (const m of [...modules].reverse()) {
    const r = await new Deno.Command("rmmod", {
      args: [m],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output().catch(() => null);
    if (r === null || !r.success) left.push(m);
  }
  return left;
}
