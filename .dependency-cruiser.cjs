/**
 * The layers of src/, lowest first. A folder may import its own layer and those below
 * it, never one above: `npm run deps` fails on an upward import. The order is the one
 * README's "Architecture" section explains. (Two folders importing each other always
 * break the order one way, so no separate cycle rule is needed.)
 */
const LAYERS = [
  ["util", "errors.ts"],
  ["executors"],
  ["metrics"],
  ["workspace"],
  ["ledger"],
  ["swarm"],
  ["judge"],
  ["providers"],
  ["researchers"],
  ["task"],
  ["orchestrator"],
  ["report"],
  ["cli"],
];

const paths = (names) => `^src/(${names.map((n) => n.replace(".", "\\.")).join("|")})($|/)`;

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer[0]}`,
  comment: `${layer.join(", ")} may not import a layer above it (${LAYERS.slice(i + 1)
    .map((l) => l[0])
    .join(", ")})`,
  severity: "error",
  from: { path: paths(layer) },
  to: { path: paths(LAYERS.slice(i + 1).flat()) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "orchestrator-index",
      comment: "above the orchestrator, only its index is imported (its public face)",
      severity: "error",
      from: { path: "^src/(report|cli)/" },
      to: { path: "^src/orchestrator/(?!index\\.ts$|events\\.ts$)" },
    },
    {
      name: "trial-below-run",
      comment: "a trial's phases do not import the whole-run commands",
      severity: "error",
      from: { path: "^src/orchestrator/trial/" },
      to: { path: "^src/orchestrator/(run/|index\\.ts$)" },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      from: { path: "^src/" },
      to: { couldNotResolve: true, path: "^\\.\\.?/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
  },
};
