/**
 * One persistent SSH connection from the shell to one agent, straight or through a bastion: the
 * agent's host key is pinned (any other key is refused, as is a bastion presenting another key
 * than its pin), keepalives find a silent agent within seconds, and a lost connection (the
 * bastion's included) is retried with backoff. Carries RPC calls (each with a timeout), the event
 * stream and attaches.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { Client, ClientChannel } from 'ssh2';
import { z } from 'zod';
import { BerthError, messageOf } from '../../common/errors';
import { parseJson } from '../../common/json';
import { Logger } from '../../common/logging';
import {
  AttachHeader,
  AttachReply,
  LineSplitter,
  MAX_REPLY_BYTES,
  PROTOCOL_VERSION,
  RpcOp,
  RpcParamsInput,
  RpcResult,
  SUBSYSTEMS,
  attachReplySchema,
  MoveHeader,
  moveReplySchema,
  describeIssue,
  encodeFrame,
  eventSchema,
  rpcReplySchema,
  rpcResultSchemas,
} from '../../common/protocol';
import { fingerprint } from '../../common/ssh-keys';
import { ask, channelOpenError, openSubsystem, windowChange } from './channels';
import { PinnedJump } from './enrolled';
import { Route, directRoute, jumpRoute } from './jump';

export type LinkStatus = 'connecting' | 'online' | 'offline';

export interface AgentLinkOptions {
  id: string;
  host: string;
  port: number;
  fingerprint: string;
  /** A bastion to reach host:port through (host and port as the bastion sees them); none: straight there. */
  jump?: PinnedJump;
  /** The shell's agent key: logs in to the agent, and to the bastion. */
  privateKey: Buffer;
  logger: Logger;
  /** Keepalive interval; a peer silent for ~3 of them is dropped. */
  keepaliveMs?: number;
  maxBackoffMs?: number;
}

export interface AgentAttach {
  /** The agent's answer, then raw terminal bytes both ways. */
  stream: Duplex;
  reply: AttachReply;
  /** Sends a window-change to the agent. Never throws. */
  resize(cols: number, rows: number): void;
  /** Closes this attach (the agent ends exactly this tmux client). Idempotent. */
  close(): void;
  /**
   * Once the stream closed: why, when it was the link to the agent that went (`agent agent-1 went
   * offline: …`), else null (the agent ended the attach: a detach, the session stopped).
   */
  lost(): Promise<string | null>;
}

/** An RPC call waiting for its reply. */
interface PendingCall {
  resolve(v: unknown): void;
  reject(e: BerthError): void;
  opId: string | undefined;
  timer: NodeJS.Timeout;
  /** Starts the call's timeout over (its job is alive). */
  rearm(): void;
}

/** Events: 'status' (LinkStatus, reason), 'event' (AgentEvent). */
export class AgentLink extends EventEmitter {
  status: LinkStatus = 'connecting';
  /** Why the link is not online, for the menu and `agents`. */
  reason = '';
  private conn: Client | null = null;
  /** What carries `conn`: its socket, or its bastion connection. */
  private route: Route | null = null;
  private rpc: ClientChannel | null = null;
  private readonly pending = new Map<number, PendingCall>();
  private nextId = 1;
  private stopped = false;
  private backoff = 500;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly log: Logger;

  constructor(private readonly o: AgentLinkOptions) {
    super();
    this.log = o.logger.child({ component: 'agent-link', agent: o.id });
  }

  /** Starts connecting (and reconnecting until stop). Idempotent. */
  start(): void {
    if (this.conn || this.stopped) return;
    this.connect();
  }

