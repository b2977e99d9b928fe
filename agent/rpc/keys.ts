/** The agent's host key and the shell keys it trusts. ssh2 is imported only here and in server.ts. */
import { promises as fs } from 'node:fs';
import { createHash, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { utils } from 'ssh2';
import { BerthError } from '../../common/errors';

/** Reads the host key, generating (ed25519) and keeping one on first start. */
export async function ensureHostKey(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const pair = generateEd25519();
  await fs.writeFile(file, pair.private, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return fs.readFile(file);
}

/**
 * A new ed25519 key pair in OpenSSH format that ssh2 itself can parse back: ssh2's generator now
 * and then makes keys its own parser rejects (mscdex/ssh2#1390), so each is checked.
 */
export function generateEd25519(): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519');
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) return pair;
  }
  throw new BerthError('INTERNAL', 'could not generate a usable ed25519 key');
}

/** "SHA256:…" of a public key blob, as OpenSSH prints it. */
export function fingerprint(publicBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
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
