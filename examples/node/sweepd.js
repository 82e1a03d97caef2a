// A small Node.js client of sweepd's gRPC API, loaded straight from protos/ (no generated code).
//
// What it shows a developer in any language:
// - the token goes in the `authorization: Bearer <token>` header, added by an interceptor.
//   grpc-js refuses to combine call credentials with an insecure channel
//   (createInsecure() + createFromMetadataGenerator() fails every call), so over plaintext
//   use an interceptor or per-call metadata, as here;
// - the ask/tell loop: SuggestRun, ReportMetrics (whose answer may say stop), FinishRun;
// - WatchSweep, a server stream, alongside;
// - refused requests carry google.rpc.BadRequest field violations in the
//   `grpc-status-details-bin` trailer, decoded here with protobufjs.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'protos');

const LOADER_OPTIONS = {
  includeDirs: [PROTO_ROOT],
  keepCase: true, // field names as in the protos: sweep_id, client_id ...
  longs: Number, // int64 fields (attempt, index) stay far below 2^53 here
  enums: String, // 'RUN_STATE_FINISHED' rather than 4
  defaults: true,
  oneofs: true, // a oneof's set field is named in the message's oneof property
};

function loadApi() {
  const definition = protoLoader.loadSync(['sweepd/v1/sweeps.proto'], LOADER_OPTIONS);
  return grpc.loadPackageDefinition(definition).sweepd.v1;
}

// google.rpc.Status and google.rpc.BadRequest, as much of them as this client reads (the field
// numbers are those of the googleapis definitions, so the bytes decode the same).
const rpcTypes = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            BadRequest: {
              fields: { field_violations: { rule: 'repeated', type: 'FieldViolation', id: 1 } },
              nested: {
                FieldViolation: {
                  fields: {
                    field: { type: 'string', id: 1 },
                    description: { type: 'string', id: 2 },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
});
const Status = rpcTypes.lookupType('google.rpc.Status');
const BadRequest = rpcTypes.lookupType('google.rpc.BadRequest');
const BAD_REQUEST_URL = 'type.googleapis.com/google.rpc.BadRequest';

// The field violations of a failed call: [{field: 'parameters.lr.max', description: '...'}].
function fieldViolations(error) {
  const raw = error && error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  const found = [];
  for (const bytes of raw) {
    const status = Status.decode(bytes);
    for (const detail of status.details) {
      if (detail.type_url === BAD_REQUEST_URL) {
        for (const v of BadRequest.decode(detail.value).field_violations) {
          found.push({ field: v.field, description: v.description });
        }
      }
    }
  }
  return found;
}

// Adds `authorization: Bearer <token>` to every call.
function tokenInterceptor(token) {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

// A SweepService client whose unary calls return promises; `raw` is the grpc-js client
// (for streams). `token` empty: no header (a coordinator started with --no-auth).
function connect(address, { token = '', credentials = grpc.credentials.createInsecure() } = {}) {
  const api = loadApi();
  const interceptors = token ? [tokenInterceptor(token)] : [];
  const raw = new api.SweepService(address, credentials, { interceptors });
  const call = (method, request, deadlineS = 30) =>
    new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + deadlineS * 1000);
      raw[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
    });
  return { raw, call, close: () => raw.close() };
}

// Follows a sweep until the server ends the stream. `onUpdate` gets each SweepUpdate as
// {sweep} or {run}; the promise resolves when the stream ends, rejects on its error.
function watchSweep(client, sweepId, onUpdate) {
  return new Promise((resolve, reject) => {
    const stream = client.raw.WatchSweep({ sweep_id: sweepId });
    stream.on('data', (update) => onUpdate(update.update === 'sweep' ? { sweep: update.sweep } : { run: update.run }));
    stream.on('error', reject);
    stream.on('end', resolve);
  });
}

// The ask/tell loop: asks for runs until the sweep is done or `maxTrials` ran; `objective`
// gets a run's parameters (plain values) and returns the metric values to report, step by
// step, as an array of {name: value} objects. Returns the runs it finished.
async function askTell(client, sweepId, clientId, objective, { maxTrials = Infinity, pollMs = 200 } = {}) {
  const finished = [];
  while (finished.length < maxTrials) {
    const answer = await client.call('SuggestRun', { sweep_id: sweepId, client_id: clientId });
    if (!answer.run) {
      if (answer.sweep_done) break;
      await new Promise((r) => setTimeout(r, pollMs)); // paused or at its limit: ask again later
      continue;
    }
    const run = answer.run;
    const params = plainParams(run.params);
    let stopped = false;
    const steps = objective(params);
    for (let i = 0; i < steps.length && !stopped; i += 1) {
      const report = await client.call('ReportMetrics', {
        run_id: run.id,
        attempt: run.attempt,
        client_id: clientId,
        records: [{ index: i, step: i, values: steps[i] }],
      });
      stopped = report.should_stop;
    }
    const done = await client.call('FinishRun', {
      run_id: run.id,
      attempt: run.attempt,
      client_id: clientId,
      state: stopped ? 'RUN_STATE_STOPPED' : 'RUN_STATE_FINISHED',
      exit_code: 0,
    });
    finished.push(done);
  }
  return finished;
}

// A ParamMap as plain JavaScript values.
function plainParams(map) {
  const out = {};
  for (const [name, value] of Object.entries((map && map.fields) || {})) out[name] = plainValue(value);
  return out;
}

function plainValue(value) {
  switch (value.kind) {
    case 'map_value':
      return plainParams(value.map_value);
    case 'list_value':
      return value.list_value.items.map(plainValue);
    case 'null_value':
      return null;
    default:
      return value[value.kind];
  }
}

module.exports = { connect, watchSweep, askTell, fieldViolations, plainParams, tokenInterceptor, grpc };
