/**
 * An op the agent does not answer in time: the operator is told the outcome is unknown and how to
 * get it, the audit says `unknown` with the op id, and the shell goes on waiting: the late
 * outcome is recorded under the same op id and shown in the view. A retry with `--op-id` sends
 * the same op id, so the agent does the op once.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../../common/errors';
import { silentLogger } from '../../common/logging';
import { SessionEntry } from '../../common/protocol';
import { AuditLog } from '../../shell/audit';
import { Agents, CallOptions } from '../../shell/agents/pool';
import { runCommand } from '../../shell/cli/commands';
import { Operator, ShellService } from '../../shell/service';
import { viewEntry } from '../helpers/entries';
import { viewWithAgent } from '../helpers/raw-text';
import { until } from '../helpers/wait';

const SRC = '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const COPY = '9a8b7c6d-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const ALICE: Operator = { name: 'alice', role: 'admin' };

const entry = (id: string, name: string): SessionEntry => viewEntry({ id, name });

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-outcome-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

/**
 * An agent that times out the first clone call of each op id, then answers the same id late
 * (once `late` settles, if given).
 */
function setup(late: Promise<void> = Promise.resolve()) {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.jsonl`);
  const audit = new AuditLog(file, silentLogger);
  const view = viewWithAgent('1.0', 'host');
  view.apply('agent-1', { type: 'session', session: entry(SRC, 'src') });
  const calls: Array<{ op: string; opts: CallOptions | undefined }> = [];
  const seen = new Set<string>();
  const agents: Agents = {
    call: (async (_agent: string, op: string, _params: unknown, _operator: string, opts?: CallOptions) => {
      calls.push({ op, opts });
      const id = opts?.opId ?? '';
      if (!seen.has(id)) {
        seen.add(id);
        throw new BerthError('TIMEOUT', `agent agent-1 did not answer ${op} within 10000 ms`);
      }
      await late;
      return entry(COPY, 'src-copy');
    }) as Agents['call'],
    attach: () => Promise.reject(new BerthError('CONFLICT', 'no')),
    addressOf: () => null,
  };
  const service = new ShellService({ view, agents, audit, dns: null, logger: silentLogger });
  const lines = async (): Promise<Array<Record<string, unknown>>> => {
    await audit.settled();
    return (await fs.readFile(file, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { service, view, calls, lines };
}

test('a timed-out op says the outcome is unknown and how to get it; the late outcome reaches the audit and the view', async () => {
  const { service, view, calls, lines } = setup();
  const err = await service.clone(ALICE, SRC).then(
    () => null,
    (e: unknown) => e as BerthError,
  );
  expect(err?.code).toBe('TIMEOUT');
  const opId = calls[0]?.opts?.opId ?? '';
  expect(opId).toMatch(/^[0-9a-f-]{36}$/);
  expect(err?.message).toContain('the outcome is unknown');
  expect(err?.message).toContain(`--op-id ${opId}`);
  // The shell goes on waiting, with the same op id and a long bound.
  expect(calls[1]).toEqual({ op: 'clone', opts: { opId, timeoutMs: 30 * 60 * 1000 } });
  const recs = await until('the late outcome is recorded', lines, (l) => l.length === 2, 5000, 20);
  expect(recs[0]).toMatchObject({ operator: 'alice', op: 'clone', result: 'unknown', code: 'TIMEOUT', detail: { opId } });
  expect(recs[1]).toMatchObject({ operator: 'alice', op: 'clone', result: 'ok', session: SRC, detail: { opId, late: true } });
  expect(view.sessions().map((s) => s.id).sort()).toEqual([SRC, COPY].sort());
});

test('--op-id is sent with the op, so a retry gets the first outcome; a bad one is a usage error', async () => {
  const { service, calls } = setup();
  const io = { out: (_s: string) => undefined, err: (_s: string) => undefined };
  // The retry of an op whose first attempt timed out: the agent answers this id at once.
  await runCommand('clone src --op-id retry-0001', ALICE, service, io);
  expect(calls.map((c) => c.opts?.opId)).toEqual(['retry-0001', 'retry-0001']);
  // A command that names its op id waits longer for the outcome than the usual bound.
  expect(calls[0]?.opts?.timeoutMs).toBe(2 * 60 * 1000);
  let usage = '';
  expect(await runCommand('kill src --op-id no', ALICE, service, { out: () => undefined, err: (s) => (usage += s) })).toEqual({ code: 2 });
  expect(usage).toContain('--op-id must be 8-64 letters, digits, - or _');
  // Without --op-id every command gets its own.
  await runCommand('restart src', ALICE, service, io);
  const ids = calls.slice(2).map((c) => c.opts?.opId);
  expect(new Set(ids).size).toBe(1);
  expect(ids[0]).not.toBe('retry-0001');
});

test('ops lists what the shell still waits for, until the late outcome comes', async () => {
  let answer: () => void = () => undefined;
  // The late answer is held until the test lets it go.
  const { service, calls, lines } = setup(new Promise<void>((r) => (answer = r)));
  await expect(service.clone(ALICE, SRC)).rejects.toMatchObject({ code: 'TIMEOUT' });
  const opId = calls[0]?.opts?.opId ?? '';
  let out = '';
  const io = { out: (s: string) => (out += s), err: (_s: string) => undefined };
  expect(await runCommand('ops --json', ALICE, service, io)).toEqual({ code: 0 });
  expect(JSON.parse(out)).toEqual({ running: [], waiting: [{ opId, op: 'clone', operator: 'alice', agent: 'agent-1', session: SRC, since: expect.any(String) }] });
  out = '';
  await runCommand('ops', { name: 'vic', role: 'viewer' }, service, io);
  expect(out).toContain(opId);
  answer();
  await until('the late outcome is recorded', lines, (l) => l.length === 2, 5000, 20);
  out = '';
  await runCommand('ops', ALICE, service, io);
  expect(out).toBe('no op is running or waiting for its outcome\n');
});
