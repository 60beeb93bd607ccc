// The recipe's public types are written out (src/recipe/types.ts) so that
// the package publishes without slow types and without zod's types in its
// API. That they are exactly what the zod schema infers is asserted where
// the unexported schemas are visible, in src/recipe/schema.ts (a mismatch
// fails `deno check`). Here: the exported schemas carry those types, the
// public entry shows no zod, and the types catch mistakes as they are typed.

import assert from "node:assert/strict";
import type { z } from "zod";
import * as recipes from "../../src/recipe/mod.ts";
import {
  defineRecipe,
  type parseRecipe,
  type Recipe,
  type RecipeInput,
  type SAVE_TYPES,
  type SaveType,
  type Step,
  STEP_KINDS,
  type StepBody,
  type StepInput,
  type StepKind,
  tagStep,
  Template,
} from "../../src/recipe/mod.ts";
import { RecipeSchema, StepSchema } from "../../src/recipe/schema.ts";

/** True when A and B are the same type, not merely assignable to each other. */
type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends
  (<X>() => X extends B ? 1 : 2) ? true : false;
function assertType<_ extends true>(): void {}

Deno.test("types: the exported schemas have the written-out types", () => {
  assertType<Equals<z.output<typeof RecipeSchema>, Recipe>>();
  assertType<Equals<z.input<typeof RecipeSchema>, RecipeInput>>();
  assertType<Equals<z.output<typeof StepSchema>, Step>>();
  assertType<Equals<z.input<typeof StepSchema>, StepInput>>();
  assertType<Equals<typeof STEP_KINDS[number], StepKind>>();
  assertType<Equals<typeof SAVE_TYPES[number], SaveType>>();
  assertType<Equals<ReturnType<typeof parseRecipe>, Recipe>>();
  assertType<Equals<StepBody<"delay">, number | Template<number>>>();
});

Deno.test("types: every step kind is a key of the step schema", () => {
  const shape = (StepSchema as unknown as z.ZodObject).shape;
  assert.deepEqual(Object.keys(shape), [...STEP_KINDS]);
});

Deno.test("types: the recipes entry exports no zod schema", () => {
  for (const [name, value] of Object.entries(recipes)) {
    assert.ok(
      !(value !== null && typeof value === "object" && "_zod" in value),
      `${name} is a zod schema`,
    );
  }
  assert.ok(!("RecipeSchema" in recipes) && !("StepSchema" in recipes));
});

Deno.test("types: defineRecipe catches mistakes as they are typed", () => {
  const ok = defineRecipe({
    name: "sizes",
    device: { vendorId: 0x0525, productId: "0xa4a0", wait: "5s" },
    interfaces: [0, { number: 1, detachKernelDriver: true }],
    vars: { n: 512 },
    steps: [
      {
        bulk: { endpoint: 0x81, in: "${n}", expect: { pattern: "sourcesink" } },
      },
      { control: { requestType: "vendor", request: 1, out: [1, 2, 3] } },
      { iso: { endpoint: 0x83, in: [192, 192] } },
      { reset: null },
      { waitFor: { timeout: "2s" } },
      { repeat: { count: 2, steps: [{ delay: "1ms" }, { log: "hi" }] } },
    ],
  });
  const device = { serial: "1" };
  const bad: (RecipeInput | StepInput)[] = [
    // @ts-expect-error: a misspelt key
    { name: "x", device, stpes: [] },
    // @ts-expect-error: endpoint is a number or text
    { bulk: { endpoint: true } },
    // @ts-expect-error: not a step kind
    { sleep: 5 },
    // @ts-expect-error: requestType is standard, class or vendor
    { control: { requestType: "x", request: 1 } },
  ];
  assert.equal(bad.length, 4);

  // What the types promise is what validation gives.
  const recipe: Recipe = RecipeSchema.parse(ok);
  assert.equal(recipe.device?.productId, 0xa4a0);
  const first = tagStep(recipe.steps[0]!);
  assert.ok(first.kind === "bulk");
  assert.ok(first.body.in instanceof Template);
  assert.deepEqual(recipe.interfaces, [
    { number: 0 },
    { number: 1, detachKernelDriver: true },
  ]);
  const control = tagStep(recipe.steps[1]!);
  assert.ok(control.kind === "control");
  assert.deepEqual(control.body.out, { list: [1, 2, 3] });
  assert.deepEqual(tagStep(recipe.steps[3]!), { kind: "reset", body: {} });
});
