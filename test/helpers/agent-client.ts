/**
 * A real ssh2 client for the agent's subsystems, as a shell would use them: pinned host key,
 * public-key auth, RPC with many requests in flight, the event stream, attaches.
 */
import net from 'node:net';
import { Client, ClientChannel } from 'ssh2';
import { generateEd25519 } from '../../common/ssh-keys';
import { createHash } from 'node:crypto';
import {
  AgentEvent,
  AttachReply,
  LineSplitter,
  MAX_REPLY_BYTES,
  PROTOCOL_VERSION,
  RpcOp,
  RpcParamsInput,
  RpcReply,
  RpcResult,
  SUBSYSTEMS,
  SessionEntry,
  SessionView,
  encodeFrame,
  eventSchema,
  rpcReplySchema,
  rpcResultSchemas,
} from '../../common/protocol';

export class RpcError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface ConnectOptions {
  host?: string;
  port: number;
  privateKey: Buffer | string;
  /** SHA256:… of the agent's host key; the connection fails on any other. */
  fingerprint?: string;
  username?: string;
}

export function keyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export async function connectAgent(o: ConnectOptions): Promise<AgentClient> {
  const conn = new Client();
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: o.host ?? '127.0.0.1', port: o.port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
  await new Promise<void>((resolve, reject) => {
    conn.once('ready', () => resolve());
    conn.once('error', reject);
    conn.connect({
      sock,
      username: o.username ?? 'shell',
      privateKey: o.privateKey,
      readyTimeout: 10_000,
      hostVerifier: o.fingerprint ? (key: Buffer) => keyFingerprint(key) === o.fingerprint : undefined,
    });
  });
  conn.on('error', () => undefined);
  return new AgentClient(conn);
}

export class AgentClient {
  private rpcChannel: Promise<ClientChannel> | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number | string, { resolve(r: RpcReply): void }>();
  /** Replies that carried no id (frames the agent could not read). */
  readonly orphanReplies: RpcReply[] = [];

  constructor(readonly conn: Client) {}

  subsystem(name: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.conn.subsys(name, (err: Error | undefined, ch: ClientChannel) => (err ? reject(err) : resolve(ch)));
    });
  }

  /** The raw RPC channel, for tests that send malformed frames. */
  rpcRaw(): Promise<ClientChannel> {
    if (!this.rpcChannel) {
      this.rpcChannel = this.subsystem(SUBSYSTEMS.rpc).then((ch) => {
        const splitter = new LineSplitter(MAX_REPLY_BYTES);
        ch.on('data', (chunk: Buffer) => {
          for (const f of splitter.push(chunk)) {
            if (f.kind !== 'line') continue;
            const reply = rpcReplySchema.parse(JSON.parse(f.line));
            const w = reply.id === null ? undefined : this.waiting.get(reply.id);
            if (w && reply.id !== null) {
              this.waiting.delete(reply.id);
              w.resolve(reply);
            } else {
              this.orphanReplies.push(reply);
            }
          }
        });
        return ch;
      });
    }
    return this.rpcChannel;
  }

  /** Sends one request and waits for its reply (ok or not). */
  async request(op: string, params: unknown, operator = 'alice', extra: Record<string, unknown> = {}): Promise<RpcReply> {
    const ch = await this.rpcRaw();
    const id = this.nextId++;
    const p = new Promise<RpcReply>((resolve) => this.waiting.set(id, { resolve }));
    ch.write(encodeFrame({ v: PROTOCOL_VERSION, id, op, params, operator, ...extra }));
    return p;
  }

  /** Calls an op; throws RpcError with the agent's code on refusal. */
  async call<O extends RpcOp>(op: O, params: RpcParamsInput<O>, operator = 'alice'): Promise<RpcResult<O>> {
    const r = await this.request(op, params, operator);
    if (!r.ok) throw new RpcError(r.error.code, r.error.message);
    // Every result a test sees is checked against the protocol, as the shell checks it.
    return rpcResultSchemas[op].parse(r.result);
  }

  /** Opens berth-events and collects every event. */
  async events(): Promise<EventLog> {
    const ch = await this.subsystem(SUBSYSTEMS.events);
    return new EventLog(ch);
  }

  /** Opens berth-attach; resolves once the agent answered the header. */
  async attach(header: Record<string, unknown>, opts: { rows?: number; cols?: number } = {}): Promise<Attach> {
    const ch = await new Promise<ClientChannel>((resolve, reject) => {
      this.conn.subsys(SUBSYSTEMS.attach, (err: Error | undefined, c: ClientChannel) => (err ? reject(err) : resolve(c)));
    });
    const a = new Attach(ch);
    ch.write(encodeFrame({ cols: opts.cols ?? 100, rows: opts.rows ?? 30, readOnly: false, operator: 'alice', ...header }));
    await a.ready;
    return a;
  }

  close(): void {
    this.conn.end();
  }
}

