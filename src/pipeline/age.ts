/**
 * age encryption (https://age-encryption.org/v1, C2SP age) of whole archives.
 *
 * The header (recipient stanzas, or an scrypt stanza for a passphrase, and its MAC) is made and
 * read by age-encryption (typage, by age's author). The payload is the spec's STREAM: 64 KiB
 * chunks, each sealed with ChaCha20-Poly1305 under a key derived from the file key and a 16-byte
 * nonce, the chunk's number in its nonce and a flag on the last one. It goes through Node's native
 * ChaCha20-Poly1305, several times faster than a JavaScript one; test/integration/age.test.ts
 * checks it against the `age` CLI both ways.
 *
 * Because every chunk is sealed on its own, a reader can decrypt any range by opening only the
 * chunks it covers (`openDecrypted`): restore gets random access into the zip inside, with every
 * byte authenticated as it is read and nothing decrypted written anywhere.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { Recipient } from 'age-encryption';
import { UsageError, VerificationError, errorMessage } from '../core/errors.js';
import type { ArchiveReader } from '../core/storage.js';

export const CHUNK = 64 * 1024;
const TAG = 16;
const SEALED = CHUNK + TAG;
const NONCE = 16;
const MAGIC = Buffer.from('age-encryption.org/v1\n');
const OUT_BATCH = 1 << 20;

/** typage, loaded on first use: it takes 170-220 ms to load, which commands without encryption skip. */
const typage = () => import('age-encryption');

export type AgeKeys = { recipients: string[]; passphrase?: undefined } | { recipients?: undefined; passphrase: string };

/** A new file's header and the file key it wraps. */
export async function makeHeader(keys: AgeKeys): Promise<{ header: Buffer; fileKey: Buffer }> {
  const { Decrypter, Encrypter } = await typage();
  const encrypter = new Encrypter();
  let captured: Uint8Array | undefined;
  if (keys.passphrase !== undefined) {
    encrypter.setPassphrase(keys.passphrase);
  } else {
    for (const recipient of keys.recipients) encrypter.addRecipient(recipient);
    // A recipient that adds no stanza and keeps the file key: the payload is sealed here.
    const keeper: Recipient = { wrapFileKey: (fileKey) => ((captured = fileKey), []) };
    encrypter.addRecipient(keeper);
  }
  const empty = Buffer.from(await encrypter.encrypt(new Uint8Array(0)));
  const header = empty.subarray(0, headerLength(empty));
  if (captured) return { header: Buffer.from(header), fileKey: Buffer.from(captured) };
  const decrypter = new Decrypter();
  decrypter.addPassphrase(keys.passphrase!);
  return { header: Buffer.from(header), fileKey: Buffer.from(await decrypter.decryptHeader(header)) };
}

/** Where the header ends: after its MAC line ("--- <mac>\n"); 0 while more bytes are needed. */
export function headerLength(data: Buffer): number {
  if (data.length < MAGIC.length) return 0;
  if (!data.subarray(0, MAGIC.length).equals(MAGIC)) throw new VerificationError('not an age file (no age-encryption.org/v1 header)');
  const mac = data.indexOf('\n--- ');
  if (mac === -1) return 0;
  const end = data.indexOf('\n', mac + 1);
  return end === -1 ? 0 : end + 1;
}

