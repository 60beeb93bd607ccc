/**
 * The recipe schema: the one source of truth for what a recipe may say.
 *
 * The TypeScript types ({@linkcode Recipe}, {@linkcode Step}, …) are written
 * out in types.ts, and checked here, at compile time, to be exactly what this
 * schema infers. The JSON Schema for editors is generated from it
 * ({@linkcode recipeJsonSchema}), and every error message a person sees about
 * a recipe's shape is written here, next to the field it is about.
 *
 * Values that hold `${…}` references are kept as {@linkcode Template}s and
 * resolved when their step runs, so a step can use what an earlier one saved.
 *
 * @module
 */

import { z } from "zod";
import type * as T from "./types.ts";
import {
  hasReferences,
  InterpolationError,
  parseTemplate,
  Template,
  VAR_NAME,
} from "./interpolate.ts";
import {
  describeFound,
  parseDuration,
  parseHex,
  parseHexPattern,
  parseInteger,
  parseRate,
  parseSize,
  type PatternByte,
  ValueError,
} from "./values.ts";

export type * from "./types.ts";

// ---------------------------------------------------------------------------
// Messages

/**
 * Marks the message of an "unknown keys" issue. zod reports all unknown keys
 * of an object in one issue and does not say which keys were valid; the
 * object's error function knows them, so it puts them in the message behind
 * this marker, and {@linkcode issuesToProblems} turns that into one message
 * per unknown key, at the key.
 */
const UNKNOWN_KEYS = "\u0000unknown-keys:";

type Issue = {
  code?: string;
  input?: unknown;
  keys?: string[];
  values?: unknown[];
};

const MISSING = ", but it is missing";

function expectedMessage(
  what: string,
  input: unknown,
  detail?: string,
): string {
  if (input === undefined) return `expected ${what}${MISSING}`;
  return `expected ${what}, found ${describeFound(input)}${
    detail ? ` (${detail})` : ""
  }`;
}

/** An error function for a zod schema: `expected <what>, found <input>`. */
function expected(what: string): (iss: Issue) => string {
  return (iss) => expectedMessage(what, iss.input);
}

