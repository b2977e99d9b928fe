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

describe('value rules', () => {
  it('never lets a value swallow the next flag; --flag=--value says it is meant', () => {
    expect(() => parseFlags(['--name', '--yes'], { name: 'string', yes: 'boolean' }, 0)).toThrow(
      new UsageError('--name needs a value (one that starts with -- is written --name=--yes)'),
    );
    expect(parseFlags(['--name=--yes'], { name: 'string' }, 0).flags).toEqual({ name: '--yes' });
    expect(parseFlags(['--port', '-1'], { port: 'string' }, 0).flags).toEqual({ port: '-1' });
  });

  it('refuses an empty value, but where a flag says empty means none', () => {
    expect(() => parseFlags(['--name', ''], { name: 'string' }, 0)).toThrow(new UsageError('--name must not be empty'));
    expect(() => parseFlags(['--name='], { name: 'string' }, 0)).toThrow(new UsageError('--name must not be empty'));
    expect(parseFlags(['--dns', ''], { dns: 'text' }, 0).flags).toEqual({ dns: '' });
  });

  it('takes only whole numbers a double holds exactly', () => {
    expect(intFlag('9007199254740991', 'port')).toBe(9007199254740991);
    expect(() => intFlag('99999999999999999999999', 'port')).toThrow(new UsageError('--port must be a whole number'));
  });
});
