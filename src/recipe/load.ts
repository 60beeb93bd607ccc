/**
 * Loading recipes from YAML, JSON or a TypeScript module, and reporting every
 * problem in one go as `file:line:column: steps[2].bulk.endpoint: message`.
 *
 * Nothing here touches a device: a recipe is rejected before any device is
 * opened, and so is anything a run would refuse without asking the device
 * (see check.ts).
 *
 * A recipe is untrusted input, and every cost of loading one is bounded: the
 * file's size ({@linkcode MAX_RECIPE_BYTES}), the nesting of its lists and
 * mappings ({@linkcode MAX_NESTING}, {@linkcode MAX_REPEAT_NESTING}), what
 * YAML aliases may expand to ({@linkcode MAX_ALIAS_VALUES}), the time a
 * TypeScript module may take to load ({@linkcode MODULE_TIMEOUT_MS}), and
 * the problems listed in a message ({@linkcode MAX_LISTED_PROBLEMS}). Loading
 * takes time linear in the file's size, and nothing recurses deeper than
 * the nesting limit.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { hex } from "../validate.ts";
import {
  type Alias,
  Composer,
  type CST,
  type Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  type Node as YamlNode,
  type Pair,
  Parser,
  type YAMLMap,
  type YAMLSeq,
} from "yaml";
import { checkValues } from "./check.ts";
import { listNames, parseTemplate, type VarValue } from "./interpolate.ts";
import {
  DEVICE_STEP_KINDS,
  issuesToProblems,
  nearest,
  type Recipe,
  RecipeSchema,
  type SchemaProblem,
  SINGLE_DEVICE,
  STEP_KINDS,
} from "./schema.ts";
import { formatDuration, formatSize, parseInteger } from "./values.ts";

// ---------------------------------------------------------------------------
// Limits

/**
 * The largest recipe file, in bytes: 1 MiB. The biggest example recipe is
 * under 4 KiB; a file larger than this is refused before it is read (and at
 * most this much is ever read, should it grow meanwhile). Only regular files
 * are read: `/dev/zero` or a FIFO would never end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadRecipe, MAX_RECIPE_BYTES, RecipeError } from "./load.ts";
 * const path = await Deno.makeTempFile({ suffix: ".yaml" });
 * await Deno.writeTextFile(path, "#".repeat(MAX_RECIPE_BYTES + 1));
 * await assert.rejects(loadRecipe(path), RecipeError);
 * await Deno.remove(path);
 * ```
 */
export const MAX_RECIPE_BYTES = 1024 * 1024;

/**
 * How deep lists and mappings may nest in a recipe, counting the recipe
 * itself: 64. A step inside 16 repeats ({@linkcode MAX_REPEAT_NESTING}) is
 * 51 levels deep, its deepest expectation 55; deeper input is refused before
 * it is processed, so that no part of loading or running can run out of
 * stack.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_NESTING, parseRecipe, RecipeError } from "./load.ts";
 * const deep = "[".repeat(MAX_NESTING) + "]".repeat(MAX_NESTING);
 * assert.throws(
 *   () => parseRecipe(`name: x\ndevice: {serial: s}\nsteps: ${deep}\n`, { file: "r.yaml" }),
 *   (e: unknown) => e instanceof RecipeError && e.problems[0]!.line === 3,
 * );
 * ```
 */
export const MAX_NESTING = 64;

/**
 * How deep `repeat` steps may nest: 16.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_REPEAT_NESTING, validateRecipe } from "./load.ts";
 * let steps: unknown[] = [{ log: "innermost" }];
 * for (let i = 0; i < MAX_REPEAT_NESTING; i++) steps = [{ repeat: { count: 1, steps } }];
 * const recipe = validateRecipe({ name: "x", device: { serial: "s" }, steps }, { file: "r" });
 * assert.equal(recipe.steps.length, 1);
 * ```
 */
export const MAX_REPEAT_NESTING = 16;

/**
 * How many values YAML aliases may add to a recipe, all aliases together:
 * 100,000. Each alias stands for a copy of what its anchor holds; without a
 * bound, a few lines of aliases of aliases expand to billions of values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_ALIAS_VALUES, parseRecipe, RecipeError } from "./load.ts";
 * let yaml = "name: x\ndevice: {serial: s}\nsteps: []\nbomb:\n  a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
 * for (let i = 1; i < 10; i++) yaml += `  a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]\n`;
 * assert.ok(10 ** 10 > MAX_ALIAS_VALUES);
 * assert.throws(() => parseRecipe(yaml, { file: "r.yaml" }), RecipeError);
 * ```
 */
export const MAX_ALIAS_VALUES = 100_000;

