/**
 * What a virtual bench is made of: the description the host boots
 * ({@link Bench}), the presets ({@link defaultBench}, {@link fullBench}), and
 * the record the guest finds at `/run/usbkit-bench.json` ({@link BenchInfo}).
 *
 * Everything here is pure data and pure functions, so it is usable both on
 * the host and inside the guest.
 *
 * @module
 */

/**
 * USB speed of the dummy_hcd gadgets (all gadgets of one boot share it).
 *
 * @example
 * ```ts
 * import type { BenchSpeed } from "./bench.ts";
 * const s: BenchSpeed = "high";
 * ```
 */
export type BenchSpeed = "super" | "high";

/**
 * Fields every gadget kind accepts.
 *
 * @example
 * ```ts
 * import type { GadgetCommon } from "./bench.ts";
 * const g: GadgetCommon = { serial: "my-0001", attributes: { bulk_buflen: 65536 } };
 * ```
 */
export interface GadgetCommon {
  /** configfs directory name (unique). Default: `<function><n>`, e.g. `sourcesink0`. */
  name?: string;
  /** idVendor. Default depends on the function, see {@link gadgetDefaults}. */
  vendorId?: number;
  /** idProduct. Default depends on the function, see {@link gadgetDefaults}. */
  productId?: number;
  /** iManufacturer string. Default `usbkit`. */
  manufacturer?: string;
  /** iProduct string. */
  product?: string;
  /** iSerialNumber string (unique within a bench: it is how the guest finds the device). */
  serial?: string;
  /**
   * configfs attributes of the function directory, written in order, e.g.
   * `{ bulk_buflen: 65536, pattern: 1 }` for SourceSink. A key may contain
   * `/` to reach a sub-directory (`"lun.0/file"` for mass_storage).
   */
  attributes?: Readonly<Record<string, string | number>>;
  /** Configuration MaxPower in mA. Default 100. */
  maxPowerMa?: number;
  /**
   * Bind the gadget to its UDC at boot. Default true. Set false for gadgets
   * that need user space first (FunctionFS); bind later with `plugGadget`.
   */
  bind?: boolean;
}

/**
 * SourceSink (f_sourcesink.c): bulk IN 0x81 sources a pattern, bulk OUT 0x02
 * sinks (and checks) it; vendor control requests 0x5b/0x5c write and read a
 * buffer. Attributes: `pattern` (0 zeros, 1 `(i % maxpacket) % 63`, 2 none),
 * `bulk_buflen`, `bulk_qlen`, `iso_qlen`, `isoc_interval`, `isoc_maxpacket`,
 * `isoc_mult`, `isoc_maxburst` (iso is dropped on dummy_hcd).
 *
 * @example
 * ```ts
 * import type { SourceSinkGadgetSpec } from "./bench.ts";
 * const g: SourceSinkGadgetSpec = { function: "sourcesink", attributes: { pattern: 0 } };
 * ```
 */
export interface SourceSinkGadgetSpec extends GadgetCommon {
  /** Function kind. */
  function: "sourcesink";
}

/**
 * Loopback (f_loopback.c): what bulk OUT receives comes back on bulk IN.
 * Attributes: `qlen`, `bulk_buflen`.
 *
 * @example
 * ```ts
 * import type { LoopbackGadgetSpec } from "./bench.ts";
 * const g: LoopbackGadgetSpec = { function: "loopback", attributes: { qlen: 32 } };
 * ```
 */
export interface LoopbackGadgetSpec extends GadgetCommon {
  /** Function kind. */
  function: "loopback";
}

/**
 * Any other configfs function, e.g. `{ function: "custom", type: "acm",
 * module: "usb_f_acm" }` (directory `functions/acm.0`).
 *
 * @example
 * ```ts
 * import type { CustomGadgetSpec } from "./bench.ts";
 * const g: CustomGadgetSpec = { function: "custom", type: "acm", module: "usb_f_acm" };
 * ```
 */
