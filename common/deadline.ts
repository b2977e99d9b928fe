/** Bounded waits: an answer, or a clear error after a fixed time (the work itself is not cancelled). */
import { BerthError } from './errors';

/** Resolves as `p` does, or rejects with TIMEOUT (`what` … `ms`) if it has not settled by then. */
export async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new BerthError('TIMEOUT', `${what}: no answer in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