/**
 * The edit distance between two words (optimal string alignment: insertions,
 * deletions, substitutions and swaps of neighbours each cost one), to suggest
 * the key a typo was meant to be.
 */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate a word was most likely meant to be, when it looks like a typo:
 * equal ignoring case, or at most two edits away (one for short words).
 *
 * @param word what was written
 * @param candidates the valid words
 * @returns the nearest valid word, or undefined when none is close
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nearest } from "./schema.ts";
 * assert.ok(nearest("endpont", ["endpoint", "in", "out"]) === "endpoint");
 * assert.ok(nearest("zzz", ["endpoint"]) === undefined);
 * ```
 */
export function nearest(
  word: string,
  candidates: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = c.toLowerCase() === word.toLowerCase()
      ? 0
      : editDistance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  const allowed = word.length <= 4 ? 1 : 2;
  return bestDistance <= allowed ? best : undefined;
}

/** `what` as a sentence, for the JSON Schema's descriptions. */
function sentence(what: string): string {
  return `${what[0]?.toUpperCase()}${what.slice(1)}.`;
}

function quoteList(values: readonly unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join(", ");
}

// ---------------------------------------------------------------------------
// JSON Schema fragments
//
// Some schemas here are written so that zod's own checks stay out of the way
// of the human messages (a field is parsed by our parser, not by a regex), or
// dispatch on the input's type (see byType). Their JSON Schema is given by
// hand, next to them, and put in place by recipeJsonSchema().

type JsonSchema = Record<string, unknown>;
const jsonFragments = new WeakMap<object, () => JsonSchema>();

const TEMPLATE_JSON: JsonSchema = {
  type: "string",
  pattern: "\\$\\{",
  description: "a ${variable} reference, resolved when the step runs",
};

// ---------------------------------------------------------------------------
// Building blocks

// Run checks across fields even when a field is wrong, so that all problems
// are reported at once.
const ALWAYS = { when: () => true } as const;

/**
 * A scalar written as a number or text, parsed by `parse`. Text with `${…}`
 * becomes a {@linkcode Template}, parsed when the step runs.
 */
function scalar<T>(
  what: string,
  parse: (value: number | string) => T,
  json: JsonSchema,
  options: { templates?: boolean; numbers?: boolean } = {},
): z.ZodType<T | Template<T>, number | string> {
  const err = expected(what);
  const input = options.numbers === false
    ? z.string({ error: err })
    : z.union([z.number({ error: err }), z.string({ error: err })], {
      error: err,
    });
  const schema = input.transform((value, ctx) => {
    if (
      typeof value === "string" && options.templates !== false &&
      hasReferences(value)
    ) {
      try {
        return new Template<T>(value, what, (text) => parse(text));
      } catch (e) {
        if (!(e instanceof InterpolationError)) throw e;
        ctx.addIssue({ code: "custom", message: `${e.message}`, input: value });
        return z.NEVER;
      }
    }
    try {
      return parse(value);
    } catch (e) {
      if (!(e instanceof ValueError)) throw e;
      // "not a size" only repeats what `what` says; a specific reason (an
      // unknown unit, a bad hex digit) is worth adding.
      const detail = e.message.startsWith("not ") ? undefined : e.message;
      ctx.addIssue({
        code: "custom",
        message: expectedMessage(what, value, detail),
        input: value,
      });
      return z.NEVER;
    }
  });
  jsonFragments.set(schema, () => ({
    description: sentence(what),
    anyOf: [
      ...(json.anyOf as JsonSchema[] | undefined ?? [json]),
      ...(options.templates === false ? [] : [TEMPLATE_JSON]),
    ],
  }));
  return schema as unknown as z.ZodType<T | Template<T>, number | string>;
}

function integer(what: string, min: number, max: number, templates = true) {
  const hexDigits = max > 0xffff ? 8 : max > 0xff ? 4 : 2;
  // The range is in `what` already: no detail is added to the message.
  const parse = (v: number | string) => {
    try {
      return parseInteger(v, { min, max });
    } catch (e) {
      if (e instanceof ValueError) throw new ValueError("");
      throw e;
    }
  };
  return scalar(what, parse, {
    anyOf: [
      { type: "integer", minimum: min, maximum: max },
      { type: "string", pattern: `^(0x[0-9a-fA-F]{1,${hexDigits}}|[0-9]+)$` },
    ],
  }, { templates });
}

const SIZE_JSON: JsonSchema = {
  anyOf: [
    { type: "integer", minimum: 0 },
    {
      type: "string",
      pattern:
        "^\\s*(0x[0-9a-fA-F]+|[0-9]+(\\.[0-9]+)?\\s*([kKmMgG]i?[bB]?|[bB])?)\\s*$",
    },
  ],
};

function size(what: string) {
  return scalar(what, parseSize, SIZE_JSON);
}

/**
 * A size with bounds a run would enforce (wLength, the kernel's packet limit,
 * a transfer of at least one byte). The bounds are in `what`, so no detail is
 * added to the message.
 */
function boundedSize(what: string, range: { min?: number; max?: number }) {
  const parse = (v: number | string) => {
    const n = parseSize(v);
    if (
      (range.min !== undefined && n < range.min) ||
      (range.max !== undefined && n > range.max)
    ) {
      throw new ValueError("");
    }
    return n;
  };
  return scalar(what, parse, {
    anyOf: [
      {
        type: "integer",
        minimum: range.min ?? 0,
        ...(range.max === undefined ? {} : { maximum: range.max }),
      },
      (SIZE_JSON.anyOf as JsonSchema[])[1]!,
    ],
  });
}

/**
 * The longest timer: `setTimeout` fires at once for a delay above 2^31 - 1 ms
 * (the HTML timers spec stores it as a signed 32-bit integer), so a longer
 * delay, timeout or wait would silently become 0.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

function parseTimer(value: number | string): number {
  const ms = parseDuration(value);
  if (ms > MAX_TIMER_MS) {
    throw new ValueError(
      `longer than the longest timer, ${MAX_TIMER_MS} ms or about 24.8 days`,
    );
  }
  return ms;
}

function duration(what: string) {
  return scalar(what, parseTimer, {
    anyOf: [
      {
        type: "number",
        minimum: 0,
        maximum: MAX_TIMER_MS,
        description: "milliseconds",
      },
      {
        type: "string",
        pattern: "^\\s*[0-9]+(\\.[0-9]+)?\\s*(us|µs|ms|s|m|min|h)?\\s*$",
      },
    ],
  });
}

function rate(what: string) {
  return scalar(what, parseRate, {
    anyOf: [
      { type: "number", minimum: 0, description: "bytes per second" },
      {
        type: "string",
        pattern:
          "^\\s*[0-9]+(\\.[0-9]+)?\\s*([kKmMgG]i?[bB]?|[bB]|[kKmMgG]?bit)/s\\s*$",
      },
    ],
  });
}

function text(what: string) {
  return scalar(what, (v) => String(v), { type: ["string", "number"] });
}

/** Text taken as written, with no `${…}` references: descriptions, names. */
function plainText(what: string) {
  return scalar(what, (v) => String(v), { type: ["string", "number"] }, {
    templates: false,
  }) as unknown as z.ZodType<
    string,
    string | number
  >;
}

function hexData(what: string) {
  return scalar(what, (v) => parseHex(String(v)), {
    type: "string",
    pattern: "^[\\s0-9a-fA-Fx:,\\-]*$",
  }, { numbers: false });
}

function hexPattern(what: string) {
  return scalar<PatternByte[]>(what, (v) => parseHexPattern(String(v)), {
    type: "string",
    pattern: "^[\\s0-9a-fA-Fx?:,\\-]*$",
  }, { numbers: false });
}

function oneOf<const T extends readonly [string, ...string[]]>(
  values: T,
  description?: string,
) {
  const schema = z.enum(values, {
    error: (iss: Issue) => {
      const base = expectedMessage(`one of ${quoteList(values)}`, iss.input);
      const guess = typeof iss.input === "string"
        ? nearest(iss.input, values)
        : undefined;
      return guess ? `${base}; did you mean "${guess}"?` : base;
    },
  });
  return description === undefined ? schema : schema.describe(description);
}

function bool(what: string) {
  return z.boolean({ error: expected(what) });
}

/** A mapping with exactly these keys (all others are errors, named at the key). */
function obj<S extends z.core.$ZodLooseShape>(
  what: string,
  shape: S,
  noun = "key",
) {
  const keys = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss: Issue) =>
      iss.code === "unrecognized_keys"
        ? UNKNOWN_KEYS + JSON.stringify({ noun, valid: keys })
        : expectedMessage(what, iss.input),
  }).describe(sentence(what));
}

function list<T extends z.ZodType>(what: string, item: T) {
  return z.array(item, { error: expected(what) }).describe(sentence(what));
}

/**
 * A mapping from variable names to values; names are checked here so that a
 * bad one is reported at its key.
 */
function named<T extends z.ZodType>(
  what: string,
  value: T,
  noun = "variable",
) {
  return z.record(z.string(), value, { error: expected(what) }).describe(
    sentence(what),
  ).superRefine(
    (record, ctx) => {
      for (const key of Object.keys(record)) {
        if (!VAR_NAME.test(key)) {
          ctx.addIssue({
            code: "custom",
            path: [key],
            message:
              `"${key}" is not a valid ${noun} name (use letters, digits and _, not starting with a digit)`,
            params: { at: "key" },
          });
        }
      }
    },
    ALWAYS,
  );
}

type Branches = {
  string?: z.ZodType;
  number?: z.ZodType;
  boolean?: z.ZodType;
  null?: z.ZodType;
  array?: z.ZodType;
  object?: z.ZodType;
};
type BranchOf<B extends Branches> = NonNullable<B[keyof B]>;

function typeOf(value: unknown): keyof Branches | undefined {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  switch (typeof value) {
    case "string":
      return "string";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "object":
      return "object";
  }
  return undefined;
}

/**
 * A value that may take several shapes, told apart by its type: a string, a
 * list or a mapping. zod's union would report a mistake inside the mapping
 * form as "none of the forms matched"; dispatching on the type first reports
 * it at the field that is wrong.
 */
function byType<B extends Branches>(
  what: string,
  branches: B,
): z.ZodType<z.output<BranchOf<B>>, z.input<BranchOf<B>>> {
  const err = expected(what);
  const gate = z.custom<unknown>((v) => v !== undefined, { error: err });
  const schema = gate.transform((value, ctx) => {
    const type = typeOf(value);
    const branch = type === undefined ? undefined : branches[type];
    if (!branch) {
      ctx.addIssue({
        code: "custom",
        message: expectedMessage(what, value),
        input: value,
      });
      return z.NEVER;
    }
    const result = branch.safeParse(value);
    if (result.success) return result.data;
    for (const iss of result.error.issues) {
      ctx.addIssue({
        code: "custom",
        message: iss.message,
        path: iss.path,
        params: iss.code === "unrecognized_keys"
          ? { unknownKeys: iss.keys }
          : iss.code === "custom"
          ? iss.params
          : {},
        input: value,
      });
    }
    return z.NEVER;
  });
  jsonFragments.set(gate, () => {
    const seen = new Set<z.ZodType>();
    const anyOf: JsonSchema[] = [];
    for (const b of Object.values(branches) as z.ZodType[]) {
      if (seen.has(b)) continue;
      seen.add(b);
      anyOf.push(toJson(b));
    }
    return { description: sentence(what), anyOf };
  });
  return schema as unknown as z.ZodType<
    z.output<BranchOf<B>>,
    z.input<BranchOf<B>>
  >;
}

/** Requires exactly one of `keys` in a mapping. */
function exactlyOne(
  keys: readonly string[],
  message: (present: string[]) => string,
) {
  return (value: unknown, ctx: z.core.$RefinementCtx<unknown>) => {
    if (value === null || typeof value !== "object") return;
    const present = keys.filter((k) =>
      (value as Record<string, unknown>)[k] !== undefined
    );
    if (present.length !== 1) {
      ctx.addIssue({ code: "custom", message: message(present), input: value });
    }
  };
}

// ---------------------------------------------------------------------------
// Values

const ENDPOINT = "an endpoint address (0x01-0x0f for OUT, 0x81-0x8f for IN)";

/**
 * An endpoint of an interface: bEndpointAddress is the endpoint number in
 * bits 0-3 and the direction in bit 7; bits 4-6 are reserved (USB 3.2 spec,
 * table 9-26). Number 0 is the default control pipe, which control steps use.
 */
function parseEndpoint(v: number | string): number {
  let n: number;
  try {
    n = parseInteger(v, { min: 0, max: 0xff });
  } catch (e) {
    if (e instanceof ValueError) throw new ValueError("");
    throw e;
  }
  if ((n & 0x7f) === 0) {
    throw new ValueError(
      "endpoint 0 is the control endpoint: use a control step",
    );
  }
  if ((n & 0x70) !== 0) {
    throw new ValueError("bits 4-6 of an endpoint address are reserved");
  }
  return n;
}

const endpoint = scalar(ENDPOINT, parseEndpoint, {
  anyOf: [
    {
      type: "integer",
      enum: Array.from({ length: 30 }, (_, i) => i < 15 ? i + 1 : i + 0x72),
    },
    { type: "string", pattern: "^(0x[08]?[1-9a-fA-F]|[0-9]+)$" },
  ],
});

/**
 * A vendor or product id. lsusb prints ids as four hex digits without `0x`
 * (`0525:a4a0`); copied into a recipe, `0525` would be read as the decimal
 * 525 (0x020d) and `a4a0` not at all, so both are refused with the spelling
 * that means what was meant.
 */
function usbId(what: string) {
  const parse = (v: number | string) => {
    const text = typeof v === "string" ? v.trim() : "";
    if (/^[0-9a-f]{1,4}$/i.test(text) && !/^(0|[1-9][0-9]*)$/.test(text)) {
      throw new ValueError(
        `ids are hexadecimal, as lsusb prints them: write 0x${text}`,
      );
    }
    try {
      return parseInteger(v, { min: 0, max: 0xffff });
    } catch (e) {
      if (e instanceof ValueError) throw new ValueError("");
      throw e;
    }
  };
  return scalar(what, parse, {
    anyOf: [
      { type: "integer", minimum: 0, maximum: 0xffff },
      { type: "string", pattern: "^(0x[0-9a-fA-F]{1,4}|0|[1-9][0-9]*)$" },
    ],
  });
}
const u8 = (what: string) => integer(what, 0, 0xff);
const u16 = (what: string) => integer(what, 0, 0xffff);
const length = (
  what = 'a length in bytes (a number, or a size such as "4KiB")',
) => size(what);

const PATTERNS = ["sequence", "zeros", "random", "sourcesink"] as const;

const DataObject = obj(
  "data (a mapping with one of hex, text, file or pattern)",
  {
    hex: hexData('hex bytes such as "12 01 00 02"').optional(),
    text: text("UTF-8 text").optional(),
    file: text("a file path, relative to the recipe").optional(),
    pattern: oneOf(
      PATTERNS,
      "A generated pattern of `length` bytes: sequence (byte i is i & 0xff), zeros, random (from `seed` when given), or sourcesink (the SourceSink gadget's pattern, restarting every `maxPacketSize` bytes).",
    ).optional(),
    length: length().optional(),
    offset: length("an offset in bytes into the file").optional(),
    seed: integer(
      "a seed for the random pattern (a 32-bit number)",
      0,
      0xffffffff,
      false,
    ).optional(),
    maxPacketSize: length("the packet size the sourcesink pattern restarts at")
      .optional(),
  },
).superRefine(
  exactlyOne(
    ["hex", "text", "file", "pattern"],
    (p) =>
      p.length === 0
        ? "expected one of hex, text, file or pattern, found none"
        : `expected one of hex, text, file or pattern, found ${
          p.join(" and ")
        }`,
  ),
  ALWAYS,
).superRefine((value, ctx) => {
  if (value === null || typeof value !== "object") return;
  const v = value as Record<string, unknown>;
  if (v.pattern !== undefined && v.length === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["length"],
      message: "a pattern needs a length, such as length: 512",
    });
  }
  if (v.offset !== undefined && v.file === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["offset"],
      message: "offset applies to file data only",
    });
  }
  if (
    v.length !== undefined && v.pattern === undefined && v.file === undefined
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["length"],
      message: "length applies to file and pattern data only",
    });
  }
}, ALWAYS);

const DATA =
  'data (a hex string such as "12 01 00 02", a list of bytes, or a mapping with hex, text, file or pattern)';

/**
 * The bytes an OUT transfer sends: a hex string, a list of byte values, or a
 * mapping with `hex`, `text` (UTF-8), `file` (relative to the recipe) or
 * `pattern` (`sequence`, `zeros`, `random`, `sourcesink`) with a `length`.
 */
const Data = byType(DATA, {
  string: hexData(DATA).transform((hex) => ({ hex })),
  array: list(DATA, integer("a byte (0x00-0xff)", 0, 0xff)).transform((
    list,
  ) => ({ list })),
  object: DataObject,
});

const LengthRange = obj("a length range (a mapping with min and/or max)", {
  min: length().optional(),
  max: length().optional(),
});

const TextExpectation = obj(
  "a text expectation (a mapping with equals or regex, and optional offset and length)",
  {
    equals: text("the exact text").optional(),
    regex: text("a regular expression").optional(),
    offset: length("where the text starts, in bytes").optional(),
    length: length("how many bytes the text spans").optional(),
  },
).superRefine(
  exactlyOne(
    ["equals", "regex"],
    (p) =>
      p.length === 0
        ? "expected equals or regex, found neither"
        : "expected equals or regex, found both",
  ),
  ALWAYS,
).superRefine((value, ctx) => {
  const regex = (value as { regex?: unknown }).regex;
  if (typeof regex !== "string") return;
  try {
    new RegExp(regex);
  } catch (e) {
    ctx.addIssue({
      code: "custom",
      path: ["regex"],
      message: `expected a regular expression, found ${describeFound(regex)} (${
        (e as Error).message
      })`,
    });
  }
});

const PatternExpectation = obj(
  "a pattern expectation (a mapping with type and maxPacketSize)",
  {
    type: oneOf(
      ["sourcesink", "sequence", "zeros"],
      "The pattern the data must follow: sourcesink (the SourceSink gadget's, restarting every maxPacketSize bytes), sequence (byte i is i & 0xff) or zeros.",
    ),
    maxPacketSize: length("the packet size the pattern restarts at").optional(),
  },
);

const STATUSES = ["ok", "stall", "babble"] as const;

const expectShape = {
  status: oneOf(
    STATUSES,
    "The status the transfer must end with (default ok): ok, stall (the endpoint halted) or babble (the device sent more than was asked for).",
  ).optional(),
  length: byType(
    "a length (a number, or a mapping with min and max, such as {min: 1, max: 64})",
    {
      number: length(),
      string: length(),
      object: LengthRange,
    },
  ).optional(),
  bytes: hexPattern('hex bytes such as "55 53 42 53", with ?? for any byte')
    .optional(),
  data: Data.optional(),
  offset: length("where the expected bytes or data start, in bytes")
    .optional(),
  mask: hexData(
    'a hex mask such as "ff 0f", AND-ed with the data before comparing',
  ).optional(),
  text: byType("text (a string, or a mapping with equals or regex)", {
    string: text("the exact text"),
    number: text("the exact text"),
    object: TextExpectation,
  }).optional(),
  pattern: byType(
    'a pattern ("sourcesink", "sequence" or "zeros", or a mapping with type and maxPacketSize)',
    {
      string: oneOf(
        ["sourcesink", "sequence", "zeros"],
        "The pattern the data must follow: sourcesink (the SourceSink gadget's, restarting every packet), sequence (byte i is i & 0xff) or zeros.",
      ).transform((
        type,
      ): z.output<typeof PatternExpectation> => ({
        type,
      })),
      object: PatternExpectation,
    },
  ).optional(),
  minRate: rate('a rate such as "100MB/s"').optional(),
};

const Expect = obj(
  "expectations (a mapping of status, length, bytes, data, mask, text, pattern)",
  expectShape,
)
  .superRefine((value, ctx) => {
    if (value === null || typeof value !== "object") return;
    const v = value as Record<string, unknown>;
    if (v.mask !== undefined && v.bytes === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["mask"],
        message: "a mask applies to bytes: add bytes to compare with",
      });
    }
    if (
      v.offset !== undefined && v.bytes === undefined && v.data === undefined
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["offset"],
        message:
          "offset applies to bytes and data: add one of them to compare with",
      });
    }
  }, ALWAYS);

const StreamExpect = obj(
  "stream expectations (a mapping of minRate, pattern, status)",
  {
    status: expectShape.status,
    pattern: expectShape.pattern,
    minRate: expectShape.minRate,
  },
);

/** The field types `save` can capture. */
export const SAVE_TYPES = [
  "u8",
  "u16le",
  "u16be",
  "u32le",
  "u32be",
  "hex",
  "utf8",
] as const;

const SaveField = obj(
  "a capture (a mapping with type, offset and, for hex and utf8, length)",
  {
    type: oneOf(
      SAVE_TYPES,
      "How to read the field: an unsigned integer (u8, u16le, u16be, u32le, u32be), hex bytes, or UTF-8 text.",
    ),
    offset: length("where the field starts, in bytes").optional(),
    length: length("how many bytes to capture (hex and utf8 only)").optional(),
  },
);

const Save = named(
  "captures (a mapping from variable names to {type, offset})",
  SaveField,
).describe(
  "Fields of the received data to keep as variables for later steps, such as lba: {type: u32be, offset: 0}; used as ${lba} or ${lba:u32be}.",
);

/**
 * A device named in the recipe's `devices`, for the steps that act on one. A
 * plain name (no `${…}`): the loader checks it names a device.
 */
const deviceName = plainText(
  "the name of a device of the recipe (a key of devices)",
).describe(
  "The device the step acts on: a key of the recipe's devices. A recipe with one device (device: {...}) needs none.",
);

const common = {
  name: text("a name for the step").optional(),
  timeout: duration('a timeout (milliseconds, or a duration such as "500ms")')
    .optional(),
  onFail: oneOf(
    ["stop", "continue"],
    "What a failure of this step does: stop the run (the default; the steps after are skipped) or continue with the next step.",
  ).optional(),
  device: deviceName.optional(),
};

const inOrOut = (kind: string) =>
  exactlyOne(
    ["in", "out"],
    (p) =>
      p.length === 0
        ? `a ${kind} transfer needs in (a length to read) or out (data to write), found neither`
        : `a ${kind} transfer is either in or out, found both`,
  );

/**
 * The most a control transfer can move: wLength is 16 bits (USB 3.2 spec,
 * 9.3.5). A recipe asking for more is refused when it is loaded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_CONTROL_LENGTH, RecipeSchema } from "./schema.ts";
 * const r = RecipeSchema.safeParse({
 *   name: "x", device: { serial: "1" },
 *   steps: [{ control: { in: MAX_CONTROL_LENGTH + 1, requestType: "vendor", request: 1 } }],
 * });
 * assert.equal(r.success, false);
 * ```
 */
