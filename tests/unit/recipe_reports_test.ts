import assert from "node:assert/strict";
import { parseRecipe } from "../../src/recipe/load.ts";
import { jsonReport } from "../../src/recipe/report_json.ts";
import { escapeXml, junitReport } from "../../src/recipe/report_junit.ts";
import {
  formatPlan,
  TerminalReporter,
} from "../../src/recipe/report_terminal.ts";
import { runRecipe, type RunResult } from "../../src/recipe/runner.ts";
import { FakeDevice, fakeOpener } from "../fixtures/recipes/fake_device.ts";
import { parseXml } from "../fixtures/recipes/xml.ts";

const RECIPE = `name: report <&> "test"
device: {vendorId: 0x0525, productId: 0xa4a0}
interfaces: [0]
steps:
  - control: {in: 18, requestType: standard, request: 6, value: 0x0100, expect: {length: 18}}
  - bulk:
      name: CSW
      endpoint: 0x81
      in: 13
      expect: {bytes: "55 53 42 53 ?? ?? ?? ?? 00 00 00 00 00"}
      onFail: continue
  - bulk: {endpoint: 0x81, in: 1000, save: {first: {type: u8}}}
  - repeat:
      count: 2
      steps:
        - log: "first is \${first}"
  - bulk: {endpoint: 0x85, in: 8, timeout: 20ms}
  - delay: 1ms
`;

async function failedRun(): Promise<RunResult> {
  const recipe = parseRecipe(RECIPE, { file: "report.yaml" });
  return await runRecipe(recipe, {
    openDevice: fakeOpener(new FakeDevice()),
    file: "report.yaml",
  });
}

Deno.test("the JSON report holds every step, its data, timing and the variables", async () => {
  const result = await failedRun();
  const report = JSON.parse(JSON.stringify(jsonReport(result)));
  assert.equal(report.format, "usbkit-recipe-report");
  assert.equal(report.outcome, "failed");
  assert.equal(report.recipe.file, "report.yaml");
  assert.deepEqual(report.vars, { first: 0 });
  assert.deepEqual(report.summary, {
    passed: 4,
    failed: 2,
    skipped: 1,
    total: 7,
  });
  assert.equal(report.steps.length, 6);
  const [desc, csw, big, repeat, timeout, delay] = report.steps;
  assert.equal(
    desc.transfer.data.hex,
    "12 01 20 03 00 00 00 09 25 05 a0 a4 00 01 01 02 03 01",
  );
  assert.equal(desc.transfer.data.truncated, false);
  assert.equal(csw.name, "CSW");
  assert.equal(csw.status, "failed");
  assert.match(csw.failures[0].detail, /\^\^/);
  assert.equal(big.transfer.data.length, 1000);
  assert.equal(big.transfer.data.truncated, true);
  assert.equal(big.transfer.data.hex.split(" ").length, 256);
  assert.deepEqual(big.saved, { first: 0 });
  assert.equal(repeat.children.length, 2);
  assert.equal(repeat.children[1].iteration, 2);
  assert.equal(repeat.children[1].message, "first is 0");
  assert.equal(timeout.error.code, "timeout");
  assert.equal(delay.status, "skipped");
  for (const s of report.steps) assert.equal(typeof s.durationMs, "number");
});

