// Every server audit of graphql-http (the GraphQL-over-HTTP spec's conformance suite) against
// one URL, one after another, printed to stdout as JSON:
//
//   AUDIT_AUTHORIZATION="Bearer <token>" node audit.mjs http://127.0.0.1:8000/graphql
//
// {"package": "graphql-http@<version>", "results": [{"id", "name", "status", ...}]}, where a
// result that is not "ok" ("notice" for a MAY, "warn" for a SHOULD, "error" for a MUST) also
// has the audit's reason and the response it judged (status, headers, body). Exit status 0
// when every audit is ok, 1 otherwise, 2 for a usage error.
//
// The token comes from the environment, not the command line, so it never shows in a process
// list; every request of every audit carries it, since the service refuses anonymous ones.

import { readFile } from "node:fs/promises";
import { serverAudits } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: AUDIT_AUTHORIZATION='Bearer <token>' node audit.mjs <url>");
  process.exit(2);
}
const authorization = process.env.AUDIT_AUTHORIZATION;

// The audits read the bodies they judge; a copy of each is kept to report a failure with.
const bodies = new WeakMap();

async function authorizedFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  if (authorization) {
    headers.set("authorization", authorization);
  }
  const response = await fetch(input, { ...init, headers });
  bodies.set(response, await response.clone().text());
  return response;
}

function described(response) {
  if (!response) {
    return null;
  }
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: bodies.get(response) ?? null,
  };
}

const version = JSON.parse(
  await readFile(new URL("./node_modules/graphql-http/package.json", import.meta.url), "utf8"),
).version;

const results = [];
// One at a time: the service under audit is one process, and the order stays readable.
for (const { id, name, fn } of serverAudits({ url, fetchFn: authorizedFetch })) {
  let result;
  try {
    result = await fn();
  } catch (error) {
    // graphql-http throws only when an audit itself cannot run (the server is unreachable).
    result = { id, name, status: "error", reason: `audit could not run: ${error}` };
  }
  results.push(
    result.status === "ok"
      ? { id, name, status: "ok" }
      : { id, name, status: result.status, reason: result.reason, response: described(result.response) },
  );
}

console.log(JSON.stringify({ package: `graphql-http@${version}`, results }, null, 2));
process.exit(results.every((result) => result.status === "ok") ? 0 : 1);
