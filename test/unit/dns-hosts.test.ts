/** The dnsmasq hosts file text: format, order, IPv6, and refusal of bad records. */
import { BerthError } from '../../common/errors';
import { renderHosts } from '../../shell/dns';

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

describe('renderHosts', () => {
  it('writes a header comment, then one "<address> <name>.<domain>" line per record', () => {
    const text = renderHosts('berth', [{ name: 'web', address: '10.0.0.5' }]);
    expect(text.startsWith('# ')).toBe(true);
    expect(text.endsWith('\n')).toBe(true);
    expect(lines(text)).toEqual(['10.0.0.5 web.berth']);
  });

  it('sorts by name (then address), whatever the input order', () => {
    const records = [
      { name: 'zeta', address: '10.0.0.3' },
      { name: 'alpha', address: '10.0.0.9' },
      { name: 'mid-1', address: '10.0.0.1' },
      { name: 'alpha', address: '10.0.0.2' },
    ];
    const text = renderHosts('dev.example', records);
    expect(lines(text)).toEqual(['10.0.0.2 alpha.dev.example', '10.0.0.9 alpha.dev.example', '10.0.0.1 mid-1.dev.example', '10.0.0.3 zeta.dev.example']);
    expect(renderHosts('dev.example', [...records].reverse())).toBe(text);
  });

  it('takes IPv6 addresses', () => {
    expect(lines(renderHosts('berth', [{ name: 'api', address: '::1' }, { name: 'db', address: 'fd00:1::2' }]))).toEqual(['::1 api.berth', 'fd00:1::2 db.berth']);
  });

  it('writes only the header for an empty set', () => {
    const text = renderHosts('berth', []);
    expect(lines(text)).toEqual([]);
    expect(text).toMatch(/^# /);
  });

  it('is pure: it does not change the records it is given', () => {
    const records = [{ name: 'b', address: '10.0.0.2' }, { name: 'a', address: '10.0.0.1' }];
    renderHosts('berth', records);
    expect(records.map((r) => r.name)).toEqual(['b', 'a']);
  });

  it.each(['Web', '-x', 'x-', 'a.b', 'a_b', '', 'a'.repeat(64), 'a b', 'x\n1.2.3.4 evil'])('refuses the name %j, naming the record', (name) => {
    const err = catchError(() => renderHosts('berth', [{ name: 'ok', address: '10.0.0.1' }, { name, address: '10.0.0.7' }]));
    expect(err).toBeInstanceOf(BerthError);
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toContain(JSON.stringify(name));
    expect(err.message).toMatch(/name must be/);
  });

  it.each(['10.0.0', '256.1.1.1', 'example.com', '', '::g', 'fe80::1%eth0', '10.0.0.1 evil.berth'])('refuses the address %j, naming the record', (address) => {
    const err = catchError(() => renderHosts('berth', [{ name: 'web', address }]));
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toContain('"web"');
    expect(err.message).toContain(JSON.stringify(address));
    expect(err.message).toMatch(/address must be/);
  });

  it.each(['', 'Berth', 'a..b', '.berth', 'berth.', 'a b'])('refuses the domain %j', (domain) => {
    const err = catchError(() => renderHosts(domain, []));
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toMatch(/dns domain/);
  });
});

function catchError(fn: () => unknown): BerthError {
  try {
    fn();
  } catch (err) {
    return err as BerthError;
  }
  throw new Error('expected an error');
}