export const MAX_CONTROL_LENGTH = 0xffff;

const ControlStep = obj(
  "a control transfer (a mapping with requestType, request, and in or out)",
  {
    in: boundedSize(
      `a length in bytes (a number or a size, at most ${MAX_CONTROL_LENGTH}: wLength is 16 bits)`,
      { max: MAX_CONTROL_LENGTH },
    ).optional(),
    out: Data.optional(),
    requestType: oneOf(
      ["standard", "class", "vendor"],
      "The request's type, bits 5-6 of bmRequestType: standard (USB chapter 9), class or vendor.",
    ),
    recipient: oneOf(
      ["device", "interface", "endpoint", "other"],
      "Who the request is for, bits 0-4 of bmRequestType (default device); for interface and endpoint, index holds its number or address.",
    ).optional(),
    request: u8("a request number (0x00-0xff)"),
    value: u16("a 16-bit value (0x0000-0xffff)").optional(),
    index: u16("a 16-bit index (0x0000-0xffff)").optional(),
    expect: Expect.optional(),
    save: Save.optional(),
    ...common,
  },
).superRefine(inOrOut("control"), ALWAYS);

const transferShape = {
  endpoint,
  in: length().optional(),
  out: Data.optional(),
  expect: Expect.optional(),
  save: Save.optional(),
  ...common,
};

