import assert from "node:assert/strict";
import {
  formatVar,
  hasReferences,
  interpolate,
  InterpolationError,
  parseTemplate,
  referencesIn,
  resolveTemplates,
  Template,
  variablesIn,
} from "../../src/recipe/interpolate.ts";
import { parseHex, parseInteger } from "../../src/recipe/values.ts";

Deno.test("interpolate replaces references with values", () => {
  assert.equal(
    interpolate("LBA ${lba} of ${name}", { lba: 2047, name: "disk" }),
    "LBA 2047 of disk",
  );
  assert.equal(interpolate("${ lba }", { lba: 1 }), "1");
  assert.equal(interpolate("no references", {}), "no references");
  assert.equal(interpolate("$${literal}", {}), "${literal}");
  assert.equal(interpolate("$5 and ${x}", { x: "y" }), "$5 and y");
});

Deno.test("formats splice numbers into hex data", () => {
  assert.equal(
    interpolate("28 00 ${lba:u32be} 00", { lba: 0x7ff }),
    "28 00 00 00 07 ff 00",
  );
  assert.equal(formatVar(512, "u32le"), "00 02 00 00");
  assert.equal(formatVar(512, "u16be"), "02 00");
  assert.equal(formatVar(16, "u8"), "10");
  assert.equal(formatVar(255, "hex"), "0xff");
  assert.equal(formatVar("0x10", "dec"), "16");
  assert.throws(() => formatVar(256, "u8"), /does not fit in 1 byte/);
  assert.throws(() => formatVar("abc", "u16le"), /not a whole number/);
});

Deno.test("unknown variables and bad syntax are errors that say so", () => {
  assert.throws(
    () => interpolate("${nope}", { lba: 1 }),
    /unknown variable "nope" \(known: lba\)/,
  );
  assert.throws(() => interpolate("${nope}", {}), /no variables are defined/);
  assert.throws(() => parseTemplate("${lba"), /has no closing "}"/);
  assert.throws(() => parseTemplate("${1x}"), /is not a variable reference/);
  assert.throws(() => parseTemplate("${x:u64}"), /unknown format "u64"/);
  assert.throws(
    () => interpolate("${x}", Object.create({ x: 1 })),
    InterpolationError,
  );
});

Deno.test("hasReferences and variablesIn find references", () => {
  assert.ok(hasReferences("a ${b}"));
  assert.ok(!hasReferences("a $${b}"));
  assert.ok(!hasReferences("$5"));
  assert.deepEqual(variablesIn("${a} ${b:u8} ${a}"), ["a", "b"]);
});

Deno.test("templates resolve and parse at run time, with the field's path on failure", () => {
  const endpoint = new Template(
    "${ep}",
    "an endpoint address",
    (s) => parseInteger(s, { min: 1, max: 255 }),
  );
  const data = new Template("55 ${tag:u8}", "hex data", parseHex);
  const step = { endpoint, out: { hex: data }, fixed: 7, list: [endpoint] };
  const resolved = resolveTemplates(
    step,
    { ep: "0x81", tag: 3 },
    "steps[0].bulk",
  );
  assert.equal(resolved.endpoint, 0x81);
  assert.deepEqual([...resolved.out.hex], [0x55, 3]);
  assert.equal(resolved.fixed, 7);
  assert.deepEqual(resolved.list, [0x81]);
  assert.deepEqual(
    referencesIn(step, "steps[0].bulk").map((r) => `${r.path}:${r.name}`),
    [
      "steps[0].bulk.endpoint:ep",
      "steps[0].bulk.out.hex:tag",
      "steps[0].bulk.list[0]:ep",
    ],
  );
  assert.throws(
    () => resolveTemplates(step, { ep: "0x1ff", tag: 3 }, "steps[0].bulk"),
    (e: unknown) =>
      e instanceof InterpolationError && e.path === "steps[0].bulk.endpoint" &&
      e.message ===
        'expected an endpoint address, found "0x1ff" (from "${ep}": too large)',
  );
});
