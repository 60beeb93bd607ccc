// USB/IP against the real kernel (run in the guest with --module vhci-hcd):
// a device written here in TypeScript is attached to vhci_hcd, enumerated by
// the kernel, and driven through usbfs by usbkit itself: bulk IN and OUT,
// control, unlink on timeout, unplug mid-transfer, isochronous IN with mixed
// packet lengths, and the Debian usbip client importing it over TCP.
//
//   deno task vm --module vhci-hcd -- deno test -A --no-check --cached-only tests/device/usbip_test.ts

import assert from "node:assert/strict";
import { open, UsbError } from "../../mod.ts";
import {
  attachLocal,
  readVhciPorts,
  serve,
  VHCI_SYSFS,
} from "../../src/usbip/mod.ts";
import type {
  EmulatedDevice,
  EmulatedUrb,
  EmulatedUrbResult,
} from "../../src/emulated/urb.ts";

const VHCI = (() => {
  try {
    Deno.statSync(`${VHCI_SYSFS}/attach`);
    return true;
  } catch {
    console.error(
      "usbip_test: vhci_hcd is not loaded (deno task vm --module vhci-hcd): tests ignored",
    );
    return false;
  }
})();
const USBIP_TOOL = "/usr/sbin/usbip";
const HAVE_TOOL = (() => {
  try {
    Deno.statSync(USBIP_TOOL);
    return true;
  } catch {
    return false;
  }
})();

/** veth (`--module veth`): a second network namespace for the TCP test. */
const VETH = (() => {
  try {
    Deno.statSync("/sys/module/veth");
    return true;
  } catch {
    console.error(
      "usbip_test: veth is not loaded (deno task vm --module veth): the TCP test is ignored",
    );
    return false;
  }
})();

const VID = 0x1209, PID = 0x0001; // pid.codes test PID
const ISO_MAX = 1024;

/** The bulk IN pattern: byte i of every transfer is i % 251. */
export const PATTERN = Uint8Array.from({ length: 1 << 20 }, (_, i) => i % 251);

// deno-fmt-ignore
const DEVICE_DESCRIPTOR = new Uint8Array([
  18, 1, 0x00, 0x02, 0, 0, 0, 64, VID & 0xff, VID >> 8, PID & 0xff, PID >> 8,
  0x00, 0x01, 1, 2, 3, 1,
]);

// deno-fmt-ignore
const CONFIG_DESCRIPTOR = new Uint8Array([
  9, 2, 64, 0, 2, 1, 0, 0x80, 50,
  9, 4, 0, 0, 3, 0xff, 0, 0, 0,         // interface 0
  7, 5, 0x81, 0x02, 0x00, 0x02, 0,      //   bulk IN 512
  7, 5, 0x02, 0x02, 0x00, 0x02, 0,      //   bulk OUT 512
  7, 5, 0x83, 0x02, 0x00, 0x02, 0,      //   bulk IN 512, never answers
  9, 4, 1, 0, 0, 0xff, 0, 0, 0,         // interface 1, alternate 0
  9, 4, 1, 1, 1, 0xff, 0, 0, 0,         // interface 1, alternate 1
  7, 5, 0x84, 0x05, ISO_MAX & 0xff, ISO_MAX >> 8, 1, // iso IN 1024, every microframe
]);

function utf16(s: string): Uint8Array {
  const out = new Uint8Array(2 + 2 * s.length);
  out[0] = out.length;
  out[1] = 3;
  for (let i = 0; i < s.length; i++) out[2 + 2 * i] = s.charCodeAt(i);
  return out;
}

/**
 * A high-speed vendor device. Interface 0: bulk IN 0x81 (the pattern), bulk
 * OUT 0x02 (captured), bulk IN 0x83 (never answers). Interface 1: alternate
 * 1 has isochronous IN 0x84 (1024 bytes, every microframe), whose packets
 * are empty, short or full in turn.
 */
