/* kemi-stats console: metric explorer chart.
 *
 * Plain ES2017, no modules, no build step; runs under
 * Content-Security-Policy: default-src 'self' (no eval, no inline styles:
 * uPlot sizes its elements through the CSSOM, which CSP allows).
 *
 * Needs vendor/uPlot.iife.min.js loaded first (global `uPlot`).
 *
 * Page contract:
 *   <div id="chart" data-src="/api/series?..."></div>   (data-src absent: nothing to draw)
 *   <p id="chart-status"></p>                            (messages)
 * After drawing, #chart gets data-drawn="<number of series>" ("0" on no data
 * or on an error) so end-to-end tests can wait for it.
 * Never throws and never logs to the console.
 */
(function () {
  "use strict";

  var HEIGHT = 320;
  var RESIZE_DEBOUNCE_MS = 150;
  var FETCH_TIMEOUT_MS = 30000;
  // Colour-blind friendly, readable on white (Tableau 10 + 2).
  var PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#d62728",
  ];
  var UNITS = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];

  // ---- formatting ----------------------------------------------------------

  function toSig(x, sig) {
    // Number -> shortest string with at most `sig` significant digits.
    return String(Number(x.toPrecision(sig)));
  }

  // 1234 -> "1.23k", 3400000 -> "3.4M", 0.5 -> "0.5", 0.00001 -> "1e-5"
  function fmtCompact(v, sig) {
    if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) {
      return "";
    }
    sig = sig || 3;
    if (v === 0) {
      return "0";
    }
    var r = Number(v.toPrecision(sig)); // round first so 999950 -> 1M, not 1000k
    var a = Math.abs(r);
    for (var i = 0; i < UNITS.length; i++) {
      if (a >= UNITS[i][0]) {
        return toSig(r / UNITS[i][0], sig) + UNITS[i][1];
      }
    }
    if (a < 1e-3) {
      return r.toExponential(Math.max(0, Math.min(sig - 1, 2))).replace(/\.?0+e/, "e").replace("e+", "e");
    }
    return toSig(r, sig);
  }

  // Axis ticks: enough significant digits to tell neighbouring ticks apart.
  function axisValues(u, splits, axisIdx, foundSpace, foundIncr) {
    var maxAbs = 0;
    for (var i = 0; i < splits.length; i++) {
      if (splits[i] != null && Math.abs(splits[i]) > maxAbs) {
        maxAbs = Math.abs(splits[i]);
      }
    }
    var sig = 3;
    if (maxAbs > 0 && foundIncr > 0) {
      sig = Math.floor(Math.log10(maxAbs)) - Math.floor(Math.log10(foundIncr)) + 1;
      sig = Math.max(3, Math.min(8, sig));
    }
    return splits.map(function (v) { return fmtCompact(v, sig); });
  }

  function legendValue(u, v) {
    return v === null || v === undefined ? "\u2014" : fmtCompact(v, 4);
  }

  function seriesLabel(labels, metric) {
    var parts = [];
    if (labels && typeof labels === "object") {
      Object.keys(labels).forEach(function (k) {
        if (k !== "resource") {
          parts.push(k + "=" + labels[k]);
        }
      });
    }
    return parts.length ? parts.join(", ") : String(metric || "value");
  }

  // ---- data ----------------------------------------------------------------

  function num(x) {
    return typeof x === "number" && isFinite(x) ? x : null;
  }

  /* Align series with different timestamps onto the union of timestamps
   * (uPlot's columnar format). A timestamp a series lacks is `undefined`
   * (uPlot draws the line across it); a real hole in a series (a null value,
   * or more than 2 steps without a point) is `null` (uPlot breaks the line). */
  function align(payload) {
    var step = num(payload.step) || 0;
    var prepared = [];
    var stamps = new Map(); // ts -> true
    (Array.isArray(payload.series) ? payload.series : []).forEach(function (s) {
      var pts = (s && Array.isArray(s.points) ? s.points : [])
        .filter(function (p) { return Array.isArray(p) && num(p[0]) !== null; })
        .map(function (p) { return [p[0], num(p[1])]; })
        .sort(function (a, b) { return a[0] - b[0]; });
      if (!pts.length) {
        return;
      }
      var byTs = new Map();
      for (var i = 0; i < pts.length; i++) {
        if (i > 0 && step > 0 && pts[i][0] - pts[i - 1][0] > 2 * step) {
          var gapTs = pts[i - 1][0] + step; // marks the hole
          if (!byTs.has(gapTs)) {
            byTs.set(gapTs, null);
            stamps.set(gapTs, true);
          }
        }
        byTs.set(pts[i][0], pts[i][1]);
        stamps.set(pts[i][0], true);
      }
      prepared.push({ label: seriesLabel(s.labels, payload.metric), byTs: byTs });
    });
    var xs = Array.from(stamps.keys()).sort(function (a, b) { return a - b; });
    var data = [xs];
    prepared.forEach(function (p) {
      data.push(xs.map(function (t) { return p.byTs.has(t) ? p.byTs.get(t) : undefined; }));
    });
    return { data: data, labels: prepared.map(function (p) { return p.label; }) };
  }

  // Python's json module may emit NaN/Infinity, which JSON.parse rejects.
  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      try {
        return JSON.parse(text.replace(/([\[,:]\s*)-?(?:NaN|Infinity)(?=\s*[,\]}])/g, "$1null"));
      } catch (e2) {
        return undefined;
      }
    }
  }

  // ---- drawing -------------------------------------------------------------

  function chartWidth(el) {
    var w = Math.floor(el.getBoundingClientRect().width || el.clientWidth || 0);
    if (w < 50 && el.parentElement) {
      w = Math.floor(el.parentElement.clientWidth || 0);
    }
    return Math.max(200, w || 600);
  }

  function draw(el, payload) {
    var aligned = align(payload);
    var labels = aligned.labels;
    if (!labels.length) {
      el.textContent = "";
      return 0;
    }
    var series = [{ label: "time" }];
    labels.forEach(function (label, i) {
      series.push({
        label: label,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        value: legendValue,
        spanGaps: false,
        points: { size: 4 },
      });
    });

    var xScale = { time: true };
    var xs = aligned.data[0];
    var start = num(payload.start);
    var end = num(payload.end);
    if (start !== null && end !== null && end > start) {
      // Show the whole requested range, and any point outside it.
      var lo = Math.min(start, xs[0]);
      var hi = Math.max(end, xs[xs.length - 1]);
      xScale.range = function () { return [lo, hi]; };
    }

    var axisStroke = "#374151";
    var gridStroke = "#e5e7eb";
    var opts = {
      width: chartWidth(el),
      height: HEIGHT,
      series: series,
      scales: { x: xScale },
      axes: [
        { stroke: axisStroke, grid: { stroke: gridStroke, width: 1 }, ticks: { stroke: gridStroke } },
        {
          stroke: axisStroke,
          grid: { stroke: gridStroke, width: 1 },
          ticks: { stroke: gridStroke },
          values: axisValues,
          size: 60,
        },
      ],
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
    };

    el.textContent = "";
    var chart = new uPlot(opts, aligned.data, el); // eslint-disable-line no-undef

    var timer = null;
    window.addEventListener("resize", function () {
      if (timer !== null) {
        clearTimeout(timer);
      }
      timer = setTimeout(function () {
        timer = null;
        try {
          var w = chartWidth(el);
          if (w !== chart.width) {
            chart.setSize({ width: w, height: HEIGHT });
          }
        } catch (e) {
          /* never surface resize problems to the console */
        }
      }, RESIZE_DEBOUNCE_MS);
    });
    return labels.length;
  }

  // ---- page wiring ---------------------------------------------------------

  function queryParam(src, name) {
    try {
      return new URL(src, window.location.href).searchParams.get(name);
    } catch (e) {
      return null;
    }
  }

  function run() {
    var el = document.getElementById("chart");
    if (!el) {
      return;
    }
    var src = el.getAttribute("data-src");
    if (!src) {
      return; // no metric chosen yet
    }
    var statusEl = document.getElementById("chart-status");
    function status(msg, kind) {
      if (statusEl) {
        statusEl.textContent = msg || "";
        ["loading", "error", "empty"].forEach(function (k) {
          statusEl.classList.toggle(k, k === kind);
        });
      }
    }
    function done(n) {
      el.removeAttribute("aria-busy");
      el.dataset.drawn = String(n);
    }
    function fail(msg) {
      status(msg, "error");
      done(0);
    }

    if (typeof window.uPlot !== "function") {
      fail("chart library failed to load");
      return;
    }

    el.setAttribute("aria-busy", "true");
    status("loading\u2026", "loading");

    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timeout = controller ? setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT_MS) : null;

    fetch(src, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal: controller ? controller.signal : undefined,
    })
      .then(function (resp) {
        return resp.text().then(function (text) {
          return { resp: resp, body: parseJson(text) };
        });
      })
      .then(function (r) {
        var body = r.body;
        if (!r.resp.ok) {
          var err = body && typeof body === "object" && body.error ? String(body.error)
            : "HTTP " + r.resp.status + (r.resp.statusText ? " " + r.resp.statusText : "");
          fail("could not load the series: " + err);
          return;
        }
        if (!body || typeof body !== "object") {
          fail("could not load the series: the answer is not JSON");
          return;
        }
        var metric = body.metric || queryParam(src, "metric") || "this metric";
        var resource = body.resource || queryParam(src, "resource") || "";
        var noData = "no data for " + metric + (resource ? " on " + resource : "") + " in this range";
        var hasPoints = Array.isArray(body.series) && body.series.some(function (s) {
          return s && Array.isArray(s.points) && s.points.length > 0;
        });
        if (!hasPoints) {
          el.textContent = "";
          status(noData, "empty");
          done(0);
          return;
        }
        var n;
        try {
          n = draw(el, body);
        } catch (e) {
          fail("could not draw the chart: " + (e && e.message ? e.message : String(e)));
          return;
        }
        if (n === 0) {
          status(noData, "empty");
        } else {
          status("");
        }
        done(n);
      })
      .catch(function (e) {
        var aborted = e && e.name === "AbortError";
        fail(aborted ? "could not load the series: the request timed out"
          : "could not load the series: " + (e && e.message ? e.message : "network error"));
      })
      .then(function () {
        if (timeout !== null) {
          clearTimeout(timeout);
        }
      });
  }

  function safeRun() {
    try {
      run();
    } catch (e) {
      var s = document.getElementById("chart-status");
      if (s) {
        s.textContent = "could not draw the chart";
      }
      var c = document.getElementById("chart");
      if (c) {
        c.dataset.drawn = "0";
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", safeRun);
  } else {
    safeRun();
  }

  // Exposed for unit tests / debugging; harmless otherwise.
  window.kemiExplorer = { fmtCompact: fmtCompact, align: align, seriesLabel: seriesLabel };
})();
