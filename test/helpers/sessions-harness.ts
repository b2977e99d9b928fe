/** In-process agent operations over the fake runtime: a temp root, a fake clock and port probe, an event log. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sessions } from '../../agent/sessions';
import { PortProbe } from '../../agent/ports/ports';
import { LockOptions, SessionLocks } from '../../agent/store/locks';
import { SessionStore } from '../../agent/store/session-store';
import { silentLogger } from '../../common/logging';
import { Protocol } from '../../common/names';
import { Limits, SessionEntry, SessionView } from '../../common/protocol';
import { FakeRuntime } from './fake-runtime';
import { until } from './wait';

/**
 * A clock that stands still at its start until the test advances it, so a grace period is
 * counted exactly. SessionLocks compares the clock with real lock-file mtimes, so with `follow`
 * it moves with real time (plus what the test advanced) instead: for tests that wait for a lock
 * to go stale. A stopped clock sees no lock taken after its start as stale, and a lock whose
 * mtime is set further back than staleMs as stale.
 */
export class FakeClock {
  private readonly start = Date.now();
  private offset = 0;

  constructor(private readonly follow = false) {}

  now(): number {
    return (this.follow ? Date.now() : this.start) + this.offset;
  }

  advance(ms: number): void {
    this.offset += ms;
  }
}

/** Answers from a set of ports (`tcp/1001`) the test marks busy on the host. */
export class FakePortProbe implements PortProbe {
  readonly busy = new Set<string>();

  async check(port: number, protocol: Protocol): Promise<string | null> {
    return this.busy.has(`${protocol}/${port}`) ? 'EADDRINUSE' : null;
  }
}

export type SessionsEvent = { type: 'session'; entry: SessionEntry } | { type: 'removed'; id: string };

export const TEST_IMAGE = 'berth-session:test';

export interface HarnessOptions {
  orphanGraceMs?: number;
  /** 0 (the default here): the reconciler runs only at start and when the test calls it. */
  reconcileIntervalMs?: number;
  lockStaleMs?: number;
  /** The clock moves with real time (see FakeClock); it stands still by default. */
  realTime?: boolean;
  maxSessions?: number | null;
  /** The agent's default and maximum limits (none by default). */
  limits?: Limits;
  maxLimits?: Limits;
  /** Start the agent with Docker down. */
  down?: boolean;
  /** How long a deleted session stays in the trash (0, the default here: deleted at once). */
  trashMs?: number;
  /** Another store over the same root (a test double of the store). */
  store?: (root: string) => SessionStore;
  /** Other locks with these options (a test double of the locks). */
  locks?: (opts: LockOptions) => SessionLocks;
}

export interface Harness {
  root: string;
  fake: FakeRuntime;
  clock: FakeClock;
  probe: FakePortProbe;
  locks: SessionLocks;
  sessions: Sessions;
  /** Everything Sessions emitted, in order. */
  events: SessionsEvent[];
  /** The states of the `session` events of one session, from index `from` of `events`. */
  statesOf(id: string, from?: number): string[];
  /** Waits (bounded) for a `session` event of `id` matching `ok`, from index `from`; returns it. */
  waitForEntry(id: string, ok: (e: SessionEntry) => boolean, from?: number, timeoutMs?: number): Promise<SessionEntry>;
  /** The session's container id as the fake has it (throws if none). */
  containerOf(id: string): string;
  dispose(): Promise<void>;
}

export async function startHarness(o: HarnessOptions = {}): Promise<Harness> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-sessions-'));
  try {
    return await harnessOn(root, o);
  } catch (err) {
    await fs.rm(root, { recursive: true, force: true });
    throw err;
  }
}

async function harnessOn(root: string, o: HarnessOptions): Promise<Harness> {
  const agent = 'fake-agent';
  const fake = new FakeRuntime({ agent, root, images: [TEST_IMAGE] });
  if (o.down) fake.setDown(true);
  const clock = new FakeClock(o.realTime ?? false);
  const probe = new FakePortProbe();
  const store = o.store ? o.store(root) : new SessionStore({ root });
  const lockOptions: LockOptions = { staleMs: o.lockStaleMs ?? 10_000, instance: 'test-agent', now: () => clock.now(), logger: silentLogger };
  const locks = o.locks ? o.locks(lockOptions) : new SessionLocks(lockOptions);
  const sessions = new Sessions(
    { store, locks, runtime: fake, probe, clock, logger: silentLogger },
    {
      agent,
      image: TEST_IMAGE,
      command: 'bash',
      publishAddress: '127.0.0.1',
      dnsServers: [],
      limits: o.limits ?? {},
      maxLimits: o.maxLimits,
      user: { uid: 1000, gid: 1000 },
      extraLabels: {},
      network: 'berth',
      readOnlyRoot: true,
      stopTimeoutSec: 1,
    },
    { maxSessions: o.maxSessions ?? null, orphanGraceMs: o.orphanGraceMs ?? 60_000, reconcileIntervalMs: o.reconcileIntervalMs ?? 0, trashMs: o.trashMs ?? 0 },
  );
  const events: SessionsEvent[] = [];
  sessions.on('session', (entry: SessionEntry) => events.push({ type: 'session', entry }));
  sessions.on('removed', (id: string) => events.push({ type: 'removed', id }));
  await sessions.start();
  const idOf = (e: SessionEntry): string => (e.kind === 'session' ? e.meta.id : e.id);
  const entriesOf = (id: string, from: number): SessionEntry[] =>
    events.slice(from).flatMap((e) => (e.type === 'session' && idOf(e.entry) === id ? [e.entry] : []));
  return {
    root,
    fake,
    clock,
    probe,
    locks,
    sessions,
    events,
    statesOf: (id, from = 0) => entriesOf(id, from).map((e) => e.state),
    waitForEntry: async (id, ok, from = 0, timeoutMs = 3000) => {
      const found = await until(`session event of ${id.slice(0, 8)}`, async () => entriesOf(id, from).find(ok), (e) => e !== undefined, timeoutMs, 5);
      return found as SessionEntry;
    },
    containerOf: (id) => {
      const [c] = fake.containersOf(id);
      if (!c) throw new Error(`no container for session ${id}`);
      return c.id;
    },
    dispose: async () => {
      await sessions.stop();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

/** The entry as a (non-broken) session view; throws for a broken one. */
export function asView(e: SessionEntry): SessionView {
  if (e.kind !== 'session') throw new Error(`session ${e.id} is broken: ${e.reason}`);
  return e;
}

/** Collapses repeats: ['-', 'R', 'R', '-'] → ['-', 'R', '-']. */
export function changes(states: string[]): string[] {
  return states.filter((s, i) => i === 0 || s !== states[i - 1]);
}
