import { UsageError, cpusFlag, intFlag, limitsFromFlags, memoryFlag, parseFlags, splitWords } from '../../shell/cli/args';

describe('splitWords', () => {
  it('splits on blanks and keeps quoted text whole, expanding nothing', () => {
    expect(splitWords('  create --name web  --port -1 ')).toEqual(['create', '--name', 'web', '--port', '-1']);
    expect(splitWords(`override abc --reason 'holder is gone; $HOME'`)).toEqual(['override', 'abc', '--reason', 'holder is gone; $HOME']);
    expect(splitWords('x "a \\"b\\" $(c)" d\\ e')).toEqual(['x', 'a "b" $(c)', 'd e']);
    expect(splitWords("''")).toEqual(['']);
  });

  it('refuses unterminated quotes', () => {
    expect(() => splitWords("a 'b")).toThrow(UsageError);
    expect(() => splitWords('a "b')).toThrow('unterminated double quote');
  });
});

describe('parseFlags', () => {
  const spec = { name: 'string', port: 'string', json: 'boolean' } as const;

  it('reads both flag forms and negative values', () => {
    expect(parseFlags(['--name=web', '--port', '-1', '--json'], spec, 0)).toEqual({ flags: { name: 'web', port: '-1', json: true }, positionals: [] });
    expect(parseFlags(['ref', '--name', 'x'], spec, 1)).toEqual({ flags: { name: 'x' }, positionals: ['ref'] });
  });

  it('names what is wrong', () => {
    expect(() => parseFlags(['--nope'], spec, 0)).toThrow('unknown flag --nope');
    expect(() => parseFlags(['--name'], spec, 0)).toThrow('--name needs a value');
    expect(() => parseFlags(['--json=1'], spec, 0)).toThrow('--json takes no value');
    expect(() => parseFlags(['a', 'b'], spec, 1)).toThrow('unexpected argument: b');
  });

  it('reads whole numbers only', () => {
    expect(intFlag('-1', 'port')).toBe(-1);
    expect(intFlag(undefined, 'port')).toBeUndefined();
    expect(() => intFlag('8o', 'port')).toThrow('--port must be a whole number');
  });
});

describe('limit flags', () => {
  it('reads memory in MB or with m/g, CPUs as decimals, pids as whole numbers', () => {
    expect(limitsFromFlags({ memory: '512' })).toEqual({ memoryMb: 512 });
    expect(limitsFromFlags({ memory: '4g', cpus: '0.5', pids: '300' })).toEqual({ memoryMb: 4096, cpus: 0.5, pids: 300 });
    expect(limitsFromFlags({ memory: '768M' })).toEqual({ memoryMb: 768 });
    expect(limitsFromFlags({ name: 'x' })).toBeUndefined();
  });

  it('names the flag that is wrong', () => {
    expect(() => memoryFlag('1.5g')).toThrow(new UsageError('--memory must be a size in MB, like 512, 512m or 4g'));
    expect(() => memoryFlag(true)).toThrow(UsageError);
    expect(() => cpusFlag('-1')).toThrow('--cpus must be a number like 0.5 or 2');
    expect(() => limitsFromFlags({ pids: 'many' })).toThrow('--pids must be a whole number');
  });
});
