import assert from "node:assert/strict";
import {
  aggregate,
  benchShape,
  checkTargets,
  completionsPerWakeup,
  type ContenderId,
  CONTENDERS,
  cpuCost,
  DUMMY_HCD_NO_ISO,
  fmtSpread,
  median,
  overlaps,
  PARK_WORKLOADS,
  parseResultLine,
  renderOverlaps,
  renderSvg,
  renderTable,
  renderTargets,
  renderTimeGoes,
  renderUsbipTrack,
  resultsFile,
  rssFigure,
  runsWorkload,
  type Sample,
  score,
  spreadOf,
  toJson,
  USBIP_MARK_REQUEST,
  USBIP_WORKLOADS,
  type UsbipRow,
  usbipTrack,
  wakeLatency,
  type WorkloadId,
  WORKLOADS,
} from "../../bench/report.ts";
import {
  contenderArgv,
  DRIVER_WORKLOADS,
  isUsbipWorkload,
  parseDriverArgs,
  parseUsbipServerLines,
  roundOrder,
  rssArgv,
  usbipClientArgv,
} from "../../bench/run_in_guest.ts";
import {
  completionDelta,
  flattenStats,
  parseBenchArgs,
} from "../../bench/usbkit_bench.ts";
import {
  benchDeviceDefinition,
  ISO_IN,
  ISO_PACKET,
  sourceSinkPattern,
} from "../../bench/usbip_device.ts";
import { defineDevice } from "../../src/emulated/device.ts";
import {
  benchmarkDevices,
  guestTimeoutSec,
  isFullRun,
  parseBenchCli,
} from "../../scripts/bench.ts";

const shape = benchShape(false);

function bulk(
  contender: ContenderId,
  mbps: number,
  round = 1,
  workload: WorkloadId = "in",
): Sample {
  return {
    round,
    contender,
    workload,
    ok: true,
    bytes: 256e6,
    seconds: 256 / mbps,
    cpu_s: 1,
    peak_rss_kb: 2048,
    mem: "mmap",
  };
}

function trips(
  contender: ContenderId,
  tps: number,
  workload: WorkloadId,
): Sample {
  return {
    round: 1,
    contender,
    workload,
    ok: true,
    bytes: 64 * 1000,
    transfers: 1000,
    seconds: 1000 / tps,
    cpu_s: 0.1,
  };
}

/**
 * A strict check that `text` is well-formed XML: one root element, every tag
 * closed in order, attributes quoted and unique, no bare `<` or `&` in text.
 * Returns the elements seen (name and attributes), in document order.
 */
function parseXml(
  text: string,
): { name: string; attrs: Record<string, string> }[] {
  let s = text.replace(/^<\?xml[^?]*\?>\s*/, "");
  const stack: string[] = [];
  const elements: { name: string; attrs: Record<string, string> }[] = [];
  let roots = 0;
  const checkText = (t: string) => {
    assert.ok(!t.includes("<"), `bare < in text: ${t}`);
    for (const m of t.matchAll(/&/g)) {
      const rest = t.slice(m.index);
      assert.match(
        rest,
        /^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/,
        `bare & in text: ${t}`,
      );
    }
  };
  while (s.length > 0) {
    const lt = s.indexOf("<");
    if (lt < 0) {
      checkText(s);
      assert.equal(s.trim(), "", "text after the root element");
      break;
    }
    checkText(s.slice(0, lt));
    if (stack.length === 0) {
      assert.equal(s.slice(0, lt).trim(), "", "text outside the root element");
    }
    const gt = s.indexOf(">", lt);
    assert.ok(gt > lt, "unterminated tag");
    const tag = s.slice(lt + 1, gt);
    s = s.slice(gt + 1);
    if (tag.startsWith("/")) {
      const name = tag.slice(1).trim();
      assert.equal(stack.pop(), name, `mismatched </${name}>`);
      continue;
    }
    const selfClosing = tag.endsWith("/");
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"<]*")*)\s*$/
      .exec(body);
    assert.ok(m, `malformed tag <${tag}>`);
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/([A-Za-z_][\w.:-]*)="([^"]*)"/g)) {
      assert.ok(!(a[1]! in attrs), `duplicate attribute ${a[1]}`);
      checkText(a[2]!);
      attrs[a[1]!] = a[2]!;
    }
    if (stack.length === 0) roots++;
    elements.push({ name: m[1]!, attrs });
    if (!selfClosing) stack.push(m[1]!);
  }
  assert.deepEqual(stack, [], "unclosed elements");
  assert.equal(roots, 1, "exactly one root element");
  return elements;
}

