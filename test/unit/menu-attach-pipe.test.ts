/**
 * The attach pipe (shell/ssh/attach-pipe.ts) that the menu's Enter and `attach REF` share, on
 * in-memory streams standing for the operator's SSH channel and the agent's attach channel.
 */
import { Duplex } from 'node:stream';
import { BerthError } from '../../common/errors';
import { Logger, silentLogger } from '../../common/logging';
import { ClusterSession } from '../../shell/cluster/view';
import { Operator } from '../../shell/service';
import { AttachPipeOptions, Size, openAttachPipe } from '../../shell/ssh/attach-pipe';

/** A duplex that records what is written to it; `push` makes it emit data. */
function endpoint(): Duplex & { written: string[] } {
  const written: string[] = [];
  const d = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk.toString());
      cb();
    },
  });
  return Object.assign(d, { written });
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const alice: Operator = { name: 'alice', role: 'admin' };
const session = { id: 'sid', agent: 'agent-1' } as ClusterSession;

function setup(o: { refuse?: boolean; logger?: Logger } = {}) {
  const channel = endpoint();
  const stream = endpoint();
  const resize = jest.fn();
  const close = jest.fn();
  const opened: Array<[string, boolean, number, number]> = [];
  let size: Size = { cols: 80, rows: 24 };
  const detached = jest.fn();
  let release: () => void = () => undefined;
  let lost: string | null = null;
  const gate = new Promise<void>((r) => (release = r));
  const service: AttachPipeOptions['service'] = {
    attach: async (_op, ref, readOnly, cols, rows) => {
      opened.push([ref, readOnly, cols, rows]);
      await gate;
      if (o.refuse) throw new BerthError('FORBIDDEN', 'vic is a viewer and may not attach read-write');
      return { session, attach: { stream, reply: null as never, resize, close, lost: async () => lost } };
    },
    detached,
  };
  const open = () =>
    openAttachPipe({ channel, service, operator: alice, ref: 'web', readOnly: false, size: () => size, logger: o.logger ?? silentLogger });
  return { channel, stream, resize, close, opened, detached, release, open, setSize: (s: Size) => (size = s), setLost: (why: string) => (lost = why) };
}

describe('attach pipe', () => {
  it('opens at the terminal size, and sends the size again if it changed meanwhile', async () => {
    const t = setup();
    const p = t.open();
    t.setSize({ cols: 120, rows: 40 });
    t.release();
    await p;
    expect(t.opened).toEqual([['web', false, 80, 24]]);
    expect(t.resize).toHaveBeenCalledWith(120, 40);
  });

  it('carries the bytes both ways', async () => {
    const t = setup();
    t.release();
    await t.open();
    t.channel.push('ls\r');
    t.stream.push('file.txt\r\n');
    await tick();
    expect(t.stream.written).toEqual(['ls\r']);
    expect(t.channel.written).toEqual(['file.txt\r\n']);
  });

  it('passes window changes on until the attach ends', async () => {
    const t = setup();
    t.release();
    const pipe = await t.open();
    pipe.resize({ cols: 100, rows: 30 });
    expect(t.resize).toHaveBeenLastCalledWith(100, 30);
    pipe.close();
    pipe.resize({ cols: 90, rows: 20 });
    expect(t.resize).toHaveBeenLastCalledWith(100, 30);
  });

  it('ends when the session side closes: closes the attach, records the detach, lets go of the channel', async () => {
    const t = setup();
    t.release();
    const pipe = await t.open();
    const listeners = t.channel.listenerCount('data');
    t.stream.destroy();
    expect(await pipe.ended).toEqual({ failed: false, lost: null });
    expect(t.close).toHaveBeenCalledTimes(1);
    expect(t.detached).toHaveBeenCalledWith(alice, session);
    expect(t.channel.listenerCount('data')).toBe(listeners - 1);
    expect(t.channel.listenerCount('close')).toBe(0);
    t.channel.push('after');
    await tick();
    expect(t.stream.written).toEqual([]);
  });

  it('ends as failed when the session side errors, and logs why', async () => {
    const debug = jest.fn();
    const t = setup({ logger: { ...silentLogger, debug } });
    t.release();
    const pipe = await t.open();
    t.stream.destroy(new Error('channel reset'));
    expect(await pipe.ended).toEqual({ failed: true, lost: null });
    expect(debug).toHaveBeenCalledWith('attach stream error', { err: 'channel reset' });
    expect(t.detached).toHaveBeenCalledTimes(1);
  });

  it('says so on the terminal when the link to the agent went, and ends as failed', async () => {
    const t = setup();
    t.release();
    const pipe = await t.open();
    t.setLost('agent agent-1 went offline: Keepalive timeout');
    t.stream.destroy();
    expect(await pipe.ended).toEqual({ failed: true, lost: 'agent agent-1 went offline: Keepalive timeout' });
    expect(t.channel.written.join('')).toContain('berth: agent agent-1 went offline: Keepalive timeout; this attach ended and the session runs on there');
    expect(t.detached).toHaveBeenCalledTimes(1);
  });

  it('ends when the operator’s channel closes', async () => {
    const t = setup();
    t.release();
    const pipe = await t.open();
    t.channel.emit('close');
    expect(await pipe.ended).toEqual({ failed: false, lost: null });
    expect(t.close).toHaveBeenCalledTimes(1);
  });

  it('ends once, whichever sides end and however often', async () => {
    const t = setup();
    t.release();
    const pipe = await t.open();
    pipe.close();
    pipe.close();
    t.channel.emit('close');
    t.stream.destroy();
    await tick();
    expect(await pipe.ended).toEqual({ failed: false, lost: null });
    expect(t.close).toHaveBeenCalledTimes(1);
    expect(t.detached).toHaveBeenCalledTimes(1);
  });

  it('writes nothing more to the operator once ended', async () => {
    const t = setup();
    t.release();
    const pipe = await t.open();
    pipe.close();
    t.stream.push('late');
    await tick();
    expect(t.channel.written).toEqual([]);
  });

  it('throws the refusal, touching neither channel', async () => {
    const t = setup({ refuse: true });
    t.release();
    await expect(t.open()).rejects.toThrow('may not attach read-write');
    expect(t.channel.listenerCount('data')).toBe(0);
    expect(t.detached).not.toHaveBeenCalled();
  });
});