export class TestDevice implements EmulatedDevice {
  readonly speed = "high" as const;
  readonly summary: EmulatedDevice["summary"];
  readonly device = DEVICE_DESCRIPTOR;
  readonly config = CONFIG_DESCRIPTOR;
  readonly strings: Uint8Array[];
  configuration = 0;
  readonly alternates = [0, 0];
  /** Bytes the host sent to 0x02. */
  readonly received: Uint8Array[] = [];
  /** Signals of URBs on 0x83, which never complete. */
  readonly hung: AbortSignal[] = [];
  /** What each iso URB sent: per packet, the bytes. */
  readonly isoSent: Uint8Array[][] = [];
  closed = false;
  resets = 0;

  constructor(readonly serial = "usbip-0001") {
    this.strings = [
      new Uint8Array([4, 3, 0x09, 0x04]),
      utf16("usbkit"),
      utf16("usbip test device"),
      utf16(serial),
    ];
    this.summary = {
      vendorId: VID,
      productId: PID,
      bcdDevice: 0x0100,
      deviceClass: 0,
      deviceSubclass: 0,
      deviceProtocol: 0,
      configurationValue: 1,
      numConfigurations: 1,
      interfaces: [0, 1].map(() => ({
        interfaceClass: 0xff,
        interfaceSubclass: 0,
        interfaceProtocol: 0,
      })),
    };
  }

  handleUrb(urb: EmulatedUrb): Promise<EmulatedUrbResult> {
    const key = `${urb.endpoint}${urb.direction}`;
    switch (key) {
      case "0in":
      case "0out":
        return Promise.resolve(this.#control(urb));
      case "1in":
        return Promise.resolve({
          status: 0,
          data: PATTERN.subarray(0, Math.min(urb.length, PATTERN.length)),
          actualLength: Math.min(urb.length, PATTERN.length),
        });
      case "2out":
        this.received.push(urb.data!);
        return Promise.resolve({ status: 0, actualLength: urb.length });
      case "3in":
        this.hung.push(urb.signal);
        return new Promise((_, reject) =>
          urb.signal.addEventListener("abort", () => reject(urb.signal.reason))
        );
      case "4in":
        return Promise.resolve(this.#iso(urb));
      default:
        return Promise.resolve({ status: -32, actualLength: 0 });
    }
  }

  #iso(urb: EmulatedUrb): EmulatedUrbResult {
    const seq = this.isoSent.length;
    const data = new Uint8Array(urb.length);
    const sent: Uint8Array[] = [];
    const isoPackets = urb.isoPackets!.map((p, i) => {
      // Empty, short, full, in turn; the first byte names the URB.
      const kind = (seq + i) % 3;
      const n = kind === 0
        ? 0
        : kind === 1
        ? 1 + ((seq * 31 + i * 7) % (p.length - 1))
        : p.length;
      for (let j = 0; j < n; j++) {
        data[p.offset + j] = j === 0 ? seq : (i * 3 + j) & 0xff;
      }
      sent.push(data.slice(p.offset, p.offset + n));
      return { offset: p.offset, length: p.length, actualLength: n, status: 0 };
    });
    this.isoSent.push(sent);
    return {
      status: 0,
      data,
      actualLength: isoPackets.reduce((a, p) => a + p.actualLength, 0),
      isoPackets,
    };
  }

  #control(urb: EmulatedUrb): EmulatedUrbResult {
    const s = urb.setup!;
    const type = s[0]!, req = s[1]!;
    const value = s[2]! | (s[3]! << 8), index = s[4]! | (s[5]! << 8);
    const wLength = s[6]! | (s[7]! << 8);
    const reply = (bytes: Uint8Array): EmulatedUrbResult => {
      const n = Math.min(bytes.length, wLength, urb.length);
      return { status: 0, data: bytes.subarray(0, n), actualLength: n };
    };
    const ok: EmulatedUrbResult = { status: 0, actualLength: 0 };
    const stall: EmulatedUrbResult = { status: -32, actualLength: 0 };
    if (type === 0x80 && req === 6) {
      const [kind, i] = [value >> 8, value & 0xff];
      if (kind === 1) return reply(this.device);
      if (kind === 2 && i === 0) return reply(this.config);
      if (kind === 3 && this.strings[i] !== undefined) {
        return reply(this.strings[i]);
      }
      return stall;
    }
    if ((type & 0x80) !== 0 && req === 0) return reply(new Uint8Array(2));
    if (type === 0x00 && req === 9) {
      this.configuration = value;
      return ok;
    }
    if (type === 0x80 && req === 8) {
      return reply(new Uint8Array([this.configuration]));
    }
    if (type === 0x01 && req === 11 && index < 2) {
      this.alternates[index] = value;
      return ok;
    }
    if (type === 0x81 && req === 10 && index < 2) {
      return reply(new Uint8Array([this.alternates[index]!]));
    }
    if ((type === 0x02 || type === 0x00) && (req === 1 || req === 3)) return ok;
    return stall;
  }