Deno.test("the JUnit report parses back: one test case a step, failures like the terminal's", async () => {
  const result = await failedRun();
  const root = parseXml(junitReport(result));
  assert.equal(root.name, "testsuites");
  const suite = root.children[0]!;
  assert.equal(suite.name, "testsuite");
  assert.equal(suite.attrs.name, 'report <&> "test"');
  assert.deepEqual(
    [
      suite.attrs.tests,
      suite.attrs.failures,
      suite.attrs.errors,
      suite.attrs.skipped,
    ],
    ["7", "1", "1", "1"],
  );
  const props = suite.children.find((c) => c.name === "properties")!;
  assert.deepEqual(props.children.map((p) => [p.attrs.name, p.attrs.value]), [[
    "device",
    "0525:a4a0",
  ], ["var.first", "0"]]);
  const cases = suite.children.filter((c) => c.name === "testcase");
  assert.deepEqual(cases.map((c) => c.attrs.name), [
    "1 control IN GET_DESCRIPTOR(device), 18 B",
    "2 CSW (bulk IN 0x81, 13 B)",
    "3 bulk IN 0x81, 1000 B",
    "4.1 #1 log",
    "4.1 #2 log",
    "5 bulk IN 0x85, 8 B",
    "6 delay 1.00 ms",
  ]);
  const failure = cases[1]!.children[0]!;
  assert.equal(failure.name, "failure");
  assert.equal(failure.attrs.message, "bytes: 9 of 13 bytes differ");
  assert.ok(failure.text.startsWith("bytes: 9 of 13 bytes differ\n"));
  assert.match(
    failure.text,
    /0x0000 {2}- 55 53 42 53 \?\? \?\? \?\? \?\? 00 00 00 00 00/,
  );
  assert.match(failure.text, /\^\^/);
  assert.equal(cases[3]!.children[0]!.name, "system-out");
  assert.equal(cases[3]!.children[0]!.text, "first is 0");
  const error = cases[5]!.children[0]!;
  assert.equal(error.name, "error");
  assert.equal(error.attrs.type, "timeout");
  assert.match(
    error.attrs.message!,
    /^error\[timeout\]: bulk IN 0x85 timed out after 20 ms$/,
  );
  assert.equal(cases[6]!.children[0]!.name, "skipped");
  assert.equal(cases[6]!.children[0]!.attrs.message, "an earlier step failed");
});

Deno.test("a run that found no device is one JUnit error, and the steps are skipped", async () => {
  const recipe = parseRecipe(
    "name: absent\ndevice: {serial: nobody, wait: 10ms}\nsteps: [{log: x}]\n",
    { file: "a.yaml" },
  );
  const result = await runRecipe(recipe, {
    openDevice: fakeOpener(new FakeDevice(), { never: true }),
  });
  const suite = parseXml(junitReport(result)).children[0]!;
  assert.equal(suite.attrs.errors, "1");
  const cases = suite.children.filter((c) => c.name === "testcase");
  assert.equal(cases[0]!.attrs.name, 'open serial "nobody"');
  assert.equal(cases[0]!.children[0]!.attrs.type, "not-found");
  assert.match(
    cases[0]!.children[0]!.text,
    /appeared within 10\.0 ms\n {2}hint: /,
  );
  assert.equal(cases[1]!.children[0]!.name, "skipped");
});

Deno.test("XML escaping covers markup, quotes, control characters and colours", () => {
  assert.equal(
    escapeXml(`<a href="x">&'`),
    "&lt;a href=&quot;x&quot;&gt;&amp;&apos;",
  );
  assert.equal(escapeXml("\x1b[31mred\x1b[39m"), "red");
  assert.equal(escapeXml("a\x00b\x07"), "a\\x00b\\x07");
  assert.equal(escapeXml("tab\tnew\nline"), "tab\tnew\nline");
});

Deno.test("the terminal shows each step with its time, and the hex diff of a mismatch", async () => {
  let out = "";
  let err = "";
  const reporter = new TerminalReporter({
    write: (s) => out += s,
    writeError: (s) => err += s,
    isTTY: false,
  });
  const recipe = parseRecipe(RECIPE, { file: "report.yaml" });
  await runRecipe(recipe, {
    openDevice: fakeOpener(new FakeDevice()),
    observer: reporter,
  });
  const lines = out.split("\n");
  assert.match(lines[0]!, /^report <&> "test"$/);
  assert.ok(
    lines.some((l) =>
      /^ {2}✓ 1 {4}control IN GET_DESCRIPTOR\(device\), 18 B {2}18 B {2}\d+\.\d+ ms$/
        .test(l)
    ),
  );
  assert.ok(
    lines.some((l) => l.startsWith("  ✗ 2    CSW (bulk IN 0x81, 13 B)")),
  );
  assert.ok(
    lines.some((l) =>
      l.includes("0x0000  - 55 53 42 53 ?? ?? ?? ?? 00 00 00 00 00")
    ),
  );
  assert.ok(
    lines.some((l) =>
      l.includes("          + 00 01 02 03 04 05 06 07 08 09 0a 0b 0c")
    ),
  );
  assert.ok(
    lines.some((l) =>
      l.includes("error[timeout]: bulk IN 0x85 timed out after 20 ms")
    ),
  );
  assert.ok(
    lines.some((l) =>
      l.startsWith("  - 6    delay 1.00 ms  skipped: an earlier step failed")
    ),
  );
  assert.match(lines.at(-2)!, /^FAIL 4 passed, 2 failed, 1 skipped in /);
  // Not a terminal: no colours, no carriage returns.
  assert.ok(!out.includes("\x1b[") && !out.includes("\r"));
  assert.equal(err, "");
});

