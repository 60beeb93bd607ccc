/**
 * Validating a {@linkcode DeviceDefinition} and resolving it into a
 * {@linkcode DeviceModel}: every default filled in, every string numbered,
 * every rule checked. The encoders and the running device work from the
 * model only.
 *
 * A definition that describes an impossible device is refused with a
 * {@linkcode UsbError} (`invalid-argument`) whose message starts with the
 * field's path, such as
 * `configurations[0].interfaces[1].alternates[0].endpoints[2].maxPacketSize`,
 * and says the rule. The rules are the USB specifications' as the Linux
 * kernel applies them (drivers/usb/core/config.c, hub.c); see rules.ts.
 *
 * @module
 */

import { UsbError } from "../errors.ts";
import { encodeBos } from "./bos.ts";
import {
  checkBytes,
  checkDescriptors,
  checkFields,
  checkFlag,
  checkFunction,
  checkInt,
  checkObject,
  invalidField,
} from "./check.ts";
import type {
  AlternateDefinition,
  AssociationDefinition,
  CompanionDefinition,
  ConfigurationDefinition,
  DeviceDefinition,
  EmulatedSpeed,
  EndpointDefinition,
  InterfaceDefinition,
} from "./definition.ts";
import type {
  ControlHandler,
  EmulatedDeviceEvent,
  InHandler,
  IsoInHandler,
  IsoOutHandler,
  OutHandler,
} from "./handlers.ts";
import {
  endpointDefaults,
  ep0PacketSizes,
  intervalRange,
  maxPowerLimit,
  packetSizeRule,
  serviceInterval,
} from "./rules.ts";
import { StringTable } from "./strings.ts";
import { hex2 } from "../descriptors/reader.ts";

/** Linux reads at most this many configurations (USB_MAXCONFIG, config.c). */
const MAX_CONFIGURATIONS = 8;
/** USB_MAXINTERFACES (include/linux/usb.h). */
const MAX_INTERFACES = 32;
/** USB_MAXALTSETTING (config.c). */
const MAX_ALTERNATES = 128;
/** USB_MAXIADS (include/linux/usb.h). */
const MAX_ASSOCIATIONS = 16;

/**
 * A resolved SuperSpeed endpoint companion.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CompanionModel } from "./model.ts";
 * const c: CompanionModel = { maxBurst: 0, attributes: 0, bytesPerInterval: 0 };
 * assert.equal(c.maxBurst, 0);
 * ```
 */
export interface CompanionModel {
  /** `bMaxBurst`. */
  readonly maxBurst: number;
  /** `bmAttributes`: bulk streams exponent, or isochronous mult - 1. */
  readonly attributes: number;
  /** `wBytesPerInterval`. */
  readonly bytesPerInterval: number;
}

/**
 * A resolved endpoint: descriptor fields and behaviour.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveDefinition } from "./model.ts";
 * const m = resolveDefinition({
 *   speed: "high", vendorId: 1, productId: 2,
 *   interfaces: [{ endpoints: [{ address: 0x81, type: "bulk" }] }],
 * });
 * const ep = m.configurations[0]!.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * assert.equal(ep.maxPacketSize, 512);
 * assert.equal(ep.direction, "in");
 * ```
 */
export interface EndpointModel {
  /** Where it is in the definition. */
  readonly path: string;
  /** `bEndpointAddress`. */
  readonly address: number;
  /** 1..15. */
  readonly number: number;
  /** `"in"` is device to host. */
  readonly direction: "in" | "out";
  /** The transfer type. */
  readonly type: "bulk" | "interrupt" | "isochronous";
  /** `bmAttributes`. */
  readonly attributes: number;
  /** Bytes per packet. */
  readonly maxPacketSize: number;
  /** High-speed periodic: transactions per microframe, 1..3. */
  readonly transactions: number;
  /** `bInterval`. */
  readonly interval: number;
  /** The service interval in µs (0 for bulk). */
  readonly intervalMicroseconds: number;
  /** Audio endpoints: `bRefresh` (the descriptor is then 9 bytes). */
  readonly refresh: number | undefined;
  /** Audio endpoints: `bSynchAddress`. */
  readonly synchAddress: number | undefined;
  /** SuperSpeed: the companion. */
  readonly companion: CompanionModel | undefined;
  /** Class-specific descriptors after it. */
  readonly extra: readonly Uint8Array[];
  /** Requests to this endpoint. */
  readonly control: ControlHandler | undefined;
  /** Behaviour (only the one for its direction and type is set). */
  readonly onIn: InHandler | undefined;
  /** See {@linkcode EndpointDefinition.source}. */
  readonly source: EndpointDefinition["source"];
  /** See {@linkcode EndpointDefinition.onOut}. */
  readonly onOut: OutHandler | undefined;
  /** See {@linkcode EndpointDefinition.sink}. */
  readonly sink: EndpointDefinition["sink"];
  /** See {@linkcode EndpointDefinition.onIsoIn}. */
  readonly onIsoIn: IsoInHandler | undefined;
  /** See {@linkcode EndpointDefinition.onIsoOut}. */
  readonly onIsoOut: IsoOutHandler | undefined;
}

/**
 * A resolved alternate setting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveDefinition } from "./model.ts";
 * const m = resolveDefinition({ speed: "full", vendorId: 1, productId: 2, interfaces: [{ class: 3 }] });
 * assert.equal(m.configurations[0]!.interfaces[0]!.alternates[0]!.class, 3);
 * ```
 */
