/**
 * The shell benchmark's operators in the menu: many ssh2 clients in this process, each with the
 * menu open on a pty, its output kept and replayed on a model of the screen (shell-screen.ts); and
 * a hook loop in a session's container that runs the image's real berth-hook on demand.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { Client } from 'ssh2';
import { visible, withTimeout } from './lib';
import { Screen } from './shell-screen';

export const MENU_COLS = 120;
export const MENU_ROWS = 40;
const MENU_TITLE = 'alice (admin)';

/** An operator's open menu. */
export interface OpenMenu {
  /** Resolves with the ms from `t0` until `text` shows in the menu's output after this call. */
  waitFor(text: string, timeoutMs: number, t0: number): Promise<number>;
  /** The line of the screen that is the table row of the session with this id (first 8) and name, or ''. */
  row(id8: string, name: string): string;
  /** Resolves with performance.now() at the first output after which `pred` holds for the row (at once if it holds now). */
  waitRow(id8: string, name: string, pred: (row: string) => boolean, timeoutMs: number): Promise<number>;
}

/** Opens the menu as `user` (ssh2 client, pty 120×40, a shell request); resolves once its title shows. */
export function openMenu(clients: Client[], port: number, user: string, privateKey: Buffer): Promise<OpenMenu> {
  const conn = new Client();
  clients.push(conn);
  return withTimeout(
    new Promise<OpenMenu>((resolve, reject) => {
      conn.on('error', reject);
      conn.on('ready', () => {
        conn.shell({ rows: MENU_ROWS, cols: MENU_COLS, term: 'xterm-256color' }, (err, stream) => {
          if (err) return reject(err);
          const decoder = new StringDecoder('utf8');
          const screen = new Screen(MENU_COLS, MENU_ROWS);
          let out = '';
          const waiters = new Set<() => void>();
          stream.on('data', (d: Buffer) => {
            const text = decoder.write(d);
            out += text;
            if (out.length > 200_000) out = out.slice(-50_000);
            screen.write(text);
            for (const w of [...waiters]) w();
          });
          const rowOf = (id8: string, name: string): string => screen.lines().find((l) => l.includes(`${id8}  ${name} `)) ?? '';
          const menu: OpenMenu = {
            waitFor(text, timeoutMs, t0) {
              const from = out.length;
              let check = (): void => undefined;
              const seen = new Promise<number>((done) => {
                check = (): void => {
                  if (!visible(out.slice(Math.max(0, from - 4))).includes(text)) return;
                  waiters.delete(check);
                  done(performance.now() - t0);
                };
                waiters.add(check);
              });
              return withTimeout(seen, timeoutMs, `"${text}" in a menu`).finally(() => waiters.delete(check));
            },
            row: rowOf,
            waitRow(id8, name, pred, timeoutMs) {
              let check = (): void => undefined;
              const seen = new Promise<number>((done) => {
                check = (): void => {
                  if (!pred(rowOf(id8, name))) return;
                  waiters.delete(check);
                  done(performance.now());
                };
                waiters.add(check);
                check();
              });
              return withTimeout(seen, timeoutMs, `the row of ${name} in a menu (it reads ${JSON.stringify(rowOf(id8, name).trim())})`).finally(() =>
                waiters.delete(check),
              );
            },
          };
          let titled = false;
          const title = (): void => {
            if (titled || !visible(out).includes(MENU_TITLE)) return;
            titled = true;
            waiters.delete(title);
            resolve(menu);
          };
          waiters.add(title);
          stream.on('close', () => reject(new Error(`menu channel closed before the title; got ${JSON.stringify(out.slice(-200))}`)));
        });
      });
      conn.connect({ host: '127.0.0.1', port, username: user, privateKey, hostVerifier: () => true, readyTimeout: 20_000 });
    }),
    30_000,
    'menu title',
  );
}

/** Opens `count` menus, `parallel` logins at a time. */
export async function openMenus(clients: Client[], port: number, user: string, privateKey: Buffer, count: number, parallel = 10): Promise<OpenMenu[]> {
  let next = 0;
  const menus: OpenMenu[] = [];
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      menus.push(await openMenu(clients, port, user, privateKey));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return menus;
}

// ---- Claude Code's hook, fired inside a session's container ----

/** Where the image puts the hook script that Claude Code's managed settings run (deploy/image/Dockerfile). */
const HOOK = '/usr/local/bin/berth-hook';

/** Documented hook payloads (Claude Code's hooks reference), keyed by the activity each shows as. */
export const PAYLOADS = {
  permission: { hook_event_name: 'Notification', notification_type: 'permission_prompt', message: 'Claude needs your permission to use Bash', session_id: 'x', cwd: '/home/claude' },
  working: { hook_event_name: 'UserPromptSubmit', prompt: 'go', session_id: 'x', cwd: '/home/claude' },
} as const;
export type Word = keyof typeof PAYLOADS;

/**
 * Runs in the container for the whole measurement (one `docker exec`, so no exec's start or end
 * falls inside a round): one payload a line on stdin; for each, the wall clock (ns) before
 * berth-hook starts and after it ended, on one line.
 */
const HOOK_LOOP = `while IFS= read -r p; do t0=$(date +%s%N); printf '%s\\n' "$p" | ${HOOK}; t1=$(date +%s%N); echo "$t0 $t1"; done`;

/** ns since the epoch, as `date +%s%N` prints it, in ms (µs kept: a double holds them exactly). */
const nsToMs = (ns: string): number => Number(BigInt(ns) / 1000n) / 1000;

/** The hook loop in one container: fire() sends a payload and resolves with t0 and the end of berth-hook (ms since the epoch). */
export class HookLoop {
  readonly proc: ChildProcess;
  private readonly answers: Array<(line: string) => void> = [];
  private err = '';

  constructor(container: string) {
    this.proc = spawn('docker', ['exec', '-i', container, 'sh', '-c', HOOK_LOOP], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdin?.on('error', () => undefined);
    this.proc.stderr?.on('data', (d: Buffer) => (this.err = (this.err + d.toString()).slice(-500)));
    let buf = '';
    this.proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.answers.shift()?.(line);
      }
      if (buf.length > 10_000) buf = '';
    });
  }

  fire(payload: object, timeoutMs: number): Promise<{ t0: number; hookDone: number }> {
    const answer = new Promise<string>((resolve) => this.answers.push(resolve));
    this.proc.stdin?.write(`${JSON.stringify(payload)}\n`);
    return withTimeout(answer, timeoutMs, `the hook loop's answer (stderr: ${JSON.stringify(this.err)})`).then((line) => {
      const m = /^(\d+) (\d+)$/.exec(line.trim());
      if (!m) throw new Error(`unexpected line from the hook loop: ${JSON.stringify(line)}`);
      return { t0: nsToMs(m[1] ?? ''), hookDone: nsToMs(m[2] ?? '') };
    });
  }
}
