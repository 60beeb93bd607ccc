// WebUSB conformance against the virtual bench (run inside the guest): the
// spec's states and errors, data checked against the SourceSink pattern and
// a Loopback echo, a stall and its clearHalt, a babble, isochronous OUT to
// QEMU's usb-audio, isochronous IN from a device written in TypeScript
// (served over USB/IP on vhci_hcd), pending transfers aborted by
// releaseInterface, close, selectAlternateInterface and forget, forget()'s
// effect on getDevices and requestDevice, and a disconnect while a transfer
// is pending, with the same USBDevice object before and after the replug.

import assert from "node:assert/strict";
import {
  benchInfo,
  locate,
  plugGadget,
  unplugGadget,
} from "../../kernel/guest.ts";
import { listDevices } from "../../src/enumeration.ts";
import { UsbError } from "../../src/errors.ts";
// USBDevice and USBConnectionEvent below are the @types/w3c-web-usb types
// (what a WebUSB program sees), implemented by webusb.ts's classes.
import {
  USB,
  type USBDevice as KitDevice,
  type USBInTransferResult,
  USBIsochronousInTransferPacket,
  USBIsochronousInTransferResult,
} from "../../webusb.ts";
import { pattern, randomBytes, sameBytes } from "./data.ts";

const bench = benchInfo();
const ss = bench.gadgets.find((g) => g.function === "sourcesink")!;
const lb = bench.gadgets.find((g) => g.function === "loopback");
const audio = bench.qemuDevices.find((d) => d.kind === "audio");

/** vhci_hcd is loaded: devices written in TypeScript can be attached. */
const VHCI = (() => {
  try {
    return Deno.statSync("/sys/devices/platform/vhci_hcd.0/attach").isFile;
  } catch {
    return false;
  }
})();

const tracked: USB[] = [];

/** A USB object that {@linkcode guard} cleans up after. */
function track(usb: USB): USB {
  tracked.push(usb);
  return usb;
}

/**
 * A test body after which every device the tracked USB objects opened is
 * closed, pass or fail, so that a failure does not leave an interface
 * claimed for the next test.
 */
function guard(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } finally {
      for (const usb of tracked.splice(0)) {
        for (const d of await usb.getDevices()) {
          if (d.opened) await d.close().catch(() => {});
        }
        await usb.close();
      }
    }
  };
}

/** The DOMException name a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<DOMException> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DOMException, `not a DOMException: ${e}`);
    return e;
  }
  assert.fail("it resolved");
}

/** Bytes of a transfer result's DataView, which must span its whole buffer. */
function bytesOf(r: USBInTransferResult): Uint8Array {
  const v = r.data!;
  assert.equal(v.byteOffset, 0);
  assert.equal(
    v.buffer.byteLength,
    v.byteLength,
    "the buffer holds exactly the data",
  );
  return new Uint8Array(v.buffer);
}

async function request(usb: USB, serialNumber: string): Promise<KitDevice> {
  const d = await usb.requestDevice({ filters: [{ serialNumber }] });
  assert.equal(d.serialNumber, serialNumber);
  return d;
}

/** The kernel driver bound to interface 0 of a device at `port`. */
function driverOf(port: string): string | undefined {
  try {
    return Deno.readLinkSync(`/sys/bus/usb/devices/${port}:1.0/driver`)
      .split("/").at(-1);
  } catch {
    return undefined;
  }
}

