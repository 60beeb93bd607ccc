/// <reference lib="deno.worker" />
/**
 * Loads a TypeScript or JavaScript recipe module in a worker, for
 * `loadRecipe`: it is sent the module's URL, and answers with the module's
 * default export (copied by structured clone), or why it could not.
 *
 * In a worker, a module whose top-level `await` never settles (or that loops
 * for ever) costs nothing but the worker, which `loadRecipe` terminates after
 * its timeout; imported by the caller itself, it would hang the caller, and
 * Deno would end the caller with "Top-level await promise never resolved".
 *
 * @module
 */

/** What the worker answers (load.ts reads the same shape). */
type ModuleAnswer =
  | { found: boolean; value: unknown }
  | { error: string };

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "";
}

self.onmessage = async (event: MessageEvent<string>) => {
  let answer: ModuleAnswer;
  try {
    const mod = await import(event.data);
    answer = { found: "default" in mod, value: mod.default };
  } catch (e) {
    answer = { error: `cannot load the module: ${firstLine(e)}` };
  }
  try {
    self.postMessage(answer);
  } catch (e) {
    // A function, a symbol, a class with private state…: not recipe data.
    const where = "value" in answer ? notData(answer.value) : undefined;
    self.postMessage(
      {
        error: `the default export is not plain data (${
          where ?? firstLine(e)
        })`,
      } satisfies ModuleAnswer,
    );
  }
};

/** Where the first function or symbol is in a value, and what it is. */
function notData(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, ""]];
  const seen = new Set<unknown>();
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === "function" || typeof v === "symbol") {
      return `${path || "the export"} is a ${typeof v}`;
    }
    if (v === null || typeof v !== "object" || seen.has(v)) continue;
    seen.add(v);
    const entries = Object.entries(v).reverse();
    for (const [k, x] of entries) {
      const step = Array.isArray(v)
        ? `[${k}]`
        : /^[A-Za-z_$][\w$]*$/.test(k)
        ? `${path ? "." : ""}${k}`
        : `[${JSON.stringify(k)}]`;
      stack.push([x, path + step]);
    }
  }
  return undefined;
}
