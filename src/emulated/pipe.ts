/**
 * A pipe: the URB queue of one endpoint. URBs on one endpoint complete in
 * the order they were submitted, as on a real host controller, so the pipe
 * runs one handler call at a time. It also holds the endpoint's halt state.
 *
 * A URB whose signal is aborted (the kernel unlinked it) completes at once
 * with -ECONNRESET, whether it is waiting in the queue or its handler is
 * running; the next URB then starts without waiting for that handler.
 * {@linkcode Pipe.abortAll} (reset, reconfiguration, close) completes every
 * queued and running URB with -ESHUTDOWN.
 *
 * @module
 */

import { type EmulatedUrbResult, UrbStatus } from "./urb.ts";

/**
 * The URB queue and halt state of one endpoint.
 *
 * @example Two URBs run in order; unlinking the first lets the second run
 * ```ts
 * import assert from "node:assert/strict";
 * import { Pipe } from "./pipe.ts";
 * const pipe = new Pipe();
 * const order: number[] = [];
 * const unlink = new AbortController();
 * const first = pipe.submit(unlink.signal, () => new Promise(() => {})); // never finishes
 * const second = pipe.submit(new AbortController().signal, () => {
 *   order.push(2);
 *   return Promise.resolve({ status: 0, actualLength: 0 });
 * });
 * unlink.abort();
 * assert.equal((await first).status, -104);
 * assert.equal((await second).status, 0);
 * assert.deepEqual(order, [2]);
 * ```
 */
export class Pipe {
  #tail: Promise<void> = Promise.resolve();
  #epoch = new AbortController();
  /** The endpoint is halted: URBs stall until CLEAR_FEATURE(ENDPOINT_HALT). */
  halted = false;

  /**
   * Queues a URB. `job` runs after every URB queued before it has
   * completed, with a signal aborted on unlink or {@linkcode abortAll}.
   *
   * @param unlink the URB's own signal
   * @param job what to do with the URB; should not reject (a rejection
   *   becomes -EPROTO)
   * @returns the URB's result; never rejects
   */
  submit(
    unlink: AbortSignal,
    job: (signal: AbortSignal) => Promise<EmulatedUrbResult>,
  ): Promise<EmulatedUrbResult> {
    if (unlink.aborted) {
      return Promise.resolve({ status: UrbStatus.unlinked, actualLength: 0 });
    }
    const epoch = this.#epoch.signal;
    const { promise, resolve } = Promise.withResolvers<EmulatedUrbResult>();
    let settled = false;
    const finish = (result: EmulatedUrbResult) => {
      if (settled) return;
      settled = true;
      unlink.removeEventListener("abort", onUnlink);
      epoch.removeEventListener("abort", onShutdown);
      resolve(result);
    };
    const onUnlink = () =>
      finish({ status: UrbStatus.unlinked, actualLength: 0 });
    const onShutdown = () =>
      finish({ status: UrbStatus.shutdown, actualLength: 0 });
    unlink.addEventListener("abort", onUnlink, { once: true });
    epoch.addEventListener("abort", onShutdown, { once: true });
    const signal = AbortSignal.any([unlink, epoch]);
    const done = promise.then(() => undefined);

    const run = async () => {
      if (settled) return;
      try {
        const result = await Promise.race([job(signal), done]);
        if (result !== undefined) finish(result);
      } catch {
        finish({ status: UrbStatus.protocolError, actualLength: 0 });
      }
    };
    this.#tail = this.#tail.then(run);
    return promise;
  }

  /**
   * Completes every queued and running URB with -ESHUTDOWN and aborts their
   * handlers' signals. Later URBs queue as usual.
   */
  abortAll(): void {
    this.#epoch.abort();
    this.#epoch = new AbortController();
  }
}
