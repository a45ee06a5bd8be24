/* Small SVG charts for the copybot dashboard, built with DOM calls only (no innerHTML, no library).
   chart(container, series, options): series = [{name, points: [[x, y], ...]}], numbers. */
"use strict";

window.copybotCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 480, H = 180, L = 56, R = 10, T = 10, B = 24;
  const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff9bce", "#8b949e"];

  function node(tag, attrs) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function text(x, y, value, anchor) {
    const t = node("text", { x, y, "text-anchor": anchor || "start" });
    t.textContent = value;
    return t;
  }

  function range(values) {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (!isFinite(lo) || !isFinite(hi)) return [0, 1];
    if (lo === hi) { const pad = Math.abs(lo) * 0.05 || 1; lo -= pad; hi += pad; }
    return [lo, hi];
  }

  function label(value, kind) {
    if (kind === "time") return new Date(value).toLocaleTimeString([], { hour12: false });
    const abs = Math.abs(value);
    if (abs >= 1e6) return (value / 1e6).toFixed(2) + "M";
    if (abs >= 1e4) return (value / 1e3).toFixed(1) + "k";
    return abs >= 100 ? value.toFixed(0) : value.toFixed(2);
  }

  function chart(container, series, options) {
    const opts = options || {};
    const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
    const all = series.flatMap((s) => s.points);
    if (all.length === 0) {
      svg.appendChild(text(W / 2, H / 2, "no data yet", "middle"));
      container.replaceChildren(svg);
      return;
    }
    const [x0, x1] = range(all.map((p) => p[0]));
    const [y0, y1] = range(all.map((p) => p[1]).concat(opts.zero ? [0] : []));
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
    svg.appendChild(node("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#2a3440" }));
    svg.appendChild(node("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#2a3440" }));
    if (opts.zero && y0 < 0 && y1 > 0) {
      svg.appendChild(node("line", { x1: L, y1: sy(0), x2: W - R, y2: sy(0), stroke: "#2a3440", "stroke-dasharray": "3 3" }));
    }
    svg.appendChild(text(L - 4, T + 8, label(y1, opts.y), "end"));
    svg.appendChild(text(L - 4, H - B, label(y0, opts.y), "end"));
    svg.appendChild(text(L, H - 8, label(x0, opts.x), "start"));
    svg.appendChild(text(W - R, H - 8, label(x1, opts.x), "end"));
    series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      if (opts.scatter) {
        for (const [x, y] of s.points) {
          svg.appendChild(node("circle", { cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 2.5, fill: color, "fill-opacity": 0.75 }));
        }
      } else {
        const d = s.points.map(([x, y], j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
        svg.appendChild(node("path", { d, fill: "none", stroke: color, "stroke-width": 1.5 }));
      }
    });
    const legend = document.createElement("div");
    legend.className = "legend";
    series.forEach((s, i) => {
      const item = document.createElement("span");
      item.textContent = `● ${s.name}  `;
      item.style.color = COLORS[i % COLORS.length]; // CSSOM: allowed by the CSP, unlike a style attribute
      legend.appendChild(item);
    });
    container.replaceChildren(svg, legend);
  }

  return { chart };
})();
