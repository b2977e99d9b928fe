/**
 * berth-move: one JSON header line in, one JSON reply line out; then, for `out-export`, the
 * session folder's tar stream out until EOF, and for `in-import`, the tar stream in until the
 * shell's EOF and one more line out: what was received. See common/protocol/move.ts.
 */
import { Duplex } from 'node:stream';
import { BerthError, toBerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { LineSplitter, MAX_REQUEST_BYTES, MoveHeader, PROTOCOL_VERSION, describeIssue, encodeFrame, headerOf, moveEnvelopeSchema, moveHeaderSchema } from '../../common/protocol';
import { Sessions } from '../sessions';

export function serveMove(channel: Duplex, sessions: Sessions, logger: Logger): void {
  const log = logger.child({ component: 'move' });
  const splitter = new LineSplitter(MAX_REQUEST_BYTES);
  const send = (r: unknown): void => {
    if (!channel.destroyed && channel.writable) channel.write(encodeFrame(r));
  };
  const fail = (err: unknown): void => {
    const e = toBerthError(err);
    if (e.code === 'INTERNAL') log.error('move op failed', { err: e.message });
    else log.info('move op refused', { code: e.code, err: e.message });
    send({ ok: false, error: e.toWire() });
    channel.end();
  };

  const run = async (line: string): Promise<void> => {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new BerthError('BAD_REQUEST', 'move header is not valid JSON');
    }
    const env = moveEnvelopeSchema.safeParse(raw);
    if (!env.success) throw new BerthError('BAD_REQUEST', describeIssue(env.error));
    if (env.data.v !== PROTOCOL_VERSION) throw new BerthError('BAD_REQUEST', `protocol version ${env.data.v} is not spoken here`);
    const h = moveHeaderSchema.safeParse(env.data.req);
    if (!h.success) throw new BerthError('BAD_REQUEST', describeIssue(h.error, 'req'));
    await serveOp(h.data, env.data.operator);
  };

  const serveOp = async (h: MoveHeader, operator: string): Promise<void> => {
    const m = sessions.moves;
    const done = (result: unknown = {}): void => {
      send({ ok: true, result });
      channel.end();
    };
    switch (h.op) {
      case 'out-begin':
        return done(await m.outBegin(h.session, h.token, h.to, operator));
      case 'out-export':
        m.checkOut(h.session, h.token);
        send({ ok: true, result: {} });
        try {
          await m.outExport(h.session, h.token, channel);
        } finally {
          channel.end();
        }
        return;
      case 'out-sums':
        return done(m.outSums(h.session, h.token));
      case 'out-finish':
        return done(await m.outFinish(h.session, h.token).then(() => ({})));
      case 'out-cancel':
        return done(await m.outCancel(h.session, h.token).then(() => ({})));
      case 'in-begin':
        return done(await m.inBegin(h.meta, h.token, h.from, h.running).then(() => ({})));
      case 'in-import': {
        m.checkIn(h.session, h.token);
        send({ ok: true, result: {} });
        const sums = await m.inImport(h.session, h.token, channel).catch((err: unknown) => ({ error: toBerthError(err).toWire() }));
        send(sums);
        channel.end();
        return;
      }
      case 'in-commit':
        return done(await m.inCommit(h.session, h.token, { bytes: h.bytes, sha256: h.sha256 }).then(() => ({})));
      case 'in-confirm':
        return done(await m.inConfirm(h.session, h.token, operator).then(() => ({})));
      case 'in-abort':
        return done(await m.inAbort(h.session, h.token).then(() => ({})));
      case 'in-status':
        return done({ status: await m.inStatus(h.session, h.token) });
      case 'pending':
        return done(await m.pending());
    }
  };

  const onData = (chunk: Buffer): void => {
    const got = headerOf(splitter, chunk);
    if (!got) return;
    channel.off('data', onData);
    // Whatever came after the header is the start of an import's stream.
    channel.pause();
    if (got.rest.length > 0) channel.unshift(got.rest);
    if (got.frame.kind === 'oversized') return fail(new BerthError('BAD_REQUEST', `move header is larger than ${MAX_REQUEST_BYTES} bytes`));
    run(got.frame.line).catch(fail);
  };
  channel.on('data', onData);
  channel.on('error', (err: Error) => log.debug('move channel error', { err: err.message }));
}
