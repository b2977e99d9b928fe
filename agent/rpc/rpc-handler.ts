/** berth-rpc: newline-delimited JSON requests in, replies out, many in flight on one channel. */
import { Duplex } from 'node:stream';
import { BerthError, toBerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import {
  LineSplitter,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  RpcEnvelope,
  RpcOp,
  RpcReply,
  describeIssue,
  encodeFrame,
  rpcEnvelopeSchema,
  rpcParamsSchemas,
} from '../../common/protocol';
import { Sessions } from '../sessions';

type Handler = (params: never, operator: string) => Promise<unknown>;

/** One function per op; params arrive already checked by the op's schema. */
function handlers(s: Sessions): Record<RpcOp, Handler> {
  const h = {
    list: async () => ({ sessions: await s.list() }),
    get: (p: { session: string }) => s.get(p.session),
    create: (p: Parameters<Sessions['create']>[0], op: string) => s.create(p, op),
    edit: (p: Parameters<Sessions['edit']>[0], op: string) => s.edit(p, op),
    clone: (p: Parameters<Sessions['clone']>[0], op: string) => s.clone(p, op),
    restart: (p: { session: string }, op: string) => s.restart(p.session, op),
    kill: (p: { session: string }, op: string) => s.kill(p.session, op),
    background: async (p: { session: string }, op: string) => ({ detached: await s.background(p.session, op) }),
    delete: async (p: { session: string }, op: string) => {
      await s.delete(p.session, op);
      return { id: p.session };
    },
    override: (p: { session: string; reason?: string }, op: string) => s.override(p.session, op, p.reason),
    stats: async () => s.stats(),
  };
  return h as Record<RpcOp, Handler>;
}

/** A channel; SSH channels can also report an exit status, which OpenSSH's `ssh -s` exits with. */
export type RpcChannel = Duplex & { exit?(code: number): void };

export function serveRpc(channel: RpcChannel, sessions: Sessions, logger: Logger): void {
  const log = logger.child({ component: 'rpc' });
  const ops = handlers(sessions);
  const splitter = new LineSplitter(MAX_REQUEST_BYTES);
  const send = (reply: RpcReply): void => {
    if (!channel.destroyed && channel.writable) channel.write(encodeFrame(reply));
  };
  const fail = (id: RpcReply['id'], err: BerthError): void => send({ id, ok: false, error: err.toWire() });
  // When the client ends its side (EOF), answer what is in flight, then close: `ssh -s … berth-rpc
  // < requests` exits once every reply is out.
  let inFlight = 0;
  let ending = false;
  const closeIfDone = (): void => {
    if (!ending || inFlight > 0 || channel.destroyed) return;
    channel.exit?.(0);
    channel.end();
  };

  const handle = async (line: string): Promise<void> => {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      fail(null, new BerthError('BAD_REQUEST', 'frame is not valid JSON'));
      return;
    }
    const env = rpcEnvelopeSchema.safeParse(raw);
    if (!env.success) {
      fail(idOf(raw), new BerthError('BAD_REQUEST', describeIssue(env.error)));
      return;
    }
    const req: RpcEnvelope = env.data;
    if (req.v !== PROTOCOL_VERSION) {
      fail(req.id, new BerthError('BAD_REQUEST', `protocol version ${req.v} is not spoken here (agent speaks ${PROTOCOL_VERSION})`));
      return;
    }
    const params = rpcParamsSchemas[req.op].safeParse(req.params ?? {});
    if (!params.success) {
      fail(req.id, new BerthError('BAD_REQUEST', describeIssue(params.error)));
      return;
    }
    try {
      const result = await ops[req.op](params.data as never, req.operator);
      send({ id: req.id, ok: true, result });
    } catch (err) {
      const e = toBerthError(err);
      if (e.code === 'INTERNAL') log.error('op failed', { op: req.op, operator: req.operator, err: e.message, stack: (err as Error).stack });
      else log.info('op refused', { op: req.op, operator: req.operator, code: e.code, err: e.message });
      fail(req.id, e);
    }
  };

  channel.on('data', (chunk: Buffer) => {
    for (const f of splitter.push(chunk)) {
      if (f.kind === 'oversized') {
        fail(null, new BerthError('BAD_REQUEST', `frame is larger than ${MAX_REQUEST_BYTES} bytes`));
        continue;
      }
      inFlight++;
      void handle(f.line).finally(() => {
        inFlight--;
        closeIfDone();
      });
    }
  });
  channel.on('end', () => {
    ending = true;
    closeIfDone();
  });
  channel.on('error', (err: Error) => log.debug('rpc channel error', { err: err.message }));
}

function idOf(raw: unknown): string | number | null {
  if (raw && typeof raw === 'object' && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if ((typeof id === 'string' && id.length <= 64) || (typeof id === 'number' && Number.isInteger(id))) return id;
  }
  return null;
}
