/**
 * Control requests on an emulated device, byte by byte: the standard
 * requests the model answers, and the routing of class and vendor requests
 * to handlers.
 */

import assert from "node:assert/strict";
import {
  type ControlRequest,
  defineDevice,
  type DeviceDefinition,
  type EmulatedDevice,
  type EmulatedDeviceEvent,
  encodeDescriptors,
  hidDescriptor,
  TestHost,
  TransferFlags,
  UrbStatus,
} from "../../src/emulated/mod.ts";

const REPORT = [0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0xc0];

/** A device with a bit of everything; records events and errors. */
function make(overrides: Partial<DeviceDefinition> = {}) {
  const events: EmulatedDeviceEvent[] = [];
  const errors: { error: unknown; where: string }[] = [];
  const def: DeviceDefinition = {
    speed: "high",
    vendorId: 0x1209,
    productId: 0x0001,
    deviceVersion: 0x0102,
    manufacturer: "usbkit",
    product: "Requests",
    serialNumber: "42",
    configurations: [
      {
        selfPowered: true,
        remoteWakeup: true,
        interfaces: [
          {
            class: 3,
            extra: [hidDescriptor(REPORT)],
            requestDescriptors: [{ type: 0x22, data: REPORT }],
            endpoints: [{ address: 0x81, type: "interrupt", maxPacketSize: 8 }],
          },
          {
            alternates: [
              {},
              {
                endpoints: [
                  {
                    address: 0x82,
                    type: "bulk",
                    onIn: () => new Uint8Array([1]),
                  },
                  { address: 0x02, type: "bulk" },
                  { address: 0x83, type: "isochronous", maxPacketSize: 64 },
                ],
              },
            ],
          },
        ],
      },
      { value: 7, interfaces: [{}] },
    ],
    onEvent: (e) => events.push(e),
    onError: (error, where) => errors.push({ error, where }),
    ...overrides,
  };
  const device = defineDevice(def);
  return {
    device,
    host: new TestHost(device),
    events,
    errors,
    encoded: encodeDescriptors(def),
  };
}

const bytes = (r: { data?: Uint8Array }) => [...(r.data ?? [])];

function stalled(r: { status: number; actualLength: number }) {
  assert.equal(r.status, UrbStatus.stall);
  assert.equal(r.actualLength, 0);
}

const std = (
  recipient: "device" | "interface" | "endpoint" | "other",
  request: number,
  value = 0,
  index = 0,
) => ({ requestType: "standard" as const, recipient, request, value, index });

async function withDevice(
  fn: (t: ReturnType<typeof make>) => Promise<void>,
  overrides: Partial<DeviceDefinition> = {},
) {
  const t = make(overrides);
  try {
    await fn(t);
  } finally {
    t.device.close();
  }
}

// ---------------------------------------------------------------------------
// GET_DESCRIPTOR

Deno.test("GET_DESCRIPTOR(DEVICE): 18 bytes, cut to wLength", () =>
  withDevice(async ({ host, encoded }) => {
    const full = await host.getDescriptor(1, 0, 18);
    assert.equal(full.status, 0);
    assert.deepEqual(bytes(full), [
      18,
      1,
      0x00,
      0x02,
      0,
      0,
      0,
      64,
      0x09,
      0x12,
      0x01,
      0x00,
      0x02,
      0x01,
      1,
      2,
      3,
      2,
    ]);
    assert.equal(full.actualLength, 18);
    assert.deepEqual(
      bytes(await host.getDescriptor(1, 0, 8)),
      bytes(full).slice(0, 8),
    );
    const more = await host.getDescriptor(1, 0, 64); // Linux's first read
    assert.deepEqual(bytes(more), bytes(full));
    assert.deepEqual(bytes(full), [...encoded.device]);
  }));

