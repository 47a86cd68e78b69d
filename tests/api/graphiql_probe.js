// Runs the inline script of a GraphiQL page with stand-ins for React, GraphiQL and the browser,
// and prints the props the page gives the GraphiQL component, as JSON.
const fs = require("fs");
const html = fs.readFileSync(0, "utf8");
const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
let rendered = null;
const GraphiQL = function GraphiQL() {};
GraphiQL.createFetcher = (options) => ({ fetcherOptions: options });
const React = {
  useState: (initial) => [initial, () => {}],
  createElement: (type, props) => {
    if (typeof type === "function" && type !== GraphiQL) return type(props);
    if (type === GraphiQL) rendered = props;
    return null;
  },
};
const context = {
  React,
  ReactDOM: { createRoot: () => ({ render: (element) => element }) },
  GraphiQL,
  GraphiQLPluginExplorer: { explorerPlugin: () => ({}) },
  Cookies: { get: () => undefined },
  window: { location: { search: "", href: "http://testserver/graphql" } },
  history: { replaceState: () => {} },
  document: { getElementById: () => ({}) },
  URL,
};
const run = new Function(...Object.keys(context), scripts.join("\n"));
run(...Object.values(context));
process.stdout.write(JSON.stringify({ headers: rendered && rendered.headers }));
