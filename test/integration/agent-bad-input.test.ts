/**
 * What a real agent does with bad input: invalid params name their field and touch nothing,
 * malformed frames get an error reply and leave the channel usable, corrupt session files mark
 * only that session broken, and the SSH server lets nothing in but the berth subsystems.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { type ClientChannel } from 'ssh2';
import { AgentClient, connectAgent, makeShellKey, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import type { RpcReply, SessionEntry, SessionView } from '../../common/protocol';

const runLabel = `badin-${randomUUID().slice(0, 8)}`;
let agent: AgentProcess;
let client: AgentClient;

const idOf = (e: SessionEntry): string => (e.kind === 'session' ? e.meta.id : e.id);

/** Sends a request and expects BAD_REQUEST whose message names `field`. */
async function expectBadRequest(op: string, params: unknown, field: string, extra: Record<string, unknown> = {}): Promise<RpcReply> {
  const r = await client.request(op, params, 'alice', extra);
  expect({ op, params, ok: r.ok }).toEqual({ op, params, ok: false });
  if (r.ok) throw new Error('unreachable');
  expect({ op, params, code: r.error.code }).toEqual({ op, params, code: 'BAD_REQUEST' });
  expect(r.error.message).toContain(field);
  return r;
}

/** Waits (bounded) for a reply without an id, starting at index `from`. */
async function orphanReply(from: number, timeoutMs = 5000): Promise<RpcReply> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = client.orphanReplies[from];
    if (r) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error(`no id-less reply in ${timeoutMs} ms`);
}

/** Makes one ssh2 client request and resolves with how it ended: the error text, ACCEPTED or TIMEOUT. */
function outcome(start: (cb: (err: Error | undefined, ch?: ClientChannel) => void) => void): Promise<string> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('TIMEOUT'), 5000);
    start((err, ch) => {
      clearTimeout(t);
      ch?.close();
      resolve(err ? err.message : 'ACCEPTED');
    });
  });
}

const rootEntries = async (): Promise<string[]> => (await fs.readdir(agent.root)).sort();

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  client = await agent.connect();
});

afterAll(async () => {
  await agent?.dispose();
});

describe('invalid params: BAD_REQUEST naming the field, nothing on disk', () => {
  test('create with a bad name, port, protocol or dns', async () => {
    const before = await rootEntries();
    for (const name of ['', 'x'.repeat(65), 'a b', '../x', 'a/b', 42]) await expectBadRequest('create', { name }, 'name');
    await expectBadRequest('create', {}, 'name');
    for (const port of [70000, 1.5, -2, '80', 65536]) await expectBadRequest('create', { name: 'ok', port }, 'port');
    for (const protocol of ['sctp', 'TCP', '']) await expectBadRequest('create', { name: 'ok', protocol }, 'protocol');
    for (const dns of ['UPPER', '-x', 'a.b', 'x-', 'y'.repeat(64)]) await expectBadRequest('create', { name: 'ok', dns }, 'dns');
    expect(await rootEntries()).toEqual(before);
    expect((await client.call('list', {})).sessions).toEqual([]);
  });

  test('edit with bad values is refused and leaves the session as it was', async () => {
    const s = view(await client.call('create', { name: 'target' }));
    await expectBadRequest('edit', { session: s.meta.id, name: 'a b' }, 'name');
    await expectBadRequest('edit', { session: s.meta.id, port: 70000 }, 'port');
    await expectBadRequest('edit', { session: s.meta.id, protocol: 'sctp' }, 'protocol');
    await expectBadRequest('edit', { session: s.meta.id, dns: 'a.b' }, 'dns');
    await expectBadRequest('clone', { session: s.meta.id, name: '../x' }, 'name');
    expect(view(await client.call('get', { session: s.meta.id })).meta).toEqual(s.meta);
    expect(await client.call('delete', { session: s.meta.id })).toMatchObject({ id: s.meta.id });
  });

  test('bad and path-like session ids for every op that takes one', async () => {
    const before = await rootEntries();
    const ids = ['', 'nope', '../x', '../../etc', '/etc/passwd', randomUUID().toUpperCase(), `${randomUUID()}/..`, 7];
    for (const op of ['get', 'edit', 'clone', 'restart', 'kill', 'background', 'delete', 'override']) {
      for (const session of ids) await expectBadRequest(op, { session }, 'session');
      await expectBadRequest(op, {}, 'session');
    }
    expect(await rootEntries()).toEqual(before);
    // The agent's parent directories are untouched too.
    expect((await fs.readdir(agent.dir)).sort()).toEqual(expect.arrayContaining(['agent.json', 'sessions', 'state']));
  });

  test('unknown op, unknown field, wrong protocol version, bad operator', async () => {
    const op = await expectBadRequest('explode', {}, 'op');
    expect(op.id).not.toBeNull();
    await expectBadRequest('create', { name: 'x', color: 'red' }, 'color');
    await expectBadRequest('list', { all: true }, 'all');
    await expectBadRequest('list', {}, 'protocol version 2', { v: 2 });
    await expectBadRequest('list', {}, 'v', { v: '1' });
    await expectBadRequest('list', {}, 'operator', { operator: 'Not A User' });
    expect((await client.call('list', {})).sessions).toEqual([]);
    // Beside the agent's own files, only the trash the earlier delete made.
    expect((await rootEntries()).filter((n) => n !== '.trash')).toEqual(['.agent.pid', '.berth-layout']);
  });
});

