// The GraphiQL page of chat-history-api. The page carries no inline script: it hands its
// settings over in <script type="application/json" id="graphiql-config">, read here.
import { explorerPlugin } from "@graphiql/plugin-explorer";
import "@graphiql/plugin-explorer/style.css";
import { useEditorContext } from "@graphiql/react";
import { setNonce } from "get-nonce";
import { GraphiQL } from "graphiql";
import "graphiql/style.css";
import { useEffect } from "react";
import { createRoot } from "react-dom/client";
import { createFetcher } from "./fetcher.js";
import "./page.css";

const config = JSON.parse(document.getElementById("graphiql-config").textContent);
// Radix dialogs add a <style> element; the page's CSP admits it by this per-response nonce.
if (config.styleNonce) {
  setNonce(config.styleNonce);
}

const httpUrl = new URL(config.endpoint, window.location.href);
const wsUrl = new URL(httpUrl);
wsUrl.protocol = httpUrl.protocol === "https:" ? "wss:" : "ws:";

// `?q=` opens a given query (the dev stack's link uses it) and follows edits, so that a reload
// or a shared link keeps the query.
const search = new URLSearchParams(window.location.search);
function rememberQuery(query) {
  search.set("q", query);
  window.history.replaceState(null, "", `?${search}`);
}

const headers = config.headers ? JSON.stringify(config.headers, null, 2) : undefined;
const plugins = [explorerPlugin()];

// Until the headers editor exists, requests carry the headers it is about to show; from then
// on, what GraphiQL reads from it (nothing, once the user empties it).
let headersEditorReady = false;
function HeadersEditorReady() {
  const { headerEditor } = useEditorContext({ nonNull: true });
  useEffect(() => {
    headersEditorReady = Boolean(headerEditor);
  }, [headerEditor]);
  return null;
}
const fetcher = createFetcher({
  httpUrl: httpUrl.href,
  wsUrl: wsUrl.href,
  fallbackHeaders: () => (headersEditorReady ? {} : (config.headers ?? {})),
});

createRoot(document.getElementById("graphiql")).render(
  <GraphiQL
    fetcher={fetcher}
    plugins={plugins}
    defaultQuery={config.defaultQuery}
    query={search.get("q") ?? undefined}
    variables={search.get("variables") ?? undefined}
    headers={headers}
    defaultHeaders={headers}
    onEditQuery={rememberQuery}
    defaultEditorToolsVisibility={headers ? "headers" : true}
    isHeadersEditorEnabled
    // A bearer token in localStorage would outlive the tab and the dev stack that issued it.
    shouldPersistHeaders={false}
    inputValueDeprecation
  >
    <HeadersEditorReady />
  </GraphiQL>,
);
