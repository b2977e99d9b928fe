import { ClusterView } from '../../shell/cluster/view';
import { resolveRef } from '../../shell/cluster/refs';
import { may } from '../../shell/roles';
import { HelloEvent, SessionEntry } from '../../common/protocol';

const hello = (agent: string): HelloEvent => ({
  type: 'hello',
  agent,
  protocol: 1,
  version: '0.1.0',
  hostname: 'h',
  publishAddress: '127.0.0.1',
  capacity: { cpus: 2, memoryMb: 1000, maxSessions: null },
});

function session(agent: string, id: string, name: string, over: Partial<SessionEntry> = {}): SessionEntry {
  return {
    kind: 'session',
    agent,
    meta: { version: 1, id, name, protocol: 'tcp', port: 0, dns: '', createdAt: `2026-01-01T00:00:0${id[0]}.000Z`, lastAccessedAt: null, createdBy: 'a' },
    state: '-',
    attached: [],
    lock: null,
    container: null,
    restartNeeded: false,
    ...over,
  } as SessionEntry;
}

const ID1 = '11111111-1111-4111-8111-111111111111';
const ID2 = '22222222-2222-4222-8222-222222222222';
const ID3 = '23333333-3333-4333-8333-333333333333';

describe('ClusterView', () => {
  it('keeps one sorted list of sessions until the next change, whatever the change', () => {
    const v = new ClusterView();
    v.addAgent('a1');
    v.setStatus('a1', 'online', '');
    v.apply('a1', { type: 'session', session: session('a1', ID2, 'two') });
    const first = v.sessions();
    expect(v.sessions()).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    // A host figure is no change to the table; each of the others makes a new list.
    v.apply('a1', { type: 'stats', stats: { cpus: 2, load1: 0, memTotalMb: 1, memAvailableMb: 1, diskTotalMb: 1, diskFreeMb: 1 } } as never);
    expect(v.sessions()).toBe(first);
    const steps: Array<[string, () => void, (list: ReturnType<ClusterView['sessions']>) => unknown]> = [
      ['a session', () => v.apply('a1', { type: 'session', session: session('a1', ID1, 'one') }), (l) => l.map((s) => s.id)],
      ['an upsert', () => v.upsert('a1', session('a1', ID3, 'three'), v.mark()), (l) => l.map((s) => s.id)],
      ['offline', () => v.setStatus('a1', 'offline', 'gone'), (l) => l.map((s) => s.state)],
      ['a removal', () => v.apply('a1', { type: 'session-removed', id: ID1 }), (l) => l.map((s) => s.id)],
      ['a forget', () => v.forget('a1', ID3), (l) => l.map((s) => s.id)],
    ];
    const seen = steps.map(([what, change, pick]) => {
      const before = v.sessions();
      change();
      const after = v.sessions();
      expect({ what, same: after === before }).toEqual({ what, same: false });
      return pick(after);
    });
    expect(seen).toEqual([[ID1, ID2], [ID1, ID2, ID3], ['?', '?', '?'], [ID2, ID3], [ID2]]);
  });

  it('draws nothing for an event that repeats the entry it has (an op’s reply upserted first), and keeps that entry', () => {
    const v = new ClusterView();
    v.addAgent('a1');
    v.setStatus('a1', 'online', '');
    let changes = 0;
    v.on('change', () => changes++);
    const replied = session('a1', ID1, 'one');
    v.upsert('a1', replied, v.mark());
    const list = v.sessions();
    v.apply('a1', { type: 'session', session: JSON.parse(JSON.stringify(replied)) as SessionEntry });
    expect({ changes, same: v.sessions() === list, entry: v.sessions()[0]?.entry === replied }).toEqual({ changes: 1, same: true, entry: true });
    v.apply('a1', { type: 'session', session: session('a1', ID1, 'renamed') });
    expect({ changes, name: v.sessions().map((s) => (s.entry.kind === 'session' ? s.entry.meta.name : '')) }).toEqual({ changes: 2, name: ['renamed'] });
  });

  it('takes the sessions between hello and synced as the whole set, dropping ones gone meanwhile', () => {
    const v = new ClusterView();
    v.addAgent('a1');
    v.setStatus('a1', 'online', '');
    v.apply('a1', hello('a1'));
    v.apply('a1', { type: 'session', session: session('a1', ID1, 'one') });
    v.apply('a1', { type: 'session', session: session('a1', ID2, 'two') });
    v.apply('a1', { type: 'synced', count: 2 });
    expect(v.sessions().map((s) => s.id)).toEqual([ID1, ID2]);
    // Reconnect: the agent now has only ID2 (ID1 was deleted while the shell was away).
    v.setStatus('a1', 'offline', 'connection closed');
    v.setStatus('a1', 'online', '');
    v.apply('a1', hello('a1'));
    v.apply('a1', { type: 'session', session: session('a1', ID2, 'two') });
    expect(v.sessions()).toHaveLength(2); // the old set shows until the new one is complete
    v.apply('a1', { type: 'synced', count: 1 });
    expect(v.sessions().map((s) => s.id)).toEqual([ID2]);
  });

  it('shows an offline agent\'s sessions with their last data and state ?', () => {
    const v = new ClusterView();
    v.addAgent('a1');
    v.setStatus('a1', 'online', '');
    v.apply('a1', { type: 'session', session: session('a1', ID1, 'one', { state: 'R' }) });
    expect(v.sessions()[0]?.state).toBe('R');
    v.setStatus('a1', 'offline', 'keepalive timeout');
    expect(v.sessions()[0]).toMatchObject({ state: '?', agentStatus: 'offline' });
    expect(v.agent('a1')?.reason).toBe('keepalive timeout');
  });

  it('does not ask menus to redraw for host figures', () => {
    const v = new ClusterView();
    v.addAgent('a1');
    let changes = 0;
    let stats = 0;
    v.on('change', () => changes++);
    v.on('stats', () => stats++);
    v.apply('a1', { type: 'stats', stats: { cpus: 2, load1: 0, memoryTotalMb: 1, memoryFreeMb: 1, containersRunning: 0, sessions: 0 } });
    expect([changes, stats]).toEqual([0, 1]);
    expect(v.agent('a1')?.stats?.cpus).toBe(2);
  });

  it('emits change on every update and forgets removed sessions', () => {
    const v = new ClusterView();
    let changes = 0;
    v.on('change', () => changes++);
    v.addAgent('a1');
    v.apply('a1', { type: 'session', session: session('a1', ID1, 'one') });
    v.apply('a1', { type: 'session-removed', id: ID1 });
    expect(v.sessions()).toEqual([]);
    expect(changes).toBe(3);
  });
});