Deno.test("WebUSB getDevices: every bench device, attributes from its descriptors, the same objects each time", async () => {
  const usb = track(new USB());
  const devices = await usb.getDevices();
  const listed = (await listDevices()).filter((d) => !d.isRootHub);
  assert.equal(devices.length, listed.length);
  for (const info of listed) {
    const d = devices.find((x) =>
      x.serialNumber === (info.serialNumber ?? null) &&
      x.vendorId === info.vendorId && x.productId === info.productId
    )!;
    assert.ok(d, `${info.portPath} is listed`);
    assert.equal(d.opened, false);
    assert.equal(
      (d.usbVersionMajor << 8) | (d.usbVersionMinor << 4) |
        d.usbVersionSubminor,
      info.usbVersion,
    );
    assert.equal(
      (d.deviceVersionMajor << 8) | (d.deviceVersionMinor << 4) |
        d.deviceVersionSubminor,
      info.deviceVersion,
    );
    assert.equal(d.deviceClass, info.deviceClass);
    assert.equal(d.productName, info.productName ?? null);
    // Configurations are readable before open().
    assert.deepEqual(
      d.configurations.map((c) => c.configurationValue),
      info.configurations.map((c) => c.configurationValue),
    );
    assert.equal(d.configuration?.configurationValue, info.activeConfiguration);
    for (const c of d.configurations) {
      const desc = info.configurations.find((x) =>
        x.configurationValue === c.configurationValue
      )!;
      assert.deepEqual(
        c.interfaces.map((
          i,
        ) => [i.interfaceNumber, i.claimed, i.alternates.length]),
        desc.interfaces.map((
          i,
        ) => [i.interfaceNumber, false, i.alternates.length]),
      );
      for (const i of c.interfaces) {
        assert.equal(i.alternate, i.alternates[0]);
      }
    }
  }
  const again = await usb.getDevices();
  assert.ok(again.every((d, i) => d === devices[i]), "the same objects");
});

Deno.test(
  "WebUSB on SourceSink: state errors in the spec's order, the pattern, vendor control, usbtest detached and bound again",
  guard(async () => {
    const usb = track(new USB());
    const device = await usb.requestDevice({
      filters: [{ vendorId: ss.vendorId, productId: ss.productId }],
    });
    assert.equal(device, await request(usb, ss.serial), "SameObject");
    const port = locate(ss.serial)!.port;
    const driverBefore = driverOf(port);

    assert.equal(
      (await rejection(device.claimInterface(0))).name,
      "InvalidStateError",
    );
    assert.equal(
      (await rejection(device.transferIn(1, 64))).name,
      "InvalidStateError",
    );
    await assert.rejects(device.transferIn(1.5, 64), TypeError);
    await device.open();
    await device.open(); // already open: resolves
    assert.equal(
      (await rejection(device.transferIn(1, 64))).name,
      "NotFoundError",
    );
    assert.equal(
      (await rejection(device.claimInterface(7))).name,
      "NotFoundError",
    );
    assert.equal(
      (await rejection(device.selectConfiguration(9))).name,
      "NotFoundError",
    );
    await device.selectConfiguration(device.configuration!.configurationValue);

    await device.claimInterface(0);
    const iface = device.configuration!.interfaces[0]!;
    assert.equal(iface.claimed, true);
    if (driverBefore !== undefined) assert.equal(driverOf(port), "usbfs");
    const epIn = iface.alternate.endpoints.find((e) => e.direction === "in")!;
    const epOut = iface.alternate.endpoints.find((e) => e.direction === "out")!;
    assert.equal(epIn.type, "bulk");

    const r = await device.transferIn(epIn.endpointNumber, 16384);
    assert.equal(r.status, "ok");
    assert.ok(sameBytes(bytesOf(r), pattern(16384, epIn.packetSize)));
    const w = await device.transferOut(
      epOut.endpointNumber,
      pattern(8192, epOut.packetSize),
    );
    assert.deepEqual([w.status, w.bytesWritten], ["ok", 8192]);

    const data = randomBytes(300);
    const setup = (request: number) => ({
      requestType: "vendor" as const,
      recipient: "device" as const,
      request,
      value: 0,
      index: 0,
    });
    const out = await device.controlTransferOut(setup(0x5b), data);
    assert.deepEqual([out.status, out.bytesWritten], ["ok", 300]);
    const back = await device.controlTransferIn(setup(0x5c), 300);
    assert.ok(sameBytes(bytesOf(back), data), "control round trip");

    // An unknown vendor request stalls the default control pipe.
    const stall = await device.controlTransferIn(setup(0x7e), 8);
    assert.equal(stall.status, "stall");

    // Isochronous calls on a bulk endpoint: InvalidAccessError.
    assert.equal(
      (await rejection(device.isochronousTransferIn(epIn.endpointNumber, [64])))
        .name,
      "InvalidAccessError",
    );
    await device.releaseInterface(0);
    assert.equal(iface.claimed, false);
    await device.close();
    assert.equal(device.opened, false);
    if (driverBefore !== undefined) {
      assert.equal(driverOf(port), driverBefore, "usbtest bound again");
    }
  }),
);

