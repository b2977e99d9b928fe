/**
 * An op's reply and the agent's events travel on different channels, and the shell takes further
 * steps (a DNS update, the audit) between the reply and recording it: the agent's event for a
 * change after the op can arrive first. The reply must not then take the session back to the
 * older state: the agent pushes each change once, so nothing would put it right.
 */
import { silentLogger } from '../../common/logging';
import { Activity, SessionEntry } from '../../common/protocol';
import { AuditLog } from '../../shell/audit';
import { Agents } from '../../shell/agents/pool';
import { ClusterView } from '../../shell/cluster/view';
import { Operator, ShellService } from '../../shell/service';
import { viewEntry } from '../helpers/entries';
import { viewWithAgent } from '../helpers/raw-text';
import os from 'node:os';
import path from 'node:path';

const ID = '5d1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
const ALICE: Operator = { name: 'alice', role: 'admin' };
const WORKING: Activity = { state: 'working', since: '2026-12-03T08:00:01.000Z', detail: 'output' };

const stopped = (): SessionEntry => viewEntry({ id: ID, name: 'hooked' });
/** As the agent answered the restart: running, its program not heard from yet. */
const replied = (): SessionEntry => viewEntry({ id: ID, name: 'hooked', state: 'R' });
/** As the agent pushed it a moment later: the pane printed. */
const printed = (): SessionEntry => ({ ...replied(), activity: WORKING }) as SessionEntry;

const activityOf = (v: ClusterView): Activity | null => {
  const e = v.sessions().find((s) => s.id === ID)?.entry;
  return e?.kind === 'session' ? (e.activity ?? null) : null;
};

describe("an op's reply against the agent's events", () => {
  it('is dropped when the agent told of the session after the op went out', () => {
    const v = viewWithAgent('1.0', 'host');
    v.apply('agent-1', { type: 'session', session: stopped() });
    const since = v.mark();
    v.apply('agent-1', { type: 'session', session: printed() });
    v.upsert('agent-1', replied(), since);
    expect(activityOf(v)).toEqual(WORKING);
  });

  it('is taken when the agent told nothing of it since (the reply comes first, as usual)', () => {
    const v = viewWithAgent('1.0', 'host');
    v.apply('agent-1', { type: 'session', session: stopped() });
    const since = v.mark();
    // Another session's event counts for nothing here.
    v.apply('agent-1', { type: 'session', session: viewEntry({ id: '6e2f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b', name: 'other' }) });
    v.upsert('agent-1', replied(), since);
    expect(v.sessions().find((s) => s.id === ID)?.state).toBe('R');
    // The agent's later push then wins as always.
    v.apply('agent-1', { type: 'session', session: printed() });
    expect(activityOf(v)).toEqual(WORKING);
  });

  it('does not bring back a session the agent removed after the op went out', () => {
    const v = viewWithAgent('1.0', 'host');
    v.apply('agent-1', { type: 'session', session: stopped() });
    const since = v.mark();
    v.apply('agent-1', { type: 'session-removed', id: ID });
    v.upsert('agent-1', replied(), since);
    expect(v.sessions().map((s) => s.id)).toEqual([]);
  });

  it('through the service: a restart whose reply crossed the newer event leaves the newer one', async () => {
    const view = viewWithAgent('1.0', 'host');
    view.apply('agent-1', { type: 'session', session: stopped() });
    const agents: Agents = {
      call: (async () => {
        // The agent answered, then the pane printed: its event overtakes the reply on the shell's side.
        view.apply('agent-1', { type: 'session', session: printed() });
        return replied();
      }) as Agents['call'],
      attach: () => Promise.reject(new Error('no attach here')),
      addressOf: () => null,
    };
    const audit = new AuditLog(path.join(os.tmpdir(), `berth-reply-order-${process.pid}.jsonl`), silentLogger);
    const service = new ShellService({ view, agents, audit, dns: null, logger: silentLogger });
    await service.simple(ALICE, 'restart', 'hooked');
    expect(activityOf(view)).toEqual(WORKING);
    await audit.settled();
  });
});

describe('what the view keeps of what the agents told', () => {
  it('counts a session gone while the link was down (missing at `synced`) as removed then', () => {
    const v = viewWithAgent('1.0', 'host');
    v.apply('agent-1', { type: 'session', session: stopped() });
    const since = v.mark();
    // The link came back: the agent's whole set no longer has the session.
    v.apply('agent-1', { type: 'hello', agent: 'agent-1', protocol: 1, version: '1.0', hostname: 'host', publishAddress: '127.0.0.1', capacity: { cpus: 1, memoryMb: 1024, maxSessions: null } });
    v.apply('agent-1', { type: 'synced', count: 0 });
    v.upsert('agent-1', replied(), since);
    expect(v.sessions().map((s) => s.id)).toEqual([]);
  });
});

describe("a delete's reply against the agent's trash", () => {
  const trashed = { id: ID, name: 'hooked', protocol: 'tcp' as const, port: 0, dns: '', deletedAt: '2026-12-03T08:00:00.000Z', deletedBy: 'alice', purgeAt: '2026-12-03T08:00:02.000Z' };

  it('does not put back an entry the agent purged after the delete went out', () => {
    const v = viewWithAgent('1.0', 'host');
    const since = v.mark();
    // The agent's trash after the delete, then after the purge: both overtook the reply.
    v.apply('agent-1', { type: 'trash', trash: [trashed] });
    v.apply('agent-1', { type: 'trash', trash: [] });
    v.setTrashed('agent-1', ID, trashed, since);
    expect(v.trash()).toEqual([]);
  });

  it('records it at once when the agent told nothing since', () => {
    const v = viewWithAgent('1.0', 'host');
    v.apply('agent-1', { type: 'trash', trash: [] });
    v.setTrashed('agent-1', ID, trashed, v.mark());
    expect(v.trash().map((t) => t.id)).toEqual([ID]);
  });
});
