/**
 * Loading recipes from YAML, JSON or a TypeScript module, and reporting every
 * problem in one go as `file:line:column: steps[2].bulk.endpoint: message`.
 *
 * Nothing here touches a device: a recipe is rejected before any device is
 * opened.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type Document,
  isMap,
  isNode,
  isScalar,
  LineCounter,
  parseDocument,
} from "yaml";
import { parseTemplate } from "./interpolate.ts";
import {
  issuesToProblems,
  nearest,
  type Recipe,
  RecipeSchema,
  type SchemaProblem,
  STEP_KINDS,
} from "./schema.ts";
import { parseInteger } from "./values.ts";

/** One problem in a recipe, located in its file where the format allows. */
export interface RecipeProblem {
  /** The recipe file, as given. */
  file: string;
  /** 1-based line, when known (YAML and JSON). */
  line?: number;
  /** 1-based column, when known. */
  column?: number;
  /** Where in the recipe: `steps[2].bulk.endpoint`; empty for the whole recipe. */
  path: string;
  /** What was expected, and what was found. */
  message: string;
}

/**
 * Formats a problem as one line: `file:line:column: path: message`.
 *
 * @param p the problem
 * @returns the line
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatProblem } from "./load.ts";
 * const line = formatProblem({ file: "r.yaml", line: 3, column: 17, path: "steps[0].bulk.endpoint", message: "expected …" });
 * assert.ok(line === "r.yaml:3:17: steps[0].bulk.endpoint: expected …");
 * ```
 */
export function formatProblem(p: RecipeProblem): string {
  const where = p.line === undefined
    ? p.file
    : `${p.file}:${p.line}:${p.column ?? 1}`;
  return `${where}: ${p.path || "recipe"}: ${p.message}`;
}

/**
 * A recipe that cannot be used: it holds every problem found, not just the
 * first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRecipe, RecipeError } from "./load.ts";
 * try {
 *   parseRecipe("name: x\nsteps: []\n", { file: "r.yaml" });
 * } catch (e) {
 *   assert.ok(e instanceof RecipeError && e.problems[0]?.path === "device");
 * }
 * ```
 */
export class RecipeError extends Error {
  /** The problems, in the order they appear in the file. */
  readonly problems: RecipeProblem[];
  /** @param problems every problem found */
  constructor(problems: RecipeProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "RecipeError";
    this.problems = problems;
  }
}

/** A validated recipe and where it came from. */
export interface LoadedRecipe {
  /** The recipe, validated. */
  recipe: Recipe;
  /** The file it was read from, as given. */
  file: string;
  /** The folder `{ file }` data is read relative to. */
  baseDir: string;
}

/** Options for {@linkcode loadRecipe} and {@linkcode parseRecipe}. */
export interface LoadOptions {
  /**
   * Variables that will be given on the command line (`--var`): references to
   * them are not unknown.
   */
  vars?: readonly string[];
}

/**
 * Formats a path for people: `["steps", 2, "bulk", "endpoint"]` becomes
 * `steps[2].bulk.endpoint`.
 *
 * @param path the path
 * @returns the text; empty for the root
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPath } from "./load.ts";
 * assert.ok(formatPath(["steps", 2, "bulk", "endpoint"]) === "steps[2].bulk.endpoint");
 * assert.ok(formatPath(["save", "1x"]) === 'save["1x"]');
 * ```
 */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

type Locator = (
  path: (string | number)[],
  atKey: boolean,
) => { line: number; column: number } | undefined;

/**
 * Validates a recipe value (already parsed from its file format).
 *
 * @param value the parsed recipe
 * @param options the file name for messages, a locator for positions, the
 * folder for `{ file }` data, and the `--var` names
 * @returns the recipe
 * @throws {RecipeError} with every problem
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateRecipe } from "./load.ts";
 * const recipe = validateRecipe(
 *   { name: "x", device: { serial: "usbkit-lb-0001" }, steps: [{ delay: "5ms" }] },
 *   { file: "inline" },
 * );
 * assert.ok(recipe.steps.length === 1);
 * ```
 */
export function validateRecipe(
  value: unknown,
  options: LoadOptions & { file: string; locate?: Locator; baseDir?: string },
): Recipe {
  const result = RecipeSchema.safeParse(value);
  const problems: SchemaProblem[] = result.success
    ? []
    : issuesToProblems(result.error.issues);
  problems.push(...checkRecipe(value, options.vars ?? [], options.baseDir));
  if (problems.length === 0 && result.success) return result.data;
  throw new RecipeError(locateAll(problems, options.file, options.locate));
}

