/**
 * Composite configfs gadgets made at run time, inside the bench guest, on a
 * spare dummy_hcd UDC (a bench's `spareUdcs`): several functions, one or
 * more configurations, bound, enumerated, and torn down again. The
 * attribute names are those of drivers/usb/gadget/configfs.c and
 * Documentation/ABI/testing/configfs-usb-gadget-* (Linux 6.1); the order of
 * the teardown is Documentation/usb/gadget_configfs.rst's.
 *
 * ```ts ignore
 * // Needs root, configfs and a spare dummy_hcd UDC (the guest's fullBench):
 * // tests/device/descriptors_lsusb_test.ts makes these composites in the guest.
 * import { COMPOSITE_PRESETS, createComposite } from "../kernel/composite.ts";
 * await using g = await createComposite(COMPOSITE_PRESETS[0]!);
 * console.log(g.location.port); // "7-1": two configurations, IADs
 * // leaving the block unbinds it and removes it from configfs
 * ```
 *
 * @module
 */

import type { DeviceLocation } from "./bench.ts";
import {
  benchInfo,
  existsSync,
  waitForDevice,
  type WaitOptions,
} from "./guest.ts";

const GADGETS = "/sys/kernel/config/usb_gadget";

/**
 * One function of a composite gadget: its configfs directory and
 * attributes.
 *
 * @example
 * ```ts
 * import type { CompositeFunction } from "./composite.ts";
 * const f: CompositeFunction = {
 *   dir: "mass_storage.usb0",
 *   attributes: { "lun.0/removable": 1 },
 *   backingFiles: { "lun.0/file": 1 << 20 },
 * };
 * ```
 */
export interface CompositeFunction {
  /** configfs function directory, `<type>.<instance>`, e.g. `acm.usb0`. */
  dir: string;
  /**
   * Attributes written in order, before the backing files. A key may
   * contain `/` to reach a sub-directory (`lun.0/removable`). Bytes are
   * written as they are (HID's `report_desc`).
   */
  attributes?: Readonly<Record<string, string | number | Uint8Array>>;
  /**
   * Attributes that take a file's path (mass_storage's `lun.0/file`): a
   * zero-filled file of this many bytes is made in the guest's /tmp, its
   * path written, and it is removed with the gadget.
   */
  backingFiles?: Readonly<Record<string, number>>;
}

/**
 * One configuration (`configs/c.<n>`): its string and its functions.
 *
 * @example
 * ```ts
 * import type { CompositeConfiguration } from "./composite.ts";
 * const c: CompositeConfiguration = { label: "ACM + NCM", functions: ["acm.usb0", "ncm.usb0"] };
 * ```
 */
export interface CompositeConfiguration {
  /** iConfiguration string. */
  label: string;
  /** MaxPower, mA. Default 100. */
  maxPowerMa?: number;
  /** bmAttributes. Default 0x80 (bus powered). */
  attributes?: number;
  /** Function directories linked into it, in interface order. */
  functions: readonly string[];
}

/**
 * A composite gadget.
 *
 * @example
 * ```ts
 * import type { CompositeSpec } from "./composite.ts";
 * const s: CompositeSpec = {
 *   name: "two-serials", vendorId: 0x1d6b, productId: 0x0104,
 *   product: "two serial ports", serial: "usbkit-two-serials",
 *   functions: [{ dir: "acm.a" }, { dir: "gser.b" }],
 *   configurations: [{ label: "ACM + gser", functions: ["acm.a", "gser.b"] }],
 * };
 * ```
 */
export interface CompositeSpec {
  /** configfs gadget directory name. */
  name: string;
  /** idVendor. */
  vendorId: number;
  /** idProduct. */
  productId: number;
  /** bcdDevice. Default: the kernel's (configfs's get_default_bcdDevice). */
  deviceVersion?: number;
  /** bDeviceClass, bDeviceSubClass, bDeviceProtocol. Default 0/0/0 (per interface). */
  deviceClass?: readonly [number, number, number];
  /** iManufacturer. Default `usbkit`. */
  manufacturer?: string;
  /** iProduct. */
  product: string;
  /** iSerialNumber: how the device is found once it has enumerated. */
  serial: string;
  /** Functions, created in this order. */
  functions: readonly CompositeFunction[];
  /** Configurations `c.1`, `c.2`, … in this order. */
  configurations: readonly CompositeConfiguration[];
}

