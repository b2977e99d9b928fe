/**
 * The exec CLI's output with hostile values: what a session or an agent can influence (a broken
 * session's reason, an agent's error message, its note, version and hostname, attached names)
 * reaches the operator's terminal inert, in tables, summaries and the `error:` line, while
 * `--json` keeps every value exactly. Runs the real commands over a real ShellService whose agents
 * answer with hostile errors.
 */
import { BerthError } from '../../common/errors';
import { silentLogger } from '../../common/logging';
import { PROTOCOL_VERSION, SessionEntry } from '../../common/protocol';
import { BUILD } from '../../common/build-info';
import { AuditLog } from '../../shell/audit';
import { Agents } from '../../shell/agents/pool';
import { runCommand } from '../../shell/cli/commands';
import { MESSAGE_MAX, NOTE_MAX, agentJson, nameList, previewHeadline, sessionJson, sessionRow, summary, table, versionText } from '../../shell/cli/format';
import { ClusterSession } from '../../shell/cluster/view';
import { Operator, ShellService } from '../../shell/service';
import { rawChars, viewWithAgent } from '../helpers/raw-text';

const OSC_TITLE = '\u001b]0;pwned\u0007';
const OSC_CLIPBOARD = '\u001b]52;c;cm0gLXJmIH4=\u0007';
const CLEAR = '\u001b[2J\u001b[H';
const HOSTILE = `${OSC_TITLE}${CLEAR}\u009b6n\u202eexe.txt\nsecond line\r\t${OSC_CLIPBOARD}{bold}`;
const HOSTILE_SHOWN = '\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\x9b6n\\u202eexe.txt\\nsecond line\\r\\t\\x1b]52;c;cm0gLXJmIH4=\\x07{bold}';

const WEB = '11111111-aaaa-4bbb-8ccc-000000000001';
const BROKEN = '22222222-aaaa-4bbb-8ccc-000000000002';

function web(): Extract<SessionEntry, { kind: 'session' }> {
  return {
    kind: 'session',
    agent: 'agent-1',
    meta: { version: 1, id: WEB, name: 'web', protocol: 'tcp', port: 1001, dns: 'web', createdAt: '2026-01-01T00:00:00.000Z', lastAccessedAt: null, createdBy: HOSTILE },
    state: 'C',
    attached: ['alice', `bob${OSC_TITLE}`],
    lock: null,
    container: null,
    restartNeeded: false,
  };
}
const BROKEN_REASON = `session.json: unknown field "${HOSTILE}"`;
const broken: SessionEntry = { kind: 'broken', agent: 'agent-1', id: BROKEN, reason: BROKEN_REASON, state: '-', lock: null, container: null };

/** A cluster of one agent whose hello, note and sessions carry hostile text, and whose every call fails with `error`. */
function setup(error = new BerthError('CONFLICT', `session is broken (${BROKEN_REASON}); only kill and delete work on it`)) {
  const view = viewWithAgent(`1.0${OSC_TITLE}`, `host${CLEAR}`);
  view.apply('agent-1', { type: 'session', session: web() });
  view.apply('agent-1', { type: 'session', session: broken });
  view.apply('agent-1', { type: 'synced', count: 2 });
  view.apply('agent-1', { type: 'error', error: { code: 'INTERNAL', message: HOSTILE } });
  const agents: Agents = {
    call: () => Promise.reject(error),
    attach: () => Promise.reject(error),
    addressOf: () => null,
  };
  const service = new ShellService({ view, agents, audit: new AuditLog('/dev/null', silentLogger), dns: null, logger: silentLogger });
  return { view, service };
}

async function run(line: string, o: { operator?: Operator; error?: BerthError } = {}) {
  const { service } = setup(o.error);
  let out = '';
  let err = '';
  const outcome = await runCommand(line, o.operator ?? { name: 'alice', role: 'admin' }, service, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code: outcome.code, out, err };
}

const clusterSession = (entry: SessionEntry): ClusterSession => ({ entry, id: entry.kind === 'session' ? entry.meta.id : entry.id, agent: entry.agent, agentStatus: 'online', state: entry.state });

