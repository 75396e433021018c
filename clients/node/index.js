// A Node client of crm-serving: calls crm.v1 ChurnService.PredictChurn once with a good
// request and once with a bad one, and decodes the google.rpc.BadRequest the server sends in
// the `grpc-status-details-bin` trailer. Everything it loads ships under protos/ in this repo.
//
//   npm ci && node index.js --target localhost:50051 [--token T]
//
// Prints one JSON object per call on stdout.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTOS = path.resolve(__dirname, "..", "..", "protos");

function args(argv) {
  const out = { target: "localhost:50051", token: process.env.CRM_TOKEN || "" };
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

// The crm.v1 services, with our protos' directory as the include path.
function loadServices() {
  const definition = protoLoader.loadSync(
    ["crm/v1/churn.proto", "crm/v1/model.proto"].map((p) => path.join(PROTOS, p)),
    { includeDirs: [PROTOS], keepCase: true, longs: String, enums: String, defaults: true }
  );
  return grpc.loadPackageDefinition(definition).crm.v1;
}

// google.rpc.Status and its detail types, from the shipped protos/google/rpc.
const rpcTypes = (() => {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTOS, target);
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  return root;
})();

// The details of a failed call: each google.protobuf.Any unpacked by its type URL.
function errorDetails(err) {
  const bin = err.metadata && err.metadata.get("grpc-status-details-bin")[0];
  if (!bin) return [];
  const status = rpcTypes.lookupType("google.rpc.Status").decode(bin);
  return status.details.map((any) => {
    const type = rpcTypes.lookupType(any.type_url.split("/").pop());
    return { type: type.fullName.replace(/^\./, ""), ...type.toObject(type.decode(any.value)) };
  });
}

function call(client, method, request, metadata) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + 10000);
    client[method](request, metadata, { deadline }, (err, reply) => resolve({ err, reply }));
  });
}

async function main() {
  const opts = args(process.argv.slice(2));
  const crm = loadServices();
  const credentials = grpc.credentials.createInsecure();
  const churn = new crm.ChurnService(opts.target, credentials);
  const models = new crm.ModelService(opts.target, credentials);
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set("authorization", `Bearer ${opts.token}`);

  // A plausible customer: every feature the churn model takes, at its typical value (the
  // training mean; ListModels gives each feature's name, meaning, unit and typical_value).
  const listed = await call(models, "ListModels", {}, metadata);
  if (listed.err) throw listed.err;
  const model = listed.reply.models.find((m) => m.name === "churn");
  const values = Object.fromEntries(model.features.map((f) => [f.name, f.typical_value ?? 1]));

  const good = await call(churn, "PredictChurn", { customers: [{ features: { values } }] }, metadata);
  if (good.err) throw good.err;
  const p = good.reply.predictions[0];
  console.log(JSON.stringify({ call: "PredictChurn", ok: true, model: good.reply.model,
    probability: p.probability, risk_level: p.risk_level }));

  // A negative purchase count: INVALID_ARGUMENT with a BadRequest naming the field.
  const bad = { customers: [{ features: { values: { ...values, frequency: -1 } } }] };
  const refused = await call(churn, "PredictChurn", bad, metadata);
  if (!refused.err) throw new Error("the bad request was answered");
  console.log(JSON.stringify({ call: "PredictChurn", ok: false,
    code: grpc.status[refused.err.code], message: refused.err.details,
    details: errorDetails(refused.err) }));
  churn.close();
  models.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
