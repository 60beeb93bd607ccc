// Run by stream_test.ts, pinned (`taskset -c 1`), once per USBKIT_WAKE
// strategy: usbkit's real completion path under three loads, each checked
// for its data, with the completion loop's counters. Prints one JSON line.
//
//   deno run -A wake_probe.ts <loopback serial> <sourcesink serial> <rounds>

import { open } from "../../mod.ts";
import { completions, latencyPercentile } from "../../src/completion.ts";
import { pattern, sameBytes } from "./data.ts";

const [lbSerial, ssSerial, roundsArg, streamMiBArg] = Deno.args;
const rounds = Number(roundsArg ?? 2000);
const streamMiB = Number(streamMiBArg ?? 128);

function snapshot() {
  const s = completions().stats;
  return {
    wakeups: s.wakeups,
    spins: s.spins,
    spinHits: s.spinHits,
    records: s.records,
    latency: Uint32Array.from(s.latencyUs),
  };
}

function delta(a: ReturnType<typeof snapshot>) {
  const b = snapshot();
  const hist = b.latency.map((v, i) => v - a.latency[i]!);
  return {
    wakeups: b.wakeups - a.wakeups,
    spins: b.spins - a.spins,
    spinHits: b.spinHits - a.spinHits,
    records: b.records - a.records,
    latencyP50Us: latencyPercentile(hist, 0.5),
    latencyP90Us: latencyPercentile(hist, 0.9),
  };
}

const cpu = () => {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(
    " ",
  );
  return (Number(f[11]) + Number(f[12])) * 10_000; // clock ticks (100 Hz) to µs
};

const out: Record<string, unknown> = {
  wake: completions().stats.wake,
  spinUs: completions().stats.spinUs,
};

{
  await using dev = await open(lbSerial!);
  const iface = await dev.claimInterface(0);
  const epOut = iface.endpoints.find((e) => e.direction === "out")!;
  const epIn = iface.endpoints.find((e) => e.direction === "in")!;
  const msg = new Uint8Array(64);
  for (let i = 0; i < 200; i++) { // warm-up
    await epOut.transferOut(msg);
    await epIn.transferIn(64);
  }
  const s0 = snapshot();
  const c0 = cpu();
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    msg[0] = i & 0xff;
    msg[63] = (i >> 8) & 0xff;
    await epOut.transferOut(msg);
    const r = await epIn.transferIn(64);
    if (!sameBytes(r.data, msg)) throw new Error(`echo ${i} differs`);
  }
  const t = performance.now() - t0;
  out.roundTrip = {
    perSec: Math.round(rounds / (t / 1000)),
    cpuUsPerRoundTrip: Math.round((cpu() - c0) / rounds),
    ...delta(s0),
  };
}

{
  await using dev = await open(ssSerial!);
  const setup = {
    requestType: "standard",
    recipient: "device",
    request: 6, // GET_DESCRIPTOR
    value: 0x0100, // device descriptor
    index: 0,
  } as const;
  for (let i = 0; i < 100; i++) await dev.controlTransferIn(setup, 18);
  const s0 = snapshot();
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    const r = await dev.controlTransferIn(setup, 18);
    if (r.data.length !== 18 || r.data[1] !== 1) {
      throw new Error("bad descriptor");
    }
  }
  out.getDescriptor = {
    us: Math.round(((performance.now() - t0) * 1000) / rounds),
    ...delta(s0),
  };
  const ep = (await dev.claimInterface(0, { detachKernelDriver: true }))
    .endpoint(0x81);
  const size = 65536;
  const expected = pattern(size, ep.maxPacketSize);
  const total = streamMiB * 1024 * 1024;
  const s1 = snapshot();
  const c1 = cpu();
  let got = 0;
  const t1 = performance.now();
  const stream = ep.stream({ transferSize: size, inFlight: 16 });
  for await (const chunk of stream) {
    if (chunk.length !== size || chunk[size - 1] !== expected[size - 1]) {
      throw new Error(`chunk at ${got} is not the pattern`);
    }
    got += chunk.length;
    if (got >= total) break;
  }
  const secs = (performance.now() - t1) / 1000;
  out.stream = {
    MBps: Math.round(got / secs / 1e6),
    cpuUsPerMiB: Math.round((cpu() - c1) / (got / 1048576)),
    zeroCopy: stream.zeroCopy,
    ...delta(s1),
  };
}
console.log(JSON.stringify(out));
