/**
 * `trash` (every agent's trashed sessions) and `restore REF` (one back, stopped). Text through
 * format.ts's table, JSON through inertJson; `TrashJson` is the `trash --json` contract.
 */
import { entryId } from '../../common/protocol';
import { inertJson } from '../../common/terminal-text';
import { ClusterTrash } from '../cluster/view';
import { Operator, ShellService } from '../service';
import { FlagSpec, Parsed, UsageError, parseFlags } from './args';
import { sessionJson, summary, table } from './format';

export const TRASH_USAGE = `  trash                                    deleted sessions of every agent, until purged
  restore REF [--no-port]                  brings a deleted session back, stopped; REF among the
                                           trashed; --no-port: without its port (when another
                                           session took it)`;

/** One trashed session in `trash --json`. */
export interface TrashJson {
  id: string;
  name: string;
  agent: string;
  protocol: string;
  port: number;
  dns: string;
  deletedAt: string;
  deletedBy: string;
  purgeAt: string;
}

const HEAD = ['NAME', 'ID', 'AGENT', 'DELETED (UTC)', 'BY', 'PURGED AFTER (UTC)', 'PORT', 'DNS'];

function when(iso: string): string {
  return iso.slice(0, 19).replace('T', ' ');
}

function row(t: ClusterTrash): string[] {
  const e = t.entry;
  return [e.name, t.id.slice(0, 8), t.agent, when(e.deletedAt), e.deletedBy, when(e.purgeAt), e.port > 0 ? `${e.port}/${e.protocol}` : '-', e.dns || '-'];
}

function trashJson(t: ClusterTrash): TrashJson {
  const { id, ...e } = t.entry;
  return { id, agent: t.agent, ...e };
}

export interface TrashIo {
  out(text: string): void;
}

/** `trash [--json]`: anyone who may list. */
export function trashCommand(rest: string[], op: Operator, svc: ShellService, io: TrashIo): number {
  const { flags } = parseFlags(rest, { json: 'boolean' }, 0);
  svc.check(op, 'list');
  const all = svc.view.trash();
  if (flags.json) io.out(`${inertJson(all.map(trashJson))}\n`);
  else if (all.length === 0) io.out('the trash is empty\n');
  else io.out(table(HEAD, all.map(row)));
  return 0;
}

/** `restore REF [--no-port] [--json] [--op-id ID]`. */
export async function restoreCommand(rest: string[], op: Operator, svc: ShellService, io: TrashIo, opFlags: FlagSpec, withOpId: (op: Operator, flags: Parsed['flags']) => Operator): Promise<number> {
  const { flags, positionals } = parseFlags(rest, { ...opFlags, 'no-port': 'boolean' }, 1);
  const ref = positionals[0];
  if (!ref) throw new UsageError('usage: restore REF [--no-port]');
  const entry = await svc.restore(withOpId(op, flags), ref, flags['no-port'] === true);
  const status = svc.view.agent(entry.agent)?.status ?? 'offline';
  const s = { entry, id: entryId(entry), agent: entry.agent, agentStatus: status, state: status === 'online' ? entry.state : ('?' as const) };
  io.out(flags.json ? `${inertJson(sessionJson(s))}\n` : summary('restored', s));
  return 0;
}