const BulkStep = obj(
  "a bulk transfer (a mapping with endpoint, and in or out)",
  transferShape,
)
  .superRefine(inOrOut("bulk"), ALWAYS);

const InterruptStep = obj(
  "an interrupt transfer (a mapping with endpoint, and in or out)",
  transferShape,
)
  .superRefine(inOrOut("interrupt"), ALWAYS);

const PACKETS = "packet lengths (a list of sizes)";

/**
 * The kernel's limit on one isochronous packet: 96 data packets of 1024 bytes
 * (SuperSpeedPlus), checked by proc_do_submiturb() in
 * drivers/usb/core/devio.c.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_ISO_PACKET, RecipeSchema } from "./schema.ts";
 * const r = RecipeSchema.safeParse({
 *   name: "x", device: { serial: "1" }, interfaces: [0],
 *   steps: [{ iso: { endpoint: 0x83, in: [MAX_ISO_PACKET, MAX_ISO_PACKET + 1] } }],
 * });
 * assert.equal(r.success, false);
 * ```
 */
export const MAX_ISO_PACKET = 98304;

const packetLength = () =>
  boundedSize(
    `a packet length in bytes (a number or a size, at most ${MAX_ISO_PACKET}: the kernel's limit per packet)`,
    { max: MAX_ISO_PACKET },
  );

