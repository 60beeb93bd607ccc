// The README's host commands, run exactly as printed: every `deno task vm`
// line (each boots the virtual bench), the library example as the README
// says to run it, and the quick-start demo. The `usb` lines are run inside
// the guest by tests/device/readme_test.ts. The quick-start `task test` line
// is this very test suite, so it is not run from here.

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { readmeBlocks, readmeCommands } from "./fixtures/readme.ts";

const ROOT = new URL("../", import.meta.url).pathname;
// The README writes `deno`; a fresh machine has it only through npx, so the
// running deno is put first on PATH.
const PATH = `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`;

async function sh(line: string) {
  const out = await new Deno.Command("sh", {
    args: ["-c", line],
    cwd: ROOT,
    env: { NO_COLOR: "1", PATH },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
    text: `--- stdout\n${d.decode(out.stdout)}\n--- stderr\n${
      d.decode(out.stderr)
    }`,
  };
}

const hostLines = readmeCommands().filter((c) =>
  c.line.startsWith("deno task vm ") ||
  c.line.startsWith("npx -y deno@2.9.6 task demo")
);

Deno.test("README: the host examples are found", () => {
  assert.ok(hostLines.length >= 6, JSON.stringify(hostLines));
});

for (const { line } of hostLines) {
  Deno.test(`README: ${line}`, async () => {
    const r = await sh(line);
    if (line.includes("exit 7")) {
      assert.equal(r.code, 0, r.text);
      assert.equal(r.stdout.trim().split("\n").pop(), "7", r.text);
      return;
    }
    assert.equal(r.code, 0, r.text);
    assert.doesNotMatch(r.text, /error\[|at file:/);
    if (line.includes("usb list")) assert.match(r.stdout, /0525:a4a0/);
    if (line.includes("--full") && line.includes("usb list")) {
      assert.match(r.stdout, /46f4:0001|0409:55aa/);
    }
    if (line.includes("sourcesink-smoke") || line.includes("usb run")) {
      assert.match(r.stdout, /PASS/);
    }
    if (line.includes("bench-replug")) {
      assert.match(r.stdout, /replug .*gone after .* ready after/);
      assert.match(r.stdout, /F1 /);
    }
    if (line.includes("throughput")) assert.match(r.stdout, /MB\/s/);
    if (line.includes("mass_storage")) assert.match(r.stdout, /INQUIRY|LBA/i);
    if (line.includes("task demo")) assert.match(r.stdout, /done in/);
    if (line.includes("--device")) assert.match(r.stdout, /PASS/);
  });
}

Deno.test("README: the library example runs on the bench as the README says", async () => {
  const example = readmeBlocks().find((b) =>
    b.lang === "ts" && b.section === "The library"
  );
  assert.ok(example, "the README has a library example");
  const file = `${ROOT}/example.ts`;
  await Deno.writeTextFile(file, example.code + "\n");
  try {
    const r = await sh("deno task vm -- deno run -A example.ts");
    assert.equal(r.code, 0, r.text);
    assert.match(r.stdout, /^ok Uint8Array\(8\) \[/m);
    assert.match(r.stdout, /0, 1, 2, 3,\s+4, 5, 6, 7/);
    assert.match(r.stdout, /16777216 bytes streamed/);
    assert.match(r.stdout, /^invalid-argument$/m);
  } finally {
    await Deno.remove(file).catch(() => {});
  }
});

Deno.test("README: the TypeScript device, saved as counter.ts, enumerates and moves data as printed", async () => {
  const block = readmeBlocks().find((b) =>
    b.lang === "ts" && b.section === "Devices written in TypeScript"
  );
  assert.ok(block, "the README has a device example");
  const file = `${ROOT}/counter.ts`;
  await Deno.writeTextFile(file, block.code + "\n");
  try {
    const r = await sh(
      "deno task vm --module vhci-hcd -- deno run -A counter.ts",
    );
    assert.equal(r.code, 0, r.text);
    assert.match(r.stdout, /^enumerated at \/dev\/bus\/usb\/\d{3}\/\d{3}$/m);
    assert.match(r.stdout, /^host got Uint8Array\(4\) \[ 0, 1, 2, 3 \]$/m);
    assert.match(r.stdout, /^device got Uint8Array\(3\) \[ 1, 2, 3 \]$/m);
  } finally {
    await Deno.remove(file).catch(() => {});
  }
});
