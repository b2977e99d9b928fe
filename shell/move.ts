/**
 * `move REF --to AGENT` as the shell performs it, and the resolution of moves a crash left
 * half-done. The protocol and its invariant are in agent/session-move.ts; here: the order of the
 * calls, the pipe from the source's export channel into the target's import channel (backpressure
 * both ways: `pipe` waits on the target's SSH window, which only opens as the target's tar
 * reads), and what to do with each half-done move found when links come back.
 */
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { BerthError, messageOf, toBerthError } from '../common/errors';
import { Logger } from '../common/logging';
import { Mutex } from '../common/mutex';
import { MoveHeader, MoveOp, MoveResult, moveResultSchemas, moveSumsSchema } from '../common/protocol';
import { Agents } from './agents';
import { ClusterView } from './cluster/view';

/** What a move reports while it copies. */
export interface MoveProgress {
  bytesDone: number;
}

/** The shell's own name in agents' lock records of a recovery. */
const RECOVERY_OPERATOR = 'berth-shell';

export class SessionMover {
  /** Tokens of moves this shell is driving now: recovery leaves them alone. */
  private readonly inFlight = new Set<string>();
  private readonly resolving = new Mutex();
  private readonly log: Logger;

  constructor(private readonly o: { agents: Agents; view: ClusterView; logger: Logger }) {
    this.log = o.logger.child({ component: 'move' });
  }

  /**
   * Moves session `id` from agent `from` to agent `to`. Refusals before the commit leave it whole
   * at the source (unlocked, running again if it ran); an agent lost after it leaves the move to
   * `resolve`. Throws the refusal, AGENT_OFFLINE or TIMEOUT.
   */
  async move(operator: string, id: string, from: string, to: string, progress?: (p: MoveProgress) => void): Promise<void> {
    if (from === to) throw new BerthError('BAD_REQUEST', `session is already on ${to}`);
    const token = randomBytes(16).toString('hex');
    const ids = { session: id, token };
    this.inFlight.add(token);
    let committed = false;
    try {
      const begun = await this.call(from, { op: 'out-begin', ...ids, to }, operator);
      try {
        await this.call(to, { op: 'in-begin', token, from, meta: begun.meta, running: begun.running }, operator);
        await this.copy(operator, from, to, id, token, progress);
        const sums = await this.call(from, { op: 'out-sums', ...ids }, operator);
        await this.call(to, { op: 'in-commit', ...ids, ...sums }, operator);
        committed = true;
      } catch (err) {
        // Not committed (or unknown: then the token's status decides, in resolve).
        const e = toBerthError(err);
        if (e.code !== 'AGENT_OFFLINE' && e.code !== 'TIMEOUT') {
          await this.call(to, { op: 'in-abort', ...ids }, operator).catch(() => undefined);
          await this.call(from, { op: 'out-cancel', ...ids }, operator);
        }
        throw e;
      }
      await this.call(from, { op: 'out-finish', ...ids }, operator);
      await this.call(to, { op: 'in-confirm', ...ids }, operator);
      this.log.info('moved session', { session: id, from, to, operator });
    } finally {
      this.inFlight.delete(token);
      if (committed || this.inFlight.size === 0) void this.resolve();
    }
  }

  /**
   * Finishes or undoes every half-done move the online agents report (see the invariant in
   * agent/session-move.ts); a move whose other agent is offline waits for the next call. Runs
   * one at a time; never throws.
   */
  async resolve(): Promise<void> {
    await this.resolving.run(async () => {
      const online = this.o.view.agentList().filter((a) => a.status === 'online').map((a) => a.id);
      const pending = new Map<string, MoveResult<'pending'>>();
      for (const a of online) {
        const p = await this.call(a, { op: 'pending' }, RECOVERY_OPERATOR).catch(() => null);
        if (p) pending.set(a, p);
      }
      for (const [from, p] of pending) {
        for (const m of p.outgoing) {
          if (this.inFlight.has(m.token)) continue;
          await this.settle(from, m.to, m.session, m.token).catch((err: unknown) => this.log.warn('resolve move', { session: m.session, from, to: m.to, err: messageOf(err) }));
        }
      }
      for (const [to, p] of pending) {
        for (const m of p.incoming) {
          const source = pending.get(m.from);
          // The source is the one to ask: offline, the move waits.
          if (this.inFlight.has(m.token) || !source || source.outgoing.some((x) => x.token === m.token)) continue;
          const ids = { session: m.session, token: m.token };
          const op = m.committed ? 'in-confirm' : 'in-abort';
          await this.call(to, { op, ...ids }, RECOVERY_OPERATOR).then(
            () => this.log.info('resolved move', { session: m.session, to, action: op }),
            (err: unknown) => this.log.warn('resolve move', { session: m.session, to, err: messageOf(err) }),
          );
        }
      }
    });
  }