  /**
   * Drops the connection (the agent's and the bastion's, or an attempt under way) and stops
   * retrying; calls still waiting fail with AGENT_OFFLINE. Idempotent.
   */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.conn) this.lost(this.conn, 'stopped');
    else this.setStatus('offline', 'stopped');
  }

  /**
   * Calls an op on the agent. Throws AGENT_OFFLINE when the link is down, TIMEOUT after
   * `timeoutMs`, or the agent's own error (code and text as the agent sent them). With an op id
   * the agent does the op once: a call with the same id gets the first one's outcome. An op the
   * agent runs as a job (a clone) is waited for as long as the job reports progress: each push of
   * the job with this op id starts the `timeoutMs` over, so TIMEOUT means the job fell silent.
   */
  call<O extends RpcOp>(op: O, params: RpcParamsInput<O>, operator: string, timeoutMs: number, opId?: string): Promise<RpcResult<O>> {
    const ch = this.rpc;
    if (this.status !== 'online' || !ch) {
      return Promise.reject(new BerthError('AGENT_OFFLINE', `agent ${this.o.id} is offline${this.reason ? ` (${this.reason})` : ''}`));
    }
    const id = this.nextId++;
    return new Promise<RpcResult<O>>((resolve, reject) => {
      const expire = (): void => {
        this.pending.delete(id);
        reject(new BerthError('TIMEOUT', `agent ${this.o.id} did not answer ${op} within ${timeoutMs} ms`));
      };
      // Every result is parsed with its op's schema here, at the boundary, as events are.
      const settle = (result: unknown): void => {
        const r = rpcResultSchemas[op].safeParse(result);
        if (r.success) resolve(r.data);
        else reject(new BerthError('INTERNAL', `agent ${this.o.id} sent a bad ${op} result: ${describeIssue(r.error)}`));
      };
      const call: PendingCall = {
        resolve: settle,
        reject,
        opId,
        timer: setTimeout(expire, timeoutMs),
        rearm: () => {
          clearTimeout(call.timer);
          call.timer = setTimeout(expire, timeoutMs);
        },
      };
      this.pending.set(id, call);
      ch.write(encodeFrame({ v: PROTOCOL_VERSION, id, op, params, operator, ...(opId ? { opId } : {}) }));
    });
  }

  /** Opens an attach; resolves once the agent answered (ok or not) or after `timeoutMs` (TIMEOUT). */
  async attach(header: AttachHeader, timeoutMs: number): Promise<AgentAttach> {
    const conn = this.conn;
    if (this.status !== 'online' || !conn) throw new BerthError('AGENT_OFFLINE', `agent ${this.o.id} is offline`);
    const ch = await this.channel(conn, SUBSYSTEMS.attach);
    const reply = await ask(ch, encodeFrame(header), attachReplySchema, { agent: this.o.id, answer: 'the attach', timeoutMs, maxBytes: MAX_REPLY_BYTES });
    const lost = new Promise<string | null>((resolve) => ch.once('close', () => resolve(this.wentWith(conn))));
    return {
      stream: ch,
      reply,
      resize: (cols, rows) => windowChange(ch, cols, rows),
      close: () => ch.close(),
      lost: () => lost,
    };
  }

  /**
   * Opens a berth-move channel and sends `req`. Resolves with the agent's result and the channel
   * (paused, for an op that streams after its reply; the caller closes it). Throws AGENT_OFFLINE,
   * TIMEOUT when no reply comes within `timeoutMs`, or the agent's own error.
   */
  async move(req: MoveHeader, operator: string, timeoutMs: number): Promise<{ result: unknown; stream: ClientChannel }> {
    const conn = this.conn;
    if (this.status !== 'online' || !conn) throw new BerthError('AGENT_OFFLINE', `agent ${this.o.id} is offline`);
    const ch = await this.channel(conn, SUBSYSTEMS.move);
    const reply = await ask(ch, encodeFrame({ v: PROTOCOL_VERSION, operator, req }), moveReplySchema, {
      agent: this.o.id,
      answer: `move ${req.op}`,
      timeoutMs,
      maxBytes: MAX_REPLY_BYTES,
    });
    if (!reply.ok) {
      ch.close();
      throw new BerthError(reply.error.code, reply.error.message);
    }
    return { result: reply.result, stream: ch };
  }

  /**
   * Opens a subsystem channel on `conn`. A connection that went meanwhile fails the open with a
   * bare "No response from server" or "Not connected": that is the agent going, AGENT_OFFLINE as
   * for a call (an op's outcome is then unknown), not an internal error (see channelOpenError).
   */
  private async channel(conn: Client, name: string): Promise<ClientChannel> {
    try {
      return await openSubsystem(conn, name);
    } catch (err) {
      throw channelOpenError(err, this.o.id, await this.wentWith(conn));
    }
  }

  /**
   * Whether `conn` is gone (`agent X went offline: why`) or still this link's (null). A connection
   * that goes fails and closes its channels before it reports itself gone: this looks once that is done.
   */
  private async wentWith(conn: Client): Promise<string | null> {
    await new Promise((resolve) => setImmediate(resolve));
    return this.conn === conn ? null : `agent ${this.o.id} went offline${this.reason ? `: ${this.reason}` : ''}`;
  }

  private connect(): void {
    this.setStatus('connecting', '');
    const conn = new Client();
    let wrongKey = '';
    const keepaliveMs = this.o.keepaliveMs ?? 1000;
    const on = {
      open: (sock: Duplex): void => {
        conn.connect({
          sock,
          username: 'berth-shell',
          privateKey: this.o.privateKey,
          readyTimeout: 5000,
          keepaliveInterval: keepaliveMs,
          keepaliveCountMax: 3,
          hostVerifier: (key: Buffer) => {
            const seen = fingerprint(key);
            if (seen === this.o.fingerprint) return true;
            wrongKey = `host key changed: expected ${this.o.fingerprint}, agent presented ${seen}`;
            this.log.error('refused agent host key', { expected: this.o.fingerprint, seen });
            return false;
          },
        });
      },
      lost: (reason: string): void => this.lost(conn, reason),
    };
    this.conn = conn;
    this.route = this.o.jump
      ? jumpRoute({ jump: this.o.jump, to: { host: this.o.host, port: this.o.port }, privateKey: this.o.privateKey, keepaliveMs, readyTimeoutMs: 5000, logger: this.log }, on)
      : directRoute(this.o.host, this.o.port, on);
    conn.on('ready', () => {
      this.openChannels(conn).catch((err: unknown) => {
        this.log.warn('open channels', { err: messageOf(err) });
        conn.end();
      });
    });
    conn.on('error', (err) => this.lost(conn, wrongKey || err.message));
    conn.on('close', () => this.lost(conn, wrongKey || 'connection closed'));
  }

  private async openChannels(conn: Client): Promise<void> {
    const events = await openSubsystem(conn, SUBSYSTEMS.events);
    const rpc = await openSubsystem(conn, SUBSYSTEMS.rpc);
    const evSplit = new LineSplitter(MAX_REPLY_BYTES);
    events.on('data', (chunk: Buffer) => {
      for (const f of evSplit.push(chunk)) {
        if (f.kind !== 'line') continue;
        const parsed = safeJson(f.line, eventSchema);
        if (!parsed) {
          this.log.warn('bad event frame', { line: f.line.slice(0, 200) });
          continue;
        }
        if (parsed.type === 'hello' && parsed.protocol !== PROTOCOL_VERSION) {
          this.log.error('protocol mismatch', { agentProtocol: parsed.protocol, shellProtocol: PROTOCOL_VERSION });
          this.stopped = true;
          this.lost(conn, `agent speaks protocol ${parsed.protocol}, this shell speaks ${PROTOCOL_VERSION}`);
          return;
        }
        if (parsed.type === 'hello') {
          this.backoff = 500;
          this.setStatus('online', '');
        }
        if (parsed.type === 'job') this.jobAlive(parsed.job.opId);
        this.emit('event', parsed);
      }
    });
    const rpcSplit = new LineSplitter(MAX_REPLY_BYTES);
    rpc.on('data', (chunk: Buffer) => {
      for (const f of rpcSplit.push(chunk)) {
        if (f.kind !== 'line') continue;
        const reply = safeJson(f.line, rpcReplySchema);
        if (!reply || typeof reply.id !== 'number') continue;
        const w = this.pending.get(reply.id);
        if (!w) continue;
        this.pending.delete(reply.id);
        clearTimeout(w.timer);
        if (reply.ok) w.resolve(reply.result);
        else w.reject(new BerthError(reply.error.code, reply.error.message));
      }
    });
    this.rpc = rpc;
  }

  /** A job pushed: the calls waiting on its op id wait on (see call). */
  private jobAlive(opId: string): void {
    for (const w of this.pending.values()) if (w.opId === opId) w.rearm();
  }

  private lost(conn: Client, reason: string): void {
    if (this.conn !== conn) return;
    const route = this.route;
    this.conn = null;
    this.route = null;
    this.rpc = null;
    for (const [id, w] of this.pending) {
      clearTimeout(w.timer);
      w.reject(new BerthError('AGENT_OFFLINE', `agent ${this.o.id} went offline: ${reason}`));
      this.pending.delete(id);
    }
    conn.end();
    route?.close();
    this.setStatus('offline', reason);
    if (this.stopped) return;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs ?? 10_000);
    this.retryTimer = setTimeout(() => this.connect(), wait);
    this.retryTimer.unref();
  }

  private setStatus(status: LinkStatus, reason: string): void {
    if (reason) this.reason = reason;
    else if (status === 'online') this.reason = '';
    if (this.status === status) return;
    this.status = status;
    this.log.info(`agent ${status}`, reason ? { reason } : {});
    this.emit('status', status, this.reason);
  }
}

function safeJson<S extends z.ZodType>(line: string, schema: S): z.output<S> | null {
  const r = parseJson(line, schema);
  return r.ok ? r.value : null;
}