/**
 * How many values (scalars, lists and mappings) a recipe may hold: 1,000,000,
 * more than a {@linkcode MAX_RECIPE_BYTES} file can. It bounds what a
 * TypeScript module's default export may hand over.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_RECIPE_VALUES, RecipeError, validateRecipe } from "./load.ts";
 * const steps = Array.from({ length: MAX_RECIPE_VALUES }, () => ({ log: "x" }));
 * assert.throws(
 *   () => validateRecipe({ name: "x", device: { serial: "s" }, steps }, { file: "r.ts" }),
 *   RecipeError,
 * );
 * ```
 */
export const MAX_RECIPE_VALUES = 1_000_000;

/**
 * How many problems a {@linkcode RecipeError}'s message lists: 50, then how
 * many more there are. `problems` holds them all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_LISTED_PROBLEMS, RecipeError, validateRecipe } from "./load.ts";
 * const steps = Array.from({ length: 200 }, () => ({ delay: "soon" }));
 * try {
 *   validateRecipe({ name: "x", device: { serial: "s" }, steps }, { file: "r" });
 * } catch (e) {
 *   assert.ok(e instanceof RecipeError && e.problems.length === 200);
 *   const lines = e.message.split("\n");
 *   assert.equal(lines.length, MAX_LISTED_PROBLEMS + 1);
 *   assert.equal(lines.at(-1), "r: and 150 more problems (only the first 50 are listed)");
 * }
 * ```
 */
export const MAX_LISTED_PROBLEMS = 50;

/**
 * How long a TypeScript or JavaScript recipe module may take to load before
 * it is reported as a problem, in milliseconds: 10 s. A module whose
 * top-level `await` never settles would otherwise hang `usb run`. Tests set
 * {@linkcode LoadOptions.moduleTimeout} lower.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODULE_TIMEOUT_MS } from "./load.ts";
 * assert.equal(MODULE_TIMEOUT_MS, 10_000);
 * ```
 */
export const MODULE_TIMEOUT_MS = 10_000;

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
  /**
   * An error listing every problem found.
   *
   * @param problems every problem found; the message lists the first
   * {@linkcode MAX_LISTED_PROBLEMS}, then how many more there are
   */
  constructor(problems: RecipeProblem[]) {
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map(formatProblem);
    const more = problems.length - listed.length;
    if (more > 0) {
      listed.push(
        `${problems[0]!.file}: and ${more} more problem${
          more === 1 ? "" : "s"
        } (only the first ${MAX_LISTED_PROBLEMS} are listed)`,
      );
    }
    super(listed.join("\n"));
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
   * them are not unknown. With their values (a mapping), fields that use them
   * are also checked as the run will see them.
   */
  vars?: readonly string[] | Readonly<Record<string, VarValue>>;
  /**
   * How long a TypeScript module may take to load, in milliseconds (default
   * {@linkcode MODULE_TIMEOUT_MS}).
   */
  moduleTimeout?: number;
}

/** The `--var` names, and their values when they are known. */
function cliVars(
  vars: LoadOptions["vars"],
): { names: string[]; values: Record<string, VarValue> | undefined } {
  if (vars === undefined) return { names: [], values: undefined };
  if (Array.isArray(vars)) return { names: [...vars], values: undefined };
  const values = { ...vars as Readonly<Record<string, VarValue>> };
  return { names: Object.keys(values), values };
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

/**
 * Finds where a value is in the recipe's source: the line and column of the
 * value at `path` (or of its key, when `atKey`), or undefined when unknown.
 */
export type Locator = (
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
  return validate(value, options, []);
}

/** {@linkcode validateRecipe}, with problems the file format found already. */
function validate(
  value: unknown,
  options: LoadOptions & { file: string; locate?: Locator; baseDir?: string },
  found: RecipeProblem[],
): Recipe {
  // Nothing below may see a value that could exhaust the stack or the time.
  const shape = checkShape(value);
  if (shape) {
    throw new RecipeError(
      locateAll([shape], options.file, options.locate, found),
    );
  }
  const cli = cliVars(options.vars);
  const result = RecipeSchema.safeParse(value);
  const problems: SchemaProblem[] = result.success
    ? []
    : issuesToProblems(result.error.issues);
  problems.push(...checkRecipe(value, cli.names, options.baseDir));
  const invalidSteps = new Set<number>();
  const invalidFinally = new Set<number>();
  for (const issue of result.error?.issues ?? []) {
    const [top, i] = issue.path;
    if (top === "steps" && typeof i === "number") invalidSteps.add(i);
    if (top === "finally" && typeof i === "number") invalidFinally.add(i);
  }
  problems.push(
    ...checkValues(value, result.success ? result.data : undefined, {
      cliNames: cli.names,
      invalidSteps,
      invalidFinally,
      ...(cli.values ? { cliValues: cli.values } : {}),
      ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }),
    }),
  );
  if (problems.length === 0 && found.length === 0 && result.success) {
    return result.data;
  }
  throw new RecipeError(
    locateAll(problems, options.file, options.locate, found),
  );
}

