/** Runs async sections one at a time, in arrival order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` once every section queued before it has finished; returns its result or throws its error. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** Runs async tasks one after another per key (tasks of different keys run side by side). */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  /** Queues `fn` behind the earlier tasks of `key`. Errors are the task's own business. */
  push(key: string, fn: () => Promise<void>): void {
    const next = (this.tails.get(key) ?? Promise.resolve()).then(fn).catch(() => undefined);
    this.tails.set(key, next);
    void next.then(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
  }
}
