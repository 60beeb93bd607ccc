import assert from "node:assert/strict";
import {
  aggregate,
  benchShape,
  checkTargets,
  type ContenderId,
  CONTENDERS,
  cpuCost,
  median,
  parseResultLine,
  renderSvg,
  renderTable,
  renderTargets,
  resultsFile,
  type Sample,
  score,
  toJson,
  type WorkloadId,
  WORKLOADS,
} from "../../bench/report.ts";
import {
  contenderArgv,
  parseDriverArgs,
  roundOrder,
} from "../../bench/run_in_guest.ts";
import { parseBenchArgs } from "../../bench/usbkit_bench.ts";

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
  assert.ok(Math.abs(cell("usbkit-stream", "in").ratio - 0.9) < 1e-9);
  assert.equal(cell("usbkit-stream", "in").values.length, 3);
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
  assert.equal(t.length, 5);
  assert.equal(t[0]!.status, "met"); // 0.95 >= 0.9
  assert.equal(t[1]!.status, "met"); // 380/300 = 1.27 >= 1.2
  assert.equal(t[2]!.status, "met"); // 3.8 >= 3
  assert.equal(t[3]!.status, "met"); // best usbkit 1000 / best libusb 1200 = 0.83
  assert.ok(Math.abs(t[3]!.ratio - 1000 / 1200) < 1e-9);
  assert.equal(t[4]!.status, "unknown"); // no rt16 figures
  const slow = checkTargets(
    aggregate([bulk("raw-c-mmap", 400), bulk("usbkit-stream", 200)], shape),
  );
  assert.equal(slow[0]!.status, "missed");
  assert.match(
    renderTargets(slow),
    /\[MISSED\] +usbkit zero-copy bulk IN vs raw-C mmap: 0\.50 >= 0\.9/,
  );
  assert.match(renderTargets(slow), /\[unknown\]/);
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
  assert.equal(back.targets.length, 5);
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
