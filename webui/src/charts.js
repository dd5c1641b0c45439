// Time-series charts drawn by uPlot, coloured from the page's CSS
// variables so that they follow the light or dark theme.

import uPlot from 'uplot';
import { useEffect, useRef } from 'preact/hooks';
import { html } from './ui.js';

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/**
 * Chart draws data ([times, ...series]) with one line per entry of lines:
 * {label, color (a CSS variable name), fmt (value formatter)}. axisFmt
 * formats the y axis. theme changes re-create the chart.
 */
export function Chart({ title, data, lines, axisFmt, theme, height = 180, testid, integer = false }) {
  const box = useRef(null);
  const plot = useRef(null);

  useEffect(() => {
    const el = box.current;
    const fg = cssVar('--muted');
    const grid = cssVar('--grid');
    const opts = {
      width: Math.max(el.clientWidth, 200),
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      // The last five minutes at most, and at least half a minute, so that
      // a single sample does not stretch the axis over years.
      scales: { x: { time: true, range: (u, min, max) => (Number.isFinite(max) ? [max - Math.min(Math.max(max - min, 30), 300), max] : [min, max]) }, y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
      axes: [
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        // Counts get whole-number ticks only.
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 92, values: (u, vals) => vals.map(axisFmt), ...(integer ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6] } : {}) },
      ],
      series: [{}, ...lines.map((l) => ({ label: l.label, stroke: cssVar(l.color), width: 2, fill: `${cssVar(l.color)}22`, value: (u, v) => (v == null ? '–' : l.fmt(v)), spanGaps: false }))],
    };
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => {
      if (plot.current && el.clientWidth > 0) plot.current.setSize({ width: el.clientWidth, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, [theme]);

  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);

  return html`<figure class="chart" data-testid=${testid}>
    <figcaption>${title}</figcaption>
    <div ref=${box} class="chart-box" role="img" aria-label=${title}></div>
  </figure>`;
}
