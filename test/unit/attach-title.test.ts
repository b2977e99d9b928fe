/**
 * The title an attach writes (shell/ssh/attach-title.ts): where the stream to the operator is in
 * the terminal's ground state however it is cut into chunks, the title's text, when a new title
 * is written, and the attach filter's option that drops the session's own titles.
 */
import { Activity, SessionEntry } from '../../common/protocol';
import { AgentStatus, ClusterView } from '../../shell/cluster/view';
import { Dismissed } from '../../shell/ui/menu-attention';
import { Needing, StreamState, TITLE_MAX, needingOthers, startAttachTitle, titleBytes, titleText } from '../../shell/ssh/attach-title';
import { TerminalFilter } from '../../shell/ssh/terminal-filter';
import { viewEntry } from '../helpers/entries';

const ESC = '\u001b';
const BEL = '\u0007';
const ST = `${ESC}\\`;

/** Bytes from a string whose characters are bytes (latin1): C1 and UTF-8 bytes written as \xNN. */
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Whether the stream is in ground after `chunks`, pushed in that order into a fresh tracker. */
function groundAfter(...chunks: Buffer[]): boolean {
  const t = new StreamState();
  for (const c of chunks) t.push(c);
  return t.ground;
}

/**
 * `seq`, one whole sequence or character: cut after every byte but the last it leaves the stream
 * inside (whether pushed as that prefix alone, or byte by byte); whole, or cut in two anywhere,
 * in ground.
 */
function expectInsideUntilItsEnd(seq: Buffer): void {
  for (let k = 1; k < seq.length; k++) {
    expect({ seq: seq.toString('hex'), k, ground: groundAfter(seq.subarray(0, k)) }).toEqual({ seq: seq.toString('hex'), k, ground: false });
  }
  const t = new StreamState();
  seq.forEach((b, k) => {
    t.push(Buffer.from([b]));
    expect({ seq: seq.toString('hex'), k, ground: t.ground }).toEqual({ seq: seq.toString('hex'), k, ground: k === seq.length - 1 });
  });
  for (let k = 0; k <= seq.length; k++) {
    expect({ seq: seq.toString('hex'), k, ground: groundAfter(seq.subarray(0, k), seq.subarray(k)) }).toEqual({ seq: seq.toString('hex'), k, ground: true });
  }
}

