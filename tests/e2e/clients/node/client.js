// An unmodified @azure/identity (version pinned by ../node-*/package-lock.json) driven by nmid's
// end-to-end client matrix inside a pod namespace: see ../base.py for the command line and output.
// Usage: node client.js INSTALL_DIR --mode mi|default [--client-id X|--object-id X|--resource-id X]
//        --resource R        (INSTALL_DIR holds the node_modules of one lock file)
"use strict";
const path = require("path");
const { parseArgs } = require("util");

const [installDir, ...rest] = process.argv.slice(2);
const { values: a } = parseArgs({
  args: rest,
  options: {
    mode: { type: "string", default: "mi" },
    "client-id": { type: "string" },
    "object-id": { type: "string" },
    "resource-id": { type: "string" },
    resource: { type: "string" },
  },
});
const identity = require(path.join(installDir, "node_modules", "@azure", "identity"));

function credential() {
  if (a.mode === "mi") {
    if (a["client-id"]) return new identity.ManagedIdentityCredential({ clientId: a["client-id"] });
    if (a["object-id"]) return new identity.ManagedIdentityCredential({ objectId: a["object-id"] });
    if (a["resource-id"]) return new identity.ManagedIdentityCredential({ resourceId: a["resource-id"] });
    return new identity.ManagedIdentityCredential();
  }
  if (a.mode === "default") {
    if (a["object-id"]) throw new Error("DefaultAzureCredential has no managed-identity object id");
    const options = {};
    if (a["client-id"]) options.managedIdentityClientId = a["client-id"];
    if (a["resource-id"]) options.managedIdentityResourceId = a["resource-id"];
    return new identity.DefaultAzureCredential(options);
  }
  throw new Error(`unknown --mode ${a.mode}`);
}

(async () => {
  if (!a.resource) throw new Error("--resource is required");
  const token = await credential().getToken(`${a.resource}/.default`);
  console.log(JSON.stringify({ token: token.token, expires_on: Math.floor(token.expiresOnTimestamp / 1000) }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
