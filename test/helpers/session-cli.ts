/**
 * The shell's CLI as a test of a cluster drives it (over the real OpenSSH client), with what such a
 * test does to sessions: list and find them, start and stop them and wait, run a command in one.
 */
import { execFile } from 'node:child_process';
import type { SessionJson } from '../../shell/cli/format';
import type { Cluster, SshResult } from './cluster';
import { until } from './wait';

export interface InSession {
  code: number;
  out: string;
  err: string;
}

/**
 * `cluster()` gives the cluster of the suite (made in its beforeAll). `trim`: inSession trims its
 * output; `seen`: hears every command's result (a test that searches all output keeps them).
 */
export function sessionCli(cluster: () => Cluster, o: { trim?: boolean; seen?: (r: SshResult) => void } = {}) {
  const cli = async (line: string, user = 'alice'): Promise<SshResult> => {
    const raw = await cluster().ssh(user, [line], { timeoutMs: 60_000 });
    const r = { ...raw, err: raw.err.replace(/^Warning: Permanently added .*\r?\n/m, '') };
    o.seen?.(r);
    return r;
  };
  /** A command with --json that must succeed: its one JSON value. */
  const json = async <T>(line: string): Promise<T> => {
    const r = await cli(`${line} --json`);
    expect({ line, code: r.code, err: r.err }).toEqual({ line, code: 0, err: '' });
    return JSON.parse(r.out) as T;
  };
  const list = (): Promise<SessionJson[]> => json<SessionJson[]>('list');
  const find = async (id: string): Promise<SessionJson> => {
    const s = (await list()).find((x) => x.id === id);
    if (!s) throw new Error(`session ${id} is not listed`);
    return s;
  };
  /** Runs `argv` (no shell) in a session's container as its user; never throws. */
  const inSession = (id: string, argv: string[]): Promise<InSession> =>
    new Promise((resolve) => {
      execFile('docker', ['exec', `berth-${id}`, ...argv], { timeout: 20_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve(o.trim ? { code, out: stdout.trim(), err: stderr.trim() } : { code, out: stdout, err: stderr });
      });
    });
  const startAndWait = async (id: string): Promise<void> => {
    const r = await cli(`restart ${id}`);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    await until('running', () => find(id), (s) => s.state === 'running', 30_000, 200);
  };
  const killAndWait = async (id: string): Promise<void> => {
    const r = await cli(`kill ${id}`);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    await until('stopped', () => find(id), (s) => s.state === 'stopped', 20_000, 200);
  };
  return { cli, json, list, find, inSession, startAndWait, killAndWait };
}
