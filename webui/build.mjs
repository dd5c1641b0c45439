// Builds the dashboard into dist/, which is committed and embedded in the
// daemon (go:embed), so that `go build` needs no Node.js.
//
//   npm ci && node build.mjs          write dist/
//   node build.mjs --check            exit 1 if dist/ is not what the sources build to
//
// esbuild bundles and minifies src/main.js with Preact, htm and uPlot into
// one module and src/style.css with uPlot's CSS into one stylesheet. The
// output is deterministic, so --check can compare byte for byte.

import * as esbuild from 'esbuild';
import { readFileSync, writeFileSync, mkdirSync, rmSync, readdirSync, statSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const check = process.argv.includes('--check');

// The libraries that end up in app.js and app.css; their licences are
// shipped with the dashboard as /licenses.txt.
const BUNDLED = ['preact', 'htm', 'uplot'];

const common = {
  bundle: true,
  minify: true,
  write: false,
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: root,
};

const js = await esbuild.build({
  ...common,
  entryPoints: ['src/main.js'],
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15', 'edge100'],
  outfile: 'dist/assets/app.js',
});
const css = await esbuild.build({
  ...common,
  entryPoints: ['src/style.css'],
  target: ['chrome100', 'firefox100', 'safari15', 'edge100'],
  outfile: 'dist/assets/app.css',
});

function licenses() {
  let out = 'The ftbridge dashboard includes the following libraries.\n';
  for (const name of BUNDLED) {
    const dir = join(root, 'node_modules', name);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
    out += `\n${'='.repeat(72)}\n${name} ${pkg.version} (${pkg.license})\n${'='.repeat(72)}\n\n`;
    out += readFileSync(join(dir, file), 'utf8').trim() + '\n';
  }
  return out;
}

const files = new Map([
  ['index.html', readFileSync(join(root, 'src/index.html'))],
  ['assets/favicon.svg', readFileSync(join(root, 'src/favicon.svg'))],
  ['assets/app.js', Buffer.from(js.outputFiles[0].contents)],
  ['assets/app.css', Buffer.from(css.outputFiles[0].contents)],
  ['licenses.txt', Buffer.from(licenses())],
]);

function listDir(dir) {
  const out = [];
  const walk = (d) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  try {
    walk(dir);
  } catch {
    // No dist yet.
  }
  return out.sort();
}

if (check) {
  const problems = [];
  for (const [name, data] of files) {
    let old = null;
    try {
      old = readFileSync(join(dist, name));
    } catch {
      problems.push(`${name}: missing`);
      continue;
    }
    if (!old.equals(data)) problems.push(`${name}: differs from what the sources build to`);
  }
  for (const name of listDir(dist)) if (!files.has(name)) problems.push(`${name}: not built from the sources`);
  if (problems.length) {
    console.error(`webui/dist is stale (run: cd webui && node build.mjs):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('webui/dist is up to date');
} else {
  rmSync(dist, { recursive: true, force: true });
  for (const [name, data] of files) {
    mkdirSync(dirname(join(dist, name)), { recursive: true });
    writeFileSync(join(dist, name), data);
  }
  for (const [name, data] of files) console.log(`${String(data.length).padStart(8)}  dist/${name}`);
}
