// The iso gap rule from the kernel discussion that introduced usbfs
// zero-copy: a short iso IN packet leaves stale bytes in its slot, and those
// must never be presented as data.
import assert from "node:assert/strict";
import { Errno, UsbError } from "../../src/errors.ts";
import { checkIsoStreamOptions } from "../../src/iso_stream.ts";
import {
  assembleIsoIn,
  checkIsoPacketLengths,
  type IsoInResult,
  type IsoOutResult,
  isoPacketStatus,
  IsoTransfer,
} from "../../src/isochronous.ts";
import type { UrbBuffer, UrbEngine, UrbOwner } from "../../src/engine.ts";

const STALE = 0xee;

Deno.test("short packets: each view is exactly actual_length; concatenation holds only received bytes", () => {
  const lengths = [192, 192, 192, 192];
  const actual = [192, 10, 0, 100];
  const buf = new Uint8Array(768).fill(STALE);
  let value = 0;
  for (let p = 0, off = 0; p < lengths.length; off += lengths[p]!, p++) {
    for (let i = 0; i < actual[p]!; i++) buf[off + i] = (value++ % 200) + 1; // never STALE
  }
  const r = assembleIsoIn(buf, lengths, actual, [0, 0, 0, 0]);
  assert.deepEqual(r.packets.map((p) => p.data.length), actual);
  assert.equal(r.data.length, 302);
  assert.ok(
    !r.data.includes(STALE),
    "stale gap bytes reached the concatenated data",
  );
  for (const p of r.packets) {
    assert.ok(!p.data.includes(STALE), "a packet view covers gap bytes");
  }
  assert.deepEqual([...r.data.subarray(0, 5)], [1, 2, 3, 4, 5]);
  // The concatenation is in order and contiguous.
  for (let i = 1; i < r.data.length; i++) {
    assert.equal(r.data[i], (i % 200) + 1);
  }
});

Deno.test("a record claiming more than its slot cannot reach into the next packet", () => {
  const buf = new Uint8Array([1, 2, 3, 4, 9, 9, 9, 9]);
  const r = assembleIsoIn(buf, [4, 4], [100, 0], [0, 0]);
  assert.deepEqual([...r.packets[0]!.data], [1, 2, 3, 4]);
  assert.equal(r.packets[1]!.data.length, 0);
  assert.deepEqual([...r.data], [1, 2, 3, 4]);
});

Deno.test("negative or truncated records give empty views, not exceptions", () => {
  const r = assembleIsoIn(new Uint8Array(6), [4, 4], [-1, 4], [0, -71]);
  assert.equal(r.packets[0]!.data.length, 0);
  assert.equal(r.packets[1]!.data.length, 2); // only 2 bytes of the buffer exist there
  assert.equal(r.packets[1]!.status, "error");
});

Deno.test("per-packet statuses", () => {
  assert.equal(isoPacketStatus(0), "ok");
  assert.equal(isoPacketStatus(-32), "stall");
  assert.equal(isoPacketStatus(-75), "babble");
  assert.equal(isoPacketStatus(-18), "error");
});

Deno.test("the concatenated data is a copy: reusing the buffer cannot change a result", () => {
  const buf = new Uint8Array([5, 6, 7, 8]);
  const r = assembleIsoIn(buf, [4], [3], [0]);
  buf.fill(STALE);
  assert.deepEqual([...r.data], [5, 6, 7]);
});

// ---------------------------------------------------------------------------
// The URB lifecycle (IsoUrbs) and IsoTransfer against a fake
// kernel: it writes each packet's bytes at the packet's offset and nothing
// else, as usbfs does into mapped memory, so a reused buffer keeps the
// previous transfer's bytes in its gaps.

const LAYOUT = {
  maxIsoPackets: 128,
  flagIsoAsap: 2,
  slotSize: 56 + 128 * 12,
  isoDescOffset: 56,
  isoDescSize: 12,
  urbStartFrame: 32,
};

