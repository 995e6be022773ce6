// Runs the ztwim server or agent in its own OS process for bench/agent.ts, from the same
// server.conf / agent.conf files the SPIRE binaries are given:
//
//   node bench/agent-proc.mjs server <server.conf>
//   node bench/agent-proc.mjs agent  <agent.conf>
//
// Plain `node` loads the built packages (dist/, as a deployment would); with
// `--conditions=ztwim-source --import tsx` it runs the TypeScript sources instead.
// Prints `ready <json>` on stdout once serving; SIGTERM/SIGINT close it gracefully.
const [kind, conf] = process.argv.slice(2);
if ((kind !== 'server' && kind !== 'agent') || conf === undefined) {
  console.error('usage: agent-proc.mjs server|agent <config file>');
  process.exit(2);
}

// The V8 tuning `ztwim agent run` / `ztwim server run` apply as they start, with their default
// memory budget (`-memoryBudget`), as a user runs them; ZTWIM_MEMORY_BUDGET=<MiB> sets another
// (0 turns it off).
const { DEFAULT_MEMORY_BUDGET_MIB, tuneForDaemon } = await import('@ztwim/cli/daemon-tuning');
const budgetEnv = process.env['ZTWIM_MEMORY_BUDGET'];
tuneForDaemon({ memoryBudgetMiB: budgetEnv === undefined || budgetEnv === '' ? DEFAULT_MEMORY_BUDGET_MIB : Number(budgetEnv) });

let running;
try {
  if (kind === 'server') {
    const { loadServerConfig, startServer } = await import('@ztwim/server');
    running = await startServer(loadServerConfig(conf));
    console.log(`ready ${JSON.stringify({ pid: process.pid, port: running.port, socket: running.socketPath })}`);
  } else {
    const { loadAgentConfig, startAgent } = await import('@ztwim/agent');
    running = await startAgent(loadAgentConfig(conf));
    console.log(`ready ${JSON.stringify({ pid: process.pid, socket: running.socketPath, agentId: running.agentId })}`);
  }
} catch (e) {
  console.error(`${kind} failed to start:`, e);
  process.exit(1);
}

let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  const t = setTimeout(() => process.exit(1), 5000);
  t.unref();
  running.close().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
running.done.then(
  () => {
    if (!closing) {
      console.error(`${kind} stopped on its own`);
      process.exit(1);
    }
  },
  (e) => {
    console.error(`${kind} stopped:`, e);
    process.exit(1);
  },
);
