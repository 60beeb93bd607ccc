// Issue 10: the one URB lifecycle against the bench (run inside the guest by
// `deno task test`). A submit that fails gives the UsbBuffer back; a stall
// reads the same on transferIn and transferBatch; close, release and reset
// cancel with their reason on every one-shot path; transferBatch echoes the
// exact bytes through Loopback.

import assert from "node:assert/strict";
import {
  type Device,
  type Endpoint,
  type InResult,
  type Interface,
  open,
  UsbError,
} from "../../mod.ts";
import { defineDevice, STALL } from "../../src/emulated/mod.ts";
import { attachLocal, VHCI_SYSFS } from "../../src/usbip/mod.ts";
import { randomBytes, sameBytes } from "./data.ts";
import { benchInfo } from "../../kernel/guest.ts";

const info = benchInfo();
const lb = info.gadgets.find((g) => g.function === "loopback");

const VHCI = (() => {
  try {
    Deno.statSync(`${VHCI_SYSFS}/attach`);
    return true;
  } catch {
    return false;
  }
})();

/** The Loopback gadget's bulk endpoints (addresses depend on the UDC). */
function bulkPair(iface: Interface): { out: Endpoint; inn: Endpoint } {
  const find = (dir: "in" | "out") =>
    iface.endpoints.find((e) => e.type === "bulk" && e.direction === dir)!;
  return { out: find("out"), inn: find("in") };
}

/** Loopback, reset so nothing an earlier test left can shift the echo. */
async function openLoopback(options = {}): Promise<Device> {
  const dev = await open(lb!.serial, options);
  await dev.reset();
  return dev;
}

/** The error a promise rejects with (fails when it resolves). */
async function rejection(p: Promise<unknown>, what: string): Promise<UsbError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof UsbError, `${what}: ${e}`);
    return e;
  }
  assert.fail(`${what} resolved`);
}

Deno.test({
  name:
    "a first submit that fails gives the UsbBuffer back (views live, release() works); a later one cancels what is in flight",
  ignore: lb === undefined,
  fn: async () => {
    // Two URB slots: an IN read with nothing to echo holds both.
    await using dev = await openLoopback({ maxUrbs: 2 });
    const iface = await dev.claimInterface(0);
    const { inn } = bulkPair(iface);
    const ac = new AbortController();
    const held = [
      inn.transferIn(64, { signal: ac.signal }),
      inn.transferIn(64, { signal: ac.signal }),
    ];
    assert.equal(dev.engine.freeSlots, 0);
    for (const zeroCopy of [true, false]) {
      const buf = dev.allocBuffer(4096, { zeroCopy });
      const bytes = randomBytes(4096);
      buf.bytes.set(bytes);
      const e = await rejection(inn.transferIn(buf), "transferIn(buf)");
      assert.equal(e.code, "no-memory", e.message);
      assert.equal(buf.inFlight, false);
      assert.equal(buf.bytes.byteLength, 4096, "the view is live again");
      assert.ok(sameBytes(buf.bytes, bytes), "the buffer's bytes are its own");
      buf.release();
      assert.equal(buf.released, true);
    }
    ac.abort();
    for (const p of held) {
      const e = await rejection(p, "the held read");
      assert.equal(e.code, "cancelled");
    }

    // One slot held: a read of two URBs submits the first, fails the
    // second, discards the first and rejects with the reason.
    const ac2 = new AbortController();
    const one = inn.transferIn(64, { signal: ac2.signal });
    const big = dev.allocBuffer(dev.engine.maxUrbBytes + 1, {
      zeroCopy: false,
    });
    const e = await rejection(inn.transferIn(big), "transferIn(two URBs)");
    assert.equal(e.code, "no-memory", e.message);
    assert.equal(big.bytes.byteLength, big.size, "the view is live again");
    big.release();
    ac2.abort();
    await rejection(one, "the held read");
    assert.equal(dev.engine.freeSlots, 2, "nothing stays in flight");
  },
});

