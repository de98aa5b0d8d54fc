/**
 * The S3 pairs, on the S3 test server (s3rver on loopback, in a process of its own: bench.ts):
 *   s3-backup   `backupkit backup` of the pg database to a local folder and a bucket at once,
 *               against the same backup to the local folder alone; and the peak RSS of the former
 *   s3-upload   `backupkit copy --from local --to offsite <id>` of a stored pg backup against
 *               `aws s3 cp` of the same archive file
 * What each run put in the bucket is checked (size) and deleted, untimed, before the next run.
 */
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE } from '../../src/storage/s3.js';
import { type Bench, type S3Service, type StoredBackup, log } from '../bench.js';
import { psql } from '../data.js';
import { measure } from '../measure.js';
import { type Row, formatBytes } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { S3_RATIO_MAX, S3_RSS_MAX_BYTES, checks, row } from '../targets.js';
import { backupContender, jsonOut, keeper } from './backupkit.js';
import { pgConfig, pgTarget } from './pg.js';

/** The storages of an S3 config: the local folder (BENCH_STORAGE) and the bucket under `prefix`. */
function storages(s3: S3Service, prefix: string): Record<string, unknown> {
  return {
    local: { type: 'local', path: '${BENCH_STORAGE}' },
    offsite: {
      type: 's3',
      bucket: s3.bucket,
      prefix,
      region: s3.region,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      accessKeyId: '${S3_KEY_ID}',
      secretAccessKey: '${S3_SECRET}',
    },
  };
}

const credentials = (s3: S3Service) => ({ S3_KEY_ID: s3.accessKeyId, S3_SECRET: s3.secretAccessKey });

/** The harness's own client, for the untimed checks and clean-ups between runs. */
class Bucket {
  readonly client: S3Client;

  constructor(readonly s3: S3Service) {
    // The SDK's notice about Node 20 is noise in the harness's log; the variable is set only while
    // this client is made, so the commands the harness runs still see the environment they would.
    const quiet = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
    const before = process.env[quiet];
    process.env[quiet] = 'true';
    try {
      this.client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
    } finally {
      if (before === undefined) delete process.env[quiet];
      else process.env[quiet] = before;
    }
  }

  /** Throws unless `key` holds `size` bytes. */
  async expect(key: string, size: number): Promise<void> {
    const head = await this.client.send(new HeadObjectCommand({ Bucket: this.s3.bucket, Key: key }));
    if (head.ContentLength !== size) throw new Error(`s3://${this.s3.bucket}/${key} holds ${head.ContentLength} bytes, expected ${size}`);
  }

  /** Deletes every object under `prefix`. */
  async clear(prefix: string): Promise<void> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.s3.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) await this.client.send(new DeleteObjectCommand({ Bucket: this.s3.bucket, Key: object.Key! }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  destroy(): void {
    this.client.destroy();
  }
}

export async function pairS3Backup(bench: Bench): Promise<Row[]> {
  const pg = await bench.ensurePg();
  const s3 = await bench.ensureS3();
  const bucket = new Bucket(s3);
  try {
    const local = await pgConfig(bench, pg);
    const prefix = 'pg-s3/';
    const both = bench.writeConfig('pg-s3', { pg: { ...pgTarget(bench, pg), storages: ['local', 'offsite'] } }, storages(s3, prefix));
    // A is pg-backup's B: what the database's backup costs without a bucket.
    const a = backupContender(bench, 'backupkit backup (local)', local, 'pg', keeper(bench, 'pgStorage'));
    const b = backupContender(bench, 'backupkit backup (local + S3)', both, 'pg', keeper(bench, null), {
      env: credentials(s3),
      async after(record) {
        if (!record.storages.includes('offsite')) throw new Error(`backup ${record.id} did not reach the bucket: ${record.storages.join(', ')}`);
        await bucket.expect(`${prefix}${record.file}`, record.size);
        await bucket.clear(prefix);
      },
    });
    b.command = `backupkit backup pg (storages local and offsite: s3://${s3.bucket}/${prefix})`;
    const samples = await runPair(bench, 's3-backup', [a, b], { rounds: bench.options.rounds, cold: true, before: () => void psql(pg, 'CHECKPOINT') });
    const sa = sideOf(a, samples.get(a)!);
    const sb = sideOf(b, samples.get(b)!);
    return [
      row('s3-backup', sa, sb, `B/A ≤ ${S3_RATIO_MAX.toFixed(2)} (A: the same backup to the local folder alone)`, (r) => [checks.ratio(r, S3_RATIO_MAX)]),
      row('s3-backup', null, sb, `RSS ≤ ${(S3_RSS_MAX_BYTES / 1e6).toFixed(0)} MB, scratch 0 (local + S3)`, () => [checks.rss(sb, S3_RSS_MAX_BYTES), checks.scratch(sb)]),
    ];
  } finally {
    bucket.destroy();
  }
}

/** Debian's awscli (/usr/bin/aws), else an `aws` on PATH; undefined when there is none. */
function findAwsCli(): { bin: string; version: string } | undefined {
  for (const bin of ['/usr/bin/aws', 'aws']) {
    if (bin.startsWith('/') && !existsSync(bin)) continue;
    try {
      // awscli 1 prints its version on stderr, 2 on stdout.
      const out = execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_PAGER: '' } });
      return { bin, version: out.trim().split(/\s+/)[0]! };
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
      if ((error as { status?: number }).status === 0 || /^aws-cli\//.test(stderr)) return { bin, version: stderr.split(/\s+/)[0]! };
    }
  }
  return undefined;
}

