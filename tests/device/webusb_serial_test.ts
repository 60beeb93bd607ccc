// A real WebUSB client, unmodified: the npm web-serial-polyfill (CDC-ACM
// over WebUSB) drives the bench's configfs `acm` gadget through usbkit's
// navigator.usb (run inside the guest). The gadget's other side is
// /dev/ttyGS0 in the guest: 1 MiB goes each way and is checked byte for
// byte, and a line coding set through the polyfill reaches the gadget.

import assert from "node:assert/strict";
import { serial } from "web-serial-polyfill";
import {
  benchInfo,
  loadDrivers,
  locate,
  unloadModules,
} from "../../kernel/guest.ts";
import { install, USB } from "../../webusb.ts";
import { randomBytes, sameBytes } from "./data.ts";

const bench = benchInfo();
const acm = bench.gadgets.find((g) => g.name === "acm0");
const MIB = 1 << 20;

/** The gadget's tty: the first ttyGS* (f_acm.c via u_serial.c). */
function gadgetTty(): string {
  const names = [...Deno.readDirSync("/dev")].map((e) => e.name).filter((n) =>
    /^ttyGS\d+$/.test(n)
  ).sort();
  assert.ok(names.length > 0, "no /dev/ttyGS* in the guest");
  return `/dev/${names[0]}`;
}

/** Runs stty (coreutils, from the host root the guest shares) on a tty. */
async function stty(tty: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("stty", { args: ["-F", tty, ...args] })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

/** Reads exactly `n` bytes from a reader of the polyfill's readable. */
async function readExactly(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  n: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the polyfill's stream ended after ${got} of ${n} bytes`);
    assert.ok(got + value.length <= n, "more bytes than were written");
    out.set(value, got);
    got += value.length;
  }
  return out;
}

/** Reads exactly `n` bytes from the gadget's tty. */
async function readTty(file: Deno.FsFile, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await file.read(out.subarray(got));
    assert.ok(r !== null, `the tty ended after ${got} of ${n} bytes`);
    got += r;
  }
  return out;
}

/** The CDC line coding (dwDTERate, bCharFormat, bParityType, bDataBits). */
interface LineCoding {
  baudRate: number;
  stopBits: number;
  parity: number;
  dataBits: number;
}

/**
 * GET_LINE_CODING (CDC 1.1 §6.2.13) on the gadget: f_acm.c answers it from
 * what the last SET_LINE_CODING stored (acm->port_line_coding).
 */
async function lineCoding(device: USBDevice): Promise<LineCoding> {
  const r = await device.controlTransferIn({
    requestType: "class",
    recipient: "interface",
    request: 0x21,
    value: 0,
    index: 0,
  }, 7);
  assert.equal(r.status, "ok");
  const v = r.data!;
  assert.equal(v.byteLength, 7);
  return {
    baudRate: v.getUint32(0, true),
    stopBits: v.getUint8(4),
    parity: v.getUint8(5),
    dataBits: v.getUint8(6),
  };
}

/** The kernel driver bound to interface 0 of the gadget, if any. */
function driverOf(port: string): string | undefined {
  try {
    return Deno.readLinkSync(`/sys/bus/usb/devices/${port}:1.0/driver`)
      .split("/").at(-1);
  } catch {
    return undefined;
  }
}

Deno.test({
  name:
    "web-serial-polyfill over navigator.usb: 1 MiB each way through the ACM gadget, line coding reaches it",
  ignore: acm === undefined,
  fn: async () => {
    const usb = install(new USB());
    const tty = gadgetTty();
    // Open the tty first and keep it open: its termios stays as set.
    const file = await Deno.open(tty, { read: true, write: true });
    let loaded: string[] = [];
    try {
      await stty(tty, "raw", "-echo");
      const where = locate(acm!.serial)!;
      // As udev would on a desktop: the host's cdc_acm binds the gadget, so
      // claimInterface has a kernel driver to detach (and close() one to
      // bind again).
      loaded = await loadDrivers(where.port);
      assert.equal(driverOf(where.port), "cdc_acm", `loaded: ${loaded}`);

      // The polyfill's own chooser path: navigator.usb.requestDevice with a
      // class-2 filter and the gadget's IDs.
      const port = await serial.requestPort({
        filters: [{ usbVendorId: acm!.vendorId, usbProductId: acm!.productId }],
      });
      await port.open({ baudRate: 115200, bufferSize: 65536 });
      // The same device object the polyfill holds (SameObject).
      const device = await navigator.usb.requestDevice({
        filters: [{ vendorId: acm!.vendorId, productId: acm!.productId }],
      });
      assert.ok(device.opened, "the polyfill opened the device");
      assert.deepEqual(await lineCoding(device), {
        baudRate: 115200,
        stopBits: 0,
        parity: 0,
        dataBits: 8,
      });
      assert.equal(driverOf(where.port), "usbfs", "cdc_acm was detached");

      // Host to gadget: written through the polyfill, read from the tty.
      const toGadget = randomBytes(MIB);
      const writer = port.writable!.getWriter();
      const [, atGadget] = await Promise.all([
        (async () => {
          for (let off = 0; off < MIB; off += 16384) {
            await writer.write(toGadget.slice(off, off + 16384));
          }
        })(),
        readTty(file, MIB),
      ]);
      assert.ok(sameBytes(atGadget, toGadget), "host-to-gadget bytes differ");

      // Gadget to host: written to the tty, read through the polyfill.
      const fromGadget = randomBytes(MIB);
      const reader = port.readable!.getReader();
      const [, atHost] = await Promise.all([
        (async () => {
          let off = 0;
          while (off < MIB) {
            off += await file.write(fromGadget.subarray(off, off + 65536));
          }
        })(),
        readExactly(reader, MIB),
      ]);
      assert.ok(sameBytes(atHost, fromGadget), "gadget-to-host bytes differ");
      reader.releaseLock();
      writer.releaseLock();

      // A line-coding change through the polyfill (Web Serial has no
      // reconfigure: close and open with new options) reaches the gadget.
      await port.close();
      assert.equal(device.opened, false);
      await port.open({
        baudRate: 57600,
        parity: "even",
        stopBits: 2,
        dataBits: 7,
      });
      assert.deepEqual(await lineCoding(device), {
        baudRate: 57600,
        stopBits: 2,
        parity: 2,
        dataBits: 7,
      });
      await port.close();
      assert.equal(
        driverOf(where.port),
        "cdc_acm",
        "cdc_acm is bound again after close",
      );
    } finally {
      file.close();
      // On a failure, the port may still be open: close the device so that
      // the interfaces are not left claimed for the tests that follow.
      for (const d of await usb.getDevices()) {
        if (d.opened) await d.close().catch(() => {});
      }
      await usb.close();
      await unloadModules(loaded);
    }
  },
});
