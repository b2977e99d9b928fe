/**
 * Hostile input in bulk against a real agent: 10,000 seeded random and mutated frames on each of
 * berth-rpc, berth-events, berth-attach and berth-move (headers). Every frame
 * gets the answer the protocol says (worked out in hostile-wire.ts): BAD_REQUEST for a broken
 * one, a result or a coded refusal for a valid one, never INTERNAL, never silence; attach and move
 * channels are closed by the agent after a refusal; events ignores what is written to it.
 * Afterwards a fresh client lists the same sessions (less what the valid frames among the junk
 * did, which is undone and checked), creates and attaches.
 */
import { promises as fs } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { type ClientChannel } from 'ssh2';
import {
  LineSplitter,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  RpcReply,
  SUBSYSTEMS,
  SessionView,
  attachHeaderSchema,
  attachReplySchema,
  sessionEntrySchema,
  eventSchema,
  moveReplySchema,
  rpcReplySchema,
  rpcResultSchemas,
} from '../../common/protocol';
import { AgentClient, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { Rng, seededRng } from '../helpers/seed';
import { until } from '../helpers/wait';
import { FrameVocabulary, hostileStrings, junkFrame, mutateFrame } from './hostile-input';
import { Verdict, attachVerdict, codeFits, headerFrame, moveVerdict, onLines, pooled, rpcVerdict, sendHeader } from './hostile-wire';

const runLabel = `hostile-agent-${randomUUID().slice(0, 8)}`;
const FRAMES = 10_000;
const MOVE_FRAMES = 10_000;
/** Most RPC replies awaited at once: the junk goes in as fast as the agent answers it. */
const RPC_WINDOW = 256;
/** Header channels open at once. */
const CHANNELS = 64;

let agent: AgentProcess;
let main: AgentClient;
/** Named by the read-only ops and attach headers among the junk. */
let target: SessionView;
/** Named by no frame at all: attached at the end. */
let guard: SessionView;
let before: SessionView[];
let rootBefore: string[];
/** Sessions that valid frames among the junk created (undone at the end). */
const created = new Set<string>();

const canary = `/tmp/berth-canary-${runLabel}`;
const STRINGS = hostileStrings(canary);

/** A uuid that names no session, from the seed. */
function ghost(rng: Rng): string {
  const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[rng.int(0, 15)]).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
}

const rootEntries = async (): Promise<string[]> => (await fs.readdir(agent.root)).filter((n) => n !== '.trash').sort();
const list = async (c: AgentClient): Promise<SessionView[]> => (await c.call('list', {})).sessions.map(view);

beforeAll(async () => {
  // A cap, so that valid creates among the junk stay few (the rest are refused: agent is full).
  agent = await startAgentProcess({ runLabel, config: { maxSessions: 12, log: { level: 'info' } } });
  main = await agent.connect();
  target = view(await main.call('create', { name: 'target', dns: 'target' }));
  guard = view(await main.call('create', { name: 'guard' }));
  before = await list(main);
  rootBefore = await rootEntries();
});

afterAll(async () => {
  await agent?.dispose();
});

/** Reports the first few problems with their frames, so a failure says what to replay. */
function expectNoProblems(what: string, problems: string[]): void {
  if (problems.length > 0) console.log(`${what}: ${problems.length} problems\n${problems.slice(0, 10).join('\n')}`);
  expect(problems.slice(0, 10)).toEqual([]);
}

// ---- berth-rpc ----

const RPC_VOCABULARY = (rng: Rng): FrameVocabulary => ({
  // Not the target's id: a restart or kill of it among the junk would start and stop containers.
  strings: [...STRINGS, ghost(rng), 'alice', 'target', 'guard-x'],
  keys: ['v', 'id', 'op', 'params', 'operator', 'opId', 'session', 'name', 'port', 'dns', 'protocol', 'limits', 'env', 'command', 'repo', 'branch', 'lines', 'reason', 'noPort'],
  nested: 'params',
  swaps: {
    v: [0, 2, -1, '1', 1.5, null, 99999999999],
    // Only ops that change nothing of an existing session: a frame made from a read of the
    // target must not become a restart or a delete of it.
    op: ['explode', '', 'LIST', 'list ', '__proto__', 'constructor', null, 7, 'list', 'get', 'stats', 'preview', 'create'],
    operator: ['', 'Root', 'a b', '../x', 'x'.repeat(40), null],
    id: [null, '', 'x'.repeat(65), 1.5, -1, 2 ** 60, [], {}, true],
    opId: ['short', 'opid-fixed-1', 'opid-fixed-2', '../../x', null],
  },
  maxBytes: MAX_REQUEST_BYTES,
});