const IsoStep = obj(
  "an isochronous transfer (a mapping with endpoint, and in or out)",
  {
    ...transferShape,
    in: byType("a length, or a list of packet lengths", {
      number: length(),
      string: length(),
      array: list(PACKETS, packetLength()),
    }).optional(),
    packets: list(PACKETS, packetLength()).describe(
      "The length of each packet of an iso OUT transfer (a list of sizes); by default the data is cut into packets of the endpoint's wMaxPacketSize.",
    ).optional(),
  },
).superRefine(inOrOut("isochronous"), ALWAYS);

const StreamStep = obj(
  "a stream (a mapping with endpoint, and bytes or duration)",
  {
    endpoint,
    bytes: length('how many bytes to move (a size such as "64MiB")').optional(),
    duration: duration('how long to stream (a duration such as "10s")')
      .optional(),
    transferSize: boundedSize(
      'the size of each transfer (a size such as "64KiB", at least 1 byte)',
      { min: 1 },
    ).optional(),
    inFlight: integer("the number of transfers in flight (1-256)", 1, 256)
      .optional(),
    data: Data.optional(),
    expect: StreamExpect.optional(),
    ...common,
  },
).superRefine((value, ctx) => {
  if (value === null || typeof value !== "object") return;
  const v = value as Record<string, unknown>;
  if (v.bytes === undefined && v.duration === undefined) {
    ctx.addIssue({
      code: "custom",
      message:
        "a stream needs bytes (how much) or duration (how long), found neither",
    });
  }
}, ALWAYS);

const DelayStep = duration(
  'a delay (milliseconds, or a duration such as "100ms")',
);

const ResetObject = obj(
  "a reset (a mapping with device, reenumerate, name, timeout and onFail)",
  {
    reenumerate: bool("true or false").describe(
      "The device enumerates again after the reset (new address, maybe new descriptors): close it, wait for it to come back (within the step's timeout) and open it again.",
    ).optional(),
    ...common,
  },
);

const ResetStep = byType(
  "a reset (no value, or a mapping with device, reenumerate, name and onFail)",
  {
    null: z.null().transform(() => ({}) as z.output<typeof ResetObject>),
    object: ResetObject,
  },
);

/**
 * A step that waits for a device or plugs one: no value (the recipe's only
 * device), or a mapping with device, timeout, name and onFail.
 */
function deviceStep<
  S extends z.core.$ZodLooseShape = Record<never, never>,
>(
  what: string,
  extra: S = {} as S,
) {
  const keys = ["device", ...Object.keys(extra), "timeout", "name", "onFail"];
  const object = obj(`${what} (a mapping with ${keys.join(", ")})`, {
    ...extra,
    ...common,
  });
  return byType(`${what} (no value, or a mapping with ${keys.join(", ")})`, {
    // No value: the recipe's only device, every option at its default.
    null: z.null().transform(() => ({}) as z.output<typeof object>),
    object,
  });
}

const benchName = {
  bench: plainText(
    'the name of a gadget or QEMU device of the virtual bench, such as "loopback0"',
  ).describe(
    "Which device of the virtual bench to unplug or plug (a gadget or a QEMU device); by default the one whose serial (or ids) the recipe's device selects.",
  ).optional(),
};

const WaitForStep = deviceStep(
  "a wait for a device to appear (then it is opened)",
);
const WaitGoneStep = deviceStep("a wait for a device to disappear");
const UnplugStep = deviceStep(
  "an unplug of a virtual bench device",
  benchName,
);
const PlugStep = deviceStep("a plug of a virtual bench device", benchName);
const ReplugStep = deviceStep(
  "a replug (unplug, then plug) of a virtual bench device",
  benchName,
);

const ClearHaltStep = obj("a clear-halt (a mapping with endpoint)", {
  endpoint,
  ...common,
});

const SelectAlternateStep = obj(
  "an alternate setting (a mapping with interface and alternate)",
  {
    interface: u8("an interface number (0-255)"),
    alternate: u8("an alternate setting (0-255)"),
    ...common,
  },
);

const LogStep = text("a message to print");

/** The kinds of step, in the order the schema lists them. */
export const STEP_KINDS = [
  "control",
  "bulk",
  "interrupt",
  "iso",
  "stream",
  "delay",
  "repeat",
  "reset",
  "clearHalt",
  "selectAlternate",
  "log",
  "waitFor",
  "waitGone",
  "unplug",
  "plug",
  "replug",
] as const;

/**
 * The kinds of step that act on a device, and so name it (`device: dut`) in a
 * recipe with several devices.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEVICE_STEP_KINDS } from "./schema.ts";
 * assert.ok(DEVICE_STEP_KINDS.includes("bulk") && !DEVICE_STEP_KINDS.includes("log"));
 * ```
 */
