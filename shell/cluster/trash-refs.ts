/** Pure: the trashed session an operator means by a REF, and what a DNS name or a name is held by. */
import { BerthError } from '../../common/errors';
import { MIN_PREFIX } from './refs';
import { ClusterSession, ClusterTrash } from './view';

export function describeTrashed(t: ClusterTrash): string {
  return `${t.id.slice(0, 8)} ${t.entry.name} on ${t.agent}, deleted ${t.entry.deletedAt}`;
}

/**
 * The one trashed session REF names: its id, a unique id prefix (4+) or a unique name among the
 * trashed. Throws NOT_FOUND, or BAD_REQUEST listing the candidates when ambiguous.
 */
export function resolveTrashRef(ref: string, trash: ClusterTrash[]): ClusterTrash {
  const exact = trash.find((t) => t.id === ref);
  if (exact) return exact;
  const byName = trash.filter((t) => t.entry.name === ref);
  const byPrefix = ref.length >= MIN_PREFIX && /^[0-9a-f-]+$/.test(ref) ? trash.filter((t) => t.id.startsWith(ref)) : [];
  const candidates = [...new Map([...byName, ...byPrefix].map((t) => [t.id, t])).values()];
  if (candidates.length === 1 && candidates[0]) return candidates[0];
  if (candidates.length === 0) throw new BerthError('NOT_FOUND', `no session in the trash matches "${ref}"`);
  throw new BerthError('BAD_REQUEST', `"${ref}" is ambiguous in the trash; it matches:\n${candidates.map((t) => `  ${describeTrashed(t)}`).join('\n')}`);
}

/** The trashed session (other than `self`) that keeps DNS name `dns`, if any. */
export function trashedHolderOf(dns: string, self: string | null, trash: ClusterTrash[]): ClusterTrash | undefined {
  return trash.find((t) => t.entry.dns === dns && t.id !== self);
}

/** Throws NAME_TAKEN when a live session (other than the trashed one itself) has its name. */
export function assertNameFreeForRestore(t: ClusterTrash, live: readonly ClusterSession[]): void {
  const same = live.find((s) => s.id !== t.id && s.entry.kind === 'session' && s.entry.meta.name === t.entry.name);
  if (same) throw new BerthError('NAME_TAKEN', `name: "${t.entry.name}" is used by session ${same.id.slice(0, 8)} on ${same.agent}; rename that one first`);
}