/** A valid request: reads name the target, changes name only sessions that do not exist. */
function rpcTemplate(rng: Rng, n: number): Record<string, unknown> {
  const op = rng.pick(['list', 'stats', 'get', 'get', 'preview', 'create', 'create', 'edit', 'clone', 'restart', 'kill', 'background', 'delete', 'override', 'restore'] as const);
  const g = ghost(rng);
  const params: Record<string, unknown> = {
    list: {},
    stats: {},
    get: { session: target.meta.id },
    preview: { session: target.meta.id, lines: rng.int(1, 50) },
    create: { name: `fz-${n}`, protocol: rng.pick(['tcp', 'udp']), port: 0, dns: rng.next() < 0.3 ? `fz${n}` : '' },
    edit: { session: g, name: `fz-${n}`, dns: '' },
    clone: { session: g },
    restart: { session: g },
    kill: { session: g },
    background: { session: g },
    delete: { session: g },
    override: { session: g, reason: 'why not' },
    restore: { session: g, noPort: true },
  }[op];
  const frame: Record<string, unknown> = { v: PROTOCOL_VERSION, id: rng.next() < 0.5 ? `f${n}` : n + 1, op, params, operator: 'alice' };
  if (op !== 'list' && op !== 'stats' && op !== 'get' && op !== 'preview' && rng.next() < 0.3) frame.opId = `opid-${n}-${rng.int(0, 9)}`;
  return frame;
}

function rpcFrames(rng: Rng): Buffer[] {
  const vocab = RPC_VOCABULARY(rng);
  return Array.from({ length: FRAMES }, (_, n) => {
    const body = rng.next() < 0.1 ? junkFrame(rng, vocab.strings) : mutateFrame(rng, rpcTemplate(rng, n), vocab);
    return Buffer.concat([body, Buffer.from('\n')]);
  });
}

