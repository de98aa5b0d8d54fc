/**
 * Counting the rows of each table in pg_dump's output as it streams: one pass, flat memory, no
 * second read of the database. The rows are COPY text, one per line: COPY writes a newline inside a
 * value as `\n`, so every raw newline in a table's data ends exactly one row.
 *
 * Custom format: the rows are the data blocks of TABLE DATA entries (pgcustom.ts reads the layout);
 * large objects are not rows.
 *
 * Plain format: a table's rows follow a `-- Data for Name: t; Type: TABLE DATA; ...` comment and a
 * `COPY schema.t (...) FROM stdin;` line, and end at a line `\.`.
 */
import { LineHead } from '../linehead.js';
import { BLOCK_DATA, PgCustomReader } from './pgcustom.js';

export interface TableRows {
  name: string;
  count: number;
}

/** A dump's row counter: fed every byte of the dump in order; never throws. */
export interface RowCounter {
  write(chunk: Buffer): void;
  /** The dump has ended (for a counter that waits for more before it reads). */
  end?(): void;
  /** Why the dump could not be read to its end, if it could not. */
  readonly error: Error | undefined;
  /** True once the dump ended where a complete one ends. */
  readonly complete: boolean;
  /** Tables in dump order. */
  counts(): TableRows[];
}

const NL = 0x0a;

/** The line that ends a table's rows in COPY text. */
const END_OF_ROWS = [0x5c, 0x2e, NL];

/** One table's COPY text rows, counted a line each up to the `\.` line that ends them, if any. */
class CopyRows {
  count = 0;
  done = false;
  /** How many bytes of END_OF_ROWS the current line has matched; -1 once it is a row. */
  private matched = 0;

  /** Reads `chunk` from `start` to `end`; returns where the rows ended (after `\.`), or `end`. */
  scan(chunk: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end && !this.done) {
      if (this.matched >= 0) {
        if (chunk[i] === END_OF_ROWS[this.matched]) {
          i++;
          if (++this.matched === END_OF_ROWS.length) this.done = true;
          continue;
        }
        this.matched = -1;
      }
      const newline = chunk.indexOf(NL, i);
      if (newline === -1 || newline >= end) return end;
      this.count++;
      this.matched = 0;
      i = newline + 1;
    }
    return i;
  }
}

/** Rows per table in an uncompressed custom-format archive (`pg_dump -Fc -Z0`). */
export class PgCustomCounter implements RowCounter {
  private readonly tables = new Map<number, TableRows>();
  private current: { table: TableRows; rows: CopyRows } | undefined;
  private readonly reader = new PgCustomReader({
    head: (_bytes, toc) => {
      for (const [dumpId, name] of toc.tables) this.tables.set(dumpId, { name, count: 0 });
    },
    block: (type, dumpId) => {
      const table = type === BLOCK_DATA ? this.tables.get(dumpId) : undefined;
      this.current = table ? { table, rows: new CopyRows() } : undefined;
    },
    blob: () => undefined,
    data: (chunk, start, end) => {
      if (this.current && !this.current.rows.done) this.current.rows.scan(chunk, start, end);
    },
    dataEnd: () => {
      if (this.current) this.current.table.count = this.current.rows.count;
      this.current = undefined;
    },
    blobsEnd: () => undefined,
  });

  write(chunk: Buffer): void {
    this.reader.write(chunk);
  }

  end(): void {
    this.reader.finish();
  }

  get error(): Error | undefined {
    return this.reader.error;
  }

  get complete(): boolean {
    return this.reader.complete;
  }

  counts(): TableRows[] {
    return [...this.tables.values()];
  }
}

const DATA_COMMENT = /^-- Data for Name: .*; Type: TABLE DATA; Schema: /;
const IDENT = '("(?:[^"]|"")+"|[^".\\s]+)';
const COPY = new RegExp(`^COPY ${IDENT}\\.${IDENT} `);
const DUMP_COMPLETE = /^-- PostgreSQL database dump complete/;

function unquoteIdent(ident: string): string {
  return ident.startsWith('"') ? ident.slice(1, -1).replaceAll('""', '"') : ident;
}

/** Rows per table in a plain-format (SQL) dump. */
export class PgPlainCounter implements RowCounter {
  private mode: 'head' | 'skipLine' | 'rows' = 'head';
  private readonly head = new LineHead();
  /** A TABLE DATA comment was seen: the next COPY line opens that table's rows. */
  private dataHeader = false;
  /** The line being skipped is a COPY line: rows follow it. */
  private rowsAfterLine = false;
  private current: { table: TableRows; rows: CopyRows } | undefined;
  private ended = false;
  private readonly tables: TableRows[] = [];
  error: Error | undefined;

  write(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.mode === 'rows') {
        offset = this.rows(chunk, offset);
      } else if (this.mode === 'skipLine') {
        const newline = chunk.indexOf(NL, offset);
        if (newline === -1) return;
        offset = newline + 1;
        this.mode = this.rowsAfterLine ? 'rows' : 'head';
        this.rowsAfterLine = false;
      } else if (this.head.length === 0 && chunk[offset] !== 0x2d && chunk[offset] !== 0x43) {
        this.mode = 'skipLine'; // only "--" comments and COPY lines matter
      } else {
        offset = this.head.take(chunk, offset);
        if (this.head.ready) this.classify();
      }
    }
  }

  get complete(): boolean {
    return this.ended && this.mode !== 'rows';
  }

  counts(): TableRows[] {
    return this.tables;
  }

  private classify(): void {
    const text = this.head.text();
    const endsLine = this.head.endsLine;
    this.head.drain();
    this.mode = endsLine ? 'head' : 'skipLine';
    if (DATA_COMMENT.test(text)) {
      this.dataHeader = true;
    } else if (DUMP_COMPLETE.test(text)) {
      this.ended = true;
    } else if (this.dataHeader) {
      const copy = COPY.exec(text);
      if (!copy) return;
      this.dataHeader = false;
      const table = { name: `${unquoteIdent(copy[1]!)}.${unquoteIdent(copy[2]!)}`, count: 0 };
      this.tables.push(table);
      this.current = { table, rows: new CopyRows() };
      // A COPY line longer than a head (many columns): its rows start after the rest of it.
      if (endsLine) this.mode = 'rows';
      else this.rowsAfterLine = true;
    }
  }

  private rows(chunk: Buffer, offset: number): number {
    const current = this.current!;
    const end = current.rows.scan(chunk, offset, chunk.length);
    current.table.count = current.rows.count;
    if (current.rows.done) {
      this.current = undefined;
      this.mode = 'head';
    }
    return end;
  }
}
