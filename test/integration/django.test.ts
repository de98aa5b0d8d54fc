/**
 * django-dumpdata round trips with media on a real Django (Debian's python3-django, /usr/bin/python3):
 * every object compared before and after (serialised with natural keys), media files by hash.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, writeConfig } from '../support/cli.js';
import { PROJECT, PYTHON, type Shop, manage, setupShop, shopFingerprint, treeHashes } from '../support/django.js';

function configure(shop: Shop, extra: Record<string, unknown> = {}) {
  const config = writeConfig(shop.dir, {
    storage: { path: './store' },
    targets: { shop: { driver: 'django-dumpdata', project: PROJECT, python: PYTHON, files: [shop.media], ...extra } },
  });
  return (...args: string[]) => runCli(['-c', config, ...args], { cwd: shop.dir, env: shop.env });
}

function damage(shop: Shop): void {
  manage(shop, ['shell', '-c', 'from store.models import *\nOrderLine.objects.filter(id__gt=10).delete()\nProduct.objects.filter(id__lt=5).update(name="changed")\nTag.objects.filter(name="eco").delete()']);
  rmSync(path.join(shop.media, 'docs'), { recursive: true });
  writeFileSync(path.join(shop.media, 'products', 'lamp.png'), 'corrupted');
}

describe('django-dumpdata driver', () => {
  it('backs up database and media, counts objects per model, and restores both (with --flush)', async () => {
    const shop = setupShop();
    const cli = configure(shop);
    const before = shopFingerprint(shop);
    const media = treeHashes(shop.media);

    const backup = await cli('--json', 'backup', 'shop');
    expect(backup.code, backup.stderr).toBe(0);
    const id = backup.json().backups[0].id;
    const inspect = (await cli('--json', 'inspect', id)).json();
    expect(inspect.parts).toEqual(['db', 'files']);
    expect(inspect.tool.name).toBe('django');
    const counts = Object.fromEntries(inspect.units.map((u: { name: string; count: number }) => [u.name, u.count]));
    // 40 orders of 1 + (i % 3) lines each: 79 lines.
    expect(counts).toEqual({ 'auth.user': 5, 'auth.group': 0, 'store.tag': 4, 'store.category': 3, 'store.product': 60, 'store.order': 40, 'store.orderline': 79 });
    expect(inspect.units.every((u: { kind: string }) => u.kind === 'model')).toBe(true);

    damage(shop);
    expect(shopFingerprint(shop)).not.toEqual(before);
    const restore = await cli('--json', 'restore', 'shop', id, '--flush', '--yes');
    expect(restore.code, restore.stderr).toBe(0);
    expect(shopFingerprint(shop)).toEqual(before);
    expect(treeHashes(shop.media)).toEqual(media);
  });

  it('restores --only an app or a model, leaving the rest as it is', async () => {
    const shop = setupShop();
    const cli = configure(shop);
    const before = shopFingerprint(shop);
    const id = (await cli('--json', 'backup', 'shop', '--only', 'db')).json().backups[0].id;
    manage(shop, ['shell', '-c', 'from store.models import *\nTag.objects.update(name=models.functions.Concat("name", models.Value("-x")))\nfrom django.contrib.auth.models import User\nUser.objects.update(email="changed@example.com")']);
    const changed = shopFingerprint(shop);
    const only = await cli('--json', 'restore', 'shop', id, '--only', 'store.Tag', '--yes', '--no-snapshot');
    expect(only.code, only.stderr).toBe(0);
    expect(only.json().units.map((u: { name: string }) => u.name)).toEqual(['store.tag']);
    const after = shopFingerprint(shop);
    expect(after['auth.user']).toEqual(changed['auth.user']);
    // Tags come back by natural key: the originals are there again beside the renamed ones.
    for (const tag of before['store.tag']!) expect(after['store.tag']).toContain(tag);

    const app = await cli('--json', 'restore', 'shop', id, '--only', 'auth', '--yes', '--no-snapshot');
    expect(app.code, app.stderr).toBe(0);
    expect(app.json().units.map((u: { name: string }) => u.name).sort()).toEqual(['auth.group', 'auth.user']);
    expect(shopFingerprint(shop)['auth.user']).toEqual(before['auth.user']);

    const flushOnly = await cli('restore', 'shop', id, '--only', 'auth', '--flush', '--yes');
    expect(flushOnly.code).toBe(2);
  });

  it('makes db-only and files-only archives, and restores one part of a full archive', async () => {
    const shop = setupShop();
    const cli = configure(shop);
    const before = shopFingerprint(shop);
    const media = treeHashes(shop.media);
    const dbOnly = (await cli('--json', 'backup', '--only', 'db')).json().backups[0];
    const filesOnly = (await cli('--json', 'backup', '--only', 'files')).json().backups[0];
    const full = (await cli('--json', 'backup')).json().backups[0];
    expect((await cli('--json', 'inspect', dbOnly.id)).json().parts).toEqual(['db']);
    expect((await cli('--json', 'inspect', filesOnly.id)).json().parts).toEqual(['files']);
    expect(filesOnly.units).toBe(0);
    expect(dbOnly.files).toBe(0);

    damage(shop);
    const damaged = shopFingerprint(shop);
    // Files only, from the full archive: the database stays damaged.
    const files = await cli('--json', 'restore', 'shop', full.id, '--only', 'files', '--yes');
    expect(files.code, files.stderr).toBe(0);
    expect(treeHashes(shop.media)).toEqual(media);
    expect(shopFingerprint(shop)).toEqual(damaged);
    // A db-only archive restores the database and leaves the files alone.
    writeFileSync(path.join(shop.media, 'new-upload.txt'), 'uploaded after');
    const db = await cli('--json', 'restore', 'shop', dbOnly.id, '--flush', '--yes');
    expect(db.code, db.stderr).toBe(0);
    expect(shopFingerprint(shop)).toEqual(before);
    expect(treeHashes(shop.media)['new-upload.txt']).toBeDefined();
    // A files-only archive has no database part to restore alone.
    expect((await cli('restore', 'shop', filesOnly.id, '--only', 'db', '--yes')).code).toBe(2);
  });

  it('restores --into another database alias', async () => {
    const shop = setupShop();
    const cli = configure(shop);
    const before = shopFingerprint(shop);
    const id = (await cli('--json', 'backup', 'shop')).json().backups[0].id;
    const into = await cli('--json', 'restore', 'shop', id, '--into', 'other', '--yes');
    expect(into.code, into.stderr).toBe(0);
    expect(into.json().snapshot).toBeNull(); // "other" was empty
    expect(shopFingerprint(shop, 'other')).toEqual(before);
  });

  it('says clearly when the interpreter is missing or cannot import Django', async () => {
    const shop = setupShop();
    const missing = await configure(shop, { python: '/nonexistent/python3' })('backup', 'shop');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('/nonexistent/python3');
    const wrapper = path.join(shop.dir, 'python-without-django');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${PYTHON} -S "$@"\n`, { mode: 0o755 });
    const noDjango = await configure(shop, { python: wrapper })('backup', 'shop');
    expect(noDjango.code).toBe(1);
    expect(noDjango.stderr).toContain(`Django cannot be imported by ${wrapper}`);
    expect(noDjango.stderr).toContain('python3-django');
  });
});
