// `usb serve` on the host: loading device modules (every accepted kind of
// default export, and every way one can be wrong), --tcp addresses, usage
// errors, --dry-run, and a command not run when the devices cannot be
// attached. Attaching for real is in the guest (tests/device/,
// tests/vm_test.ts).

import assert from "node:assert/strict";
import { UsbError } from "../../src/errors.ts";
import { main } from "../../scripts/usb.ts";
import {
  DEVICES_ENV,
  EXIT_NOT_RUN,
  loadDevice,
  parseTcpAddress,
  servedDevices,
} from "../../scripts/serve_device.ts";

const EMULATED = new URL("../../src/emulated/mod.ts", import.meta.url).href;
const EXAMPLES = new URL("../../scripts/examples/", import.meta.url).pathname;

const DEFINITION = `{
  speed: "full", vendorId: 0x1209, productId: 0x0042, product: "Fixture",
  interfaces: [{ endpoints: [{ address: 0x81, type: "bulk" }] }],
}`;

async function withModules(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "usbkit-serve-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) },
    out,
    err,
  };
}

Deno.test("loadDevice: a definition, an EmulatedDevice, or a function returning either", async () => {
  await withModules({
    "definition.ts": `export default ${DEFINITION};`,
    "device.ts": `import { defineDevice } from "${EMULATED}";
export default defineDevice(${DEFINITION});`,
    "factory.ts": `export default () => (${DEFINITION});`,
    "async_factory.ts": `import { defineDevice } from "${EMULATED}";
export default async () => defineDevice(${DEFINITION});`,
  }, async (dir) => {
    for (
      const name of [
        "definition.ts",
        "device.ts",
        "factory.ts",
        "async_factory.ts",
      ]
    ) {
      const d = await loadDevice(`${dir}/${name}`);
      assert.equal(d.file, `${dir}/${name}`);
      assert.equal(d.device.summary.productId, 0x0042, name);
      assert.equal(d.device.speed, "full", name);
      assert.equal(
        d.definition === undefined,
        name === "device.ts" || name === "async_factory.ts",
        name,
      );
      d.device.close();
    }
  });
});

Deno.test("loadDevice: a file given twice is two devices with their own state", async () => {
  const file = `${EXAMPLES}vendor_device.ts`;
  const a = await loadDevice(file, 0);
  const b = await loadDevice(file, 1);
  const c = await loadDevice(file, 1);
  assert.notEqual(a.definition, b.definition);
  assert.equal(b.definition, c.definition, "the same copy is the same module");
  const signal = new AbortController().signal;
  const setup = (bytes: number[]) => ({
    endpoint: 0,
    direction: (bytes[0]! & 0x80 ? "in" : "out") as "in" | "out",
    setup: new Uint8Array(bytes),
    length: bytes[6]!,
    transferFlags: 0,
    signal,
  });
  // LED on in a only: b still reads 0.
  await a.device.handleUrb(setup([0x40, 0x02, 1, 0, 0, 0, 0, 0]));
  const led = (d: typeof a) =>
    d.device.handleUrb(setup([0xc0, 0x03, 0, 0, 0, 0, 1, 0]));
  assert.deepEqual([...(await led(a)).data!], [1]);
  assert.deepEqual([...(await led(b)).data!], [0]);
  for (const d of [a, b, c]) d.device.close();
});

Deno.test("loadDevice: every mistake is a UsbError naming the file", async () => {
  await withModules({
    "none.ts": `export const x = 1;`,
    "number.ts": `export default 42;`,
    "invalid.ts":
      `export default { speed: "high", vendorId: 1, productId: 2, interfaces: [{ endpoints: [{ address: 0x81, type: "bulk", maxPacketSize: 4000 }] }] };`,
    "syntax.ts": `export default {`,
    "throws.ts": `throw new Error("boom at load");`,
  }, async (dir) => {
    const cases: [string, string, RegExp][] = [
      ["missing.ts", "not-found", /no device module at .*missing\.ts/],
      ["none.ts", "invalid-argument", /none\.ts has no default export/],
      ["number.ts", "invalid-argument", /the default export is number/],
      [
        "invalid.ts",
        "invalid-argument",
        /invalid\.ts: interfaces\[0\]\.endpoints\[0\]\.maxPacketSize must be 512/,
      ],
      ["syntax.ts", "invalid-argument", /syntax\.ts does not load/],
      [
        "throws.ts",
        "invalid-argument",
        /throws\.ts does not load: boom at load/,
      ],
    ];
    for (const [name, code, message] of cases) {
      await assert.rejects(
        loadDevice(`${dir}/${name}`),
        (e: unknown) =>
          e instanceof UsbError && e.code === code && message.test(e.message),
        name,
      );
    }
  });
});

