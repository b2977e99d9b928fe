/** An operator as the shell's operations see them: who, with which role. */
import type { Role } from './config';

export interface Operator {
  name: string;
  role: Role;
  /**
   * The op id this command carries (the CLI's --op-id), so that a retry after an unknown outcome
   * gets the first attempt's; unset: each op gets a fresh one.
   */
  opId?: string;
}
