/**
 * Reading mysqldump's SQL text as it streams: in one pass, with flat memory, whatever the size of
 * a line or of a row.
 *
 * Both readers rely on the shape mysqldump gives its output (MySQL 5.7/8.x, MariaDB 10.x/11.x):
 * statements start at the beginning of a line; string values never hold a raw newline (mysqldump
 * escapes it); routine, trigger and event bodies, which may hold anything, sit between
 * `DELIMITER ;;` and `DELIMITER ;`; each table's statements follow a comment block
 * `-- Table structure for table \`t\`` / `-- Dumping data for table \`t\``, and the closing
 * session restores (`/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE *\/;` ...) follow the last section.
 */
import { type Readable, Transform, type TransformCallback, pipeline } from 'node:stream';
import { LineHead } from '../linehead.js';

const NL = 0x0a;
const SINGLE_QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x28;
const CLOSE = 0x29;
const SEMICOLON = 0x3b;

const IDENT = '`((?:[^`]|``)+)`';
/** Extended inserts: `INSERT INTO \`t\` VALUES (..),(..);` (MariaDB puts each tuple on its own line). */
const INSERT = new RegExp(`^(?:INSERT(?: IGNORE)?|REPLACE) INTO ${IDENT}(?: \\([^)]*\\))? VALUES`);
/** A table's definition. A view's placeholder is inside a `/*!50001 ... *\/` comment, so never matches. */
const CREATE_TABLE = new RegExp(`^CREATE TABLE (?:IF NOT EXISTS )?${IDENT}`);
const DELIMITER = /^DELIMITER\s+(\S+)/i;
const SECTION_TITLE = /^-- [A-Za-z ]+? for (table|view|database) (`(?:[^`]|``)+`|'[^']*')\s*$/;
const FOOTER = /^(?:\/\*!\d+ SET [A-Z_]+\s*=\s*@OLD_[A-Z_]+\s*\*\/;|SET @@SESSION\.SQL_LOG_BIN\s*=\s*@MYSQLDUMP_TEMP_LOG_BIN)/i;
const DUMP_COMPLETED = /^-- Dump completed/;

/** A backtick-quoted identifier as mysqldump writes it (inner backticks doubled), unquoted. */
function unquoteIdent(quoted: string): string {
  return quoted.slice(1, -1).replaceAll('``', '`');
}

/** Only lines starting with one of these bytes can be a statement or comment that matters here. */
const COUNTER_STARTS = new Set([...'ICRD-d'].map((c) => c.charCodeAt(0)));
const FILTER_STARTS = new Set([...'-/SDd'].map((c) => c.charCodeAt(0)));

export interface TableCount {
  name: string;
  count: number;
}

/**
 * Counts the rows of each table in a mysqldump text: one per top-level tuple of its extended
 * INSERT statements, skipping quoted strings (with backslash escapes) and nested parentheses.
 * Every `CREATE TABLE` registers its table, so empty tables are listed with 0. Statements inside
 * DELIMITER blocks (routine and trigger bodies) are never counted.
 */
export class MysqlDumpCounter {
  private mode: 'head' | 'skipLine' | 'values' = 'head';
  private readonly head = new LineHead();
  private delimiter = ';';
  private current: TableCount | undefined;
  private depth = 0;
  private quote = 0;
  private escaped = false;
  private ended = false;
  private readonly tables = new Map<string, TableCount>();

