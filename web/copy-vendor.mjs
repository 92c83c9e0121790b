// Copies the browser builds of the dashboard's npm dependencies into the Python package's static folder.
// Run after `npm ci` (the Makefile's `web` target does both). The destination is gitignored:
// nothing third-party is committed; package-lock.json pins exactly what is shipped.
import { copyFileSync, mkdirSync, existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";

const here = dirname(fileURLToPath(import.meta.url));
const dest = join(here, "..", "src", "civicam", "web", "static", "vendor");
const modules = join(here, "node_modules");

const FILES = [
  // [package, file inside the package, name in vendor/]
  ["hls.js", "dist/hls.min.js", "hls.min.js"],
  ["chart.js", "dist/chart.umd.min.js", "chart.umd.min.js"],
];

mkdirSync(dest, { recursive: true });
const versions = {};
for (const [pkg, file, name] of FILES) {
  const root = join(modules, pkg);
  const src = join(root, file);
  if (!existsSync(src)) {
    console.error(`copy-vendor: ${src} is missing; did 'npm ci' run?`);
    process.exit(1);
  }
  copyFileSync(src, join(dest, name));
  versions[pkg] = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
  for (const lic of ["LICENSE", "LICENSE.md"]) {
    if (existsSync(join(root, lic))) copyFileSync(join(root, lic), join(dest, `${pkg}.LICENSE.txt`));
  }
}
writeFileSync(join(dest, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`copy-vendor: ${Object.entries(versions).map(([k, v]) => `${k}@${v}`).join(", ")} -> ${dest}`);