Deno.test("GET_DESCRIPTOR(CONFIGURATION): 9 bytes first, then wTotalLength; absent index stalls", () =>
  withDevice(async ({ host, encoded }) => {
    const head = await host.getDescriptor(2, 0, 9);
    assert.equal(head.actualLength, 9);
    const total = head.data![2]! | (head.data![3]! << 8);
    assert.equal(total, encoded.configurations[0]!.length);
    const all = await host.getDescriptor(2, 0, total);
    assert.deepEqual(bytes(all), [...encoded.configurations[0]!]);
    const big = await host.getDescriptor(2, 0, 0xffff);
    assert.equal(big.actualLength, total);
    const second = await host.getDescriptor(2, 1, 0xffff);
    assert.equal(second.data![5], 7); // bConfigurationValue
    stalled(await host.getDescriptor(2, 2, 9));
    const one = await host.getDescriptor(2, 0, 1);
    assert.deepEqual(bytes(one), [9]);
  }));

Deno.test("GET_DESCRIPTOR(STRING): language table, strings by index and LANGID", () =>
  withDevice(async ({ host }) => {
    assert.deepEqual(bytes(await host.getDescriptor(3, 0, 255)), [
      4,
      3,
      0x09,
      0x04,
    ]);
    assert.deepEqual(bytes(await host.getDescriptor(3, 1, 255, 0x0409)), [
      14,
      3,
      ..."usbkit".split("").flatMap((c) => [c.charCodeAt(0), 0]),
    ]);
    assert.deepEqual(bytes(await host.getDescriptor(3, 3, 255, 0x0409)), [
      6,
      3,
      0x34,
      0,
      0x32,
      0,
    ]);
    assert.deepEqual(bytes(await host.getDescriptor(3, 2, 2, 0x0409)), [
      18,
      3,
    ]);
    stalled(await host.getDescriptor(3, 1, 255, 0x0407)); // not our language
    stalled(await host.getDescriptor(3, 9, 255, 0x0409)); // no such string
  }));

Deno.test("GET_DESCRIPTOR(STRING) stalls on a device without strings", async () => {
  const device = defineDevice({
    speed: "full",
    vendorId: 1,
    productId: 2,
    interfaces: [{}],
  });
  const host = new TestHost(device);
  stalled(await host.getDescriptor(3, 0, 255));
  device.close();
});

Deno.test("GET_DESCRIPTOR(BOS), DEVICE_QUALIFIER, OTHER_SPEED_CONFIGURATION per speed", async () => {
  for (const speed of ["low", "full", "high", "super"] as const) {
    const def: DeviceDefinition = {
      speed,
      vendorId: 1,
      productId: 2,
      interfaces: [{
        endpoints: [{ address: 0x81, type: "interrupt", maxPacketSize: 8 }],
      }],
    };
    const enc = encodeDescriptors(def);
    const device = defineDevice(def);
    const host = new TestHost(device);
    const bos = await host.getDescriptor(0x0f, 0, 255);
    if (speed === "super") assert.deepEqual(bytes(bos), [...enc.bos!]);
    else stalled(bos);
    const q = await host.getDescriptor(6, 0, 10);
    const other = await host.getDescriptor(7, 0, 255);
    if (speed === "high") {
      assert.deepEqual(bytes(q), [...enc.deviceQualifier!]);
      assert.equal(other.data![1], 7);
      assert.deepEqual(bytes(other), [...enc.otherSpeedConfigurations![0]!]);
      stalled(await host.getDescriptor(7, 1, 255));
    } else {
      stalled(q);
      stalled(other);
    }
    device.close();
  }
});

Deno.test("GET_DESCRIPTOR(BOS) on a high-speed device that has one; cut to 5 bytes", async () => {
  const device = defineDevice({
    speed: "high",
    vendorId: 1,
    productId: 2,
    bos: { usb2Extension: { lpm: true } },
    interfaces: [{}],
  });
  const host = new TestHost(device);
  assert.deepEqual(bytes(await host.getDescriptor(0x0f, 0, 5)), [
    5,
    0x0f,
    12,
    0,
    1,
  ]);
  device.close();
});

Deno.test("GET_DESCRIPTOR of a type the model does not know stalls, or goes to the device handler", async () => {
  await withDevice(async ({ host }) => {
    stalled(await host.getDescriptor(0x09, 0, 255)); // OTG
  });
  await withDevice(async ({ host }) => {
    assert.deepEqual(bytes(await host.getDescriptor(0x09, 0, 255)), [
      3,
      0x09,
      0,
    ]);
  }, {
    control: (req) =>
      req.requestType === "standard" && req.value === 0x0900
        ? [3, 0x09, 0]
        : "stall",
  });
});

