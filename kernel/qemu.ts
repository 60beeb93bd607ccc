/**
 * The QEMU command line of a bench boot (pure, unit-tested on the host).
 *
 * @module
 */

import type { ResolvedQemuDevice } from "./bench.ts";
import { qemuEscape } from "./util.ts";

/**
 * Unix socket paths QEMU connects to (the host listens on them).
 *
 * @example
 * ```ts
 * import type { QemuSockets } from "./qemu.ts";
 * const s: QemuSockets = { console: "/r/con", ctl: "/r/ctl", stdout: "/r/out", stderr: "/r/err" };
 * ```
 */
export interface QemuSockets {
  /** Serial console (ttyS0): kernel messages and init's log. */
  console: string;
  /** virtio-serial port `usbkit.ctl`. */
  ctl: string;
  /** virtio-serial port `usbkit.stdout`. */
  stdout: string;
  /** virtio-serial port `usbkit.stderr`. */
  stderr: string;
}

/**
 * Inputs of {@link qemuArgs}.
 *
 * @example
 * ```ts
 * import type { QemuConfig } from "./qemu.ts";
 * function memoryArg(c: QemuConfig): string {
 *   return `${c.memoryMiB}M`;
 * }
 * ```
 */
export interface QemuConfig {
  /** Uncompressed ELF kernel. */
  vmlinux: string;
  /** Initramfs archive. */
  initramfs: string;
  /** Kernel command line. */
  cmdline: string;
  /** Guest memory in MiB. */
  memoryMiB: number;
  /** vCPUs. */
  smp: number;
  /** Project directory, shared read-write with tag `project`. */
  project: string;
  /** Sockets for console and ports. */
  sockets: QemuSockets;
  /** Emulated USB devices; storage entries must have `image` set. */
  devices: readonly ResolvedQemuDevice[];
  /** Directory for per-run files (usb-serial output). */
  runDir: string;
}

/**
 * The kernel command line. `quiet loglevel=3` keeps the serial console (slow
 * under TCG) nearly silent unless `verbose`; `panic=-1` reboots at once on a
 * panic, which `-no-reboot` turns into a QEMU exit; `usbkit_run=` reaches
 * init as an environment variable (init/main.c passes unknown `name=value`
 * parameters to init).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelCmdline } from "./qemu.ts";
 * assert.ok(kernelCmdline("/tmp/r", false).includes("usbkit_run=/tmp/r"));
 * ```
 */
export function kernelCmdline(runDir: string, verbose: boolean): string {
  if (/\s/.test(runDir)) {
    throw new Error(`run directory must not contain white space: ${runDir}`);
  }
  return [
    "console=ttyS0",
    ...(verbose ? ["loglevel=7"] : ["quiet", "loglevel=3"]),
    "panic=-1",
    "mitigations=off",
    // No TSC watchdog or timer check: under TCG both only cost boot time.
    "tsc=reliable",
    "no_timer_check",
    // Skip the crypto self-tests: about 0.3 s of initcalls under TCG
    // (initcall_debug: crypto_algapi_init, crypto_kdf108_init).
    "cryptomgr.notests",
    `usbkit_run=${runDir}`,
  ].join(" ");
}

/**
 * QEMU arguments (without the program name) for a bench boot: TCG with
 * multi-threading (KVM does not work on this machine kind, BENCH-NOTES),
 * direct boot of the ELF kernel, the host root read-only and the project
 * read-write over 9p, a virtio-serial device with the three usbkit ports
 * and a fourth to QEMU's monitor (QMP, for hotplug from the guest), and
 * qemu-xhci with the emulated devices, each on a fixed port.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qemuArgs } from "./qemu.ts";
 * const a = qemuArgs({
 *   vmlinux: "/k/vmlinux", initramfs: "/k/i.gz", cmdline: "quiet", memoryMiB: 512, smp: 2,
 *   project: "/p", runDir: "/r",
 *   sockets: { console: "/r/con", ctl: "/r/ctl", stdout: "/r/out", stderr: "/r/err" },
 *   devices: [{ name: "kbd0", kind: "kbd", driver: "usb-kbd", vendorId: 0x627, productId: 1, id: "0627:0001", serial: "k1" }],
 * });
 * assert.ok(a.includes("usb-kbd,bus=xhci.0,serial=k1,id=kbd0,port=1"));
 * assert.ok(a.includes("chardev=qmp,mode=control"));
 * ```
 */
