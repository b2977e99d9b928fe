import { Figure, blockMedians, met, ratios, summary } from '../bench/lib';
import { merge, num } from '../bench/run-all';

const fig = (o: Partial<Figure>): Figure => ({ key: 'k', label: 'l', unit: 'ms', values: [1, 2, 3], ...o });

describe('benchmark figures', () => {
  it('gives ratios block by block, ours ÷ direct, and judges a target on the median', () => {
    const f = fig({ values: [2, 4, 9], direct: { label: 'd', values: [1, 4, 3] }, target: { of: 'ratio', op: '<=', value: 2 } });
    expect(ratios(f)).toEqual([2, 1, 3]);
    expect(met(f)).toBe(true);
    expect(met({ ...f, target: { of: 'ratio', op: '<=', value: 1.9 } })).toBe(false);
    expect(met(fig({ values: [10, 20, 30], target: { of: 'value', op: '>=', value: 20 } }))).toBe(true);
    expect(met(fig({}))).toBeNull();
    expect(summary([3, 1, 2, 10])).toEqual({ n: 4, min: 1, median: 2.5, max: 10 });
  });

  it('splits samples into blocks and takes each block’s median', () => {
    expect(blockMedians([1, 2, 3, 10, 20, 30, 7], 2)).toEqual([2, 20]);
    expect(blockMedians([5], 3)).toEqual([5]);
  });

  it('prints three significant figures at most', () => {
    expect([num(1234.5), num(12.345), num(1.2345), num(Number.NaN)]).toEqual(['1235', '12.3', '1.23', '—']);
  });
});

describe('RESULTS.md', () => {
  const section = (name: string, body: string): string => `<!-- bench:${name} -->\n## ${name}\n${body}\n<!-- /bench:${name} -->`;

  it('replaces the sections run, keeps the others and the history, in the benchmarks’ order', () => {
    const first = merge('', new Map([['shell', section('shell', 'one')]]));
    expect(first).toContain('## History');
    const edited = first.replace('## History', '## History\n\n- 2026-12-01: echo ratio 1.26 before, 1.14 after');
    const second = merge(edited, new Map([['agent', section('agent', 'two')]]));
    const third = merge(second, new Map([['shell', section('shell', 'three')]]));
    expect(third).toContain(section('agent', 'two'));
    expect(third).toContain(section('shell', 'three'));
    expect(third).not.toContain('one');
    expect(third.indexOf('bench:agent')).toBeLessThan(third.indexOf('bench:shell'));
    expect(third).toContain('- 2026-12-01: echo ratio 1.26 before, 1.14 after');
    expect(third.match(/## History/g)).toHaveLength(1);
    expect(merge(third, new Map())).toBe(third);
  });
});