export class EventLog {
  readonly events: AgentEvent[] = [];
  private listeners: Array<() => void> = [];

  constructor(readonly channel: ClientChannel) {
    const splitter = new LineSplitter(MAX_REPLY_BYTES);
    channel.on('data', (chunk: Buffer) => {
      for (const f of splitter.push(chunk)) {
        if (f.kind !== 'line') continue;
        this.events.push(eventSchema.parse(JSON.parse(f.line)));
        for (const l of this.listeners) l();
      }
    });
  }

  /** Resolves with the first event (from index `from`) matching, or rejects after `timeoutMs`. */
  waitFor(pred: (e: AgentEvent) => boolean, timeoutMs = 10_000, from = 0): Promise<AgentEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.events.slice(from).find(pred);
        if (hit) {
          clearTimeout(timer);
          this.listeners = this.listeners.filter((l) => l !== onEvent);
          resolve(hit);
          return true;
        }
        return false;
      };
      const onEvent = (): void => void check();
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== onEvent);
        reject(new Error(`no matching event in ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.listeners.push(onEvent);
    });
  }

  close(): void {
    this.channel.close();
  }
}

export class Attach {
  readonly ready: Promise<AttachReply>;
  private buf = '';
  private head = Buffer.alloc(0);
  private opened = false;
  private dataListeners: Array<() => void> = [];
  readonly closed: Promise<void>;

  constructor(readonly channel: ClientChannel) {
    let answer: (r: AttachReply) => void = () => undefined;
    this.ready = new Promise((r) => (answer = r));
    this.closed = new Promise((r) => channel.on('close', () => r()));
    channel.on('data', (chunk: Buffer) => {
      if (!this.opened) {
        this.head = Buffer.concat([this.head, chunk]);
        const nl = this.head.indexOf(0x0a);
        if (nl === -1) return;
        this.opened = true;
        answer(JSON.parse(this.head.subarray(0, nl).toString('utf8')) as AttachReply);
        chunk = this.head.subarray(nl + 1);
      }
      this.buf += chunk.toString('utf8');
      if (this.buf.length > 1_000_000) this.buf = this.buf.slice(-500_000);
      for (const l of this.dataListeners) l();
    });
    channel.on('close', () => {
      if (!this.opened) answer({ ok: false, error: { code: 'INTERNAL', message: 'channel closed before a reply' } });
    });
  }

  /** Everything the terminal received so far (escape sequences included). */
  get output(): string {
    return this.buf;
  }

  write(s: string): void {
    this.channel.write(s);
  }

  /**
   * Sends an SSH window-change, as a terminal resize would. ssh2's `setWindow` only sends it on
   * shell/exec channels, not on a subsystem, so this goes through ssh2's protocol object directly.
   */
  resize(size: { cols: number; rows: number }): void {
    const ch = this.channel as unknown as { outgoing: { id: number }; _client: { _protocol: { windowChange(...a: number[]): void } } };
    ch._client._protocol.windowChange(ch.outgoing.id, size.rows, size.cols, 0, 0);
  }

  /** Resolves when the output (from `from` on) contains `text`, or rejects after `timeoutMs`. */
  waitForText(text: string, timeoutMs = 10_000, from = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.buf.indexOf(text, from) !== -1) {
          clearTimeout(timer);
          this.dataListeners = this.dataListeners.filter((l) => l !== onData);
          resolve();
          return true;
        }
        return false;
      };
      const onData = (): void => void check();
      const timer = setTimeout(() => {
        this.dataListeners = this.dataListeners.filter((l) => l !== onData);
        reject(new Error(`"${text}" not seen in ${timeoutMs} ms; tail: ${JSON.stringify(this.buf.slice(-300))}`));
      }, timeoutMs);
      if (!check()) this.dataListeners.push(onData);
    });
  }

  close(): void {
    this.channel.close();
  }
}

/** A fresh ed25519 key pair for a test shell. */
export function makeShellKey(): { private: string; public: string } {
  return generateEd25519();
}

/** The entry as a (not broken) session; throws for a broken one. */
export function view(e: SessionEntry): SessionView {
  if (e.kind !== 'session') throw new Error(`expected a session, got broken: ${e.reason}`);
  return e;
}

/** The RpcError a call is refused with; throws if it succeeds or fails otherwise. */
export async function refusal(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RpcError) return err;
    throw err;
  }
  throw new Error('expected the agent to refuse, but it answered ok');
}
