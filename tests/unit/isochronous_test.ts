// The iso gap rule from the kernel discussion that introduced usbfs
// zero-copy: a short iso IN packet leaves stale bytes in its slot, and those
// must never be presented as data.
import assert from "node:assert/strict";
import { BufferPool } from "../../src/buffer.ts";
import { Errno, UsbError } from "../../src/errors.ts";
import {
  checkIsoStreamOptions,
  IsoInStream,
  type IsoStreamOptions,
  type IsoStreamResult,
} from "../../src/iso_stream.ts";
import {
  assembleIsoIn,
  checkIsoPacketLengths,
  type IsoInResult,
  type IsoOutResult,
  isoPacketStatus,
  IsoTransfer,
} from "../../src/isochronous.ts";
import type { UrbBuffer, UrbEngine, UrbOwner } from "../../src/transfer.ts";

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
// The URB lifecycle (IsoUrbs), IsoTransfer and IsoInStream against a fake
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
  readonly h = { layout: LAYOUT };
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

const CANARY = 0xa5;
const MAX = 64;

/** A byte of content: never the canary. */
function content(seq: number, packet: number, j: number): number {
  const b = (seq * 7 + packet * 13 + j) % 255;
  return b < CANARY ? b : b + 1;
}

/**
 * A device like tests/device/iso_test.ts's: URB seq is all canary when
 * seq % every is 0, otherwise empty, short and full packets in turn.
 */
function canaryDevice(every: number, sent: Uint8Array[][]) {
  return (seq: number, lengths: number[]): Answer => {
    const packets = lengths.map((slot, i) => {
      if (seq % every === 0) return new Uint8Array(slot).fill(CANARY);
      const kind = (seq + i) % 3;
      const n = kind === 0
        ? 0
        : kind === 1
        ? 1 + ((seq * 5 + i) % (slot - 1))
        : slot;
      return Uint8Array.from({ length: n }, (_, j) => content(seq, i, j));
    });
    sent[seq] = packets;
    return { packets };
  };
}

function stream(
  kernel: FakeKernel,
  options: IsoStreamOptions = {},
): IsoInStream {
  return new IsoInStream(
    kernel.engine,
    new BufferPool(kernel.engine),
    { address: 0x81 },
    0,
    checkIsoStreamOptions("isochronousStream", options, {
      maxInFlight: kernel.slotCount,
      maxPackets: 128,
      packetLength: MAX,
    }),
  );
}

