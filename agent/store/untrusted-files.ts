/**
 * Reading files in places a session can write (its home). Whatever is there may be a symlink to a
 * host file, a FIFO that blocks an open() for ever, a device, or a huge file: it is opened without
 * following links and without blocking, only a regular file is read, and never more than a cap.
 */
import { constants, promises as fs } from 'node:fs';

/** Why an untrusted file was not read: shown to operators, so it never quotes the file. */
export class UntrustedFileError extends Error {
  constructor(
    readonly path: string,
    readonly problem: 'missing' | 'symlink' | 'not a regular file' | 'too large' | 'unreadable',
    detail = '',
  ) {
    super(`${problem}${detail ? `: ${detail}` : ''}`);
    this.name = 'UntrustedFileError';
  }
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * The content of `file` when it is a regular file of at most `maxBytes` bytes. Never follows a
 * symlink (at the last component: callers make sure the folders above are not the session's) and
 * never blocks on a special file. Throws UntrustedFileError.
 */
export async function readUntrustedFile(file: string, maxBytes: number): Promise<Buffer> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UntrustedFileError(file, 'missing');
    if (code === 'ELOOP') throw new UntrustedFileError(file, 'symlink');
    if (code === 'ENXIO' || code === 'EWOULDBLOCK' || code === 'EAGAIN') throw new UntrustedFileError(file, 'not a regular file');
    throw new UntrustedFileError(file, 'unreadable', code ?? 'error');
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new UntrustedFileError(file, 'not a regular file');
    if (st.size > maxBytes) throw new UntrustedFileError(file, 'too large', `${st.size} bytes, at most ${maxBytes}`);
    // The file may grow between fstat and read: read at most one byte past the cap to tell.
    const buf = Buffer.alloc(maxBytes + 1);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got > maxBytes) throw new UntrustedFileError(file, 'too large', `more than ${maxBytes} bytes`);
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}