export const DEVICE_STEP_KINDS: readonly string[] = [
  "control",
  "bulk",
  "interrupt",
  "iso",
  "stream",
  "reset",
  "clearHalt",
  "selectAlternate",
  "waitFor",
  "waitGone",
  "unplug",
  "plug",
  "replug",
];

const StepObject = obj(
  "a step (a mapping with one key, such as bulk: {...})",
  {
    control: ControlStep.optional(),
    bulk: BulkStep.optional(),
    interrupt: InterruptStep.optional(),
    iso: IsoStep.optional(),
    stream: StreamStep.optional(),
    delay: DelayStep.optional(),
    get repeat() {
      return RepeatStep.optional();
    },
    reset: ResetStep.optional(),
    clearHalt: ClearHaltStep.optional(),
    selectAlternate: SelectAlternateStep.optional(),
    log: LogStep.optional(),
    waitFor: WaitForStep.optional(),
    waitGone: WaitGoneStep.optional(),
    unplug: UnplugStep.optional(),
    plug: PlugStep.optional(),
    replug: ReplugStep.optional(),
  },
  "step",
);
// That a step has exactly one kind is checked on the input, by the checks in
// load.ts: zod hands a refinement the output, where unknown keys are gone.

const RepeatStep = obj("a repeat (a mapping with count and steps)", {
  count: integer("a repeat count (a whole number)", 0, 1e9),
  var: plainText("a variable name for the iteration number").optional()
    .superRefine((v, ctx) => {
      if (typeof v === "string" && !VAR_NAME.test(v)) {
        ctx.addIssue({
          code: "custom",
          message:
            `"${v}" is not a valid variable name (use letters, digits and _)`,
        });
      }
    }),
  name: common.name,
  onFail: common.onFail,
  get steps() {
    return list("a list of steps", StepObject);
  },
});

const InterfaceObject = obj(
  "an interface (a mapping with number, detachKernelDriver, alternate)",
  {
    number: u8("an interface number (0-255)"),
    detachKernelDriver: bool("true or false").optional(),
    alternate: u8("an alternate setting (0-255)").optional(),
  },
);

const interfaceNumber = u8("an interface number (0-255)").transform((
  number,
): z.output<typeof InterfaceObject> => ({ number }));
const Interface = byType(
  "an interface number, or a mapping with number and detachKernelDriver",
  {
    number: interfaceNumber,
    string: interfaceNumber,
    object: InterfaceObject,
  },
);

const selectorShape = {
  vendorId: usbId("a vendor id (0x0000-0xffff)").optional(),
  productId: usbId("a product id (0x0000-0xffff)").optional(),
  serial: text("a serial number").optional(),
  port: text('a port path such as "2-1"').optional(),
  path: text('a device node such as "/dev/bus/usb/002/003"').optional(),
  wait: duration('how long to wait for the device (a duration such as "5s")')
    .optional(),
};

const needsSelector = (value: unknown, ctx: z.core.$RefinementCtx<unknown>) => {
  if (value === null || typeof value !== "object") return;
  const v = value as Record<string, unknown>;
  if (
    ["vendorId", "productId", "serial", "port", "path"].every((k) =>
      v[k] === undefined
    )
  ) {
    ctx.addIssue({
      code: "custom",
      message:
        "a device selector needs vendorId and productId, serial, port or path, found none of them",
    });
  }
};

const DeviceSelector = obj(
  "a device selector (a mapping with vendorId and productId, serial, port or path)",
  selectorShape,
).superRefine(needsSelector, ALWAYS);

const configuration = integer("a configuration value (1-255)", 1, 255);
const interfaces = list("a list of interfaces to claim", Interface);

const DeviceEntry = obj(
  "a device (a mapping with a selector (vendorId and productId, serial, port or path), wait, configuration, interfaces and open)",
  {
    ...selectorShape,
    configuration: configuration.optional(),
    interfaces: interfaces.optional(),
    open: bool("true or false").describe(
      "Open the device when the run starts (default true, waiting up to wait). With false it is opened by a waitFor or plug step: a device that appears during the run.",
    ).optional(),
  },
).superRefine(needsSelector, ALWAYS);

// The recipe, with the types zod infers (RecipeSchema carries the written-out
// ones).
const RecipeObject = obj(
  "a recipe (a mapping with name, device or devices, and steps)",
  {
    $schema: z.string({
      error: expected("the URL or path of the recipe JSON Schema"),
    }).optional(),
    // Interpolated when the run starts, with vars and --var (not captures).
    name: plainText("a name for the recipe").superRefine((v, ctx) => {
      try {
        parseTemplate(v);
      } catch (e) {
        if (!(e instanceof InterpolationError)) throw e;
        ctx.addIssue({ code: "custom", message: e.message, input: v });
      }
    }),
    description: plainText("a description").optional(),
    device: DeviceSelector.optional(),
    devices: named(
      "devices (a mapping from names to devices, such as dut: {serial: ...})",
      DeviceEntry,
      "device",
    ).optional(),
    configuration: configuration.optional(),
    interfaces: interfaces.optional(),
    timeout: duration('the default step timeout (a duration such as "1s")')
      .optional(),
    recipeTimeout: duration(
      'the longest the whole recipe may run (a duration such as "5m")',
    ).describe(
      "The longest the steps may run together: when it has passed, the step running is stopped, the rest are skipped and the run fails; the finally steps still run.",
    ).optional(),
    vars: named(
      "variables (a mapping from names to values)",
      z.union([z.string(), z.number()], {
        error: expected("a string or a number"),
      }),
    ).optional(),
    steps: list("a list of steps", StepObject),
    finally: list("a list of steps", StepObject).describe(
      "Steps that always run after the steps: also after a failure, a timeout or Ctrl-C (cleanup, such as switching a relay off). Each runs even when one before it failed.",
    ).optional(),
  },
).superRefine((value, ctx) => {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return;
  }
  const v = value as Record<string, unknown>;
  if (v.device !== undefined && v.devices !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["devices"],
      message:
        "a recipe has device (one device) or devices (several, by name), not both",
    });
  } else if (v.device === undefined && v.devices === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["device"],
      message:
        "expected a device selector (a mapping with vendorId and productId, serial, port or path), or named devices (devices: {dut: {...}, ...})" +
        MISSING,
    });
  }
  if (v.devices !== undefined) {
    for (const key of ["interfaces", "configuration"]) {
      if (v[key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message:
            `with devices, each device has its own ${key}: move it under the device it is for`,
        });
      }
    }
    if (
      v.devices !== null && typeof v.devices === "object" &&
      Object.keys(v.devices).length === 0
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["devices"],
        message:
          "devices needs at least one device, such as dut: {serial: ...}",
      });
    }
  }
}, ALWAYS);