function rejectsWith(code: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UsbError, `not a UsbError: ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  };
}

Deno.test("stream: stale canary bytes in the gaps of reused buffers never reach a view or the data; every packet is what was sent", async () => {
  const sent: Uint8Array[][] = [];
  const inFlight = 4;
  const kernel = new FakeKernel(canaryDevice(inFlight + 1, sent));
  const s = stream(kernel, { packets: 16, inFlight, concatenate: true });
  let seq = 0, mixed = 0, stale = 0;
  const results: IsoStreamResult[] = [];
  let previous: Uint8Array[] = [];
  for await (const urb of s) {
    for (const v of previous) {
      assert.equal(v.byteLength, 0, "a view outlived its iteration");
    }
    const canary = seq % (inFlight + 1) === 0;
    assert.equal(urb.packets.length, 16);
    assert.equal(urb.startFrame, 1000 + seq);
    assert.equal(urb.errorCount, 0);
    let at = 0;
    for (const [i, p] of urb.packets.entries()) {
      assert.deepEqual([p.status, p.errno], ["ok", 0]);
      assert.equal(p.length, sent[seq]![i]!.length);
      assert.deepEqual(
        [...p.data],
        [...sent[seq]![i]!],
        `URB ${seq} packet ${i}`,
      );
      assert.deepEqual(
        [...urb.data!.subarray(at, at + p.length)],
        [...sent[seq]![i]!],
      );
      at += p.length;
      if (canary) continue;
      mixed++;
      assert.ok(!p.data.includes(CANARY), "a view covers stale bytes");
      const gap = new Uint8Array(
        p.data.buffer,
        p.data.byteOffset + p.length,
        MAX - p.length,
      );
      stale += gap.filter((b) => b === CANARY).length;
    }
    assert.equal(urb.bytes, at);
    assert.equal(urb.data!.length, at);
    if (!canary) assert.ok(!urb.data!.includes(CANARY));
    // One result object per buffer, reused.
    if (seq >= inFlight) assert.equal(urb, results[seq % inFlight]);
    else results.push(urb);
    previous = urb.packets.map((p) => p.data);
    if (++seq === 400) break;
  }
  assert.ok(mixed > 5000);
  assert.ok(
    stale > 0,
    "the fake kernel left no stale bytes: the test proves nothing",
  );
  assert.equal(s.packets, 400 * 16);
  assert.equal(kernel.pending.size, 0, "break left URBs in flight");
  assert.equal(kernel.tracked.size, 0);
  assert.ok(
    previous.every((v) => v.byteLength === 0),
    "views outlived the stream",
  );
});

Deno.test("stream: per-packet errors are delivered; -EXDEV is not a failure; without concatenate there is no data", async () => {
  const kernel = new FakeKernel((seq, lengths) => ({
    packets: lengths.map((n, i) => new Uint8Array(i === 1 ? 0 : n).fill(seq)),
    status: lengths.map((_, i) => (i === 1 ? -Errno.EPROTO : 0)),
  }));
  const s = stream(kernel, { packets: [8, 8, 8], inFlight: 2 });
  const r = await s.next();
  assert.equal(r.done, false);
  const urb = r.value!;
  assert.deepEqual(urb.packets.map((p) => [p.status, p.length, p.errno]), [
    ["ok", 8, 0],
    ["error", 0, -Errno.EPROTO],
    ["ok", 8, 0],
  ]);
  assert.equal(urb.errorCount, 1);
  assert.equal(urb.bytes, 16);
  assert.equal("data" in urb, false);
  await s.return();
});

Deno.test('stream: cancel("closed") wakes a waiting next() with cancelled; later calls throw too; nothing stays in flight', async () => {
  const kernel = new FakeKernel(() => ({ packets: [] }));
  kernel.hold = true;
  const s = stream(kernel, { packets: 4, inFlight: 3 });
  assert.equal(kernel.pending.size, 3);
  assert.equal(kernel.tracked.has(s), true);
  const pending = assert.rejects(
    s.next(),
    rejectsWith(
      "cancelled",
      /isochronous stream on endpoint 0x81 was cancelled because the device was closed after 0 packets/,
    ),
  );
  s.cancel("closed");
  await pending;
  await s.settled;
  await assert.rejects(s.next(), rejectsWith("cancelled", /device was closed/));
  assert.equal(kernel.pending.size, 0);
  assert.equal(kernel.tracked.size, 0);
});

Deno.test("stream: an aborted signal ends it with cancelled and a hint", async () => {
  const kernel = new FakeKernel((_seq, lengths) => ({
    packets: lengths.map((n) => new Uint8Array(n)),
  }));
  const ac = new AbortController();
  const s = stream(kernel, { packets: 2, inFlight: 2, signal: ac.signal });
  assert.equal((await s.next()).done, false);
  ac.abort();
  await assert.rejects(s.next(), (e: unknown) => {
    assert.ok(e instanceof UsbError && e.code === "cancelled");
    assert.match(e.hint ?? "", /AbortSignal/);
    return true;
  });
  assert.equal(kernel.pending.size, 0);
});

Deno.test("stream: a URB that fails as a whole ends it (io); a disconnection is disconnected", async () => {
  for (
    const [urbStatus, code] of [
      [-Errno.EPROTO, "io"],
      [-Errno.ESHUTDOWN, "disconnected"],
      [-Errno.ECONNRESET, "cancelled"],
    ] as const
  ) {
    const kernel = new FakeKernel((seq) => ({
      packets: [],
      urbStatus: seq === 1 ? urbStatus : 0,
    }));
    const s = stream(kernel, { packets: 1, inFlight: 2 });
    assert.equal((await s.next()).done, false);
    await assert.rejects(s.next(), rejectsWith(code, /endpoint 0x81/));
    await assert.rejects(s.next());
    assert.equal(kernel.pending.size, 0);
    assert.equal(kernel.tracked.size, 0);
  }
});

Deno.test("stream: a resubmit the kernel refuses ends it with that error, and gives everything back", async () => {
  const kernel = new FakeKernel((_seq, lengths) => ({
    packets: lengths.map((n) => new Uint8Array(n)),
  }));
  const s = stream(kernel, { packets: 2, inFlight: 2 });
  kernel.failAt = 2; // the first resubmit
  assert.equal((await s.next()).done, false);
  await assert.rejects(s.next(), rejectsWith("no-memory", /fake: no URB slot/));
  assert.equal(kernel.pending.size, 0);
  assert.equal(kernel.tracked.size, 0);
});

Deno.test("stream: a first submit the kernel refuses throws from the constructor; a later one from the first next()", async () => {
  const kernel = new FakeKernel(() => ({ packets: [] }));
  kernel.hold = true;
  kernel.failAt = 0;
  assert.throws(
    () => stream(kernel, { packets: 1, inFlight: 2 }),
    /fake: no URB slot/,
  );
  assert.equal(kernel.tracked.size, 0);
  kernel.failAt = 1 + 1; // the second URB of the next stream
  const s = stream(kernel, { packets: 1, inFlight: 3 });
  await assert.rejects(s.next(), rejectsWith("no-memory", /fake: no URB slot/));
  assert.equal(kernel.pending.size, 0);
  assert.equal(kernel.tracked.size, 0);
});

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
