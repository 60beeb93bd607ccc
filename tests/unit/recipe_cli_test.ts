import assert from "node:assert/strict";
import { runCommand, schemaCommand } from "../../src/recipe/cli.ts";
import { FakeDevice, fakeOpener } from "../fixtures/recipes/fake_device.ts";

const invalid =
  new URL("../fixtures/recipes/invalid/", import.meta.url).pathname;

async function cli(args: string[], opener = fakeOpener(new FakeDevice())) {
  let out = "";
  let err = "";
  const status = await runCommand(args, {
    stdout: (s) => out += s,
    stderr: (s) => err += s,
    openDevice: opener,
    isTTY: false,
  });
  return { status, out, err, opener };
}

async function withRecipe(
  text: string,
  fn: (path: string, dir: string) => Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/r.yaml`, text);
    await fn(`${dir}/r.yaml`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const PASSING = `name: passing
device: {vendorId: 0x0525, productId: 0xa4a0}
interfaces: [0]
vars: {size: 16}
steps:
  - bulk: {endpoint: 0x81, in: "\${size}", expect: {length: 16, pattern: sourcesink}}
`;

Deno.test("usage errors exit 2 and say what is wrong", async () => {
  for (
    const [args, said] of [
      [[], "run needs a recipe file"],
      [["a.yaml", "b.yaml"], "run takes one recipe, got 2"],
      [
        ["a.yaml", "--report", "xml=out.xml"],
        '--report expects json=PATH or junit=PATH, got "xml=out.xml"',
      ],
      [["a.yaml", "--var", "novalue"], "--var expects name=value"],
      [["a.yaml", "--var", "1x=2"], "--var expects name=value"],
      [["a.yaml", "--frobnicate"], "frobnicate"],
    ] as const
  ) {
    const { status, err, opener } = await cli([...args]);
    assert.equal(status, 2, args.join(" "));
    assert.ok(err.includes(said), `${args.join(" ")}: ${err}`);
    assert.ok(err.includes("usage: usb run"), "the usage follows");
    assert.equal(opener.calls(), 0);
  }
});

Deno.test("--help prints the usage and exits 0", async () => {
  const { status, out } = await cli(["--help"]);
  assert.equal(status, 0);
  assert.match(out, /^usage: usb run <recipe>/);
});

Deno.test("an invalid recipe exits 2 with every problem, before any device is opened", async () => {
  const { status, err, out, opener } = await cli([
    invalid + "44-many-at-once.yaml",
  ]);
  assert.equal(status, 2);
  assert.equal(out, "");
  assert.equal(opener.calls(), 0);
  const lines = err.trimEnd().split("\n");
  assert.equal(lines.length, 7);
  assert.match(
    lines[0]!,
    /44-many-at-once\.yaml:3:20: device\.vendorId: expected a vendor id/,
  );
  assert.match(
    lines[6]!,
    /44-many-at-once\.yaml: 6 problems; nothing was run$/,
  );
  assert.ok(!err.includes("    at "), "no stack trace");
});

Deno.test("--dry-run validates and prints the plan without opening the device", async () => {
  await withRecipe(PASSING, async (path) => {
    const { status, out, opener } = await cli([path, "--dry-run"]);
    assert.equal(status, 0);
    assert.equal(opener.calls(), 0);
    assert.match(out, /^ {2}1 {5}bulk IN 0x81, \$\{size\} B$/m);
    assert.match(out, /nothing was run \(--dry-run\)/);
  });
});

Deno.test("a passing run exits 0 and writes both reports", async () => {
  await withRecipe(PASSING, async (path, dir) => {
    const { status, out } = await cli([
      path,
      "--report",
      `json=${dir}/r.json`,
      "--report",
      `junit=${dir}/r.xml`,
    ]);
    assert.equal(status, 0, out);
    assert.match(out, /PASS 1 passed in /);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
    assert.equal(json.outcome, "passed");
    assert.equal(json.steps[0].transfer.data.length, 16);
    const xml = await Deno.readTextFile(`${dir}/r.xml`);
    assert.match(
      xml,
      /<testsuite name="passing" tests="1" failures="0" errors="0" skipped="0"/,
    );
  });
});

Deno.test("--var overrides a recipe variable, and a failing step exits 1", async () => {
  await withRecipe(PASSING, async (path, dir) => {
    const { status, out } = await cli([
      path,
      "--var",
      "size=32",
      "--report",
      `json=${dir}/r.json`,
    ]);
    assert.equal(status, 1);
    assert.match(out, /length: expected 16 bytes, got 32/);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
    assert.equal(json.vars.size, "32");
    assert.equal(json.steps[0].transfer.requested, 32);
  });
});

Deno.test("a --var value that makes a step impossible exits 2 with its position, also with --dry-run", async () => {
  await withRecipe(PASSING, async (path) => {
    for (const dry of [[], ["--dry-run"]]) {
      const { status, out, err, opener } = await cli([
        path,
        "--var",
        "size=8",
        ...dry,
      ]);
      assert.equal(status, 2);
      assert.equal(out, "");
      assert.equal(opener.calls(), 0);
      assert.equal(
        err.replaceAll(path, "r.yaml"),
        "r.yaml:6:60: steps[0].bulk.expect.length: the step reads at most 8 bytes (in: 8), so 16 can never arrive\n" +
          "r.yaml: 1 problem; nothing was run\n",
      );
    }
  });
});

Deno.test("no device within wait exits 2 after about that long, with a clear message", async () => {
  await withRecipe(
    PASSING.replace("productId: 0xa4a0}", "productId: 0xa4a0, wait: 400ms}"),
    async (path, dir) => {
      const started = performance.now();
      const { status, err } = await cli(
        [path, "--report", `junit=${dir}/r.xml`],
        fakeOpener(new FakeDevice(), { never: true }),
      );
      const took = performance.now() - started;
      assert.equal(status, 2);
      assert.ok(took >= 390 && took < 3000, `took ${took} ms`);
      assert.match(
        err,
        /^error\[not-found\]: no device matching 0525:a4a0 appeared within 400 ms\n {2}hint: /,
      );
      assert.match(
        await Deno.readTextFile(`${dir}/r.xml`),
        /<error message="error\[not-found\]/,
      );
    },
  );
});

Deno.test("a report that cannot be written is said, and the run does not pass", async () => {
  await withRecipe(PASSING, async (path, dir) => {
    const { status, err } = await cli([
      path,
      "--report",
      `json=${dir}/no/such/dir/r.json`,
    ]);
    assert.equal(status, 2);
    assert.match(err, /cannot write the json report to /);
  });
});

Deno.test("usb schema prints the JSON Schema; extra arguments are a usage error", async () => {
  let out = "";
  assert.equal(await schemaCommand([], { stdout: (s) => out += s }), 0);
  const schema = JSON.parse(out);
  assert.equal(schema.title, "usbkit recipe");
  let err = "";
  assert.equal(
    await schemaCommand(["--pretty"], { stderr: (s) => err += s }),
    2,
  );
  assert.match(err, /schema takes no arguments/);
});
