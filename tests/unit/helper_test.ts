// The Rust helper on the host, where there is no USB: it loads, reports the
// usbfs layouts, maps errors, and starts and stops its reaper without leaks.
import assert from "node:assert/strict";
import { helper } from "../../src/ffi.ts";
import { readCapabilities, UsbError } from "../../mod.ts";

function reaperThreads(): number {
  return [...Deno.readDirSync("/proc/self/task")].filter((t) => {
    try {
      return Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim() ===
        "usbkit-reaper";
    } catch {
      return false;
    }
  }).length;
}

Deno.test("the helper reports the usbfs layouts of include/uapi/linux/usbdevice_fs.h", () => {
  const { layout } = helper();
  assert.equal(layout.isoDescOffset, 56); // sizeof(struct usbdevfs_urb) on x86_64
  assert.equal(layout.isoDescSize, 12);
  assert.equal(layout.maxIsoPackets, 128);
  assert.equal(layout.slotSize % 8, 0);
  assert.ok(layout.slotSize >= 56 + 128 * 12);
  assert.equal(layout.recordWords, 8);
  assert.equal(
    layout.ringCapacity & (layout.ringCapacity - 1),
    0,
    "ring capacity is a power of two",
  );
  assert.deepEqual(
    [
      layout.flagShortNotOk,
      layout.flagIsoAsap,
      layout.flagBulkContinuation,
      layout.flagZeroPacket,
    ],
    [0x01, 0x02, 0x04, 0x40],
  );
});

Deno.test("reading capabilities of something that is not a usbfs node is a UsbError, not a crash", () => {
  assert.throws(
    () => readCapabilities("/dev/null"),
    (e: unknown) => e instanceof UsbError && e.code === "io",
  );
  assert.throws(
    () => readCapabilities("/dev/bus/usb/999/999"),
    (e: unknown) => e instanceof UsbError && e.code === "not-found",
  );
});

Deno.test("the reaper thread and its eventfds come and go with init/shutdown", () => {
  const { sym } = helper();
  // An earlier test file of this process may have started the reaper (an
  // open attempt does, e.g. `usb describe` reading a device's details). No
  // device can be open on this machine: stop it, and start from nothing.
  if (reaperThreads() !== 0) assert.equal(sym.usbkit_shutdown(), 0);
  const fdsBefore = [...Deno.readDirSync("/proc/self/fd")].length;
  assert.equal(reaperThreads(), 0);
  assert.equal(sym.usbkit_init(), 0);
  assert.equal(sym.usbkit_init(), 0, "init is idempotent");
  // The thread names itself once it runs.
  const deadline = Date.now() + 2000;
  while (reaperThreads() === 0 && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
  assert.equal(reaperThreads(), 1);
  assert.notEqual(sym.usbkit_ring_records(), null);
  assert.equal(sym.usbkit_shutdown(), 0);
  assert.equal(reaperThreads(), 0);
  assert.equal([...Deno.readDirSync("/proc/self/fd")].length, fdsBefore);
});