function locateAll(
  problems: SchemaProblem[],
  file: string,
  locate: Locator | undefined,
): RecipeProblem[] {
  const seen = new Set<string>();
  const located = problems.map((p, order) => ({
    order,
    problem: {
      file,
      ...locate?.(p.path, p.atKey),
      path: formatPath(p.path),
      message: p.message,
    } as RecipeProblem,
  })).filter(({ problem }) => {
    // A value can fail a field check and a cross-field check the same way;
    // say each thing once.
    const key = `${problem.path}\u0000${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  located.sort((a, b) =>
    (a.problem.line ?? 0) - (b.problem.line ?? 0) ||
    (a.problem.column ?? 0) - (b.problem.column ?? 0) ||
    a.order - b.order
  );
  return located.map((l) => l.problem);
}

/**
 * Parses and validates a recipe from text.
 *
 * @param text the file's contents
 * @param options the file name (its extension picks the format unless
 * `format` is given), the folder `{ file }` data is relative to, and the
 * `--var` names
 * @returns the recipe
 * @throws {RecipeError} with every problem, each with its line and column
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRecipe } from "./load.ts";
 * const recipe = parseRecipe(
 *   "name: smoke\ndevice: {vendorId: 0x0525, productId: 0xa4a0}\nsteps:\n  - delay: 10ms\n",
 *   { file: "smoke.yaml" },
 * );
 * assert.ok(recipe.device.productId === 0xa4a0);
 * ```
 */
export function parseRecipe(
  text: string,
  options: LoadOptions & {
    file: string;
    format?: "yaml" | "json";
    baseDir?: string;
  },
): Recipe {
  const format = options.format ??
    (extname(options.file).toLowerCase() === ".json" ? "json" : "yaml");
  const lineCounter = new LineCounter();
  const lines = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (format === "json") {
    try {
      JSON.parse(text);
    } catch (e) {
      throw new RecipeError([
        jsonSyntaxProblem(text, (e as Error).message, options.file),
      ]);
    }
  }
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
  });
  if (doc.errors.length > 0) {
    if (format === "json") {
      // JSON.parse accepted it, so the YAML reading is only for positions.
      return validateRecipe(JSON.parse(text), { ...options });
    }
    throw new RecipeError(doc.errors.map((e) => ({
      file: options.file,
      ...lines(e.pos[0]),
      path: "",
      message: `invalid YAML: ${e.message.split("\n")[0]}`,
    })));
  }
  const value = format === "json"
    ? JSON.parse(text)
    : doc.toJS({ maxAliasCount: 1000 });
  return validateRecipe(value, {
    ...options,
    locate: (path, atKey) => lines(offsetOf(doc, path, atKey)),
  });
}

function jsonSyntaxProblem(
  text: string,
  message: string,
  file: string,
): RecipeProblem {
  const found = jsonSyntaxError(text);
  if (!found) {
    // Our reading and JSON.parse disagree: say what JSON.parse said.
    return {
      file,
      path: "",
      message: `invalid JSON: ${message.split("\n")[0]}`,
    };
  }
  const before = text.slice(0, found.offset).split("\n");
  return {
    file,
    line: before.length,
    column: (before.at(-1)?.length ?? 0) + 1,
    path: "",
    message: `invalid JSON: ${found.message}`,
  };
}

/**
 * Finds the first syntax error in JSON text and says what was expected there.
 * JSON.parse's messages do not always give a position (V8 quotes the text
 * instead), and a recipe error must point at a line and column.
 */
function jsonSyntaxError(
  text: string,
): { offset: number; message: string } | undefined {
  let i = 0;
  class Stop {
    constructor(readonly offset: number, readonly message: string) {}
  }
  const here =
    () => (i >= text.length ? "the end of the file" : JSON.stringify(text[i]));
  const fail = (expected: string, note = ""): never => {
    throw new Stop(i, `expected ${expected}, found ${here()}${note}`);
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const string = () => {
    const start = i;
    i++;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') {
        i++;
        return;
      }
      if (c === "\\") i++;
      else if (c < " ") {
        throw new Stop(
          i,
          "a string cannot hold a raw control character or line break (write \\n)",
        );
      }
      i++;
    }
    throw new Stop(start, "this string has no closing quote");
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') {
          fail(
            "a property name in double quotes",
            text[i] === "}" ? " (JSON allows no comma before })" : "",
          );
        }
        string();
        ws();
        if (text[i] !== ":") fail('":" after the property name');
        i++;
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        fail('"," or "}"');
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] === "]") {
          fail("a value", " (JSON allows no comma before ])");
        }
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        fail('"," or "]"');
      }
    }
    if (c === '"') return string();
    const literal =
      /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)/
        .exec(text.slice(i));
    if (literal) {
      i += literal[0].length;
      return;
    }
    fail(
      "a value (a string, number, object, list, true, false or null)",
      c === "/"
        ? " (JSON has no comments: write the recipe in YAML to keep them)"
        : "",
    );
  };
  try {
    value();
    ws();
    if (i < text.length) fail("the end of the file after the recipe");
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, message: e.message };
    throw e;
  }
  return undefined;
}