interface FakeUrb {
  owner: UrbOwner;
  index: number;
  buffer: UrbBuffer;
  lengths: number[];
  seq: number;
}

/** What the fake device answers for one URB. */
interface Answer {
  /** Per packet: bytes to send (at most its length). */
  packets: Uint8Array[];
  /** Per packet status (default 0). */
  status?: number[];
  /** The URB's status (default 0, or -EXDEV when a packet failed). */
  urbStatus?: number;
}

class FakeKernel {
  readonly layout = LAYOUT;
  readonly slotCount = 32;
  readonly slab = new DataView(new ArrayBuffer(32 * LAYOUT.slotSize));
  readonly capabilities = 0;
  readonly tracked = new Set<unknown>();
  readonly pending = new Map<number, FakeUrb>();
  gone = false;
  /** URBs stay in flight until discarded. */
  hold = false;
  /** Throws from submit when the seq reaches this. */
  failAt = -1;
  submitted = 0;
  #free = Array.from({ length: 32 }, (_, i) => 31 - i);
  constructor(readonly answer: (seq: number, lengths: number[]) => Answer) {}

  get engine(): UrbEngine {
    return this as unknown as UrbEngine;
  }

  isoDescOffset(slot: number, i: number): number {
    return slot * LAYOUT.slotSize + LAYOUT.isoDescOffset +
      i * LAYOUT.isoDescSize;
  }

  submit(
    owner: UrbOwner,
    index: number,
    type: number,
    _endpoint: number,
    flags: number,
    buffer: UrbBuffer,
    _length: number,
    packets: number,
    isoLengths: ArrayLike<number>,
    isoStart: number,
  ): number {
    assert.equal(type, 0, "an iso URB");
    assert.equal(flags, LAYOUT.flagIsoAsap);
    assert.ok(packets >= 1 && packets <= 128);
    if (this.submitted === this.failAt) {
      this.failAt = -1;
      throw new UsbError("no-memory", "fake: no URB slot");
    }
    const slot = this.#free.pop()!;
    const lengths = Array.from(
      { length: packets },
      (_, i) => isoLengths[isoStart + i]!,
    );
    // As UrbEngine.submit does: iso_frame_desc[i].length, for the kernel.
    for (let i = 0; i < packets; i++) {
      this.slab.setUint32(this.isoDescOffset(slot, i), lengths[i]!, true);
    }
    this.pending.set(slot, {
      owner,
      index,
      buffer,
      lengths,
      seq: this.submitted++,
    });
    if (!this.hold) queueMicrotask(() => this.complete(slot));
    return slot;
  }

  /** UrbEngine.submitAt: the same, with the buffer as its parts. */
  submitAt(
    owner: UrbOwner,
    index: number,
    type: number,
    endpoint: number,
    flags: number,
    array: Uint8Array<ArrayBuffer> | null,
    _base: unknown,
    offset: number,
    length: number,
    packets: number,
    isoLengths: ArrayLike<number>,
    isoStart: number,
  ): number {
    assert.ok(array !== null, "the fake kernel has no mapped memory");
    return this.submit(
      owner,
      index,
      type,
      endpoint,
      flags,
      { kind: "array", array, offset },
      length,
      packets,
      isoLengths,
      isoStart,
    );
  }

  discard(slot: number): void {
    if (this.pending.has(slot)) {
      queueMicrotask(() => this.complete(slot, -Errno.ENOENT));
    }
  }

