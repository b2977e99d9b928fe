/**
 * What the agent must answer to a hostile frame, worked out from the protocol alone (the same
 * framing and schemas the agent reads with), and raw channels to send such frames on: the
 * oracle of the hostile-agent suite.
 */
import { type ClientChannel } from 'ssh2';
import { ERROR_CODES } from '../../common/errors';
import {
  LineSplitter,
  MAX_REPLY_BYTES,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  RpcOp,
  attachHeaderSchema,
  moveEnvelopeSchema,
  moveHeaderSchema,
  rpcEnvelopeSchema,
  rpcParamsSchemas,
} from '../../common/protocol';

/**
 * `bad`: the frame breaks the protocol, so the answer is BAD_REQUEST. `valid`: it is a well-formed
 * request, so the answer is its result or a refusal for what it asks (never BAD_REQUEST for its
 * shape, never INTERNAL): only the protocol can say which frames are which, so this is the test.
 */
export interface Verdict {
  kind: 'bad' | 'valid';
  /** The id the reply must carry (berth-rpc): the request's, or null when none can be read. */
  id: string | number | null;
  /** The op of a valid RPC request. */
  op?: RpcOp;
  /** The frame's first bytes as text, to say which one failed. */
  shown: string;
}

export const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

const show = (line: string): string => JSON.stringify(line.slice(0, 160));

/**
 * The id the reply to a frame with a broken envelope carries: the frame's, if it is one a reply
 * may carry (1-64 characters or a safe integer, as the envelope's), else null.
 */
function readableId(raw: unknown): string | number | null {
  if (raw && typeof raw === 'object' && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if ((typeof id === 'string' && id.length >= 1 && id.length <= 64) || (typeof id === 'number' && Number.isSafeInteger(id))) return id;
  }
  return null;
}

function parse(line: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(line) };
  } catch {
    return { ok: false };
  }
}

/** What one berth-rpc line (or an oversized one) must be answered with. */
export function rpcVerdict(frame: { kind: 'line'; line: string } | { kind: 'oversized'; bytes: number }): Verdict {
  if (frame.kind === 'oversized') return { kind: 'bad', id: null, shown: `<${frame.bytes} bytes>` };
  const shown = show(frame.line);
  const raw = parse(frame.line);
  if (!raw.ok) return { kind: 'bad', id: null, shown };
  const env = rpcEnvelopeSchema.safeParse(raw.value);
  if (!env.success) return { kind: 'bad', id: readableId(raw.value), shown };
  const { v, id, op, params } = env.data;
  if (v !== PROTOCOL_VERSION) return { kind: 'bad', id, shown };
  if (!rpcParamsSchemas[op].safeParse(params ?? {}).success) return { kind: 'bad', id, shown };
  return { kind: 'valid', id, op, shown };
}

/**
 * The header line of an attach or move channel fed `bytes`: its first frame (blank lines are not
 * frames), or null when there is none yet.
 */
export function headerFrame(bytes: Buffer): { kind: 'line'; line: string } | { kind: 'oversized'; bytes: number } | null {
  return new LineSplitter(MAX_REQUEST_BYTES).push(bytes)[0] ?? null;
}

/** What an attach header must be answered with. */
export function attachVerdict(frame: { kind: 'line'; line: string } | { kind: 'oversized'; bytes: number }): Verdict {
  if (frame.kind === 'oversized') return { kind: 'bad', id: null, shown: `<${frame.bytes} bytes>` };
  const raw = parse(frame.line);
  const ok = raw.ok && attachHeaderSchema.safeParse(raw.value).success;
  return { kind: ok ? 'valid' : 'bad', id: null, shown: show(frame.line) };
}

/** What a move header must be answered with. */
export function moveVerdict(frame: { kind: 'line'; line: string } | { kind: 'oversized'; bytes: number }): Verdict {
  if (frame.kind === 'oversized') return { kind: 'bad', id: null, shown: `<${frame.bytes} bytes>` };
  const shown = show(frame.line);
  const raw = parse(frame.line);
  if (!raw.ok) return { kind: 'bad', id: null, shown };
  const env = moveEnvelopeSchema.safeParse(raw.value);
  const ok = env.success && env.data.v === PROTOCOL_VERSION && moveHeaderSchema.safeParse(env.data.req).success;
  return { kind: ok ? 'valid' : 'bad', id: null, shown };
}

/** Whether an error code fits a verdict: BAD_REQUEST for a bad frame, any known code but INTERNAL for a valid one. */
export function codeFits(v: Verdict, code: string): boolean {
  if (!KNOWN_CODES.has(code) || code === 'INTERNAL') return false;
  return v.kind === 'bad' ? code === 'BAD_REQUEST' : true;
}

/** Every line a channel sends, as it comes (lines past the reply limit are reported as such). */
export function onLines(ch: ClientChannel, each: (line: string | null) => void): void {
  const splitter = new LineSplitter(MAX_REPLY_BYTES);
  ch.on('data', (chunk: Buffer) => {
    for (const f of splitter.push(chunk)) each(f.kind === 'line' ? f.line : null);
  });
}

export interface HeaderOutcome {
  /** The first line the agent sent, or null if none came in time. */
  reply: string | null;
  /** Whether the agent closed the channel (within the time given, after its reply). */
  closed: boolean;
}

/**
 * Sends `bytes` as a channel's header and waits (bounded) for the agent's first line and for it to
 * close the channel; a channel the agent left open, or one whose reply `leave` says to leave (an
 * attach that opened), is closed here.
 */
export function sendHeader(ch: ClientChannel, bytes: Buffer, timeoutMs: number, leave: (reply: string) => boolean = () => false): Promise<HeaderOutcome> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let reply: string | null = null;
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!closed) ch.close();
      resolve({ reply, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    ch.on('data', (d: Buffer) => {
      if (reply !== null) return;
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl === -1) return;
      reply = buf.subarray(0, nl).toString('utf8');
      if (leave(reply)) finish(false);
    });
    ch.on('close', () => finish(true));
    ch.on('error', () => undefined);
    ch.stderr.on('data', () => undefined);
    ch.write(bytes);
  });
}

/** Runs `task(i)` for i in [0, count) with at most `width` at once. */
export async function pooled(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
}
