/**
 * Attaching an emulated device to this machine's own USB/IP virtual host
 * controller (vhci_hcd), so that the kernel enumerates it like a plugged-in
 * device: lsusb lists it, class drivers bind, usbfs and usbkit open it.
 *
 * vhci_hcd takes a connected stream socket through its sysfs `attach` file
 * ("port sockfd devid speed", drivers/usb/usbip/vhci_sysfs.c). Deno cannot
 * adopt a raw descriptor, so the helper listens on a unix socket in a private
 * temporary directory, a worker connects to it and keeps its end as a
 * `Deno.Conn`, and the helper accepts (checking that the peer is this very
 * process), writes the accepted descriptor to `attach`, and closes it: the
 * kernel holds its own reference from then on, as after the usbip tool exits.
 *
 * The stream is served from that worker, the device runs on the calling
 * thread: usbkit (or any usbfs client) in this same process must be able to
 * cancel a transfer, which blocks its thread in the kernel until vhci_hcd has
 * the RET_UNLINK (USBDEVFS_DISCARDURB is `usb_kill_urb`).
 *
 * Needs root (sysfs writes) and the vhci-hcd module (`modprobe vhci-hcd`; on
 * the virtual bench, `deno task vm --module vhci-hcd`).
 *
 * @example Attach, use, detach
 * ```ts ignore
 * // Needs root and vhci_hcd: tests/device/usbip_test.ts runs attachLocal in the
 * // guest (`deno task vm --module vhci-hcd`).
 * import { attachLocal } from "./attach.ts";
 * import { open } from "../../mod.ts";
 * declare const device: import("../emulated/urb.ts").EmulatedDevice;
 * await using attached = await attachLocal(device);
 * await using dev = await open(attached.devnode);
 * console.log(attached.portPath, dev.deviceDescriptor.vendorId.toString(16));
 * ```
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import {
  sysfsWrite,
  usbipAccept,
  usbipClose,
  usbipError,
  usbipListen,
} from "../usbfs.ts";
import {
  checkInteger,
  checkOptions,
  checkTimeout,
  invalidArgument,
} from "../validate.ts";
import type { ConnectionOptions, UsbipConnection } from "./connection.ts";
import { speedCode } from "./protocol.ts";
import type { EmulatedDevice } from "../emulated/urb.ts";
import { TransportWorker } from "./worker_host.ts";

/** vhci_hcd's first platform device: it holds `attach`, `detach` and every `status*`. */
export const VHCI_SYSFS = "/sys/devices/platform/vhci_hcd.0";

/** `enum usbip_device_status` (include/uapi/linux/usbip.h) values of a vhci port. */
export const VhciPortState = {
  /** No device: free. */
  free: 4,
  /** Attached; the kernel has not addressed it yet. */
  notAssigned: 5,
  /** Attached and addressed. */
  used: 6,
  /** The connection failed. */
  error: 7,
} as const;

/**
 * One line of vhci_hcd's `status` files.
 *
 * @example
 * ```ts
 * import type { VhciPort } from "./attach.ts";
 * const p: VhciPort = { hub: "hs", port: 0, state: 4, speed: 0, devid: 0, sockfd: 0, busid: "0-0" };
 * ```
 */
export interface VhciPort {
  /** The root hub: `hs` takes low, full and high speed; `ss` SuperSpeed. */
  hub: "hs" | "ss";
  /** The port number `attach` and `detach` take. */
  port: number;
  /** {@linkcode VhciPortState}. */
  state: number;
  /** The attached device's speed (`enum usb_device_speed`), or 0. */
  speed: number;
  /** The devid given at attach, or 0. */
  devid: number;
  /** The descriptor number given at attach, or 0. */
  sockfd: number;
  /** The attached device's name on this machine (e.g. "3-1"), or "0-0". */
  busid: string;
}

/**
 * Parses the text of vhci_hcd's `status` files (vhci_sysfs.c
 * `port_show_vhci`): a header line, then
 * `hub port sta spd dev sockfd local_busid` per port. Lines it does not
 * recognise are skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseVhciStatus } from "./attach.ts";
 * const ports = parseVhciStatus(
 *   "hub port sta spd dev      sockfd local_busid\n" +
 *   "hs  0000 006 003 00010002 000005 3-1\n" +
 *   "ss  0015 004 000 00000000 000000 0-0\n",
 * );
 * assert.deepEqual(ports[0], { hub: "hs", port: 0, state: 6, speed: 3, devid: 0x10002, sockfd: 5, busid: "3-1" });
 * assert.equal(ports[1]?.port, 15);
 * ```
 */
