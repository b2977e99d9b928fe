/**
 * What both SSH servers do with connections whose peer has not logged in yet ("pre-auth": from TCP
 * accept until the SSH server says the peer logged in), after OpenSSH's LoginGraceTime and
 * MaxStartups:
 *
 * - Grace: a pre-auth connection still open after `graceSeconds` is destroyed.
 * - Caps: a new connection past `maxPerSource` pre-auth connections from its address, or past
 *   `maxTotal` in all, is destroyed as soon as it is accepted, before the SSH server reads a byte
 *   of it (no key exchange). These are hard caps, not OpenSSH's random early drop between a start
 *   and a full value: one address holds at most `maxPerSource` slots, so its flood alone never
 *   refuses anyone else (a random drop starting below the full value would), and what happens at
 *   a cap is plain to see. Logged-in connections never count, and every pre-auth slot frees
 *   itself within the grace time, so once a flood stops nobody stays locked out.
 * - Log: a pre-auth connection that ends without a login after asking for one, or at the grace
 *   time, is one line ("login failed"), and a refused one is one line ("connection refused"),
 *   through a RateLimitedLog; whatever came from the peer is capped and made inert.
 */
import net from 'node:net';
import { z } from 'zod';
import { Logger } from './logging';
import { DEFAULT_RATE_LIMIT, RateLimit, RateLimitedLog } from './rate-limited-log';
import { fingerprint } from './ssh-keys';
import { inertCell } from './terminal-text';

export const loginLimitsSchema = z
  .object({
    /** A connection not logged in after this long is closed. */
    graceSeconds: z.number().int().min(1).max(600).default(20),
    /** Connections not logged in yet, per source address; more are closed at once. */
    maxPerSource: z.number().int().min(1).max(100_000).default(30),
    /** Connections not logged in yet, all addresses together; more are closed at once. */
    maxTotal: z.number().int().min(1).max(100_000).default(200),
    /** Refused login attempts (keys offered, signatures) one connection may make before it is closed. */
    maxAuthTries: z.number().int().min(1).max(1000).default(10),
  })
  .strict();

export type LoginLimits = z.output<typeof loginLimitsSchema>;

export const DEFAULT_LOGIN_LIMITS: LoginLimits = loginLimitsSchema.parse({});

/** Longest user name, address and method name written to the log (each made inert too). */
const MAX_USER = 64;
const MAX_ADDRESS = 64;
const MAX_METHOD = 32;
/** Distinct key fingerprints kept per connection for its log line. */
const MAX_KEYS = 3;

/** One connection's login, as its SSH server reports it. */
export interface Login {
  /** The peer's address (an IPv4-mapped IPv6 address as plain IPv4), capped and inert. */
  readonly address: string;
  /**
   * A login attempt the server turned down (`why`: "unknown user", "unknown key", …); remembered
   * for the line logged if the connection ends without a login. `key` is the public key blob
   * offered, if any. SSH's "none" method (every client's first probe) records only the user.
   * Each call is one more attempt (not idempotent); ignored once the connection logged in or
   * ended. Never throws. True when this was the connection's last allowed attempt: the server
   * should close it (as OpenSSH does past MaxAuthTries).
   */
  refused(attempt: { user: string; method: string; key?: Buffer | null; why: string }): boolean;
  /** The peer logged in: the connection no longer counts against the caps and has no grace time. Idempotent. */
  loggedIn(): void;
}

type State = 'pending' | 'logged in' | 'timed out' | 'stopped' | 'closed';

class Connection implements Login {
  state: State = 'pending';
  user: string | null = null;
  attempts = 0;
  why: string | null = null;
  method: string | null = null;
  readonly keys: string[] = [];
  timer: NodeJS.Timeout | null = null;

  constructor(
    readonly address: string,
    readonly port: number | undefined,
    private readonly maxAuthTries: number,
    private readonly onLogin: (c: Connection) => void,
  ) {}

  refused(a: { user: string; method: string; key?: Buffer | null; why: string }): boolean {
    if (this.state !== 'pending') return false;
    this.user = inertCell(a.user, MAX_USER);
    if (a.method === 'none') return false;
    // Past the limit (the client sent more before it heard the close): not counted, refused.
    if (this.attempts >= this.maxAuthTries) return true;
    this.attempts++;
    this.why = a.why;
    this.method = inertCell(a.method, MAX_METHOD);
    if (a.key && this.keys.length < MAX_KEYS) {
      const fp = fingerprint(a.key);
      if (!this.keys.includes(fp)) this.keys.push(fp);
    }
    if (this.attempts >= this.maxAuthTries) this.why = `${this.why ?? 'refused'}; too many attempts`;
    return this.attempts >= this.maxAuthTries;
  }

