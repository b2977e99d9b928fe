import { BUILD } from '../build-info';

/** Bumped whenever a frame changes shape; exchanged in the `hello` event. */
export const PROTOCOL_VERSION = 1;

/** The package version (package.json's, as stamped at build), reported in `hello` and by `berth version`. */
export const BERTH_VERSION = BUILD.version;

export const SUBSYSTEMS = {
  rpc: 'berth-rpc',
  events: 'berth-events',
  attach: 'berth-attach',
  move: 'berth-move',
} as const;

/** Largest request line the agent reads on berth-rpc or as an attach header. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Largest line a shell reads from an agent (a reply or an event). */
export const MAX_REPLY_BYTES = 8 * 1024 * 1024;
