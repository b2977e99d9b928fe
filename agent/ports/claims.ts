/**
 * Ports claimed host-wide: agents on one host that publish on the same address each know only
 * their own sessions' ports, and a port reserved for a stopped session is not bound, so each
 * would think it free. Agents given the same claims folder (agent config `portClaims`) write one
 * file per claimed port (`tcp-1002`), saying which agent and session hold it, under a lock of
 * the folder, and never hand out a port another agent claimed. A claim whose session folder is
 * gone is stale and may be taken.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { z } from 'zod';
import { parseJson } from '../../common/json';
import { Protocol } from '../../common/names';
import { writeFileAtomic } from '../../common/atomic-file';
import { BerthError } from '../../common/errors';
import { PortProbe, PortTable, portKey, resolvePort } from './ports';

const claimSchema = z.object({ agent: z.string(), root: z.string(), session: z.string() });
type Claim = z.infer<typeof claimSchema>;

export class PortClaims {
  constructor(
    private readonly dir: string,
    private readonly me: { agent: string; root: string },
  ) {}

  /** Who else holds the port ("session S of agent A"), or null when it is free or ours. */
  async heldByOther(port: number, protocol: Protocol): Promise<string | null> {
    const c = await this.read(port, protocol);
    return c && !this.mine(c) && !(await this.stale(c)) ? `claimed by session ${c.session} of agent ${c.agent}` : null;
  }

  /** Claims the port for `session`; returns who else holds it instead (and claims nothing), or null. */
  take(port: number, protocol: Protocol, session: string): Promise<string | null> {
    return this.locked(async () => {
      const other = await this.heldByOther(port, protocol);
      if (other) return other;
      await writeFileAtomic(this.file(port, protocol), JSON.stringify({ ...this.me, session } satisfies Claim));
      return null;
    });
  }

  /** Gives up this agent's claim of the port for `session`, if it has it. */
  release(port: number, protocol: Protocol, session: string): Promise<void> {
    return this.locked(async () => {
      const c = await this.read(port, protocol);
      if (c && this.mine(c) && c.session === session) await fs.rm(this.file(port, protocol), { force: true });
    });
  }

  /**
   * Makes the folder say what this agent holds: claims for `own` ports (returning those another
   * agent holds, a conflict an operator must settle), none for ports it no longer holds.
   */
  async sync(own: Array<{ port: number; protocol: Protocol; session: string }>): Promise<string[]> {
    await fs.mkdir(this.dir, { recursive: true });
    const conflicts: string[] = [];
    const keep = new Set(own.map((o) => this.name(o.port, o.protocol)));
    await this.locked(async () => {
      for (const name of await fs.readdir(this.dir)) {
        const m = /^(tcp|udp)-(\d+)$/.exec(name);
        if (!m || keep.has(name)) continue;
        const c = await this.read(Number(m[2]), m[1] as Protocol);
        if (c && this.mine(c)) await fs.rm(path.join(this.dir, name), { force: true });
      }
    });
    for (const o of own) {
      const other = await this.take(o.port, o.protocol, o.session);
      if (other) conflicts.push(`${o.protocol}/${o.port} of session ${o.session}: ${other}`);
    }
    return conflicts;
  }

  private name(port: number, protocol: Protocol): string {
    return `${protocol}-${port}`;
  }

  private file(port: number, protocol: Protocol): string {
    return path.join(this.dir, this.name(port, protocol));
  }

  private mine(c: Claim): boolean {
    return c.agent === this.me.agent && c.root === this.me.root;
  }

  /** A claim whose session folder is gone: its agent deleted the session while it could not say so. */
  private async stale(c: Claim): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/.test(c.session)) return true;
    return fs.lstat(path.join(c.root, c.session)).then(
      () => false,
      (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
    );
  }

  private async read(port: number, protocol: Protocol): Promise<Claim | null> {
    const text = await fs.readFile(this.file(port, protocol), 'utf8').catch(() => null);
    if (text === null) return null;
    const r = parseJson(text, claimSchema);
    return r.ok ? r.value : null;
  }

  /** Runs `fn` holding the folder's lock (every agent sharing it takes the same one). */
  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    await fs.mkdir(this.dir, { recursive: true });
    const release = await lockfile.lock(this.dir, { lockfilePath: path.join(this.dir, '.lock'), realpath: false, stale: 10_000, retries: { retries: 50, minTimeout: 20, maxTimeout: 200 } });
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}

/**
 * Resolves a requested port (see resolvePort) and, with `claims`, claims it host-wide: a port
 * another agent claimed is skipped (auto) or refused (exact). Call it under the agent's
 * reservation; a later failure must release what it claimed.
 */
export async function resolveAndClaim(o: {
  requested: number;
  protocol: Protocol;
  used: PortTable;
  session: string;
  probe: PortProbe;
  claims?: PortClaims;
}): Promise<number> {
  const { requested, protocol, used, claims } = o;
  if (!claims) return resolvePort(requested, protocol, used, o.probe);
  const probe: PortProbe = { check: async (port, proto) => (await claims.heldByOther(port, proto)) ?? o.probe.check(port, proto) };
  // Another agent may claim the same port between the check and the claim: then the next one.
  for (let tries = 0; tries < 20; tries++) {
    const port = await resolvePort(requested, protocol, used, probe);
    if (port === 0) return 0;
    const other = await claims.take(port, protocol, o.session);
    if (other === null) return port;
    if (requested > 0) throw new BerthError('PORT_UNAVAILABLE', `port ${port}/${protocol} is ${other}`);
    used.set(portKey(port, protocol), other);
  }
  throw new BerthError('PORT_UNAVAILABLE', `no ${protocol} port could be claimed: other agents keep taking them`);
}
