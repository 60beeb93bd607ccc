// No import cycle in src/: every .ts file's import and export-from
// statements (type-only ones included, and `import("...")` types) form a
// graph that must have no cycle. Comments are skipped, so the examples in
// JSDoc do not count.

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const src = join(root, "src");

/** The source with comments blanked out (strings kept). */
function stripComments(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
      out += " ";
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === "\\") j++;
        if (c !== "`" && text[j] === "\n") break;
        j++;
      }
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The module specifiers a source file imports (static, type and `import()`). */
function specifiers(text: string): string[] {
  const code = stripComments(text);
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^;'"`]*?\bfrom\s*(["'])([^"']+)\1/g,
    /\bimport\s*(["'])([^"']+)\1/g,
    /\bimport\s*\(\s*(["'])([^"']+)\1\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) found.push(m[2]!);
  }
  return found;
}

/** Every cycle's path (one per strongly connected component), as "a → b → a". */
function findCycles(graph: Map<string, Set<string>>): string[] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  const connect = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) !== idx.get(v)) return;
    const component = new Set<string>();
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.add(w);
    } while (w !== v);
    if (component.size === 1 && !graph.get(v)?.has(v)) return;
    cycles.push(cyclePath(graph, component, v));
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) connect(v);
  return cycles;
}

/** A shortest cycle through `start` inside `component` (breadth first). */
function cyclePath(
  graph: Map<string, Set<string>>,
  component: Set<string>,
  start: string,
): string {
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = prev.get(x)!) path.splice(1, 0, x);
        return [...path, start].join(" → ");
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...component].join(", ");
}

async function sourceFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) files.push(...await sourceFiles(path));
    else if (e.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

Deno.test("the import scanner skips comments and sees type imports and import() types", () => {
  const text = [
    '/** ```ts\n * import { a } from "./doc_only.ts";\n * ``` */',
    'import type { B } from "./b.ts";',
    'import {\n  c,\n  type D,\n} from "./c.ts";',
    'export { e } from "./e.ts";',
    'export * from "./f.ts";',
    'import "./g.ts";',
    'type H = import("./h.ts").H;',
    'const s = "// not a comment"; // import { x } from "./comment.ts";',
    'const u = "https://example.com/from";',
  ].join("\n");
  assert.deepEqual(specifiers(text).sort(), [
    "./b.ts",
    "./c.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
    "./h.ts",
  ]);
});

Deno.test("the cycle finder names each cycle", () => {
  const g = new Map<string, Set<string>>([
    ["a.ts", new Set(["b.ts"])],
    ["b.ts", new Set(["c.ts"])],
    ["c.ts", new Set(["a.ts", "d.ts"])],
    ["d.ts", new Set()],
    ["e.ts", new Set(["e.ts"])],
  ]);
  assert.deepEqual(findCycles(g).sort(), [
    "a.ts → b.ts → c.ts → a.ts",
    "e.ts → e.ts",
  ]);
  assert.deepEqual(findCycles(new Map([["x.ts", new Set(["y.ts"])]])), []);
});

Deno.test("src/ has no import cycle (type imports included)", async () => {
  const files = await sourceFiles(src);
  assert.ok(files.length > 20, `found only ${files.length} files under src/`);
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const from = relative(src, file);
    const edges = new Set<string>();
    for (const spec of specifiers(await Deno.readTextFile(file))) {
      if (!spec.startsWith(".")) continue;
      const target = normalize(join(dirname(file), spec));
      const rel = relative(src, target);
      if (rel.startsWith("..")) continue; // mod.ts, tests: not src/
      edges.add(rel);
    }
    graph.set(from, edges);
  }
  const cycles = findCycles(graph);
  assert.deepEqual(cycles, [], `import cycles in src/:\n${cycles.join("\n")}`);
});
