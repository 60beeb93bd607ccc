// Hotplug against the virtual bench (run inside the guest): the kernel's
// uevents through the helper's netlink listener (src/hotplug.ts), checked
// against sysfs (listDevices) and against the data the device moves.
//
// The guest runs no udevd (kernel/init.sh loads modules itself): every test
// here is also a test that hotplug works without it, and the first asserts
// that no udevd process is running.

import assert from "node:assert/strict";
import {
  benchInfo,
  gadgetBound,
  plugGadget,
  unplugGadget,
} from "../../kernel/guest.ts";
import { type DeviceInfo, listDevices } from "../../src/enumeration.ts";
import { UsbError } from "../../src/errors.ts";
import { toJson } from "../../src/format.ts";
import {
  type DeviceEvent,
  waitForDevice,
  waitForDeviceGone,
  watchDevices,
} from "../../src/hotplug.ts";
import { open } from "../../src/device.ts";
import { pattern, processHandles } from "./data.ts";

const bench = benchInfo();
const ss = bench.gadgets.find((g) => g.function === "sourcesink")!;
const USB_CLI = new URL("../../scripts/usb.ts", import.meta.url).pathname;

/** The SourceSink gadget as listed now. */
async function listedSS(): Promise<DeviceInfo | undefined> {
  return (await listDevices()).find((d) => d.serialNumber === ss.serial);
}

/** Waits until `done()` holds, polling; fails after `ms` with `what`. */
async function until(done: () => boolean, ms: number, what: string) {
  const t0 = Date.now();
  while (!done()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Collects a watcher's events in the background. */
function collect(w: AsyncIterable<DeviceEvent>): {
  events: DeviceEvent[];
  done: Promise<void>;
} {
  const events: DeviceEvent[] = [];
  const done = (async () => {
    for await (const e of w) events.push(e);
  })();
  return { events, done };
}

/** fds and threads of this process, for leak checks. */
function resources() {
  const { fds, threads } = processHandles();
  return {
    sockets: fds.filter((f) => f.startsWith("socket:")).length,
    fds: fds.length,
    hotplugThreads: threads.filter((t) => t === "usbkit-hotplug").length,
  };
}

/** The processes running, by name (/proc/PID/comm). */
function processNames(): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      names.push(Deno.readTextFileSync(`/proc/${e.name}/comm`).trim());
    } catch {
      // exited meanwhile
    }
  }
  return names;
}

/** JSON as `usb list --json` prints a device. */
function json(d: DeviceInfo): unknown {
  return JSON.parse(JSON.stringify(toJson(d)));
}

async function ensurePlugged(): Promise<DeviceInfo> {
  if (!gadgetBound(ss.name)) await plugGadget(ss.name);
  const d = await waitForDevice(ss.serial, { timeout: 30_000 });
  return d;
}

Deno.test("hotplug: no udevd runs; gadget unbind then bind gives remove then add, right ids and port, nothing else", async () => {
  assert.deepEqual(
    processNames().filter((n) => /udevd/.test(n)),
    [],
    "a udevd is running in the guest",
  );
  const before = await ensurePlugged();
  const watcher = watchDevices();
  const { events, done } = collect(watcher);
  try {
    await unplugGadget(ss.name);
    const loc = await plugGadget(ss.name);
    await until(() => events.length >= 2, 30_000, "remove and add");
    // Anything else (interfaces, other devices) would arrive by now.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.device.portPath}`),
      [`remove ${before.portPath}`, `add ${loc.port}`],
    );
    const [removed, added] = events as [DeviceEvent, DeviceEvent];
    for (const e of events) {
      assert.equal(e.device.vendorId, ss.vendorId);
      assert.equal(e.device.productId, ss.productId);
      assert.equal(e.device.serialNumber, ss.serial);
    }
    // The remove carries what the device was; the add what it is now.
    assert.deepEqual(json(removed.device), json(before));
    assert.equal(added.device.deviceAddress, loc.devnum);
    assert.notEqual(added.device.deviceAddress, before.deviceAddress);
    // Reported once configured: as listDevices gives it, interfaces and all.
    const now = await listedSS();
    assert.ok(now !== undefined);
    assert.ok(added.device.interfaces.length > 0);
    assert.deepEqual(json(added.device), json(now));
  } finally {
    await watcher.close();
    await done;
  }
});

