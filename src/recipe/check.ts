/**
 * The checks a run would make without asking the device, made when a recipe
 * is loaded instead: `--dry-run` (and every run, before the device is
 * opened) refuses a recipe that could only fail, with the file, line and
 * column of the field at fault.
 *
 * They read the validated recipe, with every `${…}` reference whose value is
 * already known resolved: the recipe's `vars` and the `--var` values, unless
 * a `save` or a repeat's `var` assigns the name (its value is then only
 * known while the run goes). A reference that cannot be resolved yet is
 * checked when its step runs, as before.
 *
 * - a reference whose value does not fit its field (`request: ${r}` with
 *   `r = 300`);
 * - what an IN step expects or saves beyond the bytes it reads (`in`):
 *   `expect.length`, `expect.offset` with `bytes` or `data`, `text`, `save`;
 * - `expect.length: {min, max}` with min above max, a `mask` longer than the
 *   `bytes` it applies to, an OUT step expecting more than it writes;
 * - control data over 65535 bytes (wLength), the `sourcesink` pattern on a
 *   control transfer without `maxPacketSize`;
 * - iso transfers without packets, `packets` on iso IN, packets that do not
 *   add up to the data;
 * - `file` data whose offset or length reaches past the end of the file;
 * - an endpoint given by a reference, once resolved, used in the wrong
 *   direction.
 *
 * @module
 */

import { statSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { hex } from "../validate.ts";
import {
  InterpolationError,
  type Resolved,
  Template,
  type VarValue,
} from "./interpolate.ts";
import {
  type DataSpec,
  MAX_CONTROL_LENGTH,
  type Recipe,
  recipeDevices,
  type SchemaProblem,
  SINGLE_DEVICE,
  type Step,
  STEP_KINDS,
  type StepBody,
  StepSchema,
  tagStep,
} from "./schema.ts";

/**
 * What {@linkcode checkValues} needs besides the recipe.
 *
 * @example `usb run r.yaml --var ep=0x02`, as the loader passes it on
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CheckOptions, checkValues } from "./check.ts";
 * import { RecipeSchema } from "./schema.ts";
 * const raw = {
 *   name: "x", device: { serial: "s" }, interfaces: [0],
 *   steps: [{ bulk: { endpoint: "${ep}", in: 8 } }],
 * };
 * const options: CheckOptions = { cliNames: ["ep"], cliValues: { ep: "0x02" } };
 * const [problem] = checkValues(raw, RecipeSchema.parse(raw), options);
 * assert.match(problem!.message, /0x02 is an OUT endpoint/);
 * ```
 */
export interface CheckOptions {
  /** The `--var` names. */
  cliNames: readonly string[];
  /** The `--var` values, when they are known (as `usb run` knows them). */
  cliValues?: Readonly<Record<string, VarValue>>;
  /** The folder `{ file }` data is read relative to. */
  baseDir?: string;
  /**
   * When the schema refused the recipe: the top-level steps it found wrong
   * (they are not checked again).
   */
  invalidSteps?: ReadonlySet<number>;
  /** The same for the `finally` steps. */
  invalidFinally?: ReadonlySet<number>;
}

type Path = (string | number)[];
type Raw = Record<string, unknown>;

function isRaw(v: unknown): v is Raw {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;
const SAVE_SIZES: Record<string, number> = {
  u8: 1,
  u16le: 2,
  u16be: 2,
  u32le: 4,
  u32be: 4,
};

/**
 * Every name a `save` or a repeat's `var` assigns, anywhere in the recipe as
 * written: their values are only known while the run goes.
 */
function assignedNames(steps: unknown): Set<string> {
  const names = new Set<string>();
  const stack: unknown[] = [steps];
  while (stack.length > 0) {
    const list = stack.pop();
    if (!Array.isArray(list)) continue;
    for (const step of list) {
      if (!isRaw(step)) continue;
      for (const body of Object.values(step)) {
        if (!isRaw(body)) continue;
        if (typeof body.var === "string") names.add(body.var);
        if (isRaw(body.save)) {
          for (const name of Object.keys(body.save)) names.add(name);
        }
        if (body.steps !== undefined) stack.push(body.steps);
      }
    }
  }
  return names;
}

/**
 * Checks a recipe against what a run would refuse without a device.
 *
 * @param raw the recipe as written (for paths, and the steps when the schema
 * refused the recipe)
 * @param recipe the recipe as validated; when the schema refused it, each
 * step that is valid on its own is still checked
 * @param options the `--var` names and values, and the folder of the recipe
 * @returns the problems, at paths of the recipe as written
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkValues } from "./check.ts";
 * import { RecipeSchema } from "./schema.ts";
 * const raw = {
 *   name: "x", device: { serial: "s" }, interfaces: [0],
 *   steps: [{ bulk: { endpoint: 0x81, in: 4, save: { n: { type: "u32le", offset: 2 } } } }],
 * };
 * const problems = checkValues(raw, RecipeSchema.parse(raw), { cliNames: [] });
 * assert.deepEqual(problems[0]?.path, ["steps", 0, "bulk", "save", "n"]);
 * ```
 */
export function checkValues(
  raw: unknown,
  recipe: Recipe | undefined,
  options: CheckOptions,
): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const problem = (path: Path, message: string) =>
    problems.push({ path, message, atKey: false });
  const written = isRaw(raw) ? raw : {};

  // The values known before the run: vars, then --var; not what is assigned.
  const known: Record<string, VarValue> = {};
  const vars = recipe?.vars ?? (isRaw(written.vars) ? written.vars : {});
  for (const [k, v] of Object.entries(vars)) {
    if (typeof v === "string" || typeof v === "number") known[k] = v;
  }
  for (const name of options.cliNames) delete known[name];
  Object.assign(known, options.cliValues ?? {});
  for (const name of assignedNames(written.steps)) delete known[name];

  /**
   * Resolves the templates under `value` whose variables are all known,
   * walking the value as validated beside the value as written (validation
   * wraps some forms: `out: "12 34"` becomes `{ hex }`), so that problems
   * carry the path as written.
   */
  const resolveKnown = (value: unknown, rawValue: unknown, path: Path) => {
    const stack: {
      value: unknown;
      raw: unknown;
      path: Path;
      set: (v: unknown) => void;
    }[] = [];
    let out: unknown = value;
    stack.push({ value, raw: rawValue, path, set: (v) => out = v });
    while (stack.length > 0) {
      const { value: v, raw: r, path: p, set } = stack.pop()!;
      if (v instanceof Template) {
        if (!v.variables.every((name) => Object.hasOwn(known, name))) continue;
        try {
          set(v.resolve(known));
        } catch (e) {
          if (!(e instanceof InterpolationError)) throw e;
          problem(p, e.message);
        }
      } else if (Array.isArray(v)) {
        const copy = [...v];
        set(copy);
        copy.forEach((x, i) =>
          stack.push({
            value: x,
            raw: Array.isArray(r) ? r[i] : r,
            path: Array.isArray(r) ? [...p, i] : p,
            set: (y) => copy[i] = y,
          })
        );
      } else if (
        v !== null && typeof v === "object" &&
        Object.getPrototypeOf(v) === Object.prototype
      ) {
        const copy: Raw = { ...v as Raw };
        set(copy);
        for (const [k, x] of Object.entries(copy)) {
          const inRaw = isRaw(r) && Object.hasOwn(r, k);
          stack.push({
            value: x,
            raw: inRaw ? r[k] : r,
            path: inRaw ? [...p, k] : p,
            set: (y) => copy[k] = y,
          });
        }
      }
    }
    return out;
  };

  const fileSize = (file: string, path: Path): number | undefined => {
    if (options.baseDir === undefined) return undefined;
    const absolute = resolvePath(options.baseDir, file);
    try {
      return statSync(absolute).size;
    } catch {
      // As the loader says it of a file named as written (said once).
      problem([...path, "file"], `file not found: ${absolute}`);
      return undefined;
    }
  };

  /** The bytes data stands for, when that is known before the run. */
  const dataLength = (
    d: Resolved<DataSpec> | DataSpec | undefined,
    path: Path,
  ): number | undefined => {
    if (d === undefined) return undefined;
    if ("list" in d && d.list) return d.list.length;
    if ("hex" in d && d.hex !== undefined) {
      return d.hex instanceof Uint8Array ? d.hex.length : undefined;
    }
    const s = d as {
      text?: unknown;
      file?: unknown;
      pattern?: unknown;
      offset?: unknown;
      length?: unknown;
    };
    const length = typeof s.length === "number" ? s.length : undefined;
    if (s.text !== undefined) {
      return typeof s.text === "string"
        ? new TextEncoder().encode(s.text).length
        : undefined;
    }
    if (s.pattern !== undefined) return length;
    if (typeof s.file !== "string") return undefined;
    const size = fileSize(s.file, path);
    const offset = typeof s.offset === "number" ? s.offset : 0;
    if (size === undefined || typeof s.offset === "object") return undefined;
    if (offset > size) {
      problem(
        [...path, "offset"],
        `offset ${offset} is past the end of ${s.file} (${
          plural(size, "byte")
        })`,
      );
      return undefined;
    }
    if (length !== undefined && offset + length > size) {
      problem(
        [...path, "length"],
        `offset ${offset} + length ${length} reaches past the end of ${s.file} (${
          plural(size, "byte")
        })`,
      );
      return undefined;
    }
    return length ?? size - offset;
  };

  const checkStep = (step: Step, rawStep: unknown, path: Path) => {
    // A step without exactly one kind is reported as such by the loader.
    if (STEP_KINDS.filter((k) => step[k] !== undefined).length !== 1) return;
    const t = tagStep(step);
    const rawBody = isRaw(rawStep) ? rawStep[t.kind] : undefined;
    const bp = [...path, t.kind];
    if (t.kind === "repeat") {
      const { steps, ...rest } = t.body;
      resolveKnown(rest, rawBody, bp);
      const rawInner = isRaw(rawBody) && Array.isArray(rawBody.steps)
        ? rawBody.steps
        : [];
      steps.forEach((inner, i) =>
        checkStep(inner, rawInner[i], [...bp, "steps", i])
      );
      return;
    }
    const body = resolveKnown(t.body, rawBody, bp);
    switch (t.kind) {
      case "control":
        return checkControl(body as Resolved<StepBody<"control">>, bp);
      case "bulk":
      case "interrupt":
        return checkTransfer(
          t.body,
          body as Resolved<StepBody<"bulk">>,
          bp,
          typeof (body as { in?: unknown }).in === "number"
            ? (body as { in: number }).in
            : undefined,
        );
      case "iso":
        return checkIso(t.body, body as Resolved<StepBody<"iso">>, bp);
      case "stream":
        return checkStream(t.body, body as Resolved<StepBody<"stream">>, bp);
      case "selectAlternate": {
        const n = (body as { interface: unknown }).interface;
        const named = (t.body as { device?: string }).device;
        const claimed = claimedBy.get(
          named ?? (claimedBy.size === 1 ? claimedBy.keys().next().value! : ""),
        );
        if (
          t.body.interface instanceof Template && typeof n === "number" &&
          claimed !== undefined && !claimed.includes(n)
        ) {
          problem(
            [...bp, "interface"],
            `interface ${n} is not claimed (claimed: ${
              claimed.length ? claimed.join(", ") : "none"
            }); add it to interfaces`,
          );
        }
        return;
      }
    }
  };

  type Expect = Resolved<NonNullable<StepBody<"bulk">["expect"]>>;
  type Save = Resolved<NonNullable<StepBody<"bulk">["save"]>>;

  /** Expectations that no transfer could meet, whatever the device does. */
  const checkExpect = (expect: Expect, path: Path) => {
    const text = expect.text;
    if (
      typeof text === "object" && !(text instanceof Template) &&
      typeof text.regex === "string"
    ) {
      try {
        new RegExp(text.regex);
      } catch (e) {
        problem(
          [...path, "text", "regex"],
          `expected a regular expression, found ${
            JSON.stringify(text.regex)
          } (${(e as Error).message})`,
        );
      }
    }
    const len = expect.length;
    if (
      typeof len === "object" && len !== null && !(len instanceof Template) &&
      typeof len.min === "number" && typeof len.max === "number" &&
      len.min > len.max
    ) {
      problem(
        [...path, "length"],
        `min ${len.min} is more than max ${len.max}: no length is both`,
      );
    }
    if (
      expect.mask instanceof Uint8Array && Array.isArray(expect.bytes) &&
      expect.mask.length > expect.bytes.length
    ) {
      problem(
        [...path, "mask"],
        `the mask has ${
          plural(expect.mask.length, "byte")
        } and bytes has ${expect.bytes.length}: each mask byte applies to the byte at its place, so the mask cannot be longer`,
      );
    }
  };

  /** What an IN step expects or saves beyond the `n` bytes it reads. */
  const checkIn = (
    expect: Expect | undefined,
    save: Save | undefined,
    n: number,
    path: Path,
    what: string,
  ) => {
    const reads = `the step reads at most ${plural(n, "byte")} (${what})`;

    if (expect) {
      const ep = [...path, "expect"];
      const len = expect.length;
      if (typeof len === "number" && len > n) {
        problem([...ep, "length"], `${reads}, so ${len} can never arrive`);
      } else if (
        typeof len === "object" && len !== null &&
        !(len instanceof Template) && typeof len.min === "number" &&
        len.min > n
      ) {
        problem(
          [...ep, "length", "min"],
          `${reads}, so at least ${len.min} can never arrive`,
        );
      }
      const offset = typeof expect.offset === "number" ? expect.offset : 0;
      const spans: [string, number | undefined][] = [
        [
          "bytes",
          Array.isArray(expect.bytes) ? expect.bytes.length : undefined,
        ],
        ["data", dataLength(expect.data, [...ep, "data"])],
      ];
      for (const [key, length] of spans) {
        if (length === undefined || length === 0 || offset + length <= n) {
          continue;
        }
        problem(
          [...ep, expect.offset === undefined ? key : "offset"],
          `${
            key === "bytes" ? "the expected bytes are" : "the expected data is"
          } bytes ${offset}-${
            offset + length - 1
          } of what is read, but ${reads}`,
        );
      }
      const text = expect.text;
      if (text !== undefined && !(text instanceof Template)) {
        const t = typeof text === "string" ? { equals: text } : text;
        const at = typeof t.offset === "number" ? t.offset : 0;
        const equals = typeof t.equals === "string"
          ? new TextEncoder().encode(t.equals).length
          : 0;
        if (at + equals > n || at > n) {
          problem(
            [...ep, "text"],
            `the text at offset ${at} spans ${
              plural(equals, "byte")
            }, but ${reads}`,
          );
        }
      }
    }
    for (const [name, field] of Object.entries(save ?? {})) {
      if (typeof field.offset === "object") continue; // still a template
      const offset = field.offset ?? 0;
      const size = SAVE_SIZES[field.type] ??
        (typeof field.length === "number" ? field.length : 0);
      if (offset + size > n || offset > n) {
        problem(
          [...path, "save", name],
          size > 0
            ? `${field.type} at offset ${offset} needs bytes ${offset}-${
              offset + size - 1
            }, but ${reads}`
            : `${field.type} at offset ${offset} starts past the end: ${reads}`,
        );
      }
    }
  };

  /** What an OUT step expects beyond the `n` bytes it writes. */
  const checkOut = (expect: Expect | undefined, n: number, path: Path) => {
    const len = expect?.length;
    const writes = `the step writes ${plural(n, "byte")}`;
    if (typeof len === "number" && len > n) {
      problem(
        [...path, "expect", "length"],
        `${writes}, so ${len} can never be written`,
      );
    } else if (
      typeof len === "object" && len !== null && !(len instanceof Template) &&
      typeof len.min === "number" && len.min > n
    ) {
      problem(
        [...path, "expect", "length", "min"],
        `${writes}, so at least ${len.min} can never be written`,
      );
    }
  };

  const checkControl = (
    body: Resolved<StepBody<"control">>,
    bp: Path,
  ) => {
    const expect = body.expect as Expect | undefined;
    if (expect) checkExpect(expect, [...bp, "expect"]);
    if (typeof body.in === "number") {
      checkIn(
        expect,
        body.save as Save | undefined,
        body.in,
        bp,
        `in: ${body.in}`,
      );
    }
    if (body.out !== undefined) {
      const n = dataLength(body.out, [...bp, "out"]);
      if (n !== undefined && n > MAX_CONTROL_LENGTH) {
        problem(
          [...bp, "out"],
          `a control transfer writes at most ${MAX_CONTROL_LENGTH} bytes (wLength is 16 bits), and this data is ${n} bytes`,
        );
      } else if (n !== undefined) checkOut(expect, n, bp);
    }
    const pattern = expect?.pattern;
    if (
      pattern && !(pattern instanceof Template) &&
      pattern.type === "sourcesink" && pattern.maxPacketSize === undefined
    ) {
      problem(
        [...bp, "expect", "pattern"],
        "the sourcesink pattern restarts every packet, and a control transfer has no endpoint to take the packet size from: write pattern: {type: sourcesink, maxPacketSize: 64}",
      );
    }
  };

  /**
   * An endpoint written as a reference is checked for its direction once it
   * is resolved (one written as a number was checked as written).
   */
  const direction = (
    written: unknown,
    resolved: unknown,
  ): "in" | "out" | undefined =>
    written instanceof Template && typeof resolved === "number"
      ? (resolved & 0x80 ? "in" : "out")
      : undefined;

  const checkTransfer = (
    written: { endpoint: unknown },
    body: Resolved<StepBody<"bulk">> | Resolved<StepBody<"iso">>,
    bp: Path,
    inLength: number | undefined,
  ) => {
    const expect = body.expect as Expect | undefined;
    if (expect) checkExpect(expect, [...bp, "expect"]);
    if (inLength !== undefined) {
      checkIn(
        expect,
        body.save as Save | undefined,
        inLength,
        bp,
        typeof body.in === "number" ? `in: ${inLength}` : "in",
      );
    }
    let outLength: number | undefined;
    if (body.out !== undefined) {
      outLength = dataLength(body.out, [...bp, "out"]);
      if (outLength !== undefined) checkOut(expect, outLength, bp);
    }
    const dir = direction(written.endpoint, body.endpoint);
    const ep = body.endpoint as number;
    if (dir === "out" && body.in !== undefined) {
      problem(
        [...bp, "endpoint"],
        `${
          hex(ep)
        } is an OUT endpoint (bit 7 clear), but this step reads from it (in); IN endpoints are 0x81-0x8f`,
      );
    }
    if (dir === "in" && body.out !== undefined) {
      problem(
        [...bp, "endpoint"],
        `${
          hex(ep)
        } is an IN endpoint (bit 7 set), but this step writes to it (out); OUT endpoints are 0x01-0x0f`,
      );
    }
    return outLength;
  };

  const checkIso = (
    written: StepBody<"iso">,
    body: Resolved<StepBody<"iso">>,
    bp: Path,
  ) => {
    const none = "an iso transfer needs at least one packet";
    let inLength: number | undefined;
    if (Array.isArray(body.in)) {
      if (body.in.length === 0) problem([...bp, "in"], none);
      if (body.in.every((n) => typeof n === "number")) {
        inLength = body.in.reduce((a, b) => a + b, 0);
      }
    } else if (typeof body.in === "number") {
      if (body.in === 0) problem([...bp, "in"], `${none}, and in is 0`);
      inLength = body.in;
    }
    if (body.packets !== undefined && body.in !== undefined) {
      problem(
        [...bp, "packets"],
        "packets applies to iso OUT; for iso IN, give in as the list of packet lengths",
      );
    }
    const outLength = checkTransfer(written, body, bp, inLength);
    if (body.out === undefined) return;
    if (body.packets !== undefined) {
      if (body.packets.length === 0) problem([...bp, "packets"], none);
      else if (
        outLength !== undefined &&
        body.packets.every((n) => typeof n === "number")
      ) {
        const total = body.packets.reduce((a, b) => a + b, 0);
        if (total !== outLength) {
          problem(
            [...bp, "packets"],
            `the packets add up to ${
              plural(total, "byte")
            } and the data is ${outLength}; they must be equal`,
          );
        }
      }
    } else if (outLength === 0) {
      problem([...bp, "out"], `${none}, and the data is empty`);
    }
  };

  const checkStream = (
    written: StepBody<"stream">,
    body: Resolved<StepBody<"stream">>,
    bp: Path,
  ) => {
    const dir = direction(written.endpoint, body.endpoint);
    const ep = body.endpoint as number;
    if (dir === "in" && body.data !== undefined) {
      problem(
        [...bp, "data"],
        `data is written on OUT streams only, and ${hex(ep)} is an IN endpoint`,
      );
    }
    if (dir === "out" && body.expect?.pattern !== undefined) {
      problem(
        [...bp, "expect", "pattern"],
        `a pattern is checked on IN streams only, and ${
          hex(ep)
        } is an OUT endpoint (data chooses what it writes)`,
      );
    }
  };

  // The interfaces each device claims, when every one is known.
  const claimedBy = new Map<string, number[]>();
  if (recipe) {
    resolveKnown(recipe.timeout, written.timeout, ["timeout"]);
    resolveKnown(recipe.recipeTimeout, written.recipeTimeout, [
      "recipeTimeout",
    ]);
    const rawDevices = isRaw(written.devices) ? written.devices : {};
    for (const [name, device] of recipeDevices(recipe)) {
      const single = name === SINGLE_DEVICE && recipe.device !== undefined;
      const rawDevice = single ? written.device : rawDevices[name];
      const at = (key: string): Path => single ? [key] : ["devices", name, key];
      const { interfaces, configuration, ...selector } = device;
      resolveKnown(
        selector,
        rawDevice,
        single ? ["device"] : ["devices", name],
      );
      resolveKnown(
        configuration,
        single
          ? written.configuration
          : isRaw(rawDevice)
          ? rawDevice.configuration
          : undefined,
        at("configuration"),
      );
      const resolved = resolveKnown(
        interfaces,
        single
          ? written.interfaces
          : isRaw(rawDevice)
          ? rawDevice.interfaces
          : undefined,
        at("interfaces"),
      ) as { number: unknown }[] | undefined;
      const numbers = (resolved ?? []).map((i) => i.number);
      if (numbers.every((n) => typeof n === "number")) {
        claimedBy.set(name, numbers as number[]);
      }
    }
  }
  for (const list of ["steps", "finally"] as const) {
    const rawSteps = Array.isArray(written[list]) ? written[list] : [];
    if (recipe) {
      (recipe[list] ?? []).forEach((step, i) =>
        checkStep(step, rawSteps[i], [list, i])
      );
    } else {
      // The schema refused the recipe: check the steps that are valid alone.
      const invalid = list === "steps"
        ? options.invalidSteps
        : options.invalidFinally;
      rawSteps.forEach((rawStep, i) => {
        if (invalid?.has(i)) return;
        const r = StepSchema.safeParse(rawStep);
        if (r.success) checkStep(r.data, rawStep, [list, i]);
      });
    }
  }
  return problems;
}
