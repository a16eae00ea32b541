"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __exportStar = (this && this.__exportStar) || function(m, exports) {
    for (var p in m) if (p !== "default" && !Object.prototype.hasOwnProperty.call(exports, p)) __createBinding(exports, m, p);
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.fromIso = exports.toIso = void 0;
/** @token-ledger/domain: pure domain code (no I/O, no clock, no randomness). */
__exportStar(require("./events"), exports);
__exportStar(require("./commands"), exports);
__exportStar(require("./family-state"), exports);
__exportStar(require("./token-secrets"), exports);
__exportStar(require("./errors"), exports);
__exportStar(require("./crc32"), exports);
__exportStar(require("./constant-time"), exports);
__exportStar(require("./refresh-token"), exports);
__exportStar(require("./scope"), exports);
__exportStar(require("./family-decider"), exports);
__exportStar(require("./subject-decider"), exports);
__exportStar(require("./client-policy"), exports);
var time_1 = require("./time");
Object.defineProperty(exports, "toIso", { enumerable: true, get: function () { return time_1.toIso; } });
Object.defineProperty(exports, "fromIso", { enumerable: true, get: function () { return time_1.fromIso; } });
