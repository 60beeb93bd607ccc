/**
 * Every file in tests/fixtures/recipes/invalid/ is a recipe with mistakes; the
 * .expected file beside it holds the exact messages, one a line:
 * `file:line:column: path: what was expected, and what was found`.
 */
import assert from "node:assert/strict";
import { loadRecipe, RecipeError } from "../../src/recipe/load.ts";

const dir = new URL("../fixtures/recipes/invalid/", import.meta.url).pathname;
const fixtures = [...Deno.readDirSync(dir)]
  .map((e) => e.name)
  .filter((n) => /\.(ya?ml|json|ts)$/.test(n))
  .sort();

Deno.test("there are at least 30 invalid recipe fixtures", () => {
  assert.ok(fixtures.length >= 30, `only ${fixtures.length} fixtures`);
});

for (const name of fixtures) {
  Deno.test(`invalid recipe ${name}`, async () => {
    const expected = Deno.readTextFileSync(
      dir + name.replace(/\.\w+$/, ".expected"),
    ).trimEnd();
    let error: unknown;
    try {
      await loadRecipe(dir + name);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof RecipeError, `${name} was accepted`);
    // Messages name the file as given; the fixtures hold it without its folder.
    assert.equal(error.message.replaceAll(dir, ""), expected);
    assert.ok(error.problems.length >= 1);
  });
}
