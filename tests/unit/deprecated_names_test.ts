// The names of 0.1 (README, "Names follow WebUSB") still work for one
// release, as aliases of the new ones: checked on the classes themselves, so
// no device is needed. Device.closed against Device.opened needs a device:
// the example of Device.opened (src/device.ts) runs in the guest.
import assert from "node:assert/strict";
import { Endpoint, Interface } from "../../mod.ts";
import type { DeviceInfo, UsbDeviceInfo } from "../../mod.ts";

function getter(proto: object, name: string): PropertyDescriptor {
  const d = Object.getOwnPropertyDescriptor(proto, name);
  assert.ok(d, `${name} is defined`);
  return d;
}

Deno.test("Endpoint.maxPacketSize reads Endpoint.packetSize", () => {
  const get = getter(Endpoint.prototype, "maxPacketSize").get!;
  assert.equal(get.call({ packetSize: 512 }), 512);
});

Deno.test("Interface.selectAlternate calls selectAlternateInterface", async () => {
  const calls: number[] = [];
  const fake = {
    selectAlternateInterface: (n: number) => {
      calls.push(n);
      return Promise.resolve();
    },
  };
  await Interface.prototype.selectAlternate.call(fake as never, 3);
  assert.deepEqual(calls, [3]);
});

Deno.test("UsbDeviceInfo is DeviceInfo", () => {
  const same = (d: UsbDeviceInfo): DeviceInfo => d;
  const back = (d: DeviceInfo): UsbDeviceInfo => d;
  assert.equal(typeof same, "function");
  assert.equal(typeof back, "function");
});
