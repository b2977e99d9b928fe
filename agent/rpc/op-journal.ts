/**
 * Operations by op id, so that a retry is recognised: a shell that timed out waiting (or lost its
 * link) and asks again with the same op id gets the first attempt's outcome, and the op is done
 * once. Kept for an hour, at most 10,000 entries (the oldest go first); in memory only, so an
 * agent restart forgets them (what was done then shows in the sessions themselves).
 */
import { createHash } from 'node:crypto';
import { BerthError } from '../../common/errors';

const KEEP_MS = 60 * 60 * 1000;
const MAX_ENTRIES = 10_000;

interface Entry {
  /** Which request this id was first used for: op and params. */
  request: string;
  outcome: Promise<unknown>;
  at: number;
}

export class OpJournal {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Runs `run` for a new op id, or gives the outcome of the earlier run with that id (its result,
   * or its error again). Throws BAD_REQUEST when the id was used for another request.
   */
  once<T>(operator: string, opId: string, op: string, params: unknown, run: () => Promise<T>): Promise<T> {
    this.prune();
    const key = `${operator}\u0000${opId}`;
    const request = createHash('sha256').update(JSON.stringify([op, params ?? {}])).digest('hex');
    const earlier = this.entries.get(key);
    if (earlier) {
      if (earlier.request !== request) {
        return Promise.reject(new BerthError('BAD_REQUEST', `op id ${opId} was already used for another request`));
      }
      return earlier.outcome as Promise<T>;
    }
    const outcome = run();
    // Kept whatever it ends with; a rejection is handled by whoever awaits it.
    outcome.catch(() => undefined);
    this.entries.set(key, { request, outcome, at: this.now() });
    return outcome;
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(): void {
    const old = this.now() - KEEP_MS;
    for (const [key, e] of this.entries) {
      if (e.at >= old && this.entries.size < MAX_ENTRIES) break;
      this.entries.delete(key);
    }
  }
}
