/** Operators' public keys, parsed once at start, and the check of a key offered at login. */
import { timingSafeEqual } from 'node:crypto';
import { utils } from 'ssh2';
import { BerthError } from '../../common/errors';
import { OperatorConfig, Role } from '../config';

export interface KnownOperator {
  name: string;
  role: Role;
  /** The terminal bell in the menu when a session starts waiting (shell.json operators[].bell). */
  bell: boolean;
  keys: Array<{ blob: Buffer; verify(data: Buffer, sig: Buffer, hashAlgo?: string): boolean }>;
}

/** Parses every operator key. Throws BAD_REQUEST naming the operator and the key. */
export function loadOperators(list: OperatorConfig[]): Map<string, KnownOperator> {
  const out = new Map<string, KnownOperator>();
  for (const o of list) {
    const keys = o.keys.map((line, i) => {
      const k = utils.parseKey(line.trim());
      if (k instanceof Error || k.isPrivateKey()) {
        throw new BerthError('BAD_REQUEST', `operators: ${o.name}: keys[${i}] is not an OpenSSH public key`);
      }
      return { blob: k.getPublicSSH(), verify: (d: Buffer, s: Buffer, h?: string) => k.verify(d, s, h as never) === true };
    });
    out.set(o.name, { name: o.name, role: o.role, bell: o.bell ?? true, keys });
  }
  return out;
}

/** The key of `op` that has this blob, compared in constant time. */
export function findKey(op: KnownOperator, blob: Buffer): KnownOperator['keys'][number] | undefined {
  return op.keys.find((k) => k.blob.length === blob.length && timingSafeEqual(k.blob, blob));
}
