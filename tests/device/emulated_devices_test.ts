// Devices written in TypeScript (scripts/examples/) against the real kernel,
// over USB/IP (run in the guest with --module vhci-hcd):
//
// - the kernel's class drivers bind them and carry data: cdc_acm makes a
//   /dev/ttyACM* whose bytes reach the TS device and come back; usbhid and
//   hid-generic turn the TS keyboard's reports into input events, and an
//   LED set through evdev reaches the TS keyboard;
// - usbkit drives the vendor device at full, high and SuperSpeed (bulk
//   pattern, echo, interrupt event, vendor requests), and what the kernel
//   enumerated, what usbkit parses and what `usb describe` prints match the
//   definition field by field.
//
//   deno task vm --module vhci-hcd -- deno test -A --no-check --cached-only tests/device/emulated_devices_test.ts
//
// The guest has no udev: the class drivers are loaded for each device by
// modalias (kernel/guest.ts loadDrivers) and unloaded again after, so the
// rest of the suite finds the kernel as it was.

import assert from "node:assert/strict";
import { type DeviceInfo, listDevices, open } from "../../mod.ts";
import { hexBytes } from "../../src/format.ts";
import { defineDevice, encodeDescriptors } from "../../src/emulated/mod.ts";
import {
  type DeviceModel,
  resolveDefinition,
} from "../../src/emulated/model.ts";
import { attachLocal, VHCI_SYSFS } from "../../src/usbip/mod.ts";
import {
  benchInfo,
  inGuest,
  loadDrivers,
  unloadModules,
} from "../../kernel/guest.ts";
import {
  cdcAcm,
  type SerialState,
} from "../../scripts/examples/serial_device.ts";
import { keyboard } from "../../scripts/examples/keyboard_device.ts";
import {
  patternByte,
  vendorBulk,
  VendorRequest,
} from "../../scripts/examples/vendor_device.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const VHCI = (() => {
  try {
    Deno.statSync(`${VHCI_SYSFS}/attach`);
    return true;
  } catch {
    console.error(
      "emulated_devices_test: vhci_hcd is not loaded (deno task vm --module vhci-hcd): tests ignored",
    );
    return false;
  }
})();
/** Class drivers are loaded from the bench's module tree. */
const DRIVERS = VHCI && inGuest() && benchInfo().modulesRoot !== undefined;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Polls `check` (bounded) for state the kernel changes asynchronously. */
async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + 20000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The driver bound to an interface, e.g. "cdc_acm", or undefined. */
async function driverOf(sysfs: string): Promise<string | undefined> {
  try {
    return (await Deno.readLink(`${sysfs}/driver`)).split("/").pop();
  } catch {
    return undefined;
  }
}

/** Entries of a sysfs directory matching `re` (async: never the device's thread). */
async function entries(dir: string, re: RegExp): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (re.test(e.name)) out.push(e.name);
    }
  } catch { /* not there (yet) */ }
  return out.sort();
}