Deno.test("GET_DESCRIPTOR to an interface: HID report descriptor from requestDescriptors", () =>
  withDevice(async ({ host }) => {
    const getReport = (length: number) =>
      host.controlIn(std("interface", 6, 0x2200, 0), length);
    stalled(await getReport(255)); // not configured yet
    await host.setConfiguration(1);
    assert.deepEqual(bytes(await getReport(255)), REPORT);
    assert.deepEqual(bytes(await getReport(3)), REPORT.slice(0, 3));
    stalled(await host.controlIn(std("interface", 6, 0x2300, 0), 255));
    stalled(await host.controlIn(std("interface", 6, 0x2200, 1), 255)); // interface 1 has none
  }));

// ---------------------------------------------------------------------------
// Addresses, configurations, interfaces

Deno.test("SET_ADDRESS is accepted (1..127) and reported", () =>
  withDevice(async ({ host, events }) => {
    const r = await host.controlOut(std("device", 5, 12));
    assert.deepEqual([r.status, r.actualLength], [0, 0]);
    assert.deepEqual(events, [{ type: "address", address: 12 }]);
    stalled(await host.controlOut(std("device", 5, 128)));
  }));

Deno.test("SET_CONFIGURATION / GET_CONFIGURATION", () =>
  withDevice(async ({ host, events }) => {
    const get = () => host.controlIn(std("device", 8), 1);
    assert.deepEqual(bytes(await get()), [0]);
    assert.equal((await host.setConfiguration(7)).status, 0);
    assert.deepEqual(bytes(await get()), [7]);
    stalled(await host.setConfiguration(5));
    assert.deepEqual(
      bytes(await get()),
      [7],
      "a refused value changes nothing",
    );
    assert.equal((await host.setConfiguration(1)).status, 0);
    assert.equal((await host.setConfiguration(0)).status, 0);
    assert.deepEqual(bytes(await get()), [0]);
    assert.deepEqual(events, [
      { type: "configuration", value: 7 },
      { type: "configuration", value: 1 },
      { type: "configuration", value: 0 },
    ]);
  }));

Deno.test("SET_INTERFACE / GET_INTERFACE: valid alternate settings only", () =>
  withDevice(async ({ host, events, device }) => {
    const getAlt = (i: number) =>
      host.controlIn(std("interface", 0x0a, 0, i), 1);
    stalled(await host.setInterface(1, 1)); // not configured
    stalled(await getAlt(0));
    await host.setConfiguration(1);
    assert.deepEqual(bytes(await getAlt(1)), [0]);
    assert.equal((await host.setInterface(1, 1)).status, 0);
    assert.deepEqual(bytes(await getAlt(1)), [1]);
    stalled(await host.setInterface(1, 2));
    stalled(await host.setInterface(0, 1));
    stalled(await host.setInterface(2, 0));
    stalled(await getAlt(2));
    assert.deepEqual(events.at(-1), {
      type: "interface",
      interfaceNumber: 1,
      alternate: 1,
    });
    assert.deepEqual(device.summary.configurationValue, 1);
    // SET_CONFIGURATION puts every interface back to alternate 0.
    await host.setConfiguration(1);
    assert.deepEqual(bytes(await getAlt(1)), [0]);
  }));

// ---------------------------------------------------------------------------
// GET_STATUS, features

Deno.test("GET_STATUS(device): self-powered and remote wakeup bits", () =>
  withDevice(async ({ host, events }) => {
    const status = () => host.controlIn(std("device", 0), 2);
    assert.deepEqual(bytes(await status()), [0x01, 0]);
    assert.equal((await host.controlOut(std("device", 3, 1))).status, 0);
    assert.deepEqual(bytes(await status()), [0x03, 0]);
    assert.equal((await host.controlOut(std("device", 1, 1))).status, 0);
    assert.deepEqual(bytes(await status()), [0x01, 0]);
    assert.deepEqual(events, [
      { type: "remote-wakeup", enabled: true },
      { type: "remote-wakeup", enabled: false },
    ]);
    stalled(await host.controlOut(std("device", 3, 2))); // TEST_MODE
    stalled(await host.controlOut(std("device", 3, 48))); // U1 below SuperSpeed
  }));

