// Run by buffers_test.ts with --v8-flags=--expose-gc: streams N small
// transfers and prints the heap after a full GC at intervals, as JSON.
import { open } from "../../mod.ts";

const [serial, count] = Deno.args;
const total = Number(count ?? 100000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

await using dev = await open(serial!);
const ep = (await dev.claimInterface(0, { detachKernelDriver: true })).endpoint(
  0x81,
);
const samples: { transfers: number; heapUsed: number }[] = [];
const sample = (transfers: number) => {
  gc();
  samples.push({ transfers, heapUsed: Deno.memoryUsage().heapUsed });
};
let n = 0;
sample(0);
for await (const chunk of ep.stream({ transferSize: 1024, inFlight: 16 })) {
  if (chunk.length !== 1024) throw new Error(`short chunk: ${chunk.length}`);
  n++;
  if (n % 20000 === 0) sample(n);
  if (n >= total) break;
}
console.log(JSON.stringify(samples));
