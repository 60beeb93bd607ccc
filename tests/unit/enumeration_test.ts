import assert from "node:assert/strict";
import { join } from "node:path";
import {
  comparePortPaths,
  type DeviceInfo,
  listDevices,
  listDevicesSync,
} from "../../src/enumeration.ts";
import { readHexFixture } from "../fixtures/hex.ts";
import { sysfsDisagreements } from "../fixtures/sysfs_agreement.ts";

const SYSFS = new URL("../fixtures/sysfs", import.meta.url).pathname;

function byPort(
  devices: readonly DeviceInfo[],
  port: string,
): DeviceInfo {
  const d = devices.find((x) => x.portPath === port);
  assert.ok(d, `no device at ${port}`);
  return d;
}

Deno.test("lists the fixture tree sorted by bus and port, root hubs marked", async () => {
  const devices = await listDevices({ sysfsRoot: SYSFS });
  assert.deepEqual(devices.map((d) => d.portPath), [
    "usb1",
    "1-1",
    "1-1.4",
    "1-2",
    "usb2",
    "2-1",
  ]);
  assert.deepEqual(devices.filter((d) => d.isRootHub).map((d) => d.portPath), [
    "usb1",
    "usb2",
  ]);
  assert.deepEqual(
    devices.map((d) => `${d.busNumber}/${d.deviceAddress}`),
    ["1/1", "1/2", "1/4", "1/3", "2/1", "2/2"],
  );
  assert.deepEqual(devices.map((d) => d.speed), [
    "high",
    "high",
    "low",
    "high",
    "super",
    "super",
  ]);
});

Deno.test("the SourceSink gadget at 2-1: ids, strings, descriptors, devnode", async () => {
  const devices = await listDevices({ sysfsRoot: SYSFS, devRoot: "/tmp/dev" });
  const d = byPort(devices, "2-1");
  assert.equal(d.vendorId, 0x0525);
  assert.equal(d.productId, 0xa4a0);
  assert.equal(d.usbVersion, 0x0320);
  assert.equal(d.deviceVersion, 0x0100);
  assert.equal(d.deviceClass, 0);
  assert.equal(d.numConfigurations, 1);
  assert.equal(d.activeConfiguration, 1);
  assert.equal(d.configurationName, "SourceSink");
  assert.equal(d.manufacturerName, "usbkit");
  assert.equal(d.productName, "SourceSink bench gadget");
  assert.equal(d.serialNumber, "usbkit-ss-0001");
  assert.deepEqual(d.descriptors, readHexFixture("sourcesink-ss"));
  assert.equal(d.device.productId, 0xa4a0);
  assert.equal(d.configurations.length, 1);
  assert.equal(d.descriptorError, undefined);
  assert.equal(d.devnode, "/tmp/dev/bus/usb/002/002");
  assert.ok(
    d.sysfsPath.endsWith("/devices/pci0000:00/0000:00:14.0/usb2/2-1"),
    d.sysfsPath,
  );
  assert.equal(d.interfaces.length, 1);
  const [intf] = d.interfaces;
  assert.equal(intf?.name, "2-1:1.0");
  assert.equal(intf?.interfaceClass, 0xff);
  assert.equal(intf?.numEndpoints, 2);
  assert.equal(intf?.interfaceName, "source and sink data");
  assert.equal(intf?.driver, undefined, "unbound");
});

Deno.test("interfaces carry their kernel drivers; absent strings are undefined", async () => {
  const devices = await listDevices({ sysfsRoot: SYSFS });
  const composite = byPort(devices, "1-2");
  assert.deepEqual(
    composite.interfaces.map((i) => [i.name, i.interfaceNumber, i.driver]),
    [["1-2:1.0", 0, "cdc_acm"], ["1-2:1.1", 1, "cdc_acm"], [
      "1-2:1.2",
      2,
      "usb-storage",
    ]],
  );
  const hub = byPort(devices, "1-1");
  assert.equal(hub.manufacturerName, undefined);
  assert.equal(hub.serialNumber, undefined);
  assert.equal(hub.productName, "USB2.0 Hub");
  assert.equal(hub.configurationName, undefined);
  const keyboard = byPort(devices, "1-1.4");
  assert.equal(keyboard.serialNumber, undefined);
  assert.deepEqual(keyboard.interfaces.map((i) => i.driver), [
    "usbhid",
    "usbhid",
  ]);
  const root = byPort(devices, "usb2");
  assert.deepEqual(root.interfaces.map((i) => [i.name, i.driver]), [[
    "2-0:1.0",
    "hub",
  ]]);
});