function payloadKey(fileKey: Buffer, nonce: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

function chunkNonce(index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(index, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function seal(key: Buffer, index: number, last: boolean, plain: Buffer): Buffer[] {
  const cipher = createCipheriv('chacha20-poly1305', key, chunkNonce(index, last), { authTagLength: TAG });
  const sealed = cipher.update(plain);
  cipher.final();
  return [sealed, cipher.getAuthTag()];
}

function open(key: Buffer, index: number, last: boolean, sealed: Buffer, name: string): Buffer {
  const decipher = createDecipheriv('chacha20-poly1305', key, chunkNonce(index, last), { authTagLength: TAG });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  const plain = decipher.update(sealed.subarray(0, sealed.length - TAG));
  try {
    decipher.final();
  } catch {
    throw new VerificationError(`${name}: the encrypted archive is damaged or truncated (chunk ${index + 1} fails authentication)`);
  }
  return plain;
}

/**
 * Encrypts what is written into one age file. Incoming bytes are copied as they arrive (the zip
 * writer reuses its buffers), a chunk is sealed only once a byte beyond it has come (the last
 * chunk carries the last-chunk flag), and the output is hashed: `sha256()` and `size` are those of
 * the age file, once it has ended.
 */
export class AgeEncrypt extends Transform {
  private readonly pending = Buffer.allocUnsafe(CHUNK);
  private filled = 0;
  private index = 0;
  private readonly hash: Hash = createHash('sha256');
  private digest: string | undefined;
  private out: Buffer[] = [];
  private outBytes = 0;
  size = 0;

  constructor(
    private readonly header: Buffer,
    private readonly key: Buffer,
    private readonly nonce: Buffer,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.emit_(header);
    this.emit_(nonce);
  }

  static async create(keys: AgeKeys): Promise<AgeEncrypt> {
    const { header, fileKey } = await makeHeader(keys);
    const nonce = randomBytes(NONCE);
    return new AgeEncrypt(header, payloadKey(fileKey, nonce), nonce);
  }

  sha256(): string {
    if (this.digest === undefined) throw new Error('the age file has not ended');
    return this.digest;
  }

  /** Output is handed on in pieces of about 1 MiB: a push per 64 KiB chunk costs a write each downstream. */
  private emit_(buffer: Buffer): void {
    this.out.push(buffer);
    this.outBytes += buffer.length;
    if (this.outBytes >= OUT_BATCH) this.flushOut();
  }

  private flushOut(): void {
    if (this.outBytes === 0) return;
    const piece = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    this.hash.update(piece);
    this.size += piece.length;
    this.push(piece);
  }

  private sealPending(last: boolean): void {
    for (const part of seal(this.key, this.index++, last, this.pending.subarray(0, this.filled))) this.emit_(part);
    this.filled = 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.filled === CHUNK) this.sealPending(false);
      const n = chunk.copy(this.pending, this.filled, at, Math.min(chunk.length, at + CHUNK - this.filled));
      this.filled += n;
      at += n;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.sealPending(true);
    this.flushOut();
    this.digest = this.hash.digest('hex');
    callback();
  }
}

/** Plaintext size of an age payload of `sealedBytes` (nonce excluded), or undefined if impossible. */
export function plainSize(sealedBytes: number): number | undefined {
  if (sealedBytes < TAG) return undefined;
  const chunks = Math.max(1, Math.ceil(sealedBytes / SEALED));
  const plain = sealedBytes - chunks * TAG;
  const lastPlain = plain - (chunks - 1) * CHUNK;
  if (plain < 0 || (chunks > 1 && lastPlain <= 0)) return undefined;
  return plain;
}

export interface KeyRing {
  /** Identity files' contents (`AGE-SECRET-KEY-1...` lines), with where each came from. */
  identities: { source: string; text: string }[];
  passphrases: string[];
}

/** The header of an age file, read from its start. */
async function readHeader(archive: ArchiveReader): Promise<Buffer> {
  let size = 4096;
  for (;;) {
    const want = Math.min(size, archive.size);
    const buffer = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const n = await archive.read(buffer, got, want - got, got);
      if (n === 0) break;
      got += n;
    }
    const length = headerLength(buffer.subarray(0, got));
    if (length > 0) return buffer.subarray(0, length);
    if (want >= archive.size || size >= 1 << 20) throw new VerificationError(`${archive.name}: the age header is incomplete`);
    size *= 4;
  }
}

/** The recipients' stanza lines of a header, for telling an operator whose key it wants. */
function stanzaTypes(header: Buffer): string[] {
  return header
    .toString('latin1')
    .split('\n')
    .filter((line) => line.startsWith('-> '))
    .map((line) => line.split(' ')[1] ?? '?');
}

/**
 * The plaintext of an age file as an ArchiveReader: ranges are read by decrypting the chunks they
 * cover, each authenticated before a byte of it is handed on. `recipients` (from the sidecar)
 * name the keys it was made for, for the error when none of `keys` opens it.
 */
export async function openDecrypted(archive: ArchiveReader, keys: KeyRing, recipients: string[] | undefined, what: string): Promise<ArchiveReader> {
  const header = await readHeader(archive);
  const { Decrypter } = await typage();
  const decrypter = new Decrypter();
  for (const identity of keys.identities) {
    for (const line of identity.text.split('\n').map((l) => l.trim())) {
      if (!line || line.startsWith('#')) continue;
      try {
        decrypter.addIdentity(line);
      } catch (error) {
        throw new UsageError(`${identity.source}: not an age identity file (${errorMessage(error)})`, { hint: 'An identity file holds AGE-SECRET-KEY-1... lines, as age-keygen writes them.' });
      }
    }
  }
  for (const passphrase of keys.passphrases) decrypter.addPassphrase(passphrase);
  let fileKey: Buffer;
  try {
    fileKey = Buffer.from(await decrypter.decryptHeader(header));
  } catch (error) {
    const message = errorMessage(error);
    if (/no identity matched/i.test(message)) {
      const types = stanzaTypes(header);
      if (types.includes('scrypt')) {
        throw new UsageError(`${what}: the passphrase does not open it`, { hint: 'It was encrypted with a passphrase: set encryption.passphrase of the target to that passphrase.' });
      }
      const wanted = recipients?.length ? `its recipients: ${recipients.join(', ')}` : `its header asks for: ${types.join(', ')}`;
      throw new UsageError(`${what}: none of the identities given opens it (${wanted})`, {
        hint: `Give the identity of one of them with --identity <file> (or BACKUPKIT_IDENTITY_FILE, or encryption.identityFile). Given: ${keys.identities.map((i) => i.source).join(', ') || (keys.passphrases.length ? 'a passphrase' : 'nothing')}.`,
      });
    }
    throw new VerificationError(`${what}: the age header is damaged (${message})`, { cause: error });
  }
  const nonce = Buffer.alloc(NONCE);
  const start = header.length + NONCE;
  if (archive.size < start) throw new VerificationError(`${what}: the encrypted archive is truncated`);
  await readExactly(archive, nonce, header.length, what);
  const key = payloadKey(fileKey, nonce);
  const sealedBytes = archive.size - start;
  const size = plainSize(sealedBytes);
  if (size === undefined) throw new VerificationError(`${what}: the encrypted archive is truncated (${sealedBytes} payload bytes cannot be age chunks)`);
  const chunks = Math.max(1, Math.ceil(sealedBytes / SEALED));
  const cache = new Map<number, Promise<Buffer>>();

  const chunkAt = (index: number): Promise<Buffer> => {
    let cached = cache.get(index);
    if (cached) return cached;
    cached = (async () => {
      const from = start + index * SEALED;
      const length = Math.min(SEALED, archive.size - from);
      const sealed = Buffer.alloc(length);
      await readExactly(archive, sealed, from, what);
      return open(key, index, index === chunks - 1, sealed, what);
    })();
    cached.catch(() => cache.delete(index));
    cache.set(index, cached);
    while (cache.size > 32) cache.delete(cache.keys().next().value!);
    return cached;
  };

  async function* range(from: number, to: number): AsyncGenerator<Buffer> {
    if (to <= from) return;
    const first = Math.floor(from / CHUNK);
    const last = Math.floor((to - 1) / CHUNK);
    // One ranged read for the whole span, cut into chunks as it comes.
    const sealedStart = start + first * SEALED;
    const sealedEnd = Math.min(archive.size, start + (last + 1) * SEALED);
    let index = first;
    const emit = function* (sealed: Buffer): Generator<Buffer> {
      const plain = open(key, index, index === chunks - 1, sealed, what);
      const base = index * CHUNK;
      const lo = Math.max(0, from - base);
      const hi = Math.min(plain.length, to - base);
      index++;
      if (hi > lo) yield lo === 0 && hi === plain.length ? plain : plain.subarray(lo, hi);
    };
    let held: Buffer = Buffer.alloc(0);
    for await (const piece of archive.stream(sealedStart, sealedEnd) as AsyncIterable<Buffer>) {
      held = held.length > 0 ? Buffer.concat([held, piece]) : piece;
      while (held.length >= SEALED && index <= last) {
        yield* emit(held.subarray(0, SEALED));
        held = held.subarray(SEALED);
      }
    }
    // What is left is the file's last chunk, shorter than the others.
    if (index === last && index === chunks - 1 && held.length >= TAG) yield* emit(held);
    if (index <= last) throw new VerificationError(`${what}: the encrypted archive ends early`);
  }

  return {
    name: what,
    size,
    localPath: undefined,
    async read(buffer, offset, length, position) {
      const end = Math.min(size, position + length);
      let copied = 0;
      for (let at = position; at < end; ) {
        const index = Math.floor(at / CHUNK);
        const plain = await chunkAt(index);
        const from = at - index * CHUNK;
        const n = Math.min(plain.length - from, end - at);
        if (n <= 0) break;
        plain.copy(buffer, offset + copied, from, from + n);
        copied += n;
        at += n;
      }
      return copied;
    },
    stream: (from, to) => Readable.from(range(from, Math.min(to, size)), { objectMode: false, highWaterMark: 1 << 20 }),
    // The age file underneath belongs to the caller, who closes it.
    async close() {
      cache.clear();
    },
  };
}

async function readExactly(archive: ArchiveReader, buffer: Buffer, position: number, what: string): Promise<void> {
  let got = 0;
  while (got < buffer.length) {
    const n = await archive.read(buffer, got, buffer.length - got, position + got);
    if (n === 0) throw new VerificationError(`${what}: the encrypted archive ends early`);
    got += n;
  }
}

/** Is this an age file? (Its first bytes.) */
export function isAgeFile(head: Buffer): boolean {
  return head.subarray(0, MAGIC.length).equals(MAGIC);
}
