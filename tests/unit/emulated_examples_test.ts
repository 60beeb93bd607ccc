/**
 * The example device definitions (scripts/examples/) work at the model
 * level: enumeration, their endpoints and their requests.
 */

import assert from "node:assert/strict";
import {
  defineDevice,
  type DeviceDefinition,
  TestHost,
  UrbStatus,
} from "../../src/emulated/mod.ts";
import cdcAcmDefinition, {
  cdcAcm,
  CdcRequest,
  type SerialState,
} from "../../scripts/examples/serial_device.ts";
import vendorBulkDefinition, {
  vendorBulk,
  VendorRequest,
} from "../../scripts/examples/vendor_device.ts";

const bytes = (r: { data?: Uint8Array }) => [...(r.data ?? [])];
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

async function open(def: DeviceDefinition) {
  const errors: unknown[] = [];
  const device = defineDevice({
    ...def,
    onError: (e) => errors.push(e),
  });
  const host = new TestHost(device);
  const enumerated = await host.enumerate();
  return { device, host, errors, ...enumerated };
}

const vendor = (request: number, value = 0) => ({
  requestType: "vendor" as const,
  recipient: "device" as const,
  request,
  value,
  index: 0,
});

// ---------------------------------------------------------------------------
// vendor_device.ts

Deno.test("vendor bulk example: the default export enumerates", async () => {
  const { device, descriptors, strings, errors } = await open(
    vendorBulkDefinition,
  );
  assert.equal(descriptors.device.vendorId, 0x1209);
  assert.equal(
    strings.get(descriptors.device.productStringIndex),
    "Vendor bulk example",
  );
  const eps = descriptors.configurations[0]!.interfaces[0]!.alternates[0]!
    .endpoints;
  assert.deepEqual(eps.map((e) => [e.address, e.type]), [
    [0x81, "bulk"],
    [0x02, "bulk"],
    [0x82, "bulk"],
    [0x83, "interrupt"],
  ]);
  assert.deepEqual(errors, []);
  device.close();
});

for (const speed of ["full", "high", "super"] as const) {
  Deno.test(`vendor bulk example at ${speed} speed: pattern, loopback, events, requests`, async () => {
    const { device, host, errors } = await open(vendorBulk({ speed }));
    const maxp = { full: 64, high: 512, super: 1024 }[speed];

    // Pattern source: SourceSink's, byte i of every packet is i % 63.
    for (const length of [1, maxp, 4096]) {
      const r = await host.transferIn(0x81, length);
      assert.equal(r.actualLength, length);
      assert.ok(r.data!.every((b, i) => b === (i % maxp) % 63));
    }

    // The interrupt endpoint waits until there is something to report.
    const event = host.transferIn(0x83, 8);
    let reported = false;
    event.then(() => (reported = true));
    await tick(5);
    assert.equal(reported, false);

    // Loopback: chunks come back as written.
    let total = 0;
    for (const n of [1, maxp - 1, maxp, 3 * maxp + 5]) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i ^ n) & 0xff);
      assert.equal((await host.transferOut(0x02, data)).status, 0);
      total += n;
      assert.deepEqual(bytes(await host.transferIn(0x82, 8192)), [...data]);
    }
    const ev = await event;
    assert.equal(ev.actualLength, 4);
    assert.equal(new DataView(ev.data!.buffer).getUint32(0, true), 1);

    // Vendor requests.
    assert.deepEqual(
      bytes(await host.controlIn(vendor(VendorRequest.GetVersion), 2)),
      [0, 1],
    );
    assert.deepEqual(
      bytes(await host.controlIn(vendor(VendorRequest.GetLed), 1)),
      [0],
    );
    assert.equal(
      (await host.controlOut(vendor(VendorRequest.SetLed, 1))).status,
      0,
    );
    assert.deepEqual(
      bytes(await host.controlIn(vendor(VendorRequest.GetLed), 1)),
      [1],
    );
    assert.equal(
      (await host.controlOut(vendor(VendorRequest.SetLed, 2))).status,
      UrbStatus.stall,
    );
    const counter = await host.controlIn(vendor(VendorRequest.GetCounter), 4);
    assert.equal(new DataView(counter.data!.buffer).getUint32(0, true), total);
    assert.equal(
      (await host.controlIn(vendor(0x7f), 1)).status,
      UrbStatus.stall,
    );
    assert.deepEqual(errors, []);
    device.close();
  });
}

