// Isochronous transfers end to end, against a device written in TypeScript
// (src/emulated) that the guest kernel enumerates through vhci_hcd: the gap
// rule (a short iso IN packet leaves stale bytes in a reused buffer; they
// must never reach the user), isochronousStream, isochronousTransferIn and
// isochronousTransferOut, on usbfs-mapped memory and on the fallback path.
//
//   deno task vm --module vhci-hcd -- deno test -A --no-check --cached-only tests/device/iso_test.ts
//
// The canary: every (inFlight + 1)-th URB of an IN endpoint is all full
// packets of 0xA5, and the device never sends 0xA5 otherwise. With inFlight
// buffers used in turn, the URB after a canary URB in the same buffer is a
// mixed one (empty, short and full packets), so its gaps hold the canary
// bytes of the previous transfer; the canary rotates through every buffer.
// Every packet is compared with what the device recorded it sent.

import assert from "node:assert/strict";
import { open, UsbError } from "../../mod.ts";
import { defineDevice, type IsoInHandler } from "../../src/emulated/mod.ts";
import { attachLocal, VHCI_SYSFS } from "../../src/usbip/mod.ts";
import type { IsoInPacket } from "../../src/isochronous.ts";
import type { IsoStreamResult } from "../../src/iso_stream.ts";
import { randomBytes, sameBytes } from "./data.ts";

const VHCI = (() => {
  try {
    Deno.statSync(`${VHCI_SYSFS}/attach`);
    return true;
  } catch {
    console.error(
      "iso_test: vhci_hcd is not loaded (deno task vm --module vhci-hcd): tests ignored",
    );
    return false;
  }
})();

const MAX = 1024;
const CANARY = 0xa5;
/** Packets of mixed lengths each stream path checks, at least. */
const MIXED_PACKETS = 10_000;
/** The same for each isochronousTransferIn path. */
const MIXED_PACKETS_TRANSFER = 4_000;
const PACKETS_PER_URB = 32;
const IN_FLIGHT = 8;

/** Iso IN endpoints, one per test, so that a URB left from one test cannot shift another's records. */
const EP = {
  streamMapped: 0x81,
  streamFallback: 0x82,
  transferMapped: 0x83,
  transferFallback: 0x84,
  transferArray: 0x85,
  lifecycle: 0x86,
  out: 0x07,
} as const;

/** Packet content: byte j of packet i of URB k is CONTENT[(k * 7 + i * 13) % 255 + j], never the canary. */
const CONTENT = Uint8Array.from({ length: 255 + MAX }, (_, x) => {
  const b = x % 255;
  return b < CANARY ? b : b + 1;
});

/**
 * The device side of one iso IN endpoint: URB k is all canary when
 * k % canaryEvery is 0, otherwise a deterministic mix of empty, short and
 * full packets. Records what it sent, per URB and packet.
 */
class IsoSource {
  readonly sent: Uint8Array[][] = [];
  #seed: number;
  constructor(readonly canaryEvery: number, seed: number) {
    this.#seed = seed;
  }
  #random(n: number): number {
    // xorshift32
    let x = this.#seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed % n;
  }
  readonly onIsoIn: IsoInHandler = (packets) => {
    const k = this.sent.length;
    const canary = k % this.canaryEvery === 0;
    const out = packets.map((p, i) => {
      if (canary) return new Uint8Array(p.length).fill(CANARY);
      const kind = this.#random(3);
      const n = kind === 0
        ? 0
        : kind === 1
        ? 1 + this.#random(p.length - 1)
        : p.length;
      const start = (k * 7 + i * 13) % 255;
      return CONTENT.slice(start, start + n);
    });
    this.sent.push(out);
    return out;
  };
  isCanary(k: number): boolean {
    return k % this.canaryEvery === 0;
  }
}

/** What the iso OUT endpoint received: per URB, per packet. */
const outReceived: Uint8Array[][] = [];
const sources = {
  [EP.streamMapped]: new IsoSource(IN_FLIGHT + 1, 1),
  [EP.streamFallback]: new IsoSource(IN_FLIGHT + 1, 2),
  [EP.transferMapped]: new IsoSource(4 + 1, 3),
  [EP.transferFallback]: new IsoSource(4 + 1, 4),
  [EP.transferArray]: new IsoSource(4 + 1, 5),
};