Deno.test("DEVICE_REMOTE_WAKEUP stalls when no configuration supports it", async () => {
  const device = defineDevice({
    speed: "full",
    vendorId: 1,
    productId: 2,
    interfaces: [{}],
  });
  const host = new TestHost(device);
  stalled(await host.controlOut(std("device", 3, 1)));
  assert.deepEqual(bytes(await host.controlIn(std("device", 0), 2)), [0, 0]);
  device.close();
});

Deno.test("GET_STATUS(interface) and GET_STATUS(endpoint) with the halt bit", () =>
  withDevice(async ({ host }) => {
    const intf = (i: number) => host.controlIn(std("interface", 0, 0, i), 2);
    const ep = (a: number) => host.controlIn(std("endpoint", 0, 0, a), 2);
    stalled(await intf(0));
    assert.deepEqual(bytes(await ep(0x00)), [0, 0]);
    assert.deepEqual(bytes(await ep(0x80)), [0, 0]);
    stalled(await ep(0x81));
    await host.setConfiguration(1);
    assert.deepEqual(bytes(await intf(1)), [0, 0]);
    stalled(await intf(2));
    assert.deepEqual(bytes(await ep(0x81)), [0, 0]);
    stalled(await ep(0x82)); // only in alternate 1
    await host.setInterface(1, 1);
    assert.deepEqual(bytes(await ep(0x82)), [0, 0]);
    assert.equal(
      (await host.controlOut(std("endpoint", 3, 0, 0x82))).status,
      0,
    );
    assert.deepEqual(bytes(await ep(0x82)), [1, 0]);
    assert.equal((await host.clearHalt(0x82)).status, 0);
    assert.deepEqual(bytes(await ep(0x82)), [0, 0]);
  }));

Deno.test("SET_FEATURE(ENDPOINT_HALT) stalls transfers until CLEAR_FEATURE", () =>
  withDevice(async ({ host, events }) => {
    await host.setConfiguration(1);
    await host.setInterface(1, 1);
    assert.equal((await host.transferIn(0x82, 64)).status, 0);
    await host.controlOut(std("endpoint", 3, 0, 0x82));
    stalled(await host.transferIn(0x82, 64));
    stalled(await host.transferIn(0x82, 64));
    await host.clearHalt(0x82);
    assert.deepEqual(bytes(await host.transferIn(0x82, 64)), [1]);
    assert.deepEqual(events.filter((e) => e.type === "halt"), [
      { type: "halt", endpoint: 0x82, halted: true },
      { type: "halt", endpoint: 0x82, halted: false },
    ]);
    // Isochronous endpoints have no halt; endpoint 0 ignores it.
    stalled(await host.controlOut(std("endpoint", 3, 0, 0x83)));
    assert.equal((await host.clearHalt(0x83)).status, 0);
    assert.equal((await host.controlOut(std("endpoint", 3, 0, 0))).status, 0);
    // An endpoint that is not active: stall.
    stalled(await host.controlOut(std("endpoint", 3, 0, 0x85)));
    // A feature that does not exist.
    stalled(await host.controlOut(std("endpoint", 3, 1, 0x82)));
  }));

Deno.test("SYNCH_FRAME: isochronous endpoints only", () =>
  withDevice(async ({ host }) => {
    await host.setConfiguration(1);
    await host.setInterface(1, 1);
    assert.deepEqual(
      bytes(await host.controlIn(std("endpoint", 0x0c, 0, 0x83), 2)),
      [0, 0],
    );
    stalled(await host.controlIn(std("endpoint", 0x0c, 0, 0x82), 2));
  }));

