// Preloaded by scripts/test.mjs (`--import`) into every test process: the one fast-check setup
// of all property tests. FC_SEED (and FC_PATH, to jump straight to the shrunk counterexample)
// from the environment replay a failure; every failure ends with the line that replays it:
//   FC_SEED=-1819918769 FC_PATH="26:1:0" node scripts/test.mjs unit id.fuzz
// Without FC_SEED each run draws a fresh seed, which the failure message prints. The tests
// import the same hoisted fast-check module, so this global configuration is theirs.
import fc from 'fast-check';

const seed = process.env.FC_SEED;
const path = process.env.FC_PATH;
if (seed !== undefined && seed !== '' && !Number.isInteger(Number(seed))) throw new Error(`FC_SEED must be an integer, got "${seed}"`);
fc.configureGlobal({
  ...fc.readConfigureGlobal(),
  ...(seed === undefined || seed === '' ? {} : { seed: Number(seed) }),
  ...(path === undefined || path === '' ? {} : { path }),
  reporter: (out) => {
    if (!out.failed) return;
    const replay = `FC_SEED=${out.seed} FC_PATH="${out.counterexamplePath ?? ''}" node scripts/test.mjs unit <this file>`;
    throw new Error(`${fc.defaultReportMessage(out) ?? 'Property failed'}\nReplay with: ${replay}`, { cause: out.errorInstance });
  },
});