/** The lifecycle endpoint: answers with full packets, or holds every URB until it is unlinked. */
const lifecycle = { hold: false, answered: 0 };
const onLifecycleIn: IsoInHandler = (packets, info) => {
  if (!lifecycle.hold) {
    lifecycle.answered++;
    return packets.map((p) => new Uint8Array(p.length).fill(1));
  }
  return new Promise((resolve) =>
    info.signal.addEventListener("abort", () => resolve([]))
  );
};

function isoDevice() {
  return defineDevice({
    speed: "high",
    vendorId: 0x1209,
    productId: 0x0002,
    manufacturer: "usbkit",
    product: "iso test device",
    serialNumber: "iso-0001",
    interfaces: [{
      alternates: [
        {},
        {
          endpoints: [
            ...Object.entries(sources).map(([address, s]) => ({
              address: Number(address),
              type: "isochronous" as const,
              maxPacketSize: MAX,
              onIsoIn: s.onIsoIn,
            })),
            {
              address: EP.lifecycle,
              type: "isochronous" as const,
              maxPacketSize: MAX,
              onIsoIn: onLifecycleIn,
            },
            {
              address: EP.out,
              type: "isochronous" as const,
              maxPacketSize: MAX,
              onIsoOut: (packets: readonly Uint8Array[]) => {
                outReceived.push(packets.map((p) => p.slice()));
              },
            },
          ],
        },
      ],
    }],
  });
}

/** Counts of what an IN path checked. */
interface Tally {
  mixed: number;
  empty: number;
  short: number;
  full: number;
  /** Canary bytes found in packet views or concatenated data: must stay 0. */
  leaked: number;
  /** Canary bytes that were in the gaps of the raw buffer (the hazard was real). */
  staleInGaps: number;
}

function tally(): Tally {
  return { mixed: 0, empty: 0, short: 0, full: 0, leaked: 0, staleInGaps: 0 };
}

function countCanary(bytes: Uint8Array): number {
  let n = 0;
  for (
    let at = bytes.indexOf(CANARY);
    at >= 0;
    at = bytes.indexOf(CANARY, at + 1)
  ) n++;
  return n;
}

/**
 * Checks one URB's packets against what the device sent for URB `k`:
 * status, length and bytes of every packet, the concatenation, and no
 * canary byte in a mixed URB. Counts the canary bytes left in the gaps of
 * the buffer the views are in.
 */
function checkUrb(
  source: IsoSource,
  k: number,
  packets: readonly IsoInPacket[],
  data: Uint8Array | undefined,
  slot: number,
  t: Tally,
): void {
  const sent = source.sent[k];
  assert.ok(sent !== undefined, `URB ${k}: the device never answered it`);
  assert.equal(packets.length, sent.length, `URB ${k}: packet count`);
  const canary = source.isCanary(k);
  let total = 0;
  for (const [i, p] of packets.entries()) {
    const where = `URB ${k} packet ${i}`;
    assert.equal(p.status, "ok", where);
    assert.equal(p.length, sent[i]!.length, `${where}: length`);
    assert.equal(p.data.length, p.length, `${where}: view length`);
    assert.ok(sameBytes(p.data, sent[i]!), `${where}: bytes differ`);
    total += p.length;
    if (canary) continue;
    t.leaked += countCanary(p.data);
    t.mixed++;
    if (p.length === 0) t.empty++;
    else if (p.length === slot) t.full++;
    else t.short++;
    // The gap after the packet, in the buffer the view is a window of.
    const raw = new Uint8Array(
      p.data.buffer,
      p.data.byteOffset + p.length,
      slot - p.length,
    );
    t.staleInGaps += countCanary(raw);
  }
  if (data !== undefined) {
    assert.equal(data.length, total, `URB ${k}: concatenated length`);
    let at = 0;
    for (const s of sent) {
      assert.ok(
        sameBytes(data.subarray(at, at + s.length), s),
        `URB ${k}: concatenated data`,
      );
      at += s.length;
    }
    if (!canary) t.leaked += countCanary(data);
  }
}

