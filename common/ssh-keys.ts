/**
 * SSH key material without an SSH library: ed25519 key pairs in OpenSSH's own formats (made with
 * Node's crypto), fingerprints, and the shape of public key lines. Signature checks stay with the
 * SSH library on each side (agent/rpc, shell/ssh).
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BerthError } from './errors';

function sshString(b: Buffer | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A new ed25519 key pair: the private key as an OpenSSH PEM, the public key as an OpenSSH line. */
export function generateEd25519(comment = 'berth'): { private: string; public: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' }) as { d?: string; x?: string };
  if (!jwk.d || !jwk.x) throw new BerthError('INTERNAL', 'generate key: no raw key material');
  const seed = Buffer.from(jwk.d, 'base64url');
  const pub = Buffer.from(jwk.x, 'base64url');
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4).readUInt32BE(0);
  let secret = Buffer.concat([
    uint32(check),
    uint32(check),
    sshString('ssh-ed25519'),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const pad: number[] = [];
  for (let i = 1; (secret.length + pad.length) % 8 !== 0; i++) pad.push(i);
  secret = Buffer.concat([secret, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(blob),
    sshString(secret),
  ]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return {
    private: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`,
    public: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
  };
}

/** "SHA256:…" of a public key blob, as OpenSSH prints it. */
export function fingerprint(publicBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The public key line of an OpenSSH-format private key (read from its unencrypted header). */
export function publicLineOfPrivate(pem: string | Buffer, comment = ''): string {
  const text = pem.toString();
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m?.[1]) throw new BerthError('BAD_REQUEST', 'key: not an OpenSSH private key');
  const body = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (body.subarray(0, magic.length).toString() !== magic) throw new BerthError('BAD_REQUEST', 'key: not an OpenSSH private key');
  let at = magic.length;
  const next = (): Buffer => {
    if (at + 4 > body.length) throw new BerthError('BAD_REQUEST', 'key: truncated OpenSSH private key');
    const n = body.readUInt32BE(at);
    const out = body.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return out;
  };
  next(); // cipher
  next(); // kdf
  next(); // kdf options
  at += 4; // number of keys
  const blob = next();
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString();
  return `${type} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/**
 * Reads a private key file, creating it (ed25519, mode 0600) on first use. Returns the PEM and
 * the public key line. Concurrent first starts agree on one key.
 */
export async function ensureKeyFile(file: string, comment: string): Promise<{ private: Buffer; public: string }> {
  try {
    const pem = await fs.readFile(file);
    return { private: pem, public: publicLineOfPrivate(pem, comment) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const pair = generateEd25519(comment);
  try {
    await fs.writeFile(file, pair.private, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const pem = await fs.readFile(file);
  return { private: pem, public: publicLineOfPrivate(pem, comment) };
}
