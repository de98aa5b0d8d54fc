/**
 * Running a pair: one untimed warm-up of each side, then `rounds` rounds alternating A and B
 * (A B, then B A, ...), the OS page cache dropped before each run of a cold pair.
 */
import os from 'node:os';
import { type Bench, log } from './bench.js';
import { cpuProbe } from './machine.js';
import { type Measurement, median } from './measure.js';
import { type Side, formatBytes, formatMs, formatRss } from './report.js';

export interface Contender {
  label: string;
  /** What the runs table shows (no secrets). */
  command: string;
  run(): Promise<{ m: Measurement; outputBytes: number | null }>;
}

interface Sample {
  m: Measurement;
  outputBytes: number | null;
}

export interface PairRun {
  rounds: number;
  cold: boolean;
  warmup?: boolean;
  /** Untimed, before every run (e.g. a CHECKPOINT). */
  before?: () => void | Promise<void>;
}

export async function runPair(bench: Bench, id: string, contenders: Contender[], plan: PairRun): Promise<Map<Contender, Sample[]>> {
  const samples = new Map<Contender, Sample[]>(contenders.map((c) => [c, []]));
  bench.probes.push({ pair: id, mbPerS: cpuProbe() });
  const once = async (c: Contender) => {
    await plan.before?.();
    if (plan.cold) bench.cachesDropped = bench.dropCaches() || bench.cachesDropped;
    return c.run();
  };
  if (plan.warmup !== false) {
    for (const c of contenders) {
      log(`${id}: warm-up ${c.label}`);
      await once(c);
    }
  }
  for (let round = 0; round < plan.rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      bench.loads.push(os.loadavg()[0]!);
      const sample = await once(c);
      samples.get(c)!.push(sample);
      log(
        `${id}: round ${round + 1}/${plan.rounds} ${c.label}: ${formatMs(sample.m.wallMs)}, RSS ${formatRss(sample.m.ownPeakRssKb || sample.m.maxRssKb)} ` +
          `(largest process ${formatRss(sample.m.maxRssKb)}, tree ${formatRss(sample.m.treePeakRssKb)}), CPU ${(sample.m.userS + sample.m.sysS).toFixed(2)} s, scratch ${formatBytes(sample.m.scratchBytes)}`,
      );
    }
  }
  return samples;
}

export function sideOf(c: Contender, samples: Sample[]): Side {
  const runsMs = samples.map((s) => s.m.wallMs);
  return {
    label: c.label,
    command: c.command,
    runsMs,
    medianMs: median(runsMs),
    // The command's own VmHWM; a run too short for a sample falls back on GNU time's figure.
    peakRssKb: Math.max(...samples.map((s) => s.m.ownPeakRssKb || s.m.maxRssKb)),
    largestProcessRssKb: Math.max(...samples.map((s) => s.m.maxRssKb)),
    treeRssKb: Math.max(...samples.map((s) => s.m.treePeakRssKb)),
    cpuS: samples.map((s) => s.m.userS + s.m.sysS),
    scratchBytes: Math.max(...samples.map((s) => s.m.scratchBytes)),
    outputBytes: samples.at(-1)?.outputBytes ?? null,
  };
}