export interface CustomGadgetSpec extends GadgetCommon {
  /** Function kind. */
  function: "custom";
  /** configfs function type: the part before the dot in `functions/<type>.<instance>`. */
  type: string;
  /** Kernel module providing the function (loaded with its dependencies). */
  module: string;
}

/**
 * One gadget on its own dummy_hcd UDC.
 *
 * @example
 * ```ts
 * import type { GadgetSpec } from "./bench.ts";
 * const gs: GadgetSpec[] = [{ function: "sourcesink" }, { function: "loopback", name: "lb" }];
 * ```
 */
export type GadgetSpec =
  | SourceSinkGadgetSpec
  | LoopbackGadgetSpec
  | CustomGadgetSpec;

/**
 * Fields every QEMU device kind accepts.
 *
 * @example
 * ```ts
 * import type { QemuDeviceCommon } from "./bench.ts";
 * const d: QemuDeviceCommon = { name: "disk", serial: "disk-0001" };
 * ```
 */
export interface QemuDeviceCommon {
  /** Unique name (default `<kind><n>`, e.g. `storage0`). */
  name?: string;
  /** iSerialNumber (QEMU's `serial=` property). Default `usbkit-<kind>-000<n+1>`. */
  serial?: string;
}

/**
 * QEMU `usb-storage` (Bulk-Only Transport, SCSI) backed by a raw image file.
 *
 * @example
 * ```ts
 * import type { StorageDeviceSpec } from "./bench.ts";
 * const d: StorageDeviceSpec = { kind: "storage", image: "/srv/disk.img", snapshot: true };
 * ```
 */
export interface StorageDeviceSpec extends QemuDeviceCommon {
  /** Device kind. */
  kind: "storage";
  /**
   * Raw disk image on the host. Default: a generated image in `.cache/bench/`
   * whose sectors follow {@link storageSector}.
   */
  image?: string;
  /** Size of the generated default image in MiB. Default 16. */
  sizeMiB?: number;
  /**
   * Keep guest writes out of the image (QEMU `snapshot=on`). Default: true for
   * the generated image (so it always matches the pattern), false for a
   * given image.
   */
  snapshot?: boolean;
}

/**
 * QEMU `usb-kbd` (HID boot keyboard, interrupt IN).
 *
 * @example
 * ```ts
 * import type { KbdDeviceSpec } from "./bench.ts";
 * const d: KbdDeviceSpec = { kind: "kbd" };
 * ```
 */
export interface KbdDeviceSpec extends QemuDeviceCommon {
  /** Device kind. */
  kind: "kbd";
}

/**
 * QEMU `usb-serial` (an FTDI FT232 look-alike), its output going to a host file.
 *
 * @example
 * ```ts
 * import type { SerialDeviceSpec } from "./bench.ts";
 * const d: SerialDeviceSpec = { kind: "serial" };
 * ```
 */
export interface SerialDeviceSpec extends QemuDeviceCommon {
  /** Device kind. */
  kind: "serial";
}

/**
 * QEMU `usb-audio` (isochronous OUT only), with a silent audio backend.
 *
 * @example
 * ```ts
 * import type { AudioDeviceSpec } from "./bench.ts";
 * const d: AudioDeviceSpec = { kind: "audio" };
 * ```
 */
export interface AudioDeviceSpec extends QemuDeviceCommon {
  /** Device kind. */
  kind: "audio";
}

/**
 * One emulated device on the qemu-xhci controller.
 *
 * @example
 * ```ts
 * import type { QemuDeviceSpec } from "./bench.ts";
 * const ds: QemuDeviceSpec[] = [{ kind: "storage" }, { kind: "kbd" }];
 * ```
 */
export type QemuDeviceSpec =
  | StorageDeviceSpec
  | KbdDeviceSpec
  | SerialDeviceSpec
  | AudioDeviceSpec;

/**
 * The description of one virtual bench: what the guest boots with.
 *
 * @example
 * ```ts
 * import type { Bench } from "./bench.ts";
 * const b: Bench = {
 *   speed: "high",
 *   gadgets: [{ function: "loopback" }],
 *   qemuDevices: [{ kind: "storage", sizeMiB: 64 }],
 *   modules: ["usbtest"],
 *   timeoutSec: 120,
 * };
 * ```
 */
