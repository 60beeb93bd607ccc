// The one URB lifecycle (src/urb.ts) and the transfer split/assembly on it
// (src/transfer.ts), against a fake kernel: status classification, submit
// rollback (a UsbBuffer comes back usable), the split flags, cancellation
// reasons, batches, and the pooled transfer state.

import assert from "node:assert/strict";
import { BufferPool } from "../../src/buffer.ts";
import type { UrbEngine, UrbOwner } from "../../src/engine.ts";
import { UrbType } from "../../src/engine.ts";
import { Errno, UsbError } from "../../src/errors.ts";
import { type BatchResult, Transfer } from "../../src/transfer.ts";
import {
  cancelError,
  type InResult,
  type OutResult,
  urbError,
  urbOutcome,
} from "../../src/urb.ts";

Deno.test("urbOutcome: one name per status, the same on every path", () => {
  const cases: [number, string][] = [
    [0, "ok"],
    [-Errno.EREMOTEIO, "ok"],
    [-Errno.EXDEV, "ok"],
    [-Errno.EPIPE, "stall"],
    [-Errno.EOVERFLOW, "babble"],
    [-Errno.ENOENT, "cancelled"],
    [-Errno.ECONNRESET, "cancelled"],
    [-Errno.ENODEV, "disconnected"],
    [-Errno.ESHUTDOWN, "disconnected"],
    [-Errno.EPROTO, "error"],
    [-Errno.EILSEQ, "error"],
    [-Errno.ETIME, "error"],
  ];
  for (const [status, outcome] of cases) {
    assert.equal(urbOutcome(status), outcome, `status ${status}`);
  }
});

Deno.test("urbError: stall and babble are their own codes; the rest from the errno; partial data kept", () => {
  const stall = urbError("bulk IN on endpoint 0x81", -Errno.EPIPE, undefined, {
    data: new Uint8Array([1, 2]),
    bytesTransferred: 2,
  });
  assert.ok(stall instanceof UsbError);
  assert.equal(stall.code, "stall");
  assert.equal(stall.errno, Errno.EPIPE);
  assert.equal(stall.message, "bulk IN on endpoint 0x81 failed with EPIPE");
  assert.match(stall.hint!, /clearHalt/);
  assert.deepEqual([...stall.data!], [1, 2]);
  assert.equal(stall.bytesTransferred, 2);
  assert.equal(urbError("x", -Errno.EOVERFLOW).code, "babble");
  assert.equal(urbError("x", -Errno.ENODEV).code, "disconnected");
  assert.equal(urbError("x", -Errno.ENOENT).code, "cancelled");
  const io = urbError("x", -Errno.EPROTO);
  assert.equal(io.code, "io");
  assert.match(io.hint!, /protocol error/);
  assert.equal(urbError("x", -Errno.ENOMEM).code, "no-memory");
});

Deno.test("cancelError: the reason is in the code and the message", () => {
  assert.equal(cancelError("t", "timeout", {}).code, "timeout");
  assert.equal(
    cancelError("t", "timeout", {}).message,
    "t timed out after 0 bytes",
  );
  for (
    const [reason, words] of [
      ["cancelled", "was cancelled after"],
      ["closed", "because the device was closed"],
      ["released", "because its interface was released"],
      ["reset", "because the device was reset"],
    ] as const
  ) {
    const e = cancelError("t", reason, { bytesTransferred: 5 });
    assert.equal(e.code, "cancelled");
    assert.ok(e.message.includes(words), e.message);
    assert.equal(e.bytesTransferred, 5);
  }
});

// ---------------------------------------------------------------------------
// A fake kernel: each URB is answered by `answer` (bytes for IN, a status),
// on a microtask, or held until discarded.

const LAYOUT = {
  flagShortNotOk: 1,
  flagIsoAsap: 2,
  flagBulkContinuation: 4,
  flagZeroPacket: 0x40,
  maxIsoPackets: 128,
};

