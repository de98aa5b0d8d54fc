/**
 * The contract every storage passes (src/core/storage.ts): list, write and commit, ranged reads,
 * delete, the leftovers of a dead run, and locking. Each implementation's test file calls
 * `storageContract` with a fixture that makes a fresh, empty storage and knows how to fake what
 * only a dead run leaves behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ExitCode, exitCodeOf } from '../../src/core/errors.js';
import { ARCHIVE_FORMAT, type Sidecar } from '../../src/core/manifest.js';
import type { ArchiveUpload, Storage } from '../../src/core/storage.js';
import { STALE_MS } from '../../src/storage/lock.js';
import { pidSpace } from '../../src/storage/process.js';

export interface StorageFixture {
  storage: Storage;
  /** Leave behind what a run of `target` killed mid-write would (a temp file, an open upload). */
  deadRunLeftover(target: string, id: string): Promise<void>;
  /** Is anything of that left? */
  leftoversOf(target: string): Promise<string[]>;
  /** Every file or object name in the storage, hidden ones included. */
  names(): Promise<string[]>;
  /** Put a lock for `target` that its owner stopped holding (dead pid, or not refreshed). */
  staleLock(target: string): Promise<void>;
  /** Put a lock for `target` by a dead pid on this host name in pid space `space`, last refreshed `ageMs` ago. */
  deadPidLock(target: string, space: string | null, ageMs?: number): Promise<void>;
  cleanup(): Promise<void>;
}

export function sidecarFor(id: string, target: string, data: Buffer): Sidecar {
  return {
    format: ARCHIVE_FORMAT,
    id,
    target,
    driver: 'sqlite',
    createdAt: '2026-11-21T02:00:00.000Z',
    finishedAt: '2026-11-21T02:00:01.000Z',
    durationMs: 1000,
    backupkitVersion: '0.0.0-test',
    host: 'test-host',
    tool: null,
    source: { path: '/tmp/x.sqlite' },
    parts: ['db'],
    units: [],
    fileSets: [],
    entries: [],
    tags: [],
    note: null,
    archive: { file: `${id}.zip`, size: data.length, sha256: createHash('sha256').update(data).digest('hex') },
  };
}

/**
 * Write `data` in `chunk`-sized writes through one reused buffer, overwritten as soon as each
 * write calls back: a storage that still held the chunk then would store garbage.
 */
