/**
 * Terminal sizes are bounded on every path: the clamp itself, the attach header, the agent's attach
 * handler (over the fake runtime) and the shell's attach pipe. A failed resize never ends an attach.
 */
import { Duplex } from 'node:stream';
import { serveAttach } from '../../agent/rpc/attach-handler';
import { AttachHandle } from '../../agent/docker/runtime';
import { Logger, silentLogger } from '../../common/logging';
import { AttachReply, DEFAULT_TERM_SIZE, MAX_TERM_SIZE, attachHeaderSchema, clampTermSize, describeIssue } from '../../common/protocol';
import { ClusterSession } from '../../shell/cluster/view';
import { AttachPipeOptions, Size, openAttachPipe } from '../../shell/ssh/attach-pipe';
import { Harness, asView, startHarness } from '../helpers/sessions-harness';
import { until } from '../helpers/wait';

/** A duplex that records what is written to it; `push` makes it emit data. */
function endpoint(): Duplex & { written: Buffer[] } {
  const written: Buffer[] = [];
  const d = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(Buffer.from(chunk));
      cb();
    },
  });
  return Object.assign(d, { written });
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('clampTermSize', () => {
  it('is 500x200 at most and 80x24 by default', () => {
    expect(MAX_TERM_SIZE).toEqual({ cols: 500, rows: 200 });
    expect(DEFAULT_TERM_SIZE).toEqual({ cols: 80, rows: 24 });
  });

  it.each([
    [80, 24, 80, 24],
    [1, 1, 1, 1],
    [500, 200, 500, 200],
    [501, 201, 500, 200],
    [1001, 40, 500, 40],
    [120, 40000, 120, 200],
    [40000, 40000, 500, 200],
    [50000, 50000, 500, 200],
    [2 ** 32 - 1, 2 ** 32 - 1, 500, 200],
    [Infinity, Infinity, 500, 200],
    [0, 0, 80, 24],
    [0, 50, 80, 50],
    [132, 0, 132, 24],
    [-5, -1, 80, 24],
    [NaN, NaN, 80, 24],
    [undefined, undefined, 80, 24],
    [100.9, 30.2, 100, 30],
    [0.5, 0.5, 80, 24],
  ])('%p x %p is %p x %p', (cols, rows, wantCols, wantRows) => {
    expect(clampTermSize(cols, rows)).toEqual({ cols: wantCols, rows: wantRows });
  });
});

describe('the attach header', () => {
  const base = { session: '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b', operator: 'alice', readOnly: false };
  const parse = (size: Record<string, unknown>): { cols: number; rows: number } | string => {
    const r = attachHeaderSchema.safeParse({ ...base, ...size });
    return r.success ? { cols: r.data.cols, rows: r.data.rows } : describeIssue(r.error);
  };

  it('clamps sizes larger than the maximum instead of refusing them', () => {
    expect(parse({ cols: 1001, rows: 501 })).toEqual({ cols: 500, rows: 200 });
    expect(parse({ cols: 50000, rows: 50000 })).toEqual({ cols: 500, rows: 200 });
    expect(parse({ cols: 1e300, rows: 300 })).toEqual({ cols: 500, rows: 200 });
    expect(parse({ cols: 132, rows: 43 })).toEqual({ cols: 132, rows: 43 });
  });

  it('gives zero or missing dimensions the default', () => {
    expect(parse({ cols: 0, rows: 0 })).toEqual({ cols: 80, rows: 24 });
    expect(parse({})).toEqual({ cols: 80, rows: 24 });
    expect(parse({ cols: 200 })).toEqual({ cols: 200, rows: 24 });
  });

  it('refuses what is not a size, saying which field and why', () => {
    expect(parse({ cols: -1, rows: 24 })).toBe('cols: must not be negative');
    expect(parse({ cols: 80, rows: -24 })).toBe('rows: must not be negative');
    expect(parse({ cols: '80', rows: 24 })).toBe('cols: must be a number');
    expect(parse({ cols: null, rows: 24 })).toBe('cols: must be a number');
    expect(parse({ cols: 80, rows: [24] })).toBe('rows: must be a number');
    expect(parse({ cols: 80.5, rows: 24 })).toBe('cols: must be a whole number');
  });
});