export function parseVhciStatus(text: string): VhciPort[] {
  const out: VhciPort[] = [];
  for (const line of text.split("\n")) {
    const m =
      /^(hs|ss)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9a-fA-F]+)\s+(\d+)\s+(\S+)/
        .exec(line.trim());
    if (m === null) continue;
    out.push({
      hub: m[1] as "hs" | "ss",
      port: Number(m[2]),
      state: Number(m[3]),
      speed: Number(m[4]),
      devid: parseInt(m[5]!, 16),
      sockfd: Number(m[6]),
      busid: m[7]!,
    });
  }
  return out;
}

/**
 * Every port of every vhci_hcd controller (`status`, `status.1`, ...).
 *
 * @example On a copy of vhci_hcd's status files (the default `root` needs vhci_hcd loaded)
 * ```ts
 * import assert from "node:assert/strict";
 * import { readVhciPorts } from "./attach.ts";
 * const root = await Deno.makeTempDir();
 * const head = "hub port sta spd dev      sockfd local_busid\n";
 * await Deno.writeTextFile(`${root}/status`, head + "hs  0000 004 000 00000000 000000 0-0\n");
 * await Deno.writeTextFile(`${root}/status.1`, head + "ss  0008 006 005 00010002 000005 3-1\n");
 * const ports = await readVhciPorts(root);
 * assert.equal(ports.filter((p) => p.state === 4).length, 1); // free ports
 * assert.equal(ports[1]?.busid, "3-1");
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @param root vhci_hcd.0's sysfs directory
 * @returns the ports, in the order of the files
 */
export async function readVhciPorts(root = VHCI_SYSFS): Promise<VhciPort[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(root)) {
    if (/^status(\.\d+)?$/.test(e.name)) names.push(e.name);
  }
  names.sort((a, b) => Number(a.slice(7) || 0) - Number(b.slice(7) || 0));
  const out: VhciPort[] = [];
  for (const n of names) {
    out.push(...parseVhciStatus(await Deno.readTextFile(`${root}/${n}`)));
  }
  return out;
}

/**
 * Options of {@linkcode attachLocal}.
 *
 * @example
 * ```ts
 * import type { AttachOptions } from "./attach.ts";
 * const o: AttachOptions = { timeout: 20000, onError: (e) => console.error("device fault", e) };
 * ```
 */
export interface AttachOptions {
  /** Milliseconds to wait for the kernel to enumerate the device (default 10000). */
  timeout?: number;
  /** The devid put in every URB (default `1 << 16 | port + 1`). */
  devid?: number;
  /** See {@linkcode ConnectionOptions.onError}. */
  onError?: (error: unknown) => void;
  /** See {@linkcode ConnectionOptions.maxPending}. */
  maxPending?: number;
}

/**
 * A device attached to this machine's vhci_hcd.
 *
 * @example
 * ```ts ignore
 * // Needs root and vhci_hcd: tests/device/usbip_test.ts attaches devices in the guest.
 * import { attachLocal, type LocalAttachment } from "./attach.ts";
 * declare const device: import("../emulated/urb.ts").EmulatedDevice;
 * const a: LocalAttachment = await attachLocal(device);
 * console.log(a.devnode, a.busNumber, a.deviceAddress);
 * await a.detach();
 * ```
 */