test('berth-rpc: 10,000 hostile frames, each answered once as the protocol says; the channel stays usable', async () => {
  const frames = rpcFrames(seededRng('hostile berth-rpc frames'));
  const c = await agent.connect();
  const ch = await c.subsystem(SUBSYSTEMS.rpc);
  const waiting = new Map<string, Verdict[]>();
  const problems: string[] = [];
  const codes = new Map<string, number>();
  const replies: RpcReply[] = [];
  let expected = 0;
  let received = 0;
  let wake: () => void = () => undefined;
  let last: unknown = null;
  onLines(ch, (line) => {
    received++;
    last = safeJson(line ?? '');
    const reply = line === null ? null : rpcReplySchema.safeParse(last);
    if (!reply?.success) problems.push(`a reply that is not the protocol's: ${JSON.stringify(line?.slice(0, 200))}`);
    else {
      const r = reply.data;
      replies.push(r);
      const code = r.ok ? 'ok' : r.error.code;
      codes.set(code, (codes.get(code) ?? 0) + 1);
      // A session in a result that was not there before: a valid create among the junk made it.
      const made = r.ok ? sessionEntrySchema.safeParse(r.result) : null;
      const id = made?.success && made.data.kind === 'session' ? made.data.meta.id : null;
      if (id && !before.some((b) => b.meta.id === id)) created.add(id);
    }
    wake();
  });
  const model = new LineSplitter(MAX_REQUEST_BYTES);
  const expect1 = (v: Verdict): void => {
    const key = JSON.stringify(v.id);
    waiting.set(key, [...(waiting.get(key) ?? []), v]);
    expected++;
  };
  const started = Date.now();
  for (const bytes of frames) {
    for (const f of model.push(bytes)) expect1(rpcVerdict(f));
    if (!ch.write(bytes)) await new Promise((r) => ch.once('drain', r));
    while (expected - received > RPC_WINDOW) {
      const more = await new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), 10_000);
        wake = () => (clearTimeout(t), r(true));
      });
      if (!more) throw new Error(`no reply in 10 s with ${expected - received} awaited; problems so far: ${problems.slice(0, 3).join('; ')}`);
    }
  }
  await until('every reply', async () => received, (n) => n >= expected, 20_000, 20);
  console.log(`berth-rpc: ${FRAMES} frames in ${Date.now() - started} ms, ${expected} lines answered: ${JSON.stringify(Object.fromEntries(codes))}`);
  problems.push(...matchReplies(waiting, replies.splice(0)));
  expectNoProblems('berth-rpc', problems);
  expect(received).toBe(expected);
  expect([...waiting.values()].flat()).toEqual([]);
  // The junk ran through the whole protocol: valid requests done, broken ones refused, ops refused for what they asked.
  expect(codes.get('BAD_REQUEST')).toBeGreaterThan(FRAMES / 4);
  expect(codes.get('ok')).toBeGreaterThan(100);
  expect(codes.get('NOT_FOUND')).toBeGreaterThan(100);
  // The same channel still answers a plain request.
  expect1({ kind: 'valid', id: 'after-junk', op: 'get', shown: 'get guard' });
  ch.write(`${JSON.stringify({ v: PROTOCOL_VERSION, id: 'after-junk', op: 'get', params: { session: guard.meta.id }, operator: 'alice' })}\n`);
  await until('its reply', async () => received, (n) => n >= expected, 10_000, 20);
  expect(last).toMatchObject({ id: 'after-junk', ok: true, result: { kind: 'session', meta: guard.meta } });
  expect(matchReplies(waiting, replies.splice(0))).toEqual([]);
  c.close();
  // What survived: the sessions there were, as they were, and those the valid creates made.
  const ids = (xs: SessionView[]): string[] => xs.map((s) => s.meta.id).sort();
  console.log(`berth-rpc: valid creates among the junk: ${created.size}`);
  expect(ids(await list(main))).toEqual([...ids(before), ...created].sort());
  for (const id of created) await main.call('delete', { session: id });
  expect(await list(main)).toEqual(before);
});

/**
 * Pairs each reply with a frame that carries its id and fits it, taking from `waiting`; what fits
 * none is a problem. Ids repeat among the junk, so the most particular replies go first: results
 * (only a valid frame of an op with that result fits), then refusals other than BAD_REQUEST (only a
 * valid frame), then BAD_REQUEST (a broken frame first, else a valid one refused for its values).
 */
