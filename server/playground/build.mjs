// Builds dist/: index.html plus content-hashed, minified assets that the Go
// package embeds (go:embed). Run with `npm ci && npm run build`; commit
// dist/ and package-lock.json. The same lock file gives the same bytes.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';

import * as esbuild from 'esbuild';

// Where the server serves dist/assets/ (see playground.go).
const PREFIX = '/playground/';

// GraphiQL's stylesheet inlines Roboto and Fira Code as base64 @font-face
// rules: about 360 KB of the 418 KB. The page uses system fonts instead.
const dropFontFaces = {
  name: 'drop-font-faces',
  setup(build) {
    build.onLoad({ filter: /[\\/]graphiql[\\/]dist[\\/]style\.css$/ }, async (args) => ({
      contents: (await readFile(args.path, 'utf8')).replace(/@font-face\s*\{[^}]*\}/g, ''),
      loader: 'css',
    }));
  },
};

const hashed = (name, ext, bytes) =>
  `${name}-${createHash('sha256').update(bytes).digest('base64url').slice(0, 10)}${ext}`;

await rm('dist', { recursive: true, force: true });
await mkdir('dist/assets', { recursive: true });

const result = await esbuild.build({
  entryPoints: { playground: 'src/main.jsx' },
  outdir: 'dist/assets',
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  // License comments go to one file next to the bundle.
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  plugins: [dropFontFaces],
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const pick = (ext) => {
  const found = outputs.filter((n) => n.endsWith(ext));
  if (found.length !== 1) {
    throw new Error(`want one ${ext} output, got ${found.join(', ') || 'none'}`);
  }
  return found[0];
};

const favicon = await readFile('src/favicon.svg');
const faviconName = hashed('favicon', '.svg', favicon);
await writeFile(`dist/assets/${faviconName}`, favicon);

const html = (await readFile('src/index.html', 'utf8'))
  .replaceAll('{{js}}', PREFIX + pick('.js'))
  .replaceAll('{{css}}', PREFIX + pick('.css'))
  .replaceAll('{{favicon}}', PREFIX + faviconName);
await writeFile('dist/index.html', html);

for (const name of [...outputs, faviconName].sort()) {
  const { size } = await stat(`dist/assets/${name}`);
  console.log(`${String(size).padStart(9)}  dist/assets/${name}`);
}
