// Run by hostile_test.ts as a subprocess: a few hostile calls, a normal
// read, then the script returns (closing the device first with "close").
// The process must exit by itself: a hostile call must leave nothing that
// keeps it alive (issue 8, item 2: -0 used to leave a parked wait forever).
//
//   deno run -A hostile_exit.ts <serial> close|no-close

import { open, UsbError } from "../../mod.ts";

const [serial, mode] = Deno.args;
if (serial === undefined || (mode !== "close" && mode !== "no-close")) {
  console.error("usage: hostile_exit.ts <serial> close|no-close");
  Deno.exit(2);
}

// Before issue 8 a bad signal left a rejection nobody could catch; report
// one instead of dying of it, so that a hang shows as a hang.
globalThis.addEventListener("unhandledrejection", (e) => {
  console.log(`unhandled rejection: ${e.reason}`);
  e.preventDefault();
});

const dev = await open(serial);
const iface = await dev.claimInterface(0, { detachKernelDriver: true });
const ep = iface.endpoint(0x81);
const bad = [
  () => ep.transferIn(-0),
  () => dev.claimInterface(-0),
  () => ep.transferIn(1024, { signal: "yes" as unknown as AbortSignal }),
  () => ep.transferIn(1024, { timeout: -1 }),
  () => ep.transferIn(2 ** 31),
  () => iface.selectAlternateInterface(-0),
  () =>
    dev.controlTransferIn({
      requestType: "standard",
      recipient: "device",
      request: 6,
      value: 0x100,
      index: -0,
    }, 18),
  () => iface.endpoint(-1),
  () => ep.stream({ inFlight: -0 }),
];
let refused = 0;
for (const call of bad) {
  try {
    await call();
  } catch (e) {
    if (e instanceof UsbError && e.code === "invalid-argument") refused++;
    else console.log(`not invalid-argument: ${e}`);
  }
}
console.log(`hostile calls refused: ${refused}/${bad.length}`);
// Large and infinite timeouts: no TimeoutOverflowWarning, and the data
// that arrives is returned.
for (const timeout of [Infinity, 2 ** 31 - 1]) {
  const r = await ep.transferIn(2 * ep.packetSize, { timeout });
  console.log(`timeout ${timeout}: ${r.status} ${r.data.length} bytes`);
}
if (mode === "close") await dev.close();
console.log("done");