export function qemuArgs(c: QemuConfig): string[] {
  const e = qemuEscape;
  const a: string[] = [
    "-accel",
    "tcg,thread=multi",
    "-cpu",
    "max",
    "-M",
    "q35",
    "-smp",
    String(c.smp),
    "-m",
    `${c.memoryMiB}M`,
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-monitor",
    "none",
    "-no-reboot",
    "-kernel",
    c.vmlinux,
    "-initrd",
    c.initramfs,
    "-append",
    c.cmdline,
    "-chardev",
    `socket,id=con,path=${e(c.sockets.console)}`,
    "-serial",
    "chardev:con",
    "-fsdev",
    "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
    "-device",
    "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
    "-fsdev",
    `local,id=project,path=${e(c.project)},security_model=none,multidevs=remap`,
    "-device",
    "virtio-9p-pci,fsdev=project,mount_tag=project",
    "-device",
    "virtio-serial-pci,id=vser",
  ];
  for (
    const [id, name] of [["ctl", "usbkit.ctl"], ["stdout", "usbkit.stdout"], [
      "stderr",
      "usbkit.stderr",
    ]] as const
  ) {
    a.push(
      "-chardev",
      `socket,id=${id},path=${e(c.sockets[id])}`,
      "-device",
      `virtserialport,bus=vser.0,chardev=${id},name=${name}`,
    );
  }
  // QEMU's monitor (QMP) for the guest, on a fourth port: a server socket
  // the monitor listens on, and a client socket to it that QEMU itself
  // opens and hands to the port (one chardev cannot serve two front ends).
  const qmp = qmpSocketPath(c.runDir);
  a.push(
    "-chardev",
    `socket,id=qmp,path=${e(qmp)},server=on,wait=off`,
    "-mon",
    "chardev=qmp,mode=control",
    "-chardev",
    `socket,id=qmp-guest,path=${e(qmp)}`,
    "-device",
    `virtserialport,bus=vser.0,chardev=qmp-guest,name=${QMP_PORT_NAME}`,
  );
  if (c.devices.length > 0) {
    // 8+8 ports instead of the default 4+4, room for every device kind twice.
    a.push("-device", "qemu-xhci,id=xhci,p2=8,p3=8");
  }
  c.devices.forEach((d, i) => {
    if (d.kind === "storage") {
      a.push("-drive", storageDriveOptions(d));
    }
    switch (d.kind) {
      case "serial":
        // usb-serial needs an open backend (BENCH-NOTES): a file on the host.
        a.push(
          "-chardev",
          `file,id=chr-${d.name},path=${e(`${c.runDir}/${d.name}.out`)}`,
        );
        break;
      case "audio":
        a.push("-audiodev", `none,id=aud-${d.name}`);
        break;
    }
    const p = qemuDeviceProperties(d, i);
    a.push(
      "-device",
      [
        p.driver,
        ...Object.entries(p.properties).map(([k, v]) => `${k}=${e(v)}`),
      ].join(","),
    );
  });
  return a;
}

/**
 * The name of the guest's virtio-serial port to QEMU's monitor (QMP): the
 * guest finds it under `/sys/class/virtio-ports/` (kernel/guest.ts `qmp`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { QMP_PORT_NAME } from "./qemu.ts";
 * assert.equal(QMP_PORT_NAME, "usbkit.qmp");
 * ```
 */
export const QMP_PORT_NAME = "usbkit.qmp";

/**
 * Where QEMU's monitor socket of a run is: in the run directory, made by
 * QEMU (the host does not listen on it).
 *
 * @param runDir the run directory
 * @returns the socket path
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qmpSocketPath } from "./qemu.ts";
 * assert.equal(qmpSocketPath("/tmp/r"), "/tmp/r/qmp.sock");
 * ```
 */
export function qmpSocketPath(runDir: string): string {
  return `${runDir}/qmp.sock`;
}

/**
 * The `-device` of a bench's QEMU device: its driver and properties, the same
 * on the command line and for QMP `device_add` when the guest plugs it back
 * (kernel/guest.ts `qemuDeviceAdd`). Its id is its name (what `device_del`
 * takes), and its xHCI port is fixed (device `i` of the bench on port
 * `i + 1`), so that it comes back where it was.
 *
 * @param d the device, resolved
 * @param index its place among the bench's QEMU devices
 * @returns the driver and the properties (values unescaped)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qemuDeviceProperties } from "./qemu.ts";
 * const p = qemuDeviceProperties(
 *   { name: "kbd0", kind: "kbd", driver: "usb-kbd", vendorId: 0x627, productId: 1, id: "0627:0001", serial: "k1" },
 *   0,
 * );
 * assert.deepEqual(p, {
 *   driver: "usb-kbd",
 *   properties: { bus: "xhci.0", serial: "k1", id: "kbd0", port: "1" },
 * });
 * ```
 */
export function qemuDeviceProperties(
  d: ResolvedQemuDevice,
  index: number,
): { driver: string; properties: Record<string, string> } {
  const properties: Record<string, string> = {
    bus: "xhci.0",
    serial: d.serial,
    id: d.name,
    port: String(index + 1),
  };
  switch (d.kind) {
    case "storage":
      properties.drive = `drv-${d.name}`;
      break;
    case "serial":
      properties.chardev = `chr-${d.name}`;
      break;
    case "audio":
      properties.audiodev = `aud-${d.name}`;
      break;
  }
  return { driver: d.driver, properties };
}

/**
 * The `-drive` options of a storage device (QEMU's option syntax, commas in
 * the path doubled). QEMU deletes such a drive when its device is removed,
 * so `qemuDeviceAdd` in the guest adds it again with these same options
 * (HMP `drive_add`) before the device.
 *
 * @param d the storage device, resolved, with its image
 * @returns the options
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storageDriveOptions } from "./qemu.ts";
 * const o = storageDriveOptions({
 *   name: "storage0", kind: "storage", driver: "usb-storage", vendorId: 0x46f4, productId: 1,
 *   id: "46f4:0001", serial: "s", image: "/c/disk.img", snapshot: true,
 * });
 * assert.equal(o, "if=none,id=drv-storage0,format=raw,file=/c/disk.img,snapshot=on");
 * ```
 */
export function storageDriveOptions(d: ResolvedQemuDevice): string {
  if (d.image === undefined) {
    throw new Error(`storage ${d.name}: no image path`);
  }
  const snap = d.snapshot ? ",snapshot=on" : "";
  return `if=none,id=drv-${d.name},format=raw,file=${
    qemuEscape(d.image)
  }${snap}`;
}
