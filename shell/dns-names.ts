/**
 * Cluster-wide DNS names, the shell's to keep: no two sessions (nor a trashed one, whose name is
 * kept until it is purged) ever get one name, however many ops run at once, and dnsmasq's records
 * follow the cluster view, rewritten (coalesced) only when the names or addresses changed.
 */
import { BerthError, toBerthError } from '../common/errors';
import { Logger } from '../common/logging';
import { Mutex } from '../common/mutex';
import { dnsNameSchema, problemWith } from '../common/names';
import type { Agents } from './agents';
import { trashedHolderOf } from './cluster/trash-refs';
import type { ClusterSession, ClusterView } from './cluster/view';

/** Where DNS records go: the shell's dnsmasq (shell/dns). */
export interface DnsSink {
  apply(records: Array<{ name: string; address: string }>): Promise<void>;
}

export class DnsNames {
  private readonly dnsMutex = new Mutex();
  /** DNS names claimed by ops in flight: name → session id (or '' for a create). */
  private readonly claims = new Map<string, string>();
  private lastDns = '';
  private dnsQueued = false;
  private readonly dnsQueue = new Mutex();

  constructor(private readonly o: { view: ClusterView; agents: Pick<Agents, 'addressOf'>; dns: DnsSink | null; logger: Logger }) {}

  /**
   * Runs `fn` holding the cluster-wide claim on DNS name `dns` (if any): a name that is not one is
   * refused with BAD_REQUEST, and a name another session has, or an op in flight claimed, with
   * NAME_TAKEN, before any agent is asked.
   */
  async claim<T>(dns: string | undefined, self: string | null, fn: () => Promise<T>): Promise<T> {
    if (!dns) return fn();
    // What is no name is never taken: two ops with the same bad name both hear what is wrong with it.
    const problem = problemWith(dnsNameSchema, dns);
    if (problem) throw new BerthError('BAD_REQUEST', `dns: ${problem}`);
    await this.dnsMutex.run(async () => {
      const holder = this.o.view.sessions().find((x) => x.entry.kind === 'session' && x.entry.meta.dns === dns && x.id !== self);
      if (holder) throw new BerthError('NAME_TAKEN', `dns: "${dns}" is used by session ${nameOf(holder)} on ${holder.agent}`);
      const trashed = trashedHolderOf(dns, self, this.o.view.trash());
      if (trashed) throw new BerthError('NAME_TAKEN', `dns: "${dns}" is kept by session ${trashed.entry.name} in the trash of ${trashed.agent} until ${trashed.entry.purgeAt} (restore it, or wait)`);
      const claimant = this.claims.get(dns);
      if (claimant !== undefined && claimant !== self) throw new BerthError('NAME_TAKEN', `dns: "${dns}" is being taken by another operation`);
      this.claims.set(dns, self ?? '');
    });
    try {
      return await fn();
    } finally {
      this.claims.delete(dns);
    }
  }

  /** Rewrites dnsmasq's records (coalesced) when the set of names or addresses changed. */
  schedule(): void {
    const sink = this.o.dns;
    if (!sink || this.dnsQueued) return;
    this.dnsQueued = true;
    void this.dnsQueue.run(async () => {
      this.dnsQueued = false;
      const records = this.records();
      const key = JSON.stringify(records);
      if (key === this.lastDns) return;
      try {
        await sink.apply(records);
        this.lastDns = key;
      } catch (err) {
        this.o.logger.error('dns update failed', { err: toBerthError(err).message });
      }
    });
  }

  private records(): Array<{ name: string; address: string }> {
    const out = new Map<string, string>();
    for (const s of this.o.view.sessions()) {
      if (s.entry.kind !== 'session' || !s.entry.meta.dns) continue;
      const address = this.o.agents.addressOf(s.agent);
      if (address) out.set(s.entry.meta.dns, address);
    }
    return [...out.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, address]) => ({ name, address }));
  }
}

function nameOf(s: ClusterSession): string {
  return s.entry.kind === 'session' ? s.entry.meta.name : s.id;
}
