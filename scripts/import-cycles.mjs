#!/usr/bin/env node
// `npm run check` step: no import cycles between the folders of src/ (each folder is a
// capability or a layer; a cycle means two of them cannot be understood, or changed, apart).
// Type-only imports count too (they couple the folders' meaning just the same), but for one:
// `import type { Deps }` of the composition root (deps.ts builds every capability, and the routes
// of each are handed the result), which is a type and never a module dependency.
// Prints the folder graph with --graph.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src', import.meta.url));
const files = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
// A file directly in src/ is its own unit (app.ts, main.ts, config.ts …); else its top folder.
const unitOf = (file) => {
  const parts = relative(src, file).split('/');
  return parts.length === 1 ? parts[0].replace(/\.ts$/, '') : parts[0];
};

const edges = new Map();
const why = new Map();
for (const file of files(src)) {
  const from = unitOf(file);
  for (const m of readFileSync(file, 'utf8').matchAll(/^(import|export)(\s+type)?\b[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    const to = unitOf(resolve(dirname(file), m[3]));
    if (m[2] && to === 'deps') continue;
    if (to === from) continue;
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from).add(to);
    why.set(`${from}>${to}`, why.get(`${from}>${to}`) ?? `${relative(src, file)} imports ${m[3]}`);
  }
}

// Tarjan's strongly connected components: a component of more than one unit is a cycle.
let index = 0;
const stack = [];
const state = new Map();
const cycles = [];
function visit(v) {
  state.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of edges.get(v) ?? []) {
    if (!state.has(w)) {
      visit(w);
      state.get(v).low = Math.min(state.get(v).low, state.get(w).low);
    } else if (state.get(w).onStack) state.get(v).low = Math.min(state.get(v).low, state.get(w).index);
  }
  if (state.get(v).low === state.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      state.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1) cycles.push(component.sort());
  }
}
for (const v of edges.keys()) if (!state.has(v)) visit(v);

if (process.argv.includes('--graph')) {
  for (const [from, tos] of [...edges].sort()) console.log(`${from} -> ${[...tos].sort().join(', ')}`);
}
if (cycles.length) {
  console.error('import cycles between folders of src/:');
  for (const c of cycles) {
    console.error(`  ${c.join(' <-> ')}`);
    for (const a of c) for (const b of c) if (why.has(`${a}>${b}`)) console.error(`    ${why.get(`${a}>${b}`)}`);
  }
  process.exit(1);
}