export interface AlternateModel {
  /** Where it is in the definition. */
  readonly path: string;
  /** `bInterfaceNumber`. */
  readonly interfaceNumber: number;
  /** `bAlternateSetting`. */
  readonly alternate: number;
  /** `bInterfaceClass`. */
  readonly class: number;
  /** `bInterfaceSubClass`. */
  readonly subclass: number;
  /** `bInterfaceProtocol`. */
  readonly protocol: number;
  /** `iInterface`. */
  readonly nameIndex: number;
  /** Class-specific descriptors after the interface descriptor. */
  readonly extra: readonly Uint8Array[];
  /** The endpoints, in definition order. */
  readonly endpoints: readonly EndpointModel[];
}

/**
 * A resolved interface: its alternate settings sorted by number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveDefinition } from "./model.ts";
 * const m = resolveDefinition({ speed: "full", vendorId: 1, productId: 2, interfaces: [{ alternates: [{}, {}] }] });
 * assert.equal(m.configurations[0]!.interfaces[0]!.alternates.length, 2);
 * ```
 */
export interface InterfaceModel {
  /** Where it is in the definition. */
  readonly path: string;
  /** `bInterfaceNumber`. */
  readonly number: number;
  /** Alternate settings, by number (index i is alternate setting i). */
  readonly alternates: readonly AlternateModel[];
  /** Requests to this interface. */
  readonly control: ControlHandler | undefined;
  /** Descriptors for GET_DESCRIPTOR addressed to the interface. */
  readonly requestDescriptors: readonly {
    readonly type: number;
    readonly index: number;
    readonly data: Uint8Array;
  }[];
}

/**
 * A resolved interface association.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AssociationModel } from "./model.ts";
 * const a: AssociationModel = { firstInterface: 0, interfaceCount: 2, class: 2, subclass: 2, protocol: 1, nameIndex: 0 };
 * assert.equal(a.interfaceCount, 2);
 * ```
 */
export interface AssociationModel {
  /** `bFirstInterface`. */
  readonly firstInterface: number;
  /** `bInterfaceCount`. */
  readonly interfaceCount: number;
  /** `bFunctionClass`. */
  readonly class: number;
  /** `bFunctionSubClass`. */
  readonly subclass: number;
  /** `bFunctionProtocol`. */
  readonly protocol: number;
  /** `iFunction`. */
  readonly nameIndex: number;
}

/**
 * A resolved configuration: interfaces sorted by number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveDefinition } from "./model.ts";
 * const m = resolveDefinition({ speed: "super", vendorId: 1, productId: 2, interfaces: [{}] });
 * const c = m.configurations[0]!;
 * assert.equal(c.value, 1);
 * assert.equal(c.maxPower, 13); // 100 mA in 8 mA units, rounded up
 * ```
 */
export interface ConfigurationModel {
  /** Where it is in the definition. */
  readonly path: string;
  /** `bConfigurationValue`. */
  readonly value: number;
  /** `iConfiguration`. */
  readonly nameIndex: number;
  /** `bmAttributes` bit 6. */
  readonly selfPowered: boolean;
  /** `bmAttributes` bit 5. */
  readonly remoteWakeup: boolean;
  /** `bMaxPower` in the speed's units (2 mA, 8 mA at SuperSpeed). */
  readonly maxPower: number;
  /** Class-specific descriptors after the configuration descriptor. */
  readonly extra: readonly Uint8Array[];
  /** Interface associations. */
  readonly associations: readonly AssociationModel[];
  /** Interfaces, by number (index i is interface i). */
  readonly interfaces: readonly InterfaceModel[];
}

/**
 * A resolved device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveDefinition } from "./model.ts";
 * const m = resolveDefinition({ speed: "high", vendorId: 1, productId: 2, product: "P", interfaces: [{}] });
 * assert.equal(m.usbVersion, 0x0200);
 * assert.equal(m.productIndex, 1);
 * assert.equal(m.strings.entries.get(1), "P");
 * ```
 */
export interface DeviceModel {
  /** The speed. */
  readonly speed: EmulatedSpeed;
  /** `bcdUSB`. */
  readonly usbVersion: number;
  /** `bDeviceClass`. */
  readonly class: number;
  /** `bDeviceSubClass`. */
  readonly subclass: number;
  /** `bDeviceProtocol`. */
  readonly protocol: number;
  /** Endpoint 0's packet size in bytes (512 at SuperSpeed). */
  readonly maxPacketSize0: number;
  /** `idVendor`. */
  readonly vendorId: number;
  /** `idProduct`. */
  readonly productId: number;
  /** `bcdDevice`. */
  readonly deviceVersion: number;
  /** `iManufacturer`. */
  readonly manufacturerIndex: number;
  /** `iProduct`. */
  readonly productIndex: number;
  /** `iSerialNumber`. */
  readonly serialNumberIndex: number;
  /** The configurations, in definition (index) order. */
  readonly configurations: readonly ConfigurationModel[];
  /** The strings. */
  readonly strings: StringTable;
  /** The encoded BOS descriptor set, if the device has one. */
  readonly bos: Uint8Array | undefined;
  /** Device requests. */
  readonly control: ControlHandler | undefined;
  /** Error hook. */
  readonly onError: ((error: unknown, where: string) => void) | undefined;
  /** Event hook. */
  readonly onEvent: ((event: EmulatedDeviceEvent) => void) | undefined;
}

