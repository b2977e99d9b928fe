/**
 * Operators for the scale benchmark, as ssh2 clients in the bench process: one connection that
 * runs exec commands (the CLI, `ssh … list --json`) one channel each, and menus (a pty and a
 * shell request, as `ssh -t` asks for the menu) whose output is kept and watched.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Client, ClientChannel } from 'ssh2';
import { sleep, visible, withTimeout } from './lib';

export interface ExecResult {
  code: number | null;
  out: string;
  err: string;
  /** From the exec request to the channel's close (all output in). */
  ms: number;
}

/**
 * Opens an ssh2 connection to the shell as `user`; resolves once logged in. Its socket has
 * TCP_NODELAY, as OpenSSH's client behaves here: without it, ssh2's small writes wait for the
 * shell's delayed ACK, about 44 ms on every exec on loopback, which would swamp what is measured.
 */
export function connectOperator(port: number, privateKey: string, clients: Client[], user = 'alice'): Promise<Client> {
  const conn = new Client();
  clients.push(conn);
  return withTimeout(
    new Promise<Client>((resolve, reject) => {
      conn.once('ready', () => resolve(conn));
      conn.once('error', reject);
      const sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
      sock.once('error', reject);
      conn.connect({ sock, username: user, privateKey, hostVerifier: () => true, readyTimeout: 30_000 });
    }),
    40_000,
    'operator login',
  ).then((c) => {
    c.on('error', () => undefined);
    return c;
  });
}

/** Runs one exec command on `conn`; resolves with its exit code, output and time, bounded by `timeoutMs`. */
export function exec(conn: Client, command: string, timeoutMs = 60_000): Promise<ExecResult> {
  const t0 = performance.now();
  return withTimeout(
    new Promise<ExecResult>((resolve, reject) => {
      conn.exec(command, (err, ch) => {
        if (err) return reject(err);
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let code: number | null = null;
        ch.on('data', (d: Buffer) => out.push(d));
        ch.stderr.on('data', (d: Buffer) => errs.push(d));
        ch.on('exit', (c: number | null) => (code = c));
        ch.on('close', () => resolve({ code, out: Buffer.concat(out).toString('utf8'), err: Buffer.concat(errs).toString('utf8'), ms: performance.now() - t0 }));
      });
    }),
    timeoutMs,
    `exec ${command.split(' ')[0]}`,
  );
}

/** An operator's open menu: its output as received, and waits on it. */
export class MenuClient {
  /** Everything received (escape sequences included), its oldest part dropped past a bound. */
  private out = '';
  /** How much was dropped from the front of `out` so far: positions stay absolute. */
  private dropped = 0;
  /** performance.now() of the last chunk received. */
  lastData = 0;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly name: string,
    private readonly ch: ClientChannel,
  ) {
    ch.on('data', (d: Buffer) => {
      this.lastData = performance.now();
      this.out += d.toString('utf8');
      if (this.out.length > 400_000) {
        const cut = this.out.length - 100_000;
        this.out = this.out.slice(cut);
        this.dropped += cut;
      }
      for (const w of [...this.waiters]) w();
    });
  }

  /** Opens the menu on `conn` (pty `cols`×`rows`); resolves once `title` shows in it. */
  static open(name: string, conn: Client, title: string, timeoutMs: number, size = { cols: 120, rows: 40 }): Promise<MenuClient> {
    return withTimeout(
      new Promise<MenuClient>((resolve, reject) => {
        conn.shell({ rows: size.rows, cols: size.cols, term: 'xterm-256color' }, (err, ch) => {
          if (err) return reject(err);
          const menu = new MenuClient(name, ch);
          ch.on('close', () => reject(new Error(`${name}: menu channel closed before its title; got ${JSON.stringify(menu.out.slice(-200))}`)));
          menu.waitFor(title, 0, timeoutMs).then(() => resolve(menu), reject);
        });
      }),
      timeoutMs + 1000,
      `${name} open`,
    );
  }

  /** Where the output ends now (an absolute position, for `waitFor`'s `from`). */
  mark(): number {
    return this.dropped + this.out.length;
  }

  /** Resolves with performance.now() once the visible output from position `from` on contains `text`. */
  waitFor(text: string, from: number, timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const check = (): void => {
        // A few bytes before `from`: an escape sequence split at it still parses.
        const start = Math.max(0, from - this.dropped - 16);
        if (!visible(this.out.slice(start)).includes(text)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(performance.now());
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.name}: "${text}" not seen within ${timeoutMs} ms; output tail: ${JSON.stringify(this.out.slice(-300))}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /**
   * Sends `keys` and resolves with the ms from the send to the last chunk of output before
   * `quietMs` without any (the redraw's end); rejects when nothing comes within `timeoutMs`.
   */
  async timeKeys(keys: string, quietMs: number, timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    const before = this.lastData;
    this.ch.write(keys);
    for (;;) {
      await sleep(Math.max(2, quietMs / 5));
      const now = performance.now();
      const got = this.lastData > before && this.lastData >= t0;
      if (got && now - this.lastData >= quietMs) return this.lastData - t0;
      if (now - t0 > timeoutMs) throw new Error(`${this.name}: no redraw within ${timeoutMs} ms of ${JSON.stringify(keys)}`);
    }
  }

  /** Waits (bounded) until the menu printed nothing for `quietMs`. */
  async quiet(quietMs: number, maxMs: number): Promise<void> {
    const t0 = performance.now();
    while (performance.now() - Math.max(this.lastData, t0) < quietMs && performance.now() - t0 < maxMs) await sleep(quietMs / 4);
  }

  /** Sends keys without timing them. */
  write(keys: string): void {
    this.ch.write(keys);
  }

  close(): void {
    this.ch.close();
  }
}
