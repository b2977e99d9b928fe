/** Pure checks across one agent's sessions: who holds which port and which DNS name. */
import { BerthError } from '../common/errors';
import { SessionMeta } from '../common/protocol';
import { PortTable, portKey } from './ports/ports';

/** The ports reserved by `metas`, leaving out the session `except` (the one being edited). */
export function portTableOf(metas: Iterable<SessionMeta>, except: string | null): PortTable {
  const t: PortTable = new Map();
  for (const m of metas) if (m.port > 0 && m.id !== except) t.set(portKey(m.port, m.protocol), m.name);
  return t;
}

/** Throws NAME_TAKEN when another session of `metas` already uses the DNS name. */
export function assertDnsFree(metas: Iterable<SessionMeta>, dns: string, except: string | null): void {
  if (dns === '') return;
  for (const m of metas) {
    if (m.dns === dns && m.id !== except) throw new BerthError('NAME_TAKEN', `dns: "${dns}" is used by session ${m.name}`);
  }
}
