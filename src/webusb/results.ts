/**
 * WebUSB's transfer results. Their `DataView`s are over `ArrayBuffer`s
 * that hold exactly the data received (no spare bytes after it), except an
 * isochronous IN result's `data`, which the spec makes the whole buffer
 * (every packet's slot, at the offsets `packetLengths` give), with each
 * packet's `data` a view of the bytes that packet received.
 *
 * @module
 */

import type { TransferStatus } from "../urb.ts";

/**
 * `DataView` over a fresh `ArrayBuffer` of exactly these bytes: `bytes`
 * itself when it already spans its whole buffer, else a copy.
 *
 * @param bytes the data received
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exactView } from "./results.ts";
 * const v = exactView(new Uint8Array([1, 2, 3, 4]).subarray(1, 3));
 * assert.equal(v.buffer.byteLength, 2);
 * assert.equal(v.getUint8(0), 2);
 * ```
 */
export function exactView(bytes: Uint8Array): DataView<ArrayBuffer> {
  if (
    bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength && !bytes.buffer.resizable
  ) {
    return new DataView(bytes.buffer);
  }
  return new DataView(bytes.slice().buffer);
}

/**
 * The result of `controlTransferIn` and `transferIn`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USBInTransferResult } from "./results.ts";
 * const r = new USBInTransferResult("ok", new DataView(new ArrayBuffer(4)));
 * assert.equal(r.data?.byteLength, 4);
 * ```
 */
export class USBInTransferResult {
  /** The bytes received; undefined when none came (as the spec says). */
  readonly data: DataView | undefined;
  /** `"ok"`, `"stall"` or `"babble"`. */
  readonly status: TransferStatus;

  /**
   * The spec's constructor.
   *
   * @param status the transfer's status
   * @param data the bytes received
   */
  constructor(status: TransferStatus, data?: DataView | null) {
    this.status = status;
    this.data = data ?? undefined;
  }
}

/**
 * The result of `controlTransferOut` and `transferOut`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USBOutTransferResult } from "./results.ts";
 * assert.equal(new USBOutTransferResult("stall").bytesWritten, 0);
 * ```
 */
export class USBOutTransferResult {
  /** Bytes the device accepted. */
  readonly bytesWritten: number;
  /** `"ok"` or `"stall"`. */
  readonly status: TransferStatus;

  /**
   * The spec's constructor.
   *
   * @param status the transfer's status
   * @param bytesWritten bytes the device accepted (default 0)
   */
  constructor(status: TransferStatus, bytesWritten = 0) {
    this.status = status;
    this.bytesWritten = bytesWritten;
  }
}

/**
 * One packet of an isochronous IN result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USBIsochronousInTransferPacket } from "./results.ts";
 * assert.equal(new USBIsochronousInTransferPacket("ok").data, undefined);
 * ```
 */
export class USBIsochronousInTransferPacket {
  /** The bytes this packet received. */
  readonly data: DataView | undefined;
  /** The packet's status. */
  readonly status: TransferStatus;

  /**
   * The spec's constructor.
   *
   * @param status the packet's status
   * @param data the bytes it received
   */
  constructor(status: TransferStatus, data?: DataView | null) {
    this.status = status;
    this.data = data ?? undefined;
  }
}

/**
 * The result of `isochronousTransferIn`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USBIsochronousInTransferPacket, USBIsochronousInTransferResult } from "./results.ts";
 * const r = new USBIsochronousInTransferResult([new USBIsochronousInTransferPacket("ok")]);
 * assert.equal(r.packets.length, 1);
 * assert.ok(Object.isFrozen(r.packets));
 * ```
 */
export class USBIsochronousInTransferResult {
  /** The whole buffer: each packet's slot at its offset. */
  readonly data: DataView | undefined;
  /** Per packet, in order (frozen, as the spec's FrozenArray). */
  readonly packets: USBIsochronousInTransferPacket[];

  /**
   * The spec's constructor.
   *
   * @param packets the packets
   * @param data the whole buffer
   */
  constructor(
    packets: USBIsochronousInTransferPacket[],
    data?: DataView | null,
  ) {
    this.packets = Object.freeze([
      ...packets,
    ]) as USBIsochronousInTransferPacket[];
    this.data = data ?? undefined;
  }
}

/**
 * One packet of an isochronous OUT result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USBIsochronousOutTransferPacket } from "./results.ts";
 * assert.equal(new USBIsochronousOutTransferPacket("ok", 192).bytesWritten, 192);
 * ```
 */
export class USBIsochronousOutTransferPacket {
  /** Bytes sent in this packet. */
  readonly bytesWritten: number;
  /** The packet's status. */
  readonly status: TransferStatus;

  /**
   * The spec's constructor.
   *
   * @param status the packet's status
   * @param bytesWritten bytes sent (default 0)
   */
  constructor(status: TransferStatus, bytesWritten = 0) {
    this.status = status;
    this.bytesWritten = bytesWritten;
  }
}

/**
 * The result of `isochronousTransferOut`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USBIsochronousOutTransferPacket, USBIsochronousOutTransferResult } from "./results.ts";
 * const r = new USBIsochronousOutTransferResult([new USBIsochronousOutTransferPacket("ok", 8)]);
 * assert.equal(r.packets[0]?.bytesWritten, 8);
 * ```
 */
export class USBIsochronousOutTransferResult {
  /** Per packet, in order (frozen). */
  readonly packets: USBIsochronousOutTransferPacket[];

  /**
   * The spec's constructor.
   *
   * @param packets the packets
   */
  constructor(packets: USBIsochronousOutTransferPacket[]) {
    this.packets = Object.freeze([
      ...packets,
    ]) as USBIsochronousOutTransferPacket[];
  }
}
