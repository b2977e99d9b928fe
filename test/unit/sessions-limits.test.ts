/**
 * Limits come only from the agent's config and the operator's request: refused above the
 * agent's maximum with the field named, merged on edit, applied at the next start, and capped
 * when a lower maximum came later.
 */
import { asView, Harness, startHarness } from '../helpers/sessions-harness';
import { checkRequestedLimits, effectiveLimits, limitPolicy } from '../../agent/limits';
import { BerthError } from '../../common/errors';

let h: Harness;
afterEach(() => h?.dispose());

const defaults = { memoryMb: 1024, cpus: 1, pids: 256 };
const max = { memoryMb: 4096, cpus: 2, pids: 1024 };

test('create takes limits up to the maximum and refuses more, naming the limit', async () => {
  h = await startHarness({ limits: defaults, maxLimits: max });
  const ok = asView(await h.sessions.create({ name: 'a', protocol: 'tcp', port: 0, dns: '', limits: { memoryMb: 4096, pids: 512 } }, 'alice'));
  expect(ok.meta.limits).toEqual({ memoryMb: 4096, pids: 512 });
  await expect(h.sessions.create({ name: 'b', protocol: 'tcp', port: 0, dns: '', limits: { memoryMb: 8192 } }, 'alice')).rejects.toThrow(
    new BerthError('BAD_REQUEST', "limits: memory (MB) 8192 is above this agent's maximum of 4096"),
  );
  await expect(h.sessions.create({ name: 'b', protocol: 'tcp', port: 0, dns: '', limits: { pids: 1025 } }, 'alice')).rejects.toMatchObject({
    code: 'BAD_REQUEST',
    message: expect.stringContaining('pids 1025'),
  });
  // Nothing was created by the refused requests.
  expect((await h.sessions.list()).map((e) => asView(e).meta.name)).toEqual(['a']);
});

test('the container gets the session\'s limits over the defaults; edit merges and applies at the next start', async () => {
  h = await startHarness({ limits: defaults, maxLimits: max });
  const id = asView(await h.sessions.create({ name: 'a', protocol: 'tcp', port: 0, dns: '', limits: { cpus: 2 } }, 'alice')).meta.id;
  await h.sessions.restart(id, 'alice');
  expect(h.fake.specs.get(id)?.limits).toEqual({ memoryMb: 1024, cpus: 2, pids: 256 });
  expect(asView(await h.sessions.get(id)).restartNeeded).toBe(false);
  const edited = asView(await h.sessions.edit({ session: id, limits: { memoryMb: 2048 } }, 'alice'));
  expect(edited.meta.limits).toEqual({ cpus: 2, memoryMb: 2048 });
  // The running container keeps its limits until restarted, and says so.
  expect(edited.restartNeeded).toBe(true);
  await expect(h.sessions.edit({ session: id, limits: { cpus: 3 } }, 'alice')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  await h.sessions.kill(id, 'alice');
  await h.sessions.restart(id, 'alice');
  expect(h.fake.specs.get(id)?.limits).toEqual({ memoryMb: 2048, cpus: 2, pids: 256 });
  expect(asView(await h.sessions.get(id)).restartNeeded).toBe(false);
});

test('a session over a maximum lowered later runs at the maximum', () => {
  const policy = limitPolicy(defaults, { memoryMb: 2048 }, { memoryMb: 16384, cpus: 8 });
  expect(policy.max).toEqual({ memoryMb: 2048, cpus: 8, pids: 32768 });
  expect(effectiveLimits({ memoryMb: 8192, cpus: 4 }, policy)).toEqual({ memoryMb: 2048, cpus: 4, pids: 256 });
  expect(() => checkRequestedLimits({ cpus: 9 }, policy)).toThrow("limits: CPUs 9 is above this agent's maximum of 8");
});
