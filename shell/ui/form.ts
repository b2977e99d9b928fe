/**
 * Modal dialogs of the menu, drawn in one blessed box and driven by the menu's key handler: a form
 * whose fields are checked as you type, a picker, a yes/no question, a text page.
 */
import blessed from 'blessed';

export interface Field {
  label: string;
  value: string;
  /** The problem with a value, or null; called on every keystroke. */
  check(value: string): string | null;
  /** Choices cycled with space (and typed values are refused); for tcp/udp. */
  choices?: string[];
}

export type Key = { name?: string; full?: string; ctrl?: boolean };

/** A dialog: takes keys until it resolves. */
export interface Dialog {
  /** Handles one key; returns false when the key was not for it. */
  key(ch: string | undefined, key: Key): void;
}

function center(screen: blessed.Widgets.Screen, width: number, height: number, label: string): blessed.Widgets.BoxElement {
  return blessed.box({
    parent: screen,
    top: 'center',
    left: 'center',
    width: Math.min(width, Math.max(20, (screen.width as number) - 2)),
    height,
    border: { type: 'line' },
    label: ` ${label} `,
    tags: true,
    style: { border: { fg: 'cyan' } },
  });
}

/** Closes a dialog's box and hands the keys back to the menu. */
function closer(screen: blessed.Widgets.Screen, box: blessed.Widgets.BoxElement, onClose: () => void): () => void {
  return () => {
    box.destroy();
    onClose();
    screen.render();
  };
}

export function esc(s: string): string {
  return blessed.escape(s);
}

/**
 * A form. `submit` runs with the values; if it throws, its message is shown in the form verbatim
 * and the form stays open. Resolves with true once submitted, false when cancelled (Escape).
 */
export function openForm(
  screen: blessed.Widgets.Screen,
  title: string,
  fields: Field[],
  submit: (values: string[]) => Promise<void>,
  onClose: () => void,
): Dialog {
  const box = center(screen, 70, fields.length * 2 + 6, title);
  let at = 0;
  let error = '';
  let busy = false;
  const draw = (): void => {
    const lines: string[] = [];
    fields.forEach((f, i) => {
      const problem = f.check(f.value);
      const cursor = i === at ? '{inverse} {/inverse}' : '';
      const value = f.choices ? `${esc(f.value)}  {gray-fg}(space to change){/gray-fg}` : `${esc(f.value)}${cursor}`;
      lines.push(`${i === at ? '{bold}>{/bold}' : ' '} ${esc(f.label).padEnd(10)} ${value}`);
      lines.push(problem ? `             {red-fg}${esc(problem)}{/red-fg}` : '');
    });
    const invalid = fields.some((f) => f.check(f.value) !== null);
    lines.push(busy ? '{yellow-fg}working…{/yellow-fg}' : error ? `{red-fg}${esc(error)}{/red-fg}` : '');
    lines.push(`{gray-fg}Tab/↑↓ move · Enter ${invalid ? 'submit (fix the fields first)' : 'submit'} · Esc cancel{/gray-fg}`);
    box.setContent(lines.join('\n'));
    screen.render();
  };
  const close = closer(screen, box, onClose);
  draw();
  return {
    key(ch, key) {
      if (busy) return;
      const f = fields[at];
      if (!f) return;
      switch (key.name) {
        case 'escape':
          close();
          return;
        case 'tab':
        case 'down':
          at = (at + 1) % fields.length;
          break;
        case 'up':
          at = (at + fields.length - 1) % fields.length;
          break;
        case 'backspace':
          if (!f.choices) f.value = f.value.slice(0, -1);
          break;
        case 'enter':
        case 'return': {
          if (key.name === 'return') return; // blessed sends both for one Enter
          if (fields.some((x) => x.check(x.value) !== null)) break;
          busy = true;
          error = '';
          draw();
          submit(fields.map((x) => x.value)).then(
            () => close(),
            (err: unknown) => {
              busy = false;
              error = err instanceof Error ? err.message : String(err);
              draw();
            },
          );
          return;
        }
        default:
          if (f.choices && ch === ' ') {
            f.value = f.choices[(f.choices.indexOf(f.value) + 1) % f.choices.length] ?? f.value;
          } else if (!f.choices && ch && ch.length === 1 && ch >= ' ' && !key.ctrl) {
            f.value += ch;
          }
      }
      error = '';
      draw();
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
  const box = center(screen, 60, Math.min(items.length, 12) + 4, title);
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
  const box = center(screen, Math.max(40, question.length + 6), 5, 'confirm');
  box.setContent(`${esc(question)}\n{bold}Y{/bold}es / {bold}N{/bold}o`);
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
  const lines = text.split('\n');
  const box = center(screen, Math.max(...lines.map((l) => l.length)) + 4, lines.length + 3, title);
  box.setContent(`${esc(text)}\n{gray-fg}any key closes{/gray-fg}`);
  screen.render();
  const close = closer(screen, box, onClose);
  return {
    key(_ch, key) {
      if (key.name !== 'return') close();
    },
  };
}