Deno.test("listDevicesSync gives the same as listDevices", async () => {
  assert.deepEqual(
    listDevicesSync({ sysfsRoot: SYSFS }),
    await listDevices({ sysfsRoot: SYSFS }),
  );
});

Deno.test("every fixture device agrees with its sysfs attributes", async () => {
  for (const d of await listDevices({ sysfsRoot: SYSFS })) {
    assert.deepEqual(sysfsDisagreements(d), [], d.portPath);
  }
});

Deno.test("the agreement checker notices a disagreement", async () => {
  const d = byPort(await listDevices({ sysfsRoot: SYSFS }), "2-1");
  const lying = { ...d, vendorId: 0x1234 };
  assert.match(
    sysfsDisagreements(lying).join("\n"),
    /idVendor: sysfs says 1317, usbkit says 4660/,
  );
});

Deno.test("no sysfs USB at all: an empty list", async () => {
  const empty = await Deno.makeTempDir();
  try {
    assert.deepEqual(await listDevices({ sysfsRoot: empty }), []);
    assert.deepEqual(
      listDevicesSync({ sysfsRoot: join(empty, "missing") }),
      [],
    );
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("devices that vanish or are half-written are skipped, not thrown", async () => {
  const root = await Deno.makeTempDir();
  try {
    const devices = join(root, "bus/usb/devices");
    await Deno.mkdir(devices, { recursive: true });
    const good = readHexFixture("hub-hs");
    const device = async (
      name: string,
      files: Record<string, string | Uint8Array>,
    ) => {
      const dir = join(root, "devices", name);
      await Deno.mkdir(dir, { recursive: true });
      for (const [file, content] of Object.entries(files)) {
        if (typeof content === "string") {
          await Deno.writeTextFile(join(dir, file), content);
        } else await Deno.writeFile(join(dir, file), content);
      }
      await Deno.symlink(dir, join(devices, name));
    };
    // Unplugged between readdir and reading: a dangling symlink.
    await Deno.symlink(join(root, "devices/gone"), join(devices, "3-1"));
    // Half gone: busnum present, descriptors not.
    await device("3-2", { busnum: "3\n", devnum: "5\n" });
    // A short descriptors read.
    await device("3-3", {
      busnum: "3\n",
      devnum: "6\n",
      descriptors: good.subarray(0, 10),
    });
    // Garbage busnum.
    await device("3-4", { busnum: "x\n", devnum: "7\n", descriptors: good });
    // Not device names: an interface and a port.
    await device("3-5:1.0", {
      busnum: "3\n",
      devnum: "8\n",
      descriptors: good,
    });
    // Configurations that do not parse: listed, with the reason.
    const broken = Uint8Array.from(good);
    broken[19] = 0x04; // the configuration descriptor's type becomes "interface"
    await device("3-6", {
      busnum: "3\n",
      devnum: "9\n",
      descriptors: broken,
      speed: "42\n",
    });
    // And one healthy device, no optional attributes at all.
    await device("3-7", { busnum: "3\n", devnum: "10\n", descriptors: good });

    const list = await listDevices({ sysfsRoot: root });
    assert.deepEqual(list.map((d) => d.portPath), ["3-6", "3-7"]);
    const [bad, ok] = list;
    assert.equal(bad?.descriptorError?.code, "invalid-descriptor");
    assert.deepEqual(bad?.configurations, []);
    assert.equal(bad?.speed, "unknown");
    assert.equal(bad?.vendorId, 0x05e3, "the device descriptor still parsed");
    assert.equal(ok?.activeConfiguration, undefined);
    assert.equal(ok?.manufacturerName, undefined);
    assert.deepEqual(ok?.interfaces, []);
    assert.deepEqual(listDevicesSync({ sysfsRoot: root }), list);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("comparePortPaths orders ports numerically, root hub first", () => {
  const paths = [
    "1-10",
    "1-2.1",
    "usb1",
    "1-2",
    "1-1.4.2",
    "1-1",
    "1-1.4",
    "1-9",
  ];
  assert.deepEqual(paths.sort(comparePortPaths), [
    "usb1",
    "1-1",
    "1-1.4",
    "1-1.4.2",
    "1-2",
    "1-2.1",
    "1-9",
    "1-10",
  ]);
  assert.equal(comparePortPaths("2-1", "2-1"), 0);
});