Deno.test("vendor bulk example: each vendorBulk() device has its own state", async () => {
  const a = await open(vendorBulk());
  const b = await open(vendorBulk());
  await a.host.controlOut(vendor(VendorRequest.SetLed, 1));
  assert.deepEqual(
    bytes(await b.host.controlIn(vendor(VendorRequest.GetLed), 1)),
    [0],
  );
  await a.host.transferOut(0x02, new Uint8Array([9]));
  const idle = new AbortController();
  const pending = b.host.transferIn(0x82, 512, { signal: idle.signal });
  await tick(5);
  idle.abort();
  assert.equal((await pending).status, UrbStatus.unlinked);
  assert.deepEqual(bytes(await a.host.transferIn(0x82, 512)), [9]);
  a.device.close();
  b.device.close();
});

// ---------------------------------------------------------------------------
// serial_device.ts

Deno.test("CDC ACM example: the default export enumerates as a composite with an IAD", async () => {
  const { device, descriptors, strings } = await open(cdcAcmDefinition);
  const d = descriptors.device;
  assert.deepEqual([d.deviceClass, d.deviceSubclass, d.deviceProtocol], [
    0xef,
    2,
    1,
  ]);
  assert.equal(strings.get(d.serialNumberStringIndex), "ACM0001");
  const c = descriptors.configurations[0]!;
  assert.deepEqual(
    c.associations.map((a) => [a.firstInterface, a.interfaceCount]),
    [[0, 2]],
  );
  assert.deepEqual(
    c.interfaces.map((i) => i.alternates[0]!.interfaceClass),
    [2, 10],
  );
  device.close();
});

for (const speed of ["full", "high", "super"] as const) {
  Deno.test(`CDC ACM example at ${speed} speed: line coding, control lines, echo`, async () => {
    const state: SerialState = {
      lineCoding: new Uint8Array(7),
      dtr: false,
      rts: false,
    };
    const { device, host, errors } = await open(cdcAcm({ speed, state }));
    const cls = (request: number, value = 0) => ({
      requestType: "class" as const,
      recipient: "interface" as const,
      request,
      value,
      index: 0,
    });

    // What Linux's cdc-acm does on open: line coding, then DTR | RTS.
    assert.deepEqual(
      bytes(await host.controlIn(cls(CdcRequest.GetLineCoding), 7)),
      [0x00, 0xc2, 0x01, 0x00, 0, 0, 8],
    );
    const coding = new Uint8Array([0x80, 0x25, 0, 0, 0, 2, 7]); // 9600 7E1
    assert.equal(
      (await host.controlOut(cls(CdcRequest.SetLineCoding), coding)).status,
      0,
    );
    assert.deepEqual(
      bytes(await host.controlIn(cls(CdcRequest.GetLineCoding), 7)),
      [...coding],
    );
    assert.equal(
      (await host.controlOut(cls(CdcRequest.SetLineCoding), new Uint8Array(3)))
        .status,
      UrbStatus.stall,
    );
    await host.controlOut(cls(CdcRequest.SetControlLineState, 3));
    assert.ok(state.dtr && state.rts);
    await host.controlOut(cls(CdcRequest.SetControlLineState, 0));
    assert.ok(!state.dtr && !state.rts);
    assert.equal(
      (await host.controlIn(cls(0x7e), 1)).status,
      UrbStatus.stall,
    );

    // Bytes written come back.
    const message = new TextEncoder().encode("AT\r\nhello, serial\r\n");
    assert.equal((await host.transferOut(0x02, message)).status, 0);
    const echo = await host.transferIn(0x81, 4096);
    assert.equal(
      new TextDecoder().decode(echo.data),
      "AT\r\nhello, serial\r\n",
    );

    // The notification endpoint has nothing to say.
    const idle = new AbortController();
    const notify = host.transferIn(0x83, 16, { signal: idle.signal });
    await tick(5);
    idle.abort();
    assert.equal((await notify).status, UrbStatus.unlinked);
    assert.deepEqual(errors, []);
    device.close();
  });
}

Deno.test("CDC ACM example: low speed is refused", () => {
  assert.throws(
    () => defineDevice(cdcAcm({ speed: "low" })),
    /at low speed/,
  );
});
