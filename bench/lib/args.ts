// Command-line flags of the bench scripts: `--name value` pairs and bare `--switch`es.
const argv = process.argv.slice(2);

/** The value after `--name`, if given. */
export function flagValue(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** `--name N` as a number, else `dflt`. */
export function num(name: string, dflt: number): number {
  return Number(flagValue(name) ?? dflt);
}

/** Whether the bare switch `--name` was given. */
export function hasFlag(name: string): boolean {
  return argv.includes(`--${name}`);
}

/** `--name 1,2,3` as a list of numbers, else `dflt`. */
export function numList(name: string, dflt: number[]): number[] {
  return flagValue(name)?.split(',').map(Number) ?? dflt;
}
