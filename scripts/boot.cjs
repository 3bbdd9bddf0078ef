'use strict';
// dist/cli.js and dist/supervisor.js: run dist/lib/<same name> as a CommonJS module, compiled with the V8 code cache
// the build made beside it (Node 20 has no compile cache of its own), so a start skips most of the compile. A cache
// V8 rejects (another node, other flags) is ignored. Written only while the build runs jobq to make it
// (JOBQ_WRITE_CODE_CACHE names the entries), never by a user's command.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const name = path.basename(__filename);
const file = path.join(__dirname, 'lib', name);
const cacheFile = `${file}.cache`;
// A vm script has no import() of its own: the bundle imports ES-module-only packages (execa) through this one.
globalThis.__jobqImport = (spec) => import(spec);
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  /* no cache: compile as usual */
}
const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
if ((process.env.JOBQ_WRITE_CODE_CACHE ?? '').split(',').includes(name)) {
  // After the run: the cache then holds every function the command compiled, not only the top level.
  process.once('exit', () => fs.writeFileSync(cacheFile, script.createCachedData()));
}
const mod = new Module(file, module);
mod.filename = file;
mod.paths = Module._nodeModulePaths(path.dirname(file));
const req = (id) => mod.require(id);
req.resolve = (request, options) => Module._resolveFilename(request, mod, false, options);
script.runInThisContext()(mod.exports, req, mod, file, path.dirname(file));