  complete(slot: number, killed = 0): void {
    const u = this.pending.get(slot);
    if (u === undefined) return;
    this.pending.delete(slot);
    assert.equal(u.buffer.kind, "array");
    const mem = (u.buffer as { array: Uint8Array }).array;
    const a: Answer = killed === 0
      ? this.answer(u.seq, u.lengths)
      : { packets: [], urbStatus: killed };
    let offset = u.buffer.offset, total = 0, errors = 0;
    for (let i = 0; i < u.lengths.length; i++) {
      const data = a.packets[i] ?? new Uint8Array(0);
      assert.ok(data.length <= u.lengths[i]!);
      mem.set(data, offset);
      const status = a.status?.[i] ?? 0;
      if (status !== 0) errors++;
      const off = this.isoDescOffset(slot, i);
      assert.equal(this.slab.getUint32(off, true), u.lengths[i]);
      this.slab.setUint32(off + 4, data.length, true);
      this.slab.setInt32(off + 8, status, true);
      offset += u.lengths[i]!;
      total += data.length;
    }
    this.slab.setInt32(
      slot * LAYOUT.slotSize + LAYOUT.urbStartFrame,
      1000 + u.seq,
      true,
    );
    const status = a.urbStatus ?? (errors > 0 ? -Errno.EXDEV : 0);
    try {
      u.owner.urbDone(u.index, status, total, errors, slot);
    } finally {
      this.#free.push(slot);
    }
  }

  track(t: unknown): void {
    this.tracked.add(t);
  }
  untrack(t: unknown): void {
    this.tracked.delete(t);
  }
  disconnectedError(what: string): UsbError {
    return new UsbError("disconnected", `${what}: the device was disconnected`);
  }
}

