/**
 * The operator's menu (blessed). It draws from the cluster view only, so a slow or offline agent
 * never freezes it; every op runs in the background with a spinner and shows the agent's refusal
 * verbatim. It knows nothing of SSH: it gets two streams, a size and the service (STYLE 8).
 *
 * This file only wires: the state is menu-state.ts, the lines menu-view.ts, the keys menu-keys.ts,
 * the blessed screen menu-screen.ts and the dialogs form.ts.
 */
import { Readable, Writable } from 'node:stream';
import { toBerthError } from '../../common/errors';
import { Logger } from '../../common/logging';
import { inertCell } from '../../common/terminal-text';
import { ClusterSession } from '../cluster/view';
import { Operator, ShellService } from '../service';
import { Dialog, Dialogs, Key } from './dialog';
import { MenuContext, RowControls, UndoSlot, nameOf } from './menu-actions';
import { dispatch, hintText } from './menu-keys';
import { MenuScreen, openMenuScreen } from './menu-screen';
import * as S from './menu-state';
import { jobLine } from '../jobs-text';
import { mayShow, previewLines, previewRows } from './menu-preview';
import { statusLine, tableLines, titleLine } from './menu-view';
import { PreviewFeed } from './preview-feed';
import type { Dismissed } from './menu-attention';

export interface MenuOptions {
  input: Readable;
  output: Writable;
  cols: number;
  rows: number;
  service: ShellService;
  operator: Operator;
  logger: Logger;
  /**
   * Rings the terminal's bell when a session shown starts waiting for input or permission (also on
   * coming back from an attach, for those that started meanwhile); default true.
   */
  bell?: boolean;
  /** Hands the terminal to an attach; resolves when it ends (detach, exit, error). */
  attach(sessionId: string, readOnly: boolean): Promise<void>;
}

export interface Menu {
  /** Redraws: now, or once the keys being read are (normally redraws follow cluster changes by themselves). */
  render(): void;
  /** Tells the menu the terminal's new size (a burst of them is applied at most every 50 ms, the latest last). */
  resize(cols: number, rows: number): void;
  /** Resolves when the operator quits (Q). */
  done: Promise<void>;
  /** Tears the screen down. Idempotent. */
  destroy(): void;
  /** What the operator dismissed in this menu (an attach from it leaves those out of its notices). */
  dismissed(): ReadonlyMap<string, Dismissed>;
}

/** Cluster changes within this long are drawn once. */
const REDRAW_COALESCE_MS = 15;
/** Window changes are applied at most this often (the latest size wins): a storm of them costs a few redraws. */
const RESIZE_EVERY_MS = 50;
const SPINNER_MS = 120;
/** Failed keys and redraws of one menu logged in full; later ones only shown. */
const MAX_LOGGED_FAILURES = 20;

export function startMenu(o: MenuOptions): Menu {
  const screen = openMenuScreen(o.input, o.output, o.cols, o.rows, [{ text: hintText(), tone: 'dim' }]);
  return new MenuController(o, screen);
}

/** The menu's life: one MenuState, the open dialog, and whether an attach has the terminal. */
class MenuController implements Menu, MenuContext {
  readonly operator: Operator;
  readonly service: ShellService;
  readonly dialogs: Dialogs;
  readonly done: Promise<void>;
  readonly undo: UndoSlot = { last: null };
  private state = S.INITIAL_STATE;
  private dialog: Dialog | null = null;
  private attached = false;
  private destroyed = false;
  private redrawQueued = false;
  /** A size asked for while the last one is held (see RESIZE_EVERY_MS), and the size the menu has. */
  private pendingSize: { cols: number; rows: number } | null = null;
  private size: { cols: number; rows: number };
  private resizeHeld = false;
  private ended: () => void = () => undefined;
  private readonly spinner: NodeJS.Timeout;
  private readonly preview: PreviewFeed;
  private readonly log: Logger;
  private failures = 0;