Deno.test("median: odd, even, empty, NaN ignored, input untouched", () => {
  const v = [5, 1, 3];
  assert.equal(median(v), 3);
  assert.deepEqual(v, [5, 1, 3]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
  assert.equal(median([NaN, 2, 4]), 3);
});

Deno.test("score and cpuCost per metric", () => {
  const s = bulk("raw-c-mmap", 400);
  assert.ok(Math.abs(score(s, "mbps") - 400) < 1e-9);
  assert.equal(score(trips("libusb-devmem", 2000, "rt1"), "tps"), 2000);
  const c: Sample = {
    round: 1,
    contender: "node-usb",
    workload: "ctrl",
    ok: true,
    latency_us_median: 250,
    transfers: 1000,
    cpu_s: 0.5,
  };
  assert.equal(score(c, "latency"), 250);
  assert.equal(cpuCost(c, "latency"), 500);
  assert.ok(Math.abs(cpuCost(s, "mbps") - 1 / (256e6 / 2 ** 30)) < 1e-12);
  assert.ok(Number.isNaN(score({ ...s, ok: false }, "mbps")));
});

Deno.test("aggregate: medians over rounds and ratios to raw-C mmap", () => {
  const samples: Sample[] = [
    bulk("raw-c-mmap", 400, 1),
    bulk("raw-c-mmap", 300, 2),
    bulk("raw-c-mmap", 500, 3),
    bulk("usbkit-stream", 380, 1),
    bulk("usbkit-stream", 360, 2),
    bulk("usbkit-stream", 1, 3),
    bulk("node-usb", 100, 1),
    {
      round: 1,
      contender: "libusb-devmem",
      workload: "in",
      ok: false,
      error: "LIBUSB_ERROR_IO",
    },
    {
      round: 1,
      contender: "usbkit-copy",
      workload: "in",
      ok: false,
      na: true,
      error: "not yet",
    },
    {
      round: 1,
      contender: "raw-c-mmap",
      workload: "ctrl",
      ok: true,
      latency_us_median: 200,
      transfers: 10,
      cpu_s: 0.001,
    },
    {
      round: 1,
      contender: "node-usb",
      workload: "ctrl",
      ok: true,
      latency_us_median: 800,
      transfers: 10,
      cpu_s: 0.004,
    },
  ];
  const cells = aggregate(samples, shape);
  assert.equal(cells.length, CONTENDERS.length * WORKLOADS.length);
  const cell = (c: ContenderId, w: WorkloadId) =>
    cells.find((x) => x.contender === c && x.workload === w)!;
  assert.ok(Math.abs(cell("raw-c-mmap", "in").value - 400) < 1e-9);
  assert.ok(Math.abs(cell("raw-c-mmap", "in").ratio - 1) < 1e-12);
  assert.ok(Math.abs(cell("usbkit-stream", "in").value - 360) < 1e-9);
  // ratios are taken round by round: 380/400, 360/300, 1/500
  const zin = cell("usbkit-stream", "in");
  assert.ok(Math.abs(zin.ratio - 0.95) < 1e-9);
  assert.ok(Math.abs(zin.ratioMin - 1 / 500) < 1e-9);
  assert.ok(Math.abs(zin.ratioMax - 1.2) < 1e-9);
  assert.equal(zin.ratios.length, 3);
  assert.equal(zin.values.length, 3);
  assert.deepEqual(zin.rounds, [1, 2, 3]);
  assert.ok(Math.abs(zin.min - 1) < 1e-9 && Math.abs(zin.max - 380) < 1e-9);
  const base = cell("raw-c-mmap", "in");
  assert.ok(Math.abs(base.min - 300) < 1e-9 && Math.abs(base.max - 500) < 1e-9);
  assert.equal(base.ratioMin, 1);
  assert.equal(base.ratioMax, 1);
  // node-usb measured in round 1 only: its ratio pairs with round 1's 400
  assert.deepEqual(cell("node-usb", "in").ratios, [0.25]);
  assert.ok(Math.abs(cell("node-usb", "in").ratio - 0.25) < 1e-9);
  assert.equal(cell("libusb-devmem", "in").state, "failed");
  assert.equal(cell("libusb-devmem", "in").error, "LIBUSB_ERROR_IO");
  assert.ok(Number.isNaN(cell("libusb-devmem", "in").ratio));
  assert.equal(cell("usbkit-copy", "in").state, "n/a");
  assert.equal(cell("raw-c-malloc", "in").state, "skipped");
  // latency: lower is better, so the ratio is inverted
  assert.equal(cell("node-usb", "ctrl").ratio, 0.25);
  assert.equal(cell("node-usb", "ctrl").cpuRatio, 4);
  assert.equal(cell("raw-c-mmap", "in").peakRssKb, 2048);
  assert.equal(cell("raw-c-mmap", "in").mem, "mmap");
});

Deno.test("aggregate: no ratio without an ok baseline", () => {
  const cells = aggregate([bulk("node-usb", 100), {
    round: 1,
    contender: "raw-c-mmap",
    workload: "in",
    ok: false,
    error: "x",
  }], shape);
  const node = cells.find((c) =>
    c.contender === "node-usb" && c.workload === "in"
  )!;
  assert.equal(node.state, "ok");
  assert.ok(Number.isNaN(node.ratio));
});

Deno.test("checkTargets: met, missed and unknown", () => {
  const samples: Sample[] = [
    bulk("raw-c-mmap", 400),
    bulk("usbkit-stream", 380),
    bulk("libusb-devmem", 300),
    bulk("node-usb", 100),
    trips("libusb-devmem", 1000, "rt1"),
    trips("libusb-malloc", 1200, "rt1"),
    trips("usbkit-copy", 1000, "rt1"),
    trips("usbkit-stream", 900, "rt1"),
  ];
  const t = checkTargets(aggregate(samples, shape));
  assert.deepEqual(t.map((x) => x.id), [
    "in-vs-mmap",
    "in-vs-libusb",
    "out-vs-mmap",
    "copy-in-vs-malloc",
    "rt1-vs-libusb",
    "rt16-vs-libusb",
    "ctrl-vs-libusb",
    "cpu-in-vs-mmap",
    "rss-flat",
  ]);
  const by = (id: string) => t.find((x) => x.id === id)!;
  assert.equal(by("in-vs-mmap").status, "met"); // 0.95 >= 0.9
  assert.equal(by("in-vs-libusb").status, "met"); // 380/300 = 1.27 >= 1.0
  assert.equal(by("rt1-vs-libusb").status, "met"); // best 1000 / best 1200 = 0.83
  assert.ok(Math.abs(by("rt1-vs-libusb").ratio - 1000 / 1200) < 1e-9);
  assert.equal(by("rt16-vs-libusb").status, "unknown"); // no rt16 figures
  assert.equal(by("rss-flat").status, "unknown");
  assert.match(
    by("in-vs-mmap").numbers,
    /usbkit stream \(zero-copy\) 380 MB\/s; raw-C mmap 400 MB\/s/,
  );
  // CPU: bulk() spends 1 s per 256 MB for everyone: ratio 1 <= 1.5
  assert.equal(by("cpu-in-vs-mmap").status, "met");
  assert.equal(by("cpu-in-vs-mmap").comparison, "<=");
  const slow = checkTargets(
    aggregate([bulk("raw-c-mmap", 400), bulk("usbkit-stream", 200)], shape),
  );
  assert.equal(slow[0]!.status, "missed");
  assert.match(
    renderTargets(slow),
    /\[MISSED\] +zero-copy bulk IN stream vs raw-C mmap: 0\.500 \(need >= 0\.9\)/,
  );
  assert.match(renderTargets(slow), /\[unknown\]/);
});

Deno.test("checkTargets: ratios per round, the range, latency and CPU the lower the better", () => {
  const ctrl = (
    contender: ContenderId,
    round: number,
    us: number,
    cpu_s = 0.1,
  ): Sample => ({
    round,
    contender,
    workload: "ctrl",
    ok: true,
    latency_us_median: us,
    transfers: 1000,
    cpu_s,
  });
  const samples: Sample[] = [
    bulk("raw-c-mmap", 400, 1),
    bulk("raw-c-mmap", 200, 2),
    bulk("usbkit-stream", 380, 1),
    bulk("usbkit-stream", 160, 2),
    ctrl("libusb-devmem", 1, 300),
    ctrl("libusb-malloc", 1, 250),
    ctrl("usbkit-stream", 1, 400),
    ctrl("usbkit-copy", 1, 350),
    ctrl("libusb-devmem", 2, 300),
    ctrl("usbkit-copy", 2, 600),
    // park is a variant under test: never part of a target
    ctrl("usbkit-park", 1, 1),
    ctrl("usbkit-park", 2, 1),
  ];
  const t = checkTargets(aggregate(samples, shape));
  const by = (id: string) => t.find((x) => x.id === id)!;
  // per round: 380/400 = 0.95, 160/200 = 0.8; the median 0.875 misses 0.9
  const zin = by("in-vs-mmap");
  assert.deepEqual(zin.ratios.map((x) => Math.round(x * 100)), [95, 80]);
  assert.ok(Math.abs(zin.ratio - 0.875) < 1e-9);
  assert.equal(zin.status, "missed");
  assert.match(renderTargets([zin]), /the range straddles the target/);
  // latency, per round best of each: 350/250 = 1.4, 600/300 = 2; median 1.7 > 1.5
  const c = by("ctrl-vs-libusb");
  assert.deepEqual(c.ratios, [1.4, 2]);
  assert.equal(c.status, "missed");
  assert.equal(c.comparison, "<=");
});

Deno.test("rssFigure and the RSS target: flat, growing, cut short, failed", () => {
  const rss = (
    samples_kb: number[],
    transfers = 1_000_000,
    extra: Partial<Sample> = {},
  ): Sample => ({
    round: 1,
    contender: "usbkit-stream",
    workload: "rss",
    ok: true,
    transfers,
    seconds: 150,
    rss_every: 100_000,
    rss_target: 1_000_000,
    rss_samples_kb: samples_kb,
    ...extra,
  });
  const flat = rssFigure([rss([60000, 61000, 62500, 61000])]);
  assert.equal(flat.state, "ok");
  assert.equal(flat.firstKb, 60000);
  assert.equal(flat.lastKb, 61000);
  assert.equal(flat.maxKb, 62500);
  assert.equal(flat.note, undefined);
  const t = checkTargets(aggregate([], shape), flat).at(-1)!;
  assert.equal(t.id, "rss-flat");
  assert.equal(t.status, "met");
  assert.match(t.claim, /1,000,000/);
  assert.match(t.numbers, /first 58\.6 MiB, last 59\.6 MiB, max 61\.0 MiB/);
  const grows = rssFigure([rss([60000, 70000, 80000])]);
  assert.equal(
    checkTargets(aggregate([], shape), grows).at(-1)!.status,
    "missed",
  );
  const cut = rssFigure([rss([60000, 60000], 200_000)]);
  assert.match(cut.note!, /200000 of 1000000/);
  // with two runs, the one that grew most is the figure
  assert.equal(rssFigure([rss([100, 100]), rss([100, 130])]).lastKb, 130);
  const failed = rssFigure([{
    round: 1,
    contender: "usbkit-stream",
    workload: "rss",
    ok: false,
    error: "boom",
  }]);
  assert.equal(failed.state, "failed");
  assert.equal(failed.note, "boom");
  assert.match(
    checkTargets(aggregate([], shape), failed).at(-1)!.numbers,
    /failed: boom/,
  );
});

Deno.test("overlaps: usbkit contenders against every other measured contender", () => {
  const r = (contender: ContenderId, round: number, tps: number) =>
    ({
      round,
      contender,
      workload: "rt1",
      ok: true,
      transfers: tps,
      seconds: 1,
    }) as const;
  const cells = aggregate([
    r("raw-c-mmap", 1, 4000),
    r("raw-c-mmap", 2, 4100),
    r("node-usb", 1, 1400),
    r("node-usb", 2, 1500),
    r("usbkit-stream", 1, 1450),
    r("usbkit-stream", 2, 1600),
    r("usbkit-park", 1, 1000),
    r("usbkit-park", 2, 1100),
  ], shape);
  const o = overlaps(cells);
  assert.deepEqual(o, [{
    workload: "rt1",
    contender: "usbkit-stream",
    with: ["node-usb"],
  }]);
  assert.equal(
    renderOverlaps(o),
    "usbkit stream (zero-copy) and node-usb overlap on rt1",
  );
  assert.match(renderOverlaps([]), /no usbkit contender/);
});

Deno.test("where the time goes: CPU per transfer, completions per wakeup, reap-to-drain latency", () => {
  const s = (
    contender: ContenderId,
    round: number,
    cpu_s: number,
    completion?: Record<string, number>,
  ): Sample => ({
    round,
    contender,
    workload: "rt1",
    ok: true,
    transfers: 1000,
    seconds: 1,
    cpu_s,
    ...(completion ? { completion } : {}),
  });
  const cells = aggregate([
    s("raw-c-mmap", 1, 0.03),
    s("usbkit-stream", 1, 0.5, {
      wakeups: 1000,
      records: 2000,
      "latencyNs.median": 40_000,
    }),
    s("usbkit-stream", 2, 0.6, {
      wakeups: 500,
      records: 2000,
      "latencyNs.median": 60_000,
    }),
    s("usbkit-park", 1, 0.7),
  ], shape);
  const c = cells.find((x) =>
    x.contender === "usbkit-stream" && x.workload === "rt1"
  )!;
  assert.equal(c.perWakeup, 3);
  assert.equal(c.perWakeupMin, 2);
  assert.equal(c.perWakeupMax, 4);
  assert.equal(c.wakeLatencyUs, 50);
  assert.equal(c.wakeLatencyKey, "latencyNs.median");
  assert.equal(c.cpuPerTransferUs, 550);
  const text = renderTimeGoes(cells);
  assert.match(
    text,
    /rt1 +usbkit stream \(zero-copy\): CPU 550 us\/transfer \(raw-C mmap 30\.0, \+520\); completions 3\.00 \[2\.00-4\.00\] per wakeup; reap->drain 50\.0 \[40\.0-60\.0\] us/,
  );
  // a usbkit without the figures says so
  assert.match(
    text,
    /USBKIT_WAKE=park: CPU 700 us\/transfer .*completions -; reap->drain -/,
  );
  assert.equal(wakeLatency({ "latency.meanUs": 12 })?.us, 12);
  assert.equal(wakeLatency({ latencyMsAvg: 0.5 })?.us, 500);
  assert.ok(Number.isNaN(completionsPerWakeup({ wakeups: 0, records: 3 })));
});

Deno.test("renderTable: every figure as median [min-max], ratios per round", () => {
  const text = renderTable(
    aggregate([
      bulk("raw-c-mmap", 400, 1),
      bulk("raw-c-mmap", 300, 2),
      bulk("usbkit-stream", 360, 1),
      bulk("usbkit-stream", 330, 2),
    ], shape),
    shape,
  );
  assert.match(text, /median \[min-max\] over the rounds/);
  assert.match(text, /raw-C mmap +350 \[300-400\] +1\.00 /);
  // 360/400 = 0.9, 330/300 = 1.1
  assert.match(
    text,
    /usbkit stream \(zero-copy\) +345 \[330-360\] +1\.00 \[0\.900-1\.10\]/,
  );
  // the park variant does not run bulk OUT: a row that says so
  assert.match(text, /USBKIT_WAKE=park +- +not run/);
});

Deno.test("renderTable: every contender, figures, ratios, failures with their error", () => {
  const samples: Sample[] = [
    bulk("raw-c-mmap", 400),
    bulk("usbkit-stream", 360),
    {
      round: 1,
      contender: "libusb-devmem",
      workload: "in",
      ok: false,
      error: "LIBUSB_ERROR_IO",
    },
    {
      round: 1,
      contender: "usbkit-copy",
      workload: "in",
      ok: false,
      na: true,
      error: "no stream yet",
    },
  ];
  const text = renderTable(aggregate(samples, shape), shape);
  assert.match(text, /SourceSink bulk IN, 256 MiB, 64 KiB x 16 in flight/);
  assert.match(text, /raw-C mmap\s+400\s+1\.00/);
  assert.match(text, /usbkit stream \(zero-copy\)\s+360\s+0\.900/);
  assert.match(text, /libusb dev_mem\s+FAILED\s+failed: LIBUSB_ERROR_IO/);
  assert.match(text, /usbkit transferIn \(copies\)\s+n\/a/);
  assert.match(text, /node-usb\s+-\s+not run/);
  // workloads nobody ran are left out
  assert.doesNotMatch(text, /GET_DESCRIPTOR/);
});

Deno.test("renderSvg: well-formed XML with one bar per contender in each workload", () => {
  const samples: Sample[] = [
    bulk("raw-c-mmap", 400),
    bulk("usbkit-stream", 360),
    bulk("node-usb", 90),
    {
      round: 1,
      contender: "libusb-devmem",
      workload: "in",
      ok: false,
      error: `bad <&> "chars"`,
    },
    trips("raw-c-mmap", 3000, "rt16"),
    trips("usbkit-copy", 2500, "rt16"),
  ];
  const svg = renderSvg(
    aggregate(samples, shape),
    shape,
    `subtitle with <markup> & "quotes"`,
  );
  const els = parseXml(svg);
  assert.equal(els[0]!.name, "svg");
  assert.equal(els[0]!.attrs.xmlns, "http://www.w3.org/2000/svg");
  const bars = els.filter((e) => e.name === "rect" && e.attrs.class === "bar");
  const panels = els.filter((e) => e.name === "g" && e.attrs.class === "panel")
    .map((e) => e.attrs["data-workload"]);
  assert.deepEqual(panels, ["in", "rt16"]);
  assert.equal(bars.length, CONTENDERS.length * panels.length);
  for (const w of panels) {
    const mine = bars.filter((b) => b.attrs["data-workload"] === w).map((b) =>
      b.attrs["data-contender"]
    );
    assert.deepEqual(mine, [...CONTENDERS]);
  }
  const width = (c: string, w: string) =>
    Number(
      bars.find((b) =>
        b.attrs["data-contender"] === c && b.attrs["data-workload"] === w
      )!.attrs.width,
    );
  assert.ok(width("raw-c-mmap", "in") > width("usbkit-stream", "in"));
  assert.ok(width("usbkit-stream", "in") > width("node-usb", "in"));
  assert.equal(width("libusb-devmem", "in"), 0);
  assert.ok(svg.includes("&lt;markup&gt; &amp; &quot;quotes&quot;"));
});

Deno.test("renderSvg with no results is still well-formed", () => {
  const els = parseXml(renderSvg(aggregate([], shape), shape, ""));
  assert.equal(els.filter((e) => e.attrs.class === "bar").length, 0);
});

Deno.test("resultsFile and toJson: NaN becomes null, everything is kept", () => {
  const r = resultsFile([bulk("node-usb", 100)], {
    date: "2025-01-01T00:00:00.000Z",
    machine: "node (2 cores, TCG guest)",
    kernel: "6.1.0-56-amd64",
    rounds: 3,
    quick: false,
    pinnedCpu: 1,
    devices: {
      sourceSink: { devnode: "/dev/bus/usb/002/002", epIn: 0x81, epOut: 0x02 },
    },
    shape,
  });
  const back = JSON.parse(toJson(r));
  assert.equal(back.machine, "node (2 cores, TCG guest)");
  assert.equal(back.kernel, "6.1.0-56-amd64");
  assert.equal(back.rounds, 3);
  assert.equal(back.pinnedCpu, 1);
  assert.equal(back.devices.sourceSink.epOut, 2);
  assert.equal(back.samples.length, 1);
  const node = back.cells.find((c: { contender: string; workload: string }) =>
    c.contender === "node-usb" && c.workload === "in"
  );
  assert.equal(node.ratio, null);
  assert.equal(back.targets.length, 9);
  assert.equal(back.rss.state, "skipped");
  assert.deepEqual(back.overlaps, []);
  assert.equal(back.guestSeconds, null);
  assert.equal(back.finished, true);
});

Deno.test("parseResultLine: the last JSON result line wins, noise is ignored", () => {
  assert.equal(parseResultLine(""), null);
  assert.equal(parseResultLine("Download https://...\n{not json\n"), null);
  assert.equal(parseResultLine('{"other":1}\n'), null);
  const r = parseResultLine(
    '{"ok":false,"contender":"a"}\nwarn\n{"ok":true,"contender":"b","bytes":3}\n',
  );
  assert.equal(r?.contender, "b");
  assert.equal(r?.bytes, 3);
});

Deno.test("driver: argv of each contender, rotation, flags", () => {
  const t = { devnode: "/dev/bus/usb/004/002", epIn: 0x81, epOut: 0x02 };
  const paths = {
    binDir: "/p/.cache/bench/bin",
    deno: "/usr/bin/deno",
    project: "/p",
  };
  const quick = benchShape(true);
  for (const c of CONTENDERS) {
    for (const w of WORKLOADS) {
      const argv = contenderArgv(c, w, t, quick, paths);
      assert.ok(argv.includes("/dev/bus/usb/004/002"), `${c} ${w}`);
      assert.ok(argv.includes(w.startsWith("rt") ? "rt" : w), `${c} ${w}`);
    }
  }
  const rt16 = contenderArgv("usbkit-copy", "rt16", t, quick, paths);
  assert.deepEqual(rt16.slice(0, 7), [
    "/usr/bin/deno",
    "run",
    "-A",
    "--no-check",
    "--cached-only",
    "/p/bench/usbkit_bench.ts",
    "rt",
  ]);
  assert.equal(rt16[rt16.indexOf("--inflight") + 1], "16");
  assert.equal(rt16[rt16.indexOf("--mode") + 1], "copy");
  // the usbkit program understands what the driver passes
  const parsed = parseBenchArgs(rt16.slice(6));
  assert.equal(parsed.workload, "rt");
  assert.equal(parsed.inflight, 16);
  assert.equal(parsed.count, quick.rt16Count);
  assert.equal(parsed.epOut, 2);
  assert.deepEqual(roundOrder([1, 2, 3], 1), [1, 2, 3]);
  assert.deepEqual(roundOrder([1, 2, 3], 3), [3, 1, 2]);
  assert.deepEqual(roundOrder([1, 2, 3], 4), [1, 2, 3]);
  assert.throws(
    () => parseDriverArgs(["--only", "nope"]),
    /unknown contender nope/,
  );
  assert.throws(() => parseBenchArgs(["bogus"]), /usage/);
});

// ---- the USB/IP track -------------------------------------------------------

function stream(
  workload: "in" | "usbip-in",
  mbps: number,
  round: number,
  extra: Partial<Sample> = {},
): Sample {
  return {
    round,
    contender: "usbkit-stream",
    workload,
    ok: true,
    bytes: 2 ** 30,
    seconds: 2 ** 30 / 1e6 / mbps,
    cpu_s: 2,
    peak_rss_kb: 4096,
    mem: "mmap (stream)",
    ...extra,
  };
}

function iso(pps: number, round: number, extra: Partial<Sample> = {}): Sample {
  return {
    round,
    contender: "usbkit-stream",
    workload: "usbip-iso",
    ok: true,
    packets: 64000,
    transfers: 2000,
    bytes: 64000 * 1024,
    seconds: 64000 / pps,
    cpu_s: 3.2,
    ...extra,
  };
}

const trackSamples: Sample[] = [
  stream("in", 200, 1),
  stream("in", 250, 2),
  stream("in", 100, 3),
  stream("usbip-in", 20, 1, {
    server_cpu_s: 4,
    server_wall_s: 5,
    server_cpu_total_s: 30,
    server_peak_rss_kb: 90 * 1024,
    attach_s: 2,
  }),
  stream("usbip-in", 50, 2, { server_cpu_s: 8, server_wall_s: 10 }),
  stream("usbip-in", 30, 3, { server_cpu_s: 6, server_wall_s: 10 }),
  iso(4000, 1),
  iso(5000, 2),
  {
    round: 3,
    contender: "usbkit-stream",
    workload: "usbip-iso",
    ok: false,
    error: "iso packet error",
  },
  // other contenders never enter the track
  { ...bulk("node-usb", 80), workload: "in" },
];

Deno.test("score and cpuCost: isochronous packets per second and CPU us per packet", () => {
  const s = iso(4000, 1);
  assert.equal(score(s, "pps"), 4000);
  assert.equal(cpuCost(s, "pps"), 50);
  const { packets: _, ...noPackets } = s;
  assert.ok(Number.isNaN(score(noPackets, "pps")));
  assert.ok(Number.isNaN(score({ ...s, ok: false }, "pps")));
});

Deno.test("spreadOf and fmtSpread: median [min-max], failed rounds left out", () => {
  assert.deepEqual(spreadOf([30, NaN, 20, 50]), {
    median: 30,
    min: 20,
    max: 50,
  });
  assert.equal(fmtSpread(spreadOf([30, 20, 50])), "30.0 [20.0-50.0]");
  assert.equal(fmtSpread(spreadOf([0.1, 0.2, 0.3])), "0.200 [0.100-0.300]");
  assert.equal(fmtSpread(spreadOf([7])), "7.00");
  assert.equal(fmtSpread(spreadOf([])), "-");
});

Deno.test("usbipTrack: medians with spread, ratio paired by round, iso n/a on dummy_hcd", () => {
  const t = usbipTrack(trackSamples, shape);
  assert.equal(t.contender, "usbkit-stream");
  assert.deepEqual(t.rows.map((r) => r.id), ["bulk-in", "iso-in"]);
  const [b, i] = t.rows as [UsbipRow, UsbipRow];
  // bulk IN: USB/IP 20, 50, 30; dummy_hcd 200, 250, 100 (rounds 1..3)
  assert.equal(b.usbip.state, "ok");
  assert.ok(Math.abs(b.usbip.median - 30) < 1e-9);
  assert.ok(Math.abs(b.usbip.min - 20) < 1e-9);
  assert.ok(Math.abs(b.usbip.max - 50) < 1e-9);
  assert.equal(b.usbip.values.length, 3);
  assert.ok(Math.abs(b.dummy.median - 200) < 1e-9);
  assert.equal(b.dummy.mem, "mmap (stream)");
  // per-round ratios 0.1, 0.2, 0.3: not the ratio of the medians (0.15)
  assert.equal(b.ratio.state, "ok");
  assert.ok(Math.abs(b.ratio.median - 0.2) < 1e-9);
  assert.ok(Math.abs(b.ratio.min - 0.1) < 1e-9);
  assert.ok(Math.abs(b.ratio.max - 0.3) < 1e-9);
  // CPU: 2 s per GiB on both; the device process 4, 8, 6 CPU s per GiB, busy 0.8, 0.8, 0.6
  assert.equal(b.usbip.cpu, 2);
  assert.equal(b.serverCpu, 6);
  assert.ok(Math.abs(b.serverBusy - 0.8) < 1e-9);
  assert.equal(b.serverCpuTotalS, 30);
  assert.equal(b.serverPeakRssKb, 90 * 1024);
  assert.equal(b.attachS, 2);
  // iso IN: 4000, 5000, one failed round; dummy_hcd cannot
  assert.equal(i.usbip.state, "ok");
  assert.equal(i.usbip.median, 4500);
  assert.equal(i.usbip.failedRounds, 1);
  assert.equal(i.usbip.note, "iso packet error");
  assert.equal(i.dummy.state, "n/a");
  assert.equal(i.dummy.note, DUMMY_HCD_NO_ISO);
  assert.equal(i.ratio.state, "n/a");
  assert.ok(Number.isNaN(i.ratio.median));
});

Deno.test("usbipTrack: a round where one side failed is left out of the ratio; not run is skipped", () => {
  const t = usbipTrack([
    stream("in", 200, 1),
    { ...stream("in", 100, 2), ok: false, error: "stall" },
    stream("usbip-in", 20, 1),
    stream("usbip-in", 50, 2),
  ], shape);
  const b = t.rows[0]!;
  assert.deepEqual(b.ratio.values.length, 1);
  assert.ok(Math.abs(b.ratio.median - 0.1) < 1e-9);
  assert.equal(b.dummy.failedRounds, 1);
  const none = usbipTrack([stream("in", 200, 1)], shape);
  assert.equal(none.rows[0]!.usbip.state, "skipped");
  assert.equal(none.rows[0]!.ratio.state, "skipped");
  assert.equal(none.rows[1]!.usbip.state, "skipped");
  const allFailed = usbipTrack([{
    round: 1,
    contender: "usbkit-stream",
    workload: "usbip-in",
    ok: false,
    error: "vhci_hcd is not loaded in the guest (module vhci-hcd)",
  }], shape);
  assert.equal(allFailed.rows[0]!.usbip.state, "failed");
});

Deno.test("renderUsbipTrack: both transports with spread, ratio, CPU, the n/a reason", () => {
  const text = renderUsbipTrack(usbipTrack(trackSamples, shape));
  assert.match(text, /^USB\/IP track: usbkit stream \(zero-copy\) client/);
  assert.match(
    text,
    /bulk IN, 256 MiB, 64 KiB x 16 in flight \(MB\/s\)\s+30\.0 \[20\.0-50\.0\]\s+200 \[100-250\]\s+0\.200 \[0\.100-0\.300\]/,
  );
  assert.match(
    text,
    /iso IN, 2000 URBs of 32 x 1024 B, 8 in flight \(packets\/s\)\s+4500 \[4000-5000\] \(1 failed\)\s+n\/a\s+n\/a/,
  );
  assert.match(text, /device process 6\.00 CPU s\/GiB, busy 0\.800 of a CPU/);
  assert.match(
    text,
    /iso-in dummy_hcd: dummy_hcd does not emulate isochronous/,
  );
  assert.match(text, /iso-in USB\/IP, failed round\(s\): iso packet error/);
  assert.equal(renderUsbipTrack(usbipTrack([stream("in", 1, 1)], shape)), "");
  // the main table does not list the track's workloads
  assert.doesNotMatch(
    renderTable(aggregate(trackSamples, shape), shape),
    /usbip|packets\/s/,
  );
});

Deno.test("renderSvg with the USB/IP track: a well-formed extra panel, bars scaled per row", () => {
  const track = usbipTrack(trackSamples, shape);
  const svg = renderSvg(aggregate(trackSamples, shape), shape, "t", track);
  const els = parseXml(svg);
  assert.equal(
    els.filter((e) => e.name === "g" && e.attrs.class === "track-panel").length,
    1,
  );
  const bars = els.filter((e) => e.attrs.class === "track-bar");
  assert.deepEqual(
    bars.map((b) => `${b.attrs["data-row"]}/${b.attrs["data-transport"]}`),
    ["bulk-in/usbip", "bulk-in/dummy_hcd", "iso-in/usbip", "iso-in/dummy_hcd"],
  );
  const w = bars.map((b) => Number(b.attrs.width));
  assert.ok(w[1]! > w[0]! && w[0]! > 0, "dummy_hcd's bulk bar is the longer");
  assert.ok(w[2]! > 0 && w[3] === 0, "no dummy_hcd iso bar");
  assert.ok(
    svg.includes("n/a: dummy_hcd does not emulate isochronous transfers"),
  );
  assert.equal(els.filter((e) => e.attrs.class === "whisker").length, 3);
  // the ordinary panels are unchanged, and a track that was not run adds nothing
  assert.equal(
    els.filter((e) => e.name === "rect" && e.attrs.class === "bar").length,
    CONTENDERS.length,
  );
  const plain = renderSvg(
    aggregate([], shape),
    shape,
    "",
    usbipTrack([], shape),
  );
  assert.equal(plain, renderSvg(aggregate([], shape), shape, ""));
});

Deno.test("resultsFile: the USB/IP track is in the JSON, its samples among the others", () => {
  const r = resultsFile(trackSamples, {
    date: "2025-01-01T00:00:00.000Z",
    machine: "m",
    kernel: "k",
    rounds: 3,
    quick: false,
    pinnedCpu: 1,
    devices: {},
    shape,
  });
  const back = JSON.parse(toJson(r));
  assert.equal(back.usbip.rows.length, 2);
  assert.equal(back.usbip.rows[1].dummy.state, "n/a");
  assert.equal(back.usbip.rows[1].ratio.median, null);
  assert.equal(back.samples.length, trackSamples.length);
  assert.equal(back.shape.isoPackets, 32);
  assert.equal(back.cells.length, CONTENDERS.length * WORKLOADS.length);
});

Deno.test("driver: the USB/IP track's workloads, client argv, device lines, server pin", () => {
  const o = parseDriverArgs([]);
  assert.deepEqual(o.workloads, [...DRIVER_WORKLOADS]);
  assert.deepEqual(DRIVER_WORKLOADS.slice(0, 3), [
    "in",
    "usbip-in",
    "usbip-iso",
  ]);
  assert.deepEqual(
    [...DRIVER_WORKLOADS].sort(),
    [...WORKLOADS, ...USBIP_WORKLOADS, "rss"].sort(),
  );
  assert.equal(DRIVER_WORKLOADS.at(-1), "rss");
  assert.equal(o.pin, 1);
  assert.equal(o.serverPin, 0);
  assert.equal(parseDriverArgs(["--pin", "0"]).serverPin, 1);
  assert.equal(parseDriverArgs(["--pin", "none"]).serverPin, null);
  assert.equal(parseDriverArgs(["--server-pin", "1"]).serverPin, 1);
  assert.equal(parseDriverArgs(["--server-pin", "none"]).serverPin, null);
  assert.throws(() => parseDriverArgs(["--server-pin", "-1"]), /--server-pin/);
  assert.deepEqual(
    parseDriverArgs(["--workloads", "usbip-iso,in,usbip-iso"]).workloads,
    ["usbip-iso", "in"],
  );
  assert.throws(
    () => parseDriverArgs(["--workloads", "usbip-out"]),
    /unknown workload usbip-out; known: in, usbip-in, usbip-iso, out/,
  );
  assert.ok(isUsbipWorkload("usbip-in") && !isUsbipWorkload("in"));

  const ready = {
    ok: true,
    ready: true,
    devnode: "/dev/bus/usb/005/003",
    portPath: "5-1",
    epIn: 0x81,
    epOut: 0x02,
    isoEp: 0x83,
    isoInterface: 1,
    isoAlternate: 1,
    isoPacket: 1024,
    attachSeconds: 2.5,
  } as const;
  const paths = { deno: "/usr/bin/deno", project: "/p" };
  const bulkArgv = usbipClientArgv("usbip-in", ready, shape, paths);
  assert.deepEqual(bulkArgv.slice(0, 6), [
    "/usr/bin/deno",
    "run",
    "-A",
    "--no-check",
    "--cached-only",
    "/p/bench/usbkit_bench.ts",
  ]);
  const b = parseBenchArgs(bulkArgv.slice(6));
  assert.equal(b.workload, "in");
  assert.equal(b.dev, "/dev/bus/usb/005/003");
  assert.equal(b.mode, "zero-copy");
  assert.equal(b.bytes, shape.bulkBytes);
  assert.equal(b.xfer, shape.bulkXfer);
  assert.equal(b.inflight, shape.bulkInflight);
  assert.equal(b.epIn, 0x81);
  assert.equal(b.iface, 0);
  assert.equal(b.alt, -1);
  assert.equal(b.markRequest, USBIP_MARK_REQUEST);
  // the same stream as the dummy_hcd "in" figure it is compared with
  const dummy = parseBenchArgs(
    contenderArgv(
      "usbkit-stream",
      "in",
      {
        devnode: "/dev/bus/usb/002/002",
        epIn: 0x81,
        epOut: 0x02,
      },
      shape,
      { ...paths, binDir: "/b" },
    ).slice(6),
  );
  assert.deepEqual(
    [dummy.bytes, dummy.xfer, dummy.inflight, dummy.mode],
    [b.bytes, b.xfer, b.inflight, b.mode],
  );
  assert.equal(dummy.markRequest, -1);
  const i = parseBenchArgs(
    usbipClientArgv("usbip-iso", ready, benchShape(true), paths).slice(6),
  );
  assert.equal(i.workload, "iso");
  assert.equal(i.iface, 1);
  assert.equal(i.alt, 1);
  assert.equal(i.epIn, 0x83);
  assert.equal(i.packets, 32);
  assert.equal(i.inflight, benchShape(true).isoInflight);
  assert.equal(i.count, benchShape(true).isoUrbs);
  assert.ok(i.maxSeconds > 120);

  assert.deepEqual(parseUsbipServerLines(""), {});
  const lines = parseUsbipServerLines(
    `Download file:///x\n${JSON.stringify(ready)}\n{broken\n` +
      `{"ok":true,"end":true,"submitted":9,"unlinked":0,"bytesIn":1,"cpu_total_s":2,"peak_rss_kb":3,"measured_cpu_s":1.5,"measured_wall_s":2}\n`,
  );
  assert.equal(lines.ready?.devnode, "/dev/bus/usb/005/003");
  assert.equal(lines.end?.measured_cpu_s, 1.5);
  assert.equal(lines.error, undefined);
  assert.equal(
    parseUsbipServerLines('{"ok":false,"error":"vhci_hcd is not loaded"}\n')
      .error,
    "vhci_hcd is not loaded",
  );
});

Deno.test("usbkit_bench: the iso workload and its flags", () => {
  const a = parseBenchArgs([
    "iso",
    "--dev",
    "/dev/bus/usb/005/003",
    "--iface",
    "1",
    "--alt",
    "1",
    "--ep-in",
    "0x83",
    "--packets",
    "16",
    "--inflight",
    "4",
    "--count",
    "100",
    "--mark-request",
    "1",
  ]);
  assert.deepEqual(
    [
      a.workload,
      a.iface,
      a.alt,
      a.epIn,
      a.packets,
      a.inflight,
      a.count,
      a.markRequest,
    ],
    ["iso", 1, 1, 0x83, 16, 4, 100, 1],
  );
  const d = parseBenchArgs(["in", "--dev", "/dev/x"]);
  assert.deepEqual([d.alt, d.markRequest, d.packets], [-1, -1, 32]);
});

Deno.test("the USB/IP bench device: SourceSink pattern, full iso packets, the mark request", async () => {
  const marks: number[] = [];
  const dev = defineDevice(benchDeviceDefinition((p) => marks.push(p)));
  const signal = new AbortController().signal;
  const setup = (bytes: number[]) => ({
    endpoint: 0,
    direction: bytes[0]! & 0x80 ? "in" as const : "out" as const,
    setup: new Uint8Array(bytes),
    length: 0,
    transferFlags: 0,
    signal,
  });
  await dev.handleUrb(setup([0x00, 0x09, 1, 0, 0, 0, 0, 0])); // SET_CONFIGURATION(1)
  const r = await dev.handleUrb({
    endpoint: 1,
    direction: "in",
    length: 65536,
    transferFlags: 0,
    signal,
  });
  assert.equal(r.actualLength, 65536);
  const expected = sourceSinkPattern(65536);
  assert.ok(r.data!.every((b, i) => b === expected[i]));
  assert.equal(expected[1023], 1023 % 63);
  assert.equal(expected[1024], 0);
  await dev.handleUrb(setup([0x01, 0x0b, 1, 0, 1, 0, 0, 0])); // SET_INTERFACE(1, alt 1)
  const isoR = await dev.handleUrb({
    endpoint: ISO_IN & 0x0f,
    direction: "in",
    length: 32 * ISO_PACKET,
    transferFlags: 0,
    signal,
    isoPackets: Array.from(
      { length: 32 },
      (_, k) => ({ offset: k * ISO_PACKET, length: ISO_PACKET }),
    ),
  });
  assert.equal(isoR.status, 0);
  assert.equal(isoR.actualLength, 32 * ISO_PACKET);
  assert.ok(
    isoR.isoPackets!.every((p) =>
      p.actualLength === ISO_PACKET && p.status === 0
    ),
  );
  assert.equal(isoR.data![ISO_PACKET + 1], 1);
  const m0 = await dev.handleUrb(
    setup([0x40, USBIP_MARK_REQUEST, 0, 0, 0, 0, 0, 0]),
  );
  const m1 = await dev.handleUrb(
    setup([0x40, USBIP_MARK_REQUEST, 1, 0, 0, 0, 0, 0]),
  );
  const bad = await dev.handleUrb(
    setup([0x40, USBIP_MARK_REQUEST, 2, 0, 0, 0, 0, 0]),
  );
  assert.deepEqual([m0.status, m1.status, bad.status], [0, 0, -32]);
  assert.deepEqual(marks, [0, 1]);
  dev.close();
});

Deno.test("scripts/bench.ts: vhci-hcd in the boot, --server-pin, time for the track", () => {
  assert.deepEqual(benchmarkDevices(600).modules, ["vhci-hcd"]);
  assert.equal(parseBenchCli(["--server-pin", "none"]).serverPin, "none");
  assert.equal(parseBenchCli([]).serverPin, undefined);
  assert.ok(guestTimeoutSec(3, false, 7, 2) > guestTimeoutSec(3, false, 7, 0));
  assert.equal(guestTimeoutSec(3, false, 7), guestTimeoutSec(3, false, 7, 0));
});

Deno.test("usbkit-park: the zero-copy program with USBKIT_WAKE=park, on in, rt1 and ctrl only", () => {
  const t = { devnode: "/dev/bus/usb/002/002", epIn: 0x81, epOut: 0x02 };
  const paths = { binDir: "/b", deno: "deno", project: "/p" };
  const park = contenderArgv("usbkit-park", "rt1", t, shape, paths);
  assert.deepEqual(park.slice(0, 3), ["env", "USBKIT_WAKE=park", "deno"]);
  assert.equal(park[park.indexOf("--mode") + 1], "zero-copy");
  assert.equal(park[park.indexOf("--contender") + 1], "usbkit-park");
  const stream = contenderArgv("usbkit-stream", "rt1", t, shape, paths);
  assert.equal(stream[0], "deno");
  assert.deepEqual(park.slice(2), [
    ...stream.slice(0, stream.indexOf("--contender") + 1),
    "usbkit-park",
    ...stream.slice(stream.indexOf("--contender") + 2),
  ]);
  assert.deepEqual(PARK_WORKLOADS, ["in", "rt1", "ctrl"]);
  assert.deepEqual(
    WORKLOADS.filter((w) => runsWorkload("usbkit-park", w)),
    ["in", "rt1", "ctrl"],
  );
  assert.ok(
    CONTENDERS.filter((c) => c !== "usbkit-park").every((c) =>
      WORKLOADS.every((w) => runsWorkload(c, w))
    ),
  );
  assert.ok(CONTENDERS.includes("usbkit-park"));
  assert.deepEqual(parseDriverArgs(["--only", "usbkit-park"]).contenders, [
    "usbkit-park",
  ]);
});

Deno.test("the RSS workload: argv, the program's flags", () => {
  const t = { devnode: "/dev/bus/usb/002/002", epIn: 0x81, epOut: 0x02 };
  const argv = rssArgv(t, shape, { deno: "deno", project: "/p" });
  const flag = (f: string) => argv[argv.indexOf(f) + 1];
  assert.equal(argv[6], "rss");
  assert.equal(flag("--count"), "1000000");
  assert.equal(flag("--rss-every"), "100000");
  assert.equal(flag("--xfer"), "1024");
  assert.equal(flag("--max-seconds"), "180");
  assert.equal(flag("--contender"), "usbkit-stream");
  const quick = rssArgv(t, benchShape(true), { deno: "deno", project: "/p" });
  assert.ok(Number(quick[quick.indexOf("--count") + 1]) < 1_000_000);
  // the usbkit program takes them
  const a = parseBenchArgs(argv.slice(6));
  assert.equal(a.workload, "rss");
  assert.equal(a.count, 1_000_000);
  assert.equal(a.rssEvery, 100_000);
  assert.equal(a.contender, "usbkit-stream");
  assert.equal(
    parseBenchArgs(["in", "--dev", "/d", "--mode", "copy"]).contender,
    "usbkit-copy",
  );
  assert.equal(
    parseBenchArgs(["in", "--dev", "/d", "--contender", "usbkit-park"])
      .contender,
    "usbkit-park",
  );
  assert.throws(
    () => parseBenchArgs(["in", "--dev", "/d", "--contender", "node-usb"]),
    /--contender is one of/,
  );
});

Deno.test("completion stats: flattened, counters as differences, levels as read", () => {
  assert.deepEqual(
    flattenStats({
      wakeups: 5,
      records: 80,
      latency: { medianUs: 30, p90Us: 90 },
      list: [1, 2],
      label: "spin",
      big: 7n,
    }),
    {
      wakeups: 5,
      records: 80,
      "latency.medianUs": 30,
      "latency.p90Us": 90,
      big: 7,
    },
  );
  assert.deepEqual(flattenStats(null), {});
  assert.deepEqual(
    completionDelta(
      { wakeups: 5, records: 80, "latency.medianUs": 50, spins: 9 },
      { wakeups: 25, records: 400, "latency.medianUs": 30, spins: 2, parks: 1 },
    ),
    // spins went down: a new loop, so its value as read; parks is new
    { wakeups: 20, records: 320, "latency.medianUs": 30, spins: 2, parks: 1 },
  );
  // src/completion.ts's stats: counters, a setting, a power-of-two latency histogram
  const stats = (wakeups: number, records: number, hist: number[]) => ({
    wake: "spin",
    spinUs: 400,
    wakeups,
    spins: 0,
    spinHits: 0,
    drains: wakeups,
    records,
    latencyUs: Uint32Array.from(hist),
  });
  const before = flattenStats(stats(10, 100, [0, 0, 0, 0, 0, 100]));
  const after = flattenStats(stats(30, 500, [0, 0, 0, 0, 0, 300, 200]));
  assert.equal(after["latencyUs.6"], 200);
  const d = completionDelta(before, after);
  assert.deepEqual(d, {
    spinUs: 400,
    wakeups: 20,
    spins: 0,
    spinHits: 0,
    drains: 20,
    records: 400,
    // 200 records in [16, 32) us and 200 in [32, 64): median bucket bound 32
    "latencyUs.count": 400,
    "latencyUs.p50": 32,
    "latencyUs.p90": 64,
  });
  assert.deepEqual(wakeLatency(d), { key: "latencyUs.p50", us: 32 });
  assert.equal(completionsPerWakeup(d), 20);
});

Deno.test("scripts/bench.ts: 5 rounds by default, --readme and --no-readme, full runs, guest time", () => {
  assert.equal(parseBenchCli([]).rounds, 5);
  assert.equal(parseBenchCli([]).readme, undefined);
  assert.equal(parseBenchCli(["--no-readme"]).readme, false);
  assert.equal(parseBenchCli(["--readme"]).readme, true);
  assert.equal(parseBenchCli([]).outDir, undefined);
  assert.equal(parseDriverArgs([]).rounds, 5);
  // a full run: every contender and every workload, default sizes
  const all: Sample[] = [];
  for (const c of CONTENDERS) {
    for (const w of WORKLOADS) {
      if (runsWorkload(c, w)) all.push(bulk(c, 100, 1, w));
    }
  }
  for (const w of [...USBIP_WORKLOADS, "rss"] as const) {
    all.push({ round: 1, contender: "usbkit-stream", workload: w, ok: true });
  }
  assert.equal(isFullRun({ quick: false, samples: all }), true);
  assert.equal(isFullRun({ quick: true, samples: all }), false);
  assert.equal(
    isFullRun({
      quick: false,
      samples: all.filter((s) => s.contender !== "node-usb"),
    }),
    false,
  );
  assert.equal(
    isFullRun({
      quick: false,
      samples: all.filter((s) => s.workload !== "rss"),
    }),
    false,
  );
  assert.ok(
    guestTimeoutSec(5, false, 7, 2, 3, true) >
      guestTimeoutSec(5, false, 7, 2) + 3 * 5 * 60,
  );
});