  loggedIn(): void {
    if (this.state !== 'pending') return;
    this.state = 'logged in';
    this.onLogin(this);
  }
}

export interface SshGuardOptions {
  limits?: LoginLimits;
  logger: Logger;
  rateLimit?: RateLimit;
}

export class SshGuard {
  private readonly limits: LoginLimits;
  private readonly events: RateLimitedLog;
  /** Every admitted connection still open, logged in or not. */
  private readonly open = new Map<net.Socket, Connection>();
  /** Pre-auth connections per address, and in all. */
  private readonly perSource = new Map<string, number>();
  private pending = 0;
  private stopping = false;

  constructor(o: SshGuardOptions) {
    this.limits = o.limits ?? DEFAULT_LOGIN_LIMITS;
    this.events = new RateLimitedLog(o.logger, o.rateLimit ?? DEFAULT_RATE_LIMIT);
  }

  /**
   * A freshly accepted socket: its Login when admitted; null when it was refused (past a cap, or
   * the guard is stopping), in which case it is already destroyed. Never throws.
   */
  admit(sock: net.Socket): Login | null {
    const address = sourceOf(sock);
    if (this.stopping || address === null) {
      sock.destroy();
      return null;
    }
    const here = this.perSource.get(address) ?? 0;
    const over =
      here >= this.limits.maxPerSource
        ? { why: 'too many not logged in from this address', limit: this.limits.maxPerSource }
        : this.pending >= this.limits.maxTotal
          ? { why: 'too many not logged in', limit: this.limits.maxTotal }
          : null;
    if (over) {
      sock.destroy();
      this.events.write('warn', address, 'connection refused', { address, port: sock.remotePort, ...over });
      return null;
    }
    const conn = new Connection(address, sock.remotePort, this.limits.maxAuthTries, (c) => this.leavePending(c));
    this.open.set(sock, conn);
    this.perSource.set(address, here + 1);
    this.pending++;
    conn.timer = setTimeout(() => {
      if (conn.state !== 'pending') return;
      conn.state = 'timed out';
      sock.destroy();
    }, this.limits.graceSeconds * 1000);
    conn.timer.unref();
    sock.once('close', () => this.closed(sock, conn));
    return conn;
  }

  /** The Login of an admitted socket still open, or null. */
  loginOf(sock: net.Socket): Login | null {
    return this.open.get(sock) ?? null;
  }

  /** Refuses every later connection and destroys every pre-auth one now. Idempotent. */
  stopPending(): void {
    this.stopping = true;
    for (const [sock, conn] of this.open) {
      if (conn.state !== 'pending') continue;
      conn.state = 'stopped';
      this.leavePending(conn);
      sock.destroy();
    }
  }

  /** Destroys every connection still open, logged in or not. Idempotent. */
  destroyAll(): void {
    this.stopPending();
    for (const sock of this.open.keys()) sock.destroy();
  }

  /** Writes the summary of log lines left out so far, if any. Idempotent. */
  flushLog(): void {
    this.events.flush();
  }

  /** How many admitted connections are open, and how many of them are pre-auth. */
  counts(): { open: number; pending: number } {
    return { open: this.open.size, pending: this.pending };
  }

  /** A connection leaves the pre-auth count (logged in, or stopped): its slot and grace timer end. */
  private leavePending(conn: Connection): void {
    if (conn.timer) clearTimeout(conn.timer);
    conn.timer = null;
    const n = (this.perSource.get(conn.address) ?? 1) - 1;
    if (n > 0) this.perSource.set(conn.address, n);
    else this.perSource.delete(conn.address);
    this.pending--;
  }

  private closed(sock: net.Socket, conn: Connection): void {
    this.open.delete(sock);
    const state = conn.state;
    conn.state = 'closed';
    if (state === 'logged in' || state === 'stopped') return;
    this.leavePending(conn);
    // A connection that never asked to log in (a port scan, a key scan) is not a failed login,
    // unless it was still holding its slot at the grace time.
    if (state === 'pending' && conn.user === null) return;
    this.events.write('warn', conn.address, 'login failed', {
      address: conn.address,
      port: conn.port,
      user: conn.user ?? undefined,
      method: conn.method ?? undefined,
      keys: conn.keys.length > 0 ? conn.keys : undefined,
      attempts: conn.attempts,
      why: state === 'timed out' ? 'login grace time over' : (conn.why ?? 'no key offered'),
    });
  }
}

/** The address a socket comes from, as the caps count it (capped, inert), or null when unknown. */
function sourceOf(sock: net.Socket): string | null {
  const raw = sock.remoteAddress;
  if (!raw) return null;
  const plain = raw.startsWith('::ffff:') && net.isIPv4(raw.slice(7)) ? raw.slice(7) : raw;
  return inertCell(plain, MAX_ADDRESS);
}
