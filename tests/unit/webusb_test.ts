// WebUSB on the host, with no device: argument conversion (TypeError, as
// WebIDL gives), the spec's state errors before open(), filters, results,
// the error mapping and install(). Devices come from the sysfs fixture.

import assert from "node:assert/strict";
import { listDevicesSync } from "../../src/enumeration.ts";
import { UsbError } from "../../src/errors.ts";
import { USBDevice } from "../../src/webusb/device.ts";
import { toWebUsbError } from "../../src/webusb/errors.ts";
import {
  checkFilter,
  checkRequestOptions,
  matchesFilter,
} from "../../src/webusb/filters.ts";
import { exactView } from "../../src/webusb/results.ts";
import {
  DEVICE_ENV,
  install,
  USB,
  usb,
  USBConfiguration,
  USBInTransferResult,
} from "../../webusb.ts";

const root = new URL("../fixtures/sysfs", import.meta.url).pathname;
const fixture = listDevicesSync({ sysfsRoot: root });
const behaviour = {
  transferTimeout: 0,
  detachKernelDriver: true,
  unrestricted: true,
};

/** A USBDevice over a fixture device (the host has none to open). */
function fixtureDevice(): USBDevice {
  const info = fixture.find((d) =>
    !d.isRootHub && d.configurations.length > 0
  )!;
  return new USBDevice(info, behaviour, () => {});
}

async function rejectsWith(p: Promise<unknown>, name: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DOMException, `not a DOMException: ${e}`);
    assert.equal(e.name, name);
    return;
  }
  assert.fail(`resolved instead of rejecting with ${name}`);
}

Deno.test("WebUSB before open(): descriptors readable; every method that needs a session is InvalidStateError", async () => {
  const d = fixtureDevice();
  const info = fixture.find((x) =>
    x.vendorId === d.vendorId && x.productId === d.productId
  )!;
  assert.equal(d.opened, false);
  assert.equal(d.configurations.length, info.configurations.length);
  assert.ok(Object.isFrozen(d.configurations));
  assert.ok(d.configurations[0] instanceof USBConfiguration);
  assert.equal(d.configuration?.configurationValue, info.activeConfiguration);
  const iface = d.configuration!.interfaces[0]!;
  assert.equal(iface.claimed, false);
  assert.equal(iface.alternate, iface.alternates[0]);
  const setup = {
    requestType: "vendor",
    recipient: "device",
    request: 1,
    value: 0,
    index: 0,
  } as const;
  for (
    const p of [
      d.claimInterface(0),
      d.releaseInterface(0),
      d.selectAlternateInterface(0, 0),
      d.controlTransferIn(setup, 8),
      d.controlTransferOut(setup, new Uint8Array(2)),
      d.clearHalt("in", 1),
      d.transferIn(1, 8),
      d.transferOut(1, new Uint8Array(8)),
      d.isochronousTransferIn(1, [8]),
      d.isochronousTransferOut(1, new Uint8Array(8), [8]),
      d.reset(),
      d.selectConfiguration(info.configurations[0]!.configurationValue),
    ]
  ) {
    await rejectsWith(p, "InvalidStateError");
  }
  await rejectsWith(d.selectConfiguration(200), "NotFoundError");
  await d.close(); // not open: resolves
  // The fixture's device is not on this machine: open() finds it gone.
  await rejectsWith(d.open(), "NotFoundError");
  await rejectsWith(d.close(), "NotFoundError");
});

Deno.test("WebUSB arguments: a bad one is a TypeError (checked before the state), with usbkit's UsbError as its cause", async () => {
  const d = fixtureDevice();
  const bad: [string, () => Promise<unknown>][] = [
    ["transferIn endpointNumber", () => d.transferIn(256, 8)],
    ["transferIn length", () => d.transferIn(1, -1)],
    [
      "transferOut data",
      () => d.transferOut(1, [1, 2] as unknown as Uint8Array),
    ],
    ["clearHalt direction", () => d.clearHalt("up" as "in", 1)],
    ["claimInterface", () => d.claimInterface(1.5)],
    [
      "controlTransferIn requestType",
      () =>
        d.controlTransferIn({
          requestType: "bogus" as "vendor",
          recipient: "device",
          request: 1,
          value: 0,
          index: 0,
        }, 8),
    ],
    [
      "controlTransferIn length",
      () =>
        d.controlTransferIn({
          requestType: "vendor",
          recipient: "device",
          request: 1,
          value: 0,
          index: 0,
        }, 70000),
    ],
    [
      "isochronousTransferIn packetLengths",
      () => d.isochronousTransferIn(1, 8 as unknown as number[]),
    ],
  ];
  for (const [what, call] of bad) {
    const e = await call().then(() => undefined, (e) => e);
    assert.ok(e instanceof TypeError, `${what}: ${e}`);
  }
  const e = await d.transferIn(1, -1).catch((e) => e);
  assert.ok(e.cause instanceof UsbError && e.cause.code === "invalid-argument");
  assert.match(e.message, /transferIn: length must be an integer/);
});