describe('where the stream is in ground', () => {
  it('text and C0 controls leave it in ground', () => {
    expect(groundAfter()).toBe(true);
    expect(groundAfter(bytes('plain text\r\n\t\u0007\u0008'))).toBe(true);
  });

  it('a CSI cut anywhere is inside until its final byte', () => {
    for (const s of [`${ESC}[m`, `${ESC}[1;31m`, `${ESC}[?1049h`, `${ESC}[38;2;255;0;0m`, `${ESC}[24;1H`, `${ESC}[ q`, '\xc2\x9b1;2H']) expectInsideUntilItsEnd(bytes(s));
  });

  it('an OSC cut anywhere is inside until its BEL or ST, UTF-8 in it or not', () => {
    for (const s of [`${ESC}]0;title${BEL}`, `${ESC}]2;another${ST}`, `${ESC}]8;;https://example.com${ST}`, `${ESC}]112${BEL}`, `\xc2\x9d0;c1 form${BEL}`]) {
      expectInsideUntilItsEnd(bytes(s));
    }
    expectInsideUntilItsEnd(utf8(`${ESC}]2;東京 · 📝${BEL}`));
  });

  it('a DCS, SOS, PM or APC cut anywhere is inside until its ST; BEL does not end it', () => {
    for (const s of [`${ESC}P+q544e${ST}`, `${ESC}Ptmux;${ESC}${ESC}]52;c;eA==${BEL}${ST}`, `${ESC}X sos${ST}`, `${ESC}^pm${ST}`, `${ESC}_Gf=100${ST}`, `\xc2\x90q${ST}`]) {
      expectInsideUntilItsEnd(bytes(s));
    }
    expect(groundAfter(bytes(`${ESC}Pjunk${BEL}more`))).toBe(false);
  });

  it('other escape sequences, with intermediates or not, cut anywhere', () => {
    for (const s of [`${ESC}(B`, `${ESC}#8`, `${ESC}7`, `${ESC}M`, `${ESC}\\`, `${ESC} F`]) expectInsideUntilItsEnd(bytes(s));
  });

  it('a UTF-8 character cut anywhere is inside until its last byte', () => {
    for (const c of ['é', '°', '═', '✝', '東', '📝', '\u00a0']) expectInsideUntilItsEnd(utf8(c));
  });

  it('text around sequences: in ground exactly between them, at every cut of a redraw as tmux writes it', () => {
    const parts = [`${ESC}[?25l`, `${ESC}[H`, 'Ð ', `${ESC}[30m`, `${ESC}[42m`, '[claude] 0:bash*', `${ESC}(B`, `${ESC}[m`, `${ESC}]0;tïtle${BEL}`, '$ ls', '\r\n', '👩‍💻'];
    const all = utf8(parts.join(''));
    // The byte offsets where one part ends: ground there (and inside a text part), nowhere else.
    const ends = new Set<number>([0]);
    let at = 0;
    for (const p of parts) {
      const text = !p.includes(ESC);
      for (const [k, char] of [...p].entries()) {
        at += utf8(char).length;
        if (text || k === [...p].length - 1) ends.add(at);
      }
    }
    expect(at).toBe(all.length);
    for (let k = 0; k <= all.length; k++) {
      expect({ k, ground: groundAfter(all.subarray(0, k)) }).toEqual({ k, ground: ends.has(k) });
      expect({ k, ground: groundAfter(all.subarray(0, k), all.subarray(k)) }).toEqual({ k, ground: true });
    }
  });

  it('CAN and SUB end a sequence, ESC starts a new one from anywhere; a string is open until its own end', () => {
    expect(groundAfter(bytes(`${ESC}[1;3\u0018`))).toBe(true);
    expect(groundAfter(bytes(`${ESC}[1\u001a`))).toBe(true);
    expect(groundAfter(bytes(`${ESC}[1;${ESC}[m`))).toBe(true);
    expect(groundAfter(bytes(`${ESC}[1;${ESC}]2;x`))).toBe(false);
    // Some terminals (tmux) read a string on through CAN, SUB and ESC: open until BEL or ST.
    expect(groundAfter(bytes(`${ESC}]2;x\u001a`))).toBe(false);
    expect(groundAfter(bytes(`${ESC}]2;x\u001a`), bytes(BEL))).toBe(true);
    expect(groundAfter(bytes(`${ESC}Pjunk\u0018`))).toBe(false);
    expect(groundAfter(bytes(`${ESC}Pjunk${ESC}[1m`))).toBe(false);
    expect(groundAfter(bytes(`${ESC}Pjunk\u0018${ESC}]0;t${BEL}`))).toBe(false);
    expect(groundAfter(bytes(`${ESC}Pjunk\u0018${ESC}]0;t${BEL}`), bytes(ST))).toBe(true);
    // Whichever reading: an OSC the other reading opens stays open after the first one ends.
    expect(groundAfter(bytes(`${ESC}]0;a\u0018${ESC}Pq${BEL}`))).toBe(false);
    // C0 controls are carried out inside a sequence, which goes on.
    expect(groundAfter(bytes(`${ESC}[1\r\n`))).toBe(false);
    expect(groundAfter(bytes(`${ESC}[1\r\nm`))).toBe(true);
  });

  it('a UTF-8 character cut short, a stray continuation byte or a byte UTF-8 never uses is one replacement character', () => {
    expect(groundAfter(bytes('\xe2\x95x'))).toBe(true);
    expect(groundAfter(bytes('\xe2\x95'), bytes(`${ESC}[m`))).toBe(true);
    expect(groundAfter(bytes('\xe2\x95'), bytes(`${ESC}[`))).toBe(false);
    expect(groundAfter(bytes('\x9d\x90\xbf'))).toBe(true);
    expect(groundAfter(bytes('\xc0\xc1\xf5\xff'))).toBe(true);
  });
});

