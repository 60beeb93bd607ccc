import assert from "node:assert/strict";
import {
  encodeSetup,
  Errno,
  errorFromErrno,
  udevRule,
  UsbError,
} from "../../mod.ts";

Deno.test("EACCES becomes access-denied with a udev rule for the device's ids", () => {
  const e = errorFromErrno(-Errno.EACCES, "cannot open /dev/bus/usb/002/002", {
    vendorId: 0x0525,
    productId: 0xa4a0,
  });
  assert.equal(e.code, "access-denied");
  assert.equal(e.errno, 13);
  assert.ok(e.hint?.includes(udevRule(0x0525, 0xa4a0)));
  assert.match(e.hint!, /ATTR\{idVendor\}=="0525", ATTR\{idProduct\}=="a4a0"/);
  assert.match(
    e.describe(),
    /^error\[access-denied\]: cannot open .*permission denied \(EACCES\)\n {2}hint: /,
  );
});

Deno.test("EBUSY names the holder and says how to proceed", () => {
  const k = errorFromErrno(-Errno.EBUSY, "cannot claim interface 0", {
    holder: "kernel driver usbtest",
  });
  assert.equal(k.code, "busy");
  assert.match(k.message, /held by kernel driver usbtest/);
  assert.match(k.hint!, /detachKernelDriver/);
  const p = errorFromErrno(-Errno.EBUSY, "cannot claim interface 0", {
    holder: "another usbfs user: process 42 (deno)",
    devnode: "/dev/bus/usb/002/002",
  });
  assert.match(p.message, /process 42 \(deno\)/);
  assert.match(p.hint!, /fuser \/dev\/bus\/usb\/002\/002/);
});

Deno.test("ENOENT, ENODEV, ENOMEM, ETIMEDOUT and unknown errnos map to stable codes", () => {
  assert.equal(errorFromErrno(-Errno.ENOENT, "x").code, "not-found");
  assert.equal(errorFromErrno(-Errno.ENODEV, "x").code, "disconnected");
  assert.equal(errorFromErrno(-Errno.ESHUTDOWN, "x").code, "disconnected");
  const mem = errorFromErrno(-Errno.ENOMEM, "x");
  assert.equal(mem.code, "no-memory");
  assert.match(mem.hint!, /usbfs_memory_mb/);
  assert.equal(errorFromErrno(-Errno.ETIMEDOUT, "x").code, "timeout");
  const other = errorFromErrno(-Errno.EPROTO, "bulk IN");
  assert.equal(other.code, "io");
  assert.match(other.message, /EPROTO/);
  assert.ok(other instanceof UsbError && other instanceof Error);
});

Deno.test("setup packets encode bmRequestType, little-endian fields, and reject bad values", () => {
  const b = new Uint8Array(8);
  encodeSetup(b, "out", {
    requestType: "vendor",
    recipient: "interface",
    request: 0x5b,
    value: 0x1234,
    index: 0xabcd,
  }, 300);
  assert.deepEqual([...b], [0x41, 0x5b, 0x34, 0x12, 0xcd, 0xab, 0x2c, 0x01]);
  encodeSetup(b, "in", {
    requestType: "class",
    recipient: "other",
    request: 0,
    value: 0,
    index: 0,
  }, 0);
  assert.equal(b[0], 0x80 | 0x20 | 0x03);
  assert.throws(
    () =>
      encodeSetup(b, "in", {
        requestType: "vendor",
        recipient: "device",
        request: 0x100,
        value: 0,
        index: 0,
      }, 0),
    (e: unknown) =>
      e instanceof UsbError && e.code === "invalid-argument" &&
      /setup\.request must be an integer from 0 to 255, got 256/.test(
        e.message,
      ),
  );
  assert.throws(
    () =>
      encodeSetup(b, "in", {
        requestType: "bogus" as unknown as "vendor",
        recipient: "device",
        request: 1,
        value: 0,
        index: 0,
      }, 0),
    (e: unknown) =>
      e instanceof UsbError && /requestType must be/.test(e.message),
  );
});
