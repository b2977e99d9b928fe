/**
 * Commands the agent runs inside session containers (attaches, the HUP that ends one, tmux
 * checks), and the pauses of a clone, which must never meet a command that is starting (see
 * exec-gate.ts). Scripts here are fixed text: operator input never reaches a shell.
 */
import { randomUUID } from 'node:crypto';
import { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { BerthError, messageOf } from '../../common/errors';
import { Logger } from '../../common/logging';
import { MAX_PREVIEW_BYTES, MAX_PREVIEW_LINES, clampTermSize } from '../../common/protocol';
import { dockerError, isGoneOrDone } from './errors';
import { ExecGate } from './exec-gate';
import { AttachHandle, AttachOptions } from './runtime';

const TMUX_SESSION = 'claude';
/** Shell text that waits (at most 10 s) for the tmux session; it holds no operator input. */
const WAIT_FOR_TMUX =
  `i=0; until tmux has-session -t ${TMUX_SESSION} 2>/dev/null; do i=$((i+1)); ` +
  `if [ "$i" -gt 200 ]; then echo "berth: tmux session not ready" >&2; exit 1; fi; sleep 0.05; done`;

/**
 * tmux client flags of a read-only attach: no input reaches the session, and the viewer's terminal
 * size never sizes the window while anyone else is attached (tmux lets an ignore-size client size
 * it only when it is alone).
 */
const READ_ONLY_FLAGS = 'read-only,ignore-size';

/** How long an attach waits for a clone's pause to end before it is refused. */
const ATTACH_GATE_WAIT_MS = 30_000;
/** Where each attach's shell leaves its pid (the tmux client's, after exec) for the HUP that ends it. */
const ATTACH_PID_DIR = '/tmp';
/** How long the agent's own short commands (the HUP of a detach, …) wait for a pause to end. */
const RUN_GATE_WAIT_MS = 10 * 60_000;
/** How long a pause waits for execs that are starting. */
const PAUSE_GATE_WAIT_MS = 15_000;
/** How long an exec may take to be under way (its process running or done). */
const EXEC_START_WAIT_MS = 10_000;

type User = { uid: number; gid: number };

export class ContainerExecs {
  private readonly gate = new ExecGate();

  constructor(
    private readonly docker: Docker,
    private readonly log: Logger,
  ) {}

  async pause(containerId: string): Promise<void> {
    await this.gate.beginPause(containerId, PAUSE_GATE_WAIT_MS);
    try {
      await this.docker.getContainer(containerId).pause();
    } catch (err) {
      if (!/already paused/i.test(messageOf(err))) {
        this.gate.endPause(containerId);
        throw dockerError('pause container', err);
      }
    }
  }

  async unpause(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).unpause();
    } catch (err) {
      if (!/not paused/i.test(messageOf(err)) && !isGoneOrDone(err)) throw dockerError('unpause container', err);
    }
    this.gate.endPause(containerId);
  }

  /**
   * Creates and starts an exec through the gate: it waits while this agent has the container
   * paused, and counts as starting until Docker reports its process (a pause waits for that). The
   * stream is handed back at once, so no output is missed meanwhile.
   */
  private async startExec(containerId: string, create: Docker.ExecCreateOptions, gateWaitMs: number): Promise<{ exec: Docker.Exec; stream: Duplex }> {
    const started = await this.gate.beginExec(containerId, gateWaitMs);
    let exec: Docker.Exec;
    let stream: Duplex;
    try {
      exec = await this.docker.getContainer(containerId).exec(create);
      stream = (await exec.start({ hijack: true, stdin: create.AttachStdin === true, Tty: true })) as Duplex;
    } catch (err) {
      started();
      throw err;
    }
    this.underWay(exec)
      .catch((err: unknown) => this.log.warn('exec not seen under way', { container: containerId, err: messageOf(err) }))
      .finally(started);
    return { exec, stream };
  }

  /**
   * Waits (bounded) until Docker reports the exec's process id (or its exit). Not `Running`:
   * Docker sets that before it asks containerd to start the process, while runc is still at it.
   */
  private async underWay(exec: Docker.Exec): Promise<void> {
    const end = Date.now() + EXEC_START_WAIT_MS;
    for (;;) {
      const info = await exec.inspect();
      if (info.Pid > 0 || info.ExitCode !== null) return;
      if (Date.now() > end) throw new BerthError('TIMEOUT', `exec in container: not under way after ${EXEC_START_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async attach(containerId: string, opts: AttachOptions): Promise<AttachHandle> {
    const attachId = randomUUID();
    const pidFile = `${ATTACH_PID_DIR}/.berth-attach-${attachId}`;
    const script = `${WAIT_FOR_TMUX}; echo $$ > ${pidFile}; exec tmux attach-session -t ${TMUX_SESSION}${opts.readOnly ? ` -f ${READ_ONLY_FLAGS}` : ''}`;
    let exec: Docker.Exec;
    let stream: Duplex;
    try {
      ({ exec, stream } = await this.startExec(containerId, execOptions(script, opts.user, true), ATTACH_GATE_WAIT_MS));
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw dockerError('attach', err);
    }
    const resize = async (cols: number, rows: number): Promise<void> => {
      const size = clampTermSize(cols, rows);
      try {
        await exec.resize({ h: size.rows, w: size.cols });
      } catch (err) {
        // Most often the exec has just ended; the attach goes on (or ends) regardless.
        this.log.debug('resize failed', { container: containerId, err: messageOf(err) });
      }
    };
    await resize(opts.cols, opts.rows);
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      // A dropped hijack socket does not end the exec: HUP exactly this attach's tmux client.
      const hup = `p=$(cat ${pidFile} 2>/dev/null) && kill -HUP "$p" 2>/dev/null; rm -f ${pidFile}`;
      await this.run(containerId, opts.user, hup, 5000).catch((err: unknown) =>
        this.log.debug('hup attach failed', { container: containerId, err: messageOf(err) }),
      );
      stream.destroy();
    };
    return { stream, resize, close };
  }

  /**
   * Ends every attach client in the container that a berth agent opened (each left its pid file):
   * after an agent crash nobody holds them, and a read-write `tmux attach` would stay for ever.
   * Call it only while this agent holds no attach to the container. Returns how many were ended.
   */
  async endAttaches(containerId: string, user: User): Promise<number> {
    // The pid files are in the session's /tmp, so the session could write them: the HUP runs as
    // the session's user, inside its container, and reaches nothing but the session's processes.
    const script =
      `n=0; for f in ${ATTACH_PID_DIR}/.berth-attach-*; do [ -f "$f" ] || continue; p=$(cat "$f" 2>/dev/null); ` +
      `case "$p" in ''|*[!0-9]*) ;; *) kill -HUP "$p" 2>/dev/null && n=$((n+1)) ;; esac; rm -f "$f"; done; echo "$n"`;
    const r = await this.run(containerId, user, script, 5000);
    const n = Number(r.output.trim().split('\n').pop());
    return Number.isInteger(n) ? n : 0;
  }

  /**
   * The last `lines` lines of the pane (wrapped lines joined), read by tmux itself as the
   * session's user: only what is on the screen and just above it, never the whole history.
   */
  async capturePane(containerId: string, user: User, lines: number): Promise<string> {
    if (!Number.isInteger(lines) || lines < 1 || lines > MAX_PREVIEW_LINES) throw new BerthError('BAD_REQUEST', `lines: must be 1-${MAX_PREVIEW_LINES}`);
    const r = await this.run(containerId, user, `tmux capture-pane -p -J -t claude -S -${lines}`, 5000, MAX_PREVIEW_BYTES);
    if (r.exitCode !== 0) throw new BerthError('CONFLICT', 'the session has no pane to show (its tmux is not running)');
    const all = r.output.replace(/\n+$/, '').split('\n');
    return all.slice(-lines).join('\n');
  }

  /** Runs a fixed script (never operator input) in the container and collects its output. */
  private async run(
    containerId: string,
    user: User,
    script: string,
    timeoutMs: number,
    /** Output past this many bytes is dropped. */
    maxBytes = 1024 * 1024,
  ): Promise<{ exitCode: number; output: string }> {
    let exec: Docker.Exec;
    let stream: Duplex;
    try {
      ({ exec, stream } = await this.startExec(containerId, execOptions(script, user, false), RUN_GATE_WAIT_MS));
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw dockerError('exec in container', err);
    }
    const chunks: Buffer[] = [];
    let kept = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.destroy();
        reject(new BerthError('TIMEOUT', `exec in container: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      stream.on('data', (c: Buffer) => {
        if (kept >= maxBytes) return;
        const part = c.subarray(0, maxBytes - kept);
        kept += part.length;
        chunks.push(part);
      });
      stream.on('error', () => undefined);
      stream.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
      stream.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const info = await exec.inspect().catch(() => null);
    return { exitCode: info?.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8').replace(/\r/g, '') };
  }
}

/** A terminal exec of a fixed script as the containers' user; `interactive` also takes input (an attach). */
function execOptions(script: string, user: User, interactive: boolean): Docker.ExecCreateOptions {
  return {
    Cmd: ['sh', '-c', script],
    User: `${user.uid}:${user.gid}`,
    Env: [...(interactive ? ['TERM=xterm-256color'] : []), 'LANG=C.UTF-8', 'HOME=/home/claude'],
    Tty: true,
    AttachStdin: interactive,
    AttachStdout: true,
    AttachStderr: true,
  };
}
