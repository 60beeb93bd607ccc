// What capture costs: a 64 MiB bulk IN stream from SourceSink (64 KiB
// transfers, 16 in flight) with capture off, on with full data, and on with
// a 64-byte snap length, rounds interleaved in one boot; median MB/s of
// each. A measurement, not a test: run it in the guest and read the output.
//
//   deno task vm --full -- deno run -A --no-check tests/device/capture_cost_probe.ts [rounds]

import { Capture, open } from "../../mod.ts";
import { benchInfo } from "../../kernel/guest.ts";

const ss = benchInfo().gadgets.find((g) => g.function === "sourcesink")!;
const TOTAL = 64 * 1024 * 1024;
const rounds = Number(Deno.args[0] ?? 5);
const file = `${await Deno.makeTempDir()}/cost.pcapng`;

async function once(mode: "off" | "full" | "snap64"): Promise<number> {
  const options = mode === "off"
    ? {}
    : mode === "full"
    ? { capture: file }
    : { capture: Capture.open(file, { snapLength: 64 }) };
  const dev = await open(ss.serial, options);
  const ep = (await dev.claimInterface(0, { detachKernelDriver: true }))
    .endpoint(0x81);
  let total = 0;
  const t0 = performance.now();
  for await (const chunk of ep.stream({ transferSize: 65536, inFlight: 16 })) {
    total += chunk.length;
    if (total >= TOTAL) break;
  }
  const ms = performance.now() - t0;
  const cap = dev.capture;
  await dev.close();
  if (mode === "snap64") cap?.close();
  const size = (() => {
    try {
      return Deno.statSync(file).size;
    } catch {
      return 0;
    }
  })();
  try {
    Deno.removeSync(file);
  } catch {
    // capture off: no file
  }
  console.log(
    `${mode.padEnd(6)} ${(total / ms / 1000).toFixed(1)} MB/s  packets ${
      cap?.packets ?? 0
    }  file ${(size / 1048576).toFixed(1)} MiB`,
  );
  return total / ms / 1000;
}

const results: Record<string, number[]> = { off: [], full: [], snap64: [] };
await once("off"); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const mode of ["off", "full", "snap64"] as const) {
    results[mode]!.push(await once(mode));
  }
}
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
};
for (const [mode, v] of Object.entries(results)) {
  console.log(
    `median ${mode.padEnd(6)} ${median(v).toFixed(1)} MB/s  [${
      Math.min(...v).toFixed(1)
    }-${Math.max(...v).toFixed(1)}] over ${v.length} runs`,
  );
}