describe('resolveRef', () => {
  const v = new ClusterView();
  v.addAgent('a1');
  v.addAgent('a2');
  v.apply('a1', { type: 'session', session: session('a1', ID1, 'web') });
  v.apply('a2', { type: 'session', session: session('a2', ID2, 'web') });
  v.apply('a2', { type: 'session', session: session('a2', ID3, 'db') });
  const all = v.sessions();

  it('finds by full id, unique prefix of 4+ and unique name', () => {
    expect(resolveRef(ID1, all).id).toBe(ID1);
    expect(resolveRef('2333', all).id).toBe(ID3);
    expect(resolveRef('db', all).id).toBe(ID3);
  });

  it('lists the candidates when ambiguous', () => {
    expect(() => resolveRef('web', all)).toThrow(/ambiguous[\s\S]*11111111 web on a1[\s\S]*22222222 web on a2/);
    expect(() => resolveRef('2222', all)).not.toThrow();
    expect(() => resolveRef('2', all)).toThrow('needs at least 4 characters');
  });

  it('says NOT_FOUND for nothing', () => {
    expect(() => resolveRef('nope', all)).toThrow('no session matches "nope"');
  });
});

describe('roles', () => {
  it('lets viewers list and watch, operators work, admins also override', () => {
    expect(may('viewer', 'list') && may('viewer', 'attach')).toBe(true);
    expect(may('viewer', 'attach-write') || may('viewer', 'create')).toBe(false);
    expect(may('operator', 'delete') && may('operator', 'attach-write')).toBe(true);
    expect(may('operator', 'override')).toBe(false);
    expect(may('admin', 'override') && may('admin', 'manage-agents')).toBe(true);
  });
});
