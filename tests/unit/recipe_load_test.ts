import assert from "node:assert/strict";
import {
  loadRecipe,
  MAX_LISTED_PROBLEMS,
  MAX_NESTING,
  MAX_RECIPE_BYTES,
  parseRecipe,
  RecipeError,
  validateRecipe,
} from "../../src/recipe/load.ts";
import { recipeJsonSchema, tagStep } from "../../src/recipe/schema.ts";
import { Template } from "../../src/recipe/interpolate.ts";

const root = new URL("../../", import.meta.url).pathname;
const valid = new URL("../fixtures/recipes/valid/", import.meta.url).pathname;

Deno.test("every example recipe in recipes/ is valid", async () => {
  const names = [...Deno.readDirSync(root + "recipes")].map((e) => e.name)
    .filter((n) => n.endsWith(".yaml"));
  assert.ok(names.length >= 4);
  for (const name of names) {
    const { recipe } = await loadRecipe(root + "recipes/" + name);
    assert.ok(recipe.steps.length > 0, name);
  }
});

Deno.test("YAML: 0x numbers, sizes, durations and hex data are parsed", () => {
  const recipe = parseRecipe(
    [
      "name: t",
      "device: {vendorId: 0x0525, productId: '0xa4a0', wait: 1.5s}",
      "interfaces: [0, {number: 1, detachKernelDriver: true, alternate: 2}]",
      "timeout: 250ms",
      "steps:",
      "  - bulk: {endpoint: 0x81, in: 64KiB, timeout: 2s, onFail: continue}",
      "  - bulk: {endpoint: 0x02, out: '55 53 42 43'}",
      "  - bulk: {endpoint: 0x02, out: [0x55, 83, '0x42']}",
      "  - delay: 100ms",
      "  - reset:",
    ].join("\n"),
    { file: "t.yaml" },
  );
  assert.equal(recipe.device?.vendorId, 0x0525);
  assert.equal(recipe.device?.productId, 0xa4a0);
  assert.equal(recipe.device?.wait, 1500);
  assert.equal(recipe.timeout, 250);
  assert.deepEqual(recipe.interfaces, [{ number: 0 }, {
    number: 1,
    detachKernelDriver: true,
    alternate: 2,
  }]);
  const [s0, s1, s2, s3, s4] = recipe.steps.map(tagStep);
  assert.ok(
    s0?.kind === "bulk" && s0.body.in === 65536 && s0.body.timeout === 2000 &&
      s0.body.onFail === "continue",
  );
  assert.ok(s1?.kind === "bulk" && s1.body.out && "hex" in s1.body.out);
  assert.deepEqual(s1.body.out.hex, new Uint8Array([0x55, 0x53, 0x42, 0x43]));
  assert.ok(s2?.kind === "bulk" && s2.body.out && "list" in s2.body.out);
  assert.deepEqual(s2.body.out.list, [0x55, 83, 0x42]);
  assert.ok(s3?.kind === "delay" && s3.body === 100);
  assert.ok(s4?.kind === "reset");
});

Deno.test("references stay templates until the step runs", () => {
  const recipe = parseRecipe(
    "name: t\ndevice: {serial: '${serial}'}\ninterfaces: [0]\nvars: {n: 8}\nsteps:\n  - bulk: {endpoint: 0x81, in: '${n}'}\n",
    { file: "t.yaml", vars: ["serial"] },
  );
  assert.ok(recipe.device?.serial instanceof Template);
  const step = tagStep(recipe.steps[0]!);
  assert.ok(
    step.kind === "bulk" && step.body.in instanceof Template &&
      step.body.in.source === "${n}",
  );
});

Deno.test("a variable given on the command line is known; without it, it is not", () => {
  const text = "name: t\ndevice: {serial: '${serial}'}\nsteps: [{log: hi}]\n";
  parseRecipe(text, { file: "t.yaml", vars: ["serial"] });
  assert.throws(
    () => parseRecipe(text, { file: "t.yaml" }),
    (e: unknown) =>
      e instanceof RecipeError &&
      e.message ===
        't.yaml:2:18: device.serial: unknown variable "serial" (no variables are defined at this point)',
  );
});

