import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { authorizeKey, ensureHostKey, parsePublicKeyLine, publicKeyOf, readTrustedKeys } from '../../agent/rpc/keys';
import { generateEd25519 } from '../../common/ssh-keys';

describe('keys', () => {
  it('generates keys that parse back', () => {
    for (let i = 0; i < 400; i++) {
      const k = generateEd25519();
      expect(() => parsePublicKeyLine(k.public)).not.toThrow();
      expect(() => publicKeyOf(Buffer.from(k.private))).not.toThrow();
    }
  });

  it('keeps the host key across starts', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-keys-'));
    try {
      const first = await ensureHostKey(path.join(dir, 'state', 'host_key'));
      const again = await ensureHostKey(path.join(dir, 'state', 'host_key'));
      expect(again.equals(first)).toBe(true);
      expect(publicKeyOf(first).fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('adds a trusted key once, and refuses private keys and garbage', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-keys-'));
    const file = path.join(dir, 'trusted');
    try {
      const k = generateEd25519();
      expect(await authorizeKey(file, `${k.public} shell@test`)).toBe('added');
      expect(await authorizeKey(file, k.public)).toBe('present');
      expect((await readTrustedKeys(file)).keys).toHaveLength(1);
      await expect(authorizeKey(file, k.private)).rejects.toThrow('private key');
      await expect(authorizeKey(file, 'ssh-ed25519 nope')).rejects.toThrow('not an OpenSSH public key');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
