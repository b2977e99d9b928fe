/**
 * The operations an operator can do, whatever the door (menu or exec CLI): role checks, the
 * cluster-wide DNS name check before anything reaches an agent, the audit record of every op,
 * refused ones too (a door that refuses before it asks, like the menu, records through here).
 */
import { BerthError, toBerthError } from '../common/errors';
import { Logger } from '../common/logging';
import { Protocol } from '../common/names';
import { Limits, RpcOp, RpcParamsInput, RpcResult, SessionEntry, entryId } from '../common/protocol';
import { AgentCalls, OutcomeUnknown, PendingOp } from './agent-calls';
import { AuditDetail, AuditLog, AuditRecord } from './audit';
import { MoveProgress, SessionMover } from './move';

export type { PendingOp } from './agent-calls';
import { placeSession, refusesSessions } from './cluster/placement';
import { resolveRef } from './cluster/refs';
import { assertNameFreeForRestore, resolveTrashRef } from './cluster/trash-refs';
import { DnsNames, DnsSink } from './dns-names';
import type { Operator } from './operator';
import { ClusterJob, ClusterSession, ClusterTrash, ClusterView } from './cluster/view';
import { Action, assertMay, forbidden, may } from './roles';
import { AgentAttach, Agents } from './agents';
import type { LiveConfig } from './live-config';

export type { Operator } from './operator';

export type { DnsSink } from './dns-names';

/** How long an attach to a stopped session waits for the agent, which starts the container first. */
const START_TIMEOUT_MS = 60_000;

export interface CreateRequest {
  name: string;
  agent?: string;
  protocol?: Protocol;
  port?: number;
  dns?: string;
  /** Memory, CPUs, pids: checked by the agent against its maximums. */
  limits?: Limits;
  /** What tmux runs; default the agent's. */
  command?: string;
  /** The session's own variables (not secret). */
  env?: Record<string, string>;
  /** A repository to start in, on branch `branch` (default berth/<name>). */
  repo?: string;
  branch?: string;
}

export interface EditRequest {
  name?: string;
  protocol?: Protocol;
  port?: number;
  dns?: string;
  /** Merged over the session's own limits; applied at the next start. */
  limits?: Limits;
  /** A command of its own; null: back to the agent's. Applied at the next start. */
  command?: string | null;
  /** Variables to set (a value) or remove (null). Applied at the next start. */
  env?: Record<string, string | null>;
}

export class ShellService {
  private readonly names: DnsNames;
  private readonly calls: AgentCalls;
  private readonly mover: SessionMover;

  constructor(
    private readonly o: { view: ClusterView; agents: Agents; audit: AuditLog; dns: DnsSink | null; logger: Logger; live?: LiveConfig },
  ) {
    this.calls = new AgentCalls(o);
    this.mover = new SessionMover(o);
    this.names = new DnsNames(o);
    o.view.on('change', () => this.names.schedule());
  }

  get view(): ClusterView {
    return this.o.view;
  }

  /** The audit log ops are recorded in (for an admin's `audit`, which checks the role itself). */
  get auditLog(): AuditLog {
    return this.o.audit;
  }

  /**
   * The live config, for an admin (`agent` and `operator` commands): checks `action` (a refusal
   * is audited), and throws CONFLICT where the shell has none (started without a config file).
   */
  liveConfig(op: Operator, action: 'manage-agents' | 'manage-operators'): LiveConfig {
    this.check(op, action);
    if (!this.o.live) throw new BerthError('CONFLICT', 'this shell cannot change its config while it runs');
    return this.o.live;
  }

  /** Finds the session REF means (see refs.ts). */
  resolve(ref: string): ClusterSession {
    return resolveRef(ref, this.o.view.sessions());
  }

