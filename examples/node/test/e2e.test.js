// End to end against a real coordinator process (the `coordinator` command of the installed
// sweepd, or $SWEEPD_COORDINATOR_BIN): node --test test/
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { connect, watchSweep, askTell, fieldViolations, grpc } = require('../sweepd.js');

// Generous: the machine running the tests may be loaded.
const START_TIMEOUT_MS = 60_000;

let coordinator;
let stateDir;
let address;
let token;
let client;

before(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sweepd-node-'));
  const bin = process.env.SWEEPD_COORDINATOR_BIN || 'coordinator';
  coordinator = spawn(bin, ['serve', '--port', '0', '--state-dir', stateDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`coordinator did not listen:\n${output}`)), START_TIMEOUT_MS);
    const look = (chunk) => {
      output += chunk;
      const match = /listening on (\S+):(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(`127.0.0.1:${match[2]}`);
      }
    };
    coordinator.stdout.on('data', look);
    coordinator.stderr.on('data', look);
    coordinator.on('error', (err) => { clearTimeout(timer); reject(err); });
    coordinator.on('exit', (code) => { clearTimeout(timer); reject(new Error(`coordinator exited ${code}:\n${output}`)); });
  });
  token = fs.readFileSync(path.join(stateDir, 'token'), 'utf8').trim();
  client = connect(address, { token });
});

after(() => {
  if (client) client.close();
  if (coordinator && coordinator.exitCode === null) coordinator.kill('SIGKILL');
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

test('a call without the token is told which header to send', async () => {
  const anonymous = connect(address);
  try {
    await assert.rejects(anonymous.call('ListSweeps', {}), (err) => {
      assert.equal(err.code, grpc.status.UNAUTHENTICATED);
      assert.match(err.details, /`authorization: Bearer <token>`/);
      return true;
    });
  } finally {
    anonymous.close();
  }
});

test('a refused config carries BadRequest field violations', async () => {
  const config = { method: 'random', parameters: { lr: { min: 0.1, max: 0.01, mx: 3 } } };
  await assert.rejects(client.call('CreateSweep', { config_text: JSON.stringify(config) }), (err) => {
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /^invalid sweep configuration/);
    const fields = fieldViolations(err).map((v) => v.field);
    assert.ok(fields.includes('parameters.lr.mx'), JSON.stringify(fieldViolations(err)));
    for (const v of fieldViolations(err)) assert.ok(v.description.length > 0);
    return true;
  });
});

test('ask/tell loop with WatchSweep alongside', async () => {
  // JSON.stringify writes -5.0 as -5: the notice says to add `distribution: uniform`.
  const lossy = {
    method: 'random',
    metric: { name: 'loss', goal: 'minimize' },
    run_cap: 8,
    parameters: { x: { min: -5.0, max: 5.0 }, opt: { values: ['adam', 'sgd'] } },
  };
  const checked = await client.call('CreateSweep', { config_text: JSON.stringify(lossy), validate_only: true });
  assert.equal(checked.sweep.id, '');
  const notice = checked.sweep.notices.find((n) => n.startsWith('parameters.x'));
  assert.match(notice, /int_uniform/);
  assert.match(notice, /`distribution: uniform`/);
  assert.deepEqual((await client.call('ListSweeps', {})).sweeps, []);

  lossy.parameters.x.distribution = 'uniform';
  const created = await client.call('CreateSweep', { config_text: JSON.stringify(lossy) });
  const sweepId = created.sweep.id;
  assert.ok(sweepId);

  const seen = new Map();
  let lastSweep;
  const watching = watchSweep(client, sweepId, (u) => {
    if (u.run) seen.set(u.run.id, u.run.state);
    if (u.sweep) lastSweep = u.sweep;
  });

  const xs = [];
  const finished = await askTell(client, sweepId, `node-test-${process.pid}`, (params) => {
    assert.ok(['adam', 'sgd'].includes(params.opt));
    xs.push(params.x);
    return [0, 1, 2].map((step) => ({ loss: (params.x - 1) ** 2 / (step + 1) }));
  });
  assert.equal(finished.length, 8);
  assert.ok(finished.every((r) => r.state === 'RUN_STATE_FINISHED'));
  // Continuous now: not whole numbers.
  assert.ok(xs.some((x) => !Number.isInteger(x)), JSON.stringify(xs));

  await watching; // the stream ends once the sweep has ended and no run is active
  assert.equal(lastSweep.state, 'SWEEP_STATE_FINISHED');
  assert.equal(seen.size, 8);
  assert.ok([...seen.values()].every((s) => s === 'RUN_STATE_FINISHED'));
  const best = lastSweep.best_run;
  assert.equal(best.summary.loss, Math.min(...finished.map((r) => r.summary.loss)));

  const page = await client.call('ListRuns', { sweep_id: sweepId });
  assert.equal(page.runs.length, 8);
  assert.equal(page.next_page_token, '');
  const full = await client.call('GetRun', { run_id: best.id, include_history: true });
  assert.deepEqual(full.history.map((r) => r.index), [0, 1, 2]);
});
