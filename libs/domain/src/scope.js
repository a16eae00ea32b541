"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.isScopeToken = isScopeToken;
exports.parseScope = parseScope;
exports.normaliseScope = normaliseScope;
exports.isSubset = isSubset;
exports.formatScope = formatScope;
/**
 * OAuth scopes (RFC 6749 §3.3):
 *   scope       = scope-token *( SP scope-token )
 *   scope-token = 1*( %x21 / %x23-5B / %x5D-7E )     ; printable ASCII except SP, " and \
 * Scope lists are kept deduplicated in first-seen order; order carries no meaning.
 */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
function isScopeToken(s) {
    return typeof s === 'string' && SCOPE_TOKEN.test(s);
}
/**
 * Parses a space-delimited scope string. Runs of spaces and leading/trailing spaces are tolerated
 * (only %x20: tabs, newlines and any other character outside scope-token make it invalid).
 * An empty or all-space string yields []. Returns null when malformed. Never throws.
 */
function parseScope(input) {
    if (typeof input !== 'string')
        return null;
    const tokens = input.split(' ').filter((t) => t !== '');
    return normaliseScope(tokens);
}
/** Validates each token and removes duplicates (first occurrence wins). Null if any is invalid. */
function normaliseScope(tokens) {
    if (!Array.isArray(tokens))
        return null;
    const seen = new Set();
    for (const t of tokens) {
        if (!isScopeToken(t))
            return null;
        seen.add(t);
    }
    return [...seen];
}
/** True when every requested scope is in granted. The empty set is a subset of anything. */
function isSubset(requested, granted) {
    const g = new Set(granted);
    return requested.every((s) => g.has(s));
}
/** The wire form: tokens joined by single spaces (deduplicated). */
function formatScope(tokens) {
    return [...new Set(tokens)].join(' ');
}
