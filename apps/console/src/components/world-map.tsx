/**
 * Where a family was used from, on an offline world map: Natural Earth 1:110m countries from
 * world-atlas (shipped in the bundle, no tile server), projected with d3-geo, drawn as SVG.
 * Loaded lazily (its own chunk) — only the family page needs it.
 */
import { geoNaturalEarth1, geoPath, geoInterpolate } from 'd3-geo';
import { feature } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';
import world from 'world-atlas/countries-110m.json';
import type { Place } from '../api';
import { placeText } from '../format';

const WIDTH = 960;
const HEIGHT = 500;
const topology = world as unknown as Topology<{ countries: GeometryCollection }>;
const countries = feature(topology, topology.objects.countries);
const projection = geoNaturalEarth1().fitExtent(
  [
    [4, 4],
    [WIDTH - 4, HEIGHT - 4],
  ],
  { type: 'Sphere' },
);
const path = geoPath(projection);
const countryPaths = countries.features.map((f) => path(f) ?? '');
const spherePath = path({ type: 'Sphere' }) ?? '';

export interface MapPoint {
  place: Place;
  /** How many events came from here, and the first time. */
  count: number;
  label: string;
  /** Events from this place after the slider's instant are shown faded. */
  future: boolean;
}

/** The part of the world the points are in (projected), padded, at least MIN_W wide, 2:1 like the map. */
function viewBox(xy: [number, number][]): [number, number, number, number] {
  if (xy.length === 0) return [0, 0, WIDTH, HEIGHT];
  const xs = xy.map((p) => p[0]);
  const ys = xy.map((p) => p[1]);
  const pad = 60;
  let w = Math.max(MIN_W, Math.max(...xs) - Math.min(...xs) + 2 * pad);
  let h = Math.max(w / 1.92, Math.max(...ys) - Math.min(...ys) + 2 * pad);
  w = Math.min(WIDTH, Math.max(w, h * 1.92));
  h = Math.min(HEIGHT, w / 1.92);
  const cx = (Math.max(...xs) + Math.min(...xs)) / 2;
  const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
  const x = Math.min(WIDTH - w, Math.max(0, cx - w / 2));
  const y = Math.min(HEIGHT - h, Math.max(0, cy - h / 2));
  return [x, y, w, h];
}
const MIN_W = 360;

/** "Berlin (Bezirk Mitte)" → "Berlin": districts of one city share a label (shown once). */
const shortLabel = (label: string) => label.replace(/\s*\(.*\)$/, '');

export default function WorldMap({ points, route }: { points: MapPoint[]; route: Place[] }) {
  const legs: string[] = [];
  for (let i = 1; i < route.length; i++) {
    const a: [number, number] = [route[i - 1].longitude, route[i - 1].latitude];
    const b: [number, number] = [route[i].longitude, route[i].latitude];
    if (a[0] === b[0] && a[1] === b[1]) continue;
    const interpolate = geoInterpolate(a, b);
    legs.push(path({ type: 'LineString', coordinates: Array.from({ length: 33 }, (_, k) => interpolate(k / 32)) }) ?? '');
  }
  const projected = points.map((p) => ({ p, xy: projection([p.place.longitude, p.place.latitude]) })).filter((q): q is { p: MapPoint; xy: [number, number] } => !!q.xy);
  const [vx, vy, vw, vh] = viewBox(projected.map((q) => q.xy));
  const k = vw / WIDTH; // marks keep their size on screen when the map is zoomed in
  const labelled = new Set<string>();
  const summary = points.length === 0 ? 'No located addresses.' : `Used from ${points.map((p) => placeText(p.place)).join('; ')}.`;
  return (
    <figure class="map">
      <svg viewBox={`${vx.toFixed(1)} ${vy.toFixed(1)} ${vw.toFixed(1)} ${vh.toFixed(1)}`} role="img" aria-label={`World map. ${summary}`}>
        <path class="map-sphere" d={spherePath} />
        {countryPaths.map((d, i) => (
          <path key={i} class="map-country" d={d} />
        ))}
        {legs.map((d, i) => (
          <path key={`leg-${i}`} class="map-leg" d={d} />
        ))}
        {projected.map(({ p, xy }, i) => {
          const label = shortLabel(p.label);
          const show = label !== '' && !labelled.has(label);
          labelled.add(label);
          return (
            <g key={`p-${i}`} class={p.future ? 'map-point future' : 'map-point'} transform={`translate(${xy[0].toFixed(1)} ${xy[1].toFixed(1)}) scale(${k.toFixed(3)})`}>
              <title>{`${placeText(p.place)} — ${p.count} event${p.count === 1 ? '' : 's'}`}</title>
              <circle r={8 + Math.min(8, Math.log2(p.count + 1) * 2.5)} />
              {show && (
                <text x="16" y="8">
                  {label}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption class="visually-hidden">{summary}</figcaption>
    </figure>
  );
}
