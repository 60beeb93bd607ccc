/**
 * Transfer timeouts without a timer per transfer.
 *
 * A `setTimeout` and its `clearTimeout` cost more than the transfer itself
 * on a fast path (under QEMU's TCG the pair measured 66 µs, against a few µs
 * for the ioctl that submits a URB). So the pending deadlines of the whole
 * process live in one binary min-heap, kept in typed arrays, with one timer
 * armed for the earliest. A transfer that finishes removes its entry (so the
 * heap holds only transfers in flight), and the timer is left armed: when it
 * fires with nothing due, it re-arms for the next deadline, or stays off.
 * With the usual uniform timeouts that is one timer per timeout period, not
 * one per transfer.
 *
 * The timer keeps the process alive only while an entry is pending (a
 * transfer to a device written in TypeScript may have nothing else that
 * does): it is unreferenced once the heap is empty and the completion loop
 * goes idle ({@linkcode Deadlines.idle}), not at each removal, because a
 * request/response loop empties the heap between every two transfers and
 * ref/unref cost about 12 µs each under TCG. The next entry references it
 * again, which costs a flag, not a timer.
 *
 * Not part of the public API.
 *
 * @module
 */

/** Something that can time out: a pending transfer. */
export interface DeadlineTarget {
  /** The entry's position in the heap, -1 when it has none. */
  deadlineIndex: number;
  /** Called once, when the deadline passes before {@linkcode Deadlines.remove}. */
  expire(): void;
}

/**
 * A min-heap of deadlines with one timer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Deadlines, type DeadlineTarget } from "./deadlines.ts";
 * const d = new Deadlines();
 * const expired: string[] = [];
 * const t = (name: string): DeadlineTarget => ({
 *   deadlineIndex: -1,
 *   expire: () => expired.push(name),
 * });
 * const a = t("a"), b = t("b");
 * d.add(a, 5);
 * d.add(b, 1);
 * d.remove(a);
 * await new Promise((r) => setTimeout(r, 30));
 * assert.deepEqual(expired, ["b"]);
 * assert.equal(d.size, 0);
 * ```
 */
export class Deadlines {
  #at = new Float64Array(64);
  #targets: (DeadlineTarget | undefined)[] = new Array(64).fill(undefined);
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the armed timer is referenced. */
  #referenced = false;
  /** When the armed timer fires (performance.now() ms); Infinity if none. */
  #armedAt = Infinity;
  readonly #fire = () => {
    this.#timer = undefined;
    this.#referenced = false;
    this.#armedAt = Infinity;
    const now = performance.now();
    // Take every due entry first, then expire them: expire() may add or
    // remove entries.
    while (this.#size > 0 && this.#at[0]! <= now) {
      const t = this.#targets[0]!;
      this.#removeAt(0);
      t.expire();
    }
    this.#arm();
  };

  /** Entries pending. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds `target`, due in `ms` milliseconds (> 0). A target has at most one
   * entry: add it again only after {@linkcode remove} or its expiry.
   */
  add(target: DeadlineTarget, ms: number): void {
    if (this.#size === this.#at.length) this.#grow();
    const i = this.#size++;
    this.#at[i] = performance.now() + ms;
    this.#targets[i] = target;
    target.deadlineIndex = i;
    this.#up(i);
    this.#arm();
    if (!this.#referenced && this.#timer !== undefined) {
      Deno.refTimer(this.#timer);
      this.#referenced = true;
    }
  }

  /**
   * Removes `target`'s entry, if it has one. Leaves the timer as it is,
   * still referenced: the next transfer usually follows at once, and
   * referencing it again would cost more than the removal. Call
   * {@linkcode idle} when nothing is in flight.
   */
  remove(target: DeadlineTarget): void {
    const i = target.deadlineIndex;
    if (i < 0 || this.#targets[i] !== target) return;
    this.#removeAt(i);
  }

  #removeAt(i: number): void {
    const t = this.#targets[i]!;
    t.deadlineIndex = -1;
    const last = --this.#size;
    if (i !== last) {
      this.#move(last, i);
      this.#targets[last] = undefined;
      this.#up(i);
      this.#down(this.#targets[i]!.deadlineIndex);
    } else {
      this.#targets[last] = undefined;
    }
  }

  /**
   * Nothing is in flight (the completion loop went idle): with no entry
   * pending, the armed timer stops keeping the process alive.
   */
  idle(): void {
    if (this.#size === 0 && this.#referenced && this.#timer !== undefined) {
      Deno.unrefTimer(this.#timer);
      this.#referenced = false;
    }
  }

  /** Arms the timer for the earliest entry, unless it fires sooner. */
  #arm(): void {
    if (this.#size === 0) return;
    const at = this.#at[0]!;
    if (at >= this.#armedAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(
      this.#fire,
      Math.max(0, Math.ceil(at - performance.now())),
    );
    this.#referenced = true;
  }

  #move(from: number, to: number): void {
    this.#at[to] = this.#at[from]!;
    const t = this.#targets[from]!;
    this.#targets[to] = t;
    t.deadlineIndex = to;
  }

  #swap(a: number, b: number): void {
    const at = this.#at[a]!, t = this.#targets[a]!;
    this.#move(b, a);
    this.#at[b] = at;
    this.#targets[b] = t;
    t.deadlineIndex = b;
  }

  #up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.#at[p]! <= this.#at[i]!) return;
      this.#swap(i, p);
      i = p;
    }
  }

  #down(i: number): void {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < this.#size && this.#at[l]! < this.#at[m]!) m = l;
      if (r < this.#size && this.#at[r]! < this.#at[m]!) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #grow(): void {
    const at = new Float64Array(this.#at.length * 2);
    at.set(this.#at);
    this.#at = at;
    this.#targets.length = at.length;
    this.#targets.fill(undefined, this.#size);
  }
}

/**
 * The process's deadlines: every transfer timeout of every device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deadlines } from "./deadlines.ts";
 * assert.equal(deadlines.size, 0);
 * ```
 */
export const deadlines: Deadlines = new Deadlines();
