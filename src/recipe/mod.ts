/**
 * Transfer recipes: a USB test sequence written as data (YAML, JSON, or a
 * TypeScript module), checked before anything touches a device, run with
 * timing and expectations, and reported for people and for CI.
 *
 * A recipe names a device and lists steps: control, bulk, interrupt and
 * isochronous transfers with expectations on their data, captures into
 * variables (`save`) used by later steps (`${name}`), streams with a rate
 * floor, delays, repeats, resets, clear-halt and alternate settings. A
 * recipe can also sequence a bench: several named `devices`, each step on
 * the one it names, waits for devices to appear or disappear, re-enumeration
 * after a reset, unplug and plug on the virtual bench, `finally` steps that
 * always run, and a timeout for the whole run (`recipeTimeout`).
 *
 * ```yaml
 * # recipes/sourcesink-smoke.yaml (abridged)
 * name: SourceSink smoke
 * device: { vendorId: 0x0525, productId: 0xa4a0, wait: 5s }
 * interfaces: [{ number: 0, detachKernelDriver: true }]
 * steps:
 *   - bulk: { endpoint: 0x81, in: 4096, expect: { length: 4096, pattern: sourcesink } }
 *   - stream: { endpoint: 0x81, bytes: 64MiB, expect: { minRate: 5MB/s } }
 * ```
 *
 * Run it with `usb run recipes/sourcesink-smoke.yaml`, or from code:
 *
 * @example Validating and planning a recipe, with no device
 * ```ts
 * import { formatPlan, parseRecipe } from "./mod.ts";
 * const recipe = parseRecipe(
 *   "name: smoke\ndevice: {vendorId: 0x0525, productId: 0xa4a0}\ninterfaces: [0]\n" +
 *     "steps:\n  - bulk: {endpoint: 0x81, in: 512, expect: {pattern: sourcesink}}\n",
 *   { file: "smoke.yaml" },
 * );
 * console.log(formatPlan(recipe, "smoke.yaml"));
 * ```
 *
 * ## Recipes in TypeScript
 *
 * A recipe can also be a TypeScript (or JavaScript) module, `.ts`, `.mts`,
 * `.js` or `.mjs`, whose default export is the recipe: the same data as the
 * YAML, with `defineRecipe` so that the editor checks it as it is typed.
 * Code can build what YAML would spell out (a table of requests, computed
 * lengths), and the module may import others.
 *
 * `usb run my-recipe.ts` (and {@linkcode loadRecipe}) imports the module in a
 * worker and validates its default export like a YAML recipe. So the export
 * must be plain data (no functions or class instances: they are refused,
 * naming where they are), the module must finish loading within
 * {@linkcode MODULE_TIMEOUT_MS} (10 s; a top-level `await` that never
 * settles is reported at line 1), and its timers and pending promises stay
 * in the worker, which is stopped once the recipe is read. Problems carry
 * the path in the recipe (`steps[0].bulk.endpoint`)
 * but no line: the loader sees the value, not the source. `{ file }` data is
 * read relative to the module's folder, as for YAML.
 *
 * @example A recipe module, `sourcesink-in.ts`
 * ```ts
 * import { defineRecipe } from "./mod.ts";
 *
 * const sizes = [512, 1024, 4096];
 * export default defineRecipe({
 *   name: "SourceSink bulk IN sizes",
 *   device: { vendorId: 0x0525, productId: 0xa4a0, wait: "5s" },
 *   interfaces: [{ number: 0, detachKernelDriver: true }],
 *   steps: sizes.map((n) => ({
 *     bulk: { endpoint: 0x81, in: n, expect: { length: n, pattern: "sourcesink" } },
 *   })),
 * });
 * ```
 *
 * @example Loading such a module, as `usb run` and `usb run --dry-run` do
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadRecipe } from "./mod.ts";
 * const dir = await Deno.makeTempDir();
 * const usbkit = new URL("./mod.ts", import.meta.url).href;
 * await Deno.writeTextFile(
 *   `${dir}/sourcesink-in.ts`,
 *   `import { defineRecipe } from ${JSON.stringify(usbkit)};
 *    export default defineRecipe({
 *      name: "SourceSink bulk IN sizes",
 *      device: { vendorId: 0x0525, productId: 0xa4a0 },
 *      interfaces: [0],
 *      steps: [512, 1024].map((n) => ({ bulk: { endpoint: 0x81, in: n } })),
 *    });`,
 * );
 * const { recipe } = await loadRecipe(`${dir}/sourcesink-in.ts`);
 * assert.equal(recipe.steps.length, 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export type * from "./types.ts";
export {
  defineRecipe,
  DEVICE_STEP_KINDS,
  MAX_CONTROL_LENGTH,
  MAX_ISO_PACKET,
  recipeDevices,
  recipeJsonSchema,
  SAVE_TYPES,
  SINGLE_DEVICE,
  STEP_KINDS,
  tagStep,
} from "./schema.ts";
export {
  formatPath,
  formatProblem,
  type LoadedRecipe,
  type LoadOptions,
  loadRecipe,
  type Locator,
  MAX_ALIAS_VALUES,
  MAX_LISTED_PROBLEMS,
  MAX_NESTING,
  MAX_RECIPE_BYTES,
  MAX_RECIPE_VALUES,
  MAX_REPEAT_NESTING,
  MODULE_TIMEOUT_MS,
  parseRecipe,
  RecipeError,
  type RecipeProblem,
  validateRecipe,
} from "./load.ts";
export {
  formatDuration,
  formatHex,
  formatRate,
  formatSize,
  makePattern,
  parseDuration,
  parseHex,
  parseHexPattern,
  parseInteger,
  parseRate,
  parseSize,
  type PatternByte,
  type PatternKind,
  sourceSinkByte,
  ValueError,
} from "./values.ts";
export {
  InterpolationError,
  type Resolved,
  resolveTemplates,
  Template,
  VAR_FORMATS,
  VAR_NAME,
  type VarFormat,
  type Vars,
  type VarValue,
} from "./interpolate.ts";
export {
  type CheckedExpectation,
  type Failure,
  type TransferOutcome,
} from "./expect.ts";
export {
  DEFAULT_TIMEOUT_MS,
  describeStep,
  type DeviceOpener,
  type DeviceReady,
  type RecipeBench,
  type RecipeDevice,
  type RecipeDeviceSelector,
  type RecipeEndpoint,
  type RecipeHotplug,
  type RecipeInResult,
  type RecipeInterface,
  type RecipeOutResult,
  type RecipeSetup,
  type RecipeTransferOptions,
  type RecipeWaitOptions,
  type RunDevice,
  type RunObserver,
  type RunOptions,
  type RunOutcome,
  runRecipe,
  type RunResult,
  type RunStart,
  type StepResult,
  type StepStart,
  type StepStatus,
  type StepWait,
  type StreamProgress,
} from "./runner.ts";
export {
  formatFailure,
  formatPlan,
  type TerminalOptions,
  TerminalReporter,
  writerFor,
} from "./report_terminal.ts";
export {
  jsonReport,
  REPORT_DATA_BYTES,
  type ReportData,
  writeJsonReport,
} from "./report_json.ts";
export { junitReport, writeJunitReport } from "./report_junit.ts";
// The type of RunOptions.capture; the class itself is in the main entry
// (usbkit), which also starts captures.
export type { Capture, CaptureFormat } from "../capture/capture.ts";
