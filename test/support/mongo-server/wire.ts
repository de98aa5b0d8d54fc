/**
 * MongoDB wire-protocol framing: message headers, OP_MSG, legacy OP_QUERY
 * and OP_REPLY. Pure functions over Buffers; no socket handling here.
 */
import { BSON, Double, type Document, type Long } from 'bson';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

/** OP_MSG flag bits. */
export const FLAG_CHECKSUM_PRESENT = 1 << 0;
export const FLAG_MORE_TO_COME = 1 << 1;

const HEADER_SIZE = 16;

/**
 * Decode options that keep every BSON type distinct (Double vs Int32 vs
 * Long, Binary subtypes, BSONRegExp) so values re-serialize to the same bytes.
 */
export const EXACT_DECODE = {
  promoteValues: false,
  promoteLongs: false,
  promoteBuffers: false,
  bsonRegExp: true,
} as const;

export interface MessageHeader {
  messageLength: number;
  requestID: number;
  responseTo: number;
  opCode: number;
}

/** A command received over the wire, whatever opcode carried it. */
export interface IncomingCommand {
  header: MessageHeader;
  /** Command body; the `documents` array (if inline) holds raw BSON Buffers. */
  body: Document;
  /** Kind-1 sections, by identifier. `documents` entries stay raw Buffers. */
  sequences: Map<string, Buffer[]>;
  /** True when the client asked for no reply (OP_MSG moreToCome). */
  moreToCome: boolean;
  /** True for OP_QUERY, which needs an OP_REPLY answer. */
  legacy: boolean;
}

/** Fields whose array elements are kept as raw BSON so inserts store exact bytes. */
const RAW_FIELDS = { documents: true } as const;

export function readHeader(buf: Buffer): MessageHeader {
  return {
    messageLength: buf.readInt32LE(0),
    requestID: buf.readInt32LE(4),
    responseTo: buf.readInt32LE(8),
    opCode: buf.readInt32LE(12),
  };
}

/**
 * Reassembles messages from socket chunks. Chunks are only concatenated once
 * a whole message is available, so large messages cost linear time.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(private readonly maxSize: number) {}

  /** Adds a chunk; returns every message now complete. Throws on an impossible length. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const messages: Buffer[] = [];
    for (;;) {
      if (this.length < 4) break;
      const head = this.chunks[0] as Buffer;
      const size = head.length >= 4 ? head.readInt32LE(0) : this.flatten().readInt32LE(0);
      if (size < HEADER_SIZE || size > this.maxSize) throw new Error(`invalid message length ${size}`);
      if (this.length < size) break;
      const all = this.flatten();
      messages.push(all.subarray(0, size));
      const rest = all.subarray(size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.length = rest.length;
    }
    return messages;
  }

  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0] as Buffer;
  }
}

function readCString(buf: Buffer, offset: number): { value: string; next: number } {
  const end = buf.indexOf(0, offset);
  if (end < 0) throw new Error('unterminated cstring');
  return { value: buf.toString('utf8', offset, end), next: end + 1 };
}

/** Splits concatenated BSON documents into raw (copied) Buffers. */
function splitDocuments(buf: Buffer, start: number, end: number): Buffer[] {
  const docs: Buffer[] = [];
  let offset = start;
  while (offset < end) {
    const size = buf.readInt32LE(offset);
    if (size < 5 || offset + size > end) throw new Error('malformed document sequence');
    docs.push(Buffer.from(buf.subarray(offset, offset + size)));
    offset += size;
  }
  return docs;
}

/** Parses an OP_MSG (header included). The CRC-32C trailer, if any, is ignored. */
export function parseOpMsg(msg: Buffer): IncomingCommand {
  const header = readHeader(msg);
  const flags = msg.readUInt32LE(HEADER_SIZE);
  const end = flags & FLAG_CHECKSUM_PRESENT ? msg.length - 4 : msg.length;
  let offset = HEADER_SIZE + 4;
  let body: Document | undefined;
  const sequences = new Map<string, Buffer[]>();
  while (offset < end) {
    const kind = msg.readUInt8(offset);
    offset += 1;
    if (kind === 0) {
      const size = msg.readInt32LE(offset);
      body = BSON.deserialize(msg.subarray(offset, offset + size), { ...EXACT_DECODE, fieldsAsRaw: RAW_FIELDS });
      offset += size;
    } else if (kind === 1) {
      const size = msg.readInt32LE(offset);
      const { value: id, next } = readCString(msg, offset + 4);
      const docs = splitDocuments(msg, next, offset + size);
      sequences.set(id, [...(sequences.get(id) ?? []), ...docs]);
      offset += size;
    } else {
      throw new Error(`unsupported OP_MSG section kind ${kind}`);
    }
  }
  if (!body) throw new Error('OP_MSG without a body section');
  return { header, body, sequences, moreToCome: (flags & FLAG_MORE_TO_COME) !== 0, legacy: false };
}

