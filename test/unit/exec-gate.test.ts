import { ExecGate } from '../../agent/docker/exec-gate';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ExecGate', () => {
  it('lets execs start freely while nothing pauses, and forgets idle containers', async () => {
    const g = new ExecGate();
    const a = await g.beginExec('c1', 1000);
    const b = await g.beginExec('c1', 1000);
    expect(g.size).toBe(1);
    a();
    b();
    b(); // a second call changes nothing
    expect(g.size).toBe(0);
  });

  it('makes a pause wait for execs that are starting', async () => {
    const g = new ExecGate();
    const started = await g.beginExec('c1', 1000);
    let paused = false;
    const pause = g.beginPause('c1', 1000).then(() => (paused = true));
    await tick();
    expect(paused).toBe(false);
    started();
    await pause;
    expect(paused).toBe(true);
  });

  it('holds new execs while paused, and lets them go on unpause', async () => {
    const g = new ExecGate();
    await g.beginPause('c1', 1000);
    let began = false;
    const exec = g.beginExec('c1', 1000).then((done) => {
      began = true;
      return done;
    });
    await tick();
    expect(began).toBe(false);
    // Another container is not held.
    (await g.beginExec('c2', 1000))();
    g.endPause('c1');
    (await exec)();
    expect(began).toBe(true);
    expect(g.size).toBe(0);
  });

  it('refuses with CONFLICT when the wait is too long, and leaves no state behind', async () => {
    const g = new ExecGate();
    await g.beginPause('c1', 1000);
    await expect(g.beginExec('c1', 20)).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/paused while a clone/) });
    g.endPause('c1');
    const stuck = await g.beginExec('c1', 1000);
    await expect(g.beginPause('c1', 20)).rejects.toMatchObject({ code: 'CONFLICT' });
    // The failed pause let execs start again.
    (await g.beginExec('c1', 20))();
    stuck();
    expect(g.size).toBe(0);
  });

  it('never lets an exec and a pause that wake together both through', async () => {
    const g = new ExecGate();
    await g.beginPause('c1', 1000);
    const order: string[] = [];
    const exec = g.beginExec('c1', 1000).then((done) => {
      order.push('exec');
      return done;
    });
    const pause = g.beginPause('c1', 1000).then(() => order.push('pause'));
    g.endPause('c1');
    const done = await exec;
    await tick();
    // The exec went first, so the second pause still waits for it.
    expect(order).toEqual(['exec']);
    done();
    await pause;
    expect(order).toEqual(['exec', 'pause']);
    g.endPause('c1');
  });
});