export async function writeReusing(upload: ArchiveUpload, data: Buffer, chunk = 256 * 1024): Promise<void> {
  const buffer = Buffer.alloc(chunk);
  for (let at = 0; at < data.length; at += chunk) {
    const n = data.copy(buffer, 0, at, Math.min(data.length, at + chunk));
    await new Promise<void>((resolve, reject) => upload.stream.write(buffer.subarray(0, n), (error) => (error ? reject(error) : resolve())));
    buffer.fill(0xee);
  }
  await new Promise<void>((resolve, reject) => {
    upload.stream.once('error', reject);
    upload.stream.end(() => resolve());
  });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

export function storageContract(name: string, make: () => Promise<StorageFixture>): void {
  const withStorage = (test: (f: StorageFixture) => Promise<void>) => async () => {
    const fixture = await make();
    try {
      await test(fixture);
    } finally {
      await fixture.cleanup();
    }
  };
  async function store(storage: Storage, id: string, target: string, data: Buffer): Promise<Sidecar> {
    const upload = storage.createArchive(id, `${id}.zip`, {});
    await writeReusing(upload, data);
    await upload.commit();
    const sidecar = sidecarFor(id, target, data);
    await storage.writeSidecar(sidecar);
    return sidecar;
  }

  describe(`storage contract: ${name}`, () => {
    it('lists nothing when empty, then a backup once its sidecar is written, not before', withStorage(async ({ storage }) => {
      await storage.ensure();
      const empty = await storage.list();
      expect(empty.sidecars).toEqual([]);
      expect(empty.archives.size).toBe(0);
      const data = randomBytes(300_000);
      const upload = storage.createArchive('crm_20261121_020000', 'crm_20261121_020000.zip', {});
      await writeReusing(upload, data);
      await upload.commit();
      const archiveOnly = await storage.list();
      expect(archiveOnly.sidecars).toEqual([]);
      expect(archiveOnly.archives.get('crm_20261121_020000')?.size).toBe(data.length);
      expect(await storage.hasArchive('crm_20261121_020000', 'crm_20261121_020000.zip')).toBe(true);
      const sidecar = sidecarFor('crm_20261121_020000', 'crm', data);
      await storage.writeSidecar(sidecar);
      const listed = await storage.list();
      expect(listed.sidecars).toEqual([sidecar]);
      expect([...listed.sidecarIds]).toEqual(['crm_20261121_020000']);
      expect(await storage.readSidecar('crm_20261121_020000')).toEqual(sidecar);
      expect(await storage.readSidecar('crm_20261121_030000')).toBeUndefined();
      expect([...(await storage.idsTaken('crm_20261121_02'))]).toEqual(['crm_20261121_020000']);
      expect([...(await storage.idsTaken('crm_20261122'))]).toEqual([]);
    }));

    it('probe writes and removes a probe object, leaving the storage as it was', withStorage(async (fixture) => {
      const { storage } = fixture;
      await storage.ensure();
      await store(storage, 'crm_20261121_020000', 'crm', randomBytes(1000));
      const before = await fixture.names();
      const listed = await storage.list();
      const detail = await storage.probe(new AbortController().signal);
      expect(detail).toContain(storage.location);
      expect(detail).toMatch(storage.type === 'local' ? /writable, .+ free of / : /wrote and removed a probe object/);
      expect(await fixture.names()).toEqual(before);
      expect(await storage.list()).toEqual(listed);
    }));

    it('reads back every byte, at any range, across block boundaries, and streams ranges', withStorage(async ({ storage }) => {
      await storage.ensure();
      const data = randomBytes((3 << 20) + 12_345);
      await store(storage, 'crm_20261121_020000', 'crm', data);
      const archive = await storage.openArchive('crm_20261121_020000', 'crm_20261121_020000.zip');
      try {
        expect(archive.size).toBe(data.length);
        for (const [position, length] of [[0, 22], [data.length - 22, 22], [(1 << 20) - 5, 10], [7, 2 << 20], [data.length - 100, 500]] as const) {
          const buffer = Buffer.alloc(length);
          const n = await archive.read(buffer, 0, length, position);
          expect(n).toBe(Math.min(length, data.length - position));
          expect(buffer.subarray(0, n).equals(data.subarray(position, position + n))).toBe(true);
        }
        expect((await readAll(archive.stream(0, data.length))).equals(data)).toBe(true);
        expect((await readAll(archive.stream(1_000_000, 2_500_000))).equals(data.subarray(1_000_000, 2_500_000))).toBe(true);
        expect((await readAll(archive.stream(5, 5))).length).toBe(0);
      } finally {
        await archive.close();
      }
    }));

    it('an archive larger than a part comes back whole', withStorage(async ({ storage }) => {
      await storage.ensure();
      const data = randomBytes(12 << 20);
      await store(storage, 'big_20261121_020000', 'big', data);
      const archive = await storage.openArchive('big_20261121_020000', 'big_20261121_020000.zip');
      try {
        const back = await readAll(archive.stream(0, archive.size));
        expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      } finally {
        await archive.close();
      }
    }));

    it('an aborted write leaves nothing: no listing, no archive, no leftovers', withStorage(async (fixture) => {
      const { storage } = fixture;
      await storage.ensure();
      const upload = storage.createArchive('crm_20261121_020000', 'crm_20261121_020000.zip', {});
      const buffer = randomBytes(6 << 20);
      await new Promise<void>((resolve, reject) => upload.stream.write(buffer, (error) => (error ? reject(error) : resolve())));
      await upload.abort();
      const listing = await storage.list();
      expect(listing.sidecars).toEqual([]);
      expect(listing.archives.size).toBe(0);
      expect(await storage.hasArchive('crm_20261121_020000', 'crm_20261121_020000.zip')).toBe(false);
      expect(await fixture.leftoversOf('crm')).toEqual([]);
    }));

    it('an archive that is missing is a verification error (exit 3) when opened', withStorage(async ({ storage }) => {
      await storage.ensure();
      const error = await storage.openArchive('crm_20261121_020000', 'crm_20261121_020000.zip').then(() => undefined, (e: unknown) => e);
      expect(exitCodeOf(error)).toBe(ExitCode.verification);
    }));

    it('removes a backup, archive and sidecar', withStorage(async ({ storage }) => {
      await storage.ensure();
      await store(storage, 'crm_20261121_020000', 'crm', randomBytes(1000));
      await store(storage, 'crm_20261121_030000', 'crm', randomBytes(1000));
      await storage.remove('crm_20261121_020000', 'crm_20261121_020000.zip');
      const listing = await storage.list();
      expect(listing.sidecars.map((s) => s.id)).toEqual(['crm_20261121_030000']);
      expect([...listing.archives.keys()]).toEqual(['crm_20261121_030000']);
      await storage.remove('crm_20261121_020000', 'crm_20261121_020000.zip'); // already gone: no error
    }));

    it('skips a JSON file that is not a sidecar, and says why', withStorage(async ({ storage }) => {
      await storage.ensure();
      await store(storage, 'crm_20261121_020000', 'crm', randomBytes(100));
      const foreign = { ...sidecarFor('crm_20261121_030000', 'crm', Buffer.alloc(1)), format: 'something-else' } as unknown as Sidecar;
      await storage.writeSidecar(foreign);
      const listing = await storage.list();
      expect(listing.sidecars.map((s) => s.id)).toEqual(['crm_20261121_020000']);
      expect(listing.skipped.map((s) => s.name)).toEqual(['crm_20261121_030000.json']);
    }));

    it('removes what a dead run of the target left, and only that target\'s', withStorage(async (fixture) => {
      const { storage } = fixture;
      await storage.ensure();
      await fixture.deadRunLeftover('crm', 'crm_20261121_020000');
      await fixture.deadRunLeftover('crm_eu', 'crm_eu_20261121_020000');
      expect((await fixture.leftoversOf('crm')).length).toBeGreaterThan(0);
      const removed = await storage.removeLeftovers('crm');
      expect(removed.length).toBeGreaterThan(0);
      expect(await fixture.leftoversOf('crm')).toEqual([]);
      expect((await fixture.leftoversOf('crm_eu')).length).toBeGreaterThan(0);
      expect((await storage.list()).sidecars).toEqual([]);
    }));

    it('locks a target against a second run (exit 4), not other targets; a released or stale lock is taken', withStorage(async (fixture) => {
      const { storage } = fixture;
      await storage.ensure();
      const now = new Date();
      const first = await storage.lock('crm', 'backup', now);
      const second = await storage.lock('crm', 'backup', now).then(() => undefined, (e: unknown) => e);
      expect(exitCodeOf(second)).toBe(ExitCode.locked);
      expect(String(second)).toMatch(/locked/);
      const other = await storage.lock('shop', 'backup', now);
      await other.release();
      await first.release();
      const again = await storage.lock('crm', 'clean', now);
      await again.release();
      await fixture.staleLock('crm');
      const takeover = await storage.lock('crm', 'backup', now);
      await takeover.release();
    }));

    it('takes over a dead pid\'s lock at once only when the pid is of this host and pid namespace; another container\'s (same host name) once it is no longer refreshed', withStorage(async (fixture) => {
      const { storage } = fixture;
      await storage.ensure();
      const now = new Date();
      const elsewhere = 'another-boot-id pid:[4026531836]';
      await fixture.deadPidLock('crm', elsewhere);
      const refused = await storage.lock('crm', 'backup', now).then(() => undefined, (e: unknown) => e);
      expect(exitCodeOf(refused)).toBe(ExitCode.locked);
      // A container restarted since (a new pid namespace) takes its dead run's lock once it is stale.
      await fixture.deadPidLock('crm', elsewhere, STALE_MS + 5000);
      const afterRestart = await storage.lock('crm', 'backup', now);
      await afterRestart.release();
      expect(pidSpace()).not.toBeNull();
      await fixture.deadPidLock('crm', pidSpace());
      const takeover = await storage.lock('crm', 'backup', now);
      await takeover.release();
    }));
  });
}
