/**
 * Server-side cursors over a snapshot of raw documents. Cursor ids are
 * positive Longs allocated sequentially; id 0 means "exhausted".
 */
import { Long } from 'bson';
import { CommandError } from './errors.js';
import { encodeCursorReply } from './wire.js';

/** Default first-batch size (documents), as mongod. */
export const DEFAULT_FIRST_BATCH = 101;
/** Maximum bytes of documents per batch (mongod caps replies at 16 MB). */
export const MAX_BATCH_BYTES = 16 * 1024 * 1024;

interface OpenCursor {
  ns: string;
  docs: readonly Buffer[];
  pos: number;
}

/** Takes the next batch: at most `limit` docs (0 = unlimited) and ~16 MB, always >= 1 doc if any remain. */
function takeBatch(cursor: OpenCursor, limit: number): Buffer[] {
  const batch: Buffer[] = [];
  let bytes = 0;
  while (cursor.pos < cursor.docs.length && (limit <= 0 || batch.length < limit)) {
    const doc = cursor.docs[cursor.pos] as Buffer;
    if (batch.length > 0 && bytes + doc.length > MAX_BATCH_BYTES) break;
    batch.push(doc);
    bytes += doc.length;
    cursor.pos++;
  }
  return batch;
}

export class CursorRegistry {
  private readonly open = new Map<bigint, OpenCursor>();
  private nextId = 1n;

  /**
   * Starts a cursor over `docs` and returns the encoded `firstBatch` reply.
   * `batchSize` undefined → 101 docs; 0 → an empty first batch.
   * `singleBatch` closes the cursor after the first batch.
   */
  first(ns: string, docs: readonly Buffer[], batchSize: number | undefined, singleBatch = false): Buffer {
    const cursor: OpenCursor = { ns, docs, pos: 0 };
    const batch = batchSize === 0 ? [] : takeBatch(cursor, batchSize ?? DEFAULT_FIRST_BATCH);
    let id = 0n;
    if (!singleBatch && cursor.pos < docs.length) {
      id = this.nextId++;
      this.open.set(id, cursor);
    }
    return encodeCursorReply('firstBatch', batch, Long.fromBigInt(id), ns);
  }

  /** Continues a cursor; returns the encoded `nextBatch` reply. */
  more(id: bigint, ns: string, batchSize: number | undefined): Buffer {
    const cursor = this.open.get(id);
    if (!cursor) throw new CommandError(43, 'CursorNotFound', `cursor id ${id} not found`);
    if (cursor.ns !== ns) throw new CommandError(13, 'Unauthorized', `requested getMore on namespace '${ns}', but cursor belongs to '${cursor.ns}'`);
    const batch = takeBatch(cursor, batchSize ?? 0);
    let replyId = id;
    if (cursor.pos >= cursor.docs.length) {
      this.open.delete(id);
      replyId = 0n;
    }
    return encodeCursorReply('nextBatch', batch, Long.fromBigInt(replyId), ns);
  }

  /** Kills cursors; returns which ids were killed and which were unknown. */
  kill(ids: readonly bigint[]): { killed: bigint[]; notFound: bigint[] } {
    const killed = ids.filter((id) => this.open.delete(id));
    return { killed, notFound: ids.filter((id) => !killed.includes(id)) };
  }

  clear(): void {
    this.open.clear();
  }
}
