// The shape in which each command defines itself, at the end of its own file (src/program.ts reads the list).
// At start the bundle holds each definition apart from the rest of its file (scripts/build.mjs): a definition may use
// the file's imports and constants, and its action module loads only when the command runs.

/** Help text, or a function that makes it when the help is shown. */
export type HelpText = string | (() => string);

/** A positional argument: `<name>` is required, `[name]` optional, `...` takes the rest. */
export interface ArgumentDef {
  name: string;
  description: string;
}

/** An option, in commander's terms: `flags` such as `-n, --lines <n>`. */
export interface OptionDef {
  flags: string;
  description: string;
  /** The value when it is not given. */
  default?: string;
  /** The only values it accepts. */
  choices?: readonly string[];
  /** Each use adds its value to a list. */
  repeatable?: boolean;
  /** Accepted, but left out of the help (and of completion). */
  hidden?: boolean;
}

/** What a command's module exports as its action: called with commander's action arguments, it returns the exit code. */
export type Action = (...args: never[]) => number | Promise<number>;

export interface CommandDef {
  name: string;
  /** One line, in the list of commands. */
  summary: string;
  /** The longer text atop the command's own help, if it has one. */
  description?: string;
  arguments?: readonly ArgumentDef[];
  options?: readonly OptionDef[];
  /** Examples and notes after the command's help, in order. */
  afterHelp?: HelpText | readonly HelpText[];
  /** Loads the module whose default export is the action: import('./X.js'), so that nothing of it loads before it runs. */
  load: () => Promise<{ default: Action }>;
}