Deno.test(
  "WebUSB: a bad byte stalls SourceSink's bulk OUT; clearHalt recovers; a read shorter than a packet babbles",
  guard(async () => {
    const usb = track(new USB());
    const device = await request(usb, ss.serial);
    await device.open();
    try {
      await device.claimInterface(0);
      const alt = device.configuration!.interfaces[0]!.alternate;
      const epIn = alt.endpoints.find((e) => e.direction === "in")!;
      const epOut = alt.endpoints.find((e) => e.direction === "out")!;
      // f_sourcesink.c check_read_data halts the OUT endpoint on a bad byte.
      const bad = pattern(4096, epOut.packetSize);
      bad[100] = 0xee;
      await device.transferOut(epOut.endpointNumber, bad);
      const good = pattern(4096, epOut.packetSize);
      const stalled = await device.transferOut(epOut.endpointNumber, good);
      assert.equal(stalled.status, "stall");
      await device.clearHalt("out", epOut.endpointNumber);
      const ok = await device.transferOut(epOut.endpointNumber, good);
      assert.deepEqual([ok.status, ok.bytesWritten], ["ok", 4096]);
      assert.equal(
        (await rejection(device.clearHalt("in", 9))).name,
        "NotFoundError",
      );

      // The gadget sends a whole packet into a 100-byte read: babble.
      const babble = await device.transferIn(epIn.endpointNumber, 100);
      assert.equal(babble.status, "babble");
      const r = await device.transferIn(epIn.endpointNumber, epIn.packetSize);
      assert.equal(r.status, "ok");
      assert.equal(r.data!.byteLength, epIn.packetSize);
    } finally {
      await device.close();
    }
  }),
);

Deno.test({
  name:
    "WebUSB on Loopback: echo; pending transfers reject with AbortError on releaseInterface and close; TimeoutError only when asked",
  ignore: lb === undefined,
  fn: guard(async () => {
    const usb = track(new USB());
    const device = await request(usb, lb!.serial);
    await device.open();
    await device.reset(); // nothing half-echoed from earlier tests
    await device.claimInterface(0);
    const alt = device.configuration!.interfaces[0]!.alternate;
    const epIn = alt.endpoints.find((e) => e.direction === "in")!;
    const epOut = alt.endpoints.find((e) => e.direction === "out")!;
    const data = randomBytes(3000);
    const [w, r] = await Promise.all([
      device.transferOut(epOut.endpointNumber, data),
      device.transferIn(epIn.endpointNumber, 3000),
    ]);
    assert.equal(w.bytesWritten, 3000);
    assert.ok(sameBytes(bytesOf(r), data), "echo");

    // Nothing was written: this read stays pending until released.
    // Caught from the start: it rejects while releaseInterface runs.
    const pending = rejection(device.transferIn(epIn.endpointNumber, 512));
    await new Promise((res) => setTimeout(res, 100));
    await device.releaseInterface(0);
    const aborted = await pending;
    assert.equal(aborted.name, "AbortError");
    assert.ok((aborted as Error).cause instanceof UsbError);

    await device.claimInterface(0);
    const pending2 = rejection(device.transferIn(epIn.endpointNumber, 512));
    await new Promise((res) => setTimeout(res, 100));
    await device.close();
    assert.equal((await pending2).name, "AbortError");

    // The extra option: a timeout, outside the spec.
    const timed = track(new USB({ transferTimeout: 200 }));
    const d2 = await request(timed, lb!.serial);
    assert.notEqual(d2, device, "each USB object has its own devices");
    await d2.open();
    await d2.claimInterface(0);
    const t = await rejection(d2.transferIn(epIn.endpointNumber, 512));
    assert.equal(t.name, "TimeoutError");
    await d2.close();
  }),
});