const uuid = (i: number): string => `${String(i).padStart(8, '0')}-aaaa-4bbb-8ccc-${String(i).padStart(12, '0')}`;
const at = (s: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

/** A cluster view with one agent (and `status`) and the sessions given, each with its activity. */
function viewWith(sessions: Array<[number, string, Activity['state'] | null, number?]>, status: AgentStatus = 'online'): ClusterView {
  const view = new ClusterView();
  view.addAgent('agent-1');
  view.setStatus('agent-1', status, '');
  for (const [i, name, activity, since] of sessions) view.upsert('agent-1', withActivity(viewEntry({ id: uuid(i), name }), activity, since), view.mark());
  return view;
}

function withActivity(e: SessionEntry, activity: Activity['state'] | null, since = 0): SessionEntry {
  return { ...e, activity: activity ? { state: activity, since: at(since), detail: '' } : null } as SessionEntry;
}

describe('who needs you, for the title', () => {
  it('other sessions in permission, waiting or stuck, in the menu’s attention order; not the one attached', () => {
    const view = viewWith([
      [1, 'web', 'permission'],
      [2, 'db', 'waiting', 5],
      [3, 'api', 'permission', 9],
      [4, 'ci', 'working'],
      [5, 'old', 'waiting', 1],
      [6, 'slow', 'stuck'],
      [7, 'fresh', null],
      [8, 'fin', 'done'],
    ]);
    expect(needingOthers(view.sessions(), uuid(1), new Map())).toEqual([
      { name: 'api', state: 'permission' },
      { name: 'old', state: 'waiting' },
      { name: 'db', state: 'waiting' },
      { name: 'slow', state: 'stuck' },
    ]);
  });

  it('leaves out those dismissed (this very activity) and those of an agent away', () => {
    const view = viewWith([
      [1, 'web', null],
      [2, 'db', 'waiting', 5],
      [3, 'api', 'waiting', 6],
    ]);
    const dismissed = new Map<string, Dismissed>([
      [uuid(2), { state: 'waiting', since: at(5) }],
      [uuid(3), { state: 'waiting', since: at(1) }],
    ]);
    expect(needingOthers(view.sessions(), uuid(1), dismissed)).toEqual([{ name: 'api', state: 'waiting' }]);
    view.setStatus('agent-1', 'offline', 'gone');
    expect(needingOthers(view.sessions(), uuid(1), new Map())).toEqual([]);
  });
});

describe('the title text', () => {
  const need = (...names: string[]): Needing[] => names.map((name, i) => ({ name, state: i % 2 === 0 ? 'permission' : 'waiting' }));

  it('names the attached session, then how many need you and who', () => {
    expect(titleText('web', [])).toBe('berth · web');
    expect(titleText('web', need('api'))).toBe('berth · web — 1 needs you: api (permission)');
    expect(titleText('web', need('api', 'db'))).toBe('berth · web — 2 need you: api (permission), db (waiting)');
  });

  it('is at most 120 characters: as many names as fit, then how many more; the count stays whole', () => {
    const many = need(...Array.from({ length: 40 }, (_, i) => `session-number-${i}`));
    const t = titleText('web', many);
    expect([...t].length).toBeLessThanOrEqual(TITLE_MAX);
    expect(t).toMatch(/^berth · web — 40 need you: session-number-0 \(permission\), session-number-1 \(waiting\)(, .*)?, \+\d+ more$/);
    const shown = t.split(' (').length - 1;
    expect(t.endsWith(`, +${40 - shown} more`)).toBe(true);
    // Long names are cut, so at least one is always named.
    const long = titleText('x'.repeat(500), need('y'.repeat(500), 'z'));
    expect([...long].length).toBeLessThanOrEqual(TITLE_MAX);
    expect(long).toBe(`berth · ${'x'.repeat(31)}… — 2 need you: ${'y'.repeat(31)}… (permission), z (waiting)`);
    // Every list that fits is shown whole; one that does not, as far as it fits, and never past the cap.
    for (let count = 1; count <= 12; count++) {
      for (let len = 1; len <= 20; len++) {
        const list = need(...Array.from({ length: count }, (_, i) => `${i}`.padStart(len, 'n')));
        const full = `berth · web — ${count} need${count === 1 ? 's' : ''} you: ${list.map((w) => `${w.name} (${w.state})`).join(', ')}`;
        const got = titleText('web', list);
        const where = { count, len };
        if ([...full].length <= TITLE_MAX) expect({ ...where, got }).toEqual({ ...where, got: full });
        else expect({ ...where, cut: [...got].length <= TITLE_MAX && / \+\d+ more$/.test(got) }).toEqual({ ...where, cut: true });
      }
    }
  });

  it('makes every name inert: no control, escape or bidi override reaches the terminal', () => {
    const t = titleText(`web${ESC}]2;evil${BEL}`, [{ name: `api\u202e${ESC}[2J\r\n\u009d0;x`, state: 'waiting' }]);
    expect(t).toBe('berth · web\\x1b]2;evil\\x07 — 1 needs you: api\\u202e\\x1b[2J\\r\\n\\x9d0;x (waiting)');
    expect([...t].filter((c) => c < ' ' || (c >= '\u007f' && c <= '\u009f') || c === '\u202e')).toEqual([]);
  });

  it('is written as one OSC 2 ended by BEL', () => {
    const b = titleBytes('berth · web');
    expect(b.toString('utf8')).toBe(`${ESC}]2;berth · web${BEL}`);
    expect(groundAfter(b)).toBe(true);
  });
});

describe('when a title is written', () => {
  /** An attach title on `view` for session 1, with a hand-run defer; `out` holds what it wrote. */
  function titled(view: ClusterView, dismissed?: () => ReadonlyMap<string, Dismissed>) {
    const out: string[] = [];
    const queue: Array<() => void> = [];
    const session = view.sessions().find((s) => s.id === uuid(1))!;
    const title = startAttachTitle({ view, session, dismissed, write: (b) => out.push(b.toString('utf8')), defer: (f) => queue.push(f) });
    const runDeferred = (): void => {
      for (const f of queue.splice(0)) f();
    };
    return { out, queue, title, runDeferred };
  }
  const osc = (text: string): string => `${ESC}]2;${text}${BEL}`;
  const report = (view: ClusterView, i: number, name: string, activity: Activity['state'] | null, since = 0): void =>
    view.upsert('agent-1', withActivity(viewEntry({ id: uuid(i), name }), activity, since), view.mark());

  it('at the start, at once; after a burst of changes, once, when its text changed', () => {
    const view = viewWith([
      [1, 'web', null],
      [2, 'api', 'permission'],
    ]);
    const t = titled(view);
    expect(t.out).toEqual([osc('berth · web — 1 needs you: api (permission)')]);
    report(view, 3, 'db', 'waiting');
    report(view, 3, 'db', 'waiting', 1);
    report(view, 4, 'ci', 'working');
    expect(t.queue).toHaveLength(1);
    expect(t.out).toHaveLength(1);
    t.runDeferred();
    expect(t.out).toEqual([osc('berth · web — 1 needs you: api (permission)'), osc('berth · web — 2 need you: api (permission), db (waiting)')]);
    // A change that leaves the text as it is writes nothing.
    report(view, 4, 'ci', 'done');
    t.runDeferred();
    expect(t.out).toHaveLength(2);
    report(view, 2, 'api', 'working');
    report(view, 3, 'db', 'working');
    t.runDeferred();
    expect(t.out[2]).toBe(osc('berth · web'));
  });

  it('inside a sequence or a character, waits for the first chunk that leaves the stream in ground', () => {
    const view = viewWith([[1, 'web', null]]);
    const t = titled(view);
    t.title.sent(bytes(`text${ESC}[1;`));
    report(view, 2, 'api', 'permission');
    t.runDeferred();
    expect(t.out).toHaveLength(1);
    t.title.sent(bytes('3'));
    t.title.sent(bytes(`1mok${ESC}]0;x`));
    t.title.sent(bytes(`${BEL}\xe2\x95`));
    expect(t.out).toHaveLength(1);
    t.title.sent(bytes('\x90'));
    expect(t.out).toEqual([osc('berth · web'), osc('berth · web — 1 needs you: api (permission)')]);
    // Only once.
    t.title.sent(bytes('more'));
    expect(t.out).toHaveLength(2);
  });

  it('the last text wins when several came while waiting; back to the written one writes nothing', () => {
    const view = viewWith([[1, 'web', null]]);
    const t = titled(view);
    t.title.sent(bytes(`${ESC}[`));
    report(view, 2, 'api', 'permission');
    t.runDeferred();
    report(view, 2, 'api', 'working');
    t.runDeferred();
    t.title.sent(bytes('m'));
    expect(t.out).toEqual([osc('berth · web')]);
  });

  it('leaves out what the operator dismissed, asking each time', () => {
    const view = viewWith([
      [1, 'web', null],
      [2, 'api', 'waiting', 3],
    ]);
    let dismissed = new Map<string, Dismissed>([[uuid(2), { state: 'waiting', since: at(3) }]]);
    const t = titled(view, () => dismissed);
    expect(t.out).toEqual([osc('berth · web')]);
    dismissed = new Map();
    report(view, 3, 'db', 'working');
    t.runDeferred();
    expect(t.out[1]).toBe(osc('berth · web — 1 needs you: api (waiting)'));
  });

  it('follows a rename of the attached session', () => {
    const view = viewWith([[1, 'web', null]]);
    const t = titled(view);
    report(view, 1, 'www', null);
    t.runDeferred();
    expect(t.out[1]).toBe(osc('berth · www'));
  });

  it('at the end, says `berth` (after ST if a sequence was cut) and stops following the view', () => {
    const view = viewWith([
      [1, 'web', null],
      [2, 'api', 'permission'],
    ]);
    const listeners = view.listenerCount('change');
    const t = titled(view);
    expect(view.listenerCount('change')).toBe(listeners + 1);
    t.title.sent(bytes(`${ESC}[1`));
    t.title.end();
    t.title.end();
    expect(t.out.slice(1)).toEqual([ST, osc('berth')]);
    expect(view.listenerCount('change')).toBe(listeners);
    report(view, 3, 'db', 'waiting');
    t.title.sent(bytes('m'));
    t.runDeferred();
    expect(t.out).toHaveLength(3);

    const plain = titled(viewWith([[1, 'web', null]]));
    plain.title.sent(bytes('done\r\n'));
    plain.title.end();
    expect(plain.out).toEqual([osc('berth · web'), osc('berth')]);
  });
});

describe('the session’s own titles (TerminalFilter dropTitles)', () => {
  const run = (chunks: Buffer[], f: TerminalFilter): string => Buffer.concat(chunks.map((c) => f.push(c))).toString('latin1');
  const dropping = (s: string): string => run([utf8(s)], new TerminalFilter({ dropTitles: true }));

  /** The same with the stream cut in two at every point, and into single bytes. */
  function expectAtEverySplit(s: string, want: string): void {
    const b = bytes(s);
    for (let k = 0; k <= b.length; k++) {
      expect({ k, out: run([b.subarray(0, k), b.subarray(k)], new TerminalFilter({ dropTitles: true })) }).toEqual({ k, out: want });
    }
    expect(run(Array.from(b, (x) => Buffer.from([x])), new TerminalFilter({ dropTitles: true }))).toBe(want);
  }

  it('OSC 0, 1 and 2 go, ended by BEL or ST, spelled with leading zeros or as C1', () => {
    expect(dropping(`a${ESC}]0;fake${BEL}b`)).toBe('ab');
    expect(dropping(`a${ESC}]1;icon${ST}b`)).toBe('ab');
    expect(dropping(`a${ESC}]2;berth · web — 9 need you${BEL}b`)).toBe('ab');
    expect(dropping(`a${ESC}]002;fake${BEL}b`)).toBe('ab');
    expect(dropping(`a\u009d2;fake${ST}b`)).toBe('ab');
    const cases: Array<[string, string]> = [
      [`x${ESC}]2;fake${BEL}y`, 'xy'],
      [`x${ESC}]0;f${ST}y${ESC}[1m`, `xy${ESC}[1m`],
      [`x\xc2\x9d1;f${BEL}y`, 'xy'],
      [`x${ESC}]01;f${ST}${ESC}]8;;u${ST}y`, `x${ESC}]8;;u${ST}y`],
    ];
    for (const [s, want] of cases) expectAtEverySplit(s, want);
  });

  it('every other sequence is as without the option: kept, or dropped as before', () => {
    const keep = [
      `${ESC}]112${BEL}`,
      `${ESC}]10;?${ST}`,
      `${ESC}]4;1;rgb:ff/00/00${BEL}`,
      `${ESC}]8;;https://example.com${ST}link${ESC}]8;;${ST}`,
      `${ESC}]20;x${BEL}`,
      `${ESC}[1;31mred${ESC}[0m${ESC}[2J${ESC}(B${ESC}7`,
      'Ð ǝ ═ ✝ 📝 °',
    ];
    for (const k of keep) expectAtEverySplit(utf8(k).toString('latin1'), utf8(k).toString('latin1'));
    expect(dropping(`a${ESC}]52;c;eA==${BEL}b${ESC}P+q544e${ST}c`)).toBe('abc');
  });

  it('without the option, titles pass as they always did', () => {
    const s = `a${ESC}]0;t${BEL}${ESC}]2;u${ST}b`;
    expect(run([bytes(s)], new TerminalFilter())).toBe(s);
  });
});
