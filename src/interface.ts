/**
 * A claimed interface: owns its endpoints, selects alternate settings, and
 * gives the interface back (and its kernel driver, if usbkit detached one)
 * on release.
 *
 * @module
 */

import type { AlternateSetting, InterfaceDescriptor } from "./descriptors.ts";
import { Endpoint } from "./endpoint.ts";
import { UsbError } from "./errors.ts";
import type { UrbEngine } from "./engine.ts";
import type { BufferPool } from "./buffer.ts";
import { checkInteger, hex } from "./validate.ts";

/**
 * An interface claimed with `Device.claimInterface(n)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 * await using dev = await open("0525:a4a0"); // SourceSink (usbtest is bound to it)
 * const iface = await dev.claimInterface(0, { detachKernelDriver: true });
 * const addresses = iface.alternate.endpoints.map((e) => e.address);
 * assert.deepEqual(addresses.sort((a, b) => a - b), [0x02, 0x81]);
 * await iface.release();
 * ```
 */
export class Interface {
  /** bInterfaceNumber. */
  readonly interfaceNumber: number;
  /** The interface's descriptors: every alternate setting. */
  readonly descriptor: InterfaceDescriptor;
  /** The kernel driver usbkit detached to claim it, re-attached on release. */
  readonly detachedDriver: string | undefined;
  #alternate: AlternateSetting;
  #claimed = true;
  #endpoints = new Map<number, Endpoint>();
  readonly #engine: UrbEngine;
  readonly #pool: BufferPool;
  readonly #onRelease: (iface: Interface) => void;

  /** Made by Device.claimInterface; not for direct use. */
  constructor(
    engine: UrbEngine,
    pool: BufferPool,
    descriptor: InterfaceDescriptor,
    detachedDriver: string | undefined,
    onRelease: (iface: Interface) => void,
  ) {
    this.#engine = engine;
    this.#pool = pool;
    this.descriptor = descriptor;
    this.interfaceNumber = descriptor.interfaceNumber;
    this.detachedDriver = detachedDriver;
    this.#onRelease = onRelease;
    this.#alternate = descriptor.alternates[0]!;
    this.#makeEndpoints();
  }

  /** False once released. */
  get claimed(): boolean {
    return this.#claimed;
  }

  /** The current alternate setting. */
  get alternate(): AlternateSetting {
    return this.#alternate;
  }