function checkTally(t: Tally, path: string, least: number): void {
  console.log(`${path}: ${JSON.stringify(t)}`);
  assert.equal(t.leaked, 0, `${path}: canary bytes reached the user`);
  assert.ok(t.mixed >= least, `${path}: only ${t.mixed} packets`);
  // The mix really is mixed.
  for (const kind of ["empty", "short", "full"] as const) {
    assert.ok(t[kind] > t.mixed / 5, `${path}: too few ${kind} packets`);
  }
}

/** The attached device's usbfs node, set by the test at the end. */
let devnode = "";

/** Opens the attached device, claims interface 0 and selects alternate 1. */
async function openIso() {
  const dev = await open(devnode);
  const iface = await dev.claimInterface(0);
  await iface.selectAlternateInterface(1);
  return {
    dev,
    iface,
    async [Symbol.asyncDispose]() {
      await dev.close();
    },
  };
}

/** The parts of the test at the end, in order. */
const parts: { name: string; fn: () => Promise<void> }[] = [];

/**
 * Adds a part: they all run on one attachment, each on its own endpoint
 * (attaching costs seconds of enumeration under TCG).
 */
function part(name: string, fn: () => Promise<void>): void {
  parts.push({ name, fn });
}

for (const zeroCopy of [true, false]) {
  const path = zeroCopy ? "zero-copy" : "fallback";
  const address = zeroCopy ? EP.streamMapped : EP.streamFallback;
  part(
    `isochronousStream, ${path}: ${MIXED_PACKETS}+ empty, short and full packets equal what the device sent; stale canary bytes never reach a view or the data`,
    async () => {
      await using d = await openIso();
      const ep = d.iface.endpoint(address);
      const source = sources[address];
      const stream = ep.isochronousStream({
        packets: PACKETS_PER_URB,
        inFlight: IN_FLIGHT,
        zeroCopy,
        concatenate: true,
      });
      assert.equal(stream.zeroCopy, zeroCopy);
      const t = tally();
      const seen = new Set<IsoStreamResult>();
      let previous: IsoInPacket[] = [];
      const startFrames = new Set<number>();
      let k = 0;
      for await (const urb of stream) {
        for (const p of previous) {
          assert.equal(p.data.byteLength, 0, "a view outlived its iteration");
        }
        assert.equal(urb.errorCount, 0);
        assert.ok(Number.isInteger(urb.startFrame));
        startFrames.add(urb.startFrame);
        checkUrb(source, k, urb.packets, urb.data, MAX, t);
        assert.equal(
          urb.bytes,
          urb.packets.reduce((a, p) => a + p.length, 0),
        );
        // Results are reused, one per buffer of the pool (inFlight plus
        // the spares): nothing allocated per URB beyond the views.
        seen.add(urb);
        previous = [...urb.packets];
        k++;
        if (t.mixed >= MIXED_PACKETS) break;
      }
      assert.equal(stream.packets, k * PACKETS_PER_URB);
      assert.ok(k > stream.buffers, `only ${k} URBs`);
      assert.ok(
        seen.size <= stream.buffers,
        `${seen.size} result objects for ${stream.buffers} buffers`,
      );
      console.log(`start frames seen: ${[...startFrames].slice(0, 8)}`);
      checkTally(t, `isochronousStream ${path}`, MIXED_PACKETS);
      // Mapped memory is not cleared by the kernel: the gaps really held
      // the previous transfer's canary bytes.
      if (zeroCopy) assert.ok(t.staleInGaps > 0, "no stale bytes in the gaps");
    },
  );
}

