/** Bounded waiting for tests: every wait ends, with an error that says what was awaited. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reads until `ok` holds; throws (with the last value read) after `timeoutMs`. */
export async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const last = await read();
    if (ok(last)) return last;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${timeoutMs} ms; last: ${JSON.stringify(last)?.slice(0, 500)}`);
    await sleep(everyMs);
  }
}

/** Rejects if `p` takes longer than `ms`: an answer must come, whatever it is. */
export async function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
