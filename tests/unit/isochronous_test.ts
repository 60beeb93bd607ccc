// The iso gap rule from the kernel discussion that introduced usbfs
// zero-copy: a short iso IN packet leaves stale bytes in its slot, and those
// must never be presented as data.
import assert from "node:assert/strict";
import { assembleIsoIn, isoPacketStatus } from "../../src/isochronous.ts";

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
