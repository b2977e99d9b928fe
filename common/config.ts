/**
 * Config files are JSON checked by a zod schema. Every error names the file, the field and what
 * was expected; nothing half-parsed is ever returned.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BerthError, messageOf } from './errors';
import { parseJson } from './json';
import { describeIssue } from './protocol/rpc';

/** Reads and checks a JSON config file. Throws BAD_REQUEST naming the file and the field. */
export function loadConfigFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BerthError('BAD_REQUEST', `config ${file}: cannot read: ${messageOf(err)}`, { cause: err });
  }
  const r = parseJson(text, schema);
  if (!r.ok) throw new BerthError('BAD_REQUEST', `config ${file}: ${r.problem}`);
  return r.value;
}

/** Checks an already-parsed config value; errors read like loadConfigFile's. */
export function parseConfig<S extends z.ZodType>(file: string, raw: unknown, schema: S): z.output<S> {
  const r = schema.safeParse(raw);
  if (!r.success) throw new BerthError('BAD_REQUEST', `config ${file}: ${describeIssue(r.error)}`);
  return r.data;
}

/** A path from a config file, taken relative to the file's own folder. */
export function resolveFrom(configFile: string, p: string): string {
  return path.resolve(path.dirname(path.resolve(configFile)), p);
}