for (
  const [path, address, buffers] of [
    ["zero-copy UsbBuffer", EP.transferMapped, "mapped"],
    ["fallback UsbBuffer", EP.transferFallback, "fallback"],
    ["array", EP.transferArray, "none"],
  ] as const
) {
  part(
    `isochronousTransferIn, ${path}: 4 in flight, ${MIXED_PACKETS_TRANSFER}+ mixed packets equal what the device sent; no canary byte reaches a view or the data`,
    async () => {
      await using d = await openIso();
      const ep = d.iface.endpoint(address);
      const source = sources[address];
      const lengths = new Array(PACKETS_PER_URB).fill(MAX);
      const bufs = buffers === "none"
        ? [undefined, undefined, undefined, undefined]
        : Array.from(
          { length: 4 },
          () =>
            d.dev.allocBuffer(PACKETS_PER_URB * MAX, {
              zeroCopy: buffers === "mapped",
            }),
        );
      for (const b of bufs) {
        if (b !== undefined) assert.equal(b.zeroCopy, buffers === "mapped");
      }
      const t = tally();
      let k = 0;
      while (t.mixed < MIXED_PACKETS_TRANSFER) {
        const results = await Promise.all(
          bufs.map((buffer) =>
            ep.isochronousTransferIn(lengths, {
              timeout: 20000,
              ...(buffer ? { buffer } : {}),
            })
          ),
        );
        for (const r of results) {
          checkUrb(source, k++, r.packets, r.data, MAX, t);
        }
      }
      for (const b of bufs) b?.release();
      checkTally(t, `isochronousTransferIn ${path}`, MIXED_PACKETS_TRANSFER);
      if (buffers === "mapped") {
        assert.ok(t.staleInGaps > 0, "no stale bytes in the gaps");
      }
    },
  );
}

part(
  "isochronousTransferOut: empty, short and full packets arrive in the right packet with the right bytes (array, zero-copy and fallback UsbBuffers, more than 128 packets)",
  async () => {
    await using d = await openIso();
    const ep = d.iface.endpoint(EP.out);
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const mixed = (count: number) =>
      Array.from({ length: count }, () => {
        const kind = random(3);
        return kind === 0 ? 0 : kind === 1 ? 1 + random(MAX - 1) : MAX;
      });
    /** The packets `data` holds for `lengths`, each a copy. */
    const split = (data: Uint8Array, lengths: number[]) => {
      let at = 0;
      return lengths.map((n) => data.slice(at, at += n));
    };
    let checked = 0;
    for (const kind of ["array", "mapped", "fallback"] as const) {
      for (let round = 0; round < 8; round++) {
        const sends = Array.from({ length: 4 }, () => {
          const lengths = mixed(PACKETS_PER_URB);
          const total = lengths.reduce((a, b) => a + b, 0);
          const bytes = randomBytes(total);
          if (kind === "array") return { lengths, bytes, data: bytes };
          const buf = d.dev.allocBuffer(Math.max(1, total), {
            zeroCopy: kind === "mapped",
          });
          buf.bytes.set(bytes);
          return { lengths, bytes, data: buf };
        });
        const first = outReceived.length;
        const results = await Promise.all(
          sends.map((s) =>
            ep.isochronousTransferOut(s.data, s.lengths, { timeout: 20000 })
          ),
        );
        for (const [i, s] of sends.entries()) {
          assert.deepEqual(
            results[i]!.packets.map((p) => [p.status, p.bytesWritten]),
            s.lengths.map((n) => ["ok", n]),
          );
          const got = outReceived[first + i]!;
          const want = split(s.bytes, s.lengths);
          assert.equal(got.length, want.length);
          for (const [p, w] of want.entries()) {
            assert.ok(sameBytes(got[p]!, w), `${kind} URB ${i} packet ${p}`);
            checked++;
          }
          if (!(s.data instanceof Uint8Array)) s.data.release();
        }
      }
    }
    // 300 packets: three URBs (128 + 128 + 44), received in order.
    const lengths = mixed(300);
    const bytes = randomBytes(lengths.reduce((a, b) => a + b, 0));
    const first = outReceived.length;
    const r = await ep.isochronousTransferOut(bytes, lengths, {
      timeout: 20000,
    });
    assert.equal(r.packets.length, 300);
    assert.ok(r.packets.every((p) => p.status === "ok"));
    assert.deepEqual(
      outReceived.slice(first).map((u) => u.length),
      [128, 128, 44],
    );
    const got = outReceived.slice(first).flat();
    for (const [p, w] of split(bytes, lengths).entries()) {
      assert.ok(sameBytes(got[p]!, w), `split transfer packet ${p}`);
      checked++;
    }
    console.log(`isochronousTransferOut: ${checked} packets compared`);
    assert.equal(checked, 3 * 8 * 4 * PACKETS_PER_URB + 300);
  },
);