const DEVICE_FIELDS = [
  "speed",
  "vendorId",
  "productId",
  "deviceVersion",
  "usbVersion",
  "class",
  "subclass",
  "protocol",
  "maxPacketSize0",
  "manufacturer",
  "product",
  "serialNumber",
  "strings",
  "languageId",
  "configurations",
  "interfaces",
  "bos",
  "control",
  "onError",
  "onEvent",
] as const;
const CONFIGURATION_FIELDS = [
  "value",
  "name",
  "selfPowered",
  "remoteWakeup",
  "maxPowerMilliamps",
  "extra",
  "associations",
  "interfaces",
] as const;
const ALTERNATE_FIELDS = [
  "alternate",
  "class",
  "subclass",
  "protocol",
  "name",
  "extra",
  "endpoints",
] as const;
const INTERFACE_FIELDS = [
  "number",
  "alternates",
  "control",
  "requestDescriptors",
  ...ALTERNATE_FIELDS,
] as const;
const ASSOCIATION_FIELDS = [
  "firstInterface",
  "interfaceCount",
  "class",
  "subclass",
  "protocol",
  "name",
] as const;
const ENDPOINT_FIELDS = [
  "address",
  "type",
  "maxPacketSize",
  "transactions",
  "interval",
  "synchronization",
  "usage",
  "refresh",
  "synchAddress",
  "companion",
  "extra",
  "control",
  "onIn",
  "source",
  "onOut",
  "sink",
  "onIsoIn",
  "onIsoOut",
] as const;
const COMPANION_FIELDS = [
  "maxBurst",
  "maxStreams",
  "mult",
  "bytesPerInterval",
] as const;

const SPEEDS = ["low", "full", "high", "super"] as const;

/**
 * Validates a definition and resolves it into a model.
 *
 * @param definition the device
 * @returns the model
 * @throws {UsbError} `invalid-argument`, the message naming the field's path and the rule
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveDefinition } from "./model.ts";
 * assert.throws(
 *   () => resolveDefinition({
 *     speed: "full", vendorId: 1, productId: 2,
 *     interfaces: [{ endpoints: [{ address: 0x81, type: "bulk", maxPacketSize: 512 }] }],
 *   }),
 *   /interfaces\[0\]\.endpoints\[0\]\.maxPacketSize must be 8, 16, 32 or 64 for a bulk endpoint at full speed/,
 * );
 * ```
 */
export function resolveDefinition(definition: DeviceDefinition): DeviceModel {
  const def = checkObject<DeviceDefinition>("device definition", definition);
  checkFields("device definition", def, DEVICE_FIELDS);
  const speed = def.speed;
  if (!SPEEDS.includes(speed)) {
    throw invalidField("speed", speed, `"low", "full", "high" or "super"`);
  }
  const vendorId = checkInt("vendorId", def.vendorId, 0, 0xffff);
  const productId = checkInt("productId", def.productId, 0, 0xffff);
  const deviceVersion = checkInt(
    "deviceVersion",
    def.deviceVersion ?? 0x0100,
    0,
    0xffff,
  );

  const bos = encodeBos(def.bos, speed, "bos");
  const usbVersion = def.usbVersion === undefined
    ? speed === "super" ? 0x0320 : bos !== undefined ? 0x0201 : 0x0200
    : checkBcd("usbVersion", def.usbVersion);
  if (speed === "super" && usbVersion < 0x0300) {
    throw new UsbError(
      "invalid-argument",
      `usbVersion is 0x${
        hex4(usbVersion)
      } but a SuperSpeed device reports 0x0300 or more (the kernel warm-resets one that does not: hub.c)`,
    );
  }
  if (bos !== undefined && usbVersion < 0x0201) {
    throw new UsbError(
      "invalid-argument",
      `usbVersion is 0x${
        hex4(usbVersion)
      } but the device has a BOS descriptor, which hosts only read when bcdUSB is 0x0201 or more (hub.c)`,
      { hint: "leave usbVersion out, or give 0x0201 or 0x0210" },
    );
  }

  const sizes0 = ep0PacketSizes(speed);
  const maxPacketSize0 = def.maxPacketSize0 ?? sizes0.at(-1)!;
  if (!sizes0.includes(maxPacketSize0)) {
    throw invalidField(
      "maxPacketSize0",
      maxPacketSize0,
      `${sizes0.length === 1 ? "" : "one of "}${
        sizes0.join(", ")
      } at ${speed} speed (USB 2.0 §5.5.3, USB 3.2 §9.6.1)`,
    );
  }

  const languageId = checkInt(
    "languageId",
    def.languageId ?? 0x0409,
    1,
    0xffff,
  );
  const strings = new StringTable(def.strings, languageId, "strings");
  const manufacturerIndex = strings.ref("manufacturer", def.manufacturer);
  const productIndex = strings.ref("product", def.product);
  const serialNumberIndex = strings.ref("serialNumber", def.serialNumber);

  let configDefs: readonly ConfigurationDefinition[];
  let configPath: (i: number) => string;
  if (def.configurations !== undefined) {
    if (def.interfaces !== undefined) {
      throw new UsbError(
        "invalid-argument",
        "the definition has both configurations and interfaces: give interfaces inside each configuration, or interfaces alone for one configuration",
      );
    }
    if (!Array.isArray(def.configurations)) {
      throw invalidField(
        "configurations",
        def.configurations,
        "an array of configurations",
      );
    }
    configDefs = def.configurations;
    configPath = (i) => `configurations[${i}]`;
  } else if (def.interfaces !== undefined) {
    configDefs = [{ interfaces: def.interfaces }];
    configPath = () => "";
  } else {
    throw new UsbError(
      "invalid-argument",
      "the definition has no configurations: give configurations, or interfaces for one configuration",
    );
  }
  if (configDefs.length < 1 || configDefs.length > MAX_CONFIGURATIONS) {
    throw new UsbError(
      "invalid-argument",
      `configurations has ${configDefs.length} entries; a device has 1 to ${MAX_CONFIGURATIONS} (Linux reads at most ${MAX_CONFIGURATIONS}: USB_MAXCONFIG in drivers/usb/core/config.c)`,
    );
  }
  const configurations = configDefs.map((c, i) =>
    resolveConfiguration(configPath(i), c, i, speed, strings)
  );
  const values = new Map<number, number>();
  configurations.forEach((c, i) => {
    const first = values.get(c.value);
    if (first !== undefined) {
      throw new UsbError(
        "invalid-argument",
        `configurations[${i}].value ${c.value} is already the value of configurations[${first}]`,
      );
    }
    values.set(c.value, i);
  });

  const hasIad = configurations.some((c) => c.associations.length > 0);
  return {
    speed,
    usbVersion,
    // USB IAD ECN: a device with IADs uses the Multi-interface Function class.
    class: checkInt("class", def.class ?? (hasIad ? 0xef : 0), 0, 255),
    subclass: checkInt("subclass", def.subclass ?? (hasIad ? 2 : 0), 0, 255),
    protocol: checkInt("protocol", def.protocol ?? (hasIad ? 1 : 0), 0, 255),
    maxPacketSize0,
    vendorId,
    productId,
    deviceVersion,
    manufacturerIndex,
    productIndex,
    serialNumberIndex,
    configurations,
    strings,
    bos,
    control: checkFunction<ControlHandler>("control", def.control),
    onError: checkFunction("onError", def.onError),
    onEvent: checkFunction("onEvent", def.onEvent),
  };
}

