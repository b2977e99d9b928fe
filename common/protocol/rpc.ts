/** berth-rpc: requests from a shell to an agent, and the agent's replies. */
import { z } from 'zod';
import { ERROR_CODES } from '../errors';
import { dnsNameSchema, operatorNameSchema, portRequestSchema, protocolSchema, sessionIdSchema, sessionNameSchema } from '../names';
import { branchSchema, commandSchema, envChangesSchema, repoUrlSchema, sessionEnvSchema } from '../session-setup';
import { limitsSchema, sessionEntrySchema } from './session';
import { trashEntrySchema } from './trash';

/** Most lines a preview asks for, and most bytes it carries. */
export const MAX_PREVIEW_LINES = 500;
export const MAX_PREVIEW_BYTES = 256 * 1024;

export const RPC_OPS = [
  'list',
  'get',
  'create',
  'edit',
  'clone',
  'restart',
  'kill',
  'background',
  'delete',
  'override',
  'stats',
  'preview',
  'restore',
] as const;
export type RpcOp = (typeof RPC_OPS)[number];

const requestIdSchema = z.union([z.string().min(1).max(64), z.number().int()]);

/** An op id: 8-64 letters, digits, `-` and `_` (a uuid fits). */
export const opIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, { error: 'must be 8-64 letters, digits, - or _' });

/** The envelope: checked before the params, so a reply can always carry the id back. */
export const rpcEnvelopeSchema = z.object({
  v: z.number().int(),
  id: requestIdSchema,
  op: z.enum(RPC_OPS, { error: `must be one of ${RPC_OPS.join(', ')}` }),
  params: z.unknown().optional(),
  operator: operatorNameSchema,
  /**
   * Names one operation across retries: the same op with the same params and op id is done once,
   * and a retry gets that one's outcome (waiting for it if it is still running).
   */
  opId: opIdSchema.optional(),
});
export type RpcEnvelope = z.infer<typeof rpcEnvelopeSchema>;

/** Ops that change something: the ones an op id makes safe to retry. */
export const MUTATING_OPS: ReadonlySet<RpcOp> = new Set(['create', 'edit', 'clone', 'restart', 'kill', 'background', 'delete', 'override', 'restore']);

const bySession = z.object({ session: sessionIdSchema }).strict();

const paramsSchemas = {
  list: z.object({}).strict(),
  get: bySession,
  create: z
    .object({
      name: sessionNameSchema,
      protocol: protocolSchema.default('tcp'),
      port: portRequestSchema.default(0),
      dns: dnsNameSchema.default(''),
      limits: limitsSchema.optional(),
      command: commandSchema.optional(),
      env: sessionEnvSchema.optional(),
      /** A repository to check out at the first start, on `branch` (default berth/<name>). */
      repo: repoUrlSchema.optional(),
      branch: branchSchema.optional(),
    })
    .strict(),
  edit: z
    .object({
      session: sessionIdSchema,
      name: sessionNameSchema.optional(),
      protocol: protocolSchema.optional(),
      port: portRequestSchema.optional(),
      dns: dnsNameSchema.optional(),
      /** Merged over the session's own limits. */
      limits: limitsSchema.optional(),
      /** A command of its own; null: back to the agent's default. */
      command: commandSchema.nullable().optional(),
      /** Variables to set (a value) or remove (null). */
      env: envChangesSchema.optional(),
    })
    .strict(),
  clone: z.object({ session: sessionIdSchema, name: sessionNameSchema.optional() }).strict(),
  restart: bySession,
  kill: bySession,
  background: bySession,
  delete: bySession,
  override: z.object({ session: sessionIdSchema, reason: z.string().max(500).optional() }).strict(),
  stats: z.object({}).strict(),
  /** The last `lines` lines of the session's pane (a running session). */
  preview: z.object({ session: sessionIdSchema, lines: z.number().int().min(1).max(MAX_PREVIEW_LINES).default(40) }).strict(),
  /** Brings a trashed session back, stopped; `noPort`: without its port (else a taken port refuses). */
  restore: z.object({ session: sessionIdSchema, noPort: z.boolean().default(false) }).strict(),
} satisfies Record<RpcOp, z.ZodType>;

/** What an op takes, as the agent sees it (defaults applied) and as a caller may write it. */
export type RpcParams<O extends RpcOp> = z.output<(typeof paramsSchemas)[O]>;
export type RpcParamsInput<O extends RpcOp> = z.input<(typeof paramsSchemas)[O]>;

/** Each op's params schema, typed per op so that `rpcParamsSchemas[op]` parses to `RpcParams<op>`. */
export const rpcParamsSchemas: { [O in RpcOp]: z.ZodType<RpcParams<O>, RpcParamsInput<O>> } = paramsSchemas;

export const hostStatsSchema = z.object({
  cpus: z.number().int(),
  load1: z.number(),
  memoryTotalMb: z.number(),
  memoryFreeMb: z.number(),
  containersRunning: z.number().int(),
  sessions: z.number().int(),
  /** Free space under the sessions root (older agents: absent). */
  diskFreeMb: z.number().optional(),
  diskTotalMb: z.number().optional(),
});
export type HostStats = z.infer<typeof hostStatsSchema>;

const resultSchemas = {
  list: z.object({ sessions: z.array(sessionEntrySchema) }),
  get: sessionEntrySchema,
  create: sessionEntrySchema,
  edit: sessionEntrySchema,
  clone: sessionEntrySchema,
  restart: sessionEntrySchema,
  kill: sessionEntrySchema,
  background: z.object({ detached: z.number().int() }),
  /** `trash`: where it went (absent: deleted for good, as an agent with `trashHours` 0 does). */
  delete: z.object({ id: sessionIdSchema, trash: trashEntrySchema.optional() }),
  override: sessionEntrySchema,
  stats: hostStatsSchema,
  preview: z.object({ text: z.string().max(MAX_PREVIEW_BYTES), at: z.string() }),
  restore: sessionEntrySchema,
} satisfies Record<RpcOp, z.ZodType>;
export type RpcResult<O extends RpcOp> = z.infer<(typeof resultSchemas)[O]>;

/** Each op's result schema: the shell parses every reply with it, so `rpcResultSchemas[op]` gives `RpcResult<op>`. */
export const rpcResultSchemas: { [O in RpcOp]: z.ZodType<RpcResult<O>> } = resultSchemas;

/** The agent's side of every op: params already checked, result checked again by the shell. */
/** `opId` is the request's op id, if it carried one. */
export type RpcHandlers = { [O in RpcOp]: (params: RpcParams<O>, operator: string, opId: string | undefined) => Promise<RpcResult<O>> };

export const wireErrorSchema = z.object({ code: z.enum(ERROR_CODES), message: z.string() });
export type WireError = z.infer<typeof wireErrorSchema>;

export const rpcReplySchema = z.union([
  z.object({ id: requestIdSchema.nullable(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: requestIdSchema.nullable(), ok: z.literal(false), error: wireErrorSchema }),
]);
export type RpcReply = z.infer<typeof rpcReplySchema>;

/** "field: problem" for the first issue of a failed parse, so BAD_REQUEST names the field. */
export function describeIssue(error: z.ZodError, prefix?: string): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  if (issue.code === 'unrecognized_keys') {
    const where = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    return `${where ? `${where}: ` : ''}unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}
