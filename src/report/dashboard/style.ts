import { BASE_CSS } from "../html.js";

/** The dashboard's stylesheet, served as /static/dashboard.css (no inline styles: the CSP forbids them). */
export const DASHBOARD_CSS = `${BASE_CSS}
main { max-width: 1280px; }
nav { color: var(--muted); margin-top: 8px; } nav a { color: #0969da; text-decoration: none; }
a { color: #0969da; }
.stats { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.stats div { border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px; min-width: 110px; }
.stats b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
.stats span { color: var(--muted); font-size: 12px; }
.live { font-size: 12px; font-weight: normal; color: var(--muted); border: 1px solid var(--line); border-radius: 10px; padding: 1px 8px; vertical-align: middle; }
.live.on { color: #1a7f37; border-color: #1a7f37; }
.chart { margin: 8px 0; }
.chart img { width: 100%; max-width: 1100px; height: auto; }
.filters { margin: 8px 0; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
/* A fixed layout: the browser need not measure every cell of a long table. */
table.trials { table-layout: fixed; }
table.trials th:nth-child(1) { width: 64px; } table.trials th:nth-child(3) { width: 96px; }
table.trials th:nth-child(4), table.trials th:nth-child(5) { width: 100px; }
table.trials th:nth-child(6) { width: 110px; } table.trials th:nth-child(7) { width: 72px; }
table.trials th:nth-child(8) { width: 80px; } table.trials th:nth-child(9) { width: 184px; }
table.trials th[data-key] { cursor: pointer; user-select: none; white-space: nowrap; }
table.trials th[aria-sort="ascending"]::after { content: " ▲"; font-size: 10px; }
table.trials th[aria-sort="descending"]::after { content: " ▼"; font-size: 10px; }
table.trials td { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
table.trials td.title { white-space: normal; overflow-wrap: anywhere; }
table.trials tr.keep td { background: #f0fff4; }
table.trials tr.fresh td { animation: fresh 2s ease-out; }
@keyframes fresh { from { background: #fff8c5; } }
h1 .title { overflow-wrap: anywhere; }
.hypothesis { font-style: italic; }
pre.log { max-height: 420px; overflow: auto; white-space: pre-wrap; }
button { font: inherit; padding: 4px 12px; }
`;
