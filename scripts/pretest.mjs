#!/usr/bin/env node
// Runs before `npm test`: a fresh clone gets its dependencies, the database fallback and Chromium.
import { ensureChromium, ensureDatabaseFallback, ensureNodeModules } from './setup.mjs';

ensureNodeModules();
ensureDatabaseFallback();
ensureChromium();