/**
 * A composite gadget made by {@linkcode createComposite}, bound and
 * enumerated. `await using` removes it.
 *
 * @example
 * ```ts ignore
 * // Needs root, configfs and a spare dummy_hcd UDC (the guest's fullBench):
 * // tests/device/descriptors_lsusb_test.ts makes these composites in the guest.
 * import { COMPOSITE_PRESETS, createComposite } from "./composite.ts";
 * const g = await createComposite(COMPOSITE_PRESETS[1]!);
 * try { console.log(g.location.devnode); } finally { await g.remove(); }
 * ```
 */
export interface Composite extends AsyncDisposable {
  /** The spec it was made from. */
  readonly spec: CompositeSpec;
  /** Its configfs directory. */
  readonly configfs: string;
  /** The UDC it is bound to. */
  readonly udc: string;
  /** Where it enumerated. */
  readonly location: DeviceLocation;
  /** Unbinds it, waits until it is gone, and removes it from configfs. */
  remove(): Promise<void>;
}

/**
 * The boot keyboard report descriptor of Documentation/usb/gadget_hid.rst
 * (8-byte input report: modifiers, reserved, six key codes; 1-byte LED
 * output report).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KEYBOARD_REPORT_DESCRIPTOR } from "./composite.ts";
 * assert.equal(KEYBOARD_REPORT_DESCRIPTOR.length, 63);
 * ```
 */
export const KEYBOARD_REPORT_DESCRIPTOR: Uint8Array = Uint8Array.from(
  ("05010906a101050719e029e71500250175019508810295017508810395057501" +
    "05081901290591029501750391039506750815002565050719002965810" +
    "0c0").match(/../g)!,
  (b) => parseInt(b, 16),
);

/**
 * The composites of issue 14, as configfs gadgets (usb_f_* of the bench's
 * `gadgetModules`, see `COMPOSITE_MODULES` in kernel/bench.ts):
 *
 * 1. CDC ACM + NCM with their IADs in configuration 1, ACM (IAD again) +
 *    ECM in configuration 2; device class 0xef/2/1 (IAD);
 * 2. HID boot keyboard + mass storage (a 1 MiB image) + printer;
 * 3. RNDIS (IAD) + MIDI (1 in, 1 out jack) + generic serial.
 *
 * All are 1d6b:0104 (Linux Foundation, Multifunction Composite Gadget);
 * the serial tells them apart.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { COMPOSITE_PRESETS } from "./composite.ts";
 * assert.equal(COMPOSITE_PRESETS[0]?.configurations.length, 2);
 * ```
 */
export const COMPOSITE_PRESETS: readonly CompositeSpec[] = [
  {
    name: "composite-cdc",
    vendorId: 0x1d6b,
    productId: 0x0104,
    deviceClass: [0xef, 0x02, 0x01],
    product: "ACM+NCM+ECM composite",
    serial: "usbkit-composite-cdc",
    functions: [{ dir: "acm.usb0" }, { dir: "ncm.usb0" }, { dir: "ecm.usb0" }],
    configurations: [
      { label: "ACM + NCM", functions: ["acm.usb0", "ncm.usb0"] },
      {
        label: "ACM + ECM",
        maxPowerMa: 250,
        attributes: 0xc0, // self powered
        functions: ["acm.usb0", "ecm.usb0"],
      },
    ],
  },
  {
    name: "composite-hid-msc-printer",
    vendorId: 0x1d6b,
    productId: 0x0104,
    product: "HID+storage+printer composite",
    serial: "usbkit-composite-hid-msc-printer",
    functions: [
      {
        dir: "hid.usb0",
        attributes: {
          protocol: 1, // keyboard
          subclass: 1, // boot interface
          report_length: 8,
          report_desc: KEYBOARD_REPORT_DESCRIPTOR,
        },
      },
      {
        dir: "mass_storage.usb0",
        attributes: { stall: 1, "lun.0/removable": 1 },
        backingFiles: { "lun.0/file": 1 << 20 },
      },
      {
        dir: "printer.usb0",
        attributes: {
          pnp_string: "MFG:usbkit;MDL:bench printer;CMD:PCL;CLS:PRINTER;",
          q_len: 4,
        },
      },
    ],
    configurations: [{
      label: "HID + storage + printer",
      functions: ["hid.usb0", "mass_storage.usb0", "printer.usb0"],
    }],
  },
  {
    name: "composite-rndis-midi-gser",
    vendorId: 0x1d6b,
    productId: 0x0104,
    deviceClass: [0xef, 0x02, 0x01],
    product: "RNDIS+MIDI+gser composite",
    serial: "usbkit-composite-rndis-midi-gser",
    functions: [
      { dir: "rndis.usb0" },
      {
        dir: "midi.usb0",
        attributes: { id: "usbkit", in_ports: 1, out_ports: 1 },
      },
      { dir: "gser.usb0" },
    ],
    configurations: [{
      label: "RNDIS + MIDI + gser",
      functions: ["rndis.usb0", "midi.usb0", "gser.usb0"],
    }],
  },
];

