// The process-wide deadline heap (src/deadlines.ts): every due entry expires
// once, in deadline order; removed entries never expire; the heap holds only
// what is pending.
import assert from "node:assert/strict";
import { Deadlines, type DeadlineTarget } from "../../src/deadlines.ts";

function target(log: number[], id: number): DeadlineTarget {
  return { deadlineIndex: -1, expire: () => log.push(id) };
}

Deno.test("entries expire in deadline order; removed ones never do", async () => {
  const d = new Deadlines();
  const log: number[] = [];
  // A seeded shuffle of 200 deadlines between 1 and 40 ms.
  let seed = 7;
  const rand = () =>
    (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const targets = Array.from({ length: 200 }, (_, i) => target(log, i));
  const due = targets.map(() => 1 + Math.floor(rand() * 40));
  const at: number[] = [];
  targets.forEach((t, i) => {
    at.push(performance.now() + due[i]!);
    d.add(t, due[i]!);
  });
  assert.equal(d.size, 200);
  const removed = new Set<number>();
  for (let i = 0; i < 200; i += 3) {
    d.remove(targets[i]!);
    removed.add(i);
    assert.equal(targets[i]!.deadlineIndex, -1);
  }
  d.remove(targets[0]!); // twice: no effect
  assert.equal(d.size, 200 - removed.size);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(d.size, 0);
  assert.equal(log.length, 200 - removed.size);
  assert.ok(log.every((id) => !removed.has(id)), "a removed entry expired");
  assert.equal(new Set(log).size, log.length, "an entry expired twice");
  // Expired in deadline order (to within the clock reads of add and of
  // this test, a few µs apart).
  for (let i = 1; i < log.length; i++) {
    assert.ok(at[log[i - 1]!]! <= at[log[i]!]! + 0.05, `order at ${i}`);
  }
});

Deno.test("an entry added during expiry, and a re-add after removal, both expire", async () => {
  const d = new Deadlines();
  const log: number[] = [];
  const late = target(log, 2);
  const first: DeadlineTarget = {
    deadlineIndex: -1,
    expire: () => {
      log.push(1);
      d.add(late, 2);
    },
  };
  d.add(first, 1);
  const again = target(log, 3);
  d.add(again, 1000);
  d.remove(again);
  d.add(again, 5);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(log.sort(), [1, 2, 3]);
  assert.equal(d.size, 0);
});

Deno.test("a pending entry keeps the process's loop alive; an empty heap does not", async () => {
  // With nothing else pending, the awaited promise resolves only through the
  // timer: if the timer were unreferenced, the test would end with
  // "Promise resolution is still pending".
  const d = new Deadlines();
  await new Promise<void>((resolve) =>
    d.add({ deadlineIndex: -1, expire: resolve }, 20)
  );
  // The heap empties by removal and the completion loop says it is idle:
  // the timer stays armed but unreferenced, and the sanitizer sees no
  // pending op keeping the test alive.
  const t = target([], 9);
  d.add(t, 60_000);
  d.remove(t);
  assert.equal(d.size, 0);
  d.idle();
});