describe('tables', () => {
  it('show a broken reason, attached names and an agent note inert, on one line each, bounded', async () => {
    const { out, code } = await run('list');
    expect(code).toBe(0);
    expect(rawChars(out, { lines: true })).toEqual([]);
    const lines = out.split('\n');
    expect(lines).toHaveLength(4); // head, two rows, '' after the last newline
    expect(lines[0]).toMatch(/^# +NAME +AGENT/);
    const brokenLine = lines.find((l) => l.startsWith('22222222')) ?? '';
    const reason = /\(broken: (.*)\) +agent-1 /.exec(brokenLine)?.[1] ?? '';
    // Cut at the bound, or just short of it where the next escape would not fit whole.
    expect([...reason].length).toBeLessThanOrEqual(NOTE_MAX);
    expect([...reason].length).toBeGreaterThan(NOTE_MAX - 6);
    expect(reason.endsWith('…')).toBe(true);
    expect(`session.json: unknown field "${HOSTILE_SHOWN}"`.startsWith(reason.slice(0, -1))).toBe(true);
    expect(lines.find((l) => l.startsWith('11111111'))).toContain('alice,bob\\x1b]0;pwned\\x07');
    // The columns still line up: AGENT starts at the same place on every line.
    const at = lines[0]?.indexOf('AGENT');
    expect(lines.slice(1, 3).map((l) => l.indexOf('agent-1'))).toEqual([at, at]);

    const agents = await run('agents');
    expect(rawChars(agents.out, { lines: true })).toEqual([]);
    expect(agents.out.split('\n')).toHaveLength(3);
    expect(agents.out).toContain(`1.0\\x1b]0;pwned\\x07  ${HOSTILE_SHOWN}`);
  });

  it('make every cell inert, and keep plain unicode as it is', () => {
    const text = table(['A', 'B'], [[`x${OSC_TITLE}`, 'Zoë 東京 👩‍💻'], ['y\nz', '']]);
    expect(text).toBe(`${'A'.padEnd(17)}  B\nx\\x1b]0;pwned\\x07  Zoë 東京 👩‍💻\ny\\nz\n`);
    expect(rawChars(sessionRow(clusterSession(broken)).join(' '))).toEqual([]);
  });

  it('summaries name the session inert', () => {
    const e = web();
    const line = summary('created', clusterSession({ ...e, agent: `agent${OSC_TITLE}`, meta: { ...e.meta, name: `web${CLEAR}`, dns: `d${OSC_TITLE}` } }));
    expect(line).toBe('created web\\x1b[2J\\x1b[H (11111111) on agent\\x1b]0;pwned\\x07: connected, port 1001/tcp, dns d\\x1b]0;pwned\\x07\n');
  });
});

describe('the error line', () => {
  it('shows an agent error quoting hostile bytes inert on stderr, its line breaks kept', async () => {
    const r = await run(`restart ${BROKEN.slice(0, 8)}`);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    const shown = HOSTILE_SHOWN.replace('\\n', '\n'); // the one line break, kept
    expect(r.err).toBe(`error: CONFLICT: session is broken (session.json: unknown field "${shown}"); only kill and delete work on it\n`);
    expect(rawChars(r.err, { lines: true })).toEqual([]);
  });

  it('bounds a huge message', async () => {
    const r = await run(`kill ${WEB} --yes`, { error: new BerthError('INTERNAL', `${'\u001b'.repeat(10_000)}end`) });
    expect(r.err).toBe(`error: INTERNAL: ${'\\x1b'.repeat(Math.floor((MESSAGE_MAX - 1) / 4))}…\n`);
  });

  it('shows a usage error echoing the command inert', async () => {
    const r = await run(`'${CLEAR}'`);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe('berth: unknown command: \\x1b[2J\\x1b[H');
    expect(rawChars(r.err, { lines: true })).toEqual([]);
  });

  it('shows the operator name inert in whoami', async () => {
    const mallory: Operator = { name: `m${OSC_TITLE}`, role: 'admin' };
    expect((await run('whoami', { operator: mallory })).out).toBe('m\\x1b]0;pwned\\x07 (admin)\n');
  });
});

describe('kill with others attached', () => {
  it('is refused naming them, inert, without --yes; the operator herself does not count', async () => {
    const r = await run(`kill ${WEB}`, { error: new BerthError('CONFLICT', 'the agent was asked') });
    expect(r).toEqual({ code: 1, out: '', err: `error: CONFLICT: bob\\x1b]0;pwned\\x07 is attached to web: kill ${WEB} --yes kills it anyway\n` });
    // With --yes it is the agent's to answer.
    expect((await run(`kill ${WEB} --yes`, { error: new BerthError('CONFLICT', 'the agent was asked') })).err).toBe('error: CONFLICT: the agent was asked\n');
    // A viewer is told the role first.
    const vic: Operator = { name: 'vic', role: 'viewer' };
    expect((await run(`kill ${WEB}`, { operator: vic })).err).toBe('error: FORBIDDEN: vic is a viewer and may not kill\n');
  });

  it('names them as a sentence does', () => {
    expect(nameList([])).toBe('');
    expect(nameList(['bob'])).toBe('bob');
    expect(nameList(['bob', 'carol'])).toBe('bob and carol');
    expect(nameList(['alice', 'bob', `carol${OSC_TITLE}`])).toBe('alice, bob and carol\\x1b]0;pwned\\x07');
  });
});

describe('the preview headline', () => {
  const NOW = new Date('2026-12-02T10:00:00.000Z');
  const lock = (operator: string, since: string, stale = false) => ({ operator, op: 'clone', since, stale });

  it('says who holds the lock, for which op and how long, after the activity', () => {
    const e = { ...web(), activity: { state: 'working' as const, since: '2026-12-02T09:00:00.000Z', detail: 'Bash' }, lock: lock('alice', '2026-12-02T09:59:48.000Z') };
    expect(previewHeadline(clusterSession(e), NOW)).toBe('web on agent-1 · working: Bash · locked by alice for clone, 12 s');
  });

  it('counts in minutes, then hours; says when the lock is stale; is inert', () => {
    const at = (since: string, stale = false, operator = 'bob') => previewHeadline(clusterSession({ ...web(), lock: lock(operator, since, stale) }), NOW);
    expect(at('2026-12-02T09:55:00.000Z')).toBe('web on agent-1 · locked by bob for clone, 5 min');
    expect(at('2026-12-02T05:00:00.000Z', true)).toBe('web on agent-1 · locked by bob for clone, 5 h, stale');
    expect(at('not a time', false, `m${OSC_TITLE}`)).toBe('web on agent-1 · locked by m\\x1b]0;pwned\\x07 for clone, ?');
    expect(previewHeadline(clusterSession(web()), NOW)).toBe('web on agent-1');
  });
});

describe('version', () => {
  it("prints this build's version and protocol, then its commit and date; --json has them all", async () => {
    const text = await run('version');
    expect(text.out).toBe(`berth ${BUILD.version} (protocol ${PROTOCOL_VERSION})\ncommit ${BUILD.commit}, built ${BUILD.builtAt}\n`);
    expect(JSON.parse((await run('version --json')).out)).toEqual({ ...BUILD, protocol: PROTOCOL_VERSION });
    expect(versionText({ version: '1.2.3', commit: 'unknown', builtAt: 'unknown' }, 7)).toBe('berth 1.2.3 (protocol 7)\ncommit unknown, built unknown\n');
  });
});

describe('--json', () => {
  it('keeps every value exactly, and writes no control, C1 or bidi character raw', async () => {
    const { view } = setup();
    const list = await run('list --json');
    expect(rawChars(list.out, { lines: true })).toEqual([]);
    expect(list.out.endsWith('\n')).toBe(true);
    expect(JSON.parse(list.out)).toEqual(view.sessions().map(sessionJson));
    expect(JSON.parse(list.out)).toContainEqual(expect.objectContaining({ id: BROKEN, broken: BROKEN_REASON }));

    const agents = await run('agents --json');
    expect(rawChars(agents.out, { lines: true })).toEqual([]);
    expect(JSON.parse(agents.out)).toEqual(view.agentList().map(agentJson));
    expect(JSON.parse(agents.out)[0]).toMatchObject({ reason: HOSTILE, version: `1.0${OSC_TITLE}`, hostname: `host${CLEAR}` });

    const mallory: Operator = { name: `m\u009d0;x\u009c\u202e`, role: 'viewer' };
    const who = await run('whoami --json', { operator: mallory });
    expect(rawChars(who.out, { lines: true })).toEqual([]);
    expect(JSON.parse(who.out)).toEqual(mallory);
  });
});