/**
 * A spare UDC of the bench (its record's `spareUdcs`) that no configfs
 * gadget is bound to now, or null if there is none (or no bench record:
 * not in a guest).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { freeSpareUdc } from "./composite.ts";
 * // "dummy_udc.3" in the guest's fullBench; here, on the host, there is no bench record
 * assert.equal(freeSpareUdc(), null);
 * ```
 */
export function freeSpareUdc(): string | null {
  const used = new Set<string>();
  try {
    for (const e of Deno.readDirSync(GADGETS)) {
      const udc = readText(`${GADGETS}/${e.name}/UDC`);
      if (udc !== "") used.add(udc);
    }
  } catch {
    // configfs not mounted: nothing is bound
  }
  let spare: string[];
  try {
    spare = benchInfo().spareUdcs ?? [];
  } catch {
    return null; // not in a guest: no bench record
  }
  return spare.find((u) => !used.has(u) && existsSync(`/sys/class/udc/${u}`)) ??
    null;
}

/**
 * Options of {@linkcode createComposite}.
 *
 * @example
 * ```ts
 * import type { CreateCompositeOptions } from "./composite.ts";
 * const o: CreateCompositeOptions = { udc: "dummy_udc.3", timeoutMs: 30_000 };
 * ```
 */
export interface CreateCompositeOptions extends WaitOptions {
  /** The UDC to bind to. Default: {@linkcode freeSpareUdc}. */
  udc?: string;
}

/**
 * Builds a composite gadget in configfs (strings, functions and their
 * attributes, configurations and their strings, the links), binds it to a
 * spare UDC and waits until the device has enumerated (sysfs and its
 * devnode). On any failure what was made is removed again, and the error
 * names the configfs file the kernel refused (with `dmesg`'s last lines
 * when binding failed).
 *
 * @param spec the gadget
 * @param opts the UDC; how long to wait
 * @returns the gadget, to {@linkcode Composite.remove} when done
 *
 * @example
 * ```ts ignore
 * // Needs root, configfs and a spare dummy_hcd UDC (the guest's fullBench):
 * // tests/device/descriptors_lsusb_test.ts makes these composites in the guest.
 * import { COMPOSITE_PRESETS, createComposite } from "./composite.ts";
 * await using g = await createComposite(COMPOSITE_PRESETS[2]!);
 * ```
 */
