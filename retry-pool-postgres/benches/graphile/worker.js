// The graphile-worker side of retry-pool-postgres's `examples/bench.rs`; the bench copies
// this file and package.json to target/graphile-bench/ and runs `npm install` there.
//
//   node worker.js migrate <connection string>
//   node worker.js run <connection string> <plain|batched> <concurrency> <pollMs>
//
// `run` prints `ready` once it is running, runs the no-op task `noop` until its stdin
// closes, then stops gracefully and prints `first <µs>` (the first start of a job whose
// payload has no push time) and `lat <µs,µs,...>` (for the jobs whose payload has `p`,
// the push time in µs since the epoch: start minus push).
"use strict";
const { run, runMigrations, Logger } = require("graphile-worker");

const quiet = new Logger(() => (level, message) => {
  if (level === "error") process.stderr.write(`graphile: ${message}\n`);
});
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

async function main() {
  const [command, connectionString, mode, concurrency, pollMs] = process.argv.slice(2);
  if (command === "migrate") {
    await runMigrations({ connectionString, logger: quiet });
    return;
  }
  const jobs = Number(concurrency);
  const worker = {
    connectionString,
    concurrentJobs: jobs,
    maxPoolSize: jobs,
    pollInterval: Number(pollMs),
  };
  if (mode === "batched") {
    // The "batched" configuration of graphile-worker's performance docs.
    worker.localQueue = { size: jobs + 1 };
    worker.completeJobBatchDelay = 0;
    worker.failJobBatchDelay = 0;
  }
  let first = Infinity;
  const lat = [];
  const runner = await run({
    preset: { worker },
    logger: quiet,
    noHandleSignals: true,
    taskList: {
      noop: async (payload) => {
        const start = nowUs();
        if (payload && payload.p) lat.push(start - payload.p);
        else if (start < first) first = start;
      },
    },
  });
  process.stdout.write("ready\n");
  process.stdin.on("end", async () => {
    await runner.stop();
    process.stdout.write(`first ${Number.isFinite(first) ? first : 0}\nlat ${lat.join(",")}\n`);
    process.exit(0);
  });
  process.stdin.resume();
}

main().catch((error) => {
  process.stderr.write(`graphile worker: ${error.stack || error}\n`);
  process.exit(1);
});