  /**
   * Creates a session. One on a project runs as a job on its agent while the project is fetched:
   * `progress` hears each push of it, and the shell waits as long as the job reports.
   */
  async create(op: Operator, r: CreateRequest, progress?: (j: ClusterJob) => void): Promise<SessionEntry> {
    return this.audited(op, 'create', { agent: r.agent }, async () => {
      assertMay(op, 'create');
      const agent = r.agent ?? placeSession(this.o.view.agentList());
      this.assertTakesSessions(agent);
      const params = { name: r.name, protocol: r.protocol, port: r.port, dns: r.dns, limits: r.limits, command: r.command, env: r.env, repo: r.repo, branch: r.branch };
      const opId = this.calls.opIdOf(op);
      const since = this.o.view.mark();
      const entry = await this.following(opId, agent, progress, () => this.names.claim(r.dns, null, () => this.callAgent(op, agent, 'create', params, opId)));
      this.o.view.upsert(agent, entry, since);
      return { result: entry, agent, session: entryId(entry) };
    });
  }

  async edit(op: Operator, ref: string, r: EditRequest): Promise<SessionEntry> {
    return this.audited(op, 'edit', { ref }, async (found) => {
      const s = mustFind(found);
      assertMay(op, 'edit');
      const since = this.o.view.mark();
      const entry = await this.names.claim(r.dns, s.id, () => this.callAgent(op, s.agent, 'edit', { session: s.id, ...r }));
      this.o.view.upsert(s.agent, entry, since);
      return { result: entry };
    });
  }

  /**
   * Clones a session. The agent runs it as a job: `progress` hears each push of it (phase and
   * bytes copied), and the shell waits as long as the job reports.
   */
  async clone(op: Operator, ref: string, name?: string, progress?: (j: ClusterJob) => void): Promise<SessionEntry> {
    return this.audited(op, 'clone', { ref }, async (found) => {
      const s = mustFind(found);
      assertMay(op, 'clone');
      this.assertTakesSessions(s.agent);
      const opId = this.calls.opIdOf(op);
      const since = this.o.view.mark();
      const entry = await this.following(opId, s.agent, progress, () => this.callAgent(op, s.agent, 'clone', { session: s.id, ...(name ? { name } : {}) }, opId));
      this.o.view.upsert(s.agent, entry, since);
      return { result: entry, detail: { clone: entryId(entry) } };
    });
  }

  /**
   * Moves a session to agent `to` (see shell/move.ts): the same id, name, command, port and DNS
   * name there. Audited `unknown` when an agent was lost on the way (the shell resolves it when
   * the links are back).
   */
  async move(op: Operator, ref: string, to: string, progress?: (p: MoveProgress) => void): Promise<void> {
    return this.audited(op, 'move', { ref }, async (found) => {
      const s = mustFind(found);
      assertMay(op, 'move');
      this.assertTakesSessions(to);
      try {
        await this.mover.move(op.name, s.id, s.agent, to, progress);
      } catch (err) {
        const e = toBerthError(err);
        if (e.code !== 'AGENT_OFFLINE' && e.code !== 'TIMEOUT') throw e;
        const unknown = new OutcomeUnknown(`${e.message}: the move is resolved when both agents are online again`, 'move');
        await this.o.audit.record({ operator: op.name, op: 'move', session: s.id, agent: s.agent, result: 'unknown', code: e.code, message: e.message, detail: { to } });
        throw unknown;
      }
      return { result: undefined, detail: { to } };
    });
  }

  /** Finishes or undoes moves left half-done (on every link coming online). Never throws. */
  resolveMoves(): Promise<void> {
    return this.mover.resolve();
  }

  /** restart, kill and override: one session in, its new entry out. */
  async simple(op: Operator, action: 'restart' | 'kill' | 'override', ref: string, reason?: string): Promise<SessionEntry> {
    return this.audited(op, action, { ref }, async (found) => {
      const s = mustFind(found);
      assertMay(op, action);
      const since = this.o.view.mark();
      const entry =
        action === 'override'
          ? await this.callAgent(op, s.agent, 'override', { session: s.id, ...(reason ? { reason } : {}) })
          : await this.callAgent(op, s.agent, action, { session: s.id });
      this.o.view.upsert(s.agent, entry, since);
      return { result: entry, detail: reason ? { reason } : undefined };
    });
  }

  async background(op: Operator, ref: string): Promise<number> {
    return this.audited(op, 'background', { ref }, async (found) => {
      const s = mustFind(found);
      assertMay(op, 'background');
      const r = await this.callAgent(op, s.agent, 'background', { session: s.id });
      return { result: r.detached, detail: { detached: r.detached } };
    });
  }

