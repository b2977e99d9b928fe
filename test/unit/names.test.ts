import { dnsNameSchema, portRequestSchema, problemWith, protocolSchema, sessionIdSchema, sessionNameSchema } from '../../common/names';

describe('operator-given values', () => {
  it.each(['a', 'web-1', 'A_b-9', 'x'.repeat(64)])('accepts the session name %s', (n) => {
    expect(problemWith(sessionNameSchema, n)).toBeNull();
  });

  it.each(['', 'x'.repeat(65), 'a b', '../x', 'é', 'a/b', 'a.b'])('refuses the session name %j', (n) => {
    expect(problemWith(sessionNameSchema, n)).toMatch(/letters, digits/);
  });

  it.each(['', 'web', 'a-b', 'x1', 'a'.repeat(63)])('accepts the dns name %j', (n) => {
    expect(problemWith(dnsNameSchema, n)).toBeNull();
  });

  it.each(['UPPER', '-x', 'x-', 'a.b', 'a_b', 'a'.repeat(64), 'a b'])('refuses the dns name %j', (n) => {
    expect(problemWith(dnsNameSchema, n)).toMatch(/hostname label/);
  });

  it.each([0, -1, 1, 80, 65535])('accepts the port %d', (p) => {
    expect(problemWith(portRequestSchema, p)).toBeNull();
  });

  it.each([-2, 65536, 1.5, '80', null])('refuses the port %j', (p) => {
    expect(problemWith(portRequestSchema, p)).not.toBeNull();
  });

  it('knows only tcp and udp', () => {
    expect(problemWith(protocolSchema, 'tcp')).toBeNull();
    expect(problemWith(protocolSchema, 'udp')).toBeNull();
    expect(problemWith(protocolSchema, 'sctp')).toBe('must be "tcp" or "udp"');
  });

  it('takes only lowercase uuids as session ids', () => {
    expect(problemWith(sessionIdSchema, '3f2b8c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b')).toBeNull();
    for (const bad of ['../x', '3F2B8C1E-1C2D-4E5F-8A9B-0C1D2E3F4A5B', '', 'abc']) {
      expect(problemWith(sessionIdSchema, bad)).toBe('must be a lowercase uuid');
    }
  });
});