describe('malformed frames keep the channel usable', () => {
  test('a line that is not JSON gets an id-less error and the same channel answers next', async () => {
    const ch = await client.rpcRaw();
    const from = client.orphanReplies.length;
    ch.write('this is {not json\n');
    const r = await orphanReply(from);
    expect(r).toMatchObject({ id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    expect(await client.call('list', {})).toEqual({ sessions: [] });

    ch.write('[1,2,3]\n"just a string"\n');
    expect(await orphanReply(from + 1)).toMatchObject({ id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    expect(await orphanReply(from + 2)).toMatchObject({ id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    expect(await client.call('stats', {})).toMatchObject({ sessions: 0 });
  });

  test('a frame over 64 KiB gets an error and the channel keeps working', async () => {
    const ch = await client.rpcRaw();
    const from = client.orphanReplies.length;
    const huge = JSON.stringify({ v: 1, id: 'huge', op: 'create', operator: 'alice', params: { name: 'x'.repeat(70 * 1024) } });
    // Written in pieces, as a slow or large sender would.
    for (let i = 0; i < huge.length; i += 16 * 1024) ch.write(huge.slice(i, i + 16 * 1024));
    ch.write('\n');
    const r = await orphanReply(from);
    expect(r).toMatchObject({ id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    if (!r.ok) expect(r.error.message).toContain('65536');
    const made = view(await client.call('create', { name: 'after-huge' }));
    expect(made.meta.name).toBe('after-huge');
    expect(client.orphanReplies.length).toBe(from + 1);
    await client.call('delete', { session: made.meta.id });
  });
});

describe('corrupt session files', () => {
  const corrupt = async (garbage: SessionView, wrongField: SessionView): Promise<void> => {
    await fs.writeFile(path.join(agent.root, garbage.meta.id, 'session.json'), '{"id": oops \u0000 not json');
    await fs.writeFile(path.join(agent.root, wrongField.meta.id, 'session.json'), JSON.stringify({ ...wrongField.meta, port: 'x' }));
  };

  const expectBrokenList = async (good: SessionView[], garbage: string, wrongField: string, bare: string): Promise<void> => {
    const { sessions } = await client.call('list', {});
    const byId = new Map(sessions.map((e) => [idOf(e), e]));
    expect(byId.size).toBe(good.length + 3);
    for (const g of good) expect(byId.get(g.meta.id)).toMatchObject({ kind: 'session', meta: g.meta, state: '-' });
    expect(byId.get(garbage)).toMatchObject({ kind: 'broken', id: garbage, reason: expect.stringContaining('not valid JSON') });
    expect(byId.get(wrongField)).toMatchObject({ kind: 'broken', id: wrongField, reason: expect.stringContaining('port') });
    expect(byId.get(bare)).toMatchObject({ kind: 'broken', id: bare, reason: expect.stringContaining('missing') });
  };

  const deleteBroken = async (good: SessionView[], ids: string[]): Promise<void> => {
    for (const id of ids) {
      expect(await client.call('delete', { session: id })).toEqual({ id });
      expect(await fs.stat(path.join(agent.root, id)).then(() => true, () => false)).toBe(false);
    }
    const after = (await client.call('list', {})).sessions;
    expect(after.map(idOf).sort()).toEqual(good.map((g) => g.meta.id).sort());
    expect(after.every((e) => e.kind === 'session')).toBe(true);
  };

  test('a session.json corrupted while the agent runs: that one session reads as broken, delete still works', async () => {
    const good1 = view(await client.call('create', { name: 'good-1' }));
    const garbage = view(await client.call('create', { name: 'garbage' }));
    const wrongField = view(await client.call('create', { name: 'wrong-field' }));
    const good2 = view(await client.call('create', { name: 'good-2' }));
    await corrupt(garbage, wrongField);
    // A folder with a uuid name but no session.json at all.
    const bare = randomUUID();
    await fs.mkdir(path.join(agent.root, bare));

    // get reads session.json afresh.
    expect(await client.call('get', { session: garbage.meta.id })).toMatchObject({ kind: 'broken', id: garbage.meta.id });
    expect(await client.call('get', { session: wrongField.meta.id })).toMatchObject({ kind: 'broken', id: wrongField.meta.id });
    await expectBrokenList([good1, good2], garbage.meta.id, wrongField.meta.id, bare);

    for (const op of ['edit', 'clone', 'restart'] as const) {
      const r = await client.request(op, op === 'edit' ? { session: garbage.meta.id, name: 'fixed' } : { session: garbage.meta.id });
      expect({ op, ok: r.ok, code: r.ok ? null : r.error.code }).toEqual({ op, ok: false, code: 'CONFLICT' });
    }
    expect((await client.call('get', { session: good1.meta.id })).kind).toBe('session');
    await deleteBroken([good1, good2], [garbage.meta.id, wrongField.meta.id, bare]);
  });

  test('an agent starting on a root with corrupt session files serves, listing them as broken', async () => {
    const good = view(await client.call('create', { name: 'good-3' }));
    const garbage = view(await client.call('create', { name: 'garbage-2' }));
    const wrongField = view(await client.call('create', { name: 'wrong-field-2' }));
    client.close();
    await agent.stop();
    await corrupt(garbage, wrongField);
    const bare = randomUUID();
    await fs.mkdir(path.join(agent.root, bare));
    agent = await startAgentProcess({ runLabel, dir: agent.dir, id: agent.id });
    client = await agent.connect();

    const prior = (await client.call('list', {})).sessions.filter((e) => e.kind === 'session').map(view);
    expect(prior.map((e) => e.meta.id)).toContain(good.meta.id);
    await expectBrokenList(prior, garbage.meta.id, wrongField.meta.id, bare);
    await deleteBroken(prior, [garbage.meta.id, wrongField.meta.id, bare]);
  });
});

describe('the SSH server', () => {
  test('refuses exec, shell, pty and unknown subsystems, and keeps serving', async () => {
    const c = await agent.connect();
    try {
      expect(await outcome((cb) => c.conn.exec('id', cb))).toBe('Unable to exec');
      expect(await outcome((cb) => c.conn.exec('id', { pty: true }, cb))).toBe('Unable to request a pseudo-terminal');
      expect(await outcome((cb) => c.conn.shell(false, cb))).toBe('Unable to open shell');
      expect(await outcome((cb) => c.conn.shell(cb))).toBe('Unable to request a pseudo-terminal');
      expect(await outcome((cb) => c.conn.subsys('sftp', cb))).toBe('Unable to start subsystem: sftp');
      expect(await outcome((cb) => c.conn.subsys('berth-nope', cb))).toBe('Unable to start subsystem: berth-nope');
      // The same connection still opens the berth subsystems.
      expect(await outcome((cb) => c.conn.subsys('berth-rpc', cb))).toBe('ACCEPTED');
      expect(await c.call('stats', {})).toMatchObject({ cpus: expect.any(Number) });
    } finally {
      c.close();
    }
  });

  test('refuses a key it was not told to trust', async () => {
    const stranger = makeShellKey();
    await expect(connectAgent({ port: agent.port, privateKey: stranger.private, fingerprint: agent.fingerprint })).rejects.toThrow(
      /authentication/i,
    );
    const refused = (l: string): boolean => l.includes('"message":"login failed"') && l.includes('"why":"unknown key"');
    const deadline = Date.now() + 3000;
    while (!agent.logs.some(refused) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(agent.logs.some(refused)).toBe(true);
    expect(await client.call('stats', {})).toMatchObject({ cpus: expect.any(Number) });
  });
});