function nodeAt(doc: Document, path: (string | number)[]): unknown {
  return path.length === 0 ? doc.contents : doc.getIn(path, true);
}

function keyNode(doc: Document, path: (string | number)[]): unknown {
  const parent = nodeAt(doc, path.slice(0, -1));
  if (!isMap(parent)) return undefined;
  const key = path.at(-1);
  return parent.items.find((p) =>
    (isScalar(p.key) ? p.key.value : p.key) === key
  )?.key;
}

function start(node: unknown): number | undefined {
  return isNode(node) ? node.range?.[0] : undefined;
}

/**
 * Where a problem at `path` should point: the key for an unknown key or for a
 * mapping as a whole, the value for a bad value, and the nearest enclosing
 * key for a missing one.
 */
function offsetOf(
  doc: Document,
  path: (string | number)[],
  atKey: boolean,
): number {
  if (atKey) {
    const at = start(keyNode(doc, path));
    if (at !== undefined) return at;
  }
  for (let n = path.length; n >= 0; n--) {
    const prefix = path.slice(0, n);
    const node = nodeAt(doc, prefix);
    const named = typeof prefix.at(-1) === "string";
    if (isNode(node) && !isScalar(node) && named) {
      const at = start(keyNode(doc, prefix));
      if (at !== undefined) return at;
    }
    const at = start(node);
    if (at !== undefined) return at;
    if (named) {
      const key = start(keyNode(doc, prefix));
      if (key !== undefined) return key;
    }
  }
  return 0;
}

/**
 * Reads, parses and validates a recipe file: YAML (`.yaml`, `.yml`), JSON
 * (`.json`), or a TypeScript/JavaScript module whose default export is a
 * recipe (`.ts`, `.js`, `.mts`, `.mjs`; see `defineRecipe`).
 *
 * @param path the recipe file
 * @param options the `--var` names
 * @returns the recipe and where it came from
 * @throws {RecipeError} with every problem found (a missing file is one)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadRecipe } from "./load.ts";
 * const path = await Deno.makeTempFile({ suffix: ".yaml" });
 * await Deno.writeTextFile(path, "name: t\ndevice: {serial: abc}\nsteps: [{log: hello}]\n");
 * const { recipe } = await loadRecipe(path);
 * assert.ok(recipe.name === "t");
 * await Deno.remove(path);
 * ```
 */
export async function loadRecipe(
  path: string,
  options: LoadOptions = {},
): Promise<LoadedRecipe> {
  const absolute = resolve(path);
  const baseDir = dirname(absolute);
  const ext = extname(path).toLowerCase();
  if ([".ts", ".js", ".mts", ".mjs"].includes(ext)) {
    let mod: { default?: unknown };
    try {
      mod = await import(pathToFileURL(absolute).href);
    } catch (e) {
      throw new RecipeError([{
        file: path,
        path: "",
        message: `cannot load the module: ${firstLine(e)}`,
      }]);
    }
    if (mod.default === undefined) {
      throw new RecipeError([{
        file: path,
        path: "",
        message:
          "expected a module whose default export is a recipe (export default defineRecipe({...})), " +
          "found no default export",
      }]);
    }
    return {
      recipe: validateRecipe(mod.default, { ...options, file: path, baseDir }),
      file: path,
      baseDir,
    };
  }
  let text: string;
  try {
    text = readFileSync(absolute, "utf8");
  } catch (e) {
    const reason = (e as { code?: string }).code === "ENOENT"
      ? "no such file"
      : firstLine(e);
    throw new RecipeError([{
      file: path,
      path: "",
      message: `cannot read the recipe: ${reason}`,
    }]);
  }
  return {
    recipe: parseRecipe(text, { ...options, file: path, baseDir }),
    file: path,
    baseDir,
  };
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "";
}