export interface Bench {
  /** dummy_hcd speed for all gadgets. */
  speed: BenchSpeed;
  /** Gadgets, one dummy_hcd UDC each (`dummy_udc.0`, `dummy_udc.1`, …). */
  gadgets: readonly GadgetSpec[];
  /** Emulated devices on qemu-xhci. */
  qemuDevices: readonly QemuDeviceSpec[];
  /**
   * Extra kernel modules to load after the bench's own, e.g. `"usbtest"`.
   * Parameters may follow the name: `"usbtest realworld=1"`.
   */
  modules?: readonly string[];
  /**
   * dummy_hcd UDCs left free for gadgets made at run time (kernel/composite.ts):
   * they follow the gadgets' (`dummy_udc.<gadgets.length>`, …) and are in
   * the guest's record as {@link BenchInfo.spareUdcs}. Each is one more
   * dummy_hcd controller, so one more bus at high speed, two at
   * SuperSpeed (its USB 2 and USB 3 root hubs). Default 0.
   */
  spareUdcs?: number;
  /**
   * Gadget function modules to load at boot for gadgets made at run time
   * (`"usb_f_hid"`, `"usb_f_midi"`…), with their dependencies, like the
   * modules of the bench's own gadgets. Default none.
   */
  gadgetModules?: readonly string[];
  /** Guest memory. Default {@link DEFAULT_MEMORY_MIB}. */
  memoryMiB?: number;
  /** Kill the guest after this long. Default {@link DEFAULT_TIMEOUT_SEC}. */
  timeoutSec?: number;
}

/**
 * Default guest memory. BENCH-NOTES: 128 MiB boots busybox alone; deno inside
 * wants 256 MiB or more, and `deno test` with type info loaded more again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MEMORY_MIB } from "./bench.ts";
 * assert.ok(DEFAULT_MEMORY_MIB >= 256);
 * ```
 */
export const DEFAULT_MEMORY_MIB = 1024;

/**
 * Default hang timeout of a guest run, in seconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_TIMEOUT_SEC } from "./bench.ts";
 * assert.ok(DEFAULT_TIMEOUT_SEC === 600);
 * ```
 */
export const DEFAULT_TIMEOUT_SEC = 600;

/**
 * Where the guest finds the bench record (also in env `USBKIT_BENCH`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BENCH_INFO_PATH } from "./bench.ts";
 * assert.ok(BENCH_INFO_PATH.startsWith("/run/"));
 * ```
 */
export const BENCH_INFO_PATH = "/run/usbkit-bench.json";

/**
 * The default bench: one SuperSpeed SourceSink gadget, 0525:a4a0, which
 * enumerates as bus 2 at 5000M.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultBench } from "./bench.ts";
 * assert.ok(defaultBench.gadgets[0]?.function === "sourcesink");
 * ```
 */
export const defaultBench: Bench = deepFreeze({
  speed: "super",
  gadgets: [{ function: "sourcesink" }],
  qemuDevices: [],
});

/**
 * The gadget function modules of the composite gadgets the device tests
 * make at run time on {@link fullBench}'s spare UDC (kernel/composite.ts,
 * `COMPOSITE_PRESETS`): CDC ACM, NCM, ECM, RNDIS and generic serial, HID,
 * mass storage, printer, and MIDI (which brings ALSA's core: snd,
 * snd-rawmidi, snd-seq-device, soundcore).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { COMPOSITE_MODULES } from "./bench.ts";
 * assert.ok(COMPOSITE_MODULES.includes("usb_f_midi"));
 * ```
 */
export const COMPOSITE_MODULES: readonly string[] = deepFreeze([
  "usb_f_acm",
  "usb_f_ncm",
  "usb_f_ecm",
  "usb_f_rndis",
  "usb_f_serial",
  "usb_f_hid",
  "usb_f_mass_storage",
  "usb_f_printer",
  "usb_f_midi",
]);

