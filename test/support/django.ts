/**
 * The Django test shop (test/fixtures/djangoshop), run with Debian's /usr/bin/python3 and
 * python3-django: a migrated SQLite database per test, seeded with related objects, and a copy of
 * its media folder.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './cli.js';

export const PROJECT = fileURLToPath(new URL('../fixtures/djangoshop', import.meta.url));
export const PYTHON = '/usr/bin/python3';

export interface Shop {
  dir: string;
  env: Record<string, string>;
  media: string;
}

export function manage(shop: Shop, args: string[], input?: string): string {
  return execFileSync(PYTHON, [path.join(PROJECT, 'manage.py'), ...args], { cwd: PROJECT, env: { ...process.env, ...shop.env }, input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
}

const SEED = `
from decimal import Decimal
from datetime import datetime, timezone, timedelta
from django.contrib.auth.models import User
from store.models import Category, Order, OrderLine, Product, Tag
tags = [Tag.objects.create(name=n) for n in ["new", "sale", "eco", "Ünïcode ✓"]]
cats = [Category.objects.create(slug=s, title=t) for s, t in [("lamps", "Lamps"), ("chairs", "Chairs & Stools"), ("misc", "Misc \\"quoted\\"")]]
base = datetime(2026, 1, 1, tzinfo=timezone.utc)
# Whole milliseconds: Django's JSON serializer keeps no more, so a now() with microseconds would not
# come back equal (documented in the README), and user0 lands on a whole second, written without a fraction.
users = [User.objects.create_user(f"user{i}", f"user{i}@example.com", "pw", date_joined=base + timedelta(minutes=i, milliseconds=250 * i)) for i in range(5)]
products = []
for i in range(60):
    p = Product.objects.create(category=cats[i % 3], name=f"Product {i} — ünïcode", price=Decimal(f"{i}.{i % 100:02d}"),
        attributes={"i": i, "colors": ["red", "blue"][: i % 3], "nested": {"ok": i % 2 == 0, "none": None}},
        created=base + timedelta(hours=i, milliseconds=i), image="products/lamp.png" if i % 2 else "")
    p.tags.set(tags[: i % 4])
    products.append(p)
for i in range(40):
    o = Order.objects.create(customer=users[i % 5], placed=base + timedelta(days=i), total=Decimal("0"), note="" if i % 3 else f"note {i}\\nline 2")
    for j in range(1 + i % 3):
        OrderLine.objects.create(order=o, product=products[(i + j) % 60], quantity=1 + j)
print("seeded")
`;

const FINGERPRINT = `
import json, os
from django.core import serializers
from django.apps import apps
alias = os.environ.get("FP_ALIAS", "default")
out = {}
for label in ["auth.user", "auth.group", "store.tag", "store.category", "store.product", "store.order", "store.orderline"]:
    model = apps.get_model(label)
    objs = json.loads(serializers.serialize("json", model.objects.using(alias).all(), use_natural_foreign_keys=True, use_natural_primary_keys=True))
    for o in objs:
        if label == "auth.user":
            o["fields"].pop("last_login", None)
    out[label] = sorted(json.dumps(o, sort_keys=True) for o in objs)
print("FP" + json.dumps(out))
`;

export function setupShop(): Shop {
  const dir = tempDir('backupkit-django-');
  const media = path.join(dir, 'media');
  cpSync(path.join(PROJECT, 'media'), media, { recursive: true });
  const shop: Shop = { dir, media, env: { SHOP_DB: path.join(dir, 'shop.sqlite3'), SHOP_OTHER_DB: path.join(dir, 'other.sqlite3'), SHOP_MEDIA: media } };
  manage(shop, ['migrate', '--noinput']);
  manage(shop, ['migrate', '--noinput', '--database=other']);
  manage(shop, ['shell', '-c', SEED]);
  return shop;
}

/** Every object of the shop's models, serialised with natural keys and sorted. */
export function shopFingerprint(shop: Shop, alias = 'default'): Record<string, string[]> {
  const out = execFileSync(PYTHON, [path.join(PROJECT, 'manage.py'), 'shell', '-c', FINGERPRINT], { cwd: PROJECT, env: { ...process.env, ...shop.env, FP_ALIAS: alias } }).toString();
  const line = out.split('\n').find((l) => l.startsWith('FP'))!;
  return JSON.parse(line.slice(2));
}

/** SHA-256 of every file under a folder, by relative path. */
export function treeHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = path.join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(full).isDirectory()) walk(full, r);
      else out[r] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  walk(dir, '');
  return out;
}
