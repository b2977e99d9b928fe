import { buildEntry, clampLimits, deriveState, needsRestart } from '../../agent/view';
import { cloneName } from '../../common/names';
import { ContainerSummary } from '../../agent/docker/runtime';
import { SessionMeta } from '../../common/protocol';
import { sessionJson, sessionRow, summary } from '../../shell/cli/format';
import type { ClusterSession } from '../../shell/cluster/view';

const meta: SessionMeta = {
  version: 1,
  id: '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
  name: 'web',
  protocol: 'tcp',
  port: 1001,
  dns: 'web',
  createdAt: '2026-01-01T00:00:00.000Z',
  lastAccessedAt: null,
  createdBy: 'alice',
};
const lock = { operator: 'bob', op: 'clone', since: '2026-01-01T00:00:00.000Z', stale: false };
const running = (applied: ContainerSummary['applied'] = { protocol: 'tcp', port: 1001, dns: 'web' }): ContainerSummary => ({
  id: 'c1',
  sessionId: meta.id,
  state: 'running',
  status: 'Up',
  applied,
});

describe('session state', () => {
  it('derives -, R, C and L', () => {
    expect(deriveState(false, 0, null)).toBe('-');
    expect(deriveState(true, 0, null)).toBe('R');
    expect(deriveState(true, 2, null)).toBe('C');
    expect(deriveState(false, 0, lock)).toBe('L');
    expect(deriveState(true, 0, lock)).toBe('R');
  });

  it('asks for a restart only when a running container differs from the metadata', () => {
    expect(needsRestart(meta, running(), 'bash')).toBe(false);
    expect(needsRestart(meta, running({ protocol: 'tcp', port: 1002, dns: 'web' }), 'bash')).toBe(true);
    expect(needsRestart(meta, running({ protocol: 'udp', port: 1001, dns: 'web' }), 'bash')).toBe(true);
    expect(needsRestart(meta, running({ protocol: 'tcp', port: 1001, dns: 'old' }), 'bash')).toBe(true);
    expect(needsRestart(meta, { ...running({ protocol: 'tcp', port: 9, dns: '' }), state: 'exited' }, 'bash')).toBe(false);
    expect(needsRestart(meta, null, 'bash')).toBe(false);
  });

  it('shows attached operators only while running', () => {
    const on = buildEntry('a1', { kind: 'ok', meta }, running(), ['alice', 'bob'], null, 'bash');
    expect(on).toMatchObject({ kind: 'session', state: 'C', attached: ['alice', 'bob'], container: { running: true } });
    const off = buildEntry('a1', { kind: 'ok', meta }, null, ['alice'], null, 'bash');
    expect(off).toMatchObject({ state: '-', attached: [], container: null });
  });

  it("carries the program's last report; a stopped container's program has exited, whatever it said", () => {
    const working = { state: 'working' as const, since: '2026-12-02T10:00:00.000Z', detail: 'Bash' };
    expect(buildEntry('a1', { kind: 'ok', meta }, running(), [], null, 'bash', working)).toMatchObject({ activity: working });
    expect(buildEntry('a1', { kind: 'ok', meta }, null, [], null, 'bash', working)).toMatchObject({ activity: { state: 'exited', since: working.since, detail: '' } });
    expect(buildEntry('a1', { kind: 'ok', meta }, null, [], null, 'bash')).toMatchObject({ activity: null });
  });

  it('says when a running container is paused (a clone copying it), and the shell shows it', () => {
    const paused = buildEntry('a1', { kind: 'ok', meta }, { ...running(), state: 'paused', status: 'Up 1 minute (Paused)' }, [], null, 'bash');
    expect(paused).toMatchObject({ state: 'R', container: { running: true, paused: true } });
    expect(buildEntry('a1', { kind: 'ok', meta }, running(), [], null, 'bash')).toMatchObject({ container: { paused: false } });
    const s = { id: meta.id, agent: 'a1', state: paused.state, entry: paused, offline: false } as unknown as ClusterSession;
    expect(sessionRow(s)[3]).toBe('R (paused)');
    expect(sessionJson(s)).toMatchObject({ state: 'running', paused: true });
    expect(summary('cloned', s)).toContain(': running, paused');
  });

  it('lists a broken session with its reason', () => {
    const e = buildEntry('a1', { kind: 'broken', id: meta.id, reason: 'session.json is not JSON' }, null, [], lock, 'bash');
    expect(e).toEqual({ kind: 'broken', agent: 'a1', id: meta.id, reason: 'session.json is not JSON', state: 'L', lock, container: null });
  });

  it('names clones within 64 characters', () => {
    expect(cloneName('web')).toBe('web-copy');
    expect(cloneName('x'.repeat(64))).toHaveLength(64);
  });
});

describe('limits', () => {
  it('caps the CPU limit at the host CPU count and leaves the rest', () => {
    expect(clampLimits({ cpus: 8, memoryMb: 512 }, 2)).toEqual({ cpus: 2, memoryMb: 512 });
    expect(clampLimits({ cpus: 1.5, pids: 100 }, 2)).toEqual({ cpus: 1.5, pids: 100 });
    expect(clampLimits({ memoryMb: 512 }, 2)).toEqual({ memoryMb: 512 });
  });
});