interface Urb {
  owner: UrbOwner;
  index: number;
  endpoint: number;
  flags: number;
  array: Uint8Array<ArrayBuffer> | null;
  offset: number;
  length: number;
  seq: number;
}

type Answer = { bytes?: number; fill?: number; status?: number } | "hold";

class FakeEngine {
  readonly layout = LAYOUT;
  readonly capabilities = 0x02; // BULK_CONTINUATION (no MMAP: ordinary buffers)
  readonly slotCount = 64;
  maxUrbBytes = 16;
  readonly ids = {};
  readonly pending = new Map<number, Urb>();
  readonly log: Urb[] = [];
  readonly tracked = new Set<
    { cancel(r: string): void; settled: Promise<unknown> }
  >();
  gone = false;
  failAt = -1;
  #seq = 0;
  #free = Array.from({ length: 64 }, (_, i) => 63 - i);
  constructor(public answer: (u: Urb) => Answer) {}

  get engine(): UrbEngine {
    return this as unknown as UrbEngine;
  }
  get freeSlots(): number {
    return this.#free.length;
  }
  describe(): string {
    return "the fake device";
  }

  submitAt(
    owner: UrbOwner,
    index: number,
    _type: number,
    endpoint: number,
    flags: number,
    array: Uint8Array<ArrayBuffer> | null,
    _base: unknown,
    offset: number,
    length: number,
  ): number {
    if (this.#seq === this.failAt) {
      this.#seq++;
      throw new UsbError("io", "fake: the kernel refused the URB", {
        errno: Errno.EPROTO,
      });
    }
    const slot = this.#free.pop()!;
    const u = {
      owner,
      index,
      endpoint,
      flags,
      array,
      offset,
      length,
      seq: this.#seq++,
    };
    this.pending.set(slot, u);
    this.log.push(u);
    if (this.answer(u) !== "hold") queueMicrotask(() => this.complete(slot));
    return slot;
  }

  discard(slot: number): void {
    if (this.pending.has(slot)) {
      queueMicrotask(() => this.complete(slot, -Errno.ENOENT));
    }
  }

  complete(slot: number, killed?: number): void {
    const u = this.pending.get(slot);
    if (u === undefined) return;
    this.pending.delete(slot);
    const a = this.answer(u);
    let actual = 0, status = killed ?? 0;
    if (killed === undefined && a !== "hold") {
      actual = Math.min(a.bytes ?? u.length, u.length);
      status = a.status ?? 0;
      if (u.array !== null && (u.endpoint & 0x80) !== 0) {
        u.array.fill(a.fill ?? 0, u.offset, u.offset + actual);
      }
    }
    try {
      u.owner.urbDone(u.index, status, actual, 0, slot);
    } finally {
      this.#free.push(slot);
    }
  }

  track(t: { cancel(r: string): void; settled: Promise<unknown> }): void {
    this.tracked.add(t);
  }
  untrack(t: { cancel(r: string): void; settled: Promise<unknown> }): void {
    this.tracked.delete(t);
  }
  disconnectedError(what: string): UsbError {
    return new UsbError(
      "disconnected",
      `${what}: the fake device was disconnected`,
    );
  }
}

const NONE = { timeout: 0, signal: undefined };

function bulkIn(
  k: FakeEngine,
  mem: Uint8Array<ArrayBuffer> | ReturnType<BufferPool["alloc"]>,
  length: number,
  options = NONE,
): Promise<InResult> {
  const t = Transfer.get(k.engine, 0);
  t.add(
    "in",
    UrbType.bulk,
    0x81,
    mem,
    0,
    length,
    true,
    false,
    "bulk IN on endpoint 0x81",
  );
  return t.start(options) as Promise<InResult>;
}

