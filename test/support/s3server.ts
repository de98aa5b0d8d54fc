/**
 * The S3 service the tests use: s3rver 3.7.1 run in this process on a free loopback port, data in a
 * temp folder, one bucket; or, when BACKUPKIT_TEST_S3_URL is set
 * (http(s)://ACCESS_KEY:SECRET@host:port/bucket?region=us-east-1[&forcePathStyle=false], user info
 * percent-decoded), that service, started by no one and only cleaned under `prefix` by stop().
 *
 * s3rver answers the S3 API only in part. Koa middleware placed just before its router (after its
 * logger, XML encoder and vhost middleware; s3rver's own authentication middleware is run first)
 * serves these operations as the S3 API reference documents them:
 * - ListObjects (V1 and V2): s3rver walks its folders in readdir order, so a listing is not in key
 *   order ("x/a" came before "x-1" and "x") and its paging skips keys; its continuation token is
 *   DES-encrypted, which Node 20's OpenSSL 3 refuses (every truncated V2 listing was a 500).
 *   Served here sorted by UTF-8 bytes, with prefix, delimiter, max-keys (at most 1000),
 *   start-after, marker and continuation-token. No EncodingType is ever returned: keys are raw.
 * - GetObject, HeadObject: s3rver read Range "bytes=0-0" as the whole object and "bytes=-N" as
 *   "bytes=0-N", and ignored If-Match and If-Unmodified-Since. Served here: one range (first-last,
 *   first-, -suffix; 416 InvalidRange when unsatisfiable, several ranges or bad syntax give the whole
 *   object), If-Match and If-Unmodified-Since (412), If-None-Match and If-Modified-Since (304),
 *   response-* header overrides.
 * - PutObject: s3rver wrote the body straight into the object, so a request cut short left a
 *   truncated object in place, and stored an aws-chunked body with its chunk framing. Here the body
 *   goes to a temp file first and only a complete body replaces the object (a rename). aws-chunked
 *   bodies (signed or unsigned, with trailers) are decoded; Content-MD5 (BadDigest, InvalidDigest),
 *   a hex x-amz-content-sha256 (XAmzContentSHA256Mismatch) and x-amz-checksum-crc32/sha1/sha256,
 *   as header or trailer (BadDigest), are checked; crc32c and crc64nvme are accepted unchecked. No
 *   Content-Length (nor x-amz-decoded-content-length) is 411 MissingContentLength, as on AWS.
 * - Conditional writes on PutObject and CompleteMultipartUpload, judged when the write commits
 *   (of two racing writes the first to finish wins): If-None-Match "*" fails 412 PreconditionFailed
 *   when the key exists; If-Match fails 412 when the ETag differs and 404 NoSuchKey when the key is
 *   missing (AWS's documented answer, not 412); If-None-Match with an ETag, or both headers, is 501
 *   NotImplemented. ETags compare without quotes; If-Match "*" matches any existing object.
 * - DeleteObject with If-Match: 412 when the ETag differs, 404 NoSuchKey when the key is missing.
 * - DeleteObjects (POST ?delete): 400 InvalidRequest without Content-MD5 or an x-amz-checksum-*
 *   header, as on AWS; keys are taken verbatim (s3rver's XML parser made key "0042" the number 42,
 *   a 500, and trimmed " padded " to "padded"), Quiet is honoured, per-object ETag conditions
 *   answer in <Error>.
 * - UploadPart: s3rver created an unknown upload's folder and took the part; here 404 NoSuchUpload,
 *   also when the upload is aborted while the part is in flight. Part numbers 1-10000.
 * - CompleteMultipartUpload: 404 NoSuchUpload for an unknown or aborted upload (s3rver: 500);
 *   400 InvalidPart for a part not uploaded or of another ETag, InvalidPartOrder, EntityTooSmall for a
 *   part other than the last under 5 MiB; the object's ETag is S3's multipart form,
 *   "<md5 of the parts' md5s>-<part count>", not the md5 of the whole.
 * - AbortMultipartUpload (s3rver: 405): 204, removes <data>/<bucket>/._S3rver_uploads/<uploadId>/;
 *   404 NoSuchUpload for an unknown one.
 * - ListMultipartUploads (s3rver: 501): prefix, delimiter, key-marker, upload-id-marker,
 *   max-uploads (at most 1000); uploads in key order, then by initiation time.
 * - ListParts (s3rver: 405): part-number-marker, max-parts.
 * - HeadBucket answers without listing the bucket.
 * CreateMultipartUpload, CopyObject, tagging and bucket configuration stay s3rver's.
 *
 * What a client of this server must respect: path-style addressing (forcePathStyle: true) to
 * http://127.0.0.1:PORT; access key id S3RVER (s3rver checks the key id but verifies no V4
 * signature, so any secret passes); requestChecksumCalculation "WHEN_REQUIRED" is what client()
 * sets, though the default "WHEN_SUPPORTED" works too (aws-chunked bodies are decoded), except that
 * the SDK itself cannot send a stream of unknown length that way; a body of unknown length must go
 * through @aws-sdk/lib-storage's Upload, since PutObject needs a length (411, as on AWS); multipart
 * parts other than the last must be 5 MiB or more.
 *
 * Fault injection (`faults`) works at the HTTP server, before Koa: it sees and logs every request,
 * and can answer with an S3 error, drop the connection, hold the request unanswered, or take the
 * whole listener down and up again on the same port.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { freePort } from './ports.js';

export interface StartS3ServerOptions {
  /** The bucket the local server creates; default "backups". Ignored for BACKUPKIT_TEST_S3_URL. */
  bucket?: string;
}