  /** One source-marked move: the target's status of its token says finish or cancel. */
  private async settle(from: string, to: string, session: string, token: string): Promise<void> {
    const ids = { session, token };
    const target = this.o.view.agent(to);
    if (!target || target.status !== 'online') return;
    const { status } = await this.call(to, { op: 'in-status', ...ids }, RECOVERY_OPERATOR);
    if (status === 'committed' || status === 'confirmed') {
      await this.call(from, { op: 'out-finish', ...ids }, RECOVERY_OPERATOR);
      if (status === 'committed') await this.call(to, { op: 'in-confirm', ...ids }, RECOVERY_OPERATOR);
      this.log.info('resolved move', { session, from, to, action: 'finished' });
    } else {
      if (status === 'staged') await this.call(to, { op: 'in-abort', ...ids }, RECOVERY_OPERATOR);
      await this.call(from, { op: 'out-cancel', ...ids }, RECOVERY_OPERATOR);
      this.log.info('resolved move', { session, from, to, action: 'cancelled' });
    }
  }

  /** Pipes the source's export into the target's import; resolves once the target has unpacked all of it. */
  private async copy(operator: string, from: string, to: string, session: string, token: string, progress?: (p: MoveProgress) => void): Promise<void> {
    const exp = await this.open(from, { op: 'out-export', session, token }, operator);
    let imp: Duplex;
    try {
      imp = await this.open(to, { op: 'in-import', session, token }, operator);
    } catch (err) {
      exp.destroy();
      throw err;
    }
    let done = 0;
    let last = 0;
    exp.on('data', (d: Buffer) => {
      done += d.length;
      if (progress && done - last >= 8 * 1024 * 1024) {
        last = done;
        progress({ bytesDone: done });
      }
    });
    const answer = new Promise<string>((resolve, reject) => {
      let text = '';
      imp.on('data', (d: Buffer) => {
        if (text.length < 4096) text += d.toString('utf8');
      });
      imp.once('close', () => (text.includes('\n') ? resolve(text.slice(0, text.indexOf('\n'))) : reject(new BerthError('AGENT_OFFLINE', `agent ${to} closed the import`))));
      exp.once('close', () => {
        if (!exp.readableEnded) imp.destroy();
      });
    });
    exp.pipe(imp);
    imp.resume();
    try {
      const line = await answer;
      const received = moveSumsSchema.safeParse(JSON.parse(line));
      if (!received.success) {
        const err = (JSON.parse(line) as { error?: { message?: string } }).error;
        throw new BerthError('CONFLICT', `import failed: ${err?.message ?? 'no sums'}`);
      }
      progress?.({ bytesDone: received.data.bytes });
    } finally {
      exp.destroy();
      imp.destroy();
    }
  }

  private async call<O extends MoveOp>(agent: string, req: Extract<MoveHeader, { op: O }>, operator: string): Promise<MoveResult<O>> {
    const { result, stream } = await this.mustMove()(agent, req, operator);
    stream.destroy();
    const r = moveResultSchemas[req.op].safeParse(result);
    if (!r.success) throw new BerthError('INTERNAL', `agent ${agent} sent a bad ${req.op} result`);
    return r.data as MoveResult<O>;
  }

  private async open(agent: string, req: MoveHeader, operator: string): Promise<Duplex> {
    return (await this.mustMove()(agent, req, operator)).stream;
  }

  private mustMove(): NonNullable<Agents['move']> {
    const m = this.o.agents.move?.bind(this.o.agents);
    if (!m) throw new BerthError('CONFLICT', 'this shell cannot move sessions');
    return m;
  }
}
