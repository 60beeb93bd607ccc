import assert from "node:assert/strict";
import {
  loadRecipe,
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
  assert.equal(recipe.device.vendorId, 0x0525);
  assert.equal(recipe.device.productId, 0xa4a0);
  assert.equal(recipe.device.wait, 1500);
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
  assert.ok(recipe.device.serial instanceof Template);
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
  assert.equal(recipe.device.productId, 0xa4a0);
  assert.equal(recipe.device.wait, 250);
  assert.equal(baseDir + "/", valid);
});

Deno.test("JSON recipes load, with a $schema key", async () => {
  const { recipe } = await loadRecipe(valid + "minimal.json");
  assert.equal(recipe.device.vendorId, 0x0525);
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
  assert.deepEqual((schema.required as string[]).sort(), [
    "device",
    "name",
    "steps",
  ]);
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
  assert.ok(text.includes("An endpoint address (a number 0x01-0xff)."));
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