/**
 * Every kind of device in one boot: SourceSink, Loopback and CDC-ACM gadgets
 * on three SuperSpeed dummy_hcd controllers, a fourth controller left free
 * for composite gadgets made at run time (with their function modules,
 * {@link COMPOSITE_MODULES}), and usb-storage, usb-kbd, usb-serial and
 * usb-audio on qemu-xhci. The guest test suite runs against this (with
 * `modules: ["usbtest"]` added).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fullBench } from "./bench.ts";
 * assert.ok(fullBench.gadgets.length === 3 && fullBench.qemuDevices.length === 4);
 * assert.ok(fullBench.spareUdcs === 1);
 * ```
 */
export const fullBench: Bench = deepFreeze({
  speed: "super",
  gadgets: [
    { function: "sourcesink" },
    { function: "loopback" },
    // CDC-ACM (f_acm.c): the gadget side is /dev/ttyGS0 in the guest. The
    // WebUSB device test drives it with the npm web-serial-polyfill.
    { function: "custom", name: "acm0", type: "acm", module: "usb_f_acm" },
  ],
  qemuDevices: [
    { kind: "storage" },
    { kind: "kbd" },
    { kind: "serial" },
    { kind: "audio" },
  ],
  spareUdcs: 1,
  gadgetModules: COMPOSITE_MODULES,
});

/**
 * Defaults of a gadget function: IDs and product string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { GadgetDefaults } from "./bench.ts";
 * import { gadgetDefaults } from "./bench.ts";
 * const d: GadgetDefaults = gadgetDefaults({ function: "sourcesink" });
 * assert.ok(d.module === "usb_f_ss_lb");
 * ```
 */
export interface GadgetDefaults {
  /** idVendor. */
  vendorId: number;
  /** idProduct. */
  productId: number;
  /** iProduct string. */
  product: string;
  /** Prefix of the default serial, completed with a 4-digit counter. */
  serialPrefix: string;
  /** configfs function type (`functions/<type>.0`). */
  type: string;
  /** Kernel module providing the function. */
  module: string;
}

/**
 * Default IDs and strings per gadget function.
 *
 * - SourceSink is 0525:a4a0, the NetChip "Gadget Zero" ID, which usbtest
 *   binds (usbtest.c id_table), so kernel-driver detach can be tested.
 * - Loopback is 0525:a4ab: usbtest does not list it (it binds only
 *   0525:a4a0/a4a3/a4a4 of NetChip's IDs) and no other driver or legacy
 *   gadget of Linux 6.1 uses it (grep of drivers/, sound/), so it stays
 *   unbound and plain usbfs owns it.
 * - Custom functions use 1d6b:0104, Linux Foundation "Multifunction
 *   Composite Gadget" (legacy/multi.c), the usual ID for configfs gadgets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gadgetDefaults } from "./bench.ts";
 * assert.ok(gadgetDefaults({ function: "loopback" }).productId === 0xa4ab);
 * ```
 */
export function gadgetDefaults(spec: GadgetSpec): GadgetDefaults {
  switch (spec.function) {
    case "sourcesink":
      return {
        vendorId: 0x0525,
        productId: 0xa4a0,
        product: "SourceSink bench",
        serialPrefix: "usbkit-ss-",
        type: "SourceSink",
        module: "usb_f_ss_lb",
      };
    case "loopback":
      return {
        vendorId: 0x0525,
        productId: 0xa4ab,
        product: "Loopback bench",
        serialPrefix: "usbkit-lb-",
        type: "Loopback",
        module: "usb_f_ss_lb",
      };
    case "custom":
      return {
        vendorId: 0x1d6b,
        productId: 0x0104,
        product: `${spec.type} bench`,
        serialPrefix: `usbkit-${spec.type.toLowerCase()}-`,
        type: spec.type,
        module: spec.module,
      };
  }
}

/**
 * What QEMU calls each device kind, and its descriptor IDs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { QemuDeviceModel } from "./bench.ts";
 * import { qemuDeviceModel } from "./bench.ts";
 * const m: QemuDeviceModel = qemuDeviceModel("storage");
 * assert.ok(m.vendorId === 0x46f4);
 * ```
 */
