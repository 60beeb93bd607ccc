import assert from "node:assert/strict";
import { type DeviceInfo, listDevicesSync } from "../../src/enumeration.ts";
import { UsbError } from "../../src/errors.ts";
import {
  type DeviceSelector,
  formatSelector,
  matchesSelector,
  parseSelector,
  selectDevice,
} from "../../src/selector.ts";

const SYSFS = new URL("../fixtures/sysfs", import.meta.url).pathname;
const devices = listDevicesSync({ sysfsRoot: SYSFS });
const gadget = devices.find((d) => d.portPath === "2-1")!;

/** A copy of the gadget at another port, with another serial number. */
function twin(
  port: string,
  serial: string | undefined,
  address: number,
): DeviceInfo {
  return {
    ...gadget,
    portPath: port,
    serialNumber: serial,
    deviceAddress: address,
    devnode: `/dev/bus/usb/002/${String(address).padStart(3, "0")}`,
    sysfsPath: `/sys/devices/pci0000:00/0000:00:14.0/usb2/${port}`,
  };
}

function assertUsbError(
  fn: () => unknown,
  code: string,
  message: RegExp,
): UsbError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UsbError, `expected a UsbError, got ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

Deno.test("parseSelector: each form", () => {
  const cases: [string, DeviceSelector][] = [
    ["0525:a4a0", { vendorId: 0x0525, productId: 0xa4a0 }],
    ["0525:A4A0", { vendorId: 0x0525, productId: 0xa4a0 }],
    ["525:a4a0", { vendorId: 0x0525, productId: 0xa4a0 }],
    ["0525:", { vendorId: 0x0525 }],
    [":a4a0", { productId: 0xa4a0 }],
    ["2-1", { port: "2-1" }],
    ["1-1.4", { port: "1-1.4" }],
    ["usb2", { port: "usb2" }],
    ["/dev/bus/usb/002/002", { path: "/dev/bus/usb/002/002" }],
    ["/sys/bus/usb/devices/2-1", { path: "/sys/bus/usb/devices/2-1" }],
    ["usbkit-ss-0001", { serial: "usbkit-ss-0001" }],
    ["  A1B2C3  ", { serial: "A1B2C3" }],
    ["12345:6789", { serial: "12345:6789" }], // five hex digits: not an id
    ["serial=1-1", { serial: "1-1" }],
    ["serial=with spaces = and more", { serial: "with spaces = and more" }],
    ["port=1-1.4", { port: "1-1.4" }],
    ["id=0525:a4a0", { vendorId: 0x0525, productId: 0xa4a0 }],
    ["path=relative/node", { path: "relative/node" }],
  ];
  for (const [text, expected] of cases) {
    assert.deepEqual(parseSelector(text), expected, text);
  }
});

Deno.test("parseSelector: malformed input is invalid-argument with a hint", () => {
  for (
    const [text, message] of [
      ["", /empty/],
      ["   ", /empty/],
      ["serial=", /nothing after/],
      ["port=abc", /not a port path/],
      ["id=xyz", /not VID:PID/],
      ["id=:", /not VID:PID/],
    ] as const
  ) {
    const e = assertUsbError(
      () => parseSelector(text),
      "invalid-argument",
      message,
    );
    assert.ok(e.hint, `${text} has a hint`);
  }
});

Deno.test("selectDevice: by id, port, device node, sysfs path, serial, object", () => {
  assert.equal(selectDevice(devices, "0525:a4a0"), gadget);
  assert.equal(selectDevice(devices, "2-1"), gadget);
  assert.equal(selectDevice(devices, "/dev/bus/usb/002/002"), gadget);
  // A usbfs path under another devtmpfs mount matches by bus and address.
  assert.equal(selectDevice(devices, "/mnt/dev/bus/usb/002/002"), gadget);
  assert.equal(selectDevice(devices, gadget.sysfsPath), gadget);
  assert.equal(selectDevice(devices, "/sys/bus/usb/devices/2-1/"), gadget);
  assert.equal(selectDevice(devices, "usbkit-ss-0001"), gadget);
  assert.equal(selectDevice(devices, "1-1.4").productId, 0xc31c);
  assert.equal(selectDevice(devices, "usb1").productId, 0x0002);
  assert.equal(selectDevice(devices, { vendorId: 0x0525 }), gadget);
  assert.equal(
    selectDevice(devices, { vendorId: 0x0525, serial: "usbkit-ss-0001" }),
    gadget,
  );
  assert.equal(
    selectDevice(devices, { port: "2-1", path: "/dev/bus/usb/002/002" }),
    gadget,
  );
});

Deno.test("matchesSelector: every property given must match", () => {
  assert.ok(matchesSelector(gadget, {}));
  assert.ok(matchesSelector(gadget, { vendorId: 0x0525, productId: 0xa4a0 }));
  assert.ok(!matchesSelector(gadget, { vendorId: 0x0525, productId: 0xa4a1 }));
  assert.ok(!matchesSelector(gadget, { vendorId: 0x0525, port: "2-2" }));
  assert.ok(!matchesSelector(gadget, { serial: "usbkit-ss-0002" }));
  assert.ok(!matchesSelector(gadget, { path: "/dev/bus/usb/002/003" }));
});

Deno.test("structural forms first, then the serial number", () => {
  // A device whose serial looks like a port path...
  const odd = twin("2-2", "1-1", 3);
  const oddSerialOnly = twin("2-3", "1-9", 4);
  const list = [...devices, odd, oddSerialOnly];
  // ... "1-1" is still the hub at port 1-1,
  assert.equal(selectDevice(list, "1-1").portPath, "1-1");
  // ... "serial=1-1" is the device with that serial,
  assert.equal(selectDevice(list, "serial=1-1"), odd);
  // ... and "1-9", where no port is, falls back to the serial number.
  assert.equal(selectDevice(list, "1-9"), oddSerialOnly);
  // An explicit "port=" does not fall back.
  assertUsbError(
    () => selectDevice(list, "port=1-9"),
    "not-found",
    /"port=1-9"/,
  );
  // Nor does the object form.
  assertUsbError(
    () => selectDevice(list, { port: "1-9" }),
    "not-found",
    /port 1-9|1-9/,
  );
});

Deno.test("not-found lists what is attached, without root hubs", () => {
  const e = assertUsbError(
    () => selectDevice(devices, "dead:beef"),
    "not-found",
    /no USB device matches "dead:beef"/,
  );
  assert.match(e.hint ?? "", /attached devices:/);
  assert.match(
    e.hint ?? "",
    /2-1 +0525:a4a0 usbkit SourceSink bench gadget serial "usbkit-ss-0001"/,
  );
  assert.match(e.hint ?? "", /1-1\.4 +046d:c31c Logitech USB Keyboard/);
  assert.doesNotMatch(e.hint ?? "", /usb1|xHCI/);
  assert.match(e.describe(), /^error\[not-found\]/);

  const none = assertUsbError(
    () => selectDevice([], "2-1"),
    "not-found",
    /2-1/,
  );
  assert.match(none.hint ?? "", /no USB devices are present/);
  const roots = devices.filter((d) => d.isRootHub);
  const onlyRoots = assertUsbError(
    () => selectDevice(roots, "2-1"),
    "not-found",
    /2-1/,
  );
  assert.match(onlyRoots.hint ?? "", /only 2 root hub/);

  // A long list is cut short.
  const many = Array.from(
    { length: 20 },
    (_, i) => twin(`2-${i + 2}`, `s${i}`, i + 3),
  );
  const cut = assertUsbError(
    () => selectDevice(many, "1234:5678"),
    "not-found",
    /1234:5678/,
  );
  assert.match(cut.hint ?? "", /and 12 more/);
});

Deno.test("ambiguous lists the candidates and suggests a selector", () => {
  const list = [...devices, twin("2-2", "usbkit-ss-0002", 3)];
  const e = assertUsbError(
    () => selectDevice(list, "0525:a4a0"),
    "ambiguous",
    /2 USB devices match "0525:a4a0"/,
  );
  assert.match(e.hint ?? "", /2-1 .*serial "usbkit-ss-0001"/);
  assert.match(e.hint ?? "", /2-2 .*serial "usbkit-ss-0002"/);
  assert.match(e.hint ?? "", /serial=usbkit-ss-0001.*"2-1"/);

  // Without distinct serial numbers only the port path tells them apart.
  const same = [
    ...devices,
    twin("2-2", "usbkit-ss-0001", 3),
    twin("2-3", undefined, 4),
  ];
  const s = assertUsbError(
    () => selectDevice(same, "0525:a4a0"),
    "ambiguous",
    /3 USB devices/,
  );
  assert.match(s.hint ?? "", /select one by port path \("2-1"\)/);
  assert.doesNotMatch(s.hint ?? "", /serial=/);
  assert.equal(selectDevice(same, "2-3").serialNumber, undefined);
});

Deno.test("an empty selector object is invalid-argument", () => {
  assertUsbError(
    () => selectDevice(devices, {}),
    "invalid-argument",
    /at least one/,
  );
  assertUsbError(() => selectDevice(devices, ""), "invalid-argument", /empty/);
});

Deno.test("formatSelector reads back through parseSelector for one property", () => {
  for (
    const s of [
      { vendorId: 0x0525, productId: 0xa4a0 },
      { vendorId: 0x0525 },
      { port: "1-1.4" },
      { path: "/dev/bus/usb/002/002" },
      { serial: "ABC" },
    ] satisfies DeviceSelector[]
  ) {
    assert.deepEqual(parseSelector(formatSelector(s)), s);
  }
  assert.equal(
    formatSelector({ vendorId: 1, productId: 2, serial: "x" }),
    "0001:0002 serial=x",
  );
});
