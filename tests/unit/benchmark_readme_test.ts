import assert from "node:assert/strict";
import {
  benchShape,
  type ContenderId,
  resultsFile,
  type RunMeta,
  type Sample,
  type WorkloadId,
} from "../../bench/report.ts";
import {
  BENCH_END,
  BENCH_START,
  markdownTable,
  renderReadmeBlock,
  renderUsbipParagraph,
  replaceReadmeBlock,
  wrap,
} from "../../bench/readme.ts";

const shape = benchShape(false);

const meta: RunMeta = {
  date: "2026-12-01T09:30:00.000Z",
  machine: "2 cores, 24 GiB, AMD EPYC",
  kernel: "6.1.0-56-amd64",
  rounds: 2,
  quick: false,
  pinnedCpu: 1,
  guestSeconds: 2460,
  devices: {},
  shape,
};

function bulk(
  contender: ContenderId,
  round: number,
  mbps: number,
  workload: WorkloadId = "in",
): Sample {
  return {
    round,
    contender,
    workload,
    ok: true,
    bytes: 256e6,
    transfers: 256e6 / 65536,
    seconds: 256 / mbps,
    cpu_s: 1,
    peak_rss_kb: 4096,
    mem: "mmap",
  };
}

function trips(
  contender: ContenderId,
  round: number,
  tps: number,
  workload: WorkloadId = "rt1",
): Sample {
  return {
    round,
    contender,
    workload,
    ok: true,
    transfers: 1000,
    seconds: 1000 / tps,
    cpu_s: 0.1,
  };
}

/** A two-round run with a few contenders. */
function run(): Sample[] {
  return [
    bulk("raw-c-mmap", 1, 400),
    bulk("raw-c-mmap", 2, 300),
    bulk("usbkit-stream", 1, 360),
    bulk("usbkit-stream", 2, 330),
    bulk("libusb-devmem", 1, 390),
    bulk("libusb-devmem", 2, 310),
    trips("raw-c-mmap", 1, 4000),
    trips("raw-c-mmap", 2, 4000),
    trips("node-usb", 1, 1400),
    trips("node-usb", 2, 1500),
    {
      ...trips("usbkit-stream", 1, 1450),
      completion: { wakeups: 1000, records: 2000, "latencyUs.median": 42 },
    },
    {
      ...trips("usbkit-stream", 2, 1600),
      completion: { wakeups: 1000, records: 2000, "latencyUs.median": 44 },
    },
    {
      round: 1,
      contender: "usbkit-stream",
      workload: "rss",
      ok: true,
      transfers: 1_000_000,
      seconds: 150,
      rss_every: 100_000,
      rss_target: 1_000_000,
      rss_samples_kb: [61440, 62000, 61440],
    },
  ];
}

