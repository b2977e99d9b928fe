/**
 * The audit log as both doors write it: the menu's keys (driven without a terminal) and the exec
 * CLI, over a real ShellService and a real AuditLog writing to a temporary file. Every refusal is
 * a record, the same whichever door; no record grows with what an operator typed.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../../common/errors';
import { silentLogger } from '../../common/logging';
import { RpcOp, RpcResult, SessionEntry } from '../../common/protocol';
import { AuditLog, ID_MAX, TEXT_MAX } from '../../shell/audit';
import { Agents } from '../../shell/agents/pool';
import { runCommand } from '../../shell/cli/commands';
import { ClusterView } from '../../shell/cluster/view';
import { Operator, ShellService } from '../../shell/service';
import { MenuContext } from '../../shell/ui/menu-actions';
import { dispatch } from '../../shell/ui/menu-keys';
import { viewEntry } from '../helpers/entries';
import { rawChars, viewWithAgent } from '../helpers/raw-text';

const ID = '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const VIC: Operator = { name: 'vic', role: 'viewer' };
const ALICE: Operator = { name: 'alice', role: 'admin' };
/** What no record may grow past, whatever went into it. */
const LINE_MAX = 4096;

function web(state: SessionEntry['state'] = 'R'): SessionEntry {
  return viewEntry({ id: ID, name: 'web', port: 1001, dns: 'webdns', state });
}

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-audit-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A service over one online agent holding `web` (or none); the agent refuses every call it gets. */
function setup(o: { online?: boolean } = {}) {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.jsonl`);
  const audit = new AuditLog(file, silentLogger);
  const view = o.online === false ? new ClusterView() : viewWithAgent('1.0', 'host');
  if (o.online !== false) view.apply('agent-1', { type: 'session', session: web() });
  const asked: string[] = [];
  const agents: Agents = {
    call: (_agent, op) => (asked.push(op), Promise.reject(new BerthError('CONFLICT', 'the agent says no'))),
    attach: (_agent, p) => (asked.push(p.readOnly ? 'attach read-only' : 'attach'), Promise.reject(new BerthError('CONFLICT', 'the agent says no'))),
    addressOf: () => null,
  };
  const service = new ShellService({ view, agents, audit, dns: null, logger: silentLogger });
  /** The lines written so far, parsed, the timestamp checked and left out. */
  const lines = async (): Promise<Array<Record<string, unknown>>> => {
    await audit.settled();
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const { ts, ...rest } = JSON.parse(l) as Record<string, unknown>;
        expect(Number.isNaN(Date.parse(String(ts)))).toBe(false);
        return rest;
      });
  };
  const raw = async (): Promise<string> => (await audit.settled(), fs.readFile(file, 'utf8'));
  return { service, agents, asked, lines, raw };
}

/** The menu's keys over the real service: what the status line said, and what the keys opened. */
function menu(service: ShellService, operator: Operator) {
  const said: string[] = [];
  const opened: string[] = [];
  const runs: Array<Promise<string>> = [];
  const ctx: MenuContext = {
    operator,
    service,
    dialogs: {
      form: (title) => opened.push(title),
      picker: (title) => opened.push(title),
      confirm: (question) => opened.push(question),
      page: (title) => opened.push(title),
    },
    pageRows: () => 19,
    move: () => undefined,
    startFilter: () => undefined,
    attach: () => undefined,
    say: (text) => said.push(text),
    run: (_label, fn) => runs.push(fn()),
    quit: () => undefined,
  };
  const press = (k: string, selected = service.view.sessions()[0]): void => dispatch(ctx, k, { name: k.toLowerCase() }, selected);
  return { press, said, opened, runs };
}

async function cli(service: ShellService, operator: Operator, line: string): Promise<{ code: number; err: string }> {
  let err = '';
  const r = await runCommand(line, operator, service, { out: () => undefined, err: (s) => (err += s) });
  return { code: r.code, err };
}

const refusedByRole = (op: string, session = true) => ({
  operator: 'vic',
  op,
  ...(session ? { session: ID, agent: 'agent-1' } : {}),
  result: 'refused',
  code: 'FORBIDDEN',
  message: `vic is a viewer and may not ${op}`,
});

describe('refusals in the menu', () => {
  it('a viewer pressing K, D, E, C, R, N, O or B: one refused record each, and no agent asked', async () => {
    const { service, asked, lines } = setup();
    const m = menu(service, VIC);
    for (const k of ['K', 'D', 'E', 'C', 'R', 'N', 'O', 'B']) m.press(k);
    expect(m.said).toEqual(['kill', 'delete', 'edit', 'clone', 'restart', 'create', 'override', 'background'].map((w) => `vic is a viewer and may not ${w}`));
    expect(m.opened).toEqual([]);
    expect(m.runs).toEqual([]);
    expect(asked).toEqual([]);
    expect(await lines()).toEqual([
      refusedByRole('kill'),
      refusedByRole('delete'),
      refusedByRole('edit'),
      refusedByRole('clone'),
      refusedByRole('restart'),
      refusedByRole('create', false),
      refusedByRole('override'),
      refusedByRole('background'),
    ]);
  });

  it('records the same refusals as the CLI, field for field', async () => {
    const viaMenu = setup();
    const m = menu(viaMenu.service, VIC);
    const viaCli = setup();
    const commands: Array<[string, string]> = [
      ['K', 'kill web'],
      ['D', 'delete web --yes'],
      ['E', 'edit web --port 0'],
      ['C', 'clone web'],
      ['R', `restart ${ID.slice(0, 8)}`],
      ['N', 'create --name other'],
      ['O', 'override web --reason because'],
      ['B', `background ${ID}`],
    ];
    for (const [key, line] of commands) {
      m.press(key);
      expect(await cli(viaCli.service, VIC, line)).toEqual({ code: 1, err: expect.stringMatching(/^error: FORBIDDEN: vic is a viewer and may not /) });
    }
    const fromCli = await viaCli.lines();
    expect(fromCli).toHaveLength(commands.length);
    expect(await viaMenu.lines()).toEqual(fromCli);
  });

  it('records what the menu refuses by itself as the op’s refusal: O on an unlocked session, N with no agent online', async () => {
    const { service, asked, lines } = setup();
    menu(service, ALICE).press('O');
    const offline = setup({ online: false });
    const n = menu(offline.service, ALICE);
    n.press('N', undefined);
    expect(n.said).toEqual(['no agent is online']);
    expect(asked).toEqual([]);
    expect(await lines()).toEqual([{ operator: 'alice', op: 'override', session: ID, agent: 'agent-1', result: 'refused', code: 'CONFLICT', message: 'web is not locked' }]);
    expect(await offline.lines()).toEqual([{ operator: 'alice', op: 'create', result: 'refused', code: 'AGENT_OFFLINE', message: 'no agent is online' }]);
    // The CLI's create finds no agent either, and says so the same way.
    expect(await cli(offline.service, ALICE, 'create --name x')).toEqual({ code: 1, err: 'error: AGENT_OFFLINE: no agent is online\n' });
    expect((await offline.lines())[1]).toEqual((await offline.lines())[0]);
  });

  it('records nothing for a key the role allows until the op itself is done (then once)', async () => {
    const { service, lines } = setup();
    const m = menu(service, { name: 'bob', role: 'operator' });
    m.press('K');
    await expect(m.runs[0]).rejects.toThrow('the agent says no');
    expect(await lines()).toEqual([{ operator: 'bob', op: 'kill', session: ID, agent: 'agent-1', result: 'refused', code: 'CONFLICT', message: 'the agent says no' }]);
  });
});

describe('refused attaches', () => {
  it('a viewer’s read-write attach is made read-only, never refused; an unknown REF or an agent’s refusal is recorded', async () => {
    const { service, asked, lines } = setup();
    await expect(service.attach(VIC, 'web', false, 80, 24)).rejects.toThrow('the agent says no');
    await expect(service.attach(ALICE, 'nope', false, 80, 24)).rejects.toThrow('no session matches "nope"');
    expect(asked).toEqual(['attach read-only']);
    expect(await lines()).toEqual([
      { operator: 'vic', op: 'attach', session: ID, agent: 'agent-1', result: 'refused', code: 'CONFLICT', message: 'the agent says no' },
      { operator: 'alice', op: 'attach', result: 'refused', code: 'NOT_FOUND', message: 'no session matches "nope"', detail: { ref: 'nope' } },
    ]);
  });

  it('a read-write attach the role does not allow, checked up front, is recorded as an attach', async () => {
    const { service, lines } = setup();
    expect(() => service.check(VIC, 'attach-write', 'web')).toThrow('vic is a viewer and may not attach read-write');
    expect(await lines()).toEqual([{ ...refusedByRole('attach'), message: 'vic is a viewer and may not attach read-write' }]);
  });
});

describe('bounded records', () => {
  const HUGE_REF = `r${'x'.repeat(29_999)}`;

  it('a 30,000-character REF makes one record under the cap, the REF in it once', async () => {
    const { service, raw, lines } = setup();
    expect((await cli(service, VIC, `kill ${HUGE_REF}`)).code).toBe(1);
    const text = await raw();
    expect(text.split('\n')).toHaveLength(2); // one line, then '' after its newline
    expect(Buffer.byteLength(text)).toBeLessThan(LINE_MAX);
    expect(text.split(HUGE_REF.slice(0, 50))).toHaveLength(2);
    const [rec] = await lines();
    expect(rec).toEqual({ operator: 'vic', op: 'kill', result: 'refused', code: 'NOT_FOUND', message: 'no session matches "{ref}"', detail: { ref: expect.stringMatching(/^rx+…$/) } });
    const bytes = Buffer.byteLength((rec?.detail as { ref: string }).ref);
    expect(bytes).toBeLessThanOrEqual(ID_MAX);
    expect(bytes).toBeGreaterThan(ID_MAX - 3); // the cut ends in '…', three bytes
  });

  it('an agent name typed too long is written once too', async () => {
    const { service, raw } = setup();
    const agent = `a${'g'.repeat(29_999)}`;
    expect((await cli(service, ALICE, `create --name x --agent ${agent}`)).err).toMatch(/^error: NOT_FOUND: no agent named ag+/);
    const text = await raw();
    expect(Buffer.byteLength(text)).toBeLessThan(LINE_MAX);
    expect(text.split(agent.slice(0, 50))).toHaveLength(2);
    expect(JSON.parse(text)).toMatchObject({ agent: expect.stringMatching(/^ag+…$/), message: 'no agent named {agent}' });
  });

  it('keeps every field bounded and inert, whatever the bytes, as valid JSON lines', async () => {
    const { service, agents, raw } = setup();
    const wide = '\u{1F469}\u200D\u{1F4BB}"\\'; // an emoji sequence (4 + 3 + 4 bytes), a quote, a backslash
    const hostile = `\u001b]52;c;eA==\u0007\u009b6n\u202e\u2028${wide.repeat(5_000)}`;
    // A ref and a reason from the operator, a message from an agent, all hostile and huge.
    await expect(service.simple(ALICE, 'kill', hostile)).rejects.toThrow();
    agents.call = () => Promise.reject(new BerthError('CONFLICT', `${hostile}\nsecond line`));
    await expect(service.simple(ALICE, 'override', 'web', hostile)).rejects.toThrow();
    agents.call = <O extends RpcOp>() => Promise.resolve(web('C') as RpcResult<O>);
    await service.simple(ALICE, 'override', 'web', hostile);
    const text = await raw();
    const records = text.split('\n').filter(Boolean);
    expect(records).toHaveLength(3);
    for (const line of records) {
      expect(Buffer.byteLength(line)).toBeLessThan(LINE_MAX);
      expect(rawChars(line)).toEqual([]);
      const r = JSON.parse(line) as { message?: string; detail?: { ref?: string; reason?: string } };
      for (const [v, max] of [
        [r.message, TEXT_MAX],
        [r.detail?.ref, ID_MAX],
        [r.detail?.reason, TEXT_MAX],
      ] as const) {
        if (v !== undefined) expect(Buffer.byteLength(JSON.stringify(v)) - 2).toBeLessThanOrEqual(max);
      }
    }
    const [lost, refused, ok] = records.map((l) => JSON.parse(l) as Record<string, Record<string, string> & { message: string }>);
    expect(lost?.detail?.ref?.startsWith('\\x1b]52;c;eA==\\x07\\x9b6n\\u202e\\u2028\u{1F469}\u200D\u{1F4BB}"\\')).toBe(true);
    expect(lost?.message).toBe('no session matches "{ref}"');
    expect(refused?.message).toMatch(/^\\x1b]52;c;eA==.*…$/);
    expect(ok).toMatchObject({ result: 'ok', detail: { reason: expect.stringMatching(/^\\x1b]52;c;eA==.*…$/) } });
    expect(lost?.detail?.ref?.endsWith('…')).toBe(true);
  });

  it('writes records in the order they were made', async () => {
    const { service, lines } = setup();
    const m = menu(service, VIC);
    for (const k of ['D', 'R', 'K', 'E', 'C']) m.press(k); // each recorded without waiting for the one before
    await cli(service, VIC, 'kill web');
    expect((await lines()).map((r) => r.op)).toEqual(['delete', 'restart', 'kill', 'edit', 'clone', 'kill']);
  });
});