export interface QemuDeviceModel {
  /** QEMU `-device` driver name. */
  driver: string;
  /** idVendor QEMU gives it. */
  vendorId: number;
  /** idProduct QEMU gives it. */
  productId: number;
}

/**
 * QEMU device models and the IDs QEMU 7.2 gives them (hw/usb/dev-storage.c,
 * dev-hid.c, dev-serial.c, dev-audio.c), checked in a guest with
 * `cat /sys/bus/usb/devices/* /idVendor`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qemuDeviceModel } from "./bench.ts";
 * assert.ok(qemuDeviceModel("kbd").driver === "usb-kbd");
 * ```
 */
export function qemuDeviceModel(kind: QemuDeviceSpec["kind"]): QemuDeviceModel {
  switch (kind) {
    case "storage":
      return { driver: "usb-storage", vendorId: 0x46f4, productId: 0x0001 };
    case "kbd":
      return { driver: "usb-kbd", vendorId: 0x0627, productId: 0x0001 };
    case "serial":
      return { driver: "usb-serial", vendorId: 0x0403, productId: 0x6001 };
    case "audio":
      return { driver: "usb-audio", vendorId: 0x46f4, productId: 0x0002 };
  }
}

/**
 * Where and how a device enumerated in the guest (filled in by the guest).
 *
 * @example
 * ```ts
 * import type { DeviceLocation } from "./bench.ts";
 * const loc: DeviceLocation = {
 *   busnum: 2, devnum: 2, port: "2-1", sysfs: "/sys/bus/usb/devices/2-1",
 *   devnode: "/dev/bus/usb/002/002", speed: "5000",
 * };
 * ```
 */
export interface DeviceLocation {
  /** USB bus number. */
  busnum: number;
  /** Device address on the bus (changes on every re-plug). */
  devnum: number;
  /** Port path, the sysfs name, e.g. `2-1` (stable across re-plug). */
  port: string;
  /** `/sys/bus/usb/devices/<port>`. */
  sysfs: string;
  /** usbfs node, e.g. `/dev/bus/usb/002/002`. */
  devnode: string;
  /** Speed in Mb/s as sysfs says it: `5000`, `480`, `12`, `1.5`. */
  speed: string;
}

/**
 * A gadget as created in the guest.
 *
 * @example
 * ```ts
 * import type { GadgetInfo } from "./bench.ts";
 * function where(g: GadgetInfo): string {
 *   return `${g.name} ${g.id} on ${g.udc}: ${g.location?.devnode ?? "unplugged"}`;
 * }
 * ```
 */
export interface GadgetInfo {
  /** configfs directory name. */
  name: string;
  /** Function kind. */
  function: GadgetSpec["function"];
  /** configfs function directory name, e.g. `SourceSink.0`. */
  functionDir: string;
  /** `/sys/kernel/config/usb_gadget/<name>`. */
  configfs: string;
  /** UDC it binds to, e.g. `dummy_udc.0`. */
  udc: string;
  /** idVendor. */
  vendorId: number;
  /** idProduct. */
  productId: number;
  /** `vvvv:pppp` in lower-case hex. */
  id: string;
  /** iManufacturer. */
  manufacturer: string;
  /** iProduct. */
  product: string;
  /** iSerialNumber. */
  serial: string;
  /** configfs function attributes that were written. */
  attributes: Record<string, string>;
  /** Whether it was bound to its UDC at boot. */
  bound: boolean;
  /** Where it enumerated at boot; null if not bound. */
  location: DeviceLocation | null;
}

/**
 * A QEMU emulated device as seen in the guest.
 *
 * @example
 * ```ts
 * import type { QemuDeviceInfo } from "./bench.ts";
 * function describe(d: QemuDeviceInfo): string {
 *   return d.kind === "storage" ? `${d.name}: ${d.image} (${d.sizeBytes} bytes)` : d.name;
 * }
 * ```
 */