part(
  "isochronousStream lifecycle: bad options are invalid-argument before anything is submitted; break, an aborted signal, release() and close() end it",
  async () => {
    await using d = await openIso();
    let iface = d.iface;
    let ep = iface.endpoint(EP.lifecycle);
    const invalid = (f: () => unknown, name: RegExp) =>
      assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof UsbError);
        assert.equal(e.code, "invalid-argument");
        assert.match(e.message, name);
        return true;
      });
    invalid(
      () => ep.isochronousStream({ packets: 0 }),
      /^isochronousStream: options\.packets must be/,
    );
    invalid(
      () => ep.isochronousStream({ packets: [MAX, -1] }),
      /^isochronousStream: options\.packets\[1\] must be/,
    );
    invalid(
      () => ep.isochronousStream({ packets: [MAX], packetLength: 8 }),
      /^isochronousStream: options\.packetLength must be undefined/,
    );
    invalid(
      () => ep.isochronousStream({ inFlight: 100_000 }),
      /^isochronousStream: options\.inFlight must be an integer from 1 to/,
    );
    invalid(
      () => ep.isochronousStream({ signal: {} as AbortSignal }),
      /^isochronousStream: options\.signal/,
    );
    invalid(
      () => iface.endpoint(EP.out).isochronousStream(),
      /isochronousStream on endpoint 0x07, which is an OUT endpoint/,
    );
    assert.equal(lifecycle.answered, 0, "a refused call submitted a URB");

    // The default: 32 packets of maxPacketSize, 8 in flight.
    {
      const stream = ep.isochronousStream();
      const first = await stream.next();
      assert.equal(first.done, false);
      assert.equal(first.value!.packets.length, 32);
      await stream.return();
      assert.equal(first.value!.packets[0]!.data.byteLength, 0);
    }
    // break gives every buffer back: a new stream can use the slots.
    for (let i = 0; i < 2; i++) {
      let n = 0;
      for await (
        const _ of ep.isochronousStream({ packets: 4, inFlight: 4 })
      ) if (++n === 6) break;
      assert.equal(n, 6);
    }
    // An aborted signal.
    {
      const ac = new AbortController();
      const stream = ep.isochronousStream({ packets: 4, signal: ac.signal });
      await stream.next();
      ac.abort();
      await assert.rejects(stream.next(), (e: unknown) => {
        assert.ok(e instanceof UsbError && e.code === "cancelled");
        assert.match(e.hint ?? "", /AbortSignal/);
        return true;
      });
    }
    // release() while a next() is waiting (the device holds every URB),
    // then close(): the URBs are unlinked.
    lifecycle.hold = true;
    for (const end of ["released", "closed"] as const) {
      const stream = ep.isochronousStream({ packets: 4, inFlight: 4 });
      const rejected = assert.rejects(stream.next(), (e: unknown) => {
        assert.ok(e instanceof UsbError && e.code === "cancelled");
        assert.match(
          e.message,
          end === "released"
            ? /because its interface was released/
            : /because the device was closed/,
        );
        return true;
      });
      if (end === "released") await iface.release();
      else await d.dev.close();
      await rejected;
      await assert.rejects(stream.next(), /cancelled/);
      if (end === "released") {
        assert.throws(() => ep.isochronousStream(), /is not claimed/);
        iface = await d.dev.claimInterface(0);
        await iface.selectAlternateInterface(1);
        ep = iface.endpoint(EP.lifecycle);
      }
    }
  },
);

Deno.test({
  name:
    "isochronous transfers through vhci_hcd, on one TypeScript device attached once",
  ignore: !VHCI,
  async fn(t) {
    await using a = await attachLocal(isoDevice());
    devnode = a.devnode;
    for (const p of parts) await t.step(p.name, p.fn);
  },
});
