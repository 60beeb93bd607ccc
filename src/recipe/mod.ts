/**
 * Transfer recipes: a USB test sequence written as data (YAML, JSON, or a
 * TypeScript module), checked before anything touches a device, run with
 * timing and expectations, and reported for people and for CI.
 *
 * A recipe names a device and lists steps: control, bulk, interrupt and
 * isochronous transfers with expectations on their data, captures into
 * variables (`save`) used by later steps (`${name}`), streams with a rate
 * floor, delays, repeats, resets, clear-halt and alternate settings.
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
 * @module
 */

export {
  type DataSpec,
  defineRecipe,
  type DeviceSelectorSpec,
  type Expectation,
  issuesToProblems,
  nearest,
  type Recipe,
  type RecipeInput,
  recipeJsonSchema,
  RecipeSchema,
  SAVE_TYPES,
  type SaveSpec,
  type SaveType,
  type SchemaProblem,
  type Step,
  STEP_KINDS,
  type StepBody,
  type StepKind,
  type StreamExpectation,
  type TaggedStep,
  tagStep,
} from "./schema.ts";
export {
  formatPath,
  formatProblem,
  type LoadedRecipe,
  type LoadOptions,
  loadRecipe,
  parseRecipe,
  RecipeError,
  type RecipeProblem,
  validateRecipe,
} from "./load.ts";
export {
  describeFound,
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
  formatVar,
  hasReferences,
  interpolate,
  InterpolationError,
  parseTemplate,
  referencesIn,
  type Resolved,
  resolveTemplates,
  Template,
  type TemplatePart,
  VAR_FORMATS,
  VAR_NAME,
  type VarFormat,
  variablesIn,
  type Vars,
  type VarValue,
} from "./interpolate.ts";
export {
  capture,
  type CheckedExpectation,
  checkTransfer,
  comparePattern,
  type Failure,
  hexDiff,
  PatternChecker,
  type TransferOutcome,
} from "./expect.ts";
export {
  dataBytes,
  DEFAULT_TIMEOUT_MS,
  describeData,
  describeSelector,
  describeStep,
  type DeviceOpener,
  type DeviceReady,
  type RecipeDevice,
  type RecipeDeviceSelector,
  type RecipeEndpoint,
  type RecipeInResult,
  type RecipeInterface,
  type RecipeOutResult,
  type RecipeSetup,
  type RecipeTransferOptions,
  type RunObserver,
  type RunOptions,
  type RunOutcome,
  runRecipe,
  type RunResult,
  type RunStart,
  type StepResult,
  type StepStart,
  type StepStatus,
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
export { escapeXml, junitReport, writeJunitReport } from "./report_junit.ts";
export {
  type CliIo,
  EXIT_FAILED,
  EXIT_PASSED,
  EXIT_USAGE,
  RUN_HELP,
  runCommand,
  SCHEMA_HELP,
  schemaCommand,
} from "./cli.ts";
