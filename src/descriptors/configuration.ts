/**
 * The configuration walker: a configuration descriptor and everything
 * under it, following the kernel's rules (drivers/usb/core/config.c,
 * usb_parse_configuration, usb_parse_interface, usb_parse_endpoint): what
 * the kernel keeps is kept, what it skips goes to `skipped` with a warning,
 * and what it corrects is shown raw and in force.
 *
 * @module
 */

import { hex2, invalid, LENIENT_HINT, Reader } from "./reader.ts";
import { deviceAt, USB_DT_DEVICE_SIZE } from "./device.ts";
import {
  companionAt,
  endpointAt,
  type EndpointDraft,
  USB_DT_ENDPOINT_AUDIO_SIZE,
  USB_DT_ENDPOINT_SIZE,
  USB_DT_SS_EP_COMP_SIZE,
} from "./endpoint.ts";
import {
  type AltDraft,
  associationAt,
  type IadDraft,
  interfaceAt,
  USB_DT_INTERFACE_ASSOCIATION_SIZE,
  USB_DT_INTERFACE_SIZE,
} from "./interface.ts";
import { defaultDecoders } from "./class/registry.ts";
import {
  type ClassContext,
  type ConfigurationDescriptor,
  DescriptorType,
  type DescriptorWarning,
  type DeviceDescriptors,
  type ParseOptions,
  type RawDescriptor,
} from "./types.ts";

/** `USB_DT_CONFIG_SIZE`, ch9.h. */
const USB_DT_CONFIG_SIZE = 9;
// Kernel limits, include/linux/usb.h.
const USB_MAXINTERFACES = 32;
const USB_MAXALTSETTING = 128;
const USB_MAXENDPOINTS = 30;
const USB_MAXIADS = USB_MAXINTERFACES / 2;

interface InterfaceDraft {
  interfaceNumber: number;
  alternates: AltDraft[];
}

/**
 * Endpoint addresses seen so far in a configuration, for config.c's
 * duplicate rule (config_endpoint_is_duplicate): an address is a duplicate
 * if another interface, or the same alternate setting, already has it; a
 * control endpoint also clashes with any endpoint of the same number. Kept
 * in maps so the check is constant time whatever the input.
 */
class EndpointSeen {
  #byAddress = new Map<number, { intfs: Set<number>; alts: Set<string> }>();
  #byNumber = new Map<number, { intfs: Set<number>; alts: Set<string> }>();
  #controlByNumber = new Map<
    number,
    { intfs: Set<number>; alts: Set<string> }
  >();

  static #clash(
    e: { intfs: Set<number>; alts: Set<string> } | undefined,
    intf: number,
    alt: string,
  ): boolean {
    if (e === undefined) return false;
    return e.alts.has(alt) || e.intfs.size > 1 ||
      (e.intfs.size === 1 && !e.intfs.has(intf));
  }

  static #add(
    m: Map<number, { intfs: Set<number>; alts: Set<string> }>,
    key: number,
    intf: number,
    alt: string,
  ): void {
    let e = m.get(key);
    if (e === undefined) {
      e = { intfs: new Set(), alts: new Set() };
      m.set(key, e);
    }
    e.intfs.add(intf);
    e.alts.add(alt);
  }

  duplicate(address: number, control: boolean, intf: number, alt: number) {
    const key = `${intf}/${alt}`;
    const num = address & 0x0f;
    return EndpointSeen.#clash(this.#byAddress.get(address), intf, key) ||
      EndpointSeen.#clash(this.#controlByNumber.get(num), intf, key) ||
      (control && EndpointSeen.#clash(this.#byNumber.get(num), intf, key));
  }

  add(address: number, control: boolean, intf: number, alt: number): void {
    const key = `${intf}/${alt}`;
    const num = address & 0x0f;
    EndpointSeen.#add(this.#byAddress, address, intf, key);
    EndpointSeen.#add(this.#byNumber, num, intf, key);
    if (control) EndpointSeen.#add(this.#controlByNumber, num, intf, key);
  }
}

