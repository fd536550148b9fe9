// Tokenise spec files with VS Code's TextMate engine: node tokenize.mjs GRAMMAR FILE...
// Prints one JSON object: file -> [[line, start, end, [scopes...]], ...] (0-based lines, UTF-16 columns).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const [grammarPath, ...files] = process.argv.slice(2);
const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm")).buffer;
const onigLib = oniguruma.loadWASM(wasm).then(() => ({
  createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
  createOnigString: (text) => new oniguruma.OnigString(text),
}));
const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async () => vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath),
});
const grammar = await registry.loadGrammar("source.archdsl");
const out = {};
for (const file of files) {
  const tokens = [];
  let stack = vsctm.INITIAL;
  fs.readFileSync(file, "utf8").split("\n").forEach((line, number) => {
    const result = grammar.tokenizeLine(line, stack);
    for (const t of result.tokens) tokens.push([number, t.startIndex, Math.min(t.endIndex, line.length), t.scopes]);
    stack = result.ruleStack;
  });
  out[file] = tokens;
}
process.stdout.write(JSON.stringify(out));