export async function createComposite(
  spec: CompositeSpec,
  opts: CreateCompositeOptions = {},
): Promise<Composite> {
  const udc = opts.udc ?? freeSpareUdc();
  if (udc === null) {
    throw new Error(
      "no free spare UDC in this bench: boot it with spareUdcs (fullBench has one)",
    );
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(spec.name)) {
    throw new Error(`composite name "${spec.name}" must match [A-Za-z0-9_.-]+`);
  }
  const G = `${GADGETS}/${spec.name}`;
  // What was made, in order: removed in reverse (links, configuration
  // strings, configurations, functions, strings, the gadget).
  const made: string[] = [];
  const files: string[] = [];
  let bound = false;
  const mkdir = (p: string) => {
    try {
      Deno.mkdirSync(p);
    } catch (e) {
      throw new Error(`configfs: cannot create ${p}: ${(e as Error).message}`);
    }
    made.push(p);
  };
  const teardown = async () => {
    if (bound) {
      try {
        // An empty line unbinds (configfs.c gadget_dev_desc_UDC_store).
        Deno.writeTextFileSync(`${G}/UDC`, "\n");
      } catch {
        // already unbound
      }
      bound = false;
      await waitForDevice(spec.serial, false, opts);
    }
    const errors: string[] = [];
    for (const p of made.reverse()) {
      try {
        Deno.removeSync(p); // rmdir for configfs groups, unlink for links
      } catch (e) {
        errors.push(`${p}: ${(e as Error).message}`);
      }
    }
    made.length = 0;
    for (const f of files) Deno.removeSync(f);
    files.length = 0;
    if (errors.length > 0) {
      throw new Error(`configfs: cannot remove ${errors.join("; ")}`);
    }
  };
  try {
    mkdir(G);
    const hex = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;
    write(`${G}/idVendor`, hex(spec.vendorId));
    write(`${G}/idProduct`, hex(spec.productId));
    if (spec.deviceVersion !== undefined) {
      write(`${G}/bcdDevice`, hex(spec.deviceVersion));
    }
    if (spec.deviceClass !== undefined) {
      const [c, s, p] = spec.deviceClass;
      write(`${G}/bDeviceClass`, String(c));
      write(`${G}/bDeviceSubClass`, String(s));
      write(`${G}/bDeviceProtocol`, String(p));
    }
    mkdir(`${G}/strings/0x409`);
    write(`${G}/strings/0x409/manufacturer`, spec.manufacturer ?? "usbkit");
    write(`${G}/strings/0x409/product`, spec.product);
    write(`${G}/strings/0x409/serialnumber`, spec.serial);
    for (const f of spec.functions) {
      const dir = `${G}/functions/${f.dir}`;
      mkdir(dir);
      for (const [k, v] of Object.entries(f.attributes ?? {})) {
        write(`${dir}/${k}`, v);
      }
      for (const [k, size] of Object.entries(f.backingFiles ?? {})) {
        const file = await Deno.makeTempFile({
          prefix: `usbkit-${spec.name}-`,
          suffix: ".img",
        });
        files.push(file);
        await Deno.truncate(file, size);
        write(`${dir}/${k}`, file);
      }
    }
    for (const [i, c] of spec.configurations.entries()) {
      const dir = `${G}/configs/c.${i + 1}`;
      mkdir(dir);
      write(`${dir}/MaxPower`, String(c.maxPowerMa ?? 100));
      write(`${dir}/bmAttributes`, `0x${(c.attributes ?? 0x80).toString(16)}`);
      mkdir(`${dir}/strings/0x409`);
      write(`${dir}/strings/0x409/configuration`, c.label);
    }
    for (const [i, c] of spec.configurations.entries()) {
      for (const f of c.functions) {
        const link = `${G}/configs/c.${i + 1}/${f}`;
        try {
          Deno.symlinkSync(`${G}/functions/${f}`, link);
        } catch (e) {
          throw new Error(
            `configfs: cannot link ${f} into c.${i + 1}: ${
              (e as Error).message
            }`,
          );
        }
        made.push(link);
      }
    }
    try {
      Deno.writeTextFileSync(`${G}/UDC`, `${udc}\n`);
    } catch (e) {
      throw new Error(
        `configfs: cannot bind ${spec.name} to ${udc}: ${
          (e as Error).message
        }${await dmesgTail()}`,
      );
    }
    bound = true;
    const location = await waitForDevice(spec.serial, true, opts);
    if (location === null) throw new Error(`${spec.name} did not enumerate`);
    let removed: Promise<void> | null = null;
    const remove = () => removed ??= teardown();
    return {
      spec,
      configfs: G,
      udc,
      location,
      remove,
      [Symbol.asyncDispose]: remove,
    };
  } catch (e) {
    await teardown().catch(() => {});
    throw e;
  }
}

function write(path: string, value: string | number | Uint8Array): void {
  try {
    if (value instanceof Uint8Array) Deno.writeFileSync(path, value);
    else Deno.writeTextFileSync(path, String(value));
  } catch (e) {
    throw new Error(
      `configfs: cannot write ${
        value instanceof Uint8Array ? `${value.length} bytes` : `"${value}"`
      } to ${path}: ${(e as Error).message}`,
    );
  }
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return "";
  }
}

/** The kernel log's last lines, to say why a function would not bind. */
async function dmesgTail(): Promise<string> {
  try {
    const r = await new Deno.Command("dmesg", {
      stdout: "piped",
      stderr: "null",
    }).output();
    const lines = new TextDecoder().decode(r.stdout).trimEnd().split("\n");
    return `\n${lines.slice(-8).join("\n")}`;
  } catch {
    return "";
  }
}
