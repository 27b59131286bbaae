/* Charts: uPlot for line, area and bar charts; a small SVG gauge and a number for the rest.
 *
 * Every [data-chart] element loads its data from data-url (JSON from the server, at most
 * CHART_MAX_POINTS buckets per series, each with min/max so spikes survive), draws it, and then
 * merges live telemetry into the newest bucket, so a chart follows its devices without a reload.
 * The chart builder's preview (#chart-preview) draws the form's current choices the same way.
 */
(function () {
  "use strict";
  const COLORS = ["#1f5fc4", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5c940d", "#e67700"];
  const live = window.IoTFlowLive;
  const timeZone = (live && live.timeZone) || document.body.dataset.timeZone || "UTC";
  const charts = new Set();
  const SPARSE_POINTS = 60;

  function formatNumber(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value !== "number") return String(value);
    const abs = Math.abs(value);
    const digits = abs >= 1000 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
    return value.toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }

  function note(el, text) {
    let p = el.querySelector(".chart__note");
    if (!p) {
      p = document.createElement("p");
      p.className = "muted chart__note";
      el.appendChild(p);
    }
    p.textContent = text;
  }

  class Chart {
    constructor(el, type, url) {
      this.el = el;
      this.type = type;
      this.url = url;
      this.data = null;
      this.plot = null;
      this.frame = 0;
      this.drawn = false;
      this.min = el.dataset.min !== undefined ? Number(el.dataset.min) : null;
      this.max = el.dataset.max !== undefined ? Number(el.dataset.max) : null;
      this.devices = (el.dataset.liveDevices || "").split(",").filter(Boolean).map(Number);
    }

    async load() {
      this.el.dataset.state = "loading";
      let response;
      try {
        response = await fetch(this.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      } catch (error) {
        note(this.el, "Could not load the chart data.");
        this.el.dataset.state = "error";
        return;
      }
      if (!response.ok) {
        note(this.el, response.status === 404 ? "Device not found." : "Could not load the chart data.");
        this.el.dataset.state = "error";
        return;
      }
      this.data = await response.json();
      this.devices = [...new Set([...this.devices, ...this.data.series.map((s) => s.device)])];
      if (live && this.devices.length) live.follow(this.devices);
      this.render();
    }

    render() {
      if (this.plot) {
        this.plot.destroy();
        this.plot = null;
      }
      this.el.replaceChildren();
      const series = this.data.series;
      const points = series.reduce((sum, s) => sum + s.ts.length, 0);
      this.el.dataset.points = String(points);
      this.renderLegend(series);
      if (!series.length) {
        note(this.el, "Nothing to draw: choose devices and measurements.");
      } else if (this.type === "gauge") {
        this.renderGauge(series[0]);
      } else if (this.type === "stat") {
        this.renderStat(series);
      } else if (!points) {
        const text = series.some((s) => s.latest && typeof s.latest.value === "string");
        note(this.el, text ? "Text values are not charted; the newest is shown above." : "No data in this range yet.");
      } else {
        this.renderPlot(series);
      }
      this.el.dataset.state = "ready";
      if (!this.drawn) {
        // "iotflow:chart-drawn" marks a chart's first drawing (bench/chart_draw.py reads it). uPlot draws in a
        // microtask queued when the plot was made; this one runs after it, when the canvas holds the chart.
        this.drawn = true;
        queueMicrotask(() => performance.mark("iotflow:chart-drawn", { detail: this.url }));
      }
    }

    renderLegend(series) {
      const legend = document.createElement("p");
      legend.className = "chart__legend";
      series.forEach((s, i) => {
        const item = document.createElement("span");
        item.dataset.series = `${s.device}:${s.measurement}`;
        const swatch = document.createElement("span");
        swatch.className = "chart__swatch";
        swatch.style.background = COLORS[i % COLORS.length];
        const label = document.createElement("span");
        label.textContent = `${s.label} `;
        const value = document.createElement("strong");
        value.className = "chart__latest";
        value.textContent = formatNumber(s.latest ? s.latest.value : null);
        item.append(swatch, label, value);
        legend.appendChild(item);
      });
      this.legend = legend;
      this.el.appendChild(legend);
    }

    /* Content goes above the legend; a plot gets the height the legend leaves. */
    place(node) {
      this.el.insertBefore(node, this.legend);
    }

    plotSize() {
      const legend = this.legend ? this.legend.offsetHeight + 6 : 0;
      return { width: Math.max(this.el.clientWidth, 200), height: Math.max(this.el.clientHeight - legend, 100) };
    }

    plotData(series) {
      const stamps = [...new Set(series.flatMap((s) => s.ts))].sort((a, b) => a - b);
      const index = new Map(stamps.map((ts, i) => [ts, i]));
      const columns = [stamps];
      series.forEach((s) => {
        const fields = s.min ? ["value", "min", "max"] : ["value"];
        fields.forEach((field) => {
          const column = new Array(stamps.length).fill(null);
          s.ts.forEach((ts, i) => (column[index.get(ts)] = s[field][i]));
          columns.push(column);
        });
      });
      return columns;
    }

    /* The x axis covers the chosen range, not just the part that holds data; bars get half a window each side. */
    timeSpan(low, high) {
      const pad = this.type === "bar" ? this.data.window_ms / 2 : 0;
      const start = Number.isFinite(this.data.start) ? this.data.start : low;
      const end = Number.isFinite(this.data.end) ? this.data.end : high;
      return [Math.min(start, low - pad), Math.max(end, high + pad)];
    }

    plotOptions(series) {
      const bars = this.type === "bar" && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : null;
      const options = {
        ...this.plotSize(),
        ms: 1,
        tzDate: (ts) => uPlot.tzDate(new Date(ts), timeZone),
        legend: { show: false },
        cursor: { points: { size: 6 } },
        scales: { x: { time: true, range: (u, low, high) => this.timeSpan(low, high) } },
        series: [{}],
        bands: [],
        axes: [{ stroke: "#55606e", grid: { stroke: "#e6eaf0" } }, { stroke: "#55606e", grid: { stroke: "#e6eaf0" }, size: 56 }],
      };
      const floor = this.type === "bar" ? 0 : null; // bars grow from zero
      if (this.min !== null || this.max !== null || floor !== null) {
        options.scales.y = {
          range: (u, low, high) => {
            const bottom = this.min ?? (floor === null ? low : Math.min(floor, low));
            const top = this.max ?? high;
            return bottom === top ? [bottom - 1, top + 1] : [bottom, top + (this.max === null ? (top - bottom) * 0.05 : 0)];
          },
        };
      }
      let column = 1;
      series.forEach((s, i) => {
        const color = COLORS[i % COLORS.length];
        options.series.push({
          label: s.label,
          stroke: color,
          width: this.type === "bar" ? 0 : 1.5,
          fill: this.type === "area" ? alpha(color, 0.18) : this.type === "bar" ? alpha(color, 0.75) : undefined,
          paths: bars || undefined,
          spanGaps: this.type !== "bar",
          // A few readings in a long range would be specks of line, or nothing for a single one: mark each.
          points: { show: this.type !== "bar" && s.value.filter((v) => v !== null).length <= SPARSE_POINTS, size: 6, fill: color },
        });
        const valueColumn = column;
        column += 1;
        if (s.min && this.type !== "bar") {
          options.series.push({ label: `${s.label} min`, stroke: "transparent", width: 0, points: { show: false }, spanGaps: true });
          options.series.push({ label: `${s.label} max`, stroke: "transparent", width: 0, points: { show: false }, spanGaps: true });
          options.bands.push({ series: [valueColumn + 2, valueColumn + 1], fill: alpha(color, 0.12) });
          column += 2;
        } else if (s.min) {
          options.series.push({ show: false }, { show: false });
          column += 2;
        }
      });
      return options;
    }

    renderPlot(series) {
      const holder = document.createElement("div");
      holder.setAttribute("role", "img");
      holder.setAttribute("aria-label", `${this.type} chart of ${series.map((s) => s.label).join(", ")}`);
      this.place(holder);
      this.plot = new uPlot(this.plotOptions(series), this.plotData(series), holder);
      if (!this.observer) {
        let width = this.el.clientWidth;
        this.observer = new ResizeObserver(() => {
          if (!this.plot || this.el.clientWidth === width) return;
          width = this.el.clientWidth;
          this.plot.setSize(this.plotSize());
        });
        this.observer.observe(this.el);
      }
    }

    renderGauge(s) {
      const value = s.latest && typeof s.latest.value === "number" ? s.latest.value : null;
      const low = this.min ?? 0;
      const high = this.max ?? Math.max(100, value === null ? 100 : Math.ceil(value * 1.25));
      const share = value === null ? 0 : Math.min(Math.max((value - low) / (high - low || 1), 0), 1);
      const angle = Math.PI * (1 - share);
      const x = 100 + 80 * Math.cos(angle);
      const y = 100 - 80 * Math.sin(angle);
      const ns = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 200 125");
      svg.setAttribute("class", "gauge");
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", `${s.label}: ${formatNumber(value)} on a scale from ${low} to ${high}`);
      svg.style.height = `${this.plotSize().height}px`;
      svg.innerHTML =
        `<path d="M20 100 A80 80 0 0 1 180 100" fill="none" stroke="#e6eaf0" stroke-width="16" stroke-linecap="round"/>` +
        (share > 0 ? `<path d="M20 100 A80 80 0 0 1 ${x.toFixed(2)} ${y.toFixed(2)}" fill="none" stroke="${COLORS[0]}" stroke-width="16" stroke-linecap="round"/>` : "") +
        `<text x="100" y="92" text-anchor="middle" font-size="28" font-weight="700" fill="#1b2430">${formatNumber(value)}</text>` +
        `<text x="20" y="120" text-anchor="middle" font-size="10" fill="#55606e">${low}</text>` +
        `<text x="180" y="120" text-anchor="middle" font-size="10" fill="#55606e">${high}</text>`;
      this.place(svg);
    }

    renderStat(series) {
      const box = document.createElement("div");
      box.className = "stat-value";
      series.slice(0, 4).forEach((s) => {
        const number = document.createElement("span");
        number.className = "stat-value__number";
        number.textContent = formatNumber(s.latest ? s.latest.value : null);
        const label = document.createElement("span");
        label.className = "stat-value__label";
        label.textContent = s.latest ? `${s.label} · ${live ? live.formatTime(s.latest.ts) : ""}` : `${s.label} · no data`;
        box.append(number, label);
      });
      box.style.height = `${this.plotSize().height}px`;
      this.place(box);
    }

    /* Merge one live value into the newest bucket (or a new one), keeping the chart's range. */
    merge(message) {
      if (!this.data || !this.devices.includes(message.device)) return;
      const ts = Date.parse(message.ts);
      const span = this.data.end - this.data.start;
      if (this.data.relative) {
        this.data.end = Math.max(this.data.end, Date.now(), ts + 1);
        this.data.start = this.data.end - span;
      }
      if (ts < this.data.start || ts >= this.data.end) return;
      let changed = false;
      this.data.series.forEach((s) => {
        if (s.device !== message.device || !(s.measurement in message.data)) return;
        const value = message.data[s.measurement];
        if (!s.latest || s.latest.ts <= ts) s.latest = { value, ts };
        changed = true;
        if (typeof value !== "number" && typeof value !== "boolean") return;
        this.addToBucket(s, ts, Number(value));
      });
      if (changed) this.schedule();
    }

    addToBucket(s, ts, value) {
      const window = this.data.window_ms;
      const bucket = Math.floor(ts / window) * window;
      const last = s.ts.length - 1;
      if (last >= 0 && s.ts[last] === bucket) {
        const n = s.count[last] || 1;
        const previous = s.value[last];
        const aggregation = this.data.aggregation;
        s.value[last] = aggregation === "mean" ? (previous * n + value) / (n + 1)
          : aggregation === "sum" ? previous + value
          : aggregation === "count" ? previous + 1
          : aggregation === "min" ? Math.min(previous, value) : Math.max(previous, value);
        s.count[last] = n + 1;
        if (s.min) {
          s.min[last] = Math.min(s.min[last], value);
          s.max[last] = Math.max(s.max[last], value);
        }
      } else if (last < 0 || s.ts[last] < bucket) {
        s.ts.push(bucket);
        s.value.push(this.data.aggregation === "count" ? 1 : value);
        s.count.push(1);
        if (s.min) {
          s.min.push(value);
          s.max.push(value);
        }
      }
      while (s.ts.length && s.ts[0] + window <= this.data.start) {
        ["ts", "value", "count", "min", "max"].forEach((field) => s[field] && s[field].shift());
      }
    }

    schedule() {
      if (this.frame) return;
      this.frame = window.requestAnimationFrame(() => {
        this.frame = 0;
        if (this.plot && ["line", "area", "bar"].includes(this.type)) {
          this.plot.setData(this.plotData(this.data.series));
          this.updateLegend();
        } else {
          this.render();
        }
      });
    }

    updateLegend() {
      if (!this.legend) return;
      this.data.series.forEach((s) => {
        const item = this.legend.querySelector(`[data-series="${CSS.escape(`${s.device}:${s.measurement}`)}"] .chart__latest`);
        if (item) item.textContent = formatNumber(s.latest ? s.latest.value : null);
      });
      this.el.dataset.points = String(this.data.series.reduce((sum, s) => sum + s.ts.length, 0));
    }
  }

  function mount(el) {
    const chart = new Chart(el, el.dataset.type || "line", el.dataset.url);
    charts.add(chart);
    chart.load();
    return chart;
  }

  document.querySelectorAll("[data-chart]").forEach(mount);
  if (live) {
    live.on("telemetry", (message) => charts.forEach((chart) => chart.merge(message)));
    live.on("reconnected", () => charts.forEach((chart) => chart.load()));
  }

  /* The chart builder's preview: redraw from the form's current values. */
  const preview = document.getElementById("chart-preview");
  if (preview) {
    const form = document.getElementById(preview.dataset.previewFor);
    let chart = null;
    let timer = 0;
    const refresh = () => {
      const data = new FormData(form);
      const query = new URLSearchParams();
      data.getAll("devices").forEach((id) => query.append("device", id));
      data.getAll("measurements").forEach((name) => query.append("measurement", name));
      const range = data.get("time_range") || "24h";
      query.set("range", range);
      if (range === "custom") {
        query.set("start", data.get("start_at") || "");
        query.set("end", data.get("end_at") || "");
      }
      query.set("aggregation", data.get("aggregation") || "mean");
      if (data.get("window")) query.set("window", data.get("window"));
      if (chart) {
        if (chart.plot) chart.plot.destroy();
        if (chart.observer) chart.observer.disconnect();
        chart.plot = null;
        charts.delete(chart);
      }
      if (!query.getAll("device").length || !query.getAll("measurement").length) {
        preview.replaceChildren();
        note(preview, "Choose devices and measurements to see a preview.");
        return;
      }
      preview.dataset.type = data.get("chart_type") || "line";
      preview.dataset.liveDevices = query.getAll("device").join(",");
      if (data.get("min_value")) preview.dataset.min = data.get("min_value"); else delete preview.dataset.min;
      if (data.get("max_value")) preview.dataset.max = data.get("max_value"); else delete preview.dataset.max;
      preview.dataset.url = `${preview.dataset.seriesUrl}?${query}`;
      chart = mount(preview);
    };
    const later = () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    };
    form.addEventListener("change", later);
    form.addEventListener("input", later);
    document.body.addEventListener("htmx:afterSwap", later);
    refresh();
  }

  /* Start and end fields show only while "Custom range" is chosen. */
  document.querySelectorAll("[data-custom-for]").forEach((row) => {
    const select = document.getElementById(row.dataset.customFor);
    if (!select) return;
    const toggle = () => (row.hidden = select.value !== "custom");
    select.addEventListener("change", toggle);
    toggle();
  });

  window.IoTFlowCharts = { mount, charts };
})();
