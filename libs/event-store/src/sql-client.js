"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.toNumber = toNumber;
exports.toOptionalNumber = toOptionalNumber;
/** pg hands bigint back as a string, PGlite as a number; everything above this layer uses numbers. */
function toNumber(value) {
    return typeof value === 'number' ? value : Number(value);
}
function toOptionalNumber(value) {
    return value === null || value === undefined ? undefined : toNumber(value);
}
