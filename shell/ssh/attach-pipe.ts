/**
 * An operator's terminal joined to a session: the SSH channel's bytes go to the agent's attach
 * stream and back, window changes follow (clamped: the agent is only ever asked a bounded size),
 * and whichever side ends first ends the attach and records the detach. What the session prints
 * reaches the operator through a TerminalFilter (a session is untrusted code: no clipboard
 * sequence, no DCS such as a tmux passthrough). With `title`, the terminal's title names the
 * session and the other sessions that need the operator (attach-title.ts), and the session's own
 * titles are dropped. `ssh -t shell attach REF` and the menu's Enter both use it; each pipe keeps
 * its own title state, so operators attached to one session (pair work) each get theirs.
 */
import { Duplex } from 'node:stream';
import { messageOf } from '../../common/errors';
import { Logger } from '../../common/logging';
import { clampTermSize } from '../../common/protocol';
import type { ClusterView } from '../cluster/view';
import type { Operator, ShellService } from '../service';
import type { Dismissed } from '../ui/menu-attention';
import { AttachTitle, startAttachTitle } from './attach-title';
import { may } from '../roles';
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
  /** The terminal title tells of other sessions needing the operator; none without this. */
  title?: {
    view: Pick<ClusterView, 'sessions' | 'on' | 'off'>;
    /** What the operator dismissed in the menu: those do not count. */
    dismissed?: () => ReadonlyMap<string, Dismissed>;
  };
}

export interface AttachPipe {
  /** Passes the operator's new window size to the session. Never throws; nothing once ended. */
  resize(size: Size): void;
  /** Ends the attach from the shell's side (the agent ends this tmux client). Idempotent. */
  close(): void;
  /**
   * Resolves once the attach ended and the detach is recorded; `failed` if the agent's stream
   * errored or the link to the agent went, `lost` saying so then (the operator was told on the
   * terminal too).
   */
  ended: Promise<{ failed: boolean; lost: string | null }>;
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
  let finish: (failed: boolean, lost?: string) => void = () => undefined;
  const toOperator = new TerminalFilter({ dropTitles: o.title !== undefined });
  const title: AttachTitle | null = o.title
    ? startAttachTitle({
        ...o.title,
        session,
        write: (b) => {
          if (channel.writable) channel.write(b);
        },
      })
    : null;
  const ended = new Promise<{ failed: boolean; lost: string | null }>((resolve) => {
    finish = (failed, lost) => {
      if (finished) return;
      finished = true;
      title?.end();
      channel.off('data', toSession);
      channel.off('close', onChannelClose);
      attach.close();
      o.service.detached(o.operator, session);
      resolve({ failed, lost: lost ?? null });
    };
  });
  // A read-write attach whose operator's role dropped to viewer meanwhile (a config change) ends
  // at their next key, which never reaches the session: they may attach again, read-only.
  const writable = !o.readOnly && may(o.operator.role, 'attach-write');
  const toSession = (d: Buffer): void => {
    if (writable && !may(o.operator.role, 'attach-write')) {
      if (channel.writable) channel.write(`\r\nberth: ${o.operator.name} is now a ${o.operator.role}: this read-write attach ended; attach again to watch\r\n`);
      finish(false);
      return;
    }
    attach.stream.write(d);
  };
  const onChannelClose = (): void => finish(false);
  attach.stream.on('data', (d: Buffer) => {
    if (finished) return;
    const safe = toOperator.push(d);
    if (safe.length === 0) return;
    channel.write(safe);
    title?.sent(safe);
  });
  attach.stream.on('close', () => {
    if (finished) return;
    void attach.lost().then((why) => {
      // The session runs on where it is: only this view of it went with the link.
      if (why && !finished && channel.writable) channel.write(`\r\nberth: ${why}; this attach ended and the session runs on there: attach again once the agent is back\r\n`);
      finish(why !== null, why ?? undefined);
    });
  });
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
