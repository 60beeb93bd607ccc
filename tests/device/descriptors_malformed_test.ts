// Malformed devices (issue 14), written in TypeScript and plugged into the
// guest's kernel over USB/IP: for each, what usbkit's lenient parse of the
// sysfs `descriptors` file says is checked against what the kernel made of
// the same bytes, read from sysfs (and, for the one value sysfs does not
// show, the kernel log). Also: a deauthorized device is reported as such.
//
//   deno task test --device-only -- --filter "/malformed/"

import assert from "node:assert/strict";
import { type DeviceInfo, listDevices } from "../../src/enumeration.ts";
import { intervalMicroseconds } from "../../src/descriptors.ts";
import { formatDeviceTree } from "../../src/format.ts";
import { attachLocal, VHCI_SYSFS } from "../../src/usbip/mod.ts";
import {
  MALFORMED,
  RawDescriptorDevice,
  type RawDeviceSpec,
} from "../fixtures/descriptor_devices.ts";

const VHCI = (() => {
  try {
    Deno.statSync(`${VHCI_SYSFS}/attach`);
    return true;
  } catch {
    console.error(
      "descriptors_malformed_test: vhci_hcd is not loaded: ignored",
    );
    return false;
  }
})();

/** sysfs attributes are read asynchronously (see usbip_test.ts: the device lock). */
async function read(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
}

async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + 20000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Plugs `spec` in, runs `fn` with what usbkit lists for it and its sysfs directory. */
async function withDevice(
  spec: RawDeviceSpec,
  fn: (info: DeviceInfo, sys: string) => Promise<void>,
): Promise<void> {
  const a = await attachLocal(new RawDescriptorDevice(spec), {
    timeout: 30000,
  });
  try {
    const sys = `/sys/bus/usb/devices/${a.portPath}`;
    await waitFor(
      "the configuration",
      async () => (await read(`${sys}/bConfigurationValue`)) || undefined,
    );
    const info = (await listDevices()).find((d) => d.portPath === a.portPath);
    assert.ok(info, a.portPath);
    await fn(info, sys);
  } finally {
    await a.detach();
  }
}

/** The interface directories of the active configuration, as sysfs has them. */
async function sysInterfaces(sys: string, port: string): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir(sys)) {
    if (e.name.startsWith(`${port}:`)) {
      out.push(
        parseInt((await read(`${sys}/${e.name}/bInterfaceNumber`))!, 16),
      );
    }
  }
  return out.sort((a, b) => a - b);
}

const opts = { ignore: !VHCI, sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...opts,
  name:
    "malformed: a configuration descriptor inside the configuration is skipped, the interfaces after it kept (sysfs)",
  async fn() {
    await withDevice(MALFORMED.typeTwoInside!, async (info, sys) => {
      const c = info.configurations[0]!;
      const kernel = await sysInterfaces(sys, info.portPath);
      assert.deepEqual(kernel, [0, 1], "the kernel kept both interfaces");
      assert.deepEqual(c.interfaces.map((i) => i.interfaceNumber), kernel);
      // config.c sets bNumInterfaces to the interfaces it kept ("%2d").
      assert.equal(
        Number(await read(`${sys}/bNumInterfaces`)),
        c.interfaces.length,
      );
      const eps = c.interfaces[0]!.alternates[0]!.endpoints.map((e) =>
        e.address
      );
      assert.ok(
        await read(`${sys}/${info.portPath}:1.0/ep_81/bEndpointAddress`),
      );
      assert.deepEqual(eps, [0x81]);
      assert.ok(
        info.warnings.some((w) =>
          /unexpected descriptor of type 0x02, skipping/.test(w)
        ),
        info.warnings.join("\n"),
      );
    });
  },
});

Deno.test({
  ...opts,
  name:
    "malformed: with a device descriptor inside and two configurations, both configurations are listed (sysfs)",
  async fn() {
    await withDevice(MALFORMED.typeOneInsideTwoConfigs!, async (info, sys) => {
      assert.equal(await read(`${sys}/bNumConfigurations`), "2");
      assert.deepEqual(info.configurations.map((c) => c.configurationValue), [
        1,
        2,
      ]);
      const kernel = await sysInterfaces(sys, info.portPath);
      const active = info.configurations.find((c) =>
        c.configurationValue === info.activeConfiguration
      )!;
      assert.deepEqual(active.interfaces.map((i) => i.interfaceNumber), kernel);
      assert.equal(info.descriptorError, undefined);
      assert.equal(info.warnings.length, 2, info.warnings.join("\n"));
    });
  },
});

