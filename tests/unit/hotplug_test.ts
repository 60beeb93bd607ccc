// Hotplug on the host: uevent parsing, argument checks, and the helper's
// listener opened and closed without leaking its thread or socket (run
// with --trace-leaks). The kernel's events themselves are tested in the
// guest (tests/device/hotplug_test.ts).

import assert from "node:assert/strict";
import {
  isUsbDeviceEvent,
  parseUevent,
  waitForDevice,
  waitForDeviceGone,
  watchDevices,
} from "../../src/hotplug.ts";
import { UsbError } from "../../src/errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const DEV = "/devices/platform/dummy_hcd.0/usb2/2-1";

/** A kernel uevent as lib/kobject_uevent.c sends it. */
function uevent(action: string, devpath: string, env: string[]): Uint8Array {
  return enc(
    [`${action}@${devpath}`, `ACTION=${action}`, `DEVPATH=${devpath}`, ...env]
      .join("\0") + "\0",
  );
}

function threads(): string[] {
  return [...Deno.readDirSync("/proc/self/task")].map((t) => {
    try {
      return Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim();
    } catch {
      return "";
    }
  });
}

Deno.test("hotplug: parseUevent reads the header and the environment", () => {
  const u = parseUevent(
    uevent("add", DEV, [
      "SUBSYSTEM=usb",
      "MAJOR=189",
      "MINOR=130",
      "DEVNAME=bus/usb/002/003",
      "DEVTYPE=usb_device",
      "PRODUCT=525/a4a0/0",
      "TYPE=0/0/0",
      "BUSNUM=002",
      "DEVNUM=003",
      "SEQNUM=2417",
    ]),
  );
  assert.ok(u !== undefined);
  assert.equal(u.action, "add");
  assert.equal(u.devpath, DEV);
  assert.equal(u.env.DEVNAME, "bus/usb/002/003");
  assert.equal(u.env.PRODUCT, "525/a4a0/0");
  assert.equal(u.env.SEQNUM, "2417");
  assert.ok(isUsbDeviceEvent(u));
});

Deno.test("hotplug: only usb_device events of subsystem usb are device events", () => {
  const kinds = [
    ["add", DEV, ["SUBSYSTEM=usb", "DEVTYPE=usb_device"], true],
    ["bind", DEV, ["SUBSYSTEM=usb", "DEVTYPE=usb_device", "DRIVER=usb"], true],
    [
      "add",
      `${DEV}/2-1:1.0`,
      ["SUBSYSTEM=usb", "DEVTYPE=usb_interface"],
      false,
    ],
    ["bind", `${DEV}/2-1:1.0`, [
      "SUBSYSTEM=usb",
      "DEVTYPE=usb_interface",
      "DRIVER=usbtest",
    ], false],
    ["add", `${DEV}/ep_00`, ["SUBSYSTEM=usb_endpoint"], false],
    ["add", "/devices/virtual/net/lo", ["SUBSYSTEM=net"], false],
  ] as const;
  for (const [action, path, env, want] of kinds) {
    const u = parseUevent(uevent(action, path, [...env]));
    assert.ok(u !== undefined);
    assert.equal(isUsbDeviceEvent(u), want, `${action} ${path} ${env}`);
  }
});

Deno.test("hotplug: parseUevent refuses what is not a kernel uevent", () => {
  assert.equal(parseUevent(enc("libudev\0\xfe\xed\xca\xfe")), undefined);
  assert.equal(parseUevent(enc("")), undefined);
  assert.equal(parseUevent(enc("add@relative/path\0")), undefined);
  assert.equal(parseUevent(enc("@/devices/x\0")), undefined);
  // The header alone still names the action and the path.
  const u = parseUevent(enc("remove@/devices/x/usb1/1-1"));
  assert.deepEqual(u, {
    action: "remove",
    devpath: "/devices/x/usb1/1-1",
    env: {},
  });
});

Deno.test("hotplug: bad arguments are invalid-argument naming them", async () => {
  const bad = (e: unknown, name: RegExp) =>
    e instanceof UsbError && e.code === "invalid-argument" &&
    name.test(e.message);
  assert.throws(
    () => watchDevices(7 as never),
    (e) => bad(e, /watchDevices: options must be/),
  );
  assert.throws(
    () => watchDevices({ filter: { vendorId: -1 } }),
    (e) => bad(e, /watchDevices: options\.filter\.vendorId/),
  );
  assert.throws(
    () => watchDevices({ snapshot: "yes" as never }),
    (e) => bad(e, /watchDevices: options\.snapshot/),
  );
  assert.throws(
    () => watchDevices({ signal: { aborted: false } as never }),
    (e) => bad(e, /watchDevices: options\.signal/),
  );
  await assert.rejects(
    waitForDevice(null as never),
    (e) => bad(e, /waitForDevice: selector/),
  );
  await assert.rejects(
    waitForDevice("0525:a4a0", { timeout: -1 }),
    (e) => bad(e, /waitForDevice: options\.timeout/),
  );
  await assert.rejects(
    waitForDeviceGone("", { timeout: NaN }),
    (e) => e instanceof UsbError && e.code === "invalid-argument",
  );
});

