// Copy the browser libraries installed by `npm ci` into static/vendor/, where Django's
// staticfiles (and whitenoise) serve them. The copies are build output, not committed.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const target = join(root, "static", "vendor");
const files = [
  "node_modules/htmx.org/dist/htmx.min.js",
  "node_modules/uplot/dist/uPlot.iife.min.js",
  "node_modules/uplot/dist/uPlot.min.css",
];

rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
for (const file of files) {
  copyFileSync(join(root, file), join(target, basename(file)));
}
console.log(`Copied ${files.length} files into static/vendor/.`);
