/**
 * How the shell calls an agent for a mutating op: with an op id, and with a plan for an answer
 * that does not come in time. The operator is then told the outcome is unknown (and how to get
 * it), the audit says `unknown`, and the shell goes on waiting in the background: the outcome is
 * recorded in the audit log (same op id, `late`) and shown in the view when it comes. A retry
 * with the same op id gets the same outcome; the agent does the op once.
 */
import { randomUUID } from 'node:crypto';
import { BerthError, toBerthError } from '../common/errors';
import { RpcOp, RpcParamsInput, RpcResult, SessionEntry, entryId } from '../common/protocol';
import { AuditLog, AuditRecord } from './audit';
import { ClusterView } from './cluster/view';
import { Agents } from './agents';

/** How long the shell goes on waiting, after telling the operator the outcome is unknown. */
const LATE_OUTCOME_WAIT_MS = 30 * 60 * 1000;
/** How long a command that names its op id (--op-id, most often a retry) waits for the outcome. */
const OWN_OP_ID_WAIT_MS = 2 * 60 * 1000;

/** Who asks, and under which op id (unset: a fresh one per op). */
export interface Caller {
  name: string;
  opId?: string;
}

/** An op whose outcome is unknown (its agent did not answer in time) that the shell still waits for. */
export interface PendingOp {
  opId: string;
  op: string;
  operator: string;
  agent: string;
  session: string | null;
  /** When the shell stopped waiting in the foreground (ISO). */
  since: string;
}

/** The agent did not answer in time: the op may still be done. Carries the op's id. */
export class OutcomeUnknown extends BerthError {
  constructor(
    message: string,
    readonly opId: string,
  ) {
    super('TIMEOUT', message);
  }
}

export class AgentCalls {
  /** Ops whose outcome is unknown, still awaited in the background, by op id. */
  private readonly waiting = new Map<string, PendingOp>();

  constructor(private readonly o: { agents: Agents; audit: AuditLog; view: ClusterView }) {}

  /** A fresh op id, or the caller's own. */
  opIdOf(caller: Caller): string {
    return caller.opId ?? randomUUID();
  }

  /**
   * Calls mutating op `name` on `agent` under `opId` (see opIdOf). Throws OutcomeUnknown when the
   * agent does not answer in time, the agent's own error otherwise.
   */
  async call<O extends RpcOp>(caller: Caller, agent: string, name: O, params: RpcParamsInput<O>, opId: string): Promise<RpcResult<O>> {
    const since = this.o.view.mark();
    try {
      return await this.o.agents.call(agent, name, params, caller.name, caller.opId ? { opId, timeoutMs: OWN_OP_ID_WAIT_MS } : { opId });
    } catch (err) {
      const e = toBerthError(err);
      if (e.code !== 'TIMEOUT') throw e;
      const unknown = new OutcomeUnknown(
        `${e.message}: the outcome is unknown (the agent may still finish it); the shell records it in the audit log ` +
          `when it comes, and the same command with --op-id ${opId} waits for it (up to 2 min) and shows it`,
        opId,
      );
      // Recorded now, so that it comes before the late outcome in the audit log.
      void this.o.audit.record({
        operator: caller.name,
        op: name,
        agent,
        session: sessionOf(params),
        result: 'unknown',
        code: 'TIMEOUT',
        message: unknown.message,
        detail: { opId },
      });
      this.awaitLate(caller, agent, name, params, opId, since);
      throw unknown;
    }
  }

  /** The ops whose outcome the shell still waits for, oldest first. */
  pending(): PendingOp[] {
    return [...this.waiting.values()];
  }

  /** `since`: the view's mark() from before the op first went out (see ClusterView.upsert). */
  private awaitLate<O extends RpcOp>(caller: Caller, agent: string, name: O, params: RpcParamsInput<O>, opId: string, since: number): void {
    const session = sessionOf(params);
    this.waiting.set(opId, { opId, op: name, operator: caller.name, agent, session: session ?? null, since: new Date().toISOString() });
    const record = (r: Partial<AuditRecord>): Promise<void> =>
      this.o.audit.record({ operator: caller.name, op: name, agent, session, result: 'ok', ...r, detail: { opId, late: true } });
    void this.o.agents.call(agent, name, params, caller.name, { opId, timeoutMs: LATE_OUTCOME_WAIT_MS }).finally(() => this.waiting.delete(opId)).then(
      async (result) => {
        if (result && typeof result === 'object' && 'kind' in result) {
          const entry = result as SessionEntry;
          this.o.view.upsert(agent, entry, since);
          await record({ session: session ?? entryId(entry) });
        } else {
          await record({});
        }
      },
      async (err: unknown) => {
        const e = toBerthError(err);
        await record({ result: e.code === 'TIMEOUT' ? 'unknown' : 'refused', code: e.code, message: e.message });
      },
    );
  }
}

/** The session an op's params name, if any. */
function sessionOf(params: unknown): string | undefined {
  const s = params && typeof params === 'object' ? (params as { session?: unknown }).session : undefined;
  return typeof s === 'string' ? s : undefined;
}