  async delete(op: Operator, ref: string): Promise<string> {
    return this.audited(op, 'delete', { ref }, async (found) => {
      const s = mustFind(found);
      assertMay(op, 'delete');
      const since = this.o.view.mark();
      const r = await this.callAgent(op, s.agent, 'delete', { session: s.id });
      this.o.view.forget(s.agent, s.id);
      if (r.trash) this.o.view.setTrashed(s.agent, s.id, r.trash, since);
      return { result: s.id };
    });
  }

  /**
   * Brings a trashed session back, stopped (REF among the trashed: see trash-refs.ts). Refused
   * when a live session has its name or DNS name; `noPort`: without its port, else a port another
   * session took refuses it.
   */
  async restore(op: Operator, ref: string, noPort = false): Promise<SessionEntry> {
    let t: ClusterTrash;
    try {
      assertMay(op, 'restore');
      t = resolveTrashRef(ref, this.o.view.trash());
    } catch (err) {
      const e = toBerthError(err);
      await this.o.audit.record(refusal(op, 'restore', e, null, undefined, ref));
      throw e;
    }
    return this.audited(op, 'restore', { agent: t.agent, session: t.id }, async () => {
      assertNameFreeForRestore(t, this.o.view.sessions());
      const since = this.o.view.mark();
      const entry = await this.names.claim(t.entry.dns, t.id, () => this.callAgent(op, t.agent, 'restore', { session: t.id, noPort }));
      this.o.view.upsert(t.agent, entry, since);
      this.o.view.setTrashed(t.agent, t.id, null, since);
      return { result: entry, session: t.id };
    });
  }

  /** The last `lines` lines of a running session's pane (anyone who may attach read-only may look). */
  async preview(op: Operator, ref: string, lines: number): Promise<{ session: ClusterSession; text: string; at: string }> {
    const s = this.resolve(ref);
    assertMay(op, 'attach');
    const r = await this.o.agents.call(s.agent, 'preview', { session: s.id, lines }, op.name);
    return { session: s, ...r };
  }

  /** Opens an attach; a viewer's is always read-only. The caller records the detach via `detached`. */
  async attach(op: Operator, ref: string, readOnly: boolean, cols: number, rows: number): Promise<{ session: ClusterSession; attach: AgentAttach }> {
    const ro = readOnly || op.role === 'viewer';
    return this.audited(op, 'attach', { ref }, async (found) => {
      const s = mustFind(found);
      assertMay(op, ro ? 'attach' : 'attach-write');
      // A stopped session is started first: under load that takes seconds. A lost agent still
      // ends the wait at once (its link's keepalives); this bound is for one that hangs.
      const since = this.o.view.mark();
      const a = await this.o.agents.attach(s.agent, { session: s.id, operator: op.name, readOnly: ro, cols, rows }, s.state === '-' ? { timeoutMs: START_TIMEOUT_MS } : {});
      if (!a.reply.ok) {
        a.close();
        throw new BerthError(a.reply.error.code, a.reply.error.message);
      }
      this.o.view.upsert(s.agent, a.reply.session, since);
      return { result: { session: s, attach: a }, detail: { readOnly: ro } };
    });
  }

  detached(op: Operator, s: ClusterSession): void {
    void this.o.audit.record({ operator: op.name, op: 'detach', session: s.id, agent: s.agent, result: 'ok' });
  }

  /**
   * Checks up front that `op` may do `action` (to the session `ref` names, if given), for a door
   * that asks before it acts: the menu, to say at once why a key is refused. A refusal is recorded
   * as the op's own would be. Throws FORBIDDEN.
   */
  check(op: Operator, action: Action, ref?: string): void {
    if (!may(op.role, action)) throw this.refused(op, action, ref, forbidden(op, action));
  }

