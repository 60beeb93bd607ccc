/**
 * What each speed allows: packet sizes, intervals, defaults.
 *
 * The numbers are the USB 2.0 and 3.2 specifications' as the Linux kernel
 * enforces them when it enumerates a device (drivers/usb/core/config.c,
 * `usb_parse_endpoint` and its `*_maxpacket_maxes` tables; hub.c for
 * endpoint 0). Where the kernel only warns (a high-speed bulk endpoint
 * whose packet size is not 512), the specification's rule is kept, because
 * host controllers may not cope.
 *
 * @module
 */

import type { EmulatedSpeed } from "./definition.ts";

/** The transfer types a definition may use for endpoints other than 0. */
type EpType = "bulk" | "interrupt" | "isochronous";

/**
 * The packet sizes endpoint 0 may have (`bMaxPacketSize0`, USB 2.0 §5.5.3;
 * USB 3.2 §9.6.1: 512, encoded as the exponent 9).
 *
 * @param speed the device speed
 * @returns the allowed sizes in bytes
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ep0PacketSizes } from "./rules.ts";
 * assert.deepEqual(ep0PacketSizes("full"), [8, 16, 32, 64]);
 * assert.deepEqual(ep0PacketSizes("super"), [512]);
 * ```
 */
export function ep0PacketSizes(speed: EmulatedSpeed): number[] {
  switch (speed) {
    case "low":
      return [8];
    case "full":
      return [8, 16, 32, 64];
    case "high":
      return [64];
    case "super":
      return [512];
  }
}

/**
 * A packet size rule: `check` says whether a size is allowed, `allowed`
 * says what is, for an error message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packetSizeRule } from "./rules.ts";
 * const rule = packetSizeRule("high", "bulk")!;
 * assert.equal(rule.allowed, "512");
 * assert.equal(rule.source, "USB 2.0 §5.8.3");
 * ```
 */
export interface PacketSizeRule {
  /** Whether `size` (bits 10:0 of `wMaxPacketSize`) is allowed. */
  check(size: number): boolean;
  /** What is allowed, as a noun phrase. */
  allowed: string;
  /** Where the rule comes from. */
  source: string;
}

/**
 * The packet sizes an endpoint may declare.
 *
 * - low speed: interrupt 1..8; no bulk or isochronous endpoints (USB 2.0
 *   §5.7.3, §5.8.3; the kernel turns low-speed bulk into interrupt);
 * - full speed: bulk 8, 16, 32 or 64 (§5.8.3); interrupt 1..64 (§5.7.3);
 *   isochronous 0..1023 (§5.6.3);
 * - high speed: bulk 512 (§5.8.3); interrupt 1..1024 and isochronous
 *   0..1024, with 513..1024 for 2 transactions per microframe and 683..1024
 *   for 3 (§5.9.2 and table 9-14);
 * - SuperSpeed: bulk 1024; interrupt 1..1024 and isochronous 0..1024, 1024
 *   when bursting (USB 3.2 §9.6.6).
 *
 * A size of 0 is only for isochronous endpoints (config.c warns otherwise).
 *
 * @param speed the device speed
 * @param type the transfer type
 * @param transactions high-speed periodic endpoints: transactions per microframe
 * @param maxBurst SuperSpeed: the companion's `bMaxBurst`
 * @returns the rule, or undefined when the type is not allowed at this speed
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packetSizeRule } from "./rules.ts";
 * assert.ok(packetSizeRule("full", "bulk")!.check(64));
 * assert.ok(!packetSizeRule("full", "bulk")!.check(512));
 * assert.ok(!packetSizeRule("high", "interrupt", 3)!.check(512));
 * assert.equal(packetSizeRule("low", "bulk"), undefined);
 * ```
 */
export function packetSizeRule(
  speed: EmulatedSpeed,
  type: EpType,
  transactions = 1,
  maxBurst = 0,
): PacketSizeRule | undefined {
  const range = (min: number, max: number, source: string) => ({
    check: (n: number) => n >= min && n <= max,
    allowed: `from ${min} to ${max}`,
    source,
  });
  const oneOf = (values: number[], source: string) => ({
    check: (n: number) => values.includes(n),
    allowed: values.length === 1
      ? `${values[0]}`
      : `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`,
    source,
  });
  const iso = type === "isochronous";
  switch (speed) {
    case "low":
      return type === "interrupt" ? range(1, 8, "USB 2.0 §5.7.3") : undefined;
    case "full":
      if (type === "bulk") return oneOf([8, 16, 32, 64], "USB 2.0 §5.8.3");
      return iso
        ? range(0, 1023, "USB 2.0 §5.6.3")
        : range(1, 64, "USB 2.0 §5.7.3");
    case "high": {
      if (type === "bulk") return oneOf([512], "USB 2.0 §5.8.3");
      const min = transactions === 3 ? 683 : transactions === 2 ? 513 : 0;
      if (min > 0) {
        return range(
          min,
          1024,
          `USB 2.0 §5.9.2, ${transactions} transactions per microframe`,
        );
      }
      return range(iso ? 0 : 1, 1024, "USB 2.0 §5.6.3, §5.7.3");
    }
    case "super":
      if (type === "bulk") return oneOf([1024], "USB 3.2 §9.6.6");
      if (maxBurst > 0) {
        return oneOf([1024], "USB 3.2 §9.6.6, with bMaxBurst > 0");
      }
      return range(iso ? 0 : 1, 1024, "USB 3.2 §9.6.6");
  }
}