function rejectsWith(code: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UsbError, `not a UsbError: ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  };
}

Deno.test("IsoTransfer: more than 128 packets are split into URBs and assembled in order; OUT reports each packet", async () => {
  const kernel = new FakeKernel((seq, lengths) => ({
    packets: lengths.map((n, i) => new Uint8Array(i % 2 ? n : 1).fill(seq + 1)),
  }));
  const lengths = new Array(300).fill(4);
  const t = new IsoTransfer(
    kernel.engine,
    "in",
    "iso IN",
    new Uint8Array(1200).fill(0xee),
    lengths,
    0,
  );
  const r = await t.start(0x81, {
    timeout: 0,
    signal: undefined,
  }) as IsoInResult;
  assert.equal(kernel.submitted, 3);
  assert.equal(r.packets.length, 300);
  assert.deepEqual(r.packets.slice(126, 131).map((p) => p.length), [
    1,
    4,
    1,
    4,
    1,
  ]);
  assert.deepEqual([...r.packets[128]!.data], [2]); // the second URB's first packet
  assert.equal(r.data.length, 150 * 1 + 150 * 4);
  assert.ok(!r.data.includes(0xee));
  const out = new IsoTransfer(
    kernel.engine,
    "out",
    "iso OUT",
    new Uint8Array(12),
    [4, 4, 4],
    0,
  );
  const w = await out.start(0x02, {
    timeout: 0,
    signal: undefined,
  }) as IsoOutResult;
  assert.deepEqual(w.packets.map((p) => p.bytesWritten), [1, 4, 1]);
  assert.equal(kernel.tracked.size, 0);
});

Deno.test("IsoTransfer: a URB after the first that cannot be submitted discards the others and rejects with the reason", async () => {
  const kernel = new FakeKernel(() => ({ packets: [] }));
  kernel.hold = true;
  kernel.failAt = 1;
  const t = new IsoTransfer(
    kernel.engine,
    "in",
    "iso IN",
    new Uint8Array(300),
    new Array(300).fill(1),
    0,
  );
  await assert.rejects(
    t.start(0x81, { timeout: 0, signal: undefined }),
    /fake: no URB slot/,
  );
  assert.equal(kernel.pending.size, 0);
  assert.equal(kernel.tracked.size, 0);
});

Deno.test("IsoTransfer: cancel gives the URBs back and rejects with the reason; a timeout is timeout", async () => {
  const kernel = new FakeKernel(() => ({ packets: [] }));
  kernel.hold = true;
  const t = new IsoTransfer(kernel.engine, "in", "iso IN", new Uint8Array(8), [
    4,
    4,
  ], 3);
  const p = t.start(0x81, { timeout: 0, signal: undefined });
  t.cancel("released");
  await assert.rejects(
    p,
    rejectsWith(
      "cancelled",
      /iso IN was cancelled because its interface was released/,
    ),
  );
  const timed = new IsoTransfer(
    kernel.engine,
    "in",
    "iso IN",
    new Uint8Array(8),
    [4, 4],
    3,
  );
  await assert.rejects(
    timed.start(0x81, { timeout: 1, signal: undefined }),
    rejectsWith("timeout", /iso IN timed out/),
  );
  assert.equal(kernel.pending.size, 0);
});

Deno.test("checkIsoStreamOptions: every option checked, named in the error; defaults", () => {
  const limits = { maxInFlight: 16, maxPackets: 128, packetLength: 1024 };
  const check = (o: unknown) =>
    checkIsoStreamOptions("isochronousStream", o, limits);
  const d = check(undefined);
  assert.equal(d.packetLengths.length, 32);
  assert.ok(d.packetLengths.every((n) => n === 1024));
  assert.deepEqual([d.inFlight, d.signal, d.zeroCopy, d.concatenate], [
    8,
    undefined,
    undefined,
    false,
  ]);
  assert.deepEqual(check({ packets: 3, packetLength: 0 }).packetLengths, [
    0,
    0,
    0,
  ]);
  const lengths = [1, 2];
  const o = check({ packets: lengths });
  lengths[0] = 99;
  assert.deepEqual(o.packetLengths, [1, 2], "the caller's array is copied");
  const bad: [unknown, RegExp][] = [
    [
      null,
      /^isochronousStream: options must be an object or undefined, got null/,
    ],
    [[], /^isochronousStream: options must be an object/],
    [
      { packets: 0 },
      /^isochronousStream: options\.packets must be a count from 1 to 128 or an array of packet lengths, got 0/,
    ],
    [{ packets: -0 }, /options\.packets .*got -0/],
    [{ packets: 1.5 }, /options\.packets .*got 1\.5/],
    [{ packets: NaN }, /options\.packets .*got NaN/],
    [{ packets: 2n }, /options\.packets .*got 2n/],
    [{ packets: "4" }, /options\.packets .*got "4"/],
    [
      { packets: [] },
      /options\.packets must be an array of 1 to 128 packet sizes/,
    ],
    [
      { packets: new Array(129).fill(1) },
      /options\.packets must be an array of 1 to 128/,
    ],
    [
      { packets: [1, 98305] },
      /options\.packets\[1\] must be an integer from 0 to 98304, got 98305/,
    ],
    [{ packets: [1, "2"] }, /options\.packets\[1\] must be an integer/],
    [
      { packets: [1], packetLength: 4 },
      /options\.packetLength must be undefined when options\.packets is an array, got 4/,
    ],
    [
      { packetLength: -1 },
      /options\.packetLength must be an integer from 0 to 98304, got -1/,
    ],
    [{ packetLength: 98305 }, /options\.packetLength .*got 98305/],
    [
      { inFlight: 0 },
      /options\.inFlight must be an integer from 1 to 16, got 0/,
    ],
    [{ inFlight: 17 }, /options\.inFlight .*got 17/],
    [{ signal: { aborted: false } }, /options\.signal must be an AbortSignal/],
    [{ zeroCopy: 1 }, /options\.zeroCopy must be/],
    [{ concatenate: "yes" }, /options\.concatenate must be/],
    [{
      get inFlight() {
        throw new Error("boom");
      },
    }, /options\.inFlight could not be read/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => check(value), (e: unknown) => {
      assert.ok(e instanceof UsbError, `not a UsbError for ${String(message)}`);
      assert.equal(e.code, "invalid-argument");
      assert.match(e.message, message);
      return true;
    });
  }
  assert.throws(
    () =>
      checkIsoPacketLengths("f: packetLengths", new Array(22000).fill(98304)),
    /add up to at most 2147483647 bytes/,
  );
});
