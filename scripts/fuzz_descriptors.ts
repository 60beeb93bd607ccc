/**
 * The long descriptor fuzz run (`deno task fuzz`): seeded mutations of the
 * real captured descriptor sets and the test devices' descriptors through
 * every parser, in every mode and at every speed, until the count or the
 * time is reached. Stops at the first input a parser fails on (anything
 * thrown but `UsbError("invalid-descriptor")`) and prints it as hex, with
 * the seed to replay it. Then compares the parser's work, and its time, on
 * pathological inputs of n and 2n units: both must at most about double.
 *
 *     deno task fuzz [--seed N] [--count N] [--seconds N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  mutate,
  parseEverything,
  pathological,
  prng,
  seeds,
  workFor,
} from "../tests/fixtures/descriptor_fuzz.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string", default: String(Date.now() % 2 ** 31) },
      count: { type: "string", default: "300000" },
      seconds: { type: "string", default: "600" },
    },
  });
  const seed = Number(values.seed);
  const count = Number(values.count);
  const seconds = Number(values.seconds);
  if (![seed, count, seconds].every((n) => Number.isInteger(n) && n >= 0)) {
    console.error("usage: deno task fuzz [--seed N] [--count N] [--seconds N]");
    Deno.exit(2);
  }
  const rand = prng(seed);
  const all = seeds();
  const deadline = Date.now() + seconds * 1000;
  let runs = 0;
  let parsed = 0;
  while (runs < count && Date.now() < deadline) {
    const base = all[Math.floor(rand() * all.length)]!;
    // Mutations of mutations reach further from the seeds.
    let input = mutate(base, rand);
    if (rand() < 0.3) input = mutate(input, rand);
    try {
      parsed += parseEverything(input);
    } catch (e) {
      console.error(
        `seed ${seed}, input ${runs}: ${e instanceof Error ? e.message : e}`,
      );
      Deno.exit(1);
    }
    runs++;
    if (runs % 10000 === 0) {
      console.log(`${runs} inputs, ${parsed} successful parses`);
    }
  }
  console.log(
    `${runs} inputs (seed ${seed}), ${parsed} successful parses, no failure`,
  );

  let worst = 0;
  for (const n of [500, 1000, 2000]) {
    const small = pathological(n);
    const large = pathological(2 * n);
    for (const [name, bytes] of Object.entries(small)) {
      const work = workFor(large[name]!) / workFor(bytes);
      const time = (b: Uint8Array) => {
        const t: number[] = [];
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now();
          workFor(b);
          t.push(performance.now() - t0);
        }
        return t.sort((x, y) => x - y)[2]!;
      };
      const ratio = time(large[name]!) / Math.max(time(bytes), 1e-3);
      worst = Math.max(worst, work);
      console.log(
        `${name} x${n}: work ratio ${work.toFixed(2)}, time ratio ${
          ratio.toFixed(2)
        } (2 is linear)`,
      );
    }
  }
  if (worst > 2.2) {
    console.error(
      `the parser's work grew ${worst.toFixed(2)}x for a doubled input`,
    );
    Deno.exit(1);
  }
}