Deno.test({
  name:
    "WebUSB: unplugging Loopback fails its pending transfer with NetworkError; disconnect and connect events carry the same USBDevice",
  ignore: lb === undefined,
  fn: guard(async () => {
    const usb = track(new USB());
    const device = await request(usb, lb!.serial);
    const events: [string, USBDevice][] = [];
    const onEvent = (e: USBConnectionEvent) => {
      if (e.device.serialNumber === lb!.serial) events.push([e.type, e.device]);
    };
    usb.addEventListener("connect", onEvent);
    usb.addEventListener("disconnect", onEvent);
    try {
      await device.open();
      await device.claimInterface(0);
      const alt = device.configuration!.interfaces[0]!.alternate;
      const epIn = alt.endpoints.find((e) => e.direction === "in")!;
      // Caught from the start: it rejects while releaseInterface runs.
      const pending = rejection(device.transferIn(epIn.endpointNumber, 512));
      await new Promise((res) => setTimeout(res, 100));
      await unplugGadget(lb!.name);
      assert.equal((await pending).name, "NetworkError");
      const t0 = Date.now();
      while (!events.some(([t]) => t === "disconnect")) {
        assert.ok(Date.now() - t0 < 15000, "no disconnect event");
        await new Promise((res) => setTimeout(res, 20));
      }
      assert.equal(device.opened, false);
      assert.equal((await rejection(device.open())).name, "NotFoundError");
      assert.equal(
        (await rejection(device.transferIn(1, 8))).name,
        "NotFoundError",
      );

      await plugGadget(lb!.name);
      while (!events.some(([t]) => t === "connect")) {
        assert.ok(Date.now() - t0 < 30000, "no connect event");
        await new Promise((res) => setTimeout(res, 20));
      }
      assert.deepEqual(events.map(([t]) => t), ["disconnect", "connect"]);
      assert.ok(
        events.every(([, d]) => d === device),
        "the same USBDevice object",
      );
      assert.equal(device, await request(usb, lb!.serial));

      // It works again, as the same object.
      await device.open();
      await device.claimInterface(0);
      const epOut = device.configuration!.interfaces[0]!.alternate.endpoints
        .find((e) => e.direction === "out")!;
      const data = randomBytes(1000);
      const [, r] = await Promise.all([
        device.transferOut(epOut.endpointNumber, data),
        device.transferIn(epIn.endpointNumber, 1000),
      ]);
      assert.ok(sameBytes(bytesOf(r), data), "echo after the replug");
      await device.close();
    } finally {
      usb.removeEventListener("connect", onEvent);
      usb.removeEventListener("disconnect", onEvent);
      await usb.close();
      await plugGadget(lb!.name);
    }
  }),
});