/** A pg backup in a local storage folder: pg-backup's or s3-backup's, else one made now (untimed). */
async function storedPgBackup(bench: Bench): Promise<{ stored: StoredBackup; targets: Record<string, unknown> }> {
  if (!bench.pgStorage) {
    const pg = await bench.ensurePg();
    log('s3-upload: making the backupkit backup to upload (untimed)');
    await backupContender(bench, 'backupkit backup', await pgConfig(bench, pg), 'pg', keeper(bench, 'pgStorage')).run();
  }
  // The config that made it (the cluster may be stopped by now; copy does not connect to it).
  const config = JSON.parse(readFileSync(path.join(bench.work, 'pg.config.json'), 'utf8')) as { targets: Record<string, unknown> };
  return { stored: bench.pgStorage!, targets: config.targets };
}

export async function pairS3Upload(bench: Bench): Promise<Row[]> {
  const aws = findAwsCli();
  if (!aws) {
    const reason = 'awscli is not installed (no /usr/bin/aws, no aws on PATH; apt-get install awscli)';
    log(`s3-upload: skipped: ${reason}`);
    bench.skipped.push({ pair: 's3-upload', reason });
    return [];
  }
  const s3 = await bench.ensureS3();
  const { stored, targets } = await storedPgBackup(bench);
  const archive = path.join(stored.dir, `${stored.id}.zip`);
  const bucket = new Bucket(s3);
  try {
    const copyPrefix = 'copy/';
    const config = bench.writeConfig('copy', targets, storages(s3, copyPrefix));
    // Path-style requests to the loopback endpoint (botocore would pick them for an IP address
    // anyway); no shared credentials file, no instance metadata: only the environment's keys.
    const awsConfig = path.join(bench.work, 'aws.config');
    writeFileSync(awsConfig, `[default]\nregion = ${s3.region}\ns3 =\n  addressing_style = path\n`, { mode: 0o600 });
    const awsKey = `aws-cp/${stored.id}.zip`;
    const a: Contender = {
      label: 'aws s3 cp',
      command: `aws s3 cp <archive> s3://${s3.bucket}/aws-cp/<id>.zip --endpoint-url http://127.0.0.1:<port> --no-progress`,
      async run() {
        const tmp = bench.fresh('tmp');
        const m = await measure({
          command: aws.bin,
          args: ['s3', 'cp', archive, `s3://${s3.bucket}/${awsKey}`, '--endpoint-url', s3.endpoint, '--no-progress'],
          env: {
            AWS_ACCESS_KEY_ID: s3.accessKeyId,
            AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
            AWS_DEFAULT_REGION: s3.region,
            AWS_EC2_METADATA_DISABLED: 'true',
            AWS_CONFIG_FILE: awsConfig,
            AWS_SHARED_CREDENTIALS_FILE: path.join(bench.work, 'aws.credentials.none'),
            AWS_PAGER: '',
            TMPDIR: tmp,
          },
          watch: [tmp],
        });
        await bucket.expect(awsKey, stored.size);
        await bucket.clear('aws-cp/');
        return { m, outputBytes: stored.size };
      },
    };
    const b: Contender = {
      label: 'backupkit copy --from local --to offsite',
      command: `backupkit copy --from local --to offsite <id> (s3://${s3.bucket}/${copyPrefix})`,
      async run() {
        const m = await measure(bench.backupkit(config, stored.dir, ['--json', 'copy', '--from', 'local', '--to', 'offsite', stored.id], { captureStdout: true, env: credentials(s3) }));
        const copied = jsonOut<{ copied: { id: string }[] }>(m).copied;
        if (copied.length !== 1 || copied[0]!.id !== stored.id) throw new Error(`copy of ${stored.id} copied ${JSON.stringify(copied)}`);
        await bucket.expect(`${copyPrefix}${stored.id}.zip`, stored.size);
        await bucket.clear(copyPrefix);
        return { m, outputBytes: stored.size };
      },
    };
    const samples = await runPair(bench, 's3-upload', [a, b], { rounds: bench.options.rounds, cold: false });
    const sa = sideOf(a, samples.get(a)!);
    const sb = sideOf(b, samples.get(b)!);
    const mbps = (ms: number) => `${(stored.size / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
    bench.awsCli = `${aws.version} (${aws.bin})`;
    bench.notes.push(
      `s3-upload: the pg backup's archive, ${formatBytes(stored.size)}; aws s3 cp ${mbps(sa.medianMs)}, backupkit copy ${mbps(sb.medianMs)}. ` +
        `Each with its default parts: aws s3 cp 8 MiB parts, 10 at once; backupkit ${formatBytes(DEFAULT_PART_SIZE)} parts, ${DEFAULT_QUEUE_SIZE} at once. backupkit copy also lists both storages, ` +
        'takes the target\'s lock in the bucket, hashes the archive to check its SHA-256 and puts the sidecar, all inside its time.',
    );
    return [row('s3-upload', sa, sb, `B/A ≤ ${S3_RATIO_MAX.toFixed(2)}`, (r) => [checks.ratio(r, S3_RATIO_MAX)])];
  } finally {
    bucket.destroy();
  }
}
