/**
 * The steps of a Markdown guide (docs/operations.md), for tests that run them: each `ssh -p 2200
 * USER@shell-host COMMAND` line of the ```sh blocks in a section, with the `# ` lines under it
 * (what the command prints), and a check that real output is what those lines show.
 *
 * What differs from run to run is compared by kind only: a whole session id is `#uuid`; times,
 * short ids and figures (any run of digits, or of 7 or more hex digits) are each `#`; runs of
 * spaces are one space (table columns widen with their contents); and `…` in a shown line stands
 * for anything.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './agent-process';

export interface DocStep {
  /** The operator the line logs in as. */
  user: string;
  /** What follows `USER@shell-host`, a trailing `# comment` left out. */
  command: string;
  /** The `# ` lines under it, without the `# `. */
  shown: string[];
}

/** The text of section `heading` (a `## ` heading) of a file under the repository. */
export async function docSection(file: string, heading: string): Promise<string> {
  const doc = await fs.readFile(path.join(REPO_ROOT, file), 'utf8');
  const start = doc.indexOf(`\n## ${heading}\n`);
  if (start === -1) throw new Error(`${file} has no section "## ${heading}"`);
  const body = doc.slice(start + heading.length + 5);
  const end = body.indexOf('\n## ');
  return end === -1 ? body : body.slice(0, end);
}

/** The steps of every ```sh block in `section`, in order. */
export function docSteps(section: string): DocStep[] {
  const steps: DocStep[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let last: DocStep | undefined;
    for (const line of (block[1] ?? '').split('\n')) {
      const cmd = /^ssh -p 2200 ([a-z_][a-z0-9_.-]*)@shell-host (.*)$/.exec(line);
      if (cmd) {
        last = { user: cmd[1] ?? '', command: withoutComment(cmd[2] ?? ''), shown: [] };
        steps.push(last);
      } else if (line.startsWith('# ') && last) {
        last.shown.push(line.slice(2));
      } else {
        last = undefined;
      }
    }
  }
  return steps;
}

/** `COMMAND   # what it does` → `COMMAND`: a `#` after two spaces outside quotes starts a comment. */
function withoutComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && line.slice(i - 2, i) === '  ') {
      return line.slice(0, i).trimEnd();
    }
  }
  return line.trimEnd();
}

const TIME = /\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?/g;
const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g;
const HEX = /\b[0-9a-f]{7,}\b/g;
const FIGURE = /\d+(?:\.\d+)*/g;

/** Output with what differs between runs made one of a kind (see the file's comment). */
export function normalize(text: string): string {
  return text
    .replace(UUID, '#uuid')
    .replace(TIME, '#')
    .replace(HEX, '#')
    .replace(FIGURE, '#')
    .split('\n')
    .map((l) => l.replace(/ +/g, ' ').trimEnd())
    .join('\n')
    .trimEnd();
}

/** A pattern that `normalize(output)` matches when the output is what `shown` says. */
export function shownPattern(shown: string[]): RegExp {
  const escaped = normalize(shown.join('\n'))
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*?');
  return new RegExp(`^${escaped}$`);
}
