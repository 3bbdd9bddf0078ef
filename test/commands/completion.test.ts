// The completion specs come from the commander program: every command and option, with the right value kinds.
import { describe, expect, it } from 'vitest';
import { commandSpecs } from '../../src/commands/completion.js';
import { buildProgram } from '../../src/program.js';

describe('completion specs', () => {
  const program = buildProgram(() => undefined);
  const specs = commandSpecs(program);

  it('has one spec per command of the program, each with every visible option', () => {
    expect(specs.map((s) => s.name)).toEqual(program.commands.map((c) => c.name()));
    for (const c of program.commands) {
      const flags = specs.find((s) => s.name === c.name())!.opts.flatMap((o) => o.flags);
      for (const o of c.options.filter((x) => !x.hidden)) expect(flags, `${c.name()} ${o.long}`).toContain(o.long);
    }
  });

  it('knows directories, files, choices and job names', () => {
    const run = specs.find((s) => s.name === 'run')!;
    const opt = (flag: string) => run.opts.find((o) => o.flags.includes(flag))!;
    expect(opt('--cwd').values).toBe('dir');
    expect(opt('--log').values).toBe('file');
    expect(opt('--isolation').values).toEqual({ words: ['auto', 'scope', 'cgroup', 'none'] });
    expect(opt('--replace').values).toBeUndefined();
    expect(run.runLike).toBe(true);
    expect(specs.find((s) => s.name === 'tail')!.args).toBe('names');
    expect(specs.find((s) => s.name === 'completion')!.args).toEqual({ words: ['bash', 'zsh', 'fish'] });
  });
});