Deno.test("a failed first submit gives the UsbBuffer back: views live, release() works", async () => {
  const k = new FakeEngine(() => ({}));
  const pool = new BufferPool(k.engine);
  const buf = pool.alloc(40);
  buf.bytes.fill(9);
  k.failAt = 0;
  await assert.rejects(bulkIn(k, buf, 40), /fake: the kernel refused the URB/);
  assert.equal(buf.inFlight, false);
  assert.equal(buf.bytes.byteLength, 40, "the view is live again");
  assert.equal(buf.bytes[0], 9, "the memory is the buffer's own");
  buf.release();
  assert.equal(buf.released, true);
  assert.equal(k.tracked.size, 0);
});

Deno.test("a failed later submit discards what is in flight, then rejects with the reason; the buffer comes back", async () => {
  const k = new FakeEngine(() => "hold");
  const pool = new BufferPool(k.engine);
  const buf = pool.alloc(40);
  k.failAt = 2; // 40 bytes in URBs of 16: the third URB fails
  const p = bulkIn(k, buf, 40);
  assert.equal(buf.bytes.byteLength, 0, "detached while the kernel owns it");
  await assert.rejects(p, /fake: the kernel refused the URB/);
  assert.equal(k.pending.size, 0, "both URBs in flight were discarded");
  assert.equal(buf.bytes.byteLength, 40);
  buf.release();
});

Deno.test("split: URBs of maxUrbBytes with continuation flags; a short URB ends the transfer and discards the rest", async () => {
  const k = new FakeEngine((u) =>
    u.seq === 1 ? { bytes: 5, fill: 2 } : u.seq === 2 ? "hold" : { fill: 1 }
  );
  const r = await bulkIn(k, new Uint8Array(48), 48);
  assert.equal(r.status, "ok");
  assert.deepEqual([...r.data], [
    ...new Array(16).fill(1),
    ...new Array(5).fill(2),
  ]);
  assert.deepEqual(k.log.map((u) => u.flags), [
    LAYOUT.flagShortNotOk,
    LAYOUT.flagShortNotOk | LAYOUT.flagBulkContinuation,
    LAYOUT.flagBulkContinuation,
  ]);
  assert.deepEqual(k.log.map((u) => [u.offset, u.length]), [[0, 16], [16, 16], [
    32,
    16,
  ]]);
  assert.equal(k.pending.size, 0, "the third URB was discarded");
});

Deno.test("a stall is the result's status, with the data before it; a protocol error rejects with the partial data", async () => {
  const k = new FakeEngine((u) =>
    u.seq === 1 ? { bytes: 0, status: -Errno.EPIPE } : { fill: 3 }
  );
  const r = await bulkIn(k, new Uint8Array(32), 32);
  assert.equal(r.status, "stall");
  assert.equal(r.data.length, 16);
  const k2 = new FakeEngine((u) =>
    u.seq === 1 ? { bytes: 4, status: -Errno.EPROTO, fill: 4 } : { fill: 3 }
  );
  const e = await bulkIn(k2, new Uint8Array(32), 32).catch((e) => e);
  assert.ok(e instanceof UsbError);
  assert.equal(e.code, "io");
  assert.equal(e.message, "bulk IN on endpoint 0x81 failed with EPROTO");
  assert.equal(e.bytesTransferred, 20);
  assert.deepEqual([...e.data!], [...new Array(16).fill(3), 4, 4, 4, 4]);
});

