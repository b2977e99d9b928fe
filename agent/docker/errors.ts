import { BerthError, messageOf } from '../../common/errors';

const DOWN_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EACCES', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** Maps an error from the Docker engine (or from reaching it) to a BerthError with context. */
export function dockerError(context: string, err: unknown): BerthError {
  if (err instanceof BerthError) return err;
  const e = err as { code?: string; statusCode?: number; json?: { message?: string } };
  const detail = e.json?.message ?? messageOf(err);
  if (e.code && DOWN_CODES.has(e.code)) {
    return new BerthError('RUNTIME_UNAVAILABLE', `${context}: docker engine unavailable (${e.code})`, { cause: err });
  }
  if (/port is already allocated|address already in use/i.test(detail)) {
    return new BerthError('PORT_UNAVAILABLE', `${context}: ${portTaken(detail)}`, { cause: err });
  }
  if (e.statusCode === 404) return new BerthError('NOT_FOUND', `${context}: ${detail.trim()}`, { cause: err });
  if (e.statusCode === 409) return new BerthError('CONFLICT', `${context}: ${detail.trim()}`, { cause: err });
  return new BerthError('INTERNAL', `${context}: ${detail.trim()}`, { cause: err });
}

/** True for errors that only say a container is already gone or already stopped. */
export function isGoneOrDone(err: unknown): boolean {
  const e = err as { statusCode?: number };
  return e.statusCode === 404 || e.statusCode === 304;
}

/**
 * Docker's "port taken" message, said plainly: which address and port, without its endpoint ids
 * and driver internals (e.g. "driver failed programming external connectivity on endpoint
 * berth-… (3f1e…): Bind for 127.0.0.1:1002 failed: port is already allocated").
 */
function portTaken(detail: string): string {
  const m = /(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:]+:[0-9a-fA-F:]*):(\d{1,5})\b/.exec(detail);
  if (!m) return 'the port is already in use on this host';
  return `port ${m[2]} on ${m[1]} is already in use on this host (another program, or a session of another agent, holds it)`;
}