/** `deno fmt` of Markdown text, through stdin. */
async function denoFmt(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "md", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

/** Prose as one line: the renderer wraps at 80 columns. */
const flat = (s: string) => s.replace(/\s+/g, " ");

Deno.test("renderReadmeBlock: the run's facts, figures as median [min–max], per-round ratios", () => {
  const block = renderReadmeBlock(resultsFile(run(), meta));
  const text = flat(block);
  assert.match(text, /Latest run: 2026-12-01/);
  assert.match(text, /machine 2 cores, 24 GiB, AMD EPYC/);
  assert.match(text, /kernel 6\.1\.0-56-amd64/);
  assert.match(text, /2 rounds \(the guest run took 41\.0 min\)/);
  assert.match(text, /pinned to guest CPU 1 \(`taskset -c 1`\)/);
  // park did not run: not mentioned
  assert.doesNotMatch(text, /USBKIT_WAKE/);
  // a contender that did not run a workload shows a dash
  assert.match(block, /\| node-usb +\| – +\|/);
  // figures: raw-C mmap 350 [300–400], usbkit 345 [330–360]
  assert.match(block, /\| raw-C mmap +\| 350 \[300–400\] +\|/);
  assert.match(block, /\| usbkit stream \(zero-copy\) +\| 345 \[330–360\]/);
  // ratio table: per round 360/400 = 0.9 and 330/300 = 1.1
  assert.match(block, /1\.00 \[0\.900–1\.10\]/);
  // a contender that did not run is not a row; a workload nobody ran is not a column
  assert.doesNotMatch(block, /^\| libusb malloc/m);
  assert.doesNotMatch(block, /bulk OUT MB\/s/);
  assert.match(block, /bench\/results\/latest\.svg/);
});

Deno.test("renderReadmeBlock: targets with their numbers, overlaps, where the time goes", () => {
  const text = flat(renderReadmeBlock(resultsFile(run(), meta)));
  // in-vs-mmap: per round 0.9, 1.1 -> median 1.00, met
  assert.match(
    text,
    /- \*\*met\*\*: zero-copy bulk IN stream vs raw-C mmap: 1\.00 \[0\.900–1\.10\] \(target ≥ 0\.9\);/,
  );
  // the figures behind it, with en dashes
  assert.match(
    text,
    /usbkit stream \(zero-copy\) 345 \[330–360\] MB\/s; raw-C mmap 350 \[300–400\] MB\/s/,
  );
  // in-vs-libusb: per round 360/390 = 0.923, 330/310 = 1.06: the range straddles 1.0
  assert.match(text, /\(target ≥ 1; the range straddles it\)/);
  // no bulk OUT in this run: said, not invented
  assert.match(text, /- not measured: bulk OUT stream/);
  assert.match(text, /\*\*met\*\*: RSS flat over 1,000,000/);
  assert.match(text, /first 60\.0 MiB, last 60\.0 MiB, max 60\.5 MiB/);
  // usbkit and node-usb overlap on rt1 (1450-1600 vs 1400-1500)
  assert.match(text, /usbkit stream \(zero-copy\) and node-usb overlap on rt1/);
  assert.match(
    text,
    /2\.00 completions per wakeup, reap to drain 43\.0 \[42\.0–44\.0\] µs/,
  );
});

Deno.test("renderReadmeBlock: quick, cut short, unpinned, unknown duration say so", () => {
  const block = renderReadmeBlock(resultsFile(run(), {
    ...meta,
    quick: true,
    finished: false,
    pinnedCpu: null,
    guestSeconds: null,
    rounds: 1,
  }));
  const text = flat(block);
  assert.match(text, /Quick sizes/);
  assert.match(text, /cut short/);
  assert.match(text, /contenders not pinned/);
  assert.match(text, /1 round,/);
  assert.doesNotMatch(text, /the guest run took/);
});

Deno.test("the generated Markdown is as deno fmt leaves it", async () => {
  const r = resultsFile(run(), meta);
  const block = renderReadmeBlock(r);
  assert.equal(await denoFmt(block + "\n"), block + "\n");
  const track = renderUsbipParagraph(
    resultsFile([
      ...run(),
      {
        round: 1,
        contender: "usbkit-stream",
        workload: "usbip-in",
        ok: true,
        bytes: 1e8,
        seconds: 20,
        cpu_s: 7,
        server_cpu_s: 18,
        server_wall_s: 20,
      },
      {
        round: 1,
        contender: "usbkit-stream",
        workload: "usbip-iso",
        ok: true,
        packets: 36000,
        seconds: 20,
        cpu_s: 9,
        server_cpu_s: 19,
        server_wall_s: 20,
      },
    ], meta),
    0,
  )!;
  assert.equal(await denoFmt(track + "\n"), track + "\n");
});

Deno.test("renderUsbipParagraph: the track's figures and busy shares, or null without the track", () => {
  assert.equal(renderUsbipParagraph(resultsFile(run(), meta), 0), null);
  const r = resultsFile([
    ...run(),
    {
      round: 1,
      contender: "usbkit-stream",
      workload: "usbip-in",
      ok: true,
      bytes: 1e8,
      seconds: 20,
      cpu_s: 7,
      server_cpu_s: 18,
      server_wall_s: 20,
    },
  ], meta);
  const p = flat(renderUsbipParagraph(r, 0)!);
  assert.match(p, /^\*\*USB\/IP track\.\*\*/);
  assert.match(p, /pinned to guest CPUs 0 and 1/);
  // 1e8 bytes in 20 s = 5.00 MB/s; dummy_hcd's round 1 was 360 MB/s
  // (round 1 measured both: 5 / 360 = 0.014)
  assert.match(p, /\| 5\.00 \| 345 \[330–360\] \| 0\.014 \|/);
  assert.match(p, /device process busy 0\.900 of a CPU/);
  assert.match(p, /client 0\.350/);
  assert.match(p, /--workloads in,usbip-in,usbip-iso/);
});

Deno.test("replaceReadmeBlock: only the block, and the track paragraph up to the next heading", () => {
  const md = [
    "# usbkit",
    "",
    "intro",
    "",
    BENCH_START,
    "",
    "old table",
    "",
    BENCH_END,
    "",
    "**USB/IP track.** old",
    "",
    "| old |",
    "",
    "## Layout",
    "",
    "rest",
    "",
  ].join("\n");
  const kept = replaceReadmeBlock(md, "new block\n", null);
  assert.equal(
    kept,
    md.replace("old table", "new block"),
  );
  const both = replaceReadmeBlock(md, "new block", "**USB/IP track.** new\n");
  assert.ok(both.startsWith("# usbkit\n\nintro\n\n"));
  assert.match(
    both,
    /<!-- bench:end -->\n\n\*\*USB\/IP track\.\*\* new\n\n## Layout\n\nrest\n$/,
  );
  assert.doesNotMatch(both, /old/);
  // the block is replaced again the same way: regenerating is idempotent
  assert.equal(
    replaceReadmeBlock(both, "new block", "**USB/IP track.** new"),
    both,
  );
  assert.throws(
    () => replaceReadmeBlock("# no markers\n", "x", null),
    /no <!-- bench:start -->/,
  );
  assert.throws(
    () => replaceReadmeBlock(`${BENCH_END}\n${BENCH_START}\n`, "x", null),
    /bench:start/,
  );
});

Deno.test("the README in the repository has the markers the run rewrites", async () => {
  const readme = await Deno.readTextFile(
    new URL("../../README.md", import.meta.url),
  );
  const start = readme.indexOf(BENCH_START);
  const end = readme.indexOf(BENCH_END);
  assert.ok(start >= 0 && end > start);
  // replacing the block with itself changes nothing else
  const inner = readme.slice(start + BENCH_START.length, end).trim();
  assert.equal(replaceReadmeBlock(readme, inner, null), readme);
});

Deno.test("markdownTable and wrap", () => {
  assert.equal(
    markdownTable(["", "µs"], [["a – b", "1"]]),
    "|       | µs |\n| ----- | -- |\n| a – b | 1  |",
  );
  assert.equal(markdownTable(["a|b"], []), "| a\\|b |\n| ---- |");
  assert.equal(wrap("x - y", 3), "x -\ny");
  assert.equal(wrap("one two three four", 9), "one two\nthree\nfour");
  assert.equal(wrap("averyveryverylongword x", 5), "averyveryverylongword\nx");
});
