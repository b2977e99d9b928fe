/** The agents this shell talks to: one AgentLink each, feeding the cluster view. */
import net from 'node:net';
import { BerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { Duplex } from 'node:stream';
import { AttachHeader, MoveHeader, RpcOp, RpcParamsInput, RpcResult } from '../../common/protocol';
import { ClusterView } from '../cluster/view';
import { AgentEntry, jumpOf } from './enrolled';
import { AgentAttach, AgentLink } from './link';

/** What the shell's operations need from the agents. */
export interface Agents {
  /**
   * Throws NOT_FOUND for an unknown agent, AGENT_OFFLINE, TIMEOUT or the agent's own error.
   * `opId` makes the op safe to retry (see OpJournal); `timeoutMs` replaces the usual bound.
   */
  call<O extends RpcOp>(agent: string, op: O, params: RpcParamsInput<O>, operator: string, opts?: CallOptions): Promise<RpcResult<O>>;
  /** Opens an attach; `timeoutMs` replaces the usual bound on the agent's answer. */
  attach(agent: string, header: AttachHeader, opts?: { timeoutMs?: number }): Promise<AgentAttach>;
  /** The IP address DNS names of the agent's sessions point to, or null if it has none. */
  addressOf(agent: string): string | null;
  /** One berth-move op (see AgentLink.move); absent where no agent can move sessions (tests' fakes). */
  move?(agent: string, req: MoveHeader, operator: string): Promise<{ result: unknown; stream: Duplex }>;
}

export interface CallOptions {
  opId?: string;
  timeoutMs?: number;
}

/** What AgentPool.sync changed, by agent id. */
export interface AgentChanges {
  added: string[];
  removed: string[];
  /** Reconnected: where or how it is reached changed. */
  changed: string[];
  drained: string[];
  resumed: string[];
}

/** An entry without what the link does not use (a change of these keeps the link). */
function linkOf(e: AgentEntry): AgentEntry {
  const rest = { ...e };
  delete rest.drained;
  return rest;
}

export class AgentPool implements Agents {
  private readonly links = new Map<string, { entry: AgentEntry; link: AgentLink }>();
  private readonly onlineHooks: Array<(agent: string) => void> = [];

  constructor(
    private readonly o: { view: ClusterView; privateKey: Buffer; rpcTimeoutMs: number; logger: Logger; keepaliveMs?: number },
  ) {}

  /** Connects to every agent (and keeps reconnecting). */
  start(entries: AgentEntry[]): void {
    for (const entry of entries) this.connect(entry);
  }

  /** The agents enrolled now. */
  entries(): AgentEntry[] {
    return [...this.links.values()].map((l) => l.entry);
  }

  /**
   * Makes the links match `entries` (a reload, an `agent` command): links of agents gone are
   * closed and their sessions leave the view; new agents are connected; an agent whose entry
   * changed (address, key, port) is reconnected. The other links are not touched, so nothing
   * attached through them notices. Returns the ids of each kind.
   */
  sync(entries: AgentEntry[]): AgentChanges {
    const next = new Map(entries.map((e) => [e.id, e]));
    const out: AgentChanges = { added: [], removed: [], changed: [], drained: [], resumed: [] };
    for (const [id, { entry }] of this.links) {
      const now = next.get(id);
      if (!now) {
        this.disconnect(id);
        this.o.view.removeAgent(id);
        out.removed.push(id);
      } else if (JSON.stringify(linkOf(now)) !== JSON.stringify(linkOf(entry))) {
        this.disconnect(id);
        this.connect(now);
        out.changed.push(id);
      } else if (Boolean(now.drained) !== Boolean(entry.drained)) {
        // Only the drain changed: the link stays.
        this.links.set(id, { entry: now, link: this.links.get(id)!.link });
        this.o.view.setDrained(id, now.drained === true);
        out[now.drained ? 'drained' : 'resumed'].push(id);
      }
    }
    for (const e of entries) {
      if (this.links.has(e.id)) continue;
      this.connect(e);
      out.added.push(e.id);
    }
    return out;
  }

  private disconnect(id: string): void {
    const l = this.links.get(id);
    if (!l) return;
    this.links.delete(id);
    l.link.removeAllListeners('event');
    l.link.stop();
    l.link.removeAllListeners('status');
  }

  private connect(entry: AgentEntry): void {
    const link = new AgentLink({
      id: entry.id,
      host: entry.host,
      port: entry.port,
      fingerprint: entry.fingerprint,
      jump: jumpOf(entry),
      privateKey: this.o.privateKey,
      logger: this.o.logger,
      keepaliveMs: this.o.keepaliveMs,
    });
    this.o.view.addAgent(entry.id);
    this.o.view.setDrained(entry.id, entry.drained === true);
    link.on('status', (status: AgentLink['status'], reason: string) => {
      this.o.view.setStatus(entry.id, status, reason);
      if (status === 'online') for (const fn of this.onlineHooks) fn(entry.id);
    });
    link.on('event', (e) => this.o.view.apply(entry.id, e));
    this.links.set(entry.id, { entry, link });
    link.start();
  }

  stop(): void {
    for (const { link } of this.links.values()) link.stop();
  }

  call<O extends RpcOp>(agent: string, op: O, params: RpcParamsInput<O>, operator: string, opts: CallOptions = {}): Promise<RpcResult<O>> {
    return this.link(agent).call(op, params, operator, opts.timeoutMs ?? this.o.rpcTimeoutMs, opts.opId);
  }

  attach(agent: string, header: AttachHeader, opts: { timeoutMs?: number } = {}): Promise<AgentAttach> {
    return this.link(agent).attach(header, opts.timeoutMs ?? this.o.rpcTimeoutMs);
  }

  move(agent: string, req: MoveHeader, operator: string): Promise<{ result: unknown; stream: Duplex }> {
    return this.link(agent).move(req, operator, this.o.rpcTimeoutMs);
  }

  /** Calls `fn` with an agent's id each time its link comes online. */
  onOnline(fn: (agent: string) => void): void {
    this.onlineHooks.push(fn);
  }

  addressOf(agent: string): string | null {
    const e = this.links.get(agent)?.entry;
    if (!e) return null;
    const a = e.address ?? e.host;
    return net.isIP(a) ? a : null;
  }

  private link(agent: string): AgentLink {
    const l = this.links.get(agent);
    if (!l) throw new BerthError('NOT_FOUND', `no agent named ${agent}`);
    return l.link;
  }
}
