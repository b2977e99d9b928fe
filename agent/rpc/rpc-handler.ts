/** berth-rpc: newline-delimited JSON requests in, replies out, many in flight on one channel. */
import { Duplex } from 'node:stream';
import { BerthError, toBerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import {
  LineSplitter,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  RpcEnvelope,
  RpcHandlers,
  RpcOp,
  RpcParams,
  RpcReply,
  RpcResult,
  describeIssue,
  encodeFrame,
  MUTATING_OPS,
  rpcEnvelopeSchema,
  rpcParamsSchemas,
} from '../../common/protocol';
import { Sessions } from '../sessions';
import { OpJournal } from './op-journal';

/** One function per op: the compiler checks each one's params and result against the protocol. */
function handlers(s: Sessions): RpcHandlers {
  return {
    list: async () => ({ sessions: await s.list() }),
    get: (p) => s.get(p.session),
    create: (p, op, opId) => s.create(p, op, opId),
    edit: (p, op) => s.edit(p, op),
    clone: (p, op, opId) => s.clone(p, op, opId),
    restart: (p, op) => s.restart(p.session, op),
    kill: (p, op) => s.kill(p.session, op),
    background: async (p, op) => ({ detached: await s.background(p.session, op) }),
    delete: async (p, op) => {
      const trash = await s.delete(p.session, op);
      return trash ? { id: p.session, trash } : { id: p.session };
    },
    override: (p, op) => s.override(p.session, op, p.reason),
    stats: async () => s.stats(),
    preview: (p) => s.preview(p.session, p.lines),
    restore: (p, op) => s.restore(p.session, op, p.noPort),
  } satisfies RpcHandlers;
}

/** The params of `op`, checked; BAD_REQUEST names the field that is wrong. */
function paramsOf<O extends RpcOp>(op: O, params: unknown): RpcParams<O> {
  const parsed = rpcParamsSchemas[op].safeParse(params ?? {});
  if (!parsed.success) throw new BerthError('BAD_REQUEST', describeIssue(parsed.error));
  return parsed.data;
}

/** Runs the handler of `op` with its checked params. */
function dispatch<O extends RpcOp>(ops: RpcHandlers, op: O, params: RpcParams<O>, operator: string, opId: string | undefined): Promise<RpcResult<O>> {
  const handler: RpcHandlers[O] = ops[op];
  return handler(params, operator, opId);
}

/** A channel; SSH channels can also report an exit status, which OpenSSH's `ssh -s` exits with. */
export type RpcChannel = Duplex & { exit?(code: number): void };

/** A fresh journal per channel when the caller keeps none (an op id then only spans that channel). */
export function serveRpc(channel: RpcChannel, sessions: Sessions, logger: Logger, journal: OpJournal = new OpJournal()): void {
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
    try {
      // Checked before the journal hashes them: params nested too deep to hash are a bad request.
      const params = paramsOf(req.op, req.params);
      const run = (): Promise<unknown> => dispatch(ops, req.op, params, req.operator, req.opId);
      const result = req.opId && MUTATING_OPS.has(req.op) ? await journal.once(req.operator, req.opId, req.op, req.params, run) : await run();
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

/** The id of a frame whose envelope is not valid, if it is one a reply may carry (as the envelope's: 1-64 characters or a safe integer). */
function idOf(raw: unknown): string | number | null {
  if (raw && typeof raw === 'object' && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if ((typeof id === 'string' && id.length >= 1 && id.length <= 64) || (typeof id === 'number' && Number.isSafeInteger(id))) return id;
  }
  return null;
}