  reset() {
    this.resets++;
    this.configuration = 0;
    this.alternates.fill(0);
  }

  close() {
    this.closed = true;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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

/**
 * Reads a sysfs attribute off this thread. Never synchronously: string
 * attributes and bConfigurationValue take the USB device's lock, which the
 * hub driver holds while it waits for this very thread's device to answer
 * during enumeration (a sync read would stall until the 5 s control timeout).
 */
async function read(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
}

Deno.test({
  name:
    "attachLocal: the kernel enumerates the TypeScript device; sysfs shows its ids; usbkit reads the pattern, writes OUT, reads descriptors",
  ignore: !VHCI,
  async fn() {
    const device = new TestDevice();
    const a = await attachLocal(device);
    const sys = `/sys/bus/usb/devices/${a.portPath}`;
    assert.deepEqual(
      await Promise.all([
        "idVendor",
        "idProduct",
        "bcdDevice",
        "manufacturer",
        "product",
        "serial",
        "speed",
        "bNumInterfaces",
        "bConfigurationValue",
        "busnum",
        "devnum",
      ].map((f) => read(`${sys}/${f}`))),
      [
        "1209",
        "0001",
        "0100",
        "usbkit",
        "usbip test device",
        "usbip-0001",
        "480",
        "2",
        "1",
        String(a.busNumber),
        String(a.deviceAddress),
      ],
    );
    assert.match(
      await read(`${sys}/../product`) ?? "",
      /USB\/IP Virtual Host Controller/,
    );
    assert.equal(
      device.configuration,
      1,
      "the kernel's SET_CONFIGURATION reached the device",
    );

    {
      await using dev = await open(a.devnode);
      const iface = await dev.claimInterface(0);
      for (const n of [1, 512, 4096, 65536]) {
        const r = await iface.endpoint(0x81).transferIn(n, { timeout: 10000 });
        assert.equal(r.status, "ok");
        assert.ok(sameBytes(r.data, PATTERN.subarray(0, n)), `${n} bytes`);
      }
      const out = crypto.getRandomValues(new Uint8Array(3000));
      const w = await iface.endpoint(0x02).transferOut(out, { timeout: 10000 });
      assert.deepEqual(w, { status: "ok", bytesWritten: 3000 });
      assert.equal(device.received.length, 1);
      assert.ok(sameBytes(device.received[0]!, out));
      const d = await dev.controlTransferIn({
        requestType: "standard",
        recipient: "device",
        request: 6,
        value: 0x0100,
        index: 0,
      }, 18);
      assert.ok(sameBytes(d.data, device.device));
      assert.equal(
        await dev.getStringDescriptor(dev.deviceDescriptor.productStringIndex),
        "usbip test device",
      );
    }
    await a.detach();
    assert.ok(device.closed, "detach closes the device");
    assert.equal(
      await read(`${sys}/idVendor`),
      undefined,
      "the kernel unplugged it",
    );
    const port = (await readVhciPorts()).find((p) => p.port === a.vhciPort);
    assert.equal(port?.state, 4, "the vhci port is free again");
    assert.equal(a.connection.stats.unlinked, 0);
  },
});

Deno.test({
  name:
    "unlink: a transferIn that times out is unlinked by vhci_hcd; the handler's signal is aborted; the device goes on",
  ignore: !VHCI,
  async fn() {
    const device = new TestDevice();
    await using a = await attachLocal(device);
    await using dev = await open(a.devnode);
    const iface = await dev.claimInterface(0);
    await assert.rejects(
      iface.endpoint(0x83).transferIn(512, { timeout: 200 }),
      (e: unknown) => e instanceof UsbError && e.code === "timeout",
    );
    assert.equal(device.hung.length, 1);
    // The worker answered the unlink while this thread was blocked in
    // USBDEVFS_DISCARDURB; the abort reaches the handler when it runs again.
    await waitFor(
      "CMD_UNLINK to abort the handler",
      () => device.hung[0]!.aborted ? true : undefined,
    );
    assert.ok(
      device.hung[0]!.reason instanceof UsbError &&
        device.hung[0]!.reason.code === "cancelled",
    );
    assert.equal(a.connection.stats.unlinked, 1);
    const r = await iface.endpoint(0x81).transferIn(1000, { timeout: 10000 });
    assert.ok(sameBytes(r.data, PATTERN.subarray(0, 1000)));
  },
});

Deno.test({
  name:
    "detach mid-transfer: the pending transferIn rejects disconnected and the handler's signal is aborted",
  ignore: !VHCI,
  async fn() {
    const device = new TestDevice();
    const a = await attachLocal(device);
    const dev = await open(a.devnode);
    const iface = await dev.claimInterface(0);
    const pending = iface.endpoint(0x83).transferIn(512);
    await waitFor(
      "the URB to reach the device",
      () => device.hung.length > 0 ? true : undefined,
    );
    const detached = a.detach();
    await assert.rejects(
      pending,
      (e: unknown) => e instanceof UsbError && e.code === "disconnected",
    );
    await detached;
    assert.ok(device.hung[0]!.aborted);
    assert.ok(
      device.hung[0]!.reason instanceof UsbError &&
        device.hung[0]!.reason.code === "disconnected",
    );
    assert.ok(device.closed);
    await dev.close();
  },
});

Deno.test({
  name:
    "isochronous IN through vhci_hcd: empty, short and full packets arrive byte for byte with their lengths",
  ignore: !VHCI,
  async fn() {
    const device = new TestDevice();
    await using a = await attachLocal(device);
    await using dev = await open(a.devnode);
    const iface = await dev.claimInterface(1);
    await iface.selectAlternateInterface(1);
    assert.equal(device.alternates[1], 1);
    const ep = iface.endpoint(0x84);
    const lengths = new Array(32).fill(ISO_MAX);
    // One at a time, then 8 in flight.
    const results = [
      await ep.isochronousTransferIn(lengths, { timeout: 10000 }),
    ];
    results.push(
      ...await Promise.all(
        Array.from(
          { length: 8 },
          () => ep.isochronousTransferIn(lengths, { timeout: 10000 }),
        ),
      ),
    );
    const seen = new Set<number>();
    for (const r of results) {
      assert.equal(r.packets.length, 32);
      // Which URB it was: the first byte of any non-empty packet.
      const seq = r.packets.find((p) => p.data.length > 0)!.data[0]!;
      assert.ok(!seen.has(seq));
      seen.add(seq);
      const sent = device.isoSent[seq]!;
      let total = 0;
      for (const [i, p] of r.packets.entries()) {
        assert.equal(p.status, "ok", `packet ${i}`);
        assert.equal(p.data.length, sent[i]!.length, `packet ${i} length`);
        assert.ok(sameBytes(p.data, sent[i]!), `packet ${i} of URB ${seq}`);
        total += p.data.length;
      }
      assert.equal(r.data.length, total);
      const kinds = new Set(
        sent.map((s) => s.length === 0 ? 0 : s.length === ISO_MAX ? 2 : 1),
      );
      assert.equal(kinds.size, 3, "empty, short and full packets");
    }
    assert.equal(seen.size, 9);
    await iface.selectAlternateInterface(0);
  },
});

/** Runs `usbip ARGS`, or `ip netns exec ... usbip ...` when ARGS start with "netns". */
async function usbip(args: string[]): Promise<string> {
  const [cmd, rest] = args[0] === "netns" ? ["ip", args] : [USBIP_TOOL, args];
  const out = await new Deno.Command(cmd, {
    args: rest,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(`usbip ${args.join(" ")} failed (${out.code}):\n${text}`);
  }
  return text;
}

/**
 * A second host on this machine: a network namespace "remote" joined to this
 * one by a veth pair (10.200.0.1 here, 10.200.0.2 there), so the usbip client
 * reaches the server over a real link, as from another machine.
 */
async function remoteNamespace(): Promise<void> {
  const ip = async (...args: string[]) => {
    const out = await new Deno.Command("ip", {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
      );
    }
  };
  const have = await new Deno.Command("ip", { args: ["netns", "list"] })
    .output();
  if (new TextDecoder().decode(have.stdout).includes("remote")) return;
  await ip("netns", "add", "remote");
  await ip("link", "add", "v0", "type", "veth", "peer", "name", "v1");
  await ip("link", "set", "v1", "netns", "remote");
  await ip("addr", "add", "10.200.0.1/24", "dev", "v0");
  await ip("link", "set", "v0", "up");
  await ip("-n", "remote", "addr", "add", "10.200.0.2/24", "dev", "v1");
  await ip("-n", "remote", "link", "set", "v1", "up");
  await ip("-n", "remote", "link", "set", "lo", "up");
}

Deno.test({
  name:
    "serve over TCP to another network namespace: the Debian usbip client there lists and attaches the device, usbkit reads it, usbip detach unplugs it",
  ignore: !VHCI || !HAVE_TOOL || !VETH,
  async fn() {
    await remoteNamespace();
    const device = new TestDevice("usbip-tcp-0001");
    await using server = await serve([device], {
      port: 0,
      hostname: "10.200.0.1",
    });
    // The client runs in the other namespace: its connection crosses the
    // veth link, as from a second machine.
    const tcp = [
      "netns",
      "exec",
      "remote",
      USBIP_TOOL,
      "--tcp-port",
      String(server.addr.port),
    ];
    const list = await usbip([...tcp, "list", "-r", "10.200.0.1"]);
    assert.match(list, /1-1: .*\(1209:0001\)/);
    await usbip([...tcp, "attach", "-r", "10.200.0.1", "-b", "1-1"]);
    // Found through vhci_hcd's status (devid = busnum << 16 | devnum of
    // the import reply), not by scanning sysfs strings during enumeration.
    const port = await waitFor(
      "the import on a vhci_hcd port",
      async () =>
        (await readVhciPorts()).find((p) =>
          p.devid === 0x10001 && p.state === 6 && p.busid !== "0-0"
        ),
    );
    const sys = `/sys/bus/usb/devices/${port.busid}`;
    await waitFor(
      "its configuration",
      async () =>
        await read(`${sys}/bConfigurationValue`) === "1" ? true : undefined,
    );
    assert.equal(await read(`${sys}/serial`), "usbip-tcp-0001");
    assert.equal(server.exports[0]?.imported, true);
    {
      await using dev = await open(port.busid);
      const iface = await dev.claimInterface(0);
      const r = await iface.endpoint(0x81).transferIn(8192, { timeout: 10000 });
      assert.ok(sameBytes(r.data, PATTERN.subarray(0, 8192)));
    }
    await usbip(["detach", "-p", String(port.port)]);
    await server.exports[0]!.connection?.closed;
    assert.ok(device.resets >= 1, "the device is reset for the next import");
    await waitFor(
      "the unplug",
      async () =>
        await read(`${sys}/idVendor`) === undefined ? true : undefined,
    );
  },
});