Deno.test({
  name:
    "WebUSB isochronous OUT to QEMU usb-audio: every packet ok and fully written",
  ignore: audio === undefined,
  fn: guard(async () => {
    const usb = track(new USB());
    const device = await usb.requestDevice({
      filters: [{ vendorId: audio!.vendorId, productId: audio!.productId }],
    });
    await device.open();
    try {
      const streaming = device.configuration!.interfaces.find((i) =>
        i.alternates.some((a) =>
          a.endpoints.some((e) => e.type === "isochronous")
        )
      )!;
      const alt = streaming.alternates.find((a) =>
        a.endpoints.some((e) => e.type === "isochronous")
      )!;
      await device.claimInterface(streaming.interfaceNumber);
      await device.selectAlternateInterface(
        streaming.interfaceNumber,
        alt.alternateSetting,
      );
      assert.equal(streaming.alternate, alt);
      const ep = alt.endpoints.find((e) =>
        e.type === "isochronous" && e.direction === "out"
      )!;
      const packet = Math.min(192, ep.packetSize);
      const lengths = new Array(8).fill(packet);
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          device.isochronousTransferOut(
            ep.endpointNumber,
            randomBytes(8 * packet),
            lengths,
          )),
      );
      for (const r of results) {
        assert.equal(r.packets.length, 8);
        for (const p of r.packets) {
          assert.deepEqual([p.status, p.bytesWritten], ["ok", packet]);
        }
      }
      // A bulk call on an isochronous endpoint: InvalidAccessError.
      assert.equal(
        (await rejection(
          device.transferOut(ep.endpointNumber, new Uint8Array(8)),
        ))
          .name,
        "InvalidAccessError",
      );
      await device.selectAlternateInterface(streaming.interfaceNumber, 0);
    } finally {
      await device.close();
    }
  }),
});

// A device written in TypeScript, attached to vhci_hcd: interface 0 has an
// isochronous IN endpoint 0x81 in alternate 1 (none in alternate 0);
// interface 1 a bulk IN 0x82 that never has data (a transfer that stays
// pending). Packet k of the URB the device answers f-th ("frame f") holds
// isoSent(f, k, requested) bytes, byte j being isoByte(f, k, j).

/** The iso IN packet lengths the tests ask for: different, down to 1. */
const ISO_LENGTHS = [256, 256, 200, 256, 64, 256, 256, 17, 128, 256, 256, 1];
const ISO_TOTAL = ISO_LENGTHS.reduce((a, b) => a + b, 0);

/** Byte j of packet k of frame f. */
function isoByte(f: number, k: number, j: number): number {
  return (f * 37 + k * 11 + j) & 0xff;
}

/**
 * How many bytes the device sends in packet k of frame f when `requested`
 * were asked for: all of them, none, a short packet, one byte too many
 * (babble, in odd frames), one too few.
 */
function isoSent(f: number, k: number, requested: number): number {
  switch (k % 6) {
    case 1:
      return 0;
    case 2:
      return 1 + (f * 7 + k) % Math.max(1, requested - 1);
    case 3:
      return f % 2 === 1 ? requested + 1 : requested;
    case 4:
      return requested - 1;
    default:
      return requested;
  }
}

/** Packet k of frame f, as the device sends it. */
function isoPacket(f: number, k: number, requested: number): Uint8Array {
  return Uint8Array.from(
    { length: isoSent(f, k, requested) },
    (_, j) => isoByte(f, k, j),
  );
}

/** What the iso test device does with its next URB. */
type IsoMode = "pattern" | "bad packet" | "hold";

async function isoTestDevice(serialNumber: string) {
  const { defineDevice } = await import("../../src/emulated/mod.ts");
  const state = {
    /** Frames answered so far (the next URB is frame `frames`). */
    frames: 0,
    mode: "pattern" as IsoMode,
    /** The requested lengths of every URB the device saw. */
    requested: [] as number[][],
  };
  const device = defineDevice({
    speed: "high",
    vendorId: 0x1209,
    productId: 0x0004,
    manufacturer: "usbkit",
    product: "WebUSB iso IN",
    serialNumber,
    interfaces: [{
      alternates: [{}, {
        endpoints: [{
          address: 0x81,
          type: "isochronous" as const,
          maxPacketSize: 256,
          onIsoIn: (packets, info) => {
            state.requested.push(packets.map((p) => p.length));
            if (state.mode === "hold") {
              // Held until the host unlinks the URB.
              return new Promise((_, reject) =>
                info.signal.addEventListener(
                  "abort",
                  () => reject(info.signal.reason),
                  { once: true },
                )
              );
            }
            if (state.mode === "bad packet") {
              // Packet 3 arrives damaged (EPROTO); the rest are fine.
              return packets.map((p, k) =>
                k === 3 ? { status: -71 } : new Uint8Array(p.length)
              );
            }
            const f = state.frames++;
            return packets.map((p, k) => isoPacket(f, k, p.length));
          },
        }],
      }],
    }, {
      alternates: [{
        endpoints: [{ address: 0x82, type: "bulk" as const }],
      }],
    }],
  });
  return { device, state };
}

