// GraphiQL's fetcher: queries and mutations over HTTP POST, subscriptions over WebSocket on the
// same URL (the graphql-transport-ws protocol of the `graphql-ws` package).
import { getOperationAST, parse } from "graphql";
import { createClient } from "graphql-ws/client";

// The GraphQL-over-HTTP media type first; servers that only speak JSON still answer.
const ACCEPT = "application/graphql-response+json, application/json;q=0.9";

// `fallbackHeaders()` stands in for the headers editor while it does not exist yet: GraphiQL
// fetches the schema before it has created the editor, and so without the editor's headers.
export function createFetcher({ httpUrl, wsUrl, fallbackHeaders }) {
  return (params, options) => {
    const headers = options?.headers ?? fallbackHeaders();
    if (isSubscription(params)) {
      return subscription(wsUrl, params, headers);
    }
    return post(httpUrl, params, headers);
  };
}

function isSubscription({ query, operationName }) {
  let document;
  try {
    document = parse(query);
  } catch {
    // Not ours to report: the server answers a syntax error over HTTP like any other.
    return false;
  }
  return getOperationAST(document, operationName ?? undefined)?.operation === "subscription";
}

async function post(url, params, headers) {
  const response = await fetch(url, {
    method: "POST",
    headers: { Accept: ACCEPT, "Content-Type": "application/json", ...headers },
    body: JSON.stringify(params),
    credentials: "same-origin",
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    // A body that is not JSON (a proxy's error page, a plain-text 4xx) is shown as an error
    // result, not thrown: GraphiQL would print a thrown Error with the bundle's stack trace.
    return { errors: [{ message: `${response.status} ${response.statusText}: ${text}` }] };
  }
}

// The server authenticates a WebSocket once, from connection_init; browsers cannot set headers
// on a WebSocket. So each subscription opens its own connection, carrying the Authorization
// header that the headers editor holds when it starts: editing the token takes effect on the
// next run, as it does for queries.
export function connectionPayload(headers) {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === "authorization") {
      return { Authorization: String(value) };
    }
  }
  return undefined;
}

// An Observable, so that GraphiQL's stop button reaches `unsubscribe`, which closes the socket.
function subscription(url, params, headers) {
  return {
    subscribe(sink) {
      const client = createClient({
        url,
        lazy: true,
        retryAttempts: 0,
        connectionParams: connectionPayload(headers),
      });
      const dispose = client.subscribe(params, {
        next: (result) => sink.next(result),
        error: (error) => {
          sink.error(describe(error));
          client.dispose();
        },
        complete: () => {
          sink.complete();
          client.dispose();
        },
      });
      return {
        unsubscribe() {
          dispose();
          client.dispose();
        },
      };
    },
  };
}

// graphql-ws reports GraphQL errors as an array, which GraphiQL prints as `errors`, and a
// closed socket as its CloseEvent, which would print as "{}": that becomes an array too.
function describe(error) {
  if (Array.isArray(error) || error instanceof Error) {
    return error;
  }
  if (error && typeof error.code === "number") {
    const reason = error.reason ? `: ${error.reason}` : "";
    return [{ message: `WebSocket closed with code ${error.code}${reason}` }];
  }
  return [{ message: "WebSocket connection failed" }];
}
