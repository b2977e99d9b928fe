import { OpJournal } from '../../agent/rpc/op-journal';

describe('OpJournal', () => {
  it('runs an op once per op id; a retry gets the first outcome, even while it still runs', async () => {
    const j = new OpJournal();
    let runs = 0;
    let finish: (v: string) => void = () => undefined;
    const run = () => {
      runs++;
      return new Promise<string>((r) => (finish = r));
    };
    const first = j.once('alice', 'op-00000001', 'clone', { session: 'a' }, run);
    const retry = j.once('alice', 'op-00000001', 'clone', { session: 'a' }, run);
    finish('cloned');
    expect(await first).toBe('cloned');
    expect(await retry).toBe('cloned');
    expect(await j.once('alice', 'op-00000001', 'clone', { session: 'a' }, run)).toBe('cloned');
    expect(runs).toBe(1);
  });

  it('gives a failed op\'s error again, and runs other ids and other operators\' ids anew', async () => {
    const j = new OpJournal();
    let runs = 0;
    const failing = () => {
      runs++;
      return Promise.reject(new Error('refused'));
    };
    await expect(j.once('alice', 'op-00000002', 'kill', {}, failing)).rejects.toThrow('refused');
    await expect(j.once('alice', 'op-00000002', 'kill', {}, failing)).rejects.toThrow('refused');
    await expect(j.once('bob', 'op-00000002', 'kill', {}, failing)).rejects.toThrow('refused');
    await expect(j.once('alice', 'op-00000003', 'kill', {}, failing)).rejects.toThrow('refused');
    expect(runs).toBe(3);
  });

  it('refuses an op id used for another request', async () => {
    const j = new OpJournal();
    await j.once('alice', 'op-00000004', 'edit', { name: 'a' }, async () => 1);
    await expect(j.once('alice', 'op-00000004', 'edit', { name: 'b' }, async () => 2)).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: 'op id op-00000004 was already used for another request',
    });
  });

  it('forgets entries after an hour', async () => {
    let now = 0;
    const j = new OpJournal(() => now);
    let runs = 0;
    const run = async () => ++runs;
    await j.once('alice', 'op-00000005', 'restart', {}, run);
    now += 60 * 60 * 1000 + 1;
    expect(await j.once('alice', 'op-00000006', 'restart', {}, run)).toBe(2);
    expect(j.size).toBe(1);
    expect(await j.once('alice', 'op-00000005', 'restart', {}, run)).toBe(3);
  });
});
