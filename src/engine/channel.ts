/**
 * A one-consumer async queue: the engine pushes, the request's `for await` pulls. Chunks pushed
 * before anyone reads are kept; `fail` makes the next read throw (after the queued items);
 * `return()` (a `break` out of the loop) calls `onReturn`, which the engine uses to cancel.
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  private closed = false;
  private error: { e: unknown } | null = null;
  onReturn: (() => void) | null = null;

  push(item: T): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: item, done: false });
    } else this.items.push(item);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.waiter && this.items.length === 0) {
      const w = this.waiter;
      this.waiter = null;
      if (this.error) w.reject(this.error.e);
      else w.resolve({ value: undefined, done: true });
    }
  }

  fail(e: unknown): void {
    if (this.closed) return;
    this.error = { e };
    this.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.closed) {
      if (this.error) {
        const { e } = this.error;
        this.error = null; // thrown once; later reads just end
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.closed) this.onReturn?.();
    this.items.length = 0;
    this.error = null;
    this.closed = true;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Lets timers, abort events and message handlers run between engine steps (a fake model never awaits). */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (fn: () => void) => void };
  if (typeof g.setImmediate === 'function') return new Promise((r) => g.setImmediate!(r));
  if (typeof MessageChannel !== 'undefined') {
    return new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        ch.port1.close();
        r();
      };
      ch.port2.postMessage(0);
    });
  }
  return new Promise((r) => setTimeout(r, 0));
}
