/**
 * Serves the menu on an operator's SSH channel and switches the terminal between the menu and an
 * attach: blessed gets proxy streams (its output reaches the operator only in menu mode), the
 * attach gets the raw channel, and `Ctrl-b d` hands the terminal back at its current size.
 */
import { Duplex, PassThrough, Writable } from 'node:stream';
import { ServerChannel } from 'ssh2';
import { Logger } from '../../common/logging';
import { Operator, ShellService } from '../service';
import { startMenu } from '../ui/menu';

export interface Size {
  cols: number;
  rows: number;
}

export function serveMenu(
  ch: ServerChannel,
  op: Operator,
  size: Size,
  service: ShellService,
  logger: Logger,
  onResize: (f: (s: Size) => void) => void,
): void {
  let mode: 'menu' | 'attach' = 'menu';
  let current = size;
  let attach: { stream: Duplex; resize(cols: number, rows: number): void } | null = null;
  const input = new PassThrough();
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (mode === 'menu' && !ch.destroyed) ch.write(chunk);
      cb();
    },
  });
  const menu = startMenu({
    input,
    output,
    cols: size.cols,
    rows: size.rows,
    service,
    operator: op,
    logger,
    attach: (sessionId, readOnly) =>
      new Promise<void>((resolve, reject) => {
        mode = 'attach';
        service.attach(op, sessionId, readOnly, current.cols, current.rows).then(
          ({ session, attach: a }) => {
            attach = { stream: a.stream, resize: a.resize };
            let ended = false;
            const end = (): void => {
              if (ended) return;
              ended = true;
              attach = null;
              a.close();
              service.detached(op, session);
              mode = 'menu';
              resolve();
            };
            a.stream.on('data', (d: Buffer) => ch.write(d));
            a.stream.on('close', end);
            a.stream.on('error', end);
            a.stream.resume();
            // The window may have changed while the attach opened.
            a.resize(current.cols, current.rows);
          },
          (err: unknown) => {
            mode = 'menu';
            reject(err);
          },
        );
      }),
  });
  ch.on('data', (d: Buffer) => {
    if (mode === 'menu') input.write(d);
    else attach?.stream.write(d);
  });
  onResize((s) => {
    current = s;
    // The menu always learns the size (it redraws only while shown), so Ctrl-b d brings it
    // back at the size the terminal has then.
    menu.resize(s.cols, s.rows);
    if (mode === 'attach') attach?.resize(s.cols, s.rows);
  });
  const finish = (): void => {
    menu.destroy();
    attach?.stream.destroy();
    if (!ch.destroyed) {
      ch.exit(0);
      ch.end();
    }
  };
  void menu.done.then(finish);
  ch.on('close', () => {
    menu.destroy();
    attach?.stream.destroy();
  });
  logger.debug('menu opened', { operator: op.name });
}
