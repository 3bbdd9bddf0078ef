// Types for scripts/tagged.mjs (used by the TypeScript test helpers).
export function taggedPids(tag: string): number[];
export function killTagged(tag: string): void;
