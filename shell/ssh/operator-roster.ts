/**
 * The operators the shell knows now, and the connections each has open. Replacing the list (a
 * config reload, an `operator` command) applies at once to everyone logged in: a removed
 * operator's connections end; a changed role is the role of each of their open connections from
 * their next action on (the Operator objects the menu and the commands hold are the roster's); new
 * keys count from the next login, and a removed key ends nothing already logged in with it only
 * when the operator is removed too.
 */
import type { Role } from '../config';
import type { Operator } from '../operator';
import { KnownOperator } from './operator-keys';

/** What a replacement changed, by operator name. */
export interface OperatorChanges {
  added: string[];
  removed: string[];
  roles: Array<{ name: string; from: Role; to: Role }>;
  /** Operators whose keys or bell changed (their role did not). */
  updated: string[];
}

interface Live {
  op: Operator;
  /** Ends the connection. */
  end(): void;
}

export class OperatorRoster {
  private known: Map<string, KnownOperator>;
  private readonly live = new Map<string, Set<Live>>();

  constructor(known: Map<string, KnownOperator>) {
    this.known = known;
  }

  /** The operator of that name now, or undefined. */
  get(name: string): KnownOperator | undefined {
    return this.known.get(name);
  }

  /** Every operator, in the config's order. */
  list(): KnownOperator[] {
    return [...this.known.values()];
  }

  /** How many connections `name` has open. */
  connections(name: string): number {
    return this.live.get(name)?.size ?? 0;
  }

  /**
   * A connection logged in as `op` (the object its sessions will hold); `end` closes it. Returns
   * what to call when it closes. The role is the roster's now, whatever `op` said.
   */
  connected(op: Operator, end: () => void): () => void {
    const entry: Live = { op, end };
    let set = this.live.get(op.name);
    if (!set) this.live.set(op.name, (set = new Set()));
    set.add(entry);
    const known = this.known.get(op.name);
    if (known) op.role = known.role;
    else end(); // removed while it logged in
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.live.get(op.name) === set) this.live.delete(op.name);
    };
  }

  /** Takes `next` as the operators, and applies the change to every open connection. */
  replace(next: Map<string, KnownOperator>): OperatorChanges {
    const before = this.known;
    this.known = next;
    const changes: OperatorChanges = { added: [], removed: [], roles: [], updated: [] };
    for (const [name, was] of before) {
      const now = next.get(name);
      if (!now) changes.removed.push(name);
      else if (now.role !== was.role) changes.roles.push({ name, from: was.role, to: now.role });
      else if (now.bell !== was.bell || !sameKeys(was, now)) changes.updated.push(name);
    }
    for (const name of next.keys()) if (!before.has(name)) changes.added.push(name);
    for (const { name, to } of changes.roles) for (const l of this.live.get(name) ?? []) l.op.role = to;
    for (const name of changes.removed) for (const l of [...(this.live.get(name) ?? [])]) l.end();
    return changes;
  }
}

function sameKeys(a: KnownOperator, b: KnownOperator): boolean {
  return a.keys.length === b.keys.length && a.keys.every((k, i) => b.keys[i]?.blob.equals(k.blob));
}
