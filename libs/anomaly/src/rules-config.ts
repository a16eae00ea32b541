import { readFileSync } from 'node:fs';

/**
 * The rules file (SPEC §5): one entry per rule, each with enabled, severity, action and its
 * thresholds. A file may name only the rules and fields it changes; the rest keep the defaults
 * below. Anything unknown or out of range is an error, so a typo never silently disables a rule.
 */
export const RULE_NAMES = [
  'reuse_detected',
  'impossible_travel',
  'geo_mismatch',
  'refresh_burst',
  'failed_refresh_storm',
  'device_change',
] as const;
export type RuleName = (typeof RULE_NAMES)[number];

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const ACTIONS = ['alert', 'revoke_family', 'revoke_subject'] as const;
export type AnomalyAction = (typeof ACTIONS)[number];

/** "More than `max` in any `windowSeconds`", or off. */
export interface WindowLimit {
  enabled: boolean;
  max: number;
  windowSeconds: number;
}

interface RuleBase {
  enabled: boolean;
  severity: Severity;
  action: AnomalyAction;
}

export interface RulesConfig {
  reuse_detected: RuleBase;
  impossible_travel: RuleBase & { maxSpeedKmh: number; minDistanceKm: number };
  geo_mismatch: RuleBase;
  refresh_burst: RuleBase & { perFamily: WindowLimit; perSubject: WindowLimit };
  failed_refresh_storm: RuleBase & { perSubject: WindowLimit; perIp: WindowLimit };
  device_change: RuleBase;
}

export const DEFAULT_RULES: RulesConfig = {
  reuse_detected: { enabled: true, severity: 'high', action: 'alert' },
  impossible_travel: { enabled: true, severity: 'high', action: 'alert', maxSpeedKmh: 900, minDistanceKm: 100 },
  geo_mismatch: { enabled: true, severity: 'medium', action: 'alert' },
  refresh_burst: {
    enabled: true,
    severity: 'medium',
    action: 'alert',
    perFamily: { enabled: true, max: 10, windowSeconds: 60 },
    perSubject: { enabled: true, max: 60, windowSeconds: 60 },
  },
  failed_refresh_storm: {
    enabled: true,
    severity: 'medium',
    action: 'alert',
    perSubject: { enabled: true, max: 20, windowSeconds: 300 },
    perIp: { enabled: true, max: 50, windowSeconds: 300 },
  },
  device_change: { enabled: true, severity: 'low', action: 'alert' },
};

export class RulesFileError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid anomaly rules in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RulesFileError';
  }
}

/** Thresholds a rule may set: name → [min, max]. Whole numbers except where noted. */
const NUMBERS: Partial<Record<RuleName, Record<string, [number, number]>>> = {
  impossible_travel: { maxSpeedKmh: [1, 100_000], minDistanceKm: [0, 20_000] },
};
const WINDOWS: Partial<Record<RuleName, string[]>> = {
  refresh_burst: ['perFamily', 'perSubject'],
  failed_refresh_storm: ['perSubject', 'perIp'],
};

/** Validates a parsed rules document (`{"rules": {...}}`) and merges it over the defaults. */
export function parseRulesConfig(doc: unknown, source = 'rules file'): RulesConfig {
  const problems: string[] = [];
  const out = structuredClone(DEFAULT_RULES) as unknown as Record<string, Record<string, unknown>>;
  if (!isObject(doc) || !isObject(doc.rules)) {
    throw new RulesFileError(source, ['expected a JSON object {"rules": {"<rule name>": {...}}}']);
  }
  for (const key of Object.keys(doc)) if (key !== 'rules' && key !== '$comment') problems.push(`${key}: unknown top-level key (expected "rules")`);
  for (const [name, raw] of Object.entries(doc.rules)) {
    if (!(RULE_NAMES as readonly string[]).includes(name)) {
      problems.push(`rules.${name}: unknown rule (expected one of ${RULE_NAMES.join(', ')})`);
      continue;
    }
    const rule = name as RuleName;
    const at = `rules.${rule}`;
    if (!isObject(raw)) {
      problems.push(`${at}: expected an object`);
      continue;
    }
    const target = out[rule];
    for (const [field, value] of Object.entries(raw)) {
      const where = `${at}.${field}`;
      if (field === 'enabled') {
        if (typeof value !== 'boolean') problems.push(`${where}: expected true or false`);
        else target.enabled = value;
      } else if (field === 'severity') {
        if (!(SEVERITIES as readonly unknown[]).includes(value)) problems.push(`${where}: expected one of ${SEVERITIES.join(', ')}`);
        else target.severity = value;
      } else if (field === 'action') {
        if (!(ACTIONS as readonly unknown[]).includes(value)) problems.push(`${where}: expected one of ${ACTIONS.join(', ')}`);
        else target.action = value;
      } else if (NUMBERS[rule]?.[field]) {
        const [min, max] = NUMBERS[rule]![field];
        if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
          problems.push(`${where}: expected a number from ${min} to ${max}`);
        } else target[field] = value;
      } else if (WINDOWS[rule]?.includes(field)) {
        target[field] = parseWindow(value, where, target[field] as WindowLimit, problems);
      } else {
        const allowed = ['enabled', 'severity', 'action', ...Object.keys(NUMBERS[rule] ?? {}), ...(WINDOWS[rule] ?? [])];
        problems.push(`${where}: unknown field (expected one of ${allowed.join(', ')})`);
      }
    }
  }
  if (problems.length > 0) throw new RulesFileError(source, problems);
  return out as unknown as RulesConfig;
}

function parseWindow(value: unknown, where: string, current: WindowLimit, problems: string[]): WindowLimit {
  if (!isObject(value)) {
    problems.push(`${where}: expected {"enabled"?, "max", "windowSeconds"}`);
    return current;
  }
  const next = { ...current };
  for (const [field, v] of Object.entries(value)) {
    if (field === 'enabled') {
      if (typeof v !== 'boolean') problems.push(`${where}.enabled: expected true or false`);
      else next.enabled = v;
    } else if (field === 'max') {
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 1_000_000) problems.push(`${where}.max: expected a whole number from 1 to 1000000`);
      else next.max = v as number;
    } else if (field === 'windowSeconds') {
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 7 * 86400) problems.push(`${where}.windowSeconds: expected a whole number from 1 to 604800`);
      else next.windowSeconds = v as number;
    } else problems.push(`${where}.${field}: unknown field (expected enabled, max, windowSeconds)`);
  }
  return next;
}

/** Reads and validates a rules file (JSON). Errors name the file and every problem in it. */
export function loadRulesFile(path: string): RulesConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RulesFileError(path, [`cannot read the file: ${(error as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new RulesFileError(path, [`not valid JSON: ${(error as Error).message}`]);
  }
  return parseRulesConfig(doc, path);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
