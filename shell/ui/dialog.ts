/**
 * What the menu's dialogs are, without blessed: a key as blessed reports it, a form field, an open
 * dialog, and the four kinds of dialog the key handlers may open. form.ts draws them with blessed.
 */

/** A key press as blessed reports it (`ch` comes with it, separately). */
export type Key = { name?: string; full?: string; ctrl?: boolean };

export interface Field {
  label: string;
  value: string;
  /** The problem with a value, or null; called on every keystroke. */
  check(value: string): string | null;
  /** Choices cycled with space (and typed values are refused); for tcp/udp. */
  choices?: string[];
}

/** An open dialog: it takes every key until it closes. */
export interface Dialog {
  /** Handles one key. Never throws. */
  key(ch: string | undefined, key: Key): void;
}

/** Opens dialogs over the menu; while one is open the menu's keys go to it. */
export interface Dialogs {
  /**
   * A form whose fields are checked as you type. `submit` runs with the values on Enter; if it
   * throws, its message is shown in the form verbatim and the form stays open; Escape cancels.
   */
  form(title: string, fields: Field[], submit: (values: string[]) => Promise<void>): void;
  /** Choose one of `items` (↑↓, Enter runs `choose` with its index); Escape cancels. */
  picker(title: string, items: string[], choose: (index: number) => void): void;
  /** A yes/no question: Y runs `yes`, any other key cancels. */
  confirm(question: string, yes: () => void): void;
  /** A page of text; any key closes it. */
  page(title: string, text: string): void;
}