/**
 * The recipe schema. Parse with it to validate a recipe; most callers want
 * {@linkcode loadRecipe} (in load.ts) instead, which also says where each
 * problem is in the file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecipeSchema } from "./schema.ts";
 * const r = RecipeSchema.safeParse({
 *   name: "smoke",
 *   device: { vendorId: "0x0525", productId: 0xa4a0 },
 *   steps: [{ delay: "10ms" }],
 * });
 * assert.ok(r.success && r.data.device?.vendorId === 0x0525);
 * ```
 */
export const RecipeSchema: z.ZodType<T.Recipe, T.RecipeInput> = RecipeObject;

/**
 * One step, as the recipe schema checks it: a mapping with one of the
 * {@linkcode STEP_KINDS}. (That it has exactly one is checked by the loader,
 * on the input.)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StepSchema } from "./schema.ts";
 * assert.ok(StepSchema.safeParse({ delay: "5ms" }).success);
 * assert.ok(!StepSchema.safeParse({ delay: "soon" }).success);
 * ```
 */
export const StepSchema: z.ZodType<T.Step, T.StepInput> = StepObject;

// ---------------------------------------------------------------------------
// The written-out types are the inferred ones
//
// types.ts spells out what this schema infers, so that the published types
// need no inference (and do not show zod's). Here the two are compared: a
// change to a schema that types.ts does not follow, or the other way round,
// fails `deno check`.

/** True when A and B are the same type, not merely assignable to each other. */
type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends
  (<X>() => X extends B ? 1 : 2) ? true : false;
/** `[output matches, input matches]` of a schema and written-out types. */
type Same<Schema extends z.ZodType, Output, Input> = [
  Equals<z.output<Schema>, Output>,
  Equals<z.input<Schema>, Input>,
];
/** A compile error unless every comparison is true. */
type Assert<_ extends true | [true, true]> = never;
type _TypesMatchTheSchema = [
  Assert<Same<typeof RecipeObject, T.Recipe, T.RecipeInput>>,
  Assert<Same<typeof StepObject, T.Step, T.StepInput>>,
  Assert<Same<typeof ControlStep, T.ControlStepSpec, T.ControlStepInput>>,
  Assert<Same<typeof BulkStep, T.TransferStepSpec, T.TransferStepInput>>,
  Assert<Same<typeof InterruptStep, T.TransferStepSpec, T.TransferStepInput>>,
  Assert<Same<typeof IsoStep, T.IsoStepSpec, T.IsoStepInput>>,
  Assert<Same<typeof StreamStep, T.StreamStepSpec, T.StreamStepInput>>,
  Assert<Same<typeof RepeatStep, T.RepeatStepSpec, T.RepeatStepInput>>,
  Assert<Same<typeof ResetStep, T.ResetStepSpec, T.ResetStepInput | null>>,
  Assert<Same<typeof WaitForStep, T.WaitStepSpec, T.WaitStepInput | null>>,
  Assert<Same<typeof WaitGoneStep, T.WaitStepSpec, T.WaitStepInput | null>>,
  Assert<Same<typeof UnplugStep, T.BenchStepSpec, T.BenchStepInput | null>>,
  Assert<Same<typeof PlugStep, T.BenchStepSpec, T.BenchStepInput | null>>,
  Assert<Same<typeof ReplugStep, T.BenchStepSpec, T.BenchStepInput | null>>,
  Assert<Same<typeof ClearHaltStep, T.ClearHaltStepSpec, T.ClearHaltStepInput>>,
  Assert<
    Same<
      typeof SelectAlternateStep,
      T.SelectAlternateStepSpec,
      T.SelectAlternateStepInput
    >
  >,
  Assert<Same<typeof DataObject, T.DataFields, T.DataFieldsInput>>,
  Assert<Same<typeof Data, T.DataSpec, T.DataInput>>,
  Assert<Same<typeof Expect, T.Expectation, T.ExpectationInput>>,
  Assert<
    Same<typeof StreamExpect, T.StreamExpectation, T.StreamExpectationInput>
  >,
  Assert<Same<typeof LengthRange, T.LengthRange, T.LengthRangeInput>>,
  Assert<
    Same<typeof TextExpectation, T.TextExpectation, T.TextExpectationInput>
  >,
  Assert<
    Same<
      typeof PatternExpectation,
      T.PatternExpectation,
      T.PatternExpectationInput
    >
  >,
  Assert<Same<typeof SaveField, T.SaveField, T.SaveFieldInput>>,
  Assert<Same<typeof Save, T.SaveSpec, T.SaveInput>>,
  Assert<Same<typeof Interface, T.InterfaceSpec, T.InterfaceInput>>,
  Assert<
    Same<typeof DeviceSelector, T.DeviceSelectorSpec, T.DeviceSelectorInput>
  >,
  Assert<Same<typeof DeviceEntry, T.DeviceEntrySpec, T.DeviceEntryInput>>,
  Assert<Equals<typeof STEP_KINDS[number], T.StepKind>>,
  Assert<Equals<keyof T.Step, T.StepKind>>,
  Assert<Equals<keyof T.StepInput, T.StepKind>>,
  Assert<Equals<typeof SAVE_TYPES[number], T.SaveType>>,
];

/**
 * The name the device of a one-device recipe (`device: {...}`) goes by, in
 * {@linkcode recipeDevices} and in the waits of the reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SINGLE_DEVICE } from "./schema.ts";
 * assert.equal(SINGLE_DEVICE, "device");
 * ```
 */
export const SINGLE_DEVICE = "device";

/**
 * The devices of a recipe, by name: its `devices`, or its one `device` (with
 * the recipe's interfaces and configuration) under the name `device`.
 *
 * @param recipe a validated recipe
 * @returns the devices, in the order written
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recipeDevices, RecipeSchema } from "./schema.ts";
 * const one = RecipeSchema.parse({ name: "x", device: { serial: "1" }, interfaces: [0], steps: [] });
 * assert.deepEqual(recipeDevices(one).map(([n]) => n), ["device"]);
 * const two = RecipeSchema.parse({
 *   name: "x", devices: { dut: { serial: "1" }, relay: { serial: "2" } }, steps: [],
 * });
 * assert.deepEqual(recipeDevices(two).map(([n]) => n), ["dut", "relay"]);
 * ```
 */
export function recipeDevices(
  recipe: T.Recipe,
): [string, T.DeviceEntrySpec][] {
  if (recipe.devices !== undefined) return Object.entries(recipe.devices);
  if (recipe.device === undefined) return [];
  return [[SINGLE_DEVICE, {
    ...recipe.device,
    ...(recipe.interfaces === undefined
      ? {}
      : { interfaces: recipe.interfaces }),
    ...(recipe.configuration === undefined
      ? {}
      : { configuration: recipe.configuration }),
  }]];
}