interface Run {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** A subprocess: the TS device lives on this thread, which must stay free to answer. */
async function run(cmd: string, args: string[]): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: out.stdout,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

// ---------------------------------------------------------------------------
// Kernel class drivers

Deno.test({
  name:
    "cdc_acm binds the TypeScript CDC ACM device: bytes written to /dev/ttyACM* reach it and come back, and stty's line coding arrives",
  ignore: !DRIVERS,
  async fn() {
    const state: SerialState = {
      lineCoding: new Uint8Array(7),
      dtr: false,
      rts: false,
    };
    const a = await attachLocal(defineDevice(cdcAcm({ state })));
    let loaded: string[] = [];
    try {
      loaded = await loadDrivers(a.portPath);
      const sys = `/sys/bus/usb/devices/${a.portPath}`;
      assert.equal(await driverOf(`${sys}:1.0`), "cdc_acm");
      assert.equal(await driverOf(`${sys}:1.1`), "cdc_acm");
      const [tty] = await waitFor(
        "the tty",
        async () => {
          const t = await entries(`${sys}:1.0/tty`, /^ttyACM\d+$/);
          return t.length > 0 ? t : undefined;
        },
      );
      const dev = `/dev/${tty}`;
      await waitFor("its device node", async () => {
        try {
          await Deno.stat(dev);
          return true;
        } catch {
          return undefined;
        }
      });

      // Every byte value, raw: the tty changes nothing.
      const payload = crypto.getRandomValues(new Uint8Array(512));
      payload.set(Uint8Array.from({ length: 256 }, (_, i) => i));
      const dir = await Deno.makeTempDir({ prefix: "usbkit-acm-" });
      try {
        await Deno.writeFile(`${dir}/out`, payload);
        const r = await run("sh", [
          "-c",
          // Open the tty (cdc_acm starts reading), write, read the echo.
          `stty -F "$1" 9600 raw -echo && exec 3<>"$1" && cat "$2/out" >&3 && timeout 20 head -c ${payload.length} <&3 >"$2/in"`,
          "sh",
          dev,
          dir,
        ]);
        assert.equal(r.code, 0, r.stderr);
        const echoed = await Deno.readFile(`${dir}/in`);
        assert.equal(echoed.length, payload.length);
        assert.ok(sameBytes(echoed, payload), "the echo differs");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
      assert.equal(state.received, payload.length, "bytes the device got");
      // stty 9600 raw: 9600 baud, 1 stop bit, no parity, 8 data bits.
      assert.deepEqual([...state.lineCoding], [0x80, 0x25, 0, 0, 0, 0, 8]);
      // Closing the tty dropped DTR and RTS (hupcl).
      assert.ok(!state.dtr && !state.rts);
    } finally {
      await a.detach();
      assert.deepEqual(await unloadModules(loaded), []);
    }
  },
});

Deno.test({
  name:
    "close() gives cdc_acm back both interfaces it spans: every claim is released before any driver is bound",
  ignore: !DRIVERS,
  async fn() {
    const a = await attachLocal(defineDevice(cdcAcm()));
    let loaded: string[] = [];
    try {
      loaded = await loadDrivers(a.portPath);
      const sys = `/sys/bus/usb/devices/${a.portPath}`;
      assert.equal(await driverOf(`${sys}:1.0`), "cdc_acm");
      assert.equal(await driverOf(`${sys}:1.1`), "cdc_acm");
      // usbkit in another process: this one serves the device, and a
      // blocking ioctl here would hold up its answers.
      const mod = new URL("../../mod.ts", import.meta.url).href;
      const r = await run(Deno.execPath(), [
        "eval",
        "--no-check",
        "--cached-only",
        `import { open } from "${mod}";
         const dev = await open(${JSON.stringify(a.portPath)});
         const comm = await dev.claimInterface(0, { detachKernelDriver: true });
         const data = await dev.claimInterface(1, { detachKernelDriver: true });
         console.log(comm.detachedDriver, data.detachedDriver);
         await dev.close();`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      // Detaching cdc_acm from its control interface also let go of the
      // data interface (acm_disconnect releases both), so only the first
      // claim detached a driver; close() must still give cdc_acm both.
      assert.match(new TextDecoder().decode(r.stdout), /^cdc_acm undefined$/m);
      assert.equal(await driverOf(`${sys}:1.0`), "cdc_acm");
      assert.equal(await driverOf(`${sys}:1.1`), "cdc_acm");
    } finally {
      await a.detach();
      assert.deepEqual(await unloadModules(loaded), []);
    }
  },
});

/** struct input_event on x86_64: timeval (16), type u16, code u16, value s32. */
const EVENT_SIZE = 24;
const EV_SYN = 0, EV_KEY = 1, EV_LED = 0x11;
const KEY_A = 30, KEY_B = 48, KEY_LEFTSHIFT = 42, LED_CAPSL = 1;

Deno.test({
  name:
    "usbhid binds the TypeScript keyboard: key presses defined in TS arrive as input events, and an LED set through evdev reaches it",
  ignore: !DRIVERS,
  async fn() {
    const kbd = keyboard({ serialNumber: "KBD-TEST" });
    const a = await attachLocal(defineDevice(kbd.definition));
    let loaded: string[] = [];
    try {
      loaded = await loadDrivers(a.portPath);
      const iface = `/sys/bus/usb/devices/${a.portPath}:1.0`;
      assert.equal(await driverOf(iface), "usbhid");
      // usbhid made a HID device, hid-generic an input device, evdev its node.
      const [hid] = await entries(
        iface,
        /^[0-9A-F]{4}:1209:0003\.[0-9A-F]{4}$/,
      );
      assert.ok(hid !== undefined, "no HID device under the interface");
      assert.equal(await driverOf(`${iface}/${hid}`), "hid-generic");
      const [input] = await entries(`${iface}/${hid}/input`, /^input\d+$/);
      assert.ok(input !== undefined, "no input device");
      const inputDir = `${iface}/${hid}/input/${input}`;
      assert.equal(
        (await Deno.readTextFile(`${inputDir}/name`)).trim(),
        "usbkit Keyboard example",
      );
      const [event] = await waitFor("the event device", async () => {
        const e = await entries(inputDir, /^event\d+$/);
        return e.length > 0 ? e : undefined;
      });

      // usbhid polls the interrupt endpoint while the event device is open.
      const file = await Deno.open(`/dev/input/${event}`, {
        read: true,
        write: true,
      });
      try {
        kbd.press([0x04]); // a
        kbd.release();
        kbd.type("B"); // Shift + b
        const keys: [number, number][] = [];
        const buf = new Uint8Array(EVENT_SIZE * 64);
        while (keys.length < 6) {
          const n = await file.read(buf);
          assert.ok(n !== null && n % EVENT_SIZE === 0, `read ${n}`);
          const v = new DataView(buf.buffer, 0, n);
          for (let o = 0; o < n; o += EVENT_SIZE) {
            const type = v.getUint16(o + 16, true);
            const code = v.getUint16(o + 18, true);
            const value = v.getInt32(o + 20, true);
            // Autorepeat (value 2) would only mean the emulator was slow.
            if (type === EV_KEY && value !== 2) keys.push([code, value]);
          }
        }
        assert.deepEqual(keys, [
          [KEY_A, 1],
          [KEY_A, 0],
          [KEY_LEFTSHIFT, 1],
          [KEY_B, 1],
          [KEY_LEFTSHIFT, 0],
          [KEY_B, 0],
        ]);
        assert.equal(kbd.pending, 0);

        // Caps Lock on through evdev: hid-input sends the output report.
        const ev = new Uint8Array(EVENT_SIZE * 2);
        const w = new DataView(ev.buffer);
        w.setUint16(16, EV_LED, true);
        w.setUint16(18, LED_CAPSL, true);
        w.setInt32(20, 1, true);
        w.setUint16(EVENT_SIZE + 16, EV_SYN, true);
        let written = 0;
        while (written < ev.length) {
          written += await file.write(ev.subarray(written));
        }
        await waitFor(
          "the LED report",
          () => kbd.leds === 0x02 ? true : undefined,
        );
      } finally {
        file.close();
      }
    } finally {
      await a.detach();
      assert.deepEqual(await unloadModules(loaded), []);
    }
  },
});

// ---------------------------------------------------------------------------
// usbkit drives the vendor device; descriptors against the definition

/** Every descriptor field the kernel enumerated, against the resolved definition. */
function assertMatchesModel(info: DeviceInfo, m: DeviceModel): void {
  const d = info.device;
  const str = (i: number) => i === 0 ? undefined : m.strings.entries.get(i);
  assert.deepEqual(
    {
      usbVersion: d.usbVersion,
      deviceClass: d.deviceClass,
      deviceSubclass: d.deviceSubclass,
      deviceProtocol: d.deviceProtocol,
      maxPacketSize0: d.usbVersion >= 0x0300
        ? 2 ** d.maxPacketSize0
        : d.maxPacketSize0,
      vendorId: d.vendorId,
      productId: d.productId,
      deviceVersion: d.deviceVersion,
      manufacturer: info.manufacturerName,
      product: info.productName,
      serial: info.serialNumber,
      numConfigurations: d.numConfigurations,
    },
    {
      usbVersion: m.usbVersion,
      deviceClass: m.class,
      deviceSubclass: m.subclass,
      deviceProtocol: m.protocol,
      maxPacketSize0: m.maxPacketSize0,
      vendorId: m.vendorId,
      productId: m.productId,
      deviceVersion: m.deviceVersion,
      manufacturer: str(m.manufacturerIndex),
      product: str(m.productIndex),
      serial: str(m.serialNumberIndex),
      numConfigurations: m.configurations.length,
    },
  );
  assert.equal(info.configurations.length, m.configurations.length);
  for (const [ci, cm] of m.configurations.entries()) {
    const c = info.configurations[ci]!;
    assert.deepEqual(
      [
        c.configurationValue,
        c.configurationStringIndex,
        c.selfPowered,
        c.remoteWakeup,
        c.maxPower,
      ],
      [cm.value, cm.nameIndex, cm.selfPowered, cm.remoteWakeup, cm.maxPower],
      `configuration ${ci}`,
    );
    assert.equal(c.interfaces.length, cm.interfaces.length);
    for (const [ii, im] of cm.interfaces.entries()) {
      const alts = c.interfaces[ii]!.alternates;
      assert.equal(alts.length, im.alternates.length);
      for (const [ai, am] of im.alternates.entries()) {
        const alt = alts[ai]!;
        const where = `interface ${ii} alternate ${ai}`;
        assert.deepEqual(
          [
            alt.interfaceNumber,
            alt.alternateSetting,
            alt.interfaceClass,
            alt.interfaceSubclass,
            alt.interfaceProtocol,
            alt.interfaceStringIndex,
          ],
          [
            am.interfaceNumber,
            am.alternate,
            am.class,
            am.subclass,
            am.protocol,
            am.nameIndex,
          ],
          where,
        );
        assert.deepEqual(
          alt.extra.map((x) => hexBytes(x.raw)),
          am.extra.map((x) => hexBytes(x)),
          `${where}: class descriptors`,
        );
        assert.deepEqual(
          alt.endpoints.map((e) => ({
            address: e.address,
            type: e.type,
            attributes: e.attributes,
            maxPacketSize: e.packetSize,
            transactions: e.transactionsPerMicroframe,
            interval: e.interval,
            companion: e.companion === undefined ? undefined : {
              maxBurst: e.companion.maxBurst,
              attributes: e.companion.attributes,
              bytesPerInterval: e.companion.bytesPerInterval,
            },
          })),
          am.endpoints.map((e) => ({
            address: e.address,
            type: e.type,
            attributes: e.attributes,
            maxPacketSize: e.maxPacketSize,
            transactions: e.transactions,
            interval: e.interval,
            companion: e.companion === undefined ? undefined : {
              maxBurst: e.companion.maxBurst,
              attributes: e.companion.attributes,
              bytesPerInterval: e.companion.bytesPerInterval,
            },
          })),
          `${where}: endpoints`,
        );
      }
    }
  }
}

/** The `name value` fields of `usb describe`'s tree, in order. */
function describeFields(text: string): [string, string][] {
  const out: [string, string][] = [];
  // The descriptors the model defines come first; what describe reads from
  // the device beyond them (BOS, qualifier, status, as lsusb prints them)
  // follows, and is checked on its own.
  const end = text.search(DETAIL_SECTIONS);
  const defined = end < 0 ? text : text.slice(0, end);
  for (const line of defined.split("\n")) {
    const m = /^\s+([bwi][A-Za-z0-9]+|idVendor|idProduct)\s+(\S+)/.exec(line);
    if (m) out.push([m[1]!, m[2]!]);
  }
  return out;
}

/** Sections `usb describe` prints after the configurations. */
const DETAIL_SECTIONS =
  /^(Binary Object Store Descriptor:|Device Qualifier|Other Speed Configuration:|Hub Descriptor:|Device Status:)/m;

/** What `usb describe` must print for the model, field by field. */
function expectedFields(
  m: DeviceModel,
  encodedConfigurations: readonly Uint8Array[],
): [string, string][] {
  const h2 = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;
  const h4 = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;
  const usb3 = m.usbVersion >= 0x0300;
  const out: [string, string][] = [
    ["bLength", "18"],
    ["bDescriptorType", "1"],
    ["bcdUSB", h4(m.usbVersion)],
    ["bDeviceClass", h2(m.class)],
    ["bDeviceSubClass", h2(m.subclass)],
    ["bDeviceProtocol", h2(m.protocol)],
    [
      "bMaxPacketSize0",
      String(usb3 ? Math.log2(m.maxPacketSize0) : m.maxPacketSize0),
    ],
    ["idVendor", h4(m.vendorId)],
    ["idProduct", h4(m.productId)],
    // BCD, as lsusb prints it: 0x0100 is "1.00".
    [
      "bcdDevice",
      `${(m.deviceVersion >> 8).toString(16)}.${
        (m.deviceVersion & 0xff).toString(16).padStart(2, "0")
      }`,
    ],
    ["iManufacturer", String(m.manufacturerIndex)],
    ["iProduct", String(m.productIndex)],
    ["iSerialNumber", String(m.serialNumberIndex)],
    ["bNumConfigurations", String(m.configurations.length)],
  ];
  for (const [ci, c] of m.configurations.entries()) {
    const total = encodedConfigurations[ci]!.length;
    out.push(
      ["bLength", "9"],
      ["bDescriptorType", "2"],
      ["wTotalLength", h4(total)],
      ["bNumInterfaces", String(c.interfaces.length)],
      ["bConfigurationValue", String(c.value)],
      ["iConfiguration", String(c.nameIndex)],
      [
        "bmAttributes",
        h2(0x80 | (c.selfPowered ? 0x40 : 0) | (c.remoteWakeup ? 0x20 : 0)),
      ],
      ["bMaxPower", String(c.maxPower)],
    );
    for (const i of c.interfaces) {
      for (const a of i.alternates) {
        out.push(
          ["bLength", "9"],
          ["bDescriptorType", "4"],
          ["bInterfaceNumber", String(a.interfaceNumber)],
          ["bAlternateSetting", String(a.alternate)],
          ["bNumEndpoints", String(a.endpoints.length)],
          ["bInterfaceClass", h2(a.class)],
          ["bInterfaceSubClass", h2(a.subclass)],
          ["bInterfaceProtocol", h2(a.protocol)],
          ["iInterface", String(a.nameIndex)],
        );
        for (const e of a.endpoints) {
          out.push(
            ["bLength", "7"],
            ["bDescriptorType", "5"],
            ["bEndpointAddress", h2(e.address)],
            ["bmAttributes", h2(e.attributes)],
            [
              "wMaxPacketSize",
              h4(e.maxPacketSize | ((e.transactions - 1) << 11)),
            ],
            ["bInterval", String(e.interval)],
          );
          if (e.companion !== undefined) {
            out.push(
              ["bLength", "6"],
              ["bDescriptorType", "48"],
              ["bMaxBurst", String(e.companion.maxBurst)],
              ["bmAttributes", h2(e.companion.attributes)],
              ["wBytesPerInterval", String(e.companion.bytesPerInterval)],
            );
          }
        }
      }
    }
  }
  return out;
}

const SPEED_SYSFS = { full: "12", high: "480", super: "5000" } as const;

for (const speed of ["full", "high", "super"] as const) {
  Deno.test({
    name:
      `usbkit drives the TypeScript vendor device at ${speed} speed: pattern, echo, interrupt event and vendor requests byte for byte; the enumerated descriptors and \`usb describe\` match the definition`,
    ignore: !VHCI,
    async fn() {
      const definition = vendorBulk({ speed, serialNumber: `VND-${speed}` });
      const model = resolveDefinition(definition);
      const encoded = encodeDescriptors(definition);
      const a = await attachLocal(defineDevice(definition));
      try {
        const sys = `/sys/bus/usb/devices/${a.portPath}`;
        assert.equal(
          (await Deno.readTextFile(`${sys}/speed`)).trim(),
          SPEED_SYSFS[speed],
        );
        assert.match(
          await Deno.readTextFile(`${sys}/../product`),
          /USB\/IP Virtual Host Controller/,
        );
        if (speed === "super") {
          assert.match(
            (await Deno.readTextFile(`${sys}/../speed`)).trim(),
            /^(5000|10000|20000)$/,
            "a SuperSpeed device is on vhci_hcd's SuperSpeed hub",
          );
        }

        // What the kernel enumerated, as usbkit parses it.
        const info = (await listDevices()).find((d) =>
          d.portPath === a.portPath
        );
        assert.ok(info !== undefined, `usbkit does not list ${a.portPath}`);
        assert.equal(info.speed, speed);
        assert.equal(info.devnode, a.devnode);
        assert.equal(info.descriptorError, undefined);
        assert.equal(
          hexBytes(info.descriptors),
          hexBytes(encoded.descriptorsFile),
          "sysfs descriptors are the encoded definition",
        );
        assertMatchesModel(info, model);
        assert.deepEqual(
          [info.manufacturerName, info.productName, info.serialNumber],
          [definition.manufacturer, definition.product, `VND-${speed}`],
        );
        assert.equal(info.activeConfiguration, 1);
        assert.equal(
          info.interfaces[0]?.interfaceName,
          "Pattern, loopback, events",
        );

        // usbkit drives it.
        {
          await using dev = await open(a.devnode);
          const iface = await dev.claimInterface(0);
          const mps = model.configurations[0]!.interfaces[0]!.alternates[0]!
            .endpoints[0]!.maxPacketSize;
          for (const n of [1, mps + 7, 4096]) {
            const r = await iface.endpoint(0x81).transferIn(n, {
              timeout: 10000,
            });
            assert.equal(r.status, "ok");
            assert.equal(r.data.length, n);
            assert.ok(
              r.data.every((b, i) => b === patternByte(i, mps)),
              `pattern, ${n} bytes`,
            );
          }
          let total = 0;
          for (const n of [5, mps, 1000]) {
            const out = crypto.getRandomValues(new Uint8Array(n));
            const w = await iface.endpoint(0x02).transferOut(out, {
              timeout: 10000,
            });
            assert.deepEqual(w, { status: "ok", bytesWritten: n });
            total += n;
            // A chunk of a multiple of maxPacketSize ends with a ZLP.
            const r = await iface.endpoint(0x82).transferIn(4096, {
              timeout: 10000,
            });
            assert.ok(sameBytes(r.data, out), `echo of ${n} bytes`);
          }
          const event = await iface.endpoint(0x83).transferIn(8, {
            timeout: 10000,
          });
          assert.equal(event.data.length, 4);
          assert.equal(
            new DataView(event.data.buffer, event.data.byteOffset).getUint32(
              0,
              true,
            ),
            total,
          );
          const vendor = (request: number, value = 0) => ({
            requestType: "vendor" as const,
            recipient: "device" as const,
            request,
            value,
            index: 0,
          });
          assert.deepEqual(
            [
              ...(await dev.controlTransferIn(
                vendor(VendorRequest.GetVersion),
                2,
              )).data,
            ],
            [0, 1],
          );
          await dev.controlTransferOut(vendor(VendorRequest.SetLed, 1));
          assert.deepEqual(
            [
              ...(await dev.controlTransferIn(vendor(VendorRequest.GetLed), 1))
                .data,
            ],
            [1],
          );
          const counter = await dev.controlTransferIn(
            vendor(VendorRequest.GetCounter),
            4,
          );
          assert.equal(
            new DataView(counter.data.buffer, counter.data.byteOffset)
              .getUint32(0, true),
            total,
          );
          const refused = await dev.controlTransferIn(vendor(0x7f), 1);
          assert.equal(refused.status, "stall");
        }

        // `usb describe`, the tree and the JSON, from another process.
        const describe = (...extra: string[]) =>
          run(Deno.execPath(), [
            "run",
            "-A",
            "--cached-only",
            "scripts/usb.ts",
            "describe",
            a.devnode,
            ...extra,
          ]);
        const [text, json] = await Promise.all([
          describe(),
          describe("--json"),
        ]);
        assert.equal(text.code, 0, text.stderr);
        const tree = new TextDecoder().decode(text.stdout);
        assert.match(
          tree,
          new RegExp(
            `^Bus \\d{3} Device \\d{3}: ID 1209:0001 usbkit Vendor bulk example$`,
            "m",
          ),
        );
        assert.match(tree, new RegExp(`, ${speed} speed \\(`));
        assert.match(
          tree,
          new RegExp(`iInterface\\s+\\d+\\s+"Pattern, loopback, events"`),
        );
        assert.deepEqual(
          describeFields(tree),
          expectedFields(model, encoded.configurations),
        );
        // Beyond the definition: the device status always, the qualifier of
        // a high-speed device, the BOS of a SuperSpeed one (USB 3.2 §9.6.2).
        assert.match(tree, /^Device Status: +0x[0-9a-f]{4}$/m);
        if (speed === "high") assert.match(tree, /^Device Qualifier/m);
        if (speed === "super") {
          assert.match(tree, /^Binary Object Store Descriptor:/m);
        }

        assert.equal(json.code, 0, json.stderr);
        const j = JSON.parse(new TextDecoder().decode(json.stdout));
        assert.equal(j.vendorId, 0x1209);
        assert.equal(j.productId, 0x0001);
        assert.equal(j.speed, speed);
        assert.equal(j.serialNumber, `VND-${speed}`);
        assert.equal(j.descriptors, hexBytes(encoded.descriptorsFile));
        assert.equal(j.capabilitiesError, null);
        const alt = j.configurations[0].interfaces[0].alternates[0];
        assert.deepEqual(
          alt.endpoints.map((
            e: Record<string, unknown>,
          ) => [e.address, e.type, e.packetSize, e.interval]),
          model.configurations[0]!.interfaces[0]!.alternates[0]!.endpoints.map(
            (e) => [e.address, e.type, e.maxPacketSize, e.interval],
          ),
        );
      } finally {
        await a.detach();
      }
    },
  });
}

// ---------------------------------------------------------------------------
// `usb serve`: a device module served until a signal, locally and over TCP

const USBIP_TOOL = "/usr/sbin/usbip";

/** `usb serve ARGS --json` in the background: the JSON it prints once the devices are up. */
async function startServe(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--cached-only",
      "scripts/usb.ts",
      "serve",
      "--json",
      ...args,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let ready: unknown;
  while (ready === undefined) {
    const { value, done } = await reader.read();
    if (done) {
      const status = await child.status;
      throw new Error(
        `usb serve exited ${status.code} before serving:\n${text}\n${await stderr}`,
      );
    }
    text += value;
    try {
      ready = JSON.parse(text);
    } catch { /* not all of it yet */ }
  }
  return {
    ready,
    /** Sends `signal` and returns the exit status and everything printed after. */
    async stop(signal: Deno.Signal) {
      child.kill(signal);
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
      }
      return {
        code: (await child.status).code,
        stdout: rest,
        stderr: await stderr,
      };
    },
  };
}

Deno.test({
  name:
    "usb serve FILE: attaches the device and says where; SIGTERM unplugs it (the kernel sees it go) and exits 143",
  ignore: !VHCI,
  async fn() {
    const serve = await startServe(["scripts/examples/vendor_device.ts"]);
    const [d] = serve.ready as {
      id: string;
      devnode: string;
      portPath: string;
      product: string;
      speed: string;
    }[];
    assert.ok(d !== undefined);
    assert.deepEqual(
      [d.id, d.product, d.speed],
      ["1209:0001", "Vendor bulk example", "high"],
    );
    const sys = `/sys/bus/usb/devices/${d.portPath}`;
    assert.equal((await Deno.readTextFile(`${sys}/idVendor`)).trim(), "1209");
    {
      // Another process drives it while `usb serve` serves it.
      await using dev = await open(d.devnode);
      const iface = await dev.claimInterface(0);
      const r = await iface.endpoint(0x81).transferIn(512, { timeout: 10000 });
      assert.ok(r.data.every((b, i) => b === patternByte(i, 512)));
    }
    const end = await serve.stop("SIGTERM");
    assert.equal(end.code, 143, end.stderr);
    assert.match(end.stderr, /SIGTERM, unplugging/);
    await assert.rejects(Deno.stat(`${sys}/idVendor`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(d.devnode), Deno.errors.NotFound);
  },
});

Deno.test({
  name:
    "usb serve FILE --tcp: the usbip client attaches the device; Ctrl-C (SIGINT) unplugs it from the client and exits 130",
  ignore: !VHCI || (() => {
    try {
      Deno.statSync(USBIP_TOOL);
      return false;
    } catch {
      return true;
    }
  })(),
  async fn() {
    // The guest has no network, but loopback works once it is up.
    await new Deno.Command("ip", { args: ["link", "set", "lo", "up"] })
      .output();
    const serve = await startServe([
      "scripts/examples/serial_device.ts",
      "--tcp",
      "127.0.0.1:0",
    ]);
    const [e] = serve.ready as { busid: string; port: number }[];
    assert.ok(e !== undefined);
    assert.equal(e.busid, "1-1");
    const attach = await run(USBIP_TOOL, [
      "--tcp-port",
      String(e.port),
      "attach",
      "-r",
      "127.0.0.1",
      "-b",
      e.busid,
    ]);
    assert.equal(attach.code, 0, attach.stderr);
    // Found by its serial number once the client's vhci_hcd enumerated it.
    const port = await waitFor("the imported device", async () => {
      for (const p of await entries("/sys/bus/usb/devices", /^\d+-[\d.]+$/)) {
        const sys = `/sys/bus/usb/devices/${p}`;
        const serial = await Deno.readTextFile(`${sys}/serial`).catch(() => "");
        const config = await Deno.readTextFile(`${sys}/bConfigurationValue`)
          .catch(() => "");
        if (serial.trim() === "ACM0001" && config.trim() === "1") return p;
      }
      return undefined;
    });
    assert.equal(
      (await Deno.readTextFile(`/sys/bus/usb/devices/${port}/idProduct`))
        .trim(),
      "0002",
    );
    const end = await serve.stop("SIGINT");
    assert.equal(end.code, 130, end.stderr);
    await waitFor("the unplug", async () => {
      try {
        await Deno.stat(`/sys/bus/usb/devices/${port}`);
        return undefined;
      } catch {
        return true;
      }
    });
  },
});