/** A request as fault rules and the request log see it; `path` is the decoded URL path. */
export interface S3Request {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

export type FaultAction = { status: number; code?: string } | 'reset' | 'stall';

export interface FaultRule {
  /** HTTP method, any case. */
  method?: string;
  match?: (req: S3Request) => boolean;
  /** How many matching requests fail; default 1. */
  count?: number;
  action: FaultAction;
}

export interface FaultControl {
  /**
   * The next `count` requests that match fail: `status` answers with that HTTP status and an S3 XML
   * error (the code defaults to InternalError for 500, SlowDown for 503, ...); 'reset' destroys the
   * socket without a response; 'stall' reads the request and never answers, until clear(), down()
   * or stop() drops its connection. Rules are tried in the order injected.
   */
  inject(rule: FaultRule): void;
  /** Drops every rule and every stalled request's connection; the log stays. */
  clear(): void;
  /** Closes the listener and destroys every open socket: requests meet ECONNREFUSED or ECONNRESET. */
  down(): Promise<void>;
  /** Listens again on the same port, with the same data. */
  up(): Promise<void>;
  /** Every request received, in order, faulted ones included; `query` is the raw query string. */
  requests: { method: string; path: string; query: string }[];
}

export interface S3TestServer {
  /** http://127.0.0.1:PORT, or the BACKUPKIT_TEST_S3_URL service's scheme, host and port. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  /** True when the service is BACKUPKIT_TEST_S3_URL's. */
  real: boolean;
  canInjectFaults: boolean;
  /** A fresh "backupkit-test-<hex>/" for this call: tests write under it; stop() empties it when real. */
  prefix: string;
  /** The SDK config for this service, `overrides` last. */
  clientConfig(overrides?: S3ClientConfig): S3ClientConfig;
  /** A new SDK client for this service (destroyed by stop()). */
  client(overrides?: S3ClientConfig): S3Client;
  /** Every object key under `prefix` (default: the whole bucket), in S3's order. */
  keys(prefix?: string): Promise<string[]>;
  /** Multipart uploads under `prefix` (default: the whole bucket) neither completed nor aborted. */
  openUploads(prefix?: string): Promise<{ key: string; uploadId: string }[]>;
  /** Throws Error('fault injection needs the local S3 test server') on any use when real. */
  faults: FaultControl;
  /**
   * Local: closes the server (destroying open sockets) and removes the temp folder. Real: deletes
   * every object and aborts every open upload under `prefix`. Both destroy the clients made.
   */
  stop(): Promise<void>;
}

const DEFAULT_BUCKET = 'backups';
const REGION = 'us-east-1';
const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';
const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_KEYS = 1000;
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

// ---------------------------------------------------------------------------------------------
// Request predicates for fault rules.

function splitPath(p: string): { bucket: string; key: string } {
  const rest = p.replace(/^\//, '');
  const slash = rest.indexOf('/');
  return slash < 0 ? { bucket: rest, key: '' } : { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}

/** The object key a request addresses (path-style), or undefined for bucket and service requests. */
export function keyOf(req: S3Request): string | undefined {
  return splitPath(req.path).key || undefined;
}

const isObjectRequest = (req: S3Request) => keyOf(req) !== undefined;
export const isPutObject = (req: S3Request): boolean =>
  req.method === 'PUT' && isObjectRequest(req) && !req.query.has('uploadId') && !req.query.has('tagging') && !req.query.has('acl') && !('x-amz-copy-source' in req.headers);
export const isUploadPart = (req: S3Request): boolean => req.method === 'PUT' && req.query.has('uploadId') && req.query.has('partNumber');
export const isCreateMultipartUpload = (req: S3Request): boolean => req.method === 'POST' && isObjectRequest(req) && req.query.has('uploads');
export const isComplete = (req: S3Request): boolean => req.method === 'POST' && isObjectRequest(req) && req.query.has('uploadId');
export const isAbort = (req: S3Request): boolean => req.method === 'DELETE' && isObjectRequest(req) && req.query.has('uploadId');
export const isGetObject = (req: S3Request): boolean => req.method === 'GET' && isObjectRequest(req) && !req.query.has('uploadId') && !req.query.has('tagging') && !req.query.has('acl');
export const isHeadObject = (req: S3Request): boolean => req.method === 'HEAD' && isObjectRequest(req);
export const isDeleteObject = (req: S3Request): boolean => req.method === 'DELETE' && isObjectRequest(req) && !req.query.has('uploadId');
export const isDeleteObjects = (req: S3Request): boolean => req.method === 'POST' && !isObjectRequest(req) && req.query.has('delete');
export const isListObjects = (req: S3Request): boolean => req.method === 'GET' && !isObjectRequest(req) && splitPath(req.path).bucket !== '' && [...req.query.keys()].every((k) => LIST_PARAMS.has(k));
export const isListUploads = (req: S3Request): boolean => req.method === 'GET' && !isObjectRequest(req) && req.query.has('uploads');
/** `predicate` for requests on exactly `key`. */
export const onKey =
  (key: string, predicate: (req: S3Request) => boolean = () => true) =>
  (req: S3Request): boolean =>
    keyOf(req) === key && predicate(req);

const LIST_PARAMS = new Set(['list-type', 'prefix', 'delimiter', 'max-keys', 'marker', 'start-after', 'continuation-token', 'fetch-owner', 'encoding-type', 'x-id']);

// ---------------------------------------------------------------------------------------------
// s3rver internals, as far as this file relies on them.

const requireFromHere = createRequire(import.meta.url);

type Metadata = Record<string, string | number | undefined>;

interface FilesystemStore {
  getBucket(bucket: string): Promise<unknown>;
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<Metadata>;
  putMetadata(bucket: string, key: string, metadata: Metadata, md5?: string): Promise<void>;
}

interface KoaContext {
  method: string;
  path: string;
  querystring: string;
  origin: string;
  headers: IncomingHttpHeaders;
  req: IncomingMessage;
  status: number;
  body: unknown;
  length: number;
  params?: Record<string, string>;
  set(field: string, value: string): void;
}

type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

interface S3rverApp {
  middleware: (Middleware & { router?: unknown })[];
  store: FilesystemStore;
  logger: { close(): void };
  configureBuckets(): Promise<unknown>;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}

type S3ErrorInstance = Error & { code: string; status: number; expose: boolean };
type S3ErrorClass = new (code: string, message: string, detail?: Record<string, unknown>) => S3ErrorInstance;

const S3rver = requireFromHere('s3rver') as new (options: Record<string, unknown>) => S3rverApp;
const S3Error = requireFromHere('s3rver/lib/models/error.js') as S3ErrorClass;
const S3Object = requireFromHere('s3rver/lib/models/object.js') as (new (bucket: string, key: string, content: null, metadata: Metadata) => unknown) & {
  ALLOWED_METADATA: string[];
};
const { DUMMY_ACCOUNT } = requireFromHere('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: { id: number; displayName: string } };
const s3rverAuthentication = requireFromHere('s3rver/lib/middleware/authentication.js') as () => Middleware;
const SUBRESOURCES = new Set<string>([
  ...(requireFromHere('s3rver/lib/controllers/bucket.js') as { METHODS: string[] }).METHODS,
  ...(requireFromHere('s3rver/lib/controllers/object.js') as { METHODS: string[] }).METHODS,
]);

function s3Error(code: string, message: string, status: number, detail: Record<string, unknown> = {}): S3ErrorInstance {
  const error = new S3Error(code, message, detail);
  error.status = status;
  error.expose = status < 500;
  return error;
}

const noSuchKey = (key: string) => s3Error('NoSuchKey', 'The specified key does not exist.', 404, { Key: key });
const noSuchUpload = (uploadId: string) =>
  s3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', 404, {
    UploadId: uploadId,
  });
const preconditionFailed = (condition: string) =>
  s3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', 412, { Condition: condition });
const invalidArgument = (message: string, name: string, value: string) =>
  s3Error('InvalidArgument', message, 400, { ArgumentName: name, ArgumentValue: value });

function isMissingFile(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

const compareKeys = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const unquote = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');

/** True when an If-Match / If-None-Match list names `etag` ("*" names any). */
function etagListMatches(list: string, etag: string): boolean {
  return list.split(',').some((item) => item.trim() === '*' || unquote(item) === unquote(etag));
}

function xmlDecode(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_m, entity: string) => {
    const e = entity.toLowerCase();
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

function xmlElements(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);
}

function xmlValue(xml: string, tag: string): string | undefined {
  const [inner] = xmlElements(xml, tag);
  return inner === undefined ? undefined : xmlDecode(inner.replace(/^<!\[CDATA\[([\s\S]*)\]\]>$/, '$1'));
}

function parseCount(value: string | null, name: string, max: number): number {
  if (value === null) return max;
  if (!/^\d+$/.test(value)) throw invalidArgument(`Provided ${name} not an integer or within integer range`, name, value);
  return Math.min(max, Number(value));
}

// ---------------------------------------------------------------------------------------------
// Request bodies.

const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** aws-chunked: "<hex size>[;chunk-signature=...]\r\n<bytes>\r\n" ... "0...\r\n", trailers, "\r\n". */
class AwsChunkedDecoder extends Transform {
  readonly trailers: Record<string, string> = {};
  failure: string | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private state: 'size' | 'data' | 'crlf' | 'trailer' | 'done' = 'size';
  private remaining = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.failure || this.state === 'done') return callback();
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.decode();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.failure && !(this.state === 'done' || (this.state === 'trailer' && this.pending.length === 0))) this.failure = 'the aws-chunked body ended early';
    callback();
  }

