/**
 * The dashboard's only script, served as /static/dashboard.js. It builds the trial table
 * from JSON with DOM nodes and textContent only (never markup from data), and follows
 * the run through server-sent events: new and changed trials are merged without a reload.
 */
export const DASHBOARD_JS = String.raw`"use strict";
(function () {
  function fmt(x) {
    if (x === null || x === undefined || !isFinite(x)) return "—";
    return String(Number(Number(x).toPrecision(6)));
  }
  function gain(t, goal) {
    if (t.metric == null || t.parentMetric == null) return null;
    return goal === "minimize" ? t.parentMetric - t.metric : t.metric - t.parentMetric;
  }
  function time(ms) {
    return ms == null ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 19);
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function link(href, text) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }
  // Trials come as rows of values under one list of column names.
  function unpack(table) {
    return table.rows.map(function (values) {
      var t = {};
      table.columns.forEach(function (name, i) { t[name] = values[i]; });
      return t;
    });
  }
  function follow(url, onTrials, onState) {
    var source = null;
    var cursor = null;
    function open() {
      source = new EventSource(url + "?after=" + cursor.after + "&open=" + cursor.open.join(","));
      source.onopen = function () { onState(true); };
      source.addEventListener("trials", function (event) {
        var data = JSON.parse(event.data);
        cursor = data.cursor;
        data.trials = unpack(data.table);
        onTrials(data);
      });
      // Reconnect from where the table stands rather than from the first cursor.
      source.onerror = function () {
        onState(false);
        source.close();
        setTimeout(open, 2000);
      };
    }
    return function start(from) { cursor = from; open(); };
  }

  var runEl = document.getElementById("run");
  if (runEl) runPage(runEl);
  var trialEl = document.getElementById("trial");
  if (trialEl && trialEl.dataset.state !== "done") trialPage(trialEl);

  function runPage(el) {
    var tag = el.dataset.run;
    var goal = el.dataset.goal;
    var api = "/api/runs/" + encodeURIComponent(tag);
    var page = "/runs/" + encodeURIComponent(tag);
    var rows = new Map();
    var fresh = new Set();
    var sort = { key: "n", dir: -1 };
    var filters = { verdict: "", researcher: "", slot: "" };
    var limit = 200;
    var tbody = document.querySelector("#trials tbody");
    var shown = document.getElementById("shown");
    var more = document.getElementById("more");
    var live = document.getElementById("live");
    var scheduled = false;
    var optionKeys = {};
    var shownSet = null;
    var chartsBusy = false;
    var chartsAgain = false;
    live.dataset.text = live.textContent;

    function value(t, key) {
      if (key === "verdict") return t.verdict || t.state;
      if (key === "delta") return gain(t, goal);
      if (key === "seconds") return t.runMs == null ? null : t.runMs / 1000;
      return t[key] == null ? null : t[key];
    }
    function compare(a, b) {
      var x = value(a, sort.key);
      var y = value(b, sort.key);
      if (x === null && y === null) return (a.n - b.n) * sort.dir;
      if (x === null) return 1;
      if (y === null) return -1;
      var c = typeof x === "string" ? x.localeCompare(y) : x - y;
      return c * sort.dir || (a.n - b.n) * sort.dir;
    }
    function matches(t) {
      return (!filters.verdict || value(t, "verdict") === filters.verdict) &&
        (!filters.researcher || t.researcher === filters.researcher) &&
        (!filters.slot || t.slot === filters.slot);
    }
    function row(t) {
      var tr = document.createElement("tr");
      var v = value(t, "verdict");
      tr.dataset.n = String(t.n);
      if (v === "keep") tr.classList.add("keep");
      if (fresh.has(t.n)) tr.classList.add("fresh");
      var href = page + "/trials/" + t.n;
      cell(tr, "", "num").appendChild(link(href, "#" + t.n));
      cell(tr, "", "title").appendChild(link(href, t.title || (t.baseline ? "baseline" : "(proposing)")));
      var badge = document.createElement("span");
      badge.className = "verdict v-" + v;
      badge.textContent = v;
      cell(tr, "").appendChild(badge);
      cell(tr, fmt(t.metric), "num");
      var g = gain(t, goal);
      cell(tr, g === null ? "" : (g >= 0 ? "+" : "−") + fmt(Math.abs(g)), "num");
      cell(tr, t.researcher);
      cell(tr, t.slot || "");
      cell(tr, t.runMs == null ? "" : (t.runMs / 1000).toFixed(1), "num");
      cell(tr, time(t.finishedAt));
      return tr;
    }
    function options() {
      ["verdict", "researcher", "slot"].forEach(function (name) {
        var values = new Set();
        rows.forEach(function (t) { var x = value(t, name); if (x) values.add(x); });
        var sorted = Array.from(values).sort();
        var key = sorted.join("\u0000");
        if (optionKeys[name] === key) return;
        optionKeys[name] = key;
        var select = document.querySelector('select[data-filter="' + name + '"]');
        var all = document.createElement("option");
        all.value = "";
        all.textContent = "all";
        select.replaceChildren(all);
        sorted.forEach(function (x) {
          var option = document.createElement("option");
          option.value = x;
          option.textContent = x;
          select.appendChild(option);
        });
        select.value = filters[name];
      });
    }
    function render() {
      scheduled = false;
      var list = Array.from(rows.values()).filter(matches).sort(compare);
      var frag = document.createDocumentFragment();
      list.slice(0, limit).forEach(function (t) { frag.appendChild(row(t)); });
      tbody.replaceChildren(frag);
      fresh.clear();
      shown.textContent = "showing " + Math.min(limit, list.length) + " of " + list.length +
        (list.length !== rows.size ? " (" + rows.size + " in all)" : "");
      more.hidden = list.length <= limit;
      options();
    }
    function schedule() {
      if (!scheduled) { scheduled = true; requestAnimationFrame(render); }
    }
    function state(s) {
      live.dataset.text = s.live ? "running now" : s.status === "running" ? "not running" : s.status;
    }
    function numbers(s) {
      document.querySelectorAll("[data-field]").forEach(function (node) {
        var x = s[node.dataset.field];
        node.textContent = typeof x === "number" || x === null ? fmt(x) : String(x);
      });
    }
    // A chart of set "set", loaded off screen; resolves to the function that shows it.
    function loadChart(id, set) {
      return new Promise(function (resolve) {
        var old = document.getElementById(id);
        var img = document.createElement("img");
        img.id = id;
        img.alt = old.alt;
        img.dataset.src = old.dataset.src;
        img.onload = img.onerror = function () { resolve(function () { old.replaceWith(img); }); };
        img.src = old.dataset.src + "?set=" + set;
      });
    }
    // The numbers above the charts and the charts come from one set, which the server drew
    // from one moment of the ledger: they change together, once the new charts have
    // loaded, so that the boxes never count trials the chart does not show. One request
    // at a time; changes meanwhile are fetched after a pause, all at once.
    function charts() {
      if (chartsBusy) { chartsAgain = true; return; }
      chartsBusy = true;
      fetch(api + "/charts", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.set === shownSet) return;
          return Promise.all([loadChart("progress", data.set), loadChart("timeline", data.set)])
            .then(function (show) {
              show.forEach(function (f) { f(); });
              numbers(data.summary);
              shownSet = data.set;
            });
        })
        .catch(function () {})
        .then(function () {
          if (!chartsAgain) { chartsBusy = false; return; }
          chartsAgain = false;
          setTimeout(function () { chartsBusy = false; charts(); }, 1000);
        });
    }
    function connected(on) {
      live.classList.toggle("on", on);
      live.textContent = live.dataset.text + (on ? " · live" : " · reconnecting");
    }

    document.querySelectorAll("th[data-key]").forEach(function (th) {
      function toggle() {
        var key = th.dataset.key;
        sort = { key: key, dir: sort.key === key ? -sort.dir : key === "n" || key === "finishedAt" ? -1 : 1 };
        document.querySelectorAll("th[data-key]").forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
        render();
      }
      th.addEventListener("click", toggle);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") toggle(); });
    });
    document.querySelectorAll("select[data-filter]").forEach(function (select) {
      select.addEventListener("change", function () { filters[select.dataset.filter] = select.value; render(); });
    });
    more.addEventListener("click", function () { limit += 1000; render(); });
    document.querySelector('th[data-key="n"]').setAttribute("aria-sort", "descending");

    var start = follow(api + "/events", function (data) {
      data.trials.forEach(function (t) {
        var old = rows.get(t.n);
        if (!old || old.state !== t.state || old.verdict !== t.verdict) fresh.add(t.n);
        rows.set(t.n, t);
      });
      state(data.summary);
      connected(true);
      if (data.trials.length) schedule();
      charts();
    }, connected);
    function load(query) {
      return fetch(api + "/trials" + query, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          unpack(data.table).forEach(function (t) { rows.set(t.n, t); });
          state(data.summary);
          render();
          return data;
        });
    }
    // The first screen of the table first, then the whole table (for sorting and
    // filtering), then the charts, then the live stream from where the table stands.
    load("?last=" + limit).then(function () {
      // For anyone timing the page (the benchmark does): the table is on screen.
      performance.mark("table-ready");
      return load("");
    }).then(function (data) {
      performance.mark("table-complete");
      document.body.dataset.ready = "true";
      charts();
      start(data.cursor);
    });
  }

  function trialPage(el) {
    var api = "/api/runs/" + encodeURIComponent(el.dataset.run);
    var n = Number(el.dataset.trial);
    var state = el.dataset.state;
    follow(api + "/events", function (data) {
      data.trials.forEach(function (t) { if (t.n === n && t.state !== state) location.reload(); });
    }, function () {})({ after: Number(el.dataset.after), open: [Number(el.dataset.id)] });
  }
})();
`;