/**
 * Checks an isochronousTransferIn result against frame f, as the spec's
 * algorithm builds it: `data` a DataView over one buffer of the requested
 * lengths' sum; packet i's `data` a view of that buffer at the sum of the
 * requested lengths before it, exactly as long as what arrived; status
 * "babble" where the device sent more than asked, else "ok".
 */
function checkIsoFrame(r: USBIsochronousInTransferResult, f: number): void {
  assert.ok(r instanceof USBIsochronousInTransferResult);
  const data = r.data!;
  assert.ok(data instanceof DataView, `frame ${f}: data is a DataView`);
  assert.deepEqual(
    [data.byteOffset, data.byteLength, data.buffer.byteLength],
    [0, ISO_TOTAL, ISO_TOTAL],
    `frame ${f}: data spans one buffer of the requested lengths' sum`,
  );
  assert.equal(r.packets.length, ISO_LENGTHS.length);
  assert.ok(Object.isFrozen(r.packets), "packets is a FrozenArray");
  const whole = new Uint8Array(data.buffer);
  let offset = 0;
  ISO_LENGTHS.forEach((requested, k) => {
    const where = `frame ${f} packet ${k}`;
    const p = r.packets[k]!;
    assert.ok(p instanceof USBIsochronousInTransferPacket, where);
    const babble = isoSent(f, k, requested) > requested;
    assert.equal(p.status, babble ? "babble" : "ok", where);
    const v = p.data!;
    assert.ok(v instanceof DataView, `${where}: data is a DataView`);
    assert.equal(
      v.buffer,
      data.buffer,
      `${where}: a view of result.data's buffer`,
    );
    assert.equal(v.byteOffset, offset, `${where}: at its slot`);
    // A babbled packet: this device (like the USB/IP model) delivers none of it.
    const expected = babble ? new Uint8Array(0) : isoPacket(f, k, requested);
    assert.equal(v.byteLength, expected.length, `${where}: its length`);
    assert.ok(
      sameBytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), expected),
      `${where}: its bytes`,
    );
    assert.ok(
      whole.subarray(offset + v.byteLength, offset + requested).every((b) =>
        b === 0
      ),
      `${where}: nothing but zeros after what arrived`,
    );
    offset += requested;
  });
}