/**
 * Walks one configuration starting at `start`.
 *
 * @param r the reader
 * @param start where the configuration descriptor starts
 * @param inFile the configuration is part of a sysfs `descriptors` file
 *   (followed by others unless `last`). The kernel trims each configuration
 *   to what it validated while the bytes keep the device's original
 *   wTotalLength (config.c, usb_parse_configuration); in lenient mode a
 *   configuration header then ends a trimmed configuration. An untrimmed
 *   one, whose wTotalLength lands on the next configuration header or the
 *   end, keeps a type-2 descriptor inside it as the kernel does (skipped,
 *   with a warning).
 * @returns the configuration and where it ends
 * @throws {UsbError} `"invalid-descriptor"`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Reader } from "./reader.ts";
 * import { configurationAt } from "./configuration.ts";
 * const r = new Reader(new Uint8Array([9, 2, 18, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 0, 0xff, 0, 0, 0]), true);
 * const { config, end } = configurationAt(r, 0, undefined);
 * assert.ok(config.interfaces.length === 1 && end === 18);
 * ```
 */
export function configurationAt(
  r: Reader,
  start: number,
  inFile: { last: boolean } | undefined,
): { config: ConfigurationDescriptor; end: number } {
  const strict = r.strict;
  const available = r.length - start;
  if (available < USB_DT_CONFIG_SIZE) {
    throw invalid(
      start,
      `truncated configuration descriptor: ${available} of ${USB_DT_CONFIG_SIZE} bytes`,
    );
  }
  const bLength = r.u8(start);
  const type = r.u8(start + 1);
  if (
    type !== DescriptorType.Configuration &&
    !(inFile === undefined && type === DescriptorType.OtherSpeedConfiguration)
  ) {
    throw invalid(
      start,
      `expected a configuration descriptor (type 0x02), found type 0x${
        hex2(type)
      }`,
    );
  }
  // The kernel rejects a configuration with bLength < 9 or past the data.
  if (
    bLength < USB_DT_CONFIG_SIZE || (strict && bLength !== USB_DT_CONFIG_SIZE)
  ) {
    throw invalid(
      start,
      `configuration descriptor bLength is ${bLength}, expected 9`,
    );
  }
  const totalLength = r.u16(start + 2);
  if (strict && totalLength < bLength) {
    throw invalid(
      start + 2,
      `wTotalLength ${totalLength} is shorter than the configuration descriptor (${bLength})`,
      LENIENT_HINT,
    );
  }
  if (bLength > available) {
    throw invalid(
      start,
      `configuration descriptor bLength ${bLength} runs past the data`,
    );
  }
  if (strict && totalLength > available) {
    throw invalid(
      start + 2,
      `wTotalLength is ${totalLength} but only ${available} byte(s) remain (truncated)`,
      LENIENT_HINT,
    );
  }
  // The kernel reads at least USB_DT_CONFIG_SIZE bytes whatever wTotalLength
  // says (config.c, usb_get_configuration), so lenient mode does too.
  const declaredEnd = start + Math.max(totalLength, bLength);
  const limit = Math.min(declaredEnd, r.length);
  const untrimmed = declaredEnd < r.length - 1 &&
    (r.bytes[declaredEnd] ?? 0) >= USB_DT_CONFIG_SIZE &&
    r.bytes[declaredEnd + 1] === DescriptorType.Configuration;
  const nextMayStart = !strict && inFile !== undefined && !inFile.last &&
    !untrimmed;

  const warnings: DescriptorWarning[] = [];
  r.warnings = warnings;
  const numInterfaces = r.u8(start + 4);
  const attributes = r.u8(start + 7);
  const extra: RawDescriptor[] = [];
  const skipped: RawDescriptor[] = [];
  const interfaces: InterfaceDraft[] = [];
  const byNumber = new Map<number, InterfaceDraft>();
  const associations: IadDraft[] = [];
  const seen = new EndpointSeen();
  const altSeen = new Set<number>(); // interface * 256 + alternate setting

  // Unknown descriptors attach to the last thing parsed, keeping their place.
  let ownerExtra: RawDescriptor[] = extra;
  let alt: AltDraft | undefined;
  let lastEndpoint: EndpointDraft | undefined; // set only right after an endpoint
  // After a descriptor the kernel skips, it also skips what follows up to
  // the next interface ("interface") or endpoint or interface ("endpoint").
  let skipping: "interface" | "endpoint" | undefined;
  const skip = (raw: RawDescriptor, until: "interface" | "endpoint") => {
    skipped.push(raw);
    skipping = until;
  };
  const superSpeed = r.speed === "super" || r.speed === "super-plus";

  let pos = start + bLength;
  while (pos < limit) {
    const left = limit - pos;
    if (left < 2) {
      if (strict) {
        throw invalid(
          pos,
          `${left} stray byte at the end of the configuration`,
        );
      }
      r.warn(pos, `${left} excess byte at the end, ignoring`);
      break; // config.c: "descriptor has N excess bytes, ignoring"
    }
    const len = r.u8(pos);
    const dtype = r.u8(pos + 1);
    if (len < 2 || len > left) {
      // A zero bLength would never advance; the kernel drops the remainder.
      if (strict) {
        throw invalid(
          pos,
          len < 2
            ? `bLength ${len} (every descriptor has at least bLength and bDescriptorType)`
            : `descriptor type 0x${
              hex2(dtype)
            } with bLength ${len} runs past the end of the configuration (${left} byte(s) left)`,
          LENIENT_HINT,
        );
      }
      if (!(nextMayStart && dtype === DescriptorType.Configuration)) {
        r.warn(
          pos,
          `invalid descriptor of length ${len}, skipping the remainder of the configuration`,
        );
      }
      break;
    }
    if (
      nextMayStart && dtype === DescriptorType.Configuration &&
      len >= USB_DT_CONFIG_SIZE
    ) {
      break; // the next configuration in a trimmed sysfs descriptors file
    }

    const raw = r.raw(pos, len);
    const follows = lastEndpoint;
    lastEndpoint = undefined;
    pos += len;
    const at = raw.offset;

    if (skipping !== undefined) {
      const ends = dtype === DescriptorType.Interface ||
        (skipping === "endpoint" && dtype === DescriptorType.Endpoint);
      if (!ends) {
        skipped.push(raw);
        continue;
      }
      skipping = undefined;
    }

    switch (dtype) {
      case DescriptorType.Device:
      case DescriptorType.Configuration: {
        if (strict) {
          throw invalid(
            at,
            `unexpected ${
              dtype === DescriptorType.Device ? "device" : "configuration"
            } descriptor inside a configuration`,
            LENIENT_HINT,
          );
        }
        r.warn(
          at,
          `unexpected descriptor of type 0x${hex2(dtype)}, skipping`,
        );
        ownerExtra.push(raw); // config.c leaves it among the extra bytes
        break;
      }
      case DescriptorType.Interface: {
        if (
          !r.lengthOk(
            at,
            "interface",
            len,
            [USB_DT_INTERFACE_SIZE],
            "9 (USB_DT_INTERFACE_SIZE)",
          )
        ) {
          skip(raw, "interface");
          alt = undefined;
          break;
        }
        const setting = interfaceAt(r, at, len);
        const number = setting.interfaceNumber;
        let intf = byNumber.get(number);
        if (
          intf === undefined && !strict && byNumber.size >= USB_MAXINTERFACES
        ) {
          r.warn(
            at,
            `more than ${USB_MAXINTERFACES} interfaces, skipping interface ${number}`,
          );
          skip(raw, "interface");
          alt = undefined;
          break;
        }
        const altKey = number * 256 + setting.alternateSetting;
        if (intf !== undefined && altSeen.has(altKey)) {
          const what =
            `interface ${number} alternate setting ${setting.alternateSetting} appears twice`;
          if (strict) throw invalid(at, what);
          r.warn(at, `${what}: duplicate, skipping it and what follows it`);
          skip(raw, "interface");
          alt = undefined;
          break;
        }
        if (
          intf !== undefined && !strict &&
          intf.alternates.length >= USB_MAXALTSETTING
        ) {
          r.warn(
            at,
            `more than ${USB_MAXALTSETTING} alternate settings for interface ${number}, skipping`,
          );
          skip(raw, "interface");
          alt = undefined;
          break;
        }
        if (intf === undefined) {
          intf = { interfaceNumber: number, alternates: [] };
          byNumber.set(number, intf);
          interfaces.push(intf);
        }
        intf.alternates.push(setting);
        altSeen.add(altKey);
        alt = setting;
        ownerExtra = setting.extra;
        break;
      }
      case DescriptorType.Endpoint: {
        if (alt === undefined) {
          if (strict) {
            throw invalid(
              at,
              "endpoint descriptor before any interface descriptor",
            );
          }
          ownerExtra.push(raw); // config.c keeps it among the extra bytes
          break;
        }
        if (
          !r.lengthOk(
            at,
            "endpoint",
            len,
            [USB_DT_ENDPOINT_SIZE, USB_DT_ENDPOINT_AUDIO_SIZE],
            "7 (USB_DT_ENDPOINT_SIZE) or 9 (audio)",
          )
        ) {
          skip(raw, "endpoint");
          break;
        }
        const address = r.u8(at + 2);
        if (!strict) {
          const n = address & 0x7f;
          let why: string | undefined;
          if (n === 0 || n >= 16) {
            why = `invalid endpoint address 0x${hex2(address)}`;
          } else if (
            alt.endpoints.length >= Math.min(alt.numEndpoints, USB_MAXENDPOINTS)
          ) {
            why = `endpoint 0x${
              hex2(address)
            } beyond bNumEndpoints (${alt.numEndpoints})`;
          } else if (
            seen.duplicate(
              address,
              (r.u8(at + 3) & 3) === 0,
              alt.interfaceNumber,
              alt.alternateSetting,
            )
          ) {
            why = `duplicate endpoint with address 0x${hex2(address)}`;
          }
          if (why !== undefined) {
            r.warn(
              at,
              `interface ${alt.interfaceNumber} alternate setting ${alt.alternateSetting}: ${why}, skipping`,
            );
            skip(raw, "endpoint");
            break;
          }
        } else if ((address & 0x70) !== 0) {
          throw invalid(
            at + 2,
            `endpoint address 0x${hex2(address)} has reserved bits 6:4 set`,
          );
        }
        const ep = endpointAt(r, at, len, alt.alternateSetting);
        if (
          strict &&
          seen.duplicate(
            address,
            ep.type === "control",
            alt.interfaceNumber,
            alt.alternateSetting,
          )
        ) {
          throw invalid(
            at,
            `endpoint 0x${
              hex2(ep.address)
            } appears twice in interface ${alt.interfaceNumber} alternate setting ${alt.alternateSetting}` +
              (alt.endpoints.some((e) => e.address === address)
                ? ""
                : " (or in another interface)"),
          );
        }
        seen.add(
          address,
          (ep.attributes & 3) === 0,
          alt.interfaceNumber,
          alt.alternateSetting,
        );
        alt.endpoints.push(ep);
        ownerExtra = ep.extra;
        lastEndpoint = ep;
        if (
          superSpeed &&
          r.bytes[pos + 1] !== DescriptorType.SuperSpeedEndpointCompanion
        ) {
          r.warn(
            at,
            `no SuperSpeed endpoint companion for endpoint 0x${
              hex2(address)
            }: the kernel uses minimum values`,
          );
        }
        break;
      }
      case DescriptorType.InterfaceAssociation: {
        if (
          !r.lengthOk(
            at,
            "interface association",
            len,
            [USB_DT_INTERFACE_ASSOCIATION_SIZE],
            "8 (USB_DT_INTERFACE_ASSOCIATION_SIZE)",
          )
        ) {
          ownerExtra.push(raw); // config.c leaves it among the extra bytes
          break;
        }
        if (!strict && associations.length >= USB_MAXIADS) {
          r.warn(at, `more than ${USB_MAXIADS} interface associations`);
          ownerExtra.push(raw);
          break;
        }
        const iad = associationAt(r, at, len);
        associations.push(iad);
        ownerExtra = iad.extra;
        break;
      }
      case DescriptorType.SuperSpeedEndpointCompanion: {
        // Only meaningful directly after its endpoint (USB 3.2 §9.6.7), and
        // read by the kernel at SuperSpeed only; anywhere else it stays raw.
        if (
          follows !== undefined && follows.companion === undefined &&
          (r.speed === undefined || superSpeed)
        ) {
          if (
            !r.lengthOk(
              at,
              "SuperSpeed endpoint companion",
              len,
              [USB_DT_SS_EP_COMP_SIZE],
              "6 (USB_DT_SS_EP_COMP_SIZE)",
            )
          ) {
            ownerExtra.push(raw);
            break;
          }
          follows.companion = companionAt(r, at, follows);
          lastEndpoint = follows; // an SSP isoch companion may follow
          break;
        }
        ownerExtra.push(raw);
        break;
      }
      default:
        ownerExtra.push(raw);
    }
  }

  if (strict) {
    if (interfaces.length !== numInterfaces) {
      throw invalid(
        start + 4,
        `bNumInterfaces is ${numInterfaces} but ${interfaces.length} interface(s) follow`,
        LENIENT_HINT,
      );
    }
    for (const intf of interfaces) {
      for (const a of intf.alternates) {
        if (a.endpoints.length !== a.numEndpoints) {
          throw invalid(
            a.offset + 4,
            `interface ${a.interfaceNumber} alternate setting ${a.alternateSetting} declares ${a.numEndpoints} endpoint(s) (bNumEndpoints) but ${a.endpoints.length} follow`,
            LENIENT_HINT,
          );
        }
      }
    }
  } else {
    countWarnings(r, start, numInterfaces, interfaces);
  }

  decodeClassDescriptors(r, extra, interfaces, associations);
  const config: ConfigurationDescriptor = {
    descriptorType: type,
    configurationValue: r.u8(start + 5),
    configurationStringIndex: r.u8(start + 6),
    attributes,
    selfPowered: (attributes & 0x40) !== 0, // USB_CONFIG_ATT_SELFPOWER
    remoteWakeup: (attributes & 0x20) !== 0, // USB_CONFIG_ATT_WAKEUP
    maxPower: r.u8(start + 8),
    totalLength,
    numInterfaces,
    interfaces,
    associations,
    extra,
    skipped,
    warnings,
    offset: start,
    raw: r.slice(start, pos),
  };
  return { config, end: pos };
}

