/**
 * The S3 test server (test/support/s3server.ts) against the real SDK: the operations backupkit's S3
 * storage uses, the ones the server adds to s3rver, and each kind of injected fault. With
 * BACKUPKIT_TEST_S3_URL set the same tests run against that service, less the s3rver-only ones.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGetObject, isPutObject, isUploadPart, onKey, startS3Server, type S3TestServer } from '../support/s3server.js';

interface SdkFailure {
  name?: string;
  code?: string;
  message: string;
  $metadata?: { httpStatusCode?: number };
}

async function rejection(pending: Promise<unknown>): Promise<SdkFailure> {
  try {
    await pending;
  } catch (error) {
    return error as SdkFailure;
  }
  throw new Error('expected the request to fail');
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');
const local = !process.env.BACKUPKIT_TEST_S3_URL;
const MiB = 1024 * 1024;

let s3: S3TestServer;
let client: S3Client;
let Bucket: string;
const k = (name: string) => `${s3.prefix}${name}`;

beforeAll(async () => {
  s3 = await startS3Server();
  client = s3.client();
  Bucket = s3.bucket;
});

afterAll(async () => {
  await s3?.stop();
});

describe('objects', () => {
  const body = Buffer.from('0123456789abcdefghij');

  it('puts, gets whole and by range, and heads an object', async () => {
    const Key = k('plain.bin');
    const put = await client.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentType: 'application/x-test', Metadata: { origin: 'test' } }));
    expect(put.ETag).toBe(`"${md5(body)}"`);

    const whole = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(Buffer.from(await whole.Body!.transformToByteArray())).toEqual(body);
    expect(whole.ContentType).toBe('application/x-test');
    expect(whole.Metadata).toEqual({ origin: 'test' });
    expect(whole.ETag).toBe(put.ETag);

    const ranged = async (Range: string) => {
      const out = await client.send(new GetObjectCommand({ Bucket, Key, Range }));
      return { text: await out.Body!.transformToString(), range: out.ContentRange, length: out.ContentLength, status: out.$metadata.httpStatusCode };
    };
    expect(await ranged('bytes=5-9')).toEqual({ text: '56789', range: 'bytes 5-9/20', length: 5, status: 206 });
    expect(await ranged('bytes=0-0')).toEqual({ text: '0', range: 'bytes 0-0/20', length: 1, status: 206 });
    expect(await ranged('bytes=-3')).toEqual({ text: 'hij', range: 'bytes 17-19/20', length: 3, status: 206 });
    expect(await ranged('bytes=18-')).toEqual({ text: 'ij', range: 'bytes 18-19/20', length: 2, status: 206 });
    expect(await ranged('bytes=15-99')).toEqual({ text: 'fghij', range: 'bytes 15-19/20', length: 5, status: 206 });
    const beyond = await rejection(client.send(new GetObjectCommand({ Bucket, Key, Range: 'bytes=20-30' })));
    expect(beyond.$metadata?.httpStatusCode).toBe(416);
    expect(beyond.name).toBe('InvalidRange');

    const head = await client.send(new HeadObjectCommand({ Bucket, Key }));
    expect(head.ContentLength).toBe(20);
    expect(head.ETag).toBe(put.ETag);
    expect(head.LastModified).toBeInstanceOf(Date);
  });

  it('honours If-Match and If-None-Match on reads', async () => {
    const Key = k('read-conditions.bin');
    const { ETag } = await client.send(new PutObjectCommand({ Bucket, Key, Body: body }));
    const ok = await client.send(new GetObjectCommand({ Bucket, Key, Range: 'bytes=0-3', IfMatch: ETag }));
    expect(await ok.Body!.transformToString()).toBe('0123');
    const stale = await rejection(client.send(new GetObjectCommand({ Bucket, Key, Range: 'bytes=0-3', IfMatch: '"00000000000000000000000000000000"' })));
    expect(stale.$metadata?.httpStatusCode).toBe(412);
    expect(stale.name).toBe('PreconditionFailed');
    const unchanged = await rejection(client.send(new GetObjectCommand({ Bucket, Key, IfNoneMatch: ETag })));
    expect(unchanged.$metadata?.httpStatusCode).toBe(304);
  });

  it('lists with a prefix, pages of MaxKeys, common prefixes, in key order', async () => {
    const base = k('list/');
    const names = ['e', 'a', 'd', 'b', 'c'];
    for (const name of names) await client.send(new PutObjectCommand({ Bucket, Key: base + name, Body: name }));
    await client.send(new PutObjectCommand({ Bucket, Key: k('listing-outside'), Body: 'x' }));

    const pages: { keys: string[]; truncated: boolean | undefined; count: number | undefined }[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: base, MaxKeys: 2, ContinuationToken }));
      pages.push({ keys: (page.Contents ?? []).map((o) => o.Key!), truncated: page.IsTruncated, count: page.KeyCount });
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken && pages.length < 10);
    expect(pages).toEqual([
      { keys: [`${base}a`, `${base}b`], truncated: true, count: 2 },
      { keys: [`${base}c`, `${base}d`], truncated: true, count: 2 },
      { keys: [`${base}e`], truncated: false, count: 1 },
    ]);

    const listed = await client.send(new ListObjectsV2Command({ Bucket, Prefix: base }));
    expect(listed.Contents?.map((o) => [o.Key, o.Size])).toEqual(['a', 'b', 'c', 'd', 'e'].map((n) => [base + n, 1]));
    expect(listed.Contents?.[0]?.ETag).toBe(`"${md5(Buffer.from('a'))}"`);

    await client.send(new PutObjectCommand({ Bucket, Key: `${base}sub/x`, Body: 'x' }));
    await client.send(new PutObjectCommand({ Bucket, Key: `${base}sub/y`, Body: 'y' }));
    await client.send(new PutObjectCommand({ Bucket, Key: `${base}z`, Body: 'z' }));
    const folders = await client.send(new ListObjectsV2Command({ Bucket, Prefix: base, Delimiter: '/' }));
    expect(folders.Contents?.map((o) => o.Key)).toEqual(['a', 'b', 'c', 'd', 'e', 'z'].map((n) => base + n));
    expect(folders.CommonPrefixes).toEqual([{ Prefix: `${base}sub/` }]);
    expect(folders.KeyCount).toBe(7);
    expect(folders.IsTruncated).toBe(false);
    const walked: string[] = [];
    let next: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: base, Delimiter: '/', MaxKeys: 3, ContinuationToken: next }));
      walked.push(...(page.Contents ?? []).map((o) => o.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
      next = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (next && walked.length < 20);
    expect(walked).toEqual(['a', 'b', 'c', 'd', 'e', 'sub/', 'z'].map((n) => base + n));

    const v1: string[] = [];
    let Marker: string | undefined;
    do {
      const page = await client.send(new ListObjectsCommand({ Bucket, Prefix: base, Delimiter: '/', MaxKeys: 4, Marker }));
      v1.push(...(page.Contents ?? []).map((o) => o.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
      Marker = page.IsTruncated ? page.NextMarker : undefined;
    } while (Marker && v1.length < 20);
    expect([...v1].sort()).toEqual([...walked].sort());

    const order = k('order/');
    for (const name of ['x/a', 'x-1', 'x']) await client.send(new PutObjectCommand({ Bucket, Key: order + name, Body: name }));
    const one: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: order, MaxKeys: 1, ContinuationToken: token }));
      one.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token && one.length < 10);
    expect(one).toEqual([`${order}x`, `${order}x-1`, `${order}x/a`]);
    expect(await s3.keys(order)).toEqual(one);
  });

  it("takes a default-config client's checksummed and aws-chunked bodies, and refuses a wrong checksum", async () => {
    const defaults = s3.client({ requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_SUPPORTED' });
    const data = randomBytes(300_000);
    const Key = k('checksums/chunked.bin');
    const seen: Record<string, unknown>[] = [];
    if (local) s3.faults.inject({ match: (req) => (isPutObject(req) && seen.push({ ...req.headers }), false), action: 'reset' });
    await defaults.send(new PutObjectCommand({ Bucket, Key, Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), ContentLength: data.length }));
    const got = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(data));
    expect(got.ContentEncoding).toBeUndefined();
    if (local) {
      expect(seen[0]).toMatchObject({ 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length), 'x-amz-trailer': 'x-amz-checksum-crc32' });
      s3.faults.clear();
    }
    await defaults.send(new PutObjectCommand({ Bucket, Key: k('checksums/buffer.bin'), Body: data, ChecksumAlgorithm: 'SHA256' }));
    expect(got.ETag).toBe((await client.send(new HeadObjectCommand({ Bucket, Key: k('checksums/buffer.bin') }))).ETag);

    const wrongCrc = await rejection(client.send(new PutObjectCommand({ Bucket, Key: k('checksums/bad-crc'), Body: data, ChecksumCRC32: 'AAAAAA==' })));
    expect(wrongCrc.$metadata?.httpStatusCode).toBe(400);
    expect(wrongCrc.name).toBe('BadDigest');
    const wrongMd5 = await rejection(client.send(new PutObjectCommand({ Bucket, Key: k('checksums/bad-md5'), Body: data, ContentMD5: createHash('md5').update('other').digest('base64') })));
    expect(wrongMd5.$metadata?.httpStatusCode).toBe(400);
    expect(wrongMd5.name).toBe('BadDigest');
    expect(await s3.keys(k('checksums/'))).toEqual([k('checksums/buffer.bin'), k('checksums/chunked.bin')]);
  });

  it('deletes an object', async () => {
    const Key = k('doomed.txt');
    await client.send(new PutObjectCommand({ Bucket, Key, Body: 'bye' }));
    expect(await s3.keys(Key)).toEqual([Key]);
    const deleted = await client.send(new DeleteObjectCommand({ Bucket, Key }));
    expect(deleted.$metadata.httpStatusCode).toBe(204);
    expect(await s3.keys(Key)).toEqual([]);
    const gone = await rejection(client.send(new GetObjectCommand({ Bucket, Key })));
    expect(gone.name).toBe('NoSuchKey');
    expect(gone.$metadata?.httpStatusCode).toBe(404);
    const again = await client.send(new DeleteObjectCommand({ Bucket, Key }));
    expect(again.$metadata.httpStatusCode).toBe(204);
  });

  it('deletes several objects at once, keys taken verbatim', async () => {
    const keys = [k('many/007'), k('many/a & b'), k('many/<c>')];
    for (const Key of keys) await client.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
    const out = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    expect(out.Deleted?.map((d) => d.Key).sort()).toEqual([...keys].sort());
    expect(out.Errors ?? []).toEqual([]);
    expect(await s3.keys(k('many/'))).toEqual([]);
  });

  it.runIf(local)('deletes numeric and space-padded keys at the bucket root as given', async () => {
    const keys = ['0042', ' padded ', '1e3'];
    for (const Key of keys) await client.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
    await client.send(new PutObjectCommand({ Bucket, Key: 'padded', Body: 'the unpadded one stays' }));
    const out = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    expect(out.Deleted?.map((d) => d.Key).sort()).toEqual([...keys].sort());
    const left = await s3.keys();
    for (const Key of keys) expect(left).not.toContain(Key);
    expect(left).toContain('padded');
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'padded' }));
  });

  it.runIf(local)('refuses DeleteObjects without Content-MD5 or a checksum', async () => {
    const xml = `<Delete><Object><Key>${k('x')}</Key></Object></Delete>`;
    const response = await fetch(`${s3.endpoint}/${Bucket}?delete`, { method: 'POST', body: xml, headers: { 'content-type': 'application/xml' } });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('<Code>InvalidRequest</Code>');
  });

  it.runIf(local)('keeps nothing of a PutObject cut short', async () => {
    const Key = k('cut-short.bin');
    await client.send(new PutObjectCommand({ Bucket, Key, Body: 'old' }));
    await new Promise<void>((resolve) => {
      const url = new URL(`${s3.endpoint}/${Bucket}/${Key}`);
      const req = http.request(url, { method: 'PUT', headers: { 'content-length': 100_000 } });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(1000, 1), () => {
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 100);
      });
    });
    await sleep(200);
    const out = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(await out.Body!.transformToString()).toBe('old');
    const fresh = k('cut-short-new.bin');
    await new Promise<void>((resolve) => {
      const req = http.request(new URL(`${s3.endpoint}/${Bucket}/${fresh}`), { method: 'PUT', headers: { 'content-length': 100_000 } });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(1000, 1), () => setTimeout(() => (req.destroy(), resolve()), 100));
    });
    await sleep(200);
    expect(await s3.keys(fresh)).toEqual([]);
  });
});

describe('multipart uploads', () => {
  it('uploads a 12 MiB stream in 5 MiB parts with lib-storage, byte for byte', async () => {
    const data = randomBytes(12 * MiB);
    const Key = k('big.bin');
    const mark = local ? s3.faults.requests.length : 0;
    const chunks = Array.from({ length: 12 }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB));
    const upload = new Upload({ client, params: { Bucket, Key, Body: Readable.from(chunks), ContentType: 'application/zip' }, partSize: 5 * MiB, queueSize: 2 });
    await upload.done();

    const got = await client.send(new GetObjectCommand({ Bucket, Key }));
    const bytes = await got.Body!.transformToByteArray();
    expect(bytes.length).toBe(data.length);
    expect(sha256(bytes)).toBe(sha256(data));
    expect(got.ContentType).toBe('application/zip');
    expect(got.ETag).toMatch(/^"[0-9a-f]{32}-3"$/);
    const partMd5s = [0, 1, 2].map((i) => createHash('md5').update(data.subarray(i * 5 * MiB, Math.min(data.length, (i + 1) * 5 * MiB))).digest());
    expect(got.ETag).toBe(`"${md5(Buffer.concat(partMd5s))}-3"`);
    expect(await s3.openUploads(s3.prefix)).toEqual([]);
    if (local) expect(s3.faults.requests.slice(mark).filter((r) => r.method === 'PUT' && new URLSearchParams(r.query).has('partNumber'))).toHaveLength(3);
  });

  it('lists an open upload under its prefix only, aborts it, then refuses it', async () => {
    const Key = k('mpu/one.bin');
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    expect(UploadId).toBeTruthy();
    const part = randomBytes(1024);
    const uploaded = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: part }));
    expect(uploaded.ETag).toBe(`"${md5(part)}"`);

    const parts = await client.send(new ListPartsCommand({ Bucket, Key, UploadId }));
    expect(parts.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual([[1, 1024, uploaded.ETag]]);

    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: k('mpu/') }));
    expect(listed.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([[Key, UploadId]]);
    expect(listed.Uploads?.[0]?.Initiated).toBeInstanceOf(Date);
    const elsewhere = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: k('other/') }));
    expect(elsewhere.Uploads ?? []).toEqual([]);
    expect(await s3.openUploads(k('mpu/'))).toEqual([{ key: Key, uploadId: UploadId }]);

    const aborted = await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
    expect(aborted.$metadata.httpStatusCode).toBe(204);
    const after = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: k('mpu/') }));
    expect(after.Uploads ?? []).toEqual([]);
    expect(await s3.openUploads(k('mpu/'))).toEqual([]);

    const late = await rejection(client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: part })));
    expect(late.$metadata?.httpStatusCode).toBe(404);
    expect(late.name).toBe('NoSuchUpload');
    const complete = await rejection(
      client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: uploaded.ETag }] } })),
    );
    expect(complete.$metadata?.httpStatusCode).toBe(404);
    expect(complete.name).toBe('NoSuchUpload');
    const twice = await rejection(client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })));
    expect(twice.$metadata?.httpStatusCode).toBe(404);
    expect(twice.name).toBe('NoSuchUpload');
    expect(await s3.keys(Key)).toEqual([]);
  });

  it('pages ListMultipartUploads with key and upload id markers', async () => {
    const prefix = k('paged/');
    const created: { key: string; uploadId: string }[] = [];
    for (const name of ['b', 'a', 'a']) {
      const Key = prefix + name;
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
      created.push({ key: Key, uploadId: UploadId! });
      await sleep(20);
    }
    const seen: { key: string; uploadId: string }[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix, MaxUploads: 1, KeyMarker, UploadIdMarker }));
      pages++;
      seen.push(...(page.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! })));
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([created[1], created[2], created[0]]);
    for (const u of created) await client.send(new AbortMultipartUploadCommand({ Bucket, Key: u.key, UploadId: u.uploadId }));
    expect(await s3.openUploads(prefix)).toEqual([]);
  });

  it('refuses to complete with a missing part, a wrong ETag or a small part before the last', async () => {
    const Key = k('mpu/bad.bin');
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    const one = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: Buffer.alloc(100, 1) }));
    const two = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: Buffer.alloc(100, 2) }));
    const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
      rejection(client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } })));
    expect((await complete([{ PartNumber: 3, ETag: one.ETag }])).name).toBe('InvalidPart');
    expect((await complete([{ PartNumber: 1, ETag: two.ETag }])).name).toBe('InvalidPart');
    const small = await complete([
      { PartNumber: 1, ETag: one.ETag },
      { PartNumber: 2, ETag: two.ETag },
    ]);
    expect(small.name).toBe('EntityTooSmall');
    expect(small.$metadata?.httpStatusCode).toBe(400);
    expect(await s3.openUploads(Key)).toEqual([{ key: Key, uploadId: UploadId }]);
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
  });
});

describe('conditional writes', () => {
  it('PutObject with If-None-Match "*" creates once', async () => {
    const Key = k('cond/lock');
    const first = await client.send(new PutObjectCommand({ Bucket, Key, Body: 'one', IfNoneMatch: '*' }));
    expect(first.ETag).toBe(`"${md5(Buffer.from('one'))}"`);
    const second = await rejection(client.send(new PutObjectCommand({ Bucket, Key, Body: 'two', IfNoneMatch: '*' })));
    expect(second.$metadata?.httpStatusCode).toBe(412);
    expect(second.name).toBe('PreconditionFailed');
    const kept = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(await kept.Body!.transformToString()).toBe('one');
  });

  it('PutObject with If-None-Match "*": of racing writers exactly one wins', async () => {
    const Key = k('cond/race');
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => client.send(new PutObjectCommand({ Bucket, Key, Body: `writer ${i}`, IfNoneMatch: '*' }))));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r.reason as SdkFailure).$metadata?.httpStatusCode)).toEqual([412, 412, 412, 412, 412]);
    const stored = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(stored.ETag).toBe((won[0] as PromiseFulfilledResult<{ ETag?: string }>).value.ETag);
  });

  it('PutObject with If-Match replaces only the object of that ETag', async () => {
    const Key = k('cond/swap');
    const v1 = await client.send(new PutObjectCommand({ Bucket, Key, Body: 'v1' }));
    const v2 = await client.send(new PutObjectCommand({ Bucket, Key, Body: 'v2', IfMatch: v1.ETag }));
    expect(v2.ETag).toBe(`"${md5(Buffer.from('v2'))}"`);
    const unquoted = await client.send(new PutObjectCommand({ Bucket, Key, Body: 'v3', IfMatch: v2.ETag!.replace(/"/g, '') }));
    expect(unquoted.ETag).toBe(`"${md5(Buffer.from('v3'))}"`);
    const stale = await rejection(client.send(new PutObjectCommand({ Bucket, Key, Body: 'v4', IfMatch: v1.ETag })));
    expect(stale.$metadata?.httpStatusCode).toBe(412);
    expect(stale.name).toBe('PreconditionFailed');
    const stored = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(await stored.Body!.transformToString()).toBe('v3');
    const missing = await rejection(client.send(new PutObjectCommand({ Bucket, Key: k('cond/absent'), Body: 'x', IfMatch: v1.ETag })));
    expect(missing.$metadata?.httpStatusCode).toBe(404);
    expect(missing.name).toBe('NoSuchKey');
    expect(await s3.keys(k('cond/absent'))).toEqual([]);
  });

  it('CompleteMultipartUpload with If-None-Match "*" fails on an existing key', async () => {
    const Key = k('cond/mpu');
    await client.send(new PutObjectCommand({ Bucket, Key, Body: 'already here' }));
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    const part = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: 'new' }));
    const Parts = [{ PartNumber: 1, ETag: part.ETag }];
    const refused = await rejection(client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, IfNoneMatch: '*', MultipartUpload: { Parts } })));
    expect(refused.$metadata?.httpStatusCode).toBe(412);
    expect(refused.name).toBe('PreconditionFailed');
    const kept = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(await kept.Body!.transformToString()).toBe('already here');
    const done = await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, IfMatch: kept.ETag, MultipartUpload: { Parts } }));
    expect(done.ETag).toBe(`"${md5(createHash('md5').update('new').digest())}-1"`);
    const replaced = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(await replaced.Body!.transformToString()).toBe('new');
  });

  it('DeleteObject with If-Match deletes only the object of that ETag', async () => {
    const Key = k('cond/delete');
    const { ETag } = await client.send(new PutObjectCommand({ Bucket, Key, Body: 'guarded' }));
    const wrong = await rejection(client.send(new DeleteObjectCommand({ Bucket, Key, IfMatch: '"00000000000000000000000000000000"' })));
    expect(wrong.$metadata?.httpStatusCode).toBe(412);
    expect(wrong.name).toBe('PreconditionFailed');
    expect(await s3.keys(Key)).toEqual([Key]);
    const right = await client.send(new DeleteObjectCommand({ Bucket, Key, IfMatch: ETag }));
    expect(right.$metadata.httpStatusCode).toBe(204);
    expect(await s3.keys(Key)).toEqual([]);
    const missing = await rejection(client.send(new DeleteObjectCommand({ Bucket, Key, IfMatch: ETag })));
    expect(missing.$metadata?.httpStatusCode).toBe(404);
  });
});

describe.runIf(local)('fault injection', () => {
  const putsOf = (Key: string, from: number) => s3.faults.requests.slice(from).filter((r) => r.method === 'PUT' && r.path === `/${Bucket}/${Key}`);

  it('answers the next matching request with an S3 error status', async () => {
    const Key = k('faults/status');
    const once = s3.client({ maxAttempts: 1 });
    s3.faults.inject({ match: onKey(Key, isPutObject), action: { status: 503 } });
    const failed = await rejection(once.send(new PutObjectCommand({ Bucket, Key, Body: 'x' })));
    expect(failed.$metadata?.httpStatusCode).toBe(503);
    expect(failed.name).toBe('SlowDown');
    expect(await s3.keys(Key)).toEqual([]);

    const mark = s3.faults.requests.length;
    s3.faults.inject({ match: onKey(Key, isPutObject), action: { status: 503 } });
    const put = await client.send(new PutObjectCommand({ Bucket, Key, Body: 'x' }));
    expect(put.$metadata.attempts).toBe(2);
    expect(putsOf(Key, mark)).toHaveLength(2);
    expect(await s3.keys(Key)).toEqual([Key]);

    s3.faults.inject({ method: 'get', match: onKey(Key), count: 2, action: { status: 500, code: 'InternalError' } });
    const got = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(await got.Body!.transformToString()).toBe('x');
    expect(got.$metadata.attempts).toBe(3);
  });

  it("fails a retried part's first attempt and the upload still completes", async () => {
    const Key = k('faults/part');
    const data = randomBytes(11 * MiB);
    const mark = s3.faults.requests.length;
    s3.faults.inject({ match: (req) => isUploadPart(req) && req.query.get('partNumber') === '2', action: { status: 500 } });
    await new Upload({ client, params: { Bucket, Key, Body: data }, partSize: 5 * MiB }).done();
    const parts = s3.faults.requests.slice(mark).filter((r) => r.method === 'PUT' && new URLSearchParams(r.query).get('partNumber') === '2');
    expect(parts).toHaveLength(2);
    const got = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(data));
  });

  it("resets the connection: a network error, retried by default", async () => {
    const Key = k('faults/reset');
    const once = s3.client({ maxAttempts: 1 });
    s3.faults.inject({ match: onKey(Key, isPutObject), action: 'reset' });
    const failed = await rejection(once.send(new PutObjectCommand({ Bucket, Key, Body: 'x' })));
    expect(failed.$metadata?.httpStatusCode).toBeUndefined();
    expect(`${failed.code ?? ''} ${failed.message}`).toMatch(/ECONNRESET|socket hang up/);
    expect(await s3.keys(Key)).toEqual([]);

    const mark = s3.faults.requests.length;
    s3.faults.inject({ match: onKey(Key, isPutObject), action: 'reset' });
    await client.send(new PutObjectCommand({ Bucket, Key, Body: 'x' }));
    expect(putsOf(Key, mark)).toHaveLength(2);
    expect(await s3.keys(Key)).toEqual([Key]);
  });

  it('stalls a request until the client gives up', async () => {
    const Key = k('faults/stall');
    await client.send(new PutObjectCommand({ Bucket, Key, Body: 'slow' }));
    const impatient = s3.client({ maxAttempts: 1, requestHandler: { requestTimeout: 300, throwOnRequestTimeout: true } });
    s3.faults.inject({ match: onKey(Key, isGetObject), action: 'stall' });
    const started = Date.now();
    const failed = await rejection(impatient.send(new GetObjectCommand({ Bucket, Key })));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(`${failed.name} ${failed.message}`).toMatch(/Timeout/i);

    const patient = s3.client({ requestHandler: { requestTimeout: 300, throwOnRequestTimeout: true } });
    s3.faults.inject({ match: onKey(Key, isGetObject), action: 'stall' });
    const got = await patient.send(new GetObjectCommand({ Bucket, Key }));
    expect(await got.Body!.transformToString()).toBe('slow');
    expect(got.$metadata.attempts).toBe(2);
    s3.faults.clear();
  });

  it('goes down (connections refused) and comes back up with its data', async () => {
    const Key = k('faults/down');
    await client.send(new PutObjectCommand({ Bucket, Key, Body: 'still here' }));
    const once = s3.client({ maxAttempts: 1 });
    await s3.faults.down();
    try {
      const failed = await rejection(once.send(new GetObjectCommand({ Bucket, Key })));
      expect(`${failed.code ?? ''} ${failed.message}`).toMatch(/ECONNREFUSED|ECONNRESET|socket hang up/);
    } finally {
      await s3.faults.up();
    }
    const got = await once.send(new GetObjectCommand({ Bucket, Key }));
    expect(await got.Body!.transformToString()).toBe('still here');
  });

  it('logs every request', async () => {
    const Key = k('faults/log');
    const mark = s3.faults.requests.length;
    await client.send(new PutObjectCommand({ Bucket, Key, Body: 'x' }));
    await client.send(new HeadObjectCommand({ Bucket, Key }));
    expect(s3.faults.requests.slice(mark).map((r) => [r.method, r.path])).toEqual([
      ['PUT', `/${Bucket}/${Key}`],
      ['HEAD', `/${Bucket}/${Key}`],
    ]);
  });
});

describe.runIf(local)('startS3Server', () => {
  it('uses the service of BACKUPKIT_TEST_S3_URL, cleaning only its prefix on stop', async () => {
    const secret = 'se/cr:et%';
    process.env.BACKUPKIT_TEST_S3_URL = `${s3.endpoint.replace('://', `://S3RVER:${encodeURIComponent(secret)}@`)}/${Bucket}?region=us-east-1`;
    let real: S3TestServer;
    try {
      real = await startS3Server();
    } finally {
      delete process.env.BACKUPKIT_TEST_S3_URL;
    }
    expect(real).toMatchObject({ real: true, canInjectFaults: false, endpoint: s3.endpoint, bucket: Bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: secret });
    expect(real.prefix).toMatch(/^backupkit-test-[0-9a-f]{12}\/$/);
    expect(real.prefix).not.toBe(s3.prefix);
    expect(() => real.faults.inject({ action: 'reset' })).toThrow('fault injection needs the local S3 test server');
    expect(() => real.faults.requests).toThrow('fault injection needs the local S3 test server');

    const rc = real.client();
    const mine = [`${real.prefix}a`, `${real.prefix}deep/b`];
    for (const Key of mine) await rc.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
    const { UploadId } = await rc.send(new CreateMultipartUploadCommand({ Bucket, Key: `${real.prefix}open` }));
    const keep = k('outside-real-prefix');
    await client.send(new PutObjectCommand({ Bucket, Key: keep, Body: 'keep' }));
    expect(await real.keys(real.prefix)).toEqual(mine);
    expect(await real.openUploads(real.prefix)).toEqual([{ key: `${real.prefix}open`, uploadId: UploadId }]);

    await real.stop();
    expect(await s3.keys(real.prefix)).toEqual([]);
    expect(await s3.openUploads(real.prefix)).toEqual([]);
    expect(await s3.keys(keep)).toEqual([keep]);
  });

  it('refuses a BACKUPKIT_TEST_S3_URL without credentials or bucket', async () => {
    process.env.BACKUPKIT_TEST_S3_URL = 'http://127.0.0.1:9/';
    try {
      await expect(startS3Server()).rejects.toThrow(/BACKUPKIT_TEST_S3_URL must be/);
    } finally {
      delete process.env.BACKUPKIT_TEST_S3_URL;
    }
  });

  it('makes the bucket asked for, and stop() closes the port and removes the data', async () => {
    const bucket = `stop-test-${randomBytes(4).toString('hex')}`;
    const other = await startS3Server({ bucket });
    const dirs = readdirSync(os.tmpdir()).filter((name) => name.startsWith('backupkit-s3-') && existsSync(path.join(os.tmpdir(), name, 'data', bucket)));
    expect(dirs).toHaveLength(1);
    const oc = other.client({ maxAttempts: 1 });
    await oc.send(new PutObjectCommand({ Bucket: bucket, Key: 'x', Body: 'x' }));
    expect(await other.keys()).toEqual(['x']);
    await other.stop();
    expect(existsSync(path.join(os.tmpdir(), dirs[0]!))).toBe(false);
    const after = s3.client({ maxAttempts: 1, endpoint: other.endpoint });
    const failed = await rejection(after.send(new GetObjectCommand({ Bucket: bucket, Key: 'x' })));
    expect(`${failed.code ?? ''} ${failed.message}`).toMatch(/ECONNREFUSED/);
  });
});
