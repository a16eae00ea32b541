/** A small SVG bar chart of one series over time (hand-drawn: a chart library would outweigh it). */
import { shortTime } from '../format';

export interface BarChartProps {
  title: string;
  points: { at: string; value: number }[];
  tone: 'refreshes' | 'reuse' | 'revocations' | 'anomalies';
}

const W = 320;
const H = 120;
const PAD_LEFT = 32;
const PAD_BOTTOM = 18;

export function BarChart({ title, points, tone }: BarChartProps) {
  const max = Math.max(1, ...points.map((p) => p.value));
  const total = points.reduce((s, p) => s + p.value, 0);
  const innerW = W - PAD_LEFT - 4;
  const innerH = H - PAD_BOTTOM - 8;
  const bw = points.length ? innerW / points.length : innerW;
  return (
    <figure class={`chart chart-${tone}`}>
      <figcaption>
        <span class="chart-title">{title}</span> <span class="chart-total">{total}</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${total} in total, at most ${max} per interval`}>
        <line class="chart-axis" x1={PAD_LEFT} y1={8 + innerH} x2={W - 4} y2={8 + innerH} />
        <text class="chart-label" x={PAD_LEFT - 4} y={14} text-anchor="end">
          {max}
        </text>
        <text class="chart-label" x={PAD_LEFT - 4} y={8 + innerH} text-anchor="end">
          0
        </text>
        {points.map((p, i) => {
          const h = (p.value / max) * innerH;
          return (
            <rect key={p.at} class="chart-bar" x={PAD_LEFT + i * bw + bw * 0.1} y={8 + innerH - h} width={Math.max(1, bw * 0.8)} height={h}>
              <title>{`${shortTime(p.at)}: ${p.value}`}</title>
            </rect>
          );
        })}
        {points.length > 0 && (
          <>
            <text class="chart-label" x={PAD_LEFT} y={H - 4}>
              {shortTime(points[0].at)}
            </text>
            <text class="chart-label" x={W - 4} y={H - 4} text-anchor="end">
              {shortTime(points[points.length - 1].at)}
            </text>
          </>
        )}
      </svg>
    </figure>
  );
}