export interface QemuDeviceInfo {
  /** Unique name. */
  name: string;
  /** Device kind. */
  kind: QemuDeviceSpec["kind"];
  /** QEMU driver name (`usb-storage`…). */
  driver: string;
  /** idVendor. */
  vendorId: number;
  /** idProduct. */
  productId: number;
  /** `vvvv:pppp` in lower-case hex. */
  id: string;
  /** iSerialNumber. */
  serial: string;
  /** storage: the backing raw image (same path on host and in guest). */
  image?: string;
  /** storage: image size in bytes. */
  sizeBytes?: number;
  /** storage: whether guest writes are discarded (QEMU snapshot=on). */
  snapshot?: boolean;
  /** storage: whether the image follows {@link storageSector}. */
  patterned?: boolean;
  /** Where it enumerated at boot. */
  location: DeviceLocation | null;
}

/**
 * The record at {@link BENCH_INFO_PATH} in the guest.
 *
 * @example
 * ```ts
 * import type { BenchInfo } from "./bench.ts";
 * function storageOf(info: BenchInfo) {
 *   return info.qemuDevices.find((d) => d.kind === "storage");
 * }
 * ```
 */
export interface BenchInfo {
  /** Format version of this record. */
  version: 1;
  /** Guest kernel release, e.g. `6.1.0-56-amd64`. */
  kernel: string;
  /** dummy_hcd speed. */
  speed: BenchSpeed;
  /** Gadgets, in bench order. */
  gadgets: GadgetInfo[];
  /** QEMU devices, in bench order. */
  qemuDevices: QemuDeviceInfo[];
  /** Kernel modules loaded for the bench, in load order. */
  modules: string[];
  /**
   * dummy_hcd UDCs no gadget of the bench uses, free for gadgets made at
   * run time (see `createComposite` in kernel/composite.ts). Absent in
   * records of older runs.
   */
  spareUdcs?: string[];
  /**
   * The directory `modprobe -d` takes to load more of the guest kernel's
   * modules (its `lib/modules/<release>` is the unpacked module tree);
   * see `loadDrivers` in kernel/guest.ts. Absent in records of older runs.
   */
  modulesRoot?: string;
}

/**
 * Sector size of the storage images.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STORAGE_SECTOR_SIZE } from "./bench.ts";
 * assert.ok(STORAGE_SECTOR_SIZE === 512);
 * ```
 */
export const STORAGE_SECTOR_SIZE = 512;

/**
 * Default size of the generated storage image, MiB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_STORAGE_MIB } from "./bench.ts";
 * assert.ok(DEFAULT_STORAGE_MIB === 16);
 * ```
 */
export const DEFAULT_STORAGE_MIB = 16;

/**
 * The content of sector `lba` of a generated storage image: bytes 0-7 are the
 * LBA as a little-endian u64, byte `i` (8..511) is `(lba * 7 + i) & 0xff`.
 * Every sector is different, and a misplaced read shows which sector it got.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storageSector } from "./bench.ts";
 * const s = storageSector(3);
 * assert.ok(s.length === 512 && s[0] === 3 && s[8] === 29);
 * ```
 */
export function storageSector(lba: number): Uint8Array {
  const s = new Uint8Array(STORAGE_SECTOR_SIZE);
  new DataView(s.buffer).setBigUint64(0, BigInt(lba), true);
  for (let i = 8; i < STORAGE_SECTOR_SIZE; i++) s[i] = (lba * 7 + i) & 0xff;
  return s;
}

/**
 * Formats a VID:PID pair as `vvvv:pppp`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { usbId } from "./bench.ts";
 * assert.ok(usbId(0x525, 0xa4a0) === "0525:a4a0");
 * ```
 */
export function usbId(vendorId: number, productId: number): string {
  const h = (n: number) => n.toString(16).padStart(4, "0");
  return `${h(vendorId)}:${h(productId)}`;
}

/**
 * A gadget with every default filled in (host side, before boot).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ResolvedGadget } from "./bench.ts";
 * import { defaultBench, resolveBench } from "./bench.ts";
 * const g: ResolvedGadget | undefined = resolveBench(defaultBench).gadgets[0];
 * assert.ok(g?.module === "usb_f_ss_lb");
 * ```
 */