Deno.test({
  ...opts,
  name:
    "malformed: bInterval 0 and 255 on high-speed interrupt endpoints: raw and in force, as sysfs's endpoint attributes",
  async fn() {
    await withDevice(MALFORMED.badIntervals!, async (info, sys) => {
      const eps =
        info.configurations[0]!.interfaces[0]!.alternates[0]!.endpoints;
      assert.deepEqual(eps.map((e) => e.interval), [0, 255], "raw values kept");
      for (const e of eps) {
        const dir = `${sys}/${info.portPath}:1.0/ep_${e.address.toString(16)}`;
        // endpoint.c: bInterval "%02x" and interval "%d%cs" of the in-memory (corrected) descriptor.
        assert.equal(
          parseInt((await read(`${dir}/bInterval`))!, 16),
          e.intervalInForce,
        );
        const us = intervalMicroseconds(e, "high");
        assert.equal(
          await read(`${dir}/interval`),
          us % 1000 === 0 ? `${us / 1000}ms` : `${us}us`,
        );
      }
      assert.deepEqual(eps.map((e) => e.intervalInForce), [7, 11]);
      assert.match(
        formatDeviceTree(info),
        /bInterval +255 +kernel uses 11: 128 ms/,
      );
    });
  },
});

Deno.test({
  ...opts,
  name:
    "malformed: wBytesPerInterval 0 on a SuperSpeed interrupt IN endpoint: the correction the kernel logs",
  async fn() {
    await withDevice(MALFORMED.zeroBytesPerInterval!, async (info) => {
      const comp = info.configurations[0]!.interfaces[0]!.alternates[0]!
        .endpoints[0]!.companion!;
      assert.equal(comp.bytesPerInterval, 0);
      assert.deepEqual(comp.corrections, [{
        field: "wBytesPerInterval",
        raw: 0,
        inForce: 64,
      }]);
      // sysfs does not show companions; the kernel's notice does (config.c).
      const log = new TextDecoder().decode(
        (await new Deno.Command("dmesg", { stdout: "piped" }).output()).stdout,
      );
      assert.match(
        log,
        /Int endpoint with wBytesPerInterval of 0 in config 1 interface 0 altsetting 0 ep 129: setting to 64/,
      );
    });
  },
});

Deno.test({
  ...opts,
  name:
    "malformed: two alternate settings numbered 0: one kept (the kernel's), one current",
  async fn() {
    await withDevice(MALFORMED.duplicateAlternate!, async (info, sys) => {
      const alts = info.configurations[0]!.interfaces[0]!.alternates;
      assert.equal(alts.length, 1);
      assert.equal(
        alts[0]!.interfaceClass,
        parseInt(
          (await read(`${sys}/${info.portPath}:1.0/bInterfaceClass`))!,
          16,
        ),
      );
      assert.equal(alts[0]!.endpoints[0]!.address, 0x81);
      assert.ok(
        await read(`${sys}/${info.portPath}:1.0/ep_81/bEndpointAddress`),
      );
      assert.equal(
        await read(`${sys}/${info.portPath}:1.0/ep_82/bEndpointAddress`),
        undefined,
      );
      assert.equal(formatDeviceTree(info).match(/\(current/g)?.length, 1);
      assert.equal(info.configurations[0]!.skipped.length, 2);
    });
  },
});

Deno.test({
  ...opts,
  name:
    "malformed: a deauthorized device is reported as not authorized, not as unconfigured",
  async fn() {
    await withDevice(MALFORMED.badIntervals!, async (info, sys) => {
      assert.equal(info.authorized, true);
      await Deno.writeTextFile(`${sys}/authorized`, "0");
      try {
        await waitFor(
          "deauthorization",
          async () =>
            (await read(`${sys}/bConfigurationValue`)) === ""
              ? true
              : undefined,
        );
        const off = (await listDevices()).find((d) =>
          d.portPath === info.portPath
        )!;
        assert.equal(off.authorized, false);
        assert.equal(off.activeConfiguration, undefined);
        assert.match(formatDeviceTree(off), /not authorized/);
      } finally {
        await Deno.writeTextFile(`${sys}/authorized`, "1");
      }
      await waitFor(
        "authorization",
        async () => (await read(`${sys}/bConfigurationValue`)) || undefined,
      );
      const on = (await listDevices()).find((d) =>
        d.portPath === info.portPath
      )!;
      assert.equal(on.authorized, true);
      assert.equal(on.activeConfiguration, 1);
    });
  },
});
