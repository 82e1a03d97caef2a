// Runs trials of a sweep from Node.js: node example.js SWEEP_ID
// The coordinator's address in $SWEEPD_COORDINATOR (default 127.0.0.1:50051), its token in
// $SWEEPD_TOKEN (the contents of <state-dir>/token).
'use strict';

const { connect, watchSweep, askTell, fieldViolations } = require('./sweepd.js');

async function main() {
  const sweepId = process.argv[2];
  if (!sweepId) throw new Error('usage: node example.js SWEEP_ID');
  const client = connect(process.env.SWEEPD_COORDINATOR || '127.0.0.1:50051', {
    token: process.env.SWEEPD_TOKEN || '',
  });
  const watching = watchSweep(client, sweepId, (u) => {
    if (u.run) console.log(`run ${u.run.id} ${u.run.state} ${JSON.stringify(u.run.summary)}`);
  });
  try {
    // A stand-in for training: any function of the parameters, logged step by step.
    const train = (params) => {
      const loss = Object.values(params).filter(Number.isFinite).reduce((a, v) => a + v * v, 0);
      return [0, 1, 2, 3].map((step) => ({ loss: loss / (step + 1) }));
    };
    // Both at once, so that a failure of either is reported (and the watch ends with the sweep).
    const [runs] = await Promise.all([askTell(client, sweepId, `node-${process.pid}`, train), watching]);
    console.log(`finished ${runs.length} runs`);
  } catch (err) {
    for (const v of fieldViolations(err)) console.error(`${v.field}: ${v.description}`);
    throw err;
  } finally {
    client.close();
  }
}

main().catch((err) => {
  console.error(err.details || err.message);
  process.exit(1);
});
