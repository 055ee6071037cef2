/** Runs one benchmark by name: `npm run bench -- overhead [args]`. */
const [name, ...rest] = process.argv.slice(2);
const benches = [
  "overhead",
  "history",
  "dashboard",
  "pipeline",
  "judge",
  "research",
  "swarm",
  "swarm-research",
  "ledger-check",
];
if (!name || !benches.includes(name)) {
  console.error(`usage: npm run bench -- <${benches.join("|")}> [args]`);
  process.exit(2);
}
process.argv = [process.argv[0]!, name, ...rest];
await import(`./${name}.ts`);