function nestingMessage(): string {
  return `lists and mappings nest more than ${MAX_NESTING} levels deep here; a recipe needs far fewer`;
}

/**
 * Checks that a value can be walked safely: plain objects and arrays nested
 * at most {@linkcode MAX_NESTING} deep (a cycle is infinitely deep), holding
 * at most {@linkcode MAX_RECIPE_VALUES} values. Iterative: the value may be
 * anything a module exported.
 */
function checkShape(value: unknown): SchemaProblem | undefined {
  type Entry = [unknown, number, (string | number)[]] | { leave: object };
  const stack: Entry[] = [[value, 1, []]];
  const ancestors = new Set<object>();
  let count = 0;
  while (stack.length > 0) {
    const entry = stack.pop()!;
    if (!Array.isArray(entry)) {
      ancestors.delete(entry.leave);
      continue;
    }
    const [v, depth, path] = entry;
    if (++count > MAX_RECIPE_VALUES) {
      return {
        path,
        atKey: false,
        message:
          `the recipe holds more than ${MAX_RECIPE_VALUES} values (lists, mappings and scalars)`,
      };
    }
    if (v === null || typeof v !== "object") continue;
    const array = Array.isArray(v);
    const proto = Object.getPrototypeOf(v);
    if (!array && proto !== Object.prototype && proto !== null) continue;
    if (ancestors.has(v)) {
      return {
        path,
        atKey: false,
        message:
          "this list or mapping is inside itself (the recipe is circular)",
      };
    }
    if (depth > MAX_NESTING) {
      return { path, atKey: false, message: nestingMessage() };
    }
    ancestors.add(v);
    stack.push({ leave: v });
    const entries: [string | number, unknown][] = array
      ? (v as unknown[]).map((x, i) => [i, x])
      : Object.entries(v);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, x] = entries[i]!;
      stack.push([x, depth + 1, [...path, k]]);
    }
  }
  return undefined;
}

function locateAll(
  problems: SchemaProblem[],
  file: string,
  locate: Locator | undefined,
  found: RecipeProblem[] = [],
): RecipeProblem[] {
  const seen = new Set<string>();
  const located = [
    ...found,
    ...problems.map((p) => ({
      file,
      ...locate?.(p.path, p.atKey),
      path: formatPath(p.path),
      message: p.message,
    } as RecipeProblem)),
  ].map((problem, order) => ({ order, problem })).filter(({ problem }) => {
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
 * assert.ok(recipe.device?.productId === 0xa4a0);
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
  const file = options.file;
  const format = options.format ??
    (extname(file).toLowerCase() === ".json" ? "json" : "yaml");
  // A string's length counts UTF-16 units, never more than its UTF-8 bytes.
  if (text.length > MAX_RECIPE_BYTES) {
    throw new RecipeError([{ file, path: "", message: tooLarge() }]);
  }
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
        jsonSyntaxProblem(text, (e as Error).message, file),
      ]);
    }
  }
  // The YAML reading (also of JSON, for positions) in its steps, so that
  // each is bounded: the parser is iterative, the composer recursive (so the
  // nesting is checked in between), and the conversion to values is ours
  // (the library's resolves each alias by scanning the document, and checks
  // duplicate keys by scanning the mapping: quadratic).
  const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text));
  const deep = tooDeep(tokens);
  if (deep !== undefined) {
    throw new RecipeError([
      { file, ...lines(deep), path: "", message: nestingMessage() },
    ]);
  }
  const docs = Array.from(
    new Composer({ prettyErrors: false, uniqueKeys: false }).compose(
      tokens,
      true,
      text.length,
    ),
  );
  const doc = docs[0]!;
  const errors = doc.errors.map((e) => ({
    offset: e.pos[0],
    message: e.message.split("\n")[0] ?? "",
  }));
  if (docs.length > 1) {
    errors.push({
      offset: docs[1]!.range[0],
      message: "a recipe is one document, and a second one starts here",
    });
  }
  if (errors.length > 0) {
    if (format === "json") {
      // JSON.parse accepted it, so the YAML reading is only for positions.
      return validate(JSON.parse(text), options, []);
    }
    throw new RecipeError(errors.map((e) => ({
      file,
      ...lines(e.offset),
      path: "",
      message: `invalid YAML: ${e.message}`,
    })));
  }
  const read = readYaml(doc, text, format === "json");
  const located = read.problems.map((p) => ({
    file,
    ...lines(p.offset),
    path: formatPath(p.path),
    message: p.message,
  }));
  if (read.fatal) throw new RecipeError(located);
  return validate(format === "json" ? JSON.parse(text) : read.value, {
    ...options,
    locate: (path, atKey) => lines(read.offsetOf(path, atKey)),
  }, located);
}