Deno.test("hotplug: a watcher opens and closes its listener without leaking", async () => {
  const before = threads().filter((t) => t === "usbkit-hotplug").length;
  const w = watchDevices({ snapshot: true });
  // The thread names itself once it runs.
  for (let i = 0; i < 100; i++) {
    if (threads().filter((t) => t === "usbkit-hotplug").length > before) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(
    threads().filter((t) => t === "usbkit-hotplug").length,
    before + 1,
  );
  assert.ok(w.receiveBufferBytes > 0);
  const seen: string[] = [];
  w.addEventListener("add", () => seen.push("add"));
  // The snapshot comes first, as adds, then nothing until closed.
  const snapshot = w.devices.length;
  const it = (async () => {
    let n = 0;
    for await (const e of w) if (e.type === "add") n++;
    return n;
  })();
  await new Promise((r) => setTimeout(r, 50));
  await w.close();
  assert.equal(await it, snapshot);
  assert.equal(seen.length, snapshot);
  assert.ok(w.closed);
  assert.equal(
    threads().filter((t) => t === "usbkit-hotplug").length,
    before,
  );
  assert.deepEqual(await w.next(), { value: undefined, done: true });
});

Deno.test("hotplug: an aborted signal closes the watcher; `await using` too", async () => {
  const ac = new AbortController();
  const w = watchDevices({ signal: ac.signal });
  const next = w.next();
  ac.abort();
  assert.deepEqual(await next, { value: undefined, done: true });
  await w.close();
  {
    await using w2 = watchDevices();
    assert.ok(!w2.closed);
  }
  assert.throws(
    () => watchDevices({ signal: AbortSignal.abort() }),
    (e) => e instanceof UsbError && e.code === "cancelled",
  );
});

Deno.test("hotplug: waitForDevice times out naming the selector; a signal cancels; waitForDeviceGone of nothing resolves", async () => {
  await assert.rejects(
    waitForDevice({ vendorId: 0xdead, productId: 0xbeef }, { timeout: 100 }),
    (e) =>
      e instanceof UsbError && e.code === "timeout" &&
      e.message.includes("dead:beef") && e.message.includes("100 ms"),
  );
  const ac = new AbortController();
  const waiting = waitForDevice("serial=nothing-like-this", {
    signal: ac.signal,
  });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(
    waiting,
    (e) => e instanceof UsbError && e.code === "cancelled",
  );
  await waitForDeviceGone("dead:beef", { timeout: 1000 });
  assert.equal(threads().filter((t) => t === "usbkit-hotplug").length, 0);
});

Deno.test("hotplug: a device built from captured attributes equals listDevices()' reading, for every fixture device", async () => {
  const { listDevicesSync } = await import("../../src/enumeration.ts");
  const { deviceFromAttributes } = await import("../../src/hotplug.ts");
  const root = new URL("../fixtures/sysfs", import.meta.url).pathname;
  const listed = listDevicesSync({ sysfsRoot: root });
  assert.ok(listed.length >= 4);
  // What helper/src/netlink.rs `capture` reads.
  const DEVICE = [
    "descriptors",
    "busnum",
    "devnum",
    "speed",
    "bConfigurationValue",
    "manufacturer",
    "product",
    "serial",
    "configuration",
  ];
  const INTERFACE = [
    "bInterfaceNumber",
    "bAlternateSetting",
    "bInterfaceClass",
    "bInterfaceSubClass",
    "bInterfaceProtocol",
    "bNumEndpoints",
    "interface",
  ];
  const read = (p: string) => {
    try {
      return Deno.readFileSync(p);
    } catch {
      return undefined;
    }
  };
  for (const d of listed) {
    const dir = `${root}/bus/usb/devices/${d.portPath}`;
    const files = new Map<string, Uint8Array | undefined>();
    for (const f of DEVICE) files.set(f, read(`${dir}/${f}`));
    for (const e of Deno.readDirSync(dir)) {
      if (!e.name.includes(":")) continue;
      for (const f of INTERFACE) {
        files.set(`${e.name}/${f}`, read(`${dir}/${e.name}/${f}`));
      }
      let link: string | undefined;
      try {
        link = Deno.readLinkSync(`${dir}/${e.name}/driver`);
      } catch {
        link = undefined;
      }
      files.set(
        `${e.name}/driver`,
        link === undefined ? undefined : enc(link),
      );
    }
    const built = deviceFromAttributes(d.portPath, d.sysfsPath, files);
    assert.deepEqual(built, d, d.portPath);
  }
  // Without the attributes that make a device, there is none.
  assert.equal(deviceFromAttributes("2-1", "/sys/x", new Map()), undefined);
});
