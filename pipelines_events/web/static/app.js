// pipelines-events web page: live updates (server-sent events), the timeline, the verify
// badge. Every value from the log goes into the page through textContent, never as HTML.
(function () {
  "use strict";

  var body = document.body;
  var FAILED = { CONFIG_ERROR: 1, VALIDATION_ERROR: 1, RUNTIME_ERROR: 1 };
  var SVG = "http://www.w3.org/2000/svg";

  // What the stream delivered: the seqs in order, and any duplicate or gap seen.
  var live = { seqs: [], anomalies: [], last: Number(body.dataset.seq || "0"), state: "off" };
  window.pipelinesEventsLive = live;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pad(n, width) {
    var s = String(n);
    while (s.length < width) s = "0" + s;
    return s;
  }

  function formatTime(iso, millis) {
    if (!iso) return "—";
    var d = new Date(iso);
    var text = d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1, 2) + "-" + pad(d.getUTCDate(), 2) +
      " " + pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" + pad(d.getUTCSeconds(), 2);
    return millis ? text + "." + pad(d.getUTCMilliseconds(), 3) : text;
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return (seconds * 1000).toFixed(1) + " ms";
    if (seconds < 60) return seconds.toFixed(2) + " s";
    var whole = Math.round(seconds);
    if (whole < 3600) return Math.floor(whole / 60) + " min " + pad(whole % 60, 2) + " s";
    return Math.floor(whole / 3600) + " h " + pad(Math.floor((whole % 3600) / 60), 2) + " min";
  }

  function statusBadge(status) {
    return el("span", "status s-" + status, status);
  }

  function setStatus(cell, status) {
    cell.replaceChildren(statusBadge(status));
  }

  function text(value) {
    if (value === null || value === undefined) return null;
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  // -- the verify badge ----------------------------------------------------------------------

  var badge = document.getElementById("verify-badge");
  var badgeBusy = false, badgeStale = false;

  // Ask the server to verify the chain again (it caches the report until the file changes);
  // at most one request at a time, and one more when the log grew meanwhile.
  function checkChain() {
    if (!badge || !badge.dataset.src) return;
    if (badgeBusy) { badgeStale = true; return; }
    badgeBusy = true;
    fetch(badge.dataset.src, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error(String(r.status))); })
      .then(function (report) {
        badge.textContent = report.badge;
        badge.classList.remove("ok", "bad");
        badge.classList.add(report.ok ? "ok" : "bad");
        badge.dataset.seq = String(report.head_seq);
      })
      .catch(function () { badge.textContent = "chain: could not check"; badge.classList.add("bad"); })
      .then(function () {
        badgeBusy = false;
        if (badgeStale) { badgeStale = false; window.setTimeout(checkChain, 10000); }
      });
  }
  checkChain();

  // -- the run list --------------------------------------------------------------------------

  var runsTable = document.getElementById("runs");
  var rowsByRun = new Map();
  if (runsTable) {
    runsTable.querySelectorAll("tbody tr").forEach(function (row) {
      rowsByRun.set(row.dataset.runId, row);
    });
  }

  function fillRow(row, run) {
    var cells = row.children;
    setStatus(cells[1], run.status);
    cells[2].textContent = formatTime(run.started, false);
    cells[3].textContent = formatDuration(run.duration);
    cells[4].textContent = String(run.task_results.done);
    cells[5].textContent = String(run.task_results.failed);
    cells[6].textContent = String(run.task_results.cancelled);
    cells[7].textContent = String(run.task_results.total);
    cells[8].textContent = run.pipeline_id;
    cells[9].textContent = run.message;
  }

  function newRow(run) {
    var row = el("tr");
    row.dataset.runId = run.run_id;
    var idCell = el("td", "id");
    var a = el("a", null, run.run_id);
    a.href = "/run?id=" + encodeURIComponent(run.run_id);
    idCell.appendChild(a);
    row.appendChild(idCell);
    ["status-cell", "time", "num", "num done", "num failed", "num cancelled", "num total",
      "pipeline", "message"].forEach(function (cls) { row.appendChild(el("td", cls)); });
    fillRow(row, run);
    return row;
  }

  function wanted(run) {
    var d = runsTable.dataset;
    if (d.pageNumber !== "1" || d.filterUntil) return false;
    if (d.filterStatus && run.status !== d.filterStatus) return false;
    if (d.filterPipeline && run.pipeline_id !== d.filterPipeline) return false;
    if (d.filterSince && (!run.started || new Date(run.started) < new Date(d.filterSince))) return false;
    return true;
  }

  function applyToRuns(message) {
    var row = rowsByRun.get(message.run_id);
    if (message.type === "removed" && row) {
      row.classList.add("removed");
      return;
    }
    if (!message.run) return;
    if (row) {
      fillRow(row, message.run);
    } else if (wanted(message.run)) {
      row = newRow(message.run);
      rowsByRun.set(message.run_id, row);
      var tbody = runsTable.tBodies[0];
      tbody.insertBefore(row, tbody.firstChild);
      var total = document.getElementById("run-total");
      if (total) total.textContent = String(Number(total.textContent) + 1);
      var empty = document.getElementById("no-runs");
      if (empty) empty.hidden = true;
      var limit = Number(runsTable.dataset.perPage || "50");
      while (tbody.rows.length > limit) {
        var gone = tbody.rows[tbody.rows.length - 1];
        rowsByRun.delete(gone.dataset.runId);
        tbody.removeChild(gone);
      }
    }
  }

  // -- the run page --------------------------------------------------------------------------

  var tree = document.getElementById("tree");
  var nodesById = new Map();
  if (tree) {
    tree.querySelectorAll("li.node").forEach(function (li) { nodesById.set(li.dataset.id, li); });
  }

  var KIND_NAMES = {
    pipeline_execution: "execution", pipeline_result: "pipeline result",
    task_execution: "task", task_result: "task result"
  };

  function label(state) {
    if (state.kind === "pipeline_execution") return "run " + state.run_id;
    if (state.kind === "pipeline_result") return state.pipeline_object === null || state.pipeline_object === undefined ? "pipeline result" : text(state.pipeline_object);
    if (state.kind === "task_execution") return state.pipeline_task || state.task_id || state.id;
    return state.task_object === null || state.task_object === undefined ? "task result" : text(state.task_object);
  }

  function times(state) {
    if (!state.started) return "not started";
    var t = "started " + formatTime(state.started, true);
    if (state.completed) t += " · completed " + formatTime(state.completed, true) + " · " + formatDuration(state.duration);
    return t;
  }

  function newNode(state) {
    var li = el("li", "node k-" + state.kind);
    li.dataset.id = state.id;
    li.dataset.kind = state.kind;
    var row = el("div", "row");
    row.appendChild(el("span", "kind", KIND_NAMES[state.kind] || state.kind));
    row.appendChild(el("span", "label", label(state)));
    row.appendChild(el("span", "status-cell"));
    row.appendChild(el("span", "times"));
    var history = el("a", "history", "history");
    history.href = "/object?id=" + encodeURIComponent(state.id);
    row.appendChild(history);
    li.appendChild(row);
    var pre = el("pre", "message");
    pre.hidden = true;
    li.appendChild(pre);
    li.appendChild(el("ul", "children"));
    var parent = state.parent_id ? nodesById.get(state.parent_id) : null;
    if (state.kind === "task_execution" && parent) {
      var context = parent.dataset.kind === "pipeline_result" ? parent.querySelector(".label").textContent : "";
      li.dataset.gantt = context ? context + " · " + label(state) : label(state);
    }
    if (parent) {
      parent.querySelector(":scope > ul.children").appendChild(li);
    } else {
      tree.appendChild(li);
    }
    nodesById.set(state.id, li);
    return li;
  }

  function applyToRun(message) {
    if (message.type === "removed") {
      document.getElementById("removed").hidden = false;
      return;
    }
    var state = message.object;
    if (!state) return;
    var li = nodesById.get(state.id) || newNode(state);
    li.dataset.status = state.status;
    li.dataset.started = state.started || "";
    li.dataset.completed = state.completed || "";
    li.classList.toggle("failed", !!FAILED[state.status]);
    var row = li.querySelector(":scope > .row");
    setStatus(row.querySelector(".status-cell"), state.status);
    row.querySelector(".times").textContent = times(state);
    var pre = li.querySelector(":scope > pre.message");
    pre.textContent = state.message || "";
    pre.hidden = !state.message;
    pre.classList.toggle("failed", !!FAILED[state.status]);
    if (message.traceback) {
      var details = li.querySelector(":scope > details.traceback");
      if (!details) {
        details = el("details", "traceback");
        details.open = true;
        details.appendChild(el("summary", null, "traceback"));
        details.appendChild(el("pre"));
        li.insertBefore(details, li.querySelector(":scope > ul.children"));
      }
      details.querySelector("pre").textContent = message.traceback;
    }
    if (state.kind === "pipeline_execution") {
      setStatus(document.getElementById("run-status"), state.status);
      document.querySelector(".summary .times").textContent = times(state);
    }
    drawTimeline();
  }

  // -- the timeline --------------------------------------------------------------------------

  function drawTimeline() {
    var svg = document.getElementById("gantt");
    if (!svg || !tree) return;
    var bars = [];
    tree.querySelectorAll("li.node.k-task_execution").forEach(function (li) {
      if (!li.dataset.started) return;
      bars.push({
        name: li.dataset.gantt || "",
        status: li.dataset.status,
        start: new Date(li.dataset.started).getTime(),
        end: li.dataset.completed ? new Date(li.dataset.completed).getTime() : null
      });
    });
    document.getElementById("no-timeline").hidden = bars.length > 0;
    svg.replaceChildren();
    if (!bars.length) { svg.setAttribute("width", "0"); svg.setAttribute("height", "0"); return; }
    var now = Date.now();
    var first = Math.min.apply(null, bars.map(function (b) { return b.start; }));
    var last = Math.max.apply(null, bars.map(function (b) { return b.end === null ? Math.max(now, b.start) : b.end; }));
    var span = Math.max(last - first, 1);
    var labelWidth = 220, plot = 640, rowHeight = 20, top = 24;
    var width = labelWidth + plot + 80, height = top + bars.length * rowHeight + 8;
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    function add(tag, attrs, content) {
      var node = document.createElementNS(SVG, tag);
      Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
      if (content !== undefined) node.textContent = content;
      svg.appendChild(node);
      return node;
    }
    for (var tick = 0; tick <= 4; tick++) {
      var x = labelWidth + (plot * tick) / 4;
      add("line", { x1: x, y1: top - 6, x2: x, y2: height - 4, "class": "tick" });
      add("text", { x: x, y: top - 10, "class": "axis", "text-anchor": "middle" },
        "+" + formatDuration((span * tick) / 4 / 1000));
    }
    bars.forEach(function (bar, i) {
      var y = top + i * rowHeight;
      var x0 = labelWidth + ((bar.start - first) / span) * plot;
      var end = bar.end === null ? Math.max(now, bar.start) : bar.end;
      var w = Math.max(((end - bar.start) / span) * plot, 2);
      add("text", { x: labelWidth - 8, y: y + 14, "class": "bar-label", "text-anchor": "end" },
        bar.name.length > 32 ? bar.name.slice(0, 31) + "…" : bar.name);
      var rect = add("rect", { x: x0, y: y + 3, width: w, height: rowHeight - 6, rx: 2, "class": "bar s-" + bar.status });
      var title = document.createElementNS(SVG, "title");
      title.textContent = bar.name + " · " + bar.status + " · " + formatDuration((end - bar.start) / 1000);
      rect.appendChild(title);
      add("text", { x: x0 + w + 4, y: y + 14, "class": "bar-time" }, formatDuration((end - bar.start) / 1000));
    });
  }
  drawTimeline();

  // -- the live stream -----------------------------------------------------------------------

  var liveLabel = document.getElementById("live");
  var filtered = false;

  function showLive(state, detail) {
    live.state = state;
    if (liveLabel) {
      liveLabel.textContent = "live: " + (detail || state);
      liveLabel.className = "live " + state;
    }
  }

  function onChange(event) {
    var seq = Number(event.lastEventId);
    if (seq <= live.last) live.anomalies.push("duplicate " + seq + " after " + live.last);
    else if (!filtered && seq !== live.last + 1) live.anomalies.push("gap " + live.last + " -> " + seq);
    if (seq > live.last) live.last = seq;
    live.seqs.push(seq);
    var message = JSON.parse(event.data);
    if (runsTable) applyToRuns(message);
    if (tree) applyToRun(message);
    showLive("on", "on · seq " + live.last);
    checkChain();
  }

  var source = null;
  var retry = null;

  function connect() {
    var url = new URL(body.dataset.stream, window.location.href);
    filtered = url.searchParams.has("run");
    url.searchParams.set("after", String(live.last));
    source = new EventSource(url.toString());
    source.addEventListener("open", function () { showLive("on", "on · seq " + live.last); });
    source.addEventListener("change", onChange);
    source.addEventListener("reset", function () { source.close(); window.location.reload(); });
    source.addEventListener("failure", function (event) {
      source.close();
      showLive("failed", "stopped: " + event.data);
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED && live.state !== "failed") {
        // The browser gave up (the server answered with an error): try again from the last seq.
        showLive("off", "reconnecting…");
        if (retry === null) retry = window.setTimeout(function () { retry = null; connect(); }, 1000);
      } else if (live.state !== "failed") {
        showLive("off", "reconnecting…");
      }
    });
  }

  if (body.dataset.stream) connect();
  if (tree) window.setInterval(function () {
    if (tree.querySelector("li.node.k-task_execution[data-status=RUNNING]")) drawTimeline();
  }, 1000);
})();
