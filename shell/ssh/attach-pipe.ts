/**
 * An operator's terminal joined to a session: the SSH channel's bytes go to the agent's attach
 * stream and back, window changes follow (clamped: the agent is only ever asked a bounded size),
 * and whichever side ends first ends the attach and records the detach. What the session prints
 * reaches the operator through a TerminalFilter (a session is untrusted code: no clipboard
 * sequence, no DCS such as a tmux passthrough). `ssh -t shell attach REF` and the menu's Enter
 * both use it.
 */
import { Duplex } from 'node:stream';
import { messageOf } from '../../common/errors';
import { Logger } from '../../common/logging';
import { clampTermSize } from '../../common/protocol';
import type { Operator, ShellService } from '../service';
import { TerminalFilter } from './terminal-filter';

export interface Size {
  cols: number;
  rows: number;
}

export interface AttachPipeOptions {
  /** The operator's channel; the pipe reads it only while the attach lasts. */
  channel: Duplex;
  service: Pick<ShellService, 'attach' | 'detached'>;
  operator: Operator;
  /** The session, as a REF (see cluster/refs.ts). */
  ref: string;
  readOnly: boolean;
  /** The operator's terminal size now (it may change while the attach opens). */
  size(): Size;
  logger: Logger;
}

export interface AttachPipe {
  /** Passes the operator's new window size to the session. Never throws; nothing once ended. */
  resize(size: Size): void;
  /** Ends the attach from the shell's side (the agent ends this tmux client). Idempotent. */
  close(): void;
  /** Resolves once the attach ended and the detach is recorded; `failed` if the agent's stream errored. */
  ended: Promise<{ failed: boolean }>;
}

/**
 * Opens an attach (service.attach: role check, audit) and joins it to the channel. Throws what the
 * service throws (the attach is not open then).
 */
export async function openAttachPipe(o: AttachPipeOptions): Promise<AttachPipe> {
  const bounded = (s: Size): Size => clampTermSize(s.cols, s.rows);
  const first = bounded(o.size());
  const { session, attach } = await o.service.attach(o.operator, o.ref, o.readOnly, first.cols, first.rows);
  const { channel } = o;
  let finished = false;
  let finish: (failed: boolean) => void = () => undefined;
  const ended = new Promise<{ failed: boolean }>((resolve) => {
    finish = (failed) => {
      if (finished) return;
      finished = true;
      channel.off('data', toSession);
      channel.off('close', onChannelClose);
      attach.close();
      o.service.detached(o.operator, session);
      resolve({ failed });
    };
  });
  const toSession = (d: Buffer): void => {
    attach.stream.write(d);
  };
  const onChannelClose = (): void => finish(false);
  const toOperator = new TerminalFilter();
  attach.stream.on('data', (d: Buffer) => {
    if (finished) return;
    const safe = toOperator.push(d);
    if (safe.length > 0) channel.write(safe);
  });
  attach.stream.on('close', () => finish(false));
  attach.stream.on('error', (err: Error) => {
    o.logger.debug('attach stream error', { err: messageOf(err) });
    finish(true);
  });
  attach.stream.resume();
  channel.on('data', toSession);
  channel.on('close', onChannelClose);
  /** A failed resize is logged; the attach goes on at the size it had. */
  const resize = (s: Size): void => {
    try {
      attach.resize(s.cols, s.rows);
    } catch (err) {
      o.logger.warn('resize failed', { err: messageOf(err) });
    }
  };
  // The window may have changed while the attach opened.
  const now = bounded(o.size());
  if (now.cols !== first.cols || now.rows !== first.rows) resize(now);
  return {
    resize: (s) => {
      if (!finished) resize(bounded(s));
    },
    close: () => finish(false),
    ended,
  };
}
