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

export default function WorldMap({ points, route }: { points: MapPoint[]; route: Place[] }) {
  const legs: string[] = [];
  for (let i = 1; i < route.length; i++) {
    const a: [number, number] = [route[i - 1].longitude, route[i - 1].latitude];
    const b: [number, number] = [route[i].longitude, route[i].latitude];
    if (a[0] === b[0] && a[1] === b[1]) continue;
    const interpolate = geoInterpolate(a, b);
    legs.push(path({ type: 'LineString', coordinates: Array.from({ length: 33 }, (_, k) => interpolate(k / 32)) }) ?? '');
  }
  const summary = points.length === 0 ? 'No located addresses.' : `Used from ${points.map((p) => placeText(p.place)).join('; ')}.`;
  return (
    <figure class="map">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`World map. ${summary}`}>
        <path class="map-sphere" d={spherePath} />
        {countryPaths.map((d, i) => (
          <path key={i} class="map-country" d={d} />
        ))}
        {legs.map((d, i) => (
          <path key={`leg-${i}`} class="map-leg" d={d} />
        ))}
        {points.map((p, i) => {
          const xy = projection([p.place.longitude, p.place.latitude]);
          if (!xy) return null;
          return (
            <g key={`p-${i}`} class={p.future ? 'map-point future' : 'map-point'} transform={`translate(${xy[0].toFixed(1)} ${xy[1].toFixed(1)})`}>
              <title>{`${placeText(p.place)} — ${p.count} event${p.count === 1 ? '' : 's'}`}</title>
              <circle r={5 + Math.min(6, Math.log2(p.count + 1) * 2)} />
              <text x="10" y="4">
                {p.label}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption class="visually-hidden">{summary}</figcaption>
    </figure>
  );
}
