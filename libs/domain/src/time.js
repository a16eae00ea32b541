"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.toIso = toIso;
exports.fromIso = fromIso;
/** Events carry ISO-8601 UTC strings; state and commands use epoch milliseconds. */
function toIso(ms) {
    return new Date(ms).toISOString();
}
function fromIso(iso) {
    return Date.parse(iso);
}