/**
 * Parses a legacy OP_QUERY command (`<db>.$cmd`). The query may be wrapped
 * as `{ $query: {...}, $readPreference }`; the `$db` field is filled in from
 * the collection name so commands look like their OP_MSG form.
 */
export function parseOpQuery(msg: Buffer): IncomingCommand {
  const header = readHeader(msg);
  const { value: fullName, next } = readCString(msg, HEADER_SIZE + 4);
  const queryStart = next + 8; // numberToSkip, numberToReturn
  const size = msg.readInt32LE(queryStart);
  let query = BSON.deserialize(msg.subarray(queryStart, queryStart + size), EXACT_DECODE);
  if (query.$query && typeof query.$query === 'object') query = query.$query as Document;
  const db = fullName.endsWith('.$cmd') ? fullName.slice(0, -'.$cmd'.length) : fullName.split('.')[0] ?? 'admin';
  return { header, body: { ...query, $db: db }, sequences: new Map(), moreToCome: false, legacy: true };
}

function header(length: number, requestID: number, responseTo: number, opCode: number): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  buf.writeInt32LE(length, 0);
  buf.writeInt32LE(requestID, 4);
  buf.writeInt32LE(responseTo, 8);
  buf.writeInt32LE(opCode, 12);
  return buf;
}

/** Builds an OP_MSG reply with a single kind-0 section holding `body` (already BSON). */
export function buildOpMsg(body: Buffer, requestID: number, responseTo: number): Buffer {
  const prefix = Buffer.alloc(5); // flagBits = 0, section kind 0
  const len = HEADER_SIZE + prefix.length + body.length;
  return Buffer.concat([header(len, requestID, responseTo, OP_MSG), prefix, body], len);
}

/** Builds an OP_REPLY carrying one document (`body`, already BSON). */
export function buildOpReply(body: Buffer, requestID: number, responseTo: number): Buffer {
  const fields = Buffer.alloc(20); // responseFlags, cursorID (int64), startingFrom, numberReturned
  fields.writeInt32LE(1, 16);
  const len = HEADER_SIZE + fields.length + body.length;
  return Buffer.concat([header(len, requestID, responseTo, OP_REPLY), fields, body], len);
}

/** Serializes a document to a Node Buffer (bson returns a Uint8Array type). */
export function serialize(doc: Document): Buffer {
  const bytes = BSON.serialize(doc, { ignoreUndefined: false });
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The elements of a serialized document, without its length prefix and terminator. */
function elementsOf(doc: Document): Buffer {
  const buf = serialize(doc);
  return buf.subarray(4, buf.length - 1);
}

function withLength(parts: Buffer[]): Buffer {
  const size = 4 + parts.reduce((n, p) => n + p.length, 0) + 1;
  const head = Buffer.alloc(4);
  head.writeInt32LE(size, 0);
  return Buffer.concat([head, ...parts, Buffer.from([0])], size);
}

function element(type: number, name: string, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), Buffer.from(name + '\0', 'utf8'), value]);
}

/** Encodes an array of raw BSON documents as a BSON array value, bytes untouched. */
export function rawArray(docs: readonly Buffer[]): Buffer {
  let size = 5;
  for (let i = 0; i < docs.length; i++) size += 2 + String(i).length + (docs[i] as Buffer).length;
  const out = Buffer.allocUnsafe(size);
  out.writeInt32LE(size, 0);
  let offset = 4;
  docs.forEach((doc, i) => {
    out[offset++] = 0x03;
    offset += out.write(String(i), offset, 'latin1');
    out[offset++] = 0;
    offset += doc.copy(out, offset);
  });
  out[offset] = 0;
  return out;
}

/**
 * Encodes `{ cursor: { <batchField>: [...raw docs], id, ns }, ok: 1 }`
 * without decoding the documents, so they are returned byte-for-byte.
 */
export function encodeCursorReply(batchField: 'firstBatch' | 'nextBatch', docs: readonly Buffer[], id: Long, ns: string): Buffer {
  const cursor = withLength([element(0x04, batchField, rawArray(docs)), elementsOf({ id, ns })]);
  return withLength([element(0x03, 'cursor', cursor), elementsOf({ ok: new Double(1) })]);
}