function tooLarge(bytes?: number): string {
  const limit = `a recipe file may be at most ${
    formatSize(MAX_RECIPE_BYTES)
  } (${MAX_RECIPE_BYTES} bytes)`;
  return bytes === undefined
    ? `the recipe is larger than ${formatSize(MAX_RECIPE_BYTES)}; ${limit}`
    : `the recipe is ${formatSize(bytes)} (${bytes} bytes); ${limit}`;
}

/**
 * The offset of the first list or mapping nested deeper than
 * {@linkcode MAX_NESTING} in a YAML token tree, walked without recursion.
 */
function tooDeep(tokens: readonly CST.Token[]): number | undefined {
  const stack: [CST.Token, number][] = [];
  for (let i = tokens.length - 1; i >= 0; i--) stack.push([tokens[i]!, 0]);
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (token.type === "document") {
      if (token.value) stack.push([token.value, depth]);
      continue;
    }
    if (
      token.type !== "block-map" && token.type !== "block-seq" &&
      token.type !== "flow-collection"
    ) continue;
    if (depth + 1 > MAX_NESTING) return token.offset;
    const items = token.items as CST.CollectionItem[];
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i]!;
      if (item.value) stack.push([item.value, depth + 1]);
      if (item.key) stack.push([item.key, depth + 1]);
    }
  }
  return undefined;
}

/** A problem the YAML reading found, at an offset in the text. */
interface YamlProblem {
  offset: number;
  path: (string | number)[];
  message: string;
}

type YamlCollection = YAMLMap<unknown, unknown> | YAMLSeq<unknown>;

/** What a node stands for once its aliases are expanded. */
interface Reading {
  value: unknown;
  /** Values inside, itself included, aliases expanded. */
  size: number;
  /** Levels of lists and mappings, itself included (0 for a scalar). */
  height: number;
}

/**
 * Turns a YAML document into plain values, without recursion and in time
 * linear in its size: a mapping's keys are looked up in a Map (duplicates
 * are errors in YAML, allowed in JSON where the last one wins), an alias
 * stands for the value its anchor's node has (shared, not copied), and what
 * aliases add is counted against {@linkcode MAX_ALIAS_VALUES}.
 *
 * Also finds numbers written with a leading zero (`0525`): YAML 1.2 reads
 * them as decimal, which is never what a person copying `0525:a4a0` from
 * lsusb, or a serial number such as `0001`, means.
 *
 * Returns a locator too: the key index built here finds a path's node in
 * time proportional to the path's length.
 */
