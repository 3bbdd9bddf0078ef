// `jobq docs [--json]`: where the installed docs and Makefile.example are, and what each page covers.
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../domain/errors.js';
import { JSON_SCHEMA } from '../domain/job.js';
import { packageRoot } from '../package-root.js';
import { out, printJson } from './context.js';
import type { CommandDef } from './definition.js';

/** The first heading of a markdown page, as its one-line summary. */
function title(file: string): string {
  const m = /^#\s+(.+)$/m.exec(fs.readFileSync(file, 'utf8'));
  return m ? m[1]!.trim() : path.basename(file);
}

export default function docs(o: { json?: boolean }): number {
  const root = packageRoot();
  const dir = path.join(root, 'docs');
  const pages = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.md'))
        .sort()
    : [];
  const makefile = path.join(root, 'Makefile.example');
  if (o.json) {
    printJson({
      schema: JSON_SCHEMA,
      docs: dir,
      makefileExample: makefile,
      pages: pages.map((p) => ({ file: path.join(dir, p), title: title(path.join(dir, p)) })),
    });
    return EXIT.ok;
  }
  const width = Math.max(0, ...pages.map((p) => p.length));
  out(`docs:             ${dir}\nMakefile.example: ${makefile}\n\n`);
  for (const p of pages) out(`  ${p.padEnd(width)}  ${title(path.join(dir, p))}\n`);
  return EXIT.ok;
}

export const command: CommandDef = {
  name: 'docs',
  summary: 'say where the installed docs and Makefile.example are',
  options: [{ flags: '--json', description: 'print JSON' }],
  afterHelp: [
    '\nExamples:\n  jobq docs\n  less "$(jobq docs --json | jq -r .docs)/queues.md"\n  cp "$(jobq docs --json | jq -r .makefileExample)" ./Makefile.jobq',
    () => `\nInstalled here: ${path.join(packageRoot(), 'docs')} and ${path.join(packageRoot(), 'Makefile.example')}`,
  ],
  load: () => import('./docs.js'),
};