/** The kernel's notices about counts (config.c), as warnings. */
function countWarnings(
  r: Reader,
  start: number,
  numInterfaces: number,
  interfaces: readonly InterfaceDraft[],
): void {
  if (interfaces.length !== numInterfaces) {
    r.warn(
      start + 4,
      `the configuration has ${interfaces.length} interface(s), different from bNumInterfaces ${numInterfaces}`,
    );
  } else if (interfaces.length === 0) {
    r.warn(start + 4, "the configuration has no interfaces");
  }
  const numbers = new Set(interfaces.map((i) => i.interfaceNumber));
  for (let i = 0; i < interfaces.length; i++) {
    if (!numbers.has(i)) r.warn(start, `no interface number ${i}`);
  }
  for (const intf of interfaces) {
    const alts = new Set(intf.alternates.map((a) => a.alternateSetting));
    for (let j = 0; j < intf.alternates.length; j++) {
      if (!alts.has(j)) {
        r.warn(
          start,
          `interface ${intf.interfaceNumber} has no alternate setting ${j}`,
        );
      }
    }
    for (const a of intf.alternates) {
      if (a.endpoints.length !== a.numEndpoints) {
        r.warn(
          a.offset + 4,
          `interface ${a.interfaceNumber} alternate setting ${a.alternateSetting} has ${a.endpoints.length} endpoint(s), different from bNumEndpoints ${a.numEndpoints}`,
        );
      }
    }
  }
}