Deno.test("a TypeScript module's default export is validated like YAML", async () => {
  const { recipe, baseDir } = await loadRecipe(valid + "defined.ts");
  assert.equal(recipe.name, "defined in TypeScript");
  assert.equal(recipe.device?.productId, 0xa4a0);
  assert.equal(recipe.device?.wait, 250);
  assert.equal(baseDir + "/", valid);
});

Deno.test("JSON recipes load, with a $schema key", async () => {
  const { recipe } = await loadRecipe(valid + "minimal.json");
  assert.equal(recipe.device?.vendorId, 0x0525);
  assert.equal(recipe.steps.length, 2);
});

Deno.test("file data is found relative to the recipe", async () => {
  const { recipe } = await loadRecipe(valid + "with-file.yaml");
  assert.equal(recipe.steps.length, 2);
});

Deno.test("a missing file is one problem, not a crash", async () => {
  await assert.rejects(
    () => loadRecipe(valid + "nope.yaml"),
    (e: unknown) =>
      e instanceof RecipeError &&
      /nope\.yaml: recipe: cannot read the recipe: no such file$/.test(
        e.message,
      ),
  );
});

Deno.test("validateRecipe reports without positions when there is no file format", () => {
  assert.throws(
    () =>
      validateRecipe({
        name: "x",
        device: { serial: "s" },
        steps: [{ delay: "soon" }],
      }, { file: "inline" }),
    (e: unknown) =>
      e instanceof RecipeError &&
      e.message ===
        'inline: steps[0].delay: expected a delay (milliseconds, or a duration such as "100ms"), found "soon"',
  );
});

Deno.test("the JSON Schema is generated from the same schema", () => {
  const schema = recipeJsonSchema();
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.deepEqual((schema.required as string[]).sort(), ["name", "steps"]);
  // One device, or several by name.
  assert.deepEqual(schema.oneOf, [{ required: ["device"] }, {
    required: ["devices"],
  }]);
  const props = schema.properties as Record<string, Record<string, unknown>>;
  assert.ok(props.device && props.steps && props.vars && props.interfaces);
  assert.equal(schema.additionalProperties, false);
  const text = JSON.stringify(schema);
  // The step kinds and value syntaxes reach editors.
  for (
    const word of [
      "clearHalt",
      "selectAlternate",
      "sourcesink",
      "u32be",
      "minRate",
      "detachKernelDriver",
    ]
  ) {
    assert.ok(text.includes(`"${word}"`), word);
  }
  assert.ok(
    text.includes(
      "An endpoint address (0x01-0x0f for OUT, 0x81-0x8f for IN).",
    ),
  );
  // Round-trips as JSON (no functions, no cycles left inline).
  assert.deepEqual(JSON.parse(text), schema);
});

Deno.test("JSON syntax errors point at the line and column, and say what was expected", () => {
  const cases: [string, string][] = [
    [
      '{\n  "name": "x",\n  "steps": [\n    { "delay": "1ms" },\n  ]\n}\n',
      'r.json:5:3: recipe: invalid JSON: expected a value, found "]" (JSON allows no comma before ])',
    ],
    [
      '{\n  "name": "x",\n}\n',
      'r.json:3:1: recipe: invalid JSON: expected a property name in double quotes, found "}" (JSON allows no comma before })',
    ],
    [
      '{\n  "name": "x"\n  "steps": []\n}\n',
      'r.json:3:3: recipe: invalid JSON: expected "," or "}", found "\\""',
    ],
    [
      "{\n  'name': 'x'\n}\n",
      'r.json:2:3: recipe: invalid JSON: expected a property name in double quotes, found "\'"',
    ],
    [
      '{"name": "x\n"}',
      "r.json:1:12: recipe: invalid JSON: a string cannot hold a raw control character or line break (write \\n)",
    ],
    [
      '{"name": "x"} extra',
      'r.json:1:15: recipe: invalid JSON: expected the end of the file after the recipe, found "e"',
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseRecipe(text, { file: "r.json" }),
      (e: unknown) => e instanceof RecipeError && e.message === message,
      message,
    );
  }
});

