/**
 * Operators' terminals on a test cluster's shell, through a real ssh2 client: logins, and `attach
 * REF` on an exec channel with a pty, keeping every byte the operator receives.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Client, ClientChannel, ExecOptions } from 'ssh2';
import { Cluster } from './cluster';

export interface ShellTerm {
  channel: ClientChannel;
  /** Everything received so far (the last 500 KB at least), decoded as asked. */
  output(): string;
  /** An SSH window-change, as a terminal resize sends it. */
  resize(cols: number, rows: number): void;
  closed: Promise<void>;
}

export class ShellTerms {
  private readonly conns: Client[] = [];

  constructor(private readonly cluster: () => Cluster) {}

  /** An SSH connection to the shell as `user` (its test key). */
  async login(user: string): Promise<Client> {
    const c = this.cluster();
    const privateKey = await fs.readFile(path.join(c.dir, `key_${user}`));
    const conn = new Client();
    this.conns.push(conn);
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', () => resolve());
      conn.once('error', reject);
      conn.connect({ host: c.shell.address, port: c.shell.port, username: user, privateKey, readyTimeout: 10_000 });
    });
    conn.on('error', () => undefined);
    return conn;
  }

  /** `attach REF` with a pty of `size`; `latin1` keeps each byte as one character. */
  async attach(user: string, session: string, size: { cols: number; rows: number }, encoding: 'utf8' | 'latin1' = 'utf8'): Promise<ShellTerm> {
    const conn = await this.login(user);
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      conn.exec(`attach ${session}`, { pty: { cols: size.cols, rows: size.rows, height: 0, width: 0, term: 'xterm-256color' } }, (err, ch) =>
        err ? reject(err) : resolve(ch),
      ),
    );
    let out = '';
    channel.on('data', (d: Buffer) => {
      out += d.toString(encoding);
      if (out.length > 1_000_000) out = out.slice(-500_000);
    });
    channel.stderr.on('data', (d: Buffer) => (out += d.toString(encoding)));
    const closed = new Promise<void>((r) => channel.on('close', () => r()));
    return { channel, output: () => out, resize: (cols, rows) => channel.setWindow(rows, cols, 0, 0), closed };
  }

  /** Ends every connection made here. */
  endAll(): void {
    for (const c of this.conns.splice(0)) c.end();
  }
}

/** One command on an exec channel of `conn` (an ssh2 login to the shell): its exit code and output. */
export function execOn(conn: Client, line: string, opts: ExecOptions = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    conn.exec(line, opts, (err, ch) => {
      if (err) return reject(err);
      let out = '';
      let errText = '';
      let code: number | null = null;
      ch.on('data', (d: Buffer) => (out += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (errText += d.toString()));
      ch.on('exit', (n: number | null) => (code = n));
      ch.on('close', () => resolve({ code, out, err: errText }));
    });
  });
}
