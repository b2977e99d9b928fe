/**
 * The channels an agent link opens for one op (an attach, a move), and what their failures mean:
 * opening a subsystem, reading the agent's one-line answer at the head of the channel, the window
 * size of a subsystem channel, and a failed open told apart from the agent going. The connection's
 * own life (keys, retries, the RPC and event channels) is link.ts.
 */
import { Client, ClientChannel } from 'ssh2';
import { z } from 'zod';
import { BerthError } from '../../common/errors';
import { parseJson } from '../../common/json';
import { LineSplitter } from '../../common/protocol';

export function openSubsystem(conn: Client, name: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => conn.subsys(name, (err, ch) => (err ? reject(err) : resolve(ch))));
}

export interface FirstLineOptions {
  /** The agent's id, for the errors. */
  agent: string;
  /** What the line is, for the errors: `the attach`, `move export`. */
  answer: string;
  timeoutMs: number;
  /** A longer line is refused (INTERNAL), never buffered. */
  maxBytes: number;
}

/**
 * The first line the agent sends on `ch` (blank lines skipped). The channel is left paused with
 * everything after that line unread, for the caller's stream. Rejects with TIMEOUT (and closes the
 * channel) when no line comes within `timeoutMs`, AGENT_OFFLINE when the channel closes first,
 * INTERNAL when the line passes `maxBytes`.
 */
export function firstLine(ch: ClientChannel, o: FirstLineOptions): Promise<string> {
  const splitter = new LineSplitter(o.maxBytes);
  return new Promise<string>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      ch.off('data', onData);
      ch.off('close', onClose);
    };
    const timer = setTimeout(() => {
      done();
      ch.close();
      reject(new BerthError('TIMEOUT', `agent ${o.agent} did not answer ${o.answer} within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    const onClose = (): void => {
      done();
      reject(new BerthError('AGENT_OFFLINE', `agent ${o.agent} closed the channel of ${o.answer}`));
    };
    const onData = (d: Buffer): void => {
      // Newline by newline, so that nothing after the line is taken from the channel.
      let from = 0;
      while (from < d.length) {
        const nl = d.indexOf(0x0a, from);
        const end = nl === -1 ? d.length : nl + 1;
        const frame = splitter.push(d.subarray(from, end))[0];
        from = end;
        if (!frame) continue;
        done();
        // Pause in this very callback: chunks ssh2 emits later in the same tick (tmux's first
        // screen) would otherwise flow to no listener and be lost.
        ch.pause();
        if (from < d.length) ch.unshift(d.subarray(from));
        if (frame.kind === 'line') resolve(frame.line);
        else reject(new BerthError('INTERNAL', `agent ${o.agent} sent an answer to ${o.answer} longer than ${o.maxBytes} bytes`));
        return;
      }
    };
    ch.on('data', onData);
    ch.on('close', onClose);
  });
}

/**
 * Writes `frame` on an op's channel and returns the agent's one-line answer, parsed with `schema`
 * (see firstLine for what stays on the channel and the errors). An answer the schema refuses
 * closes the channel and is INTERNAL, naming what was wrong.
 */
export async function ask<S extends z.ZodType>(ch: ClientChannel, frame: string, schema: S, o: FirstLineOptions): Promise<z.output<S>> {
  const answered = firstLine(ch, o);
  ch.write(frame);
  const checked = parseJson(await answered, schema);
  if (checked.ok) return checked.value;
  ch.close();
  throw new BerthError('INTERNAL', `agent ${o.agent} sent a bad answer to ${o.answer}: ${checked.problem}`);
}

/**
 * ssh2's ClientChannel.setWindow sends window-change only on shell/exec channels; a subsystem
 * channel needs the request sent through the protocol object. Never throws.
 */
export function windowChange(ch: ClientChannel, cols: number, rows: number): void {
  const c = ch as unknown as { outgoing?: { id: number; state?: string }; _client?: { _protocol?: { windowChange(...a: number[]): void } } };
  if (c.outgoing?.state !== 'open') return;
  try {
    c._client?._protocol?.windowChange(c.outgoing.id, rows, cols, 0, 0);
  } catch {
    /* the channel closed meanwhile */
  }
}

/**
 * What a failed channel open means: the agent going (`gone`, the link's word for it), or a
 * connection whose socket already ended before the link heard of it (the SSH library refuses the
 * open with "Not connected" then), both AGENT_OFFLINE; any other failure as it is.
 */
export function channelOpenError(err: unknown, agent: string, gone: string | null): unknown {
  if (gone) return new BerthError('AGENT_OFFLINE', gone);
  if (err instanceof Error && err.message === 'Not connected') return new BerthError('AGENT_OFFLINE', `agent ${agent} went offline: connection closed`);
  return err;
}
