/** The agents this shell talks to: one AgentLink each, feeding the cluster view. */
import net from 'node:net';
import { BerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { AttachHeader, RpcOp, RpcParamsInput, RpcResult } from '../../common/protocol';
import { ClusterView } from '../cluster/view';
import { AgentEntry } from './enrolled';
import { AgentAttach, AgentLink } from './link';

/** What the shell's operations need from the agents. */
export interface Agents {
  /**
   * Throws NOT_FOUND for an unknown agent, AGENT_OFFLINE, TIMEOUT or the agent's own error.
   * `opId` makes the op safe to retry (see OpJournal); `timeoutMs` replaces the usual bound.
   */
  call<O extends RpcOp>(agent: string, op: O, params: RpcParamsInput<O>, operator: string, opts?: CallOptions): Promise<RpcResult<O>>;
  attach(agent: string, header: AttachHeader): Promise<AgentAttach>;
  /** The IP address DNS names of the agent's sessions point to, or null if it has none. */
  addressOf(agent: string): string | null;
}

export interface CallOptions {
  opId?: string;
  timeoutMs?: number;
}

export class AgentPool implements Agents {
  private readonly links = new Map<string, { entry: AgentEntry; link: AgentLink }>();

  constructor(
    private readonly o: { view: ClusterView; privateKey: Buffer; rpcTimeoutMs: number; logger: Logger; keepaliveMs?: number },
  ) {}

  /** Connects to every agent (and keeps reconnecting). */
  start(entries: AgentEntry[]): void {
    for (const entry of entries) {
      const link = new AgentLink({
        id: entry.id,
        host: entry.host,
        port: entry.port,
        fingerprint: entry.fingerprint,
        privateKey: this.o.privateKey,
        logger: this.o.logger,
        keepaliveMs: this.o.keepaliveMs,
      });
      this.o.view.addAgent(entry.id);
      link.on('status', (status: AgentLink['status'], reason: string) => this.o.view.setStatus(entry.id, status, reason));
      link.on('event', (e) => this.o.view.apply(entry.id, e));
      this.links.set(entry.id, { entry, link });
      link.start();
    }
  }

  stop(): void {
    for (const { link } of this.links.values()) link.stop();
  }

  call<O extends RpcOp>(agent: string, op: O, params: RpcParamsInput<O>, operator: string, opts: CallOptions = {}): Promise<RpcResult<O>> {
    return this.link(agent).call(op, params, operator, opts.timeoutMs ?? this.o.rpcTimeoutMs, opts.opId);
  }

  attach(agent: string, header: AttachHeader): Promise<AgentAttach> {
    return this.link(agent).attach(header, this.o.rpcTimeoutMs);
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
