import { LineSplitter, encodeFrame } from '../../common/protocol';

describe('LineSplitter', () => {
  it('returns complete lines across chunk boundaries', () => {
    const s = new LineSplitter(100);
    expect(s.push('{"a":')).toEqual([]);
    expect(s.push('1}\n{"b"')).toEqual([{ kind: 'line', line: '{"a":1}' }]);
    expect(s.push(':2}\n')).toEqual([{ kind: 'line', line: '{"b":2}' }]);
  });

  it('skips blank lines and strips a trailing CR', () => {
    const s = new LineSplitter(100);
    expect(s.push('\n\r\nx\r\n')).toEqual([{ kind: 'line', line: 'x' }]);
  });

  it('reports an oversized line once and recovers at the next newline', () => {
    const s = new LineSplitter(10);
    const out = [...s.push('0123456789abc'), ...s.push('def\nok\n')];
    expect(out).toEqual([{ kind: 'oversized', bytes: 13 }, { kind: 'line', line: 'ok' }]);
  });

  it('keeps multi-byte characters split across chunks intact', () => {
    const s = new LineSplitter(100);
    const bytes = Buffer.from('é\n');
    expect(s.push(bytes.subarray(0, 1))).toEqual([]);
    expect(s.push(bytes.subarray(1))).toEqual([{ kind: 'line', line: 'é' }]);
  });

  it('encodes one frame per line', () => {
    expect(encodeFrame({ a: 'x\ny' })).toBe('{"a":"x\\ny"}\n');
  });
});
