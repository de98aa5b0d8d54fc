import { describe, expect, it } from 'vitest';
import { covers, dumpdataArgs, loaddataArgs, readsStdin, selectModels } from '../../src/drivers/django/django.js';
import { ModelCounter } from '../../src/drivers/django/jsoncount.js';

const fixture = JSON.stringify([
  { model: 'auth.user', pk: 1, fields: { username: 'a "quoted" model: x', groups: [] } },
  { model: 'store.product', fields: { name: '{"model": "fake.one"}', attributes: { model: 'nested.not', list: [{ model: 'deeper.not' }] } } },
  { fields: { note: 'model first?' }, model: 'store.product', pk: 3 },
  { model: 'store.tag', pk: 4, fields: { name: 'Ünïcode ✓ \\ back' } },
]);

describe('dumpdata model counter', () => {
  for (const size of [1, 2, 5, 64, 100_000]) {
    it(`counts objects per model in ${size}-byte chunks, ignoring look-alikes inside values`, () => {
      const data = Buffer.from(fixture);
      const counter = new ModelCounter();
      for (let i = 0; i < data.length; i += size) counter.write(data.subarray(i, i + size));
      expect(Object.fromEntries(counter.result())).toEqual({ 'auth.user': 1, 'store.product': 2, 'store.tag': 1 });
    });
  }
});

describe('django selection and argv', () => {
  const installed = { apps: ['auth', 'contenttypes', 'sessions', 'store'], models: ['auth.permission', 'auth.group', 'auth.user', 'contenttypes.contenttype', 'sessions.session', 'store.tag', 'store.product'] };

  it('drops default excludes that are not installed (admin here), keeps the others', () => {
    expect(selectModels(installed, {})).toEqual({
      excludes: ['contenttypes', 'auth.permission', 'sessions.session'],
      models: ['auth.group', 'auth.user', 'store.tag', 'store.product'],
    });
  });

  it('lets "apps" include apps or models, and "exclude" replace the defaults', () => {
    expect(selectModels(installed, { apps: ['store', 'auth.User'] }).models).toEqual(['auth.user', 'store.tag', 'store.product']);
    expect(selectModels(installed, { exclude: ['store.tag'] })).toEqual({ excludes: ['store.tag'], models: installed.models.filter((m) => m !== 'store.tag') });
  });

  it('matches --only names case-insensitively, by app or model', () => {
    expect(covers('store', 'store.tag')).toBe(true);
    expect(covers('store.Tag', 'store.tag')).toBe(true);
    expect(covers('stor', 'store.tag')).toBe(false);
  });

  it('builds dumpdata and loaddata command lines', () => {
    const options = { project: '/srv/shop', database: 'replica', apps: ['store'] };
    expect(dumpdataArgs(options, ['contenttypes'])).toEqual(['/srv/shop/manage.py', 'dumpdata', '--natural-foreign', '--natural-primary', '--database=replica', '--exclude=contenttypes', 'store']);
    expect(loaddataArgs({ project: '/srv/shop' }, ['store.tag'], '-')).toEqual(['/srv/shop/manage.py', 'loaddata', '--database=default', '--format=json', '--exclude=store.tag', '-']);
  });

  it.each([
    ['3.2.25', true],
    ['4.2', true],
    ['5.1.3', true],
    ['3.1.14', false],
    ['2.2', false],
  ])('Django %s reads fixtures from stdin: %s', (version, stdin) => {
    expect(readsStdin(version)).toBe(stdin);
  });
});