Deno.test("SuperSpeed: SET_SEL, SET_ISOCH_DELAY, U1/U2/LTM, FUNCTION_SUSPEND", async () => {
  const device = defineDevice({
    speed: "super",
    vendorId: 1,
    productId: 2,
    interfaces: [{}],
  });
  const host = new TestHost(device);
  const selData = new Uint8Array([1, 0, 2, 0, 3, 0]);
  const sel = await host.controlOut(std("device", 0x30), selData);
  assert.deepEqual([sel.status, sel.actualLength], [0, 6]);
  assert.equal((await host.controlOut(std("device", 0x31, 40))).status, 0);
  await host.controlOut(std("device", 3, 48));
  await host.controlOut(std("device", 3, 49));
  assert.deepEqual(bytes(await host.controlIn(std("device", 0), 2)), [0x0c, 0]);
  await host.controlOut(std("device", 3, 50));
  await host.controlOut(std("device", 1, 48));
  assert.deepEqual(bytes(await host.controlIn(std("device", 0), 2)), [0x18, 0]);
  stalled(await host.controlOut(std("interface", 3, 0, 0))); // not configured
  await host.setConfiguration(1);
  assert.equal((await host.controlOut(std("interface", 3, 0, 0))).status, 0);
  device.close();

  const high = defineDevice({
    speed: "high",
    vendorId: 1,
    productId: 2,
    interfaces: [{}],
  });
  const h = new TestHost(high);
  stalled(await h.controlOut(std("device", 0x30), selData));
  stalled(await h.controlOut(std("device", 0x31, 40)));
  high.close();
});

Deno.test("wrong bmRequestType for a standard request stalls", () =>
  withDevice(async ({ host }) => {
    // GET_CONFIGURATION to an interface, SET_CONFIGURATION as IN, SET_ADDRESS to an endpoint.
    stalled(await host.controlIn(std("interface", 8), 1));
    stalled(await host.controlIn(std("device", 9, 1), 0));
    stalled(await host.controlOut(std("endpoint", 5, 3)));
    stalled(await host.controlOut(std("device", 0))); // GET_STATUS as OUT
    stalled(await host.controlIn(std("device", 3, 1), 0)); // SET_FEATURE as IN
  }));

Deno.test("a port reset sent as a request resets the device", () =>
  withDevice(async ({ host, device, events }) => {
    await host.setConfiguration(1);
    const r = await host.controlOut({
      requestType: "class",
      recipient: "other",
      request: 3,
      value: 4,
      index: 1,
    });
    assert.equal(r.status, 0);
    assert.deepEqual(bytes(await host.controlIn(std("device", 8), 1)), [0]);
    assert.equal(device.summary.configurationValue, 1, "the one to be used");
    assert.equal(events.at(-1)!.type, "reset");
  }));

// ---------------------------------------------------------------------------
// Class and vendor requests

Deno.test("vendor requests reach the device handler with every field decoded", async () => {
  const seen: ControlRequest[] = [];
  await withDevice(async ({ host }) => {
    const out = await host.controlOut(
      {
        requestType: "vendor",
        recipient: "device",
        request: 0x5b,
        value: 0x1234,
        index: 0x5678,
      },
      new Uint8Array([1, 2, 3]),
    );
    assert.deepEqual([out.status, out.actualLength], [0, 3]);
    const r = seen[0]!;
    assert.deepEqual(
      [r.direction, r.requestType, r.recipient, r.request, r.value, r.index],
      ["out", "vendor", "device", 0x5b, 0x1234, 0x5678],
    );
    assert.deepEqual([r.length, ...r.data], [3, 1, 2, 3]);
    assert.deepEqual([...r.setup], [0x40, 0x5b, 0x34, 0x12, 0x78, 0x56, 3, 0]);
    const inp = await host.controlIn(
      {
        requestType: "vendor",
        recipient: "device",
        request: 0x5c,
        value: 0,
        index: 0,
      },
      4,
    );
    // The handler returned 10 bytes; wLength 4 cuts them.
    assert.deepEqual(bytes(inp), [0, 1, 2, 3]);
    assert.equal(seen[1]!.data.length, 0);
  }, {
    control: (req) => {
      seen.push(req);
      return req.direction === "in"
        ? Uint8Array.from({ length: 10 }, (_, i) => i)
        : undefined;
    },
  });
});