// ---------------------------------------------------------------------------
// Bounded input: every cost of loading is bounded, and every refusal is a
// problem (exit 2), with a position where the format has one.

const fixtures = new URL("../fixtures/recipes/", import.meta.url).pathname;

async function problemsOf(
  load: () => Promise<unknown> | unknown,
): Promise<string> {
  try {
    await load();
  } catch (e) {
    if (e instanceof RecipeError) return e.message;
    throw e;
  }
  throw new Error("the recipe was accepted");
}

Deno.test("a file larger than MAX_RECIPE_BYTES is refused before it is read; one at the limit loads", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const recipe = "name: t\ndevice: {serial: s}\nsteps: [{log: hi}]\n";
    const atLimit = recipe + "#".repeat(MAX_RECIPE_BYTES - recipe.length - 1) +
      "\n";
    await Deno.writeTextFile(`${dir}/limit.yaml`, atLimit);
    const { recipe: loaded } = await loadRecipe(`${dir}/limit.yaml`);
    assert.equal(loaded.name, "t");
    await Deno.writeTextFile(`${dir}/big.yaml`, atLimit + "#");
    assert.equal(
      await problemsOf(() => loadRecipe(`${dir}/big.yaml`)),
      `${dir}/big.yaml: recipe: the recipe is 1.00 MiB (1048577 bytes); a recipe file may be at most 1 MiB (1048576 bytes)`,
    );
    assert.equal(
      await problemsOf(() => parseRecipe(atLimit + "#", { file: "big.yaml" })),
      "big.yaml: recipe: the recipe is larger than 1 MiB; a recipe file may be at most 1 MiB (1048576 bytes)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a device, a FIFO or a folder is not read as a recipe", async () => {
  const notFile =
    "recipe: cannot read the recipe: it is not a regular file (a device, a FIFO or a socket never ends); save the recipe to a file";
  assert.equal(
    await problemsOf(() => loadRecipe("/dev/zero")),
    `/dev/zero: ${notFile}`,
  );
  const dir = await Deno.makeTempDir();
  try {
    const made = await new Deno.Command("mkfifo", { args: [`${dir}/r.yaml`] })
      .output();
    assert.ok(made.success);
    assert.equal(
      await problemsOf(() => loadRecipe(`${dir}/r.yaml`)),
      `${dir}/r.yaml: ${notFile}`,
    );
    assert.equal(
      await problemsOf(() => loadRecipe(dir)),
      `${dir}: recipe: cannot read the recipe: it is a directory`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the message lists the first MAX_LISTED_PROBLEMS problems, then how many more; problems holds them all", () => {
  const yaml = "name: t\ndevice: {serial: s}\nsteps:\n" +
    "  - delay: soon\n".repeat(200);
  let error: unknown;
  try {
    parseRecipe(yaml, { file: "r.yaml" });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof RecipeError);
  assert.equal(error.problems.length, 200);
  const lines = error.message.split("\n");
  assert.equal(lines.length, MAX_LISTED_PROBLEMS + 1);
  assert.equal(
    lines[MAX_LISTED_PROBLEMS - 1],
    `r.yaml:${
      MAX_LISTED_PROBLEMS + 3
    }:12: steps[49].delay: expected a delay (milliseconds, or a duration such as "100ms"), found "soon"`,
  );
  assert.equal(
    lines[MAX_LISTED_PROBLEMS],
    "r.yaml: and 150 more problems (only the first 50 are listed)",
  );
});

Deno.test("40,000 variables load, and a duplicate among them is found at its line", () => {
  const n = 40_000;
  let yaml = "name: t\ndevice: {serial: s}\nsteps: [{log: hi}]\nvars:\n";
  for (let i = 0; i < n; i++) yaml += `  v${i}: ${i}\n`;
  const recipe = parseRecipe(yaml, { file: "r.yaml" });
  assert.equal(Object.keys(recipe.vars ?? {}).length, n);
  assert.equal(recipe.vars?.[`v${n - 1}`], n - 1);
  assert.equal(
    problemsNow(() => parseRecipe(yaml + "  v17: 0\n", { file: "r.yaml" })),
    `r.yaml:${n + 5}:3: recipe: invalid YAML: Map keys must be unique`,
  );
});

function problemsNow(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof RecipeError) return e.message;
    throw e;
  }
  throw new Error("the recipe was accepted");
}

Deno.test("anchors and aliases still work, within bounds", () => {
  const recipe = parseRecipe(
    [
      "name: t",
      "device: {serial: s}",
      "interfaces: [0]",
      "steps:",
      "  - bulk: {endpoint: 0x81, in: 4, expect: &four {length: 4}}",
      "  - bulk: {endpoint: 0x81, in: 8, expect: *four}",
      "  - &hi {log: hi}",
      "  - *hi",
    ].join("\n"),
    { file: "r.yaml" },
  );
  const [a, b, , d] = recipe.steps.map(tagStep);
  assert.ok(a?.kind === "bulk" && b?.kind === "bulk");
  assert.deepEqual(b.body.expect, a.body.expect);
  assert.ok(d?.kind === "log" && d.body === "hi");
});

Deno.test("a TypeScript module that never finishes loading is a problem at its line 1, after the timeout", async () => {
  assert.equal(
    await problemsOf(() =>
      loadRecipe(fixtures + "never_settles.ts", { moduleTimeout: 300 })
    ),
    `${fixtures}never_settles.ts:1:1: recipe: the module did not finish loading within 300 ms (a top-level await that never settles?)`,
  );
});

Deno.test("a TypeScript module's default export must be data: a function is named where it is", async () => {
  assert.equal(
    await problemsOf(() => loadRecipe(fixtures + "not_data.ts")),
    `${fixtures}not_data.ts: recipe: the default export is not plain data (steps[0].log is a function)`,
  );
});

Deno.test("--var values known when loading are checked as the run will see them; names alone are not", () => {
  const yaml =
    "name: t\ndevice: {serial: s}\ninterfaces: [0]\nsteps:\n  - bulk: {endpoint: '${ep}', in: 8}\n";
  assert.equal(
    problemsNow(() =>
      parseRecipe(yaml, { file: "r.yaml", vars: { ep: "0x02" } })
    ),
    "r.yaml:5:22: steps[0].bulk.endpoint: 0x02 is an OUT endpoint (bit 7 clear), but this step reads from it (in); IN endpoints are 0x81-0x8f",
  );
  parseRecipe(yaml, { file: "r.yaml", vars: ["ep"] });
  parseRecipe(yaml, { file: "r.yaml", vars: { ep: "0x81" } });
});

Deno.test("the JSON Schema describes every field an editor shows", () => {
  const text = JSON.stringify(recipeJsonSchema());
  for (
    const phrase of [
      "The request's type, bits 5-6 of bmRequestType",
      "Who the request is for, bits 0-4 of bmRequestType",
      "The status the transfer must end with (default ok)",
      "Fields of the received data to keep as variables",
      "What a failure of this step does",
      "A generated pattern of `length` bytes",
      "The length of each packet of an iso OUT transfer",
    ]
  ) {
    assert.ok(text.includes(phrase), phrase);
  }
});

Deno.test("deeply nested JSON with a syntax error is a nesting problem, not a stack overflow", () => {
  assert.equal(
    problemsNow(() => parseRecipe("[".repeat(100_000), { file: "r.json" })),
    `r.json:1:${
      MAX_NESTING + 1
    }: recipe: lists and mappings nest more than 64 levels deep here; a recipe needs far fewer`,
  );
});
