// The README's `usb` command lines, run in the guest exactly as printed (each
// line through `sh -c`, from the project root, as a person would paste it).
// What each produced is checked: the table lists the gadget, the JSON parses,
// the recipe passed in both reports, the schema is a JSON Schema.

import assert from "node:assert/strict";
import { readmeBlocks, readmeCommands } from "../fixtures/readme.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const lines = readmeCommands().filter((c) =>
  c.line.startsWith("deno task usb ")
);
const made = ["report.json", "report.xml", "recipe.schema.json"];

async function sh(line: string) {
  const out = await new Deno.Command("sh", {
    args: ["-c", line],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
  };
}

Deno.test("README: the `usb` examples are all found", () => {
  // Each command the README shows, at least once.
  for (const cmd of ["list", "describe", "run", "schema", "rebind", "serve"]) {
    assert.ok(
      lines.some((l) => l.line.startsWith(`deno task usb ${cmd}`)),
      `the README shows \`usb ${cmd}\``,
    );
  }
});

for (const { section, line } of lines) {
  Deno.test(`README (${section}): ${line}`, async () => {
    try {
      const r = await sh(line);
      const all = `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
      assert.equal(r.code, 0, all);
      assert.doesNotMatch(all, /error\[|at file:/);
      const words = line.replace(/#.*$/, "").trim().split(/\s+/);
      const [, , , cmd] = words;
      if (cmd === "list" && words.includes("--json")) {
        const devices = JSON.parse(r.stdout) as { vendorId: number }[];
        assert.ok(devices.some((d) => d.vendorId === 0x0525));
      } else if (cmd === "list") {
        assert.match(r.stdout, /0525:a4a0/);
      } else if (cmd === "describe") {
        assert.match(r.stdout, /0525/);
        assert.match(r.stdout, /MMAP/);
      } else if (cmd === "run" && words.includes("--dry-run")) {
        assert.match(r.stdout, /nothing was run/);
      } else if (cmd === "run") {
        const json = JSON.parse(await Deno.readTextFile(`${ROOT}/report.json`));
        assert.equal(json.outcome, "passed");
        assert.equal(json.vars.message, "hi");
        const xml = await Deno.readTextFile(`${ROOT}/report.xml`);
        assert.match(xml, /failures="0"/);
      } else if (cmd === "schema") {
        const schema = JSON.parse(
          await Deno.readTextFile(`${ROOT}/recipe.schema.json`),
        );
        assert.equal(schema.title, "usbkit recipe");
      } else if (cmd === "rebind") {
        assert.match(r.stdout, /nothing to rebind|bound to|already bound/);
      } else if (cmd === "serve") {
        // The listing ran while the TypeScript device was attached.
        assert.match(r.stdout, /1209:0001/);
      }
    } finally {
      for (const f of made) await Deno.remove(`${ROOT}/${f}`).catch(() => {});
    }
  });
}

Deno.test("README: the TypeScript recipe, saved as sizes.ts, passes with `deno task usb run sizes.ts`", async () => {
  const block = readmeBlocks().find((b) =>
    b.lang === "ts" && b.code.includes("defineRecipe")
  );
  assert.ok(block, "the README has a TypeScript recipe");
  await Deno.writeTextFile(`${ROOT}/sizes.ts`, block.code + "\n");
  try {
    const r = await sh("deno task usb run sizes.ts");
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /PASS 3 passed/);
  } finally {
    await Deno.remove(`${ROOT}/sizes.ts`).catch(() => {});
  }
});