Deno.test("WebUSB packetLengths: any iterable converts, as WebIDL's sequence<unsigned long>; a string or a bad element is a TypeError", async () => {
  const d = fixtureDevice();
  // Converted fine, then the state check: not open.
  const iterables: (() => Iterable<number>)[] = [
    () => [8, 8],
    () => new Uint32Array([8, 8]),
    () => new Set([8, 16]),
    function* () {
      yield 8;
    },
  ];
  for (const lengths of iterables) {
    await rejectsWith(
      d.isochronousTransferIn(1, lengths() as number[]),
      "InvalidStateError",
    );
    await rejectsWith(
      d.isochronousTransferOut(1, new Uint8Array(32), lengths() as number[]),
      "InvalidStateError",
    );
  }
  for (const bad of ["88", 8, null, { length: 1, 0: 8 }, [8, -1], [8, 1.5]]) {
    const e = await d.isochronousTransferIn(1, bad as number[]).catch((e) => e);
    assert.ok(e instanceof TypeError, `${JSON.stringify(bad)}: ${e}`);
  }
});

Deno.test("WebUSB filters: the spec's validity rules and matching", () => {
  assert.throws(
    () => checkFilter("f", { productId: 1 }),
    /productId needs vendorId/,
  );
  assert.throws(
    () => checkFilter("f", { subclassCode: 1 }),
    /subclassCode needs classCode/,
  );
  assert.throws(
    () => checkFilter("f", { classCode: 1, protocolCode: 1 }),
    /protocolCode needs subclassCode/,
  );
  assert.throws(() => checkFilter("f", { vendorId: 0x10000 }), TypeError);
  assert.throws(() => checkRequestOptions(undefined), TypeError);
  assert.throws(() => checkRequestOptions({ filters: "x" }), TypeError);
  const hub = fixture.find((d) => d.portPath === "1-1")!;
  assert.ok(
    matchesFilter(hub, { vendorId: hub.vendorId, productId: hub.productId }),
  );
  assert.ok(
    !matchesFilter(hub, {
      vendorId: hub.vendorId,
      productId: hub.productId ^ 1,
    }),
  );
  assert.ok(matchesFilter(hub, { classCode: hub.deviceClass }));
  assert.ok(!matchesFilter(hub, { serialNumber: "no such serial" }));
  assert.ok(matchesFilter(hub, {}));
});

Deno.test("WebUSB requestDevice: TypeError for bad filters, NotFoundError when nothing matches", async () => {
  const u = new USB();
  await assert.rejects(
    u.requestDevice({ filters: [{ productId: 1 }] }),
    TypeError,
  );
  await assert.rejects(
    u.requestDevice(undefined as unknown as { filters: [] }),
    TypeError,
  );
  await rejectsWith(
    u.requestDevice({ filters: [{ vendorId: 0xfffe, productId: 0xfffe }] }),
    "NotFoundError",
  );
  assert.equal(DEVICE_ENV, "USBKIT_WEBUSB_DEVICE");
  assert.throws(() => new USB({ transferTimeout: -1 }), /transferTimeout/);
  assert.throws(
    () => new USB({ device: 42 as unknown as string }),
    /USB: options.device/,
  );
  await u.close();
});

Deno.test("WebUSB results: DataViews over exactly the data; errors map to the spec's names with the cause kept", () => {
  const v = exactView(new Uint8Array([9, 8, 7, 6]).subarray(1, 3));
  assert.deepEqual([v.byteOffset, v.byteLength, v.buffer.byteLength], [
    0,
    2,
    2,
  ]);
  const whole = new Uint8Array([1, 2, 3]);
  assert.equal(
    exactView(whole).buffer,
    whole.buffer,
    "no copy when it already fits",
  );
  const r = new USBInTransferResult("babble", v);
  assert.equal(r.status, "babble");
  const cases: [UsbError, string][] = [
    [new UsbError("cancelled", "x"), "AbortError"],
    [new UsbError("timeout", "x"), "TimeoutError"],
    [new UsbError("disconnected", "x"), "NetworkError"],
    [new UsbError("busy", "x", { hint: "h" }), "NetworkError"],
    [new UsbError("access-denied", "x"), "NetworkError"],
  ];
  for (const [u, name] of cases) {
    const e = toWebUsbError(u, "transferIn", false);
    assert.ok(e instanceof DOMException);
    assert.equal(e.name, name);
    assert.equal(e.cause, u);
  }
  assert.match(
    toWebUsbError(
      new UsbError("busy", "held", { hint: "detach it" }),
      "claimInterface",
      false,
    ).message,
    /held \(detach it\)/,
  );
  // Cancelled because the device went away: NetworkError, as for a failed transfer.
  assert.equal(
    (toWebUsbError(
      new UsbError("cancelled", "x"),
      "transferIn",
      true,
    ) as DOMException).name,
    "NetworkError",
  );
  assert.ok(
    toWebUsbError(new UsbError("invalid-argument", "x"), "m", false) instanceof
      TypeError,
  );
});

Deno.test("WebUSB install(): navigator.usb and the classes as globals", () => {
  assert.equal(install(), usb);
  assert.equal(navigator.usb, usb);
  const g = globalThis as unknown as Record<string, unknown>;
  assert.equal(g.USBInTransferResult, USBInTransferResult);
  const other = new USB();
  install(other);
  assert.equal(navigator.usb, other);
  install();
  assert.throws(() => install({} as USB), TypeError);
});