/**
 * The `bInterval` values an endpoint may declare, as the kernel accepts
 * them (config.c, `usb_parse_endpoint`): interrupt 1..255 (milliseconds) at
 * low and full speed and 1..16 (an exponent) above; isochronous 1..16 at
 * every speed; bulk 0..255 (only the high-speed OUT NAK rate means
 * anything).
 *
 * @param speed the device speed
 * @param type the transfer type
 * @returns the smallest and largest value
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { intervalRange } from "./rules.ts";
 * assert.deepEqual(intervalRange("full", "interrupt"), [1, 255]);
 * assert.deepEqual(intervalRange("high", "interrupt"), [1, 16]);
 * assert.deepEqual(intervalRange("full", "isochronous"), [1, 16]);
 * ```
 */
export function intervalRange(
  speed: EmulatedSpeed,
  type: EpType,
): [number, number] {
  if (type === "bulk") return [0, 255];
  if (type === "isochronous") return [1, 16];
  return speed === "low" || speed === "full" ? [1, 255] : [1, 16];
}

/**
 * The defaults for an endpoint's packet size and interval: the largest
 * packet the speed allows (8 or 64 for interrupt), and 1 ms (10 ms at low
 * speed).
 *
 * @param speed the device speed
 * @param type the transfer type
 * @returns `maxPacketSize` and `interval`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { endpointDefaults } from "./rules.ts";
 * assert.deepEqual(endpointDefaults("high", "bulk"), { maxPacketSize: 512, interval: 0 });
 * assert.deepEqual(endpointDefaults("high", "interrupt"), { maxPacketSize: 64, interval: 4 });
 * assert.deepEqual(endpointDefaults("full", "isochronous"), { maxPacketSize: 1023, interval: 1 });
 * ```
 */
export function endpointDefaults(
  speed: EmulatedSpeed,
  type: EpType,
): { maxPacketSize: number; interval: number } {
  const fast = speed === "high" || speed === "super";
  switch (type) {
    case "bulk":
      return {
        maxPacketSize: speed === "super" ? 1024 : fast ? 512 : 64,
        interval: 0,
      };
    case "interrupt":
      return {
        maxPacketSize: speed === "low" ? 8 : 64,
        interval: speed === "low" ? 10 : fast ? 4 : 1,
      };
    case "isochronous":
      return { maxPacketSize: fast ? 1024 : 1023, interval: fast ? 4 : 1 };
  }
}

/**
 * An endpoint's service interval in microseconds, decoded from `bInterval`
 * for a speed (drivers/usb/common/common.c, `usb_decode_interval`): 0 for
 * bulk.
 *
 * @param speed the device speed
 * @param type the transfer type
 * @param interval `bInterval`
 * @returns microseconds
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serviceInterval } from "./rules.ts";
 * assert.equal(serviceInterval("full", "interrupt", 10), 10_000);
 * assert.equal(serviceInterval("high", "interrupt", 4), 1_000);
 * assert.equal(serviceInterval("full", "isochronous", 1), 1_000);
 * assert.equal(serviceInterval("high", "bulk", 0), 0);
 * ```
 */
export function serviceInterval(
  speed: EmulatedSpeed,
  type: EpType,
  interval: number,
): number {
  if (type === "bulk") return 0;
  const fast = speed === "high" || speed === "super";
  const unit = fast ? 125 : 1000;
  if (type === "interrupt" && !fast) return interval * unit;
  return 2 ** (Math.min(Math.max(interval, 1), 16) - 1) * unit;
}

/**
 * The largest `bMaxPower` a configuration may declare, in mA: 500 below
 * SuperSpeed (USB 2.0 §7.2.1), 900 at SuperSpeed (USB 3.2 §11.4.1).
 *
 * @param speed the device speed
 * @returns milliamps
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maxPowerLimit } from "./rules.ts";
 * assert.equal(maxPowerLimit("high"), 500);
 * assert.equal(maxPowerLimit("super"), 900);
 * ```
 */
export function maxPowerLimit(speed: EmulatedSpeed): number {
  return speed === "super" ? 900 : 500;
}