Deno.test("parseTcpAddress: PORT, HOST:PORT, [IPv6]:PORT; anything else is refused", () => {
  assert.deepEqual(parseTcpAddress("3240"), {
    hostname: "0.0.0.0",
    port: 3240,
  });
  assert.deepEqual(parseTcpAddress("10.0.0.2:5000"), {
    hostname: "10.0.0.2",
    port: 5000,
  });
  assert.deepEqual(parseTcpAddress("[::]:3240"), {
    hostname: "::",
    port: 3240,
  });
  for (const bad of ["", "x", ":3240", "65536", "1.2.3.4:", "h:-1", "3240x"]) {
    assert.throws(
      () => parseTcpAddress(bad),
      (e: unknown) => e instanceof UsbError && e.code === "invalid-argument",
      bad,
    );
  }
});

Deno.test("servedDevices reads $USBKIT_DEVICES", () => {
  assert.deepEqual(servedDevices({ [DEVICES_ENV]: "" }), []);
  assert.deepEqual(
    servedDevices({ [DEVICES_ENV]: '[{"id":"1209:0001"}]' }).map((d) => d.id),
    ["1209:0001"],
  );
  assert.throws(() => servedDevices({ [DEVICES_ENV]: "{}" }), /JSON array/);
});

Deno.test("usb serve: usage errors exit 2 with a hint", async () => {
  for (
    const [args, message] of [
      [["serve"], /needs a device module/],
      [["serve", "--bogus", "x.ts"], /bogus/],
      [["serve", `${EXAMPLES}vendor_device.ts`, "--"], /nothing after --/],
      [["serve", `${EXAMPLES}vendor_device.ts`, "--tcp", "nope"], /--tcp/],
      [
        ["serve", `${EXAMPLES}vendor_device.ts`, "--tcp", "3240", "--drivers"],
        /--drivers applies to devices attached here/,
      ],
      [["serve", `${EXAMPLES}vendor_device.ts`, "--timeout", "0"], /--timeout/],
    ] as const
  ) {
    const c = capture();
    assert.equal(await main([...args], c.io), 2, args.join(" "));
    assert.match(c.err.join("\n"), message);
  }
});

Deno.test("usb serve --dry-run: every example loads; lines or JSON", async () => {
  const files = ["vendor_device.ts", "serial_device.ts", "keyboard_device.ts"]
    .map((f) => `${EXAMPLES}${f}`);
  const c = capture();
  assert.equal(await main(["serve", "--dry-run", ...files], c.io), 0);
  assert.equal(c.out.length, 3);
  assert.match(c.out[0]!, /1209:0001 "Vendor bulk example", high speed/);
  assert.match(c.out[1]!, /1209:0002 "CDC ACM loopback example", full speed/);
  assert.match(c.out[2]!, /1209:0003 "Keyboard example", full speed/);

  const j = capture();
  assert.equal(
    await main(["serve", "--dry-run", "--json", files[1]!], j.io),
    0,
  );
  const parsed = JSON.parse(j.out.join("\n"));
  assert.deepEqual(
    parsed.map((d: { interfaces: { interfaceClass: number }[] }) =>
      d.interfaces.map((i) => i.interfaceClass)
    ),
    [[2, 10]],
  );
});

Deno.test({
  name:
    "usb serve -- COMMAND: when the devices cannot be attached (no vhci_hcd here), the command is not run and the status is 125",
  ignore: (() => {
    try {
      Deno.statSync("/sys/devices/platform/vhci_hcd.0/attach");
      return true; // vhci_hcd is loaded: attaching could succeed
    } catch {
      return false;
    }
  })(),
  async fn() {
    await withModules({}, async (dir) => {
      const c = capture();
      const code = await main([
        "serve",
        `${EXAMPLES}vendor_device.ts`,
        "--",
        "sh",
        "-c",
        `touch ${dir}/ran`,
      ], c.io);
      assert.equal(code, EXIT_NOT_RUN);
      assert.match(c.err.join("\n"), /vhci_hcd .* is not loaded/);
      assert.match(c.err.join("\n"), /sh was not run/);
      await assert.rejects(Deno.stat(`${dir}/ran`), Deno.errors.NotFound);
    });
  },
});
