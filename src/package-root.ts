// Where jobq is installed: the docs and Makefile.example ship beside the code.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobqError } from './domain/errors.js';

/** The installed package's root: the nearest directory above this code that holds jobq's package.json. */
export function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'jobq') return dir;
    } catch {
      /* not here */
    }
    if (dir === path.dirname(dir)) throw new JobqError('NOT_FOUND', 'cannot find the jobq package directory (docs are in the repository under docs/)');
  }
}
