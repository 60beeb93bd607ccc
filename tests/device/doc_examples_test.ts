// The I/O core's JSDoc examples, run against the bench gadgets. They open
// devices, so the host's `deno test --doc` skips these files (deno.json
// `test.exclude`) and `deno task check` type-checks them (`deno check --doc`);
// here each ```ts block (not ```ts ignore) becomes a module in a temporary
// directory, with its relative imports made absolute, and is imported: a
// failed assertion or a rejected call fails its test.

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
/** The files whose examples need a device (deno.json test.exclude). */
export const DEVICE_DOC_FILES: readonly string[] = [
  "mod.ts",
  "src/device.ts",
  "src/endpoint.ts",
  "src/interface.ts",
  "src/buffer.ts",
  "src/stream.ts",
];

/** One example: where it is and its code. */
export interface DocExample {
  /** `file:line` of the opening fence. */
  where: string;
  /** The code, relative imports made absolute. */
  code: string;
}

/**
 * The runnable examples of a source file: ```ts blocks inside JSDoc
 * comments, with `* ` prefixes stripped and `"./x"`/`"../x"` imports
 * resolved against the file.
 */
export function docExamples(file: URL, text: string): DocExample[] {
  const out: DocExample[] = [];
  const lines = text.split("\n");
  const rel = file.pathname.slice(ROOT.pathname.length);
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)\* ```ts\s*$/.exec(lines[i]!);
    if (!open) continue;
    const prefix = `${open[1]}*`;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.startsWith(`${prefix} \`\`\``); j++) {
      const l = lines[j]!;
      body.push(l.startsWith(`${prefix} `) ? l.slice(prefix.length + 1) : "");
    }
    const code = body.join("\n").replace(
      /(from\s+|import\()"(\.\.?\/[^"]+)"/g,
      (_, kw: string, spec: string) => `${kw}"${new URL(spec, file).href}"`,
    );
    out.push({ where: `${rel}:${i + 1}`, code });
    i = j;
  }
  return out;
}

const dir = await Deno.makeTempDir({ prefix: "usbkit-doc-" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});

const examples: DocExample[] = [];
for (const f of DEVICE_DOC_FILES) {
  const url = new URL(f, ROOT);
  examples.push(...docExamples(url, Deno.readTextFileSync(url)));
}

Deno.test("doc examples: every I/O core file has runnable examples", () => {
  for (const f of DEVICE_DOC_FILES) {
    assert.ok(
      examples.some((e) => e.where.startsWith(`${f}:`)),
      `${f} has no runnable example`,
    );
  }
});

for (const ex of examples) {
  Deno.test(`doc example ${ex.where}`, async () => {
    const path = `${dir}/${ex.where.replace(/[/:.]/g, "_")}.ts`;
    await Deno.writeTextFile(path, ex.code + "\n");
    await import(new URL(`file://${path}`).href);
  });
}