// ---------------------------------------------------------------------------
// Checks across the recipe
//
// These read the recipe as written (before zod), so that they run even when
// some field is wrong, and all problems are reported at once. Anything
// malformed is skipped here: the schema reports it.

type Raw = Record<string, unknown>;

function isRaw(v: unknown): v is Raw {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function literalInt(v: unknown): number | undefined {
  if (typeof v !== "number" && typeof v !== "string") return undefined;
  try {
    return parseInteger(v);
  } catch {
    return undefined;
  }
}

const hex2 = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;
const TRANSFER_KINDS = ["bulk", "interrupt", "iso"];
const ENDPOINT_KINDS = ["bulk", "interrupt", "iso", "stream", "clearHalt"];
const DATA_ONLY = ["bytes", "data", "offset", "mask", "text", "pattern"];

function checkRecipe(
  raw: unknown,
  cliVars: readonly string[],
  baseDir: string | undefined,
): SchemaProblem[] {
  if (!isRaw(raw)) return [];
  const problems: SchemaProblem[] = [];
  const problem = (path: (string | number)[], message: string) =>
    problems.push({ path, message, atKey: false });
  const defined = new Set<string>([
    ...(isRaw(raw.vars) ? Object.keys(raw.vars) : []),
    ...cliVars,
  ]);

  const checkReferences = (value: unknown, path: (string | number)[]) => {
    if (typeof value === "string") {
      let names: string[];
      try {
        names = parseTemplate(value).flatMap((
          p,
        ) => ("name" in p ? [p.name] : []));
      } catch {
        return; // bad syntax: the schema says so
      }
      for (const name of new Set(names)) {
        if (defined.has(name)) continue;
        const later = savedAt.get(name);
        if (later) {
          problem(path, `variable "${name}" is used before ${later} saves it`);
          continue;
        }
        const guess = nearest(name, [...defined]);
        const known = defined.size
          ? `defined at this point: ${[...defined].join(", ")}`
          : "no variables are defined at this point";
        problem(
          path,
          `unknown variable "${name}"${
            guess ? `; did you mean "${guess}"?` : ""
          } (${known})`,
        );
      }
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => checkReferences(v, [...path, i]));
    } else if (isRaw(value)) {
      for (const [k, v] of Object.entries(value)) {
        checkReferences(v, [...path, k]);
      }
    }
  };

  // Where each variable is saved, to tell "saved later" from "unknown".
  const savedAt = new Map<string, string>();
  const findSaves = (steps: unknown, path: (string | number)[]) => {
    if (!Array.isArray(steps)) return;
    steps.forEach((step, i) => {
      if (!isRaw(step)) return;
      for (const [kind, body] of Object.entries(step)) {
        if (!isRaw(body)) continue;
        const where = formatPath([...path, i, kind]);
        if (kind === "repeat") {
          findSaves(body.steps, [...path, i, kind, "steps"]);
        }
        if (
          kind === "repeat" && typeof body.var === "string" &&
          !savedAt.has(body.var)
        ) {
          savedAt.set(body.var, where);
        }
        if (isRaw(body.save)) {
          for (const name of Object.keys(body.save)) {
            if (!savedAt.has(name)) savedAt.set(name, where);
          }
        }
      }
    });
  };
  findSaves(raw.steps, ["steps"]);

  checkReferences(raw.device, ["device"]);
  checkReferences(raw.interfaces, ["interfaces"]);

  const interfaces: unknown[] = Array.isArray(raw.interfaces)
    ? raw.interfaces
    : [];
  const claimed = interfaces.map((i) => literalInt(isRaw(i) ? i.number : i));
  let saidUnclaimed = false;

  const checkData = (data: unknown, path: (string | number)[]) => {
    if (
      !isRaw(data) || typeof data.file !== "string" || baseDir === undefined
    ) return;
    if (data.file.includes("${")) return;
    const file = resolve(baseDir, data.file);
    if (!existsSync(file)) {
      problem([...path, "file"], `file not found: ${file}`);
    }
  };

  const walk = (steps: unknown, path: (string | number)[]) => {
    if (!Array.isArray(steps)) return;
    steps.forEach((step, i) => {
      const p = [...path, i];
      if (!isRaw(step)) return;
      const keys = Object.keys(step);
      const kinds = keys.filter((k) =>
        (STEP_KINDS as readonly string[]).includes(k)
      );
      if (keys.length === 0) {
        problem(
          p,
          `expected a step (one of ${
            STEP_KINDS.join(", ")
          }), found an empty mapping`,
        );
      } else if (kinds.length > 1) {
        problem(
          p,
          `a step has exactly one kind, found ${
            kinds.join(" and ")
          } (start a new "- " item for each step)`,
        );
      }
      for (const kind of kinds) {
        const body = step[kind];
        const bp = [...p, kind];
        if (kind === "repeat") {
          if (!isRaw(body)) continue;
          const { steps: inner, ...rest } = body;
          checkReferences(rest, bp);
          if (typeof body.var === "string") defined.add(body.var);
          walk(inner, [...bp, "steps"]);
          continue;
        }
        checkReferences(body, bp);
        if (!isRaw(body)) continue;
        checkStep(kind, body, bp);
        if (isRaw(body.save)) {
          for (const name of Object.keys(body.save)) defined.add(name);
        }
      }
    });
  };

  const checkStep = (kind: string, body: Raw, bp: (string | number)[]) => {
    const ep = literalInt(body.endpoint);
    if (
      ENDPOINT_KINDS.includes(kind) && interfaces.length === 0 && !saidUnclaimed
    ) {
      saidUnclaimed = true;
      problem(
        [...bp, "endpoint"],
        "no interface is claimed: add interfaces: [0] (the interface this endpoint belongs to) to the recipe",
      );
    }
    if (
      TRANSFER_KINDS.includes(kind) && ep !== undefined &&
      (body.in === undefined) !== (body.out === undefined)
    ) {
      const isIn = (ep & 0x80) !== 0;
      if (body.in !== undefined && !isIn) {
        problem(
          [...bp, "endpoint"],
          `${
            hex2(ep)
          } is an OUT endpoint (bit 7 clear), but this step reads from it (in); IN endpoints are 0x81-0x8f`,
        );
      }
      if (body.out !== undefined && isIn) {
        problem(
          [...bp, "endpoint"],
          `${
            hex2(ep)
          } is an IN endpoint (bit 7 set), but this step writes to it (out); OUT endpoints are 0x01-0x0f`,
        );
      }
    }
    if (
      kind === "stream" && ep !== undefined && (ep & 0x80) !== 0 &&
      body.data !== undefined
    ) {
      problem(
        [...bp, "data"],
        `data is written on OUT streams only, and ${
          hex2(ep)
        } is an IN endpoint`,
      );
    }
    if (kind === "control" || TRANSFER_KINDS.includes(kind)) {
      if (isRaw(body.expect)) {
        checkData(body.expect.data, [...bp, "expect", "data"]);
      }
      if (body.out !== undefined) {
        checkData(body.out, [...bp, "out"]);
        if (isRaw(body.expect)) {
          for (const k of DATA_ONLY) {
            if (body.expect[k] !== undefined) {
              problem(
                [...bp, "expect", k],
                "an OUT transfer has no data to check: expect status and length only",
              );
            }
          }
        }
        if (body.save !== undefined) {
          problem([...bp, "save"], "an OUT transfer has no data to save from");
        }
      }
      if (isRaw(body.expect) && body.expect.minRate !== undefined) {
        problem(
          [...bp, "expect", "minRate"],
          "minRate applies to stream steps only",
        );
      }
    }
    if (kind === "stream") checkData(body.data, [...bp, "data"]);
    if (kind === "selectAlternate") {
      const n = literalInt(body.interface);
      // Only when every claimed interface is written as a number can we tell.
      if (
        n !== undefined && !claimed.includes(n) && !claimed.includes(undefined)
      ) {
        problem(
          [...bp, "interface"],
          `interface ${n} is not claimed (claimed: ${
            claimed.length ? claimed.join(", ") : "none"
          }); add it to interfaces`,
        );
      }
    }
  };

  walk(raw.steps, ["steps"]);
  return problems;
}
