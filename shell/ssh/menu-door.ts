/**
 * Serves the menu on an operator's SSH channel and switches the terminal between the menu and an
 * attach: blessed gets proxy streams (its output reaches the operator only in menu mode), the
 * attach gets the raw channel, and `Ctrl-b d` hands the terminal back at its current size.
 */
import { PassThrough, Writable } from 'node:stream';
import { ServerChannel } from 'ssh2';
import { BerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { Operator, ShellService } from '../service';
import { startMenu } from '../ui/menu';
import { AttachPipe, Size, openAttachPipe } from './attach-pipe';

/** An operator's own settings for their menu (the shell config's `operators[]`). */
export interface MenuPrefs {
  /** The terminal bell when a session starts waiting; default true. */
  bell?: boolean;
}

export function serveMenu(
  ch: ServerChannel,
  op: Operator,
  size: Size,
  service: ShellService,
  logger: Logger,
  onResize: (f: (s: Size) => void) => void,
  prefs: MenuPrefs = {},
): void {
  let mode: 'menu' | 'attach' = 'menu';
  let current = size;
  let pipe: AttachPipe | null = null;
  const input = new PassThrough();
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (mode === 'menu' && !ch.destroyed) ch.write(chunk);
      cb();
    },
  });
  /** The menu's Enter: the channel goes to the attach (keys typed while it opens are dropped). */
  const attach = async (sessionId: string, readOnly: boolean): Promise<void> => {
    mode = 'attach';
    try {
      pipe = await openAttachPipe({ channel: ch, service, operator: op, ref: sessionId, readOnly, size: () => current, logger, title: { view: service.view, dismissed: () => menu.dismissed() } });
      const { lost } = await pipe.ended;
      // The menu comes back over the terminal's last lines: its status line says it again.
      if (lost) throw new BerthError('AGENT_OFFLINE', `${lost}; the attach ended and the session runs on there`);
    } finally {
      pipe = null;
      mode = 'menu';
    }
  };
  const menu = startMenu({ input, output, cols: size.cols, rows: size.rows, service, operator: op, logger, attach, bell: prefs.bell });
  ch.on('data', (d: Buffer) => {
    if (mode === 'menu') input.write(d);
  });
  onResize((s) => {
    current = s;
    // The menu always learns the size (it redraws only while shown), so Ctrl-b d brings it
    // back at the size the terminal has then.
    menu.resize(s.cols, s.rows);
    pipe?.resize(s);
  });
  const finish = (): void => {
    menu.destroy();
    pipe?.close();
    if (!ch.destroyed) {
      ch.exit(0);
      ch.end();
    }
  };
  void menu.done.then(finish);
  // An attach in progress ends by itself when the channel closes.
  ch.on('close', () => menu.destroy());
  logger.debug('menu opened', { operator: op.name });
}