Deno.test("class requests: interface handler, endpoint handler, interface fallback, device fallback", async () => {
  const calls: string[] = [];
  const def: DeviceDefinition = {
    speed: "full",
    vendorId: 1,
    productId: 2,
    interfaces: [
      {
        control: (req) => {
          calls.push(`interface 0 ${req.request}`);
          return req.direction === "in" ? [0xa0] : undefined;
        },
        endpoints: [
          {
            address: 0x81,
            type: "bulk",
            control: (req) => {
              calls.push(`endpoint 0x81 ${req.request}`);
              return [0xe1];
            },
          },
          { address: 0x01, type: "bulk" },
        ],
      },
      {},
    ],
    control: (req) => {
      calls.push(`device ${req.recipient} ${req.request}`);
      return req.direction === "in" ? [0xde] : undefined;
    },
  };
  const device = defineDevice(def);
  const host = new TestHost(device);
  const cls = (
    recipient: "device" | "interface" | "endpoint" | "other",
    request: number,
    index: number,
  ) => ({ requestType: "class" as const, recipient, request, value: 0, index });
  await host.setConfiguration(1);
  assert.deepEqual(bytes(await host.controlIn(cls("interface", 1, 0), 1)), [
    0xa0,
  ]);
  assert.deepEqual(bytes(await host.controlIn(cls("endpoint", 2, 0x81), 1)), [
    0xe1,
  ]);
  assert.equal((await host.controlOut(cls("endpoint", 3, 0x01))).status, 0);
  assert.deepEqual(bytes(await host.controlIn(cls("interface", 4, 1), 1)), [
    0xde,
  ]);
  assert.deepEqual(bytes(await host.controlIn(cls("other", 5, 0), 1)), [0xde]);
  assert.deepEqual(calls, [
    "interface 0 1",
    "endpoint 0x81 2",
    "interface 0 3",
    "device interface 4",
    "device other 5",
  ]);
  device.close();
});

Deno.test("no handler: class and vendor requests stall", async () => {
  const device = defineDevice({
    speed: "full",
    vendorId: 1,
    productId: 2,
    interfaces: [{}],
  });
  const host = new TestHost(device);
  await host.setConfiguration(1);
  stalled(
    await host.controlIn({
      requestType: "vendor",
      recipient: "device",
      request: 1,
      value: 0,
      index: 0,
    }, 4),
  );
  stalled(
    await host.controlOut({
      requestType: "class",
      recipient: "interface",
      request: 1,
      value: 0,
      index: 0,
    }),
  );
  device.close();
});

Deno.test("a stall is a protocol stall: the next request works", () =>
  withDevice(async ({ host }) => {
    const vendor = (request: number) =>
      host.controlIn({
        requestType: "vendor",
        recipient: "device",
        request,
        value: 0,
        index: 0,
      }, 1);
    stalled(await vendor(1));
    assert.deepEqual(bytes(await vendor(2)), [2]);
    assert.deepEqual(bytes(await host.getDescriptor(1, 0, 1)), [18]);
  }, { control: (req) => (req.request === 1 ? "stall" : [req.request]) }));

Deno.test("a throwing or misbehaving control handler stalls and is reported", () =>
  withDevice(async ({ host, errors }) => {
    const vendor = (request: number) => ({
      requestType: "vendor" as const,
      recipient: "device" as const,
      request,
      value: 0,
      index: 0,
    });
    stalled(await host.controlIn(vendor(1), 1));
    assert.match(String(errors[0]!.error), /boom/);
    assert.equal(errors[0]!.where, "device control");
    stalled(await host.controlIn(vendor(2), 1)); // IN with nothing returned
    assert.match(
      String(errors[1]!.error),
      /returned undefined for an IN request/,
    );
    const out = await host.controlOut(vendor(3), new Uint8Array([1]));
    assert.equal(out.status, 0); // accepted, but reported
    assert.match(String(errors[2]!.error), /returned 42 for an OUT request/);
    assert.equal(errors.length, 3);
    // The device goes on.
    assert.deepEqual(bytes(await host.getDescriptor(1, 0, 1)), [18]);
  }, {
    control: (req) => {
      if (req.request === 1) throw new Error("boom");
      if (req.request === 3) return 42 as never;
      return undefined;
    },
  }));

