/**
 * Counting documents per collection in a `mongodump --archive` stream as it passes, with no
 * second read of the database and flat memory: only the small header documents are decoded;
 * document bodies are skipped by their length prefix.
 *
 * Format (mongo-tools common/archive/spec.md): magic 0x8199e26d, a header document, one metadata
 * document per collection, the terminator 0xFFFFFFFF, then namespace segments (a namespace header
 * {db, collection, EOF: false}, documents, terminator) and EOF blocks ({..., EOF: true}, terminator).
 */
import { BSON } from 'bson';

const MAGIC = 0x8199e26d;
const TERMINATOR = 0xffffffff;

type State = 'magic' | 'headerLength' | 'header' | 'metaLength' | 'meta' | 'nsLength' | 'ns' | 'eofTerminator' | 'dataLength';

export interface NamespaceCount {
  db: string;
  collection: string;
  count: number;
}

export class MongoArchiveCounter {
  private state: State = 'magic';
  private pending: Buffer = Buffer.alloc(0);
  private need = 4;
  private skip = 0;
  private current: NamespaceCount | undefined;
  private readonly namespaces = new Map<string, NamespaceCount>();
  toolVersion: string | undefined;
  serverVersion: string | undefined;
  /** Set when the stream could not be parsed; the counts are then incomplete. */
  error: Error | undefined;

  /** Feed archive bytes; a malformed stream sets `error` and ends the counting (it never throws). */
  write(chunk: Buffer): void {
    if (this.error) return;
    try {
      this.feed(chunk);
    } catch (error) {
      this.error = error as Error;
    }
  }

  private feed(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      const take = Math.min(this.need - this.pending.length, chunk.length - offset);
      this.pending = this.pending.length === 0 ? chunk.subarray(offset, offset + take) : Buffer.concat([this.pending, chunk.subarray(offset, offset + take)]);
      offset += take;
      if (this.pending.length < this.need) {
        this.pending = Buffer.from(this.pending); // do not hold on to the caller's chunk
        break;
      }
      const token = this.pending;
      this.pending = Buffer.alloc(0);
      this.step(token);
    }
  }

  /** True once the stream ended where a complete archive ends. */
  get complete(): boolean {
    return !this.error && this.state === 'nsLength' && this.pending.length === 0 && this.skip === 0;
  }

  counts(): NamespaceCount[] {
    return [...this.namespaces.values()];
  }

  private step(token: Buffer): void {
    switch (this.state) {
      case 'magic':
        if (token.readUInt32LE(0) !== MAGIC) throw new Error('not a mongodump archive (bad magic number)');
        return this.expect('headerLength', 4);
      case 'headerLength':
        return this.expectDocument('header', token);
      case 'header': {
        const header = this.decode(token);
        this.toolVersion = typeof header.tool_version === 'string' ? header.tool_version : undefined;
        this.serverVersion = typeof header.server_version === 'string' ? header.server_version : undefined;
        return this.expect('metaLength', 4);
      }
      case 'metaLength':
        if (token.readUInt32LE(0) === TERMINATOR) return this.expect('nsLength', 4);
        return this.expectDocument('meta', token);
      case 'meta': {
        const meta = this.decode(token);
        this.namespace(String(meta.db), String(meta.collection));
        return this.expect('metaLength', 4);
      }
      case 'nsLength':
        return this.expectDocument('ns', token);
      case 'ns': {
        const header = this.decode(token);
        this.current = this.namespace(String(header.db), String(header.collection));
        return header.EOF === true ? this.expect('eofTerminator', 4) : this.expect('dataLength', 4);
      }
      case 'eofTerminator':
        if (token.readUInt32LE(0) !== TERMINATOR) throw new Error('mongodump archive: missing terminator after an EOF block');
        return this.expect('nsLength', 4);
      case 'dataLength': {
        const length = token.readUInt32LE(0);
        if (length === TERMINATOR) return this.expect('nsLength', 4);
        if (length < 5) throw new Error(`mongodump archive: invalid document length ${length}`);
        this.current!.count++;
        this.skip = length - 4;
        return this.expect('dataLength', 4);
      }
    }
  }

  private expect(state: State, bytes: number): void {
    this.state = state;
    this.need = bytes;
  }

  private expectDocument(state: State, lengthToken: Buffer): void {
    const length = lengthToken.readInt32LE(0);
    if (length < 5 || length > 16 * 1024 * 1024) throw new Error(`mongodump archive: invalid header length ${length}`);
    // Keep the length prefix: the whole document is decoded at once.
    this.state = state;
    this.need = length;
    this.pending = Buffer.from(lengthToken);
  }

  private decode(document: Buffer): Record<string, unknown> {
    return BSON.deserialize(document);
  }

  private namespace(db: string, collection: string): NamespaceCount {
    const key = `${db}.${collection}`;
    let ns = this.namespaces.get(key);
    if (!ns) {
      ns = { db, collection, count: 0 };
      this.namespaces.set(key, ns);
    }
    return ns;
  }
}