describe('the agent\'s attach handler', () => {
  let h: Harness;
  let sessionId = '';

  beforeEach(async () => {
    h = await startHarness();
    sessionId = asView(await h.sessions.create({ name: 'sizes', protocol: 'tcp', port: 0, dns: '' }, 'alice')).meta.id;
    expect(asView(await h.sessions.restart(sessionId, 'alice')).state).toBe('R');
  });
  afterEach(() => h.dispose());

  /** Opens berth-attach over the harness's sessions with a header of this size; `early` runs before the agent answers. */
  async function attach(size: Record<string, unknown>, o: { logger?: Logger; early?: (c: ReturnType<typeof serveAttach>) => void } = {}) {
    const channel = endpoint();
    const control = serveAttach(channel, h.sessions, o.logger ?? silentLogger);
    channel.push(`${JSON.stringify({ session: sessionId, operator: 'alice', readOnly: false, ...size })}\n`);
    o.early?.(control);
    const text = (): string => Buffer.concat(channel.written).toString('utf8');
    await until('attach reply', async () => text(), (t) => t.includes('\n'), 3000, 5);
    const reply = JSON.parse(text().slice(0, text().indexOf('\n'))) as AttachReply;
    const fake = h.fake.attaches[h.fake.attaches.length - 1];
    if (!fake) throw new Error('no attach reached the runtime');
    return { channel, control, reply, fake, text };
  }

  /** Lets the handler's pending resizes run to their end. */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await tick();
  };

  it('opens tmux at the header size, clamped', async () => {
    const a = await attach({ cols: 2000, rows: 1000 });
    expect(a.reply.ok).toBe(true);
    expect([a.fake.cols, a.fake.rows]).toEqual([500, 200]);
  });

  it('opens at 80x24 when the header has no size', async () => {
    const a = await attach({});
    expect(a.reply.ok).toBe(true);
    expect([a.fake.cols, a.fake.rows]).toEqual([80, 24]);
  });

  it('refuses a negative size, and opens nothing', async () => {
    const channel = endpoint();
    serveAttach(channel, h.sessions, silentLogger);
    channel.push(`${JSON.stringify({ session: sessionId, operator: 'alice', readOnly: false, cols: -80, rows: 24 })}\n`);
    await until('refusal', async () => Buffer.concat(channel.written).toString('utf8'), (t) => t.includes('\n'), 3000, 5);
    const reply = JSON.parse(Buffer.concat(channel.written).toString('utf8')) as AttachReply;
    expect(reply).toEqual({ ok: false, error: { code: 'BAD_REQUEST', message: 'cols: must not be negative' } });
    expect(h.fake.attaches).toEqual([]);
  });

  it('clamps window changes, and gives zero the default', async () => {
    const a = await attach({ cols: 100, rows: 30 });
    a.control.resize(40000, 40000);
    await settle();
    expect([a.fake.cols, a.fake.rows]).toEqual([500, 200]);
    a.control.resize(0, 0);
    await settle();
    expect([a.fake.cols, a.fake.rows]).toEqual([80, 24]);
    a.control.resize(120, 40);
    await settle();
    expect([a.fake.cols, a.fake.rows]).toEqual([120, 40]);
  });

  it('applies a window change that came before the attach was open, clamped', async () => {
    const a = await attach({ cols: 100, rows: 30 }, { early: (c) => c.resize(9999, 50) });
    await settle();
    expect([a.fake.cols, a.fake.rows]).toEqual([500, 50]);
  });

  /** Makes every attach handle's resize go through `resize` instead. */
  function wrapResize(resize: (cols: number, rows: number) => Promise<void>): void {
    const real = h.fake.attach.bind(h.fake);
    h.fake.attach = async (containerId, opts): Promise<AttachHandle> => ({ ...(await real(containerId, opts)), resize });
  }

  it('keeps the attach going when a resize fails, and logs it', async () => {
    wrapResize(async () => {
      throw new Error('exec is gone');
    });
    const warn = jest.fn();
    const a = await attach({ cols: 100, rows: 30 }, { logger: { ...silentLogger, warn, child: () => ({ ...silentLogger, warn }) } });
    expect(a.reply.ok).toBe(true);
    a.control.resize(120, 40);
    await settle();
    // The same size again is tried again: the last one never took.
    a.control.resize(120, 40);
    await settle();
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn).toHaveBeenCalledWith('resize failed', expect.objectContaining({ session: sessionId, err: 'exec is gone' }));
    // Both ways still carry bytes.
    a.channel.push('typed after\r');
    a.fake.stream.push('printed after');
    await until('bytes both ways', async () => [Buffer.concat(a.fake.input).toString(), a.text()], ([i, o]) => i.includes('typed after') && o.includes('printed after'), 3000, 5);
    expect(a.fake.closedByAgent).toBe(false);
    expect(a.channel.destroyed).toBe(false);
    expect(asView(await h.sessions.get(sessionId)).attached).toEqual(['alice']);
  });

  it('has one resize in flight at a time: a flood of window changes costs a few calls and the last size wins', async () => {
    const calls: Array<[number, number]> = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    wrapResize(async (cols, rows) => {
      calls.push([cols, rows]);
      await gate;
    });
    const a = await attach({ cols: 100, rows: 30 });
    for (let i = 1; i <= 1000; i++) a.control.resize(100 + (i % 300), 30 + (i % 100));
    a.control.resize(40000, 40000);
    await settle();
    expect(calls).toEqual([[101, 31]]);
    release();
    await settle();
    expect(calls).toEqual([
      [101, 31],
      [500, 200],
    ]);
  });
});

