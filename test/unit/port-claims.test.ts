import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { PortClaims } from '../../agent/ports/claims';

let dir: string;
let rootA: string;
let rootB: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-claims-'));
  rootA = path.join(dir, 'a');
  rootB = path.join(dir, 'b');
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

/** A session folder, so that its claim is not stale. */
async function session(root: string): Promise<string> {
  const id = randomUUID();
  await fs.mkdir(path.join(root, id), { recursive: true });
  return id;
}

describe('PortClaims', () => {
  it('lets one agent claim a port and tells the other who holds it', async () => {
    const a = new PortClaims(path.join(dir, 'claims'), { agent: 'a', root: rootA });
    const b = new PortClaims(path.join(dir, 'claims'), { agent: 'b', root: rootB });
    const sa = await session(rootA);
    expect(await a.take(1002, 'tcp', sa)).toBeNull();
    expect(await b.heldByOther(1002, 'tcp')).toBe(`claimed by session ${sa} of agent a`);
    expect(await b.take(1002, 'tcp', await session(rootB))).toBe(`claimed by session ${sa} of agent a`);
    expect(await b.heldByOther(1002, 'udp')).toBeNull();
    expect(await a.heldByOther(1002, 'tcp')).toBeNull();
    await b.release(1002, 'tcp', sa); // not b's: nothing happens
    expect(await b.heldByOther(1002, 'tcp')).not.toBeNull();
    await a.release(1002, 'tcp', sa);
    expect(await b.heldByOther(1002, 'tcp')).toBeNull();
  });

  it('sync claims what an agent holds, drops what it no longer does, and reports conflicts', async () => {
    const claims = path.join(dir, 'claims');
    const a = new PortClaims(claims, { agent: 'a', root: rootA });
    const b = new PortClaims(claims, { agent: 'b', root: rootB });
    const [s1, s2, sb] = [await session(rootA), await session(rootA), await session(rootB)];
    await a.take(1001, 'tcp', s1);
    await a.take(1005, 'tcp', s2);
    await b.take(1003, 'tcp', sb);
    // After a restart, a holds 1001 and wants 1003 (b's): 1005 is dropped, 1003 is a conflict.
    const conflicts = await a.sync([
      { port: 1001, protocol: 'tcp', session: s1 },
      { port: 1003, protocol: 'tcp', session: s2 },
    ]);
    expect(conflicts).toEqual([`tcp/1003 of session ${s2}: claimed by session ${sb} of agent b`]);
    expect((await fs.readdir(claims)).filter((n) => !n.startsWith('.')).sort()).toEqual(['tcp-1001', 'tcp-1003']);
  });
});