Deno.test("hotplug: 50 rapid unbind/bind cycles: every event, in order, no duplicate, no leak", async () => {
  await ensurePlugged();
  const r0 = resources();
  const first = (await listedSS())!;
  // By port: a device unplugged while the kernel still probes it (these
  // cycles unplug as soon as the node exists) may be reported without the
  // strings the helper could not read in time; ids and addresses are always
  // there.
  const watcher = watchDevices({ filter: { port: first.portPath } });
  const { events, done } = collect(watcher);
  const addresses: number[] = [first.deviceAddress];
  const cycles = 50;
  try {
    for (let i = 0; i < cycles; i++) {
      await unplugGadget(ss.name);
      addresses.push((await plugGadget(ss.name)).devnum);
      // The next unplug waits for this add to be seen: a device removed
      // before the helper could read it from sysfs is, by design, counted
      // in `missed` and not reported (nothing true could be said of it),
      // and under TCG with a loaded host the helper thread of this very
      // process can lose that race to the test's own unplug.
      await until(
        () => events.length >= 2 * (i + 1),
        30_000,
        `cycle ${i}: the add (have ${events.length} events, missed ${watcher.missed})`,
      );
    }
    await until(
      () => events.length >= 2 * cycles,
      120_000,
      `${
        2 * cycles
      } events (have ${events.length}, missed ${watcher.missed}, ` +
        `overruns ${watcher.overruns}; seen ${
          events.map((e) => `${e.type[0]}${e.device.deviceAddress}`).join(" ")
        }; addresses ${addresses.join(" ")})`,
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(events.length, 2 * cycles, "no duplicate, nothing extra");
    for (let i = 0; i < cycles; i++) {
      const rm = events[2 * i]!;
      const add = events[2 * i + 1]!;
      assert.equal(rm.type, "remove", `event ${2 * i}`);
      assert.equal(add.type, "add", `event ${2 * i + 1}`);
      assert.equal(rm.device.deviceAddress, addresses[i], `remove ${i}`);
      assert.equal(add.device.deviceAddress, addresses[i + 1], `add ${i}`);
      for (const e of [rm, add]) {
        assert.equal(e.device.portPath, first.portPath);
        assert.equal(e.device.vendorId, ss.vendorId);
        assert.equal(e.device.productId, ss.productId);
        assert.ok(
          [ss.serial, undefined].includes(e.device.serialNumber),
          `serial ${e.device.serialNumber}`,
        );
      }
    }
    assert.equal(watcher.overruns, 0);
    assert.equal(watcher.missed, 0);
  } finally {
    await watcher.close();
    await done;
  }
  const r1 = resources();
  assert.equal(r1.hotplugThreads, 0, "the listener's thread is gone");
  assert.equal(r1.sockets, r0.sockets, "the netlink socket is closed");
  assert.equal(r1.fds, r0.fds, "no fd leaked");
});

Deno.test("hotplug: waitForDevice resolves after a delayed bind (then the SourceSink pattern reads back) and times out cleanly without one", async () => {
  await ensurePlugged();
  await unplugGadget(ss.name);
  await waitForDeviceGone(ss.serial, { timeout: 10_000 });

  // No bind: a clean timeout naming the selector.
  const r0 = resources();
  await assert.rejects(
    waitForDevice(ss.serial, { timeout: 1500 }),
    (e: unknown) =>
      e instanceof UsbError && e.code === "timeout" &&
      e.message.includes(ss.serial),
  );
  assert.equal(resources().hotplugThreads, 0);
  assert.equal(resources().fds, r0.fds);

  // A bind 1 s after the wait started.
  const waiting = waitForDevice(ss.serial, { timeout: 30_000 });
  let plugging: Promise<unknown> | undefined;
  const t = setTimeout(() => plugging = plugGadget(ss.name), 1000);
  let info: DeviceInfo;
  try {
    info = await waiting;
  } finally {
    clearTimeout(t);
    await plugging;
  }
  await plugGadget(ss.name);
  assert.equal(info.serialNumber, ss.serial);
  await using dev = await open(info);
  const iface = await dev.claimInterface(0, { detachKernelDriver: true });
  const ep = iface.endpoint(0x81);
  const r = await ep.transferIn(4096, { timeout: 5000 });
  assert.equal(r.status, "ok");
  assert.deepEqual(r.data, pattern(r.data.length, ep.maxPacketSize));
  assert.ok(r.data.length > 0);
});

Deno.test("hotplug: Device.disconnected resolves on unbind with nothing in flight", async () => {
  await ensurePlugged();
  const dev = await open(ss.serial);
  try {
    const gone = dev.disconnected;
    let settled = false;
    void gone.then(() => settled = true);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(settled, false, "resolved while the device is there");
    assert.equal(dev.gone, false);
    await unplugGadget(ss.name);
    let guard: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      gone,
      new Promise((_, reject) =>
        guard = setTimeout(
          () => reject(new Error("disconnected did not resolve")),
          20_000,
        )
      ),
    ]);
    clearTimeout(guard);
    assert.equal(dev.gone, true);
  } finally {
    await dev.close();
    await plugGadget(ss.name);
  }
});

