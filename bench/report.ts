/**
 * Results of `npm run bench`: a JSON file (every repetition's raw numbers, the machine, the code
 * measured) and the markdown of docs/benchmarks.md, with a "before" column read from the JSON
 * of an earlier run (BENCH_BEFORE).
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';

/** One measured line of a workload: our variant against plain socket.io, once per repetition. */
export interface Row {
  /** Stable within its section: matches the "before" run's row. */
  key: string;
  label: string;
  unit: string;
  /** 'ratio': ours / plain of the same repetition; 'diff': ours - plain (memory). */
  compare: 'ratio' | 'diff';
  ours: number[];
  plain: number[];
  /** Per repetition, more numbers worth showing: a median, or for a count that must stay 0 the total. */
  extra?: Array<{ name: string; values: number[]; total?: boolean }>;
}

export interface Section {
  id: string;
  title: string;
  how: string;
  rows: Row[];
}

export interface Results {
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; loadavgStart: number[]; loadavgEnd?: number[] };
  lib: { dir: string; commit: string; dirty: boolean };
  settings: Record<string, number | string | boolean>;
  note?: string;
  sections: Section[];
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
/** The median (the mean of the two middle values for an even count). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = sorted(xs);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function machine(): Results['machine'] {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {
    // not Linux: os.cpus() has it
  }
  return { cpu, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadavgStart: loadavg() };
}

/** Per repetition: ours / plain, or ours - plain. */
export function compared(row: Row): number[] {
  return row.ours.map((ours, i) => (row.compare === 'ratio' ? ours / row.plain[i]! : ours - row.plain[i]!));
}

function number(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const abs = Math.abs(x);
  const digits = Number.isInteger(x) || abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
function comparison(x: number, compare: Row['compare'], unit: string): string {
  if (!Number.isFinite(x)) return 'n/a';
  return compare === 'ratio' ? `${x.toFixed(x < 0.1 ? 3 : 2)}x` : `${x >= 0 ? '+' : ''}${number(x)} ${unit}`;
}

function extras(row: Row): string {
  return (row.extra ?? []).map((e) => (e.total ? `${e.name}: ${number(sum(e.values))} (all reps)` : `${e.name}: ${number(median(e.values))}`)).join('; ');
}

export function markdown(results: Results, before?: Results): string {
  const { machine: m, lib } = results;
  const lines = [
    '# Benchmarks',
    '',
    'With this page you can see what socket.io-sessions costs against plain socket.io (throughput and server CPU per event by',
    'session size, sockets per session and nodes; heap per socket; connect time; a restart storm), on which machine, and how',
    'that compares with the code before the Lean core rewrite. Rerun it on your machine with `npm run bench`.',
    '',
    'Made by `npm run bench` (bench/run.ts). Every number is socket.io-sessions against plain socket.io measured in the same run:',
    'each server variant in its own process, the clients in other processes, the variants interleaved round by round, and the',
    'median over the repetitions of the per-round ratio (ours / plain, or ours - plain for memory). "spread" is the smallest and',
    'largest per-round value. How to run it, and its knobs: bench/README.md.',
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node}; load average ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')} at the start` +
      (m.loadavgEnd ? `, ${m.loadavgEnd.map((x) => x.toFixed(2)).join(' ')} at the end` : '') +
      '.',
    `- Code measured: ${lib.commit}${lib.dirty ? ' (with uncommitted changes in src/)' : ''}, ${results.date}.` +
      (before ? ` "before": ${before.lib.commit}, ${before.date}${before.note ? ` (${before.note})` : ''}.` : ''),
    `- Settings: ${Object.entries(results.settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}.`,
    ...(results.note ? [`- Note: ${results.note}`] : []),
  ];
  for (const section of results.sections) {
    const old = before?.sections.find((s) => s.id === section.id);
    lines.push('', `## ${section.title}`, '', section.how, '');
    lines.push('| variant | before | now | spread | ours (median) | plain (median) | reps | more |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const row of section.rows) {
      const values = compared(row);
      const oldRow = old?.rows.find((r) => r.key === row.key);
      const cells = [
        row.label,
        oldRow ? comparison(median(compared(oldRow)), oldRow.compare, oldRow.unit) : '',
        `**${comparison(median(values), row.compare, row.unit)}**`,
        values.length > 1 ? `${comparison(Math.min(...values), row.compare, row.unit)} – ${comparison(Math.max(...values), row.compare, row.unit)}` : '',
        `${number(median(row.ours))} ${row.unit}`,
        `${number(median(row.plain))} ${row.unit}`,
        String(values.length),
        extras(row),
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n') + '\n';
}

export function readResults(file: string | undefined): Results | undefined {
  return file ? (JSON.parse(readFileSync(file, 'utf8')) as Results) : undefined;
}
