// `jobq config [--json]`: the merged configuration and where each value came from.

import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { EXIT } from '../domain/errors.js';
import { JSON_SCHEMA } from '../domain/job.js';
import { describePressure } from '../domain/pressure.js';
import { formatDuration, formatSize } from '../domain/units.js';
import { columns } from '../output/format.js';
import { stateHome } from '../store/store.js';
import { out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

export default function config(o: { json?: boolean }, _cmd: Command): number {
  const { config: c, sources, files, warnings } = loadConfig();
  for (const w of warnings) process.stderr.write(`jobq: warning: ${w}\n`);
  const stateDir = c.stateDir ?? stateHome();
  const stateSrc = sources.stateDir ?? (process.env.XDG_STATE_HOME ? 'env XDG_STATE_HOME' : 'default');
  if (o.json) {
    printJson({ schema: JSON_SCHEMA, config: { ...c, stateDir }, sources: { ...sources, stateDir: stateSrc }, files });
    return EXIT.ok;
  }
  const rows = [
    ['stateDir', stateDir, stateSrc],
    ['grace', formatDuration(c.graceMs), sources.graceMs!],
    ['signal', c.signal, sources.signal!],
    ['isolation', c.isolation, sources.isolation!],
    ['oomScoreAdj', String(c.oomScoreAdj), sources.oomScoreAdj!],
    ['maxLogSize', formatSize(c.maxLogBytes), sources.maxLogBytes!],
    ['sampleInterval', formatDuration(c.sampleMs), sources.sampleMs!],
    ['memReserve', formatSize(c.memReserveBytes), sources.memReserveBytes!],
    ['gpuBusyMemory', formatSize(c.gpuBusyMiB * 1024 ** 2), sources.gpuBusyMiB!],
    ['gpus', c.gpus ?? 'nvidia-smi', sources.gpus ?? 'default'],
    ['backend', c.backend, sources.backend!],
    ...(c.slurmOptions.length ? [['slurmOptions', c.slurmOptions.join(' '), sources.slurmOptions!]] : []),
    ...(c.agents.maxLive !== undefined ? [['agents.maxLive', String(c.agents.maxLive), sources.agents!]] : []),
    ...(c.agents.maxMemLimitBytes !== undefined ? [['agents.maxMemLimit', formatSize(c.agents.maxMemLimitBytes), sources.agents!]] : []),
    ['pressureGuard', c.pressureGuard ? `on: ${describePressure(c.pressureGuard)}` : 'off', sources.pressureGuard ?? 'default'],
    ...(c.defaultQueue ? [['defaultQueue', c.defaultQueue, sources.defaultQueue!]] : []),
    ...Object.entries(c.queues).map(([name, q]) => [
      `queues.${name}`,
      `${q.slots} slot${q.slots === 1 ? '' : 's'}${q.backend ? `, ${q.backend}` : ''}`,
      sources[`queues.${name}`] ?? '',
    ]),
    ...Object.entries(c.presets).map(([name, vars]) => [
      `presets.${name}`,
      Object.entries(vars)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      sources[`presets.${name}`] ?? '',
    ]),
  ];
  out(columns([['KEY', 'VALUE', 'FROM'], ...rows]) + '\n');
  out(`files read: ${files.join(', ') || 'none'}\n`);
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'config',
  summary: 'print the merged configuration and where each value came from',
  options: [{ flags: '--json', description: 'print JSON' }],
  afterHelp: '\nExamples:\n  jobq config\n  jobq config --json\nFiles: $XDG_CONFIG_HOME/jobq/config.json, then .jobq.json from here upward (docs/config.md).',
  load: () => import('./config.js'),
};