  #makeEndpoints(): void {
    this.#endpoints = new Map(
      this.#alternate.endpoints.map((
        d,
      ) => [d.address, new Endpoint(this.#engine, this.#pool, this, d)]),
    );
  }

  /**
   * The endpoint with this address (0x81 is IN 1, 0x02 is OUT 2) in the
   * current alternate setting. `address` is an integer from 0 to 255;
   * anything else throws `invalid-argument`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "../mod.ts";
   * // The bench's SourceSink gadget: bulk IN 0x81 sends 0, 1, 2, ... (usbtest
   * // is bound to it, hence the detach).
   * await using dev = await open("0525:a4a0");
   * const iface = await dev.claimInterface(0, { detachKernelDriver: true });
   * const bulkIn = iface.endpoint(0x81);
   * assert.equal(bulkIn.direction, "in");
   * ```
   */
  endpoint(address: number): Endpoint {
    checkInteger(
      "endpoint: address",
      address,
      0,
      0xff,
      "endpoint addresses include the direction bit: 0x81 is IN 1, 0x01 is OUT 1",
    );
    if (!this.#claimed) {
      throw new UsbError(
        "invalid-argument",
        `interface ${this.interfaceNumber} was released`,
        {
          hint: `claim it again with claimInterface(${this.interfaceNumber})`,
        },
      );
    }
    const ep = this.#endpoints.get(address);
    if (!ep) {
      const have = [...this.#endpoints.keys()].map((a) => hex(a)).join(", ") ||
        "none";
      throw new UsbError(
        "invalid-argument",
        `interface ${this.interfaceNumber} (alternate ${this.#alternate.alternateSetting}) has no endpoint ` +
          `${hex(address)}; its endpoints are: ${have}`,
        {
          hint: (address & 0x80) === 0 && this.#endpoints.has(address | 0x80)
            ? `IN endpoints have bit 7 set: did you mean ${
              hex(address | 0x80)
            }?`
            : "endpoint addresses include the direction bit: 0x81 is IN 1, 0x01 is OUT 1",
        },
      );
    }
    return ep;
  }

  /** The endpoint with this address in the current alternate setting, or undefined. Not for direct use. */
  findEndpoint(address: number): Endpoint | undefined {
    return this.#endpoints.get(address);
  }

  /** Every endpoint of the current alternate setting. */
  get endpoints(): Endpoint[] {
    return [...this.#endpoints.values()];
  }

  /**
   * Selects alternate setting `alternateSetting` (SET_INTERFACE), an integer
   * from 0 to 255 that the interface has (WebUSB's
   * `selectAlternateInterface`). Endpoint objects from the previous setting no
   * longer apply.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * // The bench's Loopback gadget: what bulk OUT 0x02 gets comes back on IN 0x81.
   * await using dev = await open("0525:a4ab");
   * const iface = await dev.claimInterface(0);
   * // The bench gadgets have one alternate setting; an iso device has more.
   * await iface.selectAlternateInterface(0);
   * ```
   */
  async selectAlternateInterface(alternateSetting: number): Promise<void> {
    const n = alternateSetting;
    checkInteger("selectAlternateInterface: alternate setting", n, 0, 0xff);
    if (!this.#claimed) {
      throw new UsbError(
        "invalid-argument",
        `selectAlternateInterface: interface ${this.interfaceNumber} was released`,
        {
          hint: `claim it again with claimInterface(${this.interfaceNumber})`,
        },
      );
    }
    const alt = this.descriptor.alternates.find((a) =>
      a.alternateSetting === n
    );
    if (!alt) {
      throw new UsbError(
        "invalid-argument",
        `interface ${this.interfaceNumber} has no alternate setting ${n}; it has: ` +
          this.descriptor.alternates.map((a) => a.alternateSetting).join(", "),
      );
    }
    if (this.#engine.gone) {
      throw this.#engine.disconnectedError("selectAlternateInterface");
    }
    await this.#engine.usbfs.setInterface(
      this.interfaceNumber,
      n,
      `selecting alternate setting ${n} of interface ${this.interfaceNumber}`,
    );
    this.#alternate = alt;
    this.#makeEndpoints();
  }

  /**
   * Selects alternate setting `n`.
   *
   * @deprecated Use {@linkcode Interface.selectAlternateInterface} (WebUSB's
   * name); this alias goes in the next release.
   */
  selectAlternate(n: number): Promise<void> {
    return this.selectAlternateInterface(n);
  }

  /**
   * Releases the interface. A kernel driver usbkit detached to claim it is
   * bound again.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * // The bench's Loopback gadget: what bulk OUT 0x02 gets comes back on IN 0x81.
   * await using dev = await open("0525:a4ab");
   * const iface = await dev.claimInterface(0);
   * await iface.release();
   * ```
   */
  async release(): Promise<void> {
    if (!(await this.releaseClaim())) return;
    await this.bindDetachedDriver();
    this.finishRelease();
  }

  /**
   * The first half of `release()`: cancels the interface's transfers and
   * gives up the claim, without binding the detached driver again. Returns
   * false when it was not claimed. For `Device.close()`, which releases every
   * interface before binding any driver: a driver such as cdc_acm claims two
   * interfaces when it binds, and fails while usbkit still holds the second.
   * Not for direct use.
   */
  async releaseClaim(): Promise<boolean> {
    if (!this.#claimed) return false;
    this.#claimed = false;
    await this.#engine.cancelAll("released", this.interfaceNumber);
    if (!this.#engine.gone) {
      this.#engine.usbfs.release(this.interfaceNumber);
    }
    return true;
  }

  /** Binds the kernel driver usbkit detached again (USBDEVFS_CONNECT). Not for direct use. */
  async bindDetachedDriver(): Promise<void> {
    if (this.detachedDriver === undefined || this.#engine.gone) return;
    await this.#engine.usbfs.connectDriver(this.interfaceNumber);
  }

  /** The last step of a release: the device forgets the claim. Not for direct use. */
  finishRelease(): void {
    this.#onRelease(this);
  }
}
