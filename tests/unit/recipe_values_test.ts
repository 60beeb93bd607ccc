import assert from "node:assert/strict";
import {
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
  sourceSinkByte,
  ValueError,
} from "../../src/recipe/values.ts";

Deno.test("parseInteger reads decimal, 0x, 0b and 0o, and checks the range", () => {
  assert.equal(parseInteger("0x81"), 0x81);
  assert.equal(parseInteger("0X7F"), 0x7f);
  assert.equal(parseInteger("0b1010"), 10);
  assert.equal(parseInteger("0o17"), 15);
  assert.equal(parseInteger(" 1_000 "), 1000);
  assert.equal(parseInteger(255, { min: 0, max: 255 }), 255);
  assert.throws(() => parseInteger("0x8g"), ValueError);
  assert.throws(() => parseInteger("12abc"), ValueError);
  assert.throws(() => parseInteger(1.5), ValueError);
  assert.throws(() => parseInteger(256, { max: 255 }), /too large/);
  assert.throws(() => parseInteger(-1, { min: 0 }), /too small/);
});

Deno.test("parseSize reads plain bytes, SI and IEC units", () => {
  assert.equal(parseSize(512), 512);
  assert.equal(parseSize("512"), 512);
  assert.equal(parseSize("0x200"), 512);
  assert.equal(parseSize("64KiB"), 65536);
  assert.equal(parseSize("64 KiB"), 65536);
  assert.equal(parseSize("64kib"), 65536);
  assert.equal(parseSize("64MiB"), 64 * 1024 * 1024);
  assert.equal(parseSize("1GiB"), 1024 ** 3);
  assert.equal(parseSize("1.5MB"), 1_500_000);
  assert.equal(parseSize("2k"), 2000);
  assert.equal(parseSize("10B"), 10);
  assert.throws(() => parseSize("64KiBs"), /unknown unit "KiBs"/);
  assert.throws(() => parseSize("0.5B"), /whole number/);
  assert.throws(() => parseSize("lots"), /not a size/);
  assert.throws(() => parseSize(-1), ValueError);
});

Deno.test("parseRate reads bytes and bits per second", () => {
  assert.equal(parseRate("100MB/s"), 100e6);
  assert.equal(parseRate("5 MiB/s"), 5 * 1024 * 1024);
  assert.equal(parseRate("1.5kB/s"), 1500);
  assert.equal(parseRate("480Mbit/s"), 60e6);
  assert.equal(parseRate("8bit/s"), 1);
  assert.equal(parseRate(1234), 1234);
  assert.throws(() => parseRate("100MB"), /ends in "\/s"/);
  assert.throws(() => parseRate("fast/s"), ValueError);
  assert.throws(() => parseRate(-5), ValueError);
});

Deno.test("parseDuration reads milliseconds and units", () => {
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration("250"), 250);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("1s"), 1000);
  assert.equal(parseDuration("1.5 s"), 1500);
  assert.equal(parseDuration("2min"), 120_000);
  assert.equal(parseDuration("100us"), 0.1);
  assert.throws(() => parseDuration("1 fortnight"), /unknown unit "fortnight"/);
  assert.throws(() => parseDuration("soon"), ValueError);
});

Deno.test("parseHex reads the usual ways of writing bytes", () => {
  assert.deepEqual([...parseHex("12 01 00 02")], [0x12, 1, 0, 2]);
  assert.deepEqual([...parseHex("12010002")], [0x12, 1, 0, 2]);
  assert.deepEqual([...parseHex("12:01:00:02")], [0x12, 1, 0, 2]);
  assert.deepEqual([...parseHex("0x12, 0x01")], [0x12, 1]);
  assert.deepEqual([...parseHex("de-ad be-EF")], [0xde, 0xad, 0xbe, 0xef]);
  assert.deepEqual([...parseHex("  \n ")], []);
  assert.throws(() => parseHex("12 3"), /"3" has an odd number of hex digits/);
  assert.throws(() => parseHex("12 zz"), /"z" is not a hex digit/);
  assert.throws(
    () => parseHex("12 ??"),
    /wildcards only belong in expectations/,
  );
});

Deno.test("parseHexPattern keeps ?? wildcards as null", () => {
  assert.deepEqual(parseHexPattern("55 53 ?? 53"), [0x55, 0x53, null, 0x53]);
  assert.deepEqual(parseHexPattern("55??53"), [0x55, null, 0x53]);
  assert.deepEqual(parseHexPattern("????"), [null, null]);
  assert.throws(() => parseHexPattern("3?"), /mixes a digit with "\?"/);
  assert.throws(() => parseHexPattern("?"), /odd number/);
});

Deno.test("formatters write for people", () => {
  assert.equal(formatHex(new Uint8Array([0x12, 1, 0xff])), "12 01 ff");
  assert.equal(formatHex(new Uint8Array(5), 2), "00 00 …");
  assert.equal(formatSize(31), "31 B");
  assert.equal(formatSize(4096), "4 KiB");
  assert.equal(formatSize(1536), "1.50 KiB");
  assert.equal(formatSize(64 * 1024 * 1024), "64 MiB");
  assert.equal(formatRate(5e6), "5.00 MB/s");
  assert.equal(formatRate(123.4e6), "123 MB/s");
  assert.equal(formatDuration(0.42), "0.42 ms");
  assert.equal(formatDuration(1500), "1.50 s");
  assert.equal(describeFound("0x8g"), '"0x8g"');
  assert.equal(describeFound(300), "300 (0x12c)");
  assert.equal(describeFound(7), "7");
  assert.equal(describeFound(undefined), "nothing");
  assert.equal(describeFound({}), "a mapping");
  assert.equal(describeFound(""), "an empty string");
});

Deno.test("patterns: sequence, zeros, seeded random, and the SourceSink pattern", () => {
  const seq = makePattern("sequence", 300);
  assert.equal(seq[0], 0);
  assert.equal(seq[255], 255);
  assert.equal(seq[256], 0);
  assert.ok(makePattern("zeros", 64).every((b) => b === 0));
  assert.deepEqual(
    makePattern("random", 32, { seed: 9 }),
    makePattern("random", 32, { seed: 9 }),
  );
  assert.notDeepEqual(
    makePattern("random", 32, { seed: 9 }),
    makePattern("random", 32, { seed: 10 }),
  );
  assert.equal(makePattern("random", 200_000).length, 200_000);
  // f_sourcesink.c: (i % maxpacket) % 63, restarting with every packet.
  const ss = makePattern("sourcesink", 2048, { maxPacketSize: 1024 });
  assert.equal(ss[62], 62);
  assert.equal(ss[63], 0);
  assert.equal(ss[1023], 1023 % 63);
  assert.equal(ss[1024], 0);
  assert.equal(sourceSinkByte(1024 + 64, 1024), 1);
});
