import { dockerError } from '../../agent/docker/errors';

const engineSays = (message: string, statusCode = 500) => Object.assign(new Error(message), { statusCode, json: { message } });

describe('dockerError', () => {
  it('says a taken port plainly, without Docker\'s endpoint ids', () => {
    const e = dockerError(
      'start container',
      engineSays(
        'driver failed programming external connectivity on endpoint berth-6f0c0e7e-1b2f-4c1d-9a43-0d2a1f0b9e11 (3f1e9c2d7b8a6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e): Bind for 127.0.0.1:1002 failed: port is already allocated',
      ),
    );
    expect(e.code).toBe('PORT_UNAVAILABLE');
    expect(e.message).toBe(
      'start container: port 1002 on 127.0.0.1 is already in use on this host (another program, or a session of another agent, holds it)',
    );
    expect(e.message).not.toMatch(/endpoint|3f1e9c2d/);
  });

  it('keeps the address of an IPv6 publish and says something plain when none is given', () => {
    expect(dockerError('start container', engineSays('Error starting userland proxy: listen tcp6 [::1]:2200: bind: address already in use')).message).toBe(
      'start container: port 2200 on [::1] is already in use on this host (another program, or a session of another agent, holds it)',
    );
    expect(dockerError('start container', engineSays('address already in use')).message).toBe('start container: the port is already in use on this host');
  });

  it('maps an unreachable engine and missing things to their codes', () => {
    expect(dockerError('list containers', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).code).toBe('RUNTIME_UNAVAILABLE');
    expect(dockerError('inspect', engineSays('No such container: x', 404)).code).toBe('NOT_FOUND');
  });
});