Deno.test({
  name:
    "WebUSB isochronousTransferIn from a TypeScript device (vhci_hcd): data is one buffer of the packets' slots, each packet a view of what it received, ok/babble per packet, a bad packet is NetworkError, selectAlternateInterface aborts",
  ignore: !VHCI,
  fn: guard(async () => {
    const { attachLocal } = await import("../../src/usbip/mod.ts");
    const serialNumber = "webusb-iso-in-1";
    const { device: emulated, state } = await isoTestDevice(serialNumber);
    await using _attached = await attachLocal(emulated);
    const usb = track(new USB());
    const device = await usb.requestDevice({
      filters: [{ vendorId: 0x1209, productId: 0x0004, serialNumber }],
    });
    assert.equal(
      (await rejection(device.isochronousTransferIn(1, [256]))).name,
      "InvalidStateError",
      "not open",
    );
    await device.open();
    try {
      await device.claimInterface(0);
      const iface = device.configuration!.interfaces[0]!;
      // Alternate 0 has no endpoint: the spec's "find the endpoint" fails.
      assert.equal(
        (await rejection(device.isochronousTransferIn(1, [256]))).name,
        "NotFoundError",
      );
      await device.selectAlternateInterface(0, 1);
      assert.equal(iface.alternate.alternateSetting, 1);
      const ep = iface.alternate.endpoints[0]!;
      assert.deepEqual(
        [ep.endpointNumber, ep.direction, ep.type, ep.packetSize],
        [1, "in", "isochronous", 256],
      );
      assert.equal(
        (await rejection(device.transferIn(1, 256))).name,
        "InvalidAccessError",
        "a bulk call on an isochronous endpoint",
      );
      assert.equal(
        (await rejection(
          device.isochronousTransferOut(1, new Uint8Array(256), [256]),
        )).name,
        "NotFoundError",
        "no OUT endpoint 1",
      );
      await assert.rejects(
        device.isochronousTransferIn(1, [256, -1]),
        TypeError,
        "packetLengths are unsigned longs",
      );

      // One transfer at a time: frames 0 to 5 (odd ones babble).
      for (let f = 0; f < 6; f++) {
        checkIsoFrame(
          await device.isochronousTransferIn(ep.endpointNumber, ISO_LENGTHS),
          f,
        );
      }
      // Four in flight at once: frames 6 to 9, in the order submitted.
      const results = await Promise.all(
        [0, 1, 2, 3].map(() =>
          device.isochronousTransferIn(ep.endpointNumber, ISO_LENGTHS)
        ),
      );
      results.forEach((r, i) => checkIsoFrame(r, 6 + i));
      assert.equal(state.frames, 10);
      // The device saw exactly the lengths asked for, in every URB.
      assert.ok(
        state.requested.every((l) =>
          l.length === ISO_LENGTHS.length &&
          l.every((n, k) => n === ISO_LENGTHS[k])
        ),
      );

      // A packet failed otherwise than by a stall or a babble: NetworkError.
      state.mode = "bad packet";
      const bad = await rejection(
        device.isochronousTransferIn(ep.endpointNumber, ISO_LENGTHS),
      );
      assert.equal(bad.name, "NetworkError");
      state.mode = "pattern";
      checkIsoFrame(
        await device.isochronousTransferIn(ep.endpointNumber, ISO_LENGTHS),
        10,
      );

      // A pending transfer rejects with AbortError when the alternate
      // setting changes (the spec's "abort transfers currently scheduled").
      state.mode = "hold";
      const seen = state.requested.length;
      const pending = rejection(
        device.isochronousTransferIn(ep.endpointNumber, ISO_LENGTHS),
      );
      while (state.requested.length === seen) {
        await new Promise((res) => setTimeout(res, 10));
      }
      await device.selectAlternateInterface(0, 0);
      assert.equal((await pending).name, "AbortError");
      assert.equal(iface.alternate.alternateSetting, 0);
      state.mode = "pattern";
      await device.selectAlternateInterface(0, 1);
      checkIsoFrame(
        await device.isochronousTransferIn(ep.endpointNumber, ISO_LENGTHS),
        11,
      );
    } finally {
      await device.close().catch(() => {});
    }
  }),
});