describe('the shell\'s attach pipe', () => {
  const session = { id: 'sid', agent: 'agent-1' } as ClusterSession;

  function setup(size: Size, resize: (cols: number, rows: number) => void = () => undefined) {
    const channel = endpoint();
    const stream = endpoint();
    const opened: Array<[number, number]> = [];
    const resized: Array<[number, number]> = [];
    const service: AttachPipeOptions['service'] = {
      attach: async (_op, _ref, _ro, cols, rows) => {
        opened.push([cols, rows]);
        const onResize = (c: number, r: number): void => {
          resized.push([c, r]);
          resize(c, r);
        };
        return { session, attach: { stream, reply: null as never, resize: onResize, close: () => undefined, lost: async () => null } };
      },
      detached: () => undefined,
    };
    const warn = jest.fn();
    const open = () =>
      openAttachPipe({ channel, service, operator: { name: 'alice', role: 'admin' }, ref: 'web', readOnly: false, size: () => size, logger: { ...silentLogger, warn } });
    return { channel, stream, opened, resized, open, warn };
  }

  it('asks the agent for a clamped size, never the terminal\'s own when it is too large', async () => {
    const t = setup({ cols: 50000, rows: 50000 });
    const pipe = await t.open();
    expect(t.opened).toEqual([[500, 200]]);
    // Nothing changed while it opened: no second size.
    expect(t.resized).toEqual([]);
    pipe.resize({ cols: 40000, rows: 10 });
    pipe.resize({ cols: 0, rows: 0 });
    expect(t.resized).toEqual([
      [500, 10],
      [80, 24],
    ]);
  });

  it('keeps the attach going when a resize throws', async () => {
    const t = setup({ cols: 80, rows: 24 }, () => {
      throw new Error('channel is closing');
    });
    const pipe = await t.open();
    expect(() => pipe.resize({ cols: 100, rows: 30 })).not.toThrow();
    expect(t.warn).toHaveBeenCalledWith('resize failed', { err: 'channel is closing' });
    t.channel.push('still here');
    await tick();
    expect(Buffer.concat(t.stream.written).toString()).toBe('still here');
    let ended = false;
    void pipe.ended.then(() => (ended = true));
    await tick();
    expect(ended).toBe(false);
    pipe.close();
    expect(await pipe.ended).toEqual({ failed: false, lost: null });
  });
});
