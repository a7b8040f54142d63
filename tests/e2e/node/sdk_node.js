// An unmodified @azure/identity ManagedIdentityCredential (version pinned by package-lock.json),
// run inside a pod namespace. Prints {"token": ..., "expires_on": ...} as JSON.
// Usage: node sdk_node.js INSTALL_DIR CLIENT_ID RESOURCE (INSTALL_DIR holds node_modules).
"use strict";
const path = require("path");
const [installDir, clientId, resource] = process.argv.slice(2);
const { ManagedIdentityCredential } = require(path.join(installDir, "node_modules", "@azure", "identity"));

(async () => {
  const credential = new ManagedIdentityCredential({ clientId });
  const token = await credential.getToken(`${resource}/.default`);
  const expiresOn = Math.floor(token.expiresOnTimestamp / 1000);
  console.log(JSON.stringify({ token: token.token, expires_on: expiresOn }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
