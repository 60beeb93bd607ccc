/**
 * Bounded, seeded fuzzing of every descriptor parser over mutations of the
 * real captured descriptor sets (a few seconds; `deno task fuzz` runs the
 * long version), and the parser's work checked to be linear by counting
 * the bytes it reads for inputs of n and 2n units.
 */
import assert from "node:assert/strict";
import {
  mutate,
  parseEverything,
  pathological,
  prng,
  seeds,
  workFor,
} from "../fixtures/descriptor_fuzz.ts";

Deno.test("fuzz: mutated captured descriptor sets only ever parse or throw invalid-descriptor", () => {
  const rand = prng(0x14);
  const all = seeds();
  let parsed = 0;
  let runs = 0;
  for (const seed of all) {
    assert.ok(
      parseEverything(seed) > 0,
      "every seed parses one way or another",
    );
    for (let i = 0; i < 30; i++) {
      parsed += parseEverything(mutate(seed, rand));
      runs++;
    }
  }
  assert.ok(runs === all.length * 30);
  assert.ok(parsed > runs, `${parsed} successful parses in ${runs} inputs`);
});

Deno.test("fuzz: the parser's work is linear (doubling an input at most doubles the bytes read)", () => {
  const small = pathological(400);
  const large = pathological(800);
  for (const [name, bytes] of Object.entries(small)) {
    const a = workFor(bytes);
    const b = workFor(large[name]!);
    assert.ok(a > 0, name);
    assert.ok(
      b <= 2 * a + 64,
      `${name}: ${a} reads for ${bytes.length} bytes, ${b} for ${
        large[name]!.length
      }`,
    );
  }
});
