import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { utils } from 'ssh2';
import { ensureKeyFile, fingerprint, generateEd25519, publicLineOfPrivate } from '../../common/ssh-keys';

describe('ssh keys without an SSH library', () => {
  it('makes ed25519 keys that ssh2 parses, with matching halves', () => {
    for (let i = 0; i < 200; i++) {
      const k = generateEd25519('t');
      const priv = utils.parseKey(k.private);
      const pub = utils.parseKey(k.public);
      if (priv instanceof Error || pub instanceof Error) throw new Error('unparseable key');
      expect(priv.getPublicSSH().equals(pub.getPublicSSH())).toBe(true);
      const data = Buffer.from(`payload ${i}`);
      expect(pub.verify(data, priv.sign(data))).toBe(true);
    }
  });

  it('makes keys OpenSSH itself accepts, and fingerprints as ssh-keygen does', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-k-'));
    try {
      const k = generateEd25519('me@test');
      await fs.writeFile(path.join(dir, 'k'), k.private, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', path.join(dir, 'k')]).toString().trim();
      expect(derived.split(' ').slice(0, 2)).toEqual(k.public.split(' ').slice(0, 2));
      const line = execFileSync('ssh-keygen', ['-l', '-f', path.join(dir, 'k')]).toString();
      expect(line).toContain(fingerprint(Buffer.from(k.public.split(' ')[1] ?? '', 'base64')));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('reads the public half out of any OpenSSH private key, ssh-keygen\'s included', async () => {
    const k = generateEd25519('c');
    expect(publicLineOfPrivate(k.private, 'c')).toBe(k.public);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-k-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'x', '-f', path.join(dir, 'e')]);
      const pub = (await fs.readFile(path.join(dir, 'e.pub'), 'utf8')).trim();
      expect(publicLineOfPrivate(await fs.readFile(path.join(dir, 'e')), 'x')).toBe(pub);
      expect(() => publicLineOfPrivate('garbage')).toThrow('not an OpenSSH private key');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps a key file once made', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-k-'));
    try {
      const a = await ensureKeyFile(path.join(dir, 'sub', 'key'), 'c');
      const b = await ensureKeyFile(path.join(dir, 'sub', 'key'), 'c');
      expect(b.private.equals(a.private)).toBe(true);
      expect(b.public).toBe(a.public);
      expect((await fs.stat(path.join(dir, 'sub', 'key'))).mode & 0o777).toBe(0o600);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