export type ResolvedGadget = Omit<GadgetInfo, "location"> & {
  /** Kernel module providing the function. */
  module: string;
  /** Configuration MaxPower, mA. */
  maxPowerMa: number;
};

/**
 * A QEMU device with every default filled in (host side, before boot).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ResolvedQemuDevice } from "./bench.ts";
 * import { fullBench, resolveBench } from "./bench.ts";
 * const d: ResolvedQemuDevice | undefined = resolveBench(fullBench).qemuDevices[0];
 * assert.ok(d?.driver === "usb-storage");
 * ```
 */
export type ResolvedQemuDevice = Omit<QemuDeviceInfo, "location">;

/**
 * A bench with every default filled in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ResolvedBench } from "./bench.ts";
 * import { defaultBench, resolveBench } from "./bench.ts";
 * const r: ResolvedBench = resolveBench(defaultBench);
 * assert.ok(r.memoryMiB === 1024);
 * ```
 */
export interface ResolvedBench {
  /** dummy_hcd speed. */
  speed: BenchSpeed;
  /** Gadgets with names, UDCs, IDs and serials. */
  gadgets: ResolvedGadget[];
  /** QEMU devices with names, IDs and serials (storage image: as given, maybe undefined). */
  qemuDevices: ResolvedQemuDevice[];
  /** Extra modules, as given. */
  modules: string[];
  /** The spare UDCs' names, after the gadgets' (`dummy_udc.3`…). */
  spareUdcs: string[];
  /** Gadget function modules for gadgets made at run time, as given. */
  gadgetModules: string[];
  /** Guest memory, MiB. */
  memoryMiB: number;
  /** Hang timeout, seconds. */
  timeoutSec: number;
}

/**
 * Fills in names, UDCs, IDs and serials, and checks the bench: names and
 * serials must be unique, IDs 16-bit, memory and timeout positive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fullBench, resolveBench } from "./bench.ts";
 * const r = resolveBench(fullBench);
 * assert.ok(r.gadgets[1]?.udc === "dummy_udc.1");
 * assert.ok(r.gadgets[1]?.serial === "usbkit-lb-0001");
 * ```
 */
