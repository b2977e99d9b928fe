/** Pure: what each operator role may do. */
import { BerthError } from '../common/errors';
import { Role } from './config';

export type Action =
  | 'list'
  | 'attach'
  | 'attach-write'
  | 'create'
  | 'edit'
  | 'clone'
  | 'move'
  | 'restart'
  | 'kill'
  | 'background'
  | 'delete'
  | 'restore'
  | 'override'
  | 'manage-agents'
  | 'manage-operators'
  | 'audit';

const VIEWER: Action[] = ['list', 'attach'];
const OPERATOR: Action[] = [...VIEWER, 'attach-write', 'create', 'edit', 'clone', 'move', 'restart', 'kill', 'background', 'delete', 'restore'];
const ADMIN: Action[] = [...OPERATOR, 'override', 'manage-agents', 'manage-operators', 'audit'];
const ALLOWED: Record<Role, ReadonlySet<Action>> = {
  viewer: new Set(VIEWER),
  operator: new Set(OPERATOR),
  admin: new Set(ADMIN),
};

export function may(role: Role, action: Action): boolean {
  return ALLOWED[role].has(action);
}

/** The FORBIDDEN refusal saying which role may not do what. */
export function forbidden(operator: { name: string; role: Role }, action: Action): BerthError {
  const what = action === 'attach-write' ? 'attach read-write' : action;
  const article = operator.role === 'viewer' ? 'a' : 'an';
  return new BerthError('FORBIDDEN', `${operator.name} is ${article} ${operator.role} and may not ${what}`);
}

/** Throws FORBIDDEN (see `forbidden`) unless the operator's role may do `action`. */
export function assertMay(operator: { name: string; role: Role }, action: Action): void {
  if (!may(operator.role, action)) throw forbidden(operator, action);
}