  private line(): string | undefined {
    const end = this.pending.indexOf('\r\n');
    if (end < 0) {
      if (this.pending.length > 8192) this.failure = 'an aws-chunked header line is too long';
      return undefined;
    }
    const text = this.pending.subarray(0, end).toString('latin1');
    this.pending = this.pending.subarray(end + 2);
    return text;
  }

  private decode(): void {
    while (!this.failure) {
      if (this.state === 'size') {
        const text = this.line();
        if (text === undefined) return;
        const size = text.split(';')[0]!.trim();
        if (!/^[0-9a-fA-F]+$/.test(size)) {
          this.failure = `bad aws-chunked chunk size ${JSON.stringify(size)}`;
          return;
        }
        this.remaining = parseInt(size, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (this.state === 'data') {
        if (this.pending.length === 0) return;
        const take = Math.min(this.remaining, this.pending.length);
        this.push(this.pending.subarray(0, take));
        this.pending = this.pending.subarray(take);
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'crlf';
      } else if (this.state === 'crlf') {
        if (this.pending.length < 2) return;
        if (this.pending[0] !== 0x0d || this.pending[1] !== 0x0a) {
          this.failure = 'an aws-chunked chunk is longer than its size';
          return;
        }
        this.pending = this.pending.subarray(2);
        this.state = 'size';
      } else if (this.state === 'trailer') {
        const text = this.line();
        if (text === undefined) return;
        if (text === '') {
          this.state = 'done';
          return;
        }
        const colon = text.indexOf(':');
        if (colon > 0) this.trailers[text.slice(0, colon).trim().toLowerCase()] = text.slice(colon + 1).trim();
      } else {
        return;
      }
    }
  }
}

interface ReceivedBody {
  size: number;
  md5: Buffer;
  /** The body, when received into memory. */
  data?: Buffer;
}

/**
 * Reads a request body into `file` (or memory), decoding aws-chunked, and checks its length and
 * every checksum the request declares. A failed check removes the file and throws the S3 error.
 */
async function receiveBody(req: IncomingMessage, file: string | undefined): Promise<ReceivedBody> {
  const headers = req.headers;
  const encodings = (headerOf(headers, 'content-encoding') ?? '').split(',').map((s) => s.trim().toLowerCase());
  const contentSha = headerOf(headers, 'x-amz-content-sha256') ?? '';
  const chunked = encodings.includes('aws-chunked') || contentSha.startsWith('STREAMING-');
  const declared = chunked ? headerOf(headers, 'x-amz-decoded-content-length') : headerOf(headers, 'content-length');
  if (declared === undefined || !/^\d+$/.test(declared)) {
    throw s3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.', 411);
  }
  const wanted = new Set<ChecksumAlgorithm>();
  const trailerNames = (headerOf(headers, 'x-amz-trailer') ?? '').split(',').map((s) => s.trim().toLowerCase());
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    if (headers[`x-amz-checksum-${algorithm}`] !== undefined || trailerNames.includes(`x-amz-checksum-${algorithm}`)) wanted.add(algorithm);
  }
  const hexSha = /^[0-9a-fA-F]{64}$/.test(contentSha);
  const md5 = createHash('md5');
  const sha256: Hash | undefined = hexSha || wanted.has('sha256') ? createHash('sha256') : undefined;
  const sha1: Hash | undefined = wanted.has('sha1') ? createHash('sha1') : undefined;
  let crc: number | undefined = wanted.has('crc32') && typeof zlib.crc32 === 'function' ? 0 : undefined;
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      md5.update(chunk);
      sha256?.update(chunk);
      sha1?.update(chunk);
      if (crc !== undefined) crc = zlib.crc32(chunk, crc);
      callback(null, chunk);
    },
  });
  const chunks: Buffer[] = [];
  const sink =
    file !== undefined
      ? createWriteStream(file)
      : new Writable({
          write(chunk: Buffer, _encoding, callback) {
            chunks.push(chunk);
            callback();
          },
        });
  const decoder = chunked ? new AwsChunkedDecoder() : undefined;
  const fail = async (error: unknown): Promise<never> => {
    if (file !== undefined) await fsp.rm(file, { force: true });
    throw error;
  };
  try {
    if (decoder) await pipeline(req, decoder, meter, sink);
    else await pipeline(req, meter, sink);
  } catch (error) {
    return fail(error);
  }
  if (decoder?.failure) return fail(s3Error('IncompleteBody', `The request body is not valid aws-chunked encoding: ${decoder.failure}.`, 400));
  if (size !== Number(declared)) {
    return fail(s3Error('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.', 400));
  }
  const md5Digest = md5.digest();
  const contentMd5 = headerOf(headers, 'content-md5');
  if (contentMd5 !== undefined) {
    const given = Buffer.from(contentMd5, 'base64');
    if (given.length !== 16) return fail(s3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.', 400, { 'Content-MD5': contentMd5 }));
    if (!given.equals(md5Digest)) {
      return fail(s3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.', 400, { ExpectedDigest: contentMd5, CalculatedDigest: md5Digest.toString('base64') }));
    }
  }
  const sha256Digest = sha256?.digest();
  if (hexSha && sha256Digest && sha256Digest.toString('hex') !== contentSha.toLowerCase()) {
    return fail(
      s3Error('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", 400, {
        ClientComputedContentSHA256: contentSha,
        S3ComputedContentSHA256: sha256Digest.toString('hex'),
      }),
    );
  }
  const computed: Partial<Record<ChecksumAlgorithm, string>> = {};
  if (sha256Digest) computed.sha256 = sha256Digest.toString('base64');
  if (sha1) computed.sha1 = sha1.digest('base64');
  if (crc !== undefined) {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(crc >>> 0);
    computed.crc32 = bytes.toString('base64');
  }
  for (const algorithm of wanted) {
    const given = decoder?.trailers[`x-amz-checksum-${algorithm}`] ?? headerOf(headers, `x-amz-checksum-${algorithm}`);
    const ours = computed[algorithm];
    if (given !== undefined && ours !== undefined && given.trim() !== ours) {
      return fail(s3Error('BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`, 400));
    }
  }
  return { size, md5: md5Digest, ...(file === undefined ? { data: Buffer.concat(chunks) } : {}) };
}

// ---------------------------------------------------------------------------------------------
// The middleware.

interface Upload {
  uploadId: string;
  key: string;
  dir: string;
  initiated: Date;
  metadata: Metadata;
}

interface Route {
  bucket: string;
  key: string;
  query: URLSearchParams;
}

function extensions(app: S3rverApp, tmpDir: string): Middleware {
  const store = app.store;
  const authenticate = s3rverAuthentication();
  const objectSuffix = path.basename(store.getResourcePath('b', 'k', 'object')).slice(1);
  const uploadsDir = (bucket: string) => store.getResourcePath(bucket, undefined, 'uploads');
  const locks = new Map<string, Promise<void>>();
  let tmpCounter = 0;
  const tmpFile = () => path.join(tmpDir, `${process.pid}-${++tmpCounter}-${randomBytes(4).toString('hex')}`);

  /** Runs `fn` after every earlier holder of `id` has finished. */
  async function withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    locks.set(id, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (locks.get(id) === tail) locks.delete(id);
    }
  }

  async function metadataOf(bucket: string, key: string): Promise<Metadata | undefined> {
    try {
      return await store.getMetadata(bucket, key);
    } catch (error) {
      if (isMissingFile(error)) return undefined;
      throw error;
    }
  }

  async function checkWritePreconditions(ctx: KoaContext, bucket: string, key: string): Promise<void> {
    const ifMatch = headerOf(ctx.headers, 'if-match');
    const ifNoneMatch = headerOf(ctx.headers, 'if-none-match');
    if (ifMatch === undefined && ifNoneMatch === undefined) return;
    if (ifMatch !== undefined && ifNoneMatch !== undefined) {
      throw s3Error('NotImplemented', 'A header you provided implies functionality that is not implemented', 501, { Header: 'If-Match,If-None-Match' });
    }
    if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
      throw s3Error('NotImplemented', 'A header you provided implies functionality that is not implemented', 501, { Header: 'If-None-Match' });
    }
    const current = await metadataOf(bucket, key);
    if (ifNoneMatch !== undefined && current) throw preconditionFailed('If-None-Match');
    if (ifMatch !== undefined) {
      if (!current) throw noSuchKey(key);
      if (!etagListMatches(ifMatch, String(current.etag))) throw preconditionFailed('If-Match');
    }
  }

  /** Moves a complete body into place as `key`, with `etag` (unquoted) and the stored metadata. */
  async function commitObject(bucket: string, key: string, file: string, headers: Metadata, etag: string): Promise<void> {
    const metadata: Metadata = { ...headers };
    const encoding = String(metadata['content-encoding'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s && s.toLowerCase() !== 'aws-chunked')
      .join(', ');
    if (encoding) metadata['content-encoding'] = encoding;
    else delete metadata['content-encoding'];
    const objectPath = store.getResourcePath(bucket, key, 'object');
    for (let attempt = 1; ; attempt++) {
      try {
        await fsp.mkdir(path.dirname(objectPath), { recursive: true });
        await store.putMetadata(bucket, key, metadata, etag);
        await fsp.rename(file, objectPath);
        return;
      } catch (error) {
        // A delete of the folder's last other object may remove the folder in between.
        if (attempt >= 5 || !isMissingFile(error)) throw error;
      }
    }
  }

  async function removeObject(bucket: string, key: string): Promise<void> {
    await Promise.all(['object', 'object.md5', 'metadata.json'].map((resource) => fsp.rm(store.getResourcePath(bucket, key, resource), { force: true })));
    const bucketPath = store.getBucketPath(bucket);
    const parts = key.split('/').slice(0, -1);
    while (parts.length) {
      try {
        await fsp.rmdir(path.join(bucketPath, ...parts));
      } catch {
        return;
      }
      parts.pop();
    }
  }

  async function upload(bucket: string, uploadId: string | null, key?: string): Promise<Upload> {
    if (!uploadId || !/^[A-Za-z0-9_.-]+$/.test(uploadId) || uploadId.startsWith('.')) throw noSuchUpload(uploadId ?? '');
    const dir = path.join(uploadsDir(bucket), uploadId);
    try {
      const [storedKey, stat, metadata] = await Promise.all([
        fsp.readFile(path.join(dir, 'key'), 'utf8'),
        fsp.stat(path.join(dir, 'key')),
        fsp.readFile(path.join(dir, 'metadata'), 'utf8').then((text) => JSON.parse(text) as Metadata),
      ]);
      if (key !== undefined && storedKey !== key) throw noSuchUpload(uploadId);
      return { uploadId, key: storedKey, dir, initiated: stat.mtime, metadata };
    } catch (error) {
      if (isMissingFile(error)) throw noSuchUpload(uploadId);
      throw error;
    }
  }

  async function allUploads(bucket: string): Promise<Upload[]> {
    let ids: string[];
    try {
      ids = await fsp.readdir(uploadsDir(bucket));
    } catch (error) {
      if (isMissingFile(error)) return [];
      throw error;
    }
    const found = await Promise.all(ids.map((id) => upload(bucket, id).catch(() => undefined)));
    return found
      .filter((u): u is Upload => u !== undefined)
      .sort((a, b) => compareKeys(a.key, b.key) || a.initiated.getTime() - b.initiated.getTime() || compareKeys(a.uploadId, b.uploadId));
  }

  async function allKeys(bucket: string, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const uploadsName = path.basename(uploadsDir(bucket));
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (isMissingFile(error)) return;
        throw error;
      }
      for (const entry of entries) {
        if (entry.isDirectory()) {
          if (rel === '' && entry.name === uploadsName) continue;
          const sub = `${rel}${entry.name}/`;
          if (sub.startsWith(prefix) || prefix.startsWith(sub)) await walk(path.join(dir, entry.name), sub);
        } else if (entry.name.endsWith(objectSuffix)) {
          const key = rel + entry.name.slice(0, -objectSuffix.length);
          if (key.startsWith(prefix)) keys.push(key);
        }
      }
    };
    await walk(store.getBucketPath(bucket), '');
    return keys.sort(compareKeys);
  }

  /** True when `marker` is a common prefix of this listing, whose keys all come before the next page. */
  function isCommonPrefix(marker: string, prefix: string, delimiter: string): boolean {
    if (!delimiter || !marker.startsWith(prefix)) return false;
    const rest = marker.slice(prefix.length);
    const at = rest.indexOf(delimiter);
    return at >= 0 && at + delimiter.length === rest.length;
  }

  function commonPrefixOf(name: string, prefix: string, delimiter: string): string | undefined {
    if (!delimiter) return undefined;
    const at = name.slice(prefix.length).indexOf(delimiter);
    return at < 0 ? undefined : name.slice(0, prefix.length + at + delimiter.length);
  }

  async function listObjects(ctx: KoaContext, { bucket, query }: Route): Promise<void> {
    const v2 = query.get('list-type') === '2';
    const prefix = query.get('prefix') ?? '';
    const delimiter = query.get('delimiter') ?? '';
    const maxKeys = parseCount(query.get('max-keys'), 'max-keys', MAX_KEYS);
    let after: string | undefined;
    const token = query.get('continuation-token');
    if (v2) {
      if (query.has('marker')) throw invalidArgument('Marker unsupported with REST.GET.BUCKET in list-type=2', 'marker', query.get('marker')!);
      if (token !== null) {
        const decoded = Buffer.from(token, 'base64url').toString('utf8');
        if (!decoded.startsWith('v1\n') || Buffer.from(decoded, 'utf8').toString('base64url') !== token) {
          throw invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
        }
        after = decoded.slice(3);
      } else {
        after = query.get('start-after') ?? undefined;
      }
    } else {
      after = query.get('marker') || undefined;
    }
    const skipUnder = after !== undefined && isCommonPrefix(after, prefix, delimiter);
    const contents: string[] = [];
    const prefixes: string[] = [];
    let last: string | undefined;
    let truncated = false;
    if (maxKeys > 0) {
      for (const key of await allKeys(bucket, prefix)) {
        if (after !== undefined && (compareKeys(key, after) <= 0 || (skipUnder && key.startsWith(after)))) continue;
        const common = commonPrefixOf(key, prefix, delimiter);
        if (common !== undefined && common === prefixes[prefixes.length - 1]) continue;
        if (contents.length + prefixes.length === maxKeys) {
          truncated = true;
          break;
        }
        if (common !== undefined) prefixes.push(common);
        else contents.push(key);
        last = common ?? key;
      }
    }
    const objects = (await Promise.all(contents.map(async (key) => ({ key, metadata: await metadataOf(bucket, key) })))).filter((o) => o.metadata);
    const owner = { ID: DUMMY_ACCOUNT.id, DisplayName: DUMMY_ACCOUNT.displayName };
    const withOwner = !v2 || query.get('fetch-owner') === 'true';
    ctx.body = {
      ListBucketResult: {
        '@': { xmlns: XMLNS },
        Name: bucket,
        Prefix: prefix,
        ...(v2
          ? {
              StartAfter: token === null ? (query.get('start-after') ?? undefined) : undefined,
              ContinuationToken: token ?? undefined,
              NextContinuationToken: truncated && last !== undefined ? Buffer.from(`v1\n${last}`, 'utf8').toString('base64url') : undefined,
              KeyCount: objects.length + prefixes.length,
            }
          : { Marker: query.get('marker') ?? '', NextMarker: truncated && delimiter ? last : undefined }),
        MaxKeys: maxKeys,
        Delimiter: delimiter || undefined,
        IsTruncated: truncated,
        Contents: objects.map(({ key, metadata }) => ({
          Key: key,
          LastModified: new Date(String(metadata!['last-modified'])).toISOString(),
          ETag: metadata!.etag,
          Size: metadata!['content-length'],
          Owner: withOwner ? owner : undefined,
          StorageClass: metadata!['x-amz-storage-class'] ?? 'STANDARD',
        })),
        CommonPrefixes: prefixes.map((p) => ({ Prefix: p })),
      },
    };
  }

  async function listUploads(ctx: KoaContext, { bucket, query }: Route): Promise<void> {
    const prefix = query.get('prefix') ?? '';
    const delimiter = query.get('delimiter') ?? '';
    const keyMarker = query.get('key-marker') || undefined;
    const uploadIdMarker = keyMarker !== undefined ? query.get('upload-id-marker') || undefined : undefined;
    const maxUploads = parseCount(query.get('max-uploads'), 'max-uploads', MAX_KEYS);
    let uploads = (await allUploads(bucket)).filter((u) => u.key.startsWith(prefix));
    if (keyMarker !== undefined) {
      const at = uploadIdMarker !== undefined ? uploads.findIndex((u) => u.key === keyMarker && u.uploadId === uploadIdMarker) : -1;
      const skipUnder = isCommonPrefix(keyMarker, prefix, delimiter);
      uploads =
        at >= 0
          ? uploads.slice(at + 1)
          : uploads.filter((u) => compareKeys(u.key, keyMarker) > 0 && !(skipUnder && u.key.startsWith(keyMarker)));
    }
    const listed: Upload[] = [];
    const prefixes: string[] = [];
    let truncated = false;
    let next: { key: string; uploadId?: string } | undefined;
    if (maxUploads > 0) {
      for (const u of uploads) {
        const common = commonPrefixOf(u.key, prefix, delimiter);
        if (common !== undefined && common === prefixes[prefixes.length - 1]) continue;
        if (listed.length + prefixes.length === maxUploads) {
          truncated = true;
          break;
        }
        if (common !== undefined) {
          prefixes.push(common);
          next = { key: common };
        } else {
          listed.push(u);
          next = { key: u.key, uploadId: u.uploadId };
        }
      }
    }
    const account = { ID: DUMMY_ACCOUNT.id, DisplayName: DUMMY_ACCOUNT.displayName };
    ctx.body = {
      ListMultipartUploadsResult: {
        '@': { xmlns: XMLNS },
        Bucket: bucket,
        KeyMarker: keyMarker ?? '',
        UploadIdMarker: uploadIdMarker ?? '',
        NextKeyMarker: truncated ? next?.key : undefined,
        NextUploadIdMarker: truncated ? (next?.uploadId ?? '') : undefined,
        Prefix: prefix || undefined,
        Delimiter: delimiter || undefined,
        MaxUploads: maxUploads,
        IsTruncated: truncated,
        Upload: listed.map((u) => ({
          Key: u.key,
          UploadId: u.uploadId,
          Initiator: account,
          Owner: account,
          StorageClass: u.metadata['x-amz-storage-class'] ?? 'STANDARD',
          Initiated: u.initiated.toISOString(),
        })),
        CommonPrefixes: prefixes.map((p) => ({ Prefix: p })),
      },
    };
  }

  async function partsOf(u: Upload): Promise<{ number: number; size: number; etag: string; modified: Date }[]> {
    const names = (await fsp.readdir(u.dir).catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
    const parts = await Promise.all(
      names.map(async (name) => {
        try {
          const [stat, md5] = await Promise.all([fsp.stat(path.join(u.dir, name)), fsp.readFile(path.join(u.dir, `${name}.md5`), 'utf8')]);
          return { number: Number(name), size: stat.size, etag: md5.trim(), modified: stat.mtime };
        } catch (error) {
          if (isMissingFile(error)) return undefined;
          throw error;
        }
      }),
    );
    return parts.filter((p) => p !== undefined).sort((a, b) => a.number - b.number);
  }

  async function listParts(ctx: KoaContext, { bucket, key, query }: Route): Promise<void> {
    const u = await upload(bucket, query.get('uploadId'), key);
    const marker = parseCount(query.get('part-number-marker'), 'part-number-marker', Number.MAX_SAFE_INTEGER);
    const maxParts = parseCount(query.get('max-parts'), 'max-parts', MAX_KEYS);
    const after = query.has('part-number-marker') ? marker : 0;
    const rest = (await partsOf(u)).filter((p) => p.number > after);
    const page = rest.slice(0, maxParts);
    const truncated = rest.length > page.length;
    const account = { ID: DUMMY_ACCOUNT.id, DisplayName: DUMMY_ACCOUNT.displayName };
    ctx.body = {
      ListPartsResult: {
        '@': { xmlns: XMLNS },
        Bucket: bucket,
        Key: key,
        UploadId: u.uploadId,
        Initiator: account,
        Owner: account,
        StorageClass: u.metadata['x-amz-storage-class'] ?? 'STANDARD',
        PartNumberMarker: after,
        NextPartNumberMarker: page.length ? page[page.length - 1]!.number : after,
        MaxParts: maxParts,
        IsTruncated: truncated,
        Part: page.map((p) => ({ PartNumber: p.number, LastModified: p.modified.toISOString(), ETag: JSON.stringify(p.etag), Size: p.size })),
      },
    };
  }

  async function getObject(ctx: KoaContext, { bucket, key, query }: Route): Promise<void> {
    const metadata = await metadataOf(bucket, key);
    if (!metadata) throw noSuchKey(key);
    const etag = String(metadata.etag);
    const modified = new Date(String(metadata['last-modified']));
    const size = Number(metadata['content-length']);
    const ifMatch = headerOf(ctx.headers, 'if-match');
    const ifNoneMatch = headerOf(ctx.headers, 'if-none-match');
    const since = (name: string) => {
      const value = headerOf(ctx.headers, name);
      const date = value === undefined ? NaN : Date.parse(value);
      return Number.isNaN(date) ? undefined : date;
    };
    const ifUnmodifiedSince = since('if-unmodified-since');
    const ifModifiedSince = since('if-modified-since');
    if (ifMatch !== undefined) {
      if (!etagListMatches(ifMatch, etag)) throw preconditionFailed('If-Match');
    } else if (ifUnmodifiedSince !== undefined && modified.getTime() > ifUnmodifiedSince) {
      throw preconditionFailed('If-Unmodified-Since');
    }
    const notModified = ifNoneMatch !== undefined ? etagListMatches(ifNoneMatch, etag) : ifModifiedSince !== undefined && modified.getTime() <= ifModifiedSince;
    ctx.set('ETag', etag);
    ctx.set('Last-Modified', modified.toUTCString());
    if (notModified) {
      ctx.status = 304;
      return;
    }
    let range: { start: number; end: number } | undefined;
    const rangeHeader = headerOf(ctx.headers, 'range');
    const spec = rangeHeader === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(rangeHeader.trim());
    if (spec && (spec[1] || spec[2])) {
      const [first, last] = [spec[1]!, spec[2]!];
      let start: number;
      let end: number;
      if (!first) {
        start = Math.max(0, size - Number(last));
        end = size - 1;
        if (Number(last) === 0) start = size;
      } else {
        start = Number(first);
        end = last ? Math.min(Number(last), size - 1) : size - 1;
      }
      if (!(first && last && Number(last) < Number(first))) {
        if (start >= size || size === 0) {
          throw s3Error('InvalidRange', 'The requested range is not satisfiable', 416, { RangeRequested: rangeHeader, ActualObjectSize: size });
        }
        range = { start, end };
      }
    }
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('Content-Type', String(metadata['content-type'] ?? 'binary/octet-stream'));
    for (const [name, value] of Object.entries(metadata)) {
      if (value === undefined || ['etag', 'last-modified', 'content-length', 'content-type'].includes(name)) continue;
      if (name === 'x-amz-storage-class' && value === 'STANDARD') continue;
      if (S3Object.ALLOWED_METADATA.includes(name) || name.startsWith('x-amz-meta-')) ctx.set(name, String(value));
    }
    for (const name of ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding']) {
      const value = query.get(`response-${name}`);
      if (value !== null) ctx.set(name, value);
    }
    const objectPath = store.getResourcePath(bucket, key, 'object');
    if (range) {
      ctx.status = 206;
      ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    } else {
      ctx.status = 200;
    }
    const length = range ? range.end - range.start + 1 : size;
    if (ctx.method !== 'HEAD') ctx.body = createReadStream(objectPath, range ?? {});
    ctx.length = length;
  }

  async function putObject(ctx: KoaContext, { bucket, key }: Route): Promise<void> {
    new S3Object(bucket, key, null, ctx.headers as Metadata);
    await checkWritePreconditions(ctx, bucket, key);
    const file = tmpFile();
    const body = await receiveBody(ctx.req, file);
    try {
      const etag = body.md5.toString('hex');
      await withLock(`object:${bucket}/${key}`, async () => {
        await checkWritePreconditions(ctx, bucket, key);
        await commitObject(bucket, key, file, ctx.headers as Metadata, etag);
      });
      ctx.set('ETag', JSON.stringify(etag));
      ctx.status = 200;
      ctx.body = '';
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  async function uploadPart(ctx: KoaContext, { bucket, key, query }: Route): Promise<void> {
    const partNumber = query.get('partNumber') ?? '';
    if (!/^\d+$/.test(partNumber) || Number(partNumber) < 1 || Number(partNumber) > 10000) {
      throw invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', partNumber);
    }
    const uploadId = query.get('uploadId');
    await upload(bucket, uploadId, key);
    const file = tmpFile();
    const body = await receiveBody(ctx.req, file);
    try {
      const etag = body.md5.toString('hex');
      await withLock(`upload:${uploadId}`, async () => {
        const u = await upload(bucket, uploadId, key);
        const partPath = path.join(u.dir, String(Number(partNumber)));
        await fsp.writeFile(`${partPath}.md5`, etag);
        await fsp.rename(file, partPath);
      });
      ctx.set('ETag', JSON.stringify(etag));
      ctx.status = 200;
      ctx.body = '';
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  async function completeUpload(ctx: KoaContext, { bucket, key, query }: Route): Promise<void> {
    const uploadId = query.get('uploadId');
    await upload(bucket, uploadId, key);
    const xml = (await receiveBody(ctx.req, undefined)).data!.toString('utf8');
    const malformed = () => s3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.', 400);
    const [document] = xmlElements(xml, 'CompleteMultipartUpload');
    if (document === undefined) throw malformed();
    const requested = xmlElements(document, 'Part').map((part) => ({ number: Number(xmlValue(part, 'PartNumber')), etag: unquote(xmlValue(part, 'ETag') ?? '') }));
    if (requested.length === 0 || requested.some((p) => !Number.isInteger(p.number))) throw malformed();
    for (let i = 1; i < requested.length; i++) {
      if (requested[i]!.number <= requested[i - 1]!.number) {
        throw s3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.', 400);
      }
    }
    await withLock(`upload:${uploadId}`, async () => {
      const u = await upload(bucket, uploadId, key);
      const stored = new Map((await partsOf(u)).map((p) => [p.number, p]));
      const parts = requested.map((p, i) => {
        const part = stored.get(p.number);
        if (!part || part.etag !== p.etag) {
          throw s3Error(
            'InvalidPart',
            "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            400,
            { UploadId: u.uploadId, PartNumber: p.number, ETag: p.etag },
          );
        }
        if (i < requested.length - 1 && part.size < MIN_PART_SIZE) {
          throw s3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', 400, {
            ProposedSize: part.size,
            MinSizeAllowed: MIN_PART_SIZE,
            PartNumber: p.number,
            ETag: p.etag,
          });
        }
        return part;
      });
      await checkWritePreconditions(ctx, bucket, key);
      const file = tmpFile();
      try {
        await pipeline(async function* () {
          for (const part of parts) yield* createReadStream(path.join(u.dir, String(part.number)));
        }, createWriteStream(file));
        const etag = `${createHash('md5')
          .update(Buffer.concat(parts.map((p) => Buffer.from(p.etag, 'hex'))))
          .digest('hex')}-${parts.length}`;
        await withLock(`object:${bucket}/${key}`, async () => {
          await checkWritePreconditions(ctx, bucket, key);
          await commitObject(bucket, key, file, u.metadata, etag);
        });
        await fsp.rm(u.dir, { recursive: true, force: true });
        ctx.body = {
          CompleteMultipartUploadResult: {
            '@': { xmlns: XMLNS },
            Location: `${ctx.origin}/${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`,
            Bucket: bucket,
            Key: key,
            ETag: JSON.stringify(etag),
          },
        };
      } finally {
        await fsp.rm(file, { force: true });
      }
    });
  }

  async function abortUpload(ctx: KoaContext, { bucket, key, query }: Route): Promise<void> {
    const uploadId = query.get('uploadId');
    await withLock(`upload:${uploadId}`, async () => {
      const u = await upload(bucket, uploadId, key);
      await fsp.rm(u.dir, { recursive: true, force: true });
    });
    ctx.status = 204;
  }

  async function deleteObject(ctx: KoaContext, { bucket, key }: Route): Promise<void> {
    const ifMatch = headerOf(ctx.headers, 'if-match');
    await withLock(`object:${bucket}/${key}`, async () => {
      const current = await metadataOf(bucket, key);
      if (ifMatch !== undefined) {
        if (!current) throw noSuchKey(key);
        if (!etagListMatches(ifMatch, String(current.etag))) throw preconditionFailed('If-Match');
      }
      if (current) await removeObject(bucket, key);
    });
    ctx.status = 204;
  }

  async function deleteObjects(ctx: KoaContext, { bucket }: Route): Promise<void> {
    const hasChecksum = Object.keys(ctx.headers).some((name) => CHECKSUM_ALGORITHMS.some((a) => name === `x-amz-checksum-${a}`)) || 'x-amz-trailer' in ctx.headers;
    if (!('content-md5' in ctx.headers) && !hasChecksum) {
      throw s3Error('InvalidRequest', 'Missing required header for this request: Content-MD5', 400);
    }
    const xml = (await receiveBody(ctx.req, undefined)).data!.toString('utf8');
    const [document] = xmlElements(xml, 'Delete');
    const objects = document === undefined ? [] : xmlElements(document, 'Object');
    if (objects.length === 0 || objects.length > 1000) {
      throw s3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.', 400);
    }
    const quiet = (xmlValue(document!, 'Quiet') ?? '').trim().toLowerCase() === 'true';
    const deleted: { Key: string }[] = [];
    const errors: { Key: string; Code: string; Message: string }[] = [];
    for (const object of objects) {
      const key = xmlValue(object, 'Key') ?? '';
      const etag = xmlValue(object, 'ETag');
      try {
        await withLock(`object:${bucket}/${key}`, async () => {
          const current = await metadataOf(bucket, key);
          if (etag !== undefined) {
            if (!current) throw noSuchKey(key);
            if (!etagListMatches(etag, String(current.etag))) throw preconditionFailed('If-Match');
          }
          if (current) await removeObject(bucket, key);
        });
        deleted.push({ Key: key });
      } catch (error) {
        const e = error as S3ErrorInstance;
        if (!(error instanceof S3Error)) throw error;
        errors.push({ Key: key, Code: e.code, Message: e.message });
      }
    }
    ctx.body = { DeleteResult: { '@': { xmlns: XMLNS }, Deleted: quiet ? [] : deleted, Error: errors } };
  }

  type Handler = (ctx: KoaContext, route: Route) => Promise<void>;

  function handlerFor(method: string, route: Route, headers: IncomingHttpHeaders): Handler | undefined {
    const { key, query } = route;
    const subresources = [...query.keys()].filter((name) => SUBRESOURCES.has(name));
    const plain = subresources.length === 0;
    const only = (name: string) => subresources.length === 1 && subresources[0] === name;
    if (!key) {
      if ((method === 'GET' || method === 'HEAD') && only('uploads')) return listUploads;
      if (method === 'HEAD' && plain) {
        return async (ctx) => {
          ctx.status = 200;
          ctx.set('x-amz-bucket-region', REGION);
        };
      }
      if (method === 'GET' && plain) return listObjects;
      if (method === 'POST' && only('delete')) return deleteObjects;
      return undefined;
    }
    if (method === 'GET' || method === 'HEAD') {
      if (plain) return getObject;
      if (method === 'GET' && only('uploadId')) return listParts;
      return undefined;
    }
    if (method === 'PUT' && !('x-amz-copy-source' in headers)) {
      if (plain) return putObject;
      if (only('uploadId') || (subresources.length === 2 && query.has('uploadId') && query.has('partNumber'))) return uploadPart;
      return undefined;
    }
    if (method === 'POST' && only('uploadId')) return completeUpload;
    if (method === 'DELETE' && only('uploadId')) return abortUpload;
    if (method === 'DELETE' && plain) return deleteObject;
    return undefined;
  }

  return async function backupkitS3Extensions(ctx, next) {
    const parts = splitPath(ctx.path);
    let route: Route;
    try {
      route = { bucket: decodeURIComponent(parts.bucket), key: decodeURIComponent(parts.key), query: new URLSearchParams(ctx.querystring) };
    } catch {
      return next();
    }
    if (!route.bucket) return next();
    const handler = handlerFor(ctx.method, route, ctx.headers);
    if (!handler) return next();
    const params = ctx.params;
    ctx.params = { bucket: route.bucket, ...(route.key ? { key: route.key } : {}) };
    try {
      await authenticate(ctx, async () => undefined);
    } finally {
      ctx.params = params;
    }
    if (!(await store.getBucket(route.bucket))) {
      throw s3Error('NoSuchBucket', 'The specified bucket does not exist', 404, { BucketName: route.bucket });
    }
    await handler(ctx, route);
  };
}

// ---------------------------------------------------------------------------------------------
// Servers.

const FAULT_CODES: Record<number, string> = {
  400: 'InvalidRequest',
  403: 'AccessDenied',
  404: 'NoSuchKey',
  409: 'OperationAborted',
  412: 'PreconditionFailed',
  429: 'SlowDown',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'SlowDown',
};

function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function decodePath(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

const randomPrefix = () => `backupkit-test-${randomBytes(6).toString('hex')}/`;

/** Every key under `prefix`, in byte order, through ListObjectsV2 pages. */
async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort(compareKeys);
}

async function listOpenUploads(client: S3Client, bucket: string, prefix: string): Promise<{ key: string; uploadId: string }[]> {
  const uploads: { key: string; uploadId: string }[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
    for (const u of page.Uploads ?? []) if (u.Key !== undefined && u.UploadId !== undefined) uploads.push({ key: u.Key, uploadId: u.UploadId });
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
  return uploads;
}

interface Service {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

function serviceApi(service: Service) {
  const clients: S3Client[] = [];
  const clientConfig = (overrides: S3ClientConfig = {}): S3ClientConfig => ({
    endpoint: service.endpoint,
    region: service.region,
    forcePathStyle: service.forcePathStyle,
    credentials: { accessKeyId: service.accessKeyId, secretAccessKey: service.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...overrides,
  });
  const client = (overrides?: S3ClientConfig) => {
    const made = new S3Client(clientConfig(overrides));
    clients.push(made);
    return made;
  };
  let admin: S3Client | undefined;
  const adminClient = () => (admin ??= client());
  return {
    clientConfig,
    client,
    keys: (prefix = '') => listKeys(adminClient(), service.bucket, prefix),
    openUploads: (prefix = '') => listOpenUploads(adminClient(), service.bucket, prefix),
    adminClient,
    destroyClients() {
      for (const made of clients.splice(0)) made.destroy();
    },
  };
}

export async function startS3Server(options: StartS3ServerOptions = {}): Promise<S3TestServer> {
  const url = process.env.BACKUPKIT_TEST_S3_URL;
  return url ? useRealService(url) : startLocal(options.bucket ?? DEFAULT_BUCKET);
}

async function useRealService(url: string): Promise<S3TestServer> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('BACKUPKIT_TEST_S3_URL is not a URL: expected http(s)://ACCESS_KEY:SECRET@host:port/bucket?region=us-east-1');
  }
  const bucket = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, ''));
  if (!/^https?:$/.test(parsed.protocol) || !bucket || bucket.includes('/') || !parsed.username || !parsed.password) {
    throw new Error(`BACKUPKIT_TEST_S3_URL must be http(s)://ACCESS_KEY:SECRET@host:port/bucket?region=us-east-1 (got ${parsed.protocol}//${parsed.host}${parsed.pathname})`);
  }
  const service: Service = {
    endpoint: `${parsed.protocol}//${parsed.host}`,
    bucket,
    region: parsed.searchParams.get('region') ?? REGION,
    accessKeyId: decodeURIComponent(parsed.username),
    secretAccessKey: decodeURIComponent(parsed.password),
    forcePathStyle: parsed.searchParams.get('forcePathStyle') !== 'false',
  };
  const api = serviceApi(service);
  try {
    await api.adminClient().send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    api.destroyClients();
    const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    throw new Error(`BACKUPKIT_TEST_S3_URL: bucket ${bucket} at ${service.endpoint} is not usable: ${e.name ?? 'Error'} ${e.$metadata?.httpStatusCode ?? ''} ${e.message ?? ''}`.trim());
  }
  const prefix = randomPrefix();
  const refuse = (): never => {
    throw new Error('fault injection needs the local S3 test server');
  };
  const faults = {
    inject: refuse,
    clear: refuse,
    down: refuse,
    up: refuse,
    get requests(): never {
      return refuse();
    },
  } as FaultControl;
  let stopped = false;
  return {
    ...service,
    real: true,
    canInjectFaults: false,
    prefix,
    clientConfig: api.clientConfig,
    client: api.client,
    keys: api.keys,
    openUploads: api.openUploads,
    faults,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        const client = api.adminClient();
        const keys = await api.keys(prefix);
        for (let i = 0; i < keys.length; i += 1000) {
          const batch = keys.slice(i, i + 1000);
          try {
            const out = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
            if (out.Errors?.length) throw new Error(`could not delete ${out.Errors.map((e) => `${e.Key} (${e.Code})`).join(', ')}`);
          } catch (error) {
            if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 501) throw error;
            for (const Key of batch) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
          }
        }
        for (const u of await api.openUploads(prefix)) {
          await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId })).catch((error: { name?: string }) => {
            if (error.name !== 'NoSuchUpload') throw error;
          });
        }
      } finally {
        api.destroyClients();
      }
    },
  };
}