Deno.test("a slow control handler is cancelled when its URB is unlinked", async () => {
  let handlerSignal: AbortSignal | undefined;
  await withDevice(async ({ host }) => {
    const unlink = new AbortController();
    const pending = host.controlIn(
      {
        requestType: "vendor",
        recipient: "device",
        request: 1,
        value: 0,
        index: 0,
      },
      1,
      { signal: unlink.signal },
    );
    await new Promise((r) => setTimeout(r, 5));
    unlink.abort();
    const r = await pending;
    assert.deepEqual([r.status, r.actualLength], [UrbStatus.unlinked, 0]);
    assert.ok(handlerSignal?.aborted);
    // Endpoint 0 is free again.
    assert.deepEqual(bytes(await host.getDescriptor(1, 0, 1)), [18]);
  }, {
    control: (_req, { signal }) => {
      handlerSignal = signal;
      return new Promise(() => {}); // never answers
    },
  });
});

Deno.test("control IN with URB_SHORT_NOT_OK and a short answer ends with -EREMOTEIO", () =>
  withDevice(async ({ host }) => {
    const r = await host.controlIn(std("device", 6, 0x0100), 64, {
      transferFlags: TransferFlags.shortNotOk,
    });
    assert.equal(r.status, UrbStatus.shortNotOk);
    assert.equal(r.actualLength, 18);
  }));

Deno.test("malformed URBs are refused with -EINVAL and reported", () =>
  withDevice(async ({ device, errors }) => {
    const signal = new AbortController().signal;
    const noSetup = await device.handleUrb({
      endpoint: 0,
      direction: "in",
      length: 8,
      transferFlags: 0,
      signal,
    });
    assert.equal(noSetup.status, UrbStatus.invalid);
    const badEndpoint = await device.handleUrb({
      endpoint: 16,
      direction: "in",
      length: 8,
      transferFlags: 0,
      signal,
    });
    assert.equal(badEndpoint.status, UrbStatus.invalid);
    assert.equal(errors.length, 2);
  }));

Deno.test("summary: the configuration in use, or the first one while unconfigured", async () => {
  const device = defineDevice({
    speed: "high",
    vendorId: 0x1209,
    productId: 7,
    deviceVersion: 0x0203,
    class: 0xef,
    subclass: 2,
    protocol: 1,
    configurations: [
      {
        value: 3,
        interfaces: [{ class: 2, subclass: 2, protocol: 1 }, { class: 10 }],
      },
      { value: 1, interfaces: [{ class: 0xff, subclass: 5, protocol: 6 }] },
    ],
  });
  assert.deepEqual(device.summary, {
    vendorId: 0x1209,
    productId: 7,
    bcdDevice: 0x0203,
    deviceClass: 0xef,
    deviceSubclass: 2,
    deviceProtocol: 1,
    configurationValue: 3,
    numConfigurations: 2,
    interfaces: [
      { interfaceClass: 2, interfaceSubclass: 2, interfaceProtocol: 1 },
      { interfaceClass: 10, interfaceSubclass: 0, interfaceProtocol: 0 },
    ],
  });
  assert.equal(device.speed, "high");
  await new TestHost(device).setConfiguration(1);
  assert.equal(device.summary.configurationValue, 1);
  assert.deepEqual(device.summary.interfaces, [
    { interfaceClass: 0xff, interfaceSubclass: 5, interfaceProtocol: 6 },
  ]);
  device.close();
});

Deno.test("a host-like enumeration works on every speed", async () => {
  for (const speed of ["low", "full", "high", "super"] as const) {
    const device: EmulatedDevice = defineDevice({
      speed,
      vendorId: 0x1209,
      productId: 0x0005,
      manufacturer: "usbkit",
      product: `Enumerated at ${speed}`,
      serialNumber: "E1",
      interfaces: [{
        endpoints: [{ address: 0x81, type: "interrupt", maxPacketSize: 8 }],
      }],
    });
    const host = new TestHost(device);
    const { descriptors, strings, bos } = await host.enumerate();
    assert.equal(descriptors.device.productId, 0x0005);
    assert.equal(
      strings.get(descriptors.device.productStringIndex),
      `Enumerated at ${speed}`,
    );
    assert.equal(bos !== undefined, speed === "super");
    assert.equal(device.summary.configurationValue, 1);
    assert.deepEqual(device.summary.interfaces, [{
      interfaceClass: 0xff,
      interfaceSubclass: 0,
      interfaceProtocol: 0,
    }]);
    device.close();
  }
});
