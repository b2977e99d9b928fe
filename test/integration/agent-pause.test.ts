/**
 * A clone pauses a running source; attaches and detaches start commands in it. runc wedges a
 * container for good when a pause freezes a command that is still starting (not even `docker
 * unpause` answers then), so the agent keeps the two apart. Here both happen at once, many times.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentClient, view } from '../helpers/agent-client';
import { AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { testContainers } from '../helpers/docker';
import { within } from '../helpers/wait';

const runLabel = `pause-${randomUUID().slice(0, 8)}`;
const ROUNDS = 15;

let agent: AgentProcess;
let client: AgentClient;

beforeAll(async () => {
  agent = await startAgentProcess({ runLabel });
  client = await agent.connect();
}, 30_000);
afterAll(() => agent?.dispose());

test('detaching, attaching and cloning a running session at once never wedges its container', async () => {
  const src = view(await client.call('create', { name: 'busy' })).meta.id;
  await fs.writeFile(path.join(agent.root, src, 'home', 'data.bin'), Buffer.alloc(64 * 1024 * 1024, 1));
  expect(view(await client.call('restart', { session: src })).state).toBe('R');

  for (let round = 0; round < ROUNDS; round++) {
    const first = await client.attach({ session: src, operator: 'alice' });
    expect((await first.ready).ok).toBe(true);
    // The detach's clean-up command, a new attach and the clone's pause, all at the same moment.
    first.close();
    const [clone, second] = await within(
      `round ${round}`,
      20_000,
      Promise.all([
        client.call('clone', { session: src }),
        client.attach({ session: src, operator: 'bob' }).then(async (a) => ({ a, reply: await a.ready })),
      ]),
    );
    // The attach either got in before the pause or after it, or was told the session is paused.
    if (!second.reply.ok) expect(second.reply.error.message).toMatch(/paused/);
    second.a.close();
    const [container] = (await testContainers(runLabel)).filter((c) => c.session === src);
    expect(container?.state).toBe('running');
    await within(`delete of round ${round}'s clone`, 20_000, client.call('delete', { session: view(clone).meta.id }));
  }
  // And the session still answers inside: a fresh attach runs a command.
  const last = await client.attach({ session: src, operator: 'carol' });
  expect((await last.ready).ok).toBe(true);
  last.write('echo alive-$((6*7))\r');
  await last.waitForText('alive-42', 10_000);
  last.close();
}, 240_000);