Deno.test("cancellation reasons: closed, released and reset say so; a timeout keeps the partial data", async () => {
  for (const reason of ["closed", "released", "reset"] as const) {
    const k = new FakeEngine((u) => u.seq === 0 ? { fill: 7 } : "hold");
    const p = bulkIn(k, new Uint8Array(32), 32);
    await new Promise((r) => setTimeout(r, 0));
    for (const t of k.tracked) t.cancel(reason);
    const e = await p.catch((e) => e);
    assert.ok(e instanceof UsbError);
    assert.equal(e.code, "cancelled");
    assert.ok(
      e.message.includes(`because`) && e.message.endsWith("after 16 bytes"),
      e.message,
    );
    assert.deepEqual([...e.data!], new Array(16).fill(7));
  }
  const k = new FakeEngine(() => "hold");
  const e = await bulkIn(k, new Uint8Array(8), 8, {
    timeout: 1,
    signal: undefined,
  }).catch((e) => e);
  assert.equal(e.code, "timeout");
  assert.equal(e.bytesTransferred, 0);
  const ac = new AbortController();
  ac.abort();
  const early = await bulkIn(k, new Uint8Array(8), 8, {
    timeout: 0,
    signal: ac.signal as never,
  }).catch((e) => e);
  assert.equal(early.code, "cancelled");
  assert.match(early.message, /before it started/);
});

Deno.test("batch: results in order; a stall is a status; an error names the request and carries the results before it", async () => {
  const k = new FakeEngine((u) =>
    (u.endpoint & 0x80) !== 0 ? { fill: u.seq } : {}
  );
  k.maxUrbBytes = 64;
  const t = Transfer.get(k.engine, 0);
  for (let i = 0; i < 4; i++) {
    t.add(
      "out",
      UrbType.bulk,
      0x01,
      new Uint8Array(8).fill(i),
      0,
      8,
      true,
      false,
      "bulk OUT on endpoint 0x01",
    );
    t.add(
      "in",
      UrbType.bulk,
      0x81,
      new Uint8Array(8),
      0,
      8,
      true,
      false,
      "bulk IN on endpoint 0x81",
    );
  }
  assert.equal(t.urbCount(), 8);
  const results = await t.start(NONE, true) as BatchResult[];
  assert.equal(results.length, 8);
  for (let i = 0; i < 8; i += 2) {
    assert.deepEqual(results[i], { status: "ok", bytesWritten: 8 });
    assert.deepEqual(
      [...(results[i + 1] as InResult).data],
      new Array(8).fill(i + 1),
    );
  }

  const k2 = new FakeEngine((u) =>
    u.seq === 1
      ? { status: -Errno.EPIPE, bytes: 0 }
      : u.seq === 2
      ? { status: -Errno.EPROTO, bytes: 3 }
      : {}
  );
  const t2 = Transfer.get(k2.engine, 0);
  for (let i = 0; i < 4; i++) {
    t2.add(
      "out",
      UrbType.bulk,
      0x01,
      new Uint8Array(8),
      0,
      8,
      true,
      false,
      "bulk OUT on endpoint 0x01",
    );
  }
  const e = await t2.start(NONE, true).catch((e) => e);
  assert.ok(e instanceof UsbError);
  assert.equal(e.code, "io");
  assert.equal(e.requestIndex, 2);
  assert.match(
    e.message,
    /^transferBatch: requests\[2\] \(bulk OUT on endpoint 0x01\) failed with EPROTO/,
  );
  assert.equal(e.bytesTransferred, 3);
  assert.deepEqual(
    e.results,
    [
      { status: "ok", bytesWritten: 8 },
      { status: "stall", bytesWritten: 0 },
    ] satisfies OutResult[],
  );
});

Deno.test("pooled transfer state: settled transfers are reused, holding no caller memory", async () => {
  const k = new FakeEngine(() => ({ fill: 1 }));
  const before = Transfer.pooled(k.engine);
  const seen = new Set<Transfer>();
  for (let i = 0; i < 50; i++) {
    const t = Transfer.get(k.engine, 0);
    seen.add(t);
    t.add(
      "in",
      UrbType.bulk,
      0x81,
      new Uint8Array(40),
      0,
      40,
      true,
      false,
      "bulk IN",
    );
    const r = await t.start(NONE) as InResult;
    assert.equal(r.data.length, 40);
  }
  assert.equal(seen.size, 1, "one transfer object served every call");
  assert.equal(Transfer.pooled(k.engine), before + 1);
});