async function startLocal(bucket: string): Promise<S3TestServer> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'backupkit-s3-'));
  const dataDir = path.join(root, 'data');
  const tmpDir = path.join(root, 'tmp');
  await fsp.mkdir(dataDir);
  await fsp.mkdir(tmpDir);
  let app: S3rverApp | undefined;
  try {
    app = new S3rver({ silent: true, directory: dataDir, vhostBuckets: false, resetOnClose: false, configureBuckets: [{ name: bucket, configs: [] }] });
    const routerAt = app.middleware.findIndex((fn) => fn.router !== undefined);
    if (routerAt < 0) throw new Error('s3rver has no router middleware: the test server supports s3rver 3.7');
    app.middleware.splice(routerAt, 0, extensions(app, tmpDir));
    await app.configureBuckets();
  } catch (error) {
    app?.logger.close();
    await fsp.rm(root, { recursive: true, force: true, maxRetries: 5 });
    throw error;
  }
  const koa = app.callback();
  const port = await freePort();
  const service: Service = { endpoint: `http://127.0.0.1:${port}`, bucket, region: REGION, accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, forcePathStyle: true };
  const api = serviceApi(service);

  const requests: FaultControl['requests'] = [];
  const rules: { method?: string; match?: (req: S3Request) => boolean; remaining: number; action: FaultAction }[] = [];
  const stalled = new Set<ServerResponse>();

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const view: S3Request = { method, path: decodePath(url.pathname), query: url.searchParams, headers: req.headers };
    requests.push({ method, path: view.path, query: url.search.slice(1) });
    let at: number;
    try {
      at = rules.findIndex((rule) => rule.remaining > 0 && (!rule.method || rule.method.toUpperCase() === method) && (!rule.match || rule.match(view)));
    } catch (error) {
      // A fault rule that throws fails the test run, not just this request.
      req.socket.destroy();
      throw error;
    }
    const rule = at < 0 ? undefined : rules[at]!;
    if (!rule) return koa(req, res);
    if (--rule.remaining <= 0) rules.splice(at, 1);
    const { action } = rule;
    if (action === 'reset') {
      const socket = req.socket as Socket & { resetAndDestroy?: () => void };
      if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
      else socket.destroy();
      return;
    }
    req.resume();
    if (action === 'stall') {
      stalled.add(res);
      res.once('close', () => stalled.delete(res));
      return;
    }
    const code = action.code ?? FAULT_CODES[action.status] ?? (action.status >= 500 ? 'InternalError' : 'InvalidRequest');
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(`Injected fault: ${code}`)}</Message>` +
      `<RequestId>${requestId}</RequestId><HostId>${requestId}</HostId></Error>`;
    res.writeHead(action.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body), 'x-amz-request-id': requestId });
    res.end(method === 'HEAD' ? undefined : body);
  };

  let server: http.Server | undefined;
  const listen = async () => {
    for (let attempt = 1; ; attempt++) {
      const candidate = http.createServer(onRequest);
      candidate.keepAliveTimeout = 30_000;
      try {
        await new Promise<void>((resolve, reject) => {
          candidate.once('error', reject);
          candidate.listen(port, '127.0.0.1', () => {
            candidate.off('error', reject);
            resolve();
          });
        });
        server = candidate;
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const close = async () => {
    const current = server;
    if (!current) return;
    server = undefined;
    await new Promise<void>((resolve) => {
      current.close(() => resolve());
      current.closeAllConnections();
    });
  };
  const dropStalled = () => {
    for (const res of stalled) res.socket?.destroy();
    stalled.clear();
  };

  try {
    await listen();
  } catch (error) {
    app.logger.close();
    await fsp.rm(root, { recursive: true, force: true, maxRetries: 5 });
    throw error;
  }

  const faults: FaultControl = {
    requests,
    inject(rule) {
      const count = rule.count ?? 1;
      if (!Number.isInteger(count) || count < 1) throw new Error(`fault count must be a positive integer, got ${count}`);
      if (typeof rule.action === 'object' && !(Number.isInteger(rule.action.status) && rule.action.status >= 400 && rule.action.status <= 599)) {
        throw new Error(`fault status must be an HTTP error status (400-599), got ${rule.action.status}`);
      }
      rules.push({ method: rule.method, match: rule.match, remaining: count, action: rule.action });
    },
    clear() {
      rules.length = 0;
      dropStalled();
    },
    async down() {
      dropStalled();
      await close();
    },
    async up() {
      if (!server) await listen();
    },
  };

  const s3rverApp = app;
  let stopped = false;
  return {
    ...service,
    real: false,
    canInjectFaults: true,
    prefix: randomPrefix(),
    clientConfig: api.clientConfig,
    client: api.client,
    keys: api.keys,
    openUploads: api.openUploads,
    faults,
    async stop() {
      if (stopped) return;
      stopped = true;
      rules.length = 0;
      try {
        dropStalled();
        await close();
        api.destroyClients();
        s3rverApp.logger.close();
      } finally {
        await fsp.rm(root, { recursive: true, force: true, maxRetries: 5 });
      }
    },
  };
}
