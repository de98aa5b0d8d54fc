/** /healthz's verdict: which backup is a target's newest good one, and when a target is unhealthy. */
import { describe, expect, it } from 'vitest';
import type { Sidecar } from '../../src/core/manifest.js';
import type { StorageListing } from '../../src/core/storage.js';
import { judge, newestGood } from '../../src/daemon/health.js';

function sidecar(id: string, createdAt: string, extra: { tags?: string[]; parts?: ('db' | 'files')[]; size?: number } = {}): Sidecar {
  return {
    id,
    target: id.split('_')[0]!,
    driver: 'sqlite',
    createdAt,
    tags: extra.tags ?? [],
    parts: extra.parts ?? ['db', 'files'],
    archive: { file: `${id}.zip`, size: extra.size ?? 100, sha256: 'x' },
  } as unknown as Sidecar;
}

function listing(sidecars: Sidecar[], archiveSizes: Record<string, number> = {}): StorageListing {
  return {
    sidecars,
    sidecarIds: new Set(sidecars.map((s) => s.id)),
    archives: new Map(sidecars.map((s) => [s.id, { file: s.archive.file, size: archiveSizes[s.id] ?? s.archive.size, modified: new Date(0) }])),
    skipped: [],
  };
}

const sqlite = { name: 'sqlite' };
const app = { name: 'app', files: ['/srv/uploads'], driver: sqlite };

describe('newestGood', () => {
  it('passes over pre-restore snapshots, archives of the wrong size, backups missing a part and other targets', () => {
    const local = listing(
      [
        sidecar('app_20260301_050000', '2026-03-01T05:00:00Z', { tags: ['pre-restore'] }),
        sidecar('app_20260301_040000', '2026-03-01T04:00:00Z', { size: 500 }),
        sidecar('app_20260301_030000', '2026-03-01T03:00:00Z', { parts: ['db'] }),
        sidecar('other_20260301_060000', '2026-03-01T06:00:00Z'),
        sidecar('app_20260301_020000', '2026-03-01T02:00:00Z'),
        sidecar('app_20260301_010000', '2026-03-01T01:00:00Z'),
      ],
      { app_20260301_040000: 400 },
    );
    const offsite = listing([sidecar('app_20260301_020000', '2026-03-01T02:00:00Z')]);
    const newest = newestGood(app, [
      { storage: 'local', listing: local },
      { storage: 'offsite', listing: offsite },
    ]);
    expect(newest).toEqual({ id: 'app_20260301_020000', createdAt: new Date('2026-03-01T02:00:00Z'), size: 100, storages: ['local', 'offsite'] });
    // A target without files: a db-only backup is whole.
    expect(newestGood({ name: 'app', files: [], driver: sqlite }, [{ storage: 'local', listing: local }])?.id).toBe('app_20260301_030000');
    expect(newestGood(app, [{ storage: 'local', listing: listing([]) }])).toBeUndefined();
  });
});

describe('judge', () => {
  const now = new Date('2026-03-02T04:00:00Z');
  const newest = { id: 'app_20260301_020000', createdAt: new Date('2026-03-01T02:00:00Z'), size: 100, storages: ['local'] };

  it('is ok while every target with a maxAge has a backup younger than it', () => {
    const report = judge([{ name: 'app', files: [], maxAgeMs: 26 * 3_600_000 }, { name: 'adhoc', files: [], maxAgeMs: undefined }], new Map([['app', { newest, unlisted: [] }]]), now);
    expect(report).toEqual({
      ok: true,
      time: '2026-03-02T04:00:00.000Z',
      targets: [
        { target: 'app', ok: true, id: newest.id, createdAt: '2026-03-01T02:00:00.000Z', ageSeconds: 26 * 3600, maxAgeSeconds: 26 * 3600, problem: null },
        // No maxAge: reported, never judged.
        { target: 'adhoc', ok: true, id: null, createdAt: null, ageSeconds: null, maxAgeSeconds: null, problem: null },
      ],
    });
  });

  it('is unhealthy when a target is over its maxAge or has no good backup', () => {
    const over = judge([{ name: 'app', files: [], maxAgeMs: 25 * 3_600_000 }], new Map([['app', { newest, unlisted: [] }]]), now);
    expect(over.ok).toBe(false);
    expect(over.targets[0]).toMatchObject({ ok: false, problem: 'newest good backup is 26h00m old (maxAge 25h00m)' });
    const none = judge([{ name: 'app', files: [], maxAgeMs: 60_000 }], new Map([['app', { newest: undefined, unlisted: [{ storage: 'offsite', error: 'timed out' }] }]]), now);
    expect(none.ok).toBe(false);
    expect(none.targets[0]).toMatchObject({ ok: false, id: null, problem: 'no good backup (storage offsite could not be listed: timed out)' });
  });
});