function readYaml(doc: Document, text: string, json: boolean): {
  value: unknown;
  problems: YamlProblem[];
  fatal: boolean;
  offsetOf: (path: (string | number)[], atKey: boolean) => number;
} {
  const problems: YamlProblem[] = [];
  let fatal = false;
  const keysOf = new Map<YAMLMap<unknown, unknown>, Map<string, Pair>>();
  const aliasTarget = new Map<Alias, YamlNode>();
  const anchors = new Map<string, YamlNode>();
  const readings = new Map<YamlNode, Reading>();
  const open = new Set<YamlNode>();
  let aliased = 0;

  const stop = (
    node: YamlNode | Pair | null | undefined,
    path: (string | number)[],
    message: string,
  ) => {
    problems.push({ offset: startOf(node) ?? 0, path, message });
    fatal = true;
  };

  const scalarReading = (
    node: YamlNode | null | undefined,
    path: (string | number)[],
  ): Reading => {
    if (!isScalar(node)) return { value: null, size: 1, height: 0 };
    const value = node.value;
    if (typeof value === "number" && node.type === "PLAIN" && node.range) {
      const source = text.slice(node.range[0], node.range[1]).trim();
      if (/^[-+]?0[0-9]+$/.test(source)) {
        problems.push({
          offset: node.range[0],
          path,
          message: leadingZero(source, value, path),
        });
      }
    }
    return { value, size: 1, height: 0 };
  };

  const keyText = (key: unknown): string => {
    let node = key;
    if (isAlias(node)) node = anchors.get(node.source);
    if (node === null || node === undefined) return "";
    if (isScalar(node)) return node.value === null ? "" : String(node.value);
    const range = (node as { range?: [number, number] }).range;
    return range ? text.slice(range[0], range[1]) : "";
  };

  interface Frame {
    node: YamlCollection;
    depth: number;
    path: (string | number)[];
    next: number;
    out: Record<string, unknown> | unknown[];
    size: number;
    height: number;
    key: string | number;
  }
  const frames: Frame[] = [];
  let result: Reading | undefined;

  const enter = (
    node: YamlCollection,
    depth: number,
    path: (string | number)[],
    key: string | number,
  ) => {
    if (node.anchor) anchors.set(node.anchor, node);
    open.add(node);
    if (isMap(node)) keysOf.set(node, new Map());
    frames.push({
      node,
      depth,
      path,
      next: 0,
      out: isMap(node) ? {} : [],
      size: 1,
      height: 1,
      key,
    });
  };

  const attach = (frame: Frame, key: string | number, r: Reading) => {
    if (Array.isArray(frame.out)) frame.out.push(r.value);
    else if (key === "__proto__") {
      Object.defineProperty(frame.out, key, {
        value: r.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else frame.out[key] = r.value;
    frame.size += r.size;
    frame.height = Math.max(frame.height, r.height + 1);
  };

  const root = doc.contents as YamlNode | null;
  if (isMap(root) || isSeq(root)) enter(root, 1, [], "");
  else result = scalarReading(root, []);

  while (frames.length > 0 && !fatal) {
    const frame = frames.at(-1)!;
    const items = frame.node.items;
    if (frame.next >= items.length) {
      frames.pop();
      open.delete(frame.node);
      const r = { value: frame.out, size: frame.size, height: frame.height };
      readings.set(frame.node, r);
      const parent = frames.at(-1);
      if (parent) attach(parent, frame.key, r);
      else result = r;
      continue;
    }
    const item = items[frame.next++];
    let key: string | number;
    let child: YamlNode | null | undefined;
    if (isMap(frame.node)) {
      const pair = item as Pair;
      if (isScalar(pair.key) && pair.key.anchor) {
        anchors.set(pair.key.anchor, pair.key);
        readings.set(pair.key, { value: pair.key.value, size: 1, height: 0 });
      }
      key = keyText(pair.key);
      const keys = keysOf.get(frame.node)!;
      if (keys.has(key) && !json) {
        stop(pair.key as YamlNode, [], "invalid YAML: Map keys must be unique");
        break;
      }
      keys.set(key, pair);
      child = pair.value as YamlNode | null;
    } else {
      key = frame.next - 1;
      child = item as YamlNode | null;
    }
    const path = [...frame.path, key];
    if (isAlias(child)) {
      const target = anchors.get(child.source);
      if (target === undefined) {
        stop(
          child,
          path,
          `the alias *${child.source} has no anchor &${child.source} before it`,
        );
        break;
      }
      if (open.has(target)) {
        stop(
          child,
          path,
          `the alias *${child.source} is inside the node it stands for (a recipe cannot contain itself)`,
        );
        break;
      }
      aliasTarget.set(child, target);
      const r = readings.get(target) ?? { value: null, size: 1, height: 0 };
      if (frame.depth + r.height > MAX_NESTING) {
        stop(child, path, nestingMessage());
        break;
      }
      aliased += r.size;
      if (aliased > MAX_ALIAS_VALUES) {
        stop(
          child,
          path,
          `aliases expand to more than ${MAX_ALIAS_VALUES} values (MAX_ALIAS_VALUES); write the data out, or use fewer aliases of aliases`,
        );
        break;
      }
      attach(frame, key, r);
    } else if (isMap(child) || isSeq(child)) {
      // The token tree was checked, but a flow pair ([a: b]) adds a level.
      if (frame.depth + 1 > MAX_NESTING) {
        stop(child, path, nestingMessage());
        break;
      }
      enter(child, frame.depth + 1, path, key);
    } else {
      const r = scalarReading(child, path);
      if (isScalar(child) && child.anchor) {
        anchors.set(child.anchor, child);
        readings.set(child, r);
      }
      attach(frame, key, r);
    }
  }

  // Where a problem at `path` points: see offsetOf's comment.
  const resolveAlias = (node: unknown): unknown =>
    isAlias(node) ? aliasTarget.get(node) : node;
  const nodeAt = (path: (string | number)[]): unknown => {
    let node: unknown = root;
    for (const p of path) {
      node = resolveAlias(node);
      if (isMap(node)) node = keysOf.get(node)?.get(String(p))?.value;
      else if (isSeq(node) && typeof p === "number") node = node.items[p];
      else return undefined;
    }
    return node;
  };
  const keyNode = (path: (string | number)[]): unknown => {
    const parent = resolveAlias(nodeAt(path.slice(0, -1)));
    if (!isMap(parent)) return undefined;
    return keysOf.get(parent)?.get(String(path.at(-1)))?.key;
  };
  return {
    value: result?.value,
    problems,
    fatal,
    offsetOf: (path, atKey) => offsetOf(nodeAt, keyNode, path, atKey),
  };
}

function startOf(node: unknown): number | undefined {
  return isNode(node) ? node.range?.[0] : undefined;
}

/** The message for a number written with a leading zero. */
function leadingZero(
  source: string,
  value: number,
  path: readonly (string | number)[],
): string {
  const digits = source.replace(/^[-+]/, "");
  const isId = path.length === 2 && path[0] === "device" &&
    (path[1] === "vendorId" || path[1] === "productId");
  if (isId) {
    return `${source} is read as the decimal ${value} (0x${
      value.toString(16).padStart(4, "0")
    }): ids are hexadecimal, as lsusb prints them; write 0x${digits}`;
  }
  const key = path.at(-1);
  const text = path[0] === "vars" || path.includes("log") ||
    (typeof key === "string" && TEXT_KEYS.has(key));
  return `${source} is read as the number ${value} (YAML drops leading zeros): write ${value}, or 0x${digits} for hex${
    text ? `, or "${source}" for text` : ""
  }`;
}

/** Fields whose value is text, where a leading zero may be meant. */
const TEXT_KEYS = new Set([
  "serial",
  "port",
  "path",
  "text",
  "equals",
  "regex",
  "file",
  "name",
  "description",
]);

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
    message: found.nesting ? found.message : `invalid JSON: ${found.message}`,
  };
}

/**
 * Finds the first syntax error in JSON text and says what was expected there.
 * JSON.parse's messages do not always give a position (V8 quotes the text
 * instead), and a recipe error must point at a line and column.
 */
function jsonSyntaxError(
  text: string,
): { offset: number; message: string; nesting?: boolean } | undefined {
  let i = 0;
  let depth = 0;
  class Stop {
    constructor(
      readonly offset: number,
      readonly message: string,
      readonly nesting = false,
    ) {}
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
  const object = (): void => {
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
  };
  const array = (): void => {
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
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      // The scan recurses once a level: it stops where the recipe would.
      if (++depth > MAX_NESTING) throw new Stop(i, nestingMessage(), true);
      try {
        return c === "{" ? object() : array();
      } finally {
        depth--;
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
    if (e instanceof Stop) {
      return { offset: e.offset, message: e.message, nesting: e.nesting };
    }
    throw e;
  }
  return undefined;
}

/**
 * Where a problem at `path` should point: the key for an unknown key or for a
 * mapping as a whole, the value for a bad value, and the nearest enclosing
 * key for a missing one.
 */
function offsetOf(
  nodeAt: (path: (string | number)[]) => unknown,
  keyNode: (path: (string | number)[]) => unknown,
  path: (string | number)[],
  atKey: boolean,
): number {
  if (atKey) {
    const at = startOf(keyNode(path));
    if (at !== undefined) return at;
  }
  for (let n = path.length; n >= 0; n--) {
    const prefix = path.slice(0, n);
    const node = nodeAt(prefix);
    const named = typeof prefix.at(-1) === "string";
    if (isNode(node) && !isScalar(node) && named) {
      const at = startOf(keyNode(prefix));
      if (at !== undefined) return at;
    }
    const at = startOf(node);
    if (at !== undefined) return at;
    if (named) {
      const key = startOf(keyNode(prefix));
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
 * Only a regular file of at most {@linkcode MAX_RECIPE_BYTES} is read; a
 * module that has not loaded after {@linkcode MODULE_TIMEOUT_MS} is a
 * problem at its line 1.
 *
 * @param path the recipe file
 * @param options the `--var` names (or names and values), and the module
 * timeout
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
  const cannot = (message: string) =>
    new RecipeError([{ file: path, path: "", message }]);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(absolute);
  } catch (e) {
    throw cannot(
      `cannot read the recipe: ${
        e instanceof Deno.errors.NotFound ? "no such file" : firstLine(e)
      }`,
    );
  }
  if (!info.isFile) {
    throw cannot(
      info.isDirectory
        ? "cannot read the recipe: it is a directory"
        : "cannot read the recipe: it is not a regular file (a device, a FIFO or a socket never ends); save the recipe to a file",
    );
  }
  if (info.size > MAX_RECIPE_BYTES) throw cannot(tooLarge(info.size));
  if ([".ts", ".js", ".mts", ".mjs"].includes(ext)) {
    const timeout = options.moduleTimeout ?? MODULE_TIMEOUT_MS;
    const answer = await importInWorker(pathToFileURL(absolute).href, timeout);
    if (answer === "late") {
      throw new RecipeError([{
        file: path,
        line: 1,
        column: 1,
        path: "",
        message: `the module did not finish loading within ${
          formatDuration(timeout)
        } (a top-level await that never settles?)`,
      }]);
    }
    if ("error" in answer) throw cannot(answer.error);
    const mod = { default: answer.found ? answer.value : undefined };
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
    text = await readAtMost(absolute, MAX_RECIPE_BYTES);
  } catch (e) {
    if (e instanceof RangeError) throw cannot(e.message);
    throw cannot(`cannot read the recipe: ${firstLine(e)}`);
  }
  return {
    recipe: parseRecipe(text, { ...options, file: path, baseDir }),
    file: path,
    baseDir,
  };
}

/**
 * Imports a module in a worker (module_worker.ts) and hands back its default
 * export, or "late" when it has not loaded within `timeout` ms: the worker is
 * then terminated, whatever the module is waiting for.
 */
async function importInWorker(
  url: string,
  timeout: number,
): Promise<
  { found: boolean; value: unknown } | { error: string } | "late"
> {
  const worker = new Worker(new URL("./module_worker.ts", import.meta.url), {
    type: "module",
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await new Promise((resolve) => {
      timer = setTimeout(() => resolve("late"), timeout);
      worker.onmessage = (e) => resolve(e.data);
      worker.onmessageerror = () =>
        resolve({ error: "the default export is not plain data" });
      worker.onerror = (e) => {
        e.preventDefault(); // the worker's error is the module's, not ours
        resolve({
          error: `cannot load the module: ${e.message.split("\n")[0]}`,
        });
      };
      worker.postMessage(url);
    });
  } finally {
    clearTimeout(timer);
    worker.terminate();
  }
}

/**
 * Reads a file as UTF-8, but never more than `limit` bytes: the file may grow
 * between the size check and the read.
 */
async function readAtMost(path: string, limit: number): Promise<string> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(limit + 1);
  let length = 0;
  while (length < buffer.length) {
    const n = await file.read(buffer.subarray(length));
    if (n === null) break;
    length += n;
  }
  if (length > limit) throw new RangeError(tooLarge());
  return new TextDecoder().decode(buffer.subarray(0, length));
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

  // A suggestion compares the name with every defined one: remember it, and
  // stop suggesting after a while, so that many unknown references among many
  // variables stay linear.
  const guesses = new Map<string, string | undefined>();
  const guessFor = (name: string) => {
    if (!guesses.has(name)) {
      guesses.set(
        name,
        guesses.size < 100 ? nearest(name, [...defined]) : undefined,
      );
    }
    return guesses.get(name);
  };

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
        if (later && path[0] === "name") {
          problem(
            path,
            `variable "${name}" is saved by ${later}, but the name is resolved when the run starts: use vars or --var`,
          );
          continue;
        }
        if (later) {
          problem(path, `variable "${name}" is used before ${later} saves it`);
          continue;
        }
        const guess = guessFor(name);
        const known = defined.size
          ? `defined at this point: ${listNames([...defined])}`
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
  findSaves(raw.finally, ["finally"]);

  // The name is interpolated when the run starts, before any step saves.
  checkReferences(raw.name, ["name"]);
  checkReferences(raw.device, ["device"]);
  checkReferences(raw.interfaces, ["interfaces"]);
  checkReferences(raw.devices, ["devices"]);

  // The devices, by name, with the interfaces each claims.
  interface DeviceClaims {
    /** Where its interfaces are written. */
    path: (string | number)[];
    interfaces: unknown[];
    claimed: (number | undefined)[];
    saidUnclaimed: boolean;
  }
  const named = isRaw(raw.devices);
  const devices = new Map<string, DeviceClaims>();
  const addDevice = (
    name: string,
    list: unknown,
    path: (string | number)[],
  ) => {
    const interfaces: unknown[] = Array.isArray(list) ? list : [];
    devices.set(name, {
      path,
      interfaces,
      claimed: interfaces.map((i) => literalInt(isRaw(i) ? i.number : i)),
      saidUnclaimed: false,
    });
  };
  if (named) {
    for (const [name, d] of Object.entries(raw.devices as Raw)) {
      addDevice(
        name,
        isRaw(d) ? d.interfaces : undefined,
        ["devices", name, "interfaces"],
      );
    }
  } else addDevice(SINGLE_DEVICE, raw.interfaces, ["interfaces"]);
  const deviceNames = [...devices.keys()];

  for (const d of devices.values()) {
    const firstClaim = new Map<number, number>();
    d.claimed.forEach((n, i) => {
      if (n === undefined) return;
      const first = firstClaim.get(n);
      if (first === undefined) firstClaim.set(n, i);
      else {
        problem(
          [...d.path, i],
          `interface ${n} is already claimed by ${
            formatPath([...d.path, first])
          }; list each interface once`,
        );
      }
    });
  }

  /**
   * The device a step acts on: the one it names, or the recipe's only one.
   * Says what is wrong, and gives undefined, when that is not clear.
   */
  const deviceOf = (
    body: unknown,
    bp: (string | number)[],
  ): DeviceClaims | undefined => {
    const given = isRaw(body) ? body.device : undefined;
    if (typeof given !== "string") {
      if (devices.size === 1) return devices.values().next().value;
      if (given === undefined && devices.size > 1) {
        problem(
          bp,
          `this recipe has several devices (${
            deviceNames.join(", ")
          }): say which one this step acts on, such as device: ${
            deviceNames[0]
          }`,
        );
      }
      return undefined;
    }
    const found = devices.get(given);
    if (found && (named || given === SINGLE_DEVICE)) return found;
    if (!named) {
      problem(
        [...bp, "device"],
        `this recipe has one device (device: {...}), and steps act on it without naming it; to name devices, write them as devices: {${given}: {...}}`,
      );
      return undefined;
    }
    const guess = nearest(given, deviceNames);
    problem(
      [...bp, "device"],
      `unknown device "${given}"${
        guess ? `; did you mean "${guess}"?` : ""
      } (devices: ${deviceNames.join(", ") || "none"})`,
    );
    return undefined;
  };

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

  const walk = (steps: unknown, path: (string | number)[], repeats = 0) => {
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
          if (repeats + 1 > MAX_REPEAT_NESTING) {
            problem(
              bp,
              `repeats nest more than ${MAX_REPEAT_NESTING} deep here (MAX_REPEAT_NESTING); flatten the inner ones into a larger count`,
            );
            continue;
          }
          walk(inner, [...bp, "steps"], repeats + 1);
          continue;
        }
        checkReferences(body, bp);
        const device = DEVICE_STEP_KINDS.includes(kind)
          ? deviceOf(body, bp)
          : undefined;
        if (!isRaw(body)) continue;
        if (device) checkStep(kind, body, bp, device);
        if (isRaw(body.save)) {
          for (const name of Object.keys(body.save)) defined.add(name);
        }
      }
    });
  };

  const checkStep = (
    kind: string,
    body: Raw,
    bp: (string | number)[],
    device: DeviceClaims,
  ) => {
    const ep = literalInt(body.endpoint);
    if (
      ENDPOINT_KINDS.includes(kind) && device.interfaces.length === 0 &&
      !device.saidUnclaimed
    ) {
      device.saidUnclaimed = true;
      problem(
        [...bp, "endpoint"],
        named
          ? `no interface of ${
            formatPath(device.path.slice(0, -1))
          } is claimed: add interfaces: [0] (the interface this endpoint belongs to) to it`
          : "no interface is claimed: add interfaces: [0] (the interface this endpoint belongs to) to the recipe",
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
            hex(ep)
          } is an OUT endpoint (bit 7 clear), but this step reads from it (in); IN endpoints are 0x81-0x8f`,
        );
      }
      if (body.out !== undefined && isIn) {
        problem(
          [...bp, "endpoint"],
          `${
            hex(ep)
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
        `data is written on OUT streams only, and ${hex(ep)} is an IN endpoint`,
      );
    }
    if (
      kind === "stream" && ep !== undefined && (ep & 0x80) === 0 &&
      isRaw(body.expect) && body.expect.pattern !== undefined
    ) {
      problem(
        [...bp, "expect", "pattern"],
        `a pattern is checked on IN streams only, and ${
          hex(ep)
        } is an OUT endpoint (data chooses what it writes)`,
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
      const claimed = device.claimed;
      // Only when every claimed interface is written as a number can we tell.
      if (
        n !== undefined && !claimed.includes(n) && !claimed.includes(undefined)
      ) {
        problem(
          [...bp, "interface"],
          `interface ${n} is not claimed (claimed: ${
            claimed.length ? claimed.join(", ") : "none"
          }); add it to ${formatPath(device.path)}`,
        );
      }
    }
  };

  walk(raw.steps, ["steps"]);
  // What the steps saved is known to the finally steps (a step that failed
  // before saving leaves it unset: that is found when the run gets there).
  walk(raw.finally, ["finally"]);
  return problems;
}