Deno.test({
  name:
    "WebUSB forget(): closes the device (pending transfer: AbortError), leaves getDevices of that USB object only, resolves again, and requestDevice brings the same object back; events skip it",
  ignore: !VHCI,
  fn: guard(async () => {
    const { attachLocal } = await import("../../src/usbip/mod.ts");
    const serialNumber = "webusb-forget-1";
    const { device: emulated } = await isoTestDevice(serialNumber);
    const attached = await attachLocal(emulated);
    let detached = false;
    try {
      const usb = track(new USB());
      const other = track(new USB());
      const filters = [{ vendorId: 0x1209, productId: 0x0004, serialNumber }];
      const device = await usb.requestDevice({ filters });
      const mine = (d: USBDevice) => d.serialNumber === serialNumber;
      assert.equal((await usb.getDevices()).find(mine), device);
      const theirs = (await other.getDevices()).find(mine);
      assert.ok(theirs !== undefined && theirs !== device);

      await device.open();
      await device.claimInterface(1);
      // Interface 1's bulk IN never has data: this stays pending.
      const pending = rejection(device.transferIn(2, 64));
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(await device.forget(), undefined);
      assert.equal((await pending).name, "AbortError");
      assert.equal(device.opened, false, "closed");
      assert.equal(device.configuration!.interfaces[1]!.claimed, false);
      // Left out of this USB object's getDevices(), not another's.
      assert.equal((await usb.getDevices()).find(mine), undefined);
      assert.equal((await other.getDevices()).find(mine), theirs);
      // Forgetting a forgotten device: nothing to remove, resolves.
      assert.equal(await device.forget(), undefined);
      assert.equal((await usb.getDevices()).find(mine), undefined);
      // It is closed: the methods reject as for any closed device.
      assert.equal(
        (await rejection(device.transferIn(2, 64))).name,
        "InvalidStateError",
      );
      assert.equal(
        (await rejection(device.claimInterface(1))).name,
        "InvalidStateError",
      );

      // requestDevice() allows it again: the same object, listed again.
      assert.equal(await usb.requestDevice({ filters }), device);
      assert.equal((await usb.getDevices()).find(mine), device);
      await device.open();
      await device.claimInterface(0);
      await device.selectAlternateInterface(0, 1);
      checkIsoFrame(await device.isochronousTransferIn(1, ISO_LENGTHS), 0);
      await device.close();

      // Forgotten again: its disconnect reaches only the other USB object.
      await device.forget();
      const events: [string, string][] = [];
      const onUsb = (e: USBConnectionEvent) => {
        if (mine(e.device)) events.push(["usb", e.type]);
      };
      const onOther = (e: USBConnectionEvent) => {
        if (mine(e.device)) {
          assert.equal(e.device, theirs);
          events.push(["other", e.type]);
        }
      };
      usb.addEventListener("disconnect", onUsb);
      other.addEventListener("disconnect", onOther);
      // Let both hotplug watchers start before the device goes.
      await new Promise((res) => setTimeout(res, 200));
      detached = true;
      await attached.detach();
      const t0 = Date.now();
      while (!events.some(([who]) => who === "other")) {
        assert.ok(Date.now() - t0 < 15000, "no disconnect event");
        await new Promise((res) => setTimeout(res, 20));
      }
      await new Promise((res) => setTimeout(res, 500));
      assert.deepEqual(events, [["other", "disconnect"]]);
    } finally {
      if (!detached) await attached.detach();
    }
  }),
});

Deno.test("README (WebUSB): the web.dev snippet runs as printed and names the first 0525 gadget", async () => {
  const { readmeBlocks } = await import("../fixtures/readme.ts");
  const block = readmeBlocks().find((b) =>
    b.section === "WebUSB" && b.lang === "ts"
  );
  assert.ok(block, "the README has a WebUSB example");
  const root = new URL("../../", import.meta.url).pathname;
  const file = `${root}webusb-example.ts`;
  await Deno.writeTextFile(file, block.code);
  try {
    // As the README says, from the project root; --no-check because the
    // host's doc-check type-checks the block and tsc is slow under TCG.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", "webusb-example.ts"],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const first = (await listDevices()).find((d) => d.vendorId === 0x0525)!;
    assert.equal(
      stdout,
      `${first.productName}\n${first.manufacturerName}\n`,
      stderr,
    );
    assert.match(block.code, new RegExp(`// "${first.productName}"`));
  } finally {
    await Deno.remove(file).catch(() => {});
  }
});