function matchReplies(waiting: Map<string, Verdict[]>, replies: RpcReply[]): string[] {
  const rank = (r: RpcReply): number => (r.ok ? 0 : r.error.code === 'BAD_REQUEST' ? 2 : 1);
  const problems: string[] = [];
  for (const r of [...replies].sort((a, b) => rank(a) - rank(b))) {
    const key = JSON.stringify(r.id);
    const candidates = waiting.get(key) ?? [];
    const fits = (v: Verdict): boolean => (r.ok ? v.kind === 'valid' && rpcResultSchemas[v.op ?? 'list'].safeParse(r.result).success : codeFits(v, r.error.code));
    const bad = candidates.findIndex((v) => fits(v) && v.kind === 'bad');
    const at = bad !== -1 ? bad : candidates.findIndex(fits);
    if (at === -1) problems.push(`reply ${JSON.stringify(r).slice(0, 200)} fits none of the frames with id ${key}: ${candidates.map((v) => `${v.kind} ${v.shown}`).join(' | ')}`);
    candidates.splice(at === -1 ? 0 : at, 1);
  }
  return problems;
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

// ---- berth-events ----

test('berth-events: 10,000 hostile frames written to the stream are ignored; it keeps pushing every change', async () => {
  const rng = seededRng('hostile berth-events frames');
  const vocab = RPC_VOCABULARY(rng);
  const c = await agent.connect();
  const ch = await c.subsystem(SUBSYSTEMS.events);
  const events: Array<{ type: string; [k: string]: unknown }> = [];
  const problems: string[] = [];
  onLines(ch, (line) => {
    const e = line === null ? null : eventSchema.safeParse(safeJson(line));
    if (!e?.success) problems.push(`an event that is not the protocol's: ${JSON.stringify(line?.slice(0, 200))}`);
    else events.push(e.data as never);
  });
  await until('synced', async () => events.some((e) => e.type === 'synced'), (ok) => ok, 10_000, 20);
  for (let n = 0; n < FRAMES; n++) {
    const t = rng.next() < 0.5 ? rpcTemplate(rng, n) : { type: rng.pick(['hello', 'session', 'synced', 'stats', 'error']), agent: 'x', count: n };
    const body = rng.next() < 0.1 ? junkFrame(rng, vocab.strings) : mutateFrame(rng, t, vocab);
    if (!ch.write(Buffer.concat([body, Buffer.from('\n')]))) await new Promise((r) => ch.once('drain', r));
  }
  // A change made elsewhere still reaches this stream, in order, after all that.
  const made = view(await main.call('create', { name: 'seen-by-events' }));
  await until('its session event', async () => events.some((e) => e.type === 'session' && view(e.session as never).meta.id === made.meta.id), (ok) => ok, 10_000, 20);
  await main.call('delete', { session: made.meta.id });
  await until('its removal', async () => events.some((e) => e.type === 'session-removed' && e.id === made.meta.id), (ok) => ok, 10_000, 20);
  expectNoProblems('berth-events', problems);
  expect(events.filter((e) => e.type === 'hello')).toHaveLength(1);
  expect(events.filter((e) => e.type === 'error')).toEqual([]);
  const pushed = ['hello', 'session', 'synced', 'trash', 'stats', 'job', 'session-removed'];
  expect(events.filter((e) => !pushed.includes(e.type))).toEqual([]);
  c.close();
});

// ---- berth-attach and berth-move headers ----

interface HeaderRun {
  subsystem: string;
  frames: Buffer[];
  verdict: (f: NonNullable<ReturnType<typeof headerFrame>>) => Verdict;
  replyOk: (line: string) => { ok: true } | { ok: false; code: string } | null;
}

/** Sends every frame as the header of its own channel and checks the one line and the close that come back. */
async function headerRun(what: string, run: HeaderRun): Promise<Map<string, number>> {
  const clients = [await agent.connect(), await agent.connect()];
  const problems: string[] = [];
  const codes = new Map<string, number>();
  const started = Date.now();
  // Bounded: past this, no header is sent, so that a hanging agent is reported, frame by frame.
  const deadline = started + 40_000;
  let unsent = 0;
  await pooled(run.frames.length, CHANNELS, async (i) => {
    if (Date.now() > deadline) {
      unsent++;
      return;
    }
    let bytes = run.frames[i] ?? Buffer.alloc(0);
    // A header that is all blank lines is no header yet: the agent rightly waits for one.
    if (headerFrame(bytes) === null) bytes = Buffer.concat([bytes, Buffer.from('{}\n')]);
    const v = run.verdict(headerFrame(bytes)!);
    const ch: ClientChannel = await (clients[i % clients.length] as AgentClient).subsystem(run.subsystem);
    const { reply, closed } = await sendHeader(ch, bytes, 5000, (line) => run.replyOk(line)?.ok === true);
    const r = reply === null ? null : run.replyOk(reply);
    const code = r === null ? 'none' : r.ok ? 'ok' : r.code;
    codes.set(code, (codes.get(code) ?? 0) + 1);
    if (r === null) problems.push(`frame ${i}: ${reply === null ? 'no reply in 5 s' : `a reply that is not the protocol's: ${reply.slice(0, 200)}`} (${v.kind} ${v.shown})`);
    else if (r.ok ? v.kind !== 'valid' : !codeFits(v, r.code)) problems.push(`frame ${i}: ${code} for a ${v.kind} header ${v.shown}`);
    else if (!r.ok && !closed) problems.push(`frame ${i}: refused with ${code} but the channel was left open (${v.shown})`);
  });
  console.log(`${what}: ${run.frames.length - unsent} headers in ${Date.now() - started} ms: ${JSON.stringify(Object.fromEntries(codes))}`);
  for (const c of clients) c.close();
  expectNoProblems(what, problems);
  expect(unsent).toBe(0);
  return codes;
}

/** Whether an attach header would open a read-write attach of the target (and so start it). */
function startsTarget(bytes: Buffer): boolean {
  const f = headerFrame(bytes);
  if (f?.kind !== 'line') return false;
  const h = attachHeaderSchema.safeParse(safeJson(f.line));
  return h.success && h.data.session === target.meta.id && !h.data.readOnly;
}

test('berth-attach: 10,000 hostile headers, each refused with one coded line and the channel closed', async () => {
  const rng = seededRng('hostile berth-attach headers');
  const vocab: FrameVocabulary = {
    strings: [...STRINGS, target.meta.id, ghost(rng), 'alice'],
    keys: ['session', 'operator', 'readOnly', 'cols', 'rows', 'shell', 'command'],
    swaps: { readOnly: [1, 'true', null, 'yes'], cols: [0, -1, 1.5, 1e9, '80', 2 ** 53], rows: [0, -1, 1.5, 1e9, '24', null], operator: ['', 'Root', 'a b', null] },
    maxBytes: MAX_REQUEST_BYTES,
  };
  // A running target would take a real attach for every valid header: it must still be stopped.
  expect(view(await main.call('get', { session: target.meta.id })).state).toBe('-');
  const frames = Array.from({ length: FRAMES }, () => {
    const t = { session: rng.next() < 0.5 ? target.meta.id : ghost(rng), operator: 'alice', readOnly: true, cols: rng.pick([0, 1, 80, 500, 501, 100_000]), rows: rng.pick([0, 1, 24, 200, 201, 100_000]) };
    const bytes = Buffer.concat([rng.next() < 0.1 ? junkFrame(rng, vocab.strings) : mutateFrame(rng, t, vocab), Buffer.from('\n')]);
    // A valid header asking read-write of the target would start it and attach for real (the
    // attach suites do that): such a rare one asks for a session that does not exist instead.
    return startsTarget(bytes) ? Buffer.from(`${JSON.stringify({ ...t, session: ghost(rng) })}\n`) : bytes;
  });
  const codes = await headerRun('berth-attach', {
    subsystem: SUBSYSTEMS.attach,
    frames,
    verdict: attachVerdict,
    replyOk: (line) => {
      const r = attachReplySchema.safeParse(safeJson(line));
      return r.success ? (r.data.ok ? { ok: true } : { ok: false, code: r.data.error.code }) : null;
    },
  });
  expect(codes.get('BAD_REQUEST')).toBeGreaterThan(FRAMES / 4);
  expect(codes.get('NOT_FOUND')).toBeGreaterThan(100);
  expect(codes.get('CONFLICT')).toBeGreaterThan(100);
  // None of them started the target or left an attach behind.
  expect(view(await main.call('get', { session: target.meta.id }))).toMatchObject({ state: '-', attached: [], container: null });
});

test('berth-move: 10,000 hostile headers, each refused with one coded line and the channel closed', async () => {
  const rng = seededRng('hostile berth-move headers');
  const token = (): string => Array.from({ length: 24 }, () => 'abcdefghijkmnpqrstuvwxyz0123456789'[rng.int(0, 33)]).join('');
  const vocab: FrameVocabulary = {
    strings: [...STRINGS, target.meta.id, ghost(rng), token()],
    keys: ['v', 'operator', 'req', 'op', 'token', 'session', 'to', 'meta', 'running', 'bytes', 'sha256'],
    nested: 'req',
    swaps: { v: [0, 2, '1', null], operator: ['', 'Root', null], req: [null, [], 'pending', {}] },
    maxBytes: MAX_REQUEST_BYTES,
  };
  const frames = Array.from({ length: MOVE_FRAMES }, () => {
    // Only the ops that read or undo nothing that exists: status, sums and aborts of moves never begun.
    const req = rng.pick([{ op: 'pending' }, { op: 'in-status', token: token(), session: ghost(rng) }, { op: 'out-sums', token: token(), session: ghost(rng) }, { op: 'in-abort', token: token(), session: ghost(rng) }]);
    const t = { v: PROTOCOL_VERSION, operator: 'alice', req };
    return Buffer.concat([rng.next() < 0.1 ? junkFrame(rng, vocab.strings) : mutateFrame(rng, t, vocab), Buffer.from('\n')]);
  });
  const codes = await headerRun('berth-move', {
    subsystem: SUBSYSTEMS.move,
    frames,
    verdict: moveVerdict,
    replyOk: (line) => {
      const r = moveReplySchema.safeParse(safeJson(line));
      return r.success ? (r.data.ok ? { ok: true } : { ok: false, code: r.data.error.code }) : null;
    },
  });
  expect(codes.get('BAD_REQUEST')).toBeGreaterThan(MOVE_FRAMES / 4);
  expect(codes.get('ok')).toBeGreaterThan(50);
});

// ---- what the bulk runs first found, pinned ----

test('the frames the bulk runs first found: blank lines before a header, params too deep to hash, ids no reply may carry', async () => {
  const c = await agent.connect();
  // A header after blank lines in the same write was once never read: the channel hung unanswered.
  for (const [subsystem, header] of [
    [SUBSYSTEMS.attach, { session: randomUUID(), operator: 'alice', readOnly: true, cols: 80, rows: 24 }],
    [SUBSYSTEMS.move, { v: PROTOCOL_VERSION, operator: 'alice', req: { op: 'pending' } }],
  ] as const) {
    for (const lead of ['\n', '\r\n', ' \n\n']) {
      const out = await sendHeader(await c.subsystem(subsystem), Buffer.from(`${lead}${JSON.stringify(header)}\n`), 5000);
      expect({ subsystem, lead, reply: safeJson(out.reply ?? ''), closed: out.closed }).toEqual({
        subsystem,
        lead,
        reply: subsystem === SUBSYSTEMS.attach ? { ok: false, error: { code: 'NOT_FOUND', message: expect.any(String) } } : { ok: true, result: expect.anything() },
        closed: true,
      });
    }
  }
  // Params nested past what JSON.stringify can walk, with an op id, were once INTERNAL (the op
  // journal hashed them before they were checked); ids the envelope refuses were echoed back.
  const ch = await c.subsystem(SUBSYSTEMS.rpc);
  const replies: unknown[] = [];
  onLines(ch, (line) => replies.push(safeJson(line ?? '')));
  const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
  ch.write(`{"v":1,"id":"deep","op":"clone","opId":"deep-op-id-1","operator":"alice","params":{"session":${deep}}}\n`);
  ch.write(`{"v":1,"id":"","op":"list","operator":"alice"}\n{"v":"1","id":${2 ** 60},"op":"list","operator":"alice"}\n`);
  await until('three replies', async () => replies.length, (n) => n === 3, 5000, 20);
  expect(replies).toEqual([
    { id: 'deep', ok: false, error: { code: 'BAD_REQUEST', message: expect.stringContaining('session') } },
    { id: null, ok: false, error: { code: 'BAD_REQUEST', message: expect.stringContaining('id') } },
    { id: null, ok: false, error: { code: 'BAD_REQUEST', message: expect.any(String) } },
  ]);
  c.close();
});

// ---- what survived ----

test('afterwards: the same sessions and files, and a fresh client lists, creates and attaches', async () => {
  expect({ exitCode: agent.proc.exitCode, signal: agent.proc.signalCode }).toEqual({ exitCode: null, signal: null });
  const fresh = await agent.connect();
  // Nothing started, attached, locked or changed any session; no file appeared beside them.
  expect(await list(fresh)).toEqual(before);
  expect(await rootEntries()).toEqual(rootBefore);
  await expect(fs.stat(canary)).rejects.toThrow();

  const made = view(await fresh.call('create', { name: 'after-junk' }));
  expect(made.meta).toMatchObject({ name: 'after-junk', port: 0, dns: '' });
  const a = await fresh.attach({ session: guard.meta.id, operator: 'alice', readOnly: false });
  expect(await a.ready).toMatchObject({ ok: true });
  a.write('echo guard-$((6*7))-ok\r');
  await a.waitForText('guard-42-ok', 20_000);
  a.close();
  await until('the attach is gone', async () => view(await fresh.call('get', { session: guard.meta.id })).attached, (x) => x.length === 0, 10_000);
  await fresh.call('kill', { session: guard.meta.id });
  await fresh.call('delete', { session: made.meta.id });
  // The agent logged no failed op: every refusal was a refusal.
  expect(agent.logs.filter((l) => l.includes('"op failed"') || l.includes('uncaught'))).toEqual([]);
  fresh.close();
});
