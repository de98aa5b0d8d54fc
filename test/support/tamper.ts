/** Damaging and forging archives the way the safety tests need (python3's zipfile writes raw names). */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

export function flipByte(file: string, offset: number): void {
  const data = readFileSync(file);
  data[offset] = data[offset]! ^ 0xff;
  writeFileSync(file, data);
}

export function truncate(file: string, keep: number): void {
  writeFileSync(file, readFileSync(file).subarray(0, keep));
}

const ADD_ENTRY = `
import hashlib, json, sys, zipfile
src, dst, name, data, link = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode(), sys.argv[5] == '1'
zin = zipfile.ZipFile(src)
manifest = json.loads(zin.read('manifest.json'))
manifest['entries'].append({'path': name, 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest()})
with zipfile.ZipFile(dst, 'w') as zout:
    for info in zin.infolist():
        if info.filename != 'manifest.json':
            zout.writestr(info, zin.read(info.filename))
    extra = zipfile.ZipInfo(name)
    extra.create_system = 3
    extra.external_attr = ((0o120777 if link else 0o100644) << 16)
    zout.writestr(extra, data)
    zout.writestr('manifest.json', json.dumps(manifest))
print(json.dumps(manifest))
`;

/**
 * Rewrite `archive` with one more entry listed in its manifest, and a sidecar that matches, as a
 * forged archive would be: every checksum is right, only the entry's name or link is hostile.
 */
export function addHostileEntry(archive: string, sidecarFile: string, name: string, data: string, symlink = false): void {
  rewrite(archive, sidecarFile, ADD_ENTRY, [name, data, symlink ? '1' : '0']);
}

/** Run a zipfile script that writes `<archive>.new` and prints its manifest; put both in place. */
function rewrite(archive: string, sidecarFile: string, script: string, args: string[]): void {
  const manifest = JSON.parse(execFileSync('python3', ['-c', script, archive, `${archive}.new`, ...args]).toString());
  const bytes = readFileSync(`${archive}.new`);
  writeFileSync(archive, bytes);
  rmSync(`${archive}.new`);
  const sidecar = JSON.parse(readFileSync(sidecarFile, 'utf8'));
  writeFileSync(
    sidecarFile,
    JSON.stringify({ ...manifest, archive: { ...sidecar.archive, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') } }),
  );
}

const REPLACE_ENTRY = `
import hashlib, json, sys, zipfile
src, dst, name, data_file, method, new_name = sys.argv[1:7]
data = open(data_file, 'rb').read()
zin = zipfile.ZipFile(src)
manifest = json.loads(zin.read('manifest.json'))
for entry in manifest['entries']:
    if entry['path'] == name:
        entry.update(path=new_name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
with zipfile.ZipFile(dst, 'w') as zout:
    for info in zin.infolist():
        if info.filename == 'manifest.json':
            continue
        if info.filename == name:
            stored = zipfile.ZipInfo(new_name, info.date_time)
            stored.create_system = 3
            stored.external_attr = info.external_attr
            stored.compress_type = zipfile.ZIP_DEFLATED if method == 'deflated' else zipfile.ZIP_STORED
            zout.writestr(stored, data)
        else:
            zout.writestr(info, zin.read(info.filename))
    zout.writestr('manifest.json', json.dumps(manifest))
print(json.dumps(manifest))
`;

/**
 * Rewrite `archive` with entry `name` holding the bytes of `dataFile`, stored or deflated, under
 * the name `as` when given, and a manifest and sidecar to match: an archive as an earlier version
 * wrote it, with every checksum right.
 */
export function replaceEntry(archive: string, sidecarFile: string, name: string, dataFile: string, method: 'stored' | 'deflated' = 'stored', as = name): void {
  rewrite(archive, sidecarFile, REPLACE_ENTRY, [name, dataFile, method, as]);
}

const SET_COUNT = `
import json, sys, zipfile
src, dst, unit, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
zin = zipfile.ZipFile(src)
manifest = json.loads(zin.read('manifest.json'))
matched = [u for u in manifest['units'] if u['name'] == unit]
assert matched, 'no unit ' + unit
for u in matched:
    u['count'] = count
with zipfile.ZipFile(dst, 'w') as zout:
    for info in zin.infolist():
        if info.filename != 'manifest.json':
            zout.writestr(info, zin.read(info.filename))
    zout.writestr('manifest.json', json.dumps(manifest))
print(json.dumps(manifest))
`;

/**
 * Rewrite `archive` with `unit`'s count in its manifest set to `count`, and a sidecar to match: a
 * backup whose every checksum is right and whose data no longer matches its count.
 */
export function setUnitCount(archive: string, sidecarFile: string, unit: string, count: number): void {
  rewrite(archive, sidecarFile, SET_COUNT, [unit, String(count)]);
}
