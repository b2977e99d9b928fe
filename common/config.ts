/**
 * Config files are JSON checked by a zod schema. Every error names the file, the field and what
 * was expected; nothing half-parsed is ever returned.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BerthError, messageOf } from './errors';
import { parseJson } from './json';

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

/** A path from a config file, taken relative to the file's own folder. */
export function resolveFrom(configFile: string, p: string): string {
  return path.resolve(path.dirname(path.resolve(configFile)), p);
}
