/**
 * The one error type of berth, with a closed list of codes. Everything that crosses a boundary
 * (an RPC reply, an exit code, a menu message) is mapped from a BerthError at that edge only.
 */

export const ERROR_CODES = [
  'BAD_REQUEST',
  'NOT_FOUND',
  'CONFLICT',
  'LOCKED',
  'FORBIDDEN',
  'PORT_UNAVAILABLE',
  'NAME_TAKEN',
  'RUNTIME_UNAVAILABLE',
  'AGENT_OFFLINE',
  'TIMEOUT',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class BerthError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BerthError';
    this.code = code;
  }

  /** The wire form of this error: only the code and the message, never a stack. */
  toWire(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** The message of anything thrown, for logs and wrapping. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Adds short lowercase context to an error and keeps the cause. A BerthError keeps its code;
 * anything else becomes the given fallback code (INTERNAL unless told otherwise).
 */
export function wrapError(context: string, err: unknown, fallback: ErrorCode = 'INTERNAL'): BerthError {
  const code = err instanceof BerthError ? err.code : fallback;
  return new BerthError(code, `${context}: ${messageOf(err)}`, { cause: err });
}

/** Turns anything thrown into a BerthError, keeping BerthErrors as they are. */
export function toBerthError(err: unknown): BerthError {
  if (err instanceof BerthError) return err;
  return new BerthError('INTERNAL', messageOf(err), { cause: err });
}
