// Bundles the GraphiQL page (src/main.jsx) into the Python package's static folder, with a
// manifest of every file: its sha256, its size and the npm packages (with versions) inside it.
// Run through `make graphiql-assets` after `npm ci`; see README.md.
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../../graphql_api/graphiql/static");

// Fonts arrive inlined in GraphiQL's CSS as data: URLs; they become files of their own, so
// that the page's CSP can say font-src 'self' and browsers fetch only the subsets they use.
const INLINE_FONT = /url\(\s*["']?data:font\/(woff2?|ttf|otf);base64,([A-Za-z0-9+/=]+)["']?\s*\)/g;

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

// A content hash in every name: the service can then let browsers cache them for good.
function hashedName(stem, extension, bytes) {
  return `${stem}-${sha256(bytes).slice(0, 12)}.${extension}`;
}

const packageVersions = new Map();

// "node_modules/@scope/name/dist/x.js" -> {name: "@scope/name", version}, from the innermost
// node_modules folder, where npm put the copy that was bundled.
async function packageOf(input) {
  const parts = input.split("/");
  const at = parts.lastIndexOf("node_modules");
  if (at < 0) {
    return null;
  }
  const name = parts[at + 1].startsWith("@") ? parts.slice(at + 1, at + 3).join("/") : parts[at + 1];
  const root = [...parts.slice(0, at + 1), name].join("/");
  if (!packageVersions.has(root)) {
    const manifest = JSON.parse(await readFile(path.join(here, root, "package.json"), "utf8"));
    packageVersions.set(root, { name, version: manifest.version, license: manifest.license, root });
  }
  return packageVersions.get(root);
}

async function packagesOf(inputs) {
  const found = new Map();
  for (const input of inputs) {
    const pkg = await packageOf(input);
    if (pkg) {
      found.set(`${pkg.name}@${pkg.version}`, pkg);
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function versions(packages) {
  return Object.fromEntries(packages.map((pkg) => [pkg.name, pkg.version]));
}

async function build() {
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: { graphiql: "src/main.jsx" },
    bundle: true,
    minify: true,
    format: "iife",
    target: ["chrome109", "firefox115", "safari16"],
    jsx: "automatic",
    define: { "process.env.NODE_ENV": '"production"' },
    // The licenses go to a file of their own, written below.
    legalComments: "none",
    outdir: "out",
    write: false,
    metafile: true,
    logLevel: "warning",
  });
  const outputs = Object.fromEntries(
    result.outputFiles.map((file) => [path.relative(here, file.path), file.contents]),
  );
  const inputsOf = (output) => Object.keys(result.metafile.outputs[output].inputs);
  const files = {};

  const scriptPackages = await packagesOf(inputsOf("out/graphiql.js"));
  const script = hashedName("graphiql", "js", outputs["out/graphiql.js"]);
  files[script] = { bytes: outputs["out/graphiql.js"], packages: scriptPackages };

  const cssInputs = inputsOf("out/graphiql.css");
  const cssTexts = await Promise.all(cssInputs.map((input) => readFile(path.join(here, input), "utf8")));
  let css = new TextDecoder().decode(outputs["out/graphiql.css"]);
  css = await replaceAsync(css, INLINE_FONT, async (_match, format, base64) => {
    const bytes = Buffer.from(base64, "base64");
    const name = hashedName("font", format, bytes);
    // The package whose stylesheet carried this font.
    const owner = cssInputs.find((_input, index) => cssTexts[index].includes(base64));
    files[name] = { bytes, packages: owner ? await packagesOf([owner]) : [] };
    return `url(${name})`;
  });
  const cssBytes = new TextEncoder().encode(css);
  const stylesheet = hashedName("graphiql", "css", cssBytes);
  files[stylesheet] = { bytes: cssBytes, packages: await packagesOf(cssInputs) };

  // Ours, not from npm: without it, browsers ask for /favicon.ico and log the 404.
  const iconBytes = await readFile(path.join(here, "src/favicon.svg"));
  const icon = hashedName("favicon", "svg", iconBytes);
  files[icon] = { bytes: iconBytes, packages: [] };

  const allPackages = await packagesOf([...inputsOf("out/graphiql.js"), ...cssInputs]);
  const licenses = new TextEncoder().encode(await licenseText(allPackages));
  files[hashedName("licenses", "txt", licenses)] = { bytes: licenses, packages: allPackages };

  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const manifest = { entry: { script, stylesheet, icon }, files: {} };
  for (const name of Object.keys(files).sort()) {
    const { bytes, packages } = files[name];
    await writeFile(path.join(outdir, name), bytes);
    manifest.files[name] = { sha256: sha256(bytes), size: bytes.length, packages: versions(packages) };
  }
  await writeFile(path.join(outdir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const [name, { size }] of Object.entries(manifest.files)) {
    console.log(`${String(size).padStart(9)}  ${name}`);
  }
}

async function licenseText(packages) {
  const sections = [];
  for (const pkg of packages) {
    const text = await readLicense(path.join(here, pkg.root));
    if (text === null && !pkg.license) {
      throw new Error(`${pkg.name} states no license: check its terms before bundling it`);
    }
    // A few packages (GraphiQL's plugins among them) state their license only in package.json.
    const body = text?.trim() ?? `Licensed under ${pkg.license}; the package ships no license text.`;
    sections.push(`${pkg.name}@${pkg.version} (${pkg.license ?? "see below"})\n\n${body}\n`);
  }
  const header = "Third-party software bundled into GraphiQL's assets, with its licenses.\n";
  return [header, ...sections].join(`\n${"-".repeat(78)}\n\n`);
}

async function readLicense(root) {
  for (const name of ["LICENSE", "LICENSE.md", "LICENSE.txt", "license", "LICENCE", "license.md"]) {
    try {
      return await readFile(path.join(root, name), "utf8");
    } catch (error) {
      if (error.code !== "ENOENT") {
        throw error;
      }
    }
  }
  return null;
}

async function replaceAsync(text, pattern, replacer) {
  const replacements = await Promise.all(
    [...text.matchAll(pattern)].map((match) => replacer(...match)),
  );
  let index = 0;
  return text.replace(pattern, () => replacements[index++]);
}

await build();