export function resolveBench(bench: Bench): ResolvedBench {
  const names = new Set<string>();
  const serials = new Set<string>();
  const counters = new Map<string, number>();
  const next = (key: string) => {
    const n = counters.get(key) ?? 0;
    counters.set(key, n + 1);
    return n;
  };
  const claim = (kind: string, set: Set<string>, v: string) => {
    if (kind === "serial" && !/^[A-Za-z0-9._:+-]{1,126}$/.test(v)) {
      // The guest finds devices by serial with a shell loop, and QEMU takes it
      // in an option list: keep it to characters that need no quoting.
      // 126 characters is the most a USB string descriptor holds.
      throw new Error(
        `bench: serial "${v}" must match [A-Za-z0-9._:+-]{1,126}`,
      );
    }
    if (set.has(v)) throw new Error(`bench: duplicate ${kind} "${v}"`);
    set.add(v);
  };
  const checkId = (what: string, v: number) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
      throw new Error(`bench: ${what} ${v} is not a 16-bit number`);
    }
  };
  if (bench.speed !== "super" && bench.speed !== "high") {
    throw new Error(
      `bench: speed must be "super" or "high", not ${bench.speed}`,
    );
  }
  const spare = bench.spareUdcs ?? 0;
  if (!Number.isInteger(spare) || spare < 0) {
    throw new Error(`bench: spareUdcs ${spare} is not a count`);
  }
  if (bench.gadgets.length + spare > 32) {
    // dummy_hcd.c MAX_NUM_UDC
    throw new Error(
      "bench: dummy_hcd supports at most 32 gadgets and spare UDCs",
    );
  }
  const gadgets = bench.gadgets.map((g, i): ResolvedGadget => {
    const d = gadgetDefaults(g);
    const n = next(`g:${d.serialPrefix}`);
    const name = g.name ??
      `${g.function === "custom" ? g.type : g.function}${
        next(`gn:${g.function === "custom" ? g.type : g.function}`)
      }`;
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new Error(
        `bench: gadget name "${name}" must match [A-Za-z0-9_.-]+`,
      );
    }
    claim("device name", names, name);
    const serial = g.serial ??
      `${d.serialPrefix}${String(n + 1).padStart(4, "0")}`;
    claim("serial", serials, serial);
    const vendorId = g.vendorId ?? d.vendorId;
    const productId = g.productId ?? d.productId;
    checkId("vendorId", vendorId);
    checkId("productId", productId);
    const attributes: Record<string, string> = {};
    // f_sourcesink.c zero-fills its options, so pattern defaults to 0 (all
    // zeros). Pattern 1, (i % maxpacket) % 63, lets tests check every byte.
    const given = g.function === "sourcesink"
      ? { pattern: 1, ...g.attributes }
      : g.attributes;
    for (const [k, v] of Object.entries(given ?? {})) {
      if (
        !/^[A-Za-z0-9_.]+(\/[A-Za-z0-9_.]+)*$/.test(k) ||
        k.split("/").some((part) => part === "." || part === "..")
      ) {
        throw new Error(`bench: bad configfs attribute name "${k}"`);
      }
      attributes[k] = String(v);
    }
    return {
      name,
      function: g.function,
      functionDir: `${d.type}.0`,
      configfs: `/sys/kernel/config/usb_gadget/${name}`,
      udc: `dummy_udc.${i}`,
      vendorId,
      productId,
      id: usbId(vendorId, productId),
      manufacturer: g.manufacturer ?? "usbkit",
      product: g.product ?? d.product,
      serial,
      attributes,
      bound: g.bind ?? true,
      module: d.module,
      maxPowerMa: g.maxPowerMa ?? 100,
    };
  });
  const qemuDevices = bench.qemuDevices.map((q): ResolvedQemuDevice => {
    const m = qemuDeviceModel(q.kind);
    const n = next(`q:${q.kind}`);
    const name = q.name ?? `${q.kind}${n}`;
    if (!/^[A-Za-z0-9_-]+$/.test(name)) {
      throw new Error(`bench: device name "${name}" must match [A-Za-z0-9_-]+`);
    }
    claim("device name", names, name);
    const serial = q.serial ??
      `usbkit-${q.kind}-${String(n + 1).padStart(4, "0")}`;
    claim("serial", serials, serial);
    const info: ResolvedQemuDevice = {
      name,
      kind: q.kind,
      driver: m.driver,
      vendorId: m.vendorId,
      productId: m.productId,
      id: usbId(m.vendorId, m.productId),
      serial,
    };
    if (q.kind === "storage") {
      if (q.image !== undefined) info.image = q.image;
      info.sizeBytes = (q.sizeMiB ?? DEFAULT_STORAGE_MIB) * 1024 * 1024;
      info.snapshot = q.snapshot ?? (q.image === undefined);
      info.patterned = q.image === undefined;
    }
    return info;
  });
  const memoryMiB = bench.memoryMiB ?? DEFAULT_MEMORY_MIB;
  const timeoutSec = bench.timeoutSec ?? DEFAULT_TIMEOUT_SEC;
  if (!(memoryMiB >= 128)) {
    throw new Error(
      "bench: memoryMiB must be at least 128 (BENCH-NOTES: less hangs)",
    );
  }
  if (!(timeoutSec > 0)) throw new Error("bench: timeoutSec must be positive");
  return {
    speed: bench.speed,
    gadgets,
    qemuDevices,
    modules: [...(bench.modules ?? [])],
    spareUdcs: Array.from(
      { length: spare },
      (_, i) => `dummy_udc.${bench.gadgets.length + i}`,
    ),
    gadgetModules: [...(bench.gadgetModules ?? [])],
    memoryMiB,
    timeoutSec,
  };
}

/**
 * Freezes an object and everything reachable from it, so presets cannot be
 * changed by accident (spread them into a new object instead).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deepFreeze } from "./bench.ts";
 * const o = deepFreeze({ a: [1] });
 * assert.ok(Object.isFrozen(o.a));
 * ```
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