  constructor(
    private readonly o: MenuOptions,
    private readonly screen: MenuScreen,
  ) {
    this.operator = o.operator;
    this.log = o.logger.child({ component: 'menu' });
    this.service = o.service;
    this.size = { cols: o.cols, rows: o.rows };
    this.done = new Promise<void>((resolve) => (this.ended = resolve));
    this.dialogs = screen.dialogs(
      (d) => (this.dialog = d),
      () => {
        this.dialog = null;
        this.render();
      },
    );
    this.preview = new PreviewFeed({
      fetch: (id, lines) => this.service.preview(this.operator, id, lines),
      changed: () => this.render(),
    });
    this.service.view.on('change', this.redraw);
    this.service.view.on('jobs', this.redraw);
    this.spinner = setInterval(() => {
      if (this.state.busy) this.set(S.tick(this.state));
    }, SPINNER_MS);
    this.spinner.unref();
    screen.onKey(this.onKey);
    this.render();
  }

  // ---- Menu ----

  render = (): void => this.screen.batch(this.renderNow);

  /** Draws the state as it is now. */
  private readonly renderNow = (): void => {
    if (this.destroyed || this.attached) return;
    try {
      this.paintState();
    } catch (err) {
      this.failed('redraw', err);
    }
  };

  private paintState(): void {
    const all = this.service.view.sessions();
    const shown = S.tableRows(all, this.state);
    const rows = this.screen.rows();
    const height = S.tableHeight(rows, this.state.preview);
    const seen = S.observe(this.state, all, shown);
    this.state = S.layout(S.follow(seen.state, shown), shown.length, height);
    if (seen.ring && this.o.bell !== false) this.screen.bell();
    const below = previewRows(rows, this.state.preview);
    const selected = S.selectedSession(this.state, shown);
    this.preview.show(below > 0 && selected ? { id: selected.id, lines: below - 1, live: mayShow(selected), version: JSON.stringify([selected.state, selected.entry]) } : null);
    this.screen.paint({
      title: titleLine(this.operator, this.service.view.agentList(), shown.length, this.state),
      table: tableLines(shown, this.state, height),
      preview: previewLines(selected, this.preview.current(), below),
      previewRows: below,
      status: statusLine(this.state, this.jobLines()),
    });
  }

  /** The long ops running in the cluster, for the status line. */
  private jobLines(): string[] {
    const view = this.service.view;
    const jobs = view.jobs();
    if (jobs.length === 0) return [];
    const names = new Map(view.sessions().map((s) => [s.id, s.entry.kind === 'session' ? s.entry.meta.name : s.id]));
    const now = new Date();
    return jobs.map((j) => jobLine(j, names.get(j.job.session) ?? j.job.session.slice(0, 8), now));
  }

  dismissed(): ReadonlyMap<string, Dismissed> {
    return this.state.dismissed;
  }

  resize(cols: number, rows: number): void {
    this.pendingSize = { cols, rows };
    // The size it has already (a redraw of everything): at once.
    const same = cols === this.size.cols && rows === this.size.rows;
    if (!this.resizeHeld || same) this.applySize();
  }

  /** Takes the latest size asked for and, when it is a new one, holds the next ones for a moment. */
  private applySize(): void {
    const size = this.pendingSize;
    if (!size || this.destroyed) return;
    this.pendingSize = null;
    const same = size.cols === this.size.cols && size.rows === this.size.rows;
    this.size = size;
    if (!same && !this.resizeHeld) {
      this.resizeHeld = true;
      setTimeout(() => {
        this.resizeHeld = false;
        this.applySize();
      }, RESIZE_EVERY_MS).unref();
    }
    this.screen.setSize(size.cols, size.rows);
    if (this.attached) return; // the menu takes the size when it comes back
    this.screen.refit();
    this.render();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    clearInterval(this.spinner);
    this.preview.stop();
    this.service.view.off('change', this.redraw);
    this.service.view.off('jobs', this.redraw);
    this.screen.destroy();
  }

  // ---- MenuContext (for the key handlers) ----

  pageRows(): number {
    return S.pageStep(this.screen.rows(), this.state.preview);
  }