Deno.test({
  name:
    "close, release and reset cancel transferIn and transferBatch with their reason",
  ignore: lb === undefined,
  fn: async () => {
    for (const reason of ["closed", "released", "reset"] as const) {
      const dev = await openLoopback();
      try {
        const iface = await dev.claimInterface(0);
        const { inn } = bulkPair(iface);
        // Nothing is echoed: these wait until cancelled. Their rejections
        // are taken now: they come while close() is still running.
        const single = rejection(inn.transferIn(64), "transferIn");
        const batch = rejection(
          dev.transferBatch([
            { endpoint: inn.address, length: 64 },
            { endpoint: inn.address, length: 64 },
          ]),
          "transferBatch",
        );
        await new Promise((r) => setTimeout(r, 50));
        if (reason === "closed") await dev.close();
        else if (reason === "released") await iface.release();
        else await dev.reset();
        const words = {
          closed: "because the device was closed",
          released: "because its interface was released",
          reset: "because the device was reset",
        }[reason];
        const errors = [["transferIn", await single], [
          "transferBatch",
          await batch,
        ]] as const;
        for (const [what, e] of errors) {
          assert.equal(e.code, "cancelled", `${what}, ${reason}: ${e.message}`);
          assert.ok(
            e.message.includes(words),
            `${what}, ${reason}: ${e.message}`,
          );
          assert.equal(e.bytesTransferred, 0);
        }
        const e = await batch;
        assert.equal(e.requestIndex, 0, "the first request was cut short");
        assert.deepEqual(e.results, []);
      } finally {
        await dev.close();
      }
    }
  },
});

Deno.test({
  name:
    "transferBatch: 16 OUT/IN pairs of 64 bytes through Loopback echo the exact bytes, in order, with one promise",
  ignore: lb === undefined,
  fn: async () => {
    await using dev = await openLoopback();
    const iface = await dev.claimInterface(0);
    const { out, inn } = bulkPair(iface);
    // A 64-byte request must end with a short packet to be echoed as one.
    assert.ok(out.packetSize > 64, `maxPacketSize ${out.packetSize}`);
    for (let round = 0; round < 4; round++) {
      const sent = Array.from({ length: 16 }, () => randomBytes(64));
      const requests = sent.flatMap((data) => [
        { endpoint: out.address, data },
        { endpoint: inn.address, length: 64 },
      ]);
      const results = await dev.transferBatch(requests, { timeout: 20000 });
      assert.equal(results.length, 32);
      for (let i = 0; i < 16; i++) {
        assert.deepEqual(results[2 * i], { status: "ok", bytesWritten: 64 });
        const r = results[2 * i + 1] as InResult;
        assert.equal(r.status, "ok");
        assert.ok(
          sameBytes(r.data, sent[i]!),
          `round ${round}, pair ${i}: the echo differs`,
        );
      }
    }
    // A UsbBuffer can be a batch's OUT data; it is detached while in flight.
    const buf = dev.allocBuffer(64);
    const bytes = randomBytes(64);
    buf.bytes.set(bytes);
    const p = dev.transferBatch([
      { endpoint: out.address, data: buf },
      { endpoint: inn.address, length: 64 },
    ]);
    assert.equal(buf.bytes.byteLength, 0, "detached while the kernel owns it");
    const [w, r] = await p;
    assert.deepEqual(w, { status: "ok", bytesWritten: 64 });
    assert.ok(sameBytes((r as InResult).data, bytes));
    assert.ok(sameBytes(buf.bytes, bytes));
    buf.release();
  },
});

Deno.test({
  name:
    "a stall reads the same on transferIn and transferBatch (status), and clearHalt recovers (a TypeScript device on vhci_hcd)",
  ignore: !VHCI,
  fn: async () => {
    let stalls = 1;
    const device = defineDevice({
      speed: "high",
      vendorId: 0x1209,
      productId: 0x0003,
      manufacturer: "usbkit",
      product: "engine stall test",
      serialNumber: "engine-0001",
      interfaces: [{
        endpoints: [{
          address: 0x81,
          type: "bulk",
          onIn: () => stalls-- > 0 ? STALL : new Uint8Array([1, 2, 3]),
        }],
      }],
    });
    await using a = await attachLocal(device);
    await using dev = await open(a.devnode);
    const iface = await dev.claimInterface(0);
    const ep = iface.endpoint(0x81);
    const one = await ep.transferIn(64, { timeout: 20000 });
    assert.equal(one.status, "stall");
    assert.equal(one.data.length, 0);
    await ep.clearHalt();
    stalls = 1;
    const [r] = await dev.transferBatch([{ endpoint: 0x81, length: 64 }], {
      timeout: 20000,
    });
    assert.equal(r!.status, "stall");
    await ep.clearHalt();
    const ok = await ep.transferIn(64, { timeout: 20000 });
    assert.equal(ok.status, "ok");
    assert.deepEqual([...ok.data], [1, 2, 3]);
  },
});