export interface LocalAttachment {
  /** The usbfs node, e.g. /dev/bus/usb/003/002. */
  readonly devnode: string;
  /** The sysfs name, e.g. "3-1" (/sys/bus/usb/devices/3-1). */
  readonly portPath: string;
  /** Bus number. */
  readonly busNumber: number;
  /** Device address on the bus. */
  readonly deviceAddress: number;
  /** The vhci_hcd port (what `usbip port` lists). */
  readonly vhciPort: number;
  /** The served connection (counters, end reason). */
  readonly connection: UsbipConnection;
  /**
   * Unplugs the device (vhci_hcd's `detach`): pending transfers fail with
   * `disconnected`, the device's pending handlers are aborted, and the
   * device is closed. Resolves once the port is free again. Idempotent.
   */
  detach(): Promise<void>;
  /** Same as {@linkcode detach}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return fallback;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function checkDevice(device: unknown): EmulatedDevice {
  const d = device as Partial<EmulatedDevice> | null;
  if (
    typeof d !== "object" || d === null || typeof d.handleUrb !== "function" ||
    typeof d.close !== "function" || typeof d.reset !== "function" ||
    typeof d.summary !== "object" || d.summary === null
  ) {
    throw invalidArgument(
      "attachLocal: device",
      device,
      "an EmulatedDevice (speed, summary, handleUrb, reset, close)",
    );
  }
  if (!["low", "full", "high", "super"].includes(d.speed as string)) {
    throw invalidArgument(
      "attachLocal: device.speed",
      d.speed,
      '"low", "full", "high" or "super"',
    );
  }
  return d as EmulatedDevice;
}

/**
 * Attaches `device` to this machine's vhci_hcd and waits until the kernel
 * has enumerated and configured it. A free port on the right root hub is
 * taken (the high-speed hub for low, full and high speed; the SuperSpeed hub
 * for super). Rejects with a UsbError: `not-found` when vhci_hcd is not
 * loaded, `busy` when no port is free, `access-denied` when not root,
 * `timeout` when the kernel did not enumerate the device in time (it is
 * detached again; the device's answers during enumeration are the usual
 * suspect).
 *
 * Once attached, the device is closed when the attachment ends (detach, the
 * connection failing, or enumeration failing); if vhci_hcd refuses the
 * attach, the device is left as it was.
 *
 * @example
 * ```ts ignore
 * // Needs root and vhci_hcd: tests/device/usbip_test.ts runs attachLocal in the guest;
 * // by hand, `deno task vm --module vhci-hcd -- deno run -A this.ts`.
 * import { attachLocal } from "./attach.ts";
 * declare const device: import("../emulated/urb.ts").EmulatedDevice;
 * const a = await attachLocal(device, { timeout: 20000 });
 * console.log(`lsusb -s ${a.busNumber}:${a.deviceAddress}`);
 * await a.detach();
 * ```
 *
 * @param device the device to plug in
 * @param options timeout, devid, fault reporting
 * @returns where the device is, and `detach`
 */
export async function attachLocal(
  device: EmulatedDevice,
  options: AttachOptions = {},
): Promise<LocalAttachment> {
  checkDevice(device);
  const o = checkOptions("attachLocal: options", options, [
    "timeout",
    "devid",
    "onError",
    "maxPending",
  ]);
  const timeout = checkTimeout("attachLocal: options.timeout", o.timeout) ||
    10000;
  const devidOpt = o.devid === undefined
    ? undefined
    : checkInteger("attachLocal: options.devid", o.devid, 0, 0xffffffff);
  if (o.onError !== undefined && typeof o.onError !== "function") {
    throw invalidArgument(
      "attachLocal: options.onError",
      o.onError,
      "a function or undefined",
    );
  }
  const maxPending = o.maxPending === undefined
    ? undefined
    : checkInteger("attachLocal: options.maxPending", o.maxPending, 1, 1 << 20);

  if (!(await exists(`${VHCI_SYSFS}/attach`))) {
    throw new UsbError(
      "not-found",
      "vhci_hcd (the USB/IP virtual host controller) is not loaded",
      {
        hint:
          "run `modprobe vhci-hcd` as root; on the virtual bench, pass --module vhci-hcd to deno task vm",
      },
    );
  }
  const hub = device.speed === "super" ? "ss" : "hs";
  const free = (await readVhciPorts()).filter((p) =>
    p.hub === hub && p.state === VhciPortState.free
  );
  if (free.length === 0) {
    throw new UsbError(
      "busy",
      `every ${
        hub === "ss" ? "SuperSpeed" : "high-speed"
      } port of vhci_hcd is taken`,
      {
        hint:
          "detach a device (`usbip port` lists them, `usbip detach -p N` frees one)",
      },
    );
  }

  const onError = (o.onError as ((e: unknown) => void) | undefined) ??
    ((e: unknown) => console.error(e));
  const devid = devidOpt ?? ((1 << 16) | (free[0]!.port + 1));
  const connOptions: ConnectionOptions = { devid, onEnd: "none", onError };
  if (maxPending !== undefined) connOptions.maxPending = maxPending;

  // The worker connects to the helper's listener and serves the stream
  // (from before the kernel's first GET_DESCRIPTOR); the helper accepts the
  // other end, whose descriptor goes to vhci_hcd.
  const dir = await Deno.makeTempDir({ prefix: "usbkit-usbip-" });
  const path = `${dir}/vhci.sock`;
  let listener: number;
  try {
    listener = usbipListen(path);
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const worker = new TransportWorker(onError);
  const conn_ = worker.connect(path, device, connOptions);
  let fd: number;
  try {
    fd = await usbipAccept(
      listener,
      5000,
      `cannot accept the worker's connection on ${path}`,
    );
  } catch (e) {
    await conn_.close();
    worker.terminate();
    throw e;
  } finally {
    usbipClose(listener);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  let port: number | undefined;
  try {
    for (const p of free) {
      const r = await sysfsWrite(
        `${VHCI_SYSFS}/attach`,
        `${p.port} ${fd} ${devid} ${speedCode(device.speed)}`,
      );
      if (r === 0) {
        port = p.port;
        break;
      }
      if (r !== -16) {
        throw usbipError(r, `vhci_hcd refused to attach on port ${p.port}`);
      }
      // -EBUSY: another process took the port meanwhile; try the next.
    }
    if (port === undefined) {
      throw new UsbError(
        "busy",
        "every free vhci_hcd port was taken while attaching",
      );
    }
  } catch (e) {
    await conn_.close();
    worker.terminate();
    throw e;
  } finally {
    // The kernel holds its own reference to the socket now.
    usbipClose(fd);
  }
  conn_.closed.then(() => {
    worker.terminate();
    try {
      device.close();
    } catch (e) {
      onError(e);
    }
  });

  let detaching: Promise<void> | undefined;
  const detach = (): Promise<void> => {
    detaching ??= (async () => {
      const r = await sysfsWrite(`${VHCI_SYSFS}/detach`, `${port}`);
      // -EINVAL: the port is no longer connected (the connection failed).
      if (r !== 0 && r !== -22) {
        await conn_.close();
        throw usbipError(r, `vhci_hcd refused to detach port ${port}`);
      }
      if (r !== 0) await conn_.close();
      await conn_.closed;
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const p = (await readVhciPorts()).find((x) => x.port === port);
        if (p === undefined || p.state === VhciPortState.free) break;
        await sleep(10);
      }
    })();
    return detaching;
  };

  // Wait for enumeration: the port addressed, the sysfs device with our
  // ids, its usbfs node, and a configuration chosen.
  const deadline = Date.now() + timeout;
  let ended = false;
  conn_.closed.then(() => ended = true);
  const { vendorId, productId, numConfigurations } = device.summary;
  try {
    for (;;) {
      if (ended) {
        const end = await conn_.closed;
        throw new UsbError(
          "disconnected",
          `the USB/IP connection ended during enumeration (${end.reason}${
            end.error !== undefined ? `: ${String(end.error)}` : ""
          })`,
          { cause: end.error },
        );
      }
      const p = (await readVhciPorts()).find((x) => x.port === port);
      if (
        p !== undefined && p.state === VhciPortState.used && p.busid !== "0-0"
      ) {
        const dir = `/sys/bus/usb/devices/${p.busid}`;
        const vid = parseInt(await readOr(`${dir}/idVendor`, "x"), 16);
        const pid = parseInt(await readOr(`${dir}/idProduct`, "x"), 16);
        const bus = Number(await readOr(`${dir}/busnum`, "x"));
        const dev = Number(await readOr(`${dir}/devnum`, "x"));
        const config = await readOr(`${dir}/bConfigurationValue`, "");
        const devnode = `/dev/bus/usb/${String(bus).padStart(3, "0")}/${
          String(dev).padStart(3, "0")
        }`;
        if (
          vid === vendorId && pid === productId && Number.isInteger(bus) &&
          Number.isInteger(dev) && (numConfigurations === 0 || config !== "") &&
          (await exists(devnode))
        ) {
          return {
            devnode,
            portPath: p.busid,
            busNumber: bus,
            deviceAddress: dev,
            vhciPort: port,
            connection: conn_,
            detach,
            [Symbol.asyncDispose]: detach,
          };
        }
      }
      if (Date.now() > deadline) {
        throw new UsbError(
          "timeout",
          `the kernel did not enumerate the device on vhci_hcd port ${port} within ${timeout} ms`,
          {
            hint:
              "check the device's answers to GET_DESCRIPTOR and SET_CONFIGURATION (dmesg shows what the hub driver saw)",
          },
        );
      }
      await sleep(10);
    }
  } catch (e) {
    await detach().catch(() => {});
    throw e;
  }
}