/** Runs the class decoders over every raw descriptor, giving each its context. */
function decodeClassDescriptors(
  r: Reader,
  extra: readonly RawDescriptor[],
  interfaces: readonly InterfaceDraft[],
  associations: readonly IadDraft[],
): void {
  const lookup = r.decoders ?? defaultDecoders;
  const run = (list: readonly RawDescriptor[], context: ClassContext) => {
    for (const d of list) {
      try {
        (d as { decoded: RawDescriptor["decoded"] }).decoded = lookup.decode(
          d.raw,
          context,
        );
      } catch (e) {
        r.warn(
          d.offset,
          `a class decoder failed on descriptor type 0x${
            hex2(d.descriptorType)
          }: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
  };
  run(extra, {
    interfaceClass: 0,
    interfaceSubclass: 0,
    interfaceProtocol: 0,
    placement: "configuration",
  });
  for (const iad of associations) {
    run(iad.extra, {
      interfaceClass: iad.functionClass,
      interfaceSubclass: iad.functionSubclass,
      interfaceProtocol: iad.functionProtocol,
      placement: "association",
    });
  }
  for (const intf of interfaces) {
    for (const a of intf.alternates) {
      const base = {
        interfaceClass: a.interfaceClass,
        interfaceSubclass: a.interfaceSubclass,
        interfaceProtocol: a.interfaceProtocol,
      };
      run(a.extra, { ...base, placement: "interface" });
      for (const ep of a.endpoints) {
        run(ep.extra, { ...base, placement: "endpoint" });
      }
    }
  }
}

/**
 * Parses one configuration: the configuration descriptor followed by its
 * interface, endpoint and other descriptors, `wTotalLength` bytes in all.
 *
 * Strict mode wants `bytes.length === wTotalLength`. Lenient mode parses up
 * to `wTotalLength` or the end of the bytes, whichever comes first, and
 * follows the kernel: it stops where the kernel would (a `bLength` below 2
 * or past the end), skips what the kernel skips (into `skipped`, with a
 * warning), and with a `speed` shows the kernel's corrections.
 *
 * @param bytes the configuration blob (GET_DESCRIPTOR(CONFIGURATION) data)
 * @param options the parse mode, speed and class decoders
 * @throws {UsbError} `"invalid-descriptor"` naming the offset and the problem
 *
 * @example A SuperSpeed bulk IN endpoint with its companion, and a class-specific extra
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfiguration } from "../descriptors.ts";
 * const c = parseConfiguration(new Uint8Array([
 *   9, 2, 35, 0, 1, 1, 0, 0x80, 1,
 *   9, 4, 0, 0, 1, 0xff, 0, 0, 0,
 *   7, 5, 0x81, 2, 0x00, 0x04, 0,
 *   6, 0x30, 0, 0, 0, 0,
 *   4, 0x25, 1, 0,
 * ]));
 * const ep = c.interfaces[0]!.alternates[0]!.endpoints[0]!;
 * assert.ok(ep.type === "bulk" && ep.packetSize === 1024 && ep.companion !== undefined);
 * assert.ok(ep.extra.length === 1 && ep.extra[0]!.descriptorType === 0x25);
 * ```
 */
export function parseConfiguration(
  bytes: Uint8Array,
  options: ParseOptions = {},
): ConfigurationDescriptor {
  const r = readerFor(bytes, options);
  const { config, end } = configurationAt(r, 0, undefined);
  if (r.strict && end !== bytes.length) {
    throw invalid(
      end,
      `${
        bytes.length - end
      } byte(s) after the configuration (wTotalLength ${config.totalLength})`,
    );
  }
  return config;
}

/**
 * Parses a device descriptor followed by all its configurations, as in the
 * sysfs `descriptors` file (drivers/usb/core/sysfs.c, `read_descriptors`) and
 * a usbfs device node.
 *
 * @param bytes the descriptors
 * @param options the parse mode (use `"lenient"` for sysfs data), the
 *   device's speed, the class decoders
 * @throws {UsbError} `"invalid-descriptor"` naming the offset and the problem
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDescriptors } from "../descriptors.ts";
 * const d = parseDescriptors(new Uint8Array([
 *   18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x25, 0x05, 0xa0, 0xa4, 0x00, 0x01, 0, 0, 0, 1,
 *   9, 2, 18, 0, 1, 1, 0, 0x80, 50,
 *   9, 4, 0, 0, 0, 0xff, 0, 0, 0,
 * ]));
 * assert.ok(d.device.productId === 0xa4a0 && d.configurations[0]!.offset === 18);
 * ```
 */
export function parseDescriptors(
  bytes: Uint8Array,
  options: ParseOptions = {},
): DeviceDescriptors {
  const r = readerFor(bytes, options);
  const device = deviceAt(r, 0);
  // The kernel always writes sizeof(struct usb_device_descriptor) bytes here,
  // whatever bLength says, so the configurations start at 18.
  let pos = USB_DT_DEVICE_SIZE;
  const configurations: ConfigurationDescriptor[] = [];
  const count = device.numConfigurations;
  for (let i = 0; i < count; i++) {
    if (pos >= bytes.length) break; // fewer than declared: strict says so below
    const { config, end } = configurationAt(r, pos, { last: i === count - 1 });
    configurations.push(config);
    pos = end;
  }
  if (r.strict && configurations.length !== count) {
    throw invalid(
      pos,
      `bNumConfigurations is ${count} but ${configurations.length} configuration(s) follow`,
    );
  }
  if (r.strict && pos !== bytes.length) {
    throw invalid(
      pos,
      `${bytes.length - pos} byte(s) after the last configuration`,
    );
  }
  return {
    device,
    configurations,
    warnings: configurations.flatMap((c) => c.warnings),
  };
}

function readerFor(bytes: Uint8Array, options: ParseOptions): Reader {
  return new Reader(
    bytes,
    (options.mode ?? "strict") === "strict",
    options.speed,
    options.decoders,
  );
}