function join(path: string, field: string): string {
  return path === "" ? field : `${path}.${field}`;
}

function checkBcd(path: string, value: unknown): number {
  const v = checkInt(path, value, 0, 0xffff);
  if (v.toString(16).split("").some((d) => d > "9")) {
    throw invalidField(
      path,
      value,
      "binary-coded decimal (0x0200 is USB 2.0, 0x0320 is USB 3.2)",
    );
  }
  return v;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/** "a bulk", "an interrupt", "an isochronous". */
function article(word: string): string {
  return `${/^[aeiou]/.test(word) ? "an" : "a"} ${word}`;
}

function resolveConfiguration(
  path: string,
  value: unknown,
  index: number,
  speed: EmulatedSpeed,
  strings: StringTable,
): ConfigurationModel {
  const def = checkObject<ConfigurationDefinition>(
    path === "" ? "configuration" : path,
    value,
  );
  if (path !== "") checkFields(path, def, CONFIGURATION_FIELDS);
  const limit = maxPowerLimit(speed);
  const mA = checkInt(
    join(path, "maxPowerMilliamps"),
    def.maxPowerMilliamps ?? 100,
    0,
    limit,
  );
  const unit = speed === "super" ? 8 : 2;
  const nameIndex = strings.ref(join(path, "name"), def.name);
  const extra = checkDescriptors(join(path, "extra"), def.extra);

  const ifPath = join(path, "interfaces");
  if (!Array.isArray(def.interfaces)) {
    throw invalidField(ifPath, def.interfaces, "an array of interfaces");
  }
  if (def.interfaces.length > MAX_INTERFACES) {
    throw new UsbError(
      "invalid-argument",
      `${ifPath} has ${def.interfaces.length} interfaces; Linux takes at most ${MAX_INTERFACES} (USB_MAXINTERFACES)`,
    );
  }
  const interfaces = def.interfaces.map((d, i) =>
    resolveInterface(`${ifPath}[${i}]`, d, i, speed, strings)
  );
  // Interface numbers must be exactly 0..n-1 (USB 2.0 §9.6.5; config.c
  // reports "config has no interface number N" otherwise).
  const byNumber: (InterfaceModel | undefined)[] = [];
  interfaces.forEach((intf, i) => {
    if (intf.number >= interfaces.length) {
      throw new UsbError(
        "invalid-argument",
        `${ifPath}[${i}].number is ${intf.number}, but with ${interfaces.length} interface(s) the numbers are 0 to ${
          interfaces.length - 1
        } (USB 2.0 §9.6.5: zero-based and contiguous)`,
      );
    }
    const other = byNumber[intf.number];
    if (other !== undefined) {
      throw new UsbError(
        "invalid-argument",
        `${ifPath}[${i}].number ${intf.number} is already the number of ${other.path}`,
      );
    }
    byNumber[intf.number] = intf;
  });
  const sorted = byNumber as InterfaceModel[];

  // An endpoint belongs to one interface: Linux skips a "duplicate endpoint"
  // met in another interface (config.c, config_endpoint_is_duplicate).
  const owner = new Map<number, { intf: number; path: string }>();
  for (const intf of sorted) {
    for (const alt of intf.alternates) {
      for (const ep of alt.endpoints) {
        const o = owner.get(ep.address);
        if (o !== undefined && o.intf !== intf.number) {
          throw new UsbError(
            "invalid-argument",
            `${ep.path}.address 0x${
              hex2(ep.address)
            } is already used by interface ${o.intf} (${o.path}); an endpoint belongs to one interface of a configuration (Linux drops the duplicate: config.c)`,
          );
        }
        owner.set(ep.address, { intf: intf.number, path: ep.path });
      }
    }
  }

  const assocPath = join(path, "associations");
  const assocDefs = def.associations ?? [];
  if (!Array.isArray(assocDefs)) {
    throw invalidField(assocPath, assocDefs, "an array of associations");
  }
  if (assocDefs.length > MAX_ASSOCIATIONS) {
    throw new UsbError(
      "invalid-argument",
      `${assocPath} has ${assocDefs.length} entries; Linux keeps at most ${MAX_ASSOCIATIONS} (USB_MAXIADS)`,
    );
  }
  const claimed: (number | undefined)[] = [];
  const associations = assocDefs.map((a, i) => {
    const at = `${assocPath}[${i}]`;
    const o = checkObject<AssociationDefinition>(at, a);
    checkFields(at, o, ASSOCIATION_FIELDS);
    const n = sorted.length;
    if (n === 0) {
      throw new UsbError(
        "invalid-argument",
        `${at}: the configuration has no interfaces to associate`,
      );
    }
    const first = checkInt(`${at}.firstInterface`, o.firstInterface, 0, n - 1);
    const count = checkInt(
      `${at}.interfaceCount`,
      o.interfaceCount,
      1,
      n - first,
    );
    for (let k = first; k < first + count; k++) {
      const by = claimed[k];
      if (by !== undefined) {
        throw new UsbError(
          "invalid-argument",
          `${at} covers interface ${k}, which ${assocPath}[${by}] already covers; an interface belongs to at most one function`,
        );
      }
      claimed[k] = i;
    }
    const alt0 = sorted[first]!.alternates[0]!;
    return {
      firstInterface: first,
      interfaceCount: count,
      class: checkInt(`${at}.class`, o.class ?? alt0.class, 0, 255),
      subclass: checkInt(`${at}.subclass`, o.subclass ?? alt0.subclass, 0, 255),
      protocol: checkInt(`${at}.protocol`, o.protocol ?? alt0.protocol, 0, 255),
      nameIndex: strings.ref(`${at}.name`, o.name),
    };
  });

  return {
    path,
    value: checkInt(join(path, "value"), def.value ?? index + 1, 1, 255),
    nameIndex,
    selfPowered: checkFlag(join(path, "selfPowered"), def.selfPowered, false),
    remoteWakeup: checkFlag(
      join(path, "remoteWakeup"),
      def.remoteWakeup,
      false,
    ),
    maxPower: Math.ceil(mA / unit),
    extra,
    associations,
    interfaces: sorted,
  };
}

function resolveInterface(
  path: string,
  value: unknown,
  index: number,
  speed: EmulatedSpeed,
  strings: StringTable,
): InterfaceModel {
  const def = checkObject<InterfaceDefinition>(path, value);
  checkFields(path, def, INTERFACE_FIELDS);
  const number = checkInt(`${path}.number`, def.number ?? index, 0, 255);

  let alternates: AlternateModel[];
  if (def.alternates !== undefined) {
    const flat = ALTERNATE_FIELDS.filter((f) => def[f] !== undefined);
    if (flat.length > 0) {
      throw new UsbError(
        "invalid-argument",
        `${path} has alternates and also ${
          flat.join(", ")
        }: with alternates, give these fields inside each alternate setting`,
      );
    }
    if (!Array.isArray(def.alternates) || def.alternates.length === 0) {
      throw invalidField(
        `${path}.alternates`,
        def.alternates,
        "a non-empty array of alternate settings",
      );
    }
    if (def.alternates.length > MAX_ALTERNATES) {
      throw new UsbError(
        "invalid-argument",
        `${path}.alternates has ${def.alternates.length} entries; Linux takes at most ${MAX_ALTERNATES} (USB_MAXALTSETTING)`,
      );
    }
    alternates = def.alternates.map((a, i) =>
      resolveAlternate(
        `${path}.alternates[${i}]`,
        checkObject<AlternateDefinition>(`${path}.alternates[${i}]`, a),
        number,
        i,
        speed,
        strings,
        true,
      )
    );
  } else {
    alternates = [
      resolveAlternate(path, def, number, 0, speed, strings, false),
    ];
  }

  // Alternate settings are numbered 0..n-1, each once (config.c: "Duplicate
  // descriptor for config N interface N altsetting N", "has no altsetting N").
  const byNumber: (AlternateModel | undefined)[] = [];
  for (const alt of alternates) {
    const other = byNumber[alt.alternate];
    if (other !== undefined) {
      throw new UsbError(
        "invalid-argument",
        `${alt.path}.alternate ${alt.alternate} is already the alternate setting of ${other.path} (duplicate alternate setting)`,
      );
    }
    if (alt.alternate >= alternates.length) {
      throw new UsbError(
        "invalid-argument",
        `${alt.path}.alternate is ${alt.alternate}, but with ${alternates.length} alternate setting(s) the numbers are 0 to ${
          alternates.length - 1
        } (Linux reports a missing alternate setting otherwise)`,
      );
    }
    byNumber[alt.alternate] = alt;
  }

  const rdPath = `${path}.requestDescriptors`;
  const rd = def.requestDescriptors ?? [];
  if (!Array.isArray(rd)) {
    throw invalidField(rdPath, rd, "an array of { type, index?, data }");
  }
  const requestDescriptors = rd.map((r, i) => {
    const at = `${rdPath}[${i}]`;
    const o = checkObject<{ type: number; index?: number; data: unknown }>(
      at,
      r,
    );
    checkFields(at, o, ["type", "index", "data"]);
    return {
      type: checkInt(`${at}.type`, o.type, 0, 255),
      index: checkInt(`${at}.index`, o.index ?? 0, 0, 255),
      data: checkBytes(`${at}.data`, o.data),
    };
  });

  return {
    path,
    number,
    alternates: byNumber as AlternateModel[],
    control: checkFunction<ControlHandler>(`${path}.control`, def.control),
    requestDescriptors,
  };
}

function resolveAlternate(
  path: string,
  def: AlternateDefinition,
  interfaceNumber: number,
  index: number,
  speed: EmulatedSpeed,
  strings: StringTable,
  checkKeys: boolean,
): AlternateModel {
  if (checkKeys) checkFields(path, def, ALTERNATE_FIELDS);
  const alternate = checkInt(
    `${path}.alternate`,
    def.alternate ?? index,
    0,
    255,
  );
  const epDefs = def.endpoints ?? [];
  if (!Array.isArray(epDefs)) {
    throw invalidField(`${path}.endpoints`, epDefs, "an array of endpoints");
  }
  const endpoints = epDefs.map((e, i) =>
    resolveEndpoint(`${path}.endpoints[${i}]`, e, speed)
  );
  // Only alternate setting 0 may hold zero-bandwidth isochronous endpoints;
  // config.c reports "invalid wMaxPacketSize 0" for any other.
  if (alternate !== 0) {
    for (const ep of endpoints) {
      if (ep.maxPacketSize === 0) {
        throw new UsbError(
          "invalid-argument",
          `${ep.path}.maxPacketSize is 0 in alternate setting ${alternate}; a zero-bandwidth isochronous endpoint belongs in alternate setting 0 (drivers/usb/core/config.c reports it as invalid elsewhere)`,
        );
      }
    }
  }
  // One address once per alternate setting (config.c skips a duplicate).
  endpoints.forEach((ep, i) => {
    const j = endpoints.findIndex((o) => o.address === ep.address);
    if (j !== i) {
      throw new UsbError(
        "invalid-argument",
        `${ep.path}.address 0x${
          hex2(ep.address)
        } is used twice in one alternate setting (also ${path}.endpoints[${j}])`,
      );
    }
  });
  return {
    path,
    interfaceNumber,
    alternate,
    class: checkInt(`${path}.class`, def.class ?? 0xff, 0, 255),
    subclass: checkInt(`${path}.subclass`, def.subclass ?? 0, 0, 255),
    protocol: checkInt(`${path}.protocol`, def.protocol ?? 0, 0, 255),
    nameIndex: strings.ref(`${path}.name`, def.name),
    extra: checkDescriptors(`${path}.extra`, def.extra),
    endpoints,
  };
}

const TYPE_CODES = { isochronous: 1, bulk: 2, interrupt: 3 } as const;
const SYNC_CODES = {
  none: 0,
  asynchronous: 1,
  adaptive: 2,
  synchronous: 3,
} as const;
const ISO_USAGE = { data: 0, feedback: 1, "implicit-feedback": 2 } as const;
const INT_USAGE = { periodic: 0, notification: 1 } as const;

function resolveEndpoint(
  path: string,
  value: unknown,
  speed: EmulatedSpeed,
): EndpointModel {
  const def = checkObject<EndpointDefinition>(path, value);
  checkFields(path, def, ENDPOINT_FIELDS);
  const address = checkInt(`${path}.address`, def.address, 0, 255);
  const number = address & 0x7f;
  if (number === 0) {
    throw new UsbError(
      "invalid-argument",
      `${path}.address 0x${
        hex2(address)
      } is endpoint 0, the default control pipe, which every device has without a descriptor; endpoint numbers are 1 to 15`,
    );
  }
  if (number > 15) {
    throw new UsbError(
      "invalid-argument",
      `${path}.address 0x${
        hex2(address)
      } has endpoint number ${number}; endpoint numbers are 1 to 15 (bits 6:4 of bEndpointAddress are reserved)`,
    );
  }
  const direction = (address & 0x80) !== 0 ? "in" : "out";
  const type = def.type;
  if (!Object.hasOwn(TYPE_CODES, type)) {
    throw invalidField(
      `${path}.type`,
      type,
      `"bulk", "interrupt" or "isochronous"`,
      (type as unknown) === "control"
        ? "control endpoints other than endpoint 0 are not supported"
        : undefined,
    );
  }
  const speedName = speed === "super" ? "SuperSpeed" : `${speed} speed`;
  const periodic = type !== "bulk";

  // Companion first: its bMaxBurst changes which packet sizes are allowed.
  let companionDef: CompanionDefinition | undefined;
  if (def.companion !== undefined) {
    if (speed !== "super") {
      throw new UsbError(
        "invalid-argument",
        `${path}.companion is given but the device runs at ${speedName}; endpoint companions are for SuperSpeed only`,
      );
    }
    companionDef = checkObject<CompanionDefinition>(
      `${path}.companion`,
      def.companion,
    );
    checkFields(`${path}.companion`, companionDef, COMPANION_FIELDS);
  }
  const maxBurst = checkInt(
    `${path}.companion.maxBurst`,
    companionDef?.maxBurst ?? 0,
    0,
    15,
  );

  // High-bandwidth (bits 12:11 of wMaxPacketSize): high-speed periodic only.
  const transactions = def.transactions ?? 1;
  if (speed === "high" && periodic) {
    checkInt(`${path}.transactions`, transactions, 1, 3);
  } else if (transactions !== 1) {
    throw invalidField(
      `${path}.transactions`,
      transactions,
      "1 (more transactions per microframe are for high-speed interrupt and isochronous endpoints only)",
      speed === "super"
        ? "at SuperSpeed use companion.maxBurst and companion.mult"
        : undefined,
    );
  }

  const defaults = endpointDefaults(speed, type);
  const rule = packetSizeRule(speed, type, transactions, maxBurst);
  if (rule === undefined) {
    throw new UsbError(
      "invalid-argument",
      `${path}.type is "${type}", but a low-speed device has only control and interrupt endpoints (USB 2.0 §5.3.1.2)`,
    );
  }
  const maxPacketSize = def.maxPacketSize ??
    (rule.check(defaults.maxPacketSize) ? defaults.maxPacketSize : 1024);
  if (
    typeof maxPacketSize !== "number" || !Number.isInteger(maxPacketSize) ||
    !rule.check(maxPacketSize)
  ) {
    throw invalidField(
      `${path}.maxPacketSize`,
      maxPacketSize,
      `${rule.allowed} for ${
        article(type)
      } endpoint at ${speedName} (${rule.source})`,
    );
  }

  const [minInterval, maxInterval] = intervalRange(speed, type);
  const interval = def.interval ?? defaults.interval;
  if (
    typeof interval !== "number" || !Number.isInteger(interval) ||
    interval < minInterval || interval > maxInterval
  ) {
    throw invalidField(
      `${path}.interval`,
      interval,
      `from ${minInterval} to ${maxInterval} for ${
        article(type)
      } endpoint at ${speedName} (${
        type === "interrupt" && (speed === "low" || speed === "full")
          ? "milliseconds"
          : type === "bulk"
          ? "the NAK rate"
          : "an exponent: 2^(interval-1) frames or microframes"
      }; drivers/usb/core/config.c)`,
    );
  }

  let attributes: number = TYPE_CODES[type];
  if (def.synchronization !== undefined) {
    if (type !== "isochronous") {
      throw new UsbError(
        "invalid-argument",
        `${path}.synchronization is for isochronous endpoints; this one is ${type}`,
      );
    }
    const code = SYNC_CODES[def.synchronization];
    if (code === undefined || !Object.hasOwn(SYNC_CODES, def.synchronization)) {
      throw invalidField(
        `${path}.synchronization`,
        def.synchronization,
        `"none", "asynchronous", "adaptive" or "synchronous"`,
      );
    }
    attributes |= code << 2;
  }
  if (def.usage !== undefined) {
    const table: Record<string, number> = type === "isochronous"
      ? ISO_USAGE
      : type === "interrupt" && speed === "super"
      ? INT_USAGE
      : {};
    const code = Object.hasOwn(table, def.usage) ? table[def.usage] : undefined;
    if (code === undefined) {
      const allowed = Object.keys(table);
      throw invalidField(
        `${path}.usage`,
        def.usage,
        allowed.length === 0
          ? `left out for ${
            type === "interrupt"
              ? "an interrupt endpoint below SuperSpeed"
              : `${article(type)} endpoint`
          } (bits 5:4 are reserved)`
          : `one of ${allowed.map((a) => `"${a}"`).join(", ")}`,
      );
    }
    attributes |= code << 4;
  }

  const audio = def.refresh !== undefined || def.synchAddress !== undefined;
  const refresh = audio
    ? checkInt(`${path}.refresh`, def.refresh ?? 0, 0, 255)
    : undefined;
  const synchAddress = audio
    ? checkInt(`${path}.synchAddress`, def.synchAddress ?? 0, 0, 255)
    : undefined;

  let companion: CompanionModel | undefined;
  if (speed === "super") {
    companion = resolveCompanion(
      `${path}.companion`,
      companionDef ?? {},
      type,
      direction,
      maxPacketSize,
      maxBurst,
    );
  }

  // Behaviour: only what fits the direction and type.
  const onIn = checkFunction<InHandler>(`${path}.onIn`, def.onIn);
  const onOut = checkFunction<OutHandler>(`${path}.onOut`, def.onOut);
  const onIsoIn = checkFunction<IsoInHandler>(`${path}.onIsoIn`, def.onIsoIn);
  const onIsoOut = checkFunction<IsoOutHandler>(
    `${path}.onIsoOut`,
    def.onIsoOut,
  );
  if (def.source !== undefined) checkSource(`${path}.source`, def.source);
  if (def.sink !== undefined) checkSink(`${path}.sink`, def.sink);
  const given = (
    [
      ["onIn", onIn],
      ["source", def.source],
      ["onOut", onOut],
      ["sink", def.sink],
      ["onIsoIn", onIsoIn],
      ["onIsoOut", onIsoOut],
    ] as const
  ).filter(([, v]) => v !== undefined).map(([k]) => k);
  const fits: readonly string[] = type === "isochronous"
    ? direction === "in" ? ["onIsoIn"] : ["onIsoOut"]
    : direction === "in"
    ? ["onIn", "source"]
    : ["onOut", "sink"];
  for (const k of given) {
    if (!fits.includes(k)) {
      throw new UsbError(
        "invalid-argument",
        `${path}.${k} does not fit ${
          direction === "in" ? "an IN" : "an OUT"
        } ${type} endpoint (0x${hex2(address)}); use ${fits.join(" or ")}`,
      );
    }
  }
  if (given.length > 1) {
    throw new UsbError(
      "invalid-argument",
      `${path} has both ${given[0]} and ${given[1]}; give one`,
    );
  }

  return {
    path,
    address,
    number,
    direction,
    type,
    attributes,
    maxPacketSize,
    transactions,
    interval,
    intervalMicroseconds: serviceInterval(speed, type, interval),
    refresh,
    synchAddress,
    companion,
    extra: checkDescriptors(`${path}.extra`, def.extra),
    control: checkFunction<ControlHandler>(`${path}.control`, def.control),
    onIn,
    source: def.source,
    onOut,
    sink: def.sink,
    onIsoIn,
    onIsoOut,
  };
}

/**
 * Resolves a SuperSpeed companion, with the checks of config.c's
 * `usb_parse_ss_endpoint_companion` as errors instead of fix-ups.
 */
function resolveCompanion(
  path: string,
  def: CompanionDefinition,
  type: "bulk" | "interrupt" | "isochronous",
  direction: "in" | "out",
  maxPacketSize: number,
  maxBurst: number,
): CompanionModel {
  let attributes = 0;
  if (def.maxStreams !== undefined) {
    const streams = def.maxStreams;
    if (type !== "bulk") {
      throw new UsbError(
        "invalid-argument",
        `${path}.maxStreams is for bulk endpoints; this one is ${type}`,
      );
    }
    const exp = typeof streams === "number" && streams > 0
      ? Math.log2(streams)
      : streams === 0
      ? 0
      : NaN;
    if (
      !Number.isInteger(exp) || exp > 16 || (exp === 0 && streams !== 0)
    ) {
      throw invalidField(
        `${path}.maxStreams`,
        streams,
        "0 or a power of two from 2 to 65536 (USB 3.2 §9.6.7)",
      );
    }
    attributes = exp;
  }
  let mult = 1;
  if (def.mult !== undefined) {
    if (type !== "isochronous") {
      throw new UsbError(
        "invalid-argument",
        `${path}.mult is for isochronous endpoints; this one is ${type}`,
      );
    }
    mult = checkInt(`${path}.mult`, def.mult, 1, 3);
    if (mult > 1 && maxBurst === 0) {
      throw new UsbError(
        "invalid-argument",
        `${path}.mult is ${mult} but maxBurst is 0; with no burst, mult must be 1 (USB 3.2 §9.6.7)`,
      );
    }
    attributes = mult - 1;
  }
  let bytesPerInterval = 0;
  if (type === "bulk") {
    if (def.bytesPerInterval !== undefined && def.bytesPerInterval !== 0) {
      throw invalidField(
        `${path}.bytesPerInterval`,
        def.bytesPerInterval,
        "0 for a bulk endpoint (the field is reserved)",
      );
    }
  } else {
    // config.c: more than maxp × (burst + 1) × mult is bogus, and less than
    // one packet on an interrupt IN endpoint "is usually bogus too".
    const max = maxPacketSize * (maxBurst + 1) * mult;
    const min = type === "interrupt" && direction === "in" ? maxPacketSize : 0;
    bytesPerInterval = def.bytesPerInterval ?? max;
    if (
      typeof bytesPerInterval !== "number" ||
      !Number.isInteger(bytesPerInterval) ||
      bytesPerInterval < min || bytesPerInterval > max
    ) {
      throw invalidField(
        `${path}.bytesPerInterval`,
        bytesPerInterval,
        `from ${min} to ${max} (maxPacketSize × (maxBurst + 1)${
          type === "isochronous" ? " × mult" : ""
        }; drivers/usb/core/config.c)`,
      );
    }
  }
  return { maxBurst, attributes, bytesPerInterval };
}

function checkSource(path: string, source: unknown): void {
  if (typeof source === "function") return;
  if (
    typeof source === "object" && source !== null &&
    (Symbol.asyncIterator in source || Symbol.iterator in source)
  ) {
    return;
  }
  throw invalidField(
    path,
    source,
    "an iterable or async iterable of Uint8Array (a ReadableStream, a generator), or a function returning one",
  );
}

function checkSink(path: string, sink: unknown): void {
  if (typeof sink === "function" || sink instanceof WritableStream) return;
  throw invalidField(
    path,
    sink,
    "a WritableStream, or a function returning one",
  );
}