Deno.test("hotplug: reset keeps the device; reset after new descriptors re-enumerates and reopen() says what changed", async () => {
  await ensurePlugged();
  let dev = await open(ss.serial);
  const cfg = `${ss.configfs}/bcdDevice`;
  const bcd = Deno.readTextFileSync(cfg).trim();
  try {
    const same = await dev.reset();
    assert.deepEqual(same, { reenumerated: false });
    dev = await dev.reopen();
    assert.deepEqual(
      {
        address: dev.reopened?.addressChanged,
        descriptors: dev.reopened?.descriptorsChanged,
      },
      { address: false, descriptors: false },
    );
    // New "firmware": the gadget answers with another bcdDevice, so the
    // kernel's descriptor check after the reset fails and it re-enumerates.
    const newBcd = Number(bcd) === 0x0123 ? 0x0124 : 0x0123;
    Deno.writeTextFileSync(cfg, `0x${newBcd.toString(16)}\n`);
    const changed = await dev.reset();
    assert.deepEqual(changed, { reenumerated: true });
    const previous = dev.info;
    dev = await dev.reopen({ timeout: 30_000 });
    assert.equal(dev.reopened?.addressChanged, true);
    assert.equal(dev.reopened?.descriptorsChanged, true);
    assert.equal(dev.info.deviceVersion, newBcd);
    assert.equal(dev.info.portPath, previous.portPath);
    assert.notEqual(dev.info.deviceAddress, previous.deviceAddress);
    // And it moves data.
    const iface = await dev.claimInterface(0, { detachKernelDriver: true });
    const ep = iface.endpoint(0x81);
    const r = await ep.transferIn(1024, { timeout: 5000 });
    assert.deepEqual(r.data, pattern(r.data.length, ep.maxPacketSize));
  } finally {
    Deno.writeTextFileSync(cfg, `${bcd}\n`);
    await dev.close();
    await unplugGadget(ss.name);
    await plugGadget(ss.name);
  }
});