  move(delta: number): void {
    this.set(S.moveSelection(this.state, delta, this.shown().length));
  }

  startFilter(): void {
    this.set(S.startFiltering(this.state));
  }

  say(text: string, error = false): void {
    this.set(S.say(this.state, text, error));
  }

  run(label: string, fn: () => Promise<string>): void {
    const refused = S.refuseWhileBusy(this.state);
    if (refused) return this.set(refused);
    this.set(S.startBusy(this.state, label));
    fn().then(
      (ok) => this.set(S.finishBusy(this.state, ok, false)),
      (err: unknown) => {
        const e = toBerthError(err);
        this.set(S.finishBusy(this.state, `${e.code}: ${e.message}`, true));
      },
    );
  }

  attach(s: ClusterSession): void {
    const refused = S.refuseWhileBusy(this.state);
    if (refused) return this.set(refused);
    this.attached = true;
    this.preview.show(null);
    this.screen.leave();
    this.o
      .attach(s.id, this.operator.role === 'viewer')
      .catch((err: unknown) => {
        const e = toBerthError(err);
        this.state = S.say(this.state, `${e.code}: ${e.message}`, true); // drawn on the way back
      })
      .finally(() => {
        this.attached = false;
        if (this.destroyed) return;
        this.screen.enter();
        this.screen.refit();
        this.render();
      });
  }

  quit(): void {
    this.ended();
  }

  readonly rows: RowControls = {
    nextNeedingYou: () => this.set(S.jumpToNeedingYou(this.state, this.shown())),
    dismiss: (s) => this.set(S.dismiss(this.state, s, nameOf(s))),
    cycleSort: () => this.set(S.cycleSort(this.state)),
    cycleAgent: () => this.set(S.cycleAgent(this.state, this.service.view.agentList().map((a) => a.id))),
    togglePreview: () => this.set(S.flipPreview(this.state)),
    resizePreview: () => this.set(S.resizePreview(this.state)),
  };

  // ---- internals ----

  /** The rows as the table shows them now (they may have moved since the last draw). */
  private shown(): readonly ClusterSession[] {
    return S.tableRows(this.service.view.sessions(), this.state);
  }

  private set(next: S.MenuState): void {
    this.state = next;
    this.render();
  }

  /** Coalesces bursts of cluster changes into one redraw. */
  private readonly redraw = (): void => {
    if (this.redrawQueued) return;
    this.redrawQueued = true;
    setTimeout(() => {
      this.redrawQueued = false;
      this.render();
    }, REDRAW_COALESCE_MS).unref();
  };

  private readonly onKey = (ch: string | undefined, key: Key): void => {
    if (this.attached || this.destroyed) return;
    try {
      this.handleKey(ch, key);
    } catch (err) {
      this.failed('key', err);
    }
  };

  /**
   * A bug met on a key or a redraw: logged with its stack (the first MAX_LOGGED_FAILURES of this
   * menu, so a key held down cannot flood the log), told on the status line, and the menu goes on
   * with its last good state rather than stopping to answer.
   */
  private failed(during: 'key' | 'redraw', err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (++this.failures <= MAX_LOGGED_FAILURES) this.log.error(`menu ${during} failed`, { operator: this.operator.name, err: e.message, stack: e.stack });
    this.state = S.say(this.state, `INTERNAL: that ${during} failed (${inertCell(e.message, 120)}); it is logged`, true);
    if (during === 'key') this.render();
  }

  private handleKey(ch: string | undefined, key: Key): void {
    if (this.dialog) return this.dialog.key(ch, key);
    if (this.state.filtering) return this.set(S.filterKey(this.state, ch, key));
    // The message goes with any key, shown gone at the next draw (keys that change nothing don't draw).
    // Rows moved by a push not drawn yet: the key acts on the session selected, wherever it went.
    const shown = this.shown();
    this.state = S.follow(S.clearMessage(this.state), shown);
    dispatch(this, ch, key, S.selectedSession(this.state, shown));
  }
}
