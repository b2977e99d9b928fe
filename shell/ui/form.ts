/**
 * Modal dialogs of the menu (dialog.ts says what they are), drawn in one blessed box each and
 * driven by the menu's key handler: a form whose fields are checked as you type, a picker, a yes/no
 * question, a text page. Every text shown goes through esc or escBlock: inert on a terminal and
 * never read as a tag.
 */
import blessed from 'blessed';
import { inertBlock, inertCell } from '../../common/terminal-text';
import { Dialog, Dialogs, Field, Key } from './dialog';

/** The smallest screen a dialog is drawn on (it still takes keys on a smaller one). */
const MIN_BOX = { cols: 20, rows: 3 };

/** A box in the middle of the screen, `width` wide and `height()` high at most (less on a smaller screen). */
function center(screen: blessed.Widgets.Screen, width: number, height: () => number, label: string): blessed.Widgets.BoxElement {
  const box = blessed.box({
    parent: screen,
    top: 'center',
    left: 'center',
    width: 1,
    height: 1,
    border: { type: 'line' },
    label: ` ${esc(label)} `,
    tags: true,
    style: { border: { fg: 'cyan' } },
  });
  // Fitted at every draw to the size the terminal has then, and not drawn at all on one too small
  // for it: blessed throws drawing a combining or zero-width character in a box that reaches past
  // the screen's edge, and never ends wrapping a wide character in a box too narrow for it.
  const fit = (): void => {
    const cols = screen.width as number;
    const rows = screen.height as number;
    if (cols < MIN_BOX.cols || rows < MIN_BOX.rows) {
      if (!box.hidden) box.hide();
      return;
    }
    if (box.hidden) box.show();
    box.width = Math.min(width, Math.max(MIN_BOX.cols, cols - 2));
    box.height = Math.min(height(), rows);
  };
  fit();
  screen.on('prerender', fit);
  box.on('destroy', () => screen.removeListener('prerender', fit));
  return box;
}

/** Closes a dialog's box and hands the keys back to the menu. */
function closer(screen: blessed.Widgets.Screen, box: blessed.Widgets.BoxElement, onClose: () => void): () => void {
  return () => {
    box.destroy();
    onClose();
    screen.render();
  };
}

/**
 * One line of text made safe to show in a box with `tags: true`: inert on a terminal (controls,
 * newlines among them, shown as escapes) and its braces escaped, so it is never read as a tag.
 */
export function esc(s: string): string {
  return blessed.escape(inertCell(s));
}

/** As esc, keeping line breaks: for a page of text. */
export function escBlock(s: string): string {
  return blessed.escape(inertBlock(s));
}

/** Where the cursor is in a form, and what its bottom line says. */
interface FormState {
  at: number;
  error: string;
  busy: boolean;
}

/** Each field with its problem under it, then the form's status and its keys. */
function formLines(fields: Field[], st: FormState): string[] {
  const lines: string[] = [];
  fields.forEach((f, i) => {
    const problem = f.check(f.value);
    const cursor = i === st.at ? '{inverse} {/inverse}' : '';
    const value = f.choices ? `${esc(f.value)}  {gray-fg}(space to change){/gray-fg}` : `${esc(f.value)}${cursor}`;
    lines.push(`${i === st.at ? '{bold}>{/bold}' : ' '} ${esc(f.label).padEnd(10)} ${value}`);
    if (problem) lines.push(`             {red-fg}${esc(problem)}{/red-fg}`);
  });
  const invalid = fields.some((f) => f.check(f.value) !== null);
  lines.push(st.busy ? '{yellow-fg}working…{/yellow-fg}' : st.error ? `{red-fg}${esc(st.error)}{/red-fg}` : '');
  lines.push(`{gray-fg}Tab/↑↓ move · Enter ${invalid ? 'submit (fix the fields first)' : 'submit'} · Esc cancel{/gray-fg}`);
  return lines;
}

/**
 * The most characters a field takes: one more than its longest valid value (a repository URL), so
 * that its check still says what is too long. Past it, typing and pastes are dropped: every key
 * redraws the form, and an unbounded value would make each redraw longer than the last.
 */
export const MAX_FIELD_CHARS = 2049;

/** Moves between fields or edits the current one. */
function editForm(fields: Field[], st: FormState, ch: string | undefined, key: Key): void {
  const f = fields[st.at];
  if (!f) return;
  switch (key.name) {
    case 'tab':
    case 'down':
      st.at = (st.at + 1) % fields.length;
      return;
    case 'up':
      st.at = (st.at + fields.length - 1) % fields.length;
      return;
    case 'backspace':
      if (!f.choices) f.value = f.value.slice(0, -1);
      return;
    case 'enter':
      return; // with a field to fix: nothing to submit
    default:
      if (f.choices && ch === ' ') {
        f.value = f.choices[(f.choices.indexOf(f.value) + 1) % f.choices.length] ?? f.value;
      } else if (!f.choices && ch && ch.length === 1 && ch >= ' ' && !key.ctrl && f.value.length < MAX_FIELD_CHARS) {
        f.value += ch;
      }
  }
}

