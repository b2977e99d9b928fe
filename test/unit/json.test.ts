import { z } from 'zod';
import { parseJson } from '../../common/json';

const schema = z.object({ port: z.number() }).strict();

describe('parseJson', () => {
  it('gives the checked value', () => {
    expect(parseJson('{"port": 22}', schema)).toEqual({ ok: true, value: { port: 22 } });
  });

  it('names the field that is wrong', () => {
    expect(parseJson('{"port": "x"}', schema)).toEqual({ ok: false, problem: expect.stringMatching(/^port: /) });
    expect(parseJson('{"port": 1, "extra": 2}', schema)).toEqual({ ok: false, problem: 'unknown field "extra"' });
  });

  it('never repeats the text it could not parse', () => {
    const secret = 'root:x:0:0:root:/root:/bin/bash';
    const r = parseJson(secret, schema);
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('root');
    expect(r).toEqual({ ok: false, problem: expect.stringMatching(/^not valid JSON/) });
  });
});
