/**
 * berth-attach: one JSON header line in, one JSON reply line out, then raw terminal bytes both
 * ways. Closing the channel (or the connection dropping) ends exactly this operator's tmux client.
 * Every size is clamped (the header's by its schema, window changes here); a resize that fails is
 * logged and the attach goes on.
 */
import { Duplex } from 'node:stream';
import { BerthError, messageOf, toBerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import {
  AttachReply,
  LineSplitter,
  MAX_REQUEST_BYTES,
  TermSize,
  attachHeaderSchema,
  clampTermSize,
  describeIssue,
  encodeFrame,
  headerOf,
} from '../../common/protocol';
import { OpenAttach, Sessions } from '../sessions';

export interface AttachControl {
  /**
   * Called by the SSH layer on `window-change`, with the numbers as the client sent them: they are
   * clamped here. Before the attach is open the size is kept for it. Never throws.
   */
  resize(cols: number, rows: number): void;
}

export function serveAttach(channel: Duplex, sessions: Sessions, logger: Logger): AttachControl {
  const log = logger.child({ component: 'attach' });
  const splitter = new LineSplitter(MAX_REQUEST_BYTES);
  let open: OpenAttach | null = null;
  let closed = false;
  let sessionId: string | null = null;
  /** A window change's size not yet handed to the runtime. */
  let wanted: TermSize | null = null;
  /** The size the runtime last applied (the header's at first); null if unknown. */
  let applied: TermSize | null = null;
  let resizing = false;
  /** Bytes typed after the header but before tmux is there. */
  const early: Buffer[] = [];
  let phase: 'header' | 'opening' | 'open' = 'header';

  const reply = (r: AttachReply): void => {
    if (!channel.destroyed && channel.writable) channel.write(encodeFrame(r));
  };
  const refuse = (err: BerthError): void => {
    reply({ ok: false, error: err.toWire() });
    channel.end();
  };

  /**
   * Hands the wanted size to the runtime, one resize at a time: window changes that come meanwhile
   * overwrite each other, so a flood of them costs a few calls and the latest size wins. A failure
   * is logged, never fatal.
   */
  const applySize = async (): Promise<void> => {
    if (resizing) return;
    resizing = true;
    try {
      while (open && !closed && wanted) {
        const s = wanted;
        wanted = null;
        if (applied && s.cols === applied.cols && s.rows === applied.rows) continue;
        try {
          await open.handle.resize(s.cols, s.rows);
          applied = s;
        } catch (err) {
          // Unknown now: the next window change is tried even if it asks the same size.
          applied = null;
          log.warn('resize failed', { session: sessionId, err: messageOf(err) });
        }
      }
    } finally {
      resizing = false;
    }
  };

  const begin = async (line: string): Promise<void> => {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      refuse(new BerthError('BAD_REQUEST', 'attach header is not valid JSON'));
      return;
    }
    const h = attachHeaderSchema.safeParse(raw);
    if (!h.success) {
      refuse(new BerthError('BAD_REQUEST', describeIssue(h.error)));
      return;
    }
    const { session, operator, readOnly, cols, rows } = h.data;
    sessionId = session;
    try {
      open = await sessions.openAttach(session, operator, readOnly, cols, rows);
    } catch (err) {
      refuse(toBerthError(err));
      return;
    }
    if (closed) {
      await open.close();
      return;
    }
    phase = 'open';
    reply({ ok: true, session: open.entry });
    const stream = open.handle.stream;
    stream.on('data', (d: Buffer) => {
      if (!channel.destroyed) channel.write(d);
    });
    const finish = (): void => {
      if (!channel.destroyed) channel.end();
      void open?.close();
    };
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', (err: Error) => {
      log.debug('attach stream error', { session, err: err.message });
      finish();
    });
    // The runtime opened the attach at the header's size.
    applied = { cols, rows };
    void applySize();
    for (const b of early.splice(0)) stream.write(b);
  };

  channel.on('data', (chunk: Buffer) => {
    if (phase === 'open' && open) {
      open.handle.stream.write(chunk);
      return;
    }
    if (phase === 'opening') {
      early.push(chunk);
      return;
    }
    // Header phase: the first line that is a frame is the header (blank lines are none); everything
    // after its newline is already terminal input.
    const got = headerOf(splitter, chunk);
    if (!got) return;
    phase = 'opening';
    if (got.frame.kind === 'oversized') {
      refuse(new BerthError('BAD_REQUEST', `attach header is larger than ${MAX_REQUEST_BYTES} bytes`));
      return;
    }
    if (got.rest.length > 0) early.push(got.rest);
    void begin(got.frame.line);
  });
  channel.on('close', () => {
    closed = true;
    void open?.close();
  });
  channel.on('error', (err: Error) => log.debug('attach channel error', { err: err.message }));

  return {
    resize(cols, rows) {
      wanted = clampTermSize(cols, rows);
      void applySize();
    },
  };
}
