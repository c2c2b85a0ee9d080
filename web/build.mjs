// Bundles the dashboard into OUTDIR (index.html, assets/app-HASH.js|css and
// their .gz twins, which the daemon sends to browsers that accept gzip).
// Usage: node build.mjs --outdir DIR [--metafile FILE]
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from "node:fs";
import { join, dirname, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync, constants } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const outdir = arg("--outdir") ?? join(here, "dist");
const assets = join(outdir, "assets");
rmSync(assets, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await build({
  entryPoints: { app: join(here, "src/main.tsx") },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "esm",
  splitting: true, // the chart library is its own chunk, loaded by the pages that draw charts
  chunkNames: "chunk-[hash]",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: assets,
  entryNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
  legalComments: "none",
});

const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint);
const js = entry && basename(entry[0]);
const css = entry?.[1].cssBundle && basename(entry[1].cssBundle);
if (!js || !css) throw new Error(`expected the app's .js and .css, got ${Object.keys(result.metafile.outputs).join(", ")}`);

// Chunks the app imports statically are fetched with it, not after it is parsed.
const preload = entry[1].imports
  .filter((i) => i.kind === "import-statement")
  .map((i) => `<link rel="modulepreload" href="/assets/${basename(i.path)}">`)
  .join("\n");
const html = readFileSync(join(here, "src/index.html"), "utf8")
  .replace("%PRELOAD%", preload)
  .replace("%APP_JS%", `/assets/${js}`)
  .replace("%APP_CSS%", `/assets/${css}`);
writeFileSync(join(outdir, "index.html"), html);
writeFileSync(join(outdir, "favicon.svg"), readFileSync(join(here, "src/favicon.svg")));

// Precompressed once here, so the daemon never compresses per request.
const sizes = {};
for (const f of ["index.html", "favicon.svg", ...readdirSync(assets).map((a) => `assets/${a}`)]) {
  const raw = readFileSync(join(outdir, f));
  const gz = gzipSync(raw, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(join(outdir, f + ".gz"), gz);
  sizes[f] = { bytes: raw.length, gzip_bytes: gz.length };
}
writeFileSync(join(outdir, "sizes.json"), JSON.stringify(sizes, null, 1) + "\n");
const meta = arg("--metafile");
if (meta) writeFileSync(meta, JSON.stringify(result.metafile));
for (const [f, s] of Object.entries(sizes)) console.log(`${f}: ${s.bytes} B, ${s.gzip_bytes} B gzipped`);
