import { BerthError } from '../../common/errors';
import { PortProbe, PortTable, portKey, resolvePort } from '../../agent/ports/ports';

/** A probe that answers from a set of busy ports and records what it was asked. */
function fakeProbe(busy: string[] = []): PortProbe & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    check: async (port, protocol) => {
      asked.push(portKey(port, protocol));
      return busy.includes(portKey(port, protocol)) ? 'EADDRINUSE' : null;
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<BerthError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BerthError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('resolvePort', () => {
  it('gives 0 for no port without probing', async () => {
    const probe = fakeProbe();
    expect(await resolvePort(0, 'tcp', new Map(), probe)).toBe(0);
    expect(probe.asked).toEqual([]);
  });

  it('picks the lowest free port from 1001, skipping used and unbindable ones', async () => {
    const used: PortTable = new Map([[portKey(1001, 'tcp'), 'a']]);
    const probe = fakeProbe(['tcp/1002']);
    expect(await resolvePort(-1, 'tcp', used, probe)).toBe(1003);
    expect(probe.asked).toEqual(['tcp/1002', 'tcp/1003']);
  });

  it('keeps protocols apart: udp 1001 is free while tcp 1001 is used', async () => {
    const used: PortTable = new Map([[portKey(1001, 'tcp'), 'a']]);
    expect(await resolvePort(-1, 'udp', used, fakeProbe())).toBe(1001);
    expect(await resolvePort(1001, 'udp', used, fakeProbe())).toBe(1001);
  });

  it('refuses an explicit port another session holds, naming it', async () => {
    const used: PortTable = new Map([[portKey(8080, 'tcp'), 'web']]);
    const err = await refusal(resolvePort(8080, 'tcp', used, fakeProbe()));
    expect(err.code).toBe('PORT_UNAVAILABLE');
    expect(err.message).toBe('port 8080/tcp is taken by session web');
  });

  it('refuses an explicit port the host cannot bind, saying why', async () => {
    const err = await refusal(resolvePort(8080, 'udp', new Map(), fakeProbe(['udp/8080'])));
    expect(err.code).toBe('PORT_UNAVAILABLE');
    expect(err.message).toBe('port 8080/udp cannot be bound: EADDRINUSE');
  });
});