Deno.test("a stream shows a live bar on a terminal, and periodic lines otherwise", async () => {
  const recipe = parseRecipe(
    "name: s\ndevice: {serial: f}\ninterfaces: [0]\nsteps:\n  - stream: {endpoint: 0x81, duration: 1200ms}\n",
    { file: "s.yaml" },
  );
  let tty = "";
  await runRecipe(recipe, {
    openDevice: fakeOpener(new FakeDevice()),
    observer: new TerminalReporter({
      write: (s) => tty += s,
      isTTY: true,
      color: false,
    }),
  });
  // The bar is redrawn in place: carriage return, then ESC [2K (erase line).
  assert.ok(tty.includes("\r\x1b[2K"));
  assert.match(tty, /\r.\[2K {5}1 {4}\[#*\.*\] [\d.]+ \w+ {2}[\d.]+ \w+\/s/);
  let plain = "";
  await runRecipe(recipe, {
    openDevice: fakeOpener(new FakeDevice()),
    observer: new TerminalReporter({ write: (s) => plain += s, isTTY: false }),
  });
  assert.ok(!plain.includes("\r"));
  assert.match(plain, /\n {5}1 {4}… [\d.]+ \w+ {2}[\d.]+ \w+\/s\n/);
});

Deno.test("the dry-run plan lists every step with its expectations", () => {
  const recipe = parseRecipe(RECIPE, { file: "report.yaml" });
  const plan = formatPlan(recipe, "report.yaml");
  assert.match(plan, /^recipe {6}report <&> "test" \(report\.yaml\)$/m);
  assert.match(plan, /^device {6}0525:a4a0$/m);
  assert.match(plan, /^ {2}2 {5}CSW: bulk IN 0x81, 13 B$/m);
  assert.match(
    plan,
    /^ {8}expect bytes 55 53 42 53 \?\? \?\? \?\? \?\? 00 00 00 00 00; continue on failure$/m,
  );
  assert.match(plan, /^ {4}4\.1 {3}log "first is \$\{first\}"$/m);
  assert.match(plan, /^ {2}5 {5}bulk IN 0x85, 8 B$/m);
  assert.match(plan, /^ {8}timeout 20\.0 ms$/m);
});

Deno.test("the recipe's name and the steps' names are interpolated in every report", async () => {
  const recipe = parseRecipe(
    `name: "read LBA \${lba} of $\${disk}"
device: {vendorId: 0x0525, productId: 0xa4a0}
interfaces: [0]
vars: {lba: 7}
steps:
  - bulk: {name: "CBW for LBA \${lba:hex}", endpoint: 0x02, out: "01"}
`,
    { file: "lba.yaml" },
  );
  let out = "";
  const result = await runRecipe(recipe, {
    openDevice: fakeOpener(new FakeDevice()),
    observer: new TerminalReporter({ write: (s) => out += s, isTTY: false }),
    vars: { lba: "2047" },
  });
  assert.equal(result.outcome, "passed");
  const name = "read LBA 2047 of ${disk}";
  assert.equal(out.split("\n")[0], name);
  assert.match(out, /✓ 1 {4}CBW for LBA 0x7ff \(bulk OUT 0x02, 1 B\)/);
  const json = jsonReport(result) as {
    recipe: { name: string };
    steps: { name: string }[];
  };
  assert.equal(json.recipe.name, name);
  assert.equal(json.steps[0]!.name, "CBW for LBA 0x7ff");
  const suite = parseXml(junitReport(result)).children[0]!;
  assert.equal(suite.attrs.name, name);
  assert.equal(
    suite.children.find((c) => c.name === "testcase")!.attrs.name,
    "1 CBW for LBA 0x7ff (bulk OUT 0x02, 1 B)",
  );
});
