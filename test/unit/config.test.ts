import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '../../agent/config';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-cfg-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

async function write(content: string): Promise<string> {
  const f = path.join(dir, 'agent.json');
  await fs.writeFile(f, content);
  return f;
}

describe('agent config', () => {
  it('fills defaults and resolves paths from the file', async () => {
    const f = await write(JSON.stringify({ id: 'host-1', root: './sessions' }));
    const cfg = loadAgentConfig(f);
    expect(cfg).toMatchObject({
      id: 'host-1',
      root: path.join(dir, 'sessions'),
      listen: { host: '0.0.0.0', port: 2222 },
      image: 'berth-session:latest',
      command: 'claude',
      lockStaleSeconds: 10,
    });
  });

  it('names the file and the field when a value is wrong', async () => {
    const f = await write(JSON.stringify({ id: 'host-1', listen: { port: 'x' } }));
    expect(() => loadAgentConfig(f)).toThrow(`config ${f}: listen.port:`);
  });

  it('names an unknown field', async () => {
    const f = await write(JSON.stringify({ id: 'host-1', rooot: '/x' }));
    expect(() => loadAgentConfig(f)).toThrow(`config ${f}: unknown field "rooot"`);
  });

  it('says when the file is not JSON or missing', async () => {
    const f = await write('{ id: ');
    expect(() => loadAgentConfig(f)).toThrow(`config ${f}: not valid JSON`);
    expect(() => loadAgentConfig(path.join(dir, 'nope.json'))).toThrow('cannot read');
  });

  it('refuses a publish address that is not an IP', async () => {
    const f = await write(JSON.stringify({ id: 'host-1', publishAddress: 'localhost' }));
    expect(() => loadAgentConfig(f)).toThrow('publishAddress: must be an IP address');
  });

  it('refuses default limits above the maximums', async () => {
    const f = await write(JSON.stringify({ id: 'host-1', limits: { memoryMb: 8192 }, maxLimits: { memoryMb: 4096 } }));
    expect(() => loadAgentConfig(f)).toThrow(`config ${f}: limits.memoryMb: is above maxLimits.memoryMb (4096)`);
  });
});
