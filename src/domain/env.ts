// The job's environment: the caller's, plus presets, --env pairs and jobq's own variables.
import { JobqError } from './errors.js';

/** A name the shell would take as a variable: --env, --guard-var and presets in config all use it. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Built-in presets; a config file may add more or override these. */
export const BUILTIN_PRESETS: Record<string, Record<string, string>> = {
  memsafe: {
    OMP_NUM_THREADS: '1',
    MKL_NUM_THREADS: '1',
    OPENBLAS_NUM_THREADS: '1',
    NUMEXPR_MAX_THREADS: '1',
    MALLOC_ARENA_MAX: '2',
  },
};

/** Parses repeated `--env K=V` values; K must be a valid variable name. */
export function parseEnvPairs(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    const k = eq > 0 ? p.slice(0, eq) : '';
    if (!ENV_NAME.test(k)) throw new JobqError('USAGE', `invalid --env '${p}': expected NAME=VALUE`);
    out[k] = p.slice(eq + 1);
  }
  return out;
}

/** Inputs to the job's environment. */
export interface EnvSpec {
  id: string;
  name: string;
  log: string;
  presets: string[];
  presetTable: Record<string, Record<string, string>>;
  env: Record<string, string>;
  guardVars: string[];
}

/** Builds the job's environment; `added` is what jobq put on top of the caller's (for the record). */
export function buildJobEnv(caller: NodeJS.ProcessEnv, spec: EnvSpec): { env: Record<string, string>; added: Record<string, string> } {
  const added: Record<string, string> = {};
  for (const p of spec.presets) {
    const vars = spec.presetTable[p];
    if (!vars) throw new JobqError('USAGE', `unknown preset '${p}' (known: ${Object.keys(spec.presetTable).sort().join(', ')})`);
    Object.assign(added, vars);
  }
  Object.assign(added, spec.env);
  for (const g of spec.guardVars) {
    if (!ENV_NAME.test(g)) throw new JobqError('USAGE', `invalid --guard-var '${g}': expected a variable name`);
    added[g] = '1';
  }
  if (caller.PYTHONUNBUFFERED === undefined && added.PYTHONUNBUFFERED === undefined) added.PYTHONUNBUFFERED = '1';
  Object.assign(added, { BG_JOB: '1', JOBQ_JOB_ID: spec.id, JOBQ_JOB_NAME: spec.name, JOBQ_LOG: spec.log });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(caller)) if (v !== undefined) env[k] = v;
  Object.assign(env, added);
  return { env, added };
}
