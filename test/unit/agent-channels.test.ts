import { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { BerthError } from '../../common/errors';
import { z } from 'zod';
import { ask, channelOpenError, firstLine } from '../../shell/agents/channels';

/** A channel as ssh2 gives it, as far as firstLine uses it: the agent's bytes come in with `from`. */
class FakeChannel extends Duplex {
  closes = 0;
  _read(): void {}
  _write(_c: Buffer, _e: BufferEncoding, cb: () => void): void {
    cb();
  }
  from(text: string): void {
    this.push(Buffer.from(text));
  }
  close(): void {
    this.closes++;
    this.emit('close');
  }
}

const asChannel = (f: FakeChannel): ClientChannel => f as unknown as ClientChannel;
const opts = { agent: 'agent-1', answer: 'the attach', timeoutMs: 1000, maxBytes: 64 };

/** Everything the channel gives from now on, for `ms`. */
async function rest(ch: FakeChannel, ms = 20): Promise<string> {
  let got = '';
  ch.on('data', (d: Buffer) => (got += d.toString()));
  ch.resume();
  await new Promise((r) => setTimeout(r, ms));
  return got;
}

describe("the agent's answer at the head of an op's channel", () => {
  it('is the first line, across chunks, and what follows it stays on the paused channel', async () => {
    const ch = new FakeChannel();
    const line = firstLine(asChannel(ch), opts);
    ch.from('{"ok":');
    ch.from('true}\nthe first screen');
    ch.from(', and more');
    await expect(line).resolves.toBe('{"ok":true}');
    expect(ch.isPaused()).toBe(true);
    expect(await rest(ch)).toBe('the first screen, and more');
  });

  it('skips blank lines and still keeps what follows the answer in the same chunk', async () => {
    const ch = new FakeChannel();
    const line = firstLine(asChannel(ch), opts);
    ch.from('\n\r\n{"ok":true}\n\nscreen\n');
    await expect(line).resolves.toBe('{"ok":true}');
    expect(await rest(ch)).toBe('\nscreen\n');
  });

  it('refuses an answer longer than its limit, named, without waiting for its end', async () => {
    const ch = new FakeChannel();
    const line = firstLine(asChannel(ch), opts);
    ch.from('x'.repeat(65));
    await expect(line).rejects.toMatchObject({ code: 'INTERNAL', message: 'agent agent-1 sent an answer to the attach longer than 64 bytes' });
  });

  it('is TIMEOUT, and the channel closed, when no line comes in time', async () => {
    const ch = new FakeChannel();
    const line = firstLine(asChannel(ch), { ...opts, timeoutMs: 30 });
    ch.from('{"ok":');
    await expect(line).rejects.toMatchObject({ code: 'TIMEOUT', message: 'agent agent-1 did not answer the attach within 30 ms' });
    expect(ch.closes).toBe(1);
  });

  it('is AGENT_OFFLINE when the channel closes before the line', async () => {
    const ch = new FakeChannel();
    const line = firstLine(asChannel(ch), opts);
    ch.from('{"ok":');
    ch.close();
    await expect(line).rejects.toMatchObject({ code: 'AGENT_OFFLINE', message: 'agent agent-1 closed the channel of the attach' });
  });
});

describe('asking on an op\'s channel', () => {
  const schema = z.object({ ok: z.boolean() });

  it('writes the frame and gives the parsed answer', async () => {
    const ch = new FakeChannel();
    const sent: string[] = [];
    const write = ch.write.bind(ch);
    ch.write = ((chunk: string) => (sent.push(String(chunk)), write(chunk))) as typeof ch.write;
    const answer = ask(asChannel(ch), '{"op":"x"}\n', schema, opts);
    ch.from('{"ok":true}\n');
    await expect(answer).resolves.toEqual({ ok: true });
    expect(sent).toEqual(['{"op":"x"}\n']);
  });

  it('closes the channel and names what was wrong when the answer does not fit the schema', async () => {
    const ch = new FakeChannel();
    const answer = ask(asChannel(ch), '{}\n', schema, opts);
    ch.from('{"ok":"yes"}\n');
    await expect(answer).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(/^agent agent-1 sent a bad answer to the attach: .*ok/) });
    expect(ch.closes).toBe(1);
  });
});

describe('a failed channel open to an agent', () => {
  it('is AGENT_OFFLINE when the link saw the agent go, whatever the library said', () => {
    expect(channelOpenError(new Error('No response from server'), 'agent-1', 'agent agent-1 went offline: connection closed')).toMatchObject({
      code: 'AGENT_OFFLINE',
      message: 'agent agent-1 went offline: connection closed',
    });
  });

  it('is AGENT_OFFLINE when the socket ended before the link heard of it ("Not connected"), so a move’s outcome is resolved later', () => {
    const e = channelOpenError(new Error('Not connected'), 'agent-1', null);
    expect(e).toBeInstanceOf(BerthError);
    expect(e).toMatchObject({ code: 'AGENT_OFFLINE', message: 'agent agent-1 went offline: connection closed' });
  });

  it('is any other failure as it is, on a link that stands', () => {
    const other = new Error('Unable to start subsystem: berth-move');
    expect(channelOpenError(other, 'agent-1', null)).toBe(other);
  });
});