/**
 * A form (see Dialogs.form): `submit` runs with the values; if it throws, its message is shown in
 * the form verbatim and the form stays open.
 */
export function openForm(
  screen: blessed.Widgets.Screen,
  title: string,
  fields: Field[],
  submit: (values: string[]) => Promise<void>,
  onClose: () => void,
): Dialog {
  // One row per field, and one more under each field that has a problem.
  let rows = fields.length + 4;
  const box = center(screen, 70, () => rows, title);
  const st: FormState = { at: 0, error: '', busy: false };
  let gone = false;
  box.on('destroy', () => (gone = true));
  const draw = (): void => {
    if (gone) return;
    const lines = formLines(fields, st);
    rows = lines.length + 2;
    box.setContent(lines.join('\n'));
    screen.render();
  };
  // A paste is one key per character: the form is drawn once for all the keys that came together.
  let queued = false;
  const drawSoon = (): void => {
    if (queued) return;
    queued = true;
    setImmediate(() => {
      queued = false;
      draw();
    });
  };
  const close = closer(screen, box, onClose);
  const send = (): void => {
    st.busy = true;
    st.error = '';
    draw();
    submit(fields.map((x) => x.value)).then(
      () => close(),
      (err: unknown) => {
        st.busy = false;
        st.error = err instanceof Error ? err.message : String(err);
        draw();
      },
    );
  };
  draw();
  return {
    key(ch, key) {
      if (st.busy || fields.length === 0) return;
      if (key.name === 'escape') return close();
      if (key.name === 'return') return; // blessed sends both for one Enter
      if (key.name === 'enter' && fields.every((x) => x.check(x.value) === null)) return send();
      editForm(fields, st, ch, key);
      st.error = '';
      drawSoon();
    },
  };
}

/** Choose one of `items` (↑↓, Enter); Escape cancels. */
export function openPicker(
  screen: blessed.Widgets.Screen,
  title: string,
  items: string[],
  choose: (index: number) => void,
  onClose: () => void,
): Dialog {
  const box = center(screen, 60, () => Math.min(items.length, 12) + 4, title);
  let at = 0;
  const draw = (): void => {
    box.setContent([...items.map((it, i) => (i === at ? `{inverse}> ${esc(it)}{/inverse}` : `  ${esc(it)}`)), '{gray-fg}↑↓ choose · Enter ok · Esc cancel{/gray-fg}'].join('\n'));
    screen.render();
  };
  const close = closer(screen, box, onClose);
  draw();
  return {
    key(_ch, key) {
      if (key.name === 'escape') return close();
      if (key.name === 'up') at = Math.max(0, at - 1);
      if (key.name === 'down') at = Math.min(items.length - 1, at + 1);
      if (key.name === 'enter') {
        close();
        choose(at);
        return;
      }
      draw();
    },
  };
}

/** A yes/no question: Y runs `yes`, anything else cancels. */
export function openConfirm(screen: blessed.Widgets.Screen, question: string, yes: () => void, onClose: () => void): Dialog {
  const shown = inertCell(question);
  const box = center(screen, Math.max(40, shown.length + 6), () => 5, 'confirm');
  box.setContent(`${esc(shown)}\n{bold}Y{/bold}es / {bold}N{/bold}o`);
  screen.render();
  const close = closer(screen, box, onClose);
  return {
    key(ch, key) {
      if (key.name === 'return') return;
      close();
      if (ch === 'y' || ch === 'Y') yes();
    },
  };
}

/** A page of text; any key closes it. */
export function openPage(screen: blessed.Widgets.Screen, title: string, text: string, onClose: () => void): Dialog {
  const shown = inertBlock(text);
  const lines = shown.split('\n');
  const box = center(screen, Math.max(...lines.map((l) => l.length)) + 4, () => lines.length + 3, title);
  box.setContent(`${escBlock(shown)}\n{gray-fg}any key closes{/gray-fg}`);
  screen.render();
  const close = closer(screen, box, onClose);
  return {
    key(_ch, key) {
      if (key.name !== 'return') close();
    },
  };
}

/**
 * The four dialogs on `screen`, for the menu's key handlers: each one opened is handed to `opened`
 * (the menu sends it every key), and `closed` runs when it closes.
 */
export function screenDialogs(screen: blessed.Widgets.Screen, opened: (d: Dialog) => void, closed: () => void): Dialogs {
  return {
    form: (title, fields, submit) => opened(openForm(screen, title, fields, submit, closed)),
    picker: (title, items, choose) => opened(openPicker(screen, title, items, choose, closed)),
    confirm: (question, yes) => opened(openConfirm(screen, question, yes, closed)),
    page: (title, text) => opened(openPage(screen, title, text, closed)),
  };
}
