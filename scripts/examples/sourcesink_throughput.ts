/**
 * SourceSink bulk IN throughput: N transfers in flight, MB/s printed once a
 * second and at the end, every byte checked against the gadget's pattern
 * unless `--no-check`.
 *
 *     deno task vm -- deno run -A scripts/examples/sourcesink_throughput.ts --mib 256
 *
 * `--mode copy` uses plain transferIn (the kernel copies into a JS array);
 * `--mode stream` (default) uses zero-copy stream().
 *
 * @module
 */
import { parseArgs } from "node:util";
import { open, UsbError } from "../../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    device: { type: "string", default: "0525:a4a0" },
    mib: { type: "string", default: "256" },
    size: { type: "string", default: "65536" },
    "in-flight": { type: "string", default: "16" },
    mode: { type: "string", default: "stream" },
    "no-check": { type: "boolean", default: false },
  },
});

const total = Number(values.mib) * 1024 * 1024;
const size = Number(values.size);
const inFlight = Number(values["in-flight"]);

try {
  await using dev = await open(values.device);
  const ep = (await dev.claimInterface(0, { detachKernelDriver: true }))
    .endpoint(0x81);
  const expected = new Uint8Array(size).map((_, i) => (i % ep.packetSize) % 63);
  const check = (chunk: Uint8Array) => {
    if (values["no-check"]) return;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== expected[i]) {
        throw new Error(`pattern mismatch at byte ${i} of a chunk`);
      }
    }
  };
  let moved = 0, lastReport = performance.now(), lastMoved = 0;
  const t0 = performance.now();
  const report = (final = false) => {
    const now = performance.now();
    const rate = final
      ? moved / ((now - t0) / 1000)
      : (moved - lastMoved) / ((now - lastReport) / 1000);
    console.log(
      `${final ? "total" : "now  "} ${
        (moved / 1048576).toFixed(0).padStart(6)
      } MiB  ${(rate / 1e6).toFixed(1).padStart(7)} MB/s`,
    );
    lastReport = now;
    lastMoved = moved;
  };
  if (values.mode === "stream") {
    const stream = ep.stream({ transferSize: size, inFlight });
    console.log(
      `stream: ${inFlight} x ${size} B in flight, zero-copy: ${stream.zeroCopy}`,
    );
    for await (const chunk of stream) {
      check(chunk);
      moved += chunk.length;
      if (performance.now() - lastReport > 1000) report();
      if (moved >= total) break;
    }
  } else {
    console.log(`transferIn: ${inFlight} x ${size} B in flight (copies)`);
    const queue = Array.from({ length: inFlight }, () => ep.transferIn(size));
    let submitted = inFlight * size;
    while (queue.length > 0) {
      const { data } = await queue.shift()!;
      check(data);
      moved += data.length;
      if (submitted < total) {
        queue.push(ep.transferIn(size));
        submitted += size;
      }
      if (performance.now() - lastReport > 1000) report();
    }
  }
  report(true);
} catch (e) {
  if (e instanceof UsbError) {
    console.error(e.describe());
    Deno.exit(1);
  }
  throw e;
}
