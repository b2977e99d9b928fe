/** Where a command's output goes: the SSH channel's stdout and stderr, and its client. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** For a command that runs until the client leaves (watch): when it has, and what waits for it. */
  client?: { closed: Promise<void>; backlog(): number };
}