  /**
   * Records a refusal that a door decided itself (the menu's "not locked", "no agent is online")
   * as the op's own refusal would be, and returns it to throw or show. Never throws.
   */
  refused(op: Operator, action: Action, ref: string | undefined, err: BerthError): BerthError {
    let s: ClusterSession | null = null;
    if (ref !== undefined) {
      try {
        s = this.resolve(ref);
      } catch {
        // recorded by its REF instead
      }
    }
    void this.o.audit.record(refusal(op, opOf(action), err, s, s?.agent, ref));
    return err;
  }

  // ---- internals ----

  /**
   * Runs one op and records it in the audit log whatever happens, a refused REF included. `target`
   * is the REF to resolve (inside the record), or the agent a create goes to.
   */
  private async audited<T>(
    op: Operator,
    name: string,
    target: { ref: string } | { agent: string | undefined; session?: string },
    fn: (s: ClusterSession | null) => Promise<{ result: T; agent?: string; session?: string; detail?: AuditDetail }>,
  ): Promise<T> {
    let s: ClusterSession | null = null;
    let agent = 'agent' in target ? target.agent : undefined;
    try {
      if ('ref' in target) {
        s = this.resolve(target.ref);
        agent = s.agent;
      }
      const r = await fn(s);
      await this.o.audit.record({
        operator: op.name,
        op: name,
        session: r.session ?? s?.id,
        agent: r.agent ?? agent,
        result: 'ok',
        ...(r.detail ? { detail: r.detail } : {}),
      });
      return r.result;
    } catch (err) {
      const e = toBerthError(err);
      // An unknown outcome was recorded where it was found, before its late outcome can be.
      const record = refusal(op, name, e, s, agent, 'ref' in target ? target.ref : undefined);
      if ('session' in target) record.session ??= target.session;
      if (!(err instanceof OutcomeUnknown)) await this.o.audit.record(record);
      throw e;
    }
  }

  /** Calls a mutating op under the operator's op id (or a fresh one); see AgentCalls. */
  private callAgent<O extends RpcOp>(op: Operator, agent: string, name: O, params: RpcParamsInput<O>, opId = this.calls.opIdOf(op)): Promise<RpcResult<O>> {
    return this.calls.call(op, agent, name, params, opId);
  }

  /** The ops whose outcome the shell still waits for, oldest first. */
  pendingOps(): PendingOp[] {
    return this.calls.pending();
  }

  /** Runs `fn`, telling `progress` each push of the job under `opId` on `agent` meanwhile. */
  private async following<T>(opId: string, agent: string, progress: ((j: ClusterJob) => void) | undefined, fn: () => Promise<T>): Promise<T> {
    if (!progress) return fn();
    const onJobs = (): void => {
      const j = this.o.view.jobs().find((x) => x.job.opId === opId && x.agent === agent);
      if (j) progress(j);
    };
    this.o.view.on('jobs', onJobs);
    try {
      return await fn();
    } finally {
      this.o.view.off('jobs', onJobs);
    }
  }

  /** The online agent with the fewest sessions. Throws AGENT_OFFLINE when none is online. */
  /** Throws NOT_FOUND for an unknown agent, CONFLICT for a drained one (see placement.ts). */
  private assertTakesSessions(agent: string): void {
    const a = this.o.view.agent(agent);
    if (!a) throw new BerthError('NOT_FOUND', `no agent named ${agent}`);
    if (a.drained) throw new BerthError('CONFLICT', refusesSessions(a) ?? `${agent} is drained`);
  }
}

/** The op an action is recorded as: an attach is one, read-only or not. */
function opOf(action: Action): string {
  return action === 'attach-write' ? 'attach' : action;
}

/** The record of a refused op: the session its REF named, or else the REF as typed. */
function refusal(op: Operator, name: string, e: BerthError, s: ClusterSession | null, agent: string | undefined, ref: string | undefined): AuditRecord {
  return {
    operator: op.name,
    op: name,
    session: s?.id,
    agent,
    result: 'refused',
    code: e.code,
    message: e.message,
    ...(ref !== undefined && !s ? { detail: { ref } } : {}),
  };
}

/** The session `audited` resolved from a REF (it is always there when a REF was given). */
function mustFind(s: ClusterSession | null): ClusterSession {
  if (!s) throw new BerthError('INTERNAL', 'no session resolved');
  return s;
}

