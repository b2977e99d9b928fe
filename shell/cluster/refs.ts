/** Pure: finding the session an operator means by a REF (uuid, unique uuid prefix of 4+, or unique name). */
import { BerthError } from '../../common/errors';
import { ClusterSession } from './view';

export const MIN_PREFIX = 4;

export function describe(s: ClusterSession): string {
  const name = s.entry.kind === 'session' ? s.entry.meta.name : '(broken)';
  return `${s.id.slice(0, 8)} ${name} on ${s.agent}`;
}

/** The one session REF names. Throws NOT_FOUND, or BAD_REQUEST listing the candidates when ambiguous. */
export function resolveRef(ref: string, sessions: readonly ClusterSession[]): ClusterSession {
  const exact = sessions.find((s) => s.id === ref);
  if (exact) return exact;
  const byName = sessions.filter((s) => s.entry.kind === 'session' && s.entry.meta.name === ref);
  const byPrefix = ref.length >= MIN_PREFIX && /^[0-9a-f-]+$/.test(ref) ? sessions.filter((s) => s.id.startsWith(ref)) : [];
  const candidates = [...new Map([...byName, ...byPrefix].map((s) => [s.id, s])).values()];
  if (candidates.length === 1 && candidates[0]) return candidates[0];
  if (candidates.length === 0) {
    const hint = ref.length < MIN_PREFIX && /^[0-9a-f]+$/.test(ref) ? ` (an id prefix needs at least ${MIN_PREFIX} characters)` : '';
    throw new BerthError('NOT_FOUND', `no session matches "${ref}"${hint}`);
  }
  throw new BerthError('BAD_REQUEST', `"${ref}" is ambiguous; it matches:\n${candidates.map((s) => `  ${describe(s)}`).join('\n')}`);
}