/**
 * The kind and body of a validated step.
 *
 * @param step a validated step
 * @returns its kind and body
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecipeSchema, tagStep } from "./schema.ts";
 * const r = RecipeSchema.parse({ name: "x", device: { serial: "1" }, steps: [{ log: "hi" }] });
 * const t = tagStep(r.steps[0]!);
 * assert.ok(t.kind === "log");
 * ```
 */
export function tagStep(step: T.Step): T.TaggedStep {
  for (const kind of STEP_KINDS) {
    const body = step[kind];
    if (body !== undefined) return { kind, body } as T.TaggedStep;
  }
  // The schema guarantees one kind; reaching here means a hand-built object.
  throw new TypeError("a step has no kind");
}

/**
 * Types a recipe written in TypeScript, so that an editor checks it as it is
 * typed. It returns the recipe unchanged: validation happens when it is run.
 *
 * @param recipe the recipe
 * @returns the same recipe
 *
 * @example A recipe module (`my-recipe.ts`) whose default export `usb run` reads
 * ```ts
 * import { defineRecipe } from "./schema.ts";
 * export default defineRecipe({
 *   name: "SourceSink bulk IN",
 *   device: { vendorId: 0x0525, productId: 0xa4a0, wait: "2s" },
 *   interfaces: [{ number: 0, detachKernelDriver: true }],
 *   steps: [{ bulk: { endpoint: 0x81, in: 512, expect: { pattern: "sourcesink" } } }],
 * });
 * ```
 */
export function defineRecipe(recipe: T.RecipeInput): T.RecipeInput {
  return recipe;
}

// ---------------------------------------------------------------------------
// JSON Schema

function toJson(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: (ctx) =>
      (jsonFragments.get(ctx.zodSchema)?.() as z.core.JSONSchema.BaseSchema) ??
        "any",
    override: (ctx) => {
      const fragment = jsonFragments.get(ctx.zodSchema);
      if (!fragment) return;
      const target = ctx.jsonSchema as JsonSchema;
      for (const key of Object.keys(target)) delete target[key];
      Object.assign(target, fragment());
    },
  }) as JsonSchema;
  delete json.$schema;
  return json;
}

/**
 * The JSON Schema of recipe files, generated from {@linkcode RecipeSchema}, for
 * editors (YAML: `# yaml-language-server: $schema=recipe.schema.json`; JSON:
 * a `"$schema"` key).
 *
 * @returns a JSON Schema (draft 2020-12)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recipeJsonSchema } from "./schema.ts";
 * const schema = recipeJsonSchema();
 * assert.ok((schema.required as string[]).includes("steps"));
 * assert.equal((schema.oneOf as unknown[]).length, 2); // device or devices
 * ```
 */
export function recipeJsonSchema(): Record<string, unknown> {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "usbkit recipe",
    description: "A USB transfer recipe, run with `usb run <recipe>`.",
    ...toJson(RecipeSchema),
    // One device (device) or several by name (devices), not both.
    oneOf: [{ required: ["device"] }, { required: ["devices"] }],
  };
}

// ---------------------------------------------------------------------------
// Issues to problems

/** A problem found in a recipe, before its position in the file is known. */
export interface SchemaProblem {
  /** Where: `["steps", 2, "bulk", "endpoint"]`. */
  path: (string | number)[];
  /** What was expected, and what was found. */
  message: string;
  /** Whether the problem is the key itself (an unknown key) rather than its value. */
  atKey: boolean;
}

/**
 * Turns zod issues from {@linkcode RecipeSchema} into problems for people: one
 * per unknown key (naming the valid keys and the nearest one), messages as
 * written next to each field, and a plain fallback for anything else.
 *
 * @param issues the issues of a failed parse
 * @returns the problems
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { issuesToProblems, RecipeSchema } from "./schema.ts";
 * const r = RecipeSchema.safeParse({ name: "x", device: { serial: "1" }, stpes: [] });
 * const problems = r.success ? [] : issuesToProblems(r.error.issues);
 * assert.ok(problems.some((p) => p.message.includes('did you mean "steps"')));
 * ```
 */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  for (const iss of issues) {
    const path = iss.path.filter((p): p is string | number =>
      typeof p !== "symbol"
    );
    const params = (iss as { params?: Record<string, unknown> }).params ?? {};
    if (iss.message.startsWith(UNKNOWN_KEYS)) {
      const { noun, valid } = JSON.parse(
        iss.message.slice(UNKNOWN_KEYS.length),
      ) as { noun: string; valid: string[] };
      const keys = iss.code === "unrecognized_keys"
        ? iss.keys
        : (params.unknownKeys as string[] | undefined) ?? [];
      for (const key of keys) {
        const guess = nearest(key, valid);
        const shown = valid.filter((k) => k !== "$schema");
        out.push({
          path: [...path, key],
          atKey: true,
          message: `unknown ${noun} "${key}"` +
            (guess ? `; did you mean "${guess}"?` : "") +
            ` (valid ${noun}s: ${shown.join(", ")})`,
        });
      }
      continue;
    }
    out.push({ path, atKey: params.at === "key", message: humanize(iss) });
  }
  // "unknown key endpont; did you mean endpoint?" already says that endpoint
  // is missing: drop the second message about the same mistake.
  const guessed = new Set(
    out.flatMap((p) => {
      const m = /^unknown \w+ "[^"]*"; did you mean "([^"]*)"\?/.exec(
        p.message,
      );
      return m ? [JSON.stringify([...p.path.slice(0, -1), m[1]])] : [];
    }),
  );
  return out.filter((p) =>
    !(p.message.endsWith(MISSING) && guessed.has(JSON.stringify(p.path)))
  );
}

/** A message for an issue that no error function of ours wrote. */
function humanize(iss: z.core.$ZodIssue): string {
  if (
    !iss.message.startsWith("Invalid") && !iss.message.startsWith("Too") &&
    !iss.message.startsWith("Unrecognized")
  ) {
    return iss.message;
  }
  switch (iss.code) {
    case "invalid_type":
      return `expected ${iss.expected}, found ${
        describeFound((iss as { input?: unknown }).input)
      }`;
    case "invalid_value":
      return `expected one of ${quoteList(iss.values)}`;
    case "too_big":
      return `expected at most ${iss.maximum}`;
    case "too_small":
      return `expected at least ${iss.minimum}`;
    default:
      return iss.message;
  }
}
