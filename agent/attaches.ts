/** Who is attached to which session right now: one record per live attach. */
import { randomUUID } from 'node:crypto';
import { AttachHandle } from './docker/runtime';

interface AttachRecord {
  operator: string;
  readOnly: boolean;
  handle: AttachHandle;
}

export class LiveAttaches {
  private readonly bySession = new Map<string, Map<string, AttachRecord>>();

  /** Records a live attach; returns its id. */
  add(sessionId: string, operator: string, readOnly: boolean, handle: AttachHandle): string {
    const id = randomUUID();
    let m = this.bySession.get(sessionId);
    if (!m) {
      m = new Map();
      this.bySession.set(sessionId, m);
    }
    m.set(id, { operator, readOnly, handle });
    return id;
  }

  /** Forgets one attach; true if it was still recorded. Idempotent. */
  remove(sessionId: string, attachId: string): boolean {
    const m = this.bySession.get(sessionId);
    if (!m?.delete(attachId)) return false;
    if (m.size === 0) this.bySession.delete(sessionId);
    return true;
  }

  /** Operator names of a session's live attaches, one per attach. */
  operators(sessionId: string): string[] {
    return [...(this.bySession.get(sessionId)?.values() ?? [])].map((a) => a.operator);
  }

  /** Ends a session's attaches (only `operator`'s when given) and forgets them; returns how many. */
  async close(sessionId: string, operator: string | null): Promise<number> {
    const m = this.bySession.get(sessionId);
    if (!m) return 0;
    const chosen = [...m.entries()].filter(([, a]) => operator === null || a.operator === operator);
    for (const [k] of chosen) m.delete(k);
    if (m.size === 0) this.bySession.delete(sessionId);
    await Promise.all(chosen.map(([, a]) => a.handle.close()));
    return chosen.length;
  }

  /** Ends every attach of every session. */
  async closeAll(): Promise<void> {
    const all = [...this.bySession.values()].flatMap((m) => [...m.values()]);
    this.bySession.clear();
    await Promise.all(all.map((a) => a.handle.close()));
  }
}
