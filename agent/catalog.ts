/**
 * The agent's in-memory catalog of its sessions' metadata (session.json on disk stays the truth;
 * this is what the last read found), and the one place that hands out ports and DNS names:
 * decisions that must not interleave (two creates wanting the same port) run under `reserve`.
 */
import { BerthError } from '../common/errors';
import { Mutex } from '../common/mutex';
import { SessionMeta } from '../common/protocol';
import { PortTable, portKey } from './ports/ports';
import { StoredSession } from './store/session-store';

export class SessionCatalog {
  private readonly byId = new Map<string, StoredSession>();
  private readonly reservations = new Mutex();
  /** Sessions on their way in (see session-move.ts): not listed, but their port and name are taken. */
  private readonly held = new Map<string, SessionMeta>();

  get(id: string): StoredSession | undefined {
    return this.byId.get(id);
  }

  set(id: string, s: StoredSession): void {
    this.byId.set(id, s);
  }

  /** Forgets a session; true if it was known. */
  delete(id: string): boolean {
    return this.byId.delete(id);
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  get size(): number {
    return this.byId.size;
  }

  /** The metadata of every readable session. */
  metas(): SessionMeta[] {
    return [...this.byId.values()].flatMap((s) => (s.kind === 'ok' ? [s.meta] : []));
  }

  /** Takes `meta`'s port and DNS name for a session not listed yet (a move coming in). Idempotent. */
  hold(meta: SessionMeta): void {
    this.held.set(meta.id, meta);
  }

  /** Gives back what `hold` took. Idempotent. */
  unhold(id: string): void {
    this.held.delete(id);
  }

  /** Runs `fn` alone among reservations: what it checks of ports and names stays true until it ends. */
  reserve<T>(fn: () => Promise<T>): Promise<T> {
    return this.reservations.run(fn);
  }

  /** The ports reserved by the sessions, leaving out `except` (the one being edited). */
  portTable(except: string | null): PortTable {
    const t: PortTable = new Map();
    for (const m of [...this.metas(), ...this.held.values()]) if (m.port > 0 && m.id !== except) t.set(portKey(m.port, m.protocol), m.name);
    return t;
  }

  /** Throws NAME_TAKEN when another session already uses the DNS name. */
  assertDnsFree(dns: string, except: string | null): void {
    if (dns === '') return;
    for (const m of [...this.metas(), ...this.held.values()]) {
      if (m.dns === dns && m.id !== except) throw new BerthError('NAME_TAKEN', `dns: "${dns}" is used by session ${m.name}`);
    }
  }
}