Deno.test("hotplug: overrun (tiny queue and socket buffer, a slow consumer): sysfs is re-read and the final state matches listDevices()", async () => {
  await ensurePlugged();
  Deno.env.set("USBKIT_HOTPLUG_QUEUE", "1");
  Deno.env.set("USBKIT_HOTPLUG_RCVBUF", "1024");
  const watcher = watchDevices({ snapshot: true });
  Deno.env.delete("USBKIT_HOTPLUG_QUEUE");
  Deno.env.delete("USBKIT_HOTPLUG_RCVBUF");
  const state = new Map<string, DeviceInfo>();
  let problems = 0;
  // A slow consumer: every event blocks the JS thread for 150 ms.
  const onEvent = (type: "add" | "remove", d: DeviceInfo) => {
    const t0 = Date.now();
    while (Date.now() - t0 < 150) { /* busy */ }
    if (type === "add") {
      if (state.has(d.sysfsPath)) problems++;
      state.set(d.sysfsPath, d);
    } else {
      if (state.get(d.sysfsPath)?.deviceAddress !== d.deviceAddress) {
        problems++;
      }
      state.delete(d.sysfsPath);
    }
  };
  const { done } = (() => {
    const done = (async () => {
      for await (const e of watcher) onEvent(e.type, e.device);
    })();
    return { done };
  })();
  const key = (ds: Iterable<DeviceInfo>) =>
    [...ds].map((d) => `${d.sysfsPath}@${d.busNumber}.${d.deviceAddress}`)
      .sort().join(" ");
  try {
    for (let i = 0; i < 8; i++) {
      await unplugGadget(ss.name, { wait: false });
      await waitForDeviceGone(ss.serial, { timeout: 15_000 });
      await plugGadget(ss.name);
    }
    const final = await listDevices();
    let last = "";
    await until(
      () => {
        last = key(state.values());
        return last === key(final);
      },
      60_000,
      "the replayed events to match listDevices()",
    );
    assert.ok(watcher.overruns > 0, "the overrun path was not exercised");
    assert.equal(problems, 0, "an add for a present device or a stray remove");
    assert.equal(key(watcher.devices), key(final));
  } finally {
    await watcher.close();
    await done;
  }
});

Deno.test("hotplug: `usb watch --json` lines carry `usb list --json`'s fields; SIGINT exits 130", async () => {
  const before = await ensurePlugged();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", USB_CLI, "watch", "--json", ss.serial],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const errReader = child.stderr.pipeThrough(new TextDecoderStream())
    .getReader();
  let stderr = "";
  const lines: string[] = [];
  const outDone = (async () => {
    let buf = "";
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buf += chunk;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      lines.push(...parts.filter((l) => l !== ""));
    }
  })();
  try {
    while (!stderr.includes("watching")) {
      const { value, done } = await errReader.read();
      if (done) assert.fail(`usb watch ended early: ${stderr}`);
      stderr += value;
    }
    await unplugGadget(ss.name);
    await plugGadget(ss.name);
    await until(() => lines.length >= 2, 30_000, "two lines");
    const [rm, add] = lines.map((l) => JSON.parse(l)) as [
      Record<string, unknown>,
      Record<string, unknown>,
    ];
    assert.equal(rm.type, "remove");
    assert.equal(add.type, "add");
    const list = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", USB_CLI, "list", "--json"],
      stdout: "piped",
    }).outputSync();
    const listed = (JSON.parse(new TextDecoder().decode(list.stdout)) as Record<
      string,
      unknown
    >[]).find((d) => d.serialNumber === ss.serial)!;
    const { type: _a, ...addFields } = add;
    assert.deepEqual(addFields, listed);
    const { type: _r, ...rmFields } = rm;
    assert.deepEqual(rmFields, json(before));
  } finally {
    child.kill("SIGINT");
    const status = await child.status;
    await outDone;
    errReader.releaseLock();
    await child.stderr.cancel();
    assert.equal(status.signal, null, "killed by the signal: no handler ran");
    assert.equal(status.code, 130);
  }
});
