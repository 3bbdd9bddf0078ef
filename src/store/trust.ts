// Who could have written a path: the rule (as git's safe.directory and OpenSSH's secure_filename) that decides whether jobq may trust it.
import fs from 'node:fs';
import path from 'node:path';

const myUid = () => process.getuid?.() ?? 0;

/** True when the owner is the current user or root: nobody else could have made or changed it. */
export function ownedByUsOrRoot(st: fs.Stats, uid = myUid()): boolean {
  return st.uid === uid || st.uid === 0;
}

/**
 * Says why another user could have planted or swapped something on the way to `target` (undefined: nobody could).
 * Every directory on the way must be owned by us or root and not writable by group or others, unless it is
 * sticky (as /tmp) and the entry below it is ours or root's; a symlink is followed only when it is ours or
 * root's. The part of the path that does not exist yet is not judged (the caller creates it).
 */
export function untrustedReason(target: string, uid = myUid()): string | undefined {
  const todo = path.resolve(target).split('/').filter(Boolean);
  let dir = '/';
  let dirSt: fs.Stats;
  try {
    dirSt = fs.lstatSync('/');
  } catch {
    return undefined;
  }
  for (let hops = 0; todo.length; ) {
    const name = todo.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      dir = path.dirname(dir);
      dirSt = fs.lstatSync(dir);
      continue;
    }
    const next = path.join(dir, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(next);
    } catch {
      // What does not exist yet will be made by us: only where no one else can slip something in first.
      return writableByOthers(dir, dirSt);
    }
    const open = writableByOthers(dir, dirSt);
    if (open) return open;
    if (dirSt.mode & 0o022 && !ownedByUsOrRoot(st, uid)) return `${next} belongs to uid ${st.uid} in the shared directory ${dir}`;
    if (!ownedByUsOrRoot(st, uid)) return `${next} is owned by uid ${st.uid}, not by you or root`;
    if (st.isSymbolicLink()) {
      if (++hops > 40) return `${next}: too many symlinks`;
      const to = fs.readlinkSync(next);
      todo.unshift(...to.split('/').filter(Boolean));
      if (to.startsWith('/')) {
        dir = '/';
        dirSt = fs.lstatSync('/');
      }
      continue;
    }
    if (todo.length && !st.isDirectory()) return `${next} is not a directory`;
    dir = next;
    dirSt = st;
  }
  return dirSt.isDirectory() ? writableByOthers(dir, dirSt) : undefined;
}

/** Why a directory lets other users add or swap entries (sticky ones like /tmp do not: entries stay their owner's). */
function writableByOthers(dir: string, st: fs.Stats): string | undefined {
  if (!(st.mode & 0o022) || st.mode & 0o1000) return undefined;
  return `${dir} is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)})`;
}

/** Opens a state-dir file for reading (or `access`): never through a symlink, never blocking on a FIFO; undefined if it cannot. */
export function openToRead(file: string, access: number = fs.constants.O_RDONLY): number | undefined {
  try {
    return fs.openSync(file, access | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

/**
 * A state-dir file's JSON, read only if it is our own plain file of at most `maxBytes` (another user's could steer
 * what jobq does); undefined for anything else, or for broken JSON. What it holds is still data to check.
 */
export function readOwnJson(file: string, maxBytes: number): unknown {
  const fd = openToRead(file);
  if (fd === undefined) return undefined;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== myUid() || st.size > maxBytes) return undefined;
    return JSON.parse(fs.readFileSync(fd, 'utf8'));
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
