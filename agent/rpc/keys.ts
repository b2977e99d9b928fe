/** The agent's host key and the shell keys it trusts. ssh2 is imported only here and in server.ts. */
import { promises as fs } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { utils } from 'ssh2';
import { BerthError } from '../../common/errors';
import { ensureKeyFile, fingerprint } from '../../common/ssh-keys';

/** Reads the host key, generating (ed25519) and keeping one on first start. */
export async function ensureHostKey(file: string): Promise<Buffer> {
  return (await ensureKeyFile(file, 'berth-agent')).private;
}

/** The OpenSSH public key line and fingerprint of a private key. */
export function publicKeyOf(privateKey: Buffer): { line: string; fingerprint: string } {
  const k = utils.parseKey(privateKey);
  if (k instanceof Error) throw new BerthError('BAD_REQUEST', `host key: ${k.message}`);
  const blob = k.getPublicSSH();
  return { line: `${k.type} ${blob.toString('base64')}`, fingerprint: fingerprint(blob) };
}

export interface TrustedKey {
  type: string;
  blob: Buffer;
  comment: string;
  /** Checks a signature made with this key's private half. */
  verify(data: Buffer, signature: Buffer, hashAlgo?: string): boolean;
}

/** Parses one OpenSSH public key line. Throws BAD_REQUEST saying what is wrong. */
export function parsePublicKeyLine(line: string): TrustedKey {
  const trimmed = line.trim();
  const k = utils.parseKey(trimmed);
  if (k instanceof Error) throw new BerthError('BAD_REQUEST', `key: not an OpenSSH public key (${k.message})`);
  if (k.isPrivateKey()) throw new BerthError('BAD_REQUEST', 'key: this is a private key; give the public one');
  return {
    type: k.type,
    blob: k.getPublicSSH(),
    comment: trimmed.split(/\s+/).slice(2).join(' '),
    verify: (data, signature, hashAlgo) => k.verify(data, signature, hashAlgo as never) === true,
  };
}

/** Reads the trusted-keys file (missing file: none); bad lines are skipped and reported. */
export async function readTrustedKeys(file: string): Promise<{ keys: TrustedKey[]; problems: string[] }> {
  let text = '';
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const keys: TrustedKey[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '' || line.trim().startsWith('#')) return;
    try {
      keys.push(parsePublicKeyLine(line));
    } catch (err) {
      problems.push(`line ${i + 1}: ${(err as Error).message}`);
    }
  });
  return { keys, problems };
}

/** Adds a shell's public key to the trusted-keys file. Idempotent: a key already there is not added twice. */
export async function authorizeKey(file: string, line: string): Promise<'added' | 'present'> {
  const key = parsePublicKeyLine(line);
  const { keys } = await readTrustedKeys(file);
  if (keys.some((k) => sameKey(k, key.blob))) return 'present';
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const entry = `${key.type} ${key.blob.toString('base64')}${key.comment ? ` ${key.comment}` : ''}\n`;
  await fs.appendFile(file, entry, { mode: 0o600 });
  return 'added';
}

/** Compares key blobs (the blob names its own type) in constant time. */
export function sameKey(k: TrustedKey, blob: Buffer): boolean {
  return k.blob.length === blob.length && timingSafeEqual(k.blob, blob);
}
