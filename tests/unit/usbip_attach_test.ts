// Local attach, the parts that need no vhci_hcd: parsing its status files
// (fixtures in the kernel's formats), the helper's socket hand-over (the
// accepted peer must be this process), and the errors when vhci_hcd is
// missing. The attach itself runs in the guest: tests/device/usbip_test.ts.

import assert from "node:assert/strict";
import { cString, helper } from "../../src/ffi.ts";
import { UsbError } from "../../src/errors.ts";
import {
  attachLocal,
  parseVhciStatus,
  VHCI_SYSFS,
} from "../../src/usbip/mod.ts";
import type { EmulatedDevice } from "../../src/emulated/urb.ts";

Deno.test("parseVhciStatus reads port_show_vhci lines (free and used) and status_show_not_ready lines", () => {
  // drivers/usb/usbip/vhci_sysfs.c: "%s  %04u %03u " then
  // "%03u %08x %06u %s" (used) or "000 00000000 000000 0-0".
  const text = [
    "hub port sta spd dev      sockfd local_busid",
    "hs  0000 006 003 00010001 000003 3-1",
    "hs  0001 004 000 00000000 000000 0-0",
    "ss  0015 004 000 00000000 000000 0-0",
    "ss  0016 006 005 0001000f 000012 4-2",
    "hs  0030 005 000 00000000 0000000000000000 0-0", // not ready
    "",
  ].join("\n");
  assert.deepEqual(parseVhciStatus(text), [
    {
      hub: "hs",
      port: 0,
      state: 6,
      speed: 3,
      devid: 0x10001,
      sockfd: 3,
      busid: "3-1",
    },
    {
      hub: "hs",
      port: 1,
      state: 4,
      speed: 0,
      devid: 0,
      sockfd: 0,
      busid: "0-0",
    },
    {
      hub: "ss",
      port: 15,
      state: 4,
      speed: 0,
      devid: 0,
      sockfd: 0,
      busid: "0-0",
    },
    {
      hub: "ss",
      port: 16,
      state: 6,
      speed: 5,
      devid: 0x1000f,
      sockfd: 12,
      busid: "4-2",
    },
    {
      hub: "hs",
      port: 30,
      state: 5,
      speed: 0,
      devid: 0,
      sockfd: 0,
      busid: "0-0",
    },
  ]);
});

function fdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test("helper: listen, Deno connects, accept returns this process's peer; the pair carries bytes; fds are closed", async () => {
  const { sym } = helper();
  const before = fdCount();
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s`;
  const listener = sym.usbkit_usbip_listen(cString(path));
  assert.ok(listener >= 0, `listen: ${listener}`);
  const conn = await Deno.connect({ transport: "unix", path });
  const fd = await sym.usbkit_usbip_accept(listener, 5000);
  assert.ok(fd >= 0, `accept: ${fd}`);
  // vhci_hcd would take `fd`; here, closing it makes the Deno end read EOF,
  // which shows the two are the ends of one connection.
  assert.equal(sym.usbkit_usbip_close(fd), 0);
  assert.equal(await conn.read(new Uint8Array(8)), null);
  conn.close();
  assert.equal(sym.usbkit_usbip_close(listener), 0);
  await Deno.remove(dir, { recursive: true });
  assert.equal(fdCount(), before);
});

Deno.test("helper: accept times out with -ETIMEDOUT, refuses another process's connection with -EPERM", async () => {
  const { sym } = helper();
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s`;
  const listener = sym.usbkit_usbip_listen(cString(path));
  assert.ok(listener >= 0);
  assert.equal(await sym.usbkit_usbip_accept(listener, 0), -110);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const c = await Deno.connect({ transport: "unix", path: ${
        JSON.stringify(path)
      } }); await c.read(new Uint8Array(1)); c.close();`,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  assert.equal(await sym.usbkit_usbip_accept(listener, 10000), -1); // EPERM
  assert.ok(
    (await child.status).success,
    "the child saw its connection closed",
  );
  assert.equal(sym.usbkit_usbip_close(listener), 0);
  // A path too long for sockaddr_un.
  assert.equal(
    sym.usbkit_usbip_listen(cString(`${dir}/${"x".repeat(120)}`)),
    -36,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("helper: write_file writes in one write(2); errors are -errno", async () => {
  const { sym } = helper();
  const path = await Deno.makeTempFile();
  const text = new TextEncoder().encode("3 7 65537 3");
  assert.equal(
    await sym.usbkit_usbip_write_file(cString(path), text, text.length),
    0,
  );
  assert.equal(await Deno.readTextFile(path), "3 7 65537 3");
  assert.equal(
    await sym.usbkit_usbip_write_file(cString(`${path}.missing/x`), text, 1),
    -2,
  );
  await Deno.remove(path);
});

const device: EmulatedDevice = {
  speed: "high",
  summary: {
    vendorId: 0x1209,
    productId: 1,
    bcdDevice: 0x100,
    deviceClass: 0,
    deviceSubclass: 0,
    deviceProtocol: 0,
    configurationValue: 1,
    numConfigurations: 1,
    interfaces: [],
  },
  handleUrb: () => Promise.resolve({ status: -32, actualLength: 0 }),
  reset() {},
  close() {},
};

Deno.test({
  name:
    "attachLocal without vhci_hcd: not-found with the modprobe hint; bad arguments: invalid-argument",
  ignore: (() => {
    try {
      Deno.statSync(VHCI_SYSFS);
      return true; // vhci_hcd is loaded here: the device tests cover it
    } catch {
      return false;
    }
  })(),
  async fn() {
    await assert.rejects(
      attachLocal(device),
      (e: unknown) =>
        e instanceof UsbError && e.code === "not-found" &&
        /modprobe vhci-hcd/.test(e.hint ?? ""),
    );
    await assert.rejects(
      attachLocal({ ...device, speed: "warp" as "high" }),
      (e: unknown) => e instanceof UsbError && e.code === "invalid-argument",
    );
    await assert.rejects(
      attachLocal(device, { timeout: -1 }),
      (e: unknown) => e instanceof UsbError && e.code === "invalid-argument",
    );
  },
});
