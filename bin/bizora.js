#!/usr/bin/env node
// The `bizora` command. Runs the TypeScript sources through tsx's loader, so a checkout needs no
// build step: `npx bizora …` and `npm start` run exactly what is in src/.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