  write(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.mode === 'values') {
        offset = this.scanValues(chunk, offset);
      } else if (this.mode === 'skipLine') {
        const newline = chunk.indexOf(NL, offset);
        if (newline === -1) return;
        offset = newline + 1;
        this.mode = 'head';
      } else if (this.head.length === 0 && !COUNTER_STARTS.has(chunk[offset]!)) {
        this.mode = 'skipLine';
      } else {
        offset = this.head.take(chunk, offset);
        if (this.head.ready) this.classify();
      }
    }
  }

  /** True once the text ended where a complete dump ends ("-- Dump completed", no open statement). */
  get complete(): boolean {
    return this.ended && this.mode !== 'values';
  }

  /** Tables in dump order. */
  counts(): TableCount[] {
    return [...this.tables.values()];
  }

  private classify(): void {
    const text = this.head.text();
    const endsLine = this.head.endsLine;
    if (this.delimiter === ';') {
      const insert = INSERT.exec(text);
      if (insert) {
        this.current = this.table(insert[1]!.replaceAll('``', '`'));
        this.mode = 'values';
        this.depth = 0;
        this.quote = 0;
        this.escaped = false;
        // The rest of this line holds the first tuples (MySQL puts the whole statement on one line).
        this.write(this.head.drain(Buffer.byteLength(insert[0])));
        return;
      }
      const create = CREATE_TABLE.exec(text);
      if (create) this.table(create[1]!.replaceAll('``', '`'));
      if (DUMP_COMPLETED.test(text)) this.ended = true;
    }
    const delimiter = DELIMITER.exec(text);
    if (delimiter) this.delimiter = delimiter[1]!;
    this.head.drain();
    this.mode = endsLine ? 'head' : 'skipLine';
  }

  private scanValues(chunk: Buffer, offset: number): number {
    const current = this.current!;
    for (let i = offset; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (this.quote !== 0) {
        if (this.escaped) this.escaped = false;
        else if (byte === BACKSLASH) this.escaped = true;
        else if (byte === this.quote) this.quote = 0;
      } else if (byte === SINGLE_QUOTE || byte === DOUBLE_QUOTE) {
        this.quote = byte;
      } else if (byte === OPEN) {
        if (this.depth++ === 0) current.count++;
      } else if (byte === CLOSE) {
        this.depth--;
      } else if (byte === SEMICOLON && this.depth === 0) {
        this.mode = 'skipLine';
        return i + 1;
      }
    }
    return chunk.length;
  }

  private table(name: string): TableCount {
    let table = this.tables.get(name);
    if (!table) {
      table = { name, count: 0 };
      this.tables.set(name, table);
    }
    return table;
  }
}

/**
 * Keeps the sections of the named tables (structure, data, triggers) with the dump's header and
 * footer, and drops every other section: other tables, views, routines, events. Lines are
 * classified by their first bytes, then passed on or dropped as they stream.
 */
export class TableSectionFilter {
  private readonly tables: ReadonlySet<string>;
  private readonly head = new LineHead();
  private mode: 'head' | 'line' = 'head';
  /** Keep the current section? The header, before the first section, is kept. */
  private keep = true;
  private keepLine = true;
  private footer = false;
  private delimiter = ';';
  /** A lone `--` line, which opens a section title block: it belongs to whichever section follows. */
  private held: Buffer | undefined;

  constructor(tables: readonly string[]) {
    this.tables = new Set(tables);
  }

  /** Feed bytes; returns the bytes to pass on. */
  write(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.mode === 'line') {
        const newline = chunk.indexOf(NL, offset);
        const end = newline === -1 ? chunk.length : newline + 1;
        if (this.keepLine) out.push(chunk.subarray(offset, end));
        offset = end;
        if (newline !== -1) this.mode = 'head';
      } else if (this.head.length === 0 && !FILTER_STARTS.has(chunk[offset]!)) {
        this.release(out);
        this.keepLine = this.keep;
        this.mode = 'line';
      } else {
        offset = this.head.take(chunk, offset);
        if (this.head.ready) this.classify(out);
      }
    }
    return Buffer.concat(out);
  }

  /** The end of the text: a last line without a newline, and a held `--`. */
  end(): Buffer {
    const out: Buffer[] = [];
    if (this.head.length > 0) this.classify(out);
    if (this.held && this.keep) out.push(this.held);
    this.held = undefined;
    return Buffer.concat(out);
  }

  private classify(out: Buffer[]): void {
    const text = this.head.text();
    const endsLine = this.head.endsLine;
    const line = this.head.drain();
    this.mode = endsLine ? 'head' : 'line';
    if (this.delimiter === ';' && !this.footer) {
      if (text === '--\n') {
        this.release(out);
        this.held = line;
        return;
      }
      const title = SECTION_TITLE.exec(text);
      if (title) {
        const quoted = title[2]!;
        this.keep = title[1] === 'table' && quoted.startsWith('`') && this.tables.has(unquoteIdent(quoted));
      } else if (FOOTER.test(text)) {
        this.footer = true;
        this.keep = true;
      }
    }
    const delimiter = DELIMITER.exec(text);
    if (delimiter) this.delimiter = delimiter[1]!;
    this.release(out);
    this.keepLine = this.keep;
    if (this.keep) out.push(line);
  }

  private release(out: Buffer[]): void {
    if (this.held && this.keep) out.push(this.held);
    this.held = undefined;
  }
}

/** `source` with only the named tables' sections; a failure of `source` fails the result. */
export function filterTables(source: Readable, tables: readonly string[]): Readable {
  const filter = new TableSectionFilter(tables);
  const transform = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      callback(null, filter.write(chunk));
    },
    flush(callback) {
      callback(null, filter.end());
    },
  });
  pipeline(source, transform, () => undefined);
  return transform;
}
